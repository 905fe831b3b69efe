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

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use berth_acs::acs::{Container, RegistryAuthenticationData, Task, TaskIdentifier};
use berth_model::{InstallationId, LABEL_INSTALLATION};
use berth_runtime::{
    ContainerEvent, ContainerEventKind, ContainerId, ContainerRuntime, ContainerState,
    ContainerStatus, EventStream, HealthStatus, NetworkMode, RegistryAuth, RuntimeError,
    normalize_image_reference,
};
use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};

use crate::awslogs::{self, AwslogsOptions, LogsApi, Progress, Shipper};
use crate::backoff::Backoff;
use crate::client::{
    AttachmentStateChange, AwsClient, ContainerChangeInTask, ContainerStateChange, ControlFuture,
    EcrAuthorization, NetworkBinding, TaskStateChange,
};
use crate::config::{DEFAULT_STOP_TIMEOUT, ImagePullBehavior};
use crate::infra::{self, PAUSE_CONTAINER_NAME};
use crate::instance_health::{self, CheckStatus, RuntimeHealth};
use crate::metadata::endpoint::{self, ListenRequests, MetadataEndpoint};
use crate::spec::{
    self, LABEL_CONTAINER_NAME, LABEL_INSTANCE, LABEL_TASK_ARN, ResolvedVolume, TaskEni,
    TaskLayout, TaskNetwork,
};
use crate::state::{ContainerRecord, SharedState, TaskRecord};
use crate::warm::{self, Warm, WarmPool};

/// ECS's stoppedReason when an essential container exits.
pub const ESSENTIAL_EXITED: &str = "Essential container in task exited";
const OOM_REASON: &str = "OutOfMemoryError: Container killed due to memory usage";
/// How long a container may wait for its dependencies when it sets no `startTimeout`
/// (the official agent's `ECS_CONTAINER_START_TIMEOUT` on Linux).
const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(180);
/// ECR tokens are renewed this long before they expire.
const TOKEN_RENEWAL_MARGIN: Duration = Duration::from_secs(5 * 60);
/// Reports the control plane cannot take are retried with this backoff.
const REPORT_RETRY_MIN: Duration = Duration::from_millis(500);
const REPORT_RETRY_MAX: Duration = Duration::from_secs(30);

/// The control-plane calls the engine makes (the awslogs shippers' CloudWatch Logs calls
/// included); `AwsClient` in production, a recording fake in tests.
pub trait ControlPlane: LogsApi + Send + Sync {
    fn submit_task_state_change<'a>(&'a self, change: &'a TaskStateChange)
    -> ControlFuture<'a, ()>;
    fn submit_container_state_change<'a>(
        &'a self,
        change: &'a ContainerStateChange,
    ) -> ControlFuture<'a, ()>;
    fn ecr_authorization<'a>(
        &'a self,
        endpoint: Option<&'a str>,
        region: Option<&'a str>,
        registry_id: Option<&'a str>,
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

    fn ecr_authorization<'a>(
        &'a self,
        endpoint: Option<&'a str>,
        region: Option<&'a str>,
        registry_id: Option<&'a str>,
    ) -> ControlFuture<'a, EcrAuthorization> {
        Box::pin(AwsClient::ecr_authorization(
            self,
            endpoint,
            region,
            registry_id,
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

    /// Removes the warm infra containers no task took (on shutdown: a stopped agent holds
    /// none; the next start makes new ones).
    pub async fn remove_warm(&self) {
        for warm in self.inner.warm.drain() {
            match self.inner.runtime.remove_container(&warm.id).await {
                Ok(()) | Err(RuntimeError::NotFound(_)) => {}
                Err(e) => {
                    tracing::warn!(container = %warm.id, error = %e, "removing a warm infra container failed")
                }
            }
        }
    }

    /// Removes this installation's subnet networks that no running container uses any more
    /// (as the agent stops: the networks of tasks still running stay, and another agent of
    /// the installation on this host makes a network again when it needs it).
    pub async fn remove_idle_networks(&self) {
        let installation = self.inner.config.installation.to_string();
        let filter = [(LABEL_INSTALLATION, installation.as_str())];
        let networks = match self.inner.runtime.list_networks(&filter).await {
            Ok(networks) => networks,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list this installation's networks; none removed");
                return;
            }
        };
        for network in networks
            .iter()
            .filter(|n| n.labels.contains_key(infra::LABEL_SUBNET))
        {
            match self.inner.runtime.remove_network(&network.name).await {
                Ok(()) => {
                    tracing::info!(network = %network.name, "removed an idle subnet network")
                }
                Err(RuntimeError::Conflict(_) | RuntimeError::NotFound(_)) => {}
                Err(e) => {
                    tracing::warn!(network = %network.name, error = %e, "removing an idle subnet network failed")
                }
            }
        }
    }

    /// Takes the tasks of a PayloadMessage: new tasks get a supervisor, known ones their new
    /// desired status.
    pub fn apply_payload(&self, tasks: Vec<Task>) {
        for task in tasks {
            let Some(arn) = task.arn.clone() else {
                tracing::warn!("payload task without an arn ignored");
                continue;
            };
            let desired = task.desired_status.clone().unwrap_or_default();
            let sender = lock(&self.inner.tasks).get(&arn).cloned();
            if let Some(sender) = sender {
                let _ = sender.send(TaskMsg::Desired(Box::new(task)));
                continue;
            }
            // A task we never ran and that should not run needs nothing, unless its
            // containers survive from before a restart.
            let has_containers = lock(&self.inner.adoptable).keys().any(|(t, _)| *t == arn);
            if desired != "RUNNING" && !has_containers {
                continue;
            }
            self.inner.state.update(|state| {
                state
                    .tasks
                    .entry(arn.clone())
                    .or_insert_with(|| TaskRecord {
                        task: task.clone(),
                        known_status: "PENDING".to_owned(),
                        ..TaskRecord::default()
                    });
            });
            self.spawn_supervisor(&arn);
        }
    }

    /// The tasks with a supervisor (running, stopping, or waiting for cleanup).
    pub fn task_arns(&self) -> Vec<String> {
        let mut arns: Vec<String> = lock(&self.inner.tasks).keys().cloned().collect();
        arns.sort();
        arns
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
            if record.known_status == "STOPPED"
                || record.task.desired_status.as_deref() == Some("STOPPED")
            {
                continue;
            }
            let listed = manifest
                .iter()
                .find(|t| t.task_arn.as_deref() == Some(arn.as_str()));
            if listed.is_some_and(|t| t.desired_status.as_deref() != Some("STOPPED")) {
                continue;
            }
            candidates.push(TaskIdentifier {
                task_arn: Some(arn.clone()),
                task_cluster_arn: record.task.task_cluster_arn.clone(),
                desired_status: Some("STOPPED".to_owned()),
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
                    desired_status: Some("STOPPED".to_owned()),
                    ..Task::default()
                })));
            }
        }
    }

    fn spawn_supervisor(&self, arn: &str) {
        let Some(record) = self.inner.state.task(arn) else {
            return;
        };
        let (tx, rx) = mpsc::unbounded_channel();
        lock(&self.inner.tasks).insert(arn.to_owned(), tx);
        let supervisor = Supervisor::new(self.inner.clone(), arn.to_owned(), record, rx);
        tokio::spawn(supervisor.run());
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

impl Inner {
    /// Starts filling the warm infra pool in the background unless it is full, off, or
    /// being filled.
    fn fill_warm(self: &Arc<Self>) {
        if !self.warm.start_filling() {
            return;
        }
        let inner = self.clone();
        tokio::spawn(async move {
            let mut failed = false;
            while inner.warm.wants_more() && !*inner.shutdown.borrow() {
                match inner.make_warm().await {
                    Ok(warm) => inner.warm.put(warm),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot make a warm infra container; awsvpc tasks create their own");
                        failed = true;
                        break;
                    }
                }
            }
            inner.warm.done();
            // A container taken between the last check and `done` is made up for now; after
            // a failure, the next task that takes one tries again.
            if !failed && !*inner.shutdown.borrow() {
                inner.fill_warm();
            }
        });
    }

    /// Creates and starts a warm infra container and takes it off Docker's `none` network,
    /// ready to be connected to a subnet's network.
    async fn make_warm(&self) -> Result<Warm, String> {
        self.ensure_pause_image().await?;
        let name = warm::warm_name(&self.config.installation);
        let spec = warm::warm_spec(
            &name,
            &self.config.cluster,
            &self.config.instance_arn,
            &self.config.installation,
        );
        let id = self
            .runtime
            .create_container(&spec)
            .await
            .map_err(|e| e.to_string())?;
        let started = async {
            self.runtime.start_container(&id).await?;
            self.runtime.disconnect_network(&id, "none").await
        };
        if let Err(e) = started.await {
            let _ = self.runtime.remove_container(&id).await;
            return Err(e.to_string());
        }
        Ok(Warm { id, name })
    }

    /// Counts a stopped task as waiting for its cleanup; past `max_stopped_tasks` waiting,
    /// tells the oldest to clean up now.
    fn wait_for_cleanup(&self, waiting: (StoppedAt, String)) {
        let oldest: Vec<String> = {
            let mut stopped = lock(&self.stopped);
            stopped.insert(waiting);
            let excess = stopped.len().saturating_sub(self.config.max_stopped_tasks);
            (0..excess)
                .filter_map(|_| stopped.pop_first())
                .map(|(_, arn)| arn)
                .collect()
        };
        for arn in oldest {
            tracing::info!(task = %arn, max = self.config.max_stopped_tasks, "too many stopped tasks kept on this host; cleaning up the oldest now");
            if let Some(sender) = lock(&self.tasks).get(&arn) {
                let _ = sender.send(TaskMsg::CleanUpNow);
            }
        }
    }

    /// Makes sure the subnet's network exists (once per network and agent run).
    async fn ensure_network(&self, eni: &TaskEni) -> Result<String, String> {
        let network = infra::network_spec(&self.config.installation, eni);
        let mut known = self.networks.lock().await;
        if known.contains(&network.name) {
            return Ok(network.name);
        }
        self.runtime.ensure_network(&network).await.map_err(|e| {
            format!(
                "CannotCreateContainerError: network {} for subnet {}: {e}",
                network.name, eni.subnet_id
            )
        })?;
        known.insert(network.name.clone());
        Ok(network.name)
    }

    /// Forgets that a network exists (it was found missing).
    async fn forget_network(&self, name: &str) {
        self.networks.lock().await.remove(name);
    }

    /// The awsvpc infra image, built from the context `infra` writes unless present.
    async fn ensure_pause_image(&self) -> Result<(), String> {
        let mut ready = self.pause_image.lock().await;
        if *ready {
            return Ok(());
        }
        let failed =
            |e: RuntimeError| format!("building the infra image {}: {e}", infra::PAUSE_IMAGE);
        if !self
            .runtime
            .image_present(infra::PAUSE_IMAGE)
            .await
            .map_err(failed)?
        {
            let host = self.runtime.info().await.map_err(failed)?;
            let context = infra::build_context(&host.architecture).ok_or_else(|| {
                format!(
                    "awsvpc is not supported on {} hosts (no infra program for it)",
                    host.architecture
                )
            })?;
            self.runtime
                .build_image(infra::PAUSE_IMAGE, context)
                .await
                .map_err(failed)?;
            tracing::info!(image = infra::PAUSE_IMAGE, "built the awsvpc infra image");
        }
        *ready = true;
        Ok(())
    }

    /// Makes `image` present as the pull behaviour says; `Ok` once it can be used.
    async fn ensure_image(
        &self,
        image: &str,
        auth: Option<&RegistryAuthenticationData>,
    ) -> Result<(), String> {
        let reference = normalize_image_reference(image);
        let behavior = self.config.image_pull_behavior;
        let present = || async { self.runtime.image_present(image).await.unwrap_or(false) };
        match behavior {
            ImagePullBehavior::PreferCached if present().await => return Ok(()),
            ImagePullBehavior::Once
                if self.state.lock().pulled_images.contains(&reference) && present().await =>
            {
                return Ok(());
            }
            _ => {}
        }
        let pulled = async {
            let credentials = self.registry_credentials(image, auth).await?;
            self.runtime
                .pull_image(image, credentials.as_ref())
                .await
                .map_err(|e| e.to_string())
        }
        .await;
        match pulled {
            Ok(()) => {
                self.state.update(|s| s.pulled_images.insert(reference));
                Ok(())
            }
            Err(e) if behavior == ImagePullBehavior::Default && present().await => {
                tracing::warn!(image, error = %e, "pull failed; using the cached image");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Credentials for pulling `image`: an ECR token from the control plane (cached until
    /// shortly before it expires) when the task says so, else none.
    async fn registry_credentials(
        &self,
        image: &str,
        auth: Option<&RegistryAuthenticationData>,
    ) -> Result<Option<RegistryAuth>, String> {
        let Some(auth) = auth.filter(|a| a.kind.as_deref() == Some("ecr")) else {
            return Ok(None);
        };
        let ecr = auth.ecr_auth_data.clone().unwrap_or_default();
        let key = format!(
            "{}|{}|{}",
            ecr.endpoint_override.as_deref().unwrap_or_default(),
            ecr.region.as_deref().unwrap_or_default(),
            ecr.registry_id.as_deref().unwrap_or_default()
        );
        if let Some((credentials, renew_at)) = lock(&self.tokens).get(&key)
            && Instant::now() < *renew_at
        {
            return Ok(Some(credentials.clone()));
        }
        let token = self
            .control
            .ecr_authorization(
                ecr.endpoint_override.as_deref(),
                ecr.region.as_deref(),
                ecr.registry_id.as_deref(),
            )
            .await
            .map_err(|e| format!("getting an ECR authorization token: {e}"))?;
        let credentials = RegistryAuth {
            username: token.username,
            password: token.password,
            server_address: image_registry(image).to_owned(),
        };
        let lifetime = token
            .expires_at
            .map(|at| Duration::from_secs_f64((at - now_seconds()).max(0.0)))
            .unwrap_or(Duration::from_secs(3600));
        let renew_at = Instant::now() + lifetime.saturating_sub(TOKEN_RENEWAL_MARGIN);
        lock(&self.tokens).insert(key, (credentials.clone(), renew_at));
        Ok(Some(credentials))
    }
}

/// The registry host of an image reference (`host:port` before the first `/`), or Docker
/// Hub's.
fn image_registry(image: &str) -> &str {
    match image.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => first,
        _ => "docker.io",
    }
}

fn now_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

// ---- the per-task supervisor ----

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Status {
    None,
    Created,
    Running,
    Stopped,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::None => "NONE",
            Status::Created => "CREATED",
            Status::Running => "RUNNING",
            Status::Stopped => "STOPPED",
        }
    }

    fn parse(s: &str) -> Status {
        match s {
            "CREATED" => Status::Created,
            "RUNNING" => Status::Running,
            "STOPPED" => Status::Stopped,
            _ => Status::None,
        }
    }
}

struct Member {
    def: Container,
    docker_name: String,
    id: Option<ContainerId>,
    status: Status,
    /// Whether it ever ran (a container stopped before it started never did).
    started: bool,
    exit_code: Option<i64>,
    reason: Option<String>,
    health: HealthStatus,
    /// When `health` last changed (seconds since the epoch).
    health_since: Option<f64>,
    /// Names the container at the task metadata endpoint.
    metadata_token: String,
    oom: bool,
    bindings: Vec<NetworkBinding>,
    /// The last status handed to the reporter.
    reported: Option<String>,
    /// When it began waiting for its dependencies.
    waiting_since: Option<Instant>,
}

impl Member {
    fn essential(&self) -> bool {
        self.def.essential.unwrap_or(false)
    }

    fn stop_timeout(&self, default: Duration) -> Duration {
        self.def
            .stop_timeout
            .filter(|s| *s > 0)
            .map_or(default, |s| Duration::from_secs(s as u64))
    }
}

/// Whether a container may start now.
enum Readiness {
    Ready,
    Waiting,
    Never(String),
}

enum Report {
    Container(ContainerStateChange),
    Task(TaskStateChange),
}

/// An awsvpc task's infra container.
#[derive(Default)]
struct Infra {
    docker_name: String,
    id: Option<ContainerId>,
    /// Known to be running (checked once per supervisor, not on every turn of its loop).
    ready: bool,
}

struct Supervisor {
    engine: Arc<Inner>,
    arn: String,
    task: Task,
    rx: mpsc::UnboundedReceiver<TaskMsg>,
    reports: mpsc::UnboundedSender<Report>,
    /// Delivers `reports` in order; done once they are delivered after `reports` is closed.
    reporter: Option<tokio::task::JoinHandle<()>>,
    members: BTreeMap<String, Member>,
    order: Vec<String>,
    /// The mode the task's containers are created in; for awsvpc `container:<infra id>`
    /// once the infra container exists.
    network_mode: Result<NetworkMode, String>,
    /// awsvpc: the task's interface and the infra container holding its namespace.
    eni: Option<TaskEni>,
    infra: Infra,
    /// awsvpc: the address the task's containers reach the metadata endpoint on.
    metadata_host: Option<String>,
    pulled: bool,
    volumes_ready: bool,
    pull_started_at: Option<f64>,
    pull_stopped_at: Option<f64>,
    /// Set once the task is to stop: `Some(reason)` (the reason may be empty for a stop
    /// the control plane asked for).
    stopping: Option<Option<String>>,
    task_reported: Option<String>,
    stopped_at: Option<f64>,
    /// Messages that arrived during an image pull, handled once it is over.
    deferred: Vec<TaskMsg>,
    /// The awslogs shippers of the task's containers, by container name.
    shippers: BTreeMap<String, (tokio::task::JoinHandle<()>, Progress)>,
}

impl Supervisor {
    fn new(
        engine: Arc<Inner>,
        arn: String,
        record: TaskRecord,
        rx: mpsc::UnboundedReceiver<TaskMsg>,
    ) -> Supervisor {
        let task = record.task.clone();
        let (reports, report_rx) = mpsc::unbounded_channel();
        let reporter = tokio::spawn(run_reporter(engine.clone(), arn.clone(), report_rx));
        let suffix = unique_suffix(&engine.config.installation);
        let mut members = BTreeMap::new();
        for def in task.containers.iter().flatten() {
            let Some(name) = def.name.clone() else {
                continue;
            };
            let saved = record.containers.get(&name).cloned().unwrap_or_default();
            let docker_name = if saved.docker_name.is_empty() {
                spec::docker_name(&task, &name, &suffix)
            } else {
                saved.docker_name.clone()
            };
            members.insert(
                name,
                Member {
                    def: def.clone(),
                    docker_name,
                    id: saved.runtime_id.map(ContainerId::from),
                    status: Status::parse(&saved.known_status),
                    started: saved.started || saved.known_status == "RUNNING",
                    exit_code: saved.exit_code,
                    reason: saved.reason,
                    health: parse_health(saved.health.as_deref()),
                    health_since: saved.health_since,
                    metadata_token: saved
                        .metadata_token
                        .unwrap_or_else(|| format!("{:032x}", rand::random::<u128>())),
                    oom: false,
                    bindings: saved.network_bindings,
                    reported: saved.sent_status,
                    waiting_since: None,
                },
            );
        }
        let order = spec::start_order(&task).unwrap_or_else(|_| members.keys().cloned().collect());
        let saved_infra = record.infra.clone().unwrap_or_default();
        let infra = Infra {
            docker_name: if saved_infra.docker_name.is_empty() {
                spec::docker_name(&task, "internalecspause", &suffix)
            } else {
                saved_infra.docker_name
            },
            id: saved_infra.runtime_id.map(ContainerId::from),
            ready: false,
        };
        let (network_mode, eni) = match spec::task_network(&task) {
            Ok(TaskNetwork::Mode(mode)) => (Ok(mode), None),
            // The containers join the infra container's namespace; its id is filled in
            // before the first of them is created.
            Ok(TaskNetwork::Awsvpc(eni)) => (
                Ok(NetworkMode::Container(
                    infra
                        .id
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                )),
                Some(eni),
            ),
            Err(e) => (Err(e.0), None),
        };
        let stopping = match record.known_status.as_str() {
            "STOPPED" => Some(record.stopped_reason.clone()),
            _ => None,
        };
        Supervisor {
            network_mode,
            eni,
            infra,
            metadata_host: None,
            engine,
            arn,
            task,
            rx,
            reports,
            reporter: Some(reporter),
            members,
            order,
            pulled: false,
            volumes_ready: false,
            pull_started_at: record.pull_started_at,
            pull_stopped_at: record.pull_stopped_at,
            stopping,
            task_reported: record.sent_status,
            stopped_at: record.stopped_at,
            deferred: Vec::new(),
            shippers: BTreeMap::new(),
        }
    }

    fn desired_stopped(&self) -> bool {
        self.task.desired_status.as_deref() == Some("STOPPED")
    }

    async fn run(mut self) {
        let mut shutdown = self.engine.shutdown.clone();
        self.recover().await;
        if let Err(reason) = spec::start_order(&self.task) {
            self.stop_with(reason.0);
        }
        if let Err(reason) = self.network_mode.clone() {
            self.stop_with(reason);
        }
        loop {
            if *shutdown.borrow() {
                return;
            }
            if self.stopping.is_none() && self.desired_stopped() {
                self.stopping = Some(None);
            }
            if self.stopping.is_some() {
                break;
            }
            if let Err(reason) = self.progress().await {
                self.stop_with(reason);
                continue;
            }
            if self.desired_stopped() {
                continue; // it came while pulling
            }
            if self
                .members
                .values()
                .any(|m| m.essential() && m.status == Status::Stopped && m.started)
            {
                self.stop_with(ESSENTIAL_EXITED.to_owned());
                continue;
            }
            if self.members.values().all(|m| m.status == Status::Stopped) {
                self.stopping = Some(None);
                continue;
            }
            self.report_running_if_started();
            if !self.deferred.is_empty() {
                for message in std::mem::take(&mut self.deferred) {
                    self.handle(message).await;
                }
                continue;
            }
            let deadline = self.next_deadline();
            tokio::select! {
                message = self.rx.recv() => match message {
                    Some(message) => self.handle(message).await,
                    None => return,
                },
                _ = sleep_until(deadline) => {}
                _ = shutdown.changed() => return,
            }
        }
        self.stop_all().await;
        if *shutdown.borrow() {
            return;
        }
        self.report_stopped();
        self.remove_unstarted().await;
        self.cleanup_when_due().await;
    }

    fn stop_with(&mut self, reason: String) {
        if self.stopping.is_none() {
            tracing::info!(task = %self.arn, reason, "stopping task");
            self.stopping = Some(Some(reason));
        }
    }

    /// Finds the containers behind the task's members: from the state file, else by their
    /// labels; inspects each and takes its real state, reporting what changed meanwhile.
    async fn recover(&mut self) {
        let names: Vec<String> = self.members.keys().cloned().collect();
        for name in names {
            let adopted = lock(&self.engine.adoptable).remove(&(self.arn.clone(), name.clone()));
            let member = self.members.get_mut(&name).expect("member");
            match (&member.id, adopted) {
                (None, Some((id, docker_name))) => {
                    tracing::info!(task = %self.arn, container = %name, id = %id, "adopting container found by its labels");
                    member.id = Some(id);
                    member.docker_name = docker_name;
                }
                (Some(known), Some((other, _))) if *known != other => {
                    tracing::warn!(task = %self.arn, container = %name, %known, duplicate = %other, "two containers for one task container; keeping the one in the state file");
                }
                _ => {}
            }
            let Some(id) = member.id.clone() else {
                continue;
            };
            lock(&self.engine.routes).insert(id.clone(), self.arn.clone());
            self.refresh(&name).await;
        }
        if self.eni.is_some() {
            let adopted = lock(&self.engine.adoptable)
                .remove(&(self.arn.clone(), PAUSE_CONTAINER_NAME.to_owned()));
            if let (None, Some((id, docker_name))) = (&self.infra.id, adopted) {
                tracing::info!(task = %self.arn, id = %id, "adopting the infra container found by its labels");
                self.infra.id = Some(id);
                self.infra.docker_name = docker_name;
            }
            if let Some(id) = &self.infra.id {
                lock(&self.engine.routes).insert(id.clone(), self.arn.clone());
                self.network_mode = Ok(NetworkMode::Container(id.to_string()));
            }
        }
        self.save();
        let names: Vec<String> = self.members.keys().cloned().collect();
        for name in names {
            self.report_container_if_changed(&name);
            // What a container that ran wrote is shipped from where the last agent left
            // off (the cursor the server holds).
            if self.members[&name].started
                && let Ok(Some(options)) = self.awslogs_options(&name)
            {
                self.ship_logs(&name, options);
            }
        }
    }

    /// Re-reads a container from the runtime and takes in what it says.
    async fn refresh(&mut self, name: &str) {
        let Some(id) = self.members[name].id.clone() else {
            return;
        };
        match self.engine.runtime.inspect_container(&id).await {
            Ok(status) => self.observe(name, &status),
            Err(RuntimeError::NotFound(_)) => {
                let member = self.members.get_mut(name).expect("member");
                if member.status < Status::Running && !member.started {
                    // Never started: create it again.
                    member.id = None;
                    member.status = Status::None;
                } else if member.status != Status::Stopped {
                    member.status = Status::Stopped;
                    member.reason.get_or_insert_with(|| {
                        "The container was removed outside the agent".to_owned()
                    });
                }
            }
            Err(e) => {
                tracing::warn!(task = %self.arn, container = name, error = %e, "cannot inspect container");
            }
        }
    }

    /// Takes in an inspected status.
    fn observe(&mut self, name: &str, status: &ContainerStatus) {
        let network_mode = self.network_mode.clone().unwrap_or(NetworkMode::Bridge);
        self.set_health(name, status.health);
        let member = self.members.get_mut(name).expect("member");
        // A container adopted by its labels keeps the endpoint it was created with.
        if let Some(token) = status.env.iter().find_map(|variable| {
            let uri = variable
                .strip_prefix(spec::METADATA_URI_V4)?
                .strip_prefix('=')?;
            endpoint::token_of(uri)
        }) {
            member.metadata_token = token.to_owned();
        }
        member.oom |= status.oom_killed;
        let ever_started = status.started_at.is_some_and(|t| t.year() > 1970) || member.started;
        match status.state {
            ContainerState::Running | ContainerState::Paused | ContainerState::Restarting => {
                member.status = Status::Running;
                member.started = true;
                member.bindings = bindings(&member.def, status, &network_mode);
            }
            ContainerState::Created => {
                if member.status < Status::Created {
                    member.status = Status::Created;
                }
            }
            ContainerState::Exited | ContainerState::Dead | ContainerState::Removing => {
                if ever_started {
                    member.started = true;
                    member.status = Status::Stopped;
                    member.exit_code = status.exit_code.or(member.exit_code);
                    if member.oom {
                        member.reason.get_or_insert_with(|| OOM_REASON.to_owned());
                    } else if !status.error.is_empty() {
                        member.reason.get_or_insert_with(|| status.error.clone());
                    }
                } else if member.status < Status::Created {
                    member.status = Status::Created;
                }
            }
        }
    }

    async fn handle(&mut self, message: TaskMsg) {
        match message {
            TaskMsg::Desired(task) => self.take_desired(&task),
            TaskMsg::Event(event) => {
                let Some(name) = self
                    .members
                    .iter()
                    .find(|(_, m)| m.id.as_ref() == Some(&event.id))
                    .map(|(n, _)| n.clone())
                else {
                    return;
                };
                match event.kind {
                    ContainerEventKind::Health(health) => self.set_health(&name, health),
                    ContainerEventKind::OomKilled => {
                        self.members.get_mut(&name).expect("member").oom = true;
                    }
                    ContainerEventKind::Destroyed => {
                        let member = self.members.get_mut(&name).expect("member");
                        if member.status != Status::Stopped {
                            member.status = Status::Stopped;
                            member.reason.get_or_insert_with(|| {
                                "The container was removed outside the agent".to_owned()
                            });
                        }
                    }
                    ContainerEventKind::Started | ContainerEventKind::Died { .. } => {
                        self.refresh(&name).await;
                    }
                }
                self.save();
                self.report_container_if_changed(&name);
            }
            TaskMsg::CleanUpNow => {}
            TaskMsg::Reconcile => {
                let names: Vec<String> = self.members.keys().cloned().collect();
                for name in names {
                    self.refresh(&name).await;
                    self.report_container_if_changed(&name);
                }
                self.save();
            }
        }
    }

    /// A payload's word on the task: only where it should be, its content never changes.
    fn take_desired(&mut self, task: &Task) {
        if task.desired_status.is_some() {
            self.task.desired_status = task.desired_status.clone();
            self.engine.state.update_task(&self.arn, |r| {
                r.task.desired_status = task.desired_status.clone()
            });
        }
    }

    /// Takes in a container's health; a change is timed and announced.
    fn set_health(&mut self, name: &str, health: HealthStatus) {
        let member = self.members.get_mut(name).expect("member");
        if member.health != health {
            member.health = health;
            member.health_since = Some(now_seconds());
            self.engine.health_changes.send_modify(|n| *n += 1);
        } else if member.health_since.is_none() && health != HealthStatus::None {
            member.health_since = Some(now_seconds());
        }
    }

    /// Pulls, creates and starts whatever may start now. `Err` is why the task cannot run.
    async fn progress(&mut self) -> Result<(), String> {
        if !self.pulled {
            if !self.pull_images().await? {
                return Ok(()); // interrupted: the run loop sees why
            }
            self.pulled = true;
        }
        if self.eni.is_some() && !self.infra.ready {
            let infra = self.ensure_infra().await;
            // Replaces a warm container taken (after this task's, so as not to compete with it
            // for the runtime: below).
            let refill = infra.is_ok();
            infra?;
            if refill {
                let started = self.start_ready().await;
                self.engine.fill_warm();
                return started;
            }
        }
        self.start_ready().await
    }

    /// Creates and starts the task's containers whose dependencies allow it.
    async fn start_ready(&mut self) -> Result<(), String> {
        let order = self.order.clone();
        for name in order {
            let member = &self.members[&name];
            if member.status >= Status::Running {
                continue;
            }
            match self.readiness(&name) {
                Readiness::Waiting => {
                    let member = self.members.get_mut(&name).expect("member");
                    member.waiting_since.get_or_insert_with(Instant::now);
                    continue;
                }
                Readiness::Never(reason) => return Err(reason),
                Readiness::Ready => {}
            }
            self.start_member(&name).await?;
        }
        Ok(())
    }

    /// Pulls what the task's containers need. `Ok(false)` if the pull was abandoned: the
    /// task is to stop, or the agent to shut down.
    async fn pull_images(&mut self) -> Result<bool, String> {
        let mut images: Vec<(String, Option<RegistryAuthenticationData>)> = Vec::new();
        for member in self.members.values() {
            if member.id.is_some() || member.status == Status::Stopped {
                continue;
            }
            if let Some(image) = &member.def.image
                && !images.iter().any(|(i, _)| i == image)
            {
                images.push((image.clone(), member.def.registry_authentication.clone()));
            }
        }
        if images.is_empty() {
            return Ok(true);
        }
        self.pull_started_at.get_or_insert_with(now_seconds);
        let started = self.pull_started_at;
        self.engine
            .state
            .update_task(&self.arn, |r| r.pull_started_at = started);
        for (image, auth) in images {
            let engine = self.engine.clone();
            let wanted = image.clone();
            let pull = async move { engine.ensure_image(&wanted, auth.as_ref()).await };
            let Some(pulled) = self.while_pulling(pull).await else {
                tracing::info!(task = %self.arn, image, "image pull abandoned");
                return Ok(false);
            };
            if let Err(e) = pulled {
                let reason = format!("CannotPullContainerError: {e}");
                for member in self.members.values_mut() {
                    if member.def.image.as_deref() == Some(image.as_str()) {
                        member.reason = Some(reason.clone());
                    }
                }
                return Err(reason);
            }
        }
        self.pull_stopped_at = Some(now_seconds());
        let (started, stopped) = (self.pull_started_at, self.pull_stopped_at);
        self.engine.state.update_task(&self.arn, |r| {
            r.pull_started_at = started;
            r.pull_stopped_at = stopped;
        });
        Ok(true)
    }

    /// Waits for `pull` while still taking the task's messages: a desired status of STOPPED
    /// (or the agent shutting down) abandons it (`None`); other messages wait until after.
    async fn while_pulling(
        &mut self,
        pull: impl Future<Output = Result<(), String>>,
    ) -> Option<Result<(), String>> {
        tokio::pin!(pull);
        let mut shutdown = self.engine.shutdown.clone();
        loop {
            tokio::select! {
                result = &mut pull => return Some(result),
                message = self.rx.recv() => match message {
                    Some(TaskMsg::Desired(task)) => {
                        self.take_desired(&task);
                        if self.desired_stopped() {
                            return None;
                        }
                    }
                    Some(other) => self.deferred.push(other),
                    None => return None,
                },
                _ = shutdown.changed() => return None,
            }
        }
    }

    fn readiness(&self, name: &str) -> Readiness {
        let member = &self.members[name];
        // links and volumesFrom need their target running.
        let implicit = spec::dependencies(&member.def)
            .into_iter()
            .map(|d| (d, "START".to_owned()));
        let explicit = member.def.depends_on.iter().flatten().filter_map(|d| {
            Some((
                d.container_name.clone()?,
                d.condition.clone().unwrap_or_else(|| "START".into()),
            ))
        });
        let mut waiting = false;
        for (dep_name, condition) in explicit.chain(implicit) {
            let Some(dep) = self.members.get(&dep_name) else {
                return Readiness::Never(format!(
                    "container {name} depends on {dep_name}, which is not in the task"
                ));
            };
            let satisfied = match condition.as_str() {
                "START" => dep.started,
                "COMPLETE" => dep.status == Status::Stopped && dep.started,
                "SUCCESS" => {
                    if dep.status == Status::Stopped && dep.started {
                        if dep.exit_code != Some(0) {
                            return Readiness::Never(format!(
                                "dependency {dep_name} of container {name} exited with code {} (condition SUCCESS)",
                                dep.exit_code
                                    .map_or("unknown".to_owned(), |c| c.to_string())
                            ));
                        }
                        true
                    } else {
                        false
                    }
                }
                "HEALTHY" => {
                    if dep.status == Status::Stopped || dep.health == HealthStatus::Unhealthy {
                        return Readiness::Never(format!(
                            "dependency {dep_name} of container {name} did not become healthy (condition HEALTHY)"
                        ));
                    }
                    dep.health == HealthStatus::Healthy
                }
                other => {
                    return Readiness::Never(format!(
                        "unknown dependency condition {other:?} in container {name}"
                    ));
                }
            };
            // A dependency that stopped before it ever started will never satisfy anything.
            if !satisfied && dep.status == Status::Stopped && !dep.started {
                return Readiness::Never(format!(
                    "dependency {dep_name} of container {name} never started"
                ));
            }
            waiting |= !satisfied;
        }
        if !waiting {
            return Readiness::Ready;
        }
        let timeout = member
            .def
            .start_timeout
            .filter(|t| *t > 0)
            .map_or(DEFAULT_START_TIMEOUT, |t| Duration::from_secs(t as u64));
        if member
            .waiting_since
            .is_some_and(|since| since.elapsed() >= timeout)
        {
            return Readiness::Never(format!(
                "container {name}: dependencies not resolved within its startTimeout of {}s",
                timeout.as_secs()
            ));
        }
        Readiness::Waiting
    }

    /// The next time a waiting container's `startTimeout` runs out.
    fn next_deadline(&self) -> Option<Instant> {
        self.members
            .values()
            .filter(|m| m.status < Status::Running)
            .filter_map(|m| {
                let timeout = m
                    .def
                    .start_timeout
                    .filter(|t| *t > 0)
                    .map_or(DEFAULT_START_TIMEOUT, |t| Duration::from_secs(t as u64));
                Some(m.waiting_since? + timeout)
            })
            .min()
    }

    async fn start_member(&mut self, name: &str) -> Result<(), String> {
        if self.members[name].id.is_none() {
            let volumes = self.prepare_volumes().await?;
            let spec = self.container_spec(name, &volumes)?;
            let id = self
                .engine
                .runtime
                .create_container(&spec)
                .await
                .map_err(|e| {
                    self.fail_member(
                        name,
                        format!("CannotCreateContainerError: {}", e.daemon_reason()),
                    )
                })?;
            lock(&self.engine.routes).insert(id.clone(), self.arn.clone());
            let member = self.members.get_mut(name).expect("member");
            member.id = Some(id);
            member.status = Status::Created;
            self.save();
        }
        let id = self.members[name].id.clone().expect("created");
        // awslogs: the group and stream exist before the container starts, as Docker's
        // driver makes them when it starts.
        let awslogs = self
            .awslogs_options(name)
            .map_err(|e| self.fail_member(name, e))?;
        if let Some(options) = &awslogs {
            let stream = options.stream_name(name, &self.arn, id.as_str());
            awslogs::prepare(&*self.logs_api(), options, &stream)
                .await
                .map_err(|e| self.fail_member(name, e))?;
        }
        self.engine
            .runtime
            .start_container(&id)
            .await
            .map_err(|e| {
                self.fail_member(
                    name,
                    format!("CannotStartContainerError: {}", e.daemon_reason()),
                )
            })?;
        if let Some(options) = awslogs {
            self.ship_logs(name, options);
        }
        {
            let member = self.members.get_mut(name).expect("member");
            member.started = true;
            member.status = Status::Running;
            member.waiting_since = None;
        }
        // The container may already have exited; inspect says which.
        self.refresh(name).await;
        self.save();
        self.report_container_if_changed(name);
        Ok(())
    }

    /// awsvpc: makes sure the infra container runs on the subnet's network with the task's
    /// address (creating the network as needed), so the task's containers can join its
    /// namespace: a warm one connected to the network if one is ready, else one made here.
    async fn ensure_infra(&mut self) -> Result<(), String> {
        let Some(eni) = self.eni.clone() else {
            return Ok(());
        };
        self.engine.warm.activate();
        let runtime = self.engine.runtime.clone();
        if let Some(id) = self.infra.id.clone() {
            match runtime.inspect_container(&id).await {
                // A warm container taken but not connected yet has no address.
                Ok(status)
                    if status.state == ContainerState::Running && status.ip_address.is_none() =>
                {
                    return self.connect_warm(&eni, id).await;
                }
                Ok(status) if status.state == ContainerState::Running => {
                    return self.infra_up(&eni, id).await;
                }
                Ok(status) if status.state == ContainerState::Created => {}
                Ok(_) | Err(RuntimeError::NotFound(_)) => {
                    if self.members.values().any(|m| m.started) {
                        return Err("CannotStartContainerError: the task's network namespace is gone (its infra container stopped)".to_owned());
                    }
                    // Never used: start over with a new one.
                    let _ = runtime.remove_container(&id).await;
                    lock(&self.engine.routes).remove(&id);
                    self.infra.id = None;
                }
                Err(e) => {
                    return Err(format!(
                        "CannotStartContainerError: infra container: {}",
                        e.daemon_reason()
                    ));
                }
            }
        }
        if self.infra.id.is_none() {
            self.engine.ensure_network(&eni).await?;
            if let Some(warm) = self.engine.warm.take() {
                // Recorded before it is connected: a restarted agent finds it by the record.
                lock(&self.engine.routes).insert(warm.id.clone(), self.arn.clone());
                self.infra.id = Some(warm.id.clone());
                self.save();
                let name = self.infra.docker_name.clone();
                let (connected, renamed) = tokio::join!(
                    self.connect_warm(&eni, warm.id.clone()),
                    runtime.rename_container(&warm.id, &name)
                );
                if let Err(e) = renamed {
                    tracing::debug!(task = %self.arn, error = %e, "renaming the warm infra container failed; it keeps its name");
                    self.infra.docker_name = warm.name;
                    self.save();
                }
                return connected;
            }
            self.engine.ensure_pause_image().await?;
            let spec = infra::infra_spec(
                &self.task,
                &eni,
                &self.infra.docker_name,
                &self.engine.config.cluster,
                &self.engine.config.instance_arn,
                &self.engine.config.installation,
            );
            let mut created = runtime.create_container(&spec).await;
            if let Err(RuntimeError::NotFound(_)) = &created {
                // The network went away since it was made (another agent of this
                // installation on this host removed it, idle, as it stopped): make it again,
                // once.
                let network = infra::network_name(&self.engine.config.installation, &eni.subnet_id);
                self.engine.forget_network(&network).await;
                self.engine.ensure_network(&eni).await?;
                created = runtime.create_container(&spec).await;
            }
            let id = created.map_err(|e| {
                format!(
                    "CannotCreateContainerError: infra container: {}",
                    e.daemon_reason()
                )
            })?;
            lock(&self.engine.routes).insert(id.clone(), self.arn.clone());
            self.infra.id = Some(id);
            self.save();
        }
        let id = self.infra.id.clone().expect("created");
        runtime.start_container(&id).await.map_err(|e| {
            format!(
                "CannotStartContainerError: infra container: {}",
                e.daemon_reason()
            )
        })?;
        self.infra_up(&eni, id).await
    }

    /// Connects the task's (warm, running) infra container to the subnet's network with the
    /// task's address and MAC.
    async fn connect_warm(&mut self, eni: &TaskEni, id: ContainerId) -> Result<(), String> {
        let network = infra::network_name(&self.engine.config.installation, &eni.subnet_id);
        let mac = Some(eni.mac_address.as_str()).filter(|m| !m.is_empty());
        let runtime = self.engine.runtime.clone();
        let mut connected = runtime
            .connect_network(&id, &network, &eni.ipv4_address, mac)
            .await;
        if let Err(RuntimeError::NotFound(_)) = &connected {
            // The network went away since it was made (the container is there: it was just
            // inspected or taken): make it again, once.
            self.engine.forget_network(&network).await;
            self.engine.ensure_network(eni).await?;
            connected = runtime
                .connect_network(&id, &network, &eni.ipv4_address, mac)
                .await;
        }
        connected.map_err(|e| {
            format!(
                "CannotStartContainerError: connecting the infra container to {network} as {}: {}",
                eni.ipv4_address,
                e.daemon_reason()
            )
        })?;
        self.infra_up(eni, id).await
    }

    /// The infra container runs with the task's address: the task's containers may join it.
    async fn infra_up(&mut self, eni: &TaskEni, id: ContainerId) -> Result<(), String> {
        tracing::info!(task = %self.arn, address = %eni.ipv4_address, subnet = %eni.subnet_id, "task network namespace up");
        self.metadata_on_gateway(eni).await;
        self.infra.ready = true;
        self.network_mode = Ok(NetworkMode::Container(id.to_string()));
        Ok(())
    }

    /// awsvpc: has the task metadata endpoint listen on the subnet's gateway too (the host's
    /// address on the subnet's network, which the task's namespace reaches), so the task's
    /// containers get an endpoint; without it they get none.
    async fn metadata_on_gateway(&mut self, eni: &TaskEni) {
        self.metadata_host = None;
        let (Some(requests), Ok(gateway)) = (
            self.engine.config.metadata_listen.as_ref(),
            eni.gateway.parse::<std::net::IpAddr>(),
        ) else {
            return;
        };
        if requests.listen(gateway).await {
            self.metadata_host = Some(eni.gateway.clone());
        }
    }

    /// Stops the infra container once the task's containers are stopped, which gives the
    /// address back to the subnet's network before STOPPED is reported (the control plane
    /// may hand the address to another task then).
    async fn stop_infra(&mut self) {
        let Some(id) = self.infra.id.clone() else {
            return;
        };
        match self
            .engine
            .runtime
            .stop_container(&id, Duration::ZERO)
            .await
        {
            Ok(()) | Err(RuntimeError::NotFound(_)) => self.infra.ready = false,
            Err(e) => {
                tracing::warn!(task = %self.arn, container = %id, error = %e, "stopping the infra container failed")
            }
        }
    }

    /// Records why a container could not be created or started; the task fails with it.
    fn fail_member(&mut self, name: &str, reason: String) -> String {
        if let Some(member) = self.members.get_mut(name) {
            member.reason = Some(reason.clone());
        }
        reason
    }

    fn container_spec(
        &mut self,
        name: &str,
        volumes: &BTreeMap<String, spec::ResolvedVolume>,
    ) -> Result<berth_runtime::ContainerSpec, String> {
        let network_mode = self.network_mode.clone()?;
        let docker_names: BTreeMap<String, String> = self
            .members
            .iter()
            .map(|(n, m)| (n.clone(), m.docker_name.clone()))
            .collect();
        let metadata_uris: BTreeMap<String, String> = self
            .engine
            .config
            .metadata
            .as_ref()
            .and_then(|endpoint| {
                let token = &self.members[name].metadata_token;
                match (&network_mode, &self.metadata_host) {
                    (NetworkMode::Container(_), Some(host)) if self.eni.is_some() => {
                        Some(format!("http://{host}:{}/v4/{token}", endpoint.port))
                    }
                    _ => endpoint.uri(&network_mode, token),
                }
            })
            .map(|uri| (name.to_owned(), uri))
            .into_iter()
            .collect();
        let layout = TaskLayout {
            task: &self.task,
            cluster: &self.engine.config.cluster,
            instance_arn: &self.engine.config.instance_arn,
            installation: &self.engine.config.installation,
            network_mode: &network_mode,
            docker_names: &docker_names,
            volumes,
            metadata_uris: &metadata_uris,
        };
        let mut spec = spec::container_spec(&layout, &self.members[name].def)
            .map_err(|e| self.fail_member(name, format!("CannotCreateContainerError: {e}")))?;
        if self.awslogs_options(name)?.is_some() {
            // Docker keeps the log on disk for the agent's shipper to read back.
            spec.log_config = Some(berth_runtime::LogConfig {
                driver: "json-file".to_owned(),
                options: BTreeMap::from([
                    (
                        "max-size".to_owned(),
                        awslogs::JSON_FILE_MAX_SIZE.to_owned(),
                    ),
                    (
                        "max-file".to_owned(),
                        awslogs::JSON_FILE_MAX_FILES.to_owned(),
                    ),
                ]),
            });
        }
        Ok(spec)
    }

    /// The container's awslogs options when its log driver is awslogs; `Err` is the task's
    /// stopped reason when they are not valid (Docker's check at create).
    fn awslogs_options(&mut self, name: &str) -> Result<Option<AwslogsOptions>, String> {
        let Some(log) = spec::log_config(&self.members[name].def) else {
            return Ok(None);
        };
        if log.driver != awslogs::DRIVER {
            return Ok(None);
        }
        // The instance's region (its ARN's) when the options name none.
        let region = self
            .engine
            .config
            .instance_arn
            .split(':')
            .nth(3)
            .unwrap_or_default();
        AwslogsOptions::parse(&log.options, region)
            .map(Some)
            .map_err(|e| {
                self.fail_member(
                    name,
                    format!("CannotCreateContainerError: Error response from daemon: {e}"),
                )
            })
    }

    fn logs_api(&self) -> Arc<dyn LogsApi> {
        self.engine.control.clone()
    }

    /// Starts shipping a container's log (once: a running shipper is left alone).
    fn ship_logs(&mut self, name: &str, options: AwslogsOptions) {
        let Some(id) = self.members[name].id.clone() else {
            return;
        };
        if self
            .shippers
            .get(name)
            .is_some_and(|(shipper, _)| !shipper.is_finished())
        {
            return;
        }
        let stream = options.stream_name(name, &self.arn, id.as_str());
        tracing::debug!(task = %self.arn, container = name, group = %options.group, %stream, "shipping the container's log");
        let progress = Progress::now();
        let shipper = Shipper {
            logs: self.logs_api(),
            runtime: self.engine.runtime.clone(),
            container: id,
            options,
            stream,
            progress: progress.clone(),
            shutdown: self.engine.shutdown.clone(),
        };
        self.shippers
            .insert(name.to_owned(), (tokio::spawn(shipper.run()), progress));
    }

    /// Waits for the shippers to deliver what the stopped containers wrote; one that makes
    /// no progress for [`awslogs::DRAIN_LIMIT`] is given up on. `false` on shutdown.
    async fn drain_shippers(&mut self) -> bool {
        let mut shutdown = self.engine.shutdown.clone();
        for (name, (mut shipper, progress)) in std::mem::take(&mut self.shippers) {
            loop {
                tokio::select! {
                    _ = &mut shipper => break,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {
                        if progress.idle_for() >= awslogs::DRAIN_LIMIT {
                            tracing::warn!(task = %self.arn, container = %name, "the container's log could not be delivered for {:?}; the rest of it is lost", awslogs::DRAIN_LIMIT);
                            shipper.abort();
                            break;
                        }
                    }
                    _ = shutdown.changed() => return false,
                }
            }
        }
        true
    }

    /// The task's volumes, resolved and (once per supervisor) created where they are Docker
    /// volumes to provision.
    async fn prepare_volumes(&mut self) -> Result<BTreeMap<String, spec::ResolvedVolume>, String> {
        let volumes = self.volumes()?;
        if !self.volumes_ready {
            for volume in volumes.values() {
                if let spec::ResolvedVolume::Docker {
                    autoprovision: true,
                    ..
                } = volume
                    && let Some(spec) = volume.volume_spec()
                {
                    self.engine
                        .runtime
                        .create_volume(&spec)
                        .await
                        .map_err(|e| {
                            format!(
                                "CannotCreateContainerError: creating volume {}: {e}",
                                spec.name
                            )
                        })?;
                }
            }
            self.volumes_ready = true;
        }
        Ok(volumes)
    }

    /// The task's volumes, resolved once and remembered.
    fn volumes(&mut self) -> Result<BTreeMap<String, spec::ResolvedVolume>, String> {
        if let Some(saved) = self.engine.state.task(&self.arn).map(|r| r.volumes)
            && (!saved.is_empty() || self.task.volumes.as_ref().is_none_or(Vec::is_empty))
        {
            return Ok(saved);
        }
        let suffix = unique_suffix(&self.engine.config.installation);
        let mut volumes =
            spec::resolve_volumes(&self.task, &suffix, self.engine.config.efs_root.as_deref())
                .map_err(|e| e.0)?;
        for volume in volumes.values_mut() {
            if let ResolvedVolume::Docker {
                labels,
                task_scoped: true,
                ..
            } = volume
            {
                labels.insert(
                    LABEL_INSTALLATION.to_owned(),
                    self.engine.config.installation.to_string(),
                );
            }
            if let ResolvedVolume::Efs { path } = volume {
                std::fs::create_dir_all(&*path)
                    .map_err(|e| format!("creating the EFS directory {path}: {e}"))?;
            }
        }
        let saved = volumes.clone();
        self.engine
            .state
            .update_task(&self.arn, |r| r.volumes = saved);
        Ok(volumes)
    }

    /// Stops every container still running, dependents before their dependencies, each
    /// with its stopTimeout.
    async fn stop_all(&mut self) {
        // Containers that never ran are done.
        for member in self.members.values_mut() {
            if member.status < Status::Running {
                member.status = Status::Stopped;
            }
        }
        loop {
            let running: Vec<String> = self
                .members
                .iter()
                .filter(|(_, m)| m.status == Status::Running)
                .map(|(n, _)| n.clone())
                .collect();
            if running.is_empty() {
                break;
            }
            // Those no other running container depends on go first.
            let wave: Vec<String> = running
                .iter()
                .filter(|name| {
                    !running.iter().any(|other| {
                        other != *name
                            && spec::dependencies(&self.members[other].def).contains(name)
                    })
                })
                .cloned()
                .collect();
            let wave = if wave.is_empty() { running } else { wave };
            let default_timeout = self.engine.config.default_stop_timeout;
            let stops = wave.iter().map(|name| {
                let member = &self.members[name];
                let id = member.id.clone().expect("a running container has an id");
                let timeout = member.stop_timeout(default_timeout);
                let runtime = self.engine.runtime.clone();
                async move { (name.clone(), runtime.stop_container(&id, timeout).await) }
            });
            for (name, result) in futures_util::future::join_all(stops).await {
                if let Err(e) = &result {
                    tracing::warn!(task = %self.arn, container = %name, error = %e, "stopping container failed");
                }
                self.refresh(&name).await;
                let member = self.members.get_mut(&name).expect("member");
                if member.status == Status::Running {
                    if result.is_ok() {
                        // Stopped, whatever inspect said a moment ago.
                        member.status = Status::Stopped;
                    } else {
                        // The runtime cannot stop it (Docker gone?): try again shortly.
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
                self.report_container_if_changed(&name);
            }
            self.save();
            if *self.engine.shutdown.borrow() {
                return;
            }
        }
        let names: Vec<String> = self.members.keys().cloned().collect();
        for name in names {
            self.report_container_if_changed(&name);
        }
        self.stop_infra().await;
        self.stopped_at.get_or_insert_with(now_seconds);
        self.save();
    }

    fn report_container_if_changed(&mut self, name: &str) {
        let member = self.members.get_mut(name).expect("member");
        let status = match member.status {
            Status::Running => "RUNNING",
            Status::Stopped if member.started || member.reason.is_some() => "STOPPED",
            _ => return,
        };
        if member.reported.as_deref() == Some(status) {
            return;
        }
        member.reported = Some(status.to_owned());
        let change = ContainerStateChange {
            cluster: self.engine.config.cluster.clone(),
            task: self.arn.clone(),
            container_name: name.to_owned(),
            status: status.to_owned(),
            runtime_id: member.id.as_ref().map(|id| id.to_string()),
            exit_code: member.exit_code.filter(|_| status == "STOPPED"),
            reason: member.reason.clone(),
            network_bindings: if status == "RUNNING" {
                member.bindings.clone()
            } else {
                Vec::new()
            },
        };
        let _ = self.reports.send(Report::Container(change));
    }

    fn containers_in_change(&self) -> Vec<ContainerChangeInTask> {
        self.members
            .iter()
            .map(|(name, m)| ContainerChangeInTask {
                container_name: name.clone(),
                status: if m.status == Status::Stopped {
                    "STOPPED"
                } else {
                    m.status.as_str()
                }
                .to_owned(),
                runtime_id: m.id.as_ref().map(|id| id.to_string()),
                exit_code: m.exit_code.filter(|_| m.status == Status::Stopped),
                reason: m.reason.clone(),
                network_bindings: if m.status == Status::Running {
                    m.bindings.clone()
                } else {
                    Vec::new()
                },
            })
            .collect()
    }

    /// RUNNING once every container has started (those that have since exited included).
    fn report_running_if_started(&mut self) {
        if self.task_reported.is_some() || !self.members.values().all(|m| m.started) {
            return;
        }
        self.task_reported = Some("RUNNING".to_owned());
        self.engine
            .state
            .update_task(&self.arn, |r| r.known_status = "RUNNING".to_owned());
        let change = TaskStateChange {
            cluster: self.engine.config.cluster.clone(),
            task: self.arn.clone(),
            status: "RUNNING".to_owned(),
            reason: None,
            pull_started_at: self.pull_started_at,
            pull_stopped_at: self.pull_stopped_at,
            execution_stopped_at: None,
            containers: self.containers_in_change(),
            // Its containers run in the interface's namespace, so it is attached.
            attachments: self
                .eni
                .iter()
                .map(|eni| AttachmentStateChange {
                    attachment_arn: eni.attachment_arn.clone(),
                    status: "ATTACHED".to_owned(),
                })
                .collect(),
        };
        let _ = self.reports.send(Report::Task(change));
    }

    fn report_stopped(&mut self) {
        let reason = self.stopping.clone().flatten();
        let stopped_at = self.stopped_at;
        self.engine.state.update_task(&self.arn, |r| {
            r.known_status = "STOPPED".to_owned();
            r.stopped_reason = reason.clone();
            r.stopped_at = stopped_at;
        });
        if self.task_reported.as_deref() == Some("STOPPED") {
            return;
        }
        self.task_reported = Some("STOPPED".to_owned());
        let change = TaskStateChange {
            cluster: self.engine.config.cluster.clone(),
            task: self.arn.clone(),
            status: "STOPPED".to_owned(),
            reason,
            pull_started_at: self.pull_started_at,
            pull_stopped_at: self.pull_stopped_at,
            execution_stopped_at: stopped_at,
            containers: self.containers_in_change(),
            attachments: Vec::new(),
        };
        let _ = self.reports.send(Report::Task(change));
    }

    /// Removes at once the containers of a task that never started them (a failed create or
    /// start, a conflict over a host port, an address or a name): they hold nothing worth
    /// keeping, and a service retrying such a task would otherwise pile them up. When no
    /// container of the task ever started, its infra container goes too.
    async fn remove_unstarted(&mut self) {
        let runtime = self.engine.runtime.clone();
        let mut removed = Vec::new();
        for (name, member) in self.members.iter_mut().filter(|(_, m)| !m.started) {
            let Some(id) = member.id.clone() else {
                continue;
            };
            match runtime.remove_container(&id).await {
                Ok(()) | Err(RuntimeError::NotFound(_)) => {
                    lock(&self.engine.routes).remove(&id);
                    member.id = None;
                    removed.push(name.clone());
                }
                Err(e) => {
                    tracing::warn!(task = %self.arn, container = %id, error = %e, "removing a container that never started failed")
                }
            }
        }
        if !self.members.values().any(|m| m.started)
            && let Some(id) = self.infra.id.clone()
        {
            match runtime.remove_container(&id).await {
                Ok(()) | Err(RuntimeError::NotFound(_)) => {
                    lock(&self.engine.routes).remove(&id);
                    self.infra.id = None;
                    removed.push(PAUSE_CONTAINER_NAME.to_owned());
                }
                Err(e) => {
                    tracing::warn!(task = %self.arn, container = %id, error = %e, "removing the infra container of a task that never started failed")
                }
            }
        }
        if !removed.is_empty() {
            tracing::info!(task = %self.arn, containers = ?removed, "removed the containers of a task that did not start");
            self.save();
        }
    }

    /// Waits out the cleanup delay (cut short when too many stopped tasks wait on this host),
    /// then removes the containers, the task's own volumes and, once its reports are
    /// delivered, the task's record.
    async fn cleanup_when_due(mut self) {
        let mut shutdown = self.engine.shutdown.clone();
        let stopped_at = self.stopped_at.unwrap_or_else(now_seconds);
        let elapsed = (now_seconds() - stopped_at).max(0.0);
        let wait = self
            .engine
            .config
            .cleanup_delay
            .saturating_sub(Duration::from_secs_f64(elapsed));
        let waiting = (StoppedAt(stopped_at), self.arn.clone());
        self.engine.wait_for_cleanup(waiting.clone());
        let due = tokio::time::sleep(wait);
        tokio::pin!(due);
        let now = loop {
            tokio::select! {
                _ = &mut due => break true,
                // Payloads naming the stopped task again need nothing.
                message = self.rx.recv() => match message {
                    Some(TaskMsg::CleanUpNow) => break true,
                    Some(_) => {}
                    None => break false,
                },
                _ = shutdown.changed() => break false,
            }
        };
        lock(&self.engine.stopped).remove(&waiting);
        if !now || !self.drain_shippers().await {
            return;
        }
        let infra = self.infra.id.iter();
        for id in self
            .members
            .values()
            .filter_map(|m| m.id.as_ref())
            .chain(infra)
        {
            match self.engine.runtime.remove_container(id).await {
                Ok(()) | Err(RuntimeError::NotFound(_)) => {}
                Err(e) => {
                    tracing::warn!(task = %self.arn, container = %id, error = %e, "removing container failed")
                }
            }
            lock(&self.engine.routes).remove(id);
        }
        let volumes = self
            .engine
            .state
            .task(&self.arn)
            .map(|r| r.volumes)
            .unwrap_or_default();
        for volume in volumes.values() {
            if let spec::ResolvedVolume::Docker {
                name,
                task_scoped: true,
                ..
            } = volume
                && let Err(e) = self.engine.runtime.remove_volume(name).await
                && !matches!(e, RuntimeError::NotFound(_))
            {
                tracing::warn!(task = %self.arn, volume = %name, error = %e, "removing volume failed");
            }
        }
        // The record goes once every report is delivered: a restarted agent that lost it
        // before the control plane heard STOPPED could start the task again.
        let (closed, _) = mpsc::unbounded_channel();
        drop(std::mem::replace(&mut self.reports, closed));
        if let Some(reporter) = self.reporter.take() {
            let _ = reporter.await;
        }
        if *self.engine.shutdown.borrow() {
            return;
        }
        self.engine.state.update(|s| s.tasks.remove(&self.arn));
        lock(&self.engine.tasks).remove(&self.arn);
        tracing::debug!(task = %self.arn, "task cleaned up");
    }

    /// Writes the members' state into the task's record.
    fn save(&self) {
        let members: Vec<(String, ContainerRecord)> = self
            .members
            .iter()
            .map(|(name, m)| {
                let record = ContainerRecord {
                    docker_name: m.docker_name.clone(),
                    runtime_id: m.id.as_ref().map(|id| id.to_string()),
                    known_status: m.status.as_str().to_owned(),
                    started: m.started,
                    sent_status: None,
                    exit_code: m.exit_code,
                    reason: m.reason.clone(),
                    network_bindings: m.bindings.clone(),
                    metadata_token: Some(m.metadata_token.clone()),
                    health: health_name(m.health).map(str::to_owned),
                    health_since: m.health_since.filter(|_| m.health != HealthStatus::None),
                };
                (name.clone(), record)
            })
            .collect();
        let infra = self.eni.as_ref().map(|_| ContainerRecord {
            docker_name: self.infra.docker_name.clone(),
            runtime_id: self.infra.id.as_ref().map(|id| id.to_string()),
            ..ContainerRecord::default()
        });
        self.engine.state.update_task(&self.arn, |record| {
            for (name, mut container) in members {
                let entry = record.containers.entry(name).or_default();
                // Only the reporter knows what was acknowledged.
                container.sent_status = entry.sent_status.take();
                *entry = container;
            }
            record.infra = infra;
        });
    }
}

/// ECS's name for a Docker health status (`UNKNOWN` while Docker says `starting`); `None`
/// for a container without a health check.
pub fn health_name(health: HealthStatus) -> Option<&'static str> {
    match health {
        HealthStatus::None => None,
        HealthStatus::Starting => Some("UNKNOWN"),
        HealthStatus::Healthy => Some("HEALTHY"),
        HealthStatus::Unhealthy => Some("UNHEALTHY"),
    }
}

fn parse_health(name: Option<&str>) -> HealthStatus {
    match name {
        Some("HEALTHY") => HealthStatus::Healthy,
        Some("UNHEALTHY") => HealthStatus::Unhealthy,
        Some(_) => HealthStatus::Starting,
        None => HealthStatus::None,
    }
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

/// What makes the names of a task's containers and volumes unique on a shared Docker
/// Engine: the installation, then random bits.
fn unique_suffix(installation: &InstallationId) -> String {
    format!("{installation}-{:016x}", rand::random::<u64>())
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// ECS's networkBindings for a container: the host ports Docker bound in bridge mode; in
/// host mode the container's ports are the host's own.
fn bindings(def: &Container, status: &ContainerStatus, mode: &NetworkMode) -> Vec<NetworkBinding> {
    match mode {
        NetworkMode::Host => def
            .port_mappings
            .iter()
            .flatten()
            .filter_map(|m| {
                let port = u16::try_from(m.container_port?).ok()?;
                Some(NetworkBinding {
                    bind_ip: "0.0.0.0".to_owned(),
                    container_port: port,
                    host_port: port,
                    protocol: m
                        .protocol
                        .clone()
                        .unwrap_or_else(|| "tcp".to_owned())
                        .to_ascii_lowercase(),
                })
            })
            .collect(),
        _ => status
            .port_bindings
            .iter()
            .map(|b| NetworkBinding {
                bind_ip: if b.host_ip.is_empty() {
                    "0.0.0.0".to_owned()
                } else {
                    b.host_ip.clone()
                },
                container_port: b.container_port,
                host_port: b.host_port,
                protocol: b.protocol.as_str().to_owned(),
            })
            .collect(),
    }
}

/// Sends a task's reports in order, retrying what the control plane could not take, and
/// records each acknowledged status in the state. Container changes waiting behind a task
/// change travel inside it (its `containers` carry every container's latest status), so a
/// task starting or stopping costs the control plane one write, not one per container.
async fn run_reporter(
    engine: Arc<Inner>,
    arn: String,
    mut reports: mpsc::UnboundedReceiver<Report>,
) {
    let mut shutdown = engine.shutdown.clone();
    while let Some(first) = reports.recv().await {
        let mut waiting = vec![first];
        while let Ok(report) = reports.try_recv() {
            waiting.push(report);
        }
        for report in coalesce(waiting) {
            if !deliver(&engine, &arn, &report, &mut shutdown).await {
                return;
            }
        }
    }
}

/// Drops the container changes that a later task change in the same run carries.
fn coalesce(waiting: Vec<Report>) -> Vec<Report> {
    let last_task = waiting.iter().rposition(|r| matches!(r, Report::Task(_)));
    waiting
        .into_iter()
        .enumerate()
        .filter(|(i, r)| !(matches!(r, Report::Container(_)) && last_task.is_some_and(|t| *i < t)))
        .map(|(_, r)| r)
        .collect()
}

/// Sends one report until it is taken or refused; `false` on shutdown.
async fn deliver(
    engine: &Inner,
    arn: &str,
    report: &Report,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    let mut backoff = Backoff::new(REPORT_RETRY_MIN, REPORT_RETRY_MAX);
    loop {
        let result = match report {
            Report::Container(change) => engine.control.submit_container_state_change(change).await,
            Report::Task(change) => engine.control.submit_task_state_change(change).await,
        };
        match result {
            Ok(()) => {
                engine.state.update_task(arn, |record| match report {
                    Report::Container(change) => {
                        if let Some(c) = record.containers.get_mut(&change.container_name) {
                            c.sent_status = Some(change.status.clone());
                        }
                    }
                    Report::Task(change) => {
                        record.sent_status = Some(change.status.clone());
                        for sent in &change.containers {
                            if let Some(c) = record.containers.get_mut(&sent.container_name) {
                                c.sent_status = Some(sent.status.clone());
                            }
                        }
                    }
                });
                return true;
            }
            Err(e) if e.is_retryable() => {
                tracing::warn!(task = %arn, error = %e, "state change not delivered; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(backoff.next_delay()) => {}
                    _ = shutdown.changed() => return false,
                }
            }
            Err(e) => {
                tracing::error!(task = %arn, error = %e, "state change refused by the control plane");
                return true;
            }
        }
    }
}

#[cfg(test)]
mod tests;
