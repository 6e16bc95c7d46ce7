//! OAuth2 errors (RFC 6749 §5.2, RFC 7009, RFC 7662) and the one place they become HTTP
//! responses: a JSON body `{"error", "error_description"}`, the status the RFC gives
//! (400, or 401 with `WWW-Authenticate` for a failed client authentication), and
//! `Cache-Control: no-store`. A store failure is the server's problem: it is logged and
//! answered `server_error` with 503, never blamed on the client.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};

use crate::store::StoreError;

/// What went wrong at the token, revocation or introspection endpoint.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("{0}")]
    InvalidRequest(String),
    /// Client authentication failed. `basic`: the client tried HTTP Basic, so the answer
    /// carries `WWW-Authenticate: Basic`.
    #[error("{description}")]
    InvalidClient { description: String, basic: bool },
    #[error("{0}")]
    InvalidGrant(String),
    #[error("{0}")]
    UnauthorizedClient(String),
    #[error("{0}")]
    UnsupportedGrantType(String),
    #[error("{0}")]
    InvalidScope(String),
    /// RFC 7009 §2.2.1: the server does not revoke this kind of token.
    #[error("{0}")]
    UnsupportedTokenType(String),
    /// The client passed its issuance rate limit (429 with `Retry-After`).
    #[error("this client was issued too many tokens in the last minute; try again in {0} seconds")]
    RateLimited(u64),
    /// The request body is larger than the server's `max_body_bytes` (413).
    #[error("the request body is larger than {0} bytes")]
    BodyTooLarge(usize),
    #[error("the store is unavailable")]
    Store(StoreError),
    #[error("internal error")]
    Internal,
}

impl OAuthError {
    /// The RFC 6749 §5.2 error code.
    pub fn code(&self) -> &'static str {
        match self {
            OAuthError::InvalidRequest(_) | OAuthError::BodyTooLarge(_) => "invalid_request",
            OAuthError::InvalidClient { .. } => "invalid_client",
            OAuthError::InvalidGrant(_) => "invalid_grant",
            OAuthError::UnauthorizedClient(_) => "unauthorized_client",
            OAuthError::UnsupportedGrantType(_) => "unsupported_grant_type",
            OAuthError::InvalidScope(_) => "invalid_scope",
            OAuthError::UnsupportedTokenType(_) => "unsupported_token_type",
            // An extension code (RFC 6749 §8.5), as Auth0 and others answer a rate limit.
            OAuthError::RateLimited(_) => "too_many_requests",
            // RFC 6749 §5.2 defines no `temporarily_unavailable` at the token endpoint
            // (only §4.1.2.1's redirect does): a store failure is a `server_error`.
            OAuthError::Store(_) | OAuthError::Internal => "server_error",
        }
    }
}

impl From<StoreError> for OAuthError {
    /// A client cut off while its token was being issued is the client's state, not a
    /// store failure: `invalid_client`, as its next request would get.
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::ClientCutOff(_) => OAuthError::InvalidClient {
                description: "the client was cut off (deleted, disabled, its secret rotated or its tokens revoked) while this token was being issued".into(),
                basic: false,
            },
            other => OAuthError::Store(other),
        }
    }
}

impl From<actix_web::error::BlockingError> for OAuthError {
    fn from(_: actix_web::error::BlockingError) -> Self {
        OAuthError::Internal
    }
}

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        match self {
            OAuthError::InvalidClient { .. } => StatusCode::UNAUTHORIZED,
            OAuthError::BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            OAuthError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            OAuthError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            OAuthError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let OAuthError::Store(e) = self {
            tracing::error!(error = %e, "store error at an OAuth2 endpoint");
        }
        let mut resp = HttpResponse::build(self.status_code());
        no_store(&mut resp);
        if let OAuthError::RateLimited(wait) = self {
            resp.insert_header((header::RETRY_AFTER, wait.to_string()));
        }
        if let OAuthError::InvalidClient { basic: true, .. } = self {
            resp.insert_header((
                header::WWW_AUTHENTICATE,
                r#"Basic realm="scimgate", charset="UTF-8""#,
            ));
        }
        resp.json(serde_json::json!({
            "error": self.code(),
            "error_description": self.to_string(),
        }))
    }
}

/// RFC 6749 §5.1: token responses (and their errors) must not be cached. The header
/// values are static (no parse, no allocation): token and introspection responses are hot.
pub fn no_store(resp: &mut actix_web::HttpResponseBuilder) {
    resp.insert_header((
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    ))
    .insert_header((header::PRAGMA, header::HeaderValue::from_static("no-cache")));
}

/// `body` as `application/json`: what `HttpResponseBuilder::json` does, without
/// formatting the media type into a new header value on every response.
pub fn json_body(
    resp: &mut actix_web::HttpResponseBuilder,
    body: &impl serde::Serialize,
) -> actix_web::HttpResponse {
    match serde_json::to_vec(body) {
        Ok(bytes) => json_text(resp, bytes),
        // Our own response types always serialize; should one not, that is our fault.
        Err(e) => actix_web::HttpResponse::InternalServerError().body(e.to_string()),
    }
}

/// `text`, JSON already written, as `application/json`.
pub fn json_text(
    resp: &mut actix_web::HttpResponseBuilder,
    text: Vec<u8>,
) -> actix_web::HttpResponse {
    resp.insert_header((
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    ))
    .body(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;

    #[test]
    fn statuses_and_bodies() {
        let e = OAuthError::InvalidClient {
            description: "unknown client".into(),
            basic: true,
        };
        let r = e.error_response();
        assert_eq!(r.status(), 401);
        assert!(r.headers().contains_key(header::WWW_AUTHENTICATE));
        assert_eq!(r.headers().get(header::CACHE_CONTROL).unwrap(), "no-store");
        let body = r.into_body().try_into_bytes().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"], "invalid_client");
        let r = OAuthError::InvalidClient {
            description: "x".into(),
            basic: false,
        }
        .error_response();
        assert!(!r.headers().contains_key(header::WWW_AUTHENTICATE));
        assert_eq!(OAuthError::InvalidScope("x".into()).status_code(), 400);
        assert_eq!(
            OAuthError::Store(StoreError::Database("disk".into())).status_code(),
            503
        );
        // RFC 6749 §5.2 has no `temporarily_unavailable` at the token endpoint.
        assert_eq!(
            OAuthError::Store(StoreError::Database("disk".into())).code(),
            "server_error"
        );
        // A client cut off mid-issuance is the client's state, not a store failure.
        let cut: OAuthError = StoreError::ClientCutOff("cl_1".into()).into();
        assert_eq!(
            (cut.status_code().as_u16(), cut.code()),
            (401, "invalid_client")
        );
    }
}
