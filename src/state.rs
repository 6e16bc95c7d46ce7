//! The running server's shared state: the store, settings and clock, the services the
//! handlers call ([`OAuth`], the monitor, the SCIM resource cache), and the web pages'
//! sessions and sign-in throttle. Built once by `main` (and by the integration tests'
//! server), handed to every handler by [`crate::http::configure`]. Nothing here knows a
//! route.

use std::sync::Arc;

use crate::cache::TokenCache;
use crate::monitor::Monitor;
use crate::monitor::usage::UsageRecorder;
use crate::oauth::OAuth;
use crate::scim::cache::ResourceCache;
use crate::settings::Settings;
use crate::store::{Checkpointer, Store};
use crate::sync::{Background, Gate};
use crate::throttle::Throttle;
use crate::time::Clock;
use crate::web::session::Sessions;

/// Sign-ins one address may have being checked or waiting at once.
pub const SIGN_INS_PER_ADDRESS: usize = 2;
/// SCIM lists and searches one client may have running or waiting at once.
pub const SEARCHES_PER_CLIENT: usize = 4;
/// SCIM lists and searches that may wait for a turn, all clients together.
pub const SEARCHES_WAITING: usize = 64;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<Store>,
    pub settings: Arc<Settings>,
    pub clock: Clock,
    pub usage: UsageRecorder,
    /// Rendered SCIM resources (see `scim::cache`).
    pub scim_cache: Arc<ResourceCache>,
    /// Recently validated bearer tokens (see `guard`); shared with [`OAuth`], whose
    /// revocations clear it.
    pub tokens: Arc<TokenCache>,
    /// The OAuth2 service: grants, client authentication, revocation, introspection.
    pub oauth: Arc<OAuth>,
    /// Background WAL checkpoints (see `store::checkpoint`); `None` if its connection
    /// could not be opened (the writer then checkpoints by itself, as SQLite does).
    pub checkpointer: Option<Checkpointer>,
    /// The pass over SCIM documents stored in an older form (see `scim::forms`), while it
    /// runs; `None` if its thread could not be started.
    pub forms_pass: Option<Background>,
    /// Failed sign-ins on the authorization pages (per account and address, and per
    /// address).
    pub login_throttle: Arc<Throttle>,
    /// How many sign-in passwords are verified at once, and how many may wait.
    pub password_gate: Arc<Gate>,
    /// The same for sign-ins from known devices (`web::device`): a queue of their own,
    /// which a flood of wrong passwords without a mark cannot fill.
    pub known_device_gate: Arc<Gate>,
    /// How many SCIM lists and searches that may scan run at once, per client and in all.
    pub search_gate: Arc<Gate>,
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
        let settings = Arc::new(settings);
        let tokens = Arc::new(TokenCache::new(settings.token_cache_ttl));
        let scim_cache = Arc::new(ResourceCache::new(settings.token_cache_ttl));
        let oauth = Arc::new(OAuth::new(
            store.clone(),
            settings.clone(),
            clock.clone(),
            tokens.clone(),
        ));
        let checkpointer = Checkpointer::start(&store)
            .inspect_err(|e| tracing::warn!(error = %e, "no background WAL checkpoints"))
            .ok()
            .flatten();
        let forms_pass = crate::scim::forms::start(store.clone(), clock.clone());
        AppState {
            forms_pass,
            monitor,
            scim_base_url: format!("{}/scim/v2", settings.public_url).into(),
            oauth,
            checkpointer,
            tokens,
            login_throttle: Arc::new(
                Throttle::for_passwords(settings.login_max_failures, settings.lockout)
                    .shared(store.clone(), "login"),
            ),
            // People sign in a few a minute: the queue is for a burst, not for a flood, and
            // no one address may fill it.
            password_gate: Arc::new(Gate::half_the_cores(32, SIGN_INS_PER_ADDRESS)),
            // Entered only with a mark of a right password; one sign-in per mark at once.
            known_device_gate: Arc::new(Gate::half_the_cores(8, 1)),
            search_gate: Arc::new(Gate::half_the_cores(SEARCHES_WAITING, SEARCHES_PER_CLIENT)),
            sessions: Arc::new(Sessions::new(store.clone())),
            store,
            settings,
            clock,
            usage,
            scim_cache,
        }
    }

    /// Flush pending usage records and queued tokens; call after the HTTP server has
    /// stopped.
    pub fn shutdown(self) {
        self.oauth.shutdown();
        // The monitor first: its last drain hands token uses to the usage recorder.
        self.monitor.shutdown();
        self.usage.shutdown();
        if let Some(c) = &self.checkpointer {
            c.shutdown();
        }
        if let Some(p) = &self.forms_pass {
            p.stop();
        }
    }
}
