//! ECS fixtures for the contract tests that run against a [`TestServer`]: clusters,
//! container instances registered through the API as an agent registers them, task
//! definitions, tasks run and described, resource look-ups, and list calls followed to
//! the end (as the `aws` CLI follows `nextToken`).

use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use crate::TestServer;

/// Creates the cluster `name`; its `cluster`.
#[track_caller]
pub fn create_cluster(s: &TestServer, name: &str) -> Value {
    s.ecs("CreateCluster", json!({"clusterName": name})).ok()["cluster"].clone()
}

/// The cluster `name` as DescribeClusters shows it (fails the test when it is missing).
#[track_caller]
pub fn describe_cluster(s: &TestServer, name: &str) -> Value {
    let d = s.ecs("DescribeClusters", json!({"clusters": [name]})).ok();
    assert!(d["clusters"][0].is_object(), "no cluster {name}: {d}");
    d["clusters"][0].clone()
}

/// One of the cluster's counts (`runningTasksCount`, `pendingTasksCount`, …).
#[track_caller]
pub fn cluster_count(s: &TestServer, cluster: &str, field: &str) -> i64 {
    describe_cluster(s, cluster)[field]
        .as_i64()
        .unwrap_or_else(|| panic!("no {field} on {cluster}"))
}

/// What RegisterContainerInstance says about an instance: its resources, attributes and
/// version. Built up, then registered with [`Instance::register`].
#[derive(Debug, Clone)]
pub struct Instance {
    cpu: i64,
    memory: i64,
    ports: Option<Vec<String>>,
    udp_ports: Option<Vec<String>>,
    attributes: Vec<Value>,
    version_info: Option<Value>,
}

/// An instance with `cpu` units and `memory` MiB (and no PORTS resource until
/// [`Instance::ports`]).
pub fn instance(cpu: i64, memory: i64) -> Instance {
    Instance {
        cpu,
        memory,
        ports: None,
        udp_ports: None,
        attributes: Vec::new(),
        version_info: None,
    }
}

impl Instance {
    /// The reserved TCP ports (the PORTS resource).
    pub fn ports(mut self, ports: &[&str]) -> Instance {
        self.ports = Some(ports.iter().map(|p| (*p).to_owned()).collect());
        self
    }

    /// The reserved UDP ports (the PORTS_UDP resource).
    pub fn udp_ports(mut self, ports: &[&str]) -> Instance {
        self.udp_ports = Some(ports.iter().map(|p| (*p).to_owned()).collect());
        self
    }

    /// An attribute, with a value or without one (a capability).
    pub fn attribute(mut self, name: &str, value: Option<&str>) -> Instance {
        let mut a = json!({"name": name});
        if let Some(v) = value {
            a["value"] = Value::from(v);
        }
        self.attributes.push(a);
        self
    }

    /// The `ecs.availability-zone` attribute.
    pub fn zone(self, zone: &str) -> Instance {
        self.attribute("ecs.availability-zone", Some(zone))
    }

    /// The agent's `versionInfo`.
    pub fn version_info(mut self, version: Value) -> Instance {
        self.version_info = Some(version);
        self
    }

    /// The RegisterContainerInstance request for `cluster`.
    pub fn request(&self, cluster: &str) -> Value {
        let mut resources = vec![
            json!({"name": "CPU", "type": "INTEGER", "integerValue": self.cpu}),
            json!({"name": "MEMORY", "type": "INTEGER", "integerValue": self.memory}),
        ];
        if let Some(ports) = &self.ports {
            resources.push(json!({"name": "PORTS", "type": "STRINGSET", "stringSetValue": ports}));
        }
        if let Some(ports) = &self.udp_ports {
            resources
                .push(json!({"name": "PORTS_UDP", "type": "STRINGSET", "stringSetValue": ports}));
        }
        let mut request = json!({"cluster": cluster, "totalResources": resources});
        if !self.attributes.is_empty() {
            request["attributes"] = Value::from(self.attributes.clone());
        }
        if let Some(v) = &self.version_info {
            request["versionInfo"] = v.clone();
        }
        request
    }

    /// Registers it in `cluster`; the `containerInstance`.
    #[track_caller]
    pub fn register(&self, s: &TestServer, cluster: &str) -> Value {
        s.ecs("RegisterContainerInstance", self.request(cluster))
            .ok()["containerInstance"]
            .clone()
    }

    /// Registers it in `cluster`; its ARN.
    #[track_caller]
    pub fn register_arn(&self, s: &TestServer, cluster: &str) -> String {
        arn_of(&self.register(s, cluster), "containerInstanceArn")
    }
}

/// A new cluster named `prefix` + a unique suffix with one instance like `spec` in each of
/// `zones`: the cluster's name and the instances' ARNs, in the zones' order.
#[track_caller]
pub fn cluster_with_instances(
    s: &TestServer,
    prefix: &str,
    spec: &Instance,
    zones: &[&str],
) -> (String, Vec<String>) {
    let cluster = crate::unique(prefix);
    create_cluster(s, &cluster);
    let instances = zones
        .iter()
        .map(|z| spec.clone().zone(z).register_arn(s, &cluster))
        .collect();
    (cluster, instances)
}

/// The container instance as DescribeContainerInstances shows it.
#[track_caller]
pub fn describe_instance(s: &TestServer, cluster: &str, instance: &str) -> Value {
    let d = s
        .ecs(
            "DescribeContainerInstances",
            json!({"cluster": cluster, "containerInstances": [instance]}),
        )
        .ok();
    assert!(
        d["containerInstances"][0].is_object(),
        "no instance {instance}: {d}"
    );
    d["containerInstances"][0].clone()
}

/// Whether DescribeContainerInstances shows the instance's agent as connected.
#[track_caller]
pub fn agent_connected(s: &TestServer, cluster: &str, instance: &str) -> bool {
    describe_instance(s, cluster, instance)["agentConnected"]
        .as_bool()
        .unwrap()
}

/// The resource `name` of a resource list (`registeredResources`, `remainingResources`).
#[track_caller]
pub fn resource<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array()
        .unwrap_or_else(|| panic!("not a resource list: {list}"))
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {list}"))
}

/// An INTEGER resource's value.
#[track_caller]
pub fn integer(list: &Value, name: &str) -> i64 {
    resource(list, name)["integerValue"]
        .as_i64()
        .unwrap_or_else(|| panic!("{name} is no integer in {list}"))
}

/// A STRINGSET resource's values (none when it has no `stringSetValue`).
#[track_caller]
pub fn string_set(list: &Value, name: &str) -> Vec<String> {
    resource(list, name)["stringSetValue"]
        .as_array()
        .map(|a| a.iter().map(|p| p.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

/// What remains of an instance's resource `name`: `integerValue` for CPU and MEMORY,
/// `stringSetValue` for PORTS and PORTS_UDP.
#[track_caller]
pub fn remaining(s: &TestServer, cluster: &str, instance: &str, name: &str) -> Value {
    let ci = describe_instance(s, cluster, instance);
    let r = resource(&ci["remainingResources"], name);
    if name.starts_with("PORTS") {
        r["stringSetValue"].clone()
    } else {
        r["integerValue"].clone()
    }
}

/// Registers a task definition; the whole answer (`taskDefinition`, `tags`).
#[track_caller]
pub fn register_task_definition(s: &TestServer, definition: Value) -> Value {
    s.ecs("RegisterTaskDefinition", definition).ok()
}

/// Registers a task definition; its ARN.
#[track_caller]
pub fn register_task_definition_arn(s: &TestServer, definition: Value) -> String {
    arn_of(
        &register_task_definition(s, definition)["taskDefinition"],
        "taskDefinitionArn",
    )
}

/// A task definition of one container `name` (`image`, `memory` MiB) and nothing else.
pub fn single_container(family: &str, name: &str, image: &str, memory: i64) -> Value {
    json!({"family": family,
           "containerDefinitions": [{"name": name, "image": image, "memory": memory}]})
}

/// A bridge-mode task definition of one container `web` (`web:1`, `cpu` units, `memory`
/// MiB) with container port 80 on `host_port` (0: a dynamic one).
pub fn bridge_web(family: &str, cpu: i64, memory: i64, host_port: u16) -> Value {
    json!({"family": family, "networkMode": "bridge", "containerDefinitions": [
        {"name": "web", "image": "web:1", "cpu": cpu, "memory": memory,
         "portMappings": [{"containerPort": 80, "hostPort": host_port}]}]})
}

/// RunTask of `task_definition` in `cluster`, with `extra` fields (`count`,
/// `placementStrategy`, …) added to the request; the answer (`tasks`, `failures`).
#[track_caller]
pub fn run_task(s: &TestServer, cluster: &str, task_definition: &str, extra: Value) -> Value {
    s.ecs(
        "RunTask",
        with(
            json!({"cluster": cluster, "taskDefinition": task_definition}),
            extra,
        ),
    )
    .ok()
}

/// The task as DescribeTasks shows it (fails the test when it is missing).
#[track_caller]
pub fn describe_task(s: &TestServer, cluster: &str, task: &str) -> Value {
    let d = s
        .ecs(
            "DescribeTasks",
            json!({"cluster": cluster, "tasks": [task]}),
        )
        .ok();
    assert!(d["tasks"][0].is_object(), "no task {task}: {d}");
    d["tasks"][0].clone()
}

/// The agent's SubmitTaskStateChange of a task to `status`; the answer.
#[track_caller]
pub fn submit_task_state(s: &TestServer, cluster: &str, task: &str, status: &str) -> Value {
    s.ecs(
        "SubmitTaskStateChange",
        json!({"cluster": cluster, "task": task, "status": status}),
    )
    .ok()
}

/// Every item under `key` of a list operation, following `nextToken` to the end as the
/// `aws` CLI does for its paginated commands.
#[track_caller]
pub fn list_all(s: &TestServer, operation: &str, request: Value, key: &str) -> Vec<Value> {
    pages(s, operation, request, key, None)
}

/// [`list_all`] in pages of `page_size` (`maxResults`), as the CLI's `--page-size` asks:
/// no page may hold more.
#[track_caller]
pub fn list_paged(
    s: &TestServer,
    operation: &str,
    request: Value,
    key: &str,
    page_size: usize,
) -> Vec<Value> {
    pages(s, operation, request, key, Some(page_size))
}

#[track_caller]
fn pages(
    s: &TestServer,
    operation: &str,
    request: Value,
    key: &str,
    page_size: Option<usize>,
) -> Vec<Value> {
    let mut items = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..10_000 {
        let mut request = request.clone();
        if let Some(n) = page_size {
            request["maxResults"] = Value::from(n);
        }
        if let Some(t) = &token {
            request["nextToken"] = Value::from(t.as_str());
        }
        let page = s.ecs(operation, request).ok();
        let got = page[key]
            .as_array()
            .unwrap_or_else(|| panic!("{operation}: no {key} in {page}"));
        if let Some(n) = page_size {
            assert!(got.len() <= n, "{operation}: a page over {n}: {page}");
        }
        items.extend(got.iter().cloned());
        match page["nextToken"].as_str() {
            Some(t) if !t.is_empty() => token = Some(t.to_owned()),
            _ => return items,
        }
    }
    panic!("{operation}: nextToken never ends");
}

/// The ARNs (strings) of [`list_all`]'s items.
pub fn strings(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|v| {
            v.as_str()
                .unwrap_or_else(|| panic!("not a string: {v}"))
                .to_owned()
        })
        .collect()
}

/// `base` with every field of `extra` (an object, or null for none) set on it.
pub fn with(mut base: Value, extra: Value) -> Value {
    if let Value::Object(fields) = extra {
        let object: &mut Map<String, Value> = base.as_object_mut().expect("an object");
        object.extend(fields);
    }
    base
}

/// Polls `check` every 100 ms until it holds; fails the test after `timeout`.
#[track_caller]
pub fn wait_for(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

#[track_caller]
fn arn_of(v: &Value, field: &str) -> String {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {v}"))
        .to_owned()
}
