//! The usage recorder: the guard hands it one event per authenticated request; a
//! background thread writes what accumulated to the store in one transaction every flush
//! interval (and on shutdown), so the hot path never writes to SQLite.
//!
//! Events are folded in place, per token, in a map behind a mutex that the request
//! threads hold for a few hundred nanoseconds. The flusher sleeps on a timer and swaps
//! the map out: a request never wakes another thread (a channel receiver would be woken
//! per event, and those context switches cost more than the request itself).

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration as StdDuration;

use foldhash::HashMap;

use crate::store::Store;
use crate::time::Timestamp;
use crate::token::TokenId;

/// One use of a token.
#[derive(Debug, Clone)]
pub struct UsageEvent {
    pub token_id: TokenId,
    pub at: Timestamp,
    /// Kept as an address: turned into text once per token and flush, not per request.
    pub ip: Option<std::net::IpAddr>,
}

#[derive(Default)]
struct Folded {
    last_at: Timestamp,
    ip: Option<std::net::IpAddr>,
    count: i64,
}

#[derive(Default)]
struct Shared {
    pending: Mutex<HashMap<TokenId, Folded>>,
    stop: Mutex<bool>,
    wake: Condvar,
}

/// Cheap to clone; record events with [`UsageRecorder::record`].
#[derive(Clone)]
pub struct UsageRecorder {
    shared: Arc<Shared>,
    store: Arc<Store>,
    thread: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl std::fmt::Debug for UsageRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UsageRecorder")
    }
}

use crate::sync::lock;

fn flush(store: &Store, shared: &Shared) {
    let pending = std::mem::take(&mut *lock(&shared.pending));
    if pending.is_empty() {
        return;
    }
    let batch: Vec<_> = pending
        .into_iter()
        .map(|(id, f)| (id, f.last_at, f.ip.map(crate::peer::address_text), f.count))
        .collect();
    if let Err(e) = store.record_token_uses(&batch) {
        tracing::error!(error = %e, tokens = batch.len(), "could not record token use");
    }
}

impl UsageRecorder {
    /// Start the flusher thread writing to `store` every `interval`.
    pub fn start(store: Arc<Store>, interval: StdDuration) -> UsageRecorder {
        let shared = Arc::new(Shared::default());
        let thread = {
            let shared = shared.clone();
            let store = store.clone();
            std::thread::Builder::new()
                .name("usage-flusher".into())
                .spawn(move || {
                    loop {
                        let stop = {
                            let stop = lock(&shared.stop);
                            let (stop, _) = shared
                                .wake
                                .wait_timeout_while(stop, interval, |s| !*s)
                                .unwrap_or_else(|p| p.into_inner());
                            *stop
                        };
                        flush(&store, &shared);
                        if stop {
                            return;
                        }
                    }
                })
                .expect("spawn the usage flusher thread")
        };
        UsageRecorder {
            shared,
            store,
            thread: Arc::new(Mutex::new(Some(thread))),
        }
    }

    /// Note one use; never blocks on I/O and never wakes another thread.
    pub fn record(&self, event: UsageEvent) {
        let mut pending = lock(&self.shared.pending);
        // By reference first: a known token costs no key of its own.
        let f = match pending.get_mut(&event.token_id) {
            Some(f) => f,
            None => pending.entry(event.token_id).or_default(),
        };
        if event.at >= f.last_at {
            f.last_at = event.at;
            if event.ip.is_some() {
                f.ip = event.ip;
            }
        }
        f.count += 1;
    }

    /// Write what is pending now, on the caller's thread (the monitor's, for the first
    /// request after a quiet spell: `config show-token` should not wait for the timer).
    pub fn flush_now(&self) {
        flush(&self.store, &self.shared);
    }

    /// Flush what is pending and stop the flusher (called on server shutdown).
    pub fn shutdown(&self) {
        *lock(&self.shared.stop) = true;
        self.shared.wake.notify_all();
        if let Some(t) = lock(&self.thread).take() {
            let _ = t.join();
        }
    }
}
