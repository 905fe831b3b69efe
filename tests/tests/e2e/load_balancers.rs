//! Services behind a load balancer, the seed's flow with real Docker, a real `berth agent`,
//! the real `aws` CLI and real HTTP requests: an application load balancer and an instance
//! target group (bridge tasks on dynamic host ports), a three-task service on it; requests
//! through the load balancer are answered by all three tasks; a rolling deployment under
//! continuous load loses no request; a task whose container is `docker kill`ed leaves the
//! load balancer and is replaced; StopTask drains a task (DEACTIVATING) before it stops. Fargate services by `ip` targets behind path rules and a
//! weighted forward on one listener, and behind a network load balancer.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use berth_e2e::docker_agent::{
    Agent, POOL_CLUSTER, cluster_with_image, containers_of, describe_task, register_fargate,
    wait_for, wait_instances, wait_status,
};
use berth_e2e::network::DefaultNetwork;
use berth_e2e::service::Svc;
use berth_e2e::web::http_get as get;
use berth_e2e::{BerthServer, ServerOptions, ok_json, stdout_of, unique};
use serde_json::{Value, json};

fn text(v: &Value, pointer: &str) -> String {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{pointer} in {v}"))
        .to_string()
}

/// A busybox httpd on port 8080 that answers `/` with its container's hostname (distinct
/// per task) and `VERSION`, and `/health` with `ok`.
fn web_container(image: &str, version: &str) -> Value {
    json!({
        "name": "web",
        "image": image,
        "memory": 32,
        "essential": true,
        "stopTimeout": 2,
        "entryPoint": ["sh", "-c"],
        "command": [format!(
            "mkdir -p /www && echo \"$(hostname) {version}\" > /www/index.html && echo ok > /www/health && exec httpd -f -p 8080 -h /www"
        )],
        "portMappings": [{"containerPort": 8080, "hostPort": 0, "protocol": "tcp"}],
    })
}

fn register(s: &BerthServer, family: &str, container: Value) -> String {
    let v = ok_json(&s.aws(&[
        "ecs",
        "register-task-definition",
        "--family",
        family,
        "--network-mode",
        "bridge",
        "--container-definitions",
        &json!([container]).to_string(),
    ]));
    text(&v, "/taskDefinition/taskDefinitionArn")
}

/// An ALB with an HTTP listener on port 80 forwarding to a new instance target group with
/// quick health checks and a short deregistration delay: (listener address, group ARN).
fn alb_with_instance_group(s: &BerthServer) -> (SocketAddr, String) {
    let net = DefaultNetwork::of(s);
    let elb = |args: &[&str]| {
        let mut all = vec!["elbv2"];
        all.extend_from_slice(args);
        ok_json(&s.aws(&all))
    };
    let lb = elb(&[
        "create-load-balancer",
        "--name",
        &unique("web-"),
        "--subnets",
        &net.subnets[0],
        &net.subnets[1],
    ]);
    let lb_arn = text(&lb, "/LoadBalancers/0/LoadBalancerArn");
    let dns = text(&lb, "/LoadBalancers/0/DNSName");
    let group = elb(&[
        "create-target-group",
        "--name",
        &unique("web-"),
        "--protocol",
        "HTTP",
        "--port",
        "8080",
        "--vpc-id",
        &net.vpc,
        "--target-type",
        "instance",
        "--health-check-path",
        "/health",
        "--health-check-interval-seconds",
        "5",
        "--health-check-timeout-seconds",
        "2",
        "--healthy-threshold-count",
        "2",
        "--unhealthy-threshold-count",
        "2",
    ]);
    let group_arn = text(&group, "/TargetGroups/0/TargetGroupArn");
    elb(&[
        "modify-target-group-attributes",
        "--target-group-arn",
        &group_arn,
        "--attributes",
        "Key=deregistration_delay.timeout_seconds,Value=3",
    ]);
    elb(&[
        "create-listener",
        "--load-balancer-arn",
        &lb_arn,
        "--protocol",
        "HTTP",
        "--port",
        "80",
        "--default-actions",
        &format!("Type=forward,TargetGroupArn={group_arn}"),
    ]);
    let address: SocketAddr = format!("{dns}:80").parse().unwrap();
    (address, group_arn)
}

fn healthy_targets(s: &BerthServer, group_arn: &str) -> Vec<Value> {
    let v = ok_json(&s.aws(&[
        "elbv2",
        "describe-target-health",
        "--target-group-arn",
        group_arn,
    ]));
    v["TargetHealthDescriptions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["TargetHealth"]["State"] == "healthy")
        .cloned()
        .collect()
}

/// The service's tasks' answers over `n` requests, or `None` when one was not a 200 (a
/// task killed before the load balancer knows: ALB's 502).
fn answered(address: SocketAddr, n: usize) -> Option<BTreeMap<String, usize>> {
    let mut seen = BTreeMap::new();
    for _ in 0..n {
        match get(address, "/") {
            Ok((200, body)) => *seen.entry(body).or_default() += 1,
            _ => return None,
        }
    }
    Some(seen)
}

/// The service's tasks' hostnames as the load balancer answers them, over `n` requests.
fn answers(address: SocketAddr, n: usize) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for _ in 0..n {
        let (status, body) = get(address, "/").expect("a request through the load balancer");
        assert_eq!(status, 200, "{body}");
        *seen.entry(body).or_default() += 1;
    }
    seen
}

#[test]
fn a_service_behind_an_alb_is_served_by_every_task_and_rolls_out_without_losing_a_request() {
    let s = BerthServer::start();
    let (cluster, image) = cluster_with_image(&s, "lb-");
    let _agent = Agent::start(&s, &cluster, &[]);
    wait_instances(&s, &cluster, 1);
    let (address, group_arn) = alb_with_instance_group(&s);
    let family = unique("lb-web-");
    let v1 = register(&s, &family, web_container(&image, "v1"));
    let name = unique("web-");
    let svc = Svc {
        s: &s,
        cluster: cluster.clone(),
        name: name.clone(),
    };
    ok_json(&s.aws(&[
        "ecs",
        "create-service",
        "--cluster",
        &cluster,
        "--service-name",
        &name,
        "--task-definition",
        &v1,
        "--desired-count",
        "3",
        "--health-check-grace-period-seconds",
        "30",
        "--deployment-configuration",
        "minimumHealthyPercent=100,maximumPercent=200",
        "--load-balancers",
        &format!("targetGroupArn={group_arn},containerName=web,containerPort=8080"),
    ]));

    // 1. Three tasks registered as instance targets on their dynamic host ports, healthy.
    let targets = wait_for("three healthy targets", Duration::from_secs(90), || {
        let healthy = healthy_targets(&s, &group_arn);
        (healthy.len() == 3).then_some(healthy)
    });
    let ports: BTreeSet<i64> = targets
        .iter()
        .map(|t| t["Target"]["Port"].as_i64().unwrap())
        .collect();
    assert_eq!(ports.len(), 3, "three host ports: {targets:#?}");
    assert!(
        targets
            .iter()
            .all(|t| t["Target"]["Id"].as_str().unwrap().starts_with("i-")),
        "{targets:#?}"
    );
    let listed = ok_json(&s.aws(&["ecs", "list-container-instances", "--cluster", &cluster]));
    let described = ok_json(&s.aws(&[
        "ecs",
        "describe-container-instances",
        "--cluster",
        &cluster,
        "--container-instances",
        &text(&listed, "/containerInstanceArns/0"),
    ]));
    let instance_id = text(&described, "/containerInstances/0/ec2InstanceId");
    assert!(
        targets
            .iter()
            .all(|t| t["Target"]["Id"] == instance_id.as_str()),
        "the instance's id: {targets:#?}"
    );
    let events = svc.events();
    assert!(
        events
            .iter()
            .any(|e| e.starts_with(&format!("(service {name}) registered "))
                && e.contains(&format!("(target-group {group_arn})"))),
        "{events:#?}"
    );

    // 2. 300 requests through the load balancer are answered by all three tasks.
    let seen = answers(address, 300);
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(seen.keys().all(|b| b.ends_with(" v1")), "{seen:?}");
    assert!(
        seen.values().all(|n| *n >= 30),
        "spread over the three: {seen:?}"
    );
    // The real curl agrees.
    let curl = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "10", &format!("http://{address}/")])
        .output()
        .unwrap();
    assert!(
        curl.status.success() && seen.contains_key(stdout_of(&curl).trim()),
        "{}",
        String::from_utf8_lossy(&curl.stderr)
    );

    // 3. A rolling deployment under continuous load loses no request.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let failures = Arc::new(std::sync::Mutex::new(Vec::new()));
    let load: Vec<_> = (0..4)
        .map(|_| {
            let (stop, ok, failed, failures) =
                (stop.clone(), ok.clone(), failed.clone(), failures.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match get(address, "/") {
                        Ok((200, _)) => {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        other => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            failures.lock().unwrap().push(format!("{other:?}"));
                        }
                    }
                }
            })
        })
        .collect();
    let v2 = register(&s, &family, web_container(&image, "v2"));
    ok_json(&s.aws(&[
        "ecs",
        "update-service",
        "--cluster",
        &cluster,
        "--service",
        &name,
        "--task-definition",
        &v2,
    ]));
    wait_for(
        "the v2 deployment to replace v1",
        Duration::from_secs(180),
        || {
            let service = svc.describe();
            let done = service["deployments"].as_array().unwrap().len() == 1
                && service["deployments"][0]["rolloutState"] == "COMPLETED"
                && service["deployments"][0]["taskDefinition"] == v2.as_str();
            let seen = answers(address, 12);
            (done && seen.keys().all(|b| b.ends_with(" v2"))).then_some(())
        },
    );
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.join().unwrap();
    }
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    assert_eq!(
        failed,
        0,
        "{failed} of {} requests failed during the deployment: {:?}",
        ok + failed,
        failures.lock().unwrap().iter().take(5).collect::<Vec<_>>()
    );
    assert!(ok > 100, "the load ran: {ok} requests");
    let events = svc.events();
    assert!(
        events.iter().any(|e| e.starts_with(&format!(
            "(service {name}) has begun draining connections on "
        ))),
        "{events:#?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e.starts_with(&format!("(service {name}) deregistered "))),
        "{events:#?}"
    );

    // 4. `docker kill` of one task: the load balancer stops sending to it and the service
    // replaces it.
    let running = svc.tasks("RUNNING");
    assert_eq!(running.len(), 3);
    let victim = running[0]["taskArn"].as_str().unwrap().to_owned();
    let victim_container = containers_of(&s, &victim)
        .into_iter()
        .next()
        .expect("the task's container");
    let victim_host = stdout_of(&s.docker(&["exec", &victim_container, "hostname"]))
        .trim()
        .to_owned();
    assert!(s.docker(&["kill", &victim_container]).status.success());
    // Requests sent to it before anything noticed get ALB's 502; within the health check
    // interval (and the agent's report of the stop) it is out, and every request succeeds.
    wait_for(
        "the killed task to leave the load balancer",
        Duration::from_secs(30),
        || {
            let seen = answered(address, 30)?;
            (!seen.keys().any(|b| b.starts_with(&victim_host))).then_some(())
        },
    );
    wait_for(
        "a replacement behind the load balancer",
        Duration::from_secs(90),
        || {
            let seen = answered(address, 60)?;
            (seen.len() == 3
                && !seen.keys().any(|b| b.starts_with(&victim_host))
                && healthy_targets(&s, &group_arn).len() == 3)
                .then_some(())
        },
    );
    let replaced = svc.tasks("RUNNING");
    assert_eq!(replaced.len(), 3);
    assert!(replaced.iter().all(|t| t["taskArn"] != victim.as_str()));

    // 5. StopTask of a task behind the load balancer drains it first: desired STOPPED at
    // once, DEACTIVATING while its target drains (a longer delay, so it is seen), then
    // stopped as the user's stop.
    ok_json(&s.aws(&[
        "elbv2",
        "modify-target-group-attributes",
        "--target-group-arn",
        &group_arn,
        "--attributes",
        "Key=deregistration_delay.timeout_seconds,Value=20",
    ]));
    let stopped = replaced[0]["taskArn"].as_str().unwrap().to_owned();
    let answer = ok_json(&s.aws(&[
        "ecs",
        "stop-task",
        "--cluster",
        &cluster,
        "--task",
        &stopped,
    ]));
    assert_eq!(answer["task"]["desiredStatus"], "STOPPED", "{answer:#}");
    let draining = describe_task(&s, &cluster, &stopped);
    assert_eq!(draining["lastStatus"], "DEACTIVATING", "{draining:#}");
    assert_eq!(draining["desiredStatus"], "STOPPED", "{draining:#}");
    assert!(
        !svc.task_arns("RUNNING").contains(&stopped),
        "ListTasks shows it as meant to stop"
    );
    let done = wait_status(&s, &cluster, &stopped, "STOPPED");
    assert_eq!(done["stopCode"], "UserInitiated", "{done:#}");
    assert_eq!(done["stoppedReason"], "Task stopped by user", "{done:#}");
}

/// A Fargate httpd on port 8080 answering `/blue`, `/green`, `/split` and `/health` with
/// `COLOR`.
fn colored(image: &str, color: &str) -> Value {
    json!([{
        "name": "web",
        "image": image,
        "essential": true,
        "entryPoint": ["sh", "-c"],
        "command": [format!(
            "mkdir -p /www && for p in blue green split health; do echo {color} > /www/$p; done && exec httpd -f -p 8080 -h /www"
        )],
        "portMappings": [{"containerPort": 8080, "protocol": "tcp"}],
    }])
}

#[test]
fn path_rules_weighted_forwards_and_an_nlb_serve_fargate_services_by_ip_targets() {
    let s = BerthServer::start_with(ServerOptions {
        command: Some("up"),
        ..ServerOptions::default()
    });
    wait_instances(&s, POOL_CLUSTER, 1);
    let net = DefaultNetwork::of(&s);
    let cluster = unique("lbfg-");
    ok_json(&s.aws(&["ecs", "create-cluster", "--cluster-name", &cluster]));
    let repo = unique("lbfg-img-");
    s.create_repo(&repo, &[]);
    let image = s.docker_push_test_image(&repo, "v1");
    let subnet = net.subnets[0].clone();
    let elb = |args: &[&str]| {
        let mut all = vec!["elbv2"];
        all.extend_from_slice(args);
        ok_json(&s.aws(&all))
    };
    let group = |protocol: &str, check: &[&str]| {
        let mut args = vec![
            "create-target-group",
            "--protocol",
            protocol,
            "--port",
            "8080",
            "--vpc-id",
            &net.vpc,
            "--target-type",
            "ip",
            "--health-check-interval-seconds",
            "5",
            "--health-check-timeout-seconds",
            "2",
            "--healthy-threshold-count",
            "2",
        ];
        let name = unique("g-");
        args.extend_from_slice(&["--name", &name]);
        args.extend_from_slice(check);
        text(&elb(&args), "/TargetGroups/0/TargetGroupArn")
    };
    let blue = group("HTTP", &["--health-check-path", "/health"]);
    let green = group("HTTP", &["--health-check-path", "/health"]);
    let tcp = group("TCP", &[]);

    // One ALB listener: a fixed 404 by default, path rules to each color, a weighted split.
    let alb = elb(&[
        "create-load-balancer",
        "--name",
        &unique("alb-"),
        "--subnets",
        &net.subnets[0],
        &net.subnets[1],
    ]);
    let alb_address: SocketAddr = format!("{}:80", text(&alb, "/LoadBalancers/0/DNSName"))
        .parse()
        .unwrap();
    let listener = elb(&[
        "create-listener",
        "--load-balancer-arn",
        &text(&alb, "/LoadBalancers/0/LoadBalancerArn"),
        "--protocol",
        "HTTP",
        "--port",
        "80",
        "--default-actions",
        "Type=fixed-response,FixedResponseConfig={StatusCode=404,ContentType=text/plain,MessageBody=nothing-here}",
    ]);
    let listener_arn = text(&listener, "/Listeners/0/ListenerArn");
    let rule = |priority: &str, path: &str, actions: String| {
        elb(&[
            "create-rule",
            "--listener-arn",
            &listener_arn,
            "--priority",
            priority,
            "--conditions",
            &format!("Field=path-pattern,Values={path}"),
            "--actions",
            &actions,
        ]);
    };
    rule(
        "10",
        "/blue*",
        format!("Type=forward,TargetGroupArn={blue}"),
    );
    rule(
        "20",
        "/green*",
        format!("Type=forward,TargetGroupArn={green}"),
    );
    rule(
        "30",
        "/split*",
        json!([{"Type": "forward", "ForwardConfig": {"TargetGroups": [
            {"TargetGroupArn": blue, "Weight": 80},
            {"TargetGroupArn": green, "Weight": 20},
        ]}}])
        .to_string(),
    );
    // An NLB's TCP listener in front of the blue service too.
    let nlb = elb(&[
        "create-load-balancer",
        "--name",
        &unique("nlb-"),
        "--type",
        "network",
        "--subnets",
        &net.subnets[0],
    ]);
    let nlb_address: SocketAddr = format!("{}:9000", text(&nlb, "/LoadBalancers/0/DNSName"))
        .parse()
        .unwrap();
    elb(&[
        "create-listener",
        "--load-balancer-arn",
        &text(&nlb, "/LoadBalancers/0/LoadBalancerArn"),
        "--protocol",
        "TCP",
        "--port",
        "9000",
        "--default-actions",
        &format!("Type=forward,TargetGroupArn={tcp}"),
    ]);

    let service = |color: &str, balancers: &[String]| {
        let td = register_fargate(&s, &unique("lbfg-"), &colored(&image, color), &json!([]));
        let name = unique(&format!("{color}-"));
        let mut args = vec![
            "ecs".to_owned(),
            "create-service".into(),
            "--cluster".into(),
            cluster.clone(),
            "--service-name".into(),
            name.clone(),
            "--task-definition".into(),
            td,
            "--desired-count".into(),
            "2".into(),
            "--launch-type".into(),
            "FARGATE".into(),
            "--network-configuration".into(),
            format!("awsvpcConfiguration={{subnets=[{subnet}]}}"),
            "--load-balancers".into(),
        ];
        args.extend(
            balancers
                .iter()
                .map(|g| format!("targetGroupArn={g},containerName=web,containerPort=8080")),
        );
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ok_json(&s.aws(&args));
        name
    };
    service("blue", &[blue.clone(), tcp.clone()]);
    service("green", std::slice::from_ref(&green));
    for (what, arn) in [("blue", &blue), ("green", &green), ("tcp", &tcp)] {
        let targets = wait_for(
            &format!("two healthy {what} targets"),
            Duration::from_secs(120),
            || {
                let healthy = healthy_targets(&s, arn);
                (healthy.len() == 2).then_some(healthy)
            },
        );
        // ip targets: the tasks' own addresses on the container port.
        for t in &targets {
            let ip: std::net::Ipv4Addr = t["Target"]["Id"].as_str().unwrap().parse().unwrap();
            assert!(!ip.is_loopback(), "{t}");
            assert_eq!(t["Target"]["Port"], 8080);
        }
    }

    // Path rules send each path to its service; what matches no rule gets the fixed answer.
    assert_eq!(get(alb_address, "/blue").unwrap(), (200, "blue".to_owned()));
    assert_eq!(
        get(alb_address, "/green").unwrap(),
        (200, "green".to_owned())
    );
    assert_eq!(
        get(alb_address, "/other").unwrap(),
        (404, "nothing-here".to_owned())
    );
    // The weighted forward: 80/20 over 1,000 requests (binomial: 3 standard deviations are
    // about 38 requests).
    let mut blues = 0;
    for _ in 0..1000 {
        let (status, body) = get(alb_address, "/split").unwrap();
        assert_eq!(status, 200, "{body}");
        if body == "blue" {
            blues += 1;
        } else {
            assert_eq!(body, "green");
        }
    }
    assert!((740..=860).contains(&blues), "{blues} of 1000 to blue");
    // The NLB passes the TCP stream through to a blue task.
    assert_eq!(get(nlb_address, "/blue").unwrap(), (200, "blue".to_owned()));
}
