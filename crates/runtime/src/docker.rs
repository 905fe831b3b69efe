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
mod tests {
    use super::*;
    use crate::{HealthCheck, LogConfig, NetworkMode, PortMapping, Ulimit};
    use bollard::models::{
        ContainerConfig, ContainerState as DockerState, EndpointSettings, EventActor, Health,
        NetworkSettings,
    };

    fn spec() -> ContainerSpec {
        ContainerSpec {
            image: "app:v1".to_owned(),
            ..Default::default()
        }
    }

    #[test]
    fn a_minimal_spec_leaves_everything_to_docker() {
        let body = build_create_body(&spec()).unwrap();
        assert_eq!(body.image.as_deref(), Some("app:v1"));
        assert_eq!(body.cmd, None);
        assert_eq!(body.entrypoint, None);
        assert_eq!(body.env, None);
        assert_eq!(body.exposed_ports, None);
        assert_eq!(body.healthcheck, None);
        let host = body.host_config.unwrap();
        assert_eq!(host.network_mode.as_deref(), Some("bridge"));
        assert_eq!(host.port_bindings, None);
        assert_eq!(host.memory, None);
        assert_eq!(host.init, None);
    }

    #[test]
    fn an_empty_image_is_refused() {
        let error = build_create_body(&ContainerSpec::default()).unwrap_err();
        assert!(matches!(error, RuntimeError::InvalidSpec(_)));
    }

    #[test]
    fn process_settings_carry_over() {
        let spec = ContainerSpec {
            command: vec!["-p".into(), "80".into()],
            entrypoint: vec!["httpd".into()],
            env: vec![("A".into(), "1".into()), ("B".into(), "x=y".into())],
            working_dir: Some("/srv".into()),
            user: Some("1000:1000".into()),
            hostname: Some("web".into()),
            stop_signal: Some("SIGQUIT".into()),
            labels: BTreeMap::from([("team".into(), "a".into())]),
            ..spec()
        };
        let body = build_create_body(&spec).unwrap();
        assert_eq!(body.cmd.unwrap(), ["-p", "80"]);
        assert_eq!(body.entrypoint.unwrap(), ["httpd"]);
        assert_eq!(body.env.unwrap(), ["A=1", "B=x=y"]);
        assert_eq!(body.working_dir.as_deref(), Some("/srv"));
        assert_eq!(body.user.as_deref(), Some("1000:1000"));
        assert_eq!(body.hostname.as_deref(), Some("web"));
        assert_eq!(body.stop_signal.as_deref(), Some("SIGQUIT"));
        assert_eq!(body.labels.unwrap()["team"], "a");
    }

    #[test]
    fn ports_are_exposed_and_bound_static_or_dynamic() {
        let spec = ContainerSpec {
            port_mappings: vec![
                PortMapping {
                    container_port: 80,
                    host_port: Some(8080),
                    protocol: Protocol::Tcp,
                    host_ip: Some("127.0.0.1".into()),
                },
                PortMapping {
                    container_port: 80,
                    host_port: None,
                    ..Default::default()
                },
                PortMapping {
                    container_port: 53,
                    host_port: Some(0),
                    protocol: Protocol::Udp,
                    host_ip: None,
                },
            ],
            ..spec()
        };
        let body = build_create_body(&spec).unwrap();
        assert_eq!(body.exposed_ports.unwrap(), ["53/udp", "80/tcp"]);
        let bindings = body.host_config.unwrap().port_bindings.unwrap();
        let tcp = bindings["80/tcp"].as_ref().unwrap();
        assert_eq!(tcp.len(), 2);
        assert_eq!(tcp[0].host_port.as_deref(), Some("8080"));
        assert_eq!(tcp[0].host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(tcp[1].host_port.as_deref(), Some(""));
        let udp = bindings["53/udp"].as_ref().unwrap();
        assert_eq!(udp[0].host_port.as_deref(), Some(""));
    }

    #[test]
    fn host_and_none_modes_publish_nothing() {
        for mode in [
            NetworkMode::Host,
            NetworkMode::None,
            NetworkMode::Container("abc".into()),
        ] {
            let spec = ContainerSpec {
                network_mode: mode.clone(),
                port_mappings: vec![PortMapping {
                    container_port: 80,
                    host_port: Some(80),
                    ..Default::default()
                }],
                ..spec()
            };
            let body = build_create_body(&spec).unwrap();
            assert_eq!(body.exposed_ports, None);
            let host = body.host_config.unwrap();
            assert_eq!(host.port_bindings, None);
            assert_eq!(host.network_mode.unwrap(), mode.docker_value());
        }
        assert_eq!(
            NetworkMode::Container("abc".into()).docker_value(),
            "container:abc"
        );
        assert_eq!(
            NetworkMode::Named("backend".into()).docker_value(),
            "backend"
        );
    }

    #[test]
    fn a_zero_container_port_is_refused() {
        let spec = ContainerSpec {
            port_mappings: vec![PortMapping::default()],
            ..spec()
        };
        assert!(matches!(
            build_create_body(&spec),
            Err(RuntimeError::InvalidSpec(_))
        ));
    }

    #[test]
    fn resources_in_docker_units() {
        let spec = ContainerSpec {
            cpu_shares: Some(512),
            memory_mib: Some(256),
            memory_reservation_mib: Some(128),
            ulimits: vec![Ulimit {
                name: "nofile".into(),
                soft: 1024,
                hard: 4096,
            }],
            init: true,
            privileged: true,
            readonly_rootfs: true,
            ..spec()
        };
        let host = build_create_body(&spec).unwrap().host_config.unwrap();
        assert_eq!(host.cpu_shares, Some(512));
        assert_eq!(host.memory, Some(256 * 1024 * 1024));
        assert_eq!(host.memory_reservation, Some(128 * 1024 * 1024));
        let ulimit = &host.ulimits.unwrap()[0];
        assert_eq!(
            (ulimit.name.as_deref(), ulimit.soft, ulimit.hard),
            (Some("nofile"), Some(1024), Some(4096))
        );
        assert_eq!(host.init, Some(true));
        assert_eq!(host.privileged, Some(true));
        assert_eq!(host.readonly_rootfs, Some(true));
    }

    #[test]
    fn a_cpu_quota_becomes_cfs_quota_and_period() {
        let capped = ContainerSpec {
            cpu_quota: Some(crate::CpuQuota {
                quota_us: 50_000,
                period_us: 100_000,
            }),
            ..spec()
        };
        let host = build_create_body(&capped).unwrap().host_config.unwrap();
        assert_eq!(
            (host.cpu_quota, host.cpu_period),
            (Some(50_000), Some(100_000))
        );
        let none = build_create_body(&spec()).unwrap().host_config.unwrap();
        assert_eq!((none.cpu_quota, none.cpu_period), (None, None));
        let tiny = ContainerSpec {
            cpu_quota: Some(crate::CpuQuota {
                quota_us: 999,
                period_us: 100_000,
            }),
            ..spec()
        };
        assert!(matches!(
            build_create_body(&tiny),
            Err(RuntimeError::InvalidSpec(_))
        ));
    }

    #[test]
    fn stats_samples_are_read_from_dockers_document() {
        let sample: ContainerStatsResponse = serde_json::from_value(serde_json::json!({
            "read": "2024-05-01T10:00:00.5Z",
            "preread": "0001-01-01T00:00:00Z",
            "id": "abc",
            "cpu_stats": {"cpu_usage": {"total_usage": 2_000_000_000u64, "percpu_usage": [1, 2]},
                          "system_cpu_usage": 9_000_000_000u64, "online_cpus": 2},
            "memory_stats": {"usage": 10_485_760u64, "limit": 67_108_864u64,
                             "stats": {"cache": 2_097_152u64}},
        }))
        .unwrap();
        let stats = stats_from_docker(sample);
        assert_eq!(stats.cpu_total_ns, 2_000_000_000);
        assert_eq!(stats.system_cpu_ns, Some(9_000_000_000));
        assert_eq!(stats.online_cpus, Some(2));
        assert_eq!(stats.memory_used_bytes(), 8 << 20);
        assert_eq!(stats.memory_limit_bytes, Some(64 << 20));
        assert_eq!(stats.read.unix_timestamp(), 1_714_557_600);
        // The document keeps Docker's member names.
        assert_eq!(stats.document["cpu_stats"]["online_cpus"], 2);
        assert_eq!(stats.document["memory_stats"]["stats"]["cache"], 2_097_152);

        // cgroup v2 names the page cache inactive_file.
        let v2: ContainerStatsResponse = serde_json::from_value(serde_json::json!({
            "memory_stats": {"usage": 100u64, "stats": {"inactive_file": 40u64}},
        }))
        .unwrap();
        assert_eq!(stats_from_docker(v2).memory_used_bytes(), 60);
    }

    #[test]
    fn a_fixed_address_goes_on_the_named_networks_endpoint() {
        let body = build_create_body(&ContainerSpec {
            network_mode: NetworkMode::Named("berth-subnet-1".to_owned()),
            ipv4_address: Some("10.192.3.7".to_owned()),
            mac_address: Some("02:42:0a:c0:03:07".to_owned()),
            ..spec()
        })
        .unwrap();
        let json = serde_json_value(&body);
        assert_eq!(json["HostConfig"]["NetworkMode"], "berth-subnet-1");
        assert_eq!(
            json["NetworkingConfig"]["EndpointsConfig"]["berth-subnet-1"],
            serde_json::json!({
                "IPAMConfig": {"IPv4Address": "10.192.3.7"},
                "MacAddress": "02:42:0a:c0:03:07"
            })
        );
        // Elsewhere there is no endpoint to configure.
        let plain = serde_json_value(&build_create_body(&spec()).unwrap());
        assert!(plain.get("NetworkingConfig").is_none());
    }

    #[test]
    fn networks_are_bridges_with_their_subnet_and_gateway() {
        let wanted = NetworkSpec {
            name: "berth-subnet-1".to_owned(),
            subnet: "10.192.3.0/24".to_owned(),
            gateway: "10.192.3.1".to_owned(),
            labels: BTreeMap::from([("berth.subnet-id".to_owned(), "subnet-1".to_owned())]),
        };
        let request = serde_json::to_value(network_create_request(&wanted)).unwrap();
        assert_eq!(request["Name"], "berth-subnet-1");
        assert_eq!(request["Driver"], "bridge");
        assert_eq!(
            request["IPAM"]["Config"],
            serde_json::json!([{"Subnet": "10.192.3.0/24", "Gateway": "10.192.3.1"}])
        );
        let found = |subnet: &str| -> NetworkInspect {
            serde_json::from_value(serde_json::json!({
                "Name": "berth-subnet-1", "IPAM": {"Config": [{"Subnet": subnet}]}
            }))
            .unwrap()
        };
        assert!(check_network(&found("10.192.3.0/24"), &wanted).is_ok());
        assert!(matches!(
            check_network(&found("10.192.4.0/24"), &wanted),
            Err(RuntimeError::Conflict(_))
        ));
    }

    #[test]
    fn the_bridge_gateway_is_its_pools_gateway_or_first_address() {
        let network = |config: serde_json::Value| -> NetworkInspect {
            serde_json::from_value(
                serde_json::json!({"Name": "bridge", "IPAM": {"Config": config}}),
            )
            .unwrap()
        };
        assert_eq!(
            gateway_of(&network(serde_json::json!([{"Subnet": "172.17.0.0/16"}]))).as_deref(),
            Some("172.17.0.1")
        );
        assert_eq!(
            gateway_of(&network(serde_json::json!([
                {"Subnet": "10.9.8.0/24", "Gateway": "10.9.8.254"}
            ])))
            .as_deref(),
            Some("10.9.8.254")
        );
        // IPv6 pools are skipped for an IPv4 one.
        assert_eq!(
            gateway_of(&network(serde_json::json!([
                {"Subnet": "fd00::/64", "Gateway": "fd00::1"},
                {"Subnet": "192.168.5.0/24"}
            ])))
            .as_deref(),
            Some("192.168.5.1")
        );
        assert_eq!(gateway_of(&network(serde_json::json!([]))), None);
    }

    #[test]
    fn mounts_links_hosts_dns_and_logging() {
        let spec = ContainerSpec {
            mounts: vec![
                MountSpec::Bind {
                    host_path: "/srv/data".into(),
                    container_path: "/data".into(),
                    read_only: true,
                },
                MountSpec::Volume {
                    name: "cache".into(),
                    container_path: "/cache".into(),
                    read_only: false,
                },
            ],
            volumes_from: vec!["sidecar:ro".into()],
            links: vec!["db:database".into()],
            extra_hosts: vec![("registry.local".into(), "10.0.0.5".into())],
            dns_servers: vec!["10.0.0.2".into()],
            dns_search_domains: vec!["corp".into()],
            log_config: Some(LogConfig {
                driver: "json-file".into(),
                options: BTreeMap::from([("max-size".into(), "10m".into())]),
            }),
            ..spec()
        };
        let host = build_create_body(&spec).unwrap().host_config.unwrap();
        assert_eq!(host.binds.unwrap(), ["/srv/data:/data:ro", "cache:/cache"]);
        assert_eq!(host.volumes_from.unwrap(), ["sidecar:ro"]);
        assert_eq!(host.links.unwrap(), ["db:database"]);
        assert_eq!(host.extra_hosts.unwrap(), ["registry.local:10.0.0.5"]);
        assert_eq!(host.dns.unwrap(), ["10.0.0.2"]);
        assert_eq!(host.dns_search.unwrap(), ["corp"]);
        let log = host.log_config.unwrap();
        assert_eq!(log.typ.as_deref(), Some("json-file"));
        assert_eq!(log.config.unwrap()["max-size"], "10m");
    }

    #[test]
    fn a_mount_path_with_a_colon_is_refused() {
        let spec = ContainerSpec {
            mounts: vec![MountSpec::Bind {
                host_path: "/a:b".into(),
                container_path: "/data".into(),
                read_only: false,
            }],
            ..spec()
        };
        assert!(matches!(
            build_create_body(&spec),
            Err(RuntimeError::InvalidSpec(_))
        ));
    }

    #[test]
    fn health_checks_in_nanoseconds() {
        let good = ContainerSpec {
            health_check: Some(HealthCheck {
                command: vec!["CMD-SHELL".into(), "exit 0".into()],
                interval_secs: Some(5),
                timeout_secs: Some(2),
                retries: Some(3),
                start_period_secs: None,
            }),
            ..spec()
        };
        let check = build_create_body(&good).unwrap().healthcheck.unwrap();
        assert_eq!(check.test.unwrap(), ["CMD-SHELL", "exit 0"]);
        assert_eq!(check.interval, Some(5_000_000_000));
        assert_eq!(check.timeout, Some(2_000_000_000));
        assert_eq!(check.retries, Some(3));
        assert_eq!(check.start_period, None);

        let bad = ContainerSpec {
            health_check: Some(HealthCheck {
                command: vec!["curl".into(), "localhost".into()],
                ..Default::default()
            }),
            ..spec()
        };
        assert!(matches!(
            build_create_body(&bad),
            Err(RuntimeError::InvalidSpec(_))
        ));
    }

    #[test]
    fn the_create_body_serializes_as_docker_expects() {
        let spec = ContainerSpec {
            port_mappings: vec![PortMapping {
                container_port: 80,
                host_port: Some(8080),
                ..Default::default()
            }],
            ..spec()
        };
        let json = serde_json_value(&build_create_body(&spec).unwrap());
        assert_eq!(json["ExposedPorts"], serde_json::json!({"80/tcp": {}}));
        assert_eq!(
            json["HostConfig"]["PortBindings"],
            serde_json::json!({"80/tcp": [{"HostPort": "8080"}]})
        );
    }

    fn serde_json_value(body: &ContainerCreateBody) -> serde_json::Value {
        serde_json::to_value(body).unwrap()
    }

    fn inspect(status: ContainerStateStatusEnum) -> ContainerInspectResponse {
        ContainerInspectResponse {
            id: Some("abc".into()),
            name: Some("/web".into()),
            state: Some(DockerState {
                status: Some(status),
                exit_code: Some(143),
                started_at: Some("2024-05-01T10:00:00.123456789Z".into()),
                finished_at: Some("0001-01-01T00:00:00Z".into()),
                oom_killed: Some(false),
                health: Some(Health {
                    status: Some(HealthStatusEnum::HEALTHY),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            host_config: Some(HostConfig {
                network_mode: Some("bridge".into()),
                ..Default::default()
            }),
            network_settings: Some(NetworkSettings {
                ports: Some(HashMap::from([
                    (
                        "80/tcp".into(),
                        Some(vec![
                            DockerPortBinding {
                                host_ip: Some("0.0.0.0".into()),
                                host_port: Some("49153".into()),
                            },
                            DockerPortBinding {
                                host_ip: Some("::".into()),
                                host_port: Some("49153".into()),
                            },
                        ]),
                    ),
                    // Exposed by the image but not published.
                    ("443/tcp".into(), None),
                ])),
                networks: Some(HashMap::from([(
                    "bridge".into(),
                    EndpointSettings {
                        ip_address: Some("172.17.0.2".into()),
                        ..Default::default()
                    },
                )])),
                ..Default::default()
            }),
            config: Some(ContainerConfig {
                image: Some("app:v1".into()),
                env: Some(vec!["A=1".into()]),
                working_dir: Some("/srv".into()),
                user: Some("1000".into()),
                labels: Some(HashMap::from([("team".into(), "a".into())])),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn inspect_reads_state_ports_and_address() {
        let status = status_from_inspect(inspect(ContainerStateStatusEnum::RUNNING)).unwrap();
        assert_eq!(status.id.as_str(), "abc");
        assert_eq!(status.name, "web");
        assert_eq!(status.image, "app:v1");
        assert_eq!(status.state, ContainerState::Running);
        assert_eq!(status.exit_code, None, "no exit code while running");
        assert_eq!(
            status.started_at.unwrap().unix_timestamp(),
            1_714_557_600,
            "2024-05-01T10:00:00Z"
        );
        assert_eq!(status.finished_at, None, "year 1 means unset");
        assert_eq!(status.health, HealthStatus::Healthy);
        assert_eq!(
            status.port_bindings,
            [
                PortBinding {
                    container_port: 80,
                    protocol: Protocol::Tcp,
                    host_ip: "0.0.0.0".into(),
                    host_port: 49153
                },
                PortBinding {
                    container_port: 80,
                    protocol: Protocol::Tcp,
                    host_ip: "::".into(),
                    host_port: 49153
                },
            ]
        );
        assert_eq!(status.ip_address.as_deref(), Some("172.17.0.2"));
        assert_eq!(status.env, ["A=1"]);
        assert_eq!(status.working_dir, "/srv");
        assert_eq!(status.user, "1000");
        assert_eq!(status.labels["team"], "a");

        let exited = status_from_inspect(inspect(ContainerStateStatusEnum::EXITED)).unwrap();
        assert_eq!(exited.state, ContainerState::Exited);
        assert_eq!(exited.exit_code, Some(143));
    }

    #[test]
    fn a_finish_recorded_before_the_start_is_moved_to_the_start() {
        let mut response = inspect(ContainerStateStatusEnum::EXITED);
        let state = response.state.as_mut().unwrap();
        state.started_at = Some("2024-05-01T10:00:00.050Z".into());
        state.finished_at = Some("2024-05-01T10:00:00.020Z".into());
        let status = status_from_inspect(response).unwrap();
        assert_eq!(status.finished_at, status.started_at);
    }

    #[test]
    fn events_are_read_into_container_events() {
        let message = |action: &str, attributes: &[(&str, &str)]| EventMessage {
            action: Some(action.into()),
            actor: Some(EventActor {
                id: Some("abc".into()),
                attributes: Some(
                    attributes
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect(),
                ),
            }),
            ..Default::default()
        };
        let kind = |m: EventMessage| event_from_message(&m).map(|e| e.kind);
        assert_eq!(
            kind(message("start", &[])),
            Some(ContainerEventKind::Started)
        );
        assert_eq!(
            kind(message("die", &[("exitCode", "137"), ("name", "web")])),
            Some(ContainerEventKind::Died {
                exit_code: Some(137)
            })
        );
        assert_eq!(
            kind(message("health_status: unhealthy", &[])),
            Some(ContainerEventKind::Health(HealthStatus::Unhealthy))
        );
        assert_eq!(
            kind(message("health_status: healthy", &[])),
            Some(ContainerEventKind::Health(HealthStatus::Healthy))
        );
        assert_eq!(
            kind(message("oom", &[])),
            Some(ContainerEventKind::OomKilled)
        );
        assert_eq!(
            kind(message("destroy", &[])),
            Some(ContainerEventKind::Destroyed)
        );
        assert_eq!(kind(message("exec_start: sh", &[])), None);
    }

    #[test]
    fn events_are_asked_for_since_the_call() {
        let since = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_000_000_123).unwrap();
        let options = events_options(&[("berth.test", "1")], since);
        assert_eq!(options.since.as_deref(), Some("1700000000.000000123"));
        let filters = options.filters.unwrap();
        assert_eq!(filters["label"], ["berth.test=1"]);
        assert_eq!(filters["type"], ["container"]);
        assert!(filters["event"].contains(&"health_status".to_owned()));
    }

    #[test]
    fn log_entries_are_split_into_time_source_and_bytes() {
        let frame = log_frame(LogOutput::StdErr {
            message: bytes::Bytes::from_static(b"2024-05-01T12:00:00.123456789Z oops \n"),
        })
        .unwrap();
        assert_eq!(frame.source, LogSource::Stderr);
        assert_eq!(frame.bytes.as_ref(), b"oops \n");
        assert_eq!(
            frame.timestamp.unix_timestamp_nanos(),
            1_714_564_800_123_456_789
        );
        // A partial entry keeps its missing newline; a TTY line counts as stdout.
        let frame = log_frame(LogOutput::Console {
            message: bytes::Bytes::from_static(b"2024-05-01T12:00:00Z abc"),
        })
        .unwrap();
        assert_eq!(
            (frame.source, frame.bytes.as_ref()),
            (LogSource::Stdout, &b"abc"[..])
        );
        for junk in [
            &b"Error grabbing logs: gone\n"[..],
            b"",
            b"2024-05-01T12:00:00Z",
        ] {
            let output = LogOutput::StdOut {
                message: bytes::Bytes::copy_from_slice(junk),
            };
            assert_eq!(log_frame(output), None);
        }
    }

    #[test]
    fn logs_are_asked_for_with_timestamps_from_the_whole_second() {
        let since = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_900_000_000).unwrap();
        let options = logs_options(Some(since), true);
        assert_eq!(options.since, 1_700_000_000);
        assert!(options.follow && options.stdout && options.stderr && options.timestamps);
        assert_eq!(logs_options(None, false).since, 0);
    }

    #[test]
    fn stop_timeouts_round_up_to_whole_seconds() {
        assert_eq!(timeout_seconds(Duration::from_secs(30)), 30);
        assert_eq!(timeout_seconds(Duration::from_millis(1500)), 2);
        assert_eq!(timeout_seconds(Duration::ZERO), 0);
    }

    #[test]
    fn docker_host_defaults_to_the_standard_socket() {
        assert_eq!(docker_host(None), "unix:///var/run/docker.sock");
        assert_eq!(docker_host(Some("")), "unix:///var/run/docker.sock");
        assert_eq!(
            docker_host(Some("unix:///run/d.sock")),
            "unix:///run/d.sock"
        );
    }

    #[test]
    fn docker_errors_map_onto_runtime_errors() {
        let server = |status_code: u16, message: &str| BollardError::DockerResponseServerError {
            status_code,
            message: message.to_owned(),
        };
        assert!(matches!(
            map_error(server(404, "No such container")),
            RuntimeError::NotFound(_)
        ));
        assert!(matches!(
            map_error(server(409, "name in use")),
            RuntimeError::Conflict(_)
        ));
        assert!(matches!(
            map_error(server(400, "bad")),
            RuntimeError::InvalidSpec(_)
        ));
        assert!(matches!(
            map_error(server(
                500,
                "Bind for 0.0.0.0:80 failed: port is already allocated"
            )),
            RuntimeError::Conflict(_)
        ));
        assert!(matches!(
            map_error(server(500, "boom")),
            RuntimeError::Other(_)
        ));
        assert!(matches!(
            map_error(BollardError::SocketNotFoundError("/nope".into())),
            RuntimeError::Unavailable(_)
        ));
        assert!(matches!(
            map_error(BollardError::RequestTimeoutError),
            RuntimeError::Unavailable(_)
        ));
    }
}
