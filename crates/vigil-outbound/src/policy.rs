//! Which addresses an outbound call may reach. Checked on the addresses a name resolves to
//! (so a name that resolves to 127.0.0.1 is refused like 127.0.0.1 itself), on IP literals in
//! a URL, and on every redirect hop.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// Addresses of cloud instance-metadata and host services that are not link-local (those
/// already are): AWS IMDS over IPv6, Alibaba Cloud's metadata, Azure's wire server.
const METADATA_ADDRESSES: [IpAddr; 3] = [
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254)),
    IpAddr::V4(Ipv4Addr::new(100, 100, 100, 200)),
    IpAddr::V4(Ipv4Addr::new(168, 63, 129, 16)),
];

/// Most ranges the operator may allow.
pub const ALLOW_RANGES_MAX: usize = 256;

/// Why an address is refused. The text is fixed: it never carries what a server answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("a loopback address")]
    Loopback,
    #[error("a link-local address")]
    LinkLocal,
    #[error("the unspecified address")]
    Unspecified,
    #[error("a multicast or broadcast address")]
    Multicast,
    #[error("a cloud metadata address")]
    Metadata,
    #[error("an address of this server")]
    OwnAddress,
    #[error("a name that resolves to no address")]
    Unresolved,
}

/// A bad `VIGIL_OUTBOUND_ALLOW`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("VIGIL_OUTBOUND_ALLOW: {0}")]
pub struct AllowListError(String);

/// The outbound policy: refuse loopback, link-local, unspecified, multicast, cloud-metadata
/// and this machine's own addresses, unless the operator's allow list names the range.
/// Private ranges are allowed (an on-prem TheHive is normal).
#[derive(Debug, Clone, Default)]
pub struct OutboundPolicy {
    allow: Vec<IpNet>,
    own: Vec<IpAddr>,
}

impl OutboundPolicy {
    /// The default policy with the machine's own addresses read now, plus the operator's
    /// comma-separated CIDRs (or single addresses); an empty string allows nothing more.
    pub fn new(allow: &str) -> Result<Self, AllowListError> {
        let mut policy = Self::parse_allow(allow)?;
        policy.own = own_addresses();
        Ok(policy)
    }

    fn parse_allow(raw: &str) -> Result<Self, AllowListError> {
        let mut allow = Vec::new();
        for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let net = match part.parse::<IpNet>() {
                Ok(net) => net,
                Err(_) => match part.parse::<IpAddr>() {
                    Ok(ip) => IpNet::from(ip),
                    Err(_) => {
                        return Err(AllowListError(format!(
                            "`{part}` is not a CIDR such as 127.0.0.0/8 or an address"
                        )));
                    }
                },
            };
            allow.push(net.trunc());
        }
        if allow.len() > ALLOW_RANGES_MAX {
            return Err(AllowListError(format!("at most {ALLOW_RANGES_MAX} ranges")));
        }
        Ok(Self {
            allow,
            own: Vec::new(),
        })
    }

    /// The operator's allowed ranges.
    pub fn allowed(&self) -> &[IpNet] {
        &self.allow
    }

    /// Whether a call may reach `ip`.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Refusal> {
        let ip = canonical(ip);
        if self.allow.iter().any(|net| net.contains(&ip)) {
            return Ok(());
        }
        if let Some(refusal) = category(ip) {
            return Err(refusal);
        }
        // NAT64 (64:ff9b::/96) reaches the IPv4 address it embeds.
        if let IpAddr::V6(v6) = ip {
            let s = v6.segments();
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let embedded = Ipv4Addr::from((u32::from(s[6]) << 16) | u32::from(s[7]));
                if let Some(refusal) = category(IpAddr::V4(embedded)) {
                    return Err(refusal);
                }
            }
        }
        if self.own.contains(&ip) {
            return Err(Refusal::OwnAddress);
        }
        Ok(())
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:127.0.0.1`) is the IPv4 address it maps.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

fn category(ip: IpAddr) -> Option<Refusal> {
    if METADATA_ADDRESSES.contains(&ip) {
        return Some(Refusal::Metadata);
    }
    match ip {
        IpAddr::V4(v4) => {
            let first = v4.octets()[0];
            if v4.is_loopback() {
                Some(Refusal::Loopback)
            } else if v4 == Ipv4Addr::new(169, 254, 169, 254) {
                Some(Refusal::Metadata)
            } else if v4.is_link_local() {
                Some(Refusal::LinkLocal)
            } else if first == 0 {
                // 0.0.0.0/8, "this network": 0.0.0.0 reaches the local host on Linux.
                Some(Refusal::Unspecified)
            } else if v4.is_multicast() || v4.is_broadcast() {
                Some(Refusal::Multicast)
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            if v6.is_loopback() {
                Some(Refusal::Loopback)
            } else if v6.is_unspecified() {
                Some(Refusal::Unspecified)
            } else if v6.segments()[0] & 0xffc0 == 0xfe80 {
                Some(Refusal::LinkLocal)
            } else if v6.is_multicast() {
                Some(Refusal::Multicast)
            } else {
                None
            }
        }
    }
}

/// The addresses of this machine's interfaces (empty when they cannot be listed).
fn own_addresses() -> Vec<IpAddr> {
    match if_addrs::get_if_addrs() {
        Ok(interfaces) => interfaces.iter().map(|i| canonical(i.ip())).collect(),
        Err(err) => {
            tracing::warn!(component = "outbound", error = %err, "cannot list this machine's addresses; only the fixed ranges are refused");
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(policy: &OutboundPolicy, ip: &str) -> Result<(), Refusal> {
        policy.check_ip(ip.parse().unwrap())
    }

    #[test]
    fn the_default_refuses_what_a_tenant_must_not_reach() {
        let policy = OutboundPolicy::parse_allow("").unwrap();
        for (ip, why) in [
            ("127.0.0.1", Refusal::Loopback),
            ("127.8.9.10", Refusal::Loopback),
            ("::1", Refusal::Loopback),
            ("::ffff:127.0.0.1", Refusal::Loopback),
            ("64:ff9b::7f00:1", Refusal::Loopback),
            ("169.254.169.254", Refusal::Metadata),
            ("fd00:ec2::254", Refusal::Metadata),
            ("100.100.100.200", Refusal::Metadata),
            ("169.254.1.2", Refusal::LinkLocal),
            ("fe80::1", Refusal::LinkLocal),
            ("0.0.0.0", Refusal::Unspecified),
            ("::", Refusal::Unspecified),
            ("224.0.0.1", Refusal::Multicast),
            ("255.255.255.255", Refusal::Multicast),
            ("ff02::1", Refusal::Multicast),
        ] {
            assert_eq!(check(&policy, ip), Err(why), "{ip}");
        }
        for ip in [
            "10.1.2.3",
            "192.168.0.10",
            "172.16.5.4",
            "203.0.113.7",
            "fd12::1",
        ] {
            assert_eq!(
                check(&policy, ip),
                Ok(()),
                "{ip} (private and public are allowed)"
            );
        }
    }

    #[test]
    fn the_operator_allows_ranges() {
        let policy = OutboundPolicy::parse_allow(" 127.0.0.0/8, ::1 ,169.254.0.0/16").unwrap();
        assert_eq!(check(&policy, "127.0.0.1"), Ok(()));
        assert_eq!(check(&policy, "::1"), Ok(()));
        assert_eq!(check(&policy, "169.254.169.254"), Ok(()));
        assert_eq!(check(&policy, "224.0.0.1"), Err(Refusal::Multicast));
        let err = OutboundPolicy::parse_allow("127.0.0.0/8,localhost").unwrap_err();
        assert!(err.to_string().contains("`localhost`"), "{err}");
    }

    #[test]
    fn own_addresses_are_refused() {
        let mut policy = OutboundPolicy::parse_allow("").unwrap();
        policy.own = vec!["10.9.8.7".parse().unwrap()];
        assert_eq!(check(&policy, "10.9.8.7"), Err(Refusal::OwnAddress));
        assert_eq!(check(&policy, "10.9.8.6"), Ok(()));
        let real = OutboundPolicy::new("").unwrap();
        assert!(
            real.own.iter().any(IpAddr::is_loopback),
            "the loopback interface is listed"
        );
    }
}
