use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use berth_model::Scope;

use super::*;
use crate::installation::{HostNetworks, HostRoute};
use crate::network::AddressBook;

/// EC2's subnets, as a fixed table (the server's is over `berth-ec2`).
struct Table(HashMap<String, VpcSubnet>);

impl SubnetDirectory for Table {
    fn subnet(&self, _: &Scope, id: &str) -> std::result::Result<Option<VpcSubnet>, String> {
        let id = if id == "subnet-default" {
            "subnet-aaaa"
        } else {
            id
        };
        Ok(self.0.get(id).cloned())
    }
}

struct Routes(Vec<HostRoute>);

impl HostNetworks for Routes {
    fn routes(&self) -> Vec<HostRoute> {
        self.0.clone()
    }
}

fn vpc_subnet(id: &str, vpc: &str, cidr: &str, zone: &str) -> VpcSubnet {
    VpcSubnet {
        id: id.into(),
        vpc_id: vpc.into(),
        cidr: cidr.into(),
        availability_zone: zone.into(),
    }
}

fn scope() -> Scope {
    Scope::new(
        "000000000000".parse().unwrap(),
        "us-east-1".parse().unwrap(),
    )
}

fn ecs_with(subnets: &[VpcSubnet], routes: Vec<HostRoute>) -> Ecs {
    Ecs::new(Arc::new(berth_store::MemStore::new()))
        .with_host_networks(Arc::new(Routes(routes)))
        .with_subnet_directory(Arc::new(Table(
            subnets.iter().map(|s| (s.id.clone(), s.clone())).collect(),
        )))
}

fn message(r: Result<Subnet>) -> String {
    match r {
        Err(EcsError::InvalidParameter(m)) => m,
        other => panic!("expected InvalidParameter, got {other:?}"),
    }
}

#[test]
fn a_subnet_is_ec2s_block_zone_and_vpc_and_an_unknown_one_is_refused() {
    let ecs = ecs_with(
        &[vpc_subnet(
            "subnet-aaaa",
            "vpc-1",
            "10.201.16.0/22",
            "us-east-1b",
        )],
        vec![],
    );
    let subnet = ecs.ensure_subnet(&scope(), "subnet-default").unwrap();
    assert_eq!(subnet.id, "subnet-aaaa", "the alias resolves to EC2's id");
    assert_eq!(subnet.cidr, "10.201.16.0/22");
    assert_eq!(subnet.availability_zone.as_deref(), Some("us-east-1b"));
    assert_eq!(subnet.vpc_id.as_deref(), Some("vpc-1"));
    assert_eq!(subnet.gateway_cidr(), "10.201.16.1/22");
    assert_eq!(ecs.ensure_subnet(&scope(), "subnet-aaaa").unwrap(), subnet);
    assert_eq!(ecs.subnet("subnet-aaaa").unwrap(), Some(subnet));
    assert_eq!(
        message(ecs.ensure_subnet(&scope(), "subnet-0123456789")),
        "Error retrieving subnet information for [subnet-0123456789]: The subnet ID 'subnet-0123456789' does not exist (Service: AmazonEC2; Status Code: 400; Error Code: InvalidSubnetID.NotFound)"
    );
}

#[test]
fn addresses_come_from_the_block_past_the_ones_aws_keeps() {
    let ecs = ecs_with(
        &[vpc_subnet(
            "subnet-small",
            "vpc-1",
            "10.55.0.16/28",
            "us-east-1a",
        )],
        vec![],
    );
    let subnet = ecs.ensure_subnet(&scope(), "subnet-small").unwrap();
    let store = &*ecs.store;
    let mut book = AddressBook::default();
    // 16 addresses, less the first four and the last.
    assert_eq!(book.free(store, std::slice::from_ref(&subnet)).unwrap(), 11);
    let mut taken = Vec::new();
    while let Some(a) = book.take(store, std::slice::from_ref(&subnet)).unwrap() {
        taken.push(a.ip);
    }
    assert_eq!(taken.len(), 11);
    assert_eq!(taken[0], Ipv4Addr::new(10, 55, 0, 20));
    assert_eq!(taken[10], Ipv4Addr::new(10, 55, 0, 30));
}

#[test]
fn overlapping_blocks_are_refused_with_what_they_overlap() {
    let ecs = ecs_with(
        &[
            vpc_subnet("subnet-a", "vpc-1", "10.0.1.0/24", "us-east-1a"),
            // Another VPC with the same block (EC2 allows it; one host cannot route both).
            vpc_subnet("subnet-b", "vpc-2", "10.0.0.0/16", "us-east-1a"),
            vpc_subnet("subnet-c", "vpc-3", "172.20.5.0/24", "us-east-1a"),
            vpc_subnet("subnet-d", "vpc-4", "10.9.0.0/24", "us-east-1a"),
        ],
        vec![HostRoute {
            network: Ipv4Addr::new(172, 20, 0, 0),
            prefix: 16,
            interface: "br-0123456789ab".into(),
        }],
    );
    ecs.ensure_subnet(&scope(), "subnet-a").unwrap();
    let clash = message(ecs.ensure_subnet(&scope(), "subnet-b"));
    assert!(
        clash.starts_with("Subnet subnet-b (10.0.0.0/16) cannot hold tasks here: its CIDR block overlaps subnet subnet-a (10.0.1.0/24)"),
        "{clash}"
    );
    let routed = message(ecs.ensure_subnet(&scope(), "subnet-c"));
    assert!(
        routed.contains("overlaps 172.20.0.0/16, which the host already routes on br-0123456789ab"),
        "{routed}"
    );
    // Nothing was recorded for the refused ones; a clear block still works.
    assert_eq!(ecs.subnet("subnet-b").unwrap(), None);
    assert_eq!(
        ecs.ensure_subnet(&scope(), "subnet-d").unwrap().cidr,
        "10.9.0.0/24"
    );
}
