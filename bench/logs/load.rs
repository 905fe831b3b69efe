//! CloudWatch Logs load generator for bench/logs/run.sh: ingest (PutLogEvents) and query
//! (GetLogEvents, FilterLogEvents) against one server (Berth or moto_server), with every
//! answer checked against what was put.
//!
//! Events are a pure function of their sequence number `seq` (see `message`): half are JSON
//! lines (`{"level":"info","seq":N,"latency":L,"path":...}`, 1 % with level "error", 1 in
//! 1,000,000 with latency 99999), half plain text lines (`2026-...Z INFO [worker-3] GET
//! /api/... seq=N ...`, 1 in 10,000 with level ERROR); ~100 bytes each. An event's
//! timestamp is `base + seq` (ms), so a stream's time order is its seq order.
//!
//! Phases, in order:
//!  1. setup: two log groups (`NAME-own-RUN` with one stream per client, `NAME-big-RUN`
//!     with the stream `big`); not timed.
//!  2. ingest, own streams: `--clients` threads, each putting batches of `--batch` events
//!     (default 8,000: PutLogEvents takes at most 1,048,576 bytes counting 26 per event, so
//!     10,000 events of ~100 bytes do not fit) to its own stream (closed loop), until
//!     `--ingest-seconds` or `--ingest-events`;
//!  3. ingest, one stream: the same clients all putting to `big` until it holds
//!     `--big-events` (or `--big-seconds` have passed): this builds the stream the queries
//!     read. Batches are numbered from a shared counter (batch k holds seq k*B..(k+1)*B),
//!     so concurrent batches may land slightly out of order, as with several producers.
//!     After each ingest phase the program waits (up to 300 s) until the server is idle:
//!     Berth compresses rolled segments on a background thread; that CPU time is reported
//!     (`server_cpu_after_s`) and kept out of the next phase.
//!  4. checks of `big`: DescribeLogStreams (Berth's uploadSequenceToken is the event count);
//!     with `--walk`, the whole stream read back by GetLogEvents forward tokens (timed), every
//!     seq seen exactly once, messages and timestamps as put;
//!  5. GetLogEvents latency, one client: limit 100 and limit 10,000 at random startTime
//!     (startFromHead), startFromHead, and the default (newest page);
//!  6. FilterLogEvents over the group of `big`, one client, `--reps` times each: the term
//!     ERROR (1 in 10,000), `{ $.level = "error" }` (1 %, first page), `{ $.latency > 99990 }`
//!     (1 in 1,000,000: no literal to skip by, the whole stream parsed), a term matching
//!     nothing; then every page of the 1 % pattern by nextToken once.
//!
//! Every answer is checked against the events put (the successful batches): GetLogEvents
//! pages must be the events in time order from the start asked (a prefix: complete up to
//! the limit, or cut by the 1 MB rule counting 26 bytes per event), FilterLogEvents pages
//! the matching events in time order (a prefix, nextToken iff more). Failed checks are
//! reported (JSON `checks`), not fatal.
//!
//! Requests are what botocore sends: POST /, `X-Amz-Target: Logs_20140328.<Op>`, AWS JSON
//! 1.1, SigV4 for service `logs`, signed just before sending. Bodies are built in the
//! client thread outside the timed call (or all before the phase with `--prebuild`).
//!
//! Build: cargo build --release -p berth-e2e --example logs-load
//! Run:   target/release/examples/logs-load --endpoint http://127.0.0.1:PORT [--name N]
//!        [--clients 4] [--batch 8000] [--ingest-seconds 20] [--ingest-events 20000000]
//!        [--big-events 10000000] [--big-seconds 600] [--reps 5] [--random-reps 50]
//!        [--walk] [--prebuild] [--server-pid PID] [--out FILE.json]
//!        [--access-key K --secret-key S] [--region us-east-1]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Barrier, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use berth_e2e::http::{HttpResponse, KeepAlive};
use berth_e2e::sigv4::{now_unix, sign_json_request, utc_parts};
use serde::Deserialize;
use serde_json::{Value, json};

const TARGET_PREFIX: &str = "Logs_20140328";
/// PutLogEvents/GetLogEvents/FilterLogEvents page size in bytes, counting 26 per event.
const MAX_PAGE_BYTES: usize = 1_048_576;
const EVENT_OVERHEAD: usize = 26;
const KEEP_ERRORS: usize = 3;
/// The patterns measured and the events they match.
const TERM_PATTERN: &str = "ERROR";
const JSON_PATTERN: &str = "{ $.level = \"error\" }";
const RARE_PATTERN: &str = "{ $.latency > 99990 }";
const NOTHING_PATTERN: &str = "nosuchterm";

#[path = "../common/load_util.rs"]
mod load_util;
use load_util::{Rng, cpu_seconds, log, num, percentile};

#[derive(Debug, Clone)]
struct Config {
    name: String,
    endpoint: String,
    addr: String,
    access_key: String,
    secret_key: String,
    region: String,
    clients: usize,
    batch: u64,
    ingest_seconds: f64,
    ingest_events: u64,
    big_events: u64,
    big_seconds: f64,
    reps: usize,
    random_reps: usize,
    walk: bool,
    prebuild: bool,
    server_pid: Option<u32>,
    out: Option<String>,
    /// Record a perf profile of the server per query phase into this directory.
    perf_dir: Option<String>,
}

const USAGE: &str = "usage: logs-load --endpoint http://HOST:PORT [--name NAME] [--clients 4] \
[--batch 8000] [--ingest-seconds 20] [--ingest-events 20000000] [--big-events 10000000] \
[--big-seconds 600] [--reps 5] [--random-reps 50] [--walk] [--prebuild] [--server-pid PID] \
[--out FILE.json] [--perf-dir DIR] [--access-key K] [--secret-key S] [--region us-east-1]";

fn parse_args() -> Result<Config, String> {
    let mut opts: BTreeMap<String, String> = BTreeMap::new();
    let mut args = std::env::args().skip(1);
    const FLAGS: [&str; 2] = ["walk", "prebuild"];
    const KNOWN: [&str; 16] = [
        "endpoint",
        "access-key",
        "secret-key",
        "region",
        "name",
        "clients",
        "batch",
        "ingest-seconds",
        "ingest-events",
        "big-events",
        "big-seconds",
        "reps",
        "random-reps",
        "server-pid",
        "out",
        "perf-dir",
    ];
    while let Some(a) = args.next() {
        if a == "-h" || a == "--help" {
            return Err(USAGE.into());
        }
        let Some(key) = a.strip_prefix("--") else {
            return Err(format!("unexpected argument {a:?}\n{USAGE}"));
        };
        if FLAGS.contains(&key) {
            opts.insert(key.to_owned(), "1".into());
            continue;
        }
        let (key, value) = match key.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => {
                let v = args
                    .next()
                    .ok_or_else(|| format!("--{key} needs a value"))?;
                (key.to_owned(), v)
            }
        };
        if !KNOWN.contains(&key.as_str()) {
            return Err(format!("unknown option --{key}\n{USAGE}"));
        }
        opts.insert(key, value);
    }
    let endpoint = opts
        .get("endpoint")
        .cloned()
        .ok_or_else(|| format!("--endpoint is required\n{USAGE}"))?;
    let addr = endpoint
        .strip_prefix("http://")
        .ok_or("--endpoint must be http://HOST:PORT")?
        .trim_end_matches('/')
        .to_owned();
    if !addr.contains(':') || addr.contains('/') {
        return Err("--endpoint must be http://HOST:PORT".into());
    }
    let clients: usize = num(&opts, "clients", 4)?;
    let batch: u64 = num(&opts, "batch", 8_000)?;
    if clients == 0 || batch == 0 || batch > 10_000 {
        return Err("--clients must be at least 1, --batch 1..10000".into());
    }
    let server_pid: u32 = num(&opts, "server-pid", 0)?;
    let s = |k: &str, d: &str| opts.get(k).cloned().unwrap_or_else(|| d.into());
    Ok(Config {
        name: s("name", "server"),
        endpoint,
        addr,
        access_key: s("access-key", "AKIDBERTHBENCH000001"),
        secret_key: s("secret-key", "benchSecretBenchSecretBenchSecret0123456"),
        region: s("region", "us-east-1"),
        clients,
        batch,
        ingest_seconds: num(&opts, "ingest-seconds", 20.0)?,
        ingest_events: num(&opts, "ingest-events", 20_000_000)?,
        big_events: num(&opts, "big-events", 10_000_000)?,
        big_seconds: num(&opts, "big-seconds", 600.0)?,
        reps: num(&opts, "reps", 5)?,
        random_reps: num(&opts, "random-reps", 50)?,
        walk: opts.contains_key("walk"),
        prebuild: opts.contains_key("prebuild"),
        server_pid: (server_pid != 0).then_some(server_pid),
        out: opts.get("out").cloned(),
        perf_dir: opts.get("perf-dir").cloned(),
    })
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// splitmix64.
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

// ---------------------------------------------------------------- the events

const PATHS: [&str; 6] = [
    "/api/v1/orders",
    "/api/v1/users",
    "/api/v1/cart/items",
    "/api/v2/search",
    "/static/js/app",
    "/internal/healthz",
];

fn is_json(seq: u64) -> bool {
    seq.is_multiple_of(2)
}
/// `{ $.level = "error" }`: 1 %.
fn is_json_error(seq: u64) -> bool {
    seq % 100 == 42
}
/// `{ $.latency > 99990 }`: 1 in 1,000,000.
fn is_rare(seq: u64) -> bool {
    seq % 1_000_000 == 500_000
}
/// The term ERROR: 1 in 10,000 (plain text lines only; JSON lines say "error").
fn is_term_error(seq: u64) -> bool {
    seq % 10_000 == 4243
}

/// The message of event `seq` (timestamp `ts`), appended to `out`. ~100 bytes.
fn message(seq: u64, ts: i64, out: &mut String) {
    let h = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let path = PATHS[(h >> 60) as usize % PATHS.len()];
    let id = (h >> 20) % 100_000;
    let req = (h >> 32) as u32;
    if is_json(seq) {
        let (level, status) = if is_json_error(seq) {
            ("error", 500)
        } else if seq % 100 == 10 {
            ("warn", 429)
        } else {
            ("info", 200)
        };
        let latency = if is_rare(seq) {
            99_999
        } else {
            (seq.wrapping_mul(7919) >> 3) % 5000
        };
        let _ = write!(
            out,
            "{{\"level\":\"{level}\",\"seq\":{seq},\"latency\":{latency},\"path\":\"{path}/{id}\",\"status\":{status},\"req\":\"{req:08x}\"}}"
        );
    } else {
        let (y, mo, d, hh, mi, ss) = utc_parts(ts.div_euclid(1000));
        let ms = ts.rem_euclid(1000);
        let worker = seq % 8;
        if is_term_error(seq) {
            let _ = write!(
                out,
                "{y:04}-{mo:02}-{d:02}T{hh:02}:{mi:02}:{ss:02}.{ms:03}Z ERROR [worker-{worker}] POST {path}/{id} 503 upstream timeout seq={seq} req={req:08x}"
            );
        } else {
            let level = if seq % 50 == 7 { "WARN" } else { "INFO" };
            let method = if h & 4 == 0 { "GET" } else { "POST" };
            let ms_taken = (h >> 8) % 900;
            let _ = write!(
                out,
                "{y:04}-{mo:02}-{d:02}T{hh:02}:{mi:02}:{ss:02}.{ms:03}Z {level} [worker-{worker}] {method} {path}/{id} 200 {ms_taken}ms seq={seq} req={req:08x}"
            );
        }
    }
}

fn message_of(seq: u64, ts: i64) -> String {
    let mut s = String::with_capacity(128);
    message(seq, ts, &mut s);
    s
}

/// The seq a message carries (`"seq":N` or `seq=N`).
fn seq_of(message: &str) -> Option<u64> {
    let i = message.find("seq")? + 3;
    let rest = message[i..].trim_start_matches(['"', ':', '=']);
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

fn push_json_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for &b in s.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            c if c < 0x20 => {
                let _ = write!(VecWriter(out), "\\u{c:04x}");
            }
            c => out.push(c),
        }
    }
    out.push(b'"');
}

struct VecWriter<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for VecWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// A PutLogEvents body for events `first..first + n` with timestamps `base + seq`;
/// returns it and the message bytes it carries.
fn put_body(group: &str, stream: &str, first: u64, n: u64, base: i64) -> (Vec<u8>, u64) {
    let mut body = Vec::with_capacity(n as usize * 140 + 200);
    body.extend_from_slice(b"{\"logGroupName\":");
    push_json_string(&mut body, group);
    body.extend_from_slice(b",\"logStreamName\":");
    push_json_string(&mut body, stream);
    body.extend_from_slice(b",\"logEvents\":[");
    let mut msg = String::with_capacity(160);
    let mut bytes = 0u64;
    for seq in first..first + n {
        if seq > first {
            body.push(b',');
        }
        let ts = base + seq as i64;
        msg.clear();
        message(seq, ts, &mut msg);
        bytes += msg.len() as u64;
        let _ = write!(VecWriter(&mut body), "{{\"timestamp\":{ts},\"message\":");
        push_json_string(&mut body, &msg);
        body.push(b'}');
    }
    body.extend_from_slice(b"]}");
    (body, bytes)
}

// ---------------------------------------------------------------- calls

fn logs_call(
    cfg: &Config,
    conn: &mut KeepAlive,
    op: &str,
    body: &[u8],
) -> io::Result<HttpResponse> {
    let target = format!("{TARGET_PREFIX}.{op}");
    let signed = sign_json_request(
        &cfg.addr,
        &cfg.region,
        "logs",
        &cfg.access_key,
        &cfg.secret_key,
        &target,
        body,
        now_unix(),
    );
    let mut headers: Vec<(&str, &str)> = signed
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    headers.push(("User-Agent", "berth-logs-load/0.1"));
    conn.request("POST", "/", &headers, body)
}

/// A call that must answer 200; its body as JSON.
fn call_ok(cfg: &Config, conn: &mut KeepAlive, op: &str, body: &Value) -> Result<Value, String> {
    let r =
        logs_call(cfg, conn, op, body.to_string().as_bytes()).map_err(|e| format!("{op}: {e}"))?;
    if r.status != 200 {
        return Err(format!("{op}: {}", r.describe()));
    }
    if r.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null); // moto answers some calls with an empty body
    }
    serde_json::from_slice(&r.body).map_err(|e| format!("{op}: answer not JSON: {e}"))
}

#[derive(Debug, Deserialize)]
struct OutEvent {
    timestamp: i64,
    message: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GetAnswer {
    events: Vec<OutEvent>,
    next_forward_token: Option<String>,
    #[allow(dead_code)]
    next_backward_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FilterAnswer {
    events: Vec<OutEvent>,
    next_token: Option<String>,
}

/// A timed call whose answer is read into `T`: (seconds, answer).
fn timed<T: for<'de> Deserialize<'de>>(
    cfg: &Config,
    conn: &mut KeepAlive,
    op: &str,
    body: &Value,
) -> Result<(f64, T), String> {
    let text = body.to_string();
    let t = Instant::now();
    let r = logs_call(cfg, conn, op, text.as_bytes()).map_err(|e| format!("{op}: {e}"))?;
    let secs = t.elapsed().as_secs_f64();
    if r.status != 200 {
        return Err(format!("{op}: {}", r.describe()));
    }
    let answer = serde_json::from_slice(&r.body).map_err(|e| format!("{op}: answer: {e}"))?;
    Ok((secs, answer))
}

// ---------------------------------------------------------------- what was put

/// The events of the stream `big`: which batches were acknowledged.
struct Stream {
    base: i64,
    batch: u64,
    ok: Vec<bool>,
}

impl Stream {
    fn contains(&self, seq: u64) -> bool {
        self.ok
            .get((seq / self.batch) as usize)
            .copied()
            .unwrap_or(false)
    }
    fn events(&self) -> u64 {
        self.ok.iter().filter(|&&b| b).count() as u64 * self.batch
    }
    /// Acknowledged seqs from `from` on, ascending.
    fn seqs_from(&self, from: u64) -> impl Iterator<Item = u64> + '_ {
        let b = self.batch;
        let first_batch = from / b;
        (first_batch..self.ok.len() as u64)
            .filter(|&k| self.ok[k as usize])
            .flat_map(move |k| (k * b).max(from)..(k + 1) * b)
    }
    fn last_seq(&self) -> Option<u64> {
        let k = self.ok.iter().rposition(|&b| b)? as u64;
        Some((k + 1) * self.batch - 1)
    }
    fn first_seq(&self) -> Option<u64> {
        let k = self.ok.iter().position(|&b| b)? as u64;
        Some(k * self.batch)
    }
}

// ---------------------------------------------------------------- checks

#[derive(Default)]
struct Checks {
    list: Vec<(String, bool, String)>,
}

impl Checks {
    fn add(&mut self, name: &str, ok: bool, detail: String) {
        if !ok {
            log(&format!("CHECK FAILED: {name}: {detail}"));
        }
        self.list.push((name.to_owned(), ok, detail));
    }
    fn json(&self) -> Value {
        Value::Array(
            self.list
                .iter()
                .map(|(n, ok, d)| json!({"check": n, "ok": ok, "detail": d}))
                .collect(),
        )
    }
    fn failed(&self) -> usize {
        self.list.iter().filter(|c| !c.1).count()
    }
}

/// Whether `events` is the start of `expected` (seqs in time order) as a page of at most
/// `limit` events and, with `byte_cap`, 1 MB: exact messages and timestamps, complete up to
/// the limit unless the next event would pass 1 MB. Ok(()) or why not.
fn check_prefix(
    events: &[OutEvent],
    expected: &mut dyn Iterator<Item = u64>,
    base: i64,
    limit: usize,
) -> Result<(), String> {
    let mut bytes = 0usize;
    for (i, e) in events.iter().enumerate() {
        let Some(want) = expected.next() else {
            return Err(format!(
                "{} events, expected only {i}; extra: {:?}",
                events.len(),
                e.message
            ));
        };
        let want_ts = base + want as i64;
        if e.timestamp != want_ts || e.message != message_of(want, want_ts) {
            return Err(format!(
                "event {i}: expected seq {want} (ts {want_ts}), got ts {} {:?}",
                e.timestamp, e.message
            ));
        }
        bytes += e.message.len() + EVENT_OVERHEAD;
    }
    if events.len() > limit {
        return Err(format!("{} events, limit {limit}", events.len()));
    }
    if events.len() < limit
        && let Some(next) = expected.next()
    {
        let next_len = message_of(next, base + next as i64).len() + EVENT_OVERHEAD;
        if bytes + next_len <= MAX_PAGE_BYTES {
            return Err(format!(
                "page ends after {} events ({bytes} bytes) though seq {next} would fit under the limit {limit} and 1 MB",
                events.len()
            ));
        }
    }
    Ok(())
}

/// The weaker check: every event returned is one that was put (message and timestamp as
/// put), at or after seq `from`, selected by `matches`, none twice; the order and
/// completeness of the page are not looked at.
fn check_content(
    events: &[OutEvent],
    stream: &Stream,
    from: u64,
    matches: fn(u64) -> bool,
) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for (i, e) in events.iter().enumerate() {
        let Some(seq) = seq_of(&e.message) else {
            return Err(format!("event {i}: no seq in {:?}", e.message));
        };
        let ts = stream.base + seq as i64;
        if !stream.contains(seq) || e.timestamp != ts || e.message != message_of(seq, ts) {
            return Err(format!(
                "event {i}: not an event put: ts {} {:?}",
                e.timestamp, e.message
            ));
        }
        if seq < from || !matches(seq) {
            return Err(format!(
                "event {i}: seq {seq} is outside the range or does not match"
            ));
        }
        if !seen.insert(seq) {
            return Err(format!("event {i}: seq {seq} twice"));
        }
    }
    Ok(())
}

fn any(_: u64) -> bool {
    true
}

/// The two checks of a query: `content` (right events) and `exact` (the page AWS returns).
#[derive(Default)]
struct Verdicts {
    calls: usize,
    content: Vec<String>,
    exact: Vec<String>,
}

impl Verdicts {
    fn record(&mut self, what: &str, content: Result<(), String>, exact: Result<(), String>) {
        self.calls += 1;
        if let Err(e) = content {
            self.content.push(format!("{what}: {e}"));
        }
        if let Err(e) = exact {
            self.exact.push(format!("{what}: {e}"));
        }
    }
    fn error(&mut self, e: String) {
        self.calls += 1;
        self.content.push(e.clone());
        self.exact.push(e);
    }
    fn add_to(&self, checks: &mut Checks, name: &str) {
        let first = |v: &Vec<String>| v.first().cloned().unwrap_or_default();
        checks.add(
            &format!("{name}: events as put, in range, matching, none twice"),
            self.content.is_empty(),
            format!(
                "{} of {} answers wrong; first: {}",
                self.content.len(),
                self.calls,
                first(&self.content)
            ),
        );
        checks.add(
            &format!("{name}: the exact page (time order, complete to the limit or 1 MB)"),
            self.exact.is_empty(),
            format!(
                "{} of {} answers wrong; first: {}",
                self.exact.len(),
                self.calls,
                first(&self.exact)
            ),
        );
    }
    fn correct(&self) -> &'static str {
        match (self.content.is_empty(), self.exact.is_empty()) {
            (true, true) => "yes",
            (true, false) => "events right, page not in time order or incomplete",
            _ => "no",
        }
    }
}

// ---------------------------------------------------------------- ingest

struct Client {
    conn: KeepAlive,
}

/// Closed-loop ingest from every client at once: batch k (from a shared counter) holds
/// seqs k*B..(k+1)*B and goes to `streams[client]`. Stops at `max_batches` or `seconds`.
/// Returns the phase's figures and which batches were acknowledged.
#[allow(clippy::too_many_arguments)]
fn ingest(
    cfg: &Config,
    label: &str,
    clients: &mut [Client],
    group: &str,
    streams: &[String],
    base: i64,
    seconds: f64,
    max_batches: u64,
) -> (serde_json::Map<String, Value>, Vec<bool>) {
    let server_pid = cfg.server_pid.map(|p| p.to_string());
    let server_cpu = || server_pid.as_deref().and_then(cpu_seconds);
    let b = cfg.batch;
    // Prebuilt bodies (--prebuild), built by the client threads before the clock starts.
    let prebuilt: Vec<OnceLock<(Vec<u8>, u64)>> = if cfg.prebuild {
        (0..max_batches).map(|_| OnceLock::new()).collect()
    } else {
        Vec::new()
    };
    if cfg.prebuild {
        log(&format!(
            "{} {label}: prebuilding {max_batches} bodies",
            cfg.name
        ));
        let next = AtomicU64::new(0);
        thread::scope(|s| {
            for _ in 0..thread::available_parallelism().map_or(2, |n| n.get()) {
                s.spawn(|| {
                    loop {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        if k >= max_batches {
                            break;
                        }
                        let stream = &streams[(k % streams.len() as u64) as usize];
                        let _ = prebuilt[k as usize].set(put_body(group, stream, k * b, b, base));
                    }
                });
            }
        });
    }
    let _perf = Perf::start(
        cfg,
        if streams.len() > 1 {
            "ingest-own-streams"
        } else {
            "ingest-one-stream"
        },
    );
    let next = AtomicU64::new(0);
    let own_streams = streams.len() > 1;
    assert!(!own_streams || streams.len() == clients.len());
    let clients_n = clients.len() as u64;
    let barrier = Barrier::new(clients.len() + 1);
    let start: OnceLock<Instant> = OnceLock::new();
    let limit = Duration::from_secs_f64(seconds);
    let acked: Mutex<Vec<bool>> = Mutex::new(vec![false; max_batches as usize]);
    struct Put {
        secs: f64,
        ok: bool,
        bytes: u64,
        problem: Option<String>,
    }
    let (per_client, wall, server_cpu_s, client_cpu_s) = thread::scope(|s| {
        let handles: Vec<_> = clients
            .iter_mut()
            .enumerate()
            .map(|(ci, c)| {
                let (barrier, start, next, acked, prebuilt) =
                    (&barrier, &start, &next, &acked, &prebuilt);
                let stream = &streams[ci % streams.len()];
                let (own_streams, clients_n) = (own_streams, clients_n);
                s.spawn(move || {
                    let mut out: Vec<Put> = Vec::new();
                    barrier.wait();
                    let stop = *start.get().unwrap() + limit;
                    let mut mine = 0u64;
                    loop {
                        if Instant::now() >= stop {
                            break;
                        }
                        // One stream per client: client i puts batches i, i + C, ...; one
                        // stream for all: batches in the order the clients take them.
                        let k = if own_streams {
                            mine += 1;
                            (mine - 1) * clients_n + ci as u64
                        } else {
                            next.fetch_add(1, Ordering::Relaxed)
                        };
                        if k >= max_batches {
                            break;
                        }
                        let own;
                        let (body, bytes) = match prebuilt.get(k as usize).and_then(|p| p.get()) {
                            Some((body, bytes)) => (body, *bytes),
                            _ => {
                                own = put_body(group, stream, k * b, b, base);
                                (&own.0, own.1)
                            }
                        };
                        let t = Instant::now();
                        let r = logs_call(cfg, &mut c.conn, "PutLogEvents", body);
                        let secs = t.elapsed().as_secs_f64();
                        let (ok, problem) = match r {
                            Err(e) => (false, Some(format!("transport: {e}"))),
                            Ok(r) if r.status != 200 => (false, Some(r.describe())),
                            Ok(r) => {
                                // Any rejectedLogEventsInfo means events were left out.
                                let v: Value =
                                    serde_json::from_slice(&r.body).unwrap_or(Value::Null);
                                if v.get("rejectedLogEventsInfo").is_some_and(|x| !x.is_null()) {
                                    (false, Some(format!("rejected: {}", r.text())))
                                } else {
                                    (true, None)
                                }
                            }
                        };
                        if ok {
                            acked.lock().unwrap()[k as usize] = true;
                        }
                        out.push(Put {
                            secs,
                            ok,
                            bytes,
                            problem,
                        });
                    }
                    out
                })
            })
            .collect();
        let cpu0 = server_cpu();
        let self0 = cpu_seconds("self");
        let t0 = Instant::now();
        start.set(t0).unwrap();
        barrier.wait();
        let per_client: Vec<Vec<Put>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let wall = t0.elapsed().as_secs_f64();
        let server = cpu0.zip(server_cpu()).map(|(a, b)| b - a);
        let client = self0.zip(cpu_seconds("self")).map(|(a, b)| b - a);
        (per_client, wall, server, client)
    });
    let puts: Vec<Put> = per_client.into_iter().flatten().collect();
    let mut lat: Vec<f64> = puts.iter().filter(|p| p.ok).map(|p| p.secs).collect();
    lat.sort_by(f64::total_cmp);
    let ok = puts.iter().filter(|p| p.ok).count() as u64;
    let events = ok * b;
    let bytes: u64 = puts.iter().filter(|p| p.ok).map(|p| p.bytes).sum();
    let first_errors: Vec<&str> = puts
        .iter()
        .filter_map(|p| p.problem.as_deref())
        .take(KEEP_ERRORS)
        .collect();
    let eps = events as f64 / wall;
    let mbps = bytes as f64 / 1e6 / wall;
    let ms = |p: f64| percentile(&lat, p).map(|s| s * 1000.0);
    let mut st = serde_json::Map::new();
    st.insert("clients".into(), json!(clients.len()));
    st.insert("streams".into(), json!(streams.len()));
    st.insert("batch_events".into(), json!(b));
    st.insert("calls".into(), json!(puts.len()));
    st.insert("calls_ok".into(), json!(ok));
    st.insert("errors".into(), json!(puts.len() as u64 - ok));
    st.insert("first_errors".into(), json!(first_errors));
    st.insert("events".into(), json!(events));
    st.insert("message_bytes".into(), json!(bytes));
    st.insert("wall_s".into(), json!(wall));
    st.insert("events_per_s".into(), json!(eps));
    st.insert("mb_per_s".into(), json!(mbps));
    st.insert("p50_ms".into(), json!(ms(50.0)));
    st.insert("p90_ms".into(), json!(ms(90.0)));
    st.insert("p99_ms".into(), json!(ms(99.0)));
    st.insert("max_ms".into(), json!(lat.last().map(|s| s * 1000.0)));
    st.insert(
        "capped_by_time".into(),
        json!((puts.len() as u64) < max_batches),
    );
    st.insert("server_cpu_s".into(), json!(server_cpu_s));
    st.insert("client_cpu_s".into(), json!(client_cpu_s));
    st.insert("prebuilt_bodies".into(), json!(cfg.prebuild));
    let f = |v: Option<f64>| v.unwrap_or(0.0);
    log(&format!(
        "{} {label}: {events} events in {wall:.1} s = {eps:.0} events/s, {mbps:.1} MB/s, \
         put p50 {:.1} ms p99 {:.1} ms, server CPU {:.1} s, client CPU {:.1} s, errors {}",
        cfg.name,
        f(ms(50.0)),
        f(ms(99.0)),
        f(server_cpu_s),
        f(client_cpu_s),
        puts.len() as u64 - ok
    ));
    if let Some(e) = first_errors.first() {
        log(&format!("  first problem: {e}"));
    }
    (st, acked.into_inner().unwrap())
}

// ---------------------------------------------------------------- queries

/// `perf record -g` of the server into DIR/LABEL.perf.data while a query phase runs.
struct Perf(Option<std::process::Child>);

impl Perf {
    fn start(cfg: &Config, label: &str) -> Perf {
        let (Some(dir), Some(pid)) = (&cfg.perf_dir, cfg.server_pid) else {
            return Perf(None);
        };
        let child = std::process::Command::new("perf")
            .args(["record", "-F", "999", "-g", "-p", &pid.to_string(), "-o"])
            .arg(format!("{dir}/{label}.perf.data"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok();
        thread::sleep(Duration::from_millis(300)); // perf attaches
        Perf(child)
    }
}

impl Drop for Perf {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = std::process::Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }
}

/// Timing figures of repeated calls.
fn summary(secs: &mut [f64], server_cpu: Option<f64>) -> Value {
    secs.sort_by(f64::total_cmp);
    json!({
        "calls": secs.len(),
        "median_s": percentile(secs, 50.0),
        "p50_ms": percentile(secs, 50.0).map(|s| s * 1000.0),
        "p99_ms": percentile(secs, 99.0).map(|s| s * 1000.0),
        "min_s": secs.first(),
        "max_s": secs.last(),
        "server_cpu_s": server_cpu,
    })
}

struct Query<'a> {
    cfg: &'a Config,
    conn: KeepAlive,
    group: String,
    stream: &'a Stream,
    checks: Checks,
    rng: Rng,
}

impl Query<'_> {
    fn server_cpu(&self) -> Option<f64> {
        self.cfg
            .server_pid
            .and_then(|p| cpu_seconds(&p.to_string()))
    }

    /// GetLogEvents at random startTime (startFromHead), limit `limit`, `reps` times.
    fn get_random(&mut self, limit: usize, reps: usize) -> Value {
        let _perf = Perf::start(self.cfg, &format!("get-random-{limit}"));
        let (Some(first), Some(last)) = (self.stream.first_seq(), self.stream.last_seq()) else {
            return Value::Null;
        };
        let cpu0 = self.server_cpu();
        let mut secs = Vec::new();
        let mut v = Verdicts::default();
        let mut events = 0usize;
        for _ in 0..reps {
            let seq = first + self.rng.below(last - first + 1);
            let start = self.stream.base + seq as i64;
            let body = json!({"logGroupName": self.group, "logStreamName": "big",
                "startTime": start, "startFromHead": true, "limit": limit});
            match timed::<GetAnswer>(self.cfg, &mut self.conn, "GetLogEvents", &body) {
                Err(e) => v.error(e),
                Ok((s, a)) => {
                    secs.push(s);
                    events += a.events.len();
                    let content = check_content(&a.events, self.stream, seq, any).and_then(|()| {
                        if a.events.is_empty() {
                            Err("no events".into())
                        } else {
                            Ok(())
                        }
                    });
                    let exact = check_prefix(
                        &a.events,
                        &mut self.stream.seqs_from(seq),
                        self.stream.base,
                        limit,
                    );
                    v.record(&format!("startTime {start} (seq {seq})"), content, exact);
                }
            }
        }
        let cpu = self.server_cpu().zip(cpu0).map(|(b, a)| b - a);
        v.add_to(
            &mut self.checks,
            &format!("GetLogEvents limit {limit} at random startTime"),
        );
        let mut out = summary(&mut secs, cpu);
        out["events_per_call"] = json!(events as f64 / reps.max(1) as f64);
        out["answers_correct"] = json!(v.correct());
        log(&format!(
            "{} GetLogEvents limit {limit} random startTime: p50 {:.2} ms p99 {:.2} ms, {:.0} events/call, correct: {}",
            self.cfg.name,
            out["p50_ms"].as_f64().unwrap_or(0.0),
            out["p99_ms"].as_f64().unwrap_or(0.0),
            out["events_per_call"].as_f64().unwrap_or(0.0),
            v.correct()
        ));
        out
    }

    /// GetLogEvents from the head or the default (the newest page), `reps` times.
    fn get_end(&mut self, head: bool, reps: usize) -> Value {
        let cpu0 = self.server_cpu();
        let mut secs = Vec::new();
        let mut v = Verdicts::default();
        let mut events = 0usize;
        for _ in 0..reps {
            let mut body = json!({"logGroupName": self.group, "logStreamName": "big"});
            if head {
                body["startFromHead"] = json!(true);
            }
            match timed::<GetAnswer>(self.cfg, &mut self.conn, "GetLogEvents", &body) {
                Err(e) => v.error(e),
                Ok((s, a)) => {
                    secs.push(s);
                    events += a.events.len();
                    let content = check_content(&a.events, self.stream, 0, any).and_then(|()| {
                        if a.events.is_empty() {
                            Err("no events".into())
                        } else {
                            Ok(())
                        }
                    });
                    let exact = if head {
                        check_prefix(
                            &a.events,
                            &mut self.stream.seqs_from(0),
                            self.stream.base,
                            10_000,
                        )
                    } else {
                        self.check_newest(&a.events)
                    };
                    v.record("call", content, exact);
                }
            }
        }
        let cpu = self.server_cpu().zip(cpu0).map(|(b, a)| b - a);
        let what = if head {
            "startFromHead"
        } else {
            "default (newest)"
        };
        v.add_to(&mut self.checks, &format!("GetLogEvents {what}"));
        let mut out = summary(&mut secs, cpu);
        out["events_per_call"] = json!(events as f64 / reps.max(1) as f64);
        out["answers_correct"] = json!(v.correct());
        log(&format!(
            "{} GetLogEvents {what}: p50 {:.2} ms, {:.0} events/call, correct: {}",
            self.cfg.name,
            out["p50_ms"].as_f64().unwrap_or(0.0),
            out["events_per_call"].as_f64().unwrap_or(0.0),
            v.correct()
        ));
        out
    }

    /// The newest page: every event from its first one to the end, in time order, and
    /// complete: the event before it would pass 10,000 events or 1 MB.
    fn check_newest(&self, events: &[OutEvent]) -> Result<(), String> {
        let s0 = events.first().and_then(|e| seq_of(&e.message));
        let all: Vec<u64> = s0.map_or(Vec::new(), |s0| self.stream.seqs_from(s0).collect());
        if all.len() != events.len() {
            return Err(format!(
                "{} events but {} from its first event to the end",
                events.len(),
                all.len()
            ));
        }
        check_prefix(events, &mut all.into_iter(), self.stream.base, 10_000)?;
        let bytes: usize = events
            .iter()
            .map(|e| e.message.len() + EVENT_OVERHEAD)
            .sum();
        if let Some(s0) = s0
            && s0 > 0
            && self.stream.contains(s0 - 1)
            && events.len() < 10_000
        {
            let p = s0 - 1;
            let plen = message_of(p, self.stream.base + p as i64).len() + EVENT_OVERHEAD;
            if bytes + plen <= MAX_PAGE_BYTES {
                return Err(format!(
                    "newest page of {} events ({bytes} bytes) leaves out seq {p}, which fits",
                    events.len()
                ));
            }
        }
        Ok(())
    }

    /// The whole stream read back by forward tokens: every event exactly once, in order.
    fn walk(&mut self) -> Value {
        let _perf = Perf::start(self.cfg, "walk");
        let n = self.stream.ok.len() as u64 * self.stream.batch;
        let mut seen = vec![false; n as usize];
        let (mut events, mut calls, mut dup, mut foreign, mut wrong, mut out_of_order) =
            (0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
        let mut last_ts = i64::MIN;
        let mut token: Option<String> = None;
        let cpu0 = self.server_cpu();
        let self0 = cpu_seconds("self");
        let t0 = Instant::now();
        let mut call_secs = Vec::new();
        let mut problem = None;
        loop {
            let mut body =
                json!({"logGroupName": self.group, "logStreamName": "big", "startFromHead": true});
            if let Some(t) = &token {
                body["nextToken"] = json!(t);
            }
            let (s, a) = match timed::<GetAnswer>(self.cfg, &mut self.conn, "GetLogEvents", &body) {
                Ok(x) => x,
                Err(e) => {
                    problem = Some(e);
                    break;
                }
            };
            calls += 1;
            call_secs.push(s);
            for e in &a.events {
                events += 1;
                let Some(seq) = seq_of(&e.message).filter(|&s| s < n) else {
                    foreign += 1;
                    continue;
                };
                if seen[seq as usize] {
                    dup += 1;
                }
                seen[seq as usize] = true;
                let ts = self.stream.base + seq as i64;
                if e.timestamp != ts || e.message != message_of(seq, ts) {
                    wrong += 1;
                }
                if e.timestamp < last_ts {
                    out_of_order += 1;
                }
                last_ts = e.timestamp;
            }
            let next = a.next_forward_token;
            if a.events.is_empty() || next.is_none() || next == token {
                break;
            }
            token = next;
            if calls > 10 * (n / 1000 + 10) {
                problem = Some("too many pages".into());
                break;
            }
        }
        let wall = t0.elapsed().as_secs_f64();
        let cpu = self.server_cpu().zip(cpu0).map(|(b, a)| b - a);
        let client_cpu = cpu_seconds("self").zip(self0).map(|(b, a)| b - a);
        let missing = (0..n)
            .filter(|&s| self.stream.contains(s) && !seen[s as usize])
            .count();
        let expected = self.stream.events();
        self.checks.add(
            "GetLogEvents forward walk: every event put, exactly once, as put",
            problem.is_none() && events == expected && missing == 0 && dup == 0 && foreign == 0 && wrong == 0,
            format!(
                "{events} events read (expected {expected}) in {calls} pages, missing {missing}, \
                 duplicated {dup}, not put {foreign}, wrong message/timestamp {wrong}, error {problem:?}"
            ),
        );
        self.checks.add(
            "GetLogEvents forward walk: events in time order",
            out_of_order == 0,
            format!("{out_of_order} events with a timestamp before the previous event's"),
        );
        log(&format!(
            "{} GetLogEvents walk: {events} events in {calls} pages, {wall:.1} s ({:.0} events/s), \
             out of time order {out_of_order}",
            self.cfg.name,
            events as f64 / wall
        ));
        let mut v = summary(&mut call_secs, cpu);
        v["wall_s"] = json!(wall);
        v["events"] = json!(events);
        v["events_per_s"] = json!(events as f64 / wall);
        v["client_cpu_s"] = json!(client_cpu);
        v["out_of_time_order"] = json!(out_of_order);
        v
    }

    /// FilterLogEvents over the group, `reps` times; checks each answer is the first page
    /// of the events `matches` selects.
    fn filter(
        &mut self,
        label: &str,
        pattern: &str,
        matches: fn(u64) -> bool,
        reps: usize,
    ) -> Value {
        let tag: String = label.chars().filter(char::is_ascii_alphanumeric).collect();
        let _perf = Perf::start(self.cfg, &format!("filter-{tag}"));
        let expected_total = self.stream.seqs_from(0).filter(|&s| matches(s)).count();
        let cpu0 = self.server_cpu();
        let mut secs = Vec::new();
        let mut v = Verdicts::default();
        let mut returned = 0usize;
        for _ in 0..reps {
            let body = json!({"logGroupName": self.group, "filterPattern": pattern});
            match timed::<FilterAnswer>(self.cfg, &mut self.conn, "FilterLogEvents", &body) {
                Err(e) => v.error(e),
                Ok((s, a)) => {
                    secs.push(s);
                    returned = a.events.len();
                    let mut content = check_content(&a.events, self.stream, 0, matches);
                    if content.is_ok() && a.events.is_empty() != (expected_total == 0) {
                        content = Err(format!(
                            "{} events of {expected_total} matching",
                            a.events.len()
                        ));
                    }
                    let mut expected = self.stream.seqs_from(0).filter(|&s| matches(s));
                    let mut exact =
                        check_prefix(&a.events, &mut expected, self.stream.base, 10_000);
                    if exact.is_ok()
                        && (a.next_token.is_some() != (a.events.len() < expected_total))
                    {
                        exact = Err(format!(
                            "{} of {expected_total} events returned, nextToken {:?}",
                            a.events.len(),
                            a.next_token
                        ));
                    }
                    v.record("call", content, exact);
                }
            }
        }
        let cpu = self.server_cpu().zip(cpu0).map(|(b, a)| b - a);
        v.add_to(
            &mut self.checks,
            &format!("FilterLogEvents {label} `{pattern}` ({expected_total} matching events)"),
        );
        let mut out = summary(&mut secs, cpu);
        out["pattern"] = json!(pattern);
        out["matching_events"] = json!(expected_total);
        out["returned_events"] = json!(returned);
        out["answers_correct"] = json!(v.correct());
        log(&format!(
            "{} FilterLogEvents {label} {pattern:?}: median {:.3} s (min {:.3}, max {:.3}), \
             {returned} returned of {expected_total} matching, correct: {}",
            self.cfg.name,
            out["median_s"].as_f64().unwrap_or(0.0),
            out["min_s"].as_f64().unwrap_or(0.0),
            out["max_s"].as_f64().unwrap_or(0.0),
            v.correct()
        ));
        out
    }

    /// Every page of a pattern by nextToken: all matching events, once each, in time order.
    fn filter_all_pages(&mut self, pattern: &str, matches: fn(u64) -> bool) -> Value {
        let expected: Vec<u64> = self.stream.seqs_from(0).filter(|&s| matches(s)).collect();
        let cpu0 = self.server_cpu();
        let t0 = Instant::now();
        let mut got: Vec<u64> = Vec::new();
        let mut wrong = 0usize;
        let mut pages = 0usize;
        let mut token: Option<String> = None;
        let mut problem = None;
        loop {
            let mut body = json!({"logGroupName": self.group, "filterPattern": pattern});
            if let Some(t) = &token {
                body["nextToken"] = json!(t);
            }
            let a = match timed::<FilterAnswer>(self.cfg, &mut self.conn, "FilterLogEvents", &body)
            {
                Ok((_, a)) => a,
                Err(e) => {
                    problem = Some(e);
                    break;
                }
            };
            pages += 1;
            for e in &a.events {
                match seq_of(&e.message) {
                    Some(s) if e.timestamp == self.stream.base + s as i64 => got.push(s),
                    _ => wrong += 1,
                }
            }
            match a.next_token {
                // moto returns every event for a JSON pattern: give up on paging through
                // all of them after a minute.
                Some(_) if t0.elapsed() > Duration::from_secs(60) => {
                    problem = Some(format!("gave up after {pages} pages in 60 s"));
                    break;
                }
                Some(t) => token = Some(t),
                None => break,
            }
        }
        let wall = t0.elapsed().as_secs_f64();
        let cpu = self.server_cpu().zip(cpu0).map(|(b, a)| b - a);
        let ok = problem.is_none() && wrong == 0 && got == expected;
        let got_set: std::collections::HashSet<u64> = got.iter().copied().collect();
        let missing = expected.iter().filter(|s| !got_set.contains(s)).count();
        self.checks.add(
            &format!("FilterLogEvents `{pattern}` every page by nextToken: all {} matching events once, in time order", expected.len()),
            ok,
            format!(
                "{} events in {pages} pages, {} expected, {} missing, wrong {wrong}, in order {}, error {problem:?}",
                got.len(),
                expected.len(),
                missing,
                got.windows(2).all(|w| w[0] < w[1])
            ),
        );
        log(&format!(
            "{} FilterLogEvents {pattern:?} all pages: {} events in {pages} pages, {wall:.2} s{}",
            self.cfg.name,
            got.len(),
            if ok { "" } else { "  WRONG" }
        ));
        json!({"pattern": pattern, "pages": pages, "events": got.len(), "expected": expected.len(),
               "wall_s": wall, "server_cpu_s": cpu, "answers_correct": ok})
    }
}

/// Waits until the server is idle (under 5 % of a core over a second; at most `max`
/// seconds): Berth seals rolled segments (LZ4) on a background thread after the puts are
/// acknowledged, work the ingest figures do not show and the queries should not share
/// the cores with. Returns (seconds waited, server CPU seconds spent meanwhile).
fn wait_idle(cfg: &Config, max: f64) -> (f64, Option<f64>) {
    let Some(pid) = cfg.server_pid.map(|p| p.to_string()) else {
        return (0.0, None);
    };
    let t0 = Instant::now();
    let Some(cpu0) = cpu_seconds(&pid) else {
        return (0.0, None);
    };
    let mut last = cpu0;
    while t0.elapsed().as_secs_f64() < max {
        thread::sleep(Duration::from_secs(1));
        let Some(now) = cpu_seconds(&pid) else { break };
        let busy = now - last;
        last = now;
        if busy < 0.05 {
            break;
        }
    }
    let waited = t0.elapsed().as_secs_f64();
    log(&format!(
        "{}: server idle after {waited:.0} s, {:.1} CPU-s of background work",
        cfg.name,
        last - cpu0
    ));
    (waited, Some(last - cpu0))
}

// ---------------------------------------------------------------- main

fn setup(
    cfg: &Config,
    conn: &mut KeepAlive,
    run: &str,
) -> Result<(String, String, Vec<String>), String> {
    let own_group = format!("bench-{}-own-{run}", cfg.name);
    let big_group = format!("bench-{}-big-{run}", cfg.name);
    call_ok(
        cfg,
        conn,
        "CreateLogGroup",
        &json!({"logGroupName": own_group}),
    )?;
    call_ok(
        cfg,
        conn,
        "CreateLogGroup",
        &json!({"logGroupName": big_group}),
    )?;
    let streams: Vec<String> = (0..cfg.clients).map(|i| format!("client-{i}")).collect();
    for s in &streams {
        call_ok(
            cfg,
            conn,
            "CreateLogStream",
            &json!({"logGroupName": own_group, "logStreamName": s}),
        )?;
    }
    call_ok(
        cfg,
        conn,
        "CreateLogStream",
        &json!({"logGroupName": big_group, "logStreamName": "big"}),
    )?;
    Ok((own_group, big_group, streams))
}

fn run(cfg: &Config) -> Result<usize, String> {
    let timeout = Duration::from_secs(600);
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    let run_id = format!("{:x}", seed & 0xFFFF_FFFF);
    let mut conn = KeepAlive::new(&cfg.addr, timeout);
    let (own_group, big_group, streams) = setup(cfg, &mut conn, &run_id)?;
    log(&format!(
        "{}: groups {own_group} ({} streams) and {big_group} (stream big)",
        cfg.name,
        streams.len()
    ));
    let mut clients: Vec<Client> = (0..cfg.clients)
        .map(|_| Client {
            conn: KeepAlive::new(&cfg.addr, timeout),
        })
        .collect();
    let b = cfg.batch;

    // Ingest, one stream per client. Timestamps 1 ms apart, ending at least an hour ago.
    let own_batches = cfg.ingest_events.div_ceil(b);
    let own_base = now_ms() - 3_600_000 - (own_batches * b) as i64;
    let (mut own_stats, own_acked) = ingest(
        cfg,
        "PutLogEvents, own stream per client",
        &mut clients,
        &own_group,
        &streams,
        own_base,
        cfg.ingest_seconds,
        own_batches,
    );

    let (waited, cpu) = wait_idle(cfg, 300.0);
    own_stats.insert("idle_wait_after_s".into(), json!(waited));
    own_stats.insert("server_cpu_after_s".into(), json!(cpu));

    // Ingest into one stream (it becomes the stream the queries read).
    let big_batches = cfg.big_events.div_ceil(b);
    let big_base = now_ms() - 3_600_000 - (big_batches * b) as i64;
    let (mut big_stats, big_acked) = ingest(
        cfg,
        "PutLogEvents, all clients on one stream",
        &mut clients,
        &big_group,
        &["big".to_string()],
        big_base,
        cfg.big_seconds,
        big_batches,
    );
    let (waited, cpu) = wait_idle(cfg, 300.0);
    big_stats.insert("idle_wait_after_s".into(), json!(waited));
    big_stats.insert("server_cpu_after_s".into(), json!(cpu));
    let stream = Stream {
        base: big_base,
        batch: b,
        ok: big_acked,
    };
    let mut checks = Checks::default();
    let expected = stream.events();
    log(&format!(
        "{}: stream big holds {expected} acknowledged events",
        cfg.name
    ));

    // DescribeLogStreams of both groups.
    let mut described = serde_json::Map::new();
    for (group, acked) in [(&own_group, &own_acked), (&big_group, &stream.ok)] {
        let v = call_ok(
            cfg,
            &mut conn,
            "DescribeLogStreams",
            &json!({"logGroupName": group}),
        )?;
        described.insert(group.clone(), v["logStreams"].clone());
        let put = acked.iter().filter(|&&a| a).count() as u64 * b;
        if cfg.name == "berth" {
            // Berth's uploadSequenceToken is the stream's event count.
            let stored: u64 = v["logStreams"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s["uploadSequenceToken"].as_str()?.parse::<u64>().ok())
                .sum();
            checks.add(
                &format!(
                    "DescribeLogStreams {group}: events stored (uploadSequenceToken) = events put"
                ),
                stored == put,
                format!("stored {stored}, put {put}"),
            );
        } else {
            // moto's storedBytes is the sum of the message lengths.
            let stored: u64 = v["logStreams"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s["storedBytes"].as_u64())
                .sum();
            let base = if group == &big_group {
                big_base
            } else {
                own_base
            };
            let bytes: u64 = acked
                .iter()
                .enumerate()
                .filter(|(_, a)| **a)
                .flat_map(|(k, _)| (k as u64 * b)..(k as u64 + 1) * b)
                .map(|s| message_of(s, base + s as i64).len() as u64)
                .sum();
            checks.add(
                &format!("DescribeLogStreams {group}: storedBytes (moto: message bytes) = message bytes put"),
                stored == bytes,
                format!("stored {stored}, put {bytes} bytes in {put} events"),
            );
        }
    }
    if let (Some(first), Some(last)) = (stream.first_seq(), stream.last_seq()) {
        let v = &described[&big_group][0];
        let (f, l) = (
            v["firstEventTimestamp"].as_i64(),
            v["lastEventTimestamp"].as_i64(),
        );
        checks.add(
            "DescribeLogStreams big: first/lastEventTimestamp",
            f == Some(big_base + first as i64) && l == Some(big_base + last as i64),
            format!(
                "{f:?}/{l:?}, expected {}/{}",
                big_base + first as i64,
                big_base + last as i64
            ),
        );
    }

    let mut q = Query {
        cfg,
        conn,
        group: big_group.clone(),
        stream: &stream,
        checks,
        rng: Rng::new(seed),
    };
    let walk = if cfg.walk { q.walk() } else { Value::Null };
    let get = json!({
        "limit_100_random": q.get_random(100, cfg.random_reps),
        "limit_10000_random": q.get_random(10_000, cfg.random_reps),
        "start_from_head": q.get_end(true, cfg.reps),
        "default_newest": q.get_end(false, cfg.reps),
    });
    let filter = json!({
        "term": q.filter("term, 1 in 10,000", TERM_PATTERN, is_term_error, cfg.reps),
        "json_1pct": q.filter("JSON, 1 %, first page", JSON_PATTERN, |s| is_json(s) && is_json_error(s), cfg.reps),
        "json_rare": q.filter("JSON, 1 in 1,000,000", RARE_PATTERN, |s| is_json(s) && is_rare(s), cfg.reps),
        "nothing": q.filter("no match", NOTHING_PATTERN, |_| false, cfg.reps),
    });
    let all_pages = q.filter_all_pages(JSON_PATTERN, |s| is_json(s) && is_json_error(s));
    let failed = q.checks.failed();
    let result = json!({
        "name": cfg.name,
        "endpoint": cfg.endpoint,
        "clients": cfg.clients,
        "batch_events": b,
        "big_stream_events": expected,
        "ingest_own_streams": Value::Object(own_stats),
        "ingest_one_stream": Value::Object(big_stats),
        "get_log_events": get,
        "walk": walk,
        "filter_log_events": filter,
        "filter_all_pages_json_1pct": all_pages,
        "describe_log_streams": Value::Object(described),
        "checks": q.checks.json(),
        "checks_failed": failed,
    });
    let text = serde_json::to_string_pretty(&result).unwrap();
    if let Some(path) = &cfg.out {
        fs::write(path, format!("{text}\n")).map_err(|e| format!("write {path}: {e}"))?;
    }
    Ok(failed)
}

fn main() -> ExitCode {
    let cfg = match parse_args() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(&cfg) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(n) => {
            log(&format!("{}: {n} checks failed", cfg.name));
            ExitCode::from(3)
        }
        Err(e) => {
            log(&format!("{}: error: {e}", cfg.name));
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_carry_their_seq_and_the_markers() {
        let base = 1_790_000_000_000;
        let mut term = 0;
        let mut json_err = 0;
        let mut total = 0usize;
        for seq in 0..200_000u64 {
            let m = message_of(seq, base + seq as i64);
            total += m.len();
            assert_eq!(seq_of(&m), Some(seq), "{m}");
            assert_eq!(
                m.contains("ERROR"),
                is_term_error(seq) && !is_json(seq),
                "{m}"
            );
            if is_json(seq) {
                let v: Value = serde_json::from_str(&m).unwrap();
                assert_eq!(v["level"] == "error", is_json_error(seq), "{m}");
                assert_eq!(v["latency"].as_u64().unwrap() > 99_990, is_rare(seq), "{m}");
                json_err += usize::from(v["level"] == "error");
            }
            term += usize::from(m.contains("ERROR"));
        }
        assert_eq!((term, json_err), (20, 2000));
        let avg = total / 200_000;
        assert!((95..=110).contains(&avg), "average message {avg} bytes");
    }

    #[test]
    fn a_batch_of_8000_fits_in_a_put() {
        // 1,048,576 bytes per PutLogEvents counting 26 per event: 10,000 events of ~100
        // bytes do not fit, 8,000 do.
        for first in (0..2_000_000u64).step_by(8_000) {
            let size: usize = (first..first + 8_000)
                .map(|s| message_of(s, 1_790_000_000_000 + s as i64).len() + EVENT_OVERHEAD)
                .sum();
            assert!(size <= MAX_PAGE_BYTES, "batch at {first}: {size} bytes");
        }
    }

    #[test]
    fn bodies_are_json_with_the_events() {
        let (body, bytes) = put_body("g", "s\"x", 10, 3, 1000);
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["logStreamName"], "s\"x");
        let events = v["logEvents"].as_array().unwrap();
        assert_eq!(events.len(), 3);
        assert_eq!(events[1]["timestamp"], 1011);
        assert_eq!(events[1]["message"], message_of(11, 1011));
        let sum: u64 = (10..13)
            .map(|s| message_of(s, 1000 + s as i64).len() as u64)
            .sum();
        assert_eq!(bytes, sum);
    }

    #[test]
    fn stream_seqs_skip_missing_batches() {
        let s = Stream {
            base: 0,
            batch: 3,
            ok: vec![true, false, true],
        };
        assert_eq!(s.seqs_from(1).collect::<Vec<_>>(), [1, 2, 6, 7, 8]);
        assert_eq!(s.events(), 6);
        assert_eq!((s.first_seq(), s.last_seq()), (Some(0), Some(8)));
        assert!(s.contains(7) && !s.contains(4));
    }

    #[test]
    fn prefix_check_allows_only_the_limit_or_the_byte_cap() {
        let ev = |s: u64| OutEvent {
            timestamp: s as i64,
            message: message_of(s, s as i64),
        };
        let page: Vec<OutEvent> = (5..8).map(ev).collect();
        assert!(check_prefix(&page, &mut (5..8), 0, 100).is_ok());
        assert!(check_prefix(&page, &mut (5..20), 0, 3).is_ok());
        assert!(check_prefix(&page, &mut (5..20), 0, 100).is_err());
        assert!(check_prefix(&page, &mut (4..20), 0, 100).is_err());
        assert!(check_prefix(&page, &mut (5..7), 0, 100).is_err());
    }
}
