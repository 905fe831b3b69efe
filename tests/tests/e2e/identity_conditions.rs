//! Identity (issue 18), the checks a request brings beyond its action and resource, through
//! the real `aws` CLI: `iam:PassRole` for the roles an ECS call names, and conditions on
//! tags (the resource's, the request's, the caller's).

use berth_e2e::{BerthServer, assert_aws_error, ok_json, stderr_of};

/// A user `name` with one inline policy `document`, and its access key.
fn user_with_policy(s: &BerthServer, name: &str, document: &str) -> (String, String) {
    tagged_user_with_policy(s, name, &[], document)
}

/// A user `name` with `tags` (`Key=K,Value=V`) and one inline policy, and its access key.
fn tagged_user_with_policy(
    s: &BerthServer,
    name: &str,
    tags: &[&str],
    document: &str,
) -> (String, String) {
    let mut create = vec!["iam", "create-user", "--user-name", name];
    if !tags.is_empty() {
        create.push("--tags");
        create.extend(tags);
    }
    ok_json(&s.aws(&create));
    put_user_policy(s, name, document);
    let key = ok_json(&s.aws(&["iam", "create-access-key", "--user-name", name]));
    let field = |f: &str| key["AccessKey"][f].as_str().unwrap().to_owned();
    (field("AccessKeyId"), field("SecretAccessKey"))
}

fn put_user_policy(s: &BerthServer, name: &str, document: &str) {
    let out = s.aws(&[
        "iam",
        "put-user-policy",
        "--user-name",
        name,
        "--policy-name",
        "p",
        "--policy-document",
        document,
    ]);
    assert!(out.status.success(), "{}", stderr_of(&out));
}

fn create_role(s: &BerthServer, name: &str) {
    ok_json(&s.aws(&[
        "iam",
        "create-role",
        "--role-name",
        name,
        "--assume-role-policy-document",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
    ]));
}

/// Clusters `blue-c` and `red-c`, tagged `team=blue` and `team=red`.
fn team_clusters(s: &BerthServer) {
    for (name, team) in [("blue-c", "blue"), ("red-c", "red")] {
        ok_json(&s.aws(&[
            "ecs",
            "create-cluster",
            "--cluster-name",
            name,
            "--tags",
            &format!("key=team,value={team}"),
        ]));
    }
}

const CONTAINERS: &str =
    r#"[{"name":"app","image":"busybox","memory":64,"essential":true,"command":["true"]}]"#;

/// A task definition or RunTask naming a role needs `iam:PassRole` on it, passed to
/// `ecs-tasks.amazonaws.com`: allowed for one role, refused for another with AWS's words,
/// on RegisterTaskDefinition and on RunTask's overrides and the definition's own roles.
#[test]
fn naming_a_role_for_ecs_needs_iam_pass_role() {
    let s = BerthServer::start();
    create_role(&s, "app-task");
    create_role(&s, "admin-task");
    ok_json(&s.aws(&["ecs", "create-cluster", "--cluster-name", "pr"]));
    let (id, secret) = user_with_policy(
        &s,
        "deployer",
        r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":["ecs:RegisterTaskDefinition","ecs:RunTask"],"Resource":"*"},
            {"Effect":"Allow","Action":"iam:PassRole","Resource":"arn:aws:iam::000000000000:role/app-task",
             "Condition":{"StringEquals":{"iam:PassedToService":"ecs-tasks.amazonaws.com"}}}]}"#,
    );
    let as_deployer = |args: &[&str]| s.aws_with("us-east-1", &id, &secret, args);
    let register = |role: &str| {
        as_deployer(&[
            "ecs",
            "register-task-definition",
            "--family",
            "web",
            "--task-role-arn",
            role,
            "--container-definitions",
            CONTAINERS,
        ])
    };
    let td = ok_json(&register("arn:aws:iam::000000000000:role/app-task"));
    assert_eq!(
        td["taskDefinition"]["taskRoleArn"],
        "arn:aws:iam::000000000000:role/app-task"
    );
    let refused = register("admin-task");
    assert_aws_error(&refused, "AccessDeniedException");
    assert!(
        stderr_of(&refused).contains(
            "User: arn:aws:iam::000000000000:user/deployer is not authorized to perform: iam:PassRole on resource: arn:aws:iam::000000000000:role/admin-task because no identity-based policy allows the iam:PassRole action"
        ),
        "{}",
        stderr_of(&refused)
    );
    // Without a role nothing is passed.
    ok_json(&as_deployer(&[
        "ecs",
        "register-task-definition",
        "--family",
        "plain",
        "--container-definitions",
        CONTAINERS,
    ]));

    // RunTask: the definition's role may be passed (the cluster has no instances: ECS
    // answers that, not a refusal) …
    let ran = as_deployer(&[
        "ecs",
        "run-task",
        "--cluster",
        "pr",
        "--task-definition",
        "web:1",
    ]);
    assert!(
        !stderr_of(&ran).contains("AccessDenied"),
        "{}",
        stderr_of(&ran)
    );
    // … an override naming another role may not.
    let overridden = as_deployer(&[
        "ecs",
        "run-task",
        "--cluster",
        "pr",
        "--task-definition",
        "web:1",
        "--overrides",
        r#"{"taskRoleArn":"arn:aws:iam::000000000000:role/admin-task"}"#,
    ]);
    assert_aws_error(&overridden, "AccessDeniedException");
    assert!(
        stderr_of(&overridden)
            .contains("iam:PassRole on resource: arn:aws:iam::000000000000:role/admin-task"),
        "{}",
        stderr_of(&overridden)
    );
    // A definition registered by root with a role the user may not pass cannot be run by it.
    ok_json(&s.aws(&[
        "ecs",
        "register-task-definition",
        "--family",
        "admin",
        "--task-role-arn",
        "admin-task",
        "--container-definitions",
        CONTAINERS,
    ]));
    assert_aws_error(
        &as_deployer(&[
            "ecs",
            "run-task",
            "--cluster",
            "pr",
            "--task-definition",
            "admin",
        ]),
        "AccessDeniedException",
    );
    // The pass is to ECS tasks only: a condition naming another service allows nothing.
    put_user_policy(
        &s,
        "deployer",
        r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"ecs:RegisterTaskDefinition","Resource":"*"},
            {"Effect":"Allow","Action":"iam:PassRole","Resource":"*",
             "Condition":{"StringEquals":{"iam:PassedToService":"lambda.amazonaws.com"}}}]}"#,
    );
    assert_aws_error(&register("app-task"), "AccessDeniedException");
}

/// Conditions on tags: `ecs:ResourceTag` / `aws:ResourceTag` on the cluster a call acts on,
/// `aws:RequestTag` and `aws:TagKeys` on what a create call asks for, and
/// `aws:PrincipalTag` with a policy variable on the caller's own tags.
#[test]
fn conditions_on_resource_request_and_principal_tags() {
    let s = BerthServer::start();
    team_clusters(&s);
    let policy = r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"ecs:DescribeClusters","Resource":"*",
             "Condition":{"StringEquals":{"ecs:ResourceTag/team":"${aws:PrincipalTag/team}"}}},
            {"Effect":"Allow","Action":"ecr:CreateRepository","Resource":"*",
             "Condition":{"StringEquals":{"aws:RequestTag/team":"${aws:PrincipalTag/team}"},
                          "ForAllValues:StringEquals":{"aws:TagKeys":["team","owner"]}}}]}"#;
    // A user without a team tag: nothing matches the variable.
    let (id, secret) = user_with_policy(&s, "no-team", policy);
    assert_aws_error(
        &s.aws_with(
            "us-east-1",
            &id,
            &secret,
            &["ecs", "describe-clusters", "--clusters", "blue-c"],
        ),
        "AccessDeniedException",
    );
    let (id, secret) = tagged_user_with_policy(&s, "blue-dev", &["Key=team,Value=blue"], policy);
    let as_dev = |args: &[&str]| s.aws_with("us-east-1", &id, &secret, args);
    let blue = ok_json(&as_dev(&[
        "ecs",
        "describe-clusters",
        "--clusters",
        "blue-c",
    ]));
    assert_eq!(blue["clusters"][0]["clusterName"], "blue-c", "{blue}");
    let red = as_dev(&["ecs", "describe-clusters", "--clusters", "red-c"]);
    assert_aws_error(&red, "AccessDeniedException");
    assert!(
        stderr_of(&red).contains("cluster/red-c because no identity-based policy allows"),
        "{}",
        stderr_of(&red)
    );
    // The cluster's tag changes: so does the answer.
    ok_json(&s.aws(&[
        "ecs",
        "tag-resource",
        "--resource-arn",
        "arn:aws:ecs:us-east-1:000000000000:cluster/red-c",
        "--tags",
        "key=team,value=blue",
    ]));
    ok_json(&as_dev(&[
        "ecs",
        "describe-clusters",
        "--clusters",
        "red-c",
    ]));

    // aws:RequestTag and aws:TagKeys on a create call.
    let create = |name: &str, tags: &[&str]| {
        let mut args = vec![
            "ecr",
            "create-repository",
            "--repository-name",
            name,
            "--tags",
        ];
        args.extend(tags);
        as_dev(&args)
    };
    ok_json(&create(
        "blue-repo",
        &["Key=team,Value=blue", "Key=owner,Value=me"],
    ));
    assert_aws_error(
        &create("red-repo", &["Key=team,Value=red"]),
        "AccessDeniedException",
    );
    assert_aws_error(
        &create("extra-repo", &["Key=team,Value=blue", "Key=cost,Value=1"]),
        "AccessDeniedException",
    );
    assert_aws_error(
        &as_dev(&["ecr", "create-repository", "--repository-name", "untagged"]),
        "AccessDeniedException",
    );
}

/// Temporary credentials from `aws sts assume-role` output.
fn session_of(out: &std::process::Output) -> (String, String, String) {
    let v = ok_json(out);
    let field = |f: &str| v["Credentials"][f].as_str().unwrap().to_owned();
    (
        field("AccessKeyId"),
        field("SecretAccessKey"),
        field("SessionToken"),
    )
}

/// Session tags: AssumeRole's `Tags` become the session's `aws:PrincipalTag/…` when the
/// trust policy allows `sts:TagSession`; a transitive tag passes on when the session assumes
/// another role (role chaining, at most one hour).
#[test]
fn session_tags_are_principal_tags_and_transitive_ones_pass_on() {
    let s = BerthServer::start();
    team_clusters(&s);
    let by_team = r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":"ecs:DescribeClusters","Resource":"*",
         "Condition":{"StringEquals":{"ecs:ResourceTag/team":"${aws:PrincipalTag/team}"}}},
        {"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}"#;
    let (id, secret) = user_with_policy(&s, "dev", by_team);
    let role = |name: &str, trusted: &str, actions: &str| {
        ok_json(&s.aws(&[
            "iam",
            "create-role",
            "--role-name",
            name,
            "--assume-role-policy-document",
            &format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{trusted}"}},"Action":{actions}}}]}}"#
            ),
        ]));
        let out = s.aws(&[
            "iam",
            "put-role-policy",
            "--role-name",
            name,
            "--policy-name",
            "by-team",
            "--policy-document",
            by_team,
        ]);
        assert!(out.status.success(), "{}", stderr_of(&out));
    };
    let dev = "arn:aws:iam::000000000000:user/dev";
    role("tagged", dev, r#"["sts:AssumeRole","sts:TagSession"]"#);
    role("untagged", dev, r#""sts:AssumeRole""#);
    role(
        "second",
        "arn:aws:iam::000000000000:role/tagged",
        r#"["sts:AssumeRole","sts:TagSession"]"#,
    );
    let assume = |key: (&str, &str, Option<&str>), role: &str, extra: &[&str]| {
        let mut args = vec![
            "sts",
            "assume-role",
            "--role-arn",
            role,
            "--role-session-name",
            "s1",
        ];
        args.extend(extra);
        let mut command = s.aws_command("us-east-1", key.0, key.1, &args);
        if let Some(token) = key.2 {
            command.env("AWS_SESSION_TOKEN", token);
        }
        command.stdin(std::process::Stdio::null()).output().unwrap()
    };
    let as_session = |c: &(String, String, String), args: &[&str]| {
        s.aws_command("us-east-1", &c.0, &c.1, args)
            .env("AWS_SESSION_TOKEN", &c.2)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    let describe = |c: &(String, String, String), cluster: &str| {
        as_session(c, &["ecs", "describe-clusters", "--clusters", cluster])
    };

    // Without sts:TagSession in the trust policy, tags are refused.
    let refused = assume(
        (&id, &secret, None),
        "arn:aws:iam::000000000000:role/untagged",
        &["--tags", "Key=team,Value=blue"],
    );
    assert_aws_error(&refused, "AccessDenied");
    assert!(
        stderr_of(&refused).contains("sts:TagSession"),
        "{}",
        stderr_of(&refused)
    );
    // With it, the session's tag decides.
    let blue = session_of(&assume(
        (&id, &secret, None),
        "arn:aws:iam::000000000000:role/tagged",
        &[
            "--tags",
            "Key=team,Value=blue",
            "--transitive-tag-keys",
            "team",
        ],
    ));
    ok_json(&describe(&blue, "blue-c"));
    assert_aws_error(&describe(&blue, "red-c"), "AccessDeniedException");

    // Role chaining: one hour at most, and the transitive tag goes along.
    let long = assume(
        (&blue.0, &blue.1, Some(&blue.2)),
        "arn:aws:iam::000000000000:role/second",
        &["--duration-seconds", "7200"],
    );
    assert_aws_error(&long, "ValidationError");
    assert!(
        stderr_of(&long).contains(
            "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining."
        ),
        "{}",
        stderr_of(&long)
    );
    let chained = session_of(&assume(
        (&blue.0, &blue.1, Some(&blue.2)),
        "arn:aws:iam::000000000000:role/second",
        &[],
    ));
    ok_json(&describe(&chained, "blue-c"));
    assert_aws_error(&describe(&chained, "red-c"), "AccessDeniedException");
    // A transitive tag cannot be changed down the chain.
    assert_aws_error(
        &assume(
            (&blue.0, &blue.1, Some(&blue.2)),
            "arn:aws:iam::000000000000:role/second",
            &["--tags", "Key=team,Value=red"],
        ),
        "ValidationError",
    );
}
