//! A fast hasher for the matcher's maps: a word-at-a-time multiply-rotate hash (the FxHash
//! scheme) started from a per-process random seed. SipHash, the standard library's default,
//! was a tenth of the matching time.
//!
//! Collision resistance matters less here than in a general map: the keys are the catalogue's
//! and the whitelist's, not the caller's; telemetry only probes. The random seed still keeps
//! bucket positions from being predictable across processes.

use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;

const K: u64 = 0xf135_7aea_2e62_a9c5;

#[derive(Clone, Copy)]
pub(crate) struct FastHasher(u64);

impl FastHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(26) ^ word).wrapping_mul(K);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.add(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(last));
        }
        self.add(bytes.len() as u64);
    }

    #[inline]
    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    #[inline]
    fn write_u128(&mut self, n: u128) {
        self.add(n as u64);
        self.add((n >> 64) as u64);
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // Fold the high bits down: hashbrown takes its bucket from the low bits and its tag
        // from the top seven.
        self.0 ^ (self.0 >> 29)
    }
}

/// Builds [`FastHasher`]s from the process's seed.
#[derive(Clone, Copy)]
pub(crate) struct FastState(u64);

impl Default for FastState {
    fn default() -> Self {
        static SEED: OnceLock<u64> = OnceLock::new();
        FastState(*SEED.get_or_init(|| {
            // The standard library's per-process random keys, without a dependency.
            let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
            hasher.write_u64(0x5647);
            hasher.finish()
        }))
    }
}

impl BuildHasher for FastState {
    type Hasher = FastHasher;

    #[inline]
    fn build_hasher(&self) -> FastHasher {
        FastHasher(self.0)
    }
}

pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, FastState>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_keys_hash_equal_and_near_keys_apart() {
        let state = FastState::default();
        let hash = |s: &str| state.hash_one(s);
        assert_eq!(hash("evil.example"), hash("evil.example"));
        assert_ne!(hash("evil.example"), hash("evil.exampl"));
        assert_ne!(hash("a"), hash("a\\0"));
        let ips: std::collections::HashSet<u64> = (0u32..10_000)
            .map(|ip| state.hash_one(ip) & 0xffff)
            .collect();
        assert!(ips.len() > 8_000, "low bits spread: {}", ips.len());
    }
}
