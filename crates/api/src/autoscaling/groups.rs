//! Groups: CreateAutoScalingGroup, UpdateAutoScalingGroup, DescribeAutoScalingGroups,
//! DeleteAutoScalingGroup, SetDesiredCapacity.

use berth_autoscaling::{
    AsgScope, AutoScalingGroup, CreateAutoScalingGroup, GroupTag, UpdateAutoScalingGroup,
};

use super::{asg_error, boolean, launch_template, launch_template_xml, scope};
use crate::elbv2::timestamp;
use crate::protocol::query::{QueryRequest, Xml};
use crate::protocol::{AwsContext, AwsError};

pub(super) const ACTIONS: &[&str] = &[
    "CreateAutoScalingGroup",
    "UpdateAutoScalingGroup",
    "DescribeAutoScalingGroups",
    "DeleteAutoScalingGroup",
    "SetDesiredCapacity",
];

fn required_int(r: &QueryRequest, name: &str) -> Result<i64, AwsError> {
    r.required(name)?;
    Ok(r.int(name)?.unwrap_or_default())
}

fn strings(r: &QueryRequest, name: &str) -> Vec<String> {
    r.list(name).into_iter().map(str::to_string).collect()
}

fn tags(r: &QueryRequest) -> Result<Vec<GroupTag>, AwsError> {
    r.structs("Tags")
        .into_iter()
        .map(|t| {
            Ok(GroupTag {
                key: t.get("Key").copied().unwrap_or_default().to_string(),
                value: t.get("Value").copied().unwrap_or_default().to_string(),
                propagate_at_launch: t.get("PropagateAtLaunch").copied() == Some("true"),
            })
        })
        .collect()
}

pub(super) fn dispatch(ctx: &AwsContext, r: &QueryRequest) -> Result<Option<Xml>, AwsError> {
    let asg = &ctx.app.autoscaling;
    let scope = scope(ctx);
    match r.action.as_str() {
        "CreateAutoScalingGroup" => {
            asg.create_auto_scaling_group(
                &scope,
                CreateAutoScalingGroup {
                    name: r.required("AutoScalingGroupName")?.to_string(),
                    launch_template: launch_template(r)?,
                    min_size: required_int(r, "MinSize")?,
                    max_size: required_int(r, "MaxSize")?,
                    desired_capacity: r.int("DesiredCapacity")?,
                    default_cooldown: r.int("DefaultCooldown")?,
                    availability_zones: strings(r, "AvailabilityZones"),
                    vpc_zone_identifier: r.get("VPCZoneIdentifier").map(str::to_string),
                    health_check_type: r.get("HealthCheckType").map(str::to_string),
                    health_check_grace_period: r.int("HealthCheckGracePeriod")?,
                    tags: tags(r)?,
                    termination_policies: strings(r, "TerminationPolicies"),
                    new_instances_protected_from_scale_in: boolean(
                        r,
                        "NewInstancesProtectedFromScaleIn",
                    )?
                    .unwrap_or(false),
                },
            )
            .map_err(asg_error)?;
            ctx.app
                .ensure_service_linked_role(&scope.account, "autoscaling.amazonaws.com");
            Ok(None)
        }
        "UpdateAutoScalingGroup" => {
            let zones = strings(r, "AvailabilityZones");
            let policies = strings(r, "TerminationPolicies");
            asg.update_auto_scaling_group(
                &scope,
                r.required("AutoScalingGroupName")?,
                UpdateAutoScalingGroup {
                    launch_template: launch_template(r)?,
                    min_size: r.int("MinSize")?,
                    max_size: r.int("MaxSize")?,
                    desired_capacity: r.int("DesiredCapacity")?,
                    default_cooldown: r.int("DefaultCooldown")?,
                    availability_zones: (!zones.is_empty()).then_some(zones),
                    vpc_zone_identifier: r.get("VPCZoneIdentifier").map(str::to_string),
                    health_check_type: r.get("HealthCheckType").map(str::to_string),
                    health_check_grace_period: r.int("HealthCheckGracePeriod")?,
                    termination_policies: (!policies.is_empty()).then_some(policies),
                    new_instances_protected_from_scale_in: boolean(
                        r,
                        "NewInstancesProtectedFromScaleIn",
                    )?,
                },
            )
            .map_err(asg_error)?;
            Ok(None)
        }
        "DescribeAutoScalingGroups" => {
            let page = asg
                .describe_auto_scaling_groups(
                    &scope,
                    &strings(r, "AutoScalingGroupNames"),
                    r.int("MaxRecords")?,
                    r.get("NextToken"),
                )
                .map_err(asg_error)?;
            let mut xml = Xml::default();
            xml.members("AutoScalingGroups", &page.groups, |x, g| {
                group_xml(x, &scope, g)
            });
            xml.opt_leaf("NextToken", page.next_token.as_deref());
            Ok(Some(xml))
        }
        "DeleteAutoScalingGroup" => {
            asg.delete_auto_scaling_group(
                &scope,
                r.required("AutoScalingGroupName")?,
                boolean(r, "ForceDelete")?.unwrap_or(false),
            )
            .map_err(asg_error)?;
            Ok(None)
        }
        "SetDesiredCapacity" => {
            asg.set_desired_capacity(
                &scope,
                r.required("AutoScalingGroupName")?,
                required_int(r, "DesiredCapacity")?,
            )
            .map_err(asg_error)?;
            Ok(None)
        }
        other => unreachable!("{other} is not in ACTIONS"),
    }
}

/// A group as DescribeAutoScalingGroups shows it.
fn group_xml(x: &mut Xml, scope: &AsgScope, g: &AutoScalingGroup) {
    let lt = &g.launch_template;
    let arn = g.arn(scope);
    x.leaf("AutoScalingGroupName", &g.name)
        .leaf("AutoScalingGroupARN", &arn);
    launch_template_xml(
        x,
        lt.id.as_deref().unwrap_or_default(),
        lt.name.as_deref().unwrap_or_default(),
        lt.version.as_deref().unwrap_or("$Default"),
    );
    x.leaf("MinSize", g.min_size)
        .leaf("MaxSize", g.max_size)
        .leaf("DesiredCapacity", g.desired_capacity)
        .leaf("DefaultCooldown", g.default_cooldown)
        .members("AvailabilityZones", &g.availability_zones, |x, z| {
            x.text(z);
        })
        .members("LoadBalancerNames", std::iter::empty::<&str>(), |_, _| {})
        .members("TargetGroupARNs", std::iter::empty::<&str>(), |_, _| {})
        .leaf("HealthCheckType", &g.health_check_type)
        .leaf("HealthCheckGracePeriod", g.health_check_grace_period)
        .members("Instances", &g.instances, |x, i| {
            x.leaf("InstanceId", &i.instance_id)
                .opt_leaf("InstanceType", i.instance_type.as_deref())
                .leaf("AvailabilityZone", &i.availability_zone)
                .leaf("LifecycleState", i.lifecycle_state)
                .leaf("HealthStatus", "Healthy");
            launch_template_xml(
                x,
                &i.launch_template.id,
                &i.launch_template.name,
                &i.launch_template.version,
            );
            x.leaf("ProtectedFromScaleIn", i.protected_from_scale_in);
        })
        .leaf("CreatedTime", timestamp(g.created_time))
        .members("SuspendedProcesses", std::iter::empty::<&str>(), |_, _| {})
        .opt_leaf("VPCZoneIdentifier", g.vpc_zone_identifier())
        .members("EnabledMetrics", std::iter::empty::<&str>(), |_, _| {})
        .opt_leaf("Status", g.deleting.then_some("Delete in progress"))
        .members("Tags", &g.tags, |x, t| {
            x.leaf("ResourceId", &g.name)
                .leaf("ResourceType", "auto-scaling-group")
                .leaf("Key", &t.key)
                .leaf("Value", &t.value)
                .leaf("PropagateAtLaunch", t.propagate_at_launch);
        })
        .members("TerminationPolicies", &g.termination_policies, |x, p| {
            x.text(p);
        })
        .leaf(
            "NewInstancesProtectedFromScaleIn",
            g.new_instances_protected_from_scale_in,
        )
        .leaf(
            "ServiceLinkedRoleARN",
            format!(
                "arn:aws:iam::{}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling",
                scope.account
            ),
        )
        .leaf("CapacityRebalance", false)
        .members("TrafficSources", std::iter::empty::<&str>(), |_, _| {});
}
