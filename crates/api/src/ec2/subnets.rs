//! CreateSubnet, DescribeSubnets, DeleteSubnet, ModifySubnetAttribute. A subnet's
//! `availableIpAddressCount` counts the task interfaces in it.

use berth_ec2::{Ec2, Ec2Scope, Subnet};

use super::{boolean, ec2_error, filters, ids, required, tag_set, tag_specifications};
use crate::protocol::query::{QueryRequest, Xml};
use crate::protocol::{AwsContext, AwsError};

pub(super) fn subnet_xml(x: &mut Xml, scope: &Ec2Scope, subnet: &Subnet, in_use: u64) {
    x.leaf("subnetId", &subnet.id)
        .leaf("subnetArn", subnet.arn(scope))
        .leaf("state", "available")
        .leaf("vpcId", &subnet.vpc_id)
        .leaf("ownerId", &subnet.owner_id)
        .leaf("cidrBlock", &subnet.cidr_block)
        .items(
            "ipv6CidrBlockAssociationSet",
            std::iter::empty::<()>(),
            |_, _| {},
        )
        .leaf(
            "availableIpAddressCount",
            subnet.available_ip_address_count().saturating_sub(in_use),
        )
        .leaf("availabilityZone", &subnet.availability_zone)
        .leaf(
            "availabilityZoneId",
            subnet.availability_zone_id(&scope.region),
        )
        .leaf("defaultForAz", subnet.default_for_az)
        .leaf("mapPublicIpOnLaunch", subnet.map_public_ip_on_launch)
        .leaf("assignIpv6AddressOnCreation", false)
        .leaf("mapCustomerOwnedIpOnLaunch", false)
        .leaf("enableDns64", false)
        .leaf("ipv6Native", false);
    tag_set(x, &subnet.tags);
}

pub(super) fn create_subnet(
    ec2: &Ec2,
    scope: &Ec2Scope,
    r: &QueryRequest,
) -> Result<Xml, AwsError> {
    let vpc = required(r, "VpcId")?;
    let cidr = required(r, "CidrBlock")?;
    let tags = tag_specifications(r, "subnet")?;
    let subnet = ec2
        .create_subnet(scope, vpc, cidr, r.get("AvailabilityZone"), tags)
        .map_err(ec2_error)?;
    let mut x = Xml::default();
    x.element("subnet", |x| subnet_xml(x, scope, &subnet, 0));
    Ok(x)
}

pub(super) fn describe_subnets(
    ctx: &AwsContext,
    scope: &Ec2Scope,
    r: &QueryRequest,
) -> Result<Xml, AwsError> {
    let subnets = ctx
        .app
        .ec2
        .describe_subnets(scope, &ids(r, "SubnetId"), &filters(r))
        .map_err(ec2_error)?;
    let interfaces = super::interfaces::task_interfaces(ctx, scope)?;
    let mut x = Xml::default();
    x.items("subnetSet", &subnets, |x, s| {
        let used = interfaces.iter().filter(|i| i.subnet_id == s.id).count() as u64;
        subnet_xml(x, scope, s, used)
    });
    Ok(x)
}

/// DeleteSubnet: refused while a task's interface is in the subnet.
pub(super) fn delete_subnet(
    ctx: &AwsContext,
    scope: &Ec2Scope,
    r: &QueryRequest,
) -> Result<Xml, AwsError> {
    let id = required(r, "SubnetId")?;
    let subnet = ctx.app.ec2.subnet(scope, id).map_err(ec2_error)?;
    let in_use = super::interfaces::task_interfaces(ctx, scope)?
        .iter()
        .any(|i| i.subnet_id == subnet.id);
    ctx.app
        .ec2
        .delete_subnet(scope, &subnet.id, in_use)
        .map_err(ec2_error)?;
    Ok(super::done())
}

pub(super) fn modify_subnet_attribute(
    ec2: &Ec2,
    scope: &Ec2Scope,
    r: &QueryRequest,
) -> Result<Xml, AwsError> {
    let id = required(r, "SubnetId")?;
    if let Some(value) = boolean(r, "MapPublicIpOnLaunch.Value")? {
        ec2.set_map_public_ip_on_launch(scope, id, value)
            .map_err(ec2_error)?;
    } else {
        // Other attributes (IPv6, DNS64, …) are accepted and kept as EC2's defaults.
        ec2.subnet(scope, id).map_err(ec2_error)?;
    }
    Ok(super::done())
}
