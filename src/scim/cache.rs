//! An in-memory cache of rendered SCIM resources (the JSON of a GET without
//! `attributes`/`excludedAttributes`), so the IdPs' most frequent call — GET a User or
//! Group by id — costs no SQL and no JSON work.
//!
//! Coherence: every write of this process goes through [`crate::scim::service`], which
//! calls [`ResourceCache::changed`]. The generation guard of [`crate::cache::Cache`] closes
//! the race between a reader that rendered a resource before a write and stores it after: a
//! put is dropped if any write happened since the reader started. Group writes and User
//! deletions change other resources (`groups`, `members`), so they clear everything; that
//! is rare next to reads. Another instance on the same store writes without telling this
//! one, so an entry is trusted for `token_cache_ttl` (1 s by default) only, like the
//! token and client caches. A lookup by `userName` or `externalId` uses an entry only at
//! the version the store just returned ([`crate::scim::service::Scim::list_point`]); a
//! User's `groups` changed by another instance (which leaves the User's version as it is)
//! still shows within the TTL.

use super::schema::ResourceKind;
use crate::cache::{Cache, Read};

/// Entries kept at most; the cache is cleared when full (simple, and bounded).
const CAPACITY: usize = 50_000;

/// A rendered resource and its version (the ETag).
#[derive(Debug, Clone)]
pub struct Cached {
    /// The JSON body, shared (cloning it copies nothing).
    pub json: actix_web::web::Bytes,
    pub version: i64,
}

/// See the module documentation: a [`Cache`] kept coherent by [`ResourceCache::changed`],
/// its entries trusted for a TTL. Keyed by id alone (ids are unique across resource types:
/// one table, one primary key), so a lookup by `&str` builds no key; the entry's type is
/// checked on the way out.
#[derive(Debug)]
pub struct ResourceCache(Cache<String, (ResourceKind, Cached)>);

impl ResourceCache {
    /// A cache trusting each rendering for `ttl` (zero: no cache).
    pub fn new(ttl: std::time::Duration) -> ResourceCache {
        ResourceCache(Cache::new(Some(ttl), CAPACITY))
    }

    /// Start rendering a resource; pass the result to [`ResourceCache::put`].
    pub fn begin(&self) -> Read {
        self.0.begin()
    }

    pub fn get(&self, kind: ResourceKind, id: &str) -> Option<Cached> {
        self.0
            .get(id)
            .filter(|(of, _)| *of == kind)
            .map(|(_, cached)| cached)
    }

    /// Keep a rendering begun at `read`; dropped if a write happened since.
    pub fn put(&self, kind: ResourceKind, id: &str, read: Read, value: Cached) {
        self.0.put(id.to_string(), (kind, value), read);
    }

    /// A write to the resource `id` happened (or is about to be committed).
    pub fn changed(&self, id: &str, affects_others: bool) {
        if affects_others {
            self.0.clear();
        } else {
            self.0.remove(id);
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
        let cache = ResourceCache::new(std::time::Duration::from_secs(60));
        let g = cache.begin();
        cache.changed("a", false);
        cache.put(ResourceKind::User, "a", g, c(1));
        assert!(cache.get(ResourceKind::User, "a").is_none());
        let g = cache.begin();
        cache.put(ResourceKind::User, "a", g, c(2));
        assert_eq!(cache.get(ResourceKind::User, "a").unwrap().version, 2);
        cache.put(ResourceKind::User, "b", g, c(3));
        cache.changed("g", true);
        assert!(cache.get(ResourceKind::User, "a").is_none());
        assert!(cache.get(ResourceKind::User, "b").is_none());
    }

    /// An entry answers only for its own resource type: a Group's GET of a User's id is
    /// not served the User.
    #[test]
    fn an_entry_answers_only_for_its_type() {
        let cache = ResourceCache::new(std::time::Duration::from_secs(60));
        cache.put(ResourceKind::User, "a", cache.begin(), c(1));
        assert!(cache.get(ResourceKind::Group, "a").is_none());
        assert_eq!(cache.get(ResourceKind::User, "a").unwrap().version, 1);
    }
}
