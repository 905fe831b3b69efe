//! RunTask and StartTask: what a task needs (its definition's sizes and RunTask's overrides),
//! placement batches on a cluster's lane, and the applier that re-checks every instance's
//! fit under compare-and-swap before committing the batch.

use berth_model::Scope;
use berth_model::ecs::EcsArn;
use berth_model::task_definition::TaskDefinition;
use std::collections::BTreeMap;
use std::sync::Arc;

use berth_store::{Compare, Op, Store, TxnOutcome};

use crate::instances::ContainerInstance;
use crate::network::{AddressBook, Assignment, Subnet, eni_attachment};
use crate::placement::{Job, LaneContext, LaneState};
use crate::{Ecs, EcsError, Result, decode, encode, now_epoch};

use super::*;
use crate::keys::client_token_key;
use berth_model::ecs::{
    ContainerStatus, DesiredStatus, HealthStatus, LaunchType, TaskDefinitionStatus, TaskOverride,
    TaskStatus,
};

pub(super) fn parse_amount(value: Option<&str>) -> i64 {
    value.and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

/// What a task of this definition, with these overrides, needs on an instance: task-level
/// cpu and memory when set, else the containers' sums (a container's memory is its
/// `memoryReservation` when it has one, else its `memory`, as ECS reserves it); fixed host
/// ports of bridge and host network modes.
pub(super) fn requirements(td: &TaskDefinition, overrides: &TaskOverride) -> Reservation {
    let containers = td.container_definitions.clone().unwrap_or_default();
    let sized = |c: &berth_model::task_definition::ContainerDefinition| {
        let o = c.name.as_deref().and_then(|name| overrides.container(name));
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
pub(super) fn place_batch(
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
            Ok(()) if round < PLACEMENT_ROUNDS => backoff(round),
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
pub(super) fn try_place_batch(
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
        // Through an Auto Scaling group provider, what finds no room waits in PROVISIONING
        // for the provider's managed scaling (docs/capacity-providers.md).
        let waits = matches!(launch, crate::fargate::Launch::AutoScaling { .. });
        if lane_state.slots.is_empty() && !fargate && !waits {
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
        } else if waits {
            Vec::new()
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
        let mut created = Vec::with_capacity(request.count as usize);
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
            let task = new_task(
                scope,
                cluster,
                Some(&slot.instance),
                td,
                req,
                group,
                need,
                launch,
            );
            created.push(task);
        }
        let placed = plan.placements.len();
        // What found no room waits (through an Auto Scaling group provider only).
        let waiting = if waits {
            placed..request.count as usize
        } else {
            0..0
        };
        for i in waiting {
            let launch = TaskLaunch::nth(&job.input.launch, i);
            created.push(new_task(scope, cluster, None, td, req, group, need, launch));
        }
        // The placed and the waiting tasks alike: an address each (counted free above, so
        // there is one), and their records.
        for mut task in created {
            if !subnets.is_empty() {
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

pub(super) fn no_free_addresses(subnets: &[Subnet]) -> EcsError {
    let ids: Vec<&str> = subnets.iter().map(|s| s.id.as_str()).collect();
    EcsError::InvalidParameter(format!(
        "The subnets [{}] have no free IP addresses left for the task's elastic network interface.",
        ids.join(", ")
    ))
}

/// Gives `task` the address `assignment` and adds its claim (the address key, compared
/// absent) to the transaction creating the task.
pub(super) fn claim_address(
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
    // An awsvpc task is in its subnet's availability zone.
    if let Some(zone) = &assignment.subnet.availability_zone {
        task.availability_zone = Some(zone.clone());
    }
}

/// How one attempt at a batch ended.
pub(super) enum Attempt {
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
pub(super) fn restore_slots(
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

/// How many of a RunTask's tasks each provider takes, in the order they first appear.
fn per_provider(providers: &[String]) -> Vec<(String, u32)> {
    let mut counts: Vec<(String, u32)> = Vec::new();
    for p in providers {
        match counts.iter_mut().find(|(name, _)| name == p) {
            Some((_, n)) => *n += 1,
            None => counts.push((p.clone(), 1)),
        }
    }
    counts
}

pub(super) fn random_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// RunTask's answer, now or once its cluster's placement lane has committed it.
pub enum RunTaskPending {
    Ready(Result<RunTaskOutcome>),
    Waiting(tokio::sync::oneshot::Receiver<Result<RunTaskOutcome>>),
    /// A RunTask split over several Auto Scaling group capacity providers: one placement
    /// job per provider, answered together.
    Several(SeveralJobs),
}

/// The jobs of a RunTask split over several providers, and its idempotency record: the
/// first job writes its own tasks under the client token, and the merged answer writes
/// every job's, so a retry gets them all.
pub struct SeveralJobs {
    answers: Vec<tokio::sync::oneshot::Receiver<Result<RunTaskOutcome>>>,
    token: Option<(Arc<dyn Store>, String)>,
}

impl SeveralJobs {
    /// The merged answer, with the client token's record of all its tasks written.
    fn merged(
        token: Option<(Arc<dyn Store>, String)>,
        all: Vec<Result<RunTaskOutcome>>,
    ) -> Result<RunTaskOutcome> {
        let merged = merge_outcomes(all)?;
        if let Some((store, key)) = token {
            let ids: Vec<&str> = merged.tasks.iter().map(|t| t.id.as_str()).collect();
            store.put(&key, &encode(&ids))?;
        }
        Ok(merged)
    }
}

impl RunTaskPending {
    /// Waits without holding a thread.
    pub async fn outcome(self) -> Result<RunTaskOutcome> {
        match self {
            RunTaskPending::Ready(r) => r,
            RunTaskPending::Waiting(rx) => rx.await.unwrap_or_else(|_| Err(lane_gone())),
            RunTaskPending::Several(jobs) => {
                let mut all = Vec::with_capacity(jobs.answers.len());
                for rx in jobs.answers {
                    all.push(rx.await.unwrap_or_else(|_| Err(lane_gone())));
                }
                SeveralJobs::merged(jobs.token, all)
            }
        }
    }

    /// Waits, blocking the thread (never on an async worker).
    pub fn wait(self) -> Result<RunTaskOutcome> {
        match self {
            RunTaskPending::Ready(r) => r,
            RunTaskPending::Waiting(rx) => rx.blocking_recv().unwrap_or_else(|_| Err(lane_gone())),
            RunTaskPending::Several(jobs) => SeveralJobs::merged(
                jobs.token,
                jobs.answers
                    .into_iter()
                    .map(|rx| rx.blocking_recv().unwrap_or_else(|_| Err(lane_gone())))
                    .collect(),
            ),
        }
    }
}

/// One answer from the answers of a RunTask's jobs: their tasks and failures together, or
/// the first error when no job placed anything.
fn merge_outcomes(all: Vec<Result<RunTaskOutcome>>) -> Result<RunTaskOutcome> {
    let mut merged = RunTaskOutcome::default();
    let mut first_error = None;
    for outcome in all {
        match outcome {
            Ok(o) => {
                merged.tasks.extend(o.tasks);
                merged.failures.extend(o.failures);
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) if merged.tasks.is_empty() => Err(e),
        _ => Ok(merged),
    }
}

pub(super) fn lane_gone() -> EcsError {
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
pub(super) fn fits(
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
pub(super) fn reserve(instance: &mut ContainerInstance, need: &Reservation, group: &str) {
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

/// The attribute every external instance (an agent run with `ECS_EXTERNAL=true`) registers.
pub const EXTERNAL_ATTRIBUTE: &str = "ecs.capability.external";

/// How one new task is launched: its launch type (EC2 on its cluster's own instances,
/// EXTERNAL on its external ones, FARGATE on the pool) and, on the pool, the capacity
/// provider it was launched by, if any.
#[derive(Debug, Clone)]
pub(crate) struct TaskLaunch {
    launch_type: LaunchType,
    provider: Option<String>,
}

impl Default for TaskLaunch {
    fn default() -> Self {
        TaskLaunch {
            launch_type: LaunchType::Ec2,
            provider: None,
        }
    }
}

impl TaskLaunch {
    /// The launch of the `i`th task of a RunTask launched as `launch`.
    fn nth(launch: &crate::fargate::Launch, i: usize) -> TaskLaunch {
        match launch {
            crate::fargate::Launch::Ec2 => TaskLaunch::default(),
            crate::fargate::Launch::External => TaskLaunch {
                launch_type: LaunchType::External,
                provider: None,
            },
            crate::fargate::Launch::Fargate { providers } => TaskLaunch {
                launch_type: LaunchType::Fargate,
                provider: providers.get(i).cloned().flatten(),
            },
            crate::fargate::Launch::AutoScaling { providers } => TaskLaunch {
                launch_type: LaunchType::Ec2,
                provider: providers.get(i).cloned(),
            },
        }
    }
}

/// A new task of `td` on `instance`, PROVISIONING (without an instance: waiting for its
/// capacity provider's capacity).
#[allow(clippy::too_many_arguments)]
pub(super) fn new_task(
    scope: &Scope,
    cluster: &str,
    instance: Option<&ContainerInstance>,
    td: &TaskDefinition,
    req: &RunTask,
    group: &str,
    need: &Reservation,
    launch: TaskLaunch,
) -> Task {
    let id = random_id();
    let task_arn = EcsArn::task(scope, cluster, &id).into_string();
    let fargate = launch.launch_type == LaunchType::Fargate;
    Task {
        id: id.clone(),
        cluster: cluster.to_string(),
        task_definition_arn: td.task_definition_arn.clone().unwrap_or_default(),
        container_instance_id: instance.map(|i| i.id.clone()),
        launch_type: launch.launch_type,
        desired_status: DesiredStatus::Running,
        last_status: TaskStatus::Provisioning,
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
                container_arn: EcsArn::container(scope, cluster, &id, &random_id()).into_string(),
                task_arn: task_arn.clone(),
                name: c.name.clone().unwrap_or_default(),
                image: c.image.clone().unwrap_or_default(),
                last_status: ContainerStatus::Pending,
                exit_code: None,
                reason: None,
                network_bindings: Vec::new(),
                cpu: c.cpu.map(|v| v.to_string()),
                memory: c.memory.map(|v| v.to_string()),
                memory_reservation: c.memory_reservation.map(|v| v.to_string()),
                runtime_id: None,
                image_digest: None,
                health_status: c.health_check.as_ref().map(|_| HealthStatus::Unknown),
                network_interfaces: Vec::new(),
            })
            .collect(),
        version: 1,
        reservation: need.clone(),
        security_groups: req
            .network_configuration
            .as_ref()
            .and_then(|n| n.awsvpc_configuration.as_ref())
            .map(|v| v.security_groups.clone())
            .unwrap_or_default(),
        availability_zone: instance.and_then(instance_zone),
        health_status: Some(HealthStatus::Unknown),
        capacity_cluster: fargate.then(|| crate::fargate::POOL_CLUSTER.to_string()),
        platform_version: fargate.then(|| crate::fargate::PLATFORM_VERSION.to_string()),
        capacity_provider_name: launch.provider,
        ephemeral_storage_gib: fargate.then(|| {
            td.ephemeral_storage
                .as_ref()
                .and_then(|e| e.size_in_gib)
                .unwrap_or(crate::fargate::DEFAULT_EPHEMERAL_STORAGE_GIB)
        }),
        attachments: Vec::new(),
        protection: None,
        load_balancer_targets: Vec::new(),
        deactivating: None,
        waiting_placement: instance.is_none().then(|| WaitingPlacement {
            constraints: td
                .placement_constraints
                .iter()
                .flatten()
                .map(|c| (c.r#type.clone().unwrap_or_default(), c.expression.clone()))
                .chain(req.placement_constraints.iter().cloned())
                .collect(),
            strategy: req.placement_strategy.clone(),
        }),
    }
}

/// The instance's `ecs.availability-zone` attribute.
pub(super) fn instance_zone(instance: &ContainerInstance) -> Option<String> {
    instance
        .attributes
        .iter()
        .find(|a| a.name == "ecs.availability-zone")
        .and_then(|a| a.value.clone())
}

/// Before planning a lost batch again: nothing after the first loss, then a random pause of
/// up to 0.5 ms × 2^round (at most 64 ms), so that writers colliding on one instance drift
/// apart. It does not settle the lanes of several replicas placing into one cluster: they
/// pick the same best instances and still run out of rounds on 1–2 % of RunTasks under load
/// (bench/replicas, BENCHMARKS.md "Replicas on etcd"); one lane per cluster would.
fn backoff(round: u32) {
    if round < 2 {
        return;
    }
    let ceiling = 500u64 << round.min(7);
    // The clock's low bits are random enough to spread contenders apart.
    let pause = rand_seed() % ceiling;
    std::thread::sleep(std::time::Duration::from_micros(pause));
}

/// How often a lane plans a batch again after losing a compare (another writer changed one
/// of its instances: a task stopping there, a concurrent StartTask) before answering
/// ServerException. Each round re-reads only the instances the batch touched.
pub(super) const PLACEMENT_ROUNDS: u32 = 12;

/// Why StartTask cannot start a task on the instance it names: ECS's `Failure.reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unplaced {
    /// No such registered instance.
    Missing,
    Unfit(berth_scheduler::Reason),
}

impl std::fmt::Display for Unplaced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unplaced::Missing => f.write_str("MISSING"),
            Unplaced::Unfit(reason) => f.write_str(reason.as_str()),
        }
    }
}

pub(crate) fn rand_seed() -> u64 {
    let now = time::OffsetDateTime::now_utc();
    now.unix_timestamp_nanos() as u64
}

impl Ecs {
    /// RunTask / StartTask, waiting for the outcome (blocks: call it from a thread that may
    /// block, not from an async worker; async callers use [`Ecs::queue_run_task`]).
    pub fn run_task(&self, scope: &Scope, req: RunTask) -> Result<RunTaskOutcome> {
        self.queue_run_task(scope, req).wait()
    }

    /// RunTask / StartTask: validates and reads synchronously, then either answers at once
    /// (errors, an idempotent replay, StartTask's direct commits) or queues the request on
    /// its cluster's placement lane and returns the pending answer.
    pub fn queue_run_task(&self, scope: &Scope, req: RunTask) -> RunTaskPending {
        match self.prepare_run_task(scope, req) {
            Ok(pending) => pending,
            Err(e) => RunTaskPending::Ready(Err(e)),
        }
    }

    pub(super) fn prepare_run_task(&self, scope: &Scope, req: RunTask) -> Result<RunTaskPending> {
        // AWS validates the request's shape (enum members) before it looks the cluster up
        // (see the conformance test `an_invalid_launch_type_is_refused_before_the_cluster`).
        if let Some(launch_type) = &req.launch_type {
            LaunchType::parse_member("launchType", launch_type)
                .map_err(EcsError::InvalidParameter)?;
        }
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
        let launch_type = launch.launch_type();
        if fargate && (!req.placement_constraints.is_empty() || !req.placement_strategy.is_empty())
        {
            return Err(EcsError::InvalidParameter(
                "Task placement constraints and strategies are not supported for tasks using the Fargate launch type.".into(),
            ));
        }
        let stored = self.task_definition(scope, &req.task_definition)?;
        let td = stored.task_definition;
        if td.status.unwrap_or(TaskDefinitionStatus::Active) != TaskDefinitionStatus::Active {
            return Err(EcsError::Client("TaskDefinition is inactive".into()));
        }
        if !td
            .compatibilities
            .iter()
            .flatten()
            .any(|c| c == launch_type.as_str())
        {
            return Err(EcsError::InvalidParameter(format!(
                "Task definition does not support launch_type {launch_type}."
            )));
        }
        let awsvpc = crate::network::check_network_configuration(
            td.network_mode.as_deref(),
            launch_type,
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
        let no_overrides = TaskOverride::default();
        let need = requirements(&td, req.overrides.as_ref().unwrap_or(&no_overrides));

        let mut constraints = Vec::new();
        if !fargate {
            for c in td.placement_constraints.iter().flatten() {
                constraints.push((c.r#type.clone().unwrap_or_default(), c.expression.clone()));
            }
        }
        constraints.extend(req.placement_constraints.iter().cloned());
        if launch == crate::fargate::Launch::External {
            // EXTERNAL tasks run only on external instances (ECS Anywhere).
            constraints.push((
                "memberOf".to_string(),
                Some(format!("attribute:{EXTERNAL_ATTRIBUTE} exists")),
            ));
        }
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

        // EC2's subnets (a subnet's block is claimed the first time it is used: one small
        // transaction); one named twice (`subnet-default` and its id) counts once.
        let mut subnets: Vec<Subnet> = Vec::new();
        for id in awsvpc.iter().flat_map(|vpc| vpc.subnets.iter()) {
            let subnet = self.ensure_subnet(scope, id)?;
            if !subnets.iter().any(|s| s.id == subnet.id) {
                subnets.push(subnet);
            }
        }
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
                    &crate::keys::instances_prefix(scope, capacity),
                    place_batch,
                );
                let crate::fargate::Launch::AutoScaling { providers } = &launch else {
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
                    return Ok(RunTaskPending::Waiting(lane.submit(job)));
                };
                // One job per provider, each held to the provider's instances.
                let req_token = req.client_token.clone();
                let mut answers = Vec::new();
                for (i, (provider, count)) in per_provider(providers).into_iter().enumerate() {
                    let mut request = request.clone();
                    request.count = count;
                    request.placement_constraints.push(
                        berth_scheduler::parse_placement_constraint(
                            "memberOf",
                            Some(&format!(
                                "attribute:{} == {provider}",
                                crate::instances::CAPACITY_PROVIDER_ATTRIBUTE
                            )),
                        )
                        .map_err(parse)?,
                    );
                    let mut req = req.clone();
                    req.count = count;
                    if i > 0 {
                        // The first job records its tasks under the token; the merged
                        // answer records them all (`SeveralJobs`).
                        req.client_token = None;
                    }
                    answers.push(lane.submit(PlacementJob {
                        cluster: cluster.name.clone(),
                        td: td.clone(),
                        req,
                        group: group.clone(),
                        need: need.clone(),
                        request,
                        launch: crate::fargate::Launch::AutoScaling {
                            providers: vec![provider; count as usize],
                        },
                        subnets: subnets.clone(),
                    }));
                }
                Ok(match answers.len() {
                    1 => RunTaskPending::Waiting(answers.pop().expect("one answer")),
                    _ => RunTaskPending::Several(SeveralJobs {
                        answers,
                        token: req_token.map(|token| {
                            (
                                self.store.clone(),
                                client_token_key(scope, &cluster.name, &token),
                            )
                        }),
                    }),
                })
            }
        }
    }

    /// StartTask: one task on each named instance, each committed with a re-check of its
    /// fit under compare-and-swap (no placement engine).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn start_task_on(
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
            let arn = EcsArn::container_instance(scope, cluster, &id).into_string();
            let placed =
                self.apply_placement(scope, cluster, &id, td, req, group, need, request, subnets)?;
            match placed {
                Ok(task) => outcome.tasks.push(task),
                Err(unplaced) => outcome.failures.push((arn, unplaced.to_string())),
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
    /// transaction. The inner error is why the task cannot go there.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn apply_placement(
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
    ) -> Result<std::result::Result<Task, Unplaced>> {
        let ikey = crate::keys::instance_key(scope, cluster, instance_id);
        let one = berth_scheduler::TaskRequest {
            count: 1,
            ..request.clone()
        };
        loop {
            let Some(kv) = self.store.get(&ikey)? else {
                return Ok(Err(Unplaced::Missing));
            };
            let mut instance: ContainerInstance = decode(&kv)?;
            if let Err(reason) = berth_scheduler::check_fit(&instance.placement_view(scope), &one) {
                return Ok(Err(Unplaced::Unfit(reason)));
            }
            reserve(&mut instance, need, group);
            let mut task = new_task(
                scope,
                cluster,
                Some(&instance),
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
}
