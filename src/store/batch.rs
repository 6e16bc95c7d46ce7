//! Group commit for token issuance: many concurrent requests' token records go to SQLite
//! in one transaction, and each request learns the outcome of *its* records before it
//! answers, so "a token returned to a client is committed before the response leaves"
//! holds while the commit cost (the WAL append of the touched table and index pages) is
//! shared by the whole batch.
//!
//! Shape: a queue of jobs (the records of one request and a reply slot) and one committer
//! thread. [`TokenBatcher::submit`] appends a job and wakes the committer only if it is
//! asleep (no syscall per request under load); the committer takes *everything* queued,
//! commits it in one `BEGIN IMMEDIATE` transaction and fills each reply. There is no timer:
//! when idle the committer starts at once, so a lone request pays one thread hand-off and
//! its own commit; under load, what arrives while a commit is in flight (or while the
//! request threads hold the CPU) forms the next batch.
//!
//! Failure semantics: a job is atomic on its own (one INSERT, or a `SAVEPOINT` around a
//! job of several records), so a job whose insert fails (say a duplicate hash) is undone
//! alone and gets its error while the others commit. If the transaction as a whole fails
//! (begin, commit, an error after which SQLite rolled the transaction back: disk full, I/O
//! error), every job of the batch gets that error: nothing of the batch was committed. A job is never left without an answer: a job dropped unanswered
//! (committer panic, shutdown) answers with an error.
//!
//! The reply is both a blocking wait ([`Pending::wait`]) and a `Future`, so async handlers
//! await it without a hop to the blocking pool.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;

use super::tokens::insert_token;
use super::{NewTokenRecord, Result, Store, StoreError};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing here leaves a value half-updated across a panic; keep using a poisoned lock.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Default)]
struct ReplyState {
    result: Option<Result<()>>,
    /// Answered once already (the waiter may have taken the result since).
    answered: bool,
    waker: Option<Waker>,
    /// A thread is blocked in [`Pending::wait`].
    blocking: bool,
}

#[derive(Default)]
struct Reply {
    state: Mutex<ReplyState>,
    cv: Condvar,
}

impl Reply {
    fn complete(&self, result: impl FnOnce() -> Result<()>) {
        let (waker, blocking) = {
            let mut s = lock(&self.state);
            if s.answered {
                return;
            }
            s.answered = true;
            s.result = Some(result());
            (s.waker.take(), s.blocking)
        };
        if let Some(w) = waker {
            w.wake();
        }
        if blocking {
            self.cv.notify_one();
        }
    }
}

/// The answer to one [`TokenBatcher::submit`]: `Ok` once the records are committed.
/// Await it, or [`wait`](Pending::wait) for it from blocking code.
#[must_use = "the records are committed only when this resolves to Ok"]
pub struct Pending {
    reply: Arc<Reply>,
}

impl Pending {
    /// Block until the batch holding these records has committed (or failed).
    pub fn wait(self) -> Result<()> {
        let mut s = lock(&self.reply.state);
        loop {
            if let Some(r) = s.result.take() {
                return r;
            }
            s.blocking = true;
            s = self.reply.cv.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }
}

impl Future for Pending {
    type Output = Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let mut s = lock(&self.reply.state);
        if let Some(r) = s.result.take() {
            return Poll::Ready(r);
        }
        match &s.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => s.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

/// One request's records and where its answer goes.
struct Job {
    records: Vec<NewTokenRecord>,
    reply: Arc<Reply>,
}

impl Drop for Job {
    fn drop(&mut self) {
        // A no-op if the job was answered; otherwise (panic, shutdown) its waiter must not
        // hang.
        self.reply.complete(|| {
            Err(StoreError::Sqlite(
                "the token committer stopped before committing this token".into(),
            ))
        });
    }
}

#[derive(Default)]
struct Queue {
    jobs: Vec<Job>,
    /// The committer is waiting on `wake` (only then does a submit notify it).
    sleeping: bool,
    closed: bool,
}

/// Counters of what the committer did, for tests and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchStats {
    /// Transactions committed (or attempted).
    pub transactions: u64,
    /// Jobs (requests) answered by those transactions.
    pub jobs: u64,
    /// Token records committed.
    pub tokens: u64,
    /// The largest number of jobs in one transaction.
    pub largest_batch: u64,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
    transactions: AtomicU64,
    jobs: AtomicU64,
    tokens: AtomicU64,
    largest: AtomicU64,
}

struct Inner {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        lock(&self.shared.queue).closed = true;
        self.shared.wake.notify_all();
        if let Some(t) = lock(&self.thread).take() {
            let _ = t.join();
        }
    }
}

/// Handle on the committer thread; cheap to clone. The thread stops (after committing what
/// is queued) when the last handle is dropped or [`shutdown`](TokenBatcher::shutdown) runs.
#[derive(Clone)]
pub struct TokenBatcher {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for TokenBatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenBatcher")
            .field("stats", &self.stats())
            .finish()
    }
}

impl TokenBatcher {
    /// Start the committer thread over `store`.
    pub fn start(store: Arc<Store>) -> std::io::Result<TokenBatcher> {
        let shared = Arc::new(Shared::default());
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("token-committer".into())
                .spawn(move || run(&store, &shared))?
        };
        Ok(TokenBatcher {
            inner: Arc::new(Inner {
                shared,
                thread: Mutex::new(Some(thread)),
            }),
        })
    }

    /// Queue `records` (one request's tokens, committed all or none) for the next
    /// transaction. The returned [`Pending`] resolves once they are committed.
    pub fn submit(&self, records: Vec<NewTokenRecord>) -> Pending {
        let reply = Arc::new(Reply::default());
        let pending = Pending {
            reply: reply.clone(),
        };
        let job = Job { records, reply };
        let shared = &self.inner.shared;
        let mut q = lock(&shared.queue);
        if q.closed {
            drop(q);
            drop(job); // answers with an error
            return pending;
        }
        q.jobs.push(job);
        let wake = std::mem::take(&mut q.sleeping);
        drop(q);
        if wake {
            shared.wake.notify_one();
        }
        pending
    }

    /// Queue several jobs at once (so a test knows they share a transaction).
    #[cfg(test)]
    fn submit_many(&self, jobs: Vec<Vec<NewTokenRecord>>) -> Vec<Pending> {
        let shared = &self.inner.shared;
        let mut q = lock(&shared.queue);
        let mut out = Vec::new();
        for records in jobs {
            let reply = Arc::new(Reply::default());
            out.push(Pending {
                reply: reply.clone(),
            });
            q.jobs.push(Job { records, reply });
        }
        q.sleeping = false;
        drop(q);
        shared.wake.notify_one();
        out
    }

    /// Queue `records` and block until they are committed.
    pub fn insert(&self, records: Vec<NewTokenRecord>) -> Result<()> {
        self.submit(records).wait()
    }

    /// What the committer has done so far.
    pub fn stats(&self) -> BatchStats {
        let s = &self.inner.shared;
        BatchStats {
            transactions: s.transactions.load(Ordering::Relaxed),
            jobs: s.jobs.load(Ordering::Relaxed),
            tokens: s.tokens.load(Ordering::Relaxed),
            largest_batch: s.largest.load(Ordering::Relaxed),
        }
    }

    /// Commit what is queued and stop the committer; later submits fail.
    pub fn shutdown(&self) {
        lock(&self.inner.shared.queue).closed = true;
        self.inner.shared.wake.notify_all();
        if let Some(t) = lock(&self.inner.thread).take() {
            let _ = t.join();
        }
    }
}

/// The committer: sleep until there is work, take all of it, commit, answer.
fn run(store: &Store, shared: &Shared) {
    loop {
        let jobs = {
            let mut q = lock(&shared.queue);
            if q.jobs.is_empty() && !q.closed {
                while q.jobs.is_empty() && !q.closed {
                    q.sleeping = true;
                    q = shared.wake.wait(q).unwrap_or_else(|p| p.into_inner());
                }
                // Woken by a submit, possibly ahead of the thread that submitted (the
                // scheduler favours a thread that slept): let the request threads run on
                // first, so that what they are about to submit joins this batch. Free when
                // idle (returns at once if nothing else is runnable); no timer.
                drop(q);
                std::thread::yield_now();
                q = lock(&shared.queue);
            }
            q.sleeping = false;
            if q.jobs.is_empty() {
                // Closed and drained.
                let s = |c: &AtomicU64| c.load(Ordering::Relaxed);
                tracing::info!(
                    transactions = s(&shared.transactions),
                    jobs = s(&shared.jobs),
                    tokens = s(&shared.tokens),
                    largest_batch = s(&shared.largest),
                    "token committer stopped"
                );
                return;
            }
            std::mem::take(&mut q.jobs)
        };
        commit(store, shared, jobs);
    }
}

fn commit(store: &Store, shared: &Shared, jobs: Vec<Job>) {
    let mut results: Vec<Result<()>> = Vec::with_capacity(jobs.len());
    let outcome = store.write(|tx| {
        for job in &jobs {
            // A single INSERT is atomic by itself (a constraint failure undoes that statement
            // and leaves the transaction open); a job of several records needs a savepoint
            // so that none of them stays if one fails.
            let several = job.records.len() > 1;
            if several {
                tx.prepare_cached("SAVEPOINT issue")?.execute([])?;
            }
            let result = job.records.iter().try_for_each(|t| insert_token(tx, t));
            if several {
                if result.is_err() {
                    tx.prepare_cached("ROLLBACK TO issue")?.execute([])?;
                }
                tx.prepare_cached("RELEASE issue")?.execute([])?;
            }
            match result {
                Ok(()) => results.push(Ok(())),
                // Some errors (I/O, disk full) make SQLite roll the whole transaction
                // back; then nothing of the batch holds and every job must hear so.
                Err(e) if tx.is_autocommit() => return Err(e),
                Err(e) => results.push(Err(e)),
            }
        }
        Ok(())
    });
    let n = jobs.len() as u64;
    shared.transactions.fetch_add(1, Ordering::Relaxed);
    shared.jobs.fetch_add(n, Ordering::Relaxed);
    shared.largest.fetch_max(n, Ordering::Relaxed);
    match outcome {
        Ok(()) => {
            let committed: usize = jobs
                .iter()
                .zip(&results)
                .filter(|(_, r)| r.is_ok())
                .map(|(j, _)| j.records.len())
                .sum();
            shared.tokens.fetch_add(committed as u64, Ordering::Relaxed);
            for (job, r) in jobs.iter().zip(results) {
                job.reply.complete(|| r);
            }
        }
        Err(e) => {
            tracing::error!(error = %e, jobs = n, "token batch failed; nothing of it was committed");
            for job in &jobs {
                job.reply.complete(|| Err(e.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{IssuedVia, Scope};
    use crate::token::{self, TokenKind};

    fn store_with_client() -> (tempfile::TempDir, Arc<Store>, String) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open_or_create(&dir.path().join("s.db")).unwrap());
        let admin = crate::admin::Admin::new(&store, crate::time::Clock::system(), "test");
        let (client, _) = admin
            .register_client(crate::admin::RegisterClient {
                name: "batch".into(),
                profile: crate::model::ClientProfile::Web,
                grants: vec![crate::model::GrantType::ClientCredentials],
                scopes: vec![Scope::DirectoryRead],
                redirect_uris: vec![],
                auth_method: None,
                require_consent: false,
                access_token_ttl: None,
                refresh_token_ttl: None,
                client_secret_ttl: None,
                idp: crate::model::IdpRef {
                    kind: crate::model::IdpKind::Entra,
                    app_id: None,
                    tenant: None,
                    owner: None,
                },
                heartbeat: None,
            })
            .unwrap();
        (dir, store, client.id)
    }

    fn record(client: &str) -> (token::NewToken, NewTokenRecord) {
        let t = token::generate(TokenKind::Access);
        let r = NewTokenRecord {
            id: t.id.clone(),
            hash: t.hash,
            kind: TokenKind::Access,
            client_id: client.into(),
            subject: client.into(),
            scopes: vec![Scope::DirectoryRead],
            issued_at: 1_000,
            expires_at: i64::MAX / 2,
            issued_via: IssuedVia::ClientCredentials,
            family_id: None,
            parent_id: None,
            label: None,
        };
        (t, r)
    }

    #[test]
    fn a_lone_submit_commits_at_once() {
        let (_d, store, client) = store_with_client();
        let b = TokenBatcher::start(store.clone()).unwrap();
        let (t, r) = record(&client);
        b.insert(vec![r]).unwrap();
        assert!(store.token(&t.id).unwrap().is_some());
        assert_eq!(b.stats().transactions, 1);
        assert_eq!(b.stats().tokens, 1);
    }

    #[test]
    fn concurrent_submits_are_all_committed_and_visible_at_once() {
        let (_d, store, client) = store_with_client();
        let b = TokenBatcher::start(store.clone()).unwrap();
        const THREADS: usize = 16;
        const EACH: usize = 50;
        let barrier = Arc::new(std::sync::Barrier::new(THREADS));
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                let (b, store, client, barrier) =
                    (b.clone(), store.clone(), client.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    for _ in 0..EACH {
                        let (t, r) = record(&client);
                        b.insert(vec![r]).unwrap();
                        // Committed before the "response": visible to a fresh reader now.
                        let found = store.token(&t.id).unwrap().unwrap();
                        assert_eq!(found.id, t.id);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let s = b.stats();
        assert_eq!(s.tokens, (THREADS * EACH) as u64);
        assert_eq!(s.jobs, (THREADS * EACH) as u64);
        assert!(s.transactions <= s.jobs, "{s:?}");
    }

    #[test]
    fn what_queues_during_a_commit_shares_the_next_transaction() {
        let (_d, store, client) = store_with_client();
        let b = TokenBatcher::start(store.clone()).unwrap();
        const THREADS: usize = 16;
        // The writer is busy (as during a commit): submits queue up behind it.
        let guard = store.writer();
        let submitted = Arc::new(AtomicU64::new(0));
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                let (b, store, client, submitted) =
                    (b.clone(), store.clone(), client.clone(), submitted.clone());
                std::thread::spawn(move || {
                    let (t, r) = record(&client);
                    let p = b.submit(vec![r]);
                    submitted.fetch_add(1, Ordering::SeqCst);
                    p.wait().unwrap();
                    assert!(store.token(&t.id).unwrap().is_some());
                })
            })
            .collect();
        while submitted.load(Ordering::SeqCst) < THREADS as u64 {
            std::thread::yield_now();
        }
        drop(guard);
        for h in handles {
            h.join().unwrap();
        }
        let s = b.stats();
        assert_eq!(s.tokens, THREADS as u64, "{s:?}");
        // The committer took what was queued when it woke (at least one job) and waited for
        // the writer; everything else went into one more transaction.
        assert!(s.transactions <= 2, "{s:?}");
        assert!(s.largest_batch >= (THREADS / 2) as u64, "{s:?}");
    }

    #[test]
    fn a_failing_job_fails_alone() {
        let (_d, store, client) = store_with_client();
        let b = TokenBatcher::start(store.clone()).unwrap();
        let (_, dup) = record(&client);
        b.insert(vec![dup.clone()]).unwrap();
        let (t1, r1) = record(&client);
        // A two-record job whose second record collides: neither of its records may stay.
        let (t2, r2) = record(&client);
        let (t3, r3) = record(&client);
        let mut p = b
            .submit_many(vec![vec![r1], vec![r2, dup], vec![r3]])
            .into_iter();
        p.next().unwrap().wait().unwrap();
        assert!(matches!(
            p.next().unwrap().wait(),
            Err(StoreError::Conflict(_))
        ));
        p.next().unwrap().wait().unwrap();
        assert!(store.token(&t1.id).unwrap().is_some());
        assert!(store.token(&t2.id).unwrap().is_none());
        assert!(store.token(&t3.id).unwrap().is_some());
        let s = b.stats();
        assert_eq!(s.transactions, 2, "{s:?}");
        assert_eq!(s.tokens, 3, "{s:?}");
    }

    #[test]
    fn a_failed_transaction_reaches_every_waiter() {
        let (_d, store, client) = store_with_client();
        let b = TokenBatcher::start(store.clone()).unwrap();
        let guard = store.writer();
        // An open transaction on the writer connection makes the committer's BEGIN
        // IMMEDIATE fail ("cannot start a transaction within a transaction").
        guard.execute_batch("BEGIN").unwrap();
        let jobs = (0..3).map(|_| vec![record(&client).1]).collect();
        let pending = b.submit_many(jobs);
        drop(guard);
        for p in pending {
            assert!(matches!(p.wait(), Err(StoreError::Sqlite(_))));
        }
        // The store recovers: the next batch commits.
        store.writer().execute_batch("ROLLBACK").unwrap();
        b.insert(vec![record(&client).1]).unwrap();
    }

    #[test]
    fn submits_after_shutdown_fail_and_queued_ones_commit() {
        let (_d, store, client) = store_with_client();
        let b = TokenBatcher::start(store.clone()).unwrap();
        let guard = store.writer();
        let (t, r) = record(&client);
        let queued = b.submit(vec![r]);
        let b2 = b.clone();
        let stopper = std::thread::spawn(move || b2.shutdown());
        while !lock(&b.inner.shared.queue).closed {
            std::thread::yield_now();
        }
        drop(guard);
        stopper.join().unwrap();
        queued.wait().unwrap();
        assert!(store.token(&t.id).unwrap().is_some());
        assert!(b.insert(vec![record(&client).1]).is_err());
    }

    #[test]
    fn the_reply_is_a_future() {
        let (_d, store, client) = store_with_client();
        let b = TokenBatcher::start(store.clone()).unwrap();
        let (t, r) = record(&client);
        let mut p = std::pin::pin!(b.submit(vec![r]));
        let mut cx = Context::from_waker(Waker::noop());
        let r = loop {
            if let Poll::Ready(r) = p.as_mut().poll(&mut cx) {
                break r;
            }
            std::thread::yield_now();
        };
        r.unwrap();
        assert!(store.token(&t.id).unwrap().is_some());
    }
}
