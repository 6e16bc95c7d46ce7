//! The operator pages: sign-in required, CSRF-checked, and the token timeline showing one
//! row per client with its tokens, state, heartbeat and provisioning-error marks.

use scimgate::model::Scope;
use scimgate::settings::RawSettings;
use scimgate::time::Clock;

use crate::oauth_support::{browser, hidden_value};
use crate::support::{Scim, TestServer, TestStore, client_with_token};

#[test]
fn timeline_needs_a_login_and_shows_clients_tokens_and_heartbeats() {
    let s = TestStore::init();
    s.config()
        .env("SCIMGATE_USER_PASSWORD", "operator-pw-1")
        .args(["create-user", "-u", "ops", "--operator"])
        .assert()
        .success();
    let server = TestServer::start_with(
        &s.db,
        Clock::system(),
        RawSettings {
            monitor_tick: Some("1h".into()),
            ..RawSettings::default()
        },
    );
    let (client, token) = client_with_token(&s.db, &[Scope::DirectoryRead], "60d");
    assert_eq!(Scim::new(&server, &token).get("/Users").status, 200);
    // A refused search: a provisioning error, marked on the client's row.
    assert_eq!(
        Scim::new(&server, &token)
            .get("/Users?filter=userName%20zz%20%22x%22")
            .status,
        400
    );
    server.state.monitor.tick();
    let b = browser();
    let r = b.get(server.url("/ui/timeline")).send().unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/ui/login");
    let page = b
        .get(server.url("/ui/login"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let csrf = hidden_value(&page, "csrf_token");
    // Without the CSRF token: refused.
    let r = b
        .post(server.url("/ui/login"))
        .form(&[("username", "ops"), ("password", "operator-pw-1")])
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = b
        .post(server.url("/ui/login"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("username", "ops"),
            ("password", "wrong-password"),
        ])
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().unwrap().contains("Wrong user name or password."));
    let r = b
        .post(server.url("/ui/login"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("username", "ops"),
            ("password", "operator-pw-1"),
        ])
        .send()
        .unwrap();
    assert_eq!(r.status(), 303);
    // The browser is now a known device of the account (its own queue for sign-ins).
    assert!(
        r.headers()
            .get_all("set-cookie")
            .iter()
            .any(|v| v.to_str().unwrap().starts_with("scimgate_device=d1.")),
        "a known-device mark"
    );
    let r = b.get(server.url("/ui/timeline")).send().unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    let html = r.text().unwrap();
    let token_id = scimgate::token::parse(&token).unwrap().id;
    assert!(html.contains("<svg"), "an inline SVG");
    assert!(
        html.contains(&client) && html.contains("test idp"),
        "the client's row"
    );
    assert!(html.contains(token_id.as_str()), "the token's bar");
    assert!(html.contains("HEALTHY"), "the client's state");
    assert!(html.contains("accepted call(s)"), "heartbeat marks");
    assert!(
        html.contains("class=\"provisioning-error\"")
            && html.contains("1 provisioning error(s) in the hour"),
        "the provisioning-error mark"
    );
    assert!(html.contains(">now<"), "the now line");
    assert!(!html.contains(&token), "never a token value");
    assert!(!html.contains("<script"), "no scripts");
    assert!(
        !html.contains("src=\"http") && !html.contains("href=\"http"),
        "no external assets"
    );
    let r = b.get(server.url("/ui/logout")).send().unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        b.get(server.url("/ui/timeline")).send().unwrap().status(),
        303
    );
}

/// Any login account could open the operator pages; now only accounts marked operator can,
/// checked at sign-in and on every page (a demoted account's open session sees nothing).
#[test]
fn only_operator_accounts_open_the_operator_pages() {
    let s = TestStore::init();
    s.config()
        .env("SCIMGATE_USER_PASSWORD", "consent-pw-1")
        .args(["create-user", "-u", "alice"])
        .assert()
        .success();
    let server = TestServer::start(&s.db, Clock::system());
    let b = browser();
    let sign_in = || {
        let page = b
            .get(server.url("/ui/login"))
            .send()
            .unwrap()
            .text()
            .unwrap();
        let csrf = hidden_value(&page, "csrf_token");
        b.post(server.url("/ui/login"))
            .form(&[
                ("csrf_token", csrf.as_str()),
                ("username", "alice"),
                ("password", "consent-pw-1"),
            ])
            .send()
            .unwrap()
    };
    let r = sign_in();
    assert_eq!(r.status(), 403);
    assert!(r.text().unwrap().contains("not open the operator pages"));
    let users = s.json(&["list-users"]);
    assert_eq!(users[0]["operator"], false, "{users}");
    s.config()
        .args(["set-operator", "-u", "alice", "true"])
        .assert()
        .success();
    assert_eq!(sign_in().status(), 303);
    assert_eq!(
        b.get(server.url("/ui/timeline")).send().unwrap().status(),
        200
    );
    s.config()
        .args(["set-operator", "-u", "alice", "false"])
        .assert()
        .success();
    assert_eq!(
        b.get(server.url("/ui/timeline")).send().unwrap().status(),
        403,
        "a demoted account's session sees nothing"
    );
    let actions: Vec<String> = s
        .audit()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect();
    assert!(
        actions.iter().any(|a| a == "user.set_operator"),
        "{actions:?}"
    );
}
