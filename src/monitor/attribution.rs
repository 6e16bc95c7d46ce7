//! Turning a finished request into a [`RequestEvent`] for the monitor.
//!
//! - [`event_at`]: the event of a SCIM request with a bearer token, built by the middleware
//!   around `/scim/v2` (`edge`) after the response: its client and token (the guard's
//!   verdict, left in the request's extensions), time, method, path, status, source IP,
//!   user agent and latency — including requests the guard refused because the token
//!   expired or was revoked, the moment provisioning breaks. The monitor gets it as a
//!   buffer push. For a refused request, [`refusal`] adds the identifiers the handler
//!   noted ([`Concerned`]) and the SCIM error the response carries, for the provisioning
//!   errors (`super::provisioning`).
//! - [`event`]: the same event for a request whose handler judged the credential itself
//!   (the token endpoint, when it refuses a client's dead refresh token or expired secret).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use actix_web::dev::ServiceResponse;
use actix_web::http::header;
use actix_web::{HttpMessage, HttpRequest};

use super::events::{Attribution, Concerned, Refusal, RequestEvent};
use crate::scim::error::ScimError;
use crate::time::Timestamp;

/// What a refused SCIM request concerned (the handler's note, taken) and the SCIM error
/// its response carries.
pub fn refusal<B>(res: &ServiceResponse<B>) -> Box<Refusal> {
    let concerned = res.request().extensions_mut().remove::<Concerned>();
    let error = res.response().extensions().get::<ScimError>().cloned();
    Box::new(Refusal {
        concerned: concerned.unwrap_or_default(),
        scim_type: error.as_ref().and_then(|e| e.scim_type),
        detail: error.map(|e| e.detail),
    })
}

/// The event of `req`, answered with `status` at `at`, begun at `started`.
pub fn event(
    req: &HttpRequest,
    attribution: Attribution,
    status: u16,
    started: Instant,
    at: Timestamp,
) -> RequestEvent {
    let ip = crate::peer::client_ip(req);
    event_at(req, attribution, status, started.elapsed(), ip, at)
}

/// The event of `req` from `ip`, answered with `status` at `at` after `latency`.
pub fn event_at(
    req: &HttpRequest,
    attribution: Attribution,
    status: u16,
    latency: Duration,
    ip: Option<IpAddr>,
    at: Timestamp,
) -> RequestEvent {
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| match s.char_indices().nth(200) {
            Some((cut, _)) => s[..cut].to_string(),
            None => s.to_string(),
        });
    RequestEvent {
        at,
        attribution,
        method: req.method().clone(),
        path: req.path().to_string(),
        status,
        ip,
        user_agent,
        latency_ms: latency.as_secs_f64() * 1000.0,
        refusal: None,
    }
}
