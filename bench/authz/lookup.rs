//! The caller's policies, per request: what the request path pays to get a principal's
//! parsed identity policies (5 attached managed policies of 10 conditioned statements, as
//! bench/authz/setup_iam.py makes them), on the embedded store (redb) and on a one-member
//! etcd (Debian's etcd-server on loopback, skipped when not installed):
//!
//! - `uncached`: what every request did before the cache: read the user and its attached
//!   policies, parse every document (`identity_policies` + `Policy::parse`);
//! - `cached`: `parsed_identity_policies` with nothing changed: one read of the account's
//!   IAM generation key;
//! - `after a change`: the first call after an IAM write (a reload).
//!
//! `cargo run --release -p berth-iam --example authz_lookup_bench [-- --calls N]`; see
//! BENCHMARKS.md, section "Authorization: enforcement on vs off".

use std::sync::Arc;
use std::time::Instant;

use berth_iam::policy::{Policy, PolicyType};
use berth_iam::{CreatePolicy, CreateUser, Holder, Iam, Principal};
use berth_store::testing::EtcdCluster;
use berth_store::{EtcdStore, RedbStore, Store};
use serde_json::json;

const ACCOUNT: &str = "000000000000";

fn document(k: usize) -> String {
    let statements: Vec<_> = (0..10)
        .map(|j| {
            json!({"Sid": format!("P{k}S{j}"), "Effect": if j % 3 == 0 { "Deny" } else { "Allow" },
                   "Action": [format!("ecs:Action{j}*"), "ecs:RunTask"],
                   "Resource": format!("arn:aws:ecs:us-east-1:*:task-definition/team-{k}-{j}-*"),
                   "Condition": {"StringLike": {"ecs:cluster": format!("arn:aws:ecs:*:*:cluster/team-{k}-*")},
                                 "IpAddress": {"aws:SourceIp": ["127.0.0.0/8", format!("10.{k}.{j}.0/24")]},
                                 "StringEquals": {"aws:RequestedRegion": ["us-east-1", "eu-west-1"]}}})
        })
        .collect();
    json!({"Version": "2012-10-17", "Statement": statements}).to_string()
}

/// A one-statement inline policy, different for each `n` (a change to write).
fn small(n: usize) -> String {
    json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
           "Action": format!("ecs:Action{n}"), "Resource": "*"}]})
    .to_string()
}

fn setup(iam: &Iam) -> Principal {
    let user = iam
        .create_user(
            ACCOUNT,
            CreateUser {
                user_name: "bench".into(),
                ..CreateUser::default()
            },
        )
        .unwrap();
    for k in 0..5 {
        let arn = iam
            .create_policy(
                ACCOUNT,
                CreatePolicy {
                    policy_name: format!("p{k}"),
                    document: document(k),
                    ..CreatePolicy::default()
                },
            )
            .unwrap()
            .arn;
        iam.attach_policy(ACCOUNT, Holder::User("bench"), &arn)
            .unwrap();
    }
    Principal::User {
        account: ACCOUNT.into(),
        name: user.user_name,
        id: user.user_id,
        arn: user.arn,
    }
}

/// Microseconds per call of `f`, over `calls` calls.
fn per_call(calls: usize, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..calls {
        f();
    }
    start.elapsed().as_secs_f64() * 1e6 / calls as f64
}

fn measure(name: &str, store: Arc<dyn Store>, calls: usize) {
    let iam = Iam::new(store);
    let who = setup(&iam);
    let uncached = per_call(calls, || {
        let docs = iam.identity_policies(&who).unwrap();
        let parsed: Vec<Policy> = docs
            .iter()
            .map(|d| Policy::parse(d, PolicyType::Identity).unwrap())
            .collect();
        assert_eq!(parsed.len(), 5);
    });
    assert_eq!(iam.parsed_identity_policies(&who).unwrap().len(), 5);
    let cached = per_call(calls, || {
        assert_eq!(iam.parsed_identity_policies(&who).unwrap().len(), 5);
    });
    let mut n = 0;
    let changed_calls = (calls / 10).max(1);
    let changed = per_call(changed_calls, || {
        n += 1;
        iam.put_inline_policy(ACCOUNT, Holder::User("bench"), "x", &small(n))
            .unwrap();
        assert_eq!(iam.parsed_identity_policies(&who).unwrap().len(), 6);
    });
    let write_only = per_call(changed_calls, || {
        n += 1;
        iam.put_inline_policy(ACCOUNT, Holder::User("bench"), "x", &small(n))
            .unwrap();
    });
    // The first call after a change, less the write itself (timed alone).
    println!(
        "| {name} | {uncached:.1} | {cached:.1} | {:.1} | {:.0}x |",
        (changed - write_only).max(0.0),
        uncached / cached
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let calls = args
        .iter()
        .position(|a| a == "--calls")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000);
    println!(
        "calls per figure: {calls} (after a change: {})",
        (calls / 10).max(1)
    );
    println!();
    println!(
        "| store | uncached µs/call | cached µs/call | after a change µs/call | uncached/cached |"
    );
    println!("|---|--:|--:|--:|--:|");
    let dir = std::env::temp_dir().join(format!("berth-authz-lookup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let redb = RedbStore::open(&dir.join("store.redb")).unwrap();
    measure("redb (embedded)", Arc::new(redb), calls);
    std::fs::remove_dir_all(&dir).ok();
    match EtcdCluster::start(1) {
        Some(etcd) => {
            let store = EtcdStore::open(etcd.config()).unwrap();
            measure(
                "etcd (1 member, loopback)",
                Arc::new(store),
                (calls / 10).max(10),
            );
        }
        None => println!("| etcd | SKIPPED: etcd is not installed | | | |"),
    }
}
