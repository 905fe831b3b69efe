//! Lifecycle policies: Put/Get/DeleteLifecyclePolicy and the preview
//! (StartLifecyclePolicyPreview, GetLifecyclePolicyPreview). The preview is evaluated on the
//! blocking pool after StartLifecyclePolicyPreview answers IN_PROGRESS, as ECR evaluates it
//! in the background; the policy itself runs from the server's housekeeping loop.

use berth_registry::{ImageIdentifier, ListImagesFilter, PreviewResult};
use serde::{Deserialize, Serialize};

use super::images::{ImageFilter, tag_status};
use super::{check_registry, ecr_error, max_results, repository_name};
use crate::protocol::{AwsContext, AwsError};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutLifecyclePolicyRequest {
    pub registry_id: Option<String>,
    pub repository_name: String,
    pub lifecycle_policy_text: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PutLifecyclePolicyResponse {
    pub registry_id: String,
    pub repository_name: String,
    pub lifecycle_policy_text: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LifecyclePolicyRequest {
    pub registry_id: Option<String>,
    pub repository_name: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LifecyclePolicyResponse {
    pub registry_id: String,
    pub repository_name: String,
    pub lifecycle_policy_text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_evaluated_at: Option<f64>,
}

impl LifecyclePolicyResponse {
    /// Get/DeleteLifecyclePolicy's answer: the repository's policy as stored.
    fn of(
        ctx: &AwsContext,
        repo: &berth_model::RepositoryName,
        policy: berth_registry::LifecyclePolicyState,
    ) -> Self {
        LifecyclePolicyResponse {
            registry_id: ctx.scope.account.to_string(),
            repository_name: repo.to_string(),
            lifecycle_policy_text: policy.text,
            last_evaluated_at: policy.last_evaluated_at,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartLifecyclePolicyPreviewRequest {
    pub registry_id: Option<String>,
    pub repository_name: String,
    pub lifecycle_policy_text: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StartLifecyclePolicyPreviewResponse {
    pub registry_id: String,
    pub repository_name: String,
    pub lifecycle_policy_text: String,
    pub status: &'static str,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetLifecyclePolicyPreviewRequest {
    pub registry_id: Option<String>,
    pub repository_name: String,
    pub image_ids: Option<Vec<ImageIdentifier>>,
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
    pub filter: Option<ImageFilter>,
}

#[derive(Debug, Serialize)]
pub struct RuleAction {
    #[serde(rename = "type")]
    pub action_type: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PreviewResultWire {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub image_tags: Vec<String>,
    pub image_digest: String,
    pub image_pushed_at: f64,
    pub action: RuleAction,
    pub applied_rule_priority: i64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PreviewSummary {
    pub expiring_image_total_count: usize,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetLifecyclePolicyPreviewResponse {
    pub registry_id: String,
    pub repository_name: String,
    pub lifecycle_policy_text: String,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
    pub preview_results: Vec<PreviewResultWire>,
    pub summary: PreviewSummary,
}

pub(super) async fn put_lifecycle_policy(
    ctx: &AwsContext,
    req: PutLifecyclePolicyRequest,
) -> Result<PutLifecyclePolicyResponse, AwsError> {
    check_registry(ctx, &req.registry_id)?;
    let repo = repository_name(&req.repository_name)?;
    ctx.app
        .registry
        .put_lifecycle_policy(&ctx.scope, &repo, &req.lifecycle_policy_text)
        .map_err(ecr_error)?;
    Ok(PutLifecyclePolicyResponse {
        registry_id: ctx.scope.account.to_string(),
        repository_name: repo.to_string(),
        lifecycle_policy_text: req.lifecycle_policy_text,
    })
}

pub(super) async fn get_lifecycle_policy(
    ctx: &AwsContext,
    req: LifecyclePolicyRequest,
) -> Result<LifecyclePolicyResponse, AwsError> {
    check_registry(ctx, &req.registry_id)?;
    let repo = repository_name(&req.repository_name)?;
    let policy = ctx
        .app
        .registry
        .get_lifecycle_policy(&ctx.scope, &repo)
        .map_err(ecr_error)?;
    Ok(LifecyclePolicyResponse::of(ctx, &repo, policy))
}

pub(super) async fn delete_lifecycle_policy(
    ctx: &AwsContext,
    req: LifecyclePolicyRequest,
) -> Result<LifecyclePolicyResponse, AwsError> {
    check_registry(ctx, &req.registry_id)?;
    let repo = repository_name(&req.repository_name)?;
    let policy = ctx
        .app
        .registry
        .delete_lifecycle_policy(&ctx.scope, &repo)
        .map_err(ecr_error)?;
    Ok(LifecyclePolicyResponse::of(ctx, &repo, policy))
}

pub(super) async fn start_lifecycle_policy_preview(
    ctx: &AwsContext,
    req: StartLifecyclePolicyPreviewRequest,
) -> Result<StartLifecyclePolicyPreviewResponse, AwsError> {
    check_registry(ctx, &req.registry_id)?;
    let repo = repository_name(&req.repository_name)?;
    let preview = ctx
        .app
        .registry
        .start_lifecycle_policy_preview(&ctx.scope, &repo, req.lifecycle_policy_text.as_deref())
        .map_err(ecr_error)?;
    let (registry, scope, name) = (ctx.app.registry.clone(), ctx.scope.clone(), repo.clone());
    tokio::task::spawn_blocking(move || {
        if let Err(e) = registry.complete_lifecycle_policy_preview(&scope, &name) {
            tracing::warn!(error = %e, repository = %name, "lifecycle policy preview failed");
        }
    });
    Ok(StartLifecyclePolicyPreviewResponse {
        registry_id: ctx.scope.account.to_string(),
        repository_name: repo.to_string(),
        lifecycle_policy_text: preview.policy_text,
        status: preview.status.as_str(),
    })
}

fn wire(r: PreviewResult) -> PreviewResultWire {
    PreviewResultWire {
        image_tags: r.image_tags,
        image_digest: r.image_digest.to_string(),
        image_pushed_at: r.image_pushed_at,
        action: RuleAction {
            action_type: "EXPIRE",
        },
        applied_rule_priority: r.applied_rule_priority,
    }
}

pub(super) async fn get_lifecycle_policy_preview(
    ctx: &AwsContext,
    req: GetLifecyclePolicyPreviewRequest,
) -> Result<GetLifecyclePolicyPreviewResponse, AwsError> {
    check_registry(ctx, &req.registry_id)?;
    let repo = repository_name(&req.repository_name)?;
    let filter = tag_status(&req.filter)?;
    if req.image_ids.is_some() && (req.next_token.is_some() || req.max_results.is_some()) {
        return Err(AwsError::invalid_parameter(
            "Invalid parameter: nextToken and maxResults cannot be used with imageIds",
        ));
    }
    let max = max_results(req.max_results, 100, 100)?;
    let preview = ctx
        .app
        .registry
        .lifecycle_policy_preview(&ctx.scope, &repo)
        .map_err(ecr_error)?;
    let total = preview.results.len();
    let selected: Vec<PreviewResult> = preview
        .results
        .into_iter()
        .filter(|r| match filter {
            ListImagesFilter::Any => true,
            ListImagesFilter::Tagged => !r.image_tags.is_empty(),
            ListImagesFilter::Untagged => r.image_tags.is_empty(),
        })
        .filter(|r| {
            req.image_ids.as_ref().is_none_or(|ids| {
                ids.iter().any(|id| {
                    id.image_digest.as_deref() == Some(&r.image_digest.to_string())
                        || id
                            .image_tag
                            .as_ref()
                            .is_some_and(|t| r.image_tags.contains(t))
                })
            })
        })
        .collect();
    // The results are fixed once COMPLETE, so an offset is a stable page token.
    let start = match req.next_token.as_deref() {
        None => 0,
        Some(t) => t
            .parse::<usize>()
            .ok()
            .filter(|n| *n <= selected.len())
            .ok_or_else(|| AwsError::invalid_parameter("Invalid parameter at 'nextToken'"))?,
    };
    let end = (start + max).min(selected.len());
    let next_token = (end < selected.len()).then(|| end.to_string());
    Ok(GetLifecyclePolicyPreviewResponse {
        registry_id: ctx.scope.account.to_string(),
        repository_name: repo.to_string(),
        lifecycle_policy_text: preview.policy_text,
        status: preview.status.as_str(),
        next_token,
        preview_results: selected
            .into_iter()
            .skip(start)
            .take(end - start)
            .map(wire)
            .collect(),
        summary: PreviewSummary {
            expiring_image_total_count: total,
        },
    })
}
