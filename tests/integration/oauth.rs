//! The token endpoint over real HTTP: every grant, every RFC 6749 §5.2 error, refresh
//! rotation with reuse detection, code replay, PKCE, lifetimes, `no-store`.

use scimgate::time::{Clock, Duration};
use scimgate::token::{self, TokenKind};

use crate::oauth_support::*;
use crate::support::{TestServer, TestStore};

#[test]
fn client_credentials_with_basic_and_post() {
    let s = TestStore::init();
    let c = cc_client(&s, &[READ, WRITE], &["--access-token-validity", "2h"]);
    let server = TestServer::start(&s.db, Clock::system());

    let r = post_form(
        &server,
        "/oauth2/token",
        Some((&c.id, c.secret())),
        &[("grant_type", "client_credentials")],
    );
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["pragma"], "no-cache");
    let (status, v) = status_json(r);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 7200, "the client's registered lifetime");
    assert_eq!(v["scope"], format!("{READ} {WRITE}"));
    assert!(
        v.get("refresh_token").is_none(),
        "no refresh for client_credentials"
    );
    let access = v["access_token"].as_str().unwrap();
    let parsed = token::parse(access).expect("a well-formed sgat_ token");
    assert_eq!(parsed.kind, TokenKind::Access);
    // Committed (as a hash) before the response left.
    let rec = server.store.token_by_value(&parsed).unwrap().unwrap();
    assert_eq!(rec.client_id, c.id);
    assert_eq!(rec.issued_via.as_str(), "client_credentials");
    assert_eq!(rec.expires_at - rec.issued_at, 7200);

    let r = post_form(
        &server,
        "/oauth2/token",
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &c.id),
            ("client_secret", c.secret()),
            ("scope", READ),
        ],
    );
    let (status, v) = status_json(r);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["scope"], READ, "a narrower scope on request");
}

#[test]
fn lifetimes_are_bounded_by_the_policy_maximum() {
    let s = TestStore::init();
    let c = cc_client(&s, &[READ], &["--access-token-validity", "30d"]);
    s.json(&["policy", "--max-token-lifetime", "1d"]);
    let server = TestServer::start(&s.db, Clock::system());
    let r = post_form(
        &server,
        "/oauth2/token",
        Some((&c.id, c.secret())),
        &[("grant_type", "client_credentials")],
    );
    let (status, v) = status_json(r);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["expires_in"], 86_400);
}

#[test]
fn invalid_client_in_every_form() {
    let s = TestStore::init();
    let c = cc_client(&s, &[READ], &[]);
    let server = TestServer::start(&s.db, Clock::system());
    let cc = [("grant_type", "client_credentials")];

    // Wrong secret with Basic: 401 and a Basic challenge.
    let r = post_form(&server, "/oauth2/token", Some((&c.id, "sgcs_wrong")), &cc);
    assert_eq!(r.status(), 401);
    let challenge = r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(challenge.starts_with("Basic"), "{challenge}");
    assert_oauth_error(r, 401, "invalid_client");

    // Wrong secret in the body: 401, no Basic challenge.
    let r = post_form(
        &server,
        "/oauth2/token",
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &c.id),
            ("client_secret", "sgcs_wrong"),
        ],
    );
    assert!(r.headers().get("www-authenticate").is_none());
    assert_oauth_error(r, 401, "invalid_client");

    // Unknown client, both ways, with the real secret.
    let r = post_form(
        &server,
        "/oauth2/token",
        Some(("cl_nobody", c.secret())),
        &cc,
    );
    assert_oauth_error(r, 401, "invalid_client");
    let r = post_form(
        &server,
        "/oauth2/token",
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "cl_nobody"),
            ("client_secret", c.secret()),
        ],
    );
    assert_oauth_error(r, 401, "invalid_client");

    // No credentials at all.
    let r = post_form(&server, "/oauth2/token", None, &cc);
    assert_oauth_error(r, 401, "invalid_client");

    // Two methods at once.
    let r = post_form(
        &server,
        "/oauth2/token",
        Some((&c.id, c.secret())),
        &[
            ("grant_type", "client_credentials"),
            ("client_secret", c.secret()),
        ],
    );
    assert_oauth_error(r, 400, "invalid_request");

    let actions = audit_actions(&s);
    assert!(
        actions
            .iter()
            .filter(|a| *a == "client.authenticate")
            .count()
            >= 4,
        "failed client authentications are audited: {actions:?}"
    );
}

#[test]
fn request_errors_unsupported_grant_unauthorized_client_invalid_scope() {
    let s = TestStore::init();
    let read_only = cc_client(&s, &[READ], &[]);
    let web = code_client(&s, &[]);
    let server = TestServer::start(&s.db, Clock::system());
    let basic = Some((read_only.id.as_str(), read_only.secret()));

    let r = post_form(
        &server,
        "/oauth2/token",
        basic,
        &[("grant_type", "password")],
    );
    assert_oauth_error(r, 400, "unsupported_grant_type");
    let r = post_form(&server, "/oauth2/token", basic, &[("scope", READ)]);
    assert_oauth_error(r, 400, "invalid_request");
    let r = post_form(
        &server,
        "/oauth2/token",
        basic,
        &[
            ("grant_type", "client_credentials"),
            ("grant_type", "client_credentials"),
        ],
    );
    assert_oauth_error(r, 400, "invalid_request");
    let r = crate::support::http()
        .post(server.url("/oauth2/token"))
        .basic_auth(&read_only.id, Some(read_only.secret()))
        .json(&serde_json::json!({"grant_type": "client_credentials"}))
        .send()
        .unwrap();
    assert_oauth_error(r, 400, "invalid_request");

    // More than registered, or a scope that does not exist.
    let r = post_form(
        &server,
        "/oauth2/token",
        basic,
        &[("grant_type", "client_credentials"), ("scope", WRITE)],
    );
    assert_oauth_error(r, 400, "invalid_scope");
    let r = post_form(
        &server,
        "/oauth2/token",
        basic,
        &[("grant_type", "client_credentials"), ("scope", "openid")],
    );
    assert_oauth_error(r, 400, "invalid_scope");

    // A client without the grant.
    let r = post_form(
        &server,
        "/oauth2/token",
        Some((&web.id, web.secret())),
        &[("grant_type", "client_credentials")],
    );
    assert_oauth_error(r, 400, "unauthorized_client");
    let r = post_form(
        &server,
        "/oauth2/token",
        basic,
        &[("grant_type", "refresh_token"), ("refresh_token", "sgrt_x")],
    );
    assert_oauth_error(r, 400, "unauthorized_client");
}

#[test]
fn oversized_body_is_a_client_error() {
    let s = TestStore::init();
    let c = cc_client(&s, &[READ], &[]);
    let server = TestServer::start(&s.db, Clock::system());
    let big = "a".repeat(2 << 20);
    let r = post_form(
        &server,
        "/oauth2/token",
        Some((&c.id, c.secret())),
        &[("grant_type", "client_credentials"), ("pad", &big)],
    );
    assert_oauth_error(r, 413, "invalid_request");
    // The same without a Content-Length (chunked): refused while it is read.
    let body = format!("grant_type=client_credentials&pad={big}");
    let r = crate::support::http()
        .post(server.url("/oauth2/introspect"))
        .basic_auth(&c.id, Some(c.secret()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(reqwest::blocking::Body::new(std::io::Cursor::new(body)))
        .send()
        .unwrap();
    assert_oauth_error(r, 413, "invalid_request");
    // A body in several chunks under the limit is read whole.
    let r = crate::support::http()
        .post(server.url("/oauth2/token"))
        .basic_auth(&c.id, Some(c.secret()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(reqwest::blocking::Body::new(std::io::Cursor::new(format!(
            "pad={}&grant_type=client_credentials",
            "b".repeat(100_000)
        ))))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[test]
fn authorization_code_with_pkce_then_refresh_rotation_and_reuse_detection() {
    let s = TestStore::init();
    create_user(&s);
    let c = code_client(&s, &["--refresh-token-validity", "30d"]);
    let server = TestServer::start(&s.db, Clock::system());
    let b = browser();
    let code = login_and_consent(&b, &server, &auth_query(&c.id, &[]));
    assert!(code.starts_with("sgac_"));

    let r = exchange(&server, &c, &code, Some(VERIFIER));
    assert_eq!(r.headers()["cache-control"], "no-store");
    let (status, v) = status_json(r);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["expires_in"], 3600);
    assert_eq!(v["scope"], format!("{READ} {WRITE}"));
    let access1 = v["access_token"].as_str().unwrap().to_string();
    let refresh1 = v["refresh_token"].as_str().unwrap().to_string();
    assert!(refresh1.starts_with("sgrt_"));
    let i = introspect(&server, &c, &access1);
    assert_eq!(i["active"], true);
    assert_eq!(i["sub"], USER);
    assert_eq!(i["client_id"], c.id.as_str());
    assert_eq!(i["token_type"], "Bearer");
    let i = introspect(&server, &c, &refresh1);
    assert_eq!(i["token_type"], "refresh_token");
    assert_eq!(
        i["exp"].as_i64().unwrap() - i["iat"].as_i64().unwrap(),
        30 * 86_400
    );

    // Rotation: a new pair; the old refresh token is spent.
    let refresh = |rt: &str, extra: &[(&str, &str)]| {
        let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", rt)];
        form.extend_from_slice(extra);
        post_form(&server, "/oauth2/token", Some((&c.id, c.secret())), &form)
    };
    let (status, v) = status_json(refresh(&refresh1, &[("scope", READ)]));
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["scope"], READ, "a refresh may narrow the scope");
    let access2 = v["access_token"].as_str().unwrap().to_string();
    let refresh2 = v["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(refresh2, refresh1);
    assert_eq!(introspect(&server, &c, &refresh1)["active"], false);
    assert_eq!(introspect(&server, &c, &access2)["active"], true);

    // Widening beyond the original grant is refused, and spends nothing.
    assert_oauth_error(
        refresh(&refresh2, &[("scope", WRITE)]),
        400,
        "invalid_scope",
    );
    assert_eq!(introspect(&server, &c, &refresh2)["active"], true);

    // Reuse of the spent token: the whole family dies, and it is audited.
    assert_oauth_error(refresh(&refresh1, &[]), 400, "invalid_grant");
    for t in [&access1, &access2, &refresh2] {
        assert_eq!(
            introspect(&server, &c, t)["active"],
            false,
            "family revoked"
        );
    }
    assert_oauth_error(refresh(&refresh2, &[]), 400, "invalid_grant");
    assert!(audit_actions(&s).contains(&"security.refresh_reuse".to_string()));
}

#[test]
fn code_replay_revokes_what_the_code_issued() {
    let s = TestStore::init();
    create_user(&s);
    let c = code_client(&s, &[]);
    let server = TestServer::start(&s.db, Clock::system());
    let code = login_and_consent(&browser(), &server, &auth_query(&c.id, &[]));
    let (status, v) = status_json(exchange(&server, &c, &code, Some(VERIFIER)));
    assert_eq!(status, 200, "{v}");
    let access = v["access_token"].as_str().unwrap().to_string();
    let refresh = v["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(introspect(&server, &c, &access)["active"], true);

    let v = assert_oauth_error(
        exchange(&server, &c, &code, Some(VERIFIER)),
        400,
        "invalid_grant",
    );
    assert!(
        v["error_description"]
            .as_str()
            .unwrap()
            .contains("already used"),
        "{v}"
    );
    assert_eq!(introspect(&server, &c, &access)["active"], false);
    assert_eq!(introspect(&server, &c, &refresh)["active"], false);
    assert!(audit_actions(&s).contains(&"security.code_replay".to_string()));
}

#[test]
fn code_errors_redirect_uri_pkce_and_expiry() {
    let s = TestStore::init();
    create_user(&s);
    let c = code_client(&s, &["-R", "http://127.0.0.1:9/other"]);
    let clock = Clock::manual(1_900_000_000);
    let server = TestServer::start(&s.db, clock.clone());
    let b = browser();
    let query = auth_query(&c.id, &[]);
    let code = || code_for(&b, &server, &query);

    // redirect_uri differs from the authorization request's.
    let r = post_form(
        &server,
        "/oauth2/token",
        Some((&c.id, c.secret())),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code()),
            ("redirect_uri", "http://127.0.0.1:9/other"),
            ("code_verifier", VERIFIER),
        ],
    );
    assert_oauth_error(r, 400, "invalid_grant");
    // Missing although the request had one.
    let r = post_form(
        &server,
        "/oauth2/token",
        Some((&c.id, c.secret())),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code()),
            ("code_verifier", VERIFIER),
        ],
    );
    assert_oauth_error(r, 400, "invalid_request");

    // PKCE: wrong verifier, no verifier.
    let wrong = "x".repeat(43);
    let v = assert_oauth_error(
        exchange(&server, &c, &code(), Some(&wrong)),
        400,
        "invalid_grant",
    );
    assert!(
        v["error_description"].as_str().unwrap().contains("PKCE"),
        "{v}"
    );
    assert_oauth_error(exchange(&server, &c, &code(), None), 400, "invalid_grant");

    // Another client's code.
    let other = code_client(&s, &[]);
    let r = exchange(&server, &other, &code(), Some(VERIFIER));
    assert_oauth_error(r, 400, "invalid_grant");

    // Expired: codes live 60 seconds.
    let stale = code();
    clock.advance(Duration::seconds(61));
    let v = assert_oauth_error(
        exchange(&server, &c, &stale, Some(VERIFIER)),
        400,
        "invalid_grant",
    );
    assert!(
        v["error_description"].as_str().unwrap().contains("expired"),
        "{v}"
    );

    // And a fresh one still works (the clock moved for the session too).
    let (status, v) = status_json(exchange(&server, &c, &code(), Some(VERIFIER)));
    assert_eq!(status, 200, "{v}");

    // Garbage codes.
    assert_oauth_error(
        exchange(&server, &c, "sgac_nonsense", None),
        400,
        "invalid_grant",
    );
}

#[test]
fn public_clients_need_pkce_and_plain_is_refused() {
    let s = TestStore::init();
    create_user(&s);
    let public = register(
        &s,
        "Native app",
        &[
            "-p",
            "native",
            "-G",
            "authorization_code",
            "-G",
            "refresh_token",
            "-S",
            READ,
            "-R",
            REDIRECT,
        ],
    );
    assert!(public.secret.is_none());
    let server = TestServer::start(&s.db, Clock::system());
    let b = browser();

    // No challenge: refused at the authorization endpoint, back to the client.
    let r = get_authorize(
        &b,
        &server,
        &auth_query(
            &public.id,
            &[("code_challenge", ""), ("code_challenge_method", "")],
        ),
    );
    let p = location_params(&r);
    assert_eq!(param(&p, "error"), Some("invalid_request"));
    assert_eq!(param(&p, "state"), Some("xyz"));
    // plain: refused, for any client.
    let r = get_authorize(
        &b,
        &server,
        &auth_query(
            &public.id,
            &[
                ("code_challenge", VERIFIER),
                ("code_challenge_method", "plain"),
            ],
        ),
    );
    let p = location_params(&r);
    assert_eq!(param(&p, "error"), Some("invalid_request"));
    assert!(param(&p, "error_description").unwrap().contains("S256"));
    let r = get_authorize(
        &b,
        &server,
        &auth_query(&public.id, &[("code_challenge_method", "")]),
    );
    assert_eq!(
        param(&location_params(&r), "error"),
        Some("invalid_request"),
        "plain by default"
    );

    // With S256 the public client gets tokens using only its client_id.
    let code = login_and_consent(&b, &server, &auth_query(&public.id, &[]));
    let r = post_form(
        &server,
        "/oauth2/token",
        None,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &public.id),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    );
    let (status, v) = status_json(r);
    assert_eq!(status, 200, "{v}");
    // A public client may not introspect.
    let r = post_form(
        &server,
        "/oauth2/introspect",
        None,
        &[
            ("client_id", &public.id),
            ("token", v["access_token"].as_str().unwrap()),
        ],
    );
    assert_oauth_error(r, 401, "invalid_client");
}

#[test]
fn concurrent_redemptions_of_one_code_or_refresh_token_let_exactly_one_win() {
    let s = TestStore::init();
    create_user(&s);
    let c = code_client(&s, &[]);
    let server = TestServer::start(&s.db, Clock::system());
    let b = browser();
    let race = |form: Vec<(String, String)>| -> Vec<u16> {
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    let form = form.clone();
                    let (server, c) = (&server, &c);
                    scope.spawn(move || {
                        let form: Vec<(&str, &str)> =
                            form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                        post_form(server, "/oauth2/token", Some((&c.id, c.secret())), &form)
                            .status()
                            .as_u16()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        })
    };
    let owned = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    };

    let code = code_for(&b, &server, &auth_query(&c.id, &[]));
    let statuses = race(owned(&[
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ]));
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 400).count(),
        7,
        "{statuses:?}"
    );

    let code = code_for(&b, &server, &auth_query(&c.id, &[]));
    let (_, v) = status_json(exchange(&server, &c, &code, Some(VERIFIER)));
    let rt = v["refresh_token"].as_str().unwrap().to_string();
    let statuses = race(owned(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", &rt),
    ]));
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
}

#[test]
fn refresh_retry_within_the_grace_replaces_the_lost_rotation() {
    let s = TestStore::init();
    create_user(&s);
    let c = code_client(&s, &[]);
    let clock = Clock::manual(chrono::Utc::now().timestamp());
    let server = TestServer::start_with(
        &s.db,
        clock.clone(),
        scimgate::settings::RawSettings {
            refresh_reuse_grace: Some("30s".into()),
            ..Default::default()
        },
    );
    let refreshed = |token: &str| {
        let (status, v) = refresh(&server, &c, token);
        assert_eq!(status, 200, "{v}");
        (
            v["access_token"].as_str().unwrap().to_string(),
            v["refresh_token"].as_str().unwrap().to_string(),
        )
    };
    let status_of = |token: &str| s.json(&["show-token", token])["status"].clone();

    // The IdP refreshes; the answer is lost, and it retries with the same token 5 s later.
    let (_, r1) = authorize(&server, &c);
    let (a2, r2) = refreshed(&r1);
    clock.advance(Duration::seconds(5));
    let (a3, r3) = refreshed(&r1);
    assert_eq!(
        status_of(&a2),
        "revoked",
        "the lost answer's tokens are revoked"
    );
    assert_eq!(status_of(&r2), "revoked");
    assert_eq!(status_of(&a3), "active");
    let retry = s
        .audit()
        .into_iter()
        .find(|e| e["action"] == "security.refresh_retry")
        .expect("the retry is audited");
    assert_eq!(retry["token_id"], token_id(&r1).as_str());
    assert!(
        retry["detail"].as_str().unwrap().contains(&token_id(&r2)),
        "{retry}"
    );

    // The new pair works; once its refresh token has been used, the old one presented
    // again is a reuse, even within the grace: the whole grant is revoked.
    let (_, r4) = refreshed(&r3);
    clock.advance(Duration::seconds(5));
    let (status, v) = refresh(&server, &c, &r1);
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("invalid_grant")),
        "{v}"
    );
    assert_eq!(status_of(&r4), "revoked");

    // After the grace, a retry is a reuse too.
    let (_, q1) = authorize(&server, &c);
    let (_, q2) = refreshed(&q1);
    clock.advance(Duration::seconds(31));
    let (status, _) = refresh(&server, &c, &q1);
    assert_eq!(status, 400);
    assert_eq!(
        status_of(&q2),
        "revoked",
        "reuse after the grace revokes the grant"
    );
}

/// Regression: with `refresh_reuse_grace`, the answer a retry superseded, presented later,
/// was merely "inactive", so a thief who retried with a stolen refresh token kept a live
/// grant while the real client showed its (superseded) token. Now that is a reuse. And a
/// retry within the grace never re-issues from a client that was cut off meanwhile.
#[test]
fn a_superseded_refresh_token_is_a_reuse_and_a_cut_off_client_cannot_retry() {
    let s = TestStore::init();
    create_user(&s);
    let c = code_client(&s, &[]);
    let clock = Clock::manual(chrono::Utc::now().timestamp());
    let server = TestServer::start_with(
        &s.db,
        clock.clone(),
        scimgate::settings::RawSettings {
            refresh_reuse_grace: Some("30s".into()),
            ..Default::default()
        },
    );
    let status_of = |token: &str| s.json(&["show-token", token])["status"].clone();
    // The client rotates r1 → r2 and keeps r2; a thief with a copy of r1 "retries".
    let (_, r1) = authorize(&server, &c);
    let (status, v) = refresh(&server, &c, &r1);
    assert_eq!(status, 200, "{v}");
    let r2 = v["refresh_token"].as_str().unwrap().to_string();
    let (status, v) = refresh(&server, &c, &r1);
    assert_eq!(
        status, 200,
        "the thief's retry looks like a lost answer: {v}"
    );
    let thief = v["refresh_token"].as_str().unwrap().to_string();
    // The client now uses r2 (superseded): that reveals the copy; the grant dies.
    let (status, v) = refresh(&server, &c, &r2);
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("invalid_grant")),
        "{v}"
    );
    assert_eq!(status_of(&thief), "revoked", "the thief's grant is revoked");

    // A rotation, then the client is cut off: the retry within the grace is refused.
    let (_, q1) = authorize(&server, &c);
    let (status, _) = refresh(&server, &c, &q1);
    assert_eq!(status, 200);
    s.config()
        .args(["revoke-token", "--client-id", &c.id, "--all"])
        .assert()
        .success();
    let (status, v) = refresh(&server, &c, &q1);
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("invalid_grant")),
        "{v}"
    );
}

/// PKCE per client (RFC 9700 §2.1.1): a confidential client registered with
/// `--require-pkce true` must send a challenge at the authorization endpoint, and a code
/// issued without one before the switch is refused at the token endpoint. The default
/// (off) keeps Okta's OAuth-mode provisioning, which sends no PKCE, working.
#[test]
fn pkce_can_be_required_per_confidential_client() {
    let s = TestStore::init();
    create_user(&s);
    let c = code_client(&s, &["--require-pkce", "true"]);
    let shown = s
        .config()
        .args(["show-api-client", "-i", &c.id])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&shown.stdout).contains("PKCE:             required"));
    let server = TestServer::start(&s.db, Clock::system());
    let b = browser();
    let no_pkce = auth_query(
        &c.id,
        &[("code_challenge", ""), ("code_challenge_method", "")],
    );
    let r = get_authorize(&b, &server, &no_pkce);
    let params = location_params(&r);
    assert_eq!(
        param(&params, "error"),
        Some("invalid_request"),
        "{params:?}"
    );
    assert!(
        param(&params, "error_description")
            .unwrap()
            .contains("must use PKCE")
    );
    // With PKCE it works.
    let code = code_for(&b, &server, &auth_query(&c.id, &[]));
    assert_eq!(exchange(&server, &c, &code, Some(VERIFIER)).status(), 200);
    // Switched off: a code without PKCE; switched on again before it is redeemed: refused.
    s.config()
        .args(["update-api-client", "-i", &c.id, "--require-pkce", "false"])
        .assert()
        .success();
    let code = code_for(&b, &server, &no_pkce);
    s.config()
        .args(["update-api-client", "-i", &c.id, "--require-pkce", "true"])
        .assert()
        .success();
    std::thread::sleep(std::time::Duration::from_millis(1100)); // the server's client cache
    let r = exchange(&server, &c, &code, None);
    let v = assert_oauth_error(r, 400, "invalid_grant");
    assert!(
        v["error_description"]
            .as_str()
            .unwrap()
            .contains("must use PKCE"),
        "{v}"
    );
    // A default client (off) takes a code flow without PKCE, as Okta runs it.
    let okta = code_client(&s, &[]);
    let code = code_for(
        &b,
        &server,
        &auth_query(
            &okta.id,
            &[("code_challenge", ""), ("code_challenge_method", "")],
        ),
    );
    assert_eq!(exchange(&server, &okta, &code, None).status(), 200);
}
