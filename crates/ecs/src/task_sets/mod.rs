//! Task sets: a service with the EXTERNAL deployment controller has no deployments of its
//! own; an external controller creates task sets (CreateTaskSet), scales them
//! (UpdateTaskSet), picks the one serving production traffic (UpdateServicePrimaryTaskSet)
//! and deletes them (DeleteTaskSet). Task sets live in their service's record (one
//! compare-and-swap changes a service and its task sets together). The service scheduler
//! keeps each at `ceil(desiredCount × scale / 100)` tasks of its own task definition
//! (group `service:NAME`, `startedBy` = the task set id): [`Ecs::reconcile_task_sets`],
//! planned by `berth_scheduler::service::task_sets`.

pub mod record;

use std::collections::HashMap;

use berth_model::Scope;
use berth_model::ecs::{
    DeploymentControllerType, EcsArn, EcsResource, LaunchType, LoadBalancer, ServiceRegistry,
    StabilityStatus, StopCode, TaskSetStatus,
};
use berth_scheduler::service::TaskView;
use berth_scheduler::service::task_sets::{TaskSetView, computed_desired_count, plan_task_sets};

use crate::network::NetworkConfiguration;
use crate::service_scheduler::{RoundOutcome, ServiceRef};
use crate::services::Service;
use crate::tasks::RunTask;
use crate::{CapacityProviderStrategyItem, Ecs, EcsError, EcsTag, Result, now_epoch};
pub use record::{Scale, ScaleUnit, TaskSet};

/// ECS's limit: "5 deployments exist on the service. Unable to create new TaskSet since this
/// exceeds the maximum limit." (aws-samples/ecs-bg-external-controller#6).
pub const MAX_TASK_SETS: usize = 5;

/// ECS's message for a task set operation on a service another controller deploys
/// (hashicorp/terraform-provider-aws#30347, the CLI's answer quoted there).
pub const NOT_EXTERNAL: &str = "Amazon ECS only supports task set management on services configured to use external deployment controllers.";

impl TaskSet {
    pub fn arn(&self, scope: &Scope, service: &Service) -> String {
        EcsArn::task_set(scope, &service.cluster, &service.service_name, &self.id).into_string()
    }
}

/// What CreateTaskSet asks for.
#[derive(Debug, Clone, Default)]
pub struct CreateTaskSet {
    pub cluster: Option<String>,
    pub service: String,
    pub task_definition: String,
    pub external_id: Option<String>,
    pub launch_type: Option<String>,
    pub capacity_provider_strategy: Vec<CapacityProviderStrategyItem>,
    pub platform_version: Option<String>,
    pub network_configuration: Option<NetworkConfiguration>,
    pub load_balancers: Vec<LoadBalancer>,
    pub service_registries: Vec<ServiceRegistry>,
    pub scale: Option<Scale>,
    pub client_token: Option<String>,
    pub tags: Vec<EcsTag>,
}

fn check_scale(scale: &Scale) -> Result<()> {
    if !(0.0..=100.0).contains(&scale.value) {
        return Err(EcsError::InvalidParameter(
            "scale.value must be between 0 and 100.".into(),
        ));
    }
    Ok(())
}

/// The task set `reference` (an id or ARN) names, as a position in the service's list. An
/// ARN names its cluster and service: one of another service names none of this one's
/// (task set ids repeat across services).
fn position(scope: &Scope, service: &Service, reference: &str) -> Option<usize> {
    let id = if reference.starts_with("arn:") {
        match EcsArn::parse(scope, reference)? {
            EcsResource::TaskSet {
                cluster,
                service: name,
                id,
            } if cluster == service.cluster && name == service.service_name => id,
            _ => return None,
        }
    } else {
        reference
    };
    service.task_sets.iter().position(|t| t.id == id)
}

/// A task set as a request named it, and the task set (`None`: the service has none so named).
pub type NamedTaskSet = (String, Option<TaskSet>);

impl Service {
    pub fn is_external(&self) -> bool {
        self.deployment_controller == Some(DeploymentControllerType::External)
    }
}

impl Ecs {
    /// The ACTIVE service a task set operation names, refused unless it is EXTERNAL.
    fn external_service(
        &self,
        scope: &Scope,
        cluster: Option<&str>,
        service: &str,
    ) -> Result<Service> {
        let s = self.service(scope, cluster, service)?;
        if s.status != berth_model::ecs::ServiceStatus::Active {
            return Err(EcsError::ServiceNotActive);
        }
        if !s.is_external() {
            return Err(EcsError::InvalidParameter(NOT_EXTERNAL.into()));
        }
        Ok(s)
    }

    pub fn create_task_set(&self, scope: &Scope, req: CreateTaskSet) -> Result<(Service, String)> {
        let current = self.external_service(scope, req.cluster.as_deref(), &req.service)?;
        let scale = req.scale.unwrap_or_default();
        check_scale(&scale)?;
        crate::clusters::check_tags(&req.tags)?;
        let cluster = self.active_cluster(scope, Some(&current.cluster))?;
        let resolved = if req.capacity_provider_strategy.is_empty() {
            None
        } else {
            Some(crate::fargate::resolve_launch(
                &cluster,
                req.launch_type.as_deref(),
                Some(&req.capacity_provider_strategy),
                req.platform_version.as_deref(),
                1,
            )?)
        };
        let launch_type = match (&req.launch_type, resolved) {
            (Some(l), _) => {
                LaunchType::parse_member("launchType", l).map_err(EcsError::InvalidParameter)?
            }
            (None, Some(launch)) => launch.launch_type(),
            (None, None) => current.launch_type,
        };
        let task_definition = self.service_task_definition(
            scope,
            &req.task_definition,
            launch_type,
            &req.network_configuration,
        )?;
        let created = std::cell::RefCell::new(String::new());
        let service = self.change_service(scope, Some(&current.cluster), &req.service, |s| {
            if let Some(existing) = s
                .task_sets
                .iter()
                .find(|t| req.client_token.is_some() && t.client_token == req.client_token)
            {
                // Idempotent with the same client token.
                *created.borrow_mut() = existing.id.clone();
                return Ok(());
            }
            if s.task_sets.len() >= MAX_TASK_SETS {
                return Err(EcsError::InvalidParameter(format!(
                    "{} deployments exist on the service. Unable to create new TaskSet since this exceeds the maximum limit.",
                    s.task_sets.len()
                )));
            }
            let now = now_epoch();
            s.deployment_serial += 1;
            let id = crate::services::deployment_id(s.deployment_serial);
            s.task_sets.push(TaskSet {
                id: id.clone(),
                external_id: req.external_id.clone(),
                status: TaskSetStatus::Active,
                task_definition: task_definition.clone(),
                computed_desired_count: i64::from(computed_desired_count(
                    s.desired_count.max(0) as u32,
                    scale.value,
                )),
                pending_count: 0,
                running_count: 0,
                created_at: now,
                updated_at: now,
                launch_type,
                capacity_provider_strategy: req.capacity_provider_strategy.clone(),
                platform_version: req.platform_version.clone(),
                network_configuration: req.network_configuration.clone(),
                load_balancers: req.load_balancers.clone(),
                service_registries: req.service_registries.clone(),
                scale,
                stability_status: StabilityStatus::Stabilizing,
                stability_status_at: now,
                tags: req.tags.clone(),
                client_token: req.client_token.clone(),
            });
            s.steady = false;
            *created.borrow_mut() = id;
            Ok(())
        })?;
        Ok((service, created.into_inner()))
    }

    /// DescribeTaskSets: the service, and each named task set (all of them when none is
    /// named) or `None` for one it does not have.
    pub fn describe_task_sets(
        &self,
        scope: &Scope,
        cluster: Option<&str>,
        service: &str,
        task_sets: Option<&[String]>,
    ) -> Result<(Service, Vec<NamedTaskSet>)> {
        let s = self.external_service(scope, cluster, service)?;
        let found = match task_sets {
            None => s
                .task_sets
                .iter()
                .map(|t| (t.id.clone(), Some(t.clone())))
                .collect(),
            Some(named) => named
                .iter()
                .map(|r| {
                    (
                        r.clone(),
                        position(scope, &s, r).map(|i| s.task_sets[i].clone()),
                    )
                })
                .collect(),
        };
        Ok((s, found))
    }

    /// UpdateTaskSet: a new scale.
    pub fn update_task_set(
        &self,
        scope: &Scope,
        cluster: Option<&str>,
        service: &str,
        task_set: &str,
        scale: Scale,
    ) -> Result<(Service, TaskSet)> {
        check_scale(&scale)?;
        self.change_task_set(scope, cluster, service, task_set, |s, i| {
            let desired = s.desired_count.max(0) as u32;
            let t = &mut s.task_sets[i];
            if t.status == TaskSetStatus::Draining {
                return Err(EcsError::TaskSetNotFound);
            }
            t.scale = scale;
            t.computed_desired_count = i64::from(computed_desired_count(desired, scale.value));
            t.updated_at = now_epoch();
            s.steady = false;
            Ok(())
        })
    }

    /// UpdateServicePrimaryTaskSet: this one PRIMARY, the PRIMARY before it ACTIVE.
    pub fn update_service_primary_task_set(
        &self,
        scope: &Scope,
        cluster: Option<&str>,
        service: &str,
        task_set: &str,
    ) -> Result<(Service, TaskSet)> {
        self.change_task_set(scope, cluster, service, task_set, |s, i| {
            if s.task_sets[i].status == TaskSetStatus::Draining {
                return Err(EcsError::TaskSetNotFound);
            }
            let now = now_epoch();
            for (n, t) in s.task_sets.iter_mut().enumerate() {
                let status = if n == i {
                    TaskSetStatus::Primary
                } else if t.status == TaskSetStatus::Primary {
                    TaskSetStatus::Active
                } else {
                    continue;
                };
                if t.status != status {
                    t.status = status;
                    t.updated_at = now;
                }
            }
            Ok(())
        })
    }

    /// DeleteTaskSet: DRAINING (its tasks are stopped, then it is gone). A task set still
    /// scaled above zero is deleted only when forced.
    pub fn delete_task_set(
        &self,
        scope: &Scope,
        cluster: Option<&str>,
        service: &str,
        task_set: &str,
        force: bool,
    ) -> Result<(Service, TaskSet)> {
        self.change_task_set(scope, cluster, service, task_set, |s, i| {
            let t = &mut s.task_sets[i];
            if t.status == TaskSetStatus::Draining {
                return Err(EcsError::TaskSetNotFound);
            }
            if t.scale.value > 0.0 && !force {
                // No published ECS text found for this refusal: Berth's says what to do.
                return Err(EcsError::InvalidParameter(
                    "The task set cannot be deleted while it is scaled above 0. Set force to delete it anyway.".into(),
                ));
            }
            t.status = TaskSetStatus::Draining;
            t.computed_desired_count = 0;
            t.updated_at = now_epoch();
            s.steady = false;
            Ok(())
        })
    }

    /// Changes one task set of an EXTERNAL service: the service and the task set after.
    fn change_task_set(
        &self,
        scope: &Scope,
        cluster: Option<&str>,
        service: &str,
        task_set: &str,
        change: impl Fn(&mut Service, usize) -> Result<()>,
    ) -> Result<(Service, TaskSet)> {
        let current = self.external_service(scope, cluster, service)?;
        let id = position(scope, &current, task_set)
            .map(|i| current.task_sets[i].id.clone())
            .ok_or(EcsError::TaskSetNotFound)?;
        let s = self.change_service(scope, Some(&current.cluster), service, |s| {
            let i = s
                .task_sets
                .iter()
                .position(|t| t.id == id)
                .ok_or(EcsError::TaskSetNotFound)?;
            change(s, i)
        })?;
        let t = s
            .task_sets
            .iter()
            .find(|t| t.id == id)
            .cloned()
            .ok_or(EcsError::TaskSetNotFound)?;
        Ok((s, t))
    }

    /// One scheduler round for an EXTERNAL service (see the module documentation): plan,
    /// stop, start, and write the task sets' counts and stability.
    pub(crate) fn reconcile_task_sets(
        &self,
        r: &ServiceRef,
        service: &Service,
        tasks: &[TaskView],
    ) -> Result<RoundOutcome> {
        let views: Vec<TaskSetView> = service
            .task_sets
            .iter()
            .map(|t| TaskSetView {
                id: t.id.clone(),
                scale_percent: t.scale.value,
                draining: t.status == TaskSetStatus::Draining,
            })
            .collect();
        let plan = plan_task_sets(service.desired_count.max(0) as u32, &views, tasks);
        for (id, reason) in &plan.stop {
            if let Err(e) = self.stop_task_as(
                &r.scope,
                Some(&r.cluster),
                id,
                Some(reason.clone()),
                StopCode::ServiceSchedulerInitiated,
            ) {
                tracing::warn!(task = %id, error = %e, "service scheduler: stopping a task failed");
            }
        }
        let mut unplaced = false;
        let pending: Vec<_> = plan
            .start
            .iter()
            .filter_map(|(id, count)| {
                let set = service.task_sets.iter().find(|t| t.id == *id)?;
                Some(self.queue_run_task(&r.scope, task_set_run_task(service, set, *count)))
            })
            .collect();
        for answer in pending {
            match answer.wait() {
                Ok(outcome) if outcome.failures.is_empty() => {}
                Ok(_) | Err(_) => unplaced = true,
            }
        }
        let statuses: HashMap<&str, _> =
            plan.task_sets.iter().map(|t| (t.id.as_str(), t)).collect();
        let steady = plan.task_sets.iter().all(|t| t.steady || t.drained);
        self.change_service(&r.scope, Some(&r.cluster), &r.name, |s| {
            let now = now_epoch();
            s.task_sets
                .retain(|t| !statuses.get(t.id.as_str()).is_some_and(|p| p.drained));
            // A scale or desired count changed since the round read the service stays as
            // written (the next round plans from it).
            let same_desired = s.desired_count == service.desired_count;
            for t in &mut s.task_sets {
                let Some(p) = statuses.get(t.id.as_str()) else {
                    continue;
                };
                let stability = if p.steady {
                    StabilityStatus::SteadyState
                } else {
                    StabilityStatus::Stabilizing
                };
                if stability != t.stability_status {
                    t.stability_status = stability;
                    t.stability_status_at = now;
                }
                let read_scale = views.iter().find(|v| v.id == t.id).map(|v| v.scale_percent);
                if same_desired
                    && t.status != TaskSetStatus::Draining
                    && read_scale == Some(t.scale.value)
                {
                    t.computed_desired_count = i64::from(p.computed_desired_count);
                }
                t.running_count = i64::from(p.running);
                t.pending_count = i64::from(p.pending);
            }
            s.steady = steady && plan.stop.is_empty() && plan.start.is_empty();
            Ok(())
        })?;
        Ok(
            if steady && !unplaced && plan.stop.is_empty() && plan.start.is_empty() {
                RoundOutcome::Steady
            } else {
                RoundOutcome::Busy
            },
        )
    }
}

/// RunTask for `count` tasks of a task set.
fn task_set_run_task(service: &Service, set: &TaskSet, count: u32) -> RunTask {
    service.run_task(
        crate::service_scheduler::ServiceTasks {
            task_definition: &set.task_definition,
            started_by: &set.id,
            launch_type: set.launch_type,
            capacity_provider_strategy: &set.capacity_provider_strategy,
            platform_version: set.platform_version.as_ref(),
            network_configuration: set.network_configuration.as_ref(),
        },
        count,
    )
}
