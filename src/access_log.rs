//! The access log: one line per request — method, path (never the query string, where a
//! careless client may put a secret), status, client id and token id where known, the
//! client's address and the duration — written as one `tracing` event (target `access`)
//! when the response is ready. Probes (`/healthz`, `/readyz`, `/metrics`) log at debug
//! level, so a load balancer's health checks do not drown the log.
//!
//! The event goes to the subscriber `main` installs, whose writer is non-blocking
//! (`tracing-appender`): the request path only formats the line and hands it to a
//! channel; a background thread writes in batches. When the writer falls behind, lines
//! are dropped instead of blocking requests, counted ([`dropped_lines`]) and reported in
//! the log and `/metrics`; at a clean shutdown the channel is drained.
//!
//! This replaced tracing-actix-web's request span, which cost a span, a request UUID and an
//! unbuffered write per request: more than the OAuth work it logged (issue 15).

use std::sync::OnceLock;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest};

use crate::monitor::events::Attribution;

/// What a handler adds to its request's access-log line (client_credentials issuance:
/// the client and the token it issued).
#[derive(Debug, Clone)]
pub struct AccessFields {
    pub client_id: String,
    pub token_id: String,
}

/// Name the client and the token a request issued on its access-log line.
pub fn record_issue(req: &HttpRequest, client_id: &str, token_id: &str) {
    req.extensions_mut().insert(AccessFields {
        client_id: client_id.to_string(),
        token_id: token_id.to_string(),
    });
}

static DROPPED: OnceLock<tracing_appender::non_blocking::ErrorCounter> = OnceLock::new();

/// Remember the non-blocking writer's drop counter (called once by `main`).
pub fn set_drop_counter(counter: tracing_appender::non_blocking::ErrorCounter) {
    let _ = DROPPED.set(counter);
}

/// Log lines dropped so far because the writer fell behind (0 without a counter: tests).
pub fn dropped_lines() -> u64 {
    DROPPED
        .get()
        .map_or(0, |c| u64::try_from(c.dropped_lines()).unwrap_or(u64::MAX))
}

fn is_probe(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/metrics")
}

/// The middleware (wrapped around every scope by `http::configure`).
pub async fn access_log(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let probe = is_probe(req.path());
    if probe && !tracing::enabled!(target: "access", tracing::Level::DEBUG) {
        return next.call(req).await;
    }
    if !probe && !tracing::enabled!(target: "access", tracing::Level::INFO) {
        return next.call(req).await;
    }
    let res = next.call(req).await?;
    let request = res.request();
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let status = res.status().as_u16();
    let ip = crate::peer::client_ip(request);
    let ext = request.extensions();
    let (client_id, token_id) = match (ext.get::<AccessFields>(), ext.get::<Attribution>()) {
        (Some(f), _) => (Some(f.client_id.as_str()), Some(f.token_id.as_str())),
        (
            None,
            Some(Attribution::Token {
                client_id,
                token_id,
                ..
            }),
        ) => (Some(client_id.as_str()), token_id.as_deref()),
        _ => (None, None),
    };
    let method = request.method().as_str();
    let path = request.path();
    let client_id = client_id.unwrap_or("-");
    let token_id = token_id.unwrap_or("-");
    let ip = ip.map_or_else(|| "-".to_string(), |ip| ip.to_string());
    if probe {
        tracing::debug!(target: "access", method, path, status, client_id, token_id, ip = ip.as_str(), ms = format_args!("{ms:.2}"), "request");
    } else {
        tracing::info!(target: "access", method, path, status, client_id, token_id, ip = ip.as_str(), ms = format_args!("{ms:.2}"), "request");
    }
    drop(ext);
    Ok(res)
}
