//! The matcher through its public API: extraction from events, then the index.

use std::net::IpAddr;

use proptest::prelude::*;
use serde_json::{Value, json};
use vigil_domain::{IndicatorKind, IndicatorValue};
use vigil_matcher::{
    CANDIDATES_PER_EVENT_MAX, Candidate, EVENT_DEPTH_MAX, Index, IndexedIndicator, candidates,
    scan_event,
};

/// `(kind, raw value, match_subdomains)`; an indicator's id is its position in the list.
type Catalogue<'a> = &'a [(&'a str, &'a str, bool)];

fn indexed(catalogue: Catalogue<'_>) -> Vec<IndexedIndicator> {
    (0u64..)
        .zip(catalogue)
        .map(|(id, (kind, raw, match_subdomains))| IndexedIndicator {
            id,
            value: IndicatorValue::parse(IndicatorKind::parse(kind).unwrap(), raw).unwrap(),
            match_subdomains: *match_subdomains,
        })
        .collect()
}

/// Matches of `event` against `catalogue` as sorted `(indicator id, field, value)`.
fn matches(index: &Index, event: &Value) -> Vec<(u64, String, String)> {
    let mut found = Vec::new();
    for candidate in candidates(event) {
        for id in index.matches(&candidate) {
            found.push((
                id,
                candidate.field().to_owned(),
                candidate.value().to_owned(),
            ));
        }
    }
    found.sort();
    found
}

fn check(catalogue: Catalogue<'_>, event: Value, expected: &[(u64, &str, &str)]) {
    let index = Index::build(indexed(catalogue));
    let expected: Vec<(u64, String, String)> = expected
        .iter()
        .map(|(id, field, value)| (*id, (*field).to_owned(), (*value).to_owned()))
        .collect();
    assert_eq!(matches(&index, &event), expected, "event {event}");
}

fn fields_of(event: Value) -> Vec<(String, String)> {
    candidates(&event)
        .into_iter()
        .map(|c| (c.field().to_owned(), c.value().to_owned()))
        .collect()
}

const SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

#[test]
fn exact_values_match_in_nested_dotted_and_flat_fields() {
    let iocs: Catalogue<'_> = &[("ipv4", "203.0.113.5", false)];
    check(
        iocs,
        json!({"destination": {"ip": "203.0.113.5"}}),
        &[(0, "destination.ip", "203.0.113.5")],
    );
    check(
        iocs,
        json!({"destination.ip": "203.0.113.5"}),
        &[(0, "destination.ip", "203.0.113.5")],
    );
    check(
        iocs,
        json!({"dst_ip": " 203.0.113.5 "}),
        &[(0, "dst_ip", "203.0.113.5")],
    );
    check(iocs, json!({"destination": {"ip": "203.0.113.6"}}), &[]);
}

#[test]
fn addresses_match_the_cidrs_that_contain_them() {
    let iocs: Catalogue<'_> = &[
        ("cidr", "198.51.100.0/24", false),
        ("cidr", "198.0.0.0/8", false),
        ("cidr", "2001:db8::/32", false),
    ];
    check(
        iocs,
        json!({"source.ip": "198.51.100.77"}),
        &[
            (0, "source.ip", "198.51.100.77"),
            (1, "source.ip", "198.51.100.77"),
        ],
    );
    check(
        iocs,
        json!({"source.ip": "198.52.0.1"}),
        &[(1, "source.ip", "198.52.0.1")],
    );
    check(
        iocs,
        json!({"client": {"ip": "2001:DB8::7"}}),
        &[(2, "client.ip", "2001:db8::7")],
    );
    check(iocs, json!({"source.ip": "199.0.0.1"}), &[]);
}

#[test]
fn ipv4_mapped_ipv6_event_addresses_match_ipv4_indicators() {
    check(
        &[("ipv4", "192.0.2.1", false)],
        json!({"server.ip": "::ffff:192.0.2.1"}),
        &[(0, "server.ip", "192.0.2.1")],
    );
}

#[test]
fn domains_match_subdomains_only_when_asked() {
    let iocs: Catalogue<'_> = &[
        ("domain", "evil.example", true),
        ("domain", "bad.example", false),
    ];
    check(
        iocs,
        json!({"dns": {"question": {"name": "A.B.Evil.Example."}}}),
        &[(0, "dns.question.name", "a.b.evil.example")],
    );
    check(
        iocs,
        json!({"url.domain": "evil.example"}),
        &[(0, "url.domain", "evil.example")],
    );
    check(iocs, json!({"url.domain": "notevil.example"}), &[]);
    check(
        iocs,
        json!({"domain": "bad.example"}),
        &[(1, "domain", "bad.example")],
    );
    check(iocs, json!({"domain": "www.bad.example"}), &[]);
}

#[test]
fn hashes_match_case_insensitively_in_hash_fields() {
    let iocs: Catalogue<'_> = &[("sha256", SHA256, false)];
    let upper = SHA256.to_ascii_uppercase();
    check(
        iocs,
        json!({"file": {"hash": {"sha256": upper}}}),
        &[(0, "file.hash.sha256", SHA256)],
    );
    check(
        iocs,
        json!({"related": {"hash": ["abc", SHA256]}}),
        &[(0, "related.hash", SHA256)],
    );
    check(iocs, json!({"file.hash.md5": SHA256}), &[]);
}

#[test]
fn other_kinds_match_in_their_fields() {
    let iocs: Catalogue<'_> = &[
        ("url", "http://evil.example/a?B=1", false),
        ("email", "Boss@evil.example", false),
        ("file_name", "evil.exe", false),
        ("registry_key", "HKEY_LOCAL_MACHINE\\Software\\Evil", false),
    ];
    check(
        iocs,
        json!({"url": {"full": "HTTP://EVIL.example/a?B=1"}}),
        &[(0, "url.full", "http://evil.example/a?B=1")],
    );
    check(
        iocs,
        json!({"email": {"from": {"address": ["Boss@EVIL.example"]}}}),
        &[(1, "email.from.address", "Boss@evil.example")],
    );
    check(
        iocs,
        json!({"process": {"name": "evil.exe"}}),
        &[(2, "process.name", "evil.exe")],
    );
    check(
        iocs,
        json!({"registry.path": "HKLM\\SOFTWARE\\evil"}),
        &[(3, "registry.path", "HKEY_LOCAL_MACHINE\\software\\evil")],
    );
}

#[test]
fn ocsf_observables_match_by_type_id() {
    let iocs: Catalogue<'_> = &[
        ("ipv4", "203.0.113.5", false),
        ("domain", "evil.example", false),
    ];
    let event = json!({"observables": [
        {"name": "dst_endpoint.ip", "type_id": 2, "value": "203.0.113.5"},
        {"name": "query.hostname", "type_id": 1, "value": "evil.example"},
        {"name": "actor.user.name", "type_id": 4, "value": "evil.example"},
        {"type_id": 2, "value": "203.0.113.5"},
    ]});
    check(
        iocs,
        event,
        &[
            (0, "dst_endpoint.ip", "203.0.113.5"),
            (0, "observables", "203.0.113.5"),
            (1, "query.hostname", "evil.example"),
        ],
    );
}

#[test]
fn message_and_unknown_keys_never_yield_candidates() {
    let event = json!({
        "message": "connection to 203.0.113.5 (evil.example)",
        "event": {"original": "203.0.113.5"},
        "user": {"name": "evil.example", "ip": "203.0.113.5"},
        "Destination.IP": "203.0.113.5",
        "destination": {"ip_x": "203.0.113.5", "port": 443, "ip": 42},
        "observables": [{"name": "x", "type_id": 3, "value": "203.0.113.5"}, "203.0.113.5"],
        "nested": {"observables": [{"type_id": 2, "value": "203.0.113.5"}]},
    });
    assert_eq!(fields_of(event), []);
    assert_eq!(fields_of(json!(["203.0.113.5"])), []);
    assert_eq!(fields_of(json!("203.0.113.5")), []);
}

#[test]
fn values_that_do_not_fit_the_field_are_skipped() {
    let event = json!({"source.ip": "evil.example", "dns.question.name": "203.0.113.5", "url.full": "evil.example/a"});
    assert_eq!(
        fields_of(event),
        [("dns.question.name".to_owned(), "203.0.113.5".to_owned())]
    );
}

#[test]
fn candidates_are_bounded_per_event() {
    let ips: Vec<String> = (0..CANDIDATES_PER_EVENT_MAX + 10)
        .map(|i| format!("10.0.{}.{}", i / 256, i % 256))
        .collect();
    assert_eq!(
        candidates(&json!({"related": {"ip": ips}})).len(),
        CANDIDATES_PER_EVENT_MAX
    );
}

#[test]
fn values_nested_deeper_than_the_limit_are_ignored() {
    let mut deep = json!("203.0.113.5");
    for _ in 0..EVENT_DEPTH_MAX + 2 {
        deep = json!([deep]);
    }
    assert_eq!(fields_of(json!({"related.ip": deep})), []);
    assert_eq!(fields_of(json!({"related.ip": [["203.0.113.5"]]})).len(), 1);
}

#[test]
fn candidate_kinds_include_cidr_for_addresses() {
    let candidate = Candidate::new(
        "source.ip",
        IndicatorValue::parse(IndicatorKind::Ipv4, "1.2.3.4").unwrap(),
    );
    let kinds: Vec<IndicatorKind> = candidate.kinds().iter().collect();
    assert_eq!(kinds, [IndicatorKind::Ipv4, IndicatorKind::Cidr]);
}

/// The reference semantics: a linear scan over the catalogue.
fn naive_matches(catalogue: &[IndexedIndicator], candidate: &Candidate) -> Vec<u64> {
    let seen = candidate.indicator_value();
    let contains = |net: IpAddr, len: u8, ip: IpAddr| match (net, ip) {
        (IpAddr::V4(net), IpAddr::V4(ip)) => {
            (net.to_bits() ^ ip.to_bits()).leading_zeros() >= u32::from(len)
        }
        (IpAddr::V6(net), IpAddr::V6(ip)) => {
            (net.to_bits() ^ ip.to_bits()).leading_zeros() >= u32::from(len)
        }
        _ => false,
    };
    let is_match = |indicator: &IndexedIndicator| {
        let value = &indicator.value;
        match (value.network(), seen.ip()) {
            (Some((net, len)), Some(ip)) => contains(net, len, ip),
            _ if value == seen => true,
            _ => {
                value.kind() == IndicatorKind::Domain
                    && seen.kind() == IndicatorKind::Domain
                    && indicator.match_subdomains
                    && seen.as_str().ends_with(&format!(".{}", value.as_str()))
            }
        }
    };
    catalogue
        .iter()
        .filter(|i| is_match(i))
        .map(|i| i.id)
        .collect()
}

fn ipv4_pool() -> impl Strategy<Value = String> {
    (0u8..4, 0u8..4, 0u8..8).prop_map(|(a, b, c)| format!("10.{a}.{b}.{c}"))
}

fn domain_pool() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec!["a", "b", "evil", "example", "com"]),
        1..4,
    )
    .prop_map(|labels| labels.join("."))
}

fn hash_pool() -> impl Strategy<Value = String> {
    (0u8..4).prop_map(|n| format!("{n:x}").repeat(64))
}

fn indicator() -> impl Strategy<Value = (IndicatorValue, bool)> {
    prop_oneof![
        ipv4_pool().prop_map(|ip| IndicatorValue::parse(IndicatorKind::Ipv4, &ip).unwrap()),
        (ipv4_pool(), 8u8..=32).prop_map(|(ip, len)| IndicatorValue::parse(
            IndicatorKind::Cidr,
            &format!("{ip}/{len}")
        )
        .unwrap()),
        domain_pool().prop_map(|d| IndicatorValue::parse(IndicatorKind::Domain, &d).unwrap()),
        hash_pool().prop_map(|h| IndicatorValue::parse(IndicatorKind::Sha256, &h).unwrap()),
    ]
    .prop_flat_map(|value| (Just(value), any::<bool>()))
}

fn event() -> impl Strategy<Value = Value> {
    let field = prop_oneof![
        ipv4_pool().prop_map(|ip| ("destination.ip", json!(ip))),
        ipv4_pool().prop_map(|ip| ("src_ip", json!(ip))),
        prop::collection::vec(ipv4_pool(), 0..3).prop_map(|ips| ("related.ip", json!(ips))),
        domain_pool().prop_map(|d| ("dns.question.name", json!(d.to_uppercase()))),
        domain_pool().prop_map(|d| ("message", json!(d))),
        hash_pool().prop_map(|h| ("file.hash.sha256", json!(h))),
        hash_pool().prop_map(|h| ("related.hash", json!([h]))),
    ];
    prop::collection::vec((field, any::<bool>()), 0..6).prop_map(|fields| {
        let mut event = serde_json::Map::new();
        for ((key, value), nested) in fields {
            insert_field(&mut event, key, value, nested);
        }
        Value::Object(event)
    })
}

/// Inserts `value` under the dotted `key`, as nested objects or as one dotted key.
fn insert_field(event: &mut serde_json::Map<String, Value>, key: &str, value: Value, nested: bool) {
    match key.split_once('.') {
        Some((head, rest)) if nested => {
            let child = event.entry(head).or_insert_with(|| json!({}));
            if let Value::Object(child) = child {
                insert_field(child, rest, value, nested);
            }
        }
        _ => {
            event.insert(key.to_owned(), value);
        }
    }
}

/// (field, value) of each candidate, sorted: the scan visits keys in text order, a parsed map
/// in key order.
fn sorted(candidates: &[Candidate]) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = candidates
        .iter()
        .map(|c| (c.field().to_owned(), c.value().to_owned()))
        .collect();
    pairs.sort();
    pairs
}

/// The scan must give what the tree walk gives, on the event's text.
fn same_as_tree(event: &Value) {
    let text = event.to_string();
    let scanned = scan_event(&text, true).unwrap_or_else(|err| panic!("{err}: {text}"));
    assert_eq!(
        sorted(&scanned.candidates),
        sorted(&candidates(event)),
        "{text}"
    );
}

#[test]
fn the_scan_reads_ids_and_keeps_the_limits() {
    let scanned = scan_event(r#"{"id": "top", "event": {"id": "inner"}}"#, true).unwrap();
    assert_eq!(scanned.event_id.as_deref(), Some("inner"));
    let scanned = scan_event(r#"{"id": 42, "event.kind": "alert"}"#, true).unwrap();
    assert_eq!(scanned.event_id.as_deref(), Some("42"));
    let scanned = scan_event(r#"{"id": ["x"], "event": {"id": ""}}"#, true).unwrap();
    assert_eq!(
        scanned.event_id, None,
        "arrays and empty strings are not ids"
    );
    assert!(scan_event("[1, 2]", false).is_err());
    assert!(scan_event("{\"a\": ", false).is_err());
    assert!(scan_event("{} {}", false).is_err(), "trailing data");

    let many: Vec<String> = (0..300)
        .map(|i| format!("10.0.{}.{}", i / 250, i % 250 + 1))
        .collect();
    let bounded = scan_event(&json!({"related": {"ip": many}}).to_string(), false).unwrap();
    assert_eq!(bounded.candidates.len(), CANDIDATES_PER_EVENT_MAX);
    let mut deep = json!("10.9.9.9");
    for _ in 0..EVENT_DEPTH_MAX {
        deep = json!([deep]);
    }
    same_as_tree(&json!({"related": {"ip": deep}}));
    same_as_tree(&json!({"observables": [
        {"name": "dst", "type_id": 2, "value": "10.1.1.1"},
        {"type_id": 1, "value": "Evil.Example"},
        {"type_id": 99, "value": "10.2.2.2"}, "junk", 7
    ], "message": "10.3.3.3", "x": {"y": [{"z": 1}]}}));
}

proptest! {
    #[test]
    fn the_scan_agrees_with_the_tree_walk(event in event()) {
        same_as_tree(&event);
    }

    #[test]
    fn index_agrees_with_the_naive_matcher(
        catalogue in prop::collection::vec(indicator(), 0..40),
        events in prop::collection::vec(event(), 1..8),
    ) {
        let catalogue: Vec<IndexedIndicator> = (0u64..)
            .zip(catalogue)
            .map(|(id, (value, match_subdomains))| IndexedIndicator { id, value, match_subdomains })
            .collect();
        let index = Index::build(catalogue.clone());
        prop_assert_eq!(index.len(), catalogue.len());
        for event in &events {
            for candidate in candidates(event) {
                prop_assert_ne!(candidate.field(), "message");
                let mut fast = index.matches(&candidate);
                let mut slow = naive_matches(&catalogue, &candidate);
                fast.sort_unstable();
                slow.sort_unstable();
                prop_assert_eq!(fast, slow, "candidate {:?}", candidate);
            }
        }
    }

    #[test]
    fn extraction_never_panics_on_arbitrary_string_values(
        key in prop::sample::select(vec!["source.ip", "dns.question.name", "url.full", "related.hash", "email.to.address", "registry.path", "file.name", "message", "junk"]),
        raw in "\\PC{0,60}",
    ) {
        for candidate in candidates(&json!({ key: raw })) {
            let reparsed = IndicatorValue::parse(candidate.indicator_value().kind(), candidate.value());
            prop_assert_eq!(reparsed.as_ref(), Ok(candidate.indicator_value()));
        }
    }
}
