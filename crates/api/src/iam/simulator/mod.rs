//! IAM's policy simulator: SimulatePrincipalPolicy, SimulateCustomPolicy,
//! GetContextKeysForPrincipalPolicy, GetContextKeysForCustomPolicy. A simulation decides
//! with the very code that authorizes real requests (`run.rs`), so what it answers is what
//! enforcement does — a property test holds the two together.

mod run;
#[cfg(test)]
mod tests;

use berth_iam::policy::{Policy, PolicyType};
use berth_iam::{Holder, Principal};

use self::run::{ActionResult, Caller, ContextEntry, Matched, Policies, Source, decision_name};
use super::iam_error;
use crate::protocol::query::{QueryRequest, Xml};
use crate::protocol::{AwsContext, AwsError};

/// The actions this module serves.
pub(super) const ACTIONS: &[&str] = &[
    "SimulatePrincipalPolicy",
    "SimulateCustomPolicy",
    "GetContextKeysForPrincipalPolicy",
    "GetContextKeysForCustomPolicy",
];

/// The context key types IAM accepts (`ContextKeyType`).
const CONTEXT_KEY_TYPES: &[&str] = &[
    "string",
    "stringList",
    "numeric",
    "numericList",
    "boolean",
    "booleanList",
    "ip",
    "ipList",
    "binary",
    "binaryList",
    "date",
    "dateList",
];

pub(super) fn dispatch(ctx: &AwsContext, r: &QueryRequest) -> Result<Option<Xml>, AwsError> {
    let account = ctx.scope.account.to_string();
    let mut xml = Xml::default();
    match run(&ctx.app.iam, &account, r)? {
        Outcome::Results(results) => write_results(&mut xml, r, &results)?,
        Outcome::ContextKeys(keys) => {
            xml.members("ContextKeyNames", keys, |x, k| {
                x.text(k);
            });
        }
    }
    Ok(Some(xml))
}

/// What an action of the simulator answers, before it is written as XML.
#[derive(Debug)]
enum Outcome {
    Results(Vec<ActionResult>),
    ContextKeys(Vec<String>),
}

fn run(iam: &berth_iam::Iam, account: &str, r: &QueryRequest) -> Result<Outcome, AwsError> {
    match r.action.as_str() {
        "SimulatePrincipalPolicy" => {
            let source = r.required("PolicySourceArn")?;
            let (principal, sources) = principal_of(iam, account, source)?;
            let group = parse_iam_arn(source)?.1 == "group";
            // The request path's own policy set for a user or role; a group (no principal of
            // its own) simulates its policies for an unnamed member.
            let set = if group {
                let mut set = berth_iam::policy::PolicySet::new();
                for source in &sources {
                    set = set.with_identity(parse(&source.text, PolicyType::Identity)?);
                }
                set
            } else {
                crate::authz::policy_set(iam, &principal)?
            };
            let mut policies = Policies::of_principal(set, sources);
            add_inputs(&mut policies, r)?;
            let is_user = matches!(principal, Principal::User { .. }) && !group;
            let caller = match r.get("CallerArn") {
                Some(arn) => caller_user(iam, account, arn)?,
                None if policies.resource.is_some() && !is_user => {
                    return Err(invalid_input(
                        "Missing required parameter CallerArn: it is required when a ResourcePolicy is given and PolicySourceArn is not a user.",
                    ));
                }
                None => principal,
            };
            let anonymous = group && r.get("CallerArn").is_none();
            simulate(&policies, caller, anonymous, r).map(Outcome::Results)
        }
        "SimulateCustomPolicy" => {
            if r.list("PolicyInputList").is_empty() {
                return Err(null_member("policyInputList"));
            }
            let mut policies = Policies::default();
            add_inputs(&mut policies, r)?;
            let (caller, anonymous) = match r.get("CallerArn") {
                Some(arn) => (caller_user(iam, account, arn)?, false),
                None if policies.resource.is_some() => {
                    return Err(invalid_input(
                        "Missing required parameter CallerArn: it is required when a ResourcePolicy is given.",
                    ));
                }
                None => (stand_in(account), true),
            };
            simulate(&policies, caller, anonymous, r).map(Outcome::Results)
        }
        "GetContextKeysForPrincipalPolicy" => {
            let (_, sources) = principal_of(iam, account, r.required("PolicySourceArn")?)?;
            let inputs = r.list("PolicyInputList");
            for text in &inputs {
                parse(text, PolicyType::Identity)?;
            }
            let texts = sources
                .iter()
                .map(|s| s.text.as_str())
                .chain(inputs.iter().copied());
            Ok(Outcome::ContextKeys(run::context_keys(texts)))
        }
        "GetContextKeysForCustomPolicy" => {
            let inputs = r.list("PolicyInputList");
            if inputs.is_empty() {
                return Err(null_member("policyInputList"));
            }
            for text in &inputs {
                parse(text, PolicyType::Identity)?;
            }
            Ok(Outcome::ContextKeys(run::context_keys(
                inputs.iter().copied(),
            )))
        }
        other => Err(AwsError::client(
            "InvalidAction",
            format!("Could not find operation {other} for version 2010-05-08"),
        )),
    }
}

/// IAM's InvalidInput (HTTP 400).
fn invalid_input(message: impl Into<String>) -> AwsError {
    AwsError::client("InvalidInput", message)
}

fn null_member(name: &str) -> AwsError {
    AwsError::client(
        "ValidationError",
        format!(
            "1 validation error detected: Value null at '{name}' failed to satisfy constraint: Member must not be null"
        ),
    )
}

fn parse(text: &str, kind: PolicyType) -> Result<Policy, AwsError> {
    Policy::parse(text, kind).map_err(|e| invalid_input(e.to_string()))
}

/// The entity named by `PolicySourceArn` as a principal, with its policies' documents and
/// names: a user's own and its groups', a role's; a group's, for an unnamed member.
fn principal_of(
    iam: &berth_iam::Iam,
    account: &str,
    arn: &str,
) -> Result<(Principal, Vec<Source>), AwsError> {
    let (arn_account, kind, name) = parse_iam_arn(arn)?;
    let missing = |what: &str| {
        iam_error(berth_iam::IamError::NoSuchEntity(format!(
            "The {what} with name {name} cannot be found."
        )))
    };
    if arn_account != account {
        return Err(missing(kind));
    }
    let (principal, holder, inline_kind) = match kind {
        "user" => {
            let user = iam.get_user(account, name).map_err(iam_error)?;
            let principal = Principal::User {
                account: account.to_string(),
                name: user.user_name.clone(),
                id: user.user_id,
                arn: user.arn,
            };
            (principal, Holder::User(name), "user")
        }
        "role" => {
            let role = iam.get_role(account, name).map_err(iam_error)?;
            let principal = Principal::AssumedRole {
                account: account.to_string(),
                role_name: role.role_name.clone(),
                role_arn: role.arn,
                role_id: role.role_id,
                session_name: "policy-simulator".to_string(),
                session_policies: Vec::new(),
                session_tags: Vec::new(),
                transitive_tag_keys: Vec::new(),
            };
            (principal, Holder::Role(name), "role")
        }
        "group" => {
            iam.get_group(account, name).map_err(iam_error)?;
            (stand_in(account), Holder::Group(name), "group")
        }
        _ => {
            return Err(invalid_input(format!(
                "Invalid ARN {arn}: it names no user, group or role."
            )));
        }
    };
    let mut sources = sources_of(iam, account, holder, inline_kind)?;
    if kind == "user" {
        for group in iam.list_groups_for_user(account, name).map_err(iam_error)? {
            sources.extend(sources_of(
                iam,
                account,
                Holder::Group(&group.group_name),
                "group",
            )?);
        }
    }
    Ok((principal, sources))
}

/// The inline and attached policies of `holder`, named as the simulator names them.
fn sources_of(
    iam: &berth_iam::Iam,
    account: &str,
    holder: Holder<'_>,
    inline_kind: &'static str,
) -> Result<Vec<Source>, AwsError> {
    let mut sources = Vec::new();
    for policy in iam
        .list_inline_policies(account, holder)
        .map_err(iam_error)?
    {
        let text = iam
            .get_inline_policy(account, holder, &policy)
            .map_err(iam_error)?;
        sources.push(Source::new(policy, inline_kind, text));
    }
    for (policy, arn) in iam
        .list_attached_policies(account, holder)
        .map_err(iam_error)?
    {
        let Ok(managed) = iam.get_policy(account, &arn) else {
            continue;
        };
        let kind = if managed.is_aws_managed() {
            "aws-managed"
        } else {
            "user-managed"
        };
        sources.push(Source::new(policy, kind, managed.default_document()));
    }
    Ok(sources)
}

/// `arn:aws:iam::ACCOUNT:KIND/PATH/NAME` → (account, kind, name).
fn parse_iam_arn(arn: &str) -> Result<(&str, &str, &str), AwsError> {
    let bad = || invalid_input(format!("Invalid ARN {arn}."));
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" || parts[2] != "iam" {
        return Err(bad());
    }
    let (kind, rest) = parts[5].split_once('/').ok_or_else(bad)?;
    let name = rest
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty())
        .ok_or_else(bad)?;
    Ok((parts[4], kind, name))
}

/// `CallerArn`: an IAM user of this account (IAM accepts no other kind).
fn caller_user(iam: &berth_iam::Iam, account: &str, arn: &str) -> Result<Principal, AwsError> {
    let (arn_account, kind, name) = parse_iam_arn(arn)?;
    if kind != "user" {
        return Err(invalid_input(format!(
            "Invalid CallerArn {arn}: it must be the ARN of an IAM user."
        )));
    }
    if arn_account != account {
        return Err(iam_error(berth_iam::IamError::NoSuchEntity(format!(
            "The user with name {name} cannot be found."
        ))));
    }
    let user = iam.get_user(account, name).map_err(iam_error)?;
    Ok(Principal::User {
        account: account.to_string(),
        name: user.user_name,
        id: user.user_id,
        arn: user.arn,
    })
}

/// The caller of a SimulateCustomPolicy without CallerArn: an unnamed user of the account
/// (its own keys are left out of the requests).
fn stand_in(account: &str) -> Principal {
    Principal::User {
        account: account.to_string(),
        name: String::new(),
        id: String::new(),
        arn: format!("arn:aws:iam::{account}:user/"),
    }
}

/// PolicyInputList, PermissionsBoundaryPolicyInputList and ResourcePolicy, added to the
/// simulation's policies.
fn add_inputs(policies: &mut Policies, r: &QueryRequest) -> Result<(), AwsError> {
    let mut set = std::mem::take(&mut policies.set);
    for (i, text) in r.list("PolicyInputList").into_iter().enumerate() {
        set = set.with_identity(parse(text, PolicyType::Identity)?);
        policies.identity.push(Some(Source::new(
            format!("PolicyInputList.{}", i + 1),
            "none",
            text,
        )));
    }
    let boundaries = r.list("PermissionsBoundaryPolicyInputList");
    if boundaries.len() > 1 {
        return Err(invalid_input(
            "PermissionsBoundaryPolicyInputList takes one permissions boundary.",
        ));
    }
    if let Some(text) = boundaries.first() {
        set = set.with_permissions_boundary(parse(text, PolicyType::Identity)?);
        policies.boundary = Some(Source::new(
            "PermissionsBoundaryPolicyInputList.1",
            "none",
            *text,
        ));
    }
    if let Some(text) = r.get("ResourcePolicy") {
        set = set.with_resource(parse(text, PolicyType::Resource)?);
        policies.resource = Some(Source::new("ResourcePolicy", "resource", text));
    }
    policies.set = set;
    Ok(())
}

/// `ContextEntries.member.N.{ContextKeyName,ContextKeyType,ContextKeyValues.member.M}`.
fn context_entries(r: &QueryRequest) -> Result<Vec<ContextEntry>, AwsError> {
    let mut out = Vec::new();
    for (n, fields) in r.structs("ContextEntries").into_iter().enumerate() {
        let Some(key) = fields.get("ContextKeyName") else {
            continue;
        };
        if let Some(t) = fields.get("ContextKeyType")
            && !CONTEXT_KEY_TYPES.contains(t)
        {
            return Err(AwsError::client(
                "ValidationError",
                format!(
                    "1 validation error detected: Value '{t}' at 'contextEntries.{}.member.contextKeyType' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
                    n + 1,
                    CONTEXT_KEY_TYPES.join(", ")
                ),
            ));
        }
        let mut values: Vec<(u32, &str)> = fields
            .iter()
            .filter_map(|(f, v)| {
                let m = f.strip_prefix("ContextKeyValues.member.")?.parse().ok()?;
                Some((m, *v))
            })
            .collect();
        values.sort_by_key(|(m, _)| *m);
        out.push(ContextEntry {
            key: key.to_string(),
            values: values.into_iter().map(|(_, v)| v.to_string()).collect(),
        });
    }
    Ok(out)
}

/// The owner of resources whose ARNs do not name one: `ResourceOwner`, an account id or
/// `arn:aws:iam::ACCOUNT:root`.
fn resource_owner(r: &QueryRequest) -> Result<Option<String>, AwsError> {
    let Some(owner) = r.get("ResourceOwner") else {
        return Ok(None);
    };
    let account = owner
        .strip_prefix("arn:aws:iam::")
        .and_then(|rest| rest.strip_suffix(":root"))
        .unwrap_or(owner);
    if account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()) {
        Ok(Some(account.to_string()))
    } else {
        Err(invalid_input(format!("Invalid ResourceOwner {owner}.")))
    }
}

fn simulate(
    policies: &Policies,
    principal: Principal,
    anonymous: bool,
    r: &QueryRequest,
) -> Result<Vec<ActionResult>, AwsError> {
    let actions: Vec<String> = r
        .list("ActionNames")
        .into_iter()
        .map(String::from)
        .collect();
    if actions.is_empty() {
        return Err(null_member("actionNames"));
    }
    if let Some(bad) = actions.iter().find(|a| {
        a.split_once(':')
            .is_none_or(|(service, name)| service.is_empty() || name.is_empty())
    }) {
        return Err(invalid_input(format!(
            "Action name {bad} is not valid: it must be service:action, such as iam:CreateUser."
        )));
    }
    let resources: Vec<String> = r
        .list("ResourceArns")
        .into_iter()
        .map(String::from)
        .collect();
    let caller = Caller {
        principal,
        anonymous,
        context: context_entries(r)?,
        resource_owner: resource_owner(r)?,
    };
    Ok(run::simulate(policies, &caller, &actions, &resources))
}

/// EvaluationResults, paged by `MaxItems` / `Marker` (the marker: the next result's index).
fn write_results(
    xml: &mut Xml,
    r: &QueryRequest,
    results: &[ActionResult],
) -> Result<(), AwsError> {
    let max = match r.int("MaxItems")? {
        None => super::users::DEFAULT_MAX_ITEMS,
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
        None => 0,
        Some(m) => m
            .parse::<usize>()
            .ok()
            .filter(|&i| i <= results.len())
            .ok_or_else(|| invalid_input(format!("Invalid Marker {m}.")))?,
    };
    let end = (start + max).min(results.len());
    xml.members("EvaluationResults", &results[start..end], |x, result| {
        x.leaf("EvalActionName", &result.action)
            .leaf("EvalResourceName", &result.resource)
            .leaf("EvalDecision", decision_name(&result.decision));
        matched_xml(x, &result.matched);
        x.members("MissingContextValues", &result.missing, |x, k| {
            x.text(k);
        });
        details_xml(x, &result.details, result.allowed_by_boundary);
        if !result.per_resource.is_empty() {
            x.members("ResourceSpecificResults", &result.per_resource, |x, rr| {
                x.leaf("EvalResourceName", &rr.resource)
                    .leaf("EvalResourceDecision", decision_name(&rr.decision));
                matched_xml(x, &rr.matched);
                x.members("MissingContextValues", &rr.missing, |x, k| {
                    x.text(k);
                });
                details_xml(x, &rr.details, rr.allowed_by_boundary);
            });
        }
    });
    xml.leaf("IsTruncated", end < results.len());
    if end < results.len() {
        xml.leaf("Marker", end);
    }
    Ok(())
}

fn matched_xml(x: &mut Xml, matched: &[Matched]) {
    x.members("MatchedStatements", matched, |x, m| {
        x.leaf("SourcePolicyId", &m.id)
            .leaf("SourcePolicyType", m.kind);
        if let Some((start, end)) = m.span {
            for (tag, p) in [("StartPosition", start), ("EndPosition", end)] {
                x.element(tag, |x| {
                    x.leaf("Line", p.line).leaf("Column", p.column);
                });
            }
        }
    });
}

fn details_xml(x: &mut Xml, details: &Option<Vec<(&str, &str)>>, boundary: Option<bool>) {
    if let Some(details) = details {
        x.element("EvalDecisionDetails", |x| {
            for (k, v) in details {
                x.element("entry", |x| {
                    x.leaf("key", k).leaf("value", v);
                });
            }
        });
    }
    if let Some(allowed) = boundary {
        x.element("PermissionsBoundaryDecisionDetail", |x| {
            x.leaf("AllowedByPermissionsBoundary", allowed);
        });
    }
}
