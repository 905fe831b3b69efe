//! The wire types of ECS's agent protocols, shared by `berth agent` and the server: the
//! agent's HTTP calls that carry its reports ([`calls`]) and its containers' logs ([`logs`]),
//! and the two websockets, written from the models in the official
//! Amazon ECS agent's sources (`ecs-agent/acs/model/api/api-2.json` and
//! `ecs-agent/tcs/model/api/api-2.json` in aws/amazon-ecs-agent): the Agent Communication
//! Service websocket ([`acs`]) and the telemetry websocket ([`tcs`]). Pure: no I/O, no async.
//!
//! Every websocket text frame is an envelope `{"type": "<ShapeName>", "message": {...}}`.
//! Each direction is one enum ([`acs::ServerMessage`], [`acs::AgentMessage`],
//! [`tcs::ServerMessage`], [`tcs::AgentMessage`]) with `encode` and `decode`; a `type` this
//! crate does not model decodes to `Unknown` rather than failing, and members it does not
//! model are ignored, as the Go agent's `encoding/json` ignores them.
//!
//! Members are named exactly as the model names them on the wire and are optional unless the
//! model marks them required; absent members are never serialised (no `null`s).

pub mod acs;
pub mod calls;
mod error;
mod frame;
pub mod logs;
pub mod tcs;
mod timestamp;

pub use error::AcsError;
pub use timestamp::Timestamp;

use serde::{Deserialize, Serialize};

/// The body the models give every exception shape (ACS's `AccessDeniedException`,
/// `InactiveInstanceException`, …; TCS's `ServerException`, …): one optional `message`.
/// Sent by the server, inside a frame (`{"type": "ServerException", "message": {...}}`) or,
/// when a websocket handshake is refused, as the unframed body [`ConnectionError`] describes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExceptionMessage {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The body a server writes when it refuses a websocket handshake (any non-101 answer):
/// `{"<ExceptionShape>": "<message>"}`, one member only. The Go agent
/// (`ecs-agent/wsclient/decode.go`, `DecodeConnectionError`) turns it into the error
/// `"<ExceptionShape>: <message>"`; for ACS, an error containing `InactiveInstanceException`
/// makes it treat the container instance as deregistered (see [`acs`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionError {
    /// An exception shape name, e.g. `InactiveInstanceException`.
    pub type_name: String,
    pub message: String,
}

impl ConnectionError {
    pub fn new(type_name: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            type_name: type_name.into(),
            message: message.into(),
        }
    }

    /// The HTTP body to answer the refused handshake with.
    pub fn encode(&self) -> String {
        let mut body = serde_json::Map::new();
        body.insert(
            self.type_name.clone(),
            serde_json::Value::String(self.message.clone()),
        );
        serde_json::Value::Object(body).to_string()
    }

    /// Reads such a body; anything but a one-member object of a string is an error.
    pub fn decode(body: &str) -> Result<Self, AcsError> {
        let map: std::collections::BTreeMap<String, String> =
            serde_json::from_str(body).map_err(AcsError::Json)?;
        let mut members = map.into_iter();
        match (members.next(), members.next()) {
            (Some((type_name, message)), None) => Ok(Self { type_name, message }),
            _ => Err(AcsError::NotAConnectionError),
        }
    }
}
