//! CloudWatch alarms on the leader, and what ties them to Application Auto Scaling.
//!
//! Every second the alarms that are due are evaluated (through the term's fenced store)
//! and their actions invoked; history older than CloudWatch keeps is deleted hourly.
//! Actions are routed by ARN: Application Auto Scaling's policies
//! (`arn:aws:autoscaling:…:scalingPolicy:…:resource/…`) run through
//! `AppAutoScaling::alarm_fired`; those of services Berth does not have (SNS, EC2 instance
//! actions) fail, and the alarm's history says so. The other way round, target tracking
//! policies create and delete their alarms through [`CloudWatchAlarms`].

use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_app_autoscaling::{
    AlarmPort, AlarmState, AlarmTrigger, AppAutoScaling, PolicyAlarm, PortError,
};
use berth_cloudwatch::{
    AlarmActions, AlarmFired, AlarmSchedule, CloudWatch, CloudWatchError, CwScope, MetricDataQuery,
    MetricStat, PutMetricAlarm, StateValue,
};
use berth_model::Scope;

use crate::periodic;

/// Application Auto Scaling's alarms in CloudWatch.
pub struct CloudWatchAlarms(pub Arc<CloudWatch>);

fn cw_scope(scope: &Scope) -> CwScope {
    CwScope::new(scope.account.as_str(), scope.region.as_str())
}

fn dimensions(pairs: &[(String, String)]) -> Vec<berth_cloudwatch::Dimension> {
    pairs
        .iter()
        .map(|(name, value)| berth_cloudwatch::Dimension {
            name: name.clone(),
            value: value.clone(),
        })
        .collect()
}

/// PutMetricAlarm for a target tracking policy's alarm.
fn put_request(a: &PolicyAlarm) -> PutMetricAlarm {
    PutMetricAlarm {
        alarm_name: Some(a.alarm_name.clone()),
        alarm_description: Some(a.alarm_description.clone()),
        actions_enabled: Some(true),
        alarm_actions: a.alarm_actions.clone(),
        metric_name: a.metric_name.clone(),
        namespace: a.namespace.clone(),
        statistic: a.statistic.clone(),
        dimensions: dimensions(&a.dimensions),
        period: a.period.map(i64::from),
        unit: a.unit.clone(),
        evaluation_periods: Some(i64::from(a.evaluation_periods)),
        datapoints_to_alarm: Some(i64::from(a.datapoints_to_alarm)),
        threshold: Some(a.threshold),
        comparison_operator: Some(a.comparison_operator.clone()),
        treat_missing_data: Some(a.treat_missing_data.clone()),
        metrics: a
            .metrics
            .iter()
            .map(|q| MetricDataQuery {
                id: q.id.clone(),
                metric_stat: q.metric_stat.as_ref().map(|s| MetricStat {
                    namespace: s.namespace.clone(),
                    metric_name: s.metric_name.clone(),
                    dimensions: dimensions(&s.dimensions),
                    period: i64::from(q.period.unwrap_or(60)),
                    stat: s.stat.clone(),
                    unit: s.unit.clone(),
                }),
                expression: q.expression.clone(),
                label: q.label.clone(),
                return_data: Some(q.return_data),
                period: None,
            })
            .collect(),
        ..PutMetricAlarm::default()
    }
}

impl AlarmPort for CloudWatchAlarms {
    fn put_alarm(&self, scope: &Scope, alarm: &PolicyAlarm) -> Result<String, PortError> {
        let scope = cw_scope(scope);
        self.0
            .put_metric_alarm(&scope, put_request(alarm))
            .map_err(|e| PortError(e.to_string()))?;
        Ok(berth_cloudwatch::alarms::alarm_arn(
            &scope,
            &alarm.alarm_name,
        ))
    }

    fn delete_alarms(&self, scope: &Scope, names: &[String]) -> Result<(), PortError> {
        let scope = cw_scope(scope);
        for name in names {
            match self.0.delete_alarms(&scope, std::slice::from_ref(name)) {
                Ok(()) | Err(CloudWatchError::ResourceNotFound(_)) => {}
                Err(e) => return Err(PortError(e.to_string())),
            }
        }
        Ok(())
    }
}

/// Where the leader's alarms send their actions.
pub struct ServerAlarmActions {
    /// The leader's Application Auto Scaling (fenced store, fenced ECS).
    pub scaling: AppAutoScaling,
}

/// An Application Auto Scaling policy's ARN (EC2 Auto Scaling's name a group instead).
fn is_application_policy(action: &str) -> bool {
    action.starts_with("arn:aws:autoscaling:")
        && action.contains(":scalingPolicy:")
        && action.contains(":resource/")
}

impl AlarmActions for ServerAlarmActions {
    fn invoke(&self, scope: &CwScope, action: &str, fired: &AlarmFired) -> Result<String, String> {
        if !is_application_policy(action) {
            return berth_cloudwatch::NoActions.invoke(scope, action, fired);
        }
        let (Ok(account), Ok(region)) = (scope.account.parse(), scope.region.parse()) else {
            return Err(format!("no such scope {}/{}", scope.account, scope.region));
        };
        let trigger = AlarmTrigger {
            alarm_name: fired.alarm_name.clone(),
            alarm_arn: fired.alarm_arn.clone(),
            state: match fired.state {
                StateValue::Alarm => AlarmState::Alarm,
                StateValue::Ok => AlarmState::Ok,
                StateValue::InsufficientData => AlarmState::InsufficientData,
            },
            threshold: fired.threshold,
            value: fired.value(),
            at: fired.at_ms as f64 / 1000.0,
        };
        match self
            .scaling
            .alarm_fired(&Scope::new(account, region), action, &trigger)
        {
            Ok(Some(activity)) => Ok(activity.description),
            Ok(None) => Ok("No scaling activity".to_string()),
            Err(e) => Err(e.to_string()),
        }
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
