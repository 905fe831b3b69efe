//! Internet gateways and route tables: Create/Describe/Delete, Attach/Detach, routes and
//! associations.

use berth_ec2::{Ec2, Ec2Scope, InternetGateway, RouteTable};

use super::{ec2_error, filters, ids, required, tag_set, tag_specifications};
use crate::protocol::AwsError;
use crate::protocol::query::{QueryRequest, Xml};

fn gateway_xml(x: &mut Xml, g: &InternetGateway) {
    x.leaf("internetGatewayId", &g.id)
        .leaf("ownerId", &g.owner_id)
        .items("attachmentSet", &g.attachments, |x, a| {
            x.leaf("vpcId", &a.vpc_id).leaf("state", "available");
        });
    tag_set(x, &g.tags);
}

fn table_xml(x: &mut Xml, t: &RouteTable) {
    x.leaf("routeTableId", &t.id)
        .leaf("vpcId", &t.vpc_id)
        .leaf("ownerId", &t.owner_id)
        .items("routeSet", &t.routes, |x, r| {
            x.leaf("destinationCidrBlock", &r.destination_cidr_block)
                .leaf("gatewayId", &r.gateway_id)
                .leaf("state", "active")
                .leaf("origin", &r.origin);
        })
        .items("associationSet", &t.associations, |x, a| {
            x.leaf("routeTableAssociationId", &a.id)
                .leaf("routeTableId", &t.id)
                .opt_leaf("subnetId", a.subnet_id.as_ref())
                .leaf("main", a.main)
                .element("associationState", |x| {
                    x.leaf("state", "associated");
                });
        })
        .items("propagatingVgwSet", std::iter::empty::<()>(), |_, _| {});
    tag_set(x, &t.tags);
}

pub(super) fn create_internet_gateway(
    ec2: &Ec2,
    scope: &Ec2Scope,
    r: &QueryRequest,
) -> Result<Xml, AwsError> {
    let tags = tag_specifications(r, "internet-gateway")?;
    let g = ec2
        .create_internet_gateway(scope, tags)
        .map_err(ec2_error)?;
    let mut x = Xml::default();
    x.element("internetGateway", |x| gateway_xml(x, &g));
    Ok(x)
}

pub(super) fn describe_internet_gateways(
    ec2: &Ec2,
    scope: &Ec2Scope,
    r: &QueryRequest,
) -> Result<Xml, AwsError> {
    let all = ec2
        .describe_internet_gateways(scope, &ids(r, "InternetGatewayId"), &filters(r))
        .map_err(ec2_error)?;
    let mut x = Xml::default();
    x.items("internetGatewaySet", &all, gateway_xml);
    Ok(x)
}

pub(super) fn delete_internet_gateway(
    ec2: &Ec2,
    scope: &Ec2Scope,
    r: &QueryRequest,
) -> Result<Xml, AwsError> {
    ec2.delete_internet_gateway(scope, required(r, "InternetGatewayId")?)
        .map_err(ec2_error)?;
    Ok(super::done())
}

pub(super) fn attach_internet_gateway(
    ec2: &Ec2,
    scope: &Ec2Scope,
    r: &QueryRequest,
) -> Result<Xml, AwsError> {
    ec2.attach_internet_gateway(
        scope,
        required(r, "InternetGatewayId")?,
        required(r, "VpcId")?,
    )
    .map_err(ec2_error)?;
    Ok(super::done())
}

pub(super) fn detach_internet_gateway(
    ec2: &Ec2,
    scope: &Ec2Scope,
    r: &QueryRequest,
) -> Result<Xml, AwsError> {
    ec2.detach_internet_gateway(
        scope,
        required(r, "InternetGatewayId")?,
        required(r, "VpcId")?,
    )
    .map_err(ec2_error)?;
    Ok(super::done())
}

pub(super) fn create_route_table(
    ec2: &Ec2,
    scope: &Ec2Scope,
    r: &QueryRequest,
) -> Result<Xml, AwsError> {
    let tags = tag_specifications(r, "route-table")?;
    let t = ec2
        .create_route_table(scope, required(r, "VpcId")?, tags)
        .map_err(ec2_error)?;
    let mut x = Xml::default();
    x.element("routeTable", |x| table_xml(x, &t));
    Ok(x)
}

pub(super) fn describe_route_tables(
    ec2: &Ec2,
    scope: &Ec2Scope,
    r: &QueryRequest,
) -> Result<Xml, AwsError> {
    let all = ec2
        .describe_route_tables(scope, &ids(r, "RouteTableId"), &filters(r))
        .map_err(ec2_error)?;
    let mut x = Xml::default();
    x.items("routeTableSet", &all, table_xml);
    Ok(x)
}

pub(super) fn delete_route_table(
    ec2: &Ec2,
    scope: &Ec2Scope,
    r: &QueryRequest,
) -> Result<Xml, AwsError> {
    ec2.delete_route_table(scope, required(r, "RouteTableId")?)
        .map_err(ec2_error)?;
    Ok(super::done())
}

/// CreateRoute to an internet gateway (`GatewayId`); other targets (NAT gateways,
/// instances, peering) are not modelled.
pub(super) fn create_route(ec2: &Ec2, scope: &Ec2Scope, r: &QueryRequest) -> Result<Xml, AwsError> {
    let table = required(r, "RouteTableId")?;
    let destination = required(r, "DestinationCidrBlock")?;
    let Some(gateway) = r.get("GatewayId") else {
        return Err(AwsError::client(
            "InvalidParameterValue",
            "Berth routes only to internet gateways: give GatewayId.",
        ));
    };
    ec2.create_route(scope, table, destination, gateway)
        .map_err(ec2_error)?;
    Ok(super::done())
}

pub(super) fn delete_route(ec2: &Ec2, scope: &Ec2Scope, r: &QueryRequest) -> Result<Xml, AwsError> {
    ec2.delete_route(
        scope,
        required(r, "RouteTableId")?,
        required(r, "DestinationCidrBlock")?,
    )
    .map_err(ec2_error)?;
    Ok(super::done())
}

pub(super) fn associate_route_table(
    ec2: &Ec2,
    scope: &Ec2Scope,
    r: &QueryRequest,
) -> Result<Xml, AwsError> {
    let id = ec2
        .associate_route_table(
            scope,
            required(r, "RouteTableId")?,
            required(r, "SubnetId")?,
        )
        .map_err(ec2_error)?;
    let mut x = Xml::default();
    x.leaf("associationId", id)
        .element("associationState", |x| {
            x.leaf("state", "associated");
        });
    Ok(x)
}

pub(super) fn disassociate_route_table(
    ec2: &Ec2,
    scope: &Ec2Scope,
    r: &QueryRequest,
) -> Result<Xml, AwsError> {
    ec2.disassociate_route_table(scope, required(r, "AssociationId")?)
        .map_err(ec2_error)?;
    Ok(super::done())
}
