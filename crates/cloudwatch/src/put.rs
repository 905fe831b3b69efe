//! PutMetricData: each datum checked as CloudWatch checks it, then folded into its
//! metric's buckets at every resolution it is kept at, and the metric's record (ListMetrics)
//! touched, in store transactions: acknowledged data is durable.

use std::collections::BTreeMap;

use berth_store::{Change, Compare, Op, Update, decode, encode};
use serde::{Deserialize, Serialize};

use crate::aggregate::Aggregate;
use crate::metric::{Dimension, Metric, check_namespace, check_unit, param};
use crate::tiers::tiers_for;
use crate::{CloudWatch, CloudWatchError, CwScope, Result, combination, invalid, keys, missing};

/// At most this many datums in one PutMetricData.
pub const MAX_DATUMS: usize = 1000;
/// At most this many values (with their counts) in one datum.
pub const MAX_VALUES: usize = 150;
/// Data may be put up to two weeks back and two hours ahead.
const PAST_MS: i64 = 14 * 24 * 3600 * 1000;
const FUTURE_MS: i64 = 2 * 3600 * 1000;
/// A metric's record notes the time of its last put to this precision (RecentlyActive is
/// three hours): most puts leave it alone.
const LAST_PUT_PRECISION_MS: i64 = 60_000;
/// Keys one transaction touches at most (etcd refuses transactions of more than 128
/// operations by default); a request with more goes in several.
const MAX_TXN_KEYS: usize = 120;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StatisticSet {
    pub sample_count: f64,
    pub sum: f64,
    pub minimum: f64,
    pub maximum: f64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricDatum {
    pub metric_name: String,
    pub dimensions: Vec<Dimension>,
    pub timestamp_ms: Option<i64>,
    pub value: Option<f64>,
    pub values: Vec<f64>,
    pub counts: Vec<f64>,
    pub statistic_values: Option<StatisticSet>,
    pub unit: Option<String>,
    pub storage_resolution: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct PutMetricData {
    pub namespace: String,
    pub metric_data: Vec<MetricDatum>,
}

/// A metric's record: who it is, and when data was last put to it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct MetricRecord {
    pub metric: Metric,
    pub last_put_ms: i64,
}

pub(crate) use crate::chunk::Chunk;

/// One metric's changes: chunk key → (bucket start, unit, aggregate)s to merge in.
type Changes = BTreeMap<String, Vec<(i64, String, Aggregate)>>;

/// A checked datum, ready to fold in.
struct Sample {
    metric: Metric,
    unit: String,
    at_s: i64,
    aggregate: Aggregate,
    high_resolution: bool,
}

impl CloudWatch {
    pub fn put_metric_data(&self, scope: &CwScope, put: PutMetricData) -> Result<()> {
        self.put_metric_data_at(scope, put, crate::now_ms())
    }

    /// PutMetricData as if at `now_ms`.
    pub fn put_metric_data_at(
        &self,
        scope: &CwScope,
        put: PutMetricData,
        now_ms: i64,
    ) -> Result<()> {
        if put.namespace.starts_with("AWS/") {
            return Err(invalid(format!(
                "The value {} for parameter Namespace is invalid.",
                put.namespace
            )));
        }
        self.store_data(scope, put, now_ms)
    }

    /// What Berth's own services publish (`AWS/ApplicationELB`, `AWS/ECS`, …): the same
    /// checks and storage, in the `AWS/` namespaces a caller may not put to.
    pub fn publish(&self, scope: &CwScope, put: PutMetricData) -> Result<()> {
        self.store_data(scope, put, crate::now_ms())
    }

    fn store_data(&self, scope: &CwScope, put: PutMetricData, now_ms: i64) -> Result<()> {
        let samples = check(put, now_ms)?;
        let now_s = now_ms.div_euclid(1000);
        // Each metric's changes: chunk key → (bucket, unit, aggregate)s.
        let mut by_metric: BTreeMap<String, (Metric, Changes)> = BTreeMap::new();
        for s in samples {
            let id = s.metric.id();
            let entry = by_metric
                .entry(id.clone())
                .or_insert_with(|| (s.metric.clone(), BTreeMap::new()));
            for tier in tiers_for(s.high_resolution) {
                let bucket = tier.bucket(s.at_s);
                if !tier.keeps(bucket, now_s) {
                    continue;
                }
                let key = keys::chunk(scope, tier, tier.chunk_start(s.at_s), &id);
                entry
                    .1
                    .entry(key)
                    .or_default()
                    .push((bucket, s.unit.clone(), s.aggregate.clone()));
            }
        }
        // Whole metrics per transaction, as many as fit.
        let mut batch = Vec::new();
        let mut batch_keys = 0;
        for (id, (metric, chunks)) in by_metric {
            let size = 2 * chunks.len() + 1;
            if batch_keys + size > MAX_TXN_KEYS && !batch.is_empty() {
                self.commit(scope, std::mem::take(&mut batch), now_ms)?;
                batch_keys = 0;
            }
            batch_keys += size;
            batch.push((id, metric, chunks));
        }
        if !batch.is_empty() {
            self.commit(scope, batch, now_ms)?;
        }
        Ok(())
    }

    /// Folds a batch of metrics' changes into their chunks, and touches their records, in
    /// one transaction (a read-modify-write of every key, retried whole on a conflict).
    fn commit(
        &self,
        scope: &CwScope,
        batch: Vec<(String, Metric, Changes)>,
        now_ms: i64,
    ) -> Result<()> {
        let store = self.store();
        // The batch's first metric record is the record `update` reads and writes; every
        // other key is read, compared and written in the same transaction.
        let (first_id, first_metric, _) = &batch[0];
        let anchor = keys::metric(scope, &first_metric.namespace, first_id);
        berth_store::update(store, &anchor, |record: Option<MetricRecord>| {
            let mut compares = Vec::new();
            let mut ops = Vec::new();
            let mut anchor_change = Change::Keep;
            for (id, metric, chunks) in &batch {
                for (key, changes) in chunks {
                    let current = store.get(key)?;
                    let dist_key = keys::dist_of(key);
                    let current_dist = store.get(&dist_key)?;
                    let mut chunk: Chunk = match &current {
                        Some(kv) => Chunk::decode(kv, Some(current_dist.as_ref()))?,
                        None => Chunk::default(),
                    };
                    for (bucket, unit, aggregate) in changes {
                        match chunk
                            .buckets
                            .entry(*bucket)
                            .or_default()
                            .entry(unit.clone())
                        {
                            std::collections::btree_map::Entry::Occupied(mut o) => {
                                o.get_mut().merge(aggregate)
                            }
                            std::collections::btree_map::Entry::Vacant(v) => {
                                v.insert(aggregate.clone());
                            }
                        }
                    }
                    compares.push(Compare::ModRevision(
                        key.clone(),
                        current.map_or(0, |kv| kv.mod_revision),
                    ));
                    compares.push(Compare::ModRevision(
                        dist_key.clone(),
                        current_dist.map_or(0, |kv| kv.mod_revision),
                    ));
                    let (statistics, distributions) = chunk.encode();
                    ops.push(Op::put(key.clone(), statistics));
                    ops.push(Op::put(dist_key, distributions));
                }
                let fresh = |r: &MetricRecord| now_ms - r.last_put_ms < LAST_PUT_PRECISION_MS;
                let touched = MetricRecord {
                    metric: metric.clone(),
                    last_put_ms: now_ms,
                };
                if id == first_id {
                    if !record.as_ref().is_some_and(fresh) {
                        anchor_change = Change::Put(touched);
                    }
                    continue;
                }
                let key = keys::metric(scope, &metric.namespace, id);
                let current = store.get(&key)?;
                let record: Option<MetricRecord> = current.as_ref().map(decode).transpose()?;
                if !record.as_ref().is_some_and(fresh) {
                    compares.push(Compare::ModRevision(
                        key.clone(),
                        current.map_or(0, |kv| kv.mod_revision),
                    ));
                    ops.push(Op::put(key, encode(&touched)));
                }
            }
            Ok::<_, CloudWatchError>(Update {
                change: anchor_change,
                compares,
                ops,
            })
        })?;
        Ok(())
    }
}

/// The request's datums checked; errors of the same kind in several datums are reported
/// together, a line each, as CloudWatch does.
fn check(put: PutMetricData, now_ms: i64) -> Result<Vec<Sample>> {
    if put.namespace.is_empty() {
        return Err(missing("The parameter Namespace is required."));
    }
    check_namespace(&put.namespace)?;
    if put.metric_data.is_empty() {
        return Err(missing("The parameter MetricData is required."));
    }
    if put.metric_data.len() > MAX_DATUMS {
        return Err(invalid(format!(
            "The collection MetricData must not have a size greater than {MAX_DATUMS}."
        )));
    }
    let mut samples = Vec::new();
    let mut errors: Vec<CloudWatchError> = Vec::new();
    for (i, datum) in put.metric_data.into_iter().enumerate() {
        match check_datum(
            &put.namespace,
            datum,
            &format!("MetricData.member.{}", i + 1),
            now_ms,
        ) {
            Ok(mut s) => samples.append(&mut s),
            Err(e) => errors.push(e),
        }
    }
    let Some(first) = errors.first() else {
        return Ok(samples);
    };
    let code = first.code();
    let message = errors
        .iter()
        .filter(|e| e.code() == code)
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    Err(match first {
        CloudWatchError::MissingParameter(_) => missing(message),
        CloudWatchError::InvalidParameterCombination(_) => combination(message),
        _ => invalid(message),
    })
}

/// CloudWatch's range of values: ±2^360, nothing closer to zero than 2^-360 but zero.
fn check_value(v: f64, param: &str) -> Result<f64> {
    let limit = 2f64.powi(360);
    let abs = v.abs();
    if !v.is_finite() || abs > limit || (abs != 0.0 && abs < 1.0 / limit) {
        return Err(invalid(format!(
            "The value {v} for parameter {param} is invalid."
        )));
    }
    Ok(v)
}

fn check_datum(namespace: &str, d: MetricDatum, at: &str, now_ms: i64) -> Result<Vec<Sample>> {
    let metric = Metric::parse(namespace, &d.metric_name, d.dimensions, at)?;
    let exclusive = |a: &str, b: &str| {
        combination(format!(
            "The parameters {at}.{a} and {at}.{b} are mutually exclusive and you have specified both."
        ))
    };
    match (
        d.value.is_some(),
        d.statistic_values.is_some(),
        !d.values.is_empty(),
    ) {
        (true, true, _) => return Err(exclusive("Value", "StatisticValues")),
        (true, _, true) => return Err(exclusive("Value", "Values")),
        (_, true, true) => return Err(exclusive("StatisticValues", "Values")),
        (false, false, false) if d.counts.is_empty() => {
            return Err(missing(format!(
                "One of the parameters {at}.Value, {at}.StatisticValues or {at}.Values must be specified."
            )));
        }
        _ => {}
    }
    let unit = d.unit.unwrap_or_else(|| "None".to_string());
    check_unit(&unit, &param(at, "Unit"))?;
    let high_resolution = match d.storage_resolution {
        None | Some(60) => false,
        Some(1) => true,
        Some(other) => {
            return Err(invalid(format!(
                "The value {other} for parameter {at}.StorageResolution is invalid."
            )));
        }
    };
    let at_ms = d.timestamp_ms.unwrap_or(now_ms);
    if at_ms < now_ms - PAST_MS {
        return Err(invalid(format!(
            "The parameter {at}.Timestamp must specify a time within the past two weeks."
        )));
    }
    if at_ms > now_ms + FUTURE_MS {
        return Err(invalid(format!(
            "The parameter {at}.Timestamp must specify a time no more than two hours in the future."
        )));
    }
    let mut aggregates = Vec::new();
    if let Some(v) = d.value {
        aggregates.push(Aggregate::of_value(
            check_value(v, &param(at, "Value"))?,
            1.0,
        ));
    } else if let Some(set) = d.statistic_values {
        let p = |m: &str| format!("{at}.StatisticValues.{m}");
        let count = check_value(set.sample_count, &p("SampleCount"))?;
        let sum = check_value(set.sum, &p("Sum"))?;
        let min = check_value(set.minimum, &p("Minimum"))?;
        let max = check_value(set.maximum, &p("Maximum"))?;
        if count <= 0.0 {
            return Err(invalid(format!(
                "The parameter {} must be greater than 0.",
                p("SampleCount")
            )));
        }
        if min > max {
            return Err(invalid(format!(
                "The parameter {} must be greater than or equal to {}.",
                p("Maximum"),
                p("Minimum")
            )));
        }
        aggregates.push(Aggregate::of_set(count, sum, min, max));
    } else {
        if d.values.is_empty() {
            return Err(combination(format!(
                "The parameter {at}.Counts must be specified with {at}.Values."
            )));
        }
        if d.values.len() > MAX_VALUES {
            return Err(invalid(format!(
                "The collection {at}.Values must not have a size greater than {MAX_VALUES}."
            )));
        }
        if !d.counts.is_empty() && d.counts.len() != d.values.len() {
            return Err(invalid(format!(
                "The parameters {at}.Values and {at}.Counts must be of the same size."
            )));
        }
        for (j, v) in d.values.iter().enumerate() {
            let v = check_value(*v, &format!("{at}.Values.member.{}", j + 1))?;
            let count = d.counts.get(j).copied().unwrap_or(1.0);
            if !count.is_finite() || count < 0.0 {
                return Err(invalid(format!(
                    "The value {count} for parameter {at}.Counts.member.{} is invalid.",
                    j + 1
                )));
            }
            if count > 0.0 {
                aggregates.push(Aggregate::of_value(v, count));
            }
        }
    }
    Ok(aggregates
        .into_iter()
        .map(|aggregate| Sample {
            metric: metric.clone(),
            unit: unit.clone(),
            at_s: at_ms.div_euclid(1000),
            aggregate,
            high_resolution,
        })
        .collect())
}
