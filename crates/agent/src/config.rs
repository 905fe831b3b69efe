//! What the agent is told at start: where the control plane is, which cluster to join, where
//! to keep its state, and the AWS credentials and region it signs with (from the standard
//! AWS sources, as the official agent and every AWS SDK read them).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use berth_model::InstallationId;

/// A command-line value the agent cannot read (clap shows the message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlagError {
    #[error("unknown runtime {0:?}: use docker or simulated")]
    Runtime(String),
    #[error("unknown image pull behavior {0:?}: use default, always, once or prefer-cached")]
    ImagePullBehavior(String),
    #[error("attribute {0:?} is not NAME=VALUE")]
    Attribute(String),
}

/// A configuration the agent cannot run with.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "configuration: no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, \
         or AWS_SHARED_CREDENTIALS_FILE"
    )]
    NoCredentials,
    #[error(
        "configuration: no AWS credentials in the environment, and the shared credentials file \
         {} could not be read: {source}",
        .path.display()
    )]
    CredentialsFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "configuration: profile [{profile}] in {} has no aws_access_key_id and \
         aws_secret_access_key",
        .path.display()
    )]
    NoProfile { profile: String, path: PathBuf },
}

/// ECS's default time between SIGTERM and SIGKILL when a container sets no `stopTimeout`
/// (the official agent's `ECS_CONTAINER_STOP_TIMEOUT`).
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long stopped containers are kept before removal (`ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION`).
pub const DEFAULT_CLEANUP_DELAY: Duration = Duration::from_secs(3 * 60 * 60);
/// Stopped tasks whose containers an agent keeps (for `docker logs` and inspection) before
/// the cleanup delay has run out; beyond it the oldest are removed at once, so a host where
/// tasks keep failing does not pile up containers.
pub const DEFAULT_MAX_STOPPED_TASKS: usize = 100;
/// Warm infra containers an agent keeps for awsvpc tasks: two, so that a task launched right
/// after another still finds one while the first one's replacement is being made.
pub const DEFAULT_WARM_INFRA: usize = 2;
/// Memory kept back for the host and the agent, in MiB.
pub const DEFAULT_MEMORY_RESERVATION_MIB: u64 = 256;

#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The control plane, e.g. `http://127.0.0.1:4566`.
    pub endpoint: String,
    /// The cluster name (or ARN) to register in.
    pub cluster: String,
    /// Holds `agent-state.json`.
    pub data_dir: PathBuf,
    /// Custom attributes, registered with the instance.
    pub attributes: BTreeMap<String, String>,
    pub availability_zone: Option<String>,
    pub instance_type: Option<String>,
    pub memory_reservation_mib: u64,
    pub runtime: RuntimeChoice,
    pub image_pull_behavior: ImagePullBehavior,
    pub cleanup_delay: Duration,
    /// Where EFS volumes live on this host (`efsVolumeConfiguration`): one directory per
    /// file system; `None`: under the data dir, `efs/`.
    pub efs_root: Option<PathBuf>,
    /// The task metadata endpoint's port: 0 picks a free one on first start (then kept in
    /// the state file); `None` serves no endpoint.
    pub metadata_port: Option<u16>,
    /// Route 169.254.170.2 to the agents of this host (NAT rules, `metadata::link_local`),
    /// so containers find credentials and metadata where ECS puts them.
    pub link_local: bool,
    /// Infra containers kept started for awsvpc tasks (0: none); see `warm`.
    pub warm_infra: usize,
    /// Keep them from the start (Fargate capacity, where every task is awsvpc) rather than
    /// from the first awsvpc task on.
    pub warm_infra_early: bool,
    pub credentials: Credentials,
    pub region: String,
    /// The installation this agent's Docker objects belong to (their label and part of their
    /// names). `None`: the control plane's, learnt at registration.
    pub installation: Option<InstallationId>,
    /// Stopped tasks kept waiting for `cleanup_delay`; past this many, the oldest are
    /// cleaned up at once.
    pub max_stopped_tasks: usize,
    /// The EC2 instance id this agent registers as (its container instance's
    /// `ec2InstanceId`): an Auto Scaling group's instance; `None`: the control plane makes
    /// one up.
    pub ec2_instance_id: Option<String>,
}

impl AgentConfig {
    /// A configuration with ECS's defaults and credentials and region from the environment.
    pub fn new(endpoint: &str, cluster: &str, data_dir: &Path) -> Result<Self, ConfigError> {
        Ok(AgentConfig {
            credentials: Credentials::from_environment()?,
            region: region_from_environment(),
            ..AgentConfig::defaults(endpoint, cluster, data_dir)
        })
    }

    /// A configuration with ECS's defaults and empty credentials (set them, and the
    /// region, before use): for agents whose credentials do not come from the environment.
    pub fn defaults(endpoint: &str, cluster: &str, data_dir: &Path) -> Self {
        AgentConfig {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            cluster: cluster.to_owned(),
            data_dir: data_dir.to_owned(),
            attributes: BTreeMap::new(),
            availability_zone: None,
            instance_type: None,
            memory_reservation_mib: DEFAULT_MEMORY_RESERVATION_MIB,
            runtime: RuntimeChoice::Docker,
            image_pull_behavior: ImagePullBehavior::Default,
            cleanup_delay: DEFAULT_CLEANUP_DELAY,
            efs_root: None,
            metadata_port: Some(0),
            link_local: true,
            warm_infra: DEFAULT_WARM_INFRA,
            warm_infra_early: false,
            credentials: Credentials {
                access_key_id: String::new(),
                secret_access_key: String::new(),
                session_token: None,
            },
            region: berth_model::DEFAULT_REGION.to_owned(),
            installation: None,
            max_stopped_tasks: DEFAULT_MAX_STOPPED_TASKS,
            ec2_instance_id: None,
        }
    }
}

/// Which container runtime runs the tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeChoice {
    /// Docker Engine on its local socket. The default.
    Docker,
    /// **A simulation, not a runtime**: container life cycles acted out in memory so that
    /// hundreds of agents fit on one machine for scale tests. Never the default.
    Simulated,
}

impl FromStr for RuntimeChoice {
    type Err = FlagError;
    fn from_str(s: &str) -> Result<Self, FlagError> {
        match s {
            "docker" => Ok(RuntimeChoice::Docker),
            "simulated" => Ok(RuntimeChoice::Simulated),
            other => Err(FlagError::Runtime(other.to_owned())),
        }
    }
}

/// When an image is pulled, as the official agent's `ECS_IMAGE_PULL_BEHAVIOR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImagePullBehavior {
    /// Always pull; if the pull fails, use a cached copy when there is one.
    Default,
    /// Always pull; a failed pull fails the task.
    Always,
    /// Pull only if this agent has not pulled the image before (or it is gone).
    Once,
    /// Pull only if the image is not present locally.
    PreferCached,
}

impl FromStr for ImagePullBehavior {
    type Err = FlagError;
    fn from_str(s: &str) -> Result<Self, FlagError> {
        match s {
            "default" => Ok(ImagePullBehavior::Default),
            "always" => Ok(ImagePullBehavior::Always),
            "once" => Ok(ImagePullBehavior::Once),
            "prefer-cached" => Ok(ImagePullBehavior::PreferCached),
            other => Err(FlagError::ImagePullBehavior(other.to_owned())),
        }
    }
}

/// AWS credentials. `Debug` hides the secret parts.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<hidden>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<hidden>"),
            )
            .finish()
    }
}

impl Credentials {
    /// `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN`), else the
    /// shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`, default `~/.aws/credentials`)
    /// in profile `AWS_PROFILE` (default `default`).
    pub fn from_environment() -> Result<Self, ConfigError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        if let (Some(access_key_id), Some(secret_access_key)) =
            (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY"))
        {
            return Ok(Credentials {
                access_key_id,
                secret_access_key,
                session_token: var("AWS_SESSION_TOKEN"),
            });
        }
        let path = match var("AWS_SHARED_CREDENTIALS_FILE") {
            Some(path) => PathBuf::from(path),
            None => match var("HOME") {
                Some(home) => Path::new(&home).join(".aws/credentials"),
                None => return Err(ConfigError::NoCredentials),
            },
        };
        let profile = var("AWS_PROFILE").unwrap_or_else(|| "default".to_owned());
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(source) => return Err(ConfigError::CredentialsFile { path, source }),
        };
        match parse_shared_credentials(&text, &profile) {
            Some(credentials) => Ok(credentials),
            None => Err(ConfigError::NoProfile { profile, path }),
        }
    }
}

/// Reads one profile of an AWS shared credentials file (INI: `[profile]` sections of
/// `key = value` lines, `#` and `;` comments).
pub fn parse_shared_credentials(text: &str, profile: &str) -> Option<Credentials> {
    let mut in_profile = false;
    let mut values = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_profile = section.trim() == profile;
            continue;
        }
        if in_profile && let Some((key, value)) = line.split_once('=') {
            values.insert(key.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    Some(Credentials {
        access_key_id: values.remove("aws_access_key_id")?,
        secret_access_key: values.remove("aws_secret_access_key")?,
        session_token: values.remove("aws_session_token"),
    })
}

/// `AWS_REGION`, else `AWS_DEFAULT_REGION`, else `us-east-1`.
pub fn region_from_environment() -> String {
    ["AWS_REGION", "AWS_DEFAULT_REGION"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| berth_model::DEFAULT_REGION.to_owned())
}

/// Reads `K=V` (an attribute as given on the command line).
pub fn parse_attribute(s: &str) -> Result<(String, String), FlagError> {
    match s.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(FlagError::Attribute(s.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_credentials_profiles() {
        let text = "\
# comment
[default]
aws_access_key_id = AKIDDEFAULT
aws_secret_access_key = secretdefault

[berth]
aws_access_key_id=AKIDBERTH
aws_secret_access_key=secret/with+chars=
aws_session_token = tok
";
        let default = parse_shared_credentials(text, "default").unwrap();
        assert_eq!(default.access_key_id, "AKIDDEFAULT");
        assert_eq!(default.session_token, None);
        let berth = parse_shared_credentials(text, "berth").unwrap();
        assert_eq!(berth.secret_access_key, "secret/with+chars=");
        assert_eq!(berth.session_token.as_deref(), Some("tok"));
        assert!(parse_shared_credentials(text, "missing").is_none());
        assert!(!format!("{berth:?}").contains("secret/with"));
    }

    #[test]
    fn attributes_and_choices_parse() {
        assert_eq!(
            parse_attribute("stack=blue=green").unwrap(),
            ("stack".to_owned(), "blue=green".to_owned())
        );
        assert_eq!(
            parse_attribute("novalue").unwrap_err().to_string(),
            "attribute \"novalue\" is not NAME=VALUE"
        );
        assert!(parse_attribute("=x").is_err());
        assert_eq!(
            "prefer-cached".parse::<ImagePullBehavior>().unwrap(),
            ImagePullBehavior::PreferCached
        );
        assert_eq!(
            "sometimes"
                .parse::<ImagePullBehavior>()
                .unwrap_err()
                .to_string(),
            "unknown image pull behavior \"sometimes\": use default, always, once or prefer-cached"
        );
        assert_eq!(
            "podman".parse::<RuntimeChoice>().unwrap_err().to_string(),
            "unknown runtime \"podman\": use docker or simulated"
        );
        assert_eq!(
            "simulated".parse::<RuntimeChoice>().unwrap(),
            RuntimeChoice::Simulated
        );
    }
}
