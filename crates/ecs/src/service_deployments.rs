//! ListServiceDeployments, DescribeServiceDeployments, StopServiceDeployment over the
//! service deployment records a service keeps (see `services::ServiceDeploymentRecord`).
//! ARNs: `service-deployment/{cluster}/{service}/{id}`; service revisions are numbered as the
//! deployments are: `service-revision/{cluster}/{service}/{n}`.

use berth_model::Scope;
use berth_model::ecs::{EcsArn, EcsResource, RolloutState, ServiceDeploymentStatus};

use crate::services::{
    RollbackRecord, Service, ServiceDeploymentRecord, ServiceRevisionRecord, revision_of,
};
use crate::{Ecs, EcsError, Result, now_epoch};

/// How StopServiceDeployment stops a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopType {
    /// Back to the last service revision that completed.
    Rollback,
    /// Where it is: nothing more is started for it.
    Abort,
}

impl Ecs {
    /// A service revision by ARN, with its service: `None` when the ARN names no service
    /// revision Berth knows (its service gone, or the revision older than those kept).
    pub fn service_revision(
        &self,
        scope: &Scope,
        arn: &str,
    ) -> Result<Option<(Service, ServiceRevisionRecord)>> {
        let Some(EcsResource::ServiceRevision {
            cluster,
            service: name,
            revision,
        }) = EcsArn::parse(scope, arn)
        else {
            return Ok(None);
        };
        let Ok(revision) = revision.parse::<u64>() else {
            return Ok(None);
        };
        let service = match self.service(scope, Some(cluster), name) {
            Ok(s) => s,
            Err(EcsError::ServiceNotFound | EcsError::ClusterNotFound) => return Ok(None),
            Err(e) => return Err(e),
        };
        let found = service
            .revisions
            .iter()
            .find(|r| r.revision == revision)
            .cloned()
            .or_else(|| {
                // A service stored before revisions were kept: its live deployments still say
                // what they run.
                service
                    .deployments
                    .iter()
                    .find(|d| revision_of(&d.id) == revision)
                    .map(|d| ServiceRevisionRecord {
                        revision,
                        task_definition: d.task_definition.clone(),
                        launch_type: d.launch_type,
                        capacity_provider_strategy: service.capacity_provider_strategy.clone(),
                        platform_version: service.platform_version.clone(),
                        network_configuration: service.network_configuration.clone(),
                        load_balancers: service.load_balancers.clone(),
                        service_registries: service.service_registries.clone(),
                        created_at: d.created_at,
                    })
            });
        Ok(found.map(|r| (service, r)))
    }

    /// The service's deployment records, newest first, filtered by status and creation time.
    pub fn list_service_deployments(
        &self,
        scope: &Scope,
        cluster: Option<&str>,
        service: &str,
        statuses: &[String],
        created: (Option<f64>, Option<f64>),
    ) -> Result<(Service, Vec<ServiceDeploymentRecord>)> {
        let service = self.service(scope, cluster, service)?;
        let (after, before) = created;
        let records = service
            .service_deployments
            .iter()
            .filter(|r| statuses.is_empty() || statuses.iter().any(|s| s == r.status.as_str()))
            .filter(|r| after.is_none_or(|a| r.created_at >= a))
            .filter(|r| before.is_none_or(|b| r.created_at <= b))
            .cloned()
            .collect();
        Ok((service, records))
    }

    /// A service deployment by ARN, with its service.
    pub fn service_deployment(
        &self,
        scope: &Scope,
        arn: &str,
    ) -> Result<(Service, ServiceDeploymentRecord)> {
        let Some(EcsResource::ServiceDeployment {
            cluster,
            service: name,
            id,
        }) = EcsArn::parse(scope, arn)
        else {
            return Err(EcsError::ServiceDeploymentNotFound);
        };
        let service = match self.service(scope, Some(cluster), name) {
            Ok(s) => s,
            Err(EcsError::ServiceNotFound | EcsError::ClusterNotFound) => {
                return Err(EcsError::ServiceDeploymentNotFound);
            }
            Err(e) => return Err(e),
        };
        let record = service
            .service_deployments
            .iter()
            .find(|r| r.id == id)
            .cloned()
            .ok_or(EcsError::ServiceDeploymentNotFound)?;
        Ok((service, record))
    }

    /// StopServiceDeployment: only a deployment in progress can be stopped.
    pub fn stop_service_deployment(
        &self,
        scope: &Scope,
        arn: &str,
        stop_type: StopType,
    ) -> Result<(Service, ServiceDeploymentRecord)> {
        let (service, record) = self.service_deployment(scope, arn)?;
        let stopped =
            self.change_service(scope, Some(&service.cluster), &service.service_name, |s| {
                let now = now_epoch();
                let Some(index) = s.service_deployments.iter().position(|r| r.id == record.id)
                else {
                    return Err(EcsError::ServiceDeploymentNotFound);
                };
                if s.service_deployments[index].status != ServiceDeploymentStatus::InProgress {
                    return Err(EcsError::Conflict(format!(
                        "The service deployment is {} and cannot be stopped.",
                        s.service_deployments[index].status
                    )));
                }
                let deployment_id = s.service_deployments[index].deployment_id.clone();
                let reason = match stop_type {
                    StopType::Rollback => "Service deployment rolled back by a stop request.",
                    StopType::Abort => "Service deployment stopped by a stop request.",
                };
                let target = match stop_type {
                    StopType::Rollback => Some(s.last_completed.clone().ok_or_else(|| {
                        EcsError::Conflict(
                            "The service has no completed service revision to roll back to.".into(),
                        )
                    })?),
                    StopType::Abort => None,
                };
                if let Some(d) = s.deployments.iter_mut().find(|d| d.id == deployment_id) {
                    d.rollout_state = RolloutState::Failed;
                    d.rollout_state_reason = reason.into();
                    d.updated_at = now;
                }
                let event = match &target {
                    Some((id, task_definition)) => {
                        s.task_definition = task_definition.clone();
                        let rollback = Ecs::start_deployment(s, task_definition);
                        let r = &mut s.service_deployments[index];
                        r.status = ServiceDeploymentStatus::RollbackInProgress;
                        r.rollback = Some(RollbackRecord {
                            reason: reason.into(),
                            started_at: now,
                            revision: revision_of(id),
                            deployment_id: rollback,
                        });
                        format!(
                            "(service {}) rolling back to deployment {id}.",
                            s.service_name
                        )
                    }
                    None => {
                        let r = &mut s.service_deployments[index];
                        r.status = ServiceDeploymentStatus::Stopped;
                        r.stopped_at = Some(now);
                        format!(
                            "(service {}) (deployment {deployment_id}) deployment stopped.",
                            s.service_name
                        )
                    }
                };
                let r = &mut s.service_deployments[index];
                r.status_reason = Some(reason.into());
                r.updated_at = now;
                s.steady = false;
                s.push_event(event, now);
                Ok(())
            })?;
        let record = stopped
            .service_deployments
            .iter()
            .find(|r| r.id == record.id)
            .cloned()
            .ok_or(EcsError::ServiceDeploymentNotFound)?;
        Ok((stopped, record))
    }
}
