//! ELBv2 (Elastic Load Balancing v2) over the Query protocol, a module per resource: load
//! balancers, target groups, targets, listeners, rules, tags. Requests are parsed here into
//! `berth_elbv2`'s types; its errors keep their codes (ELBv2 answers every client error
//! with HTTP 400).

mod listeners;
mod load_balancers;
mod rules;
mod tags;
mod target_groups;
mod targets;

use std::collections::BTreeMap;

use axum::http::StatusCode;
use berth_elbv2::{ElbScope, Elbv2Error, Paging};

use crate::protocol::query::{Namespace, QueryRequest, Xml};
use crate::protocol::{AwsContext, AwsError};

/// ELBv2's XML namespace.
pub const NAMESPACE: Namespace =
    Namespace("http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/");

/// The service name in the SigV4 credential scope and in IAM actions.
pub const SERVICE: &str = "elasticloadbalancing";

/// Runs an ELBv2 action: its `Result` element's content.
pub async fn dispatch(ctx: &AwsContext, request: &QueryRequest) -> Result<Option<Xml>, AwsError> {
    let (ctx, request) = (ctx.clone(), request.clone());
    crate::protocol::json::blocking(move || {
        let action = request.action.as_str();
        if load_balancers::ACTIONS.contains(&action) {
            load_balancers::dispatch(&ctx, &request)
        } else if target_groups::ACTIONS.contains(&action) {
            target_groups::dispatch(&ctx, &request)
        } else if targets::ACTIONS.contains(&action) {
            targets::dispatch(&ctx, &request)
        } else if listeners::ACTIONS.contains(&action) {
            listeners::dispatch(&ctx, &request)
        } else if rules::ACTIONS.contains(&action) {
            rules::dispatch(&ctx, &request)
        } else if tags::ACTIONS.contains(&action) {
            tags::dispatch(&ctx, &request)
        } else {
            Err(AwsError::client(
                "InvalidAction",
                format!("The action {action} is not valid for this web service."),
            ))
        }
    })
    .await
}

/// ELBv2's errors in the Query protocol's shape.
/// A list of ARNs (`Name.member.N`), each parsed by `parse`.
pub(crate) fn arn_list<T>(
    r: &QueryRequest,
    name: &str,
    parse: impl Fn(&str) -> Result<T, Elbv2Error>,
) -> Result<Vec<T>, AwsError> {
    r.list(name)
        .into_iter()
        .map(parse)
        .collect::<Result<Vec<_>, _>>()
        .map_err(elb_error)
}

pub(crate) fn elb_error(e: Elbv2Error) -> AwsError {
    if e.is_internal() {
        return AwsError::new(StatusCode::INTERNAL_SERVER_ERROR, e.code(), e.to_string());
    }
    AwsError::client(e.code(), e.to_string())
}

pub(crate) fn scope(ctx: &AwsContext) -> ElbScope {
    ElbScope::new(ctx.scope.account.as_str(), ctx.scope.region.as_str())
}

/// `Marker` and `PageSize`.
pub(crate) fn paging(r: &QueryRequest) -> Result<Paging, AwsError> {
    Ok(Paging {
        marker: r.get("Marker").map(str::to_string),
        page_size: r.int("PageSize")?,
    })
}

/// A page's `NextMarker`.
pub(crate) fn next_marker(xml: &mut Xml, marker: Option<&str>) {
    xml.opt_leaf("NextMarker", marker);
}

/// A required enum-valued parameter parsed with `parse`.
pub(crate) fn parsed<T>(
    r: &QueryRequest,
    name: &str,
    parse: impl Fn(&str) -> berth_elbv2::Result<T>,
) -> Result<Option<T>, AwsError> {
    r.get(name).map(parse).transpose().map_err(elb_error)
}

/// `true`/`false`.
pub(crate) fn boolean(member: &str, value: &str) -> Result<bool, AwsError> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(AwsError::client(
            "ValidationError",
            format!(
                "1 validation error detected: Value '{other}' at '{member}' failed to satisfy constraint: Member must be a boolean"
            ),
        )),
    }
}

/// A number field of a member structure.
pub(crate) fn number(member: &str, value: &str) -> Result<i64, AwsError> {
    value.parse::<i64>().map_err(|_| {
        AwsError::client(
            "ValidationError",
            format!(
                "1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: Member must be a number"
            ),
        )
    })
}

/// Inside one member structure's fields: the list `{prefix}.member.N` in order.
pub(crate) fn sub_list<'a>(fields: &BTreeMap<&str, &'a str>, prefix: &str) -> Vec<&'a str> {
    sub_structs_raw(fields, prefix)
        .into_iter()
        .filter_map(|(_, m)| m.get("").copied())
        .collect()
}

/// Inside one member structure's fields: the structures `{prefix}.member.N.Field`, in order.
pub(crate) fn sub_structs<'a>(
    fields: &BTreeMap<&str, &'a str>,
    prefix: &str,
) -> Vec<BTreeMap<String, &'a str>> {
    sub_structs_raw(fields, prefix)
        .into_iter()
        .map(|(_, m)| m)
        .collect()
}

fn sub_structs_raw<'a>(
    fields: &BTreeMap<&str, &'a str>,
    prefix: &str,
) -> Vec<(u32, BTreeMap<String, &'a str>)> {
    let start = format!("{prefix}.member.");
    let mut items: BTreeMap<u32, BTreeMap<String, &'a str>> = BTreeMap::new();
    for (k, v) in fields {
        let Some(rest) = k.strip_prefix(&start) else {
            continue;
        };
        let (n, field) = rest.split_once('.').unwrap_or((rest, ""));
        if let Ok(n) = n.parse::<u32>() {
            items.entry(n).or_default().insert(field.to_string(), *v);
        }
    }
    items.into_iter().collect()
}

/// `Tags.member.N.Key`/`Value`.
pub(crate) fn tags(r: &QueryRequest) -> Vec<berth_elbv2::Tag> {
    r.structs("Tags")
        .into_iter()
        .map(|t| berth_elbv2::Tag {
            key: t.get("Key").copied().unwrap_or_default().to_string(),
            value: t.get("Value").map(|v| v.to_string()),
        })
        .collect()
}

/// `Attributes.member.N.Key`/`Value`.
pub(crate) fn attributes(r: &QueryRequest) -> Vec<berth_elbv2::Attribute> {
    r.structs("Attributes")
        .into_iter()
        .map(|a| berth_elbv2::Attribute {
            key: a.get("Key").copied().unwrap_or_default().to_string(),
            value: a.get("Value").copied().unwrap_or_default().to_string(),
        })
        .collect()
}

pub(crate) fn attributes_xml(xml: &mut Xml, attributes: &[berth_elbv2::Attribute]) {
    xml.members("Attributes", attributes, |x, a| {
        x.leaf("Key", &a.key).leaf("Value", &a.value);
    });
}

/// ELBv2's timestamps: ISO 8601 in UTC with milliseconds.
pub(crate) fn timestamp(epoch: f64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos((epoch * 1e9) as i128)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}
