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

/// Requests with unknown tokens written one by one per drain; the rest are summarised.
pub const UNKNOWN_LINES_PER_DRAIN: usize = 10;

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

impl RequestLine<'_> {
    /// The line as `serde_json` writes it (the test below compares the two), written by
    /// hand: strings with nothing to escape are copied as they are and the integers go
    /// through `itoa`. The monitor writes a line per request, and serde_json's byte-by-byte
    /// escaping was the larger part of what monitoring costs a SCIM GET (bench/RESULTS.md).
    fn write_to(&self, out: &mut impl Write) -> std::io::Result<()> {
        fn string(out: &mut impl Write, s: Option<&str>) -> std::io::Result<()> {
            match s {
                None => out.write_all(b"null"),
                Some(s) if !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') => {
                    out.write_all(b"\"")?;
                    out.write_all(s.as_bytes())?;
                    out.write_all(b"\"")
                }
                Some(s) => serde_json::to_writer(&mut *out, s).map_err(std::io::Error::from),
            }
        }
        out.write_all(b"{\"ts\":")?;
        string(out, Some(self.ts))?;
        out.write_all(b",\"event\":")?;
        string(out, Some(self.event))?;
        out.write_all(b",\"client_id\":")?;
        string(out, self.client_id)?;
        out.write_all(b",\"token_id\":")?;
        string(out, self.token_id)?;
        out.write_all(b",\"verdict\":")?;
        string(out, Some(self.verdict))?;
        out.write_all(b",\"method\":")?;
        string(out, Some(self.method))?;
        out.write_all(b",\"path\":")?;
        string(out, Some(self.path))?;
        out.write_all(b",\"status\":")?;
        out.write_all(itoa::Buffer::new().format(self.status).as_bytes())?;
        out.write_all(b",\"ip\":")?;
        match self.ip {
            Some(ip) => {
                out.write_all(b"\"")?;
                crate::peer::write_ip(out, ip)?;
                out.write_all(b"\"")?;
            }
            None => out.write_all(b"null")?,
        }
        out.write_all(b",\"user_agent\":")?;
        string(out, self.user_agent)?;
        out.write_all(b",\"latency_ms\":")?;
        serde_json::to_writer(&mut *out, &self.latency_ms).map_err(std::io::Error::from)?;
        out.write_all(b"}")
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
            // first few of a drain are written one by one, the rest as one summary line,
            // so junk cannot grow the file faster than the drains run.
            let mut unknown = 0usize;
            let mut unknown_ips: std::collections::BTreeSet<String> = Default::default();
            let mut summarised = 0usize;
            let mut pace = crate::sync::Pace::default();
            for e in events {
                pace.step();
                if matches!(e.attribution, Attribution::Unknown) {
                    unknown += 1;
                    if unknown > UNKNOWN_LINES_PER_DRAIN {
                        summarised += 1;
                        if unknown_ips.len() < 5
                            && let Some(ip) = e.ip
                        {
                            unknown_ips.insert(ip.to_string());
                        }
                        continue;
                    }
                }
                if last.as_ref().is_none_or(|(at, _)| *at != e.at) {
                    last = Some((e.at, format_rfc3339(e.at)));
                }
                let ts = last.as_ref().map_or("", |(_, s)| s.as_str());
                request_line(e, ts).write_to(&mut out)?;
                out.write_all(b"\n")?;
            }
            if summarised > 0 {
                let at = events.last().map_or(0, |e| e.at);
                serde_json::to_writer(
                    &mut out,
                    &serde_json::json!({
                        "ts": format_rfc3339(at),
                        "event": "unknown_tokens",
                        "verdict": "unknown_token",
                        "count": summarised,
                        "some_ips": unknown_ips,
                    }),
                )?;
                out.write_all(b"\n")?;
            }
            out.flush()
        });
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

    /// The hand-written line is byte for byte what serde_json writes, awkward strings and
    /// missing fields included.
    #[test]
    fn hand_written_lines_are_serde_jsons() {
        let odd = [
            "/plain",
            "quote\"d",
            "back\\slash",
            "new\nline",
            "\u{1}\u{1f}",
            "ünï€",
            "\u{7f}",
        ];
        for (n, s) in odd.iter().enumerate() {
            let line = RequestLine {
                ts: "2026-12-05T09:00:00Z",
                event: "request",
                client_id: (n % 2 == 0).then_some(*s),
                token_id: (n % 3 == 0).then_some("tok_1"),
                verdict: "accepted",
                method: "PATCH",
                path: s,
                status: 404,
                ip: match n % 3 {
                    0 => None,
                    1 => Some([192, 0, 2, 7].into()),
                    _ => Some("2001:db8::7".parse().unwrap()),
                },
                user_agent: (n % 2 == 1).then_some(*s),
                latency_ms: [0.0, 0.123, 12.5, 1e-7, 123_456.789][n % 5],
            };
            let mut ours = Vec::new();
            line.write_to(&mut ours).unwrap();
            let theirs = serde_json::to_vec(&line).unwrap();
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                String::from_utf8(theirs).unwrap()
            );
        }
    }
}
