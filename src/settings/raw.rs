//! Every server setting, declared once: its TOML key and type, what it is, its default as
//! the docs show it, and its flag if it has one. From this come the raw struct (the TOML
//! file, `deny_unknown_fields`), the `SCIMGATE_*` variables, the `scimgate serve` flags
//! ([`super::flags`]), the layering and the table in `docs/settings.md` ([`super::docs`]).
//! Validation and the real defaults are in [`Settings::resolve`](super::Settings::resolve)
//! and `monitor::config::resolve`.
//!
//! To add a setting: an entry here, its use in `resolve`, then
//! `SCIMGATE_BLESS_DOCS=1 cargo test settings::docs` to write it into the docs table.

use std::path::Path;

use super::SettingsError;
use super::declare::declare_settings;

declare_settings! {
    /// store: a SQLite file, or a postgres:// URL (docs/deploy.md)
    db: String {
        default: "`scimgate.db` in the working directory",
        flag: "The store: its SQLite file, or a postgres:// URL",
    }
    /// listen address
    listen: String {
        default: "`127.0.0.1:8080`",
        flag: "Address to listen on, e.g. 127.0.0.1:8080",
    }
    /// public base URL (issuer, SCIM `meta.location`)
    public_url: String {
        default: "`http://<listen>`, with TLS `https://<listen>`",
        flag: "Base URL clients use to reach this server",
    }
    /// log format
    log_format: String {
        default: "`text` (or `json`)",
        flag: "Log format: text or json",
    }
    /// request body limit (bytes)
    max_body_bytes: usize {
        default: "`1048576`",
        parse_error: "a number of bytes",
    }
    /// TLS certificate chain (PEM); goes with `tls_key`
    tls_cert: String {
        default: "none (plain HTTP)",
        flag: "TLS certificate chain (PEM); with --tls-key the server speaks only HTTPS",
    }
    /// TLS private key (PEM)
    tls_key: String {
        default: "none",
        flag: "TLS private key (PEM) of --tls-cert",
    }
    /// failed sign-ins per account and address before back-off
    login_max_failures: u32 { default: "`5`" }
    /// (accepted, no longer used: client secrets are never locked out)
    client_auth_max_failures: u32 { default: "—" }
    /// longest sign-in back-off
    lockout: String { default: "`15m`" }
    /// proxies whose `X-Forwarded-For` / `Forwarded` is believed (comma-separated IPs, CIDRs)
    trusted_proxies: String { default: "none" }
    /// tokens one client may be issued per minute (0: no limit)
    client_issuance_per_minute: u32 { default: "`120`" }
    /// commits survive power loss (fsync per commit; `false`: only a crash of the process)
    durable_commits: bool { default: "`true`" }
    /// refresh-token retry grace (at most `5m`)
    refresh_reuse_grace: String { default: "none (every reuse revokes)" }
    /// lifecycle monitoring on (off only to measure its cost)
    monitoring: bool { default: "`true`" }
    /// monitor tick (seconds allowed: `2s`)
    monitor_tick: String { default: "`30s`" }
    /// heartbeat log file
    heartbeat_log: String { default: "`scim_heartbeat.log` next to the store" }
    /// expiry warning lead times (each at least `1h`)
    expiry_warnings: String { default: "`30d,7d,1d`" }
    /// delete tokens expired this long (daily)
    token_retention: String { default: "none (keep all)" }
    /// provisioning-error digest interval (per client)
    provisioning_digest_interval: String { default: "`15m`" }
    /// webhook URL (JSON POST)
    webhook_url: String { default: "none" }
    /// webhook HMAC secret
    webhook_secret: String { default: "none (unsigned)" }
    /// webhook timeout
    webhook_timeout: String { default: "`10s`" }
    /// webhook retries
    webhook_retries: u32 { default: "`3`" }
    /// SMTP server
    smtp_host: String { default: "none (no e-mail)" }
    /// SMTP port
    smtp_port: u16 {
        default: "by `smtp_tls`: 587, with `tls` 465, with `none` 25",
        parse_error: "a port number",
    }
    /// SMTP security
    smtp_tls: String { default: "`starttls` (or `tls`, `none`)" }
    /// SMTP login name
    smtp_username: String { default: "none" }
    /// SMTP password
    smtp_password: String { default: "none" }
    /// mail sender
    smtp_from: String { default: "— (required with `smtp_host`)" }
    /// mail recipients (comma-separated)
    smtp_to: String { default: "none" }
}

impl RawSettings {
    /// Values from `SCIMGATE_*` variables (through `get`, so tests need not touch the
    /// process environment). Other `SCIMGATE_*` variables are not looked at.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<RawSettings, SettingsError> {
        let mut raw = RawSettings::default();
        for setting in SETTINGS {
            let var = setting.env_var();
            if let Some(text) = get(&var) {
                raw.set_text(setting.key, text, &var)?;
            }
        }
        Ok(raw)
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

    /// The sources layered, later ones winning: the TOML `file` (if any), the `SCIMGATE_*`
    /// variables through `env`, the command-line `flags`. The built-in defaults, below
    /// them all, are applied by [`Settings::resolve`](super::Settings::resolve).
    pub fn layered(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
        flags: RawSettings,
    ) -> Result<RawSettings, SettingsError> {
        let file = match file {
            Some(p) => RawSettings::from_file(p)?,
            None => RawSettings::default(),
        };
        Ok(file.overlay(RawSettings::from_env(env)?).overlay(flags))
    }
}
