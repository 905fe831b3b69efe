//! CloudWatch metrics: PutMetricData, GetMetricStatistics, ListMetrics and GetMetricData.
//! A datum is folded, as it is put, into an aggregate per period bucket at each of
//! CloudWatch's resolutions (1 s for high-resolution data, 1 min, 5 min, 1 h), kept as
//! store records (a chunk of buckets per record, `keys`) for each resolution's retention
//! (3 h, 15 days, 63 days, 455 days): what a put acknowledges is durable, and the disk
//! holds at most a bounded number of buckets per metric (docs/cloudwatch.md). Metric
//! alarms and their evaluation: `alarms`.

mod aggregate;
pub mod alarms;
mod chunk;
mod data;
mod expr;
mod keys;
mod list;
mod metric;
mod put;
mod read;
mod retention;
mod tiers;

use std::sync::Arc;

use berth_store::{Store, StoreError};

pub use aggregate::{Aggregate, Statistic};
pub use alarms::{
    AlarmActions, AlarmFired, AlarmSchedule, ComparisonOperator, MetricAlarm, NoActions,
    PutMetricAlarm, StateValue, TreatMissingData,
};
pub use data::{
    GetMetricData, MetricDataOutput, MetricDataQuery, MetricDataResult, MetricStat, ScanBy,
};
pub use list::{ListMetrics, MetricsPage};
pub use metric::{Dimension, DimensionFilter, Metric, UNITS};
pub use put::{MetricDatum, PutMetricData, StatisticSet};
pub use read::{Datapoint, GetMetricStatistics};
pub use tiers::{TIERS, Tier};

pub type Result<T, E = CloudWatchError> = std::result::Result<T, E>;

/// CloudWatch's errors, by the codes its Query form (and `x-amzn-query-error`) names them.
#[derive(Debug, thiserror::Error)]
pub enum CloudWatchError {
    #[error("{0}")]
    InvalidParameterValue(String),
    #[error("{0}")]
    MissingParameter(String),
    #[error("{0}")]
    InvalidParameterCombination(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("{0}")]
    ResourceNotFound(String),
    #[error("{0}")]
    InvalidNextToken(String),
    #[error("{0}")]
    InvalidFormat(String),
    #[error("{0}")]
    Store(#[from] StoreError),
}

impl CloudWatchError {
    /// The error's code (the Query protocol's `Code`, the `x-amzn-query-error` header's).
    pub fn code(&self) -> &'static str {
        match self {
            CloudWatchError::InvalidParameterValue(_) => "InvalidParameterValue",
            CloudWatchError::MissingParameter(_) => "MissingParameter",
            CloudWatchError::InvalidParameterCombination(_) => "InvalidParameterCombination",
            CloudWatchError::LimitExceeded(_) => "LimitExceeded",
            CloudWatchError::ResourceNotFound(_) => "ResourceNotFound",
            CloudWatchError::InvalidNextToken(_) => "InvalidNextToken",
            CloudWatchError::InvalidFormat(_) => "InvalidFormat",
            CloudWatchError::Store(_) => "InternalServiceError",
        }
    }

    /// Whether the fault is the server's (HTTP 500).
    pub fn is_internal(&self) -> bool {
        matches!(self, CloudWatchError::Store(_))
    }
}

pub(crate) fn invalid(message: impl Into<String>) -> CloudWatchError {
    CloudWatchError::InvalidParameterValue(message.into())
}

pub(crate) fn missing(message: impl Into<String>) -> CloudWatchError {
    CloudWatchError::MissingParameter(message.into())
}

pub(crate) fn combination(message: impl Into<String>) -> CloudWatchError {
    CloudWatchError::InvalidParameterCombination(message.into())
}

/// The account and region a request acts in: metrics are regional, per account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CwScope {
    pub account: String,
    pub region: String,
}

impl CwScope {
    pub fn new(account: &str, region: &str) -> CwScope {
        CwScope {
            account: account.to_string(),
            region: region.to_string(),
        }
    }
}

/// CloudWatch metrics over the store.
pub struct CloudWatch {
    store: Arc<dyn Store>,
}

impl CloudWatch {
    pub fn new(store: Arc<dyn Store>) -> CloudWatch {
        CloudWatch { store }
    }

    pub(crate) fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
