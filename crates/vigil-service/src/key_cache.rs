//! Recently verified API keys, so a busy client is not looked up in the store on every
//! request. Bounded in size and age; revocation through this process removes the entry at
//! once, and expiry is checked on every use. A revocation made elsewhere (another node, the
//! CLI) takes effect here within `API_KEY_CACHE_TTL`.
//!
//! A lookup that was in flight while a key was revoked must not put the key it read (still
//! unrevoked) back: every lookup takes a `Ticket` before it asks the store, every revocation
//! moves the cache to a new generation, and `put` keeps only answers read in the current one.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use vigil_domain::{ApiKeyId, Sha256Hex};
use vigil_store::ApiKey;

/// How long a verified key is trusted without asking the store again.
pub const API_KEY_CACHE_TTL: Duration = Duration::from_secs(1);
/// Keys remembered at most; when full, the cache starts over.
pub const API_KEY_CACHE_MAX: usize = 10_000;

#[derive(Default)]
pub(crate) struct KeyCache {
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    keys: HashMap<Sha256Hex, (ApiKey, Instant)>,
    /// Moves on with every revocation.
    generation: u64,
}

/// The cache's generation when a store lookup began.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket(u64);

impl KeyCache {
    /// Taken before asking the store, handed to `put` with the answer.
    pub(crate) fn ticket(&self) -> Ticket {
        Ticket(self.lock().generation)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn get(&self, hash: &Sha256Hex) -> Option<ApiKey> {
        let entries = self.lock();
        let (key, fetched_at) = entries.keys.get(hash)?;
        (fetched_at.elapsed() < API_KEY_CACHE_TTL).then(|| key.clone())
    }

    /// Remembers a key the store answered, unless a revocation happened since `ticket`.
    pub(crate) fn put(&self, key: ApiKey, ticket: Ticket) {
        let mut entries = self.lock();
        if entries.generation != ticket.0 {
            return;
        }
        if entries.keys.len() >= API_KEY_CACHE_MAX {
            entries.keys.clear();
        }
        entries.keys.insert(key.hash.clone(), (key, Instant::now()));
    }

    /// After a revocation committed: drops the key and turns away answers read before.
    pub(crate) fn forget(&self, id: ApiKeyId) {
        let mut entries = self.lock();
        entries.generation += 1;
        entries.keys.retain(|_, (key, _)| key.id != id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_domain::{Role, Timestamp};

    fn key() -> ApiKey {
        ApiKey {
            id: ApiKeyId::generate(),
            tenant_id: None,
            name: "k".into(),
            role: Role::PlatformAdmin,
            prefix: "vgl_x".into(),
            hash: Sha256Hex::digest(b"k"),
            expires_at: None,
            revoked_at: None,
            created_at: Timestamp::now(),
        }
    }

    #[test]
    fn forgotten_keys_are_looked_up_again() {
        let cache = KeyCache::default();
        let key = key();
        cache.put(key.clone(), cache.ticket());
        assert_eq!(cache.get(&key.hash).map(|k| k.id), Some(key.id));
        cache.forget(key.id);
        assert!(cache.get(&key.hash).is_none());
    }

    #[test]
    fn a_lookup_in_flight_during_a_revoke_is_not_cached() {
        let cache = KeyCache::default();
        let key = key();
        // The lookup reads the key (still unrevoked), the revoke commits and forgets it,
        // then the lookup's answer arrives: it must not admit the key again.
        let ticket = cache.ticket();
        cache.forget(key.id);
        cache.put(key.clone(), ticket);
        assert!(cache.get(&key.hash).is_none());
        cache.put(key.clone(), cache.ticket());
        assert!(
            cache.get(&key.hash).is_some(),
            "a lookup after the revoke is kept"
        );
    }

    #[test]
    fn entries_age_out() {
        let cache = KeyCache::default();
        let key = key();
        cache.entries.lock().unwrap().keys.insert(
            key.hash.clone(),
            (key.clone(), Instant::now() - API_KEY_CACHE_TTL),
        );
        assert!(cache.get(&key.hash).is_none());
    }
}
