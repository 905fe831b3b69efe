//! CloudWatch alarms as Application Auto Scaling sees them: the port through which target
//! tracking policies create and delete the alarms they own. The server implements it over
//! berth-cloudwatch (PutMetricAlarm's fields are exactly [`PolicyAlarm`]'s); until then it
//! runs with [`LoggedAlarms`], and tests with [`FakeAlarms`].

use std::sync::Mutex;

use berth_model::Scope;

/// The port failed (the alarm was not written or deleted).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct PortError(pub String);

/// One query of a metric-math alarm (PutMetricAlarm's `Metrics` member).
#[derive(Debug, Clone, PartialEq)]
pub struct MetricQuery {
    pub id: String,
    pub expression: Option<String>,
    pub label: Option<String>,
    /// (namespace, metric name, dimensions, stat, unit) of a `MetricStat`.
    pub metric_stat: Option<MetricStatQuery>,
    pub return_data: bool,
    /// The `MetricStat`'s period (60).
    pub period: Option<u32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MetricStatQuery {
    pub namespace: String,
    pub metric_name: String,
    pub dimensions: Vec<(String, String)>,
    pub stat: String,
    pub unit: Option<String>,
}

/// A PutMetricAlarm as target tracking makes it. Either a single metric (`namespace`,
/// `metric_name`, `dimensions`, `statistic`, `period`) or metric math (`metrics`), never both.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyAlarm {
    pub alarm_name: String,
    pub alarm_description: String,
    pub namespace: Option<String>,
    pub metric_name: Option<String>,
    pub dimensions: Vec<(String, String)>,
    pub statistic: Option<String>,
    pub unit: Option<String>,
    /// Seconds (60).
    pub period: Option<u32>,
    pub evaluation_periods: u32,
    pub datapoints_to_alarm: u32,
    pub threshold: f64,
    /// `GreaterThanThreshold` / `LessThanThreshold`.
    pub comparison_operator: String,
    /// `missing`, as target tracking leaves it.
    pub treat_missing_data: String,
    /// The policy's ARN: CloudWatch calls [`crate::AppAutoScaling::alarm_fired`] with it.
    pub alarm_actions: Vec<String>,
    pub metrics: Vec<MetricQuery>,
}

pub trait AlarmPort: Send + Sync {
    /// Creates or replaces the alarm in `scope`; answers its ARN.
    fn put_alarm(&self, scope: &Scope, alarm: &PolicyAlarm) -> Result<String, PortError>;
    /// Deletes the alarms named (absent ones are no error).
    fn delete_alarms(&self, scope: &Scope, names: &[String]) -> Result<(), PortError>;
}

/// CloudWatch's alarm ARN for `name` in `scope`.
pub fn alarm_arn(scope: &Scope, name: &str) -> String {
    format!(
        "arn:aws:cloudwatch:{}:{}:alarm:{name}",
        scope.region, scope.account
    )
}

/// The server's port until CloudWatch alarms exist: answers the ARN the alarm will have
/// and logs what it would have written. **The alarms do not exist.**
pub struct LoggedAlarms;

impl AlarmPort for LoggedAlarms {
    fn put_alarm(&self, scope: &Scope, alarm: &PolicyAlarm) -> Result<String, PortError> {
        tracing::info!(alarm = %alarm.alarm_name, "target tracking alarm not created: no CloudWatch alarms yet");
        Ok(alarm_arn(scope, &alarm.alarm_name))
    }

    fn delete_alarms(&self, _scope: &Scope, names: &[String]) -> Result<(), PortError> {
        tracing::info!(
            ?names,
            "target tracking alarms not deleted: no CloudWatch alarms yet"
        );
        Ok(())
    }
}

/// Alarms in memory, for tests: what was put (by name) and deleted.
#[derive(Default)]
pub struct FakeAlarms {
    pub alarms: Mutex<Vec<(Scope, PolicyAlarm)>>,
    pub fail: Mutex<bool>,
}

impl FakeAlarms {
    pub fn names(&self) -> Vec<String> {
        self.alarms
            .lock()
            .unwrap()
            .iter()
            .map(|(_, a)| a.alarm_name.clone())
            .collect()
    }

    pub fn get(&self, name: &str) -> Option<PolicyAlarm> {
        self.alarms
            .lock()
            .unwrap()
            .iter()
            .find(|(_, a)| a.alarm_name == name)
            .map(|(_, a)| a.clone())
    }
}

impl AlarmPort for FakeAlarms {
    fn put_alarm(&self, scope: &Scope, alarm: &PolicyAlarm) -> Result<String, PortError> {
        if *self.fail.lock().unwrap() {
            return Err(PortError("CloudWatch is down".into()));
        }
        let mut alarms = self.alarms.lock().unwrap();
        alarms.retain(|(s, a)| !(s == scope && a.alarm_name == alarm.alarm_name));
        alarms.push((scope.clone(), alarm.clone()));
        Ok(alarm_arn(scope, &alarm.alarm_name))
    }

    fn delete_alarms(&self, scope: &Scope, names: &[String]) -> Result<(), PortError> {
        self.alarms
            .lock()
            .unwrap()
            .retain(|(s, a)| !(s == scope && names.contains(&a.alarm_name)));
        Ok(())
    }
}
