//! IAM's breadth (issue 18), through the real `aws` CLI: groups and the policies they give
//! their members, instance profiles, service-linked roles, tags of users and roles,
//! ListEntitiesForPolicy and GetAccountAuthorizationDetails, with IAM's errors, and the
//! paging the CLI does with `Marker` / `IsTruncated` (`--page-size` makes it page).

use berth_e2e::{BerthServer, assert_aws_error, ok_json, stderr_of};
use serde_json::Value;

/// A command that prints nothing on success (IAM's actions without a result).
#[track_caller]
fn ok_empty(out: &std::process::Output) {
    assert!(out.status.success(), "{}", stderr_of(out));
}

/// An IAM error with its code and AWS's message.
#[track_caller]
fn assert_iam_error(out: &std::process::Output, code: &str, message: &str) {
    assert_aws_error(out, code);
    assert!(stderr_of(out).contains(message), "{}", stderr_of(out));
}

fn access_key(s: &BerthServer, user: &str) -> (String, String) {
    let key = ok_json(&s.aws(&["iam", "create-access-key", "--user-name", user]));
    let field = |f: &str| key["AccessKey"][f].as_str().unwrap().to_owned();
    (field("AccessKeyId"), field("SecretAccessKey"))
}

fn names(list: &Value, field: &str) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|v| v[field].as_str().unwrap().to_owned())
        .collect()
}

const LIST_CLUSTERS: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecs:ListClusters","Resource":"*"}]}"#;

/// A user with no policy of its own is allowed what its group's policies allow, and loses
/// it when it leaves the group; groups keep IAM's conflicts, quotas and messages.
#[test]
fn groups_give_their_policies_to_their_members() {
    let s = BerthServer::start();
    let made = ok_json(&s.aws(&[
        "iam",
        "create-group",
        "--group-name",
        "deployers",
        "--path",
        "/team/",
    ]));
    assert_eq!(
        made["Group"]["Arn"],
        "arn:aws:iam::000000000000:group/team/deployers"
    );
    assert!(
        made["Group"]["GroupId"]
            .as_str()
            .unwrap()
            .starts_with("AGPA"),
        "{made}"
    );
    assert_iam_error(
        &s.aws(&["iam", "create-group", "--group-name", "DEPLOYERS"]),
        "EntityAlreadyExists",
        "Group with name DEPLOYERS already exists.",
    );
    for g in ["auditors", "builders"] {
        ok_json(&s.aws(&["iam", "create-group", "--group-name", g]));
    }
    // Pages of one group each, followed through their markers.
    let all = ok_json(&s.aws(&["iam", "list-groups", "--page-size", "1"]));
    assert_eq!(
        names(&all["Groups"], "GroupName"),
        ["auditors", "builders", "deployers"]
    );
    let team = ok_json(&s.aws(&["iam", "list-groups", "--path-prefix", "/team/"]));
    assert_eq!(names(&team["Groups"], "GroupName"), ["deployers"]);

    ok_json(&s.aws(&["iam", "create-user", "--user-name", "dev"]));
    let (id, secret) = access_key(&s, "dev");
    let as_dev = |args: &[&str]| s.aws_with("us-east-1", &id, &secret, args);
    assert_aws_error(&as_dev(&["ecs", "list-clusters"]), "AccessDeniedException");

    // The group's inline policy reaches its member.
    ok_empty(&s.aws(&[
        "iam",
        "put-group-policy",
        "--group-name",
        "deployers",
        "--policy-name",
        "clusters",
        "--policy-document",
        LIST_CLUSTERS,
    ]));
    ok_empty(&s.aws(&[
        "iam",
        "add-user-to-group",
        "--group-name",
        "deployers",
        "--user-name",
        "dev",
    ]));
    ok_json(&as_dev(&["ecs", "list-clusters"]));
    let group = ok_json(&s.aws(&["iam", "get-group", "--group-name", "deployers"]));
    assert_eq!(names(&group["Users"], "UserName"), ["dev"]);
    assert_eq!(group["Group"]["GroupName"], "deployers");
    let of_user = ok_json(&s.aws(&["iam", "list-groups-for-user", "--user-name", "dev"]));
    assert_eq!(names(&of_user["Groups"], "GroupName"), ["deployers"]);
    let inline = ok_json(&s.aws(&[
        "iam",
        "get-group-policy",
        "--group-name",
        "deployers",
        "--policy-name",
        "clusters",
    ]));
    assert_eq!(inline["GroupName"], "deployers");
    assert_eq!(
        inline["PolicyDocument"]["Statement"][0]["Action"],
        "ecs:ListClusters"
    );
    let listed = ok_json(&s.aws(&["iam", "list-group-policies", "--group-name", "deployers"]));
    assert_eq!(listed["PolicyNames"], serde_json::json!(["clusters"]));

    // A member cannot be deleted, nor a group with members or policies.
    ok_json(&s.aws(&["iam", "create-user", "--user-name", "idle"]));
    let membership = |action: &str| {
        ok_empty(&s.aws(&[
            "iam",
            action,
            "--group-name",
            "auditors",
            "--user-name",
            "idle",
        ]));
    };
    membership("add-user-to-group");
    assert_iam_error(
        &s.aws(&["iam", "delete-user", "--user-name", "idle"]),
        "DeleteConflict",
        "Cannot delete entity, must remove users from group first.",
    );
    membership("remove-user-from-group");
    ok_empty(&s.aws(&["iam", "delete-user", "--user-name", "idle"]));
    assert_iam_error(
        &s.aws(&["iam", "delete-group", "--group-name", "deployers"]),
        "DeleteConflict",
        "Cannot delete entity, must remove users from group first.",
    );

    // Leaving the group takes the permission away.
    ok_empty(&s.aws(&[
        "iam",
        "remove-user-from-group",
        "--group-name",
        "deployers",
        "--user-name",
        "dev",
    ]));
    assert_aws_error(&as_dev(&["ecs", "list-clusters"]), "AccessDeniedException");
    assert_iam_error(
        &s.aws(&["iam", "delete-group", "--group-name", "deployers"]),
        "DeleteConflict",
        "Cannot delete entity, must delete policies first.",
    );

    // A managed policy attached to the group reaches its members too; the policy cannot be
    // deleted while attached, and counts the group.
    let policy = ok_json(&s.aws(&[
        "iam",
        "create-policy",
        "--policy-name",
        "list-clusters",
        "--policy-document",
        LIST_CLUSTERS,
    ]));
    let arn = policy["Policy"]["Arn"].as_str().unwrap().to_owned();
    ok_empty(&s.aws(&[
        "iam",
        "attach-group-policy",
        "--group-name",
        "builders",
        "--policy-arn",
        &arn,
    ]));
    let got = ok_json(&s.aws(&["iam", "get-policy", "--policy-arn", &arn]));
    assert_eq!(got["Policy"]["AttachmentCount"], 1, "{got}");
    assert_iam_error(
        &s.aws(&["iam", "delete-policy", "--policy-arn", &arn]),
        "DeleteConflict",
        "Cannot delete a policy attached to entities.",
    );
    ok_empty(&s.aws(&[
        "iam",
        "add-user-to-group",
        "--group-name",
        "builders",
        "--user-name",
        "dev",
    ]));
    ok_json(&as_dev(&["ecs", "list-clusters"]));
    let attached = ok_json(&s.aws(&[
        "iam",
        "list-attached-group-policies",
        "--group-name",
        "builders",
    ]));
    assert_eq!(
        names(&attached["AttachedPolicies"], "PolicyName"),
        ["list-clusters"]
    );

    // Renamed, the group keeps its members, who keep its policies.
    ok_empty(&s.aws(&[
        "iam",
        "update-group",
        "--group-name",
        "builders",
        "--new-group-name",
        "makers",
        "--new-path",
        "/team/",
    ]));
    let of_user = ok_json(&s.aws(&["iam", "list-groups-for-user", "--user-name", "dev"]));
    assert_eq!(names(&of_user["Groups"], "GroupName"), ["makers"]);
    assert_eq!(
        of_user["Groups"][0]["Arn"],
        "arn:aws:iam::000000000000:group/team/makers"
    );
    ok_json(&as_dev(&["ecs", "list-clusters"]));
    assert_iam_error(
        &s.aws(&["iam", "get-group", "--group-name", "builders"]),
        "NoSuchEntity",
        "The group with name builders cannot be found.",
    );

    // Group actions are authorized on the group's ARN.
    ok_empty(&s.aws(&[
        "iam",
        "put-user-policy",
        "--user-name",
        "dev",
        "--policy-name",
        "team-groups",
        "--policy-document",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:GetGroup","Resource":"arn:aws:iam::000000000000:group/team/*"}]}"#,
    ]));
    ok_json(&as_dev(&["iam", "get-group", "--group-name", "makers"]));
    let refused = as_dev(&["iam", "get-group", "--group-name", "auditors"]);
    assert_iam_error(
        &refused,
        "AccessDenied",
        "is not authorized to perform: iam:GetGroup on resource: arn:aws:iam::000000000000:group/auditors",
    );

    // Emptied, groups and the user can go.
    ok_empty(&s.aws(&[
        "iam",
        "remove-user-from-group",
        "--group-name",
        "makers",
        "--user-name",
        "dev",
    ]));
    ok_empty(&s.aws(&[
        "iam",
        "detach-group-policy",
        "--group-name",
        "makers",
        "--policy-arn",
        &arn,
    ]));
    ok_empty(&s.aws(&["iam", "delete-group", "--group-name", "makers"]));
    ok_empty(&s.aws(&["iam", "delete-policy", "--policy-arn", &arn]));
    ok_empty(&s.aws(&[
        "iam",
        "delete-group-policy",
        "--group-name",
        "deployers",
        "--policy-name",
        "clusters",
    ]));
    ok_empty(&s.aws(&["iam", "delete-group", "--group-name", "deployers"]));
}

const EC2_TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

/// Instance profiles hold one role, which cannot be deleted while held; profiles, users and
/// roles carry tags.
#[test]
fn instance_profiles_hold_one_role_and_entities_carry_tags() {
    let s = BerthServer::start();
    for role in ["ecsInstanceRole", "other"] {
        ok_json(&s.aws(&[
            "iam",
            "create-role",
            "--role-name",
            role,
            "--assume-role-policy-document",
            EC2_TRUST,
        ]));
    }
    let made = ok_json(&s.aws(&[
        "iam",
        "create-instance-profile",
        "--instance-profile-name",
        "ecs-hosts",
        "--path",
        "/ecs/",
        "--tags",
        "Key=team,Value=platform",
    ]));
    let profile = &made["InstanceProfile"];
    assert_eq!(
        profile["Arn"],
        "arn:aws:iam::000000000000:instance-profile/ecs/ecs-hosts"
    );
    assert!(
        profile["InstanceProfileId"]
            .as_str()
            .unwrap()
            .starts_with("AIPA"),
        "{made}"
    );
    assert_eq!(profile["Roles"], serde_json::json!([]));
    assert_iam_error(
        &s.aws(&[
            "iam",
            "create-instance-profile",
            "--instance-profile-name",
            "ecs-hosts",
        ]),
        "EntityAlreadyExists",
        "Instance Profile ecs-hosts already exists.",
    );
    let add = |role: &str| {
        s.aws(&[
            "iam",
            "add-role-to-instance-profile",
            "--instance-profile-name",
            "ecs-hosts",
            "--role-name",
            role,
        ])
    };
    ok_empty(&add("ecsInstanceRole"));
    assert_iam_error(
        &add("other"),
        "LimitExceeded",
        "Cannot exceed quota for InstanceSessionsPerInstanceProfile: 1",
    );
    assert_iam_error(&add("ghost"), "NoSuchEntity", "ghost cannot be found");
    let got = ok_json(&s.aws(&[
        "iam",
        "get-instance-profile",
        "--instance-profile-name",
        "ecs-hosts",
    ]));
    assert_eq!(
        names(&got["InstanceProfile"]["Roles"], "RoleName"),
        ["ecsInstanceRole"]
    );
    assert_eq!(
        got["InstanceProfile"]["Roles"][0]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
            ["Service"],
        "ec2.amazonaws.com"
    );
    let for_role = ok_json(&s.aws(&[
        "iam",
        "list-instance-profiles-for-role",
        "--role-name",
        "ecsInstanceRole",
    ]));
    assert_eq!(
        names(&for_role["InstanceProfiles"], "InstanceProfileName"),
        ["ecs-hosts"]
    );
    let none = ok_json(&s.aws(&[
        "iam",
        "list-instance-profiles-for-role",
        "--role-name",
        "other",
    ]));
    assert_eq!(none["InstanceProfiles"], serde_json::json!([]));
    ok_json(&s.aws(&[
        "iam",
        "create-instance-profile",
        "--instance-profile-name",
        "spare",
    ]));
    let all = ok_json(&s.aws(&["iam", "list-instance-profiles", "--page-size", "1"]));
    assert_eq!(
        names(&all["InstanceProfiles"], "InstanceProfileName"),
        ["ecs-hosts", "spare"]
    );
    let under = ok_json(&s.aws(&["iam", "list-instance-profiles", "--path-prefix", "/ecs/"]));
    assert_eq!(
        names(&under["InstanceProfiles"], "InstanceProfileName"),
        ["ecs-hosts"]
    );
    assert_iam_error(
        &s.aws(&["iam", "delete-role", "--role-name", "ecsInstanceRole"]),
        "DeleteConflict",
        "Cannot delete entity, must remove roles from instance profile first.",
    );
    assert_iam_error(
        &s.aws(&[
            "iam",
            "delete-instance-profile",
            "--instance-profile-name",
            "ecs-hosts",
        ]),
        "DeleteConflict",
        "Cannot delete entity, must remove roles from instance profile first.",
    );

    // Tags of the profile, a role and a user.
    ok_empty(&s.aws(&[
        "iam",
        "tag-instance-profile",
        "--instance-profile-name",
        "ecs-hosts",
        "--tags",
        "Key=team,Value=infra",
        "Key=env,Value=prod",
    ]));
    ok_empty(&s.aws(&[
        "iam",
        "untag-instance-profile",
        "--instance-profile-name",
        "ecs-hosts",
        "--tag-keys",
        "env",
    ]));
    let tags = ok_json(&s.aws(&[
        "iam",
        "list-instance-profile-tags",
        "--instance-profile-name",
        "ecs-hosts",
    ]));
    assert_eq!(
        tags["Tags"],
        serde_json::json!([{"Key": "team", "Value": "infra"}])
    );
    ok_empty(&s.aws(&[
        "iam",
        "tag-role",
        "--role-name",
        "other",
        "--tags",
        "Key=a,Value=1",
        "Key=b,Value=2",
    ]));
    ok_empty(&s.aws(&[
        "iam",
        "untag-role",
        "--role-name",
        "other",
        "--tag-keys",
        "a",
    ]));
    let tags = ok_json(&s.aws(&["iam", "list-role-tags", "--role-name", "other"]));
    assert_eq!(
        tags["Tags"],
        serde_json::json!([{"Key": "b", "Value": "2"}])
    );
    let role = ok_json(&s.aws(&["iam", "get-role", "--role-name", "other"]));
    assert_eq!(
        role["Role"]["Tags"],
        serde_json::json!([{"Key": "b", "Value": "2"}])
    );
    ok_json(&s.aws(&["iam", "create-user", "--user-name", "tagged"]));
    ok_empty(&s.aws(&[
        "iam",
        "tag-user",
        "--user-name",
        "tagged",
        "--tags",
        "Key=cost-center,Value=42",
    ]));
    let tags = ok_json(&s.aws(&["iam", "list-user-tags", "--user-name", "tagged"]));
    assert_eq!(
        tags["Tags"],
        serde_json::json!([{"Key": "cost-center", "Value": "42"}])
    );
    ok_empty(&s.aws(&[
        "iam",
        "untag-user",
        "--user-name",
        "tagged",
        "--tag-keys",
        "cost-center",
    ]));
    let tags = ok_json(&s.aws(&["iam", "list-user-tags", "--user-name", "tagged"]));
    assert_eq!(tags["Tags"], serde_json::json!([]));
    assert_iam_error(
        &s.aws(&["iam", "list-user-tags", "--user-name", "nobody"]),
        "NoSuchEntity",
        "The user with name nobody cannot be found.",
    );

    // Emptied, the profile and the role can go.
    ok_empty(&s.aws(&[
        "iam",
        "remove-role-from-instance-profile",
        "--instance-profile-name",
        "ecs-hosts",
        "--role-name",
        "ecsInstanceRole",
    ]));
    ok_empty(&s.aws(&["iam", "delete-role", "--role-name", "ecsInstanceRole"]));
    ok_empty(&s.aws(&[
        "iam",
        "delete-instance-profile",
        "--instance-profile-name",
        "ecs-hosts",
    ]));
    assert_iam_error(
        &s.aws(&[
            "iam",
            "get-instance-profile",
            "--instance-profile-name",
            "ecs-hosts",
        ]),
        "NoSuchEntity",
        "Instance Profile ecs-hosts cannot be found.",
    );
}

/// ECS's service-linked role as IAM makes it: its name, path, trust policy and AWS managed
/// policy; only DeleteServiceLinkedRole removes it, through a deletion task.
#[test]
fn service_linked_roles_are_made_and_deleted_by_iam_only() {
    let s = BerthServer::start();
    let made = ok_json(&s.aws(&[
        "iam",
        "create-service-linked-role",
        "--aws-service-name",
        "ecs.amazonaws.com",
    ]));
    let role = &made["Role"];
    assert_eq!(role["RoleName"], "AWSServiceRoleForECS");
    assert_eq!(role["Path"], "/aws-service-role/ecs.amazonaws.com/");
    assert_eq!(
        role["Arn"],
        "arn:aws:iam::000000000000:role/aws-service-role/ecs.amazonaws.com/AWSServiceRoleForECS"
    );
    assert_eq!(
        role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Service"],
        "ecs.amazonaws.com"
    );
    let attached = ok_json(&s.aws(&[
        "iam",
        "list-attached-role-policies",
        "--role-name",
        "AWSServiceRoleForECS",
    ]));
    assert_eq!(
        attached["AttachedPolicies"][0]["PolicyArn"],
        "arn:aws:iam::aws:policy/aws-service-role/AmazonECSServiceRolePolicy"
    );
    let policy = ok_json(&s.aws(&[
        "iam",
        "get-policy-version",
        "--policy-arn",
        "arn:aws:iam::aws:policy/aws-service-role/AmazonECSServiceRolePolicy",
        "--version-id",
        "v23",
    ]));
    assert_eq!(
        policy["PolicyVersion"]["Document"]["Statement"][0]["Sid"],
        "ECSTaskManagement"
    );
    assert_iam_error(
        &s.aws(&[
            "iam",
            "create-service-linked-role",
            "--aws-service-name",
            "ecs.amazonaws.com",
        ]),
        "InvalidInput",
        "Service role name AWSServiceRoleForECS has been taken in this account, please try a different suffix.",
    );
    assert_aws_error(
        &s.aws(&[
            "iam",
            "create-service-linked-role",
            "--aws-service-name",
            "nothing.amazonaws.com",
        ]),
        "InvalidInput",
    );
    // Only its service changes it.
    let protected = "Cannot perform the operation on the protected role 'AWSServiceRoleForECS' - this role is only modifiable by AWS";
    assert_iam_error(
        &s.aws(&["iam", "delete-role", "--role-name", "AWSServiceRoleForECS"]),
        "UnmodifiableEntity",
        protected,
    );
    assert_iam_error(
        &s.aws(&[
            "iam",
            "update-role",
            "--role-name",
            "AWSServiceRoleForECS",
            "--description",
            "mine",
        ]),
        "UnmodifiableEntity",
        protected,
    );
    assert_iam_error(
        &s.aws(&[
            "iam",
            "detach-role-policy",
            "--role-name",
            "AWSServiceRoleForECS",
            "--policy-arn",
            "arn:aws:iam::aws:policy/aws-service-role/AmazonECSServiceRolePolicy",
        ]),
        "UnmodifiableEntity",
        protected,
    );
    // Its policy is for it alone.
    ok_json(&s.aws(&["iam", "create-user", "--user-name", "u"]));
    assert_aws_error(
        &s.aws(&[
            "iam",
            "attach-user-policy",
            "--user-name",
            "u",
            "--policy-arn",
            "arn:aws:iam::aws:policy/aws-service-role/AmazonECSServiceRolePolicy",
        ]),
        "PolicyNotAttachable",
    );
    // Application Auto Scaling's for ECS services.
    let scaling = ok_json(&s.aws(&[
        "iam",
        "create-service-linked-role",
        "--aws-service-name",
        "ecs.application-autoscaling.amazonaws.com",
    ]));
    assert_eq!(
        scaling["Role"]["RoleName"],
        "AWSServiceRoleForApplicationAutoScaling_ECSService"
    );
    // EC2 Auto Scaling's takes a suffix; ECS's does not.
    let asg = ok_json(&s.aws(&[
        "iam",
        "create-service-linked-role",
        "--aws-service-name",
        "autoscaling.amazonaws.com",
        "--custom-suffix",
        "capacity",
    ]));
    assert_eq!(
        asg["Role"]["Arn"],
        "arn:aws:iam::000000000000:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling_capacity"
    );
    assert_iam_error(
        &s.aws(&[
            "iam",
            "create-service-linked-role",
            "--aws-service-name",
            "ecs.application-autoscaling.amazonaws.com",
            "--custom-suffix",
            "x",
        ]),
        "InvalidInput",
        "Custom suffix is not allowed for ecs.application-autoscaling.amazonaws.com",
    );

    let task = ok_json(&s.aws(&[
        "iam",
        "delete-service-linked-role",
        "--role-name",
        "AWSServiceRoleForECS",
    ]));
    let task_id = task["DeletionTaskId"].as_str().unwrap().to_owned();
    assert!(
        task_id.starts_with("task/aws-service-role/ecs.amazonaws.com/AWSServiceRoleForECS/"),
        "{task}"
    );
    let status = ok_json(&s.aws(&[
        "iam",
        "get-service-linked-role-deletion-status",
        "--deletion-task-id",
        &task_id,
    ]));
    assert_eq!(status["Status"], "SUCCEEDED");
    assert_iam_error(
        &s.aws(&["iam", "get-role", "--role-name", "AWSServiceRoleForECS"]),
        "NoSuchEntity",
        "The role with name AWSServiceRoleForECS cannot be found.",
    );
    // Made again after its deletion.
    ok_json(&s.aws(&[
        "iam",
        "create-service-linked-role",
        "--aws-service-name",
        "ecs.amazonaws.com",
    ]));
}

/// Who a policy is attached to, and the whole account's authorization details, with the
/// AWS managed AmazonECS_FullAccess counted where it is attached.
#[test]
fn entities_for_policy_and_account_authorization_details() {
    let s = BerthServer::start();
    let full = "arn:aws:iam::aws:policy/AmazonECS_FullAccess";
    let catalogued = ok_json(&s.aws(&["iam", "get-policy", "--policy-arn", full]));
    assert_eq!(catalogued["Policy"]["DefaultVersionId"], "v21");
    assert_eq!(catalogued["Policy"]["AttachmentCount"], 0);
    ok_json(&s.aws(&[
        "iam",
        "create-user",
        "--user-name",
        "ops",
        "--path",
        "/ops/",
    ]));
    ok_json(&s.aws(&["iam", "create-group", "--group-name", "admins"]));
    ok_json(&s.aws(&[
        "iam",
        "create-role",
        "--role-name",
        "deployer",
        "--assume-role-policy-document",
        EC2_TRUST,
    ]));
    ok_json(&s.aws(&[
        "iam",
        "create-instance-profile",
        "--instance-profile-name",
        "deployer-profile",
    ]));
    ok_empty(&s.aws(&[
        "iam",
        "add-role-to-instance-profile",
        "--instance-profile-name",
        "deployer-profile",
        "--role-name",
        "deployer",
    ]));
    for (kind, name) in [("user", "ops"), ("group", "admins"), ("role", "deployer")] {
        ok_empty(&s.aws(&[
            "iam",
            &format!("attach-{kind}-policy"),
            &format!("--{kind}-name"),
            name,
            "--policy-arn",
            full,
        ]));
    }
    ok_empty(&s.aws(&[
        "iam",
        "add-user-to-group",
        "--group-name",
        "admins",
        "--user-name",
        "ops",
    ]));
    ok_empty(&s.aws(&[
        "iam",
        "put-user-policy",
        "--user-name",
        "ops",
        "--policy-name",
        "clusters",
        "--policy-document",
        LIST_CLUSTERS,
    ]));
    let counted = ok_json(&s.aws(&["iam", "get-policy", "--policy-arn", full]));
    assert_eq!(counted["Policy"]["AttachmentCount"], 3, "{counted}");

    let entities = ok_json(&s.aws(&["iam", "list-entities-for-policy", "--policy-arn", full]));
    assert_eq!(names(&entities["PolicyUsers"], "UserName"), ["ops"]);
    assert_eq!(names(&entities["PolicyGroups"], "GroupName"), ["admins"]);
    assert_eq!(names(&entities["PolicyRoles"], "RoleName"), ["deployer"]);
    assert!(
        entities["PolicyRoles"][0]["RoleId"]
            .as_str()
            .unwrap()
            .starts_with("AROA")
    );
    // Pages of one entity each, followed through their markers.
    let paged = ok_json(&s.aws(&[
        "iam",
        "list-entities-for-policy",
        "--policy-arn",
        full,
        "--page-size",
        "1",
    ]));
    assert_eq!(paged, entities);
    let roles_only = ok_json(&s.aws(&[
        "iam",
        "list-entities-for-policy",
        "--policy-arn",
        full,
        "--entity-filter",
        "Role",
    ]));
    assert_eq!(roles_only["PolicyUsers"], serde_json::json!([]));
    assert_eq!(names(&roles_only["PolicyRoles"], "RoleName"), ["deployer"]);
    let under_ops = ok_json(&s.aws(&[
        "iam",
        "list-entities-for-policy",
        "--policy-arn",
        full,
        "--path-prefix",
        "/ops/",
    ]));
    assert_eq!(names(&under_ops["PolicyUsers"], "UserName"), ["ops"]);
    assert_eq!(under_ops["PolicyGroups"], serde_json::json!([]));
    assert_iam_error(
        &s.aws(&[
            "iam",
            "list-entities-for-policy",
            "--policy-arn",
            "arn:aws:iam::000000000000:policy/none",
        ]),
        "NoSuchEntity",
        "Policy arn:aws:iam::000000000000:policy/none does not exist or is not attachable.",
    );

    let details = ok_json(&s.aws(&["iam", "get-account-authorization-details"]));
    let user = &details["UserDetailList"][0];
    assert_eq!(user["UserName"], "ops");
    assert_eq!(user["GroupList"], serde_json::json!(["admins"]));
    assert_eq!(user["AttachedManagedPolicies"][0]["PolicyArn"], full);
    // Documents are URL-encoded on the wire; the CLI decodes them.
    assert_eq!(
        user["UserPolicyList"][0]["PolicyDocument"]["Statement"][0]["Action"],
        "ecs:ListClusters"
    );
    assert_eq!(details["GroupDetailList"][0]["GroupName"], "admins");
    let role = &details["RoleDetailList"][0];
    assert_eq!(role["RoleName"], "deployer");
    assert_eq!(
        role["InstanceProfileList"][0]["InstanceProfileName"],
        "deployer-profile"
    );
    assert_eq!(
        role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Service"],
        "ec2.amazonaws.com"
    );
    // AWS's managed policies appear where they are used, with their versions.
    let policies = details["Policies"].as_array().unwrap();
    assert_eq!(policies.len(), 1, "{}", details["Policies"]);
    assert_eq!(policies[0]["Arn"], full);
    assert_eq!(policies[0]["AttachmentCount"], 3);
    let version = &policies[0]["PolicyVersionList"][0];
    assert_eq!(version["VersionId"], "v21");
    assert_eq!(version["IsDefaultVersion"], true);
    assert_eq!(
        version["Document"]["Statement"][0]["Sid"],
        "ECSIntegrationsManagementPolicy"
    );
    // Paged one entry at a time, the CLI gathers the same.
    let paged = ok_json(&s.aws(&[
        "iam",
        "get-account-authorization-details",
        "--page-size",
        "1",
    ]));
    assert_eq!(paged, details);
    let only_roles = ok_json(&s.aws(&[
        "iam",
        "get-account-authorization-details",
        "--filter",
        "Role",
    ]));
    assert_eq!(only_roles["UserDetailList"], serde_json::json!([]));
    assert_eq!(only_roles["Policies"], serde_json::json!([]));
    assert_eq!(
        names(&only_roles["RoleDetailList"], "RoleName"),
        ["deployer"]
    );
    assert_aws_error(
        &s.aws(&[
            "iam",
            "get-account-authorization-details",
            "--filter",
            "Nothing",
        ]),
        "ValidationError",
    );
}
