//! `/metrics` in the Prometheus text format (prometheus-client), built at scrape time from
//! the store and the monitor's counters:
//!
//! - `scimgate_token_expiry_timestamp_seconds{token_id,client_id,kind}` — live tokens that
//!   live longer than a day (CLI-issued tokens, refresh tokens), the [`EXPIRY_SERIES`]
//!   soonest to expire, and `scimgate_token_expiry_series_truncated`, 1 when there are more;
//! - `scimgate_client_last_heartbeat_age_seconds{client_id,client_name}` — seconds since the
//!   last successful SCIM call (since registration if none);
//! - `scimgate_client_state{client_id,client_name,state}` — 1 for the current state;
//! - `scimgate_client_heartbeat_interval_seconds{client_id,client_name}` — the expectation;
//! - `scimgate_scim_requests_total{client_id,status}` — attributed SCIM requests;
//! - `scimgate_provisioning_errors_total{client_id,status}` — SCIM requests refused with
//!   an error the IdP reports for a user or group (`provisioning`), and
//!   `scimgate_provisioning_errors_dropped_total` — those dropped to bound the store;
//! - `scimgate_provisioning_digests_total{outcome}` — digests of them `sent` or `failed`
//!   (kept for the next one);
//! - `scimgate_token_requests_total{grant_type,outcome}` — token endpoint requests;
//! - `scimgate_client_auth_failures_total`, `scimgate_login_failures_total` — every failed
//!   client authentication and sign-in (the audit log keeps them within a budget);
//! - `scimgate_login_shed_total` — sign-ins refused unchecked because their address (or
//!   known-device mark) already had its share being checked (429) or too many already
//!   waited for a check (503; `AppState::password_gate`, `known_device_gate`), and `scimgate_scim_searches_shed_total` — SCIM lists and
//!   searches refused (429 or 503) because their client, or all clients, had as many
//!   running or waiting as allowed;
//! - `scimgate_issuance_rate_limited_total{client_id}` — token requests refused because
//!   the client passed `client_issuance_per_minute`;
//! - `scimgate_log_lines_dropped_total` — log lines the non-blocking writer dropped.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::Monitor;
use super::health;
use crate::model::HealthState;
use crate::store::{Store, StoreError};
use crate::time::Timestamp;

type Labels = Vec<(String, String)>;

/// At most this many `scimgate_token_expiry_timestamp_seconds` series, the soonest to
/// expire: what an alert on them needs, and a bound on what a scrape costs.
pub const EXPIRY_SERIES: usize = 1000;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Counters the server keeps outside the monitor (throttles, rate limits).
#[derive(Debug, Clone, Default)]
pub struct ServerCounters {
    pub client_auth_failures: u64,
    pub login_failures: u64,
    /// Sign-ins refused unchecked because their address, or all, had too many waiting.
    pub logins_shed: u64,
    /// SCIM lists and searches refused because too many ran or waited (`search_gate`).
    pub searches_shed: u64,
    /// Log lines the non-blocking writer dropped because it fell behind.
    pub log_lines_dropped: u64,
    /// Per client id.
    pub issuance_rate_limited: Vec<(String, u64)>,
}

/// Render the metrics page.
pub fn render(
    store: &Store,
    monitor: &Monitor,
    server: &ServerCounters,
    now: Timestamp,
) -> Result<String, StoreError> {
    let mut registry = Registry::default();

    let expiry = Family::<Labels, Gauge>::default();
    // The soonest EXPIRY_SERIES only: a page of every long-lived token grew with the store,
    // for anyone who asked (`/metrics` is unauthenticated; bench/RESULTS.md).
    // (One more is read to tell whether any is left out; counting them all would read
    // every one again.)
    let mut listed = store.long_lived_tokens(now, 86_400, EXPIRY_SERIES + 1)?;
    let truncated = listed.len() > EXPIRY_SERIES;
    listed.truncate(EXPIRY_SERIES);
    for t in &listed {
        expiry
            .get_or_create(&labels(&[
                ("token_id", t.id.as_str()),
                ("client_id", &t.client_id),
                ("kind", t.kind.as_str()),
            ]))
            .set(t.expires_at);
    }
    registry.register(
        "scimgate_token_expiry_timestamp_seconds",
        format!(
            "When each live long-lived token expires (Unix seconds); the {EXPIRY_SERIES} soonest"
        ),
        expiry,
    );
    let left_out = Gauge::<i64>::default();
    left_out.set(i64::from(truncated));
    registry.register(
        "scimgate_token_expiry_series_truncated",
        format!(
            "1 when more live long-lived tokens exist than the {EXPIRY_SERIES} expiry series list"
        ),
        left_out,
    );

    let age = Family::<Labels, Gauge>::default();
    let state = Family::<Labels, Gauge>::default();
    let interval = Family::<Labels, Gauge>::default();
    let healths = store.client_health()?;
    for c in store.list_clients()? {
        let h = healths.iter().find(|h| h.client_id == c.id);
        let last = h.and_then(|h| h.last_success_at).unwrap_or(c.created_at);
        let l = labels(&[("client_id", &c.id), ("client_name", &c.name)]);
        age.get_or_create(&l).set(now - last);
        if let Some(hb) = c.heartbeat {
            interval.get_or_create(&l).set(hb.interval.secs());
        }
        let current = health::evaluate(&c, h, now);
        for s in [
            HealthState::Idle,
            HealthState::Healthy,
            HealthState::Late,
            HealthState::Missed,
            HealthState::Failing,
        ] {
            state
                .get_or_create(&labels(&[
                    ("client_id", &c.id),
                    ("client_name", &c.name),
                    ("state", s.as_str()),
                ]))
                .set(i64::from(s == current));
        }
    }
    registry.register(
        "scimgate_client_last_heartbeat_age_seconds",
        "Seconds since the client's last successful SCIM call",
        age,
    );
    registry.register(
        "scimgate_client_state",
        "1 for the client's current health state",
        state,
    );
    registry.register(
        "scimgate_client_heartbeat_interval_seconds",
        "How often the client is expected to call",
        interval,
    );

    let counters = monitor.counters();
    let scim = Family::<Labels, Counter>::default();
    for (client, per_status) in &counters.scim {
        for (status, n) in per_status {
            scim.get_or_create(&labels(&[
                ("client_id", client),
                ("status", &status.to_string()),
            ]))
            .inc_by(*n);
        }
    }
    registry.register(
        "scimgate_scim_requests",
        "Attributed SCIM requests by client and HTTP status",
        scim,
    );
    let provisioning = Family::<Labels, Counter>::default();
    for (client, per_status) in &counters.provisioning_errors {
        for (status, n) in per_status {
            provisioning
                .get_or_create(&labels(&[
                    ("client_id", client),
                    ("status", &status.to_string()),
                ]))
                .inc_by(*n);
        }
    }
    registry.register(
        "scimgate_provisioning_errors",
        "SCIM requests refused with an error the IdP reports for a user or group, by client and HTTP status",
        provisioning,
    );
    let dropped = Counter::<u64>::default();
    dropped.inc_by(counters.provisioning_errors_dropped);
    registry.register(
        "scimgate_provisioning_errors_dropped",
        "Provisioning errors dropped from the store to keep each client within its bound",
        dropped,
    );
    let digests = Family::<Labels, Counter>::default();
    let (sent, failed) = monitor.digest_counts();
    for (outcome, n) in [("sent", sent), ("failed", failed)] {
        digests
            .get_or_create(&labels(&[("outcome", outcome)]))
            .inc_by(n);
    }
    registry.register(
        "scimgate_provisioning_digests",
        "Provisioning-error digests delivered to every notifier (sent) or not (failed; their errors wait for the next)",
        digests,
    );
    let token = Family::<Labels, Counter>::default();
    for ((grant, outcome), n) in &counters.token_endpoint {
        token
            .get_or_create(&labels(&[("grant_type", grant), ("outcome", outcome)]))
            .inc_by(*n);
    }
    registry.register(
        "scimgate_token_requests",
        "Token endpoint requests by grant type and outcome",
        token,
    );

    let failures = |name: &str, help: &str, n: u64, registry: &mut Registry| {
        let c = Counter::<u64>::default();
        c.inc_by(n);
        registry.register(name, help, c);
    };
    failures(
        "scimgate_client_auth_failures",
        "Failed client authentications at the OAuth2 endpoints",
        server.client_auth_failures,
        &mut registry,
    );
    failures(
        "scimgate_login_failures",
        "Failed sign-ins on the login pages",
        server.login_failures,
        &mut registry,
    );
    failures(
        "scimgate_login_shed",
        "Sign-ins refused unchecked because their address (or known-device mark) had its share being checked (429) or too many waited (503)",
        server.logins_shed,
        &mut registry,
    );
    failures(
        "scimgate_scim_searches_shed",
        "SCIM lists and searches refused (429, 503) because their client or all clients had too many running or waiting",
        server.searches_shed,
        &mut registry,
    );
    failures(
        "scimgate_log_lines_dropped",
        "Log lines dropped because the log writer fell behind (requests are never held up)",
        server.log_lines_dropped,
        &mut registry,
    );
    let limited = Family::<Labels, Counter>::default();
    for (client, n) in &server.issuance_rate_limited {
        limited
            .get_or_create(&labels(&[("client_id", client)]))
            .inc_by(*n);
    }
    registry.register(
        "scimgate_issuance_rate_limited",
        "Token requests refused because the client passed client_issuance_per_minute",
        limited,
    );

    let mut out = String::new();
    encode(&mut out, &registry).map_err(|e| StoreError::Database(e.to_string()))?;
    Ok(out)
}
