//! The usage recorder: the guard hands it one event per authenticated request; a
//! background thread folds events per token and writes them to the store in one
//! transaction every flush interval (and on shutdown), so the hot path never writes.
//!
//! The channel is unbounded on purpose: an event is a few dozen bytes and the flusher
//! drains thousands per millisecond; losing heartbeats under load would be worse.

use std::collections::HashMap;
use std::sync::mpsc::{RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration as StdDuration, Instant};

use crate::store::Store;
use crate::time::Timestamp;
use crate::token::TokenId;

/// One use of a token.
#[derive(Debug, Clone)]
pub struct UsageEvent {
    pub token_id: TokenId,
    pub at: Timestamp,
    pub ip: Option<String>,
}

/// Cheap to clone; send events with [`UsageRecorder::record`].
#[derive(Clone)]
pub struct UsageRecorder {
    tx: Sender<UsageEvent>,
    thread: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl std::fmt::Debug for UsageRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UsageRecorder")
    }
}

#[derive(Default)]
struct Folded {
    last_at: Timestamp,
    ip: Option<String>,
    count: i64,
}

fn flush(store: &Store, pending: &mut HashMap<TokenId, Folded>) {
    if pending.is_empty() {
        return;
    }
    let batch: Vec<_> = pending
        .drain()
        .map(|(id, f)| (id, f.last_at, f.ip, f.count))
        .collect();
    if let Err(e) = store.record_token_uses(&batch) {
        tracing::error!(error = %e, tokens = batch.len(), "could not record token use");
    }
}

impl UsageRecorder {
    /// Start the flusher thread writing to `store` every `interval`.
    pub fn start(store: Arc<Store>, interval: StdDuration) -> UsageRecorder {
        let (tx, rx) = channel::<UsageEvent>();
        let thread = std::thread::Builder::new()
            .name("usage-flusher".into())
            .spawn(move || {
                let mut pending: HashMap<TokenId, Folded> = HashMap::new();
                let mut next = Instant::now() + interval;
                loop {
                    let wait = next.saturating_duration_since(Instant::now());
                    match rx.recv_timeout(wait) {
                        Ok(e) => {
                            let f = pending.entry(e.token_id).or_default();
                            if e.at >= f.last_at {
                                f.last_at = e.at;
                                if e.ip.is_some() {
                                    f.ip = e.ip;
                                }
                            }
                            f.count += 1;
                        }
                        Err(RecvTimeoutError::Timeout) => {
                            flush(&store, &mut pending);
                            next = Instant::now() + interval;
                        }
                        Err(RecvTimeoutError::Disconnected) => {
                            flush(&store, &mut pending);
                            return;
                        }
                    }
                    if Instant::now() >= next {
                        flush(&store, &mut pending);
                        next = Instant::now() + interval;
                    }
                }
            })
            .expect("spawn the usage flusher thread");
        UsageRecorder {
            tx,
            thread: Arc::new(Mutex::new(Some(thread))),
        }
    }

    /// Queue one use; never blocks.
    pub fn record(&self, event: UsageEvent) {
        let _ = self.tx.send(event);
    }

    /// Flush what is queued and stop the thread (called on server shutdown). Events sent
    /// by clones still alive after this are dropped.
    pub fn shutdown(self) {
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        drop(self.tx);
        if let Some(t) = thread {
            // Other clones keep the channel open; the thread then exits on its next
            // timeout only if all senders are gone, so don't wait forever.
            let deadline = Instant::now() + StdDuration::from_secs(5);
            while !t.is_finished() && Instant::now() < deadline {
                std::thread::sleep(StdDuration::from_millis(10));
            }
            if t.is_finished() {
                let _ = t.join();
            }
        }
    }
}
