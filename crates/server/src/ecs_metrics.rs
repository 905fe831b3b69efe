//! ECS's CloudWatch metrics (`AWS/ECS`): every period the leader reads the agents' latest
//! telemetry and the task and instance records (`berth_ecs::utilization`) and publishes
//! CPUUtilization and MemoryUtilization per ClusterName and per ClusterName and
//! ServiceName, CPUReservation and MemoryReservation per ClusterName, each as a statistic
//! set in Percent, in each cluster's account and region.

use std::sync::Arc;
use std::time::Duration;

use berth_cloudwatch::{CloudWatch, CwScope, Dimension, MetricDatum, PutMetricData, StatisticSet};
use berth_ecs::utilization::{UtilizationDatum, datums};

const NAMESPACE: &str = "AWS/ECS";

/// The CloudWatch datum of one computed metric of `cluster`.
pub fn metric_datum(cluster: &str, d: &UtilizationDatum, high_resolution: bool) -> MetricDatum {
    let mut dimensions = vec![Dimension {
        name: "ClusterName".to_owned(),
        value: cluster.to_owned(),
    }];
    if let Some(service) = &d.service {
        dimensions.push(Dimension {
            name: "ServiceName".to_owned(),
            value: service.clone(),
        });
    }
    MetricDatum {
        metric_name: d.metric.to_owned(),
        dimensions,
        statistic_values: Some(StatisticSet {
            sample_count: d.sample_count,
            sum: d.sum,
            minimum: d.minimum,
            maximum: d.maximum,
        }),
        unit: Some("Percent".to_owned()),
        storage_resolution: high_resolution.then_some(1),
        ..MetricDatum::default()
    }
}

/// One period: every cluster's metrics, published in its scope.
fn publish_once(
    ecs: &berth_ecs::Ecs,
    cloudwatch: &CloudWatch,
    high_resolution: bool,
) -> Result<(), String> {
    let usage = ecs
        .cluster_usage(berth_store::now_epoch())
        .map_err(|e| e.to_string())?;
    for ((scope, cluster), usage) in usage {
        let metric_data: Vec<MetricDatum> = datums(&usage)
            .iter()
            .map(|d| metric_datum(&cluster, d, high_resolution))
            .collect();
        if metric_data.is_empty() {
            continue;
        }
        cloudwatch
            .publish(
                &CwScope::new(&scope.account.to_string(), &scope.region.to_string()),
                PutMetricData {
                    namespace: NAMESPACE.to_owned(),
                    metric_data,
                },
            )
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Publishes every `every` until `shutdown`.
pub async fn publish(
    ecs: berth_ecs::Ecs,
    cloudwatch: Arc<CloudWatch>,
    every: Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let high_resolution = crate::load_balancing::metrics::high_resolution(every);
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
        let (ecs, cloudwatch) = (ecs.clone(), cloudwatch.clone());
        match tokio::task::spawn_blocking(move || publish_once(&ecs, &cloudwatch, high_resolution))
            .await
        {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "ECS metrics not published"),
            Err(e) => tracing::warn!(error = %e, "publishing ECS metrics failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_metric_names_cluster_and_service_in_percent() {
        let d = UtilizationDatum {
            metric: "CPUUtilization",
            service: Some("web".into()),
            sample_count: 2.0,
            sum: 125.0,
            minimum: 25.0,
            maximum: 100.0,
        };
        let m = metric_datum("prod", &d, true);
        assert_eq!(m.metric_name, "CPUUtilization");
        let dims: Vec<(&str, &str)> = m
            .dimensions
            .iter()
            .map(|d| (d.name.as_str(), d.value.as_str()))
            .collect();
        assert_eq!(dims, [("ClusterName", "prod"), ("ServiceName", "web")]);
        assert_eq!(m.unit.as_deref(), Some("Percent"));
        assert_eq!(m.storage_resolution, Some(1));
        assert_eq!(m.value, None);
        let set = m.statistic_values.unwrap();
        assert_eq!(
            (set.sample_count, set.sum, set.minimum, set.maximum),
            (2.0, 125.0, 25.0, 100.0)
        );
        let cluster = UtilizationDatum { service: None, ..d };
        assert_eq!(metric_datum("prod", &cluster, false).dimensions.len(), 1);
        assert_eq!(
            metric_datum("prod", &cluster, false).storage_resolution,
            None
        );
    }
}
