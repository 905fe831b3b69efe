//! IAM users and access keys: CreateUser, GetUser, ListUsers, DeleteUser, TagUser,
//! UntagUser, ListUserTags, CreateAccessKey, ListAccessKeys, UpdateAccessKey,
//! DeleteAccessKey, GetAccessKeyLastUsed (recorded by the front door,
//! `front::record_key_use`).

use berth_iam::{AccessKey, AccessKeyStatus, CreateUser, Tagged, User};

use super::{iam_error, iso8601, user_name_or_caller};
use crate::protocol::query::{QueryRequest, Xml};
use crate::protocol::{AwsContext, AwsError};

/// Items in one page of a list, unless `MaxItems` says otherwise (IAM's default).
pub(super) const DEFAULT_MAX_ITEMS: usize = 100;

pub(super) fn dispatch(ctx: &AwsContext, r: &QueryRequest) -> Result<Option<Xml>, AwsError> {
    let iam = &ctx.app.iam;
    let account = ctx.scope.account.to_string();
    let account = account.as_str();
    let mut xml = Xml::default();
    match r.action.as_str() {
        "CreateUser" => {
            let user = iam
                .create_user(
                    account,
                    CreateUser {
                        user_name: r.required("UserName")?.to_string(),
                        path: r.get("Path").map(str::to_string),
                        tags: tags(r),
                    },
                )
                .map_err(iam_error)?;
            xml.element("User", |x| user_xml(x, &user));
        }
        "GetUser" => {
            let name = user_name_or_caller(ctx, r)?;
            let user = iam.get_user(account, &name).map_err(iam_error)?;
            xml.element("User", |x| user_xml(x, &user));
        }
        "ListUsers" => {
            let users = iam
                .list_users(account, r.get("PathPrefix"))
                .map_err(iam_error)?;
            let page = page(r, &users, |u| u.user_name.as_str())?;
            xml.members("Users", page.items, user_xml);
            page.write_truncation(&mut xml);
        }
        "DeleteUser" => {
            iam.delete_user(account, r.required("UserName")?)
                .map_err(iam_error)?;
            return Ok(None);
        }
        "TagUser" => {
            iam.tag(account, Tagged::User(r.required("UserName")?), &tags(r))
                .map_err(iam_error)?;
            return Ok(None);
        }
        "UntagUser" => {
            iam.untag(account, Tagged::User(r.required("UserName")?), &tag_keys(r))
                .map_err(iam_error)?;
            return Ok(None);
        }
        "ListUserTags" => {
            let tags = iam
                .list_tags(account, Tagged::User(r.required("UserName")?))
                .map_err(iam_error)?;
            tags_xml(r, &mut xml, &tags)?;
        }
        "CreateAccessKey" => {
            let name = user_name_or_caller(ctx, r)?;
            let key = iam.create_access_key(account, &name).map_err(iam_error)?;
            xml.element("AccessKey", |x| {
                key_metadata_xml(x, &key);
                x.leaf("SecretAccessKey", &key.secret_access_key);
            });
        }
        "ListAccessKeys" => {
            let name = user_name_or_caller(ctx, r)?;
            let keys = iam.list_access_keys(account, &name).map_err(iam_error)?;
            let page = page(r, &keys, |k| k.access_key_id.as_str())?;
            xml.members("AccessKeyMetadata", page.items, key_metadata_xml);
            page.write_truncation(&mut xml);
        }
        "UpdateAccessKey" => {
            let name = user_name_or_caller(ctx, r)?;
            let status = AccessKeyStatus::parse(r.required("Status")?).map_err(iam_error)?;
            iam.update_access_key(account, &name, r.required("AccessKeyId")?, status)
                .map_err(iam_error)?;
            return Ok(None);
        }
        "GetAccessKeyLastUsed" => {
            let id = r.required("AccessKeyId")?;
            let key = iam.get_access_key_last_used(id).map_err(iam_error)?;
            if key.account != account {
                return Err(iam_error(berth_iam::IamError::NoSuchEntity(format!(
                    "The Access Key with id {id} cannot be found."
                ))));
            }
            xml.leaf("UserName", &key.user_name);
            xml.element("AccessKeyLastUsed", |x| match &key.last_used {
                Some(used) => {
                    x.leaf("LastUsedDate", iso8601(used.date))
                        .leaf("ServiceName", &used.service)
                        .leaf("Region", &used.region);
                }
                // Never used: IAM answers N/A and no date.
                None => {
                    x.leaf("ServiceName", "N/A").leaf("Region", "N/A");
                }
            });
        }
        "DeleteAccessKey" => {
            let name = user_name_or_caller(ctx, r)?;
            iam.delete_access_key(account, &name, r.required("AccessKeyId")?)
                .map_err(iam_error)?;
            return Ok(None);
        }
        other => {
            return Err(AwsError::client(
                "InvalidAction",
                format!("Could not find operation {other} for version 2010-05-08"),
            ));
        }
    }
    Ok(Some(xml))
}

/// `Tags.member.N.Key` / `.Value`.
pub(super) fn tags(r: &QueryRequest) -> Vec<(String, String)> {
    r.structs("Tags")
        .into_iter()
        .map(|t| {
            let get = |f: &str| t.get(f).copied().unwrap_or_default().to_string();
            (get("Key"), get("Value"))
        })
        .collect()
}

/// `TagKeys.member.N`.
pub(super) fn tag_keys(r: &QueryRequest) -> Vec<&str> {
    r.list("TagKeys")
}

/// List{User,Role,InstanceProfile}Tags' answer: a page of `Tags` (by key).
pub(super) fn tags_xml(
    r: &QueryRequest,
    xml: &mut Xml,
    tags: &[(String, String)],
) -> Result<(), AwsError> {
    let page = page(r, tags, |(k, _)| k.as_str())?;
    xml.members("Tags", page.items, |x, (k, v)| {
        x.leaf("Key", k).leaf("Value", v);
    });
    page.write_truncation(xml);
    Ok(())
}

pub(super) fn user_xml(x: &mut Xml, user: &User) {
    x.leaf("Path", &user.path)
        .leaf("UserName", &user.user_name)
        .leaf("UserId", &user.user_id)
        .leaf("Arn", &user.arn)
        .leaf("CreateDate", iso8601(user.create_date));
    if !user.tags.is_empty() {
        x.members("Tags", &user.tags, |x, (k, v)| {
            x.leaf("Key", k).leaf("Value", v);
        });
    }
}

fn key_metadata_xml(x: &mut Xml, key: &AccessKey) {
    x.leaf("UserName", &key.user_name)
        .leaf("AccessKeyId", &key.access_key_id)
        .leaf("Status", key.status.as_str())
        .leaf("CreateDate", iso8601(key.create_date));
}

/// One page of a list under IAM's `Marker` / `MaxItems`: the marker is the last item's
/// name.
pub(super) struct Page<'a, T> {
    pub(super) items: &'a [T],
    next_marker: Option<String>,
}

impl<T> Page<'_, T> {
    pub(super) fn write_truncation(&self, xml: &mut Xml) {
        xml.leaf("IsTruncated", self.next_marker.is_some());
        xml.opt_leaf("Marker", self.next_marker.as_deref());
    }
}

pub(super) fn page<'a, T>(
    r: &QueryRequest,
    items: &'a [T],
    name: impl Fn(&T) -> &str,
) -> Result<Page<'a, T>, AwsError> {
    let max = match r.int("MaxItems")? {
        None => DEFAULT_MAX_ITEMS,
        Some(n) if (1..=1000).contains(&n) => n as usize,
        Some(n) => {
            return Err(AwsError::client(
                "ValidationError",
                format!(
                    "1 validation error detected: Value '{n}' at 'maxItems' failed to satisfy constraint: Member must have value between 1 and 1000"
                ),
            ));
        }
    };
    let start = match r.get("Marker") {
        Some(marker) => items
            .iter()
            .position(|i| name(i) == marker)
            .map_or(items.len(), |p| p + 1),
        None => 0,
    };
    let end = (start + max).min(items.len());
    let truncated = end < items.len();
    let items = &items[start..end];
    let next_marker = items
        .last()
        .filter(|_| truncated)
        .map(|i| name(i).to_string());
    Ok(Page { items, next_marker })
}
