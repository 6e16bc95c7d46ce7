//! scimgate on PostgreSQL (issue 16), end to end: `config` and the server on a
//! `postgres://` URL (TLS required, verified against the test cluster's CA), and two server
//! instances sharing one database. Each test gets a database of its own on the cluster
//! scripts/test.sh starts; without one they return early, unless
//! `SCIMGATE_TEST_PG_REQUIRED` is set (the test script sets it), which fails them.

use std::collections::HashSet;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use scimgate::settings::RawSettings;
use scimgate::time::Clock;
use serde_json::json;

use crate::oauth_support::{READ, WRITE, cc_client, post_form, status_json};
use crate::support::{Scim, TestServer, TestStore, assert_one_sentence};

fn server(s: &TestStore) -> TestServer {
    TestServer::start_at(&s.location(), Clock::system(), RawSettings::default())
}

fn cc_token(server: &TestServer, id: &str, secret: &str) -> String {
    let (status, v) = status_json(post_form(
        server,
        "/oauth2/token",
        Some((id, secret)),
        &[("grant_type", "client_credentials")],
    ));
    assert_eq!(status, 200, "{v}");
    v["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
}

#[test]
fn config_and_the_server_run_on_postgres() {
    let Some(s) = TestStore::init_postgres() else {
        return;
    };
    // config: register, issue, list, revoke (and refuse an unknown token).
    let c = cc_client(&s, &[READ, WRITE], &[]);
    let (cli_token, cli_id) = s.issue(&c.id, &[]);
    let listed = s.json(&["list-tokens"]);
    assert!(listed.to_string().contains(&cli_id), "{listed}");
    let err = s.fails(&["revoke-token", "--id", "tok_doesnotexist000000000"], 1);
    assert_one_sentence(&err);

    let server = server(&s);
    // The CLI's token works against the server; SCIM writes and reads on PostgreSQL.
    let scim = Scim::new(&server, &cli_token);
    let r = scim.post(
        "/Users",
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
               "userName": "Élodie@example.com", "externalId": "okta-1",
               "emails": [{"value": "elodie@example.com", "primary": true}]}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    let r = scim.get(&format!("/Users/{id}"));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["userName"], "Élodie@example.com");
    // userName is caseExact false: the IdP's lookup in another case finds it.
    let r = scim.get("/Users?filter=userName%20eq%20%22%C3%A9LODIE@EXAMPLE.COM%22");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["totalResults"], 1, "{}", r.body);
    let r = scim.patch(
        &format!("/Users/{id}"),
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
               "Operations": [{"op": "replace", "path": "active", "value": false}]}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["active"], false);
    // A write of a User in a group answers with its groups, its creation time and the
    // next version, as a GET then reads them (the record is built, not read back).
    let g = scim.post(
        "/Groups",
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
               "displayName": "Admins", "members": [{"value": id}]}),
    );
    assert_eq!(g.status, 201, "{}", g.body);
    assert_eq!(g.body["members"][0]["value"], id.as_str(), "{}", g.body);
    let r = scim.patch(
        &format!("/Users/{id}"),
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
               "Operations": [{"op": "replace", "path": "active", "value": true}]}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["groups"][0]["value"], g.body["id"], "{}", r.body);
    assert_eq!(r.body["groups"][0]["display"], "Admins", "{}", r.body);
    assert_eq!(r.body["meta"]["version"], "W/\"3\"", "{}", r.body);
    assert_eq!(scim.get(&format!("/Users/{id}")).body, r.body);
    // A second user of the same name in another case is a conflict, not a 500.
    let r = scim.post(
        "/Users",
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
               "userName": "élodie@EXAMPLE.com"}),
    );
    assert_eq!(r.status, 409, "{}", r.body);
    // So is renaming another User to it (the update checks the name in its own statement).
    // `é` against the stored `É`: the test cluster's collation is C, so the unique index
    // on lower(user_name) folds ASCII only and does not see this conflict; the fold does.
    let other = scim.post(
        "/Users",
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
               "userName": "other@example.com"}),
    );
    assert_eq!(other.status, 201, "{}", other.body);
    let r = scim.patch(
        &format!("/Users/{}", other.body["id"].as_str().unwrap()),
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
               "Operations": [{"op": "replace", "path": "userName",
                               "value": "élodie@Example.com"}]}),
    );
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(r.body["scimType"], "uniqueness", "{}", r.body);

    // OAuth on the server: client_credentials, introspection.
    let token = cc_token(&server, &c.id, c.secret());
    let (status, v) = status_json(post_form(
        &server,
        "/oauth2/introspect",
        Some((&c.id, c.secret())),
        &[("token", &token)],
    ));
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["active"], true, "{v}");

    // Revoked by config, refused by the server (after its 1 s cache).
    s.config()
        .args(["revoke-token", "--id", &cli_id])
        .assert()
        .success();
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let r = scim.get(&format!("/Users/{id}"));
        if r.status == 401 {
            break;
        }
        assert!(Instant::now() < deadline, "still accepted: {}", r.status);
        std::thread::sleep(Duration::from_millis(50));
    }
    // /readyz reaches the database.
    let r = crate::support::http()
        .get(server.url("/readyz"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

#[test]
fn two_instances_on_one_database_issue_tokens_none_lost_none_twice() {
    let Some(s) = TestStore::init_postgres() else {
        return;
    };
    let c = cc_client(&s, &[READ], &[]);
    let a = Arc::new(server(&s));
    let b = Arc::new(server(&s));
    const THREADS: usize = 8;
    const EACH: usize = 10;
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|i| {
            let (a, b, c, barrier) = (a.clone(), b.clone(), c.clone(), barrier.clone());
            std::thread::spawn(move || {
                let (mine, other) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
                barrier.wait();
                (0..EACH)
                    .map(|_| {
                        let token = cc_token(mine, &c.id, c.secret());
                        // Committed before the response: the other instance knows it.
                        let (status, v) = status_json(post_form(
                            other,
                            "/oauth2/introspect",
                            Some((&c.id, c.secret())),
                            &[("token", &token)],
                        ));
                        assert_eq!(status, 200, "{v}");
                        assert_eq!(v["active"], true, "{v}");
                        v["token_id"].as_str().unwrap().to_string()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let ids: Vec<String> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("issuing thread"))
        .collect();
    let distinct: HashSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), THREADS * EACH, "a token id came back twice");
    let listed = s.json(&["list-tokens", "--client-id", &c.id]);
    let listed: HashSet<String> = listed
        .as_array()
        .expect("a list")
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect();
    for id in &ids {
        assert!(listed.contains(id), "{id} was answered but not stored");
    }
}

#[test]
fn a_revocation_on_one_instance_is_refused_by_the_other_within_a_second() {
    let Some(s) = TestStore::init_postgres() else {
        return;
    };
    let c = cc_client(&s, &[READ], &[]);
    let a = server(&s);
    let b = server(&s);
    let token = cc_token(&a, &c.id, c.secret());
    let scim_b = Scim::new(&b, &token);
    assert_eq!(scim_b.get("/Users").status, 200, "B accepts A's token");
    let r = post_form(
        &a,
        "/oauth2/revoke",
        Some((&c.id, c.secret())),
        &[("token", &token)],
    );
    assert_eq!(r.status().as_u16(), 200);
    let revoked = Instant::now();
    loop {
        if scim_b.get("/Users").status == 401 {
            break;
        }
        assert!(
            revoked.elapsed() < Duration::from_millis(1500),
            "B still accepts a token A revoked"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        revoked.elapsed() <= Duration::from_millis(1100),
        "{:?}",
        revoked.elapsed()
    );
}

#[test]
fn a_bad_url_or_bad_credentials_are_one_sentence_and_exit_non_zero() {
    let Some(s) = TestStore::empty_postgres() else {
        return;
    };
    let pg = s.pg.as_ref().unwrap();
    let mut wrong = url::Url::parse(&pg.url).unwrap();
    wrong.set_password(Some("not-the-password")).unwrap();
    for (db, says) in [
        (wrong.to_string(), "password authentication failed"),
        ("postgres://u@127.0.0.1:notaport/db".to_string(), "URL"),
        (format!("{}&pool_size=0", pg.url), "pool_size"),
    ] {
        let out = s
            .config_no_password()
            .env("SCIMGATE_DB", &db)
            .env("SCIMGATE_TOOL_PASSWORD", crate::support::TOOL_PASSWORD)
            .arg("list-tokens")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{db}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_one_sentence(&err);
        assert!(err.contains(says), "{db}: {err}");
        assert!(!err.contains("not-the-password"), "{err}");
        assert!(
            !err.contains(&pg.password()),
            "the URL's password in: {err}"
        );
    }
    // Nothing was written: the database is still empty, and `config init` works on it.
    let mut c = pg.client();
    let n: i64 = c
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
}

#[test]
fn copy_store_moves_a_sqlite_store_into_postgres_once() {
    let Some(pg) = TestStore::empty_postgres() else {
        return;
    };
    // A SQLite store with something in every kind of table.
    let s = TestStore::init_sqlite();
    let c = cc_client(&s, &[READ, WRITE], &[]);
    let (token, token_id) = s.issue(&c.id, &[]);
    crate::oauth_support::create_user(&s);
    let user_id = {
        let server = TestServer::start(&s.db, Clock::system());
        let scim = Scim::new(&server, &token);
        let r = scim.post(
            "/Users",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "bjensen"}),
        );
        assert_eq!(r.status, 201, "{}", r.body);
        let r = scim.post(
            "/Groups",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                   "displayName": "Admins", "members": [{"value": r.body["id"]}]}),
        );
        assert_eq!(r.status, 201, "{}", r.body);
        r.body["members"][0]["value"].as_str().unwrap().to_string()
    };
    let audit_before = s.audit().len();

    let to = pg.location();
    let copied = s.json(&["copy-store", "--from", s.db.to_str().unwrap(), "--to", &to]);
    assert_eq!(copied["tables"]["clients"], 1, "{copied}");
    assert_eq!(copied["tables"]["scim_resources"], 2, "{copied}");
    assert_eq!(copied["tables"]["scim_group_members"], 1, "{copied}");
    assert_eq!(copied["tables"]["users"], 1, "{copied}");
    assert!(
        copied["tables"]["tokens"].as_u64().unwrap() >= 1,
        "{copied}"
    );
    assert!(
        !copied
            .to_string()
            .contains(&pg.pg.as_ref().unwrap().password()),
        "{copied}"
    );

    // The PostgreSQL store is the same store: the tool password, the token, the users.
    let listed = pg.json(&["list-tokens"]);
    assert!(listed.to_string().contains(&token_id), "{listed}");
    assert_eq!(pg.audit().len(), audit_before, "the audit log moved whole");
    let server = server(&pg);
    let scim = Scim::new(&server, &token);
    let r = scim.get(&format!("/Users/{user_id}"));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["groups"][0]["display"], "Admins", "{}", r.body);
    // New audit events follow the copied ones (the sequence moved past them).
    pg.cc_client("after the copy");

    // A second copy is refused: the target is not empty; nothing written.
    let tokens_before = pg.json(&["list-tokens", "--all"]).as_array().unwrap().len();
    let err = s.fails(
        &["copy-store", "--from", s.db.to_str().unwrap(), "--to", &to],
        1,
    );
    assert_one_sentence(&err);
    assert!(err.contains("not empty"), "{err}");
    let tokens_after = pg.json(&["list-tokens", "--all"]).as_array().unwrap().len();
    assert_eq!(tokens_before, tokens_after);
    // Into a SQLite file: refused as a usage error.
    let err = s.fails(
        &[
            "copy-store",
            "--from",
            s.db.to_str().unwrap(),
            "--to",
            "other.db",
        ],
        2,
    );
    assert!(err.contains("postgres://"), "{err}");
}

/// A `scimgate serve` process on the store at `db`, ticking every second and posting its
/// alerts to `webhook`; killed (SIGKILL) when dropped.
struct Instance {
    child: std::process::Child,
    base: String,
}

impl Instance {
    fn start(s: &TestStore, webhook: &str) -> Instance {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_scimgate"))
            .arg("serve")
            .current_dir(s.dir.path())
            .env_clear()
            .env("SCIMGATE_DB", s.location())
            .env("SCIMGATE_LISTEN", format!("127.0.0.1:{port}"))
            .env("SCIMGATE_MONITOR_TICK", "1s")
            .env("SCIMGATE_WEBHOOK_URL", webhook)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start scimgate serve");
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while crate::support::http()
            .get(format!("{base}/readyz"))
            .send()
            .map(|r| r.status() != 200)
            .unwrap_or(true)
        {
            assert!(Instant::now() < deadline, "scimgate serve did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Instance { child, base }
    }

    fn get(&self, path: &str, token: &str) -> u16 {
        crate::support::http()
            .get(format!("{}/scim/v2{path}", self.base))
            .bearer_auth(token)
            .send()
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The monitor's failover across two server processes on one database:
/// - heartbeats seen by every instance count: a refused call on the instance that does not
///   tick makes the one that does alert;
/// - `kill -9` of the ticking instance while the IdP keeps calling: the other takes the
///   lease within two ticks and goes on from the stored states, so the alert already sent
///   is not sent again, and the next change (the IdP recovers) is alerted, once.
#[test]
fn the_monitor_fails_over_when_its_instance_is_killed_and_alerts_once() {
    let Some(s) = TestStore::init_postgres() else {
        return;
    };
    let hook = crate::monitor::Receiver::start(0);
    let c = cc_client(&s, &[READ], &[]);
    let (first, first_id) = s.issue(&c.id, &[]);
    let one = Instance::start(&s, &hook.url);
    let two = Instance::start(&s, &hook.url);
    assert_eq!(one.get("/Users", &first), 200);
    assert_eq!(two.get("/Users", &first), 200);

    // Which process ticks: the lease's holder names its pid.
    let mut db = s.pg.as_ref().unwrap().client();
    let holder = |db: &mut postgres::Client| -> String {
        db.query_opt("SELECT holder FROM leases WHERE name = 'monitor'", &[])
            .unwrap()
            .map(|r| r.get(0))
            .unwrap_or_default()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let leader_pid = loop {
        let h = holder(&mut db);
        if let Some(pid) = h.split(':').nth(1) {
            break pid.parse::<u32>().unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "no instance took the monitor lease"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let (mut leader, follower) = if one.child.id() == leader_pid {
        (one, two)
    } else {
        assert_eq!(two.child.id(), leader_pid, "the holder is one of the two");
        (two, one)
    };

    // The token is revoked; the IdP's call on the follower is refused, and the leader
    // alerts that the client is failing.
    s.config()
        .args(["revoke-token", "--id", &first_id])
        .assert()
        .success();
    std::thread::sleep(Duration::from_millis(1200)); // the follower's token cache
    assert_eq!(follower.get("/Users", &first), 401);
    let failing = |events: &[serde_json::Value]| {
        events
            .iter()
            .filter(|e| e["event"] == "state_change" && e["details"]["to"] == "failing")
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while failing(&hook.events()) == 0 {
        assert!(Instant::now() < deadline, "no alert: {:?}", hook.events());
        std::thread::sleep(Duration::from_millis(100));
    }

    // kill -9 of the leader while the IdP keeps calling (refused: still failing).
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let caller = {
        let (calls, base, token) = (calls.clone(), follower.base.clone(), first.clone());
        std::thread::spawn(move || {
            while calls.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = crate::support::http()
                    .get(format!("{base}/scim/v2/Users"))
                    .bearer_auth(&token)
                    .send();
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    leader.child.kill().unwrap();
    leader.child.wait().unwrap();
    let killed = Instant::now();
    let follower_pid = follower.child.id().to_string();
    while holder(&mut db).split(':').nth(1) != Some(follower_pid.as_str()) {
        assert!(
            killed.elapsed() < Duration::from_secs(4),
            "the other instance did not take over within two ticks (lease 2 s, tick 1 s)"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let took_over = killed.elapsed();
    calls.store(false, std::sync::atomic::Ordering::Relaxed);
    caller.join().unwrap();

    // The IdP gets a new token: the new leader alerts the recovery, once; the failing
    // alert was not sent again.
    let (second, _) = s.issue(&c.id, &[]);
    assert_eq!(follower.get("/Users", &second), 200);
    let recovered = |events: &[serde_json::Value]| {
        events
            .iter()
            .filter(|e| {
                e["event"] == "state_change"
                    && e["details"]["from"] == "failing"
                    && e["details"]["to"] == "healthy"
            })
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while recovered(&hook.events()) == 0 {
        assert!(
            Instant::now() < deadline,
            "no recovery alert: {:?}",
            hook.events()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(3)); // a few more ticks: nothing repeated
    let events = hook.events();
    assert_eq!(failing(&events), 1, "the failing alert, once: {events:?}");
    assert_eq!(
        recovered(&events),
        1,
        "the recovery alert, once: {events:?}"
    );
    eprintln!("the monitor lease moved {took_over:?} after kill -9");
}

/// A TCP relay between the server and the database that the test can cut and restore:
/// while cut, it refuses connections and has closed the ones it carried.
struct Relay {
    port: u16,
    upstream: std::net::SocketAddr,
    up: Arc<std::sync::atomic::AtomicBool>,
    open: Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Relay {
    fn start(upstream: std::net::SocketAddr) -> Relay {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut r = Relay {
            port,
            upstream,
            up: Arc::new(std::sync::atomic::AtomicBool::new(true)),
            open: Arc::default(),
            thread: None,
        };
        r.listen();
        r
    }

    fn listen(&mut self) {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind(("127.0.0.1", self.port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        self.up.store(true, Ordering::SeqCst);
        let (up, open, upstream) = (self.up.clone(), self.open.clone(), self.upstream);
        self.thread = Some(std::thread::spawn(move || {
            while up.load(Ordering::SeqCst) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                client.set_nonblocking(false).unwrap();
                let Ok(server) = std::net::TcpStream::connect(upstream) else {
                    continue;
                };
                open.lock().unwrap().push(client.try_clone().unwrap());
                open.lock().unwrap().push(server.try_clone().unwrap());
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        }));
    }

    fn cut(&mut self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }

    fn restore(&mut self) {
        self.listen();
    }
}

#[test]
fn readyz_fails_while_the_database_is_unreachable_and_the_server_recovers_by_itself() {
    let Some(s) = TestStore::init_postgres() else {
        return;
    };
    let c = cc_client(&s, &[READ], &[]);
    let (token, _) = s.issue(&c.id, &[]);
    // The server reaches the database through a relay, with a 2 s timeout.
    let mut url = url::Url::parse(&s.location()).unwrap();
    let upstream = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
    let mut relay = Relay::start(upstream.parse().unwrap());
    url.set_port(Some(relay.port)).unwrap();
    let query = format!("{}&timeout=2", url.query().unwrap_or("sslmode=prefer"));
    url.set_query(Some(&query));
    let server = TestServer::start_at(url.as_str(), Clock::system(), RawSettings::default());
    let scim = Scim::new(&server, &token);
    let ready = || {
        crate::support::http()
            .get(server.url("/readyz"))
            .send()
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    };
    assert_eq!(ready(), 200);
    assert_eq!(scim.get("/Users").status, 200);

    relay.cut();
    std::thread::sleep(Duration::from_millis(1200)); // past the token cache
    let asked = Instant::now();
    let r = crate::support::http()
        .get(server.url("/readyz"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);
    let body: serde_json::Value = r.json().unwrap();
    assert_eq!(body["status"], "unavailable", "{body}");
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "{:?}",
        asked.elapsed()
    );
    let asked = Instant::now();
    let r = scim.get("/Users");
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "{:?}",
        asked.elapsed()
    );

    relay.restore();
    let deadline = Instant::now() + Duration::from_secs(10);
    while ready() != 200 {
        assert!(Instant::now() < deadline, "the server did not recover");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(scim.get("/Users").status, 200);
}

/// The authorization pages across two instances, as a load balancer without stickiness
/// sends them: the login page from A, the sign-in posted to B, the consent posted to A,
/// the code redeemed at B, the access token used on A. (A browser's cookies go to every
/// port of a host, as to every instance behind one name.)
#[test]
fn a_sign_in_on_one_instance_holds_on_the_other() {
    use crate::oauth_support::{
        PASSWORD, REDIRECT, USER, VERIFIER, auth_query, browser, code_client, create_user,
        get_authorize, hidden_value, location_params, param, submit,
    };
    let Some(s) = TestStore::init_postgres() else {
        return;
    };
    create_user(&s);
    let c = code_client(&s, &[]);
    let (a, b) = (server(&s), server(&s));
    let browser = browser();
    let r = get_authorize(&browser, &a, &auth_query(&c.id, &[]));
    assert_eq!(r.status(), 200);
    let login = r.text().unwrap();
    assert!(!hidden_value(&login, "csrf_token").is_empty());
    // The anonymous session's CSRF token, made on A, is accepted by B.
    let r = submit(
        &browser,
        &b,
        &login,
        &[
            ("action", "login"),
            ("username", USER),
            ("password", PASSWORD),
        ],
    );
    assert_eq!(r.status(), 200, "sign-in on B");
    let consent = r.text().unwrap();
    assert!(consent.contains("Signed in as alice"), "{consent}");
    // The signed-in session, made on B, holds on A.
    let r = submit(
        &browser,
        &a,
        &consent,
        &[("action", "consent"), ("decision", "allow")],
    );
    let p = location_params(&r);
    let code = param(&p, "code").expect("a code from A").to_string();
    let (status, v) = status_json(post_form(
        &b,
        "/oauth2/token",
        Some((&c.id, c.secret())),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    ));
    assert_eq!(status, 200, "the code redeemed at B: {v}");
    let token = v["access_token"].as_str().unwrap();
    assert_eq!(Scim::new(&a, token).get("/Users").status, 200);
    // The consent given on A is remembered on B: straight back with a code.
    let r = get_authorize(&browser, &b, &auth_query(&c.id, &[]));
    assert!(param(&location_params(&r), "code").is_some());
}

#[test]
fn a_scim_write_on_one_instance_is_read_by_the_other_within_a_second() {
    let Some(s) = TestStore::init_postgres() else {
        return;
    };
    let c = cc_client(&s, &[READ, WRITE], &[]);
    let a = server(&s);
    let b = server(&s);
    let token = cc_token(&a, &c.id, c.secret());
    let (scim_a, scim_b) = (Scim::new(&a, &token), Scim::new(&b, &token));
    let created = scim_a.post(
        "/Users",
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
               "userName": "shared@example.com", "name": {"givenName": "Before"}}),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let path = format!("/Users/{}", created.body["id"].as_str().expect("id"));
    let filter = "/Users?filter=userName%20eq%20%22shared@example.com%22";
    // A's GET and filter keep the User in A's resource cache.
    for _ in 0..2 {
        assert_eq!(scim_a.get(&path).body["name"]["givenName"], "Before");
        assert_eq!(
            scim_a.get(filter).body["Resources"][0]["name"]["givenName"],
            "Before"
        );
    }
    let patched = scim_b.patch(
        &path,
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
               "Operations": [{"op": "replace", "path": "name.givenName", "value": "After"}]}),
    );
    assert_eq!(patched.status, 200, "{}", patched.body);
    let written = Instant::now();
    // A lookup by userName asks the store which version is current: never stale.
    let found = scim_a.get(filter);
    assert_eq!(found.body["Resources"][0]["name"]["givenName"], "After");
    assert_eq!(found.body["Resources"][0]["meta"]["version"], "W/\"2\"");
    // A GET by id may serve A's rendering for at most token_cache_ttl (1 s).
    loop {
        let got = scim_a.get(&path);
        if got.body["name"]["givenName"] == "After" {
            assert_eq!(got.header("etag").as_deref(), Some("W/\"2\""));
            break;
        }
        assert!(
            written.elapsed() < Duration::from_millis(1500),
            "A still serves the User as it was before B's PATCH"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        written.elapsed() <= Duration::from_millis(1100),
        "{:?}",
        written.elapsed()
    );
}
