//! Images: pulled as the pull behaviour says, with ECR tokens from the control plane (cached
//! until shortly before they expire); a pull is abandoned when the task is told to stop.

use std::future::Future;
use std::time::{Duration, Instant};

use berth_agent_protocol::acs::RegistryAuthenticationData;
use berth_runtime::{RegistryAuth, normalize_image_reference};

use super::errors::{ExecutionError, PullError, TaskError};
use super::supervisor::{Status, Supervisor};
use super::{Inner, TaskMsg, lock, now_seconds};
use crate::config::{Credentials, ImagePullBehavior};

/// ECR tokens are renewed this long before they expire.
const TOKEN_RENEWAL_MARGIN: Duration = Duration::from_secs(5 * 60);

impl Inner {
    /// Makes `image` present as the pull behaviour says; `Ok` once it can be used.
    async fn ensure_image(
        &self,
        image: &str,
        auth: Option<&RegistryAuthenticationData>,
        execution: Option<&Credentials>,
    ) -> Result<(), TaskError> {
        let reference = normalize_image_reference(image);
        let behavior = self.config.image_pull_behavior;
        let present = || async { self.runtime.image_present(image).await.unwrap_or(false) };
        match behavior {
            ImagePullBehavior::PreferCached if present().await => return Ok(()),
            ImagePullBehavior::Once
                if self.state.lock().pulled_images.contains(&reference) && present().await =>
            {
                return Ok(());
            }
            _ => {}
        }
        let pulled: Result<(), TaskError> = async {
            let credentials = self.registry_credentials(image, auth, execution).await?;
            self.runtime
                .pull_image(image, credentials.as_ref())
                .await
                .map_err(|e| PullError::Runtime(e).into())
        }
        .await;
        match pulled {
            Ok(()) => {
                self.state.update(|s| s.pulled_images.insert(reference));
                Ok(())
            }
            Err(e) if behavior == ImagePullBehavior::Default && present().await => {
                tracing::warn!(image, error = %e, "pull failed; using the cached image");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Credentials for pulling `image`: an ECR token from the control plane (cached until
    /// shortly before it expires) when the task says so, else none. The token is asked for
    /// with the task's execution role when ACS says to use it (`useExecutionRole`), else
    /// with the agent's own credentials.
    async fn registry_credentials(
        &self,
        image: &str,
        auth: Option<&RegistryAuthenticationData>,
        execution: Option<&Credentials>,
    ) -> Result<Option<RegistryAuth>, TaskError> {
        if let Some(asm) = auth
            .filter(|a| a.kind.as_deref() == Some("asm"))
            .and_then(|a| a.asm_auth_data.as_ref())
        {
            let credentials = execution.ok_or(ExecutionError::NoCredentials)?;
            let login = self
                .asm_registry_auth(
                    credentials,
                    asm.region.as_deref().unwrap_or_default(),
                    asm.credentials_parameter.as_deref().unwrap_or_default(),
                    image_registry(image),
                )
                .await?;
            return Ok(Some(login));
        }
        let Some(auth) = auth.filter(|a| a.kind.as_deref() == Some("ecr")) else {
            return Ok(None);
        };
        let ecr = auth.ecr_auth_data.clone().unwrap_or_default();
        let as_role = if ecr.use_execution_role == Some(true) {
            Some(execution.ok_or(ExecutionError::NoCredentials)?)
        } else {
            None
        };
        let key = format!(
            "{}|{}|{}|{}",
            ecr.endpoint_override.as_deref().unwrap_or_default(),
            ecr.region.as_deref().unwrap_or_default(),
            ecr.registry_id.as_deref().unwrap_or_default(),
            as_role.map_or("", |c| c.access_key_id.as_str()),
        );
        if let Some((credentials, renew_at)) = lock(&self.tokens).get(&key)
            && Instant::now() < *renew_at
        {
            return Ok(Some(credentials.clone()));
        }
        let token = self
            .control
            .ecr_authorization(
                ecr.endpoint_override.as_deref(),
                ecr.region.as_deref(),
                ecr.registry_id.as_deref(),
                as_role,
            )
            .await
            .map_err(|e| match as_role {
                Some(_) => TaskError::from(ExecutionError::EcrAuth(e)),
                None => PullError::EcrToken(e).into(),
            })?;
        let credentials = RegistryAuth {
            username: token.username,
            password: token.password,
            server_address: image_registry(image).to_owned(),
        };
        let lifetime = token
            .expires_at
            .map(|at| Duration::from_secs_f64((at - now_seconds()).max(0.0)))
            .unwrap_or(Duration::from_secs(3600));
        let renew_at = Instant::now() + lifetime.saturating_sub(TOKEN_RENEWAL_MARGIN);
        lock(&self.tokens).insert(key, (credentials.clone(), renew_at));
        Ok(Some(credentials))
    }
}

impl Supervisor {
    /// Pulls what the task's containers need. `Ok(false)` if the pull was abandoned: the
    /// task is to stop, or the agent to shut down.
    pub(super) async fn pull_images(&mut self) -> Result<bool, TaskError> {
        let mut images: Vec<(String, Option<RegistryAuthenticationData>)> = Vec::new();
        for member in self.members.values() {
            if member.id.is_some() || member.status == Status::Stopped {
                continue;
            }
            if let Some(image) = &member.def.image
                && !images.iter().any(|(i, _)| i == image)
            {
                images.push((image.clone(), member.def.registry_authentication.clone()));
            }
        }
        if images.is_empty() {
            return Ok(true);
        }
        self.pull_started_at.get_or_insert_with(now_seconds);
        let started = self.pull_started_at;
        self.engine
            .state
            .update_task(&self.arn, |r| r.pull_started_at = started);
        let execution = self.engine.execution_credentials(&self.arn);
        for (image, auth) in images {
            let engine = self.engine.clone();
            let wanted = image.clone();
            let execution = execution.clone();
            let pull = async move {
                engine
                    .ensure_image(&wanted, auth.as_ref(), execution.as_ref())
                    .await
            };
            let Some(pulled) = self.while_pulling(pull).await else {
                tracing::info!(task = %self.arn, image, "image pull abandoned");
                return Ok(false);
            };
            if let Err(error) = pulled {
                let reason = error.to_string();
                for member in self.members.values_mut() {
                    if member.def.image.as_deref() == Some(image.as_str()) {
                        member.reason = Some(reason.clone());
                    }
                }
                return Err(error);
            }
        }
        self.pull_stopped_at = Some(now_seconds());
        let (started, stopped) = (self.pull_started_at, self.pull_stopped_at);
        self.engine.state.update_task(&self.arn, |r| {
            r.pull_started_at = started;
            r.pull_stopped_at = stopped;
        });
        Ok(true)
    }

    /// Waits for `pull` while still taking the task's messages: a desired status of STOPPED
    /// (or the agent shutting down) abandons it (`None`); other messages wait until after.
    async fn while_pulling(
        &mut self,
        pull: impl Future<Output = Result<(), TaskError>>,
    ) -> Option<Result<(), TaskError>> {
        tokio::pin!(pull);
        let mut shutdown = self.engine.shutdown.clone();
        loop {
            tokio::select! {
                result = &mut pull => return Some(result),
                message = self.rx.recv() => match message {
                    Some(TaskMsg::Desired(task)) => {
                        self.take_desired(&task);
                        if self.desired_stopped() {
                            return None;
                        }
                    }
                    Some(other) => self.deferred.push(other),
                    None => return None,
                },
                _ = shutdown.changed() => return None,
            }
        }
    }
}

/// The registry host of an image reference (`host:port` before the first `/`), or Docker
/// Hub's.
fn image_registry(image: &str) -> &str {
    match image.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => first,
        _ => "docker.io",
    }
}
