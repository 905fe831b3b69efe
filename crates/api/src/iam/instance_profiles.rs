//! Instance profiles: CreateInstanceProfile, GetInstanceProfile, ListInstanceProfiles,
//! DeleteInstanceProfile, AddRoleToInstanceProfile, RemoveRoleFromInstanceProfile,
//! ListInstanceProfilesForRole, TagInstanceProfile, UntagInstanceProfile,
//! ListInstanceProfileTags.

use berth_iam::{InstanceProfile, Role, Tagged};

use super::roles::role_xml;
use super::users::{page, tag_keys, tags, tags_xml};
use super::{iam_error, iso8601};
use crate::protocol::query::{QueryRequest, Xml};
use crate::protocol::{AwsContext, AwsError};

/// The actions this module serves.
pub(super) const ACTIONS: &[&str] = &[
    "CreateInstanceProfile",
    "GetInstanceProfile",
    "ListInstanceProfiles",
    "DeleteInstanceProfile",
    "AddRoleToInstanceProfile",
    "RemoveRoleFromInstanceProfile",
    "ListInstanceProfilesForRole",
    "TagInstanceProfile",
    "UntagInstanceProfile",
    "ListInstanceProfileTags",
];

pub(super) fn dispatch(ctx: &AwsContext, r: &QueryRequest) -> Result<Option<Xml>, AwsError> {
    let iam = &ctx.app.iam;
    let account = ctx.scope.account.to_string();
    let account = account.as_str();
    let mut xml = Xml::default();
    let name = || r.required("InstanceProfileName");
    match r.action.as_str() {
        "CreateInstanceProfile" => {
            let profile = iam
                .create_instance_profile(account, name()?, r.get("Path"), tags(r))
                .map_err(iam_error)?;
            xml.element("InstanceProfile", |x| {
                profile_xml(x, &(profile, Vec::new()))
            });
        }
        "GetInstanceProfile" => {
            let profile = iam
                .get_instance_profile(account, name()?)
                .map_err(iam_error)?;
            xml.element("InstanceProfile", |x| profile_xml(x, &profile));
        }
        "ListInstanceProfiles" | "ListInstanceProfilesForRole" => {
            let profiles = if r.action == "ListInstanceProfiles" {
                iam.list_instance_profiles(account, r.get("PathPrefix"))
            } else {
                iam.list_instance_profiles_for_role(account, r.required("RoleName")?)
            }
            .map_err(iam_error)?;
            let page = page(r, &profiles, |(p, _)| p.instance_profile_name.as_str())?;
            xml.members("InstanceProfiles", page.items, profile_xml);
            page.write_truncation(&mut xml);
        }
        "DeleteInstanceProfile" => {
            iam.delete_instance_profile(account, name()?)
                .map_err(iam_error)?;
            return Ok(None);
        }
        "AddRoleToInstanceProfile" => {
            iam.add_role_to_instance_profile(account, name()?, r.required("RoleName")?)
                .map_err(iam_error)?;
            return Ok(None);
        }
        "RemoveRoleFromInstanceProfile" => {
            iam.remove_role_from_instance_profile(account, name()?, r.required("RoleName")?)
                .map_err(iam_error)?;
            return Ok(None);
        }
        "TagInstanceProfile" => {
            iam.tag(account, Tagged::InstanceProfile(name()?), &tags(r))
                .map_err(iam_error)?;
            return Ok(None);
        }
        "UntagInstanceProfile" => {
            iam.untag(account, Tagged::InstanceProfile(name()?), &tag_keys(r))
                .map_err(iam_error)?;
            return Ok(None);
        }
        "ListInstanceProfileTags" => {
            let tags = iam
                .list_tags(account, Tagged::InstanceProfile(name()?))
                .map_err(iam_error)?;
            tags_xml(r, &mut xml, &tags)?;
        }
        other => unreachable!("{other} is not in ACTIONS"),
    }
    Ok(Some(xml))
}

/// An instance profile as IAM shows it, with its roles whole.
pub(super) fn profile_xml(x: &mut Xml, (p, roles): &(InstanceProfile, Vec<Role>)) {
    x.leaf("Path", &p.path)
        .leaf("InstanceProfileName", &p.instance_profile_name)
        .leaf("InstanceProfileId", &p.instance_profile_id)
        .leaf("Arn", &p.arn)
        .leaf("CreateDate", iso8601(p.create_date))
        .members("Roles", roles, |x, role| role_xml(x, role, false));
    if !p.tags.is_empty() {
        x.members("Tags", &p.tags, |x, (k, v)| {
            x.leaf("Key", k).leaf("Value", v);
        });
    }
}
