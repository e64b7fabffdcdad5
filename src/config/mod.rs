//! Configuration (spec section 7): defaults < `config.toml` < environment < command-line flags.
//! Every key has a default, so the file may be missing; an unknown key or a bad value is an error
//! that names the key.

mod https;
mod storage;

pub use https::{AcmeChallenge, AcmeConfig, TlsConfig, LETS_ENCRYPT, PUBLIC_HTTPS};
pub use storage::{Durability, Engine, PostgresConfig, StorageConfig};

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

use crate::timefmt::Micros;

pub const DEFAULT_CONFIG_FILE: &str = "config.toml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {key}: {message}")]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
    #[error("{source_name}: {message}")]
    Override {
        source_name: String,
        message: String,
    },
    #[error("{key}: {message}")]
    Inconsistent { key: &'static str, message: String },
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub retention: RetentionConfig,
    pub devices: DevicesConfig,
    pub auth: AuthConfig,
    pub limits: LimitsConfig,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub bind: Address,
    pub max_body: ByteSize,
    /// Header naming the client's address when behind a reverse proxy (e.g. `x-forwarded-for`);
    /// empty: the connection's peer address.
    pub client_ip_header: String,
    /// Proxies in front of the server that append to `client_ip_header`: the client is the
    /// address that many entries from the right (what the outermost trusted proxy saw).
    pub trusted_proxies: usize,
    /// Request worker threads; 0: one per CPU.
    pub workers: usize,
    /// How long a request's body may take to arrive, from the end of its head (a client that
    /// trickles one byte at a time holds a connection no longer).
    pub body_timeout: Duration,
    /// Connections served at once, per worker; more wait to be accepted.
    pub max_connections: usize,
    /// Certificate files: HTTPS on `bind` when both are set.
    pub tls: TlsConfig,
    /// Certificates obtained over ACME: HTTPS on `bind` when `domains` is set.
    pub acme: AcmeConfig,
    /// A second, plain HTTP listener (e.g. `0.0.0.0:80`) that sends browsers to HTTPS (308),
    /// answers HTTP-01 challenges, and serves the plugin endpoints as they are; empty: none.
    pub redirect_http: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: Address("127.0.0.1:8080".into()),
            max_body: ByteSize(256 * 1024),
            client_ip_header: String::new(),
            trusted_proxies: 1,
            workers: 0,
            body_timeout: Duration::from_secs(10),
            max_connections: 5_000,
            tls: TlsConfig::default(),
            acme: AcmeConfig::default(),
            redirect_http: String::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Failed authentications per client within `auth_window` before it is refused (0: never).
    pub auth_failures: usize,
    pub auth_window: Duration,
    /// Requests per minute per client on `/updates`, `/stats`, `/channel_self` (0: no limit).
    pub plugin_per_minute: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            auth_failures: 20,
            auth_window: Duration::from_secs(15 * 60),
            plugin_per_minute: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    pub device_ttl: Duration,
    pub sweep_interval: Duration,
    /// Audit log entries older than this are deleted by the sweep.
    pub audit_ttl: Duration,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            device_ttl: Duration::from_secs(90 * 86_400),
            sweep_interval: Duration::from_secs(3_600),
            audit_ttl: Duration::from_secs(365 * 86_400),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DevicesConfig {
    pub touch_interval: Duration,
}

impl Default for DevicesConfig {
    fn default() -> Self {
        Self {
            touch_interval: Duration::from_secs(3_600),
        }
    }
}

#[derive(Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// A key of mode `all` with this value exists while it is set; empty means unset.
    pub admin_key: String,
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret, even in debug output.
        let shown = if self.admin_key.is_empty() {
            "unset"
        } else {
            "<redacted>"
        };
        f.debug_struct("AuthConfig")
            .field("admin_key", &shown)
            .finish()
    }
}

/// A duration written `500ms`, `2s`, `5m`, `1h` or `90d`; kept in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Duration(pub Micros);

impl Duration {
    pub const fn from_millis(ms: u64) -> Self {
        Self(ms * 1_000)
    }

    pub const fn from_secs(secs: u64) -> Self {
        Self(secs * 1_000_000)
    }

    pub fn micros(self) -> Micros {
        self.0
    }

    pub fn to_std(self) -> std::time::Duration {
        std::time::Duration::from_micros(self.0)
    }
}

impl FromStr for Duration {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let expected = || {
            format!("invalid duration {text:?}: expected a whole number followed by ms, s, m, h or d (e.g. 500ms, 90d)")
        };
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(expected)?;
        let (number, unit) = text.split_at(split);
        if number.is_empty() {
            return Err(expected());
        }
        let number: u64 = number.parse().map_err(|_| expected())?;
        let micros_per_unit: u64 = match unit {
            "ms" => 1_000,
            "s" => 1_000_000,
            "m" => 60_000_000,
            "h" => 3_600_000_000,
            "d" => 86_400_000_000,
            _ => return Err(expected()),
        };
        number
            .checked_mul(micros_per_unit)
            .map(Duration)
            .ok_or_else(|| format!("duration {text:?} is too long"))
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A size written `256KiB`, `128MiB`, `1GiB` (or KB/MB/GB, or plain bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let expected = || {
            format!("invalid size {text:?}: expected a whole number followed by B, KiB, MiB, GiB, KB, MB or GB (e.g. 256KiB)")
        };
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        if number.is_empty() {
            return Err(expected());
        }
        let number: u64 = number.parse().map_err(|_| expected())?;
        let multiplier: u64 = match unit.trim() {
            "" | "B" => 1,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            "KB" | "kB" => 1_000,
            "MB" => 1_000_000,
            "GB" => 1_000_000_000,
            _ => return Err(expected()),
        };
        number
            .checked_mul(multiplier)
            .map(ByteSize)
            .ok_or_else(|| format!("size {text:?} is too large"))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bytes(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Bytes(bytes) => Ok(ByteSize(bytes)),
            Raw::Text(text) => text.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// A listen address: `host:port` that resolves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address(pub String);

impl Address {
    pub fn resolve(&self) -> Result<Vec<SocketAddr>, String> {
        let addrs: Vec<SocketAddr> = self
            .0
            .to_socket_addrs()
            .map_err(|e| format!("invalid address {:?}: {e}", self.0))?
            .collect();
        if addrs.is_empty() {
            return Err(format!("address {:?} resolves to nothing", self.0));
        }
        Ok(addrs)
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let address = Address(String::deserialize(deserializer)?);
        address.resolve().map_err(serde::de::Error::custom)?;
        Ok(address)
    }
}

/// What the command line says about configuration.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub config: Option<PathBuf>,
    pub bind: Option<String>,
    pub data_dir: Option<PathBuf>,
}

impl Config {
    /// Parses a configuration file's text; `path` only names it in errors.
    pub fn from_toml(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let deserializer = toml::Deserializer::new(text);
        serde_path_to_error::deserialize(deserializer).map_err(|error| {
            let key = error.path().to_string();
            let message = error.inner().message().to_owned();
            ConfigError::Invalid {
                path: path.to_owned(),
                key: if key == "." { "(file)".into() } else { key },
                message,
            }
        })
    }

    /// Loads with the full precedence. `env` reads an environment variable (injected for tests).
    pub fn load(
        flags: &Overrides,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let explicit = flags
            .config
            .clone()
            .or_else(|| env("DEVICE_REGISTRY_CONFIG").map(PathBuf::from));
        let path = explicit
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_FILE));
        let mut config = match std::fs::read_to_string(&path) {
            Ok(text) => Self::from_toml(&text, &path)?,
            // Only the default file may be missing; a file the user named must exist.
            Err(e) if explicit.is_none() && e.kind() == std::io::ErrorKind::NotFound => {
                Self::default()
            }
            Err(source) => return Err(ConfigError::Read { path, source }),
        };

        let bind_override = |source_name: &str, value: String| {
            let address = Address(value);
            address.resolve().map_err(|message| ConfigError::Override {
                source_name: source_name.to_owned(),
                message,
            })?;
            Ok::<_, ConfigError>(address)
        };
        if let Some(bind) = env("DEVICE_REGISTRY_BIND") {
            config.server.bind = bind_override("DEVICE_REGISTRY_BIND", bind)?;
        }
        if let Some(dir) = env("DEVICE_REGISTRY_DATA_DIR") {
            config.storage.data_dir = PathBuf::from(dir);
        }
        if let Some(key) = env("DEVICE_REGISTRY_ADMIN_KEY") {
            config.auth.admin_key = key;
        }
        if let Some(url) = env("DEVICE_REGISTRY_DATABASE_URL") {
            config.storage.postgres.url = url;
        }
        if let Some(bind) = &flags.bind {
            config.server.bind = bind_override("--bind", bind.clone())?;
        }
        if let Some(dir) = &flags.data_dir {
            config.storage.data_dir = dir.clone();
        }
        // ACME needs the CA to reach the server on port 443: with domains set and `bind` left at
        // its loopback default, the server listens there, so that setting `domains` and
        // `contact` is all a new user does.
        if !config.server.acme.domains.is_empty()
            && config.server.bind == ServerConfig::default().bind
        {
            config.server.bind = Address(PUBLIC_HTTPS.into());
        }
        config.check_consistency()?;
        Ok(config)
    }

    /// Whether `server.bind` speaks HTTPS.
    pub fn serves_https(&self) -> bool {
        self.server.tls.is_set() || !self.server.acme.domains.is_empty()
    }

    /// Settings that are each valid but wrong together.
    pub fn check_consistency(&self) -> Result<(), ConfigError> {
        // A device that checks in unchanged is rewritten only once per touch_interval: were
        // that as long as the time-to-live, an active device could expire, with its overrides.
        // Whole seconds at least: a zero body_timeout would refuse every body (and 408 reports
        // it in seconds), a zero sweep_interval would sweep without pause, a zero auth_window
        // would count no failure.
        for (key, value) in [
            ("server.body_timeout", self.server.body_timeout),
            ("retention.sweep_interval", self.retention.sweep_interval),
            ("limits.auth_window", self.limits.auth_window),
        ] {
            if value < Duration::from_secs(1) {
                return Err(ConfigError::Inconsistent {
                    key,
                    message: format!(
                        "must be at least 1s; it is {}ms",
                        value.to_std().as_millis()
                    ),
                });
            }
        }
        if self.storage.engine == Engine::Postgres && self.storage.postgres.url.is_empty() {
            return Err(ConfigError::Inconsistent {
                key: "storage.postgres.url",
                message: "engine = \"postgres\" needs the database's URL (or \
                          DEVICE_REGISTRY_DATABASE_URL)"
                    .into(),
            });
        }
        if self.storage.postgres.pool_size == 0 {
            return Err(ConfigError::Inconsistent {
                key: "storage.postgres.pool_size",
                message: "must be at least 1".into(),
            });
        }
        let tls = &self.server.tls;
        if tls.is_set() && (tls.cert.as_os_str().is_empty() || tls.key.as_os_str().is_empty()) {
            return Err(ConfigError::Inconsistent {
                key: "server.tls",
                message: "cert and key go together: set both, or neither".into(),
            });
        }
        if tls.is_set() && !self.server.acme.domains.is_empty() {
            return Err(ConfigError::Inconsistent {
                key: "server.acme.domains",
                message: "certificate files (server.tls) and ACME exclude each other".into(),
            });
        }
        if self.server.acme.challenge == AcmeChallenge::Http01
            && !self.server.acme.domains.is_empty()
            && self.server.redirect_http.is_empty()
        {
            return Err(ConfigError::Inconsistent {
                key: "server.acme.challenge",
                message: "http-01 is answered on server.redirect_http, which is not set".into(),
            });
        }
        if !self.server.redirect_http.is_empty() && !self.serves_https() {
            return Err(ConfigError::Inconsistent {
                key: "server.redirect_http",
                message: "redirects to HTTPS, which is off (set server.tls or server.acme)".into(),
            });
        }
        if self.devices.touch_interval >= self.retention.device_ttl {
            return Err(ConfigError::Inconsistent {
                key: "devices.touch_interval",
                message: format!(
                    "must be shorter than retention.device_ttl ({}s), or active devices expire; \
                     it is {}s",
                    self.retention.device_ttl.to_std().as_secs(),
                    self.devices.touch_interval.to_std().as_secs()
                ),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn durations_parse_in_every_unit() {
        assert_eq!(
            "500ms".parse::<Duration>().unwrap(),
            Duration::from_millis(500)
        );
        assert_eq!("2s".parse::<Duration>().unwrap(), Duration::from_secs(2));
        assert_eq!("5m".parse::<Duration>().unwrap(), Duration::from_secs(300));
        assert_eq!("1h".parse::<Duration>().unwrap(), Duration::from_secs(3600));
        assert_eq!(
            "90d".parse::<Duration>().unwrap(),
            Duration::from_secs(90 * 86400)
        );
        for bad in [
            "",
            "90",
            "d",
            "1.5h",
            "-1s",
            "1 h",
            "1H",
            "1w",
            "99999999999999999999d",
        ] {
            assert!(bad.parse::<Duration>().is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes_parse_in_every_unit() {
        assert_eq!("256KiB".parse::<ByteSize>().unwrap(), ByteSize(262_144));
        assert_eq!("128MiB".parse::<ByteSize>().unwrap(), ByteSize(134_217_728));
        assert_eq!("1GB".parse::<ByteSize>().unwrap(), ByteSize(1_000_000_000));
        assert_eq!("42".parse::<ByteSize>().unwrap(), ByteSize(42));
        for bad in ["", "KiB", "1.5MiB", "12 parsecs", "-1"] {
            assert!(bad.parse::<ByteSize>().is_err(), "{bad}");
        }
    }

    #[test]
    fn https_settings_that_cannot_work_together_are_refused() {
        let refused = |text: &str| {
            let config = Config::from_toml(text, Path::new("t.toml")).unwrap();
            match config.check_consistency() {
                Err(ConfigError::Inconsistent { key, .. }) => key,
                other => panic!("{text}: {other:?}"),
            }
        };
        assert_eq!(refused("[server.tls]\ncert = \"c.pem\""), "server.tls");
        assert_eq!(
            refused(
                "[server.tls]\ncert = \"c\"\nkey = \"k\"\n[server.acme]\ndomains = [\"a.example\"]"
            ),
            "server.acme.domains"
        );
        assert_eq!(
            refused("[server.acme]\ndomains = [\"a.example\"]\nchallenge = \"http-01\""),
            "server.acme.challenge"
        );
        assert_eq!(
            refused("[server]\nredirect_http = \":80\""),
            "server.redirect_http"
        );
        let acme = Config::from_toml(
            "[server]\nredirect_http = \":80\"\n[server.acme]\ndomains = [\"a.example\"]\nchallenge = \"http-01\"",
            Path::new("t.toml"),
        )
        .unwrap();
        assert!(acme.check_consistency().is_ok());
        assert!(acme.serves_https());
        assert!(!Config::default().serves_https());
    }

    #[test]
    fn acme_listens_on_443_unless_bind_is_set() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        let flags = Overrides {
            config: Some(path.clone()),
            ..Default::default()
        };
        std::fs::write(&path, "[server.acme]\ndomains = [\"a.example\"]\n").unwrap();
        assert_eq!(
            Config::load(&flags, no_env).unwrap().server.bind.0,
            PUBLIC_HTTPS
        );
        std::fs::write(
            &path,
            "[server]\nbind = \"0.0.0.0:8443\"\n[server.acme]\ndomains = [\"a.example\"]\n",
        )
        .unwrap();
        assert_eq!(
            Config::load(&flags, no_env).unwrap().server.bind.0,
            "0.0.0.0:8443"
        );
    }

    #[test]
    fn the_shipped_config_file_is_the_default() {
        let text = include_str!("../../config.toml");
        let shipped = Config::from_toml(text, Path::new("config.toml")).unwrap();
        // Whole: a key added to the defaults but not to the file (or the reverse) fails here.
        assert_eq!(shipped, Config::default());
    }

    #[test]
    fn errors_name_the_key() {
        let error = Config::from_toml(
            "[retention]\ndevice_ttl = \"ninety days\"\n",
            Path::new("c.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("retention.device_ttl"), "{error}");
        assert!(error.contains("invalid duration"), "{error}");

        let error = Config::from_toml("[server]\nbind = \"nowhere\"\n", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("server.bind"), "{error}");

        let error = Config::from_toml("[storage]\ncolour = \"blue\"\n", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("colour"), "{error}");

        let error = Config::from_toml(
            "[storage]\ndurability = \"sometimes\"\n",
            Path::new("c.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("storage.durability"), "{error}");
    }

    #[test]
    fn precedence_is_defaults_file_environment_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[server]\nbind = \"127.0.0.1:1111\"\n[storage]\ndata_dir = \"from-file\"\n[devices]\ntouch_interval = \"5m\"\n",
        )
        .unwrap();
        let flags = Overrides {
            config: Some(path.clone()),
            ..Default::default()
        };
        let config = Config::load(&flags, no_env).unwrap();
        assert_eq!(config.server.bind.0, "127.0.0.1:1111");
        assert_eq!(config.storage.data_dir, PathBuf::from("from-file"));
        assert_eq!(config.devices.touch_interval, Duration::from_secs(300));
        assert_eq!(config.retention.device_ttl, Duration::from_secs(90 * 86400));

        let env = |name: &str| match name {
            "DEVICE_REGISTRY_BIND" => Some("127.0.0.1:2222".to_owned()),
            "DEVICE_REGISTRY_DATA_DIR" => Some("from-env".to_owned()),
            "DEVICE_REGISTRY_ADMIN_KEY" => Some("secret".to_owned()),
            _ => None,
        };
        let config = Config::load(&flags, env).unwrap();
        assert_eq!(config.server.bind.0, "127.0.0.1:2222");
        assert_eq!(config.storage.data_dir, PathBuf::from("from-env"));
        assert_eq!(config.auth.admin_key, "secret");

        let flags = Overrides {
            config: Some(path),
            bind: Some("127.0.0.1:3333".into()),
            data_dir: Some("from-flag".into()),
        };
        let config = Config::load(&flags, env).unwrap();
        assert_eq!(config.server.bind.0, "127.0.0.1:3333");
        assert_eq!(config.storage.data_dir, PathBuf::from("from-flag"));
    }

    #[test]
    fn a_named_config_file_must_exist() {
        let flags = Overrides {
            config: Some("/nonexistent/device-registry.toml".into()),
            ..Default::default()
        };
        assert!(matches!(
            Config::load(&flags, no_env),
            Err(ConfigError::Read { .. })
        ));
    }

    #[test]
    fn debug_output_hides_the_admin_key() {
        let mut config = Config::default();
        config.auth.admin_key = "hunter2".into();
        assert!(!format!("{config:?}").contains("hunter2"));
    }

    #[test]
    fn durations_under_a_second_are_refused_where_they_would_stop_the_server_working() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        for (text, key) in [
            ("[server]\nbody_timeout = \"0s\"\n", "server.body_timeout"),
            (
                "[server]\nbody_timeout = \"500ms\"\n",
                "server.body_timeout",
            ),
            (
                "[retention]\nsweep_interval = \"0s\"\n",
                "retention.sweep_interval",
            ),
            ("[limits]\nauth_window = \"0ms\"\n", "limits.auth_window"),
        ] {
            std::fs::write(&file, text).unwrap();
            let flags = Overrides {
                config: Some(file.clone()),
                ..Overrides::default()
            };
            let error = Config::load(&flags, |_| None).unwrap_err();
            assert!(error.to_string().contains(key), "{text}: {error}");
        }
        std::fs::write(&file, "[server]\nbody_timeout = \"1s\"\n").unwrap();
        let flags = Overrides {
            config: Some(file.clone()),
            ..Overrides::default()
        };
        assert!(Config::load(&flags, |_| None).is_ok());
    }

    #[test]
    fn a_touch_interval_as_long_as_the_ttl_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        for (text, ok) in [
            ("[devices]\ntouch_interval = \"90d\"\n", false),
            (
                "[devices]\ntouch_interval = \"1h\"\n[retention]\ndevice_ttl = \"30m\"\n",
                false,
            ),
            ("[devices]\ntouch_interval = \"89d\"\n", true),
        ] {
            std::fs::write(&file, text).unwrap();
            let flags = Overrides {
                config: Some(file.clone()),
                ..Overrides::default()
            };
            let loaded = Config::load(&flags, |_| None);
            assert_eq!(loaded.is_ok(), ok, "{text}");
            if let Err(error) = loaded {
                assert!(
                    error.to_string().contains("devices.touch_interval"),
                    "{error}"
                );
            }
        }
    }
}
