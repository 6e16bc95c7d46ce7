//! What the monitor records: the guard's verdict on a request's bearer token
//! ([`Attribution`], left in the request's extensions) and the finished request
//! ([`RequestEvent`], built by the attribution middleware after the response).

use serde::Serialize;

use crate::time::Timestamp;

/// Who a SCIM request belongs to, as far as its bearer token tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribution {
    /// A token this store issued: its id and client, and how the guard judged it.
    Token {
        token_id: String,
        client_id: String,
        verdict: Verdict,
    },
    /// A bearer value that matches no token (never stored, only counted).
    Unknown,
}

/// The guard's judgement of a known token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Accepted,
    Expired,
    Revoked,
    Forbidden,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Accepted => "accepted",
            Verdict::Expired => "expired",
            Verdict::Revoked => "revoked",
            Verdict::Forbidden => "forbidden",
        }
    }
}

/// One attributed SCIM request.
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
