//! Tokens are looked up by the selector they carry and verified against the stored hash.
//! A store made before selectors existed (schema 4: 54-character tokens, a UNIQUE index on
//! `tokens.hash`) is migrated in place, and every token in it keeps working by value and by
//! id; a token with a real selector and a forged secret is refused everywhere. Migration 6
//! then stores kinds, issue paths and scopes as codes and a client's own subject as NULL:
//! every value must read back as it was written.

use std::time::{Duration, Instant};

use rusqlite::{Connection, params};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::support::{Scim, TOOL_PASSWORD, TestServer, TestStore, http};

const SCHEMA: &str = include_str!("../../schema.sql");
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn crc_suffix(head: &str) -> String {
    let mut v = u64::from(crc32fast::hash(head.as_bytes()));
    let mut digits = [b'0'; 6];
    for d in digits.iter_mut().rev() {
        *d = BASE62[(v % 62) as usize];
        v /= 62;
    }
    String::from_utf8(digits.to_vec()).unwrap()
}

/// A token string in the pre-selector format: prefix, 43 base62 characters, CRC32.
fn legacy_token(prefix: &str) -> String {
    // A fresh token's secret half is 43 base62 characters, as the old format's body was.
    let fresh = scimgate::token::generate(scimgate::token::TokenKind::Access, 1_800_000_000);
    let body = &fresh.secret.expose()[5 + 20..5 + 20 + 43];
    let head = format!("{prefix}{body}");
    format!("{head}{}", crc_suffix(&head))
}

fn sha(s: &str) -> Vec<u8> {
    Sha256::digest(s.as_bytes()).to_vec()
}

fn legacy_id(token: &str) -> String {
    let h = sha(token);
    format!(
        "tok_{}",
        h[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

struct Legacy {
    store: TestStore,
    client_id: String,
    secret: String,
    access: String,
    code: String,
    refresh: String,
    short: String,
}

/// A store as schema 4 left it, written with that schema's SQL: one client with a legacy
/// secret, one legacy access token, and an authorization code row that refers to a token.
fn schema_4_store() -> Legacy {
    let store = TestStore::empty_sqlite();
    let conn = Connection::open(&store.db).unwrap();
    let v4 = SCHEMA.split("-- migration: 5").next().unwrap();
    conn.execute_batch(&format!("BEGIN; {v4}\nPRAGMA user_version = 4; COMMIT;"))
        .unwrap();
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('tool_password_hash', ?1)",
        [scimgate::password::hash(TOOL_PASSWORD).unwrap()],
    )
    .unwrap();
    let client_id = "cl_00112233445566ff".to_string();
    let secret = legacy_token("sgcs_");
    conn.execute(
        "INSERT INTO clients (id, name, profile, grants, scopes, redirect_uris, auth_method, \
         secret_hash, access_token_ttl, refresh_token_ttl, idp_kind, created_at, updated_at) \
         VALUES (?1, 'Old Entra app', 'other', 'client_credentials', \
         'user-directory.read.all user-directory.write.all', '[]', 'client_secret_basic', \
         ?2, 3600, 86400, 'entra', 1700000000, 1700000000)",
        params![client_id, sha(&secret)],
    )
    .unwrap();
    let access = legacy_token("sgat_");
    let code = legacy_token("sgac_");
    for (token, kind, expires) in [
        (&access, "access_token", 4_000_000_000i64),
        (&code, "authorization_code", 1_700_000_060),
    ] {
        conn.execute(
            "INSERT INTO tokens (id, hash, kind, client_id, subject, scopes, issued_at, \
             expires_at, issued_via) VALUES (?1, ?2, ?3, ?4, ?4, \
             'user-directory.read.all user-directory.write.all', 1700000000, ?5, 'cli')",
            params![legacy_id(token), sha(token), kind, client_id, expires],
        )
        .unwrap();
    }
    // A legacy one-hour access token still alive: it must stay in live listings and be
    // revoked with its client, though its id carries no issue time.
    let now = chrono::Utc::now().timestamp();
    let short = legacy_token("sgat_");
    conn.execute(
        "INSERT INTO tokens (id, hash, kind, client_id, subject, scopes, issued_at, \
         expires_at, issued_via) VALUES (?1, ?2, 'access_token', ?3, ?3, \
         'user-directory.read.all', ?4, ?5, 'client_credentials')",
        params![
            legacy_id(&short),
            sha(&short),
            client_id,
            now - 60,
            now + 3540
        ],
    )
    .unwrap();
    // A rotated refresh token of an end user: every text column migration 6 encodes has a
    // value other than the access token's.
    let refresh = legacy_token("sgrt_");
    conn.execute(
        "INSERT INTO tokens (id, hash, kind, client_id, subject, scopes, issued_at, \
         expires_at, revoked_at, revoked_reason, issued_via, family_id, parent_id, \
         last_used_at, last_used_ip, use_count, label) VALUES (?1, ?2, 'refresh_token', ?3, \
         'alice@example.com', 'user-directory.read.all', 1700000100, 1702592100, 1700000200, \
         'rotated', 'rotate', 'fam_1', ?4, 1700000150, '192.0.2.7', 3, 'okta')",
        params![
            legacy_id(&refresh),
            sha(&refresh),
            client_id,
            legacy_id(&access)
        ],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO authorization_codes (token_id, redirect_uri, redirect_uri_explicit) \
         VALUES (?1, 'https://idp.example/cb', 1)",
        [legacy_id(&code)],
    )
    .unwrap();
    Legacy {
        store,
        client_id,
        secret,
        access,
        code,
        refresh,
        short,
    }
}

fn introspect(server: &TestServer, auth: (&str, &str), token: &str) -> Value {
    let r = http()
        .post(server.url("/oauth2/introspect"))
        .basic_auth(auth.0, Some(auth.1))
        .form(&[("token", token)])
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().unwrap()
}

#[test]
fn a_schema_4_store_migrates_and_its_tokens_keep_working() {
    let old = schema_4_store();
    let server = TestServer::start(&old.store.db, scimgate::time::Clock::system());

    // The migration kept every row and reference and dropped the hash index.
    let conn = Connection::open(&old.store.db).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        version,
        scimgate::store::schema_version(),
        "migrated to the newest schema"
    );
    assert!(version >= 10);
    let table_sql: String = conn
        .query_row(
            "SELECT sql FROM sqlite_schema WHERE name = 'tokens'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(table_sql.contains("WITHOUT ROWID"), "{table_sql}");
    let unique_indexes: i64 = conn
        .query_row(
            "SELECT count(*) FROM pragma_index_list('tokens') WHERE \"unique\" = 1 AND origin != 'pk'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(unique_indexes, 0, "no UNIQUE index on tokens.hash any more");
    let rows: i64 = conn
        .query_row("SELECT count(*) FROM tokens", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 4);
    // Migration 6's encodings, as stored.
    let stored: Vec<(i64, Option<String>, i64, i64)> = conn
        .prepare("SELECT kind, subject, scopes, issued_via FROM tokens ORDER BY kind, issued_via")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(
        stored,
        vec![
            (1, None, 3, 1),
            (1, None, 1, 2),
            (2, Some("alice@example.com".into()), 1, 5),
            (3, None, 3, 1),
        ]
    );
    let indexes: Vec<String> = conn
        .prepare("SELECT name FROM pragma_index_list('tokens') WHERE origin = 'c' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(
        indexes,
        [
            "tokens_client",
            "tokens_family",
            "tokens_parent",
            "tokens_warnable"
        ]
    );
    let code_row: String = conn
        .query_row("SELECT token_id FROM authorization_codes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(code_row, legacy_id(&old.code));
    let broken: i64 = conn
        .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(broken, 0);

    // The legacy access token authorizes SCIM calls and introspects under its old id.
    assert_eq!(Scim::new(&server, &old.access).get("/Users").status, 200);
    let auth = (old.client_id.as_str(), old.secret.as_str());
    let info = introspect(&server, auth, &old.access);
    assert_eq!(info["active"], true, "{info}");
    assert_eq!(info["token_id"], legacy_id(&old.access));

    // The legacy client secret still authenticates; what it gets is a new-format token.
    let r = http()
        .post(server.url("/oauth2/token"))
        .basic_auth(auth.0, Some(auth.1))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let fresh: Value = r.json().unwrap();
    let fresh = fresh["access_token"].as_str().unwrap().to_string();
    assert_eq!(fresh.len(), scimgate::token::TOKEN_LEN);
    assert_eq!(Scim::new(&server, &fresh).get("/Users").status, 200);

    // Live listings find both live legacy tokens, the long-lived and the one-hour one.
    let listed: Vec<String> = old
        .store
        .json(&["list-tokens"])
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect();
    assert!(listed.contains(&legacy_id(&old.access)), "{listed:?}");
    assert!(listed.contains(&legacy_id(&old.short)), "{listed:?}");
    assert!(
        !listed.contains(&legacy_id(&old.refresh)),
        "revoked: {listed:?}"
    );

    // `config` finds the legacy token by value and by id (typed in capitals, as hex may be).
    let shown = old.store.json(&["show-token", &old.access]);
    assert_eq!(shown["id"], legacy_id(&old.access));
    assert_eq!(shown["kind"], "access_token");
    assert_eq!(shown["subject"], old.client_id.as_str());
    assert_eq!(
        shown["scopes"],
        serde_json::json!(["user-directory.read.all", "user-directory.write.all"])
    );
    assert_eq!(shown["issued_via"], "cli");
    // Every column of the refresh token reads back as schema 4 held it.
    let r = old.store.json(&["show-token", &legacy_id(&old.refresh)]);
    let expected = serde_json::json!({
        "kind": "refresh_token", "client_id": old.client_id, "subject": "alice@example.com",
        "scopes": ["user-directory.read.all"], "issued_at": "2023-11-14T22:15:00Z",
        "expires_at": "2023-12-14T22:15:00Z", "revoked_at": "2023-11-14T22:16:40Z", "revoked_reason": "rotated",
        "issued_via": "rotate", "family_id": "fam_1", "parent_id": legacy_id(&old.access),
        "last_used_at": "2023-11-14T22:15:50Z", "last_used_ip": "192.0.2.7", "use_count": 3,
        "label": "okta",
    });
    for (key, value) in expected.as_object().unwrap() {
        assert_eq!(&r[key], value, "{key} in {r}");
    }
    let id_typed = format!("TOK_{}", legacy_id(&old.access)[4..].to_uppercase());
    old.store.json(&["revoke-token", "--id", &id_typed]);
    // A revocation by another process shows within the token cache's second.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let status = Scim::new(&server, &old.access).get("/Users").status;
        if status == 401 {
            break;
        }
        assert!(Instant::now() < deadline, "still {status} after revocation");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(introspect(&server, auth, &old.access)["active"], false);
}

#[test]
fn a_real_selector_with_a_forged_secret_is_refused() {
    let s = TestStore::init_sqlite();
    let client = s.cc_client("Forgery target");
    let (token, id) = s.issue(&client, &[]);
    let server = TestServer::start(&s.db, scimgate::time::Clock::system());
    assert_eq!(Scim::new(&server, &token).get("/Users").status, 200);

    // Same prefix and selector (so the same id), another secret half, a valid checksum:
    // the string parses and names a real row, and must still be refused.
    let forged_secret = legacy_token("sgat_")[5..5 + 43].to_string();
    let head = format!("{}{forged_secret}", &token[..5 + 20]);
    let forged = format!("{head}{}", crc_suffix(&head));
    let parsed = scimgate::token::parse(&forged).expect("the forgery is well-formed");
    assert_eq!(parsed.id.as_str(), id);
    assert_eq!(server.store.token_by_value(&parsed).unwrap(), None);
    let r = Scim::new(&server, &forged).get("/Users");
    assert_eq!(r.status, 401, "{}", r.body);
    let err = s.fails(&["show-token", &forged], 1);
    assert!(err.contains("no token matches"), "{err}");
    // The real token is untouched.
    assert_eq!(Scim::new(&server, &token).get("/Users").status, 200);
}

/// A store as schema 12 left it, with SCIM Users in it: one whose document is what the
/// SCIM service writes (the normaliser's output, as `json::to_text` writes it), one as an
/// older version might have kept it (a null the current form leaves out). Then this
/// version starts on it: migration 13 puts both in form 0, and the pass of the server's
/// start marks the first in the current form and leaves the second; both answer their full
/// renderings, and the lookup answers what a GET answers.
#[test]
fn a_schema_12_store_s_documents_are_checked_at_the_first_start() {
    use scimgate::scim::schema::{ResourceKind, SchemaRegistry, WriteMode};

    let store = TestStore::empty_sqlite();
    let conn = Connection::open(&store.db).unwrap();
    scimgate::store::functions::register(&conn).unwrap();
    let v12 = SCHEMA.split("-- migration: 13").next().unwrap();
    conn.execute_batch(&format!("BEGIN; {v12}\nPRAGMA user_version = 12; COMMIT;"))
        .unwrap();
    let body = serde_json::json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "Écrit@example.com",
        "name": {"givenName": "Élise", "familyName": "\"Q\" Doe"},
        "emails": [{"value": "ecrit@example.com", "type": "work", "primary": true}],
        "active": true,
    });
    let written = SchemaRegistry::builtin()
        .normalize(ResourceKind::User, &body, WriteMode::Create)
        .unwrap();
    let current = scimgate::scim::json::to_text(&written);
    let kept = r#"{"name":{"givenName":"Old"},"nickName":null,"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"old@example.com"}"#;
    for (id, user_name, doc) in [
        (
            "00000000-0000-4000-8000-000000000001",
            "Écrit@example.com",
            current.as_str(),
        ),
        (
            "00000000-0000-4000-8000-000000000002",
            "old@example.com",
            kept,
        ),
    ] {
        conn.execute(
            "INSERT INTO scim_resources (id, resource_type, user_name, user_name_fold, doc, \
             created_at, last_modified, version) \
             VALUES (?1, 'User', ?2, scim_fold(?2), ?3, '2026-01-01T00:00:00.000Z', \
             '2026-01-01T00:00:00.000Z', 3)",
            params![id, user_name, doc],
        )
        .unwrap();
    }
    drop(conn);

    let server = TestServer::start(&store.db, scimgate::time::Clock::system());
    server.wait_for_forms_pass();
    let conn = Connection::open(&store.db).unwrap();
    let rows: Vec<(String, i64, i64)> = conn
        .prepare("SELECT doc, version, doc_form FROM scim_resources ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(
        rows,
        vec![(current.clone(), 3, 1), (kept.to_string(), 3, 0)],
        "the current form vouched for, the older one left, nothing rewritten"
    );

    let (_, token) = crate::support::client_with_token(
        &store.db,
        &[scimgate::model::Scope::DirectoryRead],
        "1h",
    );
    let scim = Scim::new(&server, &token);
    let user = scim.get("/Users/00000000-0000-4000-8000-000000000001");
    assert_eq!(user.status, 200, "{}", user.body);
    assert_eq!(user.body["name"]["familyName"], "\"Q\" Doe");
    assert_eq!(user.header("etag").as_deref(), Some("W/\"3\""));
    let found = scim.get("/Users?filter=userName%20eq%20%22%C3%A9crit@example.com%22");
    assert_eq!(found.body["Resources"][0], user.body);
    let old = scim.get("/Users?filter=userName%20eq%20%22old@example.com%22");
    let old = &old.body["Resources"][0];
    assert_eq!(old["name"], serde_json::json!({"givenName": "Old"}));
    assert!(old.get("nickName").is_none(), "{old}");
}
