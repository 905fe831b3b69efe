//! What ECS's CloudWatch metrics (`AWS/ECS`) are made of: agents' telemetry kept in the
//! store, and the utilization and reservation computed from it with the task and instance
//! records. Telemetry arrives at whichever replica holds an agent's TCS session, so that
//! replica writes each instance's latest report (CPU converted to units with the instance's
//! registered CPU) as one record, `ecs-telemetry/{account}/{region}/{cluster}/{instance}`,
//! and the leader reads them all every period and computes ([`datums`], pure) what ECS
//! publishes. docs/cloudwatch.md, "Metrics Berth publishes".

use std::collections::{BTreeMap, HashMap};

use berth_model::Scope;
use berth_model::ecs::{InstanceStatus, TaskStatus};
use serde::{Deserialize, Serialize};

use crate::keys::{TELEMETRY_PREFIX, instance_key, telemetry_key};
use crate::{ContainerInstance, Ecs, Result, Task, decode, encode, now_epoch};

/// One task's use over an agent's publish interval, as its agent reported it: CPU in
/// percent of the whole instance (the official agent's and Berth's alike), memory in MiB.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskSample {
    pub task_arn: String,
    pub cpu_percent: f64,
    pub memory_mib: f64,
}

/// One task's use as kept: CPU in units (1,024 a vCPU), memory in MiB.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskUsage {
    pub task_arn: String,
    pub cpu_units: f64,
    pub memory_mib: f64,
}

/// An instance's latest telemetry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceTelemetry {
    /// When it was received (epoch seconds).
    pub received_at: f64,
    pub tasks: Vec<TaskUsage>,
}

/// What one cluster's metrics are computed from.
#[derive(Debug, Clone, Default)]
pub struct ClusterUsage {
    /// The cluster's registered (ACTIVE or DRAINING) instances; none for a cluster whose
    /// tasks all run on Fargate.
    pub instances: Vec<ContainerInstance>,
    /// Its RUNNING tasks with their latest use (Fargate ones too).
    pub tasks: Vec<(Task, TaskUsage)>,
}

/// One metric of one cluster or service, for one period, as a statistic set (the ECS rule:
/// the average is the ratio of totals, minimum and maximum the extreme task's or instance's).
#[derive(Debug, Clone, PartialEq)]
pub struct UtilizationDatum {
    pub metric: &'static str,
    /// `None`: the cluster's (dimension ClusterName only).
    pub service: Option<String>,
    pub sample_count: f64,
    pub sum: f64,
    pub minimum: f64,
    pub maximum: f64,
}

impl UtilizationDatum {
    pub fn average(&self) -> f64 {
        self.sum / self.sample_count
    }
}

/// `used / available` in percent over several parts, each part's own ratio for the
/// extremes; `None` when nothing is available.
fn ratio(
    metric: &'static str,
    service: Option<&str>,
    parts: &[(f64, f64)],
) -> Option<UtilizationDatum> {
    let parts: Vec<(f64, f64)> = parts.iter().copied().filter(|(_, a)| *a > 0.0).collect();
    let available: f64 = parts.iter().map(|(_, a)| a).sum();
    if parts.is_empty() || available <= 0.0 {
        return None;
    }
    let used: f64 = parts.iter().map(|(u, _)| u).sum();
    let each = parts.iter().map(|(u, a)| u / a * 100.0);
    let n = parts.len() as f64;
    Some(UtilizationDatum {
        metric,
        service: service.map(str::to_owned),
        sample_count: n,
        sum: used / available * 100.0 * n,
        minimum: each.clone().fold(f64::INFINITY, f64::min),
        maximum: each.fold(f64::NEG_INFINITY, f64::max),
    })
}

/// A cluster's `AWS/ECS` metrics for one period (the ECS developer guide's "Amazon ECS
/// CloudWatch metrics" and "service utilization"):
/// - per service, CPUUtilization and MemoryUtilization: the units (MiB) its tasks use over
///   the units (MiB) their definitions specify (task-level, else the containers' sum), EC2
///   and Fargate alike; minimum and maximum are the least and most used task's;
/// - per cluster, CPUUtilization and MemoryUtilization: what its tasks on its instances use
///   over what its ACTIVE and DRAINING instances registered (EC2 only); CPUReservation and
///   MemoryReservation: what tasks hold on those instances over the same; minimum and
///   maximum are the least and most used instance's.
///
/// Nothing for a cluster or service without RUNNING tasks, as ECS.
pub fn datums(usage: &ClusterUsage) -> Vec<UtilizationDatum> {
    let mut out = Vec::new();
    let mut services: BTreeMap<&str, Vec<&(Task, TaskUsage)>> = BTreeMap::new();
    for entry in &usage.tasks {
        if let Some(service) = entry.0.group.strip_prefix("service:") {
            services.entry(service).or_default().push(entry);
        }
    }
    for (service, tasks) in services {
        let cpu: Vec<(f64, f64)> = tasks
            .iter()
            .map(|(t, u)| (u.cpu_units, t.reservation.cpu as f64))
            .collect();
        let memory: Vec<(f64, f64)> = tasks
            .iter()
            .map(|(t, u)| (u.memory_mib, t.reservation.memory as f64))
            .collect();
        out.extend(ratio("CPUUtilization", Some(service), &cpu));
        out.extend(ratio("MemoryUtilization", Some(service), &memory));
    }
    let instances: Vec<&ContainerInstance> = usage
        .instances
        .iter()
        .filter(|i| matches!(i.status, InstanceStatus::Active | InstanceStatus::Draining))
        .collect();
    let on_instances = usage
        .tasks
        .iter()
        .any(|(t, _)| !t.is_fargate() && t.container_instance_id.is_some());
    if instances.is_empty() || !on_instances {
        return out;
    }
    let used_on = |instance: &ContainerInstance, f: fn(&TaskUsage) -> f64| -> f64 {
        usage
            .tasks
            .iter()
            .filter(|(t, _)| {
                !t.is_fargate() && t.container_instance_id.as_deref() == Some(&instance.id)
            })
            .map(|(_, u)| f(u))
            .sum()
    };
    let parts = |f: &dyn Fn(&ContainerInstance) -> (f64, f64)| -> Vec<(f64, f64)> {
        instances.iter().map(|i| f(i)).collect()
    };
    out.extend(ratio(
        "CPUUtilization",
        None,
        &parts(&|i| (used_on(i, |u| u.cpu_units), i.registered.cpu as f64)),
    ));
    out.extend(ratio(
        "MemoryUtilization",
        None,
        &parts(&|i| (used_on(i, |u| u.memory_mib), i.registered.memory as f64)),
    ));
    out.extend(ratio(
        "CPUReservation",
        None,
        &parts(&|i| {
            let held = (i.registered.cpu - i.remaining.cpu).max(0);
            (held as f64, i.registered.cpu as f64)
        }),
    ));
    out.extend(ratio(
        "MemoryReservation",
        None,
        &parts(&|i| {
            let held = (i.registered.memory - i.remaining.memory).max(0);
            (held as f64, i.registered.memory as f64)
        }),
    ));
    out
}

/// `arn:aws:ecs:REGION:ACCOUNT:task/CLUSTER/ID` → its scope, cluster and id.
fn parse_task_arn(arn: &str) -> Option<(Scope, String, String)> {
    let mut parts = arn.splitn(6, ':');
    let (_, _, _, region, account, resource) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    let (cluster, id) = resource.strip_prefix("task/")?.split_once('/')?;
    let scope = Scope::new(account.parse().ok()?, region.parse().ok()?);
    Some((scope, cluster.to_owned(), id.to_owned()))
}

/// Telemetry older than this is not used (agents publish every 20 s).
pub const TELEMETRY_FRESH_SECONDS: f64 = 60.0;
/// Telemetry records older than this are deleted by [`Ecs::cluster_usage`].
const TELEMETRY_FORGOTTEN_SECONDS: f64 = 3600.0;

impl Ecs {
    /// Keeps an instance's latest telemetry (one record, replaced): each task's CPU share
    /// of the instance converted to units with the CPU the instance registered.
    pub fn record_telemetry(
        &self,
        scope: &Scope,
        cluster: &str,
        instance_id: &str,
        samples: &[TaskSample],
    ) -> Result<()> {
        let Some(kv) = self.store.get(&instance_key(scope, cluster, instance_id))? else {
            return Ok(());
        };
        let instance: ContainerInstance = decode(&kv)?;
        let record = InstanceTelemetry {
            received_at: now_epoch(),
            tasks: samples
                .iter()
                .map(|s| TaskUsage {
                    task_arn: s.task_arn.clone(),
                    cpu_units: s.cpu_percent / 100.0 * instance.registered.cpu as f64,
                    memory_mib: s.memory_mib,
                })
                .collect(),
        };
        self.store.put(
            &telemetry_key(scope, cluster, instance_id),
            &encode(&record),
        )?;
        Ok(())
    }

    /// Every cluster with RUNNING tasks in fresh telemetry (received within
    /// [`TELEMETRY_FRESH_SECONDS`] of `now`), with what [`datums`] needs; records long
    /// stale (deregistered instances) are deleted on the way.
    pub fn cluster_usage(&self, now: f64) -> Result<HashMap<(Scope, String), ClusterUsage>> {
        let mut out: HashMap<(Scope, String), ClusterUsage> = HashMap::new();
        let mut stale = Vec::new();
        for kv in self.store.range(TELEMETRY_PREFIX, None, 0)? {
            let record: InstanceTelemetry = decode(&kv)?;
            let age = now - record.received_at;
            if age > TELEMETRY_FORGOTTEN_SECONDS {
                stale.push(kv.key.clone());
            }
            if age > TELEMETRY_FRESH_SECONDS {
                continue;
            }
            for usage in record.tasks {
                let Some((scope, cluster, id)) = parse_task_arn(&usage.task_arn) else {
                    continue;
                };
                let Some(task) = self.task(&scope, &cluster, &id)? else {
                    continue;
                };
                if task.last_status != TaskStatus::Running {
                    continue;
                }
                out.entry((scope, cluster))
                    .or_default()
                    .tasks
                    .push((task, usage));
            }
        }
        for ((scope, cluster), usage) in &mut out {
            usage.instances = self
                .store
                .range(&crate::keys::instances_prefix(scope, cluster), None, 0)?
                .iter()
                .map(decode)
                .collect::<Result<_>>()?;
        }
        for key in stale {
            self.store.delete(&key)?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
