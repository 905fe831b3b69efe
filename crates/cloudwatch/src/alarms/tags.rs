//! Alarms' tags: TagResource, UntagResource and ListTagsForResource on an alarm's ARN
//! (`arn:aws:cloudwatch:REGION:ACCOUNT:alarm:NAME`), and the checks PutMetricAlarm's
//! `Tags` shares: keys of 1 to 128 characters, values up to 256, at most 50 a resource.

use berth_store::{Change, update};

use super::{AlarmTag, MetricAlarm, alarm_key, not_found};
use crate::{CloudWatch, CloudWatchError, CwScope, Result};

/// Tags a CloudWatch resource may carry.
const MAX_TAGS: usize = 50;

/// The alarm name an ARN in `scope` names; anything else is not found.
fn alarm_name<'a>(scope: &CwScope, arn: &'a str) -> Result<&'a str> {
    let prefix = format!(
        "arn:aws:cloudwatch:{}:{}:alarm:",
        scope.region, scope.account
    );
    arn.strip_prefix(&prefix)
        .filter(|name| !name.is_empty())
        .ok_or_else(|| not_found(arn))
}

/// The tags' own checks (lengths; at most 50).
pub(crate) fn check_tags(tags: &[AlarmTag]) -> Result<()> {
    for t in tags {
        if t.key.is_empty() || t.key.chars().count() > 128 {
            return Err(crate::invalid(format!(
                "The tag key '{}' must be between 1 and 128 characters long.",
                t.key
            )));
        }
        if t.value.chars().count() > 256 {
            return Err(crate::invalid(format!(
                "The value of tag '{}' must be at most 256 characters long.",
                t.key
            )));
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(too_many());
    }
    Ok(())
}

fn too_many() -> CloudWatchError {
    crate::invalid(format!(
        "A CloudWatch resource can have at most {MAX_TAGS} tags."
    ))
}

impl CloudWatch {
    /// TagResource: new keys appended, existing keys' values replaced.
    pub fn tag_resource(&self, scope: &CwScope, arn: &str, tags: &[AlarmTag]) -> Result<()> {
        let name = alarm_name(scope, arn)?;
        check_tags(tags)?;
        update(
            self.store(),
            &alarm_key(scope, name),
            |current: Option<MetricAlarm>| {
                let Some(mut alarm) = current else {
                    return Err(not_found(name));
                };
                for tag in tags {
                    match alarm.tags.iter_mut().find(|t| t.key == tag.key) {
                        Some(t) => t.value = tag.value.clone(),
                        None => alarm.tags.push(tag.clone()),
                    }
                }
                if alarm.tags.len() > MAX_TAGS {
                    return Err(too_many());
                }
                Ok::<_, CloudWatchError>(Change::Put(alarm))
            },
        )?;
        Ok(())
    }

    /// UntagResource: keys the alarm does not have are passed over.
    pub fn untag_resource(&self, scope: &CwScope, arn: &str, keys: &[String]) -> Result<()> {
        let name = alarm_name(scope, arn)?;
        update(
            self.store(),
            &alarm_key(scope, name),
            |current: Option<MetricAlarm>| {
                let Some(mut alarm) = current else {
                    return Err(not_found(name));
                };
                let before = alarm.tags.len();
                alarm.tags.retain(|t| !keys.contains(&t.key));
                Ok::<_, CloudWatchError>(if alarm.tags.len() == before {
                    Change::Keep
                } else {
                    Change::Put(alarm)
                })
            },
        )?;
        Ok(())
    }

    /// ListTagsForResource.
    pub fn list_tags_for_resource(&self, scope: &CwScope, arn: &str) -> Result<Vec<AlarmTag>> {
        let name = alarm_name(scope, arn)?;
        self.alarm(scope, name)?
            .map(|a| a.tags)
            .ok_or_else(|| not_found(name))
    }
}
