use std::sync::Arc;

use berth_store::MemStore;

use crate::*;

fn ec2() -> (Ec2, Ec2Scope) {
    let ec2 = Ec2::new(Arc::new(MemStore::new()));
    let scope = Ec2Scope::new("000000000000", "us-east-1");
    ec2.ensure_default_vpc(&scope, "inst-1").unwrap();
    (ec2, scope)
}

fn tcp(port: i32, cidr: &str) -> IpPermission {
    IpPermission {
        protocol: "tcp".into(),
        from_port: Some(port),
        to_port: Some(port),
        sources: vec![(PermissionSource::CidrIpv4(cidr.into()), None)],
    }
}

#[test]
fn the_default_vpc_is_made_once_with_a_subnet_per_zone_and_its_default_group() {
    let (ec2, scope) = ec2();
    ec2.ensure_default_vpc(&scope, "inst-1").unwrap();
    let vpcs = ec2.describe_vpcs(&scope, &[], &[]).unwrap();
    assert_eq!(vpcs.len(), 1);
    let vpc = &vpcs[0];
    assert!(vpc.is_default);
    assert!(vpc.cidr_block.starts_with("10.") && vpc.cidr_block.ends_with("/20"));
    let subnets = ec2.describe_subnets(&scope, &[], &[]).unwrap();
    assert_eq!(subnets.len(), 3);
    let zones: Vec<_> = subnets
        .iter()
        .map(|s| s.availability_zone.as_str())
        .collect();
    for zone in ["us-east-1a", "us-east-1b", "us-east-1c"] {
        assert!(zones.contains(&zone), "{zones:?}");
    }
    assert!(
        subnets
            .iter()
            .all(|s| s.default_for_az && vpc.cidr().contains(&s.cidr()))
    );
    let first = ec2.subnet(&scope, "subnet-default").unwrap();
    assert_eq!(first.availability_zone, "us-east-1a");
    let group = ec2.security_group(&scope, "sg-default").unwrap();
    assert_eq!(group.name, "default");
    assert_eq!(group.vpc_id, vpc.id);
    // Ingress from itself, egress to anywhere.
    assert!(
        group
            .rules
            .iter()
            .any(|r| !r.is_egress && r.source == PermissionSource::Group(group.id.clone()))
    );
    assert!(
        group
            .rules
            .iter()
            .any(|r| r.is_egress && r.source == PermissionSource::CidrIpv4("0.0.0.0/0".into()))
    );
}

struct Routed(Vec<Cidr>);

impl HostRanges for Routed {
    fn ranges(&self) -> Vec<Cidr> {
        self.0.clone()
    }
}

#[test]
fn a_default_vpc_stays_clear_of_ranges_the_host_routes() {
    // Where this installation's default VPC would go without the host's routes...
    let (plain, scope) = ec2();
    let wanted = plain.describe_vpcs(&scope, &[], &[]).unwrap()[0].cidr();
    // ...is taken on the host (another installation's subnet inside it): it moves on.
    let taken = Cidr {
        network: wanted.host(1024),
        prefix: 22,
    };
    assert!(wanted.contains(&taken));
    let ec2 = Ec2::new(Arc::new(MemStore::new())).with_host_ranges(Arc::new(Routed(vec![taken])));
    ec2.ensure_default_vpc(&scope, "inst-1").unwrap();
    let vpc = ec2.describe_vpcs(&scope, &[], &[]).unwrap()[0].cidr();
    assert!(!vpc.overlaps(&taken), "{vpc} overlaps {taken}");
    for subnet in ec2.describe_subnets(&scope, &[], &[]).unwrap() {
        assert_eq!(subnet.cidr().prefix, 22);
        assert!(vpc.contains(&subnet.cidr()));
    }
}

#[test]
fn default_vpcs_of_two_regions_do_not_share_a_block() {
    let ec2 = Ec2::new(Arc::new(MemStore::new()));
    let mut blocks = Vec::new();
    for region in ["us-east-1", "eu-west-1", "us-west-2", "ap-south-1"] {
        let scope = Ec2Scope::new("000000000000", region);
        ec2.ensure_default_vpc(&scope, "same").unwrap();
        blocks.push(ec2.describe_vpcs(&scope, &[], &[]).unwrap()[0].cidr());
    }
    for (i, a) in blocks.iter().enumerate() {
        for b in &blocks[i + 1..] {
            assert!(!a.overlaps(b), "{a} and {b}");
        }
    }
}

#[test]
fn subnets_stay_inside_their_vpc_and_apart() {
    let (ec2, scope) = ec2();
    let vpc = ec2.create_vpc(&scope, "10.0.0.0/16", None, vec![]).unwrap();
    let a = ec2
        .create_subnet(&scope, &vpc.id, "10.0.1.0/24", Some("us-east-1a"), vec![])
        .unwrap();
    assert_eq!(a.available_ip_address_count(), 251);
    let e = ec2
        .create_subnet(&scope, &vpc.id, "10.0.1.128/25", None, vec![])
        .unwrap_err();
    assert_eq!(e.code(), "InvalidSubnet.Conflict");
    assert_eq!(
        e.to_string(),
        "The CIDR '10.0.1.128/25' conflicts with another subnet"
    );
    let e = ec2
        .create_subnet(&scope, &vpc.id, "10.1.0.0/24", None, vec![])
        .unwrap_err();
    assert_eq!(e.code(), "InvalidSubnet.Range");
    let e = ec2
        .create_subnet(&scope, "vpc-0000000000000000a", "10.0.2.0/24", None, vec![])
        .unwrap_err();
    assert_eq!(e.code(), "InvalidVpcID.NotFound");
    let e = ec2.delete_vpc(&scope, &vpc.id).unwrap_err();
    assert_eq!(e.code(), "DependencyViolation");
    ec2.delete_subnet(&scope, &a.id, false).unwrap();
    ec2.delete_vpc(&scope, &vpc.id).unwrap();
    // Its default group and main table went with it.
    let groups = ec2
        .describe_security_groups(
            &scope,
            &[],
            &[],
            &[Filter {
                name: "vpc-id".into(),
                values: vec![vpc.id.clone()],
            }],
        )
        .unwrap();
    assert!(groups.is_empty());
}

#[test]
fn rules_get_ids_and_duplicates_are_refused() {
    let (ec2, scope) = ec2();
    let group = ec2
        .create_security_group(&scope, "web", "web servers", None, vec![])
        .unwrap();
    let e = ec2
        .create_security_group(&scope, "web", "again", None, vec![])
        .unwrap_err();
    assert_eq!(e.code(), "InvalidGroup.Duplicate");
    let (_, added) = ec2
        .authorize(&scope, &group.id, false, &[tcp(80, "0.0.0.0/0")])
        .unwrap();
    assert_eq!(added.len(), 1);
    assert!(added[0].id.starts_with("sgr-"));
    let e = ec2
        .authorize(&scope, &group.id, false, &[tcp(80, "0.0.0.0/0")])
        .unwrap_err();
    assert_eq!(e.code(), "InvalidPermission.Duplicate");
    assert_eq!(
        e.to_string(),
        "the specified rule \"peer: 0.0.0.0/0, TCP, from port: 80, to port: 80, ALLOW\" already exists"
    );
    // A group named by another group's rule cannot go.
    let app = ec2
        .create_security_group(&scope, "app", "app", None, vec![])
        .unwrap();
    ec2.authorize(
        &scope,
        &app.id,
        false,
        &[IpPermission {
            protocol: "tcp".into(),
            from_port: Some(8080),
            to_port: Some(8080),
            sources: vec![(PermissionSource::Group(group.id.clone()), None)],
        }],
    )
    .unwrap();
    let web = ec2.security_group(&scope, &group.id).unwrap();
    assert_eq!(
        ec2.delete_security_group(&scope, &web, false)
            .unwrap_err()
            .code(),
        "DependencyViolation"
    );
    let removed = ec2
        .revoke(&scope, &group.id, false, &[tcp(80, "0.0.0.0/0")], &[])
        .unwrap();
    assert_eq!(removed[0].id, added[0].id);
    let e = ec2
        .revoke(&scope, &group.id, false, &[tcp(80, "0.0.0.0/0")], &[])
        .unwrap_err();
    assert_eq!(e.code(), "InvalidPermission.NotFound");
    let default = ec2.security_group(&scope, "sg-default").unwrap();
    assert_eq!(
        ec2.delete_security_group(&scope, &default, false)
            .unwrap_err()
            .code(),
        "CannotDelete"
    );
}

#[test]
fn gateways_and_route_tables_keep_their_rules() {
    let (ec2, scope) = ec2();
    let vpc = ec2.create_vpc(&scope, "10.1.0.0/16", None, vec![]).unwrap();
    let subnet = ec2
        .create_subnet(&scope, &vpc.id, "10.1.0.0/24", None, vec![])
        .unwrap();
    let igw = ec2.create_internet_gateway(&scope, vec![]).unwrap();
    ec2.attach_internet_gateway(&scope, &igw.id, &vpc.id)
        .unwrap();
    let second = ec2.create_internet_gateway(&scope, vec![]).unwrap();
    assert_eq!(
        ec2.attach_internet_gateway(&scope, &second.id, &vpc.id)
            .unwrap_err()
            .code(),
        "Resource.AlreadyAssociated"
    );
    assert_eq!(
        ec2.delete_internet_gateway(&scope, &igw.id)
            .unwrap_err()
            .code(),
        "DependencyViolation"
    );
    let table = ec2.create_route_table(&scope, &vpc.id, vec![]).unwrap();
    assert_eq!(table.routes[0].gateway_id, "local");
    ec2.create_route(&scope, &table.id, "0.0.0.0/0", &igw.id)
        .unwrap();
    assert_eq!(
        ec2.create_route(&scope, &table.id, "0.0.0.0/0", &igw.id)
            .unwrap_err()
            .code(),
        "RouteAlreadyExists"
    );
    let association = ec2
        .associate_route_table(&scope, &table.id, &subnet.id)
        .unwrap();
    assert!(association.starts_with("rtbassoc-"));
    assert_eq!(
        ec2.delete_route_table(&scope, &table.id)
            .unwrap_err()
            .code(),
        "DependencyViolation"
    );
    ec2.disassociate_route_table(&scope, &association).unwrap();
    ec2.delete_route(&scope, &table.id, "0.0.0.0/0").unwrap();
    ec2.delete_route_table(&scope, &table.id).unwrap();
    ec2.detach_internet_gateway(&scope, &igw.id, &vpc.id)
        .unwrap();
    ec2.delete_internet_gateway(&scope, &igw.id).unwrap();
}

#[test]
fn tags_are_set_filtered_and_removed_on_any_resource() {
    let (ec2, scope) = ec2();
    let vpc = ec2.create_vpc(&scope, "10.2.0.0/16", None, vec![]).unwrap();
    let tag = Tag {
        key: "Name".into(),
        value: "main".into(),
    };
    ec2.create_tags(&scope, &[vpc.id.clone(), "subnet-default".into()], &[tag])
        .unwrap();
    let named = ec2
        .describe_vpcs(
            &scope,
            &[],
            &[Filter {
                name: "tag:Name".into(),
                values: vec!["ma*".into()],
            }],
        )
        .unwrap();
    assert_eq!(named.len(), 1);
    assert_eq!(named[0].id, vpc.id);
    let tags = ec2.describe_tags(&scope, &[]).unwrap();
    assert_eq!(tags.len(), 2);
    assert!(tags.iter().any(|t| t.resource_type == "subnet"));
    ec2.delete_tags(
        &scope,
        std::slice::from_ref(&vpc.id),
        &[("Name".into(), Some("other".into()))],
    )
    .unwrap();
    assert_eq!(ec2.vpc(&scope, &vpc.id).unwrap().tags.len(), 1);
    ec2.delete_tags(
        &scope,
        std::slice::from_ref(&vpc.id),
        &[("Name".into(), None)],
    )
    .unwrap();
    assert!(ec2.vpc(&scope, &vpc.id).unwrap().tags.is_empty());
    assert_eq!(
        ec2.create_tags(&scope, &["vpc-0000000000000000f".into()], &[])
            .unwrap_err()
            .code(),
        "InvalidVpcID.NotFound"
    );
}
