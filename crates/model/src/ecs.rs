//! ECS's own vocabulary, typed: the statuses of tasks, containers, services and deployments,
//! launch types, stop codes and task groups. Each serialises to exactly the string ECS uses
//! on the wire (and Berth's stored records hold), so records written before these types
//! existed read back unchanged. Predicates that several places need ("pending", "live")
//! are defined here once.

use std::fmt;
use std::str::FromStr;

mod arn;
mod shapes;

pub use arn::{EcsArn, EcsResource};
pub use shapes::{
    ClusterConfiguration, ContainerOverride, DeploymentAlarms, EcsTag, ExecuteCommandConfiguration,
    ExecuteCommandLogConfiguration, InferenceAcceleratorOverride, LoadBalancer,
    ManagedStorageConfiguration, NetworkBinding, ServiceConnectDefaults, ServiceEvent,
    ServiceRegistry, TaskOverride, VersionInfo,
};

/// An ECS value that is not one of the type's strings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} '{value}'")]
pub struct UnknownValue {
    pub kind: &'static str,
    pub value: String,
}

/// A closed set of ECS strings as an enum: `as_str`, `Display`, `FromStr` and serde, all
/// with the wire strings.
macro_rules! ecs_strings {
    ($(#[$meta:meta])* $name:ident, $kind:literal { $($(#[$vmeta:meta])* $variant:ident = $text:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }

            /// A request's `field` as this type, or the message AWS's request validation
            /// gives a value outside the set (checked before the operation looks anything
            /// up).
            pub fn parse_member(field: &str, value: &str) -> Result<Self, String> {
                value.parse().map_err(|_| {
                    let set: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                    format!(
                        "1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
                        set.join(", ")
                    )
                })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;
            fn from_str(s: &str) -> Result<Self, UnknownValue> {
                match s {
                    $($text => Ok($name::$variant),)*
                    other => Err(UnknownValue { kind: $kind, value: other.to_owned() }),
                }
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

ecs_strings! {
    /// A task's `lastStatus`: where it is in its life cycle.
    TaskStatus, "task status" {
        Provisioning = "PROVISIONING",
        Pending = "PENDING",
        Activating = "ACTIVATING",
        Running = "RUNNING",
        Deactivating = "DEACTIVATING",
        Stopping = "STOPPING",
        Deprovisioning = "DEPROVISIONING",
        Stopped = "STOPPED",
    }
}

impl TaskStatus {
    /// Not yet RUNNING and not stopping: what ECS counts as pending (a cluster's and a
    /// service's `pendingCount`, ListTasks' PENDING).
    pub fn is_pending(self) -> bool {
        matches!(
            self,
            TaskStatus::Provisioning | TaskStatus::Pending | TaskStatus::Activating
        )
    }

    /// Anything but STOPPED.
    pub fn is_live(self) -> bool {
        self != TaskStatus::Stopped
    }
}

ecs_strings! {
    /// The `healthStatus` of a task or container: UNKNOWN until its health check (every
    /// essential container's, for a task) has an answer.
    HealthStatus, "health status" {
        Healthy = "HEALTHY",
        Unhealthy = "UNHEALTHY",
        Unknown = "UNKNOWN",
    }
}

ecs_strings! {
    /// An attachment's `status` (a task's ENI): PRECREATED when the task is placed,
    /// ATTACHED once its network namespace exists, DELETED when the task has stopped.
    AttachmentStatus, "attachment status" {
        Precreated = "PRECREATED",
        Attaching = "ATTACHING",
        Attached = "ATTACHED",
        Detaching = "DETACHING",
        Detached = "DETACHED",
        Deleted = "DELETED",
        Failed = "FAILED",
    }
}

ecs_strings! {
    /// A cluster's `status` (of ECS's, the two a Berth cluster can be in).
    ClusterStatus, "cluster status" {
        Active = "ACTIVE",
        Inactive = "INACTIVE",
    }
}

ecs_strings! {
    /// A capacity provider's `status`.
    CapacityProviderStatus, "capacity provider status" {
        Active = "ACTIVE",
        Inactive = "INACTIVE",
    }
}

ecs_strings! {
    /// A task's `desiredStatus`.
    DesiredStatus, "desired status" {
        Running = "RUNNING",
        Pending = "PENDING",
        Stopped = "STOPPED",
    }
}

ecs_strings! {
    /// A container's `lastStatus` in a task.
    ContainerStatus, "container status" {
        Pending = "PENDING",
        Running = "RUNNING",
        Stopped = "STOPPED",
    }
}

ecs_strings! {
    /// How far a container has got on its host, as the container agent tracks it (the
    /// official agent's "known status", of which Berth's agent uses these four). Reported to
    /// the control plane as a [`ContainerStatus`] ([`ContainerKnownStatus::reported`]).
    #[derive(Default)]
    ContainerKnownStatus, "container known status" {
        #[default]
        None = "NONE",
        Created = "CREATED",
        Running = "RUNNING",
        Stopped = "STOPPED",
    }
}

impl ContainerKnownStatus {
    /// The `lastStatus` the control plane is told: not yet running is PENDING.
    pub fn reported(self) -> ContainerStatus {
        match self {
            ContainerKnownStatus::None | ContainerKnownStatus::Created => ContainerStatus::Pending,
            ContainerKnownStatus::Running => ContainerStatus::Running,
            ContainerKnownStatus::Stopped => ContainerStatus::Stopped,
        }
    }
}

ecs_strings! {
    /// A container instance's `status` (of ECS's, the three an instance registered through
    /// Berth can be in).
    InstanceStatus, "status" {
        Active = "ACTIVE",
        Draining = "DRAINING",
        Inactive = "INACTIVE",
    }
}

ecs_strings! {
    /// A service's `status`.
    ServiceStatus, "service status" {
        Active = "ACTIVE",
        Draining = "DRAINING",
        Inactive = "INACTIVE",
    }
}

ecs_strings! {
    /// A service deployment's `status` (the PRIMARY one is what tasks are started for).
    DeploymentStatus, "deployment status" {
        Primary = "PRIMARY",
        Active = "ACTIVE",
        Inactive = "INACTIVE",
    }
}

ecs_strings! {
    /// A capacity provider's managed scaling `status`, `managedTerminationProtection` and
    /// `managedDraining`.
    ManagedSwitch, "value" {
        Enabled = "ENABLED",
        Disabled = "DISABLED",
    }
}

ecs_strings! {
    /// A capacity provider's `updateStatus`.
    CapacityProviderUpdateStatus, "update status" {
        DeleteInProgress = "DELETE_IN_PROGRESS",
        DeleteComplete = "DELETE_COMPLETE",
        DeleteFailed = "DELETE_FAILED",
        UpdateInProgress = "UPDATE_IN_PROGRESS",
        UpdateComplete = "UPDATE_COMPLETE",
        UpdateFailed = "UPDATE_FAILED",
    }
}

ecs_strings! {
    /// A service's `deploymentController.type`: ECS's rolling update, CodeDeploy's
    /// blue/green, or an external controller driving task sets.
    DeploymentControllerType, "deployment controller type" {
        Ecs = "ECS",
        CodeDeploy = "CODE_DEPLOY",
        External = "EXTERNAL",
    }
}

ecs_strings! {
    /// A task set's `status` (EXTERNAL deployment controller): the PRIMARY one serves
    /// production traffic; DRAINING ones are being deleted.
    TaskSetStatus, "task set status" {
        Primary = "PRIMARY",
        Active = "ACTIVE",
        Draining = "DRAINING",
    }
}

ecs_strings! {
    /// A task set's `stabilityStatus`.
    StabilityStatus, "stability status" {
        SteadyState = "STEADY_STATE",
        Stabilizing = "STABILIZING",
    }
}

ecs_strings! {
    /// A deployment's `rolloutState`.
    RolloutState, "rollout state" {
        InProgress = "IN_PROGRESS",
        Completed = "COMPLETED",
        Failed = "FAILED",
    }
}

ecs_strings! {
    /// A service deployment's `status` (the ServiceDeployment APIs).
    ServiceDeploymentStatus, "service deployment status" {
        Pending = "PENDING",
        InProgress = "IN_PROGRESS",
        Successful = "SUCCESSFUL",
        StopRequested = "STOP_REQUESTED",
        Stopped = "STOPPED",
        RollbackRequested = "ROLLBACK_REQUESTED",
        RollbackInProgress = "ROLLBACK_IN_PROGRESS",
        RollbackSuccessful = "ROLLBACK_SUCCESSFUL",
        RollbackFailed = "ROLLBACK_FAILED",
    }
}

ecs_strings! {
    /// A task definition revision's `status`.
    TaskDefinitionStatus, "task definition status" {
        Active = "ACTIVE",
        Inactive = "INACTIVE",
        DeleteInProgress = "DELETE_IN_PROGRESS",
    }
}

ecs_strings! {
    /// ListTaskDefinitionFamilies' `status`: families with an ACTIVE revision, families
    /// without one, or both.
    TaskDefinitionFamilyStatus, "status" {
        Active = "ACTIVE",
        Inactive = "INACTIVE",
        All = "ALL",
    }
}

ecs_strings! {
    /// Where a task runs.
    LaunchType, "launch type" {
        Ec2 = "EC2",
        Fargate = "FARGATE",
        External = "EXTERNAL",
    }
}

ecs_strings! {
    /// Why a task stopped, as a code (`stopCode`).
    StopCode, "stop code" {
        TaskFailedToStart = "TaskFailedToStart",
        EssentialContainerExited = "EssentialContainerExited",
        UserInitiated = "UserInitiated",
        ServiceSchedulerInitiated = "ServiceSchedulerInitiated",
        SpotInterruption = "SpotInterruption",
        TerminationNotice = "TerminationNotice",
    }
}

/// A task's group: `service:NAME` for a service's tasks, `family:NAME` by default, or any
/// name RunTask was given.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TaskGroup<'a> {
    Service(&'a str),
    Family(&'a str),
    Other(&'a str),
}

impl<'a> TaskGroup<'a> {
    pub fn parse(group: &'a str) -> TaskGroup<'a> {
        if let Some(name) = group.strip_prefix("service:") {
            TaskGroup::Service(name)
        } else if let Some(name) = group.strip_prefix("family:") {
            TaskGroup::Family(name)
        } else {
            TaskGroup::Other(group)
        }
    }

    /// The group of a service's tasks.
    pub fn of_service(name: &str) -> String {
        format!("service:{name}")
    }

    /// The default group of a task of this family.
    pub fn of_family(name: &str) -> String {
        format!("family:{name}")
    }

    /// The service name, for a service's group.
    pub fn service(&self) -> Option<&'a str> {
        match self {
            TaskGroup::Service(name) => Some(name),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_travel_as_ecs_strings_and_read_back() {
        for status in TaskStatus::ALL {
            let json = serde_json::to_string(status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
            assert_eq!(serde_json::from_str::<TaskStatus>(&json).unwrap(), *status);
            assert_eq!(status.as_str().parse::<TaskStatus>().unwrap(), *status);
        }
        assert!(serde_json::from_str::<TaskStatus>("\"BOGUS\"").is_err());
        assert_eq!(
            "nope".parse::<LaunchType>().unwrap_err().to_string(),
            "invalid launch type 'nope'"
        );
        assert_eq!(StopCode::TaskFailedToStart.as_str(), "TaskFailedToStart");
        assert_eq!(
            LaunchType::parse_member("launchType", "EC3").unwrap_err(),
            "1 validation error detected: Value 'EC3' at 'launchType' failed to satisfy constraint: Member must satisfy enum value set: [EC2, FARGATE, EXTERNAL]"
        );
    }

    #[test]
    fn pending_means_before_running() {
        let pending: Vec<&str> = TaskStatus::ALL
            .iter()
            .filter(|s| s.is_pending())
            .map(|s| s.as_str())
            .collect();
        assert_eq!(pending, ["PROVISIONING", "PENDING", "ACTIVATING"]);
        assert!(!TaskStatus::Stopped.is_live());
        assert!(TaskStatus::Stopping.is_live());
    }

    #[test]
    fn task_groups_name_their_service_or_family() {
        assert_eq!(TaskGroup::parse("service:web").service(), Some("web"));
        assert_eq!(TaskGroup::parse("family:app"), TaskGroup::Family("app"));
        assert_eq!(TaskGroup::parse("batch"), TaskGroup::Other("batch"));
        assert_eq!(TaskGroup::of_service("web"), "service:web");
        assert_eq!(TaskGroup::of_family("app"), "family:app");
    }
}
