//! Group commit for token issuance and SCIM writes: many concurrent requests' writes go
//! to SQLite in one transaction, and each request learns the outcome of *its* write before
//! it answers, so "a token (a created User) returned to a client is committed before the
//! response leaves" holds while the commit cost (the WAL append of the touched pages and
//! its fsync) is shared by the whole batch. A job is the token records of one request or
//! a write of the store's own ([`TokenBatcher::insert_scim`], [`TokenBatcher::replace_scim`],
//! [`TokenBatcher::change_scim`], which also reads and changes a SCIM User in the
//! transaction).
//!
//! Shape: leader/follower. [`TokenBatcher::submit`] queues a job (the records of one
//! request and a reply slot); the first job queued while no leader exists makes its
//! submitter the leader. The leader takes *everything* queued by then, commits it in one
//! `BEGIN IMMEDIATE` transaction and fills every reply; if more jobs queued up meanwhile,
//! the first of them is made the next leader. An async leader ([`TokenBatcher::commit`])
//! first yields to its runtime, so the requests that arrived in the same turn of the
//! event loop queue behind it and share its transaction; there is no timer.
//!
//! The commit never runs on the event loop: the async leader hands its batch to the
//! runtime's blocking pool and awaits it. A commit waits for the fsync of the WAL (with
//! `durable_commits`) and, while `config` or another instance holds the store's write
//! lock, for up to the busy timeout; done inline, the worker thread would serve nothing
//! meanwhile (408s were seen while a long `config` revoke ran). Off the loop, the worker
//! keeps parsing requests during the commit, and they queue for the next batch. (The
//! first design, a committer thread of our own, cost two context switches per batch and a
//! cross-thread wake per request; the blocking pool's hop is per batch, and what it costs
//! is measured in bench/RESULTS.md.)
//!
//! Failure semantics: a job is atomic on its own (one INSERT, or a `SAVEPOINT` around a
//! job of several records), so a job whose insert fails (say a duplicate id) is undone
//! alone and gets its error while the others commit. If the transaction as a whole fails
//! (begin, commit, an error after which SQLite rolled the transaction back: disk full, I/O
//! error), every job of the batch gets that error: nothing of the batch was committed. A
//! job is never left without an answer, and leadership is never lost: a [`Pending`]
//! dropped before its answer (the client went away) takes its job out of the queue and,
//! if it was the leader, passes the lead on; a leader that panics mid-batch answers its
//! jobs with an error and passes the lead on while unwinding ([`HandOver`]).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Waker};

use super::tokens::{LiveClients, insert_token_in};
use super::{NewTokenRecord, Result, Store, StoreError};

use crate::scim::json::to_text;
use crate::sync::lock;

#[derive(Default)]
struct ReplyState {
    result: Option<Result<()>>,
    /// Answered once already (the waiter may have taken the result since).
    answered: bool,
    /// This job's submitter commits the next batch. Set only under the queue lock.
    lead: bool,
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

    /// Make this job's submitter the leader (caller holds the queue lock).
    fn elect(&self) {
        let (waker, blocking) = {
            let mut s = lock(&self.state);
            s.lead = true;
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

/// What a SCIM replace's job hands back: PostgreSQL's record, or on SQLite what the
/// UPDATE wrote and returned (`None` when the version moved), for the record to be built
/// after the commit.
enum Replaced {
    Record(Option<super::ScimRecord>),
    Row(Option<ReplacedRow>),
}

/// A SQLite replace's row: what it wrote (the document and its stored text), and what the
/// UPDATE returned.
struct ReplacedRow {
    id: String,
    doc: serde_json::Value,
    text: String,
    now: String,
    returned: super::scim::Returned,
}

/// The longest stored document (and change request) a SCIM User's change is made from
/// inside the write lock ([`TokenBatcher::change_scim`]). A usual User is well under 2 KiB;
/// at this bound the read, patch and check take tens of microseconds, which every write
/// queued behind them waits.
pub const CHANGE_IN_WRITER_BYTES: usize = 16 * 1024;

/// What [`TokenBatcher::change_scim`] did.
#[derive(Debug)]
pub enum ScimChange<E> {
    /// Not made in the writer (PostgreSQL, a Group, or a document longer than
    /// [`CHANGE_IN_WRITER_BYTES`]): nothing was read or written.
    Declined,
    /// No such resource of that type.
    Missing,
    /// The change refused it; nothing was written.
    Refused(E),
    /// The change changes nothing: the resource as it is (its version kept).
    Unchanged(super::ScimRecord),
    /// Written and committed: the new record, and the text its document was stored as.
    Written(super::ScimRecord, String),
}

/// The batch's transaction, on whichever backend the store runs.
pub(crate) enum BatchTx<'a, 'b, 'c> {
    Sqlite(&'a rusqlite::Connection),
    Postgres(&'a mut super::pg::Tx<'b, 'c>),
}

/// What a job writes: run inside the batch's transaction, which it is given.
type Work = Box<dyn FnOnce(&mut BatchTx<'_, '_, '_>) -> Result<()> + Send>;

/// One request's write and where its answer goes.
struct Job {
    work: Option<Work>,
    /// A token job's records, which the leader writes itself (on PostgreSQL, those of the
    /// whole batch in one statement); empty for a job with `work`.
    records: Vec<NewTokenRecord>,
    /// Token records the job inserts (for the counters).
    tokens: u64,
    /// The work is one statement (atomic by itself): no savepoint needed.
    one_statement: bool,
    reply: Arc<Reply>,
}

impl Job {
    /// The job inserting `records`.
    fn tokens(records: Vec<NewTokenRecord>, reply: Arc<Reply>) -> Job {
        Job {
            tokens: records.len() as u64,
            one_statement: records.len() <= 1,
            work: None,
            records,
            reply,
        }
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        // A no-op if the job was answered; otherwise its waiter must not hang.
        self.reply.complete(|| {
            Err(StoreError::Database(
                "the token batch was abandoned before committing this token".into(),
            ))
        });
    }
}

#[derive(Default)]
struct Queue {
    jobs: Vec<Job>,
    /// A leader exists (elected, or committing): a new job waits for it.
    leader: bool,
    closed: bool,
}

/// Counters of what the batcher did, for tests and metrics.
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

/// How one record is written (the store's insert; a test swaps in a failing one).
type InsertFn = fn(&rusqlite::Connection, &NewTokenRecord, &mut LiveClients) -> Result<()>;

struct Shared {
    store: Arc<Store>,
    insert: InsertFn,
    queue: Mutex<Queue>,
    transactions: AtomicU64,
    jobs: AtomicU64,
    tokens: AtomicU64,
    largest: AtomicU64,
}

impl Shared {
    /// Pass the lead to the first queued job, or note that there is no leader (caller
    /// holds the queue lock).
    fn hand_over(q: &mut Queue) {
        match q.jobs.first() {
            Some(next) => next.reply.elect(),
            None => q.leader = false,
        }
    }

    /// The leader's work: commit everything queued (taken once the write lock is held, so
    /// what queues while waiting for it joins), answer it, pass the lead on.
    fn lead(&self) {
        // Runs last, even when something below panics: the taken jobs are answered by
        // their drop, and this hands the lead to whatever queued meanwhile. Without it a
        // panic left `leader` set with nobody leading, and every later issuance hung.
        let _hand_over = HandOver(self);
        let mut taken: Vec<Job> = Vec::new();
        let mut took = false;
        let mut results: Vec<Result<()>> = Vec::new();
        let outcome = self.store.write_batch(|tx| {
            taken = std::mem::take(&mut lock(&self.queue).jobs);
            took = true;
            results.reserve(taken.len());
            let mut live = LiveClients::default();
            // On PostgreSQL the token records of the whole batch go in one statement (a
            // round trip per record cost more than the rest of the batch): each token
            // job's outcome, by position.
            let mut bulk = match tx {
                BatchTx::Postgres(db) => Some(super::pg::insert_token_jobs(
                    db,
                    &taken
                        .iter()
                        .map(|j| j.records.as_slice())
                        .collect::<Vec<_>>(),
                )?),
                BatchTx::Sqlite(_) => None,
            };
            for (i, job) in taken.iter_mut().enumerate() {
                if job.work.is_none() {
                    if let Some(done) = &mut bulk {
                        results.push(std::mem::replace(&mut done[i], Ok(())));
                        continue;
                    }
                }
                // A job of one record is atomic by itself: its client's check writes
                // nothing, and its one INSERT either holds or is undone alone (on SQLite
                // a constraint failure undoes that statement and leaves the transaction
                // open; a token refused for a cut-off client inserts nothing and fails no
                // statement on either). So is a SCIM User's write on SQLite
                // (`TokenBatcher::one_statement`). A job of several statements needs a
                // savepoint so that none of them stays if one fails.
                let several = !job.one_statement;
                if several {
                    tx.savepoint("SAVEPOINT issue")?;
                }
                let result = match job.work.take() {
                    Some(work) => work(tx),
                    // A token job: its records, each checked against its client (once
                    // per client and transaction: `live`) and inserted.
                    None => match tx {
                        BatchTx::Sqlite(c) => job
                            .records
                            .iter()
                            .try_for_each(|t| (self.insert)(c, t, &mut live)),
                        BatchTx::Postgres(db) => job
                            .records
                            .iter()
                            .try_for_each(|t| super::pg::insert_token(db, t)),
                    },
                };
                if several {
                    if result.is_err() {
                        tx.savepoint("ROLLBACK TO SAVEPOINT issue")?;
                    }
                    tx.savepoint("RELEASE SAVEPOINT issue")?;
                }
                match result {
                    Ok(()) => results.push(Ok(())),
                    Err(StoreError::ClientCutOff(c)) => {
                        results.push(Err(StoreError::ClientCutOff(c)))
                    }
                    // Some errors (I/O, disk full) make SQLite roll the whole transaction
                    // back, and any failed statement outside a savepoint aborts a
                    // PostgreSQL one; then nothing of the batch holds and every job must
                    // hear so.
                    Err(e) if tx.lost(several) => return Err(e),
                    Err(e) => results.push(Err(e)),
                }
            }
            Ok(())
        });
        if !took {
            // The transaction failed before the jobs were taken: they fail with it.
            taken = std::mem::take(&mut lock(&self.queue).jobs);
        }
        let n = taken.len() as u64;
        self.transactions.fetch_add(1, Ordering::Relaxed);
        self.jobs.fetch_add(n, Ordering::Relaxed);
        self.largest.fetch_max(n, Ordering::Relaxed);
        match outcome {
            Ok(()) => {
                let committed: u64 = taken
                    .iter()
                    .zip(&results)
                    .filter(|(_, r)| r.is_ok())
                    .map(|(j, _)| j.tokens)
                    .sum();
                self.tokens.fetch_add(committed, Ordering::Relaxed);
                for (job, r) in taken.iter().zip(results) {
                    job.reply.complete(|| r);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, jobs = n, "token batch failed; nothing of it was committed");
                for job in &taken {
                    job.reply.complete(|| Err(e.clone()));
                }
            }
        }
    }
}

impl BatchTx<'_, '_, '_> {
    /// Run a savepoint statement (`SAVEPOINT issue`, `ROLLBACK TO SAVEPOINT issue`,
    /// `RELEASE SAVEPOINT issue`; the same words on both backends).
    fn savepoint(&mut self, sql: &str) -> Result<()> {
        match self {
            BatchTx::Sqlite(c) => {
                c.prepare_cached(sql)?.execute([])?;
                Ok(())
            }
            BatchTx::Postgres(db) => db.batch(sql),
        }
    }

    /// Whether a job's failure lost the whole transaction: SQLite rolled it back (I/O,
    /// disk full), or on PostgreSQL the failed statement ran outside a savepoint.
    fn lost(&self, in_savepoint: bool) -> bool {
        match self {
            BatchTx::Sqlite(c) => c.is_autocommit(),
            BatchTx::Postgres(_) => !in_savepoint,
        }
    }
}

impl Store {
    /// Run `f` in one write transaction of either backend: the batch's.
    fn write_batch<T>(&self, f: impl FnOnce(&mut BatchTx<'_, '_, '_>) -> Result<T>) -> Result<T> {
        if let Some(pg) = self.postgres() {
            return pg.write(|tx| f(&mut BatchTx::Postgres(tx)));
        }
        self.write(|tx| f(&mut BatchTx::Sqlite(tx)))
    }
}

/// Passes the lead on when the leader's [`Shared::lead`] ends, by return or by panic.
struct HandOver<'a>(&'a Shared);

impl Drop for HandOver<'_> {
    fn drop(&mut self) {
        Shared::hand_over(&mut lock(&self.0.queue));
    }
}

/// What [`Pending::turn`] resolved to.
enum Turn {
    Answered(Result<()>),
    Lead,
}

/// The answer to one [`TokenBatcher::submit`]: `Ok` once the records are committed.
/// [`TokenBatcher::commit`] awaits it (leading on the blocking pool when its turn comes);
/// tests [`wait`](Pending::wait) for it from blocking code.
#[must_use = "the records are committed only when this resolves to Ok"]
pub struct Pending {
    reply: Arc<Reply>,
    shared: Arc<Shared>,
}

impl Pending {
    /// Whether this submit leads the next batch (for a caller that wants to yield first).
    fn leads(&self) -> bool {
        lock(&self.reply.state).lead
    }

    /// Resolve when this job is answered, or when its submitter is to lead the next
    /// batch: then the lead is taken from this `Pending` (its drop no longer passes it
    /// on), and the caller must run [`Shared::lead`], which passes it on when done.
    fn turn(&self) -> impl Future<Output = Turn> + '_ {
        std::future::poll_fn(move |cx: &mut Context<'_>| {
            let mut s = lock(&self.reply.state);
            if let Some(r) = s.result.take() {
                return Poll::Ready(Turn::Answered(r));
            }
            if s.lead {
                s.lead = false;
                return Poll::Ready(Turn::Lead);
            }
            match &s.waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => s.waker = Some(cx.waker().clone()),
            }
            Poll::Pending
        })
    }

    /// Block until the batch holding these records has committed (or failed), committing
    /// it here if the lead comes to this thread. For tests: the server awaits instead.
    #[cfg(test)]
    pub fn wait(self) -> Result<()> {
        loop {
            {
                let mut s = lock(&self.reply.state);
                loop {
                    if let Some(r) = s.result.take() {
                        return r;
                    }
                    if s.lead {
                        break;
                    }
                    s.blocking = true;
                    s = self.reply.cv.wait(s).unwrap_or_else(|p| p.into_inner());
                }
            }
            self.shared.lead();
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        let mut q = lock(&self.shared.queue);
        let lead = {
            let s = lock(&self.reply.state);
            if s.answered {
                return;
            }
            s.lead
        };
        // Nobody will read the answer: take the job back if it is still queued (its drop
        // answers the dead reply), and never leave the queue without a leader.
        if let Some(pos) = q
            .jobs
            .iter()
            .position(|j| Arc::ptr_eq(&j.reply, &self.reply))
        {
            drop(q.jobs.remove(pos));
        }
        if lead {
            Shared::hand_over(&mut q);
        }
    }
}

/// Group commit over one store; cheap to clone (all clones share the queue).
#[derive(Clone)]
pub struct TokenBatcher {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for TokenBatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenBatcher")
            .field("stats", &self.stats())
            .finish()
    }
}

impl TokenBatcher {
    pub fn new(store: Arc<Store>) -> TokenBatcher {
        TokenBatcher {
            shared: Arc::new(Shared {
                store,
                insert: insert_token_in,
                queue: Mutex::default(),
                transactions: AtomicU64::new(0),
                jobs: AtomicU64::new(0),
                tokens: AtomicU64::new(0),
                largest: AtomicU64::new(0),
            }),
        }
    }

    /// Queue `records` (one request's tokens, committed all or none) for the next
    /// transaction. The returned [`Pending`] resolves once they are committed.
    pub fn submit(&self, records: Vec<NewTokenRecord>) -> Pending {
        let reply = Arc::new(Reply::default());
        let pending = Pending {
            reply: reply.clone(),
            shared: self.shared.clone(),
        };
        let job = Job::tokens(records, reply);
        self.enqueue(job);
        pending
    }

    /// Queue `job`; its submitter leads if nobody does (a closed batcher answers it with
    /// an error at once, by its drop).
    fn enqueue(&self, job: Job) {
        let mut q = lock(&self.shared.queue);
        if q.closed {
            drop(q);
            drop(job); // answers with an error
            return;
        }
        if !q.leader {
            q.leader = true;
            lock(&job.reply.state).lead = true;
        }
        q.jobs.push(job);
    }

    /// Queue `records` and resolve once they are committed. A leader first yields to the
    /// runtime so that the other requests of this turn of the event loop join its batch,
    /// then commits the batch on the blocking pool (never on the event loop).
    pub async fn commit(&self, records: Vec<NewTokenRecord>) -> Result<()> {
        self.settle(self.submit(records)).await
    }

    /// Run `write` in the next batch's transaction and resolve to its value once the
    /// batch has committed: a SCIM create answers only with what is durable, and shares
    /// the commit with every write queued beside it. If `write` fails, what it wrote is
    /// undone and the rest of the batch commits: by a savepoint of its own, unless
    /// `one_statement` says that at most one of its statements writes and nothing fails
    /// after it (SQLite undoes a failed statement by itself; see [`Self::one_statement`]).
    async fn run<T: Send + 'static>(
        &self,
        one_statement: bool,
        write: impl FnOnce(&mut BatchTx<'_, '_, '_>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let slot: Arc<Mutex<Option<T>>> = Arc::default();
        let out = slot.clone();
        let reply = Arc::new(Reply::default());
        let pending = Pending {
            reply: reply.clone(),
            shared: self.shared.clone(),
        };
        self.enqueue(Job {
            work: Some(Box::new(move |c| {
                *lock(&out) = Some(write(c)?);
                Ok(())
            })),
            records: Vec::new(),
            tokens: 0,
            one_statement,
            reply,
        });
        self.settle(pending).await?;
        lock(&slot)
            .take()
            .ok_or_else(|| StoreError::Database("the write committed without its result".into()))
    }

    /// Whether a SCIM write of `resource_type` needs no savepoint of its own: on SQLite, a
    /// User's create is one INSERT and its replace one UPDATE that writes (the second is
    /// tried only when the first wrote nothing), and a failed statement is undone alone,
    /// the transaction left open. A Group's writes also set its members, several
    /// statements; and on PostgreSQL a failed statement outside a savepoint aborts the
    /// whole transaction. The savepoint cost a User's write two statements and a copy of
    /// every page it touched into SQLite's statement journal (bench/RESULTS.md).
    fn one_statement(&self, resource_type: &str) -> bool {
        resource_type != "Group" && self.shared.store.postgres().is_none()
    }

    /// Create a SCIM resource in the next batch (as [`Store::insert_scim`] does in a
    /// transaction of its own), and resolve to it once it is committed, with the text its
    /// document was stored as on SQLite (`json::to_text` of it; `None` on PostgreSQL): the
    /// answer can be written around it instead of serialising the document again.
    pub async fn insert_scim(
        &self,
        resource_type: &'static str,
        id: String,
        doc: serde_json::Value,
        now: String,
    ) -> Result<(super::ScimRecord, Option<String>)> {
        // After the INSERT nothing can fail: the record is built from what it wrote.
        self.run(self.one_statement(resource_type), move |tx| match tx {
            BatchTx::Sqlite(c) => {
                let text = to_text(&doc);
                super::scim::insert_row(c, resource_type, &id, &doc, &text, &now)?;
                let record = super::ScimRecord::inserted(resource_type, id, doc, now);
                Ok((record, Some(text)))
            }
            BatchTx::Postgres(db) => Ok((
                super::pg::insert_scim_in(db, resource_type, &id, &doc, &now)?,
                None,
            )),
        })
        .await
    }

    /// Replace a SCIM resource's document in the next batch if it is still at `version`;
    /// resolve to the new record once committed (with its stored text, as
    /// [`Self::insert_scim`] does), or to `None` if it changed since (see
    /// `store::scim::replace_at_version`).
    pub async fn replace_scim(
        &self,
        resource_type: &'static str,
        id: String,
        version: i64,
        doc: serde_json::Value,
        now: String,
    ) -> Result<Option<(super::ScimRecord, Option<String>)>> {
        // The record is built once the batch committed, outside the job: reading the
        // groups the UPDATE returned is the one step after it that could fail, and a job
        // without a savepoint must not fail once it wrote.
        let replaced = self
            .run(self.one_statement(resource_type), move |tx| match tx {
                BatchTx::Sqlite(c) => {
                    let text = to_text(&doc);
                    let returned = super::scim::replace_row(
                        c,
                        resource_type,
                        &id,
                        version,
                        &doc,
                        &text,
                        &now,
                    )?;
                    Ok(Replaced::Row(returned.map(|returned| ReplacedRow {
                        id,
                        doc,
                        text,
                        now,
                        returned,
                    })))
                }
                BatchTx::Postgres(db) => Ok(Replaced::Record(super::pg::replace_scim_in(
                    db,
                    resource_type,
                    &id,
                    version,
                    &doc,
                    &now,
                )?)),
            })
            .await?;
        match replaced {
            Replaced::Row(Some(row)) => super::ScimRecord::updated(
                resource_type,
                row.id,
                row.doc,
                row.now,
                version,
                row.returned,
            )
            .map(|record| Some((record, Some(row.text)))),
            Replaced::Row(None) => Ok(None),
            Replaced::Record(record) => Ok(record.map(|r| (r, None))),
        }
    }

    /// Change a SCIM User inside the next batch's transaction: read it there, let `change`
    /// make its new document from it (`Ok(None)`: the change changes nothing), write that,
    /// and resolve once the batch has committed. Nothing can come between the read and the
    /// write, so no version is checked and no attempt is lost.
    ///
    /// Why inside: every commit empties the page cache of each reading connection, so a
    /// read on the request's thread between commits fetched every page again (two B-tree
    /// descents) and cost a PATCH more than its parse, patch and check together; the
    /// writer's own cache outlives its commits, and the UPDATE that follows finds the
    /// same pages there (bench/RESULTS.md). The price is `change`'s time inside the write
    /// lock, which [`CHANGE_IN_WRITER_BYTES`] bounds: a stored document longer than that is
    /// not parsed here, and the answer is [`ScimChange::Declined`], as it is on
    /// PostgreSQL (whose reads have no such cost) and for a Group (whose write is several
    /// statements). Then the caller prepares the change outside and writes it with
    /// [`Self::replace_scim`].
    ///
    /// A panic in `change` fails this job alone (it wrote nothing yet).
    pub async fn change_scim<E: Send + 'static>(
        &self,
        resource_type: &'static str,
        id: String,
        now: String,
        change: impl FnOnce(&super::ScimRecord) -> std::result::Result<Option<serde_json::Value>, E>
        + Send
        + 'static,
    ) -> Result<ScimChange<E>> {
        if !self.one_statement(resource_type) {
            return Ok(ScimChange::Declined);
        }
        let changed = self
            .run(true, move |tx| {
                // The job's outcome: the version changed from and the row written (its
                // record is built after the commit), or what ended it before a write.
                let BatchTx::Sqlite(c) = tx else {
                    return Ok(Err(ScimChange::Declined));
                };
                let current = match super::scim::get_for_change(
                    c,
                    resource_type,
                    &id,
                    CHANGE_IN_WRITER_BYTES,
                )? {
                    super::scim::ForChange::Missing => return Ok(Err(ScimChange::Missing)),
                    super::scim::ForChange::Large => return Ok(Err(ScimChange::Declined)),
                    super::scim::ForChange::Found(current) => current,
                };
                let made =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| change(&current)));
                let doc = match made {
                    Ok(Ok(Some(doc))) => doc,
                    Ok(Ok(None)) => return Ok(Err(ScimChange::Unchanged(current))),
                    Ok(Err(e)) => return Ok(Err(ScimChange::Refused(e))),
                    Err(_) => {
                        return Err(StoreError::Database(
                            "a SCIM change panicked in the writer".into(),
                        ));
                    }
                };
                let text = to_text(&doc);
                let version = current.version;
                // Read in this transaction at this version: the UPDATE finds it there.
                let returned =
                    super::scim::replace_row(c, resource_type, &id, version, &doc, &text, &now)?
                        .ok_or_else(|| {
                            StoreError::Database("the resource moved inside the write lock".into())
                        })?;
                Ok(Ok((
                    version,
                    ReplacedRow {
                        id,
                        doc,
                        text,
                        now,
                        returned,
                    },
                )))
            })
            .await?;
        let (version, row) = match changed {
            Ok(written) => written,
            Err(ended) => return Ok(ended),
        };
        // As in `replace_scim`, the record is built after the commit.
        let record = super::ScimRecord::updated(
            resource_type,
            row.id,
            row.doc,
            row.now,
            version,
            row.returned,
        )?;
        Ok(ScimChange::Written(record, row.text))
    }

    /// Resolve once `pending`'s job is answered, leading its batch if the lead comes here.
    async fn settle(&self, pending: Pending) -> Result<()> {
        if pending.leads() {
            tokio::task::yield_now().await;
        }
        loop {
            match pending.turn().await {
                Turn::Answered(r) => return r,
                Turn::Lead => {
                    // No await between taking the lead and spawning: the batch is led
                    // even if this request is cancelled now; the blocking task passes
                    // the lead on when it is done (by return or by panic).
                    let shared = self.shared.clone();
                    let led = tokio::task::spawn_blocking(move || shared.lead());
                    match led.await {
                        Ok(()) => {}
                        // The runtime is shutting down and never ran it: lead here.
                        Err(e) if e.is_cancelled() => self.shared.lead(),
                        // Its jobs were answered and the lead passed on while unwinding.
                        Err(_) => tracing::error!("the token batch's commit panicked"),
                    }
                }
            }
        }
    }

    /// Queue several jobs at once (so a test knows they share a transaction).
    #[cfg(test)]
    fn submit_many(&self, jobs: Vec<Vec<NewTokenRecord>>) -> Vec<Pending> {
        let mut q = lock(&self.shared.queue);
        let mut out = Vec::new();
        for records in jobs {
            let reply = Arc::new(Reply::default());
            out.push(Pending {
                reply: reply.clone(),
                shared: self.shared.clone(),
            });
            if !q.leader {
                q.leader = true;
                lock(&reply.state).lead = true;
            }
            q.jobs.push(Job::tokens(records, reply));
        }
        out
    }

    /// Queue `records` and block until they are committed (tests; the server awaits
    /// [`TokenBatcher::commit`]).
    #[cfg(test)]
    pub fn insert(&self, records: Vec<NewTokenRecord>) -> Result<()> {
        self.submit(records).wait()
    }

    /// What the batcher has done so far.
    pub fn stats(&self) -> BatchStats {
        let s = &self.shared;
        BatchStats {
            transactions: s.transactions.load(Ordering::Relaxed),
            jobs: s.jobs.load(Ordering::Relaxed),
            tokens: s.tokens.load(Ordering::Relaxed),
            largest_batch: s.largest.load(Ordering::Relaxed),
        }
    }

    /// Refuse new submits (what is queued still commits, by its leader) and log the
    /// counters.
    pub fn shutdown(&self) {
        lock(&self.shared.queue).closed = true;
        let s = self.stats();
        tracing::info!(
            transactions = s.transactions,
            jobs = s.jobs,
            tokens = s.tokens,
            largest_batch = s.largest_batch,
            "token batcher closed"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Scope;
    use crate::token;

    fn store_with_client() -> (tempfile::TempDir, Arc<Store>, String) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open_or_create(dir.path().join("s.db")).unwrap());
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
                require_pkce: false,
                email_domains: Vec::new(),
                alert_emails: Vec::new(),
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

    /// One event loop, as an actix worker runs: a current-thread runtime and a LocalSet.
    fn event_loop() -> (tokio::runtime::Runtime, tokio::task::LocalSet) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        (rt, tokio::task::LocalSet::new())
    }

    fn record(client: &str) -> (token::NewToken, NewTokenRecord) {
        super::super::tokens::access_record(client, 1_000, i64::MAX / 2)
    }

    /// The results of `handles`, in order (each task's panic is the test's).
    async fn joined<T>(handles: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
        let mut out = Vec::with_capacity(handles.len());
        for h in handles {
            out.push(h.await.unwrap());
        }
        out
    }

    /// Users `u0`…`u{n-1}` (userName `user{i}@example.com`) and a Group `g` of `u0`.
    fn users_and_a_group(store: &Store, n: usize, now: &str) {
        for i in 0..n {
            store
                .insert_scim(
                    "User",
                    &format!("u{i}"),
                    &serde_json::json!({"userName": format!("user{i}@example.com")}),
                    now,
                )
                .unwrap();
        }
        store
            .insert_scim(
                "Group",
                "g",
                &serde_json::json!({"displayName": "staff", "members": [{"value": "u0"}]}),
                now,
            )
            .unwrap();
    }

    /// Disable `client` (`disable-api-client`): its epoch moves on, no token is issued.
    fn disable(store: &Store, client: &str) {
        let event = crate::model::NewAuditEvent::new(
            "test",
            crate::model::AuditAction::ClientDisable,
            "success",
        );
        store
            .cut_off_client(client, "test", Some(true), 1_000, &event)
            .unwrap();
    }

    /// One batch on either backend: the jobs of a client cut off since they authenticated
    /// fail alone (none of a job's records stays), the others commit, and a job of two
    /// records commits both.
    #[test]
    fn a_cut_off_client_s_jobs_fail_alone_on_both_backends() {
        for t in crate::store::testing::stores("batch_cut_off") {
            let b = t.backend;
            let client = |name| crate::store::testing::client(&t.store, name);
            let (live, cut) = (client("live"), client("cut"));
            disable(&t.store, &cut);
            let batcher = TokenBatcher::new(t.store.clone());
            let (a1, a2, c1, l2) = (record(&live), record(&live), record(&cut), record(&live));
            let pending = batcher.submit_many(vec![vec![a1.1, a2.1], vec![c1.1], vec![l2.1]]);
            let results: Vec<_> = pending.into_iter().map(Pending::wait).collect();
            assert!(results[0].is_ok(), "{b}: {:?}", results[0]);
            assert!(
                matches!(results[1], Err(StoreError::ClientCutOff(_))),
                "{b}: {:?}",
                results[1]
            );
            assert!(results[2].is_ok(), "{b}: {:?}", results[2]);
            for (t_, stored) in [(&a1.0, true), (&a2.0, true), (&c1.0, false), (&l2.0, true)] {
                assert_eq!(t.token(&t_.id).unwrap().is_some(), stored, "{b}: {}", t_.id);
            }
            assert_eq!(batcher.stats().transactions, 1, "{b}: one transaction");
        }
    }

    /// A batch checks each client's row once (`LiveClients`), and only for its own
    /// transaction: a client cut off between two batches gets no token from the second,
    /// though the first found it live.
    #[test]
    fn a_client_found_live_in_one_batch_is_checked_again_in_the_next() {
        let (_d, store, client) = store_with_client();
        let b = TokenBatcher::new(store.clone());
        let (t1, r1) = record(&client);
        let (t2, r2) = record(&client);
        let first = b.submit_many(vec![vec![r1], vec![r2]]);
        for p in first {
            p.wait().unwrap();
        }
        assert!(store.token(&t1.id).unwrap().is_some());
        assert!(store.token(&t2.id).unwrap().is_some());
        disable(&store, &client);
        let (t3, r3) = record(&client);
        assert!(matches!(
            b.insert(vec![r3]),
            Err(StoreError::ClientCutOff(_))
        ));
        assert!(store.token(&t3.id).unwrap().is_none());
        assert_eq!(b.stats().transactions, 2);
    }

    #[test]
    fn a_lone_submit_commits_at_once() {
        let (_d, store, client) = store_with_client();
        let b = TokenBatcher::new(store.clone());
        let (t, r) = record(&client);
        b.insert(vec![r]).unwrap();
        assert!(store.token(&t.id).unwrap().is_some());
        assert_eq!(b.stats().transactions, 1);
        assert_eq!(b.stats().tokens, 1);
    }

    #[test]
    fn concurrent_submits_are_all_committed_and_visible_at_once() {
        let (_d, store, client) = store_with_client();
        let b = TokenBatcher::new(store.clone());
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
        let b = TokenBatcher::new(store.clone());
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
        // The leader waited for the writer and then took everything queued meanwhile
        // (a submit that came after it took the queue leads one more transaction).
        assert!(s.transactions <= 2, "{s:?}");
        assert!(s.largest_batch >= (THREADS / 2) as u64, "{s:?}");
    }

    #[test]
    fn a_failing_job_fails_alone() {
        let (_d, store, client) = store_with_client();
        let b = TokenBatcher::new(store.clone());
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
        let b = TokenBatcher::new(store.clone());
        let guard = store.writer().unwrap();
        // An open transaction on the writer connection makes the leader's BEGIN
        // IMMEDIATE fail ("cannot start a transaction within a transaction").
        guard.execute_batch("BEGIN").unwrap();
        let jobs = (0..3).map(|_| vec![record(&client).1]).collect();
        let pending = b.submit_many(jobs);
        drop(guard);
        for p in pending {
            assert!(matches!(p.wait(), Err(StoreError::Database(_))));
        }
        // The store recovers: the next batch commits.
        store.writer().unwrap().execute_batch("ROLLBACK").unwrap();
        b.insert(vec![record(&client).1]).unwrap();
    }

    #[test]
    fn submits_after_shutdown_fail_and_queued_ones_commit() {
        let (_d, store, client) = store_with_client();
        let b = TokenBatcher::new(store.clone());
        let guard = store.writer();
        let (t, r) = record(&client);
        let queued = b.submit(vec![r]);
        let b2 = b.clone();
        let stopper = std::thread::spawn(move || b2.shutdown());
        while !lock(&b.shared.queue).closed {
            std::thread::yield_now();
        }
        drop(guard);
        stopper.join().unwrap();
        queued.wait().unwrap();
        assert!(store.token(&t.id).unwrap().is_some());
        assert!(b.insert(vec![record(&client).1]).is_err());
    }

    /// The commit runs on the blocking pool: while it waits for the store's write lock
    /// (held here as `config` would), other tasks of the same single-threaded event loop
    /// keep running.
    #[test]
    fn a_commit_waiting_for_the_write_lock_does_not_park_the_event_loop() {
        let (_d, store, client) = store_with_client();
        let b = TokenBatcher::new(store.clone());
        let (t, r) = record(&client);
        // The event loop runs on its own thread, so a commit that parked it (and so never
        // let it release the lock) fails this test by the timeout instead of hanging it.
        let (tx, rx) = std::sync::mpsc::channel();
        let (loop_store, loop_b) = (store.clone(), b.clone());
        std::thread::spawn(move || {
            let guard = loop_store.writer();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .unwrap();
            let local = tokio::task::LocalSet::new();
            let ticks = local.block_on(&rt, async move {
                let commit = tokio::task::spawn_local(async move { loop_b.commit(vec![r]).await });
                // The loop still turns while the commit waits for the lock.
                let mut ticks = 0;
                for _ in 0..20 {
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                    ticks += 1;
                }
                let waiting = !commit.is_finished();
                drop(guard);
                commit.await.unwrap().unwrap();
                (ticks, waiting)
            });
            let _ = tx.send(ticks);
        });
        let (ticks, waiting) = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the event loop was parked by the commit");
        assert_eq!(ticks, 20);
        assert!(waiting, "the write lock was still held");
        assert!(store.token(&t.id).unwrap().is_some());
    }

    /// Regression: a panic inside the leader's transaction left the queue marked as led
    /// and every later issuance waited forever.
    #[test]
    fn a_leader_that_panics_answers_its_jobs_and_passes_the_lead() {
        let (_d, store, client) = store_with_client();
        let mut b = TokenBatcher::new(store.clone());
        fn explode(
            _: &rusqlite::Connection,
            _: &NewTokenRecord,
            _: &mut LiveClients,
        ) -> Result<()> {
            panic!("injected panic in the batch");
        }
        Arc::get_mut(&mut b.shared).unwrap().insert = explode;
        let (_, r1) = record(&client);
        let (_, r2) = record(&client);
        let mut p = b.submit_many(vec![vec![r1], vec![r2]]).into_iter();
        let (leader, follower) = (p.next().unwrap(), p.next().unwrap());
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| leader.wait()));
        assert!(panicked.is_err(), "the injected panic reached the leader");
        assert!(
            follower.wait().is_err(),
            "the follower got an answer, not a hang"
        );
        // The queue has no stale leader: with a working insert, the next submit commits.
        Arc::get_mut(&mut b.shared).unwrap().insert = insert_token_in;
        let (t3, r3) = record(&client);
        let (tx, rx) = std::sync::mpsc::channel();
        let b2 = b.clone();
        std::thread::spawn(move || tx.send(b2.insert(vec![r3])).unwrap());
        let got = rx.recv_timeout(std::time::Duration::from_secs(5));
        assert!(matches!(got, Ok(Ok(()))), "the next issuance hung: {got:?}");
        assert!(store.token(&t3.id).unwrap().is_some());
    }

    #[test]
    fn a_dropped_leader_passes_the_lead_and_its_job_is_not_committed() {
        let (_d, store, client) = store_with_client();
        let b = TokenBatcher::new(store.clone());
        let (t1, r1) = record(&client);
        let (t2, r2) = record(&client);
        let mut p = b.submit_many(vec![vec![r1], vec![r2]]).into_iter();
        let leader = p.next().unwrap();
        assert!(leader.leads());
        drop(leader); // the client went away before its turn came
        p.next().unwrap().wait().unwrap();
        assert!(store.token(&t1.id).unwrap().is_none());
        assert!(store.token(&t2.id).unwrap().is_some());
        // And the queue has no stale leader: the next submit leads and commits.
        let (t3, r3) = record(&client);
        b.insert(vec![r3]).unwrap();
        assert!(store.token(&t3.id).unwrap().is_some());
    }

    #[test]
    fn async_submits_of_one_event_loop_turn_share_a_transaction() {
        let (_d, store, client) = store_with_client();
        let b = TokenBatcher::new(store.clone());
        let (rt, local) = event_loop();
        const TASKS: usize = 20;
        let ids = local.block_on(&rt, async {
            let handles: Vec<_> = (0..TASKS)
                .map(|_| {
                    let (b, (t, r)) = (b.clone(), record(&client));
                    tokio::task::spawn_local(async move {
                        b.commit(vec![r]).await.unwrap();
                        t.id
                    })
                })
                .collect();
            joined(handles).await
        });
        for id in &ids {
            assert!(store.token(id).unwrap().is_some());
        }
        let s = b.stats();
        assert_eq!(s.tokens, TASKS as u64);
        // The first task leads and yields; the other nineteen queue behind it.
        assert_eq!(s.transactions, 1, "{s:?}");
    }

    /// SCIM creates of one turn of the event loop share a transaction with the tokens
    /// issued beside them; a create that conflicts (a userName taken earlier in the same
    /// batch) gets its own error, and is undone alone.
    #[test]
    fn scim_creates_join_the_batch_and_a_conflict_is_undone_alone() {
        let (_d, store, client) = store_with_client();
        let b = TokenBatcher::new(store.clone());
        let (rt, local) = event_loop();
        const USERS: usize = 10;
        let (created, token) = local.block_on(&rt, async {
            let (t, r) = record(&client);
            let issue = {
                let b = b.clone();
                tokio::task::spawn_local(async move { b.commit(vec![r]).await })
            };
            // Users 0..10, and user 3's name again (in another case: userName is
            // case-insensitive).
            let names: Vec<String> = (0..USERS)
                .map(|i| format!("user{i}@example.com"))
                .chain(["USER3@example.com".to_string()])
                .collect();
            let creates: Vec<_> = names
                .into_iter()
                .enumerate()
                .map(|(i, name)| {
                    let b = b.clone();
                    tokio::task::spawn_local(async move {
                        b.insert_scim(
                            "User",
                            format!("id-{i}"),
                            serde_json::json!({"userName": name}),
                            "2026-12-05T00:00:00.000Z".into(),
                        )
                        .await
                    })
                })
                .collect();
            let created = joined(creates).await;
            issue.await.unwrap().unwrap();
            (created, t)
        });
        for (i, r) in created.iter().enumerate().take(USERS) {
            let (rec, _) = r.as_ref().unwrap();
            assert_eq!(
                (rec.id.as_str(), rec.version),
                (format!("id-{i}").as_str(), 1)
            );
            assert!(store.scim("User", &rec.id).unwrap().is_some());
        }
        assert!(
            matches!(created[USERS], Err(StoreError::Conflict(_))),
            "{:?}",
            created[USERS]
        );
        assert!(
            store
                .scim("User", &format!("id-{USERS}"))
                .unwrap()
                .is_none()
        );
        assert!(store.token(&token.id).unwrap().is_some());
        let s = b.stats();
        assert_eq!((s.jobs, s.tokens), (USERS as u64 + 2, 1));
        assert_eq!(s.transactions, 1, "{s:?}");
    }

    /// SCIM replaces of one turn of the event loop share a transaction; one that takes a
    /// userName already taken, and a Group's that names a missing member, each fail alone
    /// and leave their resource as it was (a User's write has no savepoint on SQLite: its
    /// failed UPDATE is undone by SQLite; a Group's is undone by its savepoint).
    #[test]
    fn scim_replaces_that_fail_are_undone_alone_on_both_backends() {
        for t in crate::store::testing::stores("batch_replaces") {
            replaces_that_fail_are_undone_alone(&t.store, t.backend);
        }
    }

    fn replaces_that_fail_are_undone_alone(store: &Arc<Store>, b: &str) {
        const NOW: &str = "2026-12-05T00:00:00.000Z";
        users_and_a_group(store, 4, NOW);
        let batcher = TokenBatcher::new(store.clone());
        let (rt, local) = event_loop();
        let replaced = local.block_on(&rt, async {
            let jobs: Vec<(&'static str, &str, serde_json::Value)> = vec![
                (
                    "User",
                    "u0",
                    serde_json::json!({"userName": "user0@example.com", "title": "a"}),
                ),
                // Takes user2's name (in another case): refused by the unique index.
                (
                    "User",
                    "u1",
                    serde_json::json!({"userName": "USER2@example.com"}),
                ),
                (
                    "User",
                    "u2",
                    serde_json::json!({"userName": "renamed@example.com"}),
                ),
                (
                    "Group",
                    "g",
                    serde_json::json!({"displayName": "staff", "members": [{"value": "missing"}]}),
                ),
                (
                    "User",
                    "u3",
                    serde_json::json!({"userName": "user3@example.com", "title": "d"}),
                ),
            ];
            let handles: Vec<_> = jobs
                .into_iter()
                .map(|(kind, id, doc)| {
                    let batcher = batcher.clone();
                    let id = id.to_string();
                    tokio::task::spawn_local(async move {
                        batcher.replace_scim(kind, id, 1, doc, NOW.into()).await
                    })
                })
                .collect();
            joined(handles).await
        });
        let title = |id: &str| store.scim("User", id).unwrap().unwrap().doc["title"].clone();
        // u0: written, and its record names the Group it is in (read after the commit).
        let (u0, _) = replaced[0].as_ref().unwrap().as_ref().unwrap();
        assert_eq!((u0.version, u0.groups.len()), (2, 1), "{b}: {u0:?}");
        assert_eq!(title("u0"), "a", "{b}");
        // u1: refused, as it was; its name is still its own.
        assert!(
            matches!(replaced[1], Err(StoreError::Conflict(_))),
            "{b}: {:?}",
            replaced[1]
        );
        let u1 = store.scim("User", "u1").unwrap().unwrap();
        assert_eq!(
            (u1.version, u1.doc["userName"].as_str()),
            (1, Some("user1@example.com")),
            "{b}"
        );
        // u2 renamed in the same batch (after u1's refusal), u3 written.
        assert_eq!(
            replaced[2].as_ref().unwrap().as_ref().unwrap().0.version,
            2,
            "{b}"
        );
        assert_eq!(title("u3"), "d", "{b}");
        // The Group: refused, its member list as it was.
        assert!(replaced[3].is_err(), "{b}: {:?}", replaced[3]);
        let g = store.scim("Group", "g").unwrap().unwrap();
        assert_eq!(
            (g.version, g.doc["members"][0]["value"].as_str()),
            (1, Some("u0")),
            "{b}"
        );
        let s = batcher.stats();
        assert_eq!((s.jobs, s.transactions), (5, 1), "{b}: {s:?}");
    }

    /// SCIM Users changed inside the writer's transaction ([`TokenBatcher::change_scim`]),
    /// in one turn of the event loop beside a token issuance: they share one transaction;
    /// each change is given the resource as stored, and each outcome is its own (a write,
    /// nothing to change, a refusal, a userName taken, a panic) while the rest commits. A
    /// missing User, a Group and a User stored longer than the bound are never given to
    /// their change; on PostgreSQL every change is declined, unread.
    #[test]
    fn scim_changes_in_the_writer_share_a_batch_and_each_ends_alone_on_both_backends() {
        for t in crate::store::testing::stores("batch_changes") {
            changes_in_the_writer(&t.store, t.backend);
        }
    }

    fn changes_in_the_writer(store: &Arc<Store>, b: &str) {
        const NOW: &str = "2026-12-05T00:00:00.000Z";
        const LATER: &str = "2026-12-06T00:00:00.000Z";
        users_and_a_group(store, 5, NOW);
        let long = "x".repeat(CHANGE_IN_WRITER_BYTES);
        store
            .insert_scim(
                "User",
                "big",
                &serde_json::json!({"userName": "big@example.com", "title": long}),
                NOW,
            )
            .unwrap();
        let client = crate::store::testing::client(store, "changes");
        let batcher = TokenBatcher::new(store.clone());
        let given = Arc::new(Mutex::new(Vec::<(String, i64)>::new()));
        type Change =
            fn(&serde_json::Value) -> std::result::Result<Option<serde_json::Value>, &'static str>;
        let retitle: Change = |doc| {
            let mut doc = doc.clone();
            doc["title"] = "changed".into();
            Ok(Some(doc))
        };
        let take_u2s_name: Change = |doc| {
            let mut doc = doc.clone();
            doc["userName"] = "USER2@example.com".into();
            Ok(Some(doc))
        };
        let keep: Change = |_| Ok(None);
        let refuse: Change = |_| Err("refused");
        let explode: Change = |_| panic!("a change that panics");
        let jobs: Vec<(&'static str, &str, Change)> = vec![
            ("User", "u0", retitle),
            ("User", "u1", take_u2s_name),
            ("User", "u2", keep),
            ("User", "u3", refuse),
            ("User", "u4", explode),
            ("User", "nobody", retitle),
            ("User", "big", retitle),
            ("Group", "g", retitle),
        ];
        let (rt, local) = event_loop();
        let (changed, token) = local.block_on(&rt, async {
            let (t, r) = record(&client);
            let issue = {
                let batcher = batcher.clone();
                tokio::task::spawn_local(async move { batcher.commit(vec![r]).await })
            };
            let handles: Vec<_> = jobs
                .into_iter()
                .map(|(kind, id, change)| {
                    let (batcher, given) = (batcher.clone(), given.clone());
                    let id = id.to_string();
                    tokio::task::spawn_local(async move {
                        batcher
                            .change_scim(kind, id, LATER.into(), move |current| {
                                lock(&given).push((current.id.clone(), current.version));
                                change(&current.doc)
                            })
                            .await
                    })
                })
                .collect();
            let out = joined(handles).await;
            issue.await.unwrap().unwrap();
            (out, t)
        });
        assert!(store.token(&token.id).unwrap().is_some(), "{b}");
        let stored = |id: &str| store.scim("User", id).unwrap().unwrap();
        if store.postgres().is_some() {
            for c in &changed {
                assert!(matches!(c, Ok(ScimChange::Declined)), "{b}: {c:?}");
            }
            assert!(lock(&given).is_empty(), "{b}");
            assert_eq!(stored("u0").version, 1, "{b}");
            return;
        }
        let mut seen = lock(&given).clone();
        seen.sort();
        let at_one = |id: &str| (id.to_string(), 1);
        assert_eq!(
            seen,
            ["u0", "u1", "u2", "u3", "u4"].map(at_one).to_vec(),
            "{b}: each change is given its User as stored, and only those"
        );
        // u0: written, at the next version, with the time given, its stored text returned,
        // and its groups read back.
        let Ok(ScimChange::Written(u0, text)) = &changed[0] else {
            panic!("{b}: {:?}", changed[0]);
        };
        assert_eq!(
            (u0.version, u0.last_modified.as_str(), u0.groups.len()),
            (2, LATER, 1),
            "{b}: {u0:?}"
        );
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(text).unwrap(),
            u0.doc
        );
        assert_eq!(stored("u0").doc["title"], "changed", "{b}");
        // u1: its new userName is taken; refused, as it was.
        assert!(
            matches!(changed[1], Err(StoreError::Conflict(_))),
            "{b}: {:?}",
            changed[1]
        );
        assert_eq!(stored("u1").doc["userName"], "user1@example.com", "{b}");
        // u2: nothing to change; its version kept.
        assert!(
            matches!(&changed[2], Ok(ScimChange::Unchanged(r)) if r.id == "u2" && r.version == 1),
            "{b}: {:?}",
            changed[2]
        );
        // u3: refused by its change; u4: its change panicked. Neither wrote anything.
        assert!(
            matches!(changed[3], Ok(ScimChange::Refused("refused"))),
            "{b}: {:?}",
            changed[3]
        );
        assert!(
            matches!(changed[4], Err(StoreError::Database(_))),
            "{b}: {:?}",
            changed[4]
        );
        for id in ["u1", "u2", "u3", "u4"] {
            assert_eq!(stored(id).version, 1, "{b}: {id}");
        }
        assert!(
            matches!(changed[5], Ok(ScimChange::Missing)),
            "{b}: {:?}",
            changed[5]
        );
        // Stored longer than the bound, and a Group: declined, unread and unchanged.
        assert!(
            matches!(changed[6], Ok(ScimChange::Declined)),
            "{b}: {:?}",
            changed[6]
        );
        assert!(
            matches!(changed[7], Ok(ScimChange::Declined)),
            "{b}: {:?}",
            changed[7]
        );
        assert_eq!(stored("big").version, 1, "{b}");
        // The token and the seven Users' jobs (the Group's never queued) in one transaction.
        let s = batcher.stats();
        assert_eq!((s.jobs, s.transactions), (8, 1), "{b}: {s:?}");
    }
}
