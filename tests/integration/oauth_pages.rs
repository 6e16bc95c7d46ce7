//! `/oauth2/authorize` over plain HTTP forms with a cookie jar: error pages that never
//! redirect, redirects that carry `error` and `state`, login, consent (remembered, or
//! required every time), CSRF, the session cookie's attributes, and
//! `config revoke-consent`.

use scimgate::time::Clock;

use crate::oauth_support::*;
use crate::support::{TestServer, TestStore};

#[test]
fn untrusted_client_or_redirect_uri_shows_a_page_and_never_redirects() {
    let s = TestStore::init();
    let c = code_client(&s, &[]);
    let server = TestServer::start(&s.db, Clock::system());
    let b = browser();
    for query in [
        auth_query("cl_nobody", &[]),
        auth_query(&c.id, &[("redirect_uri", "https://evil.example/cb")]),
        auth_query(&c.id, &[("redirect_uri", "http://127.0.0.1:9/callback/")]),
        auth_query(&c.id, &[("client_id", "")]),
    ] {
        let r = get_authorize(&b, &server, &query);
        assert_eq!(r.status(), 400, "{query:?}");
        assert!(r.headers().get("location").is_none());
        let page = r.text().unwrap();
        assert!(page.contains("cannot continue"), "{page}");
    }
    // An escaped client id on the error page.
    let r = get_authorize(&b, &server, &auth_query("<script>x</script>", &[]));
    let page = r.text().unwrap();
    assert!(!page.contains("<script>x"), "{page}");
    assert!(page.contains("&lt;script&gt;"), "{page}");
}

#[test]
fn other_errors_redirect_with_error_and_state() {
    let s = TestStore::init();
    let c = code_client(&s, &[]);
    let read_only = register(
        &s,
        "Read only",
        &["-G", "authorization_code", "-S", READ, "-R", REDIRECT],
    );
    let server = TestServer::start(&s.db, Clock::system());
    let b = browser();
    let cases = [
        (
            auth_query(&c.id, &[("response_type", "token")]),
            "unsupported_response_type",
        ),
        (
            auth_query(&c.id, &[("response_type", "")]),
            "invalid_request",
        ),
        (
            auth_query(&read_only.id, &[("scope", WRITE)]),
            "invalid_scope",
        ),
        (auth_query(&c.id, &[("scope", "openid")]), "invalid_scope"),
        (
            auth_query(&c.id, &[("code_challenge", "short")]),
            "invalid_request",
        ),
    ];
    for (query, error) in cases {
        let r = get_authorize(&b, &server, &query);
        let p = location_params(&r);
        assert_eq!(param(&p, "error"), Some(error), "{query:?}");
        assert_eq!(param(&p, "state"), Some("xyz"));
        assert_eq!(param(&p, "iss"), Some(server.base.as_str()));
    }
    // A client without the authorization_code grant.
    let cc = cc_client(&s, &[READ], &[]);
    let r = get_authorize(&b, &server, &auth_query(&cc.id, &[]));
    assert_eq!(r.status(), 400, "no registered redirect URI: a page");
}

#[test]
fn login_consent_pages_cookie_and_remembered_consent() {
    let s = TestStore::init();
    create_user(&s);
    let c = register(
        &s,
        "Okta <prod>",
        &[
            "-G",
            "authorization_code",
            "-G",
            "refresh_token",
            "-S",
            READ,
            "-S",
            WRITE,
            "-R",
            REDIRECT,
            "--idp",
            "okta",
            "--idp-app-id",
            "0oa1b2c3",
            "--owner",
            "iam@example.com",
        ],
    );
    let server = TestServer::start(&s.db, Clock::system());
    let b = browser();
    let query = auth_query(&c.id, &[]);

    let r = get_authorize(&b, &server, &query);
    assert_eq!(r.status(), 200);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.starts_with("scimgate_session="), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    assert!(
        r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    let login = r.text().unwrap();
    assert!(
        login.contains("Okta &lt;prod&gt;"),
        "client name escaped: {login}"
    );
    assert!(!hidden_value(&login, "csrf_token").is_empty());

    let r = submit(
        &b,
        &server,
        &login,
        &[
            ("action", "login"),
            ("username", USER),
            ("password", PASSWORD),
        ],
    );
    assert_eq!(r.status(), 200);
    let new_cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert_ne!(
        new_cookie.split(';').next(),
        cookie.split(';').next(),
        "a new session id after login"
    );
    let consent = r.text().unwrap();
    for words in [
        "read the users and groups in the directory",
        "create, change and delete users and groups in the directory",
        "Okta",
        "0oa1b2c3",
        "iam@example.com",
        "Signed in as alice",
        "127.0.0.1",
    ] {
        assert!(
            consent.contains(words),
            "consent page lacks `{words}`: {consent}"
        );
    }
    let r = submit(
        &b,
        &server,
        &consent,
        &[("action", "consent"), ("decision", "allow")],
    );
    let p = location_params(&r);
    assert!(param(&p, "code").unwrap().starts_with("sgac_"));
    assert_eq!(param(&p, "state"), Some("xyz"));
    assert_eq!(param(&p, "iss"), Some(server.base.as_str()));

    // Remembered: straight back with a code, no page.
    let r = get_authorize(&b, &server, &query);
    assert!(param(&location_params(&r), "code").is_some());
    // A different scope set asks again.
    let r = get_authorize(&b, &server, &auth_query(&c.id, &[("scope", READ)]));
    assert_eq!(r.status(), 200);
    assert!(r.text().unwrap().contains("Allow"));

    // `config revoke-consent` forgets it; doing it twice says there is nothing to forget.
    let v = s.json(&["revoke-consent", "-u", USER, "-i", &c.id]);
    assert_eq!(v["revoked"], 1);
    let err = s.fails(&["revoke-consent", "-u", USER], 1);
    assert!(err.contains("no remembered consent"), "{err}");
    let r = get_authorize(&b, &server, &query);
    assert_eq!(r.status(), 200, "consent is asked again");
    let actions = audit_actions(&s);
    for a in ["user.login", "consent.grant", "consent.revoke"] {
        assert!(actions.contains(&a.to_string()), "{a} audited: {actions:?}");
    }
}

#[test]
fn consent_required_every_time_and_deny() {
    let s = TestStore::init();
    create_user(&s);
    let c = code_client(&s, &["-r"]);
    let server = TestServer::start(&s.db, Clock::system());
    let b = browser();
    let query = auth_query(&c.id, &[]);
    login_and_consent(&b, &server, &query);
    let r = get_authorize(&b, &server, &query);
    assert_eq!(
        r.status(),
        200,
        "--require-end-user-consent asks every time"
    );
    let consent = r.text().unwrap();
    let r = submit(
        &b,
        &server,
        &consent,
        &[("action", "consent"), ("decision", "deny")],
    );
    let p = location_params(&r);
    assert_eq!(param(&p, "error"), Some("access_denied"));
    assert_eq!(param(&p, "state"), Some("xyz"));
    assert!(param(&p, "code").is_none());
}

#[test]
fn forms_without_the_right_csrf_token_are_refused() {
    let s = TestStore::init();
    create_user(&s);
    let c = code_client(&s, &[]);
    let server = TestServer::start(&s.db, Clock::system());
    let b = browser();
    let login = get_authorize(&b, &server, &auth_query(&c.id, &[]))
        .text()
        .unwrap();
    let csrf = hidden_value(&login, "csrf_token");
    let mut form: Vec<(String, String)> = auth_query(&c.id, &[]);
    form.extend([
        ("action".to_string(), "login".to_string()),
        ("username".to_string(), USER.to_string()),
        ("password".to_string(), PASSWORD.to_string()),
    ]);
    let post = |b: &reqwest::blocking::Client, form: &[(String, String)]| {
        b.post(server.url("/oauth2/authorize"))
            .form(form)
            .send()
            .unwrap()
    };
    // No token; a wrong token; the right token from another browser (no session).
    let r = post(&b, &form);
    assert_eq!(r.status(), 403);
    let mut wrong = form.clone();
    wrong.push(("csrf_token".into(), "x".repeat(43)));
    assert_eq!(post(&b, &wrong).status(), 403);
    let mut right = form.clone();
    right.push(("csrf_token".into(), csrf));
    assert_eq!(post(&browser(), &right).status(), 403);
    // The same form in the right browser passes.
    let r = post(&b, &right);
    assert_eq!(r.status(), 200);
    assert!(r.text().unwrap().contains("Allow"));
}

#[test]
fn secure_cookie_when_the_public_url_is_https() {
    let s = TestStore::init();
    let c = code_client(&s, &[]);
    let server = TestServer::start_with(
        &s.db,
        Clock::system(),
        scimgate::settings::RawSettings {
            public_url: Some("https://scimgate.example.com".into()),
            ..Default::default()
        },
    );
    let r = get_authorize(&browser(), &server, &auth_query(&c.id, &[]));
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("Secure"), "{cookie}");
}
