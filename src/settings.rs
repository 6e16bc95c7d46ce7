//! Server settings, resolved once and validated before the port is bound.
//!
//! Sources, later ones winning: built-in defaults, the TOML file given with `--config`
//! (env `SCIMGATE_CONFIG`), `SCIMGATE_*` environment variables, command-line flags.
//!
//! Each setting is declared once, in `settings/raw.rs`: its TOML key, type, docs and flag.
//! The environment variable is `SCIMGATE_` and the key in capitals, the flag (for the few
//! that have one) `--` and the key with dashes; `docs/settings.md` holds the table of them
//! all, generated from the declaration. Validation and defaults are in [`Settings::resolve`]
//! here and in `monitor::config::resolve`.
//!
//! `tls_cert` and `tls_key` go together; with them the server speaks only HTTPS, and the
//! default `public_url` is `https://<listen>`. The files are read and parsed here, before
//! the port is bound, so a bad certificate stops the start with one sentence.

use std::net::SocketAddr;
use std::path::Path;

use crate::time::Duration;

mod declare;
pub mod docs;
pub mod flags;
pub mod raw;

pub use declare::SettingInfo;
pub use flags::SettingFlags;
pub use raw::{RawSettings, SETTINGS};

/// Why the settings cannot be used; one sentence naming the setting.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read the settings file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("setting `{name}`: {reason}")]
    Invalid { name: String, reason: String },
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// A certificate chain and its private key, parsed; ready for rustls.
pub struct TlsFiles {
    pub cert_chain: Vec<rustls_pki_types::CertificateDer<'static>>,
    pub key: rustls_pki_types::PrivateKeyDer<'static>,
}

impl Clone for TlsFiles {
    fn clone(&self) -> Self {
        TlsFiles {
            cert_chain: self.cert_chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl std::fmt::Debug for TlsFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "TlsFiles({} certificates, key REDACTED)",
            self.cert_chain.len()
        )
    }
}

impl TlsFiles {
    /// Read and parse a PEM certificate chain and a PEM private key.
    pub fn load(cert: &Path, key: &Path) -> Result<TlsFiles, SettingsError> {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        let invalid = |name: &str, path: &Path, reason: String| SettingsError::Invalid {
            name: name.into(),
            reason: format!("{}: {reason}", path.display()),
        };
        let cert_chain = CertificateDer::pem_file_iter(cert)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| invalid("tls_cert", cert, e.to_string()))?;
        if cert_chain.is_empty() {
            return Err(invalid(
                "tls_cert",
                cert,
                "no PEM certificate in the file".into(),
            ));
        }
        let key = PrivateKeyDer::from_pem_file(key)
            .map_err(|e| invalid("tls_key", key, format!("no usable PEM private key ({e})")))?;
        let files = TlsFiles { cert_chain, key };
        files.server_config()?;
        Ok(files)
    }

    /// The rustls server configuration (ring provider); fails if key and chain do not match.
    pub fn server_config(&self) -> Result<rustls::ServerConfig, SettingsError> {
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .and_then(|b| {
                b.with_no_client_auth()
                    .with_single_cert(self.cert_chain.clone(), self.key.clone_key())
            })
            .map_err(|e| SettingsError::Invalid {
                name: "tls_key".into(),
                reason: format!("the key does not fit the certificate: {e}"),
            })
    }
}

/// How long a server trusts a token or client row it read (its caches, `guard` and
/// `oauth::client_auth`) or a SCIM resource it rendered (`scim::cache`), counted from when
/// the read began. `config` commands that cut a client off wait this long before they
/// return ([`crate::admin::wait_for_caches`]).
pub const CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// The longest `refresh_reuse_grace` accepted (seconds).
const MAX_REFRESH_REUSE_GRACE: i64 = 300;

/// Validated server settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub db: crate::store::Location,
    pub listen: SocketAddr,
    /// Base URL clients use to reach us (issuer, SCIM `meta.location`), no trailing slash.
    pub public_url: String,
    pub log_format: LogFormat,
    pub max_body_bytes: usize,
    /// How often recorded token uses are written to the store.
    pub usage_flush_interval: std::time::Duration,
    /// How long a validated bearer token, a client row or a rendered SCIM resource is
    /// trusted without asking the store again; a revocation made by another process
    /// (`config revoke-token`), or a SCIM write made by another instance, takes effect
    /// within it.
    pub token_cache_ttl: std::time::Duration,
    /// Present when the server speaks HTTPS.
    pub tls: Option<TlsFiles>,
    /// Failed sign-ins in a row per (account, address) before back-off windows open
    /// (see [`crate::throttle`]).
    pub login_max_failures: u32,
    /// Accepted for old settings files; client secrets are never locked out.
    pub client_auth_max_failures: u32,
    /// The longest sign-in back-off window.
    pub lockout: Duration,
    /// Proxies whose forwarding headers name the client's address ([`crate::peer`]).
    pub trusted_proxies: crate::peer::TrustedProxies,
    /// Tokens one client may be issued per minute at the token endpoint (`None`: no limit).
    pub client_issuance_per_minute: Option<u32>,
    /// Commits are fsynced (survive power loss); `false` trades that for speed.
    pub durable_commits: bool,
    /// How soon after a rotation the rotated refresh token may be presented again as a
    /// retry (its answer lost) instead of as a reuse; `None`: every reuse revokes the
    /// grant family (RFC 9700 §4.14.2).
    pub refresh_reuse_grace: Option<Duration>,
    /// Lifecycle monitoring: tick, heartbeat log, warnings, notifiers.
    pub monitor: crate::monitor::config::MonitorSettings,
}

impl Settings {
    /// Validate layered raw values.
    pub fn resolve(raw: RawSettings) -> Result<Settings, SettingsError> {
        let invalid = |name: &str, reason: String| SettingsError::Invalid {
            name: name.into(),
            reason,
        };
        let db = crate::store::Location::parse(raw.db.as_deref().unwrap_or("scimgate.db"))
            .map_err(|e| invalid("db", e))?;
        let monitor = crate::monitor::config::resolve(&raw, db.sqlite_path())?;
        let listen_s = raw.listen.unwrap_or_else(|| "127.0.0.1:8080".into());
        let listen: SocketAddr = listen_s.parse().map_err(|_| {
            invalid(
                "listen",
                format!("`{listen_s}` is not an address:port such as 127.0.0.1:8080"),
            )
        })?;
        let tls = match (&raw.tls_cert, &raw.tls_key) {
            (Some(c), Some(k)) => Some(TlsFiles::load(Path::new(c), Path::new(k))?),
            (None, None) => None,
            (Some(_), None) => {
                return Err(invalid(
                    "tls_key",
                    "--tls-cert needs --tls-key (the certificate's private key)".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(invalid(
                    "tls_cert",
                    "--tls-key needs --tls-cert (the certificate chain)".into(),
                ));
            }
        };
        let public_url = match raw.public_url {
            Some(u) => {
                let parsed = url::Url::parse(&u)
                    .map_err(|_| invalid("public_url", format!("`{u}` is not an absolute URL")))?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(invalid(
                        "public_url",
                        format!("`{u}` must be http or https"),
                    ));
                }
                u.trim_end_matches('/').to_string()
            }
            None if tls.is_some() => format!("https://{listen}"),
            None => format!("http://{listen}"),
        };
        let log_format = match raw.log_format.as_deref().unwrap_or("text") {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(invalid(
                    "log_format",
                    format!("`{other}` is not a log format; use text or json"),
                ));
            }
        };
        let max_body_bytes = raw.max_body_bytes.unwrap_or(1 << 20);
        if max_body_bytes < 1024 {
            return Err(invalid(
                "max_body_bytes",
                format!("{max_body_bytes} is too small; use at least 1024"),
            ));
        }
        let positive = |name: &str, v: Option<u32>, default: u32| match v.unwrap_or(default) {
            0 => Err(invalid(name, "must be at least 1".into())),
            n => Ok(n),
        };
        let login_max_failures = positive("login_max_failures", raw.login_max_failures, 5)?;
        let client_auth_max_failures =
            positive("client_auth_max_failures", raw.client_auth_max_failures, 10)?;
        let lockout = match raw.lockout {
            Some(l) => Duration::parse(&l).map_err(|e| invalid("lockout", e.to_string()))?,
            None => Duration::minutes(15),
        };
        let trusted_proxies =
            crate::peer::TrustedProxies::parse(raw.trusted_proxies.as_deref().unwrap_or(""))
                .map_err(|e| invalid("trusted_proxies", e))?;
        let client_issuance_per_minute = match raw.client_issuance_per_minute {
            Some(0) => None,
            Some(n) => Some(n),
            None => Some(120),
        };
        let refresh_reuse_grace = raw
            .refresh_reuse_grace
            .map(|g| {
                let d = Duration::parse(&g).map_err(|e| e.to_string())?;
                if d.secs() > MAX_REFRESH_REUSE_GRACE {
                    return Err(format!(
                        "`{g}` is too long: a retry comes within seconds, and a longer grace lets a stolen refresh token go unnoticed; use at most 5m"
                    ));
                }
                Ok(d)
            })
            .transpose()
            .map_err(|e| invalid("refresh_reuse_grace", e))?;
        Ok(Settings {
            monitor,
            refresh_reuse_grace,
            db,
            listen,
            public_url,
            log_format,
            max_body_bytes,
            usage_flush_interval: std::time::Duration::from_secs(1),
            token_cache_ttl: CACHE_TTL,
            tls,
            login_max_failures,
            client_auth_max_failures,
            lockout,
            trusted_proxies,
            client_issuance_per_minute,
            durable_commits: raw.durable_commits.unwrap_or(true),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_layering() {
        let s = Settings::resolve(RawSettings::default()).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.public_url, "http://127.0.0.1:8080");
        let file = RawSettings {
            listen: Some("127.0.0.1:9000".into()),
            db: Some("a.db".into()),
            ..Default::default()
        };
        let env = RawSettings::from_env(|k| (k == "SCIMGATE_DB").then(|| "b.db".into())).unwrap();
        let s = Settings::resolve(file.overlay(env)).unwrap();
        assert_eq!(s.db.sqlite_path(), Some(std::path::Path::new("b.db")));
        assert_eq!(s.listen.port(), 9000);
    }

    #[test]
    fn bad_values_name_the_setting() {
        let err = Settings::resolve(RawSettings {
            listen: Some("localhost".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().starts_with("setting `listen`"), "{err}");
        let err = Settings::resolve(RawSettings {
            log_format: Some("xml".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("text or json"), "{err}");
        let err = Settings::resolve(RawSettings {
            lockout: Some("soon".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().starts_with("setting `lockout`"), "{err}");
        let err = Settings::resolve(RawSettings {
            refresh_reuse_grace: Some("1h".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(
            err.to_string().starts_with("setting `refresh_reuse_grace`"),
            "{err}"
        );
        assert_eq!(
            Settings::resolve(RawSettings {
                refresh_reuse_grace: Some("30s".into()),
                ..Default::default()
            })
            .unwrap()
            .refresh_reuse_grace,
            Some(Duration::seconds(30))
        );
        let err = Settings::resolve(RawSettings {
            tls_cert: Some("cert.pem".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("--tls-key"), "{err}");
        let err = Settings::resolve(RawSettings {
            tls_cert: Some("/nonexistent/cert.pem".into()),
            tls_key: Some("/nonexistent/key.pem".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().starts_with("setting `tls_cert`"), "{err}");
    }

    #[test]
    fn throttling_defaults_and_env() {
        let s = Settings::resolve(RawSettings::default()).unwrap();
        assert_eq!((s.login_max_failures, s.client_auth_max_failures), (5, 10));
        assert_eq!(s.lockout, Duration::minutes(15));
        let env = RawSettings::from_env(|k| match k {
            "SCIMGATE_LOGIN_MAX_FAILURES" => Some("3".into()),
            "SCIMGATE_LOCKOUT" => Some("1h".into()),
            _ => None,
        })
        .unwrap();
        let s = Settings::resolve(env).unwrap();
        assert_eq!(s.login_max_failures, 3);
        assert_eq!(s.lockout, Duration::hours(1));
        assert!(
            RawSettings::from_env(|k| (k == "SCIMGATE_LOGIN_MAX_FAILURES").then(|| "many".into()))
                .is_err()
        );
    }

    /// The four sources for a string, a number, a boolean and a duration setting:
    /// a flag beats everything, a variable beats the file, the file beats the default.
    #[test]
    fn each_source_beats_the_ones_below_it() {
        use clap::{Args, FromArgMatches};
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("scimgate.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:1001\"\nlog_format = \"json\"\n\
             login_max_failures = 7\nclient_issuance_per_minute = 8\n\
             durable_commits = false\nmonitoring = false\n\
             lockout = \"2h\"\nmonitor_tick = \"5s\"\n",
        )
        .unwrap();
        let env = |k: &str| match k {
            "SCIMGATE_LISTEN" => Some("127.0.0.1:1002".to_string()),
            "SCIMGATE_LOGIN_MAX_FAILURES" => Some("9".to_string()),
            "SCIMGATE_DURABLE_COMMITS" => Some("true".to_string()),
            "SCIMGATE_LOCKOUT" => Some("3h".to_string()),
            _ => None,
        };
        let cmd = SettingFlags::augment_args(clap::Command::new("serve"));
        let matches = cmd.get_matches_from(["serve", "--listen", "127.0.0.1:1003"]);
        let flags = SettingFlags::from_arg_matches(&matches).unwrap();
        let s =
            Settings::resolve(RawSettings::layered(Some(&file), env, flags.0).unwrap()).unwrap();
        // string: flag > env > file
        assert_eq!(s.listen.port(), 1003);
        // string: file > default
        assert_eq!(s.log_format, LogFormat::Json);
        // number: env > file; file > default
        assert_eq!(s.login_max_failures, 9);
        assert_eq!(s.client_issuance_per_minute, Some(8));
        // boolean: env > file; file > default
        assert!(s.durable_commits);
        assert!(!s.monitor.enabled);
        // duration: env > file; file > default
        assert_eq!(s.lockout, Duration::hours(3));
        assert_eq!(s.monitor.tick, std::time::Duration::from_secs(5));

        // Without the flag the variable wins, without both the file.
        let no_flags = || RawSettings::default();
        let s = Settings::resolve(RawSettings::layered(Some(&file), env, no_flags()).unwrap());
        assert_eq!(s.unwrap().listen.port(), 1002);
        let s = Settings::resolve(RawSettings::layered(Some(&file), |_| None, no_flags()).unwrap());
        let s = s.unwrap();
        assert_eq!(s.listen.port(), 1001);
        assert_eq!((s.login_max_failures, s.durable_commits), (7, false));
        assert_eq!(s.lockout, Duration::hours(2));
        // And without any source, the defaults.
        let s = Settings::resolve(RawSettings::layered(None, |_| None, no_flags()).unwrap());
        let s = s.unwrap();
        assert_eq!(s.listen.port(), 8080);
        assert_eq!((s.login_max_failures, s.durable_commits), (5, true));
        assert_eq!(s.lockout, Duration::minutes(15));
        assert_eq!(s.monitor.tick, std::time::Duration::from_secs(30));
    }

    #[test]
    fn unparsable_variables_and_file_keys_are_named() {
        let env_err = |var: &'static str, value: &'static str| {
            RawSettings::from_env(|k| (k == var).then(|| value.to_string()))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            env_err("SCIMGATE_LOGIN_MAX_FAILURES", "many"),
            "setting `SCIMGATE_LOGIN_MAX_FAILURES`: `many` is not a number"
        );
        assert_eq!(
            env_err("SCIMGATE_MAX_BODY_BYTES", "1MB"),
            "setting `SCIMGATE_MAX_BODY_BYTES`: `1MB` is not a number of bytes"
        );
        assert_eq!(
            env_err("SCIMGATE_SMTP_PORT", "70000"),
            "setting `SCIMGATE_SMTP_PORT`: `70000` is not a port number"
        );
        assert_eq!(
            env_err("SCIMGATE_MONITORING", "yes"),
            "setting `SCIMGATE_MONITORING`: `yes` is not true or false"
        );
        // Text settings take any text; a variable that is no setting is not looked at.
        let raw = RawSettings::from_env(|k| match k {
            "SCIMGATE_SMTP_PASSWORD" => Some("12345".into()),
            "SCIMGATE_SMTP_TO" => Some("a@b.example".into()),
            "SCIMGATE_TOOL_PASSWORD" => Some("x".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(raw.smtp_password.as_deref(), Some("12345"));
        assert_eq!(raw.smtp_to.as_deref(), Some("a@b.example"));

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:1\"\nlisten_port = 2\n").unwrap();
        let err = RawSettings::from_file(&file).unwrap_err().to_string();
        assert!(
            err.starts_with("cannot read the settings file") && err.contains("`listen_port`"),
            "{err}"
        );
        std::fs::write(&file, "durable_commits = \"yes\"\n").unwrap();
        let err = RawSettings::from_file(&file).unwrap_err().to_string();
        assert!(err.contains("cannot read the settings file"), "{err}");
    }

    /// A declared default that starts with a value in backticks is the one `resolve` uses:
    /// giving it explicitly changes nothing.
    #[test]
    fn declared_defaults_are_the_resolved_defaults() {
        let base = || RawSettings {
            webhook_url: Some("https://hooks.example/x".into()),
            smtp_host: Some("mail.example".into()),
            smtp_from: Some("scimgate@example.com".into()),
            ..RawSettings::default()
        };
        let defaults = format!("{:?}", Settings::resolve(base()).unwrap());
        let mut checked = 0;
        for setting in SETTINGS {
            let Some(value) = setting
                .default
                .strip_prefix('`')
                .and_then(|d| d.split('`').next())
            else {
                continue;
            };
            if value.contains('<') {
                continue; // a pattern such as `http://<listen>`, not a value
            }
            let mut raw = base();
            raw.set_text(setting.key, value.to_string(), setting.key)
                .unwrap();
            let given = format!("{:?}", Settings::resolve(raw).unwrap());
            assert_eq!(given, defaults, "the declared default of `{}`", setting.key);
            checked += 1;
        }
        assert!(checked >= 15, "only {checked} defaults checked");
    }
}
