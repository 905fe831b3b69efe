//! awsvpc on `berth agent` and the real Docker Engine: each task gets its own network
//! namespace (an infra container the agent builds locally) and its own address on its
//! subnet's Berth network; the task's containers reach each other on localhost; DescribeTasks
//! shows the ElasticNetworkInterface attachment; the host reaches the task at its address and
//! container port. RunTask checks the network configuration with ECS's messages.
//!
//! A task's address comes from its EC2 subnet's block (the default VPC's, whose block Berth
//! chose clear of the host's other networks), its availability zone from the subnet's.

use std::process::Command;
use std::time::Duration;

use berth_e2e::docker_agent::{
    Agent, cluster_with_image, containers_of, docker_inspect, wait_connected, wait_for,
    wait_statuses,
};
use berth_e2e::{BerthServer, assert_aws_error, ok_json, stdout_of, unique};
use serde_json::{Value, json};

/// `curl http://IP:PORT/` from this process until the body holds `marker`.
#[track_caller]
fn curl_until(ip: &str, port: u16, marker: &str) -> String {
    berth_e2e::require_tool("curl");
    let url = format!("http://{ip}:{port}/");
    wait_for(
        &format!("{url} to answer {marker}"),
        Duration::from_secs(60),
        || {
            let out = Command::new("curl")
                .args(["-fsS", "--max-time", "5", &url])
                .output()
                .ok()?;
            let body = stdout_of(&out);
            (out.status.success() && body.contains(marker)).then_some(body)
        },
    )
}

fn register_awsvpc(s: &BerthServer, family: &str, containers: Value) -> String {
    let v = ok_json(&s.aws(&[
        "ecs",
        "register-task-definition",
        "--family",
        family,
        "--network-mode",
        "awsvpc",
        "--container-definitions",
        &containers.to_string(),
    ]));
    v["taskDefinition"]["taskDefinitionArn"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn detail<'a>(attachment: &'a Value, name: &str) -> &'a str {
    attachment["details"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == name)
        .and_then(|d| d["value"].as_str())
        .unwrap_or_else(|| panic!("no {name} in {attachment:#}"))
}

#[test]
fn awsvpc_tasks_get_their_own_address_on_a_berth_subnet() {
    let s = BerthServer::start();
    let (cluster, image) = cluster_with_image(&s, "vpc-");

    // The default VPC's subnet in the second zone: the task takes its block and its zone.
    let default = berth_e2e::network::DefaultNetwork::of(&s);
    let (subnet, block, zone) = (&default.subnets[1], &default.cidrs[1], &default.zones[1]);
    let _agent = Agent::start(&s, &cluster, &["--cleanup-delay-seconds", "600"]);
    let instance = wait_connected(&s, &cluster);
    assert!(
        instance["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == "ecs.capability.task-eni"),
        "{instance:#}"
    );

    // A serves a page on 8080; B fetches it from localhost (the task's shared namespace)
    // and serves what it got on 8081.
    let marker = unique("page-");
    let family = unique("vpc-");
    register_awsvpc(
        &s,
        &family,
        json!([
            {
                "name": "a", "image": image, "memory": 64, "essential": true, "stopTimeout": 2,
                "entryPoint": ["sh", "-c"],
                "command": [format!("mkdir -p /www && echo {marker} > /www/index.html && exec httpd -f -p 8080 -h /www")],
                "portMappings": [{"containerPort": 8080, "protocol": "tcp"}]
            },
            {
                "name": "b", "image": image, "memory": 64, "essential": true, "stopTimeout": 2,
                "entryPoint": ["sh", "-c"],
                "command": ["mkdir -p /got && until wget -q -O /got/index.html http://localhost:8080/; do sleep 1; done && exec httpd -f -p 8081 -h /got"],
                "portMappings": [{"containerPort": 8081, "protocol": "tcp"}]
            }
        ]),
    );
    let network = format!(
        "awsvpcConfiguration={{subnets=[{subnet}],securityGroups=[sg-default],assignPublicIp=DISABLED}}"
    );
    let run = ok_json(&s.aws(&[
        "ecs",
        "run-task",
        "--cluster",
        &cluster,
        "--task-definition",
        &family,
        "--count",
        "2",
        "--network-configuration",
        &network,
    ]));
    assert_eq!(run["failures"], json!([]), "{run:#}");
    let arns: Vec<String> = run["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["taskArn"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(arns.len(), 2);
    // The interface exists from RunTask on (the address is the control plane's pick).
    assert_eq!(run["tasks"][0]["attachments"][0]["status"], "PRECREATED");

    let tasks = wait_statuses(&s, &cluster, &arns, "RUNNING");
    let mut ips = Vec::new();
    for task in &tasks {
        let attachments = task["attachments"].as_array().unwrap();
        assert_eq!(attachments.len(), 1, "{task:#}");
        let eni = &attachments[0];
        assert_eq!(eni["type"], "ElasticNetworkInterface");
        assert_eq!(eni["status"], "ATTACHED");
        assert_eq!(detail(eni, "subnetId"), subnet.as_str());
        assert_eq!(task["availabilityZone"], zone.as_str(), "the subnet's zone");
        assert!(detail(eni, "networkInterfaceId").starts_with("eni-"));
        let ip = detail(eni, "privateIPv4Address").to_owned();
        let mac = detail(eni, "macAddress");
        assert_eq!(mac.split(':').count(), 6, "{mac}");
        assert!(
            detail(eni, "privateDnsName").starts_with(&format!("ip-{}", ip.replace('.', "-"))),
            "{eni:#}"
        );
        // Each container sees the interface.
        for c in task["containers"].as_array().unwrap() {
            assert_eq!(c["networkInterfaces"][0]["privateIpv4Address"], ip.as_str());
            assert_eq!(c["networkInterfaces"][0]["attachmentId"], eni["id"]);
        }
        ips.push(ip);
    }
    assert_ne!(ips[0], ips[1], "two tasks, two addresses");
    for ip in &ips {
        assert!(berth_e2e::network::in_block(ip, block), "{ip} in {block}");
    }

    // The subnet is a Berth network on Docker with the subnet's block, holding the address.
    let net = ok_json(&s.docker(&["network", "inspect", &s.network_name(subnet)]));
    let cidr = net[0]["IPAM"]["Config"][0]["Subnet"].as_str().unwrap();
    assert_eq!(cidr, block.as_str());

    let mut infra_ids = Vec::new();
    for (task, ip) in tasks.iter().zip(&ips) {
        // From the host: the task's address and container port answer directly.
        curl_until(ip, 8080, &marker);
        // B got A's page over localhost inside the task's namespace.
        curl_until(ip, 8081, &marker);

        // Docker: the task's containers in the namespace of one infra container (made for
        // the task, or a warm one the agent connected), which is on the subnet's network
        // with the task's address.
        let arn = task["taskArn"].as_str().unwrap();
        let containers: Vec<Value> = containers_of(&s, arn)
            .iter()
            .map(|id| docker_inspect(&s, id))
            .filter(|c| {
                c["Config"]["Labels"]["com.amazonaws.ecs.container-name"] != "~internal~ecs~pause"
            })
            .collect();
        assert_eq!(containers.len(), 2, "the task's two containers");
        let modes: Vec<&str> = containers
            .iter()
            .map(|c| c["HostConfig"]["NetworkMode"].as_str().unwrap())
            .collect();
        assert_eq!(modes[0], modes[1], "one namespace");
        let pause_id = modes[0]
            .strip_prefix("container:")
            .unwrap_or_else(|| panic!("a container: network mode, not {}", modes[0]));
        let pause = docker_inspect(&s, pause_id);
        assert_eq!(
            pause["Config"]["Labels"]["com.amazonaws.ecs.container-name"],
            "~internal~ecs~pause"
        );
        assert!(
            pause["Name"].as_str().unwrap().contains("internalecspause"),
            "named as ECS's agent names its pause container: {}",
            pause["Name"]
        );
        assert_eq!(
            pause["NetworkSettings"]["Networks"][s.network_name(subnet)]["IPAddress"],
            ip.as_str()
        );
        // The interface's MAC is the namespace's real one.
        let eni = &task["attachments"][0];
        assert_eq!(
            pause["NetworkSettings"]["Networks"][s.network_name(subnet)]["MacAddress"],
            detail(eni, "macAddress")
        );
        infra_ids.push(pause_id.to_owned());
    }

    // Stopping gives the address back: the attachment is DELETED, and the infra container
    // has stopped.
    for arn in &arns {
        ok_json(&s.aws(&["ecs", "stop-task", "--cluster", &cluster, "--task", arn]));
    }
    let stopped = wait_statuses(&s, &cluster, &arns, "STOPPED");
    for task in &stopped {
        assert_eq!(task["attachments"][0]["status"], "DELETED", "{task:#}");
    }
    let running_left: Vec<String> = arns
        .iter()
        .flat_map(|arn| berth_e2e::docker_agent::docker_ps(&s, false, arn))
        .collect();
    assert!(running_left.is_empty(), "{running_left:?}");
    for id in &infra_ids {
        let infra = docker_inspect(&s, id);
        assert_eq!(
            infra["State"]["Running"], false,
            "the infra container stopped"
        );
    }
    // The freed address is the next one handed out.
    let again = ok_json(&s.aws(&[
        "ecs",
        "run-task",
        "--cluster",
        &cluster,
        "--task-definition",
        &family,
        "--network-configuration",
        &network,
    ]));
    let next = detail(&again["tasks"][0]["attachments"][0], "privateIPv4Address").to_owned();
    assert!(ips.contains(&next), "{next} reuses one of {ips:?}");
    let arn = again["tasks"][0]["taskArn"].as_str().unwrap().to_owned();
    wait_statuses(&s, &cluster, std::slice::from_ref(&arn), "RUNNING");
    curl_until(&next, 8080, &marker);
}

#[test]
fn network_configuration_is_checked_against_the_network_mode() {
    let s = BerthServer::start();
    let cluster = unique("vpc-err-");
    ok_json(&s.aws(&["ecs", "create-cluster", "--cluster-name", &cluster]));
    let container = json!([{"name": "c", "image": "busybox", "memory": 64}]);
    let awsvpc = unique("vpc-");
    register_awsvpc(&s, &awsvpc, container.clone());
    let bridge = unique("br-");
    berth_e2e::docker_agent::register(&s, &bridge, container);
    let network = "awsvpcConfiguration={subnets=[subnet-0abc],securityGroups=[sg-default],assignPublicIp=DISABLED}";
    let run = |family: &str, extra: &[&str]| {
        let mut args = vec![
            "ecs",
            "run-task",
            "--cluster",
            &cluster,
            "--task-definition",
            family,
        ];
        args.extend_from_slice(extra);
        s.aws(&args)
    };

    let missing = run(&awsvpc, &[]);
    assert_aws_error(&missing, "InvalidParameterException");
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains(
            "Network Configuration must be provided when networkMode 'awsvpc' is specified."
        ),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
    let not_valid = run(&bridge, &["--network-configuration", network]);
    assert_aws_error(&not_valid, "InvalidParameterException");
    assert!(
        String::from_utf8_lossy(&not_valid.stderr).contains(
            "Network Configuration is not valid for the given networkMode of this task definition."
        ),
        "{}",
        String::from_utf8_lossy(&not_valid.stderr)
    );
    let public = run(
        &awsvpc,
        &[
            "--network-configuration",
            "awsvpcConfiguration={subnets=[subnet-0abc],assignPublicIp=ENABLED}",
        ],
    );
    assert_aws_error(&public, "InvalidParameterException");
    assert!(
        String::from_utf8_lossy(&public.stderr)
            .contains("Assign public IP is not supported for this launch type."),
    );
    let malformed = run(
        &awsvpc,
        &[
            "--network-configuration",
            "awsvpcConfiguration={subnets=[vpc-123]}",
        ],
    );
    assert_aws_error(&malformed, "InvalidParameterException");
    // A well-formed subnet id EC2 does not have: ECS quotes EC2's error.
    let unknown = run(&awsvpc, &["--network-configuration", network]);
    assert_aws_error(&unknown, "InvalidParameterException");
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains(
            "Error retrieving subnet information for [subnet-0abc]: The subnet ID 'subnet-0abc' does not exist"
        ),
        "{}",
        String::from_utf8_lossy(&unknown.stderr)
    );
}
