//! What rules and listeners' default actions are made of: conditions (path-pattern,
//! host-header, http-header, http-request-method, query-string, source-ip; both the old
//! `Values` and the `*Config` forms) and actions (forward to one or several weighted target
//! groups with stickiness, redirect, fixed-response; `Order`), with ELBv2's checks.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::tags::Tag;
use crate::{
    Elbv2Error, LoadBalancerArn, LoadBalancerType, Result, RuleArn, TargetGroupArn, config, invalid,
};

/// Condition values one rule may have (ELBv2's quota).
pub const MAX_CONDITION_VALUES: usize = 5;
/// Target groups one forward action may name.
pub const MAX_FORWARD_TARGET_GROUPS: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ActionType {
    #[serde(rename = "forward")]
    Forward,
    #[serde(rename = "redirect")]
    Redirect,
    #[serde(rename = "fixed-response")]
    FixedResponse,
}

impl ActionType {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionType::Forward => "forward",
            ActionType::Redirect => "redirect",
            ActionType::FixedResponse => "fixed-response",
        }
    }

    pub fn parse(text: &str) -> Result<ActionType> {
        match text {
            "forward" => Ok(ActionType::Forward),
            "redirect" => Ok(ActionType::Redirect),
            "fixed-response" => Ok(ActionType::FixedResponse),
            "authenticate-oidc" | "authenticate-cognito" => Err(config(format!(
                "Action type '{text}' is not supported by Berth"
            ))),
            other => Err(invalid(format!(
                "1 validation error detected: Value '{other}' at 'actions.member.type' failed to satisfy constraint: Member must satisfy enum value set: [forward, authenticate-oidc, authenticate-cognito, redirect, fixed-response]"
            ))),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetGroupTuple {
    pub arn: TargetGroupArn,
    pub weight: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Stickiness {
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardConfig {
    pub target_groups: Vec<TargetGroupTuple>,
    #[serde(default)]
    pub stickiness: Stickiness,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedirectConfig {
    pub protocol: String,
    pub port: String,
    pub host: String,
    pub path: String,
    pub query: String,
    pub status_code: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixedResponseConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_body: Option<String>,
    pub status_code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
}

/// An action of a listener's default actions or of a rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    #[serde(rename = "type")]
    pub kind: ActionType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward: Option<ForwardConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect: Option<RedirectConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_response: Option<FixedResponseConfig>,
}

impl Action {
    /// A forward action from a request's `TargetGroupArn` and/or `ForwardConfig` (AWS keeps
    /// both forms: a lone `TargetGroupArn` is a forward to it with weight 1).
    pub fn forward(
        target_group: Option<TargetGroupArn>,
        config: Option<ForwardConfig>,
        order: Option<u32>,
    ) -> Result<Action> {
        let forward = match (target_group, config) {
            (None, None) => {
                return Err(invalid(
                    "A target group ARN or a forward configuration must be specified for a forward action",
                ));
            }
            (Some(arn), None) => ForwardConfig {
                target_groups: vec![TargetGroupTuple { arn, weight: 1 }],
                stickiness: Stickiness::default(),
            },
            (Some(arn), Some(c)) => {
                if c.target_groups.len() != 1 || c.target_groups[0].arn != arn {
                    return Err(invalid(
                        "You cannot specify both a target group ARN and a forward configuration with other target groups",
                    ));
                }
                c
            }
            (None, Some(c)) => c,
        };
        Ok(Action {
            kind: ActionType::Forward,
            order,
            forward: Some(forward),
            redirect: None,
            fixed_response: None,
        })
    }

    /// `TargetGroupArn` as AWS shows it: set when the action forwards to one group.
    pub fn target_group_arn(&self) -> Option<&TargetGroupArn> {
        match &self.forward {
            Some(f) if f.target_groups.len() == 1 => Some(&f.target_groups[0].arn),
            _ => None,
        }
    }

    /// Every target group the action forwards to.
    pub fn target_groups(&self) -> impl Iterator<Item = &TargetGroupArn> {
        self.forward
            .iter()
            .flat_map(|f| f.target_groups.iter().map(|t| &t.arn))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ConditionField {
    #[serde(rename = "host-header")]
    HostHeader,
    #[serde(rename = "path-pattern")]
    PathPattern,
    #[serde(rename = "http-header")]
    HttpHeader,
    #[serde(rename = "http-request-method")]
    HttpRequestMethod,
    #[serde(rename = "query-string")]
    QueryString,
    #[serde(rename = "source-ip")]
    SourceIp,
}

impl ConditionField {
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionField::HostHeader => "host-header",
            ConditionField::PathPattern => "path-pattern",
            ConditionField::HttpHeader => "http-header",
            ConditionField::HttpRequestMethod => "http-request-method",
            ConditionField::QueryString => "query-string",
            ConditionField::SourceIp => "source-ip",
        }
    }

    pub fn parse(text: &str) -> Result<ConditionField> {
        Ok(match text {
            "host-header" => ConditionField::HostHeader,
            "path-pattern" => ConditionField::PathPattern,
            "http-header" => ConditionField::HttpHeader,
            "http-request-method" => ConditionField::HttpRequestMethod,
            "query-string" => ConditionField::QueryString,
            "source-ip" => ConditionField::SourceIp,
            other => {
                return Err(invalid(format!(
                    "Condition field '{other}' must be one of '[http-header, http-request-method, host-header, path-pattern, query-string, source-ip]'"
                )));
            }
        })
    }
}

/// A rule's condition: `values` for every field but query-string, whose key/value pairs
/// are `query`; `header_name` for http-header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Condition {
    pub field: ConditionField,
    #[serde(default)]
    pub values: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_name: Option<String>,
    #[serde(default)]
    pub query: Vec<(Option<String>, String)>,
}

impl Condition {
    fn value_count(&self) -> usize {
        match self.field {
            ConditionField::QueryString => self.query.len(),
            _ => self.values.len(),
        }
    }

    fn check(&self) -> Result<()> {
        if self.value_count() == 0 {
            return Err(invalid(format!(
                "A condition value must be specified for the '{}' condition",
                self.field.as_str()
            )));
        }
        let too_long = |limit: usize| self.values.iter().any(|v| v.chars().count() > limit);
        match self.field {
            ConditionField::PathPattern | ConditionField::HostHeader if too_long(128) => {
                Err(invalid(format!(
                    "The '{}' condition values must be at most 128 characters long",
                    self.field.as_str()
                )))
            }
            ConditionField::HttpHeader => match &self.header_name {
                None => Err(invalid(
                    "A header name must be specified for the 'http-header' condition",
                )),
                Some(n) if n.is_empty() || n.len() > 40 => Err(invalid(
                    "The 'http-header' condition's header name must be between 1 and 40 characters long",
                )),
                Some(_) if too_long(128) => Err(invalid(
                    "The 'http-header' condition values must be at most 128 characters long",
                )),
                Some(_) => Ok(()),
            },
            ConditionField::HttpRequestMethod => {
                match self.values.iter().find(|v| {
                    v.is_empty()
                        || v.len() > 40
                        || !v
                            .bytes()
                            .all(|b| b.is_ascii_uppercase() || b == b'-' || b == b'_')
                }) {
                    Some(v) => Err(invalid(format!(
                        "The 'http-request-method' condition value '{v}' must contain only upper-case letters, '-' and '_'"
                    ))),
                    None => Ok(()),
                }
            }
            ConditionField::SourceIp => match self.values.iter().find(|v| !is_cidr(v)) {
                Some(v) => Err(invalid(format!(
                    "The 'source-ip' condition value '{v}' is not a valid CIDR block"
                ))),
                None => Ok(()),
            },
            ConditionField::QueryString => {
                if self.query.iter().any(|(_, v)| v.is_empty()) {
                    return Err(invalid(
                        "A value must be specified for every key/value pair of the 'query-string' condition",
                    ));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

fn is_cidr(text: &str) -> bool {
    let Some((ip, prefix)) = text.split_once('/') else {
        return false;
    };
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => prefix.parse::<u8>().is_ok_and(|p| p <= 32),
        Ok(std::net::IpAddr::V6(_)) => prefix.parse::<u8>().is_ok_and(|p| p <= 128),
        Err(_) => false,
    }
}

/// A rule as stored in its listener's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub id: String,
    pub priority: u32,
    pub conditions: Vec<Condition>,
    pub actions: Vec<Action>,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

/// A rule as DescribeRules shows it: the listener's default rule too.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleView {
    pub arn: RuleArn,
    /// A number, or `default`.
    pub priority: String,
    pub conditions: Vec<Condition>,
    pub actions: Vec<Action>,
    pub is_default: bool,
}

pub(crate) fn check_conditions(conditions: &[Condition]) -> Result<()> {
    if conditions.is_empty() {
        return Err(invalid("A rule must have at least one condition"));
    }
    let mut seen = BTreeMap::new();
    for c in conditions {
        c.check()?;
        let once = !matches!(
            c.field,
            ConditionField::HttpHeader | ConditionField::QueryString
        );
        if once && seen.insert(c.field, ()).is_some() {
            return Err(invalid(format!(
                "A rule can only have one '{}' condition",
                c.field.as_str()
            )));
        }
    }
    let total: usize = conditions.iter().map(Condition::value_count).sum();
    if total > MAX_CONDITION_VALUES {
        return Err(config(format!(
            "A rule can only have '{MAX_CONDITION_VALUES}' condition values"
        )));
    }
    Ok(())
}

/// What actions need to know of the target groups they forward to: each group's protocol
/// (to fit the load balancer) and which load balancers already use it.
pub(crate) struct ActionContext<'a> {
    pub lb: &'a LoadBalancerArn,
    pub lb_kind: LoadBalancerType,
    pub groups: &'a BTreeMap<TargetGroupArn, crate::TargetGroup>,
    pub usage: &'a BTreeMap<TargetGroupArn, std::collections::BTreeSet<LoadBalancerArn>>,
}

/// Checks a rule's or listener's actions: exactly one terminal action (forward, redirect
/// or fixed-response), last by `Order`; each action's configuration; forwards to groups
/// that exist, fit the load balancer and serve no other load balancer.
pub(crate) fn check_actions(actions: &mut [Action], ctx: &ActionContext<'_>) -> Result<()> {
    if actions.is_empty() {
        return Err(invalid("At least one action must be specified"));
    }
    if actions.len() > 1 || actions.iter().any(|a| a.order.is_some()) {
        let mut orders = Vec::new();
        for a in actions.iter() {
            let order = a
                .order
                .ok_or_else(|| invalid("An action order must be specified for every action when there is more than one"))?;
            if !(1..=50_000).contains(&order) {
                return Err(invalid(format!(
                    "1 validation error detected: Value '{order}' at 'actions.member.order' failed to satisfy constraint: Member must have value between 1 and 50000"
                )));
            }
            orders.push(order);
        }
        let mut unique = orders.clone();
        unique.sort();
        unique.dedup();
        if unique.len() != orders.len() {
            return Err(invalid("Action orders must be unique"));
        }
        actions.sort_by_key(|a| a.order);
    }
    // Every action served here is terminal, so there can be only one.
    if actions.len() > 1 {
        return Err(config(
            "A rule or default action can have only one forward, redirect or fixed-response action",
        ));
    }
    for action in actions.iter() {
        match action.kind {
            ActionType::Forward => check_forward(action, ctx)?,
            ActionType::Redirect => {
                if ctx.lb_kind == LoadBalancerType::Network {
                    return Err(config(
                        "Redirect actions are not supported for Network Load Balancers",
                    ));
                }
                let r = action.redirect.as_ref().ok_or_else(|| {
                    invalid("A redirect configuration must be specified for a redirect action")
                })?;
                if !["HTTP_301", "HTTP_302"].contains(&r.status_code.as_str()) {
                    return Err(invalid(format!(
                        "1 validation error detected: Value '{}' at 'actions.member.redirectConfig.statusCode' failed to satisfy constraint: Member must satisfy enum value set: [HTTP_301, HTTP_302]",
                        r.status_code
                    )));
                }
                if !["HTTP", "HTTPS", "#{protocol}"].contains(&r.protocol.as_str()) {
                    return Err(invalid(format!(
                        "The redirect protocol '{}' must be 'HTTP', 'HTTPS' or '#{{protocol}}'",
                        r.protocol
                    )));
                }
                if !r.path.starts_with('/') {
                    return Err(invalid("The redirect path must start with a '/'"));
                }
            }
            ActionType::FixedResponse => {
                if ctx.lb_kind == LoadBalancerType::Network {
                    return Err(config(
                        "Fixed-response actions are not supported for Network Load Balancers",
                    ));
                }
                let f = action.fixed_response.as_ref().ok_or_else(|| {
                    invalid("A fixed-response configuration must be specified for a fixed-response action")
                })?;
                let code = f.status_code.as_bytes();
                if code.len() != 3
                    || !matches!(code[0], b'2' | b'4' | b'5')
                    || !code.iter().all(u8::is_ascii_digit)
                {
                    return Err(invalid(format!(
                        "1 validation error detected: Value '{}' at 'actions.member.fixedResponseConfig.statusCode' failed to satisfy constraint: Member must satisfy regular expression pattern: ^(2|4|5)\\d\\d$",
                        f.status_code
                    )));
                }
                if let Some(t) = &f.content_type
                    && ![
                        "text/plain",
                        "text/css",
                        "text/html",
                        "application/javascript",
                        "application/json",
                    ]
                    .contains(&t.as_str())
                {
                    return Err(invalid(format!(
                        "The content type '{t}' must be one of 'text/plain', 'text/css', 'text/html', 'application/javascript' or 'application/json'"
                    )));
                }
                if f.message_body.as_ref().is_some_and(|b| b.len() > 1024) {
                    return Err(invalid(
                        "1 validation error detected: Value at 'actions.member.fixedResponseConfig.messageBody' failed to satisfy constraint: Member must have length less than or equal to 1024",
                    ));
                }
            }
        }
    }
    Ok(())
}

fn check_forward(action: &Action, ctx: &ActionContext<'_>) -> Result<()> {
    let forward = action
        .forward
        .as_ref()
        .ok_or_else(|| invalid("A target group ARN must be specified for a forward action"))?;
    let count = forward.target_groups.len();
    if count == 0 || count > MAX_FORWARD_TARGET_GROUPS {
        return Err(invalid(format!(
            "A forward action must name between 1 and {MAX_FORWARD_TARGET_GROUPS} target groups"
        )));
    }
    if ctx.lb_kind == LoadBalancerType::Network && count > 1 {
        return Err(config(
            "Network Load Balancers support forwarding to only one target group",
        ));
    }
    let mut names = std::collections::BTreeSet::new();
    for tuple in &forward.target_groups {
        if !names.insert(&tuple.arn) {
            return Err(invalid(format!(
                "Target group '{}' is specified more than once in the forward configuration",
                tuple.arn
            )));
        }
        if tuple.weight > 999 {
            return Err(invalid(format!(
                "1 validation error detected: Value '{}' at 'actions.member.forwardConfig.targetGroups.member.weight' failed to satisfy constraint: Member must have value less than or equal to 999",
                tuple.weight
            )));
        }
        let group = ctx.groups.get(&tuple.arn).ok_or_else(|| {
            Elbv2Error::TargetGroupNotFound(format!("Target groups '{}' not found", tuple.arn))
        })?;
        if !group.protocol.fits(ctx.lb_kind) {
            return Err(Elbv2Error::InvalidConfigurationRequest(format!(
                "The target group '{}' has protocol '{}', which is not supported by load balancers of type '{}'",
                tuple.arn, group.protocol, ctx.lb_kind
            )));
        }
        if ctx
            .usage
            .get(&tuple.arn)
            .is_some_and(|lbs| lbs.iter().any(|lb| lb != ctx.lb))
        {
            return Err(Elbv2Error::TargetGroupAssociationLimit(format!(
                "The following target groups cannot be associated with more than one load balancer: {}",
                tuple.arn
            )));
        }
    }
    let s = &forward.stickiness;
    if s.enabled
        && !s
            .duration_seconds
            .is_some_and(|d| (1..=604_800).contains(&d))
    {
        return Err(invalid(
            "The target group stickiness duration must be between 1 and 604800 seconds when stickiness is enabled",
        ));
    }
    Ok(())
}
