//! Metric alarms' operations: requests from documents, answers as documents.

use berth_cloudwatch::alarms::{
    AlarmHistoryPage, DescribeAlarmHistory, DescribeAlarms, DescribeAlarmsForMetric,
};
use berth_cloudwatch::{MetricAlarm, PutMetricAlarm};

use super::data::query;
use super::metrics::{dimensions, dimensions_answer, required, strings};
use crate::protocol::AwsError;
use crate::protocol::document::{Document, Members};

pub(super) fn parse_put(doc: &Document) -> Result<PutMetricAlarm, AwsError> {
    Ok(PutMetricAlarm {
        alarm_name: doc.string("AlarmName")?,
        alarm_description: doc.string("AlarmDescription")?,
        actions_enabled: doc.boolean("ActionsEnabled")?,
        ok_actions: strings(doc, "OKActions")?,
        alarm_actions: strings(doc, "AlarmActions")?,
        insufficient_data_actions: strings(doc, "InsufficientDataActions")?,
        metric_name: doc.string("MetricName")?,
        namespace: doc.string("Namespace")?,
        statistic: doc.string("Statistic")?,
        extended_statistic: doc.string("ExtendedStatistic")?,
        dimensions: dimensions(doc, "Dimensions")?,
        period: doc.integer("Period")?,
        unit: doc.string("Unit")?,
        evaluation_periods: doc.integer("EvaluationPeriods")?,
        datapoints_to_alarm: doc.integer("DatapointsToAlarm")?,
        threshold: doc.double("Threshold")?,
        comparison_operator: doc.string("ComparisonOperator")?,
        treat_missing_data: doc.string("TreatMissingData")?,
        evaluate_low_sample_count_percentile: doc.string("EvaluateLowSampleCountPercentile")?,
        metrics: doc
            .list("Metrics")?
            .iter()
            .map(query)
            .collect::<Result<_, AwsError>>()?,
        threshold_metric_id: doc.string("ThresholdMetricId")?,
        tags: super::tags::parse_tags(doc)?,
    })
}

pub(super) fn parse_describe(doc: &Document) -> Result<DescribeAlarms, AwsError> {
    Ok(DescribeAlarms {
        alarm_names: strings(doc, "AlarmNames")?,
        alarm_name_prefix: doc.string("AlarmNamePrefix")?,
        alarm_types: strings(doc, "AlarmTypes")?,
        children_of_alarm_name: doc.string("ChildrenOfAlarmName")?,
        parents_of_alarm_name: doc.string("ParentsOfAlarmName")?,
        state_value: doc.string("StateValue")?,
        action_prefix: doc.string("ActionPrefix")?,
        max_records: doc.integer("MaxRecords")?,
        next_token: doc.string("NextToken")?,
    })
}

pub(super) fn parse_for_metric(doc: &Document) -> Result<DescribeAlarmsForMetric, AwsError> {
    Ok(DescribeAlarmsForMetric {
        namespace: doc.string("Namespace")?,
        metric_name: doc.string("MetricName")?,
        statistic: doc.string("Statistic")?,
        extended_statistic: doc.string("ExtendedStatistic")?,
        dimensions: dimensions(doc, "Dimensions")?,
        period: doc.integer("Period")?,
        unit: doc.string("Unit")?,
    })
}

pub(super) fn parse_history(doc: &Document) -> Result<DescribeAlarmHistory, AwsError> {
    Ok(DescribeAlarmHistory {
        alarm_name: doc.string("AlarmName")?,
        alarm_types: strings(doc, "AlarmTypes")?,
        history_item_type: doc.string("HistoryItemType")?,
        start_ms: doc.timestamp_ms("StartDate")?,
        end_ms: doc.timestamp_ms("EndDate")?,
        max_records: doc.integer("MaxRecords")?,
        next_token: doc.string("NextToken")?,
        scan_by: doc.string("ScanBy")?,
    })
}

/// SetAlarmState's members: name, state, reason, reason data.
pub(super) type SetState = (String, String, String, Option<String>);

pub(super) fn parse_set_state(doc: &Document) -> Result<SetState, AwsError> {
    Ok((
        required(doc.string("AlarmName")?, "AlarmName")?,
        required(doc.string("StateValue")?, "StateValue")?,
        required(doc.string("StateReason")?, "StateReason")?,
        doc.string("StateReasonData")?,
    ))
}

pub(super) fn parse_names(doc: &Document) -> Result<Vec<String>, AwsError> {
    let names = strings(doc, "AlarmNames")?;
    if names.is_empty() && doc.get("AlarmNames").is_none() {
        return Err(AwsError::client(
            "MissingParameter",
            "The parameter AlarmNames is required.",
        ));
    }
    Ok(names)
}

fn timestamp(ms: i64) -> Document {
    Document::Timestamp(ms as f64 / 1000.0)
}

fn texts(items: &[String]) -> Document {
    Document::List(items.iter().map(|s| Document::from(s.as_str())).collect())
}

fn metric_alarm(a: MetricAlarm) -> Document {
    let mut m = Members::new()
        .with("AlarmName", a.alarm_name.as_str())
        .with("AlarmArn", a.alarm_arn.as_str())
        .with_opt("AlarmDescription", a.alarm_description.clone())
        .with(
            "AlarmConfigurationUpdatedTimestamp",
            timestamp(a.configuration_updated_ms),
        )
        .with("ActionsEnabled", Document::Bool(a.actions_enabled))
        .with("OKActions", texts(&a.ok_actions))
        .with("AlarmActions", texts(&a.alarm_actions))
        .with(
            "InsufficientDataActions",
            texts(&a.insufficient_data_actions),
        )
        .with("StateValue", a.state_value.as_str())
        .with("StateReason", a.state_reason.as_str())
        .with_opt("StateReasonData", a.state_reason_data.clone())
        .with("StateUpdatedTimestamp", timestamp(a.state_updated_ms));
    if let Some(metric) = &a.metric {
        m = m
            .with("MetricName", metric.metric_name.as_str())
            .with("Namespace", metric.namespace.as_str())
            .with_opt("Statistic", metric.statistic.clone())
            .with_opt("ExtendedStatistic", metric.extended_statistic.clone())
            .with("Dimensions", dimensions_answer(metric.dimensions.clone()))
            .with("Period", Document::Int(metric.period))
            .with_opt("Unit", metric.unit.clone());
    } else {
        m = m.with("Dimensions", Document::List(Vec::new()));
    }
    m = m
        .with("EvaluationPeriods", Document::Int(a.evaluation_periods))
        .with_opt(
            "DatapointsToAlarm",
            a.datapoints_to_alarm.map(Document::Int),
        )
        .with("Threshold", a.threshold)
        .with("ComparisonOperator", a.comparison_operator.as_str())
        .with_opt("TreatMissingData", a.treat_missing_data.map(|t| t.as_str()))
        .with_opt(
            "EvaluateLowSampleCountPercentile",
            a.evaluate_low_sample_count_percentile.clone(),
        );
    if !a.metrics.is_empty() {
        let queries = a
            .metrics
            .iter()
            .map(|q| {
                let stat = q.metric_stat.as_ref().map(|s| {
                    Members::new()
                        .with(
                            "Metric",
                            Members::new()
                                .with("Namespace", s.namespace.as_str())
                                .with("MetricName", s.metric_name.as_str())
                                .with("Dimensions", dimensions_answer(s.dimensions.clone()))
                                .build(),
                        )
                        .with("Period", Document::Int(s.period))
                        .with("Stat", s.stat.as_str())
                        .with_opt("Unit", s.unit.clone())
                        .build()
                });
                Members::new()
                    .with("Id", q.id.as_str())
                    .with_opt("MetricStat", stat)
                    .with_opt("Expression", q.expression.clone())
                    .with_opt("Label", q.label.clone())
                    .with("ReturnData", Document::Bool(q.return_data != Some(false)))
                    .with_opt("Period", q.period.map(Document::Int))
                    .build()
            })
            .collect::<Vec<_>>();
        m = m.with("Metrics", queries);
    }
    m.with(
        "StateTransitionedTimestamp",
        timestamp(a.state_transitioned_ms),
    )
    .build()
}

pub(super) fn alarms_answer(alarms: Vec<MetricAlarm>, next_token: Option<String>) -> Document {
    Members::new()
        .with(
            "MetricAlarms",
            alarms.into_iter().map(metric_alarm).collect::<Vec<_>>(),
        )
        .with("CompositeAlarms", Vec::<Document>::new())
        .with_opt("NextToken", next_token)
        .build()
}

pub(super) fn for_metric_answer(alarms: Vec<MetricAlarm>) -> Document {
    Members::new()
        .with(
            "MetricAlarms",
            alarms.into_iter().map(metric_alarm).collect::<Vec<_>>(),
        )
        .build()
}

pub(super) fn history_answer(page: AlarmHistoryPage) -> Document {
    let items = page
        .items
        .into_iter()
        .map(|i| {
            Members::new()
                .with("AlarmName", i.alarm_name)
                .with("AlarmType", i.alarm_type)
                .with("Timestamp", timestamp(i.timestamp_ms))
                .with("HistoryItemType", i.history_item_type)
                .with("HistorySummary", i.history_summary)
                .with("HistoryData", i.history_data)
                .build()
        })
        .collect::<Vec<_>>();
    Members::new()
        .with("AlarmHistoryItems", items)
        .with_opt("NextToken", page.next_token)
        .build()
}
