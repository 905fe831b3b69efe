//! IAM policy evaluation benchmark (issue 18): decisions per second on one thread for a
//! principal with 5 attached policies of 10 statements each, every statement with a condition.
//! `cargo run --release -p berth-iam --example iam_eval_bench [-- --quick]`; see BENCHMARKS.md,
//! section "IAM policy evaluation".

use std::hint::black_box;
use std::time::Instant;

use berth_iam::policy::{
    Decision, Policy, PolicySet, PolicyType, Request, RequestPrincipal, evaluate,
};
use serde_json::json;

const SERVICES: [&str; 5] = ["ecs", "ecr", "logs", "iam", "sts"];

/// Policy `p` (0..5): ten statements over one service, with a mix of operators, wildcards and
/// variables, and one Deny.
fn policy(p: usize) -> Policy {
    let svc = SERVICES[p];
    let statements: Vec<serde_json::Value> = (0..10)
        .map(|s| {
            let (effect, action, resource, condition) = match s {
                0 => ("Allow", format!("{svc}:Describe*"), "*".to_string(),
                      json!({"StringEquals": {"aws:RequestedRegion": ["us-east-1", "eu-west-1"]}})),
                1 => ("Allow", format!("{svc}:List*"), "*".to_string(),
                      json!({"Bool": {"aws:SecureTransport": "true"}})),
                2 => ("Allow", format!("{svc}:Get*"), format!("arn:aws:{svc}:*:111122223333:*"),
                      json!({"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.168.0.0/16"]}})),
                3 => ("Allow", format!("{svc}:Put*"), format!("arn:aws:{svc}:*:111122223333:repository/home/${{aws:username}}/*"),
                      json!({"StringLike": {"aws:PrincipalTag/team": "plat*"}})),
                4 => ("Allow", format!("{svc}:Create*"), "*".to_string(),
                      json!({"ForAllValues:StringEquals": {"aws:TagKeys": ["team", "env"]}})),
                5 => ("Allow", format!("{svc}:Tag*"), "*".to_string(),
                      json!({"StringEquals": {"aws:ResourceTag/team": "${aws:PrincipalTag/team}"}})),
                6 => ("Allow", format!("{svc}:Update*"), "*".to_string(),
                      json!({"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}})),
                7 => ("Allow", format!("{svc}:Start*"), "*".to_string(),
                      json!({"NumericLessThanEquals": {"aws:MultiFactorAuthAge": "3600"}})),
                8 => ("Deny", format!("{svc}:Delete*"), "*".to_string(),
                      json!({"StringNotEquals": {"aws:PrincipalTag/role": "admin"}})),
                _ => ("Allow", format!("{svc}:RunTask"), format!("arn:aws:{svc}:*:111122223333:task-definition/*"),
                      json!({"ArnLike": {"ecs:cluster": "arn:aws:ecs:*:111122223333:cluster/prod-*"},
                             "StringEqualsIfExists": {"aws:RequestedRegion": "us-east-1"}})),
            };
            json!({"Sid": format!("S{s}"), "Effect": effect, "Action": action, "Resource": resource, "Condition": condition})
        })
        .collect();
    Policy::from_json(
        &json!({"Version": "2012-10-17", "Statement": statements}),
        PolicyType::Identity,
    )
    .unwrap()
}

/// This thread's CPU time (user + system) in seconds, from /proc: on a shared machine the
/// wall clock also counts the time other processes had the core.
fn thread_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): utime (field 14) and stime (15) are its 11th and 12th,
    // in clock ticks (100 per second on Linux).
    let tick = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    (tick(11) + tick(12)) as f64 / 100.0
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let set = (0..5).fold(PolicySet::new(), |set, p| set.with_identity(policy(p)));
    let principal = RequestPrincipal::user(
        "111122223333",
        "bob",
        "AIDAEXAMPLEBOB",
        "arn:aws:iam::111122223333:user/bob",
    )
    .with_tag("team", "platform")
    .with_tag("role", "dev");
    let base = |action: &str, resource: &str| {
        Request::new(principal.clone(), action, resource)
            .with_time(time::macros::datetime!(2026-12-06 20:00 UTC))
            .with_key("aws:SourceIp", "10.1.2.3")
            .with_key("aws:RequestedRegion", "us-east-1")
            .with_key("aws:SecureTransport", "true")
            .with_key(
                "ecs:cluster",
                "arn:aws:ecs:us-east-1:111122223333:cluster/prod-web",
            )
    };
    // The requests a request path sees, in turn: allowed by the first policy's last statement,
    // by a later policy, through a variable, denied explicitly, denied implicitly.
    let requests = [
        (
            "ecs:RunTask allowed (policy 1, statement 10)",
            base(
                "ecs:RunTask",
                "arn:aws:ecs:us-east-1:111122223333:task-definition/web:3",
            ),
        ),
        (
            "ecr:GetDownloadUrlForLayer allowed (policy 2, IpAddress)",
            base(
                "ecr:GetDownloadUrlForLayer",
                "arn:aws:ecr:us-east-1:111122223333:repository/app",
            ),
        ),
        (
            "ecr:PutImage allowed (policy 2, ${aws:username})",
            base(
                "ecr:PutImage",
                "arn:aws:ecr:us-east-1:111122223333:repository/home/bob/app",
            ),
        ),
        (
            "logs:DeleteLogGroup explicit deny (policy 3)",
            base(
                "logs:DeleteLogGroup",
                "arn:aws:logs:us-east-1:111122223333:log-group:g",
            ),
        ),
        (
            "sts:AssumeRole implicit deny (no statement applies)",
            base("sts:AssumeRole", "arn:aws:iam::111122223333:role/r"),
        ),
    ];
    let expected = [true, true, true, false, false];
    for ((name, r), want) in requests.iter().zip(expected) {
        let d = evaluate(r, &set);
        assert_eq!(d.is_allowed(), want, "{name}: {d:?}");
        if let Decision::ExplicitDeny { .. } | Decision::ImplicitDeny { .. } = d {
            assert!(d.message(r).is_some());
        }
    }
    let n: u64 = if quick { 500_000 } else { 5_000_000 };
    println!(
        "IAM policy evaluation: 5 identity policies x 10 statements, all with conditions; {n} decisions per row, one thread"
    );
    println!(
        "{:<58} {:>12} {:>9} {:>12} {:>9}",
        "request", "per wall s", "ns wall", "per CPU s", "ns CPU"
    );
    let (mut total_wall, mut total_cpu) = (0f64, 0f64);
    for (name, r) in &requests {
        let (start, cpu) = (Instant::now(), thread_cpu_seconds());
        for _ in 0..n {
            black_box(evaluate(black_box(r), black_box(&set)));
        }
        let wall = start.elapsed().as_secs_f64();
        let cpu = thread_cpu_seconds() - cpu;
        total_wall += wall;
        total_cpu += cpu;
        row(name, n, wall, cpu);
    }
    row(
        "mix (the five in equal parts)",
        n * requests.len() as u64,
        total_wall,
        total_cpu,
    );
    // What the request path pays once per API call before deciding: building the request
    // (principal keys, time, 4 more keys; every value parsed once).
    let builds = n / 10;
    let (start, cpu) = (Instant::now(), thread_cpu_seconds());
    for _ in 0..builds {
        black_box(base(
            black_box("ecs:RunTask"),
            black_box("arn:aws:ecs:us-east-1:111122223333:task-definition/web:3"),
        ));
    }
    let (wall, cpu) = (start.elapsed().as_secs_f64(), thread_cpu_seconds() - cpu);
    row(
        "building a Request (13 keys), not a decision",
        builds,
        wall,
        cpu,
    );
}

fn row(name: &str, n: u64, wall: f64, cpu: f64) {
    let n = n as f64;
    println!(
        "{:<58} {:>12.0} {:>9.1} {:>12.0} {:>9.1}",
        name,
        n / wall,
        wall * 1e9 / n,
        n / cpu,
        cpu * 1e9 / n
    );
}
