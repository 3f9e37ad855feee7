//! Access tokens: compact JWTs signed with HMAC-SHA-256 (RFC 7519, RFC 7518 §3.2).
//!
//! Vigil only verifies tokens it issued itself, so it accepts exactly one header — `alg`
//! `HS256` — and rejects everything else, `alg: none` included, before looking at the
//! signature. The signature is compared in constant time by `hmac`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretSlice};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use vigil_domain::{Role, SessionId, TenantId, Timestamp, UserId};

/// Shortest signing key accepted: 256 bits, the size of the HMAC-SHA-256 output.
pub const JWT_KEY_LEN_MIN: usize = 32;
/// Longest token accepted, so a huge bearer header costs nothing to reject.
const TOKEN_LEN_MAX: usize = 4_096;
const ISSUER: &str = "vigil";

/// The HMAC key that signs access tokens.
pub struct JwtKey(SecretSlice<u8>);

impl JwtKey {
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, TokenError> {
        if bytes.len() < JWT_KEY_LEN_MIN {
            return Err(TokenError::KeyTooShort);
        }
        Ok(Self(SecretSlice::from(bytes)))
    }

    pub fn generate() -> Self {
        let mut bytes = vec![0_u8; JWT_KEY_LEN_MIN];
        getrandom::fill(&mut bytes).expect("the operating system's random source is available");
        Self(SecretSlice::from(bytes))
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(self.0.expose_secret()).expect("HMAC accepts any key length")
    }

    pub fn sign(&self, claims: &AccessClaims) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims serialize"));
        let signing_input = format!("{header}.{payload}");
        let mut mac = self.mac();
        mac.update(signing_input.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{signing_input}.{signature}")
    }

    /// Checks header, signature and expiry, in that order, and returns the claims.
    pub fn verify(&self, token: &str, now: Timestamp) -> Result<AccessClaims, TokenError> {
        if token.len() > TOKEN_LEN_MAX {
            return Err(TokenError::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let header: Header = decode_json(header)?;
        if header.alg != "HS256" {
            return Err(TokenError::Algorithm);
        }
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| TokenError::Malformed)?;
        let mut mac = self.mac();
        mac.update(&token.as_bytes()[..header_and_payload_len(token)]);
        mac.verify_slice(&signature)
            .map_err(|_| TokenError::Signature)?;
        let claims: AccessClaims = decode_json(payload)?;
        if claims.iss != ISSUER {
            return Err(TokenError::Malformed);
        }
        if now.unix_micros() / 1_000_000 >= claims.exp {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

impl std::fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtKey([REDACTED])")
    }
}

fn header_and_payload_len(token: &str) -> usize {
    token.rfind('.').unwrap_or(token.len())
}

fn decode_json<T: for<'de> Deserialize<'de>>(part: &str) -> Result<T, TokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| TokenError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)
}

#[derive(Deserialize)]
struct Header {
    alg: String,
}

/// What an access token asserts. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    iss: String,
    sub: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    tid: Option<String>,
    role: String,
    sid: String,
    iat: i64,
    exp: i64,
}

impl AccessClaims {
    pub fn new(
        user: UserId,
        tenant: Option<TenantId>,
        role: Role,
        session: SessionId,
        now: Timestamp,
        ttl_seconds: i64,
    ) -> Self {
        let iat = now.unix_micros() / 1_000_000;
        Self {
            iss: ISSUER.to_owned(),
            sub: user.to_string(),
            tid: tenant.map(|t| t.to_string()),
            role: role.as_str().to_owned(),
            sid: session.to_string(),
            iat,
            exp: iat + ttl_seconds,
        }
    }

    pub fn user(&self) -> Result<UserId, TokenError> {
        UserId::parse(&self.sub).map_err(|_| TokenError::Malformed)
    }

    pub fn tenant(&self) -> Result<Option<TenantId>, TokenError> {
        self.tid
            .as_deref()
            .map(TenantId::parse)
            .transpose()
            .map_err(|_| TokenError::Malformed)
    }

    pub fn role(&self) -> Result<Role, TokenError> {
        Role::parse(&self.role).map_err(|_| TokenError::Malformed)
    }

    pub fn session(&self) -> Result<SessionId, TokenError> {
        SessionId::parse(&self.sid).map_err(|_| TokenError::Malformed)
    }

    pub fn expires_at_seconds(&self) -> i64 {
        self.exp
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token is malformed")]
    Malformed,
    #[error("token algorithm is not accepted")]
    Algorithm,
    #[error("token signature does not verify")]
    Signature,
    #[error("token has expired")]
    Expired,
    #[error("signing key is shorter than 32 bytes")]
    KeyTooShort,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn claims(now: Timestamp) -> AccessClaims {
        AccessClaims::new(
            UserId::generate(),
            Some(TenantId::generate()),
            Role::Analyst,
            SessionId::generate(),
            now,
            900,
        )
    }

    fn forge(header: &str, claims: &AccessClaims, signature: &str) -> String {
        let header = URL_SAFE_NO_PAD.encode(header);
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap());
        format!("{header}.{payload}.{signature}")
    }

    #[test]
    fn signed_token_verifies() {
        let key = JwtKey::generate();
        let now = Timestamp::now();
        let claims = claims(now);
        assert_eq!(key.verify(&key.sign(&claims), now), Ok(claims));
    }

    #[test]
    fn token_signed_with_another_key_is_rejected() {
        let now = Timestamp::now();
        let token = JwtKey::generate().sign(&claims(now));
        assert_eq!(
            JwtKey::generate().verify(&token, now),
            Err(TokenError::Signature)
        );
    }

    #[test]
    fn alg_none_is_rejected() {
        let now = Timestamp::now();
        let token = forge(r#"{"alg":"none","typ":"JWT"}"#, &claims(now), "");
        assert_eq!(
            JwtKey::generate().verify(&token, now),
            Err(TokenError::Algorithm)
        );
    }

    #[test]
    fn expired_token_is_rejected() {
        let key = JwtKey::generate();
        let now = Timestamp::now();
        let token = key.sign(&claims(now));
        assert_eq!(
            key.verify(&token, now.plus_seconds(901)),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn tampered_payload_is_rejected() {
        let key = JwtKey::generate();
        let now = Timestamp::now();
        let token = key.sign(&claims(now));
        let mut parts: Vec<&str> = token.split('.').collect();
        let mut elevated = claims(now);
        elevated.role = "tenant-admin".into();
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&elevated).unwrap());
        parts[1] = &payload;
        assert_eq!(
            key.verify(&parts.join("."), now),
            Err(TokenError::Signature)
        );
    }

    proptest! {
        #[test]
        fn verify_never_panics_on_garbage(raw in "\\PC{0,300}") {
            let _ = JwtKey::generate().verify(&raw, Timestamp::now());
        }
    }
}
