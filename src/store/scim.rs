//! The `scim_resources` and `scim_group_members` tables: SCIM Users and Groups as JSON
//! documents with their most-searched attributes in indexed columns.
//!
//! The store derives the columns (`user_name`, `external_id`, `display_name`) and the
//! membership rows from the canonical document it is given, so they can never disagree
//! with it. Versions (the ETag) are checked and bumped inside the write transaction.
//!
//! Large Groups shape three paths: a write changes only the membership rows that differ
//! ([`set_members`]); a delete gets the Groups its resource leaves prepared outside the
//! write lock ([`Store::groups_without`]); a read that leaves `members` out skips them
//! while parsing ([`parse_doc`]).

use std::sync::LazyLock;

use rusqlite::{Connection, OptionalExtension, Row, ToSql, params, params_from_iter};
use serde_json::Value;

use super::scim_filter::{self, PointLookup, SqlParam};
use super::{Result, Store, StoreError, on_postgres};
use crate::scim::attr::{AttributeResolver, ResolvedPath};
use crate::scim::filter::Filter;
use crate::scim::json::to_text;
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
    /// A User's groups (id, displayName), by displayName then id; read in the same
    /// statement as the resource (one statement, one read transaction, one snapshot).
    /// Empty for a Group.
    pub groups: Vec<(String, Option<String>)>,
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
    /// Whether the records returned hold a Group's `members` (false: the response leaves
    /// them out, so they are not read; see [`parse_doc`]).
    pub members: bool,
}

/// A User's groups as one JSON array of `[id, displayName]` pairs (NULL for a Group): the
/// last of [`COLUMNS`], and what an update returns (`RETURNING`).
macro_rules! groups_of_user {
    () => {
        "CASE WHEN resource_type = 'User' THEN (SELECT json_group_array(json_array(g.id, \
         g.display_name)) FROM scim_group_members m \
         JOIN scim_resources g ON g.id = m.group_id WHERE m.member_id = scim_resources.id) END"
    };
}

/// A resource's columns as [`row_to_record`] reads them: the row, then a User's groups as
/// one JSON array of `[id, displayName]` pairs (a correlated subquery on
/// `scim_group_members_member`; it used to be a second statement for every User rendered,
/// and with it a second read transaction). [`row_to_record`] sorts them: an `ORDER BY`
/// inside the aggregate costs SQLite a sorter for every row.
const COLUMNS: &str = concat!(
    "id, resource_type, doc, created_at, last_modified, version, ",
    groups_of_user!()
);

impl ScimRecord {
    /// The record of a resource just inserted, built from what was written instead of
    /// read back: a new resource is in no group (its id is new, and a Group names only
    /// members that exist).
    /// Takes what it keeps: the group commit moves the document into the record instead of
    /// copying it.
    pub(super) fn inserted(resource_type: &str, id: String, doc: Value, now: String) -> ScimRecord {
        ScimRecord {
            id,
            resource_type: resource_type.to_string(),
            doc,
            created: now.clone(),
            last_modified: now,
            version: 1,
            groups: Vec::new(),
        }
    }

    /// The record of a resource just updated from `version` to the next, from what was
    /// written and what the UPDATE returned: its creation time and a User's groups (the
    /// JSON of `groups_of_user!`).
    pub(super) fn updated(
        resource_type: &str,
        id: String,
        doc: Value,
        now: String,
        version: i64,
        (created, groups): Returned,
    ) -> Result<ScimRecord> {
        Ok(ScimRecord {
            id,
            resource_type: resource_type.to_string(),
            doc,
            created,
            last_modified: now,
            version: version + 1,
            groups: groups_of(groups.as_deref()).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        })
    }
}

/// The form of the documents the SCIM service writes (`doc_form` in `scim_resources`,
/// schema.sql's migration 13): the text `json::to_text` writes of a document the service's
/// normaliser returned, which is its own default read projection (the fuzz target
/// `scim_normalize` and `scim::render`'s tests hold it to that). A reader may answer with
/// that text as it is, `id`, `groups` and `meta` spliced in ([`crate::scim::render`]).
/// Rows written before (0), or rewritten by the store itself (a Group that lost a deleted
/// member), are parsed and rendered in full. A change to the normaliser or the schemas
/// that breaks that promise for documents already stored must raise this number (and
/// `doc_form!` with it).
pub const DOC_FORM: i64 = 1;

/// A resource as a point lookup reads it ([`Store::scim_point_lookup`]): its document and
/// groups still text, so a caller that already rendered this version parses nothing.
#[derive(Debug)]
pub struct StoredResource {
    pub id: String,
    pub version: i64,
    pub(super) resource_type: String,
    pub(super) doc: String,
    pub(super) created: String,
    pub(super) last_modified: String,
    pub(super) groups: Option<String>,
    /// `doc_form`: [`DOC_FORM`] or an older form.
    pub(super) form: i64,
}

impl StoredResource {
    /// `User` or `Group`.
    pub fn resource_type(&self) -> &str {
        &self.resource_type
    }

    /// The document as stored.
    pub fn text(&self) -> &str {
        &self.doc
    }

    /// The record and, when the document is stored in [`DOC_FORM`], its text: then the
    /// record's `doc` is left `Null` (nothing is parsed but its groups); otherwise the
    /// document is parsed into the record and the text is `None`.
    pub fn into_record_or_text(self) -> Result<(ScimRecord, Option<String>)> {
        if self.form != DOC_FORM {
            return Ok((self.into_record()?, None));
        }
        let groups =
            groups_of(self.groups.as_deref()).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let rec = ScimRecord {
            id: self.id,
            resource_type: self.resource_type,
            doc: Value::Null,
            created: self.created,
            last_modified: self.last_modified,
            version: self.version,
            groups,
        };
        Ok((rec, Some(self.doc)))
    }

    /// The record, its document parsed (a Group's `members` too).
    pub fn into_record(self) -> Result<ScimRecord> {
        let corrupt = |e: serde_json::Error| StoreError::Corrupt(e.to_string());
        Ok(ScimRecord {
            doc: parse_doc(&self.doc, true).map_err(corrupt)?,
            groups: groups_of(self.groups.as_deref()).map_err(corrupt)?,
            id: self.id,
            resource_type: self.resource_type,
            created: self.created,
            last_modified: self.last_modified,
            version: self.version,
        })
    }
}

fn row_to_record(r: &Row<'_>) -> rusqlite::Result<ScimRecord> {
    row_to_record_with(r, true)
}

/// [`row_to_record`], with a Group's `members` read or not (`members`; see [`parse_doc`]).
fn row_to_record_with(r: &Row<'_>, members: bool) -> rusqlite::Result<ScimRecord> {
    let bad = |i: usize, e: serde_json::Error| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into())
    };
    let doc = r.get_ref(2)?.as_str()?;
    Ok(ScimRecord {
        id: r.get(0)?,
        resource_type: r.get(1)?,
        doc: parse_doc(doc, members).map_err(|e| bad(2, e))?,
        created: r.get(3)?,
        last_modified: r.get(4)?,
        version: r.get(5)?,
        groups: groups_of(r.get_ref(6)?.as_str_or_null()?).map_err(|e| bad(6, e))?,
    })
}

/// A stored document. With `members` false, its `members` (a Group's) is skipped as the
/// text is read, not built: a Group of 49,000 members is a 2.4 MB document, and building
/// it was nearly all of a 22 ms `GET` with `excludedAttributes=members` (Entra ID's way of
/// reading Groups), on the worker thread.
pub(super) fn parse_doc(text: &str, members: bool) -> serde_json::Result<Value> {
    if members {
        return serde_json::from_str(text);
    }
    use serde::Deserializer as _;
    use serde::de::{IgnoredAny, MapAccess, Visitor};
    struct WithoutMembers;
    impl<'de> Visitor<'de> for WithoutMembers {
        type Value = serde_json::Map<String, Value>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(
            self,
            mut map: A,
        ) -> std::result::Result<Self::Value, A::Error> {
            let mut out = serde_json::Map::new();
            while let Some(key) = map.next_key::<String>()? {
                if key == "members" {
                    map.next_value::<IgnoredAny>()?;
                } else {
                    let value = map.next_value()?;
                    out.insert(key, value);
                }
            }
            Ok(out)
        }
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let doc = (&mut de).deserialize_map(WithoutMembers)?;
    de.end()?;
    Ok(Value::Object(doc))
}

/// A User's groups from the JSON array of `[id, displayName]` pairs the columns hold
/// (none: not a User, or in no group), by displayName (NOCASE, as the column's collation
/// ordered them before), then id. Both backends read them so.
pub(super) fn groups_of(json: Option<&str>) -> serde_json::Result<Vec<(String, Option<String>)>> {
    let Some(json) = json else {
        return Ok(Vec::new());
    };
    let mut groups: Vec<(String, Option<String>)> = serde_json::from_str(json)?;
    groups.sort_by(|(ia, da), (ib, db)| {
        let key = |d: &Option<String>| d.as_deref().map(str::to_ascii_lowercase);
        key(da).cmp(&key(db)).then_with(|| ia.cmp(ib))
    });
    Ok(groups)
}

pub(super) fn str_field<'a>(doc: &'a Value, key: &str) -> Option<&'a str> {
    doc.get(key).and_then(Value::as_str)
}

pub(super) fn member_ids(doc: &Value) -> Vec<String> {
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

/// A write's error, where a unique index refused a User. `userName` is unique (RFC 7643
/// §4.1, `uniqueness: server`) as SCIM compares it, `caseExact: false` under the Unicode
/// fold, and the only unique index of `scim_resources` is the one on that fold (schema.sql,
/// migration 12): so that is a taken userName, named. The writes leave the check to the
/// index, with no query of their own. Any other error is the store's as it is.
fn uniqueness(e: rusqlite::Error, resource_type: &str, doc: &Value) -> StoreError {
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if resource_type == "User"
                && f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
        {
            user_name_taken(str_field(doc, "userName").unwrap_or_default())
        }
        _ => StoreError::from(e),
    }
}

pub(super) fn user_name_taken(user_name: &str) -> StoreError {
    StoreError::Conflict(format!("a User with userName `{user_name}` already exists"))
}

/// The columns kept beside `doc`: the attributes filters look up most, and the case folds
/// of the case-insensitive ones ([`crate::scim::value::fold`], migration 10).
pub(super) struct Columns<'d> {
    pub(super) user_name: Option<&'d str>,
    pub(super) external_id: Option<&'d str>,
    pub(super) display_name: Option<&'d str>,
    pub(super) user_name_fold: Option<String>,
    pub(super) display_name_fold: Option<String>,
}

impl<'d> Columns<'d> {
    pub(super) fn of(resource_type: &str, doc: &'d Value) -> Columns<'d> {
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

fn get(conn: &Connection, resource_type: &str, id: &str) -> Result<Option<ScimRecord>> {
    get_with(conn, resource_type, id, true)
}

fn get_with(
    conn: &Connection,
    resource_type: &str,
    id: &str,
    members: bool,
) -> Result<Option<ScimRecord>> {
    get_row(conn, resource_type, id, |r| row_to_record_with(r, members))
}

/// The row of the resource `id` of `resource_type` ([`COLUMNS`]), as `read` makes it.
fn get_row<T>(
    conn: &Connection,
    resource_type: &str,
    id: &str,
    read: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Option<T>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM scim_resources WHERE id = ?1 AND resource_type = ?2"
        ))?
        .query_row(params![id, resource_type], read)
        .optional()?)
}

/// What [`get_for_change`] found.
pub(super) enum ForChange {
    Missing,
    /// Its stored document is longer than the caller's bound: left unparsed.
    Large,
    Found(ScimRecord),
}

/// A resource read inside the writer's transaction, to be changed there
/// ([`super::TokenBatcher::change_scim`]): its document parsed only when its stored text is
/// at most `max_text` bytes.
pub(super) fn get_for_change(
    conn: &Connection,
    resource_type: &str,
    id: &str,
    max_text: usize,
) -> Result<ForChange> {
    if !super::can_name_a_row(id) {
        return Ok(ForChange::Missing);
    }
    let found = get_row(conn, resource_type, id, |r| {
        if r.get_ref(2)?.as_str()?.len() > max_text {
            return Ok(ForChange::Large);
        }
        row_to_record_with(r, true).map(ForChange::Found)
    })?;
    Ok(found.unwrap_or(ForChange::Missing))
}

/// Bring group `group_id`'s membership rows to the members `doc` names, writing only the
/// rows that change (`created`: the group is new and has none). Rewriting them all made
/// adding one member to a group of 49,000 take 0.4 s inside the write lock. `Invalid`,
/// naming them, if a member added does not exist.
fn set_members(tx: &Connection, group_id: &str, doc: &Value, created: bool) -> Result<()> {
    let wanted = member_ids(doc);
    let current = if created {
        Vec::new()
    } else {
        let mut stmt =
            tx.prepare_cached("SELECT member_id FROM scim_group_members WHERE group_id = ?1")?;
        let rows = stmt.query_map([group_id], |r| r.get(0))?;
        rows.collect::<rusqlite::Result<Vec<String>>>()?
    };
    let change = MemberChange::of(current, &wanted);
    check_members_exist(tx, &change.added)?;
    let mut delete =
        tx.prepare_cached("DELETE FROM scim_group_members WHERE group_id = ?1 AND member_id = ?2")?;
    for m in &change.removed {
        delete.execute(params![group_id, m])?;
    }
    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO scim_group_members (group_id, member_id) VALUES (?1, ?2)",
    )?;
    for m in &change.added {
        insert.execute(params![group_id, m])?;
    }
    Ok(())
}

/// What brings a group's membership rows to the members its new document names.
pub(super) struct MemberChange<'a> {
    /// Named by the document, without a row: each must exist.
    pub added: Vec<&'a str>,
    /// Rows the document no longer names.
    pub removed: Vec<String>,
}

impl<'a> MemberChange<'a> {
    /// `current`: the rows' member ids, in any order; `wanted`: [`member_ids`] of the new
    /// document (sorted, without duplicates).
    pub(super) fn of(mut current: Vec<String>, wanted: &'a [String]) -> MemberChange<'a> {
        current.sort_unstable();
        let added = (wanted.iter())
            .filter(|w| current.binary_search(w).is_err())
            .map(String::as_str)
            .collect();
        current.retain(|c| wanted.binary_search(c).is_err());
        MemberChange {
            added,
            removed: current,
        }
    }
}

/// Refuse a Group that names itself as a member.
pub(super) fn check_not_self_member(group_id: &str, doc: &Value) -> Result<()> {
    let members = doc.get("members").and_then(Value::as_array);
    let named = |m: &Value| m.get("value").and_then(Value::as_str) == Some(group_id);
    if members.is_some_and(|ms| ms.iter().any(named)) {
        return Err(StoreError::Invalid(
            "a group cannot be a member of itself".into(),
        ));
    }
    Ok(())
}

/// `Invalid`, naming them, if any of `members` does not exist (as a User or Group).
fn check_members_exist(tx: &Connection, members: &[&str]) -> Result<()> {
    let mut stmt =
        tx.prepare_cached("SELECT EXISTS(SELECT 1 FROM scim_resources WHERE id = ?1)")?;
    let mut missing = Vec::new();
    for &m in members {
        let exists: bool = stmt.query_row([m], |r| r.get(0))?;
        if !exists {
            missing.push(m);
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "members do not exist: {}",
            missing.join(", ")
        )))
    }
}

/// The steps of [`Store::update_scim`]'s transaction on one backend: read the resource,
/// and write its new document if it is still at the version read. The decisions (the
/// If-Match check, an unchanged document keeping its version) are [`update_scim_in`]'s,
/// once for both backends.
pub(super) trait UpdateTx {
    fn record(&mut self, resource_type: &str, id: &str) -> Result<Option<ScimRecord>>;
    fn replace_at_version(
        &mut self,
        resource_type: &str,
        id: &str,
        version: i64,
        doc: &Value,
        now: &str,
    ) -> Result<Option<ScimRecord>>;
}

impl UpdateTx for &Connection {
    fn record(&mut self, resource_type: &str, id: &str) -> Result<Option<ScimRecord>> {
        get(self, resource_type, id)
    }

    fn replace_at_version(
        &mut self,
        resource_type: &str,
        id: &str,
        version: i64,
        doc: &Value,
        now: &str,
    ) -> Result<Option<ScimRecord>> {
        replace_at_version(self, resource_type, id, version, doc, now)
    }
}

/// [`Store::update_scim`] inside its transaction, on either backend.
pub(super) fn update_scim_in<E>(
    tx: &mut impl UpdateTx,
    resource_type: &str,
    id: &str,
    expected_version: Option<&[i64]>,
    now: &str,
    change: impl FnOnce(&ScimRecord) -> std::result::Result<Value, E>,
) -> Result<std::result::Result<ScimRecord, E>> {
    let current = tx
        .record(resource_type, id)?
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
    let rec = tx
        .replace_at_version(resource_type, id, current.version, &doc, now)?
        .ok_or_else(|| StoreError::NotFound(id.into()))?;
    Ok(Ok(rec))
}

/// `Precondition` unless `current` is at one of the versions an If-Match header accepts
/// (`expected`; `None`: any). The store checks it inside its write; the group commit's
/// update path (`Scim::prepare_update`) checks it against the version it read.
pub fn check_version(current: &ScimRecord, expected: Option<&[i64]>) -> Result<()> {
    check_version_number(current.version, expected)
}

pub(super) fn check_version_number(version: i64, expected: Option<&[i64]>) -> Result<()> {
    match expected {
        Some(vs) if !vs.contains(&version) => Err(StoreError::Precondition(format!(
            "the resource is at version {version}"
        ))),
        _ => Ok(()),
    }
}

/// A Group a resource being deleted is a member of: its document without that member, and
/// the version it was read at ([`Store::groups_without`]).
#[derive(Debug)]
pub struct GroupWithout {
    pub(super) id: String,
    pub(super) version: i64,
    pub(super) doc_text: String,
}

impl GroupWithout {
    /// Group `record` without `member_id` (no `members` left: the attribute goes).
    pub(super) fn of(mut record: ScimRecord, member_id: &str) -> GroupWithout {
        if let Some(Value::Array(ms)) = record.doc.get_mut("members") {
            ms.retain(|m| m.get("value").and_then(Value::as_str) != Some(member_id));
            if ms.is_empty()
                && let Value::Object(o) = &mut record.doc
            {
                o.remove("members");
            }
        }
        GroupWithout {
            doc_text: to_text(&record.doc),
            id: record.id,
            version: record.version,
        }
    }

    /// Whether `prepared` is still what to write: the member is now in exactly those
    /// Groups (`now`: each Group's id and version), each at the version read.
    pub(super) fn still(prepared: &[GroupWithout], mut now: Vec<(String, i64)>) -> bool {
        let mut read: Vec<(&str, i64)> = prepared
            .iter()
            .map(|g| (g.id.as_str(), g.version))
            .collect();
        read.sort_unstable();
        now.sort_unstable();
        read.len() == now.len() && read.iter().zip(&now).all(|(r, n)| r.0 == n.0 && r.1 == n.1)
    }
}

/// Each Group `member_id` is in, without it (see [`GroupWithout`]).
fn groups_without(conn: &Connection, member_id: &str) -> Result<Vec<GroupWithout>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM scim_resources WHERE resource_type = 'Group' AND id IN \
         (SELECT group_id FROM scim_group_members WHERE member_id = ?1)"
    ))?;
    let rows = stmt.query_map([member_id], row_to_record)?;
    rows.map(|r| Ok(GroupWithout::of(r?, member_id))).collect()
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

/// The statement reading one page of a query (see [`Store::query_scim`] on LIMIT and OFFSET).
fn page_sql(where_sql: &str, order: &str, q: &ScimQuery<'_>) -> String {
    let limit = i64::try_from(q.count).unwrap_or(i64::MAX);
    let offset = i64::try_from(q.start_index.saturating_sub(1)).unwrap_or(0);
    format!(
        "SELECT {COLUMNS} FROM scim_resources WHERE {where_sql} ORDER BY {order} \
         LIMIT {limit} OFFSET {offset}"
    )
}

/// [`Store::scim_point_lookup`]'s statements for one backend's columns, one for each type
/// and indexed column. The type is written in, not bound, so the partial indexes on it
/// apply, as in [`query_parts`]; the value is `$1`, which SQLite binds as its first
/// parameter, as PostgreSQL does.
pub(super) struct PointStatements(Vec<(&'static str, &'static str, String)>);

impl PointStatements {
    pub(super) fn new(columns: &str) -> PointStatements {
        let pairs = [
            ("User", "id"),
            ("User", "external_id"),
            ("User", "user_name_fold"),
            ("User", "display_name_fold"),
            ("Group", "id"),
            ("Group", "external_id"),
            ("Group", "display_name_fold"),
        ];
        PointStatements(
            pairs
                .into_iter()
                .map(|(kind, column)| {
                    let sql = format!(
                        "SELECT {columns} FROM scim_resources \
                         WHERE resource_type = '{kind}' AND {column} = $1 LIMIT 2"
                    );
                    (kind, column, sql)
                })
                .collect(),
        )
    }

    pub(super) fn get(&self, resource_type: &str, column: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, c, _)| *k == resource_type && *c == column)
            .map(|(_, _, sql)| sql.as_str())
    }
}

/// The columns of a point lookup's [`StoredResource`]: [`COLUMNS`], then `doc_form`.
pub(super) fn point_columns(columns: &str) -> String {
    format!("{columns}, doc_form")
}

static POINT_STATEMENTS: LazyLock<PointStatements> =
    LazyLock::new(|| PointStatements::new(&point_columns(COLUMNS)));

/// A row of a statement that selects [`point_columns`].
fn stored_resource(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredResource> {
    Ok(StoredResource {
        id: r.get(0)?,
        resource_type: r.get(1)?,
        doc: r.get(2)?,
        created: r.get(3)?,
        last_modified: r.get(4)?,
        version: r.get(5)?,
        groups: r.get(6)?,
        form: r.get(7)?,
    })
}

/// `meta`'s key for the last form whose pass over older documents finished
/// ([`Store::scim_forms_checked`]).
pub const FORMS_CHECKED_KEY: &str = "scim_forms_checked";

/// [`Store::scim_in_older_forms`]' statement for `columns` (`?1`/`$1` after, `?2`/`$2` the
/// limit; SQLite binds `$n` as PostgreSQL does).
pub(super) fn older_forms(columns: &str) -> String {
    format!(
        "SELECT {} FROM scim_resources WHERE id > $1 AND doc_form <> {} ORDER BY id LIMIT $2",
        point_columns(columns),
        doc_form!()
    )
}

static OLDER_FORMS: LazyLock<String> = LazyLock::new(|| older_forms(COLUMNS));

/// [`Store::scim_vouch_for`]'s statement (both backends).
pub(super) const VOUCH: &str = concat!(
    "UPDATE scim_resources SET doc_form = ",
    doc_form!(),
    " WHERE id = $1 AND version = $2 AND doc_form <> ",
    doc_form!()
);

/// [`Store::set_scim_forms_checked`]'s statement (both backends): `$1` the key, `$2` the form.
pub(super) const SET_FORMS_CHECKED: &str = "INSERT INTO meta (key, value) VALUES ($1, $2) \
     ON CONFLICT (key) DO UPDATE SET value = excluded.value";

/// Insert a new resource (inside the caller's transaction): `Conflict` when userName is
/// taken, `Invalid` when a Group names members that do not exist. [`Store::insert_scim`]
/// runs it in a transaction of its own, the group commit ([`super::TokenBatcher`]) in a
/// batch's.
pub(super) fn insert(
    tx: &Connection,
    resource_type: &str,
    id: &str,
    doc: &Value,
    now: &str,
) -> Result<ScimRecord> {
    insert_row(tx, resource_type, id, doc, &to_text(doc), now)?;
    Ok(ScimRecord::inserted(
        resource_type,
        id.to_string(),
        doc.clone(),
        now.to_string(),
    ))
}

/// [`insert`]'s writes, without the record (the group commit builds it from what it owns):
/// `doc`, stored as `doc_text` (its `json::to_text`, which the caller may answer with).
pub(super) fn insert_row(
    tx: &Connection,
    resource_type: &str,
    id: &str,
    doc: &Value,
    doc_text: &str,
    now: &str,
) -> Result<()> {
    let c = Columns::of(resource_type, doc);
    // A taken userName is refused by the unique index on its fold: no query of its own
    // (each was a descent of that index inside the group commit, for every create).
    tx.prepare_cached(concat!(
        "INSERT INTO scim_resources (id, resource_type, user_name, external_id, \
         display_name, user_name_fold, display_name_fold, doc, created_at, \
         last_modified, version, doc_form) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, 1, ",
        doc_form!(),
        ")"
    ))?
    .execute(&write_params(&id, &resource_type, &c, &doc_text, &now)[..])
    .map_err(|e| uniqueness(e, resource_type, doc))?;
    if resource_type == "Group" {
        set_members(tx, id, doc, true)?;
    }
    // Not read back: that read was a B-tree descent and a parse of the document inside the
    // group commit, for each create.
    Ok(())
}

/// The parameters both writes bind, in their order: ?1 the id, ?2 the resource type, ?3–?7
/// the columns, ?8 the document, ?9 the time (an update adds ?10, the version it expects).
fn write_params<'a>(
    id: &'a &'a str,
    resource_type: &'a &'a str,
    c: &'a Columns<'a>,
    doc_text: &'a &'a str,
    now: &'a &'a str,
) -> [&'a dyn ToSql; 9] {
    [
        id,
        resource_type,
        &c.user_name,
        &c.external_id,
        &c.display_name,
        &c.user_name_fold,
        &c.display_name_fold,
        doc_text,
        now,
    ]
}

/// Replace resource `id`'s document with `doc` if it is still at `version` (inside the
/// caller's transaction): the new record, or `None` when it changed or went since that
/// version was read (the caller reads it again). `Conflict` when the userName is taken,
/// `Invalid` when a Group would name itself or members that do not exist.
pub(super) fn replace_at_version(
    tx: &Connection,
    resource_type: &str,
    id: &str,
    version: i64,
    doc: &Value,
    now: &str,
) -> Result<Option<ScimRecord>> {
    match replace_row(tx, resource_type, id, version, doc, &to_text(doc), now)? {
        Some(returned) => ScimRecord::updated(
            resource_type,
            id.to_string(),
            doc.clone(),
            now.to_string(),
            version,
            returned,
        )
        .map(Some),
        None => Ok(None),
    }
}

/// What an update returns besides what it wrote: the creation time and a User's groups
/// (the JSON of `groups_of_user!`).
pub(super) type Returned = (String, Option<String>);

/// [`replace_at_version`]'s writes, without the record (`doc` stored as `doc_text`, its
/// `json::to_text`): what the UPDATE returned, or `None` when the version moved.
pub(super) fn replace_row(
    tx: &Connection,
    resource_type: &str,
    id: &str,
    version: i64,
    doc: &Value,
    doc_text: &str,
    now: &str,
) -> Result<Option<Returned>> {
    if resource_type == "Group" {
        check_not_self_member(id, doc)?;
    }
    let c = Columns::of(resource_type, doc);
    // Most changes leave the indexed columns as they were (a PATCH of a name or `active`).
    // SQLite rewrites the entry of every index whose column a SET names, value changed or
    // not, and each such entry is a page of its own in the WAL: so first the document
    // alone, where the indexed columns still hold these values exactly (binary: a userName
    // that changes case must be written); the full update otherwise.
    // Each UPDATE returns what the record needs besides what was written (its creation
    // time, a User's groups), so it is not read back (as `insert` does not).
    let written = write_params(&id, &resource_type, &c, &doc_text, &now);
    let expected: &dyn ToSql = &version;
    let update = |sql: &str| {
        let args = written.iter().chain(std::iter::once(&expected));
        tx.prepare_cached(sql)?
            .query_row(params_from_iter(args), |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
    };
    let returned = match update(concat!(
        "UPDATE scim_resources SET doc = ?8, last_modified = ?9, version = version + 1, \
         doc_form = ",
        doc_form!(),
        " WHERE id = ?1 AND resource_type = ?2 AND version = ?10 \
         AND user_name IS ?3 COLLATE BINARY AND external_id IS ?4 COLLATE BINARY \
         AND display_name IS ?5 COLLATE BINARY AND user_name_fold IS ?6 COLLATE BINARY \
         AND display_name_fold IS ?7 COLLATE BINARY RETURNING created_at, ",
        groups_of_user!()
    ))? {
        Some(returned) => returned,
        None => {
            // A taken userName is refused by the unique index on its fold ([`uniqueness`]);
            // no row means the version moved.
            let full = update(concat!(
                "UPDATE scim_resources SET user_name = ?3, external_id = ?4, \
                 display_name = ?5, user_name_fold = ?6, display_name_fold = ?7, doc = ?8, \
                 last_modified = ?9, version = version + 1, doc_form = ",
                doc_form!(),
                " WHERE id = ?1 AND resource_type = ?2 AND version = ?10 \
                 RETURNING created_at, ",
                groups_of_user!()
            ));
            match full.map_err(|e| uniqueness(e, resource_type, doc))? {
                Some(returned) => returned,
                None => return Ok(None),
            }
        }
    };
    if resource_type == "Group" {
        set_members(tx, id, doc, false)?;
    }
    Ok(Some(returned))
}

impl Store {
    /// Insert a new resource; `Conflict` when userName is taken, `Invalid` when a Group
    /// names members that do not exist. `doc` is recorded as being in [`DOC_FORM`], as are
    /// the documents of every update: the SCIM service's normaliser wrote it.
    pub fn insert_scim(
        &self,
        resource_type: &str,
        id: &str,
        doc: &Value,
        now: &str,
    ) -> Result<ScimRecord> {
        on_postgres!(self, pg => pg.insert_scim(resource_type, id, doc, now));
        self.write(|tx| insert(tx, resource_type, id, doc, now))
    }

    /// A resource by id.
    pub fn scim(&self, resource_type: &str, id: &str) -> Result<Option<ScimRecord>> {
        self.scim_read(resource_type, id, true)
    }

    /// A resource by id, for reading: with `members` false, a Group's `members` is not read
    /// (the response leaves it out; see [`parse_doc`]).
    pub fn scim_read(
        &self,
        resource_type: &str,
        id: &str,
        members: bool,
    ) -> Result<Option<ScimRecord>> {
        if !super::can_name_a_row(id) {
            return Ok(None);
        }
        on_postgres!(self, pg => pg.scim_read(resource_type, id, members));
        self.read_point(|c| get_with(c, resource_type, id, members))
    }

    /// The resources of `resource_type` that `lookup` names ([`scim_filter::point_lookup`]),
    /// at most two (a caller answering one resource needs no more to know there are
    /// several), their documents not parsed. `None` when this type has no such column.
    pub fn scim_point_lookup(
        &self,
        resource_type: &str,
        lookup: &PointLookup,
    ) -> Result<Option<Vec<StoredResource>>> {
        let (column, value) = (lookup.column, &lookup.value);
        if !super::can_name_a_row(value) {
            return Ok(Some(Vec::new()));
        }
        on_postgres!(self, pg => pg.scim_point_lookup(resource_type, column, value));
        let Some(sql) = POINT_STATEMENTS.get(resource_type, column) else {
            return Ok(None);
        };
        self.read_point(|c| {
            let mut stmt = c.prepare_cached(sql)?;
            let rows = stmt.query_map([value], stored_resource)?;
            Ok(Some(rows.collect::<rusqlite::Result<_>>()?))
        })
    }

    /// Up to `limit` resources whose documents are stored in a form older than
    /// [`DOC_FORM`], in the order of their ids, after `after` (`""` for the first), for
    /// the pass that vouches for them ([`crate::scim::forms`]). The primary key is
    /// scanned: no index on the form, since one pass per form reads each row once.
    pub fn scim_in_older_forms(&self, after: &str, limit: usize) -> Result<Vec<StoredResource>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        on_postgres!(self, pg => pg.scim_in_older_forms(after, limit));
        self.read(|c| {
            let mut stmt = c.prepare_cached(&OLDER_FORMS)?;
            let rows = stmt.query_map(params![after, limit], stored_resource)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// Record that the documents of `rows` (id, version) are in [`DOC_FORM`], each only
    /// while it is still at that version (a write in between stored it anew); the text,
    /// the version and `meta.lastModified` stay as they are. Returns how many rows were
    /// marked. One transaction.
    pub fn scim_vouch_for(&self, rows: &[(String, i64)]) -> Result<usize> {
        on_postgres!(self, pg => pg.scim_vouch_for(rows));
        self.write(|tx| {
            let mut stmt = tx.prepare_cached(VOUCH)?;
            let mut marked = 0;
            for (id, version) in rows {
                marked += stmt.execute(params![id, version])?;
            }
            Ok(marked)
        })
    }

    /// Whether a pass has read every document stored in a form older than [`DOC_FORM`]
    /// (`meta`'s [`FORMS_CHECKED_KEY`] holds that form).
    pub fn scim_forms_checked(&self) -> Result<bool> {
        Ok(self.meta(FORMS_CHECKED_KEY)?.as_deref() == Some(DOC_FORM.to_string().as_str()))
    }

    /// Record that a pass has read every document stored in an older form: later
    /// starts skip it. No audit event: nothing any user can see has changed.
    pub fn set_scim_forms_checked(&self) -> Result<()> {
        on_postgres!(self, pg => pg.set_scim_forms_checked());
        self.write(|tx| {
            tx.execute(
                SET_FORMS_CHECKED,
                params![FORMS_CHECKED_KEY, DOC_FORM.to_string()],
            )?;
            Ok(())
        })
    }

    /// The type and `userName` of each resource among `ids` that exists (for the members of
    /// a group, as a client limited to its email domains may see them).
    pub fn scim_kinds_and_user_names(
        &self,
        ids: &[String],
    ) -> Result<Vec<(String, String, Option<String>)>> {
        on_postgres!(self, pg => pg.scim_kinds_and_user_names(ids));
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
        if !super::can_name_a_row(id) {
            return Err(StoreError::NotFound(format!("{resource_type} {id}")));
        }
        on_postgres!(self, pg => pg.write(|tx| {
            update_scim_in(tx, resource_type, id, expected_version, now, change)
        }));
        self.write(|tx| {
            let mut conn: &Connection = tx;
            update_scim_in(&mut conn, resource_type, id, expected_version, now, change)
        })
    }

    /// The Groups `member_id` is in, each without it: what deleting it writes besides
    /// removing it. Read, patched and serialised here, outside the write lock (in it, a
    /// member of a Group of 49,000 held every other write for 90 ms), for
    /// [`Store::delete_scim`].
    pub fn groups_without(&self, member_id: &str) -> Result<Vec<GroupWithout>> {
        if !super::can_name_a_row(member_id) {
            return Ok(Vec::new());
        }
        on_postgres!(self, pg => pg.groups_without(member_id));
        self.read(|c| groups_without(c, member_id))
    }

    /// Delete a resource (checking If-Match) and remove it from every group it was in:
    /// with `leaving` from [`Store::groups_without`], `Ok(false)` and nothing written if
    /// those Groups are not all at the versions read (the caller reads them again);
    /// without, they are read in the write transaction.
    pub fn delete_scim(
        &self,
        resource_type: &str,
        id: &str,
        expected_version: Option<&[i64]>,
        now: &str,
        leaving: Option<&[GroupWithout]>,
    ) -> Result<bool> {
        if !super::can_name_a_row(id) {
            return Err(StoreError::NotFound(format!("{resource_type} {id}")));
        }
        on_postgres!(self, pg => pg.delete_scim(resource_type, id, expected_version, now, leaving));
        self.write(|tx| {
            let version: Option<i64> = tx
                .prepare_cached(
                    "SELECT version FROM scim_resources WHERE id = ?1 AND resource_type = ?2",
                )?
                .query_row(params![id, resource_type], |r| r.get(0))
                .optional()?;
            let version =
                version.ok_or_else(|| StoreError::NotFound(format!("{resource_type} {id}")))?;
            check_version_number(version, expected_version)?;
            let read_here;
            let leaving = match leaving {
                Some(leaving) => {
                    let mut stmt = tx.prepare_cached(
                        "SELECT m.group_id, g.version FROM scim_group_members m \
                         JOIN scim_resources g ON g.id = m.group_id WHERE m.member_id = ?1",
                    )?;
                    let rows = stmt.query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?;
                    let now_in = rows.collect::<rusqlite::Result<Vec<(String, i64)>>>()?;
                    if !GroupWithout::still(leaving, now_in) {
                        return Ok(false);
                    }
                    leaving
                }
                None => {
                    read_here = groups_without(tx, id)?;
                    &read_here[..]
                }
            };
            let mut update = tx.prepare_cached(
                "UPDATE scim_resources SET doc = ?2, last_modified = ?3, \
                 version = version + 1, doc_form = 0 WHERE id = ?1",
            )?;
            for g in leaving {
                update.execute(params![g.id, g.doc_text, now])?;
            }
            tx.prepare_cached("DELETE FROM scim_group_members WHERE member_id = ?1")?
                .execute([id])?;
            tx.prepare_cached("DELETE FROM scim_resources WHERE id = ?1")?
                .execute([id])?;
            Ok(true)
        })
    }

    /// A page of resources matching a query, and the total number of matches.
    pub fn query_scim(&self, q: &ScimQuery<'_>) -> Result<(usize, Vec<ScimRecord>)> {
        on_postgres!(self, pg => pg.query_scim(q));
        let (where_sql, params, order) = query_parts(q)?;
        // An equality on an indexed column reads one index entry: a point read, on the
        // small pool the request path uses (the handler runs it inline). Anything else may
        // scan, on the pool of the blocking threads.
        let point = q.sort_by.is_none()
            && q.filter
                .is_some_and(|f| crate::scim::filter::indexed_equality(f, q.resolver).is_some());
        let count = |c: &rusqlite::Connection| -> Result<usize> {
            let total: i64 = c
                .prepare_cached(&format!(
                    "SELECT count(*) FROM scim_resources WHERE {where_sql}"
                ))?
                .query_row(params_from_iter(params.iter()), |r| r.get(0))?;
            Ok(usize::try_from(total).unwrap_or(0))
        };
        let run = |c: &rusqlite::Connection| {
            if q.count == 0 {
                return Ok((count(c)?, Vec::new()));
            }
            // LIMIT and OFFSET are written into the statement, not bound: SQLite plans a
            // LIMIT by its value, so a bound one expires the cached statement at every
            // bind and each query was parsed and planned again (a fifth of the equality
            // filter's time in a profile; bench/RESULTS.md). Both are integers.
            let offset = i64::try_from(q.start_index.saturating_sub(1)).unwrap_or(0);
            let mut stmt = c.prepare_cached(&page_sql(&where_sql, &order, q))?;
            let rows = stmt
                .query_map(params_from_iter(params.iter()), |r| {
                    row_to_record_with(r, q.members)
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            // A first page that is not full holds every match: its length is the total,
            // and the count query is skipped (an IdP's lookup by userName or externalId
            // is one such page of zero or one resource). Otherwise count them.
            let total = if offset == 0 && rows.len() < q.count {
                rows.len()
            } else {
                count(c)?
            };
            Ok((total, rows))
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

    /// A replacement that leaves the indexed columns as they are writes the document alone;
    /// one that changes them, even only a userName's case, writes them; a stale version or
    /// a taken userName is refused either way.
    #[test]
    fn a_replacement_writes_the_indexed_columns_only_when_they_change() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_or_create(dir.path().join("s.db")).unwrap();
        let t = "2026-01-01T00:00:00.000Z";
        store
            .insert_scim("User", "a", &serde_json::json!({"userName": "Bob"}), t)
            .unwrap();
        store
            .insert_scim("User", "b", &serde_json::json!({"userName": "carol"}), t)
            .unwrap();
        let conn = store.writer().unwrap();
        let columns = |conn: &Connection| -> (String, String, i64) {
            conn.query_row(
                "SELECT user_name, user_name_fold, version FROM scim_resources WHERE id = 'a'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap()
        };
        // Only the document changes: fast path.
        let doc = serde_json::json!({"userName": "Bob", "name": {"givenName": "B"}});
        let rec = replace_at_version(&conn, "User", "a", 1, &doc, t)
            .unwrap()
            .unwrap();
        assert_eq!(
            (rec.version, rec.doc["name"]["givenName"].as_str()),
            (2, Some("B"))
        );
        // The same userName in another case is a change of the column.
        let doc = serde_json::json!({"userName": "bob"});
        replace_at_version(&conn, "User", "a", 2, &doc, t)
            .unwrap()
            .unwrap();
        assert_eq!(columns(&conn), ("bob".into(), "bob".into(), 3));
        // A stale version, with and without a column change.
        let same = serde_json::json!({"userName": "bob", "active": true});
        assert!(
            replace_at_version(&conn, "User", "a", 2, &same, t)
                .unwrap()
                .is_none()
        );
        let renamed = serde_json::json!({"userName": "dave"});
        assert!(
            replace_at_version(&conn, "User", "a", 2, &renamed, t)
                .unwrap()
                .is_none()
        );
        // Another User's name, in any case.
        let taken = serde_json::json!({"userName": "CAROL"});
        assert!(matches!(
            replace_at_version(&conn, "User", "a", 3, &taken, t),
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(columns(&conn), ("bob".into(), "bob".into(), 3));
    }

    /// The IdPs' lookup is prepared once per connection, then only bound: with a bound
    /// LIMIT, SQLite re-parsed and re-planned the statement at every bind (a third of the
    /// request's time went to `sqlite3Reprepare`). Also: the total of a first page that is
    /// not full is its length, and a full page or a later one counts.
    #[test]
    fn a_repeated_lookup_is_not_prepared_again_and_totals_hold() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_or_create(dir.path().join("s.db")).unwrap();
        for i in 0..5 {
            let doc = serde_json::json!({"userName": format!("u{i}@example.com")});
            store
                .insert_scim(
                    "User",
                    &format!("id{i}"),
                    &doc,
                    &format!("2026-01-01T00:00:0{i}.000Z"),
                )
                .unwrap();
        }
        let registry = SchemaRegistry::builtin();
        let resolver = registry.resolver(ResourceKind::User);
        fn query<'a>(
            resolver: &'a dyn crate::scim::attr::AttributeResolver,
            filter: Option<&'a crate::scim::filter::Filter>,
            start_index: usize,
            count: usize,
        ) -> ScimQuery<'a> {
            ScimQuery {
                resource_type: "User",
                filter,
                resolver,
                sort_by: None,
                descending: false,
                start_index,
                count,
                user_name_like: &[],
                members: true,
            }
        }
        let mut sql = String::new();
        for i in 0..5 {
            let parsed =
                crate::scim::filter::parse_filter(&format!(r#"userName eq "U{i}@example.com""#))
                    .unwrap();
            let q = query(&resolver, Some(&parsed), 1, 100);
            let (total, rows) = store.query_scim(&q).unwrap();
            assert_eq!((total, rows[0].id.as_str()), (1, format!("id{i}").as_str()));
            let (where_sql, _, order) = query_parts(&q).unwrap();
            sql = page_sql(&where_sql, &order, &q);
        }
        // The point pool's connections hold the cached statement; none was re-prepared.
        let conns: Vec<_> = (0..4)
            .map(|_| store.sqlite().unwrap().point_readers.get().unwrap())
            .collect();
        let reprepared: i32 = conns
            .iter()
            .map(|c| {
                c.prepare_cached(&sql)
                    .unwrap()
                    .get_status(rusqlite::StatementStatus::RePrepare)
            })
            .sum();
        assert_eq!(reprepared, 0);
        drop(conns);
        // Totals: a partial first page, a full one, a later one, an empty later one.
        for (start, count, total, len) in [(1, 10, 5, 5), (1, 2, 5, 2), (3, 2, 5, 2), (9, 2, 5, 0)]
        {
            let (t, rows) = store
                .query_scim(&query(&resolver, None, start, count))
                .unwrap();
            assert_eq!(
                (t, rows.len()),
                (total, len),
                "startIndex {start} count {count}"
            );
        }
    }

    /// The equality filters IdPs send are answered from one index each, in the default
    /// order, never by walking every resource of the type (what the planner chose while
    /// the fold indexes lacked the order columns: 400 ms a query with 100,000 Users).
    #[test]
    fn idp_equality_filters_use_their_index_in_the_default_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_or_create(dir.path().join("s.db")).unwrap();
        let registry = SchemaRegistry::builtin();
        for (kind, filter) in [
            (ResourceKind::User, r#"userName eq "bjensen@example.com""#),
            (ResourceKind::User, r#"externalId eq "701984""#),
            (ResourceKind::User, r#"displayName eq "Babs Jensen""#),
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
                members: true,
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

    /// Migration 14: the one index that mentions `display_name` is its folded twin's, which
    /// serves every query on displayName (above); an index on the column itself only cost
    /// each create and rename a page.
    #[test]
    fn display_name_is_indexed_by_its_fold_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_or_create(dir.path().join("s.db")).unwrap();
        let names: Vec<String> = store
            .read(|c| {
                let mut stmt = c.prepare(
                    "SELECT name FROM sqlite_master WHERE type = 'index' \
                     AND tbl_name = 'scim_resources' AND sql LIKE '%display_name%'",
                )?;
                let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .unwrap();
        assert_eq!(names, ["scim_resources_display_name_fold"]);
    }
}

/// Group membership rows: what a Group's write changes.
#[cfg(test)]
mod membership_tests {
    use super::*;
    use serde_json::json;

    const NOW: &str = "2026-01-01T00:00:00.000Z";

    fn ids(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    /// Skipping `members` reads the rest exactly as a full parse does, and refuses what a
    /// full parse refuses.
    #[test]
    fn a_document_read_without_its_members() {
        let text = r#"{"displayName":"g","members":[{"value":"a","x":{"members":1}}],"meta":{"members":[2]},"n":1.5}"#;
        let mut full: Value = serde_json::from_str(text).unwrap();
        assert_eq!(parse_doc(text, true).unwrap(), full);
        full.as_object_mut().unwrap().remove("members");
        assert_eq!(parse_doc(text, false).unwrap(), full);
        for bad in [
            r#"{"members":[1,}"#,
            r#"{"members":[]} x"#,
            r#"{"a":1,"members":"#,
            "[]",
        ] {
            assert!(parse_doc(bad, false).is_err(), "{bad}");
            assert!(parse_doc(bad, true).is_err() || bad == "[]", "{bad}");
        }
    }

    #[test]
    fn the_member_change_is_the_difference_of_the_two_sets() {
        let wanted = ids(&["a", "c", "d", "f"]);
        let change = MemberChange::of(ids(&["e", "a", "b", "d"]), &wanted);
        assert_eq!(change.added, ["c", "f"]);
        assert_eq!(change.removed, ["b", "e"]);
        let change = MemberChange::of(Vec::new(), &wanted);
        assert_eq!(change.added, ["a", "c", "d", "f"]);
        assert!(change.removed.is_empty());
        let change = MemberChange::of(ids(&["d", "c", "a", "f"]), &wanted);
        assert!(change.added.is_empty() && change.removed.is_empty());
        let change = MemberChange::of(ids(&["x"]), &[]);
        assert!(change.added.is_empty());
        assert_eq!(change.removed, ["x"]);
    }

    /// A group of 2,000 with members as `n` names them.
    fn group(members: impl Iterator<Item = usize>) -> Value {
        let members: Vec<Value> = members.map(|i| json!({"value": format!("u{i}")})).collect();
        json!({"displayName": "big", "members": members})
    }

    /// Rows changed by replacing group `g` (at `version`) with `doc`, and its membership
    /// rows afterwards.
    fn replace(store: &Store, version: i64, doc: &Value) -> (u64, Vec<String>) {
        store
            .write(|tx| {
                let before = tx.total_changes();
                replace_at_version(tx, "Group", "g", version, doc, NOW)?.expect("at version");
                let changed = tx.total_changes() - before;
                let mut stmt = tx.prepare(
                    "SELECT member_id FROM scim_group_members WHERE group_id = 'g' \
                     ORDER BY member_id",
                )?;
                let rows = stmt.query_map([], |r| r.get(0))?;
                Ok((changed, rows.collect::<rusqlite::Result<_>>()?))
            })
            .unwrap()
    }

    /// Adding or removing one member of a group writes the document and that member's row,
    /// not every row (adding one to 49,000 took 0.4 s in the write lock when it did).
    #[test]
    fn a_membership_change_writes_only_the_rows_that_change() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_or_create(dir.path().join("s.db")).unwrap();
        for i in 0..2_002 {
            let doc = json!({"userName": format!("user{i}")});
            store
                .insert_scim("User", &format!("u{i}"), &doc, NOW)
                .unwrap();
        }
        store
            .insert_scim("Group", "g", &group(0..2_000), NOW)
            .unwrap();
        let expect = |range: std::ops::Range<usize>, without: usize| -> Vec<String> {
            let mut v: Vec<String> = (range.filter(|&i| i != without))
                .map(|i| format!("u{i}"))
                .collect();
            v.sort();
            v
        };

        // One added: the document and one row.
        let (changed, rows) = replace(&store, 1, &group(0..2_001));
        assert_eq!(changed, 2);
        assert_eq!(rows, expect(0..2_001, usize::MAX));

        // One removed and one added: the document and two rows.
        let (changed, rows) = replace(&store, 2, &group((1..2_002).rev()));
        assert_eq!(changed, 3);
        assert_eq!(rows, expect(1..2_002, usize::MAX));

        // A member that does not exist: refused, naming it alone, and nothing written.
        let err = store
            .write(|tx| replace_at_version(tx, "Group", "g", 3, &group(1..2_003), NOW))
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::Invalid(m) if m == "members do not exist: u2002"),
            "{err:?}"
        );
        let (changed, rows) = replace(&store, 3, &group((1..2_002).filter(|&i| i != 7)));
        assert_eq!(changed, 2, "the refused write left nothing behind");
        assert_eq!(rows, expect(1..2_002, 7));
    }
}

/// Deleting a member: the Groups it leaves are prepared outside the write lock and written
/// only while still as read.
#[cfg(test)]
mod delete_tests {
    use super::*;
    use serde_json::json;

    const NOW: &str = "2026-01-01T00:00:00.000Z";

    fn members(store: &Store, group: &str) -> (Vec<String>, i64) {
        let g = store.scim("Group", group).unwrap().unwrap();
        (member_ids(&g.doc), g.version)
    }

    /// Replace group `id`'s members, whatever its version.
    fn set_group(store: &Store, id: &str, doc: Value) {
        store
            .update_scim("Group", id, None, NOW, |_| Ok::<_, ()>(doc))
            .unwrap()
            .unwrap();
    }

    #[test]
    fn a_delete_writes_the_groups_only_as_they_were_read() {
        for t in crate::store::testing::stores("delete_prepared") {
            let (store, b) = (&**t, t.backend);
            for u in ["a", "b", "c"] {
                store
                    .insert_scim("User", u, &json!({"userName": u}), NOW)
                    .unwrap();
            }
            let group = |ms: &[&str]| {
                let ms: Vec<Value> = ms.iter().map(|m| json!({"value": m})).collect();
                json!({"displayName": "g", "members": ms})
            };
            store
                .insert_scim("Group", "g1", &group(&["a", "b"]), NOW)
                .unwrap();
            store
                .insert_scim("Group", "g2", &group(&["a"]), NOW)
                .unwrap();

            // Prepared, then g1 changes (c joins): the delete writes nothing, says so.
            let leaving = store.groups_without("a").unwrap();
            assert_eq!(leaving.len(), 2, "{b}");
            set_group(store, "g1", group(&["a", "b", "c"]));
            let done = store.delete_scim("User", "a", None, NOW, Some(&leaving));
            assert!(!done.unwrap(), "{b}");
            assert!(store.scim("User", "a").unwrap().is_some(), "{b}");
            assert_eq!(members(store, "g1"), (ids(&["a", "b", "c"]), 2), "{b}");
            assert_eq!(members(store, "g2"), (ids(&["a"]), 1), "{b}");

            // Prepared again: written, each Group one version on, without `a`; `g2`,
            // left empty, loses its `members`.
            let leaving = store.groups_without("a").unwrap();
            let done = store.delete_scim("User", "a", None, NOW, Some(&leaving));
            assert!(done.unwrap(), "{b}");
            assert!(store.scim("User", "a").unwrap().is_none(), "{b}");
            assert_eq!(members(store, "g1"), (ids(&["b", "c"]), 3), "{b}");
            let g2 = store.scim("Group", "g2").unwrap().unwrap();
            assert_eq!((g2.doc.get("members"), g2.version), (None, 2), "{b}");

            // Prepared while `b` was in a Group that then lost it: not written either.
            let leaving = store.groups_without("b").unwrap();
            set_group(store, "g1", group(&["c"]));
            let done = store.delete_scim("User", "b", None, NOW, Some(&leaving));
            assert!(!done.unwrap(), "{b}");
            // Read in the write transaction: always written.
            assert!(
                store.delete_scim("User", "c", None, NOW, None).unwrap(),
                "{b}"
            );
            assert_eq!(members(store, "g1"), (Vec::new(), 5), "{b}");
            // If-Match and a missing resource are checked first.
            let err = store.delete_scim("User", "b", Some(&[7]), NOW, None);
            assert!(
                matches!(err, Err(StoreError::Precondition(_))),
                "{b}: {err:?}"
            );
            let err = store.delete_scim("User", "zz", None, NOW, Some(&[]));
            assert!(matches!(err, Err(StoreError::NotFound(_))), "{b}: {err:?}");
        }
    }

    fn ids(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    /// The statements write the form the readers trust: the macro spliced into the SQL
    /// and the constant compared with what is read are one number.
    #[test]
    fn the_form_written_is_the_form_trusted() {
        assert_eq!(doc_form!(), DOC_FORM.to_string());
    }
}
