//! Every condition operator, `…IfExists`, the set qualifiers, missing keys and policy
//! variables in values (reference_policies_elements_condition_operators.html).

use serde_json::json;

use super::*;

fn req() -> Request {
    Request::new(
        bob().with_tag("team", "blue"),
        "ecs:RunTask",
        "arn:aws:ecs:us-east-1:111122223333:task-definition/web:1",
    )
}

/// Whether an Allow statement with this condition allows `request`.
fn holds(condition: serde_json::Value, request: &Request) -> bool {
    let p = one(
        json!({"Effect": "Allow", "Action": "ecs:RunTask", "Resource": "*", "Condition": condition}),
    );
    allowed(request, &PolicySet::new().with_identity(p))
}

#[test]
fn string_operators() {
    let r = req().with_key(
        "ecs:cluster",
        "arn:aws:ecs:us-east-1:111122223333:cluster/prod",
    );
    let c = "arn:aws:ecs:us-east-1:111122223333:cluster/prod";
    assert!(holds(json!({"StringEquals": {"ecs:cluster": c}}), &r));
    assert!(
        holds(json!({"StringEquals": {"ECS:Cluster": ["x", c]}}), &r),
        "keys any case, values ORed"
    );
    assert!(!holds(
        json!({"StringEquals": {"ecs:cluster": c.to_uppercase()}}),
        &r
    ));
    assert!(
        !holds(
            json!({"StringEquals": {"ecs:cluster": "arn:aws:ecs:*"}}),
            &r
        ),
        "no wildcards"
    );
    assert!(holds(
        json!({"StringNotEquals": {"ecs:cluster": ["a", "b"]}}),
        &r
    ));
    assert!(
        !holds(json!({"StringNotEquals": {"ecs:cluster": ["a", c]}}), &r),
        "NOR"
    );
    assert!(holds(
        json!({"StringEqualsIgnoreCase": {"ecs:cluster": c.to_uppercase()}}),
        &r
    ));
    assert!(!holds(
        json!({"StringNotEqualsIgnoreCase": {"ecs:cluster": c.to_uppercase()}}),
        &r
    ));
    assert!(holds(
        json!({"StringNotEqualsIgnoreCase": {"ecs:cluster": "other"}}),
        &r
    ));
    assert!(holds(
        json!({"StringLike": {"ecs:cluster": "*:cluster/pr?d"}}),
        &r
    ));
    assert!(!holds(
        json!({"StringLike": {"ecs:cluster": "*:cluster/dev*"}}),
        &r
    ));
    assert!(holds(
        json!({"StringNotLike": {"ecs:cluster": ["*/dev", "*/test"]}}),
        &r
    ));
    assert!(!holds(
        json!({"StringNotLike": {"ecs:cluster": ["*/dev", "*/prod"]}}),
        &r
    ));
}

#[test]
fn missing_keys() {
    let r = req();
    // Absent: false, except for the negated operators; IfExists: true.
    assert!(!holds(json!({"StringEquals": {"ecs:cluster": "x"}}), &r));
    assert!(!holds(json!({"StringLike": {"ecs:cluster": "*"}}), &r));
    assert!(holds(json!({"StringNotEquals": {"ecs:cluster": "x"}}), &r));
    assert!(holds(json!({"StringNotLike": {"ecs:cluster": "x"}}), &r));
    assert!(holds(json!({"ArnNotLike": {"ecs:cluster": "x"}}), &r));
    assert!(holds(
        json!({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}),
        &r
    ));
    assert!(holds(
        json!({"StringEqualsIfExists": {"ecs:cluster": "x"}}),
        &r
    ));
    assert!(holds(
        json!({"NumericLessThanIfExists": {"s3:max-keys": "10"}}),
        &r
    ));
    assert!(!holds(
        json!({"Bool": {"aws:SecureTransport": "false"}}),
        &r
    ));
    // Present: IfExists tests normally.
    let r = r.with_key("ecs:cluster", "y");
    assert!(!holds(
        json!({"StringEqualsIfExists": {"ecs:cluster": "x"}}),
        &r
    ));
    assert!(holds(
        json!({"StringEqualsIfExists": {"ecs:cluster": "y"}}),
        &r
    ));
}

#[test]
fn null_check() {
    let r = req().with_key("aws:TokenIssueTime", "2026-12-06T00:00:00Z");
    assert!(holds(json!({"Null": {"aws:TokenIssueTime": "false"}}), &r));
    assert!(!holds(json!({"Null": {"aws:TokenIssueTime": "true"}}), &r));
    assert!(holds(json!({"Null": {"ecs:cluster": "true"}}), &r));
    assert!(!holds(json!({"Null": {"ecs:cluster": false}}), &r));
}

#[test]
fn numeric_operators() {
    let r = req().with_key("s3:max-keys", "10");
    for (op, value, expect) in [
        ("NumericEquals", "10", true),
        ("NumericEquals", "10.0", true),
        ("NumericEquals", "11", false),
        ("NumericNotEquals", "11", true),
        ("NumericNotEquals", "10", false),
        ("NumericLessThan", "11", true),
        ("NumericLessThan", "10", false),
        ("NumericLessThanEquals", "10", true),
        ("NumericLessThanEquals", "9", false),
        ("NumericGreaterThan", "9", true),
        ("NumericGreaterThan", "10", false),
        ("NumericGreaterThanEquals", "10", true),
        ("NumericGreaterThanEquals", "10.5", false),
        ("NumericEquals", "ten", false),
    ] {
        assert_eq!(
            holds(json!({op: {"s3:max-keys": value}}), &r),
            expect,
            "{op} {value}"
        );
    }
    assert!(
        holds(json!({"NumericEquals": {"s3:max-keys": 10}}), &r),
        "JSON numbers"
    );
    let r = req().with_key("s3:max-keys", "many");
    assert!(!holds(
        json!({"NumericLessThan": {"s3:max-keys": "100"}}),
        &r
    ));
}

#[test]
fn date_operators() {
    let now = time::macros::datetime!(2026-12-06 19:30:00 UTC);
    let r = req().with_time(now);
    for (op, value, expect) in [
        ("DateEquals", "2026-12-06T19:30:00Z", true),
        ("DateEquals", "2026-12-06T20:30:00+01:00", true),
        ("DateNotEquals", "2026-12-06T19:30:00Z", false),
        ("DateLessThan", "2027-01-01T00:00:00Z", true),
        ("DateLessThan", "2026-12-06", false),
        ("DateLessThanEquals", "2026-12-06T19:30:00Z", true),
        ("DateGreaterThan", "2026-12-06", true),
        ("DateGreaterThan", "2026-12-06T19:30:00Z", false),
        ("DateGreaterThanEquals", "2026-12-06T19:30:00Z", true),
        ("DateGreaterThanEquals", "2026-12-07", false),
        // Epoch seconds on the policy side.
        ("DateLessThan", "1796592600", true),
        ("DateGreaterThan", "1796592600", false),
    ] {
        assert_eq!(
            holds(json!({op: {"aws:CurrentTime": value}}), &r),
            expect,
            "{op} {value}"
        );
    }
    // aws:EpochTime holds epoch seconds; dates compare with either form.
    assert!(holds(
        json!({"DateGreaterThan": {"aws:EpochTime": "2026-01-01T00:00:00Z"}}),
        &r
    ));
    assert!(holds(
        json!({"NumericGreaterThan": {"aws:EpochTime": 1_700_000_000}}),
        &r
    ));
}

#[test]
fn bool_and_binary() {
    let r = req().with_key("aws:SecureTransport", "true");
    assert!(holds(json!({"Bool": {"aws:SecureTransport": "true"}}), &r));
    assert!(holds(json!({"Bool": {"aws:SecureTransport": true}}), &r));
    assert!(holds(json!({"Bool": {"aws:SecureTransport": "TRUE"}}), &r));
    assert!(!holds(
        json!({"Bool": {"aws:SecureTransport": "false"}}),
        &r
    ));
    let r = req().with_key("s3:x-amz-content", "QmluYXJ5VmFsdWU=");
    assert!(holds(
        json!({"BinaryEquals": {"s3:x-amz-content": "QmluYXJ5VmFsdWU="}}),
        &r
    ));
    assert!(!holds(
        json!({"BinaryEquals": {"s3:x-amz-content": "T3RoZXI="}}),
        &r
    ));
}

#[test]
fn ip_addresses() {
    let r = req().with_key("aws:SourceIp", "203.0.113.7");
    assert!(holds(
        json!({"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}),
        &r
    ));
    assert!(holds(
        json!({"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "203.0.113.7/32"]}}),
        &r
    ));
    assert!(!holds(
        json!({"IpAddress": {"aws:SourceIp": "198.51.100.0/24"}}),
        &r
    ));
    assert!(holds(
        json!({"NotIpAddress": {"aws:SourceIp": "198.51.100.0/24"}}),
        &r
    ));
    assert!(!holds(
        json!({"NotIpAddress": {"aws:SourceIp": ["198.51.100.0/24", "203.0.113.0/24"]}}),
        &r
    ));
    let r6 = req().with_key("aws:SourceIp", "2001:db8:1234::1");
    assert!(holds(
        json!({"IpAddress": {"aws:SourceIp": "2001:db8::/32"}}),
        &r6
    ));
    assert!(!holds(
        json!({"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}),
        &r6
    ));
    assert!(!holds(
        json!({"IpAddress": {"aws:SourceIp": "not-an-ip"}}),
        &r
    ));
}

#[test]
fn arn_operators() {
    let r = req().with_key(
        "aws:SourceArn",
        "arn:aws:ecs:us-east-1:111122223333:cluster/prod",
    );
    assert!(holds(
        json!({"ArnEquals": {"aws:SourceArn": "arn:aws:ecs:us-east-1:111122223333:cluster/prod"}}),
        &r
    ));
    assert!(holds(
        json!({"ArnLike": {"aws:SourceArn": "arn:aws:ecs:*:111122223333:cluster/*"}}),
        &r
    ));
    assert!(
        holds(
            json!({"ArnEquals": {"aws:SourceArn": "arn:aws:ecs:*:*:*"}}),
            &r
        ),
        "ArnEquals takes wildcards too"
    );
    assert!(!holds(
        json!({"ArnLike": {"aws:SourceArn": "arn:aws:ecs:*:444455556666:*"}}),
        &r
    ));
    assert!(holds(
        json!({"ArnNotLike": {"aws:SourceArn": "arn:aws:ecs:*:444455556666:*"}}),
        &r
    ));
    assert!(!holds(
        json!({"ArnNotEquals": {"aws:SourceArn": "arn:aws:ecs:*:*:cluster/prod"}}),
        &r
    ));
}

#[test]
fn keys_and_operators_are_anded() {
    let r = req()
        .with_key("ecs:cluster", "c")
        .with_key("aws:SourceIp", "10.1.2.3");
    assert!(holds(
        json!({"StringEquals": {"ecs:cluster": "c", "aws:username": "bob"},
                         "IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}),
        &r
    ));
    assert!(!holds(
        json!({"StringEquals": {"ecs:cluster": "c", "aws:username": "alice"}}),
        &r
    ));
    assert!(!holds(
        json!({"StringEquals": {"ecs:cluster": "c"}, "IpAddress": {"aws:SourceIp": "192.168.0.0/16"}}),
        &r
    ));
}

/// reference_policies_condition-single-vs-multi-valued-context-keys.html: ForAllValues and
/// ForAnyValue on aws:TagKeys.
#[test]
fn set_qualifiers() {
    let tags = |keys: &[&str]| req().with_values("aws:TagKeys", keys.iter().copied());
    let all = json!({"ForAllValues:StringEquals": {"aws:TagKeys": ["environment", "cost-center"]}});
    assert!(holds(all.clone(), &tags(&["environment"])));
    assert!(holds(all.clone(), &tags(&["environment", "cost-center"])));
    assert!(!holds(all.clone(), &tags(&["environment", "owner"])));
    assert!(
        holds(all.clone(), &req()),
        "ForAllValues: an absent key holds"
    );
    let any = json!({"ForAnyValue:StringEquals": {"aws:TagKeys": ["environment", "cost-center"]}});
    assert!(holds(any.clone(), &tags(&["owner", "environment"])));
    assert!(!holds(any.clone(), &tags(&["owner"])));
    assert!(!holds(any, &req()), "ForAnyValue: an absent key fails");
    // Negated: ForAllValues:StringNotEquals — no request value is in the list.
    let none = json!({"ForAllValues:StringNotEquals": {"aws:TagKeys": ["secret"]}});
    assert!(holds(none.clone(), &tags(&["a", "b"])));
    assert!(!holds(none, &tags(&["a", "secret"])));
    // ForAnyValue:StringNotEquals — some request value is not in the list.
    let some = json!({"ForAnyValue:StringNotEquals": {"aws:TagKeys": ["a"]}});
    assert!(holds(some.clone(), &tags(&["a", "b"])));
    assert!(!holds(some, &tags(&["a"])));
    assert!(holds(
        json!({"ForAnyValue:StringLike": {"aws:TagKeys": "env*"}}),
        &tags(&["x", "environment"])
    ));
    assert!(holds(
        json!({"ForAllValues:StringLikeIfExists": {"aws:TagKeys": "env*"}}),
        &req()
    ));
    // Without a qualifier, a multi-valued key holds when one value matches.
    assert!(holds(
        json!({"StringEquals": {"aws:TagKeys": "b"}}),
        &tags(&["a", "b"])
    ));
    assert!(!holds(
        json!({"StringNotEquals": {"aws:TagKeys": "b"}}),
        &tags(&["a", "b"])
    ));
}

#[test]
fn variables_in_condition_values() {
    let r = req().with_key("s3:prefix", "home/bob/");
    assert!(holds(
        json!({"StringLike": {"s3:prefix": "home/${aws:username}/*"}}),
        &r
    ));
    assert!(holds(
        json!({"StringEquals": {"s3:prefix": "home/${aws:username}/"}}),
        &r
    ));
    assert!(holds(
        json!({"StringEquals": {"aws:PrincipalTag/team": "${aws:PrincipalTag/team}"}}),
        &r
    ));
    // Unresolvable without default: the condition fails, even a negated one.
    assert!(!holds(
        json!({"StringEquals": {"s3:prefix": "home/${aws:TokenIssueTime}/"}}),
        &r
    ));
    assert!(!holds(
        json!({"StringNotEquals": {"s3:prefix": "${aws:TokenIssueTime}"}}),
        &r
    ));
    assert!(holds(
        json!({"StringEquals": {"s3:prefix": "home/${aws:TokenIssueTime, 'bob'}/"}}),
        &r
    ));
    // In 2008-10-17 a variable is literal text.
    let p = identity(
        json!({"Version": "2008-10-17", "Statement": {"Effect": "Allow", "Action": "ecs:*",
        "Resource": "*", "Condition": {"StringEquals": {"s3:prefix": "home/${aws:username}/"}}}}),
    );
    assert!(!allowed(&r, &PolicySet::new().with_identity(p.clone())));
    let literal = req().with_key("s3:prefix", "home/${aws:username}/");
    assert!(allowed(&literal, &PolicySet::new().with_identity(p)));
    // Variables with ARN operators.
    let r = req().with_key("aws:SourceArn", "arn:aws:iam::111122223333:user/bob");
    assert!(holds(
        json!({"ArnLike": {"aws:SourceArn": "arn:aws:iam::*:user/${aws:username}"}}),
        &r
    ));
}
