//! Clusters: create (idempotent, `default` when unnamed), describe with ECS's counts,
//! list, update settings and configuration, capacity providers, tags, delete (refused while
//! the cluster holds instances, services or tasks; a deleted cluster stays describable as
//! INACTIVE).

use berth_model::Scope;
use berth_model::ecs::{
    ClusterConfiguration, ClusterStatus, EcsArn, EcsResource, EcsTag, LaunchType,
    ServiceConnectDefaults, ServiceStatus,
};
use berth_store::Change;
use serde::{Deserialize, Serialize};

use crate::keys::{cluster_key, clusters_prefix};
use crate::{Ecs, EcsError, Result, decode, now_epoch};

/// The hidden cluster the Fargate pool's hosts register in (`fargate` re-exports it): not
/// listed, not a name users may take.
pub const POOL_CLUSTER: &str = "berth-fargate-pool";

/// The cluster ECS uses when a request names none.
pub const DEFAULT_CLUSTER: &str = "default";

/// Capacity providers every account has.
pub const FARGATE_CAPACITY_PROVIDERS: [&str; 2] = ["FARGATE", "FARGATE_SPOT"];

/// ECS's answer to PutClusterCapacityProviders removing a provider a service's strategy
/// uses (pahud/cdk-fargate-patterns#71, ResourceInUseException).
pub const PROVIDER_IN_USE: &str =
    "The specified capacity provider is in use and cannot be removed.";

/// Cluster settings ECS knows.
pub const CLUSTER_SETTING_NAMES: [&str; 1] = ["containerInsights"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterSetting {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CapacityProviderStrategyItem {
    pub capacity_provider: String,
    #[serde(default)]
    pub weight: u32,
    #[serde(default)]
    pub base: u32,
}

/// A stored cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cluster {
    pub name: String,
    pub status: ClusterStatus,
    pub created_at: f64,
    #[serde(default)]
    pub tags: Vec<EcsTag>,
    #[serde(default)]
    pub settings: Vec<ClusterSetting>,
    /// ECS's ClusterConfiguration, kept as given.
    #[serde(default)]
    pub configuration: Option<ClusterConfiguration>,
    #[serde(default)]
    pub service_connect_defaults: Option<ServiceConnectDefaults>,
    #[serde(default)]
    pub capacity_providers: Vec<String>,
    #[serde(default)]
    pub default_capacity_provider_strategy: Vec<CapacityProviderStrategyItem>,
}

impl Cluster {
    pub fn arn(&self, scope: &Scope) -> String {
        EcsArn::cluster(scope, &self.name).into_string()
    }
}

/// What CreateCluster asks for.
#[derive(Debug, Clone, Default)]
pub struct CreateCluster {
    pub name: Option<String>,
    pub tags: Vec<EcsTag>,
    pub settings: Vec<ClusterSetting>,
    pub configuration: Option<ClusterConfiguration>,
    pub service_connect_defaults: Option<ServiceConnectDefaults>,
    pub capacity_providers: Vec<String>,
    pub default_capacity_provider_strategy: Vec<CapacityProviderStrategyItem>,
}

/// What UpdateCluster / UpdateClusterSettings change; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct ClusterUpdate {
    pub settings: Option<Vec<ClusterSetting>>,
    pub configuration: Option<ClusterConfiguration>,
    pub service_connect_defaults: Option<ServiceConnectDefaults>,
}

fn reserved_for_the_pool() -> EcsError {
    EcsError::InvalidParameter(format!(
        "The cluster name {} is reserved for the Fargate capacity of this server.",
        POOL_CLUSTER
    ))
}

/// Users see the Fargate pool's cluster (describe it, list its hosts) but do not run tasks
/// or services in it, nor delete it.
pub(crate) fn refuse_the_pool(scope: &Scope, name_or_arn: Option<&str>) -> Result<()> {
    if name_or_arn.is_some() && cluster_name(scope, name_or_arn)? == POOL_CLUSTER {
        return Err(reserved_for_the_pool());
    }
    Ok(())
}

/// ECS resource names (clusters, services): 1 to 255 letters, numbers, hyphens and
/// underscores. `what` starts the message: "Cluster", "Service".
pub(crate) fn check_resource_name(what: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(EcsError::InvalidParameter(format!(
            "{what} name should be 1 to 255 characters long and can contain letters, numbers, hyphens and underscores."
        )))
    }
}

fn check_settings(settings: &[ClusterSetting]) -> Result<()> {
    for s in settings {
        if !CLUSTER_SETTING_NAMES.contains(&s.name.as_str()) {
            return Err(EcsError::InvalidParameter(format!(
                "Cluster setting name '{}' is not valid. Valid names: [containerInsights]",
                s.name
            )));
        }
        if !matches!(s.value.as_str(), "enabled" | "disabled" | "enhanced") {
            return Err(EcsError::InvalidParameter(format!(
                "Cluster setting value '{}' for containerInsights is not valid. Valid values: [enabled, disabled, enhanced]",
                s.value
            )));
        }
    }
    Ok(())
}

/// Tags as ECS limits them: at most 50, keys 1–128 characters, values up to 256, and
/// no `aws:` prefix.
pub(crate) fn check_tags(tags: &[EcsTag]) -> Result<()> {
    if tags.len() > 50 {
        return Err(EcsError::InvalidParameter(
            "The resource can have at most 50 tags.".into(),
        ));
    }
    for t in tags {
        if t.key.is_empty() || t.key.chars().count() > 128 || t.value.chars().count() > 256 {
            return Err(EcsError::InvalidParameter(format!(
                "Tag key must be 1 to 128 characters and value at most 256 characters (key '{}').",
                t.key
            )));
        }
        if t.key.to_ascii_lowercase().starts_with("aws:") {
            return Err(EcsError::InvalidParameter(
                "Tag keys beginning with 'aws:' are reserved for AWS use.".into(),
            ));
        }
    }
    Ok(())
}

/// The providers (built in, or created by CreateCapacityProvider: `exists`) and default
/// strategy a cluster is given.
fn check_capacity_providers(
    providers: &[String],
    strategy: &[CapacityProviderStrategyItem],
    exists: impl Fn(&str) -> Result<bool>,
) -> Result<()> {
    for p in providers {
        if !exists(p)? {
            return Err(EcsError::InvalidParameter(format!(
                "The specified capacity provider '{p}' does not exist. Specify a valid capacity provider and try again."
            )));
        }
    }
    for item in strategy {
        if !providers.contains(&item.capacity_provider) {
            return Err(EcsError::InvalidParameter(format!(
                "The specified capacity provider strategy cannot contain a capacity provider that is not associated with the cluster. Associate the capacity provider with the cluster or specify a valid capacity provider and try again. (capacity provider '{}')",
                item.capacity_provider
            )));
        }
        if item.weight > 1000 || item.base > 100_000 {
            return Err(EcsError::InvalidParameter(
                "Capacity provider strategy weight must be between 0 and 1000 and base between 0 and 100000.".into(),
            ));
        }
    }
    if strategy.iter().filter(|i| i.base > 0).count() > 1 {
        return Err(EcsError::InvalidParameter(
            "Only one capacity provider in a capacity provider strategy can have a base defined."
                .into(),
        ));
    }
    Ok(())
}

/// `name` or a cluster ARN of this scope, to the cluster name.
pub(crate) fn cluster_name(scope: &Scope, name_or_arn: Option<&str>) -> Result<String> {
    let value = name_or_arn.unwrap_or(DEFAULT_CLUSTER);
    if value.starts_with("arn:") {
        return match EcsArn::parse(scope, value) {
            Some(EcsResource::Cluster(name)) => Ok(name.to_string()),
            _ => Err(EcsError::ClusterNotFound),
        };
    }
    Ok(value.to_string())
}

impl Ecs {
    pub fn create_cluster(&self, scope: &Scope, req: CreateCluster) -> Result<Cluster> {
        if req.name.as_deref() == Some(POOL_CLUSTER) {
            return Err(reserved_for_the_pool());
        }
        self.create_cluster_unchecked(scope, req)
    }

    /// CreateCluster without the check for the pool's reserved name (the pool's cluster
    /// appears when its first host registers).
    pub(crate) fn create_cluster_unchecked(
        &self,
        scope: &Scope,
        req: CreateCluster,
    ) -> Result<Cluster> {
        let name = req.name.unwrap_or_else(|| DEFAULT_CLUSTER.to_string());
        check_resource_name("Cluster", &name)?;
        check_settings(&req.settings)?;
        check_tags(&req.tags)?;
        check_capacity_providers(
            &req.capacity_providers,
            &req.default_capacity_provider_strategy,
            |p| self.capacity_provider_exists(scope, p),
        )?;
        let key = cluster_key(scope, &name);
        let created = berth_store::update(&*self.store, &key, |existing: Option<Cluster>| {
            if existing.is_some_and(|c| c.status == ClusterStatus::Active) {
                // CreateCluster is idempotent in ECS: the existing cluster comes back.
                return Ok::<_, EcsError>(Change::Keep);
            }
            let cluster = Cluster {
                name: name.clone(),
                status: ClusterStatus::Active,
                created_at: now_epoch(),
                tags: req.tags.clone(),
                settings: if req.settings.is_empty() {
                    vec![ClusterSetting {
                        name: "containerInsights".into(),
                        value: "disabled".into(),
                    }]
                } else {
                    req.settings.clone()
                },
                configuration: req.configuration.clone(),
                service_connect_defaults: req.service_connect_defaults.clone(),
                capacity_providers: req.capacity_providers.clone(),
                default_capacity_provider_strategy: req.default_capacity_provider_strategy.clone(),
            };
            Ok(Change::Put(cluster))
        })?;
        Ok(created.expect("kept or put"))
    }

    /// The cluster a request names (a name, an ARN, or none for `default`), ACTIVE or not.
    pub fn cluster(&self, scope: &Scope, name_or_arn: Option<&str>) -> Result<Cluster> {
        Ok(self.cluster_with_revision(scope, name_or_arn)?.0)
    }

    /// The named cluster if it exists and is ACTIVE; `ClusterNotFoundException` otherwise.
    pub fn active_cluster(&self, scope: &Scope, name_or_arn: Option<&str>) -> Result<Cluster> {
        let cluster = self.cluster(scope, name_or_arn)?;
        if cluster.status != ClusterStatus::Active {
            return Err(EcsError::ClusterNotFound);
        }
        Ok(cluster)
    }

    fn cluster_with_revision(
        &self,
        scope: &Scope,
        name_or_arn: Option<&str>,
    ) -> Result<(Cluster, u64)> {
        let name = cluster_name(scope, name_or_arn)?;
        match self.store.get(&cluster_key(scope, &name))? {
            Some(kv) => Ok((decode(&kv)?, kv.mod_revision)),
            None => Err(EcsError::ClusterNotFound),
        }
    }

    /// ACTIVE clusters (not the Fargate pool's), in name order, a page at a time
    /// (`next_token` is the last name).
    pub fn list_clusters(
        &self,
        scope: &Scope,
        next_token: Option<&str>,
        max_results: usize,
    ) -> Result<(Vec<Cluster>, Option<String>)> {
        let prefix = clusters_prefix(scope);
        let after = next_token
            .map(|t| {
                berth_store::page_token::decode(t)
                    .map(|name| format!("{prefix}{name}"))
                    .ok_or_else(|| EcsError::InvalidParameter("Invalid nextToken.".into()))
            })
            .transpose()?;
        let mut out = Vec::new();
        let mut cursor = after;
        loop {
            let batch = self.store.range(&prefix, cursor.as_deref(), 256)?;
            let done = batch.len() < 256;
            for kv in &batch {
                let cluster: Cluster = decode(kv)?;
                // The Fargate pool's cluster is the platform's, not the user's.
                if cluster.status == ClusterStatus::Active && cluster.name != POOL_CLUSTER {
                    if out.len() == max_results {
                        let last: &Cluster = out.last().expect("max_results > 0");
                        let token = berth_store::page_token::encode(&last.name);
                        return Ok((out.clone(), Some(token)));
                    }
                    out.push(cluster);
                }
            }
            cursor = batch.last().map(|kv| kv.key.clone());
            if done {
                return Ok((out, None));
            }
        }
    }

    /// Read-modify-write of an ACTIVE cluster with compare-and-swap.
    fn update_cluster_record(
        &self,
        scope: &Scope,
        name_or_arn: Option<&str>,
        change: impl Fn(&mut Cluster) -> Result<()>,
    ) -> Result<Cluster> {
        let key = cluster_key(scope, &cluster_name(scope, name_or_arn)?);
        let updated = berth_store::update(&*self.store, &key, |cluster: Option<Cluster>| {
            let mut cluster = cluster
                .filter(|c| c.status == ClusterStatus::Active)
                .ok_or(EcsError::ClusterNotFound)?;
            change(&mut cluster)?;
            Ok::<_, EcsError>(Change::Put(cluster))
        })?;
        updated.ok_or(EcsError::ClusterNotFound)
    }

    pub fn update_cluster(
        &self,
        scope: &Scope,
        name_or_arn: &str,
        update: ClusterUpdate,
    ) -> Result<Cluster> {
        if let Some(settings) = &update.settings {
            check_settings(settings)?;
        }
        self.update_cluster_record(scope, Some(name_or_arn), |c| {
            if let Some(settings) = &update.settings {
                for s in settings {
                    match c.settings.iter_mut().find(|e| e.name == s.name) {
                        Some(e) => e.value = s.value.clone(),
                        None => c.settings.push(s.clone()),
                    }
                }
            }
            if let Some(configuration) = &update.configuration {
                c.configuration = Some(configuration.clone());
            }
            if let Some(defaults) = &update.service_connect_defaults {
                c.service_connect_defaults = Some(defaults.clone());
            }
            Ok(())
        })
    }

    pub fn put_cluster_capacity_providers(
        &self,
        scope: &Scope,
        name_or_arn: &str,
        providers: Vec<String>,
        strategy: Vec<CapacityProviderStrategyItem>,
    ) -> Result<Cluster> {
        check_capacity_providers(&providers, &strategy, |p| {
            self.capacity_provider_exists(scope, p)
        })?;
        // A provider a service's strategy uses stays (ResourceInUseException).
        let removed_in_use = self.services(scope, Some(name_or_arn))?.iter().any(|s| {
            s.capacity_provider_strategy
                .iter()
                .any(|i| !providers.contains(&i.capacity_provider))
        });
        if removed_in_use {
            return Err(EcsError::ResourceInUse(PROVIDER_IN_USE.into()));
        }
        self.update_cluster_record(scope, Some(name_or_arn), |c| {
            c.capacity_providers = providers.clone();
            c.default_capacity_provider_strategy = strategy.clone();
            Ok(())
        })
    }

    /// Delete a cluster: refused while it holds container instances, services or tasks;
    /// afterwards it is INACTIVE (still describable, no longer listed).
    pub fn delete_cluster(&self, scope: &Scope, name_or_arn: &str) -> Result<Cluster> {
        refuse_the_pool(scope, Some(name_or_arn))?;
        let counts = self.cluster_counts(scope, &cluster_name(scope, Some(name_or_arn))?)?;
        if counts.registered_container_instances > 0 {
            return Err(EcsError::ClusterContainsContainerInstances);
        }
        if counts.active_services > 0 {
            return Err(EcsError::ClusterContainsServices);
        }
        if counts.running_tasks + counts.pending_tasks > 0 {
            return Err(EcsError::ClusterContainsTasks);
        }
        self.update_cluster_record(scope, Some(name_or_arn), |cluster| {
            cluster.status = ClusterStatus::Inactive;
            Ok(())
        })
    }

    /// DescribeClusters' statistics: its live tasks (the same ones `cluster_counts` counts)
    /// and its ACTIVE and DRAINING services, by launch type.
    pub fn cluster_statistics(&self, scope: &Scope, name: &str) -> Result<ClusterStatistics> {
        let (running_tasks, pending_tasks) = self.live_tasks_by_launch_type(scope, name)?;
        let mut statistics = ClusterStatistics {
            running_tasks,
            pending_tasks,
            ..ClusterStatistics::default()
        };
        for service in self.services(scope, Some(name))? {
            match service.status {
                ServiceStatus::Active => statistics.active_services.add(service.launch_type),
                ServiceStatus::Draining => statistics.draining_services.add(service.launch_type),
                ServiceStatus::Inactive => {}
            }
        }
        Ok(statistics)
    }

    /// The counts DescribeClusters reports, derived from the stored instances, tasks and
    /// services so that they are true at all times.
    pub fn cluster_counts(&self, scope: &Scope, name: &str) -> Result<ClusterCounts> {
        let base = crate::keys::base(scope);
        let count = |kind: &str| -> Result<usize> {
            Ok(self
                .store
                .range(&format!("{base}{kind}/{name}/"), None, 0)?
                .len())
        };
        Ok(ClusterCounts {
            registered_container_instances: count("instance")?,
            running_tasks: count("task-running")?,
            pending_tasks: count("task-pending")?,
            active_services: count("service-active")?,
        })
    }
}

/// Counts split by launch type, as DescribeClusters' statistics report them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LaunchTypeCounts {
    pub ec2: usize,
    pub fargate: usize,
    pub external: usize,
}

impl LaunchTypeCounts {
    pub fn add(&mut self, launch_type: LaunchType) {
        match launch_type {
            LaunchType::Ec2 => self.ec2 += 1,
            LaunchType::Fargate => self.fargate += 1,
            LaunchType::External => self.external += 1,
        }
    }
}

/// DescribeClusters' STATISTICS: the cluster's live tasks and its services by launch type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClusterStatistics {
    pub running_tasks: LaunchTypeCounts,
    pub pending_tasks: LaunchTypeCounts,
    pub active_services: LaunchTypeCounts,
    pub draining_services: LaunchTypeCounts,
}

/// The live counts of a cluster.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClusterCounts {
    pub registered_container_instances: usize,
    pub running_tasks: usize,
    pub pending_tasks: usize,
    pub active_services: usize,
}
