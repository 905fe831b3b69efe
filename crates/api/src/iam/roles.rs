//! IAM roles: CreateRole, GetRole, ListRoles, UpdateRole, UpdateAssumeRolePolicy,
//! DeleteRole, TagRole, UntagRole, ListRoleTags, and service-linked roles:
//! CreateServiceLinkedRole, DeleteServiceLinkedRole, GetServiceLinkedRoleDeletionStatus.

use berth_iam::{CreateRole, Role, Tagged};

use super::users::{page, tag_keys, tags, tags_xml};
use super::{iam_error, iso8601, url_encode};
use crate::protocol::query::{QueryRequest, Xml};
use crate::protocol::{AwsContext, AwsError};

/// The actions this module serves.
pub(super) const ACTIONS: &[&str] = &[
    "CreateRole",
    "GetRole",
    "ListRoles",
    "UpdateRole",
    "UpdateAssumeRolePolicy",
    "DeleteRole",
    "TagRole",
    "UntagRole",
    "ListRoleTags",
    "CreateServiceLinkedRole",
    "DeleteServiceLinkedRole",
    "GetServiceLinkedRoleDeletionStatus",
];

pub(super) fn dispatch(ctx: &AwsContext, r: &QueryRequest) -> Result<Option<Xml>, AwsError> {
    let iam = &ctx.app.iam;
    let account = ctx.scope.account.to_string();
    let account = account.as_str();
    let mut xml = Xml::default();
    match r.action.as_str() {
        "CreateRole" => {
            let role = iam
                .create_role(
                    account,
                    CreateRole {
                        role_name: r.required("RoleName")?.to_string(),
                        assume_role_policy_document: r
                            .required("AssumeRolePolicyDocument")?
                            .to_string(),
                        path: r.get("Path").map(str::to_string),
                        description: r.get("Description").map(str::to_string),
                        max_session_duration: r.int("MaxSessionDuration")?,
                        tags: tags(r),
                    },
                )
                .map_err(iam_error)?;
            xml.element("Role", |x| role_xml(x, &role, false));
        }
        "GetRole" => {
            let role = iam
                .get_role(account, r.required("RoleName")?)
                .map_err(iam_error)?;
            xml.element("Role", |x| role_xml(x, &role, true));
        }
        "ListRoles" => {
            let roles = iam
                .list_roles(account, r.get("PathPrefix"))
                .map_err(iam_error)?;
            let page = page(r, &roles, |role| role.role_name.as_str())?;
            xml.members("Roles", page.items, |x, role| role_xml(x, role, false));
            page.write_truncation(&mut xml);
        }
        "UpdateRole" => {
            iam.update_role(
                account,
                r.required("RoleName")?,
                r.get("Description"),
                r.int("MaxSessionDuration")?,
            )
            .map_err(iam_error)?;
        }
        "UpdateAssumeRolePolicy" => {
            iam.update_assume_role_policy(
                account,
                r.required("RoleName")?,
                r.required("PolicyDocument")?,
            )
            .map_err(iam_error)?;
            return Ok(None);
        }
        "DeleteRole" => {
            iam.delete_role(account, r.required("RoleName")?)
                .map_err(iam_error)?;
            return Ok(None);
        }
        "TagRole" => {
            iam.tag(account, Tagged::Role(r.required("RoleName")?), &tags(r))
                .map_err(iam_error)?;
            return Ok(None);
        }
        "UntagRole" => {
            iam.untag(account, Tagged::Role(r.required("RoleName")?), &tag_keys(r))
                .map_err(iam_error)?;
            return Ok(None);
        }
        "ListRoleTags" => {
            let tags = iam
                .list_tags(account, Tagged::Role(r.required("RoleName")?))
                .map_err(iam_error)?;
            tags_xml(r, &mut xml, &tags)?;
        }
        "CreateServiceLinkedRole" => {
            let role = iam
                .create_service_linked_role(
                    account,
                    r.required("AWSServiceName")?,
                    r.get("Description"),
                    r.get("CustomSuffix"),
                )
                .map_err(iam_error)?;
            xml.element("Role", |x| role_xml(x, &role, false));
        }
        "DeleteServiceLinkedRole" => {
            let task = iam
                .delete_service_linked_role(account, r.required("RoleName")?)
                .map_err(iam_error)?;
            xml.leaf("DeletionTaskId", task);
        }
        "GetServiceLinkedRoleDeletionStatus" => {
            let task = iam
                .service_linked_role_deletion_status(account, r.required("DeletionTaskId")?)
                .map_err(iam_error)?;
            xml.leaf("Status", &task.status);
        }
        other => unreachable!("{other} is not in ACTIONS"),
    }
    Ok(Some(xml))
}

/// A role as IAM shows it; GetRole adds `RoleLastUsed`.
pub(super) fn role_xml(x: &mut Xml, role: &Role, last_used: bool) {
    x.leaf("Path", &role.path)
        .leaf("RoleName", &role.role_name)
        .leaf("RoleId", &role.role_id)
        .leaf("Arn", &role.arn)
        .leaf("CreateDate", iso8601(role.create_date))
        .leaf(
            "AssumeRolePolicyDocument",
            url_encode(&role.assume_role_policy_document),
        )
        .opt_leaf("Description", role.description.as_deref())
        .leaf("MaxSessionDuration", role.max_session_duration);
    if !role.tags.is_empty() {
        x.members("Tags", &role.tags, |x, (k, v)| {
            x.leaf("Key", k).leaf("Value", v);
        });
    }
    if last_used {
        x.element("RoleLastUsed", |x| {
            if let Some((at, region)) = &role.last_used {
                x.leaf("LastUsedDate", iso8601(*at)).leaf("Region", region);
            }
        });
    }
}
