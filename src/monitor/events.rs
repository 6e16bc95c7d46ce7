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
    /// For a refused SCIM request: the resource it concerned and the SCIM error, as far
    /// as known (boxed: `None` on almost every request).
    pub refusal: Option<Box<Refusal>>,
}

/// What a refused SCIM request concerned and how it was refused: identifiers of the user
/// or group (from the request body, by the handler; never the body itself) and the SCIM
/// error the response carried.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Refusal {
    pub concerned: Concerned,
    pub scim_type: Option<&'static str>,
    pub detail: Option<String>,
}

/// The identifiers of the user or group a SCIM write named, each cut to
/// [`Concerned::MAX`] characters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Concerned {
    pub user_name: Option<String>,
    pub external_id: Option<String>,
    pub display_name: Option<String>,
}

impl Concerned {
    pub const MAX: usize = 256;

    /// The identifiers in a SCIM resource body (`userName`, `externalId`, `displayName`,
    /// matched case-insensitively as SCIM attribute names are).
    pub fn of(body: &serde_json::Value) -> Concerned {
        let mut c = Concerned::default();
        let Some(obj) = body.as_object() else {
            return c;
        };
        for (k, v) in obj {
            let slot = if k.eq_ignore_ascii_case("userName") {
                &mut c.user_name
            } else if k.eq_ignore_ascii_case("externalId") {
                &mut c.external_id
            } else if k.eq_ignore_ascii_case("displayName") {
                &mut c.display_name
            } else {
                continue;
            };
            if let Some(s) = v.as_str() {
                *slot = Some(s.chars().take(Self::MAX).collect());
            }
        }
        c
    }

    /// Leave these identifiers in `req`'s extensions for the middleware around `/scim/v2`
    /// (`edge`).
    pub fn note(self, req: &actix_web::HttpRequest) {
        use actix_web::HttpMessage;
        req.extensions_mut().insert(self);
    }
}
