//! RFC 7644 §3.5.2 PATCH applied to a stored resource document (`serde_json::Value` with
//! canonical attribute names, extension attributes nested under their schema URN key).
//!
//! It lives apart from the HTTP handler so the semantics — including the quirks of
//! Microsoft Entra ID and Okta — can be tested on plain JSON. Paths are parsed by
//! [`crate::scim::filter::parse_patch_path`], resolved through the [`AttributeResolver`], and value
//! filters are evaluated by [`crate::scim::filter_eval::matches_value_filter`].
//!
//! Behaviour the integrator should know:
//!
//! * All-or-nothing: operations run on a clone that replaces the document only if every
//!   operation succeeds. Errors name the failing operation (`Operations[2]: ...`).
//! * `op` is case-insensitive (`Add`, `Replace`, `remove`); an empty `path` is no path.
//! * Without a path, `add`/`replace` take an object whose keys are attribute paths: plain
//!   (`displayName`), dotted (`name.givenName`), URN-qualified
//!   (`urn:...:enterprise:2.0:User:employeeNumber`) or a schema URN holding an object of that
//!   schema's attributes. `remove` without a path is `noTarget` (RFC 7644 §3.5.2.2).
//! * `add` appends to multi-valued attributes. A value equal to an existing one — same JSON,
//!   or for complex values the same `value` sub-attribute (compared per its `caseExact`) and
//!   the same `type` when both have one — is merged into it instead of duplicated, so
//!   re-adding a group member is a no-op. `replace` of a multi-valued attribute without a
//!   filter replaces the whole array. On a single-valued attribute both set the value; on a
//!   complex single-valued attribute both merge the given sub-attributes (others are kept).
//! * A value with `primary: true` clears (`false`) `primary` on the attribute's other values;
//!   two new values both marked primary are `invalidValue`.
//! * Value filters: `replace`/`remove` matching nothing is `noTarget`. `add` matching nothing
//!   creates a new value from the filter's `eq` conditions plus the given value when the
//!   filter is a conjunction of `eq` comparisons (`emails[type eq "work"].value` → a new
//!   `{"type":"work","value":...}`, as Entra ID expects), `noTarget` otherwise.
//!   `attr.sub` without a filter on a multi-valued attribute applies to every value.
//! * `remove` on a multi-valued attribute with a `value` (Entra ID:
//!   `{"op":"Remove","path":"members","value":[{"value":"id"}]}`) removes the listed values
//!   (same equality as `add`); without a value it removes the attribute.
//! * Values are type-checked against the schema (`invalidValue`): strings, Booleans (the
//!   strings `"True"`/`"false"` are coerced, case-insensitively, for Entra ID), integers,
//!   decimals, RFC 3339 DateTimes, objects for complex attributes (sub-attribute names are
//!   canonicalised; unknown ones rejected). A single value for a multi-valued attribute is
//!   wrapped in an array; a bare scalar for a single-valued complex attribute with a `value`
//!   sub-attribute becomes `{"value": ...}` (Entra ID sends `manager` that way). Nothing the client did not send is added (no default `type` or
//!   `primary`).
//! * Mutability: an operation that changes a `readOnly` attribute (`id`, `meta`, `groups`)
//!   or one that changes an `immutable` attribute that already had a value is
//!   `mutability`; an operation that leaves such an attribute unchanged (Okta echoing `id`)
//!   is accepted. Removing a `required` attribute is not checked here — validate the
//!   resulting document against the schema before storing it.
//! * `schemas` may be added to or replaced (not removed). After the operations, an
//!   extension touched by the patch has its URN added to an existing `schemas` array when
//!   its object is non-empty and removed when it became empty.
//! * Finally null values, empty arrays and empty objects are removed from the whole document
//!   (null means "unassigned"); empty strings are kept.

use std::str::FromStr;

use serde_json::{Map, Value};
use thiserror::Error;

use crate::scim::attr::{AttrInfo, AttrType, AttributeResolver, Mutability};
use crate::scim::filter::{AttrPath, CompValue, CompareOp, Filter, PatchPath, parse_patch_path};
use crate::scim::filter_eval::{ElementFilter, matches_value_filter, resolve_in_element};
use crate::scim::patch_value::{
    ElementIndex, add_values, check_element, check_items, check_mutability, check_value,
    ensure_array, ensure_object, is_primary, merge_into, settle_primary, sync_schemas,
};
use crate::scim::value::ValueError;

/// The `schemas` URN of a PATCH request body.
pub const PATCH_OP_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// A PATCH operation kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// `add`.
    Add,
    /// `remove`.
    Remove,
    /// `replace`.
    Replace,
}

impl FromStr for OpKind {
    type Err = PatchError;

    /// Parses `add`/`remove`/`replace` case-insensitively (Entra ID sends `Add`, `Replace`).
    fn from_str(s: &str) -> Result<OpKind, PatchError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "add" => Ok(OpKind::Add),
            "remove" => Ok(OpKind::Remove),
            "replace" => Ok(OpKind::Replace),
            _ => Err(PatchError::InvalidSyntax(format!(
                "unknown op {s:?}; expected add, remove or replace"
            ))),
        }
    }
}

/// One element of a PATCH request's `Operations`.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOp {
    /// The operation.
    pub op: OpKind,
    /// The target path; `None` (or empty) means the resource itself.
    pub path: Option<String>,
    /// The value; required for add and replace.
    pub value: Option<Value>,
}

impl PatchOp {
    /// Parses one operation object; member names are matched case-insensitively.
    pub fn from_json(json: &Value) -> Result<PatchOp, PatchError> {
        let Value::Object(map) = json else {
            return Err(PatchError::InvalidSyntax(
                "each operation must be a JSON object".into(),
            ));
        };
        let member = |name: &str| {
            map.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        };
        let op = match member("op") {
            Some(Value::String(s)) => s.parse()?,
            Some(_) => return Err(PatchError::InvalidSyntax("\"op\" must be a string".into())),
            None => return Err(PatchError::InvalidSyntax("operation without \"op\"".into())),
        };
        let path = match member("path") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.trim().is_empty() => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(PatchError::InvalidPath("\"path\" must be a string".into())),
        };
        let value = member("value").cloned();
        Ok(PatchOp { op, path, value })
    }
}

/// The most operations one PATCH request may carry. Each operation may have to look at
/// every value of the attribute it targets (a value filter, an add's duplicate check), so a
/// 1 MiB body of 10,000 operations on a long attribute was minutes of a worker's time;
/// 1,000 keeps the worst request under a second (bench/RESULTS.md) and is far above what
/// IdPs send (Okta and Entra ID: one operation per changed attribute, members added in
/// one operation).
pub const MAX_OPERATIONS: usize = 1000;

/// Parses a PATCH request body: `{"schemas":[PATCH_OP_SCHEMA],"Operations":[...]}`. A
/// `schemas` member, when present, must contain [`PATCH_OP_SCHEMA`]; `Operations` is
/// matched case-insensitively.
pub fn parse_patch_request(body: &Value) -> Result<Vec<PatchOp>, PatchError> {
    let Value::Object(map) = body else {
        return Err(PatchError::InvalidSyntax(
            "the body must be a JSON object".into(),
        ));
    };
    if let Some(schemas) = map.get("schemas") {
        let ok = schemas.as_array().is_some_and(|a| {
            a.iter().any(|s| {
                s.as_str()
                    .is_some_and(|s| s.eq_ignore_ascii_case(PATCH_OP_SCHEMA))
            })
        });
        if !ok {
            return Err(PatchError::InvalidSyntax(format!(
                "\"schemas\" must contain \"{PATCH_OP_SCHEMA}\""
            )));
        }
    }
    let ops = map
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("Operations"))
        .map(|(_, v)| v);
    match ops {
        Some(Value::Array(items)) if items.len() > MAX_OPERATIONS => {
            Err(PatchError::InvalidValue(format!(
                "a PATCH request may carry at most {MAX_OPERATIONS} operations, this one has {}; \
                 send the changes in several requests",
                items.len()
            )))
        }
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| PatchOp::from_json(item).map_err(|e| e.in_operation(i)))
            .collect(),
        _ => Err(PatchError::InvalidSyntax(
            "\"Operations\" must be an array of operations".into(),
        )),
    }
}

/// Why a PATCH failed; every variant is HTTP 400 with the [`PatchError::scim_type`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PatchError {
    /// Malformed path or unknown attribute (`invalidPath`).
    #[error("invalid path: {0}")]
    InvalidPath(String),
    /// A value filter in the path is not valid for the schema (`invalidFilter`).
    #[error("invalid filter: {0}")]
    InvalidFilter(String),
    /// The path's value filter matched nothing, or remove without a path (`noTarget`).
    #[error("no target: {0}")]
    NoTarget(String),
    /// Missing value, or a value of the wrong type or shape (`invalidValue`).
    #[error("invalid value: {0}")]
    InvalidValue(String),
    /// Malformed request or operation (`invalidSyntax`).
    #[error("invalid syntax: {0}")]
    InvalidSyntax(String),
    /// Change to a readOnly or immutable attribute (`mutability`).
    #[error("mutability: {0}")]
    Mutability(String),
}

impl PatchError {
    /// The RFC 7644 Table 9 `scimType` for this error.
    pub fn scim_type(&self) -> &'static str {
        match self {
            PatchError::InvalidPath(_) => "invalidPath",
            PatchError::InvalidFilter(_) => "invalidFilter",
            PatchError::NoTarget(_) => "noTarget",
            PatchError::InvalidValue(_) => "invalidValue",
            PatchError::InvalidSyntax(_) => "invalidSyntax",
            PatchError::Mutability(_) => "mutability",
        }
    }

    /// The human-readable detail, without the scimType prefix.
    pub fn detail(&self) -> &str {
        match self {
            PatchError::InvalidPath(m)
            | PatchError::InvalidFilter(m)
            | PatchError::NoTarget(m)
            | PatchError::InvalidValue(m)
            | PatchError::InvalidSyntax(m)
            | PatchError::Mutability(m) => m,
        }
    }

    fn map_detail(self, f: impl FnOnce(String) -> String) -> PatchError {
        match self {
            PatchError::InvalidPath(m) => PatchError::InvalidPath(f(m)),
            PatchError::InvalidFilter(m) => PatchError::InvalidFilter(f(m)),
            PatchError::NoTarget(m) => PatchError::NoTarget(f(m)),
            PatchError::InvalidValue(m) => PatchError::InvalidValue(f(m)),
            PatchError::InvalidSyntax(m) => PatchError::InvalidSyntax(f(m)),
            PatchError::Mutability(m) => PatchError::Mutability(f(m)),
        }
    }

    fn in_operation(self, index: usize) -> PatchError {
        self.map_detail(|m| format!("Operations[{index}]: {m}"))
    }
}

impl From<ValueError> for PatchError {
    fn from(e: ValueError) -> Self {
        match e {
            ValueError::InvalidValue(m) => PatchError::InvalidValue(m),
            ValueError::UnknownSubAttribute(_) => PatchError::InvalidValue(e.to_string()),
            ValueError::Duplicate(_) => PatchError::InvalidSyntax(e.to_string()),
            ValueError::Mutability(m) => PatchError::Mutability(m),
        }
    }
}

/// Applies `ops` in order to `doc` (a JSON object). On error `doc` is left unchanged.
pub fn apply_patch(
    doc: &mut Value,
    ops: &[PatchOp],
    resolver: &dyn AttributeResolver,
) -> Result<(), PatchError> {
    let Value::Object(root) = doc else {
        return Err(PatchError::InvalidValue(
            "the resource document is not a JSON object".into(),
        ));
    };
    let mut patcher = Patcher {
        resolver,
        work: root.clone(),
        touched_extensions: Vec::new(),
    };
    for (i, op) in ops.iter().enumerate() {
        patcher.apply_op(op).map_err(|e| e.in_operation(i))?;
    }
    let Patcher {
        mut work,
        touched_extensions,
        ..
    } = patcher;
    crate::scim::value::prune_map(&mut work);
    sync_schemas(&mut work, &touched_extensions);
    *root = work;
    Ok(())
}

/// A resolved PATCH target.
struct Target {
    path: PatchPath,
    extension: Option<String>,
    attr: AttrInfo,
    /// The sub-attribute named by `attr.sub` or by `[...].sub`.
    sub: Option<AttrInfo>,
}

struct Patcher<'r> {
    resolver: &'r dyn AttributeResolver,
    work: Map<String, Value>,
    touched_extensions: Vec<String>,
}

impl Patcher<'_> {
    fn apply_op(&mut self, op: &PatchOp) -> Result<(), PatchError> {
        let Some(path) = &op.path else {
            if op.op == OpKind::Remove {
                return Err(PatchError::NoTarget("remove requires a \"path\"".into()));
            }
            let Some(Value::Object(entries)) = &op.value else {
                return Err(PatchError::InvalidValue(
                    "without a \"path\", \"value\" must be an object of attributes".into(),
                ));
            };
            for (key, value) in entries {
                self.apply_pathless(op.op, key, value)?;
            }
            return Ok(());
        };
        self.apply_path(op.op, path, op.value.as_ref())
    }

    /// One member of a path-less add/replace value.
    fn apply_pathless(&mut self, kind: OpKind, key: &str, value: &Value) -> Result<(), PatchError> {
        if key.eq_ignore_ascii_case("schemas") {
            return self.apply_path(kind, key, Some(value));
        }
        match self.resolve_target(key) {
            Ok(_) => self.apply_path(kind, key, Some(value)),
            Err(err) => match value {
                // A schema URN holding that schema's attributes.
                Value::Object(inner) if key.to_ascii_lowercase().starts_with("urn:") => {
                    for (name, v) in inner {
                        self.apply_path(kind, &format!("{key}:{name}"), Some(v))?;
                    }
                    Ok(())
                }
                _ => Err(err),
            },
        }
    }

    fn resolve_target(&self, path: &str) -> Result<Target, PatchError> {
        let parsed = parse_patch_path(path)
            .map_err(|e| PatchError::InvalidPath(format!("\"{path}\": {e}")))?;
        let a = &parsed.attr;
        let unknown = || PatchError::InvalidPath(format!("unknown attribute \"{path}\""));
        let Some(filter) = &parsed.filter else {
            let rp = self
                .resolver
                .resolve(a.urn.as_deref(), &a.attr, a.sub.as_deref())
                .ok_or_else(unknown)?;
            return Ok(Target {
                extension: rp.extension,
                attr: rp.attr,
                sub: rp.sub,
                path: parsed,
            });
        };
        let rp = self
            .resolver
            .resolve(a.urn.as_deref(), &a.attr, None)
            .ok_or_else(unknown)?;
        if rp.attr.attr_type != AttrType::Complex {
            return Err(PatchError::InvalidPath(format!(
                "\"{a}\" is not complex, so it cannot take a value filter"
            )));
        }
        let sub = match &parsed.sub_attr {
            Some(name) => Some(
                self.resolver
                    .resolve(a.urn.as_deref(), &a.attr, Some(name))
                    .and_then(|r| r.sub)
                    .ok_or_else(unknown)?,
            ),
            None => None,
        };
        // Validate the filter against the schema up front.
        matches_value_filter(a, filter, &Value::Object(Map::new()), self.resolver)
            .map_err(|e| PatchError::InvalidFilter(format!("\"{path}\": {e}")))?;
        Ok(Target {
            extension: rp.extension,
            attr: rp.attr,
            sub,
            path: parsed,
        })
    }

    fn apply_path(
        &mut self,
        kind: OpKind,
        path: &str,
        value: Option<&Value>,
    ) -> Result<(), PatchError> {
        if path.trim().eq_ignore_ascii_case("schemas") {
            return self.apply_schemas(kind, value);
        }
        let target = self.resolve_target(path)?;
        let value = match (kind, value) {
            (OpKind::Remove, v) => v,
            (_, Some(v)) => Some(v),
            (_, None) => {
                return Err(PatchError::InvalidValue(format!(
                    "{kind:?} on \"{path}\" requires a \"value\""
                )));
            }
        };
        // Only a readOnly or immutable target needs the value it had: cloning and comparing
        // a long multi-valued attribute for every operation made a PATCH of many operations
        // quadratic.
        let guarded = [Some(&target.attr), target.sub.as_ref()]
            .into_iter()
            .flatten()
            .any(|a| matches!(a.mutability, Mutability::ReadOnly | Mutability::Immutable));
        let old = if guarded {
            self.current(&target).cloned()
        } else {
            None
        };
        if let Some(urn) = &target.extension
            && !self.touched_extensions.contains(urn)
        {
            self.touched_extensions.push(urn.clone());
        }
        let container = match &target.extension {
            None => Some(&mut self.work),
            Some(urn) => extension_object(&mut self.work, urn, kind != OpKind::Remove)?,
        };
        match container {
            Some(c) => apply_to(c, &target, kind, value, self.resolver)?,
            None if target.path.filter.is_some() => {
                return Err(no_match(&target));
            }
            None => {}
        }
        if !guarded {
            return Ok(());
        }
        check_mutability(
            &target.attr,
            target.sub.as_ref(),
            old.as_ref(),
            self.current(&target),
        )
    }

    fn current(&self, target: &Target) -> Option<&Value> {
        let container = match &target.extension {
            None => Some(&self.work),
            Some(urn) => self.work.get(urn).and_then(Value::as_object),
        };
        container.and_then(|c| c.get(&target.attr.name))
    }

    fn apply_schemas(&mut self, kind: OpKind, value: Option<&Value>) -> Result<(), PatchError> {
        if kind == OpKind::Remove {
            return Err(PatchError::InvalidValue(
                "\"schemas\" cannot be removed".into(),
            ));
        }
        let bad = || PatchError::InvalidValue("\"schemas\" must be an array of URN strings".into());
        let items: Vec<Value> = match value {
            Some(Value::Array(a)) => a.clone(),
            Some(v @ Value::String(_)) => vec![v.clone()],
            _ => return Err(bad()),
        };
        if !items.iter().all(Value::is_string) {
            return Err(bad());
        }
        if kind == OpKind::Replace {
            self.work.insert("schemas".into(), Value::Array(items));
            return Ok(());
        }
        let entry = self
            .work
            .entry("schemas")
            .or_insert_with(|| Value::Array(Vec::new()));
        let Value::Array(existing) = entry else {
            return Err(bad());
        };
        for item in items {
            let dup = existing.iter().any(|e| match (e.as_str(), item.as_str()) {
                (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                _ => false,
            });
            if !dup {
                existing.push(item);
            }
        }
        Ok(())
    }
}

/// The object under an extension URN; created (when `create`) if absent or null.
fn extension_object<'a>(
    work: &'a mut Map<String, Value>,
    urn: &str,
    create: bool,
) -> Result<Option<&'a mut Map<String, Value>>, PatchError> {
    if work.get(urn).is_none_or(Value::is_null) {
        if !create {
            return Ok(None);
        }
        work.insert(urn.to_string(), Value::Object(Map::new()));
    }
    match work.get_mut(urn) {
        Some(Value::Object(m)) => Ok(Some(m)),
        _ => Err(PatchError::InvalidValue(format!(
            "the stored \"{urn}\" member is not an object"
        ))),
    }
}

fn no_match(target: &Target) -> PatchError {
    PatchError::NoTarget(format!("no value matches \"{}\"", target.path))
}

fn apply_to(
    c: &mut Map<String, Value>,
    t: &Target,
    kind: OpKind,
    value: Option<&Value>,
    resolver: &dyn AttributeResolver,
) -> Result<(), PatchError> {
    match (&t.path.filter, &t.sub) {
        (Some(filter), _) => apply_filtered(c, t, filter, kind, value, resolver),
        (None, Some(sub)) => apply_sub(c, t, sub, kind, value),
        (None, None) => apply_whole(c, t, kind, value),
    }
}

/// `attr` (no sub-attribute, no filter).
fn apply_whole(
    c: &mut Map<String, Value>,
    t: &Target,
    kind: OpKind,
    value: Option<&Value>,
) -> Result<(), PatchError> {
    let attr = &t.attr;
    let name = attr.name.clone();
    let Some(value) = value.filter(|v| !v.is_null()) else {
        // remove, or add/replace with null: unassign.
        c.remove(&name);
        return Ok(());
    };
    if kind == OpKind::Remove {
        if attr.multi_valued {
            let listed = check_items(attr, value)?;
            if let Some(Value::Array(items)) = c.get_mut(&name) {
                let index = ElementIndex::new(attr, &listed, items.len(), listed.len());
                items.retain(|e| index.find(&listed, e).is_none());
            }
        } else {
            c.remove(&name);
        }
        return Ok(());
    }
    if attr.multi_valued {
        let items = check_items(attr, value)?;
        let primaries = items.iter().filter(|v| is_primary(v)).count();
        if primaries > 1 {
            return Err(PatchError::InvalidValue(format!(
                "more than one value of \"{name}\" has primary: true"
            )));
        }
        if kind == OpKind::Replace {
            c.insert(name, Value::Array(items));
        } else {
            let array = ensure_array(c, &name)?;
            add_values(attr, array, items)?;
        }
    } else if attr.attr_type == AttrType::Complex {
        let checked = check_element(attr, value)?;
        merge_into(ensure_object(c, &name)?, checked);
    } else {
        c.insert(name, check_element(attr, value)?);
    }
    Ok(())
}

/// `attr.sub` without a filter: the sub-attribute of a complex attribute, or of every value
/// of a multi-valued one.
fn apply_sub(
    c: &mut Map<String, Value>,
    t: &Target,
    sub: &AttrInfo,
    kind: OpKind,
    value: Option<&Value>,
) -> Result<(), PatchError> {
    let new = match (kind, value) {
        (OpKind::Remove, _) => None,
        (_, Some(v)) => Some(check_value(sub, v)?),
        (_, None) => None,
    };
    if !t.attr.multi_valued {
        match new {
            Some(v) => {
                ensure_object(c, &t.attr.name)?.insert(sub.name.clone(), v);
            }
            None => {
                if let Some(Value::Object(m)) = c.get_mut(&t.attr.name) {
                    m.remove(&sub.name);
                }
            }
        }
        return Ok(());
    }
    let items = match c.get_mut(&t.attr.name) {
        Some(Value::Array(items)) if !items.is_empty() => items,
        _ if kind == OpKind::Remove => return Ok(()),
        _ => return Err(no_match(t)),
    };
    for item in items.iter_mut() {
        if let Value::Object(m) = item {
            match &new {
                Some(v) => m.insert(sub.name.clone(), v.clone()),
                None => m.remove(&sub.name),
            };
        }
    }
    let all: Vec<usize> = (0..items.len()).collect();
    settle_primary(&t.attr, items, &all)
}

/// `attr[filter]` or `attr[filter].sub`.
fn apply_filtered(
    c: &mut Map<String, Value>,
    t: &Target,
    filter: &Filter,
    kind: OpKind,
    value: Option<&Value>,
    resolver: &dyn AttributeResolver,
) -> Result<(), PatchError> {
    let outer = &t.path.attr;
    let name = t.attr.name.clone();
    let prepared = ElementFilter::prepare(outer, filter, resolver)
        .map_err(|err| PatchError::InvalidFilter(err.to_string()))?;
    // Normalised new content: the sub-attribute's value, or an object to merge.
    let new = match (kind, value) {
        (OpKind::Remove, _) | (_, None) => None,
        (_, Some(v)) => Some(match &t.sub {
            Some(sub) => check_value(sub, v)?,
            None => check_element(&t.attr, v)?,
        }),
    };
    let update = |element: &mut Value| {
        if let (Value::Object(m), Some(new)) = (element, &new) {
            match &t.sub {
                Some(sub) => {
                    m.insert(sub.name.clone(), new.clone());
                }
                None => merge_into(m, new.clone()),
            }
        }
    };
    if !t.attr.multi_valued {
        let Some(element) = c.get_mut(&name) else {
            return Err(no_match(t));
        };
        if !prepared.matches(element) {
            return Err(no_match(t));
        }
        match (kind, &t.sub) {
            (OpKind::Remove, None) => {
                c.remove(&name);
            }
            (OpKind::Remove, Some(sub)) => {
                if let Value::Object(m) = element {
                    m.remove(&sub.name);
                }
            }
            _ => update(element),
        }
        return Ok(());
    }
    let mut matched = Vec::new();
    if let Some(Value::Array(items)) = c.get(&name) {
        for (i, e) in items.iter().enumerate() {
            if prepared.matches(e) {
                matched.push(i);
            }
        }
    }
    if matched.is_empty() {
        if kind != OpKind::Add {
            return Err(no_match(t));
        }
        // Upsert: build the value the filter describes.
        let Some(mut created) = eq_conditions(outer, filter, resolver)? else {
            return Err(no_match(t));
        };
        update(&mut created);
        return add_values(&t.attr, ensure_array(c, &name)?, vec![created]);
    }
    let Some(Value::Array(items)) = c.get_mut(&name) else {
        return Err(no_match(t));
    };
    match (kind, &t.sub) {
        (OpKind::Remove, None) => {
            // A mask, not `matched.contains` per value: that was quadratic.
            let mut gone = vec![false; items.len()];
            for &i in &matched {
                if let Some(g) = gone.get_mut(i) {
                    *g = true;
                }
            }
            let mut keep = gone.into_iter().map(|g| !g);
            items.retain(|_| keep.next().unwrap_or(true));
            Ok(())
        }
        (OpKind::Remove, Some(sub)) => {
            for &i in &matched {
                if let Some(Value::Object(m)) = items.get_mut(i) {
                    m.remove(&sub.name);
                }
            }
            Ok(())
        }
        _ => {
            for &i in &matched {
                if let Some(e) = items.get_mut(i) {
                    update(e);
                }
            }
            settle_primary(&t.attr, items, &matched)
        }
    }
}

/// For a filter made only of `eq` comparisons joined by `and`, the object they describe.
fn eq_conditions(
    outer: &AttrPath,
    filter: &Filter,
    resolver: &dyn AttributeResolver,
) -> Result<Option<Value>, PatchError> {
    fn collect(
        outer: &AttrPath,
        filter: &Filter,
        resolver: &dyn AttributeResolver,
        out: &mut Map<String, Value>,
    ) -> Result<bool, PatchError> {
        match filter {
            Filter::And(l, r) => {
                Ok(collect(outer, l, resolver, out)? && collect(outer, r, resolver, out)?)
            }
            Filter::Compare {
                path,
                op: CompareOp::Eq,
                value,
            } => {
                let sub = resolve_in_element(outer, path, resolver)
                    .map_err(|e| PatchError::InvalidFilter(e.to_string()))?;
                let json = match value {
                    CompValue::String(s) => Value::String(s.clone()),
                    CompValue::Number(n) => Value::Number(n.clone()),
                    CompValue::Bool(b) => Value::Bool(*b),
                    CompValue::Null => return Ok(false),
                };
                out.insert(sub.name.clone(), check_value(&sub, &json)?);
                Ok(true)
            }
            _ => Ok(false),
        }
    }
    let mut out = Map::new();
    Ok(collect(outer, filter, resolver, &mut out)?.then_some(Value::Object(out)))
}
