//! Executing a policy: what CloudWatch calls when one of a policy's alarms is in ALARM
//! (once per evaluation while it stays there). The planner decides; this applier records the
//! activity and the cooldown under a compare on the target record, then sets the service's
//! desired count under a compare on the count it planned from, and records the outcome.

use berth_model::Scope;
use berth_store::{Compare, Op};

use crate::activities::{desired_count_activity, finish, not_scaled_activity, put_activity};
use crate::planner::{Direction, Plan, PlanInput, PolicyConfig, plan};
use crate::policies::{parse_policy_arn, per_target_unit};
use crate::records::{ScalableTarget, ScalingActivity};
use crate::{AppAutoScaling, AutoScalingError, Result, keys};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlarmState {
    Alarm,
    Ok,
    InsufficientData,
}

/// The alarm evaluation that invokes a policy.
#[derive(Debug, Clone)]
pub struct AlarmTrigger {
    pub alarm_name: String,
    pub alarm_arn: String,
    pub state: AlarmState,
    pub threshold: f64,
    /// The datapoint that breached (the last one evaluated).
    pub value: Option<f64>,
    /// When it was evaluated, seconds since the epoch.
    pub at: f64,
}

/// Tries when the target record or the service's count changes under the applier.
const ATTEMPTS: usize = 5;

impl AppAutoScaling {
    /// Runs the policy `policy_arn` for `trigger`: `Ok(Some(activity))` when it scaled (or
    /// recorded why it could not), `Ok(None)` when there was nothing to do (the alarm is not
    /// in ALARM, the policy or its target is gone, a cooldown or suspension holds it).
    pub fn alarm_fired(
        &self,
        scope: &Scope,
        policy_arn: &str,
        trigger: &AlarmTrigger,
    ) -> Result<Option<ScalingActivity>> {
        if trigger.state != AlarmState::Alarm {
            return Ok(None);
        }
        let Some((resource_id, name)) = parse_policy_arn(scope, policy_arn) else {
            return Ok(None);
        };
        let policy = match self.scaling_policy(scope, resource_id, name) {
            Ok(p) if p.policy_arn == policy_arn => p,
            Ok(_) | Err(AutoScalingError::ObjectNotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let config = match (&policy.step, &policy.target_tracking) {
            (Some(s), _) => PolicyConfig::Step(s),
            (None, Some(t)) => PolicyConfig::Tracking(t),
            (None, None) => return Ok(None),
        };
        let cause = format!(
            "monitor alarm {} in state ALARM triggered policy {}",
            trigger.alarm_name, policy.policy_name
        );
        let target_key = keys::target(scope, resource_id);
        for _ in 0..ATTEMPTS {
            let Some(kv) = self.store.get(&target_key)? else {
                return Ok(None);
            };
            let mut target: ScalableTarget = berth_store::decode(&kv)?;
            let (cluster, service) = target.service();
            let (cluster, service) = (cluster.to_string(), service.to_string());
            let (cluster, service) = (cluster.as_str(), service.as_str());
            let Some(capacity) = self
                .ecs
                .service_capacity(scope, cluster, service)
                .map_err(|e| AutoScalingError::Port(e.0))?
            else {
                return Ok(None);
            };
            let input = PlanInput {
                min: target.min_capacity,
                max: target.max_capacity,
                capacity,
                suspended: target.suspended_state.clone(),
                now: trigger.at,
                last_scale_out: target.last_scale_out,
                last_scale_in: target.last_scale_in,
            };
            // Counts over high-resolution periods, per minute as the target reads them.
            let value = trigger.value.map(|v| per_target_unit(&policy, v));
            let (from, to, direction) = match plan(&input, config, trigger.threshold, value) {
                Plan::Scale {
                    from,
                    to,
                    direction,
                } => (from, to, direction),
                Plan::NotScaled(why) => {
                    tracing::debug!(?why, policy = %policy.policy_name, "not scaled");
                    let Some(reason) = why.reason() else {
                        return Ok(None);
                    };
                    let a = not_scaled_activity(resource_id, cause, reason, trigger.at);
                    self.write_activity(scope, &a)?;
                    return Ok(Some(a));
                }
            };
            let now = berth_store::now_epoch();
            match direction {
                Direction::Out => target.last_scale_out = Some((now, from)),
                Direction::In => target.last_scale_in = Some(now),
            }
            let mut activity = desired_count_activity(resource_id, to, cause.clone(), now);
            let written = self.store.txn(
                &[Compare::ModRevision(target_key.clone(), kv.mod_revision)],
                &[
                    Op::put(target_key.clone(), berth_store::encode(&target)),
                    put_activity(scope, &activity),
                ],
            )?;
            if !written.is_committed() {
                continue;
            }
            let set = self
                .ecs
                .set_desired_count(scope, cluster, service, from, to);
            let retry = matches!(set, Ok(false));
            finish(
                &mut activity,
                match set {
                    Ok(true) => Ok(to),
                    Ok(false) => Err(format!(
                        "Failed to set desired count to {to}. The service's desired count changed from {from} meanwhile."
                    )),
                    Err(e) => Err(format!("Failed to set desired count to {to}. {e}")),
                },
            );
            self.write_activity(scope, &activity)?;
            if !retry {
                return Ok(Some(activity));
            }
        }
        Err(AutoScalingError::Port(
            "the service's desired count kept changing".into(),
        ))
    }

    /// Brings the service's desired count into the target's range (after the range
    /// changed), recording the activity; nothing when it is inside.
    pub(crate) fn clamp_desired(
        &self,
        scope: &Scope,
        target: &ScalableTarget,
    ) -> Result<Option<ScalingActivity>> {
        let (cluster, service) = target.service();
        for _ in 0..ATTEMPTS {
            let Some(capacity) = self
                .ecs
                .service_capacity(scope, cluster, service)
                .map_err(|e| AutoScalingError::Port(e.0))?
            else {
                return Ok(None);
            };
            let from = capacity.desired;
            let to = from.clamp(
                target.min_capacity,
                target.max_capacity.max(target.min_capacity),
            );
            if to == from {
                return Ok(None);
            }
            // The bound that moved the count is the cause.
            let cause = if to > from {
                format!("minimum capacity was set to {}", target.min_capacity)
            } else {
                format!("maximum capacity was set to {to}")
            };
            let mut activity =
                desired_count_activity(&target.resource_id, to, cause, berth_store::now_epoch());
            self.write_activity(scope, &activity)?;
            let set = self
                .ecs
                .set_desired_count(scope, cluster, service, from, to);
            let retry = matches!(set, Ok(false));
            finish(
                &mut activity,
                match set {
                    Ok(true) => Ok(to),
                    Ok(false) => Err(format!(
                        "Failed to set desired count to {to}. The service's desired count changed from {from} meanwhile."
                    )),
                    Err(e) => Err(format!("Failed to set desired count to {to}. {e}")),
                },
            );
            self.write_activity(scope, &activity)?;
            if !retry {
                return Ok(Some(activity));
            }
        }
        Ok(None)
    }
}
