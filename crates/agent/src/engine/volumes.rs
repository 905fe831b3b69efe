//! A task's volumes: resolved once (and remembered in its record, so containers created
//! after a restart mount the same), Docker volumes provisioned before the first container.

use std::collections::BTreeMap;

use berth_model::LABEL_INSTALLATION;
use berth_runtime::RuntimeError;

use super::errors::VolumeError;
use super::supervisor::{Supervisor, unique_suffix};
use crate::translate::{self, ResolvedVolume};

impl Supervisor {
    /// The task's volumes, resolved and (once per supervisor) created where they are Docker
    /// volumes to provision.
    pub(super) async fn prepare_volumes(
        &mut self,
    ) -> Result<BTreeMap<String, translate::ResolvedVolume>, VolumeError> {
        let volumes = self.volumes()?;
        if !self.volumes_ready {
            for volume in volumes.values() {
                if let translate::ResolvedVolume::Docker {
                    autoprovision: true,
                    ..
                } = volume
                    && let Some(spec) = volume.volume_spec()
                {
                    self.engine
                        .runtime
                        .create_volume(&spec)
                        .await
                        .map_err(|source| VolumeError::Create {
                            name: spec.name.clone(),
                            source,
                        })?;
                }
            }
            self.volumes_ready = true;
        }
        Ok(volumes)
    }

    /// The task's volumes, resolved once and remembered.
    fn volumes(&mut self) -> Result<BTreeMap<String, translate::ResolvedVolume>, VolumeError> {
        if let Some(saved) = self.engine.state.task(&self.arn).map(|r| r.volumes)
            && (!saved.is_empty() || self.task.volumes.as_ref().is_none_or(Vec::is_empty))
        {
            return Ok(saved);
        }
        let suffix = unique_suffix(&self.engine.config.installation);
        let mut volumes = translate::resolve_volumes(
            &self.task,
            &suffix,
            self.engine.config.efs_root.as_deref(),
        )?;
        for volume in volumes.values_mut() {
            if let ResolvedVolume::Docker {
                labels,
                task_scoped: true,
                ..
            } = volume
            {
                labels.insert(
                    LABEL_INSTALLATION.to_owned(),
                    self.engine.config.installation.to_string(),
                );
            }
            if let ResolvedVolume::Efs { path } = volume {
                std::fs::create_dir_all(&*path).map_err(|source| VolumeError::EfsDirectory {
                    path: path.clone(),
                    source,
                })?;
            }
        }
        let saved = volumes.clone();
        self.engine
            .state
            .update_task(&self.arn, |r| r.volumes = saved);
        Ok(volumes)
    }

    /// Removes the task's own Docker volumes (the task-scoped ones), as it is cleaned up.
    pub(super) async fn remove_volumes(&self) {
        let volumes = self
            .engine
            .state
            .task(&self.arn)
            .map(|r| r.volumes)
            .unwrap_or_default();
        for volume in volumes.values() {
            if let translate::ResolvedVolume::Docker {
                name,
                task_scoped: true,
                ..
            } = volume
                && let Err(e) = self.engine.runtime.remove_volume(name).await
                && !matches!(e, RuntimeError::NotFound(_))
            {
                tracing::warn!(task = %self.arn, volume = %name, error = %e, "removing volume failed");
            }
        }
    }
}
