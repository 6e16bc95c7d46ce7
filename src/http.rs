//! Every route, declared once. `main` and the integration tests both call [`configure`],
//! so the tests exercise the real routing table.

use actix_web::http::header;
use actix_web::{HttpResponse, web};

use crate::error::HttpError;
use crate::state::AppState;

/// Register every route and the shared state.
pub fn configure(cfg: &mut web::ServiceConfig, state: AppState) {
    let limit = state.settings.max_body_bytes;
    let monitoring = state.monitor.enabled();
    let state_tls = state.settings.tls.is_some();
    cfg.app_data(state.settings.trusted_proxies.clone())
        .app_data(web::Data::new(state))
        .app_data(web::PayloadConfig::new(limit))
        .app_data(web::JsonConfig::default().limit(limit))
        .app_data(web::FormConfig::default().limit(limit));
    // The SCIM scope first: it carries the most traffic, and the router tries services in
    // registration order. Its requests are attributed to their client by the monitor's
    // middleware (off only to measure what monitoring costs).
    let tls = state_tls;
    // SCIM answers carry directory data and are per caller: never cached (RFC 7644 §7
    // leaves it to the server; a shared cache must not keep a user's record).
    let scim = web::scope("/scim/v2")
        .wrap(security_headers(tls).add((
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("no-store"),
        )))
        // Inside the monitor's middleware, so the guard's verdict is still there to name
        // the client and token on the access-log line.
        .wrap(actix_web::middleware::from_fn(
            crate::access_log::access_log,
        ));
    if monitoring {
        cfg.service(
            scim.wrap(actix_web::middleware::from_fn(
                crate::monitor::attribution::attribute,
            ))
            .configure(crate::scim::handlers::configure),
        );
    } else {
        cfg.service(scim.configure(crate::scim::handlers::configure));
    }
    cfg.service(
        web::scope("")
            .wrap(security_headers(tls))
            .wrap(actix_web::middleware::from_fn(
                crate::access_log::access_log,
            ))
            // Resources, as every route: a wrong method is a 405 with `Allow`, not a 404.
            // The OAuth2 endpoints first, the busiest (token, introspect) at their head: the
            // router matches each resource in turn, and the probes ahead of them cost every
            // token request three more matches (bench/RESULTS.md).
            .configure(crate::oauth::configure)
            .service(web::resource("/healthz").get(healthz))
            .service(web::resource("/readyz").get(readyz))
            .service(web::resource("/metrics").get(metrics))
            .configure(crate::web::configure),
    );
}

/// Headers on every response: `X-Content-Type-Options: nosniff` (a JSON error echoing
/// input is never sniffed as HTML), and under TLS `Strict-Transport-Security` (one year),
/// so a browser that once reached the pages over HTTPS never falls back to HTTP.
/// `DefaultHeaders` adds each only where the handler set none.
fn security_headers(tls: bool) -> actix_web::middleware::DefaultHeaders {
    let headers = actix_web::middleware::DefaultHeaders::new().add((
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    ));
    if tls {
        headers.add((
            header::STRICT_TRANSPORT_SECURITY,
            header::HeaderValue::from_static("max-age=31536000"),
        ))
    } else {
        headers
    }
}

/// Prometheus metrics (see `monitor::metrics`).
async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, HttpError> {
    let st = state.clone();
    let text = web::block(move || {
        let counters = crate::monitor::metrics::ServerCounters {
            client_auth_failures: st.oauth.client_throttle.failures_total(),
            login_failures: st.login_throttle.failures_total(),
            logins_shed: st.password_gate.refused_total() + st.known_device_gate.refused_total(),
            searches_shed: st.search_gate.refused_total(),
            log_lines_dropped: crate::access_log::dropped_lines(),
            issuance_rate_limited: st.oauth.issuance_limit.refused_by_client(),
        };
        crate::monitor::metrics::render(&st.store, &st.monitor, &counters, st.clock.now())
    })
    .await
    .map_err(|_| HttpError::Blocking)??;
    Ok(HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(text))
}

/// Liveness: the process answers.
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// Readiness: the store answers a round trip (on PostgreSQL, within the URL's `timeout`;
/// 503 with a plain reason while it does not, and ready again by itself once it does).
async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, HttpError> {
    let store = state.store.clone();
    match web::block(move || store.ping())
        .await
        .map_err(|_| HttpError::Blocking)?
    {
        Ok(()) => Ok(HttpResponse::Ok().json(serde_json::json!({ "status": "ready" }))),
        Err(e) => {
            tracing::warn!(error = %e, "not ready: the store does not answer");
            Ok(HttpResponse::ServiceUnavailable().json(serde_json::json!({
                "status": "unavailable",
                "reason": "the store does not answer",
            })))
        }
    }
}
