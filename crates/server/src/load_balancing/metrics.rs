//! ELBv2's CloudWatch metrics, from the data plane's counters (`berth_lb::Traffic`): every
//! period the leader takes the difference between two snapshots and publishes, in each load
//! balancer's account and region, what ELBv2 publishes: `AWS/ApplicationELB` (RequestCount,
//! NewConnectionCount, ActiveConnectionCount, HTTPCode_ELB_* by LoadBalancer; RequestCount,
//! HTTPCode_Target_*, TargetResponseTime, TargetConnectionErrorCount by LoadBalancer and by
//! TargetGroup and LoadBalancer; RequestCountPerTarget by TargetGroup (and LoadBalancer);
//! HealthyHostCount, UnHealthyHostCount by TargetGroup and LoadBalancer) and `AWS/NetworkELB` (ActiveFlowCount, NewFlowCount, ProcessedBytes;
//! HealthyHostCount, UnHealthyHostCount). As ELBv2 does, traffic metrics are reported for
//! periods with traffic, host counts every period.
//!
//! The period is 60 s (CloudWatch's standard resolution); `BERTH_METRICS_PERIOD_SECONDS`
//! (1–60) makes it shorter, published at high resolution (docs/elbv2.md).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use berth_cloudwatch::{CloudWatch, CwScope, Dimension, MetricDatum, PutMetricData};

/// PutMetricData's limit of values (and counts) in one datum.
const MAX_VALUES: usize = 150;
use berth_lb as lb;

/// The publishing period of the metrics Berth publishes (ELBv2's, ECS's): 60 s, or
/// `BERTH_METRICS_PERIOD_SECONDS` (1–60) when set (`ServerConfig::metrics_period`'s default).
pub fn period_from_env() -> Duration {
    let seconds = std::env::var("BERTH_METRICS_PERIOD_SECONDS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|s| (1..=60).contains(s))
        .unwrap_or(60);
    Duration::from_secs(seconds)
}

/// Periods under a minute are published at high resolution (`StorageResolution: 1`).
pub fn high_resolution(period: Duration) -> bool {
    period < Duration::from_secs(60)
}

/// A load balancer's or target group's ARN as its metrics name it: account, region, and
/// the dimension value (`app/name/id`, `targetgroup/name/id`).
fn arn_parts(arn: &str) -> Option<(String, String, String)> {
    let mut parts = arn.splitn(6, ':');
    let (_, _, _, region, account, resource) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    let value = resource.strip_prefix("loadbalancer/").unwrap_or(resource);
    Some((account.to_owned(), region.to_owned(), value.to_owned()))
}

fn dimension(name: &str, value: &str) -> Dimension {
    Dimension {
        name: name.to_owned(),
        value: value.to_owned(),
    }
}

fn datum(name: &str, dimensions: &[Dimension], value: f64, unit: &str) -> MetricDatum {
    MetricDatum {
        metric_name: name.to_owned(),
        dimensions: dimensions.to_vec(),
        value: Some(value),
        unit: Some(unit.to_owned()),
        ..MetricDatum::default()
    }
}

/// The target groups each load balancer's listeners forward to.
fn groups_of(plan: &lb::Plan) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for balancer in &plan.load_balancers {
        let groups = out.entry(balancer.id.0.clone()).or_default();
        for listener in &balancer.listeners {
            let actions = listener
                .default_actions
                .iter()
                .chain(listener.rules.iter().flat_map(|r| r.actions.iter()));
            for action in actions {
                if let lb::Action::Forward(f) = action {
                    groups.extend(f.target_groups.iter().map(|g| g.id.0.clone()));
                }
            }
        }
    }
    out
}

/// One period's data, each with the scope and namespace it goes to.
pub fn datums(
    before: &lb::Traffic,
    now: &lb::Traffic,
    plan: &lb::Plan,
) -> Vec<(CwScope, &'static str, MetricDatum)> {
    let mut out = Vec::new();
    let groups = groups_of(plan);
    for balancer in &plan.load_balancers {
        let Some((account, region, name)) = arn_parts(&balancer.id.0) else {
            continue;
        };
        let scope = CwScope::new(&account, &region);
        let application = balancer.kind == lb::LoadBalancerKind::Application;
        let namespace = if application {
            "AWS/ApplicationELB"
        } else {
            "AWS/NetworkELB"
        };
        let by_lb = [dimension("LoadBalancer", &name)];
        let mut push = |d: MetricDatum| out.push((scope.clone(), namespace, d));
        let current = now
            .load_balancers
            .get(&balancer.id)
            .copied()
            .unwrap_or_default();
        let earlier = before
            .load_balancers
            .get(&balancer.id)
            .copied()
            .unwrap_or_default();
        let delta =
            |f: fn(&lb::BalancerTraffic) -> u64| f(&current).saturating_sub(f(&earlier)) as f64;
        let busy = delta(|t| t.new_connections) > 0.0
            || delta(|t| t.requests) > 0.0
            || current.active_connections > 0;
        if busy && application {
            push(datum(
                "RequestCount",
                &by_lb,
                delta(|t| t.requests),
                "Count",
            ));
            push(datum(
                "NewConnectionCount",
                &by_lb,
                delta(|t| t.new_connections),
                "Count",
            ));
            push(datum(
                "ActiveConnectionCount",
                &by_lb,
                current.active_connections as f64,
                "Count",
            ));
            for (metric, value) in [
                ("HTTPCode_ELB_3XX_Count", delta(|t| t.elb_3xx)),
                ("HTTPCode_ELB_4XX_Count", delta(|t| t.elb_4xx)),
                ("HTTPCode_ELB_5XX_Count", delta(|t| t.elb_5xx)),
                ("HTTPCode_ELB_502_Count", delta(|t| t.elb_502)),
                ("HTTPCode_ELB_503_Count", delta(|t| t.elb_503)),
                ("HTTPCode_ELB_504_Count", delta(|t| t.elb_504)),
            ] {
                if value > 0.0 {
                    push(datum(metric, &by_lb, value, "Count"));
                }
            }
        } else if busy {
            push(datum(
                "NewFlowCount",
                &by_lb,
                delta(|t| t.new_connections),
                "Count",
            ));
            push(datum(
                "ActiveFlowCount",
                &by_lb,
                current.active_connections as f64,
                "Count",
            ));
            push(datum(
                "ProcessedBytes",
                &by_lb,
                delta(|t| t.processed_bytes),
                "Bytes",
            ));
        }
        // The target metrics ELBv2 also reports by LoadBalancer alone: every group's sum.
        let mut lb_codes = [0.0; TARGET_CODES];
        let mut lb_times: BTreeMap<u64, u64> = BTreeMap::new();
        for group in groups.get(&balancer.id.0).into_iter().flatten() {
            let Some((_, _, group_name)) = arn_parts(group) else {
                continue;
            };
            let id = lb::TargetGroupId(group.clone());
            let (Some(current), earlier) = (
                now.target_groups.get(&id).cloned(),
                before.target_groups.get(&id).cloned().unwrap_or_default(),
            ) else {
                continue;
            };
            let dims = [
                dimension("TargetGroup", &group_name),
                dimension("LoadBalancer", &name),
            ];
            push(datum(
                "HealthyHostCount",
                &dims,
                current.healthy_hosts as f64,
                "Count",
            ));
            push(datum(
                "UnHealthyHostCount",
                &dims,
                current.unhealthy_hosts as f64,
                "Count",
            ));
            if !application {
                continue;
            }
            let delta = |f: fn(&lb::TargetGroupTraffic) -> u64| {
                f(&current).saturating_sub(f(&earlier)) as f64
            };
            let requests = delta(|t| t.requests);
            // Per healthy target (all registered ones count when none is healthy, as the
            // load balancer then sends to all). "Always reported" (0 in a quiet period), by
            // TargetGroup and by TargetGroup and LoadBalancer: target tracking's
            // ALBRequestCountPerTarget alarms read it by TargetGroup.
            let per_target = requests / current.healthy_hosts.max(1) as f64;
            for dims in [&dims[..], &dims[..1]] {
                push(datum("RequestCountPerTarget", dims, per_target, "Count"));
            }
            if requests == 0.0 {
                continue;
            }
            push(datum("RequestCount", &dims, requests, "Count"));
            let codes = [
                delta(|t| t.target_2xx),
                delta(|t| t.target_3xx),
                delta(|t| t.target_4xx),
                delta(|t| t.target_5xx),
                delta(|t| t.connection_errors),
            ];
            push_target_counts(&mut push, &dims, &codes);
            for (sum, value) in lb_codes.iter_mut().zip(codes) {
                *sum += value;
            }
            let times = current.response_times_since(&earlier);
            push_response_times(&mut push, &dims, &times);
            for (seconds, n) in times {
                *lb_times.entry(seconds.to_bits()).or_default() += n;
            }
        }
        if application {
            push_target_counts(&mut push, &by_lb, &lb_codes);
            let times: Vec<(f64, u64)> = lb_times
                .into_iter()
                .map(|(bits, n)| (f64::from_bits(bits), n))
                .collect();
            push_response_times(&mut push, &by_lb, &times);
        }
    }
    // A value cannot go with values or a statistic set.
    for (_, _, d) in &mut out {
        if d.statistic_values.is_some() || !d.values.is_empty() {
            d.value = None;
        }
    }
    out
}

/// The target metrics counted per response class, in `push_target_counts`'s order.
const TARGET_CODES: usize = 5;

/// HTTPCode_Target_2XX…5XX_Count and TargetConnectionErrorCount, each when not zero
/// ("Reporting criteria: There is a nonzero value").
fn push_target_counts(
    push: &mut impl FnMut(MetricDatum),
    dims: &[Dimension],
    counts: &[f64; TARGET_CODES],
) {
    let names = [
        "HTTPCode_Target_2XX_Count",
        "HTTPCode_Target_3XX_Count",
        "HTTPCode_Target_4XX_Count",
        "HTTPCode_Target_5XX_Count",
        "TargetConnectionErrorCount",
    ];
    for (metric, value) in names.into_iter().zip(counts) {
        if *value > 0.0 {
            push(datum(metric, dims, *value, "Count"));
        }
    }
}

/// TargetResponseTime as values and counts (at most 150 a datum), from the data plane's
/// histogram, so percentiles can be read back (docs/elbv2.md).
fn push_response_times(
    push: &mut impl FnMut(MetricDatum),
    dims: &[Dimension],
    times: &[(f64, u64)],
) {
    for chunk in times.chunks(MAX_VALUES) {
        push(MetricDatum {
            values: chunk.iter().map(|(seconds, _)| *seconds).collect(),
            counts: chunk.iter().map(|(_, n)| *n as f64).collect(),
            ..datum("TargetResponseTime", dims, 0.0, "Seconds")
        });
    }
}

/// Publishes every period until `shutdown`: the data plane's traffic against the plan it
/// serves.
pub async fn publish(
    data_plane: Arc<lb::DataPlane>,
    plan: tokio::sync::watch::Receiver<Arc<lb::Plan>>,
    cloudwatch: Arc<CloudWatch>,
    every: Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let high_resolution = high_resolution(every);
    let mut before = data_plane.traffic().await;
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
        let now = data_plane.traffic().await;
        let plan = plan.borrow().clone();
        let mut batches: BTreeMap<(String, String, &'static str), Vec<MetricDatum>> =
            BTreeMap::new();
        for (scope, namespace, mut d) in datums(&before, &now, &plan) {
            if high_resolution {
                d.storage_resolution = Some(1);
            }
            batches
                .entry((scope.account, scope.region, namespace))
                .or_default()
                .push(d);
        }
        before = now;
        let cloudwatch = cloudwatch.clone();
        let stored = tokio::task::spawn_blocking(move || {
            for ((account, region, namespace), metric_data) in batches {
                cloudwatch.publish(
                    &CwScope::new(&account, &region),
                    PutMetricData {
                        namespace: namespace.to_owned(),
                        metric_data,
                    },
                )?;
            }
            Ok::<_, berth_cloudwatch::CloudWatchError>(())
        })
        .await;
        match stored {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "load balancers: metrics not published"),
            Err(e) => tracing::warn!(error = %e, "load balancers: publishing metrics failed"),
        }
    }
}

#[cfg(test)]
mod tests;
