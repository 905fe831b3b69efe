//! A load balancer's own loopback address, on which the data plane listens: every load
//! balancer can have a listener on port 80 on one host, and a client on the host reaches
//! it (Berth has no DNS, so `DNSName` is this address as text). The address is hashed from
//! the installation and the load balancer's ARN into 127.64.0.0/10, so two installations on
//! one host rarely draw the same one, and claimed with a store record so that two load
//! balancers of one installation never share one: a claimed address moves on to the next.

use std::net::Ipv4Addr;

use sha2::{Digest, Sha256};

/// 127.64.0.0/10: the network and its prefix length.
pub const ADDRESS_RANGE: (Ipv4Addr, u8) = (Ipv4Addr::new(127, 64, 0, 0), 10);

/// How many addresses past the hashed one a creation tries before giving up.
pub(crate) const MAX_PROBES: u32 = 64;

/// The `attempt`-th address a load balancer may take: the hashed one, then those after it
/// (wrapping inside the range). Host parts 0 and 255 of a /24 are skipped, as some tools
/// read them as network and broadcast addresses.
pub fn address_candidate(installation: &str, arn: &str, attempt: u32) -> Ipv4Addr {
    let digest = Sha256::digest(format!("{installation}\n{arn}").as_bytes());
    let hashed = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    let size = 1u32 << (32 - ADDRESS_RANGE.1);
    let mut offset = hashed % size;
    let mut taken = 0;
    loop {
        let address = u32::from(ADDRESS_RANGE.0) + offset;
        if !matches!(address & 0xff, 0 | 255) {
            if taken == attempt {
                return Ipv4Addr::from(address);
            }
            taken += 1;
        }
        offset = (offset + 1) % size;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_stay_in_the_range_and_differ_per_load_balancer() {
        let a = address_candidate("inst", "arn:a", 0);
        let b = address_candidate("inst", "arn:b", 0);
        let other = address_candidate("other", "arn:a", 0);
        assert_ne!(a, b);
        assert_ne!(a, other);
        for attempt in 0..300 {
            let ip = address_candidate("inst", "arn:a", attempt);
            assert_eq!(ip.octets()[0], 127);
            assert_eq!(ip.octets()[1] & 0xc0, 64, "{ip}");
            assert!(!matches!(ip.octets()[3], 0 | 255), "{ip}");
        }
        assert_ne!(address_candidate("inst", "arn:a", 1), a);
    }
}
