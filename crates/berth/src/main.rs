//! The `berth` binary: the command line over `berth-server` (the whole server), the agent
//! and the admin commands; signals and what is printed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use berth_server::blobs::BlobsConfig;
use berth_server::{ServerConfig, Started, UpOptions};
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
    /// What each CloudWatch Logs metric filter has counted (matched events and the sum of
    /// their metric values), one JSON object per line, read from DIR's store (the server
    /// must not be running on DIR). CloudWatch metrics are not served yet.
    MetricFilterCounts(MetricFilterCountsArgs),
    /// Store administration.
    #[command(subcommand)]
    Store(StoreCommand),
    /// The installation's accounts: another account, with its own root credentials, for
    /// cross-account cases (repository policies, AssumeRole). Asks the running server,
    /// signed with the default account's root credentials (BERTH_ROOT_ACCESS_KEY_ID /
    /// BERTH_ROOT_SECRET_ACCESS_KEY, else DATA_DIR/credentials).
    #[command(subcommand)]
    Accounts(AccountsCommand),
}

#[derive(Subcommand)]
enum AccountsCommand {
    /// Makes account NAME with a new 12-digit id and its own root access key pair; prints
    /// them as one JSON object (AccountId, AccountName, AccessKeyId, SecretAccessKey,
    /// CreatedAt). The secret is shown only here.
    Create(AccountsCreateArgs),
    /// Every account of the installation, the default one first: one JSON object
    /// {"Accounts": [{AccountId, AccountName, AccessKeyId, CreatedAt}]}.
    List(AccountsArgs),
}

#[derive(Args)]
struct AccountsArgs {
    /// The server, e.g. http://127.0.0.1:4566.
    #[arg(long, env = "BERTH_ENDPOINT", default_value = "http://127.0.0.1:4566")]
    endpoint: String,
    /// The server's data dir, where its root credentials are (DATA_DIR/credentials).
    #[arg(long, default_value = "./.berth")]
    data_dir: PathBuf,
    /// No server runs: read and write the installation's store directly (DATA_DIR's
    /// embedded store, or --store etcd://…) instead of calling --endpoint.
    #[arg(long)]
    offline: bool,
    /// With --offline: where state lives, as for `berth server`.
    #[arg(
        long,
        env = "BERTH_STORE",
        default_value = "embedded",
        requires = "offline"
    )]
    store: berth_server::files::StoreLocation,
    #[command(flatten)]
    etcd_tls: EtcdTlsArgs,
    /// With --offline: the installation's default account id (`berth server
    /// --account-id`), which no new account may take.
    #[arg(long, default_value = berth_model::DEFAULT_ACCOUNT_ID, requires = "offline")]
    account_id: String,
}

#[derive(Args)]
struct AccountsCreateArgs {
    /// The account's name: 1 to 50 printable ASCII characters, unique in the installation
    /// (`default` names the default account).
    name: String,
    #[command(flatten)]
    common: AccountsArgs,
}

/// TLS to etcd (its client URLs on https).
#[derive(Args, Clone)]
struct EtcdTlsArgs {
    /// The CA certificates (PEM) etcd members' certificates are checked against; setting it
    /// turns TLS on.
    #[arg(long, env = "BERTH_ETCD_CA")]
    etcd_ca: Option<PathBuf>,
    /// A client certificate (PEM) for members that require one (etcd's
    /// --client-cert-auth).
    #[arg(
        long,
        env = "BERTH_ETCD_CERT",
        requires = "etcd_key",
        requires = "etcd_ca"
    )]
    etcd_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, env = "BERTH_ETCD_KEY", requires = "etcd_cert")]
    etcd_key: Option<PathBuf>,
}

impl EtcdTlsArgs {
    /// `location` with these TLS settings when it is etcd.
    fn apply(
        &self,
        location: berth_server::files::StoreLocation,
    ) -> berth_server::files::StoreLocation {
        match (location, &self.etcd_ca) {
            (berth_server::files::StoreLocation::Etcd(mut config), Some(ca)) => {
                config.tls = Some(berth_store::EtcdTls {
                    ca: ca.clone(),
                    client: self.etcd_cert.clone().zip(self.etcd_key.clone()),
                });
                berth_server::files::StoreLocation::Etcd(config)
            }
            (location, _) => location,
        }
    }
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Copies every key of one store into another, empty one, in key order: how an
    /// installation moves from its embedded store to etcd (stop its servers first).
    /// Revisions are the destination's own.
    Copy(StoreCopyArgs),
}

#[derive(Args)]
struct StoreCopyArgs {
    /// The source: a data dir (its embedded store) or etcd://HOST:PORT[,...][/PREFIX].
    #[arg(long)]
    from: String,
    /// The destination, likewise; it must hold no key yet.
    #[arg(long)]
    to: String,
    /// TLS for whichever side is etcd.
    #[command(flatten)]
    etcd_tls: EtcdTlsArgs,
}

#[derive(Args)]
struct MetricFilterCountsArgs {
    #[arg(long, default_value = "./.berth")]
    data_dir: PathBuf,
    #[arg(long, default_value = berth_model::DEFAULT_REGION)]
    region: String,
    #[arg(long, default_value = berth_model::DEFAULT_ACCOUNT_ID)]
    account: String,
    /// Only this log group's filters.
    #[arg(long)]
    log_group_name: Option<String>,
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
    #[arg(long, default_value = berth_model::DEFAULT_REGION)]
    region: String,
}

#[derive(Args)]
struct ServerArgs {
    /// Where state, blobs and credentials live.
    #[arg(long, default_value = "./.berth")]
    data_dir: PathBuf,
    /// Where state lives: `embedded` (DATA_DIR/state.redb) or
    /// etcd://HOST:PORT[,HOST:PORT...][/PREFIX], shared by any number of servers.
    #[arg(long, env = "BERTH_STORE", default_value = "embedded")]
    store: berth_server::files::StoreLocation,
    #[command(flatten)]
    etcd_tls: EtcdTlsArgs,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:4566")]
    listen: SocketAddr,
    /// Host (or host:port) that clients use to reach this server, for repositoryUri.
    #[arg(long)]
    advertise: Option<String>,
    /// Replicas: the URL the other replicas reach this one at, for the calls they pass to
    /// the leader (default: http:// and the advertised or bound address). Set it when
    /// --advertise names an address in front of all replicas.
    #[arg(long, env = "BERTH_REPLICA_URL")]
    replica_url: Option<String>,
    /// The AWS account id resources belong to.
    #[arg(long, default_value = berth_model::DEFAULT_ACCOUNT_ID)]
    account_id: String,
    /// How often background garbage collection runs, in seconds (0 disables it).
    #[arg(long, default_value_t = 3600)]
    gc_interval_seconds: u64,
    /// Unreferenced blobs and uploads younger than this are kept.
    #[arg(long, default_value_t = 86400)]
    gc_grace_seconds: u64,
    /// How often ECR lifecycle policies run and expire images, in seconds (0 disables them).
    #[arg(
        long,
        env = "BERTH_LIFECYCLE_INTERVAL_SECONDS",
        default_value_t = 86400
    )]
    lifecycle_interval_seconds: u64,
    /// With `--store etcd://…`: how often the leader seals CloudWatch Logs journal entries
    /// older than this into sealed runs, in milliseconds.
    #[arg(long, env = "BERTH_LOG_SEAL_INTERVAL_MS", default_value_t = 5000)]
    log_seal_interval_ms: u64,
    /// An executable that starts and stops Auto Scaling groups' instances, called as
    /// `PATH launch INSTANCE_ID CLUSTER ENDPOINT` and `PATH terminate INSTANCE_ID`
    /// (docs/autoscaling-groups.md); default: agents in the server process.
    #[arg(long, env = "BERTH_ASG_PROVISIONER_COMMAND")]
    asg_provisioner_command: Option<std::path::PathBuf>,
    #[command(flatten)]
    blobs: BlobsArgs,
    /// An agent not heard from for this long shows as disconnected (`agentConnected:
    /// false`) and gets no new tasks; its tasks are left as they are.
    #[arg(long, env = "BERTH_AGENT_TIMEOUT_SECONDS", default_value_t = 60)]
    agent_timeout_seconds: u64,
    /// How often the server sends each connected agent an ACS heartbeat.
    #[arg(long, env = "BERTH_AGENT_HEARTBEAT_SECONDS", default_value_t = 20)]
    agent_heartbeat_seconds: u64,
    /// How long the temporary credentials of tasks' roles (task role, execution role)
    /// last; they are renewed at half-life (ECS's role sessions last hours; shorter ones
    /// exercise the renewal).
    #[arg(long, env = "BERTH_TASK_CREDENTIALS_SECONDS", default_value_t = 3600)]
    task_credentials_seconds: u64,
}

#[derive(Args)]
struct GcArgs {
    #[arg(long, default_value = "./.berth")]
    data_dir: PathBuf,
    /// Where state lives, as for `berth server`: `embedded` or etcd://… (replicas).
    #[arg(long, env = "BERTH_STORE", default_value = "embedded")]
    store: berth_server::files::StoreLocation,
    #[command(flatten)]
    etcd_tls: EtcdTlsArgs,
    /// Unreferenced blobs and uploads younger than this are kept.
    #[arg(long, default_value_t = 86400)]
    grace_seconds: u64,
    #[command(flatten)]
    blobs: BlobsArgs,
}

/// Where registry blobs live (the same flags for `up`, `server` and `gc`).
#[derive(Args)]
struct BlobsArgs {
    /// Keep registry blobs in S3-compatible storage, as objects PREFIX/blobs/sha256/HEX of
    /// BUCKET (default: DATA_DIR/blobs). Credentials: BERTH_S3_ACCESS_KEY_ID /
    /// BERTH_S3_SECRET_ACCESS_KEY, else AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, else the
    /// shared credentials file and AWS_PROFILE.
    #[arg(long, value_name = "s3://BUCKET[/PREFIX]")]
    blobs: Option<String>,
    /// The S3-compatible endpoint, http(s)://HOST[:PORT] (default: AWS's
    /// https://s3.REGION.amazonaws.com). Path-style requests when HOST is an IP address,
    /// virtual-hosted ones otherwise; https trusts AWS_CA_BUNDLE when set, else the
    /// system's CA certificates.
    #[arg(long, value_name = "URL", requires = "blobs")]
    s3_endpoint: Option<String>,
    /// The bucket's region (default: AWS_REGION / AWS_DEFAULT_REGION, else us-east-1).
    #[arg(long, value_name = "REGION", requires = "blobs")]
    s3_region: Option<String>,
}

impl BlobsArgs {
    fn config(&self) -> Result<BlobsConfig> {
        Ok(BlobsConfig::from_flags(
            self.blobs.as_deref(),
            self.s3_endpoint.as_deref(),
            self.s3_region.as_deref(),
        )?)
    }
}

#[derive(Args)]
struct AgentArgs {
    /// The control plane, e.g. http://127.0.0.1:4566 (plain HTTP); several URLs separated by
    /// commas name replicas of one control plane, tried in turn. Credentials come from
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
    /// The EC2 instance id to register as (the container instance's `ec2InstanceId`): an
    /// Auto Scaling group's instance started by `--asg-provisioner-command`.
    #[arg(long)]
    ec2_instance_id: Option<String>,
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
    /// Leave 169.254.170.2 alone: no NAT rules (containers are then told the agent's own
    /// addresses for metadata, and only host-mode containers get role credentials).
    #[arg(long)]
    no_link_local: bool,
}

/// glibc's malloc tunables for a long-running server: at most two arenas (by default every
/// thread of the async and blocking pools may get its own, each keeping the memory freed in
/// it). Nothing else: setting a trim or mmap threshold switches off glibc's adaptive mmap
/// threshold, and with a fixed 64 KiB one the registry's 1 MiB blob chunks were mapped and
/// faulted in afresh each time (blob push and pull 0.46–0.79×). Measured in BENCHMARKS.md
/// ("Service throttle: the storm", "After issue 15").
const GLIBC_TUNABLES: &str = "glibc.malloc.arena_max=2";

/// glibc reads its tunables only when a process starts, so berth applies them by executing
/// itself once more with them set (same process id, same arguments), unless the user set
/// GLIBC_TUNABLES themselves. If that fails, it carries on with glibc's defaults.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn apply_allocator_tunables() {
    use std::os::unix::process::CommandExt;
    if std::env::var_os("GLIBC_TUNABLES").is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| exe.clone().into_os_string());
    // exec only returns on failure.
    let _failed = std::process::Command::new(&exe)
        .arg0(arg0)
        .args(args)
        .env("GLIBC_TUNABLES", GLIBC_TUNABLES)
        .exec();
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn apply_allocator_tunables() {}

fn main() -> Result<()> {
    apply_allocator_tunables();
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
        Command::MetricFilterCounts(args) => run_metric_filter_counts(args),
        Command::Store(StoreCommand::Copy(args)) => run_store_copy(args),
        Command::Accounts(command) => runtime.block_on(run_accounts(command)),
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

async fn run_server(args: ServerArgs, up: Option<UpOptions>) -> Result<()> {
    let token_ttl = std::env::var("BERTH_TOKEN_TTL_SECONDS")
        .ok()
        .map(|v| v.parse::<u64>())
        .transpose()
        .context("BERTH_TOKEN_TTL_SECONDS")?
        .map_or(Duration::from_secs(12 * 3600), Duration::from_secs);
    let config = ServerConfig {
        advertise: args.advertise,
        replica_url: args.replica_url,
        account_id: args.account_id,
        gc_interval: Duration::from_secs(args.gc_interval_seconds),
        gc_grace: Duration::from_secs(args.gc_grace_seconds),
        lifecycle_interval: Duration::from_secs(args.lifecycle_interval_seconds),
        log_seal_interval: Duration::from_millis(args.log_seal_interval_ms),
        agent_timeout: Duration::from_secs(args.agent_timeout_seconds),
        agent_heartbeat: Duration::from_secs(args.agent_heartbeat_seconds),
        task_credentials: Duration::from_secs(args.task_credentials_seconds),
        token_ttl,
        up,
        store: args.etcd_tls.apply(args.store),
        blobs: args.blobs.config()?,
        asg_provisioner: match args.asg_provisioner_command {
            Some(path) => berth_server::autoscaling::provisioner::ProvisionerConfig::Command(path),
            None => Default::default(),
        },
        ..ServerConfig::new(&args.data_dir)
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let data_dir = args.data_dir.clone();
    let is_up = config.up.is_some();
    let stopped = berth_server::run(config, listener, shutdown_signal(), |started| {
        print_started(started, &data_dir, is_up)
    })
    .await?;
    if let Some(n) = stopped.tasks_left_running {
        // Tasks outlive the control plane (the next `berth up` picks them up again), but not
        // the user's intent: say what is left and how to stop it.
        if n == 0 {
            println!("berth stopped; no tasks are left running");
        } else {
            let (are, them) = if n == 1 {
                ("task is", "it")
            } else {
                ("tasks are", "them")
            };
            println!(
                "berth stopped; {n} {are} still running on this host (the next `berth up` takes {them} over). To stop {them}: berth down --data-dir {}",
                data_dir.display()
            );
        }
    }
    Ok(())
}

/// The readiness line tests and scripts wait for, and for `berth up` how to use it.
fn print_started(started: &Started, data_dir: &Path, up: bool) {
    use std::io::Write;
    let endpoint = &started.endpoint;
    println!("berth listening on {endpoint}");
    if up {
        let credentials = data_dir.join("credentials");
        if std::env::var("BERTH_ROOT_ACCESS_KEY_ID").is_ok() {
            println!("credentials: from BERTH_ROOT_ACCESS_KEY_ID / BERTH_ROOT_SECRET_ACCESS_KEY");
        } else {
            println!("credentials: profile 'berth' in {}", credentials.display());
        }
        println!("registry: {}", started.registry_host);
        println!("try it:");
        println!(
            "  export AWS_SHARED_CREDENTIALS_FILE={} AWS_PROFILE=berth AWS_DEFAULT_REGION=us-east-1",
            credentials.display()
        );
        println!("  aws --endpoint-url {endpoint} ecr create-repository --repository-name hello");
        println!(
            "  aws --endpoint-url {endpoint} ecr get-login-password | docker login --username AWS --password-stdin {}",
            started.registry_host
        );
    }
    let _ = std::io::stdout().flush();
}

async fn run_gc(args: GcArgs) -> Result<()> {
    let store =
        berth_server::files::open_store_at(&args.etcd_tls.apply(args.store), &args.data_dir)?.store;
    let blobs = args.blobs.config()?;
    // The embedded store: no upload is staged in a bucket.
    let registry = berth_server::blobs::open_registry(&blobs, store, &args.data_dir, false).await?;
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

/// A store named on the command line: etcd by URL, else a data dir's embedded store.
fn open_named_store(
    name: &str,
    tls: &EtcdTlsArgs,
) -> Result<std::sync::Arc<dyn berth_store::Store>> {
    let (location, dir) = if name.starts_with("etcd://") {
        (
            tls.apply(
                name.parse::<berth_server::files::StoreLocation>()
                    .map_err(anyhow::Error::msg)?,
            ),
            PathBuf::new(),
        )
    } else {
        (
            berth_server::files::StoreLocation::Embedded,
            PathBuf::from(name),
        )
    };
    Ok(berth_server::files::open_store_at(&location, &dir)?.store)
}

fn run_store_copy(args: StoreCopyArgs) -> Result<()> {
    let from = open_named_store(&args.from, &args.etcd_tls)
        .with_context(|| format!("opening {}", args.from))?;
    let to = open_named_store(&args.to, &args.etcd_tls)
        .with_context(|| format!("opening {}", args.to))?;
    let copied = berth_store::copy_all(from.as_ref(), to.as_ref())
        .with_context(|| format!("copying {} to {}", args.from, args.to))?;
    println!("copied {copied} keys from {} to {}", args.from, args.to);
    Ok(())
}

fn run_metric_filter_counts(args: MetricFilterCountsArgs) -> Result<()> {
    let store = berth_server::files::open_store(&args.data_dir)?;
    let logs = berth_logs::Logs::open(store, &args.data_dir.join("logs"))?;
    let scope = berth_logs::LogScope {
        account: args.account,
        region: args.region,
    };
    for (filter, counts) in logs.metric_filter_counts(&scope, args.log_group_name.as_deref())? {
        let metric = filter.metric_transformations.first();
        println!(
            "{}",
            serde_json::json!({
                "logGroupName": filter.log_group_name,
                "filterName": filter.filter_name,
                "metricNamespace": metric.map(|m| m.metric_namespace.as_str()),
                "metricName": metric.map(|m| m.metric_name.as_str()),
                "matchedEvents": counts.matched_events,
                "metricValueSum": counts.metric_value_sum,
                "lastMatchTime": counts.last_match_time,
            })
        );
    }
    Ok(())
}

async fn run_agent(args: AgentArgs) -> Result<()> {
    let cluster = match (&args.cluster, args.fargate) {
        (_, true) => berth_ecs::fargate::POOL_CLUSTER,
        (Some(cluster), false) => cluster.as_str(),
        (None, false) => bail!("--cluster or --fargate is required"),
    };
    let mut config =
        berth_agent::config::AgentConfig::new(&args.endpoint, cluster, &args.data_dir)?;
    config.attributes = args.attributes.into_iter().collect();
    config.availability_zone = args.availability_zone;
    config.instance_type = args.instance_type;
    config.ec2_instance_id = args.ec2_instance_id;
    config.memory_reservation_mib = args.memory_reservation_mib;
    config.runtime = args.runtime;
    config.image_pull_behavior = args.image_pull_behavior;
    config.cleanup_delay = Duration::from_secs(args.cleanup_delay_seconds);
    config.max_stopped_tasks = args.max_stopped_tasks.max(1);
    config.efs_root = args.efs_root;
    config.metadata_port = (!args.no_metadata_endpoint).then_some(args.metadata_port);
    config.link_local = !args.no_link_local;
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

/// `berth accounts …`: Berth's accounts API (`BerthAccounts_20261206.*`, service `berth`)
/// called as the default account's root; prints the answer.
async fn run_accounts(command: AccountsCommand) -> Result<()> {
    let (args, operation, body) = match &command {
        AccountsCommand::Create(a) => (
            &a.common,
            "CreateAccount",
            serde_json::json!({ "AccountName": a.name }),
        ),
        AccountsCommand::List(a) => (a, "ListAccounts", serde_json::json!({})),
    };
    if args.offline {
        return run_accounts_offline(args, &command);
    }
    let root = match berth_server::files::root_credentials_from_env() {
        Some(creds) => creds,
        None => berth_server::files::read_credentials_file(&args.data_dir)?.with_context(|| {
            format!(
                "no root credentials: set BERTH_ROOT_ACCESS_KEY_ID / BERTH_ROOT_SECRET_ACCESS_KEY or point --data-dir at the server's data dir ({} has no credentials file)",
                args.data_dir.display()
            )
        })?,
    };
    let client = berth_agent::client::AwsClient::new(
        &args.endpoint,
        berth_agent::config::Credentials {
            access_key_id: root.access_key_id,
            secret_access_key: root.secret_access_key,
            session_token: None,
        },
        berth_model::DEFAULT_REGION,
    )?;
    let answer = client
        .json_call(
            "berth",
            &format!("BerthAccounts_20261206.{operation}"),
            &body,
        )
        .await
        .with_context(|| format!("{operation} on {}", args.endpoint))?;
    println!("{}", serde_json::to_string_pretty(&answer)?);
    Ok(())
}

/// `berth accounts … --offline`: the same answers as the server's, from the store itself.
fn run_accounts_offline(args: &AccountsArgs, command: &AccountsCommand) -> Result<()> {
    let store = berth_server::files::open_store_at(
        &args.etcd_tls.apply(args.store.clone()),
        &args.data_dir,
    )?
    .store;
    let iam = berth_iam::Iam::new(store);
    let answer = match command {
        AccountsCommand::Create(a) => {
            serde_json::to_value(iam.create_account(&a.name, &args.account_id)?)?
        }
        AccountsCommand::List(_) => {
            let root = berth_server::files::root_credentials_from_env()
                .map(Ok)
                .or_else(|| berth_server::files::read_credentials_file(&args.data_dir).transpose())
                .transpose()?;
            let mut accounts = vec![serde_json::json!({
                "AccountId": args.account_id,
                "AccountName": berth_iam::DEFAULT_ACCOUNT_NAME,
                "AccessKeyId": root.map(|r| r.access_key_id),
            })];
            accounts.extend(iam.list_accounts()?.into_iter().map(|a| {
                serde_json::json!({
                    "AccountId": a.account_id,
                    "AccountName": a.account_name,
                    "AccessKeyId": a.access_key_id,
                    "CreatedAt": a.created_at,
                })
            }));
            serde_json::json!({ "Accounts": accounts })
        }
    };
    println!("{}", serde_json::to_string_pretty(&answer)?);
    Ok(())
}

async fn run_down(args: DownArgs) -> Result<()> {
    let report = berth_server::host::down(&args.data_dir, args.purge).await?;
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
