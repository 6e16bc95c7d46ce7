//! The one poison-tolerant lock helper. A panic while a lock is held poisons the mutex; no
//! structure scimgate guards with a mutex is left half-updated by a panic (caches and
//! counters are replaced whole, SQLite rolls a transaction back on drop), so every lock
//! keeps being used after one, instead of turning one panic into a panic per request.

use std::sync::{Mutex, MutexGuard};

/// Lock `m`, taking the guard even if a panic poisoned it.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
