//! What a period bucket keeps of the values put in it: sample count, sum, minimum, maximum,
//! and a distribution for percentiles: the exact values while there are few distinct ones,
//! then a bounded log-binned sketch (relative error under 1%, DDSketch's idea). CloudWatch
//! has no percentiles for data holding negative values or statistic sets of several
//! different values; neither does a bucket that was given such data.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Result, invalid};

/// Distinct values kept exactly before a bucket's distribution becomes a sketch.
const EXACT_LIMIT: usize = 64;
/// The sketch's bin ratio: a value is known to within 1%.
const GAMMA: f64 = 1.02;
/// The most bins a sketch keeps; past it the lowest bins merge (upper percentiles, which
/// alarms and dashboards ask for, keep their accuracy).
const MAX_BINS: usize = 512;

/// The statistics of a bucket (or of several merged).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Aggregate {
    #[serde(rename = "n")]
    pub sample_count: f64,
    #[serde(rename = "s")]
    pub sum: f64,
    #[serde(rename = "lo")]
    pub minimum: f64,
    #[serde(rename = "hi")]
    pub maximum: f64,
    #[serde(rename = "d")]
    distribution: Distribution,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum Distribution {
    /// (value, count) pairs by value.
    #[serde(rename = "x")]
    Exact(Vec<(f64, f64)>),
    /// Counts of zeros and of positive values by bin (`ceil(log_gamma(v))`).
    #[serde(rename = "b")]
    Bins { zero: f64, bins: BTreeMap<i32, f64> },
    /// Percentiles cannot be had (negative values, statistic sets).
    #[serde(rename = "u")]
    Unavailable,
}

impl Aggregate {
    /// `count` samples of `value`.
    pub fn of_value(value: f64, count: f64) -> Aggregate {
        Aggregate {
            sample_count: count,
            sum: value * count,
            minimum: value,
            maximum: value,
            distribution: if value < 0.0 {
                Distribution::Unavailable
            } else {
                Distribution::Exact(vec![(value, count)])
            },
        }
    }

    /// A statistic set: its values are not known, so percentiles only when they are all one.
    pub fn of_set(sample_count: f64, sum: f64, minimum: f64, maximum: f64) -> Aggregate {
        let same = sample_count <= 1.0 || minimum == maximum;
        Aggregate {
            sample_count,
            sum,
            minimum,
            maximum,
            distribution: if same && minimum >= 0.0 {
                Distribution::Exact(vec![(minimum, sample_count)])
            } else {
                Distribution::Unavailable
            },
        }
    }

    /// Count, sum and extremes only (a read of the basic statistics): no percentiles.
    pub(crate) fn basic(sample_count: f64, sum: f64, minimum: f64, maximum: f64) -> Aggregate {
        Aggregate {
            sample_count,
            sum,
            minimum,
            maximum,
            distribution: Distribution::Unavailable,
        }
    }

    /// Count, sum, minimum and maximum, and the distribution: what a chunk record keeps
    /// apart (`chunk.rs`).
    pub(crate) fn parts(&self) -> ([f64; 4], &Distribution) {
        (
            [self.sample_count, self.sum, self.minimum, self.maximum],
            &self.distribution,
        )
    }

    pub(crate) fn from_parts(stats: [f64; 4], distribution: Distribution) -> Aggregate {
        let [sample_count, sum, minimum, maximum] = stats;
        Aggregate {
            sample_count,
            sum,
            minimum,
            maximum,
            distribution,
        }
    }

    /// Folds `other` in.
    pub fn merge(&mut self, other: &Aggregate) {
        self.sample_count += other.sample_count;
        self.sum += other.sum;
        self.minimum = self.minimum.min(other.minimum);
        self.maximum = self.maximum.max(other.maximum);
        let mine = std::mem::replace(&mut self.distribution, Distribution::Unavailable);
        self.distribution = merge_distributions(mine, &other.distribution);
    }

    pub fn average(&self) -> f64 {
        if self.sample_count == 0.0 {
            0.0
        } else {
            self.sum / self.sample_count
        }
    }

    /// The `p`th percentile (nearest rank), when the bucket's data allows one.
    pub fn percentile(&self, p: f64) -> Option<f64> {
        let total: f64 = match &self.distribution {
            Distribution::Unavailable => return None,
            Distribution::Exact(values) => values.iter().map(|(_, c)| c).sum(),
            Distribution::Bins { zero, bins } => zero + bins.values().sum::<f64>(),
        };
        if total <= 0.0 {
            return None;
        }
        let rank = (p / 100.0 * total).ceil().max(1.0);
        let mut seen = 0.0;
        let found = match &self.distribution {
            Distribution::Exact(values) => values.iter().find_map(|(v, c)| {
                seen += c;
                (seen >= rank).then_some(*v)
            }),
            Distribution::Bins { zero, bins } => {
                seen += zero;
                if seen >= rank {
                    Some(0.0)
                } else {
                    bins.iter().find_map(|(bin, c)| {
                        seen += c;
                        (seen >= rank).then(|| bin_value(*bin))
                    })
                }
            }
            Distribution::Unavailable => None,
        };
        // Rounding in a long sum may leave the last rank unreached: the maximum it is.
        Some(
            found
                .unwrap_or(self.maximum)
                .clamp(self.minimum, self.maximum),
        )
    }

    /// The value of statistic `stat`, when the bucket has one.
    pub fn statistic(&self, stat: Statistic) -> Option<f64> {
        match stat {
            Statistic::SampleCount => Some(self.sample_count),
            Statistic::Average => Some(self.average()),
            Statistic::Sum => Some(self.sum),
            Statistic::Minimum => Some(self.minimum),
            Statistic::Maximum => Some(self.maximum),
            Statistic::Percentile(p) => self.percentile(p),
        }
    }
}

fn merge_distributions(mine: Distribution, other: &Distribution) -> Distribution {
    match (mine, other) {
        (Distribution::Unavailable, _) | (_, Distribution::Unavailable) => {
            Distribution::Unavailable
        }
        (Distribution::Exact(mut a), Distribution::Exact(b)) => {
            for (v, c) in b {
                match a.binary_search_by(|(x, _)| x.total_cmp(v)) {
                    Ok(i) => a[i].1 += c,
                    Err(i) => a.insert(i, (*v, *c)),
                }
            }
            if a.len() > EXACT_LIMIT {
                binned(&a)
            } else {
                Distribution::Exact(a)
            }
        }
        (Distribution::Exact(a), Distribution::Bins { .. }) => {
            merge_distributions(other.clone(), &Distribution::Exact(a))
        }
        (Distribution::Bins { mut zero, mut bins }, other) => {
            let (z, b) = match other {
                Distribution::Exact(values) => match binned(values) {
                    Distribution::Bins { zero, bins } => (zero, bins),
                    _ => unreachable!("values bin"),
                },
                Distribution::Bins { zero, bins } => (*zero, bins.clone()),
                Distribution::Unavailable => unreachable!("handled above"),
            };
            zero += z;
            for (bin, c) in b {
                *bins.entry(bin).or_default() += c;
            }
            while bins.len() > MAX_BINS {
                let (_, c) = bins.pop_first().expect("more than MAX_BINS");
                *bins.first_entry().expect("bins remain").get_mut() += c;
            }
            Distribution::Bins { zero, bins }
        }
    }
}

fn binned(values: &[(f64, f64)]) -> Distribution {
    let mut zero = 0.0;
    let mut bins = BTreeMap::new();
    for (v, c) in values {
        if *v <= 0.0 {
            zero += c;
        } else {
            *bins.entry(bin_of(*v)).or_insert(0.0) += c;
        }
    }
    Distribution::Bins { zero, bins }
}

fn bin_of(v: f64) -> i32 {
    (v.ln() / GAMMA.ln()).ceil() as i32
}

/// The value a bin stands for: the one within 1% of every value in it.
fn bin_value(bin: i32) -> f64 {
    2.0 * GAMMA.powi(bin) / (GAMMA + 1.0)
}

/// A statistic CloudWatch computes over a period.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Statistic {
    SampleCount,
    Average,
    Sum,
    Minimum,
    Maximum,
    /// `pNN` or `pNN.NN`.
    Percentile(f64),
}

impl Statistic {
    /// One of the five statistics (GetMetricStatistics' `Statistics`).
    pub fn parse_basic(name: &str) -> Option<Statistic> {
        Some(match name {
            "SampleCount" => Statistic::SampleCount,
            "Average" => Statistic::Average,
            "Sum" => Statistic::Sum,
            "Minimum" => Statistic::Minimum,
            "Maximum" => Statistic::Maximum,
            _ => return None,
        })
    }

    /// A percentile `p0.0` to `p100` with at most two decimals (`ExtendedStatistics`).
    pub fn parse_percentile(name: &str) -> Option<Statistic> {
        let number = name.strip_prefix('p')?;
        let decimals = number.split_once('.').map_or(0, |(_, d)| d.len());
        if number.is_empty()
            || decimals > 2
            || !number.chars().all(|c| c.is_ascii_digit() || c == '.')
        {
            return None;
        }
        let p: f64 = number.parse().ok()?;
        (0.0..=100.0)
            .contains(&p)
            .then_some(Statistic::Percentile(p))
    }

    /// A `Stat` of GetMetricData's MetricStat: a statistic or a percentile.
    pub fn parse(name: &str, param: &str) -> Result<Statistic> {
        Statistic::parse_basic(name)
            .or_else(|| Statistic::parse_percentile(name))
            .ok_or_else(|| {
                invalid(format!(
                    "The value {name} for parameter {param} is invalid."
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(values: &[f64]) -> Aggregate {
        let mut a = Aggregate::of_value(values[0], 1.0);
        for v in &values[1..] {
            a.merge(&Aggregate::of_value(*v, 1.0));
        }
        a
    }

    #[test]
    fn basic_statistics_and_exact_percentiles() {
        let a = of(&[3.0, 1.0, 2.0, 4.0]);
        assert_eq!(a.sample_count, 4.0);
        assert_eq!(a.sum, 10.0);
        assert_eq!(a.minimum, 1.0);
        assert_eq!(a.maximum, 4.0);
        assert_eq!(a.average(), 2.5);
        assert_eq!(a.percentile(50.0), Some(2.0));
        assert_eq!(a.percentile(75.0), Some(3.0));
        assert_eq!(a.percentile(100.0), Some(4.0));
        assert_eq!(a.percentile(0.0), Some(1.0));
        let fifty = of(&(1..=50).map(f64::from).collect::<Vec<_>>());
        assert_eq!(fifty.percentile(99.0), Some(50.0));
        assert_eq!(fifty.percentile(90.5), Some(46.0));
    }

    #[test]
    fn many_values_keep_percentiles_within_one_percent_and_bounded() {
        let values: Vec<f64> = (1..=10_000).map(f64::from).collect();
        let a = of(&values);
        for (p, exact) in [(50.0, 5000.0), (90.0, 9000.0), (99.0, 9900.0)] {
            let got = a.percentile(p).unwrap();
            assert!((got - exact).abs() / exact < 0.02, "p{p}: {got}");
        }
        match &a.distribution {
            Distribution::Bins { bins, .. } => assert!(bins.len() <= MAX_BINS),
            other => panic!("{other:?}"),
        }
        let json = serde_json::to_vec(&a).unwrap();
        assert!(json.len() < 16 * 1024, "{}", json.len());
        let back: Aggregate = serde_json::from_slice(&json).unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn negative_values_and_mixed_sets_have_no_percentiles() {
        assert_eq!(of(&[1.0, -1.0]).percentile(50.0), None);
        let mut set = Aggregate::of_set(3.0, 6.0, 1.0, 3.0);
        assert_eq!(set.percentile(50.0), None);
        set.merge(&Aggregate::of_value(2.0, 1.0));
        assert_eq!(set.sample_count, 4.0);
        assert_eq!(set.statistic(Statistic::Average), Some(2.0));
        let same = Aggregate::of_set(4.0, 20.0, 5.0, 5.0);
        assert_eq!(same.percentile(90.0), Some(5.0));
    }

    #[test]
    fn statistics_are_named_as_cloudwatch_names_them() {
        assert_eq!(
            Statistic::parse("p99", "Stat").unwrap(),
            Statistic::Percentile(99.0)
        );
        assert_eq!(
            Statistic::parse("p99.9", "Stat").unwrap(),
            Statistic::Percentile(99.9)
        );
        assert_eq!(Statistic::parse("Sum", "Stat").unwrap(), Statistic::Sum);
        for bad in ["p101", "p", "p9.999", "avg", "tm99"] {
            let e =
                Statistic::parse(bad, "MetricDataQueries.member.1.MetricStat.Stat").unwrap_err();
            assert_eq!(e.code(), "InvalidParameterValue", "{bad}");
        }
    }
}
