//! Secrets Manager load generator for bench/secrets/run.sh: GetSecretValue throughput and
//! latency against one server (Berth or moto_server), closed loop.
//!
//! Setup (not timed): `--secrets` secrets `NAME-i` with a 64-byte string value each (one
//! PutSecretValue more on each, so AWSCURRENT and AWSPREVIOUS exist). Then `--clients`
//! threads, each with one keep-alive connection, call GetSecretValue on a random secret
//! (by name) for `--seconds`; every answer is checked (status 200, the value put). Reported
//! as JSON: calls, errors, wrong answers, calls per second, p50/p99 latency (ms), and the
//! server's CPU seconds over the phase when `--server-pid` is given.
//!
//! Requests are what botocore sends: POST /, `X-Amz-Target: secretsmanager.GetSecretValue`,
//! AWS JSON 1.1, SigV4 for service `secretsmanager`, signed just before sending.
//!
//! Build: cargo build --release -p berth-e2e --example secrets-load
//! Run:   target/release/examples/secrets-load --endpoint http://127.0.0.1:PORT [--name N]
//!        [--secrets 100] [--clients 16] [--seconds 10] [--server-pid PID] [--out F.json]
//!        [--access-key K --secret-key S] [--region us-east-1]

use std::process::ExitCode;
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use berth_e2e::http::{HttpResponse, KeepAlive};
use berth_e2e::sigv4::{now_unix, sign_json_request};
use serde_json::{Value, json};

#[path = "../common/load_util.rs"]
mod load_util;
use load_util::{Rng, cpu_seconds, endpoint_addr, log, num, options, percentile};

struct Config {
    addr: String,
    region: String,
    access_key: String,
    secret_key: String,
    name: String,
    secrets: usize,
    clients: usize,
    seconds: f64,
    server_pid: Option<String>,
    out: Option<String>,
}

fn parse_args() -> Result<Config, String> {
    let opts = options()?;
    let addr = endpoint_addr(&opts)?;
    let get = |k: &str, d: &str| opts.get(k).cloned().unwrap_or_else(|| d.to_string());
    Ok(Config {
        addr,
        region: get("region", "us-east-1"),
        access_key: get("access-key", "testing"),
        secret_key: get("secret-key", "testing"),
        name: get("name", "bench"),
        secrets: num(&opts, "secrets", 100)?,
        clients: num(&opts, "clients", 16)?,
        seconds: num(&opts, "seconds", 10.0)?,
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
    let target = format!("secretsmanager.{op}");
    let signed = sign_json_request(
        &cfg.addr,
        &cfg.region,
        "secretsmanager",
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
    headers.push(("User-Agent", "berth-secrets-load/0.1"));
    conn.request("POST", "/", &headers, body)
}

fn call_ok(cfg: &Config, conn: &mut KeepAlive, op: &str, body: &Value) -> Result<Value, String> {
    let r = call(cfg, conn, op, body.to_string().as_bytes()).map_err(|e| format!("{op}: {e}"))?;
    if r.status != 200 {
        return Err(format!("{op}: {}", r.describe()));
    }
    serde_json::from_slice(&r.body).map_err(|e| format!("{op}: answer not JSON: {e}"))
}

/// The value secret `i` holds after setup.
fn value(cfg: &Config, i: usize) -> String {
    format!("{:0>64}", format!("{}-{i}-current", cfg.name))
}

fn secret_name(cfg: &Config, i: usize) -> String {
    format!("{}-{i}", cfg.name)
}

#[derive(Default)]
struct Tally {
    latencies_ms: Vec<f64>,
    errors: u64,
    wrong: u64,
}

fn main() -> ExitCode {
    let cfg = match parse_args() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let timeout = Duration::from_secs(30);
    let mut conn = KeepAlive::new(&cfg.addr, timeout);
    log(&format!("setup: {} secrets on {}", cfg.secrets, cfg.addr));
    for i in 0..cfg.secrets {
        let name = secret_name(&cfg, i);
        let first = json!({"Name": name, "SecretString": format!("{}-old", cfg.name)});
        let second = json!({"SecretId": name, "SecretString": value(&cfg, i)});
        if let Err(e) = call_ok(&cfg, &mut conn, "CreateSecret", &first)
            .and_then(|_| call_ok(&cfg, &mut conn, "PutSecretValue", &second))
        {
            eprintln!("setup failed: {e}");
            return ExitCode::FAILURE;
        }
    }
    log(&format!(
        "GetSecretValue: {} clients for {} s",
        cfg.clients, cfg.seconds
    ));
    let tally = Mutex::new(Tally::default());
    let cpu_before = cfg.server_pid.as_deref().and_then(cpu_seconds);
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(cfg.seconds);
    thread::scope(|scope| {
        for c in 0..cfg.clients {
            let (cfg, tally) = (&cfg, &tally);
            scope.spawn(move || {
                let mut conn = KeepAlive::new(&cfg.addr, timeout);
                let mut rng = Rng::new(0x5ec2e7 + c as u64);
                let mut mine = Tally::default();
                while Instant::now() < deadline {
                    let i = (rng.next() % cfg.secrets as u64) as usize;
                    let body = json!({"SecretId": secret_name(cfg, i)}).to_string();
                    let t0 = Instant::now();
                    let answer = call(cfg, &mut conn, "GetSecretValue", body.as_bytes());
                    let ms = t0.elapsed().as_secs_f64() * 1000.0;
                    match answer {
                        Ok(r) if r.status == 200 => {
                            mine.latencies_ms.push(ms);
                            let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
                            if v["SecretString"].as_str() != Some(value(cfg, i).as_str()) {
                                mine.wrong += 1;
                            }
                        }
                        _ => mine.errors += 1,
                    }
                }
                let mut all = tally.lock().unwrap();
                all.latencies_ms.extend(mine.latencies_ms);
                all.errors += mine.errors;
                all.wrong += mine.wrong;
            });
        }
    });
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = match (cpu_before, cfg.server_pid.as_deref().and_then(cpu_seconds)) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    let mut tally = tally.into_inner().unwrap();
    tally.latencies_ms.sort_by(f64::total_cmp);
    let calls = tally.latencies_ms.len();
    let report = json!({
        "endpoint": cfg.addr,
        "secrets": cfg.secrets,
        "clients": cfg.clients,
        "seconds": elapsed,
        "calls": calls,
        "errors": tally.errors,
        "wrong_answers": tally.wrong,
        "calls_per_second": calls as f64 / elapsed,
        "p50_ms": percentile(&tally.latencies_ms, 50.0),
        "p99_ms": percentile(&tally.latencies_ms, 99.0),
        "server_cpu_s": cpu,
    });
    println!("{report:#}");
    if let Some(out) = &cfg.out {
        std::fs::write(out, format!("{report:#}\n")).expect("write --out");
    }
    if tally.errors > 0 || tally.wrong > 0 {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
