//! EC2 Auto Scaling's errors: each variant is one of its Query codes, carrying its message.

use berth_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AutoScalingError {
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    ResourceInUse(String),
    #[error("{0}")]
    ScalingActivityInProgress(String),
    /// A lookup in EC2 (a launch template, a subnet) failed for the server's own reasons.
    #[error("{0}")]
    Internal(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AutoScalingError {
    /// The code EC2 Auto Scaling answers with.
    pub fn code(&self) -> &'static str {
        match self {
            AutoScalingError::Validation(_) => "ValidationError",
            AutoScalingError::AlreadyExists(_) => "AlreadyExists",
            AutoScalingError::ResourceInUse(_) => "ResourceInUse",
            AutoScalingError::ScalingActivityInProgress(_) => "ScalingActivityInProgress",
            AutoScalingError::Internal(_) | AutoScalingError::Store(_) => "InternalFailure",
        }
    }

    pub fn is_internal(&self) -> bool {
        matches!(
            self,
            AutoScalingError::Internal(_) | AutoScalingError::Store(_)
        )
    }
}

pub(crate) fn validation(message: impl Into<String>) -> AutoScalingError {
    AutoScalingError::Validation(message.into())
}

pub(crate) fn group_not_found(name: &str) -> AutoScalingError {
    validation(format!(
        "AutoScalingGroup name not found - AutoScalingGroup {name} not found"
    ))
}

pub(crate) fn instance_not_found(id: &str) -> AutoScalingError {
    validation(format!(
        "Instance Id not found - No managed instance found for instance ID: {id}"
    ))
}
