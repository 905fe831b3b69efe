//! EC2 Auto Scaling's controller, on the leader: each pass reconciles every group (the
//! applier in `berth-autoscaling` commits launches and terminations), then acts on what is
//! committed through the provisioner: live instances are launched (idempotently, so a
//! new leader picks them up), a Pending instance turns InService once its agent's
//! container instance is ACTIVE in its cluster, and a Terminating one is drained (its
//! container instance DRAINING, its tasks stopped), stopped, deregistered and then
//! reported terminated.

pub mod managed_scaling;
pub mod provisioner;

use std::sync::Arc;
use std::time::Duration;

use berth_autoscaling::{AsgScope, AutoScaling, AutoScalingGroup, Instance, LifecycleState};
use berth_model::Scope;
use berth_model::ecs::{DesiredStatus, InstanceStatus};
use provisioner::{Launch, Provisioner};
use tokio::sync::watch;

/// How often the controller passes over the groups.
const PASS: Duration = Duration::from_secs(2);
/// How long a Terminating instance's tasks get to stop before it is stopped anyway.
const DRAIN_TIMEOUT_SECONDS: f64 = 120.0;

pub struct Controller {
    pub autoscaling: AutoScaling,
    pub ecs: berth_ecs::Ecs,
    pub provisioner: Arc<dyn Provisioner>,
    /// Where agents reach the control plane.
    pub endpoint: String,
}

impl Controller {
    /// Passes until `shutdown` turns true.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let this = Arc::new(self);
        loop {
            tokio::select! {
                _ = tokio::time::sleep(PASS) => {}
                _ = shutdown.changed() => return,
            }
            if let Err(e) = this.pass().await {
                tracing::warn!(error = %e, "Auto Scaling: a pass failed");
            }
        }
    }

    async fn blocking<T: Send + 'static>(
        self: &Arc<Self>,
        work: impl FnOnce(&Controller) -> T + Send + 'static,
    ) -> T {
        let this = self.clone();
        tokio::task::spawn_blocking(move || work(&this))
            .await
            .expect("a controller step panicked")
    }

    async fn pass(self: &Arc<Self>) -> Result<(), berth_autoscaling::AutoScalingError> {
        let groups = self.blocking(|c| c.autoscaling.all_groups()).await?;
        for (scope, group) in groups {
            let name = group.name.clone();
            let reconciled = {
                let scope = scope.clone();
                self.blocking(move |c| c.autoscaling.reconcile(&scope, &name))
                    .await
            };
            match reconciled {
                Ok(Some(group)) => self.act(&scope, &group).await,
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(group = %group.name, error = %e, "Auto Scaling: cannot reconcile the group");
                    // What is committed is still acted on.
                    self.act(&scope, &group).await;
                }
            }
        }
        Ok(())
    }

    /// Acts on a group's instances as committed.
    async fn act(self: &Arc<Self>, scope: &AsgScope, group: &AutoScalingGroup) {
        for instance in &group.instances {
            let result = match instance.lifecycle_state {
                LifecycleState::Pending | LifecycleState::InService => {
                    self.keep_running(scope, group, instance).await
                }
                LifecycleState::Terminating => self.terminate(scope, group, instance).await,
                LifecycleState::Terminated => Ok(()),
            };
            if let Err(e) = result {
                tracing::warn!(instance = %instance.instance_id, error = %e, "Auto Scaling: instance");
            }
        }
    }

    async fn keep_running(
        self: &Arc<Self>,
        scope: &AsgScope,
        group: &AutoScalingGroup,
        instance: &Instance,
    ) -> Result<(), String> {
        let launch = Launch {
            instance_id: instance.instance_id.clone(),
            cluster: instance.cluster.clone(),
            account: scope.account.clone(),
            region: scope.region.clone(),
            availability_zone: instance.availability_zone.clone(),
            instance_type: instance.instance_type.clone(),
            endpoint: self.endpoint.clone(),
        };
        self.provisioner
            .launch(&launch)
            .await
            .map_err(|e| e.to_string())?;
        if instance.lifecycle_state != LifecycleState::Pending {
            return Ok(());
        }
        let (scope, name, instance) = (scope.clone(), group.name.clone(), instance.clone());
        self.blocking(move |c| {
            let Some(ecs_scope) = ecs_scope(&scope) else {
                return Ok(());
            };
            let active = c
                .container_instance(&ecs_scope, &instance)
                .is_some_and(|ci| ci.status == InstanceStatus::Active);
            if active {
                c.autoscaling
                    .mark_in_service(&scope, &name, &instance.instance_id)
                    .map_err(|e| e.to_string())?;
                tracing::info!(instance = %instance.instance_id, group = %name, "Auto Scaling instance in service");
            }
            Ok(())
        })
        .await
    }

    /// The instance's container instance, if its agent registered.
    fn container_instance(
        &self,
        scope: &Scope,
        instance: &Instance,
    ) -> Option<berth_ecs::ContainerInstance> {
        self.ecs
            .container_instances(scope, Some(&instance.cluster))
            .ok()?
            .into_iter()
            .find(|ci| ci.ec2_instance_id == instance.instance_id)
    }

    async fn terminate(
        self: &Arc<Self>,
        scope: &AsgScope,
        group: &AutoScalingGroup,
        instance: &Instance,
    ) -> Result<(), String> {
        let drained = {
            let (scope, instance) = (scope.clone(), instance.clone());
            self.blocking(move |c| c.drain(&scope, &instance)).await?
        };
        if !drained {
            return Ok(());
        }
        self.provisioner
            .terminate(&instance.instance_id)
            .await
            .map_err(|e| e.to_string())?;
        let (scope, name, instance) = (scope.clone(), group.name.clone(), instance.clone());
        self.blocking(move |c| {
            if let Some(ecs_scope) = ecs_scope(&scope)
                && let Some(ci) = c.container_instance(&ecs_scope, &instance)
            {
                c.ecs
                    .deregister_container_instance(&ecs_scope, Some(&instance.cluster), &ci.id, true)
                    .map_err(|e| e.to_string())?;
            }
            c.autoscaling
                .mark_terminated(&scope, &name, &instance.instance_id)
                .map_err(|e| e.to_string())?;
            tracing::info!(instance = %instance.instance_id, group = %name, "Auto Scaling instance terminated");
            Ok(())
        })
        .await
    }

    /// Drains a Terminating instance's container instance: DRAINING, its tasks asked to
    /// stop. `true` once none is left running (or the wait is over).
    fn drain(&self, scope: &AsgScope, instance: &Instance) -> Result<bool, String> {
        let Some(ecs_scope) = ecs_scope(scope) else {
            return Ok(true);
        };
        let Some(ci) = self.container_instance(&ecs_scope, instance) else {
            return Ok(true);
        };
        let cluster = Some(instance.cluster.as_str());
        if ci.status == InstanceStatus::Active {
            self.ecs
                .update_container_instance_state(
                    &ecs_scope,
                    cluster,
                    &ci.id,
                    InstanceStatus::Draining,
                )
                .map_err(|e| e.to_string())?;
        }
        let live = self
            .ecs
            .live_tasks_on(&ecs_scope, &instance.cluster, &ci.id)
            .map_err(|e| e.to_string())?;
        for task in live
            .iter()
            .filter(|t| t.desired_status != DesiredStatus::Stopped)
        {
            self.ecs
                .stop_task(
                    &ecs_scope,
                    cluster,
                    &task.id,
                    Some(format!(
                        "Instance {} is terminated by Auto Scaling",
                        instance.instance_id
                    )),
                )
                .map_err(|e| e.to_string())?;
        }
        let waited = instance
            .terminating_since
            .is_some_and(|since| berth_store::now_epoch() - since > DRAIN_TIMEOUT_SECONDS);
        Ok(live.is_empty() || waited)
    }
}

/// ECS's scope for a group's.
fn ecs_scope(scope: &AsgScope) -> Option<Scope> {
    Some(Scope::new(
        scope.account.parse().ok()?,
        scope.region.parse().ok()?,
    ))
}

#[cfg(test)]
mod tests;
