//! Pieces the Rust load generators under bench/ share (each includes this file with
//! `#[path]` and uses what it needs): timestamped progress lines, a process's CPU time,
//! percentiles, the command line's options and a small deterministic RNG.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::time::{SystemTime, UNIX_EPOCH};

/// A progress line on stderr, `[HH:MM:SS] msg` (UTC).
pub fn log(msg: &str) {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (h, m, s) = (secs / 3600 % 24, secs / 60 % 60, secs % 60);
    eprintln!("[{h:02}:{m:02}:{s:02}] {msg}");
}

/// User + system CPU seconds of a process (and its waited-for children), from /proc.
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields
        .get(11..15)?
        .iter()
        .map(|f| f.parse::<u64>().ok())
        .sum::<Option<u64>>()?;
    Some(ticks as f64 / 100.0)
}

/// The `p`th percentile of sorted values, interpolated between neighbours.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let k = (sorted.len() - 1) as f64 * p / 100.0;
    let lo = k as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * (k - lo as f64))
}

/// The command line's `--key value` pairs.
pub fn options() -> Result<BTreeMap<String, String>, String> {
    let mut opts = BTreeMap::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let key = a
            .strip_prefix("--")
            .ok_or_else(|| format!("unexpected argument {a:?}"))?;
        let value = args
            .next()
            .ok_or_else(|| format!("--{key} needs a value"))?;
        opts.insert(key.to_string(), value);
    }
    Ok(opts)
}

/// `HOST:PORT` of the required `--endpoint http://HOST:PORT`.
pub fn endpoint_addr(opts: &BTreeMap<String, String>) -> Result<String, String> {
    let endpoint = opts
        .get("endpoint")
        .ok_or("--endpoint http://HOST:PORT is required")?;
    Ok(endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string())
}

/// A numeric `--k` option, or `default`.
pub fn num<T: std::str::FromStr>(
    opts: &BTreeMap<String, String>,
    k: &str,
    default: T,
) -> Result<T, String> {
    match opts.get(k) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| format!("--{k}: not a number: {v:?}")),
    }
}

/// splitmix64: deterministic, seedable, good enough to pick work.
pub struct Rng(pub u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}
