//! The task metadata endpoint, version 4, in ECS's JSON format: every container is told
//! `ECS_CONTAINER_METADATA_URI_V4=http://HOST:PORT/v4/TOKEN` and may ask
//!
//! - `GET ${URI}` — its own metadata (Docker id and name, image and image id, ports, labels,
//!   statuses, limits, times, networks, health, log configuration);
//! - `GET ${URI}/task` — its task's (statuses, task-level limits, pull times, every
//!   container's metadata);
//! - `GET ${URI}/stats`, `GET ${URI}/task/stats` — Docker stats documents, of the container
//!   and of every container of the task by Docker id.
//!
//! `TOKEN` is random per container (kept in the state, and read back from a container's
//! environment when it is adopted), so one container cannot name another by guessing.
//! Where the endpoint lives differs from ECS, which answers at the link-local 169.254.170.2
//! through iptables rules the agent installs: Berth's agent listens on the host's address on
//! Docker's default bridge (bridge-mode containers reach the host there) and on 127.0.0.1
//! (host-mode containers share the host's loopback), on one port kept in the state file so
//! that the URIs of running containers stay right across agent restarts.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use berth_model::ecs::{ContainerKnownStatus, DesiredStatus, TaskStatus};
use berth_runtime::{ContainerId, ContainerState, ContainerStatus, NetworkMode};
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::engine::Engine;
use crate::state::{ContainerRecord, TaskRecord};
use crate::stats::StatsCollector;
use crate::translate;

pub mod credentials;
pub mod endpoint;
pub mod link_local;

/// What the endpoint answers from.
pub struct MetadataService {
    pub engine: Engine,
    pub stats: StatsCollector,
    pub availability_zone: Option<String>,
    /// The host's link-local router key (`link_local`), when 169.254.170.2 reaches this
    /// agent: requests routed by another agent carry it.
    pub router_key: Option<Arc<str>>,
}

pub fn app(service: Arc<MetadataService>) -> Router {
    Router::new()
        .route("/v4/{token}", get(container_metadata))
        .route("/v4/{token}/task", get(task_metadata))
        .route("/v4/{token}/stats", get(container_stats))
        .route("/v4/{token}/task/stats", get(task_stats))
        .route("/v2/credentials/{id}", get(credentials::credentials))
        .with_state(service)
}

/// ECS's error answer: a JSON string.
fn not_found(what: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(Value::String(what.to_owned())),
    )
        .into_response()
}

fn internal(what: String) -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        axum::Json(Value::String(what)),
    )
        .into_response()
}

impl MetadataService {
    /// The task and container a token names.
    fn locate(&self, token: &str) -> Option<(String, TaskRecord, String)> {
        let state = self.engine.state().lock();
        state.tasks.iter().find_map(|(arn, task)| {
            let name = task
                .containers
                .iter()
                .find(|(_, c)| c.metadata_token.as_deref() == Some(token))?
                .0
                .clone();
            Some((arn.clone(), task.clone(), name))
        })
    }

    async fn inspect(&self, container: &ContainerRecord) -> Option<ContainerStatus> {
        let id = ContainerId::from(container.runtime_id.clone()?);
        self.engine.runtime().inspect_container(&id).await.ok()
    }

    async fn container_response(&self, task: &TaskRecord, name: &str) -> Option<ContainerResponse> {
        let record = task.containers.get(name)?;
        let docker_id = record.runtime_id.clone()?;
        let inspected = self.inspect(record).await;
        let definition = task
            .task
            .containers
            .iter()
            .flatten()
            .find(|c| c.name.as_deref() == Some(name))
            .cloned()
            .unwrap_or_default();
        let network = translate::task_network(&task.task)
            .unwrap_or(translate::TaskNetwork::Mode(NetworkMode::default()));
        let log = translate::log_config(&definition);
        let desired = if translate::desired_stopped(&task.task) {
            DesiredStatus::Stopped
        } else {
            DesiredStatus::Running
        };
        let networks = match &network {
            translate::TaskNetwork::Mode(NetworkMode::None) => Vec::new(),
            // The task's own address on its subnet, as ECS reports awsvpc tasks.
            translate::TaskNetwork::Awsvpc(eni) => vec![NetworkResponse {
                network_mode: "awsvpc".to_owned(),
                ipv4_addresses: vec![eni.ipv4_address.clone()],
            }],
            translate::TaskNetwork::Mode(mode) => vec![NetworkResponse {
                network_mode: mode.docker_value(),
                ipv4_addresses: inspected
                    .as_ref()
                    .and_then(|s| s.ip_address.clone())
                    .into_iter()
                    .collect(),
            }],
        };
        Some(ContainerResponse {
            docker_id,
            name: name.to_owned(),
            docker_name: record.docker_name.clone(),
            image: definition.image.clone().unwrap_or_default(),
            image_id: inspected
                .as_ref()
                .map(|s| s.image_id.clone())
                .unwrap_or_default(),
            ports: record
                .network_bindings
                .iter()
                .map(|b| PortResponse {
                    container_port: b.container_port,
                    protocol: b.protocol.clone(),
                    host_port: b.host_port,
                    host_ip: b.bind_ip.clone(),
                })
                .collect(),
            labels: inspected
                .as_ref()
                .map(|s| s.labels.clone())
                .unwrap_or_default(),
            desired_status: desired,
            // A container asking at once may be ahead of the agent's own record of it.
            known_status: match inspected.as_ref().map(|s| s.state) {
                Some(ContainerState::Running) => ContainerKnownStatus::Running,
                _ => record.known_status,
            },
            exit_code: record
                .exit_code
                .filter(|_| record.known_status == ContainerKnownStatus::Stopped),
            limits: Limits {
                cpu: Some(definition.cpu.unwrap_or(0) as f64),
                memory: Some(definition.memory.unwrap_or(0)),
            },
            created_at: inspected.as_ref().and_then(|s| s.created_at).map(rfc3339),
            started_at: inspected.as_ref().and_then(|s| s.started_at).map(rfc3339),
            finished_at: inspected.as_ref().and_then(|s| s.finished_at).map(rfc3339),
            kind: "NORMAL",
            networks,
            health: record.health.clone().map(|status| HealthResponse {
                status,
                status_since: record.health_since.and_then(from_seconds).map(rfc3339),
            }),
            log_driver: log.as_ref().map(|l| l.driver.clone()),
            log_options: log.map(|l| l.options).unwrap_or_default(),
            container_arn: definition.container_arn.clone(),
        })
    }

    async fn task_response(&self, task: &TaskRecord) -> TaskResponse {
        let mut containers = Vec::new();
        for name in task.containers.keys() {
            if let Some(container) = self.container_response(task, name).await {
                containers.push(container);
            }
        }
        let cpu = task.task.cpu.filter(|c| *c > 0.0);
        let memory = task.task.memory.filter(|m| *m > 0);
        TaskResponse {
            cluster: self.engine.config().cluster.clone(),
            task_arn: task.task.arn.clone().unwrap_or_default(),
            family: task.task.family.clone().unwrap_or_default(),
            revision: task.task.version.clone().unwrap_or_default(),
            desired_status: task.task.desired_status.clone().unwrap_or_default(),
            known_status: task.known_status,
            limits: (cpu.is_some() || memory.is_some()).then_some(Limits { cpu, memory }),
            pull_started_at: task.pull_started_at.and_then(from_seconds).map(rfc3339),
            pull_stopped_at: task.pull_stopped_at.and_then(from_seconds).map(rfc3339),
            execution_stopped_at: task.stopped_at.and_then(from_seconds).map(rfc3339),
            availability_zone: self.availability_zone.clone(),
            launch_type: task
                .task
                .launch_type
                .clone()
                .unwrap_or_else(|| "EC2".to_owned()),
            containers,
            service_name: task.task.service_name.clone(),
            fault_injection_enabled: task.task.enable_fault_injection.unwrap_or(false),
        }
    }

    /// Docker's stats document of a container, sampled now, with the collector's previous
    /// sample as its `precpu_stats` (so CPU rates can be computed from one answer).
    async fn stats_document(&self, container: &ContainerRecord) -> Option<Value> {
        let id = ContainerId::from(container.runtime_id.clone()?);
        let previous = self.stats.latest(&id);
        let sample = self.engine.runtime().stats(&id).await.ok()?;
        let mut document = sample.document.clone();
        if let (Some(previous), Some(object)) = (previous, document.as_object_mut()) {
            if let Some(cpu) = previous.document.get("cpu_stats") {
                object.insert("precpu_stats".to_owned(), cpu.clone());
            }
            if let Some(read) = previous.document.get("read") {
                object.insert("preread".to_owned(), read.clone());
            }
        }
        if container.known_status == ContainerKnownStatus::Running {
            self.stats.record(&id, sample);
        }
        Some(document)
    }
}

async fn container_metadata(
    State(service): State<Arc<MetadataService>>,
    Path(token): Path<String>,
) -> Response {
    let Some((_, task, name)) = service.locate(&token) else {
        return not_found("no container has this metadata endpoint");
    };
    match service.container_response(&task, &name).await {
        Some(container) => axum::Json(container).into_response(),
        None => not_found("the container has not been created yet"),
    }
}

async fn task_metadata(
    State(service): State<Arc<MetadataService>>,
    Path(token): Path<String>,
) -> Response {
    let Some((_, task, _)) = service.locate(&token) else {
        return not_found("no container has this metadata endpoint");
    };
    axum::Json(service.task_response(&task).await).into_response()
}

async fn container_stats(
    State(service): State<Arc<MetadataService>>,
    Path(token): Path<String>,
) -> Response {
    let Some((_, task, name)) = service.locate(&token) else {
        return not_found("no container has this metadata endpoint");
    };
    let Some(container) = task.containers.get(&name) else {
        return not_found("no such container");
    };
    match service.stats_document(container).await {
        Some(document) => axum::Json(document).into_response(),
        None => internal(format!("no stats for container {name}")),
    }
}

async fn task_stats(
    State(service): State<Arc<MetadataService>>,
    Path(token): Path<String>,
) -> Response {
    let Some((_, task, _)) = service.locate(&token) else {
        return not_found("no container has this metadata endpoint");
    };
    let mut by_docker_id = BTreeMap::new();
    for container in task.containers.values() {
        let Some(id) = container.runtime_id.clone() else {
            continue;
        };
        let document = service
            .stats_document(container)
            .await
            .unwrap_or(Value::Null);
        by_docker_id.insert(id, document);
    }
    axum::Json(by_docker_id).into_response()
}

/// Go's `time.Time` in JSON: RFC 3339 with nanoseconds, in UTC.
fn rfc3339(time: OffsetDateTime) -> String {
    time.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_default()
}

fn from_seconds(seconds: f64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos((seconds * 1e9) as i128).ok()
}

// ---- the response shapes (member names as ECS's agent writes them) ----

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct TaskResponse {
    cluster: String,
    #[serde(rename = "TaskARN")]
    task_arn: String,
    family: String,
    revision: String,
    desired_status: String,
    known_status: TaskStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    limits: Option<Limits>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pull_started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pull_stopped_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    execution_stopped_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    availability_zone: Option<String>,
    launch_type: String,
    containers: Vec<ContainerResponse>,
    #[serde(skip_serializing_if = "Option::is_none")]
    service_name: Option<String>,
    fault_injection_enabled: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct ContainerResponse {
    docker_id: String,
    name: String,
    docker_name: String,
    image: String,
    #[serde(rename = "ImageID")]
    image_id: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ports: Vec<PortResponse>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    labels: BTreeMap<String, String>,
    desired_status: DesiredStatus,
    known_status: ContainerKnownStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    exit_code: Option<i64>,
    limits: Limits,
    #[serde(skip_serializing_if = "Option::is_none")]
    created_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finished_at: Option<String>,
    #[serde(rename = "Type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    networks: Vec<NetworkResponse>,
    #[serde(skip_serializing_if = "Option::is_none")]
    health: Option<HealthResponse>,
    #[serde(skip_serializing_if = "Option::is_none")]
    log_driver: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    log_options: BTreeMap<String, String>,
    #[serde(rename = "ContainerARN", skip_serializing_if = "Option::is_none")]
    container_arn: Option<String>,
}

/// Task limits: CPU in vCPUs, memory in MiB. Container limits: CPU in units, memory in MiB.
#[derive(Debug, Serialize)]
struct Limits {
    #[serde(rename = "CPU", skip_serializing_if = "Option::is_none")]
    cpu: Option<f64>,
    #[serde(rename = "Memory", skip_serializing_if = "Option::is_none")]
    memory: Option<i64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct PortResponse {
    container_port: u16,
    protocol: String,
    host_port: u16,
    host_ip: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct NetworkResponse {
    network_mode: String,
    #[serde(rename = "IPv4Addresses", skip_serializing_if = "Vec::is_empty")]
    ipv4_addresses: Vec<String>,
}

/// The only lower-case member names of the format.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct HealthResponse {
    status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_since: Option<String>,
}

#[cfg(test)]
mod tests;
