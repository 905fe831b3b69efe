//! `berth agent`: a container instance. It registers with the control plane (the host's
//! resources and ECS's attributes), keeps an ACS session open to receive its tasks, runs
//! them on a container runtime (Docker Engine; or, for scale tests only, a simulation), and
//! reports their state changes, all in ECS's own protocol, so that it and the official
//! Amazon ECS agent are interchangeable.
//!
//! Modules: `config` (flags, credentials, region), `client` (signed ECS/ECR JSON calls),
//! `registration` (resources and attributes), `installation` (whose Docker objects these
//! are), `session` (the ACS websocket), `engine/` (one supervisor per task; a file per
//! concern: supervisor, start, pull, network, volumes, logs, report, reporter, cleanup,
//! errors with every stopped reason), `translate` (ACS task → container specs), `infra` and
//! `warm` (awsvpc infra containers), `state` (the state file), `stats` (CPU and memory
//! samples of the containers), `telemetry` (the TCS websocket: metrics and health),
//! `instance_health` (the container runtime check ECS shows as the instance's
//! `healthStatus`), `metadata` (the task metadata endpoint v4; `metadata/endpoint` where it
//! listens), `awslogs/` (the awslogs log driver: options, cursor, api, assembly, batch,
//! shipper), `backoff` (every retry loop's). Each area has its own error enum, rolled up
//! into `AgentError`; no two files import each other.
//!
//! ## The awslogs log driver
//!
//! A container whose `logConfiguration` names `awslogs` is not given Docker's own awslogs
//! driver (it would call real AWS): it is created with `json-file` (at most 5 files of
//! 100 MB), and the agent ships its stdout and stderr to the control plane's CloudWatch Logs
//! API itself, at the `--endpoint`, signed with the agent's credentials for service `logs`
//! in the `awslogs-region` (default: the instance's region).
//!
//! - `awslogs-group` (required); `awslogs-stream-prefix`, giving ECS's stream name
//!   `prefix/container-name/task-id` (without a prefix: `awslogs-stream`, else the Docker
//!   container id, as Docker names it); `awslogs-create-group`. The group (when asked) and
//!   the stream are made before the container starts; a missing group stops the task with
//!   ECS's `CannotStartContainerError: … failed to create Cloudwatch log stream:
//!   ResourceNotFoundException: The specified log group does not exist.`
//! - `awslogs-multiline-pattern` or `awslogs-datetime-format` (strftime turned into a regex
//!   as Docker does; not both): a matching line starts an event, others are appended with
//!   `\n`; an event nothing was added to for a second is sent. Unlike Docker, stdout and
//!   stderr are assembled apart. Lines Docker split at 16 KiB are joined back; events over
//!   CloudWatch's 1 MiB are split. Timestamps are Docker's, to the millisecond.
//! - `mode`: `blocking` (default) never drops anything: when the shipper's buffer
//!   (`max-buffer-size`, default 1m) is full it stops reading Docker's log, which keeps the
//!   rest on disk. **Unlike ECS, the container itself never blocks on logging.**
//!   `non-blocking` drops the oldest events when the buffer is full (a warning says how
//!   many).
//! - Batches follow PutLogEvents' limits (10,000 events, 1 MiB counting 26 bytes per event,
//!   24 hours) and leave within 200 ms (Docker waits 5 s), so `aws logs tail --follow` shows
//!   a line within a second. Accepted and ignored: `awslogs-endpoint`,
//!   `awslogs-credentials-endpoint`, `awslogs-force-flush-interval-seconds`, `tag`, …
//!
//! Delivery is exactly once across agent and control-plane restarts: each put carries a
//! cursor (Berth's `berthShipperCursor`) stored with its events in one write, from which a
//! restarted shipper resumes Docker's log. A stopped task is cleaned up only once its logs
//! are delivered, or after 30 s without progress (the rest is lost, with a warning).
//!
//! The Docker daemon going away after start is ridden out: the runtime check reports it
//! (IMPAIRED), the ACS and telemetry sessions and the task supervisors carry on, and when
//! Docker answers again the engine resubscribes to its events and re-inspects every task's
//! containers, reporting what happened meanwhile.

pub mod awslogs;
mod backoff;
pub mod client;
pub mod config;
pub mod credentials;
pub mod engine;
pub mod firewall;
pub mod infra;
pub mod installation;
pub mod instance_health;
pub mod metadata;
pub mod registration;
pub mod session;
pub mod state;
pub mod stats;
pub mod telemetry;
#[cfg(test)]
mod testing;
pub mod translate;
pub mod warm;

use std::sync::Arc;
use std::time::Duration;

use berth_model::InstallationId;
use berth_runtime::{
    ContainerRuntime, DockerRuntime, RuntimeError, SimulatedRuntime, SimulationConfig,
};
use tokio::sync::watch;

use crate::backoff::Backoff;
use crate::client::{AwsClient, ClientError, RegisterContainerInstanceRequest};
use crate::config::{AgentConfig, ConfigError, RuntimeChoice};
use crate::engine::{Engine, EngineConfig};
use crate::state::{AgentState, SharedState, StateError};

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(
        "configuration: the data dir {} belongs to an instance of cluster {saved:?}, not \
         {configured:?}; use another --data-dir",
        .data_dir.display()
    )]
    OtherCluster {
        data_dir: std::path::PathBuf,
        saved: String,
        configured: String,
    },
    /// The control plane's endpoint is not one the client can use.
    #[error("configuration: {0}")]
    Endpoint(ClientError),
    #[error("configuration: task metadata endpoint: {0}")]
    MetadataEndpoint(std::io::Error),
    #[error("configuration: task metadata endpoint on port {port}: {source}")]
    MetadataPort { port: u16, source: std::io::Error },
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("registering the container instance: {0}")]
    Registration(ClientError),
    #[error(transparent)]
    Session(#[from] session::SessionError),
}

/// Runs the agent until `shutdown` turns true (tasks' containers are left running, as the
/// official agent leaves them, and picked up again by the next start) or the control plane
/// reports the instance deregistered.
pub async fn run(
    config: AgentConfig,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), AgentError> {
    let runtime: Arc<dyn ContainerRuntime> = match config.runtime {
        RuntimeChoice::Docker => match connect_docker(&mut shutdown).await? {
            Some(docker) => Arc::new(docker),
            None => return Ok(()),
        },
        RuntimeChoice::Simulated => {
            tracing::warn!(
                "SIMULATED runtime: no containers run; life cycles are acted out in memory (for scale tests only)"
            );
            Arc::new(SimulatedRuntime::new(SimulationConfig::default()))
        }
    };
    std::fs::create_dir_all(&config.data_dir).map_err(|source| StateError::CreateDir {
        path: config.data_dir.clone(),
        source,
    })?;
    let mut saved = AgentState::load(&config.data_dir)?;
    if !saved.cluster.is_empty() && saved.cluster != config.cluster {
        return Err(AgentError::OtherCluster {
            data_dir: config.data_dir.clone(),
            saved: saved.cluster,
            configured: config.cluster.clone(),
        });
    }
    saved.cluster = config.cluster.clone();

    let host = runtime.info().await?;
    let client = Arc::new(
        AwsClient::new(&config.endpoint, config.credentials.clone(), &config.region)
            .map_err(AgentError::Endpoint)?,
    );
    let Some((instance_arn, announced)) = register(
        &client,
        &config,
        &host,
        saved.container_instance_arn.clone(),
        &mut shutdown,
    )
    .await?
    else {
        return Ok(());
    };
    let installation = installation::settle(&config, announced)?;
    saved.container_instance_arn = Some(instance_arn.clone());
    let state = SharedState::new(saved, Some(config.data_dir.clone()));
    state.flush().await?;

    // Everything below stops on the caller's shutdown or when the session gives up.
    let (stop, stopped) = watch::channel(false);
    let saver = tokio::spawn(state.clone().run_saver(stopped.clone()));
    let mut metadata = match config.metadata_port {
        Some(port) => Some(bind_metadata_endpoint(&*runtime, &state, port).await?),
        None => None,
    };
    // 169.254.170.2, as ECS: the NAT rules and this agent's share of the host's router.
    let mut link_local = None;
    if let Some((endpoint, _)) = metadata.as_mut()
        && config.link_local
    {
        let bridge = endpoint.bridge_host.as_deref().and_then(|h| h.parse().ok());
        if let Some(link) =
            metadata::link_local::setup(bridge, endpoint.port, stopped.clone()).await
        {
            endpoint.link_local = true;
            link_local = Some(link);
        }
    }
    // awsvpc tasks reach the endpoint on their subnet's gateway: listeners added as needed.
    let (listen_requests, listen_receiver) = metadata::endpoint::ListenRequests::new();
    let engine_config = EngineConfig {
        metadata_listen: metadata.is_some().then(|| listen_requests.clone()),
        image_pull_behavior: config.image_pull_behavior,
        cleanup_delay: config.cleanup_delay,
        efs_root: Some(
            config
                .efs_root
                .clone()
                .unwrap_or_else(|| config.data_dir.join("efs")),
        ),
        metadata: metadata.as_ref().map(|(endpoint, _)| endpoint.clone()),
        warm_infra: config.warm_infra,
        warm_infra_early: config.warm_infra_early,
        max_stopped_tasks: config.max_stopped_tasks,
        ..EngineConfig::new(&config.cluster, &instance_arn, &installation)
    };
    let engine = Engine::start(
        engine_config,
        runtime,
        client.clone(),
        state.clone(),
        stopped.clone(),
    )
    .await?;
    let collector = stats::StatsCollector::new(engine.clone(), host.cpus);
    let mut background = vec![tokio::spawn(
        collector
            .clone()
            .run(stats::SAMPLE_INTERVAL, stopped.clone()),
    )];
    if let Some((endpoint, listeners)) = metadata {
        let service = Arc::new(metadata::MetadataService {
            engine: engine.clone(),
            stats: collector.clone(),
            availability_zone: config.availability_zone.clone(),
            router_key: link_local.as_ref().map(|l| l.key.clone()),
        });
        let app = metadata::app(service);
        if let Some(link) = &link_local {
            let _ = link.own.app.set(app.clone());
        }
        tracing::info!(
            port = endpoint.port,
            bridge = ?endpoint.bridge_host,
            "task metadata endpoint (v4) listening"
        );
        background.push(tokio::spawn(metadata::endpoint::serve_growing(
            listeners,
            endpoint.port,
            listen_receiver,
            app,
            stopped.clone(),
        )));
    }
    let version = registration::version_info(&host);
    background.push(tokio::spawn(telemetry::run(
        telemetry::TelemetryParams::new(
            client.clone(),
            &config.cluster,
            &instance_arn,
            version.clone(),
            engine.clone(),
            collector,
        ),
        stopped.clone(),
    )));
    let warm = engine.clone();
    let params = session::AcsParams {
        client: client.clone(),
        cluster: config.cluster.clone(),
        instance_arn,
        version,
        engine,
    };
    let result = tokio::select! {
        result = session::run(params, stopped.clone()) => result.map_err(AgentError::from),
        _ = shutdown.changed() => Ok(()),
    };
    stop.send_replace(true);
    for task in background {
        let _ = task.await;
    }
    warm.remove_warm().await;
    warm.remove_idle_networks().await;
    let _ = saver.await;
    result
}

/// Connects to Docker, waiting (with backoff, saying so) while the daemon is not there yet,
/// as an agent started with its host must; `None` on shutdown.
async fn connect_docker(
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Option<DockerRuntime>, AgentError> {
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
    loop {
        let error = match DockerRuntime::connect().await {
            Ok(docker) => match docker.info().await {
                Ok(_) => return Ok(Some(docker)),
                Err(e) => e,
            },
            Err(e) => e,
        };
        if !matches!(error, berth_runtime::RuntimeError::Unavailable(_)) {
            return Err(error.into());
        }
        tracing::warn!(error = %error, "Docker is not reachable yet; waiting for it");
        tokio::select! {
            _ = tokio::time::sleep(backoff.next_delay()) => {}
            _ = shutdown.changed() => return Ok(None),
        }
    }
}

/// Binds the task metadata endpoint on 127.0.0.1 and the host's address on the runtime's
/// bridge, on the port the state file remembers (its containers' URIs name it), else on
/// `port` (0: any free one), which the state file then keeps.
async fn bind_metadata_endpoint(
    runtime: &dyn ContainerRuntime,
    state: &SharedState,
    port: u16,
) -> Result<
    (
        metadata::endpoint::MetadataEndpoint,
        Vec<tokio::net::TcpListener>,
    ),
    AgentError,
> {
    let bridge_host = match runtime.bridge_gateway().await {
        Ok(host) => host,
        Err(e) => {
            tracing::warn!(error = %e, "no bridge address; bridge-mode containers get no metadata endpoint");
            None
        }
    };
    let remembered = state.lock().metadata_port;
    let wanted = remembered.filter(|_| port == 0).unwrap_or(port);
    let mut endpoint = metadata::endpoint::MetadataEndpoint {
        bridge_host,
        port: wanted,
        link_local: false,
    };
    let bound = match metadata::endpoint::bind(&endpoint.listen_addresses(), wanted).await {
        Ok(bound) => Ok(bound),
        // Not our own bridge (Docker elsewhere, rootless): bridge containers cannot reach us.
        Err(e)
            if endpoint.bridge_host.is_some()
                && e.kind() == std::io::ErrorKind::AddrNotAvailable =>
        {
            tracing::warn!(bridge = ?endpoint.bridge_host, "the bridge address is not this host's; bridge-mode containers get no metadata endpoint");
            endpoint.bridge_host = None;
            metadata::endpoint::bind(&endpoint.listen_addresses(), wanted).await
        }
        Err(e) => Err(e),
    };
    let (listeners, bound_port) = match bound {
        Ok(bound) => bound,
        Err(e) if remembered.is_some() && port == 0 => {
            tracing::warn!(port = wanted, error = %e, "the metadata endpoint's port is taken; running containers lose their endpoint");
            metadata::endpoint::bind(&endpoint.listen_addresses(), 0)
                .await
                .map_err(AgentError::MetadataEndpoint)?
        }
        Err(source) => {
            return Err(AgentError::MetadataPort {
                port: wanted,
                source,
            });
        }
    };
    endpoint.port = bound_port;
    state.update(|s| s.metadata_port = Some(bound_port));
    Ok((endpoint, listeners))
}

/// RegisterContainerInstance, retried while the control plane is unreachable; `None` if
/// shut down first. A known ARN re-registers the same instance.
async fn register(
    client: &AwsClient,
    config: &AgentConfig,
    host: &berth_runtime::HostInfo,
    known_arn: Option<String>,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Option<(String, Option<InstallationId>)>, AgentError> {
    let mut extra_ports = Vec::new();
    if let Some(port) = registration::control_plane_port_on_this_host(&client.endpoint()).await {
        extra_ports.push(port);
    }
    let request = RegisterContainerInstanceRequest {
        cluster: config.cluster.clone(),
        container_instance_arn: known_arn.clone(),
        total_resources: registration::resources(host, config.memory_reservation_mib, &extra_ports),
        version_info: registration::version_info(host),
        attributes: registration::attributes(config, host),
        instance_identity_document: registration::identity_document(config),
    };
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
    loop {
        match client.register_container_instance(&request).await {
            Ok(registered) => {
                let missing: Vec<&str> = request
                    .attributes
                    .iter()
                    .filter(|a| !registered.attributes.contains(a))
                    .map(|a| a.name.as_str())
                    .collect();
                if !missing.is_empty() {
                    tracing::warn!(
                        ?missing,
                        "the control plane did not echo every registered attribute"
                    );
                }
                tracing::info!(
                    instance = %registered.arn,
                    cluster = %config.cluster,
                    reregistered = known_arn.is_some(),
                    "registered container instance"
                );
                return Ok(Some((registered.arn, registered.installation)));
            }
            Err(e) if e.is_retryable() => {
                let delay = backoff.next_delay();
                tracing::warn!(error = %e, ?delay, "cannot register yet; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.changed() => return Ok(None),
                }
            }
            Err(e) => return Err(AgentError::Registration(e)),
        }
    }
}
