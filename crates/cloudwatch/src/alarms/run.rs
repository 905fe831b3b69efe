//! The evaluator's pass (on the leader): each alarm evaluated when due, every minute for
//! periods of a minute or more and every 10 seconds for high-resolution ones, over its
//! complete periods; a new state written with its history item under a compare-and-swap
//! and marked as having actions pending, which are then invoked and the mark cleared.
//! Auto Scaling actions are invoked again once a minute while the alarm stays in their
//! state ("regardless of the configured period", as CloudWatch does: a 10-second alarm
//! does not invoke them every 10 seconds); other actions once per transition.

use std::collections::HashMap;

use berth_store::{Change, KeyValue, Update, decode, scan, update};

use super::evaluate::{EXTRA_PERIODS, evaluate};
use super::history::{self, HISTORY_RETENTION_MS};
use super::{ALARM_ROOT, ComparisonOperator, HISTORY_ROOT, MetricAlarm, StateValue, alarm_key};
use crate::data::GetMetricData;
use crate::{CloudWatch, CloudWatchError, CwScope, Result};

/// What an action is told when its alarm fires.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmFired {
    pub alarm_name: String,
    pub alarm_arn: String,
    pub state: StateValue,
    pub reason: String,
    pub threshold: f64,
    pub comparison_operator: ComparisonOperator,
    /// The datapoints evaluated, newest first (timestamp in ms, value).
    pub datapoints: Vec<(i64, f64)>,
    pub at_ms: i64,
}

impl AlarmFired {
    /// The newest datapoint's value.
    pub fn value(&self) -> Option<f64> {
        self.datapoints.first().map(|(_, v)| *v)
    }
}

/// Where alarm actions go (the server routes them by ARN to the services that act).
pub trait AlarmActions: Send + Sync {
    /// Invokes `action` for `fired`: a message for the history, or the error.
    fn invoke(
        &self,
        scope: &CwScope,
        action: &str,
        fired: &AlarmFired,
    ) -> std::result::Result<String, String>;

    /// Whether the action is invoked again at every evaluation while its alarm stays in the
    /// state (Auto Scaling's policies are).
    fn repeats(&self, action: &str) -> bool {
        action.starts_with("arn:aws:autoscaling:")
    }
}

/// No action can be carried out (each fails, naming its service).
pub struct NoActions;

impl AlarmActions for NoActions {
    fn invoke(
        &self,
        _: &CwScope,
        action: &str,
        _: &AlarmFired,
    ) -> std::result::Result<String, String> {
        let service = action.split(':').nth(2).unwrap_or_default();
        Err(format!("Berth does not carry out {service} actions"))
    }
}

/// When each alarm was last evaluated (the leader's, for its term).
#[derive(Debug, Default)]
pub struct AlarmSchedule {
    slots: HashMap<String, i64>,
    /// When each alarm last invoked its actions (ms), for the once-a-minute repeats.
    invoked: HashMap<String, i64>,
}

/// How often an alarm that stays in a state invokes its Auto Scaling actions again.
pub const REPEAT_MS: i64 = 60_000;

/// Seconds between evaluations, and how long after a boundary an evaluation waits for the
/// period's data to be written.
fn cadence(period: i64) -> (i64, i64) {
    if period < 60 {
        (10.min(period), 2)
    } else {
        (60, 5)
    }
}

pub(crate) struct Transition {
    pub state: StateValue,
    pub reason: String,
    pub reason_data: Option<String>,
}

fn scope_of(key: &str) -> Option<CwScope> {
    let mut parts = key.strip_prefix(ALARM_ROOT)?.splitn(3, '/');
    Some(CwScope::new(parts.next()?, parts.next()?))
}

impl CloudWatch {
    /// Moves an alarm to `t.state` (nothing is written when it is in it already): the
    /// state, its history item and the actions-pending mark in one transaction. The alarm
    /// before and after, when it changed.
    pub(crate) fn transition(
        &self,
        scope: &CwScope,
        name: &str,
        t: &Transition,
        now_ms: i64,
    ) -> Result<Option<(MetricAlarm, MetricAlarm)>> {
        let mut changed = None;
        update(
            self.store(),
            &alarm_key(scope, name),
            |current: Option<MetricAlarm>| {
                changed = None;
                let Some(old) = current else {
                    return Ok::<_, CloudWatchError>(Update::from(Change::Keep));
                };
                if old.state_value == t.state {
                    return Ok(Update::from(Change::Keep));
                }
                let mut new = old.clone();
                new.state_value = t.state;
                new.state_reason = t.reason.clone();
                new.state_reason_data = t.reason_data.clone();
                new.state_updated_ms = now_ms;
                new.state_transitioned_ms = now_ms;
                new.actions_pending = true;
                let item = history::state_updated(&old, &new, now_ms);
                changed = Some((old, new.clone()));
                Ok(Update::from(Change::Put(new)).also(history::put_op(scope, &item)?))
            },
        )?;
        Ok(changed)
    }

    /// One pass of the evaluator at `now_ms`: the alarms due evaluated, transitions written,
    /// actions invoked. The number of transitions.
    pub fn evaluate_alarms(
        &self,
        now_ms: i64,
        actions: &dyn AlarmActions,
        schedule: &mut AlarmSchedule,
    ) -> Result<usize> {
        let mut alarms: Vec<(CwScope, MetricAlarm)> = Vec::new();
        scan(self.store(), ALARM_ROOT, None, |kv: &KeyValue| {
            if let Some(scope) = scope_of(&kv.key) {
                alarms.push((scope, decode(kv)?));
            }
            Ok::<_, CloudWatchError>(true)
        })?;
        let now_s = now_ms.div_euclid(1000);
        let mut transitions = 0;
        let mut seen = HashMap::new();
        for (scope, alarm) in alarms {
            let period = alarm.period().max(1);
            let (every, lag) = cadence(period);
            let slot = (now_s - lag).div_euclid(every);
            let due = schedule.slots.get(&alarm.alarm_arn) != Some(&slot);
            seen.insert(alarm.alarm_arn.clone(), slot);
            let mut alarm = alarm;
            let mut datapoints = Vec::new();
            if due {
                let end_ms = (now_s - lag).div_euclid(period) * period * 1000;
                let points = match self.alarm_points(&scope, &alarm, end_ms, now_ms) {
                    Ok(points) => points,
                    Err(e) => {
                        tracing::warn!(alarm = %alarm.alarm_name, error = %e, "alarm not evaluated");
                        continue;
                    }
                };
                if let Some(e) = evaluate(&alarm, &points, end_ms, now_ms) {
                    datapoints = e.datapoints.clone();
                    let t = Transition {
                        state: e.state,
                        reason: e.reason,
                        reason_data: Some(e.reason_data),
                    };
                    if let Some((_, new)) =
                        self.transition(&scope, &alarm.alarm_name, &t, now_ms)?
                    {
                        transitions += 1;
                        alarm = new;
                    }
                }
            }
            let last = schedule
                .invoked
                .get(&alarm.alarm_arn)
                .copied()
                .unwrap_or(0)
                .max(alarm.state_transitioned_ms);
            if alarm.actions_pending {
                self.run_pending(&scope, &alarm, &datapoints, now_ms, actions)?;
                schedule.invoked.insert(alarm.alarm_arn.clone(), now_ms);
            } else if due && alarm.actions_enabled && now_ms - last >= REPEAT_MS {
                schedule.invoked.insert(alarm.alarm_arn.clone(), now_ms);
                // Auto Scaling actions again, while the alarm stays in their state.
                let again: Vec<String> = alarm
                    .actions_for(alarm.state_value)
                    .iter()
                    .filter(|a| actions.repeats(a))
                    .cloned()
                    .collect();
                self.invoke(
                    &scope,
                    &alarm,
                    &again,
                    alarm.state_value,
                    &datapoints,
                    now_ms,
                    actions,
                )?;
            }
        }
        schedule.invoked.retain(|arn, _| seen.contains_key(arn));
        schedule.slots = seen;
        Ok(transitions)
    }

    /// The datapoints of an alarm's evaluation range ending at `end_ms`.
    fn alarm_points(
        &self,
        scope: &CwScope,
        alarm: &MetricAlarm,
        end_ms: i64,
        now_ms: i64,
    ) -> Result<Vec<(i64, f64)>> {
        let period_ms = alarm.period() * 1000;
        let start_ms = end_ms - (alarm.evaluation_periods + EXTRA_PERIODS) * period_ms;
        let (queries, id) = alarm.queries();
        let out = self.get_metric_data_at(
            scope,
            GetMetricData {
                queries,
                start_ms,
                end_ms,
                next_token: None,
                scan_by: Some("TimestampAscending".to_string()),
                max_datapoints: None,
            },
            now_ms,
        )?;
        Ok(out
            .results
            .into_iter()
            .find(|r| r.id == id)
            .map(|r| r.timestamps_ms.into_iter().zip(r.values).collect())
            .unwrap_or_default())
    }

    /// Invokes the actions of the alarm's last transition (when enabled) and clears the
    /// mark, unless the alarm changed again meanwhile (the next pass takes that one).
    fn run_pending(
        &self,
        scope: &CwScope,
        alarm: &MetricAlarm,
        datapoints: &[(i64, f64)],
        now_ms: i64,
        actions: &dyn AlarmActions,
    ) -> Result<()> {
        if alarm.actions_enabled {
            let all = alarm.actions_for(alarm.state_value).to_vec();
            self.invoke(
                scope,
                alarm,
                &all,
                alarm.state_value,
                datapoints,
                now_ms,
                actions,
            )?;
        }
        let transitioned = alarm.state_transitioned_ms;
        update(
            self.store(),
            &alarm_key(scope, &alarm.alarm_name),
            |current: Option<MetricAlarm>| {
                Ok::<_, CloudWatchError>(match current {
                    Some(mut a) if a.actions_pending && a.state_transitioned_ms == transitioned => {
                        a.actions_pending = false;
                        Change::Put(a)
                    }
                    _ => Change::Keep,
                })
            },
        )?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn invoke(
        &self,
        scope: &CwScope,
        alarm: &MetricAlarm,
        chosen: &[String],
        state: StateValue,
        datapoints: &[(i64, f64)],
        now_ms: i64,
        actions: &dyn AlarmActions,
    ) -> Result<()> {
        if chosen.is_empty() {
            return Ok(());
        }
        let fired = AlarmFired {
            alarm_name: alarm.alarm_name.clone(),
            alarm_arn: alarm.alarm_arn.clone(),
            state,
            reason: alarm.state_reason.clone(),
            threshold: alarm.threshold,
            comparison_operator: alarm.comparison_operator,
            datapoints: datapoints.to_vec(),
            at_ms: now_ms,
        };
        let mut ops = Vec::new();
        for action in chosen {
            let outcome = actions.invoke(scope, action, &fired);
            ops.push(history::put_op(
                scope,
                &history::action(&alarm.alarm_name, state, action, &outcome, now_ms),
            )?);
        }
        self.store().txn(&[], &ops)?;
        Ok(())
    }

    /// Deletes alarm history older than CloudWatch keeps it (30 days). Items deleted.
    pub fn prune_alarm_history(&self, now_ms: i64) -> Result<usize> {
        let cutoff = now_ms - HISTORY_RETENTION_MS;
        let mut old = Vec::new();
        scan(self.store(), HISTORY_ROOT, None, |kv: &KeyValue| {
            let at = kv
                .key
                .rsplit('/')
                .next()
                .and_then(|last| last.split('-').next())
                .and_then(|ms| ms.parse::<i64>().ok());
            if at.is_some_and(|at| at < cutoff) {
                old.push(berth_store::Op::delete(kv.key.clone()));
            }
            Ok::<_, CloudWatchError>(true)
        })?;
        for chunk in old.chunks(128) {
            self.store().txn(&[], chunk)?;
        }
        Ok(old.len())
    }
}
