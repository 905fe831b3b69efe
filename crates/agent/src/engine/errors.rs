//! Why a task stops before its containers have run to their end. Each error's Display is
//! the `reason` sent with STOPPED (the task's, and the failed container's), worded as ECS
//! words it: `CannotPullContainerError: …`, `CannotCreateContainerError: Error response
//! from daemon: …`, `CannotStartContainerError: …`. Tools and tests match on these, so they
//! are kept in one file, where every reason the engine sends can be read at once; every
//! part of the engine names them from here without importing another part.

use berth_runtime::RuntimeError;

use crate::awslogs::{OptionsError, PrepareError};
use crate::client::ClientError;
use crate::infra::PAUSE_IMAGE;
use crate::translate::SpecError;

/// Why a task cannot run: its stopped reason.
#[derive(Debug, thiserror::Error)]
pub(super) enum TaskError {
    /// The task as ACS describes it cannot run here (network mode, start order).
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Dependency(#[from] DependencyError),
    #[error("CannotPullContainerError: {0}")]
    Pull(#[from] PullError),
    /// What the task's execution role must fetch before its containers can be made.
    #[error(
        "ResourceInitializationError: unable to pull secrets or registry auth: execution \
         resource retrieval failed: {0}"
    )]
    ExecutionResources(#[from] ExecutionError),
    #[error(transparent)]
    Network(#[from] NetworkError),
    #[error(transparent)]
    Volume(#[from] VolumeError),
    #[error(transparent)]
    Start(#[from] StartError),
}

/// A container whose dependencies (`dependsOn`, links, `volumesFrom`) can never be met.
#[derive(Debug, thiserror::Error)]
pub(super) enum DependencyError {
    #[error("container {container} depends on {dependency}, which is not in the task")]
    NotInTask {
        container: String,
        dependency: String,
    },
    #[error(
        "dependency {dependency} of container {container} exited with code {} (condition \
         SUCCESS)",
        .exit_code.map_or("unknown".to_owned(), |c| c.to_string())
    )]
    Failed {
        container: String,
        dependency: String,
        exit_code: Option<i64>,
    },
    #[error(
        "dependency {dependency} of container {container} did not become healthy (condition \
         HEALTHY)"
    )]
    Unhealthy {
        container: String,
        dependency: String,
    },
    #[error("unknown dependency condition {condition:?} in container {container}")]
    UnknownCondition {
        container: String,
        condition: String,
    },
    #[error("dependency {dependency} of container {container} never started")]
    NeverStarted {
        container: String,
        dependency: String,
    },
    #[error(
        "container {container}: dependencies not resolved within its startTimeout of {seconds}s"
    )]
    StartTimeout { container: String, seconds: u64 },
}

/// Why an image could not be pulled (the task stops with `CannotPullContainerError: …`).
#[derive(Debug, thiserror::Error)]
pub(super) enum PullError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("getting an ECR authorization token: {0}")]
    EcrToken(ClientError),
}

/// What the task's execution role could not fetch.
#[derive(Debug, thiserror::Error)]
pub(super) enum ExecutionError {
    #[error("the task has no execution role credentials")]
    NoCredentials,
    #[error("unable to retrieve ecr registry auth: {0}")]
    EcrAuth(ClientError),
    #[error(
        "unable to retrieve secret from asm: failed to fetch secret {secret} from secrets \
         manager: {cause}"
    )]
    Asm { secret: String, cause: String },
    #[error(
        "unable to retrieve secret from asm: retrieved secret {secret} from secrets manager did \
         not contain json key {key}"
    )]
    AsmJsonKey { secret: String, key: String },
    #[error("unable to retrieve secrets from ssm: {0}")]
    Ssm(String),
    #[error("unable to retrieve secrets from ssm: invalid parameters: {0}")]
    SsmInvalid(String),
    #[error(
        "unable to retrieve registry credentials from asm: secret {0} does not hold a \
         username and a password"
    )]
    RegistryLogin(String),
}

/// awsvpc: the task's network namespace could not be set up.
#[derive(Debug, thiserror::Error)]
pub(super) enum NetworkError {
    #[error("CannotCreateContainerError: network {network} for subnet {subnet}: {source}")]
    SubnetNetwork {
        network: String,
        subnet: String,
        source: RuntimeError,
    },
    #[error("building the infra image {image}: {0}", image = PAUSE_IMAGE)]
    InfraImage(RuntimeError),
    #[error("awsvpc is not supported on {0} hosts (no infra program for it)")]
    Architecture(String),
    #[error(
        "CannotStartContainerError: the task's network namespace is gone (its infra container \
         stopped)"
    )]
    NamespaceGone,
    #[error("CannotCreateContainerError: infra container: {}", .0.daemon_reason())]
    CreateInfra(RuntimeError),
    /// The infra container could not be started (or inspected).
    #[error("CannotStartContainerError: infra container: {}", .0.daemon_reason())]
    StartInfra(RuntimeError),
    #[error(
        "CannotStartContainerError: connecting the infra container to {network} as {address}: {}",
        .source.daemon_reason()
    )]
    Connect {
        network: String,
        address: String,
        source: RuntimeError,
    },
    /// The task's security groups could not be enforced in its namespace (the task does
    /// not run unprotected).
    #[error("CannotStartContainerError: enforcing the task's security groups: {0}")]
    Firewall(String),
    /// A warm infra container could not be made (not a task's reason: the task that would
    /// have taken it makes its own).
    #[error(transparent)]
    Warm(RuntimeError),
}

/// The task's volumes could not be resolved or made.
#[derive(Debug, thiserror::Error)]
pub(super) enum VolumeError {
    #[error(transparent)]
    Resolve(#[from] SpecError),
    #[error("creating the EFS directory {path}: {source}")]
    EfsDirectory {
        path: String,
        source: std::io::Error,
    },
    #[error("CannotCreateContainerError: creating volume {name}: {source}")]
    Create { name: String, source: RuntimeError },
}

/// A container could not be created or started: its `reason`, and the task's.
#[derive(Debug, thiserror::Error)]
pub(super) enum StartError {
    #[error("CannotCreateContainerError: {0}")]
    Spec(SpecError),
    #[error("CannotCreateContainerError: {}", .0.daemon_reason())]
    Create(RuntimeError),
    #[error("CannotStartContainerError: {}", .0.daemon_reason())]
    Start(RuntimeError),
    /// Its awslogs options, refused as Docker refuses them at create.
    #[error("CannotCreateContainerError: Error response from daemon: {0}")]
    LogOptions(OptionsError),
    /// Its log group or stream could not be made.
    #[error(transparent)]
    Logging(PrepareError),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aws(code: &str, message: &str) -> ClientError {
        ClientError::Aws {
            status: 400,
            code: code.to_owned(),
            message: message.to_owned(),
        }
    }

    /// The reasons, byte for byte as the engine wrote them before they were types.
    #[test]
    fn reasons_are_worded_as_ecs_words_them() {
        let daemon = || RuntimeError::Conflict("port is already allocated".to_owned());
        let pull = || RuntimeError::ImagePull {
            image: "nope:1".to_owned(),
            message: "manifest unknown".to_owned(),
        };
        let cases: Vec<(TaskError, &str)> = vec![
            (
                SpecError("awsvpc needs an interface".to_owned()).into(),
                "awsvpc needs an interface",
            ),
            (
                PullError::Runtime(pull()).into(),
                "CannotPullContainerError: pulling nope:1 failed: manifest unknown",
            ),
            (
                PullError::EcrToken(aws("AccessDeniedException", "no")).into(),
                "CannotPullContainerError: getting an ECR authorization token: \
                 AccessDeniedException: no (HTTP 400)",
            ),
            (
                ExecutionError::EcrAuth(aws("AccessDeniedException", "no")).into(),
                "ResourceInitializationError: unable to pull secrets or registry auth: \
                 execution resource retrieval failed: unable to retrieve ecr registry auth: \
                 AccessDeniedException: no (HTTP 400)",
            ),
            (
                StartError::Create(daemon()).into(),
                "CannotCreateContainerError: Error response from daemon: port is already \
                 allocated",
            ),
            (
                StartError::Start(daemon()).into(),
                "CannotStartContainerError: Error response from daemon: port is already \
                 allocated",
            ),
            (
                StartError::Start(RuntimeError::Unavailable("gone".to_owned())).into(),
                "CannotStartContainerError: container runtime unavailable: gone",
            ),
            (
                StartError::Spec(SpecError("container \"x\" has no image".to_owned())).into(),
                "CannotCreateContainerError: container \"x\" has no image",
            ),
            (
                StartError::LogOptions(OptionsError::Mode("sometimes".to_owned())).into(),
                "CannotCreateContainerError: Error response from daemon: logger: logging mode \
                 not supported: sometimes",
            ),
            (
                StartError::Logging(PrepareError::Stream(aws(
                    "ResourceNotFoundException",
                    "The specified log group does not exist.",
                )))
                .into(),
                "CannotStartContainerError: Error response from daemon: failed to initialize \
                 logging driver: failed to create Cloudwatch log stream: \
                 ResourceNotFoundException: The specified log group does not exist.",
            ),
            (
                NetworkError::SubnetNetwork {
                    network: "berth-subnet-a".to_owned(),
                    subnet: "subnet-a".to_owned(),
                    source: RuntimeError::Other("boom".to_owned()),
                }
                .into(),
                "CannotCreateContainerError: network berth-subnet-a for subnet subnet-a: \
                 container runtime: boom",
            ),
            (
                NetworkError::InfraImage(RuntimeError::Other("boom".to_owned())).into(),
                "building the infra image berth/pause:1: container runtime: boom",
            ),
            (
                NetworkError::Architecture("s390x".to_owned()).into(),
                "awsvpc is not supported on s390x hosts (no infra program for it)",
            ),
            (
                NetworkError::NamespaceGone.into(),
                "CannotStartContainerError: the task's network namespace is gone (its infra \
                 container stopped)",
            ),
            (
                NetworkError::CreateInfra(daemon()).into(),
                "CannotCreateContainerError: infra container: Error response from daemon: port \
                 is already allocated",
            ),
            (
                NetworkError::StartInfra(daemon()).into(),
                "CannotStartContainerError: infra container: Error response from daemon: port \
                 is already allocated",
            ),
            (
                NetworkError::Connect {
                    network: "berth-subnet-a".to_owned(),
                    address: "10.0.0.5".to_owned(),
                    source: RuntimeError::Conflict("Address already in use".to_owned()),
                }
                .into(),
                "CannotStartContainerError: connecting the infra container to berth-subnet-a as \
                 10.0.0.5: Error response from daemon: Address already in use",
            ),
            (
                VolumeError::EfsDirectory {
                    path: "/efs/fs-1".to_owned(),
                    source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
                }
                .into(),
                "creating the EFS directory /efs/fs-1: permission denied",
            ),
            (
                VolumeError::Create {
                    name: "data".to_owned(),
                    source: RuntimeError::Other("boom".to_owned()),
                }
                .into(),
                "CannotCreateContainerError: creating volume data: container runtime: boom",
            ),
            (
                DependencyError::NotInTask {
                    container: "app".to_owned(),
                    dependency: "db".to_owned(),
                }
                .into(),
                "container app depends on db, which is not in the task",
            ),
            (
                DependencyError::Failed {
                    container: "app".to_owned(),
                    dependency: "init".to_owned(),
                    exit_code: Some(3),
                }
                .into(),
                "dependency init of container app exited with code 3 (condition SUCCESS)",
            ),
            (
                DependencyError::Failed {
                    container: "app".to_owned(),
                    dependency: "init".to_owned(),
                    exit_code: None,
                }
                .into(),
                "dependency init of container app exited with code unknown (condition SUCCESS)",
            ),
            (
                DependencyError::Unhealthy {
                    container: "app".to_owned(),
                    dependency: "db".to_owned(),
                }
                .into(),
                "dependency db of container app did not become healthy (condition HEALTHY)",
            ),
            (
                DependencyError::UnknownCondition {
                    container: "app".to_owned(),
                    condition: "READY".to_owned(),
                }
                .into(),
                "unknown dependency condition \"READY\" in container app",
            ),
            (
                DependencyError::NeverStarted {
                    container: "app".to_owned(),
                    dependency: "db".to_owned(),
                }
                .into(),
                "dependency db of container app never started",
            ),
            (
                DependencyError::StartTimeout {
                    container: "app".to_owned(),
                    seconds: 180,
                }
                .into(),
                "container app: dependencies not resolved within its startTimeout of 180s",
            ),
        ];
        for (error, reason) in cases {
            assert_eq!(error.to_string(), reason);
        }
    }
}
