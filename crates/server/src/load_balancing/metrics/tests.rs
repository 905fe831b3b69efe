use std::collections::HashMap;
use std::time::Duration;

use super::*;

const LB: &str =
    "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/web/50dc6c495c0c9188";
const TG: &str =
    "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/web/73e2d6bc24d8a067";

fn plan() -> lb::Plan {
    lb::Plan {
        load_balancers: vec![lb::LoadBalancerPlan {
            id: lb::LoadBalancerId(LB.into()),
            kind: lb::LoadBalancerKind::Application,
            address: std::net::Ipv4Addr::LOCALHOST,
            idle_timeout: Duration::from_secs(60),
            listeners: vec![lb::ListenerPlan {
                port: 80,
                protocol: lb::ListenerProtocol::Http,
                certificate: None,
                rules: Vec::new(),
                default_actions: vec![lb::Action::Forward(lb::ForwardAction {
                    target_groups: vec![lb::WeightedTargetGroup {
                        id: lb::TargetGroupId(TG.into()),
                        weight: 1,
                    }],
                    stickiness: None,
                })],
            }],
        }],
        target_groups: Vec::new(),
    }
}

/// Every answer 50 ms long.
fn bins(responses: u64) -> Vec<u64> {
    let mut bins = vec![0; lb::RESPONSE_TIME_BINS];
    bins[lb::response_time_bin(50_000)] = responses;
    bins
}

fn traffic(requests: u64, ok: u64, failed: u64, micros: u64, healthy: u64) -> lb::Traffic {
    lb::Traffic {
        load_balancers: HashMap::from([(
            lb::LoadBalancerId(LB.into()),
            lb::BalancerTraffic {
                new_connections: 2,
                active_connections: 1,
                requests,
                elb_5xx: 1,
                elb_503: 1,
                ..lb::BalancerTraffic::default()
            },
        )]),
        target_groups: HashMap::from([(
            lb::TargetGroupId(TG.into()),
            lb::TargetGroupTraffic {
                requests: ok + failed,
                target_2xx: ok,
                target_5xx: failed,
                response_time_micros: micros,
                responses: ok + failed,
                response_bins: bins(ok + failed),
                healthy_hosts: healthy,
                unhealthy_hosts: 1,
                ..lb::TargetGroupTraffic::default()
            },
        )]),
    }
}

fn find<'a>(
    out: &'a [(CwScope, &'static str, MetricDatum)],
    name: &str,
    dimensions: usize,
) -> &'a MetricDatum {
    &out.iter()
        .find(|(_, _, d)| d.metric_name == name && d.dimensions.len() == dimensions)
        .unwrap_or_else(|| panic!("no {name} with {dimensions} dimensions"))
        .2
}

#[test]
fn a_period_becomes_elbv2s_metrics_in_the_load_balancers_account_and_region() {
    let before = traffic(10, 8, 1, 900_000, 3);
    // 40 more requests: 30 answered 2xx, 10 5xx, 2 s of target time in all.
    let now = traffic(50, 38, 11, 2_900_000, 4);
    let out = datums(&before, &now, &plan());
    assert!(out.iter().all(|(scope, namespace, _)| {
        scope.account == "123456789012"
            && scope.region == "eu-west-1"
            && *namespace == "AWS/ApplicationELB"
    }));
    let requests = find(&out, "RequestCount", 1);
    assert_eq!(requests.value, Some(40.0));
    assert_eq!(
        requests.dimensions,
        vec![dimension("LoadBalancer", "app/web/50dc6c495c0c9188")]
    );
    // The counters' totals did not move for the ELB's own answers: none this period.
    assert!(
        !out.iter()
            .any(|(_, _, d)| d.metric_name == "HTTPCode_ELB_503_Count")
    );
    assert_eq!(find(&out, "ActiveConnectionCount", 1).value, Some(1.0));
    let group = find(&out, "RequestCount", 2);
    assert_eq!(group.value, Some(40.0));
    assert_eq!(
        group.dimensions,
        vec![
            dimension("TargetGroup", "targetgroup/web/73e2d6bc24d8a067"),
            dimension("LoadBalancer", "app/web/50dc6c495c0c9188"),
        ]
    );
    assert_eq!(find(&out, "RequestCountPerTarget", 2).value, Some(10.0));
    let by_group = find(&out, "RequestCountPerTarget", 1);
    assert_eq!(by_group.value, Some(10.0));
    assert_eq!(
        by_group.dimensions,
        vec![dimension("TargetGroup", "targetgroup/web/73e2d6bc24d8a067")]
    );
    assert_eq!(find(&out, "HTTPCode_Target_2XX_Count", 2).value, Some(30.0));
    assert_eq!(find(&out, "HTTPCode_Target_5XX_Count", 2).value, Some(10.0));
    assert_eq!(find(&out, "HealthyHostCount", 2).value, Some(4.0));
    assert_eq!(find(&out, "UnHealthyHostCount", 2).value, Some(1.0));
    // Response times as values and counts, for percentiles: 40 answers of ~50 ms.
    let time = find(&out, "TargetResponseTime", 2);
    assert_eq!((time.value, time.statistic_values.as_ref()), (None, None));
    assert_eq!(time.counts, [40.0]);
    assert!((time.values[0] - 0.05).abs() < 0.0005, "{time:?}");
    assert_eq!(time.unit.as_deref(), Some("Seconds"));
}

#[test]
fn a_quiet_period_reports_host_counts_and_zero_requests_per_target_only() {
    let mut quiet = traffic(50, 38, 11, 2_900_000, 4);
    quiet
        .load_balancers
        .values_mut()
        .for_each(|t| t.active_connections = 0);
    let out = datums(&quiet, &quiet, &plan());
    let names: Vec<&str> = out.iter().map(|(_, _, d)| d.metric_name.as_str()).collect();
    assert_eq!(
        names,
        [
            "HealthyHostCount",
            "UnHealthyHostCount",
            "RequestCountPerTarget",
            "RequestCountPerTarget"
        ]
    );
    assert!(
        out.iter()
            .filter(|(_, _, d)| d.metric_name == "RequestCountPerTarget")
            .all(|(_, _, d)| d.value == Some(0.0))
    );
}

#[test]
fn target_answers_are_also_summed_by_load_balancer_over_its_groups() {
    const TG2: &str =
        "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/api/0a1b2c3d4e5f6789";
    let mut plan = plan();
    if let lb::Action::Forward(forward) =
        &mut plan.load_balancers[0].listeners[0].default_actions[0]
    {
        forward.target_groups.push(lb::WeightedTargetGroup {
            id: lb::TargetGroupId(TG2.into()),
            weight: 1,
        });
    }
    let before = traffic(10, 8, 1, 900_000, 3);
    let mut now = traffic(50, 38, 11, 2_900_000, 4);
    // The second group: 5 answers, all 2xx, none before.
    let second = lb::TargetGroupTraffic {
        requests: 5,
        target_2xx: 5,
        responses: 5,
        response_bins: bins(5),
        healthy_hosts: 1,
        ..lb::TargetGroupTraffic::default()
    };
    now.target_groups
        .insert(lb::TargetGroupId(TG2.into()), second);
    let out = datums(&before, &now, &plan);
    let by_lb = |name: &str| {
        out.iter()
            .filter(|(_, _, d)| d.metric_name == name && d.dimensions.len() == 1)
            .filter(|(_, _, d)| d.dimensions[0].name == "LoadBalancer")
            .map(|(_, _, d)| d)
            .collect::<Vec<_>>()
    };
    assert_eq!(by_lb("HTTPCode_Target_2XX_Count")[0].value, Some(35.0));
    assert_eq!(by_lb("HTTPCode_Target_5XX_Count")[0].value, Some(10.0));
    assert!(by_lb("HTTPCode_Target_4XX_Count").is_empty());
    // 40 + 5 answers of ~50 ms, merged into one value.
    let time = by_lb("TargetResponseTime");
    assert_eq!(time.len(), 1);
    assert_eq!(time[0].counts, [45.0]);
    assert_eq!(time[0].value, None);
    // Per group, as before.
    let per_group: Vec<f64> = out
        .iter()
        .filter(|(_, _, d)| d.metric_name == "HTTPCode_Target_2XX_Count" && d.dimensions.len() == 2)
        .filter_map(|(_, _, d)| d.value)
        .collect();
    assert_eq!(per_group, [5.0, 30.0]); // by group ARN: api, web
}
