//! What metric filters emit into CloudWatch metrics, as CloudWatch Logs does: every event a
//! filter's pattern matches emits its `metricValue` (a number, or `$.field` / `$field` /
//! `$n` read from the event) under the filter's metric name and namespace, with its
//! dimensions (each value read from the event the same way) and unit, at the event's time;
//! a filter with a `defaultValue` emits it for each minute that had events but no match.
//! Values are folded per metric and minute into values and counts (metric filters' metrics
//! are standard resolution, so nothing finer is lost). Where they go is the
//! [`MetricSink`] the server gives (`berth-logs` knows nothing of CloudWatch's crate).

use std::collections::BTreeMap;

use crate::LogScope;
use crate::metric_filters::{MetricFilter, MetricValue};
use crate::pattern::FilterPattern;
use crate::segment::InputEvent;

/// One metric's values for one minute, as PutMetricData's `Values` and `Counts`.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterMetric {
    pub namespace: String,
    pub metric_name: String,
    pub dimensions: BTreeMap<String, String>,
    pub unit: Option<String>,
    /// The minute's start, ms since the epoch.
    pub timestamp_ms: i64,
    /// Distinct values with how many events gave each.
    pub values: Vec<(f64, u64)>,
}

/// Where metric filters' metrics go (the server: CloudWatch's PutMetricData path).
pub trait MetricSink: Send + Sync {
    fn put(&self, scope: &LogScope, metrics: Vec<FilterMetric>) -> Result<(), String>;
}

const MINUTE_MS: i64 = 60_000;
/// CloudWatch takes data up to two weeks old and two hours ahead; events outside emit
/// nothing (Logs itself keeps events up to 14 days old).
const OLDEST_MS: i64 = 14 * 24 * 3600 * 1000 - MINUTE_MS;
const NEWEST_MS: i64 = 2 * 3600 * 1000 - MINUTE_MS;

/// A dimension's value from a matched event: `$…` read as the metric value is, anything
/// else as written.
fn dimension_value(
    text: &str,
    message: &str,
    extracted: &BTreeMap<String, String>,
) -> Option<String> {
    if !text.starts_with('$') {
        return Some(text.to_owned());
    }
    MetricValue::parse(text).ok()?.text_of(message, extracted)
}

impl crate::Logs {
    /// Emits a stored batch's metrics for the group's `filters` through the metric sink the
    /// server set (none: nothing to do). A failure is logged: the batch is stored and
    /// acknowledged, only its metrics are lost.
    pub(crate) fn publish_filter_metrics(
        &self,
        scope: &LogScope,
        group: &str,
        filters: &[(MetricFilter, FilterPattern)],
        events: &[InputEvent],
        now: i64,
    ) {
        let Some(sink) = self.metric_sink.get() else {
            return;
        };
        let emitted: Vec<FilterMetric> = filters
            .iter()
            .flat_map(|(filter, pattern)| emissions(filter, pattern, events, now))
            .collect();
        if !emitted.is_empty()
            && let Err(e) = sink.put(scope, emitted)
        {
            tracing::warn!(error = %e, group, "metric filters' metrics not published");
        }
    }
}

/// What `filter` emits for a stored batch (pure).
pub fn emissions(
    filter: &MetricFilter,
    pattern: &FilterPattern,
    events: &[InputEvent],
    now_ms: i64,
) -> Vec<FilterMetric> {
    let Some(t) = filter.metric_transformations.first() else {
        return Vec::new();
    };
    let Ok(value) = MetricValue::parse(&t.metric_value) else {
        return Vec::new();
    };
    // (minute, dimensions) → value bits → count; minutes with events at all.
    let mut folded: BTreeMap<(i64, BTreeMap<String, String>), BTreeMap<u64, u64>> = BTreeMap::new();
    let mut minutes: BTreeMap<i64, bool> = BTreeMap::new();
    for e in events {
        if e.timestamp < now_ms - OLDEST_MS || e.timestamp > now_ms + NEWEST_MS {
            continue;
        }
        let minute = e.timestamp.div_euclid(MINUTE_MS) * MINUTE_MS;
        let matched = minutes.entry(minute).or_insert(false);
        let Some(extracted) = pattern.extract(&e.message) else {
            continue;
        };
        *matched = true;
        let Some(v) = value.of(&e.message, &extracted) else {
            continue;
        };
        let dimensions: Option<BTreeMap<String, String>> = t
            .dimensions
            .iter()
            .map(|(k, d)| Some((k.clone(), dimension_value(d, &e.message, &extracted)?)))
            .collect();
        // An event without a dimension's field emits nothing (CloudWatch Logs skips it).
        let Some(dimensions) = dimensions else {
            continue;
        };
        *folded
            .entry((minute, dimensions))
            .or_default()
            .entry(v.to_bits())
            .or_default() += 1;
    }
    let metric = |timestamp_ms, dimensions, values| FilterMetric {
        namespace: t.metric_namespace.clone(),
        metric_name: t.metric_name.clone(),
        dimensions,
        unit: t.unit.clone(),
        timestamp_ms,
        values,
    };
    let mut out: Vec<FilterMetric> = folded
        .into_iter()
        .map(|((minute, dimensions), values)| {
            let values = values
                .into_iter()
                .map(|(bits, n)| (f64::from_bits(bits), n))
                .collect();
            metric(minute, dimensions, values)
        })
        .collect();
    if let Some(default) = t.default_value {
        for (minute, matched) in minutes {
            if !matched {
                out.push(metric(minute, BTreeMap::new(), vec![(default, 1)]));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric_filters::MetricTransformation;

    fn filter(
        pattern: &str,
        value: &str,
        default: Option<f64>,
        dims: &[(&str, &str)],
    ) -> MetricFilter {
        MetricFilter {
            filter_name: "f".into(),
            filter_pattern: pattern.into(),
            metric_transformations: vec![MetricTransformation {
                metric_name: "Latency".into(),
                metric_namespace: "App".into(),
                metric_value: value.into(),
                default_value: default,
                dimensions: dims
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                unit: Some("Milliseconds".into()),
            }],
            creation_time: 0,
            log_group_name: "g".into(),
            apply_on_transformed_logs: false,
        }
    }

    fn event(timestamp: i64, message: &str) -> InputEvent {
        InputEvent {
            timestamp,
            message: message.into(),
        }
    }

    /// Each emitted metric's minute (from NOW), its `Path` and its values.
    type Seen<'a> = Vec<(i64, &'a str, Vec<(f64, u64)>)>;

    const NOW: i64 = 1_700_000_000_000 - 1_700_000_000_000 % MINUTE_MS;

    #[test]
    fn each_match_emits_its_value_with_its_dimensions_folded_per_minute() {
        let f = filter(
            "{ $.latency > 0 }",
            "$.latency",
            None,
            &[("Path", "$.path")],
        );
        let pattern = FilterPattern::parse(&f.filter_pattern).unwrap();
        let events = [
            event(NOW + 1_000, r#"{"latency": 12, "path": "/a"}"#),
            event(NOW + 2_000, r#"{"latency": 12, "path": "/a"}"#),
            event(NOW + 3_000, r#"{"latency": 30, "path": "/b"}"#),
            event(NOW + 61_000, r#"{"latency": 5, "path": "/a"}"#),
            event(NOW + 62_000, r#"{"latency": 0, "path": "/a"}"#),
            // No dimension field: nothing.
            event(NOW + 63_000, r#"{"latency": 9}"#),
        ];
        let out = emissions(&f, &pattern, &events, NOW);
        let seen: Seen = out
            .iter()
            .map(|m| {
                (
                    m.timestamp_ms - NOW,
                    m.dimensions["Path"].as_str(),
                    m.values.clone(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                (0, "/a", vec![(12.0, 2)]),
                (0, "/b", vec![(30.0, 1)]),
                (60_000, "/a", vec![(5.0, 1)]),
            ]
        );
        assert!(out.iter().all(|m| m.namespace == "App"
            && m.metric_name == "Latency"
            && m.unit.as_deref() == Some("Milliseconds")));
    }

    #[test]
    fn the_default_value_fills_minutes_with_events_and_no_match() {
        let f = filter("ERROR", "1", Some(0.0), &[]);
        let pattern = FilterPattern::parse("ERROR").unwrap();
        let events = [
            event(NOW + 1_000, "ERROR boom"),
            event(NOW + 2_000, "INFO fine"),
            event(NOW + 61_000, "INFO fine"),
            // Older than CloudWatch takes: nothing.
            event(NOW - 15 * 24 * 3600 * 1000, "ERROR old"),
        ];
        let out = emissions(&f, &pattern, &events, NOW);
        let seen: Vec<(i64, Vec<(f64, u64)>)> = out
            .iter()
            .map(|m| (m.timestamp_ms - NOW, m.values.clone()))
            .collect();
        assert_eq!(seen, [(0, vec![(1.0, 1)]), (60_000, vec![(0.0, 1)])]);
    }

    #[test]
    fn space_delimited_fields_give_values_and_dimensions() {
        let f = filter(
            "[ip, user, status, bytes]",
            "$bytes",
            None,
            &[("Status", "$status")],
        );
        let pattern = FilterPattern::parse(&f.filter_pattern).unwrap();
        let events = [
            event(NOW, "10.0.0.1 bob 200 512"),
            event(NOW, "10.0.0.2 eve 404 20"),
        ];
        let out = emissions(&f, &pattern, &events, NOW);
        let seen: Vec<(&str, Vec<(f64, u64)>)> = out
            .iter()
            .map(|m| (m.dimensions["Status"].as_str(), m.values.clone()))
            .collect();
        assert_eq!(seen, [("200", vec![(512.0, 1)]), ("404", vec![(20.0, 1)])]);
    }
}
