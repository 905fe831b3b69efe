//! ECS clusters through the real `aws` CLI: create (idempotent, `default` when unnamed),
//! describe with `include`, list with pagination, settings, capacity providers, tags,
//! delete to INACTIVE, and ECS's errors.

use berth_e2e::{ACCOUNT_ID, BerthServer, REGION, assert_aws_error, ok_json, unique};
use serde_json::Value;

fn arn(name: &str) -> String {
    format!("arn:aws:ecs:{REGION}:{ACCOUNT_ID}:cluster/{name}")
}

#[test]
fn create_describe_list_delete() {
    let s = BerthServer::start();
    let name = unique("ecs-");
    let created = ok_json(&s.aws(&[
        "ecs",
        "create-cluster",
        "--cluster-name",
        &name,
        "--tags",
        "key=team,value=platform",
        "--settings",
        "name=containerInsights,value=enabled",
    ]));
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
    let again = ok_json(&s.aws(&["ecs", "create-cluster", "--cluster-name", &name]));
    assert_eq!(again["cluster"]["clusterArn"], arn(&name));
    assert_eq!(again["cluster"]["tags"][0]["value"], "platform");

    // Describe by name and by ARN; missing ones are failures, not errors.
    let d = ok_json(&s.aws(&[
        "ecs",
        "describe-clusters",
        "--clusters",
        &name,
        &arn(&name),
        "nope",
        "--include",
        "TAGS",
        "STATISTICS",
        "SETTINGS",
    ]));
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
    let d = ok_json(&s.aws(&["ecs", "describe-clusters", "--clusters", &name]));
    assert!(d["clusters"][0].get("tags").is_none(), "{d}");

    let listed = ok_json(&s.aws(&["ecs", "list-clusters"]));
    assert!(
        listed["clusterArns"]
            .as_array()
            .unwrap()
            .contains(&Value::from(arn(&name)))
    );

    let deleted = ok_json(&s.aws(&["ecs", "delete-cluster", "--cluster", &name]));
    assert_eq!(deleted["cluster"]["status"], "INACTIVE");
    // Still describable as INACTIVE, no longer listed, and gone for other operations.
    let d = ok_json(&s.aws(&["ecs", "describe-clusters", "--clusters", &name]));
    assert_eq!(d["clusters"][0]["status"], "INACTIVE");
    let listed = ok_json(&s.aws(&["ecs", "list-clusters"]));
    assert!(
        !listed["clusterArns"]
            .as_array()
            .unwrap()
            .contains(&Value::from(arn(&name)))
    );
    assert_aws_error(
        &s.aws(&["ecs", "delete-cluster", "--cluster", &name]),
        "ClusterNotFoundException",
    );
    // The name can be used again.
    let re = ok_json(&s.aws(&["ecs", "create-cluster", "--cluster-name", &name]));
    assert_eq!(re["cluster"]["status"], "ACTIVE");
}

#[test]
fn default_cluster_and_pagination() {
    let s = BerthServer::start();
    // Describing the default cluster before it exists is a MISSING failure.
    let d = ok_json(&s.aws(&["ecs", "describe-clusters"]));
    assert_eq!(d["failures"][0]["arn"], arn("default"));
    // An unnamed CreateCluster makes `default`.
    let c = ok_json(&s.aws(&["ecs", "create-cluster"]));
    assert_eq!(c["cluster"]["clusterName"], "default");
    let d = ok_json(&s.aws(&["ecs", "describe-clusters"]));
    assert_eq!(d["clusters"][0]["clusterName"], "default");

    for i in 0..5 {
        ok_json(&s.aws(&[
            "ecs",
            "create-cluster",
            "--cluster-name",
            &format!("page-{i}"),
        ]));
    }
    // The CLI follows nextToken itself when asked for small pages.
    let all = ok_json(&s.aws(&["ecs", "list-clusters", "--page-size", "2"]));
    assert_eq!(all["clusterArns"].as_array().unwrap().len(), 6, "{all}");
    let first = ok_json(&s.aws(&["ecs", "list-clusters", "--max-items", "2"]));
    assert_eq!(first["clusterArns"].as_array().unwrap().len(), 2);
    let token = first["NextToken"].as_str().expect("a next token");
    let rest = ok_json(&s.aws(&["ecs", "list-clusters", "--starting-token", token]));
    assert_eq!(rest["clusterArns"].as_array().unwrap().len(), 4);
}

#[test]
fn settings_capacity_providers_and_tags() {
    let s = BerthServer::start();
    let name = unique("ecs-");
    ok_json(&s.aws(&["ecs", "create-cluster", "--cluster-name", &name]));
    let u = ok_json(&s.aws(&[
        "ecs",
        "update-cluster-settings",
        "--cluster",
        &name,
        "--settings",
        "name=containerInsights,value=enhanced",
    ]));
    assert_eq!(u["cluster"]["settings"][0]["value"], "enhanced");
    assert_aws_error(
        &s.aws(&[
            "ecs",
            "update-cluster-settings",
            "--cluster",
            &name,
            "--settings",
            "name=bogus,value=enabled",
        ]),
        "InvalidParameterException",
    );

    let p = ok_json(&s.aws(&[
        "ecs",
        "put-cluster-capacity-providers",
        "--cluster",
        &name,
        "--capacity-providers",
        "FARGATE",
        "FARGATE_SPOT",
        "--default-capacity-provider-strategy",
        "capacityProvider=FARGATE,weight=1,base=1",
        "capacityProvider=FARGATE_SPOT,weight=4",
    ]));
    assert_eq!(p["cluster"]["capacityProviders"][1], "FARGATE_SPOT");
    assert_eq!(
        p["cluster"]["defaultCapacityProviderStrategy"][1]["weight"],
        4
    );
    assert_aws_error(
        &s.aws(&[
            "ecs",
            "put-cluster-capacity-providers",
            "--cluster",
            &name,
            "--capacity-providers",
            "NOPE",
            "--default-capacity-provider-strategy",
            "capacityProvider=NOPE,weight=1",
        ]),
        "InvalidParameterException",
    );
    let cps = ok_json(&s.aws(&["ecs", "describe-capacity-providers"]));
    assert_eq!(cps["capacityProviders"].as_array().unwrap().len(), 2);

    ok_json(&s.aws(&[
        "ecs",
        "tag-resource",
        "--resource-arn",
        &arn(&name),
        "--tags",
        "key=a,value=1",
        "key=b,value=2",
    ]));
    ok_json(&s.aws(&[
        "ecs",
        "untag-resource",
        "--resource-arn",
        &arn(&name),
        "--tag-keys",
        "a",
    ]));
    let t = ok_json(&s.aws(&[
        "ecs",
        "list-tags-for-resource",
        "--resource-arn",
        &arn(&name),
    ]));
    assert_eq!(t["tags"], serde_json::json!([{"key": "b", "value": "2"}]));
    assert_aws_error(
        &s.aws(&[
            "ecs",
            "list-tags-for-resource",
            "--resource-arn",
            &arn("missing"),
        ]),
        "ClusterNotFoundException",
    );
}

#[test]
fn invalid_names_and_regions() {
    let s = BerthServer::start();
    assert_aws_error(
        &s.aws(&["ecs", "create-cluster", "--cluster-name", "bad name!"]),
        "InvalidParameterException",
    );
    assert_aws_error(
        &s.aws(&[
            "ecs",
            "update-cluster-settings",
            "--cluster",
            "ghost",
            "--settings",
            "name=containerInsights,value=enabled",
        ]),
        "ClusterNotFoundException",
    );
    // Clusters live per region.
    let name = unique("ecs-");
    ok_json(&s.aws(&["ecs", "create-cluster", "--cluster-name", &name]));
    let d = ok_json(&s.aws_in(
        "eu-west-1",
        &["ecs", "describe-clusters", "--clusters", &name],
    ));
    assert_eq!(d["failures"][0]["reason"], "MISSING");
}
