//! Translation of parsed SCIM filters into SQLite `WHERE` expressions over a row whose
//! `doc` TEXT column holds the resource's JSON document (canonical attribute names,
//! extension attributes under their URN key).
//!
//! It lives apart from the evaluator so the SQL shapes can be read in one place; the
//! schema checks (attribute resolution, operand typing) are shared with
//! [`crate::scim::filter_eval`], and the semantics documented there hold here too — the test
//! suite runs both back ends over the same fixture and asserts they agree.
//!
//! Injection safety: every comparison literal becomes a `?` placeholder with a matching
//! [`SqlParam`]. The only text interpolated into the SQL is (a) canonical attribute names
//! returned by the [`AttributeResolver`], inside single-quoted JSON paths with every key
//! that is not a plain identifier double-quoted (names containing `'`, `"`, `\` or control
//! characters are refused), and (b) column names from [`AttributeResolver::column`], which
//! must be plain identifiers.
//!
//! SQL shapes:
//!
//! * Case: a `caseExact` attribute compares `x = ? COLLATE BINARY`; any other compares
//!   `scim_fold(x) = ?` with the parameter folded in Rust. `scim_fold` is
//!   [`crate::scim::value::fold`] (Unicode lower-casing), registered on every connection by
//!   [`super::functions`], so SQL and the in-memory evaluator fold alike (SQLite's own
//!   `NOCASE` and `LIKE` fold ASCII only, and are not used).
//! * indexed column (`resolver.column()` is `Some`): `id = ? COLLATE BINARY`; a
//!   case-insensitive one compares its folded twin (`resolver.folded_column()`, kept by the
//!   store on every write, indexed): `user_name_fold = ?`; without a twin
//!   `scim_fold(column) = ?`.
//! * single-valued JSON attribute: `scim_fold(json_extract(doc, '$.name.familyName')) = ?`.
//! * multi-valued attribute: `EXISTS (SELECT 1 FROM json_each(doc, '$.emails') AS e WHERE
//!   scim_fold(json_extract(e.value, '$.value')) = ?)`; a value path puts its whole
//!   inner filter in one such `EXISTS`, so all conditions apply to the same element. Elements
//!   of multi-valued complex attributes must be JSON objects (PATCH and the write path
//!   enforce this); `json_extract` raises "malformed JSON" on a bare string element.
//! * `co`/`sw`/`ew`: `instr(x, ?) > 0`, `instr(x, ?) = 1`,
//!   `substr(x, length(x) - length(?) + 1) = ?`, with `x` and the parameter folded for a
//!   case-insensitive attribute.
//! * DateTime: `julianday(x) > julianday(?)`, the parameter normalised to
//!   `YYYY-MM-DDTHH:MM:SS.sssZ`. Correct across offsets and fraction lengths, but it does not
//!   use an index on `last_modified`.
//! * Booleans: JSON `true`/`false` read back through `json_extract` as 1/0; bind
//!   [`SqlParam::Bool`] as the integer 1/0 (rusqlite's `bool: ToSql` does).
//! * `pr`: not NULL, not JSON null, not `''`, not `[]`, not `{}`.
//! * `not (f)` → `NOT COALESCE(f, 0)`, so a comparison that is NULL because the attribute is
//!   absent counts as false before negation: `not (title eq "x")` matches rows without title.

use super::functions::FOLD;
use crate::scim::attr::{AttrInfo, AttributeResolver, Computed, ResolvedPath};
use crate::scim::filter::{AttrPath, CompareOp, Filter, FilterError, indexed_equality};
use crate::scim::filter_eval::{
    Operand, check_operand, comparison_leaf, require_complex, resolve_in_element, resolve_root,
};
use crate::scim::value::{fold, folds_case};
use crate::time::format_rfc3339_millis;

/// One bound parameter, in placeholder order.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlParam {
    /// A TEXT value.
    Text(String),
    /// An INTEGER value.
    Integer(i64),
    /// A REAL value.
    Real(f64),
    /// A Boolean; bind as INTEGER 1/0.
    Bool(bool),
    /// NULL (not currently produced: `eq null` becomes `IS NULL`).
    Null,
}

/// A SQL boolean expression for a `WHERE` clause and its parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlFilter {
    /// The expression, with `?` placeholders; refers to the `doc` column and to the
    /// columns named by [`AttributeResolver::column`].
    pub sql: String,
    /// Values for the placeholders, in order.
    pub params: Vec<SqlParam>,
}

/// Translates `filter` into a SQLite expression. Fails with the same errors as
/// [`crate::scim::filter_eval::matches`] for unknown attributes and ill-typed comparisons.
pub fn to_sql(filter: &Filter, resolver: &dyn AttributeResolver) -> Result<SqlFilter, FilterError> {
    let mut builder = Builder {
        resolver,
        params: Vec::new(),
    };
    let sql = builder.filter(filter, &Ctx::Root)?;
    Ok(SqlFilter {
        sql,
        params: builder.params,
    })
}

/// An equality on an indexed column, the IdPs' lookup before a create (`userName eq "…"`,
/// `externalId eq "…"`, `id eq "…"`, `displayName eq "…"`), resolved once: the column it
/// compares and the value, folded when the attribute is case-insensitive (its folded twin
/// is then the column), as [`to_sql`] compares them. Opaque outside the store: the request
/// path holds one to run it ([`crate::store::Store::scim_point_lookup`]), not its column.
#[derive(Debug)]
pub struct PointLookup {
    pub(in crate::store) column: &'static str,
    pub(in crate::store) value: String,
}

impl PointLookup {
    /// The resource whose id is `id` (a GET by id), as a lookup.
    pub fn id(id: &str) -> PointLookup {
        PointLookup {
            column: "id",
            value: id.to_string(),
        }
    }
}

/// `filter` as a [`PointLookup`]; `None` for any other filter.
pub fn point_lookup(filter: &Filter, resolver: &dyn AttributeResolver) -> Option<PointLookup> {
    let (rp, column, s) = indexed_equality(filter, resolver)?;
    if folds_case(rp.leaf()) {
        Some(PointLookup {
            column: resolver.folded_column(&rp)?,
            value: fold(s),
        })
    } else {
        Some(PointLookup {
            column,
            value: s.to_string(),
        })
    }
}

/// Where the attribute paths of the filter being translated are evaluated.
enum Ctx<'a> {
    /// Top level: paths resolve from the document root (`doc`).
    Root,
    /// Inside `outer[...]`: paths name sub-attributes of one value of `outer`, which is the
    /// JSON at `prefix` (keys) within the SQL expression `base`.
    Element {
        outer: &'a AttrPath,
        base: &'static str,
        prefix: Vec<String>,
    },
}

struct Builder<'r> {
    resolver: &'r dyn AttributeResolver,
    params: Vec<SqlParam>,
}

impl Builder<'_> {
    fn filter(&mut self, filter: &Filter, ctx: &Ctx<'_>) -> Result<String, FilterError> {
        match filter {
            Filter::And(l, r) => Ok(format!(
                "({} AND {})",
                self.filter(l, ctx)?,
                self.filter(r, ctx)?
            )),
            Filter::Or(l, r) => Ok(format!(
                "({} OR {})",
                self.filter(l, ctx)?,
                self.filter(r, ctx)?
            )),
            Filter::Not(inner) => Ok(format!("NOT COALESCE({}, 0)", self.filter(inner, ctx)?)),
            Filter::Compare { path, op, value } => match ctx {
                Ctx::Root => {
                    let rp = resolve_root(path, self.resolver)?;
                    let (leaf, key) = comparison_leaf(path, &rp)?;
                    let operand = check_operand(path, &leaf, *op, value)?;
                    if !rp.attr.multi_valued {
                        let folded = self.resolver.folded_column(&rp);
                        if let (Some(column), true, Operand::Text(s)) =
                            (folded, folds_case(&leaf), &operand)
                        {
                            let column = checked_column(column)?;
                            return Ok(self.predicate_folded(column, *op, s));
                        }
                        if let Some(column) = self.resolver.column(&rp) {
                            let column = checked_column(column)?;
                            return Ok(self.predicate(column, &leaf, *op, &operand));
                        }
                        let mut keys: Vec<&str> = rp.extension.iter().map(String::as_str).collect();
                        keys.push(&rp.attr.name);
                        keys.extend(key.as_deref());
                        let x = format!("json_extract(doc, '{}')", json_path(&keys)?);
                        return Ok(self.predicate(&x, &leaf, *op, &operand));
                    }
                    let element = match &key {
                        Some(k) => format!("json_extract(e.value, '{}')", json_path(&[k])?),
                        None => "e.value".to_string(),
                    };
                    let array = array_source(self.resolver, &rp)?;
                    Ok(match operand {
                        Operand::Null => {
                            let exists = each(&array, &format!("{element} IS NOT NULL"));
                            if *op == CompareOp::Eq {
                                format!("NOT {exists}")
                            } else {
                                exists
                            }
                        }
                        _ => {
                            let cond = self.predicate(&element, &leaf, *op, &operand);
                            each(&array, &cond)
                        }
                    })
                }
                Ctx::Element {
                    outer,
                    base,
                    prefix,
                } => {
                    let sub = resolve_in_element(outer, path, self.resolver)?;
                    let operand = check_operand(path, &sub, *op, value)?;
                    let x = format!(
                        "json_extract({base}, '{}')",
                        element_path(prefix, &sub.name)?
                    );
                    Ok(self.predicate(&x, &sub, *op, &operand))
                }
            },
            Filter::Present { path } => match ctx {
                Ctx::Root => {
                    let rp = resolve_root(path, self.resolver)?;
                    if rp.extension.is_none()
                        && rp.attr.name == "meta"
                        && self.resolver.column(&rp).is_none()
                    {
                        // The server renders `meta` and each of its sub-attributes
                        // (`location`, `version`, …) on every resource; the stored document
                        // holds none of them.
                        return Ok("1".into());
                    }
                    if !rp.attr.multi_valued {
                        if let Some(column) = self.resolver.column(&rp) {
                            let c = checked_column(column)?;
                            return Ok(format!("({c} IS NOT NULL AND {c} <> '')"));
                        }
                        let mut keys: Vec<&str> = rp.extension.iter().map(String::as_str).collect();
                        keys.push(&rp.attr.name);
                        keys.extend(rp.sub.as_ref().map(|s| s.name.as_str()));
                        return Ok(present("doc", &json_path(&keys)?));
                    }
                    let array = array_source(self.resolver, &rp)?;
                    let cond = match &rp.sub {
                        Some(sub) => present("e.value", &json_path(&[&sub.name])?),
                        None => "(CASE e.type WHEN 'null' THEN 0 WHEN 'text' THEN e.value <> '' \
                                 WHEN 'array' THEN json_array_length(e.value) > 0 \
                                 WHEN 'object' THEN e.value <> '{}' ELSE 1 END)"
                            .to_string(),
                    };
                    Ok(each(&array, &cond))
                }
                Ctx::Element {
                    outer,
                    base,
                    prefix,
                } => {
                    let sub = resolve_in_element(outer, path, self.resolver)?;
                    Ok(present(base, &element_path(prefix, &sub.name)?))
                }
            },
            Filter::ValuePath { path, filter } => {
                if !matches!(ctx, Ctx::Root) {
                    return Err(FilterError::Invalid(
                        "value filters cannot be nested".to_string(),
                    ));
                }
                let rp = resolve_root(path, self.resolver)?;
                require_complex(path, &rp)?;
                if rp.attr.multi_valued {
                    let inner_ctx = Ctx::Element {
                        outer: path,
                        base: "e.value",
                        prefix: Vec::new(),
                    };
                    let inner = self.filter(filter, &inner_ctx)?;
                    Ok(each(&array_source(self.resolver, &rp)?, &inner))
                } else {
                    let mut prefix: Vec<String> = rp.extension.iter().cloned().collect();
                    prefix.push(rp.attr.name.clone());
                    let inner_ctx = Ctx::Element {
                        outer: path,
                        base: "doc",
                        prefix,
                    };
                    self.filter(filter, &inner_ctx)
                }
            }
        }
    }

    /// `x op operand` for a scalar SQL expression `x`; pushes the parameters.
    fn predicate(&mut self, x: &str, leaf: &AttrInfo, op: CompareOp, operand: &Operand) -> String {
        let sql_op = sql_op(op);
        match operand {
            Operand::Null if op == CompareOp::Eq => format!("{x} IS NULL"),
            Operand::Null => format!("{x} IS NOT NULL"),
            Operand::Text(s) if !folds_case(leaf) => {
                if op.is_substring() {
                    return self.substring(x, op, s.clone());
                }
                self.params.push(SqlParam::Text(s.clone()));
                format!("{x} {sql_op} ? COLLATE BINARY")
            }
            Operand::Text(s) => self.predicate_folded(&format!("{FOLD}({x})"), op, s),
            Operand::DateTime(_, millis) => {
                // An instant parse_rfc3339_millis accepted is within chrono's range.
                let text = format_rfc3339_millis(*millis).unwrap_or_default();
                self.params.push(SqlParam::Text(text));
                format!("julianday({x}) {sql_op} julianday(?)")
            }
            Operand::Number(n) => {
                self.params.push(match (n.as_i64(), n.as_f64()) {
                    (Some(i), _) => SqlParam::Integer(i),
                    (None, Some(f)) => SqlParam::Real(f),
                    (None, None) => SqlParam::Null,
                });
                format!("{x} {sql_op} ?")
            }
            Operand::Bool(b) => {
                self.params.push(SqlParam::Bool(*b));
                format!("{x} {sql_op} ?")
            }
        }
    }

    /// `x op operand` for a text operand and an `x` that is already folded (a folded column,
    /// or `scim_fold(…)`): the parameter is folded in Rust.
    fn predicate_folded(&mut self, x: &str, op: CompareOp, s: &str) -> String {
        if op.is_substring() {
            return self.substring(x, op, fold(s));
        }
        self.params.push(SqlParam::Text(fold(s)));
        format!("{x} {} ?", sql_op(op))
    }

    /// `co`/`sw`/`ew` of `s` in `x`, byte-exact (a case-insensitive caller folds both).
    fn substring(&mut self, x: &str, op: CompareOp, s: String) -> String {
        match op {
            CompareOp::Sw => {
                self.params.push(SqlParam::Text(s));
                format!("instr({x}, ?) = 1")
            }
            CompareOp::Ew => {
                self.params.push(SqlParam::Text(s.clone()));
                self.params.push(SqlParam::Text(s));
                format!("substr({x}, length({x}) - length(?) + 1) = ?")
            }
            _ => {
                self.params.push(SqlParam::Text(s));
                format!("instr({x}, ?) > 0")
            }
        }
    }
}

/// The SQL operator of a comparison (`""` for the substring ones, which are functions).
fn sql_op(op: CompareOp) -> &'static str {
    match op {
        CompareOp::Eq => "=",
        CompareOp::Ne => "<>",
        CompareOp::Gt => ">",
        CompareOp::Ge => ">=",
        CompareOp::Lt => "<",
        CompareOp::Le => "<=",
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => "",
    }
}

/// `EXISTS (SELECT 1 FROM <source> AS e WHERE <cond>)`.
fn each(source: &str, cond: &str) -> String {
    format!("EXISTS (SELECT 1 FROM {source} AS e WHERE {cond})")
}

/// A User's `groups` as the JSON array the API shows, built from the membership table for
/// the row being filtered (`scim_resources`), so `groups.value eq "…"` and
/// `groups[display eq "…"]` work although `groups` is not stored in the document.
const USER_GROUPS_SOURCE: &str = "json_each((SELECT json_group_array(json_object('value', \
    m.group_id, 'display', g.display_name, 'type', 'direct')) FROM scim_group_members AS m \
    JOIN scim_resources AS g ON g.id = m.group_id WHERE m.member_id = scim_resources.id))";

/// SQL that is true when the JSON at `path` within `base` is present for `pr`.
fn present(base: &str, path: &str) -> String {
    let t = format!("json_type({base}, '{path}')");
    let v = format!("json_extract({base}, '{path}')");
    format!(
        "(CASE {t} WHEN 'null' THEN 0 WHEN 'text' THEN {v} <> '' \
         WHEN 'array' THEN json_array_length({base}, '{path}') > 0 \
         WHEN 'object' THEN {v} <> '{{}}' ELSE {t} IS NOT NULL END)"
    )
}

/// Where the elements of a multi-valued attribute come from: `json_each` over the document,
/// or the membership table for a computed `groups`.
fn array_source(
    resolver: &dyn AttributeResolver,
    rp: &ResolvedPath,
) -> Result<String, FilterError> {
    if resolver.computed(rp) == Some(Computed::UserGroups) {
        return Ok(USER_GROUPS_SOURCE.to_string());
    }
    let mut keys: Vec<&str> = rp.extension.iter().map(String::as_str).collect();
    keys.push(&rp.attr.name);
    Ok(format!("json_each(doc, '{}')", json_path(&keys)?))
}

fn element_path(prefix: &[String], sub: &str) -> Result<String, FilterError> {
    let mut keys: Vec<&str> = prefix.iter().map(String::as_str).collect();
    keys.push(sub);
    json_path(&keys)
}

/// A SQLite JSON path (`$.name.givenName`, `$."urn:...:User".manager.value`) for canonical
/// keys; refuses keys that could break out of the quoting.
fn json_path(keys: &[&str]) -> Result<String, FilterError> {
    let mut path = String::from("$");
    for key in keys {
        let plain = key
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if plain {
            path.push('.');
            path.push_str(key);
        } else if key.is_empty()
            || key
                .chars()
                .any(|c| matches!(c, '"' | '\'' | '\\') || c.is_control())
        {
            return Err(FilterError::Invalid(format!(
                "attribute name {key:?} cannot be used in a SQL JSON path"
            )));
        } else {
            path.push_str(".\"");
            path.push_str(key);
            path.push('"');
        }
    }
    Ok(path)
}

fn checked_column(column: &'static str) -> Result<&'static str, FilterError> {
    let ok = column
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && column
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(column)
    } else {
        Err(FilterError::Invalid(format!(
            "column name {column:?} is not a plain SQL identifier"
        )))
    }
}

/// The ORDER BY expression for `sortBy` (RFC 7644 §3.4.2.3): the indexed column when there
/// is one, else the JSON value; a multi-valued attribute sorts by its first value's
/// `value` (or the sub-attribute named). Case-insensitive attributes sort case-insensitively.
pub fn sort_expression(path: &ResolvedPath, resolver: &dyn AttributeResolver) -> String {
    let folded = |x: String| {
        if !folds_case(path.leaf()) {
            x
        } else {
            format!("{FOLD}({x})")
        }
    };
    if folds_case(path.leaf())
        && let Some(col) = resolver
            .folded_column(path)
            .and_then(|c| checked_column(c).ok())
    {
        return col.to_string();
    }
    if let Some(col) = resolver.column(path).and_then(|c| checked_column(c).ok()) {
        return folded(col.to_string());
    }
    let mut keys: Vec<String> = path.extension.iter().cloned().collect();
    keys.push(path.attr.name.clone());
    let mut json = match json_path(&keys.iter().map(String::as_str).collect::<Vec<_>>()) {
        Ok(p) => p,
        Err(_) => return "id".to_string(),
    };
    if path.attr.multi_valued {
        json.push_str("[0]");
        let sub = path
            .sub
            .as_ref()
            .map(|s| s.name.as_str())
            .or_else(|| path.attr.sub("value").map(|v| v.name.as_str()));
        if let Some(sub) = sub {
            match json_path(&[sub]) {
                Ok(p) => json.push_str(&p[1..]),
                Err(_) => return "id".to_string(),
            }
        }
    } else if let Some(sub) = &path.sub {
        match json_path(&[sub.name.as_str()]) {
            Ok(p) => json.push_str(&p[1..]),
            Err(_) => return "id".to_string(),
        }
    }
    folded(format!("json_extract(doc, '{json}')"))
}

impl rusqlite::ToSql for SqlParam {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, Value as V};
        Ok(match self {
            SqlParam::Text(s) => {
                ToSqlOutput::Borrowed(rusqlite::types::ValueRef::Text(s.as_bytes()))
            }
            SqlParam::Integer(i) => ToSqlOutput::Owned(V::Integer(*i)),
            SqlParam::Real(f) => ToSqlOutput::Owned(V::Real(*f)),
            SqlParam::Bool(b) => ToSqlOutput::Owned(V::Integer(i64::from(*b))),
            SqlParam::Null => ToSqlOutput::Owned(V::Null),
        })
    }
}
