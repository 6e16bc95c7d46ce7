//! What the monitor records: the server's verdict on the credential a request presented
//! ([`Attribution`]: the guard's on a SCIM request's bearer token, left in the request's
//! extensions; the token endpoint's on a refresh token or client secret that stopped
//! working) and the finished request ([`RequestEvent`], built by
//! [`super::attribution::event`] after the response).

use serde::Serialize;

use crate::time::Timestamp;

/// Who a request belongs to, as far as the credential it presented tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribution {
    /// A credential of a known client: the token's id (`None` for a client secret, which
    /// has no token id), the client, and how the server judged it.
    Token {
        token_id: Option<String>,
        client_id: String,
        verdict: Verdict,
    },
    /// A bearer value that matches no token (never stored, only counted).
    Unknown,
}

/// The server's judgement of a known credential. The first four are the SCIM guard's on
/// a bearer token; the rest are the token endpoint's, recorded only when it refuses a
/// client's own credential because that credential is dead (a wrong secret or someone
/// else's token says nothing about the client's health).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Accepted,
    Expired,
    Revoked,
    Forbidden,
    /// The client's refresh token expired: it can get no more access tokens.
    RefreshTokenExpired,
    /// The client's refresh token was revoked (by an operator, or with its grant family).
    RefreshTokenRevoked,
    /// A refresh token already spent was presented again; its whole grant family is now
    /// revoked (RFC 9700 §4.14.2).
    RefreshTokenReused,
    /// The right client secret, but it has expired.
    ClientSecretExpired,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Accepted => "accepted",
            Verdict::Expired => "expired",
            Verdict::Revoked => "revoked",
            Verdict::Forbidden => "forbidden",
            Verdict::RefreshTokenExpired => "refresh_token_expired",
            Verdict::RefreshTokenRevoked => "refresh_token_revoked",
            Verdict::RefreshTokenReused => "refresh_token_reused",
            Verdict::ClientSecretExpired => "client_secret_expired",
        }
    }
}

/// One attributed request: a SCIM request with a bearer token, or a token request
/// refused for a dead credential.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestEvent {
    pub at: Timestamp,
    pub attribution: Attribution,
    pub method: actix_web::http::Method,
    pub path: String,
    pub status: u16,
    /// Kept as an address; turned into text by the monitor thread, off the request path.
    pub ip: Option<std::net::IpAddr>,
    pub user_agent: Option<String>,
    pub latency_ms: f64,
}
