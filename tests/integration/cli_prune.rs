//! `config prune-tokens`, and the server's `token_retention`: tokens that expired long ago
//! are deleted (a dry run only counts them); live tokens, recently expired ones and the
//! audit log stay.

use scimgate::model::{IssuedVia, Scope};
use scimgate::settings::RawSettings;
use scimgate::store::{NewTokenRecord, Store};
use scimgate::time::{Clock, Duration};
use scimgate::token::{self, TokenKind};

use crate::support::{TestServer, TestStore};

/// A one-hour access token of `client` issued `days_ago` days ago, written the way the
/// token endpoint writes one; returns its id.
fn old_token(store: &Store, client: &str, days_ago: i64) -> String {
    let issued = chrono::Utc::now().timestamp() - days_ago * 86_400;
    let t = token::generate(TokenKind::Access, issued);
    let scopes = vec![Scope::DirectoryRead];
    let via = IssuedVia::ClientCredentials;
    let record = NewTokenRecord::own_access(&t, client, scopes, issued, issued + 3600, via);
    store.insert_tokens(&[record]).unwrap();
    t.id.to_string()
}

#[test]
fn prune_tokens_deletes_only_what_expired_long_ago() {
    let s = TestStore::init();
    let client = s.cc_client("Board provisioning");
    let (_, live) = s.issue(&client, &["--valid-for", "90d"]);
    let store = crate::support::open_store(&s.db);
    let old: Vec<String> = [200, 120, 31]
        .into_iter()
        .map(|d| old_token(&store, &client, d))
        .collect();
    let recent = old_token(&store, &client, 2);
    drop(store);

    let v = s.json(&["prune-tokens", "--expired-for", "30d", "--dry-run"]);
    assert_eq!(v["tokens"], 3, "{v}");
    assert_eq!(v["authorization_codes"], 0);
    assert_eq!(v["dry_run"], true);
    assert_eq!(
        s.json(&["show-token", &old[0]])["status"],
        "expired",
        "a dry run deletes nothing"
    );

    let out = s
        .config()
        .args(["prune-tokens", "--expired-for", "30d"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout
            .starts_with("Deleted 3 token(s) (0 of them authorization codes) that expired before "),
        "{stdout}"
    );
    for id in &old {
        let err = s.fails(&["show-token", id], 1);
        assert!(err.contains(id.as_str()), "{err}");
    }
    assert_eq!(s.json(&["show-token", &recent])["status"], "expired");
    assert_eq!(s.json(&["show-token", &live])["status"], "active");
    let audit = s.audit();
    let prune = audit
        .iter()
        .find(|e| e["action"] == "token.prune")
        .expect("the prune is audited");
    assert!(
        prune["detail"]
            .as_str()
            .unwrap()
            .starts_with("deleted 3 token(s)"),
        "{prune}"
    );
    assert!(
        audit
            .iter()
            .any(|e| e["action"] == "token.issue" && e["token_id"] == live.as_str()),
        "the audit log keeps its events"
    );

    // Again: nothing left to prune, and it says so.
    let v = s.json(&["prune-tokens", "--expired-for", "30d"]);
    assert_eq!(v["tokens"], 0);
}

#[test]
fn prune_tokens_refuses_bad_input() {
    let s = TestStore::init();
    for args in [
        &["prune-tokens"][..],
        &["prune-tokens", "--expired-for", "0d"],
        &["prune-tokens", "--expired-for", "soon"],
    ] {
        s.fails(args, 2);
    }
}

#[test]
fn the_server_prunes_daily_with_token_retention() {
    let s = TestStore::init();
    let client = s.cc_client("Board provisioning");
    let (_, live) = s.issue(&client, &["--valid-for", "90d"]);
    let clock = Clock::manual(chrono::Utc::now().timestamp());
    let server = TestServer::start_with(
        &s.db,
        clock.clone(),
        RawSettings {
            monitor_tick: Some("1h".into()),
            token_retention: Some("30d".into()),
            ..RawSettings::default()
        },
    );
    let first = old_token(&server.store, &client, 40);
    let pruned_by_server = |s: &TestStore| {
        s.audit()
            .iter()
            .filter(|e| e["action"] == "token.prune" && e["actor"] == "server:monitor")
            .count()
    };
    server.state.monitor.tick();
    s.fails(&["show-token", &first], 1);
    assert_eq!(s.json(&["show-token", &live])["status"], "active");
    assert_eq!(pruned_by_server(&s), 1);

    // Within the day: not again.
    let second = old_token(&server.store, &client, 40);
    clock.advance(Duration::hours(23));
    server.state.monitor.tick();
    assert_eq!(s.json(&["show-token", &second])["status"], "expired");
    // A day after the last prune: again.
    clock.advance(Duration::hours(2));
    server.state.monitor.tick();
    s.fails(&["show-token", &second], 1);
    assert_eq!(pruned_by_server(&s), 2);
    // Nothing to delete: nothing audited.
    clock.advance(Duration::days(1));
    server.state.monitor.tick();
    assert_eq!(pruned_by_server(&s), 2);
}
