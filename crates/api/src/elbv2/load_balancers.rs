//! Load balancers: CreateLoadBalancer, DescribeLoadBalancers, DeleteLoadBalancer,
//! SetSecurityGroups, SetSubnets, SetIpAddressType, DescribeLoadBalancerAttributes,
//! ModifyLoadBalancerAttributes.

use berth_elbv2::{
    CreateLoadBalancer, IpAddressType, LoadBalancer, LoadBalancerArn, LoadBalancerType, Scheme,
};

use super::{attributes, attributes_xml, elb_error, next_marker, paging, parsed, scope, timestamp};
use crate::protocol::query::{QueryRequest, Xml};
use crate::protocol::{AwsContext, AwsError};

pub(super) const ACTIONS: &[&str] = &[
    "CreateLoadBalancer",
    "DescribeLoadBalancers",
    "DeleteLoadBalancer",
    "SetSecurityGroups",
    "SetSubnets",
    "SetIpAddressType",
    "DescribeLoadBalancerAttributes",
    "ModifyLoadBalancerAttributes",
];

pub(super) fn lb_arn(r: &QueryRequest) -> Result<LoadBalancerArn, AwsError> {
    LoadBalancerArn::parse(r.required("LoadBalancerArn")?).map_err(elb_error)
}

/// `Subnets.member.N` and `SubnetMappings.member.N.SubnetId` together.
fn subnets(r: &QueryRequest) -> Vec<String> {
    let mut subnets: Vec<String> = r.list("Subnets").into_iter().map(str::to_string).collect();
    subnets.extend(
        r.structs("SubnetMappings")
            .into_iter()
            .filter_map(|m| m.get("SubnetId").map(|s| s.to_string())),
    );
    subnets
}

pub(super) fn dispatch(ctx: &AwsContext, r: &QueryRequest) -> Result<Option<Xml>, AwsError> {
    let elb = &ctx.app.elbv2;
    let scope = scope(ctx);
    let mut xml = Xml::default();
    match r.action.as_str() {
        "CreateLoadBalancer" => {
            let lb = elb
                .create_load_balancer(
                    &scope,
                    CreateLoadBalancer {
                        name: r.required("Name")?.to_string(),
                        kind: parsed(r, "Type", LoadBalancerType::parse)?
                            .unwrap_or(LoadBalancerType::Application),
                        scheme: parsed(r, "Scheme", Scheme::parse)?
                            .unwrap_or(Scheme::InternetFacing),
                        ip_address_type: parsed(r, "IpAddressType", IpAddressType::parse)?
                            .unwrap_or(IpAddressType::Ipv4),
                        subnets: subnets(r),
                        security_groups: r
                            .list("SecurityGroups")
                            .into_iter()
                            .map(str::to_string)
                            .collect(),
                        tags: super::tags(r),
                    },
                )
                .map_err(elb_error)?;
            xml.members("LoadBalancers", [&lb], lb_xml);
        }
        "DescribeLoadBalancers" => {
            let arns = super::arn_list(r, "LoadBalancerArns", LoadBalancerArn::parse)?;
            let names: Vec<String> = r.list("Names").into_iter().map(str::to_string).collect();
            let page = elb
                .describe_load_balancers(&scope, &arns, &names, &paging(r)?)
                .map_err(elb_error)?;
            xml.members("LoadBalancers", &page.items, lb_xml);
            next_marker(&mut xml, page.next_marker.as_deref());
        }
        "DeleteLoadBalancer" => {
            elb.delete_load_balancer(&scope, &lb_arn(r)?)
                .map_err(elb_error)?;
        }
        "SetSecurityGroups" => {
            let groups = r
                .list("SecurityGroups")
                .into_iter()
                .map(str::to_string)
                .collect();
            let lb = elb
                .set_security_groups(&scope, &lb_arn(r)?, groups)
                .map_err(elb_error)?;
            xml.members("SecurityGroupIds", &lb.security_groups, |x, g| {
                x.text(g);
            });
        }
        "SetSubnets" => {
            let lb = elb
                .set_subnets(&scope, &lb_arn(r)?, subnets(r))
                .map_err(elb_error)?;
            zones_xml(&mut xml, &lb);
            xml.leaf("IpAddressType", lb.ip_address_type);
        }
        "SetIpAddressType" => {
            let kind = parsed(r, "IpAddressType", IpAddressType::parse)?
                .ok_or_else(|| r.required("IpAddressType").unwrap_err())?;
            let lb = elb
                .set_ip_address_type(&scope, &lb_arn(r)?, kind)
                .map_err(elb_error)?;
            xml.leaf("IpAddressType", lb.ip_address_type);
        }
        "DescribeLoadBalancerAttributes" => {
            let lb = elb.load_balancer(&scope, &lb_arn(r)?).map_err(elb_error)?;
            attributes_xml(&mut xml, &lb.attributes());
        }
        "ModifyLoadBalancerAttributes" => {
            let all = elb
                .modify_load_balancer_attributes(&scope, &lb_arn(r)?, &attributes(r))
                .map_err(elb_error)?;
            attributes_xml(&mut xml, &all);
        }
        other => unreachable!("{other} is not in ACTIONS"),
    }
    Ok(Some(xml))
}

fn zones_xml(x: &mut Xml, lb: &LoadBalancer) {
    x.members("AvailabilityZones", &lb.availability_zones, |x, z| {
        x.leaf("ZoneName", &z.zone_name)
            .leaf("SubnetId", &z.subnet_id)
            .element("LoadBalancerAddresses", |_| {});
    });
}

/// A load balancer as ELBv2 shows it.
pub(super) fn lb_xml(x: &mut Xml, lb: &LoadBalancer) {
    x.leaf("LoadBalancerArn", &lb.arn)
        .leaf("DNSName", lb.dns_name())
        .leaf("CanonicalHostedZoneId", lb.canonical_hosted_zone_id())
        .leaf("CreatedTime", timestamp(lb.created_time))
        .leaf("LoadBalancerName", &lb.name)
        .leaf("Scheme", lb.scheme)
        .leaf("VpcId", &lb.vpc_id)
        .element("State", |x| {
            x.leaf("Code", lb.state);
        })
        .leaf("Type", lb.kind);
    zones_xml(x, lb);
    x.members("SecurityGroups", &lb.security_groups, |x, g| {
        x.text(g);
    });
    x.leaf("IpAddressType", lb.ip_address_type);
}
