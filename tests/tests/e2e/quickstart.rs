//! The README's quickstart (seed 000's walk, against `berth up`), step by step with the real
//! `docker` and `aws` CLIs: build a small web image, create an ECR repository, log docker
//! in with `get-login-password`, tag, push, create a cluster, register a FARGATE task
//! definition (256 CPU, 512 MiB, port 8000), run the task on Fargate, wait for it, find its
//! IP, fetch its page from that IP, stop it.

use std::fs;
use std::process::Command;
use std::time::Duration;

use berth_e2e::docker_agent::wait_for;
use berth_e2e::{BerthServer, ServerOptions, assert_ok, ok_json, stdout_of, unique};
use serde_json::Value;

#[test]
fn the_readme_quickstart_works_step_by_step() {
    let s = BerthServer::start_with(ServerOptions {
        command: Some("up"),
        ..ServerOptions::default()
    });
    let registry = s.host();
    berth_e2e::docker_agent::wait_instances(&s, "berth-fargate-pool", 1);

    // 1. A small web image, nothing pulled: busybox's httpd serving /www on port 8000.
    let page = unique("Hello from Berth ");
    let ctx = s.scratch("hello");
    fs::create_dir_all(ctx.join("rootfs/bin")).unwrap();
    fs::create_dir_all(ctx.join("rootfs/www")).unwrap();
    fs::copy("/bin/busybox", ctx.join("rootfs/bin/busybox"))
        .expect("a static busybox: apt-get install busybox-static");
    fs::write(ctx.join("rootfs/www/index.html"), format!("{page}\n")).unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY rootfs/ /\nEXPOSE 8000\nCMD [\"/bin/busybox\",\"httpd\",\"-f\",\"-p\",\"8000\",\"-h\",\"/www\"]\n",
    )
    .unwrap();
    let local = format!("hello-{}", unique(""));
    s.docker_build(&local, &ctx, "docker build");

    // 2. The repository, docker login with the ECR password, tag, push.
    let repo = ok_json(&s.aws(&["ecr", "create-repository", "--repository-name", "hello"]));
    let uri = repo["repository"]["repositoryUri"].as_str().unwrap();
    assert_eq!(uri, format!("{registry}/hello"));
    let password = s.aws(&["ecr", "get-login-password"]);
    assert_ok(&password, "aws ecr get-login-password");
    assert_ok(
        &s.docker_stdin(
            &["login", "--username", "AWS", "--password-stdin", &registry],
            Some(stdout_of(&password).trim()),
        ),
        "docker login",
    );
    let image = format!("{uri}:v1");
    s.track_image(&image);
    assert_ok(&s.docker(&["tag", &local, &image]), "docker tag");
    assert_ok(&s.docker(&["push", &image]), "docker push");
    let images = ok_json(&s.aws(&["ecr", "list-images", "--repository-name", "hello"]));
    assert_eq!(images["imageIds"][0]["imageTag"], "v1", "{images:#}");

    // 3. The cluster and a FARGATE task definition: 256 CPU, 512 MiB, port 8000.
    let cluster = ok_json(&s.aws(&["ecs", "create-cluster", "--cluster-name", "demo"]));
    assert_eq!(cluster["cluster"]["status"], "ACTIVE");
    let containers = format!(
        r#"[{{"name":"web","image":"{image}","portMappings":[{{"containerPort":8000}}]}}]"#
    );
    let td = ok_json(&s.aws(&[
        "ecs",
        "register-task-definition",
        "--family",
        "hello",
        "--requires-compatibilities",
        "FARGATE",
        "--network-mode",
        "awsvpc",
        "--cpu",
        "256",
        "--memory",
        "512",
        "--container-definitions",
        &containers,
    ]));
    assert_eq!(td["taskDefinition"]["revision"], 1);
    assert!(
        td["taskDefinition"]["compatibilities"]
            .as_array()
            .unwrap()
            .contains(&Value::from("FARGATE"))
    );

    // 4. Run it on Fargate, wait until it runs, find its IP, fetch the page, stop it.
    let task_arn = ok_json(&s.aws(&[
        "ecs",
        "run-task",
        "--cluster",
        "demo",
        "--launch-type",
        "FARGATE",
        "--task-definition",
        "hello",
        "--network-configuration",
        "awsvpcConfiguration={subnets=[subnet-default],securityGroups=[sg-default],assignPublicIp=ENABLED}",
        "--query",
        "tasks[0].taskArn",
    ]));
    let task_arn = task_arn.as_str().expect("a task ARN").to_owned();
    assert_ok(
        &s.aws(&[
            "ecs",
            "wait",
            "tasks-running",
            "--cluster",
            "demo",
            "--tasks",
            &task_arn,
        ]),
        "aws ecs wait tasks-running",
    );
    let ip = ok_json(&s.aws(&[
        "ecs",
        "describe-tasks",
        "--cluster",
        "demo",
        "--tasks",
        &task_arn,
        "--query",
        "tasks[0].attachments[0].details[?name=='privateIPv4Address'].value | [0]",
    ]));
    let ip = ip.as_str().expect("the task's private IP").to_owned();
    berth_e2e::require_tool("curl");
    let body = wait_for(
        &format!("http://{ip}:8000/ to answer"),
        Duration::from_secs(60),
        || {
            let out = Command::new("curl")
                .args(["-fsS", "--max-time", "5", &format!("http://{ip}:8000/")])
                .output()
                .ok()?;
            out.status.success().then(|| stdout_of(&out))
        },
    );
    assert_eq!(body.trim(), page);
    assert_ok(
        &s.aws(&["ecs", "stop-task", "--cluster", "demo", "--task", &task_arn]),
        "aws ecs stop-task",
    );
    assert_ok(
        &s.aws(&[
            "ecs",
            "wait",
            "tasks-stopped",
            "--cluster",
            "demo",
            "--tasks",
            &task_arn,
        ]),
        "aws ecs wait tasks-stopped",
    );
    let stopped = ok_json(&s.aws(&[
        "ecs",
        "describe-tasks",
        "--cluster",
        "demo",
        "--tasks",
        &task_arn,
    ]));
    assert_eq!(
        stopped["tasks"][0]["stopCode"], "UserInitiated",
        "{stopped:#}"
    );
}
