//! A web service behind an application load balancer on `berth up`, as the auto scaling
//! tests and the reaction-time benchmark drive it: Fargate tasks running busybox httpd on
//! port 8080 (answering `/` with their hostname, `/health` with `ok`) registered by ECS in
//! an `ip` target group with quick health checks; requests through the load balancer and a
//! real load generator (`wrk`).

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::docker_agent::{register_fargate, wait_for, wait_instances};
use crate::network::DefaultNetwork;
use crate::service::create_fargate_service;
use crate::{BerthServer, ok_json, require_tool, unique};

/// The cluster `berth up` runs Fargate tasks on.
pub const FARGATE_POOL: &str = "berth-fargate-pool";

/// One GET on a new connection: (status, body).
pub fn http_get(address: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw)?;
    let status = raw
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {raw:?}")))?;
    let body = raw.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Ok((status, body.trim().to_owned()))
}

/// A Fargate service behind an ALB's HTTP listener on port 80.
pub struct WebService {
    pub cluster: String,
    pub name: String,
    /// The listener's address.
    pub address: SocketAddr,
    pub target_group: String,
    /// `app/{lb}/{id}/targetgroup/{tg}/{id}`: ALBRequestCountPerTarget's ResourceLabel.
    pub resource_label: String,
}

impl WebService {
    /// Creates the cluster, the load balancer, the target group and the service of
    /// `desired` tasks, and waits until they are all healthy targets.
    pub fn create(s: &BerthServer, desired: usize) -> WebService {
        wait_instances(s, FARGATE_POOL, 1);
        let net = DefaultNetwork::of(s);
        let repo = unique("web-img-");
        s.create_repo(&repo, &[]);
        let image = s.docker_push_test_image(&repo, "v1");
        let cluster = unique("web-");
        ok_json(&s.aws(&["ecs", "create-cluster", "--cluster-name", &cluster]));
        let elb = |args: &[&str]| {
            let mut all = vec!["elbv2"];
            all.extend_from_slice(args);
            ok_json(&s.aws(&all))
        };
        let text = |v: &Value, pointer: &str| {
            v.pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or_else(|| panic!("{pointer} in {v}"))
                .to_owned()
        };
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
            "ip",
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
        let target_group = text(&group, "/TargetGroups/0/TargetGroupArn");
        elb(&[
            "modify-target-group-attributes",
            "--target-group-arn",
            &target_group,
            "--attributes",
            "Key=deregistration_delay.timeout_seconds,Value=3",
        ]);
        let lb = elb(&[
            "create-load-balancer",
            "--name",
            &unique("web-"),
            "--subnets",
            &net.subnets[0],
            &net.subnets[1],
        ]);
        let lb_arn = text(&lb, "/LoadBalancers/0/LoadBalancerArn");
        elb(&[
            "create-listener",
            "--load-balancer-arn",
            &lb_arn,
            "--protocol",
            "HTTP",
            "--port",
            "80",
            "--default-actions",
            &format!("Type=forward,TargetGroupArn={target_group}"),
        ]);
        let address: SocketAddr = format!("{}:80", text(&lb, "/LoadBalancers/0/DNSName"))
            .parse()
            .unwrap();
        let resource_label = format!(
            "{}/{}",
            lb_arn.split_once(":loadbalancer/").unwrap().1,
            target_group.rsplit_once(':').unwrap().1
        );
        let td = register_fargate(
            s,
            &unique("web-"),
            &json!([{
                "name": "web",
                "image": image,
                "essential": true,
                "entryPoint": ["sh", "-c"],
                "command": ["mkdir -p /www && hostname > /www/index.html && echo ok > /www/health && exec httpd -f -p 8080 -h /www"],
                "portMappings": [{"containerPort": 8080, "protocol": "tcp"}],
            }]),
            &json!([]),
        );
        let name = create_fargate_service(
            s,
            &cluster,
            "web-",
            &td,
            desired,
            &net.subnets[0],
            &[
                "--load-balancers",
                &format!("targetGroupArn={target_group},containerName=web,containerPort=8080"),
            ],
        );
        let web = WebService {
            cluster,
            name,
            address,
            target_group,
            resource_label,
        };
        web.wait_serving(s, desired, Duration::from_secs(120));
        web
    }

    /// The target group's healthy targets.
    pub fn healthy_targets(&self, s: &BerthServer) -> usize {
        let v = ok_json(&s.aws(&[
            "elbv2",
            "describe-target-health",
            "--target-group-arn",
            &self.target_group,
        ]));
        v["TargetHealthDescriptions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["TargetHealth"]["State"] == "healthy")
            .count()
    }

    /// The distinct tasks (hostnames) answering `n` requests through the load balancer.
    pub fn answering(&self, n: usize) -> BTreeSet<String> {
        (0..n)
            .filter_map(|_| match http_get(self.address, "/") {
                Ok((200, body)) => Some(body),
                _ => None,
            })
            .collect()
    }

    /// Waits until `count` targets are healthy and `count` tasks answer through the load
    /// balancer.
    pub fn wait_serving(&self, s: &BerthServer, count: usize, limit: Duration) {
        wait_for(
            &format!("{count} tasks serving through the load balancer"),
            limit,
            || {
                (self.healthy_targets(s) == count && self.answering(count * 8).len() == count)
                    .then_some(())
            },
        );
    }
}

/// `wrk` loading `address` with `connections` connections for up to `seconds`; killed when
/// dropped.
pub struct Load(Child);

impl Load {
    pub fn start(address: SocketAddr, connections: u32, seconds: u32) -> Load {
        require_tool("wrk");
        let child = Command::new("wrk")
            .args([
                "-t1",
                &format!("-c{connections}"),
                &format!("-d{seconds}s"),
                &format!("http://{address}/"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("wrk starts");
        Load(child)
    }
}

/// What a finished `wrk` run reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WrkReport {
    /// Requests answered (wrk does not count those still open when it stops).
    pub requests: u64,
    /// Answers that were neither 2xx nor 3xx.
    pub non_2xx_3xx: u64,
}

/// Runs `wrk` against `url` with `connections` connections for `seconds`, to the end.
pub fn wrk(url: &str, connections: u32, seconds: u32) -> WrkReport {
    require_tool("wrk");
    let out = Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            url,
        ])
        .output()
        .expect("wrk runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "wrk failed: {text}");
    let number_before = |marker: &str| {
        text.lines()
            .find_map(|l| {
                l.trim()
                    .split_once(marker)
                    .map(|(n, _)| n.trim().to_owned())
            })
            .map(|n| n.parse::<u64>().unwrap_or_else(|_| panic!("{marker}: {n}")))
    };
    let non_2xx_3xx = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Non-2xx or 3xx responses:"))
        .map_or(0, |n| n.trim().parse().expect("a count"));
    WrkReport {
        requests: number_before(" requests in ")
            .unwrap_or_else(|| panic!("no request count in {text}")),
        non_2xx_3xx,
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
