//! Server settings, resolved once and validated before the port is bound.
//!
//! Sources, later ones winning: built-in defaults, the TOML file given with `--config`
//! (env `SCIMGATE_CONFIG`), `SCIMGATE_*` environment variables, command-line flags.
//!
//! | setting | TOML key | env | flag | default |
//! |---|---|---|---|---|
//! | store file | `db` | `SCIMGATE_DB` | `--db` | `./scimgate.db` |
//! | listen address | `listen` | `SCIMGATE_LISTEN` | `--listen` | `127.0.0.1:8080` |
//! | public base URL | `public_url` | `SCIMGATE_PUBLIC_URL` | `--public-url` | `http://<listen>` |
//! | log format | `log_format` | `SCIMGATE_LOG_FORMAT` | `--log-format` | `text` (or `json`) |
//! | request body limit (bytes) | `max_body_bytes` | `SCIMGATE_MAX_BODY_BYTES` | — | `1048576` |

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

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

/// Raw values from one source; every field optional so sources can be layered.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSettings {
    pub db: Option<String>,
    pub listen: Option<String>,
    pub public_url: Option<String>,
    pub log_format: Option<String>,
    pub max_body_bytes: Option<usize>,
}

impl RawSettings {
    /// Values from `SCIMGATE_*` variables (through `get`, so tests need not touch the
    /// process environment).
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<RawSettings, SettingsError> {
        Ok(RawSettings {
            db: get("SCIMGATE_DB"),
            listen: get("SCIMGATE_LISTEN"),
            public_url: get("SCIMGATE_PUBLIC_URL"),
            log_format: get("SCIMGATE_LOG_FORMAT"),
            max_body_bytes: get("SCIMGATE_MAX_BODY_BYTES")
                .map(|v| {
                    v.parse().map_err(|_| SettingsError::Invalid {
                        name: "SCIMGATE_MAX_BODY_BYTES".into(),
                        reason: format!("`{v}` is not a number of bytes"),
                    })
                })
                .transpose()?,
        })
    }

    /// Values from a TOML file.
    pub fn from_file(path: &Path) -> Result<RawSettings, SettingsError> {
        let text = std::fs::read_to_string(path).map_err(|e| SettingsError::File {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        toml::from_str(&text).map_err(|e| SettingsError::File {
            path: path.display().to_string(),
            reason: e.message().to_string(),
        })
    }

    /// `self` with every value `over` sets replacing ours.
    pub fn overlay(self, over: RawSettings) -> RawSettings {
        RawSettings {
            db: over.db.or(self.db),
            listen: over.listen.or(self.listen),
            public_url: over.public_url.or(self.public_url),
            log_format: over.log_format.or(self.log_format),
            max_body_bytes: over.max_body_bytes.or(self.max_body_bytes),
        }
    }
}

/// Validated server settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub db: PathBuf,
    pub listen: SocketAddr,
    /// Base URL clients use to reach us (issuer, SCIM `meta.location`), no trailing slash.
    pub public_url: String,
    pub log_format: LogFormat,
    pub max_body_bytes: usize,
    /// How often recorded token uses are written to the store.
    pub usage_flush_interval: std::time::Duration,
    /// How long a validated bearer token is trusted without asking the store again; a
    /// revocation made by another process (`config revoke-token`) takes effect within it.
    pub token_cache_ttl: std::time::Duration,
}

impl Settings {
    /// Validate layered raw values.
    pub fn resolve(raw: RawSettings) -> Result<Settings, SettingsError> {
        let invalid = |name: &str, reason: String| SettingsError::Invalid {
            name: name.into(),
            reason,
        };
        let listen_s = raw.listen.unwrap_or_else(|| "127.0.0.1:8080".into());
        let listen: SocketAddr = listen_s.parse().map_err(|_| {
            invalid(
                "listen",
                format!("`{listen_s}` is not an address:port such as 127.0.0.1:8080"),
            )
        })?;
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
        Ok(Settings {
            db: PathBuf::from(raw.db.unwrap_or_else(|| "scimgate.db".into())),
            listen,
            public_url,
            log_format,
            max_body_bytes,
            usage_flush_interval: std::time::Duration::from_secs(1),
            token_cache_ttl: std::time::Duration::from_secs(1),
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
        assert_eq!(s.db, PathBuf::from("b.db"));
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
    }
}
