//! A task's reporter: delivers its state changes to the control plane in order, retrying
//! what could not be delivered, and folds container changes into the task change that
//! carries them.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::Inner;
use crate::backoff::Backoff;
use crate::client::{ContainerStateChange, TaskStateChange};

/// Reports the control plane cannot take are retried with this backoff.
const REPORT_RETRY_MIN: Duration = Duration::from_millis(500);

const REPORT_RETRY_MAX: Duration = Duration::from_secs(30);

pub(super) enum Report {
    Container(ContainerStateChange),
    Task(TaskStateChange),
}

/// Sends a task's reports in order, retrying what the control plane could not take, and
/// records each acknowledged status in the state. Container changes waiting behind a task
/// change travel inside it (its `containers` carry every container's latest status), so a
/// task starting or stopping costs the control plane one write, not one per container.
pub(super) async fn run_reporter(
    engine: Arc<Inner>,
    arn: String,
    mut reports: mpsc::UnboundedReceiver<Report>,
) {
    let mut shutdown = engine.shutdown.clone();
    while let Some(first) = reports.recv().await {
        let mut waiting = vec![first];
        while let Ok(report) = reports.try_recv() {
            waiting.push(report);
        }
        for report in coalesce(waiting) {
            if !deliver(&engine, &arn, &report, &mut shutdown).await {
                return;
            }
        }
    }
}

/// Drops the container changes that a later task change in the same run carries.
pub(super) fn coalesce(waiting: Vec<Report>) -> Vec<Report> {
    let last_task = waiting.iter().rposition(|r| matches!(r, Report::Task(_)));
    waiting
        .into_iter()
        .enumerate()
        .filter(|(i, r)| !(matches!(r, Report::Container(_)) && last_task.is_some_and(|t| *i < t)))
        .map(|(_, r)| r)
        .collect()
}

/// Sends one report until it is taken or refused; `false` on shutdown.
pub(super) async fn deliver(
    engine: &Inner,
    arn: &str,
    report: &Report,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    let mut backoff = Backoff::new(REPORT_RETRY_MIN, REPORT_RETRY_MAX);
    loop {
        let result = match report {
            Report::Container(change) => engine.control.submit_container_state_change(change).await,
            Report::Task(change) => engine.control.submit_task_state_change(change).await,
        };
        match result {
            Ok(()) => {
                engine.state.update_task(arn, |record| match report {
                    Report::Container(change) => {
                        if let Some(c) = record.containers.get_mut(&change.container_name) {
                            c.sent_status = change.status.parse().ok();
                        }
                    }
                    Report::Task(change) => {
                        record.sent_status = change.status.parse().ok();
                        for sent in &change.containers {
                            if let Some(c) = record.containers.get_mut(&sent.container_name) {
                                c.sent_status = sent.status.as_deref().and_then(|s| s.parse().ok());
                            }
                        }
                    }
                });
                return true;
            }
            Err(e) if e.is_retryable() => {
                tracing::warn!(task = %arn, error = %e, "state change not delivered; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(backoff.next_delay()) => {}
                    _ = shutdown.changed() => return false,
                }
            }
            Err(e) => {
                tracing::error!(task = %arn, error = %e, "state change refused by the control plane");
                return true;
            }
        }
    }
}
