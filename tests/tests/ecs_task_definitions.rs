//! ECS task definitions through the real `aws` CLI: registration with revisions, ECS's
//! validation errors, describe/list/families, deregister and delete.

use berth_e2e::{ACCOUNT_ID, BerthServer, REGION, assert_aws_error, ok_json, stderr_of, unique};

fn web(family: &str) -> String {
    format!(
        r#"{{"family":"{family}","networkMode":"bridge","containerDefinitions":[
            {{"name":"web","image":"127.0.0.1:5000/web:1","memory":128,
              "portMappings":[{{"containerPort":80}}]}}],
           "tags":[{{"key":"team","value":"web"}}]}}"#
    )
}

fn fargate(family: &str) -> String {
    format!(
        r#"{{"family":"{family}","networkMode":"awsvpc","requiresCompatibilities":["FARGATE"],
           "cpu":"256","memory":"0.5 GB","containerDefinitions":[
            {{"name":"app","image":"app:1","portMappings":[{{"containerPort":8080}}]}}]}}"#
    )
}

#[test]
fn register_revisions_describe_list_deregister_delete() {
    let s = BerthServer::start();
    let family = unique("td-");
    let r1 = ok_json(&s.aws(&[
        "ecs",
        "register-task-definition",
        "--cli-input-json",
        &web(&family),
    ]));
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
    let r2 = ok_json(&s.aws(&[
        "ecs",
        "register-task-definition",
        "--cli-input-json",
        &web(&family),
    ]));
    assert_eq!(r2["taskDefinition"]["revision"], 2);

    // A bare family is its latest ACTIVE revision.
    let d = ok_json(&s.aws(&[
        "ecs",
        "describe-task-definition",
        "--task-definition",
        &family,
    ]));
    assert_eq!(d["taskDefinition"]["revision"], 2);
    let d = ok_json(&s.aws(&[
        "ecs",
        "describe-task-definition",
        "--task-definition",
        &format!("{family}:1"),
        "--include",
        "TAGS",
    ]));
    assert_eq!(d["taskDefinition"]["revision"], 1);
    assert_eq!(d["tags"][0]["value"], "web");

    let l = ok_json(&s.aws(&[
        "ecs",
        "list-task-definitions",
        "--family-prefix",
        &family,
        "--sort",
        "DESC",
    ]));
    let arns = l["taskDefinitionArns"].as_array().unwrap();
    assert_eq!(arns.len(), 2);
    assert!(arns[0].as_str().unwrap().ends_with(":2"));

    let dereg = ok_json(&s.aws(&[
        "ecs",
        "deregister-task-definition",
        "--task-definition",
        &format!("{family}:2"),
    ]));
    assert_eq!(dereg["taskDefinition"]["status"], "INACTIVE");
    let d = ok_json(&s.aws(&[
        "ecs",
        "describe-task-definition",
        "--task-definition",
        &family,
    ]));
    assert_eq!(d["taskDefinition"]["revision"], 1);
    let inactive = ok_json(&s.aws(&[
        "ecs",
        "list-task-definitions",
        "--family-prefix",
        &family,
        "--status",
        "INACTIVE",
    ]));
    assert_eq!(inactive["taskDefinitionArns"].as_array().unwrap().len(), 1);

    // Only INACTIVE revisions can be deleted; a deleted revision is gone from describe.
    let del = ok_json(&s.aws(&[
        "ecs",
        "delete-task-definitions",
        "--task-definitions",
        &format!("{family}:1"),
        &format!("{family}:2"),
    ]));
    assert_eq!(del["taskDefinitions"][0]["status"], "DELETE_IN_PROGRESS");
    assert!(
        del["failures"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("ACTIVE")
    );
    assert_aws_error(
        &s.aws(&[
            "ecs",
            "describe-task-definition",
            "--task-definition",
            &format!("{family}:2"),
        ]),
        "ClientException",
    );
    // Revisions are never reused.
    let r3 = ok_json(&s.aws(&[
        "ecs",
        "register-task-definition",
        "--cli-input-json",
        &web(&family),
    ]));
    assert_eq!(r3["taskDefinition"]["revision"], 3);

    let fams = ok_json(&s.aws(&[
        "ecs",
        "list-task-definition-families",
        "--family-prefix",
        "td-",
    ]));
    assert!(
        fams["families"]
            .as_array()
            .unwrap()
            .contains(&family.clone().into())
    );
}

#[test]
fn fargate_rules_and_validation_errors() {
    let s = BerthServer::start();
    let family = unique("fg-");
    let r = ok_json(&s.aws(&[
        "ecs",
        "register-task-definition",
        "--cli-input-json",
        &fargate(&family),
    ]));
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
    let bad = fargate(&family).replace(r#""cpu":"256""#, r#""cpu":"4096""#);
    let out = s.aws(&["ecs", "register-task-definition", "--cli-input-json", &bad]);
    assert_aws_error(&out, "ClientException");
    assert!(
        stderr_of(&out).contains("No Fargate configuration exists"),
        "{}",
        stderr_of(&out)
    );
    // Duplicate container names.
    let dup = format!(
        r#"{{"family":"{family}","containerDefinitions":[
            {{"name":"a","image":"x","memory":64}},{{"name":"a","image":"y","memory":64}}]}}"#
    );
    let out = s.aws(&["ecs", "register-task-definition", "--cli-input-json", &dup]);
    assert_aws_error(&out, "ClientException");
    assert!(
        stderr_of(&out).contains("must be unique"),
        "{}",
        stderr_of(&out)
    );
    // Nothing registered by the failures.
    let l = ok_json(&s.aws(&["ecs", "list-task-definitions", "--family-prefix", &family]));
    assert_eq!(l["taskDefinitionArns"].as_array().unwrap().len(), 1);
    assert_aws_error(
        &s.aws(&[
            "ecs",
            "describe-task-definition",
            "--task-definition",
            "nothing-here",
        ]),
        "ClientException",
    );
}
