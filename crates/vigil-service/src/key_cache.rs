//! Recently verified API keys, so a busy client is not looked up in the store on every
//! request. Bounded in size and age; revocation through this process removes the entry at
//! once, and expiry is checked on every use. A revocation made elsewhere (another node, the
//! CLI) takes effect here within `API_KEY_CACHE_TTL`.

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
    entries: Mutex<HashMap<Sha256Hex, (ApiKey, Instant)>>,
}

impl KeyCache {
    pub(crate) fn get(&self, hash: &Sha256Hex) -> Option<ApiKey> {
        let entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (key, fetched_at) = entries.get(hash)?;
        (fetched_at.elapsed() < API_KEY_CACHE_TTL).then(|| key.clone())
    }

    pub(crate) fn put(&self, key: ApiKey) {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() >= API_KEY_CACHE_MAX {
            entries.clear();
        }
        entries.insert(key.hash.clone(), (key, Instant::now()));
    }

    pub(crate) fn forget(&self, id: ApiKeyId) {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        entries.retain(|_, (key, _)| key.id != id);
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
        cache.put(key.clone());
        assert_eq!(cache.get(&key.hash).map(|k| k.id), Some(key.id));
        cache.forget(key.id);
        assert!(cache.get(&key.hash).is_none());
    }

    #[test]
    fn entries_age_out() {
        let cache = KeyCache::default();
        let key = key();
        cache.entries.lock().unwrap().insert(
            key.hash.clone(),
            (key.clone(), Instant::now() - API_KEY_CACHE_TTL),
        );
        assert!(cache.get(&key.hash).is_none());
    }
}
