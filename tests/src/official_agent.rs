//! The official Amazon ECS agent (`../shared/tools/amazon-ecs-agent-*.gz`, unpacked by
//! `scripts/test.sh` to `target/amazon-ecs-agent`) as an external container instance of a
//! Berth server: the child process with its own data dir, started as the agent's README
//! says (ECS Anywhere style). Its introspection server always takes port 51678 on every
//! interface, so one runs per host at a time (nextest's `official-agent` test group).

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;

use crate::docker_agent::remove_containers;
use crate::{BerthServer, REGION};

/// The unpacked agent binary, if this machine has it: `BERTH_ECS_AGENT_BIN`, else
/// `target/amazon-ecs-agent`.
pub fn binary() -> Option<PathBuf> {
    let path = std::env::var_os("BERTH_ECS_AGENT_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::workspace_root().join("target/amazon-ecs-agent"));
    path.exists().then_some(path)
}

/// The binary, or `None` after saying plainly on stderr that the test does not run here.
pub fn binary_or_skip(test: &str) -> Option<PathBuf> {
    let found = binary();
    if found.is_none() {
        eprintln!(
            "SKIPPED {test}: the official Amazon ECS agent is not on this machine \
             (scripts/test.sh unpacks ../shared/tools/amazon-ecs-agent-*.gz to \
             target/amazon-ecs-agent; or set BERTH_ECS_AGENT_BIN)"
        );
    }
    found
}

/// A running official agent. Dropping it kills it and removes every container of its
/// cluster.
pub struct OfficialAgent {
    child: Child,
    binary: PathBuf,
    cluster: String,
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl OfficialAgent {
    /// Starts the agent in `cluster` of `server`, with extra `ECS_*` settings.
    pub fn start(
        binary: PathBuf,
        server: &BerthServer,
        cluster: &str,
        env: &[(&str, &str)],
    ) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("berth-official-agent-")
            .tempdir()
            .unwrap();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let child = spawn(&binary, server, cluster, &dir, &env);
        OfficialAgent {
            child,
            binary,
            cluster: cluster.to_owned(),
            dir,
            env,
        }
    }

    /// Stops the agent (SIGKILL: its containers keep running) and starts it again on the
    /// same data dir, as a host's agent restarts.
    pub fn restart(&mut self, server: &BerthServer) {
        self.kill();
        self.child = spawn(&self.binary, server, &self.cluster, &self.dir, &self.env);
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The agent's log file so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default()
    }
}

fn spawn(
    binary: &PathBuf,
    server: &BerthServer,
    cluster: &str,
    dir: &tempfile::TempDir,
    env: &[(String, String)],
) -> Child {
    fs::create_dir_all(dir.path().join("data")).unwrap();
    let out = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.path().join("agent.out"))
        .unwrap();
    Command::new(binary)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", std::env::var_os("HOME").unwrap_or_default())
        .env("ECS_EXTERNAL", "true")
        .env("ECS_BACKEND_HOST", server.endpoint())
        .env("ECS_CLUSTER", cluster)
        .env("ECS_DATADIR", dir.path().join("data"))
        .env("ECS_LOGFILE", dir.path().join("agent.log"))
        .env("ECS_LOGLEVEL", "debug")
        // Tasks are stopped and cleaned up soon after they stop, as the tests wait for it.
        .env("ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION", "5s")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("AWS_ACCESS_KEY_ID", &server.access_key)
        .env("AWS_SECRET_ACCESS_KEY", &server.secret_key)
        .env("AWS_DEFAULT_REGION", REGION)
        .env("AWS_REGION", REGION)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .expect("spawn the official ECS agent")
}

impl Drop for OfficialAgent {
    fn drop(&mut self) {
        if thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(80).collect();
            eprintln!(
                "---- official agent log, last lines ({}) ----",
                self.dir.path().display()
            );
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
            eprintln!("---- end of agent log ----");
        }
        self.kill();
        remove_containers(&format!("com.amazonaws.ecs.cluster={}", self.cluster));
        remove_task_cgroups();
    }
}

/// Removes the task cgroups (`/sys/fs/cgroup/<controller>/ecs/<task id>`) the agent makes
/// with `ECS_ENABLE_TASK_CPU_MEM_LIMIT=true` and removes only at its own task clean-up,
/// which a killed agent never reaches. `rmdir` removes only empty cgroups: one that still
/// holds processes stays.
fn remove_task_cgroups() {
    let Ok(controllers) = fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    for controller in controllers.flatten() {
        let Ok(tasks) = fs::read_dir(controller.path().join("ecs")) else {
            continue;
        };
        for task in tasks.flatten() {
            if task.path().is_dir() {
                let _ = fs::remove_dir(task.path());
            }
        }
    }
}
