//! The key layout of CloudWatch's records.
//!
//! - `cloudwatch/metric/{account}/{region}/{hex(namespace)}/{metric-id}`: a metric's
//!   identity and when data was last put (ListMetrics, RecentlyActive); the namespace in
//!   hex so that one namespace's prefix is never another's.
//! - `cloudwatch/data/{tier}/{chunk-start:012}/{account}/{region}/{metric-id}`: a chunk of
//!   one metric's buckets at one resolution. Chunks sort by time within a resolution, so
//!   retention deletes from the front of each resolution and stops at the first kept one.
//! - `cloudwatch/dist/{tier}/{chunk-start:012}/{account}/{region}/{metric-id}`: the same
//!   chunk's buckets' distributions (for percentiles), apart so that reads of the basic
//!   statistics never read them.

use crate::{CwScope, Tier};

pub const METRIC_ROOT: &str = "cloudwatch/metric/";
pub const DATA_ROOT: &str = "cloudwatch/data/";
pub const DIST_ROOT: &str = "cloudwatch/dist/";

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

pub fn tier_dist(tier: &Tier) -> String {
    format!("{DIST_ROOT}{}/", tier.code)
}

/// The distributions' key of a chunk's data key.
pub fn dist_of(data_key: &str) -> String {
    match data_key.strip_prefix(DATA_ROOT) {
        Some(rest) => format!("{DIST_ROOT}{rest}"),
        None => data_key.to_string(),
    }
}

/// The chunk start a data (or distributions) key under `prefix` names.
pub fn chunk_start_of(prefix: &str, key: &str) -> Option<i64> {
    key.strip_prefix(prefix)?.split('/').next()?.parse().ok()
}
