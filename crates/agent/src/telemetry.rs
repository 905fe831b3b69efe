//! The agent's side of the telemetry websocket (TCS), as the official agent runs it:
//! `telemetryEndpoint` from DiscoverPollEndpoint, a SigV4-signed GET upgrade to
//! `<telemetryEndpoint>/ws?<TcsQuery>`, then, every publish interval (20 s), a
//! `PublishMetricsRequest` with each running task's CPU and memory statistics and a
//! `PublishHealthRequest` with the health of every task that has health-checked containers;
//! a container's health changing publishes the health at once. At most ten tasks go in one
//! message, `fin` marks the last of a batch, `idle` an instance with no metrics to report.
//! The instance's own health (the container runtime check, see `instance_health`) goes out
//! as a `PublishInstanceStatusRequest` when a session opens, at once when its status
//! changes, and with every metrics publish. The server acknowledges each
//! (`AckPublishMetric`, `AckPublishHealth`, `AckPublishInstanceStatus`); a connection that
//! carries nothing for a minute or two is dropped and dialled again, like a broken one
//! (after a backoff). Frames are plain JSON, without the signed header block the official
//! agent writes before each (Berth's server takes both).

use berth_model::ecs::TaskStatus;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use berth_agent_protocol::Timestamp;
use berth_agent_protocol::tcs::{
    AGENT_HEARTBEAT_JITTER, AGENT_HEARTBEAT_TIMEOUT, AgentMessage, ContainerHealth, HealthMetadata,
    MetricsMetadata, PUBLISH_INTERVAL, PublishHealthRequest, PublishMetricsRequest, ServerMessage,
    TASKS_PER_MESSAGE, TaskHealth, TaskMetric, TcsQuery,
};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::backoff::Backoff;
use crate::client::{AwsClient, ClientError, VersionInfo};
use crate::engine::Engine;
use crate::instance_health;
use crate::session::{Refused, Socket, open_websocket};
use crate::stats::StatsCollector;

const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(120);
/// A connection that ends sooner than this is redialled after the backoff.
const SHORTEST_GOOD_SESSION: Duration = Duration::from_secs(5);
/// Health changes within this window go out in one message.
const HEALTH_COALESCE: Duration = Duration::from_millis(100);

pub struct TelemetryParams {
    pub client: Arc<AwsClient>,
    pub cluster: String,
    pub instance_arn: String,
    pub version: VersionInfo,
    pub engine: Engine,
    pub stats: StatsCollector,
    /// [`PUBLISH_INTERVAL`] but in tests.
    pub publish_interval: Duration,
}

impl TelemetryParams {
    pub fn new(
        client: Arc<AwsClient>,
        cluster: &str,
        instance_arn: &str,
        version: VersionInfo,
        engine: Engine,
        stats: StatsCollector,
    ) -> Self {
        TelemetryParams {
            client,
            cluster: cluster.to_owned(),
            instance_arn: instance_arn.to_owned(),
            version,
            engine,
            stats,
            publish_interval: PUBLISH_INTERVAL,
        }
    }
}

/// How one connection ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Ended {
    Shutdown,
    Reconnect(String),
    Failed(String),
}

/// Runs telemetry sessions one after another until `shutdown`.
pub async fn run(params: TelemetryParams, mut shutdown: watch::Receiver<bool>) {
    let mut backoff = Backoff::new(BACKOFF_MIN, BACKOFF_MAX).with_multiplier(1.5);
    loop {
        if *shutdown.borrow() {
            return;
        }
        let opened = tokio::time::Instant::now();
        let ended = match connect(&params).await {
            Ok(socket) => serve(&params, socket, &mut shutdown).await,
            Err(why) => Ended::Failed(why.to_string()),
        };
        // A session that lasted is a good connection; one closed at once counts as a failure,
        // so a server that keeps hanging up is not redialled in a tight loop.
        let ended = match ended {
            Ended::Reconnect(why) if opened.elapsed() < SHORTEST_GOOD_SESSION => Ended::Failed(why),
            Ended::Reconnect(why) => {
                backoff.reset();
                Ended::Reconnect(why)
            }
            other => other,
        };
        match ended {
            Ended::Shutdown => return,
            Ended::Reconnect(why) => tracing::info!(why, "telemetry session ended; reconnecting"),
            Ended::Failed(why) => {
                let delay = backoff.next_delay();
                tracing::warn!(
                    why,
                    ?delay,
                    "telemetry session failed; reconnecting after a pause"
                );
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.changed() => return,
                }
            }
        }
    }
}

/// Why a telemetry session could not be opened.
#[derive(Debug, thiserror::Error)]
enum TelemetryError {
    #[error("DiscoverPollEndpoint: {0}")]
    Discover(ClientError),
    #[error("DiscoverPollEndpoint named no telemetryEndpoint")]
    NoEndpoint,
    /// The websocket upgrade was refused or failed (the server's words).
    #[error("{0}")]
    Refused(String),
}

async fn connect(params: &TelemetryParams) -> Result<Socket, TelemetryError> {
    let endpoints = params
        .client
        .discover_poll_endpoint(&params.cluster, &params.instance_arn)
        .await
        .map_err(TelemetryError::Discover)?;
    let endpoint = endpoints
        .telemetry_endpoint
        .ok_or(TelemetryError::NoEndpoint)?;
    let docker_version = params
        .version
        .docker_version
        .trim_start_matches("DockerVersion:")
        .trim()
        .to_owned();
    let query = TcsQuery {
        agent_hash: Some(params.version.agent_hash.clone()),
        agent_version: Some(params.version.agent_version.clone()),
        cluster: params.cluster.clone(),
        container_instance: params.instance_arn.clone(),
        docker_version: Some(docker_version).filter(|v| !v.is_empty()),
    };
    let socket = open_websocket(&params.client, &query.url(&endpoint))
        .await
        .map_err(|refused| match refused {
            Refused::Inactive(message) | Refused::Failed(message) => {
                TelemetryError::Refused(message)
            }
        })?;
    tracing::info!(endpoint, "telemetry session open");
    Ok(socket)
}

fn idle_limit() -> Duration {
    AGENT_HEARTBEAT_TIMEOUT + AGENT_HEARTBEAT_JITTER.mul_f64(rand::random::<f64>())
}

/// Publishes on an open connection until it ends.
pub(crate) async fn serve(
    params: &TelemetryParams,
    socket: Socket,
    shutdown: &mut watch::Receiver<bool>,
) -> Ended {
    let (mut sink, mut stream) = socket.split();
    let mut health_changes = params.engine.health_changes();
    health_changes.borrow_and_update();
    let mut engine_alive = true;
    let mut runtime_health = params.engine.runtime_health();
    runtime_health.borrow_and_update();
    let mut checks_alive = true;
    let mut ticks = tokio::time::interval_at(
        tokio::time::Instant::now() + params.publish_interval,
        params.publish_interval,
    );
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let idle = tokio::time::sleep(idle_limit());
    tokio::pin!(idle);

    // What the control plane knew of health may be stale after a reconnect (or it may have
    // restarted and know nothing).
    let mut outgoing = vec![instance_status_frame(params)];
    outgoing.extend(health_frames(params));
    loop {
        for frame in outgoing.drain(..) {
            match tokio::time::timeout(WRITE_TIMEOUT, sink.send(Message::Text(frame.into()))).await
            {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Ended::Reconnect(format!("sending to TCS: {e}")),
                Err(_) => return Ended::Failed("sending to TCS timed out".to_owned()),
            }
        }
        tokio::select! {
            frame = stream.next() => {
                let text = match frame {
                    None => return Ended::Reconnect("connection closed".to_owned()),
                    Some(Err(e)) => return Ended::Reconnect(format!("connection lost: {e}")),
                    Some(Ok(Message::Close(_))) => return Ended::Reconnect("closed by TCS".to_owned()),
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(_)) => continue,
                };
                idle.as_mut().reset(tokio::time::Instant::now() + idle_limit());
                match ServerMessage::decode(&text) {
                    Ok(ServerMessage::StopTelemetrySession(_)) => {
                        return Ended::Reconnect("StopTelemetrySessionMessage".to_owned());
                    }
                    Ok(
                        message @ (ServerMessage::ServerException(_)
                        | ServerMessage::BadRequestException(_)
                        | ServerMessage::ResourceValidationException(_)
                        | ServerMessage::InvalidParameterException(_)),
                    ) => {
                        return Ended::Failed(format!("TCS sent {}: {message:?}", message.type_name()));
                    }
                    Ok(_) => {}
                    Err(e) => tracing::debug!(error = %e, "unreadable TCS frame ignored"),
                }
            }
            _ = ticks.tick() => {
                outgoing.extend(metrics_frames(params));
                outgoing.extend(health_frames(params));
                outgoing.push(instance_status_frame(params));
            }
            changed = runtime_health.changed(), if checks_alive => {
                if changed.is_err() {
                    checks_alive = false;
                    continue;
                }
                runtime_health.borrow_and_update();
                outgoing.push(instance_status_frame(params));
            }
            changed = health_changes.changed(), if engine_alive => {
                if changed.is_err() {
                    engine_alive = false;
                    continue;
                }
                tokio::time::sleep(HEALTH_COALESCE).await;
                health_changes.borrow_and_update();
                outgoing.extend(health_frames(params));
            }
            _ = &mut idle => {
                let _ = tokio::time::timeout(WRITE_TIMEOUT, sink.send(close("no frame from TCS"))).await;
                return Ended::Reconnect("no frame from TCS within the heartbeat timeout".to_owned());
            }
            _ = shutdown.changed() => {
                let _ = tokio::time::timeout(WRITE_TIMEOUT, sink.send(close("agent shutting down"))).await;
                return Ended::Shutdown;
            }
        }
    }
}

fn close(reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: reason.into(),
    }))
}

fn message_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

fn health_frames(params: &TelemetryParams) -> Vec<String> {
    health_messages(
        &params.cluster,
        &params.instance_arn,
        task_health(&params.engine),
    )
    .into_iter()
    .map(|m| AgentMessage::PublishHealth(m).encode())
    .collect()
}

fn instance_status_frame(params: &TelemetryParams) -> String {
    let health = params.engine.runtime_health().borrow().clone();
    AgentMessage::PublishInstanceStatus(instance_health::publish_request(
        &params.cluster,
        &params.instance_arn,
        &health,
    ))
    .encode()
}

fn metrics_frames(params: &TelemetryParams) -> Vec<String> {
    metrics_messages(
        &params.cluster,
        &params.instance_arn,
        params.stats.take_task_metrics(),
    )
    .into_iter()
    .map(|m| AgentMessage::PublishMetrics(m).encode())
    .collect()
}

/// The health of every task that is not stopped and has health-checked containers.
pub(crate) fn task_health(engine: &Engine) -> Vec<TaskHealth> {
    let state = engine.state().lock();
    state
        .tasks
        .iter()
        .filter(|(_, task)| task.known_status != TaskStatus::Stopped)
        .filter_map(|(arn, task)| {
            let containers: Vec<ContainerHealth> = task
                .containers
                .iter()
                .filter_map(|(name, container)| {
                    Some(ContainerHealth {
                        container_name: Some(name.clone()),
                        health_status: Some(container.health.clone()?),
                        status_since: container
                            .health_since
                            .map(|s| Timestamp::from_unix_millis((s * 1000.0) as i64)),
                        status_message: None,
                    })
                })
                .collect();
            (!containers.is_empty()).then(|| TaskHealth {
                task_arn: Some(arn.clone()),
                cluster_arn: task.task.task_cluster_arn.clone(),
                task_definition_family: task.task.family.clone(),
                task_definition_version: task.task.version.clone(),
                containers: Some(containers),
            })
        })
        .collect()
}

/// Health in messages of at most ten tasks; none when no task has health to report.
pub(crate) fn health_messages(
    cluster: &str,
    instance: &str,
    tasks: Vec<TaskHealth>,
) -> Vec<PublishHealthRequest> {
    let chunks: Vec<Vec<TaskHealth>> = tasks
        .chunks(TASKS_PER_MESSAGE)
        .map(<[TaskHealth]>::to_vec)
        .collect();
    let last = chunks.len().saturating_sub(1);
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, tasks)| PublishHealthRequest {
            metadata: Some(HealthMetadata {
                cluster: Some(cluster.to_owned()),
                container_instance: Some(instance.to_owned()),
                message_id: Some(message_id()),
                fin: Some(i == last),
            }),
            tasks: Some(tasks),
            timestamp: Some(Timestamp::from(SystemTime::now())),
        })
        .collect()
}

/// Metrics in messages of at most ten tasks; one `idle` message when there are none.
pub(crate) fn metrics_messages(
    cluster: &str,
    instance: &str,
    tasks: Vec<TaskMetric>,
) -> Vec<PublishMetricsRequest> {
    let idle = tasks.is_empty();
    let mut chunks: Vec<Vec<TaskMetric>> = tasks
        .chunks(TASKS_PER_MESSAGE)
        .map(<[TaskMetric]>::to_vec)
        .collect();
    if chunks.is_empty() {
        chunks.push(Vec::new());
    }
    let last = chunks.len() - 1;
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, tasks)| PublishMetricsRequest {
            metadata: Some(MetricsMetadata {
                cluster: Some(cluster.to_owned()),
                container_instance: Some(instance.to_owned()),
                message_id: Some(message_id()),
                idle: Some(idle),
                fin: Some(i == last),
            }),
            instance_metrics: None,
            task_metrics: Some(tasks),
            timestamp: Some(Timestamp::from(SystemTime::now())),
        })
        .collect()
}

#[cfg(test)]
mod tests;
