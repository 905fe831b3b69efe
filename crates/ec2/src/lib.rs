//! EC2's networking records for Berth, the part ECS stacks use: VPCs, subnets, security
//! groups and their rules, internet gateways, route tables and their associations, tags on
//! all of them, each account's default VPC in each region, and launch templates. Knows nothing of HTTP.
//!
//! Every resource is one record under `ec2/{account}/{region}/` (`keys.rs`). What must hold
//! across records of a VPC (subnets not overlapping, group names unique, nothing left in a
//! VPC being deleted) is decided in a read-modify-write of the VPC record itself, which each
//! such change rewrites (`Vpc::generation`), so two writers racing on one VPC cannot both
//! commit on what they read.

mod cidr;
mod defaults;
mod errors;
mod filters;
mod groups;
mod keys;
mod launch_templates;
mod lifecycle;
mod routing;
mod subnets;
mod tag;
mod tags;
mod vpcs;
mod zones;

use std::sync::Arc;

use berth_store::Store;

pub use cidr::Cidr;
pub use defaults::{DEFAULT_GROUP_ALIAS, DEFAULT_SUBNET_ALIAS};
pub use errors::Ec2Error;
pub use filters::Filter;
pub use groups::{IpPermission, PermissionSource, SecurityGroup, SecurityGroupRule};
pub use keys::Ec2Scope;
pub use launch_templates::{
    LaunchTemplate, LaunchTemplateData, LaunchTemplateRef, LaunchTemplateVersion,
};
pub use routing::{IgwAttachment, InternetGateway, Route, RouteTable, RouteTableAssociation};
pub use subnets::Subnet;
pub use tag::{Tag, TagSpecification, tags_for};
pub use tags::ResourceTag;
pub use vpcs::{Vpc, VpcAttribute};
pub use zones::{availability_zones, zone_id};

pub type Result<T, E = Ec2Error> = std::result::Result<T, E>;

/// The IPv4 ranges the host already routes (other installations' networks among them),
/// which a default VPC's block stays clear of.
pub trait HostRanges: Send + Sync {
    fn ranges(&self) -> Vec<Cidr>;
}

/// EC2 networking over the store.
pub struct Ec2 {
    store: Arc<dyn Store>,
    host: Option<Arc<dyn HostRanges>>,
}

impl std::fmt::Debug for Ec2 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ec2(..)")
    }
}

impl Ec2 {
    pub fn new(store: Arc<dyn Store>) -> Ec2 {
        Ec2 { store, host: None }
    }

    /// Default VPCs' blocks stay clear of what `host` routes.
    pub fn with_host_ranges(mut self, host: Arc<dyn HostRanges>) -> Ec2 {
        self.host = Some(host);
        self
    }

    pub(crate) fn host_ranges(&self) -> Vec<Cidr> {
        self.host.as_ref().map(|h| h.ranges()).unwrap_or_default()
    }

    pub(crate) fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// A watch on every EC2 record of the scope (from now on): what enforcing security
    /// groups follows.
    pub fn watch(&self, scope: &Ec2Scope) -> Result<berth_store::Watcher> {
        let revision = self.store.current_revision()?;
        Ok(self.store.watch(&scope.root(), revision)?)
    }

    /// Every security group of the scope.
    pub fn security_groups(&self, scope: &Ec2Scope) -> Result<Vec<SecurityGroup>> {
        self.all(&scope.prefix(keys::Kind::SecurityGroup))
    }

    /// Every subnet of the scope.
    pub fn subnets(&self, scope: &Ec2Scope) -> Result<Vec<Subnet>> {
        self.all(&scope.prefix(keys::Kind::Subnet))
    }

    /// Every record under `prefix`, decoded.
    pub(crate) fn all<T: serde::de::DeserializeOwned>(&self, prefix: &str) -> Result<Vec<T>> {
        let mut out = Vec::new();
        berth_store::scan(self.store(), prefix, None, |kv| {
            out.push(berth_store::decode(kv)?);
            Ok::<_, Ec2Error>(true)
        })?;
        Ok(out)
    }

    /// The record at `key`, if any.
    pub(crate) fn read<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        match self.store.get(key)? {
            Some(kv) => Ok(Some(berth_store::decode(&kv)?)),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests;
