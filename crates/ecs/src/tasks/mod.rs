//! Tasks: RunTask (placement by the engine, then an applier that re-checks each instance's
//! fit under compare-and-swap, so concurrent RunTasks never over-commit), describe and
//! list, StopTask, and the agent's SubmitTaskStateChange that drives the life cycle.
//!
//! Keys: `task/{cluster}/{id}` holds every task (stopped ones stay describable);
//! `task-pending/{cluster}/{id}` and `task-running/{cluster}/{id}` mark the live ones, so
//! prefix counts are the cluster's pending and running counts; `client-token/{cluster}/{token}`
//! remembers RunTask's idempotency token.
//!
//! Modules: `run` (RunTask and StartTask: requirements, placement batches, the applier),
//! `state` (StopTask and the agent's state changes).

mod protection;
mod provisioning;
mod run;
mod state;

use std::collections::BTreeMap;

use berth_model::Scope;
use berth_model::ecs::{
    AttachmentStatus, ContainerStatus, DesiredStatus, HealthStatus, LaunchType, NetworkBinding,
    StopCode, TaskGroup, TaskOverride, TaskStatus,
};
use berth_model::ecs::{EcsArn, EcsResource};

use berth_store::{Compare, Op};
use serde::{Deserialize, Serialize};

use crate::network::{Attachment, NetworkConfiguration};
use crate::{Ecs, EcsError, EcsTag, LaunchTypeCounts, Result, decode, encode, now_epoch};

use crate::keys::{
    all_tasks_prefix, instance_task_key, instance_tasks_prefix, marker_key, task_key, tasks_prefix,
};
pub use protection::{ProtectedTask, ProtectionResult, TaskProtection};
pub use provisioning::{PROVISIONING_TIMED_OUT, ProviderUsage};
pub use run::RunTaskPending;
pub(crate) use run::{PlacementJob, rand_seed};

/// A container of a task, as DescribeTasks shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskContainer {
    pub container_arn: String,
    pub task_arn: String,
    pub name: String,
    pub image: String,
    pub last_status: ContainerStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default)]
    pub network_bindings: Vec<NetworkBinding>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_reservation: Option<String>,
    /// The container's id in its runtime (Docker), as the agent reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_id: Option<String>,
    /// The digest of the image it runs, as the agent reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
    /// HEALTHY / UNHEALTHY / UNKNOWN for containers with a health check (from the agent's
    /// telemetry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_status: Option<HealthStatus>,
    /// awsvpc: the task's interface, as ECS shows it on each container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub network_interfaces: Vec<NetworkInterface>,
}

/// A container's view of its task's ENI (DescribeTasks' `containers[].networkInterfaces`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkInterface {
    pub attachment_id: String,
    pub private_ipv4_address: String,
}

/// What a task holds on its container instance, given back when it stops.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    pub cpu: i64,
    pub memory: i64,
    pub tcp_ports: Vec<u16>,
    pub udp_ports: Vec<u16>,
}

/// A stored task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    pub id: String,
    pub cluster: String,
    pub task_definition_arn: String,
    pub container_instance_id: Option<String>,
    pub launch_type: LaunchType,
    pub desired_status: DesiredStatus,
    pub last_status: TaskStatus,
    pub created_at: f64,
    #[serde(default)]
    pub pull_started_at: Option<f64>,
    #[serde(default)]
    pub pull_stopped_at: Option<f64>,
    #[serde(default)]
    pub started_at: Option<f64>,
    #[serde(default)]
    pub stopping_at: Option<f64>,
    #[serde(default)]
    pub stopped_at: Option<f64>,
    #[serde(default)]
    pub execution_stopped_at: Option<f64>,
    #[serde(default)]
    pub started_by: Option<String>,
    pub group: String,
    #[serde(default)]
    pub stop_code: Option<StopCode>,
    #[serde(default)]
    pub stopped_reason: Option<String>,
    #[serde(default)]
    pub tags: Vec<EcsTag>,
    #[serde(default)]
    pub overrides: Option<TaskOverride>,
    pub cpu: String,
    pub memory: String,
    pub containers: Vec<TaskContainer>,
    pub version: i64,
    pub reservation: Reservation,
    #[serde(default)]
    pub availability_zone: Option<String>,
    /// The task's health: HEALTHY when every essential container with a health check is
    /// healthy, UNHEALTHY when one is not, UNKNOWN otherwise.
    #[serde(default)]
    pub health_status: Option<HealthStatus>,
    /// Fargate: the cluster of the pool instance the task runs on (its
    /// `container_instance_id`); `None`: the task's own cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_cluster: Option<String>,
    /// The capacity provider that launched the task (FARGATE / FARGATE_SPOT).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_provider_name: Option<String>,
    /// Fargate's platform version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_version: Option<String>,
    /// Fargate: the task's ephemeral storage in GiB (the definition's, else 20). Shown, not
    /// enforced: Docker can cap a container's writable layer only on some storage drivers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral_storage_gib: Option<i32>,
    /// awsvpc tasks: the ElasticNetworkInterface attachment holding the task's address.
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    /// awsvpc tasks: the security groups of the task's network interface, as RunTask named
    /// them (EC2's DescribeNetworkInterfaces shows them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_groups: Vec<String>,
    /// Scale-in protection (UpdateTaskProtection), kept until it is turned off; it counts
    /// only until its expiration date ([`Task::protected_until`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protection: Option<TaskProtection>,
    /// Berth's own: the targets the service scheduler registered for this task in its
    /// service's target groups (deregistered when it stops).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub load_balancer_targets: Vec<crate::service_load_balancers::RegisteredTarget>,
    /// Berth's own: the service scheduler deregistered the task's targets to stop it and
    /// waits for them to drain (ECS's DEACTIVATING).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deactivating: Option<crate::service_load_balancers::Deactivation>,
    /// Berth's own: a task waiting for its capacity provider's capacity keeps the
    /// placement constraints (the task definition's and RunTask's) and strategy it was
    /// launched with, for its placement when an instance has room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_placement: Option<WaitingPlacement>,
}

/// Placement constraints and strategy as RunTask / the service gave them: (type,
/// expression) and (type, field).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WaitingPlacement {
    pub constraints: Vec<(String, Option<String>)>,
    pub strategy: Vec<(String, Option<String>)>,
}

impl Task {
    /// The cluster of the instance the task runs on.
    pub fn instance_cluster(&self) -> &str {
        self.capacity_cluster.as_deref().unwrap_or(&self.cluster)
    }

    /// Whether the task runs on the Fargate pool.
    pub fn is_fargate(&self) -> bool {
        self.capacity_cluster.as_deref() == Some(crate::fargate::POOL_CLUSTER)
    }

    /// The task a store watch event carries (`None` for a deletion).
    pub fn from_event(event: &berth_store::WatchEvent) -> Result<Option<Task>> {
        match event.kind {
            berth_store::EventKind::Put => decode(&event.kv).map(Some),
            berth_store::EventKind::Delete => Ok(None),
        }
    }

    pub fn arn(&self, scope: &Scope) -> String {
        EcsArn::task(scope, &self.cluster, &self.id).into_string()
    }

    pub fn is_live(&self) -> bool {
        self.last_status.is_live()
    }

    /// The `lastStatus` ECS shows: DEACTIVATING while the task's targets drain before its
    /// stop, then STOPPING until its agent reports it STOPPED. The record keeps RUNNING
    /// meanwhile: that is what its agent runs, and what counts and placement go by.
    pub fn shown_last_status(&self) -> TaskStatus {
        match (self.last_status, &self.deactivating, self.desired_status) {
            (TaskStatus::Running, Some(_), DesiredStatus::Running) => TaskStatus::Deactivating,
            (TaskStatus::Running, Some(_), DesiredStatus::Stopped) => TaskStatus::Stopping,
            (status, _, _) => status,
        }
    }

    /// The `desiredStatus` ECS shows: STOPPED from the moment the stop was asked for, the
    /// drain of its targets included (its agent is told only when the drain is over).
    pub fn shown_desired_status(&self) -> DesiredStatus {
        if self.deactivating.is_some() && self.last_status.is_live() {
            DesiredStatus::Stopped
        } else {
            self.desired_status
        }
    }

    /// The task's ENI attachment (awsvpc tasks).
    pub fn eni(&self) -> Option<&Attachment> {
        self.attachments.iter().find(|a| a.is_eni())
    }

    /// Gives a new task its ENI: the attachment, and each container's view of it.
    fn attach(&mut self, attachment: Attachment) {
        let ip = attachment
            .detail("privateIPv4Address")
            .unwrap_or_default()
            .to_string();
        for c in &mut self.containers {
            c.network_interfaces = vec![NetworkInterface {
                attachment_id: attachment.id.clone(),
                private_ipv4_address: ip.clone(),
            }];
        }
        self.attachments.push(attachment);
    }
}

/// What RunTask (and StartTask) ask for.
#[derive(Debug, Clone, Default)]
pub struct RunTask {
    pub cluster: Option<String>,
    pub task_definition: String,
    pub count: u32,
    pub group: Option<String>,
    pub started_by: Option<String>,
    pub launch_type: Option<String>,
    /// (type, expression)
    pub placement_constraints: Vec<(String, Option<String>)>,
    /// (type, field)
    pub placement_strategy: Vec<(String, Option<String>)>,
    pub overrides: Option<TaskOverride>,
    pub tags: Vec<EcsTag>,
    pub client_token: Option<String>,
    pub capacity_provider_strategy: Option<Vec<crate::CapacityProviderStrategyItem>>,
    pub platform_version: Option<String>,
    /// StartTask: the instances to start one task each on (no placement).
    pub container_instances: Option<Vec<String>>,
    /// awsvpc tasks: subnets, security groups, public IP.
    pub network_configuration: Option<NetworkConfiguration>,
}

/// The agent's report of a task's new status (SubmitTaskStateChange).
#[derive(Debug, Clone, Default)]
pub struct TaskStateChange {
    pub task: String,
    pub status: String,
    pub reason: Option<String>,
    pub pull_started_at: Option<f64>,
    pub pull_stopped_at: Option<f64>,
    pub execution_stopped_at: Option<f64>,
    /// The containers' own changes, reported with the task's (as the official agent does).
    pub containers: Vec<ContainerChange>,
    /// (attachment ARN, status): the agent's word on the task's ENI (`ATTACHED` once the
    /// task's network namespace exists).
    pub attachments: Vec<(String, AttachmentStatus)>,
}

/// One container's reported change (SubmitTaskStateChange's `containers`, or
/// SubmitContainerStateChange).
#[derive(Debug, Clone, Default)]
pub struct ContainerChange {
    pub name: String,
    pub status: Option<String>,
    pub runtime_id: Option<String>,
    pub image_digest: Option<String>,
    pub exit_code: Option<i64>,
    pub reason: Option<String>,
    pub network_bindings: Vec<NetworkBinding>,
}

impl ContainerChange {
    fn apply(&self, task: &mut Task) {
        if let Some(c) = task.containers.iter_mut().find(|c| c.name == self.name) {
            // A status this model does not know (another agent's) leaves the container's.
            if let Some(status) = self.status.as_deref().and_then(|s| s.parse().ok()) {
                c.last_status = status;
            }
            if self.runtime_id.is_some() {
                c.runtime_id = self.runtime_id.clone();
            }
            if self.image_digest.is_some() {
                c.image_digest = self.image_digest.clone();
            }
            if self.exit_code.is_some() {
                c.exit_code = self.exit_code;
            }
            if self.reason.is_some() {
                c.reason = self.reason.clone();
            }
            if !self.network_bindings.is_empty() {
                c.network_bindings = self.network_bindings.clone();
            }
        }
    }
}

/// RunTask's answer: the tasks started, and why the others could not be placed.
#[derive(Debug, Clone, Default)]
pub struct RunTaskOutcome {
    pub tasks: Vec<Task>,
    /// (arn, reason), as ECS's `failures`.
    pub failures: Vec<(String, String)>,
}

/// The two fields of a task record that say whose it is and whether it is live, borrowed
/// from the record; serde skips the rest without building it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TaskHead<'a> {
    #[serde(default, borrow)]
    group: std::borrow::Cow<'a, str>,
    last_status: TaskStatus,
}

fn decode_head(kv: &berth_store::KeyValue) -> Result<TaskHead<'_>> {
    serde_json::from_slice(&kv.value).map_err(|e| EcsError::Corrupt(format!("{}: {e}", kv.key)))
}

/// Live markers carry no value: only their keys are counted (the task record and the
/// instance's `task_groups` hold everything else).
const MARKER: &[u8] = b"{}";

/// What ListTasks selects, as ECS defines it.
#[derive(Debug, Clone)]
pub struct ListTasksFilter {
    /// RUNNING: tasks meant to run (desired RUNNING); PENDING: those meant to run and not
    /// yet RUNNING; STOPPED: those meant to stop.
    pub desired: DesiredStatus,
    /// An instance id.
    pub container_instance: Option<String>,
    pub family: Option<String>,
    pub started_by: Option<String>,
    pub service_name: Option<String>,
    pub launch_type: Option<LaunchType>,
}

impl ListTasksFilter {
    fn selects(&self, scope: &Scope, t: &Task) -> bool {
        // As DescribeTasks shows it: a task draining before its stop is meant to stop.
        let shown = t.shown_desired_status();
        let desired = match self.desired {
            DesiredStatus::Running => shown == DesiredStatus::Running,
            DesiredStatus::Pending => {
                shown == DesiredStatus::Running && t.last_status != TaskStatus::Running
            }
            DesiredStatus::Stopped => shown == DesiredStatus::Stopped,
        };
        desired
            && self
                .container_instance
                .as_ref()
                .is_none_or(|i| t.container_instance_id.as_ref() == Some(i))
            && self.family.as_ref().is_none_or(|f| {
                t.task_definition_arn
                    .starts_with(&EcsArn::task_definition_prefix(scope, f))
            })
            && self
                .started_by
                .as_ref()
                .is_none_or(|s| t.started_by.as_ref() == Some(s))
            && self
                .service_name
                .as_ref()
                .is_none_or(|s| TaskGroup::parse(&t.group).service() == Some(s.as_str()))
            && self.launch_type.is_none_or(|l| t.launch_type == l)
    }
}

/// The task id a ListTasks `nextToken` holds (the page's last task).
fn task_token(token: &str) -> Result<String> {
    berth_store::page_token::decode(token)
        .filter(|id| id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .ok_or_else(|| EcsError::InvalidParameter("Invalid nextToken.".into()))
}

/// Only a task record's launch type, the rest skipped by serde.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LaunchTypeHead {
    launch_type: LaunchType,
}

impl Ecs {
    /// The cluster's RUNNING and pending tasks (as its `runningTasksCount` and
    /// `pendingTasksCount` count them, from the live markers) by launch type.
    pub(crate) fn live_tasks_by_launch_type(
        &self,
        scope: &Scope,
        cluster: &str,
    ) -> Result<(LaunchTypeCounts, LaunchTypeCounts)> {
        let mut counts = [LaunchTypeCounts::default(), LaunchTypeCounts::default()];
        for (status, counts) in [TaskStatus::Running, TaskStatus::Pending]
            .into_iter()
            .zip(counts.iter_mut())
        {
            let prefix = marker_key(scope, status, cluster, "");
            crate::scan(&*self.store, &prefix, None, |marker| {
                let id = &marker.key[prefix.len()..];
                if let Some(kv) = self.store.get(&task_key(scope, cluster, id))? {
                    let head: LaunchTypeHead = serde_json::from_slice(&kv.value)
                        .map_err(|e| EcsError::Corrupt(format!("{}: {e}", kv.key)))?;
                    counts.add(head.launch_type);
                }
                Ok(true)
            })?;
        }
        let [running, pending] = counts;
        Ok((running, pending))
    }
}

/// The index entry of `task` with `status`: the key in its instance's index and the value.
fn index_entry(scope: &Scope, task: &Task, status: TaskStatus) -> (String, Vec<u8>) {
    let instance_id = task.container_instance_id.as_deref().unwrap_or_default();
    let key = instance_task_key(scope, task.instance_cluster(), instance_id, &task.id);
    let value = match &task.capacity_cluster {
        Some(_) => format!("{status} {}", task.cluster),
        None => status.to_string(),
    };
    (key, value.into_bytes())
}

/// An index value read back: (status, the task's cluster when not the instance's).
fn parse_index_value(value: &[u8]) -> (&str, Option<&str>) {
    let text = std::str::from_utf8(value).unwrap_or_default();
    match text.split_once(' ') {
        Some((status, cluster)) => (status, Some(cluster)),
        None => (text, None),
    }
}

/// What creating `task` writes besides the instance: the record, its live marker and its
/// entry in the instance's live-task index.
/// (A task waiting for capacity has no instance, so no index entry yet.)
fn new_task_ops(scope: &Scope, cluster: &str, task: &Task) -> Vec<Op> {
    let mut ops = vec![
        Op::put(task_key(scope, cluster, &task.id), encode(task)),
        Op::put(
            marker_key(scope, TaskStatus::Pending, cluster, &task.id),
            MARKER.to_vec(),
        ),
    ];
    if task.container_instance_id.is_some() {
        let (index_key, index_value) = index_entry(scope, task, task.last_status);
        ops.push(Op::put(index_key, index_value));
    }
    ops
}

impl Ecs {
    pub fn task(&self, scope: &Scope, cluster: &str, id: &str) -> Result<Option<Task>> {
        self.store
            .get(&task_key(scope, cluster, id))?
            .map(|kv| decode(&kv))
            .transpose()
    }

    /// The task id in an id or a task ARN of this scope and cluster.
    pub fn task_id(&self, scope: &Scope, cluster: &str, id_or_arn: &str) -> Result<String> {
        if id_or_arn.starts_with("arn:") {
            let Some(EcsResource::Task { cluster: c, id }) = EcsArn::parse(scope, id_or_arn) else {
                return Err(EcsError::InvalidParameter(format!(
                    "Invalid task ARN '{id_or_arn}'."
                )));
            };
            if c.is_some_and(|c| c != cluster) {
                return Err(EcsError::InvalidParameter(
                    "The task does not belong to the cluster.".into(),
                ));
            }
            return Ok(id.to_string());
        }
        Ok(id_or_arn.to_string())
    }

    /// The task an agent reports on. An agent reports on its own cluster's tasks, except
    /// the Fargate pool's: its hosts run the Fargate tasks of every cluster, named by ARN
    /// (a task of another cluster it may change only if that task runs on the pool).
    fn reported_task(
        &self,
        scope: &Scope,
        cluster: Option<&str>,
        id_or_arn: &str,
    ) -> Result<(crate::Cluster, String)> {
        let from_arn = match EcsArn::parse(scope, id_or_arn) {
            Some(EcsResource::Task { cluster, .. }) => cluster,
            _ => None,
        };
        if cluster == Some(crate::fargate::POOL_CLUSTER)
            && let Some(task_cluster) = from_arn.filter(|c| *c != crate::fargate::POOL_CLUSTER)
        {
            let owner = self.active_cluster(scope, Some(task_cluster))?;
            let id = self.task_id(scope, &owner.name, id_or_arn)?;
            return match self.task(scope, &owner.name, &id)? {
                Some(t) if t.instance_cluster() == crate::fargate::POOL_CLUSTER => Ok((owner, id)),
                _ => Err(EcsError::InvalidParameter(
                    "The task does not belong to the cluster.".into(),
                )),
            };
        }
        let cluster = self.active_cluster(scope, cluster)?;
        let id = self.task_id(scope, &cluster.name, id_or_arn)?;
        Ok((cluster, id))
    }

    /// The scope's live tasks that hold a network interface (awsvpc), every cluster's: the
    /// interfaces EC2's DescribeNetworkInterfaces shows.
    pub fn tasks_with_interfaces(&self, scope: &Scope) -> Result<Vec<Task>> {
        let mut out = Vec::new();
        berth_store::scan(
            &*self.store,
            &crate::keys::all_tasks_prefix(scope),
            None,
            |kv| {
                let task: Task = decode(kv)?;
                if task.is_live() && task.eni().is_some() {
                    out.push(task);
                }
                Ok::<_, EcsError>(true)
            },
        )?;
        Ok(out)
    }

    /// Every task of a cluster, stopped ones included, in id order.
    pub fn tasks(&self, scope: &Scope, cluster: Option<&str>) -> Result<Vec<Task>> {
        let cluster = self.active_cluster(scope, cluster)?;
        self.store
            .range(&tasks_prefix(scope, &cluster.name), None, 0)?
            .iter()
            .map(decode)
            .collect()
    }

    /// The RUNNING and pending ([`TaskStatus::is_pending`]) tasks of each task group of a
    /// cluster, as (running, pending),
    /// from one read of its tasks. Only each record's `group` and `lastStatus` are decoded:
    /// DescribeServices asks this on every call, and a cluster keeps its stopped tasks for
    /// an hour (a service whose tasks keep failing leaves hundreds), so decoding whole
    /// records made every call cost O(all tasks) in full decodes and allocations.
    pub fn live_tasks_by_group(
        &self,
        scope: &Scope,
        cluster: &str,
    ) -> Result<BTreeMap<String, (u32, u32)>> {
        let mut live: BTreeMap<String, (u32, u32)> = BTreeMap::new();
        for kv in self.store.range(&tasks_prefix(scope, cluster), None, 0)? {
            let head: TaskHead = decode_head(&kv)?;
            let (running, pending) = (
                head.last_status == TaskStatus::Running,
                head.last_status.is_pending(),
            );
            if running || pending {
                let counts = live.entry(head.group.into_owned()).or_default();
                counts.0 += u32::from(running);
                counts.1 += u32::from(pending);
            }
        }
        Ok(live)
    }

    /// The tasks of one task group of a cluster (`service:NAME`), stopped ones included, in
    /// id order, from one read of its tasks; only the group's records are decoded in full
    /// (the service scheduler's round, for each service, with the cluster's stopped tasks
    /// kept an hour).
    pub fn group_tasks(&self, scope: &Scope, cluster: &str, group: &str) -> Result<Vec<Task>> {
        let mut tasks = Vec::new();
        for kv in self.store.range(&tasks_prefix(scope, cluster), None, 0)? {
            if decode_head(&kv)?.group == group {
                tasks.push(decode(&kv)?);
            }
        }
        Ok(tasks)
    }

    /// One page of a cluster's tasks that pass `keep`, in id order, starting after the
    /// task id `after`; with the id to continue after when more may follow (ListTasks).
    /// Reads the store in chunks, so a page costs what it scans, not the whole cluster.
    /// ListTasks: a page of the cluster's tasks `filter` selects, in id order.
    pub fn list_tasks(
        &self,
        scope: &Scope,
        cluster: &str,
        filter: &ListTasksFilter,
        next_token: Option<&str>,
        max: usize,
    ) -> Result<(Vec<Task>, Option<String>)> {
        self.task_page(scope, cluster, next_token, max, |t| {
            filter.selects(scope, t)
        })
    }

    fn task_page(
        &self,
        scope: &Scope,
        cluster: &str,
        after: Option<&str>,
        max: usize,
        keep: impl Fn(&Task) -> bool,
    ) -> Result<(Vec<Task>, Option<String>)> {
        let prefix = tasks_prefix(scope, cluster);
        let after = after.map(task_token).transpose()?;
        let mut page = Vec::new();
        let mut next = None;
        crate::scan(
            &*self.store,
            &prefix,
            after.map(|id| format!("{prefix}{id}")),
            |kv| {
                let task: Task = decode(kv)?;
                if !keep(&task) {
                    return Ok(true);
                }
                if page.len() == max {
                    // Another match exists: the page ends at its last task.
                    next = page
                        .last()
                        .map(|t: &Task| berth_store::page_token::encode(&t.id));
                    return Ok(false);
                }
                page.push(task);
                Ok(true)
            },
        )?;
        Ok((page, next))
    }

    /// A watch on the task records an instance of `cluster` can be given, from now on
    /// (agent sessions follow it): the cluster's own, or for the Fargate pool every
    /// cluster's (its hosts run Fargate tasks of all of them).
    pub fn watch_tasks(&self, scope: &Scope, cluster: &str) -> Result<berth_store::Watcher> {
        let revision = self.store.current_revision()?;
        let prefix = if cluster == crate::fargate::POOL_CLUSTER {
            all_tasks_prefix(scope)
        } else {
            tasks_prefix(scope, cluster)
        };
        Ok(self.store.watch(&prefix, revision)?)
    }

    /// A watch on every task record of the scope, all clusters' (from now on): what the
    /// security groups' membership follows (docs/networking.md).
    pub fn watch_all_tasks(&self, scope: &Scope) -> Result<berth_store::Watcher> {
        let revision = self.store.current_revision()?;
        Ok(self.store.watch(&all_tasks_prefix(scope), revision)?)
    }

    /// The live tasks (not yet STOPPED) placed on one instance, from its live-task index:
    /// O(tasks on the instance), not O(tasks in the cluster).
    pub fn live_tasks_on(
        &self,
        scope: &Scope,
        cluster: &str,
        instance_id: &str,
    ) -> Result<Vec<Task>> {
        let prefix = instance_tasks_prefix(scope, cluster, instance_id);
        let mut tasks = Vec::new();
        crate::scan(&*self.store, &prefix, None, |kv| {
            let (_, task_cluster) = parse_index_value(&kv.value);
            let task_cluster = task_cluster.unwrap_or(cluster);
            if let Some(task) = self.task(scope, task_cluster, &kv.key[prefix.len()..])?
                && task.is_live()
            {
                tasks.push(task);
            }
            Ok(true)
        })?;
        Ok(tasks)
    }

    /// Fills the live-task index of every instance from the live tasks of a store written
    /// before the index existed (once: a marker key records that it was done). Returns how
    /// many entries it wrote.
    pub fn migrate_instance_task_index(&self) -> Result<usize> {
        const DONE: &str = "berth/migrations/instance-task-index";
        if self.store.get(DONE)?.is_some() {
            return Ok(0);
        }
        let mut ops = Vec::new();
        crate::scan(&*self.store, crate::keys::ROOT, None, |kv| {
            let Some((scope, rest)) = crate::keys::split_key(&kv.key) else {
                return Ok(true);
            };
            if !rest.starts_with("task/") {
                return Ok(true);
            }
            let task: Task = decode(kv)?;
            if task.is_live() && task.container_instance_id.is_some() {
                let (key, value) = index_entry(&scope, &task, task.last_status);
                ops.push(Op::put(key, value));
            }
            Ok(true)
        })?;
        let written = ops.len();
        for chunk in ops.chunks(512) {
            self.store.txn(&[], chunk)?;
        }
        self.store.put(DONE, b"1")?;
        Ok(written)
    }

    /// An instance's `runningTasksCount` and `pendingTasksCount` (tasks not yet RUNNING),
    /// counted in its live-task index.
    pub(crate) fn instance_task_counts(
        &self,
        scope: &Scope,
        cluster: &str,
        instance_id: &str,
    ) -> Result<(i64, i64)> {
        let (mut running, mut pending) = (0, 0);
        let prefix = instance_tasks_prefix(scope, cluster, instance_id);
        crate::scan(&*self.store, &prefix, None, |kv| {
            match parse_index_value(&kv.value).0.parse::<TaskStatus>() {
                Ok(TaskStatus::Running) => running += 1,
                Ok(status) if status.is_pending() => pending += 1,
                _ => {}
            }
            Ok(true)
        })?;
        Ok((running, pending))
    }

    /// Periodic housekeeping: apply pending instance changes to the placement views.
    pub fn refresh_placement_views(&self) -> Result<()> {
        self.lanes.refresh_all(&*self.store)
    }

    /// Forget STOPPED tasks that stopped more than `min_age_seconds` ago (ECS keeps stopped
    /// tasks describable for at least an hour, then they go). Returns how many went.
    pub fn reap_stopped_tasks(&self, min_age_seconds: f64) -> Result<usize> {
        let cutoff = now_epoch() - min_age_seconds;
        let mut reaped = 0;
        let mut tokens = Vec::new();
        crate::scan(&*self.store, crate::keys::ROOT, None, |kv| {
            let Some((_, rest)) = crate::keys::split_key(&kv.key) else {
                return Ok(true);
            };
            if rest.starts_with("client-token/") {
                tokens.push(kv.clone());
                return Ok(true);
            }
            if !rest.starts_with("task/") {
                return Ok(true);
            }
            let task: Task = decode(kv)?;
            if task.last_status == TaskStatus::Stopped
                && task.stopped_at.is_some_and(|t| t < cutoff)
            {
                let outcome = self.store.txn(
                    &[Compare::ModRevision(kv.key.clone(), kv.mod_revision)],
                    &[Op::delete(kv.key.clone())],
                )?;
                if outcome.is_committed() {
                    reaped += 1;
                }
            }
            Ok(true)
        })?;
        // A RunTask client token is kept while any task it started is still known.
        for kv in tokens {
            let Some((head, rest)) = kv.key.split_once("/client-token/") else {
                continue;
            };
            let Some((cluster, _token)) = rest.split_once('/') else {
                continue;
            };
            let ids: Vec<String> = decode(&kv)?;
            let mut known = false;
            for id in &ids {
                if self
                    .store
                    .get(&format!("{head}/task/{cluster}/{id}"))?
                    .is_some()
                {
                    known = true;
                    break;
                }
            }
            if !known {
                self.store.txn(
                    &[Compare::ModRevision(kv.key.clone(), kv.mod_revision)],
                    &[Op::delete(kv.key.clone())],
                )?;
            }
        }
        Ok(reaped)
    }
}

#[cfg(test)]
mod tests;
