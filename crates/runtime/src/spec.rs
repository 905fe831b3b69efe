//! What a container should be: plain data the agent fills from a task definition, and each
//! runtime turns into its own request. Empty and `None` mean "the runtime's default".

use std::collections::BTreeMap;

use crate::RuntimeError;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerSpec {
    /// The container's name; `None` lets the runtime choose one.
    pub name: Option<String>,
    pub image: String,
    /// Replaces the image's CMD when not empty.
    pub command: Vec<String>,
    /// Replaces the image's ENTRYPOINT when not empty.
    pub entrypoint: Vec<String>,
    /// `(NAME, value)` in order.
    pub env: Vec<(String, String)>,
    pub working_dir: Option<String>,
    /// `user`, `uid`, `user:group` or `uid:gid`.
    pub user: Option<String>,
    /// Docker labels: the task definition's `dockerLabels` plus whatever the agent adds to
    /// find its containers again (task ARN, container name, …).
    pub labels: BTreeMap<String, String>,
    /// Published ports. Only bridge mode and named networks publish; in `host` mode the
    /// container's ports are the host's, in `none` and `container:` modes there are none.
    pub port_mappings: Vec<PortMapping>,
    pub network_mode: NetworkMode,
    /// On a named network: the container's fixed address there (Docker's endpoint
    /// `IPAMConfig.IPv4Address`), which must lie in the network's subnet.
    pub ipv4_address: Option<String>,
    /// On a named network: the endpoint's MAC address. Engines before API 1.44 ignore it
    /// and derive one from the address (`02:42:` and its four bytes).
    pub mac_address: Option<String>,
    /// Relative CPU weight (ECS's `cpu` units map straight onto it).
    pub cpu_shares: Option<u64>,
    /// A hard CPU cap, as the CFS bandwidth controller takes it: the container may use
    /// `cpu_quota_us` of CPU time in every `cpu_period_us` (Docker's `CpuQuota`/`CpuPeriod`;
    /// a quota of 1.5 periods is one and a half CPUs). `None` leaves CPU uncapped.
    pub cpu_quota: Option<CpuQuota>,
    /// Hard memory limit in MiB (ECS `memory`).
    pub memory_mib: Option<u64>,
    /// Soft memory reservation in MiB (ECS `memoryReservation`).
    pub memory_reservation_mib: Option<u64>,
    pub ulimits: Vec<Ulimit>,
    pub mounts: Vec<MountSpec>,
    /// Other containers' volumes to mount: `container` or `container:ro`.
    pub volumes_from: Vec<String>,
    /// Legacy links, `container` or `container:alias` (bridge mode only).
    pub links: Vec<String>,
    /// `(hostname, ip)` pairs added to the container's `/etc/hosts`.
    pub extra_hosts: Vec<(String, String)>,
    pub dns_servers: Vec<String>,
    pub dns_search_domains: Vec<String>,
    pub health_check: Option<HealthCheck>,
    /// e.g. `SIGQUIT`; the image's STOPSIGNAL or SIGTERM when `None`.
    pub stop_signal: Option<String>,
    /// Run an init process as PID 1 that forwards signals and reaps zombies.
    pub init: bool,
    pub privileged: bool,
    pub readonly_rootfs: bool,
    pub hostname: Option<String>,
    pub log_config: Option<LogConfig>,
}

impl ContainerSpec {
    /// The checks every runtime makes before creating anything, so that the simulation
    /// refuses what Docker would.
    pub fn validate(&self) -> Result<(), RuntimeError> {
        let invalid = |message: String| Err(RuntimeError::InvalidSpec(message));
        if self.image.is_empty() {
            return invalid("image is empty".to_owned());
        }
        if self.port_mappings.iter().any(|m| m.container_port == 0) {
            return invalid("a port mapping's container port must not be 0".to_owned());
        }
        for mount in &self.mounts {
            let (source, target) = match mount {
                MountSpec::Bind {
                    host_path,
                    container_path,
                    ..
                } => (host_path, container_path),
                MountSpec::Volume {
                    name,
                    container_path,
                    ..
                } => (name, container_path),
            };
            // Docker's bind syntax is `source:target[:ro]`.
            if source.is_empty()
                || target.is_empty()
                || source.contains(':')
                || target.contains(':')
            {
                return invalid(format!(
                    "mount {source:?} -> {target:?}: both sides must be non-empty and contain no ':'"
                ));
            }
        }
        if let Some(cpu) = self.cpu_quota
            && (cpu.quota_us < 1000 || !(1000..=1_000_000).contains(&cpu.period_us))
        {
            return invalid(format!(
                "CPU quota {} us per {} us: the quota must be at least 1000 us and the period \
                 between 1000 us and 1 s",
                cpu.quota_us, cpu.period_us
            ));
        }
        if let Some(check) = &self.health_check {
            match check.command.first().map(String::as_str) {
                Some("CMD" | "CMD-SHELL" | "NONE") => {}
                _ => {
                    return invalid(format!(
                        "health check command must start with CMD, CMD-SHELL or NONE: {:?}",
                        check.command
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A CFS bandwidth limit (see [`ContainerSpec::cpu_quota`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuQuota {
    /// Microseconds of CPU time allowed per period (Docker refuses less than 1000).
    pub quota_us: u64,
    /// The period in microseconds (the kernel's default is 100 000).
    pub period_us: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortMapping {
    pub container_port: u16,
    /// `None` or `Some(0)`: the runtime picks a free host port (read it back with
    /// `inspect_container`).
    pub host_port: Option<u16>,
    pub protocol: Protocol,
    /// The host address to bind; all addresses when `None`.
    pub host_ip: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum NetworkMode {
    #[default]
    Bridge,
    Host,
    None,
    /// Share another container's network namespace (`container:<id>`), as awsvpc's pause
    /// container will.
    Container(String),
    /// A user-defined network by name.
    Named(String),
}

impl NetworkMode {
    /// Docker's `HostConfig.NetworkMode` value.
    pub fn docker_value(&self) -> String {
        match self {
            NetworkMode::Bridge => "bridge".to_owned(),
            NetworkMode::Host => "host".to_owned(),
            NetworkMode::None => "none".to_owned(),
            NetworkMode::Container(id) => format!("container:{id}"),
            NetworkMode::Named(name) => name.clone(),
        }
    }

    /// Whether ports can be published in this mode.
    pub fn publishes_ports(&self) -> bool {
        matches!(self, NetworkMode::Bridge | NetworkMode::Named(_))
    }
}

/// A user-defined bridge network with a fixed subnet (awsvpc tasks' subnets).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkSpec {
    pub name: String,
    /// `10.192.3.0/24`.
    pub subnet: String,
    /// The bridge's own address, e.g. `10.192.3.1`.
    pub gateway: String,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ulimit {
    /// e.g. `nofile`.
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountSpec {
    /// A host path; created as a directory if it does not exist (as ECS host volumes are).
    Bind {
        host_path: String,
        container_path: String,
        read_only: bool,
    },
    /// A named volume; created with the default driver if it does not exist.
    Volume {
        name: String,
        container_path: String,
        read_only: bool,
    },
}

/// A container health check, as ECS's `healthCheck` gives it. Times are whole seconds;
/// `None` takes Docker's defaults (30 s interval, 30 s timeout, 3 retries, no start period),
/// so the agent fills in ECS's own defaults itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthCheck {
    /// `["CMD-SHELL", "curl -f http://localhost/ || exit 1"]` or `["CMD", "prog", "arg"]`
    /// (`["NONE"]` disables the image's check).
    pub command: Vec<String>,
    pub interval_secs: Option<u32>,
    pub timeout_secs: Option<u32>,
    pub retries: Option<u32>,
    pub start_period_secs: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogConfig {
    /// e.g. `json-file`, `syslog`, `none`.
    pub driver: String,
    pub options: BTreeMap<String, String>,
}

/// A named volume to create (ECS Docker volumes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VolumeSpec {
    pub name: String,
    /// `local` when `None`.
    pub driver: Option<String>,
    pub driver_opts: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}
