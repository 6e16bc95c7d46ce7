//! Monitoring settings, resolved from the raw server settings (declared in
//! `settings/raw.rs`, tabled in `docs/settings.md`): the tick, the heartbeat log, the
//! expiry-warning lead times and the webhook and e-mail notifiers. Validated before the
//! server binds its port.

use std::path::{Path, PathBuf};

use crate::settings::{RawSettings, SettingsError};
use crate::time::Duration;

/// The default expiry-warning lead times.
pub const DEFAULT_LEADS: &str = "30d,7d,1d";

/// The default provisioning-error digest interval.
pub const DEFAULT_DIGEST_INTERVAL: &str = "15m";

/// How e-mail reaches the SMTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// Plain SMTP (only for a relay on the same host or network).
    None,
    /// Plain connection upgraded with STARTTLS (port 587).
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
}

/// A webhook receiver.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub url: String,
    /// HMAC-SHA256 key for the `X-Scimgate-Signature` header.
    pub secret: Option<String>,
    pub timeout: std::time::Duration,
    pub retries: u32,
}

/// An SMTP relay and who gets the mail.
#[derive(Clone)]
pub struct EmailSettings {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub username: Option<String>,
    pub password: Option<String>,
    pub from: String,
    pub to: Vec<String>,
}

impl std::fmt::Debug for EmailSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "REDACTED"))
            .field("from", &self.from)
            .field("to", &self.to)
            .finish()
    }
}

/// Validated monitoring settings.
#[derive(Debug, Clone)]
pub struct MonitorSettings {
    /// Attribute SCIM requests and run the monitor (off only to measure its cost).
    pub enabled: bool,
    pub tick: std::time::Duration,
    pub heartbeat_log: PathBuf,
    /// Lead times, longest first.
    pub leads: Vec<Duration>,
    /// Delete tokens that expired this long ago, once a day (`store::retention`); `None`
    /// keeps every token.
    pub token_retention: Option<Duration>,
    /// How long a client's provisioning errors are collected before one digest tells them,
    /// and the least time between two digests of one client (`monitor::digest`).
    pub digest_interval: Duration,
    pub webhook: Option<WebhookSettings>,
    pub email: Option<EmailSettings>,
}

/// Parse `30d,7d,1d` into lead times, longest first.
pub fn parse_leads(s: &str) -> Result<Vec<Duration>, String> {
    let mut leads = s
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| Duration::parse(p).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    leads.sort_by(|a, b| b.cmp(a));
    leads.dedup();
    let min = crate::store::SHORT_LIFETIME;
    if let Some(short) = leads.iter().find(|l| l.secs() < min) {
        return Err(format!(
            "the lead time {short} is shorter than {}: expiry warnings are for long-lived credentials",
            Duration::seconds(min)
        ));
    }
    Ok(leads)
}

fn std_duration(
    name: &str,
    v: Option<&str>,
    default: &str,
) -> Result<std::time::Duration, SettingsError> {
    let d = Duration::parse(v.unwrap_or(default)).map_err(|e| SettingsError::Invalid {
        name: name.into(),
        reason: e.to_string(),
    })?;
    Ok(std::time::Duration::from_secs(d.secs().unsigned_abs()))
}

/// Resolve the monitoring part of the settings; `db` (a SQLite store's file) locates the
/// default heartbeat log, which is otherwise in the current directory.
pub fn resolve(raw: &RawSettings, db: Option<&Path>) -> Result<MonitorSettings, SettingsError> {
    let invalid = |name: &str, reason: String| SettingsError::Invalid {
        name: name.into(),
        reason,
    };
    let tick = std_duration("monitor_tick", raw.monitor_tick.as_deref(), "30s")?;
    let heartbeat_log = match &raw.heartbeat_log {
        Some(p) => PathBuf::from(p),
        None => db
            .and_then(Path::parent)
            .filter(|d| !d.as_os_str().is_empty())
            .map(|d| d.join("scim_heartbeat.log"))
            .unwrap_or_else(|| PathBuf::from("scim_heartbeat.log")),
    };
    let leads = parse_leads(raw.expiry_warnings.as_deref().unwrap_or(DEFAULT_LEADS))
        .map_err(|e| invalid("expiry_warnings", e))?;
    let token_retention = raw
        .token_retention
        .as_deref()
        .map(Duration::parse)
        .transpose()
        .map_err(|e| invalid("token_retention", e.to_string()))?;
    let digest_interval = Duration::parse(
        raw.provisioning_digest_interval
            .as_deref()
            .unwrap_or(DEFAULT_DIGEST_INTERVAL),
    )
    .map_err(|e| invalid("provisioning_digest_interval", e.to_string()))?;
    if digest_interval.secs() < 1 {
        return Err(invalid(
            "provisioning_digest_interval",
            "must be at least 1s".into(),
        ));
    }
    let webhook = match &raw.webhook_url {
        None => None,
        Some(u) => {
            let parsed = url::Url::parse(u)
                .map_err(|_| invalid("webhook_url", format!("`{u}` is not an absolute URL")))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(invalid(
                    "webhook_url",
                    format!("`{u}` must be http or https"),
                ));
            }
            Some(WebhookSettings {
                url: u.clone(),
                secret: raw.webhook_secret.clone(),
                timeout: std_duration("webhook_timeout", raw.webhook_timeout.as_deref(), "10s")?,
                retries: raw.webhook_retries.unwrap_or(3),
            })
        }
    };
    let email = match &raw.smtp_host {
        None => None,
        Some(host) => {
            let security = match raw.smtp_tls.as_deref().unwrap_or("starttls") {
                "none" => SmtpSecurity::None,
                "starttls" => SmtpSecurity::StartTls,
                "tls" => SmtpSecurity::Tls,
                other => {
                    return Err(invalid(
                        "smtp_tls",
                        format!("`{other}` is not one of none, starttls, tls"),
                    ));
                }
            };
            let from = raw.smtp_from.clone().ok_or_else(|| {
                invalid(
                    "smtp_from",
                    "the sender address is required with smtp_host".into(),
                )
            })?;
            let to: Vec<String> = raw
                .smtp_to
                .as_deref()
                .unwrap_or("")
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            for addr in std::iter::once(&from).chain(to.iter()) {
                addr.parse::<lettre::Address>().map_err(|_| {
                    invalid("smtp_to", format!("`{addr}` is not an e-mail address"))
                })?;
            }
            Some(EmailSettings {
                host: host.clone(),
                port: raw.smtp_port.unwrap_or(match security {
                    SmtpSecurity::Tls => 465,
                    SmtpSecurity::StartTls => 587,
                    SmtpSecurity::None => 25,
                }),
                security,
                username: raw.smtp_username.clone(),
                password: raw.smtp_password.clone(),
                from,
                to,
            })
        }
    };
    Ok(MonitorSettings {
        enabled: raw.monitoring.unwrap_or(true),
        tick,
        heartbeat_log,
        leads,
        token_retention,
        digest_interval,
        webhook,
        email,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let m = resolve(
            &RawSettings::default(),
            Some(Path::new("/var/lib/scimgate/s.db")),
        )
        .unwrap();
        assert!(m.enabled);
        assert_eq!(m.tick.as_secs(), 30);
        assert_eq!(
            m.heartbeat_log,
            PathBuf::from("/var/lib/scimgate/scim_heartbeat.log")
        );
        assert_eq!(
            m.leads,
            vec![Duration::days(30), Duration::days(7), Duration::days(1)]
        );
        assert!(m.webhook.is_none() && m.email.is_none());
    }

    #[test]
    fn token_retention_is_off_unless_set_and_must_be_a_duration() {
        let m = resolve(&RawSettings::default(), Some(Path::new("s.db"))).unwrap();
        assert_eq!(m.token_retention, None, "every token is kept by default");
        let raw = RawSettings {
            token_retention: Some("90d".into()),
            ..RawSettings::default()
        };
        let m = resolve(&raw, Some(Path::new("s.db"))).unwrap();
        assert_eq!(m.token_retention, Some(Duration::days(90)));
        let bad = RawSettings {
            token_retention: Some("forever".into()),
            ..RawSettings::default()
        };
        let err = resolve(&bad, Some(Path::new("s.db")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("token_retention"), "{err}");
    }

    #[test]
    fn the_digest_interval_defaults_to_15m_and_must_be_a_positive_duration() {
        let m = resolve(&RawSettings::default(), Some(Path::new("s.db"))).unwrap();
        assert_eq!(m.digest_interval, Duration::minutes(15));
        for bad in ["0s", "soon"] {
            let raw = RawSettings {
                provisioning_digest_interval: Some(bad.into()),
                ..RawSettings::default()
            };
            let err = resolve(&raw, Some(Path::new("s.db")))
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with("setting `provisioning_digest_interval`"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn leads_shorter_than_an_hour_are_refused() {
        assert_eq!(
            parse_leads("2h, 1h").unwrap(),
            vec![Duration::hours(2), Duration::hours(1)]
        );
        let err = parse_leads("7d,30m").unwrap_err();
        assert!(err.contains("30m") && err.contains("long-lived"), "{err}");
    }

    #[test]
    fn notifiers_are_validated() {
        let raw = RawSettings {
            smtp_host: Some("mail.example".into()),
            smtp_from: Some("scimgate@example.com".into()),
            smtp_to: Some("ops@example.com, iam@example.com".into()),
            webhook_url: Some("https://hooks.example/x".into()),
            monitor_tick: Some("2s".into()),
            ..RawSettings::default()
        };
        let m = resolve(&raw, Some(Path::new("s.db"))).unwrap();
        assert_eq!(m.tick.as_secs(), 2);
        let e = m.email.unwrap();
        assert_eq!((e.port, e.to.len()), (587, 2));
        assert!(!format!("{e:?}").contains("password\": Some(\""));
        let bad = RawSettings {
            smtp_host: Some("h".into()),
            smtp_from: Some("x".into()),
            smtp_to: Some("y@z.example".into()),
            ..RawSettings::default()
        };
        assert!(
            resolve(&bad, Some(Path::new("s.db")))
                .unwrap_err()
                .to_string()
                .contains("not an e-mail address")
        );
        let bad = RawSettings {
            expiry_warnings: Some("30d,soon".into()),
            ..RawSettings::default()
        };
        assert!(
            resolve(&bad, Some(Path::new("s.db")))
                .unwrap_err()
                .to_string()
                .starts_with("setting `expiry_warnings`")
        );
        let bad = RawSettings {
            webhook_url: Some("ftp://x".into()),
            ..RawSettings::default()
        };
        assert!(resolve(&bad, Some(Path::new("s.db"))).is_err());
    }
}
