//! Layers: BatchCheckLayerAvailability, Initiate/UploadLayerPart/CompleteLayerUpload,
//! GetDownloadUrlForLayer.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use berth_model::Digest;
use berth_registry::RegistryError;
use serde::{Deserialize, Serialize};

use super::{check_registry, ecr_error, parse_digest, repository_name};
use crate::protocol::{AwsContext, AwsError};

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Layer {
    pub layer_digest: String,
    pub layer_availability: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer_size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerFailure {
    pub layer_digest: String,
    pub failure_code: &'static str,
    pub failure_reason: String,
}

/// The part size ECR advertises for layer uploads.
pub(super) const LAYER_PART_SIZE: u64 = 10 << 20;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchCheckLayerAvailabilityRequest {
    pub registry_id: Option<String>,
    pub repository_name: String,
    pub layer_digests: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchCheckLayerAvailabilityResponse {
    pub layers: Vec<Layer>,
    pub failures: Vec<LayerFailure>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitiateLayerUploadRequest {
    pub registry_id: Option<String>,
    pub repository_name: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InitiateLayerUploadResponse {
    pub upload_id: String,
    pub part_size: u64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadLayerPartRequest {
    pub registry_id: Option<String>,
    pub repository_name: String,
    pub upload_id: String,
    pub part_first_byte: u64,
    pub part_last_byte: u64,
    pub layer_part_blob: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadLayerPartResponse {
    pub registry_id: String,
    pub repository_name: String,
    pub upload_id: String,
    pub last_byte_received: u64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompleteLayerUploadRequest {
    pub registry_id: Option<String>,
    pub repository_name: String,
    pub upload_id: String,
    pub layer_digests: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CompleteLayerUploadResponse {
    pub registry_id: String,
    pub repository_name: String,
    pub upload_id: String,
    pub layer_digest: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetDownloadUrlForLayerRequest {
    pub registry_id: Option<String>,
    pub repository_name: String,
    pub layer_digest: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetDownloadUrlForLayerResponse {
    pub download_url: String,
    pub layer_digest: String,
}

pub(super) async fn batch_check_layer_availability(
    ctx: &AwsContext,
    req: BatchCheckLayerAvailabilityRequest,
) -> Result<BatchCheckLayerAvailabilityResponse, AwsError> {
    check_registry(ctx, &req.registry_id)?;
    let repo = repository_name(&req.repository_name)?;
    ctx.app
        .registry
        .repository(&ctx.scope, &repo)
        .map_err(ecr_error)?;
    let mut layers = Vec::new();
    let mut failures = Vec::new();
    for raw in req.layer_digests {
        let Ok(digest) = raw.parse::<Digest>() else {
            failures.push(LayerFailure {
                layer_digest: raw,
                failure_code: "InvalidLayerDigest",
                failure_reason: "Invalid layer digest".into(),
            });
            continue;
        };
        match ctx
            .app
            .registry
            .layer_availability(&ctx.scope, &repo, &digest)
            .map_err(ecr_error)?
        {
            Some(size) => layers.push(Layer {
                layer_digest: raw,
                layer_availability: "AVAILABLE",
                layer_size: Some(size),
                // As a manifest of the repository that references the blob names it; a
                // blob no manifest references yet has no known media type (the field is
                // optional).
                media_type: ctx
                    .app
                    .registry
                    .layer_media_type(&ctx.scope, &repo, &digest)
                    .await
                    .map_err(ecr_error)?,
            }),
            None => failures.push(LayerFailure {
                layer_digest: raw,
                failure_code: "MissingLayerDigest",
                failure_reason: "Could not find layer".into(),
            }),
        }
    }
    Ok(BatchCheckLayerAvailabilityResponse { layers, failures })
}

pub(super) async fn initiate_layer_upload(
    ctx: &AwsContext,
    req: InitiateLayerUploadRequest,
) -> Result<InitiateLayerUploadResponse, AwsError> {
    check_registry(ctx, &req.registry_id)?;
    let repo = repository_name(&req.repository_name)?;
    let upload_id = ctx
        .app
        .registry
        .start_upload(&ctx.scope, &repo)
        .map_err(ecr_error)?;
    Ok(InitiateLayerUploadResponse {
        upload_id,
        part_size: LAYER_PART_SIZE,
    })
}

pub(super) async fn upload_layer_part(
    ctx: &AwsContext,
    req: UploadLayerPartRequest,
) -> Result<UploadLayerPartResponse, AwsError> {
    check_registry(ctx, &req.registry_id)?;
    let repo = repository_name(&req.repository_name)?;
    let blob = STANDARD
        .decode(req.layer_part_blob.as_bytes())
        .map_err(|_| {
            AwsError::invalid_parameter("Invalid parameter at 'layerPartBlob': not valid base64")
        })?;
    let declared = req
        .part_last_byte
        .checked_sub(req.part_first_byte)
        .and_then(|n| n.checked_add(1));
    // InvalidLayerPartException carries registryId, repositoryName, uploadId and
    // lastValidByteReceived (its shape in the API reference).
    let part_error = |message: String, received: u64| {
        AwsError::client("InvalidLayerPartException", message)
            .with_field("registryId", ctx.scope.account.to_string())
            .with_field("repositoryName", repo.to_string())
            .with_field("uploadId", req.upload_id.clone())
            .with_field("lastValidByteReceived", received.saturating_sub(1))
    };
    if blob.is_empty() || declared != Some(blob.len() as u64) {
        let received = ctx
            .app
            .registry
            .upload_status(&ctx.scope, &repo, &req.upload_id)
            .await
            .map_err(ecr_error)?
            .size;
        return Err(part_error(
            format!(
                "The layer part size is not valid, or the first byte specified is not consecutive to the last byte of a previous layer part upload: part {}-{} carries {} bytes",
                req.part_first_byte,
                req.part_last_byte,
                blob.len()
            ),
            received,
        ));
    }
    let body = futures_util::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from(blob))]);
    let status = ctx
        .app
        .registry
        .append_upload(
            &ctx.scope,
            &repo,
            &req.upload_id,
            Some(req.part_first_byte),
            body,
        )
        .await
        .map_err(|e| match e {
            RegistryError::RangeInvalid { offset, size } => part_error(
                format!(
                    "The layer part size is not valid, or the first byte specified is not consecutive to the last byte of a previous layer part upload: first byte {offset}, expected {size}"
                ),
                size,
            ),
            other => ecr_error(other),
        })?;
    Ok(UploadLayerPartResponse {
        registry_id: ctx.scope.account.to_string(),
        repository_name: repo.to_string(),
        upload_id: req.upload_id,
        last_byte_received: status.size.saturating_sub(1),
    })
}

pub(super) async fn complete_layer_upload(
    ctx: &AwsContext,
    req: CompleteLayerUploadRequest,
) -> Result<CompleteLayerUploadResponse, AwsError> {
    check_registry(ctx, &req.registry_id)?;
    let repo = repository_name(&req.repository_name)?;
    let [digest] = req.layer_digests.as_slice() else {
        return Err(AwsError::invalid_parameter(
            "Invalid parameter at 'layerDigests': exactly one digest is supported",
        ));
    };
    let digest = parse_digest("layerDigests", digest)?;
    let registry = &ctx.app.registry;
    let status = registry
        .upload_status(&ctx.scope, &repo, &req.upload_id)
        .await
        .map_err(ecr_error)?;
    if status.size == 0 {
        return Err(AwsError::client(
            "EmptyUploadException",
            format!(
                "The upload with id '{}' contains no layer parts",
                req.upload_id
            ),
        ));
    }
    if registry
        .layer_availability(&ctx.scope, &repo, &digest)
        .map_err(ecr_error)?
        .is_some()
    {
        let _ = registry
            .cancel_upload(&ctx.scope, &repo, &req.upload_id)
            .await;
        return Err(AwsError::client(
            "LayerAlreadyExistsException",
            format!("The layer '{digest}' already exists in the repository '{repo}'"),
        ));
    }
    let empty = futures_util::stream::empty::<Result<bytes::Bytes, std::io::Error>>();
    registry
        .complete_upload(&ctx.scope, &repo, &req.upload_id, &digest, None, empty)
        .await
        .map_err(|e| match e {
            RegistryError::DigestMismatch { expected, actual } => AwsError::client(
                "InvalidLayerException",
                format!("The layer digest calculation performed by Amazon ECR ({actual}) does not match the digest specified ({expected})"),
            ),
            other => ecr_error(other),
        })?;
    Ok(CompleteLayerUploadResponse {
        registry_id: ctx.scope.account.to_string(),
        repository_name: repo.to_string(),
        upload_id: req.upload_id,
        layer_digest: digest.to_string(),
    })
}

pub(super) async fn get_download_url_for_layer(
    ctx: &AwsContext,
    req: GetDownloadUrlForLayerRequest,
) -> Result<GetDownloadUrlForLayerResponse, AwsError> {
    check_registry(ctx, &req.registry_id)?;
    let repo = repository_name(&req.repository_name)?;
    let digest = parse_digest("layerDigest", &req.layer_digest)?;
    if ctx
        .app
        .registry
        .layer_availability(&ctx.scope, &repo, &digest)
        .map_err(ecr_error)?
        .is_none()
    {
        return Err(AwsError::client(
            "LayersNotFoundException",
            format!("The layer '{digest}' does not exist in the repository '{repo}'"),
        ));
    }
    // Like ECR's presigned S3 URL, the link carries its own short-lived credential, good
    // for this one layer only.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let token = ctx.app.tokens.issue_download(
        &ctx.scope.account,
        &ctx.scope.region,
        &format!("{repo}@{digest}"),
        now,
    );
    Ok(GetDownloadUrlForLayerResponse {
        download_url: format!(
            "{}/v2/{repo}/blobs/{digest}?{}={token}",
            ctx.endpoint,
            crate::oci::TOKEN_QUERY
        ),
        layer_digest: digest.to_string(),
    })
}
