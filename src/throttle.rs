//! Throttling of password guessing: failed logins (per account and per source address) and
//! failed client authentications at the OAuth2 endpoints (per client and source address;
//! unknown client ids per source address: `oauth::client_auth::throttle_key`). Each
//! failure slows the next answer a little more; `max_failures` failures in a row lock the
//! key out for `lockout`; a success resets the keys it names.
//!
//! The state is in memory, per server process: a restart forgets it, and several server
//! instances behind a load balancer each count on their own (the limit is then per
//! instance). That is enough to turn an online guessing attack from millions of tries into a
//! handful per lockout period; the audit log records every lockout for the operator.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration as StdDuration;

use crate::model::NewAuditEvent;
use crate::time::{Duration, Timestamp};

/// Above this many tracked keys, stale entries are dropped on the next failure.
const PRUNE_ABOVE: usize = 10_000;
/// Added delay per failure in a row, and its ceiling.
const DELAY_STEP: StdDuration = StdDuration::from_millis(200);
const DELAY_MAX: StdDuration = StdDuration::from_secs(2);

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last_failure: Timestamp,
    locked_until: Option<Timestamp>,
}

/// Failure counters for one kind of secret (login passwords, client secrets).
#[derive(Debug)]
pub struct Throttle {
    max_failures: u32,
    lockout: Duration,
    entries: Mutex<HashMap<String, Entry>>,
}

/// What a failure did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// How long to wait before answering.
    pub delay: StdDuration,
    /// Keys this failure locked out (for the audit log).
    pub locked: Vec<String>,
}

impl Failure {
    /// One `security.lockout` audit event per key this failure locked out; `what` says
    /// what failed (e.g. "sign-ins").
    pub fn lockout_events(&self, what: &str, lockout: Duration) -> Vec<NewAuditEvent> {
        self.locked
            .iter()
            .map(|key| NewAuditEvent {
                actor: "server".into(),
                action: "security.lockout".into(),
                outcome: "denied".into(),
                detail: Some(format!(
                    "{key} locked out for {lockout} after repeated failed {what}"
                )),
                ..NewAuditEvent::default()
            })
            .collect()
    }
}

impl Throttle {
    pub fn new(max_failures: u32, lockout: Duration) -> Throttle {
        Throttle {
            max_failures: max_failures.max(1),
            lockout,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Seconds until the first of `keys` that is locked out is free again; `None` if none is.
    pub fn locked(&self, keys: &[&str], now: Timestamp) -> Option<i64> {
        let entries = self.entries();
        keys.iter()
            .filter_map(|k| entries.get(*k)?.locked_until)
            .filter(|until| *until > now)
            .map(|until| until - now)
            .max()
    }

    /// Count a failure against every key.
    pub fn failure(&self, keys: &[&str], now: Timestamp) -> Failure {
        let mut entries = self.entries();
        if entries.len() > PRUNE_ABOVE {
            let horizon = now - self.lockout.secs();
            entries
                .retain(|_, e| e.last_failure > horizon || e.locked_until.is_some_and(|u| u > now));
        }
        let mut worst = 0;
        let mut locked = Vec::new();
        for key in keys {
            let e = entries.entry((*key).to_string()).or_insert(Entry {
                failures: 0,
                last_failure: now,
                locked_until: None,
            });
            // A lockout that has run out, or failures long ago, start a fresh count.
            let expired = e.locked_until.is_some_and(|u| u <= now)
                || now - e.last_failure > self.lockout.secs();
            if expired {
                *e = Entry {
                    failures: 0,
                    last_failure: now,
                    locked_until: None,
                };
            }
            e.failures += 1;
            e.last_failure = now;
            if e.failures >= self.max_failures && e.locked_until.is_none() {
                e.locked_until = Some(now + self.lockout.secs());
                locked.push((*key).to_string());
            }
            worst = worst.max(e.failures);
        }
        Failure {
            delay: (DELAY_STEP * worst).min(DELAY_MAX),
            locked,
        }
    }

    /// Forget the failures of `keys` (after a success).
    pub fn success(&self, keys: &[&str]) {
        let mut entries = self.entries();
        for key in keys {
            entries.remove(*key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_max_failures_and_unlocks_after_lockout() {
        let t = Throttle::new(3, Duration::minutes(10));
        let keys = ["user:alice", "ip:127.0.0.1"];
        assert_eq!(t.locked(&keys, 0), None);
        let f1 = t.failure(&keys, 0);
        assert!(f1.locked.is_empty());
        assert_eq!(f1.delay, DELAY_STEP);
        t.failure(&keys, 1);
        let f3 = t.failure(&keys, 2);
        assert_eq!(f3.locked, vec!["user:alice", "ip:127.0.0.1"]);
        assert_eq!(t.locked(&["user:alice"], 3), Some(599));
        assert_eq!(t.locked(&["user:bob"], 3), None);
        assert_eq!(t.locked(&keys, 602), None, "the lockout runs out");
        let f = t.failure(&keys, 603);
        assert!(f.locked.is_empty(), "a fresh count after the lockout");
    }

    #[test]
    fn success_resets_and_delay_is_capped() {
        let t = Throttle::new(100, Duration::minutes(10));
        for i in 0..50 {
            t.failure(&["k"], i);
        }
        assert_eq!(t.failure(&["k"], 51).delay, DELAY_MAX);
        t.success(&["k"]);
        assert_eq!(t.failure(&["k"], 52).delay, DELAY_STEP);
    }
}
