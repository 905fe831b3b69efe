//! The container agent's calls: DiscoverPollEndpoint, SubmitContainerStateChange,
//! SubmitAttachmentStateChanges.

use serde::{Deserialize, Serialize};

use super::ecs_error;
use crate::protocol::{AwsContext, AwsError};

use super::tasks::AcknowledgmentResponse;

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
pub(super) async fn discover_poll_endpoint(
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

pub(super) async fn submit_container_state_change(
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
pub(super) async fn submit_attachment_state_changes(
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
