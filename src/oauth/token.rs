//! `POST /oauth2/token` (RFC 6749 §3.2): parse the form, authenticate the client once,
//! dispatch on `grant_type`, answer with the tokens and `Cache-Control: no-store`.
//!
//! client_credentials stays on the request's thread: authenticate and build the token
//! inline (reads only), then await the group commit; no hop to the blocking pool.
//!
//! A refusal because the client's own credential is dead (its refresh token expired, was
//! revoked or reused, or its secret expired) is attributed to the client for the monitor,
//! as a SCIM call with a dead bearer token is: for an IdP in OAuth mode that is the moment
//! provisioning breaks, and it may never make the SCIM call that would show it.

use std::time::Instant;

use actix_web::{HttpMessage, HttpRequest, HttpResponse, ResponseError, web};

use super::client_auth::{Public, authenticate};
use super::error::{OAuthError, json_text, no_store};
use super::grants::{self, Issued, Refusal};
use super::params::Params;
use crate::model::scopes_to_string;
use crate::monitor::attribution;
use crate::monitor::events::Attribution;
use crate::state::AppState;

/// The grants this server implements, in the order the metadata lists them.
pub const GRANT_TYPES: [&str; 3] = ["authorization_code", "refresh_token", "client_credentials"];

pub async fn issue_token(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, OAuthError> {
    let started = Instant::now();
    let params = Params::read_form(&req, payload, state.settings.max_body_bytes).await;
    // Counted for /metrics: grant type as sent (bounded to the known ones) and outcome.
    let grant: &'static str = params
        .as_ref()
        .ok()
        .and_then(|p| p.get("grant_type"))
        .and_then(|g| GRANT_TYPES.into_iter().find(|known| *known == g))
        .unwrap_or("other");
    let result = match params {
        Ok(params) => issue(&state, &req, params).await,
        Err(e) => Err(e),
    };
    let outcome = match &result {
        Ok(_) => "issued",
        Err(e) => e.code(),
    };
    state.monitor.count_token_request(grant, outcome);
    if let Err(e) = &result {
        let dead = req.extensions_mut().remove::<Attribution>();
        if let Some(dead) = dead.filter(|_| state.monitor.enabled()) {
            let status = e.status_code().as_u16();
            let event = attribution::event(&req, dead, status, started, state.clock.now());
            state.monitor.record(event);
        }
    }
    result
}

async fn issue(
    state: &web::Data<AppState>,
    req: &HttpRequest,
    params: Params,
) -> Result<HttpResponse, OAuthError> {
    let grant_type = params.require("grant_type")?.to_string();
    if !GRANT_TYPES.contains(&grant_type.as_str()) {
        return Err(OAuthError::UnsupportedGrantType(format!(
            "grant_type `{grant_type}` is not supported; use one of: {}",
            GRANT_TYPES.join(", ")
        )));
    }
    let oauth = &state.oauth;
    let client = authenticate(oauth, req, &params, Public::Allowed).await?;
    oauth
        .issuance_limit
        .check(&client.id)
        .map_err(OAuthError::RateLimited)?;
    let now = state.clock.now();
    if grant_type == "client_credentials" {
        let (issued, record) = grants::client_credentials(oauth, &client, &params, now)?;
        // Committed (with whatever else is being issued right now) before we answer.
        oauth.token_batcher.commit(vec![record]).await?;
        crate::access_log::record_issue(req, client.id.as_str(), issued.access.id.as_str());
        return Ok(token_response(&issued));
    }
    let st = oauth.clone();
    let issued = web::block(move || match grant_type.as_str() {
        "authorization_code" => {
            grants::authorization_code(&st, &client, &params, now).map_err(Refusal::from)
        }
        _ => grants::refresh_token(&st, &client, &params, now),
    })
    .await?;
    match issued {
        Ok(issued) => Ok(token_response(&issued)),
        Err(Refusal {
            error,
            dead_credential,
        }) => {
            if let Some(dead) = dead_credential {
                req.extensions_mut().insert(dead);
            }
            Err(error)
        }
    }
}

/// RFC 6749 §5.1, written straight from the issued tokens (fields in alphabetical order,
/// as docs/oauth.md shows them) by [`TokenResponse::to_json`]; serde's derive is only the
/// test's reference for its bytes.
#[cfg_attr(test, derive(serde::Serialize))]
struct TokenResponse<'a> {
    access_token: &'a str,
    expires_in: i64,
    #[cfg_attr(test, serde(skip_serializing_if = "Option::is_none"))]
    refresh_token: Option<&'a str>,
    scope: String,
    token_type: &'static str,
}

fn token_response(t: &Issued) -> HttpResponse {
    let body = TokenResponse {
        access_token: t.access.secret.expose(),
        token_type: "Bearer",
        expires_in: t.expires_in,
        scope: scopes_to_string(&t.scopes),
        refresh_token: t.refresh.as_ref().map(|r| r.secret.expose()),
    };
    let mut resp = HttpResponse::Ok();
    no_store(&mut resp);
    json_text(&mut resp, body.to_json())
}

impl TokenResponse<'_> {
    /// The answer's text, written by hand ([`crate::json_text`]): what serde writes for
    /// this struct (the test holds it to that), without its string escaper.
    fn to_json(&self) -> Vec<u8> {
        let mut o = crate::json_text::Object::with_capacity(
            100 + self.access_token.len()
                + self.refresh_token.map_or(0, str::len)
                + self.scope.len(),
        );
        o.str("access_token", self.access_token)
            .int("expires_in", self.expires_in);
        if let Some(refresh) = self.refresh_token {
            o.str("refresh_token", refresh);
        }
        o.str("scope", &self.scope)
            .str("token_type", self.token_type);
        o.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The answer written by hand is what serde writes for the struct, with and without a
    /// refresh token.
    #[test]
    fn the_answer_is_what_serde_writes() {
        for refresh_token in [None, Some("rt_x"), Some("q\"\\")] {
            let r = TokenResponse {
                access_token: "at_0123456789abcdefghij_ABCDEFGHIJKLMNOPQRSTUVWXYZ",
                expires_in: 3600,
                refresh_token,
                scope: "user-directory.read.all".into(),
                token_type: "Bearer",
            };
            assert_eq!(r.to_json(), serde_json::to_vec(&r).unwrap());
        }
    }
}
