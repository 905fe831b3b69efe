//! The container credentials endpoint: `GET /v2/credentials/{id}` answers a task role's
//! temporary credentials in the JSON the AWS SDKs read (`RoleArn`, `AccessKeyId`,
//! `SecretAccessKey`, `Token`, `Expiration`), as ECS's agent does — only to the task's own
//! containers: the request must come from the task's address (awsvpc), from one of its
//! containers' addresses (bridge), or from the host (host mode, whose containers are the
//! host's processes as far as addresses go). A request routed by another agent of the host
//! (`link_local`) names its container in `x-berth-peer`, trusted only with the host's
//! router key. Refusals do not say whether the id exists.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{Extensions, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_runtime::{ContainerId, NetworkMode};
use serde::Serialize;

use super::MetadataService;
use super::link_local::{PEER_HEADER, ROUTER_HEADER};
use crate::credentials::TASK_APPLICATION;
use crate::translate;

/// What the SDKs read.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct CredentialsResponse {
    role_arn: String,
    access_key_id: String,
    secret_access_key: String,
    token: String,
    expiration: String,
}

fn refused() -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(serde_json::json!({
            "code": "InvalidIdInRequest",
            "message": "CredentialsV2Request: Credentials not found",
        })),
    )
        .into_response()
}

pub(super) async fn credentials(
    State(service): State<Arc<MetadataService>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    extensions: Extensions,
) -> Response {
    let Some(held) = service.engine.credentials().get(&id) else {
        return refused();
    };
    if held.role_type != TASK_APPLICATION {
        return refused(); // an execution role's credentials are the agent's alone
    }
    let Some(peer) = peer_of(&service, &headers, &extensions) else {
        return refused();
    };
    if !service.task_owns(&held.task_arn, peer).await {
        tracing::warn!(task = held.task_arn, %peer, "task credentials asked for from outside the task");
        return refused();
    }
    let c = held.credentials;
    axum::Json(CredentialsResponse {
        role_arn: c.role_arn.unwrap_or_default(),
        access_key_id: c.access_key_id.unwrap_or_default(),
        secret_access_key: c.secret_access_key.unwrap_or_default(),
        token: c.session_token.unwrap_or_default(),
        expiration: c.expiration.unwrap_or_default(),
    })
    .into_response()
}

/// The address a request came from: the connection's, or the container a host agent's
/// router says it routed for.
fn peer_of(
    service: &MetadataService,
    headers: &HeaderMap,
    extensions: &Extensions,
) -> Option<IpAddr> {
    let tcp = extensions.get::<ConnectInfo<SocketAddr>>()?.0.ip();
    let routed = headers.get(ROUTER_HEADER).and_then(|v| v.to_str().ok());
    match (&service.router_key, routed) {
        (Some(key), Some(given)) if tcp.is_loopback() => {
            if !constant_time_eq(key.as_bytes(), given.as_bytes()) {
                return None;
            }
            headers.get(PEER_HEADER)?.to_str().ok()?.parse().ok()
        }
        (_, Some(_)) => None,
        _ => Some(tcp),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What the check needs of a task, read under the state's lock (no copy of the record).
enum Owner {
    /// awsvpc: the task's own address.
    Address(Option<IpAddr>),
    /// Host mode: the host's processes.
    Host,
    /// Bridge mode, the peer none of the addresses the engine recorded: the task's
    /// containers' runtime ids, to ask Docker.
    Bridge(Vec<String>),
    /// Stopped, or no network: its credentials go to nobody.
    Nobody,
}

impl MetadataService {
    fn owner(&self, task_arn: &str, peer: IpAddr) -> Owner {
        let state = self.engine.state().lock();
        let Some(task) = state.tasks.get(task_arn) else {
            return Owner::Nobody;
        };
        if task.known_status == berth_model::ecs::TaskStatus::Stopped {
            return Owner::Nobody;
        }
        match translate::task_network(&task.task) {
            Ok(translate::TaskNetwork::Awsvpc(eni)) => {
                Owner::Address(eni.ipv4_address.parse().ok())
            }
            Ok(translate::TaskNetwork::Mode(NetworkMode::Host)) => Owner::Host,
            Ok(translate::TaskNetwork::Mode(NetworkMode::Bridge)) => {
                let containers = task.containers.values();
                if containers.clone().any(|c| c.address == Some(peer)) {
                    // The common case: answered without Docker.
                    return Owner::Address(Some(peer));
                }
                Owner::Bridge(containers.filter_map(|c| c.runtime_id.clone()).collect())
            }
            _ => Owner::Nobody,
        }
    }

    /// Whether `peer` is one of the task's containers (a task that stopped has none). The
    /// engine records each bridge container's address when it inspects it running; a peer
    /// that is none of those (an address not yet recorded, or changed) is looked up in
    /// Docker, so a refusal is never a stale record's.
    async fn task_owns(&self, task_arn: &str, peer: IpAddr) -> bool {
        let runtime_ids = match self.owner(task_arn, peer) {
            Owner::Address(address) => return address == Some(peer),
            Owner::Host => return true,
            Owner::Nobody => return false,
            Owner::Bridge(runtime_ids) => runtime_ids,
        };
        for id in runtime_ids {
            if let Ok(status) = self
                .engine
                .runtime()
                .inspect_container(&ContainerId::from(id))
                .await
                && status.ip_address.and_then(|ip| ip.parse().ok()) == Some(peer)
            {
                return true;
            }
        }
        false
    }
}
