//! ECS's JSON API (`AmazonEC2ContainerServiceV20141113.*`): typed requests and responses
//! with AWS field names, and the mapping of domain errors to ECS's exceptions. This slice
//! serves clusters, capacity providers and cluster tags; the rest of issue 3 follows.

use berth_core::{
    CapacityProviderStrategyItem, Cluster, ClusterSetting, ClusterUpdate, CreateCluster, EcsError,
    EcsTag, FARGATE_CAPACITY_PROVIDERS,
};
use serde::{Deserialize, Serialize};

use crate::protocol::{AwsContext, AwsError};

pub const TARGET_PREFIX: &str = "AmazonEC2ContainerServiceV20141113";

pub fn ecs_error(e: EcsError) -> AwsError {
    use EcsError as E;
    let code = match &e {
        E::ClusterNotFound => "ClusterNotFoundException",
        E::ServiceNotFound => "ServiceNotFoundException",
        E::ServiceNotActive => "ServiceNotActiveException",
        E::ServiceDeploymentNotFound => "ServiceDeploymentNotFoundException",
        E::Conflict(_) => "ConflictException",
        E::ClusterContainsContainerInstances => "ClusterContainsContainerInstancesException",
        E::ClusterContainsServices => "ClusterContainsServicesException",
        E::ClusterContainsTasks => "ClusterContainsTasksException",
        E::InvalidParameter(_) => "InvalidParameterException",
        E::Client(_) => "ClientException",
        E::ResourceNotFound(_) => "ResourceNotFoundException",
        E::ResourceInUse(_) => "ResourceInUseException",
        E::Store(_) | E::Corrupt(_) | E::Server(_) => return AwsError::server(e.to_string()),
    };
    AwsError::client(code, e.to_string())
}

/// ECS's KeyValuePair, as in cluster statistics.
#[derive(Debug, Clone, Serialize)]
pub struct KeyValuePair {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterWire {
    pub cluster_arn: String,
    pub cluster_name: String,
    pub status: berth_core::ClusterStatus,
    pub registered_container_instances_count: usize,
    pub running_tasks_count: usize,
    pub pending_tasks_count: usize,
    pub active_services_count: usize,
    pub statistics: Vec<KeyValuePair>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<EcsTag>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settings: Option<Vec<ClusterSetting>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub configuration: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_connect_defaults: Option<serde_json::Value>,
    pub capacity_providers: Vec<String>,
    pub default_capacity_provider_strategy: Vec<CapacityProviderStrategyItem>,
}

/// Which optional parts of a cluster a response carries (DescribeClusters' `include`).
#[derive(Debug, Clone, Copy, Default)]
struct Include {
    statistics: bool,
    tags: bool,
    settings: bool,
    configurations: bool,
}

impl Include {
    /// What CreateCluster and the update operations return: the whole cluster.
    const ALL: Include = Include {
        statistics: false,
        tags: true,
        settings: true,
        configurations: true,
    };

    fn parse(values: &[String]) -> Result<Include, AwsError> {
        let mut include = Include::default();
        for v in values {
            match v.as_str() {
                "STATISTICS" => include.statistics = true,
                "TAGS" => include.tags = true,
                "SETTINGS" => include.settings = true,
                "CONFIGURATIONS" => include.configurations = true,
                "ATTACHMENTS" => {}
                other => {
                    return Err(AwsError::invalid_parameter(format!(
                        "Invalid include value '{other}'. Valid values: [ATTACHMENTS, CONFIGURATIONS, SETTINGS, STATISTICS, TAGS]"
                    )));
                }
            }
        }
        Ok(include)
    }
}

fn cluster_wire(ctx: &AwsContext, c: Cluster, include: Include) -> Result<ClusterWire, AwsError> {
    let counts = ctx
        .app
        .ecs
        .cluster_counts(&ctx.scope, &c.name)
        .map_err(ecs_error)?;
    let statistics = if include.statistics {
        // Per launch type; every task and service is on EC2 until Fargate arrives.
        [
            ("runningEC2TasksCount", counts.running_tasks),
            ("runningFargateTasksCount", 0),
            ("pendingEC2TasksCount", counts.pending_tasks),
            ("pendingFargateTasksCount", 0),
            ("runningExternalTasksCount", 0),
            ("pendingExternalTasksCount", 0),
            ("activeEC2ServiceCount", counts.active_services),
            ("activeFargateServiceCount", 0),
            ("drainingEC2ServiceCount", 0),
            ("drainingFargateServiceCount", 0),
        ]
        .into_iter()
        .map(|(name, value)| KeyValuePair {
            name: name.into(),
            value: value.to_string(),
        })
        .collect()
    } else {
        Vec::new()
    };
    Ok(ClusterWire {
        cluster_arn: c.arn(&ctx.scope),
        cluster_name: c.name,
        status: c.status,
        registered_container_instances_count: counts.registered_container_instances,
        running_tasks_count: counts.running_tasks,
        pending_tasks_count: counts.pending_tasks,
        active_services_count: counts.active_services,
        statistics,
        tags: include.tags.then_some(c.tags),
        settings: include.settings.then_some(c.settings),
        configuration: if include.configurations {
            c.configuration
        } else {
            None
        },
        service_connect_defaults: c.service_connect_defaults,
        capacity_providers: c.capacity_providers,
        default_capacity_provider_strategy: c.default_capacity_provider_strategy,
    })
}

// ---- requests and responses ----

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateClusterRequest {
    pub cluster_name: Option<String>,
    #[serde(default)]
    pub tags: Vec<EcsTag>,
    #[serde(default)]
    pub settings: Vec<ClusterSetting>,
    pub configuration: Option<serde_json::Value>,
    #[serde(default)]
    pub capacity_providers: Vec<String>,
    #[serde(default)]
    pub default_capacity_provider_strategy: Vec<CapacityProviderStrategyItem>,
    pub service_connect_defaults: Option<serde_json::Value>,
}

#[derive(Debug, Serialize)]
pub struct ClusterResponse {
    pub cluster: ClusterWire,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeClustersRequest {
    pub clusters: Option<Vec<String>>,
    #[serde(default)]
    pub include: Vec<String>,
}

/// ECS's Failure.
#[derive(Debug, Serialize)]
pub struct Failure {
    /// Empty for a failure that names no resource (Fargate capacity).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub arn: String,
    pub reason: String,
}

impl Failure {
    /// A failure for a resource a request named by ARN or by name: the ARN as given, or
    /// this scope's ARN for `resource` (e.g. `cluster/NAME`).
    fn named(
        ctx: &AwsContext,
        reference: String,
        resource: impl FnOnce(&str) -> String,
        reason: impl Into<String>,
    ) -> Failure {
        let arn = if reference.starts_with("arn:") {
            reference
        } else {
            ctx.scope.arn("ecs", &resource(&reference))
        };
        Failure {
            arn,
            reason: reason.into(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct DescribeClustersResponse {
    pub clusters: Vec<ClusterWire>,
    pub failures: Vec<Failure>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListClustersRequest {
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListClustersResponse {
    pub cluster_arns: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct DeleteClusterRequest {
    pub cluster: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateClusterRequest {
    pub cluster: String,
    pub settings: Option<Vec<ClusterSetting>>,
    pub configuration: Option<serde_json::Value>,
    pub service_connect_defaults: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
pub struct UpdateClusterSettingsRequest {
    pub cluster: String,
    pub settings: Vec<ClusterSetting>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutClusterCapacityProvidersRequest {
    pub cluster: String,
    pub capacity_providers: Vec<String>,
    pub default_capacity_provider_strategy: Vec<CapacityProviderStrategyItem>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TagResourceRequest {
    pub resource_arn: String,
    pub tags: Vec<EcsTag>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UntagResourceRequest {
    pub resource_arn: String,
    pub tag_keys: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTagsForResourceRequest {
    pub resource_arn: String,
}

#[derive(Debug, Serialize)]
pub struct ListTagsForResourceResponse {
    pub tags: Vec<EcsTag>,
}

#[derive(Debug, Serialize)]
pub struct EmptyResponse {}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeCapacityProvidersRequest {
    pub capacity_providers: Option<Vec<String>>,
    #[serde(default)]
    pub include: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CapacityProviderWire {
    pub capacity_provider_arn: String,
    pub name: String,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<EcsTag>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeCapacityProvidersResponse {
    pub capacity_providers: Vec<CapacityProviderWire>,
    pub failures: Vec<Failure>,
}

crate::aws_actions! {
    EcsAction, "ECS";
    CreateCluster(CreateClusterRequest) => blocking create_cluster,
    DescribeClusters(DescribeClustersRequest) => blocking describe_clusters,
    ListClusters(ListClustersRequest) => blocking list_clusters,
    DeleteCluster(DeleteClusterRequest) => blocking delete_cluster,
    UpdateCluster(UpdateClusterRequest) => blocking update_cluster,
    UpdateClusterSettings(UpdateClusterSettingsRequest) => blocking update_cluster_settings,
    PutClusterCapacityProviders(PutClusterCapacityProvidersRequest) => blocking put_cluster_capacity_providers,
    TagResource(TagResourceRequest) => blocking tag_resource,
    UntagResource(UntagResourceRequest) => blocking untag_resource,
    ListTagsForResource(ListTagsForResourceRequest) => blocking list_tags_for_resource,
    DescribeCapacityProviders(DescribeCapacityProvidersRequest) => blocking describe_capacity_providers,
    RegisterContainerInstance(RegisterContainerInstanceRequest) => blocking register_container_instance,
    DeregisterContainerInstance(DeregisterContainerInstanceRequest) => blocking deregister_container_instance,
    DescribeContainerInstances(DescribeContainerInstancesRequest) => blocking describe_container_instances,
    ListContainerInstances(ListContainerInstancesRequest) => blocking list_container_instances,
    UpdateContainerInstancesState(UpdateContainerInstancesStateRequest) => blocking update_container_instances_state,
    PutAttributes(AttributesRequest) => blocking put_attributes,
    DeleteAttributes(AttributesRequest) => blocking delete_attributes,
    ListAttributes(ListAttributesRequest) => blocking list_attributes,
    RegisterTaskDefinition(RegisterTaskDefinitionRequest) => blocking register_task_definition,
    DescribeTaskDefinition(DescribeTaskDefinitionRequest) => blocking describe_task_definition,
    ListTaskDefinitions(ListTaskDefinitionsRequest) => blocking list_task_definitions,
    ListTaskDefinitionFamilies(ListTaskDefinitionFamiliesRequest) => blocking list_task_definition_families,
    DeregisterTaskDefinition(DeregisterTaskDefinitionRequest) => blocking deregister_task_definition,
    DeleteTaskDefinitions(DeleteTaskDefinitionsRequest) => blocking delete_task_definitions,
    RunTask(RunTaskRequest) => inline run_task,
    StartTask(StartTaskRequest) => blocking start_task,
    StopTask(StopTaskRequest) => blocking stop_task,
    DescribeTasks(DescribeTasksRequest) => inline describe_tasks,
    ListTasks(ListTasksRequest) => blocking list_tasks,
    SubmitTaskStateChange(SubmitTaskStateChangeRequest) => blocking submit_task_state_change,
    CreateService(CreateServiceRequest) => blocking create_service,
    UpdateService(UpdateServiceRequest) => blocking update_service,
    DeleteService(DeleteServiceRequest) => blocking delete_service,
    DescribeServices(DescribeServicesRequest) => blocking describe_services,
    ListServices(ListServicesRequest) => blocking list_services,
    ListServiceDeployments(ListServiceDeploymentsRequest) => blocking list_service_deployments,
    DescribeServiceDeployments(DescribeServiceDeploymentsRequest) => blocking describe_service_deployments,
    StopServiceDeployment(StopServiceDeploymentRequest) => blocking stop_service_deployment,
    ListAccountSettings(ListAccountSettingsRequest) => blocking list_account_settings,
    PutAccountSetting(PutAccountSettingRequest) => blocking put_account_setting,
    PutAccountSettingDefault(PutAccountSettingRequest) => blocking put_account_setting,
    DiscoverPollEndpoint(DiscoverPollEndpointRequest) => blocking discover_poll_endpoint,
    SubmitContainerStateChange(SubmitContainerStateChangeRequest) => blocking submit_container_state_change,
    SubmitAttachmentStateChanges(SubmitAttachmentStateChangesRequest) => blocking submit_attachment_state_changes,
}

// ---- handlers ----

async fn create_cluster(
    ctx: &AwsContext,
    req: CreateClusterRequest,
) -> Result<ClusterResponse, AwsError> {
    let cluster = ctx
        .app
        .ecs
        .create_cluster(
            &ctx.scope,
            CreateCluster {
                name: req.cluster_name,
                tags: req.tags,
                settings: req.settings,
                configuration: req.configuration,
                service_connect_defaults: req.service_connect_defaults,
                capacity_providers: req.capacity_providers,
                default_capacity_provider_strategy: req.default_capacity_provider_strategy,
            },
        )
        .map_err(ecs_error)?;
    Ok(ClusterResponse {
        cluster: cluster_wire(ctx, cluster, Include::ALL)?,
    })
}

async fn describe_clusters(
    ctx: &AwsContext,
    req: DescribeClustersRequest,
) -> Result<DescribeClustersResponse, AwsError> {
    let include = Include::parse(&req.include)?;
    let names = req
        .clusters
        .unwrap_or_else(|| vec![berth_core::DEFAULT_CLUSTER.to_string()]);
    if names.len() > 100 {
        return Err(AwsError::invalid_parameter(
            "Number of clusters exceeds the maximum of 100.",
        ));
    }
    let mut clusters = Vec::new();
    let mut failures = Vec::new();
    for name in names {
        match ctx.app.ecs.cluster(&ctx.scope, Some(&name)) {
            Ok(c) => clusters.push(cluster_wire(ctx, c, include)?),
            Err(EcsError::ClusterNotFound) => failures.push(Failure::named(
                ctx,
                name,
                |n| format!("cluster/{n}"),
                "MISSING",
            )),
            Err(e) => return Err(ecs_error(e)),
        }
    }
    Ok(DescribeClustersResponse { clusters, failures })
}

async fn list_clusters(
    ctx: &AwsContext,
    req: ListClustersRequest,
) -> Result<ListClustersResponse, AwsError> {
    let max = match req.max_results {
        None => 100,
        Some(n @ 1..=100) => n as usize,
        Some(n) => {
            return Err(AwsError::invalid_parameter(format!(
                "maxResults must be between 1 and 100 (got {n})."
            )));
        }
    };
    let (clusters, next_token) = ctx
        .app
        .ecs
        .list_clusters(&ctx.scope, req.next_token.as_deref(), max)
        .map_err(ecs_error)?;
    Ok(ListClustersResponse {
        cluster_arns: clusters.iter().map(|c| c.arn(&ctx.scope)).collect(),
        next_token,
    })
}

async fn delete_cluster(
    ctx: &AwsContext,
    req: DeleteClusterRequest,
) -> Result<ClusterResponse, AwsError> {
    let cluster = ctx
        .app
        .ecs
        .delete_cluster(&ctx.scope, &req.cluster)
        .map_err(ecs_error)?;
    Ok(ClusterResponse {
        cluster: cluster_wire(ctx, cluster, Include::ALL)?,
    })
}

async fn update_cluster(
    ctx: &AwsContext,
    req: UpdateClusterRequest,
) -> Result<ClusterResponse, AwsError> {
    let cluster = ctx
        .app
        .ecs
        .update_cluster(
            &ctx.scope,
            &req.cluster,
            ClusterUpdate {
                settings: req.settings,
                configuration: req.configuration,
                service_connect_defaults: req.service_connect_defaults,
            },
        )
        .map_err(ecs_error)?;
    Ok(ClusterResponse {
        cluster: cluster_wire(ctx, cluster, Include::ALL)?,
    })
}

async fn update_cluster_settings(
    ctx: &AwsContext,
    req: UpdateClusterSettingsRequest,
) -> Result<ClusterResponse, AwsError> {
    let cluster = ctx
        .app
        .ecs
        .update_cluster(
            &ctx.scope,
            &req.cluster,
            ClusterUpdate {
                settings: Some(req.settings),
                ..ClusterUpdate::default()
            },
        )
        .map_err(ecs_error)?;
    Ok(ClusterResponse {
        cluster: cluster_wire(ctx, cluster, Include::ALL)?,
    })
}

async fn put_cluster_capacity_providers(
    ctx: &AwsContext,
    req: PutClusterCapacityProvidersRequest,
) -> Result<ClusterResponse, AwsError> {
    let cluster = ctx
        .app
        .ecs
        .put_cluster_capacity_providers(
            &ctx.scope,
            &req.cluster,
            req.capacity_providers,
            req.default_capacity_provider_strategy,
        )
        .map_err(ecs_error)?;
    Ok(ClusterResponse {
        cluster: cluster_wire(ctx, cluster, Include::ALL)?,
    })
}

async fn tag_resource(
    ctx: &AwsContext,
    req: TagResourceRequest,
) -> Result<EmptyResponse, AwsError> {
    ctx.app
        .ecs
        .tag_resource(&ctx.scope, &req.resource_arn, &req.tags)
        .map_err(ecs_error)?;
    Ok(EmptyResponse {})
}

async fn untag_resource(
    ctx: &AwsContext,
    req: UntagResourceRequest,
) -> Result<EmptyResponse, AwsError> {
    ctx.app
        .ecs
        .untag_resource(&ctx.scope, &req.resource_arn, &req.tag_keys)
        .map_err(ecs_error)?;
    Ok(EmptyResponse {})
}

async fn list_tags_for_resource(
    ctx: &AwsContext,
    req: ListTagsForResourceRequest,
) -> Result<ListTagsForResourceResponse, AwsError> {
    let tags = ctx
        .app
        .ecs
        .resource_tags(&ctx.scope, &req.resource_arn)
        .map_err(ecs_error)?;
    Ok(ListTagsForResourceResponse { tags })
}

async fn describe_capacity_providers(
    ctx: &AwsContext,
    req: DescribeCapacityProvidersRequest,
) -> Result<DescribeCapacityProvidersResponse, AwsError> {
    let with_tags = req.include.iter().any(|i| i == "TAGS");
    let wanted = req
        .capacity_providers
        .unwrap_or_else(|| FARGATE_CAPACITY_PROVIDERS.map(String::from).to_vec());
    let mut capacity_providers = Vec::new();
    let mut failures = Vec::new();
    for name_or_arn in wanted {
        let name = name_or_arn
            .strip_prefix(&ctx.scope.arn("ecs", "capacity-provider/"))
            .unwrap_or(&name_or_arn)
            .to_string();
        if FARGATE_CAPACITY_PROVIDERS.contains(&name.as_str()) {
            capacity_providers.push(CapacityProviderWire {
                capacity_provider_arn: ctx.scope.arn("ecs", &format!("capacity-provider/{name}")),
                name,
                status: "ACTIVE",
                tags: with_tags.then(Vec::new),
            });
        } else {
            failures.push(Failure {
                arn: name_or_arn,
                reason: "MISSING".into(),
            });
        }
    }
    Ok(DescribeCapacityProvidersResponse {
        capacity_providers,
        failures,
    })
}

// ---- container instances ----

/// ECS's Resource, as RegisterContainerInstance takes it and Describe returns it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceWire {
    pub name: String,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub double_value: f64,
    #[serde(default)]
    pub long_value: i64,
    #[serde(default)]
    pub integer_value: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub string_set_value: Option<Vec<String>>,
}

fn parse_resources(list: &[ResourceWire]) -> Result<berth_core::Resources, AwsError> {
    let mut r = berth_core::Resources::default();
    let amount = |w: &ResourceWire| {
        if w.integer_value != 0 {
            w.integer_value
        } else if w.long_value != 0 {
            w.long_value
        } else {
            w.double_value as i64
        }
    };
    let ports = |w: &ResourceWire| -> Result<std::collections::BTreeSet<u16>, AwsError> {
        w.string_set_value
            .iter()
            .flatten()
            .map(|p| {
                p.parse::<u16>().map_err(|_| {
                    AwsError::invalid_parameter(format!("Invalid port '{p}' in {}.", w.name))
                })
            })
            .collect()
    };
    for w in list {
        match w.name.as_str() {
            "CPU" => r.cpu = amount(w),
            "MEMORY" => r.memory = amount(w),
            "PORTS" => r.ports = ports(w)?,
            "PORTS_UDP" => r.ports_udp = ports(w)?,
            _ => {} // GPUs and other resources arrive with later issues
        }
    }
    if r.cpu < 0 || r.memory < 0 {
        return Err(AwsError::invalid_parameter(
            "CPU and MEMORY resources must not be negative.",
        ));
    }
    Ok(r)
}

fn resources_wire(r: &berth_core::Resources) -> Vec<ResourceWire> {
    let integer = |name: &str, v: i64| ResourceWire {
        name: name.into(),
        kind: Some("INTEGER".into()),
        integer_value: v,
        ..ResourceWire::default()
    };
    let set = |name: &str, ports: &std::collections::BTreeSet<u16>| ResourceWire {
        name: name.into(),
        kind: Some("STRINGSET".into()),
        string_set_value: Some(ports.iter().map(u16::to_string).collect()),
        ..ResourceWire::default()
    };
    vec![
        integer("CPU", r.cpu),
        integer("MEMORY", r.memory),
        set("PORTS", &r.ports),
        set("PORTS_UDP", &r.ports_udp),
    ]
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerInstanceWire {
    pub container_instance_arn: String,
    pub ec2_instance_id: String,
    pub version: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_info: Option<serde_json::Value>,
    pub remaining_resources: Vec<ResourceWire>,
    pub registered_resources: Vec<ResourceWire>,
    pub status: berth_core::InstanceStatus,
    pub agent_connected: bool,
    pub running_tasks_count: i64,
    pub pending_tasks_count: i64,
    pub attributes: Vec<berth_core::Attribute>,
    pub registered_at: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<EcsTag>>,
    /// Only with `include: CONTAINER_INSTANCE_HEALTH`, as ECS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_status: Option<berth_core::ContainerInstanceHealth>,
}

fn instance_wire(
    ctx: &AwsContext,
    i: berth_core::ContainerInstance,
    with_tags: bool,
) -> ContainerInstanceWire {
    ContainerInstanceWire {
        container_instance_arn: i.arn(&ctx.scope),
        ec2_instance_id: i.ec2_instance_id,
        version: i.version,
        version_info: i.version_info,
        remaining_resources: resources_wire(&i.remaining),
        registered_resources: resources_wire(&i.registered),
        status: i.status,
        agent_connected: i.agent_connected,
        running_tasks_count: i.running_tasks_count,
        pending_tasks_count: i.pending_tasks_count,
        attributes: i.attributes,
        registered_at: i.registered_at,
        tags: with_tags.then_some(i.tags),
        health_status: None,
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterContainerInstanceRequest {
    pub cluster: Option<String>,
    pub instance_identity_document: Option<String>,
    #[serde(default)]
    pub total_resources: Vec<ResourceWire>,
    pub version_info: Option<serde_json::Value>,
    pub container_instance_arn: Option<String>,
    #[serde(default)]
    pub attributes: Vec<berth_core::Attribute>,
    #[serde(default)]
    pub tags: Vec<EcsTag>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerInstanceResponse {
    pub container_instance: ContainerInstanceWire,
    /// Berth's extension to RegisterContainerInstance's answer (the official agent ignores
    /// it): the installation whose id `berth agent` puts on its Docker objects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub berth_installation_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeregisterContainerInstanceRequest {
    pub cluster: Option<String>,
    pub container_instance: String,
    #[serde(default)]
    pub force: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeContainerInstancesRequest {
    pub cluster: Option<String>,
    pub container_instances: Vec<String>,
    #[serde(default)]
    pub include: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerInstancesResponse {
    pub container_instances: Vec<ContainerInstanceWire>,
    pub failures: Vec<Failure>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListContainerInstancesRequest {
    pub cluster: Option<String>,
    pub filter: Option<String>,
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
    pub status: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListContainerInstancesResponse {
    pub container_instance_arns: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateContainerInstancesStateRequest {
    pub cluster: Option<String>,
    pub container_instances: Vec<String>,
    pub status: String,
}

#[derive(Debug, Deserialize)]
pub struct AttributesRequest {
    pub cluster: Option<String>,
    pub attributes: Vec<berth_core::Attribute>,
}

#[derive(Debug, Serialize)]
pub struct AttributesResponse {
    pub attributes: Vec<berth_core::Attribute>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListAttributesRequest {
    pub cluster: Option<String>,
    pub target_type: String,
    pub attribute_name: Option<String>,
    pub attribute_value: Option<String>,
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListAttributesResponse {
    pub attributes: Vec<berth_core::Attribute>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// One page of `items` after the offset in `next_token` (an opaque decimal offset).
fn page_of<T>(
    items: Vec<T>,
    next_token: Option<&str>,
    max_results: Option<i64>,
    limit: i64,
) -> Result<(Vec<T>, Option<String>), AwsError> {
    let max = match max_results {
        None => limit as usize,
        Some(n) if (1..=limit).contains(&n) => n as usize,
        Some(n) => {
            return Err(AwsError::invalid_parameter(format!(
                "maxResults must be between 1 and {limit} (got {n})."
            )));
        }
    };
    let start = match next_token {
        None => 0,
        Some(t) => t
            .parse::<usize>()
            .map_err(|_| AwsError::invalid_parameter("Invalid nextToken."))?,
    };
    let total = items.len();
    let page: Vec<T> = items.into_iter().skip(start).take(max).collect();
    let next = (start + page.len() < total).then(|| (start + page.len()).to_string());
    Ok((page, next))
}

async fn register_container_instance(
    ctx: &AwsContext,
    req: RegisterContainerInstanceRequest,
) -> Result<ContainerInstanceResponse, AwsError> {
    let ec2_instance_id = req
        .instance_identity_document
        .as_deref()
        .and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok())
        .and_then(|d| d["instanceId"].as_str().map(str::to_string));
    let instance = ctx
        .app
        .ecs
        .register_container_instance(
            &ctx.scope,
            berth_core::RegisterContainerInstance {
                cluster: req.cluster,
                container_instance_arn: req.container_instance_arn,
                ec2_instance_id,
                total: parse_resources(&req.total_resources)?,
                attributes: req.attributes,
                version_info: req.version_info,
                tags: req.tags,
            },
        )
        .map_err(ecs_error)?;
    let installation = ctx.app.ecs.installation().map_err(ecs_error)?;
    Ok(ContainerInstanceResponse {
        container_instance: instance_wire(ctx, instance, true),
        berth_installation_id: Some(installation.to_string()),
    })
}

async fn deregister_container_instance(
    ctx: &AwsContext,
    req: DeregisterContainerInstanceRequest,
) -> Result<ContainerInstanceResponse, AwsError> {
    let instance = ctx
        .app
        .ecs
        .deregister_container_instance(
            &ctx.scope,
            req.cluster.as_deref(),
            &req.container_instance,
            req.force,
        )
        .map_err(ecs_error)?;
    ctx.app
        .agents
        .deregistered(&ctx.scope, &instance.cluster, &instance.id);
    Ok(ContainerInstanceResponse {
        container_instance: instance_wire(ctx, instance, false),
        berth_installation_id: None,
    })
}

fn missing_instance(ctx: &AwsContext, cluster: Option<&str>, id_or_arn: String) -> Failure {
    let cluster = cluster.unwrap_or(berth_core::DEFAULT_CLUSTER);
    Failure::named(
        ctx,
        id_or_arn,
        |id| format!("container-instance/{cluster}/{id}"),
        "MISSING",
    )
}

async fn describe_container_instances(
    ctx: &AwsContext,
    req: DescribeContainerInstancesRequest,
) -> Result<ContainerInstancesResponse, AwsError> {
    if req.container_instances.is_empty() || req.container_instances.len() > 100 {
        return Err(AwsError::invalid_parameter(
            "containerInstances must list 1 to 100 container instances.",
        ));
    }
    let with_tags = req.include.iter().any(|i| i == "TAGS");
    let with_health = req.include.iter().any(|i| i == "CONTAINER_INSTANCE_HEALTH");
    let cluster = req.cluster.as_deref();
    let mut container_instances = Vec::new();
    let mut failures = Vec::new();
    for id in req.container_instances {
        match ctx.app.ecs.container_instance(&ctx.scope, cluster, &id) {
            Ok(Some(i)) => {
                let health =
                    with_health.then(|| ctx.app.ecs.container_instance_health(&ctx.scope, &i));
                container_instances.push(ContainerInstanceWire {
                    health_status: health,
                    ..instance_wire(ctx, i, with_tags)
                });
            }
            Ok(None) | Err(EcsError::InvalidParameter(_)) => {
                failures.push(missing_instance(ctx, cluster, id))
            }
            Err(e) => return Err(ecs_error(e)),
        }
    }
    Ok(ContainerInstancesResponse {
        container_instances,
        failures,
    })
}

async fn list_container_instances(
    ctx: &AwsContext,
    req: ListContainerInstancesRequest,
) -> Result<ListContainerInstancesResponse, AwsError> {
    let status = req
        .status
        .as_deref()
        .map(berth_core::InstanceStatus::parse)
        .transpose()
        .map_err(ecs_error)?;
    let arns: Vec<String> = ctx
        .app
        .ecs
        .list_container_instances(
            &ctx.scope,
            req.cluster.as_deref(),
            status,
            req.filter.as_deref(),
        )
        .map_err(ecs_error)?
        .iter()
        .map(|i| i.arn(&ctx.scope))
        .collect();
    let (container_instance_arns, next_token) =
        page_of(arns, req.next_token.as_deref(), req.max_results, 100)?;
    Ok(ListContainerInstancesResponse {
        container_instance_arns,
        next_token,
    })
}

async fn update_container_instances_state(
    ctx: &AwsContext,
    req: UpdateContainerInstancesStateRequest,
) -> Result<ContainerInstancesResponse, AwsError> {
    let status = berth_core::InstanceStatus::parse(&req.status).map_err(ecs_error)?;
    let cluster = req.cluster.as_deref();
    let mut container_instances = Vec::new();
    let mut failures = Vec::new();
    for id in req.container_instances {
        match ctx
            .app
            .ecs
            .update_container_instance_state(&ctx.scope, cluster, &id, status)
        {
            Ok(i) => container_instances.push(instance_wire(ctx, i, false)),
            Err(EcsError::InvalidParameter(_))
                if status != berth_core::InstanceStatus::Inactive =>
            {
                failures.push(missing_instance(ctx, cluster, id))
            }
            Err(e) => return Err(ecs_error(e)),
        }
    }
    Ok(ContainerInstancesResponse {
        container_instances,
        failures,
    })
}

async fn put_attributes(
    ctx: &AwsContext,
    req: AttributesRequest,
) -> Result<AttributesResponse, AwsError> {
    let attributes = ctx
        .app
        .ecs
        .put_attributes(&ctx.scope, req.cluster.as_deref(), &req.attributes)
        .map_err(ecs_error)?;
    Ok(AttributesResponse { attributes })
}

async fn delete_attributes(
    ctx: &AwsContext,
    req: AttributesRequest,
) -> Result<AttributesResponse, AwsError> {
    let attributes = ctx
        .app
        .ecs
        .delete_attributes(&ctx.scope, req.cluster.as_deref(), &req.attributes)
        .map_err(ecs_error)?;
    Ok(AttributesResponse { attributes })
}

async fn list_attributes(
    ctx: &AwsContext,
    req: ListAttributesRequest,
) -> Result<ListAttributesResponse, AwsError> {
    if req.target_type != "container-instance" {
        return Err(AwsError::invalid_parameter(
            "targetType must be container-instance.",
        ));
    }
    let all = ctx
        .app
        .ecs
        .list_attributes(
            &ctx.scope,
            req.cluster.as_deref(),
            req.attribute_name.as_deref(),
            req.attribute_value.as_deref(),
        )
        .map_err(ecs_error)?;
    let (attributes, next_token) = page_of(all, req.next_token.as_deref(), req.max_results, 100)?;
    Ok(ListAttributesResponse {
        attributes,
        next_token,
    })
}

// ---- task definitions ----

use berth_model::task_definition::{RegisterTaskDefinitionRequest, Tag, TaskDefinition};

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskDefinitionResponse {
    pub task_definition: TaskDefinition,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<Tag>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeTaskDefinitionRequest {
    pub task_definition: String,
    #[serde(default)]
    pub include: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTaskDefinitionsRequest {
    pub family_prefix: Option<String>,
    pub status: Option<String>,
    pub sort: Option<String>,
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTaskDefinitionsResponse {
    pub task_definition_arns: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTaskDefinitionFamiliesRequest {
    pub family_prefix: Option<String>,
    pub status: Option<String>,
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTaskDefinitionFamiliesResponse {
    pub families: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeregisterTaskDefinitionRequest {
    pub task_definition: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteTaskDefinitionsRequest {
    pub task_definitions: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteTaskDefinitionsResponse {
    pub task_definitions: Vec<TaskDefinition>,
    pub failures: Vec<Failure>,
}

async fn register_task_definition(
    ctx: &AwsContext,
    req: RegisterTaskDefinitionRequest,
) -> Result<TaskDefinitionResponse, AwsError> {
    let stored = ctx
        .app
        .ecs
        .register_task_definition(&ctx.scope, &req)
        .map_err(ecs_error)?;
    Ok(TaskDefinitionResponse {
        task_definition: stored.task_definition,
        tags: Some(stored.tags),
    })
}

async fn describe_task_definition(
    ctx: &AwsContext,
    req: DescribeTaskDefinitionRequest,
) -> Result<TaskDefinitionResponse, AwsError> {
    let stored = ctx
        .app
        .ecs
        .task_definition(&ctx.scope, &req.task_definition)
        .map_err(ecs_error)?;
    let with_tags = req.include.iter().any(|i| i == "TAGS");
    Ok(TaskDefinitionResponse {
        task_definition: stored.task_definition,
        tags: with_tags.then_some(stored.tags),
    })
}

fn task_definition_status(status: Option<&str>, allowed: &[&str]) -> Result<String, AwsError> {
    let status = status.unwrap_or("ACTIVE");
    if allowed.contains(&status) {
        Ok(status.to_string())
    } else {
        Err(AwsError::invalid_parameter(format!(
            "Invalid status '{status}'. Valid values: {allowed:?}"
        )))
    }
}

async fn list_task_definitions(
    ctx: &AwsContext,
    req: ListTaskDefinitionsRequest,
) -> Result<ListTaskDefinitionsResponse, AwsError> {
    let status = task_definition_status(
        req.status.as_deref(),
        &["ACTIVE", "INACTIVE", "DELETE_IN_PROGRESS"],
    )?;
    let descending = match req.sort.as_deref() {
        None | Some("ASC") => false,
        Some("DESC") => true,
        Some(other) => {
            return Err(AwsError::invalid_parameter(format!(
                "Invalid sort '{other}'. Valid values: [ASC, DESC]"
            )));
        }
    };
    let arns = ctx
        .app
        .ecs
        .list_task_definitions(
            &ctx.scope,
            req.family_prefix.as_deref(),
            &status,
            descending,
        )
        .map_err(ecs_error)?;
    let (task_definition_arns, next_token) =
        page_of(arns, req.next_token.as_deref(), req.max_results, 100)?;
    Ok(ListTaskDefinitionsResponse {
        task_definition_arns,
        next_token,
    })
}

async fn list_task_definition_families(
    ctx: &AwsContext,
    req: ListTaskDefinitionFamiliesRequest,
) -> Result<ListTaskDefinitionFamiliesResponse, AwsError> {
    let status = task_definition_status(req.status.as_deref(), &["ACTIVE", "INACTIVE", "ALL"])?;
    let all = ctx
        .app
        .ecs
        .list_task_definition_families(&ctx.scope, req.family_prefix.as_deref(), &status)
        .map_err(ecs_error)?;
    let (families, next_token) = page_of(all, req.next_token.as_deref(), req.max_results, 100)?;
    Ok(ListTaskDefinitionFamiliesResponse {
        families,
        next_token,
    })
}

async fn deregister_task_definition(
    ctx: &AwsContext,
    req: DeregisterTaskDefinitionRequest,
) -> Result<TaskDefinitionResponse, AwsError> {
    let stored = ctx
        .app
        .ecs
        .deregister_task_definition(&ctx.scope, &req.task_definition)
        .map_err(ecs_error)?;
    Ok(TaskDefinitionResponse {
        task_definition: stored.task_definition,
        tags: None,
    })
}

async fn delete_task_definitions(
    ctx: &AwsContext,
    req: DeleteTaskDefinitionsRequest,
) -> Result<DeleteTaskDefinitionsResponse, AwsError> {
    if req.task_definitions.is_empty() || req.task_definitions.len() > 10 {
        return Err(AwsError::invalid_parameter(
            "taskDefinitions must list 1 to 10 task definitions.",
        ));
    }
    let mut task_definitions = Vec::new();
    let mut failures = Vec::new();
    for reference in req.task_definitions {
        match ctx.app.ecs.delete_task_definition(&ctx.scope, &reference) {
            Ok(stored) => task_definitions.push(stored.task_definition),
            Err(EcsError::Client(reason)) => failures.push(Failure::named(
                ctx,
                reference,
                |r| format!("task-definition/{r}"),
                reason,
            )),
            Err(e) => return Err(ecs_error(e)),
        }
    }
    Ok(DeleteTaskDefinitionsResponse {
        task_definitions,
        failures,
    })
}

// ---- tasks ----

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskWire {
    pub task_arn: String,
    pub cluster_arn: String,
    pub task_definition_arn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_instance_arn: Option<String>,
    pub overrides: serde_json::Value,
    pub last_status: String,
    pub desired_status: String,
    pub cpu: String,
    pub memory: String,
    pub containers: Vec<berth_core::TaskContainer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_by: Option<String>,
    pub version: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_code: Option<String>,
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
    pub launch_type: String,
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
    pub health_status: Option<String>,
    pub attachments: Vec<berth_core::Attachment>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<EcsTag>>,
}

fn task_wire(ctx: &AwsContext, t: berth_core::Task, with_tags: bool) -> TaskWire {
    let fargate = t.is_fargate();
    TaskWire {
        task_arn: t.arn(&ctx.scope),
        cluster_arn: ctx.scope.arn("ecs", &format!("cluster/{}", t.cluster)),
        task_definition_arn: t.task_definition_arn,
        // A Fargate task runs on the platform's capacity: no container instance to show.
        container_instance_arn: t.container_instance_id.filter(|_| !fargate).map(|id| {
            ctx.scope
                .arn("ecs", &format!("container-instance/{}/{id}", t.cluster))
        }),
        platform_family: fargate.then(|| "Linux".to_string()),
        overrides: t.overrides.unwrap_or_else(
            || serde_json::json!({"containerOverrides": [], "inferenceAcceleratorOverrides": []}),
        ),
        last_status: t.last_status,
        desired_status: t.desired_status,
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
    pub overrides: Option<serde_json::Value>,
    #[serde(default)]
    pub tags: Vec<EcsTag>,
    pub client_token: Option<String>,
    pub network_configuration: Option<berth_core::NetworkConfiguration>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartTaskRequest {
    pub cluster: Option<String>,
    pub task_definition: String,
    pub container_instances: Vec<String>,
    pub group: Option<String>,
    pub started_by: Option<String>,
    pub overrides: Option<serde_json::Value>,
    #[serde(default)]
    pub tags: Vec<EcsTag>,
    pub network_configuration: Option<berth_core::NetworkConfiguration>,
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

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmitTaskStateChangeRequest {
    pub cluster: Option<String>,
    pub task: String,
    pub status: String,
    pub reason: Option<String>,
    pub pull_started_at: Option<f64>,
    pub pull_stopped_at: Option<f64>,
    pub execution_stopped_at: Option<f64>,
    #[serde(default)]
    pub containers: Vec<ContainerStateChangeWire>,
    #[serde(default)]
    pub attachments: Vec<AttachmentStateChangeWire>,
}

/// An attachment's change inside SubmitTaskStateChange (the task's ENI).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttachmentStateChangeWire {
    pub attachment_arn: String,
    pub status: String,
}

/// One container's change inside SubmitTaskStateChange.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStateChangeWire {
    pub container_name: Option<String>,
    pub status: Option<String>,
    pub runtime_id: Option<String>,
    pub exit_code: Option<i64>,
    pub reason: Option<String>,
    #[serde(default)]
    pub network_bindings: Vec<serde_json::Value>,
}

#[derive(Debug, Serialize)]
pub struct AcknowledgmentResponse {
    pub acknowledgment: &'static str,
}

fn run_outcome(ctx: &AwsContext, outcome: berth_core::RunTaskOutcome) -> TasksResponse {
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

async fn run_task(ctx: &AwsContext, req: RunTaskRequest) -> Result<TasksResponse, AwsError> {
    let outcome = ctx
        .app
        .ecs
        .start_run_task(
            &ctx.scope,
            berth_core::RunTask {
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

async fn start_task(ctx: &AwsContext, req: StartTaskRequest) -> Result<TasksResponse, AwsError> {
    if req.container_instances.is_empty() || req.container_instances.len() > 10 {
        return Err(AwsError::invalid_parameter(
            "containerInstances must list 1 to 10 container instances.",
        ));
    }
    let count = req.container_instances.len() as u32;
    let outcome = ctx
        .app
        .ecs
        .run_task(
            &ctx.scope,
            berth_core::RunTask {
                cluster: req.cluster,
                task_definition: req.task_definition,
                count,
                group: req.group,
                started_by: req.started_by,
                overrides: req.overrides,
                tags: req.tags,
                container_instances: Some(req.container_instances),
                network_configuration: req.network_configuration,
                ..berth_core::RunTask::default()
            },
        )
        .map_err(ecs_error)?;
    Ok(run_outcome(ctx, outcome))
}

async fn stop_task(ctx: &AwsContext, req: StopTaskRequest) -> Result<TaskResponse, AwsError> {
    let task = ctx
        .app
        .ecs
        .stop_task(&ctx.scope, req.cluster.as_deref(), &req.task, req.reason)
        .map_err(ecs_error)?;
    Ok(TaskResponse {
        task: task_wire(ctx, task, false),
    })
}

async fn describe_tasks(
    ctx: &AwsContext,
    req: DescribeTasksRequest,
) -> Result<TasksResponse, AwsError> {
    if req.tasks.is_empty() || req.tasks.len() > 100 {
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
                |r| format!("task/{}/{r}", cluster.name),
                "MISSING",
            )),
            Err(e) => return Err(ecs_error(e)),
        }
    }
    Ok(TasksResponse { tasks, failures })
}

async fn list_tasks(
    ctx: &AwsContext,
    req: ListTasksRequest,
) -> Result<ListTasksResponse, AwsError> {
    let desired = match req.desired_status.as_deref() {
        None => "RUNNING",
        Some(s @ ("RUNNING" | "PENDING" | "STOPPED")) => s,
        Some(other) => {
            return Err(AwsError::invalid_parameter(format!(
                "Invalid desiredStatus '{other}'. Valid values: [RUNNING, PENDING, STOPPED]"
            )));
        }
    };
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
        .map(|i| berth_core::instance_id(&ctx.scope, &cluster.name, i))
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
    // The token is the id of the page's last task: pages stay right while tasks come and go.
    if let Some(t) = &req.next_token
        && (t.is_empty() || !t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
    {
        return Err(AwsError::invalid_parameter("Invalid nextToken."));
    }
    let family_arn_prefix = req
        .family
        .as_ref()
        .map(|f| ctx.scope.arn("ecs", &format!("task-definition/{f}:")));
    let service_group = req.service_name.as_ref().map(|s| format!("service:{s}"));
    let keep = |t: &berth_core::Task| {
        (match desired {
            // ECS: RUNNING lists tasks meant to run (desired RUNNING); PENDING those not yet
            // running; STOPPED those meant to stop.
            "RUNNING" => t.desired_status == "RUNNING",
            "PENDING" => t.desired_status == "RUNNING" && t.last_status != "RUNNING",
            _ => t.desired_status == "STOPPED",
        }) && instance
            .as_ref()
            .is_none_or(|i| t.container_instance_id.as_ref() == Some(i))
            && family_arn_prefix
                .as_ref()
                .is_none_or(|p| t.task_definition_arn.starts_with(p.as_str()))
            && req
                .started_by
                .as_ref()
                .is_none_or(|s| t.started_by.as_ref() == Some(s))
            && service_group.as_ref().is_none_or(|g| &t.group == g)
            && req.launch_type.as_ref().is_none_or(|l| &t.launch_type == l)
    };
    let (tasks, next_token) = ctx
        .app
        .ecs
        .task_page(
            &ctx.scope,
            &cluster.name,
            req.next_token.as_deref(),
            max,
            keep,
        )
        .map_err(ecs_error)?;
    let task_arns = tasks.iter().map(|t| t.arn(&ctx.scope)).collect();
    Ok(ListTasksResponse {
        task_arns,
        next_token,
    })
}

async fn submit_task_state_change(
    ctx: &AwsContext,
    req: SubmitTaskStateChangeRequest,
) -> Result<AcknowledgmentResponse, AwsError> {
    ctx.app
        .ecs
        .submit_task_state_change(
            &ctx.scope,
            req.cluster.as_deref(),
            berth_core::TaskStateChange {
                task: req.task,
                status: req.status,
                reason: req.reason,
                pull_started_at: req.pull_started_at,
                pull_stopped_at: req.pull_stopped_at,
                execution_stopped_at: req.execution_stopped_at,
                containers: req
                    .containers
                    .into_iter()
                    .filter_map(|c| {
                        Some(berth_core::ContainerChange {
                            name: c.container_name?,
                            status: c.status,
                            runtime_id: c.runtime_id,
                            exit_code: c.exit_code,
                            reason: c.reason,
                            network_bindings: c.network_bindings,
                        })
                    })
                    .collect(),
                attachments: req
                    .attachments
                    .into_iter()
                    .map(|a| (a.attachment_arn, a.status))
                    .collect(),
            },
        )
        .map_err(ecs_error)?;
    Ok(AcknowledgmentResponse {
        acknowledgment: "ACK",
    })
}

// ---- services ----

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceWire {
    pub service_arn: String,
    pub service_name: String,
    pub cluster_arn: String,
    pub load_balancers: Vec<serde_json::Value>,
    pub service_registries: Vec<serde_json::Value>,
    pub status: String,
    pub desired_count: i64,
    pub running_count: i64,
    pub pending_count: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub launch_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity_provider_strategy: Option<Vec<CapacityProviderStrategyItem>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform_version: Option<String>,
    pub task_definition: String,
    pub deployment_configuration: berth_core::DeploymentConfiguration,
    pub deployments: Vec<berth_core::Deployment>,
    pub events: Vec<serde_json::Value>,
    pub created_at: f64,
    pub placement_constraints: Vec<berth_core::Placement>,
    pub placement_strategy: Vec<berth_core::Placement>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_configuration: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_check_grace_period_seconds: Option<i64>,
    pub scheduling_strategy: String,
    pub deployment_controller: serde_json::Value,
    pub created_by: String,
    #[serde(rename = "enableECSManagedTags")]
    pub enable_ecs_managed_tags: bool,
    pub propagate_tags: String,
    pub enable_execute_command: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<EcsTag>>,
}

/// The cluster's tasks, read once per request for the services' running/pending counts.
fn cluster_tasks(ctx: &AwsContext, cluster: &str) -> Result<Vec<berth_core::Task>, AwsError> {
    ctx.app
        .ecs
        .tasks(&ctx.scope, Some(cluster))
        .map_err(ecs_error)
}

fn service_wire(
    ctx: &AwsContext,
    s: berth_core::Service,
    tasks: &[berth_core::Task],
    with_tags: bool,
) -> Result<ServiceWire, AwsError> {
    let group = format!("service:{}", s.service_name);
    let ours = || tasks.iter().filter(|t| t.group == group && t.is_live());
    let running = ours().filter(|t| t.last_status == "RUNNING").count() as i64;
    let pending = ours().count() as i64 - running;
    Ok(ServiceWire {
        service_arn: s.arn(&ctx.scope),
        cluster_arn: ctx.scope.arn("ecs", &format!("cluster/{}", s.cluster)),
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
        deployment_controller: serde_json::json!({"type": "ECS"}),
        created_by: s.created_by,
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
    pub load_balancers: Vec<serde_json::Value>,
    #[serde(default)]
    pub service_registries: Vec<serde_json::Value>,
    pub desired_count: Option<i64>,
    pub client_token: Option<String>,
    pub launch_type: Option<String>,
    pub capacity_provider_strategy: Option<Vec<CapacityProviderStrategyItem>>,
    pub platform_version: Option<String>,
    pub deployment_configuration: Option<berth_core::DeploymentConfiguration>,
    #[serde(default)]
    pub placement_constraints: Vec<berth_core::Placement>,
    #[serde(default)]
    pub placement_strategy: Vec<berth_core::Placement>,
    pub network_configuration: Option<serde_json::Value>,
    pub health_check_grace_period_seconds: Option<i64>,
    pub scheduling_strategy: Option<String>,
    #[serde(default)]
    pub tags: Vec<EcsTag>,
    #[serde(default, rename = "enableECSManagedTags")]
    pub enable_ecs_managed_tags: bool,
    pub propagate_tags: Option<String>,
    #[serde(default)]
    pub enable_execute_command: bool,
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
    pub deployment_configuration: Option<berth_core::DeploymentConfiguration>,
    pub placement_constraints: Option<Vec<berth_core::Placement>>,
    pub placement_strategy: Option<Vec<berth_core::Placement>>,
    pub network_configuration: Option<serde_json::Value>,
    pub health_check_grace_period_seconds: Option<i64>,
    #[serde(default)]
    pub force_new_deployment: bool,
    pub enable_execute_command: Option<bool>,
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

async fn create_service(
    ctx: &AwsContext,
    req: CreateServiceRequest,
) -> Result<ServiceResponse, AwsError> {
    let service = ctx
        .app
        .ecs
        .create_service(
            &ctx.scope,
            berth_core::CreateService {
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
            },
        )
        .map_err(ecs_error)?;
    let tasks = cluster_tasks(ctx, &service.cluster)?;
    Ok(ServiceResponse {
        service: service_wire(ctx, service, &tasks, true)?,
    })
}

async fn update_service(
    ctx: &AwsContext,
    req: UpdateServiceRequest,
) -> Result<ServiceResponse, AwsError> {
    let service = ctx
        .app
        .ecs
        .update_service(
            &ctx.scope,
            req.cluster.as_deref(),
            &req.service,
            berth_core::UpdateService {
                desired_count: req.desired_count,
                task_definition: req.task_definition,
                deployment_configuration: req.deployment_configuration,
                placement_constraints: req.placement_constraints,
                placement_strategy: req.placement_strategy,
                network_configuration: req.network_configuration,
                health_check_grace_period_seconds: req.health_check_grace_period_seconds,
                force_new_deployment: req.force_new_deployment,
                enable_execute_command: req.enable_execute_command,
            },
        )
        .map_err(ecs_error)?;
    let tasks = cluster_tasks(ctx, &service.cluster)?;
    Ok(ServiceResponse {
        service: service_wire(ctx, service, &tasks, false)?,
    })
}

async fn delete_service(
    ctx: &AwsContext,
    req: DeleteServiceRequest,
) -> Result<ServiceResponse, AwsError> {
    let service = ctx
        .app
        .ecs
        .delete_service(&ctx.scope, req.cluster.as_deref(), &req.service, req.force)
        .map_err(ecs_error)?;
    let tasks = cluster_tasks(ctx, &service.cluster)?;
    Ok(ServiceResponse {
        service: service_wire(ctx, service, &tasks, false)?,
    })
}

async fn describe_services(
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
    let tasks = cluster_tasks(ctx, &cluster.name)?;
    let mut services = Vec::new();
    let mut failures = Vec::new();
    for name in req.services {
        match ctx.app.ecs.service(&ctx.scope, Some(&cluster.name), &name) {
            Ok(s) => services.push(service_wire(ctx, s, &tasks, with_tags)?),
            Err(EcsError::ServiceNotFound) => failures.push(Failure::named(
                ctx,
                name,
                |n| format!("service/{}/{n}", cluster.name),
                "MISSING",
            )),
            Err(e) => return Err(ecs_error(e)),
        }
    }
    Ok(DescribeServicesResponse { services, failures })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedAtFilter {
    pub before: Option<f64>,
    pub after: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListServiceDeploymentsRequest {
    pub service: String,
    pub cluster: Option<String>,
    #[serde(default)]
    pub status: Vec<String>,
    pub created_at: Option<CreatedAtFilter>,
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListServiceDeploymentsResponse {
    pub service_deployments: Vec<ServiceDeploymentBrief>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceDeploymentBrief {
    pub service_deployment_arn: String,
    pub service_arn: String,
    pub cluster_arn: String,
    pub created_at: f64,
    pub started_at: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<f64>,
    pub target_service_revision_arn: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeServiceDeploymentsRequest {
    pub service_deployment_arns: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeServiceDeploymentsResponse {
    pub service_deployments: Vec<ServiceDeploymentWire>,
    pub failures: Vec<Failure>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRevisionSummary {
    pub arn: String,
    pub requested_task_count: i64,
    pub running_task_count: i64,
    pub pending_task_count: i64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceDeploymentWire {
    pub service_deployment_arn: String,
    pub service_arn: String,
    pub cluster_arn: String,
    pub created_at: f64,
    pub started_at: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<f64>,
    pub updated_at: f64,
    pub source_service_revisions: Vec<ServiceRevisionSummary>,
    pub target_service_revision: ServiceRevisionSummary,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    pub deployment_configuration: berth_core::DeploymentConfiguration,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback: Option<serde_json::Value>,
    pub deployment_circuit_breaker: serde_json::Value,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StopServiceDeploymentRequest {
    pub service_deployment_arn: String,
    pub stop_type: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StopServiceDeploymentResponse {
    pub service_deployment_arn: String,
}

fn service_deployment_arn(ctx: &AwsContext, s: &berth_core::Service, id: &str) -> String {
    ctx.scope.arn(
        "ecs",
        &format!("service-deployment/{}/{}/{id}", s.cluster, s.service_name),
    )
}

fn service_revision(
    ctx: &AwsContext,
    s: &berth_core::Service,
    revision: u64,
) -> ServiceRevisionSummary {
    let deployment = s
        .deployments
        .iter()
        .find(|d| berth_core::revision_of(&d.id) == revision);
    ServiceRevisionSummary {
        arn: ctx.scope.arn(
            "ecs",
            &format!(
                "service-revision/{}/{}/{revision}",
                s.cluster, s.service_name
            ),
        ),
        requested_task_count: deployment.map_or(0, |d| d.desired_count),
        running_task_count: deployment.map_or(0, |d| d.running_count),
        pending_task_count: deployment.map_or(0, |d| d.pending_count),
    }
}

fn service_deployment_brief(
    ctx: &AwsContext,
    s: &berth_core::Service,
    r: &berth_core::ServiceDeploymentRecord,
) -> ServiceDeploymentBrief {
    ServiceDeploymentBrief {
        service_deployment_arn: service_deployment_arn(ctx, s, &r.id),
        service_arn: s.arn(&ctx.scope),
        cluster_arn: ctx.scope.arn("ecs", &format!("cluster/{}", s.cluster)),
        created_at: r.created_at,
        started_at: r.created_at,
        finished_at: r.finished_at,
        target_service_revision_arn: service_revision(ctx, s, r.revision).arn,
        status: r.status.clone(),
        status_reason: r.status_reason.clone(),
    }
}

fn service_deployment_wire(
    ctx: &AwsContext,
    s: &berth_core::Service,
    r: &berth_core::ServiceDeploymentRecord,
) -> ServiceDeploymentWire {
    let deployment = s.deployments.iter().find(|d| d.id == r.deployment_id);
    let breaker_on = r
        .deployment_configuration
        .deployment_circuit_breaker
        .as_ref()
        .is_some_and(|b| b.enable);
    let breaker_status = match (breaker_on, r.status.as_str()) {
        (false, _) => "DISABLED",
        (true, "IN_PROGRESS") => "MONITORING",
        (true, "ROLLBACK_IN_PROGRESS" | "ROLLBACK_SUCCESSFUL" | "ROLLBACK_FAILED") => "TRIGGERED",
        (true, _) => "MONITORING_COMPLETE",
    };
    let desired = deployment
        .map_or(s.desired_count, |d| d.desired_count)
        .max(0) as u32;
    ServiceDeploymentWire {
        service_deployment_arn: service_deployment_arn(ctx, s, &r.id),
        service_arn: s.arn(&ctx.scope),
        cluster_arn: ctx.scope.arn("ecs", &format!("cluster/{}", s.cluster)),
        created_at: r.created_at,
        started_at: r.created_at,
        finished_at: r.finished_at,
        stopped_at: r.stopped_at,
        updated_at: r.updated_at,
        source_service_revisions: r
            .source_revisions
            .iter()
            .map(|n| service_revision(ctx, s, *n))
            .collect(),
        target_service_revision: service_revision(ctx, s, r.revision),
        status: r.status.clone(),
        status_reason: r.status_reason.clone(),
        deployment_configuration: r.deployment_configuration.clone(),
        rollback: r.rollback.as_ref().map(|b| {
            serde_json::json!({
                "reason": b.reason,
                "startedAt": b.started_at,
                "serviceRevisionArn": service_revision(ctx, s, b.revision).arn,
            })
        }),
        deployment_circuit_breaker: serde_json::json!({
            "status": breaker_status,
            "failureCount": deployment.map_or(0, |d| d.failed_tasks),
            "threshold": berth_core::circuit_breaker_threshold(desired),
        }),
    }
}

async fn list_service_deployments(
    ctx: &AwsContext,
    req: ListServiceDeploymentsRequest,
) -> Result<ListServiceDeploymentsResponse, AwsError> {
    let created = req
        .created_at
        .as_ref()
        .map_or((None, None), |c| (c.after, c.before));
    let (service, records) = ctx
        .app
        .ecs
        .list_service_deployments(
            &ctx.scope,
            req.cluster.as_deref(),
            &req.service,
            &req.status,
            created,
        )
        .map_err(ecs_error)?;
    let briefs: Vec<ServiceDeploymentBrief> = records
        .iter()
        .map(|r| service_deployment_brief(ctx, &service, r))
        .collect();
    let (service_deployments, next_token) =
        page_of(briefs, req.next_token.as_deref(), req.max_results, 100)?;
    Ok(ListServiceDeploymentsResponse {
        service_deployments,
        next_token,
    })
}

async fn describe_service_deployments(
    ctx: &AwsContext,
    req: DescribeServiceDeploymentsRequest,
) -> Result<DescribeServiceDeploymentsResponse, AwsError> {
    if req.service_deployment_arns.is_empty() || req.service_deployment_arns.len() > 20 {
        return Err(AwsError::invalid_parameter(
            "serviceDeploymentArns must list 1 to 20 service deployments.",
        ));
    }
    let mut service_deployments = Vec::new();
    let mut failures = Vec::new();
    for arn in req.service_deployment_arns {
        match ctx.app.ecs.service_deployment(&ctx.scope, &arn) {
            Ok((service, record)) => {
                service_deployments.push(service_deployment_wire(ctx, &service, &record))
            }
            Err(EcsError::ServiceDeploymentNotFound) => failures.push(Failure {
                arn,
                reason: "MISSING".into(),
            }),
            Err(e) => return Err(ecs_error(e)),
        }
    }
    Ok(DescribeServiceDeploymentsResponse {
        service_deployments,
        failures,
    })
}

async fn stop_service_deployment(
    ctx: &AwsContext,
    req: StopServiceDeploymentRequest,
) -> Result<StopServiceDeploymentResponse, AwsError> {
    use berth_core::service_deployments::StopType;
    let stop_type = match req.stop_type.as_deref() {
        None | Some("ROLLBACK") => StopType::Rollback,
        Some("ABORT") => StopType::Abort,
        Some(other) => {
            return Err(AwsError::invalid_parameter(format!(
                "Invalid stopType '{other}'. Valid values: [ABORT, ROLLBACK]"
            )));
        }
    };
    let (service, record) = ctx
        .app
        .ecs
        .stop_service_deployment(&ctx.scope, &req.service_deployment_arn, stop_type)
        .map_err(ecs_error)?;
    Ok(StopServiceDeploymentResponse {
        service_deployment_arn: service_deployment_arn(ctx, &service, &record.id),
    })
}

async fn list_services(
    ctx: &AwsContext,
    req: ListServicesRequest,
) -> Result<ListServicesResponse, AwsError> {
    let arns: Vec<String> = ctx
        .app
        .ecs
        .services(&ctx.scope, req.cluster.as_deref())
        .map_err(ecs_error)?
        .into_iter()
        .filter(|s| req.launch_type.as_ref().is_none_or(|l| &s.launch_type == l))
        .filter(|s| {
            req.scheduling_strategy
                .as_ref()
                .is_none_or(|l| &s.scheduling_strategy == l)
        })
        .map(|s| s.arn(&ctx.scope))
        .collect();
    let (service_arns, next_token) =
        page_of(arns, req.next_token.as_deref(), req.max_results, 100)?;
    Ok(ListServicesResponse {
        service_arns,
        next_token,
    })
}

// ---- account settings and the agent's calls ----

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListAccountSettingsRequest {
    pub name: Option<String>,
    pub value: Option<String>,
    pub principal_arn: Option<String>,
    #[serde(default)]
    pub effective_settings: bool,
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListAccountSettingsResponse {
    pub settings: Vec<berth_core::AccountSetting>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutAccountSettingRequest {
    pub name: String,
    pub value: String,
    pub principal_arn: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct AccountSettingResponse {
    pub setting: berth_core::AccountSetting,
}

async fn list_account_settings(
    ctx: &AwsContext,
    req: ListAccountSettingsRequest,
) -> Result<ListAccountSettingsResponse, AwsError> {
    let all: Vec<berth_core::AccountSetting> = ctx
        .app
        .ecs
        .account_settings(&ctx.scope)
        .map_err(ecs_error)?
        .into_iter()
        .filter(|s| req.name.as_ref().is_none_or(|n| &s.name == n))
        .filter(|s| req.value.as_ref().is_none_or(|v| &s.value == v))
        // Without effectiveSettings, ECS lists only what was set explicitly.
        .filter(|s| req.effective_settings || req.name.is_some() || s.kind == "user")
        .collect();
    let (settings, next_token) = page_of(all, req.next_token.as_deref(), req.max_results, 10)?;
    Ok(ListAccountSettingsResponse {
        settings,
        next_token,
    })
}

async fn put_account_setting(
    ctx: &AwsContext,
    req: PutAccountSettingRequest,
) -> Result<AccountSettingResponse, AwsError> {
    let setting = ctx
        .app
        .ecs
        .put_account_setting(&ctx.scope, &req.name, &req.value)
        .map_err(ecs_error)?;
    Ok(AccountSettingResponse { setting })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiscoverPollEndpointRequest {
    pub container_instance: Option<String>,
    pub cluster: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DiscoverPollEndpointResponse {
    pub endpoint: String,
    pub telemetry_endpoint: String,
    pub service_connect_endpoint: String,
}

/// The agent asks where to poll: ACS and telemetry are served on this same port (the
/// websockets themselves arrive with the agent issue).
async fn discover_poll_endpoint(
    ctx: &AwsContext,
    _req: DiscoverPollEndpointRequest,
) -> Result<DiscoverPollEndpointResponse, AwsError> {
    // The agent dials `<endpoint>/ws` (ACS) and `<telemetryEndpoint>/ws` (TCS), swapping
    // http for ws; both are served on this port (see acs.rs).
    Ok(DiscoverPollEndpointResponse {
        endpoint: ctx.endpoint.clone(),
        telemetry_endpoint: format!("{}/tcs", ctx.endpoint),
        service_connect_endpoint: ctx.endpoint.clone(),
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmitContainerStateChangeRequest {
    pub cluster: Option<String>,
    pub task: Option<String>,
    pub container_name: Option<String>,
    pub status: Option<String>,
    pub runtime_id: Option<String>,
    pub exit_code: Option<i64>,
    pub reason: Option<String>,
    #[serde(default)]
    pub network_bindings: Vec<serde_json::Value>,
}

async fn submit_container_state_change(
    ctx: &AwsContext,
    req: SubmitContainerStateChangeRequest,
) -> Result<AcknowledgmentResponse, AwsError> {
    let (Some(task), Some(name), Some(status)) = (req.task, req.container_name, req.status) else {
        return Err(AwsError::invalid_parameter(
            "task, containerName and status are required.",
        ));
    };
    ctx.app
        .ecs
        .submit_container_state_change(
            &ctx.scope,
            req.cluster.as_deref(),
            &task,
            berth_core::ContainerChange {
                name,
                status: Some(status),
                runtime_id: req.runtime_id,
                exit_code: req.exit_code,
                reason: req.reason,
                network_bindings: req.network_bindings,
            },
        )
        .map_err(ecs_error)?;
    Ok(AcknowledgmentResponse {
        acknowledgment: "ACK",
    })
}

#[derive(Debug, Deserialize)]
pub struct SubmitAttachmentStateChangesRequest {
    pub cluster: Option<String>,
    pub attachments: Vec<serde_json::Value>,
}

/// Instance-level attachments (trunk ENIs) are not Berth's: their state changes are
/// acknowledged. A task's ENI is reported with the task (SubmitTaskStateChange's
/// `attachments`).
async fn submit_attachment_state_changes(
    ctx: &AwsContext,
    req: SubmitAttachmentStateChangesRequest,
) -> Result<AcknowledgmentResponse, AwsError> {
    ctx.app
        .ecs
        .active_cluster(&ctx.scope, req.cluster.as_deref())
        .map_err(ecs_error)?;
    let _ = req.attachments;
    Ok(AcknowledgmentResponse {
        acknowledgment: "ACK",
    })
}
