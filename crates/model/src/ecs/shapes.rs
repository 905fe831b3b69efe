//! ECS's structured values that requests carry, records keep and answers show: RunTask's
//! overrides, a container's network bindings, a service's load balancers, registries,
//! alarms and events, a cluster's configuration, an agent's version. Field for field as the
//! ECS API (2014-11-13) names them, so that stored records written when these were kept as
//! free JSON read back unchanged; unknown members are ignored, as ECS ignores them.

use serde::{Deserialize, Serialize};

use crate::task_definition::{EnvironmentFile, KeyValuePair, ResourceRequirement};

/// An ECS resource tag (lower-case member names, unlike ECR's `Key`/`Value`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EcsTag {
    pub key: String,
    #[serde(default)]
    pub value: String,
}

/// RunTask's / StartTask's `overrides` (ECS's TaskOverride). ECS always shows both lists.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskOverride {
    #[serde(default)]
    pub container_overrides: Vec<ContainerOverride>,
    /// CPU units, or a string with units, as in a task definition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    /// MiB, or a string with units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral_storage: Option<crate::task_definition::EphemeralStorage>,
    #[serde(default)]
    pub inference_accelerator_overrides: Vec<InferenceAcceleratorOverride>,
}

impl TaskOverride {
    /// The override of the container named `name`.
    pub fn container(&self, name: &str) -> Option<&ContainerOverride> {
        self.container_overrides
            .iter()
            .find(|o| o.name.as_deref() == Some(name))
    }
}

/// One container's part of a [`TaskOverride`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerOverride {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<Vec<KeyValuePair>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment_files: Option<Vec<EnvironmentFile>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_reservation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_requirements: Option<Vec<ResourceRequirement>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InferenceAcceleratorOverride {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_type: Option<String>,
}

/// ECS's NetworkBinding: a container port bound on the host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkBinding {
    #[serde(rename = "bindIP", default)]
    pub bind_ip: String,
    #[serde(default)]
    pub container_port: u16,
    #[serde(default)]
    pub host_port: u16,
    #[serde(default)]
    pub protocol: String,
    /// A range binding (`containerPortRange` in the definition) instead of one port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_port_range: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_port_range: Option<String>,
}

/// A service's `loadBalancers` member.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_group_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_port: Option<i64>,
}

/// A service's `serviceRegistries` member (Cloud Map).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRegistry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_port: Option<i64>,
}

/// A deployment configuration's `alarms` (DeploymentAlarms).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentAlarms {
    #[serde(default)]
    pub alarm_names: Vec<String>,
    #[serde(default)]
    pub enable: bool,
    #[serde(default)]
    pub rollback: bool,
}

/// One of a service's `events` (ServiceEvent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceEvent {
    pub id: String,
    pub created_at: f64,
    pub message: String,
}

/// A cluster's `configuration` (ClusterConfiguration), kept and shown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterConfiguration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execute_command_configuration: Option<ExecuteCommandConfiguration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_storage_configuration: Option<ManagedStorageConfiguration>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecuteCommandConfiguration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    /// NONE, DEFAULT or OVERRIDE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logging: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_configuration: Option<ExecuteCommandLogConfiguration>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecuteCommandLogConfiguration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_watch_log_group_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_watch_encryption_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_bucket_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_encryption_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_key_prefix: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagedStorageConfiguration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fargate_ephemeral_storage_kms_key_id: Option<String>,
}

/// A cluster's `serviceConnectDefaults`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceConnectDefaults {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// A container instance's `versionInfo`: what its agent and Docker are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_version: Option<String>,
}
