//! The middleware around `/scim/v2` that attributes each request with a bearer token to
//! its client and token (time, method, path, status, source IP, user agent, latency) —
//! including requests the guard refused because the token expired or was revoked, the
//! moment provisioning breaks. The guard leaves its verdict in the request's extensions;
//! this reads it after the response and hands the event to the monitor (a buffer push).

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};

use super::events::{Attribution, RequestEvent};
use crate::http::AppState;

/// See the module documentation.
pub async fn attribute(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let method = req.method().clone();
    let path = req.path().to_string();
    let ip = req.peer_addr().map(|a| a.ip());
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| match s.char_indices().nth(200) {
            Some((cut, _)) => s[..cut].to_string(),
            None => s.to_string(),
        });
    let res = next.call(req).await?;
    // Taken, not cloned: nothing after this middleware needs it.
    let attribution = res.request().extensions_mut().remove::<Attribution>();
    if let (Some(attribution), Some(state)) = (attribution, state) {
        state.monitor.record(RequestEvent {
            at: state.clock.now(),
            attribution,
            method,
            path,
            status: res.status().as_u16(),
            ip,
            user_agent,
            latency_ms: started.elapsed().as_secs_f64() * 1000.0,
        });
    }
    Ok(res)
}
