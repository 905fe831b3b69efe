//! RegisterScalableTarget, DescribeScalableTargets, DeregisterScalableTarget and the
//! scalable targets' tags.

use std::collections::BTreeMap;

use berth_model::Scope;
use berth_store::{Change, Op, Update, page_token, update};

pub use crate::records::split_resource_id;
use crate::records::{ScalableTarget, SuspendedState};
use crate::{AppAutoScaling, AutoScalingError, ECS_DIMENSION, ECS_NAMESPACE, Result, keys};

/// Every namespace and dimension AWS's model knows: those Berth does not scale are
/// "unsupported" rather than invalid.
const NAMESPACES: &[&str] = &[
    "ecs",
    "elasticmapreduce",
    "ec2",
    "appstream",
    "dynamodb",
    "rds",
    "sagemaker",
    "custom-resource",
    "comprehend",
    "lambda",
    "cassandra",
    "kafka",
    "elasticache",
    "neptune",
    "workspaces",
];

pub const MAX_TAGS: usize = 50;

fn unsupported() -> AutoScalingError {
    AutoScalingError::validation(
        "Unsupported service namespace, resource type or scalable dimension",
    )
}

/// The namespace is one AWS knows (else the model's enum error) and is `ecs`.
pub fn check_namespace(namespace: &str) -> Result<()> {
    if !NAMESPACES.contains(&namespace) {
        return Err(AutoScalingError::validation(format!(
            "1 validation error detected: Value '{namespace}' at 'serviceNamespace' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
            NAMESPACES.join(", ")
        )));
    }
    if namespace != ECS_NAMESPACE {
        return Err(unsupported());
    }
    Ok(())
}

/// A request's (namespace, resource id, dimension) naming an ECS service's desired count.
pub fn check_target_id(namespace: &str, resource_id: &str, dimension: &str) -> Result<()> {
    check_namespace(namespace)?;
    if dimension != ECS_DIMENSION || split_resource_id(resource_id).is_none() {
        return Err(unsupported());
    }
    Ok(())
}

pub(crate) fn not_registered(resource_id: &str) -> AutoScalingError {
    AutoScalingError::ObjectNotFound(format!(
        "No scalable target registered for service namespace: {ECS_NAMESPACE}, resource ID: {resource_id}, scalable dimension: {ECS_DIMENSION}"
    ))
}

/// The role AWS uses for ECS when RegisterScalableTarget names none.
pub fn service_linked_role(scope: &Scope) -> String {
    format!(
        "arn:aws:iam::{}:role/aws-service-role/ecs.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_ECSService",
        scope.account
    )
}

/// What RegisterScalableTarget asks for; `None` leaves an existing target's value.
#[derive(Debug, Clone, Default)]
pub struct RegisterScalableTarget {
    pub resource_id: String,
    pub min_capacity: Option<i64>,
    pub max_capacity: Option<i64>,
    pub role_arn: Option<String>,
    pub suspended_state: Option<SuspendedState>,
    pub tags: BTreeMap<String, String>,
}

/// DescribeScalableTargets' filters and page.
#[derive(Debug, Clone, Default)]
pub struct TargetFilter {
    pub resource_ids: Vec<String>,
    pub max_results: Option<usize>,
    pub next_token: Option<String>,
}

pub(crate) fn page_start(token: Option<&str>) -> Result<Option<String>> {
    token
        .map(|t| {
            page_token::decode(t)
                .ok_or_else(|| AutoScalingError::InvalidNextToken("Invalid token".into()))
        })
        .transpose()
}

impl AppAutoScaling {
    pub fn register_scalable_target(
        &self,
        scope: &Scope,
        req: RegisterScalableTarget,
    ) -> Result<ScalableTarget> {
        let Some((cluster, service)) = split_resource_id(&req.resource_id) else {
            return Err(unsupported());
        };
        for n in [req.min_capacity, req.max_capacity].into_iter().flatten() {
            if n < 0 {
                return Err(AutoScalingError::validation(
                    "Minimum and maximum capacity must be non-negative.".to_string(),
                ));
            }
        }
        if req.tags.len() > MAX_TAGS {
            return Err(AutoScalingError::TooManyTags(format!(
                "A scalable target can have at most {MAX_TAGS} tags."
            )));
        }
        let capacity = self
            .ecs
            .service_capacity(scope, cluster, service)
            .map_err(|e| AutoScalingError::Port(e.0))?;
        if capacity.is_none() {
            return Err(AutoScalingError::validation(format!(
                "ECS service doesn't exist: {}",
                req.resource_id
            )));
        }
        let key = keys::target(scope, &req.resource_id);
        let now = berth_store::now_epoch();
        let stored = update(&*self.store, &key, |current: Option<ScalableTarget>| {
            let target = match current {
                Some(mut t) => {
                    if let Some(n) = req.min_capacity {
                        t.min_capacity = n;
                    }
                    if let Some(n) = req.max_capacity {
                        t.max_capacity = n;
                    }
                    if let Some(r) = &req.role_arn {
                        t.role_arn = r.clone();
                    }
                    if let Some(s) = &req.suspended_state {
                        t.suspended_state = s.clone();
                    }
                    t.tags.extend(req.tags.clone());
                    check_capacities(t.min_capacity, t.max_capacity)?;
                    return Ok(Update::from(Change::Put(t)));
                }
                None => {
                    let (Some(min), Some(max)) = (req.min_capacity, req.max_capacity) else {
                        return Err(AutoScalingError::validation(
                            "MinCapacity and MaxCapacity are required for registering a new scalable target.",
                        ));
                    };
                    check_capacities(min, max)?;
                    let id = new_target_id();
                    ScalableTarget {
                        resource_id: req.resource_id.clone(),
                        min_capacity: min,
                        max_capacity: max,
                        role_arn: req
                            .role_arn
                            .clone()
                            .unwrap_or_else(|| service_linked_role(scope)),
                        creation_time: now,
                        suspended_state: req.suspended_state.clone().unwrap_or_default(),
                        arn: format!(
                            "arn:aws:application-autoscaling:{}:{}:scalable-target/{id}",
                            scope.region, scope.account
                        ),
                        tags: req.tags.clone(),
                        last_scale_out: None,
                        last_scale_in: None,
                    }
                }
            };
            let index = Op::put(
                keys::target_arn(scope, arn_id(&target.arn)),
                target.resource_id.clone().into_bytes(),
            );
            Ok(Update::from(Change::Put(target)).also(index))
        })?
        .expect("a registered target is stored");
        // Capacity outside the new range is brought into it, as AWS does.
        self.clamp_desired(scope, &stored)?;
        Ok(stored)
    }

    pub fn scalable_target(&self, scope: &Scope, resource_id: &str) -> Result<ScalableTarget> {
        match self.store.get(&keys::target(scope, resource_id))? {
            Some(kv) => Ok(berth_store::decode(&kv)?),
            None => Err(not_registered(resource_id)),
        }
    }

    /// A page of targets (by resource id) and the next page's token.
    pub fn describe_scalable_targets(
        &self,
        scope: &Scope,
        filter: &TargetFilter,
    ) -> Result<(Vec<ScalableTarget>, Option<String>)> {
        let limit = filter.max_results.unwrap_or(50);
        let mut after = page_start(filter.next_token.as_deref())?;
        let prefix = keys::targets_prefix(scope);
        let mut found = Vec::new();
        loop {
            let chunk = self.store.range(&prefix, after.as_deref(), 256)?;
            for kv in &chunk {
                let target: ScalableTarget = berth_store::decode(kv)?;
                if !filter.resource_ids.is_empty()
                    && !filter.resource_ids.contains(&target.resource_id)
                {
                    continue;
                }
                if found.len() == limit {
                    let next = page_token::encode(&found_key(&prefix, &found));
                    return Ok((found, Some(next)));
                }
                found.push(target);
            }
            match chunk.last() {
                Some(kv) if chunk.len() == 256 => after = Some(kv.key.clone()),
                _ => break,
            }
        }
        Ok((found, None))
    }

    /// Deletes the target, its policies (and their alarms) and its scheduled actions.
    pub fn deregister_scalable_target(&self, scope: &Scope, resource_id: &str) -> Result<()> {
        let key = keys::target(scope, resource_id);
        // Policies and scheduled actions rewrite the target record as they are put: a
        // compare on it makes this read them again when one came in meanwhile.
        let policies = loop {
            let Some(kv) = self.store.get(&key)? else {
                return Err(not_registered(resource_id));
            };
            let target: ScalableTarget = berth_store::decode(&kv)?;
            let policies = self.target_policies(scope, resource_id)?;
            let mut ops = vec![
                Op::delete(key.clone()),
                Op::delete(keys::target_arn(scope, arn_id(&target.arn))),
            ];
            for p in &policies {
                ops.push(Op::delete(keys::policy(scope, resource_id, &p.policy_name)));
            }
            for kv in self
                .store
                .range(&keys::target_scheduled(scope, resource_id), None, 0)?
            {
                ops.push(Op::delete(kv.key));
            }
            let compare = [berth_store::Compare::ModRevision(
                key.clone(),
                kv.mod_revision,
            )];
            if self.store.txn(&compare, &ops)?.is_committed() {
                break policies;
            }
        };
        let alarms: Vec<String> = policies
            .iter()
            .flat_map(|p| p.alarms.iter().map(|a| a.alarm_name.clone()))
            .collect();
        if !alarms.is_empty()
            && let Err(e) = self.alarms.delete_alarms(scope, &alarms)
        {
            tracing::warn!(error = %e, ?alarms, "deregistered target's alarms not deleted");
        }
        Ok(())
    }

    fn target_by_arn(&self, scope: &Scope, arn: &str) -> Result<ScalableTarget> {
        let missing = || AutoScalingError::ResourceNotFound {
            message: format!("Scalable target with ARN {arn} not found."),
            resource: arn.to_string(),
        };
        let id = arn
            .strip_prefix(&format!(
                "arn:aws:application-autoscaling:{}:{}:scalable-target/",
                scope.region, scope.account
            ))
            .ok_or_else(missing)?;
        let Some(kv) = self.store.get(&keys::target_arn(scope, id))? else {
            return Err(missing());
        };
        let resource_id = String::from_utf8_lossy(&kv.value).to_string();
        self.scalable_target(scope, &resource_id)
            .map_err(|_| missing())
    }

    pub fn list_tags_for_resource(
        &self,
        scope: &Scope,
        arn: &str,
    ) -> Result<BTreeMap<String, String>> {
        Ok(self.target_by_arn(scope, arn)?.tags)
    }

    pub fn tag_resource(
        &self,
        scope: &Scope,
        arn: &str,
        tags: BTreeMap<String, String>,
    ) -> Result<()> {
        self.change_tags(scope, arn, |t| {
            t.extend(tags.clone());
            if t.len() > MAX_TAGS {
                return Err(AutoScalingError::TooManyTags(format!(
                    "A scalable target can have at most {MAX_TAGS} tags."
                )));
            }
            Ok(())
        })
    }

    pub fn untag_resource(&self, scope: &Scope, arn: &str, keys: &[String]) -> Result<()> {
        self.change_tags(scope, arn, |t| {
            t.retain(|k, _| !keys.contains(k));
            Ok(())
        })
    }

    fn change_tags(
        &self,
        scope: &Scope,
        arn: &str,
        change: impl Fn(&mut BTreeMap<String, String>) -> Result<()>,
    ) -> Result<()> {
        let target = self.target_by_arn(scope, arn)?;
        update(
            &*self.store,
            &keys::target(scope, &target.resource_id),
            |current: Option<ScalableTarget>| {
                let Some(mut t) = current else {
                    return Err(not_registered(&target.resource_id));
                };
                change(&mut t.tags)?;
                Ok(Change::Put(t))
            },
        )?;
        Ok(())
    }
}

fn found_key(prefix: &str, found: &[ScalableTarget]) -> String {
    format!(
        "{prefix}{}",
        found.last().map(|t| t.resource_id.as_str()).unwrap_or("")
    )
}

fn check_capacities(min: i64, max: i64) -> Result<()> {
    if min > max {
        return Err(AutoScalingError::validation(
            "Minimum capacity cannot be greater than maximum capacity",
        ));
    }
    Ok(())
}

/// The last part of a scalable target's ARN.
pub(crate) fn arn_id(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// 36 hex digits, as AWS's scalable target ids.
fn new_target_id() -> String {
    let a = uuid::Uuid::new_v4().simple().to_string();
    let b = uuid::Uuid::new_v4().simple().to_string();
    format!("{a}{}", &b[..4])
}
