//! Instances: TerminateInstanceInAutoScalingGroup, SetInstanceProtection,
//! DescribeAutoScalingInstances.

use super::activities::activity_xml;
use super::{asg_error, boolean, launch_template_xml, scope};
use crate::protocol::query::{QueryRequest, Xml};
use crate::protocol::{AwsContext, AwsError};

pub(super) const ACTIONS: &[&str] = &[
    "TerminateInstanceInAutoScalingGroup",
    "SetInstanceProtection",
    "DescribeAutoScalingInstances",
];

pub(super) fn dispatch(ctx: &AwsContext, r: &QueryRequest) -> Result<Option<Xml>, AwsError> {
    let asg = &ctx.app.autoscaling;
    let scope = scope(ctx);
    let ids: Vec<String> = r
        .list("InstanceIds")
        .into_iter()
        .map(str::to_string)
        .collect();
    let mut xml = Xml::default();
    match r.action.as_str() {
        "TerminateInstanceInAutoScalingGroup" => {
            let id = r.required("InstanceId")?;
            r.required("ShouldDecrementDesiredCapacity")?;
            let decrement = boolean(r, "ShouldDecrementDesiredCapacity")?.unwrap_or(false);
            let activity = asg
                .terminate_instance_in_auto_scaling_group(&scope, id, decrement)
                .map_err(asg_error)?;
            xml.element("Activity", |x| activity_xml(x, &activity));
        }
        "SetInstanceProtection" => {
            let name = r.required("AutoScalingGroupName")?;
            r.required("ProtectedFromScaleIn")?;
            let protected = boolean(r, "ProtectedFromScaleIn")?.unwrap_or(false);
            if ids.is_empty() {
                r.required("InstanceIds")?;
            }
            asg.set_instance_protection(&scope, name, &ids, protected)
                .map_err(asg_error)?;
        }
        "DescribeAutoScalingInstances" => {
            let found = asg
                .describe_auto_scaling_instances(&scope, &ids)
                .map_err(asg_error)?;
            xml.members("AutoScalingInstances", &found, |x, gi| {
                let i = &gi.instance;
                x.leaf("InstanceId", &i.instance_id)
                    .opt_leaf("InstanceType", i.instance_type.as_deref())
                    .leaf("AutoScalingGroupName", &gi.group_name)
                    .leaf("AvailabilityZone", &i.availability_zone)
                    .leaf("LifecycleState", i.lifecycle_state)
                    .leaf("HealthStatus", "HEALTHY");
                launch_template_xml(
                    x,
                    &i.launch_template.id,
                    &i.launch_template.name,
                    &i.launch_template.version,
                );
                x.leaf("ProtectedFromScaleIn", i.protected_from_scale_in);
            });
        }
        other => unreachable!("{other} is not in ACTIONS"),
    }
    Ok(Some(xml))
}
