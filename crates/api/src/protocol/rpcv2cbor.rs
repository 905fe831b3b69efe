//! Smithy's RPC v2 CBOR protocol, shared by every service that speaks it (CloudWatch, as
//! current AWS SDKs call it): `POST /service/{Service}/operation/{Operation}` with the
//! header `smithy-protocol: rpc-v2-cbor`, CBOR bodies (timestamps as tag 1, epoch seconds),
//! answers the same way, and errors as `{"__type", "message"}` with their HTTP status; for
//! services compatible with their old Query form (`awsQueryCompatible`), the Query error
//! code in `x-amzn-query-error: Code;Sender`, which clients take as the error's code.
//! Bodies are decoded into, and answers written from, `protocol::document`.

use std::io::Read;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use ciborium::Value;

use crate::protocol::AwsError;
use crate::protocol::document::Document;

pub const CONTENT_TYPE: &str = "application/cbor";

/// Whether a request speaks RPC v2 CBOR: its header says so.
pub fn is_rpcv2cbor(headers: &HeaderMap) -> bool {
    headers
        .get("smithy-protocol")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("rpc-v2-cbor"))
}

/// The service and operation a request's path names: `…/service/{S}/operation/{O}`.
pub fn operation(path: &str) -> Option<(&str, &str)> {
    let (_, rest) = path.rsplit_once("/service/")?;
    let (service, operation) = rest.split_once("/operation/")?;
    (!service.is_empty() && !operation.is_empty() && !operation.contains('/'))
        .then_some((service, operation))
}

/// A request body as a document; an empty body is an empty structure. A gzip body
/// (`Content-Encoding: gzip`, which SDKs send for large PutMetricData requests) is
/// inflated first, up to `limit` bytes.
pub fn decode(body: &[u8], headers: &HeaderMap, limit: usize) -> Result<Document, AwsError> {
    let gzip = headers
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().eq_ignore_ascii_case("gzip")));
    let inflated;
    let body = if gzip {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(body)
            .take(limit as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| malformed(format!("the gzip body does not inflate: {e}")))?;
        if out.len() > limit {
            return Err(AwsError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLargeException",
                format!("Request body must be at most {limit} bytes"),
            ));
        }
        inflated = out;
        &inflated[..]
    } else {
        body
    };
    if body.is_empty() {
        return Ok(Document::Struct(Vec::new()));
    }
    let value: Value =
        ciborium::from_reader(body).map_err(|e| malformed(format!("the body is not CBOR: {e}")))?;
    match from_cbor(value)? {
        d @ Document::Struct(_) => Ok(d),
        _ => Err(malformed("the body is not a CBOR map".to_string())),
    }
}

fn malformed(message: String) -> AwsError {
    AwsError::client("SerializationException", message)
}

fn from_cbor(value: Value) -> Result<Document, AwsError> {
    Ok(match value {
        Value::Null => Document::Null,
        Value::Bool(b) => Document::Bool(b),
        Value::Integer(i) => Document::Int(
            i64::try_from(i128::from(i))
                .map_err(|_| malformed("an integer is out of range".into()))?,
        ),
        Value::Float(f) => Document::Double(f),
        Value::Text(s) => Document::Text(s),
        Value::Bytes(b) => Document::Blob(b),
        Value::Tag(1, inner) => match *inner {
            Value::Integer(i) => Document::Timestamp(i128::from(i) as f64),
            Value::Float(f) => Document::Timestamp(f),
            _ => return Err(malformed("a timestamp (tag 1) is not a number".into())),
        },
        Value::Tag(_, inner) => from_cbor(*inner)?,
        Value::Array(items) => {
            Document::List(items.into_iter().map(from_cbor).collect::<Result<_, _>>()?)
        }
        Value::Map(entries) => Document::Struct(
            entries
                .into_iter()
                .map(|(k, v)| match k {
                    Value::Text(k) => Ok((k, from_cbor(v)?)),
                    _ => Err(malformed("a map key is not text".into())),
                })
                .collect::<Result<_, _>>()?,
        ),
        _ => return Err(malformed("an unsupported CBOR value".into())),
    })
}

fn to_cbor(doc: &Document) -> Value {
    match doc {
        Document::Null => Value::Null,
        Document::Bool(b) => Value::Bool(*b),
        Document::Int(i) => Value::Integer((*i).into()),
        Document::Double(f) => Value::Float(*f),
        Document::Text(s) => Value::Text(s.clone()),
        Document::Blob(b) => Value::Bytes(b.clone()),
        Document::Timestamp(secs) => Value::Tag(1, Box::new(Value::Float(*secs))),
        Document::List(items) => Value::Array(items.iter().map(to_cbor).collect()),
        Document::Struct(members) | Document::Map(members) => Value::Map(
            members
                .iter()
                .map(|(k, v)| (Value::Text(k.clone()), to_cbor(v)))
                .collect(),
        ),
    }
}

/// A document's CBOR bytes.
pub fn encode(doc: &Document) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(&to_cbor(doc), &mut out).expect("writing to a Vec cannot fail");
    out
}

fn cbor_response(status: StatusCode, request_id: &str, body: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert("smithy-protocol", HeaderValue::from_static("rpc-v2-cbor"));
    headers.insert("content-type", HeaderValue::from_static(CONTENT_TYPE));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", v);
    }
    response
}

/// A successful answer: the output structure, or an empty body for an operation without
/// output.
pub fn response(request_id: &str, output: Option<Document>) -> Response {
    let body = output.as_ref().map(encode).unwrap_or_default();
    cbor_response(StatusCode::OK, request_id, body)
}

/// An error: `__type` is `error_type` (the exception's shape id), and for a Query-compatible
/// service the Query code goes in `x-amzn-query-error`.
pub fn error_response(
    error: &AwsError,
    request_id: &str,
    error_type: &str,
    query_compatible: bool,
) -> Response {
    if error.status.is_server_error() {
        tracing::error!(code = %error.code, message = %error.message, request_id, "AWS API error");
    }
    let body = Document::Struct(vec![
        ("__type".into(), Document::Text(error_type.to_string())),
        ("message".into(), Document::Text(error.message.clone())),
    ]);
    let mut response = cbor_response(error.status, request_id, encode(&body));
    if query_compatible {
        let fault = if error.status.is_server_error() {
            "Receiver"
        } else {
            "Sender"
        };
        if let Ok(v) = HeaderValue::from_str(&format!("{};{fault}", error.code)) {
            response.headers_mut().insert("x-amzn-query-error", v);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_service_and_operation() {
        assert_eq!(
            operation("/service/GraniteServiceVersion20100801/operation/PutMetricData"),
            Some(("GraniteServiceVersion20100801", "PutMetricData"))
        );
        assert_eq!(operation("/service/S/operation/"), None);
        assert_eq!(operation("/"), None);
    }

    #[test]
    fn documents_travel_through_cbor_with_timestamps_tagged() {
        let doc = Document::Struct(vec![
            ("Label".into(), Document::Text("Latency".into())),
            (
                "Timestamps".into(),
                Document::List(vec![Document::Timestamp(1_796_637_600.0)]),
            ),
            ("Values".into(), Document::List(vec![Document::Double(2.5)])),
            ("Count".into(), Document::Int(-3)),
        ]);
        let bytes = encode(&doc);
        // Tag 1 (0xc1) before the timestamp's float.
        assert!(bytes.windows(2).any(|w| w == [0xc1, 0xfb]), "{bytes:02x?}");
        assert_eq!(decode(&bytes, &HeaderMap::new(), 1 << 20).unwrap(), doc);
        // An integer timestamp, as botocore sends a whole second.
        let mut raw = Vec::new();
        let value = Value::Map(vec![(
            Value::Text("StartTime".into()),
            Value::Tag(1, Box::new(Value::Integer(1_796_637_600.into()))),
        )]);
        ciborium::into_writer(&value, &mut raw).unwrap();
        let doc = decode(&raw, &HeaderMap::new(), 1 << 20).unwrap();
        assert_eq!(
            doc.timestamp_ms("StartTime").unwrap(),
            Some(1_796_637_600_000)
        );
    }

    #[test]
    fn gzip_bodies_are_inflated_and_garbage_refused() {
        use std::io::Write;
        let doc = Document::Struct(vec![("Namespace".into(), Document::Text("App".into()))]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&encode(&doc)).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("content-encoding", HeaderValue::from_static("gzip"));
        assert_eq!(
            decode(&gz.finish().unwrap(), &headers, 1 << 20).unwrap(),
            doc
        );
        let e = decode(b"\xff\x00", &HeaderMap::new(), 1 << 20).unwrap_err();
        assert_eq!(e.code, "SerializationException");
    }
}
