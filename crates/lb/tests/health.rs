//! Active health checks, draining, and plan changes, over real sockets.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use berth_lb::{
    Condition, ListenerProtocol, LoadBalancerKind, RulePlan, TargetHealthReason, TargetHealthState,
};
use common::*;
use hyper::StatusCode;

const LIMIT: Duration = Duration::from_secs(10);

fn alb_over(groups: Vec<berth_lb::TargetGroupPlan>) -> berth_lb::Plan {
    plan(
        vec![lb(
            "alb",
            LoadBalancerKind::Application,
            vec![listener(ListenerProtocol::Http, forward("tg"))],
        )],
        groups,
    )
}

#[tokio::test]
async fn a_target_starts_in_initial_health_checking_and_becomes_healthy() {
    let a = Backend::start("a").await;
    let (_dp, sink, _addr) = serve(&alb_over(vec![group("tg", &[&a])])).await;
    let first = sink.events.lock().unwrap()[0].clone();
    let first = first.2.unwrap();
    assert_eq!(first.state, TargetHealthState::Initial);
    assert_eq!(first.reason.unwrap().as_str(), "Elb.InitialHealthChecking");
    all_healthy(&sink, &["a"]).await;
}

#[tokio::test]
async fn a_failing_backend_is_taken_out_of_routing_and_brought_back() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let (_dp, sink, addr) = serve(&alb_over(vec![group("tg", &[&a, &b])])).await;
    all_healthy(&sink, &["a", "b"]).await;
    let c = client();

    a.health.store(500, Ordering::Relaxed);
    eventually(LIMIT, "a unhealthy", || {
        sink.state("a") == Some(TargetHealthState::Unhealthy)
    })
    .await;
    let report = sink.latest("a").flatten().unwrap();
    assert_eq!(
        report.reason,
        Some(TargetHealthReason::ResponseCodeMismatch)
    );
    assert_eq!(
        report.description.as_deref(),
        Some("Health checks failed with these codes: [500]")
    );
    let counts = spread(&c, addr, 10).await;
    assert_eq!(counts.get("b"), Some(&10), "{counts:?}");

    a.health.store(200, Ordering::Relaxed);
    all_healthy(&sink, &["a"]).await;
    let counts = spread(&c, addr, 10).await;
    assert_eq!(
        (counts.get("a"), counts.get("b")),
        (Some(&5), Some(&5)),
        "{counts:?}"
    );
}

#[tokio::test]
async fn when_every_target_is_unhealthy_the_load_balancer_fails_open() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let (_dp, sink, addr) = serve(&alb_over(vec![group("tg", &[&a, &b])])).await;
    a.health.store(503, Ordering::Relaxed);
    b.health.store(503, Ordering::Relaxed);
    eventually(LIMIT, "both unhealthy", || {
        sink.state("a") == Some(TargetHealthState::Unhealthy)
            && sink.state("b") == Some(TargetHealthState::Unhealthy)
    })
    .await;
    let counts = spread(&client(), addr, 10).await;
    assert_eq!(
        (counts.get("a"), counts.get("b")),
        (Some(&5), Some(&5)),
        "{counts:?}"
    );
}

#[tokio::test]
async fn failed_checks_report_timeouts_and_refusals_with_their_reasons() {
    let (slow, gone) = (Backend::start("slow").await, Backend::start("gone").await);
    gone.kill();
    let mut slow_group = group("tg", &[&slow]);
    slow_group.health_check.path = "/slow?ms=5000".into();
    slow_group.health_check.timeout = Duration::from_millis(200);
    let gone_group = group("tg2", &[&gone]);
    let (_dp, sink, _addr) = serve(&alb_over(vec![slow_group, gone_group])).await;
    eventually(LIMIT, "both unhealthy", || {
        sink.state("slow") == Some(TargetHealthState::Unhealthy)
            && sink.state("gone") == Some(TargetHealthState::Unhealthy)
    })
    .await;
    assert_eq!(
        sink.latest("slow").flatten().unwrap().reason,
        Some(TargetHealthReason::Timeout)
    );
    assert_eq!(
        sink.latest("gone").flatten().unwrap().reason,
        Some(TargetHealthReason::FailedHealthChecks)
    );
}

#[tokio::test]
async fn a_deregistered_target_finishes_its_in_flight_request_while_new_ones_go_elsewhere() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let (dp, sink, addr) = serve(&alb_over(vec![group("tg", &[&a])])).await;
    let c = client();
    let slow = {
        let c = c.clone();
        tokio::spawn(async move { get(&c, addr, "/slow?ms=1500", &[]).await })
    };
    eventually(LIMIT, "the slow request at a", || {
        a.hits.load(Ordering::Relaxed) == 1
    })
    .await;

    dp.apply(&alb_over(vec![group("tg", &[&b])])).await.unwrap();
    assert_eq!(sink.state("a"), Some(TargetHealthState::Draining));
    let draining = sink.latest("a").flatten().unwrap();
    assert_eq!(
        draining.reason.unwrap().as_str(),
        "Target.DeregistrationInProgress"
    );
    for _ in 0..5 {
        assert_eq!(get(&c, addr, "/", &[]).await.body, "b");
    }
    assert!(
        !sink.was_removed("a"),
        "removed while a request was in flight"
    );

    let done = slow.await.unwrap();
    assert_eq!((done.status, done.body.as_str()), (StatusCode::OK, "a"));
    // Nothing left in flight: the drain ends before the 5 s delay.
    eventually(Duration::from_secs(3), "a removed", || {
        sink.was_removed("a")
    })
    .await;
}

#[tokio::test]
async fn a_request_still_in_flight_when_the_deregistration_delay_ends_is_cut() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let (dp, sink, addr) = serve(&alb_over(vec![group("tg", &[&a])])).await;
    let c = client();
    let slow = {
        let c = c.clone();
        tokio::spawn(async move { get(&c, addr, "/slow?ms=20000", &[]).await })
    };
    eventually(LIMIT, "the slow request at a", || {
        a.hits.load(Ordering::Relaxed) == 1
    })
    .await;
    let mut next = group("tg", &[&b]);
    next.deregistration_delay = Duration::from_millis(300);
    dp.apply(&alb_over(vec![next])).await.unwrap();
    let cut = tokio::time::timeout(Duration::from_secs(5), slow)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cut.status, StatusCode::BAD_GATEWAY);
    eventually(LIMIT, "a removed", || sink.was_removed("a")).await;
}

#[tokio::test]
async fn plan_changes_under_continuous_load_drop_no_request() {
    let backends = [
        Backend::start("a").await,
        Backend::start("b").await,
        Backend::start("c").await,
    ];
    let [a, b, c] = &backends;
    let (dp, _sink, addr) = serve(&alb_over(vec![group("tg", &[a, b])])).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (stop, ok, failed, cl) = (stop.clone(), ok.clone(), failed.clone(), client());
        load.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let r = get(&cl, addr, "/slow?ms=5", &[]).await;
                let counter = if r.status == StatusCode::OK {
                    &ok
                } else {
                    &failed
                };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let sets: [&[&Backend]; 3] = [&[b, c], &[a, c], &[a, b, c]];
    for round in 0..12 {
        let mut p = alb_over(vec![group("tg", sets[round % 3])]);
        // Rules come and go too: a rule that forwards the same way.
        if round % 2 == 0 {
            p.load_balancers[0].listeners[0].rules = vec![RulePlan {
                priority: 1,
                conditions: vec![Condition::PathPattern(vec!["/slow".into()])],
                actions: forward("tg"),
            }];
        }
        dp.apply(&p).await.unwrap();
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for l in load {
        l.await.unwrap();
    }
    assert_eq!(failed.load(Ordering::Relaxed), 0);
    assert!(ok.load(Ordering::Relaxed) > 0);
}
