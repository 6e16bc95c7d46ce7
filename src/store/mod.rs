//! The store: the only code that speaks SQL. No rusqlite type leaves this module; callers
//! get domain types ([`crate::model`]) and [`StoreError`].
//!
//! SQLite in WAL mode with `synchronous=FULL`, foreign keys on and a busy timeout, so the
//! server and any number of `config` processes can use one file at once: readers never
//! block, writers queue for the single write lock (transactions are short and begin
//! `IMMEDIATE`, so a writer waits for the lock up front instead of failing half-way).
//! One writer connection behind a mutex and two pools of readers: one for the point reads
//! the request path makes inline (a bearer token, a client, a resource by id) and one for
//! everything else (filters, listings, reports), so slow scans can never hold up token
//! checks; both wait at most a few seconds for a connection, then fail with a store error
//! (503) instead of stalling a worker. The file is created 0600.
//!
//! Durability: `synchronous=FULL` makes every commit fsync the WAL before it returns, so a
//! token whose response left the server survives power loss, not only a crash of the
//! process (`NORMAL` survives only the latter). Group commit ([`TokenBatcher`]) pays one
//! fsync per batch, not per token; the cost is in bench/RESULTS.md.
//!
//! A `postgres://` URL as the store's location opens the PostgreSQL backend instead
//! ([`pg`], issue 16): the same methods, the same domain types; each method below begins
//! with a line that hands the call to its PostgreSQL body there (`on_postgres!`), and
//! what follows it is SQLite's.
//!
//! One file per group of tables: `clients`, `tokens`, `users`, `audit`, `meta`, `consents`;
//! `grants` holds the OAuth2 grant transactions (code redemption, refresh rotation),
//! `retention` the deletion of tokens long expired; `functions` the SQL functions (the SCIM
//! case fold) every connection registers.

/// [`scim::DOC_FORM`] as SQL text, for the statements that write a document through
/// the SCIM service (both backends; a `const` cannot be spliced into `concat!`).
macro_rules! doc_form {
    () => {
        "1"
    };
}

mod audit;
mod batch;
mod checkpoint;
mod clients;
mod consents;
mod copy;
pub mod functions;
mod grants;
mod lease;
mod location;
mod meta;
mod migrate;
mod monitor;
mod pg;
mod provisioning;
mod retention;
mod scim;
pub mod scim_filter;
mod sessions;
mod throttle;
mod tokens;
mod users;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration as StdDuration;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

pub use batch::{BatchStats, CHANGE_IN_WRITER_BYTES, Pending, ScimChange, TokenBatcher};
pub use checkpoint::Checkpointer;
pub use clients::{ClientUpdate, NewClient};
pub use grants::{CodeGrant, ROTATED_REASON, RedeemOutcome, RotateOutcome};
pub use location::Location;
pub use meta::{MAX_TOKEN_LIFETIME_KEY, TOOL_PASSWORD_KEY};
pub use migrate::known_version as schema_version;
pub use monitor::Activity;
pub use pg::PgTarget;
pub use provisioning::{MAX_PER_CLIENT, PendingErrors, ProvisioningError};
pub use retention::Pruned;
pub use scim::{
    DOC_FORM, FORMS_CHECKED_KEY, GroupWithout, ScimQuery, ScimRecord, StoredResource, check_version,
};
pub use sessions::WebSession;
pub use throttle::ThrottleEntry;
pub use tokens::{NewTokenRecord, RevokeOutcome, SHORT_LIFETIME, TokenFilter};

/// How long a statement waits for another process's write lock before giving up.
const BUSY_TIMEOUT: StdDuration = StdDuration::from_secs(10);

/// What can go wrong in the store. `NotFound` and `Conflict` are the caller's business;
/// the rest are the operator's (disk, permissions, a newer schema). `Clone` so that a
/// failed group commit can hand the same error to every waiter.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The caller's expectation (an ETag / version) does not hold.
    #[error("{0}")]
    Precondition(String),
    /// The caller asked for something the data does not allow (e.g. unknown members).
    #[error("{0}")]
    Invalid(String),
    #[error(
        "the store at {path} does not exist; name the server's store with --db PATH or SCIMGATE_DB (without them it is scimgate.db in the current directory), or create a new store there with `config init`"
    )]
    Missing { path: String },
    #[error(
        "the store at {path} has schema version {found}, newer than this program knows ({known}); upgrade scimgate"
    )]
    TooNew {
        path: String,
        found: i64,
        known: i64,
    },
    #[error("cannot open the store at {path}: {reason}")]
    Open { path: String, reason: String },
    #[error("database error: {0}")]
    Database(String),
    /// The database cannot be reached (PostgreSQL: refused, closed, timed out).
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error(
        "the database at {path} holds tables of another application and no scimgate store; give scimgate a database of its own"
    )]
    Foreign { path: String },
    #[error("the store holds a value this program cannot read: {0}")]
    Corrupt(String),
    /// A token was to be issued to a client that has been cut off (deleted, disabled,
    /// secret rotated, all tokens revoked) since the request authenticated.
    #[error("client {0} was cut off while the token was being issued")]
    ClientCutOff(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match &e {
            rusqlite::Error::SqliteFailure(f, _)
                if f.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                StoreError::Conflict(e.to_string())
            }
            _ => StoreError::Database(e.to_string()),
        }
    }
}

impl From<r2d2::Error> for StoreError {
    fn from(e: r2d2::Error) -> Self {
        StoreError::Database(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// A handle on one store: a SQLite file or a PostgreSQL database. Cheap to share behind an
/// `Arc`; every method is blocking (the server calls it from `web::block`, or inline on
/// its workers for point reads), on either backend.
pub struct Store {
    location: Location,
    backend: Backend,
}

enum Backend {
    Sqlite(Box<Sqlite>),
    Postgres(pg::Postgres),
}

/// The SQLite backend's connections.
struct Sqlite {
    path: PathBuf,
    readers: r2d2::Pool<SqliteConnectionManager>,
    /// Point reads by primary key made on the request path ([`Store::read_point`]).
    point_readers: r2d2::Pool<SqliteConnectionManager>,
    /// The one connection that maps the file ([`MAPPED_BYTES`]): a point read takes it
    /// when no other read holds it, and a pooled connection otherwise.
    mapped: Mutex<Connection>,
    /// Declared last, so dropped last (fields drop in order): SQLite checkpoints the WAL
    /// into the database file and removes it when the last connection to the file closes,
    /// but only if that connection may write. With the read-only pools closing after
    /// the writer, every process left its WAL behind (67 MB after a benchmark's server
    /// stopped cleanly), for the next open to replay.
    writer: Mutex<Connection>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("location", &self.location)
            .finish()
    }
}

/// Hand the call to the PostgreSQL backend's body of the same method when the store is
/// PostgreSQL: `on_postgres!(self, pg => pg.method(args))` as a method's first line.
macro_rules! on_postgres {
    ($store:expr, $pg:ident => $call:expr) => {
        if let Some($pg) = $store.postgres() {
            return $call;
        }
    };
}
pub(crate) use on_postgres;

/// Whether `key`, taken from a request, can name a stored row. No stored text holds U+0000:
/// the writes refuse it, and PostgreSQL's text cannot hold it, so there a lookup by such a
/// key is an error ("invalid byte sequence for encoding UTF8"), which the callers took for
/// an unavailable store (a 503) or showed as it is. The lookups by a key from the network
/// answer it as SQLite always did: no such row.
pub(crate) fn can_name_a_row(key: &str) -> bool {
    !key.contains('\0')
}

/// Page cache and checkpoint interval of a read-write connection, chosen by measurement
/// (bench/seed.rs `batches`, bench/oauth.sh; see bench/RESULTS.md):
/// - 2 MiB of page cache (SQLite's default). Token ids ascend, so issuing touches only the
///   last leaves of the table and its indexes. A larger cache costs time: at the end of
///   every write transaction SQLite walks the cache's hash table (`pcache1TruncateUnsafe`),
///   so a bigger cache issued fewer tokens per second (the figures are in
///   bench/RESULTS.md).
/// - Checkpoint every 8192 WAL pages (32 MiB) instead of 1000: a checkpoint writes each
///   page once however often it changed, and fsyncs, so rarer checkpoints write less per
///   token.
///
/// The pools' connections map nothing (`mmap_size` 0, SQLite's default): the request
/// path's reads go through [`Sqlite::mapped`] (below) when they can.
const WRITER_CACHE_KIB: i64 = 2 * 1024;

/// How much of the file the one mapped point reader maps (`mmap_size`): the first 64 MiB.
///
/// - **Why map.** Every commit (the usage flusher's, once a second under load) empties
///   each reader's page cache, so an unmapped point read of a store bigger than that cache
///   costs about two `pread`s: a syscall and a 4 KiB copy each. Mapped, a page already in
///   the kernel's page cache is read where it lies. The userName filter on 100,000 Users
///   answered 1.23× as fast (bench/RESULTS.md).
/// - **Why one connection, and why 64 MiB.** A page counts in the resident set once for
///   every mapping that touched it: the 13 connections of an earlier version, each mapping
///   256 MiB, reached 113 MiB at the peak of bench/latency.sh with a 105 MB store (52 MiB
///   unmapped). One mapping bounds what mapping adds to the resident set at 64 MiB,
///   whatever the store's size and the number of workers; the pages are the kernel's page
///   cache either way, which a `pread` reads from too.
/// - **What it risks.** An I/O error on a mapped page is a `SIGBUS`, not an error SQLite
///   can return (SQLite's documentation on memory-mapped I/O). A read that fails that way
///   would fail the request anyway; docs/deploy.md says so.
const MAPPED_BYTES: i64 = 64 * 1024 * 1024;
const WAL_AUTOCHECKPOINT_PAGES: i64 = 8192;

/// How the writer waits for a write lock another process holds: a retry every millisecond,
/// up to [`BUSY_TIMEOUT`]. SQLite's own busy timeout backs off to sleeps of 100 ms, so a
/// writer queued behind a process that commits in short bursts with short gaps (`config
/// prune-tokens`) could miss every gap and wait for the whole run (bench/prune.sh measured
/// it; bench/RESULTS.md). Polling every millisecond takes the first gap.
fn wait_for_lock(attempts: i32) -> bool {
    const POLL: StdDuration = StdDuration::from_millis(1);
    if u128::from(attempts.unsigned_abs()) * POLL.as_millis() >= BUSY_TIMEOUT.as_millis() {
        return false;
    }
    std::thread::sleep(POLL);
    true
}

/// How long a reader waits for a pooled connection before the request fails (503): short
/// for the inline point reads (a worker thread waits), longer for scans (they run on the
/// blocking pool). r2d2's own default is 30 s.
const POINT_POOL_WAIT: StdDuration = StdDuration::from_secs(2);
const SCAN_POOL_WAIT: StdDuration = StdDuration::from_secs(10);

/// A read-only connection's settings (the pools' and the mapped one's).
fn configure_reader(c: &mut Connection) -> rusqlite::Result<()> {
    functions::register(c)?;
    c.busy_timeout(BUSY_TIMEOUT)?;
    c.execute_batch("PRAGMA foreign_keys = ON;")
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    functions::register(conn)?;
    conn.busy_handler(Some(wait_for_lock))?;
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA cache_size = -{WRITER_CACHE_KIB};
         PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES};",
    ))?;

    Ok(())
}

impl Store {
    /// Open the store at `location`, creating it and its schema if missing (a SQLite file
    /// is created mode 0600; a PostgreSQL database must exist, and be empty or scimgate's).
    pub fn open_or_create(location: impl Into<Location>) -> Result<Store> {
        let location = &location.into();
        match location {
            Location::Sqlite(path) => Store::create_sqlite(path),
            Location::Postgres(target) => Store::open_postgres(location, target, true),
        }
    }

    /// Open an existing store; [`StoreError::Missing`] if there is none.
    pub fn open_existing(location: impl Into<Location>) -> Result<Store> {
        let location = &location.into();
        match location {
            Location::Sqlite(path) => Store::open_sqlite(path),
            Location::Postgres(target) => Store::open_postgres(location, target, false),
        }
    }

    fn open_postgres(location: &Location, target: &PgTarget, create: bool) -> Result<Store> {
        Ok(Store {
            location: location.clone(),
            backend: Backend::Postgres(pg::Postgres::open(target, create)?),
        })
    }

    /// Open the SQLite store at `path`, creating it if missing.
    fn create_sqlite(path: &Path) -> Result<Store> {
        if !path.exists() {
            create_private_file(path)?;
        }
        Store::open_inner(path)
    }

    fn open_sqlite(path: &Path) -> Result<Store> {
        if !path.exists() {
            // The absolute path: a relative one hides which directory was meant.
            let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
            return Err(StoreError::Missing {
                path: abs.display().to_string(),
            });
        }
        Store::open_inner(path)
    }

    fn open_inner(path: &Path) -> Result<Store> {
        let open_err = |e: &dyn std::fmt::Display| StoreError::Open {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        let writer = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )
        .map_err(|e| open_err(&e))?;
        configure(&writer).map_err(|e| open_err(&e))?;
        migrate::migrate(&writer, path)?;
        let read_only = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let manager = || {
            SqliteConnectionManager::file(path)
                .with_flags(read_only)
                .with_init(configure_reader)
        };
        let pool = |size: u32, wait: StdDuration| {
            r2d2::Pool::builder()
                .max_size(size)
                .min_idle(Some(0))
                .connection_timeout(wait)
                // A checked-out SQLite connection cannot have gone stale; skip the probe.
                .test_on_check_out(false)
                .build(manager())
                .map_err(|e| open_err(&e))
        };
        let readers = pool(8, SCAN_POOL_WAIT)?;
        let point_readers = pool(4, POINT_POOL_WAIT)?;
        let mapped = Connection::open_with_flags(path, read_only)
            .and_then(|mut c| {
                configure_reader(&mut c)?;
                c.execute_batch(&format!("PRAGMA mmap_size = {MAPPED_BYTES};"))?;
                Ok(c)
            })
            .map_err(|e| open_err(&e))?;
        Ok(Store {
            location: Location::Sqlite(path.to_path_buf()),
            backend: Backend::Sqlite(Box::new(Sqlite {
                path: path.to_path_buf(),
                writer: Mutex::new(writer),
                readers,
                point_readers,
                mapped: Mutex::new(mapped),
            })),
        })
    }

    /// Where this store is (a PostgreSQL URL shows no password).
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The SQLite file this store lives in; `None` on PostgreSQL.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match &self.backend {
            Backend::Sqlite(s) => Some(&s.path),
            Backend::Postgres(_) => None,
        }
    }

    /// A round trip to the database (`/readyz`): the store can answer now.
    pub fn ping(&self) -> Result<()> {
        on_postgres!(self, pg => pg.ping());
        self.read_point(|c| Ok(c.execute_batch("SELECT 1")?))
    }

    /// The PostgreSQL backend, if that is what runs.
    fn postgres(&self) -> Option<&pg::Postgres> {
        match &self.backend {
            Backend::Postgres(p) => Some(p),
            Backend::Sqlite(_) => None,
        }
    }

    /// The SQLite backend. Reached only after `on_postgres!` handed PostgreSQL's calls on;
    /// an error, not a panic, if a method forgot it.
    fn sqlite(&self) -> Result<&Sqlite> {
        match &self.backend {
            Backend::Sqlite(s) => Ok(s),
            Backend::Postgres(_) => Err(StoreError::Database(
                "this operation has no PostgreSQL implementation".into(),
            )),
        }
    }

    fn writer(&self) -> Result<MutexGuard<'_, Connection>> {
        // A panic while holding the lock leaves SQLite consistent (the transaction rolls
        // back on drop), so a poisoned mutex is safe to keep using.
        Ok(crate::sync::lock(&self.sqlite()?.writer))
    }

    /// Whether the writer's commits survive power loss (`synchronous=FULL`, the default)
    /// or only a crash of the process (`NORMAL`: the WAL is fsynced at checkpoints only).
    /// The server's `durable_commits` setting; bench/RESULTS.md has what each costs.
    pub fn set_power_loss_durable(&self, durable: bool) -> Result<()> {
        if self.postgres().is_some() {
            // PostgreSQL's own `synchronous_commit` decides, on the server.
            return Ok(());
        }
        let level = if durable { "FULL" } else { "NORMAL" };
        self.writer()?
            .execute_batch(&format!("PRAGMA synchronous = {level}"))?;
        Ok(())
    }

    /// Run `f` in one `BEGIN IMMEDIATE` transaction; commit if it returns Ok.
    fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut conn = self.writer()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// Run `f` on a point-read connection: for the primary-key reads the request path
    /// makes inline, which must not queue behind scans. The mapped connection when it is
    /// free (never waited for), one of the point-read pool otherwise.
    fn read_point<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let sqlite = self.sqlite()?;
        let mapped = match sqlite.mapped.try_lock() {
            Ok(conn) => Some(conn),
            // A read that panicked left no transaction open: each statement is its own.
            Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        };
        match mapped {
            Some(conn) => f(&conn),
            None => {
                let conn = sqlite.point_readers.get()?;
                f(&conn)
            }
        }
    }

    /// Run `f` on a pooled read-only connection.
    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.sqlite()?.readers.get()?;
        f(&conn)
    }
}

#[cfg(unix)]
fn create_private_file(path: &Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map(|_| ())
        .or_else(|e| {
            // Another process created it between our check and our open: fine.
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                Ok(())
            } else {
                Err(StoreError::Open {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })
            }
        })
}

#[cfg(not(unix))]
fn create_private_file(path: &Path) -> Result<()> {
    std::fs::File::create(path)
        .map(|_| ())
        .map_err(|e| StoreError::Open {
            path: path.display().to_string(),
            reason: e.to_string(),
        })
}

/// The stores the store's tests run on: a SQLite file, and a database of its own on the
/// PostgreSQL test cluster when one runs (scripts/test.sh starts it and sets
/// `SCIMGATE_TEST_PG_URL`; with `SCIMGATE_TEST_PG_REQUIRED` set, its absence fails).
#[cfg(test)]
pub(crate) mod testing {
    use std::sync::Arc;

    use super::Store;

    /// A store under test and what keeps its file or database alive.
    pub struct TestStore {
        pub store: Arc<Store>,
        /// "sqlite" or "postgres", for assertion messages.
        pub backend: &'static str,
        _dir: Option<tempfile::TempDir>,
        _db: Option<super::pg::testing::TempDb>,
    }

    impl std::ops::Deref for TestStore {
        type Target = Arc<Store>;
        fn deref(&self) -> &Arc<Store> {
            &self.store
        }
    }

    /// Register a client_credentials client (read scope) on `store`; its id.
    pub fn client(store: &Store, name: &str) -> String {
        crate::admin::Admin::new(store, crate::time::Clock::system(), "test")
            .register_client(crate::admin::RegisterClient::new(
                name,
                &[crate::model::GrantType::ClientCredentials],
                &[crate::model::Scope::DirectoryRead],
            ))
            .expect("register a client")
            .0
            .id
    }

    /// A new SQLite store and, when the test cluster runs, a new PostgreSQL store.
    pub fn stores(label: &str) -> Vec<TestStore> {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut out = vec![TestStore {
            store: Arc::new(Store::open_or_create(dir.path().join("s.db")).expect("sqlite store")),
            backend: "sqlite",
            _dir: Some(dir),
            _db: None,
        }];
        if let Some(db) = super::pg::testing::temp_db(label) {
            let location = super::Location::parse(&db.url).expect("test URL");
            out.push(TestStore {
                store: Arc::new(Store::open_or_create(location).expect("postgres store")),
                backend: "postgres",
                _dir: None,
                _db: Some(db),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Slow scans (every connection of the scan pool busy: eight filter queries on the
    /// blocking pool) must not hold up the point reads the request path makes inline —
    /// a bearer token check used to wait for them, up to r2d2's 30 s.
    #[test]
    fn point_reads_do_not_wait_for_busy_scans() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_or_create(dir.path().join("s.db")).unwrap();
        let busy: Vec<_> = (0..8)
            .map(|_| store.sqlite().unwrap().readers.get().unwrap())
            .collect();
        let started = std::time::Instant::now();
        let n: i64 = store
            .read_point(|c| Ok(c.query_row("SELECT count(*) FROM clients", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(n, 0);
        assert!(started.elapsed() < StdDuration::from_millis(500));
        drop(busy);
    }

    /// A point read takes the one mapped connection when it is free, a pooled (unmapped)
    /// one while another read holds it, never waiting; and a read that panicked while
    /// holding it does not take it out of use.
    #[test]
    fn point_reads_take_the_mapped_connection_when_free_and_never_wait_for_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(Store::open_or_create(dir.path().join("s.db")).unwrap());
        let mapped_size = |store: &Store| -> i64 {
            store
                .read_point(|c| Ok(c.query_row("PRAGMA mmap_size", [], |r| r.get(0))?))
                .unwrap()
        };
        assert_eq!(mapped_size(&store), MAPPED_BYTES);
        let held = store.sqlite().unwrap().mapped.lock().unwrap();
        let started = std::time::Instant::now();
        assert_eq!(mapped_size(&store), 0, "a pooled connection, unmapped");
        assert!(started.elapsed() < StdDuration::from_millis(500));
        drop(held);
        let panicked = {
            let store = store.clone();
            std::thread::spawn(move || {
                store.read_point(|_| -> Result<()> { panic!("a read that fails hard") })
            })
            .join()
        };
        assert!(panicked.is_err());
        assert!(store.sqlite().unwrap().mapped.is_poisoned());
        assert_eq!(mapped_size(&store), MAPPED_BYTES);
    }

    #[test]
    fn creates_a_private_file_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/s.db");
        drop(Store::open_or_create(&path).unwrap());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        Store::open_existing(&path).unwrap();
    }

    #[test]
    fn a_writer_gets_in_between_another_process_s_short_transactions() {
        // Another connection (as `config prune-tokens` would be) holds the write lock for
        // 30 ms at a time with 3 ms gaps, for 2 s. Polling every millisecond, the store's
        // writer takes the first gap; SQLite's own busy timeout backs off to 100 ms sleeps
        // and can miss every gap until the other side is done.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let store = Store::open_or_create(&path).unwrap();
        let other = Connection::open(&path).unwrap();
        let started = std::time::Instant::now();
        let bursts = std::thread::spawn(move || {
            while started.elapsed() < StdDuration::from_secs(2) {
                other.execute_batch("BEGIN IMMEDIATE").unwrap();
                std::thread::sleep(StdDuration::from_millis(30));
                other.execute_batch("COMMIT").unwrap();
                std::thread::sleep(StdDuration::from_millis(3));
            }
        });
        std::thread::sleep(StdDuration::from_millis(5));
        let waited = std::time::Instant::now();
        store.write(|tx| Ok(tx.execute_batch("SELECT 1")?)).unwrap();
        let waited = waited.elapsed();
        bursts.join().unwrap();
        assert!(
            waited < StdDuration::from_millis(500),
            "waited {waited:?} for the write lock"
        );
    }

    #[test]
    fn wait_for_lock_gives_up_after_the_busy_timeout() {
        let t = std::time::Instant::now();
        assert!(wait_for_lock(0), "retries at first");
        assert!(
            t.elapsed() < StdDuration::from_millis(50),
            "after about a millisecond"
        );
        let limit = (BUSY_TIMEOUT.as_millis() as i32) + 1;
        assert!(
            !wait_for_lock(limit),
            "gives up after BUSY_TIMEOUT of retries"
        );
    }

    #[test]
    fn missing_store_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = Store::open_existing(dir.path().join("none.db")).unwrap_err();
        assert!(err.to_string().contains("config init"), "{err}");
    }
}
