//! Bench tool: an open-loop HTTP/1.1 load at a fixed rate, for latency at a given load
//! (issue 15: p99 at half of each endpoint's maximum rate). wrk is closed-loop: a slow
//! answer delays the next request, so its percentiles leave out the requests that would
//! have queued (coordinated omission). Here each of C keep-alive connections has its own
//! schedule (request i of connection c is due at start + (i·C + c)/RATE), and a request's
//! latency runs from when it was due, not from when it could be sent.
//!
//! Usage: rate URL RATE SECONDS [options]
//!   -c N            connections (default 32), one thread each
//!   -X METHOD       default GET (POST when -d is given)
//!   -H 'K: V'       a header (repeatable)
//!   -d BODY         request body
//!   --expect TEXT   every answer must be a 2xx holding TEXT
//!   --users N       replace `{user}` in the URL by a random user number below N (%06d)
//!   --trace FILE    also write each request's due time (µs after the start) and its
//!                   latency (µs), one `due latency` line per request in order of due time,
//!                   to see where a tail comes from (a stall delays every request due in it)
//!   `{seq}` in the body becomes a string unique to the request (new SCIM users)
//! Prints one line: `rate R req/s p50 X ms p99 Y ms p999 Z ms max M ms errors E`; exits 1
//! if any request failed, was not 2xx or lacked the expected text (no percentiles then).
//! Written by hand: the HTTP/1.1 client here is a few lines over std's TcpStream, and no
//! packaged open-loop generator (wrk2, oha) is in this machine's Debian.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

struct Opts {
    host: String,
    path: String,
    rate: f64,
    secs: f64,
    conns: usize,
    method: String,
    headers: Vec<String>,
    body: Option<String>,
    expect: Option<String>,
    users: Option<u64>,
    trace: Option<String>,
}

fn usage() -> ! {
    eprintln!(
        "usage: rate URL RATE SECONDS [-c N] [-X METHOD] [-H 'K: V']... [-d BODY] [--expect TEXT] [--users N] [--trace FILE]"
    );
    std::process::exit(2);
}

fn parse() -> Opts {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        usage();
    }
    let url = args[0].strip_prefix("http://").unwrap_or_else(|| usage());
    let (host, path) = match url.find('/') {
        Some(i) => (url[..i].to_string(), url[i..].to_string()),
        None => (url.to_string(), "/".to_string()),
    };
    let mut o = Opts {
        host,
        path,
        rate: args[1].parse().unwrap_or_else(|_| usage()),
        secs: args[2].parse().unwrap_or_else(|_| usage()),
        conns: 32,
        method: String::new(),
        headers: Vec::new(),
        body: None,
        expect: None,
        users: None,
        trace: None,
    };
    let mut it = args[3..].iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().unwrap_or_else(|| usage());
        match a.as_str() {
            "-c" => o.conns = val().parse().unwrap_or_else(|_| usage()),
            "-X" => o.method = val(),
            "-H" => o.headers.push(val()),
            "-d" => o.body = Some(val()),
            "--expect" => o.expect = Some(val()),
            "--users" => o.users = Some(val().parse().unwrap_or_else(|_| usage())),
            "--trace" => o.trace = Some(val()),
            _ => usage(),
        }
    }
    if o.method.is_empty() {
        o.method = if o.body.is_some() { "POST" } else { "GET" }.into();
    }
    o
}

/// A small xorshift generator: the user numbers need no quality, only spread.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Read one response; its status and whether its body holds `expect`.
fn read_response(r: &mut BufReader<TcpStream>, expect: Option<&str>) -> std::io::Result<bool> {
    let mut line = String::new();
    r.read_line(&mut line)?;
    let ok_status = line.split(' ').nth(1).is_some_and(|s| s.starts_with('2'));
    let mut len = 0usize;
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body)?;
    let has = expect.is_none_or(|e| body.windows(e.len().max(1)).any(|w| w == e.as_bytes()));
    Ok(ok_status && has)
}

fn main() {
    let o = parse();
    let interval = Duration::from_secs_f64(o.conns as f64 / o.rate);
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let start = Instant::now() + Duration::from_millis(100);
    let end = start + Duration::from_secs_f64(o.secs);
    let threads: Vec<_> = (0..o.conns)
        .map(|c| {
            let host = o.host.clone();
            let (method, path, headers, body, expect, users) = (
                o.method.clone(),
                o.path.clone(),
                o.headers.clone(),
                o.body.clone(),
                o.expect.clone(),
                o.users,
            );
            let offset = Duration::from_secs_f64(c as f64 / o.rate);
            std::thread::spawn(move || -> (Vec<(u32, u32)>, u64) {
                // (due, in µs after the start; latency in µs)
                let mut lat = Vec::new();
                let mut errors = 0u64;
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (c as u64 + 1));
                let Ok(stream) = TcpStream::connect(&host) else {
                    return (lat, 1);
                };
                stream.set_nodelay(true).ok();
                let mut w = stream.try_clone().expect("clone");
                let mut r = BufReader::new(stream);
                let mut due = start + offset;
                let mut sent = 0u64;
                while due < end {
                    let now = Instant::now();
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                    let p = match users {
                        Some(n) => path.replace("{user}", &format!("{:06}", rng.below(n))),
                        None => path.clone(),
                    };
                    let mut req = format!("{method} {p} HTTP/1.1\r\nHost: {host}\r\n");
                    for h in &headers {
                        req.push_str(h);
                        req.push_str("\r\n");
                    }
                    if let Some(b) = &body {
                        let b = b.replace("{seq}", &format!("{run}-{c}-{sent}"));
                        req.push_str(&format!("Content-Length: {}\r\n\r\n{b}", b.len()));
                    } else {
                        req.push_str("\r\n");
                    }
                    let ok = w.write_all(req.as_bytes()).is_ok()
                        && read_response(&mut r, expect.as_deref()).unwrap_or(false);
                    if !ok {
                        errors += 1;
                        break;
                    }
                    let micros = |d: Duration| d.as_micros().min(u32::MAX as u128) as u32;
                    lat.push((micros(due - start), micros(due.elapsed())));
                    sent += 1;
                    due += interval;
                }
                (lat, errors)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut errors = 0;
    for t in threads {
        let (l, e) = t.join().expect("thread");
        all.extend(l);
        errors += e;
    }
    if let Some(path) = &o.trace {
        all.sort_unstable();
        let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("trace file"));
        for (due, l) in &all {
            writeln!(out, "{due} {l}").expect("write the trace");
        }
    }
    let mut all: Vec<u32> = all.into_iter().map(|(_, l)| l).collect();
    all.sort_unstable();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .map_or(0.0, |&us| us as f64 / 1000.0)
    };
    let achieved = all.len() as f64 / o.secs;
    if errors > 0 || all.is_empty() {
        println!("rate {achieved:.0} req/s errors {errors}: FAILED (no percentiles reported)");
        std::process::exit(1);
    }
    println!(
        "rate {achieved:.0} req/s p50 {:.2} ms p99 {:.2} ms p999 {:.2} ms max {:.2} ms errors 0",
        pct(0.50),
        pct(0.99),
        pct(0.999),
        pct(1.0)
    );
}
