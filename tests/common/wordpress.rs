//! Real WordPress for the mu-plugin's tests: MariaDB in a scratch data
//! directory, Debian's WordPress files in a standalone docroot with the test's
//! own wp-config.php, the mu-plugin from `wordpress/`, PHP's built-in server,
//! headless Chromium, and the sidecar as a process.
//!
//! Nothing here is skipped: a missing tool fails the test with the command
//! that installs it (`bash .ci/run` installs them all).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::Value;

use super::sidecar::Sidecar;
use super::sim::scratch;
use super::wait::eventually;

/// Debian's packages that the WordPress tests need.
pub const PACKAGES: &str = "wordpress php-cli php-mysql php-curl mariadb-server phpunit chromium";

/// Where Debian's wordpress package puts WordPress.
pub const WORDPRESS_FILES: &str = "/usr/share/wordpress";

/// Finds `name` on PATH (or in /usr/sbin, where MariaDB's server lives), or
/// fails the test saying how to install it.
pub fn require(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` is not installed; the WordPress tests need Debian's {PACKAGES}:\n  \
                 apt-get install -y {PACKAGES}\n(`bash .ci/run` installs them when missing)"
            )
        })
}

/// Runs `command` and returns its output, failing the test when it cannot start.
pub fn run(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"))
}

/// A name no other caller in this test process gets (unix sockets, profiles).
fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}", std::process::id())
}

fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// A MariaDB server on a unix socket in a scratch data directory, with a
/// database `wordpress` for user `wp` (password `wp`); with
/// [`MariaDb::start_listening`], also on a TCP address (for pods).
pub struct MariaDb {
    child: Child,
    pub socket: PathBuf,
    pub log: PathBuf,
}

impl MariaDb {
    pub async fn start(dir: &Path) -> MariaDb {
        MariaDb::start_on(dir, None).await
    }

    /// [`MariaDb::start`], also listening on `address`, where user `wp` may
    /// connect from anywhere.
    pub async fn start_listening(dir: &Path, address: std::net::SocketAddr) -> MariaDb {
        MariaDb::start_on(dir, Some(address)).await
    }

    async fn start_on(dir: &Path, tcp: Option<std::net::SocketAddr>) -> MariaDb {
        let install_db = require("mariadb-install-db");
        let server = require("mariadbd");
        let data = dir.join("mysql-data");
        let log = dir.join("mariadb.log");
        let mut install = Command::new(install_db);
        install
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg("--auth-root-authentication-method=normal")
            .arg("--skip-test-db")
            .arg("--innodb-log-file-size=16M");
        let mut serve = Command::new(server);
        serve.arg("--no-defaults");
        if running_as_root() {
            install.arg("--user=root");
            serve.arg("--user=root");
        }
        let out = run(&mut install);
        assert!(
            out.status.success(),
            "mariadb-install-db failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // unix socket paths are limited to 107 bytes; the scratch dir may be deep
        let socket = std::env::temp_dir().join(format!("{}.sock", unique("closte-e2e")));
        let init = dir.join("init.sql");
        let host = if tcp.is_some() { "%" } else { "localhost" };
        std::fs::write(
            &init,
            format!(
                "CREATE DATABASE wordpress;\n\
                 CREATE USER 'wp'@'{host}' IDENTIFIED BY 'wp';\n\
                 GRANT ALL ON wordpress.* TO 'wp'@'{host}';\n"
            ),
        )
        .unwrap();
        let network = match tcp {
            Some(address) => vec![
                format!("--bind-address={}", address.ip()),
                format!("--port={}", address.port()),
                // pods connect by address; no name lookups of their IPs
                "--skip-name-resolve".to_owned(),
            ],
            None => vec!["--skip-networking".to_owned()],
        };
        // a test killed before its Drop runs must not leave the server
        // holding its address for the next run
        // SAFETY: prctl is async-signal-safe; it runs in the child before exec.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut serve, || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = serve
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--socket={}", socket.display()))
            .arg(format!("--pid-file={}", dir.join("mariadb.pid").display()))
            .arg(format!("--log-error={}", log.display()))
            .arg(format!("--init-file={}", init.display()))
            .args(network)
            // a scratch database: no durability, less disk latency in the timings
            .args([
                "--innodb-buffer-pool-size=64M",
                "--innodb-log-file-size=16M",
                "--innodb-flush-log-at-trx-commit=0",
                "--innodb-doublewrite=0",
                "--sync-binlog=0",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mariadbd");
        let mut db = MariaDb { child, socket, log };
        eventually(30, "MariaDB to accept connections", || {
            if let Ok(Some(status)) = db.child.try_wait() {
                panic!(
                    "mariadbd exited ({status}):\n{}",
                    std::fs::read_to_string(&db.log).unwrap_or_default()
                );
            }
            let log = std::fs::read_to_string(&db.log).unwrap_or_default();
            let ready = db.socket.exists() && log.contains("ready for connections");
            async move { ready }
        })
        .await;
        db
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        kill(&mut self.child);
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// What the test's wp-config.php is made of.
pub struct Config<'a> {
    pub sidecar_url: &'a str,
    pub token_file: &'a Path,
    /// The simulator's client API, for the direct-call baseline.
    pub direct_closte_url: &'a str,
    pub direct_closte_key: &'a str,
    /// `CLOSTE_CLIENT_API_KEY` as the README says: a placeholder, never a
    /// Closte key; the only `apikey` the mu-plugin routes.
    pub client_key: &'a str,
}

/// A WordPress multisite network (subdirectory install, main site
/// `127.0.0.1:PORT`) in its own docroot, with the mu-plugin installed.
pub struct WordPress {
    pub dir: PathBuf,
    pub docroot: PathBuf,
    pub host: String,
    pub url: String,
    pub port: u16,
    pub admin_id: u64,
    server: Child,
}

pub const ADMIN_USER: &str = "admin";
pub const ADMIN_EMAIL: &str = "admin@example.com";

impl WordPress {
    /// Copies Debian's WordPress files into a scratch docroot, serves it
    /// with PHP's built-in server (on a port of its own choosing: the site's
    /// address is known before WordPress is installed for it), writes
    /// wp-config.php, installs a multisite network by script (there is no
    /// wp-cli), then puts the mu-plugin and the test helpers in place.
    pub async fn install(name: &str, db: &MariaDb, config: &Config<'_>) -> WordPress {
        require("php");
        let files = Path::new(WORDPRESS_FILES);
        assert!(
            files.join("wp-settings.php").is_file(),
            "{WORDPRESS_FILES} has no WordPress; apt-get install -y {PACKAGES}"
        );
        let dir = scratch(name);
        let docroot = dir.join("docroot");
        // A copy, not symlinks: PHP resolves __FILE__ through symlinks, and
        // wp-load.php would then find Debian's wp-config.php (which reads
        // /etc/wordpress/config-HOST.php) instead of ours.
        let out = run(Command::new("cp").arg("-a").arg(files).arg(&docroot));
        assert!(out.status.success(), "copy {WORDPRESS_FILES}: {out:?}");
        std::fs::remove_file(docroot.join("wp-config.php")).unwrap();
        let (server, port) = serve(&dir, &docroot).await;
        let host = format!("127.0.0.1:{port}");
        std::fs::write(
            docroot.join("wp-config.php"),
            wp_config(&host, &db.socket, config),
        )
        .unwrap();

        let mut wp = WordPress {
            url: format!("http://{host}"),
            dir,
            docroot,
            host,
            port,
            admin_id: 0,
            server,
        };
        // The test helpers (no mail, one-time login) are there from the start.
        let helpers = super::repo_root().join("tests/wordpress");
        let mu = wp.docroot.join("wp-content/mu-plugins");
        let direct = wp.docroot.join("wp-content/mu-plugins-direct");
        for d in [&mu, &direct] {
            std::fs::create_dir_all(d).unwrap();
            std::fs::copy(
                helpers.join("mu-plugins/closte-e2e.php"),
                d.join("closte-e2e.php"),
            )
            .unwrap();
        }
        std::fs::copy(
            helpers.join("mu-plugins-direct/closte-e2e-direct.php"),
            direct.join("closte-e2e-direct.php"),
        )
        .unwrap();

        let installed = wp.tool(
            "install",
            serde_json::json!({"user": ADMIN_USER, "email": ADMIN_EMAIL, "password": "e2e-password"}),
        );
        wp.admin_id = installed["user_id"]
            .as_u64()
            .unwrap_or_else(|| panic!("WordPress install failed: {installed}"));

        // The mu-plugin, as the README says: the file plus its folder.
        let plugin = super::repo_root().join("wordpress");
        std::fs::copy(
            plugin.join("closte-operator.php"),
            mu.join("closte-operator.php"),
        )
        .unwrap();
        copy_tree(&plugin.join("closte-operator"), &mu.join("closte-operator"));
        wp
    }

    /// Runs `tests/wordpress/wp-tool.php COMMAND` in this WordPress and
    /// returns its JSON answer. Fails on any PHP warning or notice raised
    /// from the mu-plugin.
    pub fn tool(&self, command: &str, args: Value) -> Value {
        self.tool_with_env(&[], command, args)
    }

    pub fn tool_with_env(&self, env: &[(&str, &str)], command: &str, args: Value) -> Value {
        let script = super::repo_root().join("tests/wordpress/wp-tool.php");
        let out = run(Command::new(require("php"))
            .arg(&script)
            .arg(&self.docroot)
            .arg(&self.host)
            .arg(command)
            .arg(args.to_string())
            .envs(env.iter().copied()));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let answer: Value = stdout
            .lines()
            .last()
            .and_then(|line| serde_json::from_str(line).ok())
            .unwrap_or_else(|| {
                panic!(
                    "wp-tool.php {command} gave no JSON ({}):\n{stdout}\n{}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                )
            });
        let ours: Vec<&Value> = answer["php_problems"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p.as_str().is_some_and(|p| p.contains("mu-plugins")))
            .collect();
        assert!(
            ours.is_empty(),
            "PHP problems from the mu-plugin in `{command}`: {ours:?}"
        );
        answer
    }

    /// The lines WordPress wrote to wp-content/debug.log (WP_DEBUG_LOG).
    pub fn debug_log(&self) -> String {
        std::fs::read_to_string(self.docroot.join("wp-content/debug.log")).unwrap_or_default()
    }

    /// A URL that logs the network admin in (test-only mu-plugin) and goes on
    /// to `path`.
    pub fn login_url(&self, path: &str) -> String {
        let redirect = format!("{}{path}", self.url);
        let answer = self.tool(
            "login-token",
            serde_json::json!({"user": self.admin_id, "redirect": redirect}),
        );
        format!(
            "{}/?closte_e2e_login={}",
            self.url,
            answer["token"].as_str().unwrap()
        )
    }
}

impl Drop for WordPress {
    fn drop(&mut self) {
        kill(&mut self.server);
    }
}

/// PHP's built-in server on `docroot` at `127.0.0.1:0` with WordPress's
/// rewrite rules (scripts/wordpress-router.php), its log in `dir`;
/// returns it once it has said which port it got ("Development Server
/// (http://127.0.0.1:PORT) started").
async fn serve(dir: &Path, docroot: &Path) -> (Child, u16) {
    let log_path = dir.join("php-server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new(require("php"))
        .args(["-S", "127.0.0.1:0", "-t"])
        .arg(docroot)
        .arg(super::repo_root().join("scripts/wordpress-router.php"))
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start php -S");
    let port = eventually(10, "php -S to say its port", || {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("php -S exited ({status})");
        }
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        let port = log
            .split("Development Server (http://127.0.0.1:")
            .nth(1)
            .and_then(|rest| rest.split(')').next()?.parse::<u16>().ok());
        async move { port }
    })
    .await;
    (child, port)
}

fn wp_config(host: &str, socket: &Path, config: &Config) -> String {
    let php = |s: &str| format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"));
    format!(
        r#"<?php
// The closte-operator test network; written by tests/common/wordpress.rs.
define( 'DB_NAME', 'wordpress' );
define( 'DB_USER', 'wp' );
define( 'DB_PASSWORD', 'wp' );
define( 'DB_HOST', {db_host} );
define( 'DB_CHARSET', 'utf8mb4' );
define( 'DB_COLLATE', '' );
$table_prefix = 'wp_';
foreach ( array( 'AUTH_KEY', 'SECURE_AUTH_KEY', 'LOGGED_IN_KEY', 'NONCE_KEY', 'AUTH_SALT', 'SECURE_AUTH_SALT', 'LOGGED_IN_SALT', 'NONCE_SALT' ) as $closte_e2e_key ) {{
	define( $closte_e2e_key, 'closte-e2e-' . $closte_e2e_key );
}}
define( 'WP_DEBUG', true );
define( 'WP_DEBUG_LOG', __DIR__ . '/wp-content/debug.log' );
define( 'WP_DEBUG_DISPLAY', false );
// The test runs WP-Cron itself (GET /wp-cron.php); nothing leaves the machine.
define( 'DISABLE_WP_CRON', true );
define( 'WP_HTTP_BLOCK_EXTERNAL', true );
define( 'AUTOMATIC_UPDATER_DISABLED', true );
define( 'WP_AUTO_UPDATE_CORE', false );
define( 'DISALLOW_FILE_MODS', true );
if ( ! defined( 'CLOSTE_E2E_INSTALLING' ) ) {{
	define( 'WP_ALLOW_MULTISITE', true );
	define( 'MULTISITE', true );
	define( 'SUBDOMAIN_INSTALL', false );
	define( 'DOMAIN_CURRENT_SITE', {host} );
	define( 'PATH_CURRENT_SITE', '/' );
	define( 'SITE_ID_CURRENT_SITE', 1 );
	define( 'BLOG_ID_CURRENT_SITE', 1 );
}}
// The mu-plugin's settings, as the README documents them.
define( 'CLOSTE_OPERATOR_SIDECAR_URL', {sidecar_url} );
define( 'CLOSTE_OPERATOR_SIDECAR_TOKEN_FILE', {token_file} );
// The baseline of the timing comparison: only the direct-call plugin, which
// posts to the simulator synchronously like Ultimate Multisite does.
if ( getenv( 'CLOSTE_E2E_DIRECT' ) ) {{
	define( 'WPMU_PLUGIN_DIR', __DIR__ . '/wp-content/mu-plugins-direct' );
	define( 'CLOSTE_E2E_DIRECT_URL', {direct_url} );
	define( 'CLOSTE_CLIENT_API_KEY', {direct_key} );
}} else {{
	// The placeholder that makes a Closte client send anything; never a Closte key.
	define( 'CLOSTE_CLIENT_API_KEY', {client_key} );
}}
if ( ! defined( 'ABSPATH' ) ) {{
	define( 'ABSPATH', __DIR__ . '/' );
}}
require_once ABSPATH . 'wp-settings.php';
"#,
        db_host = php(&format!("localhost:{}", socket.display())),
        host = php(host),
        sidecar_url = php(config.sidecar_url),
        token_file = php(&config.token_file.display().to_string()),
        direct_url = php(config.direct_closte_url),
        direct_key = php(config.direct_closte_key),
        client_key = php(config.client_key),
    )
}

/// Loads `url` in headless Chromium (a fresh profile) and returns the DOM
/// after the page's scripts ran.
pub async fn chromium_dom(url: &str, dir: &Path) -> String {
    chromium(&["--dump-dom"], url, dir).await
}

/// Loads `url` in headless Chromium (a fresh profile, a 1280x2000 window)
/// and saves a screenshot of it as `file` (PNG).
pub async fn chromium_screenshot(url: &str, dir: &Path, file: &Path) {
    let _ = std::fs::remove_file(file);
    chromium(
        &[
            &format!("--screenshot={}", file.display()),
            "--window-size=1280,2000",
            "--hide-scrollbars",
        ],
        url,
        dir,
    )
    .await;
    let size = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    assert!(
        size > 1000,
        "chromium wrote no screenshot at {} ({size} bytes); see {}",
        file.display(),
        dir.join("chromium.log").display()
    );
}

/// Runs headless Chromium on `url` with `extra` flags and a fresh profile,
/// and returns what it printed on stdout.
async fn chromium(extra: &[&str], url: &str, dir: &Path) -> String {
    let chromium = require("chromium");
    let profile = dir.join(unique("chromium-profile"));
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.join("chromium.log")).unwrap())
        .spawn()
        .expect("start chromium");
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        out
    });
    let status = eventually(60, "chromium to finish", || {
        let status = child.try_wait().unwrap();
        async move { status }
    })
    .await;
    let out = reader.join().unwrap();
    let _ = std::fs::remove_dir_all(&profile);
    assert!(
        status.success(),
        "chromium {extra:?} failed ({status}); see {}",
        dir.join("chromium.log").display()
    );
    out
}

/// The cookies a response sets, as one Cookie header.
pub fn cookies(response: &reqwest::Response) -> String {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Copies the folder `from` to `to`, subfolders (the plugin's languages/) included.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_tree(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

/// How a test's WordPress network is set up, besides its namespace.
pub struct SiteOptions<'a> {
    /// The sidecar's token (WordPress reads the same from a file of its own).
    pub token: &'a str,
    /// `CLOSTE_CLIENT_API_KEY` in WordPress: a placeholder, never a Closte key.
    pub client_key: &'a str,
    /// The simulator's client API and key, for the direct-call baseline.
    pub direct_closte_url: &'a str,
    pub direct_closte_key: &'a str,
    /// The sidecar's flags besides its namespace, address and token file.
    pub sidecar_args: &'a [&'a str],
}

/// A WordPress network (served by `php -S`, on MariaDB) whose mu-plugin
/// talks to a sidecar for one namespace: what the WordPress tests stand on.
pub struct Site {
    pub dir: PathBuf,
    /// The token file WordPress reads (the same token as the sidecar's, in a
    /// file of its own, as two containers mounting one Secret have it).
    pub wp_token: PathBuf,
    pub sidecar: Sidecar,
    pub wp: WordPress,
    pub db: MariaDb,
}

impl Site {
    /// The sidecar first (WordPress is configured with its address), then
    /// MariaDB and WordPress; scratch folders named after `name`.
    pub async fn start(name: &str, namespace: &str, options: SiteOptions<'_>) -> Site {
        let dir = scratch(name);
        let token_file = dir.join("sidecar-token");
        std::fs::write(&token_file, format!("{}\n", options.token)).unwrap();
        let wp_token = dir.join("wordpress-token");
        std::fs::write(&wp_token, format!("{}\n", options.token)).unwrap();
        let sidecar = Sidecar::with_token_file(
            &dir,
            namespace,
            options.token,
            &token_file,
            options.sidecar_args,
        )
        .await;
        let db = MariaDb::start(&dir).await;
        let config = Config {
            sidecar_url: &sidecar.url,
            token_file: &wp_token,
            direct_closte_url: options.direct_closte_url,
            direct_closte_key: options.direct_closte_key,
            client_key: options.client_key,
        };
        let wp = WordPress::install(&format!("{name}-site"), &db, &config).await;
        Site {
            dir,
            wp_token,
            sidecar,
            wp,
            db,
        }
    }
}
