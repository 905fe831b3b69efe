//! EC2's records as ELBv2 checks them (`berth_elbv2::Networks`) and as ECS places awsvpc
//! tasks in them (`berth_ecs::SubnetDirectory`): the subnets, security groups and VPCs of
//! the caller's account and region, the default VPC made first (as EC2's own API does on its
//! first call). And the host's routes as EC2 keeps default VPCs clear of them.

use std::sync::Arc;

use berth_ec2::{Cidr, Ec2, Ec2Error, Ec2Scope};
use berth_ecs::{HostNetworks, SubnetDirectory, VpcSubnet};
use berth_elbv2::{ElbScope, Networks, SubnetPlacement};
use berth_model::{InstallationId, Scope};

pub struct Ec2Networks {
    pub ec2: Arc<Ec2>,
    pub installation: InstallationId,
}

impl Ec2Networks {
    fn scope(&self, scope: &ElbScope) -> Result<Ec2Scope, String> {
        self.ready(Ec2Scope::new(scope.account.clone(), scope.region.clone()))
    }

    fn ready(&self, ec2_scope: Ec2Scope) -> Result<Ec2Scope, String> {
        self.ec2
            .ensure_default_vpc(&ec2_scope, self.installation.as_str())
            .map_err(|e| e.to_string())?;
        Ok(ec2_scope)
    }
}

/// `None` for a record that does not exist, the error's text otherwise.
fn found<T>(result: Result<T, Ec2Error>) -> Result<Option<T>, String> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) if !e.is_internal() => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

impl Networks for Ec2Networks {
    fn subnet(&self, scope: &ElbScope, id: &str) -> Result<Option<SubnetPlacement>, String> {
        let scope = self.scope(scope)?;
        Ok(
            found(self.ec2.subnet(&scope, id))?.map(|s| SubnetPlacement {
                id: s.id,
                vpc_id: s.vpc_id,
                availability_zone: s.availability_zone,
            }),
        )
    }

    fn security_group(
        &self,
        scope: &ElbScope,
        id: &str,
    ) -> Result<Option<(String, String)>, String> {
        let scope = self.scope(scope)?;
        Ok(found(self.ec2.security_group(&scope, id))?.map(|g| (g.id, g.vpc_id)))
    }

    fn vpc_exists(&self, scope: &ElbScope, id: &str) -> Result<bool, String> {
        let scope = self.scope(scope)?;
        Ok(found(self.ec2.vpc(&scope, id))?.is_some())
    }
}

impl SubnetDirectory for Ec2Networks {
    fn subnet(&self, scope: &Scope, id: &str) -> Result<Option<VpcSubnet>, String> {
        let scope = self.ready(Ec2Scope::new(
            scope.account.to_string(),
            scope.region.to_string(),
        ))?;
        Ok(found(self.ec2.subnet(&scope, id))?.map(|s| VpcSubnet {
            id: s.id,
            vpc_id: s.vpc_id,
            cidr: s.cidr_block,
            availability_zone: s.availability_zone,
        }))
    }
}

/// The kernel's routes (`/proc/net/route`, as ECS reads them), as EC2 keeps default VPCs'
/// blocks clear of them.
pub struct HostRoutes;

impl berth_ec2::HostRanges for HostRoutes {
    fn ranges(&self) -> Vec<Cidr> {
        berth_ecs::ProcNetRoute
            .routes()
            .into_iter()
            .map(|r| Cidr {
                network: r.network,
                prefix: r.prefix,
            })
            .collect()
    }
}
