//! Task sets of services with the EXTERNAL deployment controller: CreateTaskSet,
//! DescribeTaskSets, UpdateTaskSet, DeleteTaskSet, UpdateServicePrimaryTaskSet.

use berth_ecs::task_sets::{CreateTaskSet, Scale, ScaleUnit, TaskSet};
use berth_ecs::{CapacityProviderStrategyItem, EcsTag, NetworkConfiguration, Service};
use berth_model::ecs::{
    EcsArn, LaunchType, LoadBalancer, ServiceRegistry, StabilityStatus, TaskSetStatus,
};
use serde::{Deserialize, Serialize};

use super::{Failure, ecs_error};
use crate::protocol::{AwsContext, AwsError};

/// ECS's TaskSet.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskSetWire {
    pub id: String,
    pub task_set_arn: String,
    pub service_arn: String,
    pub cluster_arn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    pub status: TaskSetStatus,
    pub task_definition: String,
    pub computed_desired_count: i64,
    pub pending_count: i64,
    pub running_count: i64,
    pub created_at: f64,
    pub updated_at: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub launch_type: Option<LaunchType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity_provider_strategy: Option<Vec<CapacityProviderStrategyItem>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_configuration: Option<NetworkConfiguration>,
    pub load_balancers: Vec<LoadBalancer>,
    pub service_registries: Vec<ServiceRegistry>,
    pub scale: Scale,
    pub stability_status: StabilityStatus,
    pub stability_status_at: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<EcsTag>>,
}

pub(super) fn task_set_wire(ctx: &AwsContext, s: &Service, t: &TaskSet) -> TaskSetWire {
    TaskSetWire {
        id: t.id.clone(),
        task_set_arn: t.arn(&ctx.scope, s),
        service_arn: s.arn(&ctx.scope),
        cluster_arn: EcsArn::cluster(&ctx.scope, &s.cluster).into_string(),
        external_id: t.external_id.clone(),
        status: t.status,
        task_definition: t.task_definition.clone(),
        computed_desired_count: t.computed_desired_count,
        pending_count: t.pending_count,
        running_count: t.running_count,
        created_at: t.created_at,
        updated_at: t.updated_at,
        launch_type: t
            .capacity_provider_strategy
            .is_empty()
            .then_some(t.launch_type),
        capacity_provider_strategy: (!t.capacity_provider_strategy.is_empty())
            .then(|| t.capacity_provider_strategy.clone()),
        platform_version: t.platform_version.clone(),
        network_configuration: t.network_configuration.clone(),
        load_balancers: t.load_balancers.clone(),
        service_registries: t.service_registries.clone(),
        scale: t.scale,
        stability_status: t.stability_status,
        stability_status_at: t.stability_status_at,
        tags: None,
    }
}

/// A task set's `scale` as a request gives it.
#[derive(Debug, Deserialize)]
pub struct ScaleWire {
    pub value: Option<f64>,
    pub unit: Option<String>,
}

fn parse_scale(scale: ScaleWire) -> Result<Scale, AwsError> {
    match scale.unit.as_deref() {
        None | Some("PERCENT") => Ok(Scale {
            value: scale.value.unwrap_or(100.0),
            unit: ScaleUnit::Percent,
        }),
        Some(other) => Err(AwsError::invalid_parameter(format!(
            "Invalid scale unit '{other}'. Valid values: [PERCENT]"
        ))),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateTaskSetRequest {
    pub cluster: Option<String>,
    pub service: String,
    pub task_definition: String,
    pub external_id: Option<String>,
    pub launch_type: Option<String>,
    #[serde(default)]
    pub capacity_provider_strategy: Vec<CapacityProviderStrategyItem>,
    pub platform_version: Option<String>,
    pub network_configuration: Option<NetworkConfiguration>,
    #[serde(default)]
    pub load_balancers: Vec<LoadBalancer>,
    #[serde(default)]
    pub service_registries: Vec<ServiceRegistry>,
    pub scale: Option<ScaleWire>,
    pub client_token: Option<String>,
    #[serde(default)]
    pub tags: Vec<EcsTag>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskSetResponse {
    pub task_set: TaskSetWire,
}

pub(super) async fn create_task_set(
    ctx: &AwsContext,
    req: CreateTaskSetRequest,
) -> Result<TaskSetResponse, AwsError> {
    let scale = req.scale.map(parse_scale).transpose()?;
    let (service, id) = ctx
        .app
        .ecs
        .create_task_set(
            &ctx.scope,
            CreateTaskSet {
                cluster: req.cluster,
                service: req.service,
                task_definition: req.task_definition,
                external_id: req.external_id,
                launch_type: req.launch_type,
                capacity_provider_strategy: req.capacity_provider_strategy,
                platform_version: req.platform_version,
                network_configuration: req.network_configuration,
                load_balancers: req.load_balancers,
                service_registries: req.service_registries,
                scale,
                client_token: req.client_token,
                tags: req.tags,
            },
        )
        .map_err(ecs_error)?;
    let set = service
        .task_sets
        .iter()
        .find(|t| t.id == id)
        .ok_or_else(|| ecs_error(berth_ecs::EcsError::TaskSetNotFound))?;
    let mut task_set = task_set_wire(ctx, &service, set);
    task_set.tags = Some(set.tags.clone());
    Ok(TaskSetResponse { task_set })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeTaskSetsRequest {
    pub cluster: Option<String>,
    pub service: String,
    pub task_sets: Option<Vec<String>>,
    #[serde(default)]
    pub include: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeTaskSetsResponse {
    pub task_sets: Vec<TaskSetWire>,
    pub failures: Vec<Failure>,
}

pub(super) async fn describe_task_sets(
    ctx: &AwsContext,
    req: DescribeTaskSetsRequest,
) -> Result<DescribeTaskSetsResponse, AwsError> {
    let with_tags = req.include.iter().any(|i| i == "TAGS");
    let (service, found) = ctx
        .app
        .ecs
        .describe_task_sets(
            &ctx.scope,
            req.cluster.as_deref(),
            &req.service,
            req.task_sets.as_deref(),
        )
        .map_err(ecs_error)?;
    let mut task_sets = Vec::new();
    let mut failures = Vec::new();
    for (reference, set) in found {
        match set {
            Some(t) => {
                let mut wire = task_set_wire(ctx, &service, &t);
                wire.tags = with_tags.then_some(t.tags);
                task_sets.push(wire);
            }
            None => failures.push(Failure::named(
                ctx,
                reference,
                |scope, id| EcsArn::task_set(scope, &service.cluster, &service.service_name, id),
                "MISSING",
            )),
        }
    }
    Ok(DescribeTaskSetsResponse {
        task_sets,
        failures,
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateTaskSetRequest {
    pub cluster: Option<String>,
    pub service: String,
    pub task_set: String,
    pub scale: ScaleWire,
}

pub(super) async fn update_task_set(
    ctx: &AwsContext,
    req: UpdateTaskSetRequest,
) -> Result<TaskSetResponse, AwsError> {
    let scale = parse_scale(req.scale)?;
    let (service, set) = ctx
        .app
        .ecs
        .update_task_set(
            &ctx.scope,
            req.cluster.as_deref(),
            &req.service,
            &req.task_set,
            scale,
        )
        .map_err(ecs_error)?;
    Ok(TaskSetResponse {
        task_set: task_set_wire(ctx, &service, &set),
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteTaskSetRequest {
    pub cluster: Option<String>,
    pub service: String,
    pub task_set: String,
    #[serde(default)]
    pub force: bool,
}

pub(super) async fn delete_task_set(
    ctx: &AwsContext,
    req: DeleteTaskSetRequest,
) -> Result<TaskSetResponse, AwsError> {
    let (service, set) = ctx
        .app
        .ecs
        .delete_task_set(
            &ctx.scope,
            req.cluster.as_deref(),
            &req.service,
            &req.task_set,
            req.force,
        )
        .map_err(ecs_error)?;
    Ok(TaskSetResponse {
        task_set: task_set_wire(ctx, &service, &set),
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateServicePrimaryTaskSetRequest {
    pub cluster: Option<String>,
    pub service: String,
    pub primary_task_set: String,
}

pub(super) async fn update_service_primary_task_set(
    ctx: &AwsContext,
    req: UpdateServicePrimaryTaskSetRequest,
) -> Result<TaskSetResponse, AwsError> {
    let (service, set) = ctx
        .app
        .ecs
        .update_service_primary_task_set(
            &ctx.scope,
            req.cluster.as_deref(),
            &req.service,
            &req.primary_task_set,
        )
        .map_err(ecs_error)?;
    Ok(TaskSetResponse {
        task_set: task_set_wire(ctx, &service, &set),
    })
}
