//! The one middleware around every scope ([`edge`], and [`scim_edge`] around `/scim/v2`):
//! what every response gets on its way out, in one pass.
//!
//! - the security headers: `X-Content-Type-Options: nosniff` everywhere, under TLS
//!   `Strict-Transport-Security`, and on SCIM answers `Cache-Control: no-store` (each only
//!   where the handler set none);
//! - on a SCIM request, the monitor's event (`monitor::attribution`): the guard's verdict
//!   on the bearer token, taken from the request's extensions;
//! - the access-log line (`access_log`).
//!
//! These were three middlewares (actix's `DefaultHeaders`, the access log's, the
//! monitor's): each a boxed future and a service call per request, two of them timing
//! the request and reading the client's address on their own. One layer times it once
//! (one start, one elapsed) and reads the address once, for both the line and the event
//! (bench/RESULTS.md, "one layer around each request"). The wall clock is still read
//! twice: the line's timestamp is real time, the event's is the injectable `Clock`'s.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};

use crate::monitor::attribution;
use crate::monitor::events::Attribution;
use crate::state::AppState;

/// Around every scope but SCIM's.
pub async fn edge(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    around(req, next, false).await
}

/// Around `/scim/v2`: also `no-store`, and the monitor's event.
pub async fn scim_edge(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    around(req, next, true).await
}

async fn around(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
    scim: bool,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let log = crate::access_log::wanted(req.path());
    let mut res = next.call(req).await?;
    let request = res.request();
    let state = request.app_data::<web::Data<AppState>>();
    let tls = state.is_some_and(|s| s.settings.tls.is_some());
    let monitor = state.filter(|s| scim && s.monitor.enabled());
    if log || monitor.is_some() {
        let latency = started.elapsed();
        let ip = crate::peer::client_ip(request);
        let status = res.status().as_u16();
        // Taken, not cloned, when the monitor records it: nothing after this needs it.
        let attribution = monitor.and_then(|_| request.extensions_mut().remove::<Attribution>());
        if log {
            crate::access_log::write(request, status, latency, ip, attribution.as_ref());
        }
        if let (Some(attribution), Some(state)) = (attribution, monitor) {
            let at = state.clock.now();
            let mut e = attribution::event_at(request, attribution, status, latency, ip, at);
            if status >= 400 {
                e.refusal = Some(attribution::refusal(&res));
            }
            state.monitor.record(e);
        }
    }
    security_headers(res.headers_mut(), tls, scim);
    Ok(res)
}

/// The security headers, each only where the handler set none.
fn security_headers(headers: &mut HeaderMap, tls: bool, scim: bool) {
    let mut add = |name: header::HeaderName, value: &'static str| {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    };
    // A JSON error echoing input is never sniffed as HTML.
    add(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    // A browser that once reached the pages over HTTPS never falls back to HTTP.
    if tls {
        add(header::STRICT_TRANSPORT_SECURITY, "max-age=31536000");
    }
    // SCIM answers carry directory data and are per caller: never cached (RFC 7644 §7
    // leaves it to the server; a shared cache must not keep a user's record).
    if scim {
        add(header::CACHE_CONTROL, "no-store");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_added_only_where_none_was_set() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("max-age=60"),
        );
        security_headers(&mut h, true, true);
        assert_eq!(h.get(header::CACHE_CONTROL).unwrap(), "max-age=60");
        assert_eq!(h.get(header::X_CONTENT_TYPE_OPTIONS).unwrap(), "nosniff");
        assert_eq!(
            h.get(header::STRICT_TRANSPORT_SECURITY).unwrap(),
            "max-age=31536000"
        );
        let mut h = HeaderMap::new();
        security_headers(&mut h, false, false);
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(h.contains_key(header::X_CONTENT_TYPE_OPTIONS));
    }
}
