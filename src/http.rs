//! Every route, declared once. `main` and the integration tests both call [`configure`],
//! so the tests exercise the real routing table.

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{HttpResponse, web};

use crate::error::HttpError;
use crate::guard::TokenCache;
use crate::monitor::Monitor;
use crate::monitor::usage::UsageRecorder;
use crate::oauth::client_auth::ClientCache;
use crate::oauth::grants::LifetimePolicy;
use crate::scim::cache::ResourceCache;
use crate::settings::Settings;
use crate::store::{Checkpointer, Store, TokenBatcher};
use crate::throttle::Throttle;
use crate::time::Clock;
use crate::web::session::Sessions;

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
    /// Recently read OAuth2 client rows (see `oauth::client_auth`).
    pub clients: Arc<ClientCache>,
    /// The maximum token lifetime, re-read at most every `token_cache_ttl`.
    pub lifetime_policy: Arc<LifetimePolicy>,
    /// Group commit of issued tokens (see `store::batch`).
    pub token_batcher: TokenBatcher,
    /// Background WAL checkpoints (see `store::checkpoint`); `None` if its connection
    /// could not be opened (the writer then checkpoints by itself, as SQLite does).
    pub checkpointer: Option<Checkpointer>,
    /// Failed sign-ins on the authorization pages (per account and address, and per
    /// address).
    pub login_throttle: Arc<Throttle>,
    /// Failed client authentications at the OAuth2 endpoints (slowed, never refused).
    pub client_throttle: Arc<Throttle>,
    /// Tokens per client and minute at the token endpoint (see `oauth::rate_limit`).
    pub issuance_limit: Arc<crate::oauth::rate_limit::IssuanceLimit>,
    /// Login sessions of the authorization pages.
    pub sessions: Arc<Sessions>,
    /// The token lifecycle monitor.
    pub monitor: Arc<Monitor>,
    /// `<public_url>/scim/v2`, computed once (every SCIM location starts with it).
    pub scim_base_url: Arc<str>,
}

impl AppState {
    /// State over `store`: the usage recorder's flusher and the background checkpointer
    /// started, the token batcher ready, caches, throttles and sessions empty (they live
    /// in memory, see [`crate::throttle`]).
    pub fn new(store: Arc<Store>, settings: Settings, clock: Clock) -> AppState {
        let usage = UsageRecorder::start(store.clone(), settings.usage_flush_interval);
        let monitor = Arc::new(
            Monitor::new(store.clone(), clock.clone(), settings.monitor.clone())
                .with_usage(usage.clone()),
        );
        monitor.start();
        let token_batcher = TokenBatcher::new(store.clone());
        let checkpointer = Checkpointer::start(&store)
            .inspect_err(|e| tracing::warn!(error = %e, "no background WAL checkpoints"))
            .ok();
        AppState {
            monitor,
            scim_base_url: format!("{}/scim/v2", settings.public_url).into(),
            token_batcher,
            checkpointer,
            tokens: Arc::new(TokenCache::new(settings.token_cache_ttl)),
            clients: Arc::new(ClientCache::new(settings.token_cache_ttl)),
            lifetime_policy: Arc::new(LifetimePolicy::new(settings.token_cache_ttl)),
            login_throttle: Arc::new(Throttle::for_passwords(
                settings.login_max_failures,
                settings.lockout,
            )),
            client_throttle: Arc::new(Throttle::for_client_secrets(settings.lockout)),
            issuance_limit: Arc::new(crate::oauth::rate_limit::IssuanceLimit::new(
                settings.client_issuance_per_minute,
            )),
            sessions: Arc::new(Sessions::default()),
            store,
            settings: Arc::new(settings),
            clock,
            usage,
            scim_cache: Arc::default(),
        }
    }

    /// Flush pending usage records and queued tokens; call after the HTTP server has
    /// stopped.
    pub fn shutdown(self) {
        self.token_batcher.shutdown();
        // The monitor first: its last drain hands token uses to the usage recorder.
        self.monitor.shutdown();
        self.usage.shutdown();
        if let Some(c) = &self.checkpointer {
            c.shutdown();
        }
    }
}

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
            .route("/healthz", web::get().to(healthz))
            .route("/readyz", web::get().to(readyz))
            .route("/metrics", web::get().to(metrics))
            .configure(crate::oauth::configure)
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
            client_auth_failures: st.client_throttle.failures_total(),
            login_failures: st.login_throttle.failures_total(),
            log_lines_dropped: crate::access_log::dropped_lines(),
            issuance_rate_limited: st.issuance_limit.refused_by_client(),
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

/// Readiness: the store answers a query.
async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, HttpError> {
    let store = state.store.clone();
    web::block(move || store.meta("readyz-probe"))
        .await
        .map_err(|_| HttpError::Blocking)??;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "status": "ready" })))
}
