//! GetMetricData: MetricStat queries read as GetMetricStatistics reads, expressions
//! evaluated over them (`expr`), results in ScanBy's order, paged by MaxDatapoints.

use std::collections::{BTreeMap, HashMap};

use berth_store::page_token;

use crate::aggregate::{Aggregate, Statistic};
use crate::expr::{self, Env, Series, Value};
use crate::metric::{Dimension, Metric, check_unit};
use crate::read::check_range;
use crate::tiers::{check_period, tier_for_read};
use crate::{CloudWatch, CloudWatchError, CwScope, Result, combination, invalid, missing};

pub const MAX_QUERIES: usize = 500;
pub const DEFAULT_MAX_DATAPOINTS: i64 = 100_800;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricStat {
    pub namespace: String,
    pub metric_name: String,
    pub dimensions: Vec<Dimension>,
    pub period: i64,
    pub stat: String,
    pub unit: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricDataQuery {
    pub id: String,
    pub metric_stat: Option<MetricStat>,
    pub expression: Option<String>,
    pub label: Option<String>,
    pub return_data: Option<bool>,
    pub period: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScanBy {
    #[default]
    TimestampDescending,
    TimestampAscending,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct GetMetricData {
    pub queries: Vec<MetricDataQuery>,
    pub start_ms: i64,
    pub end_ms: i64,
    pub next_token: Option<String>,
    pub scan_by: Option<String>,
    pub max_datapoints: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricDataResult {
    pub id: String,
    pub label: String,
    pub timestamps_ms: Vec<i64>,
    pub values: Vec<f64>,
    /// `Complete` or `PartialData` (more in the next page).
    pub status_code: &'static str,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricDataOutput {
    pub results: Vec<MetricDataResult>,
    pub next_token: Option<String>,
}

/// A query checked: what it reads, or the expression it computes.
enum Plan {
    Stat {
        metric: Metric,
        period: i64,
        stat: Statistic,
        unit: Option<String>,
    },
    Expression(expr::Expr),
}

/// Where expressions find other queries' values: MetricStat series read once, other
/// expressions evaluated once, a query reached again while it is evaluated is a cycle.
struct Evaluation<'a> {
    cw: &'a CloudWatch,
    scope: &'a CwScope,
    queries: &'a [MetricDataQuery],
    plans: &'a [Plan],
    start_s: i64,
    end_s: i64,
    now_s: i64,
    done: HashMap<String, Value>,
    evaluating: Vec<String>,
    /// A store failure met while reading: the request fails with it, not as bad math.
    failed: Option<CloudWatchError>,
}

impl<'a> Evaluation<'a> {
    fn value_of(&mut self, index: usize) -> Result<Value, String> {
        // The request's slices outlive this borrow of the evaluation (an expression is
        // evaluated with the evaluation itself as its environment).
        let (queries, plans): (&'a [MetricDataQuery], &'a [Plan]) = (self.queries, self.plans);
        let id = queries[index].id.clone();
        if let Some(v) = self.done.get(&id) {
            return Ok(v.clone());
        }
        if self.evaluating.contains(&id) {
            return Err(format!("Circular dependency on {id}"));
        }
        self.evaluating.push(id.clone());
        let value = match &plans[index] {
            Plan::Stat {
                metric,
                period,
                stat,
                unit,
            } => match self.read(metric, *period, *stat, unit.as_deref(), &queries[index]) {
                Ok(series) => Value::Series(series),
                Err(e) => {
                    let message = e.to_string();
                    self.failed = Some(e);
                    return Err(message);
                }
            },
            Plan::Expression(e) => {
                let mut v = expr::eval(e, self)?;
                if let Value::Series(s) = &mut v {
                    s.label = label_of(&queries[index]);
                }
                v
            }
        };
        self.evaluating.pop();
        // Kept for the expressions that may read it again; without any, nothing will (and
        // a week of a metric's points is not copied for nothing).
        if self.plans.iter().any(|p| matches!(p, Plan::Expression(_))) {
            self.done.insert(id, value.clone());
        }
        Ok(value)
    }

    fn read(
        &self,
        metric: &Metric,
        period: i64,
        stat: Statistic,
        unit: Option<&str>,
        query: &MetricDataQuery,
    ) -> Result<Series> {
        let periods = self.cw.periods(
            self.scope,
            metric,
            self.start_s,
            self.end_s,
            period,
            unit,
            self.now_s,
            matches!(stat, Statistic::Percentile(_)),
        )?;
        // Units apart in the store are one series here.
        let mut by_unit = periods.by_unit.into_iter().map(|(_, series)| series);
        let merged = match (by_unit.next(), by_unit.next()) {
            (None, _) => Vec::new(),
            (Some(only), None) => only,
            (Some(a), Some(b)) => {
                let mut merged: BTreeMap<i64, Aggregate> = BTreeMap::new();
                for (at, a) in a.into_iter().chain(b).chain(by_unit.flatten()) {
                    match merged.entry(at) {
                        std::collections::btree_map::Entry::Occupied(mut o) => {
                            o.get_mut().merge(&a)
                        }
                        std::collections::btree_map::Entry::Vacant(v) => {
                            v.insert(a);
                        }
                    }
                }
                merged.into_iter().collect()
            }
        };
        let origin = tier_for_read(period, self.start_s, self.end_s, self.now_s)
            .map_or(self.start_s, |t| t.bucket(self.start_s));
        Ok(Series {
            label: label_of(query),
            points: merged
                .into_iter()
                .filter_map(|(t, a)| a.statistic(stat).map(|v| (t, v)))
                .collect(),
            grid: Some((origin, period, self.end_s)),
        })
    }
}

impl Env for Evaluation<'_> {
    fn lookup(&mut self, id: &str) -> Result<Value, String> {
        let index = self
            .queries
            .iter()
            .position(|q| q.id == id)
            .ok_or_else(|| format!("Unrecognized identifier {id}"))?;
        self.value_of(index)
    }

    fn metrics(&mut self) -> Result<Vec<Series>, String> {
        let mut all = Vec::new();
        for i in 0..self.queries.len() {
            if matches!(self.plans[i], Plan::Stat { .. })
                && let Value::Series(s) = self.value_of(i)?
            {
                all.push(s);
            }
        }
        Ok(all)
    }
}

fn label_of(q: &MetricDataQuery) -> String {
    q.label.clone().unwrap_or_else(|| match &q.metric_stat {
        Some(stat) => stat.metric_name.clone(),
        None => q.id.clone(),
    })
}

fn check_id(id: &str, param: &str) -> Result<()> {
    let mut chars = id.chars();
    let ok = id.len() <= 255
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "The value {id} for parameter {param} is invalid. It must start with a lowercase letter and contain only letters, numbers and underscores."
        )))
    }
}

fn plan(q: &MetricDataQuery, at: &str) -> Result<Plan> {
    match (&q.metric_stat, &q.expression) {
        (Some(_), Some(_)) => Err(combination(format!(
            "The parameters {at}.MetricStat and {at}.Expression are mutually exclusive and you have specified both."
        ))),
        (None, None) => Err(missing(format!(
            "One of the parameters {at}.MetricStat or {at}.Expression must be specified."
        ))),
        (Some(s), None) => {
            let p = format!("{at}.MetricStat");
            let metric = Metric::parse(
                &s.namespace,
                &s.metric_name,
                s.dimensions.clone(),
                &format!("{p}.Metric"),
            )?;
            check_period(s.period, &format!("{p}.Period"))?;
            if let Some(unit) = &s.unit {
                check_unit(unit, &format!("{p}.Unit"))?;
            }
            Ok(Plan::Stat {
                metric,
                period: s.period,
                stat: Statistic::parse(&s.stat, &format!("{p}.Stat"))?,
                unit: s.unit.clone(),
            })
        }
        (None, Some(text)) => {
            if let Some(period) = q.period {
                check_period(period, &format!("{at}.Period"))?;
            }
            expr::parse(text)
                .map(Plan::Expression)
                .map_err(|e| invalid(format!("Error in expression {}: {e}", q.id)))
        }
    }
}

impl CloudWatch {
    pub fn get_metric_data(&self, scope: &CwScope, r: GetMetricData) -> Result<MetricDataOutput> {
        self.get_metric_data_at(scope, r, crate::now_ms())
    }

    pub fn get_metric_data_at(
        &self,
        scope: &CwScope,
        r: GetMetricData,
        now_ms: i64,
    ) -> Result<MetricDataOutput> {
        if r.queries.is_empty() {
            return Err(missing("The parameter MetricDataQueries is required."));
        }
        if r.queries.len() > MAX_QUERIES {
            return Err(invalid(format!(
                "The collection MetricDataQueries must not have a size greater than {MAX_QUERIES}."
            )));
        }
        let scan_by = match r.scan_by.as_deref() {
            None | Some("TimestampDescending") => ScanBy::TimestampDescending,
            Some("TimestampAscending") => ScanBy::TimestampAscending,
            Some(other) => {
                return Err(invalid(format!(
                    "The value {other} for parameter ScanBy is invalid."
                )));
            }
        };
        let max = r.max_datapoints.unwrap_or(DEFAULT_MAX_DATAPOINTS);
        if max < 1 {
            return Err(invalid(format!(
                "The value {max} for parameter MaxDatapoints is invalid."
            )));
        }
        let (start_s, end_s) = check_range(r.start_ms, r.end_ms)?;
        let mut plans = Vec::new();
        for (i, q) in r.queries.iter().enumerate() {
            let at = format!("MetricDataQueries.member.{}", i + 1);
            check_id(&q.id, &format!("{at}.Id"))?;
            if r.queries[..i].iter().any(|other| other.id == q.id) {
                return Err(invalid(format!(
                    "The value {} for parameter {at}.Id is duplicated.",
                    q.id
                )));
            }
            plans.push(plan(q, &at)?);
        }
        let skip = match &r.next_token {
            Some(token) => page_token::decode(token)
                .and_then(|t| t.parse::<usize>().ok())
                .ok_or_else(|| {
                    CloudWatchError::InvalidNextToken("The specified token is not valid.".into())
                })?,
            None => 0,
        };
        let mut evaluation = Evaluation {
            cw: self,
            scope,
            queries: &r.queries,
            plans: &plans,
            start_s,
            end_s,
            now_s: now_ms.div_euclid(1000),
            done: HashMap::new(),
            evaluating: Vec::new(),
            failed: None,
        };
        let mut all = Vec::new();
        for (i, q) in r.queries.iter().enumerate() {
            if q.return_data == Some(false) {
                continue;
            }
            let series = match evaluation.value_of(i) {
                Ok(Value::Series(s)) => s,
                Ok(Value::Scalar(v)) => spread(v, label_of(q), &mut evaluation)
                    .map_err(|e| invalid(format!("Error in expression {}: {e}", q.id)))?,
                Ok(Value::Array(_)) => {
                    return Err(invalid(format!(
                        "Error in expression {}: the expression must return a single time series.",
                        q.id
                    )));
                }
                Err(e) => {
                    return Err(match evaluation.failed.take() {
                        Some(failure) => failure,
                        None => invalid(format!("Error in expression {}: {e}", q.id)),
                    });
                }
            };
            let mut points: Vec<(i64, f64)> = series.points.into_iter().collect();
            if scan_by == ScanBy::TimestampDescending {
                points.reverse();
            }
            all.push((q.id.clone(), series.label, points));
        }
        // Pages: the points of every result in order, MaxDatapoints of them a page.
        let max = max as usize;
        let mut offset = 0;
        let mut results = Vec::new();
        for (id, label, points) in all {
            let (from, to) = (offset, offset + points.len());
            offset = to;
            let lo = skip.clamp(from, to) - from;
            let hi = (skip + max).clamp(from, to) - from;
            let page = &points[lo..hi];
            results.push(MetricDataResult {
                id,
                label,
                timestamps_ms: page.iter().map(|(t, _)| t * 1000).collect(),
                values: page.iter().map(|(_, v)| *v).collect(),
                status_code: if hi < points.len() {
                    "PartialData"
                } else {
                    "Complete"
                },
            });
        }
        Ok(MetricDataOutput {
            results,
            next_token: (offset > skip + max)
                .then(|| page_token::encode(&(skip + max).to_string())),
        })
    }
}

/// A number as a series: the value at every timestamp the request's MetricStat series have.
fn spread(v: f64, label: String, evaluation: &mut Evaluation<'_>) -> Result<Series, String> {
    let all = evaluation.metrics()?;
    Ok(Series {
        label,
        points: all
            .iter()
            .flat_map(|s| s.points.keys().map(|t| (*t, v)))
            .collect(),
        grid: all.iter().find_map(|s| s.grid),
    })
}
