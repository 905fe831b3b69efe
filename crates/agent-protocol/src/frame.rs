//! The envelope every frame travels in, `{"type": "<ShapeName>", "message": {...}}`, and the
//! macro that declares one enum per direction over it.
//!
//! The Go agent writes the envelope with `encoding/json` (`wsclient.RequestMessage`, `type`
//! first) and reads it the same way (`wsclient.DecodeData`); we write the same bytes.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::AcsError;

#[derive(Serialize)]
struct OutFrame<'a, T: Serialize> {
    #[serde(rename = "type")]
    type_name: &'a str,
    message: &'a T,
}

pub(crate) fn encode<T: Serialize>(type_name: &str, message: &T) -> String {
    // Our shapes have string map keys and infallible members, so this cannot fail.
    serde_json::to_string(&OutFrame { type_name, message }).expect("wire shapes serialise")
}

/// The frame text is the envelope itself (every direction but TCS agent frames).
pub(crate) fn whole_text(text: &str) -> Result<&str, AcsError> {
    Ok(text)
}

/// The frame's `type` and raw `message`. A `null` message reads as `{}`, as Go's
/// `json.Unmarshal` leaves the target empty for `null`.
pub(crate) fn split(text: &str) -> Result<(String, Value), AcsError> {
    let mut frame: serde_json::Map<String, Value> =
        serde_json::from_str(text).map_err(AcsError::Json)?;
    let type_name = match frame.remove("type") {
        Some(Value::String(name)) if !name.is_empty() => name,
        _ => return Err(AcsError::MissingType),
    };
    match frame.remove("message") {
        Some(Value::Null) => Ok((type_name, Value::Object(Default::default()))),
        Some(message) => Ok((type_name, message)),
        None => Err(AcsError::MissingMessage { type_name }),
    }
}

/// Reads a `message` into its shape. `lenient` is for frames the agent writes: agents built
/// on the AWS SDK for Go v2 marshal SDK structs that carry no JSON tags, so their members
/// arrive capitalised (`MessageId`); Go's own decoder matches names case-insensitively, so we
/// lower each member's first letter before matching. Agent frames carry no free-form maps,
/// so no user data is renamed.
pub(crate) fn parse_message<T: DeserializeOwned>(
    type_name: &str,
    mut message: Value,
    lenient: bool,
) -> Result<T, AcsError> {
    if lenient {
        lower_first_letters(&mut message);
    }
    serde_json::from_value(message).map_err(|source| AcsError::Message {
        type_name: type_name.to_owned(),
        source,
    })
}

fn lower_first_letters(value: &mut Value) {
    match value {
        Value::Object(members) => {
            for (name, mut member) in std::mem::take(members) {
                lower_first_letters(&mut member);
                let mut chars = name.chars();
                let name = match chars.next() {
                    Some(first) if first.is_ascii_uppercase() => {
                        first.to_ascii_lowercase().to_string() + chars.as_str()
                    }
                    _ => name,
                };
                members.insert(name, member);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(lower_first_letters),
        _ => {}
    }
}

/// Declares a direction's message enum: one variant per shape, the shape's wire name (and
/// any names older or newer agents use for the same shape, accepted on decode only), plus
/// `Unknown`, with `type_name`, `encode` and `decode`. `lenient` is passed to
/// [`parse_message`]; `body` finds the envelope in the frame text ([`whole_text`] unless the
/// direction prefixes something).
macro_rules! frame_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident (lenient = $lenient:expr, body = $body:path) {
            $(
                $(#[$vmeta:meta])*
                $variant:ident($shape:ty) = $wire:literal $(| $alias:literal)*,
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        pub enum $name {
            $( $(#[$vmeta])* $variant($shape), )*
            /// A `type` this crate does not model, kept whole so it can be logged or relayed.
            Unknown {
                type_name: String,
                message: serde_json::Value,
            },
        }

        impl $name {
            /// The `type` this message travels under.
            pub fn type_name(&self) -> &str {
                match self {
                    $( Self::$variant(_) => $wire, )*
                    Self::Unknown { type_name, .. } => type_name,
                }
            }

            /// The websocket text frame, `{"type": ..., "message": {...}}`.
            pub fn encode(&self) -> String {
                match self {
                    $( Self::$variant(message) => $crate::frame::encode($wire, message), )*
                    Self::Unknown { type_name, message } => $crate::frame::encode(type_name, message),
                }
            }

            /// Reads a websocket text frame.
            pub fn decode(text: &str) -> Result<Self, $crate::AcsError> {
                let (type_name, message) = $crate::frame::split($body(text)?)?;
                match type_name.as_str() {
                    $(
                        $wire $(| $alias)* => {
                            $crate::frame::parse_message(&type_name, message, $lenient).map(Self::$variant)
                        }
                    )*
                    _ => Ok(Self::Unknown { type_name, message }),
                }
            }
        }

    };
}

pub(crate) use frame_enum;

/// `endpoint` + `/` (unless it ends in one) + `ws?` + `query`, as both the ACS and the TCS
/// clients join them.
pub(crate) fn ws_url(endpoint: &str, query: &str) -> String {
    let slash = if endpoint.ends_with('/') { "" } else { "/" };
    format!("{endpoint}{slash}ws?{query}")
}

/// Declares a model structure whose members are all optional, as nearly all are: named as on
/// the wire (camelCase unless a member says otherwise), absent members never written.
/// Shapes with required members are written out by hand.
macro_rules! shape {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[$fmeta:meta])*
                $field:ident: $ty:ty,
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        pub struct $name {
            $(
                $(#[$fmeta])*
                #[serde(skip_serializing_if = "Option::is_none")]
                pub $field: Option<$ty>,
            )*
        }
    };
}

pub(crate) use shape;
