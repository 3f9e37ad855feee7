//! The whitelist: which event fields carry indicator values, and which kinds a value there may
//! be. A key that is not in [`FIELDS`] never yields a candidate — in particular free text such
//! as `message`, where an indicator value is a mention, not an observation.
//!
//! Paths are ECS dotted paths (`destination.ip`), OCSF attribute paths (`dst_endpoint.ip`) or
//! the flat keys agents send (`dst_ip`); a nested object (`{"destination":{"ip":…}}`) and a
//! dotted key (`{"destination.ip":…}`) name the same path. Arrays take the path of the field
//! that holds them (`related.ip[]` is `related.ip`). OCSF `observables[]` entries are matched
//! by their `type_id` ([`OBSERVABLE_TYPES`]).
//!
//! Left out on purpose: `host.ip` and OCSF `device.ip` (the reporting machine's own address),
//! `file.path`/`process.executable` (no path indicator kind yet), `process.command_line`
//! (free text) and hashes other than MD5, SHA-1 and SHA-256. `registry.key` is hive-relative in
//! ECS, so it yields a candidate only when an agent writes the full path there.

use std::sync::OnceLock;

use crate::hash::FastMap;
use vigil_domain::IndicatorKind::{
    self, Cidr, Domain, Email, FileName, Ipv4, Ipv6, Md5, RegistryKey, Sha1, Sha256, Url,
};

const IP: &[IndicatorKind] = &[Ipv4, Ipv6];
/// Host fields hold a name or, without one, an address (ECS `url.domain`).
const HOST: &[IndicatorKind] = &[Domain, Ipv4, Ipv6];
const URL: &[IndicatorKind] = &[Url];
/// A hash of unknown algorithm: its length decides.
const HASH: &[IndicatorKind] = &[Md5, Sha1, Sha256];
const MD5: &[IndicatorKind] = &[Md5];
const SHA1: &[IndicatorKind] = &[Sha1];
const SHA256: &[IndicatorKind] = &[Sha256];
const EMAIL: &[IndicatorKind] = &[Email];
const FILE: &[IndicatorKind] = &[FileName];
const REGISTRY: &[IndicatorKind] = &[RegistryKey];

/// Every IOC-bearing field and the kinds its value is parsed as, first success wins; sorted
/// by path (bytewise) so lookups are a binary search. An IP address also matches `cidr`
/// indicators that contain it, so `cidr` never appears here.
pub const FIELDS: &[(&str, &[IndicatorKind])] = &[
    ("client.domain", HOST),
    ("client.ip", IP),
    ("client_ip", IP),
    ("dest_ip", IP),
    ("destination.domain", HOST),
    ("destination.ip", IP),
    ("destination.nat.ip", IP),
    ("dll.hash.md5", MD5),
    ("dll.hash.sha1", SHA1),
    ("dll.hash.sha256", SHA256),
    ("dns.question.name", HOST),
    ("dns.resolved_ip", IP),
    ("dns_query", HOST),
    ("domain", HOST),
    ("dst_endpoint.domain", HOST),
    ("dst_endpoint.hostname", HOST),
    ("dst_endpoint.ip", IP),
    ("dst_ip", IP),
    ("email.attachments.file.hash.md5", MD5),
    ("email.attachments.file.hash.sha1", SHA1),
    ("email.attachments.file.hash.sha256", SHA256),
    ("email.attachments.file.name", FILE),
    ("email.cc.address", EMAIL),
    ("email.from.address", EMAIL),
    ("email.reply_to.address", EMAIL),
    ("email.sender.address", EMAIL),
    ("email.to.address", EMAIL),
    ("email_from", EMAIL),
    ("email_to", EMAIL),
    ("file.hash.md5", MD5),
    ("file.hash.sha1", SHA1),
    ("file.hash.sha256", SHA256),
    ("file.name", FILE),
    ("file_name", FILE),
    ("hash", HASH),
    ("http.request.referrer", URL),
    ("http_request.url.hostname", HOST),
    ("http_request.url.url_string", URL),
    ("md5", MD5),
    ("network.forwarded_ip", IP),
    ("process.hash.md5", MD5),
    ("process.hash.sha1", SHA1),
    ("process.hash.sha256", SHA256),
    ("process.name", FILE),
    ("process.parent.hash.md5", MD5),
    ("process.parent.hash.sha1", SHA1),
    ("process.parent.hash.sha256", SHA256),
    ("process.parent.name", FILE),
    ("process_name", FILE),
    ("query.hostname", HOST),
    ("reg_key.path", REGISTRY),
    ("registry.key", REGISTRY),
    ("registry.path", REGISTRY),
    ("registry_key", REGISTRY),
    ("registry_path", REGISTRY),
    ("related.hash", HASH),
    ("related.hosts", HOST),
    ("related.ip", IP),
    ("server.domain", HOST),
    ("server.ip", IP),
    ("server_ip", IP),
    ("sha1", SHA1),
    ("sha256", SHA256),
    ("source.domain", HOST),
    ("source.ip", IP),
    ("source.nat.ip", IP),
    ("src_endpoint.ip", IP),
    ("src_ip", IP),
    ("tls.client.server_name", HOST),
    ("tls.sni", HOST),
    ("url", URL),
    ("url.domain", HOST),
    ("url.full", URL),
    ("url.original", URL),
];

/// OCSF observable `type_id`s that carry indicator values, with their OCSF names and the kinds
/// the `value` is parsed as. Objects other than Registry Key (Endpoint, File, Process, …) and
/// MAC, user name, subnet, command line, user agent and file path are not matched.
pub const OBSERVABLE_TYPES: &[(u64, &str, &[IndicatorKind])] = &[
    (1, "Hostname", HOST),
    (2, "IP Address", IP),
    (5, "Email Address", EMAIL),
    (6, "URL String", URL),
    (7, "File Name", FILE),
    (8, "Hash", HASH),
    (9, "Process Name", FILE),
    (28, "Registry Key", REGISTRY),
];

/// The key at the top of an event that holds OCSF observables.
pub const OBSERVABLES_KEY: &str = "observables";

/// What the walk needs to know about one path: the kinds of a field there, and whether some
/// field lies below it.
#[derive(Clone, Copy, Default)]
pub(crate) struct PathInfo {
    pub(crate) kinds: Option<&'static [IndicatorKind]>,
    pub(crate) has_below: bool,
}

/// Every field path and every proper prefix of one (`destination` for `destination.ip`), for
/// one hash probe per key instead of binary searches over strings.
fn paths() -> &'static FastMap<&'static str, PathInfo> {
    static PATHS: OnceLock<FastMap<&'static str, PathInfo>> = OnceLock::new();
    PATHS.get_or_init(|| {
        let mut paths: FastMap<&'static str, PathInfo> = FastMap::default();
        for (field, kinds) in FIELDS {
            paths.entry(field).or_default().kinds = Some(kinds);
            for (dot, _) in field.match_indices('.') {
                paths.entry(&field[..dot]).or_default().has_below = true;
            }
        }
        paths
    })
}

/// The kinds a value at `path` may be, or `None` when `path` is not an IOC-bearing field.
pub fn field_kinds(path: &str) -> Option<&'static [IndicatorKind]> {
    paths().get(path).and_then(|info| info.kinds)
}

/// Whether some field lies below `path` (`destination` → `destination.ip`): the walk skips
/// every other object without looking inside.
pub(crate) fn has_fields_below(path: &str) -> bool {
    paths().get(path).is_some_and(|info| info.has_below)
}

/// What lies at and below `path`; `None` when no field does.
pub(crate) fn path_info(path: &str) -> Option<PathInfo> {
    paths().get(path).copied()
}

/// The kinds an OCSF observable of `type_id` may be.
pub(crate) fn observable_kinds(type_id: u64) -> Option<&'static [IndicatorKind]> {
    OBSERVABLE_TYPES
        .iter()
        .find(|(id, _, _)| *id == type_id)
        .map(|(_, _, kinds)| *kinds)
}

/// Whether a candidate of `kind` can match an indicator of `indicator_kind`.
pub(crate) fn can_match(kind: IndicatorKind, indicator_kind: IndicatorKind) -> bool {
    kind == indicator_kind || (matches!(kind, Ipv4 | Ipv6) && indicator_kind == Cidr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_sorted_and_unique() {
        for pair in FIELDS.windows(2) {
            assert!(
                pair[0].0.as_bytes() < pair[1].0.as_bytes(),
                "{:?} before {:?}",
                pair[0].0,
                pair[1].0
            );
        }
    }

    #[test]
    fn every_listed_field_is_found() {
        for (field, kinds) in FIELDS {
            assert_eq!(field_kinds(field), Some(*kinds));
            assert!(!kinds.is_empty() && !kinds.contains(&Cidr));
        }
    }

    #[test]
    fn free_text_and_unknown_keys_are_not_fields() {
        for key in [
            "message",
            "event.original",
            "destination",
            "ip",
            "Destination.ip",
            "source.ip.x",
            "",
        ] {
            assert_eq!(field_kinds(key), None, "{key:?}");
        }
    }

    #[test]
    fn parents_of_fields_are_walked_and_others_are_not() {
        assert!(has_fields_below("destination"));
        assert!(has_fields_below("file.hash"));
        assert!(has_fields_below("email"));
        assert!(!has_fields_below("destination.ip"));
        assert!(!has_fields_below("dst"));
        assert!(!has_fields_below("message"));
        assert!(!has_fields_below("user"));
    }
}
