//! `scimgate serve`: the binary starts on the embedded SQLite default, creates the store,
//! answers /healthz and /readyz, serves HTTPS with --tls-cert/--tls-key, logs request ids
//! and stops gracefully on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{TestServer, TestStore, http};

/// A port free on 127.0.0.1 a moment ago.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// The status of the first answer to a GET of `url`, asked every 100 ms for up to 20 s
/// while a spawned server starts; `None` if it never answered.
fn first_answer(url: &str) -> Option<u16> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(r) = http().get(url).send() {
            return Some(r.status().as_u16());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// Stop a spawned server and read what it wrote to its (piped) stderr.
fn kill_and_read_log(child: &mut std::process::Child) -> Vec<String> {
    let _ = child.kill();
    let stderr = child.stderr.take().unwrap();
    let _ = child.wait();
    BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .collect()
}

#[test]
fn in_process_server_answers_health_and_readiness() {
    let s = TestStore::empty_sqlite();
    let server = TestServer::start(&s.db, scimgate::time::Clock::system());
    let r = http().get(server.url("/healthz")).send().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<serde_json::Value>().unwrap()["status"], "ok");
    let r = http().get(server.url("/readyz")).send().unwrap();
    assert_eq!(r.status(), 200);
    assert!(s.db.exists());
}

/// A path the server serves, asked with a method it does not take, is a 405 naming the
/// methods it does take, never a 404 (found by the API suite, tests/api/run.sh: the probes
/// and the pages were bare routes, which answered 404).
#[test]
fn a_wrong_method_on_any_path_is_a_405_with_allow() {
    let s = TestStore::empty_sqlite();
    let server = TestServer::start(&s.db, scimgate::time::Clock::system());
    for (path, allowed) in [
        ("/healthz", "GET"),
        ("/readyz", "GET"),
        ("/metrics", "GET"),
        ("/ui", "GET"),
        ("/ui/login", "GET, POST"),
        ("/ui/logout", "GET"),
        ("/ui/timeline", "GET"),
        ("/oauth2/authorize", "GET, POST"),
        ("/oauth2/token", "POST"),
        ("/.well-known/oauth-authorization-server", "GET"),
    ] {
        for method in ["DELETE", "TRACE", "PATCH"] {
            let r = http()
                .request(method.parse().unwrap(), server.url(path))
                .send()
                .unwrap();
            assert_eq!(r.status(), 405, "{method} {path}");
            let allow = r.headers()["allow"].to_str().unwrap();
            let mut got: Vec<&str> = allow.split(',').map(str::trim).collect();
            got.sort_unstable();
            assert_eq!(got.join(", "), allowed, "{method} {path}");
        }
    }
}

/// Regression: every connection is a file, and at the soft limit of open files the server
/// accepts no new connection. With a limit of 200 (systemd's default is 1,024), 400 idle
/// connections from anyone made /healthz time out, an IdP's token request too. The server
/// now raises its soft limit to the hard one at start, and says so.
#[test]
fn idle_connections_up_to_the_hard_limit_keep_nobody_out() {
    let (_, hard) = rlimit::Resource::NOFILE.get().unwrap();
    if hard < 2048 {
        eprintln!("skipped: the hard limit of open files here is {hard}, too low to show this");
        return;
    }
    let s = TestStore::empty();
    let port = free_port();
    // The soft limit as many machines set it for services, far below the hard one.
    let mut child = Command::new("sh")
        .args([
            "-c",
            "ulimit -S -n 200 && exec \"$0\" serve --listen \"$1\"",
            env!("CARGO_BIN_EXE_scimgate"),
            &format!("127.0.0.1:{port}"),
        ])
        .current_dir(s.dir.path())
        .env_remove("SCIMGATE_DB")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/healthz");
    assert!(first_answer(&url).is_some(), "the server did not start");
    let idle: Vec<_> = (0..400)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    let answer = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap()
        .get(&url)
        .send()
        .map(|r| r.status().as_u16());
    drop(idle);
    let log = kill_and_read_log(&mut child);
    assert_eq!(
        answer.ok(),
        Some(200),
        "behind 400 idle connections: {log:?}"
    );
    assert!(
        log.iter()
            .any(|l| l.contains("open files limit raised") && l.contains("from=200")),
        "{log:?}"
    );
}

#[test]
fn serve_binary_creates_the_store_and_listens() {
    let s = TestStore::empty();
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_scimgate"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .current_dir(s.dir.path())
        .env_remove("SCIMGATE_DB")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let ok = first_answer(&format!("http://127.0.0.1:{port}/healthz")) == Some(200);
    let log = kill_and_read_log(&mut child);
    assert!(ok, "server did not answer: {log:?}");
    assert!(
        s.dir.path().join("scimgate.db").exists(),
        "default store ./scimgate.db created"
    );
}

#[test]
fn serve_rejects_bad_settings_before_binding() {
    let out = Command::new(env!("CARGO_BIN_EXE_scimgate"))
        .args(["serve", "--listen", "not-an-address"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("setting `listen`"), "{err}");
}

/// The binary layers its sources: a flag beats `SCIMGATE_*`, which beats the TOML file
/// (given with `--config` or `SCIMGATE_CONFIG`); a key the file does not know stops the
/// start, naming it.
#[test]
fn serve_takes_flag_over_variable_over_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("scimgate.toml");
    std::fs::write(&file, "listen = \"file-listen\"\n").unwrap();
    let refused = |args: &[&str], env: Option<&str>| -> String {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_scimgate"));
        cmd.arg("serve")
            .args(args)
            .current_dir(dir.path())
            .env("SCIMGATE_CONFIG", &file)
            .env_remove("SCIMGATE_DB")
            .env_remove("SCIMGATE_LISTEN");
        if let Some(listen) = env {
            cmd.env("SCIMGATE_LISTEN", listen);
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(2));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = refused(&["--listen", "flag-listen"], Some("env-listen"));
    assert!(err.contains("setting `listen`: `flag-listen`"), "{err}");
    let err = refused(&[], Some("env-listen"));
    assert!(err.contains("setting `listen`: `env-listen`"), "{err}");
    let err = refused(&[], None);
    assert!(err.contains("setting `listen`: `file-listen`"), "{err}");
    let err = refused(&["--config", "/nonexistent/scimgate.toml"], None);
    assert!(
        err.contains("/nonexistent/scimgate.toml"),
        "--config beats SCIMGATE_CONFIG: {err}"
    );

    std::fs::write(&file, "listen_port = 8080\n").unwrap();
    let err = refused(&[], None);
    assert!(err.contains("unknown field `listen_port`"), "{err}");
    let err = refused(&[], Some("nope"));
    assert!(
        err.contains("listen_port"),
        "the file is read before the variables: {err}"
    );
    assert!(
        !dir.path().join("scimgate.db").exists(),
        "refused before the store"
    );
}

/// Start `scimgate serve ARGS` in `dir` on a free port; wait until `url_of(port)` answers.
fn spawn_serve(
    dir: &std::path::Path,
    args: &[&str],
    probe: impl Fn(u16) -> bool,
) -> (std::process::Child, u16) {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_scimgate"))
        .arg("serve")
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(args)
        .current_dir(dir)
        .env_remove("SCIMGATE_DB")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline && !probe(port) {
        std::thread::sleep(Duration::from_millis(100));
    }
    (child, port)
}

fn wait_with_timeout(
    child: &mut std::process::Child,
    limit: Duration,
) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[test]
fn sigterm_stops_the_server_gracefully() {
    let s = TestStore::init_sqlite();
    let client = crate::oauth_support::cc_client(&s, &["user-directory.read.all"], &[]);
    let (mut child, port) = spawn_serve(s.dir.path(), &[], |port| {
        http()
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .is_ok_and(|r| r.status() == 200)
    });
    let r = http()
        .get(format!("http://127.0.0.1:{port}/readyz"))
        .send()
        .expect("server up");
    assert_eq!(r.status(), 200);
    // A misbehaving client puts a secret in the query string: it must not reach the log.
    let r = http()
        .post(format!(
            "http://127.0.0.1:{port}/oauth2/token?client_secret=sgcs_leakedsecret"
        ))
        .send()
        .expect("token endpoint");
    assert_eq!(r.status(), 400);
    // An issued token is named on its request's log line by id, never by value.
    let r = http()
        .post(format!("http://127.0.0.1:{port}/oauth2/token"))
        .basic_auth(&client.id, Some(client.secret()))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .expect("token endpoint");
    assert_eq!(r.status(), 200);
    let issued: serde_json::Value = r.json().unwrap();
    let token = issued["access_token"].as_str().unwrap().to_string();
    let token_id = scimgate::token::parse(&token).unwrap().id;
    // A SCIM request's line names the client and token the guard judged.
    let r = http()
        .get(format!("http://127.0.0.1:{port}/scim/v2/Users?count=1"))
        .bearer_auth(&token)
        .send()
        .expect("SCIM endpoint");
    assert_eq!(r.status(), 200);
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = wait_with_timeout(&mut child, Duration::from_secs(40));
    let _ = child.kill();
    let log: Vec<String> = BufReader::new(child.stderr.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .collect();
    let status = status.unwrap_or_else(|| panic!("still running after SIGTERM: {log:?}"));
    assert!(status.success(), "exit {status:?}: {log:?}");
    let log = log.join("\n");
    assert!(log.contains("scimgate stopped"), "{log}");
    // One access line per request (status, address, duration), never a query string,
    // and none for the readiness probes at the default level. Written through the
    // non-blocking writer: the lines of the last requests and "scimgate stopped" were
    // flushed at shutdown.
    assert!(log.contains("/oauth2/token"), "{log}");
    assert!(
        !log.contains("path=\"/readyz\""),
        "probes log at debug only: {log}"
    );
    assert!(!log.contains("sgcs_leakedsecret"), "{log}");
    let issuance = log
        .lines()
        .find(|l| l.contains(token_id.as_str()))
        .unwrap_or_else(|| panic!("no log line names {token_id}: {log}"));
    assert!(issuance.contains("/oauth2/token"), "{issuance}");
    for field in ["status=200", "ip=\"127.0.0.1\"", "ms="] {
        assert!(issuance.contains(field), "{field} in {issuance}");
    }
    assert!(issuance.contains(&client.id), "{issuance}");
    let scim = log
        .lines()
        .find(|l| l.contains("path=\"/scim/v2/Users\""))
        .unwrap_or_else(|| panic!("no log line for the SCIM request: {log}"));
    for field in [
        "method=\"GET\"".to_string(),
        "status=200".to_string(),
        format!("client_id=\"{}\"", client.id),
        format!("token_id=\"{token_id}\""),
    ] {
        assert!(scim.contains(&field), "{field} in {scim}");
    }
    assert!(!log.contains(&token), "the token itself was logged: {log}");
    assert!(
        !log.contains(client.secret()),
        "the client secret was logged: {log}"
    );
    // The WAL was folded into the database file and removed when the store closed: its
    // writer connection closes last. (With the read-only pools closing last, SQLite could
    // not checkpoint, and every stop left the WAL for the next start to replay.)
    let wal = std::path::PathBuf::from(format!("{}-wal", s.db.display()));
    assert!(!wal.exists(), "{} left behind", wal.display());
    let store = crate::support::open_store(&s.db);
    assert!(store.token(&token_id).unwrap().is_some());
}

#[test]
fn tls_serves_https_and_bad_certificates_stop_the_start() {
    let s = TestStore::empty();
    let dir = s.dir.path();
    let bad = dir.join("bad.pem");
    std::fs::write(&bad, "not a certificate").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_scimgate"))
        .args([
            "serve",
            "--tls-cert",
            bad.to_str().unwrap(),
            "--tls-key",
            bad.to_str().unwrap(),
        ])
        .current_dir(dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("setting `tls_cert`"), "{err}");

    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args([
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
            "-subj",
            "/CN=127.0.0.1",
        ])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .current_dir(dir)
        .output();
    let has_curl = Command::new("curl").arg("--version").output().is_ok();
    if !made.as_ref().is_ok_and(|o| o.status.success()) || !has_curl {
        eprintln!("openssl or curl missing: HTTPS round trip not exercised");
        return;
    }
    let curl = |port: u16, path: &str| {
        Command::new("curl")
            .args(["-sk", "--max-time", "5", "--noproxy", "*"])
            .arg(format!("https://127.0.0.1:{port}{path}"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
    };
    let (mut child, port) = spawn_serve(
        dir,
        &["--tls-cert", "cert.pem", "--tls-key", "key.pem"],
        |port| curl(port, "/healthz").is_some(),
    );
    let health = curl(port, "/healthz");
    let meta = curl(port, "/.well-known/oauth-authorization-server");
    let headers = Command::new("curl")
        .args([
            "-sk",
            "--max-time",
            "5",
            "--noproxy",
            "*",
            "-D",
            "-",
            "-o",
            "/dev/null",
        ])
        .arg(format!("https://127.0.0.1:{port}/healthz"))
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_lowercase())
        .unwrap_or_default();
    let plain = http()
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(health.as_deref(), Some(r#"{"status":"ok"}"#));
    assert!(
        headers.contains("strict-transport-security: max-age=31536000"),
        "HSTS under TLS: {headers}"
    );
    let meta: serde_json::Value = serde_json::from_str(&meta.unwrap()).unwrap();
    assert_eq!(meta["issuer"], format!("https://127.0.0.1:{port}"));
    assert!(
        plain.is_err() || plain.unwrap().status() != 200,
        "no plain HTTP under TLS"
    );
}

/// logrotate: after the heartbeat log is moved away, SIGHUP makes the server write a new
/// one at the configured path.
#[cfg(unix)]
#[test]
fn sighup_reopens_the_heartbeat_log() {
    use scimgate::model::Scope;
    let s = TestStore::empty();
    let (_, token) = crate::support::client_with_token(&s.db, &[Scope::DirectoryRead], "1h");
    let log = s.dir.path().join("hb.log");
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_scimgate"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--db"])
        .arg(&s.db)
        .env("SCIMGATE_HEARTBEAT_LOG", &log)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    assert!(
        first_answer(&format!("{base}/healthz")).is_some(),
        "server did not start"
    );
    let call = || {
        http()
            .get(format!("{base}/scim/v2/Users"))
            .bearer_auth(&token)
            .send()
            .unwrap()
            .status()
    };
    let wait_for = |path: &std::path::Path, lines: usize| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let n = std::fs::read_to_string(path)
                .map(|t| t.lines().count())
                .unwrap_or(0);
            if n >= lines {
                return n;
            }
            assert!(
                Instant::now() < deadline,
                "{} has {n} lines, wanted {lines}",
                path.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    assert_eq!(call(), 200);
    wait_for(&log, 1);
    let rotated = s.dir.path().join("hb.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    send_hup(child.id());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(call(), 200);
    wait_for(&log, 1);
    assert_eq!(
        std::fs::read_to_string(&rotated).unwrap().lines().count(),
        1,
        "the old file got no new line"
    );
    // SIGTERM: a graceful stop.
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();
}

fn send_hup(pid: u32) {
    let status = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Crash safety: tokens issued under load, the server killed with SIGKILL mid-load, then
/// restarted. Every token that was answered with 200 must still work (it was committed,
/// and fsynced, before its response left), and the store must pass `integrity_check`.
#[test]
fn kill_9_under_load_loses_no_issued_token() {
    let s = TestStore::init_sqlite();
    let client = crate::oauth_support::cc_client(&s, &["user-directory.read.all"], &[]);
    let start = |log: &str| {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let log = std::fs::File::create(s.dir.path().join(log)).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_scimgate"))
            .arg("serve")
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .current_dir(s.dir.path())
            .env_remove("SCIMGATE_DB")
            .env("SCIMGATE_CLIENT_ISSUANCE_PER_MINUTE", "0")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline
            && !http()
                .get(format!("{url}/readyz"))
                .send()
                .is_ok_and(|r| r.status() == 200)
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        (child, url)
    };
    let (mut child, url) = start("first.log");
    let answered = std::sync::Mutex::new(Vec::new());
    let refused = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                let http = http();
                let deadline = Instant::now() + Duration::from_secs(10);
                while Instant::now() < deadline {
                    let r = http
                        .post(format!("{url}/oauth2/token"))
                        .basic_auth(&client.id, Some(client.secret()))
                        .form(&[("grant_type", "client_credentials")])
                        .send();
                    match r {
                        Ok(r) if r.status() == 200 => {
                            let v: serde_json::Value = r.json().unwrap();
                            let t = v["access_token"].as_str().unwrap().to_string();
                            answered.lock().unwrap().push(t);
                        }
                        Ok(r) => panic!("a refusal under load: {}", r.status()),
                        // The server is gone: the kill happened.
                        Err(_) => {
                            refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            break;
                        }
                    }
                }
            });
        }
        std::thread::sleep(Duration::from_millis(1500));
        child.kill().expect("SIGKILL");
        child.wait().unwrap();
    });
    let answered = answered.into_inner().unwrap();
    assert!(answered.len() > 50, "load was issued: {}", answered.len());
    assert!(refused.into_inner() > 0, "the kill came mid-load");
    let conn = rusqlite::Connection::open(&s.db).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    drop(conn);
    let (mut child, url) = start("second.log");
    let http = http();
    let lost: Vec<&String> = answered
        .iter()
        .filter(|t| {
            let r = http
                .post(format!("{url}/oauth2/introspect"))
                .basic_auth(&client.id, Some(client.secret()))
                .form(&[("token", t.as_str())])
                .send()
                .unwrap();
            let v: serde_json::Value = r.json().unwrap();
            v["active"] != true
        })
        .collect();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        lost.is_empty(),
        "{} of {} answered tokens lost",
        lost.len(),
        answered.len()
    );
}
