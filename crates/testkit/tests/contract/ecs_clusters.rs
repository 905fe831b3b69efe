//! ECS clusters, in-process through the HTTP stack: create (idempotent, `default` when
//! unnamed), describe with `include`, list with pagination, settings, capacity providers,
//! tags, delete to INACTIVE, and ECS's errors.

use berth_testkit::{ACCOUNT_ID, REGION, TestServer, unique};
use serde_json::{Value, json};

fn arn(name: &str) -> String {
    format!("arn:aws:ecs:{REGION}:{ACCOUNT_ID}:cluster/{name}")
}

fn listed(s: &TestServer) -> Vec<Value> {
    s.ecs("ListClusters", json!({})).ok()["clusterArns"]
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn create_describe_list_delete() {
    let s = TestServer::start();
    let name = unique("ecs-");
    let created = s
        .ecs(
            "CreateCluster",
            json!({"clusterName": name, "tags": [{"key": "team", "value": "platform"}],
                   "settings": [{"name": "containerInsights", "value": "enabled"}]}),
        )
        .ok();
    let c = &created["cluster"];
    assert_eq!(c["clusterArn"], arn(&name));
    assert_eq!(c["clusterName"], name.as_str());
    assert_eq!(c["status"], "ACTIVE");
    for count in [
        "registeredContainerInstancesCount",
        "runningTasksCount",
        "pendingTasksCount",
        "activeServicesCount",
    ] {
        assert_eq!(c[count], 0, "{count}");
    }
    assert_eq!(c["tags"][0]["key"], "team");
    assert_eq!(c["settings"][0]["value"], "enabled");

    // CreateCluster is idempotent: the same cluster comes back.
    let again = s.ecs("CreateCluster", json!({"clusterName": name})).ok();
    assert_eq!(again["cluster"]["clusterArn"], arn(&name));
    assert_eq!(again["cluster"]["tags"][0]["value"], "platform");

    // Describe by name and by ARN; missing ones are failures, not errors.
    let d = s
        .ecs(
            "DescribeClusters",
            json!({"clusters": [name, arn(&name), "nope"],
                   "include": ["TAGS", "STATISTICS", "SETTINGS"]}),
        )
        .ok();
    assert_eq!(d["clusters"].as_array().unwrap().len(), 2);
    assert_eq!(d["clusters"][0]["tags"][0]["key"], "team");
    let stats: Vec<&str> = d["clusters"][0]["statistics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|kv| kv["name"].as_str().unwrap())
        .collect();
    assert!(stats.contains(&"runningFargateTasksCount"), "{stats:?}");
    assert_eq!(d["failures"][0]["arn"], arn("nope"));
    assert_eq!(d["failures"][0]["reason"], "MISSING");
    // Without include, no tags.
    let d = s.ecs("DescribeClusters", json!({"clusters": [name]})).ok();
    assert!(d["clusters"][0].get("tags").is_none(), "{d}");
    assert!(listed(&s).contains(&Value::from(arn(&name))));

    let deleted = s.ecs("DeleteCluster", json!({"cluster": name})).ok();
    assert_eq!(deleted["cluster"]["status"], "INACTIVE");
    // Still describable as INACTIVE, no longer listed, and gone for other operations.
    let d = s.ecs("DescribeClusters", json!({"clusters": [name]})).ok();
    assert_eq!(d["clusters"][0]["status"], "INACTIVE");
    assert!(!listed(&s).contains(&Value::from(arn(&name))));
    s.ecs("DeleteCluster", json!({"cluster": name}))
        .expect_error("ClusterNotFoundException");
    // The name can be used again.
    let re = s.ecs("CreateCluster", json!({"clusterName": name})).ok();
    assert_eq!(re["cluster"]["status"], "ACTIVE");
}

#[test]
fn default_cluster_and_pagination() {
    let s = TestServer::start();
    // Describing the default cluster before it exists is a MISSING failure.
    let d = s.ecs("DescribeClusters", json!({})).ok();
    assert_eq!(d["failures"][0]["arn"], arn("default"));
    // An unnamed CreateCluster makes `default`.
    let c = s.ecs("CreateCluster", json!({})).ok();
    assert_eq!(c["cluster"]["clusterName"], "default");
    let d = s.ecs("DescribeClusters", json!({})).ok();
    assert_eq!(d["clusters"][0]["clusterName"], "default");

    for i in 0..5 {
        s.ecs("CreateCluster", json!({"clusterName": format!("page-{i}")}))
            .ok();
    }
    // Pages of two, followed by nextToken, give all six once.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut request = json!({"maxResults": 2});
        if let Some(t) = &token {
            request["nextToken"] = Value::from(t.as_str());
        }
        let page = s.ecs("ListClusters", request).ok();
        let arns = page["clusterArns"].as_array().unwrap();
        assert!(arns.len() <= 2, "{page}");
        seen.extend(arns.iter().cloned());
        match page["nextToken"].as_str() {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 6, "{seen:?}");
    let mut unique_arns = seen.clone();
    unique_arns.sort_by_key(|a| a.to_string());
    unique_arns.dedup();
    assert_eq!(unique_arns.len(), 6);
}

#[test]
fn settings_capacity_providers_and_tags() {
    let s = TestServer::start();
    let name = unique("ecs-");
    s.ecs("CreateCluster", json!({"clusterName": name})).ok();
    let u = s
        .ecs(
            "UpdateClusterSettings",
            json!({"cluster": name, "settings": [{"name": "containerInsights", "value": "enhanced"}]}),
        )
        .ok();
    assert_eq!(u["cluster"]["settings"][0]["value"], "enhanced");
    s.ecs(
        "UpdateClusterSettings",
        json!({"cluster": name, "settings": [{"name": "bogus", "value": "enabled"}]}),
    )
    .expect_error("InvalidParameterException");

    let p = s
        .ecs(
            "PutClusterCapacityProviders",
            json!({"cluster": name, "capacityProviders": ["FARGATE", "FARGATE_SPOT"],
                   "defaultCapacityProviderStrategy": [
                       {"capacityProvider": "FARGATE", "weight": 1, "base": 1},
                       {"capacityProvider": "FARGATE_SPOT", "weight": 4}]}),
        )
        .ok();
    assert_eq!(p["cluster"]["capacityProviders"][1], "FARGATE_SPOT");
    assert_eq!(
        p["cluster"]["defaultCapacityProviderStrategy"][1]["weight"],
        4
    );
    s.ecs(
        "PutClusterCapacityProviders",
        json!({"cluster": name, "capacityProviders": ["NOPE"],
               "defaultCapacityProviderStrategy": [{"capacityProvider": "NOPE", "weight": 1}]}),
    )
    .expect_error("InvalidParameterException");
    let cps = s.ecs("DescribeCapacityProviders", json!({})).ok();
    assert_eq!(cps["capacityProviders"].as_array().unwrap().len(), 2);

    s.ecs(
        "TagResource",
        json!({"resourceArn": arn(&name),
               "tags": [{"key": "a", "value": "1"}, {"key": "b", "value": "2"}]}),
    )
    .ok();
    s.ecs(
        "UntagResource",
        json!({"resourceArn": arn(&name), "tagKeys": ["a"]}),
    )
    .ok();
    let t = s
        .ecs("ListTagsForResource", json!({"resourceArn": arn(&name)}))
        .ok();
    assert_eq!(t["tags"], json!([{"key": "b", "value": "2"}]));
    s.ecs(
        "ListTagsForResource",
        json!({"resourceArn": arn("missing")}),
    )
    .expect_error("ClusterNotFoundException");
}

#[test]
fn invalid_names_and_regions() {
    let s = TestServer::start();
    s.ecs("CreateCluster", json!({"clusterName": "bad name!"}))
        .expect_error("InvalidParameterException");
    s.ecs(
        "UpdateClusterSettings",
        json!({"cluster": "ghost", "settings": [{"name": "containerInsights", "value": "enabled"}]}),
    )
    .expect_error("ClusterNotFoundException");
    // Clusters live per region.
    let name = unique("ecs-");
    s.ecs("CreateCluster", json!({"clusterName": name})).ok();
    let d = s
        .call_in(
            "eu-west-1",
            "ecs",
            &format!("{}.DescribeClusters", berth_testkit::ECS_TARGET),
            json!({"clusters": [name]}),
        )
        .ok();
    assert_eq!(d["failures"][0]["reason"], "MISSING");
}
