//! Tags of load balancers, target groups, listeners and rules: AddTags, RemoveTags,
//! DescribeTags.

use berth_elbv2::Tagged;

use super::{elb_error, scope};
use crate::protocol::query::{QueryRequest, Xml};
use crate::protocol::{AwsContext, AwsError};

pub(super) const ACTIONS: &[&str] = &["AddTags", "RemoveTags", "DescribeTags"];

pub(super) fn dispatch(ctx: &AwsContext, r: &QueryRequest) -> Result<Option<Xml>, AwsError> {
    let elb = &ctx.app.elbv2;
    let scope = scope(ctx);
    let arns = r.list("ResourceArns");
    if arns.is_empty() {
        r.required("ResourceArns.member.1")
            .map_err(|_| {
                AwsError::client(
                    "ValidationError",
                    "1 validation error detected: Value null at 'resourceArns' failed to satisfy constraint: Member must not be null",
                )
            })?;
    }
    let resources = arns
        .iter()
        .map(|a| Tagged::parse(a))
        .collect::<Result<Vec<_>, _>>()
        .map_err(elb_error)?;
    let mut xml = Xml::default();
    match r.action.as_str() {
        "AddTags" => {
            elb.add_tags(&scope, &resources, &super::tags(r))
                .map_err(elb_error)?;
        }
        "RemoveTags" => {
            let keys: Vec<String> = r.list("TagKeys").into_iter().map(str::to_string).collect();
            elb.remove_tags(&scope, &resources, &keys)
                .map_err(elb_error)?;
        }
        "DescribeTags" => {
            let mut found = Vec::new();
            for (arn, resource) in arns.iter().zip(&resources) {
                found.push((arn, elb.tags_of(&scope, resource).map_err(elb_error)?));
            }
            xml.members("TagDescriptions", found, |x, (arn, tags)| {
                x.leaf("ResourceArn", arn).members("Tags", tags, |x, t| {
                    x.leaf("Key", &t.key).opt_leaf("Value", t.value.as_deref());
                });
            });
        }
        other => unreachable!("{other} is not in ACTIONS"),
    }
    Ok(Some(xml))
}
