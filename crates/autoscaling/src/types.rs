//! What the records hold: groups with their instances, instances' lifecycle states, and
//! scaling activities, in EC2 Auto Scaling's vocabulary.

use serde::{Deserialize, Serialize};

use crate::AsgScope;

/// The launch template a group launches from: by id or name, and a version (`$Default`
/// when none, `$Latest`, or a number).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LaunchTemplateSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// A launch template version as resolved for a launch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedTemplate {
    pub id: String,
    pub name: String,
    /// The version number launched from, as text (as DescribeAutoScalingGroups shows it).
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<String>,
    /// Base64, as the template keeps it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_data: Option<String>,
}

/// An instance's lifecycle state (the ones Berth's instances pass through).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LifecycleState {
    Pending,
    InService,
    Terminating,
    Terminated,
}

impl LifecycleState {
    pub fn as_str(self) -> &'static str {
        match self {
            LifecycleState::Pending => "Pending",
            LifecycleState::InService => "InService",
            LifecycleState::Terminating => "Terminating",
            LifecycleState::Terminated => "Terminated",
        }
    }

    /// Counted in the group's capacity.
    pub fn is_live(self) -> bool {
        matches!(self, LifecycleState::Pending | LifecycleState::InService)
    }
}

impl std::fmt::Display for LifecycleState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An instance of a group: a `berth agent` registered as a container instance of
/// `cluster`, whose `ec2InstanceId` is `instance_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Instance {
    pub instance_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<String>,
    pub availability_zone: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet_id: Option<String>,
    pub lifecycle_state: LifecycleState,
    pub launch_template: ResolvedTemplate,
    pub protected_from_scale_in: bool,
    pub launched_at: f64,
    /// The ECS cluster its user data names.
    pub cluster: String,
    /// The activity launching it, then the one terminating it.
    pub activity_key: String,
    /// When it turned Terminating.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminating_since: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupTag {
    pub key: String,
    #[serde(default)]
    pub value: String,
    #[serde(default)]
    pub propagate_at_launch: bool,
}

/// A subnet of `VPCZoneIdentifier` and its zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubnetZone {
    pub subnet_id: String,
    pub zone: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AutoScalingGroup {
    pub name: String,
    /// The part of the ARN that tells groups of one name apart over time.
    pub uuid: String,
    pub launch_template: LaunchTemplateSpec,
    pub min_size: i64,
    pub max_size: i64,
    pub desired_capacity: i64,
    pub default_cooldown: i64,
    /// The zones instances go to, in order.
    pub availability_zones: Vec<String>,
    /// `VPCZoneIdentifier`'s subnets with their zones (empty: zones only).
    #[serde(default)]
    pub subnets: Vec<SubnetZone>,
    pub health_check_type: String,
    pub health_check_grace_period: i64,
    pub created_time: f64,
    #[serde(default)]
    pub tags: Vec<GroupTag>,
    pub termination_policies: Vec<String>,
    pub new_instances_protected_from_scale_in: bool,
    #[serde(default)]
    pub instances: Vec<Instance>,
    /// Why the desired capacity last changed (a user request's text), the start of the
    /// cause of the activities that follow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// ForceDelete: every instance is terminated, then the group goes.
    #[serde(default)]
    pub deleting: bool,
}

impl AutoScalingGroup {
    pub fn arn(&self, scope: &AsgScope) -> String {
        format!(
            "arn:aws:autoscaling:{}:{}:autoScalingGroup:{}:autoScalingGroupName/{}",
            scope.region, scope.account, self.uuid, self.name
        )
    }

    /// `VPCZoneIdentifier` as given: the subnets, comma-separated.
    pub fn vpc_zone_identifier(&self) -> Option<String> {
        (!self.subnets.is_empty()).then(|| {
            self.subnets
                .iter()
                .map(|s| s.subnet_id.as_str())
                .collect::<Vec<_>>()
                .join(",")
        })
    }

    pub fn instance(&self, id: &str) -> Option<&Instance> {
        self.instances.iter().find(|i| i.instance_id == id)
    }

    /// Instances counted in the capacity (Pending, InService).
    pub fn live(&self) -> impl Iterator<Item = &Instance> {
        self.instances
            .iter()
            .filter(|i| i.lifecycle_state.is_live())
    }
}

/// An activity's `StatusCode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ActivityStatus {
    InProgress,
    Successful,
    Failed,
    Cancelled,
}

impl ActivityStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ActivityStatus::InProgress => "InProgress",
            ActivityStatus::Successful => "Successful",
            ActivityStatus::Failed => "Failed",
            ActivityStatus::Cancelled => "Cancelled",
        }
    }
}

/// A scaling activity: an instance launched or terminated, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Activity {
    pub activity_id: String,
    pub group_name: String,
    pub group_arn: String,
    pub description: String,
    pub cause: String,
    pub start_time: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<f64>,
    pub status_code: ActivityStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    pub progress: i64,
    pub details: String,
}
