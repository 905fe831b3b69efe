//! A real `berth agent` on the real Docker Engine, driven with the real `aws` CLI: the
//! agent child process (own data dir, containers removed when it is dropped), and the calls
//! the agent tests make over and over (register a task definition, run a task, wait for a
//! status, wait for instances to connect, find a task's containers in Docker).

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::{BerthServer, REGION, assert_ok, http, ok_json, stdout_of, unique};

/// The Fargate capacity pool's (hidden) cluster.
pub const POOL_CLUSTER: &str = "berth-fargate-pool";

/// A `berth agent` child process with its own data dir. Dropping it kills the agent and
/// removes every container left in Docker with its cluster's label (all of them carry it;
/// other agents in the same cluster lose theirs too, which is what a test's end wants).
pub struct Agent {
    child: Child,
    cluster: String,
    dir: tempfile::TempDir,
    /// Environment given to every start of the agent (e.g. `DOCKER_HOST`).
    env: Vec<(String, String)>,
    /// `--endpoint`: the server's, or several replicas' (comma-separated).
    endpoint: String,
}

impl Agent {
    /// Starts `berth agent --endpoint ... --fargate --data-dir DIR EXTRA...`: a host of the
    /// Fargate capacity pool. Its containers are not removed on drop by cluster label (every
    /// pool host's carry the pool's): the server's drop removes them (`berth down`).
    pub fn start_fargate(server: &BerthServer, extra: &[&str]) -> Agent {
        Agent::start(server, POOL_CLUSTER, extra)
    }

    /// Starts `berth agent --endpoint ... --cluster CLUSTER --data-dir DIR EXTRA...`.
    pub fn start(server: &BerthServer, cluster: &str, extra: &[&str]) -> Agent {
        Agent::start_with_env(server, cluster, extra, &[])
    }

    /// Like [`Agent::start`], with extra environment variables (kept for restarts).
    pub fn start_with_env(
        server: &BerthServer,
        cluster: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Agent {
        Agent::start_on(server, &server.endpoint(), cluster, extra, env)
    }

    /// Like [`Agent::start_with_env`], reaching the control plane at `endpoint` (e.g. the
    /// URLs of several replicas, comma-separated); `server` gives the credentials.
    pub fn start_on(
        server: &BerthServer,
        endpoint: &str,
        cluster: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Agent {
        let dir = tempfile::Builder::new()
            .prefix("berth-agent-")
            .tempdir()
            .unwrap();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let child = Agent::spawn(server, endpoint, cluster, &dir, extra, &env);
        Agent {
            child,
            cluster: cluster.to_owned(),
            dir,
            env,
            endpoint: endpoint.to_owned(),
        }
    }

    /// Fails the test if the agent process has exited.
    #[track_caller]
    pub fn assert_alive(&mut self) {
        let exited = self.child.try_wait().unwrap();
        assert!(exited.is_none(), "the agent exited: {exited:?}");
    }

    /// `kill -9` the agent (its containers keep running).
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// `kill -9` the agent, then start it again on the same data dir.
    pub fn kill9_and_restart(&mut self, server: &BerthServer, extra: &[&str]) {
        self.kill9();
        self.child = Agent::spawn(
            server,
            &self.endpoint,
            &self.cluster,
            &self.dir,
            extra,
            &self.env,
        );
    }

    fn spawn(
        server: &BerthServer,
        endpoint: &str,
        cluster: &str,
        dir: &tempfile::TempDir,
        extra: &[&str],
        env: &[(String, String)],
    ) -> Child {
        let bin = std::env::var_os("BERTH_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| crate::workspace_root().join("target/debug/berth"));
        // Appended to, so a restarted agent's log follows the first one's.
        let stderr = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.path().join("agent.stderr.log"))
            .unwrap();
        let joining: &[&str] = if cluster == POOL_CLUSTER {
            &["--fargate"]
        } else {
            &["--cluster", cluster]
        };
        Command::new(bin)
            .args(["agent", "--endpoint", endpoint])
            .args(joining)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(extra)
            .env("AWS_ACCESS_KEY_ID", &server.access_key)
            .env("AWS_SECRET_ACCESS_KEY", &server.secret_key)
            .env("AWS_REGION", REGION)
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_PROFILE")
            .env("BERTH_LOG", "info,berth_agent=debug")
            // Last: a test's own variables (other credentials, say) win.
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn berth agent")
    }

    /// The agent's own directory: its data dir (`data/`, the state file) and its log.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Everything the agent wrote to stderr so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("agent.stderr.log")).unwrap_or_default()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!(
                "---- berth agent stderr ({}) ----\n{}\n---- end of agent stderr ----",
                self.dir.path().display(),
                self.log()
            );
        }
        self.kill9();
        if self.cluster != POOL_CLUSTER {
            remove_containers(&format!("com.amazonaws.ecs.cluster={}", self.cluster));
        }
    }
}

/// Polls `check` every 200 ms until it returns `Some`, or fails after `limit`.
#[track_caller]
pub fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        thread::sleep(Duration::from_millis(200));
    }
}

/// `aws ecs describe-tasks` of one task: `tasks[0]`.
pub fn describe_task(s: &BerthServer, cluster: &str, arn: &str) -> Value {
    let v = ok_json(&s.aws(&[
        "ecs",
        "describe-tasks",
        "--cluster",
        cluster,
        "--tasks",
        arn,
    ]));
    v["tasks"][0].clone()
}

/// Polls DescribeTasks until the task's lastStatus is `status` (within 90 s); a task that
/// stops while another status is awaited fails at once.
#[track_caller]
pub fn wait_status(s: &BerthServer, cluster: &str, arn: &str, status: &str) -> Value {
    let limit = Duration::from_secs(90);
    let deadline = Instant::now() + limit;
    loop {
        let task = describe_task(s, cluster, arn);
        if task["lastStatus"] == status {
            return task;
        }
        if status != "STOPPED" && task["lastStatus"] == "STOPPED" {
            panic!("task stopped while waiting for {status}: {task:#}");
        }
        assert!(
            Instant::now() < deadline,
            "task never reached {status} within {limit:?}; last: {task:#}"
        );
        thread::sleep(Duration::from_millis(250));
    }
}

/// `aws ecs describe-tasks` of several tasks (up to 100), in the order asked for.
pub fn describe_tasks(s: &BerthServer, cluster: &str, arns: &[String]) -> Vec<Value> {
    let mut args = vec!["ecs", "describe-tasks", "--cluster", cluster, "--tasks"];
    args.extend(arns.iter().map(String::as_str));
    let v = ok_json(&s.aws(&args));
    assert_eq!(v["failures"], json!([]), "{v:#}");
    arns.iter()
        .map(|arn| {
            v["tasks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["taskArn"] == arn.as_str())
                .cloned()
                .unwrap_or_else(|| panic!("{arn} not described: {v:#}"))
        })
        .collect()
}

/// Polls DescribeTasks (one call for all of them) until every task's lastStatus is
/// `status` (within 90 s); a task that stops while another status is awaited fails at once.
#[track_caller]
pub fn wait_statuses(s: &BerthServer, cluster: &str, arns: &[String], status: &str) -> Vec<Value> {
    let limit = Duration::from_secs(90);
    let deadline = Instant::now() + limit;
    loop {
        let tasks = describe_tasks(s, cluster, arns);
        if tasks.iter().all(|t| t["lastStatus"] == status) {
            return tasks;
        }
        if status != "STOPPED"
            && let Some(task) = tasks.iter().find(|t| t["lastStatus"] == "STOPPED")
        {
            panic!("task stopped while waiting for {status}: {task:#}");
        }
        assert!(
            Instant::now() < deadline,
            "tasks never all reached {status} within {limit:?}; last: {tasks:#?}"
        );
        thread::sleep(Duration::from_millis(250));
    }
}

/// A free TCP port on this host (bound and released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Registers a bridge-mode task definition; returns its ARN.
pub fn register(s: &BerthServer, family: &str, containers: Value) -> String {
    let v = ok_json(&s.aws(&[
        "ecs",
        "register-task-definition",
        "--family",
        family,
        "--network-mode",
        "bridge",
        "--container-definitions",
        &containers.to_string(),
    ]));
    v["taskDefinition"]["taskDefinitionArn"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Registers a FARGATE definition (awsvpc, 256 CPU, 512 MiB) of these containers and
/// volumes; returns its ARN.
pub fn register_fargate(
    s: &BerthServer,
    family: &str,
    containers: &Value,
    volumes: &Value,
) -> String {
    let v = ok_json(&s.aws(&[
        "ecs",
        "register-task-definition",
        "--family",
        family,
        "--requires-compatibilities",
        "FARGATE",
        "--network-mode",
        "awsvpc",
        "--cpu",
        "256",
        "--memory",
        "512",
        "--container-definitions",
        &containers.to_string(),
        "--volumes",
        &volumes.to_string(),
    ]));
    v["taskDefinition"]["taskDefinitionArn"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// `aws ecs run-task` of one task that must be placed; returns its ARN.
pub fn run_task(s: &BerthServer, cluster: &str, task_definition: &str) -> String {
    let v = ok_json(&s.aws(&[
        "ecs",
        "run-task",
        "--cluster",
        cluster,
        "--task-definition",
        task_definition,
    ]));
    assert_eq!(v["failures"], json!([]), "{v:#}");
    v["tasks"][0]["taskArn"].as_str().unwrap().to_owned()
}

/// The ids of a task's containers found in Docker by ECS's task-ARN label: running only, or
/// `all` of them.
pub fn docker_ps(s: &BerthServer, all: bool, task_arn: &str) -> Vec<String> {
    let label = format!("label=com.amazonaws.ecs.task-arn={task_arn}");
    let mut args = vec!["ps", "-q", "--no-trunc", "--filter", &label];
    if all {
        args.push("-a");
    }
    let out = s.docker(&args);
    assert_ok(&out, "docker ps");
    stdout_of(&out)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// The ids of every container (running or not) of a task.
pub fn containers_of(s: &BerthServer, task_arn: &str) -> Vec<String> {
    docker_ps(s, true, task_arn)
}

/// `docker inspect ID`: the one object.
pub fn docker_inspect(s: &BerthServer, id: &str) -> Value {
    let out = s.docker(&["inspect", id]);
    assert_ok(&out, "docker inspect");
    serde_json::from_str::<Value>(&stdout_of(&out)).unwrap()[0].clone()
}

/// Waits until exactly `count` container instances are registered in the cluster and all
/// of them connected; returns their DescribeContainerInstances entries.
#[track_caller]
pub fn wait_instances(s: &BerthServer, cluster: &str, count: usize) -> Vec<Value> {
    wait_for(
        &format!("{count} agent(s) to register and connect"),
        Duration::from_secs(30),
        || {
            let v = ok_json(&s.aws(&["ecs", "list-container-instances", "--cluster", cluster]));
            let arns: Vec<String> = v["containerInstanceArns"]
                .as_array()?
                .iter()
                .filter_map(|a| a.as_str().map(str::to_owned))
                .collect();
            assert!(
                arns.len() <= count,
                "more than {count} instance(s) registered: {arns:?}"
            );
            if arns.len() < count {
                return None;
            }
            let mut args = vec![
                "ecs",
                "describe-container-instances",
                "--cluster",
                cluster,
                "--container-instances",
            ];
            args.extend(arns.iter().map(String::as_str));
            let d = ok_json(&s.aws(&args));
            let instances = d["containerInstances"].as_array()?.clone();
            (instances.len() == count && instances.iter().all(|i| i["agentConnected"] == true))
                .then_some(instances)
        },
    )
}

/// Waits until the cluster's one container instance is registered and connected.
#[track_caller]
pub fn wait_connected(s: &BerthServer, cluster: &str) -> Value {
    wait_instances(s, cluster, 1).remove(0)
}

/// `docker rm -f -v` of every container with the label `NAME=VALUE` (test clean-up; errors
/// are ignored).
pub fn remove_containers(label: &str) {
    let filter = format!("label={label}");
    let Ok(out) = Command::new("docker")
        .args(["ps", "-aq", "--filter", &filter])
        .output()
    else {
        return;
    };
    let ids: Vec<String> = stdout_of(&out)
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    if !ids.is_empty() {
        let _ = Command::new("docker")
            .args(["rm", "-f", "-v"])
            .args(&ids)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The set-up most real-agent tests start from: a cluster `PREFIX…` and a repository
/// `PREFIXimg-…` holding the test image, pushed; (cluster, image reference).
pub fn cluster_with_image(s: &BerthServer, prefix: &str) -> (String, String) {
    let cluster = unique(prefix);
    ok_json(&s.aws(&["ecs", "create-cluster", "--cluster-name", &cluster]));
    let repo = unique(&format!("{prefix}img-"));
    s.create_repo(&repo, &[]);
    let image = s.docker_push_test_image(&repo, "v1");
    (cluster, image)
}

/// GET / on 127.0.0.1:port until the body holds `marker`.
#[track_caller]
pub fn fetch_page(port: u16, marker: &str) -> String {
    wait_for(
        &format!("the page on port {port}"),
        Duration::from_secs(30),
        || {
            let response = http(port, "GET", "/", &[], b"").ok()?;
            let body = String::from_utf8_lossy(&response.body).into_owned();
            (response.status == 200 && body.contains(marker)).then_some(body)
        },
    )
}

/// An httpd container serving a page that says `marker`.
pub fn httpd(image: &str, marker: &str, host_port: Option<u16>) -> Value {
    let mut mapping = json!({"containerPort": 80, "protocol": "tcp"});
    if let Some(port) = host_port {
        mapping["hostPort"] = json!(port);
    }
    json!({
        "name": "web",
        "image": image,
        "memory": 64,
        "essential": true,
        "stopTimeout": 2,
        "entryPoint": ["sh", "-c"],
        "command": [format!("mkdir -p /www && echo {marker} > /www/index.html && exec httpd -f -p 80 -h /www")],
        "portMappings": [mapping],
    })
}

/// What [`run_bridge_tasks`] leaves running.
pub struct BridgeTasks {
    /// The task serving on a static host port, and its DescribeTasks entry once RUNNING.
    pub web_task: String,
    pub web_running: Value,
    /// The other task's dynamic host port, and the marker its page says.
    pub host_port: u16,
    pub marker: String,
}

/// The bridge-mode workflow any agent must pass: a task on a static host port serving a
/// page, one on a dynamic port found through `networkBindings`, and one whose essential
/// container exits (ECS's stoppedReason, its exit code). The first two keep running.
#[track_caller]
pub fn run_bridge_tasks(s: &BerthServer, cluster: &str, image: &str) -> BridgeTasks {
    // A static host port serving a page.
    let static_port = free_port();
    let marker = unique("page-");
    let web = register(
        s,
        &unique("web-"),
        json!([httpd(image, &marker, Some(static_port))]),
    );
    let web_task = run_task(s, cluster, &web);
    let t0 = Instant::now();
    let web_running = wait_status(s, cluster, &web_task, "RUNNING");
    eprintln!("static-port task RUNNING {:?} after run-task", t0.elapsed());
    s.track_image(image);
    assert_eq!(
        web_running["containers"][0]["networkBindings"][0]["hostPort"], static_port,
        "{web_running:#}"
    );
    assert!(fetch_page(static_port, &marker).contains(&marker));

    // A dynamic host port, found through networkBindings.
    let marker2 = unique("dynamic-");
    let dynamic = register(s, &unique("dyn-"), json!([httpd(image, &marker2, None)]));
    let dynamic_task = run_task(s, cluster, &dynamic);
    let running = wait_status(s, cluster, &dynamic_task, "RUNNING");
    let binding = running["containers"][0]["networkBindings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["containerPort"] == 80)
        .cloned()
        .unwrap_or_else(|| panic!("no binding for port 80: {running:#}"));
    let host_port = binding["hostPort"].as_u64().unwrap() as u16;
    assert_ne!(host_port, 80);
    assert!(fetch_page(host_port, &marker2).contains(&marker2));

    // An essential container exiting stops its task with ECS's reason and its exit code.
    let exits = register(
        s,
        &unique("exit-"),
        json!([{
            "name": "main", "image": image, "memory": 32, "essential": true,
            // Exits a moment after it started, so the agent learns of it from Docker's events.
            "entryPoint": ["sh", "-c"], "command": ["sleep 1; exit 3"]
        }]),
    );
    let exit_task = run_task(s, cluster, &exits);
    let stopped = wait_status(s, cluster, &exit_task, "STOPPED");
    assert_eq!(
        stopped["stoppedReason"], "Essential container in task exited",
        "{stopped:#}"
    );
    assert_eq!(stopped["containers"][0]["exitCode"], 3, "{stopped:#}");
    BridgeTasks {
        web_task,
        web_running,
        host_port,
        marker: marker2,
    }
}
