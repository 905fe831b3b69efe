//! Images: DescribeImages, ListImages, BatchGetImage, BatchDeleteImage, PutImage.

use berth_model::{ImageTag, RepositoryName};
use berth_registry::{ImageDetail, ImageIdentifier, ListImagesFilter, RegistryError};
use serde::{Deserialize, Serialize};

use super::{check_registry, ecr_error, max_results, parse_digest, repository_name};
use crate::protocol::{AwsContext, AwsError};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageFilter {
    pub tag_status: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageWire {
    pub registry_id: String,
    pub repository_name: String,
    pub image_id: ImageIdentifier,
    pub image_manifest: String,
    pub image_manifest_media_type: String,
}

pub(super) fn tag_status(filter: &Option<ImageFilter>) -> Result<ListImagesFilter, AwsError> {
    match filter.as_ref().and_then(|f| f.tag_status.as_deref()) {
        None | Some("ANY") => Ok(ListImagesFilter::Any),
        Some("TAGGED") => Ok(ListImagesFilter::Tagged),
        Some("UNTAGGED") => Ok(ListImagesFilter::Untagged),
        Some(other) => Err(AwsError::invalid_parameter(format!(
            "Invalid parameter at 'filter.tagStatus' failed to satisfy constraint: 'Member must satisfy enum value set: [TAGGED, UNTAGGED, ANY]' (got '{other}')"
        ))),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeImagesRequest {
    pub registry_id: Option<String>,
    pub repository_name: String,
    pub image_ids: Option<Vec<ImageIdentifier>>,
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
    pub filter: Option<ImageFilter>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeImagesResponse {
    pub image_details: Vec<ImageDetail>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListImagesRequest {
    pub registry_id: Option<String>,
    pub repository_name: String,
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
    pub filter: Option<ImageFilter>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListImagesResponse {
    pub image_ids: Vec<ImageIdentifier>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchGetImageRequest {
    pub registry_id: Option<String>,
    pub repository_name: String,
    pub image_ids: Vec<ImageIdentifier>,
    pub accepted_media_types: Option<Vec<String>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchGetImageResponse {
    pub images: Vec<ImageWire>,
    pub failures: Vec<berth_registry::ImageFailure>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchDeleteImageRequest {
    pub registry_id: Option<String>,
    pub repository_name: String,
    pub image_ids: Vec<ImageIdentifier>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchDeleteImageResponse {
    pub image_ids: Vec<ImageIdentifier>,
    pub failures: Vec<berth_registry::ImageFailure>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutImageRequest {
    pub registry_id: Option<String>,
    pub repository_name: String,
    pub image_manifest: String,
    pub image_manifest_media_type: Option<String>,
    pub image_tag: Option<String>,
    pub image_digest: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PutImageResponse {
    pub image: ImageWire,
}

pub(super) async fn describe_images(
    ctx: &AwsContext,
    req: DescribeImagesRequest,
) -> Result<DescribeImagesResponse, AwsError> {
    check_registry(ctx, &req.registry_id)?;
    let repo = repository_name(&req.repository_name)?;
    let filter = tag_status(&req.filter)?;
    if let Some(ids) = &req.image_ids {
        if req.next_token.is_some() || req.max_results.is_some() {
            return Err(AwsError::invalid_parameter(
                "Invalid parameter: nextToken and maxResults cannot be used with imageIds",
            ));
        }
        let image_details = ctx
            .app
            .registry
            .describe_images_by_id(&ctx.scope, &repo, ids)
            .map_err(ecr_error)?;
        return Ok(DescribeImagesResponse {
            image_details,
            next_token: None,
        });
    }
    let max = max_results(req.max_results, 1000, 100)?;
    let (image_details, next_token) = ctx
        .app
        .registry
        .describe_images(&ctx.scope, &repo, filter, req.next_token.as_deref(), max)
        .map_err(ecr_error)?;
    Ok(DescribeImagesResponse {
        image_details,
        next_token,
    })
}

pub(super) async fn list_images(
    ctx: &AwsContext,
    req: ListImagesRequest,
) -> Result<ListImagesResponse, AwsError> {
    check_registry(ctx, &req.registry_id)?;
    let repo = repository_name(&req.repository_name)?;
    let filter = tag_status(&req.filter)?;
    let max = max_results(req.max_results, 1000, 100)?;
    let (image_ids, next_token) = ctx
        .app
        .registry
        .list_images(&ctx.scope, &repo, filter, req.next_token.as_deref(), max)
        .map_err(ecr_error)?;
    Ok(ListImagesResponse {
        image_ids,
        next_token,
    })
}

pub(super) fn image_wire(
    ctx: &AwsContext,
    repo: &RepositoryName,
    id: ImageIdentifier,
    content: berth_registry::ManifestContent,
) -> ImageWire {
    ImageWire {
        registry_id: ctx.scope.account.to_string(),
        repository_name: repo.to_string(),
        image_id: id,
        image_manifest: String::from_utf8_lossy(&content.bytes).into_owned(),
        image_manifest_media_type: content.media_type,
    }
}

pub(super) fn check_image_ids(ids: &[ImageIdentifier]) -> Result<(), AwsError> {
    if ids.is_empty() || ids.len() > 100 {
        return Err(AwsError::invalid_parameter(
            "Invalid parameter at 'imageIds' failed to satisfy constraint: 'Member must have length between 1 and 100'",
        ));
    }
    Ok(())
}

pub(super) async fn batch_get_image(
    ctx: &AwsContext,
    req: BatchGetImageRequest,
) -> Result<BatchGetImageResponse, AwsError> {
    check_registry(ctx, &req.registry_id)?;
    check_image_ids(&req.image_ids)?;
    let repo = repository_name(&req.repository_name)?;
    let (found, mut failures) = ctx
        .app
        .registry
        .batch_get_image(&ctx.scope, &repo, &req.image_ids)
        .await
        .map_err(ecr_error)?;
    let mut images = Vec::new();
    for (id, content) in found {
        // ECR does not convert manifests: one outside the accepted types is a failure.
        if let Some(accepted) = &req.accepted_media_types
            && !accepted.iter().any(|a| a == &content.media_type)
        {
            failures.push(berth_registry::ImageFailure {
                image_id: id,
                failure_code: "UnsupportedImageType",
                failure_reason: format!(
                    "Image of media type '{}' is not among the accepted media types",
                    content.media_type
                ),
            });
            continue;
        }
        images.push(image_wire(ctx, &repo, id, content));
    }
    Ok(BatchGetImageResponse { images, failures })
}

pub(super) async fn batch_delete_image(
    ctx: &AwsContext,
    req: BatchDeleteImageRequest,
) -> Result<BatchDeleteImageResponse, AwsError> {
    check_registry(ctx, &req.registry_id)?;
    check_image_ids(&req.image_ids)?;
    let repo = repository_name(&req.repository_name)?;
    let (image_ids, failures) = ctx
        .app
        .registry
        .batch_delete_image(&ctx.scope, &repo, &req.image_ids)
        .map_err(ecr_error)?;
    Ok(BatchDeleteImageResponse {
        image_ids,
        failures,
    })
}

pub(super) async fn put_image(
    ctx: &AwsContext,
    req: PutImageRequest,
) -> Result<PutImageResponse, AwsError> {
    check_registry(ctx, &req.registry_id)?;
    let repo = repository_name(&req.repository_name)?;
    let tag: Option<ImageTag> = match &req.image_tag {
        Some(t) => Some(t.parse().map_err(|_| {
            AwsError::invalid_parameter(format!(
                "Invalid parameter at 'imageTag' failed to satisfy constraint: 'must be a valid tag' (got '{t}')"
            ))
        })?),
        None => None,
    };
    let expected = match &req.image_digest {
        Some(d) => Some(parse_digest("imageDigest", d)?),
        None => None,
    };
    let registry = &ctx.app.registry;
    let outcome = registry
        .put_manifest(
            &ctx.scope,
            &repo,
            tag.as_ref(),
            expected.as_ref(),
            req.image_manifest_media_type.as_deref(),
            req.image_manifest.clone().into_bytes(),
        )
        .await
        .map_err(|e| match e {
            RegistryError::ManifestInvalid(m) => AwsError::invalid_parameter(format!(
                "Invalid parameter at 'imageManifest' failed to satisfy constraint: '{m}'"
            )),
            other => ecr_error(other),
        })?;
    // ECR refuses a PutImage that changes nothing (the same manifest, under the same tag
    // or untagged, is already there). Storing it again was harmless.
    if !outcome.changed {
        return Err(AwsError::client(
            "ImageAlreadyExistsException",
            format!(
                "Image with digest '{}' and tag '{}' already exists in the repository with name '{repo}' in registry with id '{}'",
                outcome.digest,
                req.image_tag.as_deref().unwrap_or(""),
                ctx.scope.account
            ),
        ));
    }
    Ok(PutImageResponse {
        image: ImageWire {
            registry_id: ctx.scope.account.to_string(),
            repository_name: repo.to_string(),
            image_id: ImageIdentifier {
                image_digest: Some(outcome.digest.to_string()),
                image_tag: req.image_tag,
            },
            image_manifest: req.image_manifest,
            image_manifest_media_type: outcome.media_type,
        },
    })
}
