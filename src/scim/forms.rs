//! The pass that vouches for SCIM documents stored before their form was recorded.
//!
//! A reader answers with a document's stored text, `id`, `groups` and `meta` spliced in
//! ([`super::render`]), only when its row says the text is in the store's current form
//! (`scim_resources.doc_form`, [`crate::store::DOC_FORM`]). Every write through the
//! service stores that form; rows written before the column existed (an upgraded store)
//! hold 0, and would take the full path (parse, render, project) until their next write:
//! in a directory whose Users seldom change, most of them, for good.
//!
//! So the server runs this pass once per form, on a thread of its own, from its start: it
//! reads the rows in an older form in batches, in the order of their ids, and marks a row
//! in the current form when its full rendering is exactly what writing around its text
//! gives ([`Scim::renders_as_stored`]), only while the row is still at the version read.
//! Its text, version and `meta.lastModified` stay as they are. A row whose text is not in
//! that form (a null or an empty list an older version kept, keys out of order) stays as
//! it is, rendered in full. When a pass has read every row, the store records it
//! ([`Store::set_scim_forms_checked`]) and later starts skip the pass. One stopped by a
//! shutdown, or by a store error, is run again at the next start.
//!
//! It takes at most half of one core: after each batch it waits as long as the batch took.

use std::time::{Duration, Instant};

use super::cache::ResourceCache;
use super::schema::SchemaRegistry;
use super::service::Scim;
use crate::store::{Store, StoreError};
use crate::sync::{Background, Stop};
use crate::time::Clock;

/// How many rows one batch reads (and at most marks, in one transaction).
pub const BATCH: usize = 256;

/// What a pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    /// Rows read in an older form.
    pub read: usize,
    /// Of those, the rows now marked in the current form.
    pub vouched: usize,
    /// Whether it read every row (and the store recorded so).
    pub finished: bool,
}

/// Run the pass on `store` until it has read every row in an older form, or `stop` says
/// to stop. `None` when an earlier pass finished for the current form.
pub fn run(store: &Store, clock: &Clock, stop: &Stop) -> Result<Option<Report>, StoreError> {
    if store.scim_forms_checked()? {
        return Ok(None);
    }
    // Rendering reads nothing from the cache, and `meta.location` is the same text in the
    // two renderings compared.
    let cache = ResourceCache::new(Duration::ZERO);
    let scim = Scim {
        store,
        registry: SchemaRegistry::builtin(),
        base_url: "",
        clock,
        cache: &cache,
        domains: None,
    };
    let mut report = Report::default();
    let mut after = String::new();
    while !stop.stopped() {
        let began = Instant::now();
        let rows = store.scim_in_older_forms(&after, BATCH)?;
        let Some(last) = rows.last() else {
            store.set_scim_forms_checked()?;
            report.finished = true;
            break;
        };
        after = last.id.clone();
        report.read += rows.len();
        let vouched: Vec<(String, i64)> = rows
            .into_iter()
            .filter_map(|row| {
                let key = (row.id.clone(), row.version);
                scim.renders_as_stored(row).then_some(key)
            })
            .collect();
        if !vouched.is_empty() {
            report.vouched += store.scim_vouch_for(&vouched)?;
        }
        if stop.wait(began.elapsed()) {
            break;
        }
    }
    Ok(Some(report))
}

/// Start the pass on its own thread (see the module's documentation); it logs what it
/// did. `None` if the thread could not be started (the rows then keep their form).
pub fn start(store: std::sync::Arc<Store>, clock: Clock) -> Option<Background> {
    Background::spawn("scim-forms", move |stop| {
        let began = Instant::now();
        match run(&store, &clock, stop) {
            Ok(None) => {}
            Ok(Some(r)) => tracing::info!(
                read = r.read,
                vouched = r.vouched,
                rendered_in_full = r.read - r.vouched,
                finished = r.finished,
                ms = began.elapsed().as_millis() as u64,
                "SCIM documents stored in an older form checked"
            ),
            Err(e) => tracing::warn!(
                error = %e,
                "the pass over SCIM documents stored in an older form stopped; it runs again at the next start"
            ),
        }
    })
    .inspect_err(|e| tracing::warn!(error = %e, "cannot start the pass over older SCIM documents"))
    .ok()
}
