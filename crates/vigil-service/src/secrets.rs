//! Secret material: API keys, refresh tokens and passwords. Secrets are `SecretString`s,
//! whose `Debug` prints `[REDACTED]`; only hashes are ever stored.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use vigil_domain::Sha256Hex;

use crate::{ServiceError, ServiceResult};

/// Every API key starts with this, so a leaked key is recognisable to secret scanners.
pub const API_KEY_PREFIX: &str = "vgl_";
/// Random bytes in an API key or refresh token: 256 bits.
const SECRET_BYTES: usize = 32;
/// Characters of a key kept in clear, so people can tell their keys apart.
const KEY_DISPLAY_PREFIX_LEN: usize = 12;
/// Shortest password accepted.
pub const PASSWORD_LEN_MIN: usize = 12;
/// Longest password accepted; bounds the work one login can cost.
pub const PASSWORD_LEN_MAX: usize = 1_024;

/// 256 random bits as URL-safe base64 (43 characters).
pub fn random_token() -> String {
    let mut bytes = [0_u8; SECRET_BYTES];
    getrandom::fill(&mut bytes).expect("the operating system's random source is available");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A freshly generated API key. Shown once, to whoever created it, then only its hash exists.
pub struct ApiKeySecret(SecretString);

impl ApiKeySecret {
    pub fn generate() -> Self {
        Self(SecretString::from(format!(
            "{API_KEY_PREFIX}{}",
            random_token()
        )))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    pub fn hash(&self) -> Sha256Hex {
        Sha256Hex::digest(self.expose().as_bytes())
    }

    pub fn display_prefix(&self) -> String {
        self.expose().chars().take(KEY_DISPLAY_PREFIX_LEN).collect()
    }
}

impl std::fmt::Debug for ApiKeySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKeySecret([REDACTED])")
    }
}

fn argon2() -> Argon2<'static> {
    // argon2id with the crate's defaults (19 MiB, 2 passes, 1 lane): OWASP's minimum.
    Argon2::default()
}

fn check_password_length(password: &str) -> ServiceResult<()> {
    let n_chars = password.chars().count();
    if !(PASSWORD_LEN_MIN..=PASSWORD_LEN_MAX).contains(&n_chars) {
        return Err(ServiceError::invalid(
            "password",
            format!("must be {PASSWORD_LEN_MIN} to {PASSWORD_LEN_MAX} characters long"),
        ));
    }
    Ok(())
}

/// Hashes a new password into a PHC string (argon2id, random salt).
pub fn hash_password(password: &SecretString) -> ServiceResult<String> {
    check_password_length(password.expose_secret())?;
    let mut salt = [0_u8; 16];
    getrandom::fill(&mut salt).map_err(|err| ServiceError::Internal(err.to_string()))?;
    let salt =
        SaltString::encode_b64(&salt).map_err(|err| ServiceError::Internal(err.to_string()))?;
    argon2()
        .hash_password(password.expose_secret().as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|err| ServiceError::Internal(err.to_string()))
}

/// Checks `password` against a stored PHC hash. With no hash (unknown user) it still spends
/// the same work on a dummy hash, so response time does not reveal which e-mails exist.
pub fn verify_password(password: &SecretString, stored: Option<&str>) -> bool {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let dummy = DUMMY.get_or_init(|| {
        hash_password(&SecretString::from("dummy-password-for-timing")).unwrap_or_default()
    });
    let candidate = password.expose_secret();
    if candidate.chars().count() > PASSWORD_LEN_MAX {
        return false;
    }
    let Ok(parsed) = PasswordHash::new(stored.unwrap_or(dummy)) else {
        return false;
    };
    argon2()
        .verify_password(candidate.as_bytes(), &parsed)
        .is_ok()
        && stored.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_are_prefixed_and_hash_stably() {
        let key = ApiKeySecret::generate();
        assert!(key.expose().starts_with(API_KEY_PREFIX));
        assert_eq!(key.expose().len(), API_KEY_PREFIX.len() + 43);
        assert_eq!(key.hash(), Sha256Hex::digest(key.expose().as_bytes()));
        assert!(!format!("{key:?}").contains(key.expose()));
    }

    #[test]
    fn password_round_trip_and_rejection() {
        let password = SecretString::from("correct horse battery");
        let hash = hash_password(&password).unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(&password, Some(&hash)));
        assert!(!verify_password(
            &SecretString::from("wrong horse battery"),
            Some(&hash)
        ));
        assert!(!verify_password(&password, None));
    }

    #[test]
    fn short_passwords_are_refused() {
        let err = hash_password(&SecretString::from("short")).unwrap_err();
        assert!(matches!(err, ServiceError::Invalid { ref field, .. } if field == "password"));
    }
}
