//! ECS container instances, in-process through the HTTP stack, registered through the API
//! as an agent registers them: resources with ECS's reserved ports, attributes,
//! describe/list, draining, custom attributes, deregistration, and the cluster's live count.

use berth_testkit::ecs::{self, Instance, cluster_count, list_all, list_paged, resource};
use berth_testkit::{ACCOUNT_ID, REGION, TestServer, unique};
use serde_json::{Value, json};

/// An instance as the official agent registers one: ECS's reserved ports, the OS, a zone
/// and a capability, and the agent's version.
fn agent_instance(zone: &str) -> Instance {
    ecs::instance(2048, 3768)
        .ports(&["22", "2375", "2376", "51678", "51679"])
        .udp_ports(&[])
        .attribute("ecs.os-type", Some("linux"))
        .zone(zone)
        .attribute("ecs.capability.docker-remote-api.1.17", None)
        .version_info(json!({"agentVersion": "1.82.0", "agentHash": "abc",
                             "dockerVersion": "DockerVersion: 20.10.24"}))
}

fn list_instances(s: &TestServer, request: Value) -> Vec<Value> {
    list_all(
        s,
        "ListContainerInstances",
        request,
        "containerInstanceArns",
    )
}

#[test]
fn register_describe_drain_deregister() {
    let s = TestServer::start();
    let cluster = unique("ci-");
    ecs::create_cluster(&s, &cluster);
    let ci = agent_instance("us-east-1a").register(&s, &cluster);
    let arn = ci["containerInstanceArn"].as_str().unwrap().to_string();
    let prefix = format!("arn:aws:ecs:{REGION}:{ACCOUNT_ID}:container-instance/{cluster}/");
    assert!(arn.starts_with(&prefix), "{arn}");
    let id = arn.strip_prefix(&prefix).unwrap().to_string();
    assert_eq!(id.len(), 32);
    assert_eq!(ci["status"], "ACTIVE");
    assert_eq!(ci["agentConnected"], true);
    assert_eq!(
        resource(&ci["registeredResources"], "CPU")["integerValue"],
        2048
    );
    assert_eq!(
        resource(&ci["remainingResources"], "MEMORY")["integerValue"],
        3768
    );
    let ports = resource(&ci["registeredResources"], "PORTS")["stringSetValue"].clone();
    assert!(ports.as_array().unwrap().contains(&Value::from("51678")));
    assert_eq!(ci["versionInfo"]["agentVersion"], "1.82.0");

    // The cluster counts it, and it cannot be deleted while the instance is there.
    assert_eq!(
        cluster_count(&s, &cluster, "registeredContainerInstancesCount"),
        1
    );
    s.ecs("DeleteCluster", json!({"cluster": cluster}))
        .expect_error("ClusterContainsContainerInstancesException");

    // Describe by ID and by ARN; unknown ones are MISSING.
    let d = s
        .ecs(
            "DescribeContainerInstances",
            json!({"cluster": cluster,
                   "containerInstances": [id, arn, "0123456789abcdef0123456789abcdef"]}),
        )
        .ok();
    assert_eq!(d["containerInstances"].as_array().unwrap().len(), 2);
    assert_eq!(d["failures"][0]["reason"], "MISSING");

    // Drain, list by status, back to ACTIVE.
    let u = s
        .ecs(
            "UpdateContainerInstancesState",
            json!({"cluster": cluster, "containerInstances": [id], "status": "DRAINING"}),
        )
        .ok();
    assert_eq!(u["containerInstances"][0]["status"], "DRAINING");
    assert!(
        u["containerInstances"][0]["version"].as_i64().unwrap() > ci["version"].as_i64().unwrap()
    );
    let l = list_instances(&s, json!({"cluster": cluster, "status": "DRAINING"}));
    assert_eq!(Value::from(l), json!([arn]));
    let l = list_instances(&s, json!({"cluster": cluster, "status": "ACTIVE"}));
    assert_eq!(Value::from(l), json!([]));

    let dereg = s
        .ecs(
            "DeregisterContainerInstance",
            json!({"cluster": cluster, "containerInstance": id}),
        )
        .ok();
    assert_eq!(dereg["containerInstance"]["status"], "INACTIVE");
    assert_eq!(
        cluster_count(&s, &cluster, "registeredContainerInstancesCount"),
        0
    );
    // Still describable, now INACTIVE.
    assert_eq!(
        ecs::describe_instance(&s, &cluster, &id)["status"],
        "INACTIVE"
    );
    s.ecs("DeleteCluster", json!({"cluster": cluster})).ok();
}

#[test]
fn attributes_and_pagination() {
    let s = TestServer::start();
    let cluster = unique("ci-");
    ecs::create_cluster(&s, &cluster);
    let a = agent_instance("us-east-1a").register_arn(&s, &cluster);
    let b = agent_instance("us-east-1b").register_arn(&s, &cluster);
    let put = s
        .ecs(
            "PutAttributes",
            json!({"cluster": cluster, "attributes": [
                {"name": "stack", "value": "prod", "targetId": a},
                {"name": "stack", "value": "test", "targetId": b}]}),
        )
        .ok();
    assert_eq!(put["attributes"].as_array().unwrap().len(), 2);
    let list_attributes = |request: Value| list_all(&s, "ListAttributes", request, "attributes");
    let listed = list_attributes(
        json!({"cluster": cluster, "targetType": "container-instance",
                                        "attributeName": "stack", "attributeValue": "prod"}),
    );
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["targetId"], a.as_str());
    s.ecs(
        "DeleteAttributes",
        json!({"cluster": cluster, "attributes": [{"name": "stack", "targetId": a}]}),
    )
    .ok();
    let all = list_attributes(
        json!({"cluster": cluster, "targetType": "container-instance",
                                     "attributeName": "stack"}),
    );
    assert_eq!(all.len(), 1);
    s.ecs(
        "PutAttributes",
        json!({"cluster": cluster,
               "attributes": [{"name": "bad name!", "value": "x", "targetId": a}]}),
    )
    .expect_error("InvalidParameterException");
    // Page through the instances one at a time (the CLI's `--page-size 1` followed
    // nextToken; here each page is checked to hold at most one).
    let paged = list_paged(
        &s,
        "ListContainerInstances",
        json!({"cluster": cluster}),
        "containerInstanceArns",
        1,
    );
    assert_eq!(paged.len(), 2);
    let mut distinct = ecs::strings(&paged);
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 2, "{paged:?}");
    s.ecs("ListContainerInstances", json!({"cluster": "ghost"}))
        .expect_error("ClusterNotFoundException");
    // The cluster query language.
    let zone_b = list_instances(
        &s,
        json!({"cluster": cluster, "filter": "attribute:ecs.availability-zone == us-east-1b"}),
    );
    assert_eq!(Value::from(zone_b), json!([b]));
    let both = list_instances(
        &s,
        json!({"cluster": cluster,
               "filter": "attribute:ecs.availability-zone in [us-east-1a, us-east-1b] and attribute:stack == test"}),
    );
    assert_eq!(Value::from(both), json!([b]));
    s.ecs(
        "ListContainerInstances",
        json!({"cluster": cluster, "filter": "attribute:ecs.availability-zone =="}),
    )
    .expect_error("InvalidParameterException");
}

#[test]
fn registering_without_a_cluster_creates_default() {
    let s = TestServer::start();
    // What `aws ecs register-container-instance` with no options sends.
    let ci = s.ecs("RegisterContainerInstance", json!({})).ok();
    assert!(
        ci["containerInstance"]["containerInstanceArn"]
            .as_str()
            .unwrap()
            .contains(":container-instance/default/")
    );
    let d = s.ecs("DescribeClusters", json!({})).ok();
    assert_eq!(d["clusters"][0]["registeredContainerInstancesCount"], 1);
}

/// An agent configured with `--cluster default` on a fresh server: `default` appears.
#[test]
fn registering_into_default_by_name_creates_it() {
    let s = TestServer::start();
    s.ecs("RegisterContainerInstance", json!({"cluster": "default"}))
        .ok();
    let d = s
        .ecs("DescribeClusters", json!({"clusters": ["default"]}))
        .ok();
    assert_eq!(d["clusters"][0]["status"], "ACTIVE");
    assert_eq!(d["clusters"][0]["registeredContainerInstancesCount"], 1);
    // Any other unknown cluster is still an error.
    s.ecs("RegisterContainerInstance", json!({"cluster": "nope"}))
        .expect_error("ClusterNotFoundException");
}
