//! The JSON shapes of RegisterTaskDefinition and of the `TaskDefinition` ECS returns, field for
//! field as the ECS API (2014-11-13) names them. Every member is optional on the wire so that a
//! missing field reaches `validate` and is answered with ECS's own message rather than a serde
//! error; unknown members are ignored, as ECS ignores them. Enumerated values (networkMode,
//! condition, protocol, logDriver, ...) stay strings here for the same reason: `validate`
//! rejects a bad value with ECS's text, and `NetworkMode`/`Compatibility` give typed views.

use std::collections::BTreeMap;

use crate::ecs::TaskDefinitionStatus;

/// Declares a wire struct: camelCase names, every field `Option` with `#[serde(default)]` and
/// skipped when `None`, so that what we return has exactly the members ECS would return.
macro_rules! wire_struct {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$field_meta:meta])* pub $field:ident : $ty:ty, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        pub struct $name {
            $(
                $(#[$field_meta])*
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub $field: $ty,
            )*
        }
    };
}

wire_struct! {
    /// The body of `AmazonEC2ContainerServiceV20141113.RegisterTaskDefinition`.
    pub struct RegisterTaskDefinitionRequest {
        pub family: Option<String>,
        pub task_role_arn: Option<String>,
        pub execution_role_arn: Option<String>,
        pub network_mode: Option<String>,
        pub container_definitions: Option<Vec<ContainerDefinition>>,
        pub volumes: Option<Vec<Volume>>,
        pub placement_constraints: Option<Vec<TaskDefinitionPlacementConstraint>>,
        pub requires_compatibilities: Option<Vec<String>>,
        /// CPU units or a string with units ("1 vCPU"); see `parse_cpu`.
        pub cpu: Option<String>,
        /// MiB or a string with units ("2 GB"); see `parse_memory`.
        pub memory: Option<String>,
        pub tags: Option<Vec<crate::ecs::EcsTag>>,
        pub pid_mode: Option<String>,
        pub ipc_mode: Option<String>,
        pub proxy_configuration: Option<ProxyConfiguration>,
        pub inference_accelerators: Option<Vec<InferenceAccelerator>>,
        pub ephemeral_storage: Option<EphemeralStorage>,
        pub runtime_platform: Option<RuntimePlatform>,
        pub enable_fault_injection: Option<bool>,
    }
}

wire_struct! {
    /// A task definition as ECS stores and returns it (Describe/Register/Deregister responses).
    pub struct TaskDefinition {
        pub task_definition_arn: Option<String>,
        pub container_definitions: Option<Vec<ContainerDefinition>>,
        pub family: Option<String>,
        pub task_role_arn: Option<String>,
        pub execution_role_arn: Option<String>,
        pub network_mode: Option<String>,
        pub revision: Option<i32>,
        pub volumes: Option<Vec<Volume>>,
        pub status: Option<TaskDefinitionStatus>,
        pub requires_attributes: Option<Vec<Attribute>>,
        pub placement_constraints: Option<Vec<TaskDefinitionPlacementConstraint>>,
        pub compatibilities: Option<Vec<String>>,
        pub runtime_platform: Option<RuntimePlatform>,
        pub requires_compatibilities: Option<Vec<String>>,
        /// Always an integer string once registered ("1024"), as ECS returns it.
        pub cpu: Option<String>,
        pub memory: Option<String>,
        pub inference_accelerators: Option<Vec<InferenceAccelerator>>,
        pub pid_mode: Option<String>,
        pub ipc_mode: Option<String>,
        pub proxy_configuration: Option<ProxyConfiguration>,
        /// Epoch seconds, as the AWS JSON protocol encodes timestamps.
        pub registered_at: Option<f64>,
        pub deregistered_at: Option<f64>,
        pub delete_requested_at: Option<f64>,
        pub registered_by: Option<String>,
        pub ephemeral_storage: Option<EphemeralStorage>,
        pub enable_fault_injection: Option<bool>,
    }
}

wire_struct! {
    pub struct ContainerDefinition {
        pub name: Option<String>,
        pub image: Option<String>,
        pub repository_credentials: Option<RepositoryCredentials>,
        pub cpu: Option<i32>,
        pub memory: Option<i32>,
        pub memory_reservation: Option<i32>,
        pub links: Option<Vec<String>>,
        pub port_mappings: Option<Vec<PortMapping>>,
        /// Defaults to true when omitted.
        pub essential: Option<bool>,
        pub restart_policy: Option<ContainerRestartPolicy>,
        pub entry_point: Option<Vec<String>>,
        pub command: Option<Vec<String>>,
        pub environment: Option<Vec<KeyValuePair>>,
        pub environment_files: Option<Vec<EnvironmentFile>>,
        pub mount_points: Option<Vec<MountPoint>>,
        pub volumes_from: Option<Vec<VolumeFrom>>,
        pub linux_parameters: Option<LinuxParameters>,
        pub secrets: Option<Vec<Secret>>,
        pub depends_on: Option<Vec<ContainerDependency>>,
        pub start_timeout: Option<i32>,
        pub stop_timeout: Option<i32>,
        pub version_consistency: Option<String>,
        pub hostname: Option<String>,
        pub user: Option<String>,
        pub working_directory: Option<String>,
        pub disable_networking: Option<bool>,
        pub privileged: Option<bool>,
        pub readonly_root_filesystem: Option<bool>,
        pub dns_servers: Option<Vec<String>>,
        pub dns_search_domains: Option<Vec<String>>,
        pub extra_hosts: Option<Vec<HostEntry>>,
        pub docker_security_options: Option<Vec<String>>,
        pub interactive: Option<bool>,
        pub pseudo_terminal: Option<bool>,
        pub docker_labels: Option<BTreeMap<String, String>>,
        pub ulimits: Option<Vec<Ulimit>>,
        pub log_configuration: Option<LogConfiguration>,
        pub health_check: Option<HealthCheck>,
        pub system_controls: Option<Vec<SystemControl>>,
        pub resource_requirements: Option<Vec<ResourceRequirement>>,
        pub firelens_configuration: Option<FirelensConfiguration>,
        pub credential_specs: Option<Vec<String>>,
    }
}

wire_struct! {
    pub struct RepositoryCredentials {
        pub credentials_parameter: Option<String>,
    }
}

wire_struct! {
    pub struct PortMapping {
        pub container_port: Option<i32>,
        pub host_port: Option<i32>,
        /// `tcp` (the default) or `udp`.
        pub protocol: Option<String>,
        pub name: Option<String>,
        pub app_protocol: Option<String>,
        pub container_port_range: Option<String>,
    }
}

wire_struct! {
    pub struct ContainerRestartPolicy {
        pub enabled: Option<bool>,
        pub ignored_exit_codes: Option<Vec<i32>>,
        pub restart_attempt_period: Option<i32>,
    }
}

wire_struct! {
    pub struct KeyValuePair {
        pub name: Option<String>,
        pub value: Option<String>,
    }
}

wire_struct! {
    pub struct EnvironmentFile {
        pub value: Option<String>,
        pub r#type: Option<String>,
    }
}

wire_struct! {
    pub struct MountPoint {
        pub source_volume: Option<String>,
        pub container_path: Option<String>,
        pub read_only: Option<bool>,
    }
}

wire_struct! {
    pub struct VolumeFrom {
        pub source_container: Option<String>,
        pub read_only: Option<bool>,
    }
}

wire_struct! {
    pub struct LinuxParameters {
        pub capabilities: Option<KernelCapabilities>,
        pub devices: Option<Vec<Device>>,
        pub init_process_enabled: Option<bool>,
        pub shared_memory_size: Option<i32>,
        pub tmpfs: Option<Vec<Tmpfs>>,
        pub max_swap: Option<i32>,
        pub swappiness: Option<i32>,
    }
}

wire_struct! {
    pub struct KernelCapabilities {
        pub add: Option<Vec<String>>,
        pub drop: Option<Vec<String>>,
    }
}

wire_struct! {
    pub struct Device {
        pub host_path: Option<String>,
        pub container_path: Option<String>,
        pub permissions: Option<Vec<String>>,
    }
}

wire_struct! {
    pub struct Tmpfs {
        pub container_path: Option<String>,
        pub size: Option<i32>,
        pub mount_options: Option<Vec<String>>,
    }
}

wire_struct! {
    pub struct Secret {
        pub name: Option<String>,
        pub value_from: Option<String>,
    }
}

wire_struct! {
    pub struct ContainerDependency {
        pub container_name: Option<String>,
        /// `START`, `COMPLETE`, `SUCCESS` or `HEALTHY`.
        pub condition: Option<String>,
    }
}

wire_struct! {
    pub struct HostEntry {
        pub hostname: Option<String>,
        pub ip_address: Option<String>,
    }
}

wire_struct! {
    pub struct Ulimit {
        pub name: Option<String>,
        pub soft_limit: Option<i32>,
        pub hard_limit: Option<i32>,
    }
}

wire_struct! {
    pub struct LogConfiguration {
        pub log_driver: Option<String>,
        pub options: Option<BTreeMap<String, String>>,
        pub secret_options: Option<Vec<Secret>>,
    }
}

wire_struct! {
    pub struct HealthCheck {
        pub command: Option<Vec<String>>,
        pub interval: Option<i32>,
        pub timeout: Option<i32>,
        pub retries: Option<i32>,
        pub start_period: Option<i32>,
    }
}

wire_struct! {
    pub struct SystemControl {
        pub namespace: Option<String>,
        pub value: Option<String>,
    }
}

wire_struct! {
    pub struct ResourceRequirement {
        pub value: Option<String>,
        /// `GPU` or `InferenceAccelerator`.
        pub r#type: Option<String>,
    }
}

wire_struct! {
    pub struct FirelensConfiguration {
        pub r#type: Option<String>,
        pub options: Option<BTreeMap<String, String>>,
    }
}

wire_struct! {
    pub struct Volume {
        pub name: Option<String>,
        pub host: Option<HostVolumeProperties>,
        pub docker_volume_configuration: Option<DockerVolumeConfiguration>,
        pub efs_volume_configuration: Option<EfsVolumeConfiguration>,
        pub s3files_volume_configuration: Option<S3FilesVolumeConfiguration>,
        pub fsx_windows_file_server_volume_configuration:
            Option<FsxWindowsFileServerVolumeConfiguration>,
        pub configured_at_launch: Option<bool>,
    }
}

wire_struct! {
    pub struct HostVolumeProperties {
        pub source_path: Option<String>,
    }
}

wire_struct! {
    pub struct DockerVolumeConfiguration {
        pub scope: Option<String>,
        pub autoprovision: Option<bool>,
        pub driver: Option<String>,
        pub driver_opts: Option<BTreeMap<String, String>>,
        pub labels: Option<BTreeMap<String, String>>,
    }
}

wire_struct! {
    pub struct EfsVolumeConfiguration {
        pub file_system_id: Option<String>,
        pub root_directory: Option<String>,
        pub transit_encryption: Option<String>,
        pub transit_encryption_port: Option<i32>,
        pub authorization_config: Option<EfsAuthorizationConfig>,
    }
}

wire_struct! {
    pub struct EfsAuthorizationConfig {
        pub access_point_id: Option<String>,
        pub iam: Option<String>,
    }
}

wire_struct! {
    pub struct S3FilesVolumeConfiguration {
        pub file_system_arn: Option<String>,
        pub root_directory: Option<String>,
        pub transit_encryption_port: Option<i32>,
        pub access_point_arn: Option<String>,
    }
}

wire_struct! {
    pub struct FsxWindowsFileServerVolumeConfiguration {
        pub file_system_id: Option<String>,
        pub root_directory: Option<String>,
        pub authorization_config: Option<FsxWindowsFileServerAuthorizationConfig>,
    }
}

wire_struct! {
    pub struct FsxWindowsFileServerAuthorizationConfig {
        pub credentials_parameter: Option<String>,
        pub domain: Option<String>,
    }
}

wire_struct! {
    pub struct TaskDefinitionPlacementConstraint {
        /// Only `memberOf` exists.
        pub r#type: Option<String>,
        pub expression: Option<String>,
    }
}

wire_struct! {
    pub struct ProxyConfiguration {
        pub r#type: Option<String>,
        pub container_name: Option<String>,
        pub properties: Option<Vec<KeyValuePair>>,
    }
}

wire_struct! {
    pub struct InferenceAccelerator {
        pub device_name: Option<String>,
        pub device_type: Option<String>,
    }
}

wire_struct! {
    pub struct EphemeralStorage {
        #[serde(rename = "sizeInGiB")]
        pub size_in_gib: Option<i32>,
    }
}

wire_struct! {
    pub struct RuntimePlatform {
        pub cpu_architecture: Option<String>,
        pub operating_system_family: Option<String>,
    }
}

wire_struct! {
    /// A container-instance attribute; in a task definition, one the task requires.
    pub struct Attribute {
        pub name: Option<String>,
        pub value: Option<String>,
        pub target_type: Option<String>,
        pub target_id: Option<String>,
    }
}

impl ContainerDefinition {
    /// `essential` as ECS reads it: omitted means true.
    pub fn is_essential(&self) -> bool {
        self.essential.unwrap_or(true)
    }

    pub fn name_str(&self) -> &str {
        self.name.as_deref().unwrap_or("")
    }
}
