//! A task's supervisor: one tokio task per task that owns its containers' statuses, runs
//! the loop that pulls, creates and starts them (`start`), takes in what the runtime reports
//! (events, inspections, recovery after a restart), and stops and cleans up the task when it
//! is to stop (`cleanup`). What it learns is saved in the task's record and reported
//! (`report`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_agent_protocol::acs::{Container, Firewall, Task};
use berth_model::InstallationId;
use berth_model::ecs::{self, HealthStatus as EcsHealth, TaskStatus};
use berth_runtime::{
    ContainerEventKind, ContainerId, ContainerState, ContainerStatus, HealthStatus, NetworkMode,
    RuntimeError,
};
use tokio::sync::mpsc;

use super::reporter::{Report, run_reporter};
use super::{Engine, Inner, TaskMsg, lock, now_seconds};
use crate::awslogs::Progress;
use crate::client::NetworkBinding;
use crate::infra::PAUSE_CONTAINER_NAME;
use crate::metadata::endpoint;
use crate::state::{ContainerRecord, TaskRecord};
use crate::translate::{self, SpecError, TaskEni, TaskNetwork};

/// ECS's stoppedReason when an essential container exits.
pub(super) const ESSENTIAL_EXITED: &str = "Essential container in task exited";

const OOM_REASON: &str = "OutOfMemoryError: Container killed due to memory usage";

/// A container's known status on this host (NONE, CREATED, RUNNING, STOPPED).
pub(super) use berth_model::ecs::ContainerKnownStatus as Status;

pub(super) struct Member {
    pub(super) def: Container,
    pub(super) docker_name: String,
    pub(super) id: Option<ContainerId>,
    pub(super) status: Status,
    /// Whether it ever ran (a container stopped before it started never did).
    pub(super) started: bool,
    pub(super) exit_code: Option<i64>,
    pub(super) reason: Option<String>,
    pub(super) health: HealthStatus,
    /// When `health` last changed (seconds since the epoch).
    pub(super) health_since: Option<f64>,
    /// Names the container at the task metadata endpoint.
    pub(super) metadata_token: String,
    pub(super) oom: bool,
    pub(super) bindings: Vec<NetworkBinding>,
    /// Its address while it runs (bridge mode), as inspected.
    pub(super) address: Option<std::net::IpAddr>,
    /// The last status handed to the reporter.
    pub(super) reported: Option<ecs::ContainerStatus>,
    /// When it began waiting for its dependencies.
    pub(super) waiting_since: Option<Instant>,
}

impl Member {
    fn essential(&self) -> bool {
        self.def.essential.unwrap_or(false)
    }

    pub(super) fn stop_timeout(&self, default: Duration) -> Duration {
        self.def
            .stop_timeout
            .filter(|s| *s > 0)
            .map_or(default, |s| Duration::from_secs(s as u64))
    }
}

/// An awsvpc task's infra container.
#[derive(Default)]
pub(super) struct Infra {
    pub(super) docker_name: String,
    pub(super) id: Option<ContainerId>,
    /// Known to be running (checked once per supervisor, not on every turn of its loop).
    pub(super) ready: bool,
}

pub(super) struct Supervisor {
    pub(super) engine: Arc<Inner>,
    pub(super) arn: String,
    pub(super) task: Task,
    pub(super) rx: mpsc::UnboundedReceiver<TaskMsg>,
    pub(super) reports: mpsc::UnboundedSender<Report>,
    /// Delivers `reports` in order; done once they are delivered after `reports` is closed.
    pub(super) reporter: Option<tokio::task::JoinHandle<()>>,
    pub(super) members: BTreeMap<String, Member>,
    pub(super) order: Vec<String>,
    /// The mode the task's containers are created in; for awsvpc `container:<infra id>`
    /// once the infra container exists.
    pub(super) network_mode: Result<NetworkMode, SpecError>,
    /// awsvpc: the task's interface and the infra container holding its namespace.
    pub(super) eni: Option<TaskEni>,
    pub(super) infra: Infra,
    /// awsvpc: the address the task's containers reach the metadata endpoint on.
    pub(super) metadata_host: Option<String>,
    /// awsvpc: the rules of the task's security groups, as last sent (none: not enforced).
    pub(super) firewall: Option<Firewall>,
    pub(super) pulled: bool,
    /// The containers' `secrets`, read with the execution role (memory only), by container.
    pub(super) secret_env: BTreeMap<String, Vec<(String, String)>>,
    pub(super) secrets_ready: bool,
    pub(super) volumes_ready: bool,
    pub(super) pull_started_at: Option<f64>,
    pub(super) pull_stopped_at: Option<f64>,
    /// Set once the task is to stop: `Some(reason)` (the reason may be empty for a stop
    /// the control plane asked for).
    pub(super) stopping: Option<Option<String>>,
    pub(super) task_reported: Option<TaskStatus>,
    pub(super) stopped_at: Option<f64>,
    /// Messages that arrived during an image pull, handled once it is over.
    pub(super) deferred: Vec<TaskMsg>,
    /// The awslogs shippers of the task's containers, by container name.
    pub(super) shippers: BTreeMap<String, (tokio::task::JoinHandle<()>, Progress)>,
}

impl Engine {
    pub(super) fn spawn_supervisor(&self, arn: &str) {
        let Some(record) = self.inner.state.task(arn) else {
            return;
        };
        let (tx, rx) = mpsc::unbounded_channel();
        lock(&self.inner.tasks).insert(arn.to_owned(), tx);
        let supervisor = Supervisor::new(self.inner.clone(), arn.to_owned(), record, rx);
        tokio::spawn(supervisor.run());
    }
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
                translate::docker_name(&task, &name, &suffix)
            } else {
                saved.docker_name.clone()
            };
            members.insert(
                name,
                Member {
                    def: def.clone(),
                    docker_name,
                    id: saved.runtime_id.map(ContainerId::from),
                    status: saved.known_status,
                    started: saved.started || saved.known_status == Status::Running,
                    exit_code: saved.exit_code,
                    reason: saved.reason,
                    health: parse_health(saved.health.as_deref()),
                    health_since: saved.health_since,
                    metadata_token: saved
                        .metadata_token
                        .unwrap_or_else(|| format!("{:032x}", rand::random::<u128>())),
                    oom: false,
                    bindings: saved.network_bindings,
                    address: saved.address,
                    reported: saved.sent_status,
                    waiting_since: None,
                },
            );
        }
        let order =
            translate::start_order(&task).unwrap_or_else(|_| members.keys().cloned().collect());
        let saved_infra = record.infra.clone().unwrap_or_default();
        let infra = Infra {
            docker_name: if saved_infra.docker_name.is_empty() {
                translate::docker_name(&task, "internalecspause", &suffix)
            } else {
                saved_infra.docker_name
            },
            id: saved_infra.runtime_id.map(ContainerId::from),
            ready: false,
        };
        let (network_mode, eni) = match translate::task_network(&task) {
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
            Err(e) => (Err(e), None),
        };
        let stopping =
            (record.known_status == TaskStatus::Stopped).then(|| record.stopped_reason.clone());
        Supervisor {
            firewall: eni_firewall(&task),
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
            secret_env: BTreeMap::new(),
            secrets_ready: false,
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

    pub(super) fn desired_stopped(&self) -> bool {
        translate::desired_stopped(&self.task)
    }

    pub(super) async fn run(mut self) {
        let mut shutdown = self.engine.shutdown.clone();
        self.recover().await;
        if let Err(reason) = translate::start_order(&self.task) {
            self.stop_with(reason.to_string());
        }
        if let Err(reason) = self.network_mode.clone() {
            self.stop_with(reason.to_string());
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
                self.stop_with(reason.to_string());
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
    pub(super) async fn refresh(&mut self, name: &str) {
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
                .strip_prefix(translate::METADATA_URI_V4)?
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
                member.address = status.ip_address.as_deref().and_then(|ip| ip.parse().ok());
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
            TaskMsg::Desired(task) => {
                self.take_desired(&task);
                if let Some(firewall) = eni_firewall(&task) {
                    self.take_firewall(firewall).await;
                }
            }
            TaskMsg::Firewall(firewall) => self.take_firewall(*firewall).await,
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
    pub(super) fn take_desired(&mut self, task: &Task) {
        if task.desired_status.is_some() {
            self.task.desired_status = task.desired_status.clone();
            self.engine.state.update_task(&self.arn, |r| {
                r.task.desired_status = task.desired_status.clone()
            });
        }
    }

    /// Takes in a container's health; a change is timed and announced.
    pub(super) fn set_health(&mut self, name: &str, health: HealthStatus) {
        let member = self.members.get_mut(name).expect("member");
        if member.health != health {
            member.health = health;
            member.health_since = Some(now_seconds());
            self.engine.health_changes.send_modify(|n| *n += 1);
        } else if member.health_since.is_none() && health != HealthStatus::None {
            member.health_since = Some(now_seconds());
        }
    }

    /// Writes the members' state into the task's record.
    pub(super) fn save(&self) {
        let members: Vec<(String, ContainerRecord)> = self
            .members
            .iter()
            .map(|(name, m)| {
                let record = ContainerRecord {
                    docker_name: m.docker_name.clone(),
                    runtime_id: m.id.as_ref().map(|id| id.to_string()),
                    known_status: m.status,
                    started: m.started,
                    sent_status: None,
                    exit_code: m.exit_code,
                    reason: m.reason.clone(),
                    network_bindings: m.bindings.clone(),
                    metadata_token: Some(m.metadata_token.clone()),
                    health: health_name(m.health).map(str::to_owned),
                    health_since: m.health_since.filter(|_| m.health != HealthStatus::None),
                    address: m.address,
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

/// The security group rules a payload's task carries (`berthFirewall` on its interface).
fn eni_firewall(task: &Task) -> Option<Firewall> {
    task.elastic_network_interfaces
        .iter()
        .flatten()
        .next()?
        .berth_firewall
        .clone()
}

/// ECS's name for a Docker health status (`UNKNOWN` while Docker says `starting`); `None`
/// for a container without a health check.
fn health_name(health: HealthStatus) -> Option<&'static str> {
    let ecs = match health {
        HealthStatus::None => return None,
        HealthStatus::Starting => EcsHealth::Unknown,
        HealthStatus::Healthy => EcsHealth::Healthy,
        HealthStatus::Unhealthy => EcsHealth::Unhealthy,
    };
    Some(ecs.as_str())
}

fn parse_health(name: Option<&str>) -> HealthStatus {
    match name.map(str::parse::<EcsHealth>) {
        Some(Ok(EcsHealth::Healthy)) => HealthStatus::Healthy,
        Some(Ok(EcsHealth::Unhealthy)) => HealthStatus::Unhealthy,
        Some(_) => HealthStatus::Starting,
        None => HealthStatus::None,
    }
}

/// What makes the names of a task's containers and volumes unique on a shared Docker
/// Engine: the installation, then random bits.
pub(super) fn unique_suffix(installation: &InstallationId) -> String {
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
pub(super) fn bindings(
    def: &Container,
    status: &ContainerStatus,
    mode: &NetworkMode,
) -> Vec<NetworkBinding> {
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
                    ..NetworkBinding::default()
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
                ..NetworkBinding::default()
            })
            .collect(),
    }
}
