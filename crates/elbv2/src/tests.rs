use std::sync::Arc;

use berth_model::InstallationId;
use berth_store::MemStore;

use super::*;

fn elb() -> Elbv2 {
    Elbv2::new(Arc::new(MemStore::new()), InstallationId::from_random(42))
}

fn scope() -> ElbScope {
    ElbScope::new("000000000000", "us-east-1")
}

fn alb(name: &str) -> CreateLoadBalancer {
    CreateLoadBalancer {
        name: name.into(),
        kind: LoadBalancerType::Application,
        scheme: Scheme::InternetFacing,
        ip_address_type: IpAddressType::Ipv4,
        subnets: vec!["subnet-a".into(), "subnet-b".into()],
        security_groups: vec!["sg-1".into()],
        tags: Vec::new(),
    }
}

fn tg(name: &str) -> CreateTargetGroup {
    CreateTargetGroup {
        name: name.into(),
        protocol: Some(Protocol::Http),
        protocol_version: None,
        port: Some(80),
        vpc_id: Some("vpc-1".into()),
        target_type: TargetType::Ip,
        health: ModifyTargetGroup::default(),
        tags: Vec::new(),
    }
}

fn forward(arn: &TargetGroupArn) -> Action {
    Action::forward(Some(arn.clone()), None, None).unwrap()
}

fn listener(lb: &LoadBalancer, port: i64, actions: Vec<Action>) -> CreateListener {
    CreateListener {
        load_balancer: lb.arn.clone(),
        protocol: Some(Protocol::Http),
        port: Some(port),
        ssl_policy: None,
        certificates: Vec::new(),
        alpn_policy: Vec::new(),
        default_actions: actions,
        tags: Vec::new(),
    }
}

fn path_rule(listener: &Listener, priority: i64, path: &str, arn: &TargetGroupArn) -> CreateRule {
    CreateRule {
        listener: listener.arn.clone(),
        priority,
        conditions: vec![Condition {
            field: ConditionField::PathPattern,
            values: vec![path.into()],
            header_name: None,
            query: Vec::new(),
        }],
        actions: vec![forward(arn)],
        tags: Vec::new(),
    }
}

/// No certificate exists.
fn no_certs(_: &str) -> bool {
    false
}

#[test]
fn load_balancers_get_distinct_loopback_addresses_freed_on_delete() {
    let elb = elb();
    let a = elb.create_load_balancer(&scope(), alb("a")).unwrap();
    let b = elb.create_load_balancer(&scope(), alb("b")).unwrap();
    assert_eq!(a.state, LoadBalancerState::Provisioning);
    assert_ne!(a.address, b.address);
    assert_eq!(a.dns_name(), a.address.to_string());
    assert_eq!(a.address.octets()[0], 127);
    let stored = elb.load_balancer(&scope(), &a.arn).unwrap();
    assert_eq!(stored.state, LoadBalancerState::Active);
    assert!(a.arn.as_str().contains(":loadbalancer/app/a/"));
    // The claim is a record: deleting the load balancer frees it.
    let claim = keys::address_key(a.address);
    assert!(elb.store().get(&claim).unwrap().is_some());
    elb.delete_load_balancer(&scope(), &a.arn).unwrap();
    assert!(elb.store().get(&claim).unwrap().is_none());
}

#[test]
fn a_claimed_address_makes_a_load_balancer_move_on_to_the_next() {
    let elb = elb();
    let lb = elb.create_load_balancer(&scope(), alb("a")).unwrap();
    // Someone else holds lb's first candidate: a load balancer hashing to it moves on.
    let first = address_candidate(elb.installation.as_str(), lb.arn.as_str(), 0);
    assert_eq!(first, lb.address);
    elb.delete_load_balancer(&scope(), &lb.arn).unwrap();
    elb.store()
        .put(&keys::address_key(first), b"someone else")
        .unwrap();
    let again = elb.create_load_balancer(&scope(), alb("a")).unwrap();
    assert_ne!(again.address, first);
}

#[test]
fn a_second_creation_with_the_same_settings_answers_the_first_and_other_settings_are_refused() {
    let elb = elb();
    let a = elb.create_load_balancer(&scope(), alb("web")).unwrap();
    let again = elb.create_load_balancer(&scope(), alb("web")).unwrap();
    assert_eq!(again.arn, a.arn);
    let mut other = alb("web");
    other.scheme = Scheme::Internal;
    let e = elb.create_load_balancer(&scope(), other).unwrap_err();
    assert_eq!(e.code(), "DuplicateLoadBalancerName");
}

#[test]
fn malformed_subnets_and_too_few_for_an_alb_are_refused() {
    let elb = elb();
    let mut req = alb("x");
    req.subnets = vec!["subnet-a".into(), "net-b".into()];
    assert_eq!(
        elb.create_load_balancer(&scope(), req).unwrap_err().code(),
        "SubnetNotFound"
    );
    let mut req = alb("x");
    req.subnets = vec!["subnet-a".into()];
    assert_eq!(
        elb.create_load_balancer(&scope(), req).unwrap_err().code(),
        "ValidationError"
    );
    let mut req = alb("x");
    req.security_groups = vec!["group".into()];
    assert_eq!(
        elb.create_load_balancer(&scope(), req).unwrap_err().code(),
        "InvalidSecurityGroup"
    );
}

#[test]
fn target_groups_take_the_health_check_defaults_of_their_protocol() {
    let elb = elb();
    let http = elb.create_target_group(&scope(), tg("http")).unwrap();
    assert_eq!(http.health_check.protocol, Protocol::Http);
    assert_eq!(http.health_check.path.as_deref(), Some("/"));
    assert_eq!(http.health_check.timeout_seconds, 5);
    assert_eq!(http.health_check.matcher.as_deref(), Some("200"));
    let mut req = tg("tcp");
    req.protocol = Some(Protocol::Tcp);
    let tcp = elb.create_target_group(&scope(), req).unwrap();
    assert_eq!(tcp.health_check.protocol, Protocol::Tcp);
    assert_eq!(tcp.health_check.path, None);
    assert_eq!(tcp.health_check.timeout_seconds, 10);
    assert_eq!(
        tcp.attribute("stickiness.type").as_deref(),
        Some("source_ip")
    );
    let mut bad = tg("bad");
    bad.health.timeout_seconds = Some(40);
    assert_eq!(
        elb.create_target_group(&scope(), bad).unwrap_err().code(),
        "InvalidConfigurationRequest"
    );
}

#[test]
fn rule_priorities_are_unique_per_listener_and_can_be_swapped() {
    let elb = elb();
    let lb = elb.create_load_balancer(&scope(), alb("web")).unwrap();
    let a = elb.create_target_group(&scope(), tg("a")).unwrap();
    let b = elb.create_target_group(&scope(), tg("b")).unwrap();
    let l = elb
        .create_listener(
            &scope(),
            listener(&lb, 80, vec![forward(&a.arn)]),
            &no_certs,
        )
        .unwrap();
    let r1 = elb
        .create_rule(&scope(), path_rule(&l, 10, "/a/*", &a.arn))
        .unwrap();
    let r2 = elb
        .create_rule(&scope(), path_rule(&l, 20, "/b/*", &b.arn))
        .unwrap();
    let e = elb
        .create_rule(&scope(), path_rule(&l, 10, "/c/*", &b.arn))
        .unwrap_err();
    assert_eq!(e.code(), "PriorityInUse");
    let swapped = elb
        .set_rule_priorities(&scope(), &[(r1.arn.clone(), 20), (r2.arn.clone(), 10)])
        .unwrap();
    assert_eq!(swapped.len(), 2);
    let rules = elb
        .describe_rules(&scope(), Some(&l.arn), &[], &Paging::default())
        .unwrap()
        .items;
    let order: Vec<(&str, &RuleArn)> = rules
        .iter()
        .map(|r| (r.priority.as_str(), &r.arn))
        .collect();
    assert_eq!(order[0], ("10", &r2.arn));
    assert_eq!(order[1], ("20", &r1.arn));
    assert_eq!(order[2].0, "default");
    let e = elb.delete_rule(&scope(), &rules[2].arn).unwrap_err();
    assert_eq!(e.code(), "OperationNotPermitted");
}

#[test]
fn a_target_group_in_use_cannot_be_deleted_and_its_targets_report_as_aws_does() {
    let elb = elb();
    let lb = elb.create_load_balancer(&scope(), alb("web")).unwrap();
    let a = elb.create_target_group(&scope(), tg("a")).unwrap();
    let target = TargetDescription {
        id: "10.0.0.5".into(),
        port: None,
        availability_zone: None,
    };
    elb.register_targets(&scope(), &a.arn, std::slice::from_ref(&target))
        .unwrap();
    let health = elb.describe_target_health(&scope(), &a.arn, &[]).unwrap();
    assert_eq!(health[0].state, TargetHealthState::Unused);
    assert_eq!(health[0].reason, Some(TargetHealthReason::NotInUse));
    assert_eq!(health[0].target.port, 80);
    let l = elb
        .create_listener(
            &scope(),
            listener(&lb, 80, vec![forward(&a.arn)]),
            &no_certs,
        )
        .unwrap();
    let health = elb.describe_target_health(&scope(), &a.arn, &[]).unwrap();
    assert_eq!(health[0].state, TargetHealthState::Initial);
    assert_eq!(
        health[0].reason,
        Some(TargetHealthReason::RegistrationInProgress)
    );
    elb.set_target_health(
        &scope(),
        &a.arn,
        "10.0.0.5",
        80,
        HealthReport {
            state: TargetHealthState::Healthy,
            reason: None,
            description: None,
            updated: 0.0,
        },
    )
    .unwrap();
    let health = elb.describe_target_health(&scope(), &a.arn, &[]).unwrap();
    assert_eq!(health[0].state, TargetHealthState::Healthy);
    assert_eq!(health[0].reason, None);
    assert_eq!(
        elb.delete_target_group(&scope(), &a.arn)
            .unwrap_err()
            .code(),
        "ResourceInUse"
    );
    elb.deregister_targets(&scope(), &a.arn, &[target]).unwrap();
    let health = elb.describe_target_health(&scope(), &a.arn, &[]).unwrap();
    assert_eq!(health[0].state, TargetHealthState::Draining);
    assert_eq!(
        health[0].reason,
        Some(TargetHealthReason::DeregistrationInProgress)
    );
    elb.delete_listener(&scope(), &l.arn).unwrap();
    elb.delete_target_group(&scope(), &a.arn).unwrap();
    assert_eq!(
        elb.target_group(&scope(), &a.arn).unwrap_err().code(),
        "TargetGroupNotFound"
    );
}

#[test]
fn one_listener_per_port_and_secure_listeners_need_a_known_certificate() {
    let elb = elb();
    let lb = elb.create_load_balancer(&scope(), alb("web")).unwrap();
    let a = elb.create_target_group(&scope(), tg("a")).unwrap();
    elb.create_listener(
        &scope(),
        listener(&lb, 80, vec![forward(&a.arn)]),
        &no_certs,
    )
    .unwrap();
    let e = elb
        .create_listener(
            &scope(),
            listener(&lb, 80, vec![forward(&a.arn)]),
            &no_certs,
        )
        .unwrap_err();
    assert_eq!(e.code(), "DuplicateListener");
    let mut https = listener(&lb, 443, vec![forward(&a.arn)]);
    https.protocol = Some(Protocol::Https);
    https.certificates = vec!["arn:aws:iam::000000000000:server-certificate/web".into()];
    let e = elb
        .create_listener(&scope(), https.clone(), &no_certs)
        .unwrap_err();
    assert_eq!(e.code(), "CertificateNotFound");
    let l = elb
        .create_listener(&scope(), https, &|_: &str| true)
        .unwrap();
    assert_eq!(l.ssl_policy.as_deref(), Some("ELBSecurityPolicy-2016-08"));
    assert!(l.certificates[0].is_default);
}

#[test]
fn weighted_forwards_and_attributes_are_validated() {
    let elb = elb();
    let lb = elb.create_load_balancer(&scope(), alb("web")).unwrap();
    let a = elb.create_target_group(&scope(), tg("a")).unwrap();
    let b = elb.create_target_group(&scope(), tg("b")).unwrap();
    let weighted = Action::forward(
        None,
        Some(ForwardConfig {
            target_groups: vec![
                TargetGroupTuple {
                    arn: a.arn.clone(),
                    weight: 80,
                },
                TargetGroupTuple {
                    arn: b.arn.clone(),
                    weight: 20,
                },
            ],
            stickiness: Stickiness {
                enabled: true,
                duration_seconds: Some(60),
            },
        }),
        None,
    )
    .unwrap();
    assert_eq!(weighted.target_group_arn(), None);
    let l = elb
        .create_listener(&scope(), listener(&lb, 80, vec![weighted]), &no_certs)
        .unwrap();
    assert_eq!(l.target_groups().count(), 2);
    let attrs = elb
        .modify_target_group_attributes(
            &scope(),
            &a.arn,
            &[Attribute {
                key: "deregistration_delay.timeout_seconds".into(),
                value: "30".into(),
            }],
        )
        .unwrap();
    assert!(
        attrs
            .iter()
            .any(|x| x.key == "deregistration_delay.timeout_seconds" && x.value == "30")
    );
    assert!(
        attrs
            .iter()
            .any(|x| x.key == "slow_start.duration_seconds" && x.value == "0")
    );
    let e = elb
        .modify_target_group_attributes(
            &scope(),
            &a.arn,
            &[Attribute {
                key: "slow_start.duration_seconds".into(),
                value: "10".into(),
            }],
        )
        .unwrap_err();
    assert_eq!(e.code(), "InvalidConfigurationRequest");
    elb.modify_load_balancer_attributes(
        &scope(),
        &lb.arn,
        &[Attribute {
            key: "deletion_protection.enabled".into(),
            value: "true".into(),
        }],
    )
    .unwrap();
    assert_eq!(
        elb.delete_load_balancer(&scope(), &lb.arn)
            .unwrap_err()
            .code(),
        "OperationNotPermitted"
    );
}
