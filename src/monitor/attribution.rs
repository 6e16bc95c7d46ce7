//! Turning a finished request into a [`RequestEvent`] for the monitor.
//!
//! - [`attribute`]: the middleware around `/scim/v2` that attributes each request with a
//!   bearer token to its client and token (time, method, path, status, source IP, user
//!   agent, latency) — including requests the guard refused because the token expired or
//!   was revoked, the moment provisioning breaks. The guard leaves its verdict in the
//!   request's extensions; this reads it after the response and hands the event to the
//!   monitor (a buffer push). For a refused request it also takes the identifiers the
//!   handler noted ([`Concerned`]) and the SCIM error the response carries, for the
//!   provisioning errors (`super::provisioning`).
//! - [`event`]: the same event for a request whose handler judged the credential itself
//!   (the token endpoint, when it refuses a client's dead refresh token or expired secret).

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest, web};

use super::events::{Attribution, Concerned, Refusal, RequestEvent};
use crate::scim::error::ScimError;
use crate::state::AppState;
use crate::time::Timestamp;

/// See the module documentation.
pub async fn attribute(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let res = next.call(req).await?;
    // Taken, not cloned: nothing after this middleware needs it.
    let attribution = res.request().extensions_mut().remove::<Attribution>();
    if let Some(attribution) = attribution {
        if let Some(state) = res.request().app_data::<web::Data<AppState>>() {
            let at = state.clock.now();
            let status = res.status().as_u16();
            let mut e = event(res.request(), attribution, status, started, at);
            if status >= 400 {
                let concerned = res.request().extensions_mut().remove::<Concerned>();
                let error = res.response().extensions().get::<ScimError>().cloned();
                e.refusal = Some(Box::new(Refusal {
                    concerned: concerned.unwrap_or_default(),
                    scim_type: error.as_ref().and_then(|e| e.scim_type),
                    detail: error.map(|e| e.detail),
                }));
            }
            state.monitor.record(e);
        }
    }
    Ok(res)
}

/// The event of `req`, answered with `status` at `at`, begun at `started`.
pub fn event(
    req: &HttpRequest,
    attribution: Attribution,
    status: u16,
    started: Instant,
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
        ip: crate::peer::client_ip(req),
        user_agent,
        latency_ms: started.elapsed().as_secs_f64() * 1000.0,
        refusal: None,
    }
}
