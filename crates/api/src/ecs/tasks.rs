//! Tasks: RunTask, StartTask, StopTask, DescribeTasks, ListTasks, and the agent's
//! SubmitTaskStateChange.

use berth_ecs::{CapacityProviderStrategyItem, EcsError, EcsTag};
use serde::{Deserialize, Serialize};

use super::{Failure, ecs_error};
use crate::protocol::{AwsContext, AwsError};
use berth_agent_protocol::calls::TaskStateChange;
use berth_model::ecs::{
    DesiredStatus, EcsArn, HealthStatus, LaunchType, StopCode, TaskOverride, TaskStatus,
};

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskWire {
    pub task_arn: String,
    pub cluster_arn: String,
    pub task_definition_arn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_instance_arn: Option<String>,
    pub overrides: TaskOverride,
    pub last_status: TaskStatus,
    pub desired_status: DesiredStatus,
    pub cpu: String,
    pub memory: String,
    pub containers: Vec<berth_ecs::TaskContainer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_by: Option<String>,
    pub version: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_code: Option<StopCode>,
    pub created_at: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull_started_at: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull_stopped_at: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopping_at: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_stopped_at: Option<f64>,
    pub group: String,
    pub launch_type: LaunchType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity_provider_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform_family: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ephemeral_storage: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_status: Option<HealthStatus>,
    pub attachments: Vec<berth_ecs::Attachment>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<EcsTag>>,
}

pub(super) fn task_wire(ctx: &AwsContext, t: berth_ecs::Task, with_tags: bool) -> TaskWire {
    let fargate = t.is_fargate();
    let (last_status, desired_status) = (t.shown_last_status(), t.shown_desired_status());
    TaskWire {
        task_arn: t.arn(&ctx.scope),
        cluster_arn: EcsArn::cluster(&ctx.scope, &t.cluster).into_string(),
        task_definition_arn: t.task_definition_arn,
        // A Fargate task runs on the platform's capacity: no container instance to show.
        container_instance_arn: t
            .container_instance_id
            .filter(|_| !fargate)
            .map(|id| EcsArn::container_instance(&ctx.scope, &t.cluster, &id).into_string()),
        platform_family: fargate.then(|| "Linux".to_string()),
        // ECS shows both override lists, empty, on a task run without overrides.
        overrides: t.overrides.unwrap_or_default(),
        last_status,
        desired_status,
        cpu: t.cpu,
        memory: t.memory,
        containers: t.containers,
        started_by: t.started_by,
        version: t.version,
        stopped_reason: t.stopped_reason,
        stop_code: t.stop_code,
        created_at: t.created_at,
        pull_started_at: t.pull_started_at,
        pull_stopped_at: t.pull_stopped_at,
        started_at: t.started_at,
        stopping_at: t.stopping_at,
        stopped_at: t.stopped_at,
        execution_stopped_at: t.execution_stopped_at,
        group: t.group,
        launch_type: t.launch_type,
        capacity_provider_name: t.capacity_provider_name,
        platform_version: t.platform_version,
        ephemeral_storage: t
            .ephemeral_storage_gib
            .map(|size| serde_json::json!({ "sizeInGiB": size })),
        availability_zone: t.availability_zone,
        health_status: t.health_status,
        attachments: t.attachments,
        tags: with_tags.then_some(t.tags),
    }
}

#[derive(Debug, Deserialize)]
pub struct PlacementConstraintWire {
    #[serde(rename = "type")]
    pub kind: String,
    pub expression: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct PlacementStrategyWire {
    #[serde(rename = "type")]
    pub kind: String,
    pub field: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunTaskRequest {
    pub cluster: Option<String>,
    pub task_definition: String,
    pub count: Option<u32>,
    pub group: Option<String>,
    pub started_by: Option<String>,
    pub launch_type: Option<String>,
    pub capacity_provider_strategy: Option<Vec<CapacityProviderStrategyItem>>,
    pub platform_version: Option<String>,
    #[serde(default)]
    pub placement_constraints: Vec<PlacementConstraintWire>,
    #[serde(default)]
    pub placement_strategy: Vec<PlacementStrategyWire>,
    pub overrides: Option<TaskOverride>,
    #[serde(default)]
    pub tags: Vec<EcsTag>,
    pub client_token: Option<String>,
    pub network_configuration: Option<berth_ecs::NetworkConfiguration>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartTaskRequest {
    pub cluster: Option<String>,
    pub task_definition: String,
    pub container_instances: Vec<String>,
    pub group: Option<String>,
    pub started_by: Option<String>,
    pub overrides: Option<TaskOverride>,
    #[serde(default)]
    pub tags: Vec<EcsTag>,
    pub network_configuration: Option<berth_ecs::NetworkConfiguration>,
}

#[derive(Debug, Serialize)]
pub struct TasksResponse {
    pub tasks: Vec<TaskWire>,
    pub failures: Vec<Failure>,
}

#[derive(Debug, Deserialize)]
pub struct StopTaskRequest {
    pub cluster: Option<String>,
    pub task: String,
    pub reason: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct TaskResponse {
    pub task: TaskWire,
}

#[derive(Debug, Deserialize)]
pub struct DescribeTasksRequest {
    pub cluster: Option<String>,
    pub tasks: Vec<String>,
    #[serde(default)]
    pub include: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTasksRequest {
    pub cluster: Option<String>,
    pub container_instance: Option<String>,
    pub family: Option<String>,
    pub started_by: Option<String>,
    pub service_name: Option<String>,
    pub desired_status: Option<String>,
    pub launch_type: Option<String>,
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTasksResponse {
    pub task_arns: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct AcknowledgmentResponse {
    pub acknowledgment: &'static str,
}

pub(super) fn run_outcome(ctx: &AwsContext, outcome: berth_ecs::RunTaskOutcome) -> TasksResponse {
    TasksResponse {
        tasks: outcome
            .tasks
            .into_iter()
            .map(|t| task_wire(ctx, t, true))
            .collect(),
        failures: outcome
            .failures
            .into_iter()
            .map(|(arn, reason)| Failure { arn, reason })
            .collect(),
    }
}

/// ECS must be able to assume the task role a task of `task_definition` would run with
/// (`acs_credentials::check_task_role`); a task definition that cannot be read is left to
/// the operation to refuse.
pub(super) fn check_task_role(
    ctx: &AwsContext,
    task_definition: &str,
    overrides: Option<&berth_model::ecs::TaskOverride>,
) -> Result<(), AwsError> {
    let Ok(stored) = ctx.app.ecs.task_definition(&ctx.scope, task_definition) else {
        return Ok(());
    };
    crate::acs_credentials::check_task_role(
        &ctx.app,
        &ctx.scope,
        overrides,
        &stored.task_definition,
    )
    .map_err(|message| AwsError::client("ClientException", message))
}

/// The awsvpc security groups a request names must be EC2's (`sg-default` included): a
/// task in a group that does not exist would run unreachable. The message carries ECS's
/// wording for a malformed group (`network.rs`) over to a missing one, with EC2's code.
pub(super) fn check_security_groups(
    ctx: &AwsContext,
    configuration: Option<&berth_ecs::NetworkConfiguration>,
) -> Result<(), AwsError> {
    let Some(vpc) = configuration.and_then(|c| c.awsvpc_configuration.as_ref()) else {
        return Ok(());
    };
    if vpc.security_groups.is_empty() {
        return Ok(());
    }
    let scope = crate::ec2::default_vpc_ready(ctx)?;
    // Malformed ids are ECS's own check's to word (`network.rs`).
    for group in vpc.security_groups.iter().filter(|g| g.starts_with("sg-")) {
        match ctx.app.ec2.security_group(&scope, group) {
            Ok(_) => {}
            Err(berth_ec2::Ec2Error::GroupNotFound(_)) => {
                return Err(AwsError::invalid_parameter(format!(
                    "Error retrieving security group information for [{group}]: The security group '{group}' does not exist (ErrorCode: InvalidGroup.NotFound)"
                )));
            }
            Err(e) => return Err(AwsError::server(e.to_string())),
        }
    }
    Ok(())
}

pub(super) async fn run_task(
    ctx: &AwsContext,
    req: RunTaskRequest,
) -> Result<TasksResponse, AwsError> {
    check_task_role(ctx, &req.task_definition, req.overrides.as_ref())?;
    check_security_groups(ctx, req.network_configuration.as_ref())?;
    let outcome = ctx
        .app
        .ecs
        .queue_run_task(
            &ctx.scope,
            berth_ecs::RunTask {
                cluster: req.cluster,
                task_definition: req.task_definition,
                count: req.count.unwrap_or(1),
                group: req.group,
                started_by: req.started_by,
                launch_type: req.launch_type,
                placement_constraints: req
                    .placement_constraints
                    .into_iter()
                    .map(|c| (c.kind, c.expression))
                    .collect(),
                placement_strategy: req
                    .placement_strategy
                    .into_iter()
                    .map(|s| (s.kind, s.field))
                    .collect(),
                overrides: req.overrides,
                tags: req.tags,
                client_token: req.client_token,
                capacity_provider_strategy: req.capacity_provider_strategy,
                platform_version: req.platform_version,
                container_instances: None,
                network_configuration: req.network_configuration,
            },
        )
        .outcome()
        .await
        .map_err(ecs_error)?;
    Ok(run_outcome(ctx, outcome))
}

pub(super) async fn start_task(
    ctx: &AwsContext,
    req: StartTaskRequest,
) -> Result<TasksResponse, AwsError> {
    if req.container_instances.is_empty() || req.container_instances.len() > 10 {
        return Err(AwsError::invalid_parameter(
            "containerInstances must list 1 to 10 container instances.",
        ));
    }
    let count = req.container_instances.len() as u32;
    check_task_role(ctx, &req.task_definition, req.overrides.as_ref())?;
    check_security_groups(ctx, req.network_configuration.as_ref())?;
    let outcome = ctx
        .app
        .ecs
        .run_task(
            &ctx.scope,
            berth_ecs::RunTask {
                cluster: req.cluster,
                task_definition: req.task_definition,
                count,
                group: req.group,
                started_by: req.started_by,
                overrides: req.overrides,
                tags: req.tags,
                container_instances: Some(req.container_instances),
                network_configuration: req.network_configuration,
                ..berth_ecs::RunTask::default()
            },
        )
        .map_err(ecs_error)?;
    Ok(run_outcome(ctx, outcome))
}

pub(super) async fn stop_task(
    ctx: &AwsContext,
    req: StopTaskRequest,
) -> Result<TaskResponse, AwsError> {
    let task = ctx
        .app
        .ecs
        .stop_task(&ctx.scope, req.cluster.as_deref(), &req.task, req.reason)
        .map_err(ecs_error)?;
    Ok(TaskResponse {
        task: task_wire(ctx, task, false),
    })
}

pub(super) async fn describe_tasks(
    ctx: &AwsContext,
    req: DescribeTasksRequest,
) -> Result<TasksResponse, AwsError> {
    // The request is checked before the cluster is looked up (see the conformance test
    // `an_empty_list_is_refused_before_the_cluster_is_looked_up`).
    if req.tasks.is_empty() {
        return Err(AwsError::invalid_parameter("Tasks cannot be empty."));
    }
    if req.tasks.len() > 100 {
        return Err(AwsError::invalid_parameter(
            "tasks must list 1 to 100 tasks.",
        ));
    }
    let with_tags = req.include.iter().any(|i| i == "TAGS");
    let cluster = ctx
        .app
        .ecs
        .active_cluster(&ctx.scope, req.cluster.as_deref())
        .map_err(ecs_error)?;
    let mut tasks = Vec::new();
    let mut failures = Vec::new();
    for reference in req.tasks {
        let found = ctx
            .app
            .ecs
            .task_id(&ctx.scope, &cluster.name, &reference)
            .and_then(|id| ctx.app.ecs.task(&ctx.scope, &cluster.name, &id));
        match found {
            Ok(Some(t)) => tasks.push(task_wire(ctx, t, with_tags)),
            Ok(None) | Err(EcsError::InvalidParameter(_)) => failures.push(Failure::named(
                ctx,
                reference,
                |scope, r| EcsArn::task(scope, &cluster.name, r),
                "MISSING",
            )),
            Err(e) => return Err(ecs_error(e)),
        }
    }
    Ok(TasksResponse { tasks, failures })
}

pub(super) async fn list_tasks(
    ctx: &AwsContext,
    req: ListTasksRequest,
) -> Result<ListTasksResponse, AwsError> {
    let desired = match req.desired_status.as_deref() {
        None => DesiredStatus::Running,
        Some(s) => s.parse().map_err(|_| {
            AwsError::invalid_parameter(format!(
                "Invalid desiredStatus '{s}'. Valid values: [RUNNING, PENDING, STOPPED]"
            ))
        })?,
    };
    let launch_type = req
        .launch_type
        .as_deref()
        .map(|l| LaunchType::parse_member("launchType", l).map_err(AwsError::invalid_parameter))
        .transpose()?;
    if req.family.is_some() && req.service_name.is_some() {
        return Err(AwsError::invalid_parameter(
            "family and serviceName cannot both be specified.",
        ));
    }
    let cluster = ctx
        .app
        .ecs
        .active_cluster(&ctx.scope, req.cluster.as_deref())
        .map_err(ecs_error)?;
    let instance = req
        .container_instance
        .as_deref()
        .map(|i| berth_ecs::instance_id(&ctx.scope, &cluster.name, i))
        .transpose()
        .map_err(ecs_error)?;
    let max = match req.max_results {
        None => 100,
        Some(n) if (1..=100).contains(&n) => n as usize,
        Some(n) => {
            return Err(AwsError::invalid_parameter(format!(
                "maxResults must be between 1 and 100 (got {n})."
            )));
        }
    };
    let filter = berth_ecs::ListTasksFilter {
        desired,
        container_instance: instance,
        family: req.family.clone(),
        started_by: req.started_by.clone(),
        service_name: req.service_name.clone(),
        launch_type,
    };
    let (tasks, next_token) = ctx
        .app
        .ecs
        .list_tasks(
            &ctx.scope,
            &cluster.name,
            &filter,
            req.next_token.as_deref(),
            max,
        )
        .map_err(ecs_error)?;
    let task_arns = tasks.iter().map(|t| t.arn(&ctx.scope)).collect();
    Ok(ListTasksResponse {
        task_arns,
        next_token,
    })
}

pub(super) async fn submit_task_state_change(
    ctx: &AwsContext,
    req: TaskStateChange,
) -> Result<AcknowledgmentResponse, AwsError> {
    ctx.app
        .ecs
        .submit_task_state_change(
            &ctx.scope,
            req.cluster.as_deref(),
            berth_ecs::TaskStateChange {
                task: req.task,
                status: req.status,
                reason: req.reason,
                pull_started_at: req.pull_started_at,
                pull_stopped_at: req.pull_stopped_at,
                execution_stopped_at: req.execution_stopped_at,
                containers: req
                    .containers
                    .into_iter()
                    .map(|c| berth_ecs::ContainerChange {
                        name: c.container_name,
                        status: c.status,
                        runtime_id: c.runtime_id,
                        image_digest: c.image_digest,
                        exit_code: c.exit_code,
                        reason: c.reason,
                        network_bindings: c.network_bindings,
                    })
                    .collect(),
                attachments: req
                    .attachments
                    .into_iter()
                    // A status this model does not know (another agent's) changes nothing.
                    .filter_map(|a| Some((a.attachment_arn, a.status.parse().ok()?)))
                    .collect(),
            },
        )
        .map_err(ecs_error)?;
    Ok(AcknowledgmentResponse {
        acknowledgment: "ACK",
    })
}
