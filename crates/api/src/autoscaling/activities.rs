//! Scaling activities: DescribeScalingActivities.

use berth_autoscaling::Activity;

use super::{asg_error, scope};
use crate::elbv2::timestamp;
use crate::protocol::query::{QueryRequest, Xml};
use crate::protocol::{AwsContext, AwsError};

pub(super) const ACTIONS: &[&str] = &["DescribeScalingActivities"];

pub(super) fn dispatch(ctx: &AwsContext, r: &QueryRequest) -> Result<Option<Xml>, AwsError> {
    let ids: Vec<String> = r
        .list("ActivityIds")
        .into_iter()
        .map(str::to_string)
        .collect();
    let page = ctx
        .app
        .autoscaling
        .describe_scaling_activities(
            &scope(ctx),
            r.get("AutoScalingGroupName"),
            &ids,
            r.int("MaxRecords")?,
            r.get("NextToken"),
        )
        .map_err(asg_error)?;
    let mut xml = Xml::default();
    xml.members("Activities", &page.activities, activity_xml);
    xml.opt_leaf("NextToken", page.next_token.as_deref());
    Ok(Some(xml))
}

/// An activity as Auto Scaling shows it.
pub(super) fn activity_xml(x: &mut Xml, a: &Activity) {
    x.leaf("ActivityId", &a.activity_id)
        .leaf("AutoScalingGroupName", &a.group_name)
        .leaf("AutoScalingGroupARN", &a.group_arn)
        .leaf("Description", &a.description)
        .leaf("Cause", &a.cause)
        .leaf("StartTime", timestamp(a.start_time))
        .opt_leaf("EndTime", a.end_time.map(timestamp))
        .leaf("StatusCode", a.status_code.as_str())
        .opt_leaf("StatusMessage", a.status_message.as_deref())
        .leaf("Progress", a.progress)
        .leaf("Details", &a.details);
}
