//! ECS's errors in domain terms; the HTTP edge maps each to ECS's `__type`.

#[derive(Debug, thiserror::Error)]
pub enum EcsError {
    #[error("Cluster not found.")]
    ClusterNotFound,
    #[error("The Cluster cannot be deleted while Container Instances are active or draining.")]
    ClusterContainsContainerInstances,
    #[error("The Cluster cannot be deleted while Services are active.")]
    ClusterContainsServices,
    #[error("The Cluster cannot be deleted while Tasks are active.")]
    ClusterContainsTasks,
    #[error("Service not found.")]
    ServiceNotFound,
    #[error("Service was not ACTIVE.")]
    ServiceNotActive,
    #[error("The service deployment was not found.")]
    ServiceDeploymentNotFound,
    /// The API reference's description of TaskSetNotFoundException (no published response
    /// with ECS's own text was found).
    #[error("The specified task set wasn't found.")]
    TaskSetNotFound,
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    InvalidParameter(String),
    #[error("{0}")]
    Client(String),
    #[error("{0}")]
    ResourceNotFound(String),
    #[error("{0}")]
    ResourceInUse(String),
    #[error("storage: {0}")]
    Store(#[from] berth_store::StoreError),
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
    /// A server-side failure reported to several callers at once (a RunTask batch).
    #[error("{0}")]
    Server(String),
}
