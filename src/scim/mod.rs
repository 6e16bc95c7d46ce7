//! SCIM 2.0 resource server (RFC 7643, RFC 7644) at `/scim/v2`: the wire rules (schema
//! registry, filter, PATCH), the resource service, and the HTTP handlers.
//!
//! - `attr`: attribute metadata, the contract between schema, filter and patch.
//! - `schema`: RFC 7643 definitions, normalisation of writes, projection of reads.
//! - `filter` (+ `filter_eval`): RFC 7644 §3.4.2.2 filters, parsed and evaluated in memory;
//!   their SQL translation is `store::scim_filter`.
//! - `patch` (+ `patch_value`): RFC 7644 §3.5.2 PATCH on stored documents.
//! - `value`: the value rules both write paths share (typing, `caseExact`, mutability).
//! - `service`: create/read/replace/patch/delete/query over the store.
//! - `render`: a stored document's answer written around its text (the IdPs' lookup);
//!   `forms`: the pass that lets documents stored by older versions be answered so too.
//! - `handlers`: the routes; `error`: SCIM error bodies; `json`: strict JSON bodies (a
//!   repeated key is an error).

pub mod attr;
pub mod cache;
pub mod domains;
pub mod error;
pub mod filter;
pub mod filter_eval;
pub mod forms;
pub mod handlers;
pub mod json;
pub mod patch;
mod patch_value;
pub mod render;
pub mod schema;
pub mod service;
pub mod value;

#[cfg(test)]
pub(crate) mod tests;
