//! Every route, declared once. `main` and the integration tests both call [`configure`],
//! so the tests exercise the real routing table.

use std::sync::Arc;

use actix_web::{web, HttpResponse};

use crate::error::HttpError;
use crate::settings::Settings;
use crate::store::Store;
use crate::throttle::Throttle;
use crate::time::Clock;
use crate::web::session::Sessions;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<Store>,
    pub settings: Arc<Settings>,
    pub clock: Clock,
    /// Failed sign-ins on the authorization pages (per account and per address).
    pub login_throttle: Arc<Throttle>,
    /// Failed client authentications at the OAuth2 endpoints (per client and per address).
    pub client_throttle: Arc<Throttle>,
    /// Login sessions of the authorization pages.
    pub sessions: Arc<Sessions>,
}

impl AppState {
    /// The state for a server over `store` with `settings`; throttles and sessions start
    /// empty (they live in memory, see [`crate::throttle`]).
    pub fn new(store: Arc<Store>, settings: Settings, clock: Clock) -> AppState {
        AppState {
            login_throttle: Arc::new(Throttle::new(settings.login_max_failures, settings.lockout)),
            client_throttle: Arc::new(Throttle::new(
                settings.client_auth_max_failures,
                settings.lockout,
            )),
            sessions: Arc::new(Sessions::default()),
            store,
            settings: Arc::new(settings),
            clock,
        }
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
        .configure(crate::oauth::configure)
        .configure(crate::web::configure);
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
