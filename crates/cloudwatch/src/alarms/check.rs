//! PutMetricAlarm's checks, CloudWatch's messages: the request becomes the alarm it
//! configures (state INSUFFICIENT_DATA until evaluated).

use super::{
    AlarmMetric, AlarmQuery, ComparisonOperator, MetricAlarm, PutMetricAlarm, StateValue,
    TreatMissingData, alarm_arn,
};
use crate::aggregate::Statistic;
use crate::metric::{check_dimensions, check_length, check_namespace, check_unit};
use crate::{CwScope, Result, combination, invalid, missing};

/// At most this many actions per state.
const MAX_ACTIONS: usize = 5;
/// At most this many queries in a metric-math alarm.
const MAX_METRICS: usize = 10;

fn required<T>(value: Option<T>, param: &str) -> Result<T> {
    value.ok_or_else(|| missing(format!("The parameter {param} is required.")))
}

/// An alarm's period: 10, 20 or 30 seconds (high resolution), or a multiple of 60.
fn check_alarm_period(period: i64, param: &str) -> Result<()> {
    if period >= 10 && (matches!(period, 10 | 20 | 30) || period % 60 == 0) {
        Ok(())
    } else {
        Err(invalid(format!(
            "The parameter {param} must be 10, 20, 30, or a multiple of 60."
        )))
    }
}

fn check_actions(actions: &[String], param: &str) -> Result<()> {
    if actions.len() > MAX_ACTIONS {
        return Err(invalid(format!(
            "The collection {param} must not have a size greater than {MAX_ACTIONS}."
        )));
    }
    for action in actions {
        let parts: Vec<&str> = action.splitn(6, ':').collect();
        if parts.len() < 6 || parts[0] != "arn" || parts[2].is_empty() {
            return Err(invalid(format!("Invalid arn syntax: {action}")));
        }
    }
    Ok(())
}

fn check_metric(r: &PutMetricAlarm) -> Result<AlarmMetric> {
    let namespace = required(r.namespace.clone(), "Namespace")?;
    check_namespace(&namespace)?;
    let metric_name = required(r.metric_name.clone(), "MetricName")?;
    check_length(&metric_name, "MetricName", 255)?;
    let dimensions = check_dimensions(r.dimensions.clone(), "Dimensions")?;
    let period = required(r.period, "Period")?;
    check_alarm_period(period, "Period")?;
    match (&r.statistic, &r.extended_statistic) {
        (Some(_), Some(_)) => {
            return Err(combination(
                "The parameters Statistic and ExtendedStatistic are mutually exclusive and you have specified both.",
            ));
        }
        (None, None) => {
            return Err(missing(
                "One of the parameters Statistic or ExtendedStatistic must be specified.",
            ));
        }
        (Some(s), None) if Statistic::parse_basic(s).is_none() => {
            return Err(invalid(format!(
                "1 validation error detected: Value '{s}' at 'statistic' failed to satisfy constraint: Member must satisfy enum value set: [Maximum, SampleCount, Sum, Minimum, Average]"
            )));
        }
        (None, Some(e)) if Statistic::parse_percentile(e).is_none() => {
            return Err(invalid(format!(
                "The value {e} for parameter ExtendedStatistic is invalid."
            )));
        }
        _ => {}
    }
    if let Some(unit) = &r.unit {
        check_unit(unit, "Unit")?;
    }
    Ok(AlarmMetric {
        namespace,
        metric_name,
        dimensions,
        statistic: r.statistic.clone(),
        extended_statistic: r.extended_statistic.clone(),
        period,
        unit: r.unit.clone(),
    })
}

fn check_metrics(r: &PutMetricAlarm) -> Result<Vec<AlarmQuery>> {
    if r.metrics.len() > MAX_METRICS {
        return Err(invalid(format!(
            "The collection Metrics must not have a size greater than {MAX_METRICS}."
        )));
    }
    let returning = r
        .metrics
        .iter()
        .filter(|q| q.return_data != Some(false))
        .count();
    if returning != 1 {
        return Err(invalid(
            "Exactly one element of the metrics list should return data.",
        ));
    }
    for (i, q) in r.metrics.iter().enumerate() {
        let at = format!("Metrics.member.{}", i + 1);
        match (&q.metric_stat, &q.expression) {
            (Some(_), Some(_)) => {
                return Err(combination(format!(
                    "The parameters {at}.MetricStat and {at}.Expression are mutually exclusive and you have specified both."
                )));
            }
            (None, None) => {
                return Err(missing(format!(
                    "One of the parameters {at}.MetricStat or {at}.Expression must be specified."
                )));
            }
            (Some(stat), None) => {
                check_alarm_period(stat.period, &format!("{at}.MetricStat.Period"))?;
                Statistic::parse(&stat.stat, &format!("{at}.MetricStat.Stat"))?;
            }
            (None, Some(_)) => {}
        }
    }
    Ok(r.metrics.iter().map(AlarmQuery::from_query).collect())
}

/// The alarm a PutMetricAlarm configures, as created now.
pub(super) fn check(scope: &CwScope, r: PutMetricAlarm, now_ms: i64) -> Result<MetricAlarm> {
    let alarm_name = required(r.alarm_name.clone(), "AlarmName")?;
    check_length(&alarm_name, "AlarmName", 255)?;
    if let Some(d) = &r.alarm_description
        && d.chars().count() > 1024
    {
        return Err(invalid(
            "The parameter AlarmDescription must be shorter than 1025 characters.",
        ));
    }
    let evaluation_periods = required(r.evaluation_periods, "EvaluationPeriods")?;
    if evaluation_periods < 1 {
        return Err(invalid(format!(
            "The value {evaluation_periods} for parameter EvaluationPeriods is invalid. It must be at least 1."
        )));
    }
    if let Some(d) = r.datapoints_to_alarm
        && (d < 1 || d > evaluation_periods)
    {
        return Err(invalid(format!(
            "DatapointsToAlarm ({d}) must be between 1 and EvaluationPeriods ({evaluation_periods})."
        )));
    }
    let operator = required(r.comparison_operator.clone(), "ComparisonOperator")?;
    let comparison_operator = match ComparisonOperator::parse(&operator) {
        Some(o) => o,
        None if operator.contains("Band")
            || operator.contains("UpperThreshold")
            || operator.contains("LowerThreshold") =>
        {
            return Err(invalid(format!(
                "The ComparisonOperator {operator} compares with an anomaly detection band, which Berth does not have."
            )));
        }
        None => {
            return Err(invalid(format!(
                "1 validation error detected: Value '{operator}' at 'comparisonOperator' failed to satisfy constraint: Member must satisfy enum value set: [GreaterThanOrEqualToThreshold, GreaterThanThreshold, LessThanThreshold, LessThanOrEqualToThreshold, LessThanLowerOrGreaterThanUpperThreshold, LessThanLowerThreshold, GreaterThanUpperThreshold]"
            )));
        }
    };
    if r.threshold_metric_id.is_some() {
        return Err(invalid(
            "ThresholdMetricId names an anomaly detection band, which Berth does not have.",
        ));
    }
    let threshold = required(r.threshold, "Threshold")?;
    let treat_missing_data = match &r.treat_missing_data {
        None => None,
        Some(t) => Some(TreatMissingData::parse(t).ok_or_else(|| {
            invalid(format!(
                "The value {t} for parameter TreatMissingData is invalid."
            ))
        })?),
    };
    if let Some(e) = &r.evaluate_low_sample_count_percentile
        && e != "evaluate"
        && e != "ignore"
    {
        return Err(invalid(format!(
            "The value {e} for parameter EvaluateLowSampleCountPercentile is invalid."
        )));
    }
    check_actions(&r.ok_actions, "OKActions")?;
    check_actions(&r.alarm_actions, "AlarmActions")?;
    check_actions(&r.insufficient_data_actions, "InsufficientDataActions")?;
    let single = r.metric_name.is_some() || r.namespace.is_some() || r.statistic.is_some();
    let (metric, metrics) = match (single, r.metrics.is_empty()) {
        (true, false) => {
            return Err(combination(
                "The parameters MetricName and Metrics are mutually exclusive and you have specified both.",
            ));
        }
        (false, true) => {
            return Err(missing(
                "One of the parameters MetricName or Metrics must be specified.",
            ));
        }
        (true, true) => (Some(check_metric(&r)?), Vec::new()),
        (false, false) => (None, check_metrics(&r)?),
    };
    super::tags::check_tags(&r.tags)?;
    let alarm = MetricAlarm {
        alarm_arn: alarm_arn(scope, &alarm_name),
        alarm_name,
        alarm_description: r.alarm_description,
        configuration_updated_ms: now_ms,
        actions_enabled: r.actions_enabled.unwrap_or(true),
        ok_actions: r.ok_actions,
        alarm_actions: r.alarm_actions,
        insufficient_data_actions: r.insufficient_data_actions,
        metric,
        metrics,
        evaluation_periods,
        datapoints_to_alarm: r.datapoints_to_alarm,
        threshold,
        comparison_operator,
        treat_missing_data,
        evaluate_low_sample_count_percentile: r.evaluate_low_sample_count_percentile,
        state_value: StateValue::InsufficientData,
        state_reason: "Unchecked: Initial alarm creation".to_string(),
        state_reason_data: None,
        state_updated_ms: now_ms,
        state_transitioned_ms: now_ms,
        tags: r.tags,
        actions_pending: false,
    };
    let period = alarm.period();
    let span = period * evaluation_periods;
    let limit = if period >= 3600 { 7 * 86_400 } else { 86_400 };
    if span > limit {
        return Err(invalid(format!(
            "The evaluation period of the alarm (Period x EvaluationPeriods = {span} seconds) must not exceed {limit} seconds."
        )));
    }
    Ok(alarm)
}
