//! The `scim_resources` and `scim_group_members` tables: SCIM Users and Groups as JSON
//! documents with their most-searched attributes in indexed columns.
//!
//! The store derives the columns (`user_name`, `external_id`, `display_name`) and the
//! membership rows from the canonical document it is given, so they can never disagree
//! with it. Versions (the ETag) are checked and bumped inside the write transaction.

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params, params_from_iter};
use serde_json::Value;

use super::scim_filter::{self, SqlParam};
use super::{Result, Store, StoreError};
use crate::scim::attr::{AttributeResolver, ResolvedPath};
use crate::scim::filter::Filter;
use crate::scim::value::fold;

/// A stored SCIM resource: its document (canonical names, no `id`/`meta`) and metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct ScimRecord {
    pub id: String,
    pub resource_type: String,
    pub doc: Value,
    pub created: String,
    pub last_modified: String,
    pub version: i64,
}

/// What a list or search asks for.
pub struct ScimQuery<'a> {
    /// `User` or `Group`.
    pub resource_type: &'a str,
    pub filter: Option<&'a Filter>,
    pub resolver: &'a dyn AttributeResolver,
    pub sort_by: Option<ResolvedPath>,
    pub descending: bool,
    /// 1-based.
    pub start_index: usize,
    pub count: usize,
    /// Users only: `LIKE` patterns one of which `user_name` must match (a client limited to
    /// its email domains, `scim::domains`); empty: no restriction.
    pub user_name_like: &'a [String],
}

const COLUMNS: &str = "id, resource_type, doc, created_at, last_modified, version";

fn row_to_record(r: &Row<'_>) -> rusqlite::Result<ScimRecord> {
    let doc: String = r.get(2)?;
    Ok(ScimRecord {
        id: r.get(0)?,
        resource_type: r.get(1)?,
        doc: serde_json::from_str(&doc).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, e.into())
        })?,
        created: r.get(3)?,
        last_modified: r.get(4)?,
        version: r.get(5)?,
    })
}

fn str_field<'a>(doc: &'a Value, key: &str) -> Option<&'a str> {
    doc.get(key).and_then(Value::as_str)
}

fn member_ids(doc: &Value) -> Vec<String> {
    let mut ids: Vec<String> = doc
        .get("members")
        .and_then(Value::as_array)
        .map(|ms| {
            ms.iter()
                .filter_map(|m| m.get("value").and_then(Value::as_str))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids.dedup();
    ids
}

fn uniqueness(e: rusqlite::Error, resource_type: &str, doc: &Value) -> StoreError {
    match StoreError::from(e) {
        StoreError::Conflict(_) if resource_type == "User" => {
            user_name_taken(str_field(doc, "userName").unwrap_or_default())
        }
        other => other,
    }
}

fn user_name_taken(user_name: &str) -> StoreError {
    StoreError::Conflict(format!("a User with userName `{user_name}` already exists"))
}

/// The columns kept beside `doc`: the attributes filters look up most, and the case folds
/// of the case-insensitive ones ([`crate::scim::value::fold`], migration 10).
struct Columns<'d> {
    user_name: Option<&'d str>,
    external_id: Option<&'d str>,
    display_name: Option<&'d str>,
    user_name_fold: Option<String>,
    display_name_fold: Option<String>,
}

impl<'d> Columns<'d> {
    fn of(resource_type: &str, doc: &'d Value) -> Columns<'d> {
        let user_name = str_field(doc, "userName").filter(|_| resource_type == "User");
        let display_name = str_field(doc, "displayName");
        Columns {
            user_name,
            external_id: str_field(doc, "externalId"),
            display_name,
            user_name_fold: user_name.map(fold),
            display_name_fold: display_name.map(fold),
        }
    }
}

/// `userName` is unique (RFC 7643 §4.1, `uniqueness: server`) as SCIM compares it,
/// `caseExact: false` under the Unicode fold: refuses a User `id` whose `userName` another
/// User has in any case (the NOCASE unique index alone sees ASCII case only).
fn check_user_name_free(tx: &Transaction<'_>, id: &str, c: &Columns<'_>) -> Result<()> {
    let (Some(user_name), Some(folded)) = (c.user_name, &c.user_name_fold) else {
        return Ok(());
    };
    let taken: bool = tx
        .prepare_cached(
            "SELECT EXISTS(SELECT 1 FROM scim_resources WHERE resource_type = 'User' \
             AND user_name_fold = ?1 AND id <> ?2)",
        )?
        .query_row(params![folded, id], |r| r.get(0))?;
    if taken {
        return Err(user_name_taken(user_name));
    }
    Ok(())
}

fn get(conn: &Connection, resource_type: &str, id: &str) -> Result<Option<ScimRecord>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM scim_resources WHERE id = ?1 AND resource_type = ?2"
        ))?
        .query_row(params![id, resource_type], row_to_record)
        .optional()?)
}

fn set_members(tx: &Transaction<'_>, group_id: &str, doc: &Value) -> Result<()> {
    tx.execute(
        "DELETE FROM scim_group_members WHERE group_id = ?1",
        [group_id],
    )?;
    let mut stmt = tx.prepare_cached(
        "INSERT OR IGNORE INTO scim_group_members (group_id, member_id) VALUES (?1, ?2)",
    )?;
    for m in member_ids(doc) {
        stmt.execute(params![group_id, m])?;
    }
    Ok(())
}

/// Refuse a Group that names itself as a member.
fn check_not_self_member(group_id: &str, doc: &Value) -> Result<()> {
    if member_ids(doc).iter().any(|m| m == group_id) {
        return Err(StoreError::Invalid(
            "a group cannot be a member of itself".into(),
        ));
    }
    Ok(())
}

/// Members that do not exist (as a User or Group) — a write naming them is refused.
fn missing_members(tx: &Transaction<'_>, doc: &Value) -> Result<Vec<String>> {
    let mut stmt =
        tx.prepare_cached("SELECT EXISTS(SELECT 1 FROM scim_resources WHERE id = ?1)")?;
    let mut missing = Vec::new();
    for m in member_ids(doc) {
        let exists: bool = stmt.query_row([&m], |r| r.get(0))?;
        if !exists {
            missing.push(m);
        }
    }
    Ok(missing)
}

/// `expected`: the versions an If-Match header accepts (`None`: any).
fn check_version(current: &ScimRecord, expected: Option<&[i64]>) -> Result<()> {
    match expected {
        Some(vs) if !vs.contains(&current.version) => Err(StoreError::Precondition(format!(
            "the resource is at version {}",
            current.version
        ))),
        _ => Ok(()),
    }
}

/// The WHERE clause, its parameters and the ORDER BY of a SCIM query. resource_type is
/// inlined as a literal (it comes from a fixed set, checked here) so the partial indexes
/// on it apply.
fn query_parts(q: &ScimQuery<'_>) -> Result<(String, Vec<SqlParam>, String)> {
    if !matches!(q.resource_type, "User" | "Group") {
        return Err(StoreError::Invalid(format!(
            "unknown resource type {}",
            q.resource_type
        )));
    }
    let mut where_sql = format!("resource_type = '{}'", q.resource_type);
    let mut params: Vec<SqlParam> = Vec::new();
    if let Some(f) = q.filter {
        let sql =
            scim_filter::to_sql(f, q.resolver).map_err(|e| StoreError::Invalid(e.to_string()))?;
        where_sql.push_str(&format!(" AND ({})", sql.sql));
        params = sql.params;
    }
    if q.resource_type == "User" && !q.user_name_like.is_empty() {
        let any = vec!["user_name LIKE ? ESCAPE '\\'"; q.user_name_like.len()].join(" OR ");
        where_sql.push_str(&format!(" AND ({any})"));
        params.extend(q.user_name_like.iter().cloned().map(SqlParam::Text));
    }
    let order = match &q.sort_by {
        Some(path) => format!(
            "{} {} NULLS LAST, id",
            scim_filter::sort_expression(path, q.resolver),
            if q.descending { "DESC" } else { "ASC" }
        ),
        None => "created_at, id".to_string(),
    };
    Ok((where_sql, params, order))
}

impl Store {
    /// Insert a new resource; `Conflict` when userName is taken, `Invalid` when a Group
    /// names members that do not exist.
    pub fn insert_scim(
        &self,
        resource_type: &str,
        id: &str,
        doc: &Value,
        now: &str,
    ) -> Result<ScimRecord> {
        self.write(|tx| {
            if resource_type == "Group" {
                let missing = missing_members(tx, doc)?;
                if !missing.is_empty() {
                    return Err(StoreError::Invalid(format!(
                        "members do not exist: {}",
                        missing.join(", ")
                    )));
                }
            }
            let c = Columns::of(resource_type, doc);
            check_user_name_free(tx, id, &c)?;
            tx.execute(
                "INSERT INTO scim_resources (id, resource_type, user_name, external_id, \
                 display_name, user_name_fold, display_name_fold, doc, created_at, \
                 last_modified, version) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, 1)",
                params![
                    id,
                    resource_type,
                    c.user_name,
                    c.external_id,
                    c.display_name,
                    c.user_name_fold,
                    c.display_name_fold,
                    doc.to_string(),
                    now,
                ],
            )
            .map_err(|e| uniqueness(e, resource_type, doc))?;
            if resource_type == "Group" {
                set_members(tx, id, doc)?;
            }
            get(tx, resource_type, id)?.ok_or_else(|| StoreError::NotFound(id.to_string()))
        })
    }

    /// A resource by id.
    pub fn scim(&self, resource_type: &str, id: &str) -> Result<Option<ScimRecord>> {
        self.read_point(|c| get(c, resource_type, id))
    }

    /// The type and `userName` of each resource among `ids` that exists (for the members of
    /// a group, as a client limited to its email domains may see them).
    pub fn scim_kinds_and_user_names(
        &self,
        ids: &[String],
    ) -> Result<Vec<(String, String, Option<String>)>> {
        let mut out = Vec::new();
        self.read(|c| {
            for chunk in ids.chunks(500) {
                let marks = vec!["?"; chunk.len()].join(", ");
                let mut stmt = c.prepare(&format!(
                    "SELECT id, resource_type, user_name FROM scim_resources WHERE id IN ({marks})"
                ))?;
                let rows = stmt.query_map(params_from_iter(chunk.iter()), |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?;
                for row in rows {
                    out.push(row?);
                }
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Replace a resource's document with the result of `change(current)`, checking the
    /// expected version (If-Match) first; all inside one write transaction so concurrent
    /// PATCHes cannot lose each other's changes.
    pub fn update_scim<E>(
        &self,
        resource_type: &str,
        id: &str,
        expected_version: Option<&[i64]>,
        now: &str,
        change: impl FnOnce(&ScimRecord) -> std::result::Result<Value, E>,
    ) -> Result<std::result::Result<ScimRecord, E>> {
        self.write(|tx| {
            let current = get(tx, resource_type, id)?
                .ok_or_else(|| StoreError::NotFound(format!("{resource_type} {id}")))?;
            check_version(&current, expected_version)?;
            let doc = match change(&current) {
                Ok(doc) => doc,
                Err(e) => return Ok(Err(e)),
            };
            if doc == current.doc {
                // Nothing changed: keep the version (and the ETag) as it was.
                return Ok(Ok(current));
            }
            if resource_type == "Group" {
                check_not_self_member(id, &doc)?;
                let missing = missing_members(tx, &doc)?;
                if !missing.is_empty() {
                    return Err(StoreError::Invalid(format!(
                        "members do not exist: {}",
                        missing.join(", ")
                    )));
                }
            }
            let c = Columns::of(resource_type, &doc);
            check_user_name_free(tx, id, &c)?;
            tx.execute(
                "UPDATE scim_resources SET user_name = ?3, external_id = ?4, display_name = ?5, \
                 user_name_fold = ?6, display_name_fold = ?7, doc = ?8, last_modified = ?9, \
                 version = version + 1 \
                 WHERE id = ?1 AND resource_type = ?2",
                params![
                    id,
                    resource_type,
                    c.user_name,
                    c.external_id,
                    c.display_name,
                    c.user_name_fold,
                    c.display_name_fold,
                    doc.to_string(),
                    now,
                ],
            )
            .map_err(|e| uniqueness(e, resource_type, &doc))?;
            if resource_type == "Group" {
                set_members(tx, id, &doc)?;
            }
            let rec = get(tx, resource_type, id)?.ok_or_else(|| StoreError::NotFound(id.into()))?;
            Ok(Ok(rec))
        })
    }

    /// Delete a resource (checking If-Match) and remove it from every group it was in.
    pub fn delete_scim(
        &self,
        resource_type: &str,
        id: &str,
        expected_version: Option<&[i64]>,
        now: &str,
    ) -> Result<()> {
        self.write(|tx| {
            let current = get(tx, resource_type, id)?
                .ok_or_else(|| StoreError::NotFound(format!("{resource_type} {id}")))?;
            check_version(&current, expected_version)?;
            let groups: Vec<String> = {
                let mut stmt =
                    tx.prepare("SELECT group_id FROM scim_group_members WHERE member_id = ?1")?;
                let rows = stmt.query_map([id], |r| r.get(0))?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            for g in groups {
                if let Some(mut group) = get(tx, "Group", &g)? {
                    if let Some(Value::Array(ms)) = group.doc.get_mut("members") {
                        ms.retain(|m| m.get("value").and_then(Value::as_str) != Some(id));
                        if ms.is_empty() {
                            if let Value::Object(o) = &mut group.doc {
                                o.remove("members");
                            }
                        }
                    }
                    tx.execute(
                        "UPDATE scim_resources SET doc = ?2, last_modified = ?3, \
                         version = version + 1 WHERE id = ?1",
                        params![g, group.doc.to_string(), now],
                    )?;
                }
            }
            tx.execute("DELETE FROM scim_group_members WHERE member_id = ?1", [id])?;
            tx.execute("DELETE FROM scim_resources WHERE id = ?1", [id])?;
            Ok(())
        })
    }

    /// The groups a resource is a direct member of: (group id, displayName).
    pub fn scim_groups_of(&self, member_id: &str) -> Result<Vec<(String, Option<String>)>> {
        self.read_point(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT g.id, g.display_name FROM scim_group_members m \
                 JOIN scim_resources g ON g.id = m.group_id WHERE m.member_id = ?1 \
                 ORDER BY g.display_name, g.id",
            )?;
            let rows = stmt.query_map([member_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// A page of resources matching a query, and the total number of matches.
    pub fn query_scim(&self, q: &ScimQuery<'_>) -> Result<(usize, Vec<ScimRecord>)> {
        let (where_sql, params, order) = query_parts(q)?;
        // An equality on an indexed column reads one index entry: a point read, on the
        // small pool the request path uses (the handler runs it inline). Anything else may
        // scan, on the pool of the blocking threads.
        let point = q.sort_by.is_none()
            && q.filter
                .is_some_and(|f| crate::scim::filter::is_indexed_equality(f, q.resolver));
        let run = |c: &rusqlite::Connection| {
            let total: i64 = c
                .prepare_cached(&format!(
                    "SELECT count(*) FROM scim_resources WHERE {where_sql}"
                ))?
                .query_row(params_from_iter(params.iter()), |r| r.get(0))?;
            if q.count == 0 {
                return Ok((usize::try_from(total).unwrap_or(0), Vec::new()));
            }
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM scim_resources WHERE {where_sql} ORDER BY {order} \
                 LIMIT ? OFFSET ?"
            ))?;
            let mut page = params.clone();
            page.push(SqlParam::Integer(
                i64::try_from(q.count).unwrap_or(i64::MAX),
            ));
            page.push(SqlParam::Integer(
                i64::try_from(q.start_index.saturating_sub(1)).unwrap_or(0),
            ));
            let rows = stmt.query_map(params_from_iter(page.iter()), row_to_record)?;
            Ok((
                usize::try_from(total).unwrap_or(0),
                rows.collect::<rusqlite::Result<Vec<_>>>()?,
            ))
        };
        if point {
            self.read_point(run)
        } else {
            self.read(run)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::schema::{ResourceKind, SchemaRegistry};

    /// The equality filters IdPs send are answered from one index each, in the default
    /// order, never by walking every resource of the type (what the planner chose while
    /// the fold indexes lacked the order columns: 400 ms a query with 100,000 Users).
    #[test]
    fn idp_equality_filters_use_their_index_in_the_default_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_or_create(&dir.path().join("s.db")).unwrap();
        let registry = SchemaRegistry::builtin();
        for (kind, filter) in [
            (ResourceKind::User, r#"userName eq "bjensen@example.com""#),
            (ResourceKind::User, r#"externalId eq "701984""#),
            (ResourceKind::Group, r#"displayName eq "Tour Guides""#),
        ] {
            let resolver = registry.resolver(kind);
            let parsed = crate::scim::filter::parse_filter(filter).unwrap();
            let q = ScimQuery {
                resource_type: kind.name(),
                filter: Some(&parsed),
                resolver: &resolver,
                sort_by: None,
                descending: false,
                start_index: 1,
                count: 100,
                user_name_like: &[],
            };
            let (where_sql, params, order) = query_parts(&q).unwrap();
            let plan: Vec<String> = store
                .read(|c| {
                    let mut stmt = c.prepare(&format!(
                        "EXPLAIN QUERY PLAN SELECT {COLUMNS} FROM scim_resources \
                         WHERE {where_sql} ORDER BY {order} LIMIT 100"
                    ))?;
                    let rows =
                        stmt.query_map(params_from_iter(params.iter()), |r| r.get::<_, String>(3))?;
                    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
                })
                .unwrap();
            let plan = plan.join(" | ");
            assert!(
                !plan.contains("scim_resources_type") && !plan.contains("TEMP B-TREE"),
                "{filter}: {plan}"
            );
        }
    }
}
