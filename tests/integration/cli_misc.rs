//! `config` store-wide behaviour: init, policy, audit, JSON output, missing or newer
//! stores, and that no secret ever lands in the audit log.

use crate::support::{TOOL_PASSWORD, TestStore};

#[test]
fn init_creates_a_private_store_once() {
    let s = TestStore::empty_sqlite();
    let out = s
        .config_no_password()
        .env("SCIMGATE_TOOL_PASSWORD", TOOL_PASSWORD)
        .args(["init", "--max-token-lifetime", "1y"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&s.db).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    assert_eq!(s.json(&["policy"])["max_token_lifetime"], "1y");
    let err = s.fails(&["init"], 1);
    assert!(err.contains("already initialised"), "{err}");
    let err = s.fails(&["policy", "--max-token-lifetime", "nope"], 2);
    assert!(err.contains("not a duration"), "{err}");
}

#[test]
fn commands_on_a_missing_or_uninitialised_store() {
    let s = TestStore::empty();
    let err = s.fails(&["list-tokens"], 1);
    assert!(
        err.contains("does not exist") && err.contains("config init"),
        "{err}"
    );
    // A store the server created has no tool password yet.
    crate::support::open_store(&s.db);
    let err = s.fails(&["list-tokens"], 1);
    assert!(err.contains("no tool password yet"), "{err}");
}

#[test]
fn a_newer_store_is_refused() {
    let s = TestStore::init_sqlite();
    let conn = rusqlite::Connection::open(&s.db).unwrap();
    conn.execute_batch("PRAGMA user_version = 999").unwrap();
    drop(conn);
    let err = s.fails(&["list-tokens"], 1);
    assert!(
        err.contains("schema version 999, newer than this program knows"),
        "{err}"
    );
}

#[test]
fn audit_lists_every_change_without_secrets() {
    let s = TestStore::init();
    let reg = s.json(&[
        "register-api-client",
        "-n",
        "A",
        "-G",
        "client_credentials",
        "-S",
        "user-directory.read.all",
    ]);
    let id = reg["id"].as_str().unwrap();
    let secret = reg["client_secret"].as_str().unwrap().to_string();
    let (token, tid) = s.issue(id, &[]);
    let rotated = s.json(&["rotate-token", &tid]);
    let rotated_token = rotated["access_token"].as_str().unwrap().to_string();
    s.json(&["revoke-token", "--token", &token]);
    let rot = s.json(&["rotate-client-secret", "-i", id]);
    let secret2 = rot["client_secret"].as_str().unwrap().to_string();
    let events = s.audit();
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        vec![
            "store.init",
            "client.register",
            "token.issue",
            "token.rotate",
            "token.revoke",
            "client.rotate_secret"
        ]
    );
    for e in &events {
        assert_eq!(e["actor"], "cli:tester");
        assert!(e["at"].as_str().unwrap().ends_with('Z'));
    }
    assert_eq!(events[2]["token_id"], tid.as_str());
    assert_eq!(events[2]["client_id"], id);
    let dump = serde_json::to_string(&events).unwrap();
    for secret in [
        &secret,
        &secret2,
        &token,
        &rotated_token,
        &TOOL_PASSWORD.to_string(),
    ] {
        assert!(
            !dump.contains(secret.as_str()),
            "a secret is in the audit log"
        );
    }
    let text = s
        .config()
        .args(["audit", "--since", "1h"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout).to_string();
    assert!(
        text.contains("ACTION") && text.contains("token.issue"),
        "{text}"
    );
    assert_eq!(
        s.json(&["audit", "--since", "2999-01-01"])
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let err = s.fails(&["audit", "--since", "yesterday"], 2);
    assert!(err.contains("neither a duration"), "{err}");
}

#[test]
fn audit_log_is_append_only() {
    let s = TestStore::init_sqlite();
    s.cc_client("A");
    let store = crate::support::open_store(&s.db);
    // The store has no API to change events; the schema's triggers stop raw SQL too.
    let n = store.audit_events(None, 100).unwrap().len();
    assert!(n >= 2);
    let conn = rusqlite::Connection::open(&s.db).unwrap();
    let err = conn.execute_batch("DELETE FROM audit_events").unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    let err = conn
        .execute_batch("UPDATE audit_events SET outcome = 'x'")
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    assert_eq!(store.audit_events(None, 100).unwrap().len(), n);
}

#[test]
fn every_printing_command_speaks_json() {
    let s = TestStore::init();
    let id = s.cc_client("A");
    let (_, tid) = s.issue(&id, &[]);
    let pw = s.dir.path().join("pw");
    std::fs::write(&pw, "long-enough-pw\n").unwrap();
    for args in [
        vec!["list-api-clients"],
        vec!["show-api-client", "-i", &id],
        vec!["update-api-client", "-i", &id, "-n", "B"],
        vec!["list-tokens"],
        vec!["show-token", &tid],
        vec!["rotate-token", &tid],
        vec!["audit"],
        vec!["policy"],
        vec![
            "create-user",
            "-u",
            "u1",
            "--password-file",
            pw.to_str().unwrap(),
        ],
        vec![
            "set-password",
            "-u",
            "u1",
            "--password-file",
            pw.to_str().unwrap(),
        ],
        vec!["list-users"],
        vec!["delete-user", "-u", "u1"],
        vec!["revoke-token", "--id", &tid],
        vec!["rotate-client-secret", "-i", &id],
        vec!["delete-api-client", "-i", &id],
    ] {
        let v = s.json(&args);
        assert!(v.is_object() || v.is_array(), "{args:?}");
    }
}

#[test]
fn a_refused_init_leaves_no_store_behind() {
    let s = TestStore::empty();
    let out = s
        .config_no_password()
        .env("SCIMGATE_TOOL_PASSWORD", "short")
        .arg("init")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 8 characters"));
    assert!(!s.db.exists());
}

#[test]
fn an_explicit_password_file_wins_over_the_environment() {
    let s = TestStore::init();
    s.config_no_password()
        .env("SCIMGATE_TOOL_PASSWORD", "stale-wrong-password")
        .arg("--tool-password-file")
        .arg(s.password_file())
        .arg("policy")
        .assert()
        .success();
}

#[test]
fn audit_since_a_bare_date_starts_at_midnight() {
    let s = TestStore::init();
    s.cc_client("A");
    let all = s.audit().len();
    let today = chrono::Local::now().format("%Y-%m-%d").to_string();
    let v = s.json(&["audit", "--since", &today]);
    assert_eq!(v.as_array().unwrap().len(), all);
}
