//! The Closte API key. It is printed nowhere: Debug and Display redact it, and
//! text that might echo it (server messages) goes through [`ApiKey::redact`].

use std::fmt;
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::Arc;

pub const REDACTED: &str = "[redacted]";

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
}
