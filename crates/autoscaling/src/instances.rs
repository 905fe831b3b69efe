//! A group's instances as the API acts on them: TerminateInstanceInAutoScalingGroup,
//! SetInstanceProtection, DescribeAutoScalingInstances.

use crate::activities;
use crate::errors::{instance_not_found, validation};
use crate::groups::refuse_while_deleting;
use crate::types::{Activity, Instance, LifecycleState};
use crate::{AsgScope, AutoScaling, AutoScalingError, Result, text};

/// An instance with the name of its group (DescribeAutoScalingInstances).
#[derive(Debug, Clone, PartialEq)]
pub struct GroupInstance {
    pub group_name: String,
    pub instance: Instance,
}

impl AutoScaling {
    /// DescribeAutoScalingInstances: every instance of the scope's groups, or those named.
    pub fn describe_auto_scaling_instances(
        &self,
        scope: &AsgScope,
        ids: &[String],
    ) -> Result<Vec<GroupInstance>> {
        let mut out = Vec::new();
        for group in self
            .describe_auto_scaling_groups(scope, &[], Some(100), None)?
            .groups
        {
            for instance in group.instances {
                if ids.is_empty() || ids.contains(&instance.instance_id) {
                    out.push(GroupInstance {
                        group_name: group.name.clone(),
                        instance,
                    });
                }
            }
        }
        Ok(out)
    }

    /// The group an instance belongs to.
    fn group_of(&self, scope: &AsgScope, id: &str) -> Result<String> {
        self.describe_auto_scaling_instances(scope, &[id.to_string()])?
            .into_iter()
            .next()
            .map(|gi| gi.group_name)
            .ok_or_else(|| instance_not_found(id))
    }

    /// TerminateInstanceInAutoScalingGroup: the instance turns Terminating now (the
    /// controller stops it); the desired capacity goes down with it when asked, else a
    /// replacement is launched. Returns the termination's activity.
    pub fn terminate_instance_in_auto_scaling_group(
        &self,
        scope: &AsgScope,
        id: &str,
        should_decrement: bool,
    ) -> Result<Activity> {
        let name = self.group_of(scope, id)?;
        let (_, key) = self.change_group(scope, &name, |g| {
            refuse_while_deleting(g)?;
            let now = berth_store::now_epoch();
            let current = g.instance(id).ok_or_else(|| instance_not_found(id))?;
            if !current.lifecycle_state.is_live() {
                // Already on its way out: its termination is the activity.
                return Ok((Vec::new(), current.activity_key.clone()));
            }
            let shrink = if should_decrement {
                if g.desired_capacity <= g.min_size {
                    return Err(validation(format!(
                        "Currently, desiredCapacity ({}) is equal to minSize ({}); cannot decrement desiredCapacity below minSize.",
                        g.desired_capacity, g.min_size
                    )));
                }
                g.desired_capacity -= 1;
                Some((g.desired_capacity + 1, g.desired_capacity))
            } else {
                None
            };
            let snapshot = g.clone();
            let instance = g
                .instances
                .iter_mut()
                .find(|i| i.instance_id == id)
                .ok_or_else(|| instance_not_found(id))?;
            let mut ops = Vec::new();
            if instance.lifecycle_state == LifecycleState::Pending {
                // Its launch ends here.
                ops.extend(self.end_launch(&instance.activity_key)?);
            }
            let (key, op) = activities::start(
                scope,
                &snapshot,
                instance,
                text::terminating(id),
                text::user_terminated(now, id, shrink),
                now,
            );
            ops.push(op);
            instance.lifecycle_state = LifecycleState::Terminating;
            instance.terminating_since = Some(now);
            instance.activity_key = key.clone();
            Ok((ops, key))
        })?;
        let kv = self
            .store()
            .get(&key)?
            .ok_or_else(|| AutoScalingError::Internal(format!("activity {key} is gone")))?;
        Ok(berth_store::decode(&kv)?)
    }

    /// SetInstanceProtection.
    pub fn set_instance_protection(
        &self,
        scope: &AsgScope,
        name: &str,
        ids: &[String],
        protected: bool,
    ) -> Result<()> {
        self.change_group(scope, name, |g| {
            for id in ids {
                let instance = g
                    .instances
                    .iter_mut()
                    .find(|i| &i.instance_id == id)
                    .ok_or_else(|| {
                        validation(format!(
                            "The instance {id} is not part of Auto Scaling group {name}."
                        ))
                    })?;
                instance.protected_from_scale_in = protected;
            }
            Ok((Vec::new(), ()))
        })?;
        Ok(())
    }
}
