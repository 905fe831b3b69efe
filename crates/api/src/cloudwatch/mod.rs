//! CloudWatch's metrics API (`monitoring`), in the three protocols clients speak: AWS JSON
//! 1.0 (botocore's choice), Smithy RPC v2 CBOR (other current SDKs) and the Query form
//! (older ones). Each operation is parsed once
//! from a `Document` (CBOR's, or the Query parameters') into the domain's request, and
//! answered once as a `Document` the protocol writes; `CloudWatchError` becomes AWS's
//! Query codes, with the model's exception names as the CBOR `__type`.

mod alarms;
mod data;
mod metrics;
mod tags;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use berth_cloudwatch::{CloudWatchError, CwScope};

use crate::protocol::document::Document;
use crate::protocol::query::{self, Xml};
use crate::protocol::{AwsContext, AwsError};

/// The name requests are signed for, and the Query form's routing key.
pub const SERVICE: &str = "monitoring";
/// IAM's prefix for CloudWatch's actions (`cloudwatch:PutMetricData`).
pub const IAM_PREFIX: &str = "cloudwatch";
/// The service's name in RPC v2 CBOR paths and JSON 1.0's `X-Amz-Target`.
pub const TARGET_PREFIX: &str = "GraniteServiceVersion20100801";
pub const NAMESPACE: query::Namespace =
    query::Namespace("http://monitoring.amazonaws.com/doc/2010-08-01/");

pub fn cloudwatch_error(e: CloudWatchError) -> AwsError {
    let status = match &e {
        CloudWatchError::ResourceNotFound(_) => StatusCode::NOT_FOUND,
        e if e.is_internal() => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    AwsError::new(status, e.code(), e.to_string())
}

/// The CBOR `__type` of an error: the exception's shape in CloudWatch's model for its
/// own errors, the code as it is for the others (authentication, authorization).
pub fn error_type(code: &str) -> String {
    let shape = match code {
        "InvalidParameterValue" => "InvalidParameterValueException",
        "MissingParameter" => "MissingRequiredParameterException",
        "InvalidParameterCombination" => "InvalidParameterCombinationException",
        "LimitExceeded" => "LimitExceededFault",
        "InternalServiceError" => "InternalServiceFault",
        "ResourceNotFound" | "InvalidNextToken" => code,
        "InvalidFormat" => "InvalidFormatFault",
        other => return other.to_string(),
    };
    format!("com.amazonaws.cloudwatch#{shape}")
}

pub(crate) fn cw_scope(ctx: &AwsContext) -> CwScope {
    CwScope::new(ctx.scope.account.as_str(), ctx.scope.region.as_str())
}

/// Every CloudWatch operation Berth serves, parsed from its request document.
#[derive(Debug)]
pub enum CloudWatchAction {
    PutMetricData(berth_cloudwatch::PutMetricData),
    GetMetricStatistics(berth_cloudwatch::GetMetricStatistics),
    ListMetrics(berth_cloudwatch::ListMetrics),
    GetMetricData(berth_cloudwatch::GetMetricData),
    PutMetricAlarm(Box<berth_cloudwatch::PutMetricAlarm>),
    DescribeAlarms(berth_cloudwatch::alarms::DescribeAlarms),
    DescribeAlarmsForMetric(berth_cloudwatch::alarms::DescribeAlarmsForMetric),
    DeleteAlarms(Vec<String>),
    SetAlarmState(alarms::SetState),
    DescribeAlarmHistory(berth_cloudwatch::alarms::DescribeAlarmHistory),
    EnableAlarmActions(Vec<String>),
    DisableAlarmActions(Vec<String>),
    TagResource(String, Vec<berth_cloudwatch::alarms::AlarmTag>),
    UntagResource(String, Vec<String>),
    ListTagsForResource(String),
}

impl CloudWatchAction {
    /// `None`: not an operation Berth serves.
    pub fn parse(operation: &str, doc: &Document) -> Option<Result<CloudWatchAction, AwsError>> {
        Some(match operation {
            "PutMetricData" => metrics::parse_put(doc).map(CloudWatchAction::PutMetricData),
            "GetMetricStatistics" => {
                metrics::parse_statistics(doc).map(CloudWatchAction::GetMetricStatistics)
            }
            "ListMetrics" => metrics::parse_list(doc).map(CloudWatchAction::ListMetrics),
            "GetMetricData" => data::parse(doc).map(CloudWatchAction::GetMetricData),
            "PutMetricAlarm" => {
                alarms::parse_put(doc).map(|r| CloudWatchAction::PutMetricAlarm(Box::new(r)))
            }
            "DescribeAlarms" => alarms::parse_describe(doc).map(CloudWatchAction::DescribeAlarms),
            "DescribeAlarmsForMetric" => {
                alarms::parse_for_metric(doc).map(CloudWatchAction::DescribeAlarmsForMetric)
            }
            "DeleteAlarms" => alarms::parse_names(doc).map(CloudWatchAction::DeleteAlarms),
            "SetAlarmState" => alarms::parse_set_state(doc).map(CloudWatchAction::SetAlarmState),
            "DescribeAlarmHistory" => {
                alarms::parse_history(doc).map(CloudWatchAction::DescribeAlarmHistory)
            }
            "EnableAlarmActions" => {
                alarms::parse_names(doc).map(CloudWatchAction::EnableAlarmActions)
            }
            "DisableAlarmActions" => {
                alarms::parse_names(doc).map(CloudWatchAction::DisableAlarmActions)
            }
            "TagResource" => {
                tags::parse_tag(doc).map(|(arn, t)| CloudWatchAction::TagResource(arn, t))
            }
            "UntagResource" => {
                tags::parse_untag(doc).map(|(arn, k)| CloudWatchAction::UntagResource(arn, k))
            }
            "ListTagsForResource" => {
                tags::parse_list(doc).map(CloudWatchAction::ListTagsForResource)
            }
            _ => return None,
        })
    }

    /// Carries the operation out (store reads and commits: call it on the blocking pool);
    /// its output structure, `None` for an operation without one.
    fn apply(
        self,
        cw: &berth_cloudwatch::CloudWatch,
        scope: &CwScope,
    ) -> Result<Option<Document>, AwsError> {
        let answer = match self {
            CloudWatchAction::PutMetricData(r) => {
                cw.put_metric_data(scope, r).map_err(cloudwatch_error)?;
                None
            }
            CloudWatchAction::GetMetricStatistics(r) => {
                let (label, points) = cw
                    .get_metric_statistics(scope, r)
                    .map_err(cloudwatch_error)?;
                Some(metrics::statistics_answer(label, points))
            }
            CloudWatchAction::ListMetrics(r) => Some(metrics::list_answer(
                cw.list_metrics(scope, r).map_err(cloudwatch_error)?,
            )),
            CloudWatchAction::GetMetricData(r) => Some(data::answer(
                cw.get_metric_data(scope, r).map_err(cloudwatch_error)?,
            )),
            CloudWatchAction::PutMetricAlarm(r) => {
                cw.put_metric_alarm(scope, *r).map_err(cloudwatch_error)?;
                None
            }
            CloudWatchAction::DescribeAlarms(r) => {
                let page = cw.describe_alarms(scope, r).map_err(cloudwatch_error)?;
                Some(alarms::alarms_answer(page.metric_alarms, page.next_token))
            }
            CloudWatchAction::DescribeAlarmsForMetric(r) => Some(alarms::for_metric_answer(
                cw.describe_alarms_for_metric(scope, r)
                    .map_err(cloudwatch_error)?,
            )),
            CloudWatchAction::DeleteAlarms(names) => {
                cw.delete_alarms(scope, &names).map_err(cloudwatch_error)?;
                None
            }
            CloudWatchAction::SetAlarmState((name, state, reason, data)) => {
                cw.set_alarm_state(scope, &name, &state, &reason, data)
                    .map_err(cloudwatch_error)?;
                None
            }
            CloudWatchAction::DescribeAlarmHistory(r) => Some(alarms::history_answer(
                cw.describe_alarm_history(scope, r)
                    .map_err(cloudwatch_error)?,
            )),
            CloudWatchAction::EnableAlarmActions(names) => {
                cw.set_alarm_actions(scope, &names, true)
                    .map_err(cloudwatch_error)?;
                None
            }
            CloudWatchAction::DisableAlarmActions(names) => {
                cw.set_alarm_actions(scope, &names, false)
                    .map_err(cloudwatch_error)?;
                None
            }
            CloudWatchAction::TagResource(arn, new) => {
                cw.tag_resource(scope, &arn, &new)
                    .map_err(cloudwatch_error)?;
                Some(tags::empty_answer())
            }
            CloudWatchAction::UntagResource(arn, keys) => {
                cw.untag_resource(scope, &arn, &keys)
                    .map_err(cloudwatch_error)?;
                Some(tags::empty_answer())
            }
            CloudWatchAction::ListTagsForResource(arn) => Some(tags::tags_answer(
                cw.list_tags_for_resource(scope, &arn)
                    .map_err(cloudwatch_error)?,
            )),
        };
        Ok(answer)
    }
}

/// The resources an operation acts on, as the Service Authorization Reference lists them:
/// the alarms it names (every alarm of the region when it names none); `*` for the
/// metric operations, which name no resource.
pub fn resources(operation: &str, doc: &Document, region: &str, account: &str) -> Vec<String> {
    let scope = CwScope::new(account, region);
    let named: Vec<String> = match operation {
        "PutMetricAlarm" | "SetAlarmState" | "DescribeAlarmHistory" => {
            doc.string("AlarmName").ok().flatten().into_iter().collect()
        }
        "DeleteAlarms" | "DescribeAlarms" | "EnableAlarmActions" | "DisableAlarmActions" => {
            metrics::strings(doc, "AlarmNames").unwrap_or_default()
        }
        // The resource is the ARN itself.
        "TagResource" | "UntagResource" | "ListTagsForResource" => {
            return doc
                .string("ResourceARN")
                .ok()
                .flatten()
                .into_iter()
                .collect();
        }
        _ => return vec!["*".to_string()],
    };
    if named.is_empty() {
        return vec![berth_cloudwatch::alarms::alarm_arn(&scope, "*")];
    }
    named
        .iter()
        .map(|n| berth_cloudwatch::alarms::alarm_arn(&scope, n))
        .collect()
}

/// The namespace PutMetricData names (IAM's `cloudwatch:namespace` condition key).
pub fn put_namespace(operation: &str, doc: &Document) -> Option<String> {
    (operation == "PutMetricData")
        .then(|| doc.string("Namespace").ok().flatten())
        .flatten()
}

/// Runs a parsed operation on the blocking pool.
pub async fn run(ctx: &AwsContext, action: CloudWatchAction) -> Result<Option<Document>, AwsError> {
    let (cw, scope) = (ctx.app.cloudwatch.clone(), cw_scope(ctx));
    crate::protocol::json::blocking(move || action.apply(&cw, &scope)).await
}

/// An RPC v2 CBOR or JSON 1.0 request's operation.
pub async fn serve(
    ctx: &AwsContext,
    operation: &str,
    doc: &Document,
) -> Result<Option<Document>, AwsError> {
    let action = CloudWatchAction::parse(operation, doc).ok_or_else(|| {
        AwsError::new(
            StatusCode::NOT_FOUND,
            "UnknownOperationException",
            format!("The operation '{operation}' is not known to CloudWatch"),
        )
    })??;
    run(ctx, action).await
}

/// A Query request's operation: its result as XML.
pub async fn serve_query(
    ctx: &AwsContext,
    request: &query::QueryRequest,
) -> Result<Option<Xml>, AwsError> {
    let doc = request.document();
    let action = CloudWatchAction::parse(&request.action, &doc).ok_or_else(|| {
        AwsError::client(
            "InvalidAction",
            format!(
                "The action {} is not valid for this web service.",
                request.action
            ),
        )
    })??;
    Ok(run(ctx, action).await?.map(|answer| {
        let mut x = Xml::default();
        x.document(&answer);
        x
    }))
}

/// A JSON 1.0 body as a document (an empty body is an empty structure); gzip bodies are
/// inflated as in RPC v2 CBOR.
pub fn decode_json(body: &[u8], headers: &HeaderMap) -> Result<Document, AwsError> {
    let gzip = headers
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    let inflated;
    let body = if gzip {
        use std::io::Read;
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(body)
            .take(crate::protocol::json::MAX_AWS_BODY as u64)
            .read_to_end(&mut out)
            .map_err(|e| {
                AwsError::client(
                    "SerializationException",
                    format!("the gzip body does not inflate: {e}"),
                )
            })?;
        inflated = out;
        &inflated[..]
    } else {
        body
    };
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Document::Struct(Vec::new()));
    }
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        AwsError::client(
            "SerializationException",
            format!("the body is not JSON: {e}"),
        )
    })?;
    Ok(Document::from_json(value))
}

fn json10(status: StatusCode, request_id: &str, body: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        "content-type",
        HeaderValue::from_static("application/x-amz-json-1.0"),
    );
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", v);
    }
    response
}

/// A JSON 1.0 answer (`{}` for an operation without output).
pub fn json_response(request_id: &str, answer: Option<Document>) -> Response {
    let body = answer.map_or_else(|| b"{}".to_vec(), |a| a.to_json_vec());
    json10(StatusCode::OK, request_id, body)
}

/// A JSON 1.0 error: `__type` the exception's shape, the Query code in
/// `x-amzn-query-error` (which clients take as the code).
pub fn json_error(error: &AwsError, request_id: &str) -> Response {
    if error.status.is_server_error() {
        tracing::error!(code = %error.code, message = %error.message, request_id, "AWS API error");
    }
    let body = serde_json::json!({"__type": error_type(&error.code), "message": error.message});
    let mut response = json10(error.status, request_id, body.to_string().into_bytes());
    let fault = if error.status.is_server_error() {
        "Receiver"
    } else {
        "Sender"
    };
    if let Ok(v) = HeaderValue::from_str(&format!("{};{fault}", error.code)) {
        response.headers_mut().insert("x-amzn-query-error", v);
    }
    response
}
