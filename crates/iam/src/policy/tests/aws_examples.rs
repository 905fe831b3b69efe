//! ECR and ECS policies as AWS's documentation gives them, decided on the requests Berth's
//! request path will make.

use serde_json::json;

use super::*;

const REPO: &str = "arn:aws:ecr:us-west-2:111122223333:repository/project-a/web";

fn carol() -> RequestPrincipal {
    RequestPrincipal::user(
        OTHER,
        "carol",
        "AIDACAROL",
        "arn:aws:iam::444455556666:user/carol",
    )
}

/// AmazonEC2ContainerRegistryReadOnly (AWS managed policy reference), as attached to a user.
fn ecr_read_only() -> Policy {
    identity(
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": [
        "ecr:GetAuthorizationToken", "ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer",
        "ecr:GetRepositoryPolicy", "ecr:DescribeRepositories", "ecr:ListImages", "ecr:DescribeImages",
        "ecr:BatchGetImage", "ecr:GetLifecyclePolicy", "ecr:GetLifecyclePolicyPreview",
        "ecr:ListTagsForResource", "ecr:DescribeImageScanFindings"], "Resource": "*"}]}),
    )
}

#[test]
fn ecr_read_only_managed_policy() {
    let set = PolicySet::new().with_identity(ecr_read_only());
    for action in [
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
        "ecr:BatchCheckLayerAvailability",
    ] {
        assert!(
            allowed(&Request::new(bob(), action, REPO), &set),
            "{action}"
        );
    }
    assert!(allowed(
        &Request::new(bob(), "ecr:GetAuthorizationToken", "*"),
        &set
    ));
    for action in [
        "ecr:PutImage",
        "ecr:InitiateLayerUpload",
        "ecr:DeleteRepository",
        "ecs:RunTask",
    ] {
        let d = evaluate(&Request::new(bob(), action, REPO), &set);
        assert_eq!(
            d,
            Decision::ImplicitDeny {
                missing: PolicySource::Identity,
                resource: 0
            },
            "{action}"
        );
    }
}

/// ECR user guide, "Private repository policy examples": allow another account to pull.
#[test]
fn ecr_repository_policy_cross_account_pull() {
    let repo_policy = resource_policy(json!({"Version": "2012-10-17", "Statement": [{
        "Sid": "AllowCrossAccountPull", "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::444455556666:root"},
        "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]}]}));
    let with_identity = PolicySet::new()
        .with_identity(ecr_read_only())
        .with_resource(repo_policy.clone());
    let without_identity = PolicySet::new().with_resource(repo_policy);
    let pull = Request::new(carol(), "ecr:BatchGetImage", REPO);
    assert!(allowed(&pull, &with_identity));
    assert_eq!(
        evaluate(&pull, &without_identity),
        Decision::ImplicitDeny {
            missing: PolicySource::Identity,
            resource: 0
        }
    );
    let push = Request::new(carol(), "ecr:PutImage", REPO);
    let all_of_ecr = PolicySet::new()
        .with_identity(one(
            json!({"Effect": "Allow", "Action": "ecr:*", "Resource": "*"}),
        ))
        .with_resource(without_identity.resource.clone().unwrap());
    assert_eq!(
        evaluate(&push, &all_of_ecr),
        Decision::ImplicitDeny {
            missing: PolicySource::Resource,
            resource: 0
        }
    );
    assert_eq!(
        evaluate(&push, &all_of_ecr).message(&push).unwrap(),
        "User: arn:aws:iam::444455556666:user/carol is not authorized to perform: ecr:PutImage on \
         resource: arn:aws:ecr:us-west-2:111122223333:repository/project-a/web because no \
         resource-based policy allows the ecr:PutImage action"
    );
}

/// ECR user guide: deny everyone but one user (a Deny with NotPrincipal is discouraged there,
/// so with a condition on aws:PrincipalArn).
#[test]
fn ecr_repository_policy_deny_all_but_one() {
    let repo_policy = resource_policy(json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "Principal": "*", "Action": "ecr:*",
        "Condition": {"ArnNotEquals": {"aws:PrincipalArn": "arn:aws:iam::111122223333:user/bob"}}}]}));
    let set = PolicySet::new()
        .with_identity(one(
            json!({"Effect": "Allow", "Action": "ecr:*", "Resource": "*"}),
        ))
        .with_resource(repo_policy);
    assert!(allowed(&Request::new(bob(), "ecr:PutImage", REPO), &set));
    let alice = RequestPrincipal::user(
        ACCOUNT,
        "alice",
        "AIDAALICE",
        "arn:aws:iam::111122223333:user/alice",
    );
    let d = evaluate(&Request::new(alice, "ecr:PutImage", REPO), &set);
    assert_eq!(
        d.reason("ecr:PutImage").unwrap(),
        "with an explicit deny in a resource-based policy"
    );
}

/// ECS developer guide, identity-based policy examples: run tasks only on one cluster
/// (`ecs:cluster` condition key), and only task definitions of one family.
#[test]
fn ecs_run_task_on_one_cluster() {
    let p = one(
        json!({"Effect": "Allow", "Action": ["ecs:RunTask", "ecs:StartTask"],
        "Resource": "arn:aws:ecs:us-east-1:111122223333:task-definition/web:*",
        "Condition": {"ArnEquals": {"ecs:cluster": "arn:aws:ecs:us-east-1:111122223333:cluster/default"}}}),
    );
    let set = PolicySet::new().with_identity(p);
    let run = |cluster: &str, td: &str| {
        Request::new(
            bob(),
            "ecs:RunTask",
            &format!("arn:aws:ecs:us-east-1:111122223333:task-definition/{td}"),
        )
        .with_key(
            "ecs:cluster",
            &format!("arn:aws:ecs:us-east-1:111122223333:cluster/{cluster}"),
        )
    };
    assert!(allowed(&run("default", "web:3"), &set));
    assert!(!allowed(&run("prod", "web:3"), &set));
    assert!(!allowed(&run("default", "batch:1"), &set));
}

/// ECS developer guide, "Task IAM role": the trust policy for ecs-tasks.amazonaws.com with the
/// confused-deputy conditions aws:SourceAccount and aws:SourceArn.
#[test]
fn ecs_task_role_trust_policy() {
    let trust = resource_policy(json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": ["ecs-tasks.amazonaws.com"]},
        "Action": "sts:AssumeRole",
        "Condition": {
            "ArnLike": {"aws:SourceArn": "arn:aws:ecs:us-west-2:111122223333:*"},
            "StringEquals": {"aws:SourceAccount": "111122223333"}}}]}));
    let set = PolicySet::new().with_resource(trust);
    let ecs_tasks = RequestPrincipal {
        kind: PrincipalKind::Service,
        arn: "ecs-tasks.amazonaws.com".into(),
        principal_arn: "ecs-tasks.amazonaws.com".into(),
        account: String::new(),
        user_id: String::new(),
        user_name: None,
        tags: vec![],
    };
    let assume = |principal: RequestPrincipal, account: &str| {
        Request::new(
            principal,
            "sts:AssumeRole",
            "arn:aws:iam::111122223333:role/ecsTaskRole",
        )
        .with_key("aws:SourceAccount", account)
        .with_key(
            "aws:SourceArn",
            &format!("arn:aws:ecs:us-west-2:{account}:task/c/0123"),
        )
    };
    assert!(allowed(&assume(ecs_tasks.clone(), ACCOUNT), &set));
    assert!(!allowed(&assume(ecs_tasks, OTHER), &set), "confused deputy");
    assert!(
        !allowed(&assume(bob(), ACCOUNT), &set),
        "a user is not the service"
    );
}
