//! EC2's networking API (and launch templates) over EC2's flavour of the Query protocol (`protocol/query.rs`): a
//! module per resource. Every call first makes sure the caller's default VPC exists (one
//! store read once it does), so `subnet-default` and `sg-default` always name something.

mod groups;
mod interfaces;
mod launch_templates;
mod routing;
mod subnets;
mod tags;
mod vpcs;

use berth_ec2::{Ec2Error, Ec2Scope, Filter, Tag, TagSpecification};

use crate::protocol::json::blocking;
use crate::protocol::query::{QueryRequest, Xml};
use crate::protocol::{AwsContext, AwsError};

/// Runs an EC2 action: the answer's members.
pub async fn dispatch(ctx: &AwsContext, request: &QueryRequest) -> Result<Option<Xml>, AwsError> {
    let (ctx, request) = (ctx.clone(), request.clone());
    blocking(move || serve(&ctx, &request)).await.map(Some)
}

fn serve(ctx: &AwsContext, request: &QueryRequest) -> Result<Xml, AwsError> {
    let scope = default_vpc_ready(ctx)?;
    let ec2 = &ctx.app.ec2;
    match request.action.as_str() {
        "CreateVpc" => vpcs::create_vpc(ec2, &scope, request),
        "DescribeVpcs" => vpcs::describe_vpcs(ec2, &scope, request),
        "DeleteVpc" => vpcs::delete_vpc(ec2, &scope, request),
        "ModifyVpcAttribute" => vpcs::modify_vpc_attribute(ec2, &scope, request),
        "DescribeVpcAttribute" => vpcs::describe_vpc_attribute(ec2, &scope, request),
        "DescribeAvailabilityZones" => vpcs::describe_availability_zones(&scope, request),
        "DescribeAccountAttributes" => vpcs::describe_account_attributes(ec2, &scope, request),
        "CreateSubnet" => subnets::create_subnet(ec2, &scope, request),
        "DescribeSubnets" => subnets::describe_subnets(ctx, &scope, request),
        "DeleteSubnet" => subnets::delete_subnet(ctx, &scope, request),
        "ModifySubnetAttribute" => subnets::modify_subnet_attribute(ec2, &scope, request),
        "CreateSecurityGroup" => groups::create_security_group(ec2, &scope, request),
        "DescribeSecurityGroups" => groups::describe_security_groups(ec2, &scope, request),
        "DeleteSecurityGroup" => groups::delete_security_group(ctx, &scope, request),
        "AuthorizeSecurityGroupIngress" => groups::authorize(ec2, &scope, request, false),
        "AuthorizeSecurityGroupEgress" => groups::authorize(ec2, &scope, request, true),
        "RevokeSecurityGroupIngress" => groups::revoke(ec2, &scope, request, false),
        "RevokeSecurityGroupEgress" => groups::revoke(ec2, &scope, request, true),
        "DescribeSecurityGroupRules" => groups::describe_security_group_rules(ec2, &scope, request),
        "CreateInternetGateway" => routing::create_internet_gateway(ec2, &scope, request),
        "DescribeInternetGateways" => routing::describe_internet_gateways(ec2, &scope, request),
        "DeleteInternetGateway" => routing::delete_internet_gateway(ec2, &scope, request),
        "AttachInternetGateway" => routing::attach_internet_gateway(ec2, &scope, request),
        "DetachInternetGateway" => routing::detach_internet_gateway(ec2, &scope, request),
        "CreateRouteTable" => routing::create_route_table(ec2, &scope, request),
        "DescribeRouteTables" => routing::describe_route_tables(ec2, &scope, request),
        "DeleteRouteTable" => routing::delete_route_table(ec2, &scope, request),
        "CreateRoute" => routing::create_route(ec2, &scope, request),
        "DeleteRoute" => routing::delete_route(ec2, &scope, request),
        "AssociateRouteTable" => routing::associate_route_table(ec2, &scope, request),
        "DisassociateRouteTable" => routing::disassociate_route_table(ec2, &scope, request),
        "CreateTags" => tags::create_tags(ec2, &scope, request),
        "DeleteTags" => tags::delete_tags(ec2, &scope, request),
        "DescribeTags" => tags::describe_tags(ec2, &scope, request),
        "CreateLaunchTemplate" => launch_templates::create_launch_template(ec2, &scope, request),
        "CreateLaunchTemplateVersion" => {
            launch_templates::create_launch_template_version(ec2, &scope, request)
        }
        "DescribeLaunchTemplates" => {
            launch_templates::describe_launch_templates(ec2, &scope, request)
        }
        "DescribeLaunchTemplateVersions" => {
            launch_templates::describe_launch_template_versions(ec2, &scope, request)
        }
        "DeleteLaunchTemplate" => launch_templates::delete_launch_template(ec2, &scope, request),
        "DescribeNetworkInterfaces" => {
            interfaces::describe_network_interfaces(ctx, &scope, request)
        }
        other => Err(AwsError::client(
            "InvalidAction",
            format!("The action {other} is not valid for this web service."),
        )),
    }
}

/// The caller's EC2 scope, its default VPC made first (as EC2 has one before any call).
pub(crate) fn default_vpc_ready(ctx: &AwsContext) -> Result<Ec2Scope, AwsError> {
    let scope = scope_of(ctx);
    let installation = ctx
        .app
        .ecs
        .installation()
        .map_err(|e| AwsError::server(e.to_string()))?;
    ctx.app
        .ec2
        .ensure_default_vpc(&scope, &installation.to_string())
        .map_err(ec2_error)?;
    Ok(scope)
}

fn scope_of(ctx: &AwsContext) -> Ec2Scope {
    Ec2Scope::new(ctx.scope.account.as_str(), ctx.scope.region.as_str())
}

/// EC2's errors as the protocol writes them.
pub(crate) fn ec2_error(e: Ec2Error) -> AwsError {
    if e.is_internal() {
        AwsError::server(e.to_string())
    } else {
        AwsError::client(e.code(), e.to_string())
    }
}

/// A parameter EC2 requires: `MissingParameter` naming it when absent.
fn required<'a>(request: &'a QueryRequest, name: &str) -> Result<&'a str, AwsError> {
    request.get(name).filter(|v| !v.is_empty()).ok_or_else(|| {
        AwsError::client(
            "MissingParameter",
            format!("The request must contain the parameter {name}"),
        )
    })
}

/// A boolean EC2 parameter: `true` or `false`, else `InvalidParameterValue`.
fn boolean(request: &QueryRequest, name: &str) -> Result<Option<bool>, AwsError> {
    match request.get(name) {
        None => Ok(None),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(v) => Err(AwsError::client(
            "InvalidParameterValue",
            format!("Invalid value '{v}' for boolean parameter {name}."),
        )),
    }
}

/// `Filter.N.Name` / `Filter.N.Value.M`.
fn filters(request: &QueryRequest) -> Vec<Filter> {
    request
        .ec2_items("Filter")
        .iter()
        .map(|f| Filter {
            name: f.get("Name").unwrap_or_default().to_string(),
            values: f
                .ec2_list("Value")
                .into_iter()
                .map(str::to_string)
                .collect(),
        })
        .collect()
}

/// A list of ids (`VpcId.N`), owned.
fn ids(request: &QueryRequest, name: &str) -> Vec<String> {
    request
        .ec2_list(name)
        .into_iter()
        .map(str::to_string)
        .collect()
}

/// The tags a Create* call's `TagSpecification.N` gives resources of `resource_type`.
fn tag_specifications(request: &QueryRequest, resource_type: &str) -> Result<Vec<Tag>, AwsError> {
    let specs: Vec<TagSpecification> = request
        .ec2_items("TagSpecification")
        .iter()
        .map(|s| TagSpecification {
            resource_type: s.get("ResourceType").unwrap_or_default().to_string(),
            tags: tag_list(s, "Tag"),
        })
        .collect();
    berth_ec2::tags_for(&specs, resource_type).map_err(ec2_error)
}

/// `Name.N.Key` / `Name.N.Value`.
fn tag_list(request: &QueryRequest, name: &str) -> Vec<Tag> {
    request
        .ec2_items(name)
        .iter()
        .map(|t| Tag {
            key: t.get("Key").unwrap_or_default().to_string(),
            value: t.get("Value").unwrap_or_default().to_string(),
        })
        .collect()
}

/// `<tagSet><item><key>…</key><value>…</value></item>…</tagSet>`.
fn tag_set(x: &mut Xml, tags: &[Tag]) {
    x.items("tagSet", tags, |x, t| {
        x.leaf("key", &t.key).leaf("value", &t.value);
    });
}

/// `<return>true</return>`, the answer of calls that only say they did it.
fn done() -> Xml {
    let mut x = Xml::default();
    x.leaf("return", "true");
    x
}
