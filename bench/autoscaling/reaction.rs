//! Auto scaling reaction time (issue 21): from the start of sustained load to the new tasks
//! RUNNING and receiving traffic. `berth up` (the binary in BERTH_BIN) with Berth's metrics
//! every `--metrics-period` seconds; a Fargate service of 2 tasks behind an ALB (the e2e
//! harness's `WebService`: busybox httpd, an `ip` target group health-checked every 5 s,
//! healthy after 2 checks); target tracking on ALBRequestCountPerTarget (600 a minute per
//! target, min 2, max 4); `wrk` with 4 connections as the load. Prints one JSON line per
//! round: seconds from the load's start to the policy's activity (the scale-out decision),
//! to 4 tasks RUNNING, and to 4 distinct tasks answering through the load balancer (the
//! reaction time). Each round starts after five alarm periods of idling; between rounds,
//! once the idle AlarmHigh has left ALARM, the service is scaled back to 2 by hand.
//!
//! Usage: reaction [--metrics-period SECONDS] [--rounds N]

use std::time::{Duration, Instant};

use berth_e2e::docker_agent::wait_for;
use berth_e2e::service::Svc;
use berth_e2e::web::{Load, WebService};
use berth_e2e::{BerthServer, ServerOptions, ok_json};
use serde_json::json;

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} takes a number"))
        })
        .unwrap_or(default)
}

fn main() {
    let period = arg("--metrics-period", 2);
    let rounds = arg("--rounds", 3);
    let s = BerthServer::start_with(ServerOptions {
        command: Some("up"),
        env: vec![("BERTH_METRICS_PERIOD_SECONDS".into(), period.to_string())],
        ..ServerOptions::default()
    });
    let web = WebService::create(&s, 2);
    let resource_id = format!("service/{}/{}", web.cluster, web.name);
    let target = [
        "--service-namespace",
        "ecs",
        "--scalable-dimension",
        "ecs:service:DesiredCount",
        "--resource-id",
        resource_id.as_str(),
    ];
    let aas = |op: &str, extra: &[&str]| {
        let mut args = vec!["application-autoscaling", op];
        args.extend_from_slice(&target);
        args.extend_from_slice(extra);
        ok_json(&s.aws(&args))
    };
    aas(
        "register-scalable-target",
        &["--min-capacity", "2", "--max-capacity", "4"],
    );
    let config = json!({"TargetValue": 600.0,
        "PredefinedMetricSpecification": {
            "PredefinedMetricType": "ALBRequestCountPerTarget",
            "ResourceLabel": web.resource_label},
        "ScaleOutCooldown": 0, "DisableScaleIn": true});
    let policy = aas(
        "put-scaling-policy",
        &[
            "--policy-name",
            "requests",
            "--policy-type",
            "TargetTrackingScaling",
            "--target-tracking-scaling-policy-configuration",
            &config.to_string(),
        ],
    );
    let high = policy["Alarms"][0]["AlarmName"]
        .as_str()
        .expect("the policy's AlarmHigh")
        .to_owned();
    let svc = Svc {
        s: &s,
        cluster: web.cluster.clone(),
        name: web.name.clone(),
    };
    let activities = || {
        ok_json(&s.aws(&[
            "application-autoscaling",
            "describe-scaling-activities",
            "--service-namespace",
            "ecs",
            "--resource-id",
            &resource_id,
        ]))["ScalingActivities"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["Description"] == "Setting desired count to 4.")
            .count()
    };
    // Before each round the service idles for five alarm periods (AlarmHigh's evaluation
    // range), so the alarm decides on a full range of quiet datapoints as a steady service
    // would, not on the few a new target group has (missing data lets fewer decide).
    let idle = Duration::from_secs(5 * period.clamp(10, 60));
    for round in 1..=rounds {
        std::thread::sleep(idle);
        let before = activities();
        let start = Instant::now();
        let load = Load::start(web.address, 4, 1200);
        let (mut decided, mut running) = (None, None);
        let limit = Duration::from_secs(if period < 60 { 300 } else { 900 });
        let serving = loop {
            assert!(start.elapsed() < limit, "no reaction within {limit:?}");
            if decided.is_none() && activities() > before {
                decided = Some(start.elapsed());
            }
            if running.is_none() && decided.is_some() {
                let d = svc.describe();
                if d["runningCount"] == 4 {
                    running = Some(start.elapsed());
                }
            }
            if running.is_some() && web.answering(32).len() == 4 {
                break start.elapsed();
            }
            std::thread::sleep(Duration::from_millis(250));
        };
        drop(load);
        println!(
            "{}",
            json!({
                "round": round,
                "metrics_period_seconds": period,
                "decided_s": decided.unwrap().as_secs_f64(),
                "running_s": running.unwrap().as_secs_f64(),
                "serving_s": serving.as_secs_f64(),
            })
        );
        // Back to 2 by hand (scale-in is disabled) once AlarmHigh has left ALARM (its
        // datapoints missing without requests), and wait for it.
        wait_for("AlarmHigh out of ALARM", limit, || {
            let v = ok_json(&s.aws(&["cloudwatch", "describe-alarms", "--alarm-names", &high]));
            (v["MetricAlarms"][0]["StateValue"] != "ALARM").then_some(())
        });
        ok_json(&s.aws(&[
            "ecs",
            "update-service",
            "--cluster",
            &web.cluster,
            "--service",
            &web.name,
            "--desired-count",
            "2",
        ]));
        wait_for(
            "the service back at 2 tasks",
            Duration::from_secs(120),
            || (web.healthy_targets(&s) == 2 && svc.describe()["runningCount"] == 2).then_some(()),
        );
    }
}
