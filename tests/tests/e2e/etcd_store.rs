//! The control plane's state in etcd (`berth server --store etcd://…`): a three-member etcd
//! cluster from Debian's etcd-server on loopback ports, driven by the real aws CLI and
//! docker. Each test says SKIPPED plainly when etcd is not installed (scripts/test.sh
//! installs it).

use berth_e2e::{BerthServer, ServerOptions, assert_ok, ok_json, unique};
use berth_store::testing::EtcdCluster;

fn etcd() -> Option<EtcdCluster> {
    let cluster = EtcdCluster::start(3);
    if cluster.is_none() {
        eprintln!("SKIPPED: etcd is not installed (scripts/test.sh installs etcd-server)");
    }
    cluster
}

fn store_args(etcd: &EtcdCluster) -> Vec<String> {
    vec!["--store".into(), etcd.url()]
}

fn cluster_names(s: &BerthServer) -> Vec<String> {
    let listed = ok_json(&s.aws(&["ecs", "list-clusters"]));
    let mut names: Vec<String> = listed["clusterArns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().rsplit('/').next().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

fn image_digest(s: &BerthServer, repo: &str) -> String {
    let images = ok_json(&s.aws(&["ecr", "describe-images", "--repository-name", repo]));
    images["imageDetails"][0]["imageDigest"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// ECS, ECR and Logs keep their state in etcd: it is all there after the server is killed
/// and started again with an empty data dir's worth of state (the embedded store is never
/// opened), and losing one etcd member of three changes nothing.
#[test]
fn a_server_on_etcd_keeps_state_there_and_rides_out_a_member_loss() {
    let Some(mut etcd) = etcd() else { return };
    let mut s = BerthServer::start_with(ServerOptions {
        args: store_args(&etcd),
        ..Default::default()
    });
    let cluster = unique("etcd-");
    assert_ok(
        &s.aws(&["ecs", "create-cluster", "--cluster-name", &cluster]),
        "create-cluster",
    );
    let family = unique("fam-");
    assert_ok(
        &s.aws(&[
            "ecs",
            "register-task-definition",
            "--family",
            &family,
            "--container-definitions",
            r#"[{"name":"app","image":"busybox","memory":64}]"#,
        ]),
        "register-task-definition",
    );
    let repo = unique("etcd-repo-");
    s.create_repo(&repo, &[]);
    s.docker_push_test_image(&repo, "v1");
    let digest = image_digest(&s, &repo);
    let group = unique("/etcd/");
    assert_ok(
        &s.aws(&["logs", "create-log-group", "--log-group-name", &group]),
        "create-log-group",
    );
    assert!(
        !s.data_dir().join("state.redb").exists(),
        "with --store etcd the embedded store is never made"
    );

    // One member of three goes: writes and reads go on.
    etcd.kill(0);
    let second = unique("etcd-");
    assert_ok(
        &s.aws(&["ecs", "create-cluster", "--cluster-name", &second]),
        "create-cluster with a member down",
    );
    let mut expected = vec![cluster.clone(), second.clone()];
    expected.sort();
    assert_eq!(cluster_names(&s), expected);

    // kill -9 and start again: everything acknowledged is in etcd.
    s.restart();
    assert_eq!(cluster_names(&s), expected);
    assert_eq!(image_digest(&s, &repo), digest);
    let td = ok_json(&s.aws(&[
        "ecs",
        "describe-task-definition",
        "--task-definition",
        &family,
    ]));
    assert_eq!(td["taskDefinition"]["revision"], 1);
    let groups = ok_json(&s.aws(&[
        "logs",
        "describe-log-groups",
        "--log-group-name-prefix",
        &group,
    ]));
    assert_eq!(groups["logGroups"][0]["logGroupName"], group.as_str());
    // The member comes back and catches up; the server never noticed.
    etcd.restart(0);
    assert_ok(
        &s.aws(&["ecs", "describe-clusters", "--clusters", &second]),
        "describe-clusters after the member's return",
    );
}

/// `berth store copy` moves an installation from its embedded store to etcd: the same
/// server, started on etcd, shows what it had.
#[test]
fn store_copy_moves_an_installation_to_etcd() {
    let Some(etcd) = etcd() else { return };
    let mut s = BerthServer::start();
    let cluster = unique("moved-");
    assert_ok(
        &s.aws(&["ecs", "create-cluster", "--cluster-name", &cluster]),
        "create-cluster",
    );
    let repo = unique("moved-repo-");
    s.create_repo(&repo, &[]);
    s.docker_push_test_image(&repo, "v1");
    let digest = image_digest(&s, &repo);
    s.interrupt();

    let data_dir = s.data_dir().to_str().unwrap().to_owned();
    let copied = s.berth_plain(&["store", "copy", "--from", &data_dir, "--to", &etcd.url()]);
    assert_ok(&copied, "berth store copy");
    assert!(
        berth_e2e::stdout_of(&copied).starts_with("copied "),
        "{}",
        berth_e2e::stdout_of(&copied)
    );
    // Copying again is refused: the destination is no longer empty.
    let again = s.berth_plain(&["store", "copy", "--from", &data_dir, "--to", &etcd.url()]);
    assert!(!again.status.success());
    assert!(
        berth_e2e::stderr_of(&again).contains("already holds keys"),
        "{}",
        berth_e2e::stderr_of(&again)
    );

    s.set_args(store_args(&etcd));
    std::fs::remove_file(s.data_dir().join("state.redb")).unwrap();
    s.restart();
    assert!(cluster_names(&s).contains(&cluster));
    assert_eq!(image_digest(&s, &repo), digest);
    // The blobs stayed in the data dir: the image still pulls.
    s.docker(&["rmi", "-f", &format!("{}/{repo}:v1", s.host())]);
    assert_ok(
        &s.docker(&["pull", &format!("{}/{repo}:v1", s.host())]),
        "docker pull after the move",
    );
}

/// `--etcd-ca/--etcd-cert/--etcd-key`: a server on etcd members that speak TLS and require a
/// client certificate.
#[test]
fn a_server_reaches_etcd_over_tls_with_a_client_certificate() {
    let Some(etcd) = EtcdCluster::start_tls(3) else {
        eprintln!("SKIPPED: etcd is not installed (scripts/test.sh installs etcd-server)");
        return;
    };
    let file = |name: &str| etcd.dir().join(name).display().to_string();
    let s = BerthServer::start_with(ServerOptions {
        args: vec![
            "--store".into(),
            etcd.url(),
            "--etcd-ca".into(),
            file("ca.crt"),
            "--etcd-cert".into(),
            file("client.crt"),
            "--etcd-key".into(),
            file("client.key"),
        ],
        ..Default::default()
    });
    let cluster = unique("tls-");
    assert_ok(
        &s.aws(&["ecs", "create-cluster", "--cluster-name", &cluster]),
        "create-cluster",
    );
    assert_eq!(cluster_names(&s), [cluster]);
}
