//! What ELBv2 asks of EC2 (the server implements it over `berth-ec2`): the subnets a load
//! balancer is placed in, its security groups, a target group's VPC. Without it (unit tests)
//! ids are checked for their shape only.

use crate::keys::ElbScope;

/// A subnet as a load balancer is placed in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetPlacement {
    /// The subnet's own id (`subnet-default` resolved).
    pub id: String,
    pub vpc_id: String,
    pub availability_zone: String,
}

pub trait Networks: Send + Sync + 'static {
    /// The subnet, `None` when the scope has no such subnet.
    fn subnet(&self, scope: &ElbScope, id: &str) -> Result<Option<SubnetPlacement>, String>;
    /// The security group's own id and its VPC, `None` when there is no such group.
    fn security_group(
        &self,
        scope: &ElbScope,
        id: &str,
    ) -> Result<Option<(String, String)>, String>;
    fn vpc_exists(&self, scope: &ElbScope, id: &str) -> Result<bool, String>;
}
