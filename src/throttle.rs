//! Throttling of failed credentials: sign-ins with a password, and client authentications
//! at the OAuth2 endpoints. Two rules, from two kinds of secret:
//!
//! - **A client secret is high-entropy** (256 bits): guessing it is hopeless, so nothing
//!   ever refuses a right one. A failure only slows its own answer (a little more per
//!   failure in a row, at most 2 s) and is counted; the server never locks a client out.
//!   (A lockout keyed on a public client id let anyone cut an IdP off its tokens.)
//! - **A password is guessable**: failures are counted per (account, source address).
//!   After `free` failures in a row, each further one opens a back-off window that doubles
//!   (1 s, 2 s, 4 s … up to `max_backoff`), during which that account is refused *from that
//!   address* without its password being checked. Other addresses are not affected, so a
//!   guesser cannot lock the owner out. A second, looser count per address (8 × `free`
//!   failures over every account) bounds how much argon2 work one address can cause.
//!
//! Failures are audited one by one only up to a budget ([`AUDIT_PER_MINUTE`] per throttle
//! and minute); past it they are counted, and the next audited failure says how many were
//! not recorded one by one. So a flood of wrong credentials from ever new addresses
//! cannot fill the audit log or the disk. `/metrics` counts every failure.
//!
//! The sign-in counts are kept in the store ([`Throttle::shared`], `store::throttle`), so
//! every server instance on it counts the same failures: N instances do not give a guesser
//! N times the attempts. A row is written only for a wrong password, which cost an argon2
//! verification, and rows are forgotten after the longest back-off, so the table is
//! bounded by what the argon2 work lets through. If the store does not answer, the
//! instance counts in memory meanwhile (and a right password is never refused for it).
//!
//! The client-secret counts stay in memory, per process, in an LRU map of at most
//! [`CAPACITY`] keys (no operation scans it, and a flood of new keys evicts the oldest):
//! they never refuse anything, only slow a wrong secret's answer, and a 256-bit secret
//! gains nothing from N times the guesses; a failed client authentication is cheap, so
//! sharing its count would put a store write on an unauthenticated path for nothing.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use lru::LruCache;

use crate::store::{Store, ThrottleEntry};
use crate::time::{Duration, Timestamp};

/// Keys kept at most.
pub const CAPACITY: usize = 100_000;
/// Failures audited one by one per minute (per throttle); the rest are summarised.
pub const AUDIT_PER_MINUTE: u32 = 60;
/// Added delay per failure in a row, and its ceiling.
const DELAY_STEP: StdDuration = StdDuration::from_millis(200);
const DELAY_MAX: StdDuration = StdDuration::from_secs(2);

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last_failure: Timestamp,
    blocked_until: Timestamp,
}

#[derive(Debug)]
struct State {
    entries: LruCache<String, Entry>,
    /// The minute the audit budget is counted for, what it has used, and how many failures
    /// went unaudited since the last audited one.
    audit_minute: i64,
    audited: u32,
    unaudited: u64,
}

/// Failure counters for one kind of secret.
#[derive(Debug)]
pub struct Throttle {
    /// Failures in a row before a back-off window opens (`None`: never; client secrets).
    free: Option<u32>,
    /// The longest back-off window; also how long a failure is remembered.
    max_backoff: Duration,
    state: Mutex<State>,
    /// Every failure counted, for `/metrics`.
    failures_total: AtomicU64,
    /// The store the counts live in (and their kind there), when shared.
    shared: Option<(Arc<Store>, &'static str)>,
}

/// What a failure did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// How long to wait before answering.
    pub delay: StdDuration,
    /// `Some(n)`: audit this failure; `n` earlier failures were not audited one by one
    /// (over budget) since the last audited one. `None`: count it only.
    pub audit: Option<u64>,
    /// Seconds the key(s) are now refused for (0: not refused).
    pub blocked_for: i64,
}

impl Failure {
    /// " (and N earlier failures not recorded one by one)" when some were summarised.
    pub fn summary(&self, what: &str) -> String {
        match self.audit {
            Some(n) if n > 0 => format!(" (and {n} earlier failed {what} not recorded one by one)"),
            _ => String::new(),
        }
    }
}

impl Throttle {
    /// Counters for client secrets: failures are slowed and counted, never refused.
    pub fn for_client_secrets(max_backoff: Duration) -> Throttle {
        Throttle::new(None, max_backoff)
    }

    /// Counters for passwords: `free` failures in a row per key, then back-off windows.
    pub fn for_passwords(free: u32, max_backoff: Duration) -> Throttle {
        Throttle::new(Some(free.max(1)), max_backoff)
    }

    fn new(free: Option<u32>, max_backoff: Duration) -> Throttle {
        Throttle {
            free,
            max_backoff,
            state: Mutex::new(State {
                entries: LruCache::new(NonZeroUsize::new(CAPACITY).expect("non-zero")),
                audit_minute: i64::MIN,
                audited: 0,
                unaudited: 0,
            }),
            failures_total: AtomicU64::new(0),
            shared: None,
        }
    }

    /// Keep the counts in `store` under `kind`, shared with every instance on it.
    pub fn shared(mut self, store: Arc<Store>, kind: &'static str) -> Throttle {
        self.shared = Some((store, kind));
        self
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        crate::sync::lock(&self.state)
    }

    /// Every failure counted so far.
    pub fn failures_total(&self) -> u64 {
        self.failures_total.load(Ordering::Relaxed)
    }

    /// Seconds until every one of `keys` that is in a back-off window is free again;
    /// `None` if none is.
    pub fn blocked(&self, keys: &[&str], now: Timestamp) -> Option<i64> {
        let shared = self.shared.as_ref().and_then(|(store, kind)| {
            store
                .throttle_entries(kind, keys)
                .inspect_err(
                    |e| tracing::error!(error = %e, "the shared sign-in counts do not answer"),
                )
                .ok()
        });
        let st = self.state();
        let local = keys
            .iter()
            .filter_map(|k| st.entries.peek(*k).map(|e| e.blocked_until));
        let stored = shared.iter().flatten().map(|e| e.blocked_until);
        local
            .chain(stored)
            .filter(|until| *until > now)
            .map(|until| until - now)
            .max()
    }

    /// Count a failure of `key` in `entry` (a fresh count if the last failure is older
    /// than the longest back-off); the count, and the back-off it opens (0: none).
    fn count(&self, entry: &mut Entry, weight: u32, now: Timestamp) -> (u32, i64) {
        if now - entry.last_failure > self.max_backoff.secs() {
            entry.failures = 0;
        }
        entry.failures = entry.failures.saturating_add(1);
        entry.last_failure = now;
        let mut blocked_for = 0;
        if let Some(free) = self.free {
            let free = free.saturating_mul(weight.max(1));
            if entry.failures > free {
                let doublings = (entry.failures - free - 1).min(30);
                let window = (1i64 << doublings).min(self.max_backoff.secs().max(1));
                entry.blocked_until = now + window;
                blocked_for = window;
            }
        }
        (entry.failures, blocked_for)
    }

    /// Count a failure against every key in the store; `None` if it does not answer.
    fn count_shared(&self, keys: &[(&str, u32)], now: Timestamp) -> Option<(u32, i64)> {
        let (store, kind) = self.shared.as_ref()?;
        let names: Vec<&str> = keys.iter().map(|(k, _)| *k).collect();
        let forget_before = now.saturating_sub(self.max_backoff.secs());
        store
            .update_throttle(kind, &names, forget_before, |stored| {
                let (mut worst, mut blocked_for) = (0, 0);
                for (key, weight) in keys {
                    let i = match stored.iter().position(|e| e.key == *key) {
                        Some(i) => i,
                        None => {
                            stored.push(ThrottleEntry {
                                key: (*key).to_string(),
                                failures: 0,
                                last_failure: now,
                                blocked_until: 0,
                            });
                            stored.len() - 1
                        }
                    };
                    let e = &mut stored[i];
                    let mut entry = Entry {
                        failures: u32::try_from(e.failures).unwrap_or(u32::MAX),
                        last_failure: e.last_failure,
                        blocked_until: e.blocked_until,
                    };
                    let (n, b) = self.count(&mut entry, *weight, now);
                    (e.failures, e.last_failure, e.blocked_until) =
                        (i64::from(entry.failures), entry.last_failure, entry.blocked_until);
                    worst = worst.max(n);
                    blocked_for = blocked_for.max(b);
                }
                (worst, blocked_for)
            })
            .inspect_err(|e| tracing::error!(error = %e, "the shared sign-in counts do not answer; counting in memory"))
            .ok()
    }

    /// Count a failure against every key; `weights` gives each key's free failures as a
    /// multiple of `free` (1 for the precise key, more for a looser one such as an
    /// address over all accounts).
    pub fn failure(&self, keys: &[(&str, u32)], now: Timestamp) -> Failure {
        self.failures_total.fetch_add(1, Ordering::Relaxed);
        let shared = self.count_shared(keys, now);
        let mut st = self.state();
        let (mut worst, mut blocked_for) = shared.unwrap_or((0, 0));
        if shared.is_none() {
            for (key, weight) in keys {
                let mut entry = st.entries.peek(*key).copied().unwrap_or(Entry {
                    failures: 0,
                    last_failure: now,
                    blocked_until: 0,
                });
                let (n, b) = self.count(&mut entry, *weight, now);
                st.entries.put((*key).to_string(), entry);
                worst = worst.max(n);
                blocked_for = blocked_for.max(b);
            }
        }
        // The audit budget.
        let minute = now.div_euclid(60);
        if st.audit_minute != minute {
            st.audit_minute = minute;
            st.audited = 0;
        }
        let audit = if st.audited < AUDIT_PER_MINUTE {
            st.audited += 1;
            Some(std::mem::take(&mut st.unaudited))
        } else {
            st.unaudited += 1;
            None
        };
        Failure {
            delay: (DELAY_STEP * worst).min(DELAY_MAX),
            audit,
            blocked_for,
        }
    }

    /// Forget the failures of `keys` (after a success).
    pub fn success(&self, keys: &[&str]) {
        if let Some((store, kind)) = &self.shared {
            if let Err(e) = store.clear_throttle(kind, keys) {
                tracing::error!(error = %e, "the shared sign-in counts do not answer");
            }
        }
        let mut st = self.state();
        for key in keys {
            st.entries.pop(*key);
        }
    }

    /// Keys tracked now.
    pub fn len(&self) -> usize {
        self.state().entries.len()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_back_off_per_key_and_double() {
        let t = Throttle::for_passwords(3, Duration::minutes(15));
        let k = [("user:alice@1.2.3.4", 1)];
        for i in 0..3 {
            assert_eq!(t.failure(&k, i).blocked_for, 0, "free failure {i}");
        }
        assert_eq!(t.failure(&k, 3).blocked_for, 1);
        assert_eq!(t.blocked(&["user:alice@1.2.3.4"], 3), Some(1));
        assert_eq!(t.failure(&k, 4).blocked_for, 2);
        assert_eq!(t.failure(&k, 6).blocked_for, 4);
        assert_eq!(
            t.blocked(&["user:alice@5.6.7.8"], 6),
            None,
            "another address is free"
        );
        for i in 0..20 {
            t.failure(&k, 7 + i);
        }
        assert_eq!(t.blocked(&["user:alice@1.2.3.4"], 26), Some(900), "capped");
        t.success(&["user:alice@1.2.3.4"]);
        assert_eq!(t.blocked(&["user:alice@1.2.3.4"], 28), None);
    }

    /// Two instances on one store: the failures counted on one open the back-off on the
    /// other, and a success on either clears it for both.
    #[test]
    fn instances_on_one_store_share_the_sign_in_counts() {
        for t in crate::store::testing::stores("throttle_shared") {
            let b = t.backend;
            let one =
                Throttle::for_passwords(2, Duration::minutes(15)).shared(t.store.clone(), "login");
            let two =
                Throttle::for_passwords(2, Duration::minutes(15)).shared(t.store.clone(), "login");
            let k = [("user:alice@ip", 1)];
            assert_eq!(one.failure(&k, 100).blocked_for, 0, "{b}");
            assert_eq!(two.failure(&k, 100).blocked_for, 0, "{b}");
            assert_eq!(
                one.failure(&k, 101).blocked_for,
                1,
                "{b}: the third failure, on either"
            );
            assert_eq!(two.blocked(&["user:alice@ip"], 101), Some(1), "{b}");
            assert_eq!(two.failure(&k, 102).blocked_for, 2, "{b}");
            assert_eq!(
                two.blocked(&["user:bob@ip"], 102),
                None,
                "{b}: another account"
            );
            one.success(&["user:alice@ip"]);
            assert_eq!(two.blocked(&["user:alice@ip"], 102), None, "{b}");
            assert!(
                one.is_empty() && two.is_empty(),
                "{b}: nothing counted in memory"
            );
        }
    }

    #[test]
    fn a_looser_key_takes_more_failures() {
        let t = Throttle::for_passwords(2, Duration::minutes(15));
        for i in 0..16 {
            let name = format!("user:u{i}@ip");
            let f = t.failure(&[(name.as_str(), 1), ("ip:ip", 8)], i);
            assert_eq!(f.blocked_for, 0, "failure {i}");
        }
        assert_eq!(
            t.failure(&[("user:x@ip", 1), ("ip:ip", 8)], 16).blocked_for,
            1
        );
    }

    #[test]
    fn client_secrets_are_never_refused_and_the_delay_is_capped() {
        let t = Throttle::for_client_secrets(Duration::minutes(15));
        for i in 0..100 {
            assert_eq!(t.failure(&[("client:c@ip", 1)], i).blocked_for, 0);
        }
        assert_eq!(t.blocked(&["client:c@ip"], 100), None);
        assert_eq!(t.failure(&[("client:c@ip", 1)], 101).delay, DELAY_MAX);
        t.success(&["client:c@ip"]);
        assert_eq!(t.failure(&[("client:c@ip", 1)], 102).delay, DELAY_STEP);
    }

    #[test]
    fn audits_are_budgeted_per_minute_and_summarised() {
        let t = Throttle::for_client_secrets(Duration::minutes(15));
        let mut audited = 0;
        for i in 0..1000 {
            let key = format!("client-ip:10.0.{}.{}", i / 256, i % 256);
            if t.failure(&[(key.as_str(), 1)], 60).audit.is_some() {
                audited += 1;
            }
        }
        assert_eq!(audited, AUDIT_PER_MINUTE);
        let next = t.failure(&[("client-ip:x", 1)], 120);
        assert_eq!(next.audit, Some(1000 - u64::from(AUDIT_PER_MINUTE)));
        assert!(
            next.summary("client authentications")
                .contains("940 earlier")
        );
        assert_eq!(t.failures_total(), 1001);
    }

    #[test]
    fn the_map_is_capped() {
        let t = Throttle::for_client_secrets(Duration::minutes(15));
        for i in 0..(CAPACITY + 10) {
            let key = format!("k{i}");
            t.failure(&[(key.as_str(), 1)], 0);
        }
        assert_eq!(t.len(), CAPACITY);
    }
}
