//! ECS API load generator for bench/ecs-api/run.sh: the timed phases of client.py
//! (RunTask, DescribeTasks, each again from one client alone), written in Rust so the
//! client costs little CPU next to the server on the same 2 cores.
//!
//! Phases as in client.py: every client makes one unmeasured DescribeClusters call first;
//! then, from all clients at once (a barrier), closed loop, each phase capped at `--calls`
//! calls or `--seconds`: (1) RunTask count 1, launch type EC2, ok only if HTTP 200 with
//! exactly one task and no failure; (2) DescribeTasks of 10 distinct ARNs drawn from
//! phase 1's tasks, ok only if all 10 come back with no failure; (3) each call again from
//! one client alone for `--solo-seconds` (same call cap).
//!
//! Every client is a thread with one persistent keep-alive connection (TCP_NODELAY),
//! opened again when the server closes it. Requests are the ones boto3 sends: POST /,
//! `X-Amz-Target: AmazonEC2ContainerServiceV20141113.<Op>`, `Content-Type:
//! application/x-amz-json-1.1`, the same JSON body (RunTask with a fresh `clientToken`),
//! SigV4 for service `ecs`. Latency is measured around signing, sending and reading the
//! whole answer.
//!
//! Replicas of one control plane (bench/replicas/run.sh): `--endpoint` takes several URLs
//! separated by commas and client `i` talks to URL `i mod n` for the whole run (the
//! 1-client phases use the first); `--server-pid` takes every replica's pid (their CPU is
//! summed) and `--store-pid` the store's processes (etcd members, reported apart as
//! `store_cpu_s`).
//!
//! Setup and the final checks stay in client.py (`--setup-only`, `--check-arns`). This
//! program writes the per-phase figures as JSON with the keys report.py reads, and the
//! ARNs of every task it started (phase 1 first, then the 1-client phase) to
//! `--arns-out`, one per line.
//!
//! Build: cargo build --release -p berth-e2e --example ecs-load
//! Run:   target/release/examples/ecs-load --endpoint http://127.0.0.1:PORT --cluster C
//!        --task-definition FAMILY [--clients 100] [--calls 5000] [--seconds 20]
//!        [--solo-seconds 5] [--server-pid PID[,PID...]] [--store-pid PID[,PID...]]
//!        [--out FILE.json] [--arns-out FILE]
//!        [--access-key K --secret-key S] [--region us-east-1] [--name NAME]
//!        [--instances N]

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Barrier, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use berth_e2e::http::{HttpResponse, KeepAlive};
use berth_e2e::sigv4::{now_unix, sign_json_request};
use serde_json::{Value, json};

const TARGET_PREFIX: &str = "AmazonEC2ContainerServiceV20141113";
/// Error texts kept per phase.
const KEEP_ERRORS: usize = 3;

#[path = "../common/load_util.rs"]
mod load_util;
use load_util::{Rng, cpu_seconds, log, num, percentile};

#[derive(Debug, Clone)]
struct Config {
    name: String,
    /// `--endpoint` as given: one URL, or several separated by commas.
    endpoint: String,
    /// `host:port` of each endpoint (also the signed Host header); client `i` uses
    /// `addrs[i % addrs.len()]`.
    addrs: Vec<String>,
    access_key: String,
    secret_key: String,
    region: String,
    cluster: String,
    task_definition: String,
    clients: usize,
    calls: usize,
    seconds: f64,
    solo_seconds: f64,
    /// Processes whose CPU time is the server's (summed): replicas of one control plane.
    server_pids: Vec<u32>,
    /// Processes whose CPU time is reported apart as the store's (etcd members).
    store_pids: Vec<u32>,
    instances: Option<u64>,
    out: Option<String>,
    arns_out: Option<String>,
}

const USAGE: &str =
    "usage: ecs-load --endpoint http://HOST:PORT --cluster NAME --task-definition FAMILY \
[--access-key K] [--secret-key S] [--region us-east-1] [--clients 100] [--calls 5000] \
[--seconds 20] [--solo-seconds 5] [--server-pid PID[,PID...]] [--store-pid PID[,PID...]] \
[--out FILE.json] [--arns-out FILE] [--name NAME] [--instances N]
--endpoint may name several replicas of one control plane, separated by commas: the clients \
are dealt out over them in turn (the 1-client phases use the first).";

fn parse_args() -> Result<Config, String> {
    let mut opts: BTreeMap<String, String> = BTreeMap::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "-h" || a == "--help" {
            return Err(USAGE.into());
        }
        let Some(key) = a.strip_prefix("--") else {
            return Err(format!("unexpected argument {a:?}\n{USAGE}"));
        };
        let (key, value) = match key.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => {
                let v = args
                    .next()
                    .ok_or_else(|| format!("--{key} needs a value"))?;
                (key.to_owned(), v)
            }
        };
        const KNOWN: [&str; 16] = [
            "endpoint",
            "access-key",
            "secret-key",
            "region",
            "cluster",
            "task-definition",
            "clients",
            "calls",
            "seconds",
            "solo-seconds",
            "server-pid",
            "store-pid",
            "out",
            "arns-out",
            "name",
            "instances",
        ];
        if !KNOWN.contains(&key.as_str()) {
            return Err(format!("unknown option --{key}\n{USAGE}"));
        }
        opts.insert(key, value);
    }
    let required = |k: &str| {
        opts.get(k)
            .cloned()
            .ok_or_else(|| format!("--{k} is required\n{USAGE}"))
    };
    let endpoint = required("endpoint")?;
    let addrs = endpoint
        .split(',')
        .map(|url| {
            let addr = url
                .trim()
                .strip_prefix("http://")
                .ok_or("--endpoint must be http://HOST:PORT[,http://HOST:PORT...]")?
                .trim_end_matches('/')
                .to_owned();
            if !addr.contains(':') || addr.contains('/') {
                return Err("--endpoint must be http://HOST:PORT[,http://HOST:PORT...]");
            }
            Ok(addr)
        })
        .collect::<Result<Vec<String>, &str>>()?;
    let clients: usize = num(&opts, "clients", 100)?;
    if clients == 0 {
        return Err("--clients must be at least 1".into());
    }
    let pids = |k: &str| -> Result<Vec<u32>, String> {
        match opts.get(k) {
            None => Ok(Vec::new()),
            Some(v) => v
                .split(',')
                .map(|p| p.trim().parse::<u32>())
                .filter(|p| p != &Ok(0))
                .collect::<Result<_, _>>()
                .map_err(|_| format!("--{k}: not a list of process ids: {v:?}")),
        }
    };
    let instances: u64 = num(&opts, "instances", 0)?;
    Ok(Config {
        name: opts.get("name").cloned().unwrap_or_else(|| "server".into()),
        endpoint,
        addrs,
        access_key: opts
            .get("access-key")
            .cloned()
            .unwrap_or_else(|| "AKIDBERTHBENCH000001".into()),
        secret_key: opts
            .get("secret-key")
            .cloned()
            .unwrap_or_else(|| "benchSecretBenchSecretBenchSecret0123456".into()),
        region: opts
            .get("region")
            .cloned()
            .unwrap_or_else(|| "us-east-1".into()),
        cluster: required("cluster")?,
        task_definition: required("task-definition")?,
        clients,
        calls: num(&opts, "calls", 5000)?,
        seconds: num(&opts, "seconds", 20.0)?,
        solo_seconds: num(&opts, "solo-seconds", 5.0)?,
        server_pids: pids("server-pid")?,
        store_pids: pids("store-pid")?,
        instances: (instances != 0).then_some(instances),
        out: opts.get("out").cloned(),
        arns_out: opts.get("arns-out").cloned(),
    })
}

/// splitmix64: the clientToken and the ARNs each DescribeTasks draws.
impl Rng {
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// A version-4 UUID, as botocore makes for `clientToken`.
    fn uuid4(&mut self) -> String {
        let a = self.next();
        let b = self.next();
        let hi = (a & !0xF000) | 0x4000; // version 4 in bits 12..16 of the third group
        let lo = (b & !(0xC << 60)) | (0x8 << 60); // variant 10xx
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            hi >> 32,
            (hi >> 16) & 0xFFFF,
            hi & 0xFFFF,
            lo >> 48,
            lo & 0xFFFF_FFFF_FFFF
        )
    }
}

fn seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    nanos ^ (u64::from(std::process::id()) << 32)
}

/// A JSON string literal (escaped as serde_json does).
fn js(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// Signs and sends one ECS JSON call over the connection.
fn ecs_call(cfg: &Config, conn: &mut KeepAlive, op: &str, body: &str) -> io::Result<HttpResponse> {
    let target = format!("{TARGET_PREFIX}.{op}");
    let signed = sign_json_request(
        conn.host(),
        &cfg.region,
        "ecs",
        &cfg.access_key,
        &cfg.secret_key,
        &target,
        body.as_bytes(),
        now_unix(),
    );
    let mut headers: Vec<(&str, &str)> = signed
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    headers.push(("User-Agent", "berth-ecs-load/0.1"));
    conn.request("POST", "/", &headers, body.as_bytes())
}

/// What one measured call came back with.
#[derive(Debug, Default)]
struct Outcome {
    /// HTTP 200 and the answer is what the call asked for.
    ok: bool,
    /// HTTP 200 (a JSON answer was read).
    answered: bool,
    /// Entries of `tasks` in the answer.
    tasks: usize,
    /// Their task ARNs (RunTask only).
    arns: Vec<String>,
    /// `reason` of every entry of `failures`.
    failures: Vec<String>,
    /// Why the call is not ok: transport error, non-200 status and body, or the answer.
    problem: Option<String>,
}

/// `tasks[].taskArn` and `failures[].reason` of an ECS answer.
#[derive(Debug, Default, PartialEq)]
struct Answer {
    tasks: usize,
    arns: Vec<String>,
    failures: Vec<String>,
}

/// A JSON reader that walks an answer without building a tree: the client reads
/// thousands of answers a second on the cores the server needs, and a `serde_json::Value`
/// per answer (maps, strings, allocator traffic from 100 threads) cost more CPU than
/// everything else the client does. Only what the benchmark checks is kept.
struct Skim<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Skim<'a> {
    fn peek(&mut self) -> Option<u8> {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.b.get(self.i) {
            self.i += 1;
        }
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    /// A string's bytes between the quotes, escapes left as they are.
    fn raw_string(&mut self) -> Option<&'a [u8]> {
        self.eat(b'"')?;
        let start = self.i;
        loop {
            match *self.b.get(self.i)? {
                b'"' => {
                    self.i += 1;
                    return Some(&self.b[start..self.i - 1]);
                }
                b'\\' => self.i += 2,
                c if c < 0x20 => return None,
                _ => self.i += 1,
            }
        }
    }

    /// A string value, unescaped.
    fn string(&mut self) -> Option<String> {
        let raw = self.raw_string()?;
        if raw.contains(&b'\\') {
            let mut quoted = Vec::with_capacity(raw.len() + 2);
            quoted.push(b'"');
            quoted.extend_from_slice(raw);
            quoted.push(b'"');
            serde_json::from_slice(&quoted).ok()
        } else {
            String::from_utf8(raw.to_vec()).ok()
        }
    }

    fn skip_value(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.raw_string().map(drop),
            b'{' => self.object(|s, _| s.skip_value()),
            b'[' => self.array(Self::skip_value),
            _ => {
                let start = self.i;
                while let Some(c) = self.b.get(self.i)
                    && (c.is_ascii_alphanumeric() || matches!(c, b'-' | b'+' | b'.'))
                {
                    self.i += 1;
                }
                let word = &self.b[start..self.i];
                let number = word
                    .first()
                    .is_some_and(|c| c.is_ascii_digit() || *c == b'-');
                (number || matches!(word, b"true" | b"false" | b"null")).then_some(())
            }
        }
    }

    /// An object: `member` reads the value of each key.
    fn object(&mut self, mut member: impl FnMut(&mut Self, &[u8]) -> Option<()>) -> Option<()> {
        self.eat(b'{')?;
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(());
        }
        loop {
            let key = self.raw_string()?;
            self.eat(b':')?;
            member(self, key)?;
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// An array: `element` reads each element.
    fn array(&mut self, mut element: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.eat(b'[')?;
        if self.peek()? == b']' {
            self.i += 1;
            return Some(());
        }
        loop {
            element(self)?;
            match self.peek()? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// An array of objects (or a null), `member` reading the members of each object.
    fn objects(&mut self, mut member: impl FnMut(&mut Self, &[u8]) -> Option<()>) -> Option<()> {
        if self.peek()? != b'[' {
            return self.skip_value();
        }
        self.array(|s| {
            if s.peek()? == b'{' {
                s.object(&mut member)
            } else {
                s.skip_value()
            }
        })
    }
}

/// The tasks and failures of an ECS answer body; None if it is not one JSON object.
/// `keep_arns`: collect the tasks' ARNs too (else only count the tasks).
fn skim_answer(body: &[u8], keep_arns: bool) -> Option<Answer> {
    let mut a = Answer::default();
    let mut s = Skim { b: body, i: 0 };
    s.object(|s, key| match key {
        b"tasks" => s.objects(|s, k| {
            if k != b"taskArn" {
                return s.skip_value();
            }
            a.tasks += 1;
            if keep_arns {
                a.arns.push(s.string()?);
                Some(())
            } else {
                s.raw_string().map(drop)
            }
        }),
        b"failures" => s.objects(|s, k| {
            if k == b"reason" {
                a.failures.push(s.string()?);
                Some(())
            } else {
                s.skip_value()
            }
        }),
        _ => s.skip_value(),
    })?;
    (s.peek().is_none()).then_some(a)
}

fn outcome_of(result: io::Result<HttpResponse>, want_tasks: usize, keep_arns: bool) -> Outcome {
    let r = match result {
        Ok(r) => r,
        Err(e) => {
            return Outcome {
                problem: Some(format!("transport: {e}")),
                ..Outcome::default()
            };
        }
    };
    let short = |r: &HttpResponse| {
        let mut t = r.text();
        if t.len() > 300 {
            let mut cut = 300;
            while !t.is_char_boundary(cut) {
                cut -= 1;
            }
            t.truncate(cut);
        }
        t
    };
    if r.status != 200 {
        return Outcome {
            problem: Some(format!("HTTP {}: {}", r.status, short(&r))),
            ..Outcome::default()
        };
    }
    let Some(a) = skim_answer(&r.body, keep_arns) else {
        return Outcome {
            problem: Some(format!("HTTP 200, not an ECS JSON answer: {}", short(&r))),
            ..Outcome::default()
        };
    };
    let ok = a.tasks == want_tasks && a.failures.is_empty();
    Outcome {
        ok,
        answered: true,
        problem: (!ok).then(|| {
            format!(
                "HTTP 200 with {} task(s) (wanted {want_tasks}) and failures {:?}: {}",
                a.tasks,
                a.failures,
                short(&r)
            )
        }),
        tasks: a.tasks,
        arns: a.arns,
        failures: a.failures,
    }
}

fn run_task(cfg: &Config, conn: &mut KeepAlive, rng: &mut Rng) -> Outcome {
    let body = format!(
        "{{\"cluster\": {}, \"taskDefinition\": {}, \"count\": 1, \"launchType\": \"EC2\", \
         \"clientToken\": \"{}\"}}",
        js(&cfg.cluster),
        js(&cfg.task_definition),
        rng.uuid4()
    );
    outcome_of(ecs_call(cfg, conn, "RunTask", &body), 1, true)
}

/// DescribeTasks of 10 distinct ARNs drawn from `pool` (all of them if it has fewer).
fn describe_tasks(cfg: &Config, conn: &mut KeepAlive, rng: &mut Rng, pool: &[String]) -> Outcome {
    let want = pool.len().min(10);
    let mut picked: Vec<usize> = Vec::with_capacity(want);
    while picked.len() < want {
        let i = rng.below(pool.len());
        if !picked.contains(&i) {
            picked.push(i);
        }
    }
    let tasks: Vec<String> = picked.iter().map(|&i| js(&pool[i])).collect();
    let body = format!(
        "{{\"cluster\": {}, \"tasks\": [{}]}}",
        js(&cfg.cluster),
        tasks.join(", ")
    );
    outcome_of(ecs_call(cfg, conn, "DescribeTasks", &body), want, false)
}

fn describe_clusters(cfg: &Config, conn: &mut KeepAlive) -> io::Result<()> {
    let body = format!("{{\"clusters\": [{}]}}", js(&cfg.cluster));
    let r = ecs_call(cfg, conn, "DescribeClusters", &body)?;
    if r.status != 200 {
        return Err(io::Error::other(format!(
            "DescribeClusters answered {}",
            r.describe()
        )));
    }
    Ok(())
}

/// A client: its connection and its random numbers.
struct Client {
    conn: KeepAlive,
    rng: Rng,
}

/// The figures of one measured phase, and the answers of its calls.
struct Phase {
    stats: serde_json::Map<String, Value>,
    outcomes: Vec<Outcome>,
}

/// Closed loop from every client in `clients` at once (they start together at a
/// barrier), until `max_calls` calls are taken or `seconds` have passed.
fn measure<F>(
    cfg: &Config,
    label: &str,
    clients: &mut [Client],
    seconds: f64,
    max_calls: usize,
    call: F,
) -> Phase
where
    F: Fn(&mut KeepAlive, &mut Rng) -> Outcome + Sync,
{
    let cpu_of = |pids: &[u32]| -> Option<f64> {
        if pids.is_empty() {
            return None;
        }
        pids.iter().map(|p| cpu_seconds(&p.to_string())).sum()
    };
    let server_cpu = || cpu_of(&cfg.server_pids);
    let store_cpu = || cpu_of(&cfg.store_pids);
    let barrier = Barrier::new(clients.len() + 1);
    let start: OnceLock<Instant> = OnceLock::new();
    let taken = AtomicUsize::new(0);
    let limit = Duration::from_secs_f64(seconds);
    let connects0: u64 = clients.iter().map(|c| c.conn.connects).sum();
    let stale0: u64 = clients.iter().map(|c| c.conn.stale_retries).sum();
    let (per_client, wall, server_cpu_s, client_cpu_s, store_cpu_s) = thread::scope(|s| {
        let handles: Vec<_> = clients
            .iter_mut()
            .map(|c| {
                let (barrier, start, taken, call) = (&barrier, &start, &taken, &call);
                s.spawn(move || {
                    let mut out: Vec<(f64, Outcome)> = Vec::new();
                    barrier.wait();
                    let stop = *start.get().unwrap() + limit;
                    while taken.fetch_add(1, Ordering::Relaxed) < max_calls && Instant::now() < stop
                    {
                        let t = Instant::now();
                        let o = call(&mut c.conn, &mut c.rng);
                        out.push((t.elapsed().as_secs_f64(), o));
                    }
                    out
                })
            })
            .collect();
        let cpu0 = server_cpu();
        let store0 = store_cpu();
        let self0 = cpu_seconds("self");
        let t0 = Instant::now();
        start.set(t0).unwrap();
        barrier.wait();
        let per_client: Vec<Vec<(f64, Outcome)>> =
            handles.into_iter().map(|h| h.join().unwrap()).collect();
        let wall = t0.elapsed().as_secs_f64();
        let server = match (cpu0, server_cpu()) {
            (Some(a), Some(b)) => Some(b - a),
            _ => None,
        };
        let client = match (self0, cpu_seconds("self")) {
            (Some(a), Some(b)) => Some(b - a),
            _ => None,
        };
        let store = match (store0, store_cpu()) {
            (Some(a), Some(b)) => Some(b - a),
            _ => None,
        };
        (per_client, wall, server, client, store)
    });
    let mut latencies = Vec::new();
    let mut outcomes = Vec::new();
    for (lat, o) in per_client.into_iter().flatten() {
        latencies.push(lat);
        outcomes.push(o);
    }
    latencies.sort_by(f64::total_cmp);
    let calls = outcomes.len();
    let ok = outcomes.iter().filter(|o| o.ok).count();
    let errors = outcomes.iter().filter(|o| !o.answered).count();
    let first_errors: Vec<&str> = outcomes
        .iter()
        .filter_map(|o| o.problem.as_deref())
        .take(KEEP_ERRORS)
        .collect();
    let throughput = if wall > 0.0 { ok as f64 / wall } else { 0.0 };
    let ms = |p: f64| percentile(&latencies, p).map(|s| s * 1000.0);
    let connects: u64 = clients.iter().map(|c| c.conn.connects).sum::<u64>() - connects0;
    let stale: u64 = clients.iter().map(|c| c.conn.stale_retries).sum::<u64>() - stale0;
    let mut stats = serde_json::Map::new();
    stats.insert("calls".into(), json!(calls));
    stats.insert("ok".into(), json!(ok));
    stats.insert("errors".into(), json!(errors));
    stats.insert("first_errors".into(), json!(first_errors));
    stats.insert("client_processes".into(), json!(1));
    stats.insert("client_threads".into(), json!(clients.len()));
    stats.insert("wall_s".into(), json!(wall));
    stats.insert("throughput".into(), json!(throughput));
    stats.insert("p50_ms".into(), json!(ms(50.0)));
    stats.insert("p90_ms".into(), json!(ms(90.0)));
    stats.insert("p99_ms".into(), json!(ms(99.0)));
    stats.insert("max_ms".into(), json!(latencies.last().map(|s| s * 1000.0)));
    stats.insert("capped_by_time".into(), json!(calls < max_calls));
    stats.insert("server_cpu_s".into(), json!(server_cpu_s));
    stats.insert("client_cpu_s".into(), json!(client_cpu_s));
    if !cfg.store_pids.is_empty() {
        stats.insert("store_cpu_s".into(), json!(store_cpu_s));
    }
    if let Some(cpu) = server_cpu_s
        && ok > 0
    {
        stats.insert(
            "server_cpu_ms_per_call".into(),
            json!(cpu * 1000.0 / ok as f64),
        );
    }
    stats.insert("connections_opened".into(), json!(connects));
    stats.insert("stale_connection_retries".into(), json!(stale));
    let f = |v: Option<f64>| v.unwrap_or(0.0);
    log(&format!(
        "{} {label}: {ok} ok / {calls} calls in {wall:.1} s = {throughput:.0}/s, p50 {:.1} ms, \
         p99 {:.1} ms, server CPU {:.2} s, client CPU {:.2} s, errors {errors}, \
         connections opened {connects}",
        cfg.name,
        f(ms(50.0)),
        f(ms(99.0)),
        f(server_cpu_s),
        f(client_cpu_s),
    ));
    if let Some(e) = first_errors.first() {
        log(&format!("  first problem: {e}"));
    }
    Phase { stats, outcomes }
}

/// RunTask figures over the answers: tasks started, answers without exactly one task,
/// failures and their reasons.
fn add_run_task_figures(phase: &mut Phase) -> Vec<String> {
    let answered: Vec<&Outcome> = phase.outcomes.iter().filter(|o| o.answered).collect();
    let arns: Vec<String> = answered
        .iter()
        .flat_map(|o| o.arns.iter().cloned())
        .collect();
    let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
    for o in &answered {
        for f in &o.failures {
            *reasons.entry(f.clone()).or_default() += 1;
        }
    }
    let s = &mut phase.stats;
    s.insert("tasks_started".into(), json!(arns.len()));
    s.insert(
        "responses_without_exactly_one_task".into(),
        json!(answered.iter().filter(|o| o.tasks != 1).count()),
    );
    s.insert(
        "failures_in_responses".into(),
        json!(answered.iter().map(|o| o.failures.len()).sum::<usize>()),
    );
    s.insert("failure_reasons".into(), json!(reasons));
    arns
}

fn add_describe_figures(phase: &mut Phase) {
    let answered: Vec<&Outcome> = phase.outcomes.iter().filter(|o| o.answered).collect();
    let s = &mut phase.stats;
    s.insert(
        "tasks_returned".into(),
        json!(answered.iter().map(|o| o.tasks).sum::<usize>()),
    );
    s.insert(
        "failures_in_responses".into(),
        json!(answered.iter().map(|o| o.failures.len()).sum::<usize>()),
    );
    s.insert(
        "answers_without_tasks".into(),
        json!(answered.iter().filter(|o| o.tasks == 0).count()),
    );
    s.insert(
        "answers_incomplete".into(),
        json!(answered.iter().filter(|o| !o.ok).count()),
    );
}

fn run(cfg: &Config) -> Result<(), String> {
    let timeout = Duration::from_secs(120);
    let base = seed();
    let mut clients: Vec<Client> = (0..cfg.clients)
        .map(|i| Client {
            conn: KeepAlive::new(&cfg.addrs[i % cfg.addrs.len()], timeout),
            rng: Rng::new(base ^ (i as u64).wrapping_mul(0x2545_F491_4F6C_DD1D)),
        })
        .collect();

    // Warm-up, not measured: every client connects and makes one call.
    log(&format!(
        "{}: warming up {} clients against {}",
        cfg.name, cfg.clients, cfg.endpoint
    ));
    let warm: Vec<io::Result<()>> = thread::scope(|s| {
        let handles: Vec<_> = clients
            .iter_mut()
            .map(|c| s.spawn(move || describe_clusters(cfg, &mut c.conn)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let failed: Vec<String> = warm
        .into_iter()
        .filter_map(|r| r.err().map(|e| e.to_string()))
        .collect();
    if let Some(first) = failed.first() {
        return Err(format!(
            "{} of {} warm-up calls failed, first: {first}",
            failed.len(),
            cfg.clients
        ));
    }

    // Phase 1: RunTask.
    let mut run_phase = measure(
        cfg,
        "RunTask",
        &mut clients,
        cfg.seconds,
        cfg.calls,
        |c, r| run_task(cfg, c, r),
    );
    let task_arns = add_run_task_figures(&mut run_phase);
    log(&format!(
        "{}: {} tasks started, failures in RunTask answers: {} {}",
        cfg.name,
        task_arns.len(),
        run_phase.stats["failures_in_responses"],
        run_phase.stats["failure_reasons"]
    ));

    // Phase 2: DescribeTasks of 10 of those tasks.
    let pool: Vec<String> = if task_arns.is_empty() {
        vec!["missing".into()]
    } else {
        task_arns.clone()
    };
    let mut desc_phase = measure(
        cfg,
        "DescribeTasks",
        &mut clients,
        cfg.seconds,
        cfg.calls,
        |c, r| describe_tasks(cfg, c, r, &pool),
    );
    add_describe_figures(&mut desc_phase);

    // Phase 3: each call from one client alone (service time without queueing).
    let mut solo_run = measure(
        cfg,
        "RunTask (1 client)",
        &mut clients[..1],
        cfg.solo_seconds,
        cfg.calls,
        |c, r| run_task(cfg, c, r),
    );
    let solo_arns = add_run_task_figures(&mut solo_run);
    let mut solo_desc = measure(
        cfg,
        "DescribeTasks (1 client)",
        &mut clients[..1],
        cfg.solo_seconds,
        cfg.calls,
        |c, r| describe_tasks(cfg, c, r, &pool),
    );
    add_describe_figures(&mut solo_desc);

    let result = json!({
        "name": cfg.name,
        "client": "rust",
        "endpoint": cfg.endpoint,
        "instances": cfg.instances,
        "clients": cfg.clients,
        "client_processes": 1,
        "calls_cap": cfg.calls,
        "seconds_cap": cfg.seconds,
        "cluster": cfg.cluster,
        "task_definition": cfg.task_definition,
        "tasks_started_total": task_arns.len() + solo_arns.len(),
        "run_task": Value::Object(run_phase.stats),
        "describe_tasks": Value::Object(desc_phase.stats),
        "solo": {
            "RunTask": Value::Object(solo_run.stats),
            "DescribeTasks": Value::Object(solo_desc.stats),
        },
    });
    let text = serde_json::to_string_pretty(&result).unwrap();
    if let Some(path) = &cfg.out {
        fs::write(path, format!("{text}\n")).map_err(|e| format!("write {path}: {e}"))?;
    }
    if let Some(path) = &cfg.arns_out {
        let mut lines = String::new();
        for a in task_arns.iter().chain(&solo_arns) {
            lines.push_str(a);
            lines.push('\n');
        }
        fs::write(path, lines).map_err(|e| format!("write {path}: {e}"))?;
    }
    println!("{text}");
    Ok(())
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
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log(&format!("{}: error: {e}", cfg.name));
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a tree parse makes of the same body.
    fn by_value(body: &str) -> Option<Answer> {
        let v: Value = serde_json::from_str(body).ok()?;
        v.as_object()?;
        let tasks = v["tasks"].as_array().cloned().unwrap_or_default();
        Some(Answer {
            tasks: tasks.iter().filter(|t| t["taskArn"].is_string()).count(),
            arns: tasks
                .iter()
                .filter_map(|t| t["taskArn"].as_str().map(str::to_owned))
                .collect(),
            failures: v["failures"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| f["reason"].as_str().map(str::to_owned))
                .collect(),
        })
    }

    #[test]
    fn skim_reads_what_a_tree_parse_reads() {
        let bodies = [
            r#"{"tasks": [], "failures": []}"#,
            r#"{}"#,
            r#" { "failures" : [ {"arn": "x", "reason": "RESOURCE:CPU", "detail": null} ] , "tasks":[] } "#,
            r#"{"tasks": [{"attachments": [], "containers": [{"taskArn": "inner", "exitCode": -1,
               "x": [1.5e3, true, false, null, {"a": []}]}], "taskArn": "arn:aws:ecs:us-east-1:1:task/c/ab\/c\u00e9",
               "cpu": "10", "tags": {}}, {"taskArn": "arn:2", "containers": []}],
               "failures": [{"reason": "MISSING \"quoted\""}]}"#,
            r#"{"tasks": null, "failures": null, "nextToken": "t"}"#,
        ];
        for body in bodies {
            let skim = skim_answer(body.as_bytes(), true);
            assert_eq!(skim, by_value(body), "{body}");
            assert!(skim.is_some(), "{body}");
            let counted = skim_answer(body.as_bytes(), false).unwrap();
            assert_eq!(counted.tasks, by_value(body).unwrap().tasks);
            assert!(counted.arns.is_empty());
        }
        let a = skim_answer(bodies[3].as_bytes(), true).unwrap();
        assert_eq!(a.arns[0], "arn:aws:ecs:us-east-1:1:task/c/ab/c\u{e9}");
        assert_eq!(a.failures, ["MISSING \"quoted\""]);
    }

    #[test]
    fn skim_refuses_what_is_not_one_json_object() {
        for body in [
            "",
            "[]",
            "<html>",
            r#"{"tasks": [}"#,
            r#"{"tasks": []} trailing"#,
            r#"{"tasks": [{"taskArn": "a"}],}"#,
            r#"{"a": nope}"#,
            r#"{"a": "unterminated}"#,
        ] {
            assert_eq!(skim_answer(body.as_bytes(), true), None, "{body}");
        }
    }
}
