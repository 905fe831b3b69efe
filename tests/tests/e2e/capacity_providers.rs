//! ECS cluster auto scaling with the real aws CLI and real agents (run by `berth server`
//! itself, the in-process provisioner): a cluster whose only capacity is an Auto Scaling
//! group capacity provider at zero instances, with managed scaling and managed termination
//! protection, runs a service by starting an instance (its task waits in PROVISIONING until
//! then), shows CapacityProviderReservation in `aws cloudwatch get-metric-data`, and scales
//! back to zero when the service is deleted. Short metrics period and scale-in wait
//! (`BERTH_METRICS_PERIOD_SECONDS`, `BERTH_MANAGED_SCALING_SCALE_IN_SECONDS`).

use std::time::Duration;

use base64::Engine;
use berth_e2e::docker_agent::{cluster_with_image, httpd, register, wait_for, wait_status};
use berth_e2e::{BerthServer, ServerOptions, ok_json, unique};
use berth_testkit::now_ms;
use serde_json::{Value, json};

fn aws(s: &BerthServer, args: &[&str]) -> Value {
    let out = s.aws(args);
    if out.stdout.is_empty() && out.status.success() {
        return Value::Null;
    }
    ok_json(&out)
}

fn group(s: &BerthServer, name: &str) -> Value {
    aws(
        s,
        &[
            "autoscaling",
            "describe-auto-scaling-groups",
            "--auto-scaling-group-names",
            name,
        ],
    )["AutoScalingGroups"][0]
        .clone()
}

fn iso(ms: i64) -> String {
    let (y, mo, d, h, mi, s) = berth_testkit::sigv4::utc_parts(ms / 1000);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// The service's tasks (any status).
fn service_tasks(s: &BerthServer, cluster: &str, service: &str) -> Vec<Value> {
    let mut all = Vec::new();
    for status in ["RUNNING", "STOPPED"] {
        let listed = aws(
            s,
            &[
                "ecs",
                "list-tasks",
                "--cluster",
                cluster,
                "--service-name",
                service,
                "--desired-status",
                status,
            ],
        );
        let arns: Vec<String> = listed["taskArns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_owned())
            .collect();
        if arns.is_empty() {
            continue;
        }
        let mut args = vec!["ecs", "describe-tasks", "--cluster", cluster, "--tasks"];
        args.extend(arns.iter().map(String::as_str));
        all.extend(aws(s, &args)["tasks"].as_array().unwrap().clone());
    }
    all
}

#[test]
fn a_capacity_provider_at_zero_runs_a_service_and_scales_back_to_zero() {
    let s = BerthServer::start_with(ServerOptions {
        env: vec![
            ("BERTH_METRICS_PERIOD_SECONDS".into(), "2".into()),
            ("BERTH_MANAGED_SCALING_SCALE_IN_SECONDS".into(), "6".into()),
        ],
        ..ServerOptions::default()
    });
    let (cluster, image) = cluster_with_image(&s, "cp-");
    let user_data = base64::engine::general_purpose::STANDARD.encode(format!(
        "#!/bin/bash\necho ECS_CLUSTER={cluster} >> /etc/ecs/ecs.config\n"
    ));
    let template_name = unique("cp-lt-");
    aws(
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
    let name = unique("cp-asg-");
    aws(
        &s,
        &[
            "autoscaling",
            "create-auto-scaling-group",
            "--auto-scaling-group-name",
            &name,
            "--launch-template",
            &format!("LaunchTemplateName={template_name}"),
            "--min-size",
            "0",
            "--max-size",
            "2",
            "--desired-capacity",
            "0",
            "--availability-zones",
            "us-east-1a",
            "--new-instances-protected-from-scale-in",
        ],
    );
    let group_arn = group(&s, &name)["AutoScalingGroupARN"]
        .as_str()
        .unwrap()
        .to_owned();
    let provider = unique("cp-");
    let created = aws(
        &s,
        &[
            "ecs",
            "create-capacity-provider",
            "--name",
            &provider,
            "--auto-scaling-group-provider",
            &json!({"autoScalingGroupArn": group_arn,
                    "managedScaling": {"status": "ENABLED", "targetCapacity": 100},
                    "managedTerminationProtection": "ENABLED"})
            .to_string(),
        ],
    );
    assert_eq!(created["capacityProvider"]["status"], "ACTIVE");
    aws(
        &s,
        &[
            "ecs",
            "put-cluster-capacity-providers",
            "--cluster",
            &cluster,
            "--capacity-providers",
            &provider,
            "--default-capacity-provider-strategy",
            &format!("capacityProvider={provider},weight=1"),
        ],
    );

    // A service of one task, by the cluster's default strategy: no instance yet, so its
    // task waits in PROVISIONING while managed scaling starts one.
    let family = unique("cp-web-");
    let definition = register(&s, &family, json!([httpd(&image, &unique("m-"), None)]));
    let service = unique("cp-svc-");
    let created = aws(
        &s,
        &[
            "ecs",
            "create-service",
            "--cluster",
            &cluster,
            "--service-name",
            &service,
            "--task-definition",
            &definition,
            "--desired-count",
            "1",
        ],
    );
    assert_eq!(
        created["service"]["capacityProviderStrategy"][0]["capacityProvider"],
        provider.as_str(),
        "{created:#}"
    );
    let task = wait_for("the service's task", Duration::from_secs(30), || {
        service_tasks(&s, &cluster, &service).into_iter().next()
    });
    assert_eq!(task["capacityProviderName"], provider.as_str(), "{task:#}");
    assert_eq!(task["launchType"], "EC2");
    let arn = task["taskArn"].as_str().unwrap().to_owned();
    let running = wait_status(&s, &cluster, &arn, "RUNNING");

    // It runs on the group's one instance, which carries the provider's name and is
    // protected from scale-in while the task runs there.
    let g = group(&s, &name);
    assert_eq!(g["DesiredCapacity"], 1, "{g:#}");
    let instance_id = g["Instances"][0]["InstanceId"].as_str().unwrap().to_owned();
    let described = aws(
        &s,
        &[
            "ecs",
            "describe-container-instances",
            "--cluster",
            &cluster,
            "--container-instances",
            running["containerInstanceArn"].as_str().unwrap(),
        ],
    );
    let instance = &described["containerInstances"][0];
    assert_eq!(instance["ec2InstanceId"], instance_id.as_str());
    assert_eq!(instance["capacityProviderName"], provider.as_str());
    wait_for("the instance protected", Duration::from_secs(30), || {
        (group(&s, &name)["Instances"][0]["ProtectedFromScaleIn"] == true).then_some(())
    });

    // The reservation in CloudWatch: 200 % while the task waited (M = 1, N = 0) or 100 %
    // once it runs (M = N = 1).
    let start = now_ms() - 300_000;
    let queries = json!([{"Id": "cpr", "MetricStat": {
        "Metric": {"Namespace": "AWS/ECS/ManagedScaling",
                   "MetricName": "CapacityProviderReservation",
                   "Dimensions": [{"Name": "ClusterName", "Value": cluster},
                                  {"Name": "CapacityProviderName", "Value": provider}]},
        "Period": 60, "Stat": "Maximum"}}])
    .to_string();
    let values = wait_for(
        "CapacityProviderReservation",
        Duration::from_secs(30),
        || {
            let v = aws(
                &s,
                &[
                    "cloudwatch",
                    "get-metric-data",
                    "--metric-data-queries",
                    &queries,
                    "--start-time",
                    &iso(start),
                    "--end-time",
                    &iso(now_ms() + 60_000),
                ],
            );
            let values: Vec<f64> = v["MetricDataResults"][0]["Values"]
                .as_array()?
                .iter()
                .filter_map(Value::as_f64)
                .collect();
            (!values.is_empty()).then_some(values)
        },
    );
    assert!(
        values.iter().all(|v| *v == 100.0 || *v == 200.0),
        "{values:?}"
    );

    // The service deleted: its task stops, the instance is idle, and after the scale-in
    // wait the group goes back to zero.
    aws(
        &s,
        &[
            "ecs",
            "delete-service",
            "--cluster",
            &cluster,
            "--service",
            &service,
            "--force",
        ],
    );
    wait_status(&s, &cluster, &arn, "STOPPED");
    wait_for("the group back at zero", Duration::from_secs(90), || {
        let g = group(&s, &name);
        (g["DesiredCapacity"] == 0 && g["Instances"].as_array()?.is_empty()).then_some(())
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
    let causes: Vec<&str> = activities["Activities"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["Cause"].as_str())
        .collect();
    assert!(
        causes.iter().all(|c| c.contains(&format!(
            "managed scaling of ECS capacity provider {provider}"
        ))),
        "{causes:#?}"
    );
}
