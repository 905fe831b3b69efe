//! Metric filters: PutMetricFilter, DescribeMetricFilters, DeleteMetricFilter and
//! TestMetricFilter, and what they count. Every PutLogEvents batch is evaluated against its
//! group's filters: each filter keeps the events it matched and the sum of their metric
//! values, durably, in its own record (`metric-count/`, which `berth metric-filter-counts`
//! shows); the filters that parse are handed back for their metrics to be emitted into
//! CloudWatch (`filter_metrics.rs`, through the metric sink the server set).
//!
//! Filters live under `logs/{account}/{region}/metric-filter/{group}|{filter}` (group names
//! cannot hold `|`), their counts under `.../metric-count/{group}|{filter}`.

use std::collections::BTreeMap;

use berth_store::{Change, Compare, Update};
use serde::{Deserialize, Serialize};

use crate::pattern::FilterPattern;
use crate::segment::InputEvent;
use crate::{
    LogScope, Logs, LogsError, Result, check_group_name, decode, group_missing, now_ms, scan,
    tokens,
};

/// AWS's quota: "The maximum number of metric filters that can be associated with a log
/// group is 100" (PutMetricFilter's API reference).
pub const MAX_METRIC_FILTERS_PER_GROUP: usize = 100;
/// TestMetricFilter's `logEventMessages`: 1 to 50 items.
pub const MAX_TEST_MESSAGES: usize = 50;
/// StandardUnit, as botocore's model lists it.
pub use berth_model::cloudwatch::STANDARD_UNITS as UNITS;

/// How a filter turns a matched event into a metric value (MetricTransformation).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MetricTransformation {
    pub metric_name: String,
    pub metric_namespace: String,
    pub metric_value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_value: Option<f64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dimensions: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// A metric filter as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MetricFilter {
    pub filter_name: String,
    pub filter_pattern: String,
    pub metric_transformations: Vec<MetricTransformation>,
    pub creation_time: i64,
    pub log_group_name: String,
    #[serde(default)]
    pub apply_on_transformed_logs: bool,
}

/// What a filter has counted since it was created: events its pattern matched, and the sum
/// of the metric values they gave (events whose value is not a number add nothing).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MetricFilterCounts {
    pub matched_events: u64,
    pub metric_value_sum: f64,
    /// When a batch last matched (ms since the epoch).
    pub last_match_time: i64,
}

/// A matched message, as TestMetricFilter answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricFilterMatch {
    pub event_number: usize,
    pub event_message: String,
    pub extracted_values: BTreeMap<String, String>,
}

/// DescribeMetricFilters' question.
#[derive(Debug, Clone, Default)]
pub struct DescribeMetricFilters {
    pub group: Option<String>,
    pub name_prefix: Option<String>,
    pub metric_name: Option<String>,
    pub metric_namespace: Option<String>,
    pub next_token: Option<String>,
    pub limit: usize,
}

/// Where a metric value comes from: a number, a JSON selector (`$.a.b[0]`) or a
/// space-delimited field (`$name`, `$1`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum MetricValue {
    Literal(f64),
    Json(Vec<Step>),
    Field(String),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step {
    Key(String),
    Index(usize),
}

fn invalid(message: impl Into<String>) -> LogsError {
    LogsError::InvalidParameter(message.into())
}

impl MetricValue {
    pub(crate) fn parse(text: &str) -> Result<MetricValue> {
        // No published AWS text for a malformed metric value: Berth's own.
        let bad = || {
            invalid(format!(
                "Invalid metric value '{text}': expected a number, $.selector or $field"
            ))
        };
        if let Ok(n) = text.trim().parse::<f64>()
            && n.is_finite()
        {
            return Ok(MetricValue::Literal(n));
        }
        let Some(rest) = text.strip_prefix('$') else {
            return Err(bad());
        };
        let word = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'@'))
        };
        if rest.starts_with('.') {
            let mut steps = Vec::new();
            let mut s = rest;
            while !s.is_empty() {
                if let Some(after) = s.strip_prefix('.') {
                    let end = after.find(['.', '[']).unwrap_or(after.len());
                    if !word(&after[..end]) {
                        return Err(bad());
                    }
                    steps.push(Step::Key(after[..end].to_string()));
                    s = &after[end..];
                } else if let Some(after) = s.strip_prefix('[') {
                    let end = after.find(']').ok_or_else(bad)?;
                    let index = after[..end].parse().map_err(|_| bad())?;
                    steps.push(Step::Index(index));
                    s = &after[end + 1..];
                } else {
                    return Err(bad());
                }
            }
            return Ok(MetricValue::Json(steps));
        }
        if word(rest) {
            return Ok(MetricValue::Field(format!("${rest}")));
        }
        Err(bad())
    }

    /// The value a matched event gives, if it gives a number.
    pub(crate) fn of(&self, message: &str, extracted: &BTreeMap<String, String>) -> Option<f64> {
        let number = |v: &serde_json::Value| match v {
            serde_json::Value::Number(n) => n.as_f64(),
            serde_json::Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        let value = match self {
            MetricValue::Literal(n) => Some(*n),
            MetricValue::Field(name) => extracted.get(name)?.trim().parse().ok(),
            MetricValue::Json(steps) => number(&Self::select(steps, message)?),
        };
        value.filter(|n| n.is_finite())
    }

    /// What a matched event holds there, as text (a dimension's value).
    pub(crate) fn text_of(
        &self,
        message: &str,
        extracted: &BTreeMap<String, String>,
    ) -> Option<String> {
        match self {
            MetricValue::Literal(n) => Some(n.to_string()),
            MetricValue::Field(name) => extracted.get(name).cloned(),
            MetricValue::Json(steps) => match Self::select(steps, message)? {
                serde_json::Value::String(s) => Some(s),
                v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_)) => {
                    Some(v.to_string())
                }
                _ => None,
            },
        }
    }

    fn select(steps: &[Step], message: &str) -> Option<serde_json::Value> {
        let mut at: serde_json::Value = serde_json::from_str(message).ok()?;
        for step in steps {
            at = match step {
                Step::Key(k) => at.get_mut(k)?.take(),
                Step::Index(i) => at.get_mut(*i)?.take(),
            };
        }
        Some(at)
    }
}

/// "1 validation error detected: …" as AWS's request validation words it.
fn constraint(value: &str, field: &str, rule: &str) -> LogsError {
    invalid(format!(
        "1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: {rule}"
    ))
}

pub fn check_filter_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(constraint(
            name,
            "filterName",
            "Member must have length greater than or equal to 1",
        ));
    }
    if name.len() > 512 {
        return Err(constraint(
            name,
            "filterName",
            "Member must have length less than or equal to 512",
        ));
    }
    if name.contains([':', '*']) {
        return Err(constraint(
            name,
            "filterName",
            "Member must satisfy regular expression pattern: [^:*]*",
        ));
    }
    Ok(())
}

fn check_metric_name(value: &str, field: &str) -> Result<()> {
    if value.len() > 255 {
        return Err(constraint(
            value,
            field,
            "Member must have length less than or equal to 255",
        ));
    }
    if value.contains([':', '*', '$']) {
        return Err(constraint(
            value,
            field,
            "Member must satisfy regular expression pattern: [^:*$]*",
        ));
    }
    Ok(())
}

fn parse_pattern(text: &str) -> Result<FilterPattern> {
    if text.len() > 1024 {
        return Err(constraint(
            text,
            "filterPattern",
            "Member must have length less than or equal to 1024",
        ));
    }
    FilterPattern::parse(text).map_err(|e| invalid(e.to_string()))
}

fn check_transformations(
    transformations: &[MetricTransformation],
    pattern: &FilterPattern,
) -> Result<()> {
    if transformations.len() != 1 {
        return Err(invalid(format!(
            "1 validation error detected: Value at 'metricTransformations' failed to satisfy constraint: Member must have length {} 1",
            if transformations.is_empty() {
                "greater than or equal to"
            } else {
                "less than or equal to"
            }
        )));
    }
    let t = &transformations[0];
    check_metric_name(&t.metric_name, "metricTransformations.1.member.metricName")?;
    check_metric_name(
        &t.metric_namespace,
        "metricTransformations.1.member.metricNamespace",
    )?;
    if t.metric_value.len() > 100 {
        return Err(constraint(
            &t.metric_value,
            "metricTransformations.1.member.metricValue",
            "Member must have length less than or equal to 100",
        ));
    }
    if let MetricValue::Field(_) = MetricValue::parse(&t.metric_value)?
        && !pattern.is_delimited()
    {
        return Err(invalid(format!(
            "Invalid metric value '{}': a $field value needs a space-delimited filter pattern",
            t.metric_value
        )));
    }
    if let Some(unit) = &t.unit
        && !UNITS.contains(&unit.as_str())
    {
        return Err(constraint(
            unit,
            "metricTransformations.1.member.unit",
            &format!("Member must satisfy enum value set: [{}]", UNITS.join(", ")),
        ));
    }
    // "One metric filter can include as many as three dimensions" (MetricTransformation).
    if t.dimensions.len() > 3 {
        return Err(invalid(
            "1 validation error detected: Value at 'metricTransformations.1.member.dimensions' failed to satisfy constraint: Member must have length less than or equal to 3",
        ));
    }
    Ok(())
}

impl LogScope {
    pub(crate) fn metric_filters_prefix(&self, group: &str) -> String {
        format!("{}metric-filter/{group}|", self.prefix())
    }
    fn metric_filter_key(&self, group: &str, filter: &str) -> String {
        format!("{}{filter}", self.metric_filters_prefix(group))
    }
    pub(crate) fn metric_counts_prefix(&self, group: &str) -> String {
        format!("{}metric-count/{group}|", self.prefix())
    }
    fn metric_count_key(&self, group: &str, filter: &str) -> String {
        format!("{}{filter}", self.metric_counts_prefix(group))
    }
}

fn filter_missing() -> LogsError {
    LogsError::ResourceNotFound("The specified metric filter does not exist.".into())
}

/// TestMetricFilter: which messages `pattern` matches, and what it extracts from them.
pub fn test_metric_filter(pattern: &str, messages: &[String]) -> Result<Vec<MetricFilterMatch>> {
    if messages.is_empty() || messages.len() > MAX_TEST_MESSAGES {
        return Err(invalid(format!(
            "1 validation error detected: Value at 'logEventMessages' failed to satisfy constraint: Member must have length {} {}",
            if messages.is_empty() {
                "greater than or equal to"
            } else {
                "less than or equal to"
            },
            if messages.is_empty() {
                1
            } else {
                MAX_TEST_MESSAGES
            }
        )));
    }
    let pattern = parse_pattern(pattern)?;
    Ok(messages
        .iter()
        .enumerate()
        .filter_map(|(i, m)| {
            pattern.extract(m).map(|extracted| MetricFilterMatch {
                event_number: i,
                event_message: m.clone(),
                extracted_values: extracted,
            })
        })
        .collect())
}

impl Logs {
    /// PutMetricFilter: creates the filter or replaces the one of that name (its creation
    /// time and counts are kept).
    pub fn put_metric_filter(
        &self,
        scope: &LogScope,
        group: &str,
        name: &str,
        pattern: &str,
        transformations: Vec<MetricTransformation>,
        apply_on_transformed_logs: bool,
    ) -> Result<MetricFilter> {
        check_group_name(group)?;
        check_filter_name(name)?;
        let parsed = parse_pattern(pattern)?;
        check_transformations(&transformations, &parsed)?;
        let store = self.store.as_ref();
        let group_key = scope.group_key(group);
        let stored = berth_store::update(
            store,
            &scope.metric_filter_key(group, name),
            |current: Option<MetricFilter>| -> Result<Update<MetricFilter>> {
                let group_kv = store.get(&group_key)?.ok_or_else(group_missing)?;
                if current.is_none() {
                    let mut count = 0;
                    scan(store, &scope.metric_filters_prefix(group), None, |_| {
                        count += 1;
                        Ok(true)
                    })?;
                    if count >= MAX_METRIC_FILTERS_PER_GROUP {
                        // AWS documents the quota, not the message; this is the text
                        // CloudWatch Logs' LimitExceededException is reported with by
                        // emulators (moto) for its per-group filter quotas.
                        return Err(LogsError::LimitExceeded("Resource limit exceeded.".into()));
                    }
                }
                let filter = MetricFilter {
                    filter_name: name.to_string(),
                    filter_pattern: pattern.to_string(),
                    metric_transformations: transformations.clone(),
                    creation_time: current.as_ref().map_or_else(now_ms, |c| c.creation_time),
                    log_group_name: group.to_string(),
                    apply_on_transformed_logs,
                };
                // The group must be the one read (not deleted and created again meanwhile).
                Ok(
                    Update::from(Change::Put(filter)).provided(Compare::CreateRevision(
                        group_key.clone(),
                        group_kv.create_revision,
                    )),
                )
            },
        )?;
        Ok(stored.expect("a Put leaves its value stored"))
    }

    pub fn delete_metric_filter(&self, scope: &LogScope, group: &str, name: &str) -> Result<()> {
        check_group_name(group)?;
        check_filter_name(name)?;
        self.log_group(scope, group)?;
        let store = self.store.as_ref();
        let count_key = scope.metric_count_key(group, name);
        berth_store::update(
            store,
            &scope.metric_filter_key(group, name),
            |current: Option<MetricFilter>| -> Result<Update<MetricFilter>> {
                current.ok_or_else(filter_missing)?;
                Ok(Update::from(Change::Delete).also(berth_store::Op::delete(count_key.clone())))
            },
        )?;
        Ok(())
    }

    /// DescribeMetricFilters: "ASCII-sorted by filter name" (the API reference), then by
    /// group; `filterNamePrefix` applies only with `logGroupName`, as the reference says.
    pub fn describe_metric_filters(
        &self,
        scope: &LogScope,
        q: &DescribeMetricFilters,
    ) -> Result<(Vec<MetricFilter>, Option<String>)> {
        if q.metric_name.is_some() != q.metric_namespace.is_some() {
            // The reference: each "must also include" the other; no published error text.
            return Err(invalid(
                "metricName and metricNamespace must be specified together",
            ));
        }
        if let Some(prefix) = &q.name_prefix {
            check_filter_name(prefix)?;
        }
        let (prefix, name_prefix) = match &q.group {
            Some(group) => {
                check_group_name(group)?;
                self.log_group(scope, group)?;
                (scope.metric_filters_prefix(group), q.name_prefix.as_deref())
            }
            None => (format!("{}metric-filter/", scope.prefix()), None),
        };
        let after = q
            .next_token
            .as_deref()
            .map(|t| berth_store::page_token::decode(t).ok_or_else(tokens::bad_token))
            .transpose()?;
        let mut all: Vec<MetricFilter> = Vec::new();
        scan(self.store.as_ref(), &prefix, None, |kv| {
            let filter: MetricFilter = decode(kv)?;
            let named = name_prefix.is_none_or(|p| filter.filter_name.starts_with(p));
            let metric = match (&q.metric_name, &q.metric_namespace) {
                (Some(name), Some(namespace)) => filter
                    .metric_transformations
                    .iter()
                    .any(|t| &t.metric_name == name && &t.metric_namespace == namespace),
                _ => true,
            };
            if named && metric {
                all.push(filter);
            }
            Ok(true)
        })?;
        // Filter name, then group (a NUL sorts before any character a name holds).
        let order_key = |f: &MetricFilter| format!("{}\u{0}{}", f.filter_name, f.log_group_name);
        all.sort_by_key(order_key);
        let start = after
            .as_ref()
            .map_or(0, |a| all.partition_point(|f| order_key(f) <= *a));
        let more = all.len() > start + q.limit;
        let page: Vec<MetricFilter> = all.into_iter().skip(start).take(q.limit).collect();
        let token = more
            .then(|| page.last())
            .flatten()
            .map(|f| berth_store::page_token::encode(&order_key(f)));
        Ok((page, token))
    }

    /// How many metric filters a group has (DescribeLogGroups' `metricFilterCount`).
    pub fn metric_filter_count(&self, scope: &LogScope, group: &str) -> Result<usize> {
        let mut count = 0;
        scan(
            self.store.as_ref(),
            &scope.metric_filters_prefix(group),
            None,
            |_| {
                count += 1;
                Ok(true)
            },
        )?;
        Ok(count)
    }

    /// A group's filters with what each has counted (all groups of the scope with `None`).
    pub fn metric_filter_counts(
        &self,
        scope: &LogScope,
        group: Option<&str>,
    ) -> Result<Vec<(MetricFilter, MetricFilterCounts)>> {
        let prefix = match group {
            Some(group) => scope.metric_filters_prefix(group),
            None => format!("{}metric-filter/", scope.prefix()),
        };
        let mut filters: Vec<MetricFilter> = Vec::new();
        scan(self.store.as_ref(), &prefix, None, |kv| {
            filters.push(decode(kv)?);
            Ok(true)
        })?;
        filters
            .into_iter()
            .map(|f| {
                let counts = match self
                    .store
                    .get(&scope.metric_count_key(&f.log_group_name, &f.filter_name))?
                {
                    Some(kv) => decode(&kv)?,
                    None => MetricFilterCounts::default(),
                };
                Ok((f, counts))
            })
            .collect()
    }

    /// Evaluates a stored batch against its group's filters and adds what each matched to
    /// its counts. Called after the batch is durable: a crash in between loses the counts
    /// of that one batch, never counts events that were not stored. The group's filters
    /// that parse, with their patterns, for their metrics.
    pub(crate) fn count_metric_filters(
        &self,
        scope: &LogScope,
        group: &str,
        events: &[InputEvent],
        now: i64,
    ) -> Result<Vec<(MetricFilter, FilterPattern)>> {
        let mut parsed = Vec::new();
        if events.is_empty() {
            return Ok(parsed);
        }
        let mut filters: Vec<MetricFilter> = Vec::new();
        scan(
            self.store.as_ref(),
            &scope.metric_filters_prefix(group),
            None,
            |kv| {
                filters.push(decode(kv)?);
                Ok(true)
            },
        )?;
        for filter in filters {
            // Stored filters were parsed when put; one that no longer parses counts nothing.
            let Ok(pattern) = FilterPattern::parse(&filter.filter_pattern) else {
                continue;
            };
            let Some(value) = filter
                .metric_transformations
                .first()
                .and_then(|t| MetricValue::parse(&t.metric_value).ok())
            else {
                continue;
            };
            let (mut matched, mut sum) = (0u64, 0f64);
            for e in events {
                if let Some(extracted) = pattern.extract(&e.message) {
                    matched += 1;
                    sum += value.of(&e.message, &extracted).unwrap_or(0.0);
                }
            }
            if matched == 0 {
                parsed.push((filter, pattern));
                continue;
            }
            let filter_key = scope.metric_filter_key(group, &filter.filter_name);
            let store = self.store.as_ref();
            berth_store::update(
                store,
                &scope.metric_count_key(group, &filter.filter_name),
                |current: Option<MetricFilterCounts>| -> Result<Update<MetricFilterCounts>> {
                    // A filter deleted meanwhile keeps no counts.
                    let Some(kv) = store.get(&filter_key)? else {
                        return Ok(Change::Keep.into());
                    };
                    let mut counts = current.unwrap_or_default();
                    counts.matched_events += matched;
                    counts.metric_value_sum += sum;
                    counts.last_match_time = now;
                    Ok(Update::from(Change::Put(counts))
                        .provided(Compare::ModRevision(filter_key.clone(), kv.mod_revision)))
                },
            )?;
            parsed.push((filter, pattern));
        }
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_values_come_from_numbers_json_and_fields() {
        let empty = BTreeMap::new();
        assert_eq!(MetricValue::parse("1").unwrap().of("x", &empty), Some(1.0));
        let json = MetricValue::parse("$.latency.ms").unwrap();
        assert_eq!(json.of(r#"{"latency": {"ms": 12.5}}"#, &empty), Some(12.5));
        assert_eq!(json.of(r#"{"latency": {"ms": "7"}}"#, &empty), Some(7.0));
        assert_eq!(json.of(r#"{"latency": 3}"#, &empty), None);
        let indexed = MetricValue::parse("$.list[1]").unwrap();
        assert_eq!(indexed.of(r#"{"list": [1, 2]}"#, &empty), Some(2.0));
        let field = MetricValue::parse("$bytes").unwrap();
        let extracted: BTreeMap<String, String> = [("$bytes".to_string(), "1534".to_string())]
            .into_iter()
            .collect();
        assert_eq!(field.of("", &extracted), Some(1534.0));
        assert!(MetricValue::parse("bytes").is_err());
        assert!(MetricValue::parse("$.").is_err());
        assert!(MetricValue::parse("$").is_err());
    }
}
