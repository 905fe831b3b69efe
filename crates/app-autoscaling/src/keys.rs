//! The key layout of Application Auto Scaling in the store. Per account and region, under
//! `application-autoscaling/{account}/{region}/`:
//! - `target/ecs/{resourceId}`: the scalable target (`service/{cluster}/{service}`).
//! - `target-arn/{id}`: the resource id of the target whose ARN ends in `scalable-target/{id}`
//!   (TagResource and friends name targets by ARN).
//! - `policy/ecs/{resourceId}/{policyName}`: a scaling policy.
//! - `activity/ecs/{resourceId}/{u64::MAX - nanoseconds, 16 hex}{uuid}`: scaling activities, newest first.
//!
//! Scheduled actions live apart, under `application-autoscaling-scheduled/{account}/{region}/
//! ecs/{resourceId}/{name}`, so that the leader's controller finds every account's due ones
//! with one prefix scan.

use berth_model::Scope;

pub const SCHEDULED_ROOT: &str = "application-autoscaling-scheduled/";
pub const ROOT: &str = "application-autoscaling/";
/// What every activity key holds after its scope.
pub const ACTIVITY_SEGMENT: &str = "/activity/ecs/";

fn base(scope: &Scope) -> String {
    format!("{ROOT}{}/{}/", scope.account, scope.region)
}

pub fn targets_prefix(scope: &Scope) -> String {
    format!("{}target/ecs/", base(scope))
}

pub fn target(scope: &Scope, resource_id: &str) -> String {
    format!("{}{resource_id}", targets_prefix(scope))
}

pub fn target_arn(scope: &Scope, id: &str) -> String {
    format!("{}target-arn/{id}", base(scope))
}

pub fn policies_prefix(scope: &Scope) -> String {
    format!("{}policy/ecs/", base(scope))
}

pub fn target_policies(scope: &Scope, resource_id: &str) -> String {
    format!("{}{resource_id}/", policies_prefix(scope))
}

pub fn policy(scope: &Scope, resource_id: &str, name: &str) -> String {
    format!("{}{name}", target_policies(scope, resource_id))
}

pub fn activities_prefix(scope: &Scope) -> String {
    format!("{}{}", base(scope), &ACTIVITY_SEGMENT[1..])
}

pub fn target_activities(scope: &Scope, resource_id: &str) -> String {
    format!("{}{resource_id}/", activities_prefix(scope))
}

/// Newest first: the key sorts by the time from the far future backwards.
pub fn activity(scope: &Scope, resource_id: &str, order: u64, id: &str) -> String {
    format!(
        "{}{:016x}{id}",
        target_activities(scope, resource_id),
        u64::MAX - order
    )
}

pub fn scheduled_prefix(scope: &Scope) -> String {
    format!("{SCHEDULED_ROOT}{}/{}/ecs/", scope.account, scope.region)
}

pub fn target_scheduled(scope: &Scope, resource_id: &str) -> String {
    format!("{}{resource_id}/", scheduled_prefix(scope))
}

pub fn scheduled(scope: &Scope, resource_id: &str, name: &str) -> String {
    format!("{}{name}", target_scheduled(scope, resource_id))
}

/// The scope of a key under [`SCHEDULED_ROOT`].
pub fn scheduled_scope(key: &str) -> Option<Scope> {
    let rest = key.strip_prefix(SCHEDULED_ROOT)?;
    let mut parts = rest.splitn(3, '/');
    let account = parts.next()?.parse().ok()?;
    let region = parts.next()?.parse().ok()?;
    Some(Scope::new(account, region))
}
