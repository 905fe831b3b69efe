//! The front door of the AWS APIs on Berth's port: a request's body is read under a size
//! limit, it is authenticated (SigV4), and handed by its `X-Amz-Target` to its service's
//! dispatcher with the caller's scope (account, region).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use berth_registry::Scope;

use crate::protocol::json::{MAX_AWS_BODY, json_response};
use crate::protocol::signature::{Authenticated, authenticate, scope_service};
use crate::protocol::{AwsContext, AwsError};
use crate::protocol::{query, rpcv2cbor};
use crate::{
    AppState, accounts, application_autoscaling, authz, autoscaling, cloudwatch, ec2, ecr, ecs,
    elbv2, forward, iam, logs, logs_tail, secretsmanager, ssm, sts,
};

/// The handler for every AWS API request: JSON (by `X-Amz-Target`), RPC v2 CBOR (by its
/// `smithy-protocol` header and path) or Query (a form).
pub async fn handle(State(app): State<Arc<AppState>>, request: Request) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let wire = wire_of(&request);
    match handle_inner(app, request, wire, &request_id).await {
        Ok(Reply::Json(body)) => json_response(StatusCode::OK, &request_id, body),
        Ok(Reply::Stream(response)) => response,
        Err(e) => match wire {
            Wire::Json => e.into_response_with(&request_id),
            Wire::Query(namespace) => query::error_response(namespace, &e, &request_id),
            // CloudWatch is the one service speaking it, compatible with its Query form.
            Wire::Cbor => {
                rpcv2cbor::error_response(&e, &request_id, &cloudwatch::error_type(&e.code), true)
            }
            Wire::CloudWatchJson => cloudwatch::json_error(&e, &request_id),
        },
    }
}

/// JSON when the request names its operation in `X-Amz-Target`, else Query when it is a
/// form (or a GET naming its `Action`).
fn wire_of(request: &Request) -> Wire {
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
    if rpcv2cbor::is_rpcv2cbor(request.headers()) {
        return Wire::Cbor;
    }
    if header("x-amz-target")
        .and_then(|t| t.split_once('.'))
        .is_some_and(|(prefix, _)| prefix == cloudwatch::TARGET_PREFIX)
    {
        return Wire::CloudWatchJson;
    }
    if header("x-amz-target").is_none()
        && query::is_query(
            request.method().as_str(),
            header("content-type"),
            request.uri().query(),
        )
    {
        let service = scope_service(request.headers(), request.uri());
        Wire::Query(query_namespace(service.as_deref()))
    } else {
        Wire::Json
    }
}

/// The protocol a request speaks, and so its answers and errors.
#[derive(Debug, Clone, Copy)]
enum Wire {
    Json,
    Query(query::Namespace),
    Cbor,
    /// CloudWatch's AWS JSON 1.0 form (what botocore prefers), answered with its Query
    /// codes in `x-amzn-query-error`.
    CloudWatchJson,
}

/// The XML namespace of a Query service's answers.
fn query_namespace(service: Option<&str>) -> query::Namespace {
    match service {
        Some("iam") => query::Namespace("https://iam.amazonaws.com/doc/2010-05-08/"),
        Some(elbv2::SERVICE) => elbv2::NAMESPACE,
        Some(autoscaling::SERVICE) => autoscaling::NAMESPACE,
        Some(cloudwatch::SERVICE) => cloudwatch::NAMESPACE,
        Some("ec2") => query::EC2,
        _ => sts::NAMESPACE,
    }
}

/// A successful answer: a JSON body, or a response made whole (a stream, an XML answer).
enum Reply {
    Json(Vec<u8>),
    Stream(Response),
}

async fn handle_inner(
    app: Arc<AppState>,
    request: Request,
    wire: Wire,
    request_id: &str,
) -> Result<Reply, AwsError> {
    let (parts, body) = request.into_parts();
    let too_large = || {
        AwsError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLargeException",
            format!("Request body must be at most {MAX_AWS_BODY} bytes"),
        )
    };
    if parts
        .headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n > MAX_AWS_BODY)
    {
        return Err(too_large());
    }
    // Nothing unauthenticated gets its body buffered: a request without any signature is
    // refused before its body is read (the signature itself needs the body's hash).
    let signed = parts.headers.contains_key("authorization")
        || parts
            .uri
            .query()
            .is_some_and(|q| q.split('&').any(|kv| kv.starts_with("X-Amz-Algorithm=")));
    if !signed {
        let e = berth_sigv4::SigV4Error::MissingAuthenticationToken;
        return Err(AwsError::new(
            StatusCode::from_u16(e.status()).unwrap_or(StatusCode::FORBIDDEN),
            match wire {
                Wire::Json => e.aws_code(),
                Wire::Query(_) | Wire::Cbor | Wire::CloudWatchJson => e.query_code(),
            },
            e.message(),
        ));
    }
    let body = axum::body::to_bytes(body, MAX_AWS_BODY)
        .await
        .map_err(|_| too_large())?;
    let Authenticated {
        verified,
        principal,
        temporary,
    } = authenticate(
        &app,
        parts.method.as_str(),
        &parts.uri,
        &parts.headers,
        &body,
        matches!(wire, Wire::Query(_) | Wire::Cbor | Wire::CloudWatchJson),
    )?;
    record_key_use(&app, &principal, temporary, &verified).await;
    let region = verified.region.parse().map_err(|_| {
        AwsError::client(
            "InvalidSignatureException",
            format!(
                "Credential should be scoped to a valid region, not '{}'.",
                verified.region
            ),
        )
    })?;
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // A request acts in its signer's account: the default account's root and IAM
    // identities in the default account, another account's in that one.
    let own_account: berth_model::AccountId = principal
        .account()
        .parse()
        .map_err(|_| AwsError::server("the caller's account id is not valid"))?;
    if matches!(wire, Wire::Cbor | Wire::CloudWatchJson) {
        let scope = Scope::new(own_account, region);
        let caller = (principal, temporary);
        let cbor = matches!(wire, Wire::Cbor);
        let request = CloudWatchRequest {
            parts: &parts,
            body: &body,
            cbor,
            target,
        };
        return serve_cloudwatch(app, request, caller, &verified, scope, request_id).await;
    }
    if let Wire::Query(namespace) = wire {
        // A presigned URL signs its query, not a body (UNSIGNED-PAYLOAD): a body sent with
        // one must not add or override parameters.
        let form: &[u8] = if verified.presigned { b"" } else { &body };
        let request = query::QueryRequest::parse(parts.uri.query(), form)?;
        let mut context = request_context(&app, &parts, &verified.region);
        let asked = authz::query_request_tags(&request);
        context.service_keys = authz::request_tag_keys(&asked);
        if verified.service == cloudwatch::SERVICE
            && request.action == "PutMetricData"
            && let Some(namespace) = request.get("Namespace")
        {
            context
                .service_keys
                .push(("cloudwatch:namespace".to_string(), namespace.to_string()));
        }
        if !matches!(principal, berth_iam::Principal::Root { .. }) {
            // The resources (IAM entities' ARNs are read from the store) and the decision
            // in one trip to the blocking pool; the root account needs neither.
            let prefix = match verified.service.as_str() {
                cloudwatch::SERVICE => cloudwatch::IAM_PREFIX,
                other => other,
            };
            let action = format!("{prefix}:{}", request.action);
            let (app, request, who, context) = (
                app.clone(),
                request.clone(),
                principal.clone(),
                context.clone(),
            );
            let account = own_account.to_string();
            let (service, region) = (verified.service.clone(), verified.region.clone());
            crate::protocol::json::blocking(move || {
                let iam = &app.iam;
                let lookup = |kind: &str, name: &str| match kind {
                    "user" => iam.get_user(&account, name).ok().map(|u| u.arn),
                    "group" => iam.get_group(&account, name).ok().map(|g| g.arn),
                    "instance-profile" => iam
                        .get_instance_profile(&account, name)
                        .ok()
                        .map(|(p, _)| p.arn),
                    "server-certificate" => iam
                        .get_server_certificate(&account, name)
                        .ok()
                        .map(|c| c.arn),
                    "access-key" => {
                        let key = iam.access_key(name).ok().flatten()?;
                        iam.get_user(&key.account, &key.user_name)
                            .ok()
                            .map(|u| u.arn)
                    }
                    _ => iam.get_role(&account, name).ok().map(|r| r.arn),
                };
                let resources = match service.as_str() {
                    elbv2::SERVICE => authz::elbv2_resources(&request, &region, &account),
                    "ec2" => authz::ec2_resources(&request, &region, &account),
                    autoscaling::SERVICE => {
                        authz::autoscaling_resources(&request, &region, &account)
                    }
                    cloudwatch::SERVICE => cloudwatch::resources(
                        &request.action,
                        &request.document(),
                        &region,
                        &account,
                    ),
                    _ => authz::query_resources(&request, &account, &who, lookup),
                };
                authz::authorize(
                    iam,
                    &who,
                    &action,
                    &resources,
                    &context,
                    authz::Refusal::Query,
                )
            })
            .await
            .map_err(|e| ec2_refusal(&verified.service, e))?;
        }
        let ctx = AwsContext {
            endpoint: app.endpoint(parts.headers.get("host").and_then(|h| h.to_str().ok())),
            scope: Scope::new(own_account, region),
            app: app.clone(),
            principal,
            temporary,
            keys: context,
        };
        let result = match verified.service.as_str() {
            "sts" => sts::dispatch(&ctx, &request).await?,
            "iam" => iam::dispatch(&ctx, &request).await?,
            elbv2::SERVICE => elbv2::dispatch(&ctx, &request).await?,
            "ec2" => ec2::dispatch(&ctx, &request).await?,
            autoscaling::SERVICE => autoscaling::dispatch(&ctx, &request).await?,
            cloudwatch::SERVICE => cloudwatch::serve_query(&ctx, &request).await?,
            service => {
                return Err(AwsError::client(
                    "InvalidAction",
                    format!(
                        "The action {} is not valid for this web service ({service}).",
                        request.action
                    ),
                ));
            }
        };
        return Ok(Reply::Stream(query::response(
            namespace,
            &request.action,
            request_id,
            result,
        )));
    }
    let mut scope = Scope::new(own_account, region);
    if let Some((prefix, operation)) = target.split_once('.') {
        let service = match prefix {
            ecr::TARGET_PREFIX => "ecr",
            ecs::TARGET_PREFIX => "ecs",
            logs::TARGET_PREFIX => "logs",
            ssm::TARGET_PREFIX => "ssm",
            secretsmanager::TARGET_PREFIX => secretsmanager::SERVICE,
            application_autoscaling::TARGET_PREFIX => application_autoscaling::SERVICE,
            accounts::TARGET_PREFIX => accounts::SERVICE,
            _ => "",
        };
        // The signature must be for the service the target names: a request (or presigned
        // URL) signed for one service is not good for another's operations.
        if !service.is_empty() && verified.service != service {
            return Err(AwsError::new(
                StatusCode::FORBIDDEN,
                "InvalidSignatureException",
                format!("Credential should be scoped to correct service: '{service}'. "),
            ));
        }
        if service == accounts::SERVICE {
            accounts::check_caller(&app, &principal)?;
        } else if !service.is_empty() {
            // ECR's `registryId` naming another account of the installation: the request
            // acts on that account's registry, as its repository policies allow.
            // GetAuthorizationToken has no such field (its token serves every registry).
            let registry = match service {
                "ecr" if operation != "GetAuthorizationToken" => registry_id(&body),
                // A secret ARN of another account of the installation.
                secretsmanager::SERVICE => secretsmanager::secret_account(&body),
                _ => None,
            }
            .filter(|id| id != scope.account.as_str());
            if let Some(id) = registry {
                let known = {
                    let (app, id) = (app.clone(), id.clone());
                    crate::protocol::json::blocking(move || Ok(app.is_account(&id))).await?
                };
                if known && let Ok(account) = id.parse() {
                    scope.account = account;
                }
            }
            let action = format!("{service}:{operation}");
            let resources = authz::resources(service, operation, &body, &scope);
            let mut context = request_context(&app, &parts, &verified.region);
            context.service_keys = authz::service_keys(service, operation, &body, &scope);
            let asked = authz::json_request_tags(service, &body);
            context.service_keys.extend(authz::request_tag_keys(&asked));
            check(
                &app,
                &principal,
                action,
                resources,
                context,
                authz::Refusal::Json,
                matches!(service, "ecr" | secretsmanager::SERVICE).then(|| scope.clone()),
            )
            .await?;
            // ECS's calls that name roles (an account's root passes any of its roles).
            if service == "ecs"
                && authz::PASSES_ROLES.contains(&operation)
                && !matches!(principal, berth_iam::Principal::Root { .. })
            {
                pass_roles(
                    &app, &principal, operation, &body, &scope, &parts, &verified,
                )
                .await?;
            }
        }
    }
    if let Some(answer) = forward_to_leader(&app, target, &parts, &body).await? {
        return Ok(Reply::Stream(answer));
    }
    let ctx = AwsContext {
        endpoint: app.endpoint(parts.headers.get("host").and_then(|h| h.to_str().ok())),
        scope,
        app: app.clone(),
        principal,
        temporary,
        keys: request_context(&app, &parts, &verified.region),
    };
    let json = match target.split_once('.') {
        Some((accounts::TARGET_PREFIX, operation)) => {
            accounts::dispatch(ctx, operation, &body).await
        }
        Some((ecr::TARGET_PREFIX, operation)) => ecr::dispatch(ctx, operation, &body).await,
        Some((ecs::TARGET_PREFIX, operation)) => ecs::dispatch(ctx, operation, &body).await,
        Some((logs::TARGET_PREFIX, "StartLiveTail")) => {
            return logs_tail::start_live_tail(&ctx, &body)
                .await
                .map(Reply::Stream);
        }
        Some((logs::TARGET_PREFIX, operation)) => logs::dispatch(ctx, operation, &body).await,
        Some((ssm::TARGET_PREFIX, operation)) => ssm::serve(ctx, operation, &body).await,
        Some((secretsmanager::TARGET_PREFIX, operation)) => {
            secretsmanager::dispatch(ctx, operation, &body).await
        }
        Some((application_autoscaling::TARGET_PREFIX, operation)) => {
            application_autoscaling::serve(ctx, operation, &body).await
        }
        _ => Err(AwsError::client(
            "UnknownOperationException",
            format!("The operation '{target}' is not known to this service"),
        )),
    };
    json.map(Reply::Json)
}

/// A CloudWatch request in RPC v2 CBOR or AWS JSON 1.0, as it came.
struct CloudWatchRequest<'a> {
    parts: &'a axum::http::request::Parts,
    body: &'a bytes::Bytes,
    cbor: bool,
    /// JSON 1.0's `X-Amz-Target`.
    target: &'a str,
}

/// A CloudWatch request in RPC v2 CBOR (the operation in the path) or AWS JSON 1.0 (in
/// `X-Amz-Target`): its body decoded into a `Document`, authorized as
/// `cloudwatch:{Operation}` (PutMetricData with its namespace as `cloudwatch:namespace`),
/// served, and answered in its protocol.
async fn serve_cloudwatch(
    app: Arc<AppState>,
    request: CloudWatchRequest<'_>,
    (principal, temporary): (berth_iam::Principal, bool),
    verified: &berth_sigv4::Verified,
    scope: Scope,
    request_id: &str,
) -> Result<Reply, AwsError> {
    let CloudWatchRequest {
        parts,
        body,
        cbor,
        target,
    } = request;
    let unknown =
        |what: String| AwsError::new(StatusCode::NOT_FOUND, "UnknownOperationException", what);
    let operation = if cbor {
        let Some((service, operation)) = rpcv2cbor::operation(parts.uri.path()) else {
            return Err(unknown(
                "The request's path names no service and operation.".to_string(),
            ));
        };
        if service != cloudwatch::TARGET_PREFIX {
            return Err(unknown(format!("The service '{service}' is not known.")));
        }
        operation
    } else {
        target.split_once('.').map_or("", |(_, op)| op)
    };
    if verified.service != cloudwatch::SERVICE {
        return Err(AwsError::new(
            StatusCode::FORBIDDEN,
            "SignatureDoesNotMatch",
            format!(
                "Credential should be scoped to correct service: '{}'. ",
                cloudwatch::SERVICE
            ),
        ));
    }
    let doc = if cbor {
        rpcv2cbor::decode(body, &parts.headers, MAX_AWS_BODY)?
    } else {
        cloudwatch::decode_json(body, &parts.headers)?
    };
    let mut context = request_context(&app, parts, &verified.region);
    if let Some(namespace) = cloudwatch::put_namespace(operation, &doc) {
        context
            .service_keys
            .push(("cloudwatch:namespace".to_string(), namespace));
    }
    check(
        &app,
        &principal,
        format!("{}:{operation}", cloudwatch::IAM_PREFIX),
        cloudwatch::resources(
            operation,
            &doc,
            scope.region.as_str(),
            scope.account.as_str(),
        ),
        context,
        authz::Refusal::Query,
        None,
    )
    .await?;
    let ctx = AwsContext {
        endpoint: app.endpoint(parts.headers.get("host").and_then(|h| h.to_str().ok())),
        scope,
        app: app.clone(),
        principal,
        temporary,
        keys: request_context(&app, parts, &verified.region),
    };
    let answer = cloudwatch::serve(&ctx, operation, &doc).await?;
    Ok(Reply::Stream(if cbor {
        rpcv2cbor::response(request_id, answer)
    } else {
        cloudwatch::json_response(request_id, answer)
    }))
}

/// EC2 words an authorization refusal its own way: `UnauthorizedOperation`.
fn ec2_refusal(service: &str, e: AwsError) -> AwsError {
    if service != "ec2" || e.code != "AccessDenied" {
        return e;
    }
    AwsError::new(
        StatusCode::FORBIDDEN,
        "UnauthorizedOperation",
        format!(
            "You are not authorized to perform this operation. {}",
            e.message
        ),
    )
}

/// RunTask on a replica that does not lead goes to the leader, whose placement lane for the
/// cluster is the only one (see `forward.rs`). `None`: serve it here.
async fn forward_to_leader(
    app: &AppState,
    target: &str,
    parts: &axum::http::request::Parts,
    body: &bytes::Bytes,
) -> Result<Option<Response>, AwsError> {
    let Some(route) = &app.leader else {
        return Ok(None);
    };
    if target.strip_prefix(ecs::TARGET_PREFIX) != Some(".RunTask")
        || parts.headers.contains_key(forward::FORWARDED_BY)
    {
        return Ok(None);
    }
    let Some(leader) = route.leader_elsewhere() else {
        return Ok(None);
    };
    let forwarded_for = client_ip(app, parts).map(|ip| {
        app.tokens
            .seal_forwarded_for(&ip, &forward::forwarding_binding(parts))
    });
    match route
        .forward(&leader, parts, body.clone(), forwarded_for)
        .await
    {
        Ok(answer) => Ok(Some(answer)),
        Err(e @ forward::ForwardError::Unreachable(..)) => {
            tracing::warn!(error = %e, "placing here instead of on the leader");
            Ok(None)
        }
        Err(e) => Err(AwsError::server(format!(
            "The request was passed to the leading replica, which did not answer; it may have been carried out ({e})."
        ))),
    }
}

/// `iam:PassRole` for every role an ECS request names for ECS to use (`authz::pass_role`):
/// the caller must be allowed to pass each one, to the service that will assume it.
async fn pass_roles(
    app: &Arc<AppState>,
    principal: &berth_iam::Principal,
    operation: &str,
    body: &bytes::Bytes,
    scope: &Scope,
    parts: &axum::http::request::Parts,
    verified: &berth_sigv4::Verified,
) -> Result<(), AwsError> {
    // Read on this async worker, as the RunTask handler that follows reads the same task
    // definition (`Ecs::queue_run_task` runs inline): a trip to the blocking pool here
    // cost RunTask a tenth of its throughput under enforcement (BENCHMARKS.md).
    let account = scope.account.to_string();
    let passed = authz::passed_roles(operation, body, &account, |td| {
        let stored = app.ecs.task_definition(scope, td).ok()?;
        Some(authz::TaskRoles {
            task_role: stored.task_definition.task_role_arn,
            execution_role: stored.task_definition.execution_role_arn,
        })
    });
    for (role, service) in passed {
        let mut context = request_context(app, parts, &verified.region);
        context.service_keys = vec![("iam:PassedToService".to_string(), service.to_string())];
        check(
            app,
            principal,
            "iam:PassRole".to_string(),
            vec![role],
            context,
            authz::Refusal::Json,
            None,
        )
        .await?;
    }
    Ok(())
}

/// Authorizes from memory on this async worker when IAM can (the caller's policies cached
/// and known current without a store read, no repository policy or tags to read), else on
/// the blocking pool; an account's root is allowed at once in its own account.
/// `repository`: the request acts on ECR repositories (or Secrets Manager secrets) of that
/// scope, whose policies take part (and whose account may be another than the caller's).
async fn check(
    app: &Arc<AppState>,
    principal: &berth_iam::Principal,
    action: String,
    resources: Vec<String>,
    context: authz::RequestContext,
    refusal: authz::Refusal,
    repository: Option<Scope>,
) -> Result<(), AwsError> {
    let own_account = repository
        .as_ref()
        .is_none_or(|s| s.account.as_str() == principal.account());
    if own_account && matches!(principal, berth_iam::Principal::Root { .. }) {
        return Ok(());
    }
    if repository.is_none()
        && let Some(decided) = authz::authorize_from_memory(
            &app.iam, principal, &action, &resources, &context, refusal,
        )
    {
        return decided;
    }
    let (app, principal) = (app.clone(), principal.clone());
    crate::protocol::json::blocking(move || {
        let service = action.split(':').next().unwrap_or_default();
        let mut resources = resources;
        let resource = match &repository {
            Some(scope) if service == secretsmanager::SERVICE => {
                let (policy, arns) = authz::secret_policy(&app.secrets, scope, &resources)?;
                resources = arns;
                Some(policy)
            }
            Some(scope) => Some(authz::repository_policy(&app.registry, scope, &resources)?),
            None => None,
        };
        let tags = || match authz::tagged_resource(&resources) {
            Some(arn) => authz::resource_tag_keys(service, &resource_tags(&app, service, arn)),
            None => Vec::new(),
        };
        authz::authorize_on(
            &app.iam,
            &principal,
            &action,
            &resources,
            &context,
            refusal,
            authz::OnResource {
                policy: resource.as_ref(),
                tags: Some(&tags),
            },
        )
    })
    .await
}

/// ECR's `registryId` request field, when the request names one.
fn registry_id(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    value.get("registryId")?.as_str().map(str::to_string)
}

/// The tags of the resource `arn` (ECS resources, ECR repositories, log groups), for
/// `aws:ResourceTag/…`; none when it does not exist (yet) or has no tags.
pub(crate) fn resource_tags(app: &AppState, service: &str, arn: &str) -> Vec<(String, String)> {
    // arn:aws:SERVICE:REGION:ACCOUNT:RESOURCE
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [_, _, _, region, account, resource] = parts[..] else {
        return Vec::new();
    };
    let (Ok(region), Ok(account)) = (region.parse(), account.parse()) else {
        return Vec::new();
    };
    let scope = Scope::new(account, region);
    match service {
        "ecs" => app
            .ecs
            .resource_tags(&scope, arn)
            .map(|tags| tags.into_iter().map(|t| (t.key, t.value)).collect())
            .unwrap_or_default(),
        "ecr" => resource
            .strip_prefix("repository/")
            .and_then(|name| name.parse().ok())
            .and_then(|name| app.registry.repository(&scope, &name).ok())
            .map(|r| r.tags.into_iter().map(|t| (t.key, t.value)).collect())
            .unwrap_or_default(),
        "logs" => resource
            .strip_prefix("log-group:")
            .map(|g| g.split(":log-stream:").next().unwrap_or(g))
            .map(|g| g.strip_suffix(":*").unwrap_or(g))
            .and_then(|group| {
                let scope = berth_logs::LogScope {
                    account: scope.account.to_string(),
                    region: scope.region.to_string(),
                };
                app.logs.log_group(&scope, group).ok()
            })
            .map(|g| g.tags.into_iter().collect())
            .unwrap_or_default(),
        "ssm" => app.ssm.parameter_tags(
            &berth_ssm::SsmScope::new(scope.account.as_str(), scope.region.as_str()),
            arn,
        ),
        secretsmanager::SERVICE => app
            .secrets
            .describe(
                &berth_secrets::SecretScope {
                    account: scope.account.to_string(),
                    region: scope.region.to_string(),
                },
                arn,
            )
            .map(|s| s.tags.into_iter().map(|t| (t.key, t.value)).collect())
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// The client's address (`aws:SourceIp`): the connection's peer, or for a request another
/// replica passed on, the address that replica sealed for it (a seal that does not verify is
/// ignored: the peer's address stands).
fn client_ip(app: &AppState, parts: &axum::http::request::Parts) -> Option<String> {
    let sealed = parts
        .headers
        .get(forward::FORWARDED_FOR)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            app.tokens
                .open_forwarded_for(v, &forward::forwarding_binding(parts))
        });
    sealed.or_else(|| {
        parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip().to_string())
    })
}

/// The global condition keys a request gives: its region, the client's address.
fn request_context(
    app: &AppState,
    parts: &axum::http::request::Parts,
    region: &str,
) -> authz::RequestContext {
    authz::RequestContext {
        region: region.to_string(),
        source_ip: client_ip(app, parts),
        secure_transport: false,
        service_keys: Vec::new(),
        principal_tags: Vec::new(),
    }
}

/// Records a request signed with an IAM user's access key as the key's last use
/// (GetAccessKeyLastUsed): at most one store write per key a minute in this process
/// (`Iam::access_key_use_due`), waited for so that the next request sees it. A failed
/// write costs the record, not the request.
async fn record_key_use(
    app: &Arc<AppState>,
    principal: &berth_iam::Principal,
    temporary: bool,
    verified: &berth_sigv4::Verified,
) {
    if temporary
        || !matches!(principal, berth_iam::Principal::User { .. })
        || !app.iam.access_key_use_due(&verified.access_key_id)
    {
        return;
    }
    let (iam, id, service, region) = (
        app.iam.clone(),
        verified.access_key_id.clone(),
        verified.service.clone(),
        verified.region.clone(),
    );
    let written = crate::protocol::json::blocking(move || {
        iam.record_access_key_use(&id, &service, &region)
            .map_err(|e| AwsError::server(e.to_string()))
    })
    .await;
    if let Err(e) = written {
        tracing::warn!(error = %e.message, "cannot record an access key's last use");
    }
}
