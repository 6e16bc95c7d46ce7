//! The access log: one line per request — method, path (never the query string, where a
//! careless client may put a secret), status, client id and token id where known, the
//! client's address and the duration — written as one `tracing` event (target `access`)
//! when the response is ready, by the middleware around every scope (`edge`). Probes
//! (`/healthz`, `/readyz`, `/metrics`) log at debug level, so a load balancer's health
//! checks do not drown the log.
//!
//! The event goes to the subscriber `main` installs, whose writer is non-blocking
//! (`tracing-appender`): the request path only formats the line and hands it to a
//! channel; a background thread writes in batches. When the writer falls behind, lines
//! are dropped instead of blocking requests, counted ([`dropped_lines`]) and reported in
//! the log and `/metrics`; at a clean shutdown the channel is drained.
//!
//! This replaced tracing-actix-web's request span, which cost a span, a request UUID and an
//! unbuffered write per request: more than the OAuth work it logged (issue 15).
//!
//! When `main` hands over the writer ([`set_sink`]), the line is built here, in the same
//! text or JSON shape the subscriber writes, and goes straight to the non-blocking writer:
//! `tracing`'s formatting (a visitor per field, a `Debug` per value, a string per event)
//! cost more than the request it described. Whether a line is written is still the
//! subscriber's filter (`RUST_LOG`): `tracing::enabled!` decides. Without a sink (tests,
//! another embedder) the line is a `tracing` event as before.

use std::io::Write as _;
use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::Duration;

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

/// The writer access lines go to, and their shape.
struct Sink {
    writer: tracing_appender::non_blocking::NonBlocking,
    json: bool,
}

static SINK: OnceLock<Sink> = OnceLock::new();

/// Write access lines to `writer` ourselves, as JSON or text (called once by `main`, with
/// the subscriber's own writer and format).
pub fn set_sink(writer: tracing_appender::non_blocking::NonBlocking, json: bool) {
    let _ = SINK.set(Sink { writer, json });
}

/// One access line's fields.
struct Line<'a> {
    method: &'a str,
    path: &'a str,
    status: u16,
    client_id: &'a str,
    token_id: &'a str,
    ip: Option<IpAddr>,
    ms: f64,
}

impl Line<'_> {
    /// The line as the subscriber formats an event: text
    /// (`<time>  INFO access: request method="GET" path="/x" … ms=0.42`) or JSON
    /// (`{"timestamp":…,"level":…,"fields":{"message":"request",…},"target":"access"}`),
    /// stamped `secs`.`micros` after the epoch (UTC).
    fn render(&self, level: tracing::Level, json: bool, secs: i64, micros: u32) -> Vec<u8> {
        let mut out = Vec::with_capacity(192);
        timestamp(&mut out, secs, micros);
        if json {
            let stamp = String::from_utf8_lossy(&out).into_owned();
            let ip = self.ip.map_or_else(|| "-".to_string(), |ip| ip.to_string());
            let mut out = serde_json::to_vec(&serde_json::json!({
                "timestamp": stamp,
                "level": level.as_str(),
                "fields": {
                    "message": "request",
                    "method": self.method,
                    "path": self.path,
                    "status": self.status,
                    "client_id": self.client_id,
                    "token_id": self.token_id,
                    "ip": ip,
                    "ms": hundredths(self.ms),
                },
                "target": "access",
            }))
            .unwrap_or_default();
            out.push(b'\n');
            return out;
        }
        // Written by hand: `format!` with a `Debug` per field and chrono's formatter cost
        // about a microsecond a line, a twelfth of a SCIM GET (bench/RESULTS.md). Strings
        // are quoted and escaped as `Debug` does, as the subscriber writes them: a path is
        // the client's text and must not forge a line.
        let mut itoa = itoa::Buffer::new();
        out.push(b' ');
        let level = level.as_str();
        out.extend(std::iter::repeat_n(
            b' ',
            5usize.saturating_sub(level.len()),
        ));
        out.extend_from_slice(level.as_bytes());
        out.extend_from_slice(b" access: request method=");
        quoted(&mut out, self.method);
        out.extend_from_slice(b" path=");
        quoted(&mut out, self.path);
        out.extend_from_slice(b" status=");
        out.extend_from_slice(itoa.format(self.status).as_bytes());
        out.extend_from_slice(b" client_id=");
        quoted(&mut out, self.client_id);
        out.extend_from_slice(b" token_id=");
        quoted(&mut out, self.token_id);
        out.extend_from_slice(b" ip=\"");
        match self.ip {
            Some(ip) => {
                let _ = crate::peer::write_ip(&mut out, ip);
            }
            None => out.push(b'-'),
        }
        out.extend_from_slice(b"\" ms=");
        write_hundredths(&mut out, self.ms);
        out.push(b'\n');
        out
    }
}

/// `ms` with two decimals, as `{:.2}` writes it except on an exact tie (`{:.2}` rounds
/// the binary value, this rounds half away from zero; a log line cannot tell).
fn hundredths(ms: f64) -> String {
    let mut out = Vec::with_capacity(8);
    write_hundredths(&mut out, ms);
    String::from_utf8(out).unwrap_or_default()
}

/// [`hundredths`] appended to `out`, through `itoa` (`format!` cost more than the rest of
/// the line's numbers).
fn write_hundredths(out: &mut Vec<u8>, ms: f64) {
    let h = (ms.max(0.0) * 100.0).round();
    // Beyond 2^53 hundredths (2,850 years) precision is gone anyway.
    let h = if h < 9.0e15 {
        h as u64
    } else {
        9_000_000_000_000_000
    };
    let mut itoa = itoa::Buffer::new();
    out.extend_from_slice(itoa.format(h / 100).as_bytes());
    out.push(b'.');
    let cents = (h % 100) as u8;
    out.extend_from_slice(&[b'0' + cents / 10, b'0' + cents % 10]);
}

/// `s` in double quotes, escaped as `str`'s `Debug` escapes it. Printable ASCII without
/// `"` or `\` (every path, id and method of a well-behaved client) is copied as it is.
fn quoted(out: &mut Vec<u8>, s: &str) {
    // Every byte looked at, no early exit: the compiler makes it a vector loop.
    let plain = !s.bytes().fold(false, |any, b| {
        any | !(0x20..0x7f).contains(&b) | (b == b'"') | (b == b'\\')
    });
    if plain {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        let _ = write!(out, "{s:?}");
    }
}

thread_local! {
    /// The second last formatted on this thread and its `YYYY-MM-DDTHH:MM:SS` text.
    static SECOND: std::cell::RefCell<(i64, [u8; 19])> = const { std::cell::RefCell::new((i64::MIN, [0; 19])) };
}

/// `secs`.`micros` as RFC 3339 in UTC with microseconds (`2026-12-04T21:02:58.123456Z`),
/// the date and time formatted once a second per thread.
fn timestamp(out: &mut Vec<u8>, secs: i64, micros: u32) {
    SECOND.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.0 != secs {
            let text = chrono::DateTime::from_timestamp(secs, 0)
                .unwrap_or_default()
                .format("%Y-%m-%dT%H:%M:%S")
                .to_string();
            let mut bytes = [b'0'; 19];
            let n = text.len().min(19);
            bytes[..n].copy_from_slice(&text.as_bytes()[..n]);
            *cached = (secs, bytes);
        }
        out.extend_from_slice(&cached.1);
    });
    out.push(b'.');
    let mut buf = itoa::Buffer::new();
    let micros = buf.format(micros.min(999_999));
    out.extend(std::iter::repeat_n(b'0', 6 - micros.len()));
    out.extend_from_slice(micros.as_bytes());
    out.push(b'Z');
}

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

/// Whether the request at `path` gets a line: the subscriber's filter (`RUST_LOG`) decides,
/// probes at debug level, the rest at info.
pub fn wanted(path: &str) -> bool {
    if is_probe(path) {
        tracing::enabled!(target: "access", tracing::Level::DEBUG)
    } else {
        tracing::enabled!(target: "access", tracing::Level::INFO)
    }
}

/// Write the line of `request`, answered with `status` after `latency`, from `ip`. The
/// client and token are the handler's [`AccessFields`], else `attribution` (the guard's
/// verdict, when the caller took it out of the extensions), else one left in the
/// extensions. Called by `edge` for every request [`wanted`] says is logged.
pub fn write(
    request: &HttpRequest,
    status: u16,
    latency: Duration,
    ip: Option<IpAddr>,
    attribution: Option<&Attribution>,
) {
    let ms = latency.as_secs_f64() * 1000.0;
    let ext = request.extensions();
    let attribution = attribution.or_else(|| ext.get::<Attribution>());
    let (client_id, token_id) = match (ext.get::<AccessFields>(), attribution) {
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
    let probe = is_probe(path);
    let client_id = client_id.unwrap_or("-");
    let token_id = token_id.unwrap_or("-");
    if let Some(sink) = SINK.get() {
        let line = Line {
            method,
            path,
            status,
            client_id,
            token_id,
            ip,
            ms,
        };
        let level = if probe {
            tracing::Level::DEBUG
        } else {
            tracing::Level::INFO
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let secs = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        let bytes = line.render(level, sink.json, secs, now.subsec_micros());
        // Lossy: a full queue drops the line and counts it (`dropped_lines`).
        let _ = std::io::Write::write_all(&mut sink.writer.clone(), &bytes);
        return;
    }
    let ip = ip.map_or_else(|| "-".to_string(), |ip| ip.to_string());
    if probe {
        tracing::debug!(target: "access", method, path, status, client_id, token_id, ip = ip.as_str(), ms = format_args!("{ms:.2}"), "request");
    } else {
        tracing::info!(target: "access", method, path, status, client_id, token_id, ip = ip.as_str(), ms = format_args!("{ms:.2}"), "request");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line() -> Line<'static> {
        Line {
            method: "POST",
            path: "/oauth2/token\n2026-01-01T00:00:00Z  INFO forged",
            status: 200,
            client_id: "cl_1",
            token_id: "tok_2",
            ip: Some(IpAddr::from([127, 0, 0, 1])),
            ms: 0.4249,
        }
    }

    const AT: (i64, u32) = (1_796_418_178, 123_456);

    /// The shape the subscriber writes for the same event, and a path cannot forge a line.
    #[test]
    fn text_lines_look_like_the_subscribers_and_escape_the_path() {
        let text =
            String::from_utf8(line().render(tracing::Level::INFO, false, AT.0, AT.1)).unwrap();
        assert_eq!(
            text,
            "2026-12-04T21:02:58.123456Z  INFO access: request method=\"POST\" \
             path=\"/oauth2/token\\n2026-01-01T00:00:00Z  INFO forged\" status=200 \
             client_id=\"cl_1\" token_id=\"tok_2\" ip=\"127.0.0.1\" ms=0.42\n"
        );
        assert_eq!(text.lines().count(), 1);
    }

    #[test]
    fn json_lines_are_one_object_with_the_fields() {
        let bytes = line().render(tracing::Level::DEBUG, true, AT.0, AT.1);
        assert_eq!(bytes.iter().filter(|b| **b == b'\n').count(), 1);
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["level"], "DEBUG");
        assert_eq!(v["target"], "access");
        assert_eq!(v["fields"]["message"], "request");
        assert_eq!(v["fields"]["status"], 200);
        assert_eq!(v["fields"]["token_id"], "tok_2");
        assert_eq!(v["timestamp"], "2026-12-04T21:02:58.123456Z");
    }

    /// The hand-written pieces agree with what `fmt` and chrono write, on awkward input.
    #[test]
    fn hand_written_fields_match_fmt() {
        for s in [
            "",
            "/x",
            "a\"b",
            "back\\slash",
            "tab\there",
            "ünï",
            "\u{7f}",
            "\u{1b}[31m",
            "é\n",
        ] {
            let mut out = Vec::new();
            quoted(&mut out, s);
            assert_eq!(String::from_utf8(out).unwrap(), format!("{s:?}"));
        }
        for (secs, micros) in [
            (0, 0),
            (1_796_418_178, 5),
            (1_796_418_179, 999_999),
            (951_782_400, 120),
        ] {
            let mut out = Vec::new();
            timestamp(&mut out, secs, micros);
            let want = chrono::DateTime::from_timestamp(secs, micros * 1000)
                .unwrap()
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
            assert_eq!(String::from_utf8(out).unwrap(), want);
        }
        for ms in [0.0, 0.004, 0.0051, 0.42, 1.0, 9.999, 12.3456, 1234.5678] {
            assert_eq!(hundredths(ms), format!("{ms:.2}"), "{ms}");
        }
        let v6 = Line {
            ip: Some("2001:db8::1".parse().unwrap()),
            ..line()
        };
        let text = String::from_utf8(v6.render(tracing::Level::WARN, false, AT.0, AT.1)).unwrap();
        assert!(
            text.contains(" WARN access: request ") && text.contains("ip=\"2001:db8::1\""),
            "{text}"
        );
        let none = Line { ip: None, ..line() };
        let text = String::from_utf8(none.render(tracing::Level::INFO, false, AT.0, AT.1)).unwrap();
        assert!(text.contains("ip=\"-\""), "{text}");
    }
}
