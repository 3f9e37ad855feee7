//! The compiled index: a tenant's indicators, arranged so that one candidate costs about one
//! hash probe.

use std::collections::BTreeMap;
use std::hash::Hash;
use std::net::IpAddr;

use vigil_domain::{IndicatorKind, IndicatorValue};

use crate::Candidate;
use crate::hash::FastMap as HashMap;

/// One indicator as the index sees it. Whether the indicator is active, revoked, expired or
/// suppressed is the caller's business: build the index from the indicators that may match
/// now, and rebuild it when that set changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedIndicator {
    /// The caller's key for the indicator, reported back on a match; opaque to the index.
    pub id: u64,
    pub value: IndicatorValue,
    /// For `domain` indicators: also match every subdomain (`evil.example` matches
    /// `a.evil.example`). Ignored for other kinds.
    pub match_subdomains: bool,
}

/// The ids stored under one key; most keys have one.
#[derive(Debug, Clone)]
enum Ids {
    One(u64),
    Many(Vec<u64>),
}

impl Ids {
    fn push(&mut self, id: u64) {
        match self {
            Ids::One(first) => *self = Ids::Many(vec![*first, id]),
            Ids::Many(ids) => ids.push(id),
        }
    }

    fn as_slice(&self) -> &[u64] {
        match self {
            Ids::One(id) => std::slice::from_ref(id),
            Ids::Many(ids) => ids,
        }
    }
}

fn insert<K: Hash + Eq>(map: &mut HashMap<K, Ids>, key: K, id: u64) {
    map.entry(key)
        .and_modify(|ids| ids.push(id))
        .or_insert(Ids::One(id));
}

/// CIDR networks of one prefix length, keyed by their network address bits.
#[derive(Debug, Clone)]
struct PrefixTable<K> {
    prefix_len: u8,
    networks: HashMap<K, Ids>,
}

/// Indicators compiled for matching. Immutable once built.
///
/// Lookups: exact kinds (hashes, URLs, e-mail addresses, file names, registry keys, domains
/// without subdomain matching) and addresses take one hash probe; an address is then probed
/// once per CIDR prefix length present in the catalogue (at most 25 for IPv4, 113 for IPv6);
/// a domain is probed once per label suffix when some domain indicator matches subdomains.
#[derive(Debug, Clone)]
pub struct Index {
    /// Text-keyed exact values, one map per kind (`IndicatorKind::index`).
    exact: Vec<HashMap<Box<str>, Ids>>,
    ipv4: HashMap<u32, Ids>,
    ipv6: HashMap<u128, Ids>,
    /// Longest prefix first.
    cidr_v4: Vec<PrefixTable<u32>>,
    cidr_v6: Vec<PrefixTable<u128>>,
    /// Domains that also match their subdomains.
    domain_suffixes: HashMap<Box<str>, Ids>,
    n_indicators: usize,
}

impl Index {
    pub fn build(indicators: impl IntoIterator<Item = IndexedIndicator>) -> Self {
        let mut index = Index {
            exact: vec![HashMap::default(); IndicatorKind::ALL.len()],
            ipv4: HashMap::default(),
            ipv6: HashMap::default(),
            cidr_v4: Vec::new(),
            cidr_v6: Vec::new(),
            domain_suffixes: HashMap::default(),
            n_indicators: 0,
        };
        let mut cidr_v4: BTreeMap<u8, HashMap<u32, Ids>> = BTreeMap::new();
        let mut cidr_v6: BTreeMap<u8, HashMap<u128, Ids>> = BTreeMap::new();
        for IndexedIndicator {
            id,
            value,
            match_subdomains,
        } in indicators
        {
            index.n_indicators += 1;
            match (value.kind(), value.ip(), value.network()) {
                (_, Some(IpAddr::V4(ip)), _) => insert(&mut index.ipv4, ip.to_bits(), id),
                (_, Some(IpAddr::V6(ip)), _) => insert(&mut index.ipv6, ip.to_bits(), id),
                (_, _, Some((IpAddr::V4(net), len))) => {
                    debug_assert!(len < 32 && net.to_bits() == mask_v4(net.to_bits(), len));
                    insert(cidr_v4.entry(len).or_default(), net.to_bits(), id);
                }
                (_, _, Some((IpAddr::V6(net), len))) => {
                    debug_assert!(len < 128 && net.to_bits() == mask_v6(net.to_bits(), len));
                    insert(cidr_v6.entry(len).or_default(), net.to_bits(), id);
                }
                (IndicatorKind::Domain, _, _) if match_subdomains => {
                    insert(&mut index.domain_suffixes, value.as_str().into(), id);
                }
                (kind, _, _) => insert(&mut index.exact[kind.index()], value.as_str().into(), id),
            }
        }
        index.cidr_v4 = prefix_tables(cidr_v4);
        index.cidr_v6 = prefix_tables(cidr_v6);
        index
    }

    /// How many indicators the index was built from.
    pub fn len(&self) -> usize {
        self.n_indicators
    }

    pub fn is_empty(&self) -> bool {
        self.n_indicators == 0
    }

    /// Calls `found` with the id of every indicator `candidate` matches. An indicator is
    /// reported once per candidate; the order is unspecified.
    pub fn for_each_match(&self, candidate: &Candidate, mut found: impl FnMut(u64)) {
        let mut report = |ids: Option<&Ids>| {
            ids.into_iter()
                .flat_map(Ids::as_slice)
                .for_each(|id| found(*id));
        };
        let value = candidate.indicator_value();
        match (value.kind(), value.ip(), value.network()) {
            (_, Some(IpAddr::V4(ip)), _) => {
                let bits = ip.to_bits();
                report(self.ipv4.get(&bits));
                for table in &self.cidr_v4 {
                    report(table.networks.get(&mask_v4(bits, table.prefix_len)));
                }
            }
            (_, Some(IpAddr::V6(ip)), _) => {
                let bits = ip.to_bits();
                report(self.ipv6.get(&bits));
                for table in &self.cidr_v6 {
                    report(table.networks.get(&mask_v6(bits, table.prefix_len)));
                }
            }
            // A CIDR candidate (not produced by extraction) matches the identical network.
            (_, _, Some((IpAddr::V4(net), len))) => report(
                self.cidr_v4
                    .iter()
                    .find(|table| table.prefix_len == len)
                    .and_then(|table| table.networks.get(&net.to_bits())),
            ),
            (_, _, Some((IpAddr::V6(net), len))) => report(
                self.cidr_v6
                    .iter()
                    .find(|table| table.prefix_len == len)
                    .and_then(|table| table.networks.get(&net.to_bits())),
            ),
            (kind, _, _) => {
                report(self.exact[kind.index()].get(value.as_str()));
                if kind == IndicatorKind::Domain && !self.domain_suffixes.is_empty() {
                    for suffix in label_suffixes(value.as_str()) {
                        report(self.domain_suffixes.get(suffix));
                    }
                }
            }
        }
    }

    /// The ids of the indicators `candidate` matches (see [`Index::for_each_match`]).
    pub fn matches(&self, candidate: &Candidate) -> Vec<u64> {
        let mut ids = Vec::new();
        self.for_each_match(candidate, |id| ids.push(id));
        ids
    }
}

fn prefix_tables<K>(by_len: BTreeMap<u8, HashMap<K, Ids>>) -> Vec<PrefixTable<K>> {
    by_len
        .into_iter()
        .rev()
        .map(|(prefix_len, networks)| PrefixTable {
            prefix_len,
            networks,
        })
        .collect()
}

/// `name` and each of its parent domains: `a.b.c`, `b.c`, `c`.
fn label_suffixes(name: &str) -> impl Iterator<Item = &str> {
    std::iter::once(name).chain(name.match_indices('.').map(|(i, _)| &name[i + 1..]))
}

fn mask_v4(bits: u32, prefix_len: u8) -> u32 {
    debug_assert!(prefix_len <= 32);
    bits & !(u32::MAX.checked_shr(u32::from(prefix_len)).unwrap_or(0))
}

fn mask_v6(bits: u128, prefix_len: u8) -> u128 {
    debug_assert!(prefix_len <= 128);
    bits & !(u128::MAX.checked_shr(u32::from(prefix_len)).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_keep_the_prefix_bits() {
        assert_eq!(mask_v4(0x0a01_0203, 8), 0x0a00_0000);
        assert_eq!(mask_v4(0x0a01_0203, 32), 0x0a01_0203);
        assert_eq!(mask_v4(0x0a01_0203, 0), 0);
        assert_eq!(mask_v6(u128::MAX, 1), 1 << 127);
        assert_eq!(mask_v6(u128::MAX, 128), u128::MAX);
    }

    #[test]
    fn label_suffixes_walk_towards_the_root() {
        let suffixes: Vec<&str> = label_suffixes("a.b.evil.com").collect();
        assert_eq!(suffixes, ["a.b.evil.com", "b.evil.com", "evil.com", "com"]);
    }
}
