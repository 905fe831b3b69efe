//! The default VPC as the `aws ec2` CLI shows it: what load balancers and target groups are
//! created in.

use crate::{BerthServer, ok_json};

/// The default VPC, its default subnets by zone (a, b, c) and its default security group.
pub struct DefaultNetwork {
    pub vpc: String,
    pub subnets: Vec<String>,
    pub security_group: String,
}

impl DefaultNetwork {
    pub fn of(s: &BerthServer) -> DefaultNetwork {
        let subnets = ok_json(&s.aws(&[
            "ec2",
            "describe-subnets",
            "--filters",
            "Name=default-for-az,Values=true",
        ]));
        let mut placed: Vec<(String, String, String)> = subnets["Subnets"]
            .as_array()
            .expect("Subnets")
            .iter()
            .map(|s| {
                let text = |k: &str| s[k].as_str().unwrap_or_default().to_owned();
                (text("AvailabilityZone"), text("SubnetId"), text("VpcId"))
            })
            .collect();
        placed.sort();
        let groups = ok_json(&s.aws(&[
            "ec2",
            "describe-security-groups",
            "--filters",
            "Name=group-name,Values=default",
            &format!("Name=vpc-id,Values={}", placed[0].2),
        ]));
        DefaultNetwork {
            vpc: placed[0].2.clone(),
            subnets: placed.into_iter().map(|(_, id, _)| id).collect(),
            security_group: groups["SecurityGroups"][0]["GroupId"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| panic!("a default group: {groups}")),
        }
    }
}

impl std::fmt::Debug for DefaultNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {:?} {}", self.vpc, self.subnets, self.security_group)
    }
}
