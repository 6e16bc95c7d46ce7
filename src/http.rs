//! Every route, declared once. `main` and the integration tests both call [`configure`],
//! so the tests exercise the real routing table.

use std::sync::Arc;

use actix_web::{HttpResponse, web};

use crate::error::HttpError;
use crate::guard::TokenCache;
use crate::monitor::usage::UsageRecorder;
use crate::scim::cache::ResourceCache;
use crate::settings::Settings;
use crate::store::Store;
use crate::time::Clock;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<Store>,
    pub settings: Arc<Settings>,
    pub clock: Clock,
    pub usage: UsageRecorder,
    /// Rendered SCIM resources (see `scim::cache`).
    pub scim_cache: Arc<ResourceCache>,
    /// Recently validated bearer tokens (see `guard`).
    pub tokens: Arc<TokenCache>,
}

impl AppState {
    /// State over `store`, with the usage recorder's flusher started.
    pub fn new(store: Arc<Store>, settings: Settings, clock: Clock) -> AppState {
        let usage = UsageRecorder::start(store.clone(), settings.usage_flush_interval);
        AppState {
            tokens: Arc::new(TokenCache::new(settings.token_cache_ttl)),
            store,
            settings: Arc::new(settings),
            clock,
            usage,
            scim_cache: Arc::default(),
        }
    }

    /// Flush pending usage records; call after the HTTP server has stopped.
    pub fn shutdown(self) {
        self.usage.shutdown();
    }
}

/// Register every route and the shared state.
pub fn configure(cfg: &mut web::ServiceConfig, state: AppState) {
    let limit = state.settings.max_body_bytes;
    cfg.app_data(web::Data::new(state))
        .app_data(web::PayloadConfig::new(limit))
        .app_data(web::JsonConfig::default().limit(limit))
        .app_data(web::FormConfig::default().limit(limit))
        .route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .service(web::scope("/scim/v2").configure(crate::scim::handlers::configure));
}

/// Liveness: the process answers.
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// Readiness: the store answers a query.
async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, HttpError> {
    let store = state.store.clone();
    web::block(move || store.meta("readyz-probe"))
        .await
        .map_err(|_| HttpError::Blocking)??;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "status": "ready" })))
}
