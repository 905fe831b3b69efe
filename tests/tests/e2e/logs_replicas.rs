//! CloudWatch Logs across replicas (`berth server --store etcd://…`, a three-member etcd
//! cluster from Debian's etcd-server on loopback ports), driven by the real aws CLI: a batch
//! acknowledged by one replica is read through every other, survives `kill -9` of the
//! replica that took it, reads the same once the leader has sealed the journal, and reaches
//! a live tail on another replica. Each test says SKIPPED plainly when etcd is not
//! installed (scripts/test.sh installs it).

use std::time::{Duration, Instant};

use berth_e2e::docker_agent::wait_for;
use berth_e2e::{BerthServer, ServerOptions, now_ms, ok_json, random_secret, unique};
use berth_store::testing::EtcdCluster;
use berth_store::{EtcdStore, Store};
use serde_json::{Value, json};

fn etcd() -> Option<EtcdCluster> {
    let cluster = EtcdCluster::start(3);
    if cluster.is_none() {
        eprintln!("SKIPPED: etcd is not installed (scripts/test.sh installs etcd-server)");
    }
    cluster
}

/// `n` replicas on `etcd`, sharing the root credentials; the leader seals journal entries
/// older than `seal_ms` every `seal_ms`.
fn replicas(etcd: &EtcdCluster, n: usize, seal_ms: u64) -> Vec<BerthServer> {
    let secret = random_secret();
    (0..n)
        .map(|_| {
            BerthServer::start_with(ServerOptions {
                args: vec!["--store".into(), etcd.url()],
                secret_key: Some(secret.clone()),
                env: vec![("BERTH_LOG_SEAL_INTERVAL_MS".into(), seal_ms.to_string())],
                ..Default::default()
            })
        })
        .collect()
}

fn setup(s: &BerthServer) -> (String, String) {
    let group = format!("/replicas/{}", unique("g"));
    let stream = "app/0".to_string();
    ok_json(&s.aws(&["logs", "create-log-group", "--log-group-name", &group]));
    ok_json(&s.aws(&[
        "logs",
        "create-log-stream",
        "--log-group-name",
        &group,
        "--log-stream-name",
        &stream,
    ]));
    (group, stream)
}

/// `aws logs put-log-events` of `messages` (timestamps now); the answer.
fn put(s: &BerthServer, group: &str, stream: &str, messages: &[String]) -> Value {
    let now = now_ms();
    let events: Vec<Value> = messages
        .iter()
        .map(|m| json!({"timestamp": now, "message": m}))
        .collect();
    ok_json(&s.aws(&[
        "logs",
        "put-log-events",
        "--log-group-name",
        group,
        "--log-stream-name",
        stream,
        "--log-events",
        &serde_json::to_string(&events).unwrap(),
    ]))
}

fn messages(events: &Value) -> Vec<String> {
    events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap().to_owned())
        .collect()
}

/// `aws logs get-log-events --start-from-head` (one page holds them all here).
fn get_all(s: &BerthServer, group: &str, stream: &str) -> Vec<String> {
    let page = ok_json(&s.aws(&[
        "logs",
        "get-log-events",
        "--log-group-name",
        group,
        "--log-stream-name",
        stream,
        "--start-from-head",
    ]));
    messages(&page["events"])
}

/// `aws logs filter-log-events` (the CLI follows nextToken).
fn filter(s: &BerthServer, group: &str, pattern: Option<&str>) -> Vec<String> {
    let mut args = vec!["logs", "filter-log-events", "--log-group-name", group];
    if let Some(p) = pattern {
        args.extend(["--filter-pattern", p]);
    }
    messages(&ok_json(&s.aws(&args))["events"])
}

fn keys(store: &EtcdStore, prefix: &str) -> usize {
    store.range(prefix, None, 0).unwrap().len()
}

/// Batches put through replica A are read through B and C at once (from etcd's journal),
/// one sequence across replicas; `kill -9` of A right after an acknowledged put loses
/// nothing; once the leader (whichever it is now) has sealed the journal, every replica
/// still reads every event exactly once; deleting the stream removes its keys.
#[test]
fn a_batch_acknowledged_by_one_replica_is_read_everywhere_and_survives_its_kill9() {
    let Some(etcd) = etcd() else { return };
    let store = EtcdStore::open(etcd.config()).unwrap();
    let mut servers = replicas(&etcd, 3, 2000);
    let (group, stream) = setup(&servers[0]);
    let mut expected = Vec::new();
    for batch in 0..5 {
        let lines: Vec<String> = (0..20).map(|i| format!("line {batch}-{i}")).collect();
        put(&servers[0], &group, &stream, &lines);
        expected.extend(lines);
    }
    // Another replica continues the same sequence.
    let through_a = put(&servers[0], &group, &stream, &["via a".to_owned()]);
    let through_b = put(&servers[1], &group, &stream, &["via b".to_owned()]);
    expected.extend(["via a".to_owned(), "via b".to_owned()]);
    let token = |v: &Value| {
        v["nextSequenceToken"]
            .as_str()
            .unwrap()
            .parse::<u128>()
            .unwrap()
    };
    assert!(
        token(&through_b) > token(&through_a),
        "{through_a} then {through_b}"
    );
    assert_eq!(get_all(&servers[1], &group, &stream), expected);
    assert_eq!(get_all(&servers[2], &group, &stream), expected);
    assert_eq!(filter(&servers[2], &group, None), expected);
    assert_eq!(filter(&servers[1], &group, Some("\"line 3-\"")).len(), 20);

    // kill -9 of the replica that acknowledged the last batch: B still reads it.
    let last: Vec<String> = (0..10).map(|i| format!("last {i}")).collect();
    put(&servers[0], &group, &stream, &last);
    servers[0].kill9();
    expected.extend(last);
    assert_eq!(get_all(&servers[1], &group, &stream), expected);
    assert_eq!(filter(&servers[2], &group, None), expected);

    // The leader (re-elected if it was A) seals the journal: nothing left unsealed.
    wait_for("the journal to be sealed", Duration::from_secs(60), || {
        (keys(&store, "logs-journal/") == 0 && keys(&store, "logs-sealed/") > 0).then_some(())
    });
    for s in &servers[1..] {
        assert_eq!(get_all(s, &group, &stream), expected, "after sealing");
        assert_eq!(filter(s, &group, None), expected, "after sealing");
    }
    // More after the seal reads together with it.
    put(&servers[2], &group, &stream, &["after seal".to_owned()]);
    expected.push("after seal".to_owned());
    assert_eq!(get_all(&servers[1], &group, &stream), expected);
    let described =
        ok_json(&servers[1].aws(&["logs", "describe-log-streams", "--log-group-name", &group]));
    let described = &described["logStreams"][0];
    assert!(
        described["storedBytes"].as_u64().unwrap() > 0,
        "{described}"
    );
    assert!(
        described["lastEventTimestamp"].as_i64().is_some(),
        "{described}"
    );

    ok_json(&servers[2].aws(&[
        "logs",
        "delete-log-stream",
        "--log-group-name",
        &group,
        "--log-stream-name",
        &stream,
    ]));
    for prefix in [
        "logs-journal/",
        "logs-sealed/",
        "logs-head/",
        "logs-segments/",
    ] {
        assert_eq!(keys(&store, prefix), 0, "{prefix} after delete-log-stream");
    }
}

/// `aws logs start-live-tail` on replica B shows the lines put through replica A, in
/// order, each once.
#[test]
fn a_live_tail_on_one_replica_sees_batches_put_through_another() {
    let Some(etcd) = etcd() else { return };
    let servers = replicas(&etcd, 2, 2000);
    let (group, stream) = setup(&servers[0]);
    let tail = servers[1].start_live_tail(&group);
    // A numbered line every 300 ms through A until the tail on B shows one, then 10 more.
    let mut seen: Vec<u64> = Vec::new();
    let mut n = 0u64;
    // Each put is an `aws` CLI run: seconds each on a loaded 2-core machine.
    let deadline = Instant::now() + Duration::from_secs(240);
    while seen.len() < 11 && Instant::now() < deadline {
        put(&servers[0], &group, &stream, &[format!("tail {n}")]);
        n += 1;
        while let Ok((line, _)) = tail.lines.recv_timeout(Duration::from_millis(300)) {
            let number = line
                .strip_prefix("tail ")
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or_else(|| panic!("unexpected live tail line {line:?}"));
            seen.push(number);
        }
    }
    assert!(
        seen.len() >= 11,
        "the live tail on B showed {seen:?} of {n} lines"
    );
    // Once following, every line arrives, in order, exactly once.
    let first = seen[0];
    assert_eq!(seen, (first..first + seen.len() as u64).collect::<Vec<_>>());
}
