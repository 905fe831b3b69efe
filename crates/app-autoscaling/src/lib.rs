//! Application Auto Scaling for ECS services (`aws application-autoscaling`): scalable
//! targets (`service/{cluster}/{service}`, `ecs:service:DesiredCount`), step and target
//! tracking scaling policies, the policy's execution when one of its CloudWatch alarms fires
//! (`alarm_fired`), scheduled actions and the scaling activities all of them record.
//! CloudWatch alarms and the ECS service are reached through ports ([`AlarmPort`],
//! [`EcsPort`]) the server implements; the key layout is in `keys.rs`.

mod activities;
mod alarms;
mod ecs_port;
mod error;
mod execute;
mod keys;
pub mod planner;
mod policies;
mod records;
pub mod schedule;
mod scheduled;
mod targets;

use std::sync::Arc;

use berth_store::Store;

pub use activities::ActivityFilter;
pub use alarms::{
    AlarmPort, FakeAlarms, LoggedAlarms, MetricQuery, MetricStatQuery, PolicyAlarm, PortError,
    alarm_arn,
};
pub use berth_model::Scope;
pub use ecs_port::{EcsPort, FakeEcs, ServiceCapacity};
pub use error::AutoScalingError;
pub use execute::{AlarmState, AlarmTrigger};
pub use policies::{PutScalingPolicy, tracking_alarms};
pub use records::{
    AdjustmentType, AlarmRef, CustomizedMetric, MetricDimension, MetricStat, NotScaledReason,
    PolicyType, PredefinedMetric, ScalableTarget, ScalableTargetAction, ScalingActivity,
    ScalingPolicy, ScheduledAction, StatusCode, StepAdjustment, StepScalingConfiguration,
    SuspendedState, TargetTrackingConfiguration, TrackingMetric, TrackingQuery,
};
pub use scheduled::PutScheduledAction;
pub use targets::{
    RegisterScalableTarget, TargetFilter, check_namespace, check_target_id, service_linked_role,
};

pub type Result<T> = std::result::Result<T, AutoScalingError>;

/// The only service namespace, scalable dimension and resource type Berth scales.
pub const ECS_NAMESPACE: &str = "ecs";
pub const ECS_DIMENSION: &str = "ecs:service:DesiredCount";

/// Application Auto Scaling's use cases over the store.
#[derive(Clone)]
pub struct AppAutoScaling {
    store: Arc<dyn Store>,
    alarms: Arc<dyn AlarmPort>,
    ecs: Arc<dyn EcsPort>,
    /// The period of the alarms target tracking creates on predefined metrics (60; 10 or
    /// 30 when Berth publishes its own metrics at high resolution).
    alarm_period: u32,
}

impl AppAutoScaling {
    pub fn new(store: Arc<dyn Store>, alarms: Arc<dyn AlarmPort>, ecs: Arc<dyn EcsPort>) -> Self {
        AppAutoScaling {
            store,
            alarms,
            ecs,
            alarm_period: policies::PERIOD,
        }
    }

    /// The same use cases whose target tracking alarms on predefined metrics evaluate
    /// `period`-second periods: the longest of 10, 30 and 60 that a metric published every
    /// `metrics_period` seconds fills (CloudWatch's alarm periods; docs/autoscaling.md).
    pub fn with_metrics_period(&self, metrics_period: u64) -> Self {
        AppAutoScaling {
            alarm_period: policies::alarm_period_for(metrics_period),
            ..self.clone()
        }
    }

    /// The same use cases writing through another store (the leader's fenced one).
    pub fn with_store(&self, store: Arc<dyn Store>) -> Self {
        AppAutoScaling {
            store,
            ..self.clone()
        }
    }

    /// The same use cases with another ECS port (the leader's, writing through its fenced
    /// store).
    pub fn with_ecs(&self, ecs: Arc<dyn EcsPort>) -> Self {
        AppAutoScaling {
            ecs,
            ..self.clone()
        }
    }

    /// The same use cases with another alarm port (the integrator's, over berth-cloudwatch).
    pub fn with_alarms(&self, alarms: Arc<dyn AlarmPort>) -> Self {
        AppAutoScaling {
            alarms,
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests;
