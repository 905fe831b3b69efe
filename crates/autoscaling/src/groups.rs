//! Groups: CreateAutoScalingGroup, UpdateAutoScalingGroup, DescribeAutoScalingGroups,
//! DeleteAutoScalingGroup, SetDesiredCapacity. Each is one read-modify-write of the group
//! record; what follows from a new desired capacity is the applier's (`reconcile.rs`).

use berth_store::{Change, Compare, Op, Update};

use crate::errors::{group_not_found, validation};
use crate::keys::ALL_GROUPS;
use crate::types::{AutoScalingGroup, GroupTag, LaunchTemplateSpec, SubnetZone};
use crate::{AsgScope, AutoScaling, AutoScalingError, Result, text};

/// CreateAutoScalingGroup's parameters.
#[derive(Debug, Clone, Default)]
pub struct CreateAutoScalingGroup {
    pub name: String,
    pub launch_template: Option<LaunchTemplateSpec>,
    pub min_size: i64,
    pub max_size: i64,
    pub desired_capacity: Option<i64>,
    pub default_cooldown: Option<i64>,
    pub availability_zones: Vec<String>,
    pub vpc_zone_identifier: Option<String>,
    pub health_check_type: Option<String>,
    pub health_check_grace_period: Option<i64>,
    pub tags: Vec<GroupTag>,
    pub termination_policies: Vec<String>,
    pub new_instances_protected_from_scale_in: bool,
}

/// UpdateAutoScalingGroup's parameters: what is given changes.
#[derive(Debug, Clone, Default)]
pub struct UpdateAutoScalingGroup {
    pub launch_template: Option<LaunchTemplateSpec>,
    pub min_size: Option<i64>,
    pub max_size: Option<i64>,
    pub desired_capacity: Option<i64>,
    pub default_cooldown: Option<i64>,
    pub availability_zones: Option<Vec<String>>,
    pub vpc_zone_identifier: Option<String>,
    pub health_check_type: Option<String>,
    pub health_check_grace_period: Option<i64>,
    pub termination_policies: Option<Vec<String>>,
    pub new_instances_protected_from_scale_in: Option<bool>,
}

/// A page of DescribeAutoScalingGroups.
#[derive(Debug, Clone, Default)]
pub struct GroupPage {
    pub groups: Vec<AutoScalingGroup>,
    pub next_token: Option<String>,
}

/// Min, max and desired capacity hold together (EC2 Auto Scaling's checks and texts).
fn check_sizes(min: i64, max: i64, desired: i64) -> Result<()> {
    if min < 0 || max < 0 {
        return Err(validation(
            "1 validation error detected: Value at 'minSize' or 'maxSize' failed to satisfy constraint: Member must have value greater than or equal to 0",
        ));
    }
    if min > max {
        return Err(validation(format!(
            "Max bound, {max}, must be greater than or equal to min bound, {min}"
        )));
    }
    if desired < min || desired > max {
        return Err(validation(format!(
            "Desired capacity:{desired} must be between the specified min size:{min} and max size:{max}"
        )));
    }
    Ok(())
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.chars().count() > 255 {
        return Err(validation(format!(
            "1 validation error detected: Value '{name}' at 'autoScalingGroupName' failed to satisfy constraint: Member must have length less than or equal to 255"
        )));
    }
    Ok(())
}

impl AutoScaling {
    /// The zones a group's instances go to: its subnets' (`VPCZoneIdentifier`) or the
    /// zones named.
    fn placement(
        &self,
        scope: &AsgScope,
        zones: &[String],
        vpc_zone_identifier: Option<&str>,
    ) -> Result<(Vec<String>, Vec<SubnetZone>)> {
        let subnet_ids: Vec<&str> = vpc_zone_identifier
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        let mut subnets = Vec::new();
        for id in subnet_ids {
            let zone = self.ec2.subnet_zone(scope, id)?;
            subnets.push(SubnetZone {
                subnet_id: id.to_string(),
                zone,
            });
        }
        let mut out: Vec<String> = Vec::new();
        if subnets.is_empty() {
            let known = self.ec2.zones(&scope.region);
            for zone in zones {
                if !known.contains(zone) {
                    return Err(validation(format!(
                        "The availability zone {zone} is not legal"
                    )));
                }
                if !out.contains(zone) {
                    out.push(zone.clone());
                }
            }
        } else {
            for s in &subnets {
                if !out.contains(&s.zone) {
                    out.push(s.zone.clone());
                }
            }
        }
        if out.is_empty() {
            return Err(validation(
                "At least one Availability Zone or VPC Subnet is required.",
            ));
        }
        Ok((out, subnets))
    }

    /// `spec` with both the template's id and name, checked to exist.
    fn named_template(
        &self,
        scope: &AsgScope,
        spec: LaunchTemplateSpec,
    ) -> Result<LaunchTemplateSpec> {
        let resolved = self.ec2.launch_template(scope, &spec)?;
        Ok(LaunchTemplateSpec {
            id: Some(resolved.id),
            name: Some(resolved.name),
            version: Some(spec.version.unwrap_or_else(|| "$Default".into())),
        })
    }

    pub fn create_auto_scaling_group(
        &self,
        scope: &AsgScope,
        req: CreateAutoScalingGroup,
    ) -> Result<AutoScalingGroup> {
        check_name(&req.name)?;
        let Some(template) = req.launch_template else {
            return Err(validation(
                "Valid requests must contain either LaunchTemplate, LaunchConfigurationName, InstanceId or MixedInstancesPolicy parameter.",
            ));
        };
        // The template must exist now (it is resolved again at each launch); the group
        // shows it by id and name, and `$Default` when no version is given.
        let template = self.named_template(scope, template)?;
        let desired = req.desired_capacity.unwrap_or(req.min_size);
        check_sizes(req.min_size, req.max_size, desired)?;
        let (zones, subnets) = self.placement(
            scope,
            &req.availability_zones,
            req.vpc_zone_identifier.as_deref(),
        )?;
        let now = berth_store::now_epoch();
        let group = AutoScalingGroup {
            name: req.name.clone(),
            uuid: uuid::Uuid::new_v4().to_string(),
            launch_template: template,
            min_size: req.min_size,
            max_size: req.max_size,
            desired_capacity: desired,
            default_cooldown: req.default_cooldown.unwrap_or(300),
            availability_zones: zones,
            subnets,
            health_check_type: req.health_check_type.unwrap_or_else(|| "EC2".into()),
            health_check_grace_period: req.health_check_grace_period.unwrap_or(0),
            created_time: now,
            tags: req.tags,
            termination_policies: if req.termination_policies.is_empty() {
                vec!["Default".into()]
            } else {
                req.termination_policies
            },
            new_instances_protected_from_scale_in: req.new_instances_protected_from_scale_in,
            instances: Vec::new(),
            cause: (desired > 0).then(|| text::created(now, desired)),
            deleting: false,
        };
        let key = scope.group_key(&req.name);
        let committed = self
            .store()
            .txn(
                &[Compare::ModRevision(key.clone(), 0)],
                &[Op::put(key, berth_store::encode(&group))],
            )?
            .is_committed();
        if !committed {
            return Err(AutoScalingError::AlreadyExists(format!(
                "AutoScalingGroup by this name already exists - A group with the name {} already exists",
                req.name
            )));
        }
        Ok(group)
    }

    /// The group `name`.
    pub fn group(&self, scope: &AsgScope, name: &str) -> Result<AutoScalingGroup> {
        match self.store().get(&scope.group_key(name))? {
            Some(kv) => Ok(berth_store::decode(&kv)?),
            None => Err(group_not_found(name)),
        }
    }

    /// A read-modify-write of the group `name` (`ValidationError` when absent).
    pub(crate) fn change_group<R>(
        &self,
        scope: &AsgScope,
        name: &str,
        mut decide: impl FnMut(&mut AutoScalingGroup) -> Result<(Vec<Op>, R)>,
    ) -> Result<(AutoScalingGroup, R)> {
        let mut outcome = None;
        let stored = berth_store::update(
            self.store(),
            &scope.group_key(name),
            |group: Option<AutoScalingGroup>| -> Result<Update<AutoScalingGroup>> {
                let mut group = group.ok_or_else(|| group_not_found(name))?;
                let (ops, result) = decide(&mut group)?;
                outcome = Some(result);
                let mut update = Update::from(Change::Put(group));
                update.ops = ops;
                Ok(update)
            },
        )?
        .expect("a Put leaves the group stored");
        Ok((stored, outcome.expect("decided")))
    }

    pub fn update_auto_scaling_group(
        &self,
        scope: &AsgScope,
        name: &str,
        req: UpdateAutoScalingGroup,
    ) -> Result<AutoScalingGroup> {
        let template = req
            .launch_template
            .clone()
            .map(|t| self.named_template(scope, t))
            .transpose()?;
        let placement = match (&req.availability_zones, &req.vpc_zone_identifier) {
            (None, None) => None,
            (zones, subnets) => Some(self.placement(
                scope,
                zones.as_deref().unwrap_or_default(),
                subnets.as_deref(),
            )?),
        };
        let (group, ()) = self.change_group(scope, name, |g| {
            refuse_while_deleting(g)?;
            let min = req.min_size.unwrap_or(g.min_size);
            let max = req.max_size.unwrap_or(g.max_size);
            // A new min or max moves the desired capacity inside them, as AWS does.
            let desired = req
                .desired_capacity
                .unwrap_or_else(|| g.desired_capacity.clamp(min.min(max), max.max(min)));
            check_sizes(min, max, desired)?;
            if desired != g.desired_capacity {
                g.cause = Some(text::updated(
                    berth_store::now_epoch(),
                    min,
                    max,
                    g.desired_capacity,
                    desired,
                ));
            }
            (g.min_size, g.max_size, g.desired_capacity) = (min, max, desired);
            if let Some(t) = &template {
                g.launch_template = t.clone();
            }
            if let Some((zones, subnets)) = &placement {
                g.availability_zones = zones.clone();
                g.subnets = subnets.clone();
            }
            if let Some(v) = req.default_cooldown {
                g.default_cooldown = v;
            }
            if let Some(v) = &req.health_check_type {
                g.health_check_type = v.clone();
            }
            if let Some(v) = req.health_check_grace_period {
                g.health_check_grace_period = v;
            }
            if let Some(v) = &req.termination_policies {
                g.termination_policies = v.clone();
            }
            if let Some(v) = req.new_instances_protected_from_scale_in {
                g.new_instances_protected_from_scale_in = v;
            }
            Ok((Vec::new(), ()))
        })?;
        Ok(group)
    }

    pub fn set_desired_capacity(
        &self,
        scope: &AsgScope,
        name: &str,
        desired: i64,
    ) -> Result<AutoScalingGroup> {
        self.set_desired(scope, name, desired, text::set_desired)
    }

    /// SetDesiredCapacity on behalf of an ECS capacity provider's managed scaling (the
    /// activities' cause says so).
    pub fn set_desired_capacity_by_capacity_provider(
        &self,
        scope: &AsgScope,
        name: &str,
        desired: i64,
        provider: &str,
    ) -> Result<AutoScalingGroup> {
        self.set_desired(scope, name, desired, |now, old, desired| {
            text::managed_scaling(now, provider, old, desired)
        })
    }

    fn set_desired(
        &self,
        scope: &AsgScope,
        name: &str,
        desired: i64,
        cause: impl Fn(f64, i64, i64) -> String,
    ) -> Result<AutoScalingGroup> {
        let (group, ()) = self.change_group(scope, name, |g| {
            refuse_while_deleting(g)?;
            if desired > g.max_size {
                return Err(validation(format!(
                    "New SetDesiredCapacity value {desired} is above max value {} for the AutoScalingGroup.",
                    g.max_size
                )));
            }
            if desired < g.min_size {
                return Err(validation(format!(
                    "New SetDesiredCapacity value {desired} is below min value {} for the AutoScalingGroup.",
                    g.min_size
                )));
            }
            if desired != g.desired_capacity {
                g.cause = Some(cause(berth_store::now_epoch(), g.desired_capacity, desired));
                g.desired_capacity = desired;
            }
            Ok((Vec::new(), ()))
        })?;
        Ok(group)
    }

    /// DescribeAutoScalingGroups: those named (every one when none), in name order, paged.
    pub fn describe_auto_scaling_groups(
        &self,
        scope: &AsgScope,
        names: &[String],
        max_records: Option<i64>,
        next_token: Option<&str>,
    ) -> Result<GroupPage> {
        let limit = max_records.unwrap_or(50);
        if !(1..=100).contains(&limit) {
            return Err(validation(format!(
                "1 validation error detected: Value '{limit}' at 'maxRecords' failed to satisfy constraint: Member must have value less than or equal to 100"
            )));
        }
        let after = match next_token {
            Some(t) => Some(
                berth_store::page_token::decode(t)
                    .ok_or_else(|| validation("The token is not valid"))?,
            ),
            None => None,
        };
        let mut page = GroupPage::default();
        let mut last = None;
        berth_store::scan(self.store(), &scope.groups_prefix(), after, |kv| {
            if page.groups.len() == limit as usize {
                page.next_token = last.as_deref().map(berth_store::page_token::encode);
                return Ok(false);
            }
            let group: AutoScalingGroup = berth_store::decode(kv)?;
            if names.is_empty() || names.contains(&group.name) {
                page.groups.push(group);
                last = Some(kv.key.clone());
            }
            Ok::<_, AutoScalingError>(true)
        })?;
        Ok(page)
    }

    /// DeleteAutoScalingGroup. Without `force`, only a group with no instances; with it,
    /// the group is marked for deletion: the applier terminates its instances, then
    /// removes it (with its activities).
    pub fn delete_auto_scaling_group(
        &self,
        scope: &AsgScope,
        name: &str,
        force: bool,
    ) -> Result<()> {
        let key = scope.group_key(name);
        let activities = self.activity_keys(scope, name)?;
        berth_store::update(
            self.store(),
            &key,
            |group: Option<AutoScalingGroup>| -> Result<Update<AutoScalingGroup>> {
                let mut g = group.ok_or_else(|| group_not_found(name))?;
                if g.instances.is_empty() {
                    let mut update = Update::from(Change::Delete);
                    update.ops = activities.iter().map(Op::delete).collect();
                    return Ok(update);
                }
                if !force {
                    if g.live().next().is_some() {
                        return Err(AutoScalingError::ResourceInUse(
                            "You cannot delete an AutoScalingGroup while there are instances or pending Spot instance request(s) still in the group."
                                .into(),
                        ));
                    }
                    return Err(AutoScalingError::ScalingActivityInProgress(
                        "You cannot delete an AutoScalingGroup while there are scaling activities in progress for that group."
                            .into(),
                    ));
                }
                if !g.deleting {
                    g.cause = Some(text::force_deleted(
                        berth_store::now_epoch(),
                        g.desired_capacity,
                    ));
                    g.deleting = true;
                }
                Ok(Change::Put(g).into())
            },
        )?;
        Ok(())
    }

    /// Every group of the installation, with its scope (what the controller reconciles).
    pub fn all_groups(&self) -> Result<Vec<(AsgScope, AutoScalingGroup)>> {
        let mut out = Vec::new();
        berth_store::scan(self.store(), ALL_GROUPS, None, |kv| {
            if let Some((scope, _)) = AsgScope::of_group_key(&kv.key) {
                out.push((scope, berth_store::decode(kv)?));
            }
            Ok::<_, AutoScalingError>(true)
        })?;
        Ok(out)
    }
}

/// A group being force-deleted takes no other change.
pub(crate) fn refuse_while_deleting(g: &AutoScalingGroup) -> Result<()> {
    if g.deleting {
        return Err(AutoScalingError::ScalingActivityInProgress(format!(
            "The AutoScalingGroup {} is pending delete.",
            g.name
        )));
    }
    Ok(())
}
