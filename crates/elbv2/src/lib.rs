//! ELBv2 for Berth, the control plane: load balancers (application and network), target
//! groups with their targets, listeners with their rules, attributes and tags, as store
//! records under `elbv2/{account}/{region}/` (`keys.rs`). The data plane (`berth-lb`) reads
//! these records and writes targets' health back through [`Elbv2::set_target_health`].
//!
//! A listener's rules live in the listener's record, so that a rule's priority is unique
//! per listener by one compare-and-swap; targets live in their target group's record, and
//! their health in records of their own, which only the data plane writes.

mod actions;
mod address;
mod arn;
mod attributes;
mod keys;
mod listeners;
mod load_balancers;
mod rules;
mod snapshot;
mod tags;
mod target_groups;
mod targets;
mod types;

use std::sync::Arc;

use berth_model::InstallationId;
use berth_store::{Store, StoreError};

pub use actions::{
    Action, ActionType, Condition, ConditionField, FixedResponseConfig, ForwardConfig,
    RedirectConfig, Rule, RuleView, Stickiness, TargetGroupTuple,
};
pub use address::{ADDRESS_RANGE, address_candidate};
pub use arn::{ListenerArn, LoadBalancerArn, RuleArn, TargetGroupArn};
pub use attributes::{Attribute, load_balancer_defaults, target_group_defaults};
pub use keys::ElbScope;
pub use listeners::{Certificate, CreateListener, Listener, ModifyListener};
pub use load_balancers::{AvailabilityZone, CreateLoadBalancer, LoadBalancer, canonical_zone};
pub use rules::{CreateRule, ModifyRule};
pub use snapshot::{Snapshot, shapes_data_plane};
pub use tags::{Tag, Tagged};
pub use target_groups::{CreateTargetGroup, HealthCheck, ModifyTargetGroup, TargetGroup};
pub use targets::{Draining, HealthReport, Target, TargetDescription, TargetHealth};
pub use types::{
    IpAddressType, LoadBalancerState, LoadBalancerType, Protocol, Scheme, TargetHealthReason,
    TargetHealthState, TargetType,
};

/// Every ELBv2 record's key starts with this.
pub const RECORDS_PREFIX: &str = keys::ROOT;

/// Describe calls' page size: 1–400, default 400.
pub const MAX_PAGE_SIZE: usize = 400;

/// ELBv2's errors, each an AWS error code; the text is AWS's message.
#[derive(Debug, thiserror::Error)]
pub enum Elbv2Error {
    #[error("{0}")]
    LoadBalancerNotFound(String),
    #[error("{0}")]
    TargetGroupNotFound(String),
    #[error("{0}")]
    ListenerNotFound(String),
    #[error("{0}")]
    RuleNotFound(String),
    #[error("{0}")]
    DuplicateLoadBalancerName(String),
    #[error("{0}")]
    DuplicateTargetGroupName(String),
    #[error("{0}")]
    DuplicateListener(String),
    #[error("{0}")]
    PriorityInUse(String),
    #[error("{0}")]
    ResourceInUse(String),
    #[error("{0}")]
    InvalidConfigurationRequest(String),
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    TooManyTargets(String),
    #[error("{0}")]
    InvalidTarget(String),
    #[error("{0}")]
    CertificateNotFound(String),
    #[error("{0}")]
    OperationNotPermitted(String),
    #[error("{0}")]
    SubnetNotFound(String),
    #[error("{0}")]
    InvalidSecurityGroup(String),
    #[error("{0}")]
    DuplicateTagKeys(String),
    #[error("{0}")]
    TooManyTags(String),
    #[error("{0}")]
    TargetGroupAssociationLimit(String),
    #[error("{0}")]
    IncompatibleProtocols(String),
    #[error("{0}")]
    UnsupportedProtocol(String),
    #[error("{0}")]
    TooManyLoadBalancers(String),
    #[error("{0}")]
    Store(#[from] StoreError),
}

impl Elbv2Error {
    /// The AWS error code (ELBv2's Query errors name these codes).
    pub fn code(&self) -> &'static str {
        match self {
            Elbv2Error::LoadBalancerNotFound(_) => "LoadBalancerNotFound",
            Elbv2Error::TargetGroupNotFound(_) => "TargetGroupNotFound",
            Elbv2Error::ListenerNotFound(_) => "ListenerNotFound",
            Elbv2Error::RuleNotFound(_) => "RuleNotFound",
            Elbv2Error::DuplicateLoadBalancerName(_) => "DuplicateLoadBalancerName",
            Elbv2Error::DuplicateTargetGroupName(_) => "DuplicateTargetGroupName",
            Elbv2Error::DuplicateListener(_) => "DuplicateListener",
            Elbv2Error::PriorityInUse(_) => "PriorityInUse",
            Elbv2Error::ResourceInUse(_) => "ResourceInUse",
            Elbv2Error::InvalidConfigurationRequest(_) => "InvalidConfigurationRequest",
            Elbv2Error::Validation(_) => "ValidationError",
            Elbv2Error::TooManyTargets(_) => "TooManyTargets",
            Elbv2Error::InvalidTarget(_) => "InvalidTarget",
            Elbv2Error::CertificateNotFound(_) => "CertificateNotFound",
            Elbv2Error::OperationNotPermitted(_) => "OperationNotPermitted",
            Elbv2Error::SubnetNotFound(_) => "SubnetNotFound",
            Elbv2Error::InvalidSecurityGroup(_) => "InvalidSecurityGroup",
            Elbv2Error::DuplicateTagKeys(_) => "DuplicateTagKeys",
            Elbv2Error::TooManyTags(_) => "TooManyTags",
            Elbv2Error::TargetGroupAssociationLimit(_) => "TargetGroupAssociationLimit",
            Elbv2Error::IncompatibleProtocols(_) => "IncompatibleProtocols",
            Elbv2Error::UnsupportedProtocol(_) => "UnsupportedProtocol",
            Elbv2Error::TooManyLoadBalancers(_) => "TooManyLoadBalancers",
            Elbv2Error::Store(_) => "InternalFailure",
        }
    }

    /// Whether the fault is the server's (HTTP 500) rather than the caller's.
    pub fn is_internal(&self) -> bool {
        matches!(self, Elbv2Error::Store(_))
    }
}

pub type Result<T, E = Elbv2Error> = std::result::Result<T, E>;

pub(crate) fn invalid(message: impl Into<String>) -> Elbv2Error {
    Elbv2Error::Validation(message.into())
}

pub(crate) fn config(message: impl Into<String>) -> Elbv2Error {
    Elbv2Error::InvalidConfigurationRequest(message.into())
}

pub(crate) fn lb_not_found() -> Elbv2Error {
    Elbv2Error::LoadBalancerNotFound("One or more load balancers not found".into())
}

pub(crate) fn tg_not_found() -> Elbv2Error {
    Elbv2Error::TargetGroupNotFound("One or more target groups not found".into())
}

pub(crate) fn now() -> f64 {
    berth_store::now_epoch()
}

/// The 16 hex digits that end every ELBv2 ARN.
pub(crate) fn random_id() -> String {
    use rand::Rng;
    format!("{:016x}", rand::thread_rng().r#gen::<u64>())
}

/// One page of a Describe call: the items and the `NextMarker` when more follow.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_marker: Option<String>,
}

impl<T> Page<T> {
    /// Everything asked for, in one page (a selection by names or ARNs).
    pub fn whole(items: Vec<T>) -> Page<T> {
        Page {
            items,
            next_marker: None,
        }
    }
}

/// `Marker` and `PageSize` of a Describe call.
#[derive(Debug, Clone, Default)]
pub struct Paging {
    pub marker: Option<String>,
    pub page_size: Option<i64>,
}

impl Paging {
    pub(crate) fn size(&self) -> Result<usize> {
        match self.page_size {
            None => Ok(MAX_PAGE_SIZE),
            Some(n) if (1..=MAX_PAGE_SIZE as i64).contains(&n) => Ok(n as usize),
            Some(n) => Err(invalid(format!(
                "1 validation error detected: Value '{n}' at 'pageSize' failed to satisfy constraint: Member must have value {}",
                if n < 1 {
                    "greater than or equal to 1".to_string()
                } else {
                    format!("less than or equal to {MAX_PAGE_SIZE}")
                }
            ))),
        }
    }

    /// The key the page starts after.
    pub(crate) fn start_after(&self) -> Result<Option<String>> {
        self.marker
            .as_deref()
            .map(|m| {
                berth_store::page_token::decode(m)
                    .ok_or_else(|| invalid(format!("The marker '{m}' is not valid")))
            })
            .transpose()
    }
}

/// ELBv2 over the store.
pub struct Elbv2 {
    store: Arc<dyn Store>,
    /// Load balancers' addresses are hashed from it, so two installations on one host
    /// rarely draw the same one.
    installation: InstallationId,
}

impl std::fmt::Debug for Elbv2 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Elbv2(..)")
    }
}

impl Elbv2 {
    pub fn new(store: Arc<dyn Store>, installation: InstallationId) -> Elbv2 {
        Elbv2 {
            store,
            installation,
        }
    }

    pub(crate) fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// The same records through another handle on the store (a leader's fenced store).
    pub fn with_store(&self, store: Arc<dyn Store>) -> Elbv2 {
        Elbv2 {
            store,
            installation: self.installation.clone(),
        }
    }

    /// The store its records are in (the data plane watches [`RECORDS_PREFIX`]).
    pub fn store_handle(&self) -> Arc<dyn Store> {
        self.store.clone()
    }
}

#[cfg(test)]
mod tests;
