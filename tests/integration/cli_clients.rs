//! `config` API-client commands: register (seed 000's command line verbatim), list, show,
//! update, rotate-client-secret, delete, and their error paths.

use predicates::prelude::*;

use crate::support::{TOOL_PASSWORD, TestStore};

const OKTA_CALLBACK: &str = "https://system-admin.okta.com/admin/app/cpc/myapp/oauth/callback";

#[test]
fn seed_000_register_command_works_verbatim() {
    let s = TestStore::init();
    let out = s
        .config_no_password()
        .args([
            "register-api-client",
            "-n",
            "MyApp",
            "--client-profile=WEB",
            "-G",
            "AUTHORIZATION_CODE",
            "-G",
            "REFRESH_TOKEN",
            "-S",
            "user-directory.read.all",
            "-S",
            "user-directory.write.all",
            "-t",
            TOOL_PASSWORD,
            "-R",
            OKTA_CALLBACK,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("API client successfully registered."),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("Client secret:") && l.contains(" sgcs_")),
        "{stdout}"
    );
    assert!(stdout.contains(OKTA_CALLBACK));
    assert!(stderr.contains("shell history"), "-t must warn: {stderr}");
    let clients = s.json(&["list-api-clients"]);
    let c = &clients[0];
    assert_eq!(c["name"], "MyApp");
    assert_eq!(c["profile"], "web");
    assert_eq!(
        c["grants"],
        serde_json::json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(
        c["scopes"],
        serde_json::json!(["user-directory.read.all", "user-directory.write.all"])
    );
    assert_eq!(c["redirect_uris"], serde_json::json!([OKTA_CALLBACK]));
    assert_eq!(c["auth_method"], "client_secret_basic");
}

#[test]
fn secret_is_shown_once_and_stored_only_as_hash() {
    let s = TestStore::init_sqlite();
    let v = s.json(&[
        "register-api-client",
        "-n",
        "A",
        "-G",
        "client_credentials",
        "-S",
        "user-directory.read.all",
    ]);
    let secret = v["client_secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("sgcs_"));
    let shown = s.json(&["show-api-client", "-i", v["id"].as_str().unwrap()]);
    assert!(!shown.to_string().contains(&secret));
    assert_eq!(shown["has_secret"], true);
    let db = std::fs::read(&s.db).unwrap();
    let wal = std::fs::read(s.db.with_extension("db-wal")).unwrap_or_default();
    for bytes in [db, wal] {
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "the plaintext secret is in the store file"
        );
    }
}

#[test]
fn aliases_list_show_delete() {
    let s = TestStore::init();
    let id = s.cc_client("Entra prod");
    for cmd in ["list-api-clients", "list-oauth2-clients"] {
        let v = s.json(&[cmd]);
        assert_eq!(v.as_array().unwrap().len(), 1, "{cmd}");
    }
    let v = s.json(&["show-oauth2-client", "-i", &id]);
    assert_eq!(v["name"], "Entra prod");
    s.config()
        .args(["list-api-clients"])
        .assert()
        .success()
        .stdout(predicate::str::contains("CLIENT ID").and(predicate::str::contains("Entra prod")));
    let (_, tok) = s.issue(&id, &[]);
    let v = s.json(&["delete-oauth2-client", "-i", &id]);
    assert_eq!(v["tokens_revoked"], 1);
    assert_eq!(s.json(&["list-api-clients"]).as_array().unwrap().len(), 0);
    let t = s.json(&["show-token", &tok]);
    assert_eq!(t["status"], "revoked");
    assert_eq!(t["revoked_reason"], "client deleted");
    let err = s.fails(&["show-api-client", "-i", &id], 1);
    assert!(err.contains("no API client with id"), "{err}");
    s.fails(&["delete-api-client", "-i", &id], 1);
}

#[test]
fn idp_reference_and_heartbeat_defaults() {
    let s = TestStore::init();
    let v = s.json(&[
        "register-api-client",
        "-n",
        "Entra",
        "-G",
        "client_credentials",
        "-S",
        "user-directory.write.all",
        "--idp",
        "Azure",
        "--idp-app-id",
        "8f2b0000-app",
        "--idp-tenant",
        "contoso.onmicrosoft.com",
        "--owner",
        "iam@contoso.example",
    ]);
    assert_eq!(v["idp"]["kind"], "entra");
    assert_eq!(v["idp"]["app_id"], "8f2b0000-app");
    assert_eq!(v["idp"]["tenant"], "contoso.onmicrosoft.com");
    assert_eq!(v["heartbeat"]["interval"], "40m");
    assert_eq!(v["heartbeat"]["missed"], 3);
    let okta = s.json(&[
        "register-api-client",
        "-n",
        "Okta",
        "-G",
        "authorization_code",
        "-S",
        "user-directory.read.all",
        "-R",
        OKTA_CALLBACK,
        "--idp",
        "okta",
    ]);
    assert!(okta["heartbeat"].is_null());
    let custom = s.json(&[
        "register-api-client",
        "-n",
        "Job",
        "-G",
        "client_credentials",
        "-S",
        "user-directory.read.all",
        "--heartbeat-interval",
        "2s",
        "--missed-heartbeats",
        "5",
    ]);
    assert_eq!(custom["heartbeat"]["interval"], "2s");
    assert_eq!(custom["heartbeat"]["missed"], 5);
}

#[test]
fn update_changes_only_what_is_asked() {
    let s = TestStore::init();
    let id = s.cc_client("Before");
    let v = s.json(&[
        "update-api-client",
        "-i",
        &id,
        "-n",
        "After",
        "--heartbeat-interval",
        "15m",
        "--missed-heartbeats",
        "2",
        "--access-token-validity",
        "2h",
    ]);
    assert_eq!(v["name"], "After");
    assert_eq!(v["heartbeat"]["interval"], "15m");
    assert_eq!(v["access_token_ttl"], "2h");
    assert_eq!(v["grants"], serde_json::json!(["client_credentials"]));
    let v = s.json(&[
        "update-api-client",
        "-i",
        &id,
        "-G",
        "client_credentials",
        "-G",
        "authorization_code",
        "--add-redirect-uri",
        "https://idp.example/cb",
    ]);
    assert_eq!(
        v["redirect_uris"],
        serde_json::json!(["https://idp.example/cb"])
    );
    let v = s.json(&[
        "update-api-client",
        "-i",
        &id,
        "--heartbeat-interval",
        "off",
    ]);
    assert!(v["heartbeat"].is_null());
    let err = s.fails(
        &[
            "update-api-client",
            "-i",
            &id,
            "--remove-redirect-uri",
            "https://other.example/cb",
        ],
        1,
    );
    assert!(err.contains("is not registered"), "{err}");
    let err = s.fails(
        &[
            "update-api-client",
            "-i",
            &id,
            "--remove-redirect-uri",
            "https://idp.example/cb",
        ],
        1,
    );
    assert!(err.contains("needs at least one redirect URI"), "{err}");
    let err = s.fails(&["update-api-client", "-i", "cl_nope", "-n", "x"], 1);
    assert!(err.contains("no API client with id cl_nope"), "{err}");
    let audit = s.audit();
    assert_eq!(
        audit
            .iter()
            .filter(|e| e["action"] == "client.update")
            .count(),
        3
    );
}

#[test]
fn rotate_client_secret_replaces_the_secret() {
    let s = TestStore::init();
    let v = s.json(&[
        "register-api-client",
        "-n",
        "A",
        "-G",
        "client_credentials",
        "-S",
        "user-directory.read.all",
    ]);
    let id = v["id"].as_str().unwrap();
    let old = v["client_secret"].as_str().unwrap();
    let r = s.json(&[
        "rotate-client-secret",
        "-i",
        id,
        "--client-secret-validity",
        "90d",
    ]);
    let new = r["client_secret"].as_str().unwrap();
    assert!(new.starts_with("sgcs_") && new != old);
    assert!(r["secret_expires_at"].is_string());
    let public = s.json(&[
        "register-api-client",
        "-n",
        "SPA",
        "-p",
        "user_agent",
        "-G",
        "authorization_code",
        "-S",
        "user-directory.read.all",
        "-R",
        "https://spa.example/cb",
    ]);
    assert_eq!(public["auth_method"], "none");
    assert!(public["client_secret"].is_null());
    let err = s.fails(
        &["rotate-client-secret", "-i", public["id"].as_str().unwrap()],
        1,
    );
    assert!(err.contains("public client"), "{err}");
}

#[test]
fn register_validation_errors() {
    let s = TestStore::init();
    let base = ["register-api-client", "-n", "X"];
    let cases: &[(&[&str], i32, &str)] = &[
        (
            &["-G", "password", "-S", "user-directory.read.all"],
            2,
            "not a grant type",
        ),
        (
            &["-G", "client_credentials", "-S", "admin.all"],
            2,
            "valid scopes: user-directory.read.all, user-directory.write.all",
        ),
        (
            &["-G", "client_credentials", "-S", "user.directory.read.all"],
            2,
            "did you mean user-directory.read.all?",
        ),
        (
            &[
                "-p",
                "desktop",
                "-G",
                "client_credentials",
                "-S",
                "user-directory.read.all",
            ],
            2,
            "not a client profile",
        ),
        (
            &[
                "-a",
                "private_key_jwt",
                "-G",
                "client_credentials",
                "-S",
                "user-directory.read.all",
            ],
            2,
            "not a token endpoint authentication method",
        ),
        (&["-G", "client_credentials"], 1, "at least one scope"),
        (
            &["-S", "user-directory.read.all"],
            1,
            "at least one grant type",
        ),
        (
            &["-G", "authorization_code", "-S", "user-directory.read.all"],
            1,
            "needs at least one redirect URI",
        ),
        (
            &[
                "-G",
                "authorization_code",
                "-S",
                "user-directory.read.all",
                "-R",
                "/callback",
            ],
            1,
            "not an absolute URI",
        ),
        (
            &[
                "-G",
                "authorization_code",
                "-S",
                "user-directory.read.all",
                "-R",
                "https://a.example/cb#top",
            ],
            1,
            "fragment",
        ),
        (
            &[
                "-G",
                "authorization_code",
                "-S",
                "user-directory.read.all",
                "-R",
                "http://a.example/cb",
            ],
            1,
            "uses http",
        ),
        (
            &["-G", "refresh_token", "-S", "user-directory.read.all"],
            1,
            "needs the authorization_code grant",
        ),
        (
            &[
                "-a",
                "none",
                "-G",
                "client_credentials",
                "-S",
                "user-directory.read.all",
            ],
            1,
            "cannot use client_credentials",
        ),
        (
            &[
                "-G",
                "client_credentials",
                "-S",
                "user-directory.read.all",
                "--access-token-validity",
                "3y",
            ],
            1,
            "beyond the maximum token lifetime",
        ),
        (
            &[
                "-G",
                "client_credentials",
                "-S",
                "user-directory.read.all",
                "--access-token-validity",
                "0d",
            ],
            2,
            "not a positive duration",
        ),
        (
            &[
                "-G",
                "client_credentials",
                "-S",
                "user-directory.read.all",
                "--access-token-validity",
                "1 day",
            ],
            2,
            "not a duration",
        ),
        (
            &[
                "-G",
                "client_credentials",
                "-S",
                "user-directory.read.all",
                "--missed-heartbeats",
                "0",
                "--heartbeat-interval",
                "1m",
            ],
            1,
            "at least 1",
        ),
    ];
    for (extra, code, needle) in cases {
        let mut args: Vec<&str> = base.to_vec();
        args.extend_from_slice(extra);
        let err = s.fails(&args, *code);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    assert_eq!(
        s.json(&["list-api-clients"]).as_array().unwrap().len(),
        0,
        "nothing was registered"
    );
}

#[test]
fn secret_lifetimes_and_empty_updates() {
    let s = TestStore::init();
    let v = s.json(&[
        "register-api-client",
        "-n",
        "A",
        "-G",
        "client_credentials",
        "-S",
        "user-directory.read.all",
        "--client-secret-validity",
        "90d",
    ]);
    let id = v["id"].as_str().unwrap();
    let err = s.fails(
        &[
            "register-api-client",
            "-n",
            "SPA2",
            "-p",
            "native",
            "-G",
            "authorization_code",
            "-S",
            "user-directory.read.all",
            "-R",
            "https://spa.example/cb",
            "--client-secret-validity",
            "30d",
        ],
        1,
    );
    assert!(err.contains("has no secret"), "{err}");
    // Without a new validity, a rotated secret keeps the client's secret lifetime.
    let again = s.json(&["rotate-client-secret", "-i", id]);
    let left = chrono::DateTime::parse_from_rfc3339(again["secret_expires_at"].as_str().unwrap())
        .unwrap()
        .with_timezone(&chrono::Utc)
        - chrono::Utc::now();
    assert!((89..=90).contains(&left.num_days()), "{left}");
    let err = s.fails(&["update-api-client", "-i", id], 1);
    assert!(err.contains("nothing to change"), "{err}");
}
