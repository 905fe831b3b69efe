//! Security groups and their rules: Create/Describe/Delete, Authorize/Revoke Ingress and
//! Egress (by `IpPermissions`, or the older top-level `IpProtocol`/`CidrIp` form), and
//! DescribeSecurityGroupRules.

use berth_ec2::{Ec2, Ec2Scope, IpPermission, PermissionSource, SecurityGroup, SecurityGroupRule};

use super::{ec2_error, filters, ids, required, tag_set, tag_specifications};
use crate::protocol::query::{QueryRequest, Xml};
use crate::protocol::{AwsContext, AwsError};

fn port(r: &QueryRequest, name: &str) -> Result<Option<i32>, AwsError> {
    r.get(name)
        .map(|v| {
            v.parse::<i32>().map_err(|_| {
                AwsError::client(
                    "InvalidParameterValue",
                    format!("Invalid value '{v}' for {name}."),
                )
            })
        })
        .transpose()
}

/// `IpPermissions.N…`, or the top-level form when there is none.
/// Makes a permission's source from the value naming it.
type SourceOf = fn(String) -> PermissionSource;

fn permissions(r: &QueryRequest) -> Result<Vec<IpPermission>, AwsError> {
    let mut out = Vec::new();
    for p in r.ec2_items("IpPermissions") {
        // Each kind of source: its list, the member naming it, the source it makes.
        let kinds: [(&str, &str, SourceOf); 4] = [
            ("IpRanges", "CidrIp", PermissionSource::CidrIpv4),
            ("Ipv6Ranges", "CidrIpv6", PermissionSource::CidrIpv6),
            ("Groups", "GroupId", PermissionSource::Group),
            (
                "PrefixListIds",
                "PrefixListId",
                PermissionSource::PrefixList,
            ),
        ];
        let mut sources = Vec::new();
        for (list, member, source) in kinds {
            for item in p.ec2_items(list) {
                if let Some(value) = item.get(member) {
                    sources.push((
                        source(value.to_string()),
                        item.get("Description").map(str::to_string),
                    ));
                }
            }
        }
        out.push(IpPermission {
            protocol: p.get("IpProtocol").unwrap_or("-1").to_string(),
            from_port: port(&p, "FromPort")?,
            to_port: port(&p, "ToPort")?,
            sources,
        });
    }
    if out.is_empty()
        && let Some(protocol) = r.get("IpProtocol")
    {
        let mut sources = Vec::new();
        if let Some(cidr) = r.get("CidrIp") {
            sources.push((PermissionSource::CidrIpv4(cidr.into()), None));
        }
        out.push(IpPermission {
            protocol: protocol.to_string(),
            from_port: port(r, "FromPort")?,
            to_port: port(r, "ToPort")?,
            sources,
        });
    }
    Ok(out)
}

fn permission_xml(x: &mut Xml, owner: &str, p: &IpPermission) {
    x.leaf("ipProtocol", &p.protocol)
        .opt_leaf("fromPort", p.from_port)
        .opt_leaf("toPort", p.to_port);
    let sources = |kind: fn(&PermissionSource) -> bool| {
        p.sources
            .iter()
            .filter(move |(s, _)| kind(s))
            .map(|(s, d)| (source_value(s), d.as_ref()))
            .collect::<Vec<_>>()
    };
    x.items(
        "groups",
        sources(|s| matches!(s, PermissionSource::Group(_))),
        |x, (id, d)| {
            x.leaf("userId", owner)
                .leaf("groupId", id)
                .opt_leaf("description", d);
        },
    )
    .items(
        "ipRanges",
        sources(|s| matches!(s, PermissionSource::CidrIpv4(_))),
        |x, (cidr, d)| {
            x.leaf("cidrIp", cidr).opt_leaf("description", d);
        },
    )
    .items(
        "ipv6Ranges",
        sources(|s| matches!(s, PermissionSource::CidrIpv6(_))),
        |x, (cidr, d)| {
            x.leaf("cidrIpv6", cidr).opt_leaf("description", d);
        },
    )
    .items(
        "prefixListIds",
        sources(|s| matches!(s, PermissionSource::PrefixList(_))),
        |x, (id, d)| {
            x.leaf("prefixListId", id).opt_leaf("description", d);
        },
    );
}

/// The block, group or prefix list a source names.
fn source_value(s: &PermissionSource) -> &str {
    match s {
        PermissionSource::CidrIpv4(v)
        | PermissionSource::CidrIpv6(v)
        | PermissionSource::Group(v)
        | PermissionSource::PrefixList(v) => v,
    }
}

fn group_xml(x: &mut Xml, scope: &Ec2Scope, g: &SecurityGroup) {
    x.leaf("ownerId", &g.owner_id)
        .leaf("groupId", &g.id)
        .leaf("groupName", &g.name)
        .leaf("groupDescription", &g.description)
        .leaf("vpcId", &g.vpc_id)
        .leaf("securityGroupArn", g.arn(scope))
        .items("ipPermissions", g.permissions(false), |x, p| {
            permission_xml(x, &g.owner_id, &p)
        })
        .items("ipPermissionsEgress", g.permissions(true), |x, p| {
            permission_xml(x, &g.owner_id, &p)
        });
    tag_set(x, &g.tags);
}

fn rule_xml(x: &mut Xml, scope: &Ec2Scope, g: &SecurityGroup, r: &SecurityGroupRule) {
    x.leaf("securityGroupRuleId", &r.id)
        .leaf("groupId", &g.id)
        .leaf("groupOwnerId", &g.owner_id)
        .leaf("isEgress", r.is_egress)
        .leaf("ipProtocol", &r.protocol)
        .leaf("fromPort", r.from_port)
        .leaf("toPort", r.to_port);
    match &r.source {
        PermissionSource::CidrIpv4(c) => {
            x.leaf("cidrIpv4", c);
        }
        PermissionSource::CidrIpv6(c) => {
            x.leaf("cidrIpv6", c);
        }
        PermissionSource::PrefixList(p) => {
            x.leaf("prefixListId", p);
        }
        PermissionSource::Group(id) => {
            x.element("referencedGroupInfo", |x| {
                x.leaf("groupId", id).leaf("userId", &g.owner_id);
            });
        }
    }
    x.opt_leaf("description", r.description.as_ref()).leaf(
        "securityGroupRuleArn",
        scope.arn("security-group-rule", &r.id),
    );
    tag_set(x, &[]);
}

pub(super) fn create_security_group(
    ec2: &Ec2,
    scope: &Ec2Scope,
    r: &QueryRequest,
) -> Result<Xml, AwsError> {
    let name = required(r, "GroupName")?;
    let description = required(r, "GroupDescription")?;
    let tags = tag_specifications(r, "security-group")?;
    let group = ec2
        .create_security_group(scope, name, description, r.get("VpcId"), tags)
        .map_err(ec2_error)?;
    let mut x = Xml::default();
    x.leaf("return", "true")
        .leaf("groupId", &group.id)
        .leaf("securityGroupArn", group.arn(scope));
    tag_set(&mut x, &group.tags);
    Ok(x)
}

pub(super) fn describe_security_groups(
    ec2: &Ec2,
    scope: &Ec2Scope,
    r: &QueryRequest,
) -> Result<Xml, AwsError> {
    let groups = ec2
        .describe_security_groups(scope, &ids(r, "GroupId"), &ids(r, "GroupName"), &filters(r))
        .map_err(ec2_error)?;
    let mut x = Xml::default();
    x.items("securityGroupInfo", &groups, |x, g| group_xml(x, scope, g));
    Ok(x)
}

/// DeleteSecurityGroup: refused while a task's interface has the group.
pub(super) fn delete_security_group(
    ctx: &AwsContext,
    scope: &Ec2Scope,
    r: &QueryRequest,
) -> Result<Xml, AwsError> {
    let group = ctx
        .app
        .ec2
        .find_security_group(scope, r.get("GroupId"), r.get("GroupName"))
        .map_err(ec2_error)?;
    let in_use = super::interfaces::task_interfaces(ctx, scope)?
        .iter()
        .any(|i| i.groups.iter().any(|(id, _)| *id == group.id));
    ctx.app
        .ec2
        .delete_security_group(scope, &group, in_use)
        .map_err(ec2_error)?;
    let mut x = super::done();
    x.leaf("groupId", &group.id);
    Ok(x)
}

fn target(ec2: &Ec2, scope: &Ec2Scope, r: &QueryRequest) -> Result<SecurityGroup, AwsError> {
    ec2.find_security_group(scope, r.get("GroupId"), r.get("GroupName"))
        .map_err(ec2_error)
}

pub(super) fn authorize(
    ec2: &Ec2,
    scope: &Ec2Scope,
    r: &QueryRequest,
    egress: bool,
) -> Result<Xml, AwsError> {
    let group = target(ec2, scope, r)?;
    let (group, added) = ec2
        .authorize(scope, &group.id, egress, &permissions(r)?)
        .map_err(ec2_error)?;
    let mut x = super::done();
    x.items("securityGroupRuleSet", &added, |x, rule| {
        rule_xml(x, scope, &group, rule)
    });
    Ok(x)
}

pub(super) fn revoke(
    ec2: &Ec2,
    scope: &Ec2Scope,
    r: &QueryRequest,
    egress: bool,
) -> Result<Xml, AwsError> {
    let group = target(ec2, scope, r)?;
    let removed = ec2
        .revoke(
            scope,
            &group.id,
            egress,
            &permissions(r)?,
            &ids(r, "SecurityGroupRuleId"),
        )
        .map_err(ec2_error)?;
    let mut x = super::done();
    x.items("revokedSecurityGroupRuleSet", &removed, |x, rule| {
        x.leaf("securityGroupRuleId", &rule.id)
            .leaf("groupId", &group.id)
            .leaf("isEgress", rule.is_egress)
            .leaf("ipProtocol", &rule.protocol)
            .leaf("fromPort", rule.from_port)
            .leaf("toPort", rule.to_port);
    });
    Ok(x)
}

pub(super) fn describe_security_group_rules(
    ec2: &Ec2,
    scope: &Ec2Scope,
    r: &QueryRequest,
) -> Result<Xml, AwsError> {
    let rules = ec2
        .describe_security_group_rules(scope, &ids(r, "SecurityGroupRuleId"), &filters(r))
        .map_err(ec2_error)?;
    let mut x = Xml::default();
    x.items("securityGroupRuleSet", &rules, |x, (g, rule)| {
        rule_xml(x, scope, g, rule)
    });
    Ok(x)
}
