//! `/oauth2/revoke` (RFC 7009), `/oauth2/introspect` (RFC 7662) and the RFC 8414 metadata
//! document, over real HTTP.

use scimgate::time::Clock;

use crate::oauth_support::*;
use crate::support::{TestServer, TestStore};

fn cc_token(server: &TestServer, c: &Registered) -> String {
    let r = post_form(
        server,
        "/oauth2/token",
        Some((&c.id, c.secret())),
        &[("grant_type", "client_credentials")],
    );
    let (status, v) = status_json(r);
    assert_eq!(status, 200, "{v}");
    v["access_token"].as_str().unwrap().to_string()
}

#[test]
fn introspection_fields_and_inactive_cases() {
    let s = TestStore::init();
    let c = cc_client(&s, &[READ, WRITE], &[]);
    let other = cc_client(&s, &[READ], &[]);
    let server = TestServer::start(&s.db, Clock::system());
    let token = cc_token(&server, &c);
    let v = introspect(&server, &c, &token);
    assert_eq!(v["active"], true);
    assert_eq!(v["scope"], format!("{READ} {WRITE}"));
    assert_eq!(v["client_id"], c.id.as_str());
    assert_eq!(
        v["sub"],
        c.id.as_str(),
        "client_credentials: the client is the subject"
    );
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["iss"], server.base.as_str());
    let id = v["token_id"].as_str().unwrap();
    assert_eq!(
        id,
        scimgate::token::parse(&token).unwrap().id.as_str(),
        "the public token id"
    );
    assert_eq!(
        v["exp"].as_i64().unwrap() - v["iat"].as_i64().unwrap(),
        3600
    );

    // Unknown, malformed, another client's: `{"active": false}` and nothing else.
    let unknown = scimgate::token::generate(scimgate::token::TokenKind::Access, 1_800_000_000);
    for t in [unknown.secret.expose(), "garbage", c.secret()] {
        let v = introspect(&server, &c, t);
        assert_eq!(v, serde_json::json!({"active": false}), "{t}");
    }
    assert_eq!(
        introspect(&server, &other, &token),
        serde_json::json!({"active": false})
    );
    // A CLI-issued (long-lived) token introspects too.
    let (cli_token, _) = s.issue(&c.id, &["--valid-for", "90d"]);
    assert_eq!(introspect(&server, &c, &cli_token)["active"], true);

    // Client authentication is required.
    let r = post_form(&server, "/oauth2/introspect", None, &[("token", &token)]);
    assert_oauth_error(r, 401, "invalid_client");
    let r = post_form(
        &server,
        "/oauth2/introspect",
        Some((&c.id, c.secret())),
        &[],
    );
    assert_oauth_error(r, 400, "invalid_request");
}

#[test]
fn revoke_then_introspect() {
    let s = TestStore::init();
    let c = cc_client(&s, &[READ], &[]);
    let other = cc_client(&s, &[READ], &[]);
    let server = TestServer::start(&s.db, Clock::system());
    let token = cc_token(&server, &c);
    let theirs = cc_token(&server, &other);
    let revoke = |who: &Registered, t: &str| {
        post_form(
            &server,
            "/oauth2/revoke",
            Some((&who.id, who.secret())),
            &[("token", t), ("token_type_hint", "access_token")],
        )
    };

    // Another client's token: 200, and it stays active.
    assert_eq!(revoke(&c, &theirs).status(), 200);
    assert_eq!(introspect(&server, &other, &theirs)["active"], true);
    // Unknown and malformed tokens: 200.
    assert_eq!(revoke(&c, "sgat_unknown").status(), 200);
    let unknown = scimgate::token::generate(scimgate::token::TokenKind::Access, 1_800_000_000);
    assert_eq!(revoke(&c, unknown.secret.expose()).status(), 200);

    let r = revoke(&c, &token);
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(introspect(&server, &c, &token)["active"], false);
    assert!(audit_actions(&s).contains(&"token.revoke".to_string()));
    // Twice is fine.
    assert_eq!(revoke(&c, &token).status(), 200);

    // Authentication required; the token parameter required.
    let r = post_form(&server, "/oauth2/revoke", None, &[("token", &theirs)]);
    assert_oauth_error(r, 401, "invalid_client");
    let r = post_form(
        &server,
        "/oauth2/revoke",
        Some((&c.id, "sgcs_wrong")),
        &[("token", &theirs)],
    );
    assert_oauth_error(r, 401, "invalid_client");
    assert_eq!(introspect(&server, &other, &theirs)["active"], true);
    let r = post_form(&server, "/oauth2/revoke", Some((&c.id, c.secret())), &[]);
    assert_oauth_error(r, 400, "invalid_request");
}

#[test]
fn revoking_a_refresh_token_revokes_its_family() {
    let s = TestStore::init();
    create_user(&s);
    let c = code_client(&s, &[]);
    let server = TestServer::start(&s.db, Clock::system());
    let code = code_for(&browser(), &server, &auth_query(&c.id, &[]));
    let (_, v) = status_json(exchange(&server, &c, &code, Some(VERIFIER)));
    let access = v["access_token"].as_str().unwrap().to_string();
    let refresh = v["refresh_token"].as_str().unwrap().to_string();
    let r = post_form(
        &server,
        "/oauth2/revoke",
        None,
        &[
            ("token", &refresh),
            ("client_id", &c.id),
            ("client_secret", c.secret()),
        ],
    );
    assert_eq!(r.status(), 200);
    assert_eq!(introspect(&server, &c, &refresh)["active"], false);
    assert_eq!(
        introspect(&server, &c, &access)["active"],
        false,
        "family revoked"
    );
    let r = post_form(
        &server,
        "/oauth2/token",
        Some((&c.id, c.secret())),
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    );
    assert_oauth_error(r, 400, "invalid_grant");
}

#[test]
fn metadata_document_is_complete() {
    let s = TestStore::init();
    let server = TestServer::start(&s.db, Clock::system());
    let r = crate::support::http()
        .get(server.url("/.well-known/oauth-authorization-server"))
        .send()
        .unwrap();
    let (status, v) = status_json(r);
    assert_eq!(status, 200);
    let base = &server.base;
    assert_eq!(v["issuer"], base.as_str());
    for (key, path) in [
        ("authorization_endpoint", "/oauth2/authorize"),
        ("token_endpoint", "/oauth2/token"),
        ("revocation_endpoint", "/oauth2/revoke"),
        ("introspection_endpoint", "/oauth2/introspect"),
    ] {
        assert_eq!(v[key], format!("{base}{path}"), "{key}");
    }
    assert_eq!(v["scopes_supported"], serde_json::json!([READ, WRITE]));
    assert_eq!(v["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(
        v["grant_types_supported"],
        serde_json::json!(["authorization_code", "refresh_token", "client_credentials"])
    );
    assert_eq!(
        v["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    for key in [
        "token_endpoint_auth_methods_supported",
        "revocation_endpoint_auth_methods_supported",
        "introspection_endpoint_auth_methods_supported",
    ] {
        let methods = v[key].as_array().unwrap();
        assert!(
            methods.contains(&serde_json::json!("client_secret_basic")),
            "{key}"
        );
        assert!(
            methods.contains(&serde_json::json!("client_secret_post")),
            "{key}"
        );
    }
    assert!(
        !v["introspection_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("none"))
    );
    // Every advertised endpoint answers (not 404).
    for key in [
        "token_endpoint",
        "revocation_endpoint",
        "introspection_endpoint",
    ] {
        let r = crate::support::http()
            .post(v[key].as_str().unwrap())
            .send()
            .unwrap();
        assert_eq!(r.status(), 400, "{key}");
        let r = crate::support::http()
            .get(v[key].as_str().unwrap())
            .send()
            .unwrap();
        assert_eq!(r.status(), 405, "{key} is POST only");
    }
}
