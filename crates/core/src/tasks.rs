//! Tasks: RunTask (placement by the engine, then an applier that re-checks each instance's
//! fit under compare-and-swap, so concurrent RunTasks never over-commit), describe and
//! list, StopTask, and the agent's SubmitTaskStateChange that drives the life cycle.
//!
//! Keys: `task/{cluster}/{id}` holds every task (stopped ones stay describable);
//! `task-pending/{cluster}/{id}` and `task-running/{cluster}/{id}` mark the live ones, so
//! prefix counts are the cluster's pending and running counts; `client-token/{cluster}/{token}`
//! remembers RunTask's idempotency token.

use berth_model::Scope;
use berth_model::task_definition::TaskDefinition;
use std::collections::BTreeMap;
use std::sync::Arc;

use berth_store::{Compare, Op, Store, TxnOutcome};
use serde::{Deserialize, Serialize};

use crate::instances::ContainerInstance;
use crate::network::{
    AddressBook, Assignment, Attachment, NetworkConfiguration, Subnet, eni_attachment, release_ops,
};
use crate::placement::{Job, LaneContext, LaneState};
use crate::{Ecs, EcsError, EcsTag, Result, decode, encode, now_epoch};

/// A container of a task, as DescribeTasks shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskContainer {
    pub container_arn: String,
    pub task_arn: String,
    pub name: String,
    pub image: String,
    pub last_status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default)]
    pub network_bindings: Vec<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_reservation: Option<String>,
    /// The container's id in its runtime (Docker), as the agent reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_id: Option<String>,
    /// HEALTHY / UNHEALTHY / UNKNOWN for containers with a health check (from the agent's
    /// telemetry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_status: Option<String>,
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
    pub launch_type: String,
    pub desired_status: String,
    pub last_status: String,
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
    pub stop_code: Option<String>,
    #[serde(default)]
    pub stopped_reason: Option<String>,
    #[serde(default)]
    pub tags: Vec<EcsTag>,
    #[serde(default)]
    pub overrides: Option<serde_json::Value>,
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
    pub health_status: Option<String>,
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
        scope.arn("ecs", &format!("task/{}/{}", self.cluster, self.id))
    }

    pub fn is_live(&self) -> bool {
        self.last_status != "STOPPED"
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
    pub overrides: Option<serde_json::Value>,
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
    pub attachments: Vec<(String, String)>,
}

/// One container's reported change (SubmitTaskStateChange's `containers`, or
/// SubmitContainerStateChange).
#[derive(Debug, Clone, Default)]
pub struct ContainerChange {
    pub name: String,
    pub status: Option<String>,
    pub runtime_id: Option<String>,
    pub exit_code: Option<i64>,
    pub reason: Option<String>,
    pub network_bindings: Vec<serde_json::Value>,
}

impl ContainerChange {
    fn apply(&self, task: &mut Task) {
        if let Some(c) = task.containers.iter_mut().find(|c| c.name == self.name) {
            if let Some(status) = &self.status {
                c.last_status = status.clone();
            }
            if self.runtime_id.is_some() {
                c.runtime_id = self.runtime_id.clone();
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

/// Live markers carry no value: only their keys are counted (the task record and the
/// instance's `task_groups` hold everything else).
const MARKER: &[u8] = b"{}";

fn base(scope: &Scope) -> String {
    format!("ecs/{}/{}/", scope.account, scope.region)
}

/// RunTask's idempotency token: the ids of the tasks the request started.
fn client_token_key(scope: &Scope, cluster: &str, token: &str) -> String {
    format!("{}client-token/{cluster}/{token}", base(scope))
}

fn task_key(scope: &Scope, cluster: &str, id: &str) -> String {
    format!("{}task/{cluster}/{id}", base(scope))
}

fn marker_key(scope: &Scope, status: &str, cluster: &str, id: &str) -> String {
    let kind = if status == "RUNNING" {
        "task-running"
    } else {
        "task-pending"
    };
    format!("{}{kind}/{cluster}/{id}", base(scope))
}

/// The key prefix of an instance's live-task index: one entry per task placed there and
/// not yet STOPPED, holding the task's last status (and, for a Fargate task on a pool
/// instance, a space and the task's own cluster: see [`index_entry`]). It is written in the transactions
/// that create and change the task (guarded by the task record's own compare), so state
/// reports never rewrite the instance record that placement compares on; the instance's
/// task counts and the agent's manifests are read from it.
pub(crate) fn instance_tasks_prefix(scope: &Scope, cluster: &str, instance_id: &str) -> String {
    format!("{}instance-task/{cluster}/{instance_id}/", base(scope))
}

fn instance_task_key(scope: &Scope, cluster: &str, instance_id: &str, task_id: &str) -> String {
    format!(
        "{}{task_id}",
        instance_tasks_prefix(scope, cluster, instance_id)
    )
}

/// The index entry of `task` with `status`: the key in its instance's index and the value.
fn index_entry(scope: &Scope, task: &Task, status: &str) -> (String, Vec<u8>) {
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
fn new_task_ops(scope: &Scope, cluster: &str, task: &Task) -> [Op; 3] {
    let (index_key, index_value) = index_entry(scope, task, &task.last_status);
    [
        Op::put(task_key(scope, cluster, &task.id), encode(task)),
        Op::put(
            marker_key(scope, "PENDING", cluster, &task.id),
            MARKER.to_vec(),
        ),
        Op::put(index_key, index_value),
    ]
}

fn parse_amount(value: Option<&str>) -> i64 {
    value.and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

/// RunTask's `overrides`, as far as the task's size goes (ECS's TaskOverride: task-level
/// `cpu` and `memory`, and each container's `cpu`, `memory`, `memoryReservation`); the
/// whole document travels to the agent unchanged, which applies the same amounts.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct SizeOverrides {
    cpu: Option<String>,
    memory: Option<String>,
    #[serde(default)]
    container_overrides: Vec<ContainerSizeOverride>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContainerSizeOverride {
    name: Option<String>,
    cpu: Option<i64>,
    memory: Option<i64>,
    memory_reservation: Option<i64>,
}

impl SizeOverrides {
    /// Unreadable overrides change nothing here (the HTTP edge has checked their shape).
    fn of(overrides: Option<&serde_json::Value>) -> SizeOverrides {
        overrides
            .and_then(|o| serde_json::from_value(o.clone()).ok())
            .unwrap_or_default()
    }

    fn container(&self, name: Option<&str>) -> Option<&ContainerSizeOverride> {
        self.container_overrides
            .iter()
            .find(|o| o.name.is_some() && o.name.as_deref() == name)
    }
}

/// What a task of this definition, with these overrides, needs on an instance: task-level
/// cpu and memory when set, else the containers' sums (a container's memory is its
/// `memoryReservation` when it has one, else its `memory`, as ECS reserves it); fixed host
/// ports of bridge and host network modes.
fn requirements(td: &TaskDefinition, overrides: &SizeOverrides) -> Reservation {
    let containers = td.container_definitions.clone().unwrap_or_default();
    let sized = |c: &berth_model::task_definition::ContainerDefinition| {
        let o = overrides.container(c.name.as_deref());
        let cpu = o
            .and_then(|o| o.cpu)
            .unwrap_or_else(|| i64::from(c.cpu.unwrap_or(0)));
        let reservation = o
            .and_then(|o| o.memory_reservation)
            .or_else(|| c.memory_reservation.map(i64::from));
        let hard = o.and_then(|o| o.memory).or_else(|| c.memory.map(i64::from));
        (cpu, reservation.or(hard).unwrap_or(0))
    };
    let cpu = match overrides.cpu.as_deref().or(td.cpu.as_deref()) {
        Some(c) => parse_amount(Some(c)),
        None => containers.iter().map(|c| sized(c).0).sum(),
    };
    let memory = match overrides.memory.as_deref().or(td.memory.as_deref()) {
        Some(m) => parse_amount(Some(m)),
        None => containers.iter().map(|c| sized(c).1).sum(),
    };
    let mut r = Reservation {
        cpu,
        memory,
        ..Reservation::default()
    };
    if td.network_mode.as_deref() != Some("awsvpc") {
        for m in containers
            .iter()
            .flat_map(|c| c.port_mappings.iter().flatten())
        {
            let Some(port) = m
                .host_port
                .filter(|p| *p > 0)
                .and_then(|p| u16::try_from(p).ok())
            else {
                continue;
            };
            if m.protocol.as_deref() == Some("udp") {
                r.udp_ports.push(port);
            } else {
                r.tcp_ports.push(port);
            }
        }
    }
    r
}

/// Plans and commits a batch of RunTasks waiting in one cluster's lane (see
/// `placement.rs`), answering each; a batch that loses a compare is planned again on the
/// store's current state.
fn place_batch(
    store: &dyn Store,
    lane: &LaneContext,
    state: &mut Option<LaneState>,
    batch: Vec<Job>,
) {
    for round in 1..=PLACEMENT_ROUNDS {
        let attempt = try_place_batch(store, lane, state, &batch);
        let retry = match attempt {
            Ok(Attempt::Committed(outcomes)) => {
                for (job, outcome) in batch.into_iter().zip(outcomes) {
                    job.answer(outcome);
                }
                return;
            }
            Ok(Attempt::Lost(touched)) => restore_slots(store, lane, state, &touched),
            Ok(Attempt::Disagreed) => {
                *state = None;
                Ok(())
            }
            Err(e) => Err(e),
        };
        match retry {
            Ok(()) if round < PLACEMENT_ROUNDS => {}
            Ok(()) => {
                *state = None;
                for job in batch {
                    job.answer(Err(EcsError::Server(
                        "The cluster's container instances kept changing while tasks were being placed; try again.".into(),
                    )));
                }
                return;
            }
            Err(e) => {
                *state = None;
                let message = e.to_string();
                let mut first = Some(e);
                for job in batch {
                    job.answer(Err(first
                        .take()
                        .unwrap_or_else(|| EcsError::Server(message.clone()))));
                }
                return;
            }
        }
    }
}

/// One attempt at a batch: plan every job on the lane's placer, reserve on the lane's
/// instance records (re-checking each fit there), and commit tasks, markers, client
/// tokens and the changed instances in one transaction guarded by the revision each
/// changed instance was read at.
fn try_place_batch(
    store: &dyn Store,
    lane: &LaneContext,
    state: &mut Option<LaneState>,
    batch: &[Job],
) -> Result<Attempt> {
    let scope = &lane.scope;
    let lane_state = lane.current(store, state)?;
    // Slot → the revision it was read at, for every instance this batch changes.
    let mut touched: BTreeMap<usize, u64> = BTreeMap::new();
    let mut ops = Vec::new();
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut compares = Vec::new();
    let mut addresses = AddressBook::default();
    for job in batch {
        let PlacementJob {
            cluster,
            td,
            req,
            group,
            need,
            request,
            launch,
            subnets,
        } = &job.input;
        let fargate = matches!(launch, crate::fargate::Launch::Fargate { .. });
        if lane_state.slots.is_empty() && !fargate {
            outcomes.push(Err(EcsError::InvalidParameter(
                "No Container Instances were found in your cluster.".into(),
            )));
            continue;
        }
        if !subnets.is_empty() && addresses.free(store, subnets)? < request.count as usize {
            outcomes.push(Err(no_free_addresses(subnets)));
            continue;
        }
        let plan = lane_state.placer.place(request);
        let failures = if fargate {
            // The pool is not the user's: no instance ARNs, one failure per task not
            // placed, with Fargate's reason.
            let unplaced = (request.count as usize).saturating_sub(plan.placements.len());
            vec![(String::new(), crate::fargate::NO_CAPACITY.to_string()); unplaced]
        } else {
            plan.failures
                .iter()
                .map(|f| (f.arn.clone(), f.reason.as_str().to_string()))
                .collect()
        };
        let mut outcome = RunTaskOutcome {
            tasks: Vec::with_capacity(plan.placements.len()),
            failures,
        };
        for (i, placement) in plan.placements.iter().enumerate() {
            let slot = &mut lane_state.slots[placement.instance];
            touched
                .entry(placement.instance)
                .or_insert(slot.mod_revision);
            // The applier's re-check, on the record that will be written.
            let one = berth_scheduler::TaskRequest {
                count: 1,
                ..request.clone()
            };
            if !fits(&slot.instance, need, &one) {
                // The placer and the records disagree: rebuild both from the store.
                return Ok(Attempt::Disagreed);
            }
            reserve(&mut slot.instance, need, group);
            let launch = TaskLaunch::nth(&job.input.launch, i);
            let mut task = new_task(scope, cluster, &slot.instance, td, req, group, need, launch);
            if !subnets.is_empty() {
                // Counted free above, so there is one.
                let assignment = addresses
                    .take(store, subnets)?
                    .ok_or_else(|| no_free_addresses(subnets))?;
                claim_address(scope, &mut task, &assignment, &mut compares, &mut ops);
            }
            ops.extend(new_task_ops(scope, cluster, &task));
            outcome.tasks.push(task);
        }
        if let Some(token) = &req.client_token {
            let ids: Vec<&str> = outcome.tasks.iter().map(|t| t.id.as_str()).collect();
            ops.push(Op::put(
                client_token_key(scope, cluster, token),
                encode(&ids),
            ));
        }
        outcomes.push(Ok(outcome));
    }
    if ops.is_empty() {
        return Ok(Attempt::Committed(outcomes));
    }
    for (&i, &revision) in &touched {
        let slot = &lane_state.slots[i];
        compares.push(Compare::ModRevision(slot.key.clone(), revision));
        ops.push(Op::put(slot.key.clone(), encode(&slot.instance)));
    }
    match store.txn(&compares, &ops)? {
        TxnOutcome::Committed(revision) => {
            for &i in touched.keys() {
                lane_state.slots[i].mod_revision = revision;
            }
            Ok(Attempt::Committed(outcomes))
        }
        TxnOutcome::Conflict => Ok(Attempt::Lost(touched.into_keys().collect())),
    }
}

fn no_free_addresses(subnets: &[Subnet]) -> EcsError {
    let ids: Vec<&str> = subnets.iter().map(|s| s.id.as_str()).collect();
    EcsError::InvalidParameter(format!(
        "The subnets [{}] have no free IP addresses left for the task's elastic network interface.",
        ids.join(", ")
    ))
}

/// Gives `task` the address `assignment` and adds its claim (the address key, compared
/// absent) to the transaction creating the task.
fn claim_address(
    scope: &Scope,
    task: &mut Task,
    assignment: &Assignment,
    compares: &mut Vec<Compare>,
    ops: &mut Vec<Op>,
) {
    let (compare, op) = assignment.claim(&task.arn(scope));
    compares.push(compare);
    ops.push(op);
    task.attach(eni_attachment(scope, &task.id, assignment));
}

/// How one attempt at a batch ended.
enum Attempt {
    /// Written; each job's answer.
    Committed(Vec<Result<RunTaskOutcome>>),
    /// Another writer changed one of these slots' instances first (or took one of the
    /// addresses it picked); nothing was written.
    Lost(Vec<usize>),
    /// The placer's view and an instance record disagreed; nothing was written.
    Disagreed,
}

/// After a lost compare: only the slots the batch reserved on were changed in memory, so
/// those are read again from the store (their placement views with them) and the rest of
/// the lane stays as it is. An instance that is gone rebuilds the lane.
fn restore_slots(
    store: &dyn Store,
    lane: &LaneContext,
    state: &mut Option<LaneState>,
    touched: &[usize],
) -> Result<()> {
    let Some(lane_state) = state.as_mut() else {
        return Ok(());
    };
    for &i in touched {
        let key = lane_state.slots[i].key.clone();
        match store.get(&key)? {
            Some(kv) => lane_state.replace_slot(i, &lane.scope, kv)?,
            None => {
                *state = None;
                return Ok(());
            }
        }
    }
    Ok(())
}

fn random_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// RunTask's answer, now or once its cluster's placement lane has committed it.
pub enum RunTaskPending {
    Ready(Result<RunTaskOutcome>),
    Waiting(tokio::sync::oneshot::Receiver<Result<RunTaskOutcome>>),
}

impl RunTaskPending {
    /// Waits without holding a thread.
    pub async fn outcome(self) -> Result<RunTaskOutcome> {
        match self {
            RunTaskPending::Ready(r) => r,
            RunTaskPending::Waiting(rx) => rx.await.unwrap_or_else(|_| Err(lane_gone())),
        }
    }

    /// Waits, blocking the thread (never on an async worker).
    pub fn wait(self) -> Result<RunTaskOutcome> {
        match self {
            RunTaskPending::Ready(r) => r,
            RunTaskPending::Waiting(rx) => rx.blocking_recv().unwrap_or_else(|_| Err(lane_gone())),
        }
    }
}

fn lane_gone() -> EcsError {
    EcsError::Server("The placement lane stopped before answering.".into())
}

/// A RunTask as its cluster's lane plans it.
pub(crate) struct PlacementJob {
    cluster: String,
    td: Arc<TaskDefinition>,
    req: RunTask,
    group: String,
    need: Reservation,
    request: berth_scheduler::TaskRequest,
    launch: crate::fargate::Launch,
    /// awsvpc: the subnets to take the task's address from, in order; empty otherwise.
    subnets: Vec<Subnet>,
}

/// Whether a task needing `need` still fits on the stored record `instance`: the
/// applier's re-check, on the record itself rather than on the placer's view of it.
fn fits(
    instance: &ContainerInstance,
    need: &Reservation,
    one: &berth_scheduler::TaskRequest,
) -> bool {
    instance.remaining.cpu >= need.cpu
        && instance.remaining.memory >= need.memory
        && need
            .tcp_ports
            .iter()
            .all(|p| !instance.remaining.ports.contains(p))
        && need
            .udp_ports
            .iter()
            .all(|p| !instance.remaining.ports_udp.contains(p))
        && !(one
            .placement_constraints
            .iter()
            .any(|c| matches!(c, berth_scheduler::PlacementConstraint::DistinctInstance))
            && instance.task_groups.get(&one.group).is_some_and(|n| *n > 0))
}

/// Reserves a task's resources on its instance record.
fn reserve(instance: &mut ContainerInstance, need: &Reservation, group: &str) {
    instance.remaining.cpu -= need.cpu;
    instance.remaining.memory -= need.memory;
    instance
        .remaining
        .ports
        .extend(need.tcp_ports.iter().copied());
    instance
        .remaining
        .ports_udp
        .extend(need.udp_ports.iter().copied());
    *instance.task_groups.entry(group.to_string()).or_default() += 1;
    instance.version += 1;
}

/// Gives back what a stopped task held on its instance record.
fn release(instance: &mut ContainerInstance, task: &Task) {
    if let Some(n) = instance.task_groups.get_mut(&task.group) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            instance.task_groups.remove(&task.group);
        }
    }
    let r = &task.reservation;
    instance.remaining.cpu += r.cpu;
    instance.remaining.memory += r.memory;
    for p in &r.tcp_ports {
        instance.remaining.ports.remove(p);
    }
    for p in &r.udp_ports {
        instance.remaining.ports_udp.remove(p);
    }
    // Ports reserved at registration stay reserved.
    let registered = instance.registered.clone();
    instance.remaining.ports.extend(registered.ports);
    instance.remaining.ports_udp.extend(registered.ports_udp);
    instance.version += 1;
}

/// How one new task is launched: on its cluster's own instance (EC2) or on the Fargate
/// pool, by a capacity provider or not.
#[derive(Debug, Clone, Default)]
pub(crate) struct TaskLaunch {
    fargate: bool,
    provider: Option<String>,
}

impl TaskLaunch {
    /// The launch of the `i`th task of a RunTask launched as `launch`.
    fn nth(launch: &crate::fargate::Launch, i: usize) -> TaskLaunch {
        match launch {
            crate::fargate::Launch::Ec2 => TaskLaunch::default(),
            crate::fargate::Launch::Fargate { providers } => TaskLaunch {
                fargate: true,
                provider: providers.get(i).cloned().flatten(),
            },
        }
    }
}

/// A new task of `td` on `instance`, PROVISIONING.
#[allow(clippy::too_many_arguments)]
fn new_task(
    scope: &Scope,
    cluster: &str,
    instance: &ContainerInstance,
    td: &TaskDefinition,
    req: &RunTask,
    group: &str,
    need: &Reservation,
    launch: TaskLaunch,
) -> Task {
    let id = random_id();
    let task_arn = scope.arn("ecs", &format!("task/{cluster}/{id}"));
    Task {
        id: id.clone(),
        cluster: cluster.to_string(),
        task_definition_arn: td.task_definition_arn.clone().unwrap_or_default(),
        container_instance_id: Some(instance.id.clone()),
        launch_type: if launch.fargate { "FARGATE" } else { "EC2" }.into(),
        desired_status: "RUNNING".into(),
        last_status: "PROVISIONING".into(),
        created_at: now_epoch(),
        pull_started_at: None,
        pull_stopped_at: None,
        started_at: None,
        stopping_at: None,
        stopped_at: None,
        execution_stopped_at: None,
        started_by: req.started_by.clone(),
        group: group.to_string(),
        stop_code: None,
        stopped_reason: None,
        tags: req.tags.clone(),
        overrides: req.overrides.clone(),
        cpu: need.cpu.to_string(),
        memory: need.memory.to_string(),
        containers: td
            .container_definitions
            .iter()
            .flatten()
            .map(|c| TaskContainer {
                container_arn: scope
                    .arn("ecs", &format!("container/{cluster}/{id}/{}", random_id())),
                task_arn: task_arn.clone(),
                name: c.name.clone().unwrap_or_default(),
                image: c.image.clone().unwrap_or_default(),
                last_status: "PENDING".into(),
                exit_code: None,
                reason: None,
                network_bindings: Vec::new(),
                cpu: c.cpu.map(|v| v.to_string()),
                memory: c.memory.map(|v| v.to_string()),
                memory_reservation: c.memory_reservation.map(|v| v.to_string()),
                runtime_id: None,
                health_status: c.health_check.as_ref().map(|_| "UNKNOWN".to_string()),
                network_interfaces: Vec::new(),
            })
            .collect(),
        version: 1,
        reservation: need.clone(),
        availability_zone: instance
            .attributes
            .iter()
            .find(|a| a.name == "ecs.availability-zone")
            .and_then(|a| a.value.clone()),
        health_status: Some("UNKNOWN".into()),
        capacity_cluster: launch
            .fargate
            .then(|| crate::fargate::POOL_CLUSTER.to_string()),
        platform_version: launch
            .fargate
            .then(|| crate::fargate::PLATFORM_VERSION.to_string()),
        capacity_provider_name: launch.provider,
        ephemeral_storage_gib: launch.fargate.then(|| {
            td.ephemeral_storage
                .as_ref()
                .and_then(|e| e.size_in_gib)
                .unwrap_or(crate::fargate::DEFAULT_EPHEMERAL_STORAGE_GIB)
        }),
        attachments: Vec::new(),
    }
}

impl Ecs {
    /// RunTask / StartTask, waiting for the outcome (blocks: call it from a thread that may
    /// block, not from an async worker; async callers use [`Ecs::start_run_task`]).
    pub fn run_task(&self, scope: &Scope, req: RunTask) -> Result<RunTaskOutcome> {
        self.start_run_task(scope, req).wait()
    }

    /// RunTask / StartTask: validates and reads synchronously, then either answers at once
    /// (errors, an idempotent replay, StartTask's direct commits) or queues the request on
    /// its cluster's placement lane and returns the pending answer.
    pub fn start_run_task(&self, scope: &Scope, req: RunTask) -> RunTaskPending {
        match self.prepare_run_task(scope, req) {
            Ok(pending) => pending,
            Err(e) => RunTaskPending::Ready(Err(e)),
        }
    }

    fn prepare_run_task(&self, scope: &Scope, req: RunTask) -> Result<RunTaskPending> {
        crate::clusters::refuse_the_pool(scope, req.cluster.as_deref())?;
        let cluster = self.active_cluster(scope, req.cluster.as_deref())?;
        if !(1..=10).contains(&req.count) {
            return Err(EcsError::InvalidParameter(
                "count must be between 1 and 10.".into(),
            ));
        }
        // StartTask names its instances: always the EC2 launch type, whatever the
        // cluster's default capacity provider strategy says.
        let launch = if req.container_instances.is_some() {
            crate::fargate::Launch::Ec2
        } else {
            crate::fargate::resolve_launch(
                &cluster,
                req.launch_type.as_deref(),
                req.capacity_provider_strategy.as_deref(),
                req.platform_version.as_deref(),
                req.count,
            )?
        };
        let fargate = matches!(launch, crate::fargate::Launch::Fargate { .. });
        let launch_type = if fargate { "FARGATE" } else { "EC2" }.to_string();
        if fargate && (!req.placement_constraints.is_empty() || !req.placement_strategy.is_empty())
        {
            return Err(EcsError::InvalidParameter(
                "Task placement constraints and strategies are not supported for tasks using the Fargate launch type.".into(),
            ));
        }
        let stored = self.task_definition(scope, &req.task_definition)?;
        let td = stored.task_definition;
        if td.status.as_deref() != Some("ACTIVE") {
            return Err(EcsError::Client("TaskDefinition is inactive".into()));
        }
        if !td
            .compatibilities
            .iter()
            .flatten()
            .any(|c| c == &launch_type)
        {
            return Err(EcsError::InvalidParameter(format!(
                "Task definition does not support launch_type {launch_type}."
            )));
        }
        let awsvpc = crate::network::check_network_configuration(
            td.network_mode.as_deref(),
            &launch_type,
            req.network_configuration.as_ref(),
        )?;
        if let Some(token) = &req.client_token
            && let Some(kv) = self
                .store
                .get(&client_token_key(scope, &cluster.name, token))?
        {
            // The same request again: the tasks it started.
            let ids: Vec<String> = decode(&kv)?;
            let tasks = ids
                .iter()
                .filter_map(|id| self.task(scope, &cluster.name, id).transpose())
                .collect::<Result<Vec<_>>>()?;
            return Ok(RunTaskPending::Ready(Ok(RunTaskOutcome {
                tasks,
                failures: Vec::new(),
            })));
        }
        let family = td.family.clone().unwrap_or_default();
        let group = req
            .group
            .clone()
            .unwrap_or_else(|| format!("family:{family}"));
        let need = requirements(&td, &SizeOverrides::of(req.overrides.as_ref()));

        let mut constraints = Vec::new();
        if !fargate {
            for c in td.placement_constraints.iter().flatten() {
                constraints.push((c.r#type.clone().unwrap_or_default(), c.expression.clone()));
            }
        }
        constraints.extend(req.placement_constraints.iter().cloned());
        // Fargate spreads a request's tasks over the pool's hosts.
        let strategy = if fargate {
            vec![("spread".to_string(), Some("instanceId".to_string()))]
        } else {
            req.placement_strategy.clone()
        };
        let parse = |e: berth_scheduler::PlacementError| EcsError::InvalidParameter(e.to_string());
        let request = berth_scheduler::TaskRequest {
            cpu: need.cpu.max(0) as u64,
            memory: need.memory.max(0) as u64,
            tcp_ports: need.tcp_ports.clone(),
            udp_ports: need.udp_ports.clone(),
            group: group.clone(),
            count: req.count,
            placement_constraints: constraints
                .iter()
                .map(|(t, e)| berth_scheduler::parse_placement_constraint(t, e.as_deref()))
                .collect::<std::result::Result<_, _>>()
                .map_err(parse)?,
            placement_strategy: strategy
                .iter()
                .map(|(t, f)| berth_scheduler::parse_placement_strategy(t, f.as_deref()))
                .collect::<std::result::Result<_, _>>()
                .map_err(parse)?,
        };

        // A subnet's /24 is chosen the first time its id is used (one small transaction).
        let subnets = awsvpc
            .iter()
            .flat_map(|vpc| vpc.subnets.iter())
            .map(|id| self.ensure_subnet(id))
            .collect::<Result<Vec<_>>>()?;
        let td = Arc::new(td);
        match req.container_instances.clone() {
            Some(wanted) => Ok(RunTaskPending::Ready(self.start_task_on(
                scope,
                &cluster.name,
                &wanted,
                &td,
                &req,
                &group,
                &need,
                &request,
                &subnets,
            ))),
            None => {
                let capacity = if fargate {
                    crate::fargate::POOL_CLUSTER
                } else {
                    cluster.name.as_str()
                };
                let lane = self.lanes.lane(
                    &self.store,
                    scope,
                    &crate::instances::instances_prefix(scope, capacity),
                    place_batch,
                );
                let job = PlacementJob {
                    cluster: cluster.name.clone(),
                    td,
                    req,
                    group,
                    need,
                    request,
                    launch,
                    subnets,
                };
                Ok(RunTaskPending::Waiting(lane.submit(job)))
            }
        }
    }
    /// StartTask: one task on each named instance, each committed with a re-check of its
    /// fit under compare-and-swap (no placement engine).
    #[allow(clippy::too_many_arguments)]
    fn start_task_on(
        &self,
        scope: &Scope,
        cluster: &str,
        wanted: &[String],
        td: &TaskDefinition,
        req: &RunTask,
        group: &str,
        need: &Reservation,
        request: &berth_scheduler::TaskRequest,
        subnets: &[Subnet],
    ) -> Result<RunTaskOutcome> {
        let mut outcome = RunTaskOutcome::default();
        for name in wanted {
            let id = crate::instances::instance_id(scope, cluster, name)?;
            let arn = scope.arn("ecs", &format!("container-instance/{cluster}/{id}"));
            let placed =
                self.apply_placement(scope, cluster, &id, td, req, group, need, request, subnets)?;
            match placed {
                Ok(task) => outcome.tasks.push(task),
                Err(reason) => outcome.failures.push((arn, reason)),
            }
        }
        if let Some(token) = &req.client_token {
            let ids: Vec<&str> = outcome.tasks.iter().map(|t| t.id.as_str()).collect();
            self.store
                .put(&client_token_key(scope, cluster, token), &encode(&ids))?;
        }
        Ok(outcome)
    }

    /// Commit one task on a named instance: re-read the instance, re-check the fit,
    /// reserve its resources and create the task, all in one compare-and-swap
    /// transaction. The inner error is a failure reason.
    #[allow(clippy::too_many_arguments)]
    fn apply_placement(
        &self,
        scope: &Scope,
        cluster: &str,
        instance_id: &str,
        td: &TaskDefinition,
        req: &RunTask,
        group: &str,
        need: &Reservation,
        request: &berth_scheduler::TaskRequest,
        subnets: &[Subnet],
    ) -> Result<std::result::Result<Task, String>> {
        let ikey = crate::instances::instance_key(scope, cluster, instance_id);
        let one = berth_scheduler::TaskRequest {
            count: 1,
            ..request.clone()
        };
        loop {
            let Some(kv) = self.store.get(&ikey)? else {
                return Ok(Err("MISSING".into()));
            };
            let mut instance: ContainerInstance = decode(&kv)?;
            if let Err(reason) = berth_scheduler::check_fit(&instance.placement_view(scope), &one) {
                return Ok(Err(reason.as_str().to_string()));
            }
            reserve(&mut instance, need, group);
            let mut task = new_task(
                scope,
                cluster,
                &instance,
                td,
                req,
                group,
                need,
                TaskLaunch::default(),
            );
            let mut ops = vec![Op::put(ikey.clone(), encode(&instance))];
            let mut compares = vec![Compare::ModRevision(ikey.clone(), kv.mod_revision)];
            if !subnets.is_empty() {
                let Some(assignment) = AddressBook::default().take(&*self.store, subnets)? else {
                    return Err(no_free_addresses(subnets));
                };
                claim_address(scope, &mut task, &assignment, &mut compares, &mut ops);
            }
            ops.extend(new_task_ops(scope, cluster, &task));
            if self.store.txn(&compares, &ops)?.is_committed() {
                return Ok(Ok(task));
            }
        }
    }

    pub fn task(&self, scope: &Scope, cluster: &str, id: &str) -> Result<Option<Task>> {
        self.store
            .get(&task_key(scope, cluster, id))?
            .map(|kv| decode(&kv))
            .transpose()
    }

    /// The task id in an id or a task ARN of this scope and cluster.
    pub fn task_id(&self, scope: &Scope, cluster: &str, id_or_arn: &str) -> Result<String> {
        if id_or_arn.starts_with("arn:") {
            let rest = id_or_arn
                .strip_prefix(&scope.arn("ecs", "task/"))
                .ok_or_else(|| {
                    EcsError::InvalidParameter(format!("Invalid task ARN '{id_or_arn}'."))
                })?;
            let (c, id) = rest.rsplit_once('/').unwrap_or((cluster, rest));
            if c != cluster {
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
        let from_arn = id_or_arn
            .strip_prefix(&scope.arn("ecs", "task/"))
            .and_then(|rest| rest.rsplit_once('/'))
            .map(|(c, _)| c);
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

    /// Every task of a cluster, stopped ones included, in id order.
    pub fn tasks(&self, scope: &Scope, cluster: Option<&str>) -> Result<Vec<Task>> {
        let cluster = self.active_cluster(scope, cluster)?;
        self.store
            .range(&format!("{}task/{}/", base(scope), cluster.name), None, 0)?
            .iter()
            .map(decode)
            .collect()
    }

    /// One page of a cluster's tasks that pass `keep`, in id order, starting after the
    /// task id `after`; with the id to continue after when more may follow (ListTasks).
    /// Reads the store in chunks, so a page costs what it scans, not the whole cluster.
    pub fn task_page(
        &self,
        scope: &Scope,
        cluster: &str,
        after: Option<&str>,
        max: usize,
        keep: impl Fn(&Task) -> bool,
    ) -> Result<(Vec<Task>, Option<String>)> {
        let prefix = format!("{}task/{cluster}/", base(scope));
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
                    next = page.last().map(|t: &Task| t.id.clone());
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
            format!("{}task/", base(scope))
        } else {
            format!("{}task/{cluster}/", base(scope))
        };
        Ok(self.store.watch(&prefix, revision)?)
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
        crate::scan(&*self.store, "ecs/", None, |kv| {
            let Some((scope, rest)) = crate::agents::split_key(&kv.key) else {
                return Ok(true);
            };
            if !rest.starts_with("task/") {
                return Ok(true);
            }
            let task: Task = decode(kv)?;
            if task.is_live() && task.container_instance_id.is_some() {
                let (key, value) = index_entry(&scope, &task, &task.last_status);
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
            match parse_index_value(&kv.value).0 {
                "RUNNING" => running += 1,
                "PROVISIONING" | "PENDING" | "ACTIVATING" => pending += 1,
                _ => {}
            }
            Ok(true)
        })?;
        Ok((running, pending))
    }

    /// StopTask: the task is to stop. A task no agent has picked up yet (still
    /// PROVISIONING) stops at once; otherwise its agent stops it and reports STOPPED.
    pub fn stop_task(
        &self,
        scope: &Scope,
        cluster: Option<&str>,
        id_or_arn: &str,
        reason: Option<String>,
    ) -> Result<Task> {
        self.stop_task_as(scope, cluster, id_or_arn, reason, "UserInitiated")
    }

    /// StopTask with ECS's `stopCode` for who asked (`UserInitiated`,
    /// `ServiceSchedulerInitiated`).
    pub fn stop_task_as(
        &self,
        scope: &Scope,
        cluster: Option<&str>,
        id_or_arn: &str,
        reason: Option<String>,
        stop_code: &str,
    ) -> Result<Task> {
        let cluster = self.active_cluster(scope, cluster)?;
        let id = self.task_id(scope, &cluster.name, id_or_arn)?;
        self.change_task(scope, &cluster.name, &id, |t| {
            if t.desired_status != "STOPPED" {
                t.desired_status = "STOPPED".into();
                t.stopping_at = Some(now_epoch());
                t.stop_code = Some(stop_code.into());
                t.stopped_reason = Some(
                    reason
                        .clone()
                        .unwrap_or_else(|| "Task stopped by user".into()),
                );
            }
            if t.last_status == "PROVISIONING" {
                Some("STOPPED")
            } else {
                None
            }
        })
    }

    /// SubmitTaskStateChange, the agent's report of a task's new status.
    pub fn submit_task_state_change(
        &self,
        scope: &Scope,
        cluster: Option<&str>,
        change: TaskStateChange,
    ) -> Result<Task> {
        let TaskStateChange {
            task: id_or_arn,
            status,
            reason,
            pull_started_at,
            pull_stopped_at,
            execution_stopped_at,
            containers,
            attachments,
        } = change;
        let (id_or_arn, status) = (id_or_arn.as_str(), status.as_str());
        if !matches!(
            status,
            "PENDING" | "ACTIVATING" | "RUNNING" | "DEACTIVATING" | "STOPPING" | "STOPPED"
        ) {
            return Err(EcsError::InvalidParameter(format!(
                "Invalid task status '{status}'."
            )));
        }
        let (cluster, id) = self.reported_task(scope, cluster, id_or_arn)?;
        let status = status.to_string();
        self.change_task(scope, &cluster.name, &id, |t| {
            if pull_started_at.is_some() {
                t.pull_started_at = pull_started_at;
            }
            if pull_stopped_at.is_some() {
                t.pull_stopped_at = pull_stopped_at;
            }
            if execution_stopped_at.is_some() {
                t.execution_stopped_at = execution_stopped_at;
            }
            for c in &containers {
                c.apply(t);
            }
            for (arn, status) in &attachments {
                if let Some(a) = t.attachments.iter_mut().find(|a| &a.arn(scope) == arn) {
                    a.status = status.clone();
                }
            }
            if status == "STOPPED" && t.stopped_reason.is_none() {
                t.stopped_reason = reason.clone();
                // ECS's codes: a task none of whose containers ever ran failed to start
                // (an image not pulled, a container not created or started…). One whose
                // container ran and exited is EssentialContainerExited even if it exited
                // before the agent saw the task RUNNING (the agent then reports STOPPED
                // only, with the exit code).
                let ran =
                    t.started_at.is_some() || t.containers.iter().any(|c| c.exit_code.is_some());
                let code = if ran {
                    "EssentialContainerExited"
                } else {
                    "TaskFailedToStart"
                };
                t.stop_code.get_or_insert_with(|| code.into());
            }
            Some(status.as_str()).filter(|_| t.last_status != "STOPPED")
        })
    }

    /// SubmitContainerStateChange: one container's status, runtime id, exit code and
    /// bindings.
    pub fn submit_container_state_change(
        &self,
        scope: &Scope,
        cluster: Option<&str>,
        id_or_arn: &str,
        change: ContainerChange,
    ) -> Result<Task> {
        let (cluster, id) = self.reported_task(scope, cluster, id_or_arn)?;
        if self
            .task(scope, &cluster.name, &id)?
            .is_some_and(|t| !t.containers.iter().any(|c| c.name == change.name))
        {
            return Err(EcsError::InvalidParameter(format!(
                "The task has no container named '{}'.",
                change.name
            )));
        }
        self.change_task(scope, &cluster.name, &id, |t| {
            change.apply(t);
            None
        })
    }

    /// The agent's health report for a task's containers (telemetry): each container's
    /// status, and the task's as ECS derives it.
    pub fn record_task_health(
        &self,
        scope: &Scope,
        cluster: &str,
        task_arn: &str,
        containers: &[(String, String)],
    ) -> Result<()> {
        let (cluster, id) = self.reported_task(scope, Some(cluster), task_arn)?;
        let cluster = cluster.name.as_str();
        let essential: Vec<String> = match self.task(scope, cluster, &id)? {
            None => return Ok(()),
            Some(task) => {
                let td = self.task_definition(scope, &task.task_definition_arn)?;
                td.task_definition
                    .container_definitions
                    .iter()
                    .flatten()
                    .filter(|c| c.essential.unwrap_or(true) && c.health_check.is_some())
                    .filter_map(|c| c.name.clone())
                    .collect()
            }
        };
        self.change_task(scope, cluster, &id, |t| {
            for (name, status) in containers {
                if let Some(c) = t.containers.iter_mut().find(|c| &c.name == name) {
                    c.health_status = Some(status.clone());
                }
            }
            let of = |name: &String| {
                t.containers
                    .iter()
                    .find(|c| &c.name == name)
                    .and_then(|c| c.health_status.clone())
            };
            let statuses: Vec<Option<String>> = essential.iter().map(of).collect();
            t.health_status = Some(
                if statuses.iter().any(|s| s.as_deref() == Some("UNHEALTHY")) {
                    "UNHEALTHY"
                } else if !statuses.is_empty()
                    && statuses.iter().all(|s| s.as_deref() == Some("HEALTHY"))
                {
                    "HEALTHY"
                } else {
                    "UNKNOWN"
                }
                .to_string(),
            );
            None
        })
        .map(|_| ())
    }

    /// Apply `change` to a task; when it returns a new last status, move the task there with
    /// its timestamps, live markers and (on STOPPED) the instance's resources given back,
    /// in one transaction.
    fn change_task<'a>(
        &self,
        scope: &Scope,
        cluster: &str,
        id: &str,
        change: impl Fn(&mut Task) -> Option<&'a str>,
    ) -> Result<Task> {
        let tkey = task_key(scope, cluster, id);
        loop {
            let Some(kv) = self.store.get(&tkey)? else {
                return Err(EcsError::InvalidParameter(
                    "The referenced task was not found.".into(),
                ));
            };
            let mut task: Task = decode(&kv)?;
            let old_status = task.last_status.clone();
            let next = change(&mut task);
            let mut compares = vec![Compare::ModRevision(tkey.clone(), kv.mod_revision)];
            let mut ops = Vec::new();
            if let Some(next) = next.filter(|n| *n != old_status) {
                let now = now_epoch();
                task.last_status = next.to_string();
                match next {
                    "RUNNING" => {
                        task.started_at.get_or_insert(now);
                        // Containers the agent has not reported on run with the task; one
                        // reported already (a finished init container) keeps its status.
                        for c in task
                            .containers
                            .iter_mut()
                            .filter(|c| c.last_status == "PENDING")
                        {
                            c.last_status = "RUNNING".into();
                        }
                        // Its containers run in the interface's namespace, so it is there.
                        for a in &mut task.attachments {
                            if a.status == "PRECREATED" || a.status == "ATTACHING" {
                                a.status = "ATTACHED".into();
                            }
                        }
                    }
                    "STOPPED" => {
                        task.stopped_at = Some(now);
                        task.execution_stopped_at.get_or_insert(now);
                        task.desired_status = "STOPPED".into();
                        for c in &mut task.containers {
                            c.last_status = "STOPPED".into();
                        }
                        // The interface goes with the task, and its address is free again.
                        ops.extend(release_ops(&task.attachments));
                        for a in &mut task.attachments {
                            a.status = "DELETED".into();
                        }
                    }
                    _ => {}
                }
                let was_running = old_status == "RUNNING";
                let is_running = next == "RUNNING";
                if next == "STOPPED" || was_running != is_running {
                    ops.push(Op::delete(marker_key(scope, &old_status, cluster, id)));
                }
                if next != "STOPPED" {
                    ops.push(Op::put(
                        marker_key(scope, next, cluster, id),
                        MARKER.to_vec(),
                    ));
                }
                // The instance's live-task index and, when the task stops, the
                // resources it held there. A status change short of STOPPED leaves the
                // instance record alone (placement lanes compare on it).
                if let Some(iid) = &task.container_instance_id {
                    let (entry, value) = index_entry(scope, &task, next);
                    if next == "STOPPED" {
                        ops.push(Op::delete(entry));
                        let ikey =
                            crate::instances::instance_key(scope, task.instance_cluster(), iid);
                        if let Some(ikv) = self.store.get(&ikey)? {
                            let mut instance: ContainerInstance = decode(&ikv)?;
                            release(&mut instance, &task);
                            compares.push(Compare::ModRevision(ikey.clone(), ikv.mod_revision));
                            ops.push(Op::put(ikey, encode(&instance)));
                        }
                    } else {
                        ops.push(Op::put(entry, value));
                    }
                }
            }
            task.version += 1;
            ops.push(Op::put(tkey.clone(), encode(&task)));
            if self.store.txn(&compares, &ops)?.is_committed() {
                return Ok(task);
            }
        }
    }
}

/// How often a lane plans a batch again after losing a compare (another writer changed one
/// of its instances: a task stopping there, a concurrent StartTask) before answering
/// ServerException. Each round re-reads only the instances the batch touched.
const PLACEMENT_ROUNDS: u32 = 12;

pub(crate) fn rand_seed() -> u64 {
    let now = time::OffsetDateTime::now_utc();
    now.unix_timestamp_nanos() as u64
}

impl Ecs {
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
        crate::scan(&*self.store, "ecs/", None, |kv| {
            let Some((_, rest)) = crate::agents::split_key(&kv.key) else {
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
            if task.last_status == "STOPPED" && task.stopped_at.is_some_and(|t| t < cutoff) {
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
