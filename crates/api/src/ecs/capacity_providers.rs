//! Capacity providers: Create/Update/Delete/DescribeCapacityProviders (the built-in
//! FARGATE and FARGATE_SPOT, and Auto Scaling group providers).

use berth_ecs::EcsTag;
use berth_ecs::capacity_providers::{
    AutoScalingGroupProvider, AutoScalingGroupProviderSpec, CapacityProvider,
};
use berth_model::ecs::{CapacityProviderStatus, CapacityProviderUpdateStatus};
use serde::{Deserialize, Serialize};

use super::{Failure, Order, ecs_error, page_of};
use crate::protocol::{AwsContext, AwsError};

/// ECS's CapacityProvider.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CapacityProviderWire {
    pub capacity_provider_arn: String,
    pub name: String,
    pub status: CapacityProviderStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_scaling_group_provider: Option<AutoScalingGroupProvider>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_status: Option<CapacityProviderUpdateStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_status_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<EcsTag>>,
}

fn wire(ctx: &AwsContext, p: CapacityProvider, with_tags: bool) -> CapacityProviderWire {
    CapacityProviderWire {
        capacity_provider_arn: p.arn(&ctx.scope),
        name: p.name,
        status: p.status,
        auto_scaling_group_provider: p.auto_scaling_group_provider,
        update_status: p.update_status,
        update_status_reason: p.update_status_reason,
        tags: with_tags.then_some(p.tags),
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CapacityProviderResponse {
    pub capacity_provider: CapacityProviderWire,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateCapacityProviderRequest {
    pub name: String,
    #[serde(default)]
    pub auto_scaling_group_provider: AutoScalingGroupProviderSpec,
    #[serde(default)]
    pub tags: Vec<EcsTag>,
}

pub(super) async fn create_capacity_provider(
    ctx: &AwsContext,
    req: CreateCapacityProviderRequest,
) -> Result<CapacityProviderResponse, AwsError> {
    check_group_protection(ctx, &req.auto_scaling_group_provider)?;
    let p = ctx
        .app
        .ecs
        .create_capacity_provider(
            &ctx.scope,
            &req.name,
            &req.auto_scaling_group_provider,
            req.tags,
        )
        .map_err(ecs_error)?;
    Ok(CapacityProviderResponse {
        capacity_provider: wire(ctx, p, true),
    })
}

/// Managed termination protection asks that the group protect its new instances from
/// scale-in (ECS's check; the group is read from Berth's EC2 Auto Scaling).
fn check_group_protection(
    ctx: &AwsContext,
    spec: &AutoScalingGroupProviderSpec,
) -> Result<(), AwsError> {
    use berth_model::ecs::ManagedSwitch;
    if spec.managed_termination_protection != Some(ManagedSwitch::Enabled) {
        return Ok(());
    }
    let Some(arn) = spec.auto_scaling_group_arn.as_deref() else {
        return Ok(());
    };
    let scope =
        berth_autoscaling::AsgScope::new(ctx.scope.account.as_str(), ctx.scope.region.as_str());
    let name = berth_ecs::capacity_providers::group_name(arn);
    match ctx.app.autoscaling.group(&scope, name) {
        Ok(group) if !group.new_instances_protected_from_scale_in => Err(ecs_error(
            berth_ecs::EcsError::Client(berth_ecs::capacity_providers::GROUP_NOT_PROTECTED.into()),
        )),
        _ => Ok(()),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateCapacityProviderRequest {
    pub name: String,
    #[serde(default)]
    pub auto_scaling_group_provider: AutoScalingGroupProviderSpec,
}

pub(super) async fn update_capacity_provider(
    ctx: &AwsContext,
    req: UpdateCapacityProviderRequest,
) -> Result<CapacityProviderResponse, AwsError> {
    let p = ctx
        .app
        .ecs
        .update_capacity_provider(&ctx.scope, &req.name, &req.auto_scaling_group_provider)
        .map_err(ecs_error)?;
    Ok(CapacityProviderResponse {
        capacity_provider: wire(ctx, p, true),
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteCapacityProviderRequest {
    pub capacity_provider: String,
}

pub(super) async fn delete_capacity_provider(
    ctx: &AwsContext,
    req: DeleteCapacityProviderRequest,
) -> Result<CapacityProviderResponse, AwsError> {
    let p = ctx
        .app
        .ecs
        .delete_capacity_provider(&ctx.scope, &req.capacity_provider)
        .map_err(ecs_error)?;
    Ok(CapacityProviderResponse {
        capacity_provider: wire(ctx, p, true),
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeCapacityProvidersRequest {
    pub capacity_providers: Option<Vec<String>>,
    #[serde(default)]
    pub include: Vec<String>,
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeCapacityProvidersResponse {
    pub capacity_providers: Vec<CapacityProviderWire>,
    pub failures: Vec<Failure>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// DescribeCapacityProviders' page size: at most 10 (the API reference).
const PAGE_LIMIT: i64 = 10;

pub(super) async fn describe_capacity_providers(
    ctx: &AwsContext,
    req: DescribeCapacityProvidersRequest,
) -> Result<DescribeCapacityProvidersResponse, AwsError> {
    let with_tags = req.include.iter().any(|i| i == "TAGS");
    let ecs = &ctx.app.ecs;
    let (found, failures, next_token) = match req.capacity_providers {
        Some(named) => {
            let mut found = Vec::new();
            let mut failures = Vec::new();
            for name_or_arn in named {
                match ecs
                    .capacity_provider(&ctx.scope, &name_or_arn)
                    .map_err(ecs_error)?
                {
                    Some(p) => found.push(p),
                    None => failures.push(Failure {
                        arn: name_or_arn,
                        reason: "MISSING".into(),
                    }),
                }
            }
            (found, failures, None)
        }
        None => {
            let all = ecs.capacity_providers(&ctx.scope).map_err(ecs_error)?;
            let (page, next) = page_of(
                all,
                |p| p.name.clone(),
                Order::Ascending,
                req.next_token.as_deref(),
                req.max_results,
                PAGE_LIMIT,
            )?;
            (page, Vec::new(), next)
        }
    };
    Ok(DescribeCapacityProvidersResponse {
        capacity_providers: found.into_iter().map(|p| wire(ctx, p, with_tags)).collect(),
        failures,
        next_token,
    })
}
