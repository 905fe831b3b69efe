//! Starting a task's containers: what may start now (`dependsOn` conditions, links and
//! `volumesFrom`, `startTimeout`), and creating and starting each with its spec.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use berth_runtime::{HealthStatus, NetworkMode};

use super::errors::{DependencyError, StartError, TaskError};
use super::lock;
use super::supervisor::{Status, Supervisor};
use crate::awslogs;
use crate::translate::{self, TaskLayout};

/// How long a container may wait for its dependencies when it sets no `startTimeout`
/// (the official agent's `ECS_CONTAINER_START_TIMEOUT` on Linux).
const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(180);

/// Whether a container may start now.
enum Readiness {
    Ready,
    Waiting,
    Never(DependencyError),
}

impl Supervisor {
    /// Pulls, creates and starts whatever may start now. `Err` is why the task cannot run.
    pub(super) async fn progress(&mut self) -> Result<(), TaskError> {
        if !self.pulled {
            if !self.pull_images().await? {
                return Ok(()); // interrupted: the run loop sees why
            }
            self.pulled = true;
        }
        if !self.secrets_ready {
            self.resolve_secrets().await?;
            self.secrets_ready = true;
        }
        if self.eni.is_some() && !self.infra.ready {
            let infra = self.ensure_infra().await;
            // Replaces a warm container taken (after this task's, so as not to compete with it
            // for the runtime: below).
            let refill = infra.is_ok();
            infra?;
            if refill {
                let started = self.start_ready().await;
                self.engine.fill_warm();
                return started;
            }
        }
        self.start_ready().await
    }

    /// Creates and starts the task's containers whose dependencies allow it.
    async fn start_ready(&mut self) -> Result<(), TaskError> {
        let order = self.order.clone();
        for name in order {
            let member = &self.members[&name];
            if member.status >= Status::Running {
                continue;
            }
            match self.readiness(&name) {
                Readiness::Waiting => {
                    let member = self.members.get_mut(&name).expect("member");
                    member.waiting_since.get_or_insert_with(Instant::now);
                    continue;
                }
                Readiness::Never(reason) => return Err(reason.into()),
                Readiness::Ready => {}
            }
            self.start_member(&name).await?;
        }
        Ok(())
    }

    fn readiness(&self, name: &str) -> Readiness {
        let member = &self.members[name];
        // links and volumesFrom need their target running.
        let implicit = translate::dependencies(&member.def)
            .into_iter()
            .map(|d| (d, "START".to_owned()));
        let explicit = member.def.depends_on.iter().flatten().filter_map(|d| {
            Some((
                d.container_name.clone()?,
                d.condition.clone().unwrap_or_else(|| "START".into()),
            ))
        });
        let mut waiting = false;
        for (dep_name, condition) in explicit.chain(implicit) {
            let Some(dep) = self.members.get(&dep_name) else {
                return Readiness::Never(DependencyError::NotInTask {
                    container: name.to_owned(),
                    dependency: dep_name,
                });
            };
            let satisfied = match condition.as_str() {
                "START" => dep.started,
                "COMPLETE" => dep.status == Status::Stopped && dep.started,
                "SUCCESS" => {
                    if dep.status == Status::Stopped && dep.started {
                        if dep.exit_code != Some(0) {
                            return Readiness::Never(DependencyError::Failed {
                                container: name.to_owned(),
                                dependency: dep_name,
                                exit_code: dep.exit_code,
                            });
                        }
                        true
                    } else {
                        false
                    }
                }
                "HEALTHY" => {
                    if dep.status == Status::Stopped || dep.health == HealthStatus::Unhealthy {
                        return Readiness::Never(DependencyError::Unhealthy {
                            container: name.to_owned(),
                            dependency: dep_name,
                        });
                    }
                    dep.health == HealthStatus::Healthy
                }
                other => {
                    return Readiness::Never(DependencyError::UnknownCondition {
                        container: name.to_owned(),
                        condition: other.to_owned(),
                    });
                }
            };
            // A dependency that stopped before it ever started will never satisfy anything.
            if !satisfied && dep.status == Status::Stopped && !dep.started {
                return Readiness::Never(DependencyError::NeverStarted {
                    container: name.to_owned(),
                    dependency: dep_name,
                });
            }
            waiting |= !satisfied;
        }
        if !waiting {
            return Readiness::Ready;
        }
        let timeout = member
            .def
            .start_timeout
            .filter(|t| *t > 0)
            .map_or(DEFAULT_START_TIMEOUT, |t| Duration::from_secs(t as u64));
        if member
            .waiting_since
            .is_some_and(|since| since.elapsed() >= timeout)
        {
            return Readiness::Never(DependencyError::StartTimeout {
                container: name.to_owned(),
                seconds: timeout.as_secs(),
            });
        }
        Readiness::Waiting
    }

    /// The next time a waiting container's `startTimeout` runs out.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.members
            .values()
            .filter(|m| m.status < Status::Running)
            .filter_map(|m| {
                let timeout = m
                    .def
                    .start_timeout
                    .filter(|t| *t > 0)
                    .map_or(DEFAULT_START_TIMEOUT, |t| Duration::from_secs(t as u64));
                Some(m.waiting_since? + timeout)
            })
            .min()
    }

    async fn start_member(&mut self, name: &str) -> Result<(), TaskError> {
        if self.members[name].id.is_none() {
            let volumes = self.prepare_volumes().await?;
            let spec = self.container_spec(name, &volumes)?;
            let id = self
                .engine
                .runtime
                .create_container(&spec)
                .await
                .map_err(|e| self.fail_member(name, StartError::Create(e)))?;
            lock(&self.engine.routes).insert(id.clone(), self.arn.clone());
            let member = self.members.get_mut(name).expect("member");
            member.id = Some(id);
            member.status = Status::Created;
            self.save();
        }
        let id = self.members[name].id.clone().expect("created");
        // awslogs: the group and stream exist before the container starts, as Docker's
        // driver makes them when it starts.
        let awslogs = self.awslogs_options(name)?;
        if let Some(options) = &awslogs {
            let stream = options.stream_name(name, &self.arn, id.as_str());
            awslogs::prepare(&*self.logs_api(), options, &stream)
                .await
                .map_err(|e| self.fail_member(name, StartError::Logging(e)))?;
        }
        self.engine
            .runtime
            .start_container(&id)
            .await
            .map_err(|e| self.fail_member(name, StartError::Start(e)))?;
        if let Some(options) = awslogs {
            self.ship_logs(name, options);
        }
        {
            let member = self.members.get_mut(name).expect("member");
            member.started = true;
            member.status = Status::Running;
            member.waiting_since = None;
        }
        // The container may already have exited; inspect says which.
        self.refresh(name).await;
        self.save();
        self.report_container_if_changed(name);
        Ok(())
    }

    /// Records why a container could not be created or started; the task fails with it.
    pub(super) fn fail_member(&mut self, name: &str, error: StartError) -> StartError {
        if let Some(member) = self.members.get_mut(name) {
            member.reason = Some(error.to_string());
        }
        error
    }

    fn container_spec(
        &mut self,
        name: &str,
        volumes: &BTreeMap<String, translate::ResolvedVolume>,
    ) -> Result<berth_runtime::ContainerSpec, TaskError> {
        let network_mode = self.network_mode.clone()?;
        let docker_names: BTreeMap<String, String> = self
            .members
            .iter()
            .map(|(n, m)| (n.clone(), m.docker_name.clone()))
            .collect();
        let metadata_uris: BTreeMap<String, String> = self
            .engine
            .config
            .metadata
            .as_ref()
            .and_then(|endpoint| {
                let token = &self.members[name].metadata_token;
                match (&network_mode, &self.metadata_host) {
                    (NetworkMode::Container(_), _) if self.eni.is_some() && endpoint.link_local => {
                        Some(endpoint.link_local_uri(token))
                    }
                    (NetworkMode::Container(_), Some(host)) if self.eni.is_some() => {
                        Some(format!("http://{host}:{}/v4/{token}", endpoint.port))
                    }
                    _ => endpoint.uri(&network_mode, token),
                }
            })
            .map(|uri| (name.to_owned(), uri))
            .into_iter()
            .collect();
        let layout = TaskLayout {
            task: &self.task,
            cluster: &self.engine.config.cluster,
            instance_arn: &self.engine.config.instance_arn,
            installation: &self.engine.config.installation,
            network_mode: &network_mode,
            docker_names: &docker_names,
            volumes,
            metadata_uris: &metadata_uris,
        };
        let mut spec = translate::container_spec(&layout, &self.members[name].def)
            .map_err(|e| self.fail_member(name, StartError::Spec(e)))?;
        if let Some(secrets) = self.secret_env.get(name) {
            for (variable, value) in secrets {
                spec.env.retain(|(key, _)| key != variable);
                spec.env.push((variable.clone(), value.clone()));
            }
        }
        // The task role's credentials, where the SDKs look for them (an awsvpc task's
        // containers share the namespace of its infra container: they reach 169.254.170.2).
        let reachable_mode = match &network_mode {
            NetworkMode::Container(_) if self.eni.is_some() => NetworkMode::Bridge,
            mode => mode.clone(),
        };
        if let (Some(endpoint), Some(id)) = (
            self.engine.config.metadata.as_ref(),
            self.engine
                .credentials
                .of_task(&self.arn, crate::credentials::TASK_APPLICATION)
                .and_then(|c| c.credentials_id),
        ) && let Some((variable, value)) = endpoint.credentials_variable(&reachable_mode, &id)
        {
            spec.env.retain(|(key, _)| key != &variable);
            spec.env.push((variable, value));
        }
        if self.awslogs_options(name)?.is_some() {
            // Docker keeps the log on disk for the agent's shipper to read back.
            spec.log_config = Some(berth_runtime::LogConfig {
                driver: "json-file".to_owned(),
                options: BTreeMap::from([
                    (
                        "max-size".to_owned(),
                        awslogs::JSON_FILE_MAX_SIZE.to_owned(),
                    ),
                    (
                        "max-file".to_owned(),
                        awslogs::JSON_FILE_MAX_FILES.to_owned(),
                    ),
                ]),
            });
        }
        Ok(spec)
    }
}
