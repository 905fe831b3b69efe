//! The Berth server as a library: [`run`] composes the store, the registry, ECS, CloudWatch
//! Logs, the background controllers (service scheduler, agent presence, garbage collection,
//! housekeeping, log retention) and, for `berth up`, the built-in agents, behind one HTTP
//! listener the caller bound, until the caller's shutdown future resolves. The `berth`
//! binary is a thin command line over it; tests start the same server in-process.
//!
//! Modules: `autoscaling` (EC2 Auto Scaling's controller and provisioners), `blobs` (where registry blobs live), `files` (credentials and the token key in the data dir), `host` (this host's
//! share of an installation: its Docker objects, `berth down`), `periodic` (the
//! housekeeping loops).

mod alarms;
pub mod app_autoscaling;
pub mod autoscaling;
pub mod blobs;
mod ecs_metrics;
pub mod files;
pub mod host;
mod load_balancing;
mod logs_metrics;
pub mod periodic;
pub mod replica;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use berth_api::{AppState, RootCredentials, TokenIssuer};
use berth_model::{AccountId, InstallationId};
use berth_registry::Registry;

/// How the server is set up (the `berth server` / `berth up` flags).
#[derive(Clone)]
pub struct ServerConfig {
    /// Where state, blobs, logs and credentials live.
    pub data_dir: PathBuf,
    /// Where registry blobs live instead of the data dir (`--blobs s3://…`).
    pub blobs: blobs::BlobsConfig,
    /// Host (or host:port) clients use instead of the bound address, for repositoryUri.
    pub advertise: Option<String>,
    /// Replicas: how the others reach this one (`--replica-url`); default: `http://` and
    /// the advertised or bound address.
    pub replica_url: Option<String>,
    pub account_id: String,
    /// How often background garbage collection runs (zero: never).
    pub gc_interval: Duration,
    /// Unreferenced blobs and uploads younger than this are kept.
    pub gc_grace: Duration,
    /// How often ECR lifecycle policies run (ECR: daily; zero: never).
    pub lifecycle_interval: Duration,
    /// An agent not heard from for this long shows as disconnected.
    pub agent_timeout: Duration,
    /// How often each connected agent gets an ACS heartbeat.
    pub agent_heartbeat: Duration,
    /// How long the credentials of tasks' roles last (renewed at half-life).
    pub task_credentials: Duration,
    /// How long registry tokens last.
    pub token_ttl: Duration,
    /// `berth up`'s built-in capacity; `None` for `berth server`.
    pub up: Option<UpOptions>,
    /// Where state lives (`--store`): embedded in the data dir, or etcd.
    pub store: files::StoreLocation,
    /// On a shared store: how often the leader seals log journal entries older than this
    /// into sealed runs (docs/replicas.md).
    pub log_seal_interval: Duration,
    /// The root credentials; `None`: `BERTH_ROOT_ACCESS_KEY_ID` /
    /// `BERTH_ROOT_SECRET_ACCESS_KEY`, else DATA_DIR/credentials (made on first start).
    pub root_credentials: Option<RootCredentials>,
    /// How often Berth publishes its own CloudWatch metrics (ELBv2's, ECS's): 60 s unless
    /// `BERTH_METRICS_PERIOD_SECONDS` says otherwise; shorter periods are high-resolution.
    pub metrics_period: Duration,
    /// How Auto Scaling groups' instances are started (`--asg-provisioner-command`).
    pub asg_provisioner: autoscaling::provisioner::ProvisionerConfig,
    /// Capacity providers' managed scaling: how long before a scale-in, how long tasks
    /// wait in PROVISIONING (docs/capacity-providers.md).
    pub managed_scaling: autoscaling::managed_scaling::Settings,
}

impl ServerConfig {
    /// `berth server`'s defaults on this data dir.
    pub fn new(data_dir: impl Into<PathBuf>) -> ServerConfig {
        ServerConfig {
            data_dir: data_dir.into(),
            blobs: blobs::BlobsConfig::default(),
            advertise: None,
            replica_url: None,
            account_id: berth_model::DEFAULT_ACCOUNT_ID.to_owned(),
            gc_interval: Duration::from_secs(3600),
            gc_grace: Duration::from_secs(86400),
            lifecycle_interval: Duration::from_secs(86400),
            agent_timeout: Duration::from_secs(60),
            agent_heartbeat: Duration::from_secs(20),
            task_credentials: berth_api::acs::DEFAULT_TASK_CREDENTIALS,
            token_ttl: Duration::from_secs(12 * 3600),
            up: None,
            store: files::StoreLocation::Embedded,
            root_credentials: None,
            log_seal_interval: Duration::from_secs(5),
            metrics_period: load_balancing::metrics::period_from_env(),
            asg_provisioner: Default::default(),
            managed_scaling: autoscaling::managed_scaling::Settings::from_env(),
        }
    }
}

/// What `berth up` adds to the server: this machine's Docker Engine as built-in capacity.
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// A container instance of the `default` cluster (EC2 launch type).
    pub with_instance: bool,
    /// A host of the Fargate capacity pool.
    pub fargate: bool,
    /// The region the built-in capacity serves.
    pub region: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Store(#[from] berth_store::StoreError),
    #[error(transparent)]
    Registry(#[from] berth_registry::RegistryError),
    #[error(transparent)]
    Logs(#[from] berth_logs::LogsError),
    #[error(transparent)]
    Ecs(#[from] berth_ecs::EcsError),
    #[error(transparent)]
    Agent(#[from] berth_agent::AgentError),
    #[error(transparent)]
    AgentState(#[from] berth_agent::state::StateError),
    #[error(transparent)]
    Runtime(#[from] berth_runtime::RuntimeError),
}

impl ServerError {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> ServerError {
        ServerError::Io {
            context: context.into(),
            source,
        }
    }
}

/// A server that is up and about to serve (what `berth up` prints).
#[derive(Debug, Clone)]
pub struct Started {
    /// `http://HOST:PORT` clients reach it at.
    pub endpoint: String,
    /// `HOST:PORT` of the registry, as repositoryUri names it.
    pub registry_host: String,
    pub installation: InstallationId,
}

/// What a server left behind when it stopped.
#[derive(Debug, Clone, Default)]
pub struct Stopped {
    /// `berth up`: the installation's tasks still running on this host (they outlive the
    /// control plane); `None` when not counted (no built-in capacity, or no Docker).
    pub tasks_left_running: Option<usize>,
}

/// Runs the server on `listener` until `shutdown` resolves; `started` is called once it is
/// ready to serve. Background loops and built-in agents end with it.
pub async fn run(
    config: ServerConfig,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    started: impl FnOnce(&Started),
) -> Result<Stopped, ServerError> {
    let data_dir = &config.data_dir;
    let account: AccountId = config
        .account_id
        .parse()
        .map_err(|e| ServerError::Config(format!("--account-id: {e}")))?;
    let opened = files::open_store_at(&config.store, data_dir)?;
    let store = opened.store.clone();
    let registry = blobs::open_registry(
        &config.blobs,
        store.clone(),
        data_dir,
        opened.etcd.is_some(),
    )
    .await?;
    let ecs =
        berth_ecs::Ecs::new(store.clone()).with_host_networks(Arc::new(berth_ecs::ProcNetRoute));
    let installation = ecs.installation()?;
    // Services behind load balancers register their tasks in ELBv2's target groups.
    let ec2 = Arc::new(
        berth_ec2::Ec2::new(store.clone()).with_host_ranges(Arc::new(load_balancing::HostRoutes)),
    );
    let networks = Arc::new(load_balancing::Ec2Networks {
        ec2: ec2.clone(),
        installation: installation.clone(),
    });
    let elbv2 = Arc::new(
        berth_elbv2::Elbv2::new(store.clone(), installation.clone())
            .with_networks(networks.clone()),
    );
    // awsvpc tasks take their addresses from EC2's subnets.
    let ecs = ecs
        .with_target_groups(Arc::new(load_balancing::ElbTargetGroups(elbv2.clone())))
        .with_subnet_directory(networks);
    host::record_installation(data_dir, &installation)?;
    let docker = host::docker().await;
    if let Some(docker) = &docker {
        // A subnet whose range another network on this host now uses moves, while idle.
        let own = host::own_interfaces(docker, &installation).await;
        ecs.move_subnets_off_host_routes(&own)?;
    }
    // Replicas on etcd keep log events in etcd too, so that any replica reads them.
    let logs = Arc::new(match &opened.etcd {
        Some(_) => berth_logs::Logs::open_shared(store.clone(), &data_dir.join("logs"))?,
        None => berth_logs::Logs::open(store.clone(), &data_dir.join("logs"))?,
    });
    let indexed = ecs.migrate_instance_task_index()?;
    if indexed > 0 {
        tracing::info!(tasks = indexed, "indexed live tasks by container instance");
    }
    let (credentials, token_key) = match &opened.etcd {
        None => (
            match &config.root_credentials {
                Some(given) => given.clone(),
                None => files::root_credentials(data_dir)?,
            },
            files::token_key(data_dir)?,
        ),
        Some(etcd) => files::shared_secrets(
            etcd.as_ref(),
            data_dir,
            config
                .root_credentials
                .clone()
                .or_else(files::root_credentials_from_env),
        )?,
    };
    // Values kept encrypted at rest (SSM SecureString parameters, Secrets Manager's secrets)
    // under a key derived from the installation's token key, which every replica shares
    // (berth-kms).
    let data_key = Arc::new(berth_kms::DataKey::derive(&token_key));
    let tokens = TokenIssuer::new(token_key, config.token_ttl.as_secs() as i64);
    let listen = listener
        .local_addr()
        .map_err(|e| ServerError::io("the listener's address", e))?;
    // A replica's name: its base URL (where the others forward to it) and a unique part.
    let replica_url = match &config.replica_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => format!(
            "http://{}",
            berth_api::registry_host(listen, config.advertise.as_deref())
        ),
    };
    let replica_name = format!("{replica_url}/{}", uuid_like());
    let (other_leader_tx, other_leader) = tokio::sync::watch::channel(None);
    // Application Auto Scaling sets ECS services' desired counts; its target tracking
    // policies own CloudWatch alarms (`alarms.rs`), whose actions the leader runs.
    let cloudwatch = Arc::new(berth_cloudwatch::CloudWatch::new(store.clone()));
    let app_autoscaling = berth_app_autoscaling::AppAutoScaling::new(
        store.clone(),
        Arc::new(alarms::CloudWatchAlarms(cloudwatch.clone())),
        Arc::new(app_autoscaling::EcsServices(ecs.clone())),
    )
    // Target tracking on Berth's own metrics evaluates periods they fill (docs/autoscaling.md).
    .with_metrics_period(config.metrics_period.as_secs());
    let autoscaling = Arc::new(berth_autoscaling::AutoScaling::new(
        store.clone(),
        Arc::new(berth_api::autoscaling::Ec2Launches(ec2.clone())),
    ));
    let state = Arc::new(AppState {
        registry: registry.clone(),
        app_autoscaling,
        ecs,
        logs: logs.clone(),
        cloudwatch,
        ssm: Arc::new(berth_ssm::Ssm::new(store.clone(), data_key.clone())),
        secrets: Arc::new(berth_secrets::Secrets::new(store.clone(), data_key.clone())),
        elbv2,
        ec2,
        autoscaling,
        // On the embedded store this process is the only writer: IAM checks its cached
        // policies against its own write count, without a store read per request.
        iam: match &opened.etcd {
            Some(_) => berth_iam::Iam::new(store.clone()),
            None => berth_iam::Iam::new(store.clone()).sole_writer(),
        }
        .with_data_key(data_key),
        credentials: credentials.clone(),
        account,
        tokens,
        listen,
        advertise: config.advertise.clone(),
        agents: Arc::new(
            berth_api::acs::AgentHub::new(config.agent_heartbeat.max(Duration::from_secs(1)))
                .with_task_credentials(config.task_credentials),
        ),
        leader: opened
            .etcd
            .is_some()
            .then(|| berth_api::forward::LeaderRoute::new(replica_name.clone(), other_leader)),
    });
    // Metric filters emit into CloudWatch on whichever replica stores the batch.
    logs.set_metric_sink(Arc::new(logs_metrics::CloudWatchSink(
        state.cloudwatch.clone(),
    )));
    // Every background loop ends when this turns true.
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    spawn_replica_loops(&state, &logs, &shutdown_rx);
    let role = match &opened.etcd {
        Some(etcd) => {
            spawn_presence(&config, &state, &replica_name, &shutdown_rx);
            replica::elect(
                etcd.clone(),
                replica_name,
                other_leader_tx,
                shutdown_rx.clone(),
            )
        }
        None => replica::single(),
    };
    let provisioner: Arc<dyn autoscaling::provisioner::Provisioner> = match &config.asg_provisioner
    {
        autoscaling::provisioner::ProvisionerConfig::InProcess => {
            Arc::new(autoscaling::provisioner::InProcess::new(
                config.data_dir.clone(),
                installation.clone(),
                state.account.to_string(),
                credentials.clone(),
                state.iam.clone(),
                shutdown_rx.clone(),
            ))
        }
        autoscaling::provisioner::ProvisionerConfig::Command(path) => {
            Arc::new(autoscaling::provisioner::Command::new(path.clone()))
        }
    };
    tokio::spawn(lead(
        role,
        config.clone(),
        state.clone(),
        (registry.clone(), provisioner),
        store.clone(),
        shutdown_rx.clone(),
    ));
    let built_in = match &config.up {
        Some(up) => start_built_in_agents(&config, up, &state, &installation, &shutdown_rx),
        None => Vec::new(),
    };
    started(&Started {
        endpoint: state.endpoint(None),
        registry_host: state.registry_host(),
        installation: installation.clone(),
    });
    let agents = state.agents.clone();
    berth_api::serve(listener, state, async move {
        shutdown.await;
        let _ = shutdown_tx.send(true);
        // Websocket sessions would hold the graceful shutdown open: end them.
        agents.close_all();
    })
    .await
    .map_err(|e| ServerError::io("serving", e))?;
    for agent in built_in {
        let _ = agent.await;
    }
    let tasks_left_running = match (&config.up, &docker) {
        (Some(_), Some(docker)) => match host::running_tasks(docker, &installation).await {
            Ok(n) => Some(n),
            Err(e) => {
                tracing::warn!(error = %e, "cannot count the tasks left running");
                None
            }
        },
        _ => None,
    };
    tracing::info!("shut down cleanly");
    Ok(Stopped { tasks_left_running })
}

/// A replica's name's unique part.
fn uuid_like() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// Replicas: which agents this replica hears, written for the leader (agents' sessions
/// are spread over the replicas; the leader marks the unheard ones disconnected).
fn spawn_presence(
    config: &ServerConfig,
    state: &Arc<AppState>,
    replica: &str,
    shutdown: &tokio::sync::watch::Receiver<bool>,
) {
    let (ecs, replica) = (state.ecs.clone(), replica.to_owned());
    let timeout = config.agent_timeout.max(Duration::from_secs(1));
    periodic::every(
        "agents' presence published",
        presence_period(timeout),
        shutdown.clone(),
        // Counted as nothing: it is routine, not news for the log.
        move || {
            ecs.publish_presence(&replica, timeout.as_secs_f64())
                .map(|_| 0)
        },
    );
}

/// How often agent presence is checked (and, with replicas, published): a quarter of the
/// timeout, between 1 and 15 seconds.
fn presence_period(timeout: Duration) -> Duration {
    (timeout / 4).clamp(Duration::from_secs(1), Duration::from_secs(15))
}

/// What every replica does for itself: its placement views, its log segments (retention) and
/// its live tails' view of the log journal.
fn spawn_replica_loops(
    state: &Arc<AppState>,
    logs: &Arc<berth_logs::Logs>,
    shutdown: &tokio::sync::watch::Receiver<bool>,
) {
    // Keep the placement views' watch queues short.
    let ecs = state.ecs.clone();
    periodic::every(
        "placement views refreshed",
        Duration::from_secs(300),
        shutdown.clone(),
        move || ecs.refresh_placement_views().map(|()| 0),
    );
    // On a shared store: this replica's live tails see batches put through any replica.
    let follower = logs.clone();
    let stop = shutdown.clone();
    tokio::spawn(async move { follower.follow_journal(stop).await });
    // Secrets Manager: secrets past their recovery window are purged (reads treat them as
    // gone at once). Purging twice is harmless, so every replica may.
    let secrets = state.secrets.clone();
    periodic::every(
        "deleted secrets purged",
        Duration::from_secs(3600),
        shutdown.clone(),
        move || secrets.purge_expired(),
    );
    // EC2 Auto Scaling shows six weeks of scaling activities. Deleting twice is harmless.
    let autoscaling = state.autoscaling.clone();
    periodic::every(
        "Auto Scaling group activities forgotten",
        Duration::from_secs(3600),
        shutdown.clone(),
        move || autoscaling.expire_activities(berth_store::now_epoch()),
    );
    // CloudWatch metrics' retention: each resolution's chunks past its retention are
    // deleted (reads hide them at once). Deleting twice is harmless, so every replica may.
    let cloudwatch = state.cloudwatch.clone();
    periodic::every(
        "expired metric data removed",
        Duration::from_secs(600),
        shutdown.clone(),
        move || cloudwatch.expire(),
    );
    // CloudWatch Logs retention: segments whose events are all past their group's retention
    // are removed (reads hide expired events at once).
    let logs = logs.clone();
    periodic::every(
        "expired log segments removed",
        Duration::from_secs(60),
        shutdown.clone(),
        move || logs.expire_all(),
    );
}

/// Runs the controllers for each term this replica leads, through the term's fenced store;
/// they end with the term.
async fn lead(
    mut role: replica::Role,
    config: ServerConfig,
    state: Arc<AppState>,
    (registry, provisioner): (Registry, Arc<dyn autoscaling::provisioner::Provisioner>),
    store: Arc<dyn berth_store::Store>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    while let Some(term) = replica::next_term(&mut role, &mut shutdown).await {
        let fenced = term.store(&store);
        let (end_tx, end_rx) = tokio::sync::watch::channel(false);
        let fenced_elbv2 = Arc::new(state.elbv2.with_store(fenced.clone()));
        let fenced_ecs = state
            .ecs
            .with_store(fenced.clone())
            .with_target_groups(Arc::new(load_balancing::ElbTargetGroups(
                fenced_elbv2.clone(),
            )));
        let fenced_cloudwatch = Arc::new(berth_cloudwatch::CloudWatch::new(fenced.clone()));
        let fenced_scaling = state
            .app_autoscaling
            .with_store(fenced.clone())
            .with_ecs(Arc::new(app_autoscaling::EcsServices(fenced_ecs.clone())))
            .with_alarms(Arc::new(alarms::CloudWatchAlarms(
                fenced_cloudwatch.clone(),
            )));
        spawn_scheduled_actions(fenced_scaling.clone(), &end_rx);
        spawn_controllers(
            &config,
            &fenced_ecs,
            &registry.with_store(fenced.clone()),
            &berth_iam::Iam::new(fenced.clone()),
            &end_rx,
        );
        // The load balancers listen on the leader's host (docs/elbv2.md).
        tokio::spawn(load_balancing::run(
            load_balancing::Sources {
                elbv2: fenced_elbv2,
                ecs: state.ecs.clone(),
                iam: state.iam.clone(),
                cloudwatch: state.cloudwatch.clone(),
                metrics_period: config.metrics_period,
            },
            end_rx.clone(),
        ));
        alarms::spawn(
            fenced_cloudwatch,
            Arc::new(alarms::ServerAlarmActions {
                scaling: fenced_scaling,
            }),
            &end_rx,
        );
        tokio::spawn(ecs_metrics::publish(
            state.ecs.with_store(fenced.clone()),
            state.cloudwatch.clone(),
            config.metrics_period,
            end_rx.clone(),
        ));
        // Auto Scaling groups' instances, started and stopped on the leader's host (or by
        // the provisioner command).
        tokio::spawn(
            autoscaling::Controller {
                autoscaling: state.autoscaling.with_store(fenced.clone()),
                ecs: state.ecs.with_store(fenced.clone()),
                provisioner: provisioner.clone(),
                // In-process agents reach the bound address (as `berth up`'s); agents
                // elsewhere the advertised one (`--advertise`).
                endpoint: match config.asg_provisioner {
                    autoscaling::provisioner::ProvisionerConfig::InProcess => {
                        format!("http://{}", state.listen)
                    }
                    autoscaling::provisioner::ProvisionerConfig::Command(_) => state.endpoint(None),
                },
            }
            .run(end_rx.clone()),
        );
        // Capacity providers' managed scaling over those groups.
        tokio::spawn(
            autoscaling::managed_scaling::ManagedScaling::new(
                state.autoscaling.with_store(fenced.clone()),
                state.ecs.with_store(fenced.clone()),
                state.cloudwatch.clone(),
                config.metrics_period,
                config.managed_scaling,
            )
            .run(end_rx.clone()),
        );
        if state.logs.is_shared() {
            spawn_log_sealing(&config, &state.logs, fenced, &end_rx);
        }
        if term.token != 0 {
            spawn_compaction(store.clone(), &end_rx);
        }
        replica::term_ended(&mut role, &mut shutdown).await;
        let _ = end_tx.send(true);
    }
}

/// How often the leader looks for due scheduled actions (AWS runs them within the minute
/// they are due; a scan of the scheduled actions' prefix costs little).
const SCHEDULED_ACTIONS_PERIOD: Duration = Duration::from_secs(2);

/// Application Auto Scaling's scheduled actions, run by the leader when due (through its
/// fenced store and a fenced ECS), and its activities' retention.
fn spawn_scheduled_actions(
    scaling: berth_app_autoscaling::AppAutoScaling,
    shutdown: &tokio::sync::watch::Receiver<bool>,
) {
    let expiring = scaling.clone();
    periodic::every(
        "scheduled actions run",
        SCHEDULED_ACTIONS_PERIOD,
        shutdown.clone(),
        move || scaling.run_scheduled_actions(berth_store::now_epoch()),
    );
    // Scaling activities are shown for six weeks, as AWS does.
    periodic::every(
        "scaling activities forgotten",
        Duration::from_secs(3600),
        shutdown.clone(),
        move || expiring.expire_activities(berth_store::now_epoch()),
    );
}

/// On a shared store, the leader seals log journal entries into sealed runs (through its
/// fenced store): a pass every `log_seal_interval` takes entries older than that.
fn spawn_log_sealing(
    config: &ServerConfig,
    logs: &Arc<berth_logs::Logs>,
    fenced: Arc<dyn berth_store::Store>,
    shutdown: &tokio::sync::watch::Receiver<bool>,
) {
    let (logs, every) = (
        logs.clone(),
        config.log_seal_interval.max(Duration::from_millis(10)),
    );
    periodic::every("log journal sealed", every, shutdown.clone(), move || {
        let runs = logs.seal_journal(fenced.as_ref(), every)?;
        // Routine, every few seconds: not news for the log.
        tracing::debug!(runs, "log journal sealed");
        Ok::<_, berth_logs::LogsError>(0)
    });
}

/// Revisions of history a shared store keeps for watches that fall behind (as the embedded
/// store keeps by itself): a watcher further behind re-reads.
const SHARED_STORE_HISTORY: u64 = 10_000;

/// The leader compacts a shared store's history every five minutes, keeping the last
/// [`SHARED_STORE_HISTORY`] revisions (Kubernetes' API server compacts etcd the same way;
/// without it etcd keeps every revision until its space quota alarms).
fn spawn_compaction(
    store: Arc<dyn berth_store::Store>,
    shutdown: &tokio::sync::watch::Receiver<bool>,
) {
    periodic::every(
        "store history compacted",
        Duration::from_secs(300),
        shutdown.clone(),
        move || {
            let current = store.current_revision()?;
            store.compact(current.saturating_sub(SHARED_STORE_HISTORY))?;
            Ok::<_, berth_store::StoreError>(0)
        },
    );
}

/// The controllers that act once for the installation: on the leader, for its term.
fn spawn_controllers(
    config: &ServerConfig,
    ecs: &berth_ecs::Ecs,
    registry: &Registry,
    iam: &berth_iam::Iam,
    shutdown: &tokio::sync::watch::Receiver<bool>,
) {
    // STS sessions are forgotten an hour after they expire (a request signed with one is
    // refused from its expiry on, with ExpiredToken).
    let sessions = iam.clone();
    periodic::every(
        "expired STS sessions forgotten",
        Duration::from_secs(600),
        shutdown.clone(),
        move || sessions.forget_expired_sessions(3600.0),
    );
    if !config.gc_interval.is_zero() {
        let (registry, grace) = (registry.clone(), config.gc_grace);
        periodic::every(
            "garbage collection: blobs deleted",
            config.gc_interval,
            shutdown.clone(),
            move || {
                let report = tokio::runtime::Handle::current().block_on(registry.gc(grace))?;
                tracing::debug!(?report, "garbage collection");
                Ok::<_, berth_registry::RegistryError>(report.blobs_deleted)
            },
        );
    }
    // ECR lifecycle policies: the images they select are expired (their blobs go with the
    // next garbage collection). ECR expires them "within 24 hours" of a policy's creation.
    if !config.lifecycle_interval.is_zero() {
        let registry = registry.clone();
        periodic::every(
            "lifecycle policies: images expired",
            config.lifecycle_interval,
            shutdown.clone(),
            move || registry.apply_lifecycle_policies(),
        );
    }
    // Forget stopped tasks an hour after they stop (ECS keeps them describable for at
    // least an hour).
    let reaper = ecs.clone();
    periodic::every(
        "stopped tasks forgotten",
        Duration::from_secs(300),
        shutdown.clone(),
        move || reaper.reap_stopped_tasks(3600.0),
    );
    // Agents not heard from for the timeout show as disconnected.
    let (presence, timeout) = (
        ecs.clone(),
        config.agent_timeout.max(Duration::from_secs(1)),
    );
    periodic::every(
        "agents disconnected",
        presence_period(timeout),
        shutdown.clone(),
        move || presence.expire_agents(timeout.as_secs_f64()),
    );
    // The service scheduler: keeps services' tasks running and rolls out deployments.
    tokio::spawn(berth_ecs::service_scheduler::run(
        ecs.clone(),
        shutdown.clone(),
    ));
}

/// `berth up`'s built-in capacity: agents in this process, reaching the server on its own
/// listening address with the root credentials.
fn start_built_in_agents(
    config: &ServerConfig,
    up: &UpOptions,
    state: &Arc<AppState>,
    installation: &InstallationId,
    shutdown: &tokio::sync::watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let local = format!("http://{}", state.listen);
    let mut agents = Vec::new();
    if up.fargate {
        agents.push((berth_ecs::fargate::POOL_CLUSTER, "fargate-agent", true));
    }
    if up.with_instance {
        agents.push((berth_ecs::DEFAULT_CLUSTER, "instance-agent", false));
    }
    agents
        .into_iter()
        .map(|(cluster, dir, fargate)| {
            let agent = berth_agent::config::AgentConfig {
                credentials: berth_agent::config::Credentials {
                    access_key_id: state.credentials.access_key_id.clone(),
                    secret_access_key: state.credentials.secret_access_key.clone(),
                    session_token: None,
                },
                region: up.region.clone(),
                installation: Some(installation.clone()),
                efs_root: Some(config.data_dir.join("efs")),
                warm_infra_early: fargate,
                ..berth_agent::config::AgentConfig::defaults(
                    &local,
                    cluster,
                    &config.data_dir.join(dir),
                )
            };
            let stop = shutdown.clone();
            tokio::spawn(async move {
                if let Err(e) = berth_agent::run(agent, stop).await {
                    tracing::error!(error = %e, fargate, "the built-in agent stopped");
                }
            })
        })
        .collect()
}

/// Tests: a whole server in-process on a free port.
#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_server_starts_in_process_answers_and_stops() {
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready) = tokio::sync::oneshot::channel();
        let server = tokio::spawn(run(
            ServerConfig::new(dir.path()),
            listener,
            async move {
                let _ = stopped.await;
            },
            move |s| ready_tx.send(s.clone()).unwrap(),
        ));
        let started = tokio::time::timeout(Duration::from_secs(10), ready)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(started.endpoint, format!("http://127.0.0.1:{port}"));
        assert_eq!(
            std::fs::read_to_string(dir.path().join("installation"))
                .unwrap()
                .trim(),
            started.installation.as_str()
        );
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        stream
            .write_all(b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        stop.send(()).unwrap();
        let stopped = server.await.unwrap().unwrap();
        assert_eq!(stopped.tasks_left_running, None);
    }
}
