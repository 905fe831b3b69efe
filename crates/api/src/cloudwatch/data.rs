//! GetMetricData: the request from a document, the answer as one.

use berth_cloudwatch::{GetMetricData, MetricDataOutput, MetricDataQuery, MetricStat};

use super::metrics::{dimensions, required};
use crate::protocol::AwsError;
use crate::protocol::document::{Document, Members};

/// One MetricDataQuery (GetMetricData's, and a metric-math alarm's `Metrics`).
pub(super) fn query(q: &Document) -> Result<MetricDataQuery, AwsError> {
    let metric_stat = match q.structure("MetricStat")? {
        Some(s) => {
            let metric = required(s.structure("Metric")?, "MetricStat.Metric")?;
            Some(MetricStat {
                namespace: metric.string("Namespace")?.unwrap_or_default(),
                metric_name: metric.string("MetricName")?.unwrap_or_default(),
                dimensions: dimensions(metric, "Dimensions")?,
                period: required(s.integer("Period")?, "MetricStat.Period")?,
                stat: required(s.string("Stat")?, "MetricStat.Stat")?,
                unit: s.string("Unit")?,
            })
        }
        None => None,
    };
    Ok(MetricDataQuery {
        id: q.string("Id")?.unwrap_or_default(),
        metric_stat,
        expression: q.string("Expression")?,
        label: q.string("Label")?,
        return_data: q.boolean("ReturnData")?,
        period: q.integer("Period")?,
    })
}

pub(super) fn parse(doc: &Document) -> Result<GetMetricData, AwsError> {
    let queries = doc
        .list("MetricDataQueries")?
        .iter()
        .map(query)
        .collect::<Result<_, AwsError>>()?;
    Ok(GetMetricData {
        queries,
        start_ms: required(doc.timestamp_ms("StartTime")?, "StartTime")?,
        end_ms: required(doc.timestamp_ms("EndTime")?, "EndTime")?,
        next_token: doc.string("NextToken")?,
        scan_by: doc.string("ScanBy")?,
        max_datapoints: doc.integer("MaxDatapoints")?,
    })
}

pub(super) fn answer(out: MetricDataOutput) -> Document {
    let results = out
        .results
        .into_iter()
        .map(|r| {
            Members::new()
                .with("Id", r.id)
                .with("Label", r.label)
                .with(
                    "Timestamps",
                    r.timestamps_ms
                        .into_iter()
                        .map(|t| Document::Timestamp(t as f64 / 1000.0))
                        .collect::<Vec<_>>(),
                )
                .with(
                    "Values",
                    r.values
                        .into_iter()
                        .map(Document::Double)
                        .collect::<Vec<_>>(),
                )
                .with("StatusCode", r.status_code)
                .build()
        })
        .collect::<Vec<_>>();
    Members::new()
        .with("MetricDataResults", results)
        .with_opt("NextToken", out.next_token)
        .with("Messages", Vec::<Document>::new())
        .build()
}
