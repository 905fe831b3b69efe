//! PutMetricData, GetMetricStatistics and ListMetrics: requests from documents, answers
//! as documents.

use berth_cloudwatch::{
    Datapoint, Dimension, DimensionFilter, GetMetricStatistics, ListMetrics, MetricDatum,
    MetricsPage, PutMetricData, StatisticSet,
};

use crate::protocol::AwsError;
use crate::protocol::document::{Document, Members};

/// A required member that is absent: CloudWatch's `MissingParameter`.
pub(super) fn required<T>(value: Option<T>, param: &str) -> Result<T, AwsError> {
    value.ok_or_else(|| {
        AwsError::client(
            "MissingParameter",
            format!("The parameter {param} is required."),
        )
    })
}

pub(super) fn dimensions(doc: &Document, name: &str) -> Result<Vec<Dimension>, AwsError> {
    doc.list(name)?
        .iter()
        .map(|d| -> Result<Dimension, AwsError> {
            Ok(Dimension {
                name: d.string("Name")?.unwrap_or_default(),
                value: d.string("Value")?.unwrap_or_default(),
            })
        })
        .collect()
}

fn doubles(doc: &Document, name: &str) -> Result<Vec<f64>, AwsError> {
    doc.list(name)?.iter().map(|v| v.as_double(name)).collect()
}

pub(super) fn strings(doc: &Document, name: &str) -> Result<Vec<String>, AwsError> {
    doc.list(name)?
        .iter()
        .map(|v| match v {
            Document::Text(s) => Ok(s.clone()),
            _ => Err(AwsError::client(
                "SerializationException",
                format!("Member {name} must be a list of strings."),
            )),
        })
        .collect()
}

pub(super) fn parse_put(doc: &Document) -> Result<PutMetricData, AwsError> {
    let metric_data = doc
        .list("MetricData")?
        .iter()
        .map(|d| -> Result<MetricDatum, AwsError> {
            let statistic_values = match d.structure("StatisticValues")? {
                Some(s) => Some(StatisticSet {
                    sample_count: required(
                        s.double("SampleCount")?,
                        "StatisticValues.SampleCount",
                    )?,
                    sum: required(s.double("Sum")?, "StatisticValues.Sum")?,
                    minimum: required(s.double("Minimum")?, "StatisticValues.Minimum")?,
                    maximum: required(s.double("Maximum")?, "StatisticValues.Maximum")?,
                }),
                None => None,
            };
            Ok(MetricDatum {
                metric_name: d.string("MetricName")?.unwrap_or_default(),
                dimensions: dimensions(d, "Dimensions")?,
                timestamp_ms: d.timestamp_ms("Timestamp")?,
                value: d.double("Value")?,
                values: doubles(d, "Values")?,
                counts: doubles(d, "Counts")?,
                statistic_values,
                unit: d.string("Unit")?,
                storage_resolution: d.integer("StorageResolution")?,
            })
        })
        .collect::<Result<_, AwsError>>()?;
    Ok(PutMetricData {
        namespace: doc.string("Namespace")?.unwrap_or_default(),
        metric_data,
    })
}

pub(super) fn parse_statistics(doc: &Document) -> Result<GetMetricStatistics, AwsError> {
    Ok(GetMetricStatistics {
        namespace: doc.string("Namespace")?.unwrap_or_default(),
        metric_name: doc.string("MetricName")?.unwrap_or_default(),
        dimensions: dimensions(doc, "Dimensions")?,
        start_ms: required(doc.timestamp_ms("StartTime")?, "StartTime")?,
        end_ms: required(doc.timestamp_ms("EndTime")?, "EndTime")?,
        period: required(doc.integer("Period")?, "Period")?,
        statistics: strings(doc, "Statistics")?,
        extended_statistics: strings(doc, "ExtendedStatistics")?,
        unit: doc.string("Unit")?,
    })
}

pub(super) fn parse_list(doc: &Document) -> Result<ListMetrics, AwsError> {
    Ok(ListMetrics {
        namespace: doc.string("Namespace")?,
        metric_name: doc.string("MetricName")?,
        dimensions: doc
            .list("Dimensions")?
            .iter()
            .map(|d| -> Result<DimensionFilter, AwsError> {
                Ok(DimensionFilter {
                    name: required(d.string("Name")?, "Dimensions.member.N.Name")?,
                    value: d.string("Value")?,
                })
            })
            .collect::<Result<_, AwsError>>()?,
        next_token: doc.string("NextToken")?,
        recently_active: doc.string("RecentlyActive")?,
    })
}

pub(super) fn dimensions_answer(dimensions: Vec<Dimension>) -> Document {
    Document::List(
        dimensions
            .into_iter()
            .map(|d| {
                Members::new()
                    .with("Name", d.name)
                    .with("Value", d.value)
                    .build()
            })
            .collect(),
    )
}

pub(super) fn statistics_answer(label: String, points: Vec<Datapoint>) -> Document {
    let datapoints = points
        .into_iter()
        .map(|p| {
            let extended = (!p.extended_statistics.is_empty()).then(|| {
                Document::Map(
                    p.extended_statistics
                        .into_iter()
                        .map(|(k, v)| (k, Document::Double(v)))
                        .collect(),
                )
            });
            Members::new()
                .with(
                    "Timestamp",
                    Document::Timestamp(p.timestamp_ms as f64 / 1000.0),
                )
                .with_opt("SampleCount", p.sample_count)
                .with_opt("Average", p.average)
                .with_opt("Sum", p.sum)
                .with_opt("Minimum", p.minimum)
                .with_opt("Maximum", p.maximum)
                .with("Unit", p.unit)
                .with_opt("ExtendedStatistics", extended)
                .build()
        })
        .collect::<Vec<_>>();
    Members::new()
        .with("Label", label)
        .with("Datapoints", datapoints)
        .build()
}

pub(super) fn list_answer(page: MetricsPage) -> Document {
    let metrics = page
        .metrics
        .into_iter()
        .map(|m| {
            Members::new()
                .with("Namespace", m.namespace)
                .with("MetricName", m.metric_name)
                .with("Dimensions", dimensions_answer(m.dimensions))
                .build()
        })
        .collect::<Vec<_>>();
    Members::new()
        .with("Metrics", metrics)
        .with_opt("NextToken", page.next_token)
        .build()
}
