//! Secrets at rest: connector credentials are sealed with AES-256-GCM under the master key
//! before they reach the store, and opened only by the sync engine.
//!
//! A sealed value is `nonce (12 bytes) || ciphertext || tag (16 bytes)`. The associated data
//! binds it to its row (tenant and connector name), so sealed credentials copied onto another
//! connector do not open.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};

use crate::ServiceError;

/// Master key length in bytes (AES-256).
pub const MASTER_KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;

/// The key credentials are sealed under. `Debug` never shows it.
#[derive(Clone)]
pub struct MasterKey(Key<Aes256Gcm>);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl MasterKey {
    /// A fresh random key (for a data directory's first start).
    pub fn generate() -> Result<Self, ServiceError> {
        let mut bytes = [0u8; MASTER_KEY_LEN];
        getrandom::fill(&mut bytes)
            .map_err(|err| ServiceError::Internal(format!("no randomness: {err}")))?;
        Ok(Self::from_bytes(bytes))
    }

    pub fn from_bytes(bytes: [u8; MASTER_KEY_LEN]) -> Self {
        Self(Key::<Aes256Gcm>::from(bytes))
    }

    /// The key's bytes, for writing a generated key to its file.
    pub fn expose_bytes(&self) -> &[u8] {
        self.0.as_slice()
    }

    pub fn seal(&self, plaintext: &[u8], bound_to: &[u8]) -> Result<Vec<u8>, ServiceError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce)
            .map_err(|err| ServiceError::Internal(format!("no randomness: {err}")))?;
        let cipher = Aes256Gcm::new(&self.0);
        let payload = Payload {
            msg: plaintext,
            aad: bound_to,
        };
        let sealed = cipher
            .encrypt(Nonce::from_slice(&nonce), payload)
            .map_err(|_| ServiceError::Internal("sealing failed".into()))?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Fails when the value was sealed under another key, for another row, or altered.
    pub fn open(&self, sealed: &[u8], bound_to: &[u8]) -> Result<Vec<u8>, ServiceError> {
        if sealed.len() < NONCE_LEN {
            return Err(ServiceError::Internal("sealed value too short".into()));
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let cipher = Aes256Gcm::new(&self.0);
        let payload = Payload {
            msg: ciphertext,
            aad: bound_to,
        };
        cipher
            .decrypt(Nonce::from_slice(nonce), payload)
            .map_err(|_| {
                ServiceError::Internal(
                "stored credentials do not open with this master key (wrong key or altered row)"
                    .into(),
            )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key_and_row() {
        let key = MasterKey::generate().unwrap();
        let sealed = key
            .seal(b"{\"api_key\":\"s3cret\"}", b"tenant/hive")
            .unwrap();
        assert!(
            !sealed.windows(6).any(|w| w == b"s3cret"),
            "ciphertext hides the secret"
        );
        assert_eq!(
            key.open(&sealed, b"tenant/hive").unwrap(),
            b"{\"api_key\":\"s3cret\"}"
        );
        assert!(
            key.open(&sealed, b"tenant/other").is_err(),
            "bound to its row"
        );
        assert!(
            MasterKey::generate()
                .unwrap()
                .open(&sealed, b"tenant/hive")
                .is_err()
        );
        let mut altered = sealed.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert!(key.open(&altered, b"tenant/hive").is_err());
        assert_ne!(
            key.seal(b"x", b"a").unwrap(),
            key.seal(b"x", b"a").unwrap(),
            "fresh nonce"
        );
        assert_eq!(format!("{key:?}"), "MasterKey(<redacted>)");
    }
}
