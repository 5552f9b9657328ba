//! The Closte API key. It is printed nowhere: Debug and Display redact it, and
//! text that might echo it (server messages) goes through [`ApiKey::redact`].

use std::env::VarError;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const REDACTED: &str = "[redacted]";

/// The environment variable holding the operator's own key, named as WordPress names the constant.
pub const KEY_ENV: &str = "CLOSTE_CLIENT_API_KEY";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the Closte API key is empty")]
    Empty,
    #[error("cannot read the Closte API key file {path}: {source}")]
    File {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no Closte API key: set CLOSTE_CLIENT_API_KEY or pass --api-key-file")]
    Missing,
    #[error("CLOSTE_CLIENT_API_KEY is not valid UTF-8")]
    NotUnicode,
}

/// Where the operator's own API key comes from, for every subcommand that
/// reads it. The key's value is never a flag, so it never shows in `--help`
/// or a process listing.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct KeyArgs {
    /// File holding the Closte API key (e.g. a mounted Secret); without it, CLOSTE_CLIENT_API_KEY is read.
    #[arg(long)]
    pub api_key_file: Option<PathBuf>,
}

impl KeyArgs {
    /// The key from `--api-key-file` when given, else from `CLOSTE_CLIENT_API_KEY`.
    pub fn load(&self) -> Result<ApiKey, KeyError> {
        self.load_with(std::env::var(KEY_ENV))
    }

    fn load_with(&self, env: Result<String, VarError>) -> Result<ApiKey, KeyError> {
        let env = match env {
            Err(VarError::NotUnicode(_)) if self.api_key_file.is_none() => {
                return Err(KeyError::NotUnicode);
            }
            env => env.ok(),
        };
        ApiKey::from_file_or_env(self.api_key_file.as_deref(), env.as_deref())
    }
}

#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ApiKey(Arc<str>);

impl ApiKey {
    pub fn new(key: &str) -> Result<ApiKey, KeyError> {
        let key = key.trim();
        if key.is_empty() {
            return Err(KeyError::Empty);
        }
        Ok(ApiKey(key.into()))
    }

    /// Reads a key from a file (a mounted Secret), ignoring surrounding whitespace.
    pub fn from_file(path: &Path) -> Result<ApiKey, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::File {
            path: path.display().to_string(),
            source,
        })?;
        ApiKey::new(&text)
    }

    /// The key from `--api-key-file` when given, else from the environment value.
    pub fn from_file_or_env(file: Option<&Path>, env: Option<&str>) -> Result<ApiKey, KeyError> {
        match (file, env) {
            (Some(path), _) => ApiKey::from_file(path),
            (None, Some(value)) => ApiKey::new(value),
            (None, None) => Err(KeyError::Missing),
        }
    }

    /// The secret itself, for the one place that sends it.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    /// `text` with every occurrence of the key replaced by a redaction mark.
    pub fn redact(&self, text: &str) -> String {
        text.replace(&*self.0, REDACTED)
    }

    /// A short, stable, non-reversible label for logs and metrics
    /// (16 bits of a hash of the key).
    pub fn label(&self) -> String {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.0.hash(&mut hasher);
        format!("account-{:04x}", hasher.finish() & 0xffff)
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKey({REDACTED})")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_formats_the_secret() {
        let key = ApiKey::new("  s3cr3t-key  ").unwrap();
        assert_eq!(format!("{key}"), REDACTED);
        assert_eq!(format!("{key:?}"), "ApiKey([redacted])");
        assert_eq!(format!("{:?}", Some(&key)), "Some(ApiKey([redacted]))");
        assert!(!key.label().contains("s3cr3t"));
        assert_eq!(key.expose(), "s3cr3t-key");
    }

    #[test]
    fn redacts_echoes() {
        let key = ApiKey::new("abc123").unwrap();
        assert_eq!(key.redact("bad key abc123!"), "bad key [redacted]!");
    }

    #[test]
    fn empty_and_missing_keys_are_errors() {
        assert!(matches!(ApiKey::new(" \n"), Err(KeyError::Empty)));
        assert!(matches!(
            ApiKey::from_file_or_env(None, None),
            Err(KeyError::Missing)
        ));
        let err = ApiKey::from_file(Path::new("/nonexistent/key")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/key"));
    }

    #[test]
    fn key_args_read_the_file_first_then_the_environment() {
        let dir = std::env::temp_dir().join(format!("closte-key-args-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("key");
        std::fs::write(&file, "from-file\n").unwrap();
        let with_file = KeyArgs {
            api_key_file: Some(file),
        };
        let env = || Ok("from-env".to_owned());
        let not_unicode = || Err(VarError::NotUnicode("\u{fffd}".into()));
        assert_eq!(with_file.load_with(env()).unwrap().expose(), "from-file");
        assert_eq!(
            with_file.load_with(not_unicode()).unwrap().expose(),
            "from-file"
        );
        let without = KeyArgs::default();
        assert_eq!(without.load_with(env()).unwrap().expose(), "from-env");
        assert!(matches!(
            without.load_with(Err(VarError::NotPresent)),
            Err(KeyError::Missing)
        ));
        assert!(matches!(
            without.load_with(not_unicode()),
            Err(KeyError::NotUnicode)
        ));
        assert!(matches!(
            without.load_with(Ok(" ".into())),
            Err(KeyError::Empty)
        ));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
