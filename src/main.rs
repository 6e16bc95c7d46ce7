//! `scimgate serve`: resolve settings, open (or create) the store, start the HTTP server
//! (HTTPS with `--tls-cert`/`--tls-key`), install the non-blocking log writer that the
//! access log goes through, stop gracefully on SIGTERM/SIGINT. Everything else lives in
//! the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use actix_web::{App, HttpServer};
use clap::{Parser, Subcommand};

use scimgate::http;
use scimgate::settings::{LogFormat, RawSettings, SettingFlags, Settings};
use scimgate::state::AppState;
use scimgate::store::Store;
use scimgate::time::Clock;

/// The server allocates per request (JSON documents, log lines); mimalloc is faster at
/// that than glibc's malloc (bench/RESULTS.md, issue 15).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "scimgate",
    version,
    about = "OAuth2 authorization server and SCIM 2.0 endpoint"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the server (creates the store if it does not exist).
    Serve(ServeArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// TOML settings file.
    #[arg(long, env = "SCIMGATE_CONFIG")]
    config: Option<PathBuf>,
    // The settings that have a flag (`scimgate::settings::raw`).
    #[command(flatten)]
    flags: SettingFlags,
}

fn resolve(args: ServeArgs) -> Result<Settings, String> {
    let raw = RawSettings::layered(
        args.config.as_deref(),
        |k| std::env::var(k).ok(),
        args.flags.0,
    )
    .map_err(|e| e.to_string())?;
    Settings::resolve(raw).map_err(|e| e.to_string())
}

/// Install the log subscriber. Lines go through a non-blocking writer (a channel and a
/// background thread writing stderr in batches; `scimgate::access_log`): a request never
/// waits for the log. Lines that do not fit while the writer is behind are dropped and
/// counted. The returned guard flushes what is queued when dropped, at the end of `main`.
fn init_logging(format: LogFormat) -> tracing_appender::non_blocking::WorkerGuard {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(LOG_QUEUE_LINES)
        .finish(std::io::BufWriter::with_capacity(
            LOG_BUFFER_BYTES,
            std::io::stderr(),
        ));
    scimgate::access_log::set_drop_counter(writer.error_counter());
    scimgate::access_log::set_sink(writer.clone(), format == LogFormat::Json);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(writer);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
    guard
}

/// Lines the log writer may hold before it drops: about 4 MiB of lines, a quarter of a
/// second at the highest rate measured. 128 Ki lines (32 MiB when full) was most of the
/// resident set's growth under bench/latency.sh; the writer keeps up with every rate
/// measured there, so a longer queue bought nothing but memory (bench/RESULTS.md).
const LOG_QUEUE_LINES: usize = 16 * 1024;

/// The log writer's buffer: its thread writes every line queued by then and flushes when
/// the queue is empty, so a busy second costs a few `write`s to stderr, not one per line
/// (stderr itself is unbuffered).
const LOG_BUFFER_BYTES: usize = 64 * 1024;

/// Say in the log, every 10 s, how many lines were dropped since the last time, if any.
fn report_dropped_lines() {
    std::thread::Builder::new()
        .name("log-drops".into())
        .spawn(|| {
            let mut reported = 0;
            loop {
                std::thread::sleep(std::time::Duration::from_secs(10));
                let dropped = scimgate::access_log::dropped_lines();
                if dropped > reported {
                    tracing::warn!(
                        dropped = dropped - reported,
                        total = dropped,
                        "the log writer fell behind; lines were dropped (requests were not held up)"
                    );
                    reported = dropped;
                }
            }
        })
        .ok();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let Command::Serve(args) = cli.command;
    let settings = match resolve(args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let _log_guard = init_logging(settings.log_format);
    report_dropped_lines();
    let store = match Store::open_or_create(&settings.db).and_then(|s| {
        s.set_power_loss_durable(settings.durable_commits)?;
        Ok(s)
    }) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    match serve(settings, store) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// Below this many open files the server warns at start.
const FEW_OPEN_FILES: u64 = 4096;

/// Raise the soft limit of open files to the hard one. Every connection is a file: at the
/// soft limit (often 1,024) the server accepts no new connection, so whoever holds that
/// many idle ones keeps every IdP out (bench/RESULTS.md). The hard limit is the
/// operator's to set (`LimitNOFILE=`).
fn raise_open_files_limit() {
    use rlimit::Resource;
    let Ok((soft, hard)) = Resource::NOFILE.get() else {
        return;
    };
    let now = match rlimit::increase_nofile_limit(hard) {
        Ok(now) => now,
        Err(e) => {
            tracing::warn!(error = %e, soft, hard, "cannot raise the open files limit");
            soft
        }
    };
    if now > soft {
        tracing::info!(
            from = soft,
            to = now,
            "open files limit raised to the hard limit"
        );
    }
    if now < FEW_OPEN_FILES {
        tracing::warn!(
            limit = now,
            "the open files limit is low: whoever holds that many idle connections keeps \
             every client out; raise the hard limit (LimitNOFILE= in a systemd unit)"
        );
    }
}

/// Run the server until SIGTERM or SIGINT; actix then stops accepting, lets in-flight
/// requests finish (up to 30 s) and returns.
#[actix_web::main]
async fn serve(settings: Settings, store: Arc<Store>) -> std::io::Result<()> {
    let listen = settings.listen;
    let tls = settings
        .tls
        .as_ref()
        .map(|t| t.server_config())
        .transpose()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
    raise_open_files_limit();
    let state = AppState::new(store, settings.clone(), Clock::system());
    // logrotate: SIGHUP makes the monitor reopen scim_heartbeat.log.
    #[cfg(unix)]
    if let Err(e) =
        signal_hook::flag::register(signal_hook::consts::SIGHUP, state.monitor.reopen_flag())
    {
        tracing::warn!(error = %e, "cannot handle SIGHUP; the heartbeat log will not be reopened");
    }
    if let Err(e) = scimgate::monitor::publish_leads(&state.store, &settings.monitor) {
        tracing::warn!(error = %e, "cannot record the expiry-warning lead times for `config status`");
    }
    let app_state = state.clone();
    let server = HttpServer::new(move || {
        let state = app_state.clone();
        App::new().configure(move |cfg| http::configure(cfg, state))
    })
    .shutdown_timeout(30);
    let cannot = |e: std::io::Error| {
        std::io::Error::new(e.kind(), format!("cannot listen on {listen}: {e}"))
    };
    let server = match tls {
        Some(config) => server.bind_rustls_0_23(listen, config).map_err(cannot)?,
        None => server.bind(listen).map_err(cannot)?,
    };
    tracing::info!(
        %listen,
        public_url = %settings.public_url,
        tls = settings.tls.is_some(),
        db = %settings.db,
        "scimgate listening"
    );
    let result = server.run().await;
    // The server has drained; write what the usage recorder still holds.
    state.shutdown();
    tracing::info!("scimgate stopped");
    result
}
