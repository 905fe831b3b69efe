//! NLB round trips (TCP and TLS) and HTTPS listeners speaking HTTP/2 and HTTP/1.1, with a
//! self-signed certificate made by openssl for the test.

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;

use berth_lb::{CertificatePem, ListenerProtocol, LoadBalancerKind};
use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Empty};
use hyper::{Request, StatusCode, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

fn self_signed() -> CertificatePem {
    let dir = tempfile::tempdir().unwrap();
    let (key, cert, config) = (
        dir.path().join("key.pem"),
        dir.path().join("cert.pem"),
        dir.path().join("req.cnf"),
    );
    // An end-entity certificate (CA:FALSE): webpki refuses a CA certificate as a server's.
    std::fs::write(
        &config,
        "[req]\ndistinguished_name = dn\nx509_extensions = ext\nprompt = no\n\
         [dn]\nCN = localhost\n\
         [ext]\nbasicConstraints = critical,CA:FALSE\nsubjectAltName = DNS:localhost\n\
         keyUsage = digitalSignature\nextendedKeyUsage = serverAuth\n",
    )
    .unwrap();
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ])
        .args(["-days", "1", "-config"])
        .arg(&config)
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl runs");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    CertificatePem {
        certificate_chain: std::fs::read_to_string(cert).unwrap(),
        private_key: std::fs::read_to_string(key).unwrap(),
    }
}

async fn tls_connect(
    addr: SocketAddr,
    cert: &CertificatePem,
    alpn: &[&[u8]],
) -> TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(cert.certificate_chain.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    #[allow(deprecated)] // ring, as the data plane uses (see src/tls.rs)
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = TcpStream::connect(addr).await.unwrap();
    TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap()
}

fn https_plan(cert: &CertificatePem, backend: &Backend) -> berth_lb::Plan {
    let mut l = listener(ListenerProtocol::Https, forward("tg"));
    l.certificate = Some(cert.clone());
    plan(
        vec![lb("alb", LoadBalancerKind::Application, vec![l])],
        vec![group("tg", &[backend])],
    )
}

#[tokio::test]
async fn an_https_listener_speaks_h2_when_offered_and_forwards_with_proto_https() {
    let cert = self_signed();
    let a = Backend::start("a").await;
    let (_dp, _sink, addr) = serve(&https_plan(&cert, &a)).await;
    let tls = tls_connect(addr, &cert, &[b"h2", b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = Request::get("https://app.example.com/x")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let r = sender.send_request(req).await.unwrap();
    assert_eq!((r.status(), r.version()), (StatusCode::OK, Version::HTTP_2));
    assert_eq!(r.headers()["seen-x-forwarded-proto"], "https");
    assert_eq!(r.headers()["seen-host"], "app.example.com");
    assert_eq!(r.into_body().collect().await.unwrap().to_bytes(), "a");
}

#[tokio::test]
async fn an_https_listener_speaks_http_1_1_to_clients_without_h2() {
    let cert = self_signed();
    let a = Backend::start("a").await;
    let (_dp, _sink, addr) = serve(&https_plan(&cert, &a)).await;
    let tls = tls_connect(addr, &cert, &[b"http/1.1"]).await;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = Request::get("/y")
        .header("host", "localhost")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let r = sender.send_request(req).await.unwrap();
    assert_eq!(
        (r.status(), r.version()),
        (StatusCode::OK, Version::HTTP_11)
    );
    assert_eq!(r.into_body().collect().await.unwrap().to_bytes(), "a");
}

#[tokio::test]
async fn an_https_listener_without_a_usable_certificate_is_refused_and_changes_nothing() {
    let a = Backend::start("a").await;
    let mut bad = self_signed();
    bad.private_key = "not a key".into();
    let dp = berth_lb::DataPlane::new(Arc::new(RecordingSink::default()));
    let err = dp.apply(&https_plan(&bad, &a)).await.unwrap_err();
    assert!(
        matches!(err, berth_lb::LbError::Certificate { .. }),
        "{err}"
    );
    assert!(
        dp.listener_addr(&berth_lb::LoadBalancerId("alb".into()), 0)
            .await
            .is_none()
    );
}

/// A TCP server that echoes what it reads, prefixed by its name once.
async fn echo(name: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                // Health checks connect and leave: write errors just end the session.
                if s.write_all(name.as_bytes()).await.is_err() {
                    return;
                }
                let mut buf = [0u8; 1024];
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if s.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    addr
}

fn nlb_plan(
    protocol: ListenerProtocol,
    cert: Option<CertificatePem>,
    targets: &[(&str, SocketAddr)],
) -> berth_lb::Plan {
    let mut l = listener(protocol, forward("tg"));
    l.certificate = cert;
    let mut tg = group("tg", &[]);
    tg.protocol = berth_lb::TargetProtocol::Tcp;
    tg.health_check.protocol = berth_lb::HealthCheckProtocol::Tcp;
    tg.targets = targets
        .iter()
        .map(|(id, addr)| berth_lb::TargetPlan {
            id: berth_lb::TargetId((*id).into()),
            address: *addr,
        })
        .collect();
    plan(
        vec![lb("nlb", LoadBalancerKind::Network, vec![l])],
        vec![tg],
    )
}

async fn round_trip<S>(mut s: S) -> String
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut name = [0u8; 1];
    s.read_exact(&mut name).await.unwrap();
    let payload = vec![b'x'; 100_000];
    let (mut r, mut w) = tokio::io::split(s);
    let writer = tokio::spawn(async move {
        w.write_all(&payload).await.unwrap();
        w
    });
    let mut back = vec![0u8; 100_000];
    r.read_exact(&mut back).await.unwrap();
    drop(writer.await.unwrap());
    assert!(back.iter().all(|&b| b == b'x'));
    String::from_utf8(name.to_vec()).unwrap()
}

#[tokio::test]
async fn an_nlb_tcp_listener_relays_bytes_both_ways_to_every_target() {
    let targets = [("a", echo("a").await), ("b", echo("b").await)];
    let (_dp, sink, addr) = serve(&nlb_plan(ListenerProtocol::Tcp, None, &targets)).await;
    all_healthy(&sink, &["a", "b"]).await;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..40 {
        seen.insert(round_trip(TcpStream::connect(addr).await.unwrap()).await);
    }
    // Flows hash on their source port; forty flows reach both targets.
    assert_eq!(seen.len(), 2, "{seen:?}");
}

#[tokio::test]
async fn an_nlb_tls_listener_terminates_tls_and_relays_plain_tcp() {
    let cert = self_signed();
    let targets = [("a", echo("a").await)];
    let (_dp, _sink, addr) = serve(&nlb_plan(
        ListenerProtocol::Tls,
        Some(cert.clone()),
        &targets,
    ))
    .await;
    let tls = tls_connect(addr, &cert, &[]).await;
    assert_eq!(round_trip(tls).await, "a");
}
