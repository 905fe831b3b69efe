//! Application Auto Scaling's view of ECS (`berth_app_autoscaling::EcsPort`) over berth-ecs:
//! a service's counts and whether a deployment is rolling, and its desired count set under
//! a compare.

use berth_app_autoscaling::{EcsPort, PortError, ServiceCapacity};
use berth_ecs::{Ecs, EcsError};
use berth_model::Scope;
use berth_model::ecs::{RolloutState, ServiceStatus};

pub struct EcsServices(pub Ecs);

fn failed(e: impl std::fmt::Display) -> PortError {
    PortError(e.to_string())
}

impl EcsPort for EcsServices {
    fn service_capacity(
        &self,
        scope: &Scope,
        cluster: &str,
        service: &str,
    ) -> Result<Option<ServiceCapacity>, PortError> {
        let found = match self.0.service(scope, Some(cluster), service) {
            Ok(s) => s,
            Err(EcsError::ServiceNotFound | EcsError::ClusterNotFound) => return Ok(None),
            Err(e) => return Err(failed(e)),
        };
        if found.status != ServiceStatus::Active {
            return Ok(None);
        }
        Ok(Some(ServiceCapacity {
            desired: found.desired_count,
            running: found.deployments.iter().map(|d| d.running_count).sum(),
            // A rolling deployment: more than one, or the primary not yet COMPLETED.
            deployment_in_progress: found.deployments.len() > 1
                || found
                    .deployments
                    .iter()
                    .any(|d| d.rollout_state == RolloutState::InProgress),
        }))
    }

    fn set_desired_count(
        &self,
        scope: &Scope,
        cluster: &str,
        service: &str,
        expected: i64,
        desired: i64,
    ) -> Result<bool, PortError> {
        self.0
            .set_desired_count_if(scope, cluster, service, expected, desired)
            .map_err(failed)
    }
}
