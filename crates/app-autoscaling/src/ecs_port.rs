//! The ECS service a scalable target scales, as Application Auto Scaling sees it: its
//! counts, whether a deployment is rolling, and setting its desired count under a compare
//! (the server implements it over berth-ecs; [`FakeEcs`] for tests).

use std::collections::BTreeMap;
use std::sync::Mutex;

use berth_model::Scope;

use crate::alarms::PortError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceCapacity {
    pub desired: i64,
    pub running: i64,
    /// A deployment is rolling out (AWS turns scale-in off meanwhile).
    pub deployment_in_progress: bool,
}

pub trait EcsPort: Send + Sync {
    /// The ACTIVE service `service` of `cluster`, `None` when there is none.
    fn service_capacity(
        &self,
        scope: &Scope,
        cluster: &str,
        service: &str,
    ) -> Result<Option<ServiceCapacity>, PortError>;

    /// Sets the service's desired count to `desired` if it is still `expected`: `Ok(false)`
    /// when it had changed (nothing written).
    fn set_desired_count(
        &self,
        scope: &Scope,
        cluster: &str,
        service: &str,
        expected: i64,
        desired: i64,
    ) -> Result<bool, PortError>;
}

/// Services in memory, for tests, keyed by (cluster, service).
#[derive(Default)]
pub struct FakeEcs {
    pub services: Mutex<BTreeMap<(String, String), ServiceCapacity>>,
}

impl FakeEcs {
    pub fn with_service(self, cluster: &str, service: &str, capacity: ServiceCapacity) -> Self {
        self.services
            .lock()
            .unwrap()
            .insert((cluster.into(), service.into()), capacity);
        self
    }

    pub fn desired(&self, cluster: &str, service: &str) -> Option<i64> {
        self.services
            .lock()
            .unwrap()
            .get(&(cluster.to_string(), service.to_string()))
            .map(|c| c.desired)
    }

    pub fn set(&self, cluster: &str, service: &str, capacity: ServiceCapacity) {
        self.services
            .lock()
            .unwrap()
            .insert((cluster.into(), service.into()), capacity);
    }
}

impl EcsPort for FakeEcs {
    fn service_capacity(
        &self,
        _scope: &Scope,
        cluster: &str,
        service: &str,
    ) -> Result<Option<ServiceCapacity>, PortError> {
        Ok(self
            .services
            .lock()
            .unwrap()
            .get(&(cluster.to_string(), service.to_string()))
            .copied())
    }

    fn set_desired_count(
        &self,
        _scope: &Scope,
        cluster: &str,
        service: &str,
        expected: i64,
        desired: i64,
    ) -> Result<bool, PortError> {
        let mut services = self.services.lock().unwrap();
        match services.get_mut(&(cluster.to_string(), service.to_string())) {
            Some(c) if c.desired == expected => {
                c.desired = desired;
                Ok(true)
            }
            Some(_) => Ok(false),
            None => Err(PortError(format!("no service {cluster}/{service}"))),
        }
    }
}
