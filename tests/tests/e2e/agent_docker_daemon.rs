//! The Docker daemon disappearing under a running `berth agent` is reported, not crashed on.
//! The agent reaches Docker through a unix-socket proxy the test owns (`DOCKER_HOST`), so
//! "Docker is gone" is the proxy closing its socket and every connection through it, while
//! the test itself still reaches the real daemon. While Docker is gone the instance shows
//! `healthStatus` IMPAIRED (a CONTAINER_RUNTIME check) and stays connected; a container
//! killed meanwhile is reported STOPPED with its exit code once Docker is back.

use std::fs;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use berth_e2e::docker_agent::{Agent, cluster_with_image, describe_task, wait_for, wait_status};
use berth_e2e::{BerthServer, assert_ok, ok_json, stdout_of, unique};
use serde_json::{Value, json};

const DOCKER_SOCKET: &str = "/var/run/docker.sock";

/// A unix-socket proxy to Docker's socket that can be stopped (socket removed, every open
/// connection cut, as when the daemon dies) and started again on the same path.
struct DockerProxy {
    path: PathBuf,
    running: Option<Running>,
}

struct Running {
    stop: Arc<AtomicBool>,
    acceptor: thread::JoinHandle<()>,
    /// Both ends of every connection, to cut them at stop.
    connections: Arc<Mutex<Vec<UnixStream>>>,
}

impl DockerProxy {
    fn start(path: &Path) -> DockerProxy {
        let mut proxy = DockerProxy {
            path: path.to_owned(),
            running: None,
        };
        proxy.resume();
        proxy
    }

    fn resume(&mut self) {
        assert!(self.running.is_none(), "the proxy already runs");
        let _ = fs::remove_file(&self.path);
        let listener = UnixListener::bind(&self.path).unwrap();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(Mutex::new(Vec::new()));
        let acceptor = {
            let (stop, connections) = (stop.clone(), connections.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((client, _)) => forward(client, &connections),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            thread::sleep(Duration::from_millis(10));
                        }
                        Err(e) => panic!("proxy accept: {e}"),
                    }
                }
            })
        };
        self.running = Some(Running {
            stop,
            acceptor,
            connections,
        });
    }

    /// Docker "dies": no socket to connect to, every connection through the proxy cut.
    fn pause(&mut self) {
        let running = self.running.take().expect("the proxy is not running");
        running.stop.store(true, Ordering::SeqCst);
        running.acceptor.join().unwrap();
        let _ = fs::remove_file(&self.path);
        for stream in running.connections.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for DockerProxy {
    fn drop(&mut self) {
        if self.running.is_some() {
            self.pause();
        }
    }
}

/// Joins `client` to a new connection to Docker's socket, a thread per direction.
fn forward(client: UnixStream, connections: &Mutex<Vec<UnixStream>>) {
    client.set_nonblocking(false).unwrap();
    let Ok(upstream) = UnixStream::connect(DOCKER_SOCKET) else {
        return; // the client sees its connection closed
    };
    {
        let mut open = connections.lock().unwrap();
        open.push(client.try_clone().unwrap());
        open.push(upstream.try_clone().unwrap());
    }
    let pipe = |mut from: UnixStream, mut to: UnixStream| {
        thread::spawn(move || {
            let mut buffer = [0u8; 16 * 1024];
            loop {
                match from.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if to.write_all(&buffer[..n]).is_err() {
                            break;
                        }
                    }
                }
            }
            // Pass the end on: the other side sees EOF once everything before it arrived.
            let _ = to.shutdown(Shutdown::Write);
        });
    };
    pipe(client.try_clone().unwrap(), upstream.try_clone().unwrap());
    pipe(upstream, client);
}

/// The cluster's one container instance, described with its health.
fn describe_instance(s: &BerthServer, cluster: &str) -> Option<Value> {
    let v = ok_json(&s.aws(&["ecs", "list-container-instances", "--cluster", cluster]));
    let arn = v["containerInstanceArns"]
        .as_array()?
        .first()?
        .as_str()?
        .to_owned();
    let d = ok_json(&s.aws(&[
        "ecs",
        "describe-container-instances",
        "--cluster",
        cluster,
        "--container-instances",
        &arn,
        "--include",
        "CONTAINER_INSTANCE_HEALTH",
    ]));
    Some(d["containerInstances"][0].clone())
}

/// Waits until the instance shows `overallStatus` = `status` with a CONTAINER_RUNTIME check
/// of that status; returns the instance.
#[track_caller]
fn wait_health(s: &BerthServer, cluster: &str, status: &str) -> Value {
    wait_for(
        &format!("healthStatus {status}"),
        Duration::from_secs(90),
        || {
            let instance = describe_instance(s, cluster)?;
            let health = &instance["healthStatus"];
            let runtime = health["details"]
                .as_array()?
                .iter()
                .find(|d| d["type"] == "CONTAINER_RUNTIME")?;
            (health["overallStatus"] == status && runtime["status"] == status)
                .then(|| instance.clone())
        },
    )
}

#[test]
fn the_docker_daemon_going_away_is_reported_and_ridden_out() {
    let s = BerthServer::start();
    let (cluster, image) = cluster_with_image(&s, "dockerd-");

    let socket = s.scratch(&unique("proxy-")).join("docker.sock");
    let mut proxy = DockerProxy::start(&socket);
    let docker_host = format!("unix://{}", socket.display());
    let mut agent = Agent::start_with_env(&s, &cluster, &[], &[("DOCKER_HOST", &docker_host)]);

    // Connected and healthy: the first report goes out when telemetry opens.
    let healthy = wait_health(&s, &cluster, "OK");
    assert_eq!(healthy["agentConnected"], true, "{healthy:#}");
    let check = &healthy["healthStatus"]["details"][0];
    assert!(check["lastUpdated"].is_number(), "{check:#}");
    assert!(check["lastStatusChange"].is_number(), "{check:#}");
    // Without `include` there is no healthStatus, as in ECS.
    let arn = healthy["containerInstanceArn"].as_str().unwrap();
    let plain = ok_json(&s.aws(&[
        "ecs",
        "describe-container-instances",
        "--cluster",
        &cluster,
        "--container-instances",
        arn,
    ]));
    assert!(
        plain["containerInstances"][0].get("healthStatus").is_none(),
        "{plain:#}"
    );

    let family = unique("sleeper-");
    let v = ok_json(
        &s.aws(&[
            "ecs",
            "register-task-definition",
            "--family",
            &family,
            "--network-mode",
            "bridge",
            "--container-definitions",
            &json!([{
                "name": "sleeper", "image": image, "memory": 32, "essential": true,
                "entryPoint": ["sh", "-c"], "command": ["exec sleep 100000"]
            }])
            .to_string(),
        ]),
    );
    let definition = v["taskDefinition"]["taskDefinitionArn"]
        .as_str()
        .unwrap()
        .to_owned();
    let v = ok_json(&s.aws(&[
        "ecs",
        "run-task",
        "--cluster",
        &cluster,
        "--task-definition",
        &definition,
    ]));
    assert_eq!(v["failures"], json!([]), "{v:#}");
    let task = v["tasks"][0]["taskArn"].as_str().unwrap().to_owned();
    wait_status(&s, &cluster, &task, "RUNNING");
    let label = format!("label=com.amazonaws.ecs.task-arn={task}");
    let out = s.docker(&["ps", "-q", "--filter", &label]);
    assert_ok(&out, "docker ps");
    let container = stdout_of(&out).trim().to_owned();
    assert!(!container.is_empty(), "no container for {task}");

    // Docker goes away under the agent.
    proxy.pause();
    let impaired = wait_health(&s, &cluster, "IMPAIRED");
    assert_eq!(impaired["agentConnected"], true, "{impaired:#}");
    let check = &impaired["healthStatus"]["details"][0];
    assert!(
        check["lastStatusChange"].as_f64()
            > healthy["healthStatus"]["details"][0]["lastStatusChange"].as_f64(),
        "{impaired:#}"
    );
    agent.assert_alive();

    // Meanwhile the task's container dies; the agent cannot see it yet.
    assert_ok(
        &s.docker(&["kill", "--signal", "KILL", &container]),
        "docker kill",
    );
    assert_eq!(describe_task(&s, &cluster, &task)["lastStatus"], "RUNNING");
    agent.assert_alive();

    // Docker is back: healthy again, and the death is found and reported.
    proxy.resume();
    let back = wait_health(&s, &cluster, "OK");
    assert_eq!(back["agentConnected"], true, "{back:#}");
    let stopped = wait_status(&s, &cluster, &task, "STOPPED");
    assert_eq!(
        stopped["stoppedReason"], "Essential container in task exited",
        "{stopped:#}"
    );
    assert_eq!(stopped["containers"][0]["exitCode"], 137, "{stopped:#}");
    agent.assert_alive();

    let log = agent.log();
    assert!(
        log.contains("the container runtime is unreachable"),
        "no warning of the outage in the agent's log"
    );
    assert!(
        log.contains("the container runtime is reachable again"),
        "no word of the recovery in the agent's log"
    );
    drop(agent);
    drop(proxy);
}

/// An agent started before Docker is up waits for it (saying so) and registers once it
/// answers, as an agent started with its host must.
#[test]
fn an_agent_started_before_docker_waits_for_it() {
    let s = BerthServer::start();
    let cluster = unique("dockerd-late-");
    ok_json(&s.aws(&["ecs", "create-cluster", "--cluster-name", &cluster]));
    let socket = s.scratch(&unique("proxy-")).join("docker.sock");
    let mut proxy = DockerProxy::start(&socket);
    proxy.pause();
    let docker_host = format!("unix://{}", socket.display());
    let mut agent = Agent::start_with_env(&s, &cluster, &[], &[("DOCKER_HOST", &docker_host)]);
    wait_for(
        "the agent to say it waits for Docker",
        Duration::from_secs(60),
        || {
            agent
                .log()
                .contains("Docker is not reachable yet")
                .then_some(())
        },
    );
    agent.assert_alive();
    let none = ok_json(&s.aws(&["ecs", "list-container-instances", "--cluster", &cluster]));
    assert_eq!(none["containerInstanceArns"], json!([]), "{none:#}");
    proxy.resume();
    let instance = berth_e2e::docker_agent::wait_connected(&s, &cluster);
    assert_eq!(instance["agentConnected"], true, "{instance:#}");
    drop(agent);
    drop(proxy);
}
