//! Placement benchmark (issue 3, "Speed"): N container instances in 3 availability zones
//! with mixed sizes and attributes; tasks of mixed sizes placed in RunTask-sized requests
//! (count 10) with [spread(attribute:ecs.availability-zone), binpack(memory)] and a
//! memberOf constraint, one thread, exact semantics. Also times the reference scan on the
//! same input to give the indexed engine's ratio against it.
//!
//! Run: cargo run --release -p berth-scheduler --example placement_bench [-- --quick]

use std::time::Instant;

use berth_scheduler::{
    ClusterSnapshot, InstanceView, Placer, TaskRequest, parse_placement_constraint,
    parse_placement_strategy, plan_reference,
};

const ZONES: [&str; 3] = ["us-east-1a", "us-east-1b", "us-east-1c"];
/// (instance type, cpu units, MiB)
const TYPES: [(&str, u64, u64); 5] = [
    ("m5.2xlarge", 8192, 32768),
    ("c5.4xlarge", 16384, 32768),
    ("r5.2xlarge", 8192, 65536),
    ("m5.4xlarge", 16384, 65536),
    ("t3.xlarge", 4096, 16384),
];
/// (cpu, MiB) of the task sizes, used in turn.
const SIZES: [(u64, u64); 4] = [(16, 128), (32, 256), (64, 384), (128, 512)];

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

fn cluster(n: usize) -> ClusterSnapshot {
    let mut rng = Lcg(42);
    ClusterSnapshot {
        instances: (0..n)
            .map(|i| {
                let (ty, cpu, mem) = TYPES[rng.next() as usize % TYPES.len()];
                let mut inst = InstanceView::new(
                    format!("arn:aws:ecs:us-east-1:123456789012:container-instance/bench/{i:08x}"),
                    cpu,
                    mem,
                )
                .with_attribute("ecs.availability-zone", ZONES[i % 3])
                .with_attribute("ecs.instance-type", ty)
                .with_attribute("ecs.os-type", "linux")
                .with_attribute("ecs.cpu-architecture", "x86_64");
                // A tenth of the fleet is reserved for another team; memberOf excludes it.
                if rng.next().is_multiple_of(10) {
                    inst = inst.with_attribute("team", "batch");
                }
                inst.ec2_instance_id = format!("i-{i:017x}");
                inst
            })
            .collect(),
    }
}

fn request(i: usize) -> TaskRequest {
    let (cpu, memory) = SIZES[i % SIZES.len()];
    TaskRequest {
        cpu,
        memory,
        group: "service:web".into(),
        count: 10,
        placement_constraints: vec![
            parse_placement_constraint(
                "memberOf",
                Some("attribute:ecs.os-type == linux and attribute:team != batch and attribute:ecs.instance-type =~ (m5|c5|r5|t3)\\..*"),
            )
            .unwrap(),
        ],
        placement_strategy: vec![
            parse_placement_strategy("spread", Some("attribute:ecs.availability-zone")).unwrap(),
            parse_placement_strategy("binpack", Some("memory")).unwrap(),
        ],
        ..Default::default()
    }
}

struct Run {
    instances: usize,
    tasks: usize,
    placed: usize,
    secs: f64,
    build_secs: f64,
}

fn run(instances: usize, tasks: usize) -> Run {
    let snapshot = cluster(instances);
    let mut placer = Placer::new(snapshot, 7);
    // The first request builds the index; time it apart from the steady state.
    let t0 = Instant::now();
    let mut placed = placer.place(&request(0)).placements.len();
    let build_secs = t0.elapsed().as_secs_f64();
    let t = Instant::now();
    for i in 1..tasks / 10 {
        placed += placer.place(&request(i)).placements.len();
    }
    Run {
        instances,
        tasks,
        placed,
        secs: t.elapsed().as_secs_f64(),
        build_secs,
    }
}

fn print(r: &Run) -> f64 {
    let ns = r.secs * 1e9 / (r.placed.saturating_sub(10).max(1)) as f64;
    println!(
        "{:>10} {:>10} {:>10} {:>12.3} {:>14.0} {:>12.0} {:>14.1}",
        r.instances,
        r.tasks,
        r.placed,
        r.secs,
        1e9 / ns,
        ns,
        r.build_secs * 1e3
    );
    ns
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let scale = if quick { 10 } else { 1 };
    println!(
        "placement benchmark: [spread(attribute:ecs.availability-zone), binpack(memory)] + memberOf, requests of 10 tasks, 1 thread"
    );
    let header = || {
        println!(
            "{:>10} {:>10} {:>10} {:>12} {:>14} {:>12} {:>14}",
            "instances",
            "tasks",
            "placed",
            "seconds",
            "placements/s",
            "ns/placement",
            "index build ms"
        )
    };
    println!(
        "\nissue 3 headline: 10,000 instances, {} tasks (about 100 per instance; at the end ~84% of the eligible instances' memory is in use)",
        1_000_000 / scale
    );
    header();
    let headline = print(&run(10_000, 1_000_000 / scale));
    println!("\nscaling at equal fill: 10 tasks per instance");
    header();
    let mut per_placement = Vec::new();
    for n in [1_000, 10_000, 100_000] {
        per_placement.push((n, print(&run(n, n * 10 / scale))));
    }
    let base = per_placement[0].1;
    for (n, ns) in &per_placement {
        println!(
            "cost per placement at {n:>7} instances: {:.2}x the 1,000-instance cost (log2 n ratio {:.2}x)",
            ns / base,
            (*n as f64).log2() / 1000f64.log2()
        );
    }
    // The reference scan on the 10,000-instance cluster, same requests.
    let snapshot = cluster(10_000);
    let mut s = snapshot;
    let reqs = if quick { 20 } else { 100 };
    let t = Instant::now();
    let mut placed = 0;
    for i in 0..reqs {
        let p = plan_reference(&s, &request(i), 7);
        for x in &p.placements {
            berth_scheduler::feasible::apply_task(&mut s.instances[x.instance], &request(i));
        }
        placed += p.placements.len();
    }
    let ref_ns = t.elapsed().as_secs_f64() * 1e9 / placed as f64;
    println!(
        "reference scan at 10,000 instances: {:.0} placements/s ({placed} placements); indexed engine is {:.0}x faster",
        1e9 / ref_ns,
        ref_ns / headline
    );
}
