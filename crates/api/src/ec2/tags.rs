//! CreateTags, DeleteTags, DescribeTags on every EC2 resource.

use berth_ec2::{Ec2, Ec2Scope};

use super::{ec2_error, filters, ids, tag_list};
use crate::protocol::AwsError;
use crate::protocol::query::{QueryRequest, Xml};

pub(super) fn create_tags(ec2: &Ec2, scope: &Ec2Scope, r: &QueryRequest) -> Result<Xml, AwsError> {
    let resources = ids(r, "ResourceId");
    if resources.is_empty() {
        return Err(AwsError::client(
            "MissingParameter",
            "The request must contain the parameter resourceIdSet",
        ));
    }
    let tags = tag_list(r, "Tag");
    if tags.is_empty() {
        return Err(AwsError::client(
            "MissingParameter",
            "The request must contain the parameter tagSet",
        ));
    }
    ec2.create_tags(scope, &resources, &tags)
        .map_err(ec2_error)?;
    Ok(super::done())
}

/// DeleteTags: `Tag.N.Key` with an optional `Tag.N.Value` (present but empty: only tags
/// whose value is empty).
pub(super) fn delete_tags(ec2: &Ec2, scope: &Ec2Scope, r: &QueryRequest) -> Result<Xml, AwsError> {
    let resources = ids(r, "ResourceId");
    if resources.is_empty() {
        return Err(AwsError::client(
            "MissingParameter",
            "The request must contain the parameter resourceIdSet",
        ));
    }
    let tags: Vec<(String, Option<String>)> = r
        .ec2_items("Tag")
        .iter()
        .map(|t| {
            (
                t.get("Key").unwrap_or_default().to_string(),
                t.get("Value").map(str::to_string),
            )
        })
        .collect();
    ec2.delete_tags(scope, &resources, &tags)
        .map_err(ec2_error)?;
    Ok(super::done())
}

pub(super) fn describe_tags(
    ec2: &Ec2,
    scope: &Ec2Scope,
    r: &QueryRequest,
) -> Result<Xml, AwsError> {
    let tags = ec2.describe_tags(scope, &filters(r)).map_err(ec2_error)?;
    let mut x = Xml::default();
    x.items("tagSet", &tags, |x, t| {
        x.leaf("resourceId", &t.resource_id)
            .leaf("resourceType", t.resource_type)
            .leaf("key", &t.key)
            .leaf("value", &t.value);
    });
    Ok(x)
}
