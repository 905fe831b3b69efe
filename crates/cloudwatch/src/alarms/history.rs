//! Alarm history items as CloudWatch writes them: configuration updates (created,
//! updated, deleted), state updates and actions, each a record under
//! `cloudwatch/alarm-history/{account}/{region}/{timestamp-ms:013}-{unique}`, kept 30 days.

use std::sync::atomic::{AtomicU64, Ordering};

use berth_store::{Op, encode};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::evaluate::timestamp;
use super::{HISTORY_ROOT, MetricAlarm, StateValue};
use crate::{CwScope, Result};

/// How long history is kept.
pub const HISTORY_RETENTION_MS: i64 = 30 * 24 * 3600 * 1000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryItem {
    pub alarm_name: String,
    pub alarm_type: String,
    pub timestamp_ms: i64,
    /// ConfigurationUpdate, StateUpdate or Action.
    pub history_item_type: String,
    pub history_summary: String,
    pub history_data: String,
}

pub(crate) fn scope_prefix(scope: &CwScope) -> String {
    format!("{HISTORY_ROOT}{}/{}/", scope.account, scope.region)
}

/// The operation writing `item`.
/// The operation writing `item`. Items of one millisecond keep the order they were
/// written in (a counter), and replicas' never collide (a random part).
pub(crate) fn put_op(scope: &CwScope, item: &HistoryItem) -> Result<Op> {
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    let sequence = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    let unique = uuid::Uuid::new_v4().simple().to_string();
    Ok(Op::put(
        format!(
            "{}{:013}-{sequence:012}{}",
            scope_prefix(scope),
            item.timestamp_ms.max(0),
            &unique[..8]
        ),
        encode(item),
    ))
}

/// The configuration as history data shows it.
fn configuration(alarm: &MetricAlarm) -> serde_json::Value {
    let mut c = json!({
        "alarmName": alarm.alarm_name,
        "actionsEnabled": alarm.actions_enabled,
        "okactions": alarm.ok_actions,
        "alarmActions": alarm.alarm_actions,
        "insufficientDataActions": alarm.insufficient_data_actions,
        "evaluationPeriods": alarm.evaluation_periods,
        "threshold": alarm.threshold,
        "comparisonOperator": alarm.comparison_operator.as_str(),
        "period": alarm.period(),
        "timeout": alarm.period() * alarm.evaluation_periods,
    });
    if let Some(d) = &alarm.alarm_description {
        c["alarmDescription"] = json!(d);
    }
    if let Some(d) = alarm.datapoints_to_alarm {
        c["datapointsToAlarm"] = json!(d);
    }
    if let Some(t) = alarm.treat_missing_data {
        c["treatMissingData"] = json!(t.as_str());
    }
    if let Some(m) = &alarm.metric {
        c["namespace"] = json!(m.namespace);
        c["metricName"] = json!(m.metric_name);
        c["dimensions"] = json!(
            m.dimensions
                .iter()
                .map(|d| json!({"name": d.name, "value": d.value}))
                .collect::<Vec<_>>()
        );
        if let Some(s) = &m.statistic {
            c["statistic"] = json!(s.to_uppercase());
        }
        if let Some(s) = &m.extended_statistic {
            c["extendedStatistic"] = json!(s);
        }
        if let Some(u) = &m.unit {
            c["unit"] = json!(u);
        }
    } else {
        c["metrics"] = serde_json::to_value(&alarm.metrics).unwrap_or_default();
    }
    c
}

fn item(
    alarm: &str,
    now_ms: i64,
    kind: &str,
    summary: String,
    data: serde_json::Value,
) -> HistoryItem {
    HistoryItem {
        alarm_name: alarm.to_string(),
        alarm_type: "MetricAlarm".to_string(),
        timestamp_ms: now_ms,
        history_item_type: kind.to_string(),
        history_summary: summary,
        history_data: data.to_string(),
    }
}

pub(crate) fn created(alarm: &MetricAlarm, now_ms: i64) -> HistoryItem {
    item(
        &alarm.alarm_name,
        now_ms,
        "ConfigurationUpdate",
        format!("Alarm \"{}\" created", alarm.alarm_name),
        json!({"type": "Create", "version": "1.0", "createdAlarm": configuration(alarm)}),
    )
}

pub(crate) fn updated(old: &MetricAlarm, new: &MetricAlarm, now_ms: i64) -> HistoryItem {
    item(
        &new.alarm_name,
        now_ms,
        "ConfigurationUpdate",
        format!("Alarm \"{}\" updated", new.alarm_name),
        json!({
            "type": "Update",
            "version": "1.0",
            "originalAlarm": configuration(old),
            "updatedAlarm": configuration(new),
        }),
    )
}

pub(crate) fn deleted(alarm: &MetricAlarm, now_ms: i64) -> HistoryItem {
    item(
        &alarm.alarm_name,
        now_ms,
        "ConfigurationUpdate",
        format!("Alarm \"{}\" deleted", alarm.alarm_name),
        json!({"type": "Delete", "version": "1.0", "deletedAlarm": configuration(alarm)}),
    )
}

pub(crate) fn state_updated(old: &MetricAlarm, new: &MetricAlarm, now_ms: i64) -> HistoryItem {
    let mut new_state = json!({
        "stateValue": new.state_value.as_str(),
        "stateReason": new.state_reason,
    });
    if let Some(data) = new
        .state_reason_data
        .as_deref()
        .and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok())
    {
        new_state["stateReasonData"] = data;
    }
    item(
        &new.alarm_name,
        now_ms,
        "StateUpdate",
        format!(
            "Alarm updated from {} to {}",
            old.state_value.as_str(),
            new.state_value.as_str()
        ),
        json!({
            "version": "1.0",
            "oldState": {"stateValue": old.state_value.as_str(), "stateReason": old.state_reason},
            "newState": new_state,
        }),
    )
}

pub(crate) fn action(
    alarm: &str,
    state: StateValue,
    action: &str,
    outcome: &std::result::Result<String, String>,
    now_ms: i64,
) -> HistoryItem {
    let (summary, data) = match outcome {
        Ok(message) => (
            format!("Successfully executed action {action}"),
            json!({
                "actionState": "Succeeded",
                "stateUpdateTimestamp": now_ms,
                "notificationResource": action,
                "alarmState": state.as_str(),
                "publishedMessage": message,
                "timestamp": timestamp(now_ms),
            }),
        ),
        Err(error) => (
            format!("Failed to execute action {action}. Received error: \"{error}\""),
            json!({
                "actionState": "Failed",
                "stateUpdateTimestamp": now_ms,
                "notificationResource": action,
                "alarmState": state.as_str(),
                "error": error,
                "timestamp": timestamp(now_ms),
            }),
        ),
    };
    item(alarm, now_ms, "Action", summary, data)
}
