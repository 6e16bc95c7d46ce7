//! Every route, declared once. `main` and the integration tests both call [`configure`],
//! so the tests exercise the real routing table.

use actix_web::{HttpResponse, web};

use crate::error::HttpError;
use crate::state::AppState;

/// Register every route and the shared state.
pub fn configure(cfg: &mut web::ServiceConfig, state: AppState) {
    let limit = state.settings.max_body_bytes;
    cfg.app_data(state.settings.trusted_proxies.clone())
        .app_data(web::Data::new(state))
        .app_data(web::PayloadConfig::new(limit))
        .app_data(web::JsonConfig::default().limit(limit))
        .app_data(web::FormConfig::default().limit(limit));
    // The SCIM scope first: it carries the most traffic, and the router tries services in
    // registration order. One middleware around each scope (`edge`): the security headers,
    // the access log and, around SCIM, the monitor's event for each request.
    cfg.service(
        web::scope("/scim/v2")
            .wrap(actix_web::middleware::from_fn(crate::edge::scim_edge))
            .configure(crate::scim::handlers::configure),
    );
    cfg.service(
        web::scope("")
            .wrap(actix_web::middleware::from_fn(crate::edge::edge))
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
