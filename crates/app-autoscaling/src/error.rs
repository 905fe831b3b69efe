//! Application Auto Scaling's errors, one per exception of its API.

use berth_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AutoScalingError {
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    ObjectNotFound(String),
    /// TagResource and friends on an ARN that names nothing.
    #[error("{message}")]
    ResourceNotFound { message: String, resource: String },
    #[error("{0}")]
    LimitExceeded(String),
    #[error("{0}")]
    InvalidNextToken(String),
    #[error("{0}")]
    TooManyTags(String),
    /// A port (CloudWatch alarms, ECS) failed.
    #[error("{0}")]
    Port(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AutoScalingError {
    pub(crate) fn validation(message: impl Into<String>) -> Self {
        AutoScalingError::Validation(message.into())
    }
}
