//! What Application Auto Scaling keeps: scalable targets, scaling policies (their
//! configurations in AWS's shapes and field names, which the API reads and answers as they
//! are), scheduled actions and scaling activities. Times are seconds since the epoch.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A registered scalable target: an ECS service's desired count between min and max.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScalableTarget {
    /// `service/{cluster}/{service}`.
    pub resource_id: String,
    pub min_capacity: i64,
    pub max_capacity: i64,
    pub role_arn: String,
    pub creation_time: f64,
    pub suspended_state: SuspendedState,
    pub arn: String,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// The last scale-out and scale-in a policy made: (when, the capacity it scaled from),
    /// for the cooldowns.
    #[serde(default)]
    pub last_scale_out: Option<(f64, i64)>,
    #[serde(default)]
    pub last_scale_in: Option<f64>,
}

impl ScalableTarget {
    /// (cluster, service) of `service/{cluster}/{service}`.
    pub fn service(&self) -> (&str, &str) {
        split_resource_id(&self.resource_id).unwrap_or(("", ""))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SuspendedState {
    #[serde(default)]
    pub dynamic_scaling_in_suspended: bool,
    #[serde(default)]
    pub dynamic_scaling_out_suspended: bool,
    #[serde(default)]
    pub scheduled_scaling_suspended: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PolicyType {
    StepScaling,
    TargetTrackingScaling,
}

impl PolicyType {
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyType::StepScaling => "StepScaling",
            PolicyType::TargetTrackingScaling => "TargetTrackingScaling",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdjustmentType {
    ChangeInCapacity,
    PercentChangeInCapacity,
    ExactCapacity,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StepAdjustment {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_interval_lower_bound: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_interval_upper_bound: Option<f64>,
    pub scaling_adjustment: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StepScalingConfiguration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adjustment_type: Option<AdjustmentType>,
    #[serde(default)]
    pub step_adjustments: Vec<StepAdjustment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_adjustment_magnitude: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_aggregation_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PredefinedMetric {
    pub predefined_metric_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_label: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MetricDimension {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TrackingMetric {
    #[serde(default)]
    pub dimensions: Vec<MetricDimension>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MetricStat {
    pub metric: TrackingMetric,
    pub stat: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// One query of a customized metric's metric math (`Metrics`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TrackingQuery {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_stat: Option<MetricStat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_data: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CustomizedMetric {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dimensions: Vec<MetricDimension>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statistic: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<TrackingQuery>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TargetTrackingConfiguration {
    pub target_value: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predefined_metric_specification: Option<PredefinedMetric>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customized_metric_specification: Option<CustomizedMetric>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_out_cooldown: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_in_cooldown: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_scale_in: Option<bool>,
}

/// A CloudWatch alarm a policy owns (target tracking) or is named by.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AlarmRef {
    pub alarm_name: String,
    #[serde(rename = "AlarmARN")]
    pub alarm_arn: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScalingPolicy {
    pub policy_arn: String,
    pub policy_name: String,
    pub resource_id: String,
    pub policy_type: PolicyType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<StepScalingConfiguration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_tracking: Option<TargetTrackingConfiguration>,
    /// Target tracking: the alarms it created (AlarmHigh first).
    #[serde(default)]
    pub alarms: Vec<AlarmRef>,
    /// Target tracking on a predefined metric: its alarms' period when it is not AWS's 60
    /// seconds (Berth's high-resolution setting, docs/autoscaling.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm_period: Option<u32>,
    pub creation_time: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScalableTargetAction {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_capacity: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_capacity: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduledAction {
    pub name: String,
    pub arn: String,
    pub resource_id: String,
    pub schedule: String,
    #[serde(default)]
    pub timezone: Option<String>,
    #[serde(default)]
    pub start_time: Option<f64>,
    #[serde(default)]
    pub end_time: Option<f64>,
    pub action: ScalableTargetAction,
    pub creation_time: f64,
    /// When it runs next; `None`: never again.
    #[serde(default)]
    pub next_run: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StatusCode {
    Pending,
    InProgress,
    Successful,
    Overridden,
    Unfulfilled,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NotScaledReason {
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_capacity: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_capacity: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_capacity: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScalingActivity {
    pub activity_id: String,
    pub resource_id: String,
    pub description: String,
    pub cause: String,
    pub start_time: f64,
    #[serde(default)]
    pub end_time: Option<f64>,
    pub status_code: StatusCode,
    #[serde(default)]
    pub status_message: Option<String>,
    #[serde(default)]
    pub details: Option<String>,
    /// Orders activities newest first (nanoseconds since the epoch, unique in a process).
    #[serde(default)]
    pub order: u64,
    /// Set on activities that did not scale (shown with IncludeNotScaledActivities).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_scaled_reasons: Vec<NotScaledReason>,
}

/// `(cluster, service)` of an ECS service's resource id `service/{cluster}/{service}`.
pub fn split_resource_id(resource_id: &str) -> Option<(&str, &str)> {
    let rest = resource_id.strip_prefix("service/")?;
    let (cluster, service) = rest.split_once('/')?;
    (!cluster.is_empty() && !service.is_empty() && !service.contains('/'))
        .then_some((cluster, service))
}
