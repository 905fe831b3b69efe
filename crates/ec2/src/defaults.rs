//! The region's availability zones, and each account's default VPC in each region: made
//! the first time anything asks for it, in one transaction that creates its marker, so two
//! replicas racing make one. Its block is a /20 of 10.192.0.0/10 chosen from a slot hashed
//! from the installation, account and region, so installations sharing a Docker host rarely
//! draw the same; it moves on past a /20 another default VPC of the installation holds and
//! past ranges the host already routes ([`HostRanges`]: other installations' networks), since
//! awsvpc tasks take their addresses from its subnets and each subnet becomes a network on
//! the host. A /20 rather than AWS's /16 (172.31.0.0/16) leaves 1,024 of them to installations
//! sharing a host. Inside it: one /22 default subnet per zone (AWS's layout, scaled down), the
//! default security group, an internet gateway and the main route table routing 0.0.0.0/0 to
//! it. `subnet-default` and `sg-default` name its first subnet and its group wherever an id
//! is taken.

use std::net::Ipv4Addr;

use berth_store::{Compare, Op};
use serde::{Deserialize, Serialize};

use crate::cidr::Cidr;
use crate::keys::{Kind, new_id};
use crate::routing::{IgwAttachment, InternetGateway};
use crate::subnets::Subnet;
use crate::vpcs::Vpc;
use crate::zones::availability_zones;
use crate::{Ec2, Ec2Error, Ec2Scope, Result};

pub const DEFAULT_SUBNET_ALIAS: &str = "subnet-default";
pub const DEFAULT_GROUP_ALIAS: &str = "sg-default";

const POOL_BASE: u32 = 10 << 24 | 192 << 16;
/// The default VPC's block, a /20: 1,024 of them in 10.192.0.0/10.
const VPC_PREFIX: u8 = 20;
const POOL_SLOTS: u32 = 1 << (VPC_PREFIX - 10);
/// Each zone's default subnet, a /22 (four fit the /20; regions have three zones).
const SUBNET_PREFIX: u8 = 22;
/// The installation-wide claim on a default VPC's /16 (the Docker networks it may become
/// are the host's, not an account's).
const CLAIM_PREFIX: &str = "ec2-default-cidr/";

/// The default VPC's marker: what the aliases name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DefaultVpc {
    vpc_id: String,
    subnet_ids: Vec<String>,
    group_id: String,
}

/// FNV-1a: stable across builds and platforms.
fn slot_of(seed: &str) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for b in seed.bytes() {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash % POOL_SLOTS
}

impl Ec2 {
    /// Makes the scope's default VPC unless it was made before (even if it was deleted
    /// since, as in EC2, where a deleted default VPC stays gone). `installation` seeds the
    /// choice of its block.
    pub fn ensure_default_vpc(&self, scope: &Ec2Scope, installation: &str) -> Result<()> {
        let marker = scope.default_vpc_key();
        let mut routed: Option<Vec<Cidr>> = None;
        let start = slot_of(&format!(
            "{installation}/{}/{}",
            scope.account, scope.region
        ));
        for offset in 0..POOL_SLOTS {
            if self.store().get(&marker)?.is_some() {
                return Ok(());
            }
            let slot = (start + offset) % POOL_SLOTS;
            let network = Ipv4Addr::from(POOL_BASE + (slot << (32 - VPC_PREFIX)));
            let claim = format!("{CLAIM_PREFIX}{network}");
            if self.store().get(&claim)?.is_some() {
                continue;
            }
            let block = Cidr {
                network,
                prefix: VPC_PREFIX,
            };
            let routed = routed.get_or_insert_with(|| self.host_ranges());
            if routed.iter().any(|r| r.overlaps(&block)) {
                continue;
            }
            let (compares, ops) = self.default_vpc_records(scope, network, &claim, &marker);
            if self.store().txn(&compares, &ops)?.is_committed() {
                return Ok(());
            }
        }
        if self.store().get(&marker)?.is_some() {
            return Ok(());
        }
        Err(Ec2Error::InvalidParameterValue(
            "No address range is left for a default VPC in this installation.".into(),
        ))
    }

    fn default_vpc_records(
        &self,
        scope: &Ec2Scope,
        network: Ipv4Addr,
        claim: &str,
        marker: &str,
    ) -> (Vec<Compare>, Vec<Op>) {
        let vpc = Vpc {
            id: new_id("vpc"),
            cidr_block: Cidr {
                network,
                prefix: VPC_PREFIX,
            }
            .to_string(),
            cidr_block_association_id: new_id("vpc-cidr-assoc"),
            owner_id: scope.account.clone(),
            is_default: true,
            instance_tenancy: "default".into(),
            enable_dns_support: true,
            enable_dns_hostnames: true,
            tags: Vec::new(),
            generation: 0,
        };
        let gateway = InternetGateway {
            id: new_id("igw"),
            owner_id: scope.account.clone(),
            attachments: vec![IgwAttachment {
                vpc_id: vpc.id.clone(),
            }],
            tags: Vec::new(),
        };
        let subnets: Vec<Subnet> = availability_zones(&scope.region)
            .into_iter()
            .enumerate()
            .map(|(n, zone)| Subnet {
                id: new_id("subnet"),
                vpc_id: vpc.id.clone(),
                cidr_block: Cidr {
                    network: Ipv4Addr::from(
                        u32::from(network) + ((n as u32) << (32 - SUBNET_PREFIX)),
                    ),
                    prefix: SUBNET_PREFIX,
                }
                .to_string(),
                availability_zone: zone,
                owner_id: scope.account.clone(),
                map_public_ip_on_launch: true,
                default_for_az: true,
                tags: Vec::new(),
            })
            .collect();
        let (mut ops, group_id) = self.vpc_companions(scope, &vpc, Some(&gateway.id));
        let default = DefaultVpc {
            vpc_id: vpc.id.clone(),
            subnet_ids: subnets.iter().map(|s| s.id.clone()).collect(),
            group_id,
        };
        ops.push(Op::put(
            scope.key(Kind::Vpc, &vpc.id),
            berth_store::encode(&vpc),
        ));
        ops.push(Op::put(
            scope.key(Kind::InternetGateway, &gateway.id),
            berth_store::encode(&gateway),
        ));
        for subnet in &subnets {
            ops.push(Op::put(
                scope.key(Kind::Subnet, &subnet.id),
                berth_store::encode(subnet),
            ));
        }
        ops.push(Op::put(marker, berth_store::encode(&default)));
        ops.push(Op::put(claim, scope.default_vpc_key().into_bytes()));
        let compares = vec![
            Compare::ModRevision(marker.to_string(), 0),
            Compare::ModRevision(claim.to_string(), 0),
        ];
        (compares, ops)
    }

    fn default_vpc_marker(&self, scope: &Ec2Scope) -> Result<Option<DefaultVpc>> {
        self.read(&scope.default_vpc_key())
    }

    /// `subnet-default` and `sg-default` as the ids they name (other ids as they are).
    pub fn resolve_alias(&self, scope: &Ec2Scope, id: &str) -> Result<String> {
        if id != DEFAULT_SUBNET_ALIAS && id != DEFAULT_GROUP_ALIAS {
            return Ok(id.to_string());
        }
        let Some(default) = self.default_vpc_marker(scope)? else {
            return Ok(id.to_string());
        };
        Ok(if id == DEFAULT_SUBNET_ALIAS {
            default
                .subnet_ids
                .first()
                .cloned()
                .unwrap_or(id.to_string())
        } else {
            default.group_id
        })
    }

    pub(crate) fn resolve_aliases(&self, scope: &Ec2Scope, ids: &[String]) -> Result<Vec<String>> {
        ids.iter().map(|id| self.resolve_alias(scope, id)).collect()
    }

    /// The default VPC's id, if the scope has one.
    pub fn default_vpc_id(&self, scope: &Ec2Scope) -> Result<Option<String>> {
        let Some(default) = self.default_vpc_marker(scope)? else {
            return Ok(None);
        };
        Ok(self
            .read::<Vpc>(&scope.key(Kind::Vpc, &default.vpc_id))?
            .map(|v| v.id))
    }
}
