//! SQL translation: exact SQL and parameters for representative filters, injection
//! safety, and agreement with in-memory evaluation on a real SQLite database.

use crate::scim::attr::{AttributeResolver, ResolvedPath};
use crate::scim::filter::parse_filter;
use crate::store::scim_filter::{SqlFilter, SqlParam, to_sql};
use rusqlite::{Connection, params_from_iter, types::Value as SqlValue};

use super::eval::memory_matches;
use super::fixtures::{cases, users};
use super::mock::MockResolver;

const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const TST: &str = "urn:example:scim:schemas:extension:test:1.0:User";

fn sql(filter: &str) -> SqlFilter {
    let f = parse_filter(filter).unwrap_or_else(|e| panic!("{filter}: {e}"));
    to_sql(&f, &MockResolver::user()).unwrap_or_else(|e| panic!("{filter}: {e}"))
}

fn t(s: &str) -> SqlParam {
    SqlParam::Text(s.into())
}

fn check(filter: &str, expected_sql: &str, expected_params: Vec<SqlParam>) {
    let got = sql(filter);
    assert_eq!(got.sql, expected_sql, "{filter}");
    assert_eq!(got.params, expected_params, "{filter}");
}

#[test]
fn columns_use_explicit_collation() {
    check(
        "userName eq \"bjensen\"",
        "user_name_fold = ?",
        vec![t("bjensen")],
    );
    check("USERNAME ne \"b\"", "user_name_fold <> ?", vec![t("b")]);
    check(
        "externalId eq \"x\"",
        "external_id = ? COLLATE BINARY",
        vec![t("x")],
    );
    check("id eq \"u1\"", "id = ? COLLATE BINARY", vec![t("u1")]);
    check(
        "displayName pr",
        "(display_name IS NOT NULL AND display_name <> '')",
        vec![],
    );
    check("userName eq null", "user_name IS NULL", vec![]);
    check(
        "meta.lastModified gt \"2011-05-13T04:42:34+02:00\"",
        "julianday(last_modified) > julianday(?)",
        vec![t("2011-05-13T02:42:34.000Z")],
    );
    check(
        "meta.created co \"2011\"",
        "instr(created_at, ?) > 0",
        vec![t("2011")],
    );
}

#[test]
fn json_attributes() {
    check(
        "title co \"a%b_c\\\\\"",
        "instr(scim_fold(json_extract(doc, '$.title')), ?) > 0",
        vec![t("a%b_c\\")],
    );
    check(
        "name.familyName sw \"J\"",
        "instr(scim_fold(json_extract(doc, '$.name.familyName')), ?) = 1",
        vec![t("j")],
    );
    check(
        "title ew \"x\"",
        "substr(scim_fold(json_extract(doc, '$.title')), \
         length(scim_fold(json_extract(doc, '$.title'))) - length(?) + 1) = ?",
        vec![t("x"), t("x")],
    );
    check(
        "title ge \"m\"",
        "scim_fold(json_extract(doc, '$.title')) >= ?",
        vec![t("m")],
    );
    check(
        "active eq true",
        "json_extract(doc, '$.active') = ?",
        vec![SqlParam::Bool(true)],
    );
    check(
        "active ne \"FALSE\"",
        "json_extract(doc, '$.active') <> ?",
        vec![SqlParam::Bool(false)],
    );
    check(
        "title eq null",
        "json_extract(doc, '$.title') IS NULL",
        vec![],
    );
    check(
        "title ne null",
        "json_extract(doc, '$.title') IS NOT NULL",
        vec![],
    );
    check(
        "title pr",
        "(CASE json_type(doc, '$.title') WHEN 'null' THEN 0 \
         WHEN 'text' THEN json_extract(doc, '$.title') <> '' \
         WHEN 'array' THEN json_array_length(doc, '$.title') > 0 \
         WHEN 'object' THEN json_extract(doc, '$.title') <> '{}' \
         ELSE json_type(doc, '$.title') IS NOT NULL END)",
        vec![],
    );
    check(
        &format!("{ENT}:manager.value eq \"26118915\""),
        &format!("scim_fold(json_extract(doc, '$.\"{ENT}\".manager.value')) = ?"),
        vec![t("26118915")],
    );
    check(
        &format!("{ENT}:manager eq \"26118915\""),
        &format!("scim_fold(json_extract(doc, '$.\"{ENT}\".manager.value')) = ?"),
        vec![t("26118915")],
    );
    check(
        &format!("{TST}:level gt 2"),
        &format!("json_extract(doc, '$.\"{TST}\".level') > ?"),
        vec![SqlParam::Integer(2)],
    );
    check(
        &format!("{TST}:score le 0.5"),
        &format!("json_extract(doc, '$.\"{TST}\".score') <= ?"),
        vec![SqlParam::Real(0.5)],
    );
}

#[test]
fn case_exact_substrings() {
    let x = format!("json_extract(doc, '$.\"{TST}\".code')");
    check(
        &format!("{TST}:code co \"b\""),
        &format!("instr({x}, ?) > 0"),
        vec![t("b")],
    );
    check(
        &format!("{TST}:code sw \"b\""),
        &format!("instr({x}, ?) = 1"),
        vec![t("b")],
    );
    check(
        &format!("{TST}:code ew \"b\""),
        &format!("substr({x}, length({x}) - length(?) + 1) = ?"),
        vec![t("b"), t("b")],
    );
    check(
        &format!("{TST}:code eq \"b\""),
        &format!("{x} = ? COLLATE BINARY"),
        vec![t("b")],
    );
}

#[test]
fn multi_valued_and_value_paths() {
    check(
        "emails[type eq \"work\" and value co \"@example.com\"]",
        "EXISTS (SELECT 1 FROM json_each(doc, '$.emails') AS e WHERE \
         (scim_fold(json_extract(e.value, '$.type')) = ? AND \
         instr(scim_fold(json_extract(e.value, '$.value')), ?) > 0))",
        vec![t("work"), t("@example.com")],
    );
    check(
        "emails.value eq \"x\"",
        "EXISTS (SELECT 1 FROM json_each(doc, '$.emails') AS e WHERE \
         scim_fold(json_extract(e.value, '$.value')) = ?)",
        vec![t("x")],
    );
    check(
        "emails eq \"x\"",
        "EXISTS (SELECT 1 FROM json_each(doc, '$.emails') AS e WHERE \
         scim_fold(json_extract(e.value, '$.value')) = ?)",
        vec![t("x")],
    );
    check(
        "emails.value eq null",
        "NOT EXISTS (SELECT 1 FROM json_each(doc, '$.emails') AS e WHERE \
         json_extract(e.value, '$.value') IS NOT NULL)",
        vec![],
    );
    check(
        &format!("{TST}:tags eq \"beta\""),
        &format!(
            "EXISTS (SELECT 1 FROM json_each(doc, '$.\"{TST}\".tags') AS e WHERE \
             scim_fold(e.value) = ?)"
        ),
        vec![t("beta")],
    );
    check(
        "emails[not (primary eq true)]",
        "EXISTS (SELECT 1 FROM json_each(doc, '$.emails') AS e WHERE \
         NOT COALESCE(json_extract(e.value, '$.primary') = ?, 0))",
        vec![SqlParam::Bool(true)],
    );
    check(
        "name[givenName eq \"John\"]",
        "scim_fold(json_extract(doc, '$.name.givenName')) = ?",
        vec![t("john")],
    );
    check(
        "groups.$ref pr",
        "EXISTS (SELECT 1 FROM json_each(doc, '$.groups') AS e WHERE \
         (CASE json_type(e.value, '$.\"$ref\"') WHEN 'null' THEN 0 \
         WHEN 'text' THEN json_extract(e.value, '$.\"$ref\"') <> '' \
         WHEN 'array' THEN json_array_length(e.value, '$.\"$ref\"') > 0 \
         WHEN 'object' THEN json_extract(e.value, '$.\"$ref\"') <> '{}' \
         ELSE json_type(e.value, '$.\"$ref\"') IS NOT NULL END))",
        vec![],
    );
}

#[test]
fn logic_and_null_safe_not() {
    check(
        "userName eq \"a\" or title eq \"b\" and active eq false",
        "(user_name_fold = ? OR (scim_fold(json_extract(doc, '$.title')) = ? \
         AND json_extract(doc, '$.active') = ?))",
        vec![t("a"), t("b"), SqlParam::Bool(false)],
    );
    check(
        "not (title eq \"x\")",
        "NOT COALESCE(scim_fold(json_extract(doc, '$.title')) = ?, 0)",
        vec![t("x")],
    );
}

#[test]
fn values_never_reach_the_sql_text() {
    let evil = "x' OR 1=1; DROP TABLE users; --";
    for filter in [
        format!("userName eq {}", serde_json::Value::String(evil.into())),
        format!("title co {}", serde_json::Value::String(evil.into())),
        format!(
            "emails[value sw {}]",
            serde_json::Value::String(evil.into())
        ),
        format!("{TST}:code ew {}", serde_json::Value::String(evil.into())),
    ] {
        let s = sql(&filter);
        assert!(
            !s.sql.contains("DROP") && !s.sql.contains("1=1"),
            "{}",
            s.sql
        );
    }
}

/// A resolver whose canonical names or columns would break out of the SQL quoting.
struct EvilResolver {
    name: &'static str,
    column: Option<&'static str>,
}

impl AttributeResolver for EvilResolver {
    fn resolve(&self, _: Option<&str>, _: &str, _: Option<&str>) -> Option<ResolvedPath> {
        let mut attr = MockResolver::user().resolve(None, "title", None)?.attr;
        attr.name = self.name.into();
        Some(ResolvedPath {
            extension: None,
            attr,
            sub: None,
        })
    }

    fn column(&self, _: &ResolvedPath) -> Option<&'static str> {
        self.column
    }
}

#[test]
fn resolver_names_are_checked_before_interpolation() {
    let f = parse_filter("title eq \"x\"").unwrap();
    for name in ["a') OR 1=1 --", "a\"b", "a\\b", ""] {
        let resolver = EvilResolver { name, column: None };
        assert!(to_sql(&f, &resolver).is_err(), "{name:?}");
    }
    let resolver = EvilResolver {
        name: "with space.and-dash",
        column: None,
    };
    assert_eq!(
        to_sql(&f, &resolver).unwrap().sql,
        "scim_fold(json_extract(doc, '$.\"with space.and-dash\"')) = ?"
    );
    let resolver = EvilResolver {
        name: "title",
        column: Some("title; DROP TABLE users"),
    };
    assert!(to_sql(&f, &resolver).is_err());
}

#[test]
fn same_errors_as_evaluation() {
    let resolver = MockResolver::user();
    for filter in [
        "nickName eq \"x\"",
        "active gt true",
        "title eq 5",
        "emails[kind eq \"x\"]",
        "name eq \"x\"",
        "meta.created lt \"soon\"",
    ] {
        let f = parse_filter(filter).unwrap();
        let sql_err = to_sql(&f, &resolver).unwrap_err();
        assert_eq!(Err(sql_err), memory_matches(filter), "{filter}");
    }
}

// ---------------------------------------------------------------------------------------
// SQLite agreement

fn database() -> Connection {
    let conn = Connection::open_in_memory().unwrap();
    crate::store::functions::register(&conn).unwrap();
    conn.execute_batch(
        "CREATE TABLE users (
            id TEXT PRIMARY KEY,
            user_name TEXT NOT NULL COLLATE NOCASE UNIQUE,
            external_id TEXT,
            display_name TEXT COLLATE NOCASE,
            created_at TEXT,
            last_modified TEXT,
            doc TEXT NOT NULL,
            user_name_fold TEXT
        );
        CREATE INDEX users_user_name_fold ON users(user_name_fold);",
    )
    .unwrap();
    for doc in users() {
        let text = |v: &serde_json::Value| v.as_str().map(str::to_string);
        conn.execute(
            "INSERT INTO users VALUES (?, ?, ?, ?, ?, ?, ?, scim_fold(?2))",
            rusqlite::params![
                text(&doc["id"]),
                text(&doc["userName"]),
                text(&doc["externalId"]),
                text(&doc["displayName"]),
                text(&doc["meta"]["created"]),
                text(&doc["meta"]["lastModified"]),
                doc.to_string(),
            ],
        )
        .unwrap();
    }
    conn
}

fn bind(param: &SqlParam) -> SqlValue {
    match param {
        SqlParam::Text(s) => SqlValue::Text(s.clone()),
        SqlParam::Integer(i) => SqlValue::Integer(*i),
        SqlParam::Real(f) => SqlValue::Real(*f),
        SqlParam::Bool(b) => SqlValue::Integer(i64::from(*b)),
        SqlParam::Null => SqlValue::Null,
    }
}

fn sqlite_matches(conn: &Connection, filter: &str) -> Result<Vec<String>, String> {
    let s = sql(filter);
    let query = format!("SELECT user_name FROM users WHERE {}", s.sql);
    let mut stmt = conn.prepare(&query).map_err(|e| format!("{query}: {e}"))?;
    let rows = stmt
        .query_map(params_from_iter(s.params.iter().map(bind)), |row| {
            row.get::<_, String>(0)
        })
        .map_err(|e| format!("{query}: {e}"))?;
    let mut names = rows
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{query}: {e}"))?;
    names.sort_unstable();
    Ok(names)
}

#[test]
fn sqlite_agrees_with_memory_on_fixture() {
    let conn = database();
    let mut failures = Vec::new();
    let all = cases();
    assert!(all.len() >= 30);
    for (filter, expected) in &all {
        let from_sql = sqlite_matches(&conn, filter);
        let from_memory = memory_matches(filter).map_err(|e| e.to_string());
        let expected: Result<Vec<String>, String> =
            Ok(expected.iter().map(|s| s.to_string()).collect());
        if from_sql != expected || from_memory != expected {
            failures.push(format!(
                "{filter}\n   expected {expected:?}\n   sql      {from_sql:?}\n   memory   {from_memory:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn sqlite_uses_the_user_name_index() {
    let conn = database();
    let s = sql("userName eq \"BJENSEN\"");
    let plan: String = conn
        .query_row(
            &format!("EXPLAIN QUERY PLAN SELECT id FROM users WHERE {}", s.sql),
            params_from_iter(s.params.iter().map(bind)),
            |row| row.get(3),
        )
        .unwrap();
    assert!(plan.contains("USING INDEX"), "{plan}");
}
