//! IP networks (CIDR blocks): how a deployment names the proxies whose forwarding headers it
//! believes (`ServerConfig::trusted_proxies`).
//!
//! Design decision: a network written with bits set past its prefix (`10.0.0.1/8`) is refused,
//! not silently truncated. In a list that decides whose headers are believed, it is more likely
//! a typo (`/8` for `/28`) than shorthand; the error names the network it would have meant.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An IP network: an address and a prefix length, with no bits set past the prefix.
///
/// Parsed from `a.b.c.d/n` or `x:y::/n`; a bare address is the network of that one address
/// (`/32` or `/128`). An IPv4 network also contains the IPv4-mapped IPv6 form of its addresses
/// (`::ffff:a.b.c.d`, as a dual-stack socket reports IPv4 peers), and an IPv6 network the IPv4
/// addresses whose mapped form it contains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

/// Why a string or an address and prefix are not an [`IpNet`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IpNetError {
    /// The part before the `/` is not an address.
    #[error("{0:?} is not an IPv4 or IPv6 address (expected e.g. 10.0.0.0/8 or 2001:db8::/32)")]
    Address(String),
    /// The part after the `/` is not a decimal number.
    #[error("prefix length {0:?} is not a number of bits")]
    PrefixSyntax(String),
    /// The prefix is longer than the address.
    #[error("prefix length /{prefix} is longer than an {family} address ({bits} bits)")]
    PrefixTooLong {
        /// The prefix length given.
        prefix: String,
        /// `IPv4` or `IPv6`.
        family: &'static str,
        /// The address's length in bits.
        bits: u8,
    },
    /// The address has bits set past the prefix.
    #[error("{given} has bits set past its prefix: the network is {network}")]
    HostBits {
        /// What was given, as `address/prefix`.
        given: String,
        /// The network the prefix names.
        network: IpNet,
    },
}

impl IpNet {
    /// The network of `prefix` leading bits of `addr`.
    ///
    /// # Errors
    /// [`IpNetError::PrefixTooLong`] past the address's length, [`IpNetError::HostBits`] if
    /// `addr` has bits set past the prefix.
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Self, IpNetError> {
        if prefix > bits(addr) {
            return Err(IpNetError::PrefixTooLong {
                prefix: prefix.to_string(),
                family: family(addr),
                bits: bits(addr),
            });
        }
        let network = Self {
            addr: match addr {
                IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask_v4(prefix))),
                IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask_v6(prefix))),
            },
            prefix,
        };
        if network.addr != addr {
            return Err(IpNetError::HostBits {
                given: format!("{addr}/{prefix}"),
                network,
            });
        }
        Ok(network)
    }

    /// The network's first address.
    #[must_use]
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length in bits.
    #[must_use]
    pub fn prefix_len(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` is in this network.
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => self.contains_v4(net, ip),
            (IpAddr::V4(net), IpAddr::V6(ip)) => ip
                .to_ipv4_mapped()
                .is_some_and(|ip| self.contains_v4(net, ip)),
            (IpAddr::V6(net), IpAddr::V6(ip)) => self.contains_v6(net, ip),
            (IpAddr::V6(net), IpAddr::V4(ip)) => self.contains_v6(net, ip.to_ipv6_mapped()),
        }
    }

    fn contains_v4(&self, net: Ipv4Addr, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask_v4(self.prefix) == u32::from(net)
    }

    fn contains_v6(&self, net: Ipv6Addr, ip: Ipv6Addr) -> bool {
        u128::from(ip) & mask_v6(self.prefix) == u128::from(net)
    }
}

/// The length of `addr` in bits.
fn bits(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// `IPv4` or `IPv6`, for messages.
fn family(addr: IpAddr) -> &'static str {
    match addr {
        IpAddr::V4(_) => "IPv4",
        IpAddr::V6(_) => "IPv6",
    }
}

/// The leading `prefix` bits set (`prefix` ≤ 32; a shift by the whole width is no bits).
fn mask_v4(prefix: u8) -> u32 {
    u32::MAX
        .checked_shl(32_u32.saturating_sub(u32::from(prefix)))
        .unwrap_or(0)
}

/// The leading `prefix` bits set (`prefix` ≤ 128).
fn mask_v6(prefix: u8) -> u128 {
    u128::MAX
        .checked_shl(128_u32.saturating_sub(u32::from(prefix)))
        .unwrap_or(0)
}

impl From<IpAddr> for IpNet {
    /// The network of exactly this address.
    fn from(addr: IpAddr) -> Self {
        Self {
            addr,
            prefix: bits(addr),
        }
    }
}

impl FromStr for IpNet {
    type Err = IpNetError;

    fn from_str(s: &str) -> Result<Self, IpNetError> {
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| IpNetError::Address(addr.to_owned()))?;
        let Some(prefix) = prefix else {
            return Ok(Self::from(addr));
        };
        // Digits only: `u8::from_str` would also take a sign (`/+8`).
        if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(IpNetError::PrefixSyntax(prefix.to_owned()));
        }
        match prefix.parse::<u8>() {
            Ok(bits) => Self::new(addr, bits),
            // Only digits, so it failed by being too large for any address.
            Err(_) => Err(IpNetError::PrefixTooLong {
                prefix: prefix.to_owned(),
                family: family(addr),
                bits: bits(addr),
            }),
        }
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_v4_and_v6_networks_and_bare_addresses() {
        for (text, shown) in [
            ("10.0.0.0/8", "10.0.0.0/8"),
            ("0.0.0.0/0", "0.0.0.0/0"),
            ("192.0.2.7", "192.0.2.7/32"),
            ("192.0.2.7/32", "192.0.2.7/32"),
            ("2001:db8::/32", "2001:db8::/32"),
            ("::/0", "::/0"),
            ("::1", "::1/128"),
            ("2001:DB8:0:0::/64", "2001:db8::/64"),
        ] {
            assert_eq!(net(text).to_string(), shown, "{text}");
        }
        assert_eq!(net("10.1.0.0/16").prefix_len(), 16);
        assert_eq!(net("10.1.0.0/16").addr(), ip("10.1.0.0"));
    }

    #[test]
    fn contains_exactly_the_prefix() {
        let n = net("10.1.0.0/16");
        assert!(n.contains(ip("10.1.0.0")));
        assert!(n.contains(ip("10.1.255.255")));
        assert!(!n.contains(ip("10.2.0.0")));
        assert!(!n.contains(ip("10.0.255.255")));
        let host = net("192.0.2.7");
        assert!(host.contains(ip("192.0.2.7")));
        assert!(!host.contains(ip("192.0.2.8")));
        assert!(net("0.0.0.0/0").contains(ip("203.0.113.9")));
        assert!(!net("0.0.0.0/0").contains(ip("2001:db8::1")));
        let n = net("2001:db8:1::/48");
        assert!(n.contains(ip("2001:db8:1:ffff::1")));
        assert!(!n.contains(ip("2001:db8:2::1")));
        assert!(net("::/0").contains(ip("2001:db8::1")));
        let odd = net("10.0.0.0/9");
        assert!(odd.contains(ip("10.127.0.1")) && !odd.contains(ip("10.128.0.1")));
    }

    #[test]
    fn ipv4_mapped_addresses_match_their_ipv4_network() {
        // A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d.
        assert!(net("127.0.0.0/8").contains(ip("::ffff:127.0.0.1")));
        assert!(!net("127.0.0.0/8").contains(ip("::ffff:128.0.0.1")));
        assert!(net("::ffff:10.0.0.0/104").contains(ip("10.9.9.9")));
        assert!(!net("::1/128").contains(ip("0.0.0.1")));
    }

    #[test]
    fn refuses_what_is_not_a_network_with_a_clear_reason() {
        for (bad, says) in [
            ("", "is not an IPv4 or IPv6 address"),
            ("10.0.0/8", "is not an IPv4 or IPv6 address"),
            ("localhost", "is not an IPv4 or IPv6 address"),
            ("010.0.0.0/8", "is not an IPv4 or IPv6 address"),
            ("fe80::1%eth0", "is not an IPv4 or IPv6 address"),
            ("[::1]/128", "is not an IPv4 or IPv6 address"),
            (" 10.0.0.0/8", "is not an IPv4 or IPv6 address"),
            ("10.0.0.0/", "is not a number of bits"),
            ("10.0.0.0/+8", "is not a number of bits"),
            ("10.0.0.0/8/8", "is not a number of bits"),
            ("10.0.0.0/ 8", "is not a number of bits"),
            ("10.0.0.0/33", "longer than an IPv4 address (32 bits)"),
            ("10.0.0.0/999", "/999 is longer than an IPv4 address"),
            (
                "::/99999999999",
                "/99999999999 is longer than an IPv6 address",
            ),
            ("::/129", "longer than an IPv6 address (128 bits)"),
            (
                "10.0.0.1/8",
                "10.0.0.1/8 has bits set past its prefix: the network is 10.0.0.0/8",
            ),
            (
                "2001:db8::1/64",
                "has bits set past its prefix: the network is 2001:db8::/64",
            ),
        ] {
            let err = bad.parse::<IpNet>().expect_err(bad).to_string();
            assert!(err.contains(says), "{bad:?}: {err}");
        }
    }
}
