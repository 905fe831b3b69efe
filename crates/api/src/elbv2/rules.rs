//! Listener rules: CreateRule, DescribeRules, ModifyRule, DeleteRule, SetRulePriorities;
//! and how actions and conditions are read from requests and written in answers (the
//! listeners' default actions too).

use std::collections::BTreeMap;

use berth_elbv2::{
    Action, ActionType, Condition, ConditionField, CreateRule, FixedResponseConfig, ForwardConfig,
    ListenerArn, ModifyRule, RedirectConfig, RuleArn, RuleView, Stickiness, TargetGroupArn,
    TargetGroupTuple,
};

use super::{boolean, elb_error, next_marker, number, paging, scope, sub_list, sub_structs};
use crate::protocol::query::{QueryRequest, Xml};
use crate::protocol::{AwsContext, AwsError};

pub(super) const ACTIONS: &[&str] = &[
    "CreateRule",
    "DescribeRules",
    "ModifyRule",
    "DeleteRule",
    "SetRulePriorities",
];

fn rule_arn(r: &QueryRequest) -> Result<RuleArn, AwsError> {
    RuleArn::parse(r.required("RuleArn")?).map_err(elb_error)
}

fn required_member(member: &str) -> AwsError {
    AwsError::client(
        "ValidationError",
        format!(
            "1 validation error detected: Value null at '{member}' failed to satisfy constraint: Member must not be null"
        ),
    )
}

/// A non-negative number field.
fn unsigned(member: &str, value: &str) -> Result<u32, AwsError> {
    let n = number(member, value)?;
    u32::try_from(n).map_err(|_| {
        AwsError::client(
            "ValidationError",
            format!(
                "1 validation error detected: Value '{n}' at '{member}' failed to satisfy constraint: Member must have value greater than or equal to 0"
            ),
        )
    })
}

/// One action of `{list}.member.N`.
fn action(m: &BTreeMap<&str, &str>) -> Result<Action, AwsError> {
    let kind = ActionType::parse(
        m.get("Type")
            .ok_or_else(|| required_member("actions.member.type"))?,
    )
    .map_err(elb_error)?;
    let order = m
        .get("Order")
        .map(|o| unsigned("actions.member.order", o))
        .transpose()?;
    let text = |k: &str| m.get(k).map(|v| v.to_string());
    match kind {
        ActionType::Forward => {
            let target_group = m
                .get("TargetGroupArn")
                .map(|a| TargetGroupArn::parse(a))
                .transpose()
                .map_err(elb_error)?;
            let tuples = sub_structs(m, "ForwardConfig.TargetGroups");
            let stickiness_given = m
                .keys()
                .any(|k| k.starts_with("ForwardConfig.TargetGroupStickinessConfig."));
            let config = if tuples.is_empty() && !stickiness_given {
                None
            } else {
                let target_groups = tuples
                    .iter()
                    .map(|t| {
                        Ok(TargetGroupTuple {
                            arn: TargetGroupArn::parse(t.get("TargetGroupArn").ok_or_else(|| {
                                required_member("actions.member.forwardConfig.targetGroups.member.targetGroupArn")
                            })?)
                            .map_err(elb_error)?,
                            weight: t
                                .get("Weight")
                                .map(|w| unsigned("actions.member.forwardConfig.targetGroups.member.weight", w))
                                .transpose()?
                                .unwrap_or(1),
                        })
                    })
                    .collect::<Result<Vec<_>, AwsError>>()?;
                let stickiness = Stickiness {
                    enabled: m
                        .get("ForwardConfig.TargetGroupStickinessConfig.Enabled")
                        .map(|v| boolean("actions.member.forwardConfig.targetGroupStickinessConfig.enabled", v))
                        .transpose()?
                        .unwrap_or(false),
                    duration_seconds: m
                        .get("ForwardConfig.TargetGroupStickinessConfig.DurationSeconds")
                        .map(|v| unsigned("actions.member.forwardConfig.targetGroupStickinessConfig.durationSeconds", v))
                        .transpose()?,
                };
                Some(ForwardConfig {
                    target_groups,
                    stickiness,
                })
            };
            let config = match (config, &target_group) {
                // Stickiness alone with a TargetGroupArn: a forward to that group.
                (Some(c), Some(arn)) if c.target_groups.is_empty() => Some(ForwardConfig {
                    target_groups: vec![TargetGroupTuple {
                        arn: arn.clone(),
                        weight: 1,
                    }],
                    stickiness: c.stickiness,
                }),
                (c, _) => c,
            };
            Action::forward(target_group, config, order).map_err(elb_error)
        }
        ActionType::Redirect => Ok(Action {
            kind,
            order,
            forward: None,
            redirect: Some(RedirectConfig {
                protocol: text("RedirectConfig.Protocol").unwrap_or_else(|| "#{protocol}".into()),
                port: text("RedirectConfig.Port").unwrap_or_else(|| "#{port}".into()),
                host: text("RedirectConfig.Host").unwrap_or_else(|| "#{host}".into()),
                path: text("RedirectConfig.Path").unwrap_or_else(|| "/#{path}".into()),
                query: text("RedirectConfig.Query").unwrap_or_else(|| "#{query}".into()),
                status_code: text("RedirectConfig.StatusCode")
                    .ok_or_else(|| required_member("actions.member.redirectConfig.statusCode"))?,
            }),
            fixed_response: None,
        }),
        ActionType::FixedResponse => Ok(Action {
            kind,
            order,
            forward: None,
            redirect: None,
            fixed_response: Some(FixedResponseConfig {
                message_body: text("FixedResponseConfig.MessageBody"),
                status_code: text("FixedResponseConfig.StatusCode").ok_or_else(|| {
                    required_member("actions.member.fixedResponseConfig.statusCode")
                })?,
                content_type: text("FixedResponseConfig.ContentType"),
            }),
        }),
    }
}

/// The actions of `{list}.member.N` (`Actions`, `DefaultActions`).
pub(super) fn actions(r: &QueryRequest, list: &str) -> Result<Vec<Action>, AwsError> {
    r.structs(list).iter().map(action).collect()
}

/// One condition of `Conditions.member.N`, in either form.
fn condition(m: &BTreeMap<&str, &str>) -> Result<Condition, AwsError> {
    let field = ConditionField::parse(
        m.get("Field")
            .ok_or_else(|| required_member("conditions.member.field"))?,
    )
    .map_err(elb_error)?;
    let legacy: Vec<String> = sub_list(m, "Values")
        .into_iter()
        .map(str::to_string)
        .collect();
    let config = |name: &str| -> Vec<String> {
        sub_list(m, &format!("{name}.Values"))
            .into_iter()
            .map(str::to_string)
            .collect()
    };
    let both = |config_values: Vec<String>, name: &str| -> Result<Vec<String>, AwsError> {
        match (legacy.is_empty(), config_values.is_empty()) {
            (false, false) => Err(AwsError::client(
                "ValidationError",
                format!("You cannot specify both 'Values' and '{name}' for a condition"),
            )),
            (false, true) => Ok(legacy.clone()),
            _ => Ok(config_values),
        }
    };
    let only_config = |name: &str| -> Result<(), AwsError> {
        if legacy.is_empty() {
            Ok(())
        } else {
            Err(AwsError::client(
                "ValidationError",
                format!(
                    "The '{}' condition must be specified with '{name}', not 'Values'",
                    field.as_str()
                ),
            ))
        }
    };
    let mut c = Condition {
        field,
        values: Vec::new(),
        header_name: None,
        query: Vec::new(),
    };
    match field {
        ConditionField::HostHeader => {
            c.values = both(config("HostHeaderConfig"), "HostHeaderConfig")?
        }
        ConditionField::PathPattern => {
            c.values = both(config("PathPatternConfig"), "PathPatternConfig")?
        }
        ConditionField::HttpHeader => {
            only_config("HttpHeaderConfig")?;
            c.header_name = m
                .get("HttpHeaderConfig.HttpHeaderName")
                .map(|n| n.to_string());
            c.values = config("HttpHeaderConfig");
        }
        ConditionField::HttpRequestMethod => {
            only_config("HttpRequestMethodConfig")?;
            c.values = config("HttpRequestMethodConfig");
        }
        ConditionField::SourceIp => {
            only_config("SourceIpConfig")?;
            c.values = config("SourceIpConfig");
        }
        ConditionField::QueryString => {
            only_config("QueryStringConfig")?;
            c.query = sub_structs(m, "QueryStringConfig.Values")
                .into_iter()
                .map(|kv| {
                    (
                        kv.get("Key").map(|k| k.to_string()),
                        kv.get("Value").copied().unwrap_or_default().to_string(),
                    )
                })
                .collect();
        }
    }
    Ok(c)
}

fn conditions(r: &QueryRequest) -> Result<Vec<Condition>, AwsError> {
    r.structs("Conditions").iter().map(condition).collect()
}

pub(super) fn dispatch(ctx: &AwsContext, r: &QueryRequest) -> Result<Option<Xml>, AwsError> {
    let elb = &ctx.app.elbv2;
    let scope = scope(ctx);
    let mut xml = Xml::default();
    match r.action.as_str() {
        "CreateRule" => {
            let listener = ListenerArn::parse(r.required("ListenerArn")?).map_err(elb_error)?;
            let rule = elb
                .create_rule(
                    &scope,
                    CreateRule {
                        listener,
                        priority: r
                            .int("Priority")?
                            .ok_or_else(|| r.required("Priority").unwrap_err())?,
                        conditions: conditions(r)?,
                        actions: actions(r, "Actions")?,
                        tags: super::tags(r),
                    },
                )
                .map_err(elb_error)?;
            xml.members("Rules", [&rule], rule_xml);
        }
        "DescribeRules" => {
            let listener = r
                .get("ListenerArn")
                .map(ListenerArn::parse)
                .transpose()
                .map_err(elb_error)?;
            let arns = super::arn_list(r, "RuleArns", RuleArn::parse)?;
            let page = elb
                .describe_rules(&scope, listener.as_ref(), &arns, &paging(r)?)
                .map_err(elb_error)?;
            xml.members("Rules", &page.items, rule_xml);
            next_marker(&mut xml, page.next_marker.as_deref());
        }
        "ModifyRule" => {
            let given = |list: &str| !r.structs(list).is_empty();
            let change = ModifyRule {
                conditions: given("Conditions").then(|| conditions(r)).transpose()?,
                actions: given("Actions")
                    .then(|| actions(r, "Actions"))
                    .transpose()?,
            };
            let rule = elb
                .modify_rule(&scope, &rule_arn(r)?, change)
                .map_err(elb_error)?;
            xml.members("Rules", [&rule], rule_xml);
        }
        "DeleteRule" => {
            elb.delete_rule(&scope, &rule_arn(r)?).map_err(elb_error)?;
        }
        "SetRulePriorities" => {
            let changes = r
                .structs("RulePriorities")
                .into_iter()
                .map(|m| {
                    let arn = RuleArn::parse(
                        m.get("RuleArn")
                            .ok_or_else(|| required_member("rulePriorities.member.ruleArn"))?,
                    )
                    .map_err(elb_error)?;
                    let priority = number(
                        "rulePriorities.member.priority",
                        m.get("Priority")
                            .ok_or_else(|| required_member("rulePriorities.member.priority"))?,
                    )?;
                    Ok((arn, priority))
                })
                .collect::<Result<Vec<_>, AwsError>>()?;
            let rules = elb
                .set_rule_priorities(&scope, &changes)
                .map_err(elb_error)?;
            xml.members("Rules", &rules, rule_xml);
        }
        other => unreachable!("{other} is not in ACTIONS"),
    }
    Ok(Some(xml))
}

fn values_xml(x: &mut Xml, values: &[String]) {
    x.members("Values", values, |x, v| {
        x.text(v);
    });
}

fn condition_xml(x: &mut Xml, c: &Condition) {
    x.leaf("Field", c.field.as_str());
    match c.field {
        ConditionField::HostHeader | ConditionField::PathPattern => {
            values_xml(x, &c.values);
            let config = match c.field {
                ConditionField::HostHeader => "HostHeaderConfig",
                _ => "PathPatternConfig",
            };
            x.element(config, |x| values_xml(x, &c.values));
        }
        ConditionField::HttpHeader => {
            x.element("HttpHeaderConfig", |x| {
                x.opt_leaf("HttpHeaderName", c.header_name.as_deref());
                values_xml(x, &c.values);
            });
        }
        ConditionField::HttpRequestMethod => {
            x.element("HttpRequestMethodConfig", |x| values_xml(x, &c.values));
        }
        ConditionField::SourceIp => {
            x.element("SourceIpConfig", |x| values_xml(x, &c.values));
        }
        ConditionField::QueryString => {
            x.element("QueryStringConfig", |x| {
                x.members("Values", &c.query, |x, (k, v)| {
                    x.opt_leaf("Key", k.as_deref()).leaf("Value", v);
                });
            });
        }
    }
}

/// An action as ELBv2 shows it (`TargetGroupArn` too when it forwards to one group).
pub(super) fn action_xml(x: &mut Xml, a: &Action) {
    x.leaf("Type", a.kind.as_str())
        .opt_leaf("TargetGroupArn", a.target_group_arn())
        .opt_leaf("Order", a.order);
    if let Some(f) = &a.forward {
        x.element("ForwardConfig", |x| {
            x.members("TargetGroups", &f.target_groups, |x, t| {
                x.leaf("TargetGroupArn", &t.arn).leaf("Weight", t.weight);
            })
            .element("TargetGroupStickinessConfig", |x| {
                x.leaf("Enabled", f.stickiness.enabled)
                    .opt_leaf("DurationSeconds", f.stickiness.duration_seconds);
            });
        });
    }
    if let Some(r) = &a.redirect {
        x.element("RedirectConfig", |x| {
            x.leaf("Protocol", &r.protocol)
                .leaf("Port", &r.port)
                .leaf("Host", &r.host)
                .leaf("Path", &r.path)
                .leaf("Query", &r.query)
                .leaf("StatusCode", &r.status_code);
        });
    }
    if let Some(f) = &a.fixed_response {
        x.element("FixedResponseConfig", |x| {
            x.opt_leaf("MessageBody", f.message_body.as_deref())
                .leaf("StatusCode", &f.status_code)
                .opt_leaf("ContentType", f.content_type.as_deref());
        });
    }
}

fn rule_xml(x: &mut Xml, rule: &RuleView) {
    x.leaf("RuleArn", &rule.arn)
        .leaf("Priority", &rule.priority)
        .members("Conditions", &rule.conditions, condition_xml)
        .members("Actions", &rule.actions, action_xml)
        .leaf("IsDefault", rule.is_default);
}
