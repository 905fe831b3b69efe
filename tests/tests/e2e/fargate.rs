//! Fargate on `berth up`, with the real `aws` CLI and Docker: the containers of one task
//! reach each other on localhost; two tasks get distinct addresses; the task's memory is a
//! real limit (a container allocating beyond it is OOM-killed and the task stops with ECS's
//! reasons); a file written through an EFS volume is there for the next task; definitions
//! Fargate cannot run are refused with ECS's messages.

use std::process::Command;
use std::time::Duration;

use berth_e2e::docker_agent::{Agent, register_fargate, wait_for, wait_instances, wait_status};
use berth_e2e::{BerthServer, ServerOptions, ok_json, stderr_of, stdout_of, unique};
use serde_json::{Value, json};

const POOL: &str = "berth-fargate-pool";

struct Fargate {
    s: BerthServer,
    image: String,
    subnet: String,
}

impl Fargate {
    fn start() -> Fargate {
        let s = BerthServer::start_with(ServerOptions {
            command: Some("up"),
            ..ServerOptions::default()
        });
        wait_instances(&s, POOL, 1);
        ok_json(&s.aws(&["ecs", "create-cluster", "--cluster-name", "apps"]));
        let repo = unique("fargate-img-");
        s.create_repo(&repo, &[]);
        let image = s.docker_push_test_image(&repo, "v1");
        // The default VPC's subnet: its block is this installation's own on the shared host.
        let subnet = "subnet-default".to_owned();
        Fargate { s, image, subnet }
    }

    /// Registers a FARGATE definition (256 CPU, 512 MiB) of these containers (and volumes).
    fn register(&self, containers: Value, volumes: Value) -> String {
        register_fargate(&self.s, &unique("fargate-"), &containers, &volumes)
    }

    /// RunTask on Fargate in the cluster `apps`; the task ARN.
    fn run(&self, td: &str) -> String {
        let v = ok_json(&self.s.aws(&[
            "ecs",
            "run-task",
            "--cluster",
            "apps",
            "--launch-type",
            "FARGATE",
            "--task-definition",
            td,
            "--network-configuration",
            &format!(
                "awsvpcConfiguration={{subnets=[{}],securityGroups=[sg-default],assignPublicIp=ENABLED}}",
                self.subnet
            ),
        ]));
        assert_eq!(v["failures"], json!([]), "{v:#}");
        v["tasks"][0]["taskArn"].as_str().unwrap().to_owned()
    }

    fn sh(&self, name: &str, script: &str) -> Value {
        json!({"name": name, "image": self.image, "essential": true,
               "entryPoint": ["sh", "-c"], "command": [script]})
    }
}

fn address(task: &Value) -> String {
    task["attachments"][0]["details"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "privateIPv4Address")
        .and_then(|d| d["value"].as_str())
        .unwrap_or_else(|| panic!("no address: {task:#}"))
        .to_owned()
}

fn curl_until(url: &str, marker: &str) {
    berth_e2e::require_tool("curl");
    wait_for(
        &format!("{url} to answer {marker}"),
        Duration::from_secs(60),
        || {
            let out = Command::new("curl")
                .args(["-fsS", "--max-time", "5", url])
                .output()
                .ok()?;
            stdout_of(&out).contains(marker).then_some(())
        },
    );
}

#[test]
fn fargate_tasks_share_localhost_get_their_own_addresses_and_keep_to_their_memory() {
    let f = Fargate::start();
    let marker = unique("page-");
    // web serves a page; relay fetches it on localhost and serves what it got.
    let td = f.register(
        json!([
            // It also saves what its task metadata endpoint says about the task.
            f.sh("web", &format!("mkdir -p /www && echo {marker} > /www/index.html && (until wget -q -O /www/task.json \"$ECS_CONTAINER_METADATA_URI_V4/task\"; do sleep 1; done &) && exec httpd -f -p 8080 -h /www")),
            f.sh("relay", "mkdir -p /got && until wget -q -O /got/index.html http://localhost:8080/; do sleep 1; done && exec httpd -f -p 8081 -h /got"),
        ]),
        json!([]),
    );
    let one = f.run(&td);
    let two = f.run(&td);
    let one = wait_status(&f.s, "apps", &one, "RUNNING");
    let two = wait_status(&f.s, "apps", &two, "RUNNING");
    let (a, b) = (address(&one), address(&two));
    // Platform 1.4.0's default ephemeral storage (shown; see docs/scheduling.md on enforcing).
    assert_eq!(one["ephemeralStorage"], json!({"sizeInGiB": 20}), "{one:#}");
    assert_ne!(a, b, "two Fargate tasks, one address");
    for ip in [&a, &b] {
        curl_until(&format!("http://{ip}:8081/"), &marker);
    }
    // The task metadata endpoint answers inside the task's namespace (on its subnet's
    // gateway), naming the task and its address.
    let task_arn = one["taskArn"].as_str().unwrap();
    curl_until(&format!("http://{a}:8080/task.json"), task_arn);
    curl_until(&format!("http://{a}:8080/task.json"), &a);

    // 512 MiB for the task: a container that allocates 700 MiB is OOM-killed.
    let hog = f.register(
        json!([f.sh("hog", "exec dd if=/dev/zero of=/dev/null bs=700M count=1")]),
        json!([]),
    );
    let hog = f.run(&hog);
    let stopped = wait_status(&f.s, "apps", &hog, "STOPPED");
    let container = &stopped["containers"][0];
    assert_eq!(
        container["reason"], "OutOfMemoryError: Container killed due to memory usage",
        "{stopped:#}"
    );
    assert_eq!(container["exitCode"], 137, "{stopped:#}");
    assert_eq!(
        stopped["stoppedReason"], "Essential container in task exited",
        "{stopped:#}"
    );
}

#[test]
fn an_efs_volume_outlives_its_fargate_task() {
    let f = Fargate::start();
    let volumes = json!([{"name": "data", "efsVolumeConfiguration":
        {"fileSystemId": "fs-0fa12ae0", "rootDirectory": "/shared", "transitEncryption": "ENABLED"}}]);
    let mount = json!([{"sourceVolume": "data", "containerPath": "/data"}]);
    let marker = unique("kept-");
    let mut writer = f.sh("writer", &format!("echo {marker} > /data/note"));
    writer["mountPoints"] = mount.clone();
    let writer = f.register(json!([writer]), volumes.clone());
    let first = f.run(&writer);
    let first = wait_status(&f.s, "apps", &first, "STOPPED");
    assert_eq!(first["containers"][0]["exitCode"], 0, "{first:#}");
    let mut reader = f.sh(
        "reader",
        &format!("test \"$(cat /data/note)\" = {marker} && exit 0 || exit 7"),
    );
    reader["mountPoints"] = mount;
    let reader = f.register(json!([reader]), volumes);
    let second = f.run(&reader);
    let second = wait_status(&f.s, "apps", &second, "STOPPED");
    assert_eq!(second["containers"][0]["exitCode"], 0, "{second:#}");
}

#[test]
fn definitions_fargate_cannot_run_are_refused_with_ecs_messages() {
    let s = BerthServer::start();
    let register = |network_mode: &str, cpu: &str, memory: &str| {
        s.aws(&[
            "ecs",
            "register-task-definition",
            "--family",
            "refused",
            "--requires-compatibilities",
            "FARGATE",
            "--network-mode",
            network_mode,
            "--cpu",
            cpu,
            "--memory",
            memory,
            "--container-definitions",
            r#"[{"name":"web","image":"x"}]"#,
        ])
    };
    let bridge = register("bridge", "256", "512");
    assert!(!bridge.status.success());
    assert!(
        stderr_of(&bridge).contains("ClientException")
            && stderr_of(&bridge)
                .contains("Fargate only supports network mode \u{2018}awsvpc\u{2019}."),
        "{}",
        stderr_of(&bridge)
    );
    let size = register("awsvpc", "256", "4096");
    assert!(!size.status.success());
    assert!(
        stderr_of(&size).contains("ClientException")
            && stderr_of(&size).contains("No Fargate configuration exists for given values"),
        "{}",
        stderr_of(&size)
    );
}

/// A multi-host pool: two hosts join a plain `berth server`'s Fargate pool with
/// `berth agent --fargate`. The pool is no cluster users see; Fargate tasks of two clusters
/// run on those hosts, a request's tasks spread over both, with no `containerInstanceArn`;
/// with the hosts gone, RunTask answers ECS's capacity failure instead of placing.
#[test]
fn hosts_that_join_the_pool_with_berth_agent_fargate_run_fargate_tasks() {
    // Agents that stop heartbeating are gone after 5 s.
    let s = BerthServer::start_with(ServerOptions {
        args: [
            "--agent-timeout-seconds",
            "5",
            "--agent-heartbeat-seconds",
            "1",
        ]
        .map(String::from)
        .to_vec(),
        ..ServerOptions::default()
    });
    let mut a = Agent::start_fargate(&s, &[]);
    let mut b = Agent::start_fargate(&s, &[]);
    let pool = wait_instances(&s, POOL, 2);
    let hosts: Vec<String> = pool
        .iter()
        .map(|i| i["containerInstanceArn"].as_str().unwrap().to_owned())
        .collect();
    let subnet = "subnet-default";
    let listed = ok_json(&s.aws(&["ecs", "list-clusters"]));
    assert!(
        !listed.to_string().contains(POOL),
        "the pool is not a users' cluster: {listed:#}"
    );

    let repo = unique("pool-img-");
    s.create_repo(&repo, &[]);
    let image = s.docker_push_test_image(&repo, "v1");
    let family = unique("pool-");
    register_fargate(
        &s,
        &family,
        &json!([{"name": "app", "image": image, "essential": true,
                 "entryPoint": ["sh", "-c"], "command": ["exec sleep 100000"]}]),
        &json!([]),
    );
    let network = format!("awsvpcConfiguration={{subnets=[{subnet}]}}");
    let mut used = std::collections::BTreeSet::new();
    for cluster in [unique("blue-"), unique("green-")] {
        let v = new_cluster_run_fargate(&s, &cluster, &family, &network, 2);
        assert_eq!(v["failures"], json!([]), "{v:#}");
        let mut on_hosts = std::collections::BTreeSet::new();
        for task in v["tasks"].as_array().unwrap() {
            let arn = task["taskArn"].as_str().unwrap();
            let running = wait_status(&s, &cluster, arn, "RUNNING");
            assert!(running.get("containerInstanceArn").is_none(), "{running:#}");
            assert_eq!(running["launchType"], "FARGATE");
            assert!(running["clusterArn"].as_str().unwrap().ends_with(&cluster));
            // Docker says which host runs it: the agent's instance label.
            let ids = berth_e2e::docker_agent::docker_ps(&s, false, arn);
            assert_eq!(ids.len(), 1, "{arn}: {ids:?}");
            let inspected = berth_e2e::docker_agent::docker_inspect(&s, &ids[0]);
            let host = inspected["Config"]["Labels"]["berth.container-instance-arn"]
                .as_str()
                .unwrap()
                .to_owned();
            assert!(hosts.contains(&host), "{host} is not a pool host");
            on_hosts.insert(host);
        }
        assert_eq!(on_hosts.len(), 2, "a request's tasks spread over the hosts");
        used.extend(on_hosts);
    }
    assert_eq!(used.len(), 2);

    // No host left: no capacity, said as ECS says it.
    a.kill9();
    b.kill9();
    wait_for(
        "the pool's agents to be seen gone",
        Duration::from_secs(60),
        || {
            let v = ok_json(&s.aws(&[
                "ecs",
                "describe-container-instances",
                "--cluster",
                POOL,
                "--container-instances",
                &hosts[0],
                &hosts[1],
            ]));
            v["containerInstances"]
                .as_array()
                .unwrap()
                .iter()
                .all(|i| i["agentConnected"] == false)
                .then_some(())
        },
    );
    let cluster = unique("late-");
    let v = new_cluster_run_fargate(&s, &cluster, &family, &network, 1);
    assert_eq!(v["tasks"], json!([]), "{v:#}");
    assert_eq!(
        v["failures"][0]["reason"],
        "Capacity is unavailable at this time. Please try again later or in a different availability zone",
        "{v:#}"
    );
}

/// Creates `cluster` and runs `count` Fargate tasks of `family` in it; RunTask's answer.
fn new_cluster_run_fargate(
    s: &BerthServer,
    cluster: &str,
    family: &str,
    network: &str,
    count: u32,
) -> Value {
    ok_json(&s.aws(&["ecs", "create-cluster", "--cluster-name", cluster]));
    let count = count.to_string();
    ok_json(&s.aws(&[
        "ecs",
        "run-task",
        "--cluster",
        cluster,
        "--launch-type",
        "FARGATE",
        "--task-definition",
        family,
        "--count",
        &count,
        "--network-configuration",
        network,
    ]))
}

/// A service on Fargate by capacity provider strategy (FARGATE associated with the
/// cluster): its tasks run on the built-in pool with their own addresses, and the
/// service shows the strategy instead of a launch type.
#[test]
fn a_service_runs_on_fargate_by_capacity_provider_strategy() {
    let f = Fargate::start();
    let cluster = unique("fgsvc-");
    ok_json(&f.s.aws(&[
        "ecs",
        "create-cluster",
        "--cluster-name",
        &cluster,
        "--capacity-providers",
        "FARGATE",
        "FARGATE_SPOT",
    ]));
    let td = f.register(json!([f.sh("app", "exec sleep 100000")]), json!([]));
    let name = unique("web-");
    let created = ok_json(&f.s.aws(&[
        "ecs",
        "create-service",
        "--cluster",
        &cluster,
        "--service-name",
        &name,
        "--task-definition",
        &td,
        "--desired-count",
        "2",
        "--capacity-provider-strategy",
        "capacityProvider=FARGATE,weight=1",
        "--network-configuration",
        &format!("awsvpcConfiguration={{subnets=[{}]}}", f.subnet),
    ]));
    assert!(
        created["service"].get("launchType").is_none(),
        "{created:#}"
    );
    assert_eq!(
        created["service"]["capacityProviderStrategy"][0]["capacityProvider"],
        "FARGATE"
    );
    let waited = f.s.aws(&[
        "ecs",
        "wait",
        "services-stable",
        "--cluster",
        &cluster,
        "--services",
        &name,
    ]);
    assert!(waited.status.success(), "{}", stderr_of(&waited));
    let listed = ok_json(&f.s.aws(&[
        "ecs",
        "list-tasks",
        "--cluster",
        &cluster,
        "--service-name",
        &name,
    ]));
    let arns: Vec<String> = listed["taskArns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(arns.len(), 2);
    let tasks = berth_e2e::docker_agent::describe_tasks(&f.s, &cluster, &arns);
    let mut addresses = std::collections::BTreeSet::new();
    for t in &tasks {
        assert_eq!(t["lastStatus"], "RUNNING", "{t:#}");
        assert_eq!(t["launchType"], "FARGATE");
        assert_eq!(t["capacityProviderName"], "FARGATE");
        assert!(t.get("containerInstanceArn").is_none());
        addresses.insert(address(t));
    }
    assert_eq!(addresses.len(), 2, "each task its own address");
}
