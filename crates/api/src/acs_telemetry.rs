//! Agents' metrics reports (TCS `PublishMetricsRequest`) read into what ECS's CloudWatch
//! metrics are computed from (`berth_ecs::utilization`): each task's CPU (percent of the
//! instance) and memory (MiB), averaged over the publish interval and summed over its
//! containers. A batch of more than ten tasks comes in several messages, the last marked
//! `fin`; the batch is kept as the instance's telemetry once it is complete.

use berth_agent_protocol::tcs::PublishMetricsRequest;
use berth_ecs::utilization::TaskSample;

/// The tasks of one metrics message.
pub fn task_samples(report: &PublishMetricsRequest) -> Vec<TaskSample> {
    let mean = |set: Option<&berth_agent_protocol::tcs::CWStatsSet>| -> f64 {
        match set {
            Some(s) => match (s.sum, s.sample_count) {
                (Some(sum), Some(n)) if n > 0 => sum / n as f64,
                _ => 0.0,
            },
            None => 0.0,
        }
    };
    report
        .task_metrics
        .iter()
        .flatten()
        .filter_map(|task| {
            let containers = task.container_metrics.as_deref().unwrap_or_default();
            Some(TaskSample {
                task_arn: task.task_arn.clone()?,
                cpu_percent: containers
                    .iter()
                    .map(|c| mean(c.cpu_stats_set.as_ref()))
                    .sum(),
                memory_mib: containers
                    .iter()
                    .map(|c| mean(c.memory_stats_set.as_ref()))
                    .sum(),
            })
        })
        .collect()
}

/// A session's batch being read: messages' tasks until the one marked `fin`.
#[derive(Default)]
pub struct Batch {
    samples: Vec<TaskSample>,
}

impl Batch {
    /// Adds a message; the whole batch once it is complete.
    pub fn add(&mut self, report: &PublishMetricsRequest) -> Option<Vec<TaskSample>> {
        self.samples.extend(task_samples(report));
        let fin = report.metadata.as_ref().and_then(|m| m.fin).unwrap_or(true);
        fin.then(|| std::mem::take(&mut self.samples))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(json: serde_json::Value) -> PublishMetricsRequest {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn a_task_is_its_containers_means_summed() {
        let r = report(serde_json::json!({
            "metadata": {"fin": true},
            "taskMetrics": [{"taskArn": "arn:t1", "containerMetrics": [
                {"cpuStatsSet": {"min": 1.0, "max": 3.0, "sampleCount": 4, "sum": 8.0},
                 "memoryStatsSet": {"min": 10.0, "max": 30.0, "sampleCount": 2, "sum": 40.0}},
                {"cpuStatsSet": {"min": 0.5, "max": 0.5, "sampleCount": 1, "sum": 0.5}}
            ]}, {"containerMetrics": []}]
        }));
        assert_eq!(
            task_samples(&r),
            vec![TaskSample {
                task_arn: "arn:t1".into(),
                cpu_percent: 2.5,
                memory_mib: 20.0
            }]
        );
    }

    #[test]
    fn a_batch_is_kept_at_its_last_message() {
        let part = |arn: &str, fin: bool| {
            report(serde_json::json!({
                "metadata": {"fin": fin},
                "taskMetrics": [{"taskArn": arn, "containerMetrics": []}]
            }))
        };
        let mut batch = Batch::default();
        assert_eq!(batch.add(&part("a", false)), None);
        let whole = batch.add(&part("b", true)).unwrap();
        assert_eq!(
            whole
                .iter()
                .map(|s| s.task_arn.as_str())
                .collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(batch.add(&part("c", true)).unwrap().len(), 1);
    }
}
