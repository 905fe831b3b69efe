use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_runtime::{
    ContainerId, ContainerRuntime, ContainerSpec, LogSource, SimulatedRuntime, SimulationConfig,
};
use regex::Regex;
use tokio::sync::watch;

use super::cursor::INTERLEAVE_MARGIN_NANOS;
use super::*;
use crate::testing::{Failure, FakeLogs};

fn options(pairs: &[(&str, &str)]) -> Result<AwslogsOptions, OptionsError> {
    let map: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    AwslogsOptions::parse(&map, "agent-region")
}

fn base() -> Vec<(&'static str, &'static str)> {
    vec![
        ("awslogs-group", "/ecs/app"),
        ("awslogs-region", "eu-west-1"),
    ]
}

#[test]
fn options_default_as_docker_and_ecs_do() {
    let o = options(&base()).unwrap();
    assert_eq!(
        (o.group.as_str(), o.region.as_str()),
        ("/ecs/app", "eu-west-1")
    );
    assert_eq!(o.mode, DeliveryMode::Blocking);
    assert_eq!(o.max_buffer_size, 1 << 20);
    assert!(!o.create_group && o.multiline.is_none());
    // ECS's stream name with a prefix, Docker's (the container id) without.
    let arn = "arn:aws:ecs:eu-west-1:000000000000:task/prod/0123456789abcdef";
    assert_eq!(o.stream_name("web", arn, "c0ffee"), "c0ffee");
    let o = options(&[base(), vec![("awslogs-stream-prefix", "svc")]].concat()).unwrap();
    assert_eq!(
        o.stream_name("web", arn, "c0ffee"),
        "svc/web/0123456789abcdef"
    );
    let o = options(&[("awslogs-group", "g")]).unwrap();
    assert_eq!(o.region, "agent-region");

    let o = options(
        &[
            base(),
            vec![
                ("awslogs-create-group", "true"),
                ("mode", "non-blocking"),
                ("max-buffer-size", "25m"),
            ],
        ]
        .concat(),
    )
    .unwrap();
    assert!(o.create_group);
    assert_eq!(o.mode, DeliveryMode::NonBlocking);
    assert_eq!(o.max_buffer_size, 25 << 20);
}

#[test]
fn bad_options_are_refused_with_dockers_messages() {
    let refused =
        |extra: Vec<(&str, &str)>| options(&[base(), extra].concat()).unwrap_err().to_string();
    assert_eq!(
        options(&[("awslogs-region", "r")]).unwrap_err().to_string(),
        "must specify a value for log opt 'awslogs-group'"
    );
    assert_eq!(
        refused(vec![
            ("awslogs-datetime-format", "%Y"),
            ("awslogs-multiline-pattern", "^x")
        ]),
        "you cannot configure log opt 'awslogs-datetime-format' and 'awslogs-multiline-pattern' at the same time"
    );
    assert_eq!(
        refused(vec![("awslogs-bogus", "1")]),
        "unknown log opt 'awslogs-bogus' for awslogs log driver"
    );
    assert_eq!(
        refused(vec![("mode", "fast")]),
        "logger: logging mode not supported: fast"
    );
    assert!(refused(vec![("awslogs-create-group", "yes")]).contains("ParseBool"));
    assert!(refused(vec![("max-buffer-size", "lots")]).contains("invalid size"));
    assert!(refused(vec![("awslogs-multiline-pattern", "(")]).contains("multiline pattern"));
}

#[test]
fn sizes_read_as_docker_reads_them() {
    for (text, bytes) in [
        ("1024", 1024),
        ("4m", 4 << 20),
        ("25MiB", 25 << 20),
        ("1.5k", 1536),
        ("512 kb", 512 << 10),
        ("2G", 2 << 30),
    ] {
        assert_eq!(parse_size(text), Some(bytes), "{text}");
    }
    for bad in ["", "m", "1x", "1.", ".5m", "-1m"] {
        assert_eq!(parse_size(bad), None, "{bad}");
    }
}

#[test]
fn datetime_formats_become_dockers_patterns() {
    let pattern = datetime_format_regex("%Y-%m-%d %H:%M:%S");
    assert_eq!(
        pattern,
        r"\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[1,2][0-9]|3[0,1]) (?:[0,1][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    );
    let re = Regex::new(&pattern).unwrap();
    assert!(re.is_match("2024-05-01 12:30:59 GET /"));
    assert!(!re.is_match("    at Foo.bar(Foo.java:12)"));
    let re = Regex::new(&datetime_format_regex("%b %d, %Y %I:%M:%S %p%L")).unwrap();
    assert!(re.is_match("Mar 07, 2024 01:02:03 PM.123 started"));
    // Unknown directives vanish, a lone % stays.
    assert_eq!(datetime_format_regex("%Q%"), "%");
}

// ---- assembly ----

fn pos(nanos: i128, seen: u32) -> Position {
    Position { nanos, seen }
}

fn messages(events: &[Event]) -> Vec<&str> {
    events.iter().map(|e| e.message.as_str()).collect()
}

#[test]
fn partial_entries_are_joined_per_stream() {
    let mut a = Assembler::new(None);
    let now = Instant::now();
    let mut out = Vec::new();
    a.push(LogSource::Stdout, pos(5_000_000, 1), b"aaa", now, &mut out);
    a.push(
        LogSource::Stderr,
        pos(6_000_000, 1),
        b"err\n",
        now,
        &mut out,
    );
    a.push(LogSource::Stdout, pos(5_000_000, 2), b"bbb", now, &mut out);
    assert_eq!(messages(&out), ["err"]);
    assert!(!a.is_empty());
    assert_eq!(a.held_since(), Some(5_000_000));
    a.push(
        LogSource::Stdout,
        pos(7_000_000, 1),
        b"ccc\n",
        now,
        &mut out,
    );
    assert_eq!(messages(&out), ["err", "aaabbbccc"]);
    let joined = &out[1];
    assert_eq!(joined.timestamp, 5, "the first entry's time, in ms");
    assert_eq!(joined.end, Some(pos(7_000_000, 1)));
    assert!(a.is_empty());

    // Empty lines make no event; an unterminated last line is flushed at the end.
    out.clear();
    a.push(LogSource::Stdout, pos(8, 1), b"\n", now, &mut out);
    a.push(LogSource::Stdout, pos(9, 1), b"tail", now, &mut out);
    assert!(out.is_empty());
    a.flush_all(now, &mut out);
    assert_eq!(messages(&out), ["tail"]);
}

#[test]
fn multiline_events_start_at_the_pattern_and_close_when_idle() {
    let mut a = Assembler::new(Some(Regex::new("^INFO").unwrap()));
    let t0 = Instant::now();
    let mut out = Vec::new();
    let lines: [&[u8]; 5] = [
        b"  orphan\n",
        b"INFO one\n",
        b"  at x\n",
        b"\n",
        b"INFO two\n",
    ];
    for (i, line) in lines.iter().enumerate() {
        a.push(LogSource::Stdout, pos(i as i128, 1), line, t0, &mut out);
    }
    assert_eq!(messages(&out), ["  orphan", "INFO one\n  at x\n"]);
    assert_eq!(out[1].end, Some(pos(3, 1)));
    // Lines of the other stream go to an event of their own.
    a.push(LogSource::Stderr, pos(10, 1), b"  at y\n", t0, &mut out);
    a.push(LogSource::Stdout, pos(11, 1), b"  at z\n", t0, &mut out);
    assert_eq!(out.len(), 2);
    assert_eq!(a.idle_deadline(), Some(t0 + MULTILINE_IDLE));
    a.flush_idle(t0 + MULTILINE_IDLE / 2, &mut out);
    assert_eq!(out.len(), 2);
    a.flush_idle(t0 + MULTILINE_IDLE, &mut out);
    assert_eq!(messages(&out)[2..], ["INFO two\n  at z", "  at y"]);
    assert!(a.is_empty());
}

#[test]
fn events_over_the_size_limit_are_split() {
    let mut a = Assembler::new(None);
    let now = Instant::now();
    let mut out = Vec::new();
    // One entry: split at a character boundary, only the last piece carries the position.
    let line = format!(
        "{}é{}\n",
        "x".repeat(MAX_BYTES_PER_EVENT - 1),
        "y".repeat(10)
    );
    a.push(LogSource::Stdout, pos(1, 1), line.as_bytes(), now, &mut out);
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].message.len(), MAX_BYTES_PER_EVENT - 1);
    assert_eq!(out[0].end, None);
    assert_eq!(out[1].message, format!("é{}", "y".repeat(10)));
    assert_eq!(out[1].end, Some(pos(1, 1)));
    // A line of many partial entries is cut at an entry boundary, each piece with its own
    // position.
    out.clear();
    let entry = vec![b'z'; 16 * 1024];
    let entries = MAX_BYTES_PER_EVENT / entry.len() + 1;
    for i in 0..entries {
        a.push(
            LogSource::Stderr,
            pos(2, i as u32 + 1),
            &entry,
            now,
            &mut out,
        );
    }
    a.push(LogSource::Stderr, pos(3, 1), b"end\n", now, &mut out);
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].message.len(), (entries - 1) * entry.len());
    assert_eq!(out[0].end, Some(pos(2, entries as u32 - 1)));
    assert!(out[1].message.ends_with("zend"));
    assert_eq!(out[1].end, Some(pos(3, 1)));
}

// ---- buffer and batches ----

fn event(source: LogSource, timestamp: i64, message: &str, end: Option<Position>) -> Event {
    Event {
        source,
        timestamp,
        message: message.to_owned(),
        start_nanos: i128::from(timestamp) * 1_000_000,
        end,
    }
}

fn line(i: i64) -> Event {
    event(
        LogSource::Stdout,
        i,
        &format!("line {i}"),
        Some(pos(i.into(), 1)),
    )
}

#[test]
fn batches_keep_putlogevents_limits() {
    let now = Instant::now();
    let mut buffer = Buffer::new(DeliveryMode::Blocking, usize::MAX);
    for i in 0..10_001 {
        buffer.push(line(i), now);
    }
    assert!(buffer.ready(now, false), "a full batch goes at once");
    assert_eq!(buffer.take_batch().len(), 10_000);
    assert!(!buffer.ready(now, false));
    assert!(buffer.ready(now + FLUSH_INTERVAL, false));
    assert!(buffer.ready(now, true));
    assert_eq!(buffer.take_batch().len(), 1);

    // Bytes: 26 of overhead per event.
    let big = "b".repeat(100_000);
    for i in 0..12 {
        buffer.push(event(LogSource::Stdout, i, &big, Some(pos(0, 1))), now);
    }
    assert_eq!(buffer.take_batch().len(), 10);
    assert_eq!(buffer.take_batch().len(), 2);

    // 24 hours at most between the first and last event.
    let day = 24 * 3600 * 1000;
    for t in [0, day, day + 1] {
        buffer.push(line(t), now);
    }
    assert_eq!(buffer.take_batch().len(), 2);
    assert_eq!(buffer.take_batch().len(), 1);
    assert!(buffer.is_empty());
}

#[test]
fn the_pieces_of_a_split_event_stay_in_one_batch() {
    let now = Instant::now();
    let mut buffer = Buffer::new(DeliveryMode::Blocking, usize::MAX);
    let half = "h".repeat(400_000);
    buffer.push(event(LogSource::Stdout, 1, &half, Some(pos(1, 1))), now);
    buffer.push(event(LogSource::Stderr, 2, &half, None), now);
    buffer.push(event(LogSource::Stderr, 2, &half, Some(pos(2, 1))), now);
    assert_eq!(
        buffer.take_batch().len(),
        1,
        "the pieces wait for the next batch"
    );
    assert_eq!(buffer.take_batch().len(), 2);
    // Pieces too big for one batch together are cut anyway.
    let piece = "p".repeat(MAX_BYTES_PER_EVENT);
    buffer.push(event(LogSource::Stdout, 3, &piece, None), now);
    buffer.push(event(LogSource::Stdout, 3, "rest", Some(pos(3, 1))), now);
    assert_eq!(buffer.take_batch().len(), 1);
    assert_eq!(buffer.take_batch().len(), 1);
}

#[test]
fn non_blocking_drops_the_oldest_and_blocking_never_drops() {
    let now = Instant::now();
    let mut lossy = Buffer::new(DeliveryMode::NonBlocking, 100);
    for i in 0..5 {
        // 7 + 26 = 33 bytes each: three fit.
        lossy.push(
            event(LogSource::Stdout, i, &format!("event {i}"), None),
            now,
        );
    }
    assert_eq!(lossy.dropped(), 2);
    assert_eq!(lossy.len(), 3);
    assert_eq!(lossy.take_batch()[0].message, "event 2");

    let mut strict = Buffer::new(DeliveryMode::Blocking, 100);
    for i in 0..5 {
        strict.push(
            event(LogSource::Stdout, i, &format!("event {i}"), None),
            now,
        );
    }
    assert_eq!((strict.dropped(), strict.len()), (0, 5));
    assert!(strict.is_full(), "the shipper stops reading");
}

// ---- cursor ----

#[test]
fn cursors_round_trip_and_stay_small() {
    let cursor = Cursor {
        batch: u64::MAX,
        stdout: Some(pos(1_714_564_800_123_456_789, u32::MAX)),
        stderr: Some(pos(1_714_564_800_000_000_000, 1)),
        floor: Some(1_714_564_740_000_000_001),
    };
    let text = cursor.encode();
    assert!(text.len() < 200, "{text}");
    assert!(text.contains("2024-05-01T12:00:00.123456789Z"), "{text}");
    assert_eq!(Cursor::decode(&text), Some(cursor));
    assert_eq!(
        Cursor::decode(&Cursor::default().encode()),
        Some(Cursor::default())
    );
    for bad in ["", "v2 n=1", "v1 o=yesterday/1", "v1 n=x"] {
        assert_eq!(Cursor::decode(bad), None, "{bad}");
    }
}

#[test]
fn a_batch_moves_the_cursor_past_its_events() {
    let acked = Cursor {
        batch: 4,
        stdout: Some(pos(10, 1)),
        ..Cursor::default()
    };
    let batch = [
        event(LogSource::Stdout, 0, "a", Some(pos(20, 1))),
        event(LogSource::Stderr, 0, "b", Some(pos(21, 3))),
        event(LogSource::Stdout, 0, "c", None),
    ];
    let cursor = batch_cursor(&acked, &batch, Some(500), Some(30));
    assert_eq!(cursor.batch, 5);
    assert_eq!(cursor.stdout, Some(pos(20, 1)));
    assert_eq!(cursor.stderr, Some(pos(21, 3)));
    assert_eq!(cursor.floor, Some(30));
}

#[test]
fn a_resumed_read_skips_exactly_what_was_shipped() {
    // Shipped: stdout up to the second entry stamped 100, stderr nothing (floor 50).
    let cursor = Cursor {
        batch: 1,
        stdout: Some(pos(100, 2)),
        stderr: None,
        floor: Some(50),
    };
    let mut read = ReadPosition::from_cursor(&cursor);
    assert_eq!(read.since(), Some(50));
    read.begin_pass();
    let log = [
        (LogSource::Stdout, 90),
        (LogSource::Stderr, 95),
        (LogSource::Stdout, 100),
        (LogSource::Stdout, 100),
        (LogSource::Stdout, 100),
        (LogSource::Stderr, 99),
        (LogSource::Stdout, 101),
    ];
    let admitted: Vec<Option<Position>> = log.iter().map(|(s, t)| read.admit(*s, *t)).collect();
    assert_eq!(
        admitted,
        [
            None,
            Some(pos(95, 1)),
            None,
            None,
            Some(pos(100, 3)),
            Some(pos(99, 1)),
            Some(pos(101, 1)),
        ]
    );
    // Read again (Docker hiccup): nothing comes twice.
    read.begin_pass();
    assert!(log.iter().all(|(s, t)| read.admit(*s, *t).is_none()));
    assert_eq!(read.admit(LogSource::Stdout, 100), None);

    // Without a cursor, everything is new and the floor trails what was read.
    let mut fresh = ReadPosition::default();
    assert_eq!(fresh.since(), None);
    fresh.begin_pass();
    assert_eq!(fresh.admit(LogSource::Stdout, 7), Some(pos(7, 1)));
    assert_eq!(fresh.since(), Some(7 - INTERLEAVE_MARGIN_NANOS));
}

// ---- the shipper, against a fake CloudWatch Logs ----

const GROUP: &str = "/ecs/unit";
const STREAM: &str = "app/web/task1";

async fn container(runtime: &SimulatedRuntime) -> ContainerId {
    runtime.add_image("app:1");
    let spec = ContainerSpec {
        image: "app:1".into(),
        ..ContainerSpec::default()
    };
    let id = runtime.create_container(&spec).await.unwrap();
    runtime.start_container(&id).await.unwrap();
    id
}

fn shipper(
    logs: &Arc<FakeLogs>,
    runtime: &SimulatedRuntime,
    id: &ContainerId,
    extra: &[(&str, &str)],
    shutdown: &watch::Receiver<bool>,
) -> Shipper {
    Shipper {
        logs: logs.clone(),
        runtime: Arc::new(runtime.clone()),
        container: id.clone(),
        options: options(&[vec![("awslogs-group", GROUP)], extra.to_vec()].concat()).unwrap(),
        stream: STREAM.into(),
        progress: Progress::default(),
        shutdown: shutdown.clone(),
    }
}

fn write_lines(runtime: &SimulatedRuntime, id: &ContainerId, range: std::ops::Range<usize>) {
    for i in range {
        let source = if i % 2 == 0 {
            LogSource::Stdout
        } else {
            LogSource::Stderr
        };
        runtime.write_log(id, source, format!("line {i}\n"));
    }
}

async fn wait_for_messages(logs: &FakeLogs, count: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let messages = logs.messages(GROUP, STREAM);
        if messages.len() >= count || Instant::now() > deadline {
            return messages;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Each stream's lines in order, every line exactly once.
fn assert_exactly_once(messages: &[String], count: usize) {
    let numbers: Vec<usize> = messages
        .iter()
        .map(|m| m.strip_prefix("line ").unwrap().parse().unwrap())
        .collect();
    let mut sorted = numbers.clone();
    sorted.sort();
    assert_eq!(sorted, (0..count).collect::<Vec<_>>(), "each line once");
    for parity in [0, 1] {
        let stream: Vec<usize> = numbers
            .iter()
            .copied()
            .filter(|n| n % 2 == parity)
            .collect();
        assert!(
            stream.windows(2).all(|w| w[0] < w[1]),
            "in order: {stream:?}"
        );
    }
}

#[tokio::test]
async fn a_container_log_is_shipped_to_its_end() {
    let runtime = SimulatedRuntime::new(SimulationConfig::default());
    let logs = Arc::new(FakeLogs::default());
    logs.add_group(GROUP);
    let id = container(&runtime).await;
    let (_stop, shutdown) = watch::channel(false);
    let task = tokio::spawn(shipper(&logs, &runtime, &id, &[], &shutdown).run());
    write_lines(&runtime, &id, 0..50);
    // Partial entries and a multi-byte character cut between them.
    runtime.write_log(&id, LogSource::Stdout, "part é".as_bytes()[..6].to_vec());
    runtime.write_log(&id, LogSource::Stdout, "é".as_bytes()[1..].to_vec());
    runtime.write_log(&id, LogSource::Stdout, "!\n");
    let messages = wait_for_messages(&logs, 51).await;
    assert_eq!(messages.len(), 51, "streamed while the container runs");
    assert_eq!(messages[50], "part é!");
    write_lines(&runtime, &id, 50..60);
    runtime.write_log(&id, LogSource::Stderr, "last words");
    runtime.kill_container(&id, 1, false);
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the shipper ends with the container")
        .unwrap();
    let messages = logs.messages(GROUP, STREAM);
    assert_eq!(messages.len(), 62);
    assert_eq!(messages.last().unwrap(), "last words");
}

#[tokio::test]
async fn restarts_and_lost_answers_neither_lose_nor_repeat_lines() {
    let runtime = SimulatedRuntime::new(SimulationConfig::default());
    let logs = Arc::new(FakeLogs::default());
    logs.add_group(GROUP);
    let id = container(&runtime).await;
    let total = 3_000;
    for round in 0..6 {
        // Each round: a shipper (a new agent) ships a while and is stopped mid-way; puts
        // fail before and after being stored.
        let (stop, shutdown) = watch::channel(false);
        logs.fail(&[Failure::After, Failure::Before, Failure::After]);
        let task = tokio::spawn(shipper(&logs, &runtime, &id, &[], &shutdown).run());
        write_lines(&runtime, &id, round * 500..(round + 1) * 500);
        tokio::time::sleep(Duration::from_millis(100 + 200 * round as u64)).await;
        stop.send_replace(true);
        task.await.unwrap();
    }
    runtime.kill_container(&id, 0, false);
    let (_stop, shutdown) = watch::channel(false);
    shipper(&logs, &runtime, &id, &[], &shutdown).run().await;
    let messages = logs.messages(GROUP, STREAM);
    assert_exactly_once(&messages, total);
    let (puts, lost_answers) = logs.counts();
    assert!(puts >= 5, "several puts: {puts}");
    assert!(lost_answers >= 2, "stored puts whose answer was lost");
}

#[tokio::test]
async fn the_stream_and_group_are_made_as_asked() {
    let runtime = SimulatedRuntime::new(SimulationConfig::default());
    let logs = Arc::new(FakeLogs::default());
    let options_without = options(&[("awslogs-group", GROUP)]).unwrap();
    let error = prepare(&*logs, &options_without, STREAM).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "CannotStartContainerError: Error response from daemon: failed to initialize logging \
         driver: failed to create Cloudwatch log stream: ResourceNotFoundException: The \
         specified log group does not exist."
    );
    let with = options(&[("awslogs-group", GROUP), ("awslogs-create-group", "true")]).unwrap();
    prepare(&*logs, &with, STREAM).await.unwrap();
    prepare(&*logs, &with, STREAM).await.unwrap();
    assert_eq!(logs.streams(GROUP), [STREAM]);

    // A shipper finding its stream deleted makes it again.
    let id = container(&runtime).await;
    logs.remove_streams(GROUP);
    write_lines(&runtime, &id, 0..10);
    runtime.kill_container(&id, 0, false);
    let (_stop, shutdown) = watch::channel(false);
    shipper(
        &logs,
        &runtime,
        &id,
        &[("awslogs-create-group", "true")],
        &shutdown,
    )
    .run()
    .await;
    assert_exactly_once(&logs.messages(GROUP, STREAM), 10);
}

#[tokio::test]
async fn non_blocking_mode_drops_the_oldest_while_the_service_is_away() {
    let runtime = SimulatedRuntime::new(SimulationConfig::default());
    let logs = Arc::new(FakeLogs::default());
    logs.add_group(GROUP);
    let id = container(&runtime).await;
    // The service refuses the first puts for a while; the 1 KiB buffer overflows.
    logs.fail(&[Failure::Before; 3]);
    let (_stop, shutdown) = watch::channel(false);
    let lossy = [("mode", "non-blocking"), ("max-buffer-size", "1k")];
    let task = tokio::spawn(shipper(&logs, &runtime, &id, &lossy, &shutdown).run());
    tokio::time::sleep(Duration::from_millis(50)).await;
    write_lines(&runtime, &id, 0..1000);
    runtime.kill_container(&id, 0, false);
    tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .unwrap()
        .unwrap();
    let messages = logs.messages(GROUP, STREAM);
    assert!(
        messages.len() < 1000,
        "some were dropped: {}",
        messages.len()
    );
    assert_eq!(messages.last().unwrap(), "line 999", "the newest are kept");
}
