//! Clusters and capacity providers: Create/Describe/List/Delete/UpdateCluster,
//! UpdateClusterSettings, PutClusterCapacityProviders (capacity providers themselves:
//! `capacity_providers.rs`).

use berth_ecs::{
    CapacityProviderStrategyItem, Cluster, ClusterSetting, ClusterUpdate, CreateCluster, EcsError,
    EcsTag,
};
use berth_model::ecs::{ClusterConfiguration, EcsArn, ServiceConnectDefaults};
use serde::{Deserialize, Serialize};

use super::{Failure, ecs_error};
use crate::protocol::{AwsContext, AwsError};

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
    pub status: berth_ecs::ClusterStatus,
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
    pub configuration: Option<ClusterConfiguration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_connect_defaults: Option<ServiceConnectDefaults>,
    pub capacity_providers: Vec<String>,
    pub default_capacity_provider_strategy: Vec<CapacityProviderStrategyItem>,
}

/// Which optional parts of a cluster a response carries (DescribeClusters' `include`).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Include {
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

pub(super) fn cluster_wire(
    ctx: &AwsContext,
    c: Cluster,
    include: Include,
) -> Result<ClusterWire, AwsError> {
    let counts = ctx
        .app
        .ecs
        .cluster_counts(&ctx.scope, &c.name)
        .map_err(ecs_error)?;
    let statistics = if include.statistics {
        let s = ctx
            .app
            .ecs
            .cluster_statistics(&ctx.scope, &c.name)
            .map_err(ecs_error)?;
        [
            ("runningEC2TasksCount", s.running_tasks.ec2),
            ("runningFargateTasksCount", s.running_tasks.fargate),
            ("pendingEC2TasksCount", s.pending_tasks.ec2),
            ("pendingFargateTasksCount", s.pending_tasks.fargate),
            ("runningExternalTasksCount", s.running_tasks.external),
            ("pendingExternalTasksCount", s.pending_tasks.external),
            ("activeEC2ServiceCount", s.active_services.ec2),
            ("activeFargateServiceCount", s.active_services.fargate),
            ("drainingEC2ServiceCount", s.draining_services.ec2),
            ("drainingFargateServiceCount", s.draining_services.fargate),
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

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateClusterRequest {
    pub cluster_name: Option<String>,
    #[serde(default)]
    pub tags: Vec<EcsTag>,
    #[serde(default)]
    pub settings: Vec<ClusterSetting>,
    pub configuration: Option<ClusterConfiguration>,
    #[serde(default)]
    pub capacity_providers: Vec<String>,
    #[serde(default)]
    pub default_capacity_provider_strategy: Vec<CapacityProviderStrategyItem>,
    pub service_connect_defaults: Option<ServiceConnectDefaults>,
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
    pub configuration: Option<ClusterConfiguration>,
    pub service_connect_defaults: Option<ServiceConnectDefaults>,
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

pub(super) async fn create_cluster(
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
    ctx.app
        .ensure_service_linked_role(ctx.scope.account.as_str(), "ecs.amazonaws.com");
    Ok(ClusterResponse {
        cluster: cluster_wire(ctx, cluster, Include::ALL)?,
    })
}

pub(super) async fn describe_clusters(
    ctx: &AwsContext,
    req: DescribeClustersRequest,
) -> Result<DescribeClustersResponse, AwsError> {
    let include = Include::parse(&req.include)?;
    let names = req
        .clusters
        .unwrap_or_else(|| vec![berth_ecs::DEFAULT_CLUSTER.to_string()]);
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
            Err(EcsError::ClusterNotFound) => {
                failures.push(Failure::named(ctx, name, EcsArn::cluster, "MISSING"))
            }
            Err(e) => return Err(ecs_error(e)),
        }
    }
    Ok(DescribeClustersResponse { clusters, failures })
}

pub(super) async fn list_clusters(
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

pub(super) async fn delete_cluster(
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

pub(super) async fn update_cluster(
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

pub(super) async fn update_cluster_settings(
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

pub(super) async fn put_cluster_capacity_providers(
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
