//! Reading a metric's buckets back: the resolution a read is served from (`tiers`), its
//! buckets merged into the periods asked for, and GetMetricStatistics on top.

use crate::aggregate::{Aggregate, Statistic};
use crate::metric::{Dimension, Metric, check_unit};
use crate::tiers::{check_period, tier_for_read};
use crate::{CloudWatch, CwScope, Result, chunk, combination, invalid, keys, missing};

/// At most this many datapoints in one GetMetricStatistics answer.
pub const MAX_DATAPOINTS: i64 = 1440;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct GetMetricStatistics {
    pub namespace: String,
    pub metric_name: String,
    pub dimensions: Vec<Dimension>,
    pub start_ms: i64,
    pub end_ms: i64,
    pub period: i64,
    pub statistics: Vec<String>,
    pub extended_statistics: Vec<String>,
    pub unit: Option<String>,
}

/// One period's statistics, as GetMetricStatistics answers them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Datapoint {
    pub timestamp_ms: i64,
    pub sample_count: Option<f64>,
    pub average: Option<f64>,
    pub sum: Option<f64>,
    pub minimum: Option<f64>,
    pub maximum: Option<f64>,
    pub unit: String,
    /// Percentiles by their names (`p99`), those the period's data has.
    pub extended_statistics: Vec<(String, f64)>,
}

/// A metric's data merged into periods: for each unit (in the order met), the periods'
/// aggregates in time order. Buckets are visited in time order, so a period is appended or
/// merged into the last one: no map and no copy of the unit's name per bucket.
#[derive(Debug, Default)]
pub(crate) struct Periods {
    pub by_unit: Vec<(String, Vec<(i64, Aggregate)>)>,
}

impl Periods {
    fn add(&mut self, slot: i64, unit: &str, aggregate: Aggregate) {
        let series = match self.by_unit.iter().position(|(u, _)| u == unit) {
            Some(i) => &mut self.by_unit[i].1,
            None => {
                self.by_unit.push((unit.to_string(), Vec::new()));
                &mut self.by_unit.last_mut().expect("just pushed").1
            }
        };
        match series.last_mut() {
            Some((at, a)) if *at == slot => a.merge(&aggregate),
            Some((at, _)) if *at > slot => {
                // Not met from ordered chunks; kept right all the same.
                match series.binary_search_by_key(&slot, |(at, _)| *at) {
                    Ok(i) => series[i].1.merge(&aggregate),
                    Err(i) => series.insert(i, (slot, aggregate)),
                }
            }
            _ => series.push((slot, aggregate)),
        }
    }

    /// Every (period start, unit, aggregate), by period start then unit.
    pub(crate) fn into_sorted(self) -> Vec<(i64, String, Aggregate)> {
        let mut all: Vec<(i64, String, Aggregate)> = self
            .by_unit
            .into_iter()
            .flat_map(|(unit, series)| series.into_iter().map(move |(at, a)| (at, unit.clone(), a)))
            .collect();
        all.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        all
    }
}

impl CloudWatch {
    /// The metric's data from `start_s` to `end_s` (exclusive), in periods of `period`
    /// seconds aligned on the start (rounded down to the resolution served), of `unit` only
    /// when one is given, as CloudWatch would have it at `now_s`. Without `percentiles` the
    /// buckets' distributions are not read (a record apart, most of a chunk's bytes).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn periods(
        &self,
        scope: &CwScope,
        metric: &Metric,
        start_s: i64,
        end_s: i64,
        period: i64,
        unit: Option<&str>,
        now_s: i64,
        percentiles: bool,
    ) -> Result<Periods> {
        let mut periods = Periods::default();
        let Some(tier) = tier_for_read(period, start_s, end_s, now_s) else {
            return Ok(periods);
        };
        let origin = tier.bucket(start_s);
        let id = metric.id();
        // Only chunks that can hold kept data: none before the retention, none after the
        // two hours ahead a put accepts.
        let first = origin.max(now_s - tier.retention);
        let last = end_s.min(now_s + 2 * 3600 + 1);
        let mut chunk_start = tier.chunk_start(first);
        while chunk_start < last {
            let key = keys::chunk(scope, &tier, chunk_start, &id);
            if let Some(kv) = self.store().get(&key)? {
                let distributions = if percentiles {
                    Some(self.store().get(&keys::dist_of(&key))?)
                } else {
                    None
                };
                chunk::visit(
                    &kv,
                    distributions.as_ref().map(Option::as_ref),
                    |bucket, u, aggregate| {
                        if bucket < origin
                            || bucket >= end_s
                            || !tier.keeps(bucket, now_s)
                            || unit.is_some_and(|wanted| wanted != u)
                        {
                            return;
                        }
                        let slot = origin + (bucket - origin).div_euclid(period) * period;
                        periods.add(slot, u, aggregate);
                    },
                )?;
            }
            chunk_start += tier.chunk;
        }
        Ok(periods)
    }

    pub fn get_metric_statistics(
        &self,
        scope: &CwScope,
        request: GetMetricStatistics,
    ) -> Result<(String, Vec<Datapoint>)> {
        self.get_metric_statistics_at(scope, request, crate::now_ms())
    }

    /// GetMetricStatistics as if at `now_ms`: the label (the metric's name) and the
    /// datapoints in time order.
    pub fn get_metric_statistics_at(
        &self,
        scope: &CwScope,
        r: GetMetricStatistics,
        now_ms: i64,
    ) -> Result<(String, Vec<Datapoint>)> {
        if r.namespace.is_empty() {
            return Err(missing("The parameter Namespace is required."));
        }
        if r.metric_name.is_empty() {
            return Err(missing("The parameter MetricName is required."));
        }
        let metric = Metric::parse(&r.namespace, &r.metric_name, r.dimensions, "")?;
        check_period(r.period, "Period")?;
        if r.statistics.is_empty() && r.extended_statistics.is_empty() {
            return Err(combination(
                "At least one of the parameters Statistics and ExtendedStatistics must be specified.",
            ));
        }
        if r.statistics.len() > 5 {
            return Err(invalid(
                "The collection Statistics must not have a size greater than 5.",
            ));
        }
        if r.extended_statistics.len() > 10 {
            return Err(invalid(
                "The collection ExtendedStatistics must not have a size greater than 10.",
            ));
        }
        let basics = r
            .statistics
            .iter()
            .enumerate()
            .map(|(i, s)| {
                Statistic::parse_basic(s).ok_or_else(|| {
                    invalid(format!(
                        "The value {s} for parameter Statistics.member.{} is invalid.",
                        i + 1
                    ))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let percentiles = r
            .extended_statistics
            .iter()
            .enumerate()
            .map(|(i, s)| {
                Statistic::parse_percentile(s)
                    .map(|p| (s.clone(), p))
                    .ok_or_else(|| {
                        invalid(format!(
                            "The value {s} for parameter ExtendedStatistics.member.{} is invalid.",
                            i + 1
                        ))
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        if let Some(unit) = &r.unit {
            check_unit(unit, "Unit")?;
        }
        let (start_s, end_s) = check_range(r.start_ms, r.end_ms)?;
        let requested = (end_s - start_s + r.period - 1) / r.period;
        if requested > MAX_DATAPOINTS {
            return Err(combination(format!(
                "You have requested up to {requested} datapoints, which exceeds the limit of {MAX_DATAPOINTS}. You may reduce the datapoints requested by increasing Period, or decreasing the time range."
            )));
        }
        let periods = self.periods(
            scope,
            &metric,
            start_s,
            end_s,
            r.period,
            r.unit.as_deref(),
            now_ms.div_euclid(1000),
            !percentiles.is_empty(),
        )?;
        let datapoints = periods
            .into_sorted()
            .into_iter()
            .map(|(at, unit, a)| {
                let stat = |s: Statistic| basics.contains(&s).then(|| a.statistic(s)).flatten();
                Datapoint {
                    timestamp_ms: at * 1000,
                    sample_count: stat(Statistic::SampleCount),
                    average: stat(Statistic::Average),
                    sum: stat(Statistic::Sum),
                    minimum: stat(Statistic::Minimum),
                    maximum: stat(Statistic::Maximum),
                    unit,
                    extended_statistics: percentiles
                        .iter()
                        .filter_map(|(name, p)| a.statistic(*p).map(|v| (name.clone(), v)))
                        .collect(),
                }
            })
            .collect();
        Ok((metric.metric_name, datapoints))
    }
}

/// A read's StartTime and EndTime in seconds: the start before the end.
pub(crate) fn check_range(start_ms: i64, end_ms: i64) -> Result<(i64, i64)> {
    let (start_s, end_s) = (start_ms.div_euclid(1000), end_ms.div_euclid(1000));
    if start_ms >= end_ms {
        return Err(invalid(
            "The parameter StartTime must be less than the parameter EndTime.",
        ));
    }
    // A range within one second still covers that second.
    Ok((start_s, end_s.max(start_s + 1)))
}
