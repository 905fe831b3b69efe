//! The OCI Distribution API on `/v2/`, authenticated as ECR authenticates it (HTTP Basic
//! with `AWS:<password from GetAuthorizationToken>`). Paths are parsed from the right, so
//! repository names with any number of components work; `OciError` is this protocol's one
//! error mapper (`{"errors":[{"code","message","detail"}]}`).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_model::{Digest, ImageTag, Reference, RepositoryName};
use berth_registry::{RegistryError, Scope, media_types};

use crate::AppState;
use crate::auth::TokenError;

/// Query parameter carrying a registry password, for the links GetDownloadUrlForLayer
/// hands out (ECR hands out presigned S3 URLs instead).
pub const TOKEN_QUERY: &str = "X-Berth-Token";

#[derive(Debug)]
pub struct OciError {
    status: StatusCode,
    code: &'static str,
    message: String,
    headers: Vec<(header::HeaderName, String)>,
}

impl OciError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> OciError {
        OciError {
            status,
            code,
            message: message.into(),
            headers: Vec::new(),
        }
    }

    fn with_header(mut self, name: header::HeaderName, value: String) -> OciError {
        self.headers.push((name, value));
        self
    }

    fn name_invalid(name: &str) -> OciError {
        OciError::new(
            StatusCode::BAD_REQUEST,
            "NAME_INVALID",
            format!("invalid repository name '{name}'"),
        )
    }

    fn digest_invalid(d: &str) -> OciError {
        OciError::new(
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
            format!("invalid digest '{d}'"),
        )
    }

    fn unauthorized(e: TokenError, realm: &str) -> OciError {
        let code = match e {
            TokenError::Expired => "DENIED",
            _ => "UNAUTHORIZED",
        };
        OciError::new(StatusCode::UNAUTHORIZED, code, e.to_string()).with_header(
            header::WWW_AUTHENTICATE,
            format!("Basic realm=\"{realm}\",service=\"ecr.amazonaws.com\""),
        )
    }
}

impl From<RegistryError> for OciError {
    fn from(e: RegistryError) -> OciError {
        use RegistryError as E;
        let (status, code) = match &e {
            E::RepositoryNotFound { .. } => (StatusCode::NOT_FOUND, "NAME_UNKNOWN"),
            E::BlobUnknown(_) => (StatusCode::NOT_FOUND, "BLOB_UNKNOWN"),
            E::UploadUnknown => (StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN"),
            E::Body(_) => (StatusCode::BAD_REQUEST, "BLOB_UPLOAD_INVALID"),
            E::RangeInvalid { size, .. } => {
                let size = *size;
                return OciError::new(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    "BLOB_UPLOAD_INVALID",
                    e.to_string(),
                )
                .with_header(header::RANGE, range_header(size));
            }
            E::DigestMismatch { .. } => (StatusCode::BAD_REQUEST, "DIGEST_INVALID"),
            E::ManifestInvalid(_) => (StatusCode::BAD_REQUEST, "MANIFEST_INVALID"),
            E::ManifestTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "SIZE_INVALID"),
            E::ManifestBlobUnknown(_) | E::ManifestChildUnknown(_) => {
                (StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN")
            }
            E::ImageReferencedByManifestList(_) => (StatusCode::CONFLICT, "DENIED"),
            E::ManifestUnknown(_) | E::ImageNotFound(_) => {
                (StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN")
            }
            E::ImageTagAlreadyExists { .. } => (StatusCode::BAD_REQUEST, "TAG_INVALID"),
            E::RepositoryAlreadyExists { .. }
            | E::RepositoryNotEmpty { .. }
            | E::RepositoryPolicyNotFound { .. }
            | E::LifecyclePolicyNotFound { .. }
            | E::LifecyclePolicyPreviewNotFound { .. }
            | E::RegistryPolicyNotFound { .. }
            | E::InvalidParameter(_)
            | E::InvalidPolicy(_)
            | E::InvalidTagParameter(_)
            | E::TooManyTags(_) => (StatusCode::BAD_REQUEST, "UNSUPPORTED"),
            E::Store(_) | E::Io(_) | E::Corrupt(_) => {
                tracing::error!(error = %e, "registry storage error");
                (StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN")
            }
        };
        OciError::new(status, code, e.to_string())
    }
}

impl IntoResponse for OciError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"errors": [{"code": self.code, "message": self.message, "detail": null}]});
        let mut response = (self.status, body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.insert(name, v);
            }
        }
        response
    }
}

type OciResult = Result<Response, OciError>;

/// `/v2/...` parsed from the right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route<'a> {
    Base,
    Catalog,
    Tags(&'a str),
    Manifest(&'a str, &'a str),
    Blob(&'a str, &'a str),
    Uploads(&'a str),
    Upload(&'a str, &'a str),
    Referrers(&'a str, &'a str),
}

/// The ECR action a registry request needs, and the repository it acts on, as ECR
/// authorizes Docker's calls: pulls need BatchGetImage / GetDownloadUrlForLayer /
/// BatchCheckLayerAvailability, pushes InitiateLayerUpload / UploadLayerPart /
/// CompleteLayerUpload / PutImage. `None`: the token alone suffices (`/v2/`).
fn registry_action<'a>(
    route: &Route<'a>,
    method: &Method,
) -> Option<(&'static str, Option<&'a str>)> {
    let head_or_get = *method == Method::GET || *method == Method::HEAD;
    Some(match route {
        Route::Base => return None,
        Route::Catalog => ("ecr:DescribeRepositories", None),
        Route::Tags(name) => ("ecr:ListImages", Some(*name)),
        Route::Manifest(name, _) if head_or_get => ("ecr:BatchGetImage", Some(*name)),
        Route::Manifest(name, _) if *method == Method::DELETE => {
            ("ecr:BatchDeleteImage", Some(*name))
        }
        Route::Manifest(name, _) => ("ecr:PutImage", Some(*name)),
        Route::Blob(name, _) if *method == Method::HEAD => {
            ("ecr:BatchCheckLayerAvailability", Some(*name))
        }
        Route::Blob(name, _) if *method == Method::GET => {
            ("ecr:GetDownloadUrlForLayer", Some(*name))
        }
        Route::Blob(name, _) => ("ecr:BatchDeleteImage", Some(*name)),
        Route::Uploads(name) => ("ecr:InitiateLayerUpload", Some(*name)),
        Route::Upload(name, _) if *method == Method::PUT => {
            ("ecr:CompleteLayerUpload", Some(*name))
        }
        Route::Upload(name, _) => ("ecr:UploadLayerPart", Some(*name)),
        Route::Referrers(name, _) => ("ecr:BatchGetImage", Some(*name)),
    })
}

impl<'a> Route<'a> {
    /// The repository a route names, if any.
    fn name(&self) -> Option<&'a str> {
        match *self {
            Route::Base | Route::Catalog => None,
            Route::Tags(n)
            | Route::Manifest(n, _)
            | Route::Blob(n, _)
            | Route::Uploads(n)
            | Route::Upload(n, _)
            | Route::Referrers(n, _) => Some(n),
        }
    }

    /// The same route on repository `name`.
    fn with_name(self, name: &'a str) -> Route<'a> {
        match self {
            Route::Base | Route::Catalog => self,
            Route::Tags(_) => Route::Tags(name),
            Route::Manifest(_, r) => Route::Manifest(name, r),
            Route::Blob(_, d) => Route::Blob(name, d),
            Route::Uploads(_) => Route::Uploads(name),
            Route::Upload(_, id) => Route::Upload(name, id),
            Route::Referrers(_, d) => Route::Referrers(name, d),
        }
    }

    /// `ACCOUNT/NAME` split into the account id (12 digits) and the route on `NAME`, when
    /// the repository's first component has an account id's shape.
    fn account_prefix(&self) -> Option<(&'a str, Route<'a>)> {
        let (first, rest) = self.name()?.split_once('/')?;
        berth_iam::is_account_id(first).then(|| (first, self.with_name(rest)))
    }
}

fn parse_route(path: &str) -> Option<Route<'_>> {
    let rest = path.strip_prefix("/v2")?;
    if rest.is_empty() || rest == "/" {
        return Some(Route::Base);
    }
    let rest = rest.strip_prefix('/')?;
    if rest == "_catalog" {
        return Some(Route::Catalog);
    }
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return Some(Route::Tags(name));
    }
    if let Some(name) = rest
        .strip_suffix("/blobs/uploads/")
        .or_else(|| rest.strip_suffix("/blobs/uploads"))
    {
        return Some(Route::Uploads(name));
    }
    let (head, last) = rest.rsplit_once('/')?;
    let (name, kind) = head.rsplit_once('/')?;
    match kind {
        "manifests" => Some(Route::Manifest(name, last)),
        "blobs" => Some(Route::Blob(name, last)),
        "referrers" => Some(Route::Referrers(name, last)),
        "uploads" => name.strip_suffix("/blobs").map(|n| Route::Upload(n, last)),
        _ => None,
    }
}

fn range_header(size: u64) -> String {
    format!("0-{}", size.saturating_sub(1))
}

fn query_param<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Decode `%XX` escapes and `+` of a query value, on bytes (a value may hold any byte).
fn percent_decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                if let (Some(hi), Some(lo)) = (
                    bytes.get(i + 1).copied().and_then(hex),
                    bytes.get(i + 2).copied().and_then(hex),
                ) {
                    out.push(hi << 4 | lo);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_name(name: &str) -> Result<RepositoryName, OciError> {
    name.parse().map_err(|_| OciError::name_invalid(name))
}

fn parse_digest(d: &str) -> Result<Digest, OciError> {
    d.parse().map_err(|_| OciError::digest_invalid(d))
}

fn response(status: StatusCode, headers: &[(&str, String)], body: Body) -> Response {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    for (name, value) in headers {
        if let (Ok(n), Ok(v)) = (
            header::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            r.headers_mut().insert(n, v);
        }
    }
    r
}

/// The handler for everything under `/v2`.
pub async fn handle(State(app): State<Arc<AppState>>, request: Request) -> Response {
    let mut response = match handle_inner(&app, request).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    response.headers_mut().insert(
        "docker-distribution-api-version",
        HeaderValue::from_static("registry/2.0"),
    );
    response
}

async fn handle_inner(app: &Arc<AppState>, request: Request) -> OciResult {
    let (parts, body) = request.into_parts();
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok());
    let realm = format!("{}/", app.endpoint(host));
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let route = parse_route(parts.uri.path()).ok_or_else(|| {
        OciError::new(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            "unknown registry route",
        )
    })?;
    let basic = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok());
    let query = parts.uri.query();
    let grant = match (basic, query_param(query, TOKEN_QUERY), &route) {
        (None, Some(token), Route::Blob(name, digest)) if parts.method == Method::GET => app
            .tokens
            .check_download(&percent_decode(token), &format!("{name}@{digest}"), now),
        _ => app.tokens.check_basic(basic, now),
    }
    .map_err(|e| OciError::unauthorized(e, &realm))?;
    // Whose registry: the token's account's, or another account's of the installation when
    // the repository's first component is its id (`HOST:PORT/ACCOUNT/NAME`, the
    // repositoryUri of other accounts' repositories; also accepted for the default one).
    let (account, prefixed, route) = match route.account_prefix() {
        Some((id, rest)) if id != grant.account.as_str() => {
            let known = {
                let (app, id) = (app.clone(), id.to_string());
                crate::protocol::json::blocking(move || Ok(app.is_account(&id)))
                    .await
                    .map_err(|e| {
                        OciError::new(StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", e.message)
                    })?
            };
            match id.parse::<berth_model::AccountId>() {
                Ok(account) if known => (account, Some(id), rest),
                _ => (grant.account.clone(), None, route),
            }
        }
        Some((id, rest)) => (grant.account.clone(), Some(id), rest),
        None => (grant.account.clone(), None, route),
    };
    let own_account = account == grant.account;
    let principal = grant.principal.clone().or_else(|| {
        // The account's root: unrestricted in its own registry only.
        (!own_account).then(|| berth_iam::Principal::Root {
            account: grant.account.to_string(),
        })
    });
    if let Some(principal) = principal
        && let Some((action, repository)) = registry_action(&route, &parts.method)
    {
        let repository: Option<String> = repository.map(|name| name.to_string());
        let resource = match &repository {
            Some(name) => format!("arn:aws:ecr:{}:{}:repository/{name}", grant.region, account),
            None => "*".to_string(),
        };
        let context = crate::authz::RequestContext {
            region: grant.region.to_string(),
            source_ip: parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip().to_string()),
            ..Default::default()
        };
        let app = app.clone();
        let scope = Scope::new(account.clone(), grant.region.clone());
        crate::protocol::json::blocking(move || {
            let resources = [resource];
            let policy = crate::authz::repository_policy(&app.registry, &scope, &resources)?;
            // ecr:ResourceTag/… and aws:ResourceTag/…: the repository's tags.
            let tags = || {
                let tags = crate::front::resource_tags(&app, "ecr", &resources[0]);
                crate::authz::resource_tag_keys("ecr", &tags)
            };
            crate::authz::authorize_on(
                &app.iam,
                &principal,
                action,
                &resources,
                &context,
                crate::authz::Refusal::Json,
                crate::authz::OnResource {
                    policy: Some(&policy),
                    tags: Some(&tags),
                },
            )
        })
        .await
        .map_err(|e| OciError::new(StatusCode::FORBIDDEN, "DENIED", e.message))?;
    }
    let scope = Scope::new(account, grant.region);
    let answer = serve(app, route, &parts, body, &scope).await;
    // Locations and links the client follows keep the account the client named.
    match (answer, prefixed) {
        (Ok(mut response), Some(id)) => {
            for name in [header::LOCATION, header::LINK] {
                let value = response.headers().get(&name).and_then(|v| v.to_str().ok());
                let fixed = value.and_then(|v| {
                    let (head, rest) = v.split_once("/v2/")?;
                    HeaderValue::from_str(&format!("{head}/v2/{id}/{rest}")).ok()
                });
                if let Some(fixed) = fixed {
                    response.headers_mut().insert(name, fixed);
                }
            }
            Ok(response)
        }
        (answer, _) => answer,
    }
}

/// Serves a request already authenticated and authorized, in `scope`'s registry.
async fn serve(
    app: &Arc<AppState>,
    route: Route<'_>,
    parts: &axum::http::request::Parts,
    body: Body,
    scope: &Scope,
) -> OciResult {
    let query = parts.uri.query();
    let method = parts.method.clone();
    let headers = &parts.headers;
    let registry = &app.registry;
    match (route, method) {
        (Route::Base, Method::GET | Method::HEAD) => Ok(response(
            StatusCode::OK,
            &[("content-type", "application/json".into())],
            Body::from("{}"),
        )),
        (Route::Catalog, Method::GET) => {
            let (n, last) = pagination(query)?;
            let (names, more) = registry.catalog(scope, n, last.as_deref())?;
            let mut h = vec![("content-type", "application/json".to_string())];
            if more && let Some(l) = names.last() {
                h.push((
                    "link",
                    format!("</v2/_catalog?n={}&last={l}>; rel=\"next\"", n.unwrap_or(0)),
                ));
            }
            let body = serde_json::json!({ "repositories": names });
            Ok(response(StatusCode::OK, &h, Body::from(body.to_string())))
        }
        (Route::Tags(name), Method::GET) => {
            let repo = parse_name(name)?;
            let (n, last) = pagination(query)?;
            let (tags, more) = registry.list_tags(scope, &repo, n, last.as_deref())?;
            let mut h = vec![("content-type", "application/json".to_string())];
            if more && let Some(l) = tags.last() {
                h.push((
                    "link",
                    format!(
                        "</v2/{repo}/tags/list?n={}&last={l}>; rel=\"next\"",
                        n.unwrap_or(0)
                    ),
                ));
            }
            let body = serde_json::json!({ "name": repo, "tags": tags });
            Ok(response(StatusCode::OK, &h, Body::from(body.to_string())))
        }
        (Route::Manifest(name, reference), method) => {
            let repo = parse_name(name)?;
            let reference: Reference = reference.parse().map_err(|_| {
                if reference.contains(':') {
                    OciError::digest_invalid(reference)
                } else {
                    OciError::new(
                        StatusCode::BAD_REQUEST,
                        "TAG_INVALID",
                        format!("invalid tag '{reference}'"),
                    )
                }
            })?;
            manifest(app, scope, &repo, reference, method, headers, body).await
        }
        (Route::Blob(name, digest), method) => {
            let repo = parse_name(name)?;
            let digest = parse_digest(digest)?;
            blob(app, scope, &repo, &digest, method, headers).await
        }
        (Route::Uploads(name), Method::POST) => {
            let repo = parse_name(name)?;
            start_upload(app, scope, &repo, query, body).await
        }
        (Route::Upload(name, id), method) => {
            let repo = parse_name(name)?;
            upload(app, scope, &repo, id, query, method, headers, body).await
        }
        (Route::Referrers(name, digest), Method::GET) => {
            let repo = parse_name(name)?;
            let digest = parse_digest(digest)?;
            let artifact_type = query_param(query, "artifactType").map(percent_decode);
            let manifests = registry.referrers(scope, &repo, &digest, artifact_type.as_deref())?;
            let body = serde_json::json!({
                "schemaVersion": 2,
                "mediaType": media_types::OCI_INDEX,
                "manifests": manifests,
            });
            let mut h = vec![("content-type", media_types::OCI_INDEX.to_string())];
            if artifact_type.is_some() {
                h.push(("oci-filters-applied", "artifactType".into()));
            }
            Ok(response(StatusCode::OK, &h, Body::from(body.to_string())))
        }
        (_, _) => Err(OciError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            "the operation is unsupported",
        )),
    }
}

/// Largest page of tags or repositories, as distribution caps it.
const MAX_PAGE: usize = 1000;

fn pagination(query: Option<&str>) -> Result<(Option<usize>, Option<String>), OciError> {
    let n = match query_param(query, "n") {
        Some(n) => Some(
            n.parse::<usize>()
                .ok()
                .filter(|n| *n <= MAX_PAGE)
                .ok_or_else(|| {
                    OciError::new(
                        StatusCode::BAD_REQUEST,
                        "PAGINATION_NUMBER_INVALID",
                        format!("n must be a number from 0 to {MAX_PAGE}"),
                    )
                })?,
        ),
        None => None,
    };
    Ok((n, query_param(query, "last").map(percent_decode)))
}

fn manifest_headers(digest: &Digest, media_type: &str, size: u64) -> [(&'static str, String); 4] {
    [
        ("content-type", media_type.to_string()),
        ("docker-content-digest", digest.to_string()),
        ("etag", format!("\"{digest}\"")),
        ("content-length", size.to_string()),
    ]
}

async fn manifest(
    app: &AppState,
    scope: &Scope,
    repo: &RepositoryName,
    reference: Reference,
    method: Method,
    headers: &HeaderMap,
    body: Body,
) -> OciResult {
    let registry = &app.registry;
    match method {
        Method::HEAD => {
            let record = registry.resolve(scope, repo, &reference)?;
            let h = manifest_headers(&record.digest, &record.media_type, record.manifest_size);
            Ok(response(StatusCode::OK, &h, Body::empty()))
        }
        Method::GET => {
            // One read: the headers describe exactly the bytes sent, even if the tag moves.
            let content = registry.get_manifest(scope, repo, &reference).await?;
            let h = manifest_headers(
                &content.digest,
                &content.media_type,
                content.bytes.len() as u64,
            );
            Ok(response(StatusCode::OK, &h, Body::from(content.bytes)))
        }
        Method::PUT => {
            let limit = berth_registry::MAX_MANIFEST_SIZE;
            let bytes = axum::body::to_bytes(body, limit)
                .await
                .map_err(|_| OciError::from(RegistryError::ManifestTooLarge { limit }))?;
            let content_type = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok());
            let (tag, expected): (Option<ImageTag>, Option<Digest>) = match reference {
                Reference::Tag(t) => (Some(t), None),
                Reference::Digest(d) => (None, Some(d)),
            };
            let outcome = registry
                .put_manifest(
                    scope,
                    repo,
                    tag.as_ref(),
                    expected.as_ref(),
                    content_type,
                    bytes.to_vec(),
                )
                .await?;
            let mut h = vec![
                (
                    "location",
                    format!("/v2/{repo}/manifests/{}", outcome.digest),
                ),
                ("docker-content-digest", outcome.digest.to_string()),
            ];
            if let Some(subject) = outcome.subject {
                h.push(("oci-subject", subject.to_string()));
            }
            Ok(response(StatusCode::CREATED, &h, Body::empty()))
        }
        Method::DELETE => {
            match reference {
                Reference::Digest(d) => registry.delete_manifest(scope, repo, &d)?,
                Reference::Tag(t) => {
                    registry.delete_tag(scope, repo, &t, false)?;
                }
            }
            Ok(response(StatusCode::ACCEPTED, &[], Body::empty()))
        }
        _ => Err(OciError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            "the operation is unsupported",
        )),
    }
}

/// `Range: bytes=a-b` / `bytes=a-` / `bytes=-n` against a blob of `size` bytes.
fn parse_range(value: &str, size: u64) -> Option<(u64, u64)> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().ok()?;
            (size.checked_sub(n.min(size))?, size.checked_sub(1)?)
        }
        (a, "") => (a.parse().ok()?, size.checked_sub(1)?),
        (a, b) => (
            a.parse().ok()?,
            b.parse::<u64>().ok()?.min(size.checked_sub(1)?),
        ),
    };
    (start <= end && end < size).then_some((start, end))
}

async fn blob(
    app: &AppState,
    scope: &Scope,
    repo: &RepositoryName,
    digest: &Digest,
    method: Method,
    headers: &HeaderMap,
) -> OciResult {
    let registry = &app.registry;
    match method {
        Method::HEAD => {
            let size = registry.blob_size(scope, repo, digest)?;
            Ok(response(
                StatusCode::OK,
                &[
                    ("content-length", size.to_string()),
                    ("docker-content-digest", digest.to_string()),
                    ("content-type", "application/octet-stream".into()),
                    ("accept-ranges", "bytes".into()),
                ],
                Body::empty(),
            ))
        }
        Method::GET => {
            let requested = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
            let mut unsatisfiable = false;
            let berth_registry::BlobRead {
                size,
                range,
                stream,
            } = registry.read_blob(scope, repo, digest, |size| {
                let range = requested.and_then(|r| parse_range(r, size));
                unsatisfiable = requested.is_some() && range.is_none();
                range
            })?;
            if unsatisfiable {
                return Ok(response(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    &[("content-range", format!("bytes */{size}"))],
                    Body::empty(),
                ));
            }
            let mut h = vec![
                ("docker-content-digest", digest.to_string()),
                ("content-type", "application/octet-stream".to_string()),
                ("accept-ranges", "bytes".to_string()),
                ("etag", format!("\"{digest}\"")),
            ];
            let (status, len) = match range {
                Some((start, end)) => {
                    h.push(("content-range", format!("bytes {start}-{end}/{size}")));
                    (StatusCode::PARTIAL_CONTENT, end - start + 1)
                }
                None => (StatusCode::OK, size),
            };
            h.push(("content-length", len.to_string()));
            Ok(response(status, &h, Body::from_stream(stream)))
        }
        // ECR has no blob delete: layers go with the images that use them (BatchDeleteImage,
        // then garbage collection). Unlinking a layer here could break images.
        _ => Err(OciError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            "the operation is unsupported",
        )),
    }
}

fn upload_headers(repo: &RepositoryName, id: &str, size: u64) -> Vec<(&'static str, String)> {
    vec![
        ("location", format!("/v2/{repo}/blobs/uploads/{id}")),
        ("range", range_header(size)),
        ("docker-upload-uuid", id.to_string()),
        ("content-length", "0".into()),
    ]
}

fn blob_created(repo: &RepositoryName, digest: &Digest) -> Response {
    response(
        StatusCode::CREATED,
        &[
            ("location", format!("/v2/{repo}/blobs/{digest}")),
            ("docker-content-digest", digest.to_string()),
            ("content-length", "0".into()),
        ],
        Body::empty(),
    )
}

async fn start_upload(
    app: &AppState,
    scope: &Scope,
    repo: &RepositoryName,
    query: Option<&str>,
    body: Body,
) -> OciResult {
    let registry = &app.registry;
    if let Some(mount) = query_param(query, "mount") {
        let digest = parse_digest(&percent_decode(mount))?;
        if let Some(from) = query_param(query, "from") {
            let from = percent_decode(from);
            if let Ok(from) = from.parse::<RepositoryName>()
                && registry.mount_blob(scope, repo, &from, &digest)?.is_some()
            {
                return Ok(blob_created(repo, &digest));
            }
        } else if registry
            .mount_blob_from_scope(scope, repo, &digest)?
            .is_some()
        {
            // OCI 1.1: without `from`, the registry may mount a blob it can find itself.
            return Ok(blob_created(repo, &digest));
        }
        // Mount not possible: fall through to a normal upload session, as the spec says.
    }
    let id = registry.start_upload(scope, repo)?;
    if let Some(digest) = query_param(query, "digest") {
        // Monolithic upload in a single POST.
        let digest = parse_digest(&percent_decode(digest))?;
        let completed = registry
            .complete_upload(scope, repo, &id, &digest, None, body.into_data_stream())
            .await;
        if let Err(e) = completed {
            // A single-request upload has no session for the client to resume.
            let _ = registry.cancel_upload(scope, repo, &id).await;
            return Err(e.into());
        }
        return Ok(blob_created(repo, &digest));
    }
    Ok(response(
        StatusCode::ACCEPTED,
        &upload_headers(repo, &id, 0),
        Body::empty(),
    ))
}

/// `Content-Range: a-b` (the spec's form), also accepting `bytes a-b/total` and `bytes=a-b`.
/// Returns the start; when the request also has a Content-Length, the range must span
/// exactly that many bytes.
fn content_range_start(headers: &HeaderMap) -> Result<Option<u64>, OciError> {
    let Some(value) = headers.get(header::CONTENT_RANGE) else {
        return Ok(None);
    };
    let invalid = || {
        OciError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "BLOB_UPLOAD_INVALID",
            "invalid Content-Range",
        )
    };
    let v = value.to_str().map_err(|_| invalid())?.trim();
    let v = v
        .strip_prefix("bytes=")
        .or_else(|| v.strip_prefix("bytes "))
        .unwrap_or(v);
    let v = v.split('/').next().unwrap_or(v);
    let (a, b) = v.split_once('-').ok_or_else(invalid)?;
    let start: u64 = a.trim().parse().map_err(|_| invalid())?;
    let end: u64 = b.trim().parse().map_err(|_| invalid())?;
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if end < start || length.is_some_and(|n| n != end - start + 1) {
        return Err(invalid());
    }
    Ok(Some(start))
}

#[allow(clippy::too_many_arguments)]
async fn upload(
    app: &AppState,
    scope: &Scope,
    repo: &RepositoryName,
    id: &str,
    query: Option<&str>,
    method: Method,
    headers: &HeaderMap,
    body: Body,
) -> OciResult {
    let registry = &app.registry;
    match method {
        Method::GET => {
            let status = registry.upload_status(scope, repo, id).await?;
            Ok(response(
                StatusCode::NO_CONTENT,
                &upload_headers(repo, id, status.size),
                Body::empty(),
            ))
        }
        Method::PATCH => {
            let offset = content_range_start(headers)?;
            let status = registry
                .append_upload(scope, repo, id, offset, body.into_data_stream())
                .await?;
            Ok(response(
                StatusCode::ACCEPTED,
                &upload_headers(repo, id, status.size),
                Body::empty(),
            ))
        }
        Method::PUT => {
            let digest = query_param(query, "digest").ok_or_else(|| {
                OciError::new(
                    StatusCode::BAD_REQUEST,
                    "DIGEST_INVALID",
                    "digest parameter missing",
                )
            })?;
            let digest = parse_digest(&percent_decode(digest))?;
            let offset = content_range_start(headers)?;
            registry
                .complete_upload(scope, repo, id, &digest, offset, body.into_data_stream())
                .await?;
            Ok(blob_created(repo, &digest))
        }
        Method::DELETE => {
            registry.cancel_upload(scope, repo, id).await?;
            Ok(response(StatusCode::NO_CONTENT, &[], Body::empty()))
        }
        _ => Err(OciError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            "the operation is unsupported",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_parse_from_the_right() {
        assert_eq!(parse_route("/v2/"), Some(Route::Base));
        assert_eq!(parse_route("/v2"), Some(Route::Base));
        assert_eq!(parse_route("/v2/_catalog"), Some(Route::Catalog));
        assert_eq!(parse_route("/v2/a/b/tags/list"), Some(Route::Tags("a/b")));
        assert_eq!(
            parse_route("/v2/a/manifests/b/manifests/latest"),
            Some(Route::Manifest("a/manifests/b", "latest"))
        );
        assert_eq!(
            parse_route("/v2/a/blobs/sha256:x"),
            Some(Route::Blob("a", "sha256:x"))
        );
        assert_eq!(
            parse_route("/v2/a/b/blobs/uploads/"),
            Some(Route::Uploads("a/b"))
        );
        assert_eq!(
            parse_route("/v2/a/blobs/uploads/123"),
            Some(Route::Upload("a", "123"))
        );
        assert_eq!(
            parse_route("/v2/a/referrers/sha256:x"),
            Some(Route::Referrers("a", "sha256:x"))
        );
        assert_eq!(parse_route("/v2/a/unknown/x"), None);
        assert_eq!(parse_route("/v3/a"), None);
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-3", 10), Some((0, 3)));
        assert_eq!(parse_range("bytes=5-", 10), Some((5, 9)));
        assert_eq!(parse_range("bytes=-3", 10), Some((7, 9)));
        assert_eq!(parse_range("bytes=8-100", 10), Some((8, 9)));
        assert_eq!(parse_range("bytes=10-11", 10), None);
        assert_eq!(parse_range("bytes=3-1", 10), None);
        assert_eq!(parse_range("items=0-1", 10), None);
    }

    #[test]
    fn query_values_decode_on_bytes() {
        assert_eq!(percent_decode("sha256%3Aab"), "sha256:ab");
        assert_eq!(percent_decode("a+b%2"), "a b%2");
        // A multi-byte character right after `%` must not panic.
        assert_eq!(percent_decode("%aé"), "%aé");
        assert_eq!(percent_decode("%"), "%");
    }
}
