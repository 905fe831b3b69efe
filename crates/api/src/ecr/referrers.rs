//! ListImageReferrers: the OCI referrers of an image (the registry's referrers index, which
//! also answers `GET /v2/<name>/referrers/<digest>`), as ECR's ImageReferrer list.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{check_registry, ecr_error, max_results, parse_digest, repository_name};
use crate::protocol::{AwsContext, AwsError};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubjectIdentifier {
    pub image_digest: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListImageReferrersFilter {
    pub artifact_types: Option<Vec<String>>,
    pub artifact_status: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListImageReferrersRequest {
    pub registry_id: Option<String>,
    pub repository_name: String,
    pub subject_id: SubjectIdentifier,
    pub filter: Option<ListImageReferrersFilter>,
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageReferrer {
    pub digest: String,
    pub media_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    pub artifact_status: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListImageReferrersResponse {
    pub referrers: Vec<ImageReferrer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

pub(super) async fn list_image_referrers(
    ctx: &AwsContext,
    req: ListImageReferrersRequest,
) -> Result<ListImageReferrersResponse, AwsError> {
    check_registry(ctx, &req.registry_id)?;
    let repo = repository_name(&req.repository_name)?;
    let subject = parse_digest("subjectId.imageDigest", &req.subject_id.image_digest)?;
    // FiftyMaxResults: 1 to 50, 20 when not given (the API reference).
    let max = max_results(req.max_results, 50, 20)?;
    let filter = req.filter.unwrap_or_default();
    // Every artifact Berth stores is ACTIVE (it has no archive storage class).
    let status_ok = match filter.artifact_status.as_deref() {
        None | Some("ACTIVE") | Some("ANY") => true,
        Some("ARCHIVED") | Some("ACTIVATING") => false,
        Some(other) => {
            return Err(AwsError::invalid_parameter(format!(
                "Invalid parameter at 'filter.artifactStatus' failed to satisfy constraint: 'Member must satisfy enum value set: [ACTIVE, ARCHIVED, ACTIVATING, ANY]' (got '{other}')"
            )));
        }
    };
    let referrers: Vec<ImageReferrer> = ctx
        .app
        .registry
        .referrers(&ctx.scope, &repo, &subject, None)
        .map_err(ecr_error)?
        .into_iter()
        .filter(|_| status_ok)
        .filter(|d| {
            filter.artifact_types.as_ref().is_none_or(|types| {
                d.artifact_type
                    .as_ref()
                    .is_some_and(|t| types.iter().any(|x| x == t))
            })
        })
        .map(|d| ImageReferrer {
            digest: d.digest.to_string(),
            media_type: d.media_type,
            artifact_type: d.artifact_type,
            size: d.size,
            annotations: d.annotations,
            artifact_status: "ACTIVE",
        })
        .collect();
    // The index is in digest order: the token holds the last digest returned, and a page
    // starts after it even if that referrer went away meanwhile (the key-based token every
    // list operation uses).
    let start = match req.next_token.as_deref() {
        None => 0,
        Some(t) => {
            let after = berth_store::page_token::decode(t)
                .ok_or_else(|| AwsError::invalid_parameter("Invalid parameter at 'nextToken'"))?;
            referrers.partition_point(|r| r.digest <= after)
        }
    };
    let mut page: Vec<ImageReferrer> = referrers.into_iter().skip(start).collect();
    let next_token = if page.len() > max {
        page.truncate(max);
        page.last()
            .map(|r| berth_store::page_token::encode(&r.digest))
    } else {
        None
    };
    Ok(ListImageReferrersResponse {
        referrers: page,
        next_token,
    })
}
