//! ECS's agent protocols on Berth's port: the ACS websocket (`GET /ws?clusterArn=…&
//! containerInstanceArn=…`) that hands tasks to a container instance's agent, and the
//! telemetry websocket (`GET /tcs/ws?cluster=…&containerInstance=…`) that takes its metrics
//! and health reports (containers' health onto their tasks; the instance's own health checks,
//! `PublishInstanceStatusRequest`, onto the instance's `healthStatus` in `berth_ecs`). Both
//! upgrades are SigV4-signed GETs, as the official agent sends them.
//!
//! What Berth sends on ACS, and why:
//! - `PayloadMessage` — at session start, every live task placed on the instance (so a
//!   reconnecting or restarted agent learns its full set), then each task whose desired
//!   status changes (RunTask/StartTask placed it: `RUNNING`; StopTask: `STOPPED`), pushed
//!   from a store watch the moment it commits. The agent answers `AckRequest`.
//! - `HeartbeatMessage` — every `heartbeat` interval (well inside the agent's 60 s idle
//!   timeout, so it never drops a healthy session); the agent answers
//!   `HeartbeatAckRequest`. Any frame from the agent counts as a sign of life; an agent
//!   silent for the presence timeout is marked disconnected (see `berth_ecs::agents`).
//! - `TaskManifestMessage` — every few heartbeats, the tasks the instance should have (for
//!   reconciliation). The agent acks it and, when it runs tasks the manifest does not name,
//!   sends `TaskStopVerificationMessage`; Berth answers `TaskStopVerificationAck` naming the
//!   candidates it does not know as live on this instance, and the agent stops those.
//! - `CloseMessage` — when the server shuts down, so the agent reconnects to the next one.
//! - `BerthFirewallMessage` (Berth's extension, only to agents that ask for it at connect
//!   with `berthExtensions=firewall`) — running awsvpc tasks' security groups resolved to
//!   new addresses (`acs_firewall.rs`); payloads carry each task's first ones.
//! - A refused upgrade answers `{"InactiveInstanceException": …}` for an unknown or
//!   deregistered instance and `{"InvalidClusterException": …}` for an unknown cluster,
//!   which the official agent treats as final (it stops retrying for an hour).

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use berth_agent_protocol::acs::{AgentMessage, HeartbeatMessage, PayloadMessage, ServerMessage};
use berth_agent_protocol::{ConnectionError, tcs};
use berth_ecs::Task;
use berth_model::Scope;
use berth_model::ecs::EcsArn;
use berth_model::ecs::{DesiredStatus, HealthStatus, TaskStatus};
use berth_model::task_definition::TaskDefinition;
use tokio::sync::mpsc;

use crate::AppState;
use crate::acs_credentials::{SessionCredentials, renewal_check_interval};
use crate::acs_payload::{PayloadContext, acs_task};

/// Why an agent's ACS or telemetry session ended before the agent or the server closed it.
#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error(transparent)]
    Ecs(#[from] berth_ecs::EcsError),
    #[error("a blocking store call failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error("websocket: {0}")]
    Socket(#[from] axum::Error),
    #[error(transparent)]
    Firewall(#[from] crate::acs_firewall::FirewallError),
}

/// How often the server sends an ACS heartbeat.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(20);
/// How long tasks' role credentials last unless configured (renewed at half-life).
pub const DEFAULT_TASK_CREDENTIALS: Duration = Duration::from_secs(3600);

/// What the hub tells a session.
enum SessionEvent {
    /// A task placed on the session's instance changed.
    Task(Box<Task>),
    /// The instance was deregistered: end the session (the agent's reconnect is then
    /// refused with InactiveInstanceException).
    Deregistered,
}

type SessionTx = mpsc::UnboundedSender<SessionEvent>;

/// The live agent sessions, and one store watch per cluster that routes task changes to
/// the session of the instance each task is placed on.
pub struct AgentHub {
    sessions: Mutex<HashMap<String, (u64, SessionTx)>>,
    feeds: Mutex<HashMap<String, ()>>,
    generation: AtomicU64,
    seq: AtomicI64,
    /// The latest telemetry each instance published (`PublishMetricsRequest` /
    /// `PublishHealthRequest` frames as JSON), kept for auto scaling.
    telemetry: Mutex<HashMap<String, TelemetryRecord>>,
    heartbeat: Duration,
    /// How long the credentials of tasks' roles last (`acs_credentials.rs`).
    pub task_credentials: Duration,
    /// Security group membership per scope, for awsvpc tasks' rules (`acs_firewall.rs`).
    pub firewalls: Arc<crate::acs_firewall::Feeds>,
    closing: tokio::sync::watch::Sender<bool>,
}

/// What an instance's agent last reported over the telemetry websocket.
#[derive(Debug, Clone, Default)]
pub struct TelemetryRecord {
    pub metrics: Option<serde_json::Value>,
    pub health: Option<serde_json::Value>,
    pub instance_status: Option<serde_json::Value>,
}

impl Default for AgentHub {
    fn default() -> Self {
        AgentHub::new(DEFAULT_HEARTBEAT)
    }
}

impl AgentHub {
    pub fn new(heartbeat: Duration) -> AgentHub {
        AgentHub {
            sessions: Mutex::new(HashMap::new()),
            feeds: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
            seq: AtomicI64::new(1),
            telemetry: Mutex::new(HashMap::new()),
            heartbeat,
            task_credentials: DEFAULT_TASK_CREDENTIALS,
            firewalls: Arc::default(),
            closing: tokio::sync::watch::channel(false).0,
        }
    }

    /// The hub, its tasks' role credentials lasting `lifetime`.
    pub fn with_task_credentials(mut self, lifetime: Duration) -> AgentHub {
        self.task_credentials = lifetime.max(Duration::from_secs(1));
        self
    }

    /// Ends every session with a `CloseMessage` (server shutdown).
    pub fn close_all(&self) {
        self.closing.send_replace(true);
    }

    /// Instances with an open ACS session.
    pub fn connected(&self) -> usize {
        lock(&self.sessions).len()
    }

    /// The latest telemetry of an instance (by its ARN).
    pub fn telemetry(&self, instance_arn: &str) -> Option<TelemetryRecord> {
        lock(&self.telemetry).get(instance_arn).cloned()
    }

    /// Ends the session of a deregistered instance.
    pub fn deregistered(&self, scope: &Scope, cluster: &str, instance_id: &str) {
        let key = format!("{}{instance_id}", session_prefix(scope, cluster));
        if let Some((_, tx)) = lock(&self.sessions).get(&key) {
            let _ = tx.send(SessionEvent::Deregistered);
        }
    }

    fn register(&self, key: &str, tx: SessionTx) -> u64 {
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        lock(&self.sessions).insert(key.to_string(), (generation, tx));
        generation
    }

    fn unregister(&self, key: &str, generation: u64) {
        let mut sessions = lock(&self.sessions);
        if sessions.get(key).is_some_and(|(g, _)| *g == generation) {
            sessions.remove(key);
        }
    }

    /// Starts the cluster's task feed once: a store watch whose task changes go to the
    /// session of the task's instance.
    fn ensure_feed(
        self: &Arc<Self>,
        app: &Arc<AppState>,
        scope: &Scope,
        cluster: &str,
    ) -> Result<(), SessionError> {
        let feed_key = session_prefix(scope, cluster);
        let mut feeds = lock(&self.feeds);
        if feeds.contains_key(&feed_key) {
            return Ok(());
        }
        let mut watcher = app.ecs.watch_tasks(scope, cluster)?;
        feeds.insert(feed_key.clone(), ());
        let hub = self.clone();
        let cluster_name = cluster.to_string();
        tokio::spawn(async move {
            while let Some(event) = watcher.recv().await {
                let task = match Task::from_event(&event) {
                    Ok(Some(task)) => task,
                    Ok(None) => continue,
                    Err(e) => {
                        tracing::warn!(error = %e, "undecodable task record in the agent feed");
                        continue;
                    }
                };
                // A cluster's feed carries its tasks on its own instances; the pool's,
                // every cluster's Fargate tasks.
                if task.instance_cluster() != cluster_name {
                    continue;
                }
                let Some(instance) = task.container_instance_id.clone() else {
                    continue;
                };
                let key = format!("{feed_key}{instance}");
                let tx = lock(&hub.sessions).get(&key).map(|(_, tx)| tx.clone());
                if let Some(tx) = tx {
                    let _ = tx.send(SessionEvent::Task(Box::new(task)));
                }
            }
            // The store dropped the watch: let the next session start a new feed.
            lock(&hub.feeds).remove(&feed_key);
        });
        Ok(())
    }

    /// Payload `seqNum`s and manifest `timeline`s: increasing, and across server restarts
    /// too (the official agent keeps the highest it has seen in its state file and drops a
    /// manifest not above it), so they are the later of "last + 1" and the clock in µs.
    fn next_seq(&self) -> i64 {
        let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000;
        let now = i64::try_from(now).unwrap_or(i64::MAX);
        let previous = self
            .seq
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
                Some(last.saturating_add(1).max(now))
            })
            .unwrap_or(0);
        previous.saturating_add(1).max(now)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn session_prefix(scope: &Scope, cluster: &str) -> String {
    format!("{}/{}/{cluster}/", scope.account, scope.region)
}

/// A refused upgrade, answered in the body shape the agent reads
/// (`{"<ExceptionType>": "<message>"}`).
struct Refusal {
    status: StatusCode,
    kind: String,
    message: String,
}

fn refuse(status: StatusCode, kind: &str, message: &str) -> Refusal {
    Refusal {
        status,
        kind: kind.to_string(),
        message: message.to_string(),
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (
            self.status,
            ConnectionError::new(self.kind, self.message).encode(),
        )
            .into_response()
    }
}

/// Authenticates the upgrade GET (SigV4 over the URL, empty payload), authorizes `action`
/// (`ecs:Poll`, `ecs:StartTelemetrySession`) on the container instance the query names for
/// any principal but an account's root, and returns its scope.
fn authenticate_get(
    app: &AppState,
    uri: &Uri,
    headers: &HeaderMap,
    action: &str,
) -> Result<Scope, Refusal> {
    let authenticated =
        crate::protocol::signature::authenticate(app, "GET", uri, headers, b"", false)
            .map_err(|e| refuse(e.status, &e.code, &e.message))?;
    if !matches!(authenticated.principal, berth_iam::Principal::Root { .. }) {
        let instance = uri
            .query()
            .unwrap_or("")
            .split('&')
            .find_map(|kv| kv.strip_prefix("containerInstance="))
            .map(crate::protocol::query::percent_decode)
            .filter(|arn| arn.starts_with("arn:"))
            .unwrap_or_else(|| "*".to_string());
        let context = crate::authz::RequestContext {
            region: authenticated.verified.region.clone(),
            ..Default::default()
        };
        crate::authz::authorize(
            &app.iam,
            &authenticated.principal,
            action,
            &[instance],
            &context,
            crate::authz::Refusal::Json,
        )
        .map_err(|e| refuse(e.status, &e.code, &e.message))?;
    }
    let verified = authenticated.verified;
    let region = verified.region.parse().map_err(|_| {
        refuse(
            StatusCode::BAD_REQUEST,
            "InvalidSignatureException",
            "Credential should be scoped to a valid region.",
        )
    })?;
    // The agent's instance belongs to the account whose credentials it signs with.
    let account = authenticated.principal.account().parse().map_err(|_| {
        refuse(
            StatusCode::BAD_REQUEST,
            "InvalidSignatureException",
            "The signer's account id is not valid.",
        )
    })?;
    Ok(Scope::new(account, region))
}

/// One instance a session is for.
#[derive(Clone)]
struct Peer {
    scope: Scope,
    cluster: String,
    cluster_arn: String,
    instance_id: String,
    instance_arn: String,
    /// The versions the agent's connection names (ACS only; empty for telemetry).
    version: berth_model::ecs::VersionInfo,
    /// The agent asked for `BerthFirewallMessage`s (Berth's agent; ACS only).
    firewall_updates: bool,
}

/// Resolves the cluster and instance named in a handshake; the refusal the agent expects
/// when either is unknown.
async fn resolve_peer(
    app: &Arc<AppState>,
    scope: Scope,
    cluster: String,
    instance: String,
) -> Result<Peer, Refusal> {
    let ecs = app.ecs.clone();
    let lookup = {
        let scope = scope.clone();
        tokio::task::spawn_blocking(move || {
            let cluster = ecs.active_cluster(&scope, Some(&cluster))?;
            let instance = ecs.container_instance(&scope, Some(&cluster.name), &instance)?;
            Ok::<_, berth_ecs::EcsError>((cluster, instance))
        })
    };
    match lookup.await {
        Ok(Ok((cluster, Some(instance))))
            if instance.status != berth_ecs::InstanceStatus::Inactive =>
        {
            Ok(Peer {
                cluster_arn: EcsArn::cluster(&scope, &cluster.name).into_string(),
                instance_arn: instance.arn(&scope),
                instance_id: instance.id,
                cluster: cluster.name,
                scope,
                version: Default::default(),
                firewall_updates: false,
            })
        }
        Ok(Ok((_, _))) | Ok(Err(berth_ecs::EcsError::InvalidParameter(_))) => Err(refuse(
            StatusCode::BAD_REQUEST,
            "InactiveInstanceException",
            "The container instance is not registered (or has been deregistered).",
        )),
        Ok(Err(berth_ecs::EcsError::ClusterNotFound)) => Err(refuse(
            StatusCode::BAD_REQUEST,
            "InvalidClusterException",
            "Cluster not found.",
        )),
        Ok(Err(e)) => Err(refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ServerException",
            &e.to_string(),
        )),
        Err(e) => Err(refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ServerException",
            &e.to_string(),
        )),
    }
}

/// `GET /ws`: the ACS session of one container instance's agent.
pub async fn acs_handler(
    State(app): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let scope = match authenticate_get(&app, &uri, &headers, "ecs:Poll") {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let query = match berth_agent_protocol::acs::AcsQuery::parse(uri.query().unwrap_or("")) {
        Ok(q) => q,
        Err(e) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "BadRequestException",
                &e.to_string(),
            )
            .into_response();
        }
    };
    let firewall_updates =
        query.berth_extension(berth_agent_protocol::acs::BERTH_EXTENSION_FIREWALL);
    let version = berth_model::ecs::VersionInfo {
        agent_version: query.agent_version,
        agent_hash: query.agent_hash,
        docker_version: query.docker_version,
    };
    let peer =
        match resolve_peer(&app, scope, query.cluster_arn, query.container_instance_arn).await {
            Ok(p) => Peer {
                version,
                firewall_updates,
                ..p
            },
            Err(r) => return r.into_response(),
        };
    let endpoint = app.endpoint(headers.get("host").and_then(|h| h.to_str().ok()));
    ws.on_upgrade(move |socket| async move {
        if let Err(e) = acs_session(socket, app, peer, endpoint).await {
            tracing::debug!(error = %e, "ACS session ended");
        }
    })
}

/// The state of one ACS session.
struct Session {
    app: Arc<AppState>,
    peer: Peer,
    endpoint: String,
    registry_host: String,
    /// Task definitions by ARN (their content never changes).
    definitions: HashMap<String, Arc<TaskDefinition>>,
    /// The desired status last sent for each task, so a task is resent only on change.
    sent: HashMap<String, DesiredStatus>,
    /// The ids of the last few task manifests sent (a stop verification answers one).
    manifests: std::collections::VecDeque<String>,
    /// The credentials of the tasks' roles handed out on this session.
    credentials: SessionCredentials,
    /// The security group rules its awsvpc tasks were given.
    firewalls: crate::acs_firewall::SessionFirewalls,
}

impl Session {
    async fn definition(&mut self, arn: &str) -> Result<Arc<TaskDefinition>, SessionError> {
        if let Some(td) = self.definitions.get(arn) {
            return Ok(td.clone());
        }
        let ecs = self.app.ecs.clone();
        let scope = self.peer.scope.clone();
        let reference = arn.to_string();
        let td =
            tokio::task::spawn_blocking(move || ecs.task_definition(&scope, &reference)).await??;
        let td = Arc::new(td.task_definition);
        self.definitions.insert(arn.to_string(), td.clone());
        Ok(td)
    }

    /// An awsvpc task's subnet's gateway with its prefix length (the subnet's record).
    async fn subnet_gateway(&self, task: &Task) -> Result<Option<String>, SessionError> {
        let Some(id) = task
            .eni()
            .and_then(|eni| eni.detail("subnetId"))
            .map(str::to_string)
        else {
            return Ok(None);
        };
        let ecs = self.app.ecs.clone();
        let subnet = tokio::task::spawn_blocking(move || ecs.subnet(&id)).await??;
        Ok(subnet.map(|s| s.gateway_cidr()))
    }

    /// A payload of the tasks among `tasks` whose desired status the agent has not been
    /// told yet, or `None` when there is nothing new.
    async fn payload(&mut self, tasks: Vec<Task>) -> Result<Option<String>, SessionError> {
        let mut out = Vec::new();
        // Tasks sent as RUNNING get their roles' credentials (store writes: issued together
        // on the blocking pool below).
        let mut credentialed = Vec::new();
        for task in tasks {
            if self.sent.get(&task.id) == Some(&task.desired_status) {
                continue;
            }
            if task.last_status == TaskStatus::Stopped && !self.sent.contains_key(&task.id) {
                continue; // stopped before the agent ever heard of it
            }
            let td = self.definition(&task.task_definition_arn).await?;
            let subnet_gateway = self.subnet_gateway(&task).await?;
            let ctx = PayloadContext {
                scope: &self.peer.scope,
                endpoint: &self.endpoint,
                registry_host: &self.registry_host,
                subnet_gateway,
            };
            let mut acs_task = acs_task(&ctx, &task, &td);
            self.firewalls
                .for_payload(&self.app, &self.peer.scope, &task, &mut acs_task)
                .await?;
            out.push(acs_task);
            if task.last_status == TaskStatus::Stopped {
                self.sent.remove(&task.id);
                self.credentials.forget(&task.arn(&self.peer.scope));
            } else {
                self.sent.insert(task.id.clone(), task.desired_status);
                if task.desired_status != DesiredStatus::Running {
                    self.credentials.forget(&task.arn(&self.peer.scope));
                } else if td.task_role_arn.is_some()
                    || td.execution_role_arn.is_some()
                    || task.overrides.as_ref().is_some_and(|o| {
                        o.task_role_arn.is_some() || o.execution_role_arn.is_some()
                    })
                {
                    credentialed.push((out.len() - 1, task, td));
                }
            }
        }
        if !credentialed.is_empty() {
            let (app, scope) = (self.app.clone(), self.peer.scope.clone());
            let mut credentials = std::mem::take(&mut self.credentials);
            let mut tasks: Vec<_> = credentialed
                .iter()
                .map(|(at, _, _)| std::mem::take(&mut out[*at]))
                .collect();
            let (credentials, tasks) = tokio::task::spawn_blocking(move || {
                for ((_, task, td), out) in credentialed.iter().zip(tasks.iter_mut()) {
                    credentials.for_payload(&app, &scope, task, td, out);
                }
                (credentials, (credentialed, tasks))
            })
            .await?;
            self.credentials = credentials;
            let (credentialed, tasks) = tasks;
            for ((at, _, _), task) in credentialed.into_iter().zip(tasks) {
                out[at] = task;
            }
        }
        if out.is_empty() {
            return Ok(None);
        }
        let seq = self.app.agents.next_seq();
        let message = PayloadMessage {
            cluster_arn: Some(self.peer.cluster_arn.clone()),
            container_instance_arn: Some(self.peer.instance_arn.clone()),
            tasks: Some(out),
            generated_at: Some(time::OffsetDateTime::now_utc().unix_timestamp()),
            message_id: Some(uuid::Uuid::new_v4().to_string()),
            seq_num: Some(seq),
            ..PayloadMessage::default()
        };
        Ok(Some(ServerMessage::Payload(message).encode()))
    }
}

impl Session {
    /// A `BerthFirewallMessage` for the tasks whose security groups now resolve to other
    /// rules, or `None`.
    async fn firewall_update(&mut self) -> Result<Option<String>, SessionError> {
        let tasks = self.firewalls.updates(&self.app, &self.peer.scope).await?;
        if tasks.is_empty() {
            return Ok(None);
        }
        let message = berth_agent_protocol::acs::BerthFirewallMessage {
            cluster_arn: Some(self.peer.cluster_arn.clone()),
            container_instance_arn: Some(self.peer.instance_arn.clone()),
            message_id: Some(uuid::Uuid::new_v4().to_string()),
            tasks: Some(tasks),
        };
        Ok(Some(ServerMessage::BerthFirewall(message).encode()))
    }

    /// `IAMRoleCredentialsMessage`s for the credentials due for renewal.
    async fn renew_credentials(&mut self) -> Result<Vec<String>, SessionError> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp() as f64;
        if !self.credentials.any_due(now) {
            return Ok(Vec::new());
        }
        let app = self.app.clone();
        let mut credentials = std::mem::take(&mut self.credentials);
        let (credentials, frames) = tokio::task::spawn_blocking(move || {
            let frames = credentials.renew(&app, now);
            (credentials, frames)
        })
        .await?;
        self.credentials = credentials;
        Ok(frames)
    }
}

/// Heartbeats between two task manifests.
const MANIFEST_EVERY: u32 = 3;

impl Session {
    async fn live_tasks(&self) -> Result<Vec<Task>, SessionError> {
        let ecs = self.app.ecs.clone();
        let (scope, cluster, id) = (
            self.peer.scope.clone(),
            self.peer.cluster.clone(),
            self.peer.instance_id.clone(),
        );
        tokio::task::spawn_blocking(move || ecs.live_tasks_on(&scope, &cluster, &id))
            .await?
            .map_err(SessionError::from)
    }

    /// A manifest of the live tasks on this instance; remembers its id for the verification.
    async fn manifest(&mut self) -> Result<String, SessionError> {
        let tasks = self.live_tasks().await?;
        let message_id = uuid::Uuid::new_v4().to_string();
        if self.manifests.len() == 4 {
            self.manifests.pop_front();
        }
        self.manifests.push_back(message_id.clone());
        let message = berth_agent_protocol::acs::TaskManifestMessage {
            cluster_arn: Some(self.peer.cluster_arn.clone()),
            container_instance_arn: Some(self.peer.instance_arn.clone()),
            tasks: Some(
                tasks
                    .iter()
                    .map(|t| berth_agent_protocol::acs::TaskIdentifier {
                        task_arn: Some(t.arn(&self.peer.scope)),
                        // The task's own cluster (a Fargate task's is not the pool's).
                        task_cluster_arn: Some(
                            EcsArn::cluster(&self.peer.scope, &t.cluster).into_string(),
                        ),
                        desired_status: Some(t.desired_status.to_string()),
                    })
                    .collect(),
            ),
            generated_at: Some(time::OffsetDateTime::now_utc().unix_timestamp()),
            message_id: Some(message_id),
            timeline: Some(self.app.agents.next_seq()),
        };
        Ok(ServerMessage::TaskManifest(message).encode())
    }

    /// The answer to a stop verification: of the agent's candidates, those this instance
    /// should not run (unknown here, placed elsewhere, or meant to stop).
    async fn verify_stops(
        &self,
        request: berth_agent_protocol::acs::TaskStopVerificationMessage,
    ) -> Result<Option<String>, SessionError> {
        if !request
            .message_id
            .as_ref()
            .is_some_and(|id| self.manifests.contains(id))
        {
            return Ok(None); // not an answer to one of this session's manifests
        }
        let live: std::collections::HashMap<String, DesiredStatus> = self
            .live_tasks()
            .await?
            .into_iter()
            .map(|t| (t.arn(&self.peer.scope), t.desired_status))
            .collect();
        let stop: Vec<_> = request
            .stop_candidates
            .unwrap_or_default()
            .into_iter()
            .filter(|c| {
                c.task_arn
                    .as_ref()
                    .is_none_or(|arn| live.get(arn).is_none_or(|d| *d == DesiredStatus::Stopped))
            })
            .collect();
        let ack = berth_agent_protocol::acs::TaskStopVerificationAck {
            generated_at: Some(time::OffsetDateTime::now_utc().unix_timestamp()),
            message_id: request.message_id,
            stop_tasks: Some(stop),
        };
        Ok(Some(ServerMessage::TaskStopVerificationAck(ack).encode()))
    }
}

async fn acs_session(
    mut socket: WebSocket,
    app: Arc<AppState>,
    peer: Peer,
    endpoint: String,
) -> Result<(), SessionError> {
    let hub = app.agents.clone();
    let key = format!(
        "{}{}",
        session_prefix(&peer.scope, &peer.cluster),
        peer.instance_id
    );
    // Subscribe before reading the instance's tasks: a change in between arrives twice
    // at worst (and is sent once), never not at all.
    hub.ensure_feed(&app, &peer.scope, &peer.cluster)?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let generation = hub.register(&key, tx);
    let result = async {
        let initial = {
            let ecs = app.ecs.clone();
            let (scope, cluster, id) = (peer.scope.clone(), peer.cluster.clone(), peer.instance_id.clone());
            let version = peer.version.clone();
            tokio::task::spawn_blocking(move || {
                ecs.agent_connected(&scope, &cluster, &id)?;
                ecs.record_agent_version(&scope, &cluster, &id, &version)?;
                ecs.live_tasks_on(&scope, &cluster, &id)
            })
            .await
            ??
        };
        let peer_firewall_updates = peer.firewall_updates;
        let mut session = Session {
            registry_host: app.registry_host(),
            app: app.clone(),
            peer,
            endpoint,
            definitions: HashMap::new(),
            sent: HashMap::new(),
            manifests: std::collections::VecDeque::new(),
            credentials: SessionCredentials::default(),
            firewalls: crate::acs_firewall::SessionFirewalls::new(peer_firewall_updates),
        };
        if let Some(frame) = session.payload(initial).await? {
            socket.send(Message::Text(frame.into())).await?;
        }
        // Each session starts its beat at a random point of the interval, so that agents
        // that connected together (a restart, a fleet started at once) do not send their
        // heartbeats and read their manifests all at the same moment.
        let period_ms = hub.heartbeat.as_millis().max(1) as u64;
        let offset = Duration::from_millis(uuid::Uuid::new_v4().as_u64_pair().0 % period_ms);
        let mut heartbeat = tokio::time::interval_at(
            tokio::time::Instant::now() + offset.max(Duration::from_millis(1)),
            hub.heartbeat,
        );
        let mut beats: u32 = 0;
        let mut closing = hub.closing.subscribe();
        let mut renewals = tokio::time::interval(renewal_check_interval(hub.task_credentials));
        renewals.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = renewals.tick() => {
                    for frame in session.renew_credentials().await? {
                        socket.send(Message::Text(frame.into())).await?;
                    }
                }
                Some(event) = rx.recv() => {
                    let mut tasks = Vec::new();
                    let mut deregistered = false;
                    for event in std::iter::once(event).chain(std::iter::from_fn(|| rx.try_recv().ok())) {
                        match event {
                            SessionEvent::Task(task) => tasks.push(*task),
                            SessionEvent::Deregistered => deregistered = true,
                        }
                    }
                    if deregistered {
                        let _ = socket.send(Message::Close(None)).await;
                        return Ok(());
                    }
                    if let Some(frame) = session.payload(tasks).await? {
                        socket.send(Message::Text(frame.into())).await?;
                    }
                }
                _ = session.firewalls.changed() => {
                    if let Some(frame) = session.firewall_update().await? {
                        socket.send(Message::Text(frame.into())).await?;
                    }
                }
                _ = heartbeat.tick() => {
                    let frame = ServerMessage::Heartbeat(HeartbeatMessage {
                        healthy: Some(true),
                        message_id: Some(uuid::Uuid::new_v4().to_string()),
                    })
                    .encode();
                    socket.send(Message::Text(frame.into())).await?;
                    beats += 1;
                    if beats.is_multiple_of(MANIFEST_EVERY) {
                        let frame = session.manifest().await?;
                        socket.send(Message::Text(frame.into())).await?;
                    }
                }
                _ = closing.changed() => {
                    let frame = ServerMessage::Close(berth_agent_protocol::acs::CloseMessage {
                        message: Some("The server is shutting down.".into()),
                    })
                    .encode();
                    let _ = socket.send(Message::Text(frame.into())).await;
                    let _ = socket.send(Message::Close(None)).await;
                    return Ok(());
                }
                incoming = socket.recv() => {
                    let Some(Ok(message)) = incoming else {
                        return Ok(()); // the agent went away
                    };
                    session.app.ecs.agent_heartbeat(&session.peer.scope, &session.peer.cluster, &session.peer.instance_id);
                    match message {
                        Message::Text(text) => match AgentMessage::decode(&text) {
                            Ok(AgentMessage::Ack(_) | AgentMessage::HeartbeatAck(_)) => {}
                            Ok(AgentMessage::TaskStopVerification(request)) => {
                                if let Some(frame) = session.verify_stops(request).await? {
                                    socket.send(Message::Text(frame.into())).await?;
                                }
                            }
                            Ok(other) => tracing::debug!(kind = other.type_name(), "ACS frame from the agent"),
                            Err(e) => tracing::debug!(error = %e, "unreadable ACS frame"),
                        },
                        Message::Close(_) => return Ok(()),
                        _ => {}
                    }
                }
            }
        }
    }
    .await;
    hub.unregister(&key, generation);
    result
}

/// `GET /tcs/ws`: the telemetry session of one container instance's agent.
pub async fn tcs_handler(
    State(app): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let scope = match authenticate_get(&app, &uri, &headers, "ecs:StartTelemetrySession") {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let query = match tcs::TcsQuery::parse(uri.query().unwrap_or("")) {
        Ok(q) => q,
        Err(e) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "BadRequestException",
                &e.to_string(),
            )
            .into_response();
        }
    };
    let peer = match resolve_peer(&app, scope, query.cluster, query.container_instance).await {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    ws.on_upgrade(move |socket| async move {
        if let Err(e) = tcs_session(socket, app, peer).await {
            tracing::debug!(error = %e, "telemetry session ended");
        }
    })
}

async fn tcs_session(
    mut socket: WebSocket,
    app: Arc<AppState>,
    peer: Peer,
) -> Result<(), SessionError> {
    let hub = app.agents.clone();
    let mut closing = hub.closing.subscribe();
    let mut batch = crate::acs_telemetry::Batch::default();
    loop {
        let incoming = tokio::select! {
            incoming = socket.recv() => incoming,
            _ = closing.changed() => {
                let _ = socket.send(Message::Close(None)).await;
                return Ok(());
            }
        };
        let Some(Ok(message)) = incoming else {
            return Ok(());
        };
        let text = match message {
            Message::Text(text) => text,
            Message::Close(_) => return Ok(()),
            _ => continue,
        };
        app.ecs
            .agent_heartbeat(&peer.scope, &peer.cluster, &peer.instance_id);
        let reply = match tcs::AgentMessage::decode(&text) {
            Ok(tcs::AgentMessage::PublishMetrics(m)) => {
                if let Some(samples) = batch.add(&m) {
                    // Kept in the store for the leader's AWS/ECS metrics
                    // (berth_ecs::utilization), whichever replica holds this session.
                    let (app, peer) = (app.clone(), peer.clone());
                    let kept = tokio::task::spawn_blocking(move || {
                        app.ecs.record_telemetry(
                            &peer.scope,
                            &peer.cluster,
                            &peer.instance_id,
                            &samples,
                        )
                    })
                    .await;
                    if let Ok(Err(e)) = kept {
                        tracing::warn!(error = %e, "telemetry not kept");
                    }
                }
                lock(&hub.telemetry)
                    .entry(peer.instance_arn.clone())
                    .or_default()
                    .metrics = serde_json::to_value(&m).ok();
                Some(tcs::ServerMessage::AckPublishMetric(Default::default()))
            }
            Ok(tcs::AgentMessage::PublishHealth(m)) => {
                lock(&hub.telemetry)
                    .entry(peer.instance_arn.clone())
                    .or_default()
                    .health = serde_json::to_value(&m).ok();
                record_health(&app, &peer, &m).await;
                Some(tcs::ServerMessage::AckPublishHealth(Default::default()))
            }
            Ok(tcs::AgentMessage::PublishInstanceStatus(m)) => {
                app.ecs.record_instance_health(
                    &peer.scope,
                    &peer.cluster,
                    &peer.instance_id,
                    parse_instance_health(&m),
                );
                lock(&hub.telemetry)
                    .entry(peer.instance_arn.clone())
                    .or_default()
                    .instance_status = serde_json::to_value(&m).ok();
                Some(tcs::ServerMessage::AckPublishInstanceStatus(
                    Default::default(),
                ))
            }
            Ok(_) => None,
            Err(e) => {
                tracing::debug!(error = %e, "unreadable telemetry frame");
                None
            }
        };
        if let Some(reply) = reply {
            socket.send(Message::Text(reply.encode().into())).await?;
        }
    }
}

/// The instance health checks of a telemetry report, named as ECS's API names them. A check
/// of a type the API has no name for (the official agent's check of itself, `Agent`) or
/// without a status the API knows is left out.
fn parse_instance_health(
    report: &tcs::PublishInstanceStatusRequest,
) -> Vec<berth_ecs::InstanceHealthCheckResult> {
    use berth_ecs::{InstanceHealthCheckType as Type, InstanceHealthStatus as Status};
    let reported_at = report.timestamp.map(epoch_seconds);
    report
        .statuses
        .iter()
        .flatten()
        .filter_map(|check| {
            let kind = match check.kind.as_deref()? {
                tcs::INSTANCE_CHECK_CONTAINER_RUNTIME => Type::ContainerRuntime,
                tcs::INSTANCE_CHECK_NVIDIA => Type::AcceleratedCompute,
                tcs::INSTANCE_CHECK_EBS_DAEMON => Type::Daemon,
                _ => return None,
            };
            let status = match check.status.as_deref()? {
                tcs::INSTANCE_STATUS_OK => Status::Ok,
                tcs::INSTANCE_STATUS_IMPAIRED => Status::Impaired,
                tcs::INSTANCE_STATUS_INITIALIZING => Status::Initializing,
                "INSUFFICIENT_DATA" => Status::InsufficientData,
                _ => return None,
            };
            let last_updated = check.last_updated.map(epoch_seconds).or(reported_at)?;
            Some(berth_ecs::InstanceHealthCheckResult {
                kind,
                status,
                last_updated,
                last_status_change: check
                    .last_status_change
                    .map(epoch_seconds)
                    .unwrap_or(last_updated),
                status_reason: check.status_reason.clone().filter(|r| !r.is_empty()),
            })
        })
        .collect()
}

fn epoch_seconds(timestamp: berth_agent_protocol::Timestamp) -> f64 {
    timestamp.unix_millis() as f64 / 1000.0
}

/// Containers' health from a telemetry report, onto their tasks (DescribeTasks'
/// `healthStatus`).
async fn record_health(app: &Arc<AppState>, peer: &Peer, report: &tcs::PublishHealthRequest) {
    let updates: Vec<(String, Vec<(String, HealthStatus)>)> = report
        .tasks
        .iter()
        .flatten()
        .filter_map(|t| {
            let containers = t
                .containers
                .iter()
                .flatten()
                .filter_map(|c| {
                    // A status this model does not know leaves the container's as it was.
                    let status = c.health_status.as_deref()?.parse().ok()?;
                    Some((c.container_name.clone()?, status))
                })
                .collect();
            Some((t.task_arn.clone()?, containers))
        })
        .collect();
    if updates.is_empty() {
        return;
    }
    let ecs = app.ecs.clone();
    let (scope, cluster) = (peer.scope.clone(), peer.cluster.clone());
    let done = tokio::task::spawn_blocking(move || {
        for (task, containers) in updates {
            ecs.record_task_health(&scope, &cluster, &task, &containers)?;
        }
        Ok::<_, berth_ecs::EcsError>(())
    })
    .await;
    if let Ok(Err(e)) = done {
        tracing::debug!(error = %e, "recording container health failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_ecs::{InstanceHealthCheckType, InstanceHealthStatus};

    #[test]
    fn instance_status_reports_map_onto_ecs_health_checks() {
        let frame = r#"{"type":"PublishInstanceStatusRequest","message":{"metadata":{"cluster":"default","containerInstance":"ci-1","requestId":"r"},"statuses":[
            {"type":"ContainerRuntime","status":"IMPAIRED","lastUpdated":1700000020.5,"lastStatusChange":1700000000,"statusReason":"connection refused"},
            {"type":"Agent","status":"OK","lastUpdated":1700000020,"lastStatusChange":1700000000},
            {"type":"NVIDIA_ACCELERATED_HARDWARE","status":"INITIALIZING"},
            {"type":"EBSDaemon","status":"SOMETHING_NEW","lastUpdated":1700000020}
        ],"timestamp":1700000021}}"#;
        let Ok(tcs::AgentMessage::PublishInstanceStatus(report)) = tcs::AgentMessage::decode(frame)
        else {
            panic!("not an instance status report");
        };
        let checks = parse_instance_health(&report);
        assert_eq!(checks.len(), 2, "{checks:?}");
        assert_eq!(checks[0].kind, InstanceHealthCheckType::ContainerRuntime);
        assert_eq!(checks[0].status, InstanceHealthStatus::Impaired);
        assert_eq!(checks[0].last_updated, 1_700_000_020.5);
        assert_eq!(checks[0].last_status_change, 1_700_000_000.0);
        assert_eq!(
            checks[0].status_reason.as_deref(),
            Some("connection refused")
        );
        // No times of its own: the report's.
        assert_eq!(checks[1].kind, InstanceHealthCheckType::AcceleratedCompute);
        assert_eq!(checks[1].status, InstanceHealthStatus::Initializing);
        assert_eq!(checks[1].last_updated, 1_700_000_021.0);
        assert_eq!(checks[1].last_status_change, 1_700_000_021.0);
        assert_eq!(checks[1].status_reason, None);
    }

    /// Sequence numbers increase within a server's life and start above any earlier
    /// server's (they follow the clock in µs).
    #[test]
    fn sequence_numbers_increase_across_restarts() {
        let first = AgentHub::default();
        let a = first.next_seq();
        let b = first.next_seq();
        assert!(b > a);
        std::thread::sleep(Duration::from_millis(2));
        let restarted = AgentHub::default();
        assert!(restarted.next_seq() > b);
    }
}
