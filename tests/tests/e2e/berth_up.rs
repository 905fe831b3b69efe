//! `berth up`: the control plane, the registry and this machine's Docker Engine as built-in
//! capacity — the Fargate pool (hidden from the user's clusters) and, with
//! `--with-instance`, a container instance of the `default` cluster. Ctrl-C stops it
//! cleanly, and the next `berth up` on the same data dir brings the same capacity back.

use std::process::Command;
use std::time::Duration;

use berth_e2e::docker_agent::{register, run_task, wait_for, wait_instances, wait_status};
use berth_e2e::{BerthServer, ServerOptions, ok_json, stdout_of, unique};
use serde_json::{Value, json};

const POOL: &str = "berth-fargate-pool";

fn arn_of(instance: &Value) -> String {
    instance["containerInstanceArn"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn berth_up_brings_fargate_capacity_and_an_instance_and_comes_back() {
    let mut s = BerthServer::start_with(ServerOptions {
        command: Some("up"),
        args: vec!["--with-instance".into()],
        ..ServerOptions::default()
    });
    let pool = wait_instances(&s, POOL, 1);
    let instance = wait_instances(&s, "default", 1);
    // The pool is the platform's: not among the user's clusters.
    let clusters = ok_json(&s.aws(&["ecs", "list-clusters"]));
    let names: Vec<&str> = clusters["clusterArns"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a.as_str())
        .collect();
    assert!(
        names.iter().any(|a| a.ends_with(":cluster/default")),
        "{names:?}"
    );
    assert!(!names.iter().any(|a| a.contains(POOL)), "{names:?}");

    // An EC2 task runs on the built-in instance.
    let repo = unique("up-img-");
    s.create_repo(&repo, &[]);
    let image = s.docker_push_test_image(&repo, "v1");
    let td = register(
        &s,
        &unique("up-ec2-"),
        json!([{"name": "main", "image": image, "memory": 32, "essential": true,
                "stopTimeout": 1, "entryPoint": ["sh", "-c"], "command": ["exec sleep 100000"]}]),
    );
    let task = run_task(&s, "default", &td);
    let running = wait_status(&s, "default", &task, "RUNNING");
    assert_eq!(
        running["containerInstanceArn"],
        instance[0]["containerInstanceArn"]
    );
    assert_eq!(running["launchType"], "EC2");

    // A Fargate task is placed on the pool: no container instance shown, a platform
    // version, its own address on the subnet, and its page answers there.
    let marker = unique("fargate-page-");
    // The default VPC's subnet (its block chosen clear of other installations' networks).
    let subnet = "subnet-default";
    let fargate_arn = berth_e2e::docker_agent::register_fargate(
        &s,
        &unique("up-fargate-"),
        &json!([{"name": "web", "image": image, "essential": true,
                 "entryPoint": ["sh", "-c"],
                 "command": [format!("mkdir -p /www && echo {marker} > /www/index.html && exec httpd -f -p 8000 -h /www")],
                 "portMappings": [{"containerPort": 8000}]}]),
        &json!([]),
    );
    let run = ok_json(&s.aws(&[
        "ecs",
        "run-task",
        "--launch-type",
        "FARGATE",
        "--task-definition",
        &fargate_arn,
        "--network-configuration",
        &format!(
            "awsvpcConfiguration={{subnets=[{subnet}],securityGroups=[sg-default],assignPublicIp=ENABLED}}"
        ),
    ]));
    assert_eq!(run["failures"], json!([]), "{run:#}");
    let fargate_task = &run["tasks"][0];
    assert_eq!(fargate_task["launchType"], "FARGATE", "{fargate_task:#}");
    assert_eq!(fargate_task["platformVersion"], "1.4.0");
    assert_eq!(fargate_task["platformFamily"], "Linux");
    assert!(
        fargate_task.get("containerInstanceArn").is_none(),
        "{fargate_task:#}"
    );
    assert!(
        fargate_task["clusterArn"]
            .as_str()
            .unwrap()
            .ends_with(":cluster/default")
    );
    let fargate_task_arn = fargate_task["taskArn"].as_str().unwrap().to_owned();
    let running = wait_status(&s, "default", &fargate_task_arn, "RUNNING");
    let eni = &running["attachments"][0];
    assert_eq!(eni["type"], "ElasticNetworkInterface", "{running:#}");
    let ip = eni["details"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "privateIPv4Address")
        .and_then(|d| d["value"].as_str())
        .unwrap_or_else(|| panic!("no address in {eni:#}"))
        .to_owned();
    berth_e2e::require_tool("curl");
    wait_for(
        &format!("http://{ip}:8000/ to answer"),
        Duration::from_secs(60),
        || {
            let out = Command::new("curl")
                .args(["-fsS", "--max-time", "5", &format!("http://{ip}:8000/")])
                .output()
                .ok()?;
            stdout_of(&out).contains(&marker).then_some(())
        },
    );

    // Ctrl-C stops cleanly; the next `berth up` brings the same capacity back and the
    // task that was running is still RUNNING.
    let status = s.interrupt().expect("the server was running");
    assert!(status.success(), "berth up exited with {status}");
    s.restart();
    let pool_again = wait_instances(&s, POOL, 1);
    let instance_again = wait_instances(&s, "default", 1);
    assert_eq!(arn_of(&pool_again[0]), arn_of(&pool[0]));
    assert_eq!(arn_of(&instance_again[0]), arn_of(&instance[0]));
    wait_status(&s, "default", &task, "RUNNING");
    wait_status(&s, "default", &fargate_task_arn, "RUNNING");
}
