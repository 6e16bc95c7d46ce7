//! `postgres` (the blocking client) with `r2d2_postgres`, called from OS threads: the shape
//! scimgate's store has today with rusqlite and r2d2_sqlite.
//!
//! The crate has no statement cache. Two ways, both measured:
//! - `sync`: r2d2_postgres's manager wrapped in one that keeps a statement cache with each
//!   connection (about 30 lines, below): prepared once per connection, then Bind, Execute;
//! - `sync-typed`: r2d2_postgres as it is, statements through `query_typed` (parameter types
//!   given: Parse, Bind, Execute in one round trip, but the server parses and plans each time).

use crate::harness::{Stats, Test, Window, Worker};
use crate::{BoxError, INSERT_SQL, Opts, POOL, SELECT_SQL, VALUE};
use postgres::tls::{MakeTlsConnect, TlsConnect};
use postgres::types::Type;
use postgres::{Client, NoTls, Socket, Statement};
use r2d2_postgres::PostgresConnectionManager;
use std::collections::HashMap;
use std::str::FromStr;
use std::time::Instant;
use tokio_postgres_rustls::MakeRustlsConnect;

/// A pooled client with the statements it prepared.
pub struct CachedClient {
    client: Client,
    statements: HashMap<&'static str, Statement>,
}

impl CachedClient {
    fn prepare_cached(&mut self, sql: &'static str) -> Result<Statement, postgres::Error> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql)?;
        self.statements.insert(sql, s.clone());
        Ok(s)
    }
}

/// r2d2_postgres's manager, its clients wrapped in [`CachedClient`].
pub struct CachingManager<T>(PostgresConnectionManager<T>);

impl<T> r2d2::ManageConnection for CachingManager<T>
where
    T: MakeTlsConnect<Socket> + Clone + 'static + Sync + Send,
    T::TlsConnect: Send,
    T::Stream: Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    type Connection = CachedClient;
    type Error = postgres::Error;
    fn connect(&self) -> Result<CachedClient, postgres::Error> {
        Ok(CachedClient {
            client: self.0.connect()?,
            statements: HashMap::new(),
        })
    }
    fn is_valid(&self, c: &mut CachedClient) -> Result<(), postgres::Error> {
        self.0.is_valid(&mut c.client)
    }
    fn has_broken(&self, c: &mut CachedClient) -> bool {
        self.0.has_broken(&mut c.client)
    }
}

pub fn run(opts: &Opts, test: Test, callers: usize, cached: bool) -> Result<Stats, BoxError> {
    if opts.tls {
        let tls = MakeRustlsConnect::new(crate::tls::client_config(&opts.ca)?);
        if cached {
            run_cached(opts, tls, test, callers)
        } else {
            run_typed(opts, tls, test, callers)
        }
    } else if cached {
        run_cached(opts, NoTls, test, callers)
    } else {
        run_typed(opts, NoTls, test, callers)
    }
}

pub fn tls_check(opts: &Opts) -> Result<String, BoxError> {
    let tls = MakeRustlsConnect::new(crate::tls::client_config(&opts.ca)?);
    let mut c = Client::connect(&format!("{}?sslmode=require", opts.url), tls)?;
    let row = c.query_one(
        "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        &[],
    )?;
    Ok(format!(
        "ssl={} {}",
        row.get::<_, bool>(0),
        row.get::<_, String>(1)
    ))
}

fn manager<T>(opts: &Opts, tls: T) -> Result<PostgresConnectionManager<T>, BoxError>
where
    T: MakeTlsConnect<Socket> + Clone + 'static + Sync + Send,
    T::TlsConnect: Send,
    T::Stream: Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    let url = if opts.tls {
        format!("{}?sslmode=require", opts.url)
    } else {
        opts.url.clone()
    };
    Ok(PostgresConnectionManager::new(
        postgres::Config::from_str(&url)?,
        tls,
    ))
}

/// OS threads, each looping `op` on a connection checked out of `pool` for each operation.
fn threads<M, F>(
    opts: &Opts,
    pool: &r2d2::Pool<M>,
    test: Test,
    callers: usize,
    op: F,
) -> Result<Stats, BoxError>
where
    M: r2d2::ManageConnection,
    F: Fn(&mut M::Connection, &mut Worker) -> Result<(), BoxError> + Sync,
{
    let w = Window::new(opts);
    let workers = std::thread::scope(|s| {
        let handles: Vec<_> = (0..callers)
            .map(|i| {
                let op = &op;
                s.spawn(move || -> Result<Worker, BoxError> {
                    let mut me = Worker::new(i as u64);
                    while Instant::now() < w.end {
                        let began = Instant::now();
                        op(&mut *pool.get()?, &mut me)?;
                        me.record(&w, began);
                    }
                    Ok(me)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("worker panicked"))
            .collect::<Result<Vec<_>, _>>()
    })?;
    Ok(Stats::of(workers, &w, test))
}

fn run_cached<T>(opts: &Opts, tls: T, test: Test, callers: usize) -> Result<Stats, BoxError>
where
    T: MakeTlsConnect<Socket> + Clone + 'static + Sync + Send,
    T::TlsConnect: Send,
    T::Stream: Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    let pool = r2d2::Pool::builder()
        .max_size(POOL as u32)
        // No query to check a connection at each checkout (r2d2's default), as the other pools are set.
        .test_on_check_out(false)
        .build(CachingManager(manager(opts, tls)?))?;
    threads(opts, &pool, test, callers, |c, me| {
        match test {
            Test::Select => {
                let st = c.prepare_cached(SELECT_SQL)?;
                let row = c.client.query_one(&st, &[&me.key()])?;
                let v: &str = row.get(0);
                assert_eq!(v.len(), 32);
            }
            Test::Insert | Test::Batch => {
                let st = c.prepare_cached(INSERT_SQL)?;
                let mut tx = c.client.transaction()?;
                for _ in 0..test.rows() {
                    tx.execute(&st, &[&me.next(), &VALUE])?;
                }
                tx.commit()?;
            }
        }
        Ok(())
    })
}

fn run_typed<T>(opts: &Opts, tls: T, test: Test, callers: usize) -> Result<Stats, BoxError>
where
    T: MakeTlsConnect<Socket> + Clone + 'static + Sync + Send,
    T::TlsConnect: Send,
    T::Stream: Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    let pool = r2d2::Pool::builder()
        .max_size(POOL as u32)
        .test_on_check_out(false)
        .build(manager(opts, tls)?)?;
    threads(opts, &pool, test, callers, |c, me| {
        match test {
            Test::Select => {
                let id = me.key();
                let row = c.query_typed_one(SELECT_SQL, &[(&id, Type::INT8)])?;
                let v: &str = row.get(0);
                assert_eq!(v.len(), 32);
            }
            Test::Insert | Test::Batch => {
                let mut tx = c.transaction()?;
                for _ in 0..test.rows() {
                    let k = me.next();
                    tx.execute_typed(INSERT_SQL, &[(&k, Type::INT8), (&VALUE, Type::TEXT)])?;
                }
                tx.commit()?;
            }
        }
        Ok(())
    })
}
