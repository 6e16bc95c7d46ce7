//! The operator's first hour (issue 12), through the real `config` binary and the real
//! server: a store named with its absolute path and `--db`/`SCIMGATE_DB` when it is not
//! found; a token's first use visible at once in `show-token` and `status`; refused
//! revokes in the audit log; Spotfire's `-r <true|false>`; clap habits (suggestions,
//! numbers in words, the subcommand's own `--help`, own flags before global ones,
//! completions, man page); tables that fit the terminal; `audit` paging; `set-password`
//! on an unknown account; the authorize error page without Markdown backticks.

use std::time::{Duration as StdDuration, Instant};

use scimgate::time::Clock;

use crate::oauth_support::{auth_query, browser, get_authorize};
use crate::support::{Scim, TestServer, TestStore, assert_one_sentence};

/// `config` outside the server's directory names the absolute path it looked at and how
/// to point it at the right store, instead of only suggesting `config init`.
#[test]
fn missing_store_error_names_the_absolute_path_and_db_flag() {
    let s = TestStore::empty();
    let out = s
        .config()
        .env_remove("SCIMGATE_DB")
        .arg("list-tokens")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_one_sentence(&err);
    let abs = s.dir.path().join("scimgate.db");
    assert!(
        err.contains(&format!("the store at {} does not exist", abs.display())),
        "{err}"
    );
    assert!(err.contains("--db PATH or SCIMGATE_DB"), "{err}");
    // `init` names the store it made by its absolute path.
    let out = s
        .config()
        .env_remove("SCIMGATE_DB")
        .args(["init", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["store"], abs.display().to_string());
    std::fs::remove_file(&abs).unwrap();
    // A relative --db is shown absolute too.
    let err = s.fails(&["--db", "sub/other.db", "list-tokens"], 1);
    assert!(
        err.contains(&s.dir.path().join("sub/other.db").display().to_string()),
        "{err}"
    );
}

/// Right after the IdP's first call, `show-token` shows the use and `status` says
/// healthy — without waiting for the monitor's 30 s tick.
#[test]
fn first_use_is_visible_at_once_in_show_token_and_status() {
    let s = TestStore::init();
    let client = s.cc_client("Entra ID provisioning");
    let (token, id) = s.issue(&client, &["--valid-for", "90d"]);
    let server = TestServer::start(&s.db, Clock::system());
    assert_eq!(server.state.settings.monitor.tick.as_secs(), 30);
    // Let the monitor's thread go quiet first, as a server waiting for its first IdP is.
    std::thread::sleep(StdDuration::from_millis(400));
    assert_eq!(Scim::new(&server, &token).get("/Users").status, 200);
    let called = Instant::now();
    // The first request after a quiet spell is written at once; allow a scheduling margin.
    let deadline = called + StdDuration::from_secs(1);
    let used = loop {
        let v = s.json(&["show-token", &id]);
        if !v["last_used_at"].is_null() || Instant::now() > deadline {
            break v;
        }
        std::thread::sleep(StdDuration::from_millis(50));
    };
    assert!(
        !used["last_used_at"].is_null(),
        "no last use {:?} after the call: {used}",
        called.elapsed()
    );
    assert_eq!(used["last_used_ip"], "127.0.0.1");
    let text = s.config().args(["show-token", &id]).output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("from 127.0.0.1"), "{text}");
    assert!(!text.contains("never"), "{text}");
    let status = s.json(&["status"]);
    assert_eq!(status["clients"][0]["state"], "healthy", "{status}");
    assert!(!status["clients"][0]["last_heartbeat_at"].is_null());
}

/// The Quickstart's two refused revokes: a value that is not a token (format) and an id
/// that matches nothing; both exit 1 and both are in the audit log.
#[test]
fn refused_revokes_fail_and_are_audited() {
    let s = TestStore::init();
    let err = s.fails(
        &[
            "revoke-token",
            "--token=removethisrandomstringtokenthatdoesnotexists",
        ],
        1,
    );
    assert!(err.contains("not a valid token"), "{err}");
    let err = s.fails(&["revoke-token", "--id", "tok_00mwtjqmmkml97dndqoa"], 1);
    assert!(
        err.contains("no token matches id tok_00mwtjqmmkml97dndqoa"),
        "{err}"
    );
    let client = s.cc_client("c");
    let (_, id) = s.issue(&client, &[]);
    let err = s.fails(&["revoke-token", "--id", &id, "-y", "refresh_token"], 1);
    assert!(err.contains("not a refresh_token"), "{err}");
    let refused: Vec<_> = s
        .audit()
        .into_iter()
        .filter(|e| e["action"] == "token.revoke" && e["outcome"] == "failure")
        .collect();
    assert_eq!(refused.len(), 3, "{refused:?}");
    assert!(
        refused[0]["detail"]
            .as_str()
            .unwrap()
            .contains("not a valid token")
    );
    assert!(
        !refused[0]["detail"]
            .as_str()
            .unwrap()
            .contains("removethisrandom"),
        "the refused value is not copied into the audit log"
    );
    assert_eq!(refused[2]["token_id"], id.as_str());
    let text = s.config().arg("audit").output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert_eq!(text.matches("token.revoke").count(), 3, "{text}");
}

/// Spotfire's `-r <true|false>` on register-api-client, as on update-api-client.
#[test]
fn register_takes_spotfires_require_consent_value() {
    let s = TestStore::init();
    let base = [
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
        "-R",
        "https://system-admin.okta.com/admin/app/cpc/myapp/oauth/callback",
    ];
    for (flag, want) in [
        (vec!["-r", "false"], false),
        (vec!["-r", "true"], true),
        (vec!["-r"], true),
        (vec!["--require-end-user-consent=false"], false),
        (vec![], false),
    ] {
        let mut args = base.to_vec();
        args.extend(flag.iter().copied());
        let v = s.json(&args);
        assert_eq!(v["require_consent"], want, "{flag:?}");
    }
    let err = s.fails(&[&base[..], &["-r", "maybe"]].concat(), 2);
    assert!(err.contains("maybe"), "{err}");
    let v = s.json(&["list-api-clients"]);
    let id = v[0]["id"].as_str().unwrap();
    let v = s.json(&["update-api-client", "-i", id, "-r", "true"]);
    assert_eq!(v["require_consent"], true);
}

/// Mistyped commands and flags get clap's suggestion; numbers that do not parse are said
/// in words; every parse error points at the subcommand's own `--help`.
#[test]
fn parse_errors_suggest_and_point_at_the_subcommand_help() {
    let s = TestStore::init();
    for (args, want) in [
        (
            vec!["list-token"],
            "unrecognized subcommand 'list-token'; did you mean `list-tokens`? (see `config --help`).",
        ),
        (
            vec!["list-tokens", "--limt", "3"],
            "did you mean `--limit`? (see `config list-tokens --help`).",
        ),
        (
            vec!["list-tokens", "--limit", "abc"],
            "invalid value 'abc' for '--limit <LIMIT>': `abc` is not a whole number (see `config list-tokens --help`).",
        ),
        (
            vec!["audit", "--limit", "99999999999999999999999"],
            "is too large (see `config audit --help`).",
        ),
        (
            vec![
                "--db",
                "x.db",
                "issue-access-token",
                "-i",
                "cl_x",
                "-v",
                "24h",
            ],
            "`24h` is not a whole number of hours; -v counts hours (-v 24), --valid-for takes a duration (--valid-for 24h) (see `config issue-access-token --help`).",
        ),
        (
            vec!["register-oauth2-client", "-n", "x", "-G", "nope"],
            "(see `config register-api-client --help`).",
        ),
    ] {
        let err = s.fails(&args, 2);
        assert!(err.trim_end().ends_with(want), "{args:?}: {err}");
        assert!(!err.contains("invalid digit"), "{err}");
    }
}

/// A subcommand's help lists its own flags first, the global ones after, under their own
/// heading.
#[test]
fn subcommand_help_lists_own_flags_before_global_ones() {
    let s = TestStore::init();
    let out = s.config().args(["list-tokens", "--help"]).output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    let own = help.find("--expiring-within").expect("own flag");
    let heading = help.find("Global options:").expect("global heading");
    let global = help.find("--tool-password-file").expect("global flag");
    assert!(own < heading && heading < global, "{help}");
}

/// `config completions SHELL` and `config man` need no store and no tool password.
#[test]
fn completions_and_man_page() {
    let s = TestStore::empty();
    for (shell, marker) in [
        ("bash", "complete -F _config"),
        ("zsh", "#compdef config"),
        ("fish", "complete -c config"),
    ] {
        let out = s
            .config_no_password()
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(marker), "{shell}: {text}");
        assert!(text.contains("list-tokens"), "{shell}");
    }
    let out = s.config_no_password().arg("man").output().unwrap();
    assert!(out.status.success());
    let man = String::from_utf8_lossy(&out.stdout);
    assert!(man.contains(".TH config 1"), "{man}");
    assert!(man.contains("register\\-api\\-client"), "{man}");
    let err = s.fails(&["completions", "tcsh"], 2);
    assert!(err.contains("tcsh"), "{err}");
    assert!(!s.db.exists(), "completions and man create no store");
}

/// Every help text and the manual page speak to the operator: no developer's note (a
/// rustdoc link such as [`GlobalArgs::location`], a Rust path) reaches them. The help of
/// `--db` once ended with such a note, on every command.
#[test]
fn help_texts_hold_no_developer_notes() {
    let s = TestStore::empty();
    let help = |args: &[&str]| {
        let out = s.config_no_password().args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let top = help(&["--help"]);
    let commands: Vec<String> = top
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect();
    assert!(
        commands.len() > 20 && commands.iter().any(|c| c == "revoke-token"),
        "{commands:?}"
    );
    let mut texts = vec![("config --help".to_string(), top.clone())];
    for c in &commands {
        texts.push((format!("config {c} --help"), help(&[c.as_str(), "--help"])));
    }
    texts.push(("config man".into(), help(&["man"])));
    for (what, text) in &texts {
        for note in ["[`", "`]", "::", "Self::"] {
            assert!(!text.contains(note), "{what} holds `{note}`:\n{text}");
        }
    }
    assert!(help(&["list-tokens", "--help"]).contains("postgres://"));
}

/// Tables fit the width given by the terminal (here `COLUMNS`): less needed columns are
/// left out, and said so; piped without `COLUMNS`, rows stay whole.
#[test]
fn tables_fit_the_terminal_width() {
    let s = TestStore::init();
    let client = s.cc_client("Entra ID provisioning");
    s.issue(&client, &["--label", "entra prod provisioning token"]);
    let wide = s.config().arg("list-tokens").output().unwrap();
    let wide = String::from_utf8_lossy(&wide.stdout).to_string();
    assert!(wide.lines().next().unwrap().len() > 120, "{wide}");
    assert!(wide.contains("LABEL") && wide.contains("ISSUED"), "{wide}");
    for cmd in ["list-tokens", "status", "audit", "list-api-clients"] {
        for width in [80usize, 100] {
            let out = s
                .config()
                .env("COLUMNS", width.to_string())
                .arg(cmd)
                .output()
                .unwrap();
            assert!(out.status.success(), "{cmd}");
            let text = String::from_utf8_lossy(&out.stdout);
            for line in text.lines() {
                assert!(
                    line.chars().count() <= width,
                    "{cmd} at {width}: {} columns: {line}\n{text}",
                    line.chars().count()
                );
            }
        }
    }
    let out = s
        .config()
        .env("COLUMNS", "80")
        .arg("list-tokens")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("TOKEN ID") && text.contains("EXPIRES"),
        "{text}"
    );
    assert!(text.contains("left out to fit 80 columns"), "{text}");
    assert!(text.contains("ISSUED"), "named in the note: {text}");
}

/// `config audit` says when it shows only the newest events, and pages with --limit,
/// --since and --all.
#[test]
fn audit_says_when_older_events_are_left_out() {
    let s = TestStore::init();
    for i in 0..3 {
        s.cc_client(&format!("c{i}"));
    }
    let run = |args: &[&str]| {
        let out = s.config().args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let text = run(&["audit", "--limit", "2"]);
    assert!(
        text.contains(
            "Only the newest 2 events are shown; older ones with --limit N, --since DATE or --all."
        ),
        "{text}"
    );
    assert_eq!(text.matches("client.register").count(), 2, "{text}");
    let all = run(&["audit", "--all"]);
    assert!(
        all.contains("store.init") && !all.contains("Only the newest"),
        "{all}"
    );
    let default = run(&["audit"]);
    assert!(!default.contains("Only the newest"), "{default}");
    // 4 events, the default 100: all shown. 101 events: the note names 100.
    for i in 0..97 {
        s.config()
            .args(["revoke-token", "--id", &format!("tok_{:020}", i)])
            .output()
            .unwrap();
    }
    let default = run(&["audit"]);
    assert!(default.contains("Only the newest 100 events"), "{default}");
    assert!(!default.contains("store.init"), "the oldest is left out");
    let since = run(&["audit", "--since", "1h"]);
    assert!(since.contains("Only the newest 100"), "{since}");
    let err = s.fails(&["audit", "--all", "--limit", "5"], 2);
    assert!(err.contains("cannot be used with"), "{err}");
}

/// `set-password` on an account that does not exist says so before asking for a password.
#[test]
fn set_password_on_unknown_user_fails_before_prompting() {
    let s = TestStore::init();
    // No password source and no terminal: had it prompted, it would fail for that.
    let out = s
        .config()
        .args(["set-password", "-u", "nobody"])
        .write_stdin("")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_one_sentence(&err);
    assert_eq!(err.trim(), "error: no user nobody exists.");
}

/// The authorize error page shows names as `<code>`, not as Markdown backticks.
#[test]
fn authorize_error_page_has_no_markdown_backticks() {
    let s = TestStore::init();
    let server = TestServer::start(&s.db, Clock::system());
    let r = get_authorize(&browser(), &server, &auth_query("cl_nobody", &[]));
    assert_eq!(r.status(), 400);
    let page = r.text().unwrap();
    assert!(
        page.contains("No client with id <code>cl_nobody</code> is registered here."),
        "{page}"
    );
    assert!(!page.contains('`'), "{page}");
}

/// The checkout ignores the heartbeat log the server writes next to `./scimgate.db`.
#[test]
fn heartbeat_log_in_the_checkout_is_ignored() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let ignore = std::fs::read_to_string(root.join(".gitignore")).unwrap();
    assert!(
        ignore.lines().any(|l| l.trim() == "/scim_heartbeat.log*"),
        "{ignore}"
    );
}

/// How many directories a relative path in `token` climbs (`../..` = 2), counted from its
/// first `..`; 0 when it has none.
fn climbs(token: &str) -> usize {
    token
        .split('/')
        .skip_while(|c| *c != "..")
        .take_while(|c| *c == "..")
        .count()
}

/// The test suite carries what it runs: no script or test of the suite refers to a path
/// that climbs above the repository (a user's clone has nothing beside it), and the
/// compliance checker and its pins are in it.
#[test]
fn the_suite_needs_nothing_outside_the_repository() {
    assert_eq!(
        (climbs("$HERE/../.."), climbs("a/b"), climbs("../x/y")),
        (2, 0, 1)
    );
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in [
        "scripts",
        "tests/compliance",
        "tests/browser",
        "tests/thirdparty",
        ".ci",
    ] {
        let depth = std::path::Path::new(dir).components().count();
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                // Comments aside, every relative path stays inside the repository. The
                // scripts run from the repository's root (`cd "$(dirname "$0")/.."`), so a
                // bare `../x` leaves it; one anchored on the file (`$HERE/../..`) may climb
                // as deep as the file lies.
                for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
                    let outside = line
                        .split(|c: char| !(c.is_ascii_alphanumeric() || "$_./-".contains(c)))
                        .any(|token| {
                            // `${X:-../y}` splits into `-../y`.
                            let token = token.trim_start_matches('-');
                            let limit = if token.starts_with("../") { 0 } else { depth };
                            climbs(token) > limit
                        });
                    assert!(
                        !outside,
                        "{} refers to a path above the repository: {line}",
                        path.display()
                    );
                }
            }
        }
    }
    let reqs = std::fs::read_to_string(root.join("tests/compliance/requirements.txt")).unwrap();
    assert!(reqs.contains("scim2-tester[httpx2]==0.5.2"), "{reqs}");
    let compliance = std::fs::read_to_string(root.join("scripts/scim-compliance.sh")).unwrap();
    assert!(compliance.contains("CHECK=${SCIM_CHECK:-tests/compliance/scim2-tester.sh}"));
}

/// scripts/test.sh installs Chromium and PostgreSQL without recommends and without upgrading
/// installed packages, says so before doing it, and the README names what it installs and the
/// cold build time.
#[test]
fn test_script_installs_only_what_the_readme_names() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = std::fs::read_to_string(root.join("scripts/test.sh")).unwrap();
    assert!(
        script.contains("APT_FLAGS=(-y -qq --no-install-recommends --no-upgrade)"),
        "apt flags"
    );
    assert!(script.contains(
        "apt_install \"the browser suite (headless Chromium)\" chromium fonts-liberation"
    ));
    assert!(script.contains(
        "apt_install \"the PostgreSQL tests (a throw-away cluster: scripts/pg.sh)\" postgresql"
    ));
    assert_eq!(
        script.matches("apt_install \"").count(),
        2,
        "two apt installs: Chromium and PostgreSQL"
    );
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    for needle in [
        "`chromium` and `fonts-liberation`",
        "Debian's `postgresql`, only if no PostgreSQL server binaries are found",
        "--no-install-recommends --no-upgrade",
        "about 10 minutes on 2 cores",
        "tests/compliance/requirements.txt",
    ] {
        assert!(readme.contains(needle), "README lacks {needle}");
    }
}
