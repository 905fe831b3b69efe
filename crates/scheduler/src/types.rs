//! The engine's own inputs and outputs: a snapshot of container instances, a task request
//! with its parsed placement constraints and strategies, and the plan that comes back.
//! The control plane adapts its stored records to these; nothing here knows about storage.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::query::Expr;

/// ECS container-instance status as far as placement cares: only `ACTIVE` takes tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InstanceStatus {
    Active,
    Draining,
    /// REGISTERING, DEREGISTERING, INACTIVE, …: never chosen either.
    Inactive,
}

/// One container instance as the scheduler sees it.
///
/// `attributes` holds both custom attributes and the built-ins the agent registers
/// (`ecs.availability-zone`, `ecs.instance-type`, `ecs.os-type`, `ecs.ami-id`,
/// `ecs.cpu-architecture`, …); an ECS attribute may exist without a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInstance {
    pub arn: String,
    pub ec2_instance_id: String,
    pub status: InstanceStatus,
    pub agent_connected: bool,
    pub agent_version: String,
    /// Registration time, seconds since the Unix epoch (for `registeredAt` queries).
    pub registered_at: i64,
    pub remaining_cpu: u64,
    pub remaining_memory: u64,
    pub used_tcp_ports: BTreeSet<u16>,
    pub used_udp_ports: BTreeSet<u16>,
    pub attributes: BTreeMap<String, Option<String>>,
    /// Number of tasks of each task group (`service:NAME`, `family:NAME`, custom) on it.
    pub task_groups: BTreeMap<String, u32>,
}

impl ContainerInstance {
    /// An ACTIVE, connected instance with the given resources and nothing else: a
    /// convenient starting point for tests and adapters.
    pub fn new(arn: impl Into<String>, cpu: u64, memory: u64) -> Self {
        ContainerInstance {
            arn: arn.into(),
            ec2_instance_id: String::new(),
            status: InstanceStatus::Active,
            agent_connected: true,
            agent_version: String::new(),
            registered_at: 0,
            remaining_cpu: cpu,
            remaining_memory: memory,
            used_tcp_ports: BTreeSet::new(),
            used_udp_ports: BTreeSet::new(),
            attributes: BTreeMap::new(),
            task_groups: BTreeMap::new(),
        }
    }

    /// Builder-style attribute setter.
    pub fn with_attribute(mut self, name: &str, value: &str) -> Self {
        self.attributes
            .insert(name.to_string(), Some(value.to_string()));
        self
    }

    /// The value of attribute `name`: `None` when absent, `Some(None)` when present without value.
    pub fn attribute(&self, name: &str) -> Option<Option<&str>> {
        self.attributes.get(name).map(|v| v.as_deref())
    }

    /// Tasks of `group` on this instance.
    pub fn group_count(&self, group: &str) -> u32 {
        self.task_groups.get(group).copied().unwrap_or(0)
    }

    /// All tasks on this instance (the `runningTasksCount` query subject).
    pub fn running_tasks_count(&self) -> u64 {
        self.task_groups.values().map(|&n| u64::from(n)).sum()
    }
}

/// The cluster as of one read: instances in a stable order (the index of an instance in
/// `instances` is its identity in a [`Plan`] and the final tie-breaker).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterSnapshot {
    pub instances: Vec<ContainerInstance>,
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
