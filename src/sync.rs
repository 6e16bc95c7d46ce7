//! Thread helpers: the one poison-tolerant lock helper, [`Pace`] for the long loops of
//! background threads, [`Background`] for a thread that runs until told to stop, and
//! [`Gate`], which lets only a few costly requests run at once.
//!
//! The lock helper: A panic while a lock is held poisons the mutex; no
//! structure scimgate guards with a mutex is left half-updated by a panic (caches and
//! counters are replaced whole, SQLite rolls a transaction back on drop), so every lock
//! keeps being used after one, instead of turning one panic into a panic per request.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Lock `m`, taking the guard even if a panic poisoned it.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What a [`Background`] thread is told: whether to stop, and a wait that ends early when
/// it is.
#[derive(Default)]
pub struct Stop {
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl Stop {
    /// Wait up to `d`; `true` if the thread is to stop (at once when it is told).
    pub fn wait(&self, d: Duration) -> bool {
        let stopped = lock(&self.stopped);
        let (stopped, _) = self
            .wake
            .wait_timeout_while(stopped, d, |s| !*s)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *stopped
    }

    /// Whether the thread is to stop.
    pub fn stopped(&self) -> bool {
        *lock(&self.stopped)
    }
}

/// A named thread that runs until it returns or is stopped: [`Background::stop`], or
/// dropping the last clone, tells it ([`Stop`]) and waits for it to end.
#[derive(Clone)]
pub struct Background {
    inner: Arc<BackgroundInner>,
}

struct BackgroundInner {
    stop: Arc<Stop>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for BackgroundInner {
    fn drop(&mut self) {
        stop_and_join(&self.stop, &self.thread);
    }
}

fn stop_and_join(stop: &Stop, thread: &Mutex<Option<JoinHandle<()>>>) {
    *lock(&stop.stopped) = true;
    stop.wake.notify_all();
    if let Some(t) = lock(thread).take() {
        let _ = t.join();
    }
}

impl std::fmt::Debug for Background {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Background")
    }
}

impl Background {
    /// Run `f` on a new thread named `name`.
    pub fn spawn(
        name: &str,
        f: impl FnOnce(&Stop) + Send + 'static,
    ) -> std::io::Result<Background> {
        let stop = Arc::new(Stop::default());
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name(name.into())
                .spawn(move || f(&stop))?
        };
        Ok(Background {
            inner: Arc::new(BackgroundInner {
                stop,
                thread: Mutex::new(Some(thread)),
            }),
        })
    }

    /// Tell the thread to stop and wait for it to end.
    pub fn stop(&self) {
        stop_and_join(&self.inner.stop, &self.inner.thread);
    }

    /// Whether the thread has ended (returned, or stopped).
    pub fn finished(&self) -> bool {
        lock(&self.inner.thread)
            .as_ref()
            .is_none_or(JoinHandle::is_finished)
    }
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

/// Lets `at_once` costly requests run at a time (password verifications, SCIM searches that
/// may scan); up to `max_waiting` more wait for their turn, first come first served, and
/// the rest are refused at once and counted. With a key (the client), one key holds at
/// most `per_key` turns, running or waiting, so one client's burst neither fills the queue
/// for the others nor takes every thread of the blocking pool: each costly request has a
/// thread and a share of the cores, and before, thirty-two searches of one client took so
/// much of the one core that every other client's token requests waited seconds
/// (bench/RESULTS.md).
pub struct Gate {
    turns: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
    per_key: usize,
    held: Arc<Mutex<HashMap<String, usize>>>,
    refused: AtomicU64,
}

/// Why a [`Gate`] gave no turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// `max_waiting` requests already wait.
    Full,
    /// This key already holds `per_key` turns.
    Yours,
}

/// A turn: held until the costly work ends (move it into the blocking task that does it,
/// so that a client that hangs up frees nothing early).
pub struct Turn {
    _permit: OwnedSemaphorePermit,
    _hold: Option<KeyHold>,
}

/// One of a key's turns, given back however the request ends.
struct KeyHold {
    held: Arc<Mutex<HashMap<String, usize>>>,
    key: String,
}

impl Drop for KeyHold {
    fn drop(&mut self) {
        let mut held = lock(&self.held);
        if let Some(n) = held.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.key);
            }
        }
    }
}

/// A waiting request's place in the queue, given back however its wait ends.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Gate {
    pub fn new(at_once: usize, max_waiting: usize, per_key: usize) -> Gate {
        Gate {
            turns: Arc::new(Semaphore::new(at_once.max(1))),
            waiting: AtomicUsize::new(0),
            max_waiting,
            per_key: per_key.max(1),
            held: Arc::default(),
            refused: AtomicU64::new(0),
        }
    }

    /// Half of this machine's cores (at least one) at once: the other half keeps serving
    /// everything else.
    pub fn half_the_cores(max_waiting: usize, per_key: usize) -> Gate {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Gate::new(cores / 2, max_waiting, per_key)
    }

    /// A turn for `key` (none: no per-key bound), after waiting for one if need be.
    pub async fn turn(&self, key: Option<&str>) -> Result<Turn, Refused> {
        let hold = match key {
            None => None,
            Some(key) => {
                let mut held = lock(&self.held);
                let n = held.entry(key.to_string()).or_default();
                if *n >= self.per_key {
                    drop(held);
                    self.refused.fetch_add(1, Ordering::Relaxed);
                    return Err(Refused::Yours);
                }
                *n += 1;
                Some(KeyHold {
                    held: self.held.clone(),
                    key: key.to_string(),
                })
            }
        };
        let permit = match self.turns.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.max_waiting {
                    self.waiting.fetch_sub(1, Ordering::SeqCst);
                    self.refused.fetch_add(1, Ordering::Relaxed);
                    return Err(Refused::Full);
                }
                let _place = Waiting(&self.waiting);
                // The semaphore is never closed, so the wait ends with a permit.
                (self.turns.clone().acquire_owned().await).map_err(|_| Refused::Full)?
            }
        };
        Ok(Turn {
            _permit: permit,
            _hold: hold,
        })
    }

    /// Requests waiting for a turn now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    /// Requests refused (either way) since the start.
    pub fn refused_total(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use super::{Background, Duration};

    /// A thread waiting a long while is stopped at once, and one that returned by itself
    /// is finished; stopping it then is harmless.
    #[test]
    fn a_background_thread_stops_when_told_and_reports_when_done() {
        let (tx, rx) = std::sync::mpsc::channel();
        let waiting = Background::spawn("test-wait", move |stop| {
            tx.send(stop.wait(Duration::from_secs(60))).unwrap();
        })
        .unwrap();
        assert!(!waiting.finished());
        let began = std::time::Instant::now();
        waiting.stop();
        assert!(began.elapsed() < Duration::from_secs(5));
        assert!(rx.recv().unwrap(), "the wait did not say to stop");
        assert!(waiting.finished());

        let done = Background::spawn("test-done", |stop| assert!(!stop.stopped())).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !done.finished() {
            assert!(std::time::Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(5));
        }
        done.stop();
    }

    use super::*;

    /// One turn at a time, two waiting: the fourth is refused at once and counted; a
    /// waiter that gives up frees its place; turns pass on in order.
    #[test]
    fn the_gate_bounds_turns_and_waiting() {
        let gate = Gate::new(1, 2, 1);
        let mut cx = Context::from_waker(Waker::noop());
        let mut first = pin!(gate.turn(None));
        let Poll::Ready(Ok(turn)) = first.as_mut().poll(&mut cx) else {
            panic!("the first request has its turn at once");
        };
        let mut second = Box::pin(gate.turn(None));
        let mut third = pin!(gate.turn(None));
        assert!(second.as_mut().poll(&mut cx).is_pending());
        assert!(third.as_mut().poll(&mut cx).is_pending());
        let mut fourth = pin!(gate.turn(None));
        assert!(matches!(
            fourth.as_mut().poll(&mut cx),
            Poll::Ready(Err(Refused::Full))
        ));
        assert_eq!(gate.refused_total(), 1);
        // The second hangs up: its place goes to a new request.
        drop(second);
        let mut fifth = pin!(gate.turn(None));
        assert!(fifth.as_mut().poll(&mut cx).is_pending());
        // The turn ends: the third (first in line) has it, the fifth still waits.
        drop(turn);
        let Poll::Ready(Ok(third_turn)) = third.as_mut().poll(&mut cx) else {
            panic!("the first in line has the next turn");
        };
        assert!(fifth.as_mut().poll(&mut cx).is_pending());
        drop(third_turn);
        assert!(matches!(fifth.as_mut().poll(&mut cx), Poll::Ready(Ok(_))));
        assert_eq!(gate.refused_total(), 1);
    }

    /// A key holds at most `per_key` turns, running or waiting; others are not held up by
    /// it, and a key's turns come back when they end or their requests give up.
    #[test]
    fn one_key_holds_at_most_its_share() {
        let gate = Gate::new(1, 10, 2);
        let mut cx = Context::from_waker(Waker::noop());
        let mut a1 = pin!(gate.turn(Some("a")));
        let Poll::Ready(Ok(a1_turn)) = a1.as_mut().poll(&mut cx) else {
            panic!("a's first runs");
        };
        let mut a2 = Box::pin(gate.turn(Some("a")));
        assert!(a2.as_mut().poll(&mut cx).is_pending());
        let mut a3 = pin!(gate.turn(Some("a")));
        assert!(matches!(
            a3.as_mut().poll(&mut cx),
            Poll::Ready(Err(Refused::Yours))
        ));
        // b is not refused for a's sake: it waits in line.
        let mut b1 = pin!(gate.turn(Some("b")));
        assert!(b1.as_mut().poll(&mut cx).is_pending());
        // a's waiting request gives up: a may ask again.
        drop(a2);
        let mut a4 = pin!(gate.turn(Some("a")));
        assert!(a4.as_mut().poll(&mut cx).is_pending());
        // a's running turn ends: b (first in line) runs, then a's.
        drop(a1_turn);
        let Poll::Ready(Ok(b_turn)) = b1.as_mut().poll(&mut cx) else {
            panic!("b runs next");
        };
        assert!(a4.as_mut().poll(&mut cx).is_pending());
        drop(b_turn);
        assert!(matches!(a4.as_mut().poll(&mut cx), Poll::Ready(Ok(_))));
        assert_eq!(gate.refused_total(), 1);
        assert!(lock(&gate.held).len() <= 1, "no key is kept without turns");
    }
}
