//! Signing in with a login account (`config create-user`), shared by the authorization
//! pages and the operator pages: argon2id verification off the async executor (against a
//! dummy hash for unknown names, so timing does not tell them apart), throttling per
//! account and per address with lockout, and an audit event for every attempt.

use actix_web::HttpRequest;
use actix_web::http::StatusCode;
use actix_web::web;

use super::WebError;
use crate::http::AppState;
use crate::model::NewAuditEvent;

/// What a sign-in attempt came to.
pub enum LoginOutcome {
    /// The account name as stored.
    Accepted(String),
    /// Refused: the status to answer with and the sentence to show.
    Refused(StatusCode, String),
}

/// The client's address as the TCP peer sees it.
pub fn peer_ip(req: &HttpRequest) -> String {
    req.peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// Check `username`/`password`; `client_id` names what the sign-in is for (None: the
/// operator pages).
pub async fn check_login(
    state: &AppState,
    req: &HttpRequest,
    username: &str,
    password: &str,
    client_id: Option<&str>,
) -> Result<LoginOutcome, WebError> {
    let now = state.clock.now();
    // Longer names do not exist (see `config create-user`); cut them before they reach the
    // throttle's memory or the audit log.
    let username: String = username.trim().chars().take(65).collect();
    let password = password.to_string();
    let ip = peer_ip(req);
    let user_key = format!("login-user:{}", username.to_lowercase());
    let ip_key = format!("login-ip:{ip}");
    let keys = [user_key.as_str(), ip_key.as_str()];
    if let Some(wait) = state.login_throttle.locked(&keys, now) {
        return Ok(LoginOutcome::Refused(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "Too many failed sign-in attempts. Try again in {} minute(s).",
                (wait + 59) / 60
            ),
        ));
    }
    let store = state.store.clone();
    let u = username.clone();
    let verified = web::block(
        move || -> Result<Option<String>, crate::store::StoreError> {
            let found = if u.is_empty() || u.len() > 64 {
                None
            } else {
                store.user_with_hash(&u)?
            };
            let hash = found
                .as_ref()
                .map(|(_, h)| h.as_str())
                .unwrap_or(super::dummy_hash());
            let ok = crate::password::verify(&password, hash);
            Ok(found.filter(|_| ok).map(|(user, _)| user.username))
        },
    )
    .await??;
    let Some(user) = verified else {
        let failure = state.login_throttle.failure(&keys, now);
        let mut events = vec![NewAuditEvent {
            actor: format!("ip:{ip}"),
            action: "user.login".into(),
            outcome: "failure".into(),
            client_id: client_id.map(str::to_string),
            detail: Some(format!("failed sign-in as `{username}`")),
            ..NewAuditEvent::default()
        }];
        events.extend(failure.lockout_events("sign-ins", state.settings.lockout));
        let store = state.store.clone();
        web::block(move || store.audit_many(&events, now)).await??;
        actix_web::rt::time::sleep(failure.delay).await;
        return Ok(LoginOutcome::Refused(
            StatusCode::UNAUTHORIZED,
            "Wrong user name or password.".into(),
        ));
    };
    state.login_throttle.success(&[user_key.as_str()]);
    let e = NewAuditEvent {
        actor: format!("user:{user}"),
        action: "user.login".into(),
        outcome: "success".into(),
        client_id: client_id.map(str::to_string),
        detail: Some(format!(
            "signed in from {ip}{}",
            if client_id.is_none() {
                " (operator pages)"
            } else {
                ""
            }
        )),
        ..NewAuditEvent::default()
    };
    let store = state.store.clone();
    web::block(move || store.audit(&e, now)).await??;
    Ok(LoginOutcome::Accepted(user))
}
