//! PutScalingPolicy, DescribeScalingPolicies, DeleteScalingPolicy; the CloudWatch alarms a
//! target tracking policy creates and owns (`tracking_alarms`: AWS's names, metrics and
//! figures), written through the [`crate::AlarmPort`].

use berth_model::Scope;
use berth_store::{Change, page_token, update};

use crate::alarms::{MetricQuery, MetricStatQuery, PolicyAlarm};
use crate::records::{
    AlarmRef, PolicyType, ScalingPolicy, StepAdjustment, StepScalingConfiguration,
    TargetTrackingConfiguration,
};
use crate::targets::{not_registered, page_start, split_resource_id};
use crate::{AppAutoScaling, AutoScalingError, ECS_DIMENSION, ECS_NAMESPACE, Result, keys};

/// Cooldowns (seconds) when a policy gives none: AWS's for ECS services.
pub const DEFAULT_COOLDOWN: i64 = 300;

/// AlarmHigh: 3 datapoints of 1 minute above the target; AlarmLow: 15 of 1 minute below 90 %
/// of it (Application Auto Scaling User Guide, target tracking). At Berth's high resolution
/// the same datapoints are 10 (or 30) seconds each.
pub(crate) const PERIOD: u32 = 60;
const HIGH_DATAPOINTS: u32 = 3;
const LOW_DATAPOINTS: u32 = 15;
const LOW_FRACTION: f64 = 0.9;

pub(crate) fn policy_arn(scope: &Scope, id: &str, resource_id: &str, name: &str) -> String {
    format!(
        "arn:aws:autoscaling:{}:{}:scalingPolicy:{id}:resource/{ECS_NAMESPACE}/{resource_id}:policyName/{name}",
        scope.region, scope.account
    )
}

/// (resource id, policy name) of a policy ARN in `scope`.
pub(crate) fn parse_policy_arn<'a>(scope: &Scope, arn: &'a str) -> Option<(&'a str, &'a str)> {
    let rest = arn.strip_prefix(&format!(
        "arn:aws:autoscaling:{}:{}:scalingPolicy:",
        scope.region, scope.account
    ))?;
    let (_, rest) = rest.split_once(":resource/ecs/")?;
    rest.split_once(":policyName/")
}

fn policy_not_found(resource_id: &str, name: &str) -> AutoScalingError {
    AutoScalingError::ObjectNotFound(format!(
        "No scaling policy found for service namespace: {ECS_NAMESPACE}, resource ID: {resource_id}, scalable dimension: {ECS_DIMENSION}, policy name: {name}"
    ))
}

/// What PutScalingPolicy asks for.
#[derive(Debug, Clone)]
pub struct PutScalingPolicy {
    pub policy_name: String,
    pub resource_id: String,
    pub policy_type: PolicyType,
    pub step: Option<StepScalingConfiguration>,
    pub target_tracking: Option<TargetTrackingConfiguration>,
}

fn check_steps(steps: &[StepAdjustment]) -> Result<()> {
    if steps.is_empty() {
        return Err(AutoScalingError::validation(
            "StepAdjustments is required for a StepScaling policy",
        ));
    }
    let mut intervals: Vec<(f64, f64)> = steps
        .iter()
        .map(|s| {
            (
                s.metric_interval_lower_bound.unwrap_or(f64::NEG_INFINITY),
                s.metric_interval_upper_bound.unwrap_or(f64::INFINITY),
            )
        })
        .collect();
    if intervals.iter().any(|(l, u)| l >= u) {
        return Err(AutoScalingError::validation(
            "The upper bound of a step adjustment must be greater than its lower bound",
        ));
    }
    intervals.sort_by(|a, b| a.0.total_cmp(&b.0));
    if intervals.windows(2).any(|w| w[0].1 != w[1].0) {
        return Err(AutoScalingError::validation(
            "Step adjustments must not overlap or leave gaps between their bounds",
        ));
    }
    let (first, last) = (intervals[0].0, intervals[intervals.len() - 1].1);
    if first != f64::NEG_INFINITY && last != f64::INFINITY {
        return Err(AutoScalingError::validation(
            "One step adjustment must have no lower bound or one must have no upper bound",
        ));
    }
    Ok(())
}

fn check_tracking(c: &TargetTrackingConfiguration) -> Result<()> {
    if !(c.target_value.is_finite() && c.target_value > 0.0) {
        return Err(AutoScalingError::validation(
            "The target value must be greater than 0",
        ));
    }
    for cooldown in [c.scale_in_cooldown, c.scale_out_cooldown]
        .into_iter()
        .flatten()
    {
        if !(0..=86_400).contains(&cooldown) {
            return Err(AutoScalingError::validation(
                "Cooldown must be between 0 and 86400 seconds",
            ));
        }
    }
    match (&c.predefined_metric_specification, &c.customized_metric_specification) {
        (Some(_), Some(_)) | (None, None) => Err(AutoScalingError::validation(
            "Exactly one of PredefinedMetricSpecification and CustomizedMetricSpecification must be specified",
        )),
        (Some(p), None) => match p.predefined_metric_type.as_str() {
            "ECSServiceAverageCPUUtilization" | "ECSServiceAverageMemoryUtilization" => Ok(()),
            "ALBRequestCountPerTarget" => target_group_of(p.resource_label.as_deref())
                .map(|_| ())
                .ok_or_else(|| {
                    AutoScalingError::validation(
                        "ResourceLabel is required for ALBRequestCountPerTarget and must be app/<load-balancer-name>/<load-balancer-id>/targetgroup/<target-group-name>/<target-group-id>",
                    )
                }),
            other => Err(AutoScalingError::validation(format!(
                "Unsupported predefined metric type {other} for service namespace ecs"
            ))),
        },
        (None, Some(m)) => {
            let single = m.metric_name.is_some() && m.namespace.is_some() && m.statistic.is_some();
            if single == m.metrics.is_empty() {
                Ok(())
            } else {
                Err(AutoScalingError::validation(
                    "A customized metric specification needs either MetricName, Namespace and Statistic, or Metrics",
                ))
            }
        }
    }
}

/// `targetgroup/{name}/{id}` of an ALB resource label
/// `app/{lb-name}/{lb-id}/targetgroup/{tg-name}/{tg-id}`.
fn target_group_of(label: Option<&str>) -> Option<String> {
    let label = label?;
    let at = label.find("/targetgroup/")?;
    let (lb, tg) = (&label[..at], &label[at + 1..]);
    (lb.starts_with("app/") && lb.split('/').count() == 3 && tg.split('/').count() == 3)
        .then(|| tg.to_string())
}

/// The alarm period for metrics published every `metrics_period` seconds: the shortest of
/// CloudWatch's 10, 30 and 60 that holds whole publications.
pub(crate) fn alarm_period_for(metrics_period: u64) -> u32 {
    [10, 30]
        .into_iter()
        .find(|p| metrics_period > 0 && u64::from(*p) % metrics_period == 0)
        .unwrap_or(PERIOD)
}

/// Whether the policy's metric is a count per period whose target is per minute
/// (ALBRequestCountPerTarget, a Sum): its alarms' thresholds and datapoints scale with the
/// period.
fn counts_per_minute(config: &TargetTrackingConfiguration) -> bool {
    config
        .predefined_metric_specification
        .as_ref()
        .is_some_and(|p| p.predefined_metric_type == "ALBRequestCountPerTarget")
}

/// An alarm datapoint of the policy's metric as the target value reads it: per minute for
/// counts evaluated over shorter periods, as is otherwise.
pub(crate) fn per_target_unit(policy: &ScalingPolicy, value: f64) -> f64 {
    match (&policy.target_tracking, policy.alarm_period) {
        (Some(config), Some(period)) if counts_per_minute(config) && period > 0 => {
            value * f64::from(PERIOD) / f64::from(period)
        }
        _ => value,
    }
}

/// The alarms target tracking creates for `config` on the service `resource_id`: AlarmHigh,
/// and AlarmLow unless scale-in is disabled. `names` are the (high, low) names to use;
/// `period` the alarms' period on a predefined metric (customized metrics keep AWS's 60).
pub fn tracking_alarms(
    resource_id: &str,
    policy_arn: &str,
    config: &TargetTrackingConfiguration,
    names: (&str, &str),
    period: u32,
) -> Vec<PolicyAlarm> {
    let (cluster, service) = split_resource_id(resource_id).unwrap_or(("", ""));
    let mut base = PolicyAlarm {
        alarm_name: String::new(),
        alarm_description: format!(
            "DO NOT EDIT OR DELETE. For TargetTrackingScaling policy {policy_arn}."
        ),
        namespace: None,
        metric_name: None,
        dimensions: Vec::new(),
        statistic: None,
        unit: None,
        period: Some(PERIOD),
        evaluation_periods: 0,
        datapoints_to_alarm: 0,
        threshold: 0.0,
        comparison_operator: String::new(),
        treat_missing_data: "missing".into(),
        alarm_actions: vec![policy_arn.to_string()],
        metrics: Vec::new(),
    };
    let service_dims = vec![
        ("ClusterName".to_string(), cluster.to_string()),
        ("ServiceName".to_string(), service.to_string()),
    ];
    if let Some(p) = &config.predefined_metric_specification {
        let (namespace, metric, statistic, dimensions) = match p.predefined_metric_type.as_str() {
            "ECSServiceAverageMemoryUtilization" => {
                ("AWS/ECS", "MemoryUtilization", "Average", service_dims)
            }
            "ALBRequestCountPerTarget" => (
                "AWS/ApplicationELB",
                "RequestCountPerTarget",
                "Sum",
                vec![(
                    "TargetGroup".to_string(),
                    target_group_of(p.resource_label.as_deref()).unwrap_or_default(),
                )],
            ),
            _ => ("AWS/ECS", "CPUUtilization", "Average", service_dims),
        };
        base.namespace = Some(namespace.into());
        base.metric_name = Some(metric.into());
        base.statistic = Some(statistic.into());
        base.dimensions = dimensions;
        base.period = Some(period);
    } else if let Some(m) = &config.customized_metric_specification {
        if m.metrics.is_empty() {
            base.namespace = m.namespace.clone();
            base.metric_name = m.metric_name.clone();
            base.statistic = m.statistic.clone();
            base.unit = m.unit.clone();
            base.dimensions = m
                .dimensions
                .iter()
                .map(|d| (d.name.clone(), d.value.clone()))
                .collect();
        } else {
            // Metric math: the period lives in each query's MetricStat.
            base.period = None;
            base.metrics = m
                .metrics
                .iter()
                .map(|q| MetricQuery {
                    id: q.id.clone(),
                    expression: q.expression.clone(),
                    label: q.label.clone(),
                    metric_stat: q.metric_stat.as_ref().map(|s| MetricStatQuery {
                        namespace: s.metric.namespace.clone().unwrap_or_default(),
                        metric_name: s.metric.metric_name.clone().unwrap_or_default(),
                        dimensions: s
                            .metric
                            .dimensions
                            .iter()
                            .map(|d| (d.name.clone(), d.value.clone()))
                            .collect(),
                        stat: s.stat.clone(),
                        unit: s.unit.clone(),
                    }),
                    return_data: q.return_data.unwrap_or(true),
                    period: q.metric_stat.as_ref().map(|_| PERIOD),
                })
                .collect();
        }
    }
    // A count's per-minute target over a shorter period.
    let target = if counts_per_minute(config) {
        config.target_value * f64::from(base.period.unwrap_or(PERIOD)) / f64::from(PERIOD)
    } else {
        config.target_value
    };
    let mut alarms = vec![PolicyAlarm {
        alarm_name: names.0.to_string(),
        evaluation_periods: HIGH_DATAPOINTS,
        datapoints_to_alarm: HIGH_DATAPOINTS,
        threshold: target,
        comparison_operator: "GreaterThanThreshold".into(),
        ..base.clone()
    }];
    if !config.disable_scale_in.unwrap_or(false) {
        alarms.push(PolicyAlarm {
            alarm_name: names.1.to_string(),
            evaluation_periods: LOW_DATAPOINTS,
            datapoints_to_alarm: LOW_DATAPOINTS,
            threshold: target * LOW_FRACTION,
            comparison_operator: "LessThanThreshold".into(),
            ..base
        });
    }
    alarms
}

impl AppAutoScaling {
    pub fn put_scaling_policy(
        &self,
        scope: &Scope,
        req: PutScalingPolicy,
    ) -> Result<ScalingPolicy> {
        self.scalable_target(scope, &req.resource_id)?;
        let (step, tracking) = match req.policy_type {
            PolicyType::StepScaling => {
                let Some(step) = req.step.clone() else {
                    return Err(AutoScalingError::validation(
                        "StepScalingPolicyConfiguration is required for a StepScaling policy",
                    ));
                };
                check_steps(&step.step_adjustments)?;
                (Some(step), None)
            }
            PolicyType::TargetTrackingScaling => {
                let Some(tracking) = req.target_tracking.clone() else {
                    return Err(AutoScalingError::validation(
                        "TargetTrackingScalingPolicyConfiguration is required for a TargetTrackingScaling policy",
                    ));
                };
                check_tracking(&tracking)?;
                (None, Some(tracking))
            }
        };
        let key = keys::policy(scope, &req.resource_id, &req.policy_name);
        let existing: Option<ScalingPolicy> = self
            .store
            .get(&key)?
            .map(|kv| berth_store::decode(&kv))
            .transpose()?;
        let arn = match &existing {
            Some(p) => p.policy_arn.clone(),
            None => policy_arn(
                scope,
                &uuid::Uuid::new_v4().to_string(),
                &req.resource_id,
                &req.policy_name,
            ),
        };
        // Target tracking's alarms: written first (CloudWatch's own records), so the
        // acknowledged policy never names an alarm that was not created; a re-put keeps the
        // names and replaces them.
        let mut alarms = Vec::new();
        let mut stale: Vec<String> = existing
            .iter()
            .flat_map(|p| p.alarms.iter().map(|a| a.alarm_name.clone()))
            .collect();
        if let Some(config) = &tracking {
            let named = |kind: &str| {
                stale
                    .iter()
                    .find(|n| n.contains(&format!("-{kind}-")))
                    .cloned()
                    .unwrap_or_else(|| {
                        format!(
                            "TargetTracking-{}-{kind}-{}",
                            req.resource_id,
                            uuid::Uuid::new_v4()
                        )
                    })
            };
            let (high, low) = (named("AlarmHigh"), named("AlarmLow"));
            let period = self.alarm_period;
            for alarm in tracking_alarms(&req.resource_id, &arn, config, (&high, &low), period) {
                let alarm_arn = self
                    .alarms
                    .put_alarm(scope, &alarm)
                    .map_err(|e| AutoScalingError::Port(e.0))?;
                stale.retain(|n| *n != alarm.alarm_name);
                alarms.push(AlarmRef {
                    alarm_name: alarm.alarm_name,
                    alarm_arn,
                });
            }
        }
        let now = berth_store::now_epoch();
        let policy = ScalingPolicy {
            policy_arn: arn,
            policy_name: req.policy_name.clone(),
            resource_id: req.resource_id.clone(),
            policy_type: req.policy_type,
            step,
            alarm_period: tracking
                .as_ref()
                .filter(|t| t.predefined_metric_specification.is_some())
                .map(|_| self.alarm_period)
                .filter(|p| *p != PERIOD),
            target_tracking: tracking,
            alarms,
            creation_time: existing.as_ref().map_or(now, |p| p.creation_time),
        };
        let target_key = keys::target(scope, &req.resource_id);
        let written = update(&*self.store, &key, |_: Option<ScalingPolicy>| {
            // The target must still be registered when the policy is written; rewriting it
            // (unchanged) makes a concurrent DeregisterScalableTarget read again and take
            // this policy along.
            let Some(target) = self.store.get(&target_key)? else {
                return Err(not_registered(&req.resource_id));
            };
            Ok(berth_store::Update::from(Change::Put(policy.clone()))
                .provided(berth_store::Compare::ModRevision(
                    target_key.clone(),
                    target.mod_revision,
                ))
                .also(berth_store::Op::put(target_key.clone(), target.value)))
        });
        let stored = match written {
            Ok(stored) => stored.expect("a put policy is stored"),
            Err(e) => {
                // The alarms this call created would act for nothing.
                let created: Vec<String> = policy
                    .alarms
                    .iter()
                    .map(|a| a.alarm_name.clone())
                    .filter(|n| {
                        !existing
                            .iter()
                            .any(|p| p.alarms.iter().any(|a| a.alarm_name == *n))
                    })
                    .collect();
                if !created.is_empty() {
                    let _ = self.alarms.delete_alarms(scope, &created);
                }
                return Err(e);
            }
        };
        if !stale.is_empty()
            && let Err(e) = self.alarms.delete_alarms(scope, &stale)
        {
            tracing::warn!(error = %e, ?stale, "a policy's former alarms not deleted");
        }
        Ok(stored)
    }

    pub(crate) fn target_policies(
        &self,
        scope: &Scope,
        resource_id: &str,
    ) -> Result<Vec<ScalingPolicy>> {
        self.store
            .range(&keys::target_policies(scope, resource_id), None, 0)?
            .iter()
            .map(|kv| Ok(berth_store::decode(kv)?))
            .collect()
    }

    pub fn scaling_policy(
        &self,
        scope: &Scope,
        resource_id: &str,
        name: &str,
    ) -> Result<ScalingPolicy> {
        match self.store.get(&keys::policy(scope, resource_id, name))? {
            Some(kv) => Ok(berth_store::decode(&kv)?),
            None => Err(policy_not_found(resource_id, name)),
        }
    }

    /// A page of policies (by resource id, then name), filtered by resource id and names.
    pub fn describe_scaling_policies(
        &self,
        scope: &Scope,
        resource_id: Option<&str>,
        names: &[String],
        max_results: Option<usize>,
        next_token: Option<&str>,
    ) -> Result<(Vec<ScalingPolicy>, Option<String>)> {
        let limit = max_results.unwrap_or(50);
        let prefix = match resource_id {
            Some(r) => keys::target_policies(scope, r),
            None => keys::policies_prefix(scope),
        };
        let after = page_start(next_token)?;
        let mut found = Vec::new();
        for kv in self.store.range(&prefix, after.as_deref(), 0)? {
            let policy: ScalingPolicy = berth_store::decode(&kv)?;
            if !names.is_empty() && !names.contains(&policy.policy_name) {
                continue;
            }
            if found.len() == limit {
                let last: &ScalingPolicy = found.last().expect("limit is at least 1");
                let key = keys::policy(scope, &last.resource_id, &last.policy_name);
                return Ok((found, Some(page_token::encode(&key))));
            }
            found.push(policy);
        }
        Ok((found, None))
    }

    /// Deletes the policy and the alarms it owns.
    pub fn delete_scaling_policy(
        &self,
        scope: &Scope,
        resource_id: &str,
        name: &str,
    ) -> Result<()> {
        let key = keys::policy(scope, resource_id, name);
        let mut deleted = None;
        update(&*self.store, &key, |current: Option<ScalingPolicy>| {
            let Some(policy) = current else {
                return Err(policy_not_found(resource_id, name));
            };
            deleted = Some(policy);
            Ok(Change::<ScalingPolicy>::Delete)
        })?;
        let alarms: Vec<String> = deleted
            .iter()
            .flat_map(|p| p.alarms.iter().map(|a| a.alarm_name.clone()))
            .collect();
        if !alarms.is_empty() {
            self.alarms
                .delete_alarms(scope, &alarms)
                .map_err(|e| AutoScalingError::Port(e.0))?;
        }
        Ok(())
    }
}
