//! DescribeAlarms, DescribeAlarmsForMetric and DescribeAlarmHistory.

use berth_store::{KeyValue, decode, page_token, scan};

pub use super::history::HistoryItem;
use super::history::scope_prefix;
use super::{MetricAlarm, StateValue, alarms_prefix};
use crate::metric::{Dimension, check_dimensions};
use crate::{CloudWatch, CloudWatchError, CwScope, Result, combination, invalid, missing};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DescribeAlarms {
    pub alarm_names: Vec<String>,
    pub alarm_name_prefix: Option<String>,
    pub alarm_types: Vec<String>,
    pub children_of_alarm_name: Option<String>,
    pub parents_of_alarm_name: Option<String>,
    pub state_value: Option<String>,
    pub action_prefix: Option<String>,
    pub max_records: Option<i64>,
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlarmsPage {
    pub metric_alarms: Vec<MetricAlarm>,
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DescribeAlarmsForMetric {
    pub namespace: Option<String>,
    pub metric_name: Option<String>,
    pub statistic: Option<String>,
    pub extended_statistic: Option<String>,
    pub dimensions: Vec<Dimension>,
    pub period: Option<i64>,
    pub unit: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DescribeAlarmHistory {
    pub alarm_name: Option<String>,
    pub alarm_types: Vec<String>,
    pub history_item_type: Option<String>,
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    pub max_records: Option<i64>,
    pub next_token: Option<String>,
    pub scan_by: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlarmHistoryPage {
    pub items: Vec<HistoryItem>,
    pub next_token: Option<String>,
}

fn max_records(value: Option<i64>, default: i64) -> Result<usize> {
    match value {
        None => Ok(default as usize),
        Some(n) if (1..=100).contains(&n) => Ok(n as usize),
        Some(n) => Err(invalid(format!(
            "The value {n} for parameter MaxRecords is invalid. It must be between 1 and 100."
        ))),
    }
}

fn check_alarm_types(types: &[String]) -> Result<()> {
    for t in types {
        if t != "MetricAlarm" && t != "CompositeAlarm" {
            return Err(invalid(format!(
                "1 validation error detected: Value '[{t}]' at 'alarmTypes' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy enum value set: [CompositeAlarm, MetricAlarm]]"
            )));
        }
    }
    Ok(())
}

fn token(token: &Option<String>, prefix: &str) -> Result<Option<String>> {
    token
        .as_ref()
        .map(|t| {
            page_token::decode(t)
                .filter(|k| k.starts_with(prefix))
                .ok_or_else(|| {
                    CloudWatchError::InvalidNextToken(
                        "The value for parameter NextToken is invalid.".to_string(),
                    )
                })
        })
        .transpose()
}

impl CloudWatch {
    pub fn describe_alarms(&self, scope: &CwScope, r: DescribeAlarms) -> Result<AlarmsPage> {
        let limit = max_records(r.max_records, 50)?;
        check_alarm_types(&r.alarm_types)?;
        if !r.alarm_names.is_empty() && r.alarm_name_prefix.is_some() {
            return Err(combination(
                "The parameters AlarmNames and AlarmNamePrefix are mutually exclusive and you have specified both.",
            ));
        }
        if r.alarm_names.len() > 100 {
            return Err(invalid(
                "The collection AlarmNames must not have a size greater than 100.",
            ));
        }
        let state = match &r.state_value {
            None => None,
            Some(s) => Some(StateValue::parse(s).ok_or_else(|| {
                invalid(format!(
                    "1 validation error detected: Value '{s}' at 'stateValue' failed to satisfy constraint: Member must satisfy enum value set: [INSUFFICIENT_DATA, ALARM, OK]"
                ))
            })?),
        };
        // Composite alarms: Berth has none, so asking only for them (or for an alarm's
        // parents or children) finds no metric alarms.
        let metric_wanted = (r.alarm_types.is_empty()
            || r.alarm_types.iter().any(|t| t == "MetricAlarm"))
            && r.children_of_alarm_name.is_none()
            && r.parents_of_alarm_name.is_none();
        if !metric_wanted {
            return Ok(AlarmsPage::default());
        }
        let prefix = alarms_prefix(scope);
        let scan_prefix = format!(
            "{prefix}{}",
            r.alarm_name_prefix.clone().unwrap_or_default()
        );
        let after = token(&r.next_token, &prefix)?;
        let mut found: Vec<(String, MetricAlarm)> = Vec::new();
        scan(self.store(), &scan_prefix, after, |kv: &KeyValue| {
            let alarm: MetricAlarm = decode(kv)?;
            let wanted = (r.alarm_names.is_empty() || r.alarm_names.contains(&alarm.alarm_name))
                && state.is_none_or(|s| s == alarm.state_value)
                && r.action_prefix.as_ref().is_none_or(|p| {
                    alarm
                        .ok_actions
                        .iter()
                        .chain(&alarm.alarm_actions)
                        .chain(&alarm.insufficient_data_actions)
                        .any(|a| a.starts_with(p.as_str()))
                });
            if wanted {
                found.push((kv.key.clone(), alarm));
            }
            Ok::<_, CloudWatchError>(found.len() <= limit)
        })?;
        let next_token = (found.len() > limit).then(|| {
            found.truncate(limit);
            page_token::encode(&found[limit - 1].0)
        });
        Ok(AlarmsPage {
            metric_alarms: found.into_iter().map(|(_, a)| a).collect(),
            next_token,
        })
    }

    pub fn describe_alarms_for_metric(
        &self,
        scope: &CwScope,
        r: DescribeAlarmsForMetric,
    ) -> Result<Vec<MetricAlarm>> {
        let namespace = r
            .namespace
            .clone()
            .ok_or_else(|| missing("The parameter Namespace is required."))?;
        let metric_name = r
            .metric_name
            .clone()
            .ok_or_else(|| missing("The parameter MetricName is required."))?;
        let dimensions = check_dimensions(r.dimensions.clone(), "Dimensions")?;
        let mut found = Vec::new();
        scan(
            self.store(),
            &alarms_prefix(scope),
            None,
            |kv: &KeyValue| {
                let alarm: MetricAlarm = decode(kv)?;
                let matches = alarm.metric.as_ref().is_some_and(|m| {
                    m.namespace == namespace
                        && m.metric_name == metric_name
                        && (r.dimensions.is_empty() || m.dimensions == dimensions)
                        && r.statistic
                            .as_ref()
                            .is_none_or(|s| m.statistic.as_ref() == Some(s))
                        && r.extended_statistic
                            .as_ref()
                            .is_none_or(|s| m.extended_statistic.as_ref() == Some(s))
                        && r.period.is_none_or(|p| p == m.period)
                        && r.unit.as_ref().is_none_or(|u| m.unit.as_ref() == Some(u))
                });
                if matches {
                    found.push(alarm);
                }
                Ok::<_, CloudWatchError>(true)
            },
        )?;
        Ok(found)
    }

    pub fn describe_alarm_history(
        &self,
        scope: &CwScope,
        r: DescribeAlarmHistory,
    ) -> Result<AlarmHistoryPage> {
        let limit = max_records(r.max_records, 100)?;
        check_alarm_types(&r.alarm_types)?;
        if let Some(t) = &r.history_item_type
            && !matches!(
                t.as_str(),
                "ConfigurationUpdate"
                    | "StateUpdate"
                    | "Action"
                    | "AlarmContributorStateUpdate"
                    | "AlarmContributorAction"
            )
        {
            return Err(invalid(format!(
                "1 validation error detected: Value '{t}' at 'historyItemType' failed to satisfy constraint: Member must satisfy enum value set: [ConfigurationUpdate, StateUpdate, Action, AlarmContributorStateUpdate, AlarmContributorAction]"
            )));
        }
        let descending = match r.scan_by.as_deref() {
            None | Some("TimestampDescending") => true,
            Some("TimestampAscending") => false,
            Some(other) => {
                return Err(invalid(format!(
                    "The value {other} for parameter ScanBy is invalid."
                )));
            }
        };
        let prefix = scope_prefix(scope);
        let after = token(&r.next_token, &prefix)?;
        let metric_wanted =
            r.alarm_types.is_empty() || r.alarm_types.iter().any(|t| t == "MetricAlarm");
        let mut found: Vec<(String, HistoryItem)> = Vec::new();
        if metric_wanted {
            scan(self.store(), &prefix, None, |kv: &KeyValue| {
                let item: HistoryItem = decode(kv)?;
                let wanted = r.alarm_name.as_ref().is_none_or(|n| *n == item.alarm_name)
                    && r.history_item_type
                        .as_ref()
                        .is_none_or(|t| *t == item.history_item_type)
                    && r.start_ms.is_none_or(|s| item.timestamp_ms >= s)
                    && r.end_ms.is_none_or(|e| item.timestamp_ms <= e);
                if wanted {
                    found.push((kv.key.clone(), item));
                }
                Ok::<_, CloudWatchError>(true)
            })?;
        }
        if descending {
            found.reverse();
        }
        if let Some(after) = after {
            let position = found.iter().position(|(k, _)| *k == after);
            found.drain(..position.map_or(0, |p| p + 1));
        }
        let next_token = (found.len() > limit).then(|| {
            found.truncate(limit);
            page_token::encode(&found[limit - 1].0)
        });
        Ok(AlarmHistoryPage {
            items: found.into_iter().map(|(_, i)| i).collect(),
            next_token,
        })
    }
}
