//! Subnets: a block inside their VPC's, overlapping no sibling, in one of the region's
//! availability zones; CreateSubnet, DescribeSubnets, DeleteSubnet, ModifySubnetAttribute.

use berth_store::Op;
use serde::{Deserialize, Serialize};

use crate::cidr::{Cidr, VPC_PREFIXES};
use crate::errors::{dependency, invalid_value, subnet_not_found};
use crate::filters::{Filter, Filtered, flag, matches, one};
use crate::keys::{Kind, new_id};
use crate::tag::Tag;
use crate::zones::{availability_zones, zone_id};
use crate::{Ec2, Ec2Error, Ec2Scope, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subnet {
    pub id: String,
    pub vpc_id: String,
    pub cidr_block: String,
    pub availability_zone: String,
    pub owner_id: String,
    #[serde(default)]
    pub map_public_ip_on_launch: bool,
    #[serde(default)]
    pub default_for_az: bool,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

impl Subnet {
    pub fn cidr(&self) -> Cidr {
        Cidr::parse(&self.cidr_block, "cidrBlock").expect("a stored subnet's block parses")
    }

    /// `availableIpAddressCount` with no interface in it: the block less AWS's five.
    pub fn available_ip_address_count(&self) -> u64 {
        self.cidr().usable()
    }

    pub fn availability_zone_id(&self, region: &str) -> String {
        zone_id(region, &self.availability_zone)
    }

    pub fn arn(&self, scope: &Ec2Scope) -> String {
        scope.arn("subnet", &self.id)
    }
}

impl Filtered for Subnet {
    fn filter_values(&self, name: &str) -> Option<Vec<String>> {
        Some(match name {
            "subnet-id" => one(&self.id),
            "vpc-id" => one(&self.vpc_id),
            "cidr" | "cidr-block" | "cidrBlock" => one(&self.cidr_block),
            "availability-zone" | "availabilityZone" => one(&self.availability_zone),
            "default-for-az" | "defaultForAz" => flag(self.default_for_az),
            "map-public-ip-on-launch" => flag(self.map_public_ip_on_launch),
            "state" => one("available"),
            "owner-id" => one(&self.owner_id),
            _ => return None,
        })
    }
    fn tags(&self) -> &[Tag] {
        &self.tags
    }
}

impl Ec2 {
    /// CreateSubnet. Without a zone, the VPC's subnets are spread over the zones in turn.
    pub fn create_subnet(
        &self,
        scope: &Ec2Scope,
        vpc_id: &str,
        cidr_block: &str,
        availability_zone: Option<&str>,
        tags: Vec<Tag>,
    ) -> Result<Subnet> {
        let cidr = Cidr::parse(cidr_block, "cidrBlock")?;
        let zones = availability_zones(&scope.region);
        if let Some(zone) = availability_zone
            && !zones.iter().any(|z| z == zone)
        {
            return Err(invalid_value(
                zone,
                "availabilityZone",
                &format!(
                    "Subnets can currently only be created in the following availability zones: {}.",
                    zones.join(", ")
                ),
            ));
        }
        let id = new_id("subnet");
        self.under_vpc(scope, vpc_id, |vpc| {
            if !VPC_PREFIXES.contains(&cidr.prefix) || !vpc.cidr().contains(&cidr) {
                return Err(Ec2Error::SubnetRange(format!(
                    "The CIDR '{cidr_block}' is invalid."
                )));
            }
            let siblings: Vec<Subnet> = self
                .all::<Subnet>(&scope.prefix(Kind::Subnet))?
                .into_iter()
                .filter(|s| s.vpc_id == vpc.id)
                .collect();
            if siblings.iter().any(|s| s.cidr().overlaps(&cidr)) {
                return Err(Ec2Error::SubnetConflict(format!(
                    "The CIDR '{cidr_block}' conflicts with another subnet"
                )));
            }
            let zone = match availability_zone {
                Some(zone) => zone.to_string(),
                None => zones[siblings.len() % zones.len()].clone(),
            };
            let subnet = Subnet {
                id: id.clone(),
                vpc_id: vpc.id.clone(),
                cidr_block: cidr.to_string(),
                availability_zone: zone,
                owner_id: scope.account.clone(),
                map_public_ip_on_launch: false,
                default_for_az: false,
                tags: tags.clone(),
            };
            let op = Op::put(
                scope.key(Kind::Subnet, &subnet.id),
                berth_store::encode(&subnet),
            );
            Ok((vec![op], subnet))
        })
    }

    /// The subnet `id` names (`subnet-default`: the default VPC's first default subnet).
    pub fn subnet(&self, scope: &Ec2Scope, id: &str) -> Result<Subnet> {
        let id = self.resolve_alias(scope, id)?;
        self.read(&scope.key(Kind::Subnet, &id))?
            .ok_or_else(|| subnet_not_found(&id))
    }

    /// DescribeSubnets.
    pub fn describe_subnets(
        &self,
        scope: &Ec2Scope,
        ids: &[String],
        filters: &[Filter],
    ) -> Result<Vec<Subnet>> {
        let subnets: Vec<Subnet> = if ids.is_empty() {
            self.all(&scope.prefix(Kind::Subnet))?
        } else {
            ids.iter()
                .map(|id| self.subnet(scope, id))
                .collect::<Result<_>>()?
        };
        let mut out = Vec::with_capacity(subnets.len());
        for subnet in subnets {
            if matches(filters, &subnet)? {
                out.push(subnet);
            }
        }
        Ok(out)
    }

    /// DeleteSubnet: refused while a route table is associated with it or `in_use` (a
    /// task's network interface is in it).
    pub fn delete_subnet(&self, scope: &Ec2Scope, id: &str, in_use: bool) -> Result<()> {
        let subnet = self.subnet(scope, id)?;
        if in_use {
            return Err(dependency("subnet", &subnet.id));
        }
        self.under_vpc(scope, &subnet.vpc_id, |_| {
            if self.is_subnet_associated(scope, &subnet.id)? {
                return Err(dependency("subnet", &subnet.id));
            }
            Ok((vec![Op::delete(scope.key(Kind::Subnet, &subnet.id))], ()))
        })
    }

    /// ModifySubnetAttribute's `MapPublicIpOnLaunch`.
    pub fn set_map_public_ip_on_launch(
        &self,
        scope: &Ec2Scope,
        id: &str,
        value: bool,
    ) -> Result<Subnet> {
        let id = self.resolve_alias(scope, id)?;
        let key = scope.key(Kind::Subnet, &id);
        let stored = berth_store::update(
            self.store(),
            &key,
            |subnet: Option<Subnet>| -> Result<berth_store::Change<Subnet>> {
                let mut subnet = subnet.ok_or_else(|| subnet_not_found(&id))?;
                subnet.map_public_ip_on_launch = value;
                Ok(berth_store::Change::Put(subnet))
            },
        )?;
        stored.ok_or_else(|| subnet_not_found(&id))
    }
}
