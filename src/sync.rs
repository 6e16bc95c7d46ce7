//! Thread helpers: the one poison-tolerant lock helper, and [`Pace`] for the long loops of
//! background threads.
//!
//! The lock helper: A panic while a lock is held poisons the mutex; no
//! structure scimgate guards with a mutex is left half-updated by a panic (caches and
//! counters are replaced whole, SQLite rolls a transaction back on drop), so every lock
//! keeps being used after one, instead of turning one panic into a panic per request.

use std::sync::{Mutex, MutexGuard};

/// Lock `m`, taking the guard even if a panic poisoned it.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Items a background loop handles between two yields: about half a millisecond of the
/// monitor's drain (2 µs an event).
const PACE_EVERY: usize = 256;

/// How long a loop yields at all. A yield hands the core to a worker for a whole slice
/// (milliseconds when requests keep it busy), so on a saturated core a loop that always
/// yielded would get a tenth of it and fall ever further behind the requests it records
/// (measured: the monitor's buffers grew by 50 MiB in 5 s of `GET /Users/{id}` at the
/// maximum rate). After this long the loop runs at full share to its end.
const PACE_BUDGET: std::time::Duration = std::time::Duration::from_millis(20);

/// Gives the core back to the request workers every [`PACE_EVERY`] items of a long loop
/// on a background thread (`sched_yield`), for the loop's first [`PACE_BUDGET`]. The
/// monitor drains a quarter-second of events at once, tens of milliseconds of work at
/// tens of thousands of requests a second; the scheduler let it run in 4 ms slices while
/// a worker with requests waited, and that was the p99 of `GET /Users/{id}` at half load
/// (bench/RESULTS.md). A yield is one system call and returns at once when no worker
/// waits.
#[derive(Debug)]
pub struct Pace {
    done: usize,
    started: std::time::Instant,
}

impl Default for Pace {
    fn default() -> Self {
        Pace {
            done: 0,
            started: std::time::Instant::now(),
        }
    }
}

impl Pace {
    /// One item done; yield if it ends a stretch of [`PACE_EVERY`] within the budget.
    pub fn step(&mut self) {
        self.done += 1;
        if self.done % PACE_EVERY == 0 && self.started.elapsed() < PACE_BUDGET {
            std::thread::yield_now();
        }
    }
}
