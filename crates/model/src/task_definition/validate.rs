//! RegisterTaskDefinition validation in the order ECS applies it, the launch types a
//! definition is compatible with, the container-instance attributes it requires, and the
//! stored form of a registered revision.

use std::collections::{HashMap, HashSet};

use super::{
    Attribute, Compatibility, ContainerDefinition, HealthCheckField, MAX_CONTAINERS, NetworkMode,
    RegisterTaskDefinitionRequest, TaskDefinition, TaskDefinitionError, TaskDefinitionStatus,
    parse_cpu, parse_memory,
};

type Result<T> = std::result::Result<T, TaskDefinitionError>;

/// Longest family or container name ECS accepts.
const MAX_NAME_LEN: usize = 255;
/// Docker 20.10 and later reserve 6 MiB per container; ECS documents this as the floor.
const MIN_CONTAINER_MEMORY_MIB: i32 = 6;
/// Ephemeral storage bounds on Fargate, in GiB.
const EPHEMERAL_STORAGE_GIB: std::ops::RangeInclusive<i32> = 21..=200;

const EC2_LOG_DRIVERS: &[&str] = &[
    "awslogs",
    "fluentd",
    "gelf",
    "json-file",
    "journald",
    "logentries",
    "splunk",
    "syslog",
    "awsfirelens",
];
const EC2_LOG_DRIVER_LIST: &str =
    "awslogs, fluentd, gelf, json-file, journald, logentries, splunk, syslog, awsfirelens";
const FARGATE_LOG_DRIVERS: &[&str] = &["awslogs", "splunk", "awsfirelens"];
const FARGATE_LOG_DRIVER_LIST: &str = "awslogs, splunk, awsfirelens";

/// Health-check bounds from the ECS API reference (HealthCheck).
const HEALTH_CHECK_BOUNDS: [(HealthCheckField, i32, i32); 4] = [
    (HealthCheckField::Interval, 5, 300),
    (HealthCheckField::Timeout, 2, 120),
    (HealthCheckField::Retries, 1, 10),
    (HealthCheckField::StartPeriod, 0, 300),
];

/// The request after the checks every later rule relies on: names, counts, units, enums.
struct Parsed<'a> {
    req: &'a RegisterTaskDefinitionRequest,
    containers: &'a [ContainerDefinition],
    /// Container name to index; names are unique once parsed.
    index: HashMap<&'a str, usize>,
    network_mode: NetworkMode,
    cpu: Option<u32>,
    memory: Option<u32>,
    /// `requiresCompatibilities`, or EC2 when none is given: ECS validates against EC2 then.
    targets: Vec<Compatibility>,
}

/// Validates a RegisterTaskDefinition request as ECS does, returning the first rule broken.
pub fn validate(req: &RegisterTaskDefinitionRequest) -> Result<()> {
    let p = parse(req)?;
    // ECS answers a Fargate definition's sizing before anything about its containers.
    if p.targets.contains(&Compatibility::Fargate) {
        check_fargate_size(&p)?;
    }
    check_volumes(&p)?;
    for container in p.containers {
        check_container(&p, container)?;
    }
    check_host_ports(&p)?;
    check_links(&p)?;
    if !p.containers.iter().any(ContainerDefinition::is_essential) {
        return Err(TaskDefinitionError::NoEssentialContainer);
    }
    check_dependencies(&p)?;
    check_task_resources(&p)?;
    if let Some(size) = p.req.ephemeral_storage.as_ref().and_then(|e| e.size_in_gib)
        && !EPHEMERAL_STORAGE_GIB.contains(&size)
    {
        return Err(TaskDefinitionError::EphemeralStorageSize(size));
    }
    if p.req.ephemeral_storage.is_some() && !p.targets.contains(&Compatibility::Fargate) {
        return Err(TaskDefinitionError::EphemeralStorageRequiresFargate);
    }
    for target in &p.targets {
        check_launch_type(&p, *target)?;
    }
    Ok(())
}

/// The launch types ECS reports in `compatibilities`: every one whose rules the definition
/// satisfies, whatever `requiresCompatibilities` asked for. Order as ECS returns them
/// (`["EXTERNAL", "EC2"]` for a bridge definition, `["EC2", "FARGATE"]` for a Fargate one).
/// Empty for a request that does not validate.
pub fn compatibilities(req: &RegisterTaskDefinitionRequest) -> Vec<String> {
    let Ok(p) = parse(req) else {
        return Vec::new();
    };
    [
        Compatibility::External,
        Compatibility::Ec2,
        Compatibility::Fargate,
    ]
    .into_iter()
    .filter(|target| {
        let size = match target {
            Compatibility::Fargate => check_fargate_size(&p),
            _ => Ok(()),
        };
        size.and_then(|()| check_launch_type(&p, *target)).is_ok()
    })
    .map(|target| target.as_str().to_string())
    .collect()
}

/// The container-instance attributes ECS adds to `requiresAttributes` for the features a
/// definition uses (the common ones: logging drivers, task roles, awsvpc, health checks,
/// container ordering, secrets, private registries, EFS, FireLens, env files, docker volumes).
pub fn requires_attributes(req: &RegisterTaskDefinitionRequest) -> Vec<Attribute> {
    let mut names: Vec<String> = Vec::new();
    let mut add = |name: &str| {
        if !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    };
    let containers = req.container_definitions.as_deref().unwrap_or_default();
    let has_execution_role = non_empty(req.execution_role_arn.as_deref());
    for c in containers {
        if let Some(driver) = c
            .log_configuration
            .as_ref()
            .and_then(|l| l.log_driver.as_deref())
        {
            add(&format!(
                "com.amazonaws.ecs.capability.logging-driver.{driver}"
            ));
            // Log drivers need Docker Remote API 1.18; awslogs itself arrived with 1.19.
            add(if driver == "awslogs" {
                "com.amazonaws.ecs.capability.docker-remote-api.1.19"
            } else {
                "com.amazonaws.ecs.capability.docker-remote-api.1.18"
            });
            if driver == "awslogs" && has_execution_role {
                add("ecs.capability.execution-role-awslogs");
            }
        }
        if c.memory_reservation.is_some() {
            add("com.amazonaws.ecs.capability.docker-remote-api.1.21");
        }
        if c.health_check.is_some() {
            add("ecs.capability.container-health-check");
        }
        if c.depends_on.as_ref().is_some_and(|d| !d.is_empty())
            || c.start_timeout.is_some()
            || c.stop_timeout.is_some()
        {
            add("ecs.capability.container-ordering");
        }
        if let Some(image) = c.image.as_deref()
            && is_ecr_image(image)
        {
            add("com.amazonaws.ecs.capability.ecr-auth");
            if has_execution_role {
                add("ecs.capability.execution-role-ecr-pull");
            }
        }
        if c.repository_credentials.is_some() {
            add("com.amazonaws.ecs.capability.private-registry-authentication.secretsmanager");
        }
        let secrets = c.secrets.iter().flatten().chain(
            c.log_configuration
                .iter()
                .flat_map(|l| l.secret_options.iter().flatten()),
        );
        for secret in secrets {
            let from = secret.value_from.as_deref().unwrap_or_default();
            add(if from.contains(":secretsmanager:") {
                "ecs.capability.secrets.asm.environment-variables"
            } else {
                "ecs.capability.secrets.ssm.environment-variables"
            });
        }
        if let Some(kind) = c
            .firelens_configuration
            .as_ref()
            .and_then(|f| f.r#type.as_deref())
        {
            add(&format!("ecs.capability.firelens.{kind}"));
        }
        if c.environment_files.as_ref().is_some_and(|f| !f.is_empty()) {
            add("ecs.capability.env-files.s3");
        }
    }
    if non_empty(req.task_role_arn.as_deref()) {
        add("com.amazonaws.ecs.capability.task-iam-role");
    }
    if req.network_mode.as_deref() == Some("awsvpc") {
        add("com.amazonaws.ecs.capability.docker-remote-api.1.18");
        add("ecs.capability.task-eni");
    }
    for volume in req.volumes.iter().flatten() {
        if volume.efs_volume_configuration.is_some() {
            add("ecs.capability.efs");
        }
        if let Some(docker) = &volume.docker_volume_configuration {
            add("com.amazonaws.ecs.capability.docker-remote-api.1.25");
            let driver = docker.driver.as_deref().unwrap_or("local");
            add(&format!("ecs.capability.docker-plugin.{driver}"));
        }
    }
    names
        .into_iter()
        .map(|name| Attribute {
            name: Some(name),
            ..Attribute::default()
        })
        .collect()
}

/// What the API layer knows about a registration that the request does not carry.
#[derive(Debug, Clone, PartialEq)]
pub struct Registration {
    pub task_definition_arn: String,
    pub revision: i32,
    /// Epoch seconds.
    pub registered_at: f64,
    pub registered_by: Option<String>,
}

impl TaskDefinition {
    /// Validates `req` and builds the revision ECS would store and return: cpu and memory as
    /// integer strings, container defaults filled in (`cpu` 0, `essential` true, port
    /// mappings with protocol and host port, empty lists where ECS returns them), status
    /// ACTIVE, and the computed `compatibilities` and `requiresAttributes`.
    pub fn register(req: &RegisterTaskDefinitionRequest, at: Registration) -> Result<Self> {
        validate(req)?;
        let p = parse(req)?;
        let containers = p
            .containers
            .iter()
            .map(|c| normalize_container(c, p.network_mode))
            .collect();
        Ok(TaskDefinition {
            task_definition_arn: Some(at.task_definition_arn),
            container_definitions: Some(containers),
            family: req.family.clone(),
            task_role_arn: req.task_role_arn.clone(),
            execution_role_arn: req.execution_role_arn.clone(),
            network_mode: req.network_mode.clone(),
            revision: Some(at.revision),
            volumes: Some(req.volumes.clone().unwrap_or_default()),
            status: Some(TaskDefinitionStatus::Active),
            requires_attributes: Some(requires_attributes(req)),
            placement_constraints: Some(req.placement_constraints.clone().unwrap_or_default()),
            compatibilities: Some(compatibilities(req)),
            runtime_platform: req.runtime_platform.clone(),
            requires_compatibilities: req.requires_compatibilities.clone(),
            cpu: p.cpu.map(|v| v.to_string()),
            memory: p.memory.map(|v| v.to_string()),
            inference_accelerators: req.inference_accelerators.clone(),
            pid_mode: req.pid_mode.clone(),
            ipc_mode: req.ipc_mode.clone(),
            proxy_configuration: req.proxy_configuration.clone(),
            registered_at: Some(at.registered_at),
            deregistered_at: None,
            delete_requested_at: None,
            registered_by: at.registered_by,
            ephemeral_storage: req.ephemeral_storage.clone(),
            enable_fault_injection: req.enable_fault_injection,
        })
    }
}

fn normalize_container(c: &ContainerDefinition, mode: NetworkMode) -> ContainerDefinition {
    let mut c = c.clone();
    c.cpu = Some(c.cpu.unwrap_or(0));
    c.essential = Some(c.is_essential());
    let mut mappings = c.port_mappings.take().unwrap_or_default();
    for m in &mut mappings {
        if m.protocol.is_none() {
            m.protocol = Some("tcp".to_string());
        }
        if m.host_port.is_none() && m.container_port_range.is_none() {
            // awsvpc and host share the port with the host; bridge asks for a dynamic one.
            m.host_port = match mode {
                NetworkMode::Awsvpc | NetworkMode::Host => m.container_port,
                NetworkMode::Bridge | NetworkMode::None => Some(0),
            };
        }
    }
    c.port_mappings = Some(mappings);
    c.environment.get_or_insert_with(Vec::new);
    c.mount_points.get_or_insert_with(Vec::new);
    c.volumes_from.get_or_insert_with(Vec::new);
    c.system_controls.get_or_insert_with(Vec::new);
    c
}

fn parse(req: &RegisterTaskDefinitionRequest) -> Result<Parsed<'_>> {
    match req.family.as_deref() {
        None | Some("") => return Err(TaskDefinitionError::FamilyBlank),
        Some(family) if !is_valid_name(family) => return Err(TaskDefinitionError::FamilyInvalid),
        Some(_) => {}
    }
    let containers = req.container_definitions.as_deref().unwrap_or_default();
    if containers.is_empty() {
        return Err(TaskDefinitionError::ContainerListEmpty);
    }
    if containers.len() > MAX_CONTAINERS {
        return Err(TaskDefinitionError::TooManyContainers);
    }
    let mut index = HashMap::new();
    for (i, c) in containers.iter().enumerate() {
        let name = match c.name.as_deref() {
            None | Some("") => return Err(TaskDefinitionError::ContainerNameBlank),
            Some(name) if !is_valid_name(name) => {
                return Err(TaskDefinitionError::ContainerNameInvalid);
            }
            Some(name) => name,
        };
        if index.insert(name, i).is_some() {
            return Err(TaskDefinitionError::DuplicateContainerName);
        }
        if !non_empty(c.image.as_deref()) {
            return Err(TaskDefinitionError::ImageBlank);
        }
    }
    let cpu = match req.cpu.as_deref() {
        None => None,
        Some(s) => Some(parse_cpu(s).ok_or(TaskDefinitionError::InvalidTaskCpu)?),
    };
    let memory = match req.memory.as_deref() {
        None => None,
        Some(s) => Some(parse_memory(s).ok_or(TaskDefinitionError::InvalidTaskMemory)?),
    };
    let network_mode = match req.network_mode.as_deref() {
        None => NetworkMode::Bridge,
        Some(s) => NetworkMode::parse(s)
            .ok_or_else(|| TaskDefinitionError::InvalidNetworkMode(s.to_string()))?,
    };
    let mut targets = Vec::new();
    for value in req.requires_compatibilities.iter().flatten() {
        let target = Compatibility::parse(value)
            .ok_or_else(|| TaskDefinitionError::InvalidCompatibility(value.clone()))?;
        if !targets.contains(&target) {
            targets.push(target);
        }
    }
    if targets.is_empty() {
        targets.push(Compatibility::Ec2);
    }
    Ok(Parsed {
        req,
        containers,
        index,
        network_mode,
        cpu,
        memory,
        targets,
    })
}

/// Family and container names: 1 to 255 letters, digits, hyphens and underscores.
fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn non_empty(value: Option<&str>) -> bool {
    value.is_some_and(|v| !v.is_empty())
}

/// `<account>.dkr.ecr.<region>.amazonaws.com[.cn]/...`
fn is_ecr_image(image: &str) -> bool {
    image
        .split('/')
        .next()
        .is_some_and(|host| host.contains(".dkr.ecr.") && host.contains(".amazonaws.com"))
}

/// The Fargate task sizes (ECS developer guide, "Task CPU and memory").
fn is_fargate_size(cpu: u32, memory: u32) -> bool {
    let steps = |min: u32, max: u32, step: u32| {
        (min..=max).contains(&memory) && memory.is_multiple_of(step)
    };
    match cpu {
        256 => matches!(memory, 512 | 1024 | 2048),
        512 => steps(1024, 4096, 1024),
        1024 => steps(2048, 8192, 1024),
        2048 => steps(4096, 16384, 1024),
        4096 => steps(8192, 30720, 1024),
        8192 => steps(16384, 61440, 4096),
        16384 => steps(32768, 122880, 8192),
        _ => false,
    }
}

fn check_fargate_size(p: &Parsed<'_>) -> Result<()> {
    if p.network_mode != NetworkMode::Awsvpc {
        return Err(TaskDefinitionError::FargateNetworkMode);
    }
    let cpu = p.cpu.ok_or(TaskDefinitionError::FargateCpuRequired)?;
    let memory = p.memory.ok_or(TaskDefinitionError::FargateMemoryRequired)?;
    if !is_fargate_size(cpu, memory) {
        return Err(TaskDefinitionError::NoFargateConfiguration { cpu, memory });
    }
    Ok(())
}

/// Rules that depend on where the task runs, after the rules common to all launch types.
fn check_launch_type(p: &Parsed<'_>, target: Compatibility) -> Result<()> {
    match target {
        Compatibility::Fargate => check_fargate_features(p),
        Compatibility::Ec2 => {
            if p.req.ephemeral_storage.is_some() {
                return Err(TaskDefinitionError::EphemeralStorageRequiresFargate);
            }
            Ok(())
        }
        Compatibility::External => check_external(p),
    }
}

/// What Fargate cannot run: anything that needs the host (privileged containers, devices,
/// host paths, host IPC/PID) or a feature Fargate does not offer.
fn check_fargate_features(p: &Parsed<'_>) -> Result<()> {
    use TaskDefinitionError::{FargateUnsupported, InvalidLogDriver};
    let req = p.req;
    if req
        .placement_constraints
        .as_ref()
        .is_some_and(|c| !c.is_empty())
    {
        return Err(TaskDefinitionError::FargatePlacementConstraints);
    }
    if req.ipc_mode.is_some() {
        return Err(FargateUnsupported("ipcMode"));
    }
    if req.pid_mode.as_deref() == Some("host") {
        return Err(TaskDefinitionError::FargatePidModeHost);
    }
    if req
        .inference_accelerators
        .as_ref()
        .is_some_and(|a| !a.is_empty())
    {
        return Err(FargateUnsupported("inferenceAccelerators"));
    }
    for volume in req.volumes.iter().flatten() {
        if volume
            .host
            .as_ref()
            .is_some_and(|h| non_empty(h.source_path.as_deref()))
        {
            return Err(TaskDefinitionError::FargateHostSourcePath);
        }
        if volume.docker_volume_configuration.is_some() {
            return Err(FargateUnsupported("dockerVolumeConfiguration"));
        }
    }
    for c in p.containers {
        if c.privileged == Some(true) {
            return Err(FargateUnsupported("privileged"));
        }
        if let Some(linux) = &c.linux_parameters {
            if linux.devices.as_ref().is_some_and(|d| !d.is_empty()) {
                return Err(FargateUnsupported("devices"));
            }
            if linux.shared_memory_size.is_some() {
                return Err(FargateUnsupported("sharedMemorySize"));
            }
            if linux.tmpfs.as_ref().is_some_and(|t| !t.is_empty()) {
                return Err(FargateUnsupported("tmpfs"));
            }
            if linux.max_swap.is_some() || linux.swappiness.is_some() {
                return Err(FargateUnsupported("maxSwap or swappiness"));
            }
            let added = linux.capabilities.as_ref().and_then(|k| k.add.as_ref());
            if added.into_iter().flatten().any(|cap| cap != "SYS_PTRACE") {
                return Err(FargateUnsupported(
                    "adding Linux capabilities other than SYS_PTRACE",
                ));
            }
        }
        if c.resource_requirements
            .iter()
            .flatten()
            .any(|r| r.r#type.as_deref() == Some("GPU"))
        {
            return Err(FargateUnsupported("GPU resource requirements"));
        }
        if let Some(log) = &c.log_configuration {
            let driver = log.log_driver.as_deref().unwrap_or("null");
            if !FARGATE_LOG_DRIVERS.contains(&driver) {
                return Err(InvalidLogDriver(
                    driver.to_string(),
                    FARGATE_LOG_DRIVER_LIST,
                ));
            }
            if driver == "awslogs" && !non_empty(req.execution_role_arn.as_deref()) {
                return Err(TaskDefinitionError::FargateAwslogsExecutionRole);
            }
        }
    }
    Ok(())
}

/// ECS Anywhere runs bridge, host and none networking on the customer's own machines, with
/// no ENIs, EFS/FSx mounts, App Mesh proxy, Elastic Inference or Fargate storage.
fn check_external(p: &Parsed<'_>) -> Result<()> {
    use TaskDefinitionError::LaunchTypeUnsupported;
    let req = p.req;
    if p.network_mode == NetworkMode::Awsvpc {
        return Err(LaunchTypeUnsupported("EXTERNAL", "networkMode awsvpc"));
    }
    for volume in req.volumes.iter().flatten() {
        if volume.efs_volume_configuration.is_some() {
            return Err(LaunchTypeUnsupported("EXTERNAL", "efsVolumeConfiguration"));
        }
        if volume
            .fsx_windows_file_server_volume_configuration
            .is_some()
        {
            return Err(LaunchTypeUnsupported(
                "EXTERNAL",
                "fsxWindowsFileServerVolumeConfiguration",
            ));
        }
    }
    if req.proxy_configuration.is_some() {
        return Err(LaunchTypeUnsupported("EXTERNAL", "proxyConfiguration"));
    }
    if req
        .inference_accelerators
        .as_ref()
        .is_some_and(|a| !a.is_empty())
    {
        return Err(LaunchTypeUnsupported("EXTERNAL", "inferenceAccelerators"));
    }
    if req.ephemeral_storage.is_some() {
        return Err(TaskDefinitionError::EphemeralStorageRequiresFargate);
    }
    Ok(())
}

fn check_volumes(p: &Parsed<'_>) -> Result<()> {
    let mut seen = HashSet::new();
    for volume in p.req.volumes.iter().flatten() {
        let name = volume.name.as_deref().unwrap_or_default();
        if name.is_empty() {
            return Err(TaskDefinitionError::VolumeNameBlank);
        }
        if !seen.insert(name) {
            return Err(TaskDefinitionError::DuplicateVolumeName);
        }
    }
    Ok(())
}

fn check_container(p: &Parsed<'_>, c: &ContainerDefinition) -> Result<()> {
    let name = c.name_str();
    check_container_memory(p, c)?;
    if c.cpu.is_some_and(|cpu| cpu < 0) {
        return Err(TaskDefinitionError::ContainerCpuNegative(name.to_string()));
    }
    check_port_mappings(p, c)?;
    if c.links.as_ref().is_some_and(|l| !l.is_empty()) && p.network_mode != NetworkMode::Bridge {
        return Err(TaskDefinitionError::LinksNotSupported(p.network_mode));
    }
    if p.network_mode == NetworkMode::Awsvpc {
        if c.hostname.is_some() {
            return Err(TaskDefinitionError::HostnameNotSupported);
        }
        if c.extra_hosts.as_ref().is_some_and(|h| !h.is_empty()) {
            return Err(TaskDefinitionError::ExtraHostsNotSupported);
        }
    }
    if let Some(check) = &c.health_check {
        check_health_check(name, check)?;
    }
    if let Some(log) = &c.log_configuration {
        let driver = log.log_driver.as_deref().unwrap_or("null");
        if !EC2_LOG_DRIVERS.contains(&driver) {
            return Err(TaskDefinitionError::InvalidLogDriver(
                driver.to_string(),
                EC2_LOG_DRIVER_LIST,
            ));
        }
        if driver == "awslogs" {
            let options = log.options.as_ref();
            let missing: Vec<&str> = ["awslogs-region", "awslogs-group"]
                .into_iter()
                .filter(|key| options.is_none_or(|o| o.get(*key).is_none_or(|v| v.is_empty())))
                .collect();
            if !missing.is_empty() {
                return Err(TaskDefinitionError::AwslogsOptionsMissing(
                    missing.join(", "),
                ));
            }
        }
    }
    for mount in c.mount_points.iter().flatten() {
        let source = mount.source_volume.as_deref().unwrap_or_default();
        let known = p
            .req
            .volumes
            .iter()
            .flatten()
            .any(|v| v.name.as_deref() == Some(source));
        if !known {
            // ECS prints a missing name as 'null'.
            let shown = mount
                .source_volume
                .clone()
                .unwrap_or_else(|| "null".to_string());
            return Err(TaskDefinitionError::UnknownVolume(shown));
        }
    }
    for from in c.volumes_from.iter().flatten() {
        let source = from.source_container.as_deref().unwrap_or_default();
        if source == name || !p.index.contains_key(source) {
            return Err(TaskDefinitionError::UnknownVolumesFromContainer {
                container: name.to_string(),
                source_container: source.to_string(),
            });
        }
    }
    Ok(())
}

fn check_container_memory(p: &Parsed<'_>, c: &ContainerDefinition) -> Result<()> {
    let name = || c.name_str().to_string();
    if p.memory.is_none() && c.memory.is_none() && c.memory_reservation.is_none() {
        return Err(TaskDefinitionError::MemoryRequired(name()));
    }
    if c.memory.is_some_and(|m| m < MIN_CONTAINER_MEMORY_MIB) {
        return Err(TaskDefinitionError::ContainerMemoryTooSmall(name()));
    }
    if c.memory_reservation.is_some_and(|r| r <= 0) {
        return Err(TaskDefinitionError::ContainerMemoryReservationInvalid(
            name(),
        ));
    }
    if let (Some(memory), Some(reservation)) = (c.memory, c.memory_reservation)
        && reservation > memory
    {
        return Err(TaskDefinitionError::MemoryReservationExceedsMemory(name()));
    }
    Ok(())
}

fn check_port_mappings(p: &Parsed<'_>, c: &ContainerDefinition) -> Result<()> {
    let name = || c.name_str().to_string();
    for m in c.port_mappings.iter().flatten() {
        let protocol = m.protocol.as_deref().unwrap_or("tcp");
        if protocol != "tcp" && protocol != "udp" {
            return Err(TaskDefinitionError::InvalidProtocol {
                container: name(),
                protocol: protocol.to_string(),
            });
        }
        // A port range (containerPortRange) stands in for containerPort.
        let port_required = m.container_port_range.is_none();
        match m.container_port {
            Some(port) if !(1..=65535).contains(&port) => {
                return Err(TaskDefinitionError::InvalidContainerPort(name()));
            }
            None if port_required => {
                return Err(TaskDefinitionError::InvalidContainerPort(name()));
            }
            _ => {}
        }
        if let Some(host) = m.host_port {
            if !(0..=65535).contains(&host) {
                return Err(TaskDefinitionError::InvalidHostPort(name()));
            }
            let shares_host_ports =
                matches!(p.network_mode, NetworkMode::Awsvpc | NetworkMode::Host);
            if shares_host_ports && Some(host) != m.container_port {
                return Err(TaskDefinitionError::HostPortMismatch(p.network_mode));
            }
        }
    }
    Ok(())
}

/// In awsvpc and host mode every container's ports live in one namespace, so one host port
/// per protocol can be mapped once in the whole task.
fn check_host_ports(p: &Parsed<'_>) -> Result<()> {
    if !matches!(p.network_mode, NetworkMode::Awsvpc | NetworkMode::Host) {
        return Ok(());
    }
    let mut seen = HashSet::new();
    for m in p
        .containers
        .iter()
        .flat_map(|c| c.port_mappings.iter().flatten())
    {
        let Some(port) = m.host_port.or(m.container_port) else {
            continue;
        };
        let protocol = m.protocol.as_deref().unwrap_or("tcp");
        if !seen.insert((port, protocol)) {
            return Err(TaskDefinitionError::DuplicateHostPort {
                port,
                protocol: protocol.to_string(),
            });
        }
    }
    Ok(())
}

fn check_health_check(container: &str, check: &super::HealthCheck) -> Result<()> {
    let command = check.command.as_deref().unwrap_or_default();
    let Some(first) = command.first() else {
        return Err(TaskDefinitionError::HealthCheckCommandEmpty(
            container.to_string(),
        ));
    };
    if first != "CMD" && first != "CMD-SHELL" {
        return Err(TaskDefinitionError::HealthCheckCommandPrefix(
            container.to_string(),
        ));
    }
    for (field, min, max) in HEALTH_CHECK_BOUNDS {
        let value = match field {
            HealthCheckField::Interval => check.interval,
            HealthCheckField::Timeout => check.timeout,
            HealthCheckField::Retries => check.retries,
            HealthCheckField::StartPeriod => check.start_period,
        };
        let Some(value) = value else { continue };
        if value > max {
            return Err(TaskDefinitionError::HealthCheckAboveMax {
                field,
                max,
                container: container.to_string(),
            });
        }
        if value < min {
            return Err(TaskDefinitionError::HealthCheckBelowMin {
                field,
                min,
                container: container.to_string(),
            });
        }
    }
    Ok(())
}

/// Links are `name` or `name:alias` and must name a container of this task, without cycles.
fn check_links(p: &Parsed<'_>) -> Result<()> {
    let mut edges = vec![Vec::new(); p.containers.len()];
    for (i, c) in p.containers.iter().enumerate() {
        for link in c.links.iter().flatten() {
            let target = link.split(':').next().unwrap_or_default();
            let Some(&j) = p.index.get(target) else {
                return Err(TaskDefinitionError::UnknownLink {
                    container: c.name_str().to_string(),
                    link: link.clone(),
                });
            };
            edges[i].push(j);
        }
    }
    if has_cycle(&edges) {
        return Err(TaskDefinitionError::LinkCycle);
    }
    Ok(())
}

fn check_dependencies(p: &Parsed<'_>) -> Result<()> {
    let mut edges = vec![Vec::new(); p.containers.len()];
    for (i, c) in p.containers.iter().enumerate() {
        for dep in c.depends_on.iter().flatten() {
            let target_name = match dep.container_name.as_deref() {
                None | Some("") => return Err(TaskDefinitionError::DependencyNameBlank),
                Some(name) => name,
            };
            let Some(&j) = p.index.get(target_name) else {
                return Err(TaskDefinitionError::UnknownDependency(
                    target_name.to_string(),
                ));
            };
            let target = &p.containers[j];
            match dep.condition.as_deref().unwrap_or("null") {
                "START" => {}
                "COMPLETE" | "SUCCESS" => {
                    if target.is_essential() {
                        return Err(TaskDefinitionError::EssentialDependencyCompletes);
                    }
                }
                "HEALTHY" => {
                    if target.health_check.is_none() {
                        return Err(TaskDefinitionError::HealthyDependencyWithoutHealthCheck);
                    }
                }
                other => {
                    return Err(TaskDefinitionError::InvalidDependencyCondition(
                        other.to_string(),
                    ));
                }
            }
            edges[i].push(j);
        }
    }
    if has_cycle(&edges) {
        return Err(TaskDefinitionError::DependencyCycle);
    }
    Ok(())
}

/// Container-level reservations must fit in the task-level cpu and memory when those are set.
fn check_task_resources(p: &Parsed<'_>) -> Result<()> {
    if let Some(task_cpu) = p.cpu {
        let total: i64 = p
            .containers
            .iter()
            .map(|c| i64::from(c.cpu.unwrap_or(0)))
            .sum();
        if total > i64::from(task_cpu) {
            return Err(TaskDefinitionError::SumCpuExceedsTask);
        }
    }
    if let Some(task_memory) = p.memory {
        let task_memory = i64::from(task_memory);
        for c in p.containers {
            if c.memory.is_some_and(|m| i64::from(m) > task_memory) {
                return Err(TaskDefinitionError::ContainerMemoryExceedsTask(
                    c.name_str().to_string(),
                ));
            }
        }
        // What a container reserves: its soft limit if it has one, else its hard limit.
        let total: i64 = p
            .containers
            .iter()
            .filter_map(|c| c.memory_reservation.or(c.memory))
            .map(i64::from)
            .sum();
        if total > task_memory {
            let any_reservation = p.containers.iter().any(|c| c.memory_reservation.is_some());
            return Err(if any_reservation {
                TaskDefinitionError::SumMemoryReservationExceedsTask
            } else {
                TaskDefinitionError::SumMemoryExceedsTask
            });
        }
    }
    Ok(())
}

/// Whether the directed graph (adjacency lists) has a cycle, self-loops included.
fn has_cycle(edges: &[Vec<usize>]) -> bool {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    let mut marks = vec![Mark::New; edges.len()];
    for start in 0..edges.len() {
        if marks[start] != Mark::New {
            continue;
        }
        // Iterative DFS: (node, next edge to follow).
        let mut stack = vec![(start, 0usize)];
        marks[start] = Mark::OnPath;
        while let Some((node, next)) = stack.last_mut() {
            if let Some(&to) = edges[*node].get(*next) {
                *next += 1;
                match marks[to] {
                    Mark::OnPath => return true,
                    Mark::New => {
                        marks[to] = Mark::OnPath;
                        stack.push((to, 0));
                    }
                    Mark::Done => {}
                }
            } else {
                marks[*node] = Mark::Done;
                stack.pop();
            }
        }
    }
    false
}

#[cfg(test)]
mod tests;
