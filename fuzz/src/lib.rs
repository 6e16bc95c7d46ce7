//! The fuzz targets of scimgate (issue #11), one function per target, shared by the
//! `fuzz_targets/*.rs` binaries. Each one feeds the input to the code a hostile request
//! reaches and, besides "does not panic, does not hang", checks cheap properties that must
//! hold for every input:
//!
//! - `token_parse`: a parsed token's kind, id and hash agree with the text; ids read back;
//!   the input with its checksum recomputed parses too (so the fuzzer gets past the CRC).
//! - `form_params`: parsed parameters are unique, non-empty and found by `get`, and are
//!   the `url` crate's reading of the body (the parser's plain-body shortcut skips it).
//! - `scim_filter`: display → parse gives the same AST; the in-memory evaluator, the
//!   validator and the SQL translator accept and refuse the same filters; the SQL prepares
//!   and runs on the real schema (`schema.sql`) with as many `?` as parameters, and selects
//!   the same rows as the in-memory evaluator over a few stored Users and Groups.
//! - `patch_path_value`: PATCH paths round-trip through display; a PATCH body is parsed and
//!   applied to a stored User and Group as the service does (extension ops, apply, then
//!   normalise against the stored document); a failed PATCH leaves the document unchanged.
//! - `scim_normalize`: POST/PUT normalisation of User and Group bodies and projection with
//!   a few `attributes`/`excludedAttributes` lists; normalising a normalised document
//!   changes nothing; what is stored of it (with the PATCHed ones of `patch_path_value`) is
//!   its own default projection, and its text with `id` and `meta` spliced in is its full
//!   rendering (`store::DOC_FORM`).

use std::cell::RefCell;

use rusqlite::{Connection, params_from_iter};
use scimgate::oauth::params::Params;
use scimgate::scim::filter::{
    AttrPath, Filter, matches, parse_filter, parse_patch_path, validate_filter,
};
use scimgate::scim::json::to_text;
use scimgate::scim::patch::{apply_patch, parse_patch_request};
use scimgate::scim::render::splice;
use scimgate::scim::schema::{ResourceKind, SchemaRegistry, WriteMode};
use scimgate::scim::service::extension_ops;
use scimgate::store::scim_filter::to_sql;
use scimgate::token::{self, TokenHash, TokenId, TokenKind};
use serde_json::{Value, json};

const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

// ---------------------------------------------------------------------------------------
// token_parse

const B62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The token format's checksum (src/token.rs): CRC-32 of the head in 6 base62 digits.
fn checksum(head: &[u8]) -> [u8; 6] {
    let mut v = crc32fast::hash(head);
    let mut digits = [b'0'; 6];
    for d in digits.iter_mut().rev() {
        *d = B62[(v % 62) as usize];
        v /= 62;
    }
    digits
}

fn check_token(s: &str) {
    let Ok(parsed) = token::parse(s) else {
        return;
    };
    assert!(s.len() == token::TOKEN_LEN || s.len() == token::LEGACY_TOKEN_LEN);
    assert!(
        s.starts_with(parsed.kind.prefix()),
        "{s:?} {:?}",
        parsed.kind
    );
    assert_eq!(
        TokenKind::from_name(parsed.kind.as_str()),
        Some(parsed.kind)
    );
    assert_eq!(parsed.hash, TokenHash::of(s));
    assert_eq!(
        TokenId::parse(parsed.id.as_str()).as_ref(),
        Some(&parsed.id)
    );
    if s.len() == token::TOKEN_LEN {
        assert_eq!(&parsed.id.as_str()[4..], &s[5..25]);
    }
}

pub fn token_parse(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    check_token(s);
    if let Some(id) = TokenId::parse(s) {
        assert_eq!(TokenId::parse(id.as_str()).as_ref(), Some(&id));
        assert!(id.as_str().eq_ignore_ascii_case(s));
    }
    // The same text with a correct checksum, so mutations reach what follows the CRC check.
    if s.len() > 6 && s.is_char_boundary(s.len() - 6) {
        let head = &s[..s.len() - 6];
        let mut fixed = head.to_string();
        fixed.push_str(std::str::from_utf8(&checksum(head.as_bytes())).unwrap());
        check_token(&fixed);
        if fixed.len() == token::TOKEN_LEN || fixed.len() == token::LEGACY_TOKEN_LEN {
            let known = ["sgat_", "sgrt_", "sgac_", "sgcs_"]
                .iter()
                .any(|p| fixed.starts_with(p));
            let alnum = fixed.as_bytes()[5..].iter().all(u8::is_ascii_alphanumeric);
            // The selector (20 characters after the prefix) is lowercase base36.
            let lower = fixed.len() == token::LEGACY_TOKEN_LEN
                || !fixed.as_bytes()[5..25].iter().any(u8::is_ascii_uppercase);
            assert_eq!(
                token::parse(&fixed).is_ok(),
                known && alnum && lower,
                "{fixed:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// form_params

pub fn form_params(data: &[u8]) {
    // What the `url` crate reads: the pairs with a value, in order; refused when a name
    // repeats or more than MAX_PARAMS pairs (empty ones included) come.
    let mut expected: Option<Vec<(String, String)>> = Some(Vec::new());
    let mut names = std::collections::HashSet::new();
    for (n, (k, v)) in url::form_urlencoded::parse(data).enumerate() {
        if n >= scimgate::oauth::params::MAX_PARAMS {
            expected = None;
            break;
        }
        if v.is_empty() {
            continue;
        }
        if !names.insert(k.clone()) {
            expected = None;
            break;
        }
        if let Some(e) = expected.as_mut() {
            e.push((k.into_owned(), v.into_owned()));
        }
    }
    let parsed = Params::parse(data);
    assert_eq!(
        parsed.is_ok(),
        expected.is_some(),
        "accepted or refused unlike the url crate"
    );
    let Ok(params) = parsed else {
        return;
    };
    let got: Vec<(String, String)> = params
        .pairs()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(Some(got), expected, "pairs unlike the url crate's");
    // Linear checks (a quadratic harness would hide the parser's own cost): unique names,
    // no empty value, and `get` finds the first and last 32.
    let pairs: Vec<(&str, &str)> = params.pairs().collect();
    let mut seen = std::collections::HashSet::with_capacity(pairs.len());
    for (k, v) in &pairs {
        assert!(!v.is_empty(), "empty value kept for {k:?}");
        assert!(seen.insert(*k), "{k:?} is repeated");
    }
    let n = pairs.len();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i < 32 || i + 32 >= n {
            assert_eq!(params.get(k), Some(*v));
            assert_eq!(params.require(k).ok(), Some(*v));
        }
    }
}

// ---------------------------------------------------------------------------------------
// scim_filter

/// Stored resources as the store keeps them: (id, kind, created, lastModified, doc without
/// `id` and `meta`).
fn stored() -> Vec<(
    &'static str,
    ResourceKind,
    &'static str,
    &'static str,
    Value,
)> {
    vec![
        (
            "u1",
            ResourceKind::User,
            "2010-01-23T04:56:22.000Z",
            "2011-05-13T04:42:34.000Z",
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENT],
                "externalId": "bjensen", "userName": "bjensen@example.com",
                "displayName": "Babs Jensen",
                "name": {"givenName": "Barbara", "familyName": "Jensen",
                         "formatted": "Ms. Barbara J Jensen III"},
                "title": "Tour Guide", "active": true, "locale": "en-US",
                "emails": [
                    {"value": "bjensen@example.com", "type": "work", "primary": true},
                    {"value": "babs@jensen.org", "type": "home"}
                ],
                "phoneNumbers": [{"value": "555-555-5555", "type": "work"}],
                "addresses": [{"type": "work", "streetAddress": "100 Universal City Plaza",
                               "locality": "Hollywood", "region": "CA", "postalCode": "91608",
                               "country": "USA", "primary": true}],
                "roles": [{"value": "admin", "primary": false}],
                ENT: {"employeeNumber": "701984", "department": "Tour Operations",
                      "manager": {"value": "26118915", "displayName": "John Smith"}}
            }),
        ),
        (
            "u2",
            ResourceKind::User,
            "2009-12-01T00:00:00.000Z",
            "2011-05-13T04:42:34.500Z",
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "externalId": "JSmith", "userName": "JSmith", "active": false,
                "name": {"givenName": "John", "familyName": "O'Malley_100%"},
                "emails": [{"value": "john.smith@EXAMPLE.com", "type": "work"}],
                "title": ""
            }),
        ),
        (
            "u3",
            ResourceKind::User,
            "2020-01-01T00:00:00.000Z",
            "2020-01-01T00:00:00.000Z",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "ünïcödé"}),
        ),
        (
            "g1",
            ResourceKind::Group,
            "2012-03-01T00:00:00.000Z",
            "2012-03-01T00:00:00.000Z",
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "Tour Guides", "externalId": "tg",
                "members": [{"value": "u1", "display": "Babs Jensen", "type": "User"},
                            {"value": "u2", "type": "User"}]
            }),
        ),
        (
            "g2",
            ResourceKind::Group,
            "2013-03-01T00:00:00.000Z",
            "2013-03-01T00:00:00.000Z",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Empty"}),
        ),
    ]
}

/// The document the in-memory evaluator sees: the stored one with `id` and `meta`.
fn full_doc(id: &str, kind: ResourceKind, created: &str, modified: &str, doc: &Value) -> Value {
    let mut full = doc.clone();
    full["id"] = json!(id);
    full["meta"] = json!({"resourceType": kind.name(), "created": created,
                          "lastModified": modified,
                          "location": format!("https://scim.example.com/scim/v2{}/{id}", kind.endpoint()),
                          "version": "W/\"1\""});
    full
}

/// Known divergence, found by this target (fuzz/regressions/scim_filter/meta_version): the
/// SQL translator compares `meta.version` and `meta.location` with the stored document,
/// which has no `meta` (the store keeps created, lastModified and resourceType in columns
/// and renders the rest), so `meta.version eq "W/\"1\""` matches nothing in a query.
/// Filters comparing them are still translated, prepared and run, but not compared with the
/// evaluator. (`meta pr` and `meta.location pr`, the other half of the finding, are fixed:
/// the translator knows every resource has them.)
fn names_meta_outside_columns(f: &Filter) -> bool {
    let meta = |p: &AttrPath| {
        let a = p.attr.to_ascii_lowercase();
        (a == "meta" || a.ends_with(":meta"))
            && p.sub.as_deref().is_none_or(|s| {
                s.eq_ignore_ascii_case("version") || s.eq_ignore_ascii_case("location")
            })
    };
    match f {
        Filter::And(l, r) | Filter::Or(l, r) => {
            names_meta_outside_columns(l) || names_meta_outside_columns(r)
        }
        Filter::Not(inner) => names_meta_outside_columns(inner),
        Filter::Compare { path, .. } => meta(path),
        Filter::Present { .. } => false,
        Filter::ValuePath { path, .. } => meta(path),
    }
}

thread_local! {
    /// An in-memory store with scimgate's schema and the [`stored`] resources.
    static DB: RefCell<Connection> = RefCell::new(open_db());
}

fn open_db() -> Connection {
    let c = Connection::open_in_memory().unwrap();
    scimgate::store::functions::register(&c).unwrap();
    c.execute_batch(include_str!("../../schema.sql")).unwrap();
    for (id, kind, created, modified, doc) in stored() {
        let s = |k: &str| doc.get(k).and_then(Value::as_str).map(str::to_owned);
        let user_name = if kind == ResourceKind::User {
            s("userName")
        } else {
            None
        };
        c.execute(
            "INSERT INTO scim_resources (id, resource_type, user_name, external_id, \
             display_name, doc, created_at, last_modified, version, user_name_fold, \
             display_name_fold) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 1, scim_fold(?3), scim_fold(?5))",
            rusqlite::params![
                id,
                kind.name(),
                user_name,
                s("externalId"),
                s("displayName"),
                doc.to_string(),
                created,
                modified
            ],
        )
        .unwrap();
    }
    c
}

/// Drive one parsed filter through validation, evaluation and SQL for both kinds.
fn check_filter(f: &Filter) {
    let registry = SchemaRegistry::builtin();
    let docs = stored();
    for kind in [ResourceKind::User, ResourceKind::Group] {
        let resolver = registry.resolver(kind);
        let valid = validate_filter(f, &resolver);
        let sql = to_sql(f, &resolver);
        assert_eq!(
            valid.is_ok(),
            sql.is_ok(),
            "validate vs to_sql: {f} {valid:?} {sql:?}"
        );
        let mut expected = Vec::new();
        for (id, k, created, modified, doc) in &docs {
            if *k != kind {
                continue;
            }
            let full = full_doc(id, *k, created, modified, doc);
            let m = matches(f, &full, &resolver);
            assert_eq!(
                valid.is_ok(),
                m.is_ok(),
                "validate vs matches: {f} {valid:?} {m:?}"
            );
            if m == Ok(true) {
                expected.push(id.to_string());
            }
        }
        let Ok(sql) = sql else {
            continue;
        };
        let query = format!(
            "SELECT id FROM scim_resources WHERE resource_type = '{}' AND ({}) ORDER BY id",
            kind.name(),
            sql.sql
        );
        DB.with(|db| {
            let db = db.borrow();
            let mut stmt = db
                .prepare(&query)
                .unwrap_or_else(|e| panic!("{f}: the SQL does not prepare: {e}\n{query}"));
            assert_eq!(stmt.parameter_count(), sql.params.len(), "{f}: {query}");
            let got: Vec<String> = stmt
                .query_map(params_from_iter(sql.params.iter()), |r| r.get(0))
                .and_then(|rows| rows.collect())
                .unwrap_or_else(|e| panic!("{f}: the SQL fails: {e}\n{query} {:?}", sql.params));
            if names_meta_outside_columns(f) {
                return;
            }
            assert_eq!(
                got, expected,
                "{kind} filter {f}: SQL selects {got:?}, the evaluator {expected:?}\n{query} {:?}",
                sql.params
            );
        });
    }
}

pub fn scim_filter(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(f) = parse_filter(s) else {
        return;
    };
    let printed = f.to_string();
    assert_eq!(
        parse_filter(&printed).as_ref(),
        Ok(&f),
        "{s:?} printed as {printed:?}"
    );
    check_filter(&f);
}

// ---------------------------------------------------------------------------------------
// patch_path_value

fn check_patch_path(s: &str) {
    if let Ok(p) = parse_patch_path(s) {
        let printed = p.to_string();
        assert_eq!(
            parse_patch_path(&printed).as_ref(),
            Ok(&p),
            "{s:?} printed as {printed:?}"
        );
    }
}

pub fn patch_path_value(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if !s.trim_start().starts_with('{') {
        check_patch_path(s);
        return;
    }
    let Ok(body) = serde_json::from_str::<Value>(s) else {
        return;
    };
    let Ok(ops) = parse_patch_request(&body) else {
        return;
    };
    for op in &ops {
        if let Some(p) = &op.path {
            check_patch_path(p);
        }
    }
    let registry = SchemaRegistry::builtin();
    for (id, kind, _, _, stored) in stored() {
        if id == "u2" || id == "u3" || id == "g2" {
            continue;
        }
        // As `scim::service::Scim::patch` does.
        let (ops, removed) = extension_ops(kind, ops.clone());
        let resolver = registry.resolver(kind);
        let mut doc = stored.clone();
        doc["id"] = json!(id);
        let before = doc.clone();
        if apply_patch(&mut doc, &ops, &resolver).is_err() {
            assert_eq!(doc, before, "a failed PATCH changed the document");
            continue;
        }
        if let Value::Object(m) = &mut doc {
            m.remove("id");
            for urn in &removed {
                m.remove(*urn);
            }
        }
        let existing = WriteMode::Replace { existing: &stored };
        if let Ok(out) = registry.normalize(kind, &doc, existing) {
            check_stored_form(kind, out);
        }
    }
}

/// What the service stores of a normalised document `doc` (its `password` dropped) is in
/// the store's `DOC_FORM`: its own default projection, so that its text with `id` and
/// `meta` spliced in (`scim::render::splice`, the IdPs' lookup) is the full rendering.
fn check_stored_form(kind: ResourceKind, mut doc: Value) {
    let registry = SchemaRegistry::builtin();
    if let Value::Object(m) = &mut doc {
        m.remove("password");
    }
    let projected = registry.project(kind, doc.clone(), &[], &[]);
    assert_eq!(
        projected, doc,
        "a stored {kind:?} is not its own default projection"
    );
    let meta = json!({"location": "https://h/scim/v2/Users/x", "version": "W/\"1\""});
    let spliced = splice(
        &to_text(&doc),
        &[("id", "\"x\""), ("meta", &to_text(&meta))],
    )
    .expect("a stored document's text is spliced");
    doc["id"] = json!("x");
    doc["meta"] = meta;
    let full = to_text(&registry.project(kind, doc, &[], &[]));
    assert_eq!(spliced, full, "spliced and rendered {kind:?} differ");
}

// ---------------------------------------------------------------------------------------
// scim_normalize

pub fn scim_normalize(data: &[u8]) {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let registry = SchemaRegistry::builtin();
    let lists: [(&[String], &[String]); 3] = [
        (&[], &[]),
        (
            &[
                "userName".into(),
                "emails.value".into(),
                format!("{ENT}:manager"),
            ],
            &[],
        ),
        (
            &[],
            &["members".into(), "name.givenName".into(), "groups".into()],
        ),
    ];
    for (id, kind, _, _, stored) in stored() {
        if id != "u1" && id != "g1" {
            continue;
        }
        for mode in [WriteMode::Create, WriteMode::Replace { existing: &stored }] {
            let Ok(doc) = registry.normalize(kind, &body, mode) else {
                continue;
            };
            let again = registry.normalize(kind, &doc, mode);
            assert_eq!(
                again.as_ref(),
                Ok(&doc),
                "normalising twice differs ({kind})"
            );
            check_stored_form(kind, doc.clone());
            for (attributes, excluded) in lists {
                let _ = registry.project(kind, doc.clone(), attributes, excluded);
            }
        }
        // Projection of whatever is stored (it also runs on documents read back).
        let _ = registry.project(kind, body.clone(), &[], &[]);
    }
}
