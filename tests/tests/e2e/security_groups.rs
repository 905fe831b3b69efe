//! Security groups enforced in awsvpc tasks, on `berth agent` and the real Docker Engine,
//! driven by the real `aws` CLI: three groups made with `aws ec2 create-security-group` in
//! the default VPC; a server task in group A, whose ingress allows its port from group B,
//! answers a client task in B and not one in C (nor the host, which is only in the default
//! group); revoking the rule refuses B's client within seconds, authorizing it again lets it
//! back in. Requests are made from inside the client tasks (`docker exec … wget`), so they
//! come from the clients' own addresses. A load balancer in a group of its own reaches the
//! server while the server's rules name that group, and not once they stop naming it.

use std::time::Duration;

use berth_e2e::docker_agent::{
    Agent, cluster_with_image, containers_of, docker_inspect, wait_connected, wait_for,
    wait_statuses,
};
use berth_e2e::network::IpAlb;
use berth_e2e::{BerthServer, ok_json, stdout_of, unique};
use serde_json::{Value, json};

const PORT: u16 = 8080;

fn create_group(s: &BerthServer, what: &str) -> String {
    let name = unique(&format!("{what}-"));
    let v = ok_json(&s.aws(&[
        "ec2",
        "create-security-group",
        "--group-name",
        &name,
        "--description",
        what,
    ]));
    v["GroupId"].as_str().unwrap().to_owned()
}

/// `IpPermissions` for tcp PORT from `source`'s members.
fn from_group(source: &str) -> String {
    format!("IpProtocol=tcp,FromPort={PORT},ToPort={PORT},UserIdGroupPairs=[{{GroupId={source}}}]")
}

fn change_ingress(s: &BerthServer, verb: &str, group: &str, source: &str) {
    let out = s.aws(&[
        "ec2",
        &format!("{verb}-security-group-ingress"),
        "--group-id",
        group,
        "--ip-permissions",
        &from_group(source),
    ]);
    assert!(
        out.status.success(),
        "{verb}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs one task of `family` in `subnet` with `group`; its ARN.
fn run_in(s: &BerthServer, cluster: &str, family: &str, subnet: &str, group: &str) -> String {
    let network = format!(
        "awsvpcConfiguration={{subnets=[{subnet}],securityGroups=[{group}],assignPublicIp=DISABLED}}"
    );
    let run = ok_json(&s.aws(&[
        "ecs",
        "run-task",
        "--cluster",
        cluster,
        "--task-definition",
        family,
        "--network-configuration",
        &network,
    ]));
    assert_eq!(run["failures"], json!([]), "{run:#}");
    run["tasks"][0]["taskArn"].as_str().unwrap().to_owned()
}

fn address_of(task: &Value) -> String {
    task["attachments"][0]["details"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "privateIPv4Address")
        .and_then(|d| d["value"].as_str())
        .unwrap_or_else(|| panic!("no address in {task:#}"))
        .to_owned()
}

/// The id of the task's (only) container, not its infra container.
fn app_container(s: &BerthServer, arn: &str) -> String {
    containers_of(s, arn)
        .into_iter()
        .find(|id| {
            docker_inspect(s, id)["Config"]["Labels"]["com.amazonaws.ecs.container-name"]
                != "~internal~ecs~pause"
        })
        .unwrap_or_else(|| panic!("no container for {arn}"))
}

/// One GET of the server's page from inside a client task (its own address); the body, or
/// `None` when refused or dropped (after 2 s).
fn fetch_from(s: &BerthServer, client: &str, server: &str) -> Option<String> {
    let url = format!("http://{server}:{PORT}/");
    // busybox's own `wget -T` crashes in this static build: `timeout` bounds it instead.
    let out = s.docker(&[
        "exec", client, "timeout", "2", "wget", "-q", "-O", "-", &url,
    ]);
    out.status.success().then(|| stdout_of(&out))
}

#[test]
fn a_task_answers_a_group_it_allows_and_no_other_and_follows_rule_changes() {
    let s = BerthServer::start();
    let (cluster, image) = cluster_with_image(&s, "sgs-");
    // The default VPC's subnet (its block chosen clear of other installations' networks).
    let subnet = "subnet-default";
    let _agent = Agent::start(&s, &cluster, &["--cleanup-delay-seconds", "600"]);
    wait_connected(&s, &cluster);

    let server_group = create_group(&s, "server");
    let allowed = create_group(&s, "allowed");
    let other = create_group(&s, "other");
    change_ingress(&s, "authorize", &server_group, &allowed);

    let marker = unique("page-");
    let server_family = unique("sg-server-");
    let client_family = unique("sg-client-");
    for (family, command) in [
        (
            &server_family,
            format!(
                "mkdir -p /www && echo {marker} > /www/index.html && exec httpd -f -p {PORT} -h /www"
            ),
        ),
        (&client_family, "exec sleep 3600".to_owned()),
    ] {
        ok_json(
            &s.aws(&[
                "ecs",
                "register-task-definition",
                "--family",
                family,
                "--network-mode",
                "awsvpc",
                "--container-definitions",
                &json!([{
                    "name": "main", "image": image, "memory": 64, "essential": true,
                    "stopTimeout": 2, "entryPoint": ["sh", "-c"], "command": [command],
                }])
                .to_string(),
            ]),
        );
    }
    let server = run_in(&s, &cluster, &server_family, subnet, &server_group);
    let client_allowed = run_in(&s, &cluster, &client_family, subnet, &allowed);
    let client_other = run_in(&s, &cluster, &client_family, subnet, &other);
    let arns = [server.clone(), client_allowed.clone(), client_other.clone()];
    let tasks = wait_statuses(&s, &cluster, &arns, "RUNNING");
    let server_ip = address_of(
        tasks
            .iter()
            .find(|t| t["taskArn"] == server.as_str())
            .expect("the server task"),
    );

    // The interfaces show the groups the tasks run with.
    let interfaces = ok_json(&s.aws(&[
        "ec2",
        "describe-network-interfaces",
        "--filters",
        &format!("Name=group-id,Values={server_group}"),
    ]));
    assert_eq!(
        interfaces["NetworkInterfaces"][0]["PrivateIpAddress"], server_ip,
        "{interfaces:#}"
    );

    let allowed_client = app_container(&s, &client_allowed);
    let other_client = app_container(&s, &client_other);
    // B's client is let in (once the server's rules name its address: it joined B after
    // the server started).
    let body = wait_for(
        "the client in the allowed group to reach the server",
        Duration::from_secs(30),
        || fetch_from(&s, &allowed_client, &server_ip),
    );
    assert!(body.contains(&marker), "{body}");
    // C's client is not: no rule names C, now or before.
    assert_eq!(fetch_from(&s, &other_client, &server_ip), None);
    // Nor the host: it is in the default group only, which A's rules do not name.
    let host = std::process::Command::new("curl")
        .args([
            "-fsS",
            "--max-time",
            "2",
            &format!("http://{server_ip}:{PORT}/"),
        ])
        .output()
        .expect("curl");
    assert!(!host.status.success(), "the host reached the server");
    // Revoked: B's client is refused within seconds.
    change_ingress(&s, "revoke", &server_group, &allowed);
    let revoked = std::time::Instant::now();
    let refused_from = wait_for(
        "the revoked rule to refuse the client",
        Duration::from_secs(20),
        || {
            let attempt = revoked.elapsed();
            fetch_from(&s, &allowed_client, &server_ip)
                .is_none()
                .then_some(attempt)
        },
    );
    // Informative only (no timed assertion): when the first refused attempt began.
    eprintln!("refused from {refused_from:?} after the revoke returned");
    // Authorized again: let back in.
    change_ingress(&s, "authorize", &server_group, &allowed);
    let body = wait_for(
        "the authorized rule to let the client in again",
        Duration::from_secs(20),
        || fetch_from(&s, &allowed_client, &server_ip),
    );
    assert!(body.contains(&marker), "{body}");
    assert_eq!(fetch_from(&s, &other_client, &server_ip), None);

    // A load balancer in a group of its own, which the server's rules name: it reaches the
    // server. (It proxies from the host, so its connections come from the subnet's gateway,
    // which then counts among that group's members: docs/networking.md.)
    let lb_group = create_group(&s, "lb");
    change_ingress(&s, "authorize", &server_group, &lb_group);
    let dns = IpAlb::create(&s, &[format!("{server_ip}:{PORT}")], Some(&lb_group)).dns;
    let through_lb = || {
        let out = std::process::Command::new("curl")
            .args(["-fsS", "--max-time", "2", &format!("http://{dns}/")])
            .output()
            .expect("curl");
        out.status.success().then(|| stdout_of(&out))
    };
    let body = wait_for(
        "the load balancer in the allowed group to reach the server",
        Duration::from_secs(60),
        through_lb,
    );
    assert!(body.contains(&marker), "{body}");
    // The load balancer's group no longer named: it cannot reach the server any more.
    change_ingress(&s, "revoke", &server_group, &lb_group);
    wait_for(
        "the load balancer to be refused once its group is not named",
        Duration::from_secs(60),
        || through_lb().is_none().then_some(()),
    );

    for arn in &arns {
        ok_json(&s.aws(&["ecs", "stop-task", "--cluster", &cluster, "--task", arn]));
    }
    wait_statuses(&s, &cluster, &arns, "STOPPED");
}
