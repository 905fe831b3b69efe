//! A service as the end-to-end tests look at it through the `aws` CLI.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::docker_agent::{describe_tasks, wait_for};
use crate::{BerthServer, ok_json, unique};

pub struct Svc<'a> {
    pub s: &'a BerthServer,
    pub cluster: String,
    pub name: String,
}

impl<'a> Svc<'a> {
    /// Waits (up to `limit`) for the service `name` to want and run `count` tasks.
    pub fn wait_running(
        s: &'a BerthServer,
        cluster: &str,
        name: &str,
        count: i64,
        limit: std::time::Duration,
    ) -> Svc<'a> {
        let svc = Svc {
            s,
            cluster: cluster.to_string(),
            name: name.to_string(),
        };
        wait_for(
            &format!("the service to reach {count} RUNNING tasks"),
            limit,
            || {
                let d = svc.describe();
                (d["desiredCount"] == count && d["runningCount"] == count).then_some(d)
            },
        );
        svc
    }

    pub fn describe(&self) -> Value {
        let v = ok_json(&self.s.aws(&[
            "ecs",
            "describe-services",
            "--cluster",
            &self.cluster,
            "--services",
            &self.name,
        ]));
        v["services"][0].clone()
    }

    /// The ARNs of the service's tasks of this desired status.
    pub fn task_arns(&self, desired: &str) -> Vec<String> {
        let v = ok_json(&self.s.aws(&[
            "ecs",
            "list-tasks",
            "--cluster",
            &self.cluster,
            "--service-name",
            &self.name,
            "--desired-status",
            desired,
        ]));
        v["taskArns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_owned())
            .collect()
    }

    /// The service's tasks of this desired status, described.
    pub fn tasks(&self, desired: &str) -> Vec<Value> {
        self.described(self.task_arns(desired))
    }

    /// Every task of the service (both desired statuses), in one DescribeTasks.
    pub fn all_tasks(&self) -> Vec<Value> {
        let arns: BTreeSet<String> = ["RUNNING", "STOPPED"]
            .iter()
            .flat_map(|desired| self.task_arns(desired))
            .collect();
        self.described(arns.into_iter().collect())
    }

    fn described(&self, arns: Vec<String>) -> Vec<Value> {
        if arns.is_empty() {
            return Vec::new();
        }
        describe_tasks(self.s, &self.cluster, &arns)
    }

    /// The messages of its events, newest first.
    pub fn events(&self) -> Vec<String> {
        self.describe()["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["message"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// `aws ecs create-service` of `desired` Fargate tasks of `task_definition` in `cluster`, on
/// `subnet`, with `extra` arguments: the new service's name (unique, starting with `prefix`).
pub fn create_fargate_service(
    s: &BerthServer,
    cluster: &str,
    prefix: &str,
    task_definition: &str,
    desired: usize,
    subnet: &str,
    extra: &[&str],
) -> String {
    let name = unique(prefix);
    let (desired, network) = (
        desired.to_string(),
        format!("awsvpcConfiguration={{subnets=[{subnet}]}}"),
    );
    let mut args = vec![
        "ecs",
        "create-service",
        "--cluster",
        cluster,
        "--service-name",
        &name,
        "--task-definition",
        task_definition,
        "--desired-count",
        &desired,
        "--launch-type",
        "FARGATE",
        "--network-configuration",
        &network,
    ];
    args.extend_from_slice(extra);
    ok_json(&s.aws(&args));
    name
}
