//! ECS's task protection, task sets, capacity providers and task-definition clean-up answer
//! as AWS answers, driven with the real `aws` CLI (issue 16, section 2, ECS part). Each test
//! names the evidence for the exact text, or says where none was found.

use std::time::Duration;

use berth_e2e::docker_agent::{Agent, wait_for, wait_instances};
use berth_e2e::{BerthServer, assert_aws_error, epoch_seconds, ok_json, stderr_of, unique};
use serde_json::{Value, json};

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn register_sleeper(s: &BerthServer, family: &str) -> String {
    let containers = json!([{"name": "app", "image": "busybox", "essential": true,
                             "cpu": 10, "memory": 16, "command": ["sleep", "100000"]}]);
    ok_json(&s.aws(&[
        "ecs",
        "register-task-definition",
        "--family",
        family,
        "--container-definitions",
        &containers.to_string(),
    ]))["taskDefinition"]["taskDefinitionArn"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The service's RUNNING tasks' ARNs, sorted.
fn running_tasks(s: &BerthServer, cluster: &str, service: &str) -> Vec<String> {
    let listed = ok_json(&s.aws(&[
        "ecs",
        "list-tasks",
        "--cluster",
        cluster,
        "--service-name",
        service,
    ]));
    let arns: Vec<String> = listed["taskArns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    if arns.is_empty() {
        return arns;
    }
    let mut args = vec!["ecs", "describe-tasks", "--cluster", cluster, "--tasks"];
    args.extend(arns.iter().map(String::as_str));
    let described = ok_json(&s.aws(&args));
    let mut running: Vec<String> = described["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["lastStatus"] == "RUNNING" && t["desiredStatus"] == "RUNNING")
        .map(|t| t["taskArn"].as_str().unwrap().to_owned())
        .collect();
    running.sort();
    running
}

fn update_protection(s: &BerthServer, cluster: &str, tasks: &[&str], extra: &[&str]) -> Value {
    let mut args = vec![
        "ecs",
        "update-task-protection",
        "--cluster",
        cluster,
        "--tasks",
    ];
    args.extend_from_slice(tasks);
    args.extend_from_slice(extra);
    ok_json(&s.aws(&args))
}

/// Task scale-in protection: UpdateTaskProtection answers each task's `protectedTasks` entry
/// (taskArn, protectionEnabled, expirationDate now + expiresInMinutes, 120 by default as
/// the API reference says), GetTaskProtection reads it back, a task not found is a
/// `MISSING` failure and a standalone task a `TASK_NOT_VALID` one (the API reference:
/// "Invoking this operation for a standalone task will result in an TASK_NOT_VALID
/// failure"), and the service scheduler's scale-in leaves protected tasks running until
/// their protection is turned off. The message for expiresInMinutes out of 1..2880 was not
/// found published; Berth's says the bounds.
#[test]
fn protected_tasks_survive_a_scale_in() {
    let s = BerthServer::start();
    let cluster = unique("protect-");
    ok_json(&s.aws(&["ecs", "create-cluster", "--cluster-name", &cluster]));
    let _agent = Agent::start(&s, &cluster, &["--runtime", "simulated"]);
    wait_instances(&s, &cluster, 1);
    let td = register_sleeper(&s, &unique("protect-app-"));
    let service = unique("web-");
    ok_json(&s.aws(&[
        "ecs",
        "create-service",
        "--cluster",
        &cluster,
        "--service-name",
        &service,
        "--task-definition",
        &td,
        "--desired-count",
        "4",
    ]));
    let tasks = wait_for("4 tasks running", Duration::from_secs(90), || {
        let running = running_tasks(&s, &cluster, &service);
        (running.len() == 4).then_some(running)
    });
    let (a, b) = (tasks[0].as_str(), tasks[1].as_str());

    let before = now();
    let updated = update_protection(
        &s,
        &cluster,
        &[a, b],
        &["--protection-enabled", "--expires-in-minutes", "60"],
    );
    assert_eq!(updated["failures"], json!([]), "{updated:#}");
    let protected = updated["protectedTasks"].as_array().unwrap();
    assert_eq!(protected.len(), 2, "{updated:#}");
    for (entry, arn) in protected.iter().zip([a, b]) {
        assert_eq!(entry["taskArn"], arn);
        assert_eq!(entry["protectionEnabled"], true);
        let expires = epoch_seconds(&entry["expirationDate"]);
        assert!(
            (before + 3600.0 - 1.0..=now() + 3600.0 + 1.0).contains(&expires),
            "{entry:#}"
        );
    }
    // Without expiresInMinutes: 2 hours (and a repeated call resets the period).
    let again = update_protection(&s, &cluster, &[b], &["--protection-enabled"]);
    let expires = epoch_seconds(&again["protectedTasks"][0]["expirationDate"]);
    assert!(
        (before + 7200.0 - 1.0..=now() + 7200.0 + 1.0).contains(&expires),
        "{again:#}"
    );

    // GetTaskProtection: the protected, an unprotected one, and one that does not exist.
    let got = ok_json(&s.aws(&[
        "ecs",
        "get-task-protection",
        "--cluster",
        &cluster,
        "--tasks",
        a,
        &tasks[2],
        "0123456789abcdef0123456789abcdef",
    ]));
    assert_eq!(
        got["protectedTasks"][0]["protectionEnabled"], true,
        "{got:#}"
    );
    assert_eq!(
        got["protectedTasks"][1],
        json!({"taskArn": tasks[2], "protectionEnabled": false}),
        "{got:#}"
    );
    let missing_arn =
        a.rsplit_once('/').unwrap().0.to_owned() + "/0123456789abcdef0123456789abcdef";
    assert_eq!(
        got["failures"],
        json!([{"arn": missing_arn, "reason": "MISSING"}]),
        "{got:#}"
    );

    // A standalone task cannot be protected.
    let standalone = ok_json(&s.aws(&[
        "ecs",
        "run-task",
        "--cluster",
        &cluster,
        "--task-definition",
        &td,
    ]))["tasks"][0]["taskArn"]
        .as_str()
        .unwrap()
        .to_owned();
    let refused = update_protection(&s, &cluster, &[&standalone], &["--protection-enabled"]);
    assert_eq!(refused["protectedTasks"], json!([]), "{refused:#}");
    assert_eq!(
        refused["failures"],
        json!([{"arn": standalone, "reason": "TASK_NOT_VALID"}])
    );
    // 48 hours at most.
    let out = s.aws(&[
        "ecs",
        "update-task-protection",
        "--cluster",
        &cluster,
        "--tasks",
        a,
        "--protection-enabled",
        "--expires-in-minutes",
        "2881",
    ]);
    assert_aws_error(&out, "InvalidParameterException");
    assert!(
        stderr_of(&out).contains("expiresInMinutes"),
        "{}",
        stderr_of(&out)
    );

    // Scale in to 1: the two unprotected tasks go, the protected two stay.
    ok_json(&s.aws(&[
        "ecs",
        "update-service",
        "--cluster",
        &cluster,
        "--service",
        &service,
        "--desired-count",
        "1",
    ]));
    let mut expected = vec![a.to_owned(), b.to_owned()];
    expected.sort();
    wait_for(
        "the unprotected tasks stopped",
        Duration::from_secs(60),
        || (running_tasks(&s, &cluster, &service) == expected).then_some(()),
    );
    // And stay so: a few more scheduler rounds change nothing.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(running_tasks(&s, &cluster, &service), expected);

    // Protection off for `a`: it is the one the scale-in takes now.
    let off = update_protection(&s, &cluster, &[a], &["--no-protection-enabled"]);
    assert_eq!(
        off["protectedTasks"],
        json!([{"taskArn": a, "protectionEnabled": false}]),
        "{off:#}"
    );
    wait_for(
        "the unprotected task stopped",
        Duration::from_secs(60),
        || (running_tasks(&s, &cluster, &service) == [b.to_owned()]).then_some(()),
    );
}

fn describe_task_sets(s: &BerthServer, cluster: &str, service: &str, ids: &[&str]) -> Value {
    let mut args = vec![
        "ecs",
        "describe-task-sets",
        "--cluster",
        cluster,
        "--service",
        service,
        "--task-sets",
    ];
    args.extend_from_slice(ids);
    ok_json(&s.aws(&args))
}

/// The running tasks' (startedBy, taskDefinitionArn, group) of a service.
fn task_origins(s: &BerthServer, cluster: &str, service: &str) -> Vec<(String, String, String)> {
    let arns = running_tasks(s, cluster, service);
    if arns.is_empty() {
        return Vec::new();
    }
    let mut args = vec!["ecs", "describe-tasks", "--cluster", cluster, "--tasks"];
    args.extend(arns.iter().map(String::as_str));
    let described = ok_json(&s.aws(&args));
    let mut origins: Vec<(String, String, String)> = described["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let field = |k: &str| t[k].as_str().unwrap_or_default().to_owned();
            (
                field("startedBy"),
                field("taskDefinitionArn"),
                field("group"),
            )
        })
        .collect();
    origins.sort();
    origins
}

/// The EXTERNAL deployment controller: a service created without a task definition runs
/// nothing of its own; each task set runs ceil(desiredCount × scale%) real tasks of its task
/// definition (group `service:NAME`, startedBy the task set's id), counted in its
/// runningCount and STEADY_STATE once there; UpdateTaskSet rescales, UpdateServicePrimaryTaskSet
/// moves PRIMARY, DeleteTaskSet drains (forced while scaled above zero) until the task set is
/// gone. A task set operation on a service ECS deploys is refused with ECS's text, as quoted
/// in hashicorp/terraform-provider-aws#30347; an unknown task set is
/// TaskSetNotFoundException (its message is the API reference's description: no published
/// response found), and the refusal to delete a task set scaled above zero without `force`
/// has Berth's own text (none published found).
#[test]
fn task_sets_of_an_external_service_run_their_tasks() {
    let s = BerthServer::start();
    let cluster = unique("tasksets-");
    ok_json(&s.aws(&["ecs", "create-cluster", "--cluster-name", &cluster]));
    let _agent = Agent::start(&s, &cluster, &["--runtime", "simulated"]);
    wait_instances(&s, &cluster, 1);
    let family = unique("ts-app-");
    let blue_td = register_sleeper(&s, &family);
    let green_td = register_sleeper(&s, &family);
    let service = unique("ext-");
    let created = ok_json(&s.aws(&[
        "ecs",
        "create-service",
        "--cluster",
        &cluster,
        "--service-name",
        &service,
        "--deployment-controller",
        "type=EXTERNAL",
        "--desired-count",
        "4",
    ]))["service"]
        .clone();
    assert_eq!(created["deploymentController"], json!({"type": "EXTERNAL"}));
    assert_eq!(created["taskSets"], json!([]), "{created:#}");
    assert_eq!(created["deployments"], json!([]), "{created:#}");
    assert!(created.get("taskDefinition").is_none(), "{created:#}");

    let blue = ok_json(&s.aws(&[
        "ecs",
        "create-task-set",
        "--cluster",
        &cluster,
        "--service",
        &service,
        "--task-definition",
        &blue_td,
        "--external-id",
        "blue",
        "--scale",
        "value=50,unit=PERCENT",
    ]))["taskSet"]
        .clone();
    let blue_id = blue["id"].as_str().unwrap().to_owned();
    assert!(blue_id.starts_with("ecs-svc/"), "{blue:#}");
    assert_eq!(
        blue["taskSetArn"],
        format!("arn:aws:ecs:us-east-1:000000000000:task-set/{cluster}/{service}/{blue_id}")
    );
    assert_eq!(blue["status"], "ACTIVE");
    assert_eq!(blue["externalId"], "blue");
    assert_eq!(blue["taskDefinition"], blue_td.as_str());
    assert_eq!(blue["computedDesiredCount"], 2);
    assert_eq!(blue["scale"], json!({"value": 50.0, "unit": "PERCENT"}));
    assert_eq!(blue["stabilityStatus"], "STABILIZING");
    assert_eq!(blue["launchType"], "EC2");

    let steady = |id: &str, running: i64| {
        wait_for(
            &format!("task set {id} steady at {running}"),
            Duration::from_secs(90),
            || {
                let d = describe_task_sets(&s, &cluster, &service, &[id]);
                let t = &d["taskSets"][0];
                (t["runningCount"] == running
                    && t["pendingCount"] == 0
                    && t["stabilityStatus"] == "STEADY_STATE")
                    .then(|| t.clone())
            },
        )
    };
    steady(&blue_id, 2);
    let group = format!("service:{service}");
    assert_eq!(
        task_origins(&s, &cluster, &service),
        vec![(blue_id.clone(), blue_td.clone(), group.clone()); 2]
    );

    let primary = ok_json(&s.aws(&[
        "ecs",
        "update-service-primary-task-set",
        "--cluster",
        &cluster,
        "--service",
        &service,
        "--primary-task-set",
        &blue_id,
    ]));
    assert_eq!(primary["taskSet"]["status"], "PRIMARY", "{primary:#}");

    // A second task set at 100%: 4 more tasks of its own definition.
    let green = ok_json(&s.aws(&[
        "ecs",
        "create-task-set",
        "--cluster",
        &cluster,
        "--service",
        &service,
        "--task-definition",
        &green_td,
    ]))["taskSet"]
        .clone();
    let green_id = green["id"].as_str().unwrap().to_owned();
    assert_eq!(green["scale"], json!({"value": 100.0, "unit": "PERCENT"}));
    steady(&green_id, 4);
    let described = ok_json(&s.aws(&[
        "ecs",
        "describe-services",
        "--cluster",
        &cluster,
        "--services",
        &service,
    ]))["services"][0]
        .clone();
    let ids: Vec<&str> = described["taskSets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [blue_id.as_str(), green_id.as_str()]);
    assert_eq!(described["runningCount"], 6, "{described:#}");

    // Green becomes PRIMARY, blue ACTIVE; blue scaled to 0 stops its tasks.
    ok_json(&s.aws(&[
        "ecs",
        "update-service-primary-task-set",
        "--cluster",
        &cluster,
        "--service",
        &service,
        "--primary-task-set",
        &green_id,
    ]));
    let scaled = ok_json(&s.aws(&[
        "ecs",
        "update-task-set",
        "--cluster",
        &cluster,
        "--service",
        &service,
        "--task-set",
        &blue_id,
        "--scale",
        "value=0,unit=PERCENT",
    ]))["taskSet"]
        .clone();
    assert_eq!(scaled["status"], "ACTIVE");
    assert_eq!(scaled["computedDesiredCount"], 0);
    steady(&blue_id, 0);
    assert_eq!(
        task_origins(&s, &cluster, &service),
        vec![(green_id.clone(), green_td.clone(), group.clone()); 4]
    );

    // Deleting: blue (at 0) at once, green (above 0) only with force.
    let deleted = ok_json(&s.aws(&[
        "ecs",
        "delete-task-set",
        "--cluster",
        &cluster,
        "--service",
        &service,
        "--task-set",
        &blue_id,
    ]));
    assert_eq!(deleted["taskSet"]["status"], "DRAINING", "{deleted:#}");
    wait_for("blue gone", Duration::from_secs(30), || {
        let d = describe_task_sets(&s, &cluster, &service, &[&blue_id]);
        (d["taskSets"] == json!([])).then_some(d)
    });
    let gone = describe_task_sets(&s, &cluster, &service, &[&blue_id]);
    assert_eq!(
        gone["failures"],
        json!([{"arn": blue["taskSetArn"], "reason": "MISSING"}])
    );
    let out = s.aws(&[
        "ecs",
        "delete-task-set",
        "--cluster",
        &cluster,
        "--service",
        &service,
        "--task-set",
        &green_id,
    ]);
    assert_aws_error(&out, "InvalidParameterException");
    ok_json(&s.aws(&[
        "ecs",
        "delete-task-set",
        "--cluster",
        &cluster,
        "--service",
        &service,
        "--task-set",
        &green_id,
        "--force",
    ]));
    wait_for("green's tasks stopped", Duration::from_secs(60), || {
        running_tasks(&s, &cluster, &service)
            .is_empty()
            .then_some(())
    });

    // Errors.
    let out = s.aws(&[
        "ecs",
        "update-task-set",
        "--cluster",
        &cluster,
        "--service",
        &service,
        "--task-set",
        "ecs-svc/0000000000000000000",
        "--scale",
        "value=10,unit=PERCENT",
    ]);
    assert_aws_error(&out, "TaskSetNotFoundException");
    let ordinary = unique("ordinary-");
    ok_json(&s.aws(&[
        "ecs",
        "create-service",
        "--cluster",
        &cluster,
        "--service-name",
        &ordinary,
        "--task-definition",
        &blue_td,
    ]));
    let out = s.aws(&[
        "ecs",
        "create-task-set",
        "--cluster",
        &cluster,
        "--service",
        &ordinary,
        "--task-definition",
        &blue_td,
    ]);
    assert_aws_error(&out, "InvalidParameterException");
    assert!(
        stderr_of(&out).contains(
            "Amazon ECS only supports task set management on services configured to use external deployment controllers."
        ),
        "{}",
        stderr_of(&out)
    );
}

/// Capacity providers as resources: CreateCapacityProvider fills in the API reference's
/// defaults (managedDraining ENABLED, "on by default" in the developer guide; scaling steps 1
/// and 10000, warm-up 300), refuses a name or an Auto Scaling group in use with ECS's texts
/// (aws/containers-roadmap#688 and #632), UpdateCapacityProvider answers UPDATE_COMPLETE,
/// DescribeCapacityProviders lists the built-in FARGATE/FARGATE_SPOT with the created ones
/// (paged) and fails unknown names as MISSING; a provider associated with a cluster is not
/// deleted (ACTIVE, DELETE_FAILED and ECS's reason, quoted in
/// hashicorp/terraform-provider-aws#48156), one no longer associated is (INACTIVE,
/// DELETE_COMPLETE). Clusters take created providers and refuse unknown ones with ECS's
/// message.
#[test]
fn capacity_providers_are_created_associated_and_deleted_as_ecs_does() {
    let s = BerthServer::start();
    let name = unique("asg-cp-");
    let group = format!(
        "arn:aws:autoscaling:us-east-1:000000000000:autoScalingGroup:1f2e3d4c:autoScalingGroupName/{name}"
    );
    let asg = json!({"autoScalingGroupArn": group,
                     "managedScaling": {"status": "ENABLED", "targetCapacity": 80}});
    let created = ok_json(&s.aws(&[
        "ecs",
        "create-capacity-provider",
        "--name",
        &name,
        "--auto-scaling-group-provider",
        &asg.to_string(),
        "--tags",
        "key=team,value=infra",
    ]))["capacityProvider"]
        .clone();
    let arn = format!("arn:aws:ecs:us-east-1:000000000000:capacity-provider/{name}");
    assert_eq!(
        created,
        json!({
            "capacityProviderArn": arn,
            "name": name,
            "status": "ACTIVE",
            "autoScalingGroupProvider": {
                "autoScalingGroupArn": group,
                "managedScaling": {"status": "ENABLED", "targetCapacity": 80,
                                   "minimumScalingStepSize": 1,
                                   "maximumScalingStepSize": 10000,
                                   "instanceWarmupPeriod": 300},
                "managedTerminationProtection": "DISABLED",
                "managedDraining": "ENABLED"
            },
            "tags": [{"key": "team", "value": "infra"}]
        })
    );
    let refused = |args: &[&str], code: &str, message: &str| {
        let out = s.aws(args);
        assert_aws_error(&out, code);
        assert!(stderr_of(&out).contains(message), "{}", stderr_of(&out));
    };
    refused(
        &[
            "ecs",
            "create-capacity-provider",
            "--name",
            &name,
            "--auto-scaling-group-provider",
            &json!({"autoScalingGroupArn": "arn:aws:autoscaling:us-east-1:000000000000:autoScalingGroup:x:autoScalingGroupName/other"}).to_string(),
        ],
        "ClientException",
        "The specified capacity provider already exists. To change the configuration of an existing capacity provider, update the capacity provider.",
    );
    refused(
        &[
            "ecs",
            "create-capacity-provider",
            "--name",
            &unique("asg-cp-"),
            "--auto-scaling-group-provider",
            &json!({"autoScalingGroupArn": group}).to_string(),
        ],
        "ClientException",
        "The specified Auto Scaling group ARN is already being used by another capacity provider. Specify a unique Auto Scaling group ARN and try again.",
    );

    let updated = ok_json(
        &s.aws(&[
            "ecs",
            "update-capacity-provider",
            "--name",
            &name,
            "--auto-scaling-group-provider",
            &json!({"managedScaling": {"targetCapacity": 50}, "managedDraining": "DISABLED"})
                .to_string(),
        ]),
    )["capacityProvider"]
        .clone();
    assert_eq!(updated["updateStatus"], "UPDATE_COMPLETE", "{updated:#}");
    let asg_now = &updated["autoScalingGroupProvider"];
    assert_eq!(asg_now["managedScaling"]["targetCapacity"], 50);
    assert_eq!(asg_now["managedScaling"]["status"], "ENABLED");
    assert_eq!(asg_now["managedDraining"], "DISABLED");

    // Described: every provider, in pages of maxResults, or the named ones.
    let names = |page: &Value| -> Vec<String> {
        page["capacityProviders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let first = ok_json(&s.aws(&["ecs", "describe-capacity-providers", "--max-results", "2"]));
    assert_eq!(names(&first), ["FARGATE", "FARGATE_SPOT"], "{first:#}");
    let token = first["nextToken"].as_str().unwrap();
    let second = ok_json(&s.aws(&[
        "ecs",
        "describe-capacity-providers",
        "--max-results",
        "2",
        "--next-token",
        token,
    ]));
    assert_eq!(names(&second), std::slice::from_ref(&name), "{second:#}");
    assert!(second.get("nextToken").is_none(), "{second:#}");
    let named = ok_json(&s.aws(&[
        "ecs",
        "describe-capacity-providers",
        "--capacity-providers",
        &arn,
        "nope",
    ]));
    assert_eq!(named["capacityProviders"][0]["name"], name.as_str());
    assert_eq!(
        named["failures"],
        json!([{"arn": "nope", "reason": "MISSING"}])
    );

    // Associated with a cluster; unknown providers refused.
    let cluster = unique("cp-cluster-");
    let made = ok_json(&s.aws(&[
        "ecs",
        "create-cluster",
        "--cluster-name",
        &cluster,
        "--capacity-providers",
        &name,
        "FARGATE",
    ]))["cluster"]
        .clone();
    assert_eq!(made["capacityProviders"], json!([name, "FARGATE"]));
    refused(
        &[
            "ecs",
            "put-cluster-capacity-providers",
            "--cluster",
            &cluster,
            "--capacity-providers",
            "nope",
            "--default-capacity-provider-strategy",
            "[]",
        ],
        "InvalidParameterException",
        "The specified capacity provider 'nope' does not exist. Specify a valid capacity provider and try again.",
    );

    // Not deleted while associated.
    let failed = ok_json(&s.aws(&[
        "ecs",
        "delete-capacity-provider",
        "--capacity-provider",
        &name,
    ]))["capacityProvider"]
        .clone();
    assert_eq!(failed["status"], "ACTIVE");
    assert_eq!(failed["updateStatus"], "DELETE_FAILED");
    assert_eq!(
        failed["updateStatusReason"],
        format!(
            "The capacity provider cannot be deleted because it is associated with cluster: {cluster}. Remove the capacity provider from the cluster and try again."
        )
    );
    ok_json(&s.aws(&[
        "ecs",
        "put-cluster-capacity-providers",
        "--cluster",
        &cluster,
        "--capacity-providers",
        "FARGATE",
        "--default-capacity-provider-strategy",
        "[]",
    ]));
    let deleted = ok_json(&s.aws(&[
        "ecs",
        "delete-capacity-provider",
        "--capacity-provider",
        &arn,
    ]))["capacityProvider"]
        .clone();
    assert_eq!(deleted["status"], "INACTIVE");
    assert_eq!(deleted["updateStatus"], "DELETE_COMPLETE");
    assert!(deleted.get("updateStatusReason").is_none(), "{deleted:#}");
    let gone = ok_json(&s.aws(&[
        "ecs",
        "describe-capacity-providers",
        "--capacity-providers",
        &name,
    ]));
    assert_eq!(
        gone["failures"],
        json!([{"arn": name, "reason": "MISSING"}])
    );
}

/// DescribeServiceRevisions: each deployment's revision says what it ran (its task
/// definition, launch type, the service's and cluster's ARNs), as the API reference's
/// ServiceRevision shows; a revision ARN Berth does not know is a MISSING failure.
#[test]
fn service_revisions_are_described() {
    let s = BerthServer::start();
    let cluster = unique("revisions-");
    ok_json(&s.aws(&["ecs", "create-cluster", "--cluster-name", &cluster]));
    let family = unique("rev-app-");
    let v1 = register_sleeper(&s, &family);
    let v2 = register_sleeper(&s, &family);
    let service = unique("rev-");
    ok_json(&s.aws(&[
        "ecs",
        "create-service",
        "--cluster",
        &cluster,
        "--service-name",
        &service,
        "--task-definition",
        &v1,
        "--desired-count",
        "0",
    ]));
    ok_json(&s.aws(&[
        "ecs",
        "update-service",
        "--cluster",
        &cluster,
        "--service",
        &service,
        "--task-definition",
        &v2,
    ]));
    let listed = ok_json(&s.aws(&[
        "ecs",
        "list-service-deployments",
        "--cluster",
        &cluster,
        "--service",
        &service,
    ]));
    let newest = listed["serviceDeployments"][0]["serviceDeploymentArn"]
        .as_str()
        .unwrap()
        .to_owned();
    let deployment = ok_json(&s.aws(&[
        "ecs",
        "describe-service-deployments",
        "--service-deployment-arns",
        &newest,
    ]))["serviceDeployments"][0]
        .clone();
    let target = deployment["targetServiceRevision"]["arn"]
        .as_str()
        .unwrap()
        .to_owned();
    let source = deployment["sourceServiceRevisions"][0]["arn"]
        .as_str()
        .unwrap()
        .to_owned();
    let unknown = format!("{}/999", target.rsplit_once('/').unwrap().0);
    let described = ok_json(&s.aws(&[
        "ecs",
        "describe-service-revisions",
        "--service-revision-arns",
        &source,
        &target,
        &unknown,
    ]));
    let revisions = described["serviceRevisions"].as_array().unwrap();
    assert_eq!(revisions.len(), 2, "{described:#}");
    let service_arn = format!("arn:aws:ecs:us-east-1:000000000000:service/{cluster}/{service}");
    for (revision, (arn, td)) in revisions.iter().zip([(&source, &v1), (&target, &v2)]) {
        assert_eq!(revision["serviceRevisionArn"], arn.as_str());
        assert_eq!(revision["serviceArn"], service_arn.as_str());
        assert_eq!(
            revision["clusterArn"],
            format!("arn:aws:ecs:us-east-1:000000000000:cluster/{cluster}")
        );
        assert_eq!(revision["taskDefinition"], td.as_str());
        assert_eq!(revision["launchType"], "EC2");
        assert!(revision["createdAt"].as_f64().is_some(), "{revision:#}");
    }
    assert_eq!(
        described["failures"],
        json!([{"arn": unknown, "reason": "MISSING"}])
    );
}

/// DeregisterTaskDefinition's refusals: a bare family is ClientException "Revision is
/// missing." (no published AWS response found; getmoto/moto's
/// test_deregister_task_definition_2 expects this text), a non-numeric revision is
/// InvalidParameterException "Invalid revision number. Number: foo" (ECS's text and code as
/// an UpdateService through CodeDeploy reported them for "latest"). DeleteTaskDefinitions
/// answers per revision: an ACTIVE one and one not found are `failures` with the revision's
/// ARN (their reasons are Berth's: no published AWS text was found), an INACTIVE one is
/// deleted (DELETE_IN_PROGRESS).
#[test]
fn task_definition_clean_up_answers_as_ecs_does() {
    let s = BerthServer::start();
    let family = unique("cleanup-");
    let v1 = register_sleeper(&s, &family);
    let v2 = register_sleeper(&s, &family);
    let out = s.aws(&[
        "ecs",
        "deregister-task-definition",
        "--task-definition",
        &family,
    ]);
    assert_aws_error(&out, "ClientException");
    assert!(
        stderr_of(&out).contains("Revision is missing."),
        "{}",
        stderr_of(&out)
    );
    let out = s.aws(&[
        "ecs",
        "deregister-task-definition",
        "--task-definition",
        &format!("{family}:foo"),
    ]);
    assert_aws_error(&out, "InvalidParameterException");
    assert!(
        stderr_of(&out).contains("Invalid revision number. Number: foo"),
        "{}",
        stderr_of(&out)
    );

    ok_json(&s.aws(&[
        "ecs",
        "deregister-task-definition",
        "--task-definition",
        &v1,
    ]));
    let missing = format!("{family}:9");
    let deleted = ok_json(&s.aws(&[
        "ecs",
        "delete-task-definitions",
        "--task-definitions",
        &v1,
        &v2,
        &missing,
    ]));
    assert_eq!(
        deleted["taskDefinitions"][0]["taskDefinitionArn"],
        v1.as_str()
    );
    assert_eq!(
        deleted["taskDefinitions"][0]["status"],
        "DELETE_IN_PROGRESS"
    );
    let prefix = v1.rsplit_once(':').unwrap().0;
    assert_eq!(
        deleted["failures"],
        json!([
            {"arn": v2, "reason": "The specified task definition is still in ACTIVE status. Please deregister the target and try again."},
            {"arn": format!("{prefix}:9"), "reason": "Unable to describe task definition."}
        ]),
        "{deleted:#}"
    );
}
