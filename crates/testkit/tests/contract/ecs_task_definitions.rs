//! ECS task definitions, in-process through the HTTP stack: registration with revisions,
//! ECS's validation errors, describe/list/families, deregister and delete.

use berth_testkit::ecs::{list_all, register_task_definition};
use berth_testkit::{ACCOUNT_ID, REGION, TestServer, unique};
use serde_json::{Value, json};

fn web(family: &str) -> Value {
    json!({"family": family, "networkMode": "bridge", "containerDefinitions": [
            {"name": "web", "image": "127.0.0.1:5000/web:1", "memory": 128,
             "portMappings": [{"containerPort": 80}]}],
           "tags": [{"key": "team", "value": "web"}]})
}

fn fargate(family: &str) -> Value {
    json!({"family": family, "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
           "cpu": "256", "memory": "0.5 GB", "containerDefinitions": [
            {"name": "app", "image": "app:1", "portMappings": [{"containerPort": 8080}]}]})
}

fn list_arns(s: &TestServer, request: Value) -> Vec<Value> {
    list_all(s, "ListTaskDefinitions", request, "taskDefinitionArns")
}

#[test]
fn register_revisions_describe_list_deregister_delete() {
    let s = TestServer::start();
    let family = unique("td-");
    let r1 = register_task_definition(&s, web(&family));
    let td = &r1["taskDefinition"];
    assert_eq!(
        td["taskDefinitionArn"],
        format!("arn:aws:ecs:{REGION}:{ACCOUNT_ID}:task-definition/{family}:1")
    );
    assert_eq!(td["revision"], 1);
    assert_eq!(td["status"], "ACTIVE");
    assert_eq!(td["containerDefinitions"][0]["essential"], true);
    assert_eq!(
        td["containerDefinitions"][0]["portMappings"][0]["hostPort"],
        0
    );
    assert!(
        td["compatibilities"]
            .as_array()
            .unwrap()
            .contains(&"EC2".into())
    );
    assert_eq!(r1["tags"][0]["key"], "team");
    let r2 = register_task_definition(&s, web(&family));
    assert_eq!(r2["taskDefinition"]["revision"], 2);

    // A bare family is its latest ACTIVE revision.
    let describe = |request: Value| s.ecs("DescribeTaskDefinition", request);
    let d = describe(json!({"taskDefinition": family})).ok();
    assert_eq!(d["taskDefinition"]["revision"], 2);
    let d = describe(json!({"taskDefinition": format!("{family}:1"), "include": ["TAGS"]})).ok();
    assert_eq!(d["taskDefinition"]["revision"], 1);
    assert_eq!(d["tags"][0]["value"], "web");

    let arns = list_arns(&s, json!({"familyPrefix": family, "sort": "DESC"}));
    assert_eq!(arns.len(), 2);
    assert!(arns[0].as_str().unwrap().ends_with(":2"));

    let dereg = s
        .ecs(
            "DeregisterTaskDefinition",
            json!({"taskDefinition": format!("{family}:2")}),
        )
        .ok();
    assert_eq!(dereg["taskDefinition"]["status"], "INACTIVE");
    let d = describe(json!({"taskDefinition": family})).ok();
    assert_eq!(d["taskDefinition"]["revision"], 1);
    let inactive = list_arns(&s, json!({"familyPrefix": family, "status": "INACTIVE"}));
    assert_eq!(inactive.len(), 1);

    // Only INACTIVE revisions can be deleted; a deleted revision is gone from describe.
    let del = s
        .ecs(
            "DeleteTaskDefinitions",
            json!({"taskDefinitions": [format!("{family}:1"), format!("{family}:2")]}),
        )
        .ok();
    assert_eq!(del["taskDefinitions"][0]["status"], "DELETE_IN_PROGRESS");
    assert!(
        del["failures"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("ACTIVE")
    );
    describe(json!({"taskDefinition": format!("{family}:2")})).expect_error("ClientException");
    // Revisions are never reused.
    let r3 = register_task_definition(&s, web(&family));
    assert_eq!(r3["taskDefinition"]["revision"], 3);

    let fams = list_all(
        &s,
        "ListTaskDefinitionFamilies",
        json!({"familyPrefix": "td-"}),
        "families",
    );
    assert!(fams.contains(&family.clone().into()));
}

#[test]
fn fargate_rules_and_validation_errors() {
    let s = TestServer::start();
    let family = unique("fg-");
    let r = register_task_definition(&s, fargate(&family));
    let td = &r["taskDefinition"];
    assert_eq!(td["memory"], "512");
    assert_eq!(
        td["containerDefinitions"][0]["portMappings"][0]["hostPort"],
        8080
    );
    assert!(
        td["compatibilities"]
            .as_array()
            .unwrap()
            .contains(&"FARGATE".into())
    );

    // A Fargate size ECS does not offer.
    let mut bad = fargate(&family);
    bad["cpu"] = "4096".into();
    let out = s.ecs("RegisterTaskDefinition", bad);
    out.expect_error("ClientException");
    assert!(
        out.message().contains("No Fargate configuration exists"),
        "{}",
        out.body
    );
    // Duplicate container names.
    let dup = json!({"family": family, "containerDefinitions": [
        {"name": "a", "image": "x", "memory": 64}, {"name": "a", "image": "y", "memory": 64}]});
    let out = s.ecs("RegisterTaskDefinition", dup);
    out.expect_error("ClientException");
    assert!(out.message().contains("must be unique"), "{}", out.body);
    // Nothing registered by the failures.
    assert_eq!(list_arns(&s, json!({"familyPrefix": family})).len(), 1);
    s.ecs(
        "DescribeTaskDefinition",
        json!({"taskDefinition": "nothing-here"}),
    )
    .expect_error("ClientException");
}

/// ListTaskDefinitions pages by position, not offset: revisions 1–12 come in numeric order
/// (10 after 9) both ways, and a page taken after revisions before the token were
/// deregistered still starts right after the token's revision.
#[test]
fn list_pages_follow_revision_order_while_revisions_change() {
    let s = TestServer::start();
    let family = unique("pages-");
    for _ in 0..12 {
        register_task_definition(&s, web(&family));
    }
    let revision = |arn: &Value| -> u32 {
        arn.as_str()
            .unwrap()
            .rsplit(':')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    for (sort, expected) in [
        ("ASC", (1..=12).collect::<Vec<u32>>()),
        ("DESC", (1..=12).rev().collect()),
    ] {
        let arns = list_all(
            &s,
            "ListTaskDefinitions",
            json!({"familyPrefix": family, "sort": sort, "maxResults": 5}),
            "taskDefinitionArns",
        );
        assert_eq!(
            arns.iter().map(revision).collect::<Vec<_>>(),
            expected,
            "{sort}"
        );
    }

    let first = s
        .ecs(
            "ListTaskDefinitions",
            json!({"familyPrefix": family, "maxResults": 5}),
        )
        .ok();
    let token = first["nextToken"].as_str().unwrap().to_string();
    for r in 1..=3 {
        s.ecs(
            "DeregisterTaskDefinition",
            json!({"taskDefinition": format!("{family}:{r}")}),
        )
        .ok();
    }
    let next = s
        .ecs(
            "ListTaskDefinitions",
            json!({"familyPrefix": family, "maxResults": 5, "nextToken": token}),
        )
        .ok();
    let revisions: Vec<u32> = next["taskDefinitionArns"]
        .as_array()
        .unwrap()
        .iter()
        .map(revision)
        .collect();
    assert_eq!(revisions, vec![6, 7, 8, 9, 10], "{next}");

    let bad = s.ecs(
        "ListTaskDefinitions",
        json!({"familyPrefix": family, "nextToken": "not-a-token"}),
    );
    bad.expect_error("InvalidParameterException");
    assert_eq!(bad.message(), "Invalid nextToken.");
}
