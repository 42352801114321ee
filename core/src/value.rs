//! Values returned as they are stored rather than as arrays: strings, and the nested values of
//! LeRobot 0.6's language columns (lists of structs of strings, numbers and lists), read from
//! Arrow the way pyarrow's `to_pylist` reads them.

use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, ArrayRef};
use arrow_schema::DataType;

/// One value of an item that is not an array.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    /// An unsigned integer beyond `i64` (stored as uint64).
    UInt(u64),
    /// A floating-point value (float32 values widened exactly).
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    /// A struct's fields, in schema order.
    Struct(Vec<(String, Value)>),
}

impl Value {
    /// The text of a string value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// The most nesting levels read (a language column has three; a file claiming hundreds is
/// damaged, and recursion must stay bounded).
const MAX_DEPTH: usize = 32;

/// Every row of `arr` as a [`Value`]; an Arrow type with no value form here is an error that
/// names it (never a guess).
pub fn column_values(arr: &ArrayRef) -> Result<Vec<Value>, String> {
    (0..arr.len())
        .map(|i| value_at(arr.as_ref(), i, 0))
        .collect()
}

fn value_at(arr: &dyn Array, i: usize, depth: usize) -> Result<Value, String> {
    if depth > MAX_DEPTH {
        return Err(format!("values nested more than {MAX_DEPTH} levels deep"));
    }
    if i >= arr.len() {
        return Err(format!("row {i} past the {} rows of a column", arr.len()));
    }
    if arr.is_null(i) {
        return Ok(Value::Null);
    }
    macro_rules! int {
        ($t:ty) => {
            Value::Int(i64::from(arr.as_primitive::<$t>().value(i)))
        };
    }
    let list = |values: ArrayRef, start: usize, end: usize| -> Result<Value, String> {
        (start..end)
            .map(|j| value_at(values.as_ref(), j, depth + 1))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::List)
    };
    Ok(match arr.data_type() {
        DataType::Null => Value::Null,
        DataType::Boolean => Value::Bool(arr.as_boolean().value(i)),
        DataType::Int8 => int!(Int8Type),
        DataType::Int16 => int!(Int16Type),
        DataType::Int32 => int!(Int32Type),
        DataType::Int64 => int!(Int64Type),
        DataType::UInt8 => int!(UInt8Type),
        DataType::UInt16 => int!(UInt16Type),
        DataType::UInt32 => int!(UInt32Type),
        DataType::UInt64 => {
            let v = arr.as_primitive::<UInt64Type>().value(i);
            i64::try_from(v).map_or(Value::UInt(v), Value::Int)
        }
        DataType::Float16 => Value::Float(f64::from(arr.as_primitive::<Float16Type>().value(i))),
        DataType::Float32 => Value::Float(f64::from(arr.as_primitive::<Float32Type>().value(i))),
        DataType::Float64 => Value::Float(arr.as_primitive::<Float64Type>().value(i)),
        DataType::Utf8 => Value::Str(arr.as_string::<i32>().value(i).to_owned()),
        DataType::LargeUtf8 => Value::Str(arr.as_string::<i64>().value(i).to_owned()),
        DataType::Utf8View => Value::Str(arr.as_string_view().value(i).to_owned()),
        DataType::Binary => Value::Bytes(arr.as_binary::<i32>().value(i).to_vec()),
        DataType::LargeBinary => Value::Bytes(arr.as_binary::<i64>().value(i).to_vec()),
        DataType::BinaryView => Value::Bytes(arr.as_binary_view().value(i).to_vec()),
        DataType::FixedSizeBinary(_) => Value::Bytes(arr.as_fixed_size_binary().value(i).to_vec()),
        DataType::List(_) => {
            let l = arr.as_list::<i32>();
            let o = l.value_offsets();
            let (a, b) = offsets(o.get(i).copied(), o.get(i + 1).copied())?;
            list(l.values().clone(), a, b)?
        }
        DataType::LargeList(_) => {
            let l = arr.as_list::<i64>();
            let o = l.value_offsets();
            let (a, b) = offsets(o.get(i).copied(), o.get(i + 1).copied())?;
            list(l.values().clone(), a, b)?
        }
        DataType::FixedSizeList(_, n) => {
            let l = arr.as_fixed_size_list();
            let n = usize::try_from(*n).map_err(|_| "negative list size".to_string())?;
            let start = i.checked_mul(n).ok_or("list offsets overflow")?;
            list(l.values().clone(), start, start + n)?
        }
        DataType::Struct(fields) => {
            let s = arr.as_struct();
            let mut out = Vec::with_capacity(fields.len());
            for (f, col) in fields.iter().zip(s.columns()) {
                out.push((f.name().clone(), value_at(col.as_ref(), i, depth + 1)?));
            }
            Value::Struct(out)
        }
        DataType::Dictionary(_, _) => {
            let plain = arrow_cast::cast(&arr.slice(i, 1), &dictionary_value_type(arr))
                .map_err(|e| format!("dictionary column: {e}"))?;
            value_at(plain.as_ref(), 0, depth + 1)?
        }
        other => return Err(format!("values of Arrow type {other} cannot be read")),
    })
}

/// The fields of a row of LeRobot 0.6's `language_persistent` column, in order, and whether each
/// is the float32 `timestamp` (`datasets/language.py`: `PERSISTENT_ROW_FIELDS`).
const PERSISTENT_FIELDS: [&str; 6] = [
    "role",
    "content",
    "style",
    "timestamp",
    "camera",
    "tool_calls",
];
/// The fields of a row of `language_events` (`EVENT_ROW_FIELDS`).
const EVENT_FIELDS: [&str; 5] = ["role", "content", "style", "camera", "tool_calls"];

/// The values of a language column as LeRobot 0.6's reader gives them: each row of
/// `language_persistent` / `language_events` cast to the column's canonical struct (its fields
/// in LeRobot's order, a field the file lacks as None, strings as strings, `timestamp` as a
/// float32, `tool_calls` a list of JSON-like values), which is what the Hugging Face `datasets`
/// features LeRobot loads the table with make of them. A field the canonical struct does not
/// have, or a value of another type, is an error (LeRobot's cast fails on it too). Other
/// language columns are returned as stored.
pub fn canonical_language(column: &str, values: Vec<Value>) -> Result<Vec<Value>, String> {
    let fields: &[&str] = match column {
        "language_persistent" => &PERSISTENT_FIELDS,
        "language_events" => &EVENT_FIELDS,
        _ => return Ok(values),
    };
    values
        .into_iter()
        .enumerate()
        .map(|(r, v)| match v {
            Value::Null => Ok(Value::Null),
            Value::List(rows) => rows
                .into_iter()
                .map(|row| canonical_row(fields, row))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::List)
                .map_err(|m| format!("row {r}: {m}")),
            other => Err(format!(
                "row {r}: a list of annotations was expected, found {}",
                kind(&other)
            )),
        })
        .collect()
}

fn canonical_row(fields: &[&str], row: Value) -> Result<Value, String> {
    let mut given = match row {
        Value::Struct(f) => f,
        Value::Null => return Ok(Value::Null),
        other => return Err(format!("an annotation is {}, not a struct", kind(&other))),
    };
    if let Some((extra, _)) = given.iter().find(|(k, _)| !fields.contains(&k.as_str())) {
        return Err(format!(
            "annotation field '{extra}' is not one of LeRobot's ({})",
            fields.join(", ")
        ));
    }
    let mut out = Vec::with_capacity(fields.len());
    for name in fields {
        let v = given
            .iter()
            .position(|(k, _)| k == name)
            .map(|i| given.swap_remove(i).1)
            .unwrap_or(Value::Null);
        let v = match (*name, v) {
            (_, Value::Null) => Value::Null,
            ("timestamp", Value::Float(t)) => Value::Float(f64::from(t as f32)),
            ("timestamp", Value::Int(t)) => Value::Float(f64::from(t as f32)),
            ("tool_calls", Value::List(calls)) => Value::List(
                calls
                    .into_iter()
                    .map(tool_call)
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            ("timestamp" | "tool_calls", other) => {
                return Err(format!("annotation field '{name}' holds {}", kind(&other)))
            }
            (_, v @ Value::Str(_)) => v,
            (_, other) => {
                return Err(format!(
                    "annotation field '{name}' holds {}, not a string",
                    kind(&other)
                ))
            }
        };
        out.push(((*name).to_owned(), v));
    }
    Ok(Value::Struct(out))
}

/// One element of `tool_calls` as LeRobot's `datasets.Json()` feature decodes it: JSON text (the
/// column's declared type, `pa.json_()`) parsed into values, other values (the structs
/// pyarrow infers when the annotation writer leaves the type to it) as they are.
fn tool_call(v: Value) -> Result<Value, String> {
    match v {
        Value::Str(text) => serde_json::from_str::<serde_json::Value>(&text)
            .map(from_json)
            .map_err(|e| format!("a tool call is not valid JSON ({e}): {text}")),
        other => Ok(other),
    }
}

/// A parsed JSON value as a [`Value`] (integers as integers, other numbers as floats, objects
/// with their keys in order), as Python's `json.loads` gives it.
fn from_json(v: serde_json::Value) -> Value {
    use serde_json::Value as J;
    match v {
        J::Null => Value::Null,
        J::Bool(b) => Value::Bool(b),
        J::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Value::Int(i),
            (None, Some(u), _) => Value::UInt(u),
            (_, _, f) => Value::Float(f.unwrap_or(f64::NAN)),
        },
        J::String(s) => Value::Str(s),
        J::Array(a) => Value::List(a.into_iter().map(from_json).collect()),
        J::Object(o) => Value::Struct(o.into_iter().map(|(k, v)| (k, from_json(v))).collect()),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Int(_) | Value::UInt(_) => "an integer",
        Value::Float(_) => "a number",
        Value::Str(_) => "a string",
        Value::Bytes(_) => "bytes",
        Value::List(_) => "a list",
        Value::Struct(_) => "a struct",
    }
}

fn dictionary_value_type(arr: &dyn Array) -> DataType {
    match arr.data_type() {
        DataType::Dictionary(_, v) => v.as_ref().clone(),
        other => other.clone(),
    }
}

fn offsets<O: arrow_array::OffsetSizeTrait>(
    a: Option<O>,
    b: Option<O>,
) -> Result<(usize, usize), String> {
    match (a, b) {
        (Some(a), Some(b)) if a <= b => Ok((a.as_usize(), b.as_usize())),
        _ => Err("list offsets out of order".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_rows_take_lerobots_canonical_shape() {
        let row = Value::Struct(vec![
            ("role".into(), Value::Str("assistant".into())),
            ("timestamp".into(), Value::Float(0.1)),
            ("content".into(), Value::Str("plan".into())),
        ]);
        let out = canonical_language("language_persistent", vec![Value::List(vec![row])]).unwrap();
        let Value::List(rows) = &out[0] else { panic!() };
        let Value::Struct(f) = &rows[0] else { panic!() };
        let names: Vec<&str> = f.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, PERSISTENT_FIELDS);
        assert_eq!(f[3].1, Value::Float(f64::from(0.1f32)));
        assert_eq!(f[2].1, Value::Null); // style: absent
        let extra = Value::Struct(vec![("mood".into(), Value::Str("x".into()))]);
        assert!(canonical_language("language_events", vec![Value::List(vec![extra])]).is_err());
        let bad = Value::Struct(vec![("role".into(), Value::Int(3))]);
        assert!(canonical_language("language_events", vec![Value::List(vec![bad])]).is_err());
        // tool calls stored as JSON text (LeRobot's declared type) are parsed, as its Json()
        // feature does; text that is no JSON is an error
        let call = |t: &str| {
            Value::List(vec![Value::Struct(vec![
                ("role".into(), Value::Str("assistant".into())),
                ("tool_calls".into(), Value::List(vec![Value::Str(t.into())])),
            ])])
        };
        let out = canonical_language(
            "language_events",
            vec![call(
                r#"{"type": "function", "function": {"name": "say", "n": 2, "x": 0.5}}"#,
            )],
        )
        .unwrap();
        let Value::List(rows) = &out[0] else { panic!() };
        let Value::Struct(f) = &rows[0] else { panic!() };
        let Value::List(calls) = &f[4].1 else {
            panic!()
        };
        let Value::Struct(c) = &calls[0] else {
            panic!()
        };
        assert_eq!(c[0], ("type".into(), Value::Str("function".into())));
        let Value::Struct(func) = &c[1].1 else {
            panic!()
        };
        assert_eq!(func[1].1, Value::Int(2));
        assert_eq!(func[2].1, Value::Float(0.5));
        assert!(canonical_language("language_events", vec![call("{not json")]).is_err());
    }
    use arrow_array::builder::{Float32Builder, ListBuilder, StringBuilder, StructBuilder};
    use arrow_schema::Field;
    use std::sync::Arc;

    #[test]
    fn reads_lists_of_structs_as_pyarrow_does() {
        let fields = vec![
            Field::new("role", DataType::Utf8, false),
            Field::new("timestamp", DataType::Float32, true),
        ];
        let mut b = ListBuilder::new(StructBuilder::from_fields(fields, 0));
        {
            let s = b.values();
            s.field_builder::<StringBuilder>(0)
                .unwrap()
                .append_value("assistant");
            s.field_builder::<Float32Builder>(1)
                .unwrap()
                .append_value(0.1);
            s.append(true);
        }
        b.append(true);
        b.append(true); // an empty list
        b.append_null();
        let arr: ArrayRef = Arc::new(b.finish());
        let v = column_values(&arr).unwrap();
        assert_eq!(
            v[0],
            Value::List(vec![Value::Struct(vec![
                ("role".into(), Value::Str("assistant".into())),
                ("timestamp".into(), Value::Float(f64::from(0.1f32))),
            ])])
        );
        assert_eq!(v[1], Value::List(vec![]));
        assert_eq!(v[2], Value::Null);
    }
}
