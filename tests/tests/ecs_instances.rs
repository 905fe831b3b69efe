//! ECS container instances through the real `aws` CLI, registered through the API as an
//! agent registers them: resources with ECS's reserved ports, attributes, describe/list,
//! draining, custom attributes, deregistration, and the cluster's live count.

use berth_e2e::{ACCOUNT_ID, BerthServer, REGION, assert_aws_error, ok_json, unique};
use serde_json::Value;

fn register(s: &BerthServer, cluster: &str, zone: &str) -> Value {
    let resources = r#"[{"name":"CPU","type":"INTEGER","integerValue":2048},
        {"name":"MEMORY","type":"INTEGER","integerValue":3768},
        {"name":"PORTS","type":"STRINGSET","stringSetValue":["22","2375","2376","51678","51679"]},
        {"name":"PORTS_UDP","type":"STRINGSET","stringSetValue":[]}]"#;
    let attributes = format!(
        r#"[{{"name":"ecs.os-type","value":"linux"}},{{"name":"ecs.availability-zone","value":"{zone}"}},{{"name":"ecs.capability.docker-remote-api.1.17"}}]"#
    );
    ok_json(&s.aws(&[
        "ecs",
        "register-container-instance",
        "--cluster",
        cluster,
        "--total-resources",
        resources,
        "--attributes",
        &attributes,
        "--version-info",
        "agentVersion=1.82.0,agentHash=abc,dockerVersion=DockerVersion: 20.10.24",
    ]))["containerInstance"]
        .clone()
}

fn resource<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {list}"))
}

#[test]
fn register_describe_drain_deregister() {
    let s = BerthServer::start();
    let cluster = unique("ci-");
    ok_json(&s.aws(&["ecs", "create-cluster", "--cluster-name", &cluster]));
    let ci = register(&s, &cluster, "us-east-1a");
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
    let d = ok_json(&s.aws(&["ecs", "describe-clusters", "--clusters", &cluster]));
    assert_eq!(d["clusters"][0]["registeredContainerInstancesCount"], 1);
    assert_aws_error(
        &s.aws(&["ecs", "delete-cluster", "--cluster", &cluster]),
        "ClusterContainsContainerInstancesException",
    );

    // Describe by ID and by ARN; unknown ones are MISSING.
    let d = ok_json(&s.aws(&[
        "ecs",
        "describe-container-instances",
        "--cluster",
        &cluster,
        "--container-instances",
        &id,
        &arn,
        "0123456789abcdef0123456789abcdef",
    ]));
    assert_eq!(d["containerInstances"].as_array().unwrap().len(), 2);
    assert_eq!(d["failures"][0]["reason"], "MISSING");

    // Drain, list by status, back to ACTIVE.
    let u = ok_json(&s.aws(&[
        "ecs",
        "update-container-instances-state",
        "--cluster",
        &cluster,
        "--container-instances",
        &id,
        "--status",
        "DRAINING",
    ]));
    assert_eq!(u["containerInstances"][0]["status"], "DRAINING");
    assert!(
        u["containerInstances"][0]["version"].as_i64().unwrap() > ci["version"].as_i64().unwrap()
    );
    let l = ok_json(&s.aws(&[
        "ecs",
        "list-container-instances",
        "--cluster",
        &cluster,
        "--status",
        "DRAINING",
    ]));
    assert_eq!(l["containerInstanceArns"], serde_json::json!([arn]));
    let l = ok_json(&s.aws(&[
        "ecs",
        "list-container-instances",
        "--cluster",
        &cluster,
        "--status",
        "ACTIVE",
    ]));
    assert_eq!(l["containerInstanceArns"], serde_json::json!([]));

    let dereg = ok_json(&s.aws(&[
        "ecs",
        "deregister-container-instance",
        "--cluster",
        &cluster,
        "--container-instance",
        &id,
    ]));
    assert_eq!(dereg["containerInstance"]["status"], "INACTIVE");
    let d = ok_json(&s.aws(&["ecs", "describe-clusters", "--clusters", &cluster]));
    assert_eq!(d["clusters"][0]["registeredContainerInstancesCount"], 0);
    // Still describable, now INACTIVE.
    let d = ok_json(&s.aws(&[
        "ecs",
        "describe-container-instances",
        "--cluster",
        &cluster,
        "--container-instances",
        &id,
    ]));
    assert_eq!(d["containerInstances"][0]["status"], "INACTIVE");
    ok_json(&s.aws(&["ecs", "delete-cluster", "--cluster", &cluster]));
}

#[test]
fn attributes_and_pagination() {
    let s = BerthServer::start();
    let cluster = unique("ci-");
    ok_json(&s.aws(&["ecs", "create-cluster", "--cluster-name", &cluster]));
    let a = register(&s, &cluster, "us-east-1a")["containerInstanceArn"]
        .as_str()
        .unwrap()
        .to_string();
    let b = register(&s, &cluster, "us-east-1b")["containerInstanceArn"]
        .as_str()
        .unwrap()
        .to_string();
    let put = ok_json(&s.aws(&[
        "ecs",
        "put-attributes",
        "--cluster",
        &cluster,
        "--attributes",
        &format!("name=stack,value=prod,targetId={a}"),
        &format!("name=stack,value=test,targetId={b}"),
    ]));
    assert_eq!(put["attributes"].as_array().unwrap().len(), 2);
    let listed = ok_json(&s.aws(&[
        "ecs",
        "list-attributes",
        "--cluster",
        &cluster,
        "--target-type",
        "container-instance",
        "--attribute-name",
        "stack",
        "--attribute-value",
        "prod",
    ]));
    assert_eq!(listed["attributes"].as_array().unwrap().len(), 1);
    assert_eq!(listed["attributes"][0]["targetId"], a.as_str());
    ok_json(&s.aws(&[
        "ecs",
        "delete-attributes",
        "--cluster",
        &cluster,
        "--attributes",
        &format!("name=stack,targetId={a}"),
    ]));
    let all = ok_json(&s.aws(&[
        "ecs",
        "list-attributes",
        "--cluster",
        &cluster,
        "--target-type",
        "container-instance",
        "--attribute-name",
        "stack",
    ]));
    assert_eq!(all["attributes"].as_array().unwrap().len(), 1);
    assert_aws_error(
        &s.aws(&[
            "ecs",
            "put-attributes",
            "--cluster",
            &cluster,
            "--attributes",
            &format!("name=bad name!,value=x,targetId={a}"),
        ]),
        "InvalidParameterException",
    );
    // Page through the instances one at a time.
    let paged = ok_json(&s.aws(&[
        "ecs",
        "list-container-instances",
        "--cluster",
        &cluster,
        "--page-size",
        "1",
    ]));
    assert_eq!(paged["containerInstanceArns"].as_array().unwrap().len(), 2);
    assert_aws_error(
        &s.aws(&["ecs", "list-container-instances", "--cluster", "ghost"]),
        "ClusterNotFoundException",
    );
    // The cluster query language.
    let zone_b = ok_json(&s.aws(&[
        "ecs",
        "list-container-instances",
        "--cluster",
        &cluster,
        "--filter",
        "attribute:ecs.availability-zone == us-east-1b",
    ]));
    assert_eq!(zone_b["containerInstanceArns"], serde_json::json!([b]));
    let both = ok_json(&s.aws(&[
        "ecs",
        "list-container-instances",
        "--cluster",
        &cluster,
        "--filter",
        "attribute:ecs.availability-zone in [us-east-1a, us-east-1b] and attribute:stack == test",
    ]));
    assert_eq!(both["containerInstanceArns"], serde_json::json!([b]));
    assert_aws_error(
        &s.aws(&[
            "ecs",
            "list-container-instances",
            "--cluster",
            &cluster,
            "--filter",
            "attribute:ecs.availability-zone ==",
        ]),
        "InvalidParameterException",
    );
}

#[test]
fn registering_without_a_cluster_creates_default() {
    let s = BerthServer::start();
    let ci = ok_json(&s.aws(&["ecs", "register-container-instance"]));
    assert!(
        ci["containerInstance"]["containerInstanceArn"]
            .as_str()
            .unwrap()
            .contains(":container-instance/default/")
    );
    let d = ok_json(&s.aws(&["ecs", "describe-clusters"]));
    assert_eq!(d["clusters"][0]["registeredContainerInstancesCount"], 1);
}

/// An agent configured with `--cluster default` on a fresh server: `default` appears.
#[test]
fn registering_into_default_by_name_creates_it() {
    let s = BerthServer::start();
    ok_json(&s.aws(&["ecs", "register-container-instance", "--cluster", "default"]));
    let d = ok_json(&s.aws(&["ecs", "describe-clusters", "--clusters", "default"]));
    assert_eq!(d["clusters"][0]["status"], "ACTIVE");
    assert_eq!(d["clusters"][0]["registeredContainerInstancesCount"], 1);
    // Any other unknown cluster is still an error.
    berth_e2e::assert_aws_error(
        &s.aws(&["ecs", "register-container-instance", "--cluster", "nope"]),
        "ClusterNotFoundException",
    );
}
