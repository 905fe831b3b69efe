//! Service deployments: List/Describe/StopServiceDeployment; DescribeServiceRevisions.

use berth_ecs::EcsError;
use serde::{Deserialize, Serialize};

use super::{Failure, Order, ecs_error, page_of};
use crate::protocol::{AwsContext, AwsError};
use berth_model::ecs::{EcsArn, ServiceDeploymentStatus};

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
    pub status: ServiceDeploymentStatus,
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
    pub status: ServiceDeploymentStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    pub deployment_configuration: berth_ecs::DeploymentConfiguration,
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

pub(super) fn service_deployment_arn(ctx: &AwsContext, s: &berth_ecs::Service, id: &str) -> String {
    EcsArn::service_deployment(&ctx.scope, &s.cluster, &s.service_name, id).into_string()
}

pub(super) fn service_revision(
    ctx: &AwsContext,
    s: &berth_ecs::Service,
    revision: u64,
) -> ServiceRevisionSummary {
    let deployment = s
        .deployments
        .iter()
        .find(|d| berth_ecs::revision_of(&d.id) == revision);
    ServiceRevisionSummary {
        arn: EcsArn::service_revision(&ctx.scope, &s.cluster, &s.service_name, revision)
            .into_string(),
        requested_task_count: deployment.map_or(0, |d| d.desired_count),
        running_task_count: deployment.map_or(0, |d| d.running_count),
        pending_task_count: deployment.map_or(0, |d| d.pending_count),
    }
}

pub(super) fn service_deployment_brief(
    ctx: &AwsContext,
    s: &berth_ecs::Service,
    r: &berth_ecs::ServiceDeploymentRecord,
) -> ServiceDeploymentBrief {
    ServiceDeploymentBrief {
        service_deployment_arn: service_deployment_arn(ctx, s, &r.id),
        service_arn: s.arn(&ctx.scope),
        cluster_arn: EcsArn::cluster(&ctx.scope, &s.cluster).into_string(),
        created_at: r.created_at,
        started_at: r.created_at,
        finished_at: r.finished_at,
        target_service_revision_arn: service_revision(ctx, s, r.revision).arn,
        status: r.status,
        status_reason: r.status_reason.clone(),
    }
}

pub(super) fn service_deployment_wire(
    ctx: &AwsContext,
    s: &berth_ecs::Service,
    r: &berth_ecs::ServiceDeploymentRecord,
) -> ServiceDeploymentWire {
    let deployment = s.deployments.iter().find(|d| d.id == r.deployment_id);
    let breaker_on = r
        .deployment_configuration
        .deployment_circuit_breaker
        .as_ref()
        .is_some_and(|b| b.enable);
    let breaker_status = {
        use ServiceDeploymentStatus as S;
        match (breaker_on, r.status) {
            (false, _) => "DISABLED",
            (true, S::InProgress) => "MONITORING",
            (true, S::RollbackInProgress | S::RollbackSuccessful | S::RollbackFailed) => {
                "TRIGGERED"
            }
            (true, _) => "MONITORING_COMPLETE",
        }
    };
    let desired = deployment
        .map_or(s.desired_count, |d| d.desired_count)
        .max(0) as u32;
    ServiceDeploymentWire {
        service_deployment_arn: service_deployment_arn(ctx, s, &r.id),
        service_arn: s.arn(&ctx.scope),
        cluster_arn: EcsArn::cluster(&ctx.scope, &s.cluster).into_string(),
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
        status: r.status,
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
            "threshold": berth_ecs::circuit_breaker_threshold(desired),
        }),
    }
}

pub(super) async fn list_service_deployments(
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
    let (service_deployments, next_token) = page_of(
        briefs,
        // Newest first, as ECS lists them.
        |b| format!("{:020.3}/{}", b.created_at, b.service_deployment_arn),
        Order::Descending,
        req.next_token.as_deref(),
        req.max_results,
        100,
    )?;
    Ok(ListServiceDeploymentsResponse {
        service_deployments,
        next_token,
    })
}

pub(super) async fn describe_service_deployments(
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

pub(super) async fn stop_service_deployment(
    ctx: &AwsContext,
    req: StopServiceDeploymentRequest,
) -> Result<StopServiceDeploymentResponse, AwsError> {
    use berth_ecs::service_deployments::StopType;
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

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeServiceRevisionsRequest {
    #[serde(default)]
    pub service_revision_arns: Vec<String>,
}

/// ECS's ServiceRevision: what a deployment runs its tasks with.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRevisionWire {
    pub service_revision_arn: String,
    pub service_arn: String,
    pub cluster_arn: String,
    pub task_definition: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity_provider_strategy: Option<Vec<berth_ecs::CapacityProviderStrategyItem>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub launch_type: Option<berth_model::ecs::LaunchType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform_version: Option<String>,
    pub load_balancers: Vec<berth_model::ecs::LoadBalancer>,
    pub service_registries: Vec<berth_model::ecs::ServiceRegistry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_configuration: Option<berth_ecs::NetworkConfiguration>,
    pub created_at: f64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeServiceRevisionsResponse {
    pub service_revisions: Vec<ServiceRevisionWire>,
    pub failures: Vec<Failure>,
}

pub(super) async fn describe_service_revisions(
    ctx: &AwsContext,
    req: DescribeServiceRevisionsRequest,
) -> Result<DescribeServiceRevisionsResponse, AwsError> {
    if req.service_revision_arns.is_empty() || req.service_revision_arns.len() > 20 {
        return Err(AwsError::invalid_parameter(
            "serviceRevisionArns must list 1 to 20 service revisions.",
        ));
    }
    let mut service_revisions = Vec::new();
    let mut failures = Vec::new();
    for arn in req.service_revision_arns {
        match ctx
            .app
            .ecs
            .service_revision(&ctx.scope, &arn)
            .map_err(ecs_error)?
        {
            Some((s, r)) => service_revisions.push(ServiceRevisionWire {
                service_revision_arn: arn,
                service_arn: s.arn(&ctx.scope),
                cluster_arn: EcsArn::cluster(&ctx.scope, &s.cluster).into_string(),
                task_definition: r.task_definition,
                launch_type: r
                    .capacity_provider_strategy
                    .is_empty()
                    .then_some(r.launch_type),
                capacity_provider_strategy: (!r.capacity_provider_strategy.is_empty())
                    .then_some(r.capacity_provider_strategy),
                platform_version: r.platform_version,
                load_balancers: r.load_balancers,
                service_registries: r.service_registries,
                network_configuration: r.network_configuration,
                created_at: r.created_at,
            }),
            None => failures.push(Failure {
                arn,
                reason: "MISSING".into(),
            }),
        }
    }
    Ok(DescribeServiceRevisionsResponse {
        service_revisions,
        failures,
    })
}
