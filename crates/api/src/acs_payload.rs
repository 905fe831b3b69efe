//! The ACS `Task` an agent receives in a PayloadMessage, built from a stored task and its task
//! definition with the task's RunTask overrides applied. The official agent reads it by
//! re-marshalling it into its own task type (`agent/api/task/task.go`, `TaskFromACS`), and
//! takes most Docker settings not from ACS members but from Docker Engine API documents in
//! `dockerConfig`, which it lays over the create call it builds itself; so those go there.

use std::collections::BTreeMap;

use berth_agent_protocol::acs;
use berth_model::Scope;
use berth_model::ecs::{ContainerOverride, EcsArn, TaskOverride};
use berth_model::task_definition::{
    ContainerDefinition, HealthCheck, LinuxParameters, TaskDefinition, parse_cpu, parse_memory,
};
use serde_json::{Map, Value, json};

/// Where the agent reaches Berth, for what the payload points it at.
pub struct PayloadContext<'a> {
    pub scope: &'a Scope,
    /// `http://host:port` of Berth as the agent reaches it.
    pub endpoint: &'a str,
    /// `host:port` of Berth's registry (the `repositoryUri` prefix).
    pub registry_host: &'a str,
    /// An awsvpc task's subnet's gateway with the prefix length (`10.0.1.1/24`).
    pub subnet_gateway: Option<String>,
}

const BYTES_PER_MIB: i64 = 1024 * 1024;
const NANOS_PER_SECOND: i64 = 1_000_000_000;
/// The agent applies task-level `cpu` as a fraction of vCPUs (CFS quota = cpu × period,
/// `agent/api/task/task_linux.go`), while task definitions count CPU units.
const CPU_UNITS_PER_VCPU: f64 = 1024.0;
/// What ECS fills in for a health check that leaves them out (seconds, seconds, count).
/// Docker's own defaults differ (a 30 s timeout), so they are written out.
const HEALTH_CHECK_INTERVAL: i64 = 30;
const HEALTH_CHECK_TIMEOUT: i64 = 5;
const HEALTH_CHECK_RETRIES: i64 = 3;
/// The agent's `apicontainer.DockerHealthCheckType`: with it set, the agent insists on a
/// `Healthcheck` in `dockerConfig.config` and reports the container's health.
const DOCKER_HEALTH_CHECK: &str = "docker";
/// The agent's `AuthTypeECR`: it calls ECR GetAuthorizationToken itself before pulling.
const AUTH_TYPE_ECR: &str = "ecr";
/// The agent's `AuthTypeASM`: the registry login is a Secrets Manager secret.
const AUTH_TYPE_ASM: &str = "asm";
const REMOTE_API_ATTRIBUTE: &str = "com.amazonaws.ecs.capability.docker-remote-api.1.";

/// The ACS task for `task`, an instance of `td`.
pub fn acs_task(ctx: &PayloadContext, task: &berth_ecs::Task, td: &TaskDefinition) -> acs::Task {
    let none = TaskOverride::default();
    let overrides = task.overrides.as_ref().unwrap_or(&none);
    let network_mode = td.network_mode.as_deref().unwrap_or("bridge");
    let containers = td
        .container_definitions
        .iter()
        .flatten()
        .map(|c| {
            let o = overrides.container(c.name_str());
            acs_container(ctx, task, td, c, o, network_mode)
        })
        .collect();
    let cpu = overrides
        .cpu
        .clone()
        .or_else(|| td.cpu.clone())
        .and_then(|v| parse_cpu(&v))
        .map(|units| f64::from(units) / CPU_UNITS_PER_VCPU);
    let memory = overrides
        .memory
        .clone()
        .or_else(|| td.memory.clone())
        .and_then(|v| parse_memory(&v))
        .map(i64::from);
    let group = Some(task.group.clone()).filter(|g| !g.is_empty());
    acs::Task {
        arn: Some(task.arn(ctx.scope)),
        // The model defines it; the agent's task type has no field for it (the agent knows
        // its cluster), but manifests and stop verifications name tasks by it.
        task_cluster_arn: Some(EcsArn::cluster(ctx.scope, &task.cluster).into_string()),
        desired_status: Some(task.desired_status.to_string()),
        family: td.family.clone(),
        version: td.revision.map(|r| r.to_string()),
        launch_type: Some(task.launch_type.to_string()),
        // Newer agents read this; older ones infer the mode from each container's
        // `hostConfig.NetworkMode` (see `docker_config`), so both are set.
        network_mode: Some(network_mode.to_string()),
        cpu,
        memory,
        service_name: group
            .as_deref()
            .and_then(|g| berth_model::ecs::TaskGroup::parse(g).service())
            .map(str::to_string),
        group,
        pid_mode: td.pid_mode.clone(),
        ipc_mode: td.ipc_mode.clone(),
        enable_fault_injection: td.enable_fault_injection,
        volumes: td
            .volumes
            .as_ref()
            .map(|vs| vs.iter().map(acs_volume).collect()),
        containers: Some(containers),
        elastic_network_interfaces: task
            .eni()
            .and_then(|eni| acs_eni(ctx.scope, eni, ctx.subnet_gateway.clone()))
            .map(|eni| vec![eni]),
        ..acs::Task::default()
    }
}

/// An awsvpc task's interface as ACS describes it to the agent: the agent attaches the task's
/// network namespace to the subnet with this address (see the agent's `infra.rs`).
fn acs_eni(
    scope: &Scope,
    eni: &berth_ecs::Attachment,
    gateway: Option<String>,
) -> Option<acs::ElasticNetworkInterface> {
    let ip: std::net::Ipv4Addr = eni.detail("privateIPv4Address")?.parse().ok()?;
    let text = |name: &str| eni.detail(name).map(str::to_string);
    Some(acs::ElasticNetworkInterface {
        attachment_arn: Some(eni.arn(scope)),
        ec2_id: text("networkInterfaceId"),
        mac_address: text("macAddress"),
        private_dns_name: text("privateDnsName"),
        ipv4_addresses: Some(vec![acs::IPv4AddressAssignment {
            primary: Some(true),
            private_address: Some(ip.to_string()),
        }]),
        subnet_gateway_ipv4_address: gateway,
        interface_association_protocol: Some("default".into()),
        index: Some(0),
        subnet_id: text("subnetId"),
        ..acs::ElasticNetworkInterface::default()
    })
}

fn acs_container(
    ctx: &PayloadContext,
    task: &berth_ecs::Task,
    td: &TaskDefinition,
    c: &ContainerDefinition,
    o: Option<&ContainerOverride>,
    network_mode: &str,
) -> acs::Container {
    let cpu = o.and_then(|o| o.cpu).or(c.cpu.map(i64::from));
    let memory = o.and_then(|o| o.memory).or(c.memory.map(i64::from));
    let memory_reservation = o
        .and_then(|o| o.memory_reservation)
        .or(c.memory_reservation.map(i64::from));
    let command = o
        .and_then(|o| o.command.clone())
        .or_else(|| c.command.clone());
    // Overrides add variables and replace those of the same name.
    let mut environment = BTreeMap::new();
    let pairs = c.environment.iter().flatten();
    for pair in pairs.chain(o.iter().flat_map(|o| o.environment.iter().flatten())) {
        if let Some(name) = &pair.name {
            environment.insert(name.clone(), pair.value.clone().unwrap_or_default());
        }
    }
    let name = c.name_str();
    acs::Container {
        name: c.name.clone(),
        image: c.image.clone(),
        cpu,
        memory,
        command,
        entry_point: c.entry_point.clone(),
        environment: Some(environment),
        // The agent's field is a plain bool: left out, a container would be non-essential.
        essential: Some(c.is_essential()),
        links: c.links.clone(),
        port_mappings: c
            .port_mappings
            .as_ref()
            .map(|ms| ms.iter().map(port_mapping).collect()),
        mount_points: c.mount_points.as_ref().map(|ms| {
            ms.iter()
                .map(|m| acs::MountPoint {
                    source_volume: m.source_volume.clone(),
                    container_path: m.container_path.clone(),
                    read_only: m.read_only,
                })
                .collect()
        }),
        volumes_from: c.volumes_from.as_ref().map(|vs| {
            vs.iter()
                .map(|v| acs::VolumeFrom {
                    source_container: v.source_container.clone(),
                    read_only: v.read_only,
                })
                .collect()
        }),
        depends_on: c.depends_on.as_ref().map(|ds| {
            ds.iter()
                .map(|d| acs::ContainerDependency {
                    container_name: d.container_name.clone(),
                    condition: d.condition.clone(),
                })
                .collect()
        }),
        start_timeout: c.start_timeout.map(i64::from),
        stop_timeout: c.stop_timeout.map(i64::from),
        restart_policy: c.restart_policy.as_ref().map(|p| acs::RestartPolicy {
            enabled: p.enabled,
            ignored_exit_codes: p
                .ignored_exit_codes
                .as_ref()
                .map(|codes| codes.iter().map(|&code| i64::from(code)).collect()),
            restart_attempt_period: p.restart_attempt_period.map(i64::from),
        }),
        privileged: c.privileged,
        linux_parameters: c.linux_parameters.as_ref().map(acs_linux_parameters),
        container_arn: task
            .containers
            .iter()
            .find(|tc| tc.name == name)
            .map(|tc| tc.container_arn.clone()),
        health_check_type: c
            .health_check
            .as_ref()
            .map(|_| DOCKER_HEALTH_CHECK.to_string()),
        docker_config: Some(docker_config(
            td,
            c,
            memory,
            memory_reservation,
            network_mode,
        )),
        registry_authentication: c.image.as_deref().and_then(|image| {
            let execution_role = task
                .overrides
                .as_ref()
                .and_then(|o| o.execution_role_arn.as_ref())
                .or(td.execution_role_arn.as_ref())
                .is_some_and(|r| !r.is_empty());
            // A private registry's login kept in Secrets Manager: the agent reads it
            // with the task's execution role.
            match c
                .repository_credentials
                .as_ref()
                .and_then(|r| r.credentials_parameter.clone())
            {
                Some(secret) => Some(acs::RegistryAuthenticationData {
                    kind: Some(AUTH_TYPE_ASM.into()),
                    asm_auth_data: Some(acs::ASMAuthData {
                        region: Some(arn_region(&secret, ctx.scope)),
                        credentials_parameter: Some(secret),
                    }),
                    ecr_auth_data: None,
                }),
                None => registry_authentication(ctx, image, execution_role),
            }
        }),
        secrets: c.secrets.as_ref().map(|secrets| {
            secrets
                .iter()
                .map(|secret| acs_secret(ctx.scope, secret))
                .collect()
        }),
        // `environmentFiles`, `firelensConfiguration`, `credentialSpecs` and
        // `resourceRequirements` need AWS services or hardware Berth does not provide and
        // are not sent.
        ..acs::Container::default()
    }
}

/// A container's secret as ACS hands it to the agent: to be read with the task's execution
/// role from Secrets Manager (`asm`: `valueFrom` a secret ARN, with optional
/// `:json-key:version-stage:version-id`) or SSM Parameter Store (`ssm`: a parameter name or
/// ARN), in the region its ARN names, and set as an environment variable.
fn acs_secret(
    scope: &berth_model::Scope,
    secret: &berth_model::task_definition::Secret,
) -> acs::Secret {
    let value_from = secret.value_from.clone().unwrap_or_default();
    let provider = if value_from.starts_with("arn:aws:secretsmanager:") {
        "asm"
    } else {
        "ssm"
    };
    acs::Secret {
        name: secret.name.clone(),
        region: Some(arn_region(&value_from, scope)),
        provider: Some(provider.into()),
        kind: Some("ENVIRONMENT_VARIABLE".into()),
        target: Some("CONTAINER".into()),
        value_from: Some(value_from),
        container_path: None,
    }
}

/// The region an ARN names, else the scope's.
fn arn_region(arn: &str, scope: &berth_model::Scope) -> String {
    arn.strip_prefix("arn:")
        .and_then(|rest| rest.split(':').nth(2))
        .filter(|r| !r.is_empty())
        .map_or_else(|| scope.region.to_string(), str::to_string)
}

fn port_mapping(m: &berth_model::task_definition::PortMapping) -> acs::PortMapping {
    acs::PortMapping {
        container_port: m.container_port.map(i64::from),
        // 0 (what registration stores for bridge mode without a host port) makes Docker
        // pick an ephemeral port.
        host_port: m.host_port.map(i64::from),
        container_port_range: m.container_port_range.clone(),
        protocol: m.protocol.clone(),
    }
}

fn acs_linux_parameters(p: &LinuxParameters) -> acs::LinuxParameters {
    acs::LinuxParameters {
        capabilities: p.capabilities.as_ref().map(|c| acs::KernelCapabilities {
            add: c.add.clone(),
            drop: c.drop.clone(),
        }),
        devices: p.devices.as_ref().map(|ds| {
            ds.iter()
                .map(|d| acs::Device {
                    host_path: d.host_path.clone().unwrap_or_default(),
                    container_path: d.container_path.clone(),
                    permissions: d.permissions.clone(),
                })
                .collect()
        }),
        init_process_enabled: p.init_process_enabled,
        shared_memory_size: p.shared_memory_size.map(i64::from),
    }
}

/// A task volume. The agent reads `type` (absent means `host`) and then the matching
/// member, and rejects a host volume without its `host` object, so a scratch volume (no
/// `sourcePath`) carries an empty one.
fn acs_volume(v: &berth_model::task_definition::Volume) -> acs::Volume {
    let mut volume = acs::Volume {
        name: v.name.clone(),
        ..acs::Volume::default()
    };
    if let Some(d) = &v.docker_volume_configuration {
        volume.kind = Some("docker".into());
        volume.docker_volume_configuration = Some(acs::DockerVolumeConfiguration {
            // The agent treats any scope but `task` as shared; ECS's default is `task`.
            scope: Some(d.scope.clone().unwrap_or_else(|| "task".into())),
            autoprovision: d.autoprovision,
            driver: d.driver.clone(),
            driver_opts: d.driver_opts.clone(),
            labels: d.labels.clone(),
        });
    } else if let Some(e) = &v.efs_volume_configuration {
        // Passed through as the model has it; mounting it needs EFS, which Berth does
        // not provide yet, so the agent fails such a task when it sets the volume up.
        volume.kind = Some("efs".into());
        volume.efs_volume_configuration = Some(acs::EFSVolumeConfiguration {
            file_system_id: e.file_system_id.clone(),
            root_directory: e.root_directory.clone(),
            transit_encryption: e.transit_encryption.clone(),
            transit_encryption_port: e.transit_encryption_port.map(i64::from),
            authorization_config: e.authorization_config.as_ref().map(|a| {
                acs::EFSAuthorizationConfig {
                    access_point_id: a.access_point_id.clone(),
                    iam: a.iam.clone(),
                }
            }),
        });
    } else if let Some(f) = &v.fsx_windows_file_server_volume_configuration {
        volume.kind = Some("fsxWindowsFileServer".into());
        volume.fsx_windows_file_server_volume_configuration =
            Some(acs::FSxWindowsFileServerVolumeConfiguration {
                file_system_id: f.file_system_id.clone(),
                root_directory: f.root_directory.clone(),
                authorization_config: f.authorization_config.as_ref().map(|a| {
                    acs::FSxWindowsFileServerAuthorizationConfig {
                        credentials_parameter: a.credentials_parameter.clone(),
                        domain: a.domain.clone(),
                    }
                }),
            });
    } else if v.s3files_volume_configuration.is_some() || v.configured_at_launch == Some(true) {
        // No ACS shape for these: the name alone makes the agent refuse the volume, so the
        // task fails visibly instead of running on an empty scratch directory.
    } else {
        volume.kind = Some("host".into());
        volume.host = Some(acs::HostVolumeProperties {
            source_path: v.host.as_ref().and_then(|h| h.source_path.clone()),
        });
    }
    volume
}

/// ECR credentials for images in Berth's registry: the agent calls GetAuthorizationToken at
/// `endpointOverride` (taken as the SDK's base endpoint, `https://` added only when it has
/// no scheme; `agent/ecr/factory.go`), as `registryId` in `region`, with the task's
/// execution role credentials when the task has an execution role (`useExecutionRole`),
/// else with its own. Other images carry nothing and are pulled anonymously.
fn registry_authentication(
    ctx: &PayloadContext,
    image: &str,
    execution_role: bool,
) -> Option<acs::RegistryAuthenticationData> {
    let host = image_registry_host(image)?;
    if !host.eq_ignore_ascii_case(ctx.registry_host) {
        return None;
    }
    Some(acs::RegistryAuthenticationData {
        kind: Some(AUTH_TYPE_ECR.into()),
        ecr_auth_data: Some(acs::ECRAuthData {
            registry_id: Some(ctx.scope.account.to_string()),
            region: Some(ctx.scope.region.to_string()),
            endpoint_override: Some(ctx.endpoint.to_string()),
            use_execution_role: Some(execution_role),
        }),
        asm_auth_data: None,
    })
}

/// The registry an image reference names, as Docker reads it: the part before the first
/// `/` when it looks like a host (has a `.` or `:`, or is `localhost`); `None` for Docker
/// Hub images such as `nginx` or `library/nginx`.
fn image_registry_host(image: &str) -> Option<&str> {
    let (first, _) = image.split_once('/')?;
    (first.contains(['.', ':']) || first == "localhost").then_some(first)
}

/// The Docker Engine API documents for one container. The agent builds the create call
/// from ACS members (image, command, entry point, environment, exposed ports, links,
/// binds, port bindings, volumes-from, `Memory` from `memory`, `CpuShares` from `cpu`) and
/// then unmarshals `config` and `hostConfig` over it (`dockerConfig`/`dockerHostConfig` in
/// `agent/api/task/task.go`), so these carry only what it does not set, and never `Env`
/// (which would replace the environment it built).
fn docker_config(
    td: &TaskDefinition,
    c: &ContainerDefinition,
    memory: Option<i64>,
    memory_reservation: Option<i64>,
    network_mode: &str,
) -> acs::DockerConfig {
    let mut api = DockerApi::for_definition(td);
    let mut config = Map::new();
    let mut host = Map::new();

    set(&mut config, "Hostname", c.hostname.as_ref());
    set(&mut config, "User", c.user.as_ref());
    set(&mut config, "WorkingDir", c.working_directory.as_ref());
    set(
        &mut config,
        "NetworkDisabled",
        c.disable_networking.as_ref(),
    );
    set(&mut config, "OpenStdin", c.interactive.as_ref());
    set(&mut config, "Tty", c.pseudo_terminal.as_ref());
    if let Some(labels) = &c.docker_labels {
        config.insert("Labels".into(), json!(labels));
        api.needs(18);
    }
    if let Some(check) = &c.health_check {
        config.insert("Healthcheck".into(), docker_health_check(check));
        api.needs(if check.start_period.is_some() { 29 } else { 24 });
    }

    // awsvpc tasks join a pause container's namespace, which the agent sets itself.
    if network_mode != "awsvpc" {
        host.insert("NetworkMode".into(), json!(network_mode));
    }
    if let Some(reservation) = memory_reservation {
        host.insert(
            "MemoryReservation".into(),
            json!(reservation * BYTES_PER_MIB),
        );
        api.needs(21);
    }
    set(&mut host, "Privileged", c.privileged.as_ref());
    set(
        &mut host,
        "ReadonlyRootfs",
        c.readonly_root_filesystem.as_ref(),
    );
    set(&mut host, "Dns", c.dns_servers.as_ref());
    set(&mut host, "DnsSearch", c.dns_search_domains.as_ref());
    set(&mut host, "SecurityOpt", c.docker_security_options.as_ref());
    if let Some(hosts) = &c.extra_hosts {
        let entries: Vec<String> = hosts
            .iter()
            .map(|h| {
                let name = h.hostname.as_deref().unwrap_or_default();
                let ip = h.ip_address.as_deref().unwrap_or_default();
                format!("{name}:{ip}")
            })
            .collect();
        host.insert("ExtraHosts".into(), json!(entries));
    }
    if let Some(ulimits) = &c.ulimits {
        let ulimits: Vec<Value> = ulimits
            .iter()
            .map(|u| json!({"Name": u.name, "Soft": u.soft_limit, "Hard": u.hard_limit}))
            .collect();
        host.insert("Ulimits".into(), json!(ulimits));
        api.needs(18);
    }
    if let Some(log) = &c.log_configuration {
        // `secretOptions` need Secrets Manager or SSM and are not sent.
        let mut log_config = Map::new();
        set(&mut log_config, "Type", log.log_driver.as_ref());
        set(&mut log_config, "Config", log.options.as_ref());
        host.insert("LogConfig".into(), Value::Object(log_config));
        api.needs(if log.log_driver.as_deref() == Some("awslogs") {
            19
        } else {
            18
        });
    }
    if let Some(controls) = &c.system_controls
        && !controls.is_empty()
    {
        let sysctls: BTreeMap<&str, &str> = controls
            .iter()
            .filter_map(|s| Some((s.namespace.as_deref()?, s.value.as_deref().unwrap_or(""))))
            .collect();
        host.insert("Sysctls".into(), json!(sysctls));
        api.needs(24);
    }
    if let Some(p) = &c.linux_parameters {
        linux_host_config(&mut host, &mut api, p, memory);
    }

    acs::DockerConfig {
        version: Some(api.version()),
        config: Some(config)
            .filter(|m| !m.is_empty())
            .map(|m| Value::Object(m).to_string()),
        host_config: Some(host)
            .filter(|m| !m.is_empty())
            .map(|m| Value::Object(m).to_string()),
    }
}

/// `linuxParameters` as host-config members: the agent's container has no such field and
/// never turns the ACS member into Docker settings, so this is what takes effect.
fn linux_host_config(
    host: &mut Map<String, Value>,
    api: &mut DockerApi,
    p: &LinuxParameters,
    memory: Option<i64>,
) {
    if let Some(caps) = &p.capabilities {
        set(host, "CapAdd", caps.add.as_ref());
        set(host, "CapDrop", caps.drop.as_ref());
    }
    if let Some(devices) = &p.devices {
        let devices: Vec<Value> = devices
            .iter()
            .map(|d| {
                let on_host = d.host_path.as_deref().unwrap_or_default();
                let permissions = match &d.permissions {
                    Some(ps) if !ps.is_empty() => ps
                        .iter()
                        .filter_map(|p| p.chars().next())
                        .map(|c| match c {
                            'r' => 'r',
                            'w' => 'w',
                            _ => 'm',
                        })
                        .collect(),
                    _ => "rwm".to_string(),
                };
                json!({
                    "PathOnHost": on_host,
                    "PathInContainer": d.container_path.as_deref().unwrap_or(on_host),
                    "CgroupPermissions": permissions,
                })
            })
            .collect();
        host.insert("Devices".into(), json!(devices));
    }
    if let Some(init) = p.init_process_enabled {
        host.insert("Init".into(), json!(init));
        api.needs(25);
    }
    if let Some(size) = p.shared_memory_size {
        host.insert("ShmSize".into(), json!(i64::from(size) * BYTES_PER_MIB));
        api.needs(22);
    }
    if let Some(mounts) = &p.tmpfs {
        let mounts: BTreeMap<&str, String> = mounts
            .iter()
            .filter_map(|t| {
                let size = t.size.map(|mib| format!("size={mib}m"));
                let options: Vec<String> = size
                    .into_iter()
                    .chain(t.mount_options.iter().flatten().cloned())
                    .collect();
                Some((t.container_path.as_deref()?, options.join(",")))
            })
            .collect();
        host.insert("Tmpfs".into(), json!(mounts));
        api.needs(22);
    }
    if let Some(swappiness) = p.swappiness {
        host.insert("MemorySwappiness".into(), json!(swappiness));
        api.needs(20);
    }
    // Docker's MemorySwap is memory plus swap, and only valid beside a memory limit.
    if let (Some(swap), Some(memory)) = (p.max_swap, memory) {
        host.insert(
            "MemorySwap".into(),
            json!((memory + i64::from(swap)) * BYTES_PER_MIB),
        );
    }
}

/// Docker's `Healthcheck`: durations in nanoseconds, ECS's defaults where the definition
/// leaves them out (`startPeriod` has none: Docker's zero means no grace period).
fn docker_health_check(check: &HealthCheck) -> Value {
    let seconds = |v: Option<i32>, default: i64| v.map_or(default, i64::from) * NANOS_PER_SECOND;
    let mut doc = Map::new();
    doc.insert("Test".into(), json!(check.command));
    doc.insert(
        "Interval".into(),
        json!(seconds(check.interval, HEALTH_CHECK_INTERVAL)),
    );
    doc.insert(
        "Timeout".into(),
        json!(seconds(check.timeout, HEALTH_CHECK_TIMEOUT)),
    );
    doc.insert(
        "Retries".into(),
        json!(check.retries.map_or(HEALTH_CHECK_RETRIES, i64::from)),
    );
    if let Some(start) = check.start_period {
        doc.insert(
            "StartPeriod".into(),
            json!(i64::from(start) * NANOS_PER_SECOND),
        );
    }
    Value::Object(doc)
}

fn set<T: serde::Serialize>(doc: &mut Map<String, Value>, key: &str, value: Option<&T>) {
    if let Some(value) = value {
        doc.insert(key.into(), json!(value));
    }
}

/// The Docker Engine API version `dockerConfig.version` names: the lowest one that knows
/// every member the documents use (never below 1.17, the oldest the agent speaks). The
/// agent creates the container with a client of that version; recent agents raise it to the
/// daemon's minimum when it is lower (`GetSupportedDockerAPIVersion`,
/// `agent/dockerclient/versions.go`), so a low version costs nothing.
struct DockerApi {
    /// The minor version of 1.x.
    minor: u32,
}

impl DockerApi {
    /// The baseline a definition already demands of its instance through its
    /// `com.amazonaws.ecs.capability.docker-remote-api.1.N` required attributes.
    fn for_definition(td: &TaskDefinition) -> Self {
        let minor = td
            .requires_attributes
            .iter()
            .flatten()
            .filter_map(|a| a.name.as_deref()?.strip_prefix(REMOTE_API_ATTRIBUTE))
            .filter_map(|minor| minor.parse().ok())
            .fold(17, u32::max);
        DockerApi { minor }
    }

    fn needs(&mut self, minor: u32) {
        self.minor = self.minor.max(minor);
    }

    fn version(&self) -> String {
        format!("1.{}", self.minor)
    }
}

#[cfg(test)]
mod tests;
