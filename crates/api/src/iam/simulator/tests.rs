//! The simulator against the request path: for random policies held by a user and random
//! requests, SimulateCustomPolicy (the policies as input) and SimulatePrincipalPolicy (the
//! user's own) decide what `authz::authorize` decides.

use std::sync::Arc;

use berth_iam::{CreateUser, Holder, Iam, Principal};
use proptest::prelude::*;

use super::{Outcome, run};
use crate::authz::{Refusal, RequestContext, authorize};
use crate::iam::simulator::run::{ActionResult, decision_name};
use crate::protocol::query::QueryRequest;

const ACCOUNT: &str = "000000000000";

const ACTIONS: &[&str] = &[
    "ecs:RunTask",
    "ecs:ListClusters",
    "ecr:BatchGetImage",
    "ecr:PutImage",
    "iam:GetUser",
];

const ACTION_PATTERNS: &[&str] = &[
    "ecs:RunTask",
    "ecs:*",
    "ecr:Batch*",
    "*",
    "ecs:Run?ask",
    "ECS:runtask",
    "ecr:PutImage",
    "iam:Get*",
];

const RESOURCES: &[&str] = &[
    "arn:aws:ecs:us-east-1:000000000000:cluster/a",
    "arn:aws:ecs:us-east-1:000000000000:cluster/prop",
    "arn:aws:ecr:us-east-1:000000000000:repository/app",
    "*",
];

const RESOURCE_PATTERNS: &[&str] = &[
    "*",
    "arn:aws:ecs:us-east-1:000000000000:cluster/a",
    "arn:aws:ecs:*:000000000000:cluster/*",
    "arn:aws:ecr:us-east-1:000000000000:repository/a*",
    "arn:aws:ecs:us-east-1:000000000000:cluster/${aws:username}",
];

/// Conditions on keys a request gives or lacks (aws:SourceIp, ecs:cluster), on keys every
/// request has (region, transport, time, the user's own), and on keys none has.
const CONDITIONS: &[&str] = &[
    "",
    r#""IpAddress":{"aws:SourceIp":"10.0.0.0/8"}"#,
    r#""NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}"#,
    r#""StringEquals":{"aws:RequestedRegion":"us-east-1"}"#,
    r#""StringNotEqualsIfExists":{"aws:SourceIp":"192.168.0.1"}"#,
    r#""Null":{"aws:SourceIp":"true"}"#,
    r#""Null":{"ecs:cluster":"false"}"#,
    r#""Bool":{"aws:SecureTransport":"false"}"#,
    r#""DateGreaterThan":{"aws:CurrentTime":"2000-01-01T00:00:00Z"}"#,
    r#""DateLessThan":{"aws:CurrentTime":"2000-01-01T00:00:00Z"}"#,
    r#""StringLike":{"aws:username":"pr*"}"#,
    r#""ArnLike":{"ecs:cluster":"arn:aws:ecs:*:*:cluster/a"}"#,
    r#""ForAnyValue:StringEquals":{"aws:TagKeys":["team"]}"#,
    r#""ForAllValues:StringEquals":{"aws:TagKeys":["team"]}"#,
];

fn statement() -> impl Strategy<Value = String> {
    (
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec(prop::sample::select(ACTION_PATTERNS), 1..3),
        any::<bool>(),
        prop::collection::vec(prop::sample::select(RESOURCE_PATTERNS), 1..3),
        prop::sample::select(CONDITIONS),
    )
        .prop_map(
            |(allow, not_action, actions, not_resource, resources, condition)| {
                let list = |items: &[&str]| serde_json::to_string(items).unwrap();
                let condition = if condition.is_empty() {
                    String::new()
                } else {
                    format!(r#","Condition":{{{condition}}}"#)
                };
                format!(
                    r#"{{"Effect":"{}","{}":{},"{}":{}{condition}}}"#,
                    if allow { "Allow" } else { "Deny" },
                    if not_action { "NotAction" } else { "Action" },
                    list(&actions),
                    if not_resource {
                        "NotResource"
                    } else {
                        "Resource"
                    },
                    list(&resources),
                )
            },
        )
}

fn policy() -> impl Strategy<Value = String> {
    prop::collection::vec(statement(), 1..3).prop_map(|statements| {
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
            statements.join(",")
        )
    })
}

#[derive(Debug, Clone)]
struct Case {
    action: &'static str,
    resources: Vec<&'static str>,
    region: &'static str,
    source_ip: Option<&'static str>,
    cluster: Option<&'static str>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::sample::select(ACTIONS),
        prop::collection::vec(prop::sample::select(RESOURCES), 1..3),
        prop::sample::select(&["us-east-1", "eu-west-1"][..]),
        prop::sample::select(&[None, Some("10.1.2.3"), Some("192.168.0.1")][..]),
        prop::sample::select(
            &[
                None,
                Some("arn:aws:ecs:us-east-1:000000000000:cluster/a"),
                Some("arn:aws:ecs:us-east-1:000000000000:cluster/b"),
            ][..],
        ),
    )
        .prop_map(|(action, resources, region, source_ip, cluster)| Case {
            action,
            resources,
            region,
            source_ip,
            cluster,
        })
}

/// A form body from parameters (the Query protocol's encoding).
fn query(params: &[(String, String)]) -> QueryRequest {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    let body = params
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&");
    QueryRequest::parse(None, body.as_bytes()).unwrap()
}

fn p(k: impl Into<String>, v: impl Into<String>) -> (String, String) {
    (k.into(), v.into())
}

/// The simulation parameters that mirror what the request path takes from a request.
fn case_params(case: &Case, now: &str) -> Vec<(String, String)> {
    let mut out = vec![p("ActionNames.member.1", case.action)];
    for (i, r) in case.resources.iter().enumerate() {
        out.push(p(format!("ResourceArns.member.{}", i + 1), *r));
    }
    let mut entries: Vec<(&str, &str, String)> = vec![
        ("aws:RequestedRegion", "string", case.region.to_string()),
        ("aws:SecureTransport", "boolean", "false".to_string()),
        ("aws:CurrentTime", "date", now.to_string()),
    ];
    if let Some(ip) = case.source_ip {
        entries.push(("aws:SourceIp", "ip", ip.to_string()));
    }
    if let Some(c) = case.cluster {
        entries.push(("ecs:cluster", "string", c.to_string()));
    }
    for (i, (key, kind, value)) in entries.into_iter().enumerate() {
        let at = format!("ContextEntries.member.{}", i + 1);
        out.push(p(format!("{at}.ContextKeyName"), key));
        out.push(p(format!("{at}.ContextKeyType"), kind));
        out.push(p(format!("{at}.ContextKeyValues.member.1"), value));
    }
    out
}

fn results(iam: &Iam, params: Vec<(String, String)>) -> Vec<ActionResult> {
    match run(iam, ACCOUNT, &query(&params)).unwrap() {
        Outcome::Results(r) => r,
        other => panic!("{other:?}"),
    }
}

/// The request path's verdict: allowed, or the refusal's kind.
fn enforced(iam: &Iam, user: &Principal, case: &Case, resources: &[&str]) -> &'static str {
    let context = RequestContext {
        region: case.region.to_string(),
        source_ip: case.source_ip.map(str::to_string),
        secure_transport: false,
        service_keys: case
            .cluster
            .map(|c| vec![("ecs:cluster".to_string(), c.to_string())])
            .unwrap_or_default(),
        principal_tags: Vec::new(),
    };
    let resources: Vec<String> = resources.iter().map(|r| r.to_string()).collect();
    match authorize(iam, user, case.action, &resources, &context, Refusal::Json) {
        Ok(()) => "allowed",
        Err(e) if e.message.contains("with an explicit deny") => "explicitDeny",
        Err(_) => "implicitDeny",
    }
}

fn user_fixture() -> (Iam, Principal) {
    let iam = Iam::new(Arc::new(berth_store::MemStore::new()));
    let user = iam
        .create_user(
            ACCOUNT,
            CreateUser {
                user_name: "prop".into(),
                ..CreateUser::default()
            },
        )
        .unwrap();
    let principal = Principal::User {
        account: ACCOUNT.into(),
        name: user.user_name,
        id: user.user_id,
        arn: user.arn,
    };
    (iam, principal)
}

fn now_iso() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn the_simulator_decides_as_the_request_path(
        policies in prop::collection::vec(policy(), 1..4),
        cases in prop::collection::vec(case(), 1..4),
    ) {
        let (iam, user) = user_fixture();
        for (i, doc) in policies.iter().enumerate() {
            iam.put_inline_policy(ACCOUNT, Holder::User("prop"), &format!("p{i}"), doc)
                .unwrap();
        }
        let arn = user_arn();
        for case in &cases {
            let now = now_iso();
            let mut custom = vec![p("CallerArn", arn.as_str())];
            for (i, doc) in policies.iter().enumerate() {
                custom.push(p(format!("PolicyInputList.member.{}", i + 1), doc.as_str()));
            }
            custom.extend(case_params(case, &now));
            let mut principal = vec![p("PolicySourceArn", arn.as_str())];
            principal.extend(case_params(case, &now));
            for (action, params) in [("SimulateCustomPolicy", custom), ("SimulatePrincipalPolicy", principal)] {
                let mut params = params;
                params.push(p("Action", action));
                let result = &results(&iam, params)[0];
                // Several resources: allowed only if every one is, by both.
                let whole = enforced(&iam, &user, case, &case.resources);
                prop_assert_eq!(
                    result.decision.is_allowed(),
                    whole == "allowed",
                    "{} {:?} policies {:?}", action, case, policies
                );
                // Each resource alone: the same kind of decision.
                for (r, rr) in case.resources.iter().zip(&result.per_resource) {
                    prop_assert_eq!(
                        decision_name(&rr.decision),
                        enforced(&iam, &user, case, &[r]),
                        "{} on {} {:?} policies {:?}", action, r, case, policies
                    );
                }
            }
        }
    }
}

fn user_arn() -> String {
    format!("arn:aws:iam::{ACCOUNT}:user/prop")
}

#[test]
fn matched_statements_name_their_policy_and_place() {
    let (iam, _) = user_fixture();
    let inline = "{\n \"Version\": \"2012-10-17\",\n \"Statement\": [\n  {\"Effect\": \"Allow\", \"Action\": \"ecs:*\", \"Resource\": \"*\"}\n ]\n}";
    iam.put_inline_policy(ACCOUNT, Holder::User("prop"), "ecs-all", inline)
        .unwrap();
    let deny = r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"ecs:RunTask","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}}"#;
    let r = results(
        &iam,
        vec![
            p("Action", "SimulatePrincipalPolicy"),
            p("PolicySourceArn", user_arn()),
            p("PolicyInputList.member.1", deny),
            p("ActionNames.member.1", "ecs:ListClusters"),
            p("ActionNames.member.2", "ecs:RunTask"),
        ],
    );
    assert_eq!(decision_name(&r[0].decision), "allowed");
    assert_eq!(r[0].matched.len(), 1);
    assert_eq!(
        (r[0].matched[0].id.as_str(), r[0].matched[0].kind),
        ("ecs-all", "user")
    );
    let (start, end) = r[0].matched[0].span.unwrap();
    assert_eq!(
        (start.line, start.column, end.line, end.column),
        (3, 16, 4, 58)
    );
    assert!(r[0].missing.is_empty());
    // Without aws:SourceIp the deny's condition does not hold: allowed, the key missing.
    assert_eq!(decision_name(&r[1].decision), "allowed");
    assert_eq!(r[1].missing, vec!["aws:SourceIp".to_string()]);
    let r = results(
        &iam,
        vec![
            p("Action", "SimulatePrincipalPolicy"),
            p("PolicySourceArn", user_arn()),
            p("PolicyInputList.member.1", deny),
            p("ActionNames.member.1", "ecs:RunTask"),
            p(
                "ResourceArns.member.1",
                "arn:aws:ecs:us-east-1:000000000000:cluster/a",
            ),
            p("ContextEntries.member.1.ContextKeyName", "aws:SourceIp"),
            p("ContextEntries.member.1.ContextKeyType", "ip"),
            p(
                "ContextEntries.member.1.ContextKeyValues.member.1",
                "10.0.0.7",
            ),
        ],
    );
    assert_eq!(decision_name(&r[0].decision), "explicitDeny");
    assert_eq!(r[0].matched[0].id, "PolicyInputList.1");
    assert_eq!(r[0].matched[0].kind, "none");
    assert_eq!(r[0].per_resource.len(), 1);
    assert_eq!(
        decision_name(&r[0].per_resource[0].decision),
        "explicitDeny"
    );
}

#[test]
fn errors_as_iam_words_them() {
    let (iam, _) = user_fixture();
    let err = |params: Vec<(String, String)>| run(&iam, ACCOUNT, &query(&params)).unwrap_err();
    let e = err(vec![
        p("Action", "SimulatePrincipalPolicy"),
        p("PolicySourceArn", "arn:aws:iam::000000000000:user/nobody"),
        p("ActionNames.member.1", "ecs:RunTask"),
    ]);
    assert_eq!((e.code.as_str(), e.status.as_u16()), ("NoSuchEntity", 404));
    assert_eq!(e.message, "The user with name nobody cannot be found.");
    let e = err(vec![
        p("Action", "SimulateCustomPolicy"),
        p("PolicyInputList.member.1", "{not json"),
        p("ActionNames.member.1", "ecs:RunTask"),
    ]);
    assert_eq!(e.code, "InvalidInput");
    let e = err(vec![
        p("Action", "SimulateCustomPolicy"),
        p(
            "PolicyInputList.member.1",
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#,
        ),
    ]);
    assert_eq!(e.code, "ValidationError");
}

#[test]
fn context_keys_of_a_principal_and_of_inputs() {
    let (iam, _) = user_fixture();
    iam.put_inline_policy(
        ACCOUNT,
        Holder::User("prop"),
        "home",
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::b/${aws:username}/*"}}"#,
    )
    .unwrap();
    let out = run(
        &iam,
        ACCOUNT,
        &query(&[
            p("Action", "GetContextKeysForPrincipalPolicy"),
            p("PolicySourceArn", user_arn()),
            p(
                "PolicyInputList.member.1",
                r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecs:*","Resource":"*","Condition":{"StringEquals":{"ecs:cluster":"x","aws:RequestedRegion":"us-east-1"}}}}"#,
            ),
        ]),
    )
    .unwrap();
    match out {
        Outcome::ContextKeys(keys) => assert_eq!(
            keys,
            vec!["aws:username", "aws:RequestedRegion", "ecs:cluster"]
        ),
        other => panic!("{other:?}"),
    }
}
