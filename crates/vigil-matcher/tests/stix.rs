//! STIX 2.1 bundle import: bundles shaped like the OASIS `stix2` Python library's output.

use proptest::prelude::*;
use serde_json::{Value, json};
use vigil_domain::{IndicatorKind, IndicatorValue};
use vigil_matcher::{
    ObjectError, PatternError, STIX_COMPARISONS_MAX, StixError, StixImport, parse_bundle,
    parse_bundle_text,
};

const ID: &str = "indicator--2b05794a-39c6-4b52-8474-52597e531d23";
const SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const MD5: &str = "d41d8cd98f00b204e9800998ecf8427e";

/// An indicator as `stix2.Indicator(...).serialize()` writes it.
fn indicator(pattern: &str) -> Value {
    json!({
        "type": "indicator",
        "spec_version": "2.1",
        "id": ID,
        "created_by_ref": "identity--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
        "created": "2024-01-01T00:00:00.000Z",
        "modified": "2024-01-01T00:00:00.000Z",
        "indicator_types": ["malicious-activity"],
        "pattern": pattern,
        "pattern_type": "stix",
        "pattern_version": "2.1",
        "valid_from": "2024-01-01T00:00:00Z",
        "object_marking_refs": ["marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"]
    })
}

/// A bundle with an identity and the TLP:GREEN marking definition before `objects`.
fn bundle(objects: Vec<Value>) -> Value {
    let mut all = vec![
        json!({
            "type": "identity", "spec_version": "2.1",
            "id": "identity--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
            "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
            "name": "Example CERT", "identity_class": "organization"
        }),
        json!({
            "type": "marking-definition", "spec_version": "2.1",
            "id": "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",
            "created": "2017-01-20T00:00:00.000Z", "definition_type": "tlp",
            "name": "TLP:GREEN", "definition": {"tlp": "green"}
        }),
    ];
    all.extend(objects);
    json!({"type": "bundle", "id": "bundle--65496c4c-95a1-40bc-abb9-daf6e0c7cb43", "objects": all})
}

fn import(pattern: &str) -> StixImport {
    parse_bundle(&bundle(vec![indicator(pattern)])).expect("a bundle")
}

fn value(kind: IndicatorKind, raw: &str) -> IndicatorValue {
    IndicatorValue::parse(kind, raw).expect("a valid value")
}

/// The values imported from `pattern`, asserting nothing was rejected.
fn accepted(pattern: &str) -> Vec<IndicatorValue> {
    let import = import(pattern);
    assert_eq!(import.rejected, [], "{pattern}");
    assert_eq!(import.skipped_other, 2);
    assert!(import.indicators.iter().all(|i| i.source_ref == ID));
    import.indicators.into_iter().map(|i| i.value).collect()
}

/// The one rejection reason for `pattern`, asserting nothing was imported.
fn rejected(pattern: &str) -> String {
    rejection(pattern).to_string()
}

/// The one rejection for `pattern`, as the typed error.
fn rejection(pattern: &str) -> ObjectError {
    let import = import(pattern);
    assert_eq!(import.indicators, [], "{pattern}");
    assert_eq!(import.rejected.len(), 1, "{pattern}");
    let rejection = &import.rejected[0];
    assert_eq!(rejection.id.as_deref(), Some(ID));
    assert_eq!(rejection.index, 2);
    rejection.reason.clone()
}

#[test]
fn a_rejection_says_what_kind_of_problem_it_is() {
    let unsupported = |what: &str, only: Option<&'static str>| {
        ObjectError::Pattern(PatternError::Unsupported {
            what: what.to_owned(),
            only,
        })
    };
    assert_eq!(
        rejection("[file:name = 'a' AND file:name = 'b']"),
        unsupported("AND inside an observation", Some("OR"))
    );
    assert_eq!(
        rejection("[file:size > 10]"),
        unsupported("operator >", Some("="))
    );
    assert_eq!(
        rejection("[file:name = 'a'] WITHIN 5 SECONDS"),
        unsupported("qualifier WITHIN", None)
    );
    assert_eq!(
        rejection("[process:pid = '1']"),
        ObjectError::Pattern(PatternError::ObjectPath("process:pid".into()))
    );
    assert_eq!(
        rejection("[file:name = 'a"),
        ObjectError::Pattern(PatternError::Unterminated("string literal"))
    );
    assert_eq!(
        rejection("[file:name = 'a'"),
        ObjectError::Pattern(PatternError::Missing("']'"))
    );
    assert!(
        matches!(
            rejection("[ipv4-addr:value = '999.1.1.1']"),
            ObjectError::Value { ref path, .. } if path == "ipv4-addr:value"
        ),
        "a value its type refuses names the object path"
    );
    let text = rejected("[file:name = 'a' AND file:name = 'b']");
    assert_eq!(
        text,
        "pattern: AND inside an observation is not supported (only OR)"
    );
}

#[test]
fn simple_ipv4_with_its_metadata() {
    let mut object = indicator("[ipv4-addr:value = '203.0.113.7']");
    object["confidence"] = json!(85);
    object["valid_until"] = json!("2030-01-01T00:00:00Z");
    let import = parse_bundle(&bundle(vec![object])).expect("a bundle");
    assert_eq!(import.rejected, []);
    assert_eq!(import.skipped_other, 2);
    assert_eq!(import.indicators.len(), 1);
    let found = &import.indicators[0];
    assert_eq!(found.value, value(IndicatorKind::Ipv4, "203.0.113.7"));
    assert_eq!(found.source_ref, ID);
    assert_eq!(found.valid_from.as_deref(), Some("2024-01-01T00:00:00Z"));
    assert_eq!(found.valid_until.as_deref(), Some("2030-01-01T00:00:00Z"));
    assert_eq!(found.confidence, Some(85));
    assert!(!found.revoked);
}

#[test]
fn ip_cidrs_and_ipv6() {
    assert_eq!(
        accepted("[ipv4-addr:value = '10.1.0.0/16'] OR [ipv6-addr:value = '2001:DB8::1']"),
        [
            value(IndicatorKind::Cidr, "10.1.0.0/16"),
            value(IndicatorKind::Ipv6, "2001:db8::1"),
        ]
    );
    assert_eq!(
        accepted("[ipv6-addr:value = '2001:db8::/32']"),
        [value(IndicatorKind::Cidr, "2001:db8::/32")]
    );
}

#[test]
fn or_within_one_observation_and_across_observations() {
    let expected = [
        value(IndicatorKind::Domain, "evil.example"),
        value(IndicatorKind::Url, "http://evil.example/a?b=c"),
        value(IndicatorKind::Email, "x@evil.example"),
    ];
    assert_eq!(
        accepted(
            "[domain-name:value = 'Evil.Example.' OR url:value = 'http://evil.example/a?b=c' \
             OR email-addr:value = 'x@evil.example']"
        ),
        expected
    );
    assert_eq!(
        accepted(
            "[domain-name:value = 'evil.example'] OR [url:value = 'http://evil.example/a?b=c'] \
             OR [email-addr:value = 'x@evil.example']"
        ),
        expected
    );
    assert_eq!(
        accepted(
            "([domain-name:value = 'evil.example'] OR [(url:value = 'http://evil.example/a?b=c' \
             OR email-addr:value = 'x@evil.example')])"
        ),
        expected
    );
}

#[test]
fn file_hashes_in_both_quoting_forms() {
    let pattern = format!(
        "[file:hashes.'SHA-256' = '{sha}' OR file:hashes.SHA256 = '{sha}' \
         OR file:hashes.MD5 = '{MD5}' OR file:hashes.'SHA-1' = '{sha1}']",
        sha = SHA256.to_uppercase(),
        sha1 = "da39a3ee5e6b4b0d3255bfef95601890afd80709",
    );
    assert_eq!(
        accepted(&pattern),
        [
            value(IndicatorKind::Sha256, SHA256),
            value(IndicatorKind::Sha256, SHA256),
            value(IndicatorKind::Md5, MD5),
            value(
                IndicatorKind::Sha1,
                "da39a3ee5e6b4b0d3255bfef95601890afd80709"
            ),
        ]
    );
}

#[test]
fn escaped_quote_and_backslash_in_literals() {
    assert_eq!(
        accepted(r"[file:name = 'it\'s.exe']"),
        [value(IndicatorKind::FileName, "it's.exe")]
    );
    assert_eq!(
        accepted(r"[windows-registry-key:key = 'HKEY_LOCAL_MACHINE\\Software\\Evil']"),
        [value(
            IndicatorKind::RegistryKey,
            r"HKEY_LOCAL_MACHINE\Software\Evil"
        )]
    );
}

#[test]
fn and_rejects_the_whole_indicator() {
    let reason = rejected(&format!(
        "[file:hashes.MD5 = '{MD5}' AND file:name = 'a.exe']"
    ));
    assert!(reason.contains("AND"), "{reason}");
    let reason = rejected(&format!(
        "[file:name = 'a.exe'] OR [file:hashes.MD5 = '{MD5}'] AND [file:name = 'b.exe']"
    ));
    assert!(reason.contains("AND"), "{reason}");
}

#[test]
fn followedby_and_qualifiers_are_rejected() {
    let reason = rejected("[file:name = 'a.exe'] FOLLOWEDBY [file:name = 'b.exe']");
    assert!(reason.contains("FOLLOWEDBY"), "{reason}");
    let reason = rejected("[file:name = 'a.exe'] WITHIN 300 SECONDS");
    assert!(reason.contains("WITHIN"), "{reason}");
    let reason = rejected("[file:name = 'a.exe'] REPEATS 5 TIMES");
    assert!(reason.contains("REPEATS"), "{reason}");
    let reason = rejected(
        "[file:name = 'a.exe'] START t'2016-06-01T00:00:00Z' STOP t'2016-07-01T00:00:00Z'",
    );
    assert!(reason.contains("START"), "{reason}");
}

#[test]
fn other_operators_and_literals_are_rejected() {
    let reason = rejected("[domain-name:value MATCHES '^evil']");
    assert!(reason.contains("MATCHES"), "{reason}");
    for (pattern, word) in [
        ("[domain-name:value LIKE '%.evil.example']", "LIKE"),
        ("[domain-name:value IN ('a.example', 'b.example')]", "IN"),
        ("[domain-name:value != 'a.example']", "!="),
        ("[domain-name:value NOT = 'a.example']", "NOT"),
        ("[ipv4-addr:value ISSUBSET '10.0.0.0/8']", "ISSUBSET"),
        ("[file:size = 1024]", "number"),
        ("[file:name = t'2016-06-01T00:00:00Z']", "timestamp"),
        ("[file:name or 'x']", "or"),
        ("[x-custom:value = 'x']", "x-custom:value"),
        ("[file:hashes.'SHA-512' = 'ab']", "SHA-512"),
        ("[file:name = \"a.exe\"]", "'\"'"),
        ("[file:name = 'a.exe'", "']'"),
        ("", "observation"),
    ] {
        let reason = rejected(pattern);
        assert!(reason.starts_with("pattern: "), "{pattern}: {reason}");
        assert!(reason.contains(word), "{pattern}: {reason}");
    }
}

#[test]
fn one_bad_comparison_rejects_every_comparison_of_the_indicator() {
    let reason = rejected(
        "[ipv4-addr:value = '203.0.113.7'] OR [ipv4-addr:value = '999.1.1.1'] \
         OR [ipv4-addr:value = '203.0.113.8']",
    );
    let err = IndicatorValue::parse(IndicatorKind::Ipv4, "999.1.1.1").expect_err("invalid");
    assert!(reason.contains(&err.to_string()), "{reason}");
    assert!(reason.contains("ipv4-addr:value"), "{reason}");
}

#[test]
fn too_many_comparisons_are_rejected() {
    let pattern = vec!["[file:name = 'a.exe']"; STIX_COMPARISONS_MAX + 1].join(" OR ");
    let reason = rejected(&pattern);
    assert!(reason.contains("comparisons"), "{reason}");
    let pattern = vec!["[file:name = 'a.exe']"; STIX_COMPARISONS_MAX].join(" OR ");
    assert_eq!(accepted(&pattern).len(), STIX_COMPARISONS_MAX);
    let reason = rejected(&format!(
        "{}[file:name = 'a']{}",
        "(".repeat(500),
        ")".repeat(500)
    ));
    assert!(reason.contains("nested"), "{reason}");
}

#[test]
fn non_stix_pattern_type_is_rejected() {
    let mut object = indicator("title: x\ndetection: {}");
    object["pattern_type"] = json!("sigma");
    let import = parse_bundle(&bundle(vec![object])).expect("a bundle");
    assert_eq!(import.indicators, []);
    assert_eq!(import.rejected.len(), 1);
    assert_eq!(
        import.rejected[0].reason,
        ObjectError::PatternType("sigma".into())
    );
    assert!(import.rejected[0].reason.to_string().contains("sigma"));
}

#[test]
fn absent_pattern_type_means_stix() {
    let mut object = indicator("[file:name = 'a.exe']");
    object
        .as_object_mut()
        .expect("an object")
        .remove("pattern_type");
    let import = parse_bundle(&bundle(vec![object])).expect("a bundle");
    assert_eq!(import.rejected, []);
    assert_eq!(import.indicators.len(), 1);
}

#[test]
fn revoked_indicators_are_reported_as_revoked() {
    let mut object = indicator("[domain-name:value = 'a.example' OR file:name = 'a.exe']");
    object["revoked"] = json!(true);
    let import = parse_bundle(&bundle(vec![object])).expect("a bundle");
    assert_eq!(import.indicators.len(), 2);
    assert!(import.indicators.iter().all(|i| i.revoked));
}

#[test]
fn bad_fields_reject_the_object_and_the_rest_is_imported() {
    let mut confidence = indicator("[file:name = 'a.exe']");
    confidence["confidence"] = json!(101);
    let mut no_pattern = indicator("[file:name = 'a.exe']");
    no_pattern
        .as_object_mut()
        .expect("an object")
        .remove("pattern");
    let import = parse_bundle(&bundle(vec![
        confidence,
        json!("not an object"),
        no_pattern,
        indicator("[file:name = 'b.exe']"),
    ]))
    .expect("a bundle");
    let reasons: Vec<(usize, String)> = import
        .rejected
        .iter()
        .map(|r| (r.index, r.reason.to_string()))
        .collect();
    assert_eq!(
        reasons,
        [
            (2, "\"confidence\" is not an integer from 0 to 100".into()),
            (3, "not a JSON object".into()),
            (4, "no string \"pattern\"".into()),
        ]
    );
    let kinds: Vec<&ObjectError> = import.rejected.iter().map(|r| &r.reason).collect();
    assert_eq!(
        kinds,
        [
            &ObjectError::Confidence,
            &ObjectError::NotAnObject,
            &ObjectError::Missing("pattern"),
        ]
    );
    assert_eq!(import.rejected[1].id, None);
    assert_eq!(import.indicators.len(), 1);
}

#[test]
fn non_indicator_objects_are_skipped_and_counted() {
    let import = parse_bundle(&bundle(vec![
        json!({"type": "malware", "id": "malware--3f2e1d0c-9b8a-4766-a554-433221100fed",
               "name": "EvilRAT", "is_family": true}),
        json!({"type": "relationship", "relationship_type": "indicates",
               "source_ref": ID, "target_ref": "malware--3f2e1d0c-9b8a-4766-a554-433221100fed"}),
    ]))
    .expect("a bundle");
    assert_eq!(import.indicators, []);
    assert_eq!(import.rejected, []);
    assert_eq!(import.skipped_other, 4);
}

#[test]
fn not_a_bundle_is_an_error() {
    assert_eq!(parse_bundle(&json!([])), Err(StixError::NotAnObject));
    assert_eq!(
        parse_bundle(&indicator("[file:name = 'a.exe']")),
        Err(StixError::NotABundle)
    );
    assert_eq!(
        parse_bundle(&json!({"type": "bundle", "id": "bundle--1"})),
        Err(StixError::NoObjects)
    );
    assert_eq!(
        parse_bundle(&json!({"type": "bundle", "objects": {}})),
        Err(StixError::NoObjects)
    );
}

/// `tests/fixtures/stix2_bundle.json` was written by the OASIS `stix2` 3.0.2 library:
/// `python3 tests/fixtures/gen_stix2_bundle.py > tests/fixtures/stix2_bundle.json`.
#[test]
fn bundle_written_by_the_stix2_library() {
    let text = include_str!("fixtures/stix2_bundle.json");
    let json: Value = serde_json::from_str(text).expect("JSON");
    let import = parse_bundle(&json).expect("a bundle");
    // identity, marking-definition, malware, relationship.
    assert_eq!(import.skipped_other, 4);
    let found: Vec<(&str, &str, bool)> = import
        .indicators
        .iter()
        .map(|i| (i.source_ref.as_str(), i.value.as_str(), i.revoked))
        .collect();
    assert_eq!(
        found,
        [
            (ID, "203.0.113.7", false),
            (
                "indicator--6c7a1b2e-5d0f-4a3c-9b8e-1f2d3c4b5a69",
                "evil.example",
                false
            ),
            (
                "indicator--6c7a1b2e-5d0f-4a3c-9b8e-1f2d3c4b5a69",
                "http://evil.example/a?b=c",
                false
            ),
            (
                "indicator--a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d",
                SHA256,
                false
            ),
            (
                "indicator--a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d",
                MD5,
                false
            ),
            (
                "indicator--5e4d3c2b-1a09-4f8e-9d7c-6b5a49382716",
                "it's.exe",
                true
            ),
        ]
    );
    assert_eq!(import.indicators[0].confidence, Some(85));
    let rejected: Vec<&str> = import
        .rejected
        .iter()
        .map(|r| r.id.as_deref().unwrap_or(""))
        .collect();
    assert_eq!(
        rejected,
        [
            "indicator--0f9e8d7c-6b5a-4493-8271-605f4e3d2c1b",
            "indicator--7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5e",
        ]
    );
}

proptest! {
    #[test]
    fn parse_bundle_never_panics_on_any_pattern(
        pattern in prop_oneof![
            any::<String>(),
            "[\\[\\]()' =!<>:.a-zA-Z0-9\\\\-]{0,80}",
            proptest::collection::vec(
                prop_oneof![
                    Just("["), Just("]"), Just("("), Just(")"), Just(" OR "), Just(" AND "),
                    Just("ipv4-addr:value"), Just("file:hashes.'SHA-256'"), Just(" = "),
                    Just("'1.2.3.4'"), Just("'it\\'s'"), Just(" FOLLOWEDBY "), Just("'"),
                    Just(" MATCHES "), Just("42"), Just(" WITHIN "), Just("/*"), Just("\\"),
                ],
                0..24,
            )
            .prop_map(|parts| parts.concat()),
        ],
    ) {
        let import = parse_bundle(&bundle(vec![indicator(&pattern)])).expect("a bundle");
        // Whole or nothing: one rejection, or indicators and no rejection.
        prop_assert_eq!(import.rejected.is_empty(), !import.indicators.is_empty());
    }
}

/// The streaming reader gives what the tree reader gives, whatever the key order.
#[test]
fn the_text_reader_streams_the_same_import() {
    let text = include_str!("fixtures/stix2_bundle.json");
    let json: Value = serde_json::from_str(text).expect("JSON");
    assert_eq!(parse_bundle_text(text), parse_bundle(&json));
    let objects_first = json!({"objects": [indicator("[ipv4-addr:value = '198.51.100.1']")],
                               "id": "bundle--1", "type": "bundle"});
    let import = parse_bundle_text(&objects_first.to_string()).expect("a bundle");
    assert_eq!(import.indicators.len(), 1);
    for (text, error) in [
        ("[]", StixError::NotAnObject),
        ("\"bundle\"", StixError::NotAnObject),
        (r#"{"type": "x", "objects": []}"#, StixError::NotABundle),
        (r#"{"type": "bundle"}"#, StixError::NoObjects),
        (r#"{"type": "bundle", "objects": {}}"#, StixError::NoObjects),
    ] {
        assert_eq!(parse_bundle_text(text), Err(error), "{text}");
    }
    assert!(matches!(
        parse_bundle_text(r#"{"type": "bundle", "objects": [}"#),
        Err(StixError::NotJson(_))
    ));
    assert!(matches!(
        parse_bundle_text(r#"{"type": "bundle", "objects": []} trailing"#),
        Err(StixError::NotJson(_))
    ));
}

/// Too many objects is found while streaming: the reader stops at the first one too many.
#[test]
fn too_many_objects_stop_the_stream() {
    let mut text = String::from(r#"{"type": "bundle", "objects": ["#);
    for i in 0..=vigil_matcher::STIX_OBJECTS_MAX {
        text.push_str(if i == 0 { "1" } else { ",1" });
    }
    text.push_str("]}");
    let mut handed = 0;
    let outcome = vigil_matcher::for_each_bundle_object(&text, |_| handed += 1);
    assert_eq!(
        outcome,
        Err(StixError::TooManyObjects(
            vigil_matcher::STIX_OBJECTS_MAX + 1
        ))
    );
    assert_eq!(handed, vigil_matcher::STIX_OBJECTS_MAX);
    let huge = format!(
        r#"{{"type": "bundle", "objects": [{{"type": "indicator", "pad": "{}"}}]}}"#,
        "x".repeat(vigil_matcher::STIX_OBJECT_BYTES_MAX)
    );
    let import = parse_bundle_text(&huge).expect("a bundle");
    assert_eq!(import.rejected[0].reason, ObjectError::TooLarge);
    assert!(
        import.rejected[0]
            .reason
            .to_string()
            .contains("larger than"),
        "{:?}",
        import.rejected
    );
}
