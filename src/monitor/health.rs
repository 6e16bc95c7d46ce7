//! A client's health state from what the monitor recorded — pure, so the server's monitor
//! and `config status` decide the same way.
//!
//! - failing: the latest call was refused because the client's credential is dead — a
//!   SCIM call's bearer token expired or was revoked, or the token endpoint refused the
//!   client's refresh token (expired, revoked, reused) or its expired secret. Provisioning
//!   is broken now; the next accepted SCIM call clears it;
//! - missed: no successful call for `missed` × the heartbeat interval (an error);
//! - late: no successful call for longer than one interval;
//! - healthy: calls succeed as expected; idle: no heartbeat expected and no call yet.
//!
//! A client that expects heartbeats and never called counts its silence from registration.

use crate::model::{Client, ClientHealth, HealthState};
use crate::time::Timestamp;

#[cfg(doc)]
use super::events::Verdict;

/// Failure reasons that mean the client's credentials stopped working (the names of
/// [`Verdict`]s; `forbidden`, a scope the client lacks, is the IdP's misconfiguration).
pub fn is_credential_failure(reason: &str) -> bool {
    matches!(
        reason,
        "expired"
            | "revoked"
            | "refresh_token_expired"
            | "refresh_token_revoked"
            | "refresh_token_reused"
            | "client_secret_expired"
    )
}

/// What broke for a failing client, and what to do about it, as two clauses: ("its SCIM
/// calls are refused because token tok_… is revoked (HTTP 401)", "issue a new token and
/// put it in the IdP"). The monitor's alerts say these; `config status` the short form
/// ([`failure_note`]).
pub fn failure_clauses(h: &ClientHealth) -> (String, &'static str) {
    const AUTHORIZE_AGAIN: &str = "authorize the IdP again so that it gets new tokens";
    let token = h.last_token_id.as_deref().unwrap_or("?");
    let status = h.last_failure_status.unwrap_or(401);
    match h.last_failure_reason.as_deref().unwrap_or("invalid") {
        "refresh_token_expired" => (
            format!(
                "the token endpoint refuses its refresh token {token}, which has expired (HTTP {status})"
            ),
            AUTHORIZE_AGAIN,
        ),
        "refresh_token_revoked" => (
            format!(
                "the token endpoint refuses its refresh token {token}, which is revoked (HTTP {status})"
            ),
            AUTHORIZE_AGAIN,
        ),
        "refresh_token_reused" => (
            format!(
                "its refresh token {token} was presented again after it had been used, so every token of that grant is revoked (HTTP {status}); someone may hold a copy"
            ),
            "authorize the IdP again, and find out who else has its tokens",
        ),
        "client_secret_expired" => (
            format!(
                "the token endpoint refuses its client secret, which has expired (HTTP {status})"
            ),
            "rotate it with `config rotate-client-secret` and put the new secret in the IdP",
        ),
        reason => (
            format!("its SCIM calls are refused because token {token} is {reason} (HTTP {status})"),
            "issue a new token and put it in the IdP",
        ),
    }
}

/// [`failure_clauses`] in a few words, for the NOTE column of `config status`.
pub fn failure_note(h: &ClientHealth) -> String {
    let token = h.last_token_id.as_deref().unwrap_or("?");
    match h.last_failure_reason.as_deref().unwrap_or("invalid") {
        "refresh_token_expired" => format!("token endpoint refused: refresh token {token} expired"),
        "refresh_token_revoked" => format!("token endpoint refused: refresh token {token} revoked"),
        "refresh_token_reused" => format!("refresh token {token} reused: grant revoked"),
        "client_secret_expired" => "token endpoint refused: client secret expired".into(),
        reason => format!("calls refused: token {token} {reason}"),
    }
}

/// The state `client` is in at `now`, given its recorded calls.
pub fn evaluate(client: &Client, h: Option<&ClientHealth>, now: Timestamp) -> HealthState {
    let last_success = h.and_then(|h| h.last_success_at);
    if let Some(h) = h {
        if let (Some(f), Some(reason)) = (h.last_failure_at, h.last_failure_reason.as_deref()) {
            if is_credential_failure(reason) && last_success.is_none_or(|s| f > s) {
                return HealthState::Failing;
            }
        }
    }
    match client.heartbeat {
        None if last_success.is_some() => HealthState::Healthy,
        None => HealthState::Idle,
        Some(hb) => {
            let silent = now - last_success.unwrap_or(client.created_at);
            let interval = hb.interval.secs();
            if silent >= interval.saturating_mul(i64::from(hb.missed)) {
                HealthState::Missed
            } else if silent > interval {
                HealthState::Late
            } else if last_success.is_some() {
                HealthState::Healthy
            } else {
                HealthState::Idle
            }
        }
    }
}

/// How bad a state is: 0 ok, 1 warning, 2 critical (the exit codes of `config status`).
pub fn severity(state: HealthState) -> u8 {
    match state {
        HealthState::Idle | HealthState::Healthy => 0,
        HealthState::Late => 1,
        HealthState::Missed | HealthState::Failing => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AuthMethod, ClientProfile, GrantType, Heartbeat, IdpKind, IdpRef, Scope};
    use crate::time::Duration;

    fn client(hb: Option<Heartbeat>) -> Client {
        Client {
            id: "cl_1".into(),
            name: "Entra".into(),
            profile: ClientProfile::Web,
            grants: vec![GrantType::ClientCredentials],
            scopes: vec![Scope::DirectoryWrite],
            redirect_uris: vec![],
            auth_method: AuthMethod::ClientSecretBasic,
            require_consent: false,
            has_secret: true,
            secret_expires_at: None,
            secret_ttl: None,
            access_token_ttl: Duration::hours(1),
            refresh_token_ttl: Duration::days(90),
            idp: IdpRef {
                kind: IdpKind::Entra,
                app_id: None,
                tenant: None,
                owner: None,
            },
            heartbeat: hb,
            created_at: 0,
            updated_at: 0,
            token_epoch: 0,
            disabled_at: None,
            require_pkce: false,
            email_domains: Vec::new(),
            alert_emails: Vec::new(),
        }
    }

    fn health(success: Option<i64>, failure: Option<(i64, &str)>) -> ClientHealth {
        ClientHealth {
            client_id: "cl_1".into(),
            state: HealthState::Idle,
            state_since: 0,
            last_success_at: success,
            last_success_ip: None,
            last_failure_at: failure.map(|f| f.0),
            last_failure_status: failure.map(|_| 401),
            last_failure_reason: failure.map(|f| f.1.to_string()),
            last_token_id: None,
        }
    }

    #[test]
    fn heartbeat_states() {
        let hb = Some(Heartbeat {
            interval: Duration::minutes(40),
            missed: 3,
        });
        let c = client(hb);
        assert_eq!(evaluate(&c, None, 60), HealthState::Idle);
        assert_eq!(evaluate(&c, None, 41 * 60), HealthState::Late);
        assert_eq!(evaluate(&c, None, 120 * 60), HealthState::Missed);
        let h = health(Some(1000), None);
        assert_eq!(evaluate(&c, Some(&h), 1000 + 2400), HealthState::Healthy);
        assert_eq!(evaluate(&c, Some(&h), 1000 + 2401), HealthState::Late);
        assert_eq!(evaluate(&c, Some(&h), 1000 + 7200), HealthState::Missed);
    }

    #[test]
    fn credential_failures_win_until_a_success() {
        let c = client(None);
        assert_eq!(evaluate(&c, None, 0), HealthState::Idle);
        assert_eq!(
            evaluate(&c, Some(&health(Some(10), None)), 99),
            HealthState::Healthy
        );
        assert_eq!(
            evaluate(&c, Some(&health(Some(10), Some((20, "expired")))), 99),
            HealthState::Failing
        );
        assert_eq!(
            evaluate(&c, Some(&health(Some(30), Some((20, "revoked")))), 99),
            HealthState::Healthy
        );
        // A scope refusal is the IdP's misconfiguration, not a dead credential.
        assert_eq!(
            evaluate(&c, Some(&health(Some(10), Some((20, "forbidden")))), 99),
            HealthState::Healthy
        );
    }
}
