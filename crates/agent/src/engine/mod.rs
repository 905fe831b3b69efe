//! The task engine: for every task the control plane gives the instance, one supervisor
//! (a tokio task) reconciles what should be (the task's desired status) with what is (the
//! runtime's containers) and reports each change back, in order, through
//! SubmitContainerStateChange / SubmitTaskStateChange.
//!
//! A supervisor pulls the task's images, creates and starts its containers in `dependsOn`
//! order (conditions START, COMPLETE, SUCCESS, HEALTHY; `startTimeout` bounds the wait),
//! reports RUNNING with the host ports actually bound, and watches its containers through
//! the runtime's event stream (one subscription for the whole agent, routed by container
//! id; when it breaks, every supervisor re-inspects its containers). An essential container
//! exiting, or a desired status of STOPPED, stops the rest (`stopTimeout` between SIGTERM
//! and SIGKILL, dependents first) and reports STOPPED with exit codes and ECS's reasons.
//! Stopped containers are removed after the cleanup delay.
//!
//! A desired status of STOPPED that arrives while images are being pulled abandons the
//! pull at once (Docker may finish it in the background) and stops the task.
//!
//! Each container's health (from Docker's health check) is tracked with the time it last
//! changed; every change is announced on a watch channel (`health_changes`) for the
//! telemetry session. The task's record in the state is the view other parts read (the
//! task metadata endpoint, telemetry).
//!
//! Restarts: at start the engine lists the containers carrying this instance's label and
//! resumes a supervisor for every task in the state file; a supervisor adopts the
//! containers it finds (from the state file, else by ECS's task-ARN and container-name
//! labels) instead of creating new ones, so a restarted agent keeps the same containers for
//! the same tasks, and reports a container that died meanwhile as STOPPED with its exit code.
//!
//! Files, one per concern: this one (the `Engine` handle, its configuration and the shared
//! `Inner`, payloads, event routing), `supervisor` (a task's run loop, statuses, recovery),
//! `start` (`dependsOn`, create and start), `pull`, `network` (awsvpc), `volumes`, `logs`
//! (awslogs shippers), `report` (what is reported) and `reporter` (its ordered delivery),
//! `cleanup` (stop, removal), and `errors` (every stopped reason, worded as ECS words it).
//! Children import this file and each other downwards (`errors`, `reporter` < `supervisor` <
//! the rest); this file imports none of them, so no two files import each other.

mod cleanup;
mod errors;
mod logs;
mod network;
mod pull;
mod report;
mod reporter;
mod secrets;
mod start;
mod supervisor;
mod volumes;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use berth_agent_protocol::acs::{Task, TaskIdentifier};
use berth_model::InstallationId;
use berth_model::ecs::{DesiredStatus, TaskStatus};
use berth_runtime::{
    ContainerEvent, ContainerId, ContainerRuntime, EventStream, RegistryAuth, RuntimeError,
};
use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};

use crate::awslogs::LogsApi;
use crate::backoff::Backoff;
use crate::client::{
    AwsClient, ContainerStateChange, ControlFuture, EcrAuthorization, TaskStateChange,
};
use crate::config::{DEFAULT_STOP_TIMEOUT, ImagePullBehavior};
use crate::instance_health::{self, CheckStatus, RuntimeHealth};
use crate::metadata::endpoint::{ListenRequests, MetadataEndpoint};
use crate::state::{SharedState, TaskRecord};
use crate::translate::{self, LABEL_CONTAINER_NAME, LABEL_INSTANCE, LABEL_TASK_ARN};
use crate::warm::{self, WarmPool};

/// The control-plane calls the engine makes (the awslogs shippers' CloudWatch Logs calls
/// included); `AwsClient` in production, a recording fake in tests.
pub trait ControlPlane: LogsApi + Send + Sync {
    fn submit_task_state_change<'a>(&'a self, change: &'a TaskStateChange)
    -> ControlFuture<'a, ()>;
    fn submit_container_state_change<'a>(
        &'a self,
        change: &'a ContainerStateChange,
    ) -> ControlFuture<'a, ()>;
    /// A JSON call (`target` `PREFIX.Operation`) signed with `credentials` for `service` in
    /// `region`: a task's execution role reading its secrets.
    fn json_call_as<'a>(
        &'a self,
        credentials: &'a crate::config::Credentials,
        service: &'a str,
        region: &'a str,
        target: &'a str,
        body: serde_json::Value,
    ) -> ControlFuture<'a, serde_json::Value>;
    /// `credentials`: a task's execution role's, instead of the agent's own.
    fn ecr_authorization<'a>(
        &'a self,
        endpoint: Option<&'a str>,
        region: Option<&'a str>,
        registry_id: Option<&'a str>,
        credentials: Option<&'a crate::config::Credentials>,
    ) -> ControlFuture<'a, EcrAuthorization>;
}

impl ControlPlane for AwsClient {
    fn submit_task_state_change<'a>(
        &'a self,
        change: &'a TaskStateChange,
    ) -> ControlFuture<'a, ()> {
        Box::pin(AwsClient::submit_task_state_change(self, change))
    }

    fn submit_container_state_change<'a>(
        &'a self,
        change: &'a ContainerStateChange,
    ) -> ControlFuture<'a, ()> {
        Box::pin(AwsClient::submit_container_state_change(self, change))
    }

    fn json_call_as<'a>(
        &'a self,
        credentials: &'a crate::config::Credentials,
        service: &'a str,
        region: &'a str,
        target: &'a str,
        body: serde_json::Value,
    ) -> ControlFuture<'a, serde_json::Value> {
        Box::pin(async move {
            AwsClient::json_call_as(self, credentials, service, region, target, &body).await
        })
    }

    fn ecr_authorization<'a>(
        &'a self,
        endpoint: Option<&'a str>,
        region: Option<&'a str>,
        registry_id: Option<&'a str>,
        credentials: Option<&'a crate::config::Credentials>,
    ) -> ControlFuture<'a, EcrAuthorization> {
        Box::pin(AwsClient::ecr_authorization(
            self,
            endpoint,
            region,
            registry_id,
            credentials,
        ))
    }
}

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The cluster as configured (the `com.amazonaws.ecs.cluster` label and the `cluster`
    /// member of state changes).
    pub cluster: String,
    pub instance_arn: String,
    pub image_pull_behavior: ImagePullBehavior,
    pub cleanup_delay: Duration,
    pub default_stop_timeout: Duration,
    /// Where containers find the task metadata endpoint; `None` injects no endpoint.
    pub metadata: Option<MetadataEndpoint>,
    /// How often the container runtime health check runs.
    pub runtime_check_interval: Duration,
    /// Where EFS volumes live (a directory per file system); `None` refuses them.
    pub efs_root: Option<std::path::PathBuf>,
    /// Asks the task metadata endpoint to listen on one more address as well (an awsvpc
    /// subnet's gateway, the host as the task's namespace reaches it); the answer says
    /// whether it does.
    pub metadata_listen: Option<ListenRequests>,
    /// Warm infra containers kept started for awsvpc tasks (see `warm`); 0: none.
    pub warm_infra: usize,
    /// Fill the warm pool from the start (Fargate capacity), not from the first awsvpc task.
    pub warm_infra_early: bool,
    /// The installation every container, network and volume made here belongs to.
    pub installation: InstallationId,
    /// Past this many stopped tasks waiting for `cleanup_delay`, the oldest are cleaned up
    /// at once.
    pub max_stopped_tasks: usize,
}

impl EngineConfig {
    pub fn new(cluster: &str, instance_arn: &str, installation: &InstallationId) -> Self {
        EngineConfig {
            installation: installation.clone(),
            max_stopped_tasks: crate::config::DEFAULT_MAX_STOPPED_TASKS,
            cluster: cluster.to_owned(),
            instance_arn: instance_arn.to_owned(),
            image_pull_behavior: ImagePullBehavior::Default,
            cleanup_delay: crate::config::DEFAULT_CLEANUP_DELAY,
            default_stop_timeout: DEFAULT_STOP_TIMEOUT,
            metadata: None,
            runtime_check_interval: instance_health::CHECK_INTERVAL,
            efs_root: None,
            metadata_listen: None,
            warm_infra: crate::config::DEFAULT_WARM_INFRA,
            warm_infra_early: false,
        }
    }
}

/// The running engine. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    config: EngineConfig,
    runtime: Arc<dyn ContainerRuntime>,
    control: Arc<dyn ControlPlane>,
    state: SharedState,
    /// The std mutexes below guard plain maps and are never held across an `.await`.
    tasks: Mutex<HashMap<String, mpsc::UnboundedSender<TaskMsg>>>,
    /// Which task each container belongs to, for routing runtime events.
    routes: Mutex<HashMap<ContainerId, String>>,
    /// Containers found by their labels at start, by (task ARN, container name), until a
    /// supervisor adopts them.
    adoptable: Mutex<HashMap<(String, String), (ContainerId, String)>>,
    /// Tasks' role credentials from ACS (memory only).
    credentials: Arc<crate::credentials::CredentialStore>,
    /// ECR credentials by (endpoint, region, registry id), with when to renew them.
    tokens: Mutex<HashMap<String, (RegistryAuth, Instant)>>,
    /// Held while the infra image is checked or built, so tasks starting together build it
    /// once; true once it is known to exist.
    pause_image: tokio::sync::Mutex<bool>,
    /// Held while a subnet's network is checked or created, so tasks starting together on
    /// one subnet do not race to create it; holds the networks known to exist.
    networks: tokio::sync::Mutex<HashSet<String>>,
    /// Started infra containers waiting for awsvpc tasks.
    warm: WarmPool,
    /// The stopped tasks waiting for their cleanup, by (when they stopped, task ARN): past
    /// `max_stopped_tasks` the oldest are told to clean up at once.
    stopped: Mutex<BTreeSet<(StoppedAt, String)>>,
    /// Bumped whenever a container's health changes.
    health_changes: watch::Sender<u64>,
    /// The container runtime check's latest result; wakes receivers when its status changes.
    runtime_health: watch::Receiver<RuntimeHealth>,
    shutdown: watch::Receiver<bool>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

enum TaskMsg {
    /// A payload named the task again (its desired status may have changed).
    Desired(Box<Task>),
    Event(ContainerEvent),
    /// The event stream was interrupted: re-inspect every container.
    Reconcile,
    /// Too many stopped tasks wait for their cleanup on this host: clean up now.
    CleanUpNow,
    /// The task's security groups now resolve to these rules (awsvpc).
    Firewall(Box<berth_agent_protocol::acs::Firewall>),
}

impl Engine {
    /// Subscribes to the runtime's events, finds this instance's containers, resumes a
    /// supervisor for every task in the state, and starts routing events. Ends when
    /// `shutdown` turns true (containers are left running, as the official agent leaves them).
    pub async fn start(
        config: EngineConfig,
        runtime: Arc<dyn ContainerRuntime>,
        control: Arc<dyn ControlPlane>,
        state: SharedState,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Engine, RuntimeError> {
        let label = [(LABEL_INSTANCE, config.instance_arn.as_str())];
        // Subscribe before listing, so nothing that happens after the listing is missed.
        let events = runtime.events(&label).await?;
        let existing = runtime.list_containers(&label).await?;
        // Warm infra containers no task took (a task that took one names it in its record).
        let taken: HashSet<String> = {
            let saved = state.lock();
            saved
                .tasks
                .values()
                .filter_map(|r| r.infra.as_ref()?.runtime_id.clone())
                .collect()
        };
        for container in &existing {
            if container.labels.contains_key(warm::LABEL_WARM)
                && !taken.contains(container.id.as_str())
            {
                match runtime.remove_container(&container.id).await {
                    Ok(()) | Err(RuntimeError::NotFound(_)) => {}
                    Err(e) => {
                        tracing::warn!(container = %container.id, error = %e, "removing an unused warm infra container failed")
                    }
                }
            }
        }
        let mut adoptable = HashMap::new();
        for container in existing {
            if let (Some(task), Some(name)) = (
                container.labels.get(LABEL_TASK_ARN),
                container.labels.get(LABEL_CONTAINER_NAME),
            ) {
                adoptable.insert((task.clone(), name.clone()), (container.id, container.name));
            }
        }
        let (runtime_checks, runtime_health) =
            watch::channel(RuntimeHealth::initializing(SystemTime::now()));
        tokio::spawn(instance_health::run_checks(
            runtime.clone(),
            config.runtime_check_interval,
            runtime_checks,
            shutdown.clone(),
        ));
        let warm = WarmPool::new(config.warm_infra, config.warm_infra_early);
        let engine = Engine {
            inner: Arc::new(Inner {
                warm,
                config,
                runtime,
                control,
                state,
                tasks: Mutex::new(HashMap::new()),
                routes: Mutex::new(HashMap::new()),
                adoptable: Mutex::new(adoptable),
                credentials: Arc::default(),
                tokens: Mutex::new(HashMap::new()),
                pause_image: tokio::sync::Mutex::new(false),
                networks: tokio::sync::Mutex::new(HashSet::new()),
                stopped: Mutex::new(BTreeSet::new()),
                health_changes: watch::channel(0).0,
                runtime_health,
                shutdown,
            }),
        };
        let known: Vec<String> = engine.inner.state.lock().tasks.keys().cloned().collect();
        for arn in known {
            engine.spawn_supervisor(&arn);
        }
        let orphans: Vec<String> = lock(&engine.inner.adoptable)
            .keys()
            .map(|(task, _)| task.clone())
            .filter(|task| !lock(&engine.inner.tasks).contains_key(task))
            .collect();
        if !orphans.is_empty() {
            tracing::info!(
                tasks = ?orphans,
                "containers of tasks missing from the state file; they are adopted if the control plane names their tasks"
            );
        }
        tokio::spawn(engine.clone().route_events(events));
        engine.inner.fill_warm();
        Ok(engine)
    }

    /// Takes the tasks of a PayloadMessage: new tasks get a supervisor, known ones their new
    /// desired status.
    pub fn apply_payload(&self, tasks: Vec<Task>) {
        for task in tasks {
            let Some(arn) = task.arn.clone() else {
                tracing::warn!("payload task without an arn ignored");
                continue;
            };
            let desired = translate::desired_status(&task);
            let sender = lock(&self.inner.tasks).get(&arn).cloned();
            if let Some(sender) = sender {
                let _ = sender.send(TaskMsg::Desired(Box::new(task)));
                continue;
            }
            // A task we never ran and that should not run needs nothing, unless its
            // containers survive from before a restart.
            let has_containers = lock(&self.inner.adoptable).keys().any(|(t, _)| *t == arn);
            if desired != Some(DesiredStatus::Running) && !has_containers {
                continue;
            }
            self.inner.state.update(|state| {
                state
                    .tasks
                    .entry(arn.clone())
                    .or_insert_with(|| TaskRecord::new(task.clone()));
            });
            self.spawn_supervisor(&arn);
        }
    }

    /// New security group rules for a running awsvpc task (Berth's `BerthFirewallMessage`):
    /// loaded into its namespace at once, or when its namespace is made.
    pub fn apply_firewall(&self, arn: &str, firewall: berth_agent_protocol::acs::Firewall) {
        let sender = lock(&self.inner.tasks).get(arn).cloned();
        match sender {
            Some(sender) => {
                let _ = sender.send(TaskMsg::Firewall(Box::new(firewall)));
            }
            None => {
                tracing::debug!(task = %arn, "security group rules for a task not here ignored")
            }
        }
    }

    /// The tasks with a supervisor (running, stopping, or waiting for cleanup).
    pub fn task_arns(&self) -> Vec<String> {
        let mut arns: Vec<String> = lock(&self.inner.tasks).keys().cloned().collect();
        arns.sort();
        arns
    }

    /// Tasks' role credentials, as ACS handed them over.
    pub fn credentials(&self) -> &Arc<crate::credentials::CredentialStore> {
        &self.inner.credentials
    }

    /// The state the engine keeps its tasks in (their records are what the task metadata
    /// endpoint and telemetry read).
    pub fn state(&self) -> &SharedState {
        &self.inner.state
    }

    pub fn runtime(&self) -> &Arc<dyn ContainerRuntime> {
        &self.inner.runtime
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// A receiver that changes whenever a container's health changes.
    pub fn health_changes(&self) -> watch::Receiver<u64> {
        self.inner.health_changes.subscribe()
    }

    /// The container runtime check's latest result; `changed` fires when its status does.
    pub fn runtime_health(&self) -> watch::Receiver<RuntimeHealth> {
        self.inner.runtime_health.clone()
    }

    /// The tasks this instance runs that a task manifest says it should not: not in the
    /// manifest, or in it with a desired status of STOPPED. Tasks already stopping or
    /// stopped are not candidates.
    pub fn stop_candidates(&self, manifest: &[TaskIdentifier]) -> Vec<TaskIdentifier> {
        let supervised = lock(&self.inner.tasks).keys().cloned().collect::<Vec<_>>();
        let state = self.inner.state.lock();
        let mut candidates = Vec::new();
        for arn in supervised {
            let Some(record) = state.tasks.get(&arn) else {
                continue;
            };
            if record.known_status == TaskStatus::Stopped
                || translate::desired_stopped(&record.task)
            {
                continue;
            }
            let listed = manifest
                .iter()
                .find(|t| t.task_arn.as_deref() == Some(arn.as_str()));
            let listed_stopped = |t: &TaskIdentifier| {
                t.desired_status.as_deref().and_then(|s| s.parse().ok())
                    == Some(DesiredStatus::Stopped)
            };
            if listed.is_some_and(|t| !listed_stopped(t)) {
                continue;
            }
            candidates.push(TaskIdentifier {
                task_arn: Some(arn.clone()),
                task_cluster_arn: record.task.task_cluster_arn.clone(),
                desired_status: translate::desired_member(DesiredStatus::Stopped),
            });
        }
        candidates.sort_by(|a, b| a.task_arn.cmp(&b.task_arn));
        candidates
    }

    /// Stops the named tasks, as a desired status of STOPPED would.
    pub fn stop_tasks(&self, arns: &[String]) {
        for arn in arns {
            let sender = lock(&self.inner.tasks).get(arn).cloned();
            if let Some(sender) = sender {
                tracing::info!(task = %arn, "stopping a task the control plane does not expect here");
                let _ = sender.send(TaskMsg::Desired(Box::new(Task {
                    arn: Some(arn.clone()),
                    desired_status: translate::desired_member(DesiredStatus::Stopped),
                    ..Task::default()
                })));
            }
        }
    }

    /// Routes runtime events to the supervisors; on a broken stream, resubscribes and has
    /// every supervisor re-inspect its containers. The same happens when the runtime health
    /// check sees the runtime back after an outage, even if the stream never broke: events
    /// handled meanwhile may have found nothing to inspect.
    async fn route_events(self, mut events: EventStream) {
        let mut shutdown = self.inner.shutdown.clone();
        let mut recovery = RecoveryWatch::new(self.inner.runtime_health.clone());
        let label = [(LABEL_INSTANCE, self.inner.config.instance_arn.as_str())];
        let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(30));
        loop {
            let opened = Instant::now();
            let mut delivered = false;
            let mut recovered = false;
            loop {
                let item = tokio::select! {
                    item = events.next() => item,
                    _ = recovery.back() => {
                        recovered = true;
                        break;
                    }
                    _ = shutdown.changed() => return,
                };
                match item {
                    Some(Ok(event)) => {
                        delivered = true;
                        let task = lock(&self.inner.routes).get(&event.id).cloned();
                        let sender = task.and_then(|t| lock(&self.inner.tasks).get(&t).cloned());
                        if let Some(sender) = sender {
                            let _ = sender.send(TaskMsg::Event(event));
                        }
                    }
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "container event stream failed; resubscribing");
                        break;
                    }
                    None => {
                        tracing::warn!("container event stream ended; resubscribing");
                        break;
                    }
                }
            }
            // A stream that breaks at once is paused after, so a runtime that takes
            // subscriptions only to drop them cannot spin this loop.
            if delivered || recovered || opened.elapsed() >= EVENT_STREAM_SETTLED {
                backoff.reset();
            } else if !pause(&mut backoff, &mut recovery, &mut shutdown).await {
                return;
            }
            events = loop {
                match self.inner.runtime.events(&label).await {
                    Ok(stream) => break stream,
                    Err(e) => {
                        tracing::debug!(error = %e, "cannot subscribe to container events yet");
                        if !pause(&mut backoff, &mut recovery, &mut shutdown).await {
                            return;
                        }
                    }
                }
            };
            tracing::info!("subscribed to container events; re-inspecting every task's containers");
            let senders: Vec<_> = lock(&self.inner.tasks).values().cloned().collect();
            for sender in senders {
                let _ = sender.send(TaskMsg::Reconcile);
            }
        }
    }
}

/// An event stream that lasted this long was a good one: the next failure resubscribes at
/// once.
const EVENT_STREAM_SETTLED: Duration = Duration::from_secs(5);

/// Follows the runtime health check for the event router, to tell when the runtime is back
/// after an outage.
struct RecoveryWatch {
    health: watch::Receiver<RuntimeHealth>,
    impaired: bool,
    /// False once the checks have ended (shutdown).
    alive: bool,
}

impl RecoveryWatch {
    fn new(mut health: watch::Receiver<RuntimeHealth>) -> Self {
        let impaired = health.borrow_and_update().status == CheckStatus::Impaired;
        RecoveryWatch {
            health,
            impaired,
            alive: true,
        }
    }

    /// Resolves when the check sees the runtime OK after seeing it impaired; never once the
    /// checks have ended. Cancel-safe: state changes only between awaits.
    async fn back(&mut self) {
        loop {
            if !self.alive {
                std::future::pending::<()>().await;
            }
            if self.health.changed().await.is_err() {
                self.alive = false;
                continue;
            }
            match self.health.borrow_and_update().status {
                CheckStatus::Impaired => self.impaired = true,
                CheckStatus::Ok if self.impaired => {
                    self.impaired = false;
                    return;
                }
                _ => {}
            }
        }
    }
}

/// Waits out the backoff's next delay, cut short when the runtime is back; `false` on
/// shutdown.
async fn pause(
    backoff: &mut Backoff,
    recovery: &mut RecoveryWatch,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(backoff.next_delay()) => true,
        _ = recovery.back() => true,
        _ = shutdown.changed() => false,
    }
}

fn now_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// When a task stopped (seconds since the epoch), ordered for the cleanup queue.
#[derive(Debug, Clone, Copy, PartialEq)]
struct StoppedAt(f64);

impl Eq for StoppedAt {}

impl PartialOrd for StoppedAt {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for StoppedAt {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

#[cfg(test)]
mod tests;
