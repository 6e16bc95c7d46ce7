//! The PostgreSQL backend (issue 16): what [`super::Store`] runs on when `--db` is a
//! `postgres://` URL, so that several scimgate instances share one database. Every method
//! of the store has its PostgreSQL body in this directory, one file per file of
//! `store/`, over the same tables (schema_pg.sql) and the same encodings as SQLite.
//!
//! Driver: `tokio-postgres` with an r2d2 pool of its clients. The store is blocking, and
//! its point reads run inline on the server's async workers, so a call waits for its
//! answer with a plain thread block (`futures_executor::block_on`) while the connections'
//! sockets are driven by one runtime thread of the store's own ([`Io`]). The blocking
//! `postgres` crate measured faster from blocking code (bench/pgdriver), but it starts a
//! runtime per call, which panics on a thread that already runs one (an actix worker);
//! this shape works from any thread. Each pooled connection keeps the statements it
//! prepared ([`Conn`]), so a hot statement is parsed and planned once per connection.
//!
//! Writes: every write transaction first takes one transaction-level advisory lock
//! ([`WRITE_LOCK`]), so writes are serialised across all instances as SQLite serialises
//! them in one file (`BEGIN IMMEDIATE`), and the store's read-check-write transactions
//! keep the meaning they have there. Group commit ([`super::TokenBatcher`]) is what makes
//! that cheap: a batch pays the lock and the commit once.
//!
//! The URL is libpq's (`postgres://user:password@host:port/db?sslmode=require`), with
//! three parameters of scimgate's own, taken out before the driver sees it:
//! `sslrootcert=PATH` (a CA to trust besides the public roots), `pool_size=N` (default
//! 16) and `timeout=SECONDS` (default 5: connecting, waiting for a pooled connection, and
//! the TCP user timeout that ends a call to a database that vanished).

mod audit;
mod clients;
mod grants;
mod lease;
mod meta;
mod migrate;
mod monitor;
mod retention;
mod scim;
mod sessions;
mod throttle;
mod tokens;
mod users;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use futures_executor::block_on;
use lru::LruCache;
use tokio_postgres::types::ToSql;
use tokio_postgres::{GenericClient, Row, Statement};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::{Result, StoreError};

/// Key of the advisory lock every write transaction holds ("scimgate write").
const WRITE_LOCK: i64 = 0x5c16_a7e0_0000_0001;
/// Statements kept per connection: the store's fixed statements and the latest filters.
const STATEMENT_CACHE: usize = 256;
const DEFAULT_POOL: u32 = 16;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a PostgreSQL store is, as given (the URL with scimgate's own parameters).
#[derive(Clone)]
pub struct PgTarget {
    config: tokio_postgres::Config,
    ca: Option<std::path::PathBuf>,
    pool_size: u32,
    timeout: Duration,
    /// The URL without its password, for messages and logs.
    shown: String,
}

impl std::fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl std::fmt::Display for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl PgTarget {
    /// Parse a `postgres://` or `postgresql://` URL; the error is one sentence.
    pub fn parse(raw: &str) -> std::result::Result<PgTarget, String> {
        let mut url = url::Url::parse(raw)
            .map_err(|e| format!("the database URL is not a valid URL ({e})"))?;
        let mut ca = None;
        let mut pool_size = DEFAULT_POOL;
        let mut timeout = DEFAULT_TIMEOUT;
        let mut kept: Vec<(String, String)> = Vec::new();
        for (k, v) in url.query_pairs() {
            match &*k {
                "sslrootcert" => ca = Some(std::path::PathBuf::from(v.as_ref())),
                "pool_size" => {
                    pool_size = v
                        .parse()
                        .ok()
                        .filter(|n| (1..=1000).contains(n))
                        .ok_or_else(|| {
                            format!("pool_size in the database URL must be 1 to 1000, not {v:?}")
                        })?
                }
                "timeout" => {
                    let secs: u64 = v
                        .parse()
                        .ok()
                        .filter(|n| (1..=3600).contains(n))
                        .ok_or_else(|| {
                            format!(
                                "timeout in the database URL must be 1 to 3600 seconds, not {v:?}"
                            )
                        })?;
                    timeout = Duration::from_secs(secs);
                }
                _ => kept.push((k.into_owned(), v.into_owned())),
            }
        }
        if kept.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut().clear().extend_pairs(&kept);
        }
        let mut config = tokio_postgres::Config::from_str(url.as_str())
            .map_err(|e| format!("the database URL is not one PostgreSQL accepts ({e})"))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(timeout);
        }
        if config.get_tcp_user_timeout().is_none() {
            config.tcp_user_timeout(timeout);
        }
        config.keepalives(true);
        if config.get_application_name().is_none() {
            config.application_name("scimgate");
        }
        let _ = url.set_password(None);
        let shown = url.to_string();
        Ok(PgTarget {
            config,
            ca,
            pool_size,
            timeout,
            shown,
        })
    }

    fn tls(&self) -> Result<MakeRustlsConnect> {
        use rustls_pki_types::CertificateDer;
        use rustls_pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(ca) = &self.ca {
            let open = |reason: String| StoreError::Open {
                path: self.shown.clone(),
                reason: format!("cannot read sslrootcert {}: {reason}", ca.display()),
            };
            for cert in CertificateDer::pem_file_iter(ca).map_err(|e| open(e.to_string()))? {
                roots
                    .add(cert.map_err(|e| open(e.to_string()))?)
                    .map_err(|e| open(e.to_string()))?;
            }
        }
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| StoreError::Open {
                path: self.shown.clone(),
                reason: e.to_string(),
            })?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(MakeRustlsConnect::new(config))
    }
}

/// The runtime thread that drives every connection's socket: connecting, and the
/// connection tasks that carry the clients' queries. A client's calls only queue messages
/// for its task and await the answers, so any thread may wait for them.
/// The thread ends when the store is dropped (the last pooled connection with it).
struct Io {
    handle: tokio::runtime::Handle,
    stop: Arc<tokio::sync::Notify>,
}

impl Io {
    fn start() -> std::io::Result<Io> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let stop = Arc::new(tokio::sync::Notify::new());
        let stopped = stop.clone();
        std::thread::Builder::new()
            .name("postgres-io".into())
            .spawn(move || runtime.block_on(stopped.notified()))?;
        Ok(Io { handle, stop })
    }
}

impl Drop for Io {
    fn drop(&mut self) {
        // `notify_one` keeps the permit if the thread is not waiting yet.
        self.stop.notify_one();
    }
}

/// A pooled connection and the statements it prepared.
pub(crate) struct Conn {
    client: tokio_postgres::Client,
    statements: LruCache<String, Statement>,
}

struct Manager {
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    io: Arc<Io>,
}

impl r2d2::ManageConnection for Manager {
    type Connection = Conn;
    type Error = tokio_postgres::Error;
    fn connect(&self) -> std::result::Result<Conn, tokio_postgres::Error> {
        let (config, tls) = (self.config.clone(), self.tls.clone());
        let connecting = self.io.handle.spawn(async move {
            let (client, connection) = config.connect(tls).await?;
            // The connection's task ends when the client is dropped or the socket closes.
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %describe(&e), "PostgreSQL connection closed");
                }
            });
            Ok(client)
        });
        let client = match block_on(connecting) {
            Ok(result) => result?,
            Err(join) => std::panic::resume_unwind(join.into_panic()),
        };
        Ok(Conn {
            client,
            statements: LruCache::new(
                std::num::NonZeroUsize::new(STATEMENT_CACHE).expect("nonzero"),
            ),
        })
    }
    fn is_valid(&self, c: &mut Conn) -> std::result::Result<(), tokio_postgres::Error> {
        block_on(c.client.simple_query("")).map(|_| ())
    }
    fn has_broken(&self, c: &mut Conn) -> bool {
        c.client.is_closed()
    }
}

/// A client (a connection or a transaction on it) and its connection's statement cache:
/// what every PostgreSQL body of the store runs its SQL on.
pub(crate) struct Db<'a, C: GenericClient> {
    client: &'a mut C,
    statements: &'a mut LruCache<String, Statement>,
}

/// A transaction of [`Postgres::write`].
pub(crate) type Tx<'a, 'c> = Db<'a, tokio_postgres::Transaction<'c>>;

/// A parameter list.
pub(crate) type Params<'p> = [&'p (dyn ToSql + Sync)];

impl<C: GenericClient> Db<'_, C> {
    fn statement(&mut self, sql: &str) -> Result<Statement> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = block_on(self.client.prepare(sql))?;
        self.statements.put(sql.to_string(), s.clone());
        Ok(s)
    }

    /// Run a statement; the number of rows it changed.
    pub fn execute(&mut self, sql: &str, params: &Params<'_>) -> Result<u64> {
        let st = self.statement(sql)?;
        Ok(block_on(self.client.execute(&st, params))?)
    }

    /// Every row of a query.
    pub fn query(&mut self, sql: &str, params: &Params<'_>) -> Result<Vec<Row>> {
        let st = self.statement(sql)?;
        Ok(block_on(self.client.query(&st, params))?)
    }

    /// The first row of a query, if any.
    pub fn query_opt(&mut self, sql: &str, params: &Params<'_>) -> Result<Option<Row>> {
        let st = self.statement(sql)?;
        Ok(block_on(self.client.query_opt(&st, params))?)
    }

    /// The one row a query returns (an aggregate, a `RETURNING`).
    pub fn query_one(&mut self, sql: &str, params: &Params<'_>) -> Result<Row> {
        let st = self.statement(sql)?;
        Ok(block_on(self.client.query_one(&st, params))?)
    }

    /// Several statements without parameters (a migration).
    pub fn batch(&mut self, sql: &str) -> Result<()> {
        Ok(block_on(self.client.batch_execute(sql))?)
    }
}

impl Db<'_, tokio_postgres::Transaction<'_>> {
    /// A `COPY … FROM STDIN` of this transaction: the sink its rows go to.
    pub fn copy_in(&mut self, sql: &str) -> Result<tokio_postgres::CopyInSink<bytes::Bytes>> {
        Ok(block_on(self.client.copy_in(sql))?)
    }
}

/// Column `i` of `row`, or [`StoreError::Corrupt`] if it does not hold a `T`.
pub(crate) fn get<'r, T: tokio_postgres::types::FromSql<'r>>(row: &'r Row, i: usize) -> Result<T> {
    row.try_get(i)
        .map_err(|e| StoreError::Corrupt(format!("column {i}: {e}")))
}

/// What a driver error says, in one line: the server's message, or the error and its
/// causes (the driver's own Display says only "db error" or "error connecting").
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return db.message().to_string();
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text.replace('\n', " ")
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        use tokio_postgres::error::SqlState;
        let message = describe(&e);
        let Some(code) = e.code() else {
            // No SQLSTATE: the connection (closed, refused, timed out, TLS).
            return StoreError::Unavailable(message);
        };
        match code {
            c if *c == SqlState::UNIQUE_VIOLATION
                || *c == SqlState::FOREIGN_KEY_VIOLATION
                || *c == SqlState::CHECK_VIOLATION
                || *c == SqlState::NOT_NULL_VIOLATION
                || *c == SqlState::RESTRICT_VIOLATION =>
            {
                StoreError::Conflict(message)
            }
            // Class 22, data exception: a value PostgreSQL will not store (a NUL character
            // in text, a number out of range). The caller's data, not the server's fault.
            c if c.code().starts_with("22") => StoreError::Invalid(message),
            // Class 08 (connection), 57P (shut down, cannot connect now), 53 (resources).
            c if c.code().starts_with("08")
                || c.code().starts_with("57P")
                || c.code().starts_with("53") =>
            {
                StoreError::Unavailable(message)
            }
            _ => StoreError::Database(message),
        }
    }
}

/// The PostgreSQL store: a pool of connections to one database.
pub(crate) struct Postgres {
    pool: r2d2::Pool<Manager>,
}

impl Postgres {
    /// Connect, check the schema and bring it up to date (creating it in an empty database
    /// only if `create`).
    pub fn open(target: &PgTarget, create: bool) -> Result<Postgres> {
        let open_err = |e: &dyn std::fmt::Display| StoreError::Open {
            path: target.shown.clone(),
            reason: e.to_string(),
        };
        let io = Io::start().map_err(|e| open_err(&e))?;
        let manager = Manager {
            config: target.config.clone(),
            tls: target.tls()?,
            io: Arc::new(io),
        };
        // The first connection directly, so a refusal says why (the pool would say only
        // that it timed out).
        let mut first = r2d2::ManageConnection::connect(&manager).map_err(|e| {
            let mut why = describe(&e);
            if why.contains("invalid peer certificate") {
                // Not from a public CA (or for another host name): say how to trust it.
                why.push_str(
                    "; name the CA that signed the database's certificate with sslrootcert=PATH in the URL",
                );
            }
            open_err(&why)
        })?;
        migrate::migrate(&mut first, &target.shown, create)?;
        let pool = r2d2::Pool::builder()
            .max_size(target.pool_size)
            .min_idle(Some(0))
            .connection_timeout(target.timeout)
            .test_on_check_out(false)
            .build(manager)
            .map_err(|e| open_err(&e))?;
        Ok(Postgres { pool })
    }

    fn conn(&self) -> Result<r2d2::PooledConnection<Manager>> {
        self.pool
            .get()
            .map_err(|e| StoreError::Unavailable(e.to_string()))
    }

    /// Run `f` on a pooled connection, outside any transaction (each statement sees the
    /// latest commits).
    pub fn read<T>(
        &self,
        f: impl FnOnce(&mut Db<'_, tokio_postgres::Client>) -> Result<T>,
    ) -> Result<T> {
        let mut conn = self.conn()?;
        let Conn { client, statements } = &mut *conn;
        f(&mut Db { client, statements })
    }

    /// Run `f` in one transaction holding [`WRITE_LOCK`]; commit if it returns Ok.
    pub fn write<T>(&self, f: impl FnOnce(&mut Tx<'_, '_>) -> Result<T>) -> Result<T> {
        let mut conn = self.conn()?;
        let Conn { client, statements } = &mut *conn;
        let mut tx = block_on(client.transaction())?;
        let out = {
            let mut db = Db {
                client: &mut tx,
                statements,
            };
            db.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])?;
            f(&mut db)?
        };
        block_on(tx.commit())?;
        Ok(out)
    }

    /// A round trip to the database: `/readyz`.
    pub fn ping(&self) -> Result<()> {
        self.read(|db| db.batch("SELECT 1"))
    }
}

pub(crate) use scim::{insert as insert_scim_in, replace_at_version as replace_scim_in};
pub(crate) use tokens::{insert_token, insert_token_jobs};

/// What the tests of this directory share: a store in a database of its own.
#[cfg(test)]
pub(crate) mod testing {
    use std::sync::atomic::{AtomicU32, Ordering};

    /// The test cluster's URL (scripts/test.sh starts it), with its CA; `None` when the
    /// tests run without one, unless `SCIMGATE_TEST_PG_REQUIRED` says they must not.
    pub fn server_url() -> Option<String> {
        match std::env::var("SCIMGATE_TEST_PG_URL") {
            Ok(url) if !url.is_empty() => {
                let ca = std::env::var("SCIMGATE_TEST_PG_CA").unwrap_or_default();
                Some(if ca.is_empty() {
                    url
                } else {
                    format!("{url}?sslmode=require&sslrootcert={ca}")
                })
            }
            _ => {
                assert!(
                    std::env::var_os("SCIMGATE_TEST_PG_REQUIRED").is_none(),
                    "SCIMGATE_TEST_PG_REQUIRED is set but SCIMGATE_TEST_PG_URL is not"
                );
                None
            }
        }
    }

    /// A new, empty database on the test cluster, as a URL; dropped with the value.
    pub struct TempDb {
        pub url: String,
        admin: String,
        name: String,
    }

    impl Drop for TempDb {
        fn drop(&mut self) {
            if let Ok(mut c) = connect(&self.admin) {
                let _ = c.batch_execute(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    self.name
                ));
            }
        }
    }

    /// A plain client on `url` (a test's own statements beside the store's).
    pub fn connect(url: &str) -> Result<postgres::Client, String> {
        let target = super::PgTarget::parse(url)?;
        let tls = target.tls().map_err(|e| e.to_string())?;
        postgres::Config::from(target.config)
            .connect(tls)
            .map_err(|e| e.to_string())
    }

    /// A fresh database named after `label`, the process and a counter.
    pub fn temp_db(label: &str) -> Option<TempDb> {
        static N: AtomicU32 = AtomicU32::new(0);
        let admin = server_url()?;
        let name = format!(
            "t_{}_{}_{}",
            label
                .chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .take(20)
                .collect::<String>()
                .to_lowercase(),
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let mut c = connect(&admin).expect("connect to the test cluster");
        c.batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create a test database");
        let mut url = url::Url::parse(&admin).expect("test URL");
        url.set_path(&format!("/{name}"));
        Some(TempDb {
            url: url.to_string(),
            admin,
            name,
        })
    }
}
