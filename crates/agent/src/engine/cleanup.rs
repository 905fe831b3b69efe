//! Stopping a task and cleaning up after it: its containers stopped dependents first, those
//! that never started removed at once, the rest (and the task's own volumes and record)
//! after the cleanup delay, or sooner when too many stopped tasks wait on the host.

use std::time::Duration;

use berth_runtime::RuntimeError;
use tokio::sync::mpsc;

use super::supervisor::{Status, Supervisor};
use super::{Inner, StoppedAt, TaskMsg, lock, now_seconds};
use crate::infra::PAUSE_CONTAINER_NAME;
use crate::translate;

impl Inner {
    /// Counts a stopped task as waiting for its cleanup; past `max_stopped_tasks` waiting,
    /// tells the oldest to clean up now.
    fn wait_for_cleanup(&self, waiting: (StoppedAt, String)) {
        let oldest: Vec<String> = {
            let mut stopped = lock(&self.stopped);
            stopped.insert(waiting);
            let excess = stopped.len().saturating_sub(self.config.max_stopped_tasks);
            (0..excess)
                .filter_map(|_| stopped.pop_first())
                .map(|(_, arn)| arn)
                .collect()
        };
        for arn in oldest {
            tracing::info!(task = %arn, max = self.config.max_stopped_tasks, "too many stopped tasks kept on this host; cleaning up the oldest now");
            if let Some(sender) = lock(&self.tasks).get(&arn) {
                let _ = sender.send(TaskMsg::CleanUpNow);
            }
        }
    }
}

impl Supervisor {
    /// Stops every container still running, dependents before their dependencies, each
    /// with its stopTimeout.
    pub(super) async fn stop_all(&mut self) {
        // Containers that never ran are done.
        for member in self.members.values_mut() {
            if member.status < Status::Running {
                member.status = Status::Stopped;
            }
        }
        loop {
            let running: Vec<String> = self
                .members
                .iter()
                .filter(|(_, m)| m.status == Status::Running)
                .map(|(n, _)| n.clone())
                .collect();
            if running.is_empty() {
                break;
            }
            // Those no other running container depends on go first.
            let wave: Vec<String> = running
                .iter()
                .filter(|name| {
                    !running.iter().any(|other| {
                        other != *name
                            && translate::dependencies(&self.members[other].def).contains(name)
                    })
                })
                .cloned()
                .collect();
            let wave = if wave.is_empty() { running } else { wave };
            let default_timeout = self.engine.config.default_stop_timeout;
            let stops = wave.iter().map(|name| {
                let member = &self.members[name];
                let id = member.id.clone().expect("a running container has an id");
                let timeout = member.stop_timeout(default_timeout);
                let runtime = self.engine.runtime.clone();
                async move { (name.clone(), runtime.stop_container(&id, timeout).await) }
            });
            for (name, result) in futures_util::future::join_all(stops).await {
                if let Err(e) = &result {
                    tracing::warn!(task = %self.arn, container = %name, error = %e, "stopping container failed");
                }
                self.refresh(&name).await;
                let member = self.members.get_mut(&name).expect("member");
                if member.status == Status::Running {
                    if result.is_ok() {
                        // Stopped, whatever inspect said a moment ago.
                        member.status = Status::Stopped;
                    } else {
                        // The runtime cannot stop it (Docker gone?): try again shortly.
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
                self.report_container_if_changed(&name);
            }
            self.save();
            if *self.engine.shutdown.borrow() {
                return;
            }
        }
        let names: Vec<String> = self.members.keys().cloned().collect();
        for name in names {
            self.report_container_if_changed(&name);
        }
        self.stop_infra().await;
        self.stopped_at.get_or_insert_with(now_seconds);
        self.save();
    }

    /// Removes at once the containers of a task that never started them (a failed create or
    /// start, a conflict over a host port, an address or a name): they hold nothing worth
    /// keeping, and a service retrying such a task would otherwise pile them up. When no
    /// container of the task ever started, its infra container goes too.
    pub(super) async fn remove_unstarted(&mut self) {
        let runtime = self.engine.runtime.clone();
        let mut removed = Vec::new();
        for (name, member) in self.members.iter_mut().filter(|(_, m)| !m.started) {
            let Some(id) = member.id.clone() else {
                continue;
            };
            match runtime.remove_container(&id).await {
                Ok(()) | Err(RuntimeError::NotFound(_)) => {
                    lock(&self.engine.routes).remove(&id);
                    member.id = None;
                    removed.push(name.clone());
                }
                Err(e) => {
                    tracing::warn!(task = %self.arn, container = %id, error = %e, "removing a container that never started failed")
                }
            }
        }
        if !self.members.values().any(|m| m.started)
            && let Some(id) = self.infra.id.clone()
        {
            match runtime.remove_container(&id).await {
                Ok(()) | Err(RuntimeError::NotFound(_)) => {
                    lock(&self.engine.routes).remove(&id);
                    self.infra.id = None;
                    removed.push(PAUSE_CONTAINER_NAME.to_owned());
                }
                Err(e) => {
                    tracing::warn!(task = %self.arn, container = %id, error = %e, "removing the infra container of a task that never started failed")
                }
            }
        }
        if !removed.is_empty() {
            tracing::info!(task = %self.arn, containers = ?removed, "removed the containers of a task that did not start");
            self.save();
        }
    }

    /// Waits out the cleanup delay (cut short when too many stopped tasks wait on this host),
    /// then removes the containers, the task's own volumes and, once its reports are
    /// delivered, the task's record.
    pub(super) async fn cleanup_when_due(mut self) {
        let mut shutdown = self.engine.shutdown.clone();
        let stopped_at = self.stopped_at.unwrap_or_else(now_seconds);
        let elapsed = (now_seconds() - stopped_at).max(0.0);
        let wait = self
            .engine
            .config
            .cleanup_delay
            .saturating_sub(Duration::from_secs_f64(elapsed));
        let waiting = (StoppedAt(stopped_at), self.arn.clone());
        self.engine.wait_for_cleanup(waiting.clone());
        let due = tokio::time::sleep(wait);
        tokio::pin!(due);
        let now = loop {
            tokio::select! {
                _ = &mut due => break true,
                // Payloads naming the stopped task again need nothing.
                message = self.rx.recv() => match message {
                    Some(TaskMsg::CleanUpNow) => break true,
                    Some(_) => {}
                    None => break false,
                },
                _ = shutdown.changed() => break false,
            }
        };
        lock(&self.engine.stopped).remove(&waiting);
        if !now || !self.drain_shippers().await {
            return;
        }
        let infra = self.infra.id.iter();
        for id in self
            .members
            .values()
            .filter_map(|m| m.id.as_ref())
            .chain(infra)
        {
            match self.engine.runtime.remove_container(id).await {
                Ok(()) | Err(RuntimeError::NotFound(_)) => {}
                Err(e) => {
                    tracing::warn!(task = %self.arn, container = %id, error = %e, "removing container failed")
                }
            }
            lock(&self.engine.routes).remove(id);
        }
        self.remove_volumes().await;
        // The record goes once every report is delivered: a restarted agent that lost it
        // before the control plane heard STOPPED could start the task again.
        let (closed, _) = mpsc::unbounded_channel();
        drop(std::mem::replace(&mut self.reports, closed));
        if let Some(reporter) = self.reporter.take() {
            let _ = reporter.await;
        }
        if *self.engine.shutdown.borrow() {
            return;
        }
        self.engine.state.update(|s| s.tasks.remove(&self.arn));
        self.engine.credentials.forget_task(&self.arn);
        lock(&self.engine.tasks).remove(&self.arn);
        tracing::debug!(task = %self.arn, "task cleaned up");
    }
}
