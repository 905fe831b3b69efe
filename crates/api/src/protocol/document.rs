//! Smithy's data model, apart from any wire: a request decoded from CBOR (`rpcv2cbor`) or
//! from Query parameters (`QueryRequest::document`) is read with one set of accessors, and
//! an answer built once is written as CBOR or as Query XML (`Xml::document`). A service
//! speaking several protocols (CloudWatch) parses and answers each operation once.

use crate::protocol::AwsError;

#[derive(Debug, Clone, PartialEq)]
pub enum Document {
    Null,
    Bool(bool),
    Int(i64),
    Double(f64),
    Text(String),
    Blob(Vec<u8>),
    /// Seconds since the epoch.
    Timestamp(f64),
    List(Vec<Document>),
    /// A structure's members, in the model's order.
    Struct(Vec<(String, Document)>),
    /// A map's entries.
    Map(Vec<(String, Document)>),
}

/// A structure's members as they are built: absent optional members are left out.
#[derive(Debug, Default)]
pub struct Members(Vec<(String, Document)>);

impl Members {
    pub fn new() -> Members {
        Members::default()
    }

    pub fn with(mut self, name: &str, value: impl Into<Document>) -> Members {
        self.0.push((name.to_string(), value.into()));
        self
    }

    pub fn with_opt(self, name: &str, value: Option<impl Into<Document>>) -> Members {
        match value {
            Some(v) => self.with(name, v),
            None => self,
        }
    }

    pub fn build(self) -> Document {
        Document::Struct(self.0)
    }
}

impl From<&str> for Document {
    fn from(s: &str) -> Document {
        Document::Text(s.to_string())
    }
}

impl From<String> for Document {
    fn from(s: String) -> Document {
        Document::Text(s)
    }
}

impl From<f64> for Document {
    fn from(v: f64) -> Document {
        Document::Double(v)
    }
}

impl From<Vec<Document>> for Document {
    fn from(items: Vec<Document>) -> Document {
        Document::List(items)
    }
}

/// A request member of the wrong type: the protocol's own error.
fn mistyped(name: &str, wanted: &str) -> AwsError {
    AwsError::client(
        "SerializationException",
        format!("Member {name} must be {wanted}."),
    )
}

impl Document {
    /// A structure's (or map's) member.
    pub fn get(&self, name: &str) -> Option<&Document> {
        match self {
            Document::Struct(members) | Document::Map(members) => members
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v)
                .filter(|v| !matches!(v, Document::Null)),
            _ => None,
        }
    }

    pub fn string(&self, name: &str) -> Result<Option<String>, AwsError> {
        match self.get(name) {
            None => Ok(None),
            Some(Document::Text(s)) => Ok(Some(s.clone())),
            Some(_) => Err(mistyped(name, "a string")),
        }
    }

    pub fn double(&self, name: &str) -> Result<Option<f64>, AwsError> {
        self.get(name).map(|v| v.as_double(name)).transpose()
    }

    /// The document itself as a number (a Query parameter is text).
    pub fn as_double(&self, name: &str) -> Result<f64, AwsError> {
        match self {
            Document::Double(v) => Ok(*v),
            Document::Int(v) => Ok(*v as f64),
            Document::Text(s) => s.trim().parse().map_err(|_| mistyped(name, "a number")),
            _ => Err(mistyped(name, "a number")),
        }
    }

    pub fn integer(&self, name: &str) -> Result<Option<i64>, AwsError> {
        match self.get(name) {
            None => Ok(None),
            Some(Document::Int(v)) => Ok(Some(*v)),
            Some(Document::Double(v)) if v.fract() == 0.0 => Ok(Some(*v as i64)),
            Some(Document::Text(s)) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| mistyped(name, "an integer")),
            Some(_) => Err(mistyped(name, "an integer")),
        }
    }

    pub fn boolean(&self, name: &str) -> Result<Option<bool>, AwsError> {
        match self.get(name) {
            None => Ok(None),
            Some(Document::Bool(b)) => Ok(Some(*b)),
            Some(Document::Text(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(Document::Text(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(_) => Err(mistyped(name, "a boolean")),
        }
    }

    /// A timestamp in milliseconds: CBOR's tag 1 (or a bare number) in seconds, or the
    /// Query protocol's ISO 8601 text.
    pub fn timestamp_ms(&self, name: &str) -> Result<Option<i64>, AwsError> {
        match self.get(name) {
            None => Ok(None),
            Some(Document::Timestamp(s) | Document::Double(s)) => {
                Ok(Some((s * 1000.0).round() as i64))
            }
            Some(Document::Int(s)) => Ok(Some(s.saturating_mul(1000))),
            Some(Document::Text(text)) => parse_time(text)
                .map(Some)
                .ok_or_else(|| mistyped(name, "a timestamp")),
            Some(_) => Err(mistyped(name, "a timestamp")),
        }
    }

    /// A list member's items (none when absent).
    pub fn list(&self, name: &str) -> Result<&[Document], AwsError> {
        match self.get(name) {
            None => Ok(&[]),
            Some(Document::List(items)) => Ok(items),
            // The Query protocol's empty list: `Name=`.
            Some(Document::Text(t)) if t.is_empty() => Ok(&[]),
            Some(_) => Err(mistyped(name, "a list")),
        }
    }

    /// A structure member.
    pub fn structure(&self, name: &str) -> Result<Option<&Document>, AwsError> {
        match self.get(name) {
            None => Ok(None),
            Some(d @ (Document::Struct(_) | Document::Map(_))) => Ok(Some(d)),
            Some(_) => Err(mistyped(name, "a structure")),
        }
    }
}

impl Document {
    /// A JSON body's value as a document (AWS JSON 1.0: timestamps are epoch-second
    /// numbers, which the accessors read as timestamps).
    pub fn from_json(value: serde_json::Value) -> Document {
        use serde_json::Value;
        match value {
            Value::Null => Document::Null,
            Value::Bool(b) => Document::Bool(b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => Document::Int(i),
                None => Document::Double(n.as_f64().unwrap_or(f64::NAN)),
            },
            Value::String(s) => Document::Text(s),
            Value::Array(items) => {
                Document::List(items.into_iter().map(Document::from_json).collect())
            }
            Value::Object(members) => Document::Struct(
                members
                    .into_iter()
                    .map(|(k, v)| (k, Document::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// The document as JSON: timestamps as epoch seconds, blobs in base64.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a document serialises")
    }

    /// The document as JSON text, written straight from it (a GetMetricData answer holds
    /// up to 100,800 datapoints: no `serde_json::Value` tree in between).
    pub fn to_json_vec(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a document serialises")
    }
}

/// JSON as the JSON protocols write it: timestamps as epoch seconds, blobs in base64, a
/// number that is not finite as null (serde_json's choice).
impl serde::Serialize for Document {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self {
            Document::Null => s.serialize_unit(),
            Document::Bool(b) => s.serialize_bool(*b),
            Document::Int(i) => s.serialize_i64(*i),
            Document::Double(f) | Document::Timestamp(f) => s.serialize_f64(*f),
            Document::Text(text) => s.serialize_str(text),
            Document::Blob(bytes) => {
                use base64::Engine;
                s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
            }
            Document::List(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Document::Struct(members) | Document::Map(members) => {
                let mut map = s.serialize_map(Some(members.len()))?;
                for (k, v) in members {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

/// `2026-12-07T10:00:00Z` (milliseconds shown when there are some).
pub fn iso8601(secs: f64) -> String {
    let ms = (secs * 1000.0).round() as i128;
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp_nanos(ms * 1_000_000) else {
        return secs.to_string();
    };
    let written = if ms % 1000 == 0 {
        t.format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
        ))
    } else {
        t.format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        ))
    };
    written.unwrap_or_else(|_| secs.to_string())
}

/// ISO 8601 / RFC 3339 text (a zone or `Z`; none read as UTC), or epoch seconds, in ms.
fn parse_time(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<f64>() {
        return Some((secs * 1000.0).round() as i64);
    }
    let parsed = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .or_else(|_| {
            time::PrimitiveDateTime::parse(
                text,
                &time::format_description::well_known::Iso8601::DEFAULT,
            )
            .map(|t| t.assume_utc())
        })
        .ok()?;
    Some((parsed.unix_timestamp_nanos() / 1_000_000) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_bodies_become_documents_and_back() {
        let doc = Document::from_json(serde_json::json!({
            "StartTime": 1796637600, "Period": 60, "Value": 1.5, "Names": ["a"], "On": true
        }));
        assert_eq!(
            doc.timestamp_ms("StartTime").unwrap(),
            Some(1_796_637_600_000)
        );
        assert_eq!(doc.integer("Period").unwrap(), Some(60));
        assert_eq!(doc.double("Value").unwrap(), Some(1.5));
        assert_eq!(doc.boolean("On").unwrap(), Some(true));
        let answer = Members::new()
            .with("Timestamp", Document::Timestamp(1_796_637_600.5))
            .with("Sum", 2.0)
            .build();
        assert_eq!(
            answer.to_json(),
            serde_json::json!({"Timestamp": 1796637600.5, "Sum": 2.0})
        );
    }

    #[test]
    fn members_read_from_text_or_typed_values() {
        let doc = Document::Struct(vec![
            ("A".into(), Document::Text("1.5".into())),
            ("B".into(), Document::Double(2.0)),
            ("T".into(), Document::Text("2026-12-07T10:00:00Z".into())),
            ("U".into(), Document::Timestamp(1_796_637_600.5)),
            ("F".into(), Document::Text("true".into())),
        ]);
        assert_eq!(doc.double("A").unwrap(), Some(1.5));
        assert_eq!(doc.integer("B").unwrap(), Some(2));
        assert_eq!(doc.timestamp_ms("T").unwrap(), Some(1_796_637_600_000));
        assert_eq!(doc.timestamp_ms("U").unwrap(), Some(1_796_637_600_500));
        assert_eq!(doc.boolean("F").unwrap(), Some(true));
        assert_eq!(doc.string("Missing").unwrap(), None);
        assert_eq!(doc.list("A").unwrap_err().code, "SerializationException");
    }

    #[test]
    fn json_text_is_written_in_the_documents_order() {
        let doc = Members::new()
            .with("Id", "m1")
            .with(
                "Values",
                vec![
                    Document::Double(2.5),
                    Document::Double(f64::NAN),
                    Document::Int(-3),
                ],
            )
            .with("Timestamps", vec![Document::Timestamp(1_796_637_600.5)])
            .with("Blob", Document::Blob(b"hi".to_vec()))
            .with("Flag", Document::Bool(true))
            .with("Nothing", Document::Null)
            .with(
                "Map",
                Document::Map(vec![("k".into(), Document::Text("v\"".into()))]),
            )
            .build();
        assert_eq!(
            String::from_utf8(doc.to_json_vec()).unwrap(),
            r#"{"Id":"m1","Values":[2.5,null,-3],"Timestamps":[1796637600.5],"Blob":"aGk=","Flag":true,"Nothing":null,"Map":{"k":"v\""}}"#
        );
    }
}
