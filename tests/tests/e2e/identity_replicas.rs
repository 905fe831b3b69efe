//! Identity on replicas: each replica keeps its callers' parsed policies in memory
//! (`crates/iam/src/policy_cache.rs`), checked per request against the account's IAM
//! generation in the store. A change made through one replica applies to the very next
//! request served by another, through the real `aws` CLI. Replicas on a one-member etcd
//! (Debian's etcd-server); SKIPPED plainly when etcd is not installed.

use berth_e2e::{BerthServer, ServerOptions, assert_aws_error, ok_json, random_secret, unique};
use berth_store::testing::EtcdCluster;

fn allow(actions: &[&str]) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]
    })
    .to_string()
}

#[test]
fn a_policy_changed_through_one_replica_applies_to_the_next_request_on_another() {
    let Some(etcd) = EtcdCluster::start(1) else {
        eprintln!("SKIPPED: etcd is not installed (scripts/test.sh installs etcd-server)");
        return;
    };
    let secret = random_secret();
    let replica = || {
        BerthServer::start_with(ServerOptions {
            args: vec!["--store".into(), etcd.url()],
            secret_key: Some(secret.clone()),
            ..Default::default()
        })
    };
    let (a, b) = (replica(), replica());
    let user = unique("cached-");
    ok_json(&a.aws(&["iam", "create-user", "--user-name", &user]));
    let key = ok_json(&a.aws(&["iam", "create-access-key", "--user-name", &user]));
    let (id, key_secret) = (
        key["AccessKey"]["AccessKeyId"].as_str().unwrap().to_owned(),
        key["AccessKey"]["SecretAccessKey"]
            .as_str()
            .unwrap()
            .to_owned(),
    );
    let as_user = |s: &BerthServer, args: &[&str]| s.aws_with("us-east-1", &id, &key_secret, args);
    let list = ["ecs", "list-clusters"];

    // An inline policy put through A: B serves it, twice (the second from its cache).
    let put = |s: &BerthServer, name: &str, document: &str| {
        ok_json(&s.aws(&[
            "iam",
            "put-user-policy",
            "--user-name",
            &user,
            "--policy-name",
            name,
            "--policy-document",
            document,
        ]))
    };
    assert_aws_error(&as_user(&b, &list), "AccessDeniedException");
    put(&a, "list", &allow(&["ecs:ListClusters"]));
    ok_json(&as_user(&b, &list));
    ok_json(&as_user(&b, &list));
    // Deleted through A: refused by B at once.
    ok_json(&a.aws(&[
        "iam",
        "delete-user-policy",
        "--user-name",
        &user,
        "--policy-name",
        "list",
    ]));
    assert_aws_error(&as_user(&b, &list), "AccessDeniedException");

    // A managed policy attached through B: A serves it; a new default version made through
    // B that no longer allows the call: A refuses it at once.
    let arn = ok_json(&b.aws(&[
        "iam",
        "create-policy",
        "--policy-name",
        &unique("list-"),
        "--policy-document",
        &allow(&["ecs:ListClusters"]),
    ]))["Policy"]["Arn"]
        .as_str()
        .unwrap()
        .to_owned();
    ok_json(&b.aws(&[
        "iam",
        "attach-user-policy",
        "--user-name",
        &user,
        "--policy-arn",
        &arn,
    ]));
    ok_json(&as_user(&a, &list));
    ok_json(&as_user(&a, &list));
    ok_json(&b.aws(&[
        "iam",
        "create-policy-version",
        "--policy-arn",
        &arn,
        "--policy-document",
        &allow(&["ecs:DescribeClusters"]),
        "--set-as-default",
    ]));
    assert_aws_error(&as_user(&a, &list), "AccessDeniedException");
    ok_json(&as_user(&a, &["ecs", "describe-clusters"]));
}
