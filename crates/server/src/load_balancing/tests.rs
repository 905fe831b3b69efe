//! The plan built from records made through ELBv2's own use cases (on the in-memory store).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use berth_elbv2::{
    Action, CreateListener, CreateLoadBalancer, CreateRule, CreateTargetGroup, ElbScope, Elbv2,
    IpAddressType, LoadBalancerType, Protocol, Scheme, TargetDescription, TargetType,
};
use berth_lb as lb;

use super::{Certificates, build};

fn elbv2() -> (Elbv2, ElbScope) {
    let store = Arc::new(berth_store::MemStore::new());
    (
        Elbv2::new(store, berth_model::InstallationId::from_random(7)),
        ElbScope::new("000000000000", "us-east-1"),
    )
}

#[test]
fn an_alb_with_a_rule_becomes_a_plan_of_used_groups_and_resolved_targets() {
    let (elbv2, scope) = elbv2();
    let balancer = elbv2
        .create_load_balancer(
            &scope,
            CreateLoadBalancer {
                name: "web".into(),
                kind: LoadBalancerType::Application,
                scheme: Scheme::Internal,
                ip_address_type: IpAddressType::Ipv4,
                subnets: vec!["subnet-00000001".into(), "subnet-00000002".into()],
                security_groups: vec![],
                tags: vec![],
            },
        )
        .unwrap();
    let group = |name: &str, kind: TargetType| {
        elbv2
            .create_target_group(
                &scope,
                CreateTargetGroup {
                    name: name.into(),
                    protocol: Some(Protocol::Http),
                    protocol_version: None,
                    port: Some(80),
                    vpc_id: Some("vpc-00000001".into()),
                    target_type: kind,
                    health: Default::default(),
                    tags: vec![],
                },
            )
            .unwrap()
    };
    let ips = group("ips", TargetType::Ip);
    let instances = group("instances", TargetType::Instance);
    let unused = group("unused", TargetType::Ip);
    elbv2
        .register_targets(
            &scope,
            &ips.arn,
            &[TargetDescription {
                id: "10.0.0.7".into(),
                port: Some(8080),
                ..Default::default()
            }],
        )
        .unwrap();
    elbv2
        .register_targets(
            &scope,
            &instances.arn,
            &[
                TargetDescription {
                    id: "i-0123456789abcdef0".into(),
                    port: Some(32768),
                    ..Default::default()
                },
                TargetDescription {
                    id: "i-0000000000000000f".into(),
                    port: None,
                    ..Default::default()
                },
            ],
        )
        .unwrap();
    elbv2
        .register_targets(
            &scope,
            &unused.arn,
            &[TargetDescription {
                id: "10.0.0.9".into(),
                ..Default::default()
            }],
        )
        .unwrap();
    let listener = elbv2
        .create_listener(
            &scope,
            CreateListener {
                load_balancer: balancer.arn.clone(),
                protocol: Some(Protocol::Http),
                port: Some(80),
                ssl_policy: None,
                certificates: vec![],
                alpn_policy: vec![],
                default_actions: vec![Action::forward(Some(ips.arn.clone()), None, None).unwrap()],
                tags: vec![],
            },
            &|_| false,
        )
        .unwrap();
    elbv2
        .create_rule(
            &scope,
            CreateRule {
                listener: listener.arn.clone(),
                priority: 10,
                conditions: vec![berth_elbv2::Condition {
                    field: berth_elbv2::ConditionField::PathPattern,
                    values: vec!["/api/*".into()],
                    header_name: None,
                    query: vec![],
                }],
                actions: vec![Action::forward(Some(instances.arn.clone()), None, None).unwrap()],
                tags: vec![],
            },
        )
        .unwrap();

    let snapshot = elbv2.snapshot().unwrap();
    let hosts: HashMap<String, IpAddr> =
        HashMap::from([("i-0123456789abcdef0".into(), "192.0.2.4".parse().unwrap())]);
    let built = build(&snapshot, &hosts, &Certificates::new());

    let [balancer_plan] = &built.plan.load_balancers[..] else {
        panic!("one load balancer: {:?}", built.plan.load_balancers)
    };
    assert_eq!(balancer_plan.address, balancer.address);
    assert_eq!(balancer_plan.kind, lb::LoadBalancerKind::Application);
    assert_eq!(balancer_plan.idle_timeout.as_secs(), 60);
    let [l] = &balancer_plan.listeners[..] else {
        panic!("one listener")
    };
    assert_eq!((l.port, l.protocol), (80, lb::ListenerProtocol::Http));
    assert_eq!(l.rules.len(), 1);
    assert!(matches!(&l.rules[0].conditions[0], lb::Condition::PathPattern(p) if p == &["/api/*"]));

    // The unused group is not served; the others are, with their targets' addresses.
    let mut groups: Vec<&lb::TargetGroupPlan> = built.plan.target_groups.iter().collect();
    groups.sort_by_key(|g| g.id.0.clone());
    assert_eq!(groups.len(), 2, "{groups:?}");
    let by_arn = |arn: &berth_elbv2::TargetGroupArn| {
        built
            .plan
            .target_groups
            .iter()
            .find(|g| g.id.0 == arn.to_string())
            .unwrap()
    };
    let ip_plan = by_arn(&ips.arn);
    assert_eq!(ip_plan.targets[0].address, "10.0.0.7:8080".parse().unwrap());
    assert_eq!(ip_plan.targets[0].id.0, "10.0.0.7:8080");
    assert_eq!(ip_plan.deregistration_delay.as_secs(), 300);
    assert_eq!(ip_plan.health_check.interval.as_secs(), 30);
    let instance_plan = by_arn(&instances.arn);
    // The instance without a known host is left out, and said.
    assert_eq!(instance_plan.targets.len(), 1);
    assert_eq!(
        instance_plan.targets[0].address,
        "192.0.2.4:32768".parse().unwrap()
    );
    assert!(
        built
            .problems
            .iter()
            .any(|p| p.contains("i-0000000000000000f")),
        "{:?}",
        built.problems
    );
}
