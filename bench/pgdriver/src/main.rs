//! Which PostgreSQL driver for scimgate's store (issue 16), by measurement.
//!
//! Against the cluster of `scripts/pg.sh` (tables made by `bench/pgdriver.sh`), each driver
//! runs the same three operations, each with 1 and 16 concurrent callers and a pool of 16
//! connections:
//! - `select`: a point SELECT by primary key of a 100,000-row table, as a cached/prepared
//!   statement (one round trip);
//! - `insert`: a one-row INSERT in its own transaction, committed (synchronous_commit on, so
//!   each commit waits for the WAL fsync, shared between concurrent commits);
//! - `batch`: 32 one-row INSERTs in one transaction (what a group commit does).
//!
//! Drivers (each a cargo feature): `sync` (postgres + r2d2_postgres, called from OS
//! threads, as scimgate's blocking store would), `deadpool` (tokio-postgres + deadpool-postgres)
//! and `sqlx`. The two async ones run twice: as tokio tasks (`tasks`, async callers) and from
//! OS threads through `Handle::block_on` (`block_on`, what the blocking store would do without
//! becoming async).
//!
//! Usage: pgdriver DRIVER [--tls] [--secs S] [--tests select,insert,batch] [--callers 1,16]
//!   DRIVER: sync (r2d2 + a statement cache), sync-typed (r2d2, query_typed), deadpool-tasks, deadpool-block_on, sqlx-tasks, sqlx-block_on, or `tls-check`
//!   (each driver connects with verify-full against the CA and says whether the session is TLS).
//! Env: PG_URL (default: the contents of target/pg/url), PG_CA (default target/pg/ca.pem).
//! Prints one Markdown table row per measurement.

#[cfg(any(feature = "deadpool", feature = "sqlx"))]
mod async_drivers;
mod harness;
#[cfg(feature = "sync")]
mod sync_r2d2;
#[cfg(feature = "rustls-for-tokio-postgres")]
mod tls;

use std::path::PathBuf;
use std::time::Duration;

pub use harness::{Stats, Test};

/// The rows of `bench_kv` (ids 1..=ROWS).
pub const ROWS: i64 = 100_000;
/// INSERTs in one `batch` transaction.
pub const BATCH: usize = 32;
/// Connections in every pool.
pub const POOL: usize = 16;
pub const SELECT_SQL: &str = "SELECT v FROM bench_kv WHERE id = $1";
pub const INSERT_SQL: &str = "INSERT INTO bench_ins (k, v) VALUES ($1, $2)";
/// The value inserted (the size of a token row's text, roughly).
pub const VALUE: &str = "0123456789abcdef0123456789abcdef01234567";

pub struct Opts {
    pub url: String,
    pub ca: PathBuf,
    pub tls: bool,
    pub secs: f64,
    pub warmup: Duration,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let driver = args
        .next()
        .ok_or("usage: pgdriver DRIVER [--tls] [--secs S] [--tests ...] [--callers ...]")?;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let url = match std::env::var("PG_URL") {
        Ok(u) => u,
        Err(_) => std::fs::read_to_string(root.join("target/pg/url"))
            .map_err(|e| format!("no PG_URL and no target/pg/url ({e}): bash scripts/pg.sh start"))?
            .trim()
            .to_string(),
    };
    let ca = std::env::var("PG_CA")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target/pg/ca.pem"));
    let mut opts = Opts {
        url,
        ca,
        tls: false,
        secs: 5.0,
        warmup: Duration::from_secs(1),
    };
    let mut tests = vec![Test::Select, Test::Insert, Test::Batch];
    let mut callers = vec![1usize, 16];
    while let Some(a) = args.next() {
        match a.as_str() {
            "--tls" => opts.tls = true,
            "--secs" => opts.secs = args.next().ok_or("--secs S")?.parse()?,
            "--tests" => {
                tests = args
                    .next()
                    .ok_or("--tests LIST")?
                    .split(',')
                    .map(|t| t.parse())
                    .collect::<Result<_, _>>()?
            }
            "--callers" => {
                callers = args
                    .next()
                    .ok_or("--callers LIST")?
                    .split(',')
                    .map(|c| c.parse())
                    .collect::<Result<_, _>>()?
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    if driver == "tls-check" {
        return tls_check(&opts);
    }
    for &test in &tests {
        for &n in &callers {
            let stats = run(&driver, &opts, test, n)?;
            println!("{}", stats.row(&driver, opts.tls, test, n));
        }
    }
    Ok(())
}

fn run(driver: &str, opts: &Opts, test: Test, callers: usize) -> Result<Stats, BoxError> {
    match driver {
        #[cfg(feature = "sync")]
        "sync" => sync_r2d2::run(opts, test, callers, true),
        #[cfg(feature = "sync")]
        "sync-typed" => sync_r2d2::run(opts, test, callers, false),
        #[cfg(feature = "deadpool")]
        "deadpool-tasks" => {
            async_drivers::run(async_drivers::Driver::Deadpool, false, opts, test, callers)
        }
        #[cfg(feature = "deadpool")]
        "deadpool-block_on" => {
            async_drivers::run(async_drivers::Driver::Deadpool, true, opts, test, callers)
        }
        #[cfg(feature = "sqlx")]
        "sqlx-tasks" => async_drivers::run(async_drivers::Driver::Sqlx, false, opts, test, callers),
        #[cfg(feature = "sqlx")]
        "sqlx-block_on" => {
            async_drivers::run(async_drivers::Driver::Sqlx, true, opts, test, callers)
        }
        other => Err(format!("unknown driver {other} (or its feature is off)").into()),
    }
}

/// Each driver connects with TLS (rustls, verify-full against the CA) and reports what the
/// server says of the session.
fn tls_check(opts: &Opts) -> Result<(), BoxError> {
    #[cfg(feature = "sync")]
    println!(
        "sync (postgres + tokio-postgres-rustls): {}",
        sync_r2d2::tls_check(opts)?
    );
    #[cfg(any(feature = "deadpool", feature = "sqlx"))]
    for line in async_drivers::tls_check(opts)? {
        println!("{line}");
    }
    Ok(())
}
