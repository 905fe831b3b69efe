//! The default VPC as the `aws ec2` CLI shows it: what load balancers and target groups are
//! created in.

use crate::{BerthServer, ok_json};

/// The default VPC, its default subnets by zone (a, b, c) with their blocks and zones, and
/// its default security group.
pub struct DefaultNetwork {
    pub vpc: String,
    pub subnets: Vec<String>,
    pub cidrs: Vec<String>,
    pub zones: Vec<String>,
    pub security_group: String,
}

/// Whether `ip` lies in `cidr` (`10.0.1.0/24`).
pub fn in_block(ip: &str, cidr: &str) -> bool {
    let (network, prefix) = cidr.split_once('/').expect("a CIDR block");
    let (Ok(network), Ok(prefix), Ok(ip)) = (
        network.parse::<std::net::Ipv4Addr>(),
        prefix.parse::<u32>(),
        ip.parse::<std::net::Ipv4Addr>(),
    ) else {
        return false;
    };
    let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    u32::from(ip) & mask == u32::from(network)
}

impl DefaultNetwork {
    pub fn of(s: &BerthServer) -> DefaultNetwork {
        let subnets = ok_json(&s.aws(&[
            "ec2",
            "describe-subnets",
            "--filters",
            "Name=default-for-az,Values=true",
        ]));
        let mut placed: Vec<(String, String, String, String)> = subnets["Subnets"]
            .as_array()
            .expect("Subnets")
            .iter()
            .map(|s| {
                let text = |k: &str| s[k].as_str().unwrap_or_default().to_owned();
                (
                    text("AvailabilityZone"),
                    text("SubnetId"),
                    text("VpcId"),
                    text("CidrBlock"),
                )
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
            subnets: placed.iter().map(|p| p.1.clone()).collect(),
            cidrs: placed.iter().map(|p| p.3.clone()).collect(),
            zones: placed.iter().map(|p| p.0.clone()).collect(),
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

/// An ALB made with the aws CLI in the default VPC's first two subnets (and `group`, when
/// given), its HTTP listener on port 80 forwarding to a new `ip` target group holding
/// `targets` (`address:port`), health-checked every 5 s.
pub struct IpAlb {
    pub arn: String,
    pub dns: String,
    pub target_group: String,
}

impl IpAlb {
    pub fn create(s: &BerthServer, targets: &[String], group: Option<&str>) -> IpAlb {
        let net = DefaultNetwork::of(s);
        let elb = |args: &[&str]| {
            let mut all = vec!["elbv2"];
            all.extend_from_slice(args);
            ok_json(&s.aws(&all))
        };
        let name = crate::unique("ip-");
        let mut create = vec![
            "create-load-balancer",
            "--name",
            &name,
            "--subnets",
            &net.subnets[0],
            &net.subnets[1],
        ];
        if let Some(group) = group {
            create.extend_from_slice(&["--security-groups", group]);
        }
        let lb = elb(&create);
        let port = targets
            .first()
            .and_then(|t| t.rsplit_once(':'))
            .map_or("80", |(_, p)| p)
            .to_owned();
        let tg = elb(&[
            "create-target-group",
            "--name",
            &name,
            "--protocol",
            "HTTP",
            "--port",
            &port,
            "--vpc-id",
            &net.vpc,
            "--target-type",
            "ip",
            "--health-check-interval-seconds",
            "5",
            "--health-check-timeout-seconds",
            "2",
            "--healthy-threshold-count",
            "2",
            "--unhealthy-threshold-count",
            "2",
        ]);
        let text = |v: &serde_json::Value| v.as_str().expect("a string").to_owned();
        let alb = IpAlb {
            arn: text(&lb["LoadBalancers"][0]["LoadBalancerArn"]),
            dns: text(&lb["LoadBalancers"][0]["DNSName"]),
            target_group: text(&tg["TargetGroups"][0]["TargetGroupArn"]),
        };
        let described: Vec<String> = targets
            .iter()
            .map(|t| {
                let (ip, port) = t.rsplit_once(':').expect("address:port");
                format!("Id={ip},Port={port}")
            })
            .collect();
        let mut register = vec![
            "register-targets",
            "--target-group-arn",
            &alb.target_group,
            "--targets",
        ];
        register.extend(described.iter().map(String::as_str));
        elb(&register);
        elb(&[
            "create-listener",
            "--load-balancer-arn",
            &alb.arn,
            "--protocol",
            "HTTP",
            "--port",
            "80",
            "--default-actions",
            &format!("Type=forward,TargetGroupArn={}", alb.target_group),
        ]);
        alb
    }
}
