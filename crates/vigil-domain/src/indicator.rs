//! Indicators of compromise: their kinds and their normalized values.
//!
//! Normalization happens once, here, and the same function serves both sides of a match: the
//! catalogue (values imported from feeds) and the telemetry (values seen in events). Two
//! spellings of one indicator therefore have one `IndicatorValue`, and matching is equality
//! (or containment, for CIDRs and subdomains).
//!
//! The rules, by kind (surrounding whitespace is trimmed for every kind):
//! - `ipv4`: a strict dotted quad. Octets with a leading zero (`010.1.1.1`) are **rejected**,
//!   not normalized: some parsers read them as octal, so their meaning is ambiguous.
//! - `ipv6`: any form `Ipv6Addr` accepts, optionally in `[ ]` and with a `%zone` suffix (both
//!   dropped); written in RFC 5952 form (`2001:db8::1`). An IPv4-mapped address
//!   (`::ffff:1.2.3.4`) becomes the `ipv4` value `1.2.3.4`.
//! - `cidr`: `address/prefix_len`. Host bits are **masked** (`10.1.2.3/8` → `10.0.0.0/8`), as
//!   MISP and the STIX `ipv4-addr` definition do; `/32` and `/128` become plain `ipv4`/`ipv6`
//!   values. Prefixes shorter than [`CIDR_V4_PREFIX_LEN_MIN`] / [`CIDR_V6_PREFIX_LEN_MIN`] are
//!   rejected: such a block matches a large share of the Internet and is a feed error.
//!   `::ffff:0:0/96` and longer mapped prefixes become IPv4 CIDRs.
//! - `domain`: lowercased, one trailing `.` dropped, internationalized names converted to
//!   their ASCII (punycode, `xn--`) form by UTS 46; labels of 1–63 bytes of `a-z`, `0-9`, `-`
//!   and `_`, not starting or ending with `-`; at most [`DOMAIN_LEN_MAX`] bytes; the last label
//!   may not be all digits (so an IP address is never a domain).
//! - `md5`, `sha1`, `sha256`: exactly 32, 40 or 64 hex digits, lowercased.
//! - `email`: `local@domain`; the domain is normalized as a domain, the local part is kept as
//!   given (RFC 5321 local parts are case-sensitive).
//! - `url`: `http`, `https` or `ftp` followed by `://` and a host; scheme and host are
//!   lowercased (an internationalized host becomes punycode), everything else is kept.
//! - `file_name`: 1–[`FILE_NAME_LEN_MAX`] bytes, without `/`, NUL or other control
//!   characters, and not `.` or `..`. Case is kept.
//! - `registry_key`: a hive followed by `\` and a key path. The hive is written in its long
//!   form (`HKLM` → `HKEY_LOCAL_MACHINE`, as STIX writes it) and the key path is lowercased,
//!   because Windows compares registry paths case-insensitively. A trailing `\` is dropped;
//!   empty path components are rejected.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::ParseError;

/// Longest domain name, in bytes (RFC 1035).
pub const DOMAIN_LEN_MAX: usize = 253;
/// Longest domain label, in bytes (RFC 1035).
pub const DOMAIN_LABEL_LEN_MAX: usize = 63;
/// Longest URL, in bytes.
pub const URL_LEN_MAX: usize = 4096;
/// Longest e-mail address, in bytes (RFC 5321 path limit).
pub const EMAIL_LEN_MAX: usize = 254;
/// Longest e-mail local part, in bytes (RFC 5321).
pub const EMAIL_LOCAL_LEN_MAX: usize = 64;
/// Longest file name, in bytes (the common file-system limit).
pub const FILE_NAME_LEN_MAX: usize = 255;
/// Longest registry key path including its hive, in bytes.
pub const REGISTRY_KEY_LEN_MAX: usize = 1024;
/// Shortest accepted IPv4 CIDR prefix.
pub const CIDR_V4_PREFIX_LEN_MIN: u8 = 8;
/// Shortest accepted IPv6 CIDR prefix.
pub const CIDR_V6_PREFIX_LEN_MIN: u8 = 16;
/// Longest raw input looked at, in bytes; anything longer is rejected before normalization.
pub const INDICATOR_RAW_LEN_MAX: usize = 8192;

const _: () = assert!(URL_LEN_MAX <= INDICATOR_RAW_LEN_MAX);
const _: () = assert!(CIDR_V4_PREFIX_LEN_MIN <= 32 && CIDR_V6_PREFIX_LEN_MIN <= 128);

/// What an indicator's value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IndicatorKind {
    Ipv4,
    Ipv6,
    Cidr,
    Domain,
    Url,
    Md5,
    Sha1,
    Sha256,
    Email,
    FileName,
    RegistryKey,
}

impl IndicatorKind {
    pub const ALL: [IndicatorKind; 11] = [
        IndicatorKind::Ipv4,
        IndicatorKind::Ipv6,
        IndicatorKind::Cidr,
        IndicatorKind::Domain,
        IndicatorKind::Url,
        IndicatorKind::Md5,
        IndicatorKind::Sha1,
        IndicatorKind::Sha256,
        IndicatorKind::Email,
        IndicatorKind::FileName,
        IndicatorKind::RegistryKey,
    ];

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == raw)
            .ok_or_else(|| {
                ParseError::new(
                    "indicator type",
                    "expected one of ipv4, ipv6, cidr, domain, url, md5, sha1, sha256, email, \
                     file_name, registry_key",
                )
            })
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            IndicatorKind::Ipv4 => "ipv4",
            IndicatorKind::Ipv6 => "ipv6",
            IndicatorKind::Cidr => "cidr",
            IndicatorKind::Domain => "domain",
            IndicatorKind::Url => "url",
            IndicatorKind::Md5 => "md5",
            IndicatorKind::Sha1 => "sha1",
            IndicatorKind::Sha256 => "sha256",
            IndicatorKind::Email => "email",
            IndicatorKind::FileName => "file_name",
            IndicatorKind::RegistryKey => "registry_key",
        }
    }

    /// A dense index in `0..ALL.len()`, for per-kind tables.
    pub fn index(&self) -> usize {
        *self as usize
    }
}

impl fmt::Display for IndicatorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A normalized indicator value and its kind (see the module documentation for the rules).
///
/// The kind may differ from the one asked for: a `/32` CIDR is an `ipv4` value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IndicatorValue {
    kind: IndicatorKind,
    text: String,
    /// The address of `ipv4`/`ipv6` values (prefix length 32/128) and the network of `cidr`
    /// values; `None` for every other kind.
    net: Option<(IpAddr, u8)>,
}

impl IndicatorValue {
    pub fn parse(kind: IndicatorKind, raw: &str) -> Result<Self, ParseError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(ParseError::new(kind.as_str(), "must not be empty"));
        }
        if raw.len() > INDICATOR_RAW_LEN_MAX {
            return Err(ParseError::new(
                kind.as_str(),
                format!("is longer than {INDICATOR_RAW_LEN_MAX} bytes"),
            ));
        }
        match kind {
            IndicatorKind::Ipv4 => parse_ipv4(raw).map(Self::from_ip),
            IndicatorKind::Ipv6 => parse_ipv6(raw).map(Self::from_ip),
            IndicatorKind::Cidr => parse_cidr(raw),
            IndicatorKind::Md5 | IndicatorKind::Sha1 | IndicatorKind::Sha256 => {
                Ok(Self::text(kind, parse_hash(kind, raw)?))
            }
            IndicatorKind::Domain => Ok(Self::text(kind, normalize_domain("domain", raw)?)),
            IndicatorKind::Email => Ok(Self::text(kind, parse_email(raw)?)),
            IndicatorKind::Url => Ok(Self::text(kind, parse_url(raw)?)),
            IndicatorKind::FileName => Ok(Self::text(kind, parse_file_name(raw)?)),
            IndicatorKind::RegistryKey => Ok(Self::text(kind, parse_registry_key(raw)?)),
        }
    }

    fn text(kind: IndicatorKind, text: String) -> Self {
        Self {
            kind,
            text,
            net: None,
        }
    }

    fn from_ip(ip: IpAddr) -> Self {
        let (kind, len) = match ip {
            IpAddr::V4(_) => (IndicatorKind::Ipv4, 32),
            IpAddr::V6(_) => (IndicatorKind::Ipv6, 128),
        };
        Self {
            kind,
            text: ip.to_string(),
            net: Some((ip, len)),
        }
    }

    pub fn kind(&self) -> IndicatorKind {
        self.kind
    }

    /// The normalized text, the form stored, compared and shown.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The address of an `ipv4` or `ipv6` value.
    pub fn ip(&self) -> Option<IpAddr> {
        match self.kind {
            IndicatorKind::Ipv4 | IndicatorKind::Ipv6 => self.net.map(|(ip, _)| ip),
            _ => None,
        }
    }

    /// The network address (host bits zero) and prefix length of a `cidr` value.
    pub fn network(&self) -> Option<(IpAddr, u8)> {
        match self.kind {
            IndicatorKind::Cidr => self.net,
            _ => None,
        }
    }
}

impl fmt::Display for IndicatorValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn parse_ipv4(raw: &str) -> Result<IpAddr, ParseError> {
    // `Ipv4Addr` accepts exactly four decimal octets without leading zeros.
    raw.parse::<Ipv4Addr>().map(IpAddr::V4).map_err(|_| {
        ParseError::new(
            "ipv4",
            "expected four decimal octets 0-255 without leading zeros, e.g. 192.0.2.1",
        )
    })
}

fn parse_ipv6(raw: &str) -> Result<IpAddr, ParseError> {
    let unbracketed = raw
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .unwrap_or(raw);
    let without_zone = unbracketed
        .split_once('%')
        .map_or(unbracketed, |(address, _zone)| address);
    let address = without_zone
        .parse::<Ipv6Addr>()
        .map_err(|_| ParseError::new("ipv6", "expected an IPv6 address, e.g. 2001:db8::1"))?;
    Ok(match address.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(address),
    })
}

/// Zeroes the host bits of `ip` below `prefix_len`.
fn mask(ip: IpAddr, prefix_len: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = v4.to_bits();
            let masked = bits.checked_shr(32 - u32::from(prefix_len)).unwrap_or(0);
            let masked = masked.checked_shl(32 - u32::from(prefix_len)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from_bits(masked))
        }
        IpAddr::V6(v6) => {
            let bits = v6.to_bits();
            let masked = bits.checked_shr(128 - u32::from(prefix_len)).unwrap_or(0);
            let masked = masked.checked_shl(128 - u32::from(prefix_len)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from_bits(masked))
        }
    }
}

fn parse_cidr(raw: &str) -> Result<IndicatorValue, ParseError> {
    let err = |reason: &str| Err(ParseError::new("cidr", reason));
    let Some((address, prefix)) = raw.split_once('/') else {
        return err("expected address/prefix_len, e.g. 198.51.100.0/24");
    };
    let prefix_ok = !prefix.is_empty()
        && prefix.len() <= 3
        && prefix.bytes().all(|b| b.is_ascii_digit())
        && (prefix == "0" || !prefix.starts_with('0'));
    let Some(mut prefix_len) = prefix_ok.then(|| prefix.parse::<u8>().ok()).flatten() else {
        return err("the prefix length must be a decimal number without leading zeros");
    };
    let mut ip = if address.contains(':') {
        let v6 = address
            .parse::<Ipv6Addr>()
            .map_err(|_| ParseError::new("cidr", "expected an IPv6 network address before '/'"))?;
        if prefix_len > 128 {
            return err("an IPv6 prefix length is at most 128");
        }
        match v6.to_ipv4_mapped() {
            Some(v4) if prefix_len >= 96 => {
                prefix_len -= 96;
                IpAddr::V4(v4)
            }
            _ => IpAddr::V6(v6),
        }
    } else {
        let v4 = parse_ipv4(address)
            .map_err(|_| ParseError::new("cidr", "expected an IPv4 network address before '/'"))?;
        if prefix_len > 32 {
            return err("an IPv4 prefix length is at most 32");
        }
        v4
    };
    let (len_max, len_min) = match ip {
        IpAddr::V4(_) => (32, CIDR_V4_PREFIX_LEN_MIN),
        IpAddr::V6(_) => (128, CIDR_V6_PREFIX_LEN_MIN),
    };
    if prefix_len == len_max {
        return Ok(IndicatorValue::from_ip(ip));
    }
    if prefix_len < len_min {
        return Err(ParseError::new(
            "cidr",
            format!("prefix /{prefix_len} is too broad; the shortest accepted is /{len_min}"),
        ));
    }
    ip = mask(ip, prefix_len);
    Ok(IndicatorValue {
        kind: IndicatorKind::Cidr,
        text: format!("{ip}/{prefix_len}"),
        net: Some((ip, prefix_len)),
    })
}

fn parse_hash(kind: IndicatorKind, raw: &str) -> Result<String, ParseError> {
    let len = match kind {
        IndicatorKind::Md5 => 32,
        IndicatorKind::Sha1 => 40,
        _ => 64,
    };
    if raw.len() != len || !raw.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ParseError::new(
            kind.as_str(),
            format!("expected exactly {len} hexadecimal digits"),
        ));
    }
    Ok(raw.to_ascii_lowercase())
}

/// Normalizes a domain name (see the module documentation); `what` names the value in errors.
fn normalize_domain(what: &'static str, raw: &str) -> Result<String, ParseError> {
    let err = |reason: &str| Err(ParseError::new(what, reason));
    let mut name = if raw.is_ascii() {
        raw.to_ascii_lowercase()
    } else {
        match idna::domain_to_ascii(raw) {
            Ok(ascii) => ascii,
            Err(_) => return err("is not a valid internationalized domain name"),
        }
    };
    if name.ends_with('.') {
        name.pop();
    }
    if name.is_empty() {
        return err("must not be empty");
    }
    if name.len() > DOMAIN_LEN_MAX {
        return err("is longer than 253 bytes");
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > DOMAIN_LABEL_LEN_MAX {
            return err("each label between dots must be 1 to 63 bytes long");
        }
        let valid_byte = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_".contains(&b);
        if !label.bytes().all(valid_byte) {
            return err("labels may contain only letters, digits, '-' and '_'");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return err("labels must not start or end with '-'");
        }
    }
    if name
        .rsplit('.')
        .next()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return err("the last label must not be all digits (an IP address is not a domain)");
    }
    Ok(name)
}

fn parse_email(raw: &str) -> Result<String, ParseError> {
    let err = |reason: &str| Err(ParseError::new("email", reason));
    let Some((local, domain)) = raw.split_once('@') else {
        return err("expected local@domain");
    };
    if local.is_empty() || local.len() > EMAIL_LOCAL_LEN_MAX {
        return err("the local part must be 1 to 64 bytes long");
    }
    if local.chars().any(|c| c.is_whitespace() || c.is_control()) || domain.contains('@') {
        return err("expected local@domain without whitespace");
    }
    let domain = normalize_domain("email", domain)?;
    let address = format!("{local}@{domain}");
    if address.len() > EMAIL_LEN_MAX {
        return err("is longer than 254 bytes");
    }
    Ok(address)
}

fn parse_url(raw: &str) -> Result<String, ParseError> {
    let err = |reason: &str| Err(ParseError::new("url", reason));
    if raw.len() > URL_LEN_MAX {
        return err("is longer than 4096 bytes");
    }
    if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return err("must not contain whitespace or control characters");
    }
    let Some((scheme, rest)) = raw.split_once("://") else {
        return err("expected scheme://host…");
    };
    let scheme = scheme.to_ascii_lowercase();
    if !matches!(scheme.as_str(), "http" | "https" | "ftp") {
        return err("the scheme must be http, https or ftp");
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let (userinfo, host_port) = match authority.rsplit_once('@') {
        Some((userinfo, host_port)) => (Some(userinfo), host_port),
        None => (None, authority),
    };
    let (host, port) = split_port(host_port);
    let host = normalize_url_host(host)?;
    let mut url = String::with_capacity(raw.len());
    url.push_str(&scheme);
    url.push_str("://");
    if let Some(userinfo) = userinfo {
        url.push_str(userinfo);
        url.push('@');
    }
    url.push_str(&host);
    url.push_str(port);
    url.push_str(tail);
    if url.len() > URL_LEN_MAX {
        return err("is longer than 4096 bytes");
    }
    Ok(url)
}

/// Splits `host:port` (or `[v6]:port`) into the host and `:port` (empty when absent).
fn split_port(host_port: &str) -> (&str, &str) {
    let host_end = if host_port.starts_with('[') {
        host_port.find(']').map_or(host_port.len(), |i| i + 1)
    } else {
        host_port.find(':').unwrap_or(host_port.len())
    };
    host_port.split_at(host_end)
}

fn normalize_url_host(host: &str) -> Result<String, ParseError> {
    if host.is_empty() {
        return Err(ParseError::new("url", "must name a host"));
    }
    if let Some(inner) = host.strip_prefix('[') {
        return match inner.strip_suffix(']').map(str::parse::<Ipv6Addr>) {
            Some(Ok(v6)) => Ok(format!("[{v6}]")),
            _ => Err(ParseError::new(
                "url",
                "expected an IPv6 address inside '[ ]'",
            )),
        };
    }
    if host.parse::<Ipv4Addr>().is_ok() {
        return Ok(host.to_owned());
    }
    normalize_domain("url", host)
}

fn parse_file_name(raw: &str) -> Result<String, ParseError> {
    let err = |reason: &str| Err(ParseError::new("file_name", reason));
    if raw.len() > FILE_NAME_LEN_MAX {
        return err("is longer than 255 bytes");
    }
    if raw.contains('/') || raw.chars().any(char::is_control) {
        return err("must not contain '/' or control characters");
    }
    if raw == "." || raw == ".." {
        return err("must name a file, not '.' or '..'");
    }
    Ok(raw.to_owned())
}

/// Registry hives: the long form Vigil stores, then the short forms it accepts.
const HIVES: [(&str, &str); 6] = [
    ("HKEY_LOCAL_MACHINE", "HKLM"),
    ("HKEY_CURRENT_USER", "HKCU"),
    ("HKEY_CLASSES_ROOT", "HKCR"),
    ("HKEY_USERS", "HKU"),
    ("HKEY_CURRENT_CONFIG", "HKCC"),
    ("HKEY_PERFORMANCE_DATA", "HKPD"),
];

fn parse_registry_key(raw: &str) -> Result<String, ParseError> {
    let err = |reason: &str| Err(ParseError::new("registry_key", reason));
    if raw.len() > REGISTRY_KEY_LEN_MAX {
        return err("is longer than 1024 bytes");
    }
    if raw.chars().any(char::is_control) {
        return err("must not contain control characters");
    }
    let (hive, path) = raw.split_once('\\').unwrap_or((raw, ""));
    let Some((long, _)) = HIVES
        .iter()
        .find(|(long, short)| hive.eq_ignore_ascii_case(long) || hive.eq_ignore_ascii_case(short))
    else {
        return err("must start with a hive such as HKLM or HKEY_LOCAL_MACHINE, then '\\'");
    };
    let path = path.strip_suffix('\\').unwrap_or(path).trim_end();
    if path.is_empty() {
        return err("must name a key below the hive");
    }
    if path.split('\\').any(str::is_empty) {
        return err("must not contain empty path components ('\\\\')");
    }
    let key = format!("{long}\\{}", path.to_lowercase());
    if key.len() > REGISTRY_KEY_LEN_MAX {
        return err("is longer than 1024 bytes");
    }
    Ok(key)
}

#[cfg(test)]
#[path = "indicator_tests.rs"]
mod tests;
