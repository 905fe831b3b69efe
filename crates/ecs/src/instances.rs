//! Container instances: registration (the agent's call), describe and list, state changes
//! (ACTIVE / DRAINING), deregistration, and custom attributes (Put/Delete/ListAttributes).
//!
//! Registered instances live under `instance/{cluster}/{id}` (so a prefix count is the
//! cluster's `registeredContainerInstancesCount`); deregistered ones move to
//! `instance-inactive/{cluster}/{id}` and stay describable.

use std::collections::BTreeSet;

use berth_model::Scope;
use berth_model::ecs::{EcsArn, EcsResource, VersionInfo};
use berth_store::{Change, Op, Update};
use serde::{Deserialize, Serialize};

use crate::{Ecs, EcsError, Result, decode, encode, now_epoch};

/// Host ports ECS reserves on every container instance (SSH, Docker, the agent).
pub const RESERVED_PORTS: [u16; 5] = [22, 2375, 2376, 51678, 51679];

use crate::keys::{inactive_instance_key, instance_key, instances_prefix};
pub use berth_model::ecs::InstanceStatus;

/// A container instance `status` request member, or ECS's InvalidParameterException.
pub fn parse_instance_status(s: &str) -> Result<InstanceStatus> {
    s.parse().map_err(|_| {
        EcsError::InvalidParameter(format!(
            "Invalid status '{s}'. Valid values: [ACTIVE, DRAINING, INACTIVE]"
        ))
    })
}

/// ECS's Attribute (on container instances: `targetType` and `targetId` are implied).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attribute {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_id: Option<String>,
}

/// The resources ECS accounts per instance.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resources {
    pub cpu: i64,
    pub memory: i64,
    /// Host ports not available (reserved or in use), TCP.
    pub ports: BTreeSet<u16>,
    /// Host ports not available, UDP.
    pub ports_udp: BTreeSet<u16>,
}

/// A stored container instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerInstance {
    pub id: String,
    pub cluster: String,
    pub ec2_instance_id: String,
    pub status: InstanceStatus,
    pub agent_connected: bool,
    pub version: i64,
    pub registered_at: f64,
    pub registered: Resources,
    pub remaining: Resources,
    #[serde(default)]
    pub attributes: Vec<Attribute>,
    #[serde(default)]
    pub version_info: Option<VersionInfo>,
    #[serde(default)]
    pub tags: Vec<crate::EcsTag>,
    /// Counted from the instance's live-task index when the instance is read for a
    /// caller ([`Ecs::with_task_counts`]), never stored: state reports do not rewrite the
    /// record placement compares on.
    #[serde(skip)]
    pub running_tasks_count: i64,
    #[serde(skip)]
    pub pending_tasks_count: i64,
    /// Live tasks on this instance per task group, kept in the same transactions that
    /// place and stop tasks (for `distinctInstance` and `spread`).
    #[serde(default)]
    pub task_groups: std::collections::BTreeMap<String, u32>,
    /// Where the instance's host is reached (Berth's own: the address its agent last
    /// registered from; ECS shows none). Load balancers send an instance target's traffic
    /// to this address and the target's port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_address: Option<std::net::IpAddr>,
    /// The Auto Scaling group capacity provider whose group launched the instance (ECS's
    /// `capacityProviderName`), set by the leader's Auto Scaling controller once the
    /// instance's agent has registered (it knows each group's instance ids).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_provider_name: Option<String>,
}

/// The attribute the placement engine sees an instance's capacity provider as (Berth's own,
/// never stored nor shown in `attributes`): tasks launched through an Auto Scaling group
/// provider are placed with `memberOf(attribute:berth.capacity-provider == NAME)`.
pub const CAPACITY_PROVIDER_ATTRIBUTE: &str = "berth.capacity-provider";

impl ContainerInstance {
    /// How the placement engine (and the cluster query language) sees this instance.
    pub fn placement_view(&self, scope: &Scope) -> berth_scheduler::InstanceView {
        let agent_version = self
            .version_info
            .as_ref()
            .and_then(|v| v.agent_version.as_deref())
            .unwrap_or_default()
            .to_string();
        berth_scheduler::InstanceView {
            arn: self.arn(scope),
            ec2_instance_id: self.ec2_instance_id.clone(),
            status: match self.status {
                InstanceStatus::Active => berth_scheduler::InstanceStatus::Active,
                InstanceStatus::Draining => berth_scheduler::InstanceStatus::Draining,
                InstanceStatus::Inactive => berth_scheduler::InstanceStatus::Inactive,
            },
            agent_connected: self.agent_connected,
            agent_version,
            registered_at: self.registered_at as i64,
            remaining_cpu: self.remaining.cpu.max(0) as u64,
            remaining_memory: self.remaining.memory.max(0) as u64,
            used_tcp_ports: self.remaining.ports.clone(),
            used_udp_ports: self.remaining.ports_udp.clone(),
            attributes: self
                .attributes
                .iter()
                .map(|a| (a.name.clone(), a.value.clone()))
                .chain(
                    self.capacity_provider_name
                        .as_ref()
                        .map(|p| (CAPACITY_PROVIDER_ATTRIBUTE.to_owned(), Some(p.clone()))),
                )
                .collect(),
            task_groups: self.task_groups.clone(),
        }
    }

    pub fn arn(&self, scope: &Scope) -> String {
        EcsArn::container_instance(scope, &self.cluster, &self.id).into_string()
    }
}

impl Attribute {
    /// The attribute as Put/DeleteAttributes answer it: on the container instance `arn`.
    fn on_target(&self, arn: &str) -> Attribute {
        Attribute {
            target_type: Some("container-instance".into()),
            target_id: Some(arn.to_owned()),
            ..self.clone()
        }
    }
}

/// What RegisterContainerInstance carries.
#[derive(Debug, Clone, Default)]
pub struct RegisterContainerInstance {
    pub cluster: Option<String>,
    /// Re-registration of a known instance (the agent after a restart).
    pub container_instance_arn: Option<String>,
    pub ec2_instance_id: Option<String>,
    pub total: Resources,
    pub attributes: Vec<Attribute>,
    pub version_info: Option<VersionInfo>,
    pub tags: Vec<crate::EcsTag>,
    /// The address the agent registers from (see [`ContainerInstance::host_address`]).
    pub host_address: Option<std::net::IpAddr>,
}

/// Attribute names: up to 128 letters, numbers, hyphens, underscores, periods, at signs and
/// forward slashes; values up to 128 characters without leading or trailing whitespace.
fn check_attribute(a: &Attribute) -> Result<()> {
    let name_ok = !a.name.is_empty()
        && a.name.len() <= 128
        && a.name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./@".contains(&b));
    let value_ok = a
        .value
        .as_ref()
        .is_none_or(|v| !v.is_empty() && v.len() <= 128 && v.trim() == v);
    if name_ok && value_ok {
        Ok(())
    } else {
        Err(EcsError::InvalidParameter(format!(
            "Attribute '{}' is not valid: names are 1-128 letters, numbers, hyphens, underscores, periods, at signs and forward slashes; values are 1-128 characters without leading or trailing whitespace.",
            a.name
        )))
    }
}

/// The instance id in `id`, or in a container-instance ARN of this scope and cluster.
pub fn instance_id(scope: &Scope, cluster: &str, id_or_arn: &str) -> Result<String> {
    if id_or_arn.starts_with("arn:") {
        let Some(EcsResource::ContainerInstance { cluster: c, id }) =
            EcsArn::parse(scope, id_or_arn)
        else {
            return Err(EcsError::InvalidParameter(format!(
                "Invalid container instance ARN '{id_or_arn}'."
            )));
        };
        // Long format: CLUSTER/ID; old short format: ID.
        if c.is_some_and(|c| c != cluster) {
            return Err(EcsError::InvalidParameter(
                "Container instance does not belong to the cluster.".into(),
            ));
        }
        return Ok(id.to_string());
    }
    Ok(id_or_arn.to_string())
}

fn random_hex(len: usize) -> String {
    uuid::Uuid::new_v4().simple().to_string()[..len].to_string()
}

impl Ecs {
    /// RegisterContainerInstance. The cluster must exist, except `default`, which is
    /// created on first use as ECS does.
    pub fn register_container_instance(
        &self,
        scope: &Scope,
        req: RegisterContainerInstance,
    ) -> Result<ContainerInstance> {
        let cluster = match self.active_cluster(scope, req.cluster.as_deref()) {
            Ok(c) => c,
            // The `default` cluster appears when first used (the official agent's cluster
            // when none is configured), and so does the Fargate pool's.
            Err(EcsError::ClusterNotFound)
                if req
                    .cluster
                    .as_deref()
                    .is_none_or(|c| c == crate::DEFAULT_CLUSTER) =>
            {
                self.create_cluster(scope, crate::CreateCluster::default())?
            }
            Err(EcsError::ClusterNotFound)
                if req.cluster.as_deref() == Some(crate::fargate::POOL_CLUSTER) =>
            {
                self.create_cluster_unchecked(
                    scope,
                    crate::CreateCluster {
                        name: Some(crate::fargate::POOL_CLUSTER.into()),
                        ..crate::CreateCluster::default()
                    },
                )?
            }
            Err(e) => return Err(e),
        };
        for a in &req.attributes {
            check_attribute(a)?;
        }
        crate::clusters::check_tags(&req.tags)?;
        let id = match &req.container_instance_arn {
            Some(arn) => instance_id(scope, &cluster.name, arn)?,
            None => random_hex(32),
        };
        let key = instance_key(scope, &cluster.name, &id);
        let mut registered = req.total.clone();
        registered.ports.extend(RESERVED_PORTS);
        let stored =
            berth_store::upsert(&*self.store, &key, |previous: Option<ContainerInstance>| {
                Ok::<_, EcsError>(match previous {
                    // The same instance again: keep its identity, tasks and state.
                    Some(mut i) => {
                        i.registered = registered.clone();
                        // Attributes given now replace those of the same name; the others stay
                        // (the official agent sends custom attributes only on its first
                        // registration).
                        for a in &req.attributes {
                            i.attributes.retain(|old| old.name != a.name);
                            i.attributes.push(a.clone());
                        }
                        i.version_info = req.version_info.clone();
                        if req.host_address.is_some() {
                            i.host_address = req.host_address;
                        }
                        i.agent_connected = true;
                        i.version += 1;
                        i
                    }
                    None => ContainerInstance {
                        id: id.clone(),
                        cluster: cluster.name.clone(),
                        ec2_instance_id: req
                            .ec2_instance_id
                            .clone()
                            .unwrap_or_else(|| format!("i-{}", random_hex(17))),
                        status: InstanceStatus::Active,
                        // The registering agent is alive now; it has the heartbeat timeout to
                        // open its session (see agents.rs).
                        agent_connected: true,
                        version: 1,
                        registered_at: now_epoch(),
                        remaining: registered.clone(),
                        registered: registered.clone(),
                        attributes: req.attributes.clone(),
                        version_info: req.version_info.clone(),
                        tags: req.tags.clone(),
                        running_tasks_count: 0,
                        pending_tasks_count: 0,
                        task_groups: Default::default(),
                        host_address: req.host_address,
                        capacity_provider_name: None,
                    },
                })
            })?;
        self.agent_registered(scope, &stored.cluster, &stored.id);
        self.with_task_counts(scope, stored)
    }

    /// A container instance of a cluster by id or ARN, registered or deregistered.
    pub fn container_instance(
        &self,
        scope: &Scope,
        cluster: Option<&str>,
        id_or_arn: &str,
    ) -> Result<Option<ContainerInstance>> {
        let cluster = self.active_cluster(scope, cluster)?;
        let id = instance_id(scope, &cluster.name, id_or_arn)?;
        for key in [
            instance_key(scope, &cluster.name, &id),
            inactive_instance_key(scope, &cluster.name, &id),
        ] {
            if let Some(kv) = self.store.get(&key)? {
                return Ok(Some(self.with_task_counts(scope, decode(&kv)?)?));
            }
        }
        Ok(None)
    }

    /// `instance` with its task counts, as callers are shown it.
    pub(crate) fn with_task_counts(
        &self,
        scope: &Scope,
        mut instance: ContainerInstance,
    ) -> Result<ContainerInstance> {
        (instance.running_tasks_count, instance.pending_tasks_count) =
            self.instance_task_counts(scope, &instance.cluster, &instance.id)?;
        Ok(instance)
    }

    /// Registered (ACTIVE or DRAINING) instances of a cluster, in id order.
    pub fn container_instances(
        &self,
        scope: &Scope,
        cluster: Option<&str>,
    ) -> Result<Vec<ContainerInstance>> {
        let cluster = self.active_cluster(scope, cluster)?;
        self.store
            .range(&instances_prefix(scope, &cluster.name), None, 0)?
            .iter()
            .map(decode)
            .collect()
    }

    /// Every registered instance's host address by its EC2 instance id, in every account
    /// and region (where load balancers reach instance targets). Instances registered
    /// before addresses were recorded, or from the host itself, are on the loopback address.
    pub fn instance_host_addresses(
        &self,
    ) -> Result<std::collections::HashMap<String, std::net::IpAddr>> {
        let mut addresses = std::collections::HashMap::new();
        berth_store::scan(self.store.as_ref(), crate::keys::ROOT, None, |kv| {
            if let Some((_, "instance", _, _)) = crate::keys::split_cluster_key(&kv.key) {
                let i: ContainerInstance = decode(kv)?;
                let address = match i.host_address {
                    Some(a) if !a.is_loopback() && !a.is_unspecified() => a,
                    _ => std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
                };
                addresses.insert(i.ec2_instance_id, address);
            }
            Ok::<_, EcsError>(true)
        })?;
        Ok(addresses)
    }

    /// ListContainerInstances: registered instances, optionally only those with a status
    /// and those matching a cluster query language `filter`.
    pub fn list_container_instances(
        &self,
        scope: &Scope,
        cluster: Option<&str>,
        status: Option<InstanceStatus>,
        filter: Option<&str>,
    ) -> Result<Vec<ContainerInstance>> {
        let filter = filter
            .map(berth_scheduler::parse_expression)
            .transpose()
            .map_err(|e| EcsError::InvalidParameter(format!("Invalid filter: {e}")))?;
        Ok(self
            .container_instances(scope, cluster)?
            .into_iter()
            .filter(|i| status.is_none_or(|s| i.status == s))
            .filter(|i| {
                filter
                    .as_ref()
                    .is_none_or(|f| f.matches(&i.placement_view(scope)))
            })
            .collect())
    }

    /// Read-modify-write of a registered instance.
    fn update_instance(
        &self,
        scope: &Scope,
        cluster: &str,
        id: &str,
        change: impl Fn(&mut ContainerInstance) -> Result<()>,
    ) -> Result<ContainerInstance> {
        let not_found = || {
            EcsError::InvalidParameter(format!(
                "Container instance '{id}' was not found in cluster '{cluster}'."
            ))
        };
        let key = instance_key(scope, cluster, id);
        let updated =
            berth_store::update(&*self.store, &key, |instance: Option<ContainerInstance>| {
                let mut instance = instance.ok_or_else(not_found)?;
                change(&mut instance)?;
                instance.version += 1;
                Ok::<_, EcsError>(berth_store::Change::Put(instance))
            })?;
        self.with_task_counts(scope, updated.ok_or_else(not_found)?)
    }

    /// UpdateContainerInstancesState for one instance.
    pub fn update_container_instance_state(
        &self,
        scope: &Scope,
        cluster: Option<&str>,
        id_or_arn: &str,
        status: InstanceStatus,
    ) -> Result<ContainerInstance> {
        if status == InstanceStatus::Inactive {
            return Err(EcsError::InvalidParameter(
                "Container instance status can only be updated to ACTIVE or DRAINING.".into(),
            ));
        }
        let cluster = self.active_cluster(scope, cluster)?;
        let id = instance_id(scope, &cluster.name, id_or_arn)?;
        self.update_instance(scope, &cluster.name, &id, |i| {
            i.status = status;
            Ok(())
        })
    }

    /// Records the Auto Scaling group capacity provider an instance belongs to (the leader's
    /// Auto Scaling controller, once the instance's agent has registered). Unchanged: no write.
    pub fn set_container_instance_capacity_provider(
        &self,
        scope: &Scope,
        cluster: &str,
        id: &str,
        provider: Option<&str>,
    ) -> Result<()> {
        let key = instance_key(scope, cluster, id);
        berth_store::update(&*self.store, &key, |i: Option<ContainerInstance>| {
            let Some(mut i) = i else {
                return Ok::<_, EcsError>(Change::Keep);
            };
            if i.capacity_provider_name.as_deref() == provider {
                return Ok(Change::Keep);
            }
            i.capacity_provider_name = provider.map(str::to_owned);
            Ok(Change::Put(i))
        })?;
        Ok(())
    }

    /// DeregisterContainerInstance: refused while tasks run there unless `force`.
    pub fn deregister_container_instance(
        &self,
        scope: &Scope,
        cluster: Option<&str>,
        id_or_arn: &str,
        force: bool,
    ) -> Result<ContainerInstance> {
        let cluster = self.active_cluster(scope, cluster)?;
        let id = instance_id(scope, &cluster.name, id_or_arn)?;
        let key = instance_key(scope, &cluster.name, &id);
        let mut deregistered = None;
        berth_store::update(&*self.store, &key, |instance| {
            let Some(instance) = instance else {
                return Err(EcsError::InvalidParameter(format!(
                    "Container instance '{id}' was not found in cluster '{}'.",
                    cluster.name
                )));
            };
            let mut instance = self.with_task_counts(scope, instance)?;
            if !force && instance.running_tasks_count + instance.pending_tasks_count > 0 {
                return Err(EcsError::InvalidParameter(
                    "Found running tasks on the instance.".into(),
                ));
            }
            instance.status = InstanceStatus::Inactive;
            instance.agent_connected = false;
            instance.version += 1;
            // The record moves to the deregistered instances' key.
            let moved = Op::put(
                inactive_instance_key(scope, &cluster.name, &id),
                encode(&instance),
            );
            deregistered = Some(instance);
            Ok(Update::<ContainerInstance>::from(Change::Delete).also(moved))
        })?;
        Ok(deregistered.expect("the committed round deregistered it"))
    }

    /// PutAttributes on container instances; returns the attributes as stored.
    pub fn put_attributes(
        &self,
        scope: &Scope,
        cluster: Option<&str>,
        attributes: &[Attribute],
    ) -> Result<Vec<Attribute>> {
        if attributes.len() > 10 {
            return Err(EcsError::InvalidParameter(
                "Attributes can have at most 10 elements per call.".into(),
            ));
        }
        let cluster = self.active_cluster(scope, cluster)?;
        let mut out = Vec::new();
        for a in attributes {
            check_attribute(a)?;
            let id = self.attribute_target(scope, &cluster.name, a)?;
            let instance = self.update_instance(scope, &cluster.name, &id, |i| {
                let plain = Attribute {
                    name: a.name.clone(),
                    value: a.value.clone(),
                    target_type: None,
                    target_id: None,
                };
                match i.attributes.iter_mut().find(|e| e.name == a.name) {
                    Some(e) => *e = plain,
                    None => i.attributes.push(plain),
                }
                Ok(())
            })?;
            out.push(a.on_target(&instance.arn(scope)));
        }
        Ok(out)
    }

    /// DeleteAttributes on container instances.
    pub fn delete_attributes(
        &self,
        scope: &Scope,
        cluster: Option<&str>,
        attributes: &[Attribute],
    ) -> Result<Vec<Attribute>> {
        let cluster = self.active_cluster(scope, cluster)?;
        let mut out = Vec::new();
        for a in attributes {
            let id = self.attribute_target(scope, &cluster.name, a)?;
            let instance = self.update_instance(scope, &cluster.name, &id, |i| {
                if !i.attributes.iter().any(|e| e.name == a.name) {
                    return Err(EcsError::InvalidParameter(format!(
                        "The attribute '{}' was not found on the target.",
                        a.name
                    )));
                }
                i.attributes.retain(|e| e.name != a.name);
                Ok(())
            })?;
            out.push(a.on_target(&instance.arn(scope)));
        }
        Ok(out)
    }

    fn attribute_target(&self, scope: &Scope, cluster: &str, a: &Attribute) -> Result<String> {
        if a.target_type
            .as_deref()
            .is_some_and(|t| t != "container-instance")
        {
            return Err(EcsError::InvalidParameter(
                "Attribute targetType must be container-instance.".into(),
            ));
        }
        let target = a.target_id.as_deref().ok_or_else(|| {
            EcsError::InvalidParameter(format!(
                "Attribute '{}' needs a targetId (a container instance ID or ARN).",
                a.name
            ))
        })?;
        instance_id(scope, cluster, target)
    }

    /// ListAttributes: every attribute of the cluster's registered instances, optionally
    /// only those with a name (and value).
    pub fn list_attributes(
        &self,
        scope: &Scope,
        cluster: Option<&str>,
        name: Option<&str>,
        value: Option<&str>,
    ) -> Result<Vec<Attribute>> {
        if value.is_some() && name.is_none() {
            return Err(EcsError::InvalidParameter(
                "attributeValue can only be specified with attributeName.".into(),
            ));
        }
        let mut out = Vec::new();
        for instance in self.container_instances(scope, cluster)? {
            for a in &instance.attributes {
                if name.is_some_and(|n| n != a.name)
                    || value.is_some_and(|v| Some(v) != a.value.as_deref())
                {
                    continue;
                }
                out.push(Attribute {
                    target_type: Some("container-instance".into()),
                    target_id: Some(instance.arn(scope)),
                    ..a.clone()
                });
            }
        }
        Ok(out)
    }
}
