//! IPv4 CIDR blocks: parsed, compared, and their usable sizes as AWS counts them.

use std::net::Ipv4Addr;

use crate::errors::invalid_value;
use crate::{Ec2Error, Result};

/// The sizes EC2 allows for VPCs and subnets.
pub(crate) const VPC_PREFIXES: std::ops::RangeInclusive<u8> = 16..=28;

/// An IPv4 block, `network/prefix`, its network address aligned to the prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub network: Ipv4Addr,
    pub prefix: u8,
}

impl Cidr {
    /// `text` as a block; `parameter` names it in EC2's message when it is not one.
    pub fn parse(text: &str, parameter: &str) -> Result<Cidr> {
        let bad = || invalid_value(text, parameter, "This is not a valid CIDR block.");
        let (address, prefix) = text.split_once('/').ok_or_else(bad)?;
        let network: Ipv4Addr = address.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        if prefix > 32 {
            return Err(bad());
        }
        let cidr = Cidr { network, prefix };
        if u32::from(network) & cidr.mask() != u32::from(network) {
            return Err(bad());
        }
        Ok(cidr)
    }

    pub fn mask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix)
        }
    }

    fn first(&self) -> u32 {
        u32::from(self.network)
    }

    fn last(&self) -> u32 {
        self.first() | !self.mask()
    }

    /// Addresses in the block.
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix))
    }

    /// Whether `other` lies wholly inside this block.
    pub fn contains(&self, other: &Cidr) -> bool {
        other.first() >= self.first() && other.last() <= self.last()
    }

    pub fn contains_ip(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == self.first()
    }

    pub fn overlaps(&self, other: &Cidr) -> bool {
        self.first() <= other.last() && other.first() <= self.last()
    }

    /// The `n`th address of the block.
    pub fn host(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(self.first() + n)
    }

    /// Addresses a subnet of this block leaves for interfaces: AWS keeps the first four and
    /// the last one.
    pub fn usable(&self) -> u64 {
        self.size().saturating_sub(5)
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl std::str::FromStr for Cidr {
    type Err = Ec2Error;
    fn from_str(s: &str) -> Result<Cidr> {
        Cidr::parse(s, "cidrBlock")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_parse_only_when_aligned() {
        let c = Cidr::parse("10.0.0.0/16", "cidrBlock").unwrap();
        assert_eq!(c.size(), 65_536);
        assert!(Cidr::parse("10.0.0.1/16", "cidrBlock").is_err());
        assert!(Cidr::parse("10.0.0.0/33", "cidrBlock").is_err());
        assert!(Cidr::parse("nonsense", "cidrBlock").is_err());
        let sub = Cidr::parse("10.0.1.0/24", "cidrBlock").unwrap();
        assert!(c.contains(&sub) && !sub.contains(&c));
        assert!(sub.overlaps(&c));
        assert_eq!(sub.usable(), 251);
        assert!(!sub.overlaps(&Cidr::parse("10.0.2.0/24", "cidrBlock").unwrap()));
    }
}
