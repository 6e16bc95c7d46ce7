//! PostgreSQL bodies of `store::scim`: SCIM Users and Groups as JSON documents with their
//! most-searched attributes in indexed columns, as on SQLite (the same columns, derived by
//! `store::scim::Columns`).
//!
//! Queries: the IdPs' lookups (an equality on `id`, `externalId`, `userName` or
//! `displayName`) and unfiltered listings are SQL on the indexed columns. Any other filter
//! is evaluated here by the in-memory evaluator (`scim::filter_eval`, the reference the
//! SQLite translation is tested against), over the resources of that type streamed from
//! the database in order, so both backends match the same resources; memory holds one
//! page (and, for a `sortBy` on an attribute that has no column, one sort key per match).

use std::cmp::Ordering;

use futures_executor::block_on;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_postgres::types::ToSql;
use tokio_postgres::{GenericClient, Row};

use super::{Db, Postgres, Tx, get};
use crate::scim::attr::{AttributeResolver, ResolvedPath};
use crate::scim::filter::Filter;
use crate::scim::json::to_text;
use crate::scim::value::{fold, folds_case};
use crate::store::scim::{
    Columns, DOC_FORM, FORMS_CHECKED_KEY, GroupWithout, MemberChange, PointStatements,
    SET_FORMS_CHECKED, ScimQuery, ScimRecord, StoredResource, VOUCH, check_not_self_member,
    check_version_number, groups_of, member_ids, older_forms, parse_doc, point_columns, str_field,
    user_name_taken,
};
use crate::store::scim_filter::point_lookup;
use crate::store::{Result, StoreError};

/// A User's groups as a JSON array of `[id, displayName]` pairs (NULL when none, or for a
/// Group): the last of [`COLUMNS`], and what an update returns.
macro_rules! groups_of_user {
    () => {
        "CASE WHEN resource_type = 'User' THEN (SELECT json_agg(json_build_array(g.id, \
         g.display_name))::text FROM scim_group_members m \
         JOIN scim_resources g ON g.id = m.group_id WHERE m.member_id = scim_resources.id) END"
    };
}

/// A resource's columns as [`row_to_record`] reads them (a User's groups last, as on SQLite).
const COLUMNS: &str = concat!(
    "id, resource_type, doc, created_at, last_modified, version, ",
    groups_of_user!()
);

static POINT_STATEMENTS: std::sync::LazyLock<PointStatements> =
    std::sync::LazyLock::new(|| PointStatements::new(&point_columns(COLUMNS)));

static OLDER_FORMS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| older_forms(COLUMNS));

/// A row of a statement that selects [`point_columns`].
fn stored_resource(r: &Row) -> Result<StoredResource> {
    Ok(StoredResource {
        id: get(r, 0)?,
        resource_type: get(r, 1)?,
        doc: get(r, 2)?,
        created: get(r, 3)?,
        last_modified: get(r, 4)?,
        version: get(r, 5)?,
        groups: get(r, 6)?,
        form: get(r, 7)?,
    })
}

fn row_to_record(r: &Row) -> Result<ScimRecord> {
    row_to_record_with(r, true)
}

/// [`row_to_record`], with a Group's `members` read or not (see `store::scim::parse_doc`).
fn row_to_record_with(r: &Row, members: bool) -> Result<ScimRecord> {
    let doc: &str = get(r, 2)?;
    let groups: Option<String> = get(r, 6)?;
    Ok(ScimRecord {
        id: get(r, 0)?,
        resource_type: get(r, 1)?,
        doc: parse_doc(doc, members).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        created: get(r, 3)?,
        last_modified: get(r, 4)?,
        version: get(r, 5)?,
        groups: groups_of(groups.as_deref()).map_err(|e| StoreError::Corrupt(e.to_string()))?,
    })
}

fn uniqueness(e: StoreError, resource_type: &str, doc: &Value) -> StoreError {
    match e {
        StoreError::Conflict(_) if resource_type == "User" => {
            user_name_taken(str_field(doc, "userName").unwrap_or_default())
        }
        other => other,
    }
}

/// The condition, on a write's parameters `$1` (its id) and `$6` (its folded userName),
/// that no other User holds that userName; true for a Group (no userName). Writes are
/// serialised by the store's advisory lock, so checking inside the INSERT or UPDATE is as
/// safe as the separate query of [`check_user_name_free`], and saves its round trip.
macro_rules! user_name_free {
    () => {
        "NOT EXISTS (SELECT 1 FROM scim_resources o WHERE o.resource_type = 'User' \
         AND o.user_name_fold = $6::text AND o.id <> $1::text)"
    };
}

/// `$1`–`$9` of a write: the id and type, the indexed columns, the document, the time.
fn write_params<'a>(
    id: &'a &'a str,
    resource_type: &'a &'a str,
    c: &'a Columns<'a>,
    doc_text: &'a String,
    now: &'a &'a str,
) -> [&'a (dyn ToSql + Sync); 9] {
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

fn check_user_name_free(tx: &mut Tx<'_, '_>, id: &str, c: &Columns<'_>) -> Result<()> {
    let (Some(user_name), Some(folded)) = (c.user_name, &c.user_name_fold) else {
        return Ok(());
    };
    let taken: bool = get(
        &tx.query_one(
            "SELECT EXISTS(SELECT 1 FROM scim_resources WHERE resource_type = 'User' \
             AND user_name_fold = $1 AND id <> $2)",
            &[folded, &id],
        )?,
        0,
    )?;
    if taken {
        return Err(user_name_taken(user_name));
    }
    Ok(())
}

fn get_record(
    db: &mut Db<'_, impl GenericClient>,
    resource_type: &str,
    id: &str,
) -> Result<Option<ScimRecord>> {
    get_record_with(db, resource_type, id, true)
}

fn get_record_with(
    db: &mut Db<'_, impl GenericClient>,
    resource_type: &str,
    id: &str,
    members: bool,
) -> Result<Option<ScimRecord>> {
    db.query_opt(
        &format!("SELECT {COLUMNS} FROM scim_resources WHERE id = $1 AND resource_type = $2"),
        &[&id, &resource_type],
    )?
    .map(|r| row_to_record_with(&r, members))
    .transpose()
}

/// Bring group `group_id`'s membership rows to the members `doc` names, writing only the
/// rows that change (as on SQLite: `store::scim::set_members`). `Invalid`, naming them, if
/// a member added does not exist.
fn set_members(tx: &mut Tx<'_, '_>, group_id: &str, doc: &Value, created: bool) -> Result<()> {
    let wanted = member_ids(doc);
    let current: Vec<String> = if created {
        Vec::new()
    } else {
        tx.query(
            "SELECT member_id FROM scim_group_members WHERE group_id = $1",
            &[&group_id],
        )?
        .iter()
        .map(|r| get(r, 0))
        .collect::<Result<_>>()?
    };
    let change = MemberChange::of(current, &wanted);
    check_members_exist(tx, &change.added)?;
    if !change.removed.is_empty() {
        tx.execute(
            "DELETE FROM scim_group_members WHERE group_id = $1 AND member_id = ANY($2)",
            &[&group_id, &change.removed],
        )?;
    }
    if !change.added.is_empty() {
        tx.execute(
            "INSERT INTO scim_group_members (group_id, member_id) \
             SELECT $1, m FROM unnest($2::text[]) AS m ON CONFLICT DO NOTHING",
            &[&group_id, &change.added],
        )?;
    }
    Ok(())
}

/// `Invalid`, naming them, if any of `members` does not exist (as a User or Group).
fn check_members_exist(tx: &mut Tx<'_, '_>, members: &[&str]) -> Result<()> {
    if members.is_empty() {
        return Ok(());
    }
    let missing: Vec<String> = tx
        .query(
            "SELECT m FROM unnest($1::text[]) AS m \
             WHERE NOT EXISTS (SELECT 1 FROM scim_resources r WHERE r.id = m) ORDER BY m",
            &[&members],
        )?
        .iter()
        .map(|r| get(r, 0))
        .collect::<Result<_>>()?;
    if missing.is_empty() {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "members do not exist: {}",
            missing.join(", ")
        )))
    }
}

/// Each Group `member_id` is in, without it (see `store::scim::GroupWithout`).
fn groups_without(
    db: &mut Db<'_, impl GenericClient>,
    member_id: &str,
) -> Result<Vec<GroupWithout>> {
    db.query(
        &format!(
            "SELECT {COLUMNS} FROM scim_resources WHERE resource_type = 'Group' AND id IN \
             (SELECT group_id FROM scim_group_members WHERE member_id = $1)"
        ),
        &[&member_id],
    )?
    .iter()
    .map(|r| Ok(GroupWithout::of(row_to_record(r)?, member_id)))
    .collect()
}

/// Insert a new resource in the caller's transaction (see `store::scim::insert`).
pub(crate) fn insert(
    tx: &mut Tx<'_, '_>,
    resource_type: &str,
    id: &str,
    doc: &Value,
    now: &str,
) -> Result<ScimRecord> {
    let c = Columns::of(resource_type, doc);
    let doc_text = to_text(doc);
    // One statement: inserted only while the userName is free (`user_name_free!`).
    let inserted = tx
        .execute(
            concat!(
                "INSERT INTO scim_resources (id, resource_type, user_name, external_id, \
                 display_name, user_name_fold, display_name_fold, doc, created_at, \
                 last_modified, version, doc_form) \
                 SELECT $1::text, $2::text, $3::text, $4::text, $5::text, $6::text, \
                 $7::text, $8::text, $9::text, $9::text, 1, ",
                doc_form!(),
                " WHERE ",
                user_name_free!()
            ),
            &write_params(&id, &resource_type, &c, &doc_text, &now),
        )
        .map_err(|e| uniqueness(e, resource_type, doc))?;
    if inserted == 0 {
        return Err(user_name_taken(c.user_name.unwrap_or_default()));
    }
    if resource_type == "Group" {
        set_members(tx, id, doc, true)?;
    }
    // Not read back: one round trip fewer inside the transaction.
    Ok(ScimRecord::inserted(
        resource_type,
        id.to_string(),
        doc.clone(),
        now.to_string(),
    ))
}

/// PostgreSQL's steps of `Store::update_scim` (the decisions are `store::scim::update_scim_in`'s).
impl crate::store::scim::UpdateTx for Tx<'_, '_> {
    fn record(&mut self, resource_type: &str, id: &str) -> Result<Option<ScimRecord>> {
        get_record(self, resource_type, id)
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

/// Replace resource `id`'s document if it is still at `version`, in the caller's
/// transaction (see `store::scim::replace_at_version`).
pub(crate) fn replace_at_version(
    tx: &mut Tx<'_, '_>,
    resource_type: &str,
    id: &str,
    version: i64,
    doc: &Value,
    now: &str,
) -> Result<Option<ScimRecord>> {
    if resource_type == "Group" {
        check_not_self_member(id, doc)?;
    }
    let c = Columns::of(resource_type, doc);
    let doc_text = to_text(doc);
    let mut args = write_params(&id, &resource_type, &c, &doc_text, &now).to_vec();
    args.push(&version);
    // The update returns what the record needs besides what was written (its creation
    // time, a User's groups): no read back. It runs only while the userName is free
    // (`user_name_free!`); when it updates nothing, the check below says whether the name
    // or the version was the reason.
    let row = tx
        .query_opt(
            concat!(
                "UPDATE scim_resources SET user_name = $3, external_id = $4, display_name = $5, \
                 user_name_fold = $6, display_name_fold = $7, doc = $8, last_modified = $9, \
                 version = version + 1, doc_form = ",
                doc_form!(),
                " WHERE id = $1 AND resource_type = $2 AND version = $10 AND ",
                user_name_free!(),
                " RETURNING created_at, ",
                groups_of_user!()
            ),
            &args,
        )
        .map_err(|e| uniqueness(e, resource_type, doc))?;
    let Some(row) = row else {
        check_user_name_free(tx, id, &c)?;
        return Ok(None);
    };
    if resource_type == "Group" {
        set_members(tx, id, doc, false)?;
    }
    ScimRecord::updated(
        resource_type,
        id.to_string(),
        doc.clone(),
        now.to_string(),
        version,
        (get(&row, 0)?, get(&row, 1)?),
    )
    .map(Some)
}

/// The document the in-memory evaluator sees: the stored one with `id`, `meta` and, for a
/// User, `groups` as the API shows them (the SQL translator reads those from columns).
fn evaluated_doc(r: &ScimRecord) -> Value {
    let mut doc = r.doc.clone();
    if let Value::Object(o) = &mut doc {
        o.insert("id".into(), json!(r.id));
        // `location` and `version` are rendered from the base URL and the version: the
        // SQL translator takes them as present on every resource, and so does this.
        o.insert(
            "meta".into(),
            json!({"resourceType": r.resource_type, "created": r.created,
                   "lastModified": r.last_modified,
                   "location": format!("{}/{}", r.resource_type, r.id),
                   "version": format!("W/\"{}\"", r.version)}),
        );
        if r.resource_type == "User" && !r.groups.is_empty() {
            let groups: Vec<Value> = r
                .groups
                .iter()
                .map(|(id, display)| json!({"value": id, "display": display, "type": "direct"}))
                .collect();
            o.insert("groups".into(), Value::Array(groups));
        }
    }
    doc
}

/// The value `sortBy` orders by, as `store::scim_filter::sort_expression` picks it: the
/// attribute, a multi-valued one's first value (its `value`, or the sub-attribute named),
/// folded when the attribute is not case-exact.
fn sort_value(doc: &Value, path: &ResolvedPath) -> Option<Value> {
    let mut v = doc;
    if let Some(ext) = &path.extension {
        v = v.get(ext)?;
    }
    v = v.get(&path.attr.name)?;
    if path.attr.multi_valued {
        v = v.get(0)?;
        let sub = path
            .sub
            .as_ref()
            .map(|s| s.name.as_str())
            .or_else(|| path.attr.sub("value").map(|s| s.name.as_str()));
        if let Some(sub) = sub {
            v = v.get(sub)?;
        }
    } else if let Some(sub) = &path.sub {
        v = v.get(&sub.name)?;
    }
    match v {
        Value::Null => None,
        Value::String(s) if folds_case(path.leaf()) => Some(Value::String(fold(s))),
        other => Some(other.clone()),
    }
}

/// SQL's order of two sort values: numbers before text (SQLite's type order), text
/// byte-wise, missing last in either direction.
fn compare_sort(a: &Option<Value>, b: &Option<Value>) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Bool(_) | Value::Number(_) => 0,
            Value::String(_) => 1,
            _ => 2,
        }
    }
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => rank(x).cmp(&rank(y)).then_with(|| match (x, y) {
            (Value::String(p), Value::String(q)) => p.as_bytes().cmp(q.as_bytes()),
            (Value::Bool(p), Value::Bool(q)) => p.cmp(q),
            (Value::Number(p), Value::Number(q)) => p
                .as_f64()
                .partial_cmp(&q.as_f64())
                .unwrap_or(Ordering::Equal),
            (Value::Bool(p), Value::Number(q)) => f64::from(u8::from(*p))
                .partial_cmp(&q.as_f64().unwrap_or(0.0))
                .unwrap_or(Ordering::Equal),
            (Value::Number(p), Value::Bool(q)) => p
                .as_f64()
                .unwrap_or(0.0)
                .partial_cmp(&f64::from(u8::from(*q)))
                .unwrap_or(Ordering::Equal),
            _ => x.to_string().cmp(&y.to_string()),
        }),
    }
}

/// The ORDER BY of a `sortBy` that has a column (the folded twin for a case-insensitive
/// one), or `None` when it must be sorted here.
fn sort_column(path: &ResolvedPath, resolver: &dyn AttributeResolver) -> Option<String> {
    if folds_case(path.leaf()) {
        if let Some(col) = resolver.folded_column(path) {
            return Some(col.to_string());
        }
        return resolver.column(path).map(|c| format!("lower({c})"));
    }
    resolver.column(path).map(str::to_string)
}

impl Postgres {
    pub fn insert_scim(
        &self,
        resource_type: &str,
        id: &str,
        doc: &Value,
        now: &str,
    ) -> Result<ScimRecord> {
        self.write(|tx| insert(tx, resource_type, id, doc, now))
    }

    pub fn scim_read(
        &self,
        resource_type: &str,
        id: &str,
        members: bool,
    ) -> Result<Option<ScimRecord>> {
        self.read(|db| get_record_with(db, resource_type, id, members))
    }

    /// [`crate::store::Store::scim_point_lookup`] of `value` in `column`.
    pub fn scim_point_lookup(
        &self,
        resource_type: &str,
        column: &str,
        value: &str,
    ) -> Result<Option<Vec<StoredResource>>> {
        let Some(sql) = POINT_STATEMENTS.get(resource_type, column) else {
            return Ok(None);
        };
        self.read(|db| {
            db.query(sql, &[&value])?
                .iter()
                .map(stored_resource)
                .collect::<Result<_>>()
                .map(Some)
        })
    }

    /// [`crate::store::Store::scim_in_older_forms`].
    pub fn scim_in_older_forms(&self, after: &str, limit: i64) -> Result<Vec<StoredResource>> {
        self.read(|db| {
            db.query(&OLDER_FORMS, &[&after, &limit])?
                .iter()
                .map(stored_resource)
                .collect()
        })
    }

    /// [`crate::store::Store::scim_vouch_for`].
    pub fn scim_vouch_for(&self, rows: &[(String, i64)]) -> Result<usize> {
        self.write(|tx| {
            let mut marked = 0;
            for (id, version) in rows {
                marked += tx.execute(VOUCH, &[id, version])?;
            }
            Ok(usize::try_from(marked).unwrap_or(usize::MAX))
        })
    }

    /// [`crate::store::Store::set_scim_forms_checked`].
    pub fn set_scim_forms_checked(&self) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                SET_FORMS_CHECKED,
                &[&FORMS_CHECKED_KEY, &DOC_FORM.to_string()],
            )?;
            Ok(())
        })
    }

    pub fn scim_kinds_and_user_names(
        &self,
        ids: &[String],
    ) -> Result<Vec<(String, String, Option<String>)>> {
        self.read(|db| {
            db.query(
                "SELECT id, resource_type, user_name FROM scim_resources WHERE id = ANY($1)",
                &[&ids],
            )?
            .iter()
            .map(|r| Ok((get(r, 0)?, get(r, 1)?, get(r, 2)?)))
            .collect()
        })
    }

    pub fn groups_without(&self, member_id: &str) -> Result<Vec<GroupWithout>> {
        self.read(|db| groups_without(db, member_id))
    }

    pub fn delete_scim(
        &self,
        resource_type: &str,
        id: &str,
        expected_version: Option<&[i64]>,
        now: &str,
        leaving: Option<&[GroupWithout]>,
    ) -> Result<bool> {
        self.write(|tx| {
            let version: i64 = match tx.query_opt(
                "SELECT version FROM scim_resources WHERE id = $1 AND resource_type = $2",
                &[&id, &resource_type],
            )? {
                Some(row) => get(&row, 0)?,
                None => return Err(StoreError::NotFound(format!("{resource_type} {id}"))),
            };
            check_version_number(version, expected_version)?;
            let read_here;
            let leaving = match leaving {
                Some(leaving) => {
                    let now_in: Vec<(String, i64)> = tx
                        .query(
                            "SELECT m.group_id, g.version FROM scim_group_members m \
                             JOIN scim_resources g ON g.id = m.group_id WHERE m.member_id = $1",
                            &[&id],
                        )?
                        .iter()
                        .map(|r| Ok((get(r, 0)?, get(r, 1)?)))
                        .collect::<Result<_>>()?;
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
            for g in leaving {
                tx.execute(
                    "UPDATE scim_resources SET doc = $2, last_modified = $3, \
                     version = version + 1, doc_form = 0 WHERE id = $1",
                    &[&g.id, &g.doc_text, &now],
                )?;
            }
            tx.execute(
                "DELETE FROM scim_group_members WHERE member_id = $1",
                &[&id],
            )?;
            tx.execute("DELETE FROM scim_resources WHERE id = $1", &[&id])?;
            Ok(true)
        })
    }

    pub fn query_scim(&self, q: &ScimQuery<'_>) -> Result<(usize, Vec<ScimRecord>)> {
        if !matches!(q.resource_type, "User" | "Group") {
            return Err(StoreError::Invalid(format!(
                "unknown resource type {}",
                q.resource_type
            )));
        }
        let mut where_sql = format!("resource_type = '{}'", q.resource_type);
        let mut params: Vec<Box<dyn ToSql + Sync>> = Vec::new();
        let mut evaluate: Option<&Filter> = None;
        if let Some(f) = q.filter {
            crate::scim::filter_eval::validate_filter(f, q.resolver)
                .map_err(|e| StoreError::Invalid(e.to_string()))?;
            match point_lookup(f, q.resolver) {
                Some(point) => {
                    params.push(Box::new(point.value));
                    where_sql.push_str(&format!(" AND {} = $1", point.column));
                }
                None => evaluate = Some(f),
            }
        }
        if q.resource_type == "User" && !q.user_name_like.is_empty() {
            let mut any = Vec::new();
            for pattern in q.user_name_like {
                params.push(Box::new(pattern.clone()));
                any.push(format!("user_name ILIKE ${} ESCAPE '\\'", params.len()));
            }
            where_sql.push_str(&format!(" AND ({})", any.join(" OR ")));
        }
        let direction = if q.descending { "DESC" } else { "ASC" };
        let (order, sort_here) = match &q.sort_by {
            None => ("created_at, id".to_string(), None),
            Some(path) => match sort_column(path, q.resolver) {
                Some(col) => (format!("{col} {direction} NULLS LAST, id"), None),
                None => ("created_at, id".to_string(), Some(path)),
            },
        };
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref()).collect();
        let offset = q.start_index.saturating_sub(1);
        if evaluate.is_none() && sort_here.is_none() {
            return self.read(|db| {
                let rows: Vec<ScimRecord> = if q.count == 0 {
                    Vec::new()
                } else {
                    db.query(
                        &format!(
                            "SELECT {COLUMNS} FROM scim_resources WHERE {where_sql} \
                             ORDER BY {order} LIMIT {} OFFSET {}",
                            q.count, offset
                        ),
                        &refs,
                    )?
                    .iter()
                    .map(|r| row_to_record_with(r, q.members))
                    .collect::<Result<_>>()?
                };
                let total = if q.count > 0 && offset == 0 && rows.len() < q.count {
                    rows.len()
                } else {
                    let n: i64 = get(
                        &db.query_one(
                            &format!("SELECT count(*) FROM scim_resources WHERE {where_sql}"),
                            &refs,
                        )?,
                        0,
                    )?;
                    usize::try_from(n).unwrap_or(0)
                };
                Ok((total, rows))
            });
        }
        // Evaluated here: every resource of the type, streamed in order.
        let sql =
            format!("SELECT {COLUMNS} FROM scim_resources WHERE {where_sql} ORDER BY {order}");
        self.read(|db| {
            let st = db.statement(&sql)?;
            let mut stream = Box::pin(block_on(db.client.query_raw(&st, refs.iter().copied()))?);
            let mut total = 0usize;
            let mut page: Vec<ScimRecord> = Vec::new();
            let mut keyed: Vec<(Option<Value>, String)> = Vec::new();
            while let Some(row) = block_on(stream.next()) {
                let rec = row_to_record(&row?)?;
                let doc = evaluated_doc(&rec);
                if let Some(f) = evaluate {
                    let hit = crate::scim::filter_eval::matches(f, &doc, q.resolver)
                        .map_err(|e| StoreError::Invalid(e.to_string()))?;
                    if !hit {
                        continue;
                    }
                }
                total += 1;
                match sort_here {
                    Some(path) => keyed.push((sort_value(&doc, path), rec.id)),
                    None if total > offset && page.len() < q.count => page.push(rec),
                    None => {}
                }
            }
            drop(stream);
            if sort_here.is_some() {
                keyed.sort_by(|(a, ia), (b, ib)| {
                    let o = compare_sort(a, b);
                    let o = if q.descending && a.is_some() && b.is_some() {
                        o.reverse()
                    } else {
                        o
                    };
                    o.then_with(|| ia.cmp(ib))
                });
                let ids: Vec<String> = keyed
                    .into_iter()
                    .skip(offset)
                    .take(q.count)
                    .map(|(_, id)| id)
                    .collect();
                let mut found: Vec<ScimRecord> = db
                    .query(
                        &format!("SELECT {COLUMNS} FROM scim_resources WHERE id = ANY($1)"),
                        &[&ids],
                    )?
                    .iter()
                    .map(|r| row_to_record_with(r, q.members))
                    .collect::<Result<_>>()?;
                found.sort_by_key(|r| ids.iter().position(|i| *i == r.id));
                page = found;
            }
            Ok((total, page))
        })
    }
}
