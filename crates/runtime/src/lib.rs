//! The container runtime the agent drives: a small `ContainerRuntime` trait and its two
//! implementations, `DockerRuntime` (Docker Engine over its HTTP API on the local socket) and
//! `SimulatedRuntime` (an in-memory simulation for scale tests and the agent's unit tests).
//!
//! The trait knows containers, images and volumes, nothing of ECS: the agent translates task
//! definitions into `ContainerSpec`s and ECS labels into plain Docker labels.

mod docker;
mod simulated;
mod spec;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use time::OffsetDateTime;

pub use docker::DockerRuntime;
pub use simulated::{SimulatedRuntime, SimulationConfig};
pub use spec::{
    ContainerSpec, CpuQuota, HealthCheck, LogConfig, MountSpec, NetworkMode, NetworkSpec,
    PortMapping, Protocol, Ulimit, VolumeSpec,
};

/// What every runtime call returns: a boxed future, so the trait stays object safe
/// (`Arc<dyn ContainerRuntime>`) without a macro crate.
pub type RuntimeFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, RuntimeError>> + Send + 'a>>;

/// Container events as they happen. The stream ends (or yields an error) when the runtime
/// cannot promise it saw everything — Docker restarted, the connection dropped, a slow reader
/// fell behind; the caller then resubscribes and reconciles with `list_containers`.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<ContainerEvent, RuntimeError>> + Send>>;

/// A container's log, entry by entry, in the order the runtime stored it (see
/// [`ContainerRuntime::logs`]). An error ends it.
pub type LogStream = Pin<Box<dyn Stream<Item = Result<LogFrame, RuntimeError>> + Send>>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeError {
    /// The runtime cannot be reached (Docker not running, socket missing, connection refused
    /// or dropped, request timed out). Retrying later may succeed.
    #[error("container runtime unavailable: {0}")]
    Unavailable(String),
    /// No such container, image or volume.
    #[error("not found: {0}")]
    NotFound(String),
    /// The name is taken, the host port is already allocated, the volume is in use, …
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("pulling {image} failed: {message}")]
    ImagePull { image: String, message: String },
    /// The runtime refused the container's configuration (Docker's 400s).
    #[error("invalid container spec: {0}")]
    InvalidSpec(String),
    #[error("container runtime: {0}")]
    Other(String),
}

impl RuntimeError {
    /// The error as the Docker CLI, and so ECS's agent in a stopped reason, words what the
    /// daemon answered: `Error response from daemon: …`; other errors as they are.
    pub fn daemon_reason(&self) -> String {
        const PREFIX: &str = "Error response from daemon: ";
        match self {
            RuntimeError::NotFound(m)
            | RuntimeError::Conflict(m)
            | RuntimeError::InvalidSpec(m) => {
                format!("{PREFIX}{m}")
            }
            RuntimeError::Other(m) => match m
                .strip_prefix("Docker answered ")
                .and_then(|rest| rest.split_once(": "))
            {
                Some((_, message)) => format!("{PREFIX}{message}"),
                None => m.clone(),
            },
            other => other.to_string(),
        }
    }
}

/// A container's id as the runtime assigned it. Docker also accepts a container's name
/// wherever it takes an id, so `ContainerId::from(name)` works for look-ups.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContainerId(String);

impl ContainerId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for ContainerId {
    fn from(id: String) -> Self {
        ContainerId(id)
    }
}

impl From<&str> for ContainerId {
    fn from(id: &str) -> Self {
        ContainerId(id.to_owned())
    }
}

/// Facts about the host the agent registers as a container instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostInfo {
    /// Docker's server version, e.g. `20.10.24+dfsg1`.
    pub server_version: String,
    /// The highest Engine API version the server speaks, e.g. `1.41`.
    pub api_version: String,
    pub cpus: u32,
    pub memory_bytes: u64,
    /// `linux` or `windows`.
    pub os_type: String,
    /// As Docker reports it: `x86_64`, `aarch64`, …
    pub architecture: String,
}

/// Credentials for a registry, as `docker login` would take them. For Berth's own registry
/// the username is `AWS` and the password an ECR authorization token.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryAuth {
    pub username: String,
    pub password: String,
    /// The registry host, e.g. `127.0.0.1:4566`.
    pub server_address: String,
}

impl fmt::Debug for RegistryAuth {
    // Keeps tokens out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryAuth")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("server_address", &self.server_address)
            .finish()
    }
}

/// Docker's container states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerState {
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl ContainerState {
    /// True once the container's process has ended for good (it may still be inspected).
    pub fn is_stopped(self) -> bool {
        matches!(self, ContainerState::Exited | ContainerState::Dead)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthStatus {
    /// The container has no health check.
    None,
    /// Checked, but not yet passed (or failed `retries` times) since it started.
    Starting,
    Healthy,
    Unhealthy,
}

/// Where a container port ended up on the host. In bridge mode Docker usually binds both
/// `0.0.0.0` and `::`, so a port can appear twice with the same host port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortBinding {
    pub container_port: u16,
    pub protocol: Protocol,
    pub host_ip: String,
    pub host_port: u16,
}

/// A container as `inspect_container` sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerStatus {
    pub id: ContainerId,
    /// Without Docker's leading `/`.
    pub name: String,
    pub image: String,
    /// The image's id (`sha256:…`) as the runtime resolved it at creation.
    pub image_id: String,
    pub state: ContainerState,
    /// Set once the container has stopped.
    pub exit_code: Option<i64>,
    pub created_at: Option<OffsetDateTime>,
    pub started_at: Option<OffsetDateTime>,
    pub finished_at: Option<OffsetDateTime>,
    pub oom_killed: bool,
    /// The runtime's own reason when the container could not run (e.g. the executable was
    /// not found); empty otherwise.
    pub error: String,
    pub health: HealthStatus,
    /// The host ports actually bound, dynamic ones included. Empty unless running in a mode
    /// that publishes ports (bridge or a named network).
    pub port_bindings: Vec<PortBinding>,
    /// The container's address on its network, when it has one.
    pub ip_address: Option<String>,
    /// Its main process on the host while it runs (whose namespaces are the container's);
    /// `None` otherwise, and on a runtime without processes (the simulated one).
    pub pid: Option<i64>,
    pub labels: BTreeMap<String, String>,
    /// `NAME=value`, as the process sees them (the image's variables included).
    pub env: Vec<String>,
    pub working_dir: String,
    pub user: String,
}

/// One sample of a container's resource use, taken when asked (no waiting for a second
/// sample, so `precpu_stats` in the document is empty: rates come from two samples).
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerStats {
    /// When the sample was taken.
    pub read: OffsetDateTime,
    /// CPU time the container has used since it started, all CPUs together, in ns.
    pub cpu_total_ns: u64,
    /// The host's CPU time in ns (Docker's `system_cpu_usage`), when the runtime knows it.
    pub system_cpu_ns: Option<u64>,
    pub online_cpus: Option<u32>,
    pub memory_usage_bytes: u64,
    /// Page cache counted in `memory_usage_bytes` (cgroup v1's `cache`, v2's
    /// `inactive_file`), which ECS leaves out of a container's memory use.
    pub memory_cache_bytes: u64,
    pub memory_limit_bytes: Option<u64>,
    /// The sample as Docker's stats API writes it (`GET /containers/{id}/stats`), which the
    /// task metadata endpoint serves as is.
    pub document: serde_json::Value,
}

impl ContainerStats {
    /// Memory in use without the page cache, as ECS counts it.
    pub fn memory_used_bytes(&self) -> u64 {
        self.memory_usage_bytes
            .saturating_sub(self.memory_cache_bytes)
    }
}

/// One line of `list_containers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSummary {
    pub id: ContainerId,
    pub name: String,
    pub image: String,
    pub labels: BTreeMap<String, String>,
    pub state: ContainerState,
}

/// One line of `list_networks`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkSummary {
    pub id: String,
    pub name: String,
    /// Its IPv4 subnets, e.g. `10.192.3.0/24`.
    pub subnets: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerEvent {
    pub id: ContainerId,
    pub kind: ContainerEventKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerEventKind {
    Started,
    /// The process ended. Docker reports the exit code with the event.
    Died {
        exit_code: Option<i64>,
    },
    /// The kernel's OOM killer hit the container (a `Died` follows).
    OomKilled,
    /// The health status changed (Docker reports `healthy` and `unhealthy`).
    Health(HealthStatus),
    /// The container was removed.
    Destroyed,
}

/// Which of a container's output streams a log entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LogSource {
    Stdout,
    Stderr,
}

/// One entry of a container's log as the runtime stored it. Docker's logging keeps one
/// entry per line, the trailing newline included; a line longer than 16 KiB is split into
/// several entries, each but the last without the newline (a *partial* entry), and the last
/// output of a container that ended mid-line may lack it too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFrame {
    /// When the runtime read the entry from the container, to the nanosecond. Entries of one
    /// source are in time order; between stdout and stderr the order of the log may differ
    /// from the order of the timestamps by a little (each stream is timestamped by its own
    /// reader before the entry is written).
    pub timestamp: OffsetDateTime,
    pub source: LogSource,
    pub bytes: Bytes,
}

/// The operations the agent needs from a container runtime.
///
/// **Learning about exits and health promptly.** Call `events` with the agent's own label
/// *before* listing what exists, then `list_containers` / `inspect_container` to reconcile:
/// the subscription starts when `events` returns, so nothing that happens after the listing
/// can be missed, and an event about a container already known is harmless. On every event,
/// inspect the container for the authoritative state (exit code, timestamps, ports). When
/// the stream ends or errors, subscribe again and reconcile again. `wait_exit` is the
/// one-container alternative (one long request per container).
pub trait ContainerRuntime: Send + Sync {
    fn info(&self) -> RuntimeFuture<'_, HostInfo>;

    /// Whether the runtime answers at all (Docker's `GET /_ping`): the cheapest request, for
    /// the agent's instance health check. `Unavailable` when it does not.
    fn ping(&self) -> RuntimeFuture<'_, ()>;

    /// Whether the image is in the local image store (by name:tag or digest).
    fn image_present<'a>(&'a self, image: &'a str) -> RuntimeFuture<'a, bool>;

    /// Pulls the image; a reference with neither tag nor digest means `:latest`. Resolves when
    /// the pull has finished (or failed with `ImagePull`).
    fn pull_image<'a>(
        &'a self,
        image: &'a str,
        auth: Option<&'a RegistryAuth>,
    ) -> RuntimeFuture<'a, ()>;

    fn create_container<'a>(&'a self, spec: &'a ContainerSpec) -> RuntimeFuture<'a, ContainerId>;

    fn start_container<'a>(&'a self, id: &'a ContainerId) -> RuntimeFuture<'a, ()>;

    /// Sends the container's stop signal (SIGTERM unless the spec said otherwise), then
    /// SIGKILL after `timeout` (whole seconds, rounded up), and resolves once it has stopped,
    /// as `docker stop -t`. Stopping a stopped container succeeds.
    fn stop_container<'a>(
        &'a self,
        id: &'a ContainerId,
        timeout: Duration,
    ) -> RuntimeFuture<'a, ()>;

    /// Removes the container, killing it if it runs, with its anonymous volumes.
    fn remove_container<'a>(&'a self, id: &'a ContainerId) -> RuntimeFuture<'a, ()>;

    fn inspect_container<'a>(&'a self, id: &'a ContainerId) -> RuntimeFuture<'a, ContainerStatus>;

    /// All containers, stopped ones included, carrying every `(key, value)` label given.
    fn list_containers<'a>(
        &'a self,
        label_filter: &'a [(&'a str, &'a str)],
    ) -> RuntimeFuture<'a, Vec<ContainerSummary>>;

    /// Resolves with the exit code once the container is not running. Call it after
    /// `start_container`: a container that was created but never started is "not running"
    /// and resolves at once with 0.
    fn wait_exit<'a>(&'a self, id: &'a ContainerId) -> RuntimeFuture<'a, i64>;

    /// Events of the containers carrying every `(key, value)` label given, from the moment
    /// this resolves on (see the trait's documentation for how to use it).
    fn events<'a>(
        &'a self,
        label_filter: &'a [(&'a str, &'a str)],
    ) -> RuntimeFuture<'a, EventStream>;

    /// Creates a named volume; creating one that exists with the same driver is a no-op.
    fn create_volume<'a>(&'a self, volume: &'a VolumeSpec) -> RuntimeFuture<'a, ()>;

    fn remove_volume<'a>(&'a self, name: &'a str) -> RuntimeFuture<'a, ()>;

    /// The names of the volumes carrying every `(key, value)` label given.
    fn list_volumes<'a>(
        &'a self,
        label_filter: &'a [(&'a str, &'a str)],
    ) -> RuntimeFuture<'a, Vec<String>>;

    /// The networks carrying every `(key, value)` label given.
    fn list_networks<'a>(
        &'a self,
        label_filter: &'a [(&'a str, &'a str)],
    ) -> RuntimeFuture<'a, Vec<NetworkSummary>>;

    /// Removes a network. One a running container is still attached to is a `Conflict` (it
    /// stays); an unknown one is `NotFound`.
    fn remove_network<'a>(&'a self, name: &'a str) -> RuntimeFuture<'a, ()>;

    /// Creates the bridge network unless one of that name exists; one that exists with
    /// another subnet is a `Conflict` (so is a subnet overlapping another network's).
    fn ensure_network<'a>(&'a self, network: &'a NetworkSpec) -> RuntimeFuture<'a, ()>;

    /// Connects a container to a named network with a fixed address (and MAC, if given), as
    /// `docker network connect --ip`: how a warm infra container takes a task's address. The
    /// address in use on that network is a `Conflict`; an unknown network is `NotFound`.
    fn connect_network<'a>(
        &'a self,
        id: &'a ContainerId,
        network: &'a str,
        ipv4_address: &'a str,
        mac_address: Option<&'a str>,
    ) -> RuntimeFuture<'a, ()>;

    /// Disconnects a container from a network, `none` included (a container created with
    /// `NetworkMode::None` must leave it before it can join another), as
    /// `docker network disconnect`.
    fn disconnect_network<'a>(
        &'a self,
        id: &'a ContainerId,
        network: &'a str,
    ) -> RuntimeFuture<'a, ()>;

    /// Gives the container another name; a name in use is a `Conflict`.
    fn rename_container<'a>(&'a self, id: &'a ContainerId, name: &'a str) -> RuntimeFuture<'a, ()>;

    /// Builds an image from a build context (a tar archive with a `Dockerfile` at its root)
    /// and tags it. Nothing is pulled: the Dockerfile must start `FROM scratch`.
    fn build_image<'a>(&'a self, tag: &'a str, context: Vec<u8>) -> RuntimeFuture<'a, ()>;

    /// A sample of the container's CPU and memory use, taken now.
    fn stats<'a>(&'a self, id: &'a ContainerId) -> RuntimeFuture<'a, ContainerStats>;

    /// The container's stdout and stderr log, from its first entry or from the first one
    /// timestamped at or after `since`, in the order the runtime stored it. With `follow` the
    /// stream carries on with new output and ends once the container has stopped and
    /// everything it wrote was delivered; without, it ends at the log's current end. A
    /// stream may also end early (the runtime went away): callers that must see everything
    /// resume from what they last received.
    fn logs<'a>(
        &'a self,
        id: &'a ContainerId,
        since: Option<OffsetDateTime>,
        follow: bool,
    ) -> RuntimeFuture<'a, LogStream>;

    /// The host's address on the default bridge network (Docker's `docker0`, usually
    /// 172.17.0.1): what bridge-mode containers reach the host at. `None` if there is none.
    fn bridge_gateway(&self) -> RuntimeFuture<'_, Option<String>>;
}

/// Adds `:latest` to a reference that has neither a tag nor a digest, as the docker CLI does:
/// the Engine's pull endpoint would otherwise pull every tag of the repository.
pub fn normalize_image_reference(image: &str) -> String {
    if image.contains('@') {
        return image.to_owned();
    }
    // A ':' after the last '/' is a tag; one before it belongs to a registry host's port.
    let last_component = image.rsplit('/').next().unwrap_or(image);
    if last_component.contains(':') {
        image.to_owned()
    } else {
        format!("{image}:latest")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_without_tag_or_digest_get_latest() {
        assert_eq!(normalize_image_reference("busybox"), "busybox:latest");
        assert_eq!(normalize_image_reference("busybox:1.36"), "busybox:1.36");
        assert_eq!(
            normalize_image_reference("127.0.0.1:4566/team/app"),
            "127.0.0.1:4566/team/app:latest"
        );
        assert_eq!(
            normalize_image_reference("127.0.0.1:4566/team/app:v1"),
            "127.0.0.1:4566/team/app:v1"
        );
        let pinned = "127.0.0.1:4566/app@sha256:0123456789abcdef";
        assert_eq!(normalize_image_reference(pinned), pinned);
    }

    #[test]
    fn registry_auth_debug_hides_the_password() {
        let auth = RegistryAuth {
            username: "AWS".into(),
            password: "secret-token".into(),
            server_address: "127.0.0.1:4566".into(),
        };
        assert!(!format!("{auth:?}").contains("secret-token"));
    }

    #[test]
    fn the_trait_is_object_safe() {
        fn takes(_: std::sync::Arc<dyn ContainerRuntime>) {}
        takes(std::sync::Arc::new(SimulatedRuntime::new(
            SimulationConfig::default(),
        )));
    }
}
