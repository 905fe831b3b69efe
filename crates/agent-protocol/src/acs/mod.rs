//! ACS, the Agent Communication Service: the websocket over which the control plane hands a
//! container instance its tasks. Shapes from `ecs-agent/acs/model/api/api-2.json`; behaviour
//! from the agent's session code (`ecs-agent/acs/session/*.go`, `ecs-agent/wsclient/*.go`).
//!
//! The session, as the agent runs it (`ecs-agent/acs/session/session.go`):
//! - It calls ECS `DiscoverPollEndpoint` and takes `endpoint` (an `http(s)://` URL: the
//!   websocket client maps `http`→`ws`, `https`→`wss` and rejects any other scheme), appends
//!   `/ws` (adding a `/` if missing) and the query of [`AcsQuery`], and sends a SigV4-signed
//!   GET (service `ecs`, the agent's region, empty-body hash; see [`AcsQuery`]).
//! - Any frame it can decode resets its idle timer; with no frame for
//!   [`AGENT_HEARTBEAT_TIMEOUT`] plus up to [`AGENT_HEARTBEAT_JITTER`] it closes the socket and
//!   reconnects. So the server sends [`HeartbeatMessage`]s well inside a minute.
//! - With `protocolVersion=2` the agent answers every heartbeat with [`HeartbeatAckRequest`]
//!   and the server may close a connection whose acks stop.
//! - The agent closes the connection itself after [`AGENT_MAX_CONNECTION`] plus up to
//!   [`AGENT_MAX_CONNECTION_JITTER`] (close code 1000, "ConnectionExpired: Reconnect to
//!   continue"); a close with code 1000, 1001, 1006 or 1011 makes it reconnect at once, other
//!   failures back off (250 ms growing ×1.5 to 2 min).
//! - A refused handshake whose body is `{"InactiveInstanceException": "..."}` (see
//!   [`crate::ConnectionError`]) makes the agent treat the instance as deregistered: it calls
//!   its inactive-instance callback and retries only after [`INACTIVE_INSTANCE_RECONNECT_DELAY`].

mod connect;
mod network;
mod task;

pub use connect::AcsQuery;
pub use network::*;
pub use task::*;

use std::time::Duration;

use crate::ExceptionMessage;
use crate::frame::{frame_enum, shape};

/// The protocol version the agent asks for (`protocolVersion=2`): heartbeats are acked, and
/// ACS may close a connection whose acks are missing.
pub const PROTOCOL_VERSION: i64 = 2;
/// The agent drops a connection that has carried no frame for this long plus
/// [`AGENT_HEARTBEAT_JITTER`] (`heartbeatTimeout` in `ecs-agent/acs/session/session.go`).
pub const AGENT_HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(60);
/// Up to this much random time is added to [`AGENT_HEARTBEAT_TIMEOUT`].
pub const AGENT_HEARTBEAT_JITTER: Duration = Duration::from_secs(60);
/// The agent's websocket read and write deadline, `2 × heartbeat timeout + jitter`.
pub const AGENT_READ_TIMEOUT: Duration = Duration::from_secs(180);
/// The agent closes every connection after this long (`wsclient.DisconnectTimeout`)…
pub const AGENT_MAX_CONNECTION: Duration = Duration::from_secs(30 * 60);
/// …plus up to this much (`wsclient.DisconnectJitterMax`).
pub const AGENT_MAX_CONNECTION_JITTER: Duration = Duration::from_secs(5 * 60);
/// How long an agent told `InactiveInstanceException` waits before trying again.
pub const INACTIVE_INSTANCE_RECONNECT_DELAY: Duration = Duration::from_secs(60 * 60);

frame_enum! {
    /// What the control plane sends the agent over ACS.
    pub enum ServerMessage (lenient = false, body = crate::frame::whole_text) {
        /// Tasks for the instance, each with its desired status. Agent's reply:
        /// [`AckRequest`] echoing `messageId` (and `cluster`/`containerInstance` from the
        /// message's `clusterArn`/`containerInstanceArn`), plus an
        /// [`IAMRoleCredentialsAckRequest`] per credentials it stored.
        Payload(PayloadMessage) = "PayloadMessage",
        /// "All is well". Reply: [`HeartbeatAckRequest`] with the same `messageId`.
        Heartbeat(HeartbeatMessage) = "HeartbeatMessage",
        /// Fresh credentials for a task's role. Reply: [`IAMRoleCredentialsAckRequest`].
        IamRoleCredentials(IAMRoleCredentialsMessage) = "IAMRoleCredentialsMessage",
        /// The tasks the instance should be running now. Reply: [`AckRequest`], then a
        /// [`TaskStopVerificationMessage`] if it runs tasks the manifest lacks.
        TaskManifest(TaskManifestMessage) = "TaskManifestMessage",
        /// Confirms which stop candidates to stop. No reply.
        TaskStopVerificationAck(TaskStopVerificationAck) = "TaskStopVerificationAck",
        /// A network interface attached for a task (awsvpc). Reply: [`AckRequest`].
        AttachTaskNetworkInterfaces(AttachTaskNetworkInterfacesMessage) = "AttachTaskNetworkInterfacesMessage",
        /// A network interface attached to the instance. Reply: [`AckRequest`].
        AttachInstanceNetworkInterfaces(AttachInstanceNetworkInterfacesMessage) = "AttachInstanceNetworkInterfacesMessage",
        /// A resource (e.g. an EBS volume) attached for a task. Reply: [`AckRequest`].
        ConfirmAttachment(ConfirmAttachmentMessage) = "ConfirmAttachmentMessage",
        /// Download an agent update (agents with updates enabled). Reply per the model:
        /// [`AckRequest`], or [`NackRequest`] on failure.
        StageUpdate(StageUpdateMessage) = "StageUpdateMessage",
        /// Apply the staged update. Reply as for `StageUpdate`.
        PerformUpdate(PerformUpdateMessage) = "PerformUpdateMessage",
        /// The server ends the session (the model's `Poll` output). No reply.
        Close(CloseMessage) = "CloseMessage",
        /// Berth's extension, sent only to agents that asked for it at connect
        /// ([`AcsQuery::berth_extensions`] naming [`BERTH_EXTENSION_FIREWALL`]): running
        /// tasks' security groups changed. Reply: [`AckRequest`].
        BerthFirewall(BerthFirewallMessage) = "BerthFirewallMessage",
        /// The model's `Error` operation. No reply.
        Error(ErrorMessage) = "ErrorMessage",
        ServerException(ExceptionMessage) = "ServerException",
        BadRequestException(ExceptionMessage) = "BadRequestException",
        /// Unretriable for the agent (`ecs-agent/acs/client/acs_error.go`).
        InvalidClusterException(ExceptionMessage) = "InvalidClusterException",
        /// Unretriable for the agent.
        InvalidInstanceException(ExceptionMessage) = "InvalidInstanceException",
        /// Unretriable for the agent.
        AccessDeniedException(ExceptionMessage) = "AccessDeniedException",
        /// Unretriable; as a refused handshake's body it marks the instance deregistered.
        InactiveInstanceException(ExceptionMessage) = "InactiveInstanceException",
    }
}

frame_enum! {
    /// What the agent sends the control plane over ACS. Decoding is lenient about member
    /// case and accepts the type names agents built on the AWS SDK for Go v2 register for the
    /// same shapes (`HeartbeatOutput`, `RefreshTaskIAMRoleCredentialsOutput`, …; see
    /// `ecs-agent/acs/client/acs_client_types.go`); encoding always uses the model's names.
    pub enum AgentMessage (lenient = true, body = crate::frame::whole_text) {
        /// Acknowledges a payload, manifest, attachment or update message by `messageId`.
        Ack(AckRequest) = "AckRequest",
        /// Acknowledges a [`HeartbeatMessage`].
        HeartbeatAck(HeartbeatAckRequest) = "HeartbeatAckRequest" | "HeartbeatOutput",
        /// Acknowledges credentials (from a payload or an [`IAMRoleCredentialsMessage`]).
        IamRoleCredentialsAck(IAMRoleCredentialsAckRequest) = "IAMRoleCredentialsAckRequest" | "RefreshTaskIAMRoleCredentialsOutput",
        /// Tasks running on the instance that the last manifest lacks; the server answers
        /// with [`TaskStopVerificationAck`] naming those to stop.
        TaskStopVerification(TaskStopVerificationMessage) = "TaskStopVerificationMessage" | "TaskStopVerificationInput",
        /// An update step failed (the model's `UpdateFailure`).
        Nack(NackRequest) = "NackRequest" | "UpdateFailureInput",
    }
}

impl ServerMessage {
    /// Whether the agent gives up on this instance when told this: it then treats the
    /// container instance as deregistered.
    pub fn is_inactive_instance(&self) -> bool {
        matches!(self, Self::InactiveInstanceException(_))
    }
}

shape! {
    /// Server → agent: a batch of tasks for the instance, each with the status it should reach
    /// (`desiredStatus`: `RUNNING` or `STOPPED`). The agent drops the message unanswered unless
    /// `messageId`, `clusterArn` and `containerInstanceArn` are all set
    /// (`ecs-agent/acs/session/payload_responder.go`); once it has taken the tasks it answers
    /// [`AckRequest`] `{messageId, cluster: clusterArn, containerInstance: containerInstanceArn}`.
    /// `seqNum` orders payloads against [`TaskManifestMessage::timeline`].
    pub struct PayloadMessage {
        container_instance_arn: String,
        cluster_arn: String,
        tasks: Vec<Task>,
        /// A `Long` the agent never reads; the model gives no unit.
        generated_at: i64,
        message_id: String,
        seq_num: i64,
        timeline: i64,
    }
}

shape! {
    /// Agent → server: acknowledges a [`PayloadMessage`], [`TaskManifestMessage`],
    /// network-interface or attachment message, echoing its `messageId`.
    pub struct AckRequest {
        cluster: String,
        container_instance: String,
        message_id: String,
    }
}

shape! {
    /// Agent → server: an update step failed; `reason` says why.
    pub struct NackRequest {
        cluster: String,
        container_instance: String,
        message_id: String,
        reason: String,
    }
}

shape! {
    /// Server → agent, periodically. The agent runs its instance health checks (reported over
    /// TCS) and answers [`HeartbeatAckRequest`] with the same `messageId`.
    pub struct HeartbeatMessage {
        healthy: bool,
        message_id: String,
    }
}

shape! {
    /// Agent → server: acknowledges a [`HeartbeatMessage`] (`protocolVersion=2`).
    pub struct HeartbeatAckRequest {
        message_id: String,
    }
}

shape! {
    /// Server → agent: the session is over. The agent reconnects.
    pub struct CloseMessage {
        message: String,
    }
}

shape! {
    /// Server → agent: an error report (the model's `Error` operation; no reply).
    pub struct ErrorMessage {
        message: String,
    }
}

shape! {
    /// Server → agent: credentials for a task's role (`roleType` `TaskApplication` or
    /// `TaskExecution`). The agent validates `messageId`, `taskArn`,
    /// `roleCredentials.credentialsId` and `roleType`, stores them and answers
    /// [`IAMRoleCredentialsAckRequest`] (`ecs-agent/acs/session/refresh_credentials_responder.go`).
    pub struct IAMRoleCredentialsMessage {
        task_arn: String,
        task_cluster_arn: String,
        role_credentials: IAMRoleCredentials,
        role_type: String,
        message_id: String,
    }
}

shape! {
    /// Agent → server: acknowledges credentials, echoing the message's `messageId` and the
    /// credentials' `expiration` and `credentialsId`.
    pub struct IAMRoleCredentialsAckRequest {
        message_id: String,
        expiration: String,
        credentials_id: String,
    }
}

shape! {
    /// Server → agent: every task the instance should have, for reconciliation. The agent
    /// discards a manifest whose `timeline` is not above the highest sequence number it has seen
    /// (payload `seqNum`s and earlier manifests), without answering
    /// (`ecs-agent/acs/session/task_manifest_responder.go`); otherwise it answers [`AckRequest`]
    /// and, if it runs tasks that the manifest says should not be running, a
    /// [`TaskStopVerificationMessage`] carrying this message's `messageId`.
    pub struct TaskManifestMessage {
        container_instance_arn: String,
        cluster_arn: String,
        tasks: Vec<TaskIdentifier>,
        generated_at: i64,
        message_id: String,
        /// The manifest's sequence number; always set it (the agent dereferences it).
        timeline: i64,
    }
}

shape! {
    /// A task named in a manifest or a stop verification.
    pub struct TaskIdentifier {
        task_arn: String,
        task_cluster_arn: String,
        desired_status: String,
    }
}

shape! {
    /// Agent → server, after a [`TaskManifestMessage`]: the tasks it would stop. `messageId` is
    /// the manifest's. The server answers [`TaskStopVerificationAck`].
    pub struct TaskStopVerificationMessage {
        message_id: String,
        stop_candidates: Vec<TaskIdentifier>,
    }
}

shape! {
    /// Server → agent: which stop candidates to stop. The agent ignores it unless `messageId`
    /// equals the last manifest's, then stops every task in `stopTasks`; no reply
    /// (`ecs-agent/acs/session/task_stop_verification_ack_responder.go`).
    pub struct TaskStopVerificationAck {
        generated_at: i64,
        message_id: String,
        stop_tasks: Vec<TaskIdentifier>,
    }
}

/// The [`AcsQuery::berth_extensions`] word by which Berth's agent asks for
/// [`BerthFirewallMessage`]s (the official agent never sends it, so it never gets one).
pub const BERTH_EXTENSION_FIREWALL: &str = "firewall";

shape! {
    /// Server → agent (Berth's extension; see [`BERTH_EXTENSION_FIREWALL`]): the security
    /// groups of some running awsvpc tasks now resolve to other rules (a rule authorized or
    /// revoked, a task joining or leaving a group a rule names, a load balancer's groups
    /// changed). Each task's whole [`Firewall`] replaces the one it had (the payload's
    /// `berthFirewall`, or an earlier message). Reply: [`AckRequest`].
    pub struct BerthFirewallMessage {
        cluster_arn: String,
        container_instance_arn: String,
        message_id: String,
        tasks: Vec<BerthTaskFirewall>,
    }
}

shape! {
    /// One task's security groups as addresses.
    pub struct BerthTaskFirewall {
        task_arn: String,
        firewall: Firewall,
    }
}

shape! {
    /// Server → agent: stage an agent update (download and verify it). Reply [`AckRequest`].
    pub struct StageUpdateMessage {
        container_instance_arn: String,
        cluster_arn: String,
        update_info: UpdateInfo,
        message_id: String,
    }
}

shape! {
    /// Server → agent: apply the staged update. Reply [`AckRequest`].
    pub struct PerformUpdateMessage {
        container_instance_arn: String,
        cluster_arn: String,
        update_info: UpdateInfo,
        message_id: String,
    }
}

shape! {
    /// Where an agent update lives and its signature.
    pub struct UpdateInfo {
        location: String,
        signature: String,
    }
}

shape! {
    /// The model's `Poll` input, i.e. what opens a session. It never travels as a frame: the agent
    /// sends it as the websocket URL's query ([`AcsQuery`]), where `cluster` is `clusterArn`,
    /// `containerInstance` is `containerInstanceArn` and `versionInfo` is flattened.
    pub struct PollRequest {
        cluster: String,
        container_instance: String,
        seq_num: i64,
        timeline: i64,
        version_info: VersionInfo,
        send_credentials: bool,
        protocol_version: i64,
    }
}

shape! {
    /// The agent's and Docker's versions.
    pub struct VersionInfo {
        agent_version: String,
        agent_hash: String,
        docker_version: String,
    }
}

#[cfg(test)]
mod tests;
