//! ECS capacity providers over Berth's Auto Scaling groups, on the leader: each pass, for
//! every group an Auto Scaling group capacity provider names, it records the provider on
//! the group's container instances (ECS's `capacityProviderName`: the controller knows each
//! agent's instance id), places the tasks waiting in PROVISIONING for the provider, stops
//! those that waited past the provisioning timeout, keeps managed termination protection
//! (instances running tasks protected from scale-in), and with managed scaling computes
//! CapacityProviderReservation (`berth_ecs::managed_scaling`, pure), publishes it as
//! `AWS/ECS/ManagedScaling` every metrics period and sets the group's desired capacity.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_autoscaling::{AsgScope, AutoScaling, AutoScalingGroup};
use berth_cloudwatch::{CloudWatch, CwScope, Dimension, MetricDatum, PutMetricData};
use berth_ecs::capacity_providers::{CapacityProvider, group_name};
use berth_ecs::managed_scaling::{self, InstanceLoad, Resources, ScalingInput};
use berth_model::Scope;
use berth_model::ecs::{InstanceStatus, ManagedSwitch};
use tokio::sync::watch;

const NAMESPACE: &str = "AWS/ECS/ManagedScaling";
const METRIC: &str = "CapacityProviderReservation";
/// How often the controller passes.
const PASS: Duration = Duration::from_secs(2);

/// Managed scaling's timings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// How long the reservation must stay below the target before the group scales in:
    /// 15 minutes (ECS's target tracking scale-in alarm wants 15 one-minute datapoints
    /// below the target), `BERTH_MANAGED_SCALING_SCALE_IN_SECONDS` otherwise.
    pub scale_in_after: Duration,
    /// How long a task may wait in PROVISIONING for capacity before it is stopped: 30
    /// minutes, `BERTH_PROVISIONING_TIMEOUT_SECONDS` otherwise.
    pub provisioning_timeout: Duration,
}

impl Settings {
    pub fn from_env() -> Settings {
        let seconds = |name: &str, default: u64| {
            Duration::from_secs(
                std::env::var(name)
                    .ok()
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(default),
            )
        };
        Settings {
            scale_in_after: seconds("BERTH_MANAGED_SCALING_SCALE_IN_SECONDS", 900),
            provisioning_timeout: seconds("BERTH_PROVISIONING_TIMEOUT_SECONDS", 1800),
        }
    }
}

/// (account, region, cluster, provider).
type ProviderKey = (String, String, String, String);

pub struct ManagedScaling {
    pub autoscaling: AutoScaling,
    pub ecs: berth_ecs::Ecs,
    pub cloudwatch: Arc<CloudWatch>,
    pub metrics_period: Duration,
    pub settings: Settings,
    /// Since when each provider's reservation has been below its target (this leader's
    /// memory: a new leader starts counting again).
    below_target_since: Mutex<HashMap<ProviderKey, f64>>,
    /// Each provider's latest reservation, published every metrics period.
    latest: Mutex<HashMap<ProviderKey, f64>>,
}

impl ManagedScaling {
    pub fn new(
        autoscaling: AutoScaling,
        ecs: berth_ecs::Ecs,
        cloudwatch: Arc<CloudWatch>,
        metrics_period: Duration,
        settings: Settings,
    ) -> ManagedScaling {
        ManagedScaling {
            autoscaling,
            ecs,
            cloudwatch,
            metrics_period,
            settings,
            below_target_since: Mutex::new(HashMap::new()),
            latest: Mutex::new(HashMap::new()),
        }
    }

    /// Passes until `shutdown` turns true.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let this = Arc::new(self);
        let mut published = Instant::now();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(PASS) => {}
                _ = shutdown.changed() => return,
            }
            let publish = published.elapsed() >= this.metrics_period;
            if publish {
                published = Instant::now();
            }
            let pass = this.clone();
            match tokio::task::spawn_blocking(move || pass.pass(publish)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "managed scaling: a pass failed"),
                Err(e) => tracing::warn!(error = %e, "managed scaling: a pass panicked"),
            }
        }
    }

    /// One pass over every group a capacity provider names.
    pub fn pass(&self, publish: bool) -> Result<(), String> {
        let groups = self.autoscaling.all_groups().map_err(|e| e.to_string())?;
        let mut providers_by_scope: HashMap<(String, String), Vec<CapacityProvider>> =
            HashMap::new();
        for (asg_scope, group) in groups {
            let Some(scope) = super::ecs_scope(&asg_scope) else {
                continue;
            };
            let key = (asg_scope.account.clone(), asg_scope.region.clone());
            if !providers_by_scope.contains_key(&key) {
                let providers = self
                    .ecs
                    .capacity_providers(&scope)
                    .map_err(|e| e.to_string())?;
                providers_by_scope.insert(key.clone(), providers);
            }
            let provider = providers_by_scope[&key].iter().find(|p| {
                p.auto_scaling_group_provider
                    .as_ref()
                    .is_some_and(|a| group_name(&a.auto_scaling_group_arn) == group.name)
            });
            let Some(provider) = provider.cloned() else {
                continue;
            };
            if let Err(e) = self.provider_pass(&asg_scope, &scope, &group, &provider) {
                tracing::warn!(provider = %provider.name, group = %group.name, error = %e, "managed scaling");
            }
        }
        if publish {
            self.publish();
        }
        Ok(())
    }

    fn provider_pass(
        &self,
        asg_scope: &AsgScope,
        scope: &Scope,
        group: &AutoScalingGroup,
        provider: &CapacityProvider,
    ) -> Result<(), String> {
        let asg = provider
            .auto_scaling_group_provider
            .as_ref()
            .expect("an Auto Scaling group provider");
        let err = |e: berth_ecs::EcsError| e.to_string();
        // A provider is associated with one cluster at most.
        let cluster = self
            .ecs
            .clusters_with_capacity_provider(scope, &provider.name)
            .map_err(err)?
            .into_iter()
            .next();
        self.record_providers(scope, group, &provider.name, cluster.as_deref())?;
        let Some(cluster) = cluster else {
            return Ok(());
        };
        let now = berth_store::now_epoch();
        self.ecs
            .place_waiting_tasks(scope, &cluster, &provider.name)
            .map_err(err)?;
        let timeout = self.settings.provisioning_timeout.as_secs_f64();
        self.ecs
            .expire_waiting_tasks(scope, &cluster, now - timeout)
            .map_err(err)?;
        let usage = self
            .ecs
            .provider_usage(scope, &cluster, &provider.name)
            .map_err(err)?;
        let busy = |i: &berth_ecs::ContainerInstance| usage.busy.contains(&i.id);
        if asg.managed_termination_protection == ManagedSwitch::Enabled {
            self.protect(asg_scope, group, &usage.instances, busy)?;
        }
        let key: ProviderKey = (
            asg_scope.account.clone(),
            asg_scope.region.clone(),
            cluster.clone(),
            provider.name.clone(),
        );
        if asg.managed_scaling.status != ManagedSwitch::Enabled {
            self.latest.lock().expect("not poisoned").remove(&key);
            return Ok(());
        }
        let input = ScalingInput {
            instances: usage
                .instances
                .iter()
                .filter(|i| i.status != InstanceStatus::Inactive)
                .map(|i| InstanceLoad {
                    registered: Resources {
                        cpu: i.registered.cpu,
                        memory: i.registered.memory,
                    },
                    busy: busy(i),
                })
                .collect(),
            waiting: usage
                .tasks
                .iter()
                .filter(|t| t.is_waiting_for_capacity())
                .map(|t| Resources {
                    cpu: t.reservation.cpu,
                    memory: t.reservation.memory,
                })
                .collect(),
            running_instances: group.live().count() as i64,
            desired_capacity: group.desired_capacity,
            min_size: group.min_size,
            max_size: group.max_size,
            target_capacity: asg.managed_scaling.target_capacity,
            minimum_scaling_step_size: asg.managed_scaling.minimum_scaling_step_size,
            maximum_scaling_step_size: asg.managed_scaling.maximum_scaling_step_size,
            exact_minimum_step: spans_several(group),
            below_target_since: self
                .below_target_since
                .lock()
                .expect("not poisoned")
                .get(&key)
                .copied(),
            now,
            scale_in_after: self.settings.scale_in_after.as_secs_f64(),
        };
        let decision = managed_scaling::plan(&input);
        {
            let mut since = self.below_target_since.lock().expect("not poisoned");
            match decision.below_target_since {
                Some(t) => since.insert(key.clone(), t),
                None => since.remove(&key),
            };
        }
        self.latest
            .lock()
            .expect("not poisoned")
            .insert(key.clone(), decision.reservation);
        if let Some(desired) = decision.desired_capacity {
            self.autoscaling
                .set_desired_capacity_by_capacity_provider(
                    asg_scope,
                    &group.name,
                    desired,
                    &provider.name,
                )
                .map_err(|e| e.to_string())?;
            // A scale-in starts the wait again.
            self.below_target_since
                .lock()
                .expect("not poisoned")
                .remove(&key);
            tracing::info!(
                provider = %provider.name,
                group = %group.name,
                from = group.desired_capacity,
                to = desired,
                reservation = decision.reservation,
                "managed scaling set the group's desired capacity"
            );
        }
        Ok(())
    }

    /// ECS's `capacityProviderName` on the group's container instances in the provider's
    /// cluster.
    fn record_providers(
        &self,
        scope: &Scope,
        group: &AutoScalingGroup,
        provider: &str,
        cluster: Option<&str>,
    ) -> Result<(), String> {
        let mut clusters: Vec<&str> = group.live().map(|i| i.cluster.as_str()).collect();
        clusters.sort_unstable();
        clusters.dedup();
        for c in clusters {
            let Ok(instances) = self.ecs.container_instances(scope, Some(c)) else {
                continue;
            };
            for ci in instances {
                if group.instance(&ci.ec2_instance_id).is_none() {
                    continue;
                }
                let wanted = (cluster == Some(c)).then_some(provider);
                if ci.capacity_provider_name.as_deref() != wanted {
                    self.ecs
                        .set_container_instance_capacity_provider(scope, c, &ci.id, wanted)
                        .map_err(|e| e.to_string())?;
                }
            }
        }
        Ok(())
    }

    /// Managed termination protection: the group's instances running tasks protected from
    /// scale-in, the others not (instances whose agent has not registered yet keep theirs).
    fn protect(
        &self,
        scope: &AsgScope,
        group: &AutoScalingGroup,
        instances: &[berth_ecs::ContainerInstance],
        busy: impl Fn(&berth_ecs::ContainerInstance) -> bool,
    ) -> Result<(), String> {
        let mut protect = Vec::new();
        let mut unprotect = Vec::new();
        for ci in instances {
            let Some(instance) = group.instance(&ci.ec2_instance_id) else {
                continue;
            };
            if !instance.lifecycle_state.is_live() {
                continue;
            }
            match (busy(ci), instance.protected_from_scale_in) {
                (true, false) => protect.push(instance.instance_id.clone()),
                (false, true) => unprotect.push(instance.instance_id.clone()),
                _ => {}
            }
        }
        for (ids, protected) in [(protect, true), (unprotect, false)] {
            if !ids.is_empty() {
                self.autoscaling
                    .set_instance_protection(scope, &group.name, &ids, protected)
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }

    /// Every provider's latest reservation, in its account and region.
    fn publish(&self) {
        let high_resolution = crate::load_balancing::metrics::high_resolution(self.metrics_period);
        let latest = self.latest.lock().expect("not poisoned").clone();
        for ((account, region, cluster, provider), reservation) in latest {
            let datum = reservation_datum(&cluster, &provider, reservation, high_resolution);
            let put = PutMetricData {
                namespace: NAMESPACE.to_owned(),
                metric_data: vec![datum],
            };
            if let Err(e) = self
                .cloudwatch
                .publish(&CwScope::new(&account, &region), put)
            {
                tracing::warn!(error = %e, "CapacityProviderReservation not published");
            }
        }
    }
}

/// Whether the group spans more than one Availability Zone or instance type (its zones, or
/// its instances' types).
fn spans_several(group: &AutoScalingGroup) -> bool {
    let mut zones: Vec<&str> = group
        .availability_zones
        .iter()
        .map(String::as_str)
        .collect();
    zones.extend(group.subnets.iter().map(|s| s.zone.as_str()));
    zones.sort_unstable();
    zones.dedup();
    let mut types: Vec<&str> = group
        .instances
        .iter()
        .filter_map(|i| i.instance_type.as_deref())
        .collect();
    types.sort_unstable();
    types.dedup();
    zones.len() > 1 || types.len() > 1
}

/// The CapacityProviderReservation datum of a provider in a cluster.
pub fn reservation_datum(
    cluster: &str,
    provider: &str,
    reservation: f64,
    high_resolution: bool,
) -> MetricDatum {
    MetricDatum {
        metric_name: METRIC.to_owned(),
        dimensions: vec![
            Dimension {
                name: "ClusterName".to_owned(),
                value: cluster.to_owned(),
            },
            Dimension {
                name: "CapacityProviderName".to_owned(),
                value: provider.to_owned(),
            },
        ],
        value: Some(reservation),
        unit: Some("Percent".to_owned()),
        storage_resolution: high_resolution.then_some(1),
        ..MetricDatum::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reservation_names_cluster_and_provider_in_percent() {
        let d = reservation_datum("prod", "cp", 200.0, true);
        assert_eq!(d.metric_name, "CapacityProviderReservation");
        let dims: Vec<(&str, &str)> = d
            .dimensions
            .iter()
            .map(|d| (d.name.as_str(), d.value.as_str()))
            .collect();
        assert_eq!(
            dims,
            [("ClusterName", "prod"), ("CapacityProviderName", "cp")]
        );
        assert_eq!(d.value, Some(200.0));
        assert_eq!(d.unit.as_deref(), Some("Percent"));
        assert_eq!(d.storage_resolution, Some(1));
    }
}
