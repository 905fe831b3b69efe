//! ECS task definitions: the RegisterTaskDefinition / TaskDefinition wire shapes, validation
//! with ECS's own `ClientException` messages, the `compatibilities` and `requiresAttributes`
//! ECS computes, and the normalisation ECS applies when it stores a revision.

mod units;
mod validate;
mod wire;

pub use units::{parse_cpu, parse_memory};
pub use validate::{Registration, compatibilities, requires_attributes, validate};
pub use wire::*;

use std::fmt;

/// The most containers ECS accepts in one task definition.
pub const MAX_CONTAINERS: usize = 10;

/// A `networkMode` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NetworkMode {
    Bridge,
    Host,
    Awsvpc,
    None,
}

impl NetworkMode {
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "bridge" => Some(Self::Bridge),
            "host" => Some(Self::Host),
            "awsvpc" => Some(Self::Awsvpc),
            "none" => Some(Self::None),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bridge => "bridge",
            Self::Host => "host",
            Self::Awsvpc => "awsvpc",
            Self::None => "none",
        }
    }
}

impl fmt::Display for NetworkMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A launch type a task definition can be validated against (`requiresCompatibilities`) or
/// is found compatible with (`compatibilities`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compatibility {
    Ec2,
    Fargate,
    External,
}

impl Compatibility {
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "EC2" => Some(Self::Ec2),
            "FARGATE" => Some(Self::Fargate),
            "EXTERNAL" => Some(Self::External),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ec2 => "EC2",
            Self::Fargate => "FARGATE",
            Self::External => "EXTERNAL",
        }
    }
}

impl fmt::Display for Compatibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The life cycle of a task definition revision.
pub use crate::ecs::TaskDefinitionStatus;

/// Which health-check field a bound applies to; displayed as ECS names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthCheckField {
    Interval,
    Timeout,
    Retries,
    StartPeriod,
}

impl fmt::Display for HealthCheckField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Interval => "interval",
            Self::Timeout => "timeout",
            Self::Retries => "retries",
            Self::StartPeriod => "startPeriod",
        })
    }
}

/// A RegisterTaskDefinition request ECS would refuse. Each variant displays the message ECS
/// returns in its `ClientException`. Provenance of each text:
/// - "seen": the exact text appears in real ECS error output quoted in public issue reports
///   or in the ECS troubleshooting guide;
/// - "pattern": a real message's wording carried over to a sibling case (e.g. the `awsvpc`
///   text for `host`);
/// - "written": no real text found; written in ECS's style.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskDefinitionError {
    // seen (aws-sdk-go#132, amazon-ecs-deploy-task-definition#630)
    #[error("Family can not be blank.")]
    FamilyBlank,
    // seen (amazon-ecs-cli#37); also used for over-long names (written)
    #[error("Family contains invalid characters.")]
    FamilyInvalid,
    // seen (aws-cloudformation-user-guide#454)
    #[error("Container list cannot be empty.")]
    ContainerListEmpty,
    // seen (amazon-ecs-cli#184)
    #[error("Too many containers.")]
    TooManyContainers,
    // seen (terraform#2888)
    #[error("Container.name should not be null or empty.")]
    ContainerNameBlank,
    // seen (terraform-provider-aws#5950)
    #[error("Container.name contains invalid characters.")]
    ContainerNameInvalid,
    // seen (Shippable/support#2946)
    #[error("Container names must be unique within a Task Definition.")]
    DuplicateContainerName,
    // seen (aws-cli#5924, prefect-aws#159)
    #[error("Container.image should not be null or empty.")]
    ImageBlank,
    // seen (eagletmt/hako#68, cfn-lint#4536)
    #[error("Task definition doesn't have any essential container.")]
    NoEssentialContainer,

    // seen (ECS troubleshooting guide, task-cpu-memory-error)
    #[error("Invalid 'cpu' setting for task.")]
    InvalidTaskCpu,
    // pattern (from the 'cpu' message)
    #[error("Invalid 'memory' setting for task.")]
    InvalidTaskMemory,
    // written
    #[error(
        "Invalid compatibility '{0}'. Valid values for requiresCompatibilities are EC2, FARGATE and EXTERNAL."
    )]
    InvalidCompatibility(String),
    // written
    #[error("Invalid network mode '{0}'. Valid values are bridge, host, awsvpc and none.")]
    InvalidNetworkMode(String),

    // seen (sil-org/ecs-deploy#59 and many others)
    #[error(
        "Invalid setting for container '{0}'. At least one of 'memory' or 'memoryReservation' must be specified."
    )]
    MemoryRequired(String),
    // written: ECS documents a 6 MiB floor (Docker 20.10 and later) but its text was not found
    #[error("Invalid 'memory' setting for container '{0}'. The minimum is 6 MiB.")]
    ContainerMemoryTooSmall(String),
    // written
    #[error(
        "Invalid 'memoryReservation' setting for container '{0}'. The value must be greater than 0."
    )]
    ContainerMemoryReservationInvalid(String),
    // written
    #[error(
        "Invalid setting for container '{0}'. 'memory' must be greater than or equal to 'memoryReservation'."
    )]
    MemoryReservationExceedsMemory(String),
    // written
    #[error("Invalid 'cpu' setting for container '{0}'. The value must not be negative.")]
    ContainerCpuNegative(String),
    // seen (pulumi-awsx#188, #1220)
    #[error("The 'memory' setting for container '{0}' is greater than for the task.")]
    ContainerMemoryExceedsTask(String),
    // seen (cloudnativedaysjp/dreamkast-infra#4766)
    #[error(
        "The sum of all container 'memoryReservation' values cannot be greater than the value of the task 'memory'."
    )]
    SumMemoryReservationExceedsTask,
    // pattern (from the 'memoryReservation' message)
    #[error(
        "The sum of all container 'memory' values cannot be greater than the value of the task 'memory'."
    )]
    SumMemoryExceedsTask,
    // seen (klothoplatform/klotho#892)
    #[error(
        "The sum of all container 'cpu' values cannot be greater than the value of the task 'cpu'."
    )]
    SumCpuExceedsTask,

    // seen (amazon-ecs-cli#1145); ECS really uses typographic quotes here
    #[error("Fargate only supports network mode \u{2018}awsvpc\u{2019}.")]
    FargateNetworkMode,
    // seen (klothoplatform/klotho#892)
    #[error("Fargate requires that 'cpu' be defined at the task level.")]
    FargateCpuRequired,
    // seen (troubleshooting write-ups quoting the ClientException)
    #[error("Fargate requires that 'memory' be defined at the task level.")]
    FargateMemoryRequired,
    // seen (terraform output quoted in several repositories)
    #[error(
        "No Fargate configuration exists for given values: {cpu} CPU, {memory} memory. See the Amazon ECS documentation for the valid values."
    )]
    NoFargateConfiguration { cpu: u32, memory: u32 },
    /// `{0}` names the feature, e.g. `ipcMode`, `privileged`, `devices`.
    // seen for ipcMode (cn-terraform/terraform-aws-ecs-fargate#2); pattern for the others
    #[error("Tasks using the Fargate launch type do not support {0}.")]
    FargateUnsupported(&'static str),
    // seen (aws/aws-cdk#29619, CloudFormation quoting the ClientException)
    #[error(
        "Tasks using the Fargate launch type do not support pidMode 'host'. The supported value for pidMode is 'task'."
    )]
    FargatePidModeHost,
    // seen (terraform comment quoting the ClientException)
    #[error("Fargate does not support task placement constraints.")]
    FargatePlacementConstraints,
    // seen (terraform comment quoting the ClientException)
    #[error("host.sourcePath should not be set for volumes in Fargate.")]
    FargateHostSourcePath,
    // seen (virtual-kubelet#193)
    #[error(
        "Fargate requires task definition to have execution role ARN to support log driver awslogs."
    )]
    FargateAwslogsExecutionRole,
    // written, after the pattern of the Fargate ipcMode message
    #[error("Tasks using the {0} launch type do not support {1}.")]
    LaunchTypeUnsupported(&'static str, &'static str),
    // written
    #[error("Ephemeral storage is only supported for tasks using the Fargate launch type.")]
    EphemeralStorageRequiresFargate,
    // written
    #[error(
        "Invalid 'ephemeralStorage' setting for task. 'sizeInGiB' must be between 21 and 200, got {0}."
    )]
    EphemeralStorageSize(i32),

    // seen for awsvpc (klothoplatform/klotho#892); pattern for host
    #[error(
        "When networkMode={0}, the host ports and container ports in port mappings must match."
    )]
    HostPortMismatch(NetworkMode),
    // seen for awsvpc (aws-otel-collector#1359); pattern for host and none
    #[error("Links are not supported when networkMode={0}.")]
    LinksNotSupported(NetworkMode),
    // seen (labd/ecs-deplojo#26)
    #[error("hostname is not supported on container when networkMode=awsvpc.")]
    HostnameNotSupported,
    // pattern (from the hostname message)
    #[error("extraHosts is not supported on container when networkMode=awsvpc.")]
    ExtraHostsNotSupported,
    // written
    #[error(
        "Container '{container}' links to '{link}', which is not a container in this task definition."
    )]
    UnknownLink { container: String, link: String },
    // seen (Shippable/support#4194, scpwiki/wikijump#869)
    #[error("Container links should not have a cycle")]
    LinkCycle,
    // written
    #[error(
        "Invalid protocol '{protocol}' in port mappings of container '{container}'. Valid values are tcp and udp."
    )]
    InvalidProtocol { container: String, protocol: String },
    // written
    #[error(
        "Invalid 'containerPort' setting for container '{0}'. The value must be between 1 and 65535."
    )]
    InvalidContainerPort(String),
    // written
    #[error(
        "Invalid 'hostPort' setting for container '{0}'. The value must be between 0 and 65535."
    )]
    InvalidHostPort(String),
    // written
    #[error("Host port {port}/{protocol} is mapped more than once in the task definition.")]
    DuplicateHostPort { port: i32, protocol: String },

    // seen (dagster#6926): the stray '+' is in ECS's own message
    #[error("Cannot depend on container + '{0}' because it does not exist")]
    UnknownDependency(String),
    // written
    #[error(
        "Invalid dependency condition '{0}'. Valid values are START, COMPLETE, SUCCESS and HEALTHY."
    )]
    InvalidDependencyCondition(String),
    // written
    #[error("Container.dependsOn.containerName should not be null or empty.")]
    DependencyNameBlank,
    // seen (boto3#2436)
    #[error(
        "A dependency container with SUCCESS or COMPLETE condition cannot be an essential container"
    )]
    EssentialDependencyCompletes,
    // seen (troubleshooting write-up quoting the ClientException)
    #[error("A dependency container with HEALTHY condition must have health check configured")]
    HealthyDependencyWithoutHealthCheck,
    // pattern (from the links-cycle message)
    #[error("Container dependencies should not have a cycle")]
    DependencyCycle,

    // written
    #[error("Health check command for container '{0}' should not be empty.")]
    HealthCheckCommandEmpty(String),
    // written
    #[error("Health check command for container '{0}' must start with CMD or CMD-SHELL.")]
    HealthCheckCommandPrefix(String),
    // seen for retries (PostHog/posthog#8647); pattern for the other fields
    #[error(
        "Health check {field} must be less than or equal to the maximum allowed value {max} for container '{container}'"
    )]
    HealthCheckAboveMax {
        field: HealthCheckField,
        max: i32,
        container: String,
    },
    // pattern (from the maximum message)
    #[error(
        "Health check {field} must be greater than or equal to the minimum allowed value {min} for container '{container}'"
    )]
    HealthCheckBelowMin {
        field: HealthCheckField,
        min: i32,
        container: String,
    },

    // pattern (from Container.name)
    #[error("Volume.name should not be null or empty.")]
    VolumeNameBlank,
    // pattern (from the container-name message)
    #[error("Volume names must be unique within a Task Definition.")]
    DuplicateVolumeName,
    // seen (ansible#35751, wellcomecollection/platform#677)
    #[error("Unknown volume '{0}'.")]
    UnknownVolume(String),
    // written
    #[error(
        "Container '{container}' has volumesFrom '{source_container}', which is not another container in this task definition."
    )]
    UnknownVolumesFromContainer {
        container: String,
        source_container: String,
    },

    /// `{0}` is the driver; `{1}` the drivers allowed for the launch type.
    // seen for Fargate (aws/containers-roadmap#669 and a linter quoting the full text)
    #[error("{0} is not a valid log driver. Must be one of [{1}]")]
    InvalidLogDriver(String, &'static str),
    // seen with both options missing (klothoplatform/klotho#892)
    #[error("Log driver awslogs requires options: {0}")]
    AwslogsOptionsMissing(String),
}

impl TaskDefinitionError {
    /// The text ECS puts in the `ClientException` message.
    pub fn message(&self) -> String {
        self.to_string()
    }
}
