//! `config` token commands: issue-access-token (seed 001's command line, tool password
//! prompted on a terminal), list-tokens, show-token, revoke-token, rotate-token.

use predicates::prelude::*;

use crate::support::{TOOL_PASSWORD, TestStore, config_bin};

#[test]
fn seed_001_issue_with_prompted_password() {
    let s = TestStore::init();
    let id = s.cc_client("Entra");
    // `script` gives the command a terminal, so rpassword prompts on it; we type the
    // password into the terminal.
    let cmd = format!(
        "{} issue-access-token --client-id={id} -Suser-directory.write.all -Suser-directory.read.all",
        config_bin().display()
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("SCIMGATE_DB", &s.db)
        .env("TZ", "UTC")
        .env_remove("SCIMGATE_TOOL_PASSWORD")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            std::thread::sleep(std::time::Duration::from_millis(300));
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(format!("{TOOL_PASSWORD}\n").as_bytes())?;
            child.wait_with_output()
        })
        .expect("run config under script");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("Tool password:"), "{text}");
    assert!(text.contains("Access token successfully issued."), "{text}");
    assert!(text.contains("Access token: sgat_"), "{text}");
    assert!(text.contains("Token id:"), "{text}");
    assert!(
        text.contains("Valid until:") && text.contains("UTC (in 2 years)"),
        "{text}"
    );
    assert!(text.contains("revoke-token"), "{text}");
    assert!(
        !text.contains(TOOL_PASSWORD),
        "the password was echoed: {text}"
    );
    let tokens = s.json(&["list-tokens"]);
    assert_eq!(tokens.as_array().unwrap().len(), 1);
    let t = &tokens[0];
    assert_eq!(t["client_id"], id.as_str());
    let lifetime = chrono::DateTime::parse_from_rfc3339(t["expires_at"].as_str().unwrap()).unwrap()
        - chrono::DateTime::parse_from_rfc3339(t["issued_at"].as_str().unwrap()).unwrap();
    assert_eq!(lifetime.num_hours(), 17_520, "Spotfire's default validity");
}

#[test]
fn no_terminal_and_no_password_is_a_clear_error() {
    let s = TestStore::init();
    let out = s
        .config_std()
        .args(["list-tokens"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("SCIMGATE_TOOL_PASSWORD"), "{err}");
}

#[test]
fn validity_flags_and_durations() {
    let s = TestStore::init();
    let id = s.cc_client("C");
    let hours = |v: &serde_json::Value| v["expires_in_seconds"].as_i64().unwrap() / 3600;
    let v = s.json(&["issue-access-token", "-i", &id, "-v", "48"]);
    assert_eq!(hours(&v), 48);
    for (flag, secs) in [
        ("30s", 30),
        ("15m", 900),
        ("12h", 43_200),
        ("90d", 7_776_000),
        ("2y", 63_072_000),
    ] {
        let v = s.json(&["issue-access-token", "-i", &id, "--valid-for", flag]);
        let got = v["expires_in_seconds"].as_i64().unwrap();
        assert!((secs - 2..=secs).contains(&got), "{flag}: {got}");
    }
    let at = (chrono::Utc::now() + chrono::Duration::days(400))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let v = s.json(&["issue-access-token", "-i", &id, "--expires-at", &at]);
    assert_eq!(v["expires_at"], at.as_str());
    let v = s.json(&[
        "issue-access-token",
        "-i",
        &id,
        "--label",
        "entra prod",
        "-S",
        "user-directory.read.all",
    ]);
    assert_eq!(v["label"], "entra prod");
    assert_eq!(v["scopes"], serde_json::json!(["user-directory.read.all"]));
    let err = s.fails(&["issue-access-token", "-i", &id, "-v", "0"], 1);
    assert!(err.contains("not positive"), "{err}");
    let err = s.fails(&["issue-access-token", "-i", &id, "-v", "-5"], 2);
    assert!(err.starts_with("error: "), "{err}");
    let err = s.fails(&["issue-access-token", "-i", &id, "-v", "17521"], 1);
    assert!(
        err.contains("beyond the maximum token lifetime of 2y"),
        "{err}"
    );
    let err = s.fails(&["issue-access-token", "-i", &id, "--valid-for", "3y"], 1);
    assert!(err.contains("beyond the maximum"), "{err}");
    let err = s.fails(&["issue-access-token", "-i", &id, "--valid-for", "10x"], 2);
    assert!(err.contains("30s, 15m, 12h, 90d or 2y"), "{err}");
    let err = s.fails(
        &[
            "issue-access-token",
            "-i",
            &id,
            "--expires-at",
            "2001-01-01",
        ],
        1,
    );
    assert!(err.contains("in the past"), "{err}");
    let err = s.fails(
        &[
            "issue-access-token",
            "-i",
            &id,
            "-v",
            "5",
            "--valid-for",
            "2d",
        ],
        2,
    );
    assert!(err.contains("cannot be used with"), "{err}");
    // The maximum is configurable.
    s.json(&["policy", "--max-token-lifetime", "3y"]);
    s.json(&["issue-access-token", "-i", &id, "--valid-for", "3y"]);
}

#[test]
fn issue_needs_grant_scope_and_client() {
    let s = TestStore::init();
    let v = s.json(&[
        "register-api-client",
        "-n",
        "Okta",
        "-G",
        "authorization_code",
        "-S",
        "user-directory.read.all",
        "-R",
        "https://system-admin.okta.com/admin/app/cpc/x/oauth/callback",
    ]);
    let okta = v["id"].as_str().unwrap();
    let err = s.fails(&["issue-access-token", "-i", okta], 1);
    assert!(
        err.contains("does not have the client_credentials grant"),
        "{err}"
    );
    let ro = s.json(&[
        "register-api-client",
        "-n",
        "RO",
        "-G",
        "client_credentials",
        "-S",
        "user-directory.read.all",
    ]);
    let err = s.fails(
        &[
            "issue-access-token",
            "-i",
            ro["id"].as_str().unwrap(),
            "-S",
            "user-directory.write.all",
        ],
        1,
    );
    assert!(
        err.contains("not registered for scope user-directory.write.all"),
        "{err}"
    );
    let err = s.fails(&["issue-access-token", "-i", "cl_missing"], 1);
    assert!(err.contains("no API client with id cl_missing"), "{err}");
    assert_eq!(
        s.json(&["list-tokens", "--all"]).as_array().unwrap().len(),
        0
    );
}

#[test]
fn list_and_show_tell_validity_and_never_the_secret() {
    let s = TestStore::init();
    let a = s.cc_client("A");
    let b = s.cc_client("B");
    let (soon, soon_id) = s.issue(&a, &["--valid-for", "3d"]);
    let (_, later_id) = s.issue(&a, &["--valid-for", "90d"]);
    let (_, b_id) = s.issue(&b, &["--valid-for", "10d", "--label", "b-token"]);
    let all = s.json(&["list-tokens"]);
    let ids: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![soon_id.as_str(), b_id.as_str(), later_id.as_str()],
        "soonest expiry first"
    );
    let expiring = s.json(&["list-tokens", "--expiring-within", "14d"]);
    let ids: Vec<&str> = expiring
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![soon_id.as_str(), b_id.as_str()]);
    let only_b = s.json(&["list-tokens", "--client-id", &b]);
    assert_eq!(only_b.as_array().unwrap().len(), 1);
    let text = s.config().args(["list-tokens"]).output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout).to_string();
    assert!(
        text.contains("TOKEN ID") && text.contains("EXPIRES") && text.contains("in 3 days"),
        "{text}"
    );
    assert!(!text.contains("sgat_"), "a listing shows no token values");
    // show-token by value and by id: same record.
    let mut by_value = s.json(&["show-token", &soon]);
    let mut by_id = s.json(&["show-token", &soon_id]);
    by_value["expires_in_seconds"].take();
    by_id["expires_in_seconds"].take();
    assert_eq!(by_value, by_id);
    assert_eq!(by_id["status"], "active");
    assert_eq!(by_id["client_name"], "A");
    assert!(by_id["last_used_at"].is_null());
    assert!(
        !by_id.to_string().contains(&soon),
        "show-token never prints the secret"
    );
    let human = s.config().args(["show-token", &soon_id]).output().unwrap();
    let human = String::from_utf8_lossy(&human.stdout).to_string();
    for needle in [
        "Status:",
        "active",
        "Expires:",
        "in 3 days",
        "Last used:",
        "never",
        "Client:",
        "(A)",
    ] {
        assert!(human.contains(needle), "{needle} missing in {human}");
    }
    // Errors.
    let err = s.fails(&["show-token", "tok_0123456789abcdef"], 1);
    assert!(
        err.contains("no token matches id tok_0123456789abcdef"),
        "{err}"
    );
    let err = s.fails(&["show-token", "tok_xyz"], 1);
    assert!(err.contains("not a token id"), "{err}");
    let err = s.fails(&["show-token", "hello"], 1);
    assert!(err.contains("no scimgate prefix"), "{err}");
    let err = s.fails(&["list-tokens", "--client-id", "cl_nobody"], 1);
    assert!(err.contains("no API client"), "{err}");
}

#[test]
fn revoke_by_value_by_id_and_all() {
    let s = TestStore::init();
    let a = s.cc_client("A");
    let (t1, id1) = s.issue(&a, &[]);
    let (_, id2) = s.issue(&a, &[]);
    let (_, id3) = s.issue(&a, &[]);
    s.config()
        .args(["revoke-token", "--token", &t1])
        .assert()
        .success()
        .stdout(
            predicate::str::contains(format!("Token {id1}"))
                .and(predicate::str::contains("revoked")),
        );
    s.config()
        .args(["revoke-token", "--token", &t1])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("was already revoked")
                .and(predicate::str::contains("nothing changed")),
        );
    let v = s.json(&["revoke-token", "--id", &id2, "--reason", "rotated by hand"]);
    assert_eq!(v["already_revoked"], false);
    assert_eq!(
        s.json(&["show-token", &id2])["revoked_reason"],
        "rotated by hand"
    );
    let v = s.json(&["revoke-token", "--client-id", &a, "--all"]);
    assert_eq!(v["revoked_live_tokens"], 1, "{v}");
    assert_eq!(s.json(&["show-token", &id3])["status"], "revoked");
    let v = s.json(&["revoke-token", "--client-id", &a, "--all"]);
    assert_eq!(v["revoked_live_tokens"], 0);
    assert_eq!(s.json(&["list-tokens"]).as_array().unwrap().len(), 0);
    assert_eq!(
        s.json(&["list-tokens", "--all"]).as_array().unwrap().len(),
        3
    );
    let audit = s.audit();
    let count = |action: &str| audit.iter().filter(|e| e["action"] == action).count();
    assert_eq!(count("token.revoke"), 2, "one per single revoke");
    assert_eq!(
        count("token.revoke_all"),
        2,
        "one per revoke-all, not one per token"
    );
}

#[test]
fn revoke_unknown_or_malformed_fails_and_changes_nothing() {
    let s = TestStore::init();
    let a = s.cc_client("A");
    let (token, id) = s.issue(&a, &[]);
    let before = s.json(&["list-tokens", "--all"]);
    // Seed 001: Spotfire "successfully completes" this one.
    let err = s.fails(
        &[
            "revoke-token",
            "--token=removethisrandomstringtokenthatdoesnotexists",
        ],
        1,
    );
    assert!(
        err.contains("not a valid token") && err.contains("no scimgate prefix"),
        "{err}"
    );
    let mut typo = token.clone();
    typo.replace_range(10..11, if &token[10..11] == "a" { "b" } else { "a" });
    let err = s.fails(&["revoke-token", "--token", &typo], 1);
    assert!(err.contains("checksum"), "{err}");
    let err = s.fails(&["revoke-token", "--token", &token[..token.len() - 2]], 1);
    assert!(err.contains("characters long"), "{err}");
    let other = s.json(&["issue-access-token", "-i", &a])["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    s.json(&["revoke-token", "--token", &other]);
    let unknown_but_wellformed = {
        // A well-formed token this store never issued: issue one in another store.
        let s2 = TestStore::init();
        let c2 = s2.cc_client("X");
        s2.issue(&c2, &[]).0
    };
    let err = s.fails(&["revoke-token", "--token", &unknown_but_wellformed], 1);
    assert!(err.contains("no token matches"), "{err}");
    let err = s.fails(&["revoke-token", "--id", "tok_ffffffffffffffff"], 1);
    assert!(
        err.contains("no token matches id tok_ffffffffffffffff"),
        "{err}"
    );
    let err = s.fails(&["revoke-token", "--id", &id, "-y", "refresh_token"], 1);
    assert!(err.contains("not a refresh_token"), "{err}");
    let err = s.fails(&["revoke-token", "--client-id", &a], 2);
    assert!(err.contains("--all"), "{err}");
    let err = s.fails(&["revoke-token"], 2);
    assert!(err.starts_with("error: "), "{err}");
    let mut after = s.json(&["list-tokens", "--all"]);
    // Only the token revoked on purpose above changed.
    after
        .as_array_mut()
        .unwrap()
        .retain(|t| t["status"] != "revoked");
    assert_eq!(before.as_array().unwrap().len(), 1);
    assert_eq!(after.as_array().unwrap()[0]["id"], before[0]["id"]);
    let failures = s
        .audit()
        .into_iter()
        .filter(|e| e["action"] == "token.revoke" && e["outcome"] == "failure")
        .count();
    assert!(failures >= 2, "failed revocations are audited");
}

#[test]
fn rotate_token_overlaps() {
    let s = TestStore::init();
    let a = s.cc_client("A");
    let (_, old_id) = s.issue(&a, &["--valid-for", "90d", "--label", "entra"]);
    let v = s.json(&["rotate-token", &old_id, "--overlap", "1d"]);
    let new_token = v["access_token"].as_str().unwrap();
    assert!(new_token.starts_with("sgat_"));
    assert_eq!(v["label"], "entra");
    assert_eq!(v["parent_id"], old_id.as_str());
    assert_eq!(v["issued_via"], "rotate");
    let new_left = v["expires_in_seconds"].as_i64().unwrap();
    assert!(
        (90 * 86_400 - 5..=90 * 86_400).contains(&new_left),
        "{new_left}"
    );
    let old_left = v["replaced"]["expires_in_seconds"].as_i64().unwrap();
    assert!((86_400 - 5..=86_400).contains(&old_left), "{old_left}");
    assert_eq!(s.json(&["show-token", &old_id])["status"], "active");
    let new_id = v["id"].as_str().unwrap();
    let shown = s.config().args(["show-token", &old_id]).output().unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout).to_string();
    assert!(
        shown
            .lines()
            .any(|l| l.starts_with("Replaced by:") && l.contains(new_id)),
        "{shown}"
    );
    let err = s.fails(&["rotate-token", &old_id], 1);
    assert!(
        err.contains(&format!("already rotated; its replacement is {new_id}")),
        "{err}"
    );
    // The replacement can be rotated in turn, unless the client lost the grant or scope.
    let (_, other) = s.issue(&a, &["--valid-for", "10d"]);
    s.json(&["revoke-token", "--id", &other]);
    let err = s.fails(&["rotate-token", &other], 1);
    assert!(err.contains("is revoked"), "{err}");
    s.json(&[
        "update-api-client",
        "-i",
        &a,
        "-S",
        "user-directory.read.all",
    ]);
    let err = s.fails(&["rotate-token", new_id], 1);
    assert!(
        err.contains("no longer registered for scope user-directory.write.all"),
        "{err}"
    );
    s.json(&[
        "update-api-client",
        "-i",
        &a,
        "-G",
        "authorization_code",
        "-R",
        "https://idp.example/cb",
    ]);
    let err = s.fails(&["rotate-token", new_id], 1);
    assert!(
        err.contains("no longer has the client_credentials grant"),
        "{err}"
    );
}

#[test]
fn revoke_all_cuts_the_client_off_every_kind_at_once() {
    let s = TestStore::init();
    let a = s.cc_client("A");
    let (_, id) = s.issue(&a, &[]);
    // A token type cannot be picked: the cut-off is one step for all of them.
    let err = s.fails(
        &[
            "revoke-token",
            "--client-id",
            &a,
            "--all",
            "-y",
            "refresh_token",
        ],
        2,
    );
    assert!(
        err.contains("--token-type cannot be combined with --all"),
        "{err}"
    );
    assert_eq!(s.json(&["show-token", &id])["status"], "active");
    s.json(&[
        "revoke-token",
        "--client-id",
        &a,
        "--all",
        "--reason",
        "incident 7",
    ]);
    let shown = s.json(&["show-token", &id]);
    assert_eq!(shown["status"], "revoked");
    assert_eq!(shown["revoked_reason"], "incident 7");
    // The client can be issued new tokens.
    let (_, new_id) = s.issue(&a, &[]);
    assert_eq!(s.json(&["show-token", &new_id])["status"], "active");
}

#[test]
fn deleted_clients_tokens_stay_listable_and_ids_are_case_insensitive() {
    let s = TestStore::init();
    let a = s.cc_client("A");
    let (_, id) = s.issue(&a, &[]);
    s.json(&["delete-api-client", "-i", &a]);
    let v = s.json(&["list-tokens", "--client-id", &a, "--all"]);
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["status"], "revoked");
    let upper = format!("TOK_{}", id[4..].to_uppercase());
    assert_eq!(s.json(&["show-token", &upper])["id"], id.as_str());
    let err = s.fails(&["show-token", "tok_0123456789abcdef"], 1);
    assert!(
        !err.contains("nothing was changed"),
        "a lookup changes nothing anyway: {err}"
    );
}

#[test]
fn a_closed_pipe_ends_quietly() {
    let s = TestStore::init();
    for i in 0..3 {
        s.cc_client(&format!("client {i}"));
    }
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "'{}' list-api-clients | head -c 1",
            crate::support::config_bin().display()
        ))
        .env("SCIMGATE_DB", &s.db)
        .env("SCIMGATE_TOOL_PASSWORD", TOOL_PASSWORD)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn wrong_tool_password_is_refused_and_audited() {
    let s = TestStore::init();
    let out = s
        .config_no_password()
        .env("SCIMGATE_TOOL_PASSWORD", "not-the-password")
        .args([
            "register-api-client",
            "-n",
            "A",
            "-G",
            "client_credentials",
            "-S",
            "user-directory.read.all",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "error: the tool password is wrong."
    );
    assert_eq!(s.json(&["list-api-clients"]).as_array().unwrap().len(), 0);
    let denied: Vec<_> = s
        .audit()
        .into_iter()
        .filter(|e| e["outcome"] == "denied")
        .collect();
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0]["action"], "tool_password.verify");
    // -t works (with a warning) and the password file works.
    s.config_no_password()
        .args(["list-tokens", "-t", TOOL_PASSWORD])
        .assert()
        .success()
        .stderr(predicate::str::contains("shell history"));
    s.config_no_password()
        .args(["list-tokens", "--tool-password-file"])
        .arg(s.password_file())
        .assert()
        .success();
}
