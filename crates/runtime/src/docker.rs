//! `DockerRuntime`: Docker Engine over its HTTP API on the local unix socket (bollard). Never
//! shells out. Request building and response reading are pure functions, tested below
//! without a daemon; `tests/docker.rs` runs the whole thing against the real Engine.

use std::collections::{BTreeMap, HashMap};
use std::error::Error as _;
use std::time::Duration;

use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::container::LogOutput;
use bollard::errors::Error as BollardError;
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerStateStatusEnum,
    ContainerStatsResponse, ContainerSummaryStateEnum, EndpointIpamConfig, EndpointSettings,
    EventMessage, HealthConfig, HealthStatusEnum, HostConfig, HostConfigLogConfig, Ipam,
    IpamConfig, NetworkConnectRequest, NetworkCreateRequest, NetworkDisconnectRequest,
    NetworkInspect, NetworkingConfig, PortBinding as DockerPortBinding, ResourcesUlimits,
    VolumeCreateRequest,
};
use bollard::query_parameters::{
    BuildImageOptions, CreateContainerOptionsBuilder, CreateImageOptions, EventsOptions,
    InspectContainerOptions, InspectNetworkOptions, ListContainersOptions, ListNetworksOptions,
    ListVolumesOptions, LogsOptions, RemoveContainerOptions, RemoveVolumeOptions,
    RenameContainerOptions, StartContainerOptions, StatsOptionsBuilder, StopContainerOptions,
    WaitContainerOptions,
};
use futures_util::StreamExt;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::{
    ContainerEvent, ContainerEventKind, ContainerId, ContainerRuntime, ContainerSpec,
    ContainerState, ContainerStats, ContainerStatus, ContainerSummary, EventStream, HealthStatus,
    HostInfo, LogFrame, LogSource, LogStream, MountSpec, NetworkMode, NetworkSpec, NetworkSummary,
    PortBinding, Protocol, RegistryAuth, RuntimeError, RuntimeFuture, VolumeSpec,
    normalize_image_reference,
};

/// Docker's own default socket.
const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";

/// How much longer than the stop timeout a stop request may take before we call Docker
/// unresponsive: Docker answers `stop` only once the container has stopped.
const STOP_REQUEST_GRACE: Duration = Duration::from_secs(60);

/// Docker Engine, reached over its unix socket.
#[derive(Debug, Clone)]
pub struct DockerRuntime {
    docker: Docker,
}

impl DockerRuntime {
    /// Connects to `DOCKER_HOST` (a `unix://` address), or Docker's default socket, and
    /// agrees an API version with the daemon. Fails with `Unavailable` when nothing answers.
    pub async fn connect() -> Result<Self, RuntimeError> {
        let host = std::env::var("DOCKER_HOST").ok();
        Self::connect_with_host(&docker_host(host.as_deref())).await
    }

    /// Connects to the given address: `unix:///path/to/docker.sock` or a bare socket path.
    pub async fn connect_with_host(host: &str) -> Result<Self, RuntimeError> {
        let host = if host.starts_with('/') {
            format!("unix://{host}")
        } else {
            host.to_owned()
        };
        if !host.starts_with("unix://") {
            return Err(RuntimeError::Other(format!(
                "Docker address {host} is not supported: Berth reaches Docker over its unix \
                 socket (unix:///var/run/docker.sock)"
            )));
        }
        let docker = Docker::connect_with_host(&host).map_err(map_error)?;
        // bollard speaks the newest API by default; a 20.10 daemon only knows 1.41 and
        // rejects newer paths, so agree on the lower of the two first.
        let docker = docker.negotiate_version().await.map_err(map_error)?;
        Ok(DockerRuntime { docker })
    }

    /// How long an ordinary request may wait for Docker's answer (bollard's default is two
    /// minutes). Long-lived requests are not cut by it: Docker answers `wait` and `events`
    /// at once and streams the rest, and `stop` gets its own allowance.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.docker = self.docker.with_timeout(timeout);
        self
    }
}

/// `DOCKER_HOST` when set and not empty, else Docker's default socket.
fn docker_host(env: Option<&str>) -> String {
    match env {
        Some(host) if !host.is_empty() => host.to_owned(),
        _ => DEFAULT_DOCKER_HOST.to_owned(),
    }
}

impl ContainerRuntime for DockerRuntime {
    fn info(&self) -> RuntimeFuture<'_, HostInfo> {
        Box::pin(async move {
            let version = self.docker.version().await.map_err(map_error)?;
            let info = self.docker.info().await.map_err(map_error)?;
            Ok(HostInfo {
                server_version: info.server_version.or(version.version).unwrap_or_default(),
                api_version: version.api_version.unwrap_or_default(),
                cpus: info.ncpu.unwrap_or(0).try_into().unwrap_or(0),
                memory_bytes: info.mem_total.unwrap_or(0).try_into().unwrap_or(0),
                os_type: info.os_type.unwrap_or_default(),
                architecture: info.architecture.unwrap_or_default(),
            })
        })
    }

    fn ping(&self) -> RuntimeFuture<'_, ()> {
        Box::pin(async move {
            self.docker.ping().await.map_err(map_error)?;
            Ok(())
        })
    }

    fn image_present<'a>(&'a self, image: &'a str) -> RuntimeFuture<'a, bool> {
        Box::pin(async move {
            match self.docker.inspect_image(image).await.map_err(map_error) {
                Ok(_) => Ok(true),
                Err(RuntimeError::NotFound(_)) => Ok(false),
                Err(e) => Err(e),
            }
        })
    }

    fn pull_image<'a>(
        &'a self,
        image: &'a str,
        auth: Option<&'a RegistryAuth>,
    ) -> RuntimeFuture<'a, ()> {
        Box::pin(async move {
            let options = CreateImageOptions {
                from_image: Some(normalize_image_reference(image)),
                ..Default::default()
            };
            let credentials = auth.map(|auth| DockerCredentials {
                username: Some(auth.username.clone()),
                password: Some(auth.password.clone()),
                serveraddress: Some(auth.server_address.clone()),
                ..Default::default()
            });
            // The pull runs as long as the progress stream does; errors can arrive as an
            // HTTP status before it starts or as an error line inside it.
            let mut progress = self.docker.create_image(Some(options), None, credentials);
            while let Some(line) = progress.next().await {
                line.map_err(|e| match map_error(e) {
                    RuntimeError::Unavailable(m) => RuntimeError::Unavailable(m),
                    other => RuntimeError::ImagePull {
                        image: image.to_owned(),
                        message: error_message(other),
                    },
                })?;
            }
            Ok(())
        })
    }

    fn create_container<'a>(&'a self, spec: &'a ContainerSpec) -> RuntimeFuture<'a, ContainerId> {
        Box::pin(async move {
            let body = build_create_body(spec)?;
            let mut options = CreateContainerOptionsBuilder::new();
            if let Some(name) = &spec.name {
                options = options.name(name);
            }
            let created = self
                .docker
                .create_container(Some(options.build()), body)
                .await
                .map_err(map_error)?;
            Ok(ContainerId(created.id))
        })
    }

    fn start_container<'a>(&'a self, id: &'a ContainerId) -> RuntimeFuture<'a, ()> {
        Box::pin(async move {
            self.docker
                .start_container(id.as_str(), None::<StartContainerOptions>)
                .await
                .map_err(map_error)
        })
    }

    fn stop_container<'a>(
        &'a self,
        id: &'a ContainerId,
        timeout: Duration,
    ) -> RuntimeFuture<'a, ()> {
        Box::pin(async move {
            let seconds = timeout_seconds(timeout);
            let options = StopContainerOptions {
                t: Some(seconds),
                signal: None,
            };
            // Docker answers only once the container has stopped, which can take the whole
            // timeout: give this one request room beyond the ordinary request timeout.
            let allowance = Duration::from_secs(seconds.unsigned_abs().into()) + STOP_REQUEST_GRACE;
            let docker = self.docker.clone();
            let docker = if docker.timeout() < allowance {
                docker.with_timeout(allowance)
            } else {
                docker
            };
            docker
                .stop_container(id.as_str(), Some(options))
                .await
                .map_err(map_error)
        })
    }

    fn remove_container<'a>(&'a self, id: &'a ContainerId) -> RuntimeFuture<'a, ()> {
        Box::pin(async move {
            let options = RemoveContainerOptions {
                v: true,
                force: true,
                link: false,
            };
            self.docker
                .remove_container(id.as_str(), Some(options))
                .await
                .map_err(map_error)
        })
    }

    fn inspect_container<'a>(&'a self, id: &'a ContainerId) -> RuntimeFuture<'a, ContainerStatus> {
        Box::pin(async move {
            let response = self
                .docker
                .inspect_container(id.as_str(), None::<InspectContainerOptions>)
                .await
                .map_err(map_error)?;
            status_from_inspect(response)
        })
    }

    fn list_containers<'a>(
        &'a self,
        label_filter: &'a [(&'a str, &'a str)],
    ) -> RuntimeFuture<'a, Vec<ContainerSummary>> {
        Box::pin(async move {
            let options = ListContainersOptions {
                all: true,
                filters: Some(HashMap::from([(
                    "label".to_owned(),
                    label_filter_values(label_filter),
                )])),
                ..Default::default()
            };
            let containers = self
                .docker
                .list_containers(Some(options))
                .await
                .map_err(map_error)?;
            Ok(containers
                .into_iter()
                .filter_map(|c| {
                    Some(ContainerSummary {
                        id: ContainerId(c.id?),
                        name: c
                            .names
                            .and_then(|names| names.into_iter().next())
                            .map(|n| n.trim_start_matches('/').to_owned())
                            .unwrap_or_default(),
                        image: c.image.unwrap_or_default(),
                        labels: c.labels.unwrap_or_default().into_iter().collect(),
                        state: summary_state(c.state),
                    })
                })
                .collect())
        })
    }

    fn wait_exit<'a>(&'a self, id: &'a ContainerId) -> RuntimeFuture<'a, i64> {
        Box::pin(async move {
            let options = WaitContainerOptions {
                condition: "not-running".to_owned(),
            };
            let mut wait = self.docker.wait_container(id.as_str(), Some(options));
            match wait.next().await {
                Some(Ok(response)) => Ok(response.status_code),
                // bollard turns a non-zero exit into an error; it is our answer.
                Some(Err(BollardError::DockerContainerWaitError { code, .. })) => Ok(code),
                Some(Err(e)) => Err(map_error(e)),
                None => Err(RuntimeError::Unavailable(format!(
                    "Docker ended the wait for {id} without an exit code"
                ))),
            }
        })
    }

    fn events<'a>(
        &'a self,
        label_filter: &'a [(&'a str, &'a str)],
    ) -> RuntimeFuture<'a, EventStream> {
        Box::pin(async move {
            // bollard sends the request only when the stream is first polled, so a stream
            // is handed out even with Docker gone; a ping first makes that an `Unavailable`
            // here, where callers back off, instead of a stream that fails at once.
            self.docker.ping().await.map_err(map_error)?;
            // Asking for events *since now* makes Docker replay anything that happens
            // between this call and the first poll from its event buffer, so the
            // subscription effectively starts here.
            let options = events_options(label_filter, OffsetDateTime::now_utc());
            let stream = self.docker.events(Some(options)).filter_map(|message| {
                std::future::ready(match message {
                    Ok(message) => event_from_message(&message).map(Ok),
                    Err(e) => Some(Err(map_error(e))),
                })
            });
            Ok(Box::pin(stream) as EventStream)
        })
    }

    fn logs<'a>(
        &'a self,
        id: &'a ContainerId,
        since: Option<OffsetDateTime>,
        follow: bool,
    ) -> RuntimeFuture<'a, LogStream> {
        Box::pin(async move {
            // As for events: the request is sent on the first poll, so ask first whether
            // Docker is there at all.
            self.docker.ping().await.map_err(map_error)?;
            let stream = self
                .docker
                .logs(id.as_str(), Some(logs_options(since, follow)))
                .filter_map(move |output| {
                    std::future::ready(match output {
                        Ok(output) => log_frame(output)
                            // Docker's `since` has whole seconds here; the rest is ours.
                            .filter(|frame| since.is_none_or(|since| frame.timestamp >= since))
                            .map(Ok),
                        Err(e) => Some(Err(map_error(e))),
                    })
                });
            Ok(Box::pin(stream) as LogStream)
        })
    }

    fn create_volume<'a>(&'a self, volume: &'a VolumeSpec) -> RuntimeFuture<'a, ()> {
        Box::pin(async move {
            let request = VolumeCreateRequest {
                name: Some(volume.name.clone()),
                driver: volume.driver.clone(),
                driver_opts: Some(volume.driver_opts.clone().into_iter().collect()),
                labels: Some(volume.labels.clone().into_iter().collect()),
                ..Default::default()
            };
            self.docker
                .create_volume(request)
                .await
                .map(|_| ())
                .map_err(map_error)
        })
    }

    fn stats<'a>(&'a self, id: &'a ContainerId) -> RuntimeFuture<'a, ContainerStats> {
        Box::pin(async move {
            let options = StatsOptionsBuilder::new()
                .stream(false)
                .one_shot(true)
                .build();
            let mut samples = self.docker.stats(id.as_str(), Some(options));
            let sample = samples
                .next()
                .await
                .ok_or_else(|| RuntimeError::Other(format!("no stats for container {id}")))?
                .map_err(map_error)?;
            Ok(stats_from_docker(sample))
        })
    }

    fn bridge_gateway(&self) -> RuntimeFuture<'_, Option<String>> {
        Box::pin(async move {
            let network = self
                .docker
                .inspect_network("bridge", None::<InspectNetworkOptions>)
                .await;
            match network {
                Ok(network) => Ok(gateway_of(&network)),
                Err(e) => match map_error(e) {
                    RuntimeError::NotFound(_) => Ok(None),
                    other => Err(other),
                },
            }
        })
    }

    fn remove_volume<'a>(&'a self, name: &'a str) -> RuntimeFuture<'a, ()> {
        Box::pin(async move {
            self.docker
                .remove_volume(name, Some(RemoveVolumeOptions { force: false }))
                .await
                .map_err(map_error)
        })
    }

    fn list_volumes<'a>(
        &'a self,
        label_filter: &'a [(&'a str, &'a str)],
    ) -> RuntimeFuture<'a, Vec<String>> {
        Box::pin(async move {
            let options = ListVolumesOptions {
                filters: Some(HashMap::from([(
                    "label".to_owned(),
                    label_filter_values(label_filter),
                )])),
            };
            let listed = self
                .docker
                .list_volumes(Some(options))
                .await
                .map_err(map_error)?;
            Ok(listed
                .volumes
                .unwrap_or_default()
                .into_iter()
                .map(|v| v.name)
                .collect())
        })
    }

    fn list_networks<'a>(
        &'a self,
        label_filter: &'a [(&'a str, &'a str)],
    ) -> RuntimeFuture<'a, Vec<NetworkSummary>> {
        Box::pin(async move {
            let options = ListNetworksOptions {
                filters: Some(HashMap::from([(
                    "label".to_owned(),
                    label_filter_values(label_filter),
                )])),
            };
            let networks = self
                .docker
                .list_networks(Some(options))
                .await
                .map_err(map_error)?;
            Ok(networks
                .into_iter()
                .map(|n| NetworkSummary {
                    id: n.id.unwrap_or_default(),
                    name: n.name.unwrap_or_default(),
                    subnets: n
                        .ipam
                        .and_then(|ipam| ipam.config)
                        .into_iter()
                        .flatten()
                        .filter_map(|pool| pool.subnet)
                        .filter(|subnet| !subnet.contains(':'))
                        .collect(),
                    labels: n.labels.unwrap_or_default().into_iter().collect(),
                })
                .collect())
        })
    }

    fn remove_network<'a>(&'a self, name: &'a str) -> RuntimeFuture<'a, ()> {
        Box::pin(async move {
            match self.docker.remove_network(name).await {
                // Docker refuses a network with active endpoints with a 403.
                Err(BollardError::DockerResponseServerError {
                    status_code: 403,
                    message,
                }) => Err(RuntimeError::Conflict(message)),
                other => other.map_err(map_error),
            }
        })
    }

    fn connect_network<'a>(
        &'a self,
        id: &'a ContainerId,
        network: &'a str,
        ipv4_address: &'a str,
        mac_address: Option<&'a str>,
    ) -> RuntimeFuture<'a, ()> {
        Box::pin(async move {
            let request = NetworkConnectRequest {
                container: id.to_string(),
                endpoint_config: Some(EndpointSettings {
                    ipam_config: Some(EndpointIpamConfig {
                        ipv4_address: Some(ipv4_address.to_owned()),
                        ..Default::default()
                    }),
                    mac_address: mac_address.map(str::to_owned),
                    ..Default::default()
                }),
            };
            self.docker
                .connect_network(network, request)
                .await
                .map_err(map_error)
        })
    }

    fn disconnect_network<'a>(
        &'a self,
        id: &'a ContainerId,
        network: &'a str,
    ) -> RuntimeFuture<'a, ()> {
        Box::pin(async move {
            let request = NetworkDisconnectRequest {
                container: id.to_string(),
                force: Some(true),
            };
            self.docker
                .disconnect_network(network, request)
                .await
                .map_err(map_error)
        })
    }

    fn rename_container<'a>(&'a self, id: &'a ContainerId, name: &'a str) -> RuntimeFuture<'a, ()> {
        Box::pin(async move {
            let options = RenameContainerOptions {
                name: name.to_owned(),
            };
            self.docker
                .rename_container(id.as_str(), options)
                .await
                .map_err(map_error)
        })
    }

    fn ensure_network<'a>(&'a self, network: &'a NetworkSpec) -> RuntimeFuture<'a, ()> {
        Box::pin(async move {
            let existing = self
                .docker
                .inspect_network(&network.name, None::<InspectNetworkOptions>)
                .await;
            match existing.map_err(map_error) {
                Ok(found) => return check_network(&found, network),
                Err(RuntimeError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
            let created = self
                .docker
                .create_network(network_create_request(network))
                .await;
            match created.map_err(map_error) {
                Ok(_) => Ok(()),
                Err(e @ RuntimeError::Unavailable(_)) => Err(e),
                // Someone created it meanwhile (Docker then answers that the subnet
                // overlaps, with a 403): fine if it is the network wanted. Docker reserves
                // the subnet before the network can be inspected, so look a few times.
                Err(e) => {
                    for attempt in 0..NETWORK_RACE_LOOKS {
                        let found = self
                            .docker
                            .inspect_network(&network.name, None::<InspectNetworkOptions>)
                            .await;
                        if let Ok(found) = found {
                            return check_network(&found, network);
                        }
                        if attempt + 1 < NETWORK_RACE_LOOKS {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                    Err(RuntimeError::Conflict(error_message(e)))
                }
            }
        })
    }

    fn build_image<'a>(&'a self, tag: &'a str, context: Vec<u8>) -> RuntimeFuture<'a, ()> {
        Box::pin(async move {
            let options = BuildImageOptions {
                t: Some(tag.to_owned()),
                rm: true,
                forcerm: true,
                ..Default::default()
            };
            let mut progress =
                self.docker
                    .build_image(options, None, Some(bollard::body_full(context.into())));
            while let Some(line) = progress.next().await {
                let line = line.map_err(map_error)?;
                if let Some(detail) = line.error_detail {
                    return Err(RuntimeError::Other(format!(
                        "building {tag}: {}",
                        detail.message.unwrap_or_default()
                    )));
                }
            }
            Ok(())
        })
    }
}

/// The create request of a network spec. Pure.
pub(crate) fn network_create_request(network: &NetworkSpec) -> NetworkCreateRequest {
    NetworkCreateRequest {
        name: network.name.clone(),
        driver: Some("bridge".to_owned()),
        ipam: Some(Ipam {
            driver: Some("default".to_owned()),
            config: Some(vec![IpamConfig {
                subnet: Some(network.subnet.clone()),
                gateway: Some(network.gateway.clone()),
                ..Default::default()
            }]),
            options: None,
        }),
        labels: Some(network.labels.clone().into_iter().collect()),
        ..Default::default()
    }
}

/// An existing network of the wanted name must have the wanted subnet.
fn check_network(found: &NetworkInspect, wanted: &NetworkSpec) -> Result<(), RuntimeError> {
    let subnets: Vec<&str> = found
        .ipam
        .as_ref()
        .and_then(|ipam| ipam.config.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|pool| pool.subnet.as_deref())
        .collect();
    if subnets.contains(&wanted.subnet.as_str()) {
        Ok(())
    } else {
        Err(RuntimeError::Conflict(format!(
            "network {} exists with subnets {subnets:?}, not {}",
            wanted.name, wanted.subnet
        )))
    }
}

/// Docker's stop timeout is whole seconds; round up so a container always gets at least the
/// time asked for.
fn timeout_seconds(timeout: Duration) -> i32 {
    let mut seconds = timeout.as_secs();
    if timeout.subsec_nanos() > 0 {
        seconds += 1;
    }
    seconds.try_into().unwrap_or(i32::MAX)
}

fn label_filter_values(label_filter: &[(&str, &str)]) -> Vec<String> {
    label_filter
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect()
}

fn events_options(label_filter: &[(&str, &str)], since: OffsetDateTime) -> EventsOptions {
    let mut filters = HashMap::from([
        ("type".to_owned(), vec!["container".to_owned()]),
        (
            "event".to_owned(),
            // Docker matches `health_status` against `health_status: healthy` and friends.
            ["start", "die", "oom", "health_status", "destroy"]
                .map(String::from)
                .to_vec(),
        ),
    ]);
    if !label_filter.is_empty() {
        filters.insert("label".to_owned(), label_filter_values(label_filter));
    }
    EventsOptions {
        since: Some(format!(
            "{}.{:09}",
            since.unix_timestamp(),
            since.nanosecond()
        )),
        until: None,
        filters: Some(filters),
    }
}

/// Both streams, every entry timestamped. bollard takes `since` in whole seconds (Docker
/// would take nanoseconds), so it is rounded down and the caller drops what is earlier.
fn logs_options(since: Option<OffsetDateTime>, follow: bool) -> LogsOptions {
    LogsOptions {
        follow,
        stdout: true,
        stderr: true,
        since: since.map_or(0, |t| i32::try_from(t.unix_timestamp()).unwrap_or(i32::MAX)),
        timestamps: true,
        ..Default::default()
    }
}

/// One log entry as Docker sends it: `<RFC 3339 timestamp> <bytes>`, in a stdout or stderr
/// frame (a TTY container's output comes unframed, as console lines). `None` for what is
/// not an entry (stdin, or Docker's own `Error grabbing logs` notes, which have no time).
pub(crate) fn log_frame(output: LogOutput) -> Option<LogFrame> {
    let (source, message) = match output {
        LogOutput::StdOut { message } | LogOutput::Console { message } => {
            (LogSource::Stdout, message)
        }
        LogOutput::StdErr { message } => (LogSource::Stderr, message),
        LogOutput::StdIn { .. } => return None,
    };
    let space = message.iter().position(|b| *b == b' ');
    let timestamp = space
        .and_then(|at| std::str::from_utf8(&message[..at]).ok())
        .and_then(|text| OffsetDateTime::parse(text, &Rfc3339).ok());
    let (Some(space), Some(timestamp)) = (space, timestamp) else {
        tracing::warn!(entry = %String::from_utf8_lossy(&message[..message.len().min(200)]), "a log entry without a timestamp was skipped");
        return None;
    };
    Some(LogFrame {
        timestamp,
        source,
        bytes: message.slice(space + 1..),
    })
}

fn event_from_message(message: &EventMessage) -> Option<ContainerEvent> {
    let actor = message.actor.as_ref()?;
    let id = ContainerId(actor.id.clone()?);
    let action = message.action.as_deref()?;
    let kind = match action {
        "start" => ContainerEventKind::Started,
        "die" => ContainerEventKind::Died {
            exit_code: actor
                .attributes
                .as_ref()
                .and_then(|a| a.get("exitCode"))
                .and_then(|code| code.parse().ok()),
        },
        "oom" => ContainerEventKind::OomKilled,
        "destroy" => ContainerEventKind::Destroyed,
        other => {
            let status = other.strip_prefix("health_status:")?.trim();
            ContainerEventKind::Health(match status {
                "healthy" => HealthStatus::Healthy,
                "unhealthy" => HealthStatus::Unhealthy,
                "starting" => HealthStatus::Starting,
                _ => return None,
            })
        }
    };
    Some(ContainerEvent { id, kind })
}

/// Turns a spec into Docker's create request. Pure, so it is tested without a daemon.
pub(crate) fn build_create_body(spec: &ContainerSpec) -> Result<ContainerCreateBody, RuntimeError> {
    spec.validate()?;
    let publishes = spec.network_mode.publishes_ports();
    let mut port_bindings: HashMap<String, Option<Vec<DockerPortBinding>>> = HashMap::new();
    if publishes {
        for mapping in &spec.port_mappings {
            let key = format!("{}/{}", mapping.container_port, mapping.protocol.as_str());
            let binding = DockerPortBinding {
                host_ip: mapping.host_ip.clone(),
                // Empty asks Docker for a free port from its ephemeral range.
                host_port: Some(match mapping.host_port {
                    Some(port) if port != 0 => port.to_string(),
                    _ => String::new(),
                }),
            };
            port_bindings
                .entry(key)
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(binding);
        }
    }
    let mut exposed_ports: Vec<String> = port_bindings.keys().cloned().collect();
    exposed_ports.sort();

    let mut binds = Vec::with_capacity(spec.mounts.len());
    for mount in &spec.mounts {
        let (source, target, read_only) = match mount {
            MountSpec::Bind {
                host_path,
                container_path,
                read_only,
            } => (host_path, container_path, *read_only),
            MountSpec::Volume {
                name,
                container_path,
                read_only,
            } => (name, container_path, *read_only),
        };
        // Binds rather than the Mounts API: a bind source that does not exist is created (as
        // ECS host volumes expect) and a missing named volume is created with the default
        // driver.
        binds.push(if read_only {
            format!("{source}:{target}:ro")
        } else {
            format!("{source}:{target}")
        });
    }

    let healthcheck = spec.health_check.as_ref().map(|check| {
        let nanos = |secs: Option<u32>| secs.map(|s| i64::from(s) * 1_000_000_000);
        HealthConfig {
            test: Some(check.command.clone()),
            interval: nanos(check.interval_secs),
            timeout: nanos(check.timeout_secs),
            retries: check.retries.map(i64::from),
            start_period: nanos(check.start_period_secs),
            start_interval: None,
        }
    });

    let non_empty = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
    let mib = |m: Option<u64>| {
        m.map(|m| i64::try_from(m.saturating_mul(1024 * 1024)).unwrap_or(i64::MAX))
    };

    let host_config = HostConfig {
        network_mode: Some(spec.network_mode.docker_value()),
        port_bindings: (!port_bindings.is_empty()).then_some(port_bindings),
        cpu_shares: spec
            .cpu_shares
            .map(|s| i64::try_from(s).unwrap_or(i64::MAX)),
        cpu_quota: spec
            .cpu_quota
            .map(|c| i64::try_from(c.quota_us).unwrap_or(i64::MAX)),
        cpu_period: spec
            .cpu_quota
            .map(|c| i64::try_from(c.period_us).unwrap_or(i64::MAX)),
        memory: mib(spec.memory_mib),
        memory_reservation: mib(spec.memory_reservation_mib),
        ulimits: (!spec.ulimits.is_empty()).then(|| {
            spec.ulimits
                .iter()
                .map(|u| ResourcesUlimits {
                    name: Some(u.name.clone()),
                    soft: Some(u.soft),
                    hard: Some(u.hard),
                })
                .collect()
        }),
        binds: non_empty(&binds),
        volumes_from: non_empty(&spec.volumes_from),
        links: non_empty(&spec.links),
        extra_hosts: (!spec.extra_hosts.is_empty()).then(|| {
            spec.extra_hosts
                .iter()
                .map(|(host, ip)| format!("{host}:{ip}"))
                .collect()
        }),
        dns: non_empty(&spec.dns_servers),
        dns_search: non_empty(&spec.dns_search_domains),
        init: spec.init.then_some(true),
        privileged: spec.privileged.then_some(true),
        readonly_rootfs: spec.readonly_rootfs.then_some(true),
        log_config: spec.log_config.as_ref().map(|log| HostConfigLogConfig {
            typ: Some(log.driver.clone()),
            config: Some(log.options.clone().into_iter().collect()),
        }),
        ..Default::default()
    };

    // A fixed address (and MAC) on a named network goes on that network's endpoint.
    let networking_config = match &spec.network_mode {
        NetworkMode::Named(name) if spec.ipv4_address.is_some() || spec.mac_address.is_some() => {
            Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(
                    name.clone(),
                    EndpointSettings {
                        ipam_config: spec.ipv4_address.as_ref().map(|ip| EndpointIpamConfig {
                            ipv4_address: Some(ip.clone()),
                            ..Default::default()
                        }),
                        mac_address: spec.mac_address.clone(),
                        ..Default::default()
                    },
                )])),
            })
        }
        _ => None,
    };

    Ok(ContainerCreateBody {
        image: Some(spec.image.clone()),
        networking_config,
        cmd: non_empty(&spec.command),
        entrypoint: non_empty(&spec.entrypoint),
        env: (!spec.env.is_empty()).then(|| {
            spec.env
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect()
        }),
        working_dir: spec.working_dir.clone(),
        user: spec.user.clone(),
        hostname: spec.hostname.clone(),
        labels: (!spec.labels.is_empty()).then(|| spec.labels.clone().into_iter().collect()),
        exposed_ports: (!exposed_ports.is_empty()).then_some(exposed_ports),
        healthcheck,
        stop_signal: spec.stop_signal.clone(),
        host_config: Some(host_config),
        ..Default::default()
    })
}

/// Reads Docker's inspect answer. Pure, so it is tested without a daemon.
pub(crate) fn status_from_inspect(
    response: ContainerInspectResponse,
) -> Result<ContainerStatus, RuntimeError> {
    let id = response
        .id
        .ok_or_else(|| RuntimeError::Other("inspect answer without an id".to_owned()))?;
    let state = response.state.unwrap_or_default();
    let container_state = match state.status {
        Some(ContainerStateStatusEnum::CREATED) => ContainerState::Created,
        Some(ContainerStateStatusEnum::RUNNING) => ContainerState::Running,
        Some(ContainerStateStatusEnum::PAUSED) => ContainerState::Paused,
        Some(ContainerStateStatusEnum::RESTARTING) => ContainerState::Restarting,
        Some(ContainerStateStatusEnum::REMOVING) => ContainerState::Removing,
        Some(ContainerStateStatusEnum::EXITED) => ContainerState::Exited,
        Some(ContainerStateStatusEnum::DEAD) => ContainerState::Dead,
        // Newer daemons have a transient `stopping`; the process is still there.
        Some(ContainerStateStatusEnum::STOPPING) => ContainerState::Running,
        Some(ContainerStateStatusEnum::EMPTY) | None => {
            return Err(RuntimeError::Other(format!(
                "container {id} has no state in Docker's answer"
            )));
        }
    };
    let health = match state.health.and_then(|h| h.status) {
        Some(HealthStatusEnum::STARTING) => HealthStatus::Starting,
        Some(HealthStatusEnum::HEALTHY) => HealthStatus::Healthy,
        Some(HealthStatusEnum::UNHEALTHY) => HealthStatus::Unhealthy,
        Some(HealthStatusEnum::NONE | HealthStatusEnum::EMPTY) | None => HealthStatus::None,
    };

    let network = response.network_settings.unwrap_or_default();
    let mut port_bindings = Vec::new();
    for (key, bindings) in network.ports.unwrap_or_default() {
        let Some((container_port, protocol)) = parse_port_key(&key) else {
            continue;
        };
        for binding in bindings.unwrap_or_default() {
            let Some(host_port) = binding.host_port.and_then(|p| p.parse().ok()) else {
                continue;
            };
            port_bindings.push(PortBinding {
                container_port,
                protocol,
                host_ip: binding.host_ip.unwrap_or_default(),
                host_port,
            });
        }
    }
    port_bindings.sort_by(|a, b| {
        (a.container_port, a.protocol, &a.host_ip).cmp(&(b.container_port, b.protocol, &b.host_ip))
    });

    // The address on the container's own network mode first, else any network it is on.
    let network_mode = response
        .host_config
        .as_ref()
        .and_then(|h| h.network_mode.clone())
        .unwrap_or_default();
    let networks = network.networks.unwrap_or_default();
    let ip_address = networks
        .get(&network_mode)
        .and_then(|n| n.ip_address.clone())
        .filter(|ip| !ip.is_empty())
        .or_else(|| {
            let mut names: Vec<&String> = networks.keys().collect();
            names.sort();
            names
                .into_iter()
                .filter_map(|name| networks[name].ip_address.clone())
                .find(|ip| !ip.is_empty())
        });

    let started_at = state.started_at.as_deref().and_then(parse_docker_time);
    let mut finished_at = state.finished_at.as_deref().and_then(parse_docker_time);
    // Docker stamps StartedAt only once its start call completes, so a process that exits
    // at once can carry a FinishedAt a few milliseconds *before* it (moby/moby#45445).
    if let (Some(started), Some(finished)) = (started_at, finished_at)
        && finished < started
    {
        finished_at = Some(started);
    }

    let config = response.config.unwrap_or_default();
    Ok(ContainerStatus {
        id: ContainerId(id),
        name: response
            .name
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_owned(),
        image: config.image.unwrap_or_default(),
        image_id: response.image.unwrap_or_default(),
        state: container_state,
        exit_code: if container_state.is_stopped() {
            state.exit_code
        } else {
            None
        },
        created_at: response.created.as_deref().and_then(parse_docker_time),
        started_at,
        finished_at,
        oom_killed: state.oom_killed.unwrap_or(false),
        error: state.error.unwrap_or_default(),
        health,
        port_bindings,
        ip_address,
        pid: state.pid.filter(|pid| *pid > 0),
        labels: config
            .labels
            .unwrap_or_default()
            .into_iter()
            .collect::<BTreeMap<_, _>>(),
        env: config.env.unwrap_or_default(),
        working_dir: config.working_dir.unwrap_or_default(),
        user: config.user.unwrap_or_default(),
    })
}

/// Reads a stats sample. Pure, so it is tested without a daemon.
pub(crate) fn stats_from_docker(sample: ContainerStatsResponse) -> ContainerStats {
    let document = serde_json::to_value(&sample).unwrap_or(serde_json::Value::Null);
    let cpu = sample.cpu_stats.unwrap_or_default();
    let memory = sample.memory_stats.unwrap_or_default();
    let memory_stats = memory.stats.unwrap_or_default();
    ContainerStats {
        read: sample
            .read
            .as_deref()
            .and_then(parse_docker_time)
            .unwrap_or_else(OffsetDateTime::now_utc),
        cpu_total_ns: cpu
            .cpu_usage
            .and_then(|u| u.total_usage)
            .unwrap_or_default(),
        system_cpu_ns: cpu.system_cpu_usage,
        online_cpus: cpu.online_cpus,
        memory_usage_bytes: memory.usage.unwrap_or_default(),
        // cgroup v1 reports the page cache as `cache`, v2 as `inactive_file`.
        memory_cache_bytes: memory_stats
            .get("cache")
            .or_else(|| memory_stats.get("inactive_file"))
            .copied()
            .unwrap_or_default(),
        memory_limit_bytes: memory.limit,
        document,
    }
}

/// The gateway of a network's first IPv4 pool; when Docker leaves it out (the default bridge
/// often does), the pool's first address, which is what Docker gives the bridge.
pub(crate) fn gateway_of(network: &NetworkInspect) -> Option<String> {
    let pools = network.ipam.as_ref()?.config.as_ref()?;
    pools.iter().find_map(|pool| {
        if let Some(gateway) = pool.gateway.as_deref().filter(|g| !g.is_empty()) {
            return gateway
                .parse::<std::net::Ipv4Addr>()
                .ok()
                .map(|ip| ip.to_string());
        }
        let (address, prefix) = pool.subnet.as_deref()?.split_once('/')?;
        let address: std::net::Ipv4Addr = address.parse().ok()?;
        let prefix: u32 = prefix.parse().ok()?;
        if prefix >= 31 {
            return None;
        }
        let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
        Some(std::net::Ipv4Addr::from((u32::from(address) & mask) + 1).to_string())
    })
}

/// `"8080/tcp"` → `(8080, Tcp)`. Other protocols (sctp) are not ours.
fn parse_port_key(key: &str) -> Option<(u16, Protocol)> {
    let (port, protocol) = key.split_once('/').unwrap_or((key, "tcp"));
    let protocol = match protocol {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        _ => return None,
    };
    Some((port.parse().ok()?, protocol))
}

/// Docker writes unset times as year 1 (`0001-01-01T00:00:00Z`).
fn parse_docker_time(value: &str) -> Option<OffsetDateTime> {
    let time = OffsetDateTime::parse(value, &Rfc3339).ok()?;
    (time.year() > 1).then_some(time)
}

fn summary_state(state: Option<ContainerSummaryStateEnum>) -> ContainerState {
    match state {
        Some(ContainerSummaryStateEnum::CREATED) => ContainerState::Created,
        Some(ContainerSummaryStateEnum::RUNNING | ContainerSummaryStateEnum::STOPPING) => {
            ContainerState::Running
        }
        Some(ContainerSummaryStateEnum::PAUSED) => ContainerState::Paused,
        Some(ContainerSummaryStateEnum::RESTARTING) => ContainerState::Restarting,
        Some(ContainerSummaryStateEnum::REMOVING) => ContainerState::Removing,
        Some(ContainerSummaryStateEnum::EXITED) => ContainerState::Exited,
        Some(ContainerSummaryStateEnum::DEAD | ContainerSummaryStateEnum::EMPTY) | None => {
            ContainerState::Dead
        }
    }
}

/// Sorts bollard's errors into ours: transport trouble is `Unavailable`, Docker's status
/// codes give the rest.
/// How often a network another creator is making is looked for (100 ms apart).
const NETWORK_RACE_LOOKS: u32 = 10;

fn map_error(error: BollardError) -> RuntimeError {
    match error {
        BollardError::DockerResponseServerError {
            status_code,
            message,
        } => match status_code {
            404 => RuntimeError::NotFound(message),
            409 => RuntimeError::Conflict(message),
            400 => RuntimeError::InvalidSpec(message),
            // Docker reports a taken host port as a 500 from start, a taken address on a
            // network as a 403 from connect ("Address already in use").
            _ if message.contains("port is already allocated")
                || message
                    .to_ascii_lowercase()
                    .contains("address already in use") =>
            {
                RuntimeError::Conflict(message)
            }
            _ => RuntimeError::Other(format!("Docker answered {status_code}: {message}")),
        },
        BollardError::HyperLegacyError { .. }
        | BollardError::HyperResponseError { .. }
        | BollardError::IOError { .. }
        | BollardError::SocketNotFoundError(_)
        | BollardError::RequestTimeoutError
        | BollardError::UnsupportedURISchemeError { .. } => {
            RuntimeError::Unavailable(with_sources(&error))
        }
        other => RuntimeError::Other(with_sources(&other)),
    }
}

/// hyper's top-level messages ("client error (Connect)") hide the cause one level down.
fn with_sources(error: &BollardError) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

fn error_message(error: RuntimeError) -> String {
    match error {
        RuntimeError::Unavailable(m)
        | RuntimeError::NotFound(m)
        | RuntimeError::Conflict(m)
        | RuntimeError::InvalidSpec(m)
        | RuntimeError::Other(m) => m,
        RuntimeError::ImagePull { message, .. } => message,
    }
}

#[cfg(test)]
mod tests;
