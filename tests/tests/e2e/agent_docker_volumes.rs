//! EFS volumes on a real `berth agent` and the real Docker Engine, driven by the real `aws`
//! CLI: a file written through an `efsVolumeConfiguration` volume by one task is there for
//! the next task that mounts the same file system (Berth maps a file system to a directory
//! under the agent's `--efs-root`), and a different `rootDirectory` is a different place.

use berth_e2e::docker_agent::{Agent, cluster_with_image, run_task, wait_connected, wait_status};
use berth_e2e::{BerthServer, ok_json, unique};
use serde_json::{Value, json};

/// Registers a one-container task definition whose container runs `script` with the EFS
/// volume `data` (file system `fs`, `root`) mounted at /data.
fn register_with_efs(
    s: &BerthServer,
    family: &str,
    image: &str,
    root: &str,
    script: &str,
) -> String {
    let fs = "fs-0123456789abcdef0";
    let volumes = json!([{
        "name": "data",
        "efsVolumeConfiguration": {
            "fileSystemId": fs, "rootDirectory": root, "transitEncryption": "ENABLED"
        }
    }]);
    let containers = json!([{
        "name": "main", "image": image, "memory": 32, "essential": true,
        "entryPoint": ["sh", "-c"], "command": [script],
        "mountPoints": [{"sourceVolume": "data", "containerPath": "/data"}]
    }]);
    let v = ok_json(&s.aws(&[
        "ecs",
        "register-task-definition",
        "--family",
        family,
        "--network-mode",
        "bridge",
        "--container-definitions",
        &containers.to_string(),
        "--volumes",
        &volumes.to_string(),
    ]));
    let td = &v["taskDefinition"];
    assert!(
        td["requiresAttributes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == "ecs.capability.efs"),
        "{td:#}"
    );
    td["taskDefinitionArn"].as_str().unwrap().to_owned()
}

/// Runs one task of `td` to completion; its container's exit code.
fn run_to_exit(s: &BerthServer, cluster: &str, td: &str) -> Value {
    let task = run_task(s, cluster, td);
    let stopped = wait_status(s, cluster, &task, "STOPPED");
    stopped["containers"][0]["exitCode"].clone()
}

#[test]
fn a_file_written_to_an_efs_volume_is_there_for_the_next_task() {
    let s = BerthServer::start();
    let (cluster, image) = cluster_with_image(&s, "efs-");
    let efs_root = s.scratch(&unique("efs-root-"));
    let efs_root_arg = efs_root.display().to_string();
    let _agent = Agent::start(&s, &cluster, &["--efs-root", &efs_root_arg]);
    let instance = wait_connected(&s, &cluster);
    let names: Vec<&str> = instance["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["name"].as_str())
        .collect();
    assert!(names.contains(&"ecs.capability.efs"), "{names:?}");

    let marker = unique("written-by-the-first-task-");
    let writer = register_with_efs(
        &s,
        &unique("efs-writer-"),
        &image,
        "/app",
        &format!("echo {marker} > /data/note && exit 0"),
    );
    assert_eq!(run_to_exit(&s, &cluster, &writer), 0);
    // The file is in the file system's directory on the host.
    let on_host = std::fs::read_to_string(efs_root.join("fs-0123456789abcdef0/app/note"))
        .expect("the EFS directory on the host");
    assert_eq!(on_host.trim(), marker);

    // A second task (another definition, same file system and root) reads it back.
    let reader = register_with_efs(
        &s,
        &unique("efs-reader-"),
        &image,
        "/app",
        &format!("test \"$(cat /data/note)\" = {marker} && exit 0 || exit 7"),
    );
    assert_eq!(run_to_exit(&s, &cluster, &reader), 0);

    // Another rootDirectory of the same file system does not see it.
    let elsewhere = register_with_efs(
        &s,
        &unique("efs-elsewhere-"),
        &image,
        "/other",
        "test -e /data/note && exit 7 || exit 0",
    );
    assert_eq!(run_to_exit(&s, &cluster, &elsewhere), 0);
}
