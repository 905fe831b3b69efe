//! The `berth` binary: command line, configuration, wiring and graceful shutdown.

mod host;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use berth_api::{AppState, RootCredentials, TokenIssuer};
use berth_model::AccountId;
use berth_registry::Registry;
use berth_store::{RedbStore, Store};
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "berth",
    version,
    about = "AWS ECR + ECS + Fargate in one self-hosted binary"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The whole platform on this machine: control plane, registry, and this machine's
    /// Docker Engine as capacity for Fargate tasks (and, with --with-instance, as a
    /// container instance of the `default` cluster).
    Up(UpArgs),
    /// Control plane and registry only.
    Server(ServerArgs),
    /// Delete unreferenced blobs and stale uploads (the server must not be running on DIR).
    Gc(GcArgs),
    /// A container instance: registers with the control plane and runs the tasks it is
    /// given on Docker Engine, speaking ECS's own agent protocol.
    Agent(AgentArgs),
    /// Stops every task of the installation whose data dir is DIR that runs on this host and
    /// removes its Docker containers, volumes and networks (nothing of another installation
    /// sharing the Docker Engine); --purge also deletes DIR. Stop `berth up` / `berth
    /// server` on DIR first.
    Down(DownArgs),
}

#[derive(Args)]
struct DownArgs {
    /// The installation's data dir (a server's, `berth up`'s or an agent's).
    #[arg(long, default_value = "./.berth")]
    data_dir: PathBuf,
    /// Also delete the data dir: state, images, logs, credentials.
    #[arg(long)]
    purge: bool,
}

#[derive(Args)]
struct UpArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Also register this machine as a container instance of the `default` cluster, for
    /// tasks with the EC2 launch type.
    #[arg(long)]
    with_instance: bool,
    /// Do not offer this machine's Docker Engine as Fargate capacity.
    #[arg(long)]
    no_fargate: bool,
    /// The region the built-in capacity serves (Fargate tasks and the instance are
    /// regional, as in AWS).
    #[arg(long, default_value = "us-east-1")]
    region: String,
}

#[derive(Args)]
struct ServerArgs {
    /// Where state, blobs and credentials live.
    #[arg(long, default_value = "./.berth")]
    data_dir: PathBuf,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:4566")]
    listen: SocketAddr,
    /// Host (or host:port) that clients use to reach this server, for repositoryUri.
    #[arg(long)]
    advertise: Option<String>,
    /// The AWS account id resources belong to.
    #[arg(long, default_value = "000000000000")]
    account_id: String,
    /// How often background garbage collection runs, in seconds (0 disables it).
    #[arg(long, default_value_t = 3600)]
    gc_interval_seconds: u64,
    /// Unreferenced blobs and uploads younger than this are kept.
    #[arg(long, default_value_t = 86400)]
    gc_grace_seconds: u64,
    /// An agent not heard from for this long shows as disconnected (`agentConnected:
    /// false`) and gets no new tasks; its tasks are left as they are.
    #[arg(long, env = "BERTH_AGENT_TIMEOUT_SECONDS", default_value_t = 60)]
    agent_timeout_seconds: u64,
    /// How often the server sends each connected agent an ACS heartbeat.
    #[arg(long, env = "BERTH_AGENT_HEARTBEAT_SECONDS", default_value_t = 20)]
    agent_heartbeat_seconds: u64,
}

#[derive(Args)]
struct GcArgs {
    #[arg(long, default_value = "./.berth")]
    data_dir: PathBuf,
    /// Unreferenced blobs and uploads younger than this are kept.
    #[arg(long, default_value_t = 86400)]
    grace_seconds: u64,
}

#[derive(Args)]
struct AgentArgs {
    /// The control plane, e.g. http://127.0.0.1:4566 (plain HTTP). Credentials come from
    /// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), else the shared
    /// credentials file and AWS_PROFILE; the region from AWS_REGION / AWS_DEFAULT_REGION.
    #[arg(long)]
    endpoint: String,
    /// The cluster to join.
    #[arg(long, required_unless_present = "fargate")]
    cluster: Option<String>,
    /// Join the Fargate capacity pool instead of a cluster: this host runs Fargate tasks
    /// of every cluster and is never shown as the users' container instance.
    #[arg(long, conflicts_with = "cluster")]
    fargate: bool,
    /// Where the agent keeps its identity and its tasks' state (agent-state.json): a
    /// restarted agent with the same data dir is the same container instance.
    #[arg(long, default_value = "./.berth/agent")]
    data_dir: PathBuf,
    /// A custom attribute NAME=VALUE for placement constraints (repeatable).
    #[arg(long = "attribute", value_name = "NAME=VALUE", value_parser = berth_agent::config::parse_attribute)]
    attributes: Vec<(String, String)>,
    /// Reported as the ecs.availability-zone attribute.
    #[arg(long)]
    availability_zone: Option<String>,
    /// Reported as the ecs.instance-type attribute.
    #[arg(long)]
    instance_type: Option<String>,
    /// Memory (MiB) kept back for the host: registered MEMORY is the host's less this.
    #[arg(long, default_value_t = berth_agent::config::DEFAULT_MEMORY_RESERVATION_MIB)]
    memory_reservation_mib: u64,
    /// `docker` (the default), or `simulated`: a SIMULATION for scale tests, in which no
    /// container runs and container life cycles are acted out in memory.
    #[arg(long, default_value = "docker")]
    runtime: berth_agent::config::RuntimeChoice,
    /// When images are pulled: default (always, falling back to a cached copy), always,
    /// once, or prefer-cached.
    #[arg(long, default_value = "default")]
    image_pull_behavior: berth_agent::config::ImagePullBehavior,
    /// Infra containers kept started ahead of awsvpc tasks, so a task's network namespace
    /// comes up by connecting one (0: none). Kept from the start with --fargate, else from
    /// the first awsvpc task on.
    #[arg(long, default_value_t = berth_agent::config::DEFAULT_WARM_INFRA)]
    warm_infra: usize,
    /// How long stopped tasks' containers are kept before they are removed (ECS's
    /// ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION). Containers of a task that never started are
    /// removed at once.
    #[arg(long, default_value_t = berth_agent::config::DEFAULT_CLEANUP_DELAY.as_secs())]
    cleanup_delay_seconds: u64,
    /// Past this many stopped tasks kept on this host, the oldest are cleaned up at once,
    /// before their cleanup delay.
    #[arg(long, default_value_t = berth_agent::config::DEFAULT_MAX_STOPPED_TASKS)]
    max_stopped_tasks: usize,
    /// Where EFS volumes (`efsVolumeConfiguration`) live: a directory per file system id,
    /// shared by every task that mounts it (default: DATA_DIR/efs). Point it at a shared
    /// mount (NFS, …) for tasks on several hosts to see the same files.
    #[arg(long)]
    efs_root: Option<PathBuf>,
    /// The port of the task metadata endpoint (ECS_CONTAINER_METADATA_URI_V4), served on
    /// 127.0.0.1 and the host's address on Docker's bridge; 0 picks a free port on first
    /// start and keeps it in the data dir.
    #[arg(long, default_value_t = 0, conflicts_with = "no_metadata_endpoint")]
    metadata_port: u16,
    /// Serve no task metadata endpoint (containers get no ECS_CONTAINER_METADATA_URI_V4).
    #[arg(long)]
    no_metadata_endpoint: bool,
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Up(args) => runtime.block_on(run_server(
            args.server,
            Some(UpOptions {
                with_instance: args.with_instance,
                fargate: !args.no_fargate,
                region: args.region,
            }),
        )),
        Command::Server(args) => runtime.block_on(run_server(args, None)),
        Command::Gc(args) => runtime.block_on(run_gc(args)),
        Command::Agent(args) => runtime.block_on(run_agent(args)),
        Command::Down(args) => runtime.block_on(run_down(args)),
    }
}

fn open_store(data_dir: &Path) -> Result<Arc<dyn Store>> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating data dir {}", data_dir.display()))?;
    let path = data_dir.join("state.redb");
    let store = RedbStore::open(&path).with_context(|| {
        format!(
            "opening {} (is another berth process using this data dir?)",
            path.display()
        )
    })?;
    Ok(Arc::new(store))
}

/// Write a file readable only by its owner, durably.
fn write_private(path: &Path, contents: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(contents)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

fn random_string(alphabet: &[u8], len: usize) -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| alphabet[rng.gen_range(0..alphabet.len())] as char)
        .collect()
}

/// Root credentials: from the environment, else from DATA_DIR/credentials, else generated
/// and written there in the AWS shared-credentials format (profile `berth`).
fn root_credentials(data_dir: &Path) -> Result<RootCredentials> {
    if let (Ok(id), Ok(secret)) = (
        std::env::var("BERTH_ROOT_ACCESS_KEY_ID"),
        std::env::var("BERTH_ROOT_SECRET_ACCESS_KEY"),
    ) {
        return Ok(RootCredentials {
            access_key_id: id,
            secret_access_key: secret,
        });
    }
    let path = data_dir.join("credentials");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let value = |key: &str| {
            text.lines()
                .filter_map(|l| l.split_once('='))
                .find(|(k, _)| k.trim() == key)
                .map(|(_, v)| v.trim().to_string())
        };
        if let (Some(id), Some(secret)) =
            (value("aws_access_key_id"), value("aws_secret_access_key"))
        {
            return Ok(RootCredentials {
                access_key_id: id,
                secret_access_key: secret,
            });
        }
        bail!("{} exists but has no access key pair", path.display());
    }
    let creds = RootCredentials {
        access_key_id: format!(
            "AKIA{}",
            random_string(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)
        ),
        secret_access_key: random_string(
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
            40,
        ),
    };
    write_private(
        &path,
        format!(
            "[berth]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            creds.access_key_id, creds.secret_access_key
        )
        .as_bytes(),
    )?;
    Ok(creds)
}

/// The key registry tokens are signed with; generated once per data dir.
fn token_key(data_dir: &Path) -> Result<[u8; 32]> {
    let path = data_dir.join("token-key");
    match std::fs::read(&path) {
        Ok(bytes) if bytes.len() == 32 => Ok(bytes.try_into().expect("length checked")),
        Ok(_) => bail!("{} is corrupt (expected 32 bytes)", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key: [u8; 32] = rand::random();
            write_private(&path, &key)?;
            Ok(key)
        }
        Err(e) => Err(e).context("reading token key"),
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}

/// What `berth up` adds to the server.
struct UpOptions {
    with_instance: bool,
    fargate: bool,
    region: String,
}

async fn run_server(args: ServerArgs, up: Option<UpOptions>) -> Result<()> {
    let account: AccountId = args
        .account_id
        .parse()
        .map_err(|e| anyhow::anyhow!("--account-id: {e}"))?;
    let store = open_store(&args.data_dir)?;
    let registry = Registry::open(store.clone(), &args.data_dir).context("opening blob storage")?;
    let ecs =
        berth_core::Ecs::new(store.clone()).with_host_networks(Arc::new(berth_core::ProcNetRoute));
    let installation = ecs.installation().context("the installation's id")?;
    host::record_installation(&args.data_dir, &installation)?;
    let docker = host::docker().await;
    if let Some(docker) = &docker {
        // A subnet whose range another network on this host now uses moves, while idle.
        let own = host::own_interfaces(docker, &installation).await;
        ecs.move_subnets_off_host_routes(&own)
            .context("checking subnets against this host's networks")?;
    }
    let logs = Arc::new(
        berth_logs::Logs::open(store, &args.data_dir.join("logs"))
            .context("opening log storage")?,
    );
    let indexed = ecs
        .migrate_instance_task_index()
        .context("indexing live tasks by instance")?;
    if indexed > 0 {
        tracing::info!(tasks = indexed, "indexed live tasks by container instance");
    }
    let credentials = root_credentials(&args.data_dir)?;
    let ttl = std::env::var("BERTH_TOKEN_TTL_SECONDS")
        .ok()
        .map(|v| v.parse::<i64>())
        .transpose()
        .context("BERTH_TOKEN_TTL_SECONDS")?
        .unwrap_or(12 * 3600);
    let tokens = TokenIssuer::new(token_key(&args.data_dir)?, ttl);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let listen = listener.local_addr()?;
    let state = Arc::new(AppState {
        registry: registry.clone(),
        ecs,
        logs: logs.clone(),
        credentials: credentials.clone(),
        account,
        tokens,
        listen,
        advertise: args.advertise,
        agents: Arc::new(berth_api::acs::AgentHub::new(Duration::from_secs(
            args.agent_heartbeat_seconds.max(1),
        ))),
    });
    // Every background loop ends when this turns true.
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    if args.gc_interval_seconds > 0 {
        let interval = Duration::from_secs(args.gc_interval_seconds);
        let grace = Duration::from_secs(args.gc_grace_seconds);
        let mut stop = shutdown_rx.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = stop.changed() => return,
                }
                match registry.gc(grace).await {
                    Ok(report) => tracing::info!(?report, "garbage collection"),
                    Err(e) => tracing::warn!(error = %e, "garbage collection failed"),
                }
            }
        });
    }
    {
        // ECS housekeeping: keep the placement views' watch queues short, and forget stopped
        // tasks an hour after they stop (ECS keeps them describable for at least an hour).
        let ecs = state.ecs.clone();
        let mut stop = shutdown_rx.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(300)) => {}
                    _ = stop.changed() => return,
                }
                let ecs = ecs.clone();
                let housekeeping = move || {
                    ecs.refresh_placement_views()?;
                    ecs.reap_stopped_tasks(3600.0)
                };
                match tokio::task::spawn_blocking(housekeeping).await {
                    Ok(Ok(n)) if n > 0 => tracing::info!(reaped = n, "stopped tasks forgotten"),
                    Ok(Err(e)) => tracing::warn!(error = %e, "reaping stopped tasks failed"),
                    _ => {}
                }
            }
        });
    }
    {
        // CloudWatch Logs retention: segments whose events are all past their group's
        // retention are removed (reads hide expired events at once).
        let mut stop = shutdown_rx.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(60)) => {}
                    _ = stop.changed() => return,
                }
                let logs = logs.clone();
                match tokio::task::spawn_blocking(move || logs.expire_all()).await {
                    Ok(Ok(n)) if n > 0 => {
                        tracing::info!(segments = n, "expired log segments removed")
                    }
                    Ok(Err(e)) => tracing::warn!(error = %e, "log retention failed"),
                    _ => {}
                }
            }
        });
    }
    // The service scheduler: keeps services' tasks running and rolls out deployments.
    tokio::spawn(berth_core::service_scheduler::run(
        state.ecs.clone(),
        shutdown_rx.clone(),
    ));
    {
        // Agents not heard from for the timeout show as disconnected.
        let ecs = state.ecs.clone();
        let timeout = args.agent_timeout_seconds.max(1);
        let mut stop = shutdown_rx.clone();
        tokio::spawn(async move {
            let period = Duration::from_secs((timeout / 4).clamp(1, 15));
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(period) => {}
                    _ = stop.changed() => return,
                }
                let ecs = ecs.clone();
                match tokio::task::spawn_blocking(move || ecs.expire_agents(timeout as f64)).await {
                    Ok(Ok(n)) if n > 0 => tracing::info!(instances = n, "agents disconnected"),
                    Ok(Err(e)) => tracing::warn!(error = %e, "checking agent presence failed"),
                    _ => {}
                }
            }
        });
    }
    let endpoint = state.endpoint(None);
    println!("berth listening on {endpoint}");
    let mut built_in = Vec::new();
    if let Some(up) = &up {
        // The built-in capacity: agents in this process, reaching the server on its own
        // listening address with the root credentials.
        let local = format!("http://{listen}");
        let mut agents = Vec::new();
        if up.fargate {
            agents.push((berth_core::fargate::POOL_CLUSTER, "fargate-agent", true));
        }
        if up.with_instance {
            agents.push((berth_core::DEFAULT_CLUSTER, "instance-agent", false));
        }
        for (cluster, dir, fargate) in agents {
            let config = berth_agent::config::AgentConfig {
                credentials: berth_agent::config::Credentials {
                    access_key_id: credentials.access_key_id.clone(),
                    secret_access_key: credentials.secret_access_key.clone(),
                    session_token: None,
                },
                region: up.region.clone(),
                installation: Some(installation.clone()),
                efs_root: Some(args.data_dir.join("efs")),
                warm_infra_early: fargate,
                ..berth_agent::config::AgentConfig::defaults(
                    &local,
                    cluster,
                    &args.data_dir.join(dir),
                )
            };
            let stop = shutdown_rx.clone();
            built_in.push(tokio::spawn(async move {
                if let Err(e) = berth_agent::run(config, stop).await {
                    tracing::error!(error = %e, fargate, "the built-in agent stopped");
                }
            }));
        }
    }
    if up.is_some() {
        let creds_note = if std::env::var("BERTH_ROOT_ACCESS_KEY_ID").is_ok() {
            "credentials: from BERTH_ROOT_ACCESS_KEY_ID / BERTH_ROOT_SECRET_ACCESS_KEY".to_string()
        } else {
            format!(
                "credentials: profile 'berth' in {}",
                args.data_dir.join("credentials").display()
            )
        };
        println!("registry: {}", state.registry_host());
        println!("{creds_note}");
        println!("try it:");
        println!(
            "  export AWS_SHARED_CREDENTIALS_FILE={} AWS_PROFILE=berth AWS_DEFAULT_REGION=us-east-1",
            args.data_dir.join("credentials").display()
        );
        println!("  aws --endpoint-url {endpoint} ecr create-repository --repository-name hello");
        println!(
            "  aws --endpoint-url {endpoint} ecr get-login-password | docker login --username AWS --password-stdin {}",
            state.registry_host()
        );
    }
    use std::io::Write;
    std::io::stdout().flush()?;
    let agents = state.agents.clone();
    berth_api::serve(listener, state, async move {
        shutdown_signal().await;
        let _ = shutdown_tx.send(true);
        // Websocket sessions would hold the graceful shutdown open: end them.
        agents.close_all();
    })
    .await?;
    for agent in built_in {
        let _ = agent.await;
    }
    if up.is_some()
        && let Some(docker) = &docker
    {
        // Tasks outlive the control plane (the next `berth up` picks them up again), but
        // not the user's intent: say what is left and how to stop it.
        match host::running_tasks(docker, &installation).await {
            Ok(0) => println!("berth stopped; no tasks are left running"),
            Ok(n) => println!(
                "berth stopped; {n} task{} still running on this host (the next `berth up` takes {} over). To stop {}: berth down --data-dir {}",
                if n == 1 { " is" } else { "s are" },
                if n == 1 { "it" } else { "them" },
                if n == 1 { "it" } else { "them" },
                args.data_dir.display()
            ),
            Err(e) => tracing::warn!(error = %e, "cannot count the tasks left running"),
        }
    }
    tracing::info!("shut down cleanly");
    Ok(())
}

async fn run_down(args: DownArgs) -> Result<()> {
    let report = host::down(&args.data_dir, args.purge).await?;
    println!(
        "stopped {} task{}; removed {} container{}, {} network{}, {} volume{}{}",
        report.tasks_stopped,
        plural(report.tasks_stopped),
        report.containers,
        plural(report.containers),
        report.networks,
        plural(report.networks),
        report.volumes,
        plural(report.volumes),
        if args.purge {
            format!("; deleted {}", args.data_dir.display())
        } else {
            String::new()
        }
    );
    Ok(())
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

async fn run_gc(args: GcArgs) -> Result<()> {
    let store = open_store(&args.data_dir)?;
    let registry = Registry::open(store, &args.data_dir)?;
    let report = registry.gc(Duration::from_secs(args.grace_seconds)).await?;
    println!(
        "deleted {} blobs ({} bytes), {} stale uploads, {} orphan files",
        report.blobs_deleted,
        report.bytes_freed,
        report.uploads_deleted,
        report.orphan_files_deleted
    );
    Ok(())
}

async fn run_agent(args: AgentArgs) -> Result<()> {
    let cluster = match (&args.cluster, args.fargate) {
        (_, true) => berth_core::fargate::POOL_CLUSTER,
        (Some(cluster), false) => cluster.as_str(),
        (None, false) => bail!("--cluster or --fargate is required"),
    };
    let mut config =
        berth_agent::config::AgentConfig::new(&args.endpoint, cluster, &args.data_dir)?;
    config.attributes = args.attributes.into_iter().collect();
    config.availability_zone = args.availability_zone;
    config.instance_type = args.instance_type;
    config.memory_reservation_mib = args.memory_reservation_mib;
    config.runtime = args.runtime;
    config.image_pull_behavior = args.image_pull_behavior;
    config.cleanup_delay = Duration::from_secs(args.cleanup_delay_seconds);
    config.max_stopped_tasks = args.max_stopped_tasks.max(1);
    config.efs_root = args.efs_root;
    config.metadata_port = (!args.no_metadata_endpoint).then_some(args.metadata_port);
    config.warm_infra = args.warm_infra;
    config.warm_infra_early = args.fargate;
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = shutdown_tx.send(true);
    });
    berth_agent::run(config, shutdown_rx)
        .await
        .context("berth agent")
}
