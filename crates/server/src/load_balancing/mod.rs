//! The load balancers' data plane, fed by ELBv2's records: on the leader, for its term, a
//! controller builds a [`berth_lb::Plan`] from every load balancer, listener and target
//! group (`plan.rs`), applies it, and rebuilds when a record changes (a store watch on
//! `elbv2/`) and every few seconds (instance addresses, certificates). Target health the
//! data plane reports is written back to the health records DescribeTargetHealth reads;
//! a load balancer whose address cannot be bound is set `failed`.

pub(crate) mod metrics;
mod networks;
mod plan;
mod targets;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use berth_elbv2::{
    ElbScope, Elbv2, HealthReport, LoadBalancerState, Snapshot, TargetGroupArn, TargetHealthReason,
    TargetHealthState, TargetType,
};
use berth_lb as lb;
use tokio::sync::mpsc;

pub use networks::{Ec2Networks, HostRoutes};
pub use plan::{Built, Certificates, build};
pub use targets::ElbTargetGroups;

/// How often the plan is rebuilt with nothing changed in ELBv2's records (instance
/// addresses and certificates are read then).
const REBUILD_EVERY: Duration = Duration::from_secs(10);

/// What the controller reads: ELBv2's records, container instances' host addresses, IAM's
/// server certificates.
pub struct Sources {
    pub elbv2: Arc<Elbv2>,
    pub ecs: berth_ecs::Ecs,
    pub iam: berth_iam::Iam,
    /// Where ELBv2's metrics are published (`metrics.rs`).
    pub cloudwatch: Arc<berth_cloudwatch::CloudWatch>,
    /// How often they are published.
    pub metrics_period: std::time::Duration,
}

impl Sources {
    /// The plan, and each load balancer's recorded state by ARN (blocking: store reads).
    fn read(&self) -> Result<(Built, HashMap<String, LoadBalancerState>), String> {
        let snapshot = self.elbv2.snapshot().map_err(|e| e.to_string())?;
        for (key, error) in &snapshot.unreadable {
            tracing::warn!(%key, %error, "load balancers: a record that does not decode is left out");
        }
        let recorded = snapshot
            .load_balancers
            .iter()
            .map(|(_, b)| (b.arn.to_string(), b.state))
            .collect();
        let instances = if snapshot
            .target_groups
            .iter()
            .any(|(_, g)| g.target_type == TargetType::Instance && !g.targets.is_empty())
        {
            self.ecs
                .instance_host_addresses()
                .map_err(|e| e.to_string())?
        } else {
            HashMap::new()
        };
        let certificates = self.certificates(&snapshot);
        Ok((build(&snapshot, &instances, &certificates), recorded))
    }

    /// Every certificate a TLS listener names, with its private key opened.
    fn certificates(&self, snapshot: &Snapshot) -> Certificates {
        let mut certificates = Certificates::new();
        for (scope, listener) in &snapshot.listeners {
            for c in &listener.certificates {
                if certificates.contains_key(&c.arn) {
                    continue;
                }
                let found = self
                    .iam
                    .server_certificate_by_arn(&scope.account, &c.arn)
                    .ok()
                    .flatten();
                let Some(found) = found else { continue };
                match self.iam.server_certificate_key(&found) {
                    Ok(private_key) => {
                        let mut chain = found.certificate_body.trim_end().to_owned();
                        if let Some(rest) = &found.certificate_chain {
                            chain.push('\n');
                            chain.push_str(rest.trim_end());
                        }
                        chain.push('\n');
                        certificates.insert(
                            c.arn.clone(),
                            lb::CertificatePem {
                                certificate_chain: chain,
                                private_key,
                            },
                        );
                    }
                    Err(e) => {
                        tracing::warn!(certificate = %c.arn, error = %e, "cannot open a server certificate")
                    }
                }
            }
        }
        certificates
    }
}

/// Runs the data plane until `shutdown` turns true; every listener is closed then.
pub async fn run(sources: Sources, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let sources = Arc::new(sources);
    let (health_tx, health_rx) = mpsc::unbounded_channel();
    // Plain-HTTP ALB connections on threads of their own, one per core (berth-lb's
    // `workers.rs`); the rest of the data plane on the server's runtime.
    let threads = std::thread::available_parallelism().map_or(2, usize::from);
    let data_plane = Arc::new(lb::DataPlane::with_workers(
        Arc::new(Sink { tx: health_tx }),
        threads,
    ));
    tokio::spawn(write_health(sources.elbv2.clone(), health_rx));
    let (plan_tx, plan_rx) = tokio::sync::watch::channel(Arc::new(lb::Plan::default()));
    tokio::spawn(metrics::publish(
        data_plane.clone(),
        plan_rx,
        sources.cloudwatch.clone(),
        sources.metrics_period,
        shutdown.clone(),
    ));
    let store = sources.elbv2.store_handle();
    let mut watch = None;
    loop {
        // (Re)watch first, then read: nothing committed in between is missed. A watch that
        // ended (the store could not follow) is made again from the current revision.
        if watch.is_none() {
            match store
                .current_revision()
                .and_then(|r| store.watch(berth_elbv2::RECORDS_PREFIX, r))
            {
                Ok(w) => watch = Some(w),
                Err(e) => {
                    tracing::warn!(error = %e, "load balancers: cannot watch ELBv2's records; trying again at the next rebuild")
                }
            }
        }
        let read = {
            let sources = sources.clone();
            tokio::task::spawn_blocking(move || sources.read()).await
        };
        match read {
            Ok(Ok((built, recorded))) => {
                for problem in &built.problems {
                    tracing::debug!(%problem, "load balancers: left out of the plan");
                }
                if let Err(e) = data_plane.apply(&built.plan).await {
                    tracing::warn!(error = %e, "load balancers: a listener cannot be served");
                }
                note_states(&sources, &data_plane, &built.plan, &recorded).await;
                let _ = plan_tx.send(Arc::new(built.plan));
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "load balancers: cannot read ELBv2's records"),
            Err(e) => tracing::warn!(error = %e, "load balancers: the read failed"),
        }
        // Wait for a change to what is served, the periodic rebuild, or the end.
        let changed = async {
            match watch.as_mut() {
                Some(w) => loop {
                    match w.recv().await {
                        Some(event) if berth_elbv2::shapes_data_plane(&event.kv.key) => {
                            return true;
                        }
                        Some(_) => {}
                        None => return false,
                    }
                },
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            alive = changed => {
                if !alive {
                    tracing::info!("load balancers: the watch on ELBv2's records ended; watching again");
                    watch = None;
                }
            }
            () = tokio::time::sleep(REBUILD_EVERY) => {}
            _ = shutdown.changed() => break,
        }
        // Let a burst of changes settle into one rebuild.
        tokio::time::sleep(Duration::from_millis(20)).await;
        if let Some(w) = watch.as_mut() {
            while w.try_recv().is_ok() {}
        }
        if *shutdown.borrow() {
            break;
        }
    }
    data_plane.shutdown();
}

/// Each load balancer's state follows whether all its listeners are bound: `failed` when
/// one cannot be, `active` when all are (only changes are written).
async fn note_states(
    sources: &Arc<Sources>,
    data_plane: &lb::DataPlane,
    plan: &lb::Plan,
    recorded: &HashMap<String, LoadBalancerState>,
) {
    let mut changes = Vec::new();
    for balancer in &plan.load_balancers {
        let mut listening = true;
        for l in &balancer.listeners {
            listening &= data_plane
                .listener_addr(&balancer.id, l.port)
                .await
                .is_some();
        }
        let state = if listening {
            LoadBalancerState::Active
        } else {
            LoadBalancerState::Failed
        };
        if recorded.get(&balancer.id.0) != Some(&state) {
            changes.push((balancer.id.0.clone(), state));
        }
    }
    if changes.is_empty() {
        return;
    }
    let elbv2 = sources.elbv2.clone();
    let _ = tokio::task::spawn_blocking(move || {
        for (arn, state) in changes {
            let Ok(arn) = berth_elbv2::LoadBalancerArn::parse(&arn) else {
                continue;
            };
            let (region, account) = arn.scope();
            let scope = ElbScope::new(account, region);
            if let Err(e) = elbv2.set_load_balancer_state(&scope, &arn, state) {
                tracing::debug!(error = %e, "load balancers: a state not recorded");
            }
        }
    })
    .await;
}

/// A change of one target's health, for the writer.
enum HealthChange {
    Report(lb::TargetHealth),
    Removed,
}

/// The data plane's reports, queued for [`write_health`] (the sink must not block).
struct Sink {
    tx: mpsc::UnboundedSender<(lb::TargetGroupId, lb::TargetId, HealthChange)>,
}

impl lb::HealthSink for Sink {
    fn target_health_changed(
        &self,
        group: &lb::TargetGroupId,
        target: &lb::TargetId,
        health: &lb::TargetHealth,
    ) {
        let _ = self.tx.send((
            group.clone(),
            target.clone(),
            HealthChange::Report(health.clone()),
        ));
    }

    fn target_removed(&self, group: &lb::TargetGroupId, target: &lb::TargetId) {
        let _ = self
            .tx
            .send((group.clone(), target.clone(), HealthChange::Removed));
    }
}

/// Writes target health to ELBv2's health records, the newest change per target, a batch
/// at a time.
async fn write_health(
    elbv2: Arc<Elbv2>,
    mut rx: mpsc::UnboundedReceiver<(lb::TargetGroupId, lb::TargetId, HealthChange)>,
) {
    while let Some(first) = rx.recv().await {
        let mut batch: HashMap<(lb::TargetGroupId, lb::TargetId), HealthChange> = HashMap::new();
        let (g, t, c) = first;
        batch.insert((g, t), c);
        while let Ok((g, t, c)) = rx.try_recv() {
            batch.insert((g, t), c);
        }
        let elbv2 = elbv2.clone();
        let _ = tokio::task::spawn_blocking(move || {
            for ((group, target), change) in batch {
                if let Err(e) = write_one(&elbv2, &group, &target, change) {
                    tracing::debug!(group = %group, target = %target, error = %e, "target health not recorded");
                }
            }
        })
        .await;
    }
}

fn write_one(
    elbv2: &Elbv2,
    group: &lb::TargetGroupId,
    target: &lb::TargetId,
    change: HealthChange,
) -> Result<(), String> {
    let arn = TargetGroupArn::parse(&group.0).map_err(|e| e.to_string())?;
    let (region, account) = arn.scope();
    let scope = ElbScope::new(account, region);
    let (id, port) = target
        .0
        .rsplit_once(':')
        .and_then(|(id, port)| Some((id, port.parse::<u16>().ok()?)))
        .ok_or_else(|| format!("not a target: {target}"))?;
    match change {
        HealthChange::Removed => elbv2
            .forget_target_health(&scope, &arn, id, port)
            .map_err(|e| e.to_string()),
        // The control plane answers draining targets itself (from the group's record).
        HealthChange::Report(h) if h.state == lb::TargetHealthState::Draining => Ok(()),
        HealthChange::Report(h) => {
            let report = HealthReport {
                state: match h.state {
                    lb::TargetHealthState::Initial => TargetHealthState::Initial,
                    lb::TargetHealthState::Healthy => TargetHealthState::Healthy,
                    lb::TargetHealthState::Unhealthy => TargetHealthState::Unhealthy,
                    lb::TargetHealthState::Draining => TargetHealthState::Draining,
                },
                reason: h.reason.map(|r| match r {
                    lb::TargetHealthReason::InitialHealthChecking => {
                        TargetHealthReason::InitialHealthChecking
                    }
                    lb::TargetHealthReason::ResponseCodeMismatch => {
                        TargetHealthReason::ResponseCodeMismatch
                    }
                    lb::TargetHealthReason::Timeout => TargetHealthReason::Timeout,
                    lb::TargetHealthReason::FailedHealthChecks => {
                        TargetHealthReason::FailedHealthChecks
                    }
                    lb::TargetHealthReason::DeregistrationInProgress => {
                        TargetHealthReason::DeregistrationInProgress
                    }
                }),
                description: h.description,
                updated: 0.0,
            };
            elbv2
                .set_target_health(&scope, &arn, id, port, report)
                .map_err(|e| e.to_string())
        }
    }
}

#[cfg(test)]
mod tests;
