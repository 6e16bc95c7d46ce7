//! `POST /oauth2/introspect` (RFC 7662). The client must authenticate (public clients may
//! not introspect). A token is active only if it exists, is an access or refresh token,
//! is neither expired nor revoked, and was issued to the asking client; anything else is
//! `{"active": false}` with nothing more, so the endpoint is no oracle for other clients'
//! tokens.
//!
//! Cost: client authentication and one lookup of the token by its id (the primary key, a
//! cached statement; its hash then compared in constant time), both inline on the
//! request's thread: cheaper than the hand-off to the blocking pool would
//! cost. Access tokens go through the SCIM guard's
//! [`crate::cache::TokenCache`], so a token checked again within `token_cache_ttl` costs no
//! store read; revocations in this process clear that cache before they answer.

use actix_web::{HttpRequest, HttpResponse, web};
use std::sync::Arc;

use serde::Serialize;

use super::client_auth::{Public, authenticate};
use super::error::{OAuthError, json_body, json_text, no_store};
use super::params::Params;
use super::service::OAuth;
use crate::model::{Client, TokenRecord, TokenStatus, scopes_to_string};
use crate::state::AppState;
use crate::time::Timestamp;
use crate::token::{self, TokenKind};

pub async fn introspect_token(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, OAuthError> {
    let params = Params::read_form(&req, payload, state.settings.max_body_bytes).await?;
    let client = authenticate(&state.oauth, &req, &params, Public::Refused).await?;
    let value = params.require("token")?;
    let now = state.clock.now();
    // Inline: one read by primary key on a cached statement (see the module doc).
    let answer = introspect(&state.oauth, &client, value, now)?;
    let mut resp = HttpResponse::Ok();
    no_store(&mut resp);
    Ok(match answer {
        Some(rec) => json_text(
            &mut resp,
            Active::of(&rec, &state.settings.public_url).to_json(),
        ),
        None => json_body(&mut resp, &Inactive { active: false }),
    })
}

/// RFC 7662 §2.2 for an inactive token: nothing but `active`.
#[derive(Serialize)]
struct Inactive {
    active: bool,
}

/// RFC 7662 §2.2 for an active token, written straight from the record (fields in
/// alphabetical order, as docs/oauth.md shows them) by [`Active::to_json`]; serde's derive
/// is only the test's reference for its bytes.
#[cfg_attr(test, derive(Serialize))]
struct Active<'a> {
    active: bool,
    client_id: &'a str,
    exp: Timestamp,
    iat: Timestamp,
    iss: &'a str,
    scope: String,
    sub: &'a str,
    token_id: &'a str,
    token_type: &'static str,
}

impl<'a> Active<'a> {
    /// The answer's text, written by hand ([`crate::json_text`]): what serde writes for
    /// this struct (the test holds it to that), without its string escaper.
    fn to_json(&self) -> Vec<u8> {
        let mut o = crate::json_text::Object::with_capacity(
            140 + self.client_id.len() + self.iss.len() + self.scope.len() + self.sub.len(),
        );
        o.bool("active", self.active)
            .str("client_id", self.client_id)
            .int("exp", self.exp)
            .int("iat", self.iat)
            .str("iss", self.iss)
            .str("scope", &self.scope)
            .str("sub", self.sub)
            .str("token_id", self.token_id)
            .str("token_type", self.token_type);
        o.finish()
    }

    fn of(rec: &'a TokenRecord, iss: &'a str) -> Active<'a> {
        Active {
            active: true,
            scope: scopes_to_string(&rec.scopes),
            client_id: &rec.client_id,
            token_type: if rec.kind == TokenKind::Refresh {
                "refresh_token"
            } else {
                "Bearer"
            },
            exp: rec.expires_at,
            iat: rec.issued_at,
            sub: &rec.subject,
            iss,
            token_id: rec.id.as_str(),
        }
    }
}

/// The record of `value` if it is an active access or refresh token of `client`.
fn introspect(
    state: &OAuth,
    client: &Client,
    value: &str,
    now: Timestamp,
) -> Result<Option<Arc<TokenRecord>>, OAuthError> {
    let Ok(parsed) = token::parse(value) else {
        return Ok(None);
    };
    // Access tokens through the guard's cache (a revocation in this process clears it at
    // once; one by `config revoke-token` shows within `token_cache_ttl`, 1 s by default, as
    // for the SCIM guard). Refresh tokens always from the store: rotation revokes them
    // without clearing the cache. Codes and client secrets are never active here.
    let rec = match parsed.kind {
        TokenKind::Access => state
            .tokens
            .access_token(&parsed.hash, || state.store.token_by_value(&parsed))?,
        TokenKind::Refresh => state.store.token_by_value(&parsed)?.map(Arc::new),
        _ => return Ok(None),
    };
    Ok(rec.filter(|r| {
        r.kind == parsed.kind && r.client_id == client.id && r.status(now) == TokenStatus::Active
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The answer written by hand is what serde writes for the struct, escapes included.
    #[test]
    fn the_answer_is_what_serde_writes() {
        for (client_id, iss, sub) in [
            ("cl_1", "https://auth.example.com", "cl_1"),
            ("", "", ""),
            ("c\"l", "https://x/\\\n", "ünï ✓"),
        ] {
            for token_type in ["Bearer", "refresh_token"] {
                let a = Active {
                    active: true,
                    client_id,
                    exp: 1_796_614_390,
                    iat: -1,
                    iss,
                    scope: "user-directory.read.all user-directory.write.all".into(),
                    sub,
                    token_id: "tok_00mxcnoee1vc8jzdpcx5",
                    token_type,
                };
                assert_eq!(a.to_json(), serde_json::to_vec(&a).unwrap());
            }
        }
    }
}
