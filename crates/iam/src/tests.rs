use std::sync::Arc;

use berth_store::MemStore;

use crate::*;

const ACCOUNT: &str = "000000000000";

fn iam() -> Iam {
    Iam::new(Arc::new(MemStore::new()))
}

fn alice(iam: &Iam) -> User {
    iam.create_user(
        ACCOUNT,
        CreateUser {
            user_name: "alice".into(),
            ..CreateUser::default()
        },
    )
    .unwrap()
}

#[test]
fn users_are_unique_by_name_whatever_its_case() {
    let iam = iam();
    let user = alice(&iam);
    assert_eq!(user.arn, "arn:aws:iam::000000000000:user/alice");
    assert!(user.user_id.starts_with("AIDA") && user.user_id.len() == 21);
    let again = iam.create_user(
        ACCOUNT,
        CreateUser {
            user_name: "ALICE".into(),
            ..CreateUser::default()
        },
    );
    assert!(
        matches!(again, Err(IamError::EntityAlreadyExists(m)) if m == "User with name ALICE already exists.")
    );
    assert_eq!(iam.get_user(ACCOUNT, "Alice").unwrap().user_name, "alice");
    assert!(matches!(
        iam.get_user(ACCOUNT, "bob"),
        Err(IamError::NoSuchEntity(_))
    ));
}

#[test]
fn names_and_paths_are_checked() {
    let iam = iam();
    for (name, path) in [("bad name", None), ("ok", Some("no-slashes"))] {
        let made = iam.create_user(
            ACCOUNT,
            CreateUser {
                user_name: name.into(),
                path: path.map(str::to_string),
                ..CreateUser::default()
            },
        );
        assert!(
            matches!(made, Err(IamError::Validation(_))),
            "{name} {path:?}"
        );
    }
    let user = iam
        .create_user(
            ACCOUNT,
            CreateUser {
                user_name: "ci".into(),
                path: Some("/deploy/".into()),
                ..CreateUser::default()
            },
        )
        .unwrap();
    assert_eq!(user.arn, "arn:aws:iam::000000000000:user/deploy/ci");
    assert_eq!(iam.list_users(ACCOUNT, Some("/deploy/")).unwrap().len(), 1);
    assert_eq!(iam.list_users(ACCOUNT, Some("/other/")).unwrap().len(), 0);
}

#[test]
fn access_keys_sign_while_active_and_block_the_users_deletion() {
    let iam = iam();
    let user = alice(&iam);
    let key = iam.create_access_key(ACCOUNT, "alice").unwrap();
    assert!(key.access_key_id.starts_with("AKIA") && key.access_key_id.len() == 20);
    assert_eq!(key.secret_access_key.len(), 40);
    let (secret, principal) = iam.signing_key(&key.access_key_id).unwrap().unwrap();
    assert_eq!(secret, key.secret_access_key);
    assert_eq!(principal.arn(), user.arn);
    assert_eq!(principal.user_id(), user.user_id);

    iam.create_access_key(ACCOUNT, "alice").unwrap();
    assert!(matches!(
        iam.create_access_key(ACCOUNT, "alice"),
        Err(IamError::LimitExceeded(_))
    ));
    assert!(matches!(
        iam.delete_user(ACCOUNT, "alice"),
        Err(IamError::DeleteConflict(_))
    ));

    iam.update_access_key(
        ACCOUNT,
        "alice",
        &key.access_key_id,
        AccessKeyStatus::Inactive,
    )
    .unwrap();
    assert!(iam.signing_key(&key.access_key_id).unwrap().is_none());
    for k in iam.list_access_keys(ACCOUNT, "alice").unwrap() {
        iam.delete_access_key(ACCOUNT, "alice", &k.access_key_id)
            .unwrap();
    }
    assert!(iam.signing_key(&key.access_key_id).unwrap().is_none());
    iam.delete_user(ACCOUNT, "alice").unwrap();
    assert!(iam.list_users(ACCOUNT, None).unwrap().is_empty());
}

const DOC: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:BatchGetImage","Resource":"*"}]}"#;

#[test]
fn managed_policies_keep_versions_and_count_attachments() {
    let iam = iam();
    let user = alice(&iam);
    let policy = iam
        .create_policy(
            ACCOUNT,
            CreatePolicy {
                policy_name: "pull".into(),
                document: DOC.into(),
                ..CreatePolicy::default()
            },
        )
        .unwrap();
    assert_eq!(policy.arn, "arn:aws:iam::000000000000:policy/pull");
    assert!(matches!(
        iam.create_policy(
            ACCOUNT,
            CreatePolicy {
                policy_name: "x".into(),
                document: "{".into(),
                ..CreatePolicy::default()
            }
        ),
        Err(IamError::MalformedPolicyDocument(_))
    ));
    let v2 = iam
        .create_policy_version(ACCOUNT, &policy.arn, DOC, true)
        .unwrap();
    assert_eq!(v2.version_id, "v2");
    assert_eq!(
        iam.get_policy(ACCOUNT, &policy.arn)
            .unwrap()
            .default_version_id,
        "v2"
    );
    assert!(matches!(
        iam.delete_policy_version(ACCOUNT, &policy.arn, "v2"),
        Err(IamError::DeleteConflict(_))
    ));

    iam.attach_policy(ACCOUNT, Holder::User("alice"), &policy.arn)
        .unwrap();
    let aws = "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly";
    iam.attach_policy(ACCOUNT, Holder::User("alice"), aws)
        .unwrap();
    assert_eq!(
        iam.get_policy(ACCOUNT, &policy.arn)
            .unwrap()
            .attachment_count,
        1
    );
    assert!(matches!(
        iam.delete_policy(ACCOUNT, &policy.arn),
        Err(IamError::DeleteConflict(_))
    ));
    assert!(matches!(
        iam.attach_policy(
            ACCOUNT,
            Holder::User("alice"),
            "arn:aws:iam::000000000000:policy/none"
        ),
        Err(IamError::NoSuchEntity(_))
    ));
    iam.put_inline_policy(ACCOUNT, Holder::User("alice"), "inline", DOC)
        .unwrap();
    let principal = Principal::User {
        account: ACCOUNT.into(),
        name: "alice".into(),
        id: user.user_id.clone(),
        arn: user.arn.clone(),
    };
    assert_eq!(iam.identity_policies(&principal).unwrap().len(), 3);
    // A principal of another user once called alice gets nothing from this one.
    let stale = Principal::User {
        account: ACCOUNT.into(),
        name: "alice".into(),
        id: "AIDAOLDALICE000000000".into(),
        arn: user.arn.clone(),
    };
    assert!(iam.identity_policies(&stale).unwrap().is_empty());
    assert!(matches!(
        iam.delete_user(ACCOUNT, "alice"),
        Err(IamError::DeleteConflict(_))
    ));

    iam.detach_policy(ACCOUNT, Holder::User("alice"), &policy.arn)
        .unwrap();
    iam.detach_policy(ACCOUNT, Holder::User("alice"), aws)
        .unwrap();
    iam.delete_inline_policy(ACCOUNT, Holder::User("alice"), "inline")
        .unwrap();
    assert_eq!(
        iam.get_policy(ACCOUNT, &policy.arn)
            .unwrap()
            .attachment_count,
        0
    );
    iam.delete_policy_version(ACCOUNT, &policy.arn, "v1")
        .unwrap();
    iam.delete_policy(ACCOUNT, &policy.arn).unwrap();
    iam.delete_user(ACCOUNT, "alice").unwrap();
    let listed = iam
        .list_policies(ACCOUNT, PolicyScope::All, false, None)
        .unwrap();
    assert!(listed.iter().all(|p| p.is_aws_managed()));
}

#[test]
fn every_catalogued_aws_policy_is_a_policy() {
    for p in crate::policies::aws_policies() {
        crate::policies::check_document(p.default_document(), 6144).unwrap();
        assert_eq!(
            crate::policies::aws_policy(&p.arn).unwrap().policy_name,
            p.policy_name
        );
        assert_eq!(p.policy_id.len(), 21, "{}", p.policy_id);
    }
    assert!(
        crate::policies::aws_policy(
            "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
        )
        .is_some()
    );
}

#[test]
fn roles_hold_a_trust_policy_and_their_own_policies() {
    let iam = iam();
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let role = iam
        .create_role(
            ACCOUNT,
            CreateRole {
                role_name: "task".into(),
                assume_role_policy_document: trust.into(),
                ..CreateRole::default()
            },
        )
        .unwrap();
    assert_eq!(role.arn, "arn:aws:iam::000000000000:role/task");
    assert!(role.role_id.starts_with("AROA"));
    assert_eq!(role.max_session_duration, 3600);
    assert!(matches!(
        iam.update_role(ACCOUNT, "task", None, Some(60)),
        Err(IamError::Validation(_))
    ));
    iam.update_role(ACCOUNT, "task", Some("runs tasks"), Some(7200))
        .unwrap();
    let aws = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy";
    iam.attach_policy(ACCOUNT, Holder::Role("task"), aws)
        .unwrap();
    iam.put_inline_policy(ACCOUNT, Holder::Role("task"), "logs", DOC)
        .unwrap();
    assert_eq!(
        iam.list_attached_policies(ACCOUNT, Holder::Role("task"))
            .unwrap()[0]
            .1,
        aws
    );
    assert!(matches!(
        iam.delete_role(ACCOUNT, "task"),
        Err(IamError::DeleteConflict(_))
    ));
    iam.detach_policy(ACCOUNT, Holder::Role("task"), aws)
        .unwrap();
    iam.delete_inline_policy(ACCOUNT, Holder::Role("task"), "logs")
        .unwrap();
    iam.delete_role(ACCOUNT, "task").unwrap();
    assert!(matches!(
        iam.get_role(ACCOUNT, "task"),
        Err(IamError::NoSuchEntity(_))
    ));
}

#[test]
fn a_users_groups_give_it_their_policies_until_it_leaves() {
    let iam = iam();
    let user = alice(&iam);
    let principal = Principal::User {
        account: ACCOUNT.into(),
        name: user.user_name.clone(),
        id: user.user_id.clone(),
        arn: user.arn.clone(),
    };
    iam.create_group(ACCOUNT, "ops", None).unwrap();
    let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecs:ListClusters","Resource":"*"}]}"#;
    iam.put_inline_policy(ACCOUNT, Holder::Group("ops"), "p", doc)
        .unwrap();
    assert!(iam.identity_policies(&principal).unwrap().is_empty());
    iam.add_user_to_group(ACCOUNT, "OPS", "alice").unwrap();
    // Adding again changes nothing.
    iam.add_user_to_group(ACCOUNT, "ops", "alice").unwrap();
    assert_eq!(iam.identity_policies(&principal).unwrap(), [doc]);
    assert!(matches!(
        iam.delete_user(ACCOUNT, "alice"),
        Err(IamError::DeleteConflict(_))
    ));
    // Renamed, the group is still the user's.
    iam.update_group(ACCOUNT, "ops", Some("platform"), None)
        .unwrap();
    assert_eq!(iam.identity_policies(&principal).unwrap(), [doc]);
    assert_eq!(
        iam.get_group(ACCOUNT, "platform").unwrap().members,
        ["alice"]
    );
    iam.remove_user_from_group(ACCOUNT, "platform", "alice")
        .unwrap();
    assert!(iam.identity_policies(&principal).unwrap().is_empty());
    assert!(matches!(
        iam.remove_user_from_group(ACCOUNT, "platform", "alice"),
        Err(IamError::NoSuchEntity(_))
    ));
    iam.delete_user(ACCOUNT, "alice").unwrap();
}

#[test]
fn service_linked_roles_are_only_iams_to_change() {
    let iam = iam();
    let role = iam
        .create_service_linked_role(ACCOUNT, "ecs.amazonaws.com", None, None)
        .unwrap();
    assert_eq!(
        Some(role.arn.clone()),
        service_linked_role_arn(ACCOUNT, "ecs.amazonaws.com", None)
    );
    for policy in &role.attached_policies {
        assert!(crate::policies::aws_policy(policy).is_some(), "{policy}");
    }
    assert!(matches!(
        iam.delete_role(ACCOUNT, &role.role_name),
        Err(IamError::UnmodifiableEntity(_))
    ));
    assert!(matches!(
        iam.create_service_linked_role(ACCOUNT, "ecs.amazonaws.com", None, None),
        Err(IamError::InvalidInput(_))
    ));
    let task = iam
        .delete_service_linked_role(ACCOUNT, &role.role_name)
        .unwrap();
    assert_eq!(
        iam.service_linked_role_deletion_status(ACCOUNT, &task)
            .unwrap()
            .status,
        "SUCCEEDED"
    );
    assert!(matches!(
        iam.service_linked_role_deletion_status(ACCOUNT, "nonsense"),
        Err(IamError::InvalidInput(_))
    ));
    assert!(matches!(
        iam.service_linked_role_deletion_status(
            ACCOUNT,
            "task/aws-service-role/ecs.amazonaws.com/AWSServiceRoleForECS/other"
        ),
        Err(IamError::NoSuchEntity(_))
    ));
}
