//! `scim_heartbeat.log`: one JSON line per attributed SCIM request and per state change,
//! in its own file. Reopened on SIGHUP so logrotate can move it away. Lines are written in
//! batches by the monitor thread, never on the request path.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::events::{Attribution, RequestEvent};
use crate::time::format_rfc3339;

/// The heartbeat log file.
#[derive(Debug)]
pub struct HeartbeatLog {
    path: PathBuf,
    file: Mutex<Option<File>>,
    reopen: Arc<AtomicBool>,
}

fn open(path: &Path) -> std::io::Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    OpenOptions::new().create(true).append(true).open(path)
}

/// The JSON line of a request.
pub fn request_line(e: &RequestEvent) -> Value {
    let (client_id, token_id, verdict) = match &e.attribution {
        Attribution::Token {
            token_id,
            client_id,
            verdict,
        } => (
            Some(client_id.as_str()),
            Some(token_id.as_str()),
            verdict.as_str(),
        ),
        Attribution::Unknown => (None, None, "unknown_token"),
    };
    json!({
        "ts": format_rfc3339(e.at),
        "event": "request",
        "client_id": client_id,
        "token_id": token_id,
        "verdict": verdict,
        "method": e.method,
        "path": e.path,
        "status": e.status,
        "ip": e.ip,
        "user_agent": e.user_agent,
        "latency_ms": (e.latency_ms * 1000.0).round() / 1000.0,
    })
}

impl HeartbeatLog {
    /// The log at `path` (opened on first write).
    pub fn new(path: PathBuf) -> HeartbeatLog {
        HeartbeatLog {
            path,
            file: Mutex::new(None),
            reopen: Arc::new(AtomicBool::new(false)),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The flag a SIGHUP handler sets to have the file reopened before the next write.
    pub fn reopen_flag(&self) -> Arc<AtomicBool> {
        self.reopen.clone()
    }

    /// Ask for the file to be reopened before the next write (SIGHUP).
    pub fn request_reopen(&self) {
        self.reopen.store(true, Ordering::SeqCst);
    }

    /// Append lines; errors are logged, never raised (the log must not stop the monitor).
    pub fn write(&self, lines: &[Value]) {
        if lines.is_empty() {
            return;
        }
        let mut guard = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if self.reopen.swap(false, Ordering::SeqCst) {
            *guard = None;
        }
        if guard.is_none() {
            match open(&self.path) {
                Ok(f) => *guard = Some(f),
                Err(e) => {
                    tracing::error!(path = %self.path.display(), error = %e, "cannot open the heartbeat log");
                    return;
                }
            }
        }
        if let Some(f) = guard.as_mut() {
            let mut w = BufWriter::new(f);
            for line in lines {
                let _ = writeln!(w, "{line}");
            }
            if let Err(e) = w.flush() {
                tracing::error!(path = %self.path.display(), error = %e, "cannot write the heartbeat log");
            }
        }
    }
}
