//! ECS's domain use cases over the versioned store: each public method is one ECS
//! operation's logic (validation, state change, compare-and-swap commit), free of HTTP.

mod account;
mod agents;
pub mod capacity_providers;
mod clusters;
mod error;
pub mod fargate;
mod installation;
mod instances;
mod keys;
pub mod managed_scaling;
mod network;
mod placement;
pub mod service_deployments;
pub mod service_load_balancers;
pub mod service_scheduler;
mod services;
mod tags;
mod task_definitions;
pub mod task_sets;
mod tasks;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod utilization;
mod vpc_subnets;

use std::sync::Arc;

use berth_store::{KeyValue, Store};
pub(crate) use berth_store::{encode, now_epoch};

pub use account::{ACCOUNT_SETTINGS, AccountSetting, check_setting_name};
pub use agents::{
    ContainerInstanceHealth, InstanceHealthCheckResult, InstanceHealthCheckType,
    InstanceHealthStatus,
};
/// ECS's resource tag is a domain value (task definitions carry it too).
pub use berth_model::ecs::{ClusterStatus, EcsTag};
/// The deployment circuit breaker's failure threshold for a desired count.
pub use berth_scheduler::service::failure_threshold as circuit_breaker_threshold;
pub use clusters::{
    CLUSTER_SETTING_NAMES, CapacityProviderStrategyItem, Cluster, ClusterCounts, ClusterSetting,
    ClusterStatistics, ClusterUpdate, CreateCluster, DEFAULT_CLUSTER, FARGATE_CAPACITY_PROVIDERS,
    LaunchTypeCounts,
};
pub use error::EcsError;
pub use installation::{HostNetworks, HostRoute, ProcNetRoute, parse_proc_net_route};
pub use instances::{
    Attribute, CAPACITY_PROVIDER_ATTRIBUTE, ContainerInstance, InstanceStatus, RESERVED_PORTS,
    RegisterContainerInstance, Resources, instance_id, parse_instance_status,
};
pub use network::{
    Attachment, AttachmentDetail, AwsVpcConfiguration, ENI_ATTACHMENT, NetworkConfiguration,
    Subnet, check_network_configuration,
};
pub use services::{
    CreateService, Deployment, DeploymentCircuitBreaker, DeploymentConfiguration, Placement,
    RollbackRecord, Service, ServiceDeploymentRecord, ServiceRevisionRecord, UpdateService,
    revision_of,
};
pub use task_definitions::StoredTaskDefinition;
pub use tasks::{
    ContainerChange, ListTasksFilter, NetworkInterface, PROVISIONING_TIMED_OUT, ProtectedTask,
    ProtectionResult, ProviderUsage, Reservation, RunTask, RunTaskOutcome, RunTaskPending, Task,
    TaskContainer, TaskProtection, TaskStateChange,
};
pub use vpc_subnets::{SubnetDirectory, VpcSubnet};

pub type Result<T, E = EcsError> = std::result::Result<T, E>;

/// The ECS control plane's state and operations.
#[derive(Clone)]
pub struct Ecs {
    store: Arc<dyn Store>,
    lanes: Arc<placement::Lanes>,
    presence: Arc<agents::Presence>,
    installation: Arc<std::sync::OnceLock<berth_model::InstallationId>>,
    /// The ranges routed on this host, which new subnets stay clear of.
    host_networks: Option<Arc<dyn HostNetworks>>,
    /// ELBv2, for services behind load balancers (`service_load_balancers.rs`).
    target_groups: Option<Arc<dyn service_load_balancers::TargetGroups>>,
    subnets: Option<Arc<dyn SubnetDirectory>>,
}

impl Ecs {
    pub fn new(store: Arc<dyn Store>) -> Ecs {
        Ecs {
            store,
            lanes: Arc::default(),
            presence: Arc::default(),
            installation: Arc::default(),
            host_networks: None,
            target_groups: None,
            subnets: None,
        }
    }

    /// The same ECS (agent presence, installation, host networks) writing through `store`:
    /// a leader's controllers write through its fenced store. Placement lanes are its own
    /// (they hold watches on the store they were made with).
    pub fn with_store(&self, store: Arc<dyn Store>) -> Ecs {
        Ecs {
            store,
            lanes: Arc::default(),
            presence: self.presence.clone(),
            installation: self.installation.clone(),
            host_networks: self.host_networks.clone(),
            target_groups: self.target_groups.clone(),
            subnets: self.subnets.clone(),
        }
    }

    /// New subnets' ranges stay clear of what `host` routes (the control plane's host, where
    /// `berth up` also runs its tasks).
    pub fn with_host_networks(mut self, host: Arc<dyn HostNetworks>) -> Ecs {
        self.host_networks = Some(host);
        self
    }
}

/// `berth_store::scan` with this crate's error.
pub(crate) fn scan(
    store: &dyn Store,
    prefix: &str,
    after: Option<String>,
    visit: impl FnMut(&KeyValue) -> Result<bool>,
) -> Result<()> {
    berth_store::scan(store, prefix, after, visit)
}

/// `berth_store::decode` with this crate's error.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(kv: &KeyValue) -> Result<T> {
    Ok(berth_store::decode(kv)?)
}
