//! The task credentials endpoint's load generator, run inside each benchmark container
//! (bench/task-credentials/run.sh builds it with plain `rustc`, std only, statically linked,
//! into a FROM scratch image). It waits for a common start time, then for each phase GETs
//! `http://169.254.170.2$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` over a new connection per
//! request (as the SDKs' container provider does: no keep-alive) and prints every request's
//! latency in microseconds, measured from connect to the end of the answer.
//!
//! Environment: `BENCH_START` (unix seconds, the first phase's start), `BENCH_PHASES`
//! (`NAME:SECONDS:INTERVAL_MS,...`; `INTERVAL_MS` 0 = back to back, as fast as it can;
//! phases follow each other with a 2 s gap). Output lines: `READY`, or `LATE` when the
//! container started after `BENCH_START`; per phase `PHASE NAME OK ERRORS` then
//! `US NAME l1 l2 ...`; `DONE`, after which it idles until removed.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const ENDPOINT: &str = "169.254.170.2:80";
const GAP_SECONDS: f64 = 2.0;

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn sleep_until(at: f64) {
    let wait = at - now();
    if wait > 0.0 {
        std::thread::sleep(Duration::from_secs_f64(wait));
    }
}

/// One GET; `true` when the answer is a 200 with a body.
/// One GET; `Err` names the step that failed (`connect`, `write`, `read`, `status`).
fn fetch(addr: SocketAddr, request: &[u8], buf: &mut Vec<u8>) -> Result<(), &'static str> {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(10)) else {
        return Err("connect");
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    if stream.write_all(request).is_err() {
        return Err("write");
    }
    buf.clear();
    if stream.read_to_end(buf).is_err() {
        return Err("read");
    }
    if buf.starts_with(b"HTTP/1.1 200") && buf.windows(11).any(|w| w == b"AccessKeyId") {
        Ok(())
    } else {
        Err("status")
    }
}

fn main() {
    let uri = std::env::var("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        .expect("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (a task with a task role)");
    let start: f64 = std::env::var("BENCH_START")
        .ok()
        .and_then(|s| s.parse().ok())
        .expect("BENCH_START: unix seconds");
    let phases = std::env::var("BENCH_PHASES").unwrap_or_else(|_| "fast:10:0".to_owned());
    let addr: SocketAddr = ENDPOINT.parse().unwrap();
    let request = format!("GET {uri} HTTP/1.1\r\nHost: 169.254.170.2\r\nConnection: close\r\n\r\n");
    println!("{}", if now() < start { "READY" } else { "LATE" });
    let mut at = start;
    let mut buf = Vec::with_capacity(4096);
    for phase in phases.split(',') {
        let mut parts = phase.split(':');
        let name = parts.next().unwrap_or("phase");
        let seconds: f64 = parts.next().and_then(|s| s.parse().ok()).unwrap_or(10.0);
        let interval_ms: u64 = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        let interval = Duration::from_millis(interval_ms);
        sleep_until(at);
        let end = at + seconds;
        let mut latencies = Vec::new();
        let mut errors = 0u64;
        // Paced phases: each container at its own offset within the interval (from its
        // credentials id), so the load is spread rather than 100 requests at one instant.
        if interval_ms > 0 {
            let spread = uri
                .bytes()
                .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
            std::thread::sleep(Duration::from_millis(spread % interval_ms));
        }
        let mut next = Instant::now();
        while now() < end {
            let began = Instant::now();
            let result = fetch(addr, request.as_bytes(), &mut buf);
            let took = began.elapsed();
            match result {
                Ok(()) => latencies.push(took.as_micros() as u64),
                Err(step) => {
                    errors += 1;
                    let first = String::from_utf8_lossy(&buf[..buf.len().min(60)]);
                    println!(
                        "ERROR {name} {step} {:?}",
                        first.lines().next().unwrap_or("")
                    );
                }
            }
            if interval_ms > 0 {
                next += interval;
                if let Some(wait) = next.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
        }
        println!("PHASE {name} {} {errors}", latencies.len());
        let list: Vec<String> = latencies.iter().map(u64::to_string).collect();
        println!("US {name} {}", list.join(" "));
        at = end + GAP_SECONDS;
    }
    println!("DONE");
    // Kept running: the task's containers all stay up until the benchmark removes them.
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
