//! Several installations on one Docker Engine, and what a host keeps: two `berth up` side
//! by side each run a service on `subnet-default` with their own addresses; `berth down` on
//! one removes all of its Docker objects and none of the other's; a task that cannot start
//! leaves no container behind; a restarted agent removes the containers of tasks stopped
//! past the cleanup wait.

use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use berth_e2e::docker_agent::{
    Agent, cluster_with_image, containers_of, register, register_fargate, run_task, wait_for,
    wait_instances, wait_status,
};
use berth_e2e::network::{DefaultNetwork, in_block};
use berth_e2e::{BerthServer, ServerOptions, ok_json, stdout_of, unique};
use serde_json::{Value, json};

/// The ids of the Docker objects of `kind` (`ps -a`, `network ls`, `volume ls`) carrying
/// the installation's label.
fn objects(kind: &[&str], installation: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args(kind)
        .args([
            "-q",
            "--filter",
            &format!("label=berth.installation={installation}"),
        ])
        .output()
        .expect("docker");
    stdout_of(&out)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

fn containers(installation: &str) -> Vec<String> {
    objects(&["ps", "-a"], installation)
}

fn networks(installation: &str) -> Vec<String> {
    objects(&["network", "ls"], installation)
}

fn curl(ip: &str, port: u16) -> Option<String> {
    let out = Command::new("curl")
        .args(["-fsS", "--max-time", "3", &format!("http://{ip}:{port}/")])
        .output()
        .ok()?;
    out.status.success().then(|| stdout_of(&out))
}

/// An installation running a one-task Fargate service on `subnet-default` that serves
/// `marker`; the task's address once it answers.
fn quickstart_service(s: &BerthServer, marker: &str) -> String {
    wait_instances(s, "berth-fargate-pool", 1);
    ok_json(&s.aws(&["ecs", "create-cluster", "--cluster-name", "default"]));
    let repo = unique("shared-img-");
    s.create_repo(&repo, &[]);
    let image = s.docker_push_test_image(&repo, "v1");
    let td = register_fargate(
        s,
        &unique("shared-"),
        &json!([{"name": "web", "image": image, "essential": true,
                 "entryPoint": ["sh", "-c"],
                 "command": [format!("mkdir -p /www && echo {marker} > /www/index.html && exec httpd -f -p 8000 -h /www")],
                 "portMappings": [{"containerPort": 8000}]}]),
        &json!([]),
    );
    ok_json(&s.aws(&[
        "ecs",
        "create-service",
        "--service-name",
        "web",
        "--task-definition",
        &td,
        "--desired-count",
        "1",
        "--launch-type",
        "FARGATE",
        "--network-configuration",
        "awsvpcConfiguration={subnets=[subnet-default],securityGroups=[sg-default],assignPublicIp=ENABLED}",
    ]));
    let ip = wait_for(
        "the service's task to run with an address",
        Duration::from_secs(120),
        || {
            let listed = ok_json(&s.aws(&["ecs", "list-tasks", "--service-name", "web"]));
            let arn = listed["taskArns"][0].as_str()?.to_owned();
            let task = ok_json(&s.aws(&["ecs", "describe-tasks", "--tasks", &arn]));
            let task = &task["tasks"][0];
            (task["lastStatus"] == "RUNNING").then_some(())?;
            task["attachments"][0]["details"]
                .as_array()?
                .iter()
                .find(|d| d["name"] == "privateIPv4Address")?["value"]
                .as_str()
                .map(str::to_owned)
        },
    );
    wait_for(
        &format!("http://{ip}:8000/ to answer {marker}"),
        Duration::from_secs(60),
        || curl(&ip, 8000).filter(|body| body.contains(marker)),
    );
    ip
}

#[test]
fn two_installations_share_a_host_and_berth_down_removes_only_its_own() {
    berth_e2e::require_tool("curl");
    let up = || {
        BerthServer::start_with(ServerOptions {
            command: Some("up"),
            ..ServerOptions::default()
        })
    };
    let mut a = up();
    let b = up();
    let (ia, ib) = (a.installation(), b.installation());
    assert_ne!(ia, ib, "each installation has its own id");

    let (marker_a, marker_b) = (unique("page-a-"), unique("page-b-"));
    let ip_a = quickstart_service(&a, &marker_a);
    let ip_b = quickstart_service(&b, &marker_b);
    assert_ne!(
        ip_a, ip_b,
        "one subnet id, two installations, two addresses"
    );
    // Each address is in its installation's default subnet, and the blocks are apart.
    let (net_a, net_b) = (DefaultNetwork::of(&a), DefaultNetwork::of(&b));
    let (block_a, block_b) = (&net_a.cidrs[0], &net_b.cidrs[0]);
    assert!(in_block(&ip_a, block_a), "{ip_a} in {block_a}");
    assert!(in_block(&ip_b, block_b), "{ip_b} in {block_b}");
    let start = |block: &str| block.split_once('/').unwrap().0.to_owned();
    assert!(
        !in_block(&start(block_a), block_b) && !in_block(&start(block_b), block_a),
        "their ranges do not overlap: {block_a} {block_b}"
    );
    // Each answers on its own address with its own page.
    assert!(curl(&ip_a, 8000).unwrap().contains(&marker_a));
    assert!(curl(&ip_b, 8000).unwrap().contains(&marker_b));

    // Every Docker object carries its installation in its label and name.
    let a_containers = containers(&ia);
    assert!(
        a_containers.len() >= 2,
        "task and infra containers: {a_containers:?}"
    );
    for id in &a_containers {
        let name = ok_json(&a.docker(&["inspect", id]))[0]["Name"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(name.contains(&ia), "{name} names its installation");
    }
    assert_eq!(networks(&ia).len(), 1);
    let network = ok_json(&a.docker(&["network", "inspect", &a.network_name(&net_a.subnets[0])]));
    assert_eq!(network[0]["Labels"]["berth.installation"], ia.as_str());
    let b_containers = containers(&ib);
    let b_networks = networks(&ib);

    // Ctrl-C: tasks outlive the control plane; it says so and how to stop them.
    let status = a.interrupt().expect("berth up was running");
    assert!(status.success(), "{status}");
    let said = a.stdout_log();
    assert!(
        said.contains("1 task is still running") && said.contains("berth down --data-dir"),
        "{said}"
    );
    assert!(
        curl(&ip_a, 8000).is_some(),
        "A's task outlives its control plane"
    );

    // berth down: all of A's objects go, none of B's.
    let down = a.down(&[]);
    assert!(down.status.success(), "{}", berth_e2e::stderr_of(&down));
    assert!(
        stdout_of(&down).contains("stopped 1 task"),
        "{}",
        stdout_of(&down)
    );
    assert_eq!(containers(&ia), Vec::<String>::new());
    assert_eq!(networks(&ia), Vec::<String>::new());
    assert_eq!(containers(&ib), b_containers);
    assert_eq!(networks(&ib), b_networks);
    assert!(curl(&ip_b, 8000).unwrap().contains(&marker_b));
    // --purge deletes the data dir too.
    let purged = a.down(&["--purge"]);
    assert!(purged.status.success(), "{}", berth_e2e::stderr_of(&purged));
    assert!(!a.data_dir().exists());
}

/// A container that cannot start because the host port it asks for is taken on this host
/// stops its task with ECS's reason, and its container is removed at once.
#[test]
fn a_task_that_cannot_start_leaves_no_container_behind() {
    let s = BerthServer::start();
    let (cluster, image) = cluster_with_image(&s, "nostart-");
    let _agent = Agent::start(&s, &cluster, &[]);
    wait_instances(&s, &cluster, 1);
    // Something else on this host holds the port.
    let holder = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let td = register(
        &s,
        &unique("nostart-"),
        json!([{"name": "web", "image": image, "memory": 32, "essential": true,
                "entryPoint": ["sh", "-c"], "command": ["exec sleep 100000"],
                "portMappings": [{"containerPort": 80, "hostPort": port}]}]),
    );
    let task = run_task(&s, &cluster, &td);
    let stopped = wait_status(&s, &cluster, &task, "STOPPED");
    let reason = stopped["stoppedReason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("CannotStartContainerError: Error response from daemon: "),
        "{stopped:#}"
    );
    assert_eq!(stopped["containers"][0]["reason"], stopped["stoppedReason"]);
    wait_for(
        "the task's container to be removed",
        Duration::from_secs(30),
        || containers_of(&s, &task).is_empty().then_some(()),
    );
    drop(holder);
}

/// An agent restarted after the cleanup wait of its stopped tasks has passed removes their
/// containers.
#[test]
fn a_restarted_agent_removes_containers_past_the_cleanup_wait() {
    let s = BerthServer::start();
    let (cluster, image) = cluster_with_image(&s, "cleanup-");
    // Long enough that the agent is surely killed before it is over, however late the
    // test sees STOPPED on a loaded host (8 s once was not).
    let flags = ["--cleanup-delay-seconds", "25"];
    let mut agent = Agent::start(&s, &cluster, &flags);
    wait_instances(&s, &cluster, 1);
    let td = register(
        &s,
        &unique("cleanup-"),
        json!([{"name": "app", "image": image, "memory": 32, "essential": true,
                "entryPoint": ["sh", "-c"], "command": ["exit 3"]}]),
    );
    let task = run_task(&s, &cluster, &td);
    let stopped: Value = wait_status(&s, &cluster, &task, "STOPPED");
    assert_eq!(stopped["containers"][0]["exitCode"], 3, "{stopped:#}");
    // It ran, so its container is kept (for `docker logs`) until the wait is over; the
    // agent goes away before then.
    let seen_stopped = Instant::now();
    agent.kill9();
    assert_eq!(containers_of(&s, &task).len(), 1);
    std::thread::sleep(Duration::from_secs(26).saturating_sub(seen_stopped.elapsed()));
    assert_eq!(
        containers_of(&s, &task).len(),
        1,
        "nobody removed it meanwhile"
    );
    agent.kill9_and_restart(&s, &flags);
    wait_for(
        "the restarted agent to remove the container",
        Duration::from_secs(30),
        || containers_of(&s, &task).is_empty().then_some(()),
    );
}
