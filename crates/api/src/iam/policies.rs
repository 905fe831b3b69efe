//! Managed policies, their versions, and what is attached to users: CreatePolicy,
//! GetPolicy, ListPolicies, DeletePolicy, CreatePolicyVersion, GetPolicyVersion,
//! ListPolicyVersions, DeletePolicyVersion, SetDefaultPolicyVersion, AttachUserPolicy,
//! DetachUserPolicy, ListAttachedUserPolicies, PutUserPolicy, GetUserPolicy,
//! ListUserPolicies, DeleteUserPolicy, and the same seven for groups and for roles.

use berth_iam::{CreatePolicy, Holder, ManagedPolicy, PolicyScope, PolicyVersion};

use super::users::{page, tags};
use super::{iam_error, iso8601, url_encode};
use crate::protocol::query::{QueryRequest, Xml};
use crate::protocol::{AwsContext, AwsError};

/// The actions this module serves.
pub(super) const ACTIONS: &[&str] = &[
    "CreatePolicy",
    "GetPolicy",
    "ListPolicies",
    "DeletePolicy",
    "CreatePolicyVersion",
    "GetPolicyVersion",
    "ListPolicyVersions",
    "DeletePolicyVersion",
    "SetDefaultPolicyVersion",
    "AttachUserPolicy",
    "DetachUserPolicy",
    "ListAttachedUserPolicies",
    "PutUserPolicy",
    "GetUserPolicy",
    "ListUserPolicies",
    "DeleteUserPolicy",
    "AttachRolePolicy",
    "DetachRolePolicy",
    "ListAttachedRolePolicies",
    "PutRolePolicy",
    "GetRolePolicy",
    "ListRolePolicies",
    "DeleteRolePolicy",
    "AttachGroupPolicy",
    "DetachGroupPolicy",
    "ListAttachedGroupPolicies",
    "PutGroupPolicy",
    "GetGroupPolicy",
    "ListGroupPolicies",
    "DeleteGroupPolicy",
];

/// The user, group or role an attachment action names (`UserName` / `GroupName` /
/// `RoleName` by its action).
fn holder<'a>(r: &'a QueryRequest) -> Result<(Holder<'a>, &'static str), AwsError> {
    if r.action.contains("Role") {
        Ok((Holder::Role(r.required("RoleName")?), "RoleName"))
    } else if r.action.contains("Group") {
        Ok((Holder::Group(r.required("GroupName")?), "GroupName"))
    } else {
        Ok((Holder::User(r.required("UserName")?), "UserName"))
    }
}

pub(super) fn dispatch(ctx: &AwsContext, r: &QueryRequest) -> Result<Option<Xml>, AwsError> {
    let iam = &ctx.app.iam;
    let account = ctx.scope.account.to_string();
    let account = account.as_str();
    let mut xml = Xml::default();
    match r.action.as_str() {
        "CreatePolicy" => {
            let policy = iam
                .create_policy(
                    account,
                    CreatePolicy {
                        policy_name: r.required("PolicyName")?.to_string(),
                        document: r.required("PolicyDocument")?.to_string(),
                        path: r.get("Path").map(str::to_string),
                        description: r.get("Description").map(str::to_string),
                        tags: tags(r),
                    },
                )
                .map_err(iam_error)?;
            xml.element("Policy", |x| policy_xml(x, &policy));
        }
        "GetPolicy" => {
            let policy = iam
                .get_policy(account, r.required("PolicyArn")?)
                .map_err(iam_error)?;
            xml.element("Policy", |x| policy_xml(x, &policy));
        }
        "ListPolicies" => {
            let scope = match r.get("Scope").unwrap_or("All") {
                "All" => PolicyScope::All,
                "AWS" => PolicyScope::Aws,
                "Local" => PolicyScope::Local,
                other => {
                    return Err(AwsError::client(
                        "ValidationError",
                        format!(
                            "1 validation error detected: Value '{other}' at 'scope' failed to satisfy constraint: Member must satisfy enum value set: [All, AWS, Local]"
                        ),
                    ));
                }
            };
            let only_attached = r.get("OnlyAttached") == Some("true");
            let policies = iam
                .list_policies(account, scope, only_attached, r.get("PathPrefix"))
                .map_err(iam_error)?;
            let page = page(r, &policies, |p| p.arn.as_str())?;
            xml.members("Policies", page.items, policy_xml);
            page.write_truncation(&mut xml);
        }
        "DeletePolicy" => {
            iam.delete_policy(account, r.required("PolicyArn")?)
                .map_err(iam_error)?;
            return Ok(None);
        }
        "CreatePolicyVersion" => {
            let version = iam
                .create_policy_version(
                    account,
                    r.required("PolicyArn")?,
                    r.required("PolicyDocument")?,
                    r.get("SetAsDefault") == Some("true"),
                )
                .map_err(iam_error)?;
            let policy = iam
                .get_policy(account, r.required("PolicyArn")?)
                .map_err(iam_error)?;
            let default = policy.default_version_id == version.version_id;
            xml.element("PolicyVersion", |x| {
                version_xml(x, &version, default, false)
            });
        }
        "GetPolicyVersion" => {
            let (version, default) = iam
                .get_policy_version(account, r.required("PolicyArn")?, r.required("VersionId")?)
                .map_err(iam_error)?;
            xml.element("PolicyVersion", |x| version_xml(x, &version, default, true));
        }
        "ListPolicyVersions" => {
            let policy = iam
                .get_policy(account, r.required("PolicyArn")?)
                .map_err(iam_error)?;
            let mut versions = policy.versions.clone();
            versions.reverse(); // newest first, as IAM lists them
            let page = page(r, &versions, |v| v.version_id.as_str())?;
            xml.members("Versions", page.items, |x, v| {
                version_xml(x, v, v.version_id == policy.default_version_id, false);
            });
            page.write_truncation(&mut xml);
        }
        "DeletePolicyVersion" => {
            iam.delete_policy_version(account, r.required("PolicyArn")?, r.required("VersionId")?)
                .map_err(iam_error)?;
            return Ok(None);
        }
        "SetDefaultPolicyVersion" => {
            iam.set_default_policy_version(
                account,
                r.required("PolicyArn")?,
                r.required("VersionId")?,
            )
            .map_err(iam_error)?;
            return Ok(None);
        }
        "AttachUserPolicy" | "AttachGroupPolicy" | "AttachRolePolicy" => {
            iam.attach_policy(account, holder(r)?.0, r.required("PolicyArn")?)
                .map_err(iam_error)?;
            return Ok(None);
        }
        "DetachUserPolicy" | "DetachGroupPolicy" | "DetachRolePolicy" => {
            iam.detach_policy(account, holder(r)?.0, r.required("PolicyArn")?)
                .map_err(iam_error)?;
            return Ok(None);
        }
        "ListAttachedUserPolicies" | "ListAttachedGroupPolicies" | "ListAttachedRolePolicies" => {
            let attached = iam
                .list_attached_policies(account, holder(r)?.0)
                .map_err(iam_error)?;
            let page = page(r, &attached, |(_, arn)| arn.as_str())?;
            xml.members("AttachedPolicies", page.items, |x, (name, arn)| {
                x.leaf("PolicyName", name).leaf("PolicyArn", arn);
            });
            page.write_truncation(&mut xml);
        }
        "PutUserPolicy" | "PutGroupPolicy" | "PutRolePolicy" => {
            iam.put_inline_policy(
                account,
                holder(r)?.0,
                r.required("PolicyName")?,
                r.required("PolicyDocument")?,
            )
            .map_err(iam_error)?;
            return Ok(None);
        }
        "GetUserPolicy" | "GetGroupPolicy" | "GetRolePolicy" => {
            let (who, member) = holder(r)?;
            let name = r.required("PolicyName")?;
            let document = iam
                .get_inline_policy(account, who, name)
                .map_err(iam_error)?;
            xml.leaf(member, r.required(member)?)
                .leaf("PolicyName", name)
                .leaf("PolicyDocument", url_encode(&document));
        }
        "ListUserPolicies" | "ListGroupPolicies" | "ListRolePolicies" => {
            let names = iam
                .list_inline_policies(account, holder(r)?.0)
                .map_err(iam_error)?;
            let page = page(r, &names, String::as_str)?;
            xml.members("PolicyNames", page.items, |x, n| {
                x.text(n);
            });
            page.write_truncation(&mut xml);
        }
        "DeleteUserPolicy" | "DeleteGroupPolicy" | "DeleteRolePolicy" => {
            iam.delete_inline_policy(account, holder(r)?.0, r.required("PolicyName")?)
                .map_err(iam_error)?;
            return Ok(None);
        }
        other => unreachable!("{other} is not in ACTIONS"),
    }
    Ok(Some(xml))
}

pub(super) fn policy_xml(x: &mut Xml, p: &ManagedPolicy) {
    x.leaf("PolicyName", &p.policy_name)
        .leaf("PolicyId", &p.policy_id)
        .leaf("Arn", &p.arn)
        .leaf("Path", &p.path)
        .leaf("DefaultVersionId", &p.default_version_id)
        .leaf("AttachmentCount", p.attachment_count)
        .leaf("PermissionsBoundaryUsageCount", 0)
        .leaf("IsAttachable", true)
        .opt_leaf("Description", p.description.as_deref())
        .leaf("CreateDate", iso8601(p.create_date))
        .leaf("UpdateDate", iso8601(p.update_date));
    if !p.tags.is_empty() {
        x.members("Tags", &p.tags, |x, (k, v)| {
            x.leaf("Key", k).leaf("Value", v);
        });
    }
}

fn version_xml(x: &mut Xml, v: &PolicyVersion, default: bool, with_document: bool) {
    if with_document {
        x.leaf("Document", url_encode(&v.document));
    }
    x.leaf("VersionId", &v.version_id)
        .leaf("IsDefaultVersion", default)
        .leaf("CreateDate", iso8601(v.create_date));
}
