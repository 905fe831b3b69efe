//! JSON 1.0 answers written straight from the answer's `Document` (timestamps as epoch
//! seconds, blobs in base64, as `Document::to_json` has them), without building a
//! `serde_json::Value` tree first: a GetMetricData answer holds up to 100,800 datapoints.

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

use crate::protocol::document::Document;

/// A document as serde serialises it.
pub(super) struct Json<'a>(pub &'a Document);

impl Serialize for Json<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Document::Null => s.serialize_unit(),
            Document::Bool(b) => s.serialize_bool(*b),
            Document::Int(i) => s.serialize_i64(*i),
            // serde_json writes a number that is not finite as null, as `to_json` does.
            Document::Double(f) | Document::Timestamp(f) => s.serialize_f64(*f),
            Document::Text(text) => s.serialize_str(text),
            Document::Blob(bytes) => {
                use base64::Engine;
                s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
            }
            Document::List(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&Json(item))?;
                }
                seq.end()
            }
            Document::Struct(members) | Document::Map(members) => {
                let mut map = s.serialize_map(Some(members.len()))?;
                for (k, v) in members {
                    map.serialize_entry(k, &Json(v))?;
                }
                map.end()
            }
        }
    }
}

/// The document as JSON text.
pub(super) fn to_vec(doc: &Document) -> Vec<u8> {
    serde_json::to_vec(&Json(doc)).expect("a document serialises")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::document::Members;

    #[test]
    fn written_as_to_json_has_it() {
        let doc = Members::new()
            .with("Id", "m1")
            .with(
                "Timestamps",
                vec![
                    Document::Timestamp(1_796_637_600.0),
                    Document::Timestamp(1_796_637_600.5),
                ],
            )
            .with(
                "Values",
                vec![
                    Document::Double(2.5),
                    Document::Double(f64::NAN),
                    Document::Int(-3),
                ],
            )
            .with("Blob", Document::Blob(b"hi".to_vec()))
            .with("Flag", Document::Bool(true))
            .with("Nothing", Document::Null)
            .with(
                "Map",
                Document::Map(vec![("k".into(), Document::Text("v\"".into()))]),
            )
            .build();
        let written: serde_json::Value = serde_json::from_slice(&to_vec(&doc)).unwrap();
        assert_eq!(written, doc.to_json());
        assert_eq!(
            String::from_utf8(to_vec(&Document::List(vec![Document::Timestamp(1.0)]))).unwrap(),
            "[1.0]"
        );
    }
}
