//! `config` login-account commands: create-user, set-password, delete-user, list-users.

use crate::support::TestStore;

#[test]
fn create_set_password_delete() {
    let s = TestStore::init();
    let pw = s.dir.path().join("pw");
    std::fs::write(&pw, "first-password\n").unwrap();
    let v = s.json(&[
        "create-user",
        "-u",
        "alice",
        "--password-file",
        pw.to_str().unwrap(),
    ]);
    assert_eq!(v["created"], true);
    let err = s.fails(
        &[
            "create-user",
            "-u",
            "ALICE",
            "--password-file",
            pw.to_str().unwrap(),
        ],
        1,
    );
    assert!(err.contains("already exists"), "{err}");
    s.config()
        .env("SCIMGATE_USER_PASSWORD", "second-password")
        .args(["set-password", "-u", "alice"])
        .assert()
        .success();
    let users = s.json(&["list-users"]);
    assert_eq!(users[0]["username"], "alice");
    assert!(!users.to_string().contains("argon2"), "no hash in listings");
    let store = crate::support::open_store(&s.db);
    let (_, hash) = store.user_with_hash("alice").unwrap().unwrap();
    assert!(hash.starts_with("$argon2id$"));
    assert!(scimgate::password::verify("second-password", &hash));
    assert!(!scimgate::password::verify("first-password", &hash));
    s.json(&["delete-user", "-u", "alice"]);
    let err = s.fails(&["delete-user", "-u", "alice"], 1);
    assert!(err.contains("no user alice exists"), "{err}");
    let err = s.fails(
        &[
            "set-password",
            "-u",
            "bob",
            "--password-file",
            pw.to_str().unwrap(),
        ],
        1,
    );
    assert!(err.contains("no user bob"), "{err}");
    let actions: Vec<String> = s
        .audit()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect();
    for a in ["user.create", "user.set_password", "user.delete"] {
        assert!(actions.iter().any(|x| x == a), "{a} not audited");
    }
}

#[test]
fn bad_user_names_and_passwords() {
    let s = TestStore::init();
    let short = s.dir.path().join("short");
    std::fs::write(&short, "abc\n").unwrap();
    let good = s.dir.path().join("good");
    std::fs::write(&good, "long-enough-pw\n").unwrap();
    let err = s.fails(
        &[
            "create-user",
            "-u",
            "bob",
            "--password-file",
            short.to_str().unwrap(),
        ],
        1,
    );
    assert!(err.contains("at least 8 characters"), "{err}");
    let err = s.fails(
        &[
            "create-user",
            "-u",
            "bad name",
            "--password-file",
            good.to_str().unwrap(),
        ],
        1,
    );
    assert!(err.contains("not a valid user name"), "{err}");
    let err = s.fails(
        &[
            "create-user",
            "-u",
            "bob",
            "--password-file",
            "/nonexistent/pw",
        ],
        1,
    );
    assert!(err.contains("cannot read"), "{err}");
    assert_eq!(s.json(&["list-users"]).as_array().unwrap().len(), 0);
}
