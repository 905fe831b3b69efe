//! A container instance as the placement engine sees it (the control plane adapts its
//! stored records to this).

use std::collections::{BTreeMap, BTreeSet};

/// ECS container-instance status: only `ACTIVE` takes tasks.
pub use berth_model::ecs::InstanceStatus;

/// One container instance as the scheduler sees it.
///
/// `attributes` holds both custom attributes and the built-ins the agent registers
/// (`ecs.availability-zone`, `ecs.instance-type`, `ecs.os-type`, `ecs.ami-id`,
/// `ecs.cpu-architecture`, …); an ECS attribute may exist without a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceView {
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

impl InstanceView {
    /// An ACTIVE, connected instance with the given resources and nothing else: a
    /// convenient starting point for tests and adapters.
    pub fn new(arn: impl Into<String>, cpu: u64, memory: u64) -> Self {
        InstanceView {
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
