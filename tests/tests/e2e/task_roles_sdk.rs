//! A real AWS SDK inside a task: Debian bookworm's `python3-boto3`, in an image made locally
//! from a debootstrap root filesystem (`scripts/sdk-image.sh`; nothing pulled), pushed to
//! Berth's ECR and run by `berth agent` with a task role. The container has no credentials
//! of its own: boto3's container provider finds the role's at 169.254.170.2 through
//! `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`, and calls Berth with them — an action the role
//! allows succeeds, one it does not is AccessDeniedException. In bridge mode (the NAT rule
//! in `PREROUTING`; Berth reached at Docker's bridge gateway) and host mode (the rule in
//! `OUTPUT`; Berth at 127.0.0.1).

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use berth_e2e::docker_agent::{Agent, containers_of, wait_connected, wait_for, wait_status};
use berth_e2e::{
    BerthServer, ServerOptions, assert_ok, ok_json, stdout_of, unique, workspace_root,
};
use serde_json::json;

use crate::task_roles::{TRUST_ECS_TASKS, docker_logs, register, run, task_role};

/// What the container runs: the SDK's default credential chain (nothing configured but
/// what ECS gives), one allowed call, one refused call; each outcome on its own line.
const SCRIPT: &str = r#"
import os, boto3, botocore
for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
    assert name not in os.environ, name
session = boto3.session.Session()
print("PROVIDER=" + session.get_credentials().method, flush=True)
# bookworm's botocore predates AWS_ENDPOINT_URL: the script passes it on.
ecs = session.client("ecs", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
ecs.list_clusters()
print("ALLOWED=OK", flush=True)
try:
    ecs.create_cluster(clusterName=os.environ["DENIED_CLUSTER"])
    print("DENIED=none", flush=True)
except botocore.exceptions.ClientError as e:
    print("DENIED=" + e.response["Error"]["Code"], flush=True)
"#;

/// The boto3 root filesystem's tarball, made by `scripts/sdk-image.sh` when missing (it
/// runs debootstrap once; later runs find the tarball).
fn sdk_rootfs() -> PathBuf {
    let tarball = workspace_root().join("target/sdk-image/bookworm-boto3.tar");
    if !tarball.exists() {
        let out = Command::new(workspace_root().join("scripts/sdk-image.sh"))
            .output()
            .expect("run scripts/sdk-image.sh");
        assert_ok(
            &out,
            "scripts/sdk-image.sh (debootstrap of bookworm with python3-boto3)",
        );
    }
    tarball
}

/// The address containers on Docker's default bridge reach the host at: the bridge's
/// gateway, or (Docker often records none) its subnet's first address, as the agent finds it.
fn bridge_gateway(s: &BerthServer) -> String {
    let out = s.docker(&[
        "network",
        "inspect",
        "bridge",
        "--format",
        "{{range .IPAM.Config}}{{.Gateway}} {{.Subnet}}{{end}}",
    ]);
    assert_ok(&out, "docker network inspect bridge");
    let text = stdout_of(&out);
    let mut words = text.split_whitespace();
    let (first, second) = (words.next(), words.next());
    if let (Some(gateway), Some(_)) = (first, second) {
        return gateway.to_owned();
    }
    let subnet = first.unwrap_or_else(|| panic!("the bridge network has no subnet: {text}"));
    let (address, prefix) = subnet.split_once('/').unwrap();
    let address: Ipv4Addr = address.parse().unwrap();
    let mask = u32::MAX << (32 - prefix.parse::<u32>().unwrap());
    Ipv4Addr::from((u32::from(address) & mask) + 1).to_string()
}

/// The task's container's output once its script has finished (or failed).
fn script_output(s: &BerthServer, task: &str) -> String {
    wait_for(
        "the container's script to finish",
        Duration::from_secs(120),
        || {
            let id = containers_of(s, task).into_iter().next()?;
            let logs = docker_logs(&id);
            (logs.contains("DENIED=") || logs.contains("Traceback")).then_some(logs)
        },
    )
}

#[test]
fn boto3_in_a_task_acts_as_its_role_in_bridge_and_host_modes() {
    let tarball = sdk_rootfs();
    // On every address: bridge-mode containers call the server at the bridge's gateway.
    let s = BerthServer::start_with(ServerOptions {
        listen_ip: Some("0.0.0.0"),
        ..ServerOptions::default()
    });
    let cluster = unique("sdk-");
    ok_json(&s.aws(&["ecs", "create-cluster", "--cluster-name", &cluster]));
    let repo = unique("sdk-boto3-");
    s.create_repo(&repo, &[]);
    assert_ok(&s.docker_login(), "docker login");
    let image = format!("{}/{repo}:bookworm", s.host());
    s.track_image(&image);
    assert_ok(
        &s.docker(&["import", tarball.to_str().unwrap(), &image]),
        "docker import of the boto3 root filesystem",
    );
    assert_ok(&s.docker(&["push", &image]), "docker push");
    let _agent = Agent::start(&s, &cluster, &["--cleanup-delay-seconds", "600"]);
    wait_connected(&s, &cluster);
    let role = task_role(&s, &unique("sdk-"), TRUST_ECS_TASKS);

    let gateway = bridge_gateway(&s);
    for (mode, host) in [("bridge", gateway.as_str()), ("host", "127.0.0.1")] {
        let denied_cluster = unique("denied-");
        let container = json!({
            "name": "sdk",
            "image": image,
            "memory": 128,
            "essential": true,
            "entryPoint": ["python3", "-c"],
            "command": [SCRIPT],
            "environment": [
                {"name": "AWS_ENDPOINT_URL", "value": format!("http://{host}:{}", s.port)},
                {"name": "AWS_DEFAULT_REGION", "value": "us-east-1"},
                {"name": "DENIED_CLUSTER", "value": denied_cluster},
            ],
        });
        let td = register(&s, &unique("sdk-"), &role, mode, json!([container]));
        let task = run(&s, &cluster, &td, &[]);
        let logs = script_output(&s, &task);
        assert!(
            logs.contains("PROVIDER=container-role"),
            "{mode}: boto3 took its credentials from the container provider: {logs}"
        );
        assert!(logs.contains("ALLOWED=OK"), "{mode}: {logs}");
        assert!(
            logs.contains("DENIED=AccessDeniedException"),
            "{mode}: {logs}"
        );
        wait_status(&s, &cluster, &task, "STOPPED");
        // The refused call really was refused.
        let clusters = ok_json(&s.aws(&["ecs", "list-clusters"]));
        assert!(
            !clusters.to_string().contains(&denied_cluster),
            "{clusters:#}"
        );
    }
}
