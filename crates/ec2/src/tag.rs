//! Tags as values: a resource's tags, Create* calls' `TagSpecification`, and EC2's limits
//! on them.

use serde::{Deserialize, Serialize};

use crate::{Ec2Error, Result};

/// Tags per resource (EC2's quota).
const MAX_TAGS: usize = 50;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// A Create* call's `TagSpecification`: the tags for resources of `resource_type`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagSpecification {
    pub resource_type: String,
    pub tags: Vec<Tag>,
}

/// The tags of `specifications` meant for `resource_type`.
pub fn tags_for(specifications: &[TagSpecification], resource_type: &str) -> Result<Vec<Tag>> {
    let mut tags: Vec<Tag> = Vec::new();
    for spec in specifications {
        if spec.resource_type != resource_type {
            return Err(Ec2Error::InvalidParameterValue(format!(
                "'{}' is not a valid taggable resource type for this operation.",
                spec.resource_type
            )));
        }
        merge(&mut tags, &spec.tags);
    }
    check(&tags)?;
    Ok(tags)
}

pub(crate) fn merge(tags: &mut Vec<Tag>, new: &[Tag]) {
    for tag in new {
        match tags.iter_mut().find(|t| t.key == tag.key) {
            Some(t) => t.value = tag.value.clone(),
            None => tags.push(tag.clone()),
        }
    }
}

pub(crate) fn check(tags: &[Tag]) -> Result<()> {
    if tags.len() > MAX_TAGS {
        return Err(Ec2Error::InvalidParameterValue(format!(
            "The number of tags exceeds the limit of {MAX_TAGS} tags per resource."
        )));
    }
    for tag in tags {
        if tag.key.starts_with("aws:") {
            return Err(Ec2Error::InvalidParameterValue(
                "Tag keys starting with 'aws:' are reserved for internal use".into(),
            ));
        }
        if tag.key.is_empty() || tag.key.chars().count() > 128 {
            return Err(Ec2Error::InvalidParameterValue(format!(
                "Tag key exceeds the maximum length of 128 characters or is empty: '{}'",
                tag.key
            )));
        }
        if tag.value.chars().count() > 256 {
            return Err(Ec2Error::InvalidParameterValue(format!(
                "Tag value exceeds the maximum length of 256 characters: '{}'",
                tag.value
            )));
        }
    }
    Ok(())
}
