//! CloudWatch metric alarms: PutMetricAlarm, DescribeAlarms, DescribeAlarmsForMetric,
//! DeleteAlarms, SetAlarmState, DescribeAlarmHistory, Enable/DisableAlarmActions, their tags
//! (`tags`), and their
//! evaluation (`evaluate`: a pure function of an alarm and its datapoints; `run`: the pass
//! the leader makes, writing state changes and history, invoking actions).
//!
//! Records: `cloudwatch/alarm/{account}/{region}/{name}` (the alarm, its configuration and
//! its state, one compare-and-swap per change) and
//! `cloudwatch/alarm-history/{account}/{region}/{timestamp-ms:013}-{unique}` (history items,
//! kept for 30 days as CloudWatch keeps them).

mod check;
mod describe;
mod evaluate;
mod history;
mod run;
mod tags;

use berth_store::{Change, Op, update};
use serde::{Deserialize, Serialize};

use crate::data::{MetricDataQuery, MetricStat};
use crate::metric::Dimension;
use crate::{CloudWatch, CloudWatchError, CwScope, Result};

pub use describe::{
    AlarmHistoryPage, AlarmsPage, DescribeAlarmHistory, DescribeAlarms, DescribeAlarmsForMetric,
    HistoryItem,
};
pub use evaluate::{Evaluated, evaluate};
pub use run::{AlarmActions, AlarmFired, AlarmSchedule, NoActions};

pub const ALARM_ROOT: &str = "cloudwatch/alarm/";
pub const HISTORY_ROOT: &str = "cloudwatch/alarm-history/";

pub(crate) fn alarms_prefix(scope: &CwScope) -> String {
    format!("{ALARM_ROOT}{}/{}/", scope.account, scope.region)
}

pub(crate) fn alarm_key(scope: &CwScope, name: &str) -> String {
    format!("{}{name}", alarms_prefix(scope))
}

/// An alarm's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StateValue {
    #[serde(rename = "OK")]
    Ok,
    #[serde(rename = "ALARM")]
    Alarm,
    #[serde(rename = "INSUFFICIENT_DATA")]
    InsufficientData,
}

impl StateValue {
    pub fn as_str(self) -> &'static str {
        match self {
            StateValue::Ok => "OK",
            StateValue::Alarm => "ALARM",
            StateValue::InsufficientData => "INSUFFICIENT_DATA",
        }
    }

    pub fn parse(s: &str) -> Option<StateValue> {
        match s {
            "OK" => Some(StateValue::Ok),
            "ALARM" => Some(StateValue::Alarm),
            "INSUFFICIENT_DATA" => Some(StateValue::InsufficientData),
            _ => None,
        }
    }
}

/// How a datapoint is compared with the threshold (the anomaly-detection operators, which
/// compare with a band, are refused: Berth has no anomaly detection).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ComparisonOperator {
    GreaterThanOrEqualToThreshold,
    GreaterThanThreshold,
    LessThanThreshold,
    LessThanOrEqualToThreshold,
}

impl ComparisonOperator {
    pub fn as_str(self) -> &'static str {
        match self {
            ComparisonOperator::GreaterThanOrEqualToThreshold => "GreaterThanOrEqualToThreshold",
            ComparisonOperator::GreaterThanThreshold => "GreaterThanThreshold",
            ComparisonOperator::LessThanThreshold => "LessThanThreshold",
            ComparisonOperator::LessThanOrEqualToThreshold => "LessThanOrEqualToThreshold",
        }
    }

    pub fn parse(s: &str) -> Option<ComparisonOperator> {
        [
            ComparisonOperator::GreaterThanOrEqualToThreshold,
            ComparisonOperator::GreaterThanThreshold,
            ComparisonOperator::LessThanThreshold,
            ComparisonOperator::LessThanOrEqualToThreshold,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
    }

    /// Whether `value` breaches `threshold`.
    pub fn breaches(self, value: f64, threshold: f64) -> bool {
        match self {
            ComparisonOperator::GreaterThanOrEqualToThreshold => value >= threshold,
            ComparisonOperator::GreaterThanThreshold => value > threshold,
            ComparisonOperator::LessThanThreshold => value < threshold,
            ComparisonOperator::LessThanOrEqualToThreshold => value <= threshold,
        }
    }

    /// The comparison in a state reason ("greater than or equal to").
    pub fn words(self) -> &'static str {
        match self {
            ComparisonOperator::GreaterThanOrEqualToThreshold => "greater than or equal to",
            ComparisonOperator::GreaterThanThreshold => "greater than",
            ComparisonOperator::LessThanThreshold => "less than",
            ComparisonOperator::LessThanOrEqualToThreshold => "less than or equal to",
        }
    }
}

/// TreatMissingData.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum TreatMissingData {
    Breaching,
    NotBreaching,
    Ignore,
    #[default]
    Missing,
}

impl TreatMissingData {
    pub fn as_str(self) -> &'static str {
        match self {
            TreatMissingData::Breaching => "breaching",
            TreatMissingData::NotBreaching => "notBreaching",
            TreatMissingData::Ignore => "ignore",
            TreatMissingData::Missing => "missing",
        }
    }

    pub fn parse(s: &str) -> Option<TreatMissingData> {
        [
            TreatMissingData::Breaching,
            TreatMissingData::NotBreaching,
            TreatMissingData::Ignore,
            TreatMissingData::Missing,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }
}

/// The metric a single-metric alarm watches, with its statistic and period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmMetric {
    pub namespace: String,
    pub metric_name: String,
    #[serde(default)]
    pub dimensions: Vec<Dimension>,
    /// SampleCount, Average, Sum, Minimum or Maximum; or `None` with `extended_statistic`.
    pub statistic: Option<String>,
    /// A percentile (`p99`) or another extended statistic GetMetricData knows.
    pub extended_statistic: Option<String>,
    pub period: i64,
    pub unit: Option<String>,
}

/// One member of a metric-math alarm's `Metrics`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmQuery {
    pub id: String,
    #[serde(default)]
    pub metric_stat: Option<AlarmQueryStat>,
    #[serde(default)]
    pub expression: Option<String>,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub return_data: Option<bool>,
    #[serde(default)]
    pub period: Option<i64>,
    #[serde(default)]
    pub account_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmQueryStat {
    pub namespace: String,
    pub metric_name: String,
    #[serde(default)]
    pub dimensions: Vec<Dimension>,
    pub period: i64,
    pub stat: String,
    #[serde(default)]
    pub unit: Option<String>,
}

impl AlarmQuery {
    pub fn from_query(q: &MetricDataQuery) -> AlarmQuery {
        AlarmQuery {
            id: q.id.clone(),
            metric_stat: q.metric_stat.as_ref().map(|s| AlarmQueryStat {
                namespace: s.namespace.clone(),
                metric_name: s.metric_name.clone(),
                dimensions: s.dimensions.clone(),
                period: s.period,
                stat: s.stat.clone(),
                unit: s.unit.clone(),
            }),
            expression: q.expression.clone(),
            label: q.label.clone(),
            return_data: q.return_data,
            period: q.period,
            account_id: None,
        }
    }

    pub fn to_query(&self) -> MetricDataQuery {
        MetricDataQuery {
            id: self.id.clone(),
            metric_stat: self.metric_stat.as_ref().map(|s| MetricStat {
                namespace: s.namespace.clone(),
                metric_name: s.metric_name.clone(),
                dimensions: s.dimensions.clone(),
                period: s.period,
                stat: s.stat.clone(),
                unit: s.unit.clone(),
            }),
            expression: self.expression.clone(),
            label: self.label.clone(),
            return_data: self.return_data,
            period: self.period,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlarmTag {
    pub key: String,
    pub value: String,
}

/// PutMetricAlarm's request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PutMetricAlarm {
    pub alarm_name: Option<String>,
    pub alarm_description: Option<String>,
    pub actions_enabled: Option<bool>,
    pub ok_actions: Vec<String>,
    pub alarm_actions: Vec<String>,
    pub insufficient_data_actions: Vec<String>,
    pub metric_name: Option<String>,
    pub namespace: Option<String>,
    pub statistic: Option<String>,
    pub extended_statistic: Option<String>,
    pub dimensions: Vec<Dimension>,
    pub period: Option<i64>,
    pub unit: Option<String>,
    pub evaluation_periods: Option<i64>,
    pub datapoints_to_alarm: Option<i64>,
    pub threshold: Option<f64>,
    pub comparison_operator: Option<String>,
    pub treat_missing_data: Option<String>,
    pub evaluate_low_sample_count_percentile: Option<String>,
    pub metrics: Vec<MetricDataQuery>,
    pub threshold_metric_id: Option<String>,
    pub tags: Vec<AlarmTag>,
}

/// A stored metric alarm: its configuration and its state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricAlarm {
    pub alarm_name: String,
    pub alarm_arn: String,
    #[serde(default)]
    pub alarm_description: Option<String>,
    pub configuration_updated_ms: i64,
    pub actions_enabled: bool,
    #[serde(default)]
    pub ok_actions: Vec<String>,
    #[serde(default)]
    pub alarm_actions: Vec<String>,
    #[serde(default)]
    pub insufficient_data_actions: Vec<String>,
    /// A single-metric alarm's metric; `None` for a metric-math alarm.
    #[serde(default)]
    pub metric: Option<AlarmMetric>,
    /// A metric-math alarm's queries (exactly one returns data).
    #[serde(default)]
    pub metrics: Vec<AlarmQuery>,
    pub evaluation_periods: i64,
    #[serde(default)]
    pub datapoints_to_alarm: Option<i64>,
    pub threshold: f64,
    pub comparison_operator: ComparisonOperator,
    /// As the request gave it (`None`: not given; evaluated as `missing`).
    #[serde(default)]
    pub treat_missing_data: Option<TreatMissingData>,
    #[serde(default)]
    pub evaluate_low_sample_count_percentile: Option<String>,
    pub state_value: StateValue,
    pub state_reason: String,
    #[serde(default)]
    pub state_reason_data: Option<String>,
    pub state_updated_ms: i64,
    pub state_transitioned_ms: i64,
    #[serde(default)]
    pub tags: Vec<AlarmTag>,
    /// The last transition's actions are still to be invoked (by the evaluator's next pass:
    /// a transition is durable before its actions run, and they run at least once).
    #[serde(default)]
    pub actions_pending: bool,
}

impl MetricAlarm {
    /// The datapoints that must breach for ALARM (DatapointsToAlarm, or all of them).
    pub fn datapoints_needed(&self) -> i64 {
        self.datapoints_to_alarm.unwrap_or(self.evaluation_periods)
    }

    /// The alarm's period: its metric's, or the period of the query that returns data.
    pub fn period(&self) -> i64 {
        if let Some(m) = &self.metric {
            return m.period;
        }
        let returned = self
            .metrics
            .iter()
            .find(|q| q.return_data != Some(false))
            .or(self.metrics.first());
        returned
            .and_then(|q| q.metric_stat.as_ref().map(|s| s.period).or(q.period))
            .or_else(|| {
                self.metrics
                    .iter()
                    .filter_map(|q| q.metric_stat.as_ref().map(|s| s.period))
                    .min()
            })
            .unwrap_or(60)
    }

    pub fn treat_missing(&self) -> TreatMissingData {
        self.treat_missing_data.unwrap_or_default()
    }

    /// The actions for a state.
    pub fn actions_for(&self, state: StateValue) -> &[String] {
        match state {
            StateValue::Ok => &self.ok_actions,
            StateValue::Alarm => &self.alarm_actions,
            StateValue::InsufficientData => &self.insufficient_data_actions,
        }
    }

    /// The queries that read the alarm's data, the one returning it last named `id`.
    pub(crate) fn queries(&self) -> (Vec<MetricDataQuery>, String) {
        if let Some(m) = &self.metric {
            let stat = m
                .statistic
                .clone()
                .or_else(|| m.extended_statistic.clone())
                .unwrap_or_else(|| "Average".to_string());
            let query = MetricDataQuery {
                id: "m".to_string(),
                metric_stat: Some(MetricStat {
                    namespace: m.namespace.clone(),
                    metric_name: m.metric_name.clone(),
                    dimensions: m.dimensions.clone(),
                    period: m.period,
                    stat,
                    unit: m.unit.clone(),
                }),
                return_data: Some(true),
                ..MetricDataQuery::default()
            };
            return (vec![query], "m".to_string());
        }
        let queries: Vec<MetricDataQuery> = self.metrics.iter().map(AlarmQuery::to_query).collect();
        let id = queries
            .iter()
            .find(|q| q.return_data != Some(false))
            .map(|q| q.id.clone())
            .unwrap_or_default();
        (queries, id)
    }
}

pub fn alarm_arn(scope: &CwScope, name: &str) -> String {
    format!(
        "arn:aws:cloudwatch:{}:{}:alarm:{name}",
        scope.region, scope.account
    )
}

fn not_found(names: &str) -> CloudWatchError {
    CloudWatchError::ResourceNotFound(format!("Alarm {names} not found"))
}

impl CloudWatch {
    /// PutMetricAlarm: creates the alarm (INSUFFICIENT_DATA, "Unchecked: Initial alarm
    /// creation") or replaces its configuration, keeping its state.
    pub fn put_metric_alarm(&self, scope: &CwScope, r: PutMetricAlarm) -> Result<()> {
        self.put_metric_alarm_at(scope, r, crate::now_ms())
    }

    pub fn put_metric_alarm_at(
        &self,
        scope: &CwScope,
        r: PutMetricAlarm,
        now_ms: i64,
    ) -> Result<()> {
        let checked = check::check(scope, r, now_ms)?;
        let key = alarm_key(scope, &checked.alarm_name);
        let mut previous = None;
        update(self.store(), &key, |current: Option<MetricAlarm>| {
            previous = current.clone();
            let mut alarm = checked.clone();
            if let Some(old) = current {
                alarm.state_value = old.state_value;
                alarm.state_reason = old.state_reason;
                alarm.state_reason_data = old.state_reason_data;
                alarm.state_updated_ms = old.state_updated_ms;
                alarm.state_transitioned_ms = old.state_transitioned_ms;
                // Tags are set when an alarm is created, and changed with TagResource.
                alarm.tags = old.tags;
            }
            Ok::<_, CloudWatchError>(Change::Put(alarm))
        })?;
        let item = match previous {
            None => history::created(&checked, now_ms),
            Some(old) => history::updated(&old, &checked, now_ms),
        };
        self.store().txn(&[], &[history::put_op(scope, &item)?])?;
        Ok(())
    }

    /// DeleteAlarms: every named alarm must exist (ResourceNotFound names those that do not).
    pub fn delete_alarms(&self, scope: &CwScope, names: &[String]) -> Result<()> {
        if names.len() > 100 {
            return Err(crate::invalid(
                "The collection AlarmNames must not have a size greater than 100.",
            ));
        }
        let mut absent = Vec::new();
        let mut found = Vec::new();
        for name in names {
            match self.alarm(scope, name)? {
                Some(a) => found.push(a),
                None => absent.push(name.clone()),
            }
        }
        if !absent.is_empty() {
            return Err(not_found(&absent.join(", ")));
        }
        let now_ms = crate::now_ms();
        let mut ops = Vec::new();
        for alarm in &found {
            ops.push(Op::Delete {
                key: alarm_key(scope, &alarm.alarm_name),
            });
            ops.push(history::put_op(scope, &history::deleted(alarm, now_ms))?);
        }
        for chunk in ops.chunks(64) {
            self.store().txn(&[], chunk)?;
        }
        Ok(())
    }

    /// One alarm, if it exists.
    pub fn alarm(&self, scope: &CwScope, name: &str) -> Result<Option<MetricAlarm>> {
        Ok(self
            .store()
            .get(&alarm_key(scope, name))?
            .map(|kv| berth_store::decode(&kv))
            .transpose()?)
    }

    /// SetAlarmState: the state until the next evaluation, its actions invoked by the
    /// evaluator's next pass (`run`) as for any transition.
    pub fn set_alarm_state(
        &self,
        scope: &CwScope,
        name: &str,
        state: &str,
        reason: &str,
        reason_data: Option<String>,
    ) -> Result<()> {
        let Some(state) = StateValue::parse(state) else {
            return Err(crate::invalid(format!(
                "1 validation error detected: Value '{state}' at 'stateValue' failed to satisfy constraint: Member must satisfy enum value set: [INSUFFICIENT_DATA, ALARM, OK]"
            )));
        };
        if let Some(data) = &reason_data
            && serde_json::from_str::<serde_json::Value>(data).is_err()
        {
            return Err(CloudWatchError::InvalidFormat(
                "StateReasonData must be a valid JSON object".to_string(),
            ));
        }
        let now_ms = crate::now_ms();
        let transition = run::Transition {
            state,
            reason: reason.to_string(),
            reason_data,
        };
        let changed = self.transition(scope, name, &transition, now_ms)?;
        if changed.is_none() && self.alarm(scope, name)?.is_none() {
            return Err(not_found(name));
        }
        Ok(())
    }

    /// Enable/DisableAlarmActions: alarms that do not exist are passed over.
    pub fn set_alarm_actions(
        &self,
        scope: &CwScope,
        names: &[String],
        enabled: bool,
    ) -> Result<()> {
        if names.len() > 100 {
            return Err(crate::invalid(
                "The collection AlarmNames must not have a size greater than 100.",
            ));
        }
        for name in names {
            update(
                self.store(),
                &alarm_key(scope, name),
                |current: Option<MetricAlarm>| {
                    Ok::<_, CloudWatchError>(match current {
                        Some(mut a) if a.actions_enabled != enabled => {
                            a.actions_enabled = enabled;
                            Change::Put(a)
                        }
                        _ => Change::Keep,
                    })
                },
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
