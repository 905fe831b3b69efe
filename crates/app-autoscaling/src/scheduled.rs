//! PutScheduledAction, DescribeScheduledActions, DeleteScheduledAction, and running the due
//! ones (`run_scheduled_actions`, the leader's controller): a run sets the target's min and
//! max (one transaction with its activity and the action's next run) and then brings the
//! service's desired count into the new range.

use berth_model::Scope;
use berth_store::{Compare, Op, Update, page_token, update};

use crate::activities::{new_activity, put_activity};
use crate::records::{ScalableTarget, ScalableTargetAction, ScheduledAction, StatusCode};
use crate::schedule::{self, Schedule};
use crate::targets::{not_registered, page_start};
use crate::{AppAutoScaling, AutoScalingError, ECS_DIMENSION, ECS_NAMESPACE, Result, keys};

/// What PutScheduledAction asks for; `None` keeps an existing action's value.
#[derive(Debug, Clone, Default)]
pub struct PutScheduledAction {
    pub name: String,
    pub resource_id: String,
    pub schedule: Option<String>,
    pub timezone: Option<String>,
    pub start_time: Option<f64>,
    pub end_time: Option<f64>,
    pub action: Option<ScalableTargetAction>,
}

fn not_found(resource_id: &str, name: &str) -> AutoScalingError {
    AutoScalingError::ObjectNotFound(format!(
        "No scheduled action found for service namespace: {ECS_NAMESPACE}, resource ID: {resource_id}, scalable dimension: {ECS_DIMENSION}, scheduled action name: {name}"
    ))
}

/// When the action runs next strictly after `after`.
fn next_run(a: &ScheduledAction, after: f64) -> Result<Option<f64>> {
    let parsed = schedule::parse(&a.schedule).map_err(AutoScalingError::Validation)?;
    let zone = schedule::zone(a.timezone.as_deref()).map_err(AutoScalingError::Validation)?;
    Ok(parsed
        .next_run(
            after.floor() as i64,
            &zone,
            a.creation_time.floor() as i64,
            a.start_time.map(|t| t.ceil() as i64),
            a.end_time.map(|t| t.floor() as i64),
        )
        .map(|t| t as f64))
}

/// "min capacity to 3 and max capacity to 10", as the action sets it.
fn capacities_text(action: &ScalableTargetAction) -> String {
    match (action.min_capacity, action.max_capacity) {
        (Some(min), Some(max)) => format!("min capacity to {min} and max capacity to {max}"),
        (Some(min), None) => format!("min capacity to {min}"),
        (None, Some(max)) => format!("max capacity to {max}"),
        (None, None) => "no capacity".to_string(),
    }
}

impl AppAutoScaling {
    pub fn put_scheduled_action(
        &self,
        scope: &Scope,
        req: PutScheduledAction,
    ) -> Result<ScheduledAction> {
        self.scalable_target(scope, &req.resource_id)?;
        if let Some(a) = &req.action
            && let (Some(min), Some(max)) = (a.min_capacity, a.max_capacity)
            && min > max
        {
            return Err(AutoScalingError::validation(
                "Minimum capacity cannot be greater than maximum capacity",
            ));
        }
        if let Some(s) = &req.schedule {
            schedule::parse(s).map_err(AutoScalingError::Validation)?;
        }
        schedule::zone(req.timezone.as_deref()).map_err(AutoScalingError::Validation)?;
        let key = keys::scheduled(scope, &req.resource_id, &req.name);
        let now = berth_store::now_epoch();
        let stored = update(&*self.store, &key, |current: Option<ScheduledAction>| {
            let mut a = match current {
                Some(a) => a,
                None => {
                    let Some(schedule) = req.schedule.clone() else {
                        return Err(AutoScalingError::validation(
                            "Schedule is required for a new scheduled action",
                        ));
                    };
                    ScheduledAction {
                        name: req.name.clone(),
                        arn: format!(
                            "arn:aws:autoscaling:{}:{}:scheduledAction:{}:resource/{ECS_NAMESPACE}/{}:scheduledActionName/{}",
                            scope.region,
                            scope.account,
                            uuid::Uuid::new_v4(),
                            req.resource_id,
                            req.name
                        ),
                        resource_id: req.resource_id.clone(),
                        schedule,
                        timezone: None,
                        start_time: None,
                        end_time: None,
                        action: ScalableTargetAction::default(),
                        creation_time: now,
                        next_run: None,
                    }
                }
            };
            if let Some(s) = &req.schedule {
                a.schedule = s.clone();
            }
            if req.timezone.is_some() {
                a.timezone = req.timezone.clone();
            }
            if req.start_time.is_some() {
                a.start_time = req.start_time;
            }
            if req.end_time.is_some() {
                a.end_time = req.end_time;
            }
            if let Some(action) = &req.action {
                a.action = action.clone();
            }
            // Due from now on: an `at` a few seconds ahead runs then, one just past at once.
            let after = match schedule::parse(&a.schedule) {
                Ok(Schedule::At(_)) => now.min(now - 3600.0),
                _ => now,
            };
            a.next_run = next_run(&a, after)?;
            // Written while the target is registered (rewritten unchanged, so that a
            // concurrent DeregisterScalableTarget reads again and takes this along).
            let target_key = keys::target(scope, &req.resource_id);
            let Some(target) = self.store.get(&target_key)? else {
                return Err(not_registered(&req.resource_id));
            };
            Ok(Update::from(berth_store::Change::Put(a))
                .provided(Compare::ModRevision(
                    target_key.clone(),
                    target.mod_revision,
                ))
                .also(Op::put(target_key, target.value)))
        })?;
        Ok(stored.expect("a put scheduled action is stored"))
    }

    pub fn describe_scheduled_actions(
        &self,
        scope: &Scope,
        resource_id: Option<&str>,
        names: &[String],
        max_results: Option<usize>,
        next_token: Option<&str>,
    ) -> Result<(Vec<ScheduledAction>, Option<String>)> {
        let limit = max_results.unwrap_or(50);
        let prefix = match resource_id {
            Some(r) => keys::target_scheduled(scope, r),
            None => keys::scheduled_prefix(scope),
        };
        let after = page_start(next_token)?;
        let mut found: Vec<ScheduledAction> = Vec::new();
        for kv in self.store.range(&prefix, after.as_deref(), 0)? {
            let a: ScheduledAction = berth_store::decode(&kv)?;
            if !names.is_empty() && !names.contains(&a.name) {
                continue;
            }
            if found.len() == limit {
                let last = found.last().expect("limit is at least 1");
                let key = keys::scheduled(scope, &last.resource_id, &last.name);
                return Ok((found, Some(page_token::encode(&key))));
            }
            found.push(a);
        }
        Ok((found, None))
    }

    pub fn delete_scheduled_action(
        &self,
        scope: &Scope,
        resource_id: &str,
        name: &str,
    ) -> Result<()> {
        update(
            &*self.store,
            &keys::scheduled(scope, resource_id, name),
            |current: Option<ScheduledAction>| match current {
                Some(_) => Ok(berth_store::Change::<ScheduledAction>::Delete),
                None => Err(not_found(resource_id, name)),
            },
        )?;
        Ok(())
    }

    /// Runs every account's scheduled actions due at `now` (the leader's controller, through
    /// its fenced store); answers how many ran.
    pub fn run_scheduled_actions(&self, now: f64) -> Result<usize> {
        let mut due: Vec<(String, ScheduledAction)> = Vec::new();
        berth_store::scan(&*self.store, keys::SCHEDULED_ROOT, None, |kv| {
            let a: ScheduledAction = berth_store::decode(kv)?;
            if a.next_run.is_some_and(|t| t <= now) {
                due.push((kv.key.clone(), a));
            }
            Ok::<_, AutoScalingError>(true)
        })?;
        let mut ran = 0;
        for (key, a) in due {
            let Some(scope) = keys::scheduled_scope(&key) else {
                continue;
            };
            match self.run_scheduled_action(&scope, &key, now) {
                Ok(true) => ran += 1,
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, action = %a.name, "scheduled action failed"),
            }
        }
        Ok(ran)
    }

    fn run_scheduled_action(&self, scope: &Scope, key: &str, now: f64) -> Result<bool> {
        let mut applied: Option<ScalableTarget> = None;
        update(&*self.store, key, |current: Option<ScheduledAction>| {
            applied = None;
            let Some(mut a) = current else {
                return Ok(Update::from(berth_store::Change::Keep));
            };
            let Some(due) = a.next_run.filter(|t| *t <= now) else {
                return Ok(Update::from(berth_store::Change::Keep));
            };
            a.next_run = next_run(&a, due.max(now))?;
            let target_key = keys::target(scope, &a.resource_id);
            let Some(kv) = self.store.get(&target_key)? else {
                return Err(not_registered(&a.resource_id));
            };
            let mut target: ScalableTarget = berth_store::decode(&kv)?;
            let mut update = Update::from(berth_store::Change::Put(a.clone()));
            if target.suspended_state.scheduled_scaling_suspended {
                return Ok(update);
            }
            if let Some(min) = a.action.min_capacity {
                target.min_capacity = min;
            }
            if let Some(max) = a.action.max_capacity {
                target.max_capacity = max;
            }
            // A new min above the max (or max below the min) moves the other along.
            if a.action.min_capacity.is_some() && target.max_capacity < target.min_capacity {
                target.max_capacity = target.min_capacity;
            }
            if a.action.max_capacity.is_some() && target.min_capacity > target.max_capacity {
                target.min_capacity = target.max_capacity;
            }
            let text = capacities_text(&a.action);
            let mut activity = new_activity(
                &a.resource_id,
                format!("Setting {text}"),
                format!("scheduled action name {} was triggered", a.name),
                now,
            );
            activity.end_time = Some(now);
            activity.status_code = StatusCode::Successful;
            activity.status_message = Some(format!("Successfully set {text}"));
            update = update
                .provided(Compare::ModRevision(target_key.clone(), kv.mod_revision))
                .also(Op::put(target_key, berth_store::encode(&target)))
                .also(put_activity(scope, &activity));
            applied = Some(target);
            Ok(update)
        })?;
        let Some(target) = applied else {
            return Ok(false);
        };
        self.clamp_desired(scope, &target)?;
        Ok(true)
    }
}
