//! Target groups: CreateTargetGroup with ELBv2's health check defaults per protocol,
//! DescribeTargetGroups, ModifyTargetGroup, DeleteTargetGroup (refused while a listener or
//! rule forwards to it), and their attributes.

use std::collections::BTreeMap;

use berth_store::{Change, Op, TxnOutcome};
use serde::{Deserialize, Serialize};

use crate::attributes::{self, Attribute};
use crate::keys::ElbScope;
use crate::load_balancers::{is_resource_id, named, page_of};
use crate::tags::{self, Tag};
use crate::{
    Draining, Elbv2, Elbv2Error, LoadBalancerArn, Page, Paging, Protocol, Result, Target,
    TargetGroupArn, TargetType, config, invalid, now, random_id, tg_not_found,
};

/// A target group's health check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    pub enabled: bool,
    pub protocol: Protocol,
    /// `traffic-port` or a port number.
    pub port: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub interval_seconds: u32,
    pub timeout_seconds: u32,
    pub healthy_threshold: u32,
    pub unhealthy_threshold: u32,
    /// `Matcher.HttpCode` (HTTP and HTTPS checks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matcher: Option<String>,
}

impl HealthCheck {
    /// ELBv2's defaults for a target group of `protocol` checked with `check` (default:
    /// the group's protocol for HTTP and HTTPS groups, TCP for the others).
    pub fn defaults(protocol: Protocol, check: Option<Protocol>) -> HealthCheck {
        let check = check.unwrap_or(if protocol.is_http() {
            protocol
        } else {
            Protocol::Tcp
        });
        let (timeout, matcher) = match (protocol.is_http(), check) {
            (true, _) => (5, Some("200")),
            (false, Protocol::Http) => (6, Some("200-399")),
            (false, Protocol::Https) => (10, Some("200-399")),
            (false, _) => (10, None),
        };
        HealthCheck {
            enabled: true,
            protocol: check,
            port: "traffic-port".into(),
            path: check.is_http().then(|| "/".to_string()),
            interval_seconds: 30,
            timeout_seconds: timeout,
            healthy_threshold: 5,
            unhealthy_threshold: 2,
            matcher: matcher.map(str::to_string),
        }
    }

    fn check(&self, group_protocol: Protocol) -> Result<()> {
        if !matches!(
            self.protocol,
            Protocol::Http | Protocol::Https | Protocol::Tcp
        ) {
            return Err(invalid(format!(
                "Health check protocol '{}' is not supported",
                self.protocol
            )));
        }
        if group_protocol.is_http() && self.protocol == Protocol::Tcp {
            return Err(invalid(format!(
                "Health check protocol 'TCP' is not supported for target groups with the '{group_protocol}' protocol"
            )));
        }
        if self.port != "traffic-port"
            && !self
                .port
                .parse::<u32>()
                .is_ok_and(|p| (1..=65535).contains(&p))
        {
            return Err(invalid(format!(
                "Health check port '{}' must be 'traffic-port' or a number between 1 and 65535",
                self.port
            )));
        }
        range("healthCheckIntervalSeconds", self.interval_seconds, 5, 300)?;
        range("healthCheckTimeoutSeconds", self.timeout_seconds, 2, 120)?;
        range("healthyThresholdCount", self.healthy_threshold, 2, 10)?;
        range("unhealthyThresholdCount", self.unhealthy_threshold, 2, 10)?;
        if self.timeout_seconds >= self.interval_seconds {
            return Err(config(format!(
                "Health check interval '{}' must be greater than the timeout '{}'",
                self.interval_seconds, self.timeout_seconds
            )));
        }
        if let Some(path) = &self.path {
            if !path.starts_with('/') || path.len() > 1024 {
                return Err(invalid(
                    "Health check path must begin with a '/' character, and can be at most 1024 characters in length",
                ));
            }
            if !self.protocol.is_http() {
                return Err(config(
                    "Custom health check paths are not supported for TCP health checks",
                ));
            }
        }
        if let Some(codes) = &self.matcher {
            if !self.protocol.is_http() {
                return Err(config(
                    "Custom health check matchers are not supported for TCP health checks",
                ));
            }
            let top = if group_protocol.is_http() { 499 } else { 599 };
            check_matcher(codes, top)?;
        }
        Ok(())
    }
}

/// `200`, `200,202`, `200-299`: codes from 200 to `top`.
fn check_matcher(codes: &str, top: u16) -> Result<()> {
    let ok = |c: &str| c.parse::<u16>().is_ok_and(|n| (200..=top).contains(&n));
    let valid = !codes.is_empty()
        && codes.split(',').all(|part| match part.split_once('-') {
            Some((a, b)) => ok(a) && ok(b) && a.parse::<u16>().ok() < b.parse::<u16>().ok(),
            None => ok(part),
        });
    if valid {
        Ok(())
    } else {
        Err(invalid(format!(
            "Health check matcher HTTP code '{codes}' must be a value between 200 and {top}, a comma-separated list or a range"
        )))
    }
}

fn range(member: &str, value: u32, low: u32, high: u32) -> Result<()> {
    if value < low {
        return Err(invalid(format!(
            "1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: Member must have value greater than or equal to {low}"
        )));
    }
    if value > high {
        return Err(invalid(format!(
            "1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: Member must have value less than or equal to {high}"
        )));
    }
    Ok(())
}

/// A target group as stored, with its registered targets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetGroup {
    pub arn: TargetGroupArn,
    pub name: String,
    pub protocol: Protocol,
    /// `HTTP1` for HTTP and HTTPS groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<String>,
    pub port: u16,
    pub vpc_id: String,
    pub target_type: TargetType,
    pub health_check: HealthCheck,
    pub created_time: f64,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default)]
    pub targets: Vec<Target>,
    /// Deregistered targets still draining, until their deregistration delay ends.
    #[serde(default)]
    pub draining: Vec<Draining>,
}

impl TargetGroup {
    pub fn attribute(&self, key: &str) -> Option<String> {
        self.attributes.get(key).cloned().or_else(|| {
            attributes::target_group_defaults(self.protocol)
                .get(key)
                .map(|v| v.to_string())
        })
    }

    pub fn attributes(&self) -> Vec<Attribute> {
        attributes::merged(
            attributes::target_group_defaults(self.protocol),
            &self.attributes,
        )
    }

    /// `deregistration_delay.timeout_seconds`.
    pub fn deregistration_delay(&self) -> f64 {
        self.attribute("deregistration_delay.timeout_seconds")
            .and_then(|v| v.parse().ok())
            .unwrap_or(300.0)
    }
}

/// CreateTargetGroup's request, parsed; health check fields not given take the defaults.
#[derive(Debug, Clone)]
pub struct CreateTargetGroup {
    pub name: String,
    pub protocol: Option<Protocol>,
    pub protocol_version: Option<String>,
    pub port: Option<i64>,
    pub vpc_id: Option<String>,
    pub target_type: TargetType,
    pub health: ModifyTargetGroup,
    pub tags: Vec<Tag>,
}

/// Health check settings a request gives (CreateTargetGroup's and ModifyTargetGroup's).
#[derive(Debug, Clone, Default)]
pub struct ModifyTargetGroup {
    pub enabled: Option<bool>,
    pub protocol: Option<Protocol>,
    pub port: Option<String>,
    pub path: Option<String>,
    pub interval_seconds: Option<i64>,
    pub timeout_seconds: Option<i64>,
    pub healthy_threshold: Option<i64>,
    pub unhealthy_threshold: Option<i64>,
    pub matcher: Option<String>,
}

impl ModifyTargetGroup {
    fn apply(&self, check: &mut HealthCheck) -> Result<()> {
        let number = |member: &str, v: i64| {
            u32::try_from(v).map_err(|_| {
                invalid(format!(
                    "1 validation error detected: Value '{v}' at '{member}' failed to satisfy constraint: Member must have value greater than or equal to 0"
                ))
            })
        };
        if let Some(enabled) = self.enabled {
            if !enabled {
                return Err(config(
                    "Health checks cannot be disabled for target groups with target type 'instance' or 'ip'",
                ));
            }
            check.enabled = enabled;
        }
        if let Some(p) = self.protocol {
            check.protocol = p;
            if !p.is_http() {
                check.path = None;
                check.matcher = None;
            } else if check.path.is_none() {
                check.path = Some("/".into());
            }
        }
        if let Some(p) = &self.port {
            check.port = p.clone();
        }
        if let Some(p) = &self.path {
            check.path = Some(p.clone());
        }
        if let Some(v) = self.interval_seconds {
            check.interval_seconds = number("healthCheckIntervalSeconds", v)?;
        }
        if let Some(v) = self.timeout_seconds {
            check.timeout_seconds = number("healthCheckTimeoutSeconds", v)?;
        }
        if let Some(v) = self.healthy_threshold {
            check.healthy_threshold = number("healthyThresholdCount", v)?;
        }
        if let Some(v) = self.unhealthy_threshold {
            check.unhealthy_threshold = number("unhealthyThresholdCount", v)?;
        }
        if let Some(m) = &self.matcher {
            check.matcher = Some(m.clone());
        }
        Ok(())
    }
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 32 {
        return Err(invalid(
            "1 validation error detected: Value at 'name' failed to satisfy constraint: Member must have length between 1 and 32",
        ));
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(invalid(format!(
            "Target group name '{name}' can only contain characters that are alphanumeric characters or hyphens(-)"
        )));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err(invalid(format!(
            "Target group name '{name}' cannot begin or end with '-'"
        )));
    }
    Ok(())
}

impl Elbv2 {
    /// CreateTargetGroup. The same request again answers the group it made; a name taken
    /// with other settings is `DuplicateTargetGroupName`.
    pub fn create_target_group(
        &self,
        scope: &ElbScope,
        req: CreateTargetGroup,
    ) -> Result<TargetGroup> {
        check_name(&req.name)?;
        tags::check(&req.tags)?;
        let protocol = req.protocol.ok_or_else(|| {
            invalid("A protocol must be specified for target groups with target type 'instance' or 'ip'")
        })?;
        let port = req.port.ok_or_else(|| {
            invalid(
                "A port must be specified for target groups with target type 'instance' or 'ip'",
            )
        })?;
        let port = u16::try_from(port).ok().filter(|p| *p > 0).ok_or_else(|| {
            invalid(format!(
                "1 validation error detected: Value '{port}' at 'port' failed to satisfy constraint: Member must have value between 1 and 65535"
            ))
        })?;
        let vpc_id = req.vpc_id.clone().ok_or_else(|| {
            invalid(
                "A VPC ID must be specified for target groups with target type 'instance' or 'ip'",
            )
        })?;
        let known = match self.networks() {
            Some(n) => n.vpc_exists(scope, &vpc_id).map_err(Elbv2Error::Internal)?,
            None => true,
        };
        if !is_resource_id(&vpc_id, "vpc-") || !known {
            return Err(invalid(format!("The VPC ID '{vpc_id}' is not found")));
        }
        let mut health = HealthCheck::defaults(protocol, req.health.protocol);
        req.health.apply(&mut health)?;
        health.check(protocol)?;
        let protocol_version = match (protocol.is_http(), &req.protocol_version) {
            (true, Some(v)) if ["HTTP1", "HTTP2", "GRPC"].contains(&v.as_str()) => Some(v.clone()),
            (true, Some(v)) => {
                return Err(invalid(format!("Protocol version '{v}' is not supported")));
            }
            (true, None) => Some("HTTP1".to_string()),
            (false, Some(_)) => {
                return Err(config(
                    "A protocol version can only be specified for target groups with the HTTP or HTTPS protocol",
                ));
            }
            (false, None) => None,
        };
        let group = TargetGroup {
            arn: TargetGroupArn::new(scope, &req.name, &random_id()),
            name: req.name.clone(),
            protocol,
            protocol_version,
            port,
            vpc_id,
            target_type: req.target_type,
            health_check: health,
            created_time: now(),
            attributes: BTreeMap::new(),
            tags: req.tags.clone(),
            targets: Vec::new(),
            draining: Vec::new(),
        };
        let key = scope.target_group_key(&req.name);
        loop {
            if let Some(kv) = self.store().get(&key)? {
                let existing: TargetGroup = berth_store::decode(&kv)?;
                let same = existing.protocol == group.protocol
                    && existing.port == group.port
                    && existing.vpc_id == group.vpc_id
                    && existing.target_type == group.target_type
                    && existing.health_check == group.health_check;
                return match same {
                    true => Ok(existing),
                    false => Err(Elbv2Error::DuplicateTargetGroupName(format!(
                        "A target group with the same name '{}' exists, but with different settings",
                        req.name
                    ))),
                };
            }
            if let TxnOutcome::Committed(_) =
                self.store()
                    .put_if_revision(&key, &berth_store::encode(&group), 0)?
            {
                return Ok(group);
            }
        }
    }

    /// The target group `arn` names.
    pub fn target_group(&self, scope: &ElbScope, arn: &TargetGroupArn) -> Result<TargetGroup> {
        if !scope.owns(arn.scope()) {
            return Err(tg_not_found());
        }
        let key = scope.target_group_key(arn.name());
        let kv = self.store().get(&key)?.ok_or_else(tg_not_found)?;
        let group: TargetGroup = berth_store::decode(&kv)?;
        if group.arn != *arn {
            return Err(tg_not_found());
        }
        Ok(group)
    }

    /// A read-modify-write of the target group `arn`.
    pub(crate) fn change_target_group<T>(
        &self,
        scope: &ElbScope,
        arn: &TargetGroupArn,
        mut change: impl FnMut(&mut TargetGroup) -> Result<T>,
    ) -> Result<(TargetGroup, T)> {
        if !scope.owns(arn.scope()) {
            return Err(tg_not_found());
        }
        let key = scope.target_group_key(arn.name());
        let mut out = None;
        let stored = berth_store::update(self.store(), &key, |current: Option<TargetGroup>| {
            let mut group = current.filter(|g| g.arn == *arn).ok_or_else(tg_not_found)?;
            out = Some(change(&mut group)?);
            Ok::<_, Elbv2Error>(Change::Put(group))
        })?;
        match (stored, out) {
            (Some(group), Some(out)) => Ok((group, out)),
            _ => Err(tg_not_found()),
        }
    }

    /// DescribeTargetGroups: those `arns` or `names` name, those a load balancer's
    /// listeners and rules forward to, or a page of all of them by name.
    pub fn describe_target_groups(
        &self,
        scope: &ElbScope,
        load_balancer: Option<&LoadBalancerArn>,
        arns: &[TargetGroupArn],
        names: &[String],
        paging: &Paging,
    ) -> Result<Page<TargetGroup>> {
        let size = paging.size()?;
        if let Some(lb) = load_balancer {
            self.load_balancer(scope, lb)?;
            let usage = self.target_group_usage(scope)?;
            let mut items = Vec::new();
            for (tg, lbs) in usage {
                if lbs.contains(lb) {
                    match self.target_group(scope, &tg) {
                        Ok(group) => items.push(group),
                        Err(Elbv2Error::TargetGroupNotFound(_)) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            return Ok(Page::whole(items));
        }
        if !arns.is_empty() {
            let items = arns
                .iter()
                .map(|arn| self.target_group(scope, arn))
                .collect::<Result<Vec<_>>>()?;
            return Ok(Page::whole(items));
        }
        if !names.is_empty() {
            return named(
                self.store(),
                names,
                |name| scope.target_group_key(name),
                |name| {
                    Elbv2Error::TargetGroupNotFound(format!("Target groups '[{name}]' not found"))
                },
            );
        }
        page_of(self.store(), &scope.target_groups_prefix(), paging, size)
    }

    /// ModifyTargetGroup: its health check.
    pub fn modify_target_group(
        &self,
        scope: &ElbScope,
        arn: &TargetGroupArn,
        changes: &ModifyTargetGroup,
    ) -> Result<TargetGroup> {
        let (group, ()) = self.change_target_group(scope, arn, |group| {
            let mut check = group.health_check.clone();
            changes.apply(&mut check)?;
            check.check(group.protocol)?;
            group.health_check = check;
            Ok(())
        })?;
        Ok(group)
    }

    /// ModifyTargetGroupAttributes: the changes checked, then all attributes shown.
    pub fn modify_target_group_attributes(
        &self,
        scope: &ElbScope,
        arn: &TargetGroupArn,
        changes: &[Attribute],
    ) -> Result<Vec<Attribute>> {
        let (group, ()) = self.change_target_group(scope, arn, |group| {
            attributes::check_target_group(group.protocol, changes)?;
            for a in changes {
                group.attributes.insert(a.key.clone(), a.value.clone());
            }
            Ok(())
        })?;
        Ok(group.attributes())
    }

    /// DeleteTargetGroup: refused (`ResourceInUse`) while a listener or rule forwards to
    /// it; one that does not exist is not an error. Its targets' health records go too.
    /// (A listener created while this runs could still name it: the data plane treats a
    /// forward to a missing group as a 503, as AWS answers one to an empty group.)
    pub fn delete_target_group(&self, scope: &ElbScope, arn: &TargetGroupArn) -> Result<()> {
        if !scope.owns(arn.scope()) {
            return Ok(());
        }
        if self.target_group_usage(scope)?.contains_key(arn) {
            return Err(Elbv2Error::ResourceInUse(format!(
                "Target group '{arn}' is currently in use by a listener or a rule"
            )));
        }
        let key = scope.target_group_key(arn.name());
        let health = self
            .store()
            .range(&scope.health_prefix(arn.id()), None, 0)?;
        berth_store::update(self.store(), &key, |current: Option<TargetGroup>| {
            let mut update = berth_store::Update::from(match current {
                Some(g) if g.arn == *arn => Change::Delete,
                _ => Change::Keep,
            });
            if update.change == Change::Delete {
                for kv in &health {
                    update = update.also(Op::delete(&kv.key));
                }
            }
            Ok::<_, Elbv2Error>(update)
        })?;
        Ok(())
    }

    /// Every target group of the scope (the data plane reads them all).
    pub fn target_groups(&self, scope: &ElbScope) -> Result<Vec<TargetGroup>> {
        crate::load_balancers::all_of(self.store(), &scope.target_groups_prefix())
    }
}
