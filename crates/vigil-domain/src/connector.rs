//! Connectors: the per-tenant configuration of one upstream source the sync engine pulls
//! from (TheHive, OpenCTI, OpenRMF, a TAXII collection). Credentials are not part of this
//! type: the service seals them and the store keeps only the sealed bytes.

use std::fmt;

use crate::{DeadLetterId, ParseError, Severity, Sha256Hex, TenantId, Timestamp};

/// Longest dead-letter error kept, in characters.
pub const DEAD_LETTER_ERROR_LEN_MAX: usize = 1_000;

/// Shortest sync interval, in seconds.
pub const SYNC_INTERVAL_MIN_SECONDS: u32 = 10;
/// Longest sync interval, in seconds (one day).
pub const SYNC_INTERVAL_MAX_SECONDS: u32 = 86_400;
/// Longest connector URL, in bytes.
pub const CONNECTOR_URL_LEN_MAX: usize = 2_048;
/// Most options on one connector.
pub const CONNECTOR_OPTIONS_MAX: usize = 32;
/// Longest option name or value, in characters.
pub const CONNECTOR_OPTION_LEN_MAX: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectorKind {
    TheHive,
    OpenCti,
    OpenRmf,
    Taxii,
}

impl ConnectorKind {
    pub const ALL: [ConnectorKind; 4] = [
        ConnectorKind::TheHive,
        ConnectorKind::OpenCti,
        ConnectorKind::OpenRmf,
        ConnectorKind::Taxii,
    ];

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == raw)
            .ok_or_else(|| {
                ParseError::new("kind", "expected one of thehive, opencti, openrmf, taxii")
            })
    }

    /// The kind whose name `source` is: such sources are the sync engine's alone, so that
    /// nobody can forge a record the engine would then reconcile as its own.
    pub fn reserving(source: &crate::Source) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == source.as_str())
    }

    /// Also the `source` of the records it syncs.
    pub fn as_str(&self) -> &'static str {
        match self {
            ConnectorKind::TheHive => "thehive",
            ConnectorKind::OpenCti => "opencti",
            ConnectorKind::OpenRmf => "openrmf",
            ConnectorKind::Taxii => "taxii",
        }
    }
}

impl fmt::Display for ConnectorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A connector's name, unique in its tenant: 1–64 characters of a-z, 0-9, `-` and `_`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectorName(String);

impl ConnectorName {
    pub const LEN_MAX: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let valid = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_';
        if raw.is_empty() || raw.len() > Self::LEN_MAX || !raw.bytes().all(valid) {
            return Err(ParseError::new(
                "name",
                "must be 1 to 64 characters of a-z, 0-9, '-' and '_'",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ConnectorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An upstream base URL: `https://` or `http://`, a host, no credentials, query or fragment
/// in it (paths are appended to it, so a `?` or `#` would swallow them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceUrl(String);

impl SourceUrl {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let raw = raw.trim();
        let invalid = |reason: &str| Err(ParseError::new("url", reason.to_owned()));
        if raw.len() > CONNECTOR_URL_LEN_MAX {
            return invalid("is too long");
        }
        let Some(rest) = raw
            .strip_prefix("https://")
            .or_else(|| raw.strip_prefix("http://"))
        else {
            return invalid("must start with https:// or http://");
        };
        if raw.contains(['?', '#']) {
            return invalid("must not carry a query or fragment (`?`, `#`)");
        }
        let authority = rest.split('/').next().unwrap_or_default();
        if authority.is_empty() {
            return invalid("has no host");
        }
        if authority.contains('@') {
            return invalid("must not carry credentials; put them in `credentials`");
        }
        if raw.chars().any(|c| c.is_control() || c == ' ') {
            return invalid("must not contain spaces or control characters");
        }
        Ok(Self(raw.trim_end_matches('/').to_owned()))
    }

    /// Without a trailing slash.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Scheme, host and port, lowercase, the port explicit (`https://hive.example:443`): what
    /// a credential is bound to. Paths may change under one origin; the origin may not
    /// change without the credentials being entered again.
    pub fn origin(&self) -> String {
        let (scheme, rest) = self.0.split_once("://").unwrap_or(("https", &self.0));
        let scheme = scheme.to_ascii_lowercase();
        let authority = rest
            .split('/')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let default_port = if scheme == "https" { "443" } else { "80" };
        // An IPv6 literal's colons are inside its brackets; a port follows the last `]`.
        let host_end = authority.rfind(']').map_or(0, |i| i + 1);
        let has_port = authority[host_end..].contains(':');
        if has_port {
            format!("{scheme}://{authority}")
        } else {
            format!("{scheme}://{authority}:{default_port}")
        }
    }
}

/// How often a connector runs, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct SyncInterval(u32);

impl SyncInterval {
    pub fn parse(raw: i64) -> Result<Self, ParseError> {
        match u32::try_from(raw) {
            Ok(s) if (SYNC_INTERVAL_MIN_SECONDS..=SYNC_INTERVAL_MAX_SECONDS).contains(&s) => {
                Ok(Self(s))
            }
            _ => Err(ParseError::new(
                "interval_s",
                format!(
                    "must be an integer from {SYNC_INTERVAL_MIN_SECONDS} to {SYNC_INTERVAL_MAX_SECONDS}"
                ),
            )),
        }
    }

    pub fn seconds(&self) -> u32 {
        self.0
    }
}

/// String options of a connector (`organisation`, `api_root`, `collection`, …), sorted by
/// name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectorOptions(Vec<(String, String)>);

impl ConnectorOptions {
    pub fn parse(raw: impl IntoIterator<Item = (String, String)>) -> Result<Self, ParseError> {
        let mut options: Vec<(String, String)> = raw.into_iter().collect();
        if options.len() > CONNECTOR_OPTIONS_MAX {
            return Err(ParseError::new(
                "options",
                format!("at most {CONNECTOR_OPTIONS_MAX} options"),
            ));
        }
        for (name, value) in &options {
            if name.is_empty()
                || name.chars().count() > CONNECTOR_OPTION_LEN_MAX
                || value.chars().count() > CONNECTOR_OPTION_LEN_MAX
                || name.chars().chain(value.chars()).any(char::is_control)
            {
                return Err(ParseError::new(
                    "options",
                    format!(
                        "names and values are 1-{CONNECTOR_OPTION_LEN_MAX} characters without control characters"
                    ),
                ));
            }
        }
        options.sort();
        options.dedup_by(|a, b| a.0 == b.0);
        Ok(Self(options))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

/// A connector as configured. Every stored connector has sealed credentials;
/// the credentials themselves never leave the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connector {
    pub tenant_id: TenantId,
    pub name: ConnectorName,
    pub kind: ConnectorKind,
    pub url: SourceUrl,
    pub enabled: bool,
    pub interval: SyncInterval,
    /// Incidents below this severity are skipped and counted (default high).
    pub threshold: Severity,
    pub options: ConnectorOptions,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// An upstream record that did not map or could not be stored: kept with its payload so that
/// it can be replayed once the cause is fixed. One per (tenant, connector, external id); a
/// repeated failure counts another attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub id: DeadLetterId,
    pub tenant_id: TenantId,
    pub connector: ConnectorName,
    pub external_id: String,
    pub error: String,
    pub attempts: u32,
    /// The record as the source sent it (JSON).
    pub payload: String,
    pub payload_digest: Sha256Hex,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl DeadLetter {
    pub fn new(
        tenant_id: TenantId,
        connector: ConnectorName,
        external_id: String,
        error: &str,
        payload: String,
        now: Timestamp,
    ) -> Self {
        Self {
            id: DeadLetterId::generate(),
            tenant_id,
            connector,
            external_id,
            error: error.chars().take(DEAD_LETTER_ERROR_LEN_MAX).collect(),
            attempts: 1,
            payload_digest: Sha256Hex::digest(payload.as_bytes()),
            payload,
            created_at: now,
            updated_at: now,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_refuse_embedded_credentials_and_other_schemes() {
        assert_eq!(
            SourceUrl::parse("https://hive.example:9000/")
                .unwrap()
                .as_str(),
            "https://hive.example:9000"
        );
        assert!(SourceUrl::parse("ftp://hive.example").is_err());
        assert!(SourceUrl::parse("https://user:pw@hive.example").is_err());
        assert!(SourceUrl::parse("https:///path").is_err());
    }

    #[test]
    fn a_base_url_with_a_query_or_fragment_is_refused() {
        for raw in [
            "https://hive.example/?a=1",
            "https://hive.example#x",
            "https://h.example/p?",
        ] {
            let err = SourceUrl::parse(raw).unwrap_err();
            assert!(
                err.to_string().contains("query or fragment"),
                "{raw}: {err}"
            );
        }
    }

    #[test]
    fn the_origin_is_scheme_host_and_port() {
        let origin = |raw: &str| SourceUrl::parse(raw).unwrap().origin();
        assert_eq!(
            origin("https://Hive.Example/thehive"),
            "https://hive.example:443"
        );
        assert_eq!(
            origin("http://hive.example:9000/x"),
            "http://hive.example:9000"
        );
        assert_eq!(origin("http://[::1]/x"), "http://[::1]:80");
        assert_eq!(origin("http://[::1]:8080"), "http://[::1]:8080");
        assert_eq!(
            origin("https://a.example/one"),
            origin("https://a.example:443/two")
        );
        assert_ne!(origin("https://a.example"), origin("http://a.example"));
    }

    #[test]
    fn names_kinds_and_intervals_are_checked() {
        assert!(ConnectorName::parse("hive-prod_1").is_ok());
        assert!(ConnectorName::parse("Hive").is_err());
        assert!(ConnectorName::parse("").is_err());
        for kind in ConnectorKind::ALL {
            assert_eq!(ConnectorKind::parse(kind.as_str()), Ok(kind));
        }
        assert!(SyncInterval::parse(9).is_err());
        assert!(SyncInterval::parse(300).is_ok());
        assert!(SyncInterval::parse(86_401).is_err());
    }

    #[test]
    fn options_are_sorted_and_bounded() {
        let options = ConnectorOptions::parse([
            ("organisation".to_owned(), "acme".to_owned()),
            ("api_root".to_owned(), "/taxii/".to_owned()),
        ])
        .unwrap();
        assert_eq!(options.get("organisation"), Some("acme"));
        assert_eq!(options.iter().next().map(|(n, _)| n), Some("api_root"));
        assert!(ConnectorOptions::parse([(String::new(), "x".to_owned())]).is_err());
    }
}
