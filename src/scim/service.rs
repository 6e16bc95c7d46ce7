//! The SCIM resource service: create, read, replace, patch, delete and query Users and
//! Groups. It ties the schema registry (validation, projection), the filter and PATCH
//! engines and the store together; handlers call it from the blocking pool.
//!
//! Stored documents never hold `id`, `meta` or `password` (scimgate does not authenticate
//! directory users, so a password sent by an IdP is accepted and discarded — it is never
//! returned either, as RFC 7643 requires). `meta` is rebuilt from columns on every read.

use std::collections::HashSet;

use serde::Serialize;
use serde_json::{Value, json};

use super::cache::{Cached, ResourceCache};
use super::domains::EmailDomains;
use super::error::ScimError;
use super::filter::{Filter, parse_filter, validate_filter};
use super::json::to_text;
use super::patch::{OpKind, PatchOp, apply_patch, parse_patch_request};
use super::render;
use super::schema::{ResourceKind, SchemaRegistry, WriteMode};
use crate::store::scim_filter::PointLookup;
use crate::store::{ScimQuery, ScimRecord, Store, StoreError, StoredResource};
use crate::time::{Clock, Timestamp};

/// How often a delete reads the Groups its resource leaves again, when another write
/// changed one of them between that read and the delete, before it reads them in the
/// write transaction itself.
const DELETE_ATTEMPTS: usize = 3;

/// The most resources one page returns (published in ServiceProviderConfig).
pub const MAX_RESULTS: usize = 200;
/// The ListResponse message schema.
pub const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

/// Which resources a list or search wants, and how they are shaped.
#[derive(Debug, Clone, Default)]
pub struct ListParams {
    /// The `filter` parameter, parsed once when the parameters are read
    /// ([`ListParams::filter_param`]): the handler decides with it whether the list is a
    /// point lookup, and [`Scim::list`] runs it.
    pub filter: Option<Filter>,
    pub sort_by: Option<String>,
    pub descending: bool,
    pub start_index: usize,
    pub count: Option<usize>,
    pub attributes: Vec<String>,
    pub excluded: Vec<String>,
}

impl ListParams {
    /// The `filter` parameter as given (`None`, empty or blank: no filter), parsed.
    pub fn filter_param(text: Option<&str>) -> Result<Option<Filter>, ScimError> {
        match text.map(str::trim) {
            Some(f) if !f.is_empty() => Ok(Some(parse_filter(f)?)),
            _ => Ok(None),
        }
    }

    /// The point lookup that listing `kind` with these parameters is (an equality on an
    /// indexed column, no sort: `filter=userName eq "…"`), if it is one: the handler may
    /// run it on its own thread like a GET by id ([`Scim::list_point`]), and the filter's
    /// attribute is resolved once for both.
    pub fn point_lookup(&self, kind: ResourceKind) -> Option<PointLookup> {
        if self
            .sort_by
            .as_deref()
            .is_some_and(|s| !s.trim().is_empty())
        {
            return None;
        }
        let resolver = SchemaRegistry::builtin().resolver(kind);
        crate::store::scim_filter::point_lookup(self.filter.as_ref()?, &resolver)
    }
}

/// The service bound to one store, base URL and moment.
/// What a PUT (the new document) or a PATCH (its operations) does to a resource.
pub enum Update<'b> {
    Replace(&'b Value),
    Patch {
        ops: Vec<PatchOp>,
        removed_extensions: Vec<&'static str>,
    },
}

impl Update<'_> {
    /// The PATCH request `body` of a `kind`, parsed.
    pub fn patch(kind: ResourceKind, body: &Value) -> Result<Update<'static>, ScimError> {
        let (ops, removed_extensions) = extension_ops(kind, parse_patch_request(body)?);
        Ok(Update::Patch {
            ops,
            removed_extensions,
        })
    }
}

/// The answer for a `kind` with no resource `id` (or none this client may see).
pub fn missing(kind: ResourceKind, id: &str) -> ScimError {
    ScimError::not_found(format!("{} {id} not found", kind.name()))
}

/// An update ready for the group commit ([`Scim::prepare_update`]).
pub enum PreparedUpdate {
    /// The change changes nothing: the resource as it is (its version kept).
    Unchanged(ScimRecord),
    /// Write `doc` if the resource is still at `version`.
    Write {
        version: i64,
        doc: Value,
        now: String,
    },
}

/// A written resource's answer as JSON text, and what its headers need.
pub struct WrittenText {
    pub json: String,
    pub version: i64,
    /// `meta.location` (a create's `Location` header).
    pub location: String,
}

/// A resource about to be created: its new id, its document, the time of the create.
pub struct NewResource {
    pub id: String,
    pub doc: Value,
    pub now: String,
}

pub struct Scim<'a> {
    pub store: &'a Store,
    pub registry: &'static SchemaRegistry,
    /// `https://host/scim/v2`, no trailing slash.
    pub base_url: &'a str,
    /// The time of writes (`meta.created`, `meta.lastModified`), read when one is made:
    /// a read never asks it.
    pub clock: &'a Clock,
    pub cache: &'a ResourceCache,
    /// The calling client's email domains (`scim::domains`); `None`: unrestricted.
    pub domains: Option<EmailDomains>,
}

/// A User's group as its `groups` attribute lists it. The members are declared in the
/// order `json::to_text` writes a `Value`'s (sorted), so that [`Scim::written_around`]
/// writes what rendering a `Value` writes.
#[derive(Serialize)]
struct GroupRef<'a> {
    #[serde(rename = "$ref")]
    reference: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    display: Option<&'a str>,
    #[serde(rename = "type")]
    kind: &'static str,
    value: &'a str,
}

/// A resource's `meta` (RFC 7643 §3.1), from its columns; members sorted, as [`GroupRef`]'s.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Meta<'a> {
    created: &'a str,
    last_modified: &'a str,
    location: String,
    resource_type: &'static str,
    version: String,
}

impl Meta<'_> {
    /// This `meta` as JSON text, written by hand: byte for byte what `to_text` writes
    /// (its test holds it to that), in about a third of the instructions. Every lookup's
    /// answer carries one.
    fn to_text(&self) -> String {
        let mut o = crate::json_text::Object::with_capacity(
            90 + self.created.len() + self.last_modified.len() + self.location.len(),
        );
        o.str("created", self.created)
            .str("lastModified", self.last_modified)
            .str("location", &self.location)
            .str("resourceType", self.resource_type)
            .str("version", &self.version);
        // Every piece is UTF-8: the strings as they were, or serde_json's escapes of them.
        String::from_utf8(o.finish()).unwrap_or_else(|_| to_text(self))
    }
}

/// A new resource id: an RFC 9562 version-7 UUID (a millisecond timestamp, then 74 random
/// bits). Ids made one after another sort together, so a batch of creates adds to one
/// leaf of the primary-key index instead of one random leaf each.
fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

fn rfc3339_millis(ts: Timestamp) -> String {
    chrono::DateTime::from_timestamp(ts, 0)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// `W/"<version>"`, the ETag and `meta.version` of a stored record.
pub fn etag(version: i64) -> String {
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(version);
    let mut s = String::with_capacity(digits.len() + 4);
    s.push_str("W/\"");
    s.push_str(digits);
    s.push('"');
    s
}

/// Whether an `If-Match` / `If-None-Match` value names `version` (`*` names every version).
pub fn etag_matches(header: &str, version: i64) -> bool {
    let want = etag(version);
    header.split(',').map(str::trim).any(|t| {
        t == "*" || t == want || t.trim_start_matches("W/") == want.trim_start_matches("W/")
    })
}

/// The versions an `If-Match` value accepts (`None` for `*` or no header). An ETag this
/// server never issued becomes version -1, which matches nothing.
pub fn if_match_version(header: Option<&str>) -> Result<Option<Vec<i64>>, ScimError> {
    let Some(h) = header else { return Ok(None) };
    let tags: Vec<&str> = h
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect();
    if tags.contains(&"*") {
        return Ok(None);
    }
    Ok(Some(
        tags.iter()
            .map(|t| {
                t.trim_start_matches("W/")
                    .trim_matches('"')
                    .parse::<i64>()
                    .unwrap_or(-1)
            })
            .collect(),
    ))
}

/// Operations whose path is a whole extension schema URN (`"path":
/// "urn:…:enterprise:2.0:User"`): add and replace become path-less operations on
/// `{urn: value}`; remove drops the extension (returned separately, applied after the
/// other operations in order). Public for the fuzz targets (`fuzz/`), which patch as
/// [`Scim::patch`] does.
pub fn extension_ops(kind: ResourceKind, ops: Vec<PatchOp>) -> (Vec<PatchOp>, Vec<&'static str>) {
    let mut removed = Vec::new();
    let mut out = Vec::with_capacity(ops.len());
    for op in ops {
        let urn = op.path.as_deref().map(str::trim).and_then(|p| {
            kind.extension_urns()
                .iter()
                .copied()
                .find(|u| u.eq_ignore_ascii_case(p))
        });
        match (urn, op.op) {
            (Some(urn), OpKind::Remove) => removed.push(urn),
            (Some(urn), _) => out.push(PatchOp {
                op: op.op,
                path: None,
                // Clients that serialise the extension as its own resource send a
                // `schemas` member inside it; it is not an attribute of the extension.
                value: op.value.map(|mut v| {
                    if let Value::Object(m) = &mut v {
                        m.retain(|k, _| !k.eq_ignore_ascii_case("schemas"));
                    }
                    json!({ urn: v })
                }),
            }),
            (None, _) if op.path.as_deref().is_none_or(|p| p.trim().is_empty()) => {
                let mut op = op;
                if let Some(Value::Object(m)) = &mut op.value {
                    for (k, v) in m.iter_mut() {
                        let is_ext = kind
                            .extension_urns()
                            .iter()
                            .any(|u| u.eq_ignore_ascii_case(k));
                        if let (true, Value::Object(inner)) = (is_ext, v) {
                            inner.retain(|k, _| !k.eq_ignore_ascii_case("schemas"));
                        }
                    }
                }
                out.push(op)
            }
            (None, _) => out.push(op),
        }
    }
    (out, removed)
}

/// The `value` (member id) of a group member entry.
fn member_id(v: &Value) -> Option<&str> {
    v.get("value").and_then(Value::as_str)
}

fn strip_password(mut doc: Value) -> Value {
    if let Value::Object(m) = &mut doc {
        m.remove("password");
    }
    doc
}

impl Scim<'_> {
    fn location(&self, kind: ResourceKind, id: &str) -> String {
        format!("{}{}/{id}", self.base_url, kind.endpoint())
    }

    /// The full resource as a client sees it (before projection): `rec` with its document
    /// `doc` taken out of it (the callers own their records, so each document is moved,
    /// not copied).
    fn render_doc(
        &self,
        kind: ResourceKind,
        rec: &ScimRecord,
        mut doc: Value,
    ) -> Result<Value, ScimError> {
        let Value::Object(m) = &mut doc else {
            return Err(ScimError::internal());
        };
        m.insert("id".into(), json!(rec.id));
        if kind == ResourceKind::Group
            && self.domains.is_some()
            && let Some(Value::Array(members)) = m.get_mut("members")
        {
            let hidden = self.hidden_members(members)?;
            members.retain(|v| !member_id(v).is_some_and(|id| hidden.contains(id)));
        }
        if let Some(groups) = self.groups(kind, rec) {
            m.insert("groups".into(), json!(groups));
        }
        m.insert("meta".into(), json!(self.meta(kind, rec)));
        Ok(doc)
    }

    /// A User's `groups` (`None` for a Group, or a User in none).
    fn groups<'r>(&self, kind: ResourceKind, rec: &'r ScimRecord) -> Option<Vec<GroupRef<'r>>> {
        if kind != ResourceKind::User || rec.groups.is_empty() {
            return None;
        }
        let groups = rec.groups.iter().map(|(id, display)| GroupRef {
            reference: self.location(ResourceKind::Group, id),
            display: display.as_deref(),
            kind: "direct",
            value: id,
        });
        Some(groups.collect())
    }

    /// A resource's `meta`, from its columns.
    fn meta<'r>(&self, kind: ResourceKind, rec: &'r ScimRecord) -> Meta<'r> {
        Meta {
            created: &rec.created,
            last_modified: &rec.last_modified,
            location: self.location(kind, &rec.id),
            resource_type: kind.name(),
            version: etag(rec.version),
        }
    }

    /// The ids among `members` this client may not see: users outside its domains.
    fn hidden_members(&self, members: &[Value]) -> Result<HashSet<String>, ScimError> {
        let Some(d) = &self.domains else {
            return Ok(HashSet::new());
        };
        let ids: Vec<String> = members
            .iter()
            .filter_map(member_id)
            .map(str::to_string)
            .collect();
        if ids.is_empty() {
            return Ok(HashSet::new());
        }
        Ok(self
            .store
            .scim_kinds_and_user_names(&ids)?
            .into_iter()
            .filter(|(_, kind, name)| {
                kind == "User" && !name.as_deref().is_some_and(|n| d.allows(n))
            })
            .map(|(id, _, _)| id)
            .collect())
    }

    /// Enforce the client's email domains on a write: a User must be inside them; a Group
    /// may gain no member the client cannot see, and keeps the ones it cannot see that
    /// `current` had (the client neither sees nor removes them).
    fn restrict_write(
        &self,
        kind: ResourceKind,
        current: Option<&Value>,
        mut doc: Value,
    ) -> Result<Value, ScimError> {
        let Some(d) = &self.domains else {
            return Ok(doc);
        };
        if kind == ResourceKind::User {
            d.check_user(&doc)?;
            return Ok(doc);
        }
        let empty = Vec::new();
        let before: &Vec<Value> = match current.and_then(|c| c.get("members")) {
            Some(Value::Array(a)) => a,
            _ => &empty,
        };
        let old_ids: HashSet<&str> = before.iter().filter_map(member_id).collect();
        let after: Vec<Value> = match doc.get("members") {
            Some(Value::Array(a)) => a.clone(),
            _ => Vec::new(),
        };
        let added: Vec<Value> = after
            .iter()
            .filter(|v| member_id(v).is_some_and(|id| !old_ids.contains(id)))
            .cloned()
            .collect();
        if let Some(id) = self.hidden_members(&added)?.into_iter().next() {
            return Err(ScimError::new(
                403,
                None,
                format!(
                    "member {id} is outside the email domains of this client ({})",
                    d.describe()
                ),
            ));
        }
        let hidden = self.hidden_members(before)?;
        if !hidden.is_empty() {
            let new_ids: HashSet<String> = after
                .iter()
                .filter_map(member_id)
                .map(str::to_string)
                .collect();
            let mut members = after;
            for v in before {
                if member_id(v).is_some_and(|id| hidden.contains(id) && !new_ids.contains(id)) {
                    members.push(v.clone());
                }
            }
            if let Value::Object(m) = &mut doc {
                m.insert("members".into(), Value::Array(members));
            }
        }
        Ok(doc)
    }

    /// A User outside the client's domains is "not found" for it.
    fn visible(&self, kind: ResourceKind, rec: &ScimRecord) -> Result<(), ScimError> {
        match &self.domains {
            Some(d) if kind == ResourceKind::User && !d.sees_user(&rec.doc) => Err(
                ScimError::not_found(format!("{} {} not found", kind.name(), rec.id)),
            ),
            _ => Ok(()),
        }
    }

    /// Whether a read shaped by these lists needs a Group's `members` (a long Group's are
    /// most of its document; Entra ID reads Groups with `excludedAttributes=members`).
    fn reads_members(
        &self,
        kind: ResourceKind,
        attributes: &[String],
        excluded: &[String],
    ) -> bool {
        kind != ResourceKind::Group
            || !self
                .registry
                .leaves_out(kind, "members", attributes, excluded)
    }

    fn shape(
        &self,
        kind: ResourceKind,
        mut rec: ScimRecord,
        attributes: &[String],
        excluded: &[String],
    ) -> Result<Value, ScimError> {
        let doc = std::mem::take(&mut rec.doc);
        let full = self.render_doc(kind, &rec, doc)?;
        Ok(self.registry.project(kind, full, attributes, excluded))
    }

    /// POST: create a resource; returns it and its version. In its own transaction; the
    /// server creates Users in the group commit instead ([`Scim::prepare_create`], the
    /// batch, [`Scim::created`]).
    pub fn create(&self, kind: ResourceKind, body: &Value) -> Result<(Value, i64), ScimError> {
        let new = self.prepare_create(kind, body)?;
        let result = self
            .store
            .insert_scim(kind.name(), &new.id, &new.doc, &new.now);
        self.written(kind, &new.id, result)
    }

    /// The checks of a create and the document to insert: no store access for a User
    /// (a Group's members may be looked up, for a client limited to email domains).
    pub fn prepare_create(
        &self,
        kind: ResourceKind,
        body: &Value,
    ) -> Result<NewResource, ScimError> {
        let doc = strip_password(self.registry.normalize(kind, body, WriteMode::Create)?);
        let doc = self.restrict_write(kind, None, doc)?;
        Ok(NewResource {
            id: new_id(),
            doc,
            now: rfc3339_millis(self.clock.now()),
        })
    }

    /// After the insert or update of `id`: the caches learn of it (whatever the
    /// outcome), and the answer is rendered (no store access for a User). Not projected:
    /// the document is what the normaliser returned (or, for a change that changed
    /// nothing, equal to it), which is its own default projection (the store's
    /// `DOC_FORM`, held so by the fuzz target `scim_normalize`).
    pub fn written(
        &self,
        kind: ResourceKind,
        id: &str,
        result: Result<ScimRecord, StoreError>,
    ) -> Result<(Value, i64), ScimError> {
        // A new or changed Group changes its members' `groups`.
        self.changed(kind, id, false);
        let mut rec = result?;
        let version = rec.version;
        let doc = std::mem::take(&mut rec.doc);
        Ok((self.render_doc(kind, &rec, doc)?, version))
    }

    /// [`Scim::written`] for a write through the group commit, answered as text: written
    /// around `text`, the document's text as the store was given it
    /// ([`Scim::written_around`]), instead of rendering the document into a `Value` and
    /// serialising that. Rendered in full when there is no text (PostgreSQL's store, a
    /// change that changed nothing), for a Group (whose rendering may hide members from a
    /// client limited to email domains), or when the text is not in the stored form after
    /// all; the same bytes either way (`a_write_s_answer_is_its_full_rendering`).
    pub fn written_text(
        &self,
        kind: ResourceKind,
        id: &str,
        result: Result<(ScimRecord, Option<String>), StoreError>,
    ) -> Result<WrittenText, ScimError> {
        self.changed(kind, id, false);
        let (mut rec, text) = result?;
        let version = rec.version;
        let location = self.location(kind, id);
        let around = match (kind, &text) {
            (ResourceKind::User, Some(text)) => self.written_around(kind, &rec, text),
            _ => None,
        };
        let json = match around {
            Some(json) => json,
            None => {
                let doc = std::mem::take(&mut rec.doc);
                to_text(&self.render_doc(kind, &rec, doc)?)
            }
        };
        Ok(WrittenText {
            json,
            version,
            location,
        })
    }

    /// GET one resource, rendered. The full rendering (no projection) comes from the
    /// resource cache when it can.
    pub fn get(
        &self,
        kind: ResourceKind,
        id: &str,
        attributes: &[String],
        excluded: &[String],
    ) -> Result<Cached, ScimError> {
        if self.renders_full(attributes, excluded) {
            if let Some(hit) = self.cache.get(kind, id) {
                return Ok(hit);
            }
        }
        self.read_rendered(kind, id, attributes, excluded)?
            .ok_or_else(|| missing(kind, id))
    }

    /// Whether a rendering with this projection is the full one, which the cache holds (what
    /// an unrestricted client sees).
    fn renders_full(&self, attributes: &[String], excluded: &[String]) -> bool {
        attributes.is_empty() && excluded.is_empty() && self.domains.is_none()
    }

    /// `id` read from the store and rendered (`None`: no such resource); a full rendering
    /// is read as a point lookup's row, written around its stored text when it can be
    /// ([`Scim::render_stored`]), and kept in the cache.
    fn read_rendered(
        &self,
        kind: ResourceKind,
        id: &str,
        attributes: &[String],
        excluded: &[String],
    ) -> Result<Option<Cached>, ScimError> {
        let read = self.cache.begin();
        if self.renders_full(attributes, excluded) {
            // The full rendering: written around the stored text when it can be.
            let rows = self
                .store
                .scim_point_lookup(kind.name(), &PointLookup::id(id))?;
            let Some(row) = rows.and_then(|mut rows| rows.pop()) else {
                return Ok(None);
            };
            let rendered = Cached {
                version: row.version,
                json: self.render_stored(kind, row)?,
            };
            self.cache.put(kind, id, read, rendered.clone());
            return Ok(Some(rendered));
        }
        let Some(rec) = self.store.scim_read(
            kind.name(),
            id,
            self.reads_members(kind, attributes, excluded),
        )?
        else {
            return Ok(None);
        };
        self.visible(kind, &rec)?;
        Ok(Some(self.render(kind, rec, attributes, excluded)?))
    }

    /// `rec` rendered with this projection.
    fn render(
        &self,
        kind: ResourceKind,
        rec: ScimRecord,
        attributes: &[String],
        excluded: &[String],
    ) -> Result<Cached, ScimError> {
        let version = rec.version;
        Ok(Cached {
            json: to_text(&self.shape(kind, rec, attributes, excluded)?)
                .into_bytes()
                .into(),
            version,
        })
    }

    /// A list that is a point lookup ([`ListParams::point_lookup`]), as JSON text. IdPs
    /// send one before every create (`filter=userName eq "…"`), so it is answered like a GET
    /// by id: one indexed read of the row, its document left as text; when the resource
    /// cache holds the version the store returned (a GET rendered it), the answer is
    /// written around the cached text, with no document parsed or rendered. Anything else
    /// (a projection, a page other than the first, several matches, a client limited to
    /// email domains) is listed as usual.
    pub fn list_point(
        &self,
        kind: ResourceKind,
        p: &ListParams,
        point: &PointLookup,
    ) -> Result<actix_web::web::Bytes, ScimError> {
        if let Some(text) = self.lookup(kind, p, point)? {
            return Ok(text);
        }
        Ok(to_text(&self.list(&[kind], p)?).into())
    }

    /// [`Scim::list_point`]'s answer from the resource cache, or `None` to list as usual.
    fn lookup(
        &self,
        kind: ResourceKind,
        p: &ListParams,
        point: &PointLookup,
    ) -> Result<Option<actix_web::web::Bytes>, ScimError> {
        // A sort needs nothing here: at most one resource is answered.
        if !self.renders_full(&p.attributes, &p.excluded) || p.start_index > 1 || p.count == Some(0)
        {
            return Ok(None);
        }
        let Some(mut found) = self.store.scim_point_lookup(kind.name(), point)? else {
            return Ok(None);
        };
        if found.len() > 1 {
            return Ok(None);
        }
        let json = match found.pop() {
            None => None,
            Some(row) => match self.cache.get(kind, &row.id) {
                // The store's version: another instance's write is never served from here.
                Some(hit) if hit.version == row.version => Some(hit.json),
                // Not kept: a sync cycle looks up every user once, and would push out of
                // the cache (emptied when full) the resources that are read again.
                _ => Some(self.render_stored(kind, row)?),
            },
        };
        Ok(Some(list_of_at_most_one(json.as_deref())))
    }

    /// The full rendering of a resource a point lookup read (a client that sees every
    /// resource, no projection): written around its stored text when the store vouches
    /// for its form ([`crate::scim::render`]), else parsed and rendered.
    fn render_stored(
        &self,
        kind: ResourceKind,
        row: StoredResource,
    ) -> Result<actix_web::web::Bytes, ScimError> {
        let (mut rec, text) = row.into_record_or_text()?;
        if let Some(text) = text {
            if let Some(json) = self.written_around(kind, &rec, &text) {
                return Ok(json.into());
            }
            rec.doc =
                serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        }
        Ok(self.render(kind, rec, &[], &[])?.json)
    }

    /// `rec`'s full rendering written around `text`, its document stored in the store's
    /// `DOC_FORM` ([`render::splice`]); `None` if the text is not in that form after all.
    fn written_around(&self, kind: ResourceKind, rec: &ScimRecord, text: &str) -> Option<String> {
        // Written straight from the structs: no `Value` is built.
        let id = to_text(&rec.id);
        let groups = self.groups(kind, rec).map(|g| to_text(&g));
        let meta = self.meta(kind, rec).to_text();
        let mut extra = Vec::with_capacity(3);
        if let Some(groups) = &groups {
            extra.push(("groups", groups.as_str()));
        }
        extra.extend([("id", id.as_str()), ("meta", meta.as_str())]);
        render::splice(text, &extra)
    }

    /// Whether `row`, whose document is stored in an older form than the store's
    /// `DOC_FORM`, renders in full exactly as written around its stored text (the way
    /// [`Scim::render_stored`] answers for that form): then the store may record it in
    /// that form ([`super::forms`]). `id`, `groups` and `meta` are spliced in whatever
    /// they hold, so what holds for one rendering holds until the document is written.
    /// A document that is not a resource of a known type, or does not parse, is not.
    pub fn renders_as_stored(&self, row: StoredResource) -> bool {
        let Some(kind) = ResourceKind::from_name(row.resource_type()) else {
            return false;
        };
        let text = row.text().to_owned();
        let Ok(rec) = row.into_record() else {
            return false;
        };
        let spliced = self.written_around(kind, &rec, &text);
        match (spliced, self.render(kind, rec, &[], &[])) {
            (Some(spliced), Ok(full)) => spliced.as_bytes() == &full.json[..],
            _ => false,
        }
    }

    /// Tell the cache about a write, after its commit; Group writes change Users' `groups`,
    /// and a User's deletion changes Groups' `members`.
    fn changed(&self, kind: ResourceKind, id: &str, deleted: bool) {
        let affects_others = kind == ResourceKind::Group || deleted;
        self.cache.changed(id, affects_others);
    }

    /// PUT: replace a resource.
    pub fn replace(
        &self,
        kind: ResourceKind,
        id: &str,
        body: &Value,
        if_match: Option<&[i64]>,
    ) -> Result<(Value, i64), ScimError> {
        self.update(kind, id, &Update::Replace(body), if_match)
    }

    /// PATCH: apply RFC 7644 §3.5.2 operations; answers with the full resource.
    pub fn patch(
        &self,
        kind: ResourceKind,
        id: &str,
        body: &Value,
        if_match: Option<&[i64]>,
    ) -> Result<(Value, i64), ScimError> {
        self.update(kind, id, &Update::patch(kind, body)?, if_match)
    }

    /// A PUT or PATCH in one write transaction of its own (the server sends its updates
    /// through the group commit instead: [`Scim::change_of`] inside it for a usual User,
    /// [`Scim::prepare_update`] before it for the rest).
    fn update(
        &self,
        kind: ResourceKind,
        id: &str,
        change: &Update<'_>,
        if_match: Option<&[i64]>,
    ) -> Result<(Value, i64), ScimError> {
        let result = self.store.update_scim(
            kind.name(),
            id,
            if_match,
            &rfc3339_millis(self.clock.now()),
            |current| self.changed_doc(kind, change, current),
        );
        // Invalidate after the commit (see `cache`), whatever the outcome.
        self.changed(kind, id, false);
        let rec = result??;
        let version = rec.version;
        Ok((self.shape(kind, rec, &[], &[])?, version))
    }

    /// The document `change` makes of `current`, checked as a whole.
    fn changed_doc(
        &self,
        kind: ResourceKind,
        change: &Update<'_>,
        current: &ScimRecord,
    ) -> Result<Value, ScimError> {
        self.visible(kind, current)?;
        let registry = self.registry;
        let existing = WriteMode::Replace {
            existing: &current.doc,
        };
        let doc = match change {
            Update::Replace(body) => registry.normalize(kind, body, existing)?,
            Update::Patch {
                ops,
                removed_extensions,
            } => {
                let resolver = registry.resolver(kind);
                // `id` is present while patching so a client echoing it unchanged is fine.
                let mut doc = current.doc.clone();
                if let Value::Object(m) = &mut doc {
                    m.insert("id".into(), json!(current.id));
                }
                apply_patch(&mut doc, ops, &resolver)?;
                if let Value::Object(m) = &mut doc {
                    m.remove("id");
                    for urn in removed_extensions {
                        m.remove(*urn);
                    }
                    if let Some(Value::Array(schemas)) = m.get_mut("schemas") {
                        schemas.retain(|s| {
                            !removed_extensions
                                .iter()
                                .any(|u| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(u)))
                        });
                    }
                }
                // The result must still be a valid resource (required attributes etc.).
                registry.normalize(kind, &doc, existing)?
            }
        };
        self.restrict_write(kind, Some(&current.doc), strip_password(doc))
    }

    /// A PUT or PATCH for the group commit, prepared before it (a Group's, a User's too
    /// long to be changed inside it, any on PostgreSQL), up to the write: the resource as
    /// it is now (a point read), If-Match checked against it, and the new document. The
    /// write ([`crate::store::TokenBatcher::replace_scim`]) applies only if the resource
    /// is still at the version read; if not, the caller prepares again. No store access
    /// but the point read for a User.
    pub fn prepare_update(
        &self,
        kind: ResourceKind,
        id: &str,
        change: &Update<'_>,
        if_match: Option<&[i64]>,
    ) -> Result<PreparedUpdate, ScimError> {
        let current = self
            .store
            .scim(kind.name(), id)?
            .ok_or_else(|| missing(kind, id))?;
        Ok(match self.change_of(kind, &current, change, if_match)? {
            None => PreparedUpdate::Unchanged(current),
            Some(doc) => PreparedUpdate::Write {
                version: current.version,
                doc,
                now: self.write_time(),
            },
        })
    }

    /// The new document `change` makes of `current`, If-Match checked against it; `None`
    /// when nothing changes (the version, and the ETag, stay as they are). For the group
    /// commit, which runs it inside its transaction on a User read there
    /// ([`crate::store::TokenBatcher::change_scim`]), and for [`Scim::prepare_update`].
    pub fn change_of(
        &self,
        kind: ResourceKind,
        current: &ScimRecord,
        change: &Update<'_>,
        if_match: Option<&[i64]>,
    ) -> Result<Option<Value>, ScimError> {
        crate::store::check_version(current, if_match)?;
        let doc = self.changed_doc(kind, change, current)?;
        Ok((doc != current.doc).then_some(doc))
    }

    /// The time a write made now records (`meta.lastModified`).
    pub fn write_time(&self) -> String {
        rfc3339_millis(self.clock.now())
    }

    /// DELETE.
    pub fn delete(
        &self,
        kind: ResourceKind,
        id: &str,
        if_match: Option<&[i64]>,
    ) -> Result<(), ScimError> {
        if self.domains.is_some()
            && let Some(rec) = self.store.scim(kind.name(), id)?
        {
            self.visible(kind, &rec)?;
        }
        let now = rfc3339_millis(self.clock.now());
        let result = self.delete_from_groups(kind, id, if_match, &now);
        self.changed(kind, id, true);
        Ok(result?)
    }

    /// The delete's write. The Groups the resource leaves are read and rewritten without
    /// it outside the write lock ([`Store::groups_without`]), and written only if they are
    /// still at the versions read; after [`DELETE_ATTEMPTS`] lost races, in the write
    /// transaction.
    fn delete_from_groups(
        &self,
        kind: ResourceKind,
        id: &str,
        if_match: Option<&[i64]>,
        now: &str,
    ) -> Result<(), StoreError> {
        for _ in 0..DELETE_ATTEMPTS {
            let leaving = self.store.groups_without(id)?;
            if self
                .store
                .delete_scim(kind.name(), id, if_match, now, Some(&leaving))?
            {
                return Ok(());
            }
        }
        self.store
            .delete_scim(kind.name(), id, if_match, now, None)
            .map(drop)
    }

    /// GET on the collection or POST .search: a ListResponse. `kinds` has one entry for a
    /// resource endpoint and both for a root search.
    pub fn list(&self, kinds: &[ResourceKind], p: &ListParams) -> Result<Value, ScimError> {
        let filter = p.filter.as_ref();
        let start = p.start_index.max(1);
        let count = p.count.unwrap_or(MAX_RESULTS).min(MAX_RESULTS);
        let mut total = 0usize;
        let mut resources = Vec::new();
        let mut checked_any = false;
        let mut first_error = None;
        let user_name_like = self
            .domains
            .as_ref()
            .map(EmailDomains::like_patterns)
            .unwrap_or_default();
        for &kind in kinds {
            let resolver = self.registry.resolver(kind);
            if let Some(f) = filter {
                if let Err(e) = validate_filter(f, &resolver) {
                    // A root search skips types the filter cannot apply to.
                    first_error.get_or_insert(e);
                    continue;
                }
            }
            checked_any = true;
            let sort_by = match &p.sort_by {
                Some(s) if !s.trim().is_empty() => {
                    Some(resolver.resolve_path(s.trim()).ok_or_else(|| {
                        ScimError::bad_request(
                            "invalidValue",
                            format!("cannot sort by unknown attribute `{s}`"),
                        )
                    })?)
                }
                _ => None,
            };
            // Pages span the types in order: skip what earlier types filled.
            let skip = (start - 1).saturating_sub(total);
            let want = count.saturating_sub(resources.len());
            let (n, recs) = self.store.query_scim(&ScimQuery {
                resource_type: kind.name(),
                filter,
                resolver: &resolver,
                sort_by,
                descending: p.descending,
                start_index: skip + 1,
                count: want,
                user_name_like: &user_name_like,
                members: self.reads_members(kind, &p.attributes, &p.excluded),
            })?;
            total += n;
            for mut rec in recs {
                let doc = std::mem::take(&mut rec.doc);
                let full = self.render_doc(kind, &rec, doc)?;
                resources.push(
                    self.registry
                        .project(kind, full, &p.attributes, &p.excluded),
                );
            }
        }
        if !checked_any {
            if let Some(e) = first_error {
                return Err(e.into());
            }
        }
        Ok(json!({
            "schemas": [LIST_SCHEMA],
            "totalResults": total,
            "startIndex": start,
            "itemsPerPage": resources.len(),
            "Resources": resources,
        }))
    }
}

/// The ListResponse of the first page holding `resource` (JSON text) or nothing, byte for
/// byte as [`Scim::list`]'s `Value` is written (keys in order).
fn list_of_at_most_one(resource: Option<&[u8]>) -> actix_web::web::Bytes {
    let (n, resource) = match resource {
        Some(r) => ("1", r),
        None => ("0", &b""[..]),
    };
    let mut out = Vec::with_capacity(resource.len() + 160);
    out.extend_from_slice(b"{\"Resources\":[");
    out.extend_from_slice(resource);
    out.extend_from_slice(b"],\"itemsPerPage\":");
    out.extend_from_slice(n.as_bytes());
    out.extend_from_slice(b",\"schemas\":[\"");
    out.extend_from_slice(LIST_SCHEMA.as_bytes());
    out.extend_from_slice(b"\"],\"startIndex\":1,\"totalResults\":");
    out.extend_from_slice(n.as_bytes());
    out.push(b'}');
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `meta` written by hand is what serde writes, escapes and all (an id from a URL may
    /// hold anything, and the base URL comes from the settings).
    #[test]
    fn meta_written_by_hand_is_what_serde_writes() {
        for (created, location, version) in [
            (
                "2026-12-07T02:30:00.123Z",
                "https://x/scim/v2/Users/1".to_string(),
                7,
            ),
            ("", String::new(), 0),
            (
                "q\"",
                "https://x/scim/v2/Users/a\"b\\c\nd\u{0}é ✓".to_string(),
                i64::MAX,
            ),
        ] {
            for resource_type in ["User", "Group"] {
                let meta = Meta {
                    created,
                    last_modified: created,
                    location: location.clone(),
                    resource_type,
                    version: etag(version),
                };
                assert_eq!(meta.to_text(), to_text(&meta));
            }
        }
    }

    #[test]
    fn a_list_of_at_most_one_is_written_as_the_list_s_value_is() {
        let user = json!({"id": "a\"b", "userName": "x", "meta": {"version": "W/\"1\""}});
        let text = to_text(&user);
        for (resource, items) in [(Some(text.as_bytes()), vec![user.clone()]), (None, vec![])] {
            let value = json!({
                "schemas": [LIST_SCHEMA],
                "totalResults": items.len(),
                "startIndex": 1,
                "itemsPerPage": items.len(),
                "Resources": items,
            });
            assert_eq!(
                &list_of_at_most_one(resource)[..],
                to_text(&value).as_bytes()
            );
        }
    }

    #[test]
    fn ids_are_v7_uuids_in_creation_order() {
        let id = new_id();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "7");
        let later = new_id();
        assert!(later > id, "{later} after {id}");
    }

    #[test]
    fn etags() {
        assert!(etag_matches("W/\"3\"", 3));
        assert!(etag_matches("\"3\"", 3));
        assert!(etag_matches("*", 9));
        assert!(etag_matches("W/\"1\", W/\"3\"", 3));
        assert!(!etag_matches("W/\"4\"", 3));
        assert_eq!(if_match_version(Some("W/\"7\"")).unwrap(), Some(vec![7]));
        assert_eq!(
            if_match_version(Some("W/\"8\", W/\"9\"")).unwrap(),
            Some(vec![8, 9])
        );
        assert_eq!(if_match_version(Some("*")).unwrap(), None);
        assert_eq!(if_match_version(Some("garbage")).unwrap(), Some(vec![-1]));
    }
}

#[cfg(test)]
mod point_lookup_tests {
    use super::*;

    fn params(filter: &str, sort_by: Option<&str>) -> ListParams {
        ListParams {
            filter: ListParams::filter_param(Some(filter)).unwrap(),
            sort_by: sort_by.map(str::to_string),
            ..ListParams::default()
        }
    }

    /// Only what reads one index entry runs on the request's thread.
    #[test]
    fn an_indexed_equality_is_a_point_lookup_and_nothing_else_is() {
        let user = ResourceKind::User;
        for f in [
            r#"userName eq "bjensen@example.com""#,
            r#"externalId eq "701984""#,
            r#"id eq "2819c223""#,
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "a@b.c""#,
        ] {
            assert!(params(f, None).point_lookup(user).is_some(), "{f}");
        }
        assert!(
            params(r#"displayName eq "Tour Guides""#, None)
                .point_lookup(ResourceKind::Group)
                .is_some()
        );
        for f in [
            r#"userName sw "b""#,
            r#"userName eq "a" or userName eq "b""#,
            r#"name.familyName eq "Jensen""#,
            r#"emails[type eq "work"].value eq "a@b.c""#,
            r#"title eq "Tour Guide""#,
            "userName pr",
        ] {
            assert!(params(f, None).point_lookup(user).is_none(), "{f}");
        }
        assert!(ListParams::filter_param(Some("not a filter")).is_err());
        assert!(ListParams::filter_param(Some("  ")).unwrap().is_none());
        assert!(
            params(r#"userName eq "a""#, Some("userName"))
                .point_lookup(user)
                .is_none()
        );
        assert!(ListParams::default().point_lookup(user).is_none());
    }
}

#[cfg(test)]
mod render_tests {
    use super::*;

    const CORE: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
    const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

    /// The User bodies an IdP may send, with what the normaliser drops or renames: nulls,
    /// empty values, names in any case, a password, text that needs escaping.
    fn bodies() -> Vec<Value> {
        vec![
            json!({"schemas": [CORE], "userName": "plain@example.com"}),
            json!({
                "schemas": [CORE, ENT],
                "USERNAME": "Mixed@Example.com",
                "Name": {"GivenName": "Barbara", "familyName": "Jensen", "middleName": null,
                         "formatted": "Ms. Barbara J Jensen, III"},
                "displayName": "Babs \"B\" Jensen \\ \u{1} é 😀",
                "nickName": null,
                "emails": [
                    {"value": "bjensen@example.com", "type": "work", "primary": true},
                    {"Value": "babs@jensen.org", "type": "home", "display": null}
                ],
                "phoneNumbers": [],
                "addresses": [{"type": "work", "streetAddress": "100 Universal City Plaza",
                               "locality": "Hollywood", "postalCode": "91608",
                               "country": "USA", "primary": true}],
                "active": false,
                "password": "t1meMa$heen",
                "externalId": "701984",
                "locale": "en-US", "timezone": "America/Los_Angeles",
                "title": "Tour Guide", "userType": "Employee",
                "entitlements": [{"value": "x"}], "roles": [{"value": "r", "primary": false}],
                ENT: {"employeeNumber": "701984", "costCenter": "4130",
                      "organization": "Universal Studios", "division": "Theme Park",
                      "department": "Tour Operations", "manager": {"value": "26118915"}},
            }),
            json!({
                "schemas": [CORE, ENT],
                "userName": "urn-form@example.com",
                format!("{ENT}:department"): "Sales",
                "urn:ietf:params:scim:schemas:core:2.0:User:title": "Dr",
                "name": {},
                "ims": [{"value": "babs", "type": "aim"}],
            }),
        ]
    }

    fn uncached() -> ResourceCache {
        ResourceCache::new(std::time::Duration::ZERO)
    }

    /// The service on `store`, as an unrestricted client sees it.
    fn service<'a>(store: &'a Store, cache: &'a ResourceCache, clock: &'a Clock) -> Scim<'a> {
        Scim {
            store,
            registry: SchemaRegistry::builtin(),
            base_url: "https://idp.example.com/scim/v2",
            clock,
            cache,
            domains: None,
        }
    }

    /// What a point lookup writes around the stored text is, byte for byte, what parsing,
    /// projecting and writing the document gives; and it is what it took, on both stores.
    #[test]
    fn a_lookup_written_around_the_stored_text_is_the_full_rendering() {
        for store in crate::store::testing::stores("render_splice") {
            let (cache, clock) = (uncached(), Clock::manual(1_700_000_000));
            let scim = service(&store, &cache, &clock);
            let mut users = Vec::new();
            for body in bodies() {
                let (user, _) = scim.create(ResourceKind::User, &body).unwrap();
                // The create's answer, not projected, is what the full path projects.
                let id = user["id"].as_str().unwrap();
                let rec = store.scim("User", id).unwrap().unwrap();
                let full = scim.render(ResourceKind::User, rec, &[], &[]).unwrap().json;
                let projected: Value = serde_json::from_slice(&full).unwrap();
                assert_eq!(user, projected, "{}", store.backend);
                // And a GET's, written around the stored text, is the same text.
                let read = scim.get(ResourceKind::User, id, &[], &[]).unwrap();
                assert_eq!(read.json, full, "{}", store.backend);
                users.push(user);
            }
            // Two Groups, so the Users' `groups` are spliced in too.
            let members: Vec<Value> = users[..2]
                .iter()
                .map(|u| json!({"value": u["id"]}))
                .collect();
            for name in ["Tour \"Guides\"", "admins"] {
                let group = json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                    "displayName": name,
                    "members": members,
                });
                scim.create(ResourceKind::Group, &group).unwrap();
            }
            let lookups = users
                .iter()
                .map(|u| (ResourceKind::User, format!("userName eq {}", u["userName"])))
                .chain([(
                    ResourceKind::Group,
                    r#"displayName eq "admins""#.to_string(),
                )]);
            for (kind, filter) in lookups {
                let p = ListParams {
                    filter: ListParams::filter_param(Some(&filter)).unwrap(),
                    ..ListParams::default()
                };
                let point = p.point_lookup(kind).unwrap();
                let read = || {
                    store
                        .scim_point_lookup(kind.name(), &point)
                        .unwrap()
                        .unwrap()
                };
                let (rec, text) = read().pop().unwrap().into_record_or_text().unwrap();
                let text =
                    text.unwrap_or_else(|| panic!("{}: {filter}: not in DOC_FORM", store.backend));
                let spliced = scim.written_around(kind, &rec, &text).expect("spliced");
                let rendered = scim
                    .render(kind, read().pop().unwrap().into_record().unwrap(), &[], &[])
                    .unwrap();
                assert_eq!(
                    spliced,
                    std::str::from_utf8(&rendered.json).unwrap(),
                    "{}: {filter}",
                    store.backend
                );
                // And what the lookup answers with.
                let answered = scim.render_stored(kind, read().pop().unwrap()).unwrap();
                assert_eq!(answered, spliced.as_bytes());
            }
        }
    }

    /// A write through the group commit is answered with its document's stored text,
    /// written around ([`Scim::written_text`]): byte for byte the full rendering
    /// [`Scim::written`] gives, for each create and for a replace of a User in two Groups;
    /// on PostgreSQL, where the batch hands back no text, rendered in full.
    #[test]
    fn a_write_s_answer_is_its_full_rendering() {
        for store in crate::store::testing::stores("render_written") {
            let (cache, clock) = (uncached(), Clock::manual(1_700_000_000));
            let scim = service(&store, &cache, &clock);
            let batcher = crate::store::TokenBatcher::new(store.store.clone());
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            let b = store.backend;
            let check = |id: &str, rec: ScimRecord, text: Option<String>| {
                assert_eq!(text.is_some(), b == "sqlite", "{b}: the stored text");
                let (full, version) = scim
                    .written(ResourceKind::User, id, Ok(rec.clone()))
                    .unwrap();
                let answer = scim
                    .written_text(ResourceKind::User, id, Ok((rec, text)))
                    .unwrap();
                assert_eq!(answer.json, to_text(&full), "{b}");
                assert_eq!(answer.version, version, "{b}");
                assert_eq!(answer.location, full["meta"]["location"], "{b}");
            };
            let mut ids = Vec::new();
            for body in bodies() {
                let new = scim.prepare_create(ResourceKind::User, &body).unwrap();
                let id = new.id.clone();
                let (rec, text) = rt
                    .block_on(batcher.insert_scim("User", new.id, new.doc, new.now))
                    .unwrap();
                check(&id, rec, text);
                ids.push(id);
            }
            for name in ["Tour \"Guides\"", "admins"] {
                let group = json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                    "displayName": name,
                    "members": [{"value": ids[1]}],
                });
                scim.create(ResourceKind::Group, &group).unwrap();
            }
            let mut body = bodies().swap_remove(1);
            body["title"] = json!("Senior Tour Guide");
            let PreparedUpdate::Write { version, doc, now } = scim
                .prepare_update(ResourceKind::User, &ids[1], &Update::Replace(&body), None)
                .unwrap()
            else {
                panic!("{b}: the replace changes the title");
            };
            let (rec, text) = rt
                .block_on(batcher.replace_scim("User", ids[1].clone(), version, doc, now))
                .unwrap()
                .expect("at the version read");
            assert_eq!(rec.groups.len(), 2, "{b}: in two Groups");
            check(&ids[1], rec, text);
        }
    }
}
