//! Request validation CloudWatch Logs does before it looks anything up: names (length
//! first, then pattern, with AWS's texts), KMS key ARNs, tags.

use crate::{LogScope, LogsError, MAX_TAGS, Result};

/// AWS's request validation of a name: its length first (1 to 512), then its pattern, each
/// with the text CloudWatch Logs answers ("1 validation error detected: Value '…' at
/// 'logGroupName' failed to satisfy constraint: Member must …", as published in aws-cli and
/// SDK issues).
fn check_name(name: &str, field: &str, pattern: &str, valid: impl Fn(char) -> bool) -> Result<()> {
    let rule = if name.is_empty() {
        "Member must have length greater than or equal to 1".to_string()
    } else if name.chars().count() > 512 {
        "Member must have length less than or equal to 512".to_string()
    } else if !name.chars().all(valid) {
        format!("Member must satisfy regular expression pattern: {pattern}")
    } else {
        return Ok(());
    };
    Err(LogsError::InvalidParameter(format!(
        "1 validation error detected: Value '{name}' at '{field}' failed to satisfy constraint: {rule}"
    )))
}

pub fn check_group_name(name: &str) -> Result<()> {
    check_name(name, "logGroupName", "[\\.\\-_/#A-Za-z0-9]+", |c| {
        c.is_ascii_alphanumeric() || "._-/#".contains(c)
    })
}

pub fn check_stream_name(name: &str) -> Result<()> {
    check_name(name, "logStreamName", "[^:*]*", |c| c != ':' && c != '*')
}

/// A KMS key as CloudWatch Logs takes it: the ARN of a key (`arn:aws:kms:REGION:ACCOUNT:key/ID`)
/// in the group's region. Anything else is answered with the text CloudWatch Logs gives for a
/// key it cannot use ("The specified KMS Key Id could not be found. '<group>'", as quoted in
/// hashicorp/terraform#24194 and hashicorp/terraform-provider-aws#8042); Berth cannot look
/// keys up, so a well-formed ARN is accepted.
pub fn check_kms_key(scope: &LogScope, group: &str, key: &str) -> Result<()> {
    let parts: Vec<&str> = key.splitn(6, ':').collect();
    let ok = key.len() <= 256
        && match parts.as_slice() {
            ["arn", partition, "kms", region, account, resource] => {
                partition.starts_with("aws")
                    && *region == scope.region
                    && account.len() == 12
                    && account.bytes().all(|b| b.is_ascii_digit())
                    && resource.strip_prefix("key/").is_some_and(|id| {
                        !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    })
            }
            _ => false,
        };
    if ok {
        Ok(())
    } else {
        Err(LogsError::InvalidParameter(format!(
            "The specified KMS Key Id could not be found. '{group}'"
        )))
    }
}

pub(crate) fn check_tags(tags: &std::collections::BTreeMap<String, String>) -> Result<()> {
    if tags.len() > MAX_TAGS {
        return Err(LogsError::InvalidParameter(format!(
            "1 validation error detected: Value at 'tags' failed to satisfy constraint: Member must have length less than or equal to {MAX_TAGS}"
        )));
    }
    for (k, v) in tags {
        if k.is_empty() || k.len() > 128 || v.len() > 256 || k.starts_with("aws:") {
            return Err(LogsError::InvalidParameter(format!(
                "Invalid tag: key '{k}' must be 1-128 characters not starting with 'aws:', value at most 256 characters"
            )));
        }
    }
    Ok(())
}
