//! Alarms' tags: TagResource, UntagResource and ListTagsForResource, parsed from and
//! answered as documents; `parse_tags` is PutMetricAlarm's `Tags` too.

use berth_cloudwatch::alarms::AlarmTag;

use super::metrics::{required, strings};
use crate::protocol::AwsError;
use crate::protocol::document::{Document, Members};

/// A `Tags` list of `Key`/`Value` members.
pub(super) fn parse_tags(doc: &Document) -> Result<Vec<AlarmTag>, AwsError> {
    doc.list("Tags")?
        .iter()
        .map(|t| -> Result<AlarmTag, AwsError> {
            Ok(AlarmTag {
                key: required(t.string("Key")?, "Tags.member.N.Key")?,
                value: t.string("Value")?.unwrap_or_default(),
            })
        })
        .collect()
}

fn resource_arn(doc: &Document) -> Result<String, AwsError> {
    required(doc.string("ResourceARN")?, "ResourceARN")
}

pub(super) fn parse_tag(doc: &Document) -> Result<(String, Vec<AlarmTag>), AwsError> {
    let arn = resource_arn(doc)?;
    if doc.get("Tags").is_none() {
        return Err(AwsError::client(
            "MissingParameter",
            "The parameter Tags is required.",
        ));
    }
    Ok((arn, parse_tags(doc)?))
}

pub(super) fn parse_untag(doc: &Document) -> Result<(String, Vec<String>), AwsError> {
    let arn = resource_arn(doc)?;
    if doc.get("TagKeys").is_none() {
        return Err(AwsError::client(
            "MissingParameter",
            "The parameter TagKeys is required.",
        ));
    }
    Ok((arn, strings(doc, "TagKeys")?))
}

pub(super) fn parse_list(doc: &Document) -> Result<String, AwsError> {
    resource_arn(doc)
}

pub(super) fn tags_answer(tags: Vec<AlarmTag>) -> Document {
    let tags = tags
        .into_iter()
        .map(|t| {
            Members::new()
                .with("Key", t.key)
                .with("Value", t.value)
                .build()
        })
        .collect::<Vec<_>>();
    Members::new().with("Tags", tags).build()
}

/// TagResource's and UntagResource's empty output structure.
pub(super) fn empty_answer() -> Document {
    Members::new().build()
}
