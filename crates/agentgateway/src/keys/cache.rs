//! The request path's view of the virtual keys: [`KeyCache`], an immutable digest -> identity map
//! swapped whole (`ArcSwap`) on every reload, so a lookup is one atomic load and a hash probe,
//! never a lock or a database query.
//!
//! Only keys that may authenticate are in it: revoked keys are left out, expiry stays the
//! authenticator's check (it needs the clock at request time, not at load time).

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use subtle::ConstantTimeEq;

use super::record::KeyRecord;
use crate::auth::{KeyDigest, KeyLookup};
use crate::identity::Identity;

type KeyMap = HashMap<KeyDigest, Arc<Identity>>;

#[derive(Default)]
pub struct KeyCache {
    keys: ArcSwap<KeyMap>,
}

// === impl KeyCache ===

impl KeyCache {
    pub fn new() -> KeyCache {
        KeyCache::default()
    }

    /// Number of keys that can authenticate.
    pub fn len(&self) -> usize {
        self.keys.load().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Replaces the whole map by `records` (revoked ones left out).
    pub fn replace(&self, records: &[KeyRecord]) {
        let map: KeyMap = records
            .iter()
            .filter(|record| !record.revoked)
            .map(|record| (record.digest, Arc::new(record.identity())))
            .collect();
        self.keys.store(Arc::new(map));
    }

    /// Applies one changed record: the fallback when a full reload after a write failed, so a
    /// revocation made here still takes effect at once.
    pub fn apply(&self, record: &KeyRecord) {
        let identity = (!record.revoked).then(|| Arc::new(record.identity()));
        self.keys.rcu(|current| {
            let mut map = KeyMap::clone(current);
            match &identity {
                Some(identity) => map.insert(record.digest, identity.clone()),
                None => map.remove(&record.digest),
            };
            map
        });
    }
}

impl KeyLookup for KeyCache {
    fn lookup(&self, presented: &KeyDigest) -> Option<Arc<Identity>> {
        let keys = self.keys.load();
        let (stored, identity) = keys.get_key_value(presented)?;
        // The hash probe already matched; the constant-time check keeps this path the same
        // as `auth::StaticKeys` so no lookup ever depends on a short-circuiting compare.
        bool::from(stored.ct_eq(presented)).then(|| identity.clone())
    }
}
