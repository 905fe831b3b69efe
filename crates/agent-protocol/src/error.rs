//! Why a frame, a body or a query string could not be read.

/// A frame that is not an envelope, or whose `message` does not fit the shape its `type`
/// names. Frames of an unknown `type` are not errors: they decode to `Unknown`.
#[derive(Debug, thiserror::Error)]
pub enum AcsError {
    #[error("frame is not a JSON object: {0}")]
    Json(#[source] serde_json::Error),
    #[error("frame has no \"type\"")]
    MissingType,
    #[error("{type_name} frame has no \"message\"")]
    MissingMessage { type_name: String },
    #[error("{type_name} message does not fit its shape: {source}")]
    Message {
        type_name: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("not a connection error body: expected one member, {{\"<Exception>\": \"<message>\"}}")]
    NotAConnectionError,
    #[error("signed telemetry frame: {0}")]
    SignedFrame(&'static str),
    #[error("query string: {0}")]
    Query(#[source] serde_urlencoded::de::Error),
}
