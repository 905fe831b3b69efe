//! The account-wide views: ListEntitiesForPolicy and GetAccountAuthorizationDetails. Both
//! page across the kinds they list together (users, then groups, then roles, then
//! policies), as IAM does, with one `Marker` and `MaxItems`.

use std::collections::BTreeMap;

use berth_iam::{AuthorizationDetails, DetailFilter, Group, ManagedPolicy, RoleDetail, User};

use super::instance_profiles::profile_xml;
use super::users::page;
use super::{iam_error, iso8601, url_encode};
use crate::protocol::query::{QueryRequest, Xml};
use crate::protocol::{AwsContext, AwsError};

/// The actions this module serves.
pub(super) const ACTIONS: &[&str] = &["ListEntitiesForPolicy", "GetAccountAuthorizationDetails"];

const ENTITY_TYPES: &str = "[User, Role, Group, LocalManagedPolicy, AWSManagedPolicy]";

fn entity_filter(names: &[&str], member: &str) -> Result<DetailFilter, AwsError> {
    DetailFilter::from_names(names).ok_or_else(|| {
        let bad = names
            .iter()
            .find(|n| DetailFilter::from_names(&[n]).is_none())
            .copied()
            .unwrap_or_default();
        AwsError::client(
            "ValidationError",
            format!(
                "1 validation error detected: Value '{bad}' at '{member}' failed to satisfy constraint: Member must satisfy enum value set: {ENTITY_TYPES}"
            ),
        )
    })
}

/// One listed entity of either view, in paging order.
enum Entry<'a> {
    /// ListEntitiesForPolicy's: kind, name, unique id.
    Named(&'static str, &'a str, &'a str),
    User(&'a User),
    Group(&'a Group),
    Role(&'a RoleDetail),
    Policy(&'a ManagedPolicy),
}

impl Entry<'_> {
    /// The marker naming this entry: its kind and name.
    fn key(&self) -> String {
        match self {
            Entry::Named(kind, name, _) => format!("{kind}/{name}"),
            Entry::User(u) => format!("user/{}", u.user_name),
            Entry::Group(g) => format!("group/{}", g.group_name),
            Entry::Role((r, _)) => format!("role/{}", r.role_name),
            Entry::Policy(p) => format!("policy/{}", p.arn),
        }
    }
}

pub(super) fn dispatch(ctx: &AwsContext, r: &QueryRequest) -> Result<Option<Xml>, AwsError> {
    let iam = &ctx.app.iam;
    let account = ctx.scope.account.to_string();
    let account = account.as_str();
    let mut xml = Xml::default();
    match r.action.as_str() {
        "ListEntitiesForPolicy" => {
            let filter = match r.get("EntityFilter") {
                Some(f) => entity_filter(&[f], "entityFilter")?,
                None => DetailFilter::ALL,
            };
            let boundaries_only = match r.get("PolicyUsageFilter") {
                None | Some("PermissionsPolicy") => false,
                Some("PermissionsBoundary") => true,
                Some(other) => {
                    return Err(AwsError::client(
                        "ValidationError",
                        format!(
                            "1 validation error detected: Value '{other}' at 'policyUsageFilter' failed to satisfy constraint: Member must satisfy enum value set: [PermissionsPolicy, PermissionsBoundary]"
                        ),
                    ));
                }
            };
            let found = iam
                .list_entities_for_policy(
                    account,
                    r.required("PolicyArn")?,
                    filter,
                    r.get("PathPrefix"),
                    boundaries_only,
                )
                .map_err(iam_error)?;
            let entries: Vec<(String, Entry)> = [
                ("group", &found.groups),
                ("user", &found.users),
                ("role", &found.roles),
            ]
            .into_iter()
            .flat_map(|(kind, list)| {
                list.iter()
                    .map(move |(name, id)| Entry::Named(kind, name, id))
            })
            .map(|e| (e.key(), e))
            .collect();
            let page = page(r, &entries, |(key, _)| key.as_str())?;
            let of = |kind: &'static str| {
                page.items.iter().filter_map(move |(_, e)| match e {
                    Entry::Named(k, name, id) if *k == kind => Some((*name, *id)),
                    _ => None,
                })
            };
            xml.members("PolicyGroups", of("group"), |x, (n, id)| {
                x.leaf("GroupName", n).leaf("GroupId", id);
            });
            xml.members("PolicyUsers", of("user"), |x, (n, id)| {
                x.leaf("UserName", n).leaf("UserId", id);
            });
            xml.members("PolicyRoles", of("role"), |x, (n, id)| {
                x.leaf("RoleName", n).leaf("RoleId", id);
            });
            page.write_truncation(&mut xml);
        }
        "GetAccountAuthorizationDetails" => {
            let filter = entity_filter(&r.list("Filter"), "filter")?;
            let details = iam
                .account_authorization_details(account, filter)
                .map_err(iam_error)?;
            write_details(r, &mut xml, &details)?;
        }
        other => unreachable!("{other} is not in ACTIONS"),
    }
    Ok(Some(xml))
}

fn write_details(
    r: &QueryRequest,
    xml: &mut Xml,
    d: &AuthorizationDetails,
) -> Result<(), AwsError> {
    let entries: Vec<(String, Entry)> = d
        .users
        .iter()
        .map(Entry::User)
        .chain(d.groups.iter().map(Entry::Group))
        .chain(d.roles.iter().map(Entry::Role))
        .chain(d.policies.iter().map(Entry::Policy))
        .map(|e| (e.key(), e))
        .collect();
    let page = page(r, &entries, |(key, _)| key.as_str())?;
    let items = || page.items.iter().map(|(_, e)| e);
    xml.members(
        "UserDetailList",
        items().filter_map(|e| match e {
            Entry::User(u) => Some(*u),
            _ => None,
        }),
        |x, u| {
            x.leaf("Path", &u.path)
                .leaf("UserName", &u.user_name)
                .leaf("UserId", &u.user_id)
                .leaf("Arn", &u.arn)
                .leaf("CreateDate", iso8601(u.create_date));
            inline_xml(x, "UserPolicyList", &u.inline_policies);
            x.members("GroupList", &u.groups, |x, g| {
                x.text(g);
            });
            attached_xml(x, &u.attached_policies);
            tags_xml(x, &u.tags);
        },
    );
    xml.members(
        "GroupDetailList",
        items().filter_map(|e| match e {
            Entry::Group(g) => Some(*g),
            _ => None,
        }),
        |x, g| {
            x.leaf("Path", &g.path)
                .leaf("GroupName", &g.group_name)
                .leaf("GroupId", &g.group_id)
                .leaf("Arn", &g.arn)
                .leaf("CreateDate", iso8601(g.create_date));
            inline_xml(x, "GroupPolicyList", &g.inline_policies);
            attached_xml(x, &g.attached_policies);
        },
    );
    xml.members(
        "RoleDetailList",
        items().filter_map(|e| match e {
            Entry::Role(r) => Some(*r),
            _ => None,
        }),
        |x, (role, profiles)| {
            x.leaf("Path", &role.path)
                .leaf("RoleName", &role.role_name)
                .leaf("RoleId", &role.role_id)
                .leaf("Arn", &role.arn)
                .leaf("CreateDate", iso8601(role.create_date))
                .leaf(
                    "AssumeRolePolicyDocument",
                    url_encode(&role.assume_role_policy_document),
                )
                .members("InstanceProfileList", profiles, profile_xml);
            inline_xml(x, "RolePolicyList", &role.inline_policies);
            attached_xml(x, &role.attached_policies);
            tags_xml(x, &role.tags);
            x.element("RoleLastUsed", |x| {
                if let Some((at, region)) = &role.last_used {
                    x.leaf("LastUsedDate", iso8601(*at)).leaf("Region", region);
                }
            });
        },
    );
    xml.members(
        "Policies",
        items().filter_map(|e| match e {
            Entry::Policy(p) => Some(*p),
            _ => None,
        }),
        |x, p| {
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
                .leaf("UpdateDate", iso8601(p.update_date))
                .members("PolicyVersionList", p.versions.iter().rev(), |x, v| {
                    x.leaf("Document", url_encode(&v.document))
                        .leaf("VersionId", &v.version_id)
                        .leaf("IsDefaultVersion", v.version_id == p.default_version_id)
                        .leaf("CreateDate", iso8601(v.create_date));
                });
        },
    );
    page.write_truncation(xml);
    Ok(())
}

fn inline_xml(x: &mut Xml, tag: &str, inline: &BTreeMap<String, String>) {
    x.members(tag, inline, |x, (name, document)| {
        x.leaf("PolicyName", name)
            .leaf("PolicyDocument", url_encode(document));
    });
}

fn attached_xml(x: &mut Xml, arns: &[String]) {
    x.members("AttachedManagedPolicies", arns, |x, arn| {
        x.leaf("PolicyName", arn.rsplit('/').next().unwrap_or(arn))
            .leaf("PolicyArn", arn);
    });
}

fn tags_xml(x: &mut Xml, tags: &[(String, String)]) {
    if !tags.is_empty() {
        x.members("Tags", tags, |x, (k, v)| {
            x.leaf("Key", k).leaf("Value", v);
        });
    }
}
