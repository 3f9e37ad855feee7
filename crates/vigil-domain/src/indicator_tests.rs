use super::*;
use proptest::prelude::*;

use IndicatorKind::*;

/// Parses `raw` as `kind` and returns the resulting kind and text.
fn ok(kind: IndicatorKind, raw: &str) -> (IndicatorKind, String) {
    let value = IndicatorValue::parse(kind, raw)
        .unwrap_or_else(|err| panic!("{kind} {raw:?} should parse: {err}"));
    (value.kind(), value.as_str().to_owned())
}

fn normalizes(kind: IndicatorKind, raw: &str, expected: &str) {
    assert_eq!(ok(kind, raw), (kind, expected.to_owned()), "{kind} {raw:?}");
}

fn rejects(kind: IndicatorKind, raw: &str) {
    let result = IndicatorValue::parse(kind, raw);
    assert!(
        result.is_err(),
        "{kind} {raw:?} should be rejected: {result:?}"
    );
}

#[test]
fn kinds_round_trip_through_their_names() {
    for kind in IndicatorKind::ALL {
        assert_eq!(IndicatorKind::parse(kind.as_str()), Ok(kind));
        assert_eq!(IndicatorKind::ALL[kind.index()], kind);
    }
    assert_eq!(IndicatorKind::parse("file_name"), Ok(FileName));
    assert!(IndicatorKind::parse("IPv4").is_err());
}

#[test]
fn ipv4_is_a_strict_dotted_quad() {
    normalizes(Ipv4, " 192.0.2.1 ", "192.0.2.1");
    for bad in [
        "999.1.1.1",
        "1.2.3",
        "1.2.3.4.5",
        "010.1.1.1",
        "0x7f.0.0.1",
        "1.2.3.4/24",
        "::1",
    ] {
        rejects(Ipv4, bad);
    }
}

#[test]
fn ipv4_error_says_what_was_expected() {
    let err = IndicatorValue::parse(Ipv4, "999.1.1.1").unwrap_err();
    assert_eq!(err.what(), "ipv4");
    assert!(err.reason().contains("octets"));
}

#[test]
fn ipv6_is_written_in_rfc_5952_form() {
    normalizes(Ipv6, "2001:0DB8:0:0:0:0:0:1", "2001:db8::1");
    normalizes(Ipv6, "[2001:db8::1]", "2001:db8::1");
    normalizes(Ipv6, "fe80::1%eth0", "fe80::1");
    rejects(Ipv6, "1.2.3.4");
    rejects(Ipv6, "2001:db8::g");
}

#[test]
fn ipv4_mapped_ipv6_becomes_ipv4() {
    assert_eq!(ok(Ipv6, "::ffff:1.2.3.4"), (Ipv4, "1.2.3.4".to_owned()));
}

#[test]
fn cidr_host_bits_are_masked() {
    normalizes(Cidr, "10.1.2.3/8", "10.0.0.0/8");
    normalizes(Cidr, "2001:db8::1/32", "2001:db8::/32");
    let value = IndicatorValue::parse(Cidr, "198.51.100.7/24").unwrap();
    assert_eq!(value.network(), Some(("198.51.100.0".parse().unwrap(), 24)));
    assert_eq!(value.ip(), None);
}

#[test]
fn host_cidrs_become_plain_addresses() {
    assert_eq!(ok(Cidr, "1.2.3.4/32"), (Ipv4, "1.2.3.4".to_owned()));
    assert_eq!(
        ok(Cidr, "2001:DB8::1/128"),
        (Ipv6, "2001:db8::1".to_owned())
    );
    assert_eq!(
        ok(Cidr, "::ffff:1.2.3.0/120"),
        (Cidr, "1.2.3.0/24".to_owned())
    );
}

#[test]
fn cidr_rejects_bad_prefixes_and_too_broad_blocks() {
    for bad in [
        "10.0.0.0",
        "10.0.0.0/33",
        "10.0.0.0/",
        "10.0.0.0/08",
        "10.0.0.0/+8",
        "0.0.0.0/0",
        "10.0.0.0/7",
        "::/0",
        "2001::/15",
        "::1/129",
        "999.0.0.0/8",
        "10.0.0.0/8/8",
    ] {
        rejects(Cidr, bad);
    }
    normalizes(Cidr, "10.0.0.0/8", "10.0.0.0/8");
    normalizes(Cidr, "2001::/16", "2001::/16");
}

#[test]
fn domains_are_lowercased_without_trailing_dot() {
    normalizes(Domain, "Evil.Example.COM.", "evil.example.com");
    normalizes(Domain, "_dmarc.example.com", "_dmarc.example.com");
    normalizes(Domain, "localhost", "localhost");
}

#[test]
fn internationalized_domains_become_punycode() {
    normalizes(Domain, "Bücher.example", "xn--bcher-kva.example");
    normalizes(Domain, "xn--bcher-kva.example", "xn--bcher-kva.example");
    normalizes(Domain, "münchen.de.", "xn--mnchen-3ya.de");
}

#[test]
fn domain_labels_are_validated() {
    let label_64 = "a".repeat(64);
    let name_254 = format!("{}.com", vec!["a".repeat(62); 4].join("."));
    assert!(name_254.len() > DOMAIN_LEN_MAX);
    normalizes(
        Domain,
        &format!("{}.com", "a".repeat(63)),
        &format!("{}.com", "a".repeat(63)),
    );
    for bad in [
        "",
        ".",
        "..",
        "a..b",
        ".a.com",
        "a.com..",
        &format!("{label_64}.com"),
        &name_254,
        "-a.com",
        "a-.com",
        "a b.com",
        "a/b.com",
        "1.2.3.4",
        "example.123",
        "a@b.com",
    ] {
        rejects(Domain, bad);
    }
}

#[test]
fn hashes_are_lowercased_and_length_checked() {
    normalizes(Md5, &"AB".repeat(16), &"ab".repeat(16));
    normalizes(Sha1, &"0F".repeat(20), &"0f".repeat(20));
    normalizes(Sha256, &"Aa".repeat(32), &"aa".repeat(32));
    rejects(Sha256, &"a".repeat(31));
    rejects(Sha256, &"a".repeat(63));
    rejects(Md5, &"a".repeat(40));
    rejects(Sha1, &format!("{}g", "a".repeat(39)));
}

#[test]
fn email_lowercases_only_the_domain() {
    normalizes(Email, "Ana.Smith@Example.COM", "Ana.Smith@example.com");
    normalizes(Email, "x@Bücher.example", "x@xn--bcher-kva.example");
    for bad in [
        "ana",
        "@example.com",
        "ana@",
        "a@b@c.com",
        "a b@example.com",
        "ana@1.2.3.4",
    ] {
        rejects(Email, bad);
    }
}

#[test]
fn url_scheme_and_host_are_lowercased_and_the_rest_kept() {
    normalizes(
        Url,
        "HTTP://User@Evil.Example.COM:8080/A/b?Q=1#F",
        "http://User@evil.example.com:8080/A/b?Q=1#F",
    );
    normalizes(Url, "https://[2001:DB8::1]/x", "https://[2001:db8::1]/x");
    normalizes(Url, "ftp://192.0.2.1", "ftp://192.0.2.1");
    normalizes(
        Url,
        "https://bücher.example/Ä",
        "https://xn--bcher-kva.example/Ä",
    );
    for bad in [
        "evil.com/a",
        "javascript://x",
        "file:///etc/passwd",
        "http://",
        "http:///a",
        "http://a b.com/",
    ] {
        rejects(Url, bad);
    }
}

#[test]
fn file_names_keep_case_and_reject_paths() {
    normalizes(FileName, " Evil.EXE ", "Evil.EXE");
    for bad in ["", "a/b.exe", "a\0b", "..", &"a".repeat(256)] {
        rejects(FileName, bad);
    }
    normalizes(FileName, &"a".repeat(255), &"a".repeat(255));
}

#[test]
fn registry_hives_take_their_long_form_and_paths_are_lowercased() {
    normalizes(
        RegistryKey,
        "HKLM\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\\",
        "HKEY_LOCAL_MACHINE\\software\\microsoft\\windows\\currentversion\\run",
    );
    normalizes(
        RegistryKey,
        "hkey_current_user\\Evil",
        "HKEY_CURRENT_USER\\evil",
    );
    normalizes(
        RegistryKey,
        "HKU\\S-1-5-21\\Run",
        "HKEY_USERS\\s-1-5-21\\run",
    );
    for bad in [
        "",
        "HKLM",
        "HKLM\\",
        "Software\\Evil",
        "HKXX\\Evil",
        "HKLM\\a\\\\b",
        "HKLM/Software",
    ] {
        rejects(RegistryKey, bad);
    }
}

/// Raw strings that are likely to be accepted by `kind`, for the round-trip property.
fn plausible(kind: IndicatorKind) -> BoxedStrategy<String> {
    match kind {
        Ipv4 => any::<[u8; 4]>()
            .prop_map(|o| format!("{}.{}.{}.{}", o[0], o[1], o[2], o[3]))
            .boxed(),
        Ipv6 => any::<u128>()
            .prop_map(|b| Ipv6Addr::from_bits(b).to_string())
            .boxed(),
        Cidr => (
            any::<u32>(),
            0u8..=32,
            any::<u128>(),
            0u8..=128,
            any::<bool>(),
        )
            .prop_map(|(v4, l4, v6, l6, is_v4)| {
                if is_v4 {
                    format!("{}/{l4}", Ipv4Addr::from_bits(v4))
                } else {
                    format!("{}/{l6}", Ipv6Addr::from_bits(v6))
                }
            })
            .boxed(),
        Domain => "([a-zA-Z0-9_-]{1,12}\\.){0,4}[a-zA-Zü]{1,10}\\.?".boxed(),
        Url => "(HTTP|https|Ftp)://[a-zA-Z0-9.-]{1,20}(:[0-9]{1,5})?(/[ -~&&[^ ]]{0,30})?".boxed(),
        Md5 => "[0-9a-fA-F]{32}".boxed(),
        Sha1 => "[0-9a-fA-F]{40}".boxed(),
        Sha256 => "[0-9a-fA-F]{64}".boxed(),
        Email => "[A-Za-z0-9.+_-]{1,20}@([a-zA-Z0-9-]{1,10}\\.){1,3}[a-zA-Z]{2,6}".boxed(),
        FileName => "\\PC{1,40}".boxed(),
        RegistryKey => "(HKLM|hkcu|HKEY_USERS|HKCR)(\\\\\\PC{1,12}){1,4}".boxed(),
    }
}

proptest! {
    #[test]
    fn normalized_values_round_trip(
        (kind, raw) in (0..IndicatorKind::ALL.len())
            .prop_flat_map(|i| (Just(IndicatorKind::ALL[i]), plausible(IndicatorKind::ALL[i])))
    ) {
        if let Ok(value) = IndicatorValue::parse(kind, &raw) {
            prop_assert_eq!(IndicatorValue::parse(value.kind(), value.as_str()), Ok(value.clone()));
        }
    }

    #[test]
    fn parse_never_panics(index in 0..IndicatorKind::ALL.len(), raw in "\\PC{0,80}|.{0,80}") {
        let kind = IndicatorKind::ALL[index];
        if let Ok(value) = IndicatorValue::parse(kind, &raw) {
            prop_assert_eq!(IndicatorValue::parse(value.kind(), value.as_str()), Ok(value.clone()));
        }
    }

    #[test]
    fn valid_ipv4_is_accepted_unchanged(octets in any::<[u8; 4]>()) {
        let raw = Ipv4Addr::from(octets).to_string();
        prop_assert_eq!(ok(Ipv4, &raw), (Ipv4, raw.clone()));
    }

    #[test]
    fn cidr_network_contains_the_given_address(bits in any::<u32>(), len in 8u8..32) {
        let raw = format!("{}/{len}", Ipv4Addr::from_bits(bits));
        let value = IndicatorValue::parse(Cidr, &raw).unwrap();
        let (IpAddr::V4(net), parsed_len) = value.network().unwrap() else {
            panic!("an IPv4 CIDR has an IPv4 network");
        };
        prop_assert_eq!(parsed_len, len);
        let shift = 32 - u32::from(len);
        prop_assert_eq!(net.to_bits() >> shift, bits >> shift);
        prop_assert_eq!(net.to_bits() & ((1u32 << shift) - 1), 0);
    }
}
