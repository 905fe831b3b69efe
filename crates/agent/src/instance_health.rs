//! The instance's own health checks, which ECS shows as a container instance's
//! `healthStatus`: today one, the container runtime check (does Docker answer a ping?), as
//! the official agent's "doctor" runs it (`agent/doctor/docker_runtime_healthcheck.go`).
//!
//! The engine runs the check every [`CHECK_INTERVAL`] (the official agent runs it on each
//! ACS heartbeat; a timer of our own keeps it independent of the server's heartbeat rate)
//! and publishes the result on a watch channel. The telemetry session sends it as a
//! `PublishInstanceStatusRequest` when a session opens, when the status changes, and with
//! every metrics publish, as the official agent sends a fresh result each publish interval.
//! A status is `INITIALIZING` until the first check, then `OK` or `IMPAIRED`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use berth_agent_protocol::Timestamp;
use berth_agent_protocol::tcs::{
    INSTANCE_CHECK_CONTAINER_RUNTIME, INSTANCE_STATUS_IMPAIRED, INSTANCE_STATUS_INITIALIZING,
    INSTANCE_STATUS_OK, InstanceStatus, InstanceStatusMetadata, PublishInstanceStatusRequest,
};
use berth_runtime::{ContainerRuntime, RuntimeError};
use tokio::sync::watch;

/// How often the container runtime is checked.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(10);
/// How long a ping may take before the runtime counts as impaired. The official agent allows
/// two seconds; a busy host's Docker can be slower than that without being gone.
pub const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// A check's status, named as the agent sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckStatus {
    /// Not checked yet.
    Initializing,
    Ok,
    Impaired,
}

impl CheckStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Initializing => INSTANCE_STATUS_INITIALIZING,
            CheckStatus::Ok => INSTANCE_STATUS_OK,
            CheckStatus::Impaired => INSTANCE_STATUS_IMPAIRED,
        }
    }
}

/// The container runtime check's latest result.
/// Why a check found the runtime impaired (the status reason telemetry sends).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Ping(RuntimeError),
    #[error("no answer to a ping within {timeout:?}", timeout = PING_TIMEOUT)]
    Timeout,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeHealth {
    pub status: CheckStatus,
    /// When the check last ran (or the agent started, before the first check).
    pub last_updated: SystemTime,
    /// When the status last changed.
    pub last_status_change: SystemTime,
    /// Why the runtime is impaired: the error the ping met.
    pub reason: Option<String>,
}

impl RuntimeHealth {
    pub fn initializing(now: SystemTime) -> Self {
        RuntimeHealth {
            status: CheckStatus::Initializing,
            last_updated: now,
            last_status_change: now,
            reason: None,
        }
    }

    /// Takes in one check's outcome (`Err` is why it failed); returns whether the status
    /// changed.
    pub fn record(&mut self, outcome: Result<(), CheckError>, now: SystemTime) -> bool {
        let (status, reason) = match outcome {
            Ok(()) => (CheckStatus::Ok, None),
            Err(why) => (CheckStatus::Impaired, Some(why.to_string())),
        };
        let changed = status != self.status;
        if changed {
            self.last_status_change = now;
        }
        self.status = status;
        self.last_updated = now;
        self.reason = reason;
        changed
    }

    /// The check as the telemetry protocol names it.
    pub fn to_instance_status(&self) -> InstanceStatus {
        InstanceStatus {
            kind: Some(INSTANCE_CHECK_CONTAINER_RUNTIME.to_owned()),
            status: Some(self.status.as_str().to_owned()),
            last_updated: Some(Timestamp::from(self.last_updated)),
            last_status_change: Some(Timestamp::from(self.last_status_change)),
            status_reason: self.reason.clone(),
        }
    }
}

/// The message that reports `health` for an instance.
pub fn publish_request(
    cluster: &str,
    instance_arn: &str,
    health: &RuntimeHealth,
) -> PublishInstanceStatusRequest {
    PublishInstanceStatusRequest {
        metadata: Some(InstanceStatusMetadata {
            cluster: Some(cluster.to_owned()),
            container_instance: Some(instance_arn.to_owned()),
            request_id: Some(format!("{:032x}", rand::random::<u128>())),
        }),
        statuses: Some(vec![health.to_instance_status()]),
        timestamp: Some(Timestamp::from(SystemTime::now())),
    }
}

/// Checks the runtime every `interval` (the first at once) until `shutdown`, keeping `health`
/// current. Receivers are woken only when the status changes; the timestamps move with every
/// check.
pub(crate) async fn run_checks(
    runtime: Arc<dyn ContainerRuntime>,
    interval: Duration,
    health: watch::Sender<RuntimeHealth>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = shutdown.changed() => return,
        }
        let outcome = match tokio::time::timeout(PING_TIMEOUT, runtime.ping()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(CheckError::Ping(e)),
            Err(_) => Err(CheckError::Timeout),
        };
        health.send_if_modified(|health| {
            let before = health.status;
            let changed = health.record(outcome, SystemTime::now());
            if changed {
                log_change(before, health);
            }
            changed
        });
    }
}

/// Logs a change of status: loudly when the runtime goes away and when it is back, since
/// tasks cannot be started, stopped or watched meanwhile.
pub(crate) fn log_change(before: CheckStatus, now: &RuntimeHealth) {
    match (before, now.status) {
        (_, CheckStatus::Impaired) => tracing::warn!(
            reason = now.reason.as_deref().unwrap_or_default(),
            "the container runtime is unreachable; the agent carries on (tasks are left as they \
             are and checked again once it is back)"
        ),
        (CheckStatus::Impaired, CheckStatus::Ok) => tracing::warn!(
            "the container runtime is reachable again; resubscribing to its events and \
             re-inspecting every task's containers"
        ),
        (_, status) => tracing::debug!(status = status.as_str(), "container runtime check"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_agent_protocol::tcs::AgentMessage;
    use serde_json::Value;

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
    }

    #[test]
    fn a_status_change_is_timed_and_a_repeat_only_updates() {
        let mut health = RuntimeHealth::initializing(at(100));
        assert!(health.record(Ok(()), at(110)));
        assert_eq!(health.status, CheckStatus::Ok);
        assert_eq!(health.last_status_change, at(110));
        assert!(!health.record(Ok(()), at(120)));
        assert_eq!(health.last_updated, at(120));
        assert_eq!(health.last_status_change, at(110));
        let refused = RuntimeError::Unavailable("connection refused".to_owned());
        assert!(health.record(Err(CheckError::Ping(refused)), at(130)));
        assert_eq!(health.status, CheckStatus::Impaired);
        assert_eq!(
            health.reason.as_deref(),
            Some("container runtime unavailable: connection refused")
        );
        assert_eq!(health.last_status_change, at(130));
        assert!(health.record(Ok(()), at(140)));
        assert_eq!(health.reason, None);
    }

    #[test]
    fn the_request_carries_the_container_runtime_check_as_the_agent_names_it() {
        let mut health = RuntimeHealth::initializing(at(1_700_000_000));
        health.record(Err(CheckError::Timeout), at(1_700_000_010));
        let frame =
            AgentMessage::PublishInstanceStatus(publish_request("c", "arn:i", &health)).encode();
        let frame: Value = serde_json::from_str(&frame).unwrap();
        assert_eq!(frame["type"], "PublishInstanceStatusRequest");
        let message = &frame["message"];
        assert_eq!(message["metadata"]["cluster"], "c");
        assert_eq!(message["metadata"]["containerInstance"], "arn:i");
        assert_eq!(message["metadata"]["requestId"].as_str().unwrap().len(), 32);
        assert!(message["timestamp"].is_number());
        assert_eq!(
            message["statuses"],
            serde_json::json!([{
                "type": "ContainerRuntime",
                "status": "IMPAIRED",
                "lastUpdated": 1_700_000_010,
                "lastStatusChange": 1_700_000_010,
                "statusReason": "no answer to a ping within 5s",
            }])
        );
        let initial = publish_request("c", "arn:i", &RuntimeHealth::initializing(at(5)));
        let status = &initial.statuses.unwrap()[0];
        assert_eq!(status.status.as_deref(), Some("INITIALIZING"));
        assert_eq!(status.status_reason, None);
    }
}
