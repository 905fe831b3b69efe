//! VPCs: the record, DescribeVpcs, the DNS attributes, and changes made under a VPC
//! (`under_vpc`). Creating and deleting one, which touch other kinds, are `lifecycle.rs`'s.

use berth_store::{Change, Op, Update};
use serde::{Deserialize, Serialize};

use crate::cidr::Cidr;
use crate::errors::{invalid_value, vpc_not_found};
use crate::filters::{Filter, Filtered, flag, matches, one};
use crate::keys::Kind;
use crate::tag::Tag;
use crate::{Ec2, Ec2Error, Ec2Scope, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Vpc {
    pub id: String,
    pub cidr_block: String,
    pub cidr_block_association_id: String,
    pub owner_id: String,
    #[serde(default)]
    pub is_default: bool,
    pub instance_tenancy: String,
    pub enable_dns_support: bool,
    pub enable_dns_hostnames: bool,
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// Bumped by every change made under this VPC (a subnet, a group, a route table), so
    /// those changes serialise on the VPC record (see the crate's comment).
    #[serde(default)]
    pub generation: u64,
}

impl Vpc {
    pub fn cidr(&self) -> Cidr {
        Cidr::parse(&self.cidr_block, "cidrBlock").expect("a stored VPC's block parses")
    }

    /// The same VPC, rewritten so that the change made under it commits only if nothing
    /// else changed under it meanwhile.
    pub(crate) fn bumped(mut self) -> Vpc {
        self.generation += 1;
        self
    }
}

impl Filtered for Vpc {
    fn filter_values(&self, name: &str) -> Option<Vec<String>> {
        Some(match name {
            "vpc-id" => one(&self.id),
            "cidr" | "cidr-block-association.cidr-block" => one(&self.cidr_block),
            "cidr-block-association.association-id" => one(&self.cidr_block_association_id),
            "cidr-block-association.state" | "state" => one("available"),
            "isDefault" | "is-default" => flag(self.is_default),
            "owner-id" => one(&self.owner_id),
            "dhcp-options-id" => one("default"),
            _ => return None,
        })
    }
    fn tags(&self) -> &[Tag] {
        &self.tags
    }
}

/// The VPC attributes ModifyVpcAttribute and DescribeVpcAttribute name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VpcAttribute {
    EnableDnsSupport,
    EnableDnsHostnames,
}

impl VpcAttribute {
    pub fn parse(name: &str) -> Result<VpcAttribute> {
        match name {
            "enableDnsSupport" => Ok(VpcAttribute::EnableDnsSupport),
            "enableDnsHostnames" => Ok(VpcAttribute::EnableDnsHostnames),
            other => Err(invalid_value(
                other,
                "attribute",
                "Valid values are enableDnsSupport, enableDnsHostnames, enableNetworkAddressUsageMetrics.",
            )),
        }
    }
}

impl Ec2 {
    /// A change made under a VPC: `decide` reads the VPC (and whatever else it needs) and
    /// returns the operations to commit, which commit with the VPC rewritten, so they
    /// commit only on what `decide` read. `decide` may run more than once.
    pub(crate) fn under_vpc<R>(
        &self,
        scope: &Ec2Scope,
        vpc_id: &str,
        mut decide: impl FnMut(&Vpc) -> Result<(Vec<Op>, R)>,
    ) -> Result<R> {
        let mut outcome = None;
        let key = scope.key(Kind::Vpc, vpc_id);
        berth_store::update(
            self.store(),
            &key,
            |vpc: Option<Vpc>| -> Result<Update<Vpc>> {
                let vpc = vpc.ok_or_else(|| vpc_not_found(vpc_id))?;
                let (ops, result) = decide(&vpc)?;
                outcome = Some(result);
                let mut update = Update::from(Change::Put(vpc.bumped()));
                update.ops = ops;
                Ok(update)
            },
        )?;
        Ok(outcome.expect("decided"))
    }

    pub fn vpc(&self, scope: &Ec2Scope, id: &str) -> Result<Vpc> {
        self.read(&scope.key(Kind::Vpc, id))?
            .ok_or_else(|| vpc_not_found(id))
    }

    /// DescribeVpcs: the VPCs `ids` names (each must exist), or all; filtered.
    pub fn describe_vpcs(
        &self,
        scope: &Ec2Scope,
        ids: &[String],
        filters: &[Filter],
    ) -> Result<Vec<Vpc>> {
        let vpcs: Vec<Vpc> = if ids.is_empty() {
            self.all(&scope.prefix(Kind::Vpc))?
        } else {
            ids.iter()
                .map(|id| self.vpc(scope, id))
                .collect::<Result<_>>()?
        };
        let mut out = Vec::with_capacity(vpcs.len());
        for vpc in vpcs {
            if matches(filters, &vpc)? {
                out.push(vpc);
            }
        }
        Ok(out)
    }

    /// ModifyVpcAttribute: one DNS attribute. DNS hostnames need DNS support, as in EC2.
    pub fn modify_vpc_attribute(
        &self,
        scope: &Ec2Scope,
        id: &str,
        attribute: VpcAttribute,
        value: bool,
    ) -> Result<Vpc> {
        let key = scope.key(Kind::Vpc, id);
        let stored = berth_store::update(
            self.store(),
            &key,
            |vpc: Option<Vpc>| -> Result<Change<Vpc>> {
                let mut vpc = vpc.ok_or_else(|| vpc_not_found(id))?;
                match attribute {
                    VpcAttribute::EnableDnsSupport => vpc.enable_dns_support = value,
                    VpcAttribute::EnableDnsHostnames => vpc.enable_dns_hostnames = value,
                }
                if vpc.enable_dns_hostnames && !vpc.enable_dns_support {
                    return Err(Ec2Error::InvalidParameterValue(
                        "DNS hostnames can only be enabled when DNS support is also enabled."
                            .into(),
                    ));
                }
                Ok(Change::Put(vpc))
            },
        )?;
        stored.ok_or_else(|| vpc_not_found(id))
    }
}
