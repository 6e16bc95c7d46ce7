//! Human passwords (the tool password, login accounts): argon2id with the crate's default
//! parameters (19 MiB, t=2), PHC strings. Machine-generated secrets never come here —
//! SHA-256 is right for those (see [`crate::token`]).
//!
//! [`VerifyGate`] bounds what the server's sign-in pages may spend on verifications at
//! once: each takes 19 MiB and tens of milliseconds of a core, and anyone on the network
//! can ask for one. Without it, a few hundred wrong passwords sent at once from one
//! address were all verified at once (bench/RESULTS.md has what that cost).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Shortest password accepted for accounts and the tool password.
pub const MIN_LEN: usize = 8;

/// Why a password was refused or could not be hashed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("the password is too short: use at least {MIN_LEN} characters")]
    TooShort,
    #[error("the password could not be hashed: {0}")]
    Hash(String),
}

/// Hash `password` to an argon2id PHC string with a fresh random salt.
pub fn hash(password: &str) -> Result<String, PasswordError> {
    if password.chars().count() < MIN_LEN {
        return Err(PasswordError::TooShort);
    }
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Whether `password` matches `phc` (false for a malformed hash too).
pub fn verify(password: &str, phc: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), phc)
        .is_ok()
}

/// At most `at_once` password verifications run at a time; up to `max_waiting` more wait
/// for their turn, first come first served, and the rest are refused at once (counted).
/// Memory is then bounded by `at_once` × 19 MiB whatever arrives, and the cores the
/// verifications leave free keep serving tokens and SCIM.
pub struct VerifyGate {
    turns: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
    shed: AtomicU64,
}

/// A turn to verify one password: held until the verification ends (move it into the
/// blocking task that runs it, so a client that hangs up frees nothing early).
pub struct Turn {
    _permit: OwnedSemaphorePermit,
}

/// A waiting request's place in the queue, given back however its wait ends.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl VerifyGate {
    pub fn new(at_once: usize, max_waiting: usize) -> VerifyGate {
        VerifyGate {
            turns: Arc::new(Semaphore::new(at_once.max(1))),
            waiting: AtomicUsize::new(0),
            max_waiting,
            shed: AtomicU64::new(0),
        }
    }

    /// Half of this machine's cores verify at once (at least one), and 32 more may wait:
    /// people sign in, a few a minute; the queue is for a burst, not for a flood.
    pub fn for_this_machine() -> VerifyGate {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        VerifyGate::new(cores / 2, 32)
    }

    /// A turn, after waiting for one if need be; `None` at once if `max_waiting` requests
    /// already wait.
    pub async fn turn(&self) -> Option<Turn> {
        if let Ok(permit) = self.turns.clone().try_acquire_owned() {
            return Some(Turn { _permit: permit });
        }
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            self.shed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let _place = Waiting(&self.waiting);
        // The semaphore is never closed, so the wait ends with a permit.
        let permit = self.turns.clone().acquire_owned().await.ok()?;
        Some(Turn { _permit: permit })
    }

    /// Requests refused because the queue was full, since the start.
    pub fn shed_total(&self) -> u64 {
        self.shed.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One turn at a time, two waiting: the fourth is refused at once and counted; a
    /// waiter that gives up frees its place; turns pass on in order.
    #[test]
    fn the_gate_bounds_turns_and_waiting() {
        use std::future::Future;
        use std::pin::pin;
        use std::task::{Context, Poll, Waker};
        let gate = VerifyGate::new(1, 2);
        let mut cx = Context::from_waker(Waker::noop());
        let mut first = pin!(gate.turn());
        let Poll::Ready(Some(turn)) = first.as_mut().poll(&mut cx) else {
            panic!("the first request has its turn at once");
        };
        let mut second = Box::pin(gate.turn());
        let mut third = pin!(gate.turn());
        assert!(second.as_mut().poll(&mut cx).is_pending());
        assert!(third.as_mut().poll(&mut cx).is_pending());
        let mut fourth = pin!(gate.turn());
        assert!(matches!(fourth.as_mut().poll(&mut cx), Poll::Ready(None)));
        assert_eq!(gate.shed_total(), 1);
        // The second hangs up: its place goes to a new request.
        drop(second);
        let mut fifth = pin!(gate.turn());
        assert!(fifth.as_mut().poll(&mut cx).is_pending());
        // The turn ends: the third (first in line) has it, the fifth still waits.
        drop(turn);
        let Poll::Ready(Some(third_turn)) = third.as_mut().poll(&mut cx) else {
            panic!("the first in line has the next turn");
        };
        assert!(fifth.as_mut().poll(&mut cx).is_pending());
        drop(third_turn);
        assert!(matches!(fifth.as_mut().poll(&mut cx), Poll::Ready(Some(_))));
        assert_eq!(gate.shed_total(), 1);
    }

    #[test]
    fn hash_verifies_and_rejects() {
        let h = hash("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse", &h));
        assert!(!verify("correct hors", &h));
        assert!(!verify("x", "not a hash"));
        assert_eq!(hash("short"), Err(PasswordError::TooShort));
    }
}
