//! A task set as its service's record keeps it (apart from the operations, so that the
//! service record can hold task sets without depending on what changes them).

use berth_model::ecs::{LaunchType, LoadBalancer, ServiceRegistry, StabilityStatus, TaskSetStatus};
use serde::{Deserialize, Serialize};

use crate::network::NetworkConfiguration;
use crate::{CapacityProviderStrategyItem, EcsTag};

/// A task set's `scale`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Scale {
    pub value: f64,
    /// Always PERCENT.
    pub unit: ScaleUnit,
}

/// ECS's only scale unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScaleUnit {
    #[serde(rename = "PERCENT")]
    Percent,
}

impl Default for Scale {
    /// ECS's default: 100 percent.
    fn default() -> Scale {
        Scale {
            value: 100.0,
            unit: ScaleUnit::Percent,
        }
    }
}

/// A stored task set (in its service).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskSet {
    /// `ecs-svc/N`, numbered with the service's deployments.
    pub id: String,
    #[serde(default)]
    pub external_id: Option<String>,
    pub status: TaskSetStatus,
    /// The task definition's ARN.
    pub task_definition: String,
    pub computed_desired_count: i64,
    pub pending_count: i64,
    pub running_count: i64,
    pub created_at: f64,
    pub updated_at: f64,
    pub launch_type: LaunchType,
    #[serde(default)]
    pub capacity_provider_strategy: Vec<CapacityProviderStrategyItem>,
    #[serde(default)]
    pub platform_version: Option<String>,
    #[serde(default)]
    pub network_configuration: Option<NetworkConfiguration>,
    #[serde(default)]
    pub load_balancers: Vec<LoadBalancer>,
    #[serde(default)]
    pub service_registries: Vec<ServiceRegistry>,
    pub scale: Scale,
    pub stability_status: StabilityStatus,
    pub stability_status_at: f64,
    #[serde(default)]
    pub tags: Vec<EcsTag>,
    #[serde(default)]
    pub client_token: Option<String>,
}
