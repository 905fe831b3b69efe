//! The router driven in-process (no socket), as the axum testing example does: presigned
//! SigV4, the front door's error shapes, and the registry's 401 challenge.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use berth_api::{AppState, RootCredentials, TokenIssuer, app};
use berth_registry::Registry;
use berth_sigv4::{RequestParts, SigningParams, presign};
use tower::ServiceExt;

const AKID: &str = "AKIDAPPTEST";
const SECRET: &str = "app-test-secret";

fn state(dir: &std::path::Path) -> Arc<AppState> {
    let store: Arc<dyn berth_store::Store> = Arc::new(berth_store::MemStore::new());
    Arc::new(AppState {
        registry: Registry::open(store.clone(), dir).unwrap(),
        ecs: berth_ecs::Ecs::new(store.clone()),
        iam: berth_iam::Iam::new(store.clone()),
        elbv2: Arc::new(berth_elbv2::Elbv2::new(
            store.clone(),
            berth_model::InstallationId::from_random(7),
        )),
        cloudwatch: Arc::new(berth_cloudwatch::CloudWatch::new(store.clone())),
        ssm: Arc::new(berth_ssm::Ssm::new(
            store.clone(),
            Arc::new(berth_kms::DataKey::derive(&[2; 32])),
        )),
        secrets: Arc::new(berth_secrets::Secrets::new(
            store.clone(),
            Arc::new(berth_kms::DataKey::derive(&[1; 32])),
        )),
        ec2: Arc::new(berth_ec2::Ec2::new(store.clone())),
        app_autoscaling: berth_app_autoscaling::AppAutoScaling::new(
            store.clone(),
            Arc::new(berth_app_autoscaling::LoggedAlarms),
            Arc::new(berth_app_autoscaling::FakeEcs::default()),
        ),
        autoscaling: Arc::new(berth_autoscaling::AutoScaling::new(
            store.clone(),
            Arc::new(berth_api::autoscaling::Ec2Launches(Arc::new(
                berth_ec2::Ec2::new(store.clone()),
            ))),
        )),
        logs: Arc::new(berth_logs::Logs::open(store, &dir.join("logs")).unwrap()),
        credentials: RootCredentials {
            access_key_id: AKID.into(),
            secret_access_key: SECRET.into(),
        },
        account: "000000000000".parse().unwrap(),
        tokens: TokenIssuer::new([1; 32], 3600),
        listen: "127.0.0.1:4566".parse().unwrap(),
        advertise: None,
        agents: Default::default(),
        leader: None,
    })
}

async fn json(response: axum::response::Response) -> (StatusCode, serde_json::Value) {
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn presigned_query_authenticates_an_aws_json_request() {
    let dir = tempfile::tempdir().unwrap();
    let router = app(state(dir.path()));
    let target = "AmazonEC2ContainerRegistry_V20150921.DescribeRegistry";
    let headers = [("host", "127.0.0.1:4566")];
    let parts = RequestParts {
        method: "POST",
        path: "/",
        query: None,
        headers: &headers,
        payload_sha256: None,
    };
    let params = SigningParams {
        access_key_id: AKID,
        secret_access_key: SECRET,
        region: "eu-central-1",
        service: "ecr",
        time: time::OffsetDateTime::now_utc(),
    };
    let query = presign(&parts, &params, 300);
    let request = Request::post(format!("/?{query}"))
        .header("host", "127.0.0.1:4566")
        .header("x-amz-target", target)
        .header("content-type", "application/x-amz-json-1.1")
        .body(Body::from("{}"))
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    assert!(response.headers().contains_key("x-amzn-requestid"));
    let (status, body) = json(response).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["registryId"], "000000000000");

    // The same URL with the signature altered is refused.
    let tampered = query.replace("X-Amz-Signature=", "X-Amz-Signature=0");
    let request = Request::post(format!("/?{tampered}"))
        .header("host", "127.0.0.1:4566")
        .header("x-amz-target", target)
        .body(Body::from("{}"))
        .unwrap();
    let (status, body) = json(router.oneshot(request).await.unwrap()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["__type"], "InvalidSignatureException");
}

#[tokio::test]
async fn unsigned_requests_are_missing_authentication_token() {
    let dir = tempfile::tempdir().unwrap();
    let request = Request::post("/")
        .header(
            "x-amz-target",
            "AmazonEC2ContainerRegistry_V20150921.DescribeRepositories",
        )
        .body(Body::from("{}"))
        .unwrap();
    let (status, body) = json(app(state(dir.path())).oneshot(request).await.unwrap()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["__type"], "MissingAuthenticationTokenException");
    assert!(body["message"].is_string());
}

#[tokio::test]
async fn registry_challenges_with_basic_for_ecr() {
    let dir = tempfile::tempdir().unwrap();
    let request = Request::get("/v2/").body(Body::empty()).unwrap();
    let response = app(state(dir.path())).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(challenge.starts_with("Basic realm="), "{challenge}");
    assert!(challenge.contains("service=\"ecr.amazonaws.com\""));
    assert_eq!(
        response.headers()["docker-distribution-api-version"],
        "registry/2.0"
    );
    let (_, body) = json(response).await;
    assert_eq!(body["errors"][0]["code"], "UNAUTHORIZED");
}
