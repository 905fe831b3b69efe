//! Translates a task as ACS describes it into what the runtime creates: one `ContainerSpec`
//! per container (image, command, environment, resources, ports, mounts, links, and the
//! Docker settings ACS carries as Docker Engine API documents in `dockerConfig`), the task's
//! volumes, and the labels that let a restarted agent find its containers again. Pure.
//!
//! Task-level `cpu` and `memory` ([`task_shares`]): ECS on Linux puts a task's containers
//! in one task cgroup carrying the task's CFS quota and memory limit, so its containers
//! share them. Berth manages no cgroups of its own, so it divides the task's limits among
//! the containers instead and sets each share as that container's own Docker limits: the
//! shares add up to no more than the task's, so the task cannot exceed them either. The
//! price is that a container cannot borrow what a sibling leaves unused (ECS's cgroup lets
//! it), and a container that exits early leaves its share idle.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use berth_agent_protocol::acs::{Container, Task};
use berth_model::ecs::DesiredStatus;
use berth_model::{InstallationId, LABEL_INSTALLATION};
use berth_runtime::{
    ContainerSpec, CpuQuota, HealthCheck, LogConfig, MountSpec, NetworkMode, PortMapping, Protocol,
    Ulimit, VolumeSpec,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// ECS's labels, on every container the agent creates (the official agent's names).
pub const LABEL_TASK_ARN: &str = "com.amazonaws.ecs.task-arn";
pub const LABEL_CONTAINER_NAME: &str = "com.amazonaws.ecs.container-name";
pub const LABEL_CLUSTER: &str = "com.amazonaws.ecs.cluster";
pub const LABEL_FAMILY: &str = "com.amazonaws.ecs.task-definition-family";
pub const LABEL_VERSION: &str = "com.amazonaws.ecs.task-definition-version";
/// Berth's own label: the container instance a container belongs to, so that several agents
/// sharing one Docker Engine (tests, scale runs) each see only their own containers.
pub const LABEL_INSTANCE: &str = "berth.container-instance-arn";

/// Docker refuses CPU shares under 2; ECS's agent raises smaller values (0 included) to it.
const MIN_CPU_SHARES: u64 = 2;
const NANOS_PER_SECOND: i64 = 1_000_000_000;
const BYTES_PER_MIB: i64 = 1024 * 1024;
/// ECS counts CPU in units of 1/1024 vCPU.
const CPU_UNITS_PER_VCPU: f64 = 1024.0;
/// The CFS period of task-level CPU limits: the kernel's default, as ECS sets it.
const CFS_PERIOD_US: u64 = 100_000;
/// Docker refuses a CFS quota under 1 ms.
const MIN_CFS_QUOTA_US: u64 = 1_000;
/// Docker refuses a memory limit under 6 MiB.
const MIN_MEMORY_MIB: u64 = 6;
/// The task metadata endpoint (v4) each container is told about.
pub const METADATA_URI_V4: &str = "ECS_CONTAINER_METADATA_URI_V4";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SpecError(pub String);

/// Where a task volume comes from on this host, decided once per task and remembered, so
/// that containers created after an agent restart mount the same thing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum ResolvedVolume {
    /// A host path bind-mounted as is.
    Bind { path: String },
    /// An EFS volume: the file system's directory under the agent's EFS root (created if
    /// missing), bind-mounted; every task mounting the same file system sees the same files.
    Efs { path: String },
    /// A Docker volume, created if missing. `taskScoped` volumes are the task's own (a
    /// unique name, removed with the task); shared ones keep their name across tasks.
    Docker {
        name: String,
        driver: Option<String>,
        #[serde(default)]
        driver_opts: BTreeMap<String, String>,
        #[serde(default)]
        labels: BTreeMap<String, String>,
        task_scoped: bool,
        /// For shared volumes: create it when missing (else it must exist).
        autoprovision: bool,
    },
}

impl ResolvedVolume {
    /// The volume to create before the containers, if any.
    pub fn volume_spec(&self) -> Option<VolumeSpec> {
        match self {
            ResolvedVolume::Bind { .. } | ResolvedVolume::Efs { .. } => None,
            ResolvedVolume::Docker {
                name,
                driver,
                driver_opts,
                labels,
                ..
            } => Some(VolumeSpec {
                name: name.clone(),
                driver: driver.clone(),
                driver_opts: driver_opts.clone(),
                labels: labels.clone(),
            }),
        }
    }
}

/// An awsvpc task's interface, from the task's `elasticNetworkInterfaces`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskEni {
    pub attachment_arn: String,
    pub eni_id: String,
    pub mac_address: String,
    pub ipv4_address: String,
    pub subnet_id: String,
    /// `10.192.3.0/24`.
    pub subnet_cidr: String,
    /// `10.192.3.1`.
    pub gateway: String,
}

/// How a task is networked: a Docker network mode, or awsvpc (its own namespace, held by
/// an infra container, with its own address on its subnet's network).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskNetwork {
    Mode(NetworkMode),
    Awsvpc(TaskEni),
}

/// The task's networking: `bridge` (the default), `host`, `none`, or `awsvpc` with the
/// interface the control plane gave it.
/// The task's desired status as the payload gives it (`None`: absent or not ECS's).
pub fn desired_status(task: &Task) -> Option<DesiredStatus> {
    task.desired_status.as_deref()?.parse().ok()
}

/// Whether the payload asks for the task to be stopped.
pub fn desired_stopped(task: &Task) -> bool {
    desired_status(task) == Some(DesiredStatus::Stopped)
}

/// A payload's desired status member, as ACS carries it (a string).
pub fn desired_member(status: DesiredStatus) -> Option<String> {
    Some(status.as_str().to_owned())
}

pub fn task_network(task: &Task) -> Result<TaskNetwork, SpecError> {
    if task.network_mode.as_deref() != Some("awsvpc") {
        return network_mode(task).map(TaskNetwork::Mode);
    }
    let missing = |what: &str| {
        SpecError(format!(
            "awsvpc task without {what} for its network interface"
        ))
    };
    let eni = task
        .elastic_network_interfaces
        .iter()
        .flatten()
        .next()
        .ok_or_else(|| missing("an elasticNetworkInterfaces entry"))?;
    let ipv4_address = eni
        .ipv4_addresses
        .iter()
        .flatten()
        .find(|a| a.primary.unwrap_or(true))
        .and_then(|a| a.private_address.clone())
        .ok_or_else(|| missing("a primary IPv4 address"))?;
    let gateway_cidr = eni
        .subnet_gateway_ipv4_address
        .clone()
        .ok_or_else(|| missing("subnetGatewayIpv4Address"))?;
    let (gateway, prefix) = gateway_cidr.split_once('/').ok_or_else(|| {
        SpecError(format!(
            "subnetGatewayIpv4Address {gateway_cidr:?} has no prefix length"
        ))
    })?;
    let subnet_cidr = network_of(gateway, prefix).ok_or_else(|| {
        SpecError(format!(
            "subnetGatewayIpv4Address {gateway_cidr:?} is not an IPv4 address with a prefix length"
        ))
    })?;
    Ok(TaskNetwork::Awsvpc(TaskEni {
        attachment_arn: eni
            .attachment_arn
            .clone()
            .ok_or_else(|| missing("an attachmentArn"))?,
        eni_id: eni.ec2_id.clone().unwrap_or_default(),
        mac_address: eni.mac_address.clone().unwrap_or_default(),
        ipv4_address,
        subnet_id: eni.subnet_id.clone().ok_or_else(|| missing("a subnetId"))?,
        subnet_cidr,
        gateway: gateway.to_owned(),
    }))
}

/// `10.192.3.1`, `24` → `10.192.3.0/24`.
fn network_of(address: &str, prefix: &str) -> Option<String> {
    let address: std::net::Ipv4Addr = address.parse().ok()?;
    let prefix: u32 = prefix.parse().ok().filter(|p| *p <= 32)?;
    let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    Some(format!(
        "{}/{prefix}",
        std::net::Ipv4Addr::from(u32::from(address) & mask)
    ))
}

/// The task's Docker network mode: `bridge` (the default), `host` or `none`; awsvpc tasks
/// are networked by [`task_network`] instead.
pub fn network_mode(task: &Task) -> Result<NetworkMode, SpecError> {
    // Older payloads carry the mode only in each container's hostConfig.
    let from_host_config = || {
        task.containers.iter().flatten().find_map(|c| {
            docker_document(c, false).ok().and_then(|doc| {
                doc.get("NetworkMode")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
        })
    };
    let mode = task
        .network_mode
        .clone()
        .or_else(from_host_config)
        .unwrap_or_else(|| "bridge".to_owned());
    match mode.as_str() {
        "bridge" | "default" | "" => Ok(NetworkMode::Bridge),
        "host" => Ok(NetworkMode::Host),
        "none" => Ok(NetworkMode::None),
        other => Err(SpecError(format!(
            "network mode {other:?} is not supported on this container instance (bridge, host, none and awsvpc are)"
        ))),
    }
}

/// The Docker name of a task's container, as the official agent names them:
/// `ecs-<family>-<version>-<container>-<unique suffix>` (the engine's suffixes start with the
/// installation id).
pub fn docker_name(task: &Task, container: &str, suffix: &str) -> String {
    let raw = format!(
        "ecs-{}-{}-{}-{suffix}",
        task.family.as_deref().unwrap_or("task"),
        task.version.as_deref().unwrap_or("0"),
        container
    );
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Decides where each of the task's volumes comes from. `suffix` makes task-scoped names
/// unique.
pub fn resolve_volumes(
    task: &Task,
    suffix: &str,
    efs_root: Option<&Path>,
) -> Result<BTreeMap<String, ResolvedVolume>, SpecError> {
    let mut out = BTreeMap::new();
    for volume in task.volumes.iter().flatten() {
        let Some(name) = volume.name.clone() else {
            continue;
        };
        let kind = volume.kind.as_deref().unwrap_or("host");
        let resolved = match kind {
            "host" => match volume.host.as_ref().and_then(|h| h.source_path.clone()) {
                Some(path) if !path.is_empty() => ResolvedVolume::Bind { path },
                // No source path: a scratch directory for the task's containers to share,
                // which a task-scoped Docker volume is.
                _ => ResolvedVolume::Docker {
                    name: task_volume_name(task, &name, suffix),
                    driver: None,
                    driver_opts: BTreeMap::new(),
                    labels: BTreeMap::new(),
                    task_scoped: true,
                    autoprovision: true,
                },
            },
            "docker" => {
                let config = volume
                    .docker_volume_configuration
                    .clone()
                    .unwrap_or_default();
                let task_scoped = config.scope.as_deref().unwrap_or("task") == "task";
                ResolvedVolume::Docker {
                    name: if task_scoped {
                        task_volume_name(task, &name, suffix)
                    } else {
                        name.clone()
                    },
                    driver: config.driver.filter(|d| !d.is_empty()),
                    driver_opts: config.driver_opts.unwrap_or_default(),
                    labels: config.labels.unwrap_or_default(),
                    task_scoped,
                    autoprovision: task_scoped || config.autoprovision.unwrap_or(false),
                }
            }
            "efs" => {
                let Some(root) = efs_root else {
                    return Err(SpecError(format!(
                        "volume {name:?}: EFS volumes are not available on this container instance"
                    )));
                };
                let config = volume.efs_volume_configuration.clone().unwrap_or_default();
                ResolvedVolume::Efs {
                    path: efs_directory(root, &name, &config)?
                        .to_string_lossy()
                        .into_owned(),
                }
            }
            other => {
                return Err(SpecError(format!(
                    "volume {name:?} of type {other:?} is not supported on this container instance \
                     (host, docker and efs volumes are)"
                )));
            }
        };
        out.insert(name, resolved);
    }
    Ok(out)
}

/// Where an EFS volume's files are: `ROOT/{fileSystemId}{rootDirectory}`, or with an access
/// point (whose root ECS wants as the volume's root) `ROOT/{fileSystemId}/.access-points/{id}`.
/// Berth has no EFS API, so a file system is a directory and an access point a directory in
/// it. Ids and paths are checked so that a volume never reaches outside its file system.
fn efs_directory(
    root: &Path,
    volume: &str,
    config: &berth_agent_protocol::acs::EFSVolumeConfiguration,
) -> Result<PathBuf, SpecError> {
    let bad = |what: String| SpecError(format!("volume {volume:?}: {what}"));
    let id_ok = |id: &str, prefix: &str| {
        id.strip_prefix(prefix).is_some_and(|hex| {
            !hex.is_empty() && hex.len() <= 40 && hex.bytes().all(|b| b.is_ascii_alphanumeric())
        })
    };
    let fs = config.file_system_id.as_deref().unwrap_or_default();
    if !id_ok(fs, "fs-") {
        return Err(bad(format!("invalid EFS fileSystemId {fs:?}")));
    }
    let mut path = root.join(fs);
    let access_point = config
        .authorization_config
        .as_ref()
        .and_then(|a| a.access_point_id.as_deref());
    if let Some(ap) = access_point {
        if !id_ok(ap, "fsap-") {
            return Err(bad(format!("invalid EFS accessPointId {ap:?}")));
        }
        path.push(".access-points");
        path.push(ap);
    }
    let dir = config.root_directory.as_deref().unwrap_or("/");
    if access_point.is_some() && !matches!(dir, "" | "/") {
        return Err(bad(
            "the root directory must be omitted or set to / when an access point is used".into(),
        ));
    }
    for part in Path::new(dir).components() {
        match part {
            std::path::Component::RootDir | std::path::Component::CurDir => {}
            std::path::Component::Normal(p) => path.push(p),
            _ => return Err(bad(format!("invalid EFS rootDirectory {dir:?}"))),
        }
    }
    Ok(path)
}

fn task_volume_name(task: &Task, volume: &str, suffix: &str) -> String {
    docker_name(task, volume, suffix)
}

/// Everything a container's spec depends on beyond the container itself.
pub struct TaskLayout<'a> {
    pub task: &'a Task,
    pub cluster: &'a str,
    pub instance_arn: &'a str,
    pub installation: &'a InstallationId,
    pub network_mode: &'a NetworkMode,
    /// Docker name of each of the task's containers, by container name.
    pub docker_names: &'a BTreeMap<String, String>,
    pub volumes: &'a BTreeMap<String, ResolvedVolume>,
    /// Each container's task metadata endpoint URI (`ECS_CONTAINER_METADATA_URI_V4`), by
    /// container name; containers without one get no variable.
    pub metadata_uris: &'a BTreeMap<String, String>,
}

/// The spec of one of the task's containers.
pub fn container_spec(
    layout: &TaskLayout<'_>,
    container: &Container,
) -> Result<ContainerSpec, SpecError> {
    let name = container
        .name
        .clone()
        .ok_or_else(|| SpecError("a container has no name".to_owned()))?;
    let image = container
        .image
        .clone()
        .filter(|i| !i.is_empty())
        .ok_or_else(|| SpecError(format!("container {name:?} has no image")))?;
    let config = docker_document(container, true)?;
    let host_config = docker_document(container, false)?;

    let mut spec = ContainerSpec {
        name: layout.docker_names.get(&name).cloned(),
        image,
        command: container.command.clone().unwrap_or_default(),
        entrypoint: container.entry_point.clone().unwrap_or_default(),
        env: container
            .environment
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        network_mode: layout.network_mode.clone(),
        cpu_shares: Some(
            container
                .cpu
                .map_or(MIN_CPU_SHARES, |cpu| u64::try_from(cpu).unwrap_or(0))
                .max(MIN_CPU_SHARES),
        ),
        memory_mib: container.memory.filter(|m| *m > 0).map(|m| m as u64),
        privileged: container.privileged.unwrap_or(false),
        ..ContainerSpec::default()
    };

    // Ports are published only where the network mode allows it; in host mode the
    // container's ports are the host's.
    if layout.network_mode.publishes_ports() {
        for mapping in container.port_mappings.iter().flatten() {
            let Some(container_port) = mapping.container_port.and_then(|p| u16::try_from(p).ok())
            else {
                if mapping.container_port_range.is_some() {
                    return Err(SpecError(format!(
                        "container {name:?}: port ranges are not supported on this container instance"
                    )));
                }
                continue;
            };
            spec.port_mappings.push(PortMapping {
                container_port,
                host_port: mapping
                    .host_port
                    .and_then(|p| u16::try_from(p).ok())
                    .filter(|p| *p != 0),
                protocol: parse_protocol(mapping.protocol.as_deref()),
                host_ip: None,
            });
        }
    }

    for mount in container.mount_points.iter().flatten() {
        let source = mount.source_volume.clone().unwrap_or_default();
        let container_path = mount.container_path.clone().ok_or_else(|| {
            SpecError(format!(
                "container {name:?}: a mount point has no containerPath"
            ))
        })?;
        let read_only = mount.read_only.unwrap_or(false);
        let volume = layout.volumes.get(&source).ok_or_else(|| {
            SpecError(format!(
                "container {name:?} mounts {source:?}, which is not a volume of the task"
            ))
        })?;
        spec.mounts.push(match volume {
            ResolvedVolume::Bind { path } | ResolvedVolume::Efs { path } => MountSpec::Bind {
                host_path: path.clone(),
                container_path,
                read_only,
            },
            ResolvedVolume::Docker { name, .. } => MountSpec::Volume {
                name: name.clone(),
                container_path,
                read_only,
            },
        });
    }
    for from in container.volumes_from.iter().flatten() {
        let source = from.source_container.clone().unwrap_or_default();
        let docker = layout.docker_names.get(&source).ok_or_else(|| {
            SpecError(format!(
                "container {name:?} takes volumes from {source:?}, which is not in the task"
            ))
        })?;
        spec.volumes_from.push(if from.read_only.unwrap_or(false) {
            format!("{docker}:ro")
        } else {
            docker.clone()
        });
    }
    for link in container.links.iter().flatten() {
        let (target, alias) = link.split_once(':').unwrap_or((link, link));
        let docker = layout.docker_names.get(target).ok_or_else(|| {
            SpecError(format!(
                "container {name:?} links to {target:?}, which is not in the task"
            ))
        })?;
        spec.links.push(format!("{docker}:{alias}"));
    }

    apply_config(&mut spec, &config);
    apply_host_config(&mut spec, &host_config);
    if let Some(share) = task_shares(layout.task).remove(&name) {
        spec.cpu_quota = share.cpu_quota.or(spec.cpu_quota);
        if let Some(memory) = share.memory_mib {
            spec.memory_mib = Some(memory);
            spec.memory_reservation_mib = spec.memory_reservation_mib.map(|r| r.min(memory));
        }
    }
    if let Some(uri) = layout.metadata_uris.get(&name) {
        spec.env.retain(|(key, _)| key != METADATA_URI_V4);
        spec.env.push((METADATA_URI_V4.to_owned(), uri.clone()));
    }

    // ECS's labels go on last, so a task definition cannot hide a container from its agent.
    spec.labels.extend(ecs_labels(
        layout.task,
        &name,
        layout.cluster,
        layout.instance_arn,
        layout.installation,
    ));
    Ok(spec)
}

/// The labels the agent finds a task's containers by (its infra container's too), and the
/// installation's.
pub fn ecs_labels(
    task: &Task,
    container_name: &str,
    cluster: &str,
    instance_arn: &str,
    installation: &InstallationId,
) -> BTreeMap<String, String> {
    [
        (LABEL_INSTALLATION, installation.to_string()),
        (LABEL_TASK_ARN, task.arn.clone().unwrap_or_default()),
        (LABEL_CONTAINER_NAME, container_name.to_owned()),
        (LABEL_CLUSTER, cluster.to_owned()),
        (LABEL_FAMILY, task.family.clone().unwrap_or_default()),
        (LABEL_VERSION, task.version.clone().unwrap_or_default()),
        (LABEL_INSTANCE, instance_arn.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// One container's part of its task's limits (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TaskShare {
    pub cpu_quota: Option<CpuQuota>,
    /// The container's hard memory limit in MiB.
    pub memory_mib: Option<u64>,
}

/// Divides the task's `cpu` (vCPUs) and `memory` (MiB) among its containers, by container
/// name; empty when the task sets neither.
///
/// CPU: each container is guaranteed its own `cpu` units and the rest of the task's CPU is
/// split evenly among all of them (the units of all containers are scaled down together
/// should they exceed the task's).
///
/// Memory, max-min fair: each container keeps at least its soft reservation
/// (`memoryReservation`), never exceeds its own hard `memory` (nor the task's), and the
/// task's memory is filled up to an even level above the reservations. Shares never go
/// under Docker's minimum of 6 MiB, which a task of many containers with very little memory
/// can exceed by those few MiB.
pub fn task_shares(task: &Task) -> BTreeMap<String, TaskShare> {
    let containers: Vec<(String, &Container)> = task
        .containers
        .iter()
        .flatten()
        .filter_map(|c| Some((c.name.clone()?, c)))
        .collect();
    let mut shares: BTreeMap<String, TaskShare> = BTreeMap::new();
    if containers.is_empty() {
        return shares;
    }
    if let Some(vcpus) = task.cpu.filter(|c| c.is_finite() && *c > 0.0) {
        let total = vcpus * CPU_UNITS_PER_VCPU;
        let units: Vec<f64> = containers
            .iter()
            .map(|(_, c)| c.cpu.unwrap_or(0).max(0) as f64)
            .collect();
        let reserved: f64 = units.iter().sum();
        let scale = if reserved > total {
            total / reserved
        } else {
            1.0
        };
        let spare = (total - reserved * scale) / containers.len() as f64;
        for ((name, _), own) in containers.iter().zip(&units) {
            let share = own * scale + spare;
            let quota = (share / CPU_UNITS_PER_VCPU * CFS_PERIOD_US as f64).floor() as u64;
            shares.entry(name.clone()).or_default().cpu_quota = Some(CpuQuota {
                quota_us: quota.max(MIN_CFS_QUOTA_US),
                period_us: CFS_PERIOD_US,
            });
        }
    }
    if let Some(task_memory) = task.memory.filter(|m| *m > 0).map(|m| m as u64) {
        let caps: Vec<f64> = containers
            .iter()
            .map(|(_, c)| {
                c.memory
                    .filter(|m| *m > 0)
                    .map_or(task_memory, |m| (m as u64).min(task_memory)) as f64
            })
            .collect();
        let mut floors: Vec<f64> = containers
            .iter()
            .zip(&caps)
            .map(|((_, c), cap)| (reservation_mib(c).unwrap_or(0) as f64).min(*cap))
            .collect();
        let reserved: f64 = floors.iter().sum();
        if reserved > task_memory as f64 {
            floors
                .iter_mut()
                .for_each(|f| *f *= task_memory as f64 / reserved);
        }
        let level = fill_level(&floors, &caps, task_memory as f64);
        for (((name, _), floor), cap) in containers.iter().zip(&floors).zip(&caps) {
            let memory = level.clamp(*floor, cap.max(*floor)).floor() as u64;
            shares.entry(name.clone()).or_default().memory_mib = Some(memory.max(MIN_MEMORY_MIB));
        }
    }
    shares
}

/// The level `l` at which `Σ clamp(l, floor_i, cap_i)` reaches `total` (or the highest cap,
/// if the caps leave memory over). Bisection: a handful of containers, 64 rounds.
fn fill_level(floors: &[f64], caps: &[f64], total: f64) -> f64 {
    let filled = |level: f64| -> f64 {
        floors
            .iter()
            .zip(caps)
            .map(|(f, c)| level.clamp(*f, c.max(*f)))
            .sum()
    };
    let (mut low, mut high) = (0.0, total);
    for _ in 0..64 {
        let mid = (low + high) / 2.0;
        if filled(mid) > total {
            high = mid;
        } else {
            low = mid;
        }
    }
    low
}

/// A container's soft memory reservation in MiB (`MemoryReservation` in its host config).
fn reservation_mib(container: &Container) -> Option<u64> {
    reservation_in(&docker_document(container, false).ok()?)
}

fn reservation_in(host: &serde_json::Map<String, Value>) -> Option<u64> {
    let bytes = host.get("MemoryReservation")?.as_i64().filter(|b| *b > 0)?;
    Some(((bytes + BYTES_PER_MIB - 1) / BYTES_PER_MIB) as u64)
}

/// A container's log driver and its options (`LogConfig` in its host config).
pub fn log_config(container: &Container) -> Option<LogConfig> {
    log_config_in(&docker_document(container, false).ok()?)
}

fn log_config_in(host: &serde_json::Map<String, Value>) -> Option<LogConfig> {
    let log = host.get("LogConfig").and_then(Value::as_object)?;
    let driver = string(log, "Type")?;
    let options = log
        .get("Config")
        .and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    Some(LogConfig { driver, options })
}

fn parse_protocol(protocol: Option<&str>) -> Protocol {
    match protocol {
        Some(p) if p.eq_ignore_ascii_case("udp") => Protocol::Udp,
        _ => Protocol::Tcp,
    }
}

/// `dockerConfig.config` (`config = true`) or `dockerConfig.hostConfig` as a JSON object;
/// absent is empty.
fn docker_document(
    container: &Container,
    config: bool,
) -> Result<serde_json::Map<String, Value>, SpecError> {
    let docker = container.docker_config.as_ref();
    let text = if config {
        docker.and_then(|d| d.config.as_deref())
    } else {
        docker.and_then(|d| d.host_config.as_deref())
    };
    match text.map(str::trim) {
        None | Some("") => Ok(serde_json::Map::new()),
        Some(text) => match serde_json::from_str(text) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(Value::Null) => Ok(serde_json::Map::new()),
            _ => Err(SpecError(format!(
                "container {:?}: dockerConfig.{} is not a JSON object",
                container.name.as_deref().unwrap_or_default(),
                if config { "config" } else { "hostConfig" }
            ))),
        },
    }
}

fn string(doc: &serde_json::Map<String, Value>, key: &str) -> Option<String> {
    doc.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn strings(doc: &serde_json::Map<String, Value>, key: &str) -> Vec<String> {
    doc.get(key)
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Docker durations are nanoseconds; the runtime takes whole seconds (rounded up, so a
/// sub-second setting is not lost).
fn seconds(nanos: Option<&Value>) -> Option<u32> {
    let nanos = nanos?.as_i64().filter(|n| *n > 0)?;
    u32::try_from((nanos + NANOS_PER_SECOND - 1) / NANOS_PER_SECOND).ok()
}

/// The container config document: user, working directory, labels, health check, …
fn apply_config(spec: &mut ContainerSpec, config: &serde_json::Map<String, Value>) {
    spec.user = string(config, "User");
    spec.working_dir = string(config, "WorkingDir");
    spec.hostname = string(config, "Hostname");
    spec.stop_signal = string(config, "StopSignal");
    if let Some(labels) = config.get("Labels").and_then(Value::as_object) {
        for (key, value) in labels {
            if let Some(value) = value.as_str() {
                spec.labels.insert(key.clone(), value.to_owned());
            }
        }
    }
    if let Some(check) = config.get("Healthcheck").and_then(Value::as_object) {
        let command = strings(check, "Test");
        if !command.is_empty() {
            spec.health_check = Some(HealthCheck {
                command,
                interval_secs: seconds(check.get("Interval")),
                timeout_secs: seconds(check.get("Timeout")),
                retries: check
                    .get("Retries")
                    .and_then(Value::as_u64)
                    .and_then(|r| u32::try_from(r).ok()),
                start_period_secs: seconds(check.get("StartPeriod")),
            });
        }
    }
}

/// The host config document: memory reservation, ulimits, log driver, DNS, …
fn apply_host_config(spec: &mut ContainerSpec, host: &serde_json::Map<String, Value>) {
    if let Some(mib) = reservation_in(host) {
        spec.memory_reservation_mib = Some(mib);
    }
    if let Some(ulimits) = host.get("Ulimits").and_then(Value::as_array) {
        spec.ulimits = ulimits
            .iter()
            .filter_map(|u| {
                Some(Ulimit {
                    name: u.get("Name")?.as_str()?.to_owned(),
                    soft: u.get("Soft")?.as_i64()?,
                    hard: u.get("Hard")?.as_i64()?,
                })
            })
            .collect();
    }
    spec.log_config = log_config_in(host);
    if let Some(privileged) = host.get("Privileged").and_then(Value::as_bool) {
        spec.privileged = privileged;
    }
    if let Some(readonly) = host.get("ReadonlyRootfs").and_then(Value::as_bool) {
        spec.readonly_rootfs = readonly;
    }
    if let Some(init) = host.get("Init").and_then(Value::as_bool) {
        spec.init = init;
    }
    spec.dns_servers = strings(host, "Dns");
    spec.dns_search_domains = strings(host, "DnsSearch");
    spec.extra_hosts = strings(host, "ExtraHosts")
        .into_iter()
        .filter_map(|entry| {
            let (host, ip) = entry.split_once(':')?;
            Some((host.to_owned(), ip.to_owned()))
        })
        .collect();
}

/// The order containers may start in: dependencies before dependents (`dependsOn`, and
/// `links` / `volumesFrom`, which Docker needs created and started first). Fails on a cycle
/// or a dependency on a container the task lacks.
pub fn start_order(task: &Task) -> Result<Vec<String>, SpecError> {
    let containers: Vec<&Container> = task.containers.iter().flatten().collect();
    let names: Vec<String> = containers.iter().filter_map(|c| c.name.clone()).collect();
    let mut order = Vec::new();
    let mut placed = std::collections::BTreeSet::new();
    while order.len() < names.len() {
        let before = order.len();
        for container in &containers {
            let Some(name) = &container.name else {
                continue;
            };
            if placed.contains(name) {
                continue;
            }
            let deps = dependencies(container);
            if let Some(missing) = deps.iter().find(|d| !names.contains(d)) {
                return Err(SpecError(format!(
                    "container {name:?} depends on {missing:?}, which is not in the task"
                )));
            }
            if deps.iter().all(|d| placed.contains(d)) {
                placed.insert(name.clone());
                order.push(name.clone());
            }
        }
        if order.len() == before {
            return Err(SpecError(
                "the task's container dependencies form a cycle".to_owned(),
            ));
        }
    }
    Ok(order)
}

/// Every container `container` needs started before it.
pub fn dependencies(container: &Container) -> Vec<String> {
    let mut deps: Vec<String> = container
        .depends_on
        .iter()
        .flatten()
        .filter_map(|d| d.container_name.clone())
        .collect();
    deps.extend(container.links.iter().flatten().map(|l| {
        l.split_once(':')
            .map_or(l.as_str(), |(target, _)| target)
            .to_owned()
    }));
    deps.extend(
        container
            .volumes_from
            .iter()
            .flatten()
            .filter_map(|v| v.source_container.clone()),
    );
    deps.sort();
    deps.dedup();
    deps
}

#[cfg(test)]
mod tests;
