//! `scim_heartbeat.log`: one JSON line per attributed SCIM request and per state change,
//! in its own file. Reopened on SIGHUP so logrotate can move it away. Lines are written in
//! batches by the monitor thread, never on the request path. Created `0600`, as the store
//! is: it names clients, token ids and source addresses.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::Value;

use super::events::{Attribution, RequestEvent};
use crate::time::format_rfc3339;

/// Requests with unknown tokens written one by one per second (of their time); the rest
/// of that second are summarised in one line.
pub const UNKNOWN_LINES_PER_SECOND: usize = 10;

/// The heartbeat log file.
#[derive(Debug)]
pub struct HeartbeatLog {
    path: PathBuf,
    file: Mutex<Option<File>>,
    reopen: Arc<AtomicBool>,
    unknown: Mutex<UnknownSecond>,
}

/// Requests with unknown tokens in the latest second that had any: how many were written
/// one by one, and the summary of the others, written once the second is over.
#[derive(Debug, Default)]
struct UnknownSecond {
    at: crate::time::Timestamp,
    written: usize,
    summarised: usize,
    some_ips: std::collections::BTreeSet<String>,
}

impl UnknownSecond {
    /// Write the summary of the second, if any, and start `at`.
    fn roll(&mut self, out: &mut impl Write, at: crate::time::Timestamp) -> std::io::Result<()> {
        self.write_summary(out)?;
        *self = UnknownSecond {
            at,
            ..UnknownSecond::default()
        };
        Ok(())
    }

    /// Write the summary of the requests not written one by one so far, if any.
    fn write_summary(&mut self, out: &mut impl Write) -> std::io::Result<()> {
        if self.summarised > 0 {
            serde_json::to_writer(
                &mut *out,
                &serde_json::json!({
                    "ts": format_rfc3339(self.at),
                    "event": "unknown_tokens",
                    "verdict": "unknown_token",
                    "count": self.summarised,
                    "some_ips": self.some_ips,
                }),
            )?;
            out.write_all(b"\n")?;
        }
        self.summarised = 0;
        self.some_ips.clear();
        Ok(())
    }
}

fn open(path: &Path) -> std::io::Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// The JSON line of a request, serialised straight from borrowed fields (the monitor
/// writes one per SCIM request, so no intermediate `Value` is built).
#[derive(Serialize)]
struct RequestLine<'a> {
    ts: &'a str,
    event: &'static str,
    client_id: Option<&'a str>,
    token_id: Option<&'a str>,
    verdict: &'static str,
    method: &'a str,
    path: &'a str,
    status: u16,
    /// Written with `Display`, straight into the line (no string allocated per event).
    #[serde(serialize_with = "display")]
    ip: Option<std::net::IpAddr>,
    user_agent: Option<&'a str>,
    latency_ms: f64,
}

fn display<S: serde::Serializer>(
    ip: &Option<std::net::IpAddr>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    match ip {
        Some(ip) => s.collect_str(ip),
        None => s.serialize_none(),
    }
}

fn request_line<'a>(e: &'a RequestEvent, ts: &'a str) -> RequestLine<'a> {
    let (client_id, token_id, verdict) = match &e.attribution {
        Attribution::Token {
            token_id,
            client_id,
            verdict,
        } => (
            Some(client_id.as_str()),
            token_id.as_deref(),
            verdict.as_str(),
        ),
        Attribution::Unknown => (None, None, "unknown_token"),
    };
    RequestLine {
        ts,
        event: "request",
        client_id,
        token_id,
        verdict,
        method: e.method.as_str(),
        path: &e.path,
        status: e.status,
        ip: e.ip,
        user_agent: e.user_agent.as_deref(),
        latency_ms: (e.latency_ms * 1000.0).round() / 1000.0,
    }
}

impl HeartbeatLog {
    /// The log at `path` (opened on first write).
    pub fn new(path: PathBuf) -> HeartbeatLog {
        HeartbeatLog {
            path,
            file: Mutex::new(None),
            reopen: Arc::new(AtomicBool::new(false)),
            unknown: Mutex::default(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The flag a SIGHUP handler sets to have the file reopened before the next write.
    pub fn reopen_flag(&self) -> Arc<AtomicBool> {
        self.reopen.clone()
    }

    /// Append one line per request.
    ///
    /// Lines are serialised into a 64 KiB buffer that is written out whenever it fills,
    /// not into one buffer holding the whole drain (megabytes at tens of thousands of
    /// requests a second): the kernel then copies from memory that is still in cache, and
    /// no large allocation is mapped, faulted in and unmapped on every drain.
    pub fn write_requests(&self, events: &[RequestEvent]) {
        if events.is_empty() {
            return;
        }
        self.with_file(|f| {
            let mut out = std::io::BufWriter::with_capacity(64 * 1024, f);
            // Events of the same second share their timestamp string.
            let mut last: Option<(crate::time::Timestamp, String)> = None;
            // Requests with unknown tokens come from nobody we know, maybe a flood: the
            // first few of a second are written one by one, the rest as one summary line
            // per second, so junk grows the file by a bounded amount a second whatever
            // its rate and however often the monitor drains.
            let mut unknown = crate::sync::lock(&self.unknown);
            let mut pace = crate::sync::Pace::default();
            for e in events {
                pace.step();
                if e.at > unknown.at {
                    unknown.roll(&mut out, e.at)?;
                }
                if matches!(e.attribution, Attribution::Unknown) {
                    if unknown.written >= UNKNOWN_LINES_PER_SECOND {
                        unknown.summarised += 1;
                        if unknown.some_ips.len() < 5
                            && let Some(ip) = e.ip
                        {
                            unknown.some_ips.insert(ip.to_string());
                        }
                        continue;
                    }
                    unknown.written += 1;
                }
                if last.as_ref().is_none_or(|(at, _)| *at != e.at) {
                    last = Some((e.at, format_rfc3339(e.at)));
                }
                let ts = last.as_ref().map_or("", |(_, s)| s.as_str());
                serde_json::to_writer(&mut out, &request_line(e, ts))?;
                out.write_all(b"\n")?;
            }
            out.flush()
        });
    }

    /// Write the summary of unknown-token requests still held for their second (each
    /// tick and at shutdown: a flood that stopped has its last second written too).
    pub fn write_unknown_summary(&self) {
        if crate::sync::lock(&self.unknown).summarised == 0 {
            return;
        }
        // The file's lock first, as `write_requests` takes them.
        self.with_file(|f| crate::sync::lock(&self.unknown).write_summary(f));
    }

    /// Append lines; errors are logged, never raised (the log must not stop the monitor).
    pub fn write(&self, lines: &[Value]) {
        if lines.is_empty() {
            return;
        }
        let mut out = Vec::new();
        for line in lines {
            let _ = serde_json::to_writer(&mut out, line);
            out.push(b'\n');
        }
        self.write_bytes(&out);
    }

    fn write_bytes(&self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.with_file(|f| f.write_all(bytes));
    }

    /// Run `write` on the open file (opened, or reopened after SIGHUP, first); errors are
    /// logged, never raised.
    fn with_file(&self, write: impl FnOnce(&mut File) -> std::io::Result<()>) {
        let mut guard = crate::sync::lock(&self.file);
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
            if let Err(e) = write(f) {
                tracing::error!(path = %self.path.display(), error = %e, "cannot write the heartbeat log");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: the heartbeat log was created 0644 (readable by every local user).
    #[cfg(unix)]
    #[test]
    fn the_file_is_created_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hb.log");
        drop(open(&path).unwrap());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
    use crate::monitor::events::Verdict;

    /// Drains every 50 ms must not multiply the budget of unknown-token lines: over many
    /// drains of one second, 10 are written one by one and the rest in one summary,
    /// written when a later second starts or the tick asks for it.
    #[test]
    fn unknown_tokens_have_a_budget_per_second_not_per_drain() {
        let dir = tempfile::tempdir().unwrap();
        let log = HeartbeatLog::new(dir.path().join("hb.log"));
        let junk = |at: crate::time::Timestamp| RequestEvent {
            at,
            attribution: Attribution::Unknown,
            method: actix_web::http::Method::GET,
            path: "/scim/v2/Users".into(),
            status: 401,
            ip: Some([192, 0, 2, 9].into()),
            user_agent: None,
            latency_ms: 0.1,
            refusal: None,
        };
        let second: Vec<RequestEvent> = (0..5).map(|_| junk(1_800_000_000)).collect();
        for _ in 0..20 {
            log.write_requests(&second);
        }
        let read = || -> Vec<serde_json::Value> {
            std::fs::read_to_string(log.path())
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        };
        assert_eq!(read().len(), UNKNOWN_LINES_PER_SECOND, "the summary waits");
        // The next second writes the summary of this one.
        log.write_requests(&[junk(1_800_000_001)]);
        let lines = read();
        assert_eq!(lines.len(), UNKNOWN_LINES_PER_SECOND + 2);
        let summary = &lines[UNKNOWN_LINES_PER_SECOND];
        assert_eq!(summary["event"], "unknown_tokens");
        assert_eq!(summary["count"], 100 - UNKNOWN_LINES_PER_SECOND);
        assert_eq!(summary["some_ips"], serde_json::json!(["192.0.2.9"]));
        assert_eq!(summary["ts"], format_rfc3339(1_800_000_000));
        // A flood that stops: the tick writes its last summary.
        for _ in 0..3 {
            log.write_requests(
                &second
                    .iter()
                    .map(|_| junk(1_800_000_001))
                    .collect::<Vec<_>>(),
            );
        }
        log.write_unknown_summary();
        log.write_unknown_summary();
        let lines = read();
        let last = lines.last().unwrap();
        assert_eq!(
            (last["event"].as_str(), last["count"].as_u64()),
            (Some("unknown_tokens"), Some(6))
        );
        assert_eq!(lines.len(), UNKNOWN_LINES_PER_SECOND * 2 + 2);
    }

    #[test]
    fn a_drain_larger_than_the_buffer_is_written_whole_line_by_line() {
        let dir = tempfile::tempdir().unwrap();
        let log = HeartbeatLog::new(dir.path().join("hb.log"));
        // 1,000 lines of ≈ 300 bytes: several 64 KiB flushes, lines across their edges.
        let events: Vec<RequestEvent> = (0..1000)
            .map(|i| RequestEvent {
                at: 1_800_000_000 + i / 100,
                attribution: Attribution::Token {
                    token_id: Some(format!("tok_{i:020}")),
                    client_id: "cl_0011223344556677".into(),
                    verdict: Verdict::Accepted,
                },
                method: actix_web::http::Method::GET,
                path: format!("/scim/v2/Users/{i:036}"),
                status: 200,
                ip: Some([192, 0, 2, 7].into()),
                user_agent: Some("Okta SCIM Client 1.0.0".into()),
                latency_ms: 0.25,
                refusal: None,
            })
            .collect();
        log.write_requests(&events);
        log.write_requests(&events[..1]);
        let text = std::fs::read_to_string(log.path()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1001);
        assert!(text.len() > 4 * 64 * 1024, "{} bytes", text.len());
        for (i, line) in lines.iter().enumerate() {
            let v: Value = serde_json::from_str(line).unwrap();
            let n = if i == 1000 { 0 } else { i };
            assert_eq!(v["token_id"], format!("tok_{n:020}"));
            assert_eq!(v["path"], format!("/scim/v2/Users/{n:036}"));
            assert_eq!(v["ip"], "192.0.2.7");
        }
    }

    #[test]
    fn the_source_address_is_written_as_its_display_text() {
        let dir = tempfile::tempdir().unwrap();
        let log = HeartbeatLog::new(dir.path().join("hb.log"));
        let ips: [Option<std::net::IpAddr>; 4] = [
            Some([10, 0, 255, 1].into()),
            Some("2001:db8::1".parse().unwrap()),
            Some("::ffff:192.0.2.255".parse().unwrap()),
            None,
        ];
        let events: Vec<RequestEvent> = ips
            .iter()
            .map(|ip| RequestEvent {
                at: 1_800_000_000,
                attribution: Attribution::Token {
                    token_id: Some("tok_1".into()),
                    client_id: "cl_1".into(),
                    verdict: Verdict::Accepted,
                },
                method: actix_web::http::Method::GET,
                path: "/scim/v2/Users".into(),
                status: 200,
                ip: *ip,
                user_agent: None,
                latency_ms: 0.25,
                refusal: None,
            })
            .collect();
        log.write_requests(&events);
        let text = std::fs::read_to_string(log.path()).unwrap();
        let got: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["ip"].clone())
            .collect();
        let want: Vec<Value> = ips
            .iter()
            .map(|ip| ip.map_or(Value::Null, |ip| Value::String(ip.to_string())))
            .collect();
        assert_eq!(got, want);
    }
}
