//! Bearer-token protection of the SCIM API (RFC 6750): find the token by the id it
//! carries and compare its SHA-256 with the stored one in constant time, check kind,
//! expiry, revocation and scope, and attribute the request to its client.
//!
//! `GET` and `.search` need `user-directory.read.all`; writes need
//! `user-directory.write.all` (write does not imply read). Failures answer 401 with
//! `WWW-Authenticate: Bearer error="invalid_token"` or 403 `insufficient_scope`.
//!
//! Hot path: a validated token's record is kept in [`crate::cache::TokenCache`] for `token_cache_ttl`
//! (default 1 s), so a busy IdP costs one store read per token per second, not one per
//! request. Introspection (`oauth::introspect`) shares the cache for access tokens.
//! Expiry is still checked on every request against the clock; a revocation made in this
//! process clears the cache at once, one made by another process (`config revoke-token`)
//! takes effect within the TTL. The lookup itself is an indexed read done
//! inline (microseconds, less than a hop to the blocking pool). The last-use write is
//! folded into the usage recorder, never done on the request path.

use std::sync::Arc;

use actix_web::{HttpMessage, HttpRequest};

use crate::model::{Scope, TokenRecord, TokenStatus};
use crate::monitor::events::{Attribution, Verdict};
use crate::monitor::usage::UsageEvent;
use crate::state::AppState;
use crate::token::{self, TokenId, TokenKind};

/// Who is calling: the token's record, shared with the token cache (no copy of its id,
/// client or scopes per request).
#[derive(Debug, Clone, PartialEq)]
pub struct Principal(Arc<TokenRecord>);

impl Principal {
    pub fn token_id(&self) -> &TokenId {
        &self.0.id
    }

    pub fn client_id(&self) -> &str {
        &self.0.client_id
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GuardError {
    #[error("the request carries no bearer token")]
    Missing,
    #[error("the Authorization header is not a bearer token")]
    Malformed,
    #[error("the bearer token is not valid")]
    Unknown,
    #[error("the bearer token has expired")]
    Expired {
        token_id: TokenId,
        client_id: String,
    },
    #[error("the bearer token has been revoked")]
    Revoked {
        token_id: TokenId,
        client_id: String,
    },
    #[error("the token lacks the scope {}", .0.name())]
    InsufficientScope(Scope),
    /// Internal: `InsufficientScope` with the token it concerns (for attribution).
    #[error("the token lacks the scope {}", .scope.name())]
    Forbidden {
        scope: Scope,
        token_id: TokenId,
        client_id: String,
    },
    #[error("the token store is unavailable")]
    Unavailable,
}

/// The bearer token of a request, if its Authorization header is `Bearer <token>`. Read
/// as bytes: `to_str` checked every byte of the token, which `token::parse` checks
/// against its alphabet anyway; only the token is made a `str` (invalid UTF-8 is refused
/// here, other non-ASCII by the parse).
fn bearer(req: &HttpRequest) -> Result<&str, GuardError> {
    let header = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .ok_or(GuardError::Missing)?;
    let value = header.as_bytes().trim_ascii();
    let space = memchr::memchr(b' ', value).ok_or(GuardError::Malformed)?;
    let (scheme, token) = (&value[..space], value[space + 1..].trim_ascii());
    if !scheme.eq_ignore_ascii_case(b"bearer") || token.is_empty() {
        return Err(GuardError::Malformed);
    }
    std::str::from_utf8(token).map_err(|_| GuardError::Malformed)
}

/// Check the request's bearer token for `needed` and record its use.
pub fn authorize(
    req: &HttpRequest,
    state: &AppState,
    needed: Scope,
) -> Result<Principal, GuardError> {
    let result = check(req, state, needed);
    // Leave the verdict for the middleware around `/scim/v2` (`edge`): the monitor's event
    // and the access-log line.
    let attribution = match &result {
        Ok(p) => Some(Attribution::Token {
            token_id: Some(p.token_id().as_str().to_owned()),
            client_id: p.client_id().to_owned(),
            verdict: Verdict::Accepted,
        }),
        Err(GuardError::Expired {
            token_id,
            client_id,
        }) => Some(Attribution::Token {
            token_id: Some(token_id.as_str().to_owned()),
            client_id: client_id.clone(),
            verdict: Verdict::Expired,
        }),
        Err(GuardError::Revoked {
            token_id,
            client_id,
        }) => Some(Attribution::Token {
            token_id: Some(token_id.as_str().to_owned()),
            client_id: client_id.clone(),
            verdict: Verdict::Revoked,
        }),
        Err(GuardError::Forbidden {
            token_id,
            client_id,
            ..
        }) => Some(Attribution::Token {
            token_id: Some(token_id.as_str().to_owned()),
            client_id: client_id.clone(),
            verdict: Verdict::Forbidden,
        }),
        Err(GuardError::Unknown | GuardError::Malformed) => Some(Attribution::Unknown),
        Err(GuardError::Missing | GuardError::Unavailable | GuardError::InsufficientScope(_)) => {
            None
        }
    };
    if let Some(a) = attribution {
        req.extensions_mut().insert(a);
    }
    result.map_err(|e| match e {
        GuardError::Forbidden { scope, .. } => GuardError::InsufficientScope(scope),
        other => other,
    })
}

fn check(req: &HttpRequest, state: &AppState, needed: Scope) -> Result<Principal, GuardError> {
    let value = bearer(req)?;
    // A string that is not even shaped like one of our tokens is never looked up.
    let parsed = match token::parse(value) {
        Ok(p) if p.kind == TokenKind::Access => p,
        _ => return Err(GuardError::Unknown),
    };
    let record = state
        .tokens
        .access_token(&parsed.hash, || state.store.token_by_value(&parsed))
        .map_err(|e| {
            tracing::error!(error = %e, "token lookup failed");
            GuardError::Unavailable
        })?
        .filter(|r| r.kind == TokenKind::Access)
        .ok_or(GuardError::Unknown)?;
    let now = state.clock.now();
    match record.status(now) {
        TokenStatus::Active => {}
        TokenStatus::Expired => {
            return Err(GuardError::Expired {
                token_id: record.id.clone(),
                client_id: record.client_id.clone(),
            });
        }
        TokenStatus::Revoked => {
            return Err(GuardError::Revoked {
                token_id: record.id.clone(),
                client_id: record.client_id.clone(),
            });
        }
    }
    if !record.scopes.contains(&needed) {
        return Err(GuardError::Forbidden {
            scope: needed,
            token_id: record.id.clone(),
            client_id: record.client_id.clone(),
        });
    }
    // With monitoring on, the monitor's drain records this use from the request's event,
    // off the request path.
    if !state.monitor.records_usage() {
        state.usage.record(UsageEvent {
            token_id: record.id.clone(),
            at: now,
            ip: crate::peer::client_ip(req),
        });
    }
    Ok(Principal(record))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{AUTHORIZATION, HeaderValue};

    fn with(value: &[u8]) -> HttpRequest {
        actix_web::test::TestRequest::default()
            .insert_header((AUTHORIZATION, HeaderValue::from_bytes(value).unwrap()))
            .to_http_request()
    }

    #[test]
    fn bearer_tokens_are_read_and_other_schemes_refused() {
        for (value, want) in [
            (&b"Bearer sgat_abc"[..], "sgat_abc"),
            (b"bearer sgat_abc", "sgat_abc"),
            (b"BEARER   sgat_abc  ", "sgat_abc"),
            (b"  Bearer sgat_abc", "sgat_abc"),
            (b"Bearer caf\xc3\xa9", "caf\u{e9}"),
        ] {
            assert_eq!(bearer(&with(value)), Ok(want), "{value:?}");
        }
        for value in [
            &b"Basic c2dhdF9hYmM="[..],
            b"Bearer",
            b"Bearer ",
            b"Bearer    ",
            b"Bearersgat_abc",
            b"Bearer\tsgat_abc",
            b"B\xc3\xa9arer sgat_abc",
            b"Bearer sgat_\xff",
        ] {
            assert_eq!(
                bearer(&with(value)),
                Err(GuardError::Malformed),
                "{value:?}"
            );
        }
        let none = actix_web::test::TestRequest::default().to_http_request();
        assert_eq!(bearer(&none), Err(GuardError::Missing));
    }
}
