//! The service scheduler at scale, on a SIMULATED runtime (labelled as such: `berth agent
//! --runtime simulated` acts container life cycles out in memory; everything else — the
//! server, the agents' ACS/TCS sessions, placement, the scheduler — is the real thing): a
//! 1,000-task service across 50 agents reaches steady state, and a rolling deployment of it
//! keeps to minimumHealthyPercent 100 / maximumPercent 200 at every observation.

use std::time::Duration;

use berth_e2e::docker_agent::{Agent, wait_for, wait_instances};
use berth_e2e::{BerthServer, ok_json, unique};
use serde_json::{Value, json};

const AGENTS: usize = 50;
const TASKS: i64 = 1000;

fn register(s: &BerthServer, family: &str, seconds: u32) -> String {
    let containers = json!([{"name": "app", "image": "busybox", "essential": true,
                             "cpu": 10, "memory": 16,
                             "command": ["sleep", seconds.to_string()]}]);
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

fn describe(s: &BerthServer, cluster: &str, name: &str) -> Value {
    ok_json(&s.aws(&[
        "ecs",
        "describe-services",
        "--cluster",
        cluster,
        "--services",
        name,
    ]))["services"][0]
        .clone()
}

fn completed(service: &Value, td: &str) -> bool {
    let d = &service["deployments"];
    d.as_array().unwrap().len() == 1
        && d[0]["taskDefinition"] == td
        && d[0]["rolloutState"] == "COMPLETED"
        && service["runningCount"] == TASKS
        && service["pendingCount"] == 0
}

#[test]
fn a_thousand_task_service_on_fifty_simulated_agents_rolls_out_within_bounds() {
    let s = BerthServer::start();
    let cluster = unique("scale-svc-");
    ok_json(&s.aws(&["ecs", "create-cluster", "--cluster-name", &cluster]));
    let _agents: Vec<Agent> = (0..AGENTS)
        .map(|_| Agent::start(&s, &cluster, &["--runtime", "simulated"]))
        .collect();
    wait_instances(&s, &cluster, AGENTS);
    let family = unique("scale-app-");
    let v1 = register(&s, &family, 100_000);
    let name = unique("big-");
    ok_json(&s.aws(&[
        "ecs",
        "create-service",
        "--cluster",
        &cluster,
        "--service-name",
        &name,
        "--task-definition",
        &v1,
        "--desired-count",
        &TASKS.to_string(),
        "--deployment-configuration",
        "maximumPercent=200,minimumHealthyPercent=100",
    ]));
    wait_for("1,000 tasks steady", Duration::from_secs(300), || {
        completed(&describe(&s, &cluster, &name), &v1).then_some(())
    });

    let v2 = register(&s, &family, 200_000);
    ok_json(&s.aws(&[
        "ecs",
        "update-service",
        "--cluster",
        &cluster,
        "--service",
        &name,
        "--task-definition",
        &v2,
    ]));
    let mut observations = 0;
    let mut peak = 0;
    wait_for("the rollout to complete", Duration::from_secs(300), || {
        let service = describe(&s, &cluster, &name);
        let running = service["runningCount"].as_i64().unwrap();
        let live = running + service["pendingCount"].as_i64().unwrap();
        observations += 1;
        peak = peak.max(live);
        assert!(
            live <= 2 * TASKS,
            "over maximumPercent: {live} tasks not stopped"
        );
        assert!(
            running >= TASKS,
            "under minimumHealthyPercent: {running} running"
        );
        completed(&service, &v2).then_some(())
    });
    assert!(observations > 1, "the rollout was observed under way");
    assert!(
        peak > TASKS,
        "new tasks started before old ones stopped (peak {peak})"
    );
}
