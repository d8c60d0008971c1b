//! SSRF address policy: which destination IPs a delivery may connect to.
//!
//! Owns the table of non-public address ranges ([`is_forbidden`]), the
//! per-deployment policy that can relax it ([`SsrfPolicy`]), and recognising
//! IP-literal URL hosts ([`literal_host_ip`]) so obviously bad destinations
//! are refused when they are created rather than on every delivery.
//!
//! Invariants:
//! - The ranges are explicit tables, independent of std's still-unstable
//!   `is_global` family, so behaviour does not shift with the toolchain.
//! - IPv6 addresses that carry an IPv4 address (mapped, compatible,
//!   translated, NAT64, 6to4) are judged by that IPv4 address too, so
//!   `::ffff:127.0.0.1` cannot sneak loopback past the IPv4 rules.
//!
//! Deliberately not here: DNS resolution. The caller must check every
//! address a hostname resolves to, at connect time, on the address actually
//! dialled (checking before resolving invites DNS rebinding); and it must not
//! follow redirects, which would bypass this check.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};

const fn v4(a: u8, b: u8, c: u8, d: u8, prefix_len: u8) -> Ipv4Net {
    // Const-evaluated: a bad prefix length fails the build, not a request.
    Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), prefix_len)
}

const fn v6(segments: [u16; 8], prefix_len: u8) -> Ipv6Net {
    let [a, b, c, d, e, f, g, h] = segments;
    Ipv6Net::new_assert(Ipv6Addr::new(a, b, c, d, e, f, g, h), prefix_len)
}

/// IPv4 ranges a webhook must never reach, with the reason for each.
/// More specific entries come first so the reported reason is the sharpest.
const FORBIDDEN_V4: &[(Ipv4Net, &str)] = &[
    // AWS, GCP, Azure, OpenStack instance metadata: hands out credentials.
    // Inside link-local below; named so the reason is explicit.
    (v4(169, 254, 169, 254, 32), "cloud metadata service"),
    // Azure WireServer: host-node endpoint reachable from every Azure VM.
    (v4(168, 63, 129, 16, 32), "cloud metadata service"),
    // Limited broadcast; inside 240/4 below, named for clarity.
    (v4(255, 255, 255, 255, 32), "broadcast"),
    // "This network" (RFC 791); 0.0.0.0 dials the local host on most stacks.
    (v4(0, 0, 0, 0, 8), "this network / unspecified"),
    // RFC 1918 private networks: the internal services SSRF is after.
    (v4(10, 0, 0, 0, 8), "private network"),
    // RFC 6598 carrier-grade NAT; also Alibaba's metadata at 100.100.100.200.
    (v4(100, 64, 0, 0, 10), "shared address space (CGNAT)"),
    // Loopback: our own admin API and anything else on this host.
    (v4(127, 0, 0, 0, 8), "loopback"),
    // RFC 3927 link-local: metadata services and unconfigured hosts.
    (v4(169, 254, 0, 0, 16), "link-local"),
    (v4(172, 16, 0, 0, 12), "private network"),
    // RFC 6890 IETF protocol assignments (DS-Lite, NAT64 discovery, ...).
    (v4(192, 0, 0, 0, 24), "IETF protocol assignments"),
    // RFC 5737 documentation ranges: never legitimately routed.
    (v4(192, 0, 2, 0, 24), "documentation (TEST-NET-1)"),
    // RFC 7526 deprecated 6to4 relay anycast: relays into arbitrary networks.
    (v4(192, 88, 99, 0, 24), "6to4 relay anycast"),
    (v4(192, 168, 0, 0, 16), "private network"),
    // RFC 2544 benchmarking: lab networks, not the internet.
    (v4(198, 18, 0, 0, 15), "benchmarking"),
    (v4(198, 51, 100, 0, 24), "documentation (TEST-NET-2)"),
    (v4(203, 0, 113, 0, 24), "documentation (TEST-NET-3)"),
    // Multicast: not a unicast HTTP peer.
    (v4(224, 0, 0, 0, 4), "multicast"),
    // RFC 1112 reserved for future use; not routed.
    (v4(240, 0, 0, 0, 4), "reserved"),
];

/// IPv6 ranges a webhook must never reach. Ranges that embed an IPv4
/// address are not here; see [`embedded_ipv4`].
const FORBIDDEN_V6: &[(Ipv6Net, &str)] = &[
    (v6([0, 0, 0, 0, 0, 0, 0, 0], 128), "unspecified"),
    (v6([0, 0, 0, 0, 0, 0, 0, 1], 128), "loopback"),
    // AWS Nitro instance metadata over IPv6; inside unique-local below.
    (
        v6([0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254], 128),
        "cloud metadata service",
    ),
    // RFC 8215 local-use NAT64: translates into the operator's own networks.
    (v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48), "local-use NAT64"),
    // RFC 6666 discard-only prefix.
    (v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64), "discard-only"),
    // RFC 4380 Teredo: tunnels to an IPv4 peer through a relay, which can
    // land on private IPv4 space; no legitimate webhook receiver uses it.
    (v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32), "Teredo tunnel"),
    // RFC 5180 benchmarking.
    (v6([0x2001, 2, 0, 0, 0, 0, 0, 0], 48), "benchmarking"),
    // RFC 7343 ORCHIDv2 (and the deprecated ORCHID next to it): identifiers,
    // not routable addresses.
    (v6([0x2001, 0x10, 0, 0, 0, 0, 0, 0], 28), "ORCHID"),
    (v6([0x2001, 0x20, 0, 0, 0, 0, 0, 0], 28), "ORCHIDv2"),
    // RFC 3849 and RFC 9637 documentation ranges.
    (v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), "documentation"),
    (v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20), "documentation"),
    // RFC 4193 unique-local: the IPv6 counterpart of RFC 1918.
    (v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7), "unique-local"),
    // RFC 4291 link-local.
    (v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10), "link-local"),
    // RFC 3879 deprecated site-local: still private wherever it is used.
    (v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10), "site-local"),
    (v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), "multicast"),
];

/// Whether `ip` is outside the public unicast internet, by the tables above.
pub fn is_forbidden(ip: IpAddr) -> bool {
    forbidden_reason(ip).is_some()
}

/// Why `ip` is forbidden (`"loopback"`, `"cloud metadata service"`, ...),
/// or `None` if it is a public address. Useful in logs and API errors.
pub fn forbidden_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(ip) => forbidden_reason_v4(ip),
        IpAddr::V6(ip) => FORBIDDEN_V6
            .iter()
            .find(|(net, _)| net.contains(&ip))
            .map(|(_, why)| *why)
            .or_else(|| embedded_ipv4(ip).and_then(forbidden_reason_v4)),
    }
}

fn forbidden_reason_v4(ip: Ipv4Addr) -> Option<&'static str> {
    FORBIDDEN_V4
        .iter()
        .find(|(net, _)| net.contains(&ip))
        .map(|(_, why)| *why)
}

/// The IPv4 address an IPv6 address stands for, if it is one of the forms
/// that route to (or are translated into) an IPv4 host.
fn embedded_ipv4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low32 = || Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        // ::ffff:a.b.c.d, IPv4-mapped (RFC 4291): dual-stack sockets dial
        // the IPv4 address directly.
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some(low32()),
        // ::ffff:0:a.b.c.d, IPv4-translated (RFC 2765 SIIT).
        [0, 0, 0, 0, 0xffff, 0, _, _] => Some(low32()),
        // ::a.b.c.d, deprecated IPv4-compatible (RFC 4291). `::` and `::1`
        // match the IPv6 table before this is consulted.
        [0, 0, 0, 0, 0, 0, _, _] => Some(low32()),
        // 64:ff9b::a.b.c.d, well-known NAT64 prefix (RFC 6052).
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(low32()),
        // 2002:AABB:CCDD::/48, 6to4 (RFC 3056): the IPv4 address sits in
        // bits 16..48 and the relay delivers to it.
        [0x2002, hi, lo, ..] => Some(Ipv4Addr::new(
            (hi >> 8) as u8,
            hi as u8,
            (lo >> 8) as u8,
            lo as u8,
        )),
        _ => None,
    }
}

/// Which addresses deliveries may reach, beyond the public internet.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SsrfPolicy {
    /// Turns the check off entirely, loopback and metadata included; meant
    /// for local development and tests, never for a shared deployment.
    pub allow_private_networks: bool,
    /// Ranges allowed even though they are in the forbidden table, e.g. a
    /// receiver on an internal `10.20.0.0/16` network.
    pub allow_cidrs: Vec<IpNet>,
}

/// The refusal [`SsrfPolicy::check`] returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("destination address {ip} is in a blocked range")]
pub struct SsrfBlocked {
    pub ip: IpAddr,
}

// === impl SsrfPolicy ===

impl SsrfPolicy {
    /// Allows `ip` if the policy is open, an allow-listed range covers it,
    /// or it is not forbidden at all.
    ///
    /// An allow-listed IPv4 range also covers IPv6 forms embedding those
    /// addresses (`::ffff:10.0.0.1` under `10.0.0.0/8`), since they reach
    /// the same host.
    pub fn check(&self, ip: IpAddr) -> Result<(), SsrfBlocked> {
        if self.allow_private_networks || !is_forbidden(ip) || self.is_allow_listed(ip) {
            Ok(())
        } else {
            Err(SsrfBlocked { ip })
        }
    }

    fn is_allow_listed(&self, ip: IpAddr) -> bool {
        let embedded = match ip {
            IpAddr::V6(v6) => embedded_ipv4(v6).map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        self.allow_cidrs
            .iter()
            .any(|net| net.contains(&ip) || embedded.is_some_and(|v4| net.contains(&v4)))
    }
}

/// The IP address a URL host denotes literally, or `None` for a host name.
///
/// Accepts bracketed (`[::1]`) and bare IPv6, dotted-quad IPv4, and the
/// legacy numeric IPv4 spellings that resolvers and browsers still honour
/// (`127.1`, `0x7f.0.0.1`, `2130706433`, `0177.0.0.1`), because each of those
/// would otherwise slip past a destination-creation check as a "host name"
/// and then dial loopback. A zone index (`[fe80::1%eth0]`) is dropped and
/// the address returned, so the link-local rule still sees it.
pub fn literal_host_ip(host: &str) -> Option<IpAddr> {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return parse_ipv6_with_zone(inner).map(IpAddr::V6);
    }
    if let Some(v6) = parse_ipv6_with_zone(host) {
        return Some(IpAddr::V6(v6));
    }
    parse_legacy_ipv4(host).map(IpAddr::V4)
}

fn parse_ipv6_with_zone(s: &str) -> Option<Ipv6Addr> {
    // URLs escape `%` as `%25`; either way the address is what precedes it.
    let addr = s.split_once('%').map_or(s, |(addr, _zone)| addr);
    addr.parse().ok()
}

/// IPv4 in inet_aton / WHATWG URL form: one to four dot-separated parts,
/// each decimal, octal (leading `0`) or hex (`0x`); the last part fills all
/// remaining bytes. One trailing dot is tolerated, as in a URL host.
fn parse_legacy_ipv4(s: &str) -> Option<Ipv4Addr> {
    let s = s.strip_suffix('.').unwrap_or(s);
    if s.is_empty() {
        return None;
    }
    let mut parts = [0u32; 4];
    let mut count = 0;
    for part in s.split('.') {
        let slot = parts.get_mut(count)?;
        *slot = parse_ipv4_number(part)?;
        count += 1;
    }
    let (&last, leading) = parts.get(..count)?.split_last()?;
    if leading.iter().any(|&p| p > 0xff) {
        return None;
    }
    // The last part covers 4 - (count - 1) bytes.
    let last_bytes = 5 - count as u32;
    if last_bytes < 4 && last >> (8 * last_bytes) != 0 {
        return None;
    }
    let value = leading
        .iter()
        .enumerate()
        .fold(last, |acc, (i, &p)| acc | (p << (24 - 8 * i as u32)));
    Some(Ipv4Addr::from(value))
}

fn parse_ipv4_number(part: &str) -> Option<u32> {
    let (digits, radix) =
        if let Some(hex) = part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
            (hex, 16)
        } else if let Some(octal) = part.strip_prefix('0').filter(|rest| !rest.is_empty()) {
            (octal, 8)
        } else {
            (part, 10)
        };
    if digits.is_empty() {
        // "0x" alone is zero in inet_aton; an empty part is malformed.
        return (radix == 16).then_some(0);
    }
    // from_str_radix would accept a leading '+'; a host never has one.
    if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(digits, radix).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forbidden_table_covers_non_public_ranges() {
        let cases: &[(&str, bool)] = &[
            ("127.0.0.1", true),
            ("127.255.255.254", true),
            ("10.1.2.3", true),
            ("172.16.0.1", true),
            ("172.31.255.255", true),
            ("172.32.0.1", false),
            ("172.15.255.255", false),
            ("192.168.1.1", true),
            ("169.254.169.254", true),
            ("169.254.1.1", true),
            ("168.63.129.16", true),
            ("100.64.0.1", true),
            ("100.127.255.255", true),
            ("100.128.0.0", false),
            ("0.0.0.0", true),
            ("0.1.2.3", true),
            ("192.0.0.8", true),
            ("192.0.2.1", true),
            ("198.18.0.1", true),
            ("198.19.255.255", true),
            ("198.20.0.0", false),
            ("198.51.100.7", true),
            ("203.0.113.9", true),
            ("224.0.0.1", true),
            ("239.255.255.250", true),
            ("240.0.0.1", true),
            ("255.255.255.255", true),
            ("192.88.99.1", true),
            ("8.8.8.8", false),
            ("1.1.1.1", false),
            ("93.184.216.34", false),
            ("::1", true),
            ("::", true),
            ("fe80::1", true),
            ("febf:ffff::1", true),
            ("fec0::1", true),
            ("fc00::1", true),
            ("fd12:3456::1", true),
            ("fd00:ec2::254", true),
            ("ff02::1", true),
            ("2001:db8::1", true),
            ("3fff::1", true),
            ("100::1", true),
            ("2001::1", true),
            ("2001:2::1", true),
            ("2001:20::1", true),
            ("64:ff9b:1::1", true),
            ("::ffff:127.0.0.1", true),
            ("::ffff:10.0.0.1", true),
            ("::ffff:169.254.169.254", true),
            ("::ffff:8.8.8.8", false),
            ("::ffff:0:127.0.0.1", true),
            ("::127.0.0.1", true),
            ("::8.8.8.8", false),
            ("64:ff9b::a00:1", true),
            ("64:ff9b::808:808", false),
            ("2002:7f00:1::", true),
            ("2002:a9fe:a9fe::1", true),
            ("2002:808:808::1", false),
            ("2606:4700::1", false),
            ("2a00:1450:4001:82b::200e", false),
        ];
        for (addr, forbidden) in cases {
            assert_eq!(is_forbidden(ip(addr)), *forbidden, "{addr}");
        }
    }

    #[test]
    fn reasons_name_the_most_specific_range() {
        assert_eq!(
            forbidden_reason(ip("169.254.169.254")),
            Some("cloud metadata service")
        );
        assert_eq!(
            forbidden_reason(ip("fd00:ec2::254")),
            Some("cloud metadata service")
        );
        assert_eq!(forbidden_reason(ip("::ffff:127.0.0.1")), Some("loopback"));
        assert_eq!(forbidden_reason(ip("255.255.255.255")), Some("broadcast"));
        assert_eq!(forbidden_reason(ip("8.8.8.8")), None);
    }

    #[test]
    fn default_policy_blocks_forbidden_and_allows_public() {
        let policy = SsrfPolicy::default();
        assert_eq!(
            policy.check(ip("10.0.0.1")),
            Err(SsrfBlocked { ip: ip("10.0.0.1") })
        );
        assert!(policy.check(ip("8.8.8.8")).is_ok());
        assert!(policy.check(ip("2606:4700::1")).is_ok());
        assert_eq!(
            SsrfBlocked { ip: ip("::1") }.to_string(),
            "destination address ::1 is in a blocked range"
        );
    }

    #[test]
    fn allow_list_opens_only_its_ranges() {
        let policy = SsrfPolicy {
            allow_private_networks: false,
            allow_cidrs: vec![
                "10.20.0.0/16".parse().unwrap(),
                "fd00:1::/32".parse().unwrap(),
            ],
        };
        assert!(policy.check(ip("10.20.3.4")).is_ok());
        assert!(policy.check(ip("::ffff:10.20.3.4")).is_ok());
        assert!(policy.check(ip("fd00:1::5")).is_ok());
        assert!(policy.check(ip("10.21.0.1")).is_err());
        assert!(policy.check(ip("127.0.0.1")).is_err());
        assert!(policy.check(ip("fd00:ec2::254")).is_err());
        assert!(policy.check(ip("8.8.8.8")).is_ok());
    }

    #[test]
    fn allow_private_networks_disables_the_check() {
        let policy = SsrfPolicy {
            allow_private_networks: true,
            allow_cidrs: vec![],
        };
        for addr in ["127.0.0.1", "169.254.169.254", "::1", "10.0.0.1", "8.8.8.8"] {
            assert!(policy.check(ip(addr)).is_ok(), "{addr}");
        }
    }

    #[test]
    fn policy_deserialises_with_defaults() {
        let policy: SsrfPolicy =
            serde_json::from_str(r#"{"allow_cidrs": ["10.0.0.0/8"]}"#).unwrap();
        assert!(!policy.allow_private_networks);
        assert_eq!(policy.allow_cidrs.len(), 1);
        assert!(serde_json::from_str::<SsrfPolicy>(r#"{"allow_cidrs": ["nope"]}"#).is_err());
        assert!(serde_json::from_str::<SsrfPolicy>(r#"{"typo": true}"#).is_err());
    }

    #[test]
    fn literal_host_ip_recognises_ip_hosts() {
        let cases: &[(&str, Option<&str>)] = &[
            ("127.0.0.1", Some("127.0.0.1")),
            ("8.8.8.8", Some("8.8.8.8")),
            ("[::1]", Some("::1")),
            ("::1", Some("::1")),
            ("[::ffff:127.0.0.1]", Some("::ffff:127.0.0.1")),
            ("[fe80::1%25eth0]", Some("fe80::1")),
            ("[fe80::1%eth0]", Some("fe80::1")),
            ("127.1", Some("127.0.0.1")),
            ("127.0.1", Some("127.0.0.1")),
            ("2130706433", Some("127.0.0.1")),
            ("0x7f.0.0.1", Some("127.0.0.1")),
            ("0X7F000001", Some("127.0.0.1")),
            ("0177.0.0.1", Some("127.0.0.1")),
            ("0", Some("0.0.0.0")),
            ("127.0.0.1.", Some("127.0.0.1")),
            ("10.0.0.0x1", Some("10.0.0.1")),
            ("4294967295", Some("255.255.255.255")),
            ("example.com", None),
            ("1e100.net", None),
            ("localhost", None),
            ("", None),
            (".", None),
            ("[]", None),
            ("[example.com]", None),
            ("1.2.3.4.5", None),
            ("256.0.0.1", None),
            ("1.2.3.256", None),
            ("1.2.65536", None),
            ("4294967296", None),
            ("1..2", None),
            ("08.0.0.1", None),
            ("+1.2.3.4", None),
            ("1.2.3.-4", None),
            ("0xg.0.0.1", None),
            ("127.0.0.1:80", None),
        ];
        for (host, expected) in cases {
            assert_eq!(literal_host_ip(host), expected.map(ip), "{host:?}");
        }
    }
}
