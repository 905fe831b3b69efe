//! Several accounts in one installation (issue 18, item 5), through `berth accounts`, the
//! real `aws` CLI and Docker: each account's root keys act in that account, the same names
//! live apart in two accounts, a repository policy lets another account pull (and nothing
//! else does), and a role's trust policy lets another account assume it.

use berth_e2e::{BerthServer, assert_aws_error, ok_json, stderr_of, stdout_of, unique};
use serde_json::Value;

/// An account made by `berth accounts create`: its id and root key pair.
struct Account {
    id: String,
    key: String,
    secret: String,
}

#[track_caller]
fn create_account(s: &BerthServer, name: &str) -> Account {
    let out = s.berth_accounts(&["create", name]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let v: Value = serde_json::from_str(&stdout_of(&out)).expect("JSON from berth accounts");
    assert_eq!(v["AccountName"], name, "{v}");
    let field = |f: &str| {
        v[f].as_str()
            .unwrap_or_else(|| panic!("{f} in {v}"))
            .to_owned()
    };
    Account {
        id: field("AccountId"),
        key: field("AccessKeyId"),
        secret: field("SecretAccessKey"),
    }
}

impl Account {
    fn aws(&self, s: &BerthServer, args: &[&str]) -> std::process::Output {
        s.aws_with("us-east-1", &self.key, &self.secret, args)
    }
}

/// `docker login` to the server with the password an `aws ecr get-login-password` printed.
#[track_caller]
fn docker_login_with(s: &BerthServer, password: &std::process::Output) {
    assert!(password.status.success(), "{}", stderr_of(password));
    let login = s.docker_stdin(
        &["login", "--username", "AWS", "--password-stdin", &s.host()],
        Some(stdout_of(password).trim()),
    );
    assert!(login.status.success(), "{}", stderr_of(&login));
}

#[test]
fn accounts_are_made_and_act_apart() {
    let s = BerthServer::start();
    let a = create_account(&s, "team-a");
    assert_eq!(a.id.len(), 12, "{}", a.id);
    assert!(a.id.bytes().all(|b| b.is_ascii_digit()));
    assert_ne!(a.id, "000000000000");
    assert!(a.key.starts_with("AKIA"));
    // Names are unique; `default` is the default account's.
    assert!(!s.berth_accounts(&["create", "TEAM-A"]).status.success());
    assert!(!s.berth_accounts(&["create", "default"]).status.success());
    let listed: Value =
        serde_json::from_str(&stdout_of(&s.berth_accounts(&["list"]))).expect("list");
    let accounts = listed["Accounts"].as_array().expect("Accounts");
    assert_eq!(accounts.len(), 2, "{listed}");
    assert_eq!(accounts[0]["AccountId"], "000000000000");
    assert_eq!(accounts[0]["AccountName"], "default");
    assert_eq!(accounts[1]["AccountId"], a.id.as_str());
    assert!(accounts[1].get("SecretAccessKey").is_none(), "{listed}");

    // Its root keys act in it.
    let me = ok_json(&a.aws(&s, &["sts", "get-caller-identity"]));
    assert_eq!(me["Account"], a.id.as_str(), "{me}");
    assert_eq!(me["Arn"], format!("arn:aws:iam::{}:root", a.id), "{me}");
    assert_eq!(me["UserId"], a.id.as_str());
    let me = ok_json(&s.aws(&["sts", "get-caller-identity"]));
    assert_eq!(me["Account"], "000000000000");

    // Only the default account's root manages accounts.
    let signed_by_a = s.berth_accounts_as(&a.key, &a.secret, &["create", "team-c"]);
    assert!(!signed_by_a.status.success());
    assert!(
        stderr_of(&signed_by_a).contains("AccessDeniedException"),
        "{}",
        stderr_of(&signed_by_a)
    );

    // IAM is per account: a group and an instance profile made with A's root are A's, and
    // A's account details show them, not the default account's.
    let group = ok_json(&a.aws(&s, &["iam", "create-group", "--group-name", "ops"]));
    assert_eq!(
        group["Group"]["Arn"],
        format!("arn:aws:iam::{}:group/ops", a.id),
        "{group}"
    );
    ok_json(&a.aws(
        &s,
        &[
            "iam",
            "create-instance-profile",
            "--instance-profile-name",
            "web",
        ],
    ));
    assert!(
        !s.aws(&["iam", "get-group", "--group-name", "ops"])
            .status
            .success()
    );
    ok_json(&s.aws(&["iam", "create-group", "--group-name", "ops"]));
    let details = ok_json(&a.aws(&s, &["iam", "get-account-authorization-details"]));
    assert_eq!(
        details["GroupDetailList"][0]["Arn"],
        format!("arn:aws:iam::{}:group/ops", a.id),
        "{details}"
    );

    // The same names in two accounts do not collide.
    let cluster = unique("shared-");
    let repo = unique("app-");
    let in_default = ok_json(&s.aws(&["ecs", "create-cluster", "--cluster-name", &cluster]));
    let in_a = ok_json(&a.aws(&s, &["ecs", "create-cluster", "--cluster-name", &cluster]));
    assert_eq!(
        in_a["cluster"]["clusterArn"],
        format!("arn:aws:ecs:us-east-1:{}:cluster/{cluster}", a.id)
    );
    assert_eq!(
        in_default["cluster"]["clusterArn"],
        format!("arn:aws:ecs:us-east-1:000000000000:cluster/{cluster}")
    );
    let listed = ok_json(&a.aws(&s, &["ecs", "list-clusters"]));
    assert_eq!(
        listed["clusterArns"],
        serde_json::json!([in_a["cluster"]["clusterArn"]]),
        "{listed}"
    );
    let default_repo = s.create_repo(&repo, &[]);
    let a_repo = ok_json(&a.aws(
        &s,
        &["ecr", "create-repository", "--repository-name", &repo],
    ))["repository"]
        .clone();
    assert_eq!(
        default_repo["repositoryUri"],
        format!("{}/{repo}", s.host())
    );
    assert_eq!(
        a_repo["repositoryUri"],
        format!("{}/{}/{repo}", s.host(), a.id)
    );
    assert_eq!(a_repo["registryId"], a.id.as_str());
    assert_eq!(
        a_repo["repositoryArn"],
        format!("arn:aws:ecr:us-east-1:{}:repository/{repo}", a.id)
    );
    // On /v2/, a first path component that is an account's id picks its registry; without
    // one, the token's own account's. The default account's repository answers at both.
    let registry_as = |password: &std::process::Output| berth_e2e::Registry {
        port: s.port,
        authorization: Some(berth_e2e::basic_auth("AWS", stdout_of(password).trim())),
    };
    let root_registry = s.registry();
    let a_registry = registry_as(&a.aws(&s, &["ecr", "get-login-password"]));
    for path in [
        format!("/v2/{repo}/tags/list"),
        format!("/v2/000000000000/{repo}/tags/list"),
    ] {
        let r = root_registry.get(&path);
        assert_eq!(r.status, 200, "{path}: {}", r.describe());
    }
    for path in [
        format!("/v2/{}/{repo}/tags/list", a.id),
        format!("/v2/{repo}/tags/list"),
    ] {
        let r = a_registry.get(&path);
        assert_eq!(r.status, 200, "{path}: {}", r.describe());
    }
    let denied = root_registry.get(&format!("/v2/{}/{repo}/tags/list", a.id));
    assert_eq!(denied.status, 403, "{}", denied.describe());
    assert!(
        String::from_utf8_lossy(&denied.body).contains("DENIED"),
        "{}",
        denied.describe()
    );
    // An upload started under the account's path goes on under it.
    let upload = a_registry.start_upload(&format!("{}/{repo}", a.id));
    assert!(
        upload.starts_with(&format!("/v2/{}/{repo}/blobs/uploads/", a.id)),
        "{upload}"
    );

    // IAM is per account too.
    ok_json(&s.aws(&["iam", "create-user", "--user-name", "ci"]));
    let user = ok_json(&a.aws(&s, &["iam", "create-user", "--user-name", "ci"]));
    assert_eq!(
        user["User"]["Arn"],
        format!("arn:aws:iam::{}:user/ci", a.id)
    );
    // Another account's registry is not reachable without its repository policy: the
    // default root is refused a look at account A's repository.
    let refused = s.aws(&[
        "ecr",
        "describe-images",
        "--registry-id",
        &a.id,
        "--repository-name",
        &repo,
    ]);
    assert_aws_error(&refused, "AccessDeniedException");
    assert!(
        stderr_of(&refused).contains(&format!(
            "User: arn:aws:iam::000000000000:root is not authorized to perform: ecr:DescribeImages on resource: arn:aws:ecr:us-east-1:{}:repository/{repo} because no resource-based policy allows the ecr:DescribeImages action",
            a.id
        )),
        "{}",
        stderr_of(&refused)
    );
}

/// Account A's repository, pushed by A at `HOST:PORT/A/NAME`; account B pulls it with
/// Docker only once A's repository policy allows B; B's IAM user needs its own policy as
/// well (across accounts both must allow).
#[test]
fn a_cross_account_pull_is_allowed_by_a_repository_policy() {
    let s = BerthServer::start();
    let a = create_account(&s, "owner");
    let b = create_account(&s, "consumer");
    let repo = unique("shared-app-");
    let created = ok_json(&a.aws(
        &s,
        &["ecr", "create-repository", "--repository-name", &repo],
    ));
    let uri = created["repository"]["repositoryUri"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(uri, format!("{}/{}/{repo}", s.host(), a.id));
    docker_login_with(&s, &a.aws(&s, &["ecr", "get-login-password"]));
    let reference = format!("{uri}:v1");
    s.build_test_image(&reference);
    let pushed = s.docker(&["push", &reference]);
    assert!(pushed.status.success(), "{}", stderr_of(&pushed));
    let images = ok_json(&a.aws(&s, &["ecr", "list-images", "--repository-name", &repo]));
    assert_eq!(images["imageIds"][0]["imageTag"], "v1", "{images}");

    // B, without a repository policy: DENIED, by the registry and by the API.
    docker_login_with(&s, &b.aws(&s, &["ecr", "get-login-password"]));
    s.docker(&["rmi", "-f", &reference]);
    let pulled = s.docker(&["pull", &reference]);
    assert!(!pulled.status.success(), "B pulled without a policy");
    assert!(
        stderr_of(&pulled).to_lowercase().contains("denied"),
        "{}",
        stderr_of(&pulled)
    );
    let batch = [
        "ecr",
        "batch-get-image",
        "--registry-id",
        &a.id,
        "--repository-name",
        &repo,
        "--image-ids",
        "imageTag=v1",
    ];
    let refused = b.aws(&s, &batch);
    assert_aws_error(&refused, "AccessDeniedException");
    assert!(
        stderr_of(&refused)
            .contains("because no resource-based policy allows the ecr:BatchGetImage action"),
        "{}",
        stderr_of(&refused)
    );

    // A policy naming a user B does not have is refused, as ECR refuses it.
    let ghost = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow",
            "Principal":{{"AWS":"arn:aws:iam::{}:user/ghost"}},"Action":"ecr:BatchGetImage"}}]}}"#,
        b.id
    );
    let refused = a.aws(
        &s,
        &[
            "ecr",
            "set-repository-policy",
            "--repository-name",
            &repo,
            "--policy-text",
            &ghost,
        ],
    );
    assert_aws_error(&refused, "InvalidParameterException");
    assert!(
        stderr_of(&refused).contains(
            "Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Principal not found'"
        ),
        "{}",
        stderr_of(&refused)
    );

    // A's repository policy lets B's account pull.
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"pull","Effect":"Allow",
            "Principal":{{"AWS":"arn:aws:iam::{}:root"}},
            "Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer","ecr:BatchCheckLayerAvailability"]}}]}}"#,
        b.id
    );
    ok_json(&a.aws(
        &s,
        &[
            "ecr",
            "set-repository-policy",
            "--repository-name",
            &repo,
            "--policy-text",
            &policy,
        ],
    ));
    let pulled = s.docker(&["pull", &reference]);
    assert!(pulled.status.success(), "{}", stderr_of(&pulled));
    let got = ok_json(&b.aws(&s, &batch));
    assert_eq!(got["images"][0]["imageId"]["imageTag"], "v1", "{got}");
    assert_eq!(got["images"][0]["registryId"], a.id.as_str(), "{got}");
    // Only what the policy names: B may not push to A's repository.
    let pushed = s.docker(&["push", &reference]);
    assert!(!pushed.status.success(), "B pushed to A's repository");
    // Nor list A's images (not in the policy).
    assert_aws_error(
        &b.aws(
            &s,
            &[
                "ecr",
                "list-images",
                "--registry-id",
                &a.id,
                "--repository-name",
                &repo,
            ],
        ),
        "AccessDeniedException",
    );

    // B's IAM user: the repository policy names B's account, which delegates to B's own
    // policies, so the user needs an identity policy too.
    ok_json(&b.aws(&s, &["iam", "create-user", "--user-name", "puller"]));
    let key = ok_json(&b.aws(&s, &["iam", "create-access-key", "--user-name", "puller"]));
    let (uid, usecret) = (
        key["AccessKey"]["AccessKeyId"].as_str().unwrap().to_owned(),
        key["AccessKey"]["SecretAccessKey"]
            .as_str()
            .unwrap()
            .to_owned(),
    );
    let as_user = |args: &[&str]| s.aws_with("us-east-1", &uid, &usecret, args);
    let refused = as_user(&batch);
    assert_aws_error(&refused, "AccessDeniedException");
    assert!(
        stderr_of(&refused)
            .contains("because no identity-based policy allows the ecr:BatchGetImage action"),
        "{}",
        stderr_of(&refused)
    );
    let user_policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"ecr:BatchGetImage",
            "Resource":"arn:aws:ecr:us-east-1:{}:repository/{repo}"}}]}}"#,
        a.id
    );
    let put = b.aws(
        &s,
        &[
            "iam",
            "put-user-policy",
            "--user-name",
            "puller",
            "--policy-name",
            "pull",
            "--policy-document",
            &user_policy,
        ],
    );
    assert!(put.status.success(), "{}", stderr_of(&put));
    let got = ok_json(&as_user(&batch));
    assert_eq!(got["images"][0]["imageId"]["imageTag"], "v1", "{got}");
}

/// A role of account A whose trust policy names account B: B's user with sts:AssumeRole on
/// it gets credentials acting in A; a role that does not trust B refuses it.
#[test]
fn a_role_is_assumed_across_accounts() {
    let s = BerthServer::start();
    let a = create_account(&s, "owner");
    let b = create_account(&s, "visitor");
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow",
            "Principal":{{"AWS":"arn:aws:iam::{}:root"}},"Action":"sts:AssumeRole"}}]}}"#,
        b.id
    );
    let role = ok_json(&a.aws(
        &s,
        &[
            "iam",
            "create-role",
            "--role-name",
            "deployer",
            "--assume-role-policy-document",
            &trust,
        ],
    ));
    let role_arn = role["Role"]["Arn"].as_str().unwrap().to_owned();
    assert_eq!(role_arn, format!("arn:aws:iam::{}:role/deployer", a.id));
    ok_json(&a.aws(
        &s,
        &[
            "iam",
            "put-role-policy",
            "--role-name",
            "deployer",
            "--policy-name",
            "ecs",
            "--policy-document",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecs:*","Resource":"*"}]}"#,
        ],
    ));
    let untrusting = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow",
            "Principal":{{"AWS":"arn:aws:iam::{}:root"}},"Action":"sts:AssumeRole"}}]}}"#,
        a.id
    );
    ok_json(&a.aws(
        &s,
        &[
            "iam",
            "create-role",
            "--role-name",
            "private",
            "--assume-role-policy-document",
            &untrusting,
        ],
    ));

    ok_json(&b.aws(&s, &["iam", "create-user", "--user-name", "ops"]));
    let allow = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"sts:AssumeRole",
            "Resource":"arn:aws:iam::{}:role/*"}}]}}"#,
        a.id
    );
    let put = b.aws(
        &s,
        &[
            "iam",
            "put-user-policy",
            "--user-name",
            "ops",
            "--policy-name",
            "assume",
            "--policy-document",
            &allow,
        ],
    );
    assert!(put.status.success(), "{}", stderr_of(&put));
    let key = ok_json(&b.aws(&s, &["iam", "create-access-key", "--user-name", "ops"]));
    let (uid, usecret) = (
        key["AccessKey"]["AccessKeyId"].as_str().unwrap().to_owned(),
        key["AccessKey"]["SecretAccessKey"]
            .as_str()
            .unwrap()
            .to_owned(),
    );
    let as_ops = |args: &[&str]| s.aws_with("us-east-1", &uid, &usecret, args);
    let me = ok_json(&as_ops(&["sts", "get-caller-identity"]));
    assert_eq!(me["Arn"], format!("arn:aws:iam::{}:user/ops", b.id));

    let assumed = ok_json(&as_ops(&[
        "sts",
        "assume-role",
        "--role-arn",
        &role_arn,
        "--role-session-name",
        "visit",
    ]));
    assert_eq!(
        assumed["AssumedRoleUser"]["Arn"],
        format!("arn:aws:sts::{}:assumed-role/deployer/visit", a.id),
        "{assumed}"
    );
    let creds = &assumed["Credentials"];
    let session = |args: &[&str]| {
        let mut command = s.aws_command(
            "us-east-1",
            creds["AccessKeyId"].as_str().unwrap(),
            creds["SecretAccessKey"].as_str().unwrap(),
            args,
        );
        command
            .env("AWS_SESSION_TOKEN", creds["SessionToken"].as_str().unwrap())
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run aws")
    };
    let me = ok_json(&session(&["sts", "get-caller-identity"]));
    assert_eq!(me["Account"], a.id.as_str(), "{me}");
    // The session acts in A: its cluster is A's.
    let cluster = unique("visited-");
    let made = ok_json(&session(&[
        "ecs",
        "create-cluster",
        "--cluster-name",
        &cluster,
    ]));
    assert_eq!(
        made["cluster"]["clusterArn"],
        format!("arn:aws:ecs:us-east-1:{}:cluster/{cluster}", a.id)
    );
    let listed = ok_json(&a.aws(&s, &["ecs", "list-clusters"]));
    assert_eq!(listed["clusterArns"][0], made["cluster"]["clusterArn"]);

    // A role that trusts only its own account: refused, as AWS words it.
    let private = format!("arn:aws:iam::{}:role/private", a.id);
    let refused = as_ops(&[
        "sts",
        "assume-role",
        "--role-arn",
        &private,
        "--role-session-name",
        "visit",
    ]);
    assert_aws_error(&refused, "AccessDenied");
    assert!(
        stderr_of(&refused).contains(&format!(
            "User: arn:aws:iam::{}:user/ops is not authorized to perform: sts:AssumeRole on resource: {private}",
            b.id
        )),
        "{}",
        stderr_of(&refused)
    );
    // B's root (not a user) is refused any role, as AWS refuses roots.
    assert_aws_error(
        &b.aws(
            &s,
            &[
                "sts",
                "assume-role",
                "--role-arn",
                &role_arn,
                "--role-session-name",
                "root",
            ],
        ),
        "AccessDenied",
    );
}

/// With no server running, `berth accounts create --offline` writes the store itself; the
/// server started on it afterwards knows the account.
#[test]
fn an_account_made_offline_is_known_to_the_next_server() {
    let mut s = BerthServer::start();
    s.interrupt();
    let dir = s.data_dir().to_str().unwrap().to_owned();
    let out = s.berth_plain(&[
        "accounts",
        "create",
        "offline-team",
        "--offline",
        "--data-dir",
        &dir,
    ]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let made: Value = serde_json::from_str(&stdout_of(&out)).expect("JSON");
    let listed = s.berth_plain(&["accounts", "list", "--offline", "--data-dir", &dir]);
    assert!(listed.status.success(), "{}", stderr_of(&listed));
    let listed: Value = serde_json::from_str(&stdout_of(&listed)).expect("JSON");
    assert_eq!(
        listed["Accounts"][1]["AccountId"], made["AccountId"],
        "{listed}"
    );

    s.restart();
    let me = ok_json(&s.aws_with(
        "us-east-1",
        made["AccessKeyId"].as_str().unwrap(),
        made["SecretAccessKey"].as_str().unwrap(),
        &["sts", "get-caller-identity"],
    ));
    assert_eq!(me["Account"], made["AccountId"], "{me}");
    // The running server's list agrees.
    let listed: Value =
        serde_json::from_str(&stdout_of(&s.berth_accounts(&["list"]))).expect("list");
    assert_eq!(
        listed["Accounts"][1]["AccountName"], "offline-team",
        "{listed}"
    );
}
