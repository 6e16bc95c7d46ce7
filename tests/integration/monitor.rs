//! Token lifecycle monitoring, end to end: seed 001's story told with a controlled clock
//! (a token works, gets its 30 d / 7 d / 1 d warnings, expires, the IdP's calls turn to
//! 401, the client goes `failing` and the operator is told once, a new token heals it), a
//! silent Entra-style client going late then missed in real time with `config status`
//! exit codes, the heartbeat log (attribution, unknown tokens, SIGHUP reopen), `/metrics`,
//! and the notifiers over real protocols: a local HTTP receiver and a local SMTP server.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant};

use scimgate::admin::{Admin, IssueToken, Lifetime, RegisterClient};
use scimgate::model::{GrantType, Heartbeat, IdpKind, IdpRef, Scope};
use scimgate::settings::RawSettings;
use scimgate::time::{Clock, Duration};
use serde_json::Value;

use crate::support::{Scim, TestServer, TestStore};

/// A webhook receiver: a real HTTP server on loopback recording each POST (signature
/// header and JSON body). The first `fail_first` requests get a 500, to exercise retries.
/// What the receiver got: the signature header (with the raw body) and the parsed body.
pub(crate) type Received = Arc<Mutex<Vec<(Option<String>, Value)>>>;

pub(crate) struct Receiver {
    pub(crate) url: String,
    got: Received,
    attempts: Arc<Mutex<usize>>,
}

impl Receiver {
    pub(crate) fn start(fail_first: usize) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let got = Arc::new(Mutex::new(Vec::new()));
        let attempts = Arc::new(Mutex::new(0usize));
        let (g, a) = (got.clone(), attempts.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut len = 0usize;
                let mut sig = None;
                let mut line = String::new();
                reader.read_line(&mut line).ok();
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    let lower = line.to_ascii_lowercase();
                    if let Some(v) = lower.strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                    if lower.starts_with("x-scimgate-signature:") {
                        sig = Some(line.split_once(':').unwrap().1.trim().to_string());
                    }
                }
                let mut body = vec![0u8; len];
                reader.read_exact(&mut body).ok();
                let n = {
                    let mut a = a.lock().unwrap();
                    *a += 1;
                    *a
                };
                let status = if n <= fail_first {
                    "500 Internal Server Error"
                } else {
                    g.lock().unwrap().push((
                        sig.map(|s| format!("{s}|{}", String::from_utf8_lossy(&body))),
                        serde_json::from_slice(&body).unwrap_or(Value::Null),
                    ));
                    "200 OK"
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
            }
        });
        Receiver { url, got, attempts }
    }

    pub(crate) fn events(&self) -> Vec<Value> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// Register an Entra-style client (heartbeat 40m × 3) and issue it a token.
fn entra_client(
    db: &std::path::Path,
    clock: &Clock,
    heartbeat: Option<Heartbeat>,
    valid: Lifetime,
) -> (String, String) {
    let store = crate::support::open_store(db);
    let admin = Admin::new(&store, clock.clone(), "test");
    let (client, _) = admin
        .register_client(RegisterClient {
            idp: IdpRef {
                kind: IdpKind::Entra,
                app_id: Some("8f2b".into()),
                tenant: None,
                owner: None,
            },
            heartbeat: Some(heartbeat),
            ..RegisterClient::new(
                "Entra prod",
                &[GrantType::ClientCredentials],
                &[Scope::DirectoryRead, Scope::DirectoryWrite],
            )
        })
        .unwrap();
    let token = issue(db, clock, &client.id, valid);
    (client.id, token)
}

fn issue(db: &std::path::Path, clock: &Clock, client: &str, valid: Lifetime) -> String {
    let store = crate::support::open_store(db);
    let admin = Admin::new(&store, clock.clone(), "test");
    let (_, secret) = admin
        .issue_access_token(IssueToken {
            client_id: client.into(),
            scopes: vec![],
            lifetime: valid,
            label: None,
        })
        .unwrap();
    secret.expose().to_string()
}

fn log_lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each heartbeat log line is JSON"))
        .collect()
}

#[test]
fn seed_001_story_with_a_controlled_clock() {
    let s = TestStore::empty();
    let start = chrono::Utc::now().timestamp();
    let clock = Clock::manual(start);
    let hook = Receiver::start(1);
    let server = TestServer::start_with(
        &s.db,
        clock.clone(),
        RawSettings {
            monitor_tick: Some("1h".into()),
            webhook_url: Some(hook.url.clone()),
            webhook_secret: Some("hook-secret".into()),
            webhook_retries: Some(2),
            ..RawSettings::default()
        },
    );
    let (client, token) = entra_client(
        &s.db,
        &clock,
        Heartbeat::default_for(IdpKind::Entra),
        Lifetime::DEFAULT,
    );
    let expires = start + 17_520 * 3600;
    let scim = Scim::new(&server, &token);
    let m = &server.state.monitor;

    // The token works: 200s, the client is healthy, nothing to tell anyone.
    assert_eq!(scim.get("/Users").status, 200);
    let r = m.tick();
    assert!(r.notifications.is_empty(), "{:?}", r.notifications);
    assert_eq!(server.health_state(&client), "healthy");

    // Each warning lead time: exactly one warning, never repeated.
    let mut warned = Vec::new();
    for (lead, label) in [(30, "30d"), (7, "7d"), (1, "1d")] {
        clock.set(expires - lead * 86_400 + 60);
        assert_eq!(scim.get("/Users").status, 200);
        let r = m.tick();
        let w: Vec<_> = r
            .notifications
            .iter()
            .filter(|n| n.event == "token_expiry")
            .collect();
        assert_eq!(w.len(), 1, "one warning at {label}: {:?}", r.notifications);
        assert_eq!(w[0].details["lead"], label);
        assert!(w[0].text.contains("rotate-token"), "{}", w[0].text);
        warned.push(w[0].token_id.clone());
        assert!(
            m.tick().notifications.is_empty(),
            "the {label} warning is not repeated"
        );
    }
    assert_eq!(server.health_state(&client), "healthy");

    // The token expires; the IdP's next calls get 401; the client is failing; one alert.
    clock.set(expires + 30);
    let r = scim.get("/Users");
    assert_eq!(r.status, 401);
    assert_eq!(scim.get("/Users").status, 401);
    let r = m.tick();
    let failing: Vec<_> = r
        .notifications
        .iter()
        .filter(|n| n.event == "state_change")
        .collect();
    assert_eq!(failing.len(), 1, "{:?}", r.notifications);
    assert_eq!(failing[0].details["to"], "failing");
    assert!(failing[0].text.contains("expired"), "{}", failing[0].text);
    assert_eq!(server.health_state(&client), "failing");
    assert_eq!(scim.get("/Users").status, 401);
    assert!(
        m.tick().notifications.is_empty(),
        "the failing alert is sent once"
    );

    // A new token is issued and calls succeed: healthy again.
    let fresh = issue(&s.db, &clock, &client, Lifetime::For(Duration::days(365)));
    assert_eq!(Scim::new(&server, &fresh).get("/Users").status, 200);
    let r = m.tick();
    assert_eq!(r.notifications.len(), 1, "{:?}", r.notifications);
    assert_eq!(r.notifications[0].details["to"], "healthy");
    assert_eq!(server.health_state(&client), "healthy");

    // The heartbeat log tells the story, including the cut from 200 to 401.
    let log = log_lines(&server.state.monitor.settings().heartbeat_log);
    let statuses: Vec<u64> = log
        .iter()
        .filter(|l| l["event"] == "request")
        .map(|l| l["status"].as_u64().unwrap())
        .collect();
    let cut = statuses
        .iter()
        .position(|s| *s == 401)
        .expect("a 401 in the log");
    assert!(
        statuses[..cut].iter().all(|s| *s == 200)
            && statuses[cut..cut + 3].iter().all(|s| *s == 401),
        "{statuses:?}"
    );
    assert_eq!(statuses.last(), Some(&200));
    let expired_line = log.iter().find(|l| l["status"] == 401).unwrap();
    assert_eq!(expired_line["verdict"], "expired");
    assert_eq!(expired_line["client_id"], client.as_str());
    assert_eq!(expired_line["ip"], "127.0.0.1");
    assert_eq!(expired_line["method"], "GET");
    assert_eq!(expired_line["path"], "/scim/v2/Users");
    assert!(expired_line["latency_ms"].is_number());
    let states: Vec<&str> = log
        .iter()
        .filter(|l| l["event"] == "state")
        .map(|l| l["to"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        vec!["healthy", "failing", "healthy"],
        "every transition is logged (idle → healthy quietly)"
    );
    let raw = std::fs::read_to_string(&server.state.monitor.settings().heartbeat_log).unwrap();
    assert!(
        !raw.contains(&token) && !raw.contains(&fresh),
        "no token value in the heartbeat log"
    );

    // The webhook got every notification once (the first attempt failed and was retried),
    // each signed with HMAC-SHA256 and carrying Slack's `text`.
    m.wait_for_deliveries();
    let events = hook.events();
    let kinds: Vec<String> = events
        .iter()
        .map(|e| {
            format!(
                "{}:{}",
                e["event"].as_str().unwrap(),
                e["details"]["lead"]
                    .as_str()
                    .or(e["details"]["to"].as_str())
                    .unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            "token_expiry:30d",
            "token_expiry:7d",
            "token_expiry:1d",
            "state_change:failing",
            "state_change:healthy"
        ]
    );
    assert_eq!(
        *hook.attempts.lock().unwrap(),
        6,
        "one failed attempt, then five deliveries"
    );
    for (sig, body) in hook.got.lock().unwrap().iter() {
        let (sig, raw) = sig.as_ref().expect("signed").split_once('|').unwrap();
        assert_eq!(
            sig,
            scimgate::monitor::notify::signature("hook-secret", raw.as_bytes())
        );
        assert!(body["text"].as_str().unwrap().starts_with("[scimgate] "));
    }

    // Everything is audited; a restart neither repeats nor loses a warning.
    let audit = server.store.audit_events(None, 1000).unwrap();
    assert_eq!(
        audit
            .iter()
            .filter(|e| e.action == "monitor.expiry_warning")
            .count(),
        3
    );
    assert_eq!(
        audit
            .iter()
            .filter(|e| e.action == "monitor.state_change")
            .count(),
        3
    );
    drop(server);
    let again = TestServer::start_with(
        &s.db,
        clock.clone(),
        RawSettings {
            monitor_tick: Some("1h".into()),
            ..RawSettings::default()
        },
    );
    assert!(again.state.monitor.tick().notifications.is_empty());
    assert_eq!(again.health_state(&client), "healthy");
    let _ = warned;
}

#[test]
fn silent_entra_client_goes_late_then_missed_in_real_time() {
    let s = TestStore::init();
    let hook = Receiver::start(0);
    let server = TestServer::start_with(
        &s.db,
        Clock::system(),
        RawSettings {
            monitor_tick: Some("1s".into()),
            webhook_url: Some(hook.url.clone()),
            ..RawSettings::default()
        },
    );
    // Late from 3 s of silence, missed from 9 s: a window wide enough for `config status`
    // to see "late" on a loaded machine.
    let hb = Heartbeat {
        interval: Duration::seconds(3),
        missed: 3,
    };
    let (client, token) = entra_client(
        &s.db,
        &Clock::system(),
        Some(hb),
        Lifetime::For(Duration::days(365)),
    );
    let scim = Scim::new(&server, &token);
    assert_eq!(scim.get("/Users").status, 200);
    let status = |want: i32| {
        let out = s.config().args(["--json", "status"]).output().unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        (out.status.code() == Some(want), v)
    };
    let wait_for = |state: &str, secs: u64| {
        let deadline = Instant::now() + StdDuration::from_secs(secs);
        while server.health_state(&client) != state {
            assert!(
                Instant::now() < deadline,
                "never became {state}: {}",
                server.health_state(&client)
            );
            std::thread::sleep(StdDuration::from_millis(100));
        }
    };
    wait_for("healthy", 5);
    let (ok, v) = status(0);
    assert!(ok, "healthy → exit 0: {v}");
    assert_eq!(v["clients"][0]["state"], "healthy");
    assert_eq!(v["clients"][0]["last_source_ip"], "127.0.0.1");
    wait_for("late", 6);
    let (ok, v) = status(1);
    assert!(ok, "late → exit 1: {v}");
    wait_for("missed", 12);
    let (ok, v) = status(2);
    assert!(ok, "missed → exit 2: {v}");
    let human = s.config().arg("status").output().unwrap();
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(
        text.contains("missed") && text.contains("Status: CRITICAL"),
        "{text}"
    );
    server.state.monitor.wait_for_deliveries();
    let deadline = Instant::now() + StdDuration::from_secs(5);
    while hook.events().len() < 2 && Instant::now() < deadline {
        std::thread::sleep(StdDuration::from_millis(100));
    }
    let tos: Vec<String> = hook
        .events()
        .iter()
        .map(|e| e["details"]["to"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(tos, vec!["late", "missed"]);
    // It calls again: healthy, exit 0.
    assert_eq!(scim.get("/Users").status, 200);
    wait_for("healthy", 5);
    assert!(status(0).0);
}

#[test]
fn status_warns_about_expiring_tokens_and_failing_clients() {
    let s = TestStore::init();
    let clock = Clock::system();
    let server = TestServer::start_with(
        &s.db,
        clock.clone(),
        RawSettings {
            monitor_tick: Some("1h".into()),
            ..RawSettings::default()
        },
    );
    let (client, _) = entra_client(&s.db, &clock, None, Lifetime::For(Duration::days(60)));
    let out = s.config().args(["status"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Issued 100 days ago for 120 days: 20 days left, inside the 30d lead.
    let past = Clock::manual(chrono::Utc::now().timestamp() - 100 * 86_400);
    issue(&s.db, &past, &client, Lifetime::For(Duration::days(120)));
    let out = s.config().args(["--json", "status"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "a token inside the 30d lead warns"
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], "warning");
    assert_eq!(
        v["clients"][0]["expiring_tokens"].as_array().unwrap().len(),
        1
    );
    // A revoked token still in use: failing, critical.
    let token = issue(&s.db, &clock, &client, Lifetime::For(Duration::days(300)));
    let store = crate::support::open_store(&s.db);
    Admin::new(&store, clock.clone(), "test")
        .revoke_token(
            &scimgate::admin::TokenRef::Value(scimgate::token::parse(&token).unwrap()),
            None,
            None,
        )
        .unwrap();
    assert_eq!(Scim::new(&server, &token).get("/Users").status, 401);
    server.state.monitor.tick();
    let out = s.config().args(["--json", "status"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["clients"][0]["state"], "failing");
    assert!(
        v["clients"][0]["note"]
            .as_str()
            .unwrap()
            .contains("revoked")
    );
    let err = s.fails(&["status", "-i", "cl_nope"], 1);
    assert!(err.contains("no API client"), "{err}");
}

#[test]
fn unknown_tokens_are_counted_not_stored_and_metrics_tell_it_all() {
    let s = TestStore::empty();
    let clock = Clock::system();
    let server = TestServer::start_with(
        &s.db,
        clock.clone(),
        RawSettings {
            monitor_tick: Some("1h".into()),
            ..RawSettings::default()
        },
    );
    let (client, token) = entra_client(
        &s.db,
        &clock,
        Heartbeat::default_for(IdpKind::Entra),
        Lifetime::For(Duration::days(90)),
    );
    let unknown = {
        let other = TestStore::empty();
        entra_client(&other.db, &clock, None, Lifetime::For(Duration::days(1))).1
    };
    assert_eq!(Scim::new(&server, &token).get("/Users").status, 200);
    assert_eq!(Scim::new(&server, &unknown).get("/Users").status, 401);
    server.state.monitor.tick();
    let log = std::fs::read_to_string(&server.state.monitor.settings().heartbeat_log).unwrap();
    assert!(log.contains("\"verdict\":\"unknown_token\""), "{log}");
    assert!(
        !log.contains(&unknown),
        "an unknown token's value is never stored"
    );
    let metrics = server.get_text("/metrics");
    let token_id = scimgate::token::parse(&token).unwrap().id;
    for needle in [
        format!(
            "scimgate_token_expiry_timestamp_seconds{{token_id=\"{token_id}\",client_id=\"{client}\",kind=\"access_token\"}}"
        ),
        format!(
            "scimgate_client_state{{client_id=\"{client}\",client_name=\"Entra prod\",state=\"healthy\"}} 1"
        ),
        format!(
            "scimgate_client_heartbeat_interval_seconds{{client_id=\"{client}\",client_name=\"Entra prod\"}} 2400"
        ),
        format!("scimgate_scim_requests_total{{client_id=\"{client}\",status=\"200\"}} 1"),
        "scimgate_scim_requests_total{client_id=\"unknown\",status=\"401\"} 1".to_string(),
        "scimgate_client_last_heartbeat_age_seconds{".to_string(),
        "\nscimgate_token_expiry_series_truncated 0\n".to_string(),
    ] {
        assert!(metrics.contains(&needle), "missing {needle} in\n{metrics}");
    }
    let r = crate::oauth_support::post_form(
        &server,
        "/oauth2/token",
        Some(("cl_x", "wrong")),
        &[("grant_type", "client_credentials")],
    );
    assert_eq!(r.status(), 401);
    let metrics = server.get_text("/metrics");
    assert!(metrics.contains("scimgate_token_requests_total{grant_type=\"client_credentials\",outcome=\"invalid_client\"} 1"), "{metrics}");
}

/// `/metrics` is unauthenticated: with 100,000 long-lived tokens its page was 14 MB and took
/// 140 MB of the server's memory to build, and forty scrapes at once took it to 1.8 GB.
/// Now it lists the soonest `EXPIRY_SERIES` expiries, and says when there are more.
#[test]
fn metrics_list_the_soonest_expiries_and_count_the_rest() {
    use scimgate::model::IssuedVia;
    use scimgate::monitor::metrics::EXPIRY_SERIES;
    use scimgate::store::NewTokenRecord;
    use scimgate::token::{TokenKind, generate};
    let s = TestStore::init();
    let clock = Clock::system();
    let (client, _) = entra_client(&s.db, &clock, None, Lifetime::For(Duration::days(700)));
    let now = clock.now();
    let store = crate::support::open_store(&s.db);
    let extra = 5;
    let tokens: Vec<_> = (0..EXPIRY_SERIES + extra)
        .map(|i| {
            (
                generate(TokenKind::Access, now),
                now + 2 * 86_400 + i as i64 * 3600,
            )
        })
        .collect();
    let records: Vec<NewTokenRecord> = tokens
        .iter()
        .map(|(t, expires)| {
            NewTokenRecord::own_access(
                t,
                &client,
                vec![Scope::DirectoryRead],
                now,
                *expires,
                IssuedVia::Cli,
            )
        })
        .collect();
    store.insert_tokens(&records).unwrap();
    let server = TestServer::start(&s.db, clock);
    let metrics = server.get_text("/metrics");
    let series = |id: &scimgate::token::TokenId| {
        format!("scimgate_token_expiry_timestamp_seconds{{token_id=\"{id}\",")
    };
    let listed = metrics
        .lines()
        .filter(|l| l.starts_with("scimgate_token_expiry_timestamp_seconds{"))
        .count();
    assert_eq!(listed, EXPIRY_SERIES, "{}", &metrics[..2000]);
    // The entra client's own token expires in 700 days: after all of these.
    assert!(
        metrics.contains("\nscimgate_token_expiry_series_truncated 1\n"),
        "{}",
        &metrics[metrics.len().saturating_sub(3000)..]
    );
    assert!(
        metrics.contains(&series(&tokens[0].0.id)),
        "the soonest is listed"
    );
    assert!(metrics.contains(&series(&tokens[EXPIRY_SERIES - 1].0.id)));
    assert!(
        !metrics.contains(&series(&tokens[EXPIRY_SERIES].0.id)),
        "the later ones are not"
    );
}

#[test]
fn monitoring_off_attributes_nothing() {
    let s = TestStore::empty();
    let server = TestServer::start_with(
        &s.db,
        Clock::system(),
        RawSettings {
            monitoring: Some(false),
            ..RawSettings::default()
        },
    );
    let (_, token) = entra_client(
        &s.db,
        &Clock::system(),
        None,
        Lifetime::For(Duration::days(1)),
    );
    assert_eq!(Scim::new(&server, &token).get("/Users").status, 200);
    server.state.monitor.drain();
    assert!(!server.state.monitor.settings().heartbeat_log.exists());
}

/// A real SMTP server: Python's aiosmtpd writing to a Maildir (installed by scripts/test.sh;
/// SCIMGATE_TEST_PYTHON names its interpreter), killed when dropped.
struct Smtp {
    child: std::process::Child,
    _dir: tempfile::TempDir,
    mbox: std::path::PathBuf,
}

impl Smtp {
    /// A loopback port nothing listens on (yet).
    fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    fn start(port: u16) -> Smtp {
        let python = std::env::var("SCIMGATE_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
        let dir = tempfile::tempdir().unwrap();
        let mbox = dir.path().join("mbox");
        let child = std::process::Command::new(&python)
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
                "-c",
                "aiosmtpd.handlers.Mailbox",
            ])
            .arg(&mbox)
            .spawn()
            .expect("start aiosmtpd (pip install aiosmtpd; scripts/test.sh does)");
        let deadline = Instant::now() + StdDuration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "aiosmtpd did not start");
            std::thread::sleep(StdDuration::from_millis(100));
        }
        Smtp {
            child,
            _dir: dir,
            mbox,
        }
    }

    /// The messages received so far (aiosmtpd's Mailbox handler writes a Maildir: one
    /// file per message in new/).
    fn messages(&self) -> Vec<String> {
        std::fs::read_dir(self.mbox.join("new"))
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Wait (at most 10 s) until `n` messages arrived; all of them.
    fn wait_for(&self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + StdDuration::from_secs(10);
        loop {
            let got = self.messages();
            if got.len() >= n || Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(StdDuration::from_millis(100));
        }
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Undo quoted-printable soft line breaks, so a long body line reads whole.
fn unfold(mail: &str) -> String {
    mail.replace("=\r\n", "").replace("=\n", "")
}

fn smtp_settings(port: u16, to: &str) -> RawSettings {
    RawSettings {
        monitor_tick: Some("1h".into()),
        smtp_host: Some("127.0.0.1".into()),
        smtp_port: Some(port),
        smtp_tls: Some("none".into()),
        smtp_from: Some("scimgate@example.com".into()),
        smtp_to: Some(to.into()),
        ..RawSettings::default()
    }
}

#[test]
fn email_notifications_reach_a_real_smtp_server() {
    let port = Smtp::free_port();
    let smtp = Smtp::start(port);
    let s = TestStore::empty();
    let start = chrono::Utc::now().timestamp();
    let clock = Clock::manual(start);
    let server = TestServer::start_with(
        &s.db,
        clock.clone(),
        smtp_settings(port, "ops@example.com, iam@example.com"),
    );
    let (_, token) = entra_client(&s.db, &clock, None, Lifetime::For(Duration::days(10)));
    assert_eq!(Scim::new(&server, &token).get("/Users").status, 200);
    clock.set(start + 3 * 86_400 + 60);
    let r = server.state.monitor.tick();
    assert_eq!(r.notifications.len(), 1, "{:?}", r.notifications);
    server.state.monitor.wait_for_deliveries();
    let text = smtp.wait_for(1).join("\n");
    assert!(
        text.contains("To: ops@example.com, iam@example.com"),
        "{text}"
    );
    assert!(
        text.contains("Subject: [scimgate warning] Entra prod (token_expiry)"),
        "{text}"
    );
    assert!(unfold(&text).contains("expires in 7 days"), "{text}");
}

/// Sisense's provisioning alerts: a run of 100 creates with 10 conflicts gives one mail,
/// to the client's alert addresses and the server's, naming those 10 users — after the
/// interval, not per error; with the SMTP server down the digest fails, is counted, and
/// its errors wait for the next one, which delivers them once the server is back.
#[test]
fn provisioning_errors_arrive_as_one_digest_and_wait_out_an_smtp_outage() {
    let port = Smtp::free_port();
    let s = TestStore::init();
    let start = chrono::Utc::now().timestamp();
    let clock = Clock::manual(start);
    let hook = Receiver::start(0);
    let server = TestServer::start_with(
        &s.db,
        clock.clone(),
        RawSettings {
            webhook_url: Some(hook.url.clone()),
            webhook_retries: Some(0),
            provisioning_digest_interval: Some("15m".into()),
            ..smtp_settings(port, "ops@example.com")
        },
    );
    let (client, token) = entra_client(&s.db, &clock, None, Lifetime::For(Duration::days(90)));
    let err = s.fails(
        &["update-api-client", "-i", &client, "--alert-email", "iam@"],
        2,
    );
    assert!(err.contains("not an e-mail address"), "{err}");
    s.json(&[
        "update-api-client",
        "-i",
        &client,
        "--alert-email",
        "iam@example.com",
        "--alert-email",
        "helpdesk@example.com",
    ]);
    let shown = s
        .config()
        .args(["show-api-client", "-i", &client])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&shown.stdout)
            .contains("Alert e-mail:     iam@example.com, helpdesk@example.com"),
        "{}",
        String::from_utf8_lossy(&shown.stdout)
    );

    let scim = Scim::new(&server, &token);
    const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
    let mut conflicted = Vec::new();
    for i in 0..100 {
        let name = if i % 10 == 9 {
            conflicted.push(format!("user{}@example.com", i - 1));
            format!("user{}@example.com", i - 1)
        } else {
            format!("user{i}@example.com")
        };
        let r = scim.post(
            "/Users",
            serde_json::json!({"schemas": [USER], "userName": name, "password": "never-in-a-mail-1"}),
        );
        assert_eq!(r.status, if i % 10 == 9 { 409 } else { 201 }, "{i}");
    }
    let monitor = &server.state.monitor;
    let digests = |hook: &Receiver| {
        hook.events()
            .into_iter()
            .filter(|e| e["event"] == "provisioning_errors")
            .collect::<Vec<_>>()
    };
    // Recorded, but not told yet: the run may still be going.
    monitor.tick();
    monitor.wait_for_deliveries();
    assert_eq!(monitor.digest_counts(), (0, 0));
    assert!(digests(&hook).is_empty());

    // An interval later the digest is due; the SMTP server is down.
    clock.set(start + 15 * 60);
    monitor.tick();
    monitor.wait_for_deliveries();
    assert_eq!(monitor.digest_counts(), (0, 1), "failed, and counted");
    assert!(
        server
            .get_text("/metrics")
            .contains("scimgate_provisioning_digests_total{outcome=\"failed\"} 1")
    );
    let pending = server.state.store.pending_provisioning_errors().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].count, 10, "kept for the next digest");
    // The webhook took it: one event naming the ten, no secret, no body.
    let hooked = digests(&hook);
    assert_eq!(hooked.len(), 1, "{hooked:?}");
    let mut named: Vec<String> = hooked[0]["details"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["user_name"].as_str().unwrap().to_string())
        .collect();
    named.sort();
    let mut expected = conflicted.clone();
    expected.sort();
    assert_eq!(named, expected);
    assert!(!hooked[0].to_string().contains("never-in-a-mail"));

    // The server comes back; not retried before the interval is up, then delivered.
    let smtp = Smtp::start(port);
    clock.set(start + 20 * 60);
    monitor.tick();
    monitor.wait_for_deliveries();
    assert_eq!(
        monitor.digest_counts(),
        (0, 1),
        "not retried within the interval"
    );
    clock.set(start + 30 * 60);
    monitor.tick();
    monitor.wait_for_deliveries();
    assert_eq!(monitor.digest_counts(), (1, 1));
    let mails = smtp.wait_for(1);
    assert_eq!(mails.len(), 1, "one mail, not one per error");
    let mail = unfold(&mails[0]);
    assert!(
        mail.contains("To: ops@example.com, iam@example.com, helpdesk@example.com"),
        "{mail}"
    );
    assert!(
        mail.contains("Subject: [scimgate warning] Entra prod (provisioning_errors)"),
        "{mail}"
    );
    for name in &conflicted {
        assert!(mail.contains(name.as_str()), "{name} in {mail}");
    }
    assert!(mail.contains("409 uniqueness"), "{mail}");
    assert!(
        !mail.contains("user0@example.com"),
        "only the refused users"
    );
    assert!(!mail.contains(&token) && !mail.contains("never-in-a-mail"));
    assert!(
        server
            .state
            .store
            .pending_provisioning_errors()
            .unwrap()
            .is_empty()
    );
    let listed = s.json(&["provisioning-errors", "-i", &client]);
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["notified_at"].is_string()),
        "{listed}"
    );
    // Nothing new: no further digest.
    clock.set(start + 60 * 60);
    monitor.tick();
    monitor.wait_for_deliveries();
    assert_eq!(monitor.digest_counts(), (1, 1));
    assert_eq!(smtp.messages().len(), 1);
}

/// Regression: every request with a made-up token wrote a line to the heartbeat log (and
/// two to the server log), so a junk flood grew the disk at the flood's rate. Now the
/// first few of each second are written one by one and the rest summarised, and the total
/// is still accounted for. (The budget was per drain until drains became frequent: 20 a
/// second would have allowed 200 lines a second.)
#[test]
fn a_flood_of_unknown_tokens_is_summarised_in_the_heartbeat_log() {
    let s = TestStore::empty();
    let clock = Clock::system();
    let server = TestServer::start_with(
        &s.db,
        clock.clone(),
        RawSettings {
            monitor_tick: Some("1h".into()),
            ..RawSettings::default()
        },
    );
    let junk = {
        let other = TestStore::empty();
        entra_client(&other.db, &clock, None, Lifetime::For(Duration::days(1))).1
    };
    const FLOOD: usize = 300;
    let scim = Scim::new(&server, &junk);
    for _ in 0..FLOOD {
        assert_eq!(scim.get("/Users").status, 401);
    }
    server.state.monitor.tick();
    let log = std::fs::read_to_string(&server.state.monitor.settings().heartbeat_log).unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &serde_json::Value| v["verdict"] == "unknown_token")
        .collect();
    let single = lines.iter().filter(|v| v["event"] == "request").count();
    let summarised: u64 = lines
        .iter()
        .filter(|v| v["event"] == "unknown_tokens")
        .map(|v| v["count"].as_u64().unwrap())
        .sum();
    assert_eq!(single as u64 + summarised, FLOOD as u64, "{log}");
    let mut per_second = std::collections::HashMap::<&str, usize>::new();
    for v in lines.iter().filter(|v| v["event"] == "request") {
        *per_second.entry(v["ts"].as_str().unwrap()).or_default() += 1;
    }
    assert!(
        per_second.values().all(|&n| n <= 10),
        "at most 10 one by one per second: {per_second:?}"
    );
    assert!(
        lines.len() < 60,
        "{} lines for {FLOOD} junk requests",
        lines.len()
    );
}

#[test]
fn provisioning_errors_are_recorded_and_counted_but_not_404s_or_401s() {
    // A run of 100 creates where every 10th user is a duplicate (409 uniqueness), a
    // search and a delete that find nothing (404: success for an IdP) and an unknown
    // token (401: the health states' business).
    let s = TestStore::init();
    let clock = Clock::system();
    let server = TestServer::start_with(
        &s.db,
        clock.clone(),
        RawSettings {
            monitor_tick: Some("1h".into()),
            ..RawSettings::default()
        },
    );
    let (client, token) = entra_client(&s.db, &clock, None, Lifetime::For(Duration::days(90)));
    let scim = Scim::new(&server, &token);
    const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
    for i in 0..100 {
        let name = if i % 10 == 9 {
            format!("user{}@example.com", i - 1)
        } else {
            format!("user{i}@example.com")
        };
        let r = scim.post(
            "/Users",
            serde_json::json!({"schemas": [USER], "userName": name}),
        );
        assert_eq!(r.status, if i % 10 == 9 { 409 } else { 201 }, "{i}");
    }
    assert_eq!(scim.get("/Users/no-such-id").status, 404);
    assert_eq!(scim.delete("/Users/no-such-id").status, 404);
    // A PATCH by id refused for a bad value: recorded under the user's name.
    let user0 = scim.get("/Users?filter=userName%20eq%20%22user0@example.com%22");
    let user0_id = user0.body["Resources"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        scim.patch(
            &format!("/Users/{user0_id}"),
            serde_json::json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "active", "value": "maybe"}]})
        )
        .status,
        400
    );
    assert_eq!(
        scim.patch(
            "/Users/no-such-id",
            serde_json::json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "active", "value": false}]})
        )
        .status,
        404
    );
    // The monitor's thread folds and writes recent activity every second between ticks
    // (the tick is an hour here): that must not lose the errors the tick records.
    std::thread::sleep(std::time::Duration::from_millis(1600));
    server.state.monitor.tick();

    let rows = server.state.store.provisioning_errors(None, 0).unwrap();
    assert_eq!(
        rows.len(),
        12,
        "10 conflicts, a bad PATCH and the PATCH of a missing user: {rows:?}"
    );
    let bad = rows.iter().find(|r| r.status == 400).unwrap();
    assert_eq!(
        (bad.resource_id.as_deref(), bad.user_name.as_deref()),
        (Some(user0_id.as_str()), Some("user0@example.com")),
        "named by its userName from the directory"
    );
    assert_eq!(bad.scim_type.as_deref(), Some("invalidValue"));
    let conflicts: Vec<_> = rows.iter().filter(|r| r.status == 409).collect();
    assert_eq!(conflicts.len(), 10);
    let mut names: Vec<_> = conflicts
        .iter()
        .map(|r| r.user_name.clone().unwrap())
        .collect();
    names.sort();
    let mut expected: Vec<_> = (0..10)
        .map(|k| format!("user{}@example.com", k * 10 + 8))
        .collect();
    expected.sort();
    assert_eq!(names, expected, "each conflict names its user");
    for r in &conflicts {
        assert_eq!(
            (r.client_id.as_str(), r.method.as_str()),
            (client.as_str(), "POST")
        );
        assert_eq!(
            (r.resource.as_str(), r.resource_id.as_deref()),
            ("Users", None)
        );
        assert_eq!(r.scim_type.as_deref(), Some("uniqueness"));
        assert!(r.detail.as_deref().is_some_and(|d| !d.is_empty()), "{r:?}");
    }
    let patch = rows.iter().find(|r| r.status == 404).unwrap();
    assert_eq!(
        (patch.method.as_str(), patch.resource_id.as_deref()),
        ("PATCH", Some("no-such-id"))
    );
    let metrics = server.get_text("/metrics");
    for needle in [
        format!("scimgate_provisioning_errors_total{{client_id=\"{client}\",status=\"409\"}} 10"),
        format!("scimgate_provisioning_errors_total{{client_id=\"{client}\",status=\"404\"}} 1"),
        "scimgate_provisioning_errors_dropped_total 0".to_string(),
    ] {
        assert!(metrics.contains(&needle), "missing {needle} in\n{metrics}");
    }

    // The CLI lists them, per client and all, as JSON and as a table.
    let listed = s.json(&["provisioning-errors", "-i", &client]);
    assert_eq!(listed.as_array().unwrap().len(), 12, "{listed}");
    let first = &listed[0];
    assert_eq!(first["user_name"], "user8@example.com", "{first}");
    assert_eq!(first["status"], 409);
    assert_eq!(first["scim_type"], "uniqueness");
    let out = s
        .config()
        .args(["provisioning-errors", "--since", "1h"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for k in 0..10 {
        assert!(
            text.contains(&format!("user{}@example.com", k * 10 + 8)),
            "{text}"
        );
    }
    assert!(!text.contains(&token), "never a token");
    let err = s.fails(&["provisioning-errors", "--since", "yesterday-ish"], 2);
    assert!(err.contains("--since"), "{err}");
    let err = s.fails(&["provisioning-errors", "-i", "cl_nope"], 1);
    assert!(err.contains("cl_nope"), "{err}");
}
