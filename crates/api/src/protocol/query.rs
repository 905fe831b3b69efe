//! AWS's Query protocol, shared by every service that speaks it (STS, IAM; EC2, ELBv2 and
//! CloudWatch's Query form later): a form-encoded `Action=…&Version=…` POST (or the same
//! parameters in a GET's query string), parameters flattened with dotted names
//! (`Tags.member.1.Key`), answers in XML — `<{Action}Response>` holding `<{Action}Result>`
//! and `<ResponseMetadata><RequestId>` — and errors as `<ErrorResponse><Error><Type>…`.
//!
//! EC2 speaks its own flavour of it: lists are `Name.N` (no `.member.`), structures nest
//! (`Filter.1.Value.2`, `IpPermissions.1.IpRanges.1.CidrIp`); answers are
//! `<{Action}Response>` with a lower-case `<requestId>` and no `Result` wrapper, lists are
//! `<xxxSet><item>…`, and errors are `<Response><Errors><Error>…</Errors><RequestID>`.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;

use crate::protocol::AwsError;
use crate::protocol::document::{Document, iso8601};

/// A Query request's parameters.
#[derive(Debug, Clone, Default)]
pub struct QueryRequest {
    pub action: String,
    pub version: Option<String>,
    params: BTreeMap<String, String>,
}

/// Whether a request without `X-Amz-Target` is a Query one: a form-encoded body, or a GET
/// naming its `Action` in the query string.
pub fn is_query(method: &str, content_type: Option<&str>, query: Option<&str>) -> bool {
    let form = content_type.is_some_and(|c| {
        c.split(';').next().is_some_and(|t| {
            t.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
    });
    form || (method == "GET" && query.is_some_and(|q| parse_form(q).contains_key("Action")))
}

impl QueryRequest {
    /// The parameters of the query string and the form body together (the body's win).
    pub fn parse(query: Option<&str>, body: &[u8]) -> Result<QueryRequest, AwsError> {
        let mut params = query.map(parse_form).unwrap_or_default();
        let body = std::str::from_utf8(body).map_err(|_| {
            AwsError::client("MalformedQueryString", "The request body is not UTF-8.")
        })?;
        params.extend(parse_form(body));
        let action = params
            .remove("Action")
            .ok_or_else(|| AwsError::client("MissingAction", "Missing Action parameter."))?;
        let version = params.remove("Version");
        Ok(QueryRequest {
            action,
            version,
            params,
        })
    }

    /// A parameter's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// A parameter that must be there: AWS's validation error names it (in the model's
    /// lower camel case) when it is not.
    pub fn required(&self, name: &str) -> Result<&str, AwsError> {
        self.get(name).ok_or_else(|| {
            AwsError::client(
                "ValidationError",
                format!(
                    "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
                    lower_camel(name)
                ),
            )
        })
    }

    /// An integer parameter.
    pub fn int(&self, name: &str) -> Result<Option<i64>, AwsError> {
        self.get(name)
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    AwsError::client(
                        "ValidationError",
                        format!(
                            "1 validation error detected: Value '{v}' at '{}' failed to satisfy constraint: Member must be a number",
                            lower_camel(name)
                        ),
                    )
                })
            })
            .transpose()
    }

    /// A list of strings, `Name.member.1`, `Name.member.2`, … in order.
    pub fn list(&self, name: &str) -> Vec<&str> {
        self.numbered(&format!("{name}.member."))
    }

    /// The values of `{prefix}1`, `{prefix}2`, … in their numbers' order.
    fn numbered(&self, prefix: &str) -> Vec<&str> {
        let mut items: Vec<(u32, &str)> = self
            .params
            .iter()
            .filter_map(|(k, v)| {
                let n = k.strip_prefix(prefix)?.parse::<u32>().ok()?;
                Some((n, v.as_str()))
            })
            .collect();
        items.sort_by_key(|(n, _)| *n);
        items.into_iter().map(|(_, v)| v).collect()
    }

    /// A list of structures, `Name.member.N.Field`, each as its fields by name, in order.
    pub fn structs(&self, name: &str) -> Vec<BTreeMap<&str, &str>> {
        let prefix = format!("{name}.member.");
        let mut items: BTreeMap<u32, BTreeMap<&str, &str>> = BTreeMap::new();
        for (k, v) in &self.params {
            let Some(rest) = k.strip_prefix(&prefix) else {
                continue;
            };
            let Some((n, field)) = rest.split_once('.') else {
                continue;
            };
            if let Ok(n) = n.parse::<u32>() {
                items.entry(n).or_default().insert(field, v.as_str());
            }
        }
        items.into_values().collect()
    }
}

impl QueryRequest {
    /// EC2's list of strings, `Name.1`, `Name.2`, … in order.
    pub fn ec2_list(&self, name: &str) -> Vec<&str> {
        self.numbered(&format!("{name}."))
    }

    /// EC2's list of structures, `Name.N.Field…`: each one's parameters as a request of its
    /// own (`Field`, `Nested.M.Field`), in order, so nested lists read the same way.
    pub fn ec2_items(&self, name: &str) -> Vec<QueryRequest> {
        let prefix = format!("{name}.");
        let mut items: BTreeMap<u32, QueryRequest> = BTreeMap::new();
        for (k, v) in &self.params {
            let Some((n, field)) = k.strip_prefix(&prefix).and_then(|r| r.split_once('.')) else {
                continue;
            };
            if let Ok(n) = n.parse::<u32>() {
                let item = items.entry(n).or_insert_with(|| QueryRequest {
                    action: self.action.clone(),
                    version: None,
                    params: BTreeMap::new(),
                });
                item.params.insert(field.to_string(), v.clone());
            }
        }
        items.into_values().collect()
    }
}

impl QueryRequest {
    /// The parameters as a document (`protocol::document`): dotted names nest,
    /// `Name.member.N` is a list, `Name.entry.N.key`/`.value` a map, the rest structures;
    /// every value is text, which the document's accessors read as the member's type.
    pub fn document(&self) -> Document {
        let mut root = Node::Branch(BTreeMap::new());
        for (name, value) in &self.params {
            let mut node = &mut root;
            for part in name.split('.') {
                let Node::Branch(children) = node else {
                    break;
                };
                node = children
                    .entry(part.to_string())
                    .or_insert_with(|| Node::Branch(BTreeMap::new()));
            }
            if let Node::Branch(children) = node
                && children.is_empty()
            {
                *node = Node::Leaf(value.clone());
            }
        }
        root.into_document()
    }
}

/// A parameter name's parts as a tree, before it is a document.
enum Node {
    Leaf(String),
    Branch(BTreeMap<String, Node>),
}

impl Node {
    fn into_document(self) -> Document {
        let children = match self {
            Node::Leaf(text) => return Document::Text(text),
            Node::Branch(children) => children,
        };
        let numbered = |items: Node| -> Vec<Node> {
            let Node::Branch(items) = items else {
                return Vec::new();
            };
            let mut items: Vec<(u32, Node)> = items
                .into_iter()
                .filter_map(|(n, item)| Some((n.parse().ok()?, item)))
                .collect();
            items.sort_by_key(|(n, _)| *n);
            items.into_iter().map(|(_, item)| item).collect()
        };
        if children.len() == 1 && children.contains_key("member") {
            let items = children.into_values().next().expect("one child");
            return Document::List(
                numbered(items)
                    .into_iter()
                    .map(Node::into_document)
                    .collect(),
            );
        }
        if children.len() == 1 && children.contains_key("entry") {
            let entries = children.into_values().next().expect("one child");
            return Document::Map(
                numbered(entries)
                    .into_iter()
                    .filter_map(|entry| match entry.into_document() {
                        Document::Struct(fields) => {
                            let key = fields.iter().find(|(k, _)| k == "key")?;
                            let Document::Text(key) = &key.1 else {
                                return None;
                            };
                            let value = fields.iter().find(|(k, _)| k == "value")?;
                            Some((key.clone(), value.1.clone()))
                        }
                        _ => None,
                    })
                    .collect(),
            );
        }
        Document::Struct(
            children
                .into_iter()
                .map(|(k, v)| (k, v.into_document()))
                .collect(),
        )
    }
}

/// `RoleName` → `roleName`, as AWS's validation messages name members.
fn lower_camel(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) => c.to_ascii_lowercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

/// `a=1&b=x%20y` → its pairs, `+` read as a space (form encoding).
fn parse_form(s: &str) -> BTreeMap<String, String> {
    s.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// Percent-decoding of a form or query value (`+` is a space).
pub(crate) fn percent_decode(s: &str) -> String {
    decode(s)
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An XML document written element by element, text escaped.
#[derive(Default)]
pub struct Xml {
    buf: String,
}

impl Xml {
    pub fn open(&mut self, tag: &str) -> &mut Xml {
        self.buf.push('<');
        self.buf.push_str(tag);
        self.buf.push('>');
        self
    }

    pub fn close(&mut self, tag: &str) -> &mut Xml {
        self.buf.push_str("</");
        self.buf.push_str(tag);
        self.buf.push('>');
        self
    }

    /// `<tag>text</tag>`.
    pub fn leaf(&mut self, tag: &str, text: impl std::fmt::Display) -> &mut Xml {
        self.open(tag);
        escape_into(&mut self.buf, &text.to_string());
        self.close(tag)
    }

    /// Text (escaped) inside the element being written.
    pub fn text(&mut self, text: impl std::fmt::Display) -> &mut Xml {
        escape_into(&mut self.buf, &text.to_string());
        self
    }

    /// `<tag>text</tag>` when there is a text.
    pub fn opt_leaf(&mut self, tag: &str, text: Option<impl std::fmt::Display>) -> &mut Xml {
        if let Some(text) = text {
            self.leaf(tag, text);
        }
        self
    }

    /// `<tag>` around what `inner` writes.
    pub fn element(&mut self, tag: &str, inner: impl FnOnce(&mut Xml)) -> &mut Xml {
        self.open(tag);
        inner(self);
        self.close(tag)
    }

    /// A list as the Query protocol writes one: `<tag><member>…</member>…</tag>`.
    pub fn members<T>(
        &mut self,
        tag: &str,
        items: impl IntoIterator<Item = T>,
        each: impl FnMut(&mut Xml, T),
    ) -> &mut Xml {
        self.list(tag, "member", items, each)
    }

    /// A list as EC2 writes one: `<tag><item>…</item>…</tag>`.
    pub fn items<T>(
        &mut self,
        tag: &str,
        items: impl IntoIterator<Item = T>,
        each: impl FnMut(&mut Xml, T),
    ) -> &mut Xml {
        self.list(tag, "item", items, each)
    }

    fn list<T>(
        &mut self,
        tag: &str,
        element: &str,
        items: impl IntoIterator<Item = T>,
        mut each: impl FnMut(&mut Xml, T),
    ) -> &mut Xml {
        self.open(tag);
        for item in items {
            self.open(element);
            each(self, item);
            self.close(element);
        }
        self.close(tag)
    }

    /// A document as a Query answer's XML: members as elements, list items as
    /// `<member>`, map entries as `<entry><key>…</key><value>…</value></entry>`.
    pub fn document(&mut self, doc: &Document) -> &mut Xml {
        match doc {
            Document::Null => {}
            Document::Bool(b) => {
                self.text(b);
            }
            Document::Int(v) => {
                self.text(v);
            }
            Document::Double(v) => {
                self.text(v);
            }
            Document::Text(s) => {
                self.text(s);
            }
            Document::Blob(bytes) => {
                use base64::Engine;
                self.text(base64::engine::general_purpose::STANDARD.encode(bytes));
            }
            Document::Timestamp(secs) => {
                self.text(iso8601(*secs));
            }
            Document::List(items) => {
                for item in items {
                    self.element("member", |x| {
                        x.document(item);
                    });
                }
            }
            Document::Struct(members) => {
                for (name, value) in members {
                    self.element(name, |x| {
                        x.document(value);
                    });
                }
            }
            Document::Map(entries) => {
                for (key, value) in entries {
                    self.element("entry", |x| {
                        x.leaf("key", key);
                        x.element("value", |x| {
                            x.document(value);
                        });
                    });
                }
            }
        }
        self
    }

    pub fn into_string(self) -> String {
        self.buf
    }
}

fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
}

/// A Query service's XML namespace, e.g. `https://sts.amazonaws.com/doc/2011-06-15/`.
#[derive(Debug, Clone, Copy)]
pub struct Namespace(pub &'static str);

/// EC2's namespace: answers and errors in EC2's flavour of the protocol.
pub const EC2: Namespace = Namespace("http://ec2.amazonaws.com/doc/2016-11-15/");

impl Namespace {
    fn is_ec2(self) -> bool {
        self.0 == EC2.0
    }
}

/// A successful answer: `<{action}Response xmlns=…><{action}Result>{result}</…>` and the
/// request id. An action without a result shape writes no `Result` element (`None`).
pub fn response(
    namespace: Namespace,
    action: &str,
    request_id: &str,
    result: Option<Xml>,
) -> Response {
    let mut body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{action}Response xmlns=\"{}\">",
        namespace.0
    );
    if namespace.is_ec2() {
        // EC2: the request id first, then the answer's members, no `Result` wrapper.
        body.push_str(&format!("<requestId>{request_id}</requestId>"));
        if let Some(result) = result {
            body.push_str(&result.buf);
        }
        body.push_str(&format!("</{action}Response>"));
        return xml_response(StatusCode::OK, request_id, body);
    }
    if let Some(result) = result {
        body.push_str(&format!("<{action}Result>{}</{action}Result>", result.buf));
    }
    body.push_str(&format!(
        "<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{action}Response>"
    ));
    xml_response(StatusCode::OK, request_id, body)
}

/// An error in the Query protocol's shape: `Sender` for the client's faults, `Receiver`
/// for the server's.
pub fn error_response(namespace: Namespace, error: &AwsError, request_id: &str) -> Response {
    if error.status.is_server_error() {
        tracing::error!(code = %error.code, message = %error.message, request_id, "AWS API error");
    }
    if namespace.is_ec2() {
        let mut xml = Xml::default();
        xml.element("Errors", |x| {
            x.element("Error", |x| {
                x.leaf("Code", &error.code).leaf("Message", &error.message);
            });
        });
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response>{}<RequestID>{request_id}</RequestID></Response>",
            xml.buf
        );
        return xml_response(error.status, request_id, body);
    }
    let kind = if error.status.is_server_error() {
        "Receiver"
    } else {
        "Sender"
    };
    let mut xml = Xml::default();
    xml.element("Error", |x| {
        x.leaf("Type", kind)
            .leaf("Code", &error.code)
            .leaf("Message", &error.message);
    });
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse xmlns=\"{}\">{}<RequestId>{request_id}</RequestId></ErrorResponse>",
        namespace.0, xml.buf
    );
    xml_response(error.status, request_id, body)
}

fn xml_response(status: StatusCode, request_id: &str, body: String) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("text/xml"));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::document::Members;

    #[test]
    fn form_parameters_are_decoded_and_lists_ordered() {
        let q = QueryRequest::parse(
            Some("Version=2011-06-15"),
            b"Action=AssumeRole&RoleSessionName=a+b%2Fc&Tags.member.2.Key=k2&Tags.member.1.Key=k1&Tags.member.1.Value=v1&PolicyArns.member.10.arn=x&PolicyArns.member.2.arn=y",
        )
        .unwrap();
        assert_eq!(q.action, "AssumeRole");
        assert_eq!(q.version.as_deref(), Some("2011-06-15"));
        assert_eq!(q.get("RoleSessionName"), Some("a b/c"));
        let tags = q.structs("Tags");
        assert_eq!(tags.len(), 2);
        assert_eq!(tags[0].get("Key"), Some(&"k1"));
        assert_eq!(tags[0].get("Value"), Some(&"v1"));
        assert_eq!(tags[1].get("Key"), Some(&"k2"));
        let arns: Vec<_> = q
            .structs("PolicyArns")
            .into_iter()
            .map(|m| m["arn"])
            .collect();
        assert_eq!(arns, ["y", "x"]);
    }

    #[test]
    fn a_missing_action_or_member_is_refused_as_aws_words_it() {
        let e = QueryRequest::parse(None, b"Version=1").unwrap_err();
        assert_eq!(e.code, "MissingAction");
        let q = QueryRequest::parse(None, b"Action=GetRole").unwrap();
        let e = q.required("RoleName").unwrap_err();
        assert_eq!(e.code, "ValidationError");
        assert!(e.message.contains("'roleName'"), "{}", e.message);
    }

    #[test]
    fn ec2_lists_and_nested_structures_are_read_in_order() {
        let q = QueryRequest::parse(
            None,
            b"Action=DescribeVpcs&VpcId.2=vpc-b&VpcId.1=vpc-a&Filter.1.Name=tag%3AName&Filter.1.Value.2=y&Filter.1.Value.1=x&Filter.2.Name=isDefault&Filter.2.Value.1=true",
        )
        .unwrap();
        assert_eq!(q.ec2_list("VpcId"), ["vpc-a", "vpc-b"]);
        let filters = q.ec2_items("Filter");
        assert_eq!(filters.len(), 2);
        assert_eq!(filters[0].get("Name"), Some("tag:Name"));
        assert_eq!(filters[0].ec2_list("Value"), ["x", "y"]);
        assert_eq!(filters[1].ec2_list("Value"), ["true"]);
    }

    #[tokio::test]
    async fn ec2_answers_have_no_result_wrapper_and_errors_their_own_shape() {
        let mut x = Xml::default();
        x.items("vpcSet", ["vpc-1"], |x, id| {
            x.leaf("vpcId", id);
        });
        let ok = response(EC2, "DescribeVpcs", "r-1", Some(x));
        let body = axum::body::to_bytes(ok.into_body(), 1 << 20).await.unwrap();
        assert_eq!(
            std::str::from_utf8(&body).unwrap(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DescribeVpcsResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>r-1</requestId><vpcSet><item><vpcId>vpc-1</vpcId></item></vpcSet></DescribeVpcsResponse>"
        );
        let e = AwsError::client("InvalidVpcID.NotFound", "The vpc ID 'vpc-1' does not exist");
        let err = error_response(EC2, &e, "r-2");
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        let body = axum::body::to_bytes(err.into_body(), 1 << 20)
            .await
            .unwrap();
        assert_eq!(
            std::str::from_utf8(&body).unwrap(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>InvalidVpcID.NotFound</Code><Message>The vpc ID &apos;vpc-1&apos; does not exist</Message></Error></Errors><RequestID>r-2</RequestID></Response>"
        );
    }

    #[test]
    fn parameters_become_a_document() {
        let q = QueryRequest::parse(
            None,
            b"Action=PutMetricData&Namespace=App&MetricData.member.2.MetricName=B&MetricData.member.1.MetricName=A&MetricData.member.1.Dimensions.member.1.Name=Host&MetricData.member.1.Dimensions.member.1.Value=h1&MetricData.member.1.Value=1.5&Tags.entry.1.key=k&Tags.entry.1.value=v",
        )
        .unwrap();
        let doc = q.document();
        assert_eq!(doc.string("Namespace").unwrap().as_deref(), Some("App"));
        let data = doc.list("MetricData").unwrap();
        assert_eq!(data.len(), 2);
        assert_eq!(data[0].string("MetricName").unwrap().as_deref(), Some("A"));
        assert_eq!(data[0].double("Value").unwrap(), Some(1.5));
        let dims = data[0].list("Dimensions").unwrap();
        assert_eq!(dims[0].string("Value").unwrap().as_deref(), Some("h1"));
        assert_eq!(data[1].string("MetricName").unwrap().as_deref(), Some("B"));
        assert_eq!(
            doc.get("Tags"),
            Some(&Document::Map(vec![(
                "k".into(),
                Document::Text("v".into())
            )]))
        );
    }

    #[test]
    fn documents_are_written_as_query_xml() {
        let doc = Members::new()
            .with("Label", "Latency")
            .with(
                "Datapoints",
                vec![
                    Members::new()
                        .with("Timestamp", Document::Timestamp(1_796_637_600.0))
                        .with("Sum", 2.5)
                        .with(
                            "ExtendedStatistics",
                            Document::Map(vec![("p99".into(), Document::Double(3.0))]),
                        )
                        .build(),
                ],
            )
            .build();
        let mut x = Xml::default();
        x.document(&doc);
        assert_eq!(
            x.into_string(),
            "<Label>Latency</Label><Datapoints><member><Timestamp>2026-12-07T10:00:00Z</Timestamp><Sum>2.5</Sum><ExtendedStatistics><entry><key>p99</key><value>3</value></entry></ExtendedStatistics></member></Datapoints>"
        );
    }

    #[test]
    fn query_requests_are_told_apart() {
        assert!(is_query(
            "POST",
            Some("application/x-www-form-urlencoded; charset=utf-8"),
            None
        ));
        assert!(is_query(
            "GET",
            None,
            Some("Action=GetCallerIdentity&Version=2011-06-15")
        ));
        assert!(!is_query("POST", Some("application/x-amz-json-1.1"), None));
    }

    #[test]
    fn text_is_escaped_and_lists_use_members() {
        let mut x = Xml::default();
        x.leaf("Message", "a<b & \"c\"")
            .members("Names", ["x", "y"], |x, n| {
                x.buf.push_str(n);
            });
        assert_eq!(
            x.into_string(),
            "<Message>a&lt;b &amp; &quot;c&quot;</Message><Names><member>x</member><member>y</member></Names>"
        );
    }
}
