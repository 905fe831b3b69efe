//! Tags of load balancers, target groups, listeners and rules: at most 50 per resource,
//! keys 1–128 characters (not `aws:`), values up to 256; AddTags replaces a key's value.

use serde::{Deserialize, Serialize};

use crate::{Elbv2Error, Result, invalid};

pub const MAX_TAGS: usize = 50;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// Tags a request gives, checked: no key twice, each within ELBv2's limits.
pub(crate) fn check(tags: &[Tag]) -> Result<()> {
    let mut seen = std::collections::BTreeSet::new();
    for tag in tags {
        if tag.key.is_empty() || tag.key.chars().count() > 128 {
            return Err(invalid(
                "1 validation error detected: Value at 'tags.member.key' failed to satisfy constraint: Member must have length between 1 and 128",
            ));
        }
        if tag.value.as_ref().is_some_and(|v| v.chars().count() > 256) {
            return Err(invalid(
                "1 validation error detected: Value at 'tags.member.value' failed to satisfy constraint: Member must have length less than or equal to 256",
            ));
        }
        if tag.key.starts_with("aws:") {
            return Err(invalid(
                "Tag keys starting with 'aws:' are reserved for internal use",
            ));
        }
        if !seen.insert(tag.key.as_str()) {
            return Err(Elbv2Error::DuplicateTagKeys(format!(
                "Tag key '{}' is duplicated",
                tag.key
            )));
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(too_many());
    }
    Ok(())
}

fn too_many() -> Elbv2Error {
    Elbv2Error::TooManyTags(format!(
        "The quota for the number of tags that can be assigned to a load balancer or target group is {MAX_TAGS}"
    ))
}

/// `tags` with `added` set (a key already there takes the new value).
pub(crate) fn add(tags: &mut Vec<Tag>, added: &[Tag]) -> Result<()> {
    for tag in added {
        match tags.iter_mut().find(|t| t.key == tag.key) {
            Some(t) => t.value = tag.value.clone(),
            None => tags.push(tag.clone()),
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(too_many());
    }
    Ok(())
}

pub(crate) fn remove(tags: &mut Vec<Tag>, keys: &[String]) {
    tags.retain(|t| !keys.contains(&t.key));
}

use crate::keys::ElbScope;
use crate::{Elbv2, ListenerArn, LoadBalancerArn, RuleArn, TargetGroupArn};

/// A resource tags are on, by its ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tagged {
    LoadBalancer(LoadBalancerArn),
    TargetGroup(TargetGroupArn),
    Listener(ListenerArn),
    Rule(RuleArn),
}

impl Tagged {
    /// The resource an ARN names, by its resource type.
    pub fn parse(arn: &str) -> Result<Tagged> {
        let resource = arn.splitn(6, ':').nth(5).unwrap_or_default();
        let kind = resource.split('/').next().unwrap_or_default();
        match kind {
            "loadbalancer" => LoadBalancerArn::parse(arn).map(Tagged::LoadBalancer),
            "targetgroup" => TargetGroupArn::parse(arn).map(Tagged::TargetGroup),
            "listener" => ListenerArn::parse(arn).map(Tagged::Listener),
            "listener-rule" => RuleArn::parse(arn).map(Tagged::Rule),
            _ => Err(invalid(format!("'{arn}' is not a valid resource ARN"))),
        }
    }
}

impl Elbv2 {
    /// The tags of a resource.
    pub fn tags_of(&self, scope: &ElbScope, resource: &Tagged) -> Result<Vec<Tag>> {
        Ok(match resource {
            Tagged::LoadBalancer(arn) => self.load_balancer(scope, arn)?.tags,
            Tagged::TargetGroup(arn) => self.target_group(scope, arn)?.tags,
            Tagged::Listener(arn) => self.listener(scope, arn)?.tags,
            Tagged::Rule(arn) => {
                let listener = self.listener(scope, &arn.listener()).map_err(rule_gone)?;
                if listener.default_rule_id == arn.id() {
                    Vec::new()
                } else {
                    listener
                        .rules
                        .into_iter()
                        .find(|r| r.id == arn.id())
                        .map(|r| r.tags)
                        .ok_or_else(|| {
                            Elbv2Error::RuleNotFound("One or more rules not found".into())
                        })?
                }
            }
        })
    }

    /// Changes a resource's tags.
    fn change_tags(
        &self,
        scope: &ElbScope,
        resource: &Tagged,
        change: &dyn Fn(&mut Vec<Tag>) -> Result<()>,
    ) -> Result<()> {
        match resource {
            Tagged::LoadBalancer(arn) => {
                self.change_load_balancer(scope, arn, |lb| change(&mut lb.tags))?;
            }
            Tagged::TargetGroup(arn) => {
                self.change_target_group(scope, arn, |g| change(&mut g.tags))?;
            }
            Tagged::Listener(arn) => {
                self.change_listener(scope, arn, |l| change(&mut l.tags))?;
            }
            Tagged::Rule(arn) => {
                self.change_listener(scope, &arn.listener(), |l| {
                    let rule = l
                        .rules
                        .iter_mut()
                        .find(|r| r.id == arn.id())
                        .ok_or_else(|| {
                            Elbv2Error::RuleNotFound("One or more rules not found".into())
                        })?;
                    change(&mut rule.tags)
                })
                .map_err(rule_gone)?;
            }
        }
        Ok(())
    }

    /// AddTags to every resource named.
    pub fn add_tags(&self, scope: &ElbScope, resources: &[Tagged], added: &[Tag]) -> Result<()> {
        check(added)?;
        for r in resources {
            self.change_tags(scope, r, &|tags| add(tags, added))?;
        }
        Ok(())
    }

    /// RemoveTags from every resource named.
    pub fn remove_tags(
        &self,
        scope: &ElbScope,
        resources: &[Tagged],
        keys: &[String],
    ) -> Result<()> {
        for r in resources {
            self.change_tags(scope, r, &|tags| {
                remove(tags, keys);
                Ok(())
            })?;
        }
        Ok(())
    }
}

fn rule_gone(e: Elbv2Error) -> Elbv2Error {
    match e {
        Elbv2Error::ListenerNotFound(_) => {
            Elbv2Error::RuleNotFound("One or more rules not found".into())
        }
        e => e,
    }
}
