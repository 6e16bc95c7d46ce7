//! Signing in with a login account (`config create-user`), shared by the authorization
//! pages and the operator pages: argon2id verification off the async executor (against a
//! dummy hash for unknown names, so timing does not tell them apart), a few at a time
//! and two per address ([`crate::sync::Gate`]; 429 for a third from one address, 503 when
//! too many wait), back-off per (account, address) and, looser, per address
//! ([`crate::throttle`]), and audit events within the throttle's budget. An unknown
//! account name is audited only as a fingerprint: it may be a password typed into the
//! name field. A browser that once signed in to the account presents its known-device
//! mark ([`super::device`]) and is checked in a lane of its own, which others' failures
//! neither fill nor back off; a right password renews the mark.

use actix_web::HttpRequest;
use actix_web::http::StatusCode;
use actix_web::web;

use super::WebError;
use super::device;
use crate::model::AuditAction;
use crate::model::NewAuditEvent;
use crate::state::AppState;
use crate::sync::Refused;

/// What a sign-in attempt came to.
pub enum LoginOutcome {
    /// The account as stored, and the cookie of a new known-device mark for it (to be
    /// sent with whatever the page answers).
    Accepted(crate::model::User, actix_web::cookie::Cookie<'static>),
    /// Refused: the status to answer with and the sentence to show.
    Refused(StatusCode, String),
}

/// The client's address ([`crate::peer`]).
pub fn peer_ip(req: &HttpRequest) -> String {
    crate::peer::client_ip_string(req)
}

/// The refusal of an attempt from an address in a back-off window, if it is in one.
fn backing_off(
    state: &AppState,
    keys: &[&str],
    known_device: bool,
    now: crate::time::Timestamp,
) -> Option<LoginOutcome> {
    let wait = state.login_throttle.blocked(keys, now)?;
    let from = if known_device {
        "this browser"
    } else {
        "your address"
    };
    Some(LoginOutcome::Refused(
        StatusCode::TOO_MANY_REQUESTS,
        format!("Too many failed sign-in attempts from {from}. Try again in {wait} second(s)."),
    ))
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
    let mark = req
        .cookie(device::COOKIE)
        .and_then(|c| state.sessions.devices.check(c.value(), &username, now));
    // Control characters escaped: the key is stored (PostgreSQL's text holds no U+0000).
    let user_key = format!(
        "login:{}@{ip}",
        crate::text::printable(&username.to_lowercase(), 65)
    );
    let ip_key = format!("login-ip:{ip}");
    let mark_key = mark.as_ref().map(device::Mark::throttle_key);
    // A known device's attempt is counted against its mark only; anyone else's against
    // (account, address) and, looser (eight times the failures: many accounts), the
    // address.
    let (gate, gate_key, failure_keys): (_, _, Vec<(&str, u32)>) = match (&mark, &mark_key) {
        (Some(mark), Some(key)) => (&state.known_device_gate, mark.id.as_str(), vec![(key, 1)]),
        _ => (
            &state.password_gate,
            ip.as_str(),
            vec![(&user_key, 1), (&ip_key, 8)],
        ),
    };
    let keys: Vec<&str> = failure_keys.iter().map(|(k, _)| *k).collect();
    if let Some(refused) = backing_off(state, &keys, mark.is_some(), now) {
        return Ok(refused);
    }
    // A bounded number of verifications at once, and a few per address (one per mark), so
    // that one address cannot fill the queue (`AppState::password_gate`); then the back-off
    // again, as failures counted while this one waited may have opened it.
    let turn = match gate.turn(Some(gate_key)).await {
        Ok(turn) => turn,
        Err(Refused::Yours) => {
            return Ok(LoginOutcome::Refused(
                StatusCode::TOO_MANY_REQUESTS,
                if mark.is_some() {
                    "Another sign-in from this browser is being checked. Wait for its answer, then try again."
                } else {
                    "Other sign-ins from your address are being checked. Wait for their answers, then try again."
                }
                .into(),
            ));
        }
        Err(Refused::Full) => {
            return Ok(LoginOutcome::Refused(
                StatusCode::SERVICE_UNAVAILABLE,
                "The server is checking too many sign-ins at once. Try again in a few seconds."
                    .into(),
            ));
        }
    };
    if let Some(refused) = backing_off(state, &keys, mark.is_some(), state.clock.now()) {
        return Ok(refused);
    }
    let store = state.store.clone();
    let u = username.clone();
    let verified = web::block(
        move || -> Result<(bool, Option<crate::model::User>), crate::store::StoreError> {
            let _turn = turn;
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
            Ok((found.is_some(), found.filter(|_| ok).map(|(user, _)| user)))
        },
    )
    .await??;
    let (_, Some(account)) = verified else {
        let known = verified.0;
        let failure = state.login_throttle.failure(&failure_keys, now);
        if failure.audit.is_some() {
            // An unknown name may be a password typed in the wrong field: fingerprint only.
            let shown = if known {
                format!("`{}`", crate::text::printable(&username, 64))
            } else {
                format!(
                    "an unknown account (fingerprint {})",
                    crate::token::TokenHash::of(&username).short_hex()
                )
            };
            let event = NewAuditEvent {
                client_id: client_id.map(str::to_string),
                detail: Some(format!(
                    "failed sign-in as {shown}{}",
                    failure.summary("sign-ins")
                )),
                ..NewAuditEvent::new(format!("ip:{ip}"), AuditAction::UserLogin, "failure")
            };
            let store = state.store.clone();
            web::block(move || store.audit(&event, now)).await??;
        }
        actix_web::rt::time::sleep(failure.delay).await;
        return Ok(LoginOutcome::Refused(
            StatusCode::UNAUTHORIZED,
            "Wrong user name or password.".into(),
        ));
    };
    state.login_throttle.success(&[user_key.as_str()]);
    if let Some(key) = &mark_key {
        state.login_throttle.success(&[key.as_str()]);
    }
    let e = NewAuditEvent {
        client_id: client_id.map(str::to_string),
        detail: Some(format!(
            "signed in from {ip}{}{}",
            if mark.is_some() {
                " (a known device)"
            } else {
                ""
            },
            if client_id.is_none() {
                " (operator pages)"
            } else {
                ""
            }
        )),
        ..NewAuditEvent::new(
            format!("user:{}", account.username),
            AuditAction::UserLogin,
            "success",
        )
    };
    let store = state.store.clone();
    web::block(move || store.audit(&e, now)).await??;
    let mark = state.sessions.devices.issue(&account.username, now);
    let secure = state.settings.public_url.starts_with("https://");
    Ok(LoginOutcome::Accepted(
        account,
        device::cookie(mark, secure),
    ))
}
