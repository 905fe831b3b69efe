//! CloudWatch alarms on the leader: every second the alarms that are due are evaluated
//! (through the term's fenced store) and their actions invoked; history older than
//! CloudWatch keeps is deleted hourly. Actions are routed by their ARN to the service that
//! carries them out; those of services Berth does not have (SNS, EC2 instance actions)
//! fail, and the alarm's history says so.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_cloudwatch::{AlarmActions, AlarmFired, AlarmSchedule, CloudWatch, CwScope};

use crate::periodic;

/// Where the leader's alarms send their actions.
pub struct ServerAlarmActions;

impl AlarmActions for ServerAlarmActions {
    fn invoke(&self, scope: &CwScope, action: &str, fired: &AlarmFired) -> Result<String, String> {
        berth_cloudwatch::NoActions.invoke(scope, action, fired)
    }
}

/// Spawns the evaluator and the history pruning for a term.
pub fn spawn(
    cloudwatch: Arc<CloudWatch>,
    actions: Arc<dyn AlarmActions>,
    shutdown: &tokio::sync::watch::Receiver<bool>,
) {
    let schedule = Arc::new(Mutex::new(AlarmSchedule::default()));
    let evaluator = cloudwatch.clone();
    periodic::every(
        "alarms: state changes",
        Duration::from_secs(1),
        shutdown.clone(),
        move || {
            let mut schedule = schedule.lock().unwrap_or_else(|p| p.into_inner());
            evaluator.evaluate_alarms(berth_cloudwatch::now_ms(), actions.as_ref(), &mut schedule)
        },
    );
    periodic::every(
        "alarm history: old items deleted",
        Duration::from_secs(3600),
        shutdown.clone(),
        move || cloudwatch.prune_alarm_history(berth_cloudwatch::now_ms()),
    );
}
