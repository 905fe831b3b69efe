//! The container agent's calls: DiscoverPollEndpoint, SubmitContainerStateChange,
//! SubmitAttachmentStateChanges.

use serde::{Deserialize, Serialize};

use super::ecs_error;
use crate::protocol::{AwsContext, AwsError};

use super::tasks::AcknowledgmentResponse;
use berth_agent_protocol::calls::{
    ContainerStateChange, DiscoverPollEndpointRequest, DiscoverPollEndpointResponse,
};

/// DiscoverPollEndpoint's answer: the agent protocol's members, and the Service Connect
/// endpoint the official agent also reads.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PollEndpoints {
    #[serde(flatten)]
    pub poll: DiscoverPollEndpointResponse,
    pub service_connect_endpoint: String,
}

/// The agent asks where to poll: ACS and telemetry are served on this same port (the
/// websockets themselves arrive with the agent issue).
pub(super) async fn discover_poll_endpoint(
    ctx: &AwsContext,
    _req: DiscoverPollEndpointRequest,
) -> Result<PollEndpoints, AwsError> {
    // The agent dials `<endpoint>/ws` (ACS) and `<telemetryEndpoint>/ws` (TCS), swapping
    // http for ws; both are served on this port (see acs.rs).
    Ok(PollEndpoints {
        poll: DiscoverPollEndpointResponse {
            endpoint: ctx.endpoint.clone(),
            telemetry_endpoint: Some(format!("{}/tcs", ctx.endpoint)),
        },
        service_connect_endpoint: ctx.endpoint.clone(),
    })
}

pub(super) async fn submit_container_state_change(
    ctx: &AwsContext,
    req: ContainerStateChange,
) -> Result<AcknowledgmentResponse, AwsError> {
    ctx.app
        .ecs
        .submit_container_state_change(
            &ctx.scope,
            req.cluster.as_deref(),
            &req.task,
            berth_ecs::ContainerChange {
                name: req.container_name,
                status: Some(req.status),
                runtime_id: req.runtime_id,
                image_digest: req.image_digest,
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
