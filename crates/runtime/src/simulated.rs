//! `SimulatedRuntime`: **a simulation, not a container runtime.** Nothing runs; container
//! life cycles are acted out in memory with small delays, so that hundreds of agents can share
//! one machine in scale tests (as Kubernetes' kubemark does with hollow nodes) and the agent's
//! unit tests have a fake. It is never the default: the agent uses it only when asked to.
//!
//! What a simulated container does is read from its command (entrypoint and command joined,
//! split into statements at `;`, `&&`, `||` and newlines), so the commands tests give Docker
//! mean the same here:
//! - `exit N` ends the container with code N (`["exit", "3"]`, `["sh", "-c", "exit 3"]`);
//! - `sleep S` runs for S seconds first (`sleep 2; exit 1` exits 1 after two seconds; a
//!   command with `sleep` and no `exit` exits 0 when the sleeping is done);
//! - `trap '' TERM` ignores SIGTERM, so a stop takes the whole timeout and ends with 137;
//! - anything else runs until stopped, which ends it with 143 (SIGTERM) after `stop_delay`.
//!
//! A health check passes unless its command contains `exit N` with N ≠ 0 or `false`: a
//! passing check turns healthy after one interval, a failing one unhealthy after `retries`
//! counted failures (failures inside the start period do not count), as Docker does.
//! Durations taken from specs (sleeps, health intervals, stop timeouts) are multiplied by
//! `SimulationConfig::time_scale`.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream;
use time::OffsetDateTime;
use tokio::sync::{broadcast, watch};

use crate::{
    ContainerEvent, ContainerEventKind, ContainerId, ContainerRuntime, ContainerSpec,
    ContainerState, ContainerStats, ContainerStatus, ContainerSummary, EventStream, HealthStatus,
    HostInfo, LogFrame, LogSource, LogStream, NetworkMode, NetworkSpec, NetworkSummary,
    PortBinding, RegistryAuth, RuntimeError, RuntimeFuture, VolumeSpec, normalize_image_reference,
};

mod behaviour;

use behaviour::{Behaviour, health_check_passes, parse_behaviour};

/// Docker's default ephemeral range for dynamic host ports.
const DYNAMIC_PORTS: std::ops::RangeInclusive<u16> = 32768..=60999;
const EXIT_SIGTERM: i64 = 143;
const EXIT_SIGKILL: i64 = 137;
/// Docker's health check defaults.
const HEALTH_INTERVAL: Duration = Duration::from_secs(30);
const HEALTH_RETRIES: u32 = 3;
/// What a running simulated container uses: this share of one CPU, this much memory.
const SIMULATED_CPU_SHARE: f64 = 0.01;
const SIMULATED_MEMORY_BYTES: u64 = 8 << 20;

#[derive(Debug, Clone)]
pub struct SimulationConfig {
    /// What `info` reports.
    pub host: HostInfo,
    pub pull_delay: Duration,
    pub create_delay: Duration,
    pub start_delay: Duration,
    /// How long a container that honours SIGTERM takes to exit once stopped.
    pub stop_delay: Duration,
    /// Multiplies durations taken from specs: `sleep`, health check timing, stop timeouts.
    pub time_scale: f64,
}

impl Default for SimulationConfig {
    fn default() -> Self {
        SimulationConfig {
            host: HostInfo {
                server_version: "simulated".to_owned(),
                api_version: "1.41".to_owned(),
                cpus: 4,
                memory_bytes: 8 << 30,
                os_type: "linux".to_owned(),
                architecture: "x86_64".to_owned(),
            },
            pull_delay: Duration::from_millis(50),
            create_delay: Duration::from_millis(2),
            start_delay: Duration::from_millis(5),
            stop_delay: Duration::from_millis(5),
            time_scale: 1.0,
        }
    }
}

/// A simulated container runtime (see the module documentation). Cheap to clone; clones
/// share their containers.
#[derive(Clone)]
pub struct SimulatedRuntime {
    inner: Arc<Inner>,
}

struct Inner {
    config: SimulationConfig,
    /// A std mutex: it is never held across an `.await`, and every critical section is a
    /// few map operations.
    state: Mutex<State>,
    events: broadcast::Sender<Arc<LabelledEvent>>,
    id_prefix: u64,
}

struct LabelledEvent {
    event: ContainerEvent,
    labels: Arc<BTreeMap<String, String>>,
}

#[derive(Default)]
struct State {
    unavailable: bool,
    images: HashSet<String>,
    failing_pulls: HashMap<String, String>,
    containers: HashMap<ContainerId, SimContainer>,
    names: HashMap<String, ContainerId>,
    volumes: HashMap<String, VolumeSpec>,
    networks: HashMap<String, NetworkSpec>,
    next_container: u64,
    next_address: u32,
    next_port: u16,
}

struct SimContainer {
    id: ContainerId,
    name: String,
    spec: ContainerSpec,
    labels: Arc<BTreeMap<String, String>>,
    behaviour: Behaviour,
    state: ContainerState,
    exit_code: Option<i64>,
    created_at: OffsetDateTime,
    started_at: Option<OffsetDateTime>,
    finished_at: Option<OffsetDateTime>,
    oom_killed: bool,
    health: HealthStatus,
    ports: Vec<PortBinding>,
    ip_address: Option<String>,
    /// A network joined after creation (`connect_network`), with the address on it.
    connected: Option<(String, String)>,
    /// Bumped on every start and exit, so timers of an earlier run do nothing.
    run: u64,
    /// `Some(exit code)` once stopped; `wait_exit` watches it.
    exit: watch::Sender<Option<i64>>,
    /// What the container wrote (only what a test gave `write_log`).
    log: Vec<LogFrame>,
    /// Bumped on every write and exit, for the readers following the log.
    log_changes: watch::Sender<u64>,
}

impl SimulatedRuntime {
    pub fn new(config: SimulationConfig) -> Self {
        let (events, _) = broadcast::channel(4096);
        let state = State {
            next_port: *DYNAMIC_PORTS.start(),
            ..Default::default()
        };
        SimulatedRuntime {
            inner: Arc::new(Inner {
                config,
                state: Mutex::new(state),
                events,
                id_prefix: RandomState::new().build_hasher().finish(),
            }),
        }
    }

    /// Puts an image in the local store, as if pulled earlier.
    pub fn add_image(&self, image: &str) {
        self.inner
            .lock()
            .images
            .insert(normalize_image_reference(image));
    }

    /// Makes every pull of `image` fail with `message`.
    pub fn fail_pulls_of(&self, image: &str, message: &str) {
        self.inner
            .lock()
            .failing_pulls
            .insert(normalize_image_reference(image), message.to_owned());
    }

    /// While set, every call fails with `Unavailable`, as when the Docker daemon is gone.
    /// Containers keep their state meanwhile.
    pub fn set_unavailable(&self, unavailable: bool) {
        self.inner.lock().unavailable = unavailable;
    }

    /// Ends a running container with `exit_code` behind the agent's back (as `docker kill`
    /// or the OOM killer would; `oom_killed` marks the latter).
    pub fn kill_container(&self, id: &ContainerId, exit_code: i64, oom_killed: bool) {
        let mut state = self.inner.lock();
        if let Some(container) = state.containers.get_mut(id)
            && container.state == ContainerState::Running
        {
            let mut events = Vec::new();
            if oom_killed {
                container.oom_killed = true;
                events.push(ContainerEventKind::OomKilled);
            }
            events.push(exit(container, exit_code));
            let labels = container.labels.clone();
            drop(state);
            for kind in events {
                self.inner.emit(id, &labels, kind);
            }
        }
    }

    /// Sets a container's health, as its health check would.
    pub fn set_health(&self, id: &ContainerId, health: HealthStatus) {
        let mut state = self.inner.lock();
        if let Some(container) = state.containers.get_mut(id)
            && container.health != health
        {
            container.health = health;
            let labels = container.labels.clone();
            drop(state);
            self.inner
                .emit(id, &labels, ContainerEventKind::Health(health));
        }
    }

    /// Appends to a container's log as if it had written `bytes` to `source` now (one
    /// entry: give a line with its newline, or a partial one without). Timestamps never go
    /// backwards within a container's log.
    pub fn write_log(&self, id: &ContainerId, source: LogSource, bytes: impl Into<Bytes>) {
        let mut state = self.inner.lock();
        if let Some(container) = state.containers.get_mut(id) {
            let now = OffsetDateTime::now_utc();
            let timestamp = container
                .log
                .last()
                .map_or(now, |last| last.timestamp.max(now));
            container.log.push(LogFrame {
                timestamp,
                source,
                bytes: bytes.into(),
            });
            container.log_changes.send_modify(|n| *n += 1);
        }
    }

    fn scaled(&self, duration: Duration) -> Duration {
        duration.mul_f64(self.inner.config.time_scale.max(0.0))
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves maps that are still consistent enough for a
        // simulation; carry on rather than poison every later call.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The state, unless the simulation is playing an unreachable daemon.
    fn available(&self) -> Result<MutexGuard<'_, State>, RuntimeError> {
        let state = self.lock();
        if state.unavailable {
            return Err(RuntimeError::Unavailable(
                "simulated runtime is set unavailable".to_owned(),
            ));
        }
        Ok(state)
    }

    fn check_available(&self) -> Result<(), RuntimeError> {
        self.available().map(drop)
    }

    fn emit(
        &self,
        id: &ContainerId,
        labels: &Arc<BTreeMap<String, String>>,
        kind: ContainerEventKind,
    ) {
        // No subscribers is fine: nobody is listening.
        let _ = self.events.send(Arc::new(LabelledEvent {
            event: ContainerEvent {
                id: id.clone(),
                kind,
            },
            labels: labels.clone(),
        }));
    }
}

/// Ends a run: records the exit and frees the run's ports and address. Returns the event to
/// emit once the lock is released.
fn exit(container: &mut SimContainer, exit_code: i64) -> ContainerEventKind {
    container.state = ContainerState::Exited;
    container.exit_code = Some(exit_code);
    container.finished_at = Some(OffsetDateTime::now_utc());
    container.ports.clear();
    container.ip_address = None;
    if container.health != HealthStatus::None {
        container.health = HealthStatus::Unhealthy;
    }
    container.run += 1;
    container.exit.send_replace(Some(exit_code));
    container.log_changes.send_modify(|n| *n += 1);
    ContainerEventKind::Died {
        exit_code: Some(exit_code),
    }
}

fn not_found(id: &ContainerId) -> RuntimeError {
    RuntimeError::NotFound(format!("No such container: {id}"))
}

impl State {
    /// `Conflict` if a running container holds `ip` on `network`.
    fn address_free(&self, network: &str, ip: &str) -> Result<(), RuntimeError> {
        let taken = self.containers.values().any(|c| {
            let on = match (&c.connected, &c.spec.network_mode) {
                (Some((name, _)), _) => name == network,
                (None, NetworkMode::Named(name)) => name == network,
                _ => false,
            };
            c.state == ContainerState::Running && on && c.ip_address.as_deref() == Some(ip)
        });
        if taken {
            return Err(RuntimeError::Conflict(format!(
                "Address already in use: {ip} on network {network}"
            )));
        }
        Ok(())
    }

    fn container(&mut self, id: &ContainerId) -> Result<&mut SimContainer, RuntimeError> {
        // Docker takes names wherever it takes ids.
        let id = match self.names.get(id.as_str()) {
            Some(real) => real.clone(),
            None => id.clone(),
        };
        self.containers.get_mut(&id).ok_or_else(|| not_found(&id))
    }

    fn ports_in_use(&self) -> HashSet<(u16, crate::Protocol)> {
        self.containers
            .values()
            .flat_map(|c| c.ports.iter().map(|p| (p.host_port, p.protocol)))
            .collect()
    }

    fn next_dynamic_port(
        &mut self,
        protocol: crate::Protocol,
        taken: &HashSet<(u16, crate::Protocol)>,
    ) -> Option<u16> {
        let span = DYNAMIC_PORTS.len();
        for _ in 0..span {
            let port = self.next_port;
            self.next_port = if port >= *DYNAMIC_PORTS.end() {
                *DYNAMIC_PORTS.start()
            } else {
                port + 1
            };
            if !taken.contains(&(port, protocol)) {
                return Some(port);
            }
        }
        None
    }

    /// 172.17.0.2, 172.17.0.3, … on the default bridge; 172.18.x.y on named networks.
    fn next_ip(&mut self, second_octet: u8) -> String {
        let host = 2 + self.next_address % 65_532;
        self.next_address += 1;
        Ipv4Addr::new(172, second_octet, (host >> 8) as u8, (host & 0xff) as u8).to_string()
    }
}

impl ContainerRuntime for SimulatedRuntime {
    fn info(&self) -> RuntimeFuture<'_, HostInfo> {
        Box::pin(async move {
            self.inner.check_available()?;
            Ok(self.inner.config.host.clone())
        })
    }

    fn ping(&self) -> RuntimeFuture<'_, ()> {
        Box::pin(async move { self.inner.check_available() })
    }

    fn image_present<'a>(&'a self, image: &'a str) -> RuntimeFuture<'a, bool> {
        Box::pin(async move {
            let state = self.inner.available()?;
            Ok(state.images.contains(&normalize_image_reference(image)))
        })
    }

    fn pull_image<'a>(
        &'a self,
        image: &'a str,
        _auth: Option<&'a RegistryAuth>,
    ) -> RuntimeFuture<'a, ()> {
        Box::pin(async move {
            let reference = normalize_image_reference(image);
            self.inner.check_available()?;
            tokio::time::sleep(self.inner.config.pull_delay).await;
            let mut state = self.inner.available()?;
            if let Some(message) = state.failing_pulls.get(&reference) {
                return Err(RuntimeError::ImagePull {
                    image: image.to_owned(),
                    message: message.clone(),
                });
            }
            state.images.insert(reference);
            Ok(())
        })
    }

    fn create_container<'a>(&'a self, spec: &'a ContainerSpec) -> RuntimeFuture<'a, ContainerId> {
        Box::pin(async move {
            spec.validate()?;
            self.inner.check_available()?;
            tokio::time::sleep(self.inner.config.create_delay).await;
            let mut state = self.inner.available()?;
            if let NetworkMode::Named(network) = &spec.network_mode
                && !state.networks.contains_key(network)
                && network != "bridge"
            {
                return Err(RuntimeError::NotFound(format!(
                    "network {network} not found"
                )));
            }
            if !state
                .images
                .contains(&normalize_image_reference(&spec.image))
            {
                return Err(RuntimeError::NotFound(format!(
                    "No such image: {}",
                    spec.image
                )));
            }
            let number = state.next_container;
            state.next_container += 1;
            let id = ContainerId(format!("{:016x}{number:048x}", self.inner.id_prefix));
            let name = spec
                .name
                .clone()
                .unwrap_or_else(|| format!("simulated_{number}"));
            if state.names.contains_key(&name) {
                return Err(RuntimeError::Conflict(format!(
                    "the container name \"/{name}\" is already in use"
                )));
            }
            let argv: Vec<String> = spec
                .entrypoint
                .iter()
                .chain(&spec.command)
                .cloned()
                .collect();
            state.names.insert(name.clone(), id.clone());
            state.containers.insert(
                id.clone(),
                SimContainer {
                    id: id.clone(),
                    name,
                    spec: spec.clone(),
                    labels: Arc::new(spec.labels.clone()),
                    behaviour: parse_behaviour(&argv),
                    state: ContainerState::Created,
                    exit_code: None,
                    created_at: OffsetDateTime::now_utc(),
                    started_at: None,
                    finished_at: None,
                    oom_killed: false,
                    health: HealthStatus::None,
                    ports: Vec::new(),
                    ip_address: None,
                    connected: None,
                    run: 0,
                    exit: watch::channel(None).0,
                    log: Vec::new(),
                    log_changes: watch::channel(0).0,
                },
            );
            Ok(id)
        })
    }

    fn start_container<'a>(&'a self, id: &'a ContainerId) -> RuntimeFuture<'a, ()> {
        Box::pin(async move {
            self.inner.available()?.container(id)?;
            tokio::time::sleep(self.inner.config.start_delay).await;
            let mut state = self.inner.available()?;
            let taken = state.ports_in_use();
            let container = state.container(id)?;
            if container.state == ContainerState::Running {
                return Ok(());
            }
            let spec = container.spec.clone();
            let id = container.id.clone();

            // Ports and address first: a taken static port fails the start, as in Docker.
            let mut ports = Vec::new();
            if spec.network_mode.publishes_ports() {
                let mut taken = taken;
                for mapping in &spec.port_mappings {
                    let host_port = match mapping.host_port {
                        Some(port) if port != 0 => {
                            if taken.contains(&(port, mapping.protocol)) {
                                return Err(RuntimeError::Conflict(format!(
                                    "Bind for 0.0.0.0:{port} failed: port is already allocated"
                                )));
                            }
                            port
                        }
                        _ => state
                            .next_dynamic_port(mapping.protocol, &taken)
                            .ok_or_else(|| {
                                RuntimeError::Conflict("no free dynamic host port".to_owned())
                            })?,
                    };
                    taken.insert((host_port, mapping.protocol));
                    ports.push(PortBinding {
                        container_port: mapping.container_port,
                        protocol: mapping.protocol,
                        host_ip: mapping
                            .host_ip
                            .clone()
                            .unwrap_or_else(|| "0.0.0.0".to_owned()),
                        host_port,
                    });
                }
            }
            let connected = state.container(&id)?.connected.clone();
            if let (NetworkMode::Named(network), Some(ip)) =
                (&spec.network_mode, &spec.ipv4_address)
            {
                state.address_free(network, ip)?;
            }
            let ip_address = match &spec.network_mode {
                _ if connected.is_some() => connected.map(|(_, ip)| ip),
                NetworkMode::Bridge => Some(state.next_ip(17)),
                NetworkMode::Named(_) => match &spec.ipv4_address {
                    Some(ip) => Some(ip.clone()),
                    None => Some(state.next_ip(18)),
                },
                NetworkMode::Container(other) => state
                    .container(&ContainerId::from(other.as_str()))
                    .ok()
                    .and_then(|c| c.ip_address.clone()),
                NetworkMode::Host | NetworkMode::None => None,
            };

            let container = state.container(&id)?;
            container.state = ContainerState::Running;
            container.exit_code = None;
            container.started_at = Some(OffsetDateTime::now_utc());
            container.finished_at = None;
            container.oom_killed = false;
            container.ports = ports;
            container.ip_address = ip_address;
            container.health = if spec.health_check.is_some() {
                HealthStatus::Starting
            } else {
                HealthStatus::None
            };
            container.run += 1;
            container.exit.send_replace(None);
            let run = container.run;
            let behaviour = container.behaviour.clone();
            let labels = container.labels.clone();
            drop(state);

            self.inner.emit(&id, &labels, ContainerEventKind::Started);
            if let Some(runs_for) = behaviour.runs_for {
                spawn_exit(
                    Arc::downgrade(&self.inner),
                    id.clone(),
                    run,
                    self.scaled(runs_for),
                    behaviour.exit_code,
                );
            }
            if let Some(check) = &spec.health_check
                && check.command.first().map(String::as_str) != Some("NONE")
            {
                let interval = check
                    .interval_secs
                    .map(|s| Duration::from_secs(s.into()))
                    .unwrap_or(HEALTH_INTERVAL);
                let (after, health) = if health_check_passes(&check.command[1..]) {
                    (interval, HealthStatus::Healthy)
                } else {
                    let start_period =
                        Duration::from_secs(check.start_period_secs.unwrap_or(0).into());
                    // Probes run every interval; those inside the start period don't count.
                    let first_counted = (start_period.as_secs_f64() / interval.as_secs_f64())
                        .ceil()
                        .max(1.0);
                    let retries = f64::from(check.retries.unwrap_or(HEALTH_RETRIES).max(1));
                    (
                        interval.mul_f64(first_counted + retries - 1.0),
                        HealthStatus::Unhealthy,
                    )
                };
                spawn_health(
                    Arc::downgrade(&self.inner),
                    id,
                    run,
                    self.scaled(after),
                    health,
                );
            }
            Ok(())
        })
    }

    fn stop_container<'a>(
        &'a self,
        id: &'a ContainerId,
        timeout: Duration,
    ) -> RuntimeFuture<'a, ()> {
        Box::pin(async move {
            let (id, run, ignores_sigterm, mut exited) = {
                let mut state = self.inner.available()?;
                let container = state.container(id)?;
                if container.state != ContainerState::Running {
                    return Ok(());
                }
                (
                    container.id.clone(),
                    container.run,
                    container.behaviour.ignores_sigterm,
                    container.exit.subscribe(),
                )
            };
            let (delay, code) = if ignores_sigterm {
                (self.scaled(timeout), EXIT_SIGKILL)
            } else {
                (self.inner.config.stop_delay, EXIT_SIGTERM)
            };
            // The container may end by itself before the signal takes effect.
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = exited.wait_for(Option::is_some) => return Ok(()),
            }
            let mut state = self.inner.lock();
            let Ok(container) = state.container(&id) else {
                return Ok(());
            };
            if container.run == run && container.state == ContainerState::Running {
                let died = exit(container, code);
                let labels = container.labels.clone();
                drop(state);
                self.inner.emit(&id, &labels, died);
            }
            Ok(())
        })
    }

    fn remove_container<'a>(&'a self, id: &'a ContainerId) -> RuntimeFuture<'a, ()> {
        Box::pin(async move {
            let mut state = self.inner.available()?;
            let container = state.container(id)?;
            let mut events = Vec::new();
            if container.state == ContainerState::Running {
                events.push(exit(container, EXIT_SIGKILL));
            }
            events.push(ContainerEventKind::Destroyed);
            let id = container.id.clone();
            let name = container.name.clone();
            let labels = container.labels.clone();
            state.containers.remove(&id);
            state.names.remove(&name);
            drop(state);
            for kind in events {
                self.inner.emit(&id, &labels, kind);
            }
            Ok(())
        })
    }

    fn inspect_container<'a>(&'a self, id: &'a ContainerId) -> RuntimeFuture<'a, ContainerStatus> {
        Box::pin(async move {
            let mut state = self.inner.available()?;
            let c = state.container(id)?;
            Ok(ContainerStatus {
                id: c.id.clone(),
                name: c.name.clone(),
                image: c.spec.image.clone(),
                image_id: simulated_image_id(&c.spec.image),
                state: c.state,
                exit_code: if c.state.is_stopped() {
                    c.exit_code
                } else {
                    None
                },
                created_at: Some(c.created_at),
                started_at: c.started_at,
                finished_at: c.finished_at,
                oom_killed: c.oom_killed,
                error: String::new(),
                health: c.health,
                port_bindings: c.ports.clone(),
                ip_address: c.ip_address.clone(),
                pid: None,
                labels: (*c.labels).clone(),
                env: c
                    .spec
                    .env
                    .iter()
                    .map(|(name, value)| format!("{name}={value}"))
                    .collect(),
                working_dir: c.spec.working_dir.clone().unwrap_or_default(),
                user: c.spec.user.clone().unwrap_or_default(),
            })
        })
    }

    fn list_containers<'a>(
        &'a self,
        label_filter: &'a [(&'a str, &'a str)],
    ) -> RuntimeFuture<'a, Vec<ContainerSummary>> {
        Box::pin(async move {
            let state = self.inner.available()?;
            let mut listed: Vec<ContainerSummary> = state
                .containers
                .values()
                .filter(|c| labels_match(&c.labels, label_filter))
                .map(|c| ContainerSummary {
                    id: c.id.clone(),
                    name: c.name.clone(),
                    image: c.spec.image.clone(),
                    labels: (*c.labels).clone(),
                    state: c.state,
                })
                .collect();
            listed.sort_by(|a, b| a.id.cmp(&b.id));
            Ok(listed)
        })
    }

    fn wait_exit<'a>(&'a self, id: &'a ContainerId) -> RuntimeFuture<'a, i64> {
        Box::pin(async move {
            let mut exited = {
                let mut state = self.inner.available()?;
                let container = state.container(id)?;
                if container.state != ContainerState::Running {
                    return Ok(container.exit_code.unwrap_or(0));
                }
                container.exit.subscribe()
            };
            match exited.wait_for(Option::is_some).await {
                Ok(code) => Ok(code.unwrap_or(0)),
                // The sender went with the container: it was removed, which kills it.
                Err(_) => Ok(EXIT_SIGKILL),
            }
        })
    }

    fn events<'a>(
        &'a self,
        label_filter: &'a [(&'a str, &'a str)],
    ) -> RuntimeFuture<'a, EventStream> {
        Box::pin(async move {
            self.inner.check_available()?;
            let filter: Vec<(String, String)> = label_filter
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            // Subscribed here, before returning: nothing after this call is missed.
            let receiver = self.inner.events.subscribe();
            let events = stream::unfold(Some(receiver), move |receiver| {
                let filter = filter.clone();
                async move {
                    let mut receiver = receiver?;
                    loop {
                        match receiver.recv().await {
                            Ok(event) => {
                                let wanted =
                                    filter.iter().all(|(k, v)| event.labels.get(k) == Some(v));
                                if wanted {
                                    return Some((Ok(event.event.clone()), Some(receiver)));
                                }
                            }
                            Err(broadcast::error::RecvError::Lagged(missed)) => {
                                // Tell the reader once, then end: it must reconcile.
                                let error = RuntimeError::Other(format!(
                                    "simulated event stream fell {missed} events behind"
                                ));
                                return Some((Err(error), None));
                            }
                            Err(broadcast::error::RecvError::Closed) => return None,
                        }
                    }
                }
            });
            Ok(Box::pin(events) as EventStream)
        })
    }

    fn logs<'a>(
        &'a self,
        id: &'a ContainerId,
        since: Option<OffsetDateTime>,
        follow: bool,
    ) -> RuntimeFuture<'a, LogStream> {
        Box::pin(async move {
            let changes = self
                .inner
                .available()?
                .container(id)?
                .log_changes
                .subscribe();
            let inner = self.inner.clone();
            let id = id.clone();
            // (next entry to look at, change notifications)
            let frames = stream::unfold((0, changes), move |(mut next, mut changes)| {
                let inner = inner.clone();
                let id = id.clone();
                async move {
                    loop {
                        changes.borrow_and_update();
                        let running = {
                            let state = match inner.available() {
                                Ok(state) => state,
                                Err(e) => return Some((Err(e), (usize::MAX, changes))),
                            };
                            // Removed (or the stream already failed): the log ends.
                            let container =
                                state.containers.get(&id).filter(|_| next != usize::MAX)?;
                            while let Some(frame) = container.log.get(next) {
                                next += 1;
                                if since.is_none_or(|since| frame.timestamp >= since) {
                                    return Some((Ok(frame.clone()), (next, changes)));
                                }
                            }
                            container.state == ContainerState::Running
                        };
                        if !follow || !running || changes.changed().await.is_err() {
                            return None;
                        }
                    }
                }
            });
            Ok(Box::pin(frames) as LogStream)
        })
    }

    fn connect_network<'a>(
        &'a self,
        id: &'a ContainerId,
        network: &'a str,
        ipv4_address: &'a str,
        _mac_address: Option<&'a str>,
    ) -> RuntimeFuture<'a, ()> {
        Box::pin(async move {
            let mut state = self.inner.available()?;
            if !state.networks.contains_key(network) {
                return Err(RuntimeError::NotFound(format!(
                    "network {network} not found"
                )));
            }
            state.address_free(network, ipv4_address)?;
            let container = state.container(id)?;
            if container.connected.is_some()
                || !matches!(container.spec.network_mode, NetworkMode::None)
            {
                return Err(RuntimeError::Conflict(format!(
                    "container {id} is already on a network"
                )));
            }
            container.connected = Some((network.to_owned(), ipv4_address.to_owned()));
            if container.state == ContainerState::Running {
                container.ip_address = Some(ipv4_address.to_owned());
            }
            Ok(())
        })
    }

    fn disconnect_network<'a>(
        &'a self,
        id: &'a ContainerId,
        network: &'a str,
    ) -> RuntimeFuture<'a, ()> {
        Box::pin(async move {
            let mut state = self.inner.available()?;
            let container = state.container(id)?;
            match &container.connected {
                Some((name, _)) if name == network => {
                    container.connected = None;
                    container.ip_address = None;
                    Ok(())
                }
                None if network == "none"
                    && matches!(container.spec.network_mode, NetworkMode::None) =>
                {
                    Ok(())
                }
                _ => Err(RuntimeError::NotFound(format!(
                    "container {id} is not connected to network {network}"
                ))),
            }
        })
    }

    fn rename_container<'a>(&'a self, id: &'a ContainerId, name: &'a str) -> RuntimeFuture<'a, ()> {
        Box::pin(async move {
            let mut state = self.inner.available()?;
            if state.names.get(name).is_some_and(|other| other != id) {
                return Err(RuntimeError::Conflict(format!(
                    "The container name \"/{name}\" is already in use"
                )));
            }
            let container = state.container(id)?;
            let old = std::mem::replace(&mut container.name, name.to_owned());
            state.names.remove(&old);
            state.names.insert(name.to_owned(), id.clone());
            Ok(())
        })
    }

    fn ensure_network<'a>(&'a self, network: &'a NetworkSpec) -> RuntimeFuture<'a, ()> {
        Box::pin(async move {
            let mut state = self.inner.available()?;
            if let Some(existing) = state.networks.get(&network.name) {
                return if existing.subnet == network.subnet {
                    Ok(())
                } else {
                    Err(RuntimeError::Conflict(format!(
                        "network {} exists with subnet {}",
                        network.name, existing.subnet
                    )))
                };
            }
            if let Some(other) = state.networks.values().find(|n| n.subnet == network.subnet) {
                return Err(RuntimeError::Conflict(format!(
                    "Pool overlaps with other one on this address space ({})",
                    other.name
                )));
            }
            state.networks.insert(network.name.clone(), network.clone());
            Ok(())
        })
    }

    fn build_image<'a>(&'a self, tag: &'a str, context: Vec<u8>) -> RuntimeFuture<'a, ()> {
        Box::pin(async move {
            if context.is_empty() {
                return Err(RuntimeError::Other(format!(
                    "building {tag}: empty build context"
                )));
            }
            self.inner
                .available()?
                .images
                .insert(normalize_image_reference(tag));
            Ok(())
        })
    }

    fn create_volume<'a>(&'a self, volume: &'a VolumeSpec) -> RuntimeFuture<'a, ()> {
        Box::pin(async move {
            let mut state = self.inner.available()?;
            match state.volumes.get(&volume.name) {
                Some(existing) if existing.driver != volume.driver => Err(RuntimeError::Conflict(
                    format!("volume {} exists with another driver", volume.name),
                )),
                Some(_) => Ok(()),
                None => {
                    state.volumes.insert(volume.name.clone(), volume.clone());
                    Ok(())
                }
            }
        })
    }

    fn stats<'a>(&'a self, id: &'a ContainerId) -> RuntimeFuture<'a, ContainerStats> {
        Box::pin(async move {
            let mut state = self.inner.available()?;
            let c = state.container(id)?;
            let now = OffsetDateTime::now_utc();
            let host = &self.inner.config.host;
            let running = c.state == ContainerState::Running;
            // A running container uses SIMULATED_CPU_SHARE of one CPU and a fixed working
            // set; a stopped one nothing, as Docker reports stopped containers.
            let cpu_total_ns = match (running, c.started_at) {
                (true, Some(started)) => {
                    let ran = (now - started).whole_nanoseconds().max(0) as f64;
                    (ran * SIMULATED_CPU_SHARE) as u64
                }
                _ => 0,
            };
            let limit = c
                .spec
                .memory_mib
                .map_or(host.memory_bytes, |m| m.saturating_mul(1 << 20));
            let memory_usage_bytes = if running {
                SIMULATED_MEMORY_BYTES.min(limit)
            } else {
                0
            };
            let memory_cache_bytes = memory_usage_bytes / 4;
            let system_cpu_ns = u64::try_from(now.unix_timestamp_nanos().max(0))
                .unwrap_or(u64::MAX)
                .saturating_mul(u64::from(host.cpus.max(1)));
            let read = now
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            let document = serde_json::json!({
                "read": read,
                "preread": "0001-01-01T00:00:00Z",
                "id": c.id.as_str(),
                "name": format!("/{}", c.name),
                "pids_stats": {"current": u64::from(running)},
                "cpu_stats": {
                    "cpu_usage": {
                        "total_usage": cpu_total_ns,
                        "usage_in_kernelmode": cpu_total_ns / 4,
                        "usage_in_usermode": cpu_total_ns - cpu_total_ns / 4,
                    },
                    "system_cpu_usage": system_cpu_ns,
                    "online_cpus": host.cpus,
                    "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
                },
                "precpu_stats": {"cpu_usage": {"total_usage": 0}, "throttling_data": {}},
                "memory_stats": {
                    "usage": memory_usage_bytes,
                    "limit": limit,
                    "stats": {"cache": memory_cache_bytes},
                },
                "blkio_stats": {},
                "networks": {"eth0": {"rx_bytes": 0, "rx_packets": 0, "tx_bytes": 0, "tx_packets": 0}},
            });
            Ok(ContainerStats {
                read: now,
                cpu_total_ns,
                system_cpu_ns: Some(system_cpu_ns),
                online_cpus: Some(host.cpus),
                memory_usage_bytes,
                memory_cache_bytes,
                memory_limit_bytes: Some(limit),
                document,
            })
        })
    }

    fn bridge_gateway(&self) -> RuntimeFuture<'_, Option<String>> {
        Box::pin(async move {
            self.inner.check_available()?;
            // The simulation hands out 172.17.0.2 onwards on its default bridge.
            Ok(Some("172.17.0.1".to_owned()))
        })
    }

    fn list_volumes<'a>(
        &'a self,
        label_filter: &'a [(&'a str, &'a str)],
    ) -> RuntimeFuture<'a, Vec<String>> {
        Box::pin(async move {
            let state = self.inner.available()?;
            let mut names: Vec<String> = state
                .volumes
                .values()
                .filter(|v| labels_match(&v.labels, label_filter))
                .map(|v| v.name.clone())
                .collect();
            names.sort();
            Ok(names)
        })
    }

    fn list_networks<'a>(
        &'a self,
        label_filter: &'a [(&'a str, &'a str)],
    ) -> RuntimeFuture<'a, Vec<NetworkSummary>> {
        Box::pin(async move {
            let state = self.inner.available()?;
            let mut listed: Vec<NetworkSummary> = state
                .networks
                .values()
                .filter(|n| labels_match(&n.labels, label_filter))
                .map(|n| NetworkSummary {
                    id: format!("sim-{}", n.name),
                    name: n.name.clone(),
                    subnets: vec![n.subnet.clone()],
                    labels: n.labels.clone(),
                })
                .collect();
            listed.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(listed)
        })
    }

    fn remove_network<'a>(&'a self, name: &'a str) -> RuntimeFuture<'a, ()> {
        Box::pin(async move {
            let mut state = self.inner.available()?;
            if !state.networks.contains_key(name) {
                return Err(RuntimeError::NotFound(format!("network {name} not found")));
            }
            let attached = state.containers.values().any(|c| {
                c.state == ContainerState::Running
                    && match (&c.connected, &c.spec.network_mode) {
                        (Some((network, _)), _) => network == name,
                        (None, NetworkMode::Named(network)) => network == name,
                        _ => false,
                    }
            });
            if attached {
                return Err(RuntimeError::Conflict(format!(
                    "error while removing network: network {name} has active endpoints"
                )));
            }
            state.networks.remove(name);
            Ok(())
        })
    }

    fn remove_volume<'a>(&'a self, name: &'a str) -> RuntimeFuture<'a, ()> {
        Box::pin(async move {
            let mut state = self.inner.available()?;
            let in_use = state.containers.values().any(|c| {
                c.spec.mounts.iter().any(
                    |m| matches!(m, crate::MountSpec::Volume { name: used, .. } if used == name),
                )
            });
            if in_use {
                return Err(RuntimeError::Conflict(format!("volume {name} is in use")));
            }
            state
                .volumes
                .remove(name)
                .map(|_| ())
                .ok_or_else(|| RuntimeError::NotFound(format!("no such volume: {name}")))
        })
    }
}

/// A stable fake image id for a reference.
fn simulated_image_id(image: &str) -> String {
    let reference = normalize_image_reference(image);
    let mut id = String::from("sha256:");
    for round in 0u8..4 {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        hasher.write_u8(round);
        hasher.write(reference.as_bytes());
        id.push_str(&format!("{:016x}", hasher.finish()));
    }
    id
}

fn labels_match(labels: &BTreeMap<String, String>, filter: &[(&str, &str)]) -> bool {
    filter
        .iter()
        .all(|(key, value)| labels.get(*key).map(String::as_str) == Some(*value))
}

/// Ends run `run` of the container after `after`, unless it ended otherwise first.
fn spawn_exit(inner: Weak<Inner>, id: ContainerId, run: u64, after: Duration, exit_code: i64) {
    tokio::spawn(async move {
        tokio::time::sleep(after).await;
        let Some(inner) = inner.upgrade() else { return };
        let mut state = inner.lock();
        let Some(container) = state.containers.get_mut(&id) else {
            return;
        };
        if container.run != run || container.state != ContainerState::Running {
            return;
        }
        let died = exit(container, exit_code);
        let labels = container.labels.clone();
        drop(state);
        inner.emit(&id, &labels, died);
    });
}

/// Sets run `run`'s health after `after`, unless the run is over by then.
fn spawn_health(
    inner: Weak<Inner>,
    id: ContainerId,
    run: u64,
    after: Duration,
    health: HealthStatus,
) {
    tokio::spawn(async move {
        tokio::time::sleep(after).await;
        let Some(inner) = inner.upgrade() else { return };
        let mut state = inner.lock();
        let Some(container) = state.containers.get_mut(&id) else {
            return;
        };
        if container.run != run || container.state != ContainerState::Running {
            return;
        }
        container.health = health;
        let labels = container.labels.clone();
        drop(state);
        inner.emit(&id, &labels, ContainerEventKind::Health(health));
    });
}

#[cfg(test)]
mod tests;
