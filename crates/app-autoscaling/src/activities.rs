//! Scaling activities: written by the policies' executions, scheduled actions and changes of
//! a target's range; DescribeScalingActivities (newest first per target).

use berth_model::Scope;
use berth_store::{Op, page_token};

use crate::records::{NotScaledReason, ScalingActivity, StatusCode};
use crate::targets::page_start;
use crate::{AppAutoScaling, Result, keys};

/// DescribeScalingActivities' filters and page.
#[derive(Debug, Clone, Default)]
pub struct ActivityFilter {
    pub resource_id: Option<String>,
    pub include_not_scaled: bool,
    pub max_results: Option<usize>,
    pub next_token: Option<String>,
}

pub(crate) fn new_activity(
    resource_id: &str,
    description: String,
    cause: String,
    start_time: f64,
) -> ScalingActivity {
    ScalingActivity {
        activity_id: uuid::Uuid::new_v4().to_string(),
        resource_id: resource_id.to_string(),
        description,
        cause,
        start_time,
        end_time: None,
        status_code: StatusCode::InProgress,
        status_message: None,
        details: None,
        not_scaled_reasons: Vec::new(),
        order: ordering_nanos(),
    }
}

/// Now in nanoseconds, strictly increasing within the process (activities written in one
/// millisecond keep their order).
fn ordering_nanos() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let next = now.max(last + 1);
        match LAST.compare_exchange(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

pub(crate) fn activity_key(scope: &Scope, a: &ScalingActivity) -> String {
    keys::activity(scope, &a.resource_id, a.order, &a.activity_id)
}

pub(crate) fn put_activity(scope: &Scope, a: &ScalingActivity) -> Op {
    Op::put(activity_key(scope, a), berth_store::encode(a))
}

/// "Setting desired count to N." and its outcome.
pub(crate) fn desired_count_activity(
    resource_id: &str,
    to: i64,
    cause: String,
    now: f64,
) -> ScalingActivity {
    new_activity(
        resource_id,
        format!("Setting desired count to {to}."),
        cause,
        now,
    )
}

pub(crate) fn finish(a: &mut ScalingActivity, outcome: std::result::Result<i64, String>) {
    a.end_time = Some(berth_store::now_epoch().max(a.start_time));
    match outcome {
        Ok(to) => {
            a.status_code = StatusCode::Successful;
            a.status_message = Some(format!(
                "Successfully set desired count to {to}. Change successfully fulfilled by ecs."
            ));
        }
        Err(message) => {
            a.status_code = StatusCode::Failed;
            a.status_message = Some(message);
        }
    }
}

pub(crate) fn not_scaled_activity(
    resource_id: &str,
    cause: String,
    reason: NotScaledReason,
    now: f64,
) -> ScalingActivity {
    let mut a = new_activity(
        resource_id,
        "Attempting to scale due to alarm triggered".to_string(),
        cause,
        now,
    );
    a.end_time = Some(now);
    a.status_code = StatusCode::Failed;
    a.status_message = Some(format!(
        "Failed to set desired count to {}",
        reason.current_capacity.unwrap_or_default()
    ));
    a.not_scaled_reasons = vec![reason];
    a
}

/// How long activities are kept: AWS shows the last six weeks.
pub const ACTIVITY_RETENTION_SECONDS: f64 = 42.0 * 86_400.0;

impl AppAutoScaling {
    /// Deletes every account's activities that started more than six weeks before `now`
    /// (the leader's housekeeping); answers how many.
    pub fn expire_activities(&self, now: f64) -> Result<usize> {
        let mut expired = Vec::new();
        berth_store::scan(&*self.store, keys::ROOT, None, |kv| {
            if kv.key.contains(keys::ACTIVITY_SEGMENT) {
                let a: ScalingActivity = berth_store::decode(kv)?;
                if a.start_time < now - ACTIVITY_RETENTION_SECONDS {
                    expired.push(Op::delete(kv.key.clone()));
                }
            }
            Ok::<_, crate::AutoScalingError>(true)
        })?;
        for batch in expired.chunks(128) {
            self.store.txn(&[], batch)?;
        }
        Ok(expired.len())
    }

    pub(crate) fn write_activity(&self, scope: &Scope, a: &ScalingActivity) -> Result<()> {
        self.store.txn(&[], &[put_activity(scope, a)])?;
        Ok(())
    }

    pub fn describe_scaling_activities(
        &self,
        scope: &Scope,
        filter: &ActivityFilter,
    ) -> Result<(Vec<ScalingActivity>, Option<String>)> {
        let limit = filter.max_results.unwrap_or(50);
        let prefix = match &filter.resource_id {
            Some(r) => keys::target_activities(scope, r),
            None => keys::activities_prefix(scope),
        };
        let mut after = page_start(filter.next_token.as_deref())?;
        let mut found: Vec<ScalingActivity> = Vec::new();
        loop {
            let chunk = self.store.range(&prefix, after.as_deref(), 256)?;
            for kv in &chunk {
                let a: ScalingActivity = berth_store::decode(kv)?;
                if !a.not_scaled_reasons.is_empty() && !filter.include_not_scaled {
                    continue;
                }
                if found.len() == limit {
                    let last = found.last().expect("limit is at least 1");
                    return Ok((
                        found.clone(),
                        Some(page_token::encode(&activity_key(scope, last))),
                    ));
                }
                found.push(a);
            }
            match chunk.last() {
                Some(kv) if chunk.len() == 256 => after = Some(kv.key.clone()),
                _ => return Ok((found, None)),
            }
        }
    }
}
