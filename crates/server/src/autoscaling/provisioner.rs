//! Provisioners: how an Auto Scaling group's instance comes to be and goes. An instance is
//! a `berth agent` whose container instance's `ec2InstanceId` is the instance's id.
//! `InProcess` (the default) runs each agent in this process, as `berth up`'s built-in
//! agents run; `Command` hands launches and terminations to a user's executable
//! (`--asg-provisioner-command`), which may start agents anywhere (docs/autoscaling-groups.md).
//! Both are idempotent per instance id: the controller asks for every live instance on
//! every pass (after a restart too), and a provisioner acts once.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use berth_api::RootCredentials;
use berth_model::InstallationId;
use tokio::sync::watch;

pub type Pending<'a> = Pin<Box<dyn Future<Output = Result<(), ProvisionError>> + Send + 'a>>;

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("no credentials for account {0}")]
    NoCredentials(String),
    #[error("{command} {action} {instance}: {detail}")]
    Command {
        command: String,
        action: &'static str,
        instance: String,
        detail: String,
    },
}

/// An instance to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    pub instance_id: String,
    pub cluster: String,
    pub account: String,
    pub region: String,
    pub availability_zone: String,
    pub instance_type: Option<String>,
    /// Where its agent reaches the control plane.
    pub endpoint: String,
}

/// Starts and stops a group's instances.
pub trait Provisioner: Send + Sync {
    /// Makes sure the instance runs (at once when it does).
    fn launch<'a>(&'a self, launch: &'a Launch) -> Pending<'a>;
    /// Stops the instance (at once when it is not running).
    fn terminate<'a>(&'a self, instance_id: &'a str) -> Pending<'a>;
}

/// Which provisioner `berth server` uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ProvisionerConfig {
    /// Agents in the server process.
    #[default]
    InProcess,
    /// `PATH launch INSTANCE_ID CLUSTER ENDPOINT` / `PATH terminate INSTANCE_ID`.
    Command(PathBuf),
}

/// Agents in this process, each with its own data dir `DATA_DIR/autoscaling/{instance-id}`.
pub struct InProcess {
    pub data_dir: PathBuf,
    pub installation: InstallationId,
    /// The default account's root credentials (other accounts' come from IAM).
    pub default_account: String,
    pub root: RootCredentials,
    pub iam: berth_iam::Iam,
    pub shutdown: watch::Receiver<bool>,
    agents: Mutex<HashMap<String, RunningAgent>>,
}

struct RunningAgent {
    stop: watch::Sender<bool>,
    handle: tokio::task::JoinHandle<()>,
    started: Instant,
}

/// An agent that ended on its own (its cluster missing, say) is started again after this
/// long from its last start, not on every pass.
const RESTART_ENDED_AGENT: Duration = Duration::from_secs(30);

impl InProcess {
    pub fn new(
        data_dir: PathBuf,
        installation: InstallationId,
        default_account: String,
        root: RootCredentials,
        iam: berth_iam::Iam,
        shutdown: watch::Receiver<bool>,
    ) -> InProcess {
        InProcess {
            data_dir,
            installation,
            default_account,
            root,
            iam,
            shutdown,
            agents: Mutex::new(HashMap::new()),
        }
    }

    /// The account's root credentials: an agent acts in the account it signs for.
    fn credentials(
        &self,
        account: &str,
    ) -> Result<berth_agent::config::Credentials, ProvisionError> {
        let (access_key_id, secret_access_key) = if account == self.default_account {
            (
                self.root.access_key_id.clone(),
                self.root.secret_access_key.clone(),
            )
        } else {
            let found = self
                .iam
                .account(account)
                .ok()
                .flatten()
                .ok_or_else(|| ProvisionError::NoCredentials(account.to_string()))?;
            (found.access_key_id, found.secret_access_key)
        };
        Ok(berth_agent::config::Credentials {
            access_key_id,
            secret_access_key,
            session_token: None,
        })
    }
}

impl Provisioner for InProcess {
    fn launch<'a>(&'a self, launch: &'a Launch) -> Pending<'a> {
        Box::pin(async move {
            // The map's lock is never held across an await.
            {
                let agents = self.agents.lock().expect("agents lock");
                if agents.get(&launch.instance_id).is_some_and(|a| {
                    !a.handle.is_finished() || a.started.elapsed() < RESTART_ENDED_AGENT
                }) {
                    return Ok(());
                }
            }
            let config = berth_agent::config::AgentConfig {
                credentials: self.credentials(&launch.account)?,
                region: launch.region.clone(),
                installation: Some(self.installation.clone()),
                availability_zone: Some(launch.availability_zone.clone()),
                instance_type: launch.instance_type.clone(),
                ec2_instance_id: Some(launch.instance_id.clone()),
                efs_root: Some(self.data_dir.join("efs")),
                ..berth_agent::config::AgentConfig::defaults(
                    &launch.endpoint,
                    &launch.cluster,
                    &self.data_dir.join("autoscaling").join(&launch.instance_id),
                )
            };
            let (stop, stopped) = watch::channel(false);
            // The agent stops with the server, or when terminated.
            let (mut server_down, forward) = (self.shutdown.clone(), stop.clone());
            tokio::spawn(async move {
                tokio::select! {
                    down = server_down.wait_for(|down| *down) => {
                        if down.is_ok() {
                            let _ = forward.send(true);
                        }
                    }
                    _ = forward.closed() => {}
                }
            });
            let id = launch.instance_id.clone();
            let handle = tokio::spawn(async move {
                if let Err(e) = berth_agent::run(config, stopped).await {
                    tracing::warn!(instance = %id, error = %e, "an Auto Scaling instance's agent stopped");
                }
            });
            tracing::info!(instance = %launch.instance_id, cluster = %launch.cluster, "Auto Scaling instance started (in-process agent)");
            self.agents.lock().expect("agents lock").insert(
                launch.instance_id.clone(),
                RunningAgent {
                    stop,
                    handle,
                    started: Instant::now(),
                },
            );
            Ok(())
        })
    }

    fn terminate<'a>(&'a self, instance_id: &'a str) -> Pending<'a> {
        Box::pin(async move {
            let agent = self.agents.lock().expect("agents lock").remove(instance_id);
            if let Some(agent) = agent {
                let _ = agent.stop.send(true);
                let _ = tokio::time::timeout(Duration::from_secs(30), agent.handle).await;
            }
            let dir = self.data_dir.join("autoscaling").join(instance_id);
            if let Err(e) = std::fs::remove_dir_all(&dir)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot remove a terminated instance's data dir");
            }
            Ok(())
        })
    }
}

/// A user's executable: `PATH launch INSTANCE_ID CLUSTER ENDPOINT` and
/// `PATH terminate INSTANCE_ID`, with the instance's account, region, zone and type in
/// `BERTH_ASG_*` variables. A launch that failed is tried again after a while.
pub struct Command {
    pub path: PathBuf,
    /// Launched ids, or when a failed launch may be tried again.
    launched: Mutex<HashMap<String, Option<Instant>>>,
}

/// How long after a failed launch it is tried again.
const RETRY_FAILED_LAUNCH: Duration = Duration::from_secs(30);

impl Command {
    pub fn new(path: PathBuf) -> Command {
        Command {
            path,
            launched: Mutex::new(HashMap::new()),
        }
    }

    async fn run(
        &self,
        action: &'static str,
        instance: &str,
        args: Vec<String>,
        env: Vec<(&'static str, String)>,
    ) -> Result<(), ProvisionError> {
        let path = self.path.clone();
        let failed = |detail: String| ProvisionError::Command {
            command: self.path.display().to_string(),
            action,
            instance: instance.to_string(),
            detail,
        };
        let output = tokio::task::spawn_blocking(move || {
            std::process::Command::new(&path)
                .args(&args)
                .envs(env)
                .stdin(std::process::Stdio::null())
                .output()
        })
        .await
        .map_err(|e| failed(e.to_string()))?
        .map_err(|e| failed(e.to_string()))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(failed(format!(
                "{}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )))
        }
    }
}

impl Provisioner for Command {
    fn launch<'a>(&'a self, launch: &'a Launch) -> Pending<'a> {
        Box::pin(async move {
            {
                let launched = self.launched.lock().expect("launched lock");
                match launched.get(&launch.instance_id) {
                    Some(None) => return Ok(()),
                    Some(Some(failed_at)) if failed_at.elapsed() < RETRY_FAILED_LAUNCH => {
                        return Ok(());
                    }
                    _ => {}
                }
            }
            let result = self
                .run(
                    "launch",
                    &launch.instance_id,
                    vec![
                        "launch".into(),
                        launch.instance_id.clone(),
                        launch.cluster.clone(),
                        launch.endpoint.clone(),
                    ],
                    vec![
                        ("BERTH_ASG_ACCOUNT", launch.account.clone()),
                        ("BERTH_ASG_REGION", launch.region.clone()),
                        (
                            "BERTH_ASG_AVAILABILITY_ZONE",
                            launch.availability_zone.clone(),
                        ),
                        (
                            "BERTH_ASG_INSTANCE_TYPE",
                            launch.instance_type.clone().unwrap_or_default(),
                        ),
                    ],
                )
                .await;
            self.launched.lock().expect("launched lock").insert(
                launch.instance_id.clone(),
                result.is_err().then(Instant::now),
            );
            result
        })
    }

    fn terminate<'a>(&'a self, instance_id: &'a str) -> Pending<'a> {
        Box::pin(async move {
            self.run(
                "terminate",
                instance_id,
                vec!["terminate".into(), instance_id.to_string()],
                Vec::new(),
            )
            .await?;
            self.launched
                .lock()
                .expect("launched lock")
                .remove(instance_id);
            Ok(())
        })
    }
}

/// A provisioner that records what it is asked (tests).
#[cfg(test)]
#[derive(Default)]
pub struct Recording {
    pub calls: Mutex<Vec<String>>,
}

#[cfg(test)]
impl Provisioner for Recording {
    fn launch<'a>(&'a self, launch: &'a Launch) -> Pending<'a> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("launch {} {}", launch.instance_id, launch.cluster));
        Box::pin(async { Ok(()) })
    }
    fn terminate<'a>(&'a self, instance_id: &'a str) -> Pending<'a> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("terminate {instance_id}"));
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_command_provisioner_calls_the_executable_once_per_launch() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("calls");
        let script = dir.path().join("provision");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho \"$@ $BERTH_ASG_AVAILABILITY_ZONE\" >> {}\n",
                log.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let command = Command::new(script);
        let launch = Launch {
            instance_id: "i-0123456789abcdef0".into(),
            cluster: "web".into(),
            account: "000000000000".into(),
            region: "us-east-1".into(),
            availability_zone: "us-east-1a".into(),
            instance_type: Some("t3.micro".into()),
            endpoint: "http://127.0.0.1:4566".into(),
        };
        command.launch(&launch).await.unwrap();
        command.launch(&launch).await.unwrap();
        command.terminate(&launch.instance_id).await.unwrap();
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            "launch i-0123456789abcdef0 web http://127.0.0.1:4566 us-east-1a\nterminate i-0123456789abcdef0 \n"
        );
    }

    #[tokio::test]
    async fn a_failing_command_is_an_error_naming_the_instance() {
        let command = Command::new("/bin/false".into());
        let e = command.terminate("i-1").await.unwrap_err();
        assert!(e.to_string().contains("terminate i-1"), "{e}");
    }
}
