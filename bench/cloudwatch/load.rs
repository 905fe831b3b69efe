//! CloudWatch metrics load generator for bench/cloudwatch/run.sh, speaking what botocore
//! sends (AWS JSON 1.0, `X-Amz-Target: GraniteServiceVersion20100801.<Operation>`, SigV4
//! for `monitoring`), one keep-alive connection per client thread.
//!
//! Modes:
//! - `ingest`: `--clients` threads PutMetricData for `--seconds`, each call `--per-call`
//!   datums spread over 10 metrics, timestamps now; every answer checked (200). Reports
//!   datapoints/s, calls, errors, p50/p99 latency (ms). Run against Berth and moto_server.
//! - `fill`: `--metrics` metrics (`Bench/Load` with dimension `Id=i`), each with one datum
//!   a minute over the last `--days` days, put 1,000 a call by `--clients` threads.
//! - `query`: GetMetricData over the filled week for all the metrics at a period of an
//!   hour (hour-aligned, so 168 points a metric), 500 queries a call (CloudWatch's limit),
//!   `--rounds` times; each answer checked (every metric, 168 points, the values put).
//!   Reports each round's latency (all calls of the round, sequential) p50/min/max (ms).
//!
//! Build: cargo build --release -p berth-e2e --example cloudwatch-load
//! Run:   target/release/examples/cloudwatch-load --mode M --endpoint http://127.0.0.1:PORT
//!        [--clients 4] [--seconds 10] [--per-call 100] [--metrics 1000] [--days 7]
//!        [--rounds 10] [--server-pid PID] [--access-key K --secret-key S] [--region us-east-1] [--out F.json]

use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use berth_e2e::http::{HttpResponse, KeepAlive};
use berth_e2e::sigv4::{now_unix, sign_json_request};
use serde_json::{Value, json};

#[path = "../common/load_util.rs"]
mod load_util;
use load_util::{Rng, cpu_seconds, endpoint_addr, log, num, options, percentile};

const TARGET: &str = "GraniteServiceVersion20100801";

struct Config {
    mode: String,
    addr: String,
    region: String,
    access_key: String,
    secret_key: String,
    clients: usize,
    seconds: f64,
    per_call: usize,
    metrics: usize,
    days: i64,
    rounds: usize,
    server_pid: Option<String>,
    out: Option<String>,
}

fn parse_args() -> Result<Config, String> {
    let opts = options()?;
    let addr = endpoint_addr(&opts)?;
    let get = |k: &str, d: &str| opts.get(k).cloned().unwrap_or_else(|| d.to_string());
    Ok(Config {
        mode: get("mode", "ingest"),
        addr,
        region: get("region", "us-east-1"),
        access_key: get("access-key", "testing"),
        secret_key: get("secret-key", "testing"),
        clients: num(&opts, "clients", 4)?,
        seconds: num(&opts, "seconds", 10.0)?,
        per_call: num(&opts, "per-call", 100)?,
        metrics: num(&opts, "metrics", 1000)?,
        days: num(&opts, "days", 7)?,
        rounds: num(&opts, "rounds", 10)?,
        server_pid: opts.get("server-pid").cloned(),
        out: opts.get("out").cloned(),
    })
}

fn call(
    cfg: &Config,
    conn: &mut KeepAlive,
    op: &str,
    body: &[u8],
) -> std::io::Result<HttpResponse> {
    let target = format!("{TARGET}.{op}");
    let signed = sign_json_request(
        &cfg.addr,
        &cfg.region,
        "monitoring",
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
    headers.push(("User-Agent", "berth-cloudwatch-load/0.1"));
    conn.request("POST", "/", &headers, body)
}

fn call_ok(cfg: &Config, conn: &mut KeepAlive, op: &str, body: &Value) -> Result<Value, String> {
    let r = call(cfg, conn, op, body.to_string().as_bytes()).map_err(|e| format!("{op}: {e}"))?;
    if r.status != 200 {
        return Err(format!("{op}: {}", r.describe()));
    }
    serde_json::from_slice(&r.body).map_err(|e| format!("{op}: answer not JSON: {e}"))
}

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// The value metric `i` holds at minute `m` (a function of both, so reads can be checked).
fn value(i: usize, m: i64) -> f64 {
    ((i as i64 * 7 + m) % 100) as f64
}

fn metric(i: usize) -> Value {
    json!({"Namespace": "Bench", "MetricName": "Load", "Dimensions": [{"Name": "Id", "Value": i.to_string()}]})
}

fn ingest(cfg: &Config) -> Result<Value, String> {
    let timeout = Duration::from_secs(30);
    let latencies = Mutex::new(Vec::new());
    let errors = AtomicUsize::new(0);
    let cpu_before = cfg.server_pid.as_deref().and_then(cpu_seconds);
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(cfg.seconds);
    thread::scope(|scope| {
        for c in 0..cfg.clients {
            let (latencies, errors) = (&latencies, &errors);
            scope.spawn(move || {
                let mut conn = KeepAlive::new(&cfg.addr, timeout);
                let mut rng = Rng::new(0xc10d + c as u64);
                let mut mine = Vec::new();
                while Instant::now() < deadline {
                    let data: Vec<Value> = (0..cfg.per_call)
                        .map(|k| {
                            json!({"MetricName": format!("Ingest{}", k % 10),
                                "Dimensions": [{"Name": "Client", "Value": c.to_string()}],
                                "Value": (rng.next() % 1000) as f64, "Unit": "Count"})
                        })
                        .collect();
                    let body = json!({"Namespace": "BenchIngest", "MetricData": data}).to_string();
                    let t0 = Instant::now();
                    match call(cfg, &mut conn, "PutMetricData", body.as_bytes()) {
                        Ok(r) if r.status == 200 => mine.push(t0.elapsed().as_secs_f64() * 1000.0),
                        Ok(r) => {
                            if errors.fetch_add(1, Ordering::Relaxed) == 0 {
                                log(&format!("PutMetricData refused: {}", r.describe()));
                            }
                        }
                        Err(_) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                latencies.lock().unwrap().extend(mine);
            });
        }
    });
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = match (cpu_before, cfg.server_pid.as_deref().and_then(cpu_seconds)) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    let mut l = latencies.into_inner().unwrap();
    l.sort_by(f64::total_cmp);
    let calls = l.len();
    Ok(json!({
        "mode": "ingest", "endpoint": cfg.addr, "clients": cfg.clients, "per_call": cfg.per_call,
        "calls": calls, "errors": errors.load(Ordering::Relaxed), "seconds": elapsed,
        "datapoints_per_s": (calls * cfg.per_call) as f64 / elapsed,
        "p50_ms": percentile(&l, 50.0), "p99_ms": percentile(&l, 99.0),
        "server_cpu_s": cpu,
    }))
}

fn fill(cfg: &Config) -> Result<Value, String> {
    let end_minute = now_s() / 60 - 1;
    let minutes = cfg.days * 24 * 60;
    let first = end_minute - minutes + 1;
    let next = AtomicUsize::new(0);
    let failed = Mutex::new(None);
    let started = Instant::now();
    thread::scope(|scope| {
        for _ in 0..cfg.clients {
            let (next, failed) = (&next, &failed);
            scope.spawn(move || {
                let mut conn = KeepAlive::new(&cfg.addr, Duration::from_secs(120));
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= cfg.metrics {
                        return;
                    }
                    let mut m = first;
                    while m <= end_minute {
                        let upto = (m + 999).min(end_minute);
                        let data: Vec<Value> = (m..=upto)
                            .map(|minute| {
                                json!({"MetricName": "Load",
                                    "Dimensions": [{"Name": "Id", "Value": i.to_string()}],
                                    "Timestamp": minute * 60 + 1, "Value": value(i, minute)})
                            })
                            .collect();
                        let body = json!({"Namespace": "Bench", "MetricData": data});
                        if let Err(e) = call_ok(cfg, &mut conn, "PutMetricData", &body) {
                            *failed.lock().unwrap() = Some(e);
                            return;
                        }
                        m = upto + 1;
                    }
                    if i % 100 == 99 {
                        log(&format!("filled {} metrics", i + 1));
                    }
                }
            });
        }
    });
    if let Some(e) = failed.into_inner().unwrap() {
        return Err(e);
    }
    let elapsed = started.elapsed().as_secs_f64();
    Ok(json!({
        "mode": "fill", "metrics": cfg.metrics, "days": cfg.days,
        "datapoints": cfg.metrics as i64 * minutes, "seconds": elapsed,
        "datapoints_per_s": (cfg.metrics as i64 * minutes) as f64 / elapsed,
    }))
}

fn query(cfg: &Config) -> Result<Value, String> {
    let end = now_s() / 3600 * 3600;
    let start = end - cfg.days * 24 * 3600;
    let points = (cfg.days * 24) as usize;
    let mut conn = KeepAlive::new(&cfg.addr, Duration::from_secs(120));
    let mut rounds = Vec::new();
    for round in 0..cfg.rounds {
        let t0 = Instant::now();
        let mut answers = Vec::new();
        for part in (0..cfg.metrics).collect::<Vec<_>>().chunks(500) {
            let queries: Vec<Value> = part
                .iter()
                .map(|i| {
                    json!({"Id": format!("m{i}"), "MetricStat": {"Metric": metric(*i), "Period": 3600, "Stat": "Average"}})
                })
                .collect();
            let body = json!({"MetricDataQueries": queries, "StartTime": start, "EndTime": end});
            answers.push(call_ok(cfg, &mut conn, "GetMetricData", &body)?);
        }
        let ms = t0.elapsed().as_secs_f64() * 1000.0;
        // Checked outside the timing: every metric, every hour, the average put.
        let mut seen = 0;
        for a in &answers {
            for r in a["MetricDataResults"].as_array().into_iter().flatten() {
                let i: usize = r["Id"].as_str().unwrap_or("m")[1..]
                    .parse()
                    .unwrap_or(usize::MAX);
                let values = r["Values"].as_array().cloned().unwrap_or_default();
                let times = r["Timestamps"].as_array().cloned().unwrap_or_default();
                if values.len() != points && round == 0 {
                    return Err(format!(
                        "metric {i}: {} points, wanted {points}",
                        values.len()
                    ));
                }
                if let (Some(v), Some(t)) = (values.first(), times.first()) {
                    let hour = t.as_f64().unwrap_or_default() as i64 / 60;
                    let want = (0..60).map(|m| value(i, hour + m)).sum::<f64>() / 60.0;
                    if (v.as_f64().unwrap_or(f64::NAN) - want).abs() > 1e-9 {
                        return Err(format!("metric {i}: average {v}, wanted {want}"));
                    }
                }
                seen += 1;
            }
        }
        if seen != cfg.metrics {
            return Err(format!("{seen} metrics answered, wanted {}", cfg.metrics));
        }
        log(&format!("round {round}: {ms:.1} ms"));
        rounds.push(ms);
    }
    let mut sorted = rounds.clone();
    sorted.sort_by(f64::total_cmp);
    Ok(json!({
        "mode": "query", "metrics": cfg.metrics, "days": cfg.days, "period": 3600,
        "calls_per_round": cfg.metrics.div_ceil(500), "rounds_ms": rounds,
        "p50_ms": percentile(&sorted, 50.0), "min_ms": sorted.first(), "max_ms": sorted.last(),
    }))
}

fn main() -> ExitCode {
    let cfg = match parse_args() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let result = match cfg.mode.as_str() {
        "ingest" => ingest(&cfg),
        "fill" => fill(&cfg),
        "query" => query(&cfg),
        other => Err(format!("unknown --mode {other}")),
    };
    match result {
        Ok(report) => {
            println!("{report}");
            if let Some(out) = &cfg.out {
                let _ = std::fs::write(out, report.to_string());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
