//! The evaluation order (reference_policies_evaluation-logic.html), NOT-elements, resource
//! policies and principals, cross-account access, permissions boundaries and session policies,
//! AWS's refusal messages, examples from AWS's documentation, and properties.

use proptest::prelude::*;
use serde_json::json;

use super::*;

const REPO: &str = "arn:aws:ecr:us-east-1:111122223333:repository/app";

fn pull(principal: RequestPrincipal) -> Request {
    Request::new(principal, "ecr:BatchGetImage", REPO)
}

fn allow_all() -> Policy {
    one(json!({"Effect": "Allow", "Action": "*", "Resource": "*"}))
}

#[test]
fn implicit_deny_without_policies() {
    let r = pull(bob());
    let d = evaluate(&r, &PolicySet::new());
    assert_eq!(
        d,
        Decision::ImplicitDeny {
            missing: PolicySource::Identity,
            resource: 0
        }
    );
    assert_eq!(
        d.message(&r).unwrap(),
        "User: arn:aws:iam::111122223333:user/bob is not authorized to perform: ecr:BatchGetImage \
         on resource: arn:aws:ecr:us-east-1:111122223333:repository/app because no identity-based \
         policy allows the ecr:BatchGetImage action"
    );
    assert!(
        allowed(&pull(RequestPrincipal::root(ACCOUNT)), &PolicySet::new()),
        "root"
    );
}

#[test]
fn explicit_deny_beats_allow_anywhere() {
    let deny = identity(json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "Other", "Effect": "Deny", "Action": "ecs:*", "Resource": "*"},
        {"Sid": "NoPulls", "Effect": "Deny", "Action": "ecr:BatchGet*", "Resource": "*"}]}));
    let set = PolicySet::new()
        .with_identity(allow_all())
        .with_identity(deny);
    let r = pull(bob());
    let d = evaluate(&r, &set);
    let Decision::ExplicitDeny { statement } = d else {
        panic!("{d:?}")
    };
    assert_eq!(
        (statement.source, statement.policy, statement.statement),
        (PolicySource::Identity, 1, 1)
    );
    assert_eq!(set.statement(statement).unwrap().sid(), Some("NoPulls"));
    assert!(d.message(&r).unwrap().ends_with(
        "on resource: arn:aws:ecr:us-east-1:111122223333:repository/app with an explicit deny in an identity-based policy"
    ));
    // A deny in the resource policy beats an identity allow; the root too is subject to it.
    let repo_deny = resource_policy(json!({"Version": "2012-10-17", "Statement":
        {"Effect": "Deny", "Principal": "*", "Action": "ecr:*"}}));
    let set = PolicySet::new()
        .with_identity(allow_all())
        .with_resource(repo_deny);
    let d = evaluate(&r, &set);
    assert!(
        d.reason("ecr:BatchGetImage")
            .unwrap()
            .ends_with("with an explicit deny in a resource-based policy")
    );
    assert!(!allowed(&pull(RequestPrincipal::root(ACCOUNT)), &set));
}

#[test]
fn not_action_and_not_resource() {
    // reference_policies_elements_notaction.html: everything but IAM.
    let p = one(json!({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}));
    let set = PolicySet::new().with_identity(p);
    assert!(allowed(&pull(bob()), &set));
    assert!(!allowed(&Request::new(bob(), "iam:CreateUser", "*"), &set));
    // NotResource with Deny: deny everything outside one repository.
    let p = one(
        json!({"Effect": "Deny", "Action": "ecr:*", "NotResource": "arn:aws:ecr:*:*:repository/app"}),
    );
    let set = PolicySet::new().with_identity(allow_all()).with_identity(p);
    assert!(allowed(&pull(bob()), &set));
    let other = Request::new(
        bob(),
        "ecr:BatchGetImage",
        "arn:aws:ecr:us-east-1:111122223333:repository/db",
    );
    assert!(matches!(
        evaluate(&other, &set),
        Decision::ExplicitDeny { .. }
    ));
}

#[test]
fn resources_and_variables() {
    // reference_policies_variables.html: each user their own prefix.
    let p = one(json!({"Effect": "Allow", "Action": "ecr:*",
        "Resource": "arn:aws:ecr:*:111122223333:repository/home/${aws:username}/*"}));
    let set = PolicySet::new().with_identity(p);
    let mine = Request::new(
        bob(),
        "ecr:PutImage",
        "arn:aws:ecr:us-east-1:111122223333:repository/home/bob/app",
    );
    let theirs = Request::new(
        bob(),
        "ecr:PutImage",
        "arn:aws:ecr:us-east-1:111122223333:repository/home/al/app",
    );
    assert!(allowed(&mine, &set));
    assert!(!allowed(&theirs, &set));
    // A root request has no aws:username: the resource cannot match (root is allowed anyway, so
    // test with a role session).
    let session = RequestPrincipal::assumed_role(
        ACCOUNT,
        "arn:aws:iam::111122223333:role/r",
        "AROAEXAMPLE",
        "s",
    );
    let r = Request::new(
        session,
        "ecr:PutImage",
        "arn:aws:ecr:us-east-1:111122223333:repository/home/bob/app",
    );
    assert!(!allowed(&r, &set));
    // Several resources: all must be allowed.
    let both = mine
        .clone()
        .with_resource("arn:aws:ecr:us-east-1:111122223333:repository/home/al/x");
    assert_eq!(
        evaluate(&both, &set),
        Decision::ImplicitDeny {
            missing: PolicySource::Identity,
            resource: 1
        }
    );
}

#[test]
fn resource_policy_principals_same_account() {
    let repo = |principal: serde_json::Value| {
        resource_policy(json!({"Version": "2012-10-17", "Statement":
            {"Effect": "Allow", "Principal": principal, "Action": "ecr:BatchGetImage"}}))
    };
    // Naming the user grants without any identity policy.
    let set =
        PolicySet::new().with_resource(repo(json!({"AWS": "arn:aws:iam::111122223333:user/bob"})));
    assert!(allowed(&pull(bob()), &set));
    let alice = RequestPrincipal::user(
        ACCOUNT,
        "alice",
        "AIDAALICE",
        "arn:aws:iam::111122223333:user/alice",
    );
    assert!(!allowed(&pull(alice), &set));
    // Naming the account delegates to identity policies.
    let set = PolicySet::new().with_resource(repo(json!({"AWS": ACCOUNT})));
    assert_eq!(
        evaluate(&pull(bob()), &set),
        Decision::ImplicitDeny {
            missing: PolicySource::Identity,
            resource: 0
        }
    );
    assert!(allowed(
        &pull(bob()),
        &set.clone().with_identity(allow_all())
    ));
    // "*" grants everyone.
    assert!(allowed(
        &pull(bob()),
        &PolicySet::new().with_resource(repo(json!("*")))
    ));
    // A service principal.
    let svc = RequestPrincipal {
        kind: PrincipalKind::Service,
        arn: "ecs-tasks.amazonaws.com".into(),
        principal_arn: "ecs-tasks.amazonaws.com".into(),
        account: ACCOUNT.into(),
        user_id: String::new(),
        user_name: None,
        tags: vec![],
    };
    let set = PolicySet::new().with_resource(repo(json!({"Service": "ecs-tasks.amazonaws.com"})));
    assert!(allowed(&pull(svc.clone()), &set));
    assert!(!allowed(&pull(bob()), &set));
    // A service has no identity policies: an identity allow does not let it in.
    let d = evaluate(&pull(svc), &PolicySet::new().with_identity(allow_all()));
    assert_eq!(
        d,
        Decision::ImplicitDeny {
            missing: PolicySource::Resource,
            resource: 0
        }
    );
    // Anonymous: only a public resource policy.
    let anon = RequestPrincipal {
        kind: PrincipalKind::Anonymous,
        arn: "anonymous".into(),
        principal_arn: "anonymous".into(),
        account: String::new(),
        user_id: "anonymous".into(),
        user_name: None,
        tags: vec![],
    };
    assert!(allowed(
        &pull(anon.clone()),
        &PolicySet::new().with_resource(repo(json!("*")))
    ));
    assert!(!allowed(
        &pull(anon.clone()),
        &PolicySet::new().with_resource(repo(json!({"AWS": ACCOUNT})))
    ));
    assert!(!allowed(&pull(anon), &PolicySet::new()));
}

#[test]
fn not_principal() {
    // Deny everyone except bob.
    let p = resource_policy(json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "NotPrincipal": {"AWS": "arn:aws:iam::111122223333:user/bob"}, "Action": "ecr:*"}]}));
    let set = PolicySet::new().with_identity(allow_all()).with_resource(p);
    assert!(allowed(&pull(bob()), &set));
    let alice = RequestPrincipal::user(
        ACCOUNT,
        "alice",
        "AIDAALICE",
        "arn:aws:iam::111122223333:user/alice",
    );
    assert!(matches!(
        evaluate(&pull(alice), &set),
        Decision::ExplicitDeny { .. }
    ));
    // access_policies_boundaries.html: a Deny with NotPrincipal denies any principal with a
    // permissions boundary, whatever the NotPrincipal names.
    let bounded = set.with_permissions_boundary(allow_all());
    assert!(matches!(
        evaluate(&pull(bob()), &bounded),
        Decision::ExplicitDeny { .. }
    ));
}

#[test]
fn cross_account_needs_both() {
    let carol = RequestPrincipal::user(
        OTHER,
        "carol",
        "AIDACAROL",
        "arn:aws:iam::444455556666:user/carol",
    );
    let grant = resource_policy(json!({"Version": "2012-10-17", "Statement":
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::444455556666:root"}, "Action": "ecr:BatchGetImage"}}));
    // Resource policy alone: carol's own account has not allowed her.
    let set = PolicySet::new().with_resource(grant.clone());
    assert_eq!(
        evaluate(&pull(carol.clone()), &set),
        Decision::ImplicitDeny {
            missing: PolicySource::Identity,
            resource: 0
        }
    );
    // Identity policy alone: the repository's account has not.
    let set = PolicySet::new().with_identity(allow_all());
    let d = evaluate(&pull(carol.clone()), &set);
    assert_eq!(
        d,
        Decision::ImplicitDeny {
            missing: PolicySource::Resource,
            resource: 0
        }
    );
    assert!(
        d.reason("ecr:BatchGetImage")
            .unwrap()
            .contains("because no resource-based policy allows")
    );
    // Both.
    let set = PolicySet::new()
        .with_identity(allow_all())
        .with_resource(grant);
    assert!(allowed(&pull(carol), &set));
    // Root of another account: identity unrestricted, the resource policy still required.
    assert!(!allowed(
        &pull(RequestPrincipal::root(OTHER)),
        &PolicySet::new()
    ));
}

#[test]
fn permissions_boundary_intersects() {
    // reference_policies_evaluation-logic.html / access_policies_boundaries.html.
    let boundary = one(json!({"Effect": "Allow", "Action": ["ecr:*", "logs:*"], "Resource": "*"}));
    let identity_policy =
        one(json!({"Effect": "Allow", "Action": ["ecr:*", "ecs:*"], "Resource": "*"}));
    let set = PolicySet::new()
        .with_identity(identity_policy)
        .with_permissions_boundary(boundary);
    assert!(allowed(&pull(bob()), &set));
    let run = Request::new(bob(), "ecs:RunTask", "*");
    let d = evaluate(&run, &set);
    assert_eq!(
        d,
        Decision::ImplicitDeny {
            missing: PolicySource::PermissionsBoundary,
            resource: 0
        }
    );
    assert_eq!(
        d.reason("ecs:RunTask").unwrap(),
        "because no permissions boundary allows the ecs:RunTask action"
    );
    let logs = Request::new(bob(), "logs:PutLogEvents", "*");
    assert_eq!(
        evaluate(&logs, &set),
        Decision::ImplicitDeny {
            missing: PolicySource::Identity,
            resource: 0
        }
    );
    // A resource policy naming the user is not limited by the boundary.
    let grant = resource_policy(json!({"Version": "2012-10-17", "Statement":
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:user/bob"}, "Action": "ecs:*"}}));
    let direct = PolicySet {
        resource: Some(grant.into()),
        ..set.clone()
    };
    assert!(allowed(&run, &direct));
    // A deny in the boundary.
    let set = PolicySet::new()
        .with_identity(allow_all())
        .with_permissions_boundary(identity(json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "*", "Resource": "*"},
            {"Effect": "Deny", "Action": "ecr:BatchGetImage", "Resource": "*"}]})));
    let d = evaluate(&pull(bob()), &set);
    assert_eq!(
        d.reason("x").unwrap(),
        "with an explicit deny in a permissions boundary"
    );
}

#[test]
fn session_policies_intersect() {
    let role = "arn:aws:iam::111122223333:role/deployer";
    let session = RequestPrincipal::assumed_role(ACCOUNT, role, "AROADEPLOYER", "ci");
    assert_eq!(
        session.arn,
        "arn:aws:sts::111122223333:assumed-role/deployer/ci"
    );
    let set = PolicySet::new()
        .with_identity(allow_all())
        .with_session(one(
            json!({"Effect": "Allow", "Action": "ecr:BatchGetImage", "Resource": REPO}),
        ));
    assert!(allowed(&pull(session.clone()), &set));
    let d = evaluate(&Request::new(session.clone(), "ecr:PutImage", REPO), &set);
    assert_eq!(
        d,
        Decision::ImplicitDeny {
            missing: PolicySource::Session,
            resource: 0
        }
    );
    assert_eq!(
        d.reason("ecr:PutImage").unwrap(),
        "because no session policy allows the ecr:PutImage action"
    );
    // A resource policy naming the role (not the session) is still narrowed by the session
    // policy; one naming the session is not.
    let by_role = resource_policy(json!({"Version": "2012-10-17", "Statement":
        {"Effect": "Allow", "Principal": {"AWS": role}, "Action": "ecr:*"}}));
    let set_role = PolicySet::new()
        .with_resource(by_role)
        .with_session(one(json!(
        {"Effect": "Allow", "Action": "ecr:BatchGetImage", "Resource": "*"})));
    assert!(allowed(&pull(session.clone()), &set_role));
    assert!(!allowed(
        &Request::new(session.clone(), "ecr:PutImage", REPO),
        &set_role
    ));
    let by_session = resource_policy(json!({"Version": "2012-10-17", "Statement":
        {"Effect": "Allow", "Principal": {"AWS": session.arn.clone()}, "Action": "ecr:*"}}));
    let set_session = PolicySet {
        resource: Some(by_session.into()),
        ..set_role
    };
    assert!(allowed(
        &Request::new(session, "ecr:PutImage", REPO),
        &set_session
    ));
}

/// Examples from AWS's documentation, as decision tables.
#[test]
fn aws_documentation_examples() {
    // reference_policies_examples_aws-dates.html: allow within a date range.
    let dates = one(
        json!({"Effect": "Allow", "Action": "ecs:*", "Resource": "*", "Condition": {
        "DateGreaterThan": {"aws:CurrentTime": "2020-04-01T00:00:00Z"},
        "DateLessThan": {"aws:CurrentTime": "2020-06-30T23:59:59Z"}}}),
    );
    // reference_policies_examples_aws_deny-ip.html: deny outside given ranges (aws:ViaAWSService).
    let deny_ip = identity(
        json!({"Version": "2012-10-17", "Statement": {"Effect": "Deny", "Action": "*",
        "Resource": "*", "Condition": {
            "NotIpAddress": {"aws:SourceIp": ["192.0.2.0/24", "203.0.113.0/24"]},
            "Bool": {"aws:ViaAWSService": "false"}}}}),
    );
    // reference_policies_examples_aws_mfa-dates.html-style: require MFA via BoolIfExists.
    let mfa = identity(
        json!({"Version": "2012-10-17", "Statement": {"Effect": "Deny", "Action": "ecs:*",
        "Resource": "*", "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}}}),
    );
    // reference_policies_examples_aws_restrict-regions.html: deny outside two regions.
    let regions = identity(
        json!({"Version": "2012-10-17", "Statement": {"Effect": "Deny", "Action": "*",
        "Resource": "*", "Condition": {"StringNotEquals": {"aws:RequestedRegion": ["eu-central-1", "eu-west-1"]}}}}),
    );
    // access_tags.html (ABAC): allow when the resource's tag equals the principal's.
    let abac = one(
        json!({"Effect": "Allow", "Action": "ecs:*", "Resource": "*", "Condition": {
        "StringEquals": {"aws:ResourceTag/team": "${aws:PrincipalTag/team}"}}}),
    );
    let base = || {
        Request::new(
            bob().with_tag("team", "blue"),
            "ecs:RunTask",
            "arn:aws:ecs:eu-west-1:111122223333:cluster/c",
        )
    };
    let in_range = time::macros::datetime!(2020-05-01 12:00 UTC);
    let after = time::macros::datetime!(2020-07-01 00:00 UTC);
    let cases: Vec<(&str, PolicySet, Request, bool)> = vec![
        (
            "dates: inside",
            PolicySet::new().with_identity(dates.clone()),
            base().with_time(in_range),
            true,
        ),
        (
            "dates: after",
            PolicySet::new().with_identity(dates.clone()),
            base().with_time(after),
            false,
        ),
        (
            "dates: no time",
            PolicySet::new().with_identity(dates),
            base(),
            false,
        ),
        (
            "ip: inside",
            PolicySet::new()
                .with_identity(allow_all())
                .with_identity(deny_ip.clone()),
            base()
                .with_key("aws:SourceIp", "203.0.113.9")
                .with_key("aws:ViaAWSService", "false"),
            true,
        ),
        (
            "ip: outside",
            PolicySet::new()
                .with_identity(allow_all())
                .with_identity(deny_ip.clone()),
            base()
                .with_key("aws:SourceIp", "198.51.100.1")
                .with_key("aws:ViaAWSService", "false"),
            false,
        ),
        (
            "ip: via service",
            PolicySet::new()
                .with_identity(allow_all())
                .with_identity(deny_ip),
            base()
                .with_key("aws:SourceIp", "198.51.100.1")
                .with_key("aws:ViaAWSService", "true"),
            true,
        ),
        (
            "mfa: absent key",
            PolicySet::new()
                .with_identity(allow_all())
                .with_identity(mfa.clone()),
            base(),
            false,
        ),
        (
            "mfa: present",
            PolicySet::new()
                .with_identity(allow_all())
                .with_identity(mfa),
            base().with_key("aws:MultiFactorAuthPresent", "true"),
            true,
        ),
        (
            "regions: allowed",
            PolicySet::new()
                .with_identity(allow_all())
                .with_identity(regions.clone()),
            base().with_key("aws:RequestedRegion", "eu-west-1"),
            true,
        ),
        (
            "regions: other",
            PolicySet::new()
                .with_identity(allow_all())
                .with_identity(regions.clone()),
            base().with_key("aws:RequestedRegion", "us-east-1"),
            false,
        ),
        (
            "regions: key absent (negated operator holds)",
            PolicySet::new()
                .with_identity(allow_all())
                .with_identity(regions),
            base(),
            false,
        ),
        (
            "abac: same team",
            PolicySet::new().with_identity(abac.clone()),
            base().with_key("aws:ResourceTag/team", "blue"),
            true,
        ),
        (
            "abac: other team",
            PolicySet::new().with_identity(abac.clone()),
            base().with_key("aws:ResourceTag/team", "red"),
            false,
        ),
        (
            "abac: untagged",
            PolicySet::new().with_identity(abac),
            base(),
            false,
        ),
    ];
    for (name, set, request, expect) in cases {
        assert_eq!(allowed(&request, &set), expect, "{name}");
    }
}

fn arb_statement() -> impl Strategy<Value = serde_json::Value> {
    let actions = prop::sample::select(vec![
        "ecr:*",
        "ecr:BatchGetImage",
        "ecr:Put*",
        "ecs:RunTask",
        "*",
        "ec?:*",
    ]);
    let resources = prop::sample::select(vec![
        "*",
        "arn:aws:ecr:*:111122223333:repository/*",
        "arn:aws:ecr:us-east-1:111122223333:repository/app",
        "arn:aws:ecr:*:*:repository/other",
    ]);
    let conds = prop::sample::select(vec![
        json!({}),
        json!({"StringEquals": {"aws:username": "bob"}}),
        json!({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}),
        json!({"StringNotEquals": {"aws:RequestedRegion": "us-east-1"}}),
    ]);
    (any::<bool>(), any::<bool>(), actions, resources, conds).prop_map(|(deny, not_action, a, r, c)| {
        let mut s = json!({"Effect": if deny { "Deny" } else { "Allow" }, "Resource": r, "Condition": c});
        s[if not_action { "NotAction" } else { "Action" }] = json!(a);
        s
    })
}

proptest! {
    /// An applicable Deny wins whatever else the policies say; without one, the decision
    /// is the same whatever order the policies come in.
    #[test]
    fn deny_anywhere_wins(statements in prop::collection::vec(arb_statement(), 1..12), split in 0usize..12,
                          ip in prop::sample::select(vec!["10.1.1.1", "192.168.0.1"])) {
        let request = pull(bob()).with_key("aws:SourceIp", ip).with_key("aws:RequestedRegion", "eu-west-1");
        let split = split.min(statements.len());
        let (a, b) = statements.split_at(split);
        let policy = |ss: &[serde_json::Value]| identity(json!({"Version": "2012-10-17", "Statement": ss}));
        let set = PolicySet::new().with_identity(policy(a)).with_identity(policy(b));
        let reversed = PolicySet::new().with_identity(policy(b)).with_identity(policy(a));
        let d = evaluate(&request, &set);
        let applies = |deny: bool| set.identity.iter().flat_map(|p| p.statements()).any(|s| {
            (s.effect() == Effect::Deny) == deny && s.applies(&request, request.resource(0), false).is_some()
        });
        // The simulator's view agrees with the decision.
        let matched = matching_statements(&request, &set);
        prop_assert_eq!(matched.iter().any(|(_, e)| *e == Effect::Deny), applies(true));
        prop_assert_eq!(matched.iter().any(|(_, e)| *e == Effect::Allow), applies(false));
        if applies(true) {
            // The Deny reported is the first applicable one in document order.
            let first = matched.iter().find(|(_, e)| *e == Effect::Deny).map(|(at, _)| *at);
            prop_assert_eq!(d, Decision::ExplicitDeny { statement: first.unwrap() });
            // Adding a resource policy that allows everyone changes nothing.
            let open = resource_policy(json!({"Version": "2012-10-17", "Statement":
                {"Effect": "Allow", "Principal": "*", "Action": "*"}}));
            let still = matches!(evaluate(&request, &set.clone().with_resource(open)), Decision::ExplicitDeny { .. });
            prop_assert!(still);
        } else {
            prop_assert_eq!(d.is_allowed(), applies(false));
            prop_assert_eq!(evaluate(&request, &reversed).is_allowed(), d.is_allowed());
        }
    }
}

/// The service index skips statements about other services but keeps document order: the
/// Deny reported is the first applicable one, whether it names the service or not.
#[test]
fn service_index_keeps_document_order() {
    let p = identity(json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "Logs", "Effect": "Deny", "Action": "logs:*", "Resource": "*"},
        {"Sid": "Everything", "Effect": "Deny", "NotAction": "iam:*", "Resource": "*"},
        {"Sid": "Ecr", "Effect": "Deny", "Action": ["logs:Get*", "ECR:Batch*"], "Resource": "*"},
        {"Sid": "Wild", "Effect": "Deny", "Action": "e?r:*", "Resource": "*"}]}));
    let set = PolicySet::new().with_identity(p);
    let first_deny = |action: &str| match evaluate(&Request::new(bob(), action, REPO), &set) {
        Decision::ExplicitDeny { statement } => {
            set.statement(statement).unwrap().sid().map(str::to_string)
        }
        _ => None,
    };
    assert_eq!(
        first_deny("ecr:BatchGetImage").as_deref(),
        Some("Everything")
    );
    assert_eq!(first_deny("logs:GetLogEvents").as_deref(), Some("Logs"));
    assert_eq!(first_deny("iam:CreateUser"), None);
    let p = identity(json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "Wild", "Effect": "Deny", "Action": "e?r:*", "Resource": "*"},
        {"Sid": "Ecr", "Effect": "Deny", "Action": "ecr:*", "Resource": "*"}]}));
    let set = PolicySet::new().with_identity(p);
    let d = evaluate(&Request::new(bob(), "ECR:PutImage", REPO), &set);
    let Decision::ExplicitDeny { statement } = d else {
        panic!("{d:?}")
    };
    assert_eq!(set.statement(statement).unwrap().sid(), Some("Wild"));
}
