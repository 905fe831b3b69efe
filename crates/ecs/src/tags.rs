//! Resource tags on every taggable ECS resource (TagResource, UntagResource,
//! ListTagsForResource), dispatched on the ARN's resource type.

use berth_model::Scope;
use berth_model::ecs::{EcsArn, EcsResource};

use berth_store::Change;

use crate::keys::{cluster_key, instance_key, service_key, task_definition_key, task_key};
use crate::{Ecs, EcsError, EcsTag, Result};

/// A taggable resource named by an ARN of this scope.
enum Resource {
    Cluster(String),
    Service(String, String),
    TaskDefinition(String),
    Task(String, String),
    ContainerInstance(String, String),
}

fn parse_arn(scope: &Scope, arn: &str) -> Result<Resource> {
    let invalid = || {
        EcsError::InvalidParameter(format!(
            "The ARN '{arn}' is not a valid ARN of a taggable resource in this account and region."
        ))
    };
    Ok(match EcsArn::parse(scope, arn).ok_or_else(invalid)? {
        EcsResource::Cluster(name) => Resource::Cluster(name.to_string()),
        EcsResource::Service {
            cluster: Some(c),
            name,
        } => Resource::Service(c.to_string(), name.to_string()),
        EcsResource::TaskDefinition {
            family,
            revision: Some(revision),
        } => Resource::TaskDefinition(format!("{family}:{revision}")),
        EcsResource::Task {
            cluster: Some(c),
            id,
        } => Resource::Task(c.to_string(), id.to_string()),
        EcsResource::ContainerInstance {
            cluster: Some(c),
            id,
        } => Resource::ContainerInstance(c.to_string(), id.to_string()),
        _ => return Err(invalid()),
    })
}

impl Ecs {
    /// Read-modify-write the tags of the record at `key` whose tags `get`/`set` reach.
    fn edit_tags<T: serde::Serialize + serde::de::DeserializeOwned + Clone>(
        &self,
        key: &str,
        missing: impl Fn() -> EcsError,
        tags_of: impl Fn(&mut T) -> Vec<EcsTag>,
        set: impl Fn(&mut T, Vec<EcsTag>),
        change: &dyn Fn(&mut Vec<EcsTag>) -> Result<()>,
    ) -> Result<Vec<EcsTag>> {
        let mut written = Vec::new();
        berth_store::update(&*self.store, key, |record: Option<T>| {
            let mut record = record.ok_or_else(&missing)?;
            let mut tags = tags_of(&mut record);
            change(&mut tags)?;
            crate::clusters::check_tags(&tags)?;
            set(&mut record, tags.clone());
            written = tags;
            Ok::<_, EcsError>(Change::Put(record))
        })?;
        Ok(written)
    }

    fn with_tags(
        &self,
        scope: &Scope,
        arn: &str,
        change: &dyn Fn(&mut Vec<EcsTag>) -> Result<()>,
    ) -> Result<Vec<EcsTag>> {
        let not_found =
            || EcsError::ResourceNotFound("The specified resource is not found.".into());
        match parse_arn(scope, arn)? {
            Resource::Cluster(name) => {
                self.active_cluster(scope, Some(&name))?;
                self.edit_tags::<crate::Cluster>(
                    &cluster_key(scope, &name),
                    || EcsError::ClusterNotFound,
                    |c| c.tags.clone(),
                    |c, t| c.tags = t,
                    change,
                )
            }
            Resource::Service(cluster, name) => self.edit_tags::<crate::Service>(
                &service_key(scope, &cluster, &name),
                || EcsError::ServiceNotFound,
                |s| s.tags.clone(),
                |s, t| s.tags = t,
                change,
            ),
            Resource::Task(cluster, id) => self.edit_tags::<crate::Task>(
                &task_key(scope, &cluster, &id),
                not_found,
                |t| t.tags.clone(),
                |t, tags| t.tags = tags,
                change,
            ),
            Resource::ContainerInstance(cluster, id) => self.edit_tags::<crate::ContainerInstance>(
                &instance_key(scope, &cluster, &id),
                not_found,
                |i| i.tags.clone(),
                |i, t| i.tags = t,
                change,
            ),
            Resource::TaskDefinition(name) => {
                let (family, revision) = name
                    .split_once(':')
                    .and_then(|(f, r)| r.parse::<i32>().ok().map(|r| (f.to_string(), r)))
                    .ok_or_else(not_found)?;
                self.edit_tags::<crate::StoredTaskDefinition>(
                    &task_definition_key(scope, &family, revision),
                    not_found,
                    |t| t.tags.clone(),
                    |t, tags| t.tags = tags,
                    change,
                )
            }
        }
    }

    pub fn tag_resource(&self, scope: &Scope, arn: &str, tags: &[EcsTag]) -> Result<()> {
        crate::clusters::check_tags(tags)?;
        self.with_tags(scope, arn, &|existing| {
            for t in tags {
                match existing.iter_mut().find(|e| e.key == t.key) {
                    Some(e) => e.value = t.value.clone(),
                    None => existing.push(t.clone()),
                }
            }
            Ok(())
        })
        .map(|_| ())
    }

    pub fn untag_resource(&self, scope: &Scope, arn: &str, keys: &[String]) -> Result<()> {
        self.with_tags(scope, arn, &|existing| {
            existing.retain(|t| !keys.contains(&t.key));
            Ok(())
        })
        .map(|_| ())
    }

    /// The tags of the resource `arn` names: a read (ListTagsForResource, and authorization's
    /// `aws:ResourceTag/…` on every request that names one resource).
    pub fn resource_tags(&self, scope: &Scope, arn: &str) -> Result<Vec<EcsTag>> {
        fn read<T: serde::de::DeserializeOwned>(
            ecs: &Ecs,
            key: &str,
            missing: EcsError,
            tags_of: impl Fn(T) -> Vec<EcsTag>,
        ) -> Result<Vec<EcsTag>> {
            let kv = ecs.store.get(key)?.ok_or(missing)?;
            let record: T = serde_json::from_slice(&kv.value)
                .map_err(|_| EcsError::Corrupt(key.to_string()))?;
            Ok(tags_of(record))
        }
        let not_found =
            || EcsError::ResourceNotFound("The specified resource is not found.".into());
        match parse_arn(scope, arn)? {
            Resource::Cluster(name) => {
                let cluster = self.active_cluster(scope, Some(&name))?;
                Ok(cluster.tags)
            }
            Resource::Service(cluster, name) => read(
                self,
                &service_key(scope, &cluster, &name),
                EcsError::ServiceNotFound,
                |s: crate::Service| s.tags,
            ),
            Resource::Task(cluster, id) => read(
                self,
                &task_key(scope, &cluster, &id),
                not_found(),
                |t: crate::Task| t.tags,
            ),
            Resource::ContainerInstance(cluster, id) => read(
                self,
                &instance_key(scope, &cluster, &id),
                not_found(),
                |i: crate::ContainerInstance| i.tags,
            ),
            Resource::TaskDefinition(name) => {
                let (family, revision) = name
                    .split_once(':')
                    .and_then(|(f, r)| r.parse::<i32>().ok().map(|r| (f.to_string(), r)))
                    .ok_or_else(not_found)?;
                read(
                    self,
                    &task_definition_key(scope, &family, revision),
                    not_found(),
                    |t: crate::StoredTaskDefinition| t.tags,
                )
            }
        }
    }
}
