//! Security groups and their rules. A group keeps its rules (each with its `sgr-` id), so
//! Authorize and Revoke are one read-modify-write of the group. A permission as the API
//! takes it (`IpPermissions`: a protocol, a port range and sources) becomes one rule per
//! source, and DescribeSecurityGroups gathers rules back into permissions.

use berth_store::{Change, Op, Update};
use serde::{Deserialize, Serialize};

use crate::cidr::Cidr;
use crate::errors::{group_not_found, invalid_value, missing};
use crate::filters::{Filter, Filtered, matches, one};
use crate::keys::{Kind, new_id};
use crate::tag::Tag;
use crate::{Ec2, Ec2Error, Ec2Scope, Result};

/// Rules per group and direction (EC2's default quota).
const MAX_RULES: usize = 60;
const DEFAULT_NAME: &str = "default";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityGroup {
    pub id: String,
    pub name: String,
    pub description: String,
    pub vpc_id: String,
    pub owner_id: String,
    #[serde(default)]
    pub rules: Vec<SecurityGroupRule>,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

/// One rule: one source (or destination) of one permission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityGroupRule {
    pub id: String,
    pub is_egress: bool,
    /// `tcp`, `udp`, `icmp`, `icmpv6`, `-1` (all) or another protocol's number.
    pub protocol: String,
    /// -1 for protocols without ports.
    pub from_port: i32,
    pub to_port: i32,
    pub source: PermissionSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Where a rule lets traffic come from (or go to).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind", content = "value")]
pub enum PermissionSource {
    CidrIpv4(String),
    CidrIpv6(String),
    Group(String),
    PrefixList(String),
}

/// A permission as Authorize and Revoke take it, and as DescribeSecurityGroups shows rules
/// gathered: the sources with their descriptions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpPermission {
    pub protocol: String,
    pub from_port: Option<i32>,
    pub to_port: Option<i32>,
    pub sources: Vec<(PermissionSource, Option<String>)>,
}

impl SecurityGroup {
    /// A VPC's default group: traffic from its own members in, everything out.
    pub(crate) fn default_for(scope: &Ec2Scope, vpc_id: &str) -> SecurityGroup {
        let id = new_id("sg");
        SecurityGroup {
            rules: vec![
                all_traffic(false, PermissionSource::Group(id.clone())),
                all_traffic(true, PermissionSource::CidrIpv4("0.0.0.0/0".into())),
            ],
            id,
            name: DEFAULT_NAME.into(),
            description: "default VPC security group".into(),
            vpc_id: vpc_id.into(),
            owner_id: scope.account.clone(),
            tags: Vec::new(),
        }
    }

    pub fn is_default(&self) -> bool {
        self.name == DEFAULT_NAME
    }

    /// The group's rules of one direction gathered into permissions, by protocol and ports
    /// in the order they first appear.
    pub fn permissions(&self, egress: bool) -> Vec<IpPermission> {
        let mut out: Vec<IpPermission> = Vec::new();
        for rule in self.rules.iter().filter(|r| r.is_egress == egress) {
            let (from, to) = rule.ports();
            let found = out
                .iter_mut()
                .find(|p| p.protocol == rule.protocol && p.from_port == from && p.to_port == to);
            let entry = (rule.source.clone(), rule.description.clone());
            match found {
                Some(p) => p.sources.push(entry),
                None => out.push(IpPermission {
                    protocol: rule.protocol.clone(),
                    from_port: from,
                    to_port: to,
                    sources: vec![entry],
                }),
            }
        }
        out
    }

    fn references(&self, group_id: &str) -> bool {
        self.id != group_id
            && self
                .rules
                .iter()
                .any(|r| r.source == PermissionSource::Group(group_id.to_string()))
    }

    pub fn arn(&self, scope: &Ec2Scope) -> String {
        scope.arn("security-group", &self.id)
    }
}

impl SecurityGroupRule {
    /// The ports as permissions show them: none for protocols without ports (`-1`).
    pub fn ports(&self) -> (Option<i32>, Option<i32>) {
        if self.protocol == "-1" {
            (None, None)
        } else {
            (Some(self.from_port), Some(self.to_port))
        }
    }

    /// The same rule (direction, protocol, ports, source), whatever its id and description.
    fn same(&self, other: &SecurityGroupRule) -> bool {
        self.is_egress == other.is_egress
            && self.protocol == other.protocol
            && self.from_port == other.from_port
            && self.to_port == other.to_port
            && self.source == other.source
    }

    /// How EC2's duplicate message describes a rule.
    fn described(&self) -> String {
        let peer = match &self.source {
            PermissionSource::CidrIpv4(c)
            | PermissionSource::CidrIpv6(c)
            | PermissionSource::Group(c)
            | PermissionSource::PrefixList(c) => c.clone(),
        };
        let protocol = match self.protocol.as_str() {
            "-1" => "ALL".to_string(),
            p => p.to_ascii_uppercase(),
        };
        format!(
            "peer: {peer}, {protocol}, from port: {}, to port: {}, ALLOW",
            self.from_port, self.to_port
        )
    }
}

fn all_traffic(egress: bool, source: PermissionSource) -> SecurityGroupRule {
    SecurityGroupRule {
        id: new_id("sgr"),
        is_egress: egress,
        protocol: "-1".into(),
        from_port: -1,
        to_port: -1,
        source,
        description: None,
    }
}

/// A protocol as EC2 keeps it: names for tcp, udp, icmp and icmpv6 (given by name or
/// number), `-1` for all, other numbers as they are.
fn parse_protocol(text: &str) -> Result<String> {
    let lower = text.to_ascii_lowercase();
    Ok(match lower.as_str() {
        "tcp" | "6" => "tcp".into(),
        "udp" | "17" => "udp".into(),
        "icmp" | "1" => "icmp".into(),
        "icmpv6" | "58" => "icmpv6".into(),
        "-1" | "all" => "-1".into(),
        n if n.parse::<u8>().is_ok() => n.into(),
        _ => {
            return Err(Ec2Error::InvalidParameterValue(format!(
                "Invalid value '{text}' for IP protocol. Unknown protocol."
            )));
        }
    })
}

impl Filtered for SecurityGroup {
    fn filter_values(&self, name: &str) -> Option<Vec<String>> {
        Some(match name {
            "group-id" => one(&self.id),
            "group-name" => one(&self.name),
            "vpc-id" => one(&self.vpc_id),
            "description" => one(&self.description),
            "owner-id" => one(&self.owner_id),
            _ => return None,
        })
    }
    fn tags(&self) -> &[Tag] {
        &self.tags
    }
}

impl Ec2 {
    /// CreateSecurityGroup in `vpc_id` (the default VPC when none is given), with the rule
    /// EC2 gives every new group: everything out.
    pub fn create_security_group(
        &self,
        scope: &Ec2Scope,
        name: &str,
        description: &str,
        vpc_id: Option<&str>,
        tags: Vec<Tag>,
    ) -> Result<SecurityGroup> {
        if name.is_empty() {
            return Err(missing("GroupName"));
        }
        if description.is_empty() {
            return Err(missing("GroupDescription"));
        }
        if name.len() > 255 || description.len() > 255 {
            return Err(invalid_value(
                name,
                "groupName",
                "Group names and descriptions may be at most 255 characters long.",
            ));
        }
        if name.starts_with("sg-") {
            return Err(invalid_value(
                name,
                "groupName",
                "Group names may not be in the format sg-*.",
            ));
        }
        if name == DEFAULT_NAME {
            return Err(Ec2Error::InvalidParameterValue(
                "Cannot use reserved security group name: default".into(),
            ));
        }
        let vpc_id = match vpc_id {
            Some(id) => id.to_string(),
            None => self.default_vpc_id(scope)?.ok_or_else(|| {
                Ec2Error::MissingParameter(
                    "No default VPC for this user. GroupName is only supported for EC2-Classic and default VPC."
                        .into(),
                )
            })?,
        };
        let id = new_id("sg");
        self.under_vpc(scope, &vpc_id, |vpc| {
            let name_key = scope.group_name_key(&vpc.id, name);
            if self.store().get(&name_key)?.is_some() {
                return Err(Ec2Error::GroupDuplicate(format!(
                    "The security group '{name}' already exists for VPC '{}'",
                    vpc.id
                )));
            }
            let group = SecurityGroup {
                id: id.clone(),
                name: name.into(),
                description: description.into(),
                vpc_id: vpc.id.clone(),
                owner_id: scope.account.clone(),
                rules: vec![all_traffic(
                    true,
                    PermissionSource::CidrIpv4("0.0.0.0/0".into()),
                )],
                tags: tags.clone(),
            };
            let ops = vec![
                Op::put(
                    scope.key(Kind::SecurityGroup, &group.id),
                    berth_store::encode(&group),
                ),
                Op::put(name_key, group.id.clone().into_bytes()),
            ];
            Ok((ops, group))
        })
    }

    /// The group `id` names (`sg-default`: the default VPC's default group).
    pub fn security_group(&self, scope: &Ec2Scope, id: &str) -> Result<SecurityGroup> {
        let id = self.resolve_alias(scope, id)?;
        self.read(&scope.key(Kind::SecurityGroup, &id))?
            .ok_or_else(|| group_not_found(&id))
    }

    /// The group a request names by id or, in the default VPC, by name.
    pub fn find_security_group(
        &self,
        scope: &Ec2Scope,
        id: Option<&str>,
        name: Option<&str>,
    ) -> Result<SecurityGroup> {
        match (id, name) {
            (Some(id), _) => self.security_group(scope, id),
            (None, Some(name)) => {
                let vpc = self.default_vpc_id(scope)?.unwrap_or_default();
                let key = scope.group_name_key(&vpc, name);
                let id = self
                    .store()
                    .get(&key)?
                    .map(|kv| String::from_utf8_lossy(&kv.value).into_owned())
                    .ok_or_else(|| {
                        Ec2Error::GroupNotFound(format!(
                            "The security group '{name}' does not exist in default VPC '{vpc}'"
                        ))
                    })?;
                self.security_group(scope, &id)
            }
            (None, None) => Err(Ec2Error::MissingParameter(
                "The request must contain the parameter groupName or groupId".into(),
            )),
        }
    }

    /// DescribeSecurityGroups: by ids, by names (in the default VPC), or all; filtered.
    pub fn describe_security_groups(
        &self,
        scope: &Ec2Scope,
        ids: &[String],
        names: &[String],
        filters: &[Filter],
    ) -> Result<Vec<SecurityGroup>> {
        let mut groups: Vec<SecurityGroup> = Vec::new();
        for id in ids {
            groups.push(self.security_group(scope, id)?);
        }
        for name in names {
            groups.push(self.find_security_group(scope, None, Some(name))?);
        }
        if ids.is_empty() && names.is_empty() {
            groups = self.all(&scope.prefix(Kind::SecurityGroup))?;
        }
        let mut out = Vec::with_capacity(groups.len());
        for group in groups {
            if matches(filters, &group)? {
                out.push(group);
            }
        }
        Ok(out)
    }

    /// DeleteSecurityGroup: not a VPC's default group, nor one another group's rules name,
    /// nor one `in_use` (a task's network interface has it).
    pub fn delete_security_group(
        &self,
        scope: &Ec2Scope,
        group: &SecurityGroup,
        in_use: bool,
    ) -> Result<()> {
        if group.is_default() {
            return Err(Ec2Error::CannotDelete(format!(
                "the specified group: \"{}\" name: \"default\" cannot be deleted by a user",
                group.id
            )));
        }
        let dependent = || {
            Ec2Error::DependencyViolation(format!("resource {} has a dependent object", group.id))
        };
        if in_use {
            return Err(dependent());
        }
        self.under_vpc(scope, &group.vpc_id, |_| {
            let all: Vec<SecurityGroup> = self.all(&scope.prefix(Kind::SecurityGroup))?;
            if all.iter().any(|g| g.references(&group.id)) {
                return Err(dependent());
            }
            let ops = vec![
                Op::delete(scope.key(Kind::SecurityGroup, &group.id)),
                Op::delete(scope.group_name_key(&group.vpc_id, &group.name)),
            ];
            Ok((ops, ()))
        })
    }

    /// The rules `permissions` make for a group, checked: protocols, port ranges, blocks,
    /// and that the groups they name exist.
    fn rules_of(
        &self,
        scope: &Ec2Scope,
        egress: bool,
        permissions: &[IpPermission],
    ) -> Result<Vec<SecurityGroupRule>> {
        let mut rules = Vec::new();
        for p in permissions {
            let protocol = parse_protocol(&p.protocol)?;
            let (from, to) = match protocol.as_str() {
                "tcp" | "udp" => {
                    let (Some(from), Some(to)) = (p.from_port, p.to_port) else {
                        return Err(Ec2Error::InvalidParameterValue(
                            "Invalid value 'Must specify both from and to ports with TCP/UDP.' for portRange"
                                .into(),
                        ));
                    };
                    if !(0..=65535).contains(&from) || !(0..=65535).contains(&to) || from > to {
                        return Err(Ec2Error::InvalidParameterValue(format!(
                            "Invalid value '{from}-{to}' for portRange. Ports must be 0-65535 and the first not above the last."
                        )));
                    }
                    (from, to)
                }
                "icmp" | "icmpv6" => (p.from_port.unwrap_or(-1), p.to_port.unwrap_or(-1)),
                _ => (-1, -1),
            };
            if p.sources.is_empty() {
                return Err(Ec2Error::MissingParameter(
                    "Either IpRanges, Ipv6Ranges, PrefixListIds or UserIdGroupPairs must be specified."
                        .into(),
                ));
            }
            for (source, description) in &p.sources {
                let source = match source {
                    PermissionSource::CidrIpv4(c) => {
                        PermissionSource::CidrIpv4(Cidr::parse(c, "cidrIp")?.to_string())
                    }
                    PermissionSource::Group(g) => {
                        PermissionSource::Group(self.security_group(scope, g)?.id)
                    }
                    other => other.clone(),
                };
                rules.push(SecurityGroupRule {
                    id: new_id("sgr"),
                    is_egress: egress,
                    protocol: protocol.clone(),
                    from_port: from,
                    to_port: to,
                    source,
                    description: description.clone(),
                });
            }
        }
        Ok(rules)
    }

    /// AuthorizeSecurityGroupIngress / Egress: the rules added (a rule the group has
    /// already is refused, and nothing is added).
    pub fn authorize(
        &self,
        scope: &Ec2Scope,
        group_id: &str,
        egress: bool,
        permissions: &[IpPermission],
    ) -> Result<(SecurityGroup, Vec<SecurityGroupRule>)> {
        let group = self.security_group(scope, group_id)?;
        let new = self.rules_of(scope, egress, permissions)?;
        let key = scope.key(Kind::SecurityGroup, &group.id);
        let stored = berth_store::update(
            self.store(),
            &key,
            |current: Option<SecurityGroup>| -> Result<Change<SecurityGroup>> {
                let mut group = current.ok_or_else(|| group_not_found(&group.id))?;
                for (n, rule) in new.iter().enumerate() {
                    if group.rules.iter().chain(&new[..n]).any(|r| r.same(rule)) {
                        return Err(Ec2Error::PermissionDuplicate(format!(
                            "the specified rule \"{}\" already exists",
                            rule.described()
                        )));
                    }
                }
                let count = group.rules.iter().filter(|r| r.is_egress == egress).count();
                if count + new.len() > MAX_RULES {
                    return Err(Ec2Error::InvalidParameterValue(format!(
                        "The maximum number of rules per security group has been reached ({MAX_RULES})."
                    )));
                }
                group.rules.extend(new.iter().cloned());
                Ok(Change::Put(group))
            },
        )?;
        Ok((stored.ok_or_else(|| group_not_found(group_id))?, new))
    }

    /// RevokeSecurityGroupIngress / Egress, by permissions or by rule ids: every one must
    /// be a rule of the group. The rules removed.
    pub fn revoke(
        &self,
        scope: &Ec2Scope,
        group_id: &str,
        egress: bool,
        permissions: &[IpPermission],
        rule_ids: &[String],
    ) -> Result<Vec<SecurityGroupRule>> {
        let group = self.security_group(scope, group_id)?;
        let asked = self.rules_of(scope, egress, permissions)?;
        let key = scope.key(Kind::SecurityGroup, &group.id);
        let mut removed = Vec::new();
        berth_store::update(
            self.store(),
            &key,
            |current: Option<SecurityGroup>| -> Result<Update<SecurityGroup>> {
                let mut group = current.ok_or_else(|| group_not_found(&group.id))?;
                removed.clear();
                for rule in &asked {
                    let at = group.rules.iter().position(|r| r.same(rule));
                    let Some(at) = at else {
                        return Err(Ec2Error::PermissionNotFound(
                            "The specified rule does not exist in this security group.".into(),
                        ));
                    };
                    removed.push(group.rules.remove(at));
                }
                for id in rule_ids {
                    let at = group
                        .rules
                        .iter()
                        .position(|r| r.id == *id && r.is_egress == egress);
                    let Some(at) = at else {
                        return Err(Ec2Error::PermissionNotFound(format!(
                            "The security group rule ID '{id}' does not exist"
                        )));
                    };
                    removed.push(group.rules.remove(at));
                }
                Ok(Update::from(Change::Put(group)))
            },
        )?;
        Ok(removed)
    }

    /// DescribeSecurityGroupRules: each rule with its group, by rule ids or all, filtered
    /// by `group-id` and `security-group-rule-id`.
    pub fn describe_security_group_rules(
        &self,
        scope: &Ec2Scope,
        rule_ids: &[String],
        filters: &[Filter],
    ) -> Result<Vec<(SecurityGroup, SecurityGroupRule)>> {
        let groups: Vec<SecurityGroup> = self.all(&scope.prefix(Kind::SecurityGroup))?;
        let mut out = Vec::new();
        for group in &groups {
            for rule in &group.rules {
                if !rule_ids.is_empty() && !rule_ids.contains(&rule.id) {
                    continue;
                }
                let mut keep = true;
                for filter in filters {
                    let value = match filter.name.as_str() {
                        "group-id" => &group.id,
                        "security-group-rule-id" => &rule.id,
                        other => {
                            return Err(Ec2Error::InvalidParameterValue(format!(
                                "The filter '{other}' is invalid"
                            )));
                        }
                    };
                    keep &= filter.values.contains(value);
                }
                if keep {
                    out.push((group.clone(), rule.clone()));
                }
            }
        }
        for id in rule_ids {
            if !out.iter().any(|(_, r)| r.id == *id) {
                return Err(Ec2Error::InvalidParameterValue(format!(
                    "The security group rule ID '{id}' does not exist"
                )));
            }
        }
        Ok(out)
    }
}
