//! Lifecycle monitoring of IdPs in OAuth mode: when the token endpoint refuses a client's
//! own credential because it is dead (refresh token reused, revoked or expired; client
//! secret expired), the client goes failing and the operator is told at once, although
//! the IdP never makes the SCIM call that would show it. Wrong secrets and other
//! clients' tokens say nothing about a client's health and change nothing.

use scimgate::monitor::notify::Severity;
use scimgate::settings::RawSettings;
use scimgate::time::{Clock, Duration};
use serde_json::Value;

use crate::oauth_support::*;
use crate::support::{Scim, TestServer, TestStore};

/// A server on `s` with a manual clock, whose monitor ticks only when the test says so.
fn server_ticked_by_hand(s: &TestStore) -> (TestServer, Clock) {
    let clock = Clock::manual(chrono::Utc::now().timestamp());
    let raw = RawSettings {
        monitor_tick: Some("1h".into()),
        ..RawSettings::default()
    };
    (TestServer::start_with(&s.db, clock.clone(), raw), clock)
}

/// The state-change notifications of one monitor tick.
fn state_changes(server: &TestServer) -> Vec<scimgate::monitor::notify::Notification> {
    server
        .state
        .monitor
        .tick()
        .notifications
        .into_iter()
        .filter(|n| n.event == "state_change")
        .collect()
}

fn token_endpoint_lines(server: &TestServer) -> Vec<Value> {
    let path = &server.state.monitor.settings().heartbeat_log;
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|l| l["event"] == "request" && l["path"] == "/oauth2/token")
        .collect()
}

fn status_note(s: &TestStore, client: &str) -> (i32, Value) {
    let out = s
        .config()
        .args(["--json", "status", "-i", client])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    (out.status.code().unwrap(), v["clients"][0].clone())
}

#[test]
fn okta_refresh_token_reused_revoked_or_expired_makes_the_client_failing() {
    let s = TestStore::init();
    create_user(&s);
    let okta = code_client(&s, &[]);
    let other = code_client(&s, &[]);
    let (server, clock) = server_ticked_by_hand(&s);

    // Okta in OAuth mode provisions: healthy (quietly, from idle).
    let (access, r1) = authorize(&server, &okta);
    assert_eq!(Scim::new(&server, &access).get("/Users").status, 200);
    assert!(state_changes(&server).is_empty());
    assert_eq!(server.health_state(&okta.id), "healthy");

    // A wrong secret is a guess or a typo, not a dead credential: nothing changes.
    let r = post_form(
        &server,
        "/oauth2/token",
        Some((&okta.id, "sgcs_wrong")),
        &[("grant_type", "refresh_token"), ("refresh_token", &r1)],
    );
    assert_oauth_error(r, 401, "invalid_client");
    assert!(state_changes(&server).is_empty());

    // An hour later, rotation, then the spent refresh token again: the family is
    // revoked, and the client is failing at once, with one critical alert that says what
    // happened.
    clock.advance(Duration::hours(1));
    let (status, v) = refresh(&server, &okta, &r1);
    assert_eq!(status, 200, "{v}");
    let r2 = v["refresh_token"].as_str().unwrap().to_string();
    let (status, v) = refresh(&server, &okta, &r1);
    assert_eq!((status, v["error"].as_str()), (400, Some("invalid_grant")));
    let changes = state_changes(&server);
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].details["to"], "failing");
    assert_eq!(changes[0].severity, Severity::Critical);
    assert!(
        changes[0].text.contains(&token_id(&r1)) && changes[0].text.contains("presented again"),
        "{}",
        changes[0].text
    );
    let (code, row) = status_note(&s, &okta.id);
    assert_eq!(code, 2, "config status is critical: {row}");
    assert_eq!(row["state"], "failing");
    assert!(row["note"].as_str().unwrap().contains("reused"), "{row}");

    // The IdP's current refresh token died with the family: still failing, no new alert.
    let (status, _) = refresh(&server, &okta, &r2);
    assert_eq!(status, 400);
    assert!(state_changes(&server).is_empty(), "the alert is sent once");

    // Another client presenting Okta's dead token says nothing about either client.
    let r = post_form(
        &server,
        "/oauth2/token",
        Some((&other.id, other.secret())),
        &[("grant_type", "refresh_token"), ("refresh_token", &r2)],
    );
    assert_oauth_error(r, 400, "invalid_grant");
    assert!(state_changes(&server).is_empty());
    assert_eq!(server.health_state(&other.id), "idle");

    // The heartbeat log has the refusals, attributed to the client and token.
    let lines = token_endpoint_lines(&server);
    let verdicts: Vec<(&str, &str)> = lines
        .iter()
        .map(|l| {
            (
                l["verdict"].as_str().unwrap(),
                l["token_id"].as_str().unwrap(),
            )
        })
        .collect();
    let (id1, id2) = (token_id(&r1), token_id(&r2));
    assert_eq!(
        verdicts,
        [
            ("refresh_token_reused", id1.as_str()),
            ("refresh_token_revoked", id2.as_str()),
        ]
    );
    assert!(lines.iter().all(|l| l["client_id"] == okta.id.as_str()
        && l["status"] == 400
        && l["method"] == "POST"));

    // Authorized again in Okta: the next SCIM call clears it.
    clock.advance(Duration::minutes(5));
    let (access, r3) = authorize(&server, &okta);
    assert_eq!(Scim::new(&server, &access).get("/Users").status, 200);
    let changes = state_changes(&server);
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].details["to"], "healthy");

    // Okta stops refreshing for longer than the refresh token lives (90 days).
    clock.advance(Duration::days(91));
    let (status, _) = refresh(&server, &okta, &r3);
    assert_eq!(status, 400);
    let changes = state_changes(&server);
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert!(
        changes[0].text.contains("has expired"),
        "{}",
        changes[0].text
    );
    assert_eq!(
        token_endpoint_lines(&server).last().unwrap()["verdict"],
        "refresh_token_expired"
    );
}

#[test]
fn an_expired_client_secret_makes_the_client_failing() {
    let s = TestStore::init();
    let board = cc_client(&s, &[READ], &["--client-secret-validity", "1d"]);
    let (server, clock) = server_ticked_by_hand(&s);
    let cc = [("grant_type", "client_credentials")];
    let r = post_form(
        &server,
        "/oauth2/token",
        Some((&board.id, board.secret())),
        &cc,
    );
    assert_eq!(r.status(), 200);

    clock.advance(Duration::days(2));
    // A wrong secret after expiry is still only a wrong secret.
    let r = post_form(
        &server,
        "/oauth2/token",
        Some((&board.id, "sgcs_wrong")),
        &cc,
    );
    assert_oauth_error(r, 401, "invalid_client");
    assert!(state_changes(&server).is_empty());
    assert_eq!(server.health_state(&board.id), "idle");

    // The right secret, expired: refused, and the client is failing.
    let r = post_form(
        &server,
        "/oauth2/token",
        Some((&board.id, board.secret())),
        &cc,
    );
    let v = assert_oauth_error(r, 401, "invalid_client");
    assert!(v["error_description"].as_str().unwrap().contains("expired"));
    let changes = state_changes(&server);
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].details["to"], "failing");
    assert!(
        changes[0].text.contains("client secret")
            && changes[0].text.contains("rotate-client-secret"),
        "{}",
        changes[0].text
    );
    let line = token_endpoint_lines(&server)
        .pop()
        .expect("a heartbeat log line");
    assert_eq!(line["verdict"], "client_secret_expired");
    assert_eq!(
        line["token_id"],
        Value::Null,
        "a client secret has no token id"
    );
    assert_eq!(line["status"], 401);
    let (code, row) = status_note(&s, &board.id);
    assert_eq!(code, 2, "{row}");
    assert!(
        row["note"]
            .as_str()
            .unwrap()
            .contains("client secret expired"),
        "{row}"
    );

    // /metrics counts the refusal as a token request, not as a SCIM request.
    let metrics = server.get_text("/metrics");
    assert!(
        !metrics
            .lines()
            .any(|l| l.starts_with("scimgate_scim_requests_total") && l.contains(&board.id)),
        "{metrics}"
    );
}
