//! CreateVpc, DescribeVpcs, DeleteVpc, Modify/DescribeVpcAttribute; the region's zones and
//! the account's attributes.

use berth_ec2::{Ec2, Ec2Scope, Vpc, VpcAttribute};

use super::{boolean, ec2_error, filters, ids, required, tag_set, tag_specifications};
use crate::protocol::AwsError;
use crate::protocol::query::{QueryRequest, Xml};

pub(super) fn vpc_xml(x: &mut Xml, vpc: &Vpc) {
    x.leaf("vpcId", &vpc.id)
        .leaf("ownerId", &vpc.owner_id)
        .leaf("state", "available")
        .leaf("cidrBlock", &vpc.cidr_block)
        .items("cidrBlockAssociationSet", [vpc], |x, vpc| {
            x.leaf("cidrBlock", &vpc.cidr_block)
                .leaf("associationId", &vpc.cidr_block_association_id)
                .element("cidrBlockState", |x| {
                    x.leaf("state", "associated");
                });
        })
        .leaf("dhcpOptionsId", "default")
        .leaf("instanceTenancy", &vpc.instance_tenancy)
        .leaf("isDefault", vpc.is_default);
    tag_set(x, &vpc.tags);
}

pub(super) fn create_vpc(ec2: &Ec2, scope: &Ec2Scope, r: &QueryRequest) -> Result<Xml, AwsError> {
    let cidr = required(r, "CidrBlock")?;
    let tags = tag_specifications(r, "vpc")?;
    let vpc = ec2
        .create_vpc(scope, cidr, r.get("InstanceTenancy"), tags)
        .map_err(ec2_error)?;
    let mut x = Xml::default();
    x.element("vpc", |x| vpc_xml(x, &vpc));
    Ok(x)
}

pub(super) fn describe_vpcs(
    ec2: &Ec2,
    scope: &Ec2Scope,
    r: &QueryRequest,
) -> Result<Xml, AwsError> {
    let vpcs = ec2
        .describe_vpcs(scope, &ids(r, "VpcId"), &filters(r))
        .map_err(ec2_error)?;
    let mut x = Xml::default();
    x.items("vpcSet", &vpcs, vpc_xml);
    Ok(x)
}

pub(super) fn delete_vpc(ec2: &Ec2, scope: &Ec2Scope, r: &QueryRequest) -> Result<Xml, AwsError> {
    ec2.delete_vpc(scope, required(r, "VpcId")?)
        .map_err(ec2_error)?;
    Ok(super::done())
}

/// ModifyVpcAttribute: `EnableDnsSupport.Value` or `EnableDnsHostnames.Value`, one a call.
pub(super) fn modify_vpc_attribute(
    ec2: &Ec2,
    scope: &Ec2Scope,
    r: &QueryRequest,
) -> Result<Xml, AwsError> {
    let id = required(r, "VpcId")?;
    let support = boolean(r, "EnableDnsSupport.Value")?;
    let hostnames = boolean(r, "EnableDnsHostnames.Value")?;
    let (attribute, value) = match (support, hostnames) {
        (Some(v), None) => (VpcAttribute::EnableDnsSupport, v),
        (None, Some(v)) => (VpcAttribute::EnableDnsHostnames, v),
        _ => {
            return Err(AwsError::client(
                "InvalidParameterCombination",
                "Exactly one attribute can be modified at a time.",
            ));
        }
    };
    ec2.modify_vpc_attribute(scope, id, attribute, value)
        .map_err(ec2_error)?;
    Ok(super::done())
}

pub(super) fn describe_vpc_attribute(
    ec2: &Ec2,
    scope: &Ec2Scope,
    r: &QueryRequest,
) -> Result<Xml, AwsError> {
    let id = required(r, "VpcId")?;
    let name = required(r, "Attribute")?;
    let attribute = VpcAttribute::parse(name).map_err(ec2_error)?;
    let vpc = ec2.vpc(scope, id).map_err(ec2_error)?;
    let value = match attribute {
        VpcAttribute::EnableDnsSupport => vpc.enable_dns_support,
        VpcAttribute::EnableDnsHostnames => vpc.enable_dns_hostnames,
    };
    let mut x = Xml::default();
    x.leaf("vpcId", &vpc.id).element(name, |x| {
        x.leaf("value", value);
    });
    Ok(x)
}

/// DescribeAvailabilityZones: `{region}a`, `b`, `c`, all available; by `ZoneName.N`,
/// `ZoneId.N` and the filters `zone-name`, `zone-id`, `state`, `region-name`.
pub(super) fn describe_availability_zones(
    scope: &Ec2Scope,
    r: &QueryRequest,
) -> Result<Xml, AwsError> {
    let names = ids(r, "ZoneName");
    let zone_ids = ids(r, "ZoneId");
    let filters = filters(r);
    let mut zones = Vec::new();
    for zone in berth_ec2::availability_zones(&scope.region) {
        let id = berth_ec2::zone_id(&scope.region, &zone);
        if (!names.is_empty() && !names.contains(&zone))
            || (!zone_ids.is_empty() && !zone_ids.contains(&id))
        {
            continue;
        }
        let mut keep = true;
        for f in &filters {
            let value = match f.name.as_str() {
                "zone-name" => zone.clone(),
                "zone-id" => id.clone(),
                "state" => "available".to_string(),
                "region-name" => scope.region.clone(),
                "zone-type" => "availability-zone".to_string(),
                "opt-in-status" => "opt-in-not-required".to_string(),
                other => {
                    return Err(AwsError::client(
                        "InvalidParameterValue",
                        format!("The filter '{other}' is invalid"),
                    ));
                }
            };
            keep &= f.values.contains(&value);
        }
        if keep {
            zones.push((zone, id));
        }
    }
    for name in &names {
        if !zones.iter().any(|(z, _)| z == name) {
            return Err(AwsError::client(
                "InvalidParameterValue",
                format!("Invalid availability zone: [{name}]"),
            ));
        }
    }
    let mut x = Xml::default();
    x.items("availabilityZoneInfo", &zones, |x, (zone, id)| {
        x.leaf("zoneName", zone)
            .leaf("zoneState", "available")
            .leaf("regionName", &scope.region)
            .leaf("zoneId", id)
            .leaf("zoneType", "availability-zone")
            .leaf("optInStatus", "opt-in-not-required")
            .leaf("groupName", &scope.region)
            .leaf("networkBorderGroup", &scope.region)
            .items("messageSet", std::iter::empty::<()>(), |_, _| {});
    });
    Ok(x)
}

/// DescribeAccountAttributes: `supported-platforms` (VPC only, as every account made
/// since 2013) and `default-vpc` (its id, or `none`).
pub(super) fn describe_account_attributes(
    ec2: &Ec2,
    scope: &Ec2Scope,
    r: &QueryRequest,
) -> Result<Xml, AwsError> {
    let asked = ids(r, "AttributeName");
    let default_vpc = ec2
        .default_vpc_id(scope)
        .map_err(ec2_error)?
        .unwrap_or_else(|| "none".to_string());
    let all = [
        ("supported-platforms", vec!["VPC".to_string()]),
        ("default-vpc", vec![default_vpc]),
    ];
    let mut x = Xml::default();
    x.items(
        "accountAttributeSet",
        all.iter()
            .filter(|(name, _)| asked.is_empty() || asked.iter().any(|a| a == name)),
        |x, (name, values)| {
            x.leaf("attributeName", name)
                .items("attributeValueSet", values, |x, v| {
                    x.leaf("attributeValue", v);
                });
        },
    );
    Ok(x)
}
