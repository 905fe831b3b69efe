//! Parsing and validation: IAM's MalformedPolicyDocument messages and size quotas.

use serde_json::json;

use super::*;

fn refusal(doc: serde_json::Value, kind: PolicyType) -> String {
    match Policy::from_json(&doc, kind) {
        Err(PolicyError::MalformedPolicyDocument(m)) => m,
        other => panic!("expected MalformedPolicyDocument, got {other:?}"),
    }
}

fn stmt(s: serde_json::Value) -> serde_json::Value {
    json!({"Version": "2012-10-17", "Statement": [s]})
}

#[test]
fn statement_object_or_array_and_versions() {
    let one = identity(json!({"Version": "2012-10-17", "Statement":
        {"Effect": "Allow", "Action": "ecs:*", "Resource": "*"}}));
    assert_eq!(one.statements().len(), 1);
    assert_eq!(one.version(), PolicyVersion::V2012_10_17);
    let two = identity(json!({"Version": "2008-10-17", "Id": "x", "Statement": [
        {"Sid": "A", "Effect": "Allow", "Action": ["ecs:RunTask", "ecs:StopTask"], "Resource": "*"},
        {"Sid": "B", "Effect": "Deny", "NotAction": "ecs:*", "NotResource": ["arn:aws:ecs:*:*:cluster/x"]}]}));
    assert_eq!(two.statements().len(), 2);
    assert_eq!(two.version(), PolicyVersion::V2008_10_17);
    assert_eq!(two.statements()[1].sid(), Some("B"));
    assert_eq!(two.statements()[1].effect(), Effect::Deny);
    assert_eq!(two.id(), Some("x"));
    let none = identity(json!({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}));
    assert_eq!(none.version(), PolicyVersion::V2008_10_17);
}

#[test]
fn malformed_documents_in_iams_words() {
    let id = PolicyType::Identity;
    assert_eq!(
        Policy::parse("{not json", id),
        Err(PolicyError::MalformedPolicyDocument(
            "Syntax errors in policy.".into()
        ))
    );
    assert_eq!(
        refusal(
            stmt(json!({"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Principal": "*"})),
            id
        ),
        "Policy document should not specify a principal."
    );
    assert_eq!(
        refusal(stmt(json!({"Effect": "Allow", "Resource": "*"})), id),
        "Missing required field Action"
    );
    assert_eq!(
        refusal(stmt(json!({"Action": "ecs:*", "Resource": "*"})), id),
        "Missing required field Effect"
    );
    assert_eq!(
        refusal(
            stmt(json!({"Effect": "Allowed", "Action": "ecs:*", "Resource": "*"})),
            id
        ),
        "The policy failed legacy parsing"
    );
    assert_eq!(
        refusal(stmt(json!({"Effect": "Allow", "Action": "ecs:*"})), id),
        "Policy statement must contain resources."
    );
    assert_eq!(
        refusal(
            stmt(json!({"Effect": "Allow", "Action": [], "Resource": "*"})),
            id
        ),
        "Policy statement must contain actions."
    );
    assert_eq!(
        refusal(
            stmt(json!({"Effect": "Allow", "Action": "RunTask", "Resource": "*"})),
            id
        ),
        "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."
    );
    assert_eq!(
        refusal(
            stmt(json!({"Effect": "Allow", "Action": "ecs:*", "Resource": "cluster/x"})),
            id
        ),
        "Resource cluster/x must be in ARN format or \"*\"."
    );
    assert_eq!(
        refusal(
            stmt(
                json!({"Effect": "Allow", "Action": "ecs:*", "Resource": "*",
                "Condition": {"StringEqualz": {"aws:username": "bob"}}})
            ),
            id
        ),
        "Invalid Condition type : StringEqualz"
    );
    assert_eq!(
        refusal(
            json!({"Version": "2012-10-17", "Statement": [
            {"Sid": "A", "Effect": "Allow", "Action": "ecs:*", "Resource": "*"},
            {"Sid": "A", "Effect": "Deny", "Action": "ecs:*", "Resource": "*"}]}),
            id
        ),
        "Statement IDs (SID) in a single policy must be unique."
    );
    assert!(
        refusal(
            stmt(json!({"Sid": "not ok", "Effect": "Allow", "Action": "ecs:*", "Resource": "*"})),
            id
        )
        .starts_with("Statement IDs (SID) must be alpha-numeric.")
    );
    assert_eq!(
        refusal(json!({"Version": "2012-10-18", "Statement": []}), id),
        "The policy failed legacy parsing"
    );
    assert_eq!(
        refusal(json!({"Version": "2012-10-17"}), id),
        "Missing required field Statement"
    );
    assert_eq!(
        refusal(
            stmt(json!({"Effect": "Allow", "Action": "ecs:*", "Resource": "*", "Actions": "x"})),
            id
        ),
        "Syntax errors in policy."
    );
    assert_eq!(
        refusal(
            stmt(json!({"Effect": "Allow", "Action": "ecr:*"})),
            PolicyType::Resource
        ),
        "Missing required field Principal"
    );
    assert_eq!(
        refusal(
            stmt(json!({"Effect": "Allow", "Action": "ecr:*", "Principal": {"AWS": "bob"}})),
            PolicyType::Resource
        ),
        "Invalid principal in policy"
    );
}

#[test]
fn resource_policy_principal_forms() {
    for principal in [
        json!("*"),
        json!({"AWS": "*"}),
        json!({"AWS": "111122223333"}),
        json!({"AWS": ["arn:aws:iam::111122223333:root", "arn:aws:iam::111122223333:user/bob"]}),
        json!({"Service": "ecs-tasks.amazonaws.com"}),
        json!({"Federated": "cognito-identity.amazonaws.com"}),
    ] {
        let doc =
            stmt(json!({"Effect": "Allow", "Action": "ecr:BatchGetImage", "Principal": principal}));
        assert!(
            Policy::from_json(&doc, PolicyType::Resource).is_ok(),
            "{doc}"
        );
    }
}

#[test]
fn size_quotas() {
    let doc = "{ \"Version\": \"2012-10-17\" }";
    assert_eq!(policy_size(doc), 24);
    assert!(check_policy_size(6_144, PolicySizeQuota::Managed, "").is_ok());
    assert_eq!(
        check_policy_size(6_145, PolicySizeQuota::Managed, ""),
        Err(PolicyError::LimitExceeded(
            "Cannot exceed quota for PolicySize: 6144".into()
        ))
    );
    assert_eq!(
        check_policy_size(2_049, PolicySizeQuota::InlineUser, "bob"),
        Err(PolicyError::LimitExceeded(
            "Maximum policy size of 2048 bytes exceeded for user bob".into()
        ))
    );
    assert!(check_policy_size(10_240, PolicySizeQuota::InlineRole, "r").is_ok());
    assert!(check_policy_size(5_121, PolicySizeQuota::InlineGroup, "g").is_err());
}

#[test]
fn a_policy_knows_which_tag_keys_it_names() {
    let plain = Policy::parse(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
        PolicyType::Identity,
    )
    .unwrap();
    assert_eq!(plain.tag_keys(), TagKeysNamed::default());
    let tags = Policy::parse(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecs:*","Resource":"*",
            "Condition":{"StringEquals":{"ecs:ResourceTag/team":"${aws:PrincipalTag/team}"}}}]}"#,
        PolicyType::Identity,
    )
    .unwrap();
    assert_eq!(
        tags.tag_keys(),
        TagKeysNamed {
            principal_tag: true,
            resource_tag: true
        }
    );
    let set = PolicySet::new().with_identity(plain).with_session(tags);
    assert!(set.tag_keys().principal_tag && set.tag_keys().resource_tag);
}
