//! Scaling activities: one record per launch or termination, written in the same
//! transaction as the instance's change of state; DescribeScalingActivities.

use berth_store::Op;

use crate::errors::validation;
use crate::types::{Activity, ActivityStatus, AutoScalingGroup, Instance};
use crate::{AsgScope, AutoScaling, AutoScalingError, Result};

/// A page of DescribeScalingActivities.
#[derive(Debug, Clone, Default)]
pub struct ActivityPage {
    pub activities: Vec<Activity>,
    pub next_token: Option<String>,
}

/// A new activity in progress about `instance`: its key and the operation writing it.
pub(crate) fn start(
    scope: &AsgScope,
    group: &AutoScalingGroup,
    instance: &Instance,
    description: String,
    cause: String,
    now: f64,
) -> (String, Op) {
    let id = uuid::Uuid::new_v4().to_string();
    let details = match &instance.subnet_id {
        Some(subnet) => format!(
            "{{\"Subnet ID\":\"{subnet}\",\"Availability Zone\":\"{}\"}}",
            instance.availability_zone
        ),
        None => format!(
            "{{\"Availability Zone\":\"{}\"}}",
            instance.availability_zone
        ),
    };
    let activity = Activity {
        activity_id: id.clone(),
        group_name: group.name.clone(),
        group_arn: group.arn(scope),
        description,
        cause,
        start_time: now,
        end_time: None,
        status_code: ActivityStatus::InProgress,
        status_message: None,
        progress: 20,
        details,
    };
    let made = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let key = scope.activity_key(&group.name, made, &id);
    let op = Op::put(key.clone(), berth_store::encode(&activity));
    (key, op)
}

/// How long activities are kept: EC2 Auto Scaling shows the last six weeks.
pub const ACTIVITY_RETENTION_SECONDS: f64 = 42.0 * 86_400.0;

impl AutoScaling {
    /// Deletes every group's ended activities that started more than six weeks before
    /// `now` (housekeeping: deleting twice is harmless); answers how many.
    pub fn expire_activities(&self, now: f64) -> Result<usize> {
        let mut expired = Vec::new();
        berth_store::scan(
            self.store(),
            &AsgScope::all_activities_prefix(),
            None,
            |kv| {
                let a: Activity = berth_store::decode(kv)?;
                if a.status_code != ActivityStatus::InProgress
                    && a.start_time < now - ACTIVITY_RETENTION_SECONDS
                {
                    expired.push(Op::delete(kv.key.clone()));
                }
                Ok::<_, AutoScalingError>(true)
            },
        )?;
        for batch in expired.chunks(128) {
            self.store().txn(&[], batch)?;
        }
        Ok(expired.len())
    }

    /// The activity at `key` ended with `status`: the operation that records it (none
    /// when it is gone or ended already). Every activity is written together with its
    /// group's record, so the group's compare-and-swap orders the writes of one activity.
    pub(crate) fn finish(
        &self,
        key: &str,
        status: ActivityStatus,
        message: Option<String>,
    ) -> Result<Option<Op>> {
        let Some(kv) = self.store().get(key)? else {
            return Ok(None);
        };
        let mut activity: Activity = berth_store::decode(&kv)?;
        if activity.status_code != ActivityStatus::InProgress {
            return Ok(None);
        }
        activity.status_code = status;
        activity.status_message = message;
        activity.progress = 100;
        activity.end_time = Some(berth_store::now_epoch());
        Ok(Some(Op::put(
            key.to_string(),
            berth_store::encode(&activity),
        )))
    }

    /// A launch that ends before its instance was in service.
    pub(crate) fn end_launch(&self, key: &str) -> Result<Option<Op>> {
        self.finish(key, ActivityStatus::Cancelled, None)
    }

    pub(crate) fn activity_keys(&self, scope: &AsgScope, group: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        berth_store::scan(self.store(), &scope.activities_prefix(group), None, |kv| {
            out.push(kv.key.clone());
            Ok::<_, AutoScalingError>(true)
        })?;
        Ok(out)
    }

    /// DescribeScalingActivities: a group's activities (or every group's), newest first,
    /// or those `ids` names.
    pub fn describe_scaling_activities(
        &self,
        scope: &AsgScope,
        group: Option<&str>,
        ids: &[String],
        max_records: Option<i64>,
        next_token: Option<&str>,
    ) -> Result<ActivityPage> {
        let limit = max_records.unwrap_or(100);
        if !(1..=100).contains(&limit) {
            return Err(validation(format!(
                "1 validation error detected: Value '{limit}' at 'maxRecords' failed to satisfy constraint: Member must have value less than or equal to 100"
            )));
        }
        let groups: Vec<String> = match group {
            Some(name) => {
                self.group(scope, name)?;
                vec![name.to_string()]
            }
            None => self
                .describe_auto_scaling_groups(scope, &[], Some(100), None)?
                .groups
                .into_iter()
                .map(|g| g.name)
                .collect(),
        };
        let after = match next_token {
            Some(t) => Some(
                berth_store::page_token::decode(t)
                    .ok_or_else(|| validation("The token is not valid"))?,
            ),
            None => None,
        };
        let mut page = ActivityPage::default();
        let mut last: Option<String> = None;
        for name in groups {
            let prefix = scope.activities_prefix(&name);
            let start = after.clone().filter(|a| a.starts_with(&prefix));
            if after.is_some() && start.is_none() && after.as_deref() > Some(prefix.as_str()) {
                continue;
            }
            let mut full = false;
            berth_store::scan(self.store(), &prefix, start, |kv| {
                if page.activities.len() == limit as usize {
                    full = true;
                    return Ok(false);
                }
                let activity: Activity = berth_store::decode(kv)?;
                if ids.is_empty() || ids.contains(&activity.activity_id) {
                    page.activities.push(activity);
                    last = Some(kv.key.clone());
                }
                Ok::<_, AutoScalingError>(true)
            })?;
            if full {
                page.next_token = last.as_deref().map(berth_store::page_token::encode);
                break;
            }
        }
        Ok(page)
    }
}
