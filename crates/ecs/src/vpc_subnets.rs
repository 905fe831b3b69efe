//! awsvpc subnets as EC2 holds them: RunTask, CreateService and UpdateService name subnets by
//! EC2's ids (`subnet-default`: the default VPC's first); a task takes its address from its
//! subnet's CIDR block and its availability zone from the subnet's. EC2 itself is behind
//! [`SubnetDirectory`], which the server implements over `berth-ec2`.
//!
//! Each subnet tasks use becomes a network on the hosts that run them (a Docker bridge whose
//! range is the subnet's block), so Berth refuses a subnet whose block overlaps that of
//! another subnet the installation's tasks use (two VPCs may share a block in EC2, not here)
//! or a range the control plane's host already routes (another installation's network, the
//! host's own): such a task could not be reached. The block is claimed once, the first time
//! the subnet is used, under one installation-wide key (`net/ranges`) that every claim
//! compares and bumps, so two overlapping subnets claimed at the same moment cannot both win.

use berth_model::Scope;
use berth_store::{Change, Compare, Op, Update};
use serde::{Deserialize, Serialize};

use crate::keys::{SUBNET_PREFIX, cidr_key, subnet_key};
use crate::network::Subnet;
use crate::{Ecs, EcsError, Result, decode};

/// The key every claim of a block compares and bumps.
const RANGES_KEY: &str = "net/ranges";
const CLAIM_ATTEMPTS: usize = 32;

/// A subnet as EC2 holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VpcSubnet {
    /// EC2's id (an alias resolved).
    pub id: String,
    pub vpc_id: String,
    /// `10.0.1.0/24`.
    pub cidr: String,
    pub availability_zone: String,
}

/// EC2's subnets as ECS asks for them (the server implements it over `berth-ec2`).
pub trait SubnetDirectory: Send + Sync + 'static {
    /// The subnet `id` names in the caller's account and region (`subnet-default`: the
    /// default VPC's first, the default VPC made if need be); `None` when there is none.
    /// `Err` carries EC2's own error text.
    fn subnet(&self, scope: &Scope, id: &str) -> std::result::Result<Option<VpcSubnet>, String>;
}

/// ECS's message for a subnet EC2 does not have (ECS quotes EC2's error).
pub(crate) fn no_such_subnet(id: &str) -> EcsError {
    EcsError::InvalidParameter(format!(
        "Error retrieving subnet information for [{id}]: The subnet ID '{id}' does not exist (Service: AmazonEC2; Status Code: 400; Error Code: InvalidSubnetID.NotFound)"
    ))
}

impl Ecs {
    /// The subnet `id` names, as tasks use it: EC2's (its block claimed the first time it
    /// is used) when the server serves EC2's subnets, else a Berth-chosen /24 for the id.
    pub fn ensure_subnet(&self, scope: &Scope, id: &str) -> Result<Subnet> {
        let Some(directory) = &self.subnets else {
            return self.ensure_hashed_subnet(id);
        };
        let found = directory
            .subnet(scope, id)
            .map_err(|e| EcsError::Server(format!("EC2: {e}")))?;
        let vpc = found.ok_or_else(|| no_such_subnet(id))?;
        if let Some(kv) = self.store.get(&subnet_key(&vpc.id))? {
            return decode(&kv);
        }
        self.claim_vpc_subnet(&vpc)
    }

    /// Records `vpc` as a subnet tasks use, its block claimed against every other subnet's
    /// and the host's routes.
    fn claim_vpc_subnet(&self, vpc: &VpcSubnet) -> Result<Subnet> {
        let subnet = Subnet {
            id: vpc.id.clone(),
            cidr: vpc.cidr.clone(),
            vpc_id: Some(vpc.vpc_id.clone()),
            availability_zone: Some(vpc.availability_zone.clone()),
        };
        let refuse = |what: String| {
            EcsError::InvalidParameter(format!(
                "Subnet {} ({}) cannot hold tasks here: its CIDR block overlaps {what}. Berth runs each subnet tasks use as a network on its hosts, so their blocks may not overlap; use a subnet of a VPC with another CIDR block.",
                vpc.id, vpc.cidr
            ))
        };
        // Each lost race reads again; a claim that keeps losing is a store in trouble.
        for _ in 0..CLAIM_ATTEMPTS {
            let ranges = self.store.get(RANGES_KEY)?;
            let ranges_revision = ranges.as_ref().map_or(0, |kv| kv.mod_revision);
            let mut existing = None;
            for kv in self.store.range(SUBNET_PREFIX, None, 0)? {
                let other: Subnet = decode(&kv)?;
                if other.id == subnet.id {
                    existing = Some(other);
                    break;
                }
                if other.overlaps(&subnet) {
                    return Err(refuse(format!(
                        "subnet {} ({}), which this installation's tasks use",
                        other.id, other.cidr
                    )));
                }
            }
            if let Some(existing) = existing {
                return Ok(existing);
            }
            if let Some(route) = self
                .host_routes()
                .iter()
                .find(|r| r.overlaps(subnet.network(), subnet.prefix()))
            {
                return Err(refuse(format!(
                    "{}/{}, which the host already routes on {} (another installation's network, or the host's own)",
                    route.network, route.prefix, route.interface
                )));
            }
            let generation = ranges
                .map(|kv| {
                    String::from_utf8_lossy(&kv.value)
                        .parse::<u64>()
                        .unwrap_or(0)
                })
                .unwrap_or(0)
                + 1;
            let committed = self.store.txn(
                &[
                    Compare::ModRevision(RANGES_KEY.into(), ranges_revision),
                    Compare::ModRevision(subnet_key(&subnet.id), 0),
                ],
                &[
                    Op::put(subnet_key(&subnet.id), crate::encode(&subnet)),
                    Op::put(cidr_key(subnet.network()), subnet.id.as_bytes().to_vec()),
                    Op::put(RANGES_KEY, generation.to_string().into_bytes()),
                ],
            )?;
            if committed.is_committed() {
                tracing::info!(subnet = %subnet.id, cidr = %subnet.cidr, "a subnet's block is claimed for tasks");
                return Ok(subnet);
            }
            // Another claim came first: read again.
        }
        Err(EcsError::Server(format!(
            "could not claim the block of subnet {} after {CLAIM_ATTEMPTS} attempts",
            vpc.id
        )))
    }

    /// The subnet record tasks in `id` use, if one was made.
    pub fn subnet(&self, id: &str) -> Result<Option<Subnet>> {
        match self.store.get(&subnet_key(id))? {
            Some(kv) => Ok(Some(decode(&kv)?)),
            None => Ok(None),
        }
    }

    /// Serves EC2's subnets to awsvpc tasks.
    pub fn with_subnet_directory(mut self, subnets: std::sync::Arc<dyn SubnetDirectory>) -> Ecs {
        self.subnets = Some(subnets);
        self
    }

    /// The Berth-chosen /24 for `id` (the fallback without EC2; see `network.rs`).
    fn ensure_hashed_subnet(&self, id: &str) -> Result<Subnet> {
        let subnet = berth_store::update(&*self.store, &subnet_key(id), |subnet| {
            if subnet.is_some() {
                return Ok(Update::from(Change::Keep));
            }
            let network = self.free_range(id, &self.host_routes())?;
            let subnet = Subnet {
                id: id.to_string(),
                cidr: format!("{network}/24"),
                vpc_id: None,
                availability_zone: None,
            };
            // The range is claimed with the subnet (another subnet may be taking it now).
            Ok::<_, EcsError>(
                Update::from(Change::Put(subnet))
                    .provided(Compare::ModRevision(cidr_key(network), 0))
                    .also(Op::put(cidr_key(network), id.as_bytes().to_vec())),
            )
        })?;
        Ok(subnet.expect("kept or put"))
    }
}

#[cfg(test)]
mod tests;
