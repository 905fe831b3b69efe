use berth_ec2::SecurityGroupRule;

use super::*;

const VPC: &str = "vpc-1";

fn rule(
    egress: bool,
    protocol: &str,
    ports: (i32, i32),
    source: PermissionSource,
) -> SecurityGroupRule {
    SecurityGroupRule {
        id: "sgr-1".into(),
        is_egress: egress,
        protocol: protocol.into(),
        from_port: ports.0,
        to_port: ports.1,
        source,
        description: None,
    }
}

fn group(id: &str, name: &str, rules: Vec<SecurityGroupRule>) -> SecurityGroup {
    SecurityGroup {
        id: id.into(),
        name: name.into(),
        description: "d".into(),
        vpc_id: VPC.into(),
        owner_id: "000000000000".into(),
        rules,
        tags: Vec::new(),
    }
}

fn everything_out() -> SecurityGroupRule {
    rule(
        true,
        "-1",
        (-1, -1),
        PermissionSource::CidrIpv4("0.0.0.0/0".into()),
    )
}

fn interface(address: &str, groups: &[&str]) -> Interface {
    Interface {
        address: address.parse().unwrap(),
        subnet_id: "subnet-1".into(),
        groups: groups.iter().map(|g| (*g).to_string()).collect(),
    }
}

fn subnet() -> Subnet {
    Subnet {
        id: "subnet-1".into(),
        vpc_id: VPC.into(),
        cidr_block: "10.192.5.0/24".into(),
        availability_zone: "us-east-1a".into(),
        owner_id: "000000000000".into(),
        map_public_ip_on_launch: false,
        default_for_az: true,
        tags: Vec::new(),
    }
}

/// The case: a server group allowing tcp 8080 from a client group; the default
/// group's own rule.
fn groups() -> Vec<SecurityGroup> {
    vec![
        group(
            "sg-def",
            "default",
            vec![
                rule(
                    false,
                    "-1",
                    (-1, -1),
                    PermissionSource::Group("sg-def".into()),
                ),
                everything_out(),
            ],
        ),
        group(
            "sg-a",
            "server",
            vec![
                rule(
                    false,
                    "tcp",
                    (8080, 8080),
                    PermissionSource::Group("sg-b".into()),
                ),
                rule(
                    false,
                    "tcp",
                    (22, 22),
                    PermissionSource::CidrIpv4("192.168.0.0/16".into()),
                ),
                rule(
                    false,
                    "tcp",
                    (1, 2),
                    PermissionSource::CidrIpv6("::/0".into()),
                ),
                rule(
                    false,
                    "icmpv6",
                    (-1, -1),
                    PermissionSource::Group("sg-b".into()),
                ),
                everything_out(),
            ],
        ),
        group("sg-b", "client", vec![everything_out()]),
        group("sg-c", "other", vec![everything_out()]),
    ]
}

fn ingress(f: &Firewall) -> Vec<(String, Option<i64>, Vec<String>)> {
    f.ingress
        .iter()
        .flatten()
        .map(|r| {
            (
                r.ip_protocol.clone().unwrap(),
                r.from_port,
                r.cidrs.clone().unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_source_group_becomes_its_members_addresses() {
    let tasks = [
        interface("10.192.5.10", &["sg-a"]),
        interface("10.192.5.11", &["sg-b"]),
        interface("10.192.5.12", &["sg-b", "sg-c"]),
        interface("10.192.5.13", &["sg-c"]),
    ];
    let m = Membership::new(groups(), vec![subnet()], Some(VPC.into()), &tasks, &[]);
    let server = m.firewall(&tasks[0]);
    assert_eq!(
        ingress(&server),
        vec![
            (
                "tcp".into(),
                Some(8080),
                vec!["10.192.5.11/32".into(), "10.192.5.12/32".into()]
            ),
            ("tcp".into(), Some(22), vec!["192.168.0.0/16".into()]),
        ],
        "IPv6 ranges and ICMPv6 are left out; sg-c's member is not let in"
    );
    let egress = server.egress.unwrap();
    assert_eq!(egress.len(), 1);
    assert_eq!(egress[0].ip_protocol.as_deref(), Some("-1"));
    assert_eq!(egress[0].from_port, None, "all protocols: no ports");
    assert_eq!(egress[0].cidrs, Some(vec!["0.0.0.0/0".to_string()]));
    // A client group has no ingress rules at all: nothing comes in.
    assert_eq!(m.firewall(&tasks[1]).ingress, Some(vec![]));
}

#[test]
fn the_default_group_holds_its_members_and_the_host() {
    let tasks = [
        interface("10.192.5.10", &[]),
        interface("10.192.5.11", &["sg-default"]),
        interface("10.192.5.12", &["sg-def"]),
        interface("10.192.5.13", &["sg-b"]),
    ];
    let m = Membership::new(groups(), vec![subnet()], Some(VPC.into()), &tasks, &[]);
    for task in &tasks[..3] {
        assert_eq!(
            ingress(&m.firewall(task)),
            vec![(
                "-1".into(),
                None,
                vec![
                    // The gateway: the host, in every default group.
                    "10.192.5.1/32".into(),
                    "10.192.5.10/32".into(),
                    "10.192.5.11/32".into(),
                    "10.192.5.12/32".into(),
                ]
            )],
            "no groups, the alias and the id are one group"
        );
    }
    // A subnet EC2 does not know is the default VPC's.
    let elsewhere = Interface {
        subnet_id: "subnet-0made0up".into(),
        ..interface("10.192.9.20", &[])
    };
    let m = Membership::new(
        groups(),
        vec![subnet()],
        Some(VPC.into()),
        std::slice::from_ref(&elsewhere),
        &[],
    );
    assert_eq!(
        ingress(&m.firewall(&elsewhere)),
        vec![(
            "-1".into(),
            None,
            vec!["10.192.9.1/32".into(), "10.192.9.20/32".into()]
        )]
    );
}

#[test]
fn a_load_balancer_in_a_source_group_lets_the_gateway_in() {
    let tasks = [interface("10.192.5.10", &["sg-a"])];
    let without = Membership::new(groups(), vec![subnet()], Some(VPC.into()), &tasks, &[]);
    assert_eq!(ingress(&without.firewall(&tasks[0]))[0].0, "tcp");
    assert_eq!(
        ingress(&without.firewall(&tasks[0])).len(),
        1,
        "sg-b has no members"
    );
    let balancers = [(VPC.to_string(), vec!["sg-b".to_string()])];
    let with = Membership::new(
        groups(),
        vec![subnet()],
        Some(VPC.into()),
        &tasks,
        &balancers,
    );
    assert_eq!(
        ingress(&with.firewall(&tasks[0]))[0],
        ("tcp".into(), Some(8080), vec!["10.192.5.1/32".into()])
    );
    // A load balancer without groups is in its VPC's default group.
    let defaulted = [(VPC.to_string(), vec![])];
    let m = Membership::new(
        groups(),
        vec![subnet()],
        Some(VPC.into()),
        &tasks,
        &defaulted,
    );
    assert!(m.holds_host("sg-def"));
    assert!(!m.holds_host("sg-b"));
}

#[test]
fn unknown_groups_allow_nothing_and_egress_follows_destination_groups() {
    let mut all = groups();
    all.push(group(
        "sg-locked",
        "locked",
        vec![rule(
            true,
            "udp",
            (53, 53),
            PermissionSource::Group("sg-b".into()),
        )],
    ));
    let tasks = [
        interface("10.192.5.10", &["sg-gone"]),
        interface("10.192.5.11", &["sg-locked"]),
        interface("10.192.5.12", &["sg-b"]),
    ];
    let m = Membership::new(all, vec![subnet()], Some(VPC.into()), &tasks, &[]);
    assert_eq!(
        m.firewall(&tasks[0]),
        Firewall {
            ingress: Some(vec![]),
            egress: Some(vec![])
        }
    );
    let locked = m.firewall(&tasks[1]).egress.unwrap();
    assert_eq!(
        locked,
        vec![FirewallRule {
            ip_protocol: Some("udp".into()),
            from_port: Some(53),
            to_port: Some(53),
            cidrs: Some(vec!["10.192.5.12/32".into()]),
        }]
    );
}
