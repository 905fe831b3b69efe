//! What the agent tells RegisterContainerInstance: the host's resources (CPU units, memory
//! minus the reservation, the ports nothing else may take) and the attributes ECS agents
//! report (OS, architecture, zone, instance type, and one capability attribute per feature
//! the agent supports), plus the configured custom attributes and `versionInfo`.

use std::collections::BTreeSet;
use std::net::IpAddr;

use berth_runtime::HostInfo;

use crate::client::{Attribute, HttpEndpoint, Resource, VersionInfo};
use crate::config::AgentConfig;

/// Ports ECS reserves on every container instance: SSH, the Docker daemon's (plain and TLS)
/// and the agent's introspection and credentials endpoints.
pub const ECS_RESERVED_PORTS: [u16; 5] = [22, 2375, 2376, 51678, 51679];
/// The oldest Docker Engine API version ECS names a capability for.
const OLDEST_REMOTE_API_MINOR: u32 = 17;
const CAPABILITY_PREFIX: &str = "com.amazonaws.ecs.capability.";
const ATTRIBUTE_PREFIX: &str = "ecs.capability.";

pub const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// CPU (1,024 units per core), MEMORY (MiB less the reservation), PORTS (ECS's reserved
/// ones plus `extra_ports`) and PORTS_UDP (none).
pub fn resources(host: &HostInfo, reservation_mib: u64, extra_ports: &[u16]) -> Vec<Resource> {
    let integer = |name: &str, value: i64| Resource {
        name: name.to_owned(),
        kind: "INTEGER".to_owned(),
        integer_value: Some(value),
        string_set_value: None,
    };
    let ports: BTreeSet<u16> = ECS_RESERVED_PORTS
        .iter()
        .chain(extra_ports)
        .copied()
        .collect();
    let memory_mib = host.memory_bytes / (1024 * 1024);
    vec![
        integer("CPU", i64::from(host.cpus) * 1024),
        integer("MEMORY", memory_mib.saturating_sub(reservation_mib) as i64),
        Resource {
            name: "PORTS".to_owned(),
            kind: "STRINGSET".to_owned(),
            integer_value: None,
            string_set_value: Some(ports.iter().map(u16::to_string).collect()),
        },
        Resource {
            name: "PORTS_UDP".to_owned(),
            kind: "STRINGSET".to_owned(),
            integer_value: None,
            string_set_value: Some(Vec::new()),
        },
    ]
}

/// The instance identity document of an agent given an EC2 instance id (an Auto Scaling
/// group's instance): the fields ECS reads from EC2's.
pub fn identity_document(config: &AgentConfig) -> Option<String> {
    let id = config.ec2_instance_id.as_ref()?;
    let mut document = serde_json::json!({ "instanceId": id, "region": config.region });
    if let Some(zone) = &config.availability_zone {
        document["availabilityZone"] = zone.clone().into();
    }
    if let Some(instance_type) = &config.instance_type {
        document["instanceType"] = instance_type.clone().into();
    }
    Some(document.to_string())
}

/// ECS's name for the CPU architecture Docker reports.
pub fn cpu_architecture(docker_architecture: &str) -> &str {
    match docker_architecture {
        "aarch64" | "arm64" => "arm64",
        "x86_64" | "amd64" => "x86_64",
        other => other,
    }
}

/// The attributes to register: the standard ones, capabilities for what this agent
/// supports on this Docker, and the custom ones. The official agent sends custom attributes
/// on its first registration only, relying on ECS to keep them; Berth's
/// RegisterContainerInstance replaces an instance's attributes with those given, so they
/// are sent every time (and flags changed between restarts take effect).
pub fn attributes(config: &AgentConfig, host: &HostInfo) -> Vec<Attribute> {
    let mut out = Vec::new();
    let mut valued = |name: &str, value: &str| {
        out.push(Attribute {
            name: name.to_owned(),
            value: Some(value.to_owned()),
        });
    };
    valued(
        "ecs.os-type",
        if host.os_type.is_empty() {
            "linux"
        } else {
            &host.os_type
        },
    );
    valued("ecs.os-family", "LINUX");
    valued("ecs.cpu-architecture", cpu_architecture(&host.architecture));
    if let Some(zone) = &config.availability_zone {
        valued("ecs.availability-zone", zone);
    }
    if let Some(instance_type) = &config.instance_type {
        valued("ecs.instance-type", instance_type);
    }
    for (name, value) in &config.attributes {
        valued(name, value);
    }
    out.extend(
        capabilities(&host.api_version)
            .into_iter()
            .map(|name| Attribute { name, value: None }),
    );
    out
}

/// Name-only capability attributes, as the official agent reports them for the features
/// this agent implements. Not reported: FireLens, GPUs, secrets as files or for log
/// drivers — none is implemented.
pub fn capabilities(docker_api_version: &str) -> Vec<String> {
    let minor = api_minor(docker_api_version).unwrap_or(OLDEST_REMOTE_API_MINOR);
    let mut out: Vec<String> = (OLDEST_REMOTE_API_MINOR..=minor.max(OLDEST_REMOTE_API_MINOR))
        .map(|m| format!("{CAPABILITY_PREFIX}docker-remote-api.1.{m}"))
        .collect();
    for name in [
        "privileged-container",
        "logging-driver.json-file",
        "logging-driver.none",
        "ecr-auth",
        // Task roles' credentials at 169.254.170.2 (`metadata::credentials`), host mode too.
        "task-iam-role",
        "task-iam-role-network-host",
        // `repositoryCredentials` read with the execution role (`engine::secrets`).
        "private-registry-authentication.secretsmanager",
    ] {
        out.push(format!("{CAPABILITY_PREFIX}{name}"));
    }
    let mut add = |name: &str| out.push(format!("{ATTRIBUTE_PREFIX}{name}"));
    add("execution-role-ecr-pull");
    add("execution-role-awslogs");
    // `secrets` read with the execution role, as environment variables.
    add("secrets.asm.environment-variables");
    add("secrets.ssm.environment-variables");
    add("ecr-endpoint");
    add("container-ordering");
    // Task-level cpu and memory are enforced (see `translate::task_shares`).
    add("task-cpu-mem-limit");
    // Docker's health checks arrived with Engine API 1.24.
    if minor >= 24 {
        add("container-health-check");
    }
    // Docker volumes with the built-in driver.
    add("docker-plugin.local");
    // EFS volumes (directories under the agent's EFS root; access points included).
    add("efs");
    add("efsAuth");
    // awsvpc: each task in its own namespace with its own address (see `infra`).
    add("task-eni");
    out
}

fn api_minor(version: &str) -> Option<u32> {
    let (major, minor) = version.split_once('.')?;
    (major == "1").then(|| minor.parse().ok())?
}

pub fn version_info(host: &HostInfo) -> VersionInfo {
    VersionInfo {
        agent_version: AGENT_VERSION.to_owned(),
        agent_hash: option_env!("BERTH_GIT_HASH")
            .unwrap_or("unknown")
            .to_owned(),
        docker_version: format!("DockerVersion: {}", host.server_version),
    }
}

/// The control plane's port, when it listens on this host (its port is then taken).
/// An address is this host's if a socket can be bound to it.
pub async fn control_plane_port_on_this_host(endpoint: &HttpEndpoint) -> Option<u16> {
    let host = endpoint
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let addresses: Vec<IpAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => tokio::net::lookup_host((host, endpoint.port()))
            .await
            .ok()?
            .map(|a| a.ip())
            .collect(),
    };
    addresses
        .iter()
        .any(|ip| ip.is_loopback() || std::net::UdpSocket::bind((*ip, 0)).is_ok())
        .then(|| endpoint.port())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn host() -> HostInfo {
        HostInfo {
            server_version: "20.10.24+dfsg1".into(),
            api_version: "1.41".into(),
            cpus: 2,
            memory_bytes: 4096 * 1024 * 1024,
            os_type: "linux".into(),
            architecture: "aarch64".into(),
        }
    }

    #[test]
    fn resources_follow_the_host() {
        let r = resources(&host(), 256, &[4566, 22]);
        assert_eq!(r[0].name, "CPU");
        assert_eq!(r[0].integer_value, Some(2048));
        assert_eq!(r[1].name, "MEMORY");
        assert_eq!(r[1].integer_value, Some(4096 - 256));
        assert_eq!(
            r[2].string_set_value.as_deref().unwrap(),
            ["22", "2375", "2376", "4566", "51678", "51679"]
        );
        assert_eq!(r[3].name, "PORTS_UDP");
        assert_eq!(r[3].string_set_value.as_deref(), Some(&[][..]));
        let json = serde_json::to_value(&r[2]).unwrap();
        assert_eq!(json["type"], "STRINGSET");
        assert!(json.get("integerValue").is_none());
    }

    #[test]
    fn attributes_as_ecs_agents_report_them() {
        let mut config = crate::config::AgentConfig {
            attributes: [("stack".to_owned(), "blue".to_owned())].into(),
            availability_zone: Some("us-east-1a".into()),
            runtime: crate::config::RuntimeChoice::Simulated,
            metadata_port: None,
            ..crate::config::AgentConfig::defaults("http://127.0.0.1:4566", "c", Path::new("/tmp"))
        };
        let attrs = attributes(&config, &host());
        let value = |name: &str| {
            attrs
                .iter()
                .find(|a| a.name == name)
                .map(|a| a.value.clone())
        };
        assert_eq!(value("ecs.os-type"), Some(Some("linux".into())));
        assert_eq!(value("ecs.cpu-architecture"), Some(Some("arm64".into())));
        assert_eq!(
            value("ecs.availability-zone"),
            Some(Some("us-east-1a".into()))
        );
        assert_eq!(value("ecs.instance-type"), None);
        assert_eq!(value("stack"), Some(Some("blue".into())));
        assert_eq!(
            value("com.amazonaws.ecs.capability.docker-remote-api.1.17"),
            Some(None)
        );
        assert_eq!(
            value("com.amazonaws.ecs.capability.docker-remote-api.1.41"),
            Some(None)
        );
        assert_eq!(
            value("com.amazonaws.ecs.capability.docker-remote-api.1.42"),
            None
        );
        assert_eq!(value("ecs.capability.container-health-check"), Some(None));
        assert_eq!(value("ecs.capability.task-cpu-mem-limit"), Some(None));
        assert_eq!(
            value("com.amazonaws.ecs.capability.logging-driver.json-file"),
            Some(None)
        );
        assert_eq!(value("ecs.capability.task-eni"), Some(None));
        config.instance_type = Some("m5.large".into());
        let again = attributes(&config, &host());
        assert!(again.iter().any(|a| a.name == "ecs.instance-type"));
    }

    #[test]
    fn old_docker_reports_no_health_checks() {
        let caps = capabilities("1.23");
        assert!(
            caps.iter()
                .all(|c| c != "ecs.capability.container-health-check")
        );
        assert!(caps.iter().any(|c| c.ends_with("docker-remote-api.1.23")));
    }

    #[tokio::test]
    async fn loopback_control_planes_are_on_this_host() {
        let local = HttpEndpoint::parse("http://127.0.0.1:4566").unwrap();
        assert_eq!(control_plane_port_on_this_host(&local).await, Some(4566));
        // TEST-NET-1 is never a local address.
        let remote = HttpEndpoint::parse("http://192.0.2.1:4566").unwrap();
        assert_eq!(control_plane_port_on_this_host(&remote).await, None);
    }
}
