//! An alarm's evaluation, pure: its configuration and the datapoints of its evaluation
//! range in, the state it should be in (with CloudWatch's reason and reason data) out.
//!
//! As CloudWatch does, the evaluation range is longer than the evaluation periods (here
//! two periods longer): with at least `EvaluationPeriods` real datapoints in it, the most
//! recent of them decide, whatever the missing-data treatment; with none, the treatment
//! decides (`missing`: INSUFFICIENT_DATA, `ignore`: the state stays, `breaching`: ALARM,
//! `notBreaching`: OK); with some, the missing ones are filled in as the treatment says,
//! as few as needed (`missing` and `ignore`: neither breaching nor not, so the real
//! datapoints decide, ALARM needing as many breaching as are not filled in, at least one).

use super::{MetricAlarm, StateValue, TreatMissingData};

/// Periods beyond `EvaluationPeriods` the evaluation range reaches back.
pub const EXTRA_PERIODS: i64 = 2;

/// A state an evaluation decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluated {
    pub state: StateValue,
    pub reason: String,
    /// The reason data (JSON text) DescribeAlarms shows.
    pub reason_data: String,
    /// The datapoints evaluated, newest first: (timestamp in ms, value).
    pub datapoints: Vec<(i64, f64)>,
}

/// Evaluates `alarm` over `points` (its datapoints in the evaluation range ending at
/// `end_ms`, the end of the last complete period; any order) at `query_ms`. `None`: the
/// alarm keeps its state (`ignore` with no data).
pub fn evaluate(
    alarm: &MetricAlarm,
    points: &[(i64, f64)],
    end_ms: i64,
    query_ms: i64,
) -> Option<Evaluated> {
    let n = alarm.evaluation_periods.max(1) as usize;
    let m = alarm.datapoints_needed().clamp(1, n as i64) as usize;
    let period_ms = alarm.period() * 1000;
    let start_ms = end_ms - (n as i64 + EXTRA_PERIODS) * period_ms;
    let mut real: Vec<(i64, f64)> = points
        .iter()
        .copied()
        .filter(|(t, v)| *t >= start_ms && *t < end_ms && v.is_finite())
        .collect();
    real.sort_by_key(|p| std::cmp::Reverse(p.0));
    let op = alarm.comparison_operator;
    let breaches = |v: f64| op.breaches(v, alarm.threshold);
    let window: Vec<(i64, f64)> = real.iter().copied().take(n).collect();
    let breaching = window.iter().filter(|(_, v)| breaches(*v)).count();
    let fills = n - window.len();
    let treat = alarm.treat_missing();
    let state = if window.is_empty() {
        match treat {
            TreatMissingData::Missing => StateValue::InsufficientData,
            TreatMissingData::Ignore => return None,
            TreatMissingData::Breaching => StateValue::Alarm,
            TreatMissingData::NotBreaching => StateValue::Ok,
        }
    } else {
        let counted = match treat {
            TreatMissingData::Breaching => breaching + fills,
            _ => breaching,
        };
        let needed = match treat {
            TreatMissingData::Missing | TreatMissingData::Ignore => m.saturating_sub(fills).max(1),
            _ => m,
        };
        if counted >= needed {
            StateValue::Alarm
        } else {
            StateValue::Ok
        }
    };
    let reason = reason(alarm, state, &window, breaching, n, m, treat);
    let reason_data = reason_data(alarm, &window, start_ms, query_ms);
    Some(Evaluated {
        state,
        reason,
        reason_data,
        datapoints: window,
    })
}

fn reason(
    alarm: &MetricAlarm,
    state: StateValue,
    window: &[(i64, f64)],
    breaching: usize,
    n: usize,
    m: usize,
    treat: TreatMissingData,
) -> String {
    let words = alarm.comparison_operator.words();
    let threshold = number(alarm.threshold);
    if window.is_empty() {
        return match state {
            StateValue::InsufficientData => format!(
                "Insufficient Data: {n} datapoint{} unknown.",
                if n == 1 { " was" } else { "s were" }
            ),
            _ => format!(
                "Threshold Crossed: no datapoints were received for {n} period{} and {n} missing datapoint{} treated as [{}].",
                plural(n),
                if n == 1 { " was" } else { "s were" },
                if treat == TreatMissingData::Breaching {
                    "Breaching"
                } else {
                    "NonBreaching"
                }
            ),
        };
    }
    let breaches = |v: f64| alarm.comparison_operator.breaches(v, alarm.threshold);
    if state == StateValue::Alarm {
        let listed: Vec<(i64, f64)> = window
            .iter()
            .copied()
            .filter(|(_, v)| breaches(*v))
            .collect();
        if breaching == window.len() && m == n {
            return format!(
                "Threshold Crossed: {} datapoint{} [{}] {} {words} the threshold ({threshold}).",
                listed.len(),
                plural(listed.len()),
                list(&listed),
                if listed.len() == 1 { "was" } else { "were" },
            );
        }
        return format!(
            "Threshold Crossed: {breaching} out of the last {} datapoints [{}] were {words} the threshold ({threshold}) (minimum {m} datapoint{} for {} -> ALARM transition).",
            window.len(),
            list(&listed),
            plural(m),
            alarm.state_value.as_str(),
        );
    }
    format!(
        "Threshold Crossed: {} datapoint{} [{}] {} not {words} the threshold ({threshold}).",
        window.len(),
        plural(window.len()),
        list(window),
        if window.len() == 1 { "was" } else { "were" },
    )
}

fn reason_data(alarm: &MetricAlarm, window: &[(i64, f64)], start_ms: i64, query_ms: i64) -> String {
    let mut data = serde_json::json!({
        "version": "1.0",
        "queryDate": timestamp(query_ms),
        "startDate": timestamp(start_ms),
        "period": alarm.period(),
        "recentDatapoints": window.iter().rev().map(|(_, v)| *v).collect::<Vec<_>>(),
        "threshold": alarm.threshold,
        "evaluatedDatapoints": window
            .iter()
            .map(|(t, v)| serde_json::json!({"timestamp": timestamp(*t), "value": v}))
            .collect::<Vec<_>>(),
    });
    if let Some(metric) = &alarm.metric {
        let key = if metric.statistic.is_some() {
            "statistic"
        } else {
            "extendedStatistic"
        };
        let stat = metric
            .statistic
            .clone()
            .or(metric.extended_statistic.clone());
        data[key] = serde_json::json!(stat);
        if let Some(unit) = &metric.unit {
            data["unit"] = serde_json::json!(unit);
        }
    }
    data.to_string()
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// A value as CloudWatch's reasons print it (`75.0`, `0.5`).
pub(crate) fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e7 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

/// `75.0 (07/12/26 13:40:00), 80.0 (07/12/26 13:41:00)`: datapoints as reasons list them.
fn list(points: &[(i64, f64)]) -> String {
    points
        .iter()
        .map(|(t, v)| format!("{} ({})", number(*v), short_date(*t)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn civil(ms: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// `dd/MM/yy HH:mm:ss` in UTC.
fn short_date(ms: i64) -> String {
    let t = civil(ms);
    format!(
        "{:02}/{:02}/{:02} {:02}:{:02}:{:02}",
        t.day(),
        u8::from(t.month()),
        t.year().rem_euclid(100),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// `2026-12-07T13:40:00.000+0000`, the form of reason data's dates.
pub(crate) fn timestamp(ms: i64) -> String {
    let t = civil(ms);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}+0000",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}
