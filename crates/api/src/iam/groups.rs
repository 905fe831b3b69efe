//! IAM groups: CreateGroup, GetGroup, ListGroups, UpdateGroup, DeleteGroup, AddUserToGroup,
//! RemoveUserFromGroup, ListGroupsForUser. The groups' policies are served with the users'
//! and roles' in `policies.rs`.

use berth_iam::Group;

use super::users::{page, user_xml};
use super::{iam_error, iso8601};
use crate::protocol::query::{QueryRequest, Xml};
use crate::protocol::{AwsContext, AwsError};

/// The actions this module serves.
pub(super) const ACTIONS: &[&str] = &[
    "CreateGroup",
    "GetGroup",
    "ListGroups",
    "UpdateGroup",
    "DeleteGroup",
    "AddUserToGroup",
    "RemoveUserFromGroup",
    "ListGroupsForUser",
];

pub(super) fn dispatch(ctx: &AwsContext, r: &QueryRequest) -> Result<Option<Xml>, AwsError> {
    let iam = &ctx.app.iam;
    let account = ctx.scope.account.to_string();
    let account = account.as_str();
    let mut xml = Xml::default();
    match r.action.as_str() {
        "CreateGroup" => {
            let group = iam
                .create_group(account, r.required("GroupName")?, r.get("Path"))
                .map_err(iam_error)?;
            xml.element("Group", |x| group_xml(x, &group));
        }
        "GetGroup" => {
            let (group, users) = iam
                .get_group_with_users(account, r.required("GroupName")?)
                .map_err(iam_error)?;
            xml.element("Group", |x| group_xml(x, &group));
            let page = page(r, &users, |u| u.user_name.as_str())?;
            xml.members("Users", page.items, user_xml);
            page.write_truncation(&mut xml);
        }
        "ListGroups" => {
            let groups = iam
                .list_groups(account, r.get("PathPrefix"))
                .map_err(iam_error)?;
            let page = page(r, &groups, |g| g.group_name.as_str())?;
            xml.members("Groups", page.items, group_xml);
            page.write_truncation(&mut xml);
        }
        "ListGroupsForUser" => {
            let groups = iam
                .list_groups_for_user(account, r.required("UserName")?)
                .map_err(iam_error)?;
            let page = page(r, &groups, |g| g.group_name.as_str())?;
            xml.members("Groups", page.items, group_xml);
            page.write_truncation(&mut xml);
        }
        "UpdateGroup" => {
            iam.update_group(
                account,
                r.required("GroupName")?,
                r.get("NewGroupName"),
                r.get("NewPath"),
            )
            .map_err(iam_error)?;
            return Ok(None);
        }
        "DeleteGroup" => {
            iam.delete_group(account, r.required("GroupName")?)
                .map_err(iam_error)?;
            return Ok(None);
        }
        "AddUserToGroup" => {
            iam.add_user_to_group(account, r.required("GroupName")?, r.required("UserName")?)
                .map_err(iam_error)?;
            return Ok(None);
        }
        "RemoveUserFromGroup" => {
            iam.remove_user_from_group(account, r.required("GroupName")?, r.required("UserName")?)
                .map_err(iam_error)?;
            return Ok(None);
        }
        other => unreachable!("{other} is not in ACTIONS"),
    }
    Ok(Some(xml))
}

/// A group as IAM shows it.
pub(super) fn group_xml(x: &mut Xml, g: &Group) {
    x.leaf("Path", &g.path)
        .leaf("GroupName", &g.group_name)
        .leaf("GroupId", &g.group_id)
        .leaf("Arn", &g.arn)
        .leaf("CreateDate", iso8601(g.create_date));
}
