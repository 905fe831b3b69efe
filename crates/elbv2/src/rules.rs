//! Listener rules: CreateRule, DescribeRules, ModifyRule, DeleteRule, SetRulePriorities.
//! Rules live in their listener's record (`listeners.rs`), so priorities are unique per
//! listener by one compare-and-swap; what they are made of is `actions.rs`.

use std::collections::BTreeMap;

use crate::actions::{Action, Condition, Rule, RuleView, check_actions, check_conditions};
use crate::keys::ElbScope;
use crate::listeners::Listener;
use crate::tags::{self, Tag};
use crate::{Elbv2, Elbv2Error, ListenerArn, Page, Paging, Result, RuleArn, invalid, random_id};

/// Priorities a rule may have.
pub const PRIORITIES: std::ops::RangeInclusive<i64> = 1..=50_000;

/// CreateRule's request, parsed.
#[derive(Debug, Clone)]
pub struct CreateRule {
    pub listener: ListenerArn,
    pub priority: i64,
    pub conditions: Vec<Condition>,
    pub actions: Vec<Action>,
    pub tags: Vec<Tag>,
}

/// ModifyRule's request, parsed: what is given replaces what the rule had.
#[derive(Debug, Clone, Default)]
pub struct ModifyRule {
    pub conditions: Option<Vec<Condition>>,
    pub actions: Option<Vec<Action>>,
}

fn check_priority(priority: i64) -> Result<u32> {
    if !PRIORITIES.contains(&priority) {
        return Err(invalid(format!(
            "1 validation error detected: Value '{priority}' at 'priority' failed to satisfy constraint: Member must have value {}",
            if priority < 1 {
                "greater than or equal to 1"
            } else {
                "less than or equal to 50000"
            }
        )));
    }
    Ok(priority as u32)
}

fn rule_not_found() -> Elbv2Error {
    Elbv2Error::RuleNotFound("One or more rules not found".into())
}

impl Elbv2 {
    /// CreateRule: its priority must be free on the listener (`PriorityInUse`).
    pub fn create_rule(&self, scope: &ElbScope, mut req: CreateRule) -> Result<RuleView> {
        let priority = check_priority(req.priority)?;
        check_conditions(&req.conditions)?;
        tags::check(&req.tags)?;
        let id = random_id();
        let listener = self.change_listener_checked(scope, &req.listener, |listener, ctx| {
            check_actions(&mut req.actions, ctx)?;
            if listener.rules.iter().any(|r| r.priority == priority) {
                return Err(Elbv2Error::PriorityInUse(format!(
                    "Priority '{priority}' is currently in use"
                )));
            }
            listener.rules.push(Rule {
                id: id.clone(),
                priority,
                conditions: req.conditions.clone(),
                actions: req.actions.clone(),
                tags: req.tags.clone(),
            });
            listener.rules.sort_by_key(|r| r.priority);
            Ok(())
        })?;
        listener
            .rule_views()
            .into_iter()
            .find(|v| v.arn.id() == id)
            .ok_or_else(rule_not_found)
    }

    /// DescribeRules: a listener's rules by priority, its default rule last; or those
    /// `arns` name.
    pub fn describe_rules(
        &self,
        scope: &ElbScope,
        listener: Option<&ListenerArn>,
        arns: &[RuleArn],
        paging: &Paging,
    ) -> Result<Page<RuleView>> {
        let size = paging.size()?;
        if let Some(arn) = listener {
            let all = self.listener(scope, arn)?.rule_views();
            let after = paging.start_after()?;
            let start = match after {
                Some(key) => all
                    .iter()
                    .position(|v| v.arn.id() == key)
                    .map(|i| i + 1)
                    .ok_or_else(|| invalid("The marker is not valid"))?,
                None => 0,
            };
            let rest = &all[start.min(all.len())..];
            let items: Vec<RuleView> = rest.iter().take(size).cloned().collect();
            let next_marker = (rest.len() > size)
                .then(|| {
                    items
                        .last()
                        .map(|v| berth_store::page_token::encode(v.arn.id()))
                })
                .flatten();
            return Ok(Page { items, next_marker });
        }
        if arns.is_empty() {
            return Err(invalid("A listener ARN or rule ARNs must be specified"));
        }
        let mut items = Vec::new();
        for arn in arns {
            let listener = match self.listener(scope, &arn.listener()) {
                Ok(l) => l,
                Err(Elbv2Error::ListenerNotFound(_)) => return Err(rule_not_found()),
                Err(e) => return Err(e),
            };
            let view = listener
                .rule_views()
                .into_iter()
                .find(|v| v.arn == *arn)
                .ok_or_else(rule_not_found)?;
            items.push(view);
        }
        Ok(Page::whole(items))
    }

    /// ModifyRule. The default rule's actions are its listener's default actions; it has
    /// no conditions.
    pub fn modify_rule(
        &self,
        scope: &ElbScope,
        arn: &RuleArn,
        mut req: ModifyRule,
    ) -> Result<RuleView> {
        if let Some(c) = &req.conditions {
            check_conditions(c)?;
        }
        let listener = self
            .change_listener_checked(scope, &arn.listener(), |listener, ctx| {
                if let Some(actions) = &mut req.actions {
                    check_actions(actions, ctx)?;
                }
                if listener.default_rule_id == arn.id() {
                    if req.conditions.is_some() {
                        return Err(Elbv2Error::OperationNotPermitted(
                            "Conditions cannot be specified for a default rule".into(),
                        ));
                    }
                    if let Some(actions) = &req.actions {
                        listener.default_actions = actions.clone();
                    }
                    return Ok(());
                }
                let rule = listener
                    .rules
                    .iter_mut()
                    .find(|r| r.id == arn.id())
                    .ok_or_else(rule_not_found)?;
                if let Some(c) = &req.conditions {
                    rule.conditions = c.clone();
                }
                if let Some(a) = &req.actions {
                    rule.actions = a.clone();
                }
                Ok(())
            })
            .map_err(listener_to_rule)?;
        listener
            .rule_views()
            .into_iter()
            .find(|v| v.arn == *arn)
            .ok_or_else(rule_not_found)
    }

    /// DeleteRule (the default rule cannot be deleted).
    pub fn delete_rule(&self, scope: &ElbScope, arn: &RuleArn) -> Result<()> {
        self.change_listener(scope, &arn.listener(), |listener| {
            if listener.default_rule_id == arn.id() {
                return Err(Elbv2Error::OperationNotPermitted(format!(
                    "Default rule '{arn}' cannot be deleted"
                )));
            }
            let before = listener.rules.len();
            listener.rules.retain(|r| r.id != arn.id());
            if listener.rules.len() == before {
                return Err(rule_not_found());
            }
            Ok(())
        })
        .map_err(listener_to_rule)?;
        Ok(())
    }

    /// SetRulePriorities: every rule of one listener's changes at once, so that rules may
    /// swap priorities; the result must leave each priority to one rule.
    pub fn set_rule_priorities(
        &self,
        scope: &ElbScope,
        changes: &[(RuleArn, i64)],
    ) -> Result<Vec<RuleView>> {
        let mut by_listener: BTreeMap<ListenerArn, Vec<(RuleArn, u32)>> = BTreeMap::new();
        for (arn, priority) in changes {
            by_listener
                .entry(arn.listener())
                .or_default()
                .push((arn.clone(), check_priority(*priority)?));
        }
        let mut out = Vec::new();
        for (listener_arn, changes) in by_listener {
            let listener = self
                .change_listener(scope, &listener_arn, |listener| {
                    for (arn, priority) in &changes {
                        if listener.default_rule_id == arn.id() {
                            return Err(Elbv2Error::OperationNotPermitted(format!(
                                "Default rule '{arn}' priority cannot be modified"
                            )));
                        }
                        let rule = listener
                            .rules
                            .iter_mut()
                            .find(|r| r.id == arn.id())
                            .ok_or_else(rule_not_found)?;
                        rule.priority = *priority;
                    }
                    let mut priorities: Vec<u32> =
                        listener.rules.iter().map(|r| r.priority).collect();
                    priorities.sort();
                    if let Some(w) = priorities.windows(2).find(|w| w[0] == w[1]) {
                        return Err(Elbv2Error::PriorityInUse(format!(
                            "Priority '{}' is currently in use",
                            w[0]
                        )));
                    }
                    listener.rules.sort_by_key(|r| r.priority);
                    Ok(())
                })
                .map_err(listener_to_rule)?;
            let views = listener.rule_views();
            out.extend(
                views
                    .into_iter()
                    .filter(|v| changes.iter().any(|(arn, _)| *arn == v.arn)),
            );
        }
        Ok(out)
    }
}

/// A rule whose listener is gone is a rule not found.
fn listener_to_rule(e: Elbv2Error) -> Elbv2Error {
    match e {
        Elbv2Error::ListenerNotFound(_) => rule_not_found(),
        e => e,
    }
}

impl Listener {
    /// Its rules as DescribeRules shows them: by priority, the default rule last.
    pub fn rule_views(&self) -> Vec<RuleView> {
        let mut views: Vec<RuleView> = self
            .rules
            .iter()
            .map(|r| RuleView {
                arn: RuleArn::new(&self.arn, &r.id),
                priority: r.priority.to_string(),
                conditions: r.conditions.clone(),
                actions: r.actions.clone(),
                is_default: false,
            })
            .collect();
        views.push(RuleView {
            arn: RuleArn::new(&self.arn, &self.default_rule_id),
            priority: "default".into(),
            conditions: Vec::new(),
            actions: self.default_actions.clone(),
            is_default: true,
        });
        views
    }
}
