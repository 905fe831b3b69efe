//! Services: Create/Update/Delete/Describe/ListServices.

use berth_ecs::{CapacityProviderStrategyItem, EcsError, EcsTag};
use serde::{Deserialize, Serialize};

use super::{Failure, ecs_error, page_of_names};
use crate::protocol::{AwsContext, AwsError};
use berth_model::ecs::{
    DeploymentControllerType, EcsArn, LaunchType, LoadBalancer, ServiceEvent, ServiceRegistry,
    ServiceStatus, TaskGroup,
};

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceWire {
    pub service_arn: String,
    pub service_name: String,
    pub cluster_arn: String,
    pub load_balancers: Vec<LoadBalancer>,
    pub service_registries: Vec<ServiceRegistry>,
    pub status: ServiceStatus,
    pub desired_count: i64,
    pub running_count: i64,
    pub pending_count: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub launch_type: Option<LaunchType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity_provider_strategy: Option<Vec<CapacityProviderStrategyItem>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform_version: Option<String>,
    /// An EXTERNAL service created without one has none.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub task_definition: String,
    pub deployment_configuration: berth_ecs::DeploymentConfiguration,
    pub deployments: Vec<berth_ecs::Deployment>,
    /// EXTERNAL: its task sets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_sets: Option<Vec<super::task_sets::TaskSetWire>>,
    pub events: Vec<ServiceEvent>,
    pub created_at: f64,
    pub placement_constraints: Vec<berth_ecs::Placement>,
    pub placement_strategy: Vec<berth_ecs::Placement>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_configuration: Option<berth_ecs::NetworkConfiguration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_check_grace_period_seconds: Option<i64>,
    pub scheduling_strategy: String,
    pub deployment_controller: serde_json::Value,
    pub created_by: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    #[serde(rename = "enableECSManagedTags")]
    pub enable_ecs_managed_tags: bool,
    pub propagate_tags: String,
    pub enable_execute_command: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<EcsTag>>,
}

/// (RUNNING, pending) tasks by task group: one read of the cluster's tasks, so a
/// service's runningCount and pendingCount are one consistent view.
type LiveTasks = std::collections::BTreeMap<String, (u32, u32)>;

pub(super) fn cluster_live_tasks(ctx: &AwsContext, cluster: &str) -> Result<LiveTasks, AwsError> {
    ctx.app
        .ecs
        .live_tasks_by_group(&ctx.scope, cluster)
        .map_err(ecs_error)
}

pub(super) fn service_wire(
    ctx: &AwsContext,
    s: berth_ecs::Service,
    live: &LiveTasks,
    with_tags: bool,
) -> Result<ServiceWire, AwsError> {
    let (running, pending) = live
        .get(&TaskGroup::of_service(&s.service_name))
        .map_or((0, 0), |&(running, pending)| {
            (i64::from(running), i64::from(pending))
        });
    let task_sets = s.is_external().then(|| {
        s.task_sets
            .iter()
            .map(|t| super::task_sets::task_set_wire(ctx, &s, t))
            .collect()
    });
    let controller = s
        .deployment_controller
        .unwrap_or(DeploymentControllerType::Ecs);
    Ok(ServiceWire {
        service_arn: s.arn(&ctx.scope),
        cluster_arn: EcsArn::cluster(&ctx.scope, &s.cluster).into_string(),
        service_name: s.service_name,
        load_balancers: s.load_balancers,
        service_registries: s.service_registries,
        status: s.status,
        desired_count: s.desired_count,
        running_count: running,
        pending_count: pending,
        launch_type: s
            .capacity_provider_strategy
            .is_empty()
            .then_some(s.launch_type),
        capacity_provider_strategy: (!s.capacity_provider_strategy.is_empty())
            .then_some(s.capacity_provider_strategy),
        platform_version: s.platform_version,
        task_sets,
        deployment_controller: serde_json::json!({ "type": controller }),
        task_definition: s.task_definition,
        deployment_configuration: s.deployment_configuration,
        deployments: s.deployments,
        events: s.events,
        created_at: s.created_at,
        placement_constraints: s.placement_constraints,
        placement_strategy: s.placement_strategy,
        network_configuration: s.network_configuration,
        health_check_grace_period_seconds: s.health_check_grace_period_seconds,
        scheduling_strategy: s.scheduling_strategy,
        created_by: s.created_by,
        role_arn: s.role_arn,
        enable_ecs_managed_tags: s.enable_ecs_managed_tags,
        propagate_tags: s.propagate_tags.unwrap_or_else(|| "NONE".into()),
        enable_execute_command: s.enable_execute_command,
        tags: with_tags.then_some(s.tags),
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateServiceRequest {
    pub cluster: Option<String>,
    pub service_name: String,
    pub task_definition: Option<String>,
    #[serde(default)]
    pub load_balancers: Vec<LoadBalancer>,
    #[serde(default)]
    pub service_registries: Vec<ServiceRegistry>,
    pub desired_count: Option<i64>,
    pub client_token: Option<String>,
    pub launch_type: Option<String>,
    pub capacity_provider_strategy: Option<Vec<CapacityProviderStrategyItem>>,
    pub platform_version: Option<String>,
    pub deployment_configuration: Option<berth_ecs::DeploymentConfiguration>,
    #[serde(default)]
    pub placement_constraints: Vec<berth_ecs::Placement>,
    #[serde(default)]
    pub placement_strategy: Vec<berth_ecs::Placement>,
    pub network_configuration: Option<berth_ecs::NetworkConfiguration>,
    pub health_check_grace_period_seconds: Option<i64>,
    pub scheduling_strategy: Option<String>,
    #[serde(default)]
    pub tags: Vec<EcsTag>,
    #[serde(default, rename = "enableECSManagedTags")]
    pub enable_ecs_managed_tags: bool,
    pub propagate_tags: Option<String>,
    #[serde(default)]
    pub enable_execute_command: bool,
    /// The IAM role (name or ARN) ECS uses with a service's load balancer.
    pub role: Option<String>,
    pub deployment_controller: Option<DeploymentControllerWire>,
}

/// CreateService's `deploymentController`.
#[derive(Debug, Deserialize)]
pub struct DeploymentControllerWire {
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Serialize)]
pub struct ServiceResponse {
    pub service: ServiceWire,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateServiceRequest {
    pub cluster: Option<String>,
    pub service: String,
    pub desired_count: Option<i64>,
    pub task_definition: Option<String>,
    pub deployment_configuration: Option<berth_ecs::DeploymentConfiguration>,
    pub placement_constraints: Option<Vec<berth_ecs::Placement>>,
    pub placement_strategy: Option<Vec<berth_ecs::Placement>>,
    pub network_configuration: Option<berth_ecs::NetworkConfiguration>,
    pub health_check_grace_period_seconds: Option<i64>,
    #[serde(default)]
    pub force_new_deployment: bool,
    pub enable_execute_command: Option<bool>,
    pub load_balancers: Option<Vec<LoadBalancer>>,
    pub capacity_provider_strategy: Option<Vec<CapacityProviderStrategyItem>>,
}

#[derive(Debug, Deserialize)]
pub struct DeleteServiceRequest {
    pub cluster: Option<String>,
    pub service: String,
    #[serde(default)]
    pub force: bool,
}

#[derive(Debug, Deserialize)]
pub struct DescribeServicesRequest {
    pub cluster: Option<String>,
    pub services: Vec<String>,
    #[serde(default)]
    pub include: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct DescribeServicesResponse {
    pub services: Vec<ServiceWire>,
    pub failures: Vec<Failure>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListServicesRequest {
    pub cluster: Option<String>,
    pub launch_type: Option<String>,
    pub scheduling_strategy: Option<String>,
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListServicesResponse {
    pub service_arns: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

pub(super) async fn create_service(
    ctx: &AwsContext,
    req: CreateServiceRequest,
) -> Result<ServiceResponse, AwsError> {
    if let Some(td) = &req.task_definition {
        super::tasks::check_task_role(ctx, td, None)?;
    }
    super::tasks::check_security_groups(ctx, req.network_configuration.as_ref())?;
    let service = ctx
        .app
        .ecs
        .create_service(
            &ctx.scope,
            berth_ecs::CreateService {
                cluster: req.cluster,
                service_name: req.service_name,
                task_definition: req.task_definition,
                desired_count: req.desired_count,
                launch_type: req.launch_type,
                scheduling_strategy: req.scheduling_strategy,
                deployment_configuration: req.deployment_configuration,
                placement_constraints: req.placement_constraints,
                placement_strategy: req.placement_strategy,
                network_configuration: req.network_configuration,
                health_check_grace_period_seconds: req.health_check_grace_period_seconds,
                tags: req.tags,
                enable_ecs_managed_tags: req.enable_ecs_managed_tags,
                propagate_tags: req.propagate_tags,
                enable_execute_command: req.enable_execute_command,
                platform_version: req.platform_version,
                load_balancers: req.load_balancers,
                service_registries: req.service_registries,
                client_token: req.client_token,
                capacity_provider_strategy: req.capacity_provider_strategy.unwrap_or_default(),
                role: req.role,
                deployment_controller: req
                    .deployment_controller
                    .map(|c| {
                        c.kind.parse::<DeploymentControllerType>().map_err(|_| {
                            AwsError::invalid_parameter(format!(
                                "Invalid deploymentController type '{}'. Valid values: [ECS, CODE_DEPLOY, EXTERNAL]",
                                c.kind
                            ))
                        })
                    })
                    .transpose()?,
            },
        )
        .map_err(ecs_error)?;
    let live = cluster_live_tasks(ctx, &service.cluster)?;
    Ok(ServiceResponse {
        service: service_wire(ctx, service, &live, true)?,
    })
}

pub(super) async fn update_service(
    ctx: &AwsContext,
    req: UpdateServiceRequest,
) -> Result<ServiceResponse, AwsError> {
    if let Some(td) = &req.task_definition {
        super::tasks::check_task_role(ctx, td, None)?;
    }
    super::tasks::check_security_groups(ctx, req.network_configuration.as_ref())?;
    let service = ctx
        .app
        .ecs
        .update_service(
            &ctx.scope,
            req.cluster.as_deref(),
            &req.service,
            berth_ecs::UpdateService {
                desired_count: req.desired_count,
                task_definition: req.task_definition,
                deployment_configuration: req.deployment_configuration,
                placement_constraints: req.placement_constraints,
                placement_strategy: req.placement_strategy,
                network_configuration: req.network_configuration,
                health_check_grace_period_seconds: req.health_check_grace_period_seconds,
                force_new_deployment: req.force_new_deployment,
                enable_execute_command: req.enable_execute_command,
                load_balancers: req.load_balancers,
                capacity_provider_strategy: req.capacity_provider_strategy,
            },
        )
        .map_err(ecs_error)?;
    let live = cluster_live_tasks(ctx, &service.cluster)?;
    Ok(ServiceResponse {
        service: service_wire(ctx, service, &live, false)?,
    })
}

pub(super) async fn delete_service(
    ctx: &AwsContext,
    req: DeleteServiceRequest,
) -> Result<ServiceResponse, AwsError> {
    let service = ctx
        .app
        .ecs
        .delete_service(&ctx.scope, req.cluster.as_deref(), &req.service, req.force)
        .map_err(ecs_error)?;
    let live = cluster_live_tasks(ctx, &service.cluster)?;
    Ok(ServiceResponse {
        service: service_wire(ctx, service, &live, false)?,
    })
}

pub(super) async fn describe_services(
    ctx: &AwsContext,
    req: DescribeServicesRequest,
) -> Result<DescribeServicesResponse, AwsError> {
    if req.services.is_empty() || req.services.len() > 10 {
        return Err(AwsError::invalid_parameter(
            "services must list 1 to 10 services.",
        ));
    }
    let with_tags = req.include.iter().any(|i| i == "TAGS");
    let cluster = ctx
        .app
        .ecs
        .active_cluster(&ctx.scope, req.cluster.as_deref())
        .map_err(ecs_error)?;
    let live = cluster_live_tasks(ctx, &cluster.name)?;
    let mut services = Vec::new();
    let mut failures = Vec::new();
    for name in req.services {
        match ctx.app.ecs.service(&ctx.scope, Some(&cluster.name), &name) {
            Ok(s) => services.push(service_wire(ctx, s, &live, with_tags)?),
            Err(EcsError::ServiceNotFound) => failures.push(Failure::named(
                ctx,
                name,
                |scope, n| EcsArn::service(scope, &cluster.name, n),
                "MISSING",
            )),
            Err(e) => return Err(ecs_error(e)),
        }
    }
    Ok(DescribeServicesResponse { services, failures })
}

pub(super) async fn list_services(
    ctx: &AwsContext,
    req: ListServicesRequest,
) -> Result<ListServicesResponse, AwsError> {
    let arns: Vec<String> = ctx
        .app
        .ecs
        .services(&ctx.scope, req.cluster.as_deref())
        .map_err(ecs_error)?
        .into_iter()
        .filter(|s| {
            req.launch_type
                .as_deref()
                .is_none_or(|l| s.launch_type.as_str() == l)
        })
        .filter(|s| {
            req.scheduling_strategy
                .as_ref()
                .is_none_or(|l| &s.scheduling_strategy == l)
        })
        .map(|s| s.arn(&ctx.scope))
        .collect();
    let (service_arns, next_token) =
        page_of_names(arns, req.next_token.as_deref(), req.max_results, 100)?;
    Ok(ListServicesResponse {
        service_arns,
        next_token,
    })
}
