//! An in-memory cache of rendered SCIM resources (the JSON of a GET without
//! `attributes`/`excludedAttributes`), so the IdPs' most frequent call — GET a User or
//! Group by id — costs no SQL and no JSON work.
//!
//! Coherence: only this server writes SCIM resources (the `config` CLI never does), and
//! every write goes through [`crate::scim::service`], which calls [`ResourceCache::changed`].
//! A generation counter closes the race between a reader that rendered a resource before
//! a write and stores it after: a put is dropped if any write happened since the reader
//! started. Group writes and User deletions change other resources (`groups`, `members`),
//! so they clear everything; that is rare next to reads.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::schema::ResourceKind;

/// Entries kept at most; the cache is cleared when full (simple, and bounded).
const CAPACITY: usize = 50_000;

/// A rendered resource and its version (the ETag).
#[derive(Debug, Clone)]
pub struct Cached {
    /// The JSON body, shared (cloning it copies nothing).
    pub json: actix_web::web::Bytes,
    pub version: i64,
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct ResourceCache {
    map: Mutex<HashMap<(ResourceKind, String), Cached>>,
    generation: AtomicU64,
}

impl ResourceCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(ResourceKind, String), Cached>> {
        crate::sync::lock(&self.map)
    }

    /// The current generation; pass it to [`ResourceCache::put`].
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn get(&self, kind: ResourceKind, id: &str) -> Option<Cached> {
        // Keys are (kind, String); a lookup by &str needs an owned key.
        self.lock().get(&(kind, id.to_string())).cloned()
    }

    /// Store a rendering made when the generation was `generation`; dropped if a write
    /// happened since.
    pub fn put(&self, kind: ResourceKind, id: &str, generation: u64, value: Cached) {
        let mut map = self.lock();
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        if map.len() >= CAPACITY {
            map.clear();
        }
        map.insert((kind, id.to_string()), value);
    }

    /// A write to `kind`/`id` happened (or is about to be committed).
    pub fn changed(&self, kind: ResourceKind, id: &str, affects_others: bool) {
        let mut map = self.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        if affects_others {
            map.clear();
        } else {
            map.remove(&(kind, id.to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(v: i64) -> Cached {
        Cached {
            json: actix_web::web::Bytes::from_static(b"{}"),
            version: v,
        }
    }

    #[test]
    fn a_put_after_a_write_is_dropped() {
        let cache = ResourceCache::default();
        let g = cache.generation();
        cache.changed(ResourceKind::User, "a", false);
        cache.put(ResourceKind::User, "a", g, c(1));
        assert!(cache.get(ResourceKind::User, "a").is_none());
        let g = cache.generation();
        cache.put(ResourceKind::User, "a", g, c(2));
        assert_eq!(cache.get(ResourceKind::User, "a").unwrap().version, 2);
        cache.put(ResourceKind::User, "b", g, c(3));
        cache.changed(ResourceKind::Group, "g", true);
        assert!(cache.get(ResourceKind::User, "a").is_none());
        assert!(cache.get(ResourceKind::User, "b").is_none());
    }
}
