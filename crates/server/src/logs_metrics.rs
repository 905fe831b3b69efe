//! Logs' metric filters emit into CloudWatch metrics: `berth_logs::filter_metrics::MetricSink`
//! over `berth_cloudwatch` (PutMetricData's checks and storage, in the log group's account
//! and region), each minute's values as `Values` and `Counts`.

use std::sync::Arc;

use berth_cloudwatch::{CloudWatch, CwScope, Dimension, MetricDatum, PutMetricData};
use berth_logs::LogScope;
use berth_logs::filter_metrics::{FilterMetric, MetricSink};

/// PutMetricData's limits: datums a request, values a datum.
const MAX_DATUMS: usize = 1000;
const MAX_VALUES: usize = 150;

pub struct CloudWatchSink(pub Arc<CloudWatch>);

/// A filter's minute as datums (several when it has over 150 distinct values).
fn datums(metric: &FilterMetric) -> Vec<MetricDatum> {
    metric
        .values
        .chunks(MAX_VALUES)
        .map(|chunk| MetricDatum {
            metric_name: metric.metric_name.clone(),
            dimensions: metric
                .dimensions
                .iter()
                .map(|(name, value)| Dimension {
                    name: name.clone(),
                    value: value.clone(),
                })
                .collect(),
            timestamp_ms: Some(metric.timestamp_ms),
            values: chunk.iter().map(|(v, _)| *v).collect(),
            counts: chunk.iter().map(|(_, n)| *n as f64).collect(),
            unit: metric.unit.clone(),
            ..MetricDatum::default()
        })
        .collect()
}

impl MetricSink for CloudWatchSink {
    fn put(&self, scope: &LogScope, metrics: Vec<FilterMetric>) -> Result<(), String> {
        let scope = CwScope::new(&scope.account, &scope.region);
        let mut by_namespace: std::collections::BTreeMap<String, Vec<MetricDatum>> =
            Default::default();
        for m in &metrics {
            by_namespace
                .entry(m.namespace.clone())
                .or_default()
                .extend(datums(m));
        }
        for (namespace, data) in by_namespace {
            for chunk in data.chunks(MAX_DATUMS) {
                self.0
                    .publish(
                        &scope,
                        PutMetricData {
                            namespace: namespace.clone(),
                            metric_data: chunk.to_vec(),
                        },
                    )
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minute_of_many_values_is_split_at_150() {
        let metric = FilterMetric {
            namespace: "App".into(),
            metric_name: "Bytes".into(),
            dimensions: [("Status".to_owned(), "200".to_owned())].into(),
            unit: Some("Bytes".into()),
            timestamp_ms: 1_700_000_040_000,
            values: (0..200).map(|v| (f64::from(v), 2)).collect(),
        };
        let out = datums(&metric);
        assert_eq!(
            out.iter().map(|d| d.values.len()).collect::<Vec<_>>(),
            [150, 50]
        );
        assert_eq!(out[0].counts[0], 2.0);
        assert_eq!(out[1].values[0], 150.0);
        assert_eq!(out[0].dimensions[0].name, "Status");
        assert_eq!(out[0].timestamp_ms, Some(1_700_000_040_000));
        assert_eq!(out[0].value, None);
    }
}
