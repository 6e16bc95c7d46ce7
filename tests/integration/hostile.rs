//! Hostile input and incidents (issue 11): what an attacker can do with wrong credentials,
//! forwarded addresses and oversized requests, each reproduced over real HTTP.

use std::time::{Duration as StdDuration, Instant};

use scimgate::time::{Clock, Duration};

use crate::oauth_support::*;
use crate::support::{TestServer, TestStore};
use reqwest::blocking::{Client as Http, Response};
use scimgate::model::AuditAction;

const CC: [(&str, &str); 1] = [("grant_type", "client_credentials")];

/// Regression: ten wrong secrets from the client's own address locked it out for 15
/// minutes, refusing the right secret too. Now no number of failures refuses it.
#[test]
fn a_right_client_secret_is_never_refused_after_wrong_ones() {
    let s = TestStore::init();
    let c = cc_client(&s, &[READ], &[]);
    let server = TestServer::start(&s.db, Clock::system());
    // 24 wrong secrets at once, from the address the IdP calls from.
    std::thread::scope(|scope| {
        for _ in 0..24 {
            scope.spawn(|| {
                let r = post_form(&server, "/oauth2/token", Some((&c.id, "sgcs_wrong")), &CC);
                assert_oauth_error(r, 401, "invalid_client");
            });
        }
    });
    let started = Instant::now();
    let r = post_form(&server, "/oauth2/token", Some((&c.id, c.secret())), &CC);
    assert_eq!(r.status(), 200, "{}", r.text().unwrap());
    assert!(
        started.elapsed() < StdDuration::from_millis(500),
        "a right secret is not slowed either: {:?}",
        started.elapsed()
    );
    // A failure is slowed (the attacker's answer waits), not the client's.
    let started = Instant::now();
    let r = post_form(&server, "/oauth2/token", Some((&c.id, "sgcs_wrong")), &CC);
    assert_oauth_error(r, 401, "invalid_client");
    assert!(
        started.elapsed() >= StdDuration::from_millis(500),
        "failures are slowed"
    );
    let metrics = server.get_text("/metrics");
    assert!(
        metrics.contains("scimgate_client_auth_failures_total 25"),
        "every failure counted: {metrics}"
    );
    assert!(
        metrics.contains("scimgate_log_lines_dropped_total 0"),
        "the log writer's drops are reported: {metrics}"
    );
}

/// Regression: a client id and secret sent swapped put the secret in clear into the
/// append-only audit log (and the server log).
#[test]
fn a_secret_sent_as_the_client_id_is_never_written_down() {
    let s = TestStore::init();
    let c = cc_client(&s, &[READ], &[]);
    let server = TestServer::start(&s.db, Clock::system());
    let r = post_form(&server, "/oauth2/token", Some((c.secret(), &c.id)), &CC);
    assert_oauth_error(r, 401, "invalid_client");
    let audit = serde_json::to_string(&s.audit()).unwrap();
    assert!(!audit.contains(c.secret()), "{audit}");
    assert!(audit.contains("unknown (fingerprint"), "{audit}");
}

/// Regression: five wrong passwords from anywhere locked the account everywhere; behind a
/// proxy, five wrong sign-ins with made-up names locked every account.
#[test]
fn sign_in_back_off_is_per_account_and_address_and_proxies_are_believed_only_when_trusted() {
    let s = TestStore::init();
    create_user(&s);
    let c = code_client(&s, &[]);
    let clock = Clock::manual(1_900_000_000);
    let server = TestServer::start_with(
        &s.db,
        clock.clone(),
        scimgate::settings::RawSettings {
            login_max_failures: Some(3),
            trusted_proxies: Some("127.0.0.1".into()),
            ..Default::default()
        },
    );
    let sign_in = |b: &reqwest::blocking::Client, user: &str, password: &str| {
        let page = get_authorize(b, &server, &auth_query(&c.id, &[]))
            .text()
            .unwrap();
        let r = submit(
            b,
            &server,
            &page,
            &[
                ("action", "login"),
                ("username", user),
                ("password", password),
            ],
        );
        let status = r.status().as_u16();
        (status, r.text().unwrap())
    };
    // The attacker, behind the proxy (127.0.0.1 is trusted), at 203.0.113.9.
    let attacker = browser_with(None, &[("x-forwarded-for", "203.0.113.9")]);
    for _ in 0..4 {
        assert_eq!(sign_in(&attacker, USER, "wrong-password").0, 401);
    }
    let (status, body) = sign_in(&attacker, USER, PASSWORD);
    assert_eq!(status, 429, "the guesser's own address backs off: {body}");
    assert!(body.contains("Try again in"), "{body}");
    // Made-up names from the attacker do not touch anyone else.
    for i in 0..6 {
        sign_in(&attacker, &format!("nobody{i}"), "x");
    }
    // The owner, behind the same proxy at another address, signs in at once.
    let owner = browser_with(None, &[("x-forwarded-for", "198.51.100.4")]);
    let (status, body) = sign_in(&owner, USER, PASSWORD);
    assert_eq!(status, 200, "the owner is not locked out: {body}");
    assert!(body.contains("Allow"));
    // From an untrusted peer the header is ignored: 127.0.0.2 is its own address, so a
    // forged header cannot escape the attacker's back-off nor blame someone else.
    let forger = browser_with(Some("127.0.0.2"), &[("x-forwarded-for", "198.51.100.4")]);
    for _ in 0..4 {
        sign_in(&forger, USER, "wrong-password");
    }
    assert_eq!(sign_in(&forger, USER, PASSWORD).0, 429);
    assert_eq!(
        sign_in(&owner, USER, PASSWORD).0,
        200,
        "the forged address was not blamed"
    );
    // The windows run out.
    clock.advance(Duration::minutes(1));
    assert_eq!(sign_in(&attacker, USER, PASSWORD).0, 200);
    // Unknown names are audited by fingerprint only (a password typed as a name).
    let audit = serde_json::to_string(&s.audit()).unwrap();
    assert!(!audit.contains("nobody0"), "{audit}");
    assert!(audit.contains("failed sign-in as `alice`"), "{audit}");
}

/// A store with the test account and an authorization-code client, and a server on it
/// that believes `X-Forwarded-For` from loopback (a proxy), so a test can sign in from
/// any address.
fn sign_in_pages_behind_a_proxy() -> (TestStore, Registered, TestServer) {
    let s = TestStore::init();
    create_user(&s);
    let c = code_client(&s, &[]);
    let server = TestServer::start_with(
        &s.db,
        Clock::system(),
        scimgate::settings::RawSettings {
            trusted_proxies: Some("127.0.0.1".into()),
            ..Default::default()
        },
    );
    (s, c, server)
}

/// Regression: 200 wrong passwords sent at once from one address were all verified at
/// once, 19 MiB of argon2 each: the server went from 14 MiB to 3,833 MiB resident, with both
/// cores busy for 13-18 s. The back-off could not help, as every attempt had passed its
/// check before the first failure was counted. Now a few are verified at a time, at most
/// two of one address are checked or waiting (a third is refused at once, 429), the
/// back-off is asked again when an attempt's turn comes, and beyond a short queue the rest
/// are refused at once (503); every refusal unchecked is counted. So the owner, signing
/// in from another address during the flood, is let in.
#[test]
fn a_flood_of_sign_ins_is_verified_a_few_at_a_time() {
    let (_store, c, server) = sign_in_pages_behind_a_proxy();
    let attacker = browser_with(None, &[("x-forwarded-for", "203.0.113.9")]);
    let page = get_authorize(&attacker, &server, &auth_query(&c.id, &[]))
        .text()
        .unwrap();
    let owner = browser_with(None, &[("x-forwarded-for", "198.51.100.4")]);
    let owner_page = get_authorize(&owner, &server, &auth_query(&c.id, &[]))
        .text()
        .unwrap();
    const FLOOD: usize = 60;
    // What each flooded sign-in came to: its status, and for a 429 whether the gate
    // refused it (its address had two being checked) or the back-off did.
    let (answers, owner_status): (Vec<(u16, bool)>, u16) = std::thread::scope(|scope| {
        let sent: Vec<_> = (0..FLOOD)
            .map(|_| {
                scope.spawn(|| {
                    let fields = [
                        ("action", "login"),
                        ("username", USER),
                        ("password", "wrong-password"),
                    ];
                    let r = submit(&attacker, &server, &page, &fields);
                    let status = r.status().as_u16();
                    let body = r.text().unwrap();
                    let gate = body.contains("being checked");
                    match status {
                        401 => assert!(body.contains("Wrong user name or password"), "{body}"),
                        429 => assert!(gate || body.contains("Try again in"), "{body}"),
                        503 => assert!(body.contains("too many sign-ins at once"), "{body}"),
                        other => panic!("a flooded sign-in answered {other}: {body}"),
                    }
                    (status, gate)
                })
            })
            .collect();
        // The owner signs in from another address while the flood is answered.
        std::thread::sleep(StdDuration::from_millis(20));
        let fields = [
            ("action", "login"),
            ("username", USER),
            ("password", PASSWORD),
        ];
        let r = submit(&owner, &server, &owner_page, &fields);
        let owner_status = r.status().as_u16();
        assert!(r.text().unwrap().contains("Allow"), "the owner is let in");
        (
            sent.into_iter().map(|h| h.join().unwrap()).collect(),
            owner_status,
        )
    });
    assert_eq!(owner_status, 200);
    let count = |status: u16| answers.iter().filter(|(s, _)| *s == status).count();
    let statuses: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
    let metric = |name: &str| metric(&server, name);
    // Only the attempts verified fail as wrong passwords: a few, up to the five the
    // back-off allows and those whose turn came before it opened. Before, all sixty.
    let verified = metric("scimgate_login_failures_total");
    assert_eq!(verified as usize, count(401), "{statuses:?}");
    assert!(
        (1..=12).contains(&verified),
        "{verified} verified of {FLOOD}: {statuses:?}"
    );
    assert_eq!(count(401) + count(429) + count(503), FLOOD);
    let refused_by_gate = answers.iter().filter(|(_, gate)| *gate).count();
    assert!(refused_by_gate > 0, "{statuses:?}");
    assert_eq!(
        metric("scimgate_login_shed_total") as usize,
        count(503) + refused_by_gate
    );
}

/// The value of counter `name` on the server's `/metrics`.
fn metric(server: &TestServer, name: &str) -> u64 {
    let text = server.get_text("/metrics");
    let line = text
        .lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("{name} in {text}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

/// Sign in as the test account on the authorization page with `password`.
fn sign_in(b: &Http, server: &TestServer, client: &str, password: &str) -> Response {
    let page = get_authorize(b, server, &auth_query(client, &[]))
        .text()
        .unwrap();
    let fields = [
        ("action", "login"),
        ("username", USER),
        ("password", password),
    ];
    submit(b, server, &page, &fields)
}

/// Regression: wrong passwords sent from many addresses at once kept the sign-in queue
/// full, and the owner's right password was answered 503 (or 429 from an address the
/// flood shared, behind one NAT) for as long as the flood lasted. A browser that signed
/// in before now holds a known-device mark and is checked in a queue of its own.
#[test]
fn a_known_device_signs_in_through_a_flood_from_many_addresses() {
    let (s, c, server) = sign_in_pages_behind_a_proxy();
    // The owner signed in once, from the address the flood will share.
    const NAT: &str = "198.51.100.4";
    let owner = browser_with(None, &[("x-forwarded-for", NAT)]);
    let first = sign_in(&owner, &server, &c.id, PASSWORD);
    assert_eq!(first.status(), 200);
    let mark = first
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|v| v.starts_with("scimgate_device=d1."))
        .expect("a known-device mark");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=7776000"] {
        assert!(mark.contains(attribute), "{attribute} in {mark}");
    }
    let attacker = browser();
    let page = get_authorize(&attacker, &server, &auth_query(&c.id, &[]))
        .text()
        .unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (stranger, owner_status, owner_body) = std::thread::scope(|scope| {
        // Enough senders that the queue stays full while some of them wait out the delay
        // of a verified failure (0.2 s), each pausing after a refusal so that the server's
        // worker keeps up with them (the queue, not the worker, is what fills).
        let flood: Vec<_> = (0..100)
            .map(|t| {
                let (attacker, page, stop, server) = (&attacker, &page, &stop, &server);
                scope.spawn(move || {
                    let fields = [
                        ("action", "login"),
                        ("username", USER),
                        ("password", "wrong-password"),
                    ];
                    let mut n = 0u32;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        // A new address each time, and now and then the owner's.
                        let ip = if n % 8 == 0 {
                            NAT.to_string()
                        } else {
                            format!("10.{t}.{}.{}", n / 250 % 250, n % 250)
                        };
                        let r = submit_request(attacker, server, page, &fields)
                            .header("x-forwarded-for", ip)
                            .send()
                            .unwrap();
                        let status = r.status().as_u16();
                        assert!([401, 429, 503].contains(&status), "{status}");
                        if status != 401 {
                            std::thread::sleep(StdDuration::from_millis(100));
                        }
                        n += 1;
                    }
                })
            })
            .collect();
        // Someone without a mark, at an address of their own, with the right password:
        // refused at once while the queue is full (a new browser each time, as one let
        // in would hold a mark).
        let gate = &server.state.password_gate;
        let deadline = Instant::now() + StdDuration::from_secs(30);
        let mut stranger = Vec::new();
        while !stranger.contains(&503) && stranger.len() < 5 {
            while gate.waiting() < 32 {
                assert!(
                    Instant::now() < deadline,
                    "the flood never filled the queue"
                );
                std::thread::sleep(StdDuration::from_millis(5));
            }
            let newcomer = browser_with(None, &[("x-forwarded-for", "192.0.2.77")]);
            let r = sign_in(&newcomer, &server, &c.id, PASSWORD);
            stranger.push(r.status().as_u16());
        }
        // The owner, from the flood's address, is let in.
        let r = sign_in(&owner, &server, &c.id, PASSWORD);
        let owner_status = r.status().as_u16();
        let owner_body = r.text().unwrap();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for t in flood {
            t.join().unwrap();
        }
        (stranger, owner_status, owner_body)
    });
    assert!(stranger.contains(&503), "{stranger:?}");
    assert_eq!(owner_status, 200, "{owner_body}");
    assert!(owner_body.contains("Allow"), "{owner_body}");
    let audit = serde_json::to_string(&s.audit()).unwrap();
    assert!(
        audit.contains(&format!("signed in from {NAT} (a known device)")),
        "the second sign-in is audited as a known device's: {audit}"
    );
}

/// A known-device mark is a place in a queue, not a way around the password: its own
/// wrong passwords back it off after `login_max_failures`, as an address would be, and
/// that refuses nobody else.
#[test]
fn a_known_device_mark_backs_off_after_its_own_failures() {
    let s = TestStore::init();
    create_user(&s);
    let c = code_client(&s, &[]);
    let server = TestServer::start_with(
        &s.db,
        Clock::manual(1_900_000_000),
        scimgate::settings::RawSettings {
            login_max_failures: Some(3),
            ..Default::default()
        },
    );
    let holder = browser();
    assert_eq!(sign_in(&holder, &server, &c.id, PASSWORD).status(), 200);
    for _ in 0..4 {
        let r = sign_in(&holder, &server, &c.id, "wrong-password");
        assert_eq!(r.status(), 401, "{}", r.text().unwrap());
    }
    let r = sign_in(&holder, &server, &c.id, PASSWORD);
    assert_eq!(r.status(), 429);
    assert!(
        r.text().unwrap().contains("from this browser"),
        "the mark is backed off"
    );
    // The same address without the mark: its failures were the mark's, not its own.
    let other = browser();
    assert_eq!(sign_in(&other, &server, &c.id, PASSWORD).status(), 200);
}

/// Regression: thirty-two searches sent at once by one IdP each took a thread of the
/// blocking pool, and so most of the core: every other client's token requests waited up
/// to two seconds. Lists and searches that may scan now run a few at a time
/// (`AppState::search_gate`), at most `SEARCHES_PER_CLIENT` of one client running or
/// waiting; one more from that client is refused (429, `Retry-After`), another client's
/// waits its turn, and point lookups are not held up at all. The turns are taken here
/// directly, so that the test does not depend on timing.
#[test]
fn a_client_has_a_few_searches_at_once_and_others_wait_their_turn() {
    use scimgate::model::Scope;
    use scimgate::state::SEARCHES_PER_CLIENT;
    use std::future::Future;
    use std::task::{Context, Waker};
    let s = TestStore::init();
    let (a, a_token) = crate::support::client_with_token(&s.db, &[Scope::DirectoryRead], "1h");
    let (_, b_token) = crate::support::client_with_token(&s.db, &[Scope::DirectoryRead], "1h");
    let server = TestServer::start(&s.db, Clock::system());
    let scan = r#"/Users?filter=name.familyName%20co%20%22x%22"#;
    let gate = &server.state.search_gate;
    // Client a: one search running, the others waiting.
    let running = futures_executor::block_on(gate.turn(Some(&a))).unwrap();
    let mut cx = Context::from_waker(Waker::noop());
    let mut waiting: Vec<_> = (1..SEARCHES_PER_CLIENT)
        .map(|_| Box::pin(gate.turn(Some(&a))))
        .collect();
    for w in &mut waiting {
        assert!(w.as_mut().poll(&mut cx).is_pending());
    }
    let a_scim = crate::support::Scim::new(&server, &a_token);
    let r = a_scim.get(scan);
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.header("retry-after").as_deref(), Some("1"));
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("wait for their answers"),
        "{}",
        r.body
    );
    // A point lookup by the same client is answered at once.
    let r = a_scim.get("/Users?filter=userName%20eq%20%22nobody%40example.com%22");
    assert_eq!(r.status, 200, "{}", r.body);
    // Client b's search waits for a turn, and is not refused.
    std::thread::scope(|scope| {
        let b = scope.spawn(|| crate::support::Scim::new(&server, &b_token).get(scan));
        std::thread::sleep(StdDuration::from_millis(300));
        assert!(!b.is_finished(), "b's search waits while a's run");
        // a's searches end: b's has its turn.
        drop(waiting);
        drop(running);
        let r = b.join().unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["totalResults"], 0);
    });
    assert_eq!(a_scim.get(scan).status, 200, "a's turns came back");
    let metrics = server.get_text("/metrics");
    assert!(
        metrics.contains("scimgate_scim_searches_shed_total 1"),
        "{metrics}"
    );
}

/// Regression: a form of 100,000 parameters (0.9 MB) took 53 s of CPU before client
/// authentication; two of them stalled both workers.
#[test]
fn a_form_of_a_hundred_thousand_parameters_is_refused_at_once() {
    let s = TestStore::init();
    let server = TestServer::start(&s.db, Clock::system());
    let body: String = (0..100_000).map(|i| format!("p{i}=v&")).collect();
    let started = Instant::now();
    let r = crate::support::http()
        .post(server.url("/oauth2/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .unwrap();
    let v = assert_oauth_error(r, 400, "invalid_request");
    assert!(
        v["error_description"]
            .as_str()
            .unwrap()
            .contains("more than 64")
    );
    assert!(
        started.elapsed() < StdDuration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

/// `scope=+` (only blanks) is not "no scope requested, take all": it is refused, at the
/// token endpoint and at the authorization endpoint alike.
#[test]
fn an_empty_scope_is_refused() {
    let s = TestStore::init();
    let c = cc_client(&s, &[READ], &[]);
    let server = TestServer::start(&s.db, Clock::system());
    let r = post_form(
        &server,
        "/oauth2/token",
        Some((&c.id, c.secret())),
        &[("grant_type", "client_credentials"), ("scope", " ")],
    );
    assert_oauth_error(r, 400, "invalid_scope");
    let web = code_client(&s, &[]);
    let r = get_authorize(&browser(), &server, &auth_query(&web.id, &[("scope", " ")]));
    let params = location_params(&r);
    assert_eq!(param(&params, "error"), Some("invalid_scope"));
}

/// Responses carry `nosniff`; SCIM answers are never cached.
#[test]
fn security_headers() {
    let s = TestStore::init();
    let client = s.cc_client("headers");
    let (token, _) = s.issue(&client, &[]);
    let server = TestServer::start(&s.db, Clock::system());
    let r = crate::support::http()
        .get(server.url("/scim/v2/Users"))
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert_eq!(r.headers()["cache-control"], "no-store");
    let r = crate::support::http()
        .get(server.url("/healthz"))
        .send()
        .unwrap();
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert!(
        r.headers().get("strict-transport-security").is_none(),
        "not over plain HTTP"
    );
}

/// A client_credentials token for `c`, or the refusal's status.
fn cc_token(server: &TestServer, c: &Registered) -> Result<String, u16> {
    let r = post_form(server, "/oauth2/token", Some((&c.id, c.secret())), &CC);
    let (status, v) = status_json(r);
    match status {
        200 => Ok(v["access_token"].as_str().unwrap().to_string()),
        other => Err(other),
    }
}

fn scim_status(server: &TestServer, token: &str) -> u16 {
    crate::support::http()
        .get(server.url("/scim/v2/Users"))
        .bearer_auth(token)
        .send()
        .unwrap()
        .status()
        .as_u16()
}

/// Regression: tokens minted while `delete-api-client` ran (authenticated through the
/// client cache, committed after the bulk revoke) stayed valid for their whole lifetime.
/// Now, once the command returns, no token the client ever got works, however it raced.
#[test]
fn deleting_a_client_under_load_leaves_no_token_alive() {
    let s = TestStore::init();
    let c = cc_client(&s, &[READ], &[]);
    let server = TestServer::start(&s.db, Clock::system());
    let cli_token = s.issue(&c.id, &[]).0;
    assert_eq!(scim_status(&server, &cli_token), 200);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let minted = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..3 {
            scope.spawn(|| {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    // Each minted token is used once at once (it may already be dead if
                    // the cut-off committed in between; what counts is after).
                    if let Ok(t) = cc_token(&server, &c) {
                        let status = scim_status(&server, &t);
                        minted.lock().unwrap().push((t, status));
                    }
                }
            });
        }
        std::thread::sleep(StdDuration::from_millis(300));
        s.config()
            .args(["delete-api-client", "-i", &c.id])
            .assert()
            .success();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let minted = minted.into_inner().unwrap();
    assert!(
        minted.iter().filter(|(_, status)| *status == 200).count() > 5,
        "tokens were minted and worked during the test: {}",
        minted.len()
    );
    let minted: Vec<String> = minted.into_iter().map(|(t, _)| t).collect();
    for t in minted.iter().chain([&cli_token]) {
        assert_eq!(
            scim_status(&server, t),
            401,
            "a token of a deleted client still works"
        );
    }
    let audit = s.audit();
    assert_eq!(
        audit
            .iter()
            .filter(|e| e["action"] == "client.delete" || e["action"] == "token.revoke")
            .count(),
        1,
        "one audit event, however many tokens"
    );
}

/// `rotate-client-secret`, `revoke-token --client-id X --all` and `disable-api-client`
/// each cut the client off at once: its tokens die everywhere, and the old secret mints
/// nothing; `enable-api-client` lets it be issued new tokens, the old stay dead.
#[test]
fn cutting_a_client_off_is_immediate_and_one_event() {
    let s = TestStore::init();
    let mut c = cc_client(&s, &[READ], &[]);
    let server = TestServer::start(&s.db, Clock::system());

    // Rotation: the old secret's tokens die with it.
    let before = cc_token(&server, &c).unwrap();
    let v = s.json(&["rotate-client-secret", "-i", &c.id]);
    assert_eq!(scim_status(&server, &before), 401);
    assert_eq!(
        cc_token(&server, &c),
        Err(401),
        "the old secret mints nothing"
    );
    c.secret = Some(v["client_secret"].as_str().unwrap().to_string());
    let fresh = cc_token(&server, &c).unwrap();
    assert_eq!(scim_status(&server, &fresh), 200);

    // Revoke all: one step, one event; new tokens can be had.
    let audited = s.audit().len();
    let v = s.json(&["revoke-token", "--client-id", &c.id, "--all"]);
    assert_eq!(v["revoked_live_tokens"], 1, "{v}");
    assert_eq!(scim_status(&server, &fresh), 401);
    assert_eq!(s.audit().len(), audited + 1);
    let shown = s.json(&["show-token", &fresh_id(&s, &c.id)]);
    assert_eq!(shown["status"], "revoked", "{shown}");
    let after = cc_token(&server, &c).unwrap();
    assert_eq!(scim_status(&server, &after), 200);
    s.fails(
        &[
            "revoke-token",
            "--client-id",
            &c.id,
            "--all",
            "--token-type",
            "access_token",
        ],
        2,
    );

    // Disable: dead and nothing issued; enable: new tokens work, old ones stay dead.
    s.config()
        .args(["disable-api-client", "-i", &c.id, "--reason", "incident 42"])
        .assert()
        .success();
    assert_eq!(scim_status(&server, &after), 401);
    assert_eq!(cc_token(&server, &c), Err(401));
    s.fails(&["issue-access-token", "-i", &c.id], 1);
    s.config()
        .args(["enable-api-client", "-i", &c.id])
        .assert()
        .success();
    assert_eq!(scim_status(&server, &after), 401, "old tokens stay dead");
    let again = cc_token(&server, &c).unwrap();
    assert_eq!(scim_status(&server, &again), 200);
    let actions = audit_actions(&s);
    for a in [
        "client.rotate_secret",
        "token.revoke_all",
        "client.disable",
        "client.enable",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} in {actions:?}");
    }
}

/// The id of the newest token of `client` (from `list-tokens --all`).
fn fresh_id(s: &TestStore, client: &str) -> String {
    let v = s.json(&["list-tokens", "-i", client, "--all"]);
    v.as_array().unwrap()[0]["id"].as_str().unwrap().to_string()
}

/// Regression: a client could mint without limit (780,000 tokens in 50 s).
#[test]
fn token_issuance_is_rate_limited_per_client() {
    let s = TestStore::init();
    let c = cc_client(&s, &[READ], &[]);
    let other = cc_client(&s, &[READ], &[]);
    let server = TestServer::start_with(
        &s.db,
        Clock::system(),
        scimgate::settings::RawSettings {
            client_issuance_per_minute: Some(5),
            ..Default::default()
        },
    );
    for _ in 0..5 {
        cc_token(&server, &c).unwrap();
    }
    let r = post_form(&server, "/oauth2/token", Some((&c.id, c.secret())), &CC);
    assert!(r.headers().contains_key("retry-after"));
    assert_oauth_error(r, 429, "too_many_requests");
    cc_token(&server, &other).expect("another client has its own budget");
    let metrics = server.get_text("/metrics");
    assert!(
        metrics.contains(&format!(
            "scimgate_issuance_rate_limited_total{{client_id=\"{}\"}} 1",
            c.id
        )),
        "{metrics}"
    );
}

/// Regression: `{"userName": "a", "userName": "b"}` was read as "b"; docs/scim.md promises
/// 400 for an attribute given twice.
#[test]
fn a_scim_body_with_a_repeated_key_is_refused() {
    let s = TestStore::init();
    let client = s.cc_client("dup");
    let (token, _) = s.issue(&client, &[]);
    let server = TestServer::start(&s.db, Clock::system());
    let r = crate::support::http()
        .post(server.url("/scim/v2/Users"))
        .bearer_auth(&token)
        .header("content-type", "application/scim+json")
        .body(r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"a","userName":"b"}"#)
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: serde_json::Value = r.json().unwrap();
    assert_eq!(v["scimType"], "invalidSyntax", "{v}");
    assert!(
        v["detail"].as_str().unwrap().contains("appears twice"),
        "{v}"
    );
}

/// Regression: an escape sequence sent as a user name or client id reached the operator's
/// terminal through `config audit`. Network input no longer reaches the audit log in
/// clear (unknown names and ids are fingerprints), and every table and field the CLI
/// prints escapes control characters whatever is stored.
#[test]
fn escape_sequences_never_reach_the_operators_terminal() {
    let s = TestStore::init();
    let store = crate::support::open_store(&s.db);
    store
        .audit(
            &scimgate::model::NewAuditEvent {
                detail: Some("client id x\u{1b}]0;pwned\u{7}\u{1b}[2J".into()),
                ..scimgate::model::NewAuditEvent::new(
                    "ip:127.0.0.1",
                    AuditAction::ClientAuthenticate,
                    "failure",
                )
            },
            1_900_000_000,
        )
        .unwrap();
    let out = s.config().args(["audit"]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}'),
        "{text:?}"
    );
    assert!(text.contains("x\\u{1b}]0;pwned\\u{7}"), "{text}");
}

/// Regression: one PATCH of 10,000 operations, each adding an email to the same User, kept
/// a worker busy for 35 seconds (every operation copied and compared the whole list, and
/// looked for a duplicate by comparing folded copies of every value); a PUT of 4,000
/// emails took 2 s and one operation adding 14,000 emails to 14,000 did not finish in two
/// minutes. Now a PATCH carries at most 1,000 operations (400 beyond, nothing written), and
/// each operation is linear in the values it looks at. The time bounds are 10 to 100 times
/// what the work takes now in a debug build, and a tenth of what it took before.
#[test]
fn long_multi_valued_attributes_and_many_operations_stay_cheap() {
    use serde_json::json;
    const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
    const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
    let (_s, server, scim) = crate::support::scim_setup();
    let emails = |prefix: &str, n: usize| -> Vec<serde_json::Value> {
        (0..n)
            .map(|i| json!({"value": format!("{prefix}{i}@example.com"), "type": "work"}))
            .collect()
    };
    let r = scim.post(
        "/Users",
        json!({"schemas": [USER], "userName": "many", "emails": emails("a", 4000)}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    let path = format!("/Users/{id}");
    let timed = |what: &str, f: &dyn Fn() -> crate::support::Reply| {
        let started = Instant::now();
        let r = f();
        let took = started.elapsed();
        assert!(took < StdDuration::from_secs(10), "{what} took {took:?}");
        r
    };

    // A PUT of the same 4,000 (matching each new value to its old one).
    let r = timed("a PUT of 4,000 emails", &|| {
        scim.put(
            &path,
            json!({"schemas": [USER], "userName": "many", "emails": emails("a", 4000)}),
        )
    });
    assert_eq!(r.status, 200, "{}", r.body);

    // One operation adding 4,000 more (half of them already there, in another case).
    let mut more = emails("A", 2000);
    more.extend(emails("b", 2000));
    let r = timed("one operation of 4,000 values", &|| {
        scim.patch(
            &path,
            json!({"schemas": [PATCH_OP], "Operations": [{"op": "add", "path": "emails", "value": more}]}),
        )
    });
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body["emails"].as_array().unwrap().len(),
        6000,
        "duplicates merged"
    );

    // 1,000 operations (the most allowed) on the 6,000: value filters and single adds.
    let ops: Vec<_> = (0..1000)
        .map(|i| match i % 2 {
            0 => json!({"op": "remove", "path": format!("emails[value eq \"B{i}@EXAMPLE.com\"]")}),
            _ => json!({"op": "add", "path": "emails", "value": [{"value": format!("c{i}@example.com")}]}),
        })
        .collect();
    let r = timed("1,000 operations on 6,000 values", &|| {
        scim.patch(&path, json!({"schemas": [PATCH_OP], "Operations": ops}))
    });
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body["emails"].as_array().unwrap().len(),
        6000,
        "500 removed, 500 added"
    );

    // One more operation is refused, whole, and nothing changes.
    let before = scim.get(&path).body;
    let ops: Vec<_> = (0..1001)
        .map(|_| json!({"op": "replace", "path": "active", "value": false}))
        .collect();
    let r = scim.patch(&path, json!({"schemas": [PATCH_OP], "Operations": ops}));
    crate::support::assert_scim_error(&r, 400, Some("invalidValue"));
    let detail = r.body["detail"].as_str().unwrap();
    assert!(detail.contains("at most 1000 operations"), "{detail}");
    assert_eq!(scim.get(&path).body, before, "nothing was written");
    drop(server);
}

/// Regression: a `userName`, `externalId` or `displayName` over 2,704 bytes was a 503 on
/// PostgreSQL (its B-tree index refused the row; the client was told the store was down)
/// and stored as is on SQLite; U+0000 in any string was a 400 naming PostgreSQL's encoding
/// on one store and stored on the other. Now both refuse both with the same 400, and a
/// value of exactly the limit, in characters that do not compress, is stored on both
/// (the test suite runs on PostgreSQL too).
#[test]
fn values_the_stores_cannot_index_or_hold_are_refused_alike() {
    use serde_json::json;
    const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
    const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
    const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
    let (_s, _server, scim) = crate::support::scim_setup();
    // 1,024 bytes that no compression shortens: a xorshift's hex digits, two-byte
    // characters in between.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut noise = |bytes: usize| -> String {
        let mut s = String::new();
        while s.len() < bytes {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if x % 3 == 0 && s.len() + 2 <= bytes {
                s.push(if x % 2 == 0 { 'Ⱥ' } else { 'é' });
            } else {
                s.push(char::from_digit((x % 16) as u32, 16).unwrap());
            }
        }
        s
    };
    let name = noise(1024);
    assert_eq!(name.len(), 1024);
    let r = scim.post(
        "/Users",
        json!({"schemas": [USER], "userName": name, "externalId": noise(1024), "displayName": noise(1024)}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(r.body["userName"], name.as_str());

    for (attr, kind, schema) in [
        ("userName", "/Users", USER),
        ("externalId", "/Users", USER),
        ("displayName", "/Users", USER),
        ("displayName", "/Groups", GROUP),
    ] {
        let mut body = json!({"schemas": [schema], "userName": "short", "displayName": "g"});
        if kind == "/Groups" {
            body.as_object_mut().unwrap().remove("userName");
        }
        body[attr] = json!(format!("{}a", noise(1024)));
        let r = scim.post(kind, body);
        crate::support::assert_scim_error(&r, 400, Some("invalidValue"));
        let detail = r.body["detail"].as_str().unwrap();
        assert!(
            detail.contains(&format!("`{attr}` may be at most 1024 bytes")),
            "{detail}"
        );
    }
    // The same through PATCH: refused, nothing written.
    let before = scim.get(&format!("/Users/{id}")).body;
    let r = scim.patch(
        &format!("/Users/{id}"),
        json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "externalId", "value": "e".repeat(1025)}]}),
    );
    crate::support::assert_scim_error(&r, 400, Some("invalidValue"));
    assert_eq!(scim.get(&format!("/Users/{id}")).body, before);

    // U+0000, top level or nested, in a POST or a PATCH.
    for body in [
        json!({"schemas": [USER], "userName": "nul\u{0}name"}),
        json!({"schemas": [USER], "userName": "nul", "name": {"givenName": "a\u{0}b"}}),
        json!({"schemas": [USER], "userName": "nul", "emails": [{"value": "a@b.c", "type": "w\u{0}"}]}),
    ] {
        let r = scim.post("/Users", body);
        crate::support::assert_scim_error(&r, 400, Some("invalidValue"));
        assert!(
            r.body["detail"].as_str().unwrap().contains("U+0000"),
            "{}",
            r.body
        );
    }
    let r = scim.patch(
        &format!("/Users/{id}"),
        json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "nickName", "value": "x\u{0}"}]}),
    );
    crate::support::assert_scim_error(&r, 400, Some("invalidValue"));
    assert_eq!(scim.get(&format!("/Users/{id}")).body, before);
    assert_eq!(
        scim.get("/Users?filter=userName%20eq%20%22nul%22").body["totalResults"],
        0
    );

    // PATCHes, each under the body limit, cannot grow a User past 1 MiB of text.
    let r = scim.post("/Users", json!({"schemas": [USER], "userName": "grow"}));
    assert_eq!(r.status, 201, "{}", r.body);
    let path = format!("/Users/{}", r.body["id"].as_str().unwrap());
    let add = |from: usize, n: usize| {
        let emails: Vec<_> = (from..from + n)
            .map(|i| json!({"value": format!("{i:08}{}@example.com", "m".repeat(80))}))
            .collect();
        scim.patch(
            &path,
            json!({"schemas": [PATCH_OP], "Operations": [{"op": "add", "path": "emails", "value": emails}]}),
        )
    };
    // 8,000 values of 100 bytes: about 840 kB of text.
    let r = add(0, 8_000);
    assert_eq!(r.status, 200, "{}", r.body);
    let grown = scim.get(&path).body;
    // 2,000 more would make it about 1,050 kB.
    let r = add(8_000, 2_000);
    crate::support::assert_scim_error(&r, 400, Some("invalidValue"));
    let detail = r.body["detail"].as_str().unwrap();
    assert!(
        detail.contains("a User may hold at most 1048576 bytes of text"),
        "{detail}"
    );
    assert_eq!(scim.get(&path).body, grown, "nothing written");
    // 1,000 more fit.
    let r = add(8_000, 1_000);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["emails"].as_array().unwrap().len(), 9_000);
}

/// Regression (PostgreSQL): U+0000 in an identifier taken from a request reached the
/// database, whose text cannot hold it, and the error was taken for the store's: a client
/// id holding it (HTTP Basic, the form, the authorization page) or a sign-in name was
/// answered 503 with an ERROR in the log ("the store is unavailable"), a SCIM id was a 400
/// showing PostgreSQL's own message, and one refused write naming such a userName failed
/// the recording of every provisioning error drained with it, other IdPs' too. Now such an
/// identifier names nothing on either store, as on SQLite: 401, 404, the unknown client's
/// page, the wrong password's answer; and the provisioning errors are all recorded.
#[test]
fn u0000_in_an_identifier_names_nothing_on_either_store() {
    use serde_json::json;
    const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
    let s = TestStore::empty();
    let server = TestServer::start(&s.db, Clock::system());
    let (_, token) = crate::support::client_with_token(
        &s.db,
        &[
            scimgate::model::Scope::DirectoryRead,
            scimgate::model::Scope::DirectoryWrite,
        ],
        "1h",
    );
    let scim = crate::support::Scim::new(&server, &token);
    // Two refused creates at once, one naming a userName with U+0000.
    let r = scim.post(
        "/Users",
        json!({"schemas": [USER_SCHEMA], "userName": "nul\u{0}name"}),
    );
    crate::support::assert_scim_error(&r, 400, Some("invalidValue"));
    let r = scim.post(
        "/Users",
        json!({"schemas": [USER_SCHEMA], "userName": "other", "unknownThing": 1}),
    );
    crate::support::assert_scim_error(&r, 400, Some("invalidSyntax"));
    for (method, path) in [
        ("GET", "/Users/a%00b"),
        ("DELETE", "/Users/a%00b"),
        ("DELETE", "/Groups/a%00b"),
    ] {
        let r = scim.send(method, path, None, &[]);
        crate::support::assert_scim_error(&r, 404, None);
    }
    let body = json!({"schemas": [USER_SCHEMA], "userName": "x"});
    crate::support::assert_scim_error(&scim.put("/Users/a%00b", body), 404, None);
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "displayName", "value": "y"}]});
    crate::support::assert_scim_error(&scim.patch("/Users/a%00b", patch.clone()), 404, None);
    crate::support::assert_scim_error(&scim.patch("/Groups/a%00b", patch), 404, None);
    // The monitor records them at its tick (an hour away here): one now.
    server.state.monitor.tick();
    let rows = server.state.store.provisioning_errors(None, 0).unwrap();
    // The two creates, the PUT and both PATCHes (a 404 there is the IdP's error).
    assert_eq!(rows.len(), 5, "{rows:?}");
    assert!(
        rows.iter()
            .any(|e| e.user_name.as_deref() == Some("nul\u{fffd}name")),
        "{rows:?}"
    );

    // The OAuth2 endpoints and the pages, on a store with a login account.
    let (_s, c, server) = sign_in_pages_behind_a_proxy();
    let r = crate::support::http()
        .post(server.url("/oauth2/token"))
        .basic_auth("a\u{0}b", Some("secret"))
        .form(&CC)
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<serde_json::Value>().unwrap()["error"],
        "invalid_client"
    );
    for endpoint in ["/oauth2/token", "/oauth2/introspect", "/oauth2/revoke"] {
        let r = crate::support::http()
            .post(server.url(endpoint))
            .form(&[
                ("grant_type", "client_credentials"),
                ("token", "x"),
                ("client_id", "a\u{0}b"),
                ("client_secret", "secret"),
            ])
            .send()
            .unwrap();
        assert_eq!(r.status(), 401, "{endpoint}");
    }
    // The authorization page answers a client id holding U+0000 as an unknown one.
    let answer = |client: &str| {
        let r = get_authorize(&browser(), &server, &auth_query(client, &[]));
        (r.status(), r.text().unwrap().contains("is registered here"))
    };
    let unknown = answer("cl_nobody");
    assert!(unknown.0.is_client_error() && unknown.1, "{unknown:?}");
    assert_eq!(answer("a\u{0}b"), unknown);
    // A sign-in name holding U+0000 is answered as an unknown one.
    let signed = |name: &str| {
        let b = browser();
        let page = get_authorize(&b, &server, &auth_query(&c.id, &[]))
            .text()
            .unwrap();
        let fields = [
            ("action", "login"),
            ("username", name),
            ("password", "wrong-password"),
        ];
        let r = submit(&b, &server, &page, &fields);
        (
            r.status(),
            r.text().unwrap().contains("Wrong user name or password."),
        )
    };
    let unknown = signed("nobody");
    assert!(unknown.0.is_client_error() && unknown.1, "{unknown:?}");
    assert_eq!(signed("a\u{0}b"), unknown);
}
