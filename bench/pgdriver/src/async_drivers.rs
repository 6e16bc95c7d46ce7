//! The async drivers, tokio-postgres with deadpool-postgres and sqlx, on a tokio runtime of
//! 2 workers (the machine's cores), called either from tasks (an async store) or from OS
//! threads through `Handle::block_on` (the blocking store kept as it is, the runtime driving
//! the connections).

use crate::harness::{Stats, Test, Window, Worker};
use crate::{BoxError, INSERT_SQL, Opts, POOL, SELECT_SQL, VALUE};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Instant;

#[derive(Clone, Copy, PartialEq)]
pub enum Driver {
    #[cfg(feature = "deadpool")]
    Deadpool,
    #[cfg(feature = "sqlx")]
    Sqlx,
}

enum Pool {
    #[cfg(feature = "deadpool")]
    Deadpool(deadpool_postgres::Pool),
    #[cfg(feature = "sqlx")]
    Sqlx(sqlx::PgPool),
}

fn runtime() -> Result<tokio::runtime::Runtime, BoxError> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

async fn pool(driver: Driver, opts: &Opts) -> Result<Pool, BoxError> {
    match driver {
        #[cfg(feature = "deadpool")]
        Driver::Deadpool => {
            use deadpool_postgres::{Manager, ManagerConfig, RecyclingMethod};
            // Fast: a connection goes back to the pool without a query to check it.
            let mc = || ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            };
            let manager = if opts.tls {
                let cfg =
                    tokio_postgres::Config::from_str(&format!("{}?sslmode=require", opts.url))?;
                let tls = tokio_postgres_rustls::MakeRustlsConnect::new(crate::tls::client_config(
                    &opts.ca,
                )?);
                Manager::from_config(cfg, tls, mc())
            } else {
                Manager::from_config(
                    tokio_postgres::Config::from_str(&opts.url)?,
                    tokio_postgres::NoTls,
                    mc(),
                )
            };
            Ok(Pool::Deadpool(
                deadpool_postgres::Pool::builder(manager)
                    .max_size(POOL)
                    .build()?,
            ))
        }
        #[cfg(feature = "sqlx")]
        Driver::Sqlx => {
            use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
            let mut o = PgConnectOptions::from_str(&opts.url)?;
            o = if opts.tls {
                o.ssl_mode(PgSslMode::VerifyFull).ssl_root_cert(&opts.ca)
            } else {
                o.ssl_mode(PgSslMode::Disable)
            };
            // No ping before each acquire (sqlx's default pings every time: one more round
            // trip), as the other pools are set.
            let p = PgPoolOptions::new()
                .max_connections(POOL as u32)
                .test_before_acquire(false)
                .connect_with(o)
                .await?;
            Ok(Pool::Sqlx(p))
        }
    }
}

impl Pool {
    async fn op(&self, test: Test, me: &mut Worker) -> Result<(), BoxError> {
        match self {
            #[cfg(feature = "deadpool")]
            Pool::Deadpool(p) => {
                let mut c = p.get().await?;
                match test {
                    Test::Select => {
                        let st = c.prepare_cached(SELECT_SQL).await?;
                        let row = c.query_one(&st, &[&me.key()]).await?;
                        let v: &str = row.get(0);
                        assert_eq!(v.len(), 32);
                    }
                    Test::Insert | Test::Batch => {
                        let st = c.prepare_cached(INSERT_SQL).await?;
                        let tx = c.transaction().await?;
                        for _ in 0..test.rows() {
                            tx.execute(&st, &[&me.next(), &VALUE]).await?;
                        }
                        tx.commit().await?;
                    }
                }
            }
            #[cfg(feature = "sqlx")]
            Pool::Sqlx(p) => match test {
                // sqlx prepares each query once per connection and caches it.
                Test::Select => {
                    let (v,): (String,) = sqlx::query_as(SELECT_SQL)
                        .bind(me.key())
                        .fetch_one(p)
                        .await?;
                    assert_eq!(v.len(), 32);
                }
                Test::Insert | Test::Batch => {
                    let mut tx = p.begin().await?;
                    for _ in 0..test.rows() {
                        sqlx::query(INSERT_SQL)
                            .bind(me.next())
                            .bind(VALUE)
                            .execute(&mut *tx)
                            .await?;
                    }
                    tx.commit().await?;
                }
            },
        }
        Ok(())
    }
}

pub fn run(
    driver: Driver,
    block_on: bool,
    opts: &Opts,
    test: Test,
    callers: usize,
) -> Result<Stats, BoxError> {
    let rt = runtime()?;
    let pool = Arc::new(rt.block_on(pool(driver, opts))?);
    let w = Window::new(opts);
    let workers: Vec<Worker> = if block_on {
        let handle = rt.handle();
        std::thread::scope(|s| {
            let hs: Vec<_> = (0..callers)
                .map(|i| {
                    let pool = &pool;
                    s.spawn(move || -> Result<Worker, BoxError> {
                        let mut me = Worker::new(i as u64);
                        while Instant::now() < w.end {
                            let began = Instant::now();
                            handle.block_on(pool.op(test, &mut me))?;
                            me.record(&w, began);
                        }
                        Ok(me)
                    })
                })
                .collect();
            hs.into_iter()
                .map(|h| h.join().expect("worker panicked"))
                .collect::<Result<_, _>>()
        })?
    } else {
        rt.block_on(async {
            let hs: Vec<_> = (0..callers)
                .map(|i| {
                    let pool = pool.clone();
                    tokio::spawn(async move {
                        let mut me = Worker::new(i as u64);
                        while Instant::now() < w.end {
                            let began = Instant::now();
                            pool.op(test, &mut me).await?;
                            me.record(&w, began);
                        }
                        Ok::<_, BoxError>(me)
                    })
                })
                .collect();
            let mut out = Vec::new();
            for h in hs {
                out.push(h.await??);
            }
            Ok::<_, BoxError>(out)
        })?
    };
    Ok(Stats::of(workers, &w, test))
}

pub fn tls_check(opts: &Opts) -> Result<Vec<String>, BoxError> {
    let rt = runtime()?;
    let tls_opts = Opts {
        tls: true,
        url: opts.url.clone(),
        ca: opts.ca.clone(),
        ..*opts
    };
    let q = "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
    let mut out = Vec::new();
    #[cfg(feature = "deadpool")]
    #[allow(irrefutable_let_patterns)] // when sqlx is not built
    if let Pool::Deadpool(p) = rt.block_on(pool(Driver::Deadpool, &tls_opts))? {
        let row = rt.block_on(async {
            p.get()
                .await?
                .query_one(q, &[])
                .await
                .map_err(BoxError::from)
        })?;
        out.push(format!(
            "deadpool (tokio-postgres + tokio-postgres-rustls): ssl={} {}",
            row.get::<_, bool>(0),
            row.get::<_, String>(1)
        ));
    }
    #[cfg(feature = "sqlx")]
    #[allow(irrefutable_let_patterns)] // when deadpool is not built
    if let Pool::Sqlx(p) = rt.block_on(pool(Driver::Sqlx, &tls_opts))? {
        let (ssl, version): (bool, String) = rt.block_on(sqlx::query_as(q).fetch_one(&p))?;
        out.push(format!("sqlx (rustls, verify-full): ssl={ssl} {version}"));
    }
    Ok(out)
}
