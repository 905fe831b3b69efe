//! ECS's key layout in the store, in one place. Per account and region, under
//! `ecs/{account}/{region}/`:
//!
//! - `cluster/{name}`; `account-setting/{name}`
//! - `instance/{cluster}/{id}` (registered), `instance-inactive/{cluster}/{id}` (deregistered)
//! - `instance-task/{cluster}/{instance}/{task}`: an instance's live-task index
//! - `task/{cluster}/{id}`; the live markers `task-pending/{cluster}/{id}` and
//!   `task-running/{cluster}/{id}` (value-less: their count is the cluster's count);
//!   `client-token/{cluster}/{token}` (RunTask's idempotency)
//! - `service/{cluster}/{name}`, `service-active/{cluster}/{name}` (marker)
//! - `taskdef/{family}/{revision:010}`, `taskdef-family/{family}` (the last revision)
//! - `capacity-provider/{name}` (Auto Scaling group providers; FARGATE and FARGATE_SPOT
//!   are built in, not stored)
//!
//! and, for the whole installation (subnets map to host networks), `net/subnet/{id}`,
//! `net/cidr/{network}`, `net/ip/{subnet}/{ip}`. Agents' latest telemetry is apart, under
//! `ecs-telemetry/{account}/{region}/{cluster}/{instance}` (`utilization.rs`), so the
//! leader reads every instance's with one range.

use std::net::Ipv4Addr;

use berth_model::Scope;
use berth_model::ecs::TaskStatus;

/// Every ECS record of every account and region is under this prefix.
pub(crate) const ROOT: &str = "ecs/";

/// Every instance's telemetry record is under this prefix.
pub(crate) const TELEMETRY_PREFIX: &str = "ecs-telemetry/";

pub(crate) fn telemetry_key(scope: &Scope, cluster: &str, instance_id: &str) -> String {
    format!(
        "{TELEMETRY_PREFIX}{}/{}/{cluster}/{instance_id}",
        scope.account, scope.region
    )
}

/// `ecs/{account}/{region}/`.
pub(crate) fn base(scope: &Scope) -> String {
    format!("{ROOT}{}/{}/", scope.account, scope.region)
}

/// An `ecs/{account}/{region}/REST` key split into its scope and REST (the record kind
/// first: `task/…`, `instance/…`, `client-token/…`), so scans over `ecs/` recognise records
/// by their place, never by a substring a cluster or family name could also contain.
pub(crate) fn split_key(key: &str) -> Option<(Scope, &str)> {
    let rest = key.strip_prefix(ROOT)?;
    let (account, rest) = rest.split_once('/')?;
    let (region, rest) = rest.split_once('/')?;
    Some((
        Scope::new(account.parse().ok()?, region.parse().ok()?),
        rest,
    ))
}

/// Splits `ecs/{account}/{region}/{kind}/{cluster}/{rest}` into its parts.
pub(crate) fn split_cluster_key(key: &str) -> Option<(Scope, &str, &str, &str)> {
    let (scope, rest) = split_key(key)?;
    let (kind, rest) = rest.split_once('/')?;
    let (cluster, rest) = rest.split_once('/')?;
    Some((scope, kind, cluster, rest))
}

pub(crate) fn cluster_key(scope: &Scope, name: &str) -> String {
    format!("{}cluster/{name}", base(scope))
}

pub(crate) fn clusters_prefix(scope: &Scope) -> String {
    format!("{}cluster/", base(scope))
}

pub(crate) fn account_setting_key(scope: &Scope, name: &str) -> String {
    format!("{}account-setting/{name}", base(scope))
}

pub(crate) fn instance_key(scope: &Scope, cluster: &str, id: &str) -> String {
    format!("{}{id}", instances_prefix(scope, cluster))
}

pub(crate) fn instances_prefix(scope: &Scope, cluster: &str) -> String {
    format!("{}instance/{cluster}/", base(scope))
}

pub(crate) fn inactive_instance_key(scope: &Scope, cluster: &str, id: &str) -> String {
    format!("{}instance-inactive/{cluster}/{id}", base(scope))
}

/// The key prefix of an instance's live-task index: one entry per task placed there and
/// not yet STOPPED (see `tasks::index_entry`).
pub(crate) fn instance_tasks_prefix(scope: &Scope, cluster: &str, instance_id: &str) -> String {
    format!("{}instance-task/{cluster}/{instance_id}/", base(scope))
}

pub(crate) fn instance_task_key(
    scope: &Scope,
    cluster: &str,
    instance_id: &str,
    task_id: &str,
) -> String {
    format!(
        "{}{task_id}",
        instance_tasks_prefix(scope, cluster, instance_id)
    )
}

pub(crate) fn task_key(scope: &Scope, cluster: &str, id: &str) -> String {
    format!("{}{id}", tasks_prefix(scope, cluster))
}

pub(crate) fn tasks_prefix(scope: &Scope, cluster: &str) -> String {
    format!("{}task/{cluster}/", base(scope))
}

/// Every cluster's tasks of the scope.
pub(crate) fn all_tasks_prefix(scope: &Scope) -> String {
    format!("{}task/", base(scope))
}

/// A live task's marker: `task-running/…` while RUNNING, `task-pending/…` before and while
/// stopping.
pub(crate) fn marker_key(scope: &Scope, status: TaskStatus, cluster: &str, id: &str) -> String {
    let kind = if status == TaskStatus::Running {
        "task-running"
    } else {
        "task-pending"
    };
    format!("{}{kind}/{cluster}/{id}", base(scope))
}

/// RunTask's idempotency token: the ids of the tasks the request started.
pub(crate) fn client_token_key(scope: &Scope, cluster: &str, token: &str) -> String {
    format!("{}client-token/{cluster}/{token}", base(scope))
}

pub(crate) fn service_key(scope: &Scope, cluster: &str, name: &str) -> String {
    format!("{}{name}", services_prefix(scope, cluster))
}

pub(crate) fn services_prefix(scope: &Scope, cluster: &str) -> String {
    format!("{}service/{cluster}/", base(scope))
}

pub(crate) fn service_active_key(scope: &Scope, cluster: &str, name: &str) -> String {
    format!("{}service-active/{cluster}/{name}", base(scope))
}

pub(crate) fn capacity_provider_key(scope: &Scope, name: &str) -> String {
    format!("{}capacity-provider/{name}", base(scope))
}

pub(crate) fn capacity_providers_prefix(scope: &Scope) -> String {
    format!("{}capacity-provider/", base(scope))
}

pub(crate) fn task_definition_key(scope: &Scope, family: &str, revision: i32) -> String {
    format!("{}{revision:010}", task_definitions_prefix(scope, family))
}

/// The revisions of one family.
pub(crate) fn task_definitions_prefix(scope: &Scope, family: &str) -> String {
    format!("{}taskdef/{family}/", base(scope))
}

/// Every revision of every family whose name starts with `family_prefix`.
pub(crate) fn task_definition_families_prefix(scope: &Scope, family_prefix: &str) -> String {
    format!("{}taskdef/{family_prefix}", base(scope))
}

pub(crate) fn task_definition_family_key(scope: &Scope, family: &str) -> String {
    format!("{}taskdef-family/{family}", base(scope))
}

pub(crate) const SUBNET_PREFIX: &str = "net/subnet/";

pub(crate) fn subnet_key(id: &str) -> String {
    format!("{SUBNET_PREFIX}{id}")
}

pub(crate) fn cidr_key(network: Ipv4Addr) -> String {
    format!("net/cidr/{network}")
}

pub(crate) fn ip_prefix(subnet: &str) -> String {
    format!("net/ip/{subnet}/")
}

pub(crate) fn ip_key(subnet: &str, ip: Ipv4Addr) -> String {
    format!("{}{ip}", ip_prefix(subnet))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_split_back_into_their_parts() {
        let scope = Scope::default_installation();
        let key = service_key(&scope, "prod", "web");
        assert_eq!(key, "ecs/000000000000/us-east-1/service/prod/web");
        assert_eq!(
            split_cluster_key(&key),
            Some((scope.clone(), "service", "prod", "web"))
        );
        assert_eq!(
            task_definition_key(&scope, "web", 12),
            "ecs/000000000000/us-east-1/taskdef/web/0000000012"
        );
        assert_eq!(
            split_key(&task_key(&scope, "c", "t")),
            Some((scope, "task/c/t"))
        );
    }
}
