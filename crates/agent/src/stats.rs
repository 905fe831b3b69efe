//! Resource use of the tasks' containers: every few seconds the collector takes one sample
//! of each running container from the runtime (Docker's one-shot stats), and keeps what the
//! telemetry session and the task metadata endpoint need: the samples since the last
//! metrics report, and each container's latest sample (the `precpu_stats` of the next one).
//!
//! Units are those of the official agent's reports (`agent/stats/queue.go`): CPU as a
//! percentage of the whole instance (a container's CPU time divided by the number of CPUs,
//! per unit of wall time), memory in MiB without the page cache.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use berth_agent_protocol::tcs::{CWStatsSet, ContainerMetric, TaskMetric};
use berth_model::ecs::{ContainerKnownStatus, TaskStatus};
use berth_runtime::{ContainerId, ContainerStats};
use time::OffsetDateTime;
use tokio::sync::watch;

use crate::engine::Engine;

/// How often each running container is sampled.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(10);
const BYTES_PER_MIB: f64 = 1024.0 * 1024.0;
/// At most this many samples are taken at once.
const CONCURRENT_SAMPLES: usize = 16;

/// One sample, reduced to what the reports need.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Sample {
    at: OffsetDateTime,
    cpu_total_ns: u64,
    memory_used_bytes: u64,
}

#[derive(Debug, Default)]
struct History {
    /// The last sample already reported, the base of the next CPU rate.
    base: Option<Sample>,
    /// Samples since the last report.
    window: Vec<Sample>,
    latest: Option<ContainerStats>,
}

/// Samples the engine's running containers. Cheap to clone.
#[derive(Clone)]
pub struct StatsCollector {
    engine: Engine,
    /// The instance's CPU count: CPU use is reported as a share of all of them.
    host_cpus: u32,
    /// By container id. A std mutex: held for a few map operations, never across `.await`.
    histories: Arc<Mutex<HashMap<ContainerId, History>>>,
}

impl StatsCollector {
    pub fn new(engine: Engine, host_cpus: u32) -> Self {
        StatsCollector {
            engine,
            host_cpus: host_cpus.max(1),
            histories: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    fn histories(&self) -> MutexGuard<'_, HashMap<ContainerId, History>> {
        self.histories.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Samples every `interval` until `shutdown`.
    pub async fn run(self, interval: Duration, mut shutdown: watch::Receiver<bool>) {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = shutdown.changed() => return,
            }
            tokio::select! {
                _ = self.sample_over(interval / 2) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// The containers of the engine's tasks that run now.
    fn running_containers(&self) -> Vec<ContainerId> {
        let state = self.engine.state().lock();
        state
            .tasks
            .values()
            .flat_map(|task| task.containers.values())
            .filter(|c| c.known_status == ContainerKnownStatus::Running)
            .filter_map(|c| c.runtime_id.clone().map(ContainerId::from))
            .collect()
    }

    /// Takes one sample of every running container at once, and forgets the others.
    pub async fn sample_all(&self) {
        self.sample_over(Duration::ZERO).await;
    }

    /// Takes one sample of every running container, their starts spread evenly over
    /// `spread`, and forgets the others. Spread, because a hundred containers' samples at
    /// once are a burst of Docker's CPU that every other process on the host (the
    /// credentials endpoint's answers among them) waits behind.
    async fn sample_over(&self, spread: Duration) {
        use futures_util::StreamExt;
        let running = self.running_containers();
        let runtime = self.engine.runtime().clone();
        let step = spread
            .checked_div(u32::try_from(running.len()).unwrap_or(u32::MAX).max(1))
            .unwrap_or_default();
        let start = tokio::time::Instant::now();
        let samples: Vec<(ContainerId, Option<ContainerStats>)> =
            futures_util::stream::iter(running.clone().into_iter().zip(0u32..))
                .map(|(id, nth)| {
                    let runtime = runtime.clone();
                    async move {
                        tokio::time::sleep_until(start + step * nth).await;
                        let sample = match runtime.stats(&id).await {
                            Ok(stats) => Some(stats),
                            Err(e) => {
                                tracing::debug!(container = %id, error = %e, "no stats sample");
                                None
                            }
                        };
                        (id, sample)
                    }
                })
                .buffer_unordered(CONCURRENT_SAMPLES)
                .collect()
                .await;
        let mut histories = self.histories();
        histories.retain(|id, _| running.contains(id));
        for (id, stats) in samples {
            if let Some(stats) = stats {
                self.record_into(histories.entry(id).or_default(), stats);
            }
        }
    }

    fn record_into(&self, history: &mut History, stats: ContainerStats) {
        history.window.push(Sample {
            at: stats.read,
            cpu_total_ns: stats.cpu_total_ns,
            memory_used_bytes: stats.memory_used_bytes(),
        });
        history.latest = Some(stats);
    }

    /// Adds a sample taken elsewhere (the metadata endpoint's), so it counts too.
    pub fn record(&self, id: &ContainerId, stats: ContainerStats) {
        let mut histories = self.histories();
        self.record_into(histories.entry(id.clone()).or_default(), stats);
    }

    /// The latest sample of a container, if any.
    pub fn latest(&self, id: &ContainerId) -> Option<ContainerStats> {
        self.histories().get(id).and_then(|h| h.latest.clone())
    }

    /// The metrics of every running task since the last call, as TCS carries them: per
    /// container, the statistics of its CPU (percent of the instance) and memory (MiB)
    /// samples. A container needs two samples for a CPU rate; one with none yet is left
    /// out, and so is a task without any container to report.
    pub fn take_task_metrics(&self) -> Vec<TaskMetric> {
        let tasks: Vec<(String, crate::state::TaskRecord)> = {
            let state = self.engine.state().lock();
            state
                .tasks
                .iter()
                .filter(|(_, t)| t.known_status == TaskStatus::Running)
                .map(|(arn, t)| (arn.clone(), t.clone()))
                .collect()
        };
        let mut histories = self.histories();
        let mut metrics = Vec::new();
        for (arn, record) in tasks {
            let mut containers = Vec::new();
            let by_name: BTreeMap<&String, &crate::state::ContainerRecord> =
                record.containers.iter().collect();
            for (name, container) in by_name {
                let Some(id) = container.runtime_id.clone().map(ContainerId::from) else {
                    continue;
                };
                let Some(history) = histories.get_mut(&id) else {
                    continue;
                };
                let Some((cpu, memory)) = self.report(history) else {
                    continue;
                };
                let container_arn = record
                    .task
                    .containers
                    .iter()
                    .flatten()
                    .find(|c| c.name.as_deref() == Some(name.as_str()))
                    .and_then(|c| c.container_arn.clone());
                containers.push(ContainerMetric {
                    container_arn,
                    container_name: Some(name.clone()),
                    cpu_stats_set: Some(cpu),
                    memory_stats_set: Some(memory),
                    ..ContainerMetric::default()
                });
            }
            if containers.is_empty() {
                continue;
            }
            metrics.push(TaskMetric {
                task_arn: Some(arn),
                cluster_arn: record.task.task_cluster_arn.clone(),
                task_definition_family: record.task.family.clone(),
                task_definition_version: record.task.version.clone(),
                container_metrics: Some(containers),
                ..TaskMetric::default()
            });
        }
        metrics
    }

    /// The CPU and memory statistics of a container's window, which then starts again.
    fn report(&self, history: &mut History) -> Option<(CWStatsSet, CWStatsSet)> {
        let mut points = Vec::new();
        points.extend(history.base);
        points.extend(history.window.iter().copied());
        let cpu: Vec<f64> = points
            .windows(2)
            .filter_map(|pair| cpu_percent(&pair[0], &pair[1], self.host_cpus))
            .collect();
        if cpu.is_empty() {
            return None;
        }
        let memory: Vec<f64> = history
            .window
            .iter()
            .map(|s| (s.memory_used_bytes as f64 / BYTES_PER_MIB).floor())
            .collect();
        history.base = history.window.last().copied();
        history.window.clear();
        Some((stats_set(&cpu), stats_set(&memory)))
    }
}

/// A container's CPU use between two samples, in percent of the instance's CPUs.
fn cpu_percent(earlier: &Sample, later: &Sample, host_cpus: u32) -> Option<f64> {
    let elapsed = (later.at - earlier.at).whole_nanoseconds();
    // A restarted container's counter starts again from zero: no rate across it.
    if elapsed <= 0 || later.cpu_total_ns < earlier.cpu_total_ns {
        return None;
    }
    let used = (later.cpu_total_ns - earlier.cpu_total_ns) as f64 / f64::from(host_cpus);
    Some(100.0 * used / elapsed as f64)
}

/// CloudWatch-style statistics of a non-empty series.
fn stats_set(values: &[f64]) -> CWStatsSet {
    CWStatsSet {
        min: values.iter().copied().reduce(f64::min),
        max: values.iter().copied().reduce(f64::max),
        sample_count: Some(values.len() as u64),
        sum: Some(values.iter().sum()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(seconds: i64, cpu_ms: u64, memory_mib: u64) -> Sample {
        Sample {
            at: OffsetDateTime::from_unix_timestamp(1_700_000_000 + seconds).unwrap(),
            cpu_total_ns: cpu_ms * 1_000_000,
            memory_used_bytes: memory_mib << 20,
        }
    }

    #[test]
    fn cpu_is_a_percentage_of_the_whole_instance() {
        // One full CPU of a four-CPU instance for ten seconds: 25 %.
        let rate = cpu_percent(&sample(0, 0, 1), &sample(10, 10_000, 1), 4).unwrap();
        assert!((rate - 25.0).abs() < 1e-9, "{rate}");
        assert_eq!(cpu_percent(&sample(10, 5, 1), &sample(10, 9, 1), 4), None);
        assert_eq!(cpu_percent(&sample(0, 900, 1), &sample(10, 5, 1), 4), None);
    }

    #[test]
    fn statistics_of_a_series() {
        let set = stats_set(&[3.0, 1.0, 2.0]);
        assert_eq!(
            (set.min, set.max, set.sample_count, set.sum),
            (Some(1.0), Some(3.0), Some(3), Some(6.0))
        );
    }
}
