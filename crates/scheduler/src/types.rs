//! The engine's own inputs and outputs: a snapshot of container instances, a task request
//! with its parsed placement constraints and strategies, and the plan that comes back.
//! The control plane adapts its stored records to these; nothing here knows about storage.

use std::fmt;

use crate::query::Expr;

pub use crate::instance::{InstanceStatus, InstanceView};

/// The cluster as of one read: instances in a stable order (the index of an instance in
/// `instances` is its identity in a [`Plan`] and the final tie-breaker).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterSnapshot {
    pub instances: Vec<InstanceView>,
}

/// A parsed `placementConstraints` entry.
#[derive(Debug, Clone, PartialEq)]
pub enum PlacementConstraint {
    /// No two tasks of the request's group on one instance (counting tasks already there
    /// and tasks placed earlier in the same plan).
    DistinctInstance,
    /// Only instances the cluster-query expression selects.
    MemberOf(Expr),
}

/// A resource `binpack` packs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinpackField {
    Cpu,
    Memory,
}

/// What `spread` balances across.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SpreadField {
    /// `instanceId` (alias `host`): one value per instance.
    InstanceId,
    /// `attribute:NAME`: one value per distinct attribute value (absent is a value of its own).
    Attribute(String),
}

/// A parsed `placementStrategy` entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PlacementStrategy {
    Binpack(BinpackField),
    Spread(SpreadField),
    Random,
}

/// What to place: `count` identical tasks of one group.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TaskRequest {
    pub cpu: u64,
    pub memory: u64,
    /// Fixed host ports (dynamic `hostPort: 0` mappings are not listed).
    pub tcp_ports: Vec<u16>,
    pub udp_ports: Vec<u16>,
    /// The task group (`family:NAME` by default for RunTask, `service:NAME` for services).
    pub group: String,
    pub count: u32,
    pub placement_constraints: Vec<PlacementConstraint>,
    pub placement_strategy: Vec<PlacementStrategy>,
}

/// Why an instance cannot take a task, as ECS's `failures[].reason` spells it.
///
/// Sources: the ECS developer guide's "API failure reasons" table for RunTask/StartTask
/// lists `AGENT` (agent disconnected), `ATTRIBUTE` (the instance lacks an attribute the
/// task requires), `INACTIVE` (the instance cannot take tasks) and `RESOURCE:*` with the
/// resource names ECS uses in `remainingResources`: `CPU`, `MEMORY`, `PORTS`, `PORTS_UDP`.
/// Choices made here:
/// - a DRAINING (or otherwise non-ACTIVE) instance reports `INACTIVE`: ECS documents no
///   separate code, and it is the one that says "this instance takes no new tasks";
/// - an instance a `memberOf` expression rejects reports `ATTRIBUTE`, the documented code
///   for "this instance does not have what the placement requires" (the `MissingAttribute`
///   named in our issue is not an ECS reason string);
/// - a `distinctInstance` conflict reports ECS's service-event wording,
///   `DistinctInstance placement constraint unsatisfied.`, as ECS lists no short code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    Inactive,
    Agent,
    Cpu,
    Memory,
    Ports,
    PortsUdp,
    DistinctInstance,
    MemberOf,
}

impl Reason {
    /// The `reason` string of an ECS `Failure`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Inactive => "INACTIVE",
            Reason::Agent => "AGENT",
            Reason::Cpu => "RESOURCE:CPU",
            Reason::Memory => "RESOURCE:MEMORY",
            Reason::Ports => "RESOURCE:PORTS",
            Reason::PortsUdp => "RESOURCE:PORTS_UDP",
            Reason::DistinctInstance => "DistinctInstance placement constraint unsatisfied.",
            Reason::MemberOf => "ATTRIBUTE",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One task placed: index into the snapshot's `instances` and that instance's ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub instance: usize,
    pub arn: String,
}

/// ECS `Failure`: an instance that could not take the task and the first reason why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub arn: String,
    pub reason: Reason,
}

/// The result of one request: placements in task order; when some tasks could not be
/// placed, `unplaced` says how many and `failures` lists every instance with the first
/// check it failed (evaluated at the moment placement stopped).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    pub placements: Vec<Placement>,
    pub unplaced: u32,
    pub failures: Vec<Failure>,
}

/// A request the API must refuse (`InvalidParameterException` with this message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlacementError {
    InvalidParameter(String),
}

impl fmt::Display for PlacementError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlacementError::InvalidParameter(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for PlacementError {}
