//! Capacity providers as resources: Auto Scaling group providers created, updated,
//! described and deleted as ECS does, and associated with clusters (CreateCluster's and
//! PutClusterCapacityProviders' `capacityProviders`, default strategies). FARGATE and
//! FARGATE_SPOT are built in (every account has them) and never stored. Berth's Auto
//! Scaling groups (`berth-autoscaling`, docs/autoscaling-groups.md) scale on their desired
//! capacity; tasks launched through a provider run on its group's instances or wait in
//! PROVISIONING (`tasks/provisioning.rs`), and the leader's managed scaling
//! (`managed_scaling.rs`, `berth-server`'s `autoscaling::managed_scaling`) sets the group's
//! desired capacity (docs/capacity-providers.md).

use berth_model::Scope;
use berth_model::ecs::{
    CapacityProviderStatus, CapacityProviderUpdateStatus, ClusterStatus, EcsArn, EcsResource,
    ManagedSwitch,
};
use berth_store::Change;
use serde::{Deserialize, Serialize};

use crate::clusters::FARGATE_CAPACITY_PROVIDERS;
use crate::keys::{capacity_provider_key, capacity_providers_prefix, clusters_prefix};
use crate::{Cluster, Ecs, EcsError, EcsTag, Result, decode};

/// ECS's managed scaling settings, with the API reference's defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagedScaling {
    pub status: ManagedSwitch,
    pub target_capacity: i64,
    pub minimum_scaling_step_size: i64,
    pub maximum_scaling_step_size: i64,
    pub instance_warmup_period: i64,
}

/// ECS's AutoScalingGroupProvider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AutoScalingGroupProvider {
    pub auto_scaling_group_arn: String,
    pub managed_scaling: ManagedScaling,
    pub managed_termination_protection: ManagedSwitch,
    pub managed_draining: ManagedSwitch,
}

/// A stored capacity provider (ECS's CapacityProvider).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CapacityProvider {
    pub name: String,
    pub status: CapacityProviderStatus,
    /// `None` for FARGATE and FARGATE_SPOT.
    #[serde(default)]
    pub auto_scaling_group_provider: Option<AutoScalingGroupProvider>,
    #[serde(default)]
    pub update_status: Option<CapacityProviderUpdateStatus>,
    #[serde(default)]
    pub update_status_reason: Option<String>,
    #[serde(default)]
    pub tags: Vec<EcsTag>,
}

impl CapacityProvider {
    pub fn arn(&self, scope: &Scope) -> String {
        EcsArn::capacity_provider(scope, &self.name).into_string()
    }

    fn built_in(name: &str) -> CapacityProvider {
        CapacityProvider {
            name: name.to_owned(),
            status: CapacityProviderStatus::Active,
            auto_scaling_group_provider: None,
            update_status: None,
            update_status_reason: None,
            tags: Vec::new(),
        }
    }
}

/// Managed scaling as a request gives it (each field optional).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagedScalingSpec {
    pub status: Option<ManagedSwitch>,
    pub target_capacity: Option<i64>,
    pub minimum_scaling_step_size: Option<i64>,
    pub maximum_scaling_step_size: Option<i64>,
    pub instance_warmup_period: Option<i64>,
}

/// CreateCapacityProvider's `autoScalingGroupProvider`, UpdateCapacityProvider's
/// (without the group's ARN).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AutoScalingGroupProviderSpec {
    pub auto_scaling_group_arn: Option<String>,
    pub managed_scaling: Option<ManagedScalingSpec>,
    pub managed_termination_protection: Option<ManagedSwitch>,
    pub managed_draining: Option<ManagedSwitch>,
}

impl ManagedScaling {
    /// `spec` over `base` (the API reference's defaults for a new provider: status
    /// DISABLED — not stated there, Berth's choice —, targetCapacity 100, steps 1 and
    /// 10000, warm-up 300 s), checked against the reference's ranges.
    fn with(base: &ManagedScaling, spec: &ManagedScalingSpec) -> Result<ManagedScaling> {
        let merged = ManagedScaling {
            status: spec.status.unwrap_or(base.status),
            target_capacity: spec.target_capacity.unwrap_or(base.target_capacity),
            minimum_scaling_step_size: spec
                .minimum_scaling_step_size
                .unwrap_or(base.minimum_scaling_step_size),
            maximum_scaling_step_size: spec
                .maximum_scaling_step_size
                .unwrap_or(base.maximum_scaling_step_size),
            instance_warmup_period: spec
                .instance_warmup_period
                .unwrap_or(base.instance_warmup_period),
        };
        let bounds: [(&str, i64, i64, i64); 4] = [
            ("targetCapacity", merged.target_capacity, 1, 100),
            (
                "minimumScalingStepSize",
                merged.minimum_scaling_step_size,
                1,
                10_000,
            ),
            (
                "maximumScalingStepSize",
                merged.maximum_scaling_step_size,
                1,
                10_000,
            ),
            (
                "instanceWarmupPeriod",
                merged.instance_warmup_period,
                0,
                10_000,
            ),
        ];
        for (field, value, min, max) in bounds {
            if !(min..=max).contains(&value) {
                return Err(EcsError::InvalidParameter(format!(
                    "managedScaling.{field} must be between {min} and {max}."
                )));
            }
        }
        Ok(merged)
    }

    fn default_for_new() -> ManagedScaling {
        ManagedScaling {
            status: ManagedSwitch::Disabled,
            target_capacity: 100,
            minimum_scaling_step_size: 1,
            maximum_scaling_step_size: 10_000,
            instance_warmup_period: 300,
        }
    }
}

/// ECS's answer to CreateCapacityProvider with a name in use (aws/containers-roadmap#688,
/// hashicorp/terraform-provider-aws#11358).
pub const ALREADY_EXISTS: &str = "The specified capacity provider already exists. To change the configuration of an existing capacity provider, update the capacity provider.";
/// ECS's answer for an Auto Scaling group another provider has (aws/containers-roadmap#632).
pub const GROUP_IN_USE: &str = "The specified Auto Scaling group ARN is already being used by another capacity provider. Specify a unique Auto Scaling group ARN and try again.";

/// ECS's answer when managed termination protection is asked of a group whose new instances
/// are not protected from scale-in (aws/containers-roadmap#653); checked by the API, which
/// reads the group.
pub const GROUP_NOT_PROTECTED: &str = "The managed termination protection setting for the capacity provider is invalid. To enable managed termination protection for a capacity provider, the Auto Scaling group must have instance protection from scale in enabled.";

/// Managed termination protection needs managed scaling (ECS refuses it; Berth's text in
/// the words of ECS's other termination protection error, no published one found).
pub const NEEDS_MANAGED_SCALING: &str = "The managed termination protection setting for the capacity provider is invalid. To enable managed termination protection for a capacity provider, managed scaling must be enabled.";

fn check_termination_protection(p: &AutoScalingGroupProvider) -> Result<()> {
    if p.managed_termination_protection == ManagedSwitch::Enabled
        && p.managed_scaling.status != ManagedSwitch::Enabled
    {
        return Err(EcsError::Client(NEEDS_MANAGED_SCALING.into()));
    }
    Ok(())
}

/// The group an `autoScalingGroupArn` names: the name in an ARN
/// (`…:autoScalingGroupName/NAME`), else the value itself (ECS takes either).
pub fn group_name(arn_or_name: &str) -> &str {
    arn_or_name
        .rsplit_once(":autoScalingGroupName/")
        .map_or(arn_or_name, |(_, name)| name)
}

/// The name a request gives (a name or an ARN).
fn provider_name<'a>(scope: &Scope, name_or_arn: &'a str) -> &'a str {
    match EcsArn::parse(scope, name_or_arn) {
        Some(EcsResource::CapacityProvider(name)) => name,
        _ => name_or_arn,
    }
}

/// Berth's own text (the API reference states the rule: "The name can't be prefixed with
/// "aws", "ecs", or "fargate""; no published response with ECS's message was found).
fn check_provider_name(name: &str) -> Result<()> {
    crate::clusters::check_resource_name("Capacity provider", name)?;
    let lower = name.to_ascii_lowercase();
    if ["aws", "ecs", "fargate"]
        .iter()
        .any(|p| lower.starts_with(p))
    {
        return Err(EcsError::InvalidParameter(
            "The capacity provider name can't be prefixed with \"aws\", \"ecs\", or \"fargate\"."
                .into(),
        ));
    }
    Ok(())
}

/// Berth's text for a provider a request names that does not exist (no published ECS
/// response found for Update/DeleteCapacityProvider).
fn not_found(name: &str) -> EcsError {
    EcsError::Client(format!(
        "The specified capacity provider '{name}' does not exist. Specify a valid capacity provider and try again."
    ))
}

impl Ecs {
    /// A stored (Auto Scaling group) capacity provider by name or ARN.
    fn stored_capacity_provider(
        &self,
        scope: &Scope,
        name_or_arn: &str,
    ) -> Result<Option<CapacityProvider>> {
        let name = provider_name(scope, name_or_arn);
        self.store
            .get(&capacity_provider_key(scope, name))?
            .map(|kv| decode(&kv))
            .transpose()
    }

    /// The ACTIVE clusters the provider is associated with, by name.
    pub fn clusters_with_capacity_provider(
        &self,
        scope: &Scope,
        name: &str,
    ) -> Result<Vec<String>> {
        Ok(self
            .store
            .range(&clusters_prefix(scope), None, 0)?
            .iter()
            .map(decode::<Cluster>)
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .filter(|c| {
                c.status == ClusterStatus::Active && c.capacity_providers.iter().any(|p| p == name)
            })
            .map(|c| c.name)
            .collect())
    }

    /// Whether a capacity provider of this name exists (built in or stored).
    pub(crate) fn capacity_provider_exists(&self, scope: &Scope, name: &str) -> Result<bool> {
        Ok(FARGATE_CAPACITY_PROVIDERS.contains(&name)
            || self.stored_capacity_provider(scope, name)?.is_some())
    }

    /// Every capacity provider: the built-in ones, then the stored ones by name.
    pub fn capacity_providers(&self, scope: &Scope) -> Result<Vec<CapacityProvider>> {
        let mut all: Vec<CapacityProvider> = FARGATE_CAPACITY_PROVIDERS
            .iter()
            .map(|n| CapacityProvider::built_in(n))
            .collect();
        for kv in self
            .store
            .range(&capacity_providers_prefix(scope), None, 0)?
        {
            all.push(decode(&kv)?);
        }
        Ok(all)
    }

    /// DescribeCapacityProviders' lookup of one name or ARN.
    pub fn capacity_provider(
        &self,
        scope: &Scope,
        name_or_arn: &str,
    ) -> Result<Option<CapacityProvider>> {
        let name = provider_name(scope, name_or_arn);
        if FARGATE_CAPACITY_PROVIDERS.contains(&name) {
            return Ok(Some(CapacityProvider::built_in(name)));
        }
        self.stored_capacity_provider(scope, name)
    }

    pub fn create_capacity_provider(
        &self,
        scope: &Scope,
        name: &str,
        spec: &AutoScalingGroupProviderSpec,
        tags: Vec<EcsTag>,
    ) -> Result<CapacityProvider> {
        check_provider_name(name)?;
        crate::clusters::check_tags(&tags)?;
        let group = spec
            .auto_scaling_group_arn
            .clone()
            .filter(|a| !a.is_empty())
            .ok_or_else(|| {
                EcsError::InvalidParameter(
                    "autoScalingGroupProvider.autoScalingGroupArn is required.".into(),
                )
            })?;
        let managed_scaling = ManagedScaling::with(
            &ManagedScaling::default_for_new(),
            &spec.managed_scaling.clone().unwrap_or_default(),
        )?;
        if self
            .capacity_providers(scope)?
            .iter()
            .filter_map(|p| p.auto_scaling_group_provider.as_ref())
            .any(|a| a.auto_scaling_group_arn == group)
        {
            return Err(EcsError::Client(GROUP_IN_USE.into()));
        }
        let provider = CapacityProvider {
            name: name.to_owned(),
            status: CapacityProviderStatus::Active,
            auto_scaling_group_provider: Some(AutoScalingGroupProvider {
                auto_scaling_group_arn: group,
                managed_scaling,
                managed_termination_protection: spec
                    .managed_termination_protection
                    .unwrap_or(ManagedSwitch::Disabled),
                // "Managed instance draining is on by default when you create a capacity
                // provider." (the developer guide)
                managed_draining: spec.managed_draining.unwrap_or(ManagedSwitch::Enabled),
            }),
            update_status: None,
            update_status_reason: None,
            tags,
        };
        if let Some(asg) = &provider.auto_scaling_group_provider {
            check_termination_protection(asg)?;
        }
        let created = berth_store::update(
            &*self.store,
            &capacity_provider_key(scope, name),
            |existing: Option<CapacityProvider>| {
                if existing.is_some() {
                    return Err(EcsError::Client(ALREADY_EXISTS.into()));
                }
                Ok(Change::Put(provider.clone()))
            },
        )?;
        created.ok_or_else(|| not_found(name))
    }

    /// UpdateCapacityProvider: new managed scaling, termination protection or draining
    /// (the group stays); `updateStatus` UPDATE_COMPLETE.
    pub fn update_capacity_provider(
        &self,
        scope: &Scope,
        name_or_arn: &str,
        spec: &AutoScalingGroupProviderSpec,
    ) -> Result<CapacityProvider> {
        let name = provider_name(scope, name_or_arn).to_owned();
        let updated = berth_store::update(
            &*self.store,
            &capacity_provider_key(scope, &name),
            |existing: Option<CapacityProvider>| {
                let mut p = existing.ok_or_else(|| not_found(&name))?;
                let Some(asg) = p.auto_scaling_group_provider.as_mut() else {
                    return Err(not_found(&name));
                };
                if let Some(scaling) = &spec.managed_scaling {
                    asg.managed_scaling = ManagedScaling::with(&asg.managed_scaling, scaling)?;
                }
                if let Some(v) = spec.managed_termination_protection {
                    asg.managed_termination_protection = v;
                }
                if let Some(v) = spec.managed_draining {
                    asg.managed_draining = v;
                }
                check_termination_protection(asg)?;
                p.update_status = Some(CapacityProviderUpdateStatus::UpdateComplete);
                p.update_status_reason = None;
                Ok(Change::Put(p))
            },
        )?;
        updated.ok_or_else(|| not_found(&name))
    }

    /// DeleteCapacityProvider. Associated with a cluster, it stays ACTIVE with
    /// `updateStatus` DELETE_FAILED and ECS's reason (hashicorp/terraform-provider-aws#48156,
    /// ekristen/aws-nuke#542); otherwise it is gone, answered INACTIVE and DELETE_COMPLETE.
    pub fn delete_capacity_provider(
        &self,
        scope: &Scope,
        name_or_arn: &str,
    ) -> Result<CapacityProvider> {
        let name = provider_name(scope, name_or_arn).to_owned();
        if FARGATE_CAPACITY_PROVIDERS.contains(&name.as_str()) {
            // Berth's text: the built-in providers cannot go (no published ECS text found).
            return Err(EcsError::Client(format!(
                "The capacity provider '{name}' is built in and cannot be deleted."
            )));
        }
        let associated: Option<String> = self
            .clusters_with_capacity_provider(scope, &name)?
            .into_iter()
            .next();
        let mut answer = None;
        berth_store::update(
            &*self.store,
            &capacity_provider_key(scope, &name),
            |existing: Option<CapacityProvider>| -> Result<Change<CapacityProvider>> {
                let mut p = existing.ok_or_else(|| not_found(&name))?;
                Ok(match &associated {
                    Some(cluster) => {
                        p.update_status = Some(CapacityProviderUpdateStatus::DeleteFailed);
                        p.update_status_reason = Some(format!(
                            "The capacity provider cannot be deleted because it is associated with cluster: {cluster}. Remove the capacity provider from the cluster and try again."
                        ));
                        answer = Some(p.clone());
                        Change::Put(p)
                    }
                    None => {
                        p.status = CapacityProviderStatus::Inactive;
                        p.update_status = Some(CapacityProviderUpdateStatus::DeleteComplete);
                        p.update_status_reason = None;
                        answer = Some(p);
                        Change::Delete
                    }
                })
            },
        )?;
        answer.ok_or_else(|| not_found(&name))
    }
}
