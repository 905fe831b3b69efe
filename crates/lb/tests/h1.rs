//! The plain-HTTP/1.1 path of ALB listeners over raw sockets, where a client library would
//! hide what matters: answers framed every way a target may frame them, pipelining, HEAD,
//! `Connection: close` both ways, targets that drop keep-alive connections, and requests
//! with bodies (served by the hyper path the connection is handed to).

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use berth_lb::{
    ListenerProtocol, LoadBalancerKind, TargetGroupId, TargetGroupPlan, TargetId, TargetPlan,
    TargetProtocol,
};
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What a raw target does with one request: the bytes it answers, and whether it then
/// closes the connection (without saying so in the answer).
type Answer = Arc<dyn Fn(&Req) -> (Vec<u8>, bool) + Send + Sync>;

struct Req {
    head: String,
    body: Vec<u8>,
}

impl Req {
    fn path(&self) -> &str {
        self.head.split(' ').nth(1).unwrap_or("")
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// A target on port 0 that speaks HTTP/1.1 by hand, as `answer` says.
async fn raw_target(answer: Answer) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    let Some(req) = read_request(&mut s, &mut buf).await else {
                        return;
                    };
                    let (bytes, close) = answer(&req);
                    if s.write_all(&bytes).await.is_err() || close {
                        return;
                    }
                }
            });
        }
    });
    addr
}

async fn read_request(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Req> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let mut req = Req {
                head,
                body: Vec::new(),
            };
            let len: usize = req
                .header("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                read_some(s, buf).await?;
            }
            req.body = buf[end + 4..end + 4 + len].to_vec();
            buf.drain(..end + 4 + len);
            return Some(req);
        }
        read_some(s, buf).await?;
    }
}

async fn read_some(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<()> {
    let mut chunk = [0u8; 4096];
    match s.read(&mut chunk).await {
        Ok(0) | Err(_) => None,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            Some(())
        }
    }
}

fn ok(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// An ALB with one HTTP listener forwarding to the one target at `addr`.
async fn alb_to(addr: SocketAddr) -> (berth_lb::DataPlane, SocketAddr) {
    alb_with_idle_timeout(addr, Duration::from_secs(60)).await
}

async fn alb_with_idle_timeout(
    addr: SocketAddr,
    idle_timeout: Duration,
) -> (berth_lb::DataPlane, SocketAddr) {
    let group = TargetGroupPlan {
        id: TargetGroupId("tg".into()),
        protocol: TargetProtocol::Http,
        targets: vec![TargetPlan {
            id: TargetId("raw".into()),
            address: addr,
        }],
        health_check: quick_health_check(),
        deregistration_delay: Duration::from_secs(5),
        stickiness: None,
    };
    let mut alb = lb(
        "alb",
        LoadBalancerKind::Application,
        vec![listener(ListenerProtocol::Http, forward("tg"))],
    );
    alb.idle_timeout = idle_timeout;
    let p = plan(vec![alb], vec![group]);
    let (dp, _sink, addr) = serve(&p).await;
    (dp, addr)
}

/// One answer as the client reads it off the wire.
#[derive(Debug)]
struct Got {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Got {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one answer from `buf` + `s`: by its length, its chunks, or until the end of the
/// connection. `head_only` for the answer to a HEAD.
async fn read_answer(s: &mut TcpStream, buf: &mut Vec<u8>, head_only: bool) -> Got {
    let end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        read_some(s, buf)
            .await
            .expect("connection ended before a head");
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    buf.drain(..end + 4);
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut got = Got {
        status,
        headers,
        body: Vec::new(),
    };
    if head_only {
        return got;
    }
    if let Some(len) = got.header("content-length") {
        let len: usize = len.parse().unwrap();
        while buf.len() < len {
            read_some(s, buf)
                .await
                .expect("connection ended inside a body");
        }
        got.body = buf.drain(..len).collect();
    } else if got.header("transfer-encoding") == Some("chunked") {
        loop {
            let line_end = loop {
                if let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
                    break i;
                }
                read_some(s, buf)
                    .await
                    .expect("connection ended inside chunks");
            };
            let line = std::str::from_utf8(&buf[..line_end]).unwrap();
            let digits = line.split(';').next().unwrap().trim();
            let size = usize::from_str_radix(digits, 16).unwrap();
            buf.drain(..line_end + 2);
            if size == 0 {
                // Trailers, up to an empty line.
                loop {
                    if let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
                        buf.drain(..i + 2);
                        if i == 0 {
                            break;
                        }
                        continue;
                    }
                    read_some(s, buf)
                        .await
                        .expect("connection ended inside trailers");
                }
                break;
            }
            while buf.len() < size + 2 {
                read_some(s, buf)
                    .await
                    .expect("connection ended inside a chunk");
            }
            got.body.extend(buf.drain(..size));
            buf.drain(..2);
        }
    } else {
        while read_some(s, buf).await.is_some() {}
        got.body = std::mem::take(buf);
    }
    got
}

async fn with_deadline<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("no answer within 20 s")
}

#[tokio::test]
async fn chunked_and_length_answers_are_relayed_whole_on_one_kept_connection() {
    let big = "x".repeat(1 << 20);
    let big_answer = ok(&big);
    let target = raw_target(Arc::new(move |req: &Req| match req.path() {
        "/chunked" => (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n6\r\n world\r\n0\r\ntrailer: t\r\n\r\n"
                .to_vec(),
            false,
        ),
        "/both" => (
            b"HTTP/1.1 200 OK\r\ncontent-length: 99\r\ntransfer-encoding: chunked\r\n\r\n4\r\nboth\r\n0\r\n\r\n"
                .to_vec(),
            false,
        ),
        "/big" => (big_answer.clone(), false),
        _ => (ok("fine"), false),
    }))
    .await;
    let (_dp, addr) = alb_to(target).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut buf = Vec::new();
    for path in ["/chunked", "/big", "/both", "/chunked", "/small"] {
        s.write_all(format!("GET {path} HTTP/1.1\r\nhost: a\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let got = with_deadline(read_answer(&mut s, &mut buf, false)).await;
        assert_eq!(got.status, 200, "{path}");
        let want: &[u8] = match path {
            "/chunked" => b"hello world",
            "/big" => big.as_bytes(),
            "/both" => {
                // The length beside the chunks is not passed on.
                assert_eq!(got.header("content-length"), None);
                b"both"
            }
            _ => b"fine",
        };
        assert!(got.body == want, "{path}: {} bytes", got.body.len());
    }
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let target = raw_target(Arc::new(|req: &Req| (ok(req.path()), false))).await;
    let (_dp, addr) = alb_to(target).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /one HTTP/1.1\r\nhost: a\r\n\r\nGET /two HTTP/1.1\r\nhost: a\r\n\r\nHEAD /three HTTP/1.1\r\nhost: a\r\n\r\nGET /four HTTP/1.1\r\nhost: a\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    for (path, head_only) in [
        ("/one", false),
        ("/two", false),
        ("/three", true),
        ("/four", false),
    ] {
        let got = with_deadline(read_answer(&mut s, &mut buf, head_only)).await;
        assert_eq!(got.status, 200);
        if head_only {
            // The target's length stays, no body follows: the next answer parses.
            assert_eq!(got.header("content-length"), Some("6"));
        } else {
            assert_eq!(got.body, path.as_bytes());
        }
    }
}

#[tokio::test]
async fn a_request_with_a_body_is_served_and_the_connection_goes_on() {
    let target = raw_target(Arc::new(|req: &Req| {
        let body = format!("{} {}", req.path(), String::from_utf8_lossy(&req.body));
        (ok(&body), false)
    }))
    .await;
    let (_dp, addr) = alb_to(target).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut buf = Vec::new();
    s.write_all(b"GET /before HTTP/1.1\r\nhost: a\r\n\r\n")
        .await
        .unwrap();
    let got = with_deadline(read_answer(&mut s, &mut buf, false)).await;
    assert_eq!(got.body, b"/before ");
    s.write_all(b"POST /echo HTTP/1.1\r\nhost: a\r\ncontent-length: 4\r\n\r\nping")
        .await
        .unwrap();
    let got = with_deadline(read_answer(&mut s, &mut buf, false)).await;
    assert_eq!(got.body, b"/echo ping");
    s.write_all(b"GET /after HTTP/1.1\r\nhost: a\r\nx-forwarded-for: 192.0.2.1\r\n\r\n")
        .await
        .unwrap();
    let got = with_deadline(read_answer(&mut s, &mut buf, false)).await;
    assert_eq!(got.body, b"/after ");
}

#[tokio::test]
async fn forwarded_headers_replace_the_clients_and_hop_by_hop_ones_stay_behind() {
    let target = raw_target(Arc::new(|req: &Req| {
        let seen = [
            "x-forwarded-for",
            "x-forwarded-proto",
            "x-forwarded-port",
            "keep-alive",
            "host",
            "x-custom",
        ]
        .map(|h| format!("{h}={}", req.header(h).unwrap_or("-")))
        .join(";");
        (
            format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nkeep-alive: timeout=5\r\nx-from-target: yes\r\n\r\n{seen}",
                seen.len()
            )
            .into_bytes(),
            false,
        )
    }))
    .await;
    let (_dp, addr) = alb_to(target).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut buf = Vec::new();
    s.write_all(b"GET / HTTP/1.1\r\nHost: app.example.com\r\nX-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: https\r\nConnection: keep-alive\r\nKeep-Alive: timeout=9\r\nX-Custom: 1\r\n\r\n")
        .await
        .unwrap();
    let got = with_deadline(read_answer(&mut s, &mut buf, false)).await;
    assert_eq!(
        String::from_utf8_lossy(&got.body),
        format!(
            "x-forwarded-for=203.0.113.7, 127.0.0.1;x-forwarded-proto=http;x-forwarded-port={};keep-alive=-;host=app.example.com;x-custom=1",
            addr.port()
        )
    );
    assert_eq!(got.header("keep-alive"), None);
    assert_eq!(got.header("x-from-target"), Some("yes"));
}

#[tokio::test]
async fn a_target_that_drops_idle_connections_unannounced_is_asked_again_on_a_new_one() {
    let target = raw_target(Arc::new(|req: &Req| (ok(req.path()), true))).await;
    let (_dp, addr) = alb_to(target).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut buf = Vec::new();
    for i in 0..10 {
        let path = format!("/{i}");
        s.write_all(format!("GET {path} HTTP/1.1\r\nhost: a\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let got = with_deadline(read_answer(&mut s, &mut buf, false)).await;
        assert_eq!(got.status, 200, "request {i}");
        assert_eq!(got.body, path.as_bytes());
    }
}

#[tokio::test]
async fn an_answer_delimited_by_the_targets_close_ends_the_client_connection_too() {
    let target = raw_target(Arc::new(|_: &Req| {
        (
            b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil the end".to_vec(),
            true,
        )
    }))
    .await;
    let (_dp, addr) = alb_to(target).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut buf = Vec::new();
    s.write_all(b"GET / HTTP/1.1\r\nhost: a\r\n\r\n")
        .await
        .unwrap();
    let got = with_deadline(read_answer(&mut s, &mut buf, false)).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.header("connection"), Some("close"));
    assert_eq!(got.body, b"until the end");
}

#[tokio::test]
async fn connection_close_from_the_client_is_honoured_after_the_answer() {
    let target = raw_target(Arc::new(|_: &Req| (ok("bye"), false))).await;
    let (_dp, addr) = alb_to(target).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut buf = Vec::new();
    s.write_all(b"GET / HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let got = with_deadline(read_answer(&mut s, &mut buf, false)).await;
    assert_eq!(got.body, b"bye");
    assert_eq!(got.header("connection"), Some("close"));
    let rest = with_deadline(async {
        let mut rest = Vec::new();
        while read_some(&mut s, &mut rest).await.is_some() {}
        rest
    })
    .await;
    assert!(rest.is_empty(), "{rest:?}");
}

#[tokio::test]
async fn a_target_answering_garbage_gets_the_client_a_502() {
    let target = raw_target(Arc::new(|_: &Req| {
        (b"NOT HTTP AT ALL\r\n\r\n".to_vec(), true)
    }))
    .await;
    let (_dp, addr) = alb_to(target).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut buf = Vec::new();
    s.write_all(b"GET / HTTP/1.1\r\nhost: a\r\n\r\n")
        .await
        .unwrap();
    let got = with_deadline(read_answer(&mut s, &mut buf, false)).await;
    assert_eq!(got.status, 502);
    assert_eq!(got.header("server"), Some("awselb/2.0"));
    // The client's connection stays usable.
    s.write_all(b"GET / HTTP/1.1\r\nhost: a\r\n\r\n")
        .await
        .unwrap();
    let got = with_deadline(read_answer(&mut s, &mut buf, false)).await;
    assert_eq!(got.status, 502);
}

#[tokio::test]
async fn a_client_that_does_not_finish_its_head_within_the_idle_timeout_is_disconnected() {
    let target = raw_target(Arc::new(|_: &Req| (ok("late"), false))).await;
    let (_dp, addr) = alb_with_idle_timeout(target, Duration::from_millis(300)).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut buf = Vec::new();
    s.write_all(b"GET / HTTP/1.1\r\nhost: a\r\n\r\n")
        .await
        .unwrap();
    let got = with_deadline(read_answer(&mut s, &mut buf, false)).await;
    assert_eq!(got.body, b"late");
    // Half a head, then bytes trickling in: the connection still ends.
    s.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
    let ended = with_deadline(async {
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if s.write_all(b"x-trickle: 1\r\n").await.is_err() {
                return true;
            }
            let mut probe = [0u8; 64];
            match tokio::time::timeout(Duration::from_millis(1), s.read(&mut probe)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                _ => {}
            }
        }
    })
    .await;
    assert!(ended);
}

#[tokio::test]
async fn the_load_balancer_and_its_group_count_connections_requests_and_answers() {
    let target = raw_target(Arc::new(|req: &Req| match req.path() {
        "/fail" => (
            b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n".to_vec(),
            false,
        ),
        _ => (ok("fine"), false),
    }))
    .await;
    let (dp, addr) = alb_to(target).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut buf = Vec::new();
    for (path, status) in [("/", 200), ("/fail", 500), ("/again", 200)] {
        s.write_all(format!("GET {path} HTTP/1.1\r\nhost: a\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let got = with_deadline(read_answer(&mut s, &mut buf, false)).await;
        assert_eq!(got.status, status, "{path}");
    }
    let traffic = dp.traffic().await;
    let lb = traffic.load_balancers[&berth_lb::LoadBalancerId("alb".into())];
    assert_eq!((lb.new_connections, lb.active_connections), (1, 1));
    assert_eq!(lb.requests, 3);
    assert_eq!((lb.elb_4xx, lb.elb_5xx), (0, 0));
    let tg = &traffic.target_groups[&TargetGroupId("tg".into())];
    assert_eq!(tg.requests, 3);
    assert_eq!((tg.target_2xx, tg.target_5xx), (2, 1));
    assert_eq!(tg.responses, 3);
    assert!(tg.response_time_micros > 0);
    assert_eq!(tg.response_bins.iter().sum::<u64>(), 3);
    assert_eq!(tg.connection_errors, 0);
    // The closed connection leaves the active count.
    drop(s);
    let lb_id = berth_lb::LoadBalancerId("alb".into());
    let start = std::time::Instant::now();
    while dp.traffic().await.load_balancers[&lb_id].active_connections != 0 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "still counted open"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
