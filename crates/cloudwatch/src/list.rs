//! ListMetrics: the metrics of a scope with data put in the last two weeks (or, with
//! `RecentlyActive`, the last three hours), filtered by namespace, name and dimensions,
//! 500 a page behind a key-based token.

use berth_store::{decode, page_token, scan};

use crate::metric::{DimensionFilter, Metric, check_length, check_namespace};
use crate::put::MetricRecord;
use crate::{CloudWatch, CloudWatchError, CwScope, Result, invalid, keys};

/// Metrics in one page.
pub const PAGE_SIZE: usize = 500;
/// Metrics without data put for this long are not listed.
const LISTED_FOR_MS: i64 = 14 * 24 * 3600 * 1000;
const RECENTLY_ACTIVE_MS: i64 = 3 * 3600 * 1000;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListMetrics {
    pub namespace: Option<String>,
    pub metric_name: Option<String>,
    pub dimensions: Vec<DimensionFilter>,
    pub next_token: Option<String>,
    pub recently_active: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsPage {
    pub metrics: Vec<Metric>,
    pub next_token: Option<String>,
}

impl CloudWatch {
    pub fn list_metrics(&self, scope: &CwScope, request: ListMetrics) -> Result<MetricsPage> {
        self.list_metrics_at(scope, request, crate::now_ms())
    }

    pub fn list_metrics_at(
        &self,
        scope: &CwScope,
        r: ListMetrics,
        now_ms: i64,
    ) -> Result<MetricsPage> {
        if let Some(ns) = &r.namespace {
            check_namespace(ns)?;
        }
        if let Some(name) = &r.metric_name {
            check_length(name, "MetricName", 255)?;
        }
        if r.dimensions.len() > 10 {
            return Err(invalid(
                "The collection Dimensions must not have a size greater than 10.",
            ));
        }
        let since = match r.recently_active.as_deref() {
            None => now_ms - LISTED_FOR_MS,
            Some("PT3H") => now_ms - RECENTLY_ACTIVE_MS,
            Some(other) => {
                return Err(invalid(format!(
                    "The value {other} for parameter RecentlyActive is invalid."
                )));
            }
        };
        let prefix = match &r.namespace {
            Some(ns) => keys::namespace_metrics(scope, ns),
            None => keys::metrics(scope),
        };
        let after = match &r.next_token {
            Some(token) => Some(
                page_token::decode(token)
                    .filter(|k| k.starts_with(&prefix))
                    .ok_or_else(|| invalid("The value for parameter NextToken is invalid."))?,
            ),
            None => None,
        };
        let mut found: Vec<(String, Metric)> = Vec::new();
        scan(self.store(), &prefix, after, |kv| {
            let record: MetricRecord = decode(kv)?;
            let wanted = record.last_put_ms >= since
                && r.metric_name
                    .as_ref()
                    .is_none_or(|n| *n == record.metric.metric_name)
                && record.metric.matches(&r.dimensions);
            if wanted {
                found.push((kv.key.clone(), record.metric));
            }
            Ok::<_, CloudWatchError>(found.len() <= PAGE_SIZE)
        })?;
        let next_token = (found.len() > PAGE_SIZE).then(|| {
            found.truncate(PAGE_SIZE);
            page_token::encode(&found[PAGE_SIZE - 1].0)
        });
        Ok(MetricsPage {
            metrics: found.into_iter().map(|(_, m)| m).collect(),
            next_token,
        })
    }
}
