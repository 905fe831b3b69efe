//! The key layout of CloudWatch's records.
//!
//! - `cloudwatch/metric/{account}/{region}/{hex(namespace)}/{metric-id}`: a metric's
//!   identity and when data was last put (ListMetrics, RecentlyActive); the namespace in
//!   hex so that one namespace's prefix is never another's.
//! - `cloudwatch/data/{tier}/{chunk-start:012}/{account}/{region}/{metric-id}`: a chunk of
//!   one metric's buckets at one resolution. Chunks sort by time within a resolution, so
//!   retention deletes from the front of each resolution and stops at the first kept one.

use crate::{CwScope, Tier};

pub const METRIC_ROOT: &str = "cloudwatch/metric/";
pub const DATA_ROOT: &str = "cloudwatch/data/";

pub fn metrics(scope: &CwScope) -> String {
    format!("{METRIC_ROOT}{}/{}/", scope.account, scope.region)
}

pub fn namespace_metrics(scope: &CwScope, namespace: &str) -> String {
    format!("{}{}/", metrics(scope), hex::encode(namespace))
}

pub fn metric(scope: &CwScope, namespace: &str, id: &str) -> String {
    format!("{}{id}", namespace_metrics(scope, namespace))
}

pub fn tier_data(tier: &Tier) -> String {
    format!("{DATA_ROOT}{}/", tier.code)
}

pub fn chunk(scope: &CwScope, tier: &Tier, chunk_start: i64, id: &str) -> String {
    format!(
        "{}{chunk_start:012}/{}/{}/{id}",
        tier_data(tier),
        scope.account,
        scope.region
    )
}

/// The chunk start a data key names.
pub fn chunk_start_of(tier: &Tier, key: &str) -> Option<i64> {
    key.strip_prefix(&tier_data(tier))?
        .split('/')
        .next()?
        .parse()
        .ok()
}
