//! Serves a plan given on the command line, until Ctrl-C: the benchmark's driver until the
//! ELBv2 API feeds the data plane.
//!
//!     serve_plan [--address 127.0.0.1] [--workers N] [--alb PORT] [--nlb PORT] --target HOST:PORT...
//!
//! `--alb` makes an ALB with an HTTP listener, `--nlb` an NLB with a TCP listener; both
//! forward to one target group holding every `--target` (HTTP health checks of `/` for the
//! ALB's, TCP connects for the NLB's). `--workers` sets tokio's worker threads (default: one
//! per core, as tokio does), so a benchmark can give HAProxy the same `nbthread`.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use berth_lb::{
    Action, DataPlane, ForwardAction, HealthCheckPlan, HealthCheckProtocol, HealthSink,
    ListenerPlan, ListenerProtocol, LoadBalancerId, LoadBalancerKind, LoadBalancerPlan, Plan,
    TargetGroupId, TargetGroupPlan, TargetHealth, TargetId, TargetPlan, TargetProtocol,
};

struct PrintHealth;

impl HealthSink for PrintHealth {
    fn target_health_changed(
        &self,
        group: &TargetGroupId,
        target: &TargetId,
        health: &TargetHealth,
    ) {
        eprintln!("{group} {target}: {}", health.state.as_str());
    }

    fn target_removed(&self, group: &TargetGroupId, target: &TargetId) {
        eprintln!("{group} {target}: removed");
    }
}

fn usage() -> ! {
    eprintln!(
        "usage: serve_plan [--address IP] [--workers N] [--alb PORT] [--nlb PORT] --target HOST:PORT..."
    );
    std::process::exit(2)
}

fn group(id: &str, protocol: TargetProtocol, targets: &[SocketAddr]) -> TargetGroupPlan {
    let check = match protocol {
        TargetProtocol::Tcp => HealthCheckProtocol::Tcp,
        _ => HealthCheckProtocol::Http,
    };
    TargetGroupPlan {
        id: TargetGroupId(id.into()),
        protocol,
        targets: targets
            .iter()
            .map(|a| TargetPlan {
                id: TargetId(a.to_string()),
                address: *a,
            })
            .collect(),
        health_check: HealthCheckPlan {
            protocol: check,
            interval: Duration::from_secs(5),
            healthy_threshold: 2,
            ..HealthCheckPlan::default()
        },
        deregistration_delay: Duration::from_secs(300),
        stickiness: None,
    }
}

fn load_balancer(
    id: &str,
    kind: LoadBalancerKind,
    address: Ipv4Addr,
    port: u16,
    protocol: ListenerProtocol,
    tg: &str,
) -> LoadBalancerPlan {
    LoadBalancerPlan {
        id: LoadBalancerId(id.into()),
        kind,
        address,
        idle_timeout: Duration::from_secs(60),
        listeners: vec![ListenerPlan {
            port,
            protocol,
            certificate: None,
            rules: Vec::new(),
            default_actions: vec![Action::Forward(ForwardAction::to(TargetGroupId(tg.into())))],
        }],
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut address, mut alb, mut nlb, mut targets) =
        (Ipv4Addr::LOCALHOST, None, None, Vec::new());
    let mut workers = None;
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--address" => address = value.parse().unwrap_or_else(|_| usage()),
            "--workers" => workers = Some(value.parse::<usize>().unwrap_or_else(|_| usage())),
            "--alb" => alb = Some(value.parse::<u16>().unwrap_or_else(|_| usage())),
            "--nlb" => nlb = Some(value.parse::<u16>().unwrap_or_else(|_| usage())),
            "--target" => targets.push(value.parse::<SocketAddr>().unwrap_or_else(|_| usage())),
            _ => usage(),
        }
    }
    if targets.is_empty() || (alb.is_none() && nlb.is_none()) || workers == Some(0) {
        usage();
    }
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = workers {
        runtime.worker_threads(n);
    }
    let runtime = runtime.enable_all().build().unwrap_or_else(|e| {
        eprintln!("serve_plan: {e}");
        std::process::exit(1)
    });
    runtime.block_on(serve(address, alb, nlb, &targets));
}

async fn serve(address: Ipv4Addr, alb: Option<u16>, nlb: Option<u16>, targets: &[SocketAddr]) {
    let mut plan = Plan::default();
    if let Some(port) = alb {
        plan.target_groups
            .push(group("alb-targets", TargetProtocol::Http, targets));
        plan.load_balancers.push(load_balancer(
            "alb",
            LoadBalancerKind::Application,
            address,
            port,
            ListenerProtocol::Http,
            "alb-targets",
        ));
    }
    if let Some(port) = nlb {
        plan.target_groups
            .push(group("nlb-targets", TargetProtocol::Tcp, targets));
        plan.load_balancers.push(load_balancer(
            "nlb",
            LoadBalancerKind::Network,
            address,
            port,
            ListenerProtocol::Tcp,
            "nlb-targets",
        ));
    }
    let dp = match std::env::var("LB_THREADS")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        Some(n) => DataPlane::with_workers(Arc::new(PrintHealth), n),
        None => DataPlane::new(Arc::new(PrintHealth)),
    };
    if let Err(e) = dp.apply(&plan).await {
        eprintln!("serve_plan: {e}");
        std::process::exit(1);
    }
    for lb in &plan.load_balancers {
        let port = lb.listeners[0].port;
        if let Some(addr) = dp.listener_addr(&lb.id, port).await {
            println!("{} listening on {addr}", lb.id);
        }
    }
    let _ = tokio::signal::ctrl_c().await;
    dp.shutdown();
}
