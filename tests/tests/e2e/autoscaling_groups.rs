//! EC2 Auto Scaling with the real aws CLI: a launch template whose user data names a
//! cluster (`echo ECS_CLUSTER=… >> /etc/ecs/ecs.config`, as on the ECS-optimized AMI), an
//! Auto Scaling group of two instances whose agents (run by `berth server` itself) register
//! in that cluster and go InService, a task placed on one of them, the server killed (-9)
//! and restarted (the group's instances come back as they were, their agents started again
//! and reconnected, the task still running), then the group scaled to zero: its task stopped, its instances terminated and deregistered, the activities
//! recorded, the group deleted.

use std::time::Duration;

use base64::Engine;
use berth_e2e::docker_agent::{
    cluster_with_image, httpd, register, run_task, wait_for, wait_instances, wait_status,
};
use berth_e2e::{BerthServer, ok_json, unique};
use serde_json::{Value, json};

fn aws(s: &BerthServer, args: &[&str]) -> Value {
    let out = s.aws(args);
    if out.stdout.is_empty() && out.status.success() {
        return Value::Null;
    }
    ok_json(&out)
}

fn group(s: &BerthServer, name: &str) -> Value {
    let v = aws(
        s,
        &[
            "autoscaling",
            "describe-auto-scaling-groups",
            "--auto-scaling-group-names",
            name,
        ],
    );
    v["AutoScalingGroups"][0].clone()
}

#[test]
fn a_group_of_agents_joins_its_cluster_runs_a_task_and_scales_to_zero() {
    let mut s = BerthServer::start();
    let (cluster, image) = cluster_with_image(&s, "asg-");
    let user_data = base64::engine::general_purpose::STANDARD.encode(format!(
        "#!/bin/bash\necho ECS_CLUSTER={cluster} >> /etc/ecs/ecs.config\n"
    ));
    let template_name = unique("asg-lt-");
    let template = aws(
        &s,
        &[
            "ec2",
            "create-launch-template",
            "--launch-template-name",
            &template_name,
            "--launch-template-data",
            &json!({"InstanceType": "t3.micro", "ImageId": "ami-0123456789abcdef0", "UserData": user_data})
                .to_string(),
        ],
    );
    let template_id = template["LaunchTemplate"]["LaunchTemplateId"]
        .as_str()
        .unwrap()
        .to_owned();
    let name = unique("asg-");
    aws(
        &s,
        &[
            "autoscaling",
            "create-auto-scaling-group",
            "--auto-scaling-group-name",
            &name,
            "--launch-template",
            &format!("LaunchTemplateId={template_id},Version=$Latest"),
            "--min-size",
            "0",
            "--max-size",
            "2",
            "--desired-capacity",
            "2",
            "--availability-zones",
            "us-east-1a",
            "us-east-1b",
        ],
    );

    // Two agents register in the cluster the user data names, as the group's instances.
    let instances = wait_instances(&s, &cluster, 2);
    let in_service = wait_for("two instances InService", Duration::from_secs(60), || {
        let g = group(&s, &name);
        let all = g["Instances"].as_array()?.clone();
        (all.len() == 2 && all.iter().all(|i| i["LifecycleState"] == "InService")).then_some(all)
    });
    let mut ids: Vec<&str> = in_service
        .iter()
        .map(|i| i["InstanceId"].as_str().unwrap())
        .collect();
    ids.sort();
    let mut registered: Vec<&str> = instances
        .iter()
        .map(|i| i["ec2InstanceId"].as_str().unwrap())
        .collect();
    registered.sort();
    assert_eq!(ids, registered);
    for i in &in_service {
        assert_eq!(i["InstanceType"], "t3.micro");
        assert_eq!(
            i["LaunchTemplate"]["LaunchTemplateId"],
            template_id.as_str()
        );
        assert_eq!(i["HealthStatus"], "Healthy");
    }
    for i in &instances {
        let attribute = |n: &str| {
            i["attributes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["name"] == n)
                .map(|a| a["value"].clone())
        };
        assert_eq!(attribute("ecs.instance-type"), Some(json!("t3.micro")));
        assert!(
            matches!(attribute("ecs.availability-zone"), Some(Value::String(z)) if z.starts_with("us-east-1")),
            "{i:#}"
        );
    }

    // A task runs on one of them.
    let family = unique("asg-web-");
    let definition = register(&s, &family, json!([httpd(&image, &unique("m-"), None)]));
    let task = run_task(&s, &cluster, &definition);
    let running = wait_status(&s, &cluster, &task, "RUNNING");
    let arns: Vec<&str> = instances
        .iter()
        .map(|i| i["containerInstanceArn"].as_str().unwrap())
        .collect();
    assert!(arns.contains(&running["containerInstanceArn"].as_str().unwrap()));

    // kill -9: the group and its instances were acknowledged; the new process starts their
    // agents again, which reconnect as the same container instances.
    s.restart();
    let after = group(&s, &name);
    let mut kept: Vec<&str> = after["Instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["InstanceId"].as_str().unwrap())
        .collect();
    kept.sort();
    assert_eq!(kept, ids);
    let reconnected = wait_instances(&s, &cluster, 2);
    let mut again: Vec<&str> = reconnected
        .iter()
        .map(|i| i["containerInstanceArn"].as_str().unwrap())
        .collect();
    again.sort();
    let mut before = arns.clone();
    before.sort();
    assert_eq!(again, before);
    assert_eq!(
        wait_status(&s, &cluster, &task, "RUNNING")["containerInstanceArn"],
        running["containerInstanceArn"]
    );

    // Scaled to zero: the task is stopped, the instances terminated and deregistered.
    aws(
        &s,
        &[
            "autoscaling",
            "set-desired-capacity",
            "--auto-scaling-group-name",
            &name,
            "--desired-capacity",
            "0",
        ],
    );
    wait_status(&s, &cluster, &task, "STOPPED");
    wait_for("the instances terminated", Duration::from_secs(90), || {
        group(&s, &name)["Instances"]
            .as_array()?
            .is_empty()
            .then_some(())
    });
    let listed = aws(
        &s,
        &["ecs", "list-container-instances", "--cluster", &cluster],
    );
    assert_eq!(listed["containerInstanceArns"], json!([]), "{listed:#}");
    let activities = aws(
        &s,
        &[
            "autoscaling",
            "describe-scaling-activities",
            "--auto-scaling-group-name",
            &name,
        ],
    );
    let activities = activities["Activities"].as_array().unwrap();
    assert_eq!(activities.len(), 4, "{activities:#?}");
    for id in &ids {
        for verb in ["Launching a new EC2 instance", "Terminating EC2 instance"] {
            let described = format!("{verb}: {id}");
            assert!(
                activities
                    .iter()
                    .any(|a| a["Description"] == described.as_str()
                        && a["StatusCode"] == "Successful"),
                "{described}: {activities:#?}"
            );
        }
    }

    aws(
        &s,
        &[
            "autoscaling",
            "delete-auto-scaling-group",
            "--auto-scaling-group-name",
            &name,
        ],
    );
    let left = aws(&s, &["autoscaling", "describe-auto-scaling-groups"]);
    assert_eq!(left["AutoScalingGroups"], json!([]));
}
