//! A metric's identity (namespace, name, dimensions) with CloudWatch's rules for each part,
//! and the units CloudWatch knows.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Result, invalid, missing};

/// CloudWatch's `StandardUnit` values.
pub use berth_model::cloudwatch::STANDARD_UNITS as UNITS;

/// At most this many dimensions on a metric.
pub const MAX_DIMENSIONS: usize = 30;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Dimension {
    pub name: String,
    pub value: String,
}

/// ListMetrics' dimension filter: a name, and the value it must have when one is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DimensionFilter {
    pub name: String,
    pub value: Option<String>,
}

/// A metric: its namespace, name and dimensions (kept sorted by name, as two puts naming
/// the same dimensions in another order name the same metric).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Metric {
    pub namespace: String,
    pub metric_name: String,
    pub dimensions: Vec<Dimension>,
}

impl Metric {
    /// The metric `namespace`/`name`/`dimensions` after CloudWatch's checks; `at` names the
    /// request member in messages (`MetricData.member.1`, or empty at the top level).
    pub fn parse(
        namespace: &str,
        metric_name: &str,
        dimensions: Vec<Dimension>,
        at: &str,
    ) -> Result<Metric> {
        check_namespace(namespace)?;
        let name_param = param(at, "MetricName");
        check_length(metric_name, &name_param, 255)?;
        Ok(Metric {
            namespace: namespace.to_string(),
            metric_name: metric_name.to_string(),
            dimensions: check_dimensions(dimensions, &param(at, "Dimensions"))?,
        })
    }

    /// A short, stable id for the metric's keys: a hash of its identity.
    pub fn id(&self) -> String {
        let mut hash = Sha256::new();
        for part in [&self.namespace, &self.metric_name] {
            hash.update(part.as_bytes());
            hash.update([0]);
        }
        for d in &self.dimensions {
            hash.update(d.name.as_bytes());
            hash.update([0]);
            hash.update(d.value.as_bytes());
            hash.update([0]);
        }
        hex::encode(&hash.finalize()[..16])
    }

    /// Whether the metric has every dimension the filters name, with the value given.
    pub fn matches(&self, filters: &[DimensionFilter]) -> bool {
        filters.iter().all(|f| {
            self.dimensions
                .iter()
                .any(|d| d.name == f.name && f.value.as_ref().is_none_or(|v| *v == d.value))
        })
    }
}

/// `{at}.{member}`, or `member` at the top level.
pub(crate) fn param(at: &str, member: &str) -> String {
    if at.is_empty() {
        member.to_string()
    } else {
        format!("{at}.{member}")
    }
}

pub(crate) fn check_namespace(namespace: &str) -> Result<()> {
    check_length(namespace, "Namespace", 255)?;
    if namespace.starts_with(':') {
        return Err(invalid(format!(
            "The value {namespace} for parameter Namespace is invalid."
        )));
    }
    Ok(())
}

/// A string member of 1 to `max` characters.
pub(crate) fn check_length(value: &str, param: &str, max: usize) -> Result<()> {
    if value.is_empty() {
        return Err(missing(format!("The parameter {param} is required.")));
    }
    if value.chars().count() > max {
        return Err(invalid(format!(
            "The parameter {param} must be shorter than {} characters.",
            max + 1
        )));
    }
    Ok(())
}

/// Dimensions checked (names up to 255 characters, values up to 1024, at most 30, no name
/// twice) and sorted by name.
pub(crate) fn check_dimensions(mut dimensions: Vec<Dimension>, at: &str) -> Result<Vec<Dimension>> {
    if dimensions.len() > MAX_DIMENSIONS {
        return Err(invalid(format!(
            "The collection {at} must not have a size greater than {MAX_DIMENSIONS}."
        )));
    }
    for (i, d) in dimensions.iter().enumerate() {
        let member = format!("{at}.member.{}", i + 1);
        check_length(&d.name, &format!("{member}.Name"), 255)?;
        check_length(&d.value, &format!("{member}.Value"), 1024)?;
    }
    dimensions.sort();
    if let Some(pair) = dimensions.windows(2).find(|w| w[0].name == w[1].name) {
        return Err(invalid(format!(
            "No metric may have duplicate dimension names. The dimension {} appears more than once in {at}.",
            pair[0].name
        )));
    }
    Ok(dimensions)
}

/// A unit CloudWatch knows, `param` naming the member in the message.
pub(crate) fn check_unit(unit: &str, param: &str) -> Result<()> {
    if UNITS.contains(&unit) {
        Ok(())
    } else {
        Err(invalid(format!(
            "The value {unit} for parameter {param} is invalid."
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dim(name: &str, value: &str) -> Dimension {
        Dimension {
            name: name.into(),
            value: value.into(),
        }
    }

    #[test]
    fn dimension_order_does_not_make_another_metric() {
        let a = Metric::parse("App", "Latency", vec![dim("B", "2"), dim("A", "1")], "").unwrap();
        let b = Metric::parse("App", "Latency", vec![dim("A", "1"), dim("B", "2")], "").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.id(), b.id());
        let c = Metric::parse("App", "Latency", vec![dim("A", "1")], "").unwrap();
        assert_ne!(a.id(), c.id());
    }

    #[test]
    fn dimensions_are_limited_and_unique() {
        let many: Vec<_> = (0..31).map(|i| dim(&format!("d{i:02}"), "v")).collect();
        let e = Metric::parse("App", "M", many, "MetricData.member.1").unwrap_err();
        assert_eq!(e.code(), "InvalidParameterValue");
        assert_eq!(
            e.to_string(),
            "The collection MetricData.member.1.Dimensions must not have a size greater than 30."
        );
        let e = Metric::parse("App", "M", vec![dim("A", "1"), dim("A", "2")], "").unwrap_err();
        assert_eq!(e.code(), "InvalidParameterValue");
        let e = Metric::parse("App", "M", vec![dim("A", "")], "X").unwrap_err();
        assert_eq!(e.code(), "MissingParameter");
    }

    #[test]
    fn filters_need_each_named_dimension() {
        let m = Metric::parse("App", "M", vec![dim("A", "1"), dim("B", "2")], "").unwrap();
        let f = |name: &str, value: Option<&str>| DimensionFilter {
            name: name.into(),
            value: value.map(str::to_string),
        };
        assert!(m.matches(&[f("A", None)]));
        assert!(m.matches(&[f("A", Some("1")), f("B", None)]));
        assert!(!m.matches(&[f("A", Some("2"))]));
        assert!(!m.matches(&[f("C", None)]));
    }
}
