//! DescribeNetworkInterfaces: every live awsvpc task's interface (its ECS attachment), with
//! the subnet, VPC and zone EC2 knows the subnet by, and the task's security groups (the
//! VPC's default group when RunTask named none, as EC2 gives an interface).

use berth_ec2::Ec2Scope;

use super::{ec2_error, filters, ids, tag_set};
use crate::protocol::query::{QueryRequest, Xml};
use crate::protocol::{AwsContext, AwsError};

/// A task's network interface as EC2 shows it.
pub(super) struct TaskInterface {
    pub id: String,
    pub subnet_id: String,
    pub vpc_id: String,
    pub availability_zone: String,
    pub private_ip: String,
    pub private_dns_name: String,
    pub mac_address: String,
    /// (id, name)
    pub groups: Vec<(String, String)>,
    pub description: String,
    pub attachment_id: String,
}

/// The interfaces of the scope's live awsvpc tasks.
pub(super) fn task_interfaces(
    ctx: &AwsContext,
    scope: &Ec2Scope,
) -> Result<Vec<TaskInterface>, AwsError> {
    let ec2 = &ctx.app.ec2;
    let tasks = ctx
        .app
        .ecs
        .tasks_with_interfaces(&ctx.scope)
        .map_err(|e| AwsError::server(e.to_string()))?;
    let default_vpc = ec2.default_vpc_id(scope).map_err(ec2_error)?;
    let mut out = Vec::with_capacity(tasks.len());
    for task in tasks {
        let Some(eni) = task.eni() else { continue };
        let detail = |name: &str| eni.detail(name).unwrap_or_default().to_string();
        let named_subnet = detail("subnetId");
        // A subnet EC2 does not know (ECS takes any well-formed id) is shown as named, in
        // the default VPC.
        let subnet = ec2.subnet(scope, &named_subnet).ok();
        let vpc_id = subnet
            .as_ref()
            .map(|s| s.vpc_id.clone())
            .or_else(|| default_vpc.clone())
            .unwrap_or_default();
        let mut groups = Vec::new();
        for g in &task.security_groups {
            match ec2.security_group(scope, g) {
                Ok(group) => groups.push((group.id, group.name)),
                Err(_) => groups.push((g.clone(), g.clone())),
            }
        }
        if groups.is_empty() {
            let default = ec2
                .describe_security_groups(
                    scope,
                    &[],
                    &[],
                    &[
                        berth_ec2::Filter {
                            name: "vpc-id".into(),
                            values: vec![vpc_id.clone()],
                        },
                        berth_ec2::Filter {
                            name: "group-name".into(),
                            values: vec!["default".into()],
                        },
                    ],
                )
                .map_err(ec2_error)?;
            groups.extend(default.into_iter().map(|g| (g.id, g.name)));
        }
        out.push(TaskInterface {
            id: detail("networkInterfaceId"),
            subnet_id: subnet
                .as_ref()
                .map_or(named_subnet.clone(), |s| s.id.clone()),
            availability_zone: subnet
                .as_ref()
                .map(|s| s.availability_zone.clone())
                .or_else(|| task.availability_zone.clone())
                .unwrap_or_default(),
            vpc_id,
            private_ip: detail("privateIPv4Address"),
            private_dns_name: detail("privateDnsName"),
            mac_address: detail("macAddress"),
            groups,
            description: eni.arn(&ctx.scope),
            attachment_id: format!(
                "eni-attach-{}",
                eni.id.replace('-', "").chars().take(17).collect::<String>()
            ),
        });
    }
    Ok(out)
}

fn interface_xml(x: &mut Xml, scope: &Ec2Scope, i: &TaskInterface) {
    x.leaf("networkInterfaceId", &i.id)
        .leaf("subnetId", &i.subnet_id)
        .leaf("vpcId", &i.vpc_id)
        .leaf("availabilityZone", &i.availability_zone)
        .leaf("description", &i.description)
        .leaf("ownerId", &scope.account)
        .leaf("requesterManaged", true)
        .leaf("status", "in-use")
        .leaf("macAddress", &i.mac_address)
        .leaf("privateIpAddress", &i.private_ip)
        .leaf("privateDnsName", &i.private_dns_name)
        .leaf("sourceDestCheck", true)
        .items("groupSet", &i.groups, |x, (id, name)| {
            x.leaf("groupId", id).leaf("groupName", name);
        })
        .element("attachment", |x| {
            x.leaf("attachmentId", &i.attachment_id)
                .leaf("deviceIndex", 1)
                .leaf("networkCardIndex", 0)
                .leaf("status", "attached")
                .leaf("deleteOnTermination", false)
                .leaf("instanceOwnerId", "amazon-aws");
        })
        .leaf("interfaceType", "interface")
        .items("privateIpAddressesSet", [i], |x, i| {
            x.leaf("privateIpAddress", &i.private_ip)
                .leaf("privateDnsName", &i.private_dns_name)
                .leaf("primary", true);
        })
        .items("ipv6AddressesSet", std::iter::empty::<()>(), |_, _| {});
    tag_set(x, &[]);
}

/// The values filter `name` sees on an interface (`None`: not a filter this call knows).
fn values(i: &TaskInterface, name: &str) -> Option<Vec<String>> {
    Some(match name {
        "network-interface-id" => vec![i.id.clone()],
        "subnet-id" => vec![i.subnet_id.clone()],
        "vpc-id" => vec![i.vpc_id.clone()],
        "addresses.private-ip-address" | "private-ip-address" => vec![i.private_ip.clone()],
        "private-dns-name" => vec![i.private_dns_name.clone()],
        "mac-address" => vec![i.mac_address.clone()],
        "group-id" => i.groups.iter().map(|(id, _)| id.clone()).collect(),
        "group-name" => i.groups.iter().map(|(_, n)| n.clone()).collect(),
        "availability-zone" => vec![i.availability_zone.clone()],
        "description" => vec![i.description.clone()],
        "status" => vec!["in-use".into()],
        "interface-type" => vec!["interface".into()],
        "requester-managed" => vec!["true".into()],
        "owner-id" => vec![],
        _ => return None,
    })
}

pub(super) fn describe_network_interfaces(
    ctx: &AwsContext,
    scope: &Ec2Scope,
    r: &QueryRequest,
) -> Result<Xml, AwsError> {
    let wanted = ids(r, "NetworkInterfaceId");
    let filters = filters(r);
    let all = task_interfaces(ctx, scope)?;
    for id in &wanted {
        if !all.iter().any(|i| i.id == *id) {
            return Err(AwsError::client(
                "InvalidNetworkInterfaceID.NotFound",
                format!("The networkInterface ID '{id}' does not exist"),
            ));
        }
    }
    let mut shown = Vec::new();
    'each: for i in &all {
        if !wanted.is_empty() && !wanted.contains(&i.id) {
            continue;
        }
        for f in &filters {
            let have = values(i, &f.name).ok_or_else(|| {
                AwsError::client(
                    "InvalidParameterValue",
                    format!("The filter '{}' is invalid", f.name),
                )
            })?;
            // `subnet-default` and `sg-default` filter as the ids they name.
            let asked: Vec<String> = f
                .values
                .iter()
                .map(|v| ctx.app.ec2.resolve_alias(scope, v).unwrap_or(v.clone()))
                .collect();
            if !asked.iter().any(|v| have.contains(v)) {
                continue 'each;
            }
        }
        shown.push(i);
    }
    let mut x = Xml::default();
    x.items("networkInterfaceSet", shown, |x, i| {
        interface_xml(x, scope, i)
    });
    Ok(x)
}
