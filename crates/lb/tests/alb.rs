//! ALB listeners over real sockets: routing, rules, stickiness, the load balancer's own
//! answers and the headers it adds.

mod common;

use std::time::Duration;

use berth_lb::{
    Action, Cidr, Condition, FixedResponseAction, ForwardAction, ListenerProtocol,
    LoadBalancerKind, QueryStringPair, RedirectAction, RedirectStatus, RulePlan, TargetGroupId,
    WeightedTargetGroup,
};
use common::*;
use hyper::StatusCode;

#[tokio::test]
async fn requests_go_round_robin_over_three_backends() {
    let (a, b, c) = (
        Backend::start("a").await,
        Backend::start("b").await,
        Backend::start("c").await,
    );
    let p = plan(
        vec![lb(
            "alb",
            LoadBalancerKind::Application,
            vec![listener(ListenerProtocol::Http, forward("tg"))],
        )],
        vec![group("tg", &[&a, &b, &c])],
    );
    let (_dp, sink, addr) = serve(&p).await;
    all_healthy(&sink, &["a", "b", "c"]).await;
    let counts = spread(&client(), addr, 30).await;
    // Strict rotation: each backend answers exactly a third.
    for name in ["a", "b", "c"] {
        assert_eq!(counts.get(name), Some(&10), "{counts:?}");
    }
}

#[tokio::test]
async fn a_weighted_forward_splits_80_20_within_the_binomial_spread() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let weighted = Action::Forward(ForwardAction {
        target_groups: vec![
            WeightedTargetGroup {
                id: TargetGroupId("ga".into()),
                weight: 80,
            },
            WeightedTargetGroup {
                id: TargetGroupId("gb".into()),
                weight: 20,
            },
        ],
        stickiness: None,
    });
    let p = plan(
        vec![lb(
            "alb",
            LoadBalancerKind::Application,
            vec![listener(ListenerProtocol::Http, vec![weighted])],
        )],
        vec![group("ga", &[&a]), group("gb", &[&b])],
    );
    let (_dp, _sink, addr) = serve(&p).await;
    let n = 1000.0_f64;
    let counts = spread(&client(), addr, n as usize).await;
    let to_a = *counts.get("a").unwrap_or(&0) as f64;
    // Binomial(n, 0.8): mean 800, standard deviation sqrt(n p (1-p)) = 12.6; five of them
    // leave a chance of a false failure below one in a million.
    let sd = (n * 0.8 * 0.2).sqrt();
    assert!((to_a - 0.8 * n).abs() <= 5.0 * sd, "{counts:?}");
    assert_eq!(counts.values().sum::<usize>(), 1000);
}

fn rule(priority: u32, conditions: Vec<Condition>, answer: &str) -> RulePlan {
    RulePlan {
        priority,
        conditions,
        actions: vec![fixed(200, answer)],
    }
}

fn fixed(status_code: u16, body: &str) -> Action {
    Action::FixedResponse(FixedResponseAction {
        status_code,
        content_type: Some("text/plain".into()),
        message_body: Some(body.into()),
    })
}

#[tokio::test]
async fn rules_match_by_path_host_header_method_query_and_source_in_priority_order() {
    let mut l = listener(ListenerProtocol::Http, vec![fixed(404, "default")]);
    l.rules = vec![
        // Listed out of order: priority decides, so /api/special hits rule 1, not rule 5.
        rule(
            5,
            vec![Condition::PathPattern(vec!["/api/*".into()])],
            "api",
        ),
        rule(
            1,
            vec![Condition::PathPattern(vec!["/api/spec?al".into()])],
            "special",
        ),
        rule(
            10,
            vec![Condition::HostHeader(vec!["*.example.com".into()])],
            "host",
        ),
        rule(
            20,
            vec![Condition::HttpHeader {
                name: "X-Env".into(),
                values: vec!["canary*".into()],
            }],
            "header",
        ),
        rule(
            30,
            vec![Condition::HttpRequestMethod(vec!["DELETE".into()])],
            "method",
        ),
        rule(
            40,
            vec![Condition::QueryString(vec![QueryStringPair {
                key: Some("v".into()),
                value: "2".into(),
            }])],
            "query",
        ),
        rule(
            50,
            vec![
                Condition::SourceIp(vec![Cidr::parse("127.0.0.0/8").unwrap()]),
                Condition::PathPattern(vec!["/local".into()]),
            ],
            "source",
        ),
        rule(
            60,
            vec![
                Condition::SourceIp(vec![Cidr::parse("10.0.0.0/8").unwrap()]),
                Condition::PathPattern(vec!["/remote".into()]),
            ],
            "never",
        ),
    ];
    let p = plan(
        vec![lb("alb", LoadBalancerKind::Application, vec![l])],
        vec![],
    );
    let (_dp, _sink, addr) = serve(&p).await;
    let c = client();
    let body = |a: Answer| a.body;
    assert_eq!(body(get(&c, addr, "/api/users", &[]).await), "api");
    assert_eq!(body(get(&c, addr, "/api/special", &[]).await), "special");
    assert_eq!(
        body(get(&c, addr, "/", &[("host", "WWW.Example.com:8080")]).await),
        "host"
    );
    assert_eq!(
        body(get(&c, addr, "/", &[("host", "example.org")]).await),
        "default"
    );
    assert_eq!(
        body(get(&c, addr, "/", &[("x-env", "Canary-7")]).await),
        "header"
    );
    assert_eq!(body(send(&c, "DELETE", addr, "/", &[]).await), "method");
    assert_eq!(body(get(&c, addr, "/?a=1&v=2", &[]).await), "query");
    assert_eq!(body(get(&c, addr, "/?v=3", &[]).await), "default");
    assert_eq!(body(get(&c, addr, "/local", &[]).await), "source");
    assert_eq!(body(get(&c, addr, "/remote", &[]).await), "default");
    let d = get(&c, addr, "/nothing", &[]).await;
    assert_eq!(d.status, StatusCode::NOT_FOUND);
    assert_eq!(d.headers["content-type"], "text/plain");
}

#[tokio::test]
async fn lb_cookie_stickiness_keeps_a_client_on_one_target() {
    let (a, b, c) = (
        Backend::start("a").await,
        Backend::start("b").await,
        Backend::start("c").await,
    );
    let mut tg = group("tg", &[&a, &b, &c]);
    tg.stickiness = Some(Duration::from_secs(3600));
    let p = plan(
        vec![lb(
            "alb",
            LoadBalancerKind::Application,
            vec![listener(ListenerProtocol::Http, forward("tg"))],
        )],
        vec![tg],
    );
    let (_dp, sink, addr) = serve(&p).await;
    all_healthy(&sink, &["a", "b", "c"]).await;
    let cl = client();
    let first = get(&cl, addr, "/", &[]).await;
    let set = first.headers["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set.starts_with("AWSALB=") && set.contains("Expires=") && set.contains("Path=/"),
        "{set}"
    );
    let cookie = set.split(';').next().unwrap().to_owned();
    for _ in 0..10 {
        let again = get(&cl, addr, "/", &[("cookie", &cookie)]).await;
        assert_eq!(again.body, first.body);
        // The value is stable: the same target gets the same cookie back.
        assert!(
            again.headers["set-cookie"]
                .to_str()
                .unwrap()
                .starts_with(&cookie)
        );
    }
    // Without the cookie, round robin goes on to the others.
    let others = spread(&cl, addr, 3).await;
    assert_eq!(others.len(), 3, "{others:?}");
}

#[tokio::test]
async fn group_stickiness_keeps_a_client_on_one_group_of_a_weighted_forward() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let weighted = Action::Forward(ForwardAction {
        target_groups: vec![
            WeightedTargetGroup {
                id: TargetGroupId("ga".into()),
                weight: 50,
            },
            WeightedTargetGroup {
                id: TargetGroupId("gb".into()),
                weight: 50,
            },
        ],
        stickiness: Some(Duration::from_secs(600)),
    });
    let p = plan(
        vec![lb(
            "alb",
            LoadBalancerKind::Application,
            vec![listener(ListenerProtocol::Http, vec![weighted])],
        )],
        vec![group("ga", &[&a]), group("gb", &[&b])],
    );
    let (_dp, _sink, addr) = serve(&p).await;
    let cl = client();
    let first = get(&cl, addr, "/", &[]).await;
    let set = first.headers["set-cookie"].to_str().unwrap().to_owned();
    assert!(set.starts_with("AWSALBTG="), "{set}");
    let cookie = set.split(';').next().unwrap().to_owned();
    for _ in 0..20 {
        assert_eq!(
            get(&cl, addr, "/", &[("cookie", &cookie)]).await.body,
            first.body
        );
    }
}

#[tokio::test]
async fn redirects_and_fixed_responses_are_answered_by_the_load_balancer() {
    let mut l = listener(ListenerProtocol::Http, vec![fixed(418, "teapot")]);
    l.rules = vec![RulePlan {
        priority: 1,
        conditions: vec![Condition::PathPattern(vec!["/old/*".into()])],
        actions: vec![Action::Redirect(RedirectAction {
            protocol: Some("HTTPS".into()),
            port: Some("443".into()),
            path: Some("/new/#{path}".into()),
            query: Some("#{query}&from=old".into()),
            status_code: RedirectStatus::Http302,
            ..RedirectAction::default()
        })],
    }];
    let p = plan(
        vec![lb("alb", LoadBalancerKind::Application, vec![l])],
        vec![],
    );
    let (_dp, _sink, addr) = serve(&p).await;
    let c = client();
    let r = get(&c, addr, "/old/page?x=1", &[("host", "shop.example.com")]).await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert_eq!(
        r.headers["location"],
        "https://shop.example.com/new/old/page?x=1&from=old"
    );
    let f = get(&c, addr, "/anything", &[]).await;
    assert_eq!((f.status.as_u16(), f.body.as_str()), (418, "teapot"));
}

#[tokio::test]
async fn a_refusing_target_gets_a_502_and_an_empty_group_a_503() {
    let gone = Backend::start("gone").await;
    gone.kill();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut l = listener(ListenerProtocol::Http, forward("dead"));
    l.rules = vec![RulePlan {
        priority: 1,
        conditions: vec![Condition::PathPattern(vec!["/empty".into()])],
        actions: forward("empty"),
    }];
    let p = plan(
        vec![lb("alb", LoadBalancerKind::Application, vec![l])],
        vec![group("dead", &[&gone]), group("empty", &[])],
    );
    let (_dp, _sink, addr) = serve(&p).await;
    let c = client();
    let r = get(&c, addr, "/", &[]).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert_eq!(r.headers["server"], "awselb/2.0");
    assert!(r.body.contains("502 Bad Gateway"), "{}", r.body);
    let e = get(&c, addr, "/empty", &[]).await;
    assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn a_target_slower_than_the_idle_timeout_gets_a_504() {
    let slow = Backend::start("slow").await;
    let mut alb = lb(
        "alb",
        LoadBalancerKind::Application,
        vec![listener(ListenerProtocol::Http, forward("tg"))],
    );
    alb.idle_timeout = Duration::from_millis(300);
    let p = plan(vec![alb], vec![group("tg", &[&slow])]);
    let (_dp, _sink, addr) = serve(&p).await;
    let c = client();
    assert_eq!(
        get(&c, addr, "/slow?ms=3000", &[]).await.status,
        StatusCode::GATEWAY_TIMEOUT
    );
    assert_eq!(
        get(&c, addr, "/slow?ms=10", &[]).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn x_forwarded_headers_are_set_and_appended_and_host_is_kept() {
    let a = Backend::start("a").await;
    let p = plan(
        vec![lb(
            "alb",
            LoadBalancerKind::Application,
            vec![listener(ListenerProtocol::Http, forward("tg"))],
        )],
        vec![group("tg", &[&a])],
    );
    let (_dp, _sink, addr) = serve(&p).await;
    let c = client();
    let r = get(&c, addr, "/", &[("host", "app.example.com")]).await;
    assert_eq!(r.headers["seen-x-forwarded-for"], "127.0.0.1");
    assert_eq!(r.headers["seen-x-forwarded-proto"], "http");
    assert_eq!(
        r.headers["seen-x-forwarded-port"],
        addr.port().to_string().as_str()
    );
    assert_eq!(r.headers["seen-host"], "app.example.com");
    let r = get(&c, addr, "/", &[("x-forwarded-for", "203.0.113.7")]).await;
    assert_eq!(r.headers["seen-x-forwarded-for"], "203.0.113.7, 127.0.0.1");
}
