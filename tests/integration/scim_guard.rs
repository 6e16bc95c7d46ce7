//! The bearer guard in front of /scim/v2: missing, malformed, unknown, expired and revoked
//! tokens get 401 with `WWW-Authenticate: Bearer error="invalid_token"`; a token without
//! the needed scope gets 403 `insufficient_scope`; uses are recorded (time, source IP).

use scimgate::model::Scope;
use scimgate::time::{Clock, Duration};
use serde_json::json;

use crate::support::{Scim, TestServer, TestStore, assert_scim_error, client_with_token, http};

fn user() -> serde_json::Value {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "guard@example.com"})
}

#[test]
fn bad_tokens_get_401_with_a_challenge() {
    let s = TestStore::empty();
    let server = TestServer::start(&s.db, Clock::system());
    let url = server.url("/scim/v2/Users");
    let cases: Vec<(Option<String>, &str)> = vec![
        (None, "no bearer token"),
        (Some("Basic dXNlcjpwYXNz".into()), "not a bearer token"),
        (Some("Bearer".into()), "not a bearer token"),
        (Some("Bearer not-a-token".into()), "not valid"),
        (
            Some("Bearer sgat_0000000000000000000000000000000000000000000000000".into()),
            "not valid",
        ),
    ];
    for (header, needle) in cases {
        let mut req = http().get(&url);
        if let Some(h) = &header {
            req = req.header("authorization", h);
        }
        let resp = req.send().unwrap();
        assert_eq!(resp.status(), 401, "{header:?}");
        let challenge = resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            challenge.starts_with("Bearer ") && challenge.contains("error=\"invalid_token\""),
            "{challenge}"
        );
        let body: serde_json::Value = resp.json().unwrap();
        assert_eq!(body["status"], "401");
        assert!(
            body["detail"].as_str().unwrap().contains(needle),
            "{header:?}: {body}"
        );
    }
}

#[test]
fn expired_and_revoked_tokens_are_refused() {
    let s = TestStore::empty();
    let clock = Clock::manual(chrono::Utc::now().timestamp());
    let server = TestServer::start(&s.db, clock.clone());
    let (_, token) = client_with_token(&s.db, &[Scope::DirectoryRead], "1h");
    let scim = Scim::new(&server, &token);
    assert_eq!(scim.get("/Users").status, 200);
    clock.advance(Duration::hours(2));
    let r = scim.get("/Users");
    assert_scim_error(&r, 401, None);
    assert!(r.body["detail"].as_str().unwrap().contains("expired"));
    clock.advance(Duration::hours(-2));
    assert_eq!(scim.get("/Users").status, 200);
    let store = crate::support::open_store(&s.db);
    let parsed = scimgate::token::parse(&token).unwrap();
    let admin = scimgate::admin::Admin::new(&store, Clock::system(), "test");
    admin
        .revoke_token(&scimgate::admin::TokenRef::Id(parsed.id), None, None)
        .unwrap();
    // Revoked by another process (as `config revoke-token` does): the server's token
    // cache trusts a validated token for at most token_cache_ttl (1 s).
    let revoked_at = std::time::Instant::now();
    let r = loop {
        let r = scim.get("/Users");
        if r.status != 200 || revoked_at.elapsed() > std::time::Duration::from_secs(3) {
            break r;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(revoked_at.elapsed() < std::time::Duration::from_millis(1500));
    assert_scim_error(&r, 401, None);
    assert!(r.body["detail"].as_str().unwrap().contains("revoked"));
}

#[test]
fn scopes_are_enforced_and_write_does_not_imply_read() {
    let s = TestStore::empty();
    let server = TestServer::start(&s.db, Clock::system());
    let (_, read) = client_with_token(&s.db, &[Scope::DirectoryRead], "1h");
    let (_, write) = client_with_token(&s.db, &[Scope::DirectoryWrite], "1h");
    let reader = Scim::new(&server, &read);
    let writer = Scim::new(&server, &write);
    let r = reader.post("/Users", user());
    assert_scim_error(&r, 403, None);
    let challenge = r.header("www-authenticate").unwrap();
    assert!(
        challenge.contains("error=\"insufficient_scope\"")
            && challenge.contains("user-directory.write.all"),
        "{challenge}"
    );
    let created = writer.post("/Users", user());
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().unwrap();
    assert_scim_error(&writer.get(&format!("/Users/{id}")), 403, None);
    assert_scim_error(&writer.post("/Users/.search", json!({})), 403, None);
    assert_eq!(reader.get(&format!("/Users/{id}")).status, 200);
    assert_eq!(reader.post("/.search", json!({})).status, 200);
    assert_scim_error(&reader.delete(&format!("/Users/{id}")), 403, None);
    assert_scim_error(
        &reader.patch(&format!("/Users/{id}"), json!({"Operations": []})),
        403,
        None,
    );
    assert_eq!(writer.delete(&format!("/Users/{id}")).status, 204);
}

#[test]
fn last_use_is_recorded_off_the_request_path() {
    // With monitoring on (the default) the monitor's drain records uses; with it off the
    // guard does. Both must land.
    for monitoring in [true, false] {
        last_use_is_recorded(monitoring);
    }
}

fn last_use_is_recorded(monitoring: bool) {
    let s = TestStore::empty();
    let server = TestServer::start_with(
        &s.db,
        Clock::system(),
        scimgate::settings::RawSettings {
            monitoring: Some(monitoring),
            ..Default::default()
        },
    );
    assert_eq!(server.state.monitor.records_usage(), monitoring);
    let (_, token) = client_with_token(&s.db, &[Scope::DirectoryRead], "1h");
    let scim = Scim::new(&server, &token);
    for _ in 0..5 {
        assert_eq!(scim.get("/Users").status, 200);
    }
    let parsed = scimgate::token::parse(&token).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let rec = server.store.token(&parsed.id).unwrap().unwrap();
        if rec.use_count == 5 {
            assert_eq!(rec.last_used_ip.as_deref(), Some("127.0.0.1"));
            assert!(rec.last_used_at.is_some());
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "use not recorded (monitoring {monitoring}): {rec:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
