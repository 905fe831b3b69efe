//! The agent's side of the ACS websocket, as the official agent runs it: DiscoverPollEndpoint,
//! a SigV4-signed GET upgrade to `<endpoint>/ws?<AcsQuery>`, then frames: tasks from
//! PayloadMessages go to the engine and are acknowledged (AckRequest), heartbeats are
//! answered (HeartbeatAckRequest). A TaskManifestMessage newer than anything seen on the
//! connection is acknowledged and, when the instance runs tasks the manifest does not want
//! running, answered with a TaskStopVerificationMessage naming them; the tasks the
//! control plane's TaskStopVerificationAck then names (for that manifest only) are
//! stopped. The session is dropped after
//! a minute or two without any frame, and renewed every half hour or so; a normal close
//! (or a CloseMessage) reconnects at once, anything else after a backoff of 250 ms growing
//! ×1.5 to two minutes. A handshake refused with `InactiveInstanceException` means the
//! instance was deregistered: the agent stops trying and says so.

use std::sync::Arc;
use std::time::Duration;

use berth_agent_protocol::ConnectionError;
use berth_agent_protocol::acs::{
    AGENT_HEARTBEAT_JITTER, AGENT_HEARTBEAT_TIMEOUT, AGENT_MAX_CONNECTION,
    AGENT_MAX_CONNECTION_JITTER, AckRequest, AcsQuery, AgentMessage, HeartbeatAckRequest,
    IAMRoleCredentialsAckRequest, PROTOCOL_VERSION, ServerMessage, TaskManifestMessage,
    TaskStopVerificationMessage,
};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::backoff::Backoff;
use crate::client::{AwsClient, HttpEndpoint, VersionInfo};
use crate::engine::Engine;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(120);
const BACKOFF_MULTIPLIER: f64 = 1.5;

/// Why the session loop ended for good.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// The control plane says the container instance is deregistered.
    #[error("the control plane reports this container instance as inactive (deregistered): {0}")]
    InactiveInstance(String),
}

/// How one connection ended.
enum Ended {
    Shutdown,
    /// Reconnect at once (normal close, CloseMessage, connection renewal, idle timeout).
    Reconnect(String),
    /// Reconnect after the backoff.
    Failed(String),
    Inactive(String),
}

pub struct AcsParams {
    pub client: Arc<AwsClient>,
    pub cluster: String,
    pub instance_arn: String,
    pub version: VersionInfo,
    pub engine: Engine,
}

/// Runs ACS sessions one after another until `shutdown` or an inactive instance.
pub async fn run(
    params: AcsParams,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), SessionError> {
    let mut backoff = Backoff::new(BACKOFF_MIN, BACKOFF_MAX).with_multiplier(BACKOFF_MULTIPLIER);
    let mut first = true;
    loop {
        if *shutdown.borrow() {
            return Ok(());
        }
        let ended = session(&params, first, &mut backoff, &mut shutdown).await;
        match ended {
            Ended::Shutdown => return Ok(()),
            Ended::Inactive(message) => {
                tracing::error!(
                    instance = %params.instance_arn,
                    message,
                    "the container instance is inactive (deregistered); the agent stops talking to the control plane"
                );
                return Err(SessionError::InactiveInstance(message));
            }
            Ended::Reconnect(why) => {
                tracing::info!(why, "ACS session ended; reconnecting");
                first = false;
            }
            Ended::Failed(why) => {
                let delay = backoff.next_delay();
                tracing::warn!(
                    why,
                    ?delay,
                    "ACS session failed; reconnecting after a pause"
                );
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.changed() => return Ok(()),
                }
            }
        }
    }
}

/// `http://…` → `ws://…`, as the agent maps DiscoverPollEndpoint's answer.
fn websocket_url(url: &str) -> Result<String, Refused> {
    if let Some(rest) = url.strip_prefix("http://") {
        Ok(format!("ws://{rest}"))
    } else if url.starts_with("ws://") {
        Ok(url.to_owned())
    } else {
        Err(Refused::Failed(format!(
            "ACS endpoint {url:?}: only plain http:// (ws://) is supported"
        )))
    }
}

async fn session(
    params: &AcsParams,
    first: bool,
    backoff: &mut Backoff,
    shutdown: &mut watch::Receiver<bool>,
) -> Ended {
    let endpoints = match params
        .client
        .discover_poll_endpoint(&params.cluster, &params.instance_arn)
        .await
    {
        Ok(endpoints) => endpoints,
        Err(e) if e.to_string().contains("InactiveInstance") => {
            return Ended::Inactive(e.to_string());
        }
        Err(e) => return Ended::Failed(format!("DiscoverPollEndpoint: {e}")),
    };
    let query = AcsQuery {
        agent_hash: Some(params.version.agent_hash.clone()),
        agent_version: Some(params.version.agent_version.clone()),
        // Berth's extension: security group changes for running awsvpc tasks.
        berth_extensions: Some(berth_agent_protocol::acs::BERTH_EXTENSION_FIREWALL.to_owned()),
        cluster_arn: params.cluster.clone(),
        container_instance_arn: params.instance_arn.clone(),
        docker_version: Some(params.version.docker_version.clone()),
        protocol_version: Some(PROTOCOL_VERSION),
        send_credentials: Some(first),
        seq_num: Some(1),
    };
    let socket = match open_websocket(&params.client, &query.url(&endpoints.endpoint)).await {
        Ok(socket) => socket,
        Err(Refused::Inactive(message)) => return Ended::Inactive(message),
        Err(Refused::Failed(message)) => return Ended::Failed(message),
    };
    backoff.reset();
    tracing::info!(endpoint = %endpoints.endpoint, "ACS session open");
    serve(params, socket, shutdown).await
}

/// Why a websocket could not be opened.
#[derive(Debug)]
pub(crate) enum Refused {
    /// The control plane says the instance is deregistered (`InactiveInstanceException`).
    Inactive(String),
    Failed(String),
}

pub(crate) type Socket = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// Opens an ACS or TCS websocket: `url` is the `http://` URL with its query; the upgrade
/// GET is signed as the official agent signs it, and a refusal is read as ECS writes it.
pub(crate) async fn open_websocket(client: &AwsClient, url: &str) -> Result<Socket, Refused> {
    let url = websocket_url(url)?;
    let authority = HttpEndpoint::parse(&url.replacen("ws://", "http://", 1))
        .map_err(|e| Refused::Failed(e.to_string()))?
        .authority;
    let after_host = url
        .strip_prefix("ws://")
        .and_then(|rest| rest.find('/').map(|i| &rest[i..]))
        .unwrap_or("/ws");
    let (path, query_string) = after_host.split_once('?').unwrap_or((after_host, ""));

    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| Refused::Failed(format!("websocket URL {url}: {e}")))?;
    // Sign what is sent: the Host header tungstenite writes is the URL's authority.
    let host = request
        .uri()
        .authority()
        .map(|a| a.as_str().to_owned())
        .unwrap_or_else(|| authority.clone());
    for (name, value) in client.sign_websocket_get(&host, path, query_string) {
        match (
            name.parse::<tokio_tungstenite::tungstenite::http::HeaderName>(),
            value.parse(),
        ) {
            (Ok(name), Ok(value)) => {
                request.headers_mut().insert(name, value);
            }
            _ => {
                return Err(Refused::Failed(
                    "could not build the signed upgrade request".to_owned(),
                ));
            }
        }
    }

    let connect = async {
        let stream = tokio::net::TcpStream::connect(&authority)
            .await
            .map_err(|e| Refused::Failed(format!("connecting to {authority}: {e}")))?;
        let _ = stream.set_nodelay(true);
        tokio_tungstenite::client_async(request, stream)
            .await
            .map_err(|e| match e {
                WsError::Http(response) => {
                    let body = response
                        .body()
                        .as_deref()
                        .map(String::from_utf8_lossy)
                        .unwrap_or_default()
                        .into_owned();
                    match ConnectionError::decode(&body) {
                        Ok(refusal) if refusal.type_name.contains("InactiveInstanceException") => {
                            Refused::Inactive(format!("{}: {}", refusal.type_name, refusal.message))
                        }
                        Ok(refusal) => Refused::Failed(format!(
                            "handshake refused (HTTP {}): {}: {}",
                            response.status(),
                            refusal.type_name,
                            refusal.message
                        )),
                        Err(_) => Refused::Failed(format!(
                            "handshake refused (HTTP {}): {body}",
                            response.status()
                        )),
                    }
                }
                other => Refused::Failed(format!("websocket handshake: {other}")),
            })
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
        Ok(Ok((socket, _))) => Ok(socket),
        Ok(Err(refused)) => Err(refused),
        Err(_) => Err(Refused::Failed(format!(
            "no websocket handshake within {CONNECT_TIMEOUT:?}"
        ))),
    }
}

fn jittered(base: Duration, jitter: Duration) -> Duration {
    base + jitter.mul_f64(rand::random::<f64>())
}

async fn serve(params: &AcsParams, socket: Socket, shutdown: &mut watch::Receiver<bool>) -> Ended {
    let (mut sink, mut stream) = socket.split();
    let renew = tokio::time::sleep(jittered(AGENT_MAX_CONNECTION, AGENT_MAX_CONNECTION_JITTER));
    tokio::pin!(renew);
    let idle_limit = || jittered(AGENT_HEARTBEAT_TIMEOUT, AGENT_HEARTBEAT_JITTER);
    let idle = tokio::time::sleep(idle_limit());
    tokio::pin!(idle);

    // The highest sequence number seen (payloads' `seqNum`, manifests' `timeline`) and the
    // last manifest taken, for this connection: a manifest older than a payload is stale.
    let mut latest_seq: i64 = 0;
    let mut last_manifest: Option<String> = None;

    let close = |reason: &'static str| {
        Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: reason.into(),
        }))
    };
    loop {
        let frame = tokio::select! {
            frame = stream.next() => frame,
            _ = &mut idle => {
                let _ = tokio::time::timeout(WRITE_TIMEOUT, sink.send(close("no frame from ACS"))).await;
                return Ended::Reconnect("no frame from ACS within the heartbeat timeout".to_owned());
            }
            _ = &mut renew => {
                let _ = tokio::time::timeout(WRITE_TIMEOUT, sink.send(close("ConnectionExpired: Reconnect to continue"))).await;
                return Ended::Reconnect("connection renewal".to_owned());
            }
            _ = shutdown.changed() => {
                let _ = tokio::time::timeout(WRITE_TIMEOUT, sink.send(close("agent shutting down"))).await;
                return Ended::Shutdown;
            }
        };
        let text = match frame {
            None => return Ended::Reconnect("connection closed".to_owned()),
            Some(Err(e)) => {
                return match e {
                    WsError::ConnectionClosed
                    | WsError::AlreadyClosed
                    | WsError::Io(_)
                    | WsError::Protocol(_) => {
                        // The abnormal closure (1006) the official agent reconnects from at once.
                        Ended::Reconnect(format!("connection lost: {e}"))
                    }
                    other => Ended::Failed(format!("websocket: {other}")),
                };
            }
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(frame))) => {
                let code = frame.as_ref().map(|f| u16::from(f.code));
                return match code {
                    None | Some(1000 | 1001 | 1006 | 1011) => {
                        Ended::Reconnect(format!("closed by ACS ({code:?})"))
                    }
                    Some(other) => Ended::Failed(format!("closed by ACS with code {other}")),
                };
            }
            // Pings are answered by the library; binary frames are not part of ACS.
            Some(Ok(_)) => {
                idle.as_mut()
                    .reset(tokio::time::Instant::now() + idle_limit());
                continue;
            }
        };
        idle.as_mut()
            .reset(tokio::time::Instant::now() + idle_limit());
        let message = match ServerMessage::decode(&text) {
            Ok(message) => message,
            Err(e) => {
                tracing::warn!(error = %e, "unreadable ACS frame ignored");
                continue;
            }
        };
        let replies: Vec<AgentMessage> = match message {
            ServerMessage::Payload(payload) => {
                let (Some(message_id), Some(cluster), Some(instance)) = (
                    payload.message_id.clone(),
                    payload.cluster_arn.clone(),
                    payload.container_instance_arn.clone(),
                ) else {
                    // The official agent drops such payloads unanswered.
                    tracing::warn!(
                        "PayloadMessage without messageId, clusterArn or containerInstanceArn ignored"
                    );
                    continue;
                };
                let mut tasks = payload.tasks.unwrap_or_default();
                for task in &mut tasks {
                    params.engine.credentials().take_from(task);
                }
                tracing::debug!(tasks = tasks.len(), message_id, "payload");
                latest_seq = latest_seq.max(payload.seq_num.unwrap_or(0));
                params.engine.apply_payload(tasks);
                vec![AgentMessage::Ack(AckRequest {
                    cluster: Some(cluster),
                    container_instance: Some(instance),
                    message_id: Some(message_id),
                })]
            }
            ServerMessage::IamRoleCredentials(message) => {
                let (Some(task_arn), Some(role_type), Some(credentials)) = (
                    message.task_arn,
                    message.role_type,
                    message.role_credentials,
                ) else {
                    tracing::warn!(
                        "IAMRoleCredentialsMessage without taskArn, roleType or roleCredentials ignored"
                    );
                    continue;
                };
                let ack = IAMRoleCredentialsAckRequest {
                    message_id: message.message_id,
                    expiration: credentials.expiration.clone(),
                    credentials_id: credentials.credentials_id.clone(),
                };
                if !params
                    .engine
                    .credentials()
                    .put(&task_arn, &role_type, credentials)
                {
                    tracing::warn!(
                        task = task_arn,
                        "IAMRoleCredentialsMessage without a credentials id ignored"
                    );
                    continue;
                }
                tracing::debug!(task = task_arn, role_type, "task credentials renewed");
                vec![AgentMessage::IamRoleCredentialsAck(ack)]
            }
            ServerMessage::Heartbeat(heartbeat) => {
                vec![AgentMessage::HeartbeatAck(HeartbeatAckRequest {
                    message_id: heartbeat.message_id,
                })]
            }
            ServerMessage::TaskManifest(manifest) => {
                let replies = take_manifest(&params.engine, manifest, &mut latest_seq);
                if let Some(AgentMessage::Ack(ack)) = replies.first() {
                    last_manifest = ack.message_id.clone();
                }
                replies
            }
            ServerMessage::TaskStopVerificationAck(ack) => {
                if ack.message_id.is_some() && ack.message_id == last_manifest {
                    let arns: Vec<String> = ack
                        .stop_tasks
                        .unwrap_or_default()
                        .into_iter()
                        .filter_map(|t| t.task_arn)
                        .collect();
                    params.engine.stop_tasks(&arns);
                } else {
                    tracing::debug!(
                        message_id = ?ack.message_id,
                        "stop verification ack for another manifest ignored"
                    );
                }
                Vec::new()
            }
            ServerMessage::Close(close) => {
                return Ended::Reconnect(format!(
                    "CloseMessage: {}",
                    close.message.unwrap_or_default()
                ));
            }
            ServerMessage::BerthFirewall(message) => {
                for task in message.tasks.unwrap_or_default() {
                    if let (Some(arn), Some(firewall)) = (task.task_arn, task.firewall) {
                        params.engine.apply_firewall(&arn, firewall);
                    }
                }
                match message.message_id {
                    Some(message_id) => vec![AgentMessage::Ack(AckRequest {
                        cluster: message.cluster_arn,
                        container_instance: message.container_instance_arn,
                        message_id: Some(message_id),
                    })],
                    None => Vec::new(),
                }
            }
            ServerMessage::InactiveInstanceException(e) => {
                return Ended::Inactive(e.message.unwrap_or_default());
            }
            other @ (ServerMessage::ServerException(_)
            | ServerMessage::BadRequestException(_)
            | ServerMessage::InvalidClusterException(_)
            | ServerMessage::InvalidInstanceException(_)
            | ServerMessage::AccessDeniedException(_)
            | ServerMessage::Error(_)) => {
                return Ended::Failed(format!("ACS sent {}: {:?}", other.type_name(), other));
            }
            other => {
                tracing::debug!(kind = other.type_name(), "ACS message not acted on");
                Vec::new()
            }
        };
        for reply in replies {
            match tokio::time::timeout(
                WRITE_TIMEOUT,
                sink.send(Message::Text(reply.encode().into())),
            )
            .await
            {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Ended::Reconnect(format!("sending to ACS: {e}")),
                Err(_) => return Ended::Failed("sending to ACS timed out".to_owned()),
            }
        }
    }
}

/// Takes a task manifest as the official agent does: a manifest not newer than the newest
/// sequence number seen is stale and dropped unanswered; otherwise it is acknowledged and,
/// if this instance runs tasks the manifest does not want running, followed by a
/// `TaskStopVerificationMessage` naming them (the control plane answers which to stop).
pub(crate) fn take_manifest(
    engine: &Engine,
    manifest: TaskManifestMessage,
    latest_seq: &mut i64,
) -> Vec<AgentMessage> {
    let Some(message_id) = manifest.message_id.clone() else {
        return Vec::new();
    };
    let timeline = manifest.timeline.unwrap_or(0);
    if timeline <= *latest_seq {
        tracing::debug!(
            message_id,
            timeline,
            latest_seq,
            "stale task manifest dropped"
        );
        return Vec::new();
    }
    *latest_seq = timeline;
    let mut replies = vec![AgentMessage::Ack(AckRequest {
        cluster: manifest.cluster_arn.clone(),
        container_instance: manifest.container_instance_arn.clone(),
        message_id: Some(message_id.clone()),
    })];
    let candidates = engine.stop_candidates(&manifest.tasks.unwrap_or_default());
    if !candidates.is_empty() {
        tracing::info!(
            tasks = ?candidates.iter().filter_map(|c| c.task_arn.as_deref()).collect::<Vec<_>>(),
            "running tasks the task manifest lacks; asking the control plane"
        );
        replies.push(AgentMessage::TaskStopVerification(
            TaskStopVerificationMessage {
                message_id: Some(message_id),
                stop_candidates: Some(candidates),
            },
        ));
    }
    replies
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_map_to_websocket_urls() {
        assert_eq!(
            websocket_url("http://127.0.0.1:4566/ws?a=b").unwrap(),
            "ws://127.0.0.1:4566/ws?a=b"
        );
        assert!(websocket_url("https://ecs.amazonaws.com/ws").is_err());
    }

    #[tokio::test]
    async fn manifests_are_acked_and_unexpected_tasks_verified_unless_stale() {
        use crate::testing::{Harness, config, task, task_arn};
        use berth_agent_protocol::acs::TaskIdentifier;
        use serde_json::json;

        let h = Harness::start(config()).await;
        let run = |id: &str| {
            task(
                id,
                "RUNNING",
                json!([{"name": "app", "image": "busybox", "essential": true, "command": ["httpd"]}]),
            )
        };
        h.engine.apply_payload(vec![run("kept"), run("extra")]);
        h.control.wait_task(&task_arn("kept"), "RUNNING").await;
        h.control.wait_task(&task_arn("extra"), "RUNNING").await;
        let manifest = |id: &str, timeline: i64| TaskManifestMessage {
            cluster_arn: Some("arn:cluster".into()),
            container_instance_arn: Some("arn:instance".into()),
            message_id: Some(id.into()),
            timeline: Some(timeline),
            tasks: Some(vec![TaskIdentifier {
                task_arn: Some(task_arn("kept")),
                task_cluster_arn: Some("arn:cluster".into()),
                desired_status: Some("RUNNING".into()),
            }]),
            ..TaskManifestMessage::default()
        };

        let mut latest = 5;
        // Not newer than the last payload: dropped unanswered.
        assert!(take_manifest(&h.engine, manifest("old", 5), &mut latest).is_empty());
        assert_eq!(latest, 5);

        let replies = take_manifest(&h.engine, manifest("m-7", 7), &mut latest);
        assert_eq!(latest, 7);
        let frames: Vec<serde_json::Value> = replies
            .iter()
            .map(|r| serde_json::from_str(&r.encode()).unwrap())
            .collect();
        assert_eq!(
            frames[0],
            json!({"type": "AckRequest", "message": {
                "cluster": "arn:cluster", "containerInstance": "arn:instance", "messageId": "m-7"}})
        );
        assert_eq!(
            frames[1],
            json!({"type": "TaskStopVerificationMessage", "message": {
                "messageId": "m-7",
                "stopCandidates": [{"taskArn": task_arn("extra"), "desiredStatus": "STOPPED"}]}})
        );
        assert_eq!(frames.len(), 2);

        // Nothing unexpected: only the ack.
        let mut everything = manifest("m-8", 8);
        everything.tasks.as_mut().unwrap().push(TaskIdentifier {
            task_arn: Some(task_arn("extra")),
            task_cluster_arn: None,
            desired_status: Some("RUNNING".into()),
        });
        let replies = take_manifest(&h.engine, everything, &mut latest);
        assert!(matches!(replies.as_slice(), [AgentMessage::Ack(_)]));
    }

    #[test]
    fn reconnect_backoff_grows_by_half_to_two_minutes() {
        let mut backoff =
            Backoff::new(BACKOFF_MIN, BACKOFF_MAX).with_multiplier(BACKOFF_MULTIPLIER);
        let first = backoff.next_delay();
        assert!(first >= Duration::from_millis(200) && first <= Duration::from_millis(300));
        let second = backoff.next_delay();
        assert!(second >= Duration::from_millis(300) && second <= Duration::from_millis(450));
        for _ in 0..40 {
            assert!(backoff.next_delay() <= BACKOFF_MAX);
        }
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(300));
    }
}
