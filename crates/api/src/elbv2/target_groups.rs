//! Target groups: CreateTargetGroup, DescribeTargetGroups, ModifyTargetGroup,
//! DeleteTargetGroup, DescribeTargetGroupAttributes, ModifyTargetGroupAttributes.

use std::collections::{BTreeMap, BTreeSet};

use berth_elbv2::{
    CreateTargetGroup, LoadBalancerArn, ModifyTargetGroup, Protocol, TargetGroup, TargetGroupArn,
    TargetType,
};

use super::{attributes, attributes_xml, boolean, elb_error, next_marker, paging, parsed, scope};
use crate::protocol::query::{QueryRequest, Xml};
use crate::protocol::{AwsContext, AwsError};

pub(super) const ACTIONS: &[&str] = &[
    "CreateTargetGroup",
    "DescribeTargetGroups",
    "ModifyTargetGroup",
    "DeleteTargetGroup",
    "DescribeTargetGroupAttributes",
    "ModifyTargetGroupAttributes",
];

pub(super) fn tg_arn(r: &QueryRequest) -> Result<TargetGroupArn, AwsError> {
    TargetGroupArn::parse(r.required("TargetGroupArn")?).map_err(elb_error)
}

/// The health check fields of CreateTargetGroup and ModifyTargetGroup.
fn health(r: &QueryRequest) -> Result<ModifyTargetGroup, AwsError> {
    Ok(ModifyTargetGroup {
        enabled: r
            .get("HealthCheckEnabled")
            .map(|v| boolean("healthCheckEnabled", v))
            .transpose()?,
        protocol: parsed(r, "HealthCheckProtocol", Protocol::parse)?,
        port: r.get("HealthCheckPort").map(str::to_string),
        path: r.get("HealthCheckPath").map(str::to_string),
        interval_seconds: r.int("HealthCheckIntervalSeconds")?,
        timeout_seconds: r.int("HealthCheckTimeoutSeconds")?,
        healthy_threshold: r.int("HealthyThresholdCount")?,
        unhealthy_threshold: r.int("UnhealthyThresholdCount")?,
        matcher: r.get("Matcher.HttpCode").map(str::to_string),
    })
}

pub(super) fn dispatch(ctx: &AwsContext, r: &QueryRequest) -> Result<Option<Xml>, AwsError> {
    let elb = &ctx.app.elbv2;
    let scope = scope(ctx);
    let mut xml = Xml::default();
    let usage = || elb.target_group_usage(&scope).map_err(elb_error);
    match r.action.as_str() {
        "CreateTargetGroup" => {
            let group = elb
                .create_target_group(
                    &scope,
                    CreateTargetGroup {
                        name: r.required("Name")?.to_string(),
                        protocol: parsed(r, "Protocol", Protocol::parse)?,
                        protocol_version: r.get("ProtocolVersion").map(str::to_string),
                        port: r.int("Port")?,
                        vpc_id: r.get("VpcId").map(str::to_string),
                        target_type: parsed(r, "TargetType", TargetType::parse)?
                            .unwrap_or(TargetType::Instance),
                        health: health(r)?,
                        tags: super::tags(r),
                    },
                )
                .map_err(elb_error)?;
            let usage = usage()?;
            xml.members("TargetGroups", [&group], |x, g| tg_xml(x, g, &usage));
        }
        "DescribeTargetGroups" => {
            let lb = r
                .get("LoadBalancerArn")
                .map(LoadBalancerArn::parse)
                .transpose()
                .map_err(elb_error)?;
            let arns = super::arn_list(r, "TargetGroupArns", TargetGroupArn::parse)?;
            let names: Vec<String> = r.list("Names").into_iter().map(str::to_string).collect();
            let page = elb
                .describe_target_groups(&scope, lb.as_ref(), &arns, &names, &paging(r)?)
                .map_err(elb_error)?;
            let usage = usage()?;
            xml.members("TargetGroups", &page.items, |x, g| tg_xml(x, g, &usage));
            next_marker(&mut xml, page.next_marker.as_deref());
        }
        "ModifyTargetGroup" => {
            let group = elb
                .modify_target_group(&scope, &tg_arn(r)?, &health(r)?)
                .map_err(elb_error)?;
            let usage = usage()?;
            xml.members("TargetGroups", [&group], |x, g| tg_xml(x, g, &usage));
        }
        "DeleteTargetGroup" => {
            elb.delete_target_group(&scope, &tg_arn(r)?)
                .map_err(elb_error)?;
        }
        "DescribeTargetGroupAttributes" => {
            let group = elb.target_group(&scope, &tg_arn(r)?).map_err(elb_error)?;
            attributes_xml(&mut xml, &group.attributes());
        }
        "ModifyTargetGroupAttributes" => {
            let all = elb
                .modify_target_group_attributes(&scope, &tg_arn(r)?, &attributes(r))
                .map_err(elb_error)?;
            attributes_xml(&mut xml, &all);
        }
        other => unreachable!("{other} is not in ACTIONS"),
    }
    Ok(Some(xml))
}

/// A target group as ELBv2 shows it, with the load balancers that use it.
fn tg_xml(
    x: &mut Xml,
    g: &TargetGroup,
    usage: &BTreeMap<TargetGroupArn, BTreeSet<LoadBalancerArn>>,
) {
    let hc = &g.health_check;
    x.leaf("TargetGroupArn", &g.arn)
        .leaf("TargetGroupName", &g.name)
        .leaf("Protocol", g.protocol)
        .leaf("Port", g.port)
        .leaf("VpcId", &g.vpc_id)
        .leaf("HealthCheckProtocol", hc.protocol)
        .leaf("HealthCheckPort", &hc.port)
        .leaf("HealthCheckEnabled", hc.enabled)
        .leaf("HealthCheckIntervalSeconds", hc.interval_seconds)
        .leaf("HealthCheckTimeoutSeconds", hc.timeout_seconds)
        .leaf("HealthyThresholdCount", hc.healthy_threshold)
        .leaf("UnhealthyThresholdCount", hc.unhealthy_threshold)
        .opt_leaf("HealthCheckPath", hc.path.as_deref());
    if let Some(m) = &hc.matcher {
        x.element("Matcher", |x| {
            x.leaf("HttpCode", m);
        });
    }
    x.members(
        "LoadBalancerArns",
        usage.get(&g.arn).into_iter().flatten(),
        |x, lb| {
            x.text(lb);
        },
    )
    .leaf("TargetType", g.target_type)
    .opt_leaf("ProtocolVersion", g.protocol_version.as_deref())
    .leaf("IpAddressType", "ipv4");
}
