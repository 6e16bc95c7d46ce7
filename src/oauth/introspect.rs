//! `POST /oauth2/introspect` (RFC 7662). The client must authenticate (public clients may
//! not introspect). A token is active only if it exists, is an access or refresh token,
//! is neither expired nor revoked, and was issued to the asking client; anything else is
//! `{"active": false}` with nothing more, so the endpoint is no oracle for other clients'
//! tokens.
//!
//! Cost: client authentication and one lookup of the token by its hash (unique index,
//! cached statement), both inline on the request's thread: a few microseconds, less than
//! the hand-off to the blocking pool would cost. Access tokens go through the SCIM guard's
//! [`crate::guard::TokenCache`], so a token checked again within `token_cache_ttl` costs no
//! store read; revocations in this process clear that cache before they answer.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use super::client_auth::{Public, authenticate};
use super::error::{OAuthError, no_store};
use super::params::Params;
use crate::http::AppState;
use crate::model::{Client, TokenStatus, scopes_to_string};
use crate::time::Timestamp;
use crate::token::{self, TokenKind};

pub async fn introspect_token(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, OAuthError> {
    let params = Params::from_form(&req, &body)?;
    let client = authenticate(&state, &req, &params, Public::Refused).await?;
    let value = params.require("token")?;
    let now = state.clock.now();
    // Inline: one indexed read by hash on a cached statement (see the module doc).
    let body = introspect(&state, &client, value, now)?;
    let mut resp = HttpResponse::Ok();
    no_store(&mut resp);
    Ok(resp.json(body))
}

fn introspect(
    state: &AppState,
    client: &Client,
    value: &str,
    now: Timestamp,
) -> Result<Value, OAuthError> {
    let inactive = json!({ "active": false });
    let Ok(parsed) = token::parse(value) else {
        return Ok(inactive);
    };
    let token_type = match parsed.kind {
        TokenKind::Access => "Bearer",
        TokenKind::Refresh => "refresh_token",
        _ => return Ok(inactive),
    };
    // Access tokens through the guard's cache (a revocation in this process clears it at
    // once; one by `config revoke-token` shows within `token_cache_ttl`, 1 s by default, as
    // for the SCIM guard). Refresh tokens always from the store: rotation revokes them
    // without clearing the cache.
    let rec = match parsed.kind {
        TokenKind::Access => state
            .tokens
            .access_token(&parsed.hash, || state.store.token_by_hash(&parsed.hash))?,
        _ => state.store.token_by_hash(&parsed.hash)?,
    };
    let Some(rec) = rec else {
        return Ok(inactive);
    };
    if rec.client_id != client.id || rec.status(now) != TokenStatus::Active {
        return Ok(inactive);
    }
    Ok(json!({
        "active": true,
        "scope": scopes_to_string(&rec.scopes),
        "client_id": rec.client_id,
        "token_type": token_type,
        "exp": rec.expires_at,
        "iat": rec.issued_at,
        "sub": rec.subject,
        "iss": state.settings.public_url,
        "token_id": rec.id.as_str(),
    }))
}
