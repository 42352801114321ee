//! One channel's messages as values: ROS 2 CDR (`ros2msg` schemas), protobuf (a
//! `FileDescriptorSet` schema, through `prost-reflect`) and JSON (with or without a JSON
//! Schema). A message becomes its leaves: each numeric, boolean, byte or text field, nested
//! fields named `a.b`; time stamps and headers are left out (an item's time is its message's
//! MCAP log time).

use base64::Engine;
use prost_reflect::{DescriptorPool, DynamicMessage, Kind, MessageDescriptor, ReflectMessage};

use crate::meta::DType;

/// The values of one field.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Values {
    Float(Vec<f64>),
    Int(Vec<i64>),
    Bool(Vec<bool>),
    /// Bytes (`uint8[]`, protobuf `bytes`, base64 text of a JSON image's `data`).
    Bytes(Vec<u8>),
    Text(Vec<String>),
}

impl Values {
    pub fn len(&self) -> usize {
        match self {
            Values::Float(v) => v.len(),
            Values::Int(v) => v.len(),
            Values::Bool(v) => v.len(),
            Values::Bytes(v) => v.len(),
            Values::Text(v) => v.len(),
        }
    }
}

/// One field of a decoded message.
#[derive(Debug, Clone)]
pub(crate) struct Leaf {
    /// `a.b` below the message.
    pub path: String,
    /// The schema's type of the values (None: text).
    pub dtype: Option<DType>,
    /// A list (its length may vary between messages) rather than one value.
    pub array: bool,
    pub values: Values,
}

/// How one channel's messages are decoded.
#[derive(Debug)]
pub(crate) enum Decoder {
    Ros2(super::ros2::Schema),
    Protobuf(MessageDescriptor),
    Json,
}

impl Decoder {
    /// The decoder of a channel of `message_encoding` whose schema is (`name`, `encoding`,
    /// `data`); an error says why the channel cannot be read.
    pub fn new(
        message_encoding: &str,
        schema: Option<(&str, &str, &[u8])>,
    ) -> Result<Decoder, String> {
        match (message_encoding, schema) {
            ("cdr", Some((name, "ros2msg", data))) => {
                let text = std::str::from_utf8(data)
                    .map_err(|_| "its ros2msg schema is not UTF-8 text".to_string())?;
                Ok(Decoder::Ros2(super::ros2::Schema::parse(name, text)?))
            }
            ("cdr", Some((_, other, _))) => Err(format!(
                "CDR messages with a '{other}' schema (roboframes reads 'ros2msg' schemas)"
            )),
            ("protobuf", Some((name, "protobuf", data))) => {
                let pool = DescriptorPool::decode(data)
                    .map_err(|e| format!("its protobuf schema is not a FileDescriptorSet: {e}"))?;
                let desc = pool
                    .get_message_by_name(name)
                    .ok_or_else(|| format!("its schema does not define the message '{name}'"))?;
                Ok(Decoder::Protobuf(desc))
            }
            ("json", _) => Ok(Decoder::Json),
            (enc, None) => Err(format!("'{enc}' messages without a schema")),
            (enc, Some((_, schema_enc, _))) => Err(format!(
                "'{enc}' messages with a '{schema_enc}' schema (roboframes reads ros2msg/cdr, \
                 protobuf and json)"
            )),
        }
    }

    /// The leaves of one message.
    pub fn decode(&self, data: &[u8]) -> Result<Vec<Leaf>, String> {
        match self {
            Decoder::Ros2(s) => s.decode(data),
            Decoder::Protobuf(desc) => {
                let m = DynamicMessage::decode(desc.clone(), data)
                    .map_err(|e| format!("not a '{}' protobuf message: {e}", desc.full_name()))?;
                let mut out = Vec::new();
                proto_leaves(&m, "", &mut out, 0)?;
                Ok(out)
            }
            Decoder::Json => {
                let v: serde_json::Value =
                    serde_json::from_slice(data).map_err(|e| format!("not a JSON message: {e}"))?;
                let mut out = Vec::new();
                json_leaves(&v, "", &mut out, 0)?;
                Ok(out)
            }
        }
    }
}

/// Nesting deeper than this is not a recording's message.
const MAX_DEPTH: usize = 32;

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

/// Protobuf message types that hold a time, not data.
fn is_proto_time(name: &str) -> bool {
    matches!(
        name,
        "google.protobuf.Timestamp" | "google.protobuf.Duration"
    )
}

fn proto_leaves(
    m: &DynamicMessage,
    prefix: &str,
    out: &mut Vec<Leaf>,
    depth: usize,
) -> Result<(), String> {
    use prost_reflect::Value as V;
    if depth > MAX_DEPTH {
        return Err("messages nest too deep".into());
    }
    for field in m.descriptor().fields() {
        // a field that tracks presence and is not set (an optional, a oneof's other member,
        // a submessage) has no value: its default is not data
        if field.supports_presence() && !m.has_field(&field) {
            continue;
        }
        let path = join(prefix, field.name());
        let value = m.get_field(&field);
        let list = field.is_list();
        let kind = field.kind();
        let dtype = match &kind {
            Kind::Double => Some(DType::F64),
            Kind::Float => Some(DType::F32),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 | Kind::Enum(_) => Some(DType::I32),
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Some(DType::I64),
            Kind::Uint32 | Kind::Fixed32 => Some(DType::U32),
            Kind::Uint64 | Kind::Fixed64 => Some(DType::U64),
            Kind::Bool => Some(DType::Bool),
            Kind::Bytes => Some(DType::U8),
            Kind::String => None,
            Kind::Message(desc) => {
                // time stamps, maps, and lists of messages are left out
                if !list && !field.is_map() && !is_proto_time(desc.full_name()) {
                    if let V::Message(inner) = value.as_ref() {
                        proto_leaves(inner, &path, out, depth + 1)?;
                    }
                }
                continue;
            }
        };
        if field.is_map() {
            continue;
        }
        let items: Vec<&V> = match value.as_ref() {
            V::List(l) => l.iter().collect(),
            v => vec![v],
        };
        let values = match &kind {
            Kind::Double | Kind::Float => Values::Float(
                items
                    .iter()
                    .map(|v| match v {
                        V::F64(x) => Ok(*x),
                        V::F32(x) => Ok(f64::from(*x)),
                        _ => Err(()),
                    })
                    .collect::<Result<_, _>>()
                    .map_err(|_| format!("'{path}' holds a value of another type"))?,
            ),
            Kind::Bool => Values::Bool(
                items
                    .iter()
                    .map(|v| v.as_bool().ok_or(()))
                    .collect::<Result<_, _>>()
                    .map_err(|_| format!("'{path}' holds a value of another type"))?,
            ),
            Kind::Bytes => match items.as_slice() {
                [V::Bytes(b)] => Values::Bytes(b.to_vec()),
                // (a repeated bytes field: not a numeric value)
                _ => continue,
            },
            Kind::String => Values::Text(
                items
                    .iter()
                    .map(|v| v.as_str().map(str::to_owned).ok_or(()))
                    .collect::<Result<_, _>>()
                    .map_err(|_| format!("'{path}' holds a value of another type"))?,
            ),
            _ => Values::Int(
                items
                    .iter()
                    .map(|v| match v {
                        V::I32(x) | V::EnumNumber(x) => Ok(i64::from(*x)),
                        V::I64(x) => Ok(*x),
                        V::U32(x) => Ok(i64::from(*x)),
                        V::U64(x) => i64::try_from(*x)
                            .map_err(|_| format!("'{path}' holds {x}, which does not fit int64")),
                        _ => Err(format!("'{path}' holds a value of another type")),
                    })
                    .collect::<Result<_, _>>()?,
            ),
        };
        out.push(Leaf {
            path,
            dtype,
            array: list,
            values,
        });
    }
    Ok(())
}

/// JSON fields that hold a time or a frame name (left out).
fn is_json_bookkeeping(name: &str) -> bool {
    matches!(name, "timestamp" | "header" | "stamp")
}

fn json_number(v: &serde_json::Value) -> Option<f64> {
    v.as_f64()
}

fn json_leaves(
    v: &serde_json::Value,
    prefix: &str,
    out: &mut Vec<Leaf>,
    depth: usize,
) -> Result<(), String> {
    use serde_json::Value as J;
    if depth > MAX_DEPTH {
        return Err("objects nest too deep".into());
    }
    let J::Object(map) = v else {
        return Err(if prefix.is_empty() {
            "a JSON message that is not an object".to_string()
        } else {
            format!("'{prefix}' is not an object")
        });
    };
    for (name, value) in map {
        let path = join(prefix, name);
        let leaf = |dtype, array, values| Leaf {
            path: path.clone(),
            dtype,
            array,
            values,
        };
        match value {
            J::Object(_) if is_json_bookkeeping(name) => {}
            J::Object(_) => json_leaves(value, &path, out, depth + 1)?,
            J::Number(_) => out.push(leaf(
                Some(DType::F64),
                false,
                Values::Float(vec![json_number(value).unwrap_or(f64::NAN)]),
            )),
            J::Bool(b) => out.push(leaf(Some(DType::Bool), false, Values::Bool(vec![*b]))),
            J::String(s) => {
                // an image's `data` is base64 text (Foxglove's JSON schemas)
                let values = if name == "data" {
                    match base64::engine::general_purpose::STANDARD.decode(s) {
                        Ok(b) => Values::Bytes(b),
                        Err(_) => Values::Text(vec![s.clone()]),
                    }
                } else {
                    Values::Text(vec![s.clone()])
                };
                let dtype = matches!(values, Values::Bytes(_)).then_some(DType::U8);
                out.push(leaf(dtype, false, values));
            }
            J::Array(items) if items.iter().all(|i| i.is_number()) => out.push(leaf(
                Some(DType::F64),
                true,
                Values::Float(items.iter().filter_map(json_number).collect()),
            )),
            J::Array(items) if items.iter().all(|i| i.is_boolean()) && !items.is_empty() => out
                .push(leaf(
                    Some(DType::Bool),
                    true,
                    Values::Bool(items.iter().filter_map(|i| i.as_bool()).collect()),
                )),
            // arrays of objects or of mixed values, and nulls, are not numeric fields
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_messages() {
        let d = Decoder::new("json", None).expect("json");
        let leaves = d
            .decode(br#"{"timestamp": {"sec": 1, "nsec": 2}, "q": [0.5, 1], "g": {"open": true}}"#)
            .expect("decode");
        let paths: Vec<&str> = leaves.iter().map(|l| l.path.as_str()).collect();
        assert_eq!(paths, vec!["q", "g.open"]);
        assert_eq!(leaves[0].values, Values::Float(vec![0.5, 1.0]));
        assert!(d.decode(b"[1, 2]").is_err());
        assert!(d.decode(b"{").is_err());
    }

    #[test]
    fn unknown_encodings_are_named() {
        let e = Decoder::new("flatbuffer", Some(("T", "flatbuffer", b""))).expect_err("refused");
        assert!(e.contains("flatbuffer"), "{e}");
        let e = Decoder::new("protobuf", Some(("a.B", "protobuf", b"\xff\xff"))).expect_err("bad");
        assert!(e.contains("FileDescriptorSet"), "{e}");
    }
}
