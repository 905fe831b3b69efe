//! A task as ACS describes it to the agent: the task, its containers and volumes, and the
//! credentials and settings that travel with them. Enumerated members (`type`,
//! `condition`, `scope`, …) are kept as strings so an agent-side value this model does not
//! list never makes a whole payload unreadable; the model's values are noted on each.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Association, Attachment, ElasticNetworkInterface};
use crate::frame::shape;

shape! {
    /// One task of a [`super::PayloadMessage`]. `desiredStatus` is `RUNNING` or `STOPPED`;
    /// `family` and `version` name the task definition revision; `overrides` is a JSON
    /// document (a string). `cpu` is a `Double` (vCPU units), `memory` an `Integer` (MiB).
    pub struct Task {
        arn: String,
        task_cluster_arn: String,
        containers: Vec<Container>,
        desired_status: String,
        family: String,
        overrides: String,
        version: String,
        zone: String,
        task_definition_account_id: String,
        volumes: Vec<Volume>,
        role_credentials: IAMRoleCredentials,
        execution_role_credentials: IAMRoleCredentials,
        elastic_network_interfaces: Vec<ElasticNetworkInterface>,
        cpu: f64,
        memory: i64,
        associations: Vec<Association>,
        pid_mode: String,
        ipc_mode: String,
        proxy_configuration: ProxyConfiguration,
        agent_configuration: String,
        launch_type: String,
        attachments: Vec<Attachment>,
        /// `bridge`, `host`, `awsvpc` or `none`.
        network_mode: String,
        service_name: String,
        group: String,
        enable_fault_injection: bool,
        trusted_execution_configuration: TrustedExecutionConfiguration,
    }
}

shape! {
    /// One container of a [`Task`]. The model has no `memoryReservation`, `user`,
    /// `workingDirectory`, `ulimits`, `dockerLabels` or `healthCheck` members: ACS carries
    /// those inside `dockerConfig` as Docker Engine API JSON documents (`config` is the
    /// container config, `hostConfig` the host config, where `MemoryReservation` lives).
    /// `cpu` is CPU units, `memory` the hard limit in MiB; `overrides` is a JSON document.
    pub struct Container {
        command: Vec<String>,
        cpu: i64,
        credential_specs: Vec<String>,
        entry_point: Vec<String>,
        environment: BTreeMap<String, String>,
        environment_files: Vec<EnvironmentFile>,
        essential: bool,
        restart_policy: RestartPolicy,
        image: String,
        links: Vec<String>,
        memory: i64,
        name: String,
        overrides: String,
        port_mappings: Vec<PortMapping>,
        managed_agents: Vec<ManagedAgent>,
        mount_points: Vec<MountPoint>,
        linux_parameters: LinuxParameters,
        privileged: bool,
        network_interface_names: Vec<String>,
        volumes_from: Vec<VolumeFrom>,
        docker_config: DockerConfig,
        /// `docker` when the container has a Docker health check.
        health_check_type: String,
        registry_authentication: RegistryAuthenticationData,
        /// `ExecutionRole`.
        logs_auth_strategy: String,
        secrets: Vec<Secret>,
        depends_on: Vec<ContainerDependency>,
        /// Seconds.
        start_timeout: i64,
        /// Seconds between SIGTERM and SIGKILL.
        stop_timeout: i64,
        firelens_configuration: FirelensConfiguration,
        container_arn: String,
        resource_requirements: Vec<ResourceRequirement>,
    }
}

shape! {
    /// Docker Engine API documents for the container, each a JSON string.
    pub struct DockerConfig {
        /// The Docker API version the documents are written for.
        version: String,
        config: String,
        host_config: String,
    }
}

shape! {
    /// A port to publish. `protocol` is `tcp` or `udp`; `hostPort` 0 or absent asks for an
    /// ephemeral port (bridge mode).
    pub struct PortMapping {
        container_port: i64,
        host_port: i64,
        container_port_range: String,
        protocol: String,
    }
}

shape! {
    /// Mounts a task volume into the container.
    pub struct MountPoint {
        source_volume: String,
        container_path: String,
        read_only: bool,
    }
}

shape! {
    /// Mounts every volume of another container of the task.
    pub struct VolumeFrom {
        source_container: String,
        read_only: bool,
    }
}

shape! {
    /// Start-up ordering: `condition` is `START`, `COMPLETE`, `SUCCESS` or `HEALTHY`.
    pub struct ContainerDependency {
        container_name: String,
        condition: String,
    }
}

shape! {
    /// How the agent authenticates the image pull. `type` is `ecr` or `asm`.
    pub struct RegistryAuthenticationData {
        #[serde(rename = "type")]
        kind: String,
        ecr_auth_data: ECRAuthData,
        asm_auth_data: ASMAuthData,
    }
}

shape! {
    /// ECR pull credentials the agent fetches itself (`GetAuthorizationToken`), from
    /// `endpointOverride` when set: Berth points it at itself.
    pub struct ECRAuthData {
        registry_id: String,
        region: String,
        endpoint_override: String,
        use_execution_role: bool,
    }
}

shape! {
    /// Private-registry credentials kept in Secrets Manager (`repositoryCredentials`).
    pub struct ASMAuthData {
        credentials_parameter: String,
        region: String,
    }
}

shape! {
    /// A secret to inject. `type` is `ENVIRONMENT_VARIABLE`, `MOUNT_POINT` or `BOOTSTRAP`;
    /// `provider` `ssm` or `asm`; `target` `CONTAINER` or `LOG_DRIVER`.
    pub struct Secret {
        name: String,
        value_from: String,
        container_path: String,
        #[serde(rename = "type")]
        kind: String,
        region: String,
        provider: String,
        target: String,
    }
}

shape! {
    /// An environment file to load; `type` is `s3`.
    pub struct EnvironmentFile {
        value: String,
        #[serde(rename = "type")]
        kind: String,
    }
}

shape! {
    /// Container restart policy; `restartAttemptPeriod` in seconds.
    pub struct RestartPolicy {
        enabled: bool,
        ignored_exit_codes: Vec<i64>,
        restart_attempt_period: i64,
    }
}

shape! {
    /// A managed sidecar agent; `name` is `ExecuteCommandAgent`.
    pub struct ManagedAgent {
        name: String,
        properties: BTreeMap<String, String>,
    }
}

shape! {
    /// Linux-specific container settings.
    pub struct LinuxParameters {
        capabilities: KernelCapabilities,
        devices: Vec<Device>,
        init_process_enabled: bool,
        /// MiB.
        shared_memory_size: i64,
    }
}

shape! {
    /// Capabilities to add to and drop from the default set.
    pub struct KernelCapabilities {
        add: Vec<String>,
        drop: Vec<String>,
    }
}

/// A host device to expose; the model requires `hostPath`. `permissions` are `read`,
/// `write`, `mknod`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    pub host_path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Vec<String>>,
}

shape! {
    /// FireLens log routing; `type` is `fluentd` or `fluentbit`.
    pub struct FirelensConfiguration {
        #[serde(rename = "type")]
        kind: String,
        options: BTreeMap<String, String>,
    }
}

shape! {
    /// A resource requirement such as `GPU`; `value` is a string as in ECS.
    pub struct ResourceRequirement {
        value: String,
        #[serde(rename = "type")]
        kind: String,
        sharing_strategy: SharingStrategy,
    }
}

shape! {
    /// How a GPU is shared.
    pub struct SharingStrategy {
        nvidia_mps: NvidiaMpsAllocation,
    }
}

/// An NVIDIA MPS share of a GPU; the model requires `memory`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NvidiaMpsAllocation {
    pub memory: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_compute_percent: Option<i64>,
}

shape! {
    /// A task volume. `type` is `host`, `docker`, `efs`, `fsxWindowsFileServer`, `ebs` or
    /// `logDriverOutput`; the member matching it carries the details.
    pub struct Volume {
        name: String,
        #[serde(rename = "type")]
        kind: String,
        host: HostVolumeProperties,
        docker_volume_configuration: DockerVolumeConfiguration,
        efs_volume_configuration: EFSVolumeConfiguration,
        fsx_windows_file_server_volume_configuration: FSxWindowsFileServerVolumeConfiguration,
        ebs_volume_configuration: EBSVolumeConfiguration,
        log_driver_volume_configuration: LogDriverVolumeConfiguration,
    }
}

shape! {
    /// A bind mount from the host; without `sourcePath` the agent makes an empty directory.
    pub struct HostVolumeProperties {
        source_path: String,
    }
}

shape! {
    /// A Docker volume; `scope` is `task` or `shared`.
    pub struct DockerVolumeConfiguration {
        scope: String,
        autoprovision: bool,
        driver: String,
        driver_opts: BTreeMap<String, String>,
        labels: BTreeMap<String, String>,
    }
}

shape! {
    /// An EFS file system; `transitEncryption` is `ENABLED` or `DISABLED`.
    pub struct EFSVolumeConfiguration {
        file_system_id: String,
        root_directory: String,
        transit_encryption: String,
        transit_encryption_port: i64,
        authorization_config: EFSAuthorizationConfig,
    }
}

shape! {
    /// EFS access point and IAM authorisation (`iam`: `ENABLED` or `DISABLED`).
    pub struct EFSAuthorizationConfig {
        access_point_id: String,
        iam: String,
    }
}

shape! {
    /// An FSx for Windows File Server share.
    pub struct FSxWindowsFileServerVolumeConfiguration {
        file_system_id: String,
        root_directory: String,
        authorization_config: FSxWindowsFileServerAuthorizationConfig,
    }
}

shape! {
    /// Credentials for an FSx for Windows File Server share.
    pub struct FSxWindowsFileServerAuthorizationConfig {
        credentials_parameter: String,
        domain: String,
    }
}

shape! {
    /// An EBS volume attached for the task.
    pub struct EBSVolumeConfiguration {
        volume_id: String,
        delete_on_termination: bool,
        device_name: String,
        filesystem_type: String,
    }
}

shape! {
    /// A volume a log driver writes into.
    pub struct LogDriverVolumeConfiguration {
        driver: String,
    }
}

shape! {
    /// A service-mesh proxy; `type` is `APPMESH`.
    pub struct ProxyConfiguration {
        #[serde(rename = "type")]
        kind: String,
        container_name: String,
        properties: BTreeMap<String, String>,
    }
}

shape! {
    /// Confidential-computing settings; `isolationMode` is `SHARED`, `EXCLUSIVE`,
    /// `ISOLATED_PARTITION` or `CONFIDENTIAL_PARTITION`.
    pub struct TrustedExecutionConfiguration {
        isolation_mode: String,
        attestation_policy: String,
    }
}

/// Temporary credentials for a task's role or its execution role. `expiration` is a string
/// (`2016-03-25T06:17:19.318+0000` in the agent's tests), echoed back in
/// [`super::IAMRoleCredentialsAckRequest`]. `Debug` hides the secret parts.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IAMRoleCredentials {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_access_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential_scope: Option<String>,
}

impl fmt::Debug for IAMRoleCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hidden = |secret: &Option<String>| secret.as_ref().map(|_| "<hidden>");
        f.debug_struct("IAMRoleCredentials")
            .field("credentials_id", &self.credentials_id)
            .field("role_arn", &self.role_arn)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &hidden(&self.secret_access_key))
            .field("session_token", &hidden(&self.session_token))
            .field("expiration", &self.expiration)
            .field("credential_scope", &self.credential_scope)
            .finish()
    }
}
