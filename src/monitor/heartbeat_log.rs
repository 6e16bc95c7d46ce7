//! `scim_heartbeat.log`: one JSON line per attributed SCIM request and per state change,
//! in its own file. Reopened on SIGHUP so logrotate can move it away. Lines are written in
//! batches by the monitor thread, never on the request path. Created `0600`, as the store
//! is: it names clients, token ids and source addresses.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::events::{Attribution, RequestEvent};
use crate::json_text::push_str as json_str;
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

fn json_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => json_str(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

/// The client id, token id and verdict a request's line names.
fn attributed(e: &RequestEvent) -> (Option<&str>, Option<&str>, &'static str) {
    match &e.attribution {
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
    }
}

/// Append the JSON line of a request, `ts` its time as text, newline included.
///
/// Written by hand, one per SCIM request, in the thread that shares the server's core:
/// a derived `Serialize` and the address's `Display` cost several times as many
/// instructions (bench/RESULTS.md, "a SCIM GET's own instructions, counted"). The test
/// `request_lines_are_serde_json_s` holds it to the derived serialisation, byte for byte.
fn request_line(out: &mut Vec<u8>, e: &RequestEvent, ts: &str) {
    let (client_id, token_id, verdict) = attributed(e);
    let mut itoa = itoa::Buffer::new();
    out.extend_from_slice(b"{\"ts\":");
    json_str(out, ts);
    out.extend_from_slice(b",\"event\":\"request\",\"client_id\":");
    json_opt_str(out, client_id);
    out.extend_from_slice(b",\"token_id\":");
    json_opt_str(out, token_id);
    out.extend_from_slice(b",\"verdict\":");
    json_str(out, verdict);
    out.extend_from_slice(b",\"method\":");
    json_str(out, e.method.as_str());
    out.extend_from_slice(b",\"path\":");
    json_str(out, &e.path);
    out.extend_from_slice(b",\"status\":");
    out.extend_from_slice(itoa.format(e.status).as_bytes());
    out.extend_from_slice(b",\"ip\":");
    match e.ip {
        Some(ip) => {
            out.push(b'"');
            let _ = crate::peer::write_ip(&mut *out, ip);
            out.push(b'"');
        }
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"user_agent\":");
    json_opt_str(out, e.user_agent.as_deref());
    out.extend_from_slice(b",\"latency_ms\":");
    let _ = serde_json::to_writer(&mut *out, &((e.latency_ms * 1000.0).round() / 1000.0));
    out.extend_from_slice(b"}\n");
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
            let mut line = Vec::with_capacity(512);
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
                line.clear();
                request_line(&mut line, e, ts);
                out.write_all(&line)?;
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

    /// The hand-written line is byte for byte what serde_json writes for the same fields
    /// (the line's shape before it was written by hand), escapes and absent fields included.
    #[test]
    fn request_lines_are_serde_json_s() {
        #[derive(serde::Serialize)]
        struct Reference<'a> {
            ts: &'a str,
            event: &'static str,
            client_id: Option<&'a str>,
            token_id: Option<&'a str>,
            verdict: &'static str,
            method: &'a str,
            path: &'a str,
            status: u16,
            ip: Option<String>,
            user_agent: Option<&'a str>,
            latency_ms: f64,
        }
        let event =
            |attribution, path: &str, ip: Option<std::net::IpAddr>, ua: Option<&str>, ms| {
                RequestEvent {
                    at: 1_800_000_000,
                    attribution,
                    method: actix_web::http::Method::PATCH,
                    path: path.into(),
                    status: 409,
                    ip,
                    user_agent: ua.map(str::to_string),
                    latency_ms: ms,
                    refusal: None,
                }
            };
        let known = |token_id: Option<&str>| Attribution::Token {
            token_id: token_id.map(str::to_string),
            client_id: "cl_\"quoted\"".into(),
            verdict: Verdict::Forbidden,
        };
        let events = [
            event(
                known(Some("tok_1")),
                "/scim/v2/Users/1",
                Some([192, 0, 2, 1].into()),
                Some("Okta SCIM Client 1.0.0"),
                0.25,
            ),
            event(
                known(None),
                "/scim/v2/Users/a\"b\\c\u{1}\n\u{7f}é",
                Some("2001:db8::1".parse().unwrap()),
                Some("ua\t\u{0}ü"),
                12.345_678,
            ),
            event(
                Attribution::Unknown,
                "/scim/v2/Groups",
                Some("::ffff:192.0.2.255".parse().unwrap()),
                None,
                1e-9,
            ),
            event(Attribution::Unknown, "", None, Some(""), 123_456.0),
            // One character to escape per string: each one alone takes the slow path.
            event(Attribution::Unknown, "/a\\b", None, Some("q\"q"), 0.0),
            event(known(Some("t\u{1f}")), "/é\u{7f}", None, Some("\r"), 0.5),
        ];
        for e in &events {
            let ts = format_rfc3339(e.at);
            let mut got = Vec::new();
            request_line(&mut got, e, &ts);
            let (client_id, token_id, verdict) = attributed(e);
            let mut want = serde_json::to_vec(&Reference {
                ts: &ts,
                event: "request",
                client_id,
                token_id,
                verdict,
                method: e.method.as_str(),
                path: &e.path,
                status: e.status,
                ip: e.ip.map(|ip| ip.to_string()),
                user_agent: e.user_agent.as_deref(),
                latency_ms: (e.latency_ms * 1000.0).round() / 1000.0,
            })
            .unwrap();
            want.push(b'\n');
            assert_eq!(
                String::from_utf8(got).unwrap(),
                String::from_utf8(want).unwrap()
            );
        }
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
