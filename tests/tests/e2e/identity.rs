//! Identity (issue 18), through the real `aws` CLI: STS and IAM speak AWS's Query protocol
//! (form-encoded requests, XML answers and errors) on Berth's one port. So far:
//! `sts get-caller-identity`, the Query protocol's authentication errors as STS names them,
//! IAM users, roles, policies and their enforcement, STS sessions and AssumeRole.

use berth_e2e::{BerthServer, assert_aws_error, ok_json, stderr_of};

#[test]
fn get_caller_identity_names_the_account_root() {
    let s = BerthServer::start();
    let me = ok_json(&s.aws(&["sts", "get-caller-identity"]));
    assert_eq!(me["Account"], "000000000000", "{me}");
    assert_eq!(me["Arn"], "arn:aws:iam::000000000000:root", "{me}");
    assert_eq!(me["UserId"], "000000000000", "{me}");
    // Any region's scope works (STS has regional endpoints).
    let me = ok_json(&s.aws_with(
        "eu-west-1",
        &s.access_key,
        &s.secret_key,
        &["sts", "get-caller-identity"],
    ));
    assert_eq!(me["Account"], "000000000000");
}

#[test]
fn query_protocol_refusals_are_xml_with_sts_codes() {
    let s = BerthServer::start();
    // An unknown access key: STS's InvalidClientTokenId (the JSON services say
    // UnrecognizedClientException).
    let out = s.aws_with(
        "us-east-1",
        "AKIAUNKNOWN000000000",
        "x",
        &["sts", "get-caller-identity"],
    );
    assert_aws_error(&out, "InvalidClientTokenId");
    assert!(
        stderr_of(&out).contains("The security token included in the request is invalid."),
        "{}",
        stderr_of(&out)
    );
    // The right key with a wrong secret.
    let out = s.aws_with(
        "us-east-1",
        &s.access_key,
        "wrong-secret",
        &["sts", "get-caller-identity"],
    );
    assert_aws_error(&out, "SignatureDoesNotMatch");
    // A signature scoped to one service is no good for another's operations.
    let crossed = s
        .json_client()
        .call(
            "sts",
            "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken",
            &serde_json::json!({}),
        )
        .unwrap();
    assert_eq!(crossed.status, 403);
    assert!(
        String::from_utf8_lossy(&crossed.body).contains("InvalidSignatureException"),
        "{}",
        String::from_utf8_lossy(&crossed.body)
    );
    // An action STS does not have (the CLI cannot send one: a raw signed form POST).
    let answer = s
        .json_client()
        .query(
            "sts",
            "us-east-1",
            "Action=GetFederationTokenX&Version=2011-06-15",
        )
        .unwrap();
    assert_eq!(answer.status, 400);
    let body = String::from_utf8_lossy(&answer.body);
    assert!(body.contains("<ErrorResponse"), "{body}");
    assert!(body.contains("<Type>Sender</Type>"), "{body}");
    assert!(body.contains("<Code>InvalidAction</Code>"), "{body}");
    assert!(body.contains("<RequestId>"), "{body}");
}

/// IAM users and their access keys through the CLI: a user's key signs requests as that
/// user (GetCallerIdentity names it), an inactive or deleted key signs nothing, a user
/// with keys cannot be deleted, and IAM's errors come back as IAM words them.
#[test]
fn iam_users_and_their_access_keys() {
    let s = BerthServer::start();
    let user = ok_json(&s.aws(&[
        "iam",
        "create-user",
        "--user-name",
        "deployer",
        "--path",
        "/ci/",
        "--tags",
        "Key=team,Value=platform",
    ]));
    assert_eq!(
        user["User"]["Arn"],
        "arn:aws:iam::000000000000:user/ci/deployer"
    );
    let user_id = user["User"]["UserId"].as_str().unwrap().to_owned();
    assert!(user_id.starts_with("AIDA"), "{user}");
    assert_aws_error(
        &s.aws(&["iam", "create-user", "--user-name", "DEPLOYER"]),
        "EntityAlreadyExists",
    );
    let missing = s.aws(&["iam", "get-user", "--user-name", "nobody"]);
    assert_aws_error(&missing, "NoSuchEntity");
    assert!(stderr_of(&missing).contains("The user with name nobody cannot be found."));

    let key = ok_json(&s.aws(&["iam", "create-access-key", "--user-name", "deployer"]));
    let field = |f: &str| key["AccessKey"][f].as_str().unwrap().to_owned();
    let (id, secret) = (field("AccessKeyId"), field("SecretAccessKey"));
    assert!(id.starts_with("AKIA") && id.len() == 20, "{key}");
    assert_eq!(key["AccessKey"]["Status"], "Active");

    // The user's key signs as the user.
    let as_user = |args: &[&str]| s.aws_with("us-east-1", &id, &secret, args);
    let me = ok_json(&as_user(&["sts", "get-caller-identity"]));
    assert_eq!(me["Arn"], "arn:aws:iam::000000000000:user/ci/deployer");
    assert_eq!(me["UserId"], user_id.as_str());
    // The user has no policies, so it may do nothing else (IAM's implicit deny), in each
    // protocol's words; GetUser without a name is about the caller itself.
    let denied = as_user(&["iam", "get-user"]);
    assert_aws_error(&denied, "AccessDenied");
    assert!(
        stderr_of(&denied).contains(
            "User: arn:aws:iam::000000000000:user/ci/deployer is not authorized to perform: iam:GetUser on resource: arn:aws:iam::000000000000:user/ci/deployer because no identity-based policy allows the iam:GetUser action"
        ),
        "{}",
        stderr_of(&denied)
    );
    assert_aws_error(&as_user(&["ecs", "list-clusters"]), "AccessDeniedException");
    assert_aws_error(
        &as_user(&["ecr", "get-authorization-token"]),
        "AccessDeniedException",
    );
    let listed = ok_json(&s.aws(&["iam", "list-users", "--path-prefix", "/ci/"]));
    assert_eq!(listed["Users"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["Users"][0]["Tags"][0]["Value"], "platform");
    let keys = ok_json(&s.aws(&["iam", "list-access-keys", "--user-name", "deployer"]));
    assert_eq!(keys["AccessKeyMetadata"][0]["AccessKeyId"], id.as_str());
    assert!(
        keys["AccessKeyMetadata"][0]
            .get("SecretAccessKey")
            .is_none()
    );

    assert_aws_error(
        &s.aws(&["iam", "delete-user", "--user-name", "deployer"]),
        "DeleteConflict",
    );
    ok_empty(&s.aws(&[
        "iam",
        "update-access-key",
        "--user-name",
        "deployer",
        "--access-key-id",
        &id,
        "--status",
        "Inactive",
    ]));
    assert_aws_error(
        &as_user(&["sts", "get-caller-identity"]),
        "InvalidClientTokenId",
    );
    assert_aws_error(
        &as_user(&["ecs", "list-clusters"]),
        "UnrecognizedClientException",
    );
    ok_empty(&s.aws(&[
        "iam",
        "delete-access-key",
        "--user-name",
        "deployer",
        "--access-key-id",
        &id,
    ]));
    ok_empty(&s.aws(&["iam", "delete-user", "--user-name", "deployer"]));
    assert_aws_error(
        &s.aws(&["iam", "get-user", "--user-name", "deployer"]),
        "NoSuchEntity",
    );
}

/// A command that prints nothing on success (IAM's actions without a result).
#[track_caller]
fn ok_empty(out: &std::process::Output) {
    assert!(out.status.success(), "{}", stderr_of(out));
}

/// Managed policies with versions, AWS's managed policies by their real ARNs, and what is
/// attached to a user, through the CLI (which decodes IAM's URL-encoded documents).
#[test]
fn iam_managed_and_inline_policies() {
    let s = BerthServer::start();
    ok_json(&s.aws(&["iam", "create-user", "--user-name", "puller"]));
    let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ecr:BatchGetImage"],"Resource":"*"}]}"#;
    let made = ok_json(&s.aws(&[
        "iam",
        "create-policy",
        "--policy-name",
        "pull-one",
        "--policy-document",
        doc,
        "--description",
        "pulls",
    ]));
    let arn = made["Policy"]["Arn"].as_str().unwrap().to_owned();
    assert_eq!(arn, "arn:aws:iam::000000000000:policy/pull-one");
    assert_eq!(made["Policy"]["DefaultVersionId"], "v1");
    assert_aws_error(
        &s.aws(&[
            "iam",
            "create-policy",
            "--policy-name",
            "bad",
            "--policy-document",
            "{",
        ]),
        "MalformedPolicyDocument",
    );
    ok_json(&s.aws(&[
        "iam",
        "create-policy-version",
        "--policy-arn",
        &arn,
        "--policy-document",
        doc,
        "--set-as-default",
    ]));
    let version = ok_json(&s.aws(&[
        "iam",
        "get-policy-version",
        "--policy-arn",
        &arn,
        "--version-id",
        "v2",
    ]));
    assert_eq!(version["PolicyVersion"]["IsDefaultVersion"], true);
    assert_eq!(
        version["PolicyVersion"]["Document"]["Statement"][0]["Action"][0], "ecr:BatchGetImage",
        "{version}"
    );
    let versions = ok_json(&s.aws(&["iam", "list-policy-versions", "--policy-arn", &arn]));
    assert_eq!(versions["Versions"].as_array().unwrap().len(), 2);

    let aws_managed = ok_json(&s.aws(&["iam", "list-policies", "--scope", "AWS"]));
    let read_only = "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly";
    assert!(aws_managed.to_string().contains(read_only), "{aws_managed}");
    let execution = ok_json(&s.aws(&[
        "iam",
        "get-policy",
        "--policy-arn",
        "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy",
    ]));
    assert_eq!(execution["Policy"]["Path"], "/service-role/");

    for policy in [arn.as_str(), read_only] {
        ok_empty(&s.aws(&[
            "iam",
            "attach-user-policy",
            "--user-name",
            "puller",
            "--policy-arn",
            policy,
        ]));
    }
    let attached = ok_json(&s.aws(&[
        "iam",
        "list-attached-user-policies",
        "--user-name",
        "puller",
    ]));
    assert_eq!(
        attached["AttachedPolicies"].as_array().unwrap().len(),
        2,
        "{attached}"
    );
    assert_eq!(
        ok_json(&s.aws(&["iam", "get-policy", "--policy-arn", &arn]))["Policy"]["AttachmentCount"],
        1
    );
    assert_aws_error(
        &s.aws(&["iam", "delete-policy", "--policy-arn", &arn]),
        "DeleteConflict",
    );
    ok_empty(&s.aws(&[
        "iam",
        "put-user-policy",
        "--user-name",
        "puller",
        "--policy-name",
        "inline",
        "--policy-document",
        doc,
    ]));
    let inline = ok_json(&s.aws(&[
        "iam",
        "get-user-policy",
        "--user-name",
        "puller",
        "--policy-name",
        "inline",
    ]));
    assert_eq!(
        inline["PolicyDocument"]["Version"], "2012-10-17",
        "{inline}"
    );
    let names = ok_json(&s.aws(&["iam", "list-user-policies", "--user-name", "puller"]));
    assert_eq!(names["PolicyNames"][0], "inline");
    assert_aws_error(
        &s.aws(&["iam", "delete-user", "--user-name", "puller"]),
        "DeleteConflict",
    );

    for policy in [arn.as_str(), read_only] {
        ok_empty(&s.aws(&[
            "iam",
            "detach-user-policy",
            "--user-name",
            "puller",
            "--policy-arn",
            policy,
        ]));
    }
    ok_empty(&s.aws(&[
        "iam",
        "delete-user-policy",
        "--user-name",
        "puller",
        "--policy-name",
        "inline",
    ]));
    ok_empty(&s.aws(&[
        "iam",
        "delete-policy-version",
        "--policy-arn",
        &arn,
        "--version-id",
        "v1",
    ]));
    ok_empty(&s.aws(&["iam", "delete-policy", "--policy-arn", &arn]));
    ok_empty(&s.aws(&["iam", "delete-user", "--user-name", "puller"]));
}

/// Roles through the CLI: a trust policy (shown decoded), session duration bounds, AWS's
/// task execution policy attached, an inline policy, and deletion refused until both go.
#[test]
fn iam_roles_with_trust_and_permission_policies() {
    let s = BerthServer::start();
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let made = ok_json(&s.aws(&[
        "iam",
        "create-role",
        "--role-name",
        "ecsTaskExecutionRole",
        "--assume-role-policy-document",
        trust,
    ]));
    assert_eq!(
        made["Role"]["Arn"],
        "arn:aws:iam::000000000000:role/ecsTaskExecutionRole"
    );
    assert!(made["Role"]["RoleId"].as_str().unwrap().starts_with("AROA"));
    let role = ok_json(&s.aws(&["iam", "get-role", "--role-name", "ecsTaskExecutionRole"]));
    assert_eq!(
        role["Role"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Service"],
        "ecs-tasks.amazonaws.com",
        "{role}"
    );
    assert_eq!(role["Role"]["MaxSessionDuration"], 3600);
    assert_aws_error(
        &s.aws(&[
            "iam",
            "update-role",
            "--role-name",
            "ecsTaskExecutionRole",
            "--max-session-duration",
            "50000",
        ]),
        "ValidationError",
    );
    let execution = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy";
    ok_empty(&s.aws(&[
        "iam",
        "attach-role-policy",
        "--role-name",
        "ecsTaskExecutionRole",
        "--policy-arn",
        execution,
    ]));
    let attached = ok_json(&s.aws(&[
        "iam",
        "list-attached-role-policies",
        "--role-name",
        "ecsTaskExecutionRole",
    ]));
    assert_eq!(
        attached["AttachedPolicies"][0]["PolicyName"],
        "AmazonECSTaskExecutionRolePolicy"
    );
    let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"logs:CreateLogGroup","Resource":"*"}]}"#;
    ok_empty(&s.aws(&[
        "iam",
        "put-role-policy",
        "--role-name",
        "ecsTaskExecutionRole",
        "--policy-name",
        "groups",
        "--policy-document",
        doc,
    ]));
    let inline = ok_json(&s.aws(&[
        "iam",
        "get-role-policy",
        "--role-name",
        "ecsTaskExecutionRole",
        "--policy-name",
        "groups",
    ]));
    assert_eq!(inline["RoleName"], "ecsTaskExecutionRole");
    assert_eq!(
        inline["PolicyDocument"]["Statement"][0]["Action"],
        "logs:CreateLogGroup"
    );
    assert_aws_error(
        &s.aws(&["iam", "delete-role", "--role-name", "ecsTaskExecutionRole"]),
        "DeleteConflict",
    );
    ok_empty(&s.aws(&[
        "iam",
        "detach-role-policy",
        "--role-name",
        "ecsTaskExecutionRole",
        "--policy-arn",
        execution,
    ]));
    ok_empty(&s.aws(&[
        "iam",
        "delete-role-policy",
        "--role-name",
        "ecsTaskExecutionRole",
        "--policy-name",
        "groups",
    ]));
    ok_empty(&s.aws(&["iam", "delete-role", "--role-name", "ecsTaskExecutionRole"]));
    let gone = s.aws(&["iam", "get-role", "--role-name", "ecsTaskExecutionRole"]);
    assert_aws_error(&gone, "NoSuchEntity");
    assert!(stderr_of(&gone).contains("The role with name ecsTaskExecutionRole cannot be found."));
}

/// Temporary credentials from GetSessionToken: accepted with their session token by every
/// service (STS, ECS) and by `aws ecr get-login-password`, whose password logs Docker in;
/// refused without the token, and refused with AWS's ExpiredToken once they expire (the
/// server is told to issue sessions as short as 10 s for this).
#[test]
fn session_credentials_sign_until_they_expire() {
    let s = BerthServer::start_with(berth_e2e::ServerOptions {
        env: vec![("BERTH_STS_MIN_SESSION_SECONDS".into(), "10".into())],
        ..Default::default()
    });
    let issue = |seconds: &str| {
        let out = ok_json(&s.aws(&["sts", "get-session-token", "--duration-seconds", seconds]));
        let c = &out["Credentials"];
        let field = |f: &str| c[f].as_str().unwrap().to_owned();
        assert!(field("AccessKeyId").starts_with("ASIA"), "{out}");
        (
            field("AccessKeyId"),
            field("SecretAccessKey"),
            field("SessionToken"),
        )
    };
    let with_session = |(id, secret, token): &(String, String, String), args: &[&str]| {
        s.aws_command("us-east-1", id, secret, args)
            .env("AWS_SESSION_TOKEN", token)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    let session = issue("3600");
    let me = ok_json(&with_session(&session, &["sts", "get-caller-identity"]));
    assert_eq!(me["Arn"], "arn:aws:iam::000000000000:root");
    ok_json(&with_session(&session, &["ecs", "list-clusters"]));
    // Docker logs in with the password the session's credentials got.
    let password = with_session(&session, &["ecr", "get-login-password"]);
    docker_login_with(&s, &password);
    // Session credentials cannot make another session (STS refuses it too).
    let again = with_session(&session, &["sts", "get-session-token"]);
    assert_aws_error(&again, "AccessDenied");
    assert!(stderr_of(&again).contains("Cannot call GetSessionToken with session credentials"));
    // Without its token the key is not accepted.
    assert_aws_error(
        &s.aws_with(
            "us-east-1",
            &session.0,
            &session.1,
            &["sts", "get-caller-identity"],
        ),
        "InvalidClientTokenId",
    );

    // The CLI checks DurationSeconds against STS's 900 s minimum itself: a raw signed call
    // asks for the short session.
    let answer = s
        .json_client()
        .query(
            "sts",
            "us-east-1",
            "Action=GetSessionToken&Version=2011-06-15&DurationSeconds=30",
        )
        .unwrap();
    let issued = std::time::Instant::now();
    let body = String::from_utf8_lossy(&answer.body).into_owned();
    assert_eq!(answer.status, 200, "{body}");
    let field = |tag: &str| {
        let start = body.find(&format!("<{tag}>")).unwrap() + tag.len() + 2;
        let end = body[start..].find('<').unwrap() + start;
        body[start..end].to_owned()
    };
    let short = (
        field("AccessKeyId"),
        field("SecretAccessKey"),
        field("SessionToken"),
    );
    // Still valid (30 s is ample for one call, even on a host busy compiling)...
    ok_json(&with_session(&short, &["ecs", "list-clusters"]));
    // ... and refused once they expired.
    std::thread::sleep(std::time::Duration::from_secs(31).saturating_sub(issued.elapsed()));
    assert_aws_error(
        &with_session(&short, &["sts", "get-caller-identity"]),
        "ExpiredToken",
    );
    assert_aws_error(
        &with_session(&short, &["ecs", "list-clusters"]),
        "ExpiredTokenException",
    );
}

/// A user's policies decide what it may do, by IAM's evaluation: an allow on one
/// repository (another is refused with AWS's message naming its ARN), an explicit deny that
/// beats an allow, and a condition on `aws:SourceIp`.
#[test]
fn a_users_policies_decide_what_it_may_do() {
    let s = BerthServer::start();
    for repo in ["allowed-repo", "other-repo"] {
        s.create_repo(repo, &[]);
    }
    ok_json(&s.aws(&["iam", "create-user", "--user-name", "dev"]));
    let (id, secret) = access_key(&s, "dev");
    let as_dev = |args: &[&str]| s.aws_with("us-east-1", &id, &secret, args);
    let put = |name: &str, doc: &str| {
        ok_empty(&s.aws(&[
            "iam",
            "put-user-policy",
            "--user-name",
            "dev",
            "--policy-name",
            name,
            "--policy-document",
            doc,
        ]));
    };
    put(
        "one-repo",
        r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"ecr:DescribeRepositories","Resource":"arn:aws:ecr:us-east-1:000000000000:repository/allowed-*"},
            {"Effect":"Allow","Action":["ecs:ListClusters","ecs:CreateCluster"],"Resource":"*"}]}"#,
    );
    let seen = ok_json(&as_dev(&[
        "ecr",
        "describe-repositories",
        "--repository-names",
        "allowed-repo",
    ]));
    assert_eq!(seen["repositories"][0]["repositoryName"], "allowed-repo");
    let refused = as_dev(&[
        "ecr",
        "describe-repositories",
        "--repository-names",
        "other-repo",
    ]);
    assert_aws_error(&refused, "AccessDeniedException");
    assert!(
        stderr_of(&refused).contains(
            "User: arn:aws:iam::000000000000:user/dev is not authorized to perform: ecr:DescribeRepositories on resource: arn:aws:ecr:us-east-1:000000000000:repository/other-repo because no identity-based policy allows the ecr:DescribeRepositories action"
        ),
        "{}",
        stderr_of(&refused)
    );
    ok_json(&as_dev(&["ecs", "list-clusters"]));
    assert_aws_error(&as_dev(&["ecs", "list-services"]), "AccessDeniedException");
    // ecs:cluster: ListServices allowed in one cluster only.
    ok_json(&s.aws(&["ecs", "create-cluster", "--cluster-name", "prod"]));
    put(
        "prod-only",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecs:ListServices","Resource":"*","Condition":{"ArnEquals":{"ecs:cluster":"arn:aws:ecs:us-east-1:000000000000:cluster/prod"}}}]}"#,
    );
    ok_json(&as_dev(&["ecs", "list-services", "--cluster", "prod"]));
    assert_aws_error(&as_dev(&["ecs", "list-services"]), "AccessDeniedException");

    // An explicit deny beats the allow.
    put(
        "no-clusters",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"ecs:CreateCluster","Resource":"*"}]}"#,
    );
    let denied = as_dev(&["ecs", "create-cluster", "--cluster-name", "x"]);
    assert_aws_error(&denied, "AccessDeniedException");
    assert!(
        stderr_of(&denied).contains("with an explicit deny in an identity-based policy"),
        "{}",
        stderr_of(&denied)
    );

    // aws:SourceIp: allowed from loopback, not from another network.
    put(
        "from-loopback",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecs:DescribeClusters","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"127.0.0.0/8"}}}]}"#,
    );
    ok_json(&as_dev(&["ecs", "describe-clusters"]));
    put(
        "from-loopback",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecs:DescribeClusters","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}"#,
    );
    assert_aws_error(
        &as_dev(&["ecs", "describe-clusters"]),
        "AccessDeniedException",
    );
}

/// AssumeRole: a user whose name the role's trust policy gives gets a session of the role
/// (GetCallerIdentity shows the assumed-role ARN), which acts with the role's policies,
/// narrowed by a session policy, and logs Docker in; a user the trust policy does not name,
/// and the root account, are refused.
#[test]
fn assume_role_gives_a_session_of_the_role() {
    let s = BerthServer::start();
    let mut keys = Vec::new();
    for user in ["ops", "stranger"] {
        ok_json(&s.aws(&["iam", "create-user", "--user-name", user]));
        keys.push(access_key(&s, user));
    }
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/ops"},"Action":"sts:AssumeRole"}]}"#;
    ok_json(&s.aws(&[
        "iam",
        "create-role",
        "--role-name",
        "deployer",
        "--assume-role-policy-document",
        trust,
    ]));
    ok_empty(&s.aws(&[
        "iam", "put-role-policy", "--role-name", "deployer", "--policy-name", "ecs",
        "--policy-document",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ecs:ListClusters","ecs:CreateCluster","ecr:GetAuthorizationToken"],"Resource":"*"}]}"#,
    ]));
    let role_arn = "arn:aws:iam::000000000000:role/deployer";
    let as_user =
        |(id, secret): &(String, String), args: &[&str]| s.aws_with("us-east-1", id, secret, args);
    let assumed = ok_json(&as_user(
        &keys[0],
        &[
            "sts",
            "assume-role",
            "--role-arn",
            role_arn,
            "--role-session-name",
            "ci-run",
            "--policy",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ecs:ListClusters","ecr:GetAuthorizationToken"],"Resource":"*"}]}"#,
        ],
    ));
    assert_eq!(
        assumed["AssumedRoleUser"]["Arn"], "arn:aws:sts::000000000000:assumed-role/deployer/ci-run",
        "{assumed}"
    );
    let c = &assumed["Credentials"];
    let session = (
        c["AccessKeyId"].as_str().unwrap().to_owned(),
        c["SecretAccessKey"].as_str().unwrap().to_owned(),
        c["SessionToken"].as_str().unwrap().to_owned(),
    );
    let with_session = |args: &[&str]| {
        s.aws_command("us-east-1", &session.0, &session.1, args)
            .env("AWS_SESSION_TOKEN", &session.2)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    let me = ok_json(&with_session(&["sts", "get-caller-identity"]));
    assert_eq!(
        me["Arn"],
        "arn:aws:sts::000000000000:assumed-role/deployer/ci-run"
    );
    assert!(me["UserId"].as_str().unwrap().ends_with(":ci-run"), "{me}");
    ok_json(&with_session(&["ecs", "list-clusters"]));
    // The role allows CreateCluster, the session policy does not.
    assert_aws_error(
        &with_session(&["ecs", "create-cluster", "--cluster-name", "x"]),
        "AccessDeniedException",
    );
    let password = with_session(&["ecr", "get-login-password"]);
    docker_login_with(&s, &password);
    let role = ok_json(&s.aws(&["iam", "get-role", "--role-name", "deployer"]));
    assert_eq!(
        role["Role"]["RoleLastUsed"]["Region"], "us-east-1",
        "{role}"
    );

    // Not named by the trust policy, and the root account: refused.
    let stranger = as_user(
        &keys[1],
        &[
            "sts",
            "assume-role",
            "--role-arn",
            role_arn,
            "--role-session-name",
            "x1",
        ],
    );
    assert_aws_error(&stranger, "AccessDenied");
    assert!(
        stderr_of(&stranger).contains(
            "User: arn:aws:iam::000000000000:user/stranger is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::000000000000:role/deployer"
        ),
        "{}",
        stderr_of(&stranger)
    );
    let root = s.aws(&[
        "sts",
        "assume-role",
        "--role-arn",
        role_arn,
        "--role-session-name",
        "r1",
    ]);
    assert_aws_error(&root, "AccessDenied");
    assert!(stderr_of(&root).contains("Roles may not be assumed by root accounts."));
    // A duration past the role's maximum.
    assert_aws_error(
        &as_user(
            &keys[0],
            &[
                "sts",
                "assume-role",
                "--role-arn",
                role_arn,
                "--role-session-name",
                "long",
                "--duration-seconds",
                "7200",
            ],
        ),
        "ValidationError",
    );
}

/// The registry authorizes every push and pull for the identity its token was issued to:
/// a user allowed only to pull from one repository pulls it with `docker pull`, and its
/// `docker push` (to that repository or another) is DENIED.
#[test]
fn a_pull_only_user_pulls_and_is_denied_pushes() {
    let s = BerthServer::start();
    let repo = berth_e2e::unique("pull-only-");
    let other = berth_e2e::unique("other-");
    s.create_repo(&repo, &[]);
    s.create_repo(&other, &[]);
    let reference = s.docker_push_test_image(&repo, "v1");
    s.docker_push_test_image(&other, "seed");

    ok_json(&s.aws(&["iam", "create-user", "--user-name", "reader"]));
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[
            {{"Effect":"Allow","Action":"ecr:GetAuthorizationToken","Resource":"*"}},
            {{"Effect":"Allow","Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer","ecr:BatchCheckLayerAvailability"],
              "Resource":"arn:aws:ecr:us-east-1:000000000000:repository/{repo}"}}]}}"#
    );
    ok_empty(&s.aws(&[
        "iam",
        "put-user-policy",
        "--user-name",
        "reader",
        "--policy-name",
        "pull",
        "--policy-document",
        &policy,
    ]));
    let (id, secret) = access_key(&s, "reader");
    let password = s.aws_with("us-east-1", &id, &secret, &["ecr", "get-login-password"]);
    docker_login_with(&s, &password);

    // Pull: allowed.
    s.docker(&["rmi", "-f", &reference]);
    let pulled = s.docker(&["pull", &reference]);
    assert!(pulled.status.success(), "{}", stderr_of(&pulled));
    // Push, to either repository: DENIED.
    for target in [
        format!("{}/{other}:v1", s.host()),
        format!("{}/{repo}:v2", s.host()),
    ] {
        assert!(s.docker(&["tag", &reference, &target]).status.success());
        s.track_image(&target);
        let pushed = s.docker(&["push", &target]);
        assert!(!pushed.status.success(), "push to {target} was allowed");
        let err = stderr_of(&pushed).to_lowercase();
        assert!(err.contains("denied"), "{err}");
    }
    // Other repositories are invisible: not described, not listed, not pulled.
    let as_reader = |args: &[&str]| s.aws_with("us-east-1", &id, &secret, args);
    let described = as_reader(&["ecr", "describe-repositories", "--repository-names", &other]);
    assert_aws_error(&described, "AccessDeniedException");
    assert!(
        stderr_of(&described).contains(&format!(
            "User: arn:aws:iam::000000000000:user/reader is not authorized to perform: ecr:DescribeRepositories on resource: arn:aws:ecr:us-east-1:000000000000:repository/{other}"
        )),
        "{}",
        stderr_of(&described)
    );
    assert_aws_error(
        &as_reader(&["ecr", "describe-repositories"]),
        "AccessDeniedException",
    );
    assert_aws_error(
        &as_reader(&["ecr", "list-images", "--repository-name", &other]),
        "AccessDeniedException",
    );
    let other_image = format!("{}/{other}:seed", s.host());
    s.docker(&["rmi", "-f", &other_image]);
    let pulled = s.docker(&["pull", &other_image]);
    assert!(!pulled.status.success(), "a pull from {other} was allowed");
    let err = stderr_of(&pulled).to_lowercase();
    assert!(err.contains("denied"), "{err}");
    // ECS calls: refused with AWS's message.
    let ecs = as_reader(&["ecs", "list-clusters"]);
    assert_aws_error(&ecs, "AccessDeniedException");
    assert!(
        stderr_of(&ecs).contains(
            "User: arn:aws:iam::000000000000:user/reader is not authorized to perform: ecs:ListClusters on resource: * because no identity-based policy allows the ecs:ListClusters action"
        ),
        "{}",
        stderr_of(&ecs)
    );
}

/// A new access key of `user`: its id and secret.
fn access_key(s: &BerthServer, user: &str) -> (String, String) {
    let key = ok_json(&s.aws(&["iam", "create-access-key", "--user-name", user]));
    let field = |f: &str| key["AccessKey"][f].as_str().unwrap().to_owned();
    (field("AccessKeyId"), field("SecretAccessKey"))
}

/// `docker login` with the password an `aws ecr get-login-password` printed.
#[track_caller]
fn docker_login_with(s: &BerthServer, password: &std::process::Output) {
    assert!(password.status.success(), "{}", stderr_of(password));
    let login = s.docker_stdin(
        &["login", "--username", "AWS", "--password-stdin", &s.host()],
        Some(berth_e2e::stdout_of(password).trim()),
    );
    assert!(login.status.success(), "{}", stderr_of(&login));
}
