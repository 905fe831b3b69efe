//! The applier: the planner's plan for a group committed under a compare-and-swap of the
//! group record (the plan is made again from what each attempt read), with an activity
//! per launch and termination; and what the controller reports back: an instance in
//! service, an instance terminated, a group being deleted gone.

use berth_store::{Change, Op, Update};

use crate::planner::plan;
use crate::types::{ActivityStatus, AutoScalingGroup, Instance, LifecycleState};
use crate::{AsgScope, AutoScaling, AutoScalingError, Result, activities, keys, text, user_data};

impl AutoScaling {
    /// Brings `name` towards its desired capacity: new instances Pending, extra ones
    /// Terminating, each with its activity. A group being deleted whose instances are all
    /// gone is removed with its activities. Returns the group as stored (`None`: gone).
    pub fn reconcile(&self, scope: &AsgScope, name: &str) -> Result<Option<AutoScalingGroup>> {
        berth_store::update(
            self.store(),
            &scope.group_key(name),
            |group: Option<AutoScalingGroup>| -> Result<Update<AutoScalingGroup>> {
                let Some(mut g) = group else {
                    return Ok(Change::Keep.into());
                };
                let p = plan(&g);
                if p.is_empty() {
                    if g.deleting && g.instances.is_empty() {
                        let mut update = Update::from(Change::Delete);
                        update.ops = self
                            .activity_keys(scope, name)?
                            .iter()
                            .map(Op::delete)
                            .collect();
                        return Ok(update);
                    }
                    return Ok(Change::Keep.into());
                }
                let now = berth_store::now_epoch();
                let live = g.live().count();
                let mut ops = Vec::new();
                if !p.launches.is_empty() {
                    let template = self.ec2.launch_template(scope, &g.launch_template)?;
                    let cluster = user_data::ecs_cluster(template.user_data.as_deref());
                    for (n, placement) in p.launches.iter().enumerate() {
                        let mut instance = Instance {
                            instance_id: keys::new_instance_id(),
                            instance_type: template.instance_type.clone(),
                            availability_zone: placement.zone.clone(),
                            subnet_id: placement.subnet_id.clone(),
                            lifecycle_state: LifecycleState::Pending,
                            launch_template: template.clone(),
                            protected_from_scale_in: g.new_instances_protected_from_scale_in,
                            launched_at: now,
                            cluster: cluster.clone(),
                            activity_key: String::new(),
                            terminating_since: None,
                        };
                        let cause = text::cause(
                            g.cause.as_deref(),
                            &text::launched(now, live, live + n + 1),
                        );
                        let (key, op) = activities::start(
                            scope,
                            &g,
                            &instance,
                            text::launching(&instance.instance_id),
                            cause,
                            now,
                        );
                        instance.activity_key = key;
                        ops.push(op);
                        g.instances.push(instance);
                    }
                }
                let snapshot = g.clone();
                for (n, id) in p.terminations.iter().enumerate() {
                    let Some(instance) = g.instances.iter_mut().find(|i| &i.instance_id == id)
                    else {
                        continue;
                    };
                    if instance.lifecycle_state == LifecycleState::Pending {
                        ops.extend(self.end_launch(&instance.activity_key)?);
                    }
                    let cause = text::cause(
                        snapshot.cause.as_deref(),
                        &text::shrunk(now, live - n, live - n - 1, id),
                    );
                    let (key, op) = activities::start(
                        scope,
                        &snapshot,
                        instance,
                        text::terminating(id),
                        cause,
                        now,
                    );
                    instance.lifecycle_state = LifecycleState::Terminating;
                    instance.terminating_since = Some(now);
                    instance.activity_key = key;
                    ops.push(op);
                }
                g.cause = None;
                let mut update = Update::from(Change::Put(g));
                update.ops = ops;
                Ok(update)
            },
        )
    }

    /// The instance's agent is registered and ACTIVE: Pending → InService, its launch
    /// successful.
    pub fn mark_in_service(&self, scope: &AsgScope, name: &str, id: &str) -> Result<()> {
        self.change_group(scope, name, |g| {
            let Some(instance) = g.instances.iter_mut().find(|i| i.instance_id == id) else {
                return Ok((Vec::new(), ()));
            };
            if instance.lifecycle_state != LifecycleState::Pending {
                return Ok((Vec::new(), ()));
            }
            instance.lifecycle_state = LifecycleState::InService;
            let ops = self
                .finish(&instance.activity_key, ActivityStatus::Successful, None)?
                .into_iter()
                .collect();
            Ok((ops, ()))
        })?;
        Ok(())
    }

    /// The instance is stopped and its container instance deregistered: it leaves the
    /// group, its termination successful.
    pub fn mark_terminated(&self, scope: &AsgScope, name: &str, id: &str) -> Result<()> {
        self.change_group(scope, name, |g| {
            let Some(at) = g.instances.iter().position(|i| i.instance_id == id) else {
                return Ok((Vec::new(), ()));
            };
            let instance = g.instances.remove(at);
            let ops = self
                .finish(&instance.activity_key, ActivityStatus::Successful, None)?
                .into_iter()
                .collect();
            Ok((ops, ()))
        })
        .map(|_| ())
        .or_else(|e| match e {
            // The group went meanwhile: nothing to record.
            AutoScalingError::Validation(_) => Ok(()),
            other => Err(other),
        })
    }
}

#[cfg(test)]
mod tests;
