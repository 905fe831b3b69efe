//! The awslogs log driver end to end: a real `berth agent` on Docker runs a task whose
//! container logs with `awslogs`; the agent ships its stdout and stderr to Berth's
//! CloudWatch Logs API, and `aws logs get-log-events` finds every line exactly once, in
//! order, in the stream ECS names (`prefix/container-name/task-id`) — also when the agent,
//! or the control plane, is killed with `kill -9` while the container prints.

use std::collections::BTreeSet;
use std::time::Duration;

use berth_e2e::docker_agent::{
    Agent, cluster_with_image, containers_of, docker_inspect, register, run_task, wait_connected,
    wait_for, wait_status,
};
use berth_e2e::{BerthServer, REGION, ok_json, unique};
use serde_json::{Value, json};

const LINES: usize = 10_000;
const PREFIX: &str = "e2e";
const CONTAINER: &str = "printer";

/// Prints `line 1` … `line 10000`, odd ones to stdout, even ones to stderr; with `pause`,
/// sleeps a fifth of a second every 100 lines (about twenty seconds in all), so that there
/// is time to kill something while it prints.
fn printer(image: &str, group: &str, pause: bool) -> Value {
    let pause = if pause {
        "[ $((i % 100)) = 1 ] && sleep 0.2;"
    } else {
        ""
    };
    let script = format!(
        "i=1; while [ $i -le {LINES} ]; do echo \"line $i\"; i=$((i+1)); \
         echo \"line $i\" >&2; i=$((i+1)); {pause} done"
    );
    json!([{
        "name": CONTAINER, "image": image, "memory": 64, "essential": true,
        "entryPoint": ["sh", "-c"], "command": [script],
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": group,
                "awslogs-region": REGION,
                "awslogs-stream-prefix": PREFIX
            }
        }
    }])
}

/// The stream ECS would name for the task's container.
fn stream_of(task_arn: &str) -> String {
    let task_id = task_arn.rsplit('/').next().unwrap();
    format!("{PREFIX}/{CONTAINER}/{task_id}")
}

/// Every event of the stream, from the head, following `nextForwardToken` to the end;
/// `None` while the control plane does not answer.
fn get_log_events(s: &BerthServer, group: &str, stream: &str) -> Option<Vec<(i64, String)>> {
    let mut events = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut args = vec![
            "logs",
            "get-log-events",
            "--log-group-name",
            group,
            "--log-stream-name",
            stream,
            "--start-from-head",
        ];
        if let Some(token) = &token {
            args.extend(["--next-token", token.as_str()]);
        }
        let out = s.aws(&args);
        if !out.status.success() {
            return None;
        }
        let page: Value = serde_json::from_slice(&out.stdout).ok()?;
        let page_events = page["events"].as_array().cloned().unwrap_or_default();
        if page_events.is_empty() {
            return Some(events);
        }
        events.extend(page_events.iter().map(|e| {
            (
                e["timestamp"].as_i64().unwrap(),
                e["message"].as_str().unwrap().to_owned(),
            )
        }));
        let next = page["nextForwardToken"].as_str().map(str::to_owned);
        if next.is_none() || next == token {
            return Some(events);
        }
        token = next;
    }
}

/// Waits until the stream holds all the lines (and a moment more, for anything extra to
/// show), then checks: each line exactly once; each stream's lines in order; events in
/// time order.
#[track_caller]
fn assert_every_line_once(s: &BerthServer, group: &str, stream: &str) {
    let events = wait_for(
        &format!("{LINES} events in {stream}"),
        Duration::from_secs(120),
        || get_log_events(s, group, stream).filter(|e| e.len() >= LINES),
    );
    std::thread::sleep(Duration::from_secs(2));
    let events = get_log_events(s, group, stream).unwrap_or(events);
    let numbers: Vec<usize> = events
        .iter()
        .map(|(_, m)| {
            m.strip_prefix("line ")
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("unexpected message {m:?}"))
        })
        .collect();
    let mut seen = BTreeSet::new();
    let twice: Vec<usize> = numbers
        .iter()
        .copied()
        .filter(|n| !seen.insert(*n))
        .collect();
    assert!(twice.is_empty(), "lines shipped twice: {twice:?}");
    let missing: Vec<usize> = (1..=LINES).filter(|n| !seen.contains(n)).collect();
    assert!(missing.is_empty(), "lines never shipped: {missing:?}");
    assert_eq!(numbers.len(), LINES);
    for parity in [0, 1] {
        let one_stream: Vec<usize> = numbers
            .iter()
            .copied()
            .filter(|n| n % 2 == parity)
            .collect();
        let disorder = one_stream.windows(2).find(|w| w[0] >= w[1]);
        assert!(
            disorder.is_none(),
            "stdout and stderr each in order: {disorder:?}"
        );
    }
    // Across stdout and stderr, the order is Docker's timestamps (each stream is stamped by
    // its own reader, so a line can be stamped before one of the other stream shipped in an
    // earlier batch): GetLogEvents answers in time order, as CloudWatch does.
    let late = events.windows(2).filter(|w| w[0].0 > w[1].0).count();
    assert_eq!(late, 0, "events out of time order in GetLogEvents");
    let crossed = numbers.windows(2).filter(|w| w[0] > w[1]).count();
    eprintln!(
        "{crossed} places where a stderr line is timestamped before the stdout line printed just before it"
    );
}

fn create_group(s: &BerthServer) -> String {
    let group = unique("/ecs/e2e-");
    ok_json(&s.aws(&["logs", "create-log-group", "--log-group-name", &group]));
    group
}

fn count(s: &BerthServer, group: &str, stream: &str) -> usize {
    get_log_events(s, group, stream).map_or(0, |e| e.len())
}

/// Waits until the first lines are in the stream (one cheap call per look).
fn wait_first_lines(s: &BerthServer, group: &str, stream: &str) {
    wait_for("the first lines", Duration::from_secs(60), || {
        let out = s.aws(&[
            "logs",
            "get-log-events",
            "--log-group-name",
            group,
            "--log-stream-name",
            stream,
            "--start-from-head",
            "--limit",
            "1",
        ]);
        let page: Value = serde_json::from_slice(&out.stdout).ok()?;
        (page["events"].as_array()?.len() == 1).then_some(())
    });
}

#[test]
fn ten_thousand_lines_arrive_exactly_once_in_the_stream_ecs_names() {
    let s = BerthServer::start();
    let (cluster, image) = cluster_with_image(&s, "awslogs-");
    let agent = Agent::start(&s, &cluster, &[]);
    wait_connected(&s, &cluster);
    let group = create_group(&s);
    let definition = register(&s, &unique("printer-"), printer(&image, &group, false));
    let task = run_task(&s, &cluster, &definition);
    let stopped = wait_status(&s, &cluster, &task, "STOPPED");
    assert_eq!(stopped["containers"][0]["exitCode"], 0, "{stopped:#}");
    let stream = stream_of(&task);
    assert_every_line_once(&s, &group, &stream);

    // Docker was given json-file (its own awslogs driver would call AWS).
    let id = &containers_of(&s, &task)[0];
    let inspect = docker_inspect(&s, id);
    assert_eq!(inspect["HostConfig"]["LogConfig"]["Type"], "json-file");
    // DescribeLogStreams shows the stream (the aws CLI leaves out Berth's cursor member).
    let streams = ok_json(&s.aws(&["logs", "describe-log-streams", "--log-group-name", &group]));
    assert_eq!(streams["logStreams"][0]["logStreamName"], stream.as_str());

    // Without the group, the task stops as ECS stops it.
    let missing = register(
        &s,
        &unique("nogroup-"),
        printer(&image, "/ecs/does-not-exist", false),
    );
    let task = run_task(&s, &cluster, &missing);
    let stopped = wait_status(&s, &cluster, &task, "STOPPED");
    let reason = stopped["stoppedReason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with(
            "CannotStartContainerError: Error response from daemon: failed to initialize \
             logging driver: failed to create Cloudwatch log stream: ResourceNotFoundException"
        ),
        "{stopped:#}"
    );
    drop(agent);
}

#[test]
fn an_agent_killed_while_the_container_prints_loses_and_repeats_nothing() {
    let s = BerthServer::start();
    let (cluster, image) = cluster_with_image(&s, "awslogs-agent-");
    let mut agent = Agent::start(&s, &cluster, &[]);
    wait_connected(&s, &cluster);
    let group = create_group(&s);
    let definition = register(&s, &unique("printer-"), printer(&image, &group, true));
    let task = run_task(&s, &cluster, &definition);
    wait_status(&s, &cluster, &task, "RUNNING");
    let stream = stream_of(&task);
    // Some lines are shipped: the agent dies mid-stream.
    wait_first_lines(&s, &group, &stream);
    agent.kill9();
    eprintln!(
        "agent killed with {} lines shipped",
        count(&s, &group, &stream)
    );
    agent.kill9_and_restart(&s, &[]);
    wait_status(&s, &cluster, &task, "STOPPED");
    assert_every_line_once(&s, &group, &stream);
    // The restarted agent said where it resumed from.
    assert!(agent.log().contains("shipping logs"), "{}", agent.log());
    drop(agent);
}

#[test]
fn a_control_plane_killed_while_the_container_prints_loses_nothing() {
    let mut s = BerthServer::start();
    let (cluster, image) = cluster_with_image(&s, "awslogs-cp-");
    let agent = Agent::start(&s, &cluster, &[]);
    wait_connected(&s, &cluster);
    let group = create_group(&s);
    let definition = register(&s, &unique("printer-"), printer(&image, &group, true));
    let task = run_task(&s, &cluster, &definition);
    wait_status(&s, &cluster, &task, "RUNNING");
    let stream = stream_of(&task);
    wait_first_lines(&s, &group, &stream);
    s.kill9();
    let printed = |what: &str| {
        let id = &containers_of(&s, &task)[0];
        let out = s.docker(&["logs", id]);
        let lines = out.stdout.split(|b| *b == b'\n').count()
            + out.stderr.split(|b| *b == b'\n').count()
            - 2;
        eprintln!("{lines} lines printed {what}");
    };
    printed("when the control plane was killed");
    std::thread::sleep(Duration::from_secs(2));
    printed("when it was restarted");
    s.restart();
    wait_status(&s, &cluster, &task, "STOPPED");
    assert_every_line_once(&s, &group, &stream);
    drop(agent);
}

/// A container printing a JSON line every tenth of a second, every fifth with level error;
/// the agent creates its group (`awslogs-create-group`).
fn ticker(image: &str, group: &str) -> Value {
    let script = "i=0; while true; do if [ $((i % 5)) = 0 ]; then l=error; else l=info; fi; \
                  echo \"{\\\"n\\\":$i,\\\"level\\\":\\\"$l\\\"}\"; i=$((i+1)); sleep 0.1; done";
    json!([{
        "name": CONTAINER, "image": image, "memory": 64, "essential": true,
        "entryPoint": ["sh", "-c"], "command": [script],
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": group,
                "awslogs-region": REGION,
                "awslogs-stream-prefix": PREFIX,
                "awslogs-create-group": "true"
            }
        }
    }])
}

#[test]
fn a_running_container_is_followed_live_and_filtered_with_a_json_pattern() {
    use std::time::Instant;

    let s = BerthServer::start();
    let (cluster, image) = cluster_with_image(&s, "awslogs-");
    let agent = Agent::start(&s, &cluster, &[]);
    wait_connected(&s, &cluster);
    let group = unique("/ecs/live-");
    let definition = register(&s, &unique("ticker-"), ticker(&image, &group));
    let task = run_task(&s, &cluster, &definition);
    wait_status(&s, &cluster, &task, "RUNNING");
    let stream = stream_of(&task);
    wait_first_lines(&s, &group, &stream);

    // `aws logs start-live-tail` on the group the agent created.
    let tail = s.start_live_tail(&group);
    let (tx, lines) = std::sync::mpsc::channel::<(u64, i64)>();
    std::thread::spawn(move || {
        while let Ok((line, seen_ms)) = tail.lines.recv() {
            let n = serde_json::from_str::<Value>(&line)
                .ok()
                .and_then(|v| v["n"].as_u64());
            if let Some(n) = n
                && tx.send((n, seen_ms)).is_err()
            {
                return;
            }
        }
    });
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.len() < 30 && Instant::now() < deadline {
        if let Ok(got) = lines.recv_timeout(Duration::from_secs(1)) {
            seen.push(got);
        }
    }
    drop(lines); // ends the reader, which drops (kills) the tail
    assert_eq!(seen.len(), 30, "live tail showed {seen:?}");
    let first = seen[0].0;
    let ns: Vec<u64> = seen.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        ns,
        (first..first + 30).collect::<Vec<_>>(),
        "followed in order, none missed"
    );

    // Stopped, so that reading the stream to its end ends.
    ok_json(&s.aws(&["ecs", "stop-task", "--cluster", &cluster, "--task", &task]));
    wait_status(&s, &cluster, &task, "STOPPED");

    // The events as stored, with Docker's timestamps: how long after the container printed
    // a line the CLI showed it (reported; the CLI prints once a second).
    let stored = get_log_events(&s, &group, &stream).expect("get-log-events");
    let mut delays: Vec<i64> = seen
        .iter()
        .filter_map(|(n, seen_ms)| {
            let (ts, _) = stored
                .iter()
                .find(|(_, m)| serde_json::from_str::<Value>(m).is_ok_and(|v| v["n"] == *n))?;
            Some(seen_ms - ts)
        })
        .collect();
    delays.sort_unstable();
    eprintln!(
        "container print → live tail stdout over {} lines: median {} ms, max {} ms",
        delays.len(),
        delays[delays.len() / 2],
        delays[delays.len() - 1]
    );

    // FilterLogEvents with a JSON pattern: exactly the error lines.
    let found = ok_json(&s.aws(&[
        "logs",
        "filter-log-events",
        "--log-group-name",
        &group,
        "--filter-pattern",
        "{ $.level = \"error\" }",
    ]));
    let found: Vec<String> = found["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap().to_owned())
        .collect();
    let want: Vec<String> = stored
        .iter()
        .filter(|(_, m)| m.contains("\"level\":\"error\""))
        .map(|(_, m)| m.clone())
        .collect();
    assert!(!want.is_empty());
    assert_eq!(found, want);
    assert!(
        found.len() * 5 >= stored.len() - 5,
        "about one line in five is an error line"
    );

    ok_json(&s.aws(&["ecs", "stop-task", "--cluster", &cluster, "--task", &task]));
    wait_status(&s, &cluster, &task, "STOPPED");
    drop(agent);
}
