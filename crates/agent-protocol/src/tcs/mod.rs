//! TCS, the telemetry websocket: the agent publishes task and container metrics, container
//! health and instance status; the server acknowledges and sends heartbeats. Shapes from
//! `ecs-agent/tcs/model/api/api-2.json`, plus the members the agent's generated
//! `ecs-agent/tcs/model/ecstcs/api.go` has beyond the model revision we could read
//! (`generalMetricsPayload`, `GeneralMetric`'s single-value members, `statusReason`).
//!
//! The session (`ecs-agent/tcs/handler/handler.go`, `ecs-agent/tcs/client/client.go`):
//! - The agent takes `telemetryEndpoint` from ECS `DiscoverPollEndpoint` and dials
//!   `<telemetryEndpoint>/ws?<query>` ([`TcsQuery`]) with a SigV4-signed GET, as for ACS.
//! - **Every frame the agent sends is signed**: before the JSON it writes the headers of a
//!   SigV4-signed `GET` of the websocket URL whose payload hash is the SHA-256 of the JSON
//!   (`Authorization`, `Host`, `X-Amz-Date`, `X-Amz-Security-Token` for temporary
//!   credentials), one `Name: value\r\n` each, then `\r\n`, then the JSON ([`SignedFrame`]).
//!   [`AgentMessage::decode`] accepts frames with or without that block.
//! - Metrics go out every [`PUBLISH_INTERVAL`] in messages of at most [`TASKS_PER_MESSAGE`]
//!   tasks and [`MAX_MESSAGE_BYTES`]; instance metrics ride only in the first message;
//!   `metadata.fin` marks the last message of a batch, `metadata.idle` an instance with no
//!   tasks. Health goes out in messages of at most ten tasks.
//! - Each [`HeartbeatMessage`] and each ack resets the agent's idle timer; after
//!   [`AGENT_HEARTBEAT_TIMEOUT`] plus up to [`AGENT_HEARTBEAT_JITTER`] without one it
//!   disconnects and reconnects (the values `agent/stats/reporter/reporter.go` passes).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::frame::{frame_enum, shape, ws_url};
use crate::{AcsError, ExceptionMessage, Timestamp};

/// How often the agent publishes metrics (`DefaultContainerMetricsPublishInterval`).
pub const PUBLISH_INTERVAL: Duration = Duration::from_secs(20);
/// At most this many tasks per metrics or health message.
pub const TASKS_PER_MESSAGE: usize = 10;
/// The agent splits metrics messages to stay under this many bytes.
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;
/// The agent drops a telemetry connection that has carried no heartbeat or ack for this long
/// plus [`AGENT_HEARTBEAT_JITTER`].
pub const AGENT_HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(60);
/// Up to this much random time is added to [`AGENT_HEARTBEAT_TIMEOUT`].
pub const AGENT_HEARTBEAT_JITTER: Duration = Duration::from_secs(60);

frame_enum! {
    /// What the server sends the agent over TCS. The agent answers none of them; each resets
    /// its idle timer.
    pub enum ServerMessage (lenient = false, body = crate::frame::whole_text) {
        /// Keeps the connection alive.
        Heartbeat(HeartbeatMessage) = "HeartbeatMessage",
        /// Acknowledges a [`PublishMetricsRequest`].
        AckPublishMetric(AckPublishMetric) = "AckPublishMetric",
        /// Acknowledges a [`PublishHealthRequest`].
        AckPublishHealth(AckPublishHealth) = "AckPublishHealth",
        /// Acknowledges a [`PublishInstanceStatusRequest`].
        AckPublishInstanceStatus(AckPublishInstanceStatus) = "AckPublishInstanceStatus",
        /// Ends the session (the model's `StartTelemetrySession` output).
        StopTelemetrySession(StopTelemetrySessionMessage) = "StopTelemetrySessionMessage",
        ServerException(ExceptionMessage) = "ServerException",
        BadRequestException(ExceptionMessage) = "BadRequestException",
        ResourceValidationException(ExceptionMessage) = "ResourceValidationException",
        InvalidParameterException(ExceptionMessage) = "InvalidParameterException",
    }
}

frame_enum! {
    /// What the agent sends over TCS. Decoding is lenient about member case, about the
    /// signed-header block ([`SignedFrame`]) and accepts the type names agents built on the
    /// AWS SDK for Go v2 use (`PublishMetricsInput`, …); encoding uses the model's names and
    /// no header block ([`SignedFrame::render`] adds one).
    pub enum AgentMessage (lenient = true, body = signed_body) {
        /// Task and instance metrics. Reply: [`AckPublishMetric`].
        PublishMetrics(PublishMetricsRequest) = "PublishMetricsRequest" | "PublishMetricsInput",
        /// Container health. Reply: [`AckPublishHealth`].
        PublishHealth(PublishHealthRequest) = "PublishHealthRequest" | "PublishHealthInput",
        /// Instance health checks (Docker reachable, …). Reply: [`AckPublishInstanceStatus`].
        PublishInstanceStatus(PublishInstanceStatusRequest) = "PublishInstanceStatusRequest" | "PublishInstanceStatusInput",
        /// The model's session opener; current agents use the URL query instead.
        StartTelemetrySession(StartTelemetrySessionRequest) = "StartTelemetrySessionRequest" | "StartTelemetrySessionInput",
    }
}

impl AgentMessage {
    /// Reads a frame and also returns it split ([`SignedFrame`]: headers, empty if none, and
    /// the JSON), for a server that verifies each frame's signature over its body.
    pub fn decode_signed(text: &str) -> Result<(SignedFrame<'_>, Self), AcsError> {
        let frame = SignedFrame::parse(text)?;
        let message = Self::decode(frame.body)?;
        Ok((frame, message))
    }
}

/// The JSON of an agent frame, past its signed-header block if it has one.
fn signed_body(text: &str) -> Result<&str, AcsError> {
    Ok(SignedFrame::parse(text)?.body)
}

/// An agent frame split into the signed HTTP headers the agent writes before the JSON
/// (`signRequestFunc` in `ecs-agent/tcs/client/client.go`) and the JSON itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedFrame<'a> {
    /// Header names and values as written (Go writes them sorted by name).
    pub headers: Vec<(&'a str, &'a str)>,
    pub body: &'a str,
}

impl<'a> SignedFrame<'a> {
    /// Splits a frame. One that starts with `{` has no header block.
    pub fn parse(text: &'a str) -> Result<Self, AcsError> {
        if text.trim_start().starts_with('{') {
            return Ok(Self {
                headers: Vec::new(),
                body: text,
            });
        }
        let (block, body) = text
            .split_once("\r\n\r\n")
            .or_else(|| text.split_once("\n\n"))
            .ok_or(AcsError::SignedFrame("no blank line after the headers"))?;
        let headers = block
            .lines()
            .map(|line| {
                let (name, value) = line
                    .split_once(':')
                    .ok_or(AcsError::SignedFrame("a header line without ':'"))?;
                Ok((name.trim(), value.trim()))
            })
            .collect::<Result<_, AcsError>>()?;
        Ok(Self { headers, body })
    }

    /// The frame text: each header as `Name: value\r\n`, a blank line, the body.
    pub fn render(headers: &[(&str, &str)], body: &str) -> String {
        let mut text = String::new();
        for (name, value) in headers {
            text.push_str(name);
            text.push_str(": ");
            text.push_str(value);
            text.push_str("\r\n");
        }
        text.push_str("\r\n");
        text.push_str(body);
        text
    }
}

/// The query of the telemetry websocket URL (`formatURL` in
/// `ecs-agent/tcs/handler/handler.go`), members in the order Go sorts them. Unlike ACS,
/// `dockerVersion` is the bare version and is present only for Docker.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TcsQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_version: Option<String>,
    /// The agent's configured cluster, usually a name.
    pub cluster: String,
    pub container_instance: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_version: Option<String>,
}

impl TcsQuery {
    /// Reads a query string (without the `?`).
    pub fn parse(query: &str) -> Result<Self, AcsError> {
        serde_urlencoded::from_str(query).map_err(AcsError::Query)
    }

    /// The query string, without the `?`.
    pub fn encode(&self) -> String {
        serde_urlencoded::to_string(self).expect("a flat struct of strings")
    }

    /// The websocket URL for a `telemetryEndpoint`.
    pub fn url(&self, endpoint: &str) -> String {
        ws_url(endpoint, &self.encode())
    }
}

shape! {
    /// Server → agent: keeps the telemetry connection alive. No reply.
    pub struct HeartbeatMessage {
        healthy: bool,
    }
}

shape! {
    /// Server → agent: acknowledges a [`PublishMetricsRequest`].
    pub struct AckPublishMetric {
        message: String,
    }
}

shape! {
    /// Server → agent: acknowledges a [`PublishHealthRequest`].
    pub struct AckPublishHealth {
        message: String,
    }
}

shape! {
    /// Server → agent: acknowledges a [`PublishInstanceStatusRequest`].
    pub struct AckPublishInstanceStatus {
        message: String,
    }
}

shape! {
    /// Server → agent: the telemetry session is over; the agent reconnects.
    pub struct StopTelemetrySessionMessage {
        message: String,
    }
}

shape! {
    /// Agent → server (model only): opens a telemetry session.
    pub struct StartTelemetrySessionRequest {
        cluster: String,
        container_instance: String,
    }
}

shape! {
    /// Agent → server, every [`PUBLISH_INTERVAL`]: metrics of up to [`TASKS_PER_MESSAGE`]
    /// tasks. Server's reply: [`AckPublishMetric`].
    pub struct PublishMetricsRequest {
        metadata: MetricsMetadata,
        instance_metrics: InstanceMetrics,
        task_metrics: Vec<TaskMetric>,
        timestamp: Timestamp,
    }
}

shape! {
    /// Who sends a metrics message and where it sits in its batch: `fin` on the last message,
    /// `idle` when the instance runs no tasks.
    pub struct MetricsMetadata {
        cluster: String,
        container_instance: String,
        message_id: String,
        idle: bool,
        fin: bool,
    }
}

shape! {
    /// Instance-wide metrics (first message of a batch only).
    pub struct InstanceMetrics {
        storage: InstanceStorageMetrics,
        general_metrics_payload: Vec<GeneralMetricsWrapper>,
    }
}

/// Disk use of the instance, in percent. The model names the members `OSFilesystem` and
/// `DataFilesystem`; the agent's newer generated types call the first `rootFilesystem`, so
/// decoding accepts either.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InstanceStorageMetrics {
    #[serde(
        rename = "OSFilesystem",
        alias = "oSFilesystem",
        alias = "rootFilesystem",
        skip_serializing_if = "Option::is_none"
    )]
    pub os_filesystem: Option<f64>,
    #[serde(
        rename = "DataFilesystem",
        alias = "dataFilesystem",
        skip_serializing_if = "Option::is_none"
    )]
    pub data_filesystem: Option<f64>,
}

shape! {
    /// One task's metrics.
    pub struct TaskMetric {
        task_arn: String,
        cluster_arn: String,
        task_definition_family: String,
        task_definition_version: String,
        container_metrics: Vec<ContainerMetric>,
        ephemeral_storage_metrics: EphemeralStorageMetrics,
        volume_metrics: Vec<VolumeMetric>,
        service_connect_metrics_wrapper: Vec<GeneralMetricsWrapper>,
    }
}

shape! {
    /// One container's metrics over the publish interval: statistics of its CPU and memory
    /// samples, network and block I/O counters, restarts.
    pub struct ContainerMetric {
        container_arn: String,
        container_name: String,
        cpu_stats_set: CWStatsSet,
        memory_stats_set: CWStatsSet,
        network_stats_set: NetworkStatsSet,
        storage_stats_set: StorageStatsSet,
        restart_stats_set: RestartStatsSet,
        general_metrics_payload: Vec<GeneralMetricsWrapper>,
    }
}

shape! {
    /// CloudWatch-style statistics of a series of samples.
    pub struct CWStatsSet {
        min: f64,
        max: f64,
        sample_count: u64,
        sum: f64,
    }
}

/// Statistics of non-negative samples; the model requires every member.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UDoubleCWStatsSet {
    pub min: f64,
    pub max: f64,
    pub sample_count: u64,
    pub sum: f64,
}

/// Statistics of counters; the model requires `min`, `max`, `sampleCount` and `sum`, and the
/// `overflow*` members carry what did not fit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ULongStatsSet {
    pub min: u64,
    pub max: u64,
    pub sample_count: u64,
    pub sum: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overflow_min: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overflow_max: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overflow_sum: Option<u64>,
}

shape! {
    /// Network counters of a container.
    pub struct NetworkStatsSet {
        rx_bytes_per_second: UDoubleCWStatsSet,
        rx_bytes: ULongStatsSet,
        rx_dropped: ULongStatsSet,
        rx_errors: ULongStatsSet,
        rx_packets: ULongStatsSet,
        tx_bytes_per_second: UDoubleCWStatsSet,
        tx_bytes: ULongStatsSet,
        tx_dropped: ULongStatsSet,
        tx_errors: ULongStatsSet,
        tx_packets: ULongStatsSet,
    }
}

shape! {
    /// Block I/O of a container, in bytes.
    pub struct StorageStatsSet {
        read_size_bytes: ULongStatsSet,
        write_size_bytes: ULongStatsSet,
    }
}

shape! {
    /// How often a container was restarted by its restart policy.
    pub struct RestartStatsSet {
        restart_count: u64,
    }
}

shape! {
    /// Ephemeral storage use of a task, in bytes.
    pub struct EphemeralStorageMetrics {
        bytes_utilized: ULongStatsSet,
    }
}

shape! {
    /// Use and size of a task volume.
    pub struct VolumeMetric {
        volume_id: String,
        volume_name: String,
        utilized: UDoubleCWStatsSet,
        size: UDoubleCWStatsSet,
    }
}

shape! {
    /// A group of general (e.g. Service Connect) metrics sharing dimensions; `metricType` is
    /// `"1"` or `"2"`.
    pub struct GeneralMetricsWrapper {
        dimensions: Vec<Dimension>,
        metric_type: String,
        general_metrics: Vec<GeneralMetric>,
    }
}

shape! {
    /// A metric dimension.
    pub struct Dimension {
        key: String,
        value: String,
    }
}

shape! {
    /// One general metric: a histogram (`metricValues` with `metricCounts`) or, in newer
    /// agents, a single value or statistics set with a `unit`.
    pub struct GeneralMetric {
        metric_name: String,
        metric_values: Vec<f64>,
        metric_counts: Vec<i64>,
        metric_value_double: f64,
        metric_value_long: i64,
        metric_value_stats_set: CWStatsSet,
        unit: String,
    }
}

shape! {
    /// Agent → server: container health of up to ten tasks. Server's reply:
    /// [`AckPublishHealth`].
    pub struct PublishHealthRequest {
        metadata: HealthMetadata,
        tasks: Vec<TaskHealth>,
        timestamp: Timestamp,
    }
}

shape! {
    /// Who sends a health message; `fin` marks the last of a batch.
    pub struct HealthMetadata {
        cluster: String,
        container_instance: String,
        message_id: String,
        fin: bool,
    }
}

shape! {
    /// Health of one task's containers.
    pub struct TaskHealth {
        task_arn: String,
        cluster_arn: String,
        task_definition_family: String,
        task_definition_version: String,
        containers: Vec<ContainerHealth>,
    }
}

shape! {
    /// One container's health: `healthStatus` is `HEALTHY`, `UNHEALTHY` or `UNKNOWN`.
    pub struct ContainerHealth {
        container_name: String,
        health_status: String,
        status_since: Timestamp,
        status_message: String,
    }
}

shape! {
    /// Agent → server: results of the instance's health checks. The official agent runs them
    /// on each ACS heartbeat and sends the results with its next metrics publish; ECS shows
    /// them as the container instance's `healthStatus`. Server's reply:
    /// [`AckPublishInstanceStatus`].
    pub struct PublishInstanceStatusRequest {
        metadata: InstanceStatusMetadata,
        statuses: Vec<InstanceStatus>,
        timestamp: Timestamp,
    }
}

shape! {
    /// Who sends an instance status message.
    pub struct InstanceStatusMetadata {
        cluster: String,
        container_instance: String,
        request_id: String,
    }
}

/// `InstanceStatus.type` of the container runtime check: does Docker answer a ping?
pub const INSTANCE_CHECK_CONTAINER_RUNTIME: &str = "ContainerRuntime";
/// `InstanceStatus.type` of the official agent's check of itself.
pub const INSTANCE_CHECK_AGENT: &str = "Agent";
/// `InstanceStatus.type` of the EBS CSI daemon check.
pub const INSTANCE_CHECK_EBS_DAEMON: &str = "EBSDaemon";
/// `InstanceStatus.type` of the NVIDIA GPU check.
pub const INSTANCE_CHECK_NVIDIA: &str = "NVIDIA_ACCELERATED_HARDWARE";

/// `InstanceStatus.status` before a check has run.
pub const INSTANCE_STATUS_INITIALIZING: &str = "INITIALIZING";
/// `InstanceStatus.status` of a passing check.
pub const INSTANCE_STATUS_OK: &str = "OK";
/// `InstanceStatus.status` of a failing check.
pub const INSTANCE_STATUS_IMPAIRED: &str = "IMPAIRED";

shape! {
    /// One health check of the instance: `type` names it ([`INSTANCE_CHECK_CONTAINER_RUNTIME`],
    /// …), `status` is `INITIALIZING`, `OK` or `IMPAIRED` (the agent's values; ECS's API adds
    /// `INSUFFICIENT_DATA`), `statusReason` says why (newer agents only).
    pub struct InstanceStatus {
        #[serde(rename = "type")]
        kind: String,
        status: String,
        last_updated: Timestamp,
        last_status_change: Timestamp,
        status_reason: String,
    }
}

#[cfg(test)]
mod tests;
