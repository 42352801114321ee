//! ROS 2 messages: `.msg` definitions (an MCAP `ros2msg` schema: the message's definition, then
//! each type it uses after a `====` line and `MSG: pkg/Type`) and their CDR encoding (plain
//! XCDR1, little- or big-endian: what ROS 2's middlewares and rosbag2 write). No well-kept
//! crate decodes these dynamically, so this is the small reader roboframes needs: fields in
//! order, alignment to each primitive's size, sequences and strings with a 32-bit count.

use std::collections::HashMap;

use super::decode::{Leaf, Values};
use crate::meta::DType;

/// A field's element type.
#[derive(Debug, Clone, PartialEq)]
enum Ty {
    Prim(Prim),
    /// A string (UTF-8; `wstring` is refused when parsed).
    Str,
    /// Another message, by its normalised name (`pkg/Type`).
    Msg(String),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Prim {
    Bool,
    I8,
    U8,
    I16,
    U16,
    I32,
    U32,
    I64,
    U64,
    F32,
    F64,
}

impl Prim {
    fn size(self) -> usize {
        match self {
            Prim::Bool | Prim::I8 | Prim::U8 => 1,
            Prim::I16 | Prim::U16 => 2,
            Prim::I32 | Prim::U32 | Prim::F32 => 4,
            Prim::I64 | Prim::U64 | Prim::F64 => 8,
        }
    }

    fn dtype(self) -> DType {
        match self {
            Prim::Bool => DType::Bool,
            Prim::I8 => DType::I8,
            Prim::U8 => DType::U8,
            Prim::I16 => DType::I16,
            Prim::U16 => DType::U16,
            Prim::I32 => DType::I32,
            Prim::U32 => DType::U32,
            Prim::I64 => DType::I64,
            Prim::U64 => DType::U64,
            Prim::F32 => DType::F32,
            Prim::F64 => DType::F64,
        }
    }
}

/// How many values a field holds.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Count {
    One,
    /// `T[N]`: exactly N, no count on the wire.
    Fixed(usize),
    /// `T[]` or `T[<=N]`: a 32-bit count first.
    Seq,
}

#[derive(Debug, Clone)]
struct Field {
    name: String,
    ty: Ty,
    count: Count,
}

/// The message types of one schema, by normalised name, and the schema's own type.
#[derive(Debug)]
pub(crate) struct Schema {
    root: String,
    types: HashMap<String, Vec<Field>>,
}

/// A fixed array longer than this is not a message field.
const MAX_FIXED_ARRAY: usize = 1 << 24;

/// Nesting deeper than this is a hostile or broken schema (a type holding itself).
const MAX_DEPTH: usize = 32;

/// `pkg/msg/Type` and `pkg/Type` name the same type.
fn normalise(name: &str) -> String {
    name.replace("/msg/", "/")
}

/// Types whose values are time stamps or frame names: left out of a message's values (the
/// message's time is its MCAP log time).
pub(crate) fn is_bookkeeping_type(name: &str) -> bool {
    matches!(
        name,
        "std_msgs/Header" | "builtin_interfaces/Time" | "builtin_interfaces/Duration"
    )
}

fn primitive(name: &str) -> Option<Ty> {
    Some(Ty::Prim(match name {
        "bool" => Prim::Bool,
        "byte" | "uint8" | "char" => Prim::U8,
        "int8" => Prim::I8,
        "int16" => Prim::I16,
        "uint16" => Prim::U16,
        "int32" => Prim::I32,
        "uint32" => Prim::U32,
        "int64" => Prim::I64,
        "uint64" => Prim::U64,
        "float32" => Prim::F32,
        "float64" => Prim::F64,
        _ => return None,
    }))
}

/// The fields of one `.msg` section; `pkg` resolves unqualified type names.
fn parse_section(text: &str, pkg: &str) -> Result<Vec<Field>, String> {
    let mut fields = Vec::new();
    for raw in text.lines() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut parts = line.split_whitespace();
        let (Some(ty), Some(rest)) = (parts.next(), parts.next()) else {
            return Err(format!("cannot read the field line '{line}'"));
        };
        // constants (`int32 X=1`, `string S = "a"`) are not on the wire
        if rest.contains('=') || parts.clone().next().is_some_and(|p| p.starts_with('=')) {
            continue;
        }
        let name = rest.to_owned();
        let (base, count) = match ty.find('[') {
            None => (ty, Count::One),
            Some(i) => {
                let inner = ty
                    .get(i + 1..)
                    .and_then(|s| s.strip_suffix(']'))
                    .ok_or_else(|| format!("cannot read the array type '{ty}'"))?;
                let base = ty.get(..i).unwrap_or(ty);
                if inner.is_empty() || inner.starts_with("<=") {
                    (base, Count::Seq)
                } else {
                    let n: usize = inner
                        .parse()
                        .ok()
                        .filter(|n| *n <= MAX_FIXED_ARRAY)
                        .ok_or_else(|| format!("cannot read the array size of '{ty}'"))?;
                    (base, Count::Fixed(n))
                }
            }
        };
        // bounded strings: `string<=10`
        let base = base.split("<=").next().unwrap_or(base);
        let ty = if let Some(p) = primitive(base) {
            p
        } else if base == "string" {
            Ty::Str
        } else if base == "wstring" {
            return Err(format!(
                "field '{name}' is a wstring, which roboframes does not read"
            ));
        } else if base == "time" {
            Ty::Msg("builtin_interfaces/Time".into())
        } else if base == "duration" {
            Ty::Msg("builtin_interfaces/Duration".into())
        } else if base == "Header" {
            Ty::Msg("std_msgs/Header".into())
        } else if base.contains('/') {
            Ty::Msg(normalise(base))
        } else {
            Ty::Msg(format!("{pkg}/{base}"))
        };
        fields.push(Field { name, ty, count });
    }
    Ok(fields)
}

/// The package of a normalised type name.
fn package(name: &str) -> &str {
    name.split('/').next().unwrap_or("")
}

impl Schema {
    /// The schema `text` of message type `name` (`pkg/msg/Type`).
    pub fn parse(name: &str, text: &str) -> Result<Schema, String> {
        let root = normalise(name);
        let mut types = HashMap::new();
        let mut current = root.clone();
        let mut body = String::new();
        let mut sections = Vec::new();
        for line in text.lines() {
            if line.starts_with("====") {
                sections.push((std::mem::take(&mut current), std::mem::take(&mut body)));
                continue;
            }
            if let Some(n) = line.trim().strip_prefix("MSG:") {
                current = normalise(n.trim());
                continue;
            }
            body.push_str(line);
            body.push('\n');
        }
        sections.push((current, body));
        for (ty, text) in sections {
            if ty.is_empty() {
                return Err("a section of the schema names no type (no 'MSG:' line)".into());
            }
            let fields = parse_section(&text, package(&ty))?;
            types.insert(ty, fields);
        }
        // the time types, when the schema leaves them out (they are ROS 2's built-ins)
        for t in ["builtin_interfaces/Time", "builtin_interfaces/Duration"] {
            types.entry(t.into()).or_insert_with(|| {
                vec![
                    Field {
                        name: "sec".into(),
                        ty: Ty::Prim(Prim::I32),
                        count: Count::One,
                    },
                    Field {
                        name: "nanosec".into(),
                        ty: Ty::Prim(Prim::U32),
                        count: Count::One,
                    },
                ]
            });
        }
        let schema = Schema { root, types };
        schema.check(&schema.root, 0)?;
        Ok(schema)
    }

    /// Every type used is defined, and no type holds itself (depth-first, each type once).
    fn check(&self, ty: &str, depth: usize) -> Result<(), String> {
        let mut done = std::collections::HashSet::new();
        self.check_from(ty, depth, &mut Vec::new(), &mut done)
    }

    fn check_from<'s>(
        &'s self,
        ty: &'s str,
        depth: usize,
        path: &mut Vec<&'s str>,
        done: &mut std::collections::HashSet<&'s str>,
    ) -> Result<(), String> {
        if done.contains(ty) {
            return Ok(());
        }
        if path.contains(&ty) || depth > MAX_DEPTH {
            return Err(format!(
                "types nest deeper than {MAX_DEPTH} levels or hold themselves at '{ty}'"
            ));
        }
        let fields = self
            .types
            .get(ty)
            .ok_or_else(|| format!("the schema does not define the type '{ty}'"))?;
        path.push(ty);
        for f in fields {
            if let Ty::Msg(m) = &f.ty {
                self.check_from(m, depth + 1, path, done)?;
            }
        }
        path.pop();
        done.insert(ty);
        Ok(())
    }

    /// The values of one CDR-encoded message: every field, nested ones as `a.b`; time stamps
    /// and headers, strings and sequences of messages are skipped on the wire but not kept,
    /// except strings, which are kept as text (an image's `format`/`encoding`).
    pub fn decode(&self, data: &[u8]) -> Result<Vec<Leaf>, String> {
        let (Some(&kind), Some(body)) = (data.get(1), data.get(4..)) else {
            return Err("shorter than the 4-byte CDR header".into());
        };
        if data.first() != Some(&0) || kind > 1 {
            return Err(format!(
                "CDR encapsulation {:#04x}{:02x} is not plain CDR (XCDR1); roboframes reads \
                 plain little- or big-endian CDR",
                data.first().copied().unwrap_or(0),
                kind
            ));
        }
        let mut r = Cdr {
            buf: body,
            pos: 0,
            little: kind == 1,
            budget: MAX_FIELDS_READ,
        };
        let mut out = Vec::new();
        self.read_fields(&self.root, "", &mut r, &mut out, true, 0)?;
        // (serializers pad a message to 4 bytes; more left over is a schema that does not
        // describe the bytes)
        let left = r.buf.len().saturating_sub(r.pos);
        if left > 3 {
            return Err(format!(
                "{left} bytes of the message are left after its schema's fields: the schema \
                 does not describe the message"
            ));
        }
        Ok(out)
    }

    fn read_fields(
        &self,
        ty: &str,
        prefix: &str,
        r: &mut Cdr<'_>,
        out: &mut Vec<Leaf>,
        keep: bool,
        depth: usize,
    ) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err("types nest too deep".into());
        }
        let fields = self
            .types
            .get(ty)
            .ok_or_else(|| format!("no type '{ty}'"))?;
        if fields.is_empty() {
            // (ROS 2 gives an empty type one hidden `uint8` member, which is on the wire)
            r.take(1)?;
        }
        for f in fields {
            r.spend()?;
            let path = if prefix.is_empty() {
                f.name.clone()
            } else {
                format!("{prefix}.{}", f.name)
            };
            let n = match f.count {
                Count::One => None,
                Count::Fixed(n) => Some(n),
                Count::Seq => Some(r.count()?),
            };
            match &f.ty {
                Ty::Prim(p) => {
                    let values = match (r.prims(*p, n.unwrap_or(1))?, n) {
                        // (a `uint8` field is a number; `uint8[]` stays bytes: image data)
                        (Values::Bytes(b), None) => {
                            Values::Int(b.iter().map(|v| i64::from(*v)).collect())
                        }
                        (v, _) => v,
                    };
                    if keep {
                        out.push(Leaf {
                            path,
                            dtype: Some(p.dtype()),
                            array: n.is_some(),
                            values,
                        });
                    }
                }
                Ty::Str => {
                    let mut texts = Vec::new();
                    for _ in 0..n.unwrap_or(1) {
                        texts.push(r.string()?);
                    }
                    if keep {
                        out.push(Leaf {
                            path,
                            dtype: None,
                            array: n.is_some(),
                            values: Values::Text(texts),
                        });
                    }
                }
                Ty::Msg(m) => {
                    // headers and stamps are read past; so are arrays of messages (kept out)
                    let keep_inner = keep && n.is_none() && !is_bookkeeping_type(m);
                    for _ in 0..n.unwrap_or(1) {
                        r.spend()?;
                        self.read_fields(m, &path, r, out, keep_inner, depth + 1)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Fields one message may take to read: empty nested types take no bytes, so a hostile schema
/// could otherwise ask for any amount of work.
const MAX_FIELDS_READ: usize = 1 << 20;

/// A CDR body being read.
struct Cdr<'a> {
    buf: &'a [u8],
    pos: usize,
    little: bool,
    /// Fields left to read.
    budget: usize,
}

impl Cdr<'_> {
    fn spend(&mut self) -> Result<(), String> {
        self.budget = self
            .budget
            .checked_sub(1)
            .ok_or_else(|| format!("more than {MAX_FIELDS_READ} fields in one message"))?;
        Ok(())
    }

    fn align(&mut self, to: usize) -> Result<(), String> {
        let rem = self.pos % to;
        if rem != 0 {
            self.take(to - rem)?;
        }
        Ok(())
    }

    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.buf.len());
        let Some(end) = end else {
            return Err(format!(
                "the message ends at byte {} of its CDR body, {} more bytes were expected",
                self.buf.len(),
                n
            ));
        };
        let s = self.buf.get(self.pos..end).unwrap_or(&[]);
        self.pos = end;
        Ok(s)
    }

    fn u32(&mut self) -> Result<u32, String> {
        self.align(4)?;
        let b = self.take(4)?;
        let a: [u8; 4] = b.try_into().map_err(|_| "short read".to_string())?;
        Ok(if self.little {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        })
    }

    /// A sequence's count, checked against the bytes left (each element takes one at least).
    fn count(&mut self) -> Result<usize, String> {
        let n = self.u32()? as usize;
        if n > self.buf.len().saturating_sub(self.pos) {
            return Err(format!(
                "a sequence of {n} elements in a message of {} bytes",
                self.buf.len()
            ));
        }
        Ok(n)
    }

    fn string(&mut self) -> Result<String, String> {
        let n = self.count()?;
        let b = self.take(n)?;
        // the count includes the terminating NUL
        let text = b.strip_suffix(&[0]).unwrap_or(b);
        // (text is kept only for an image's format and encoding; elsewhere it is read past)
        Ok(String::from_utf8_lossy(text).into_owned())
    }

    fn prims(&mut self, p: Prim, n: usize) -> Result<Values, String> {
        let size = p.size();
        if n > 0 {
            self.align(size.min(8))?;
        }
        let bytes = n
            .checked_mul(size)
            .ok_or_else(|| "an absurd array size".to_string())?;
        let little = self.little;
        let b = self.take(bytes)?;
        let mut words = b.chunks_exact(size);
        macro_rules! each {
            ($t:ty, $n:expr) => {
                words
                    .by_ref()
                    .map(|w| {
                        let a: [u8; $n] = w.try_into().unwrap_or([0; $n]);
                        if little {
                            <$t>::from_le_bytes(a)
                        } else {
                            <$t>::from_be_bytes(a)
                        }
                    })
                    .collect::<Vec<$t>>()
            };
        }
        Ok(match p {
            Prim::Bool => {
                let mut out = Vec::with_capacity(n);
                for v in b {
                    match v {
                        0 => out.push(false),
                        1 => out.push(true),
                        other => return Err(format!("a bool holds {other}")),
                    }
                }
                Values::Bool(out)
            }
            Prim::U8 => Values::Bytes(b.to_vec()),
            Prim::I8 => Values::Int(b.iter().map(|v| i64::from(*v as i8)).collect()),
            Prim::I16 => Values::Int(each!(i16, 2).into_iter().map(i64::from).collect()),
            Prim::U16 => Values::Int(each!(u16, 2).into_iter().map(i64::from).collect()),
            Prim::I32 => Values::Int(each!(i32, 4).into_iter().map(i64::from).collect()),
            Prim::U32 => Values::Int(each!(u32, 4).into_iter().map(i64::from).collect()),
            Prim::I64 => Values::Int(each!(i64, 8)),
            Prim::U64 => {
                let mut out = Vec::with_capacity(n);
                for v in each!(u64, 8) {
                    out.push(
                        i64::try_from(v)
                            .map_err(|_| format!("a uint64 of {v} does not fit int64"))?,
                    );
                }
                Values::Int(out)
            }
            Prim::F32 => Values::Float(each!(f32, 4).into_iter().map(f64::from).collect()),
            Prim::F64 => Values::Float(each!(f64, 8)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JOINT_STATE: &str = "std_msgs/Header header\nstring[] name\nfloat64[] position\n\
float64[] velocity\nfloat64[] effort\n\
================================================================================\n\
MSG: std_msgs/Header\nbuiltin_interfaces/Time stamp\nstring frame_id\n";

    fn le_message(names: &[&str], pos: &[f64]) -> Vec<u8> {
        let mut b = vec![0u8, 1, 0, 0];
        let body_start = 4;
        let align = |b: &mut Vec<u8>, n: usize| {
            while !(b.len() - body_start).is_multiple_of(n) {
                b.push(0);
            }
        };
        b.extend(5i32.to_le_bytes());
        b.extend(7u32.to_le_bytes());
        b.extend(3u32.to_le_bytes());
        b.extend(b"ab\0");
        align(&mut b, 4);
        b.extend((names.len() as u32).to_le_bytes());
        for n in names {
            align(&mut b, 4);
            b.extend(((n.len() + 1) as u32).to_le_bytes());
            b.extend(n.as_bytes());
            b.push(0);
        }
        align(&mut b, 4);
        b.extend((pos.len() as u32).to_le_bytes());
        align(&mut b, 8);
        for p in pos {
            b.extend(p.to_le_bytes());
        }
        align(&mut b, 4);
        b.extend(0u32.to_le_bytes());
        b.extend(0u32.to_le_bytes());
        b
    }

    #[test]
    fn reads_a_joint_state() {
        let s = Schema::parse("sensor_msgs/msg/JointState", JOINT_STATE).expect("schema");
        let m = le_message(&["j0", "j1"], &[0.5, -1.25]);
        let leaves = s.decode(&m).expect("decode");
        let pos = leaves
            .iter()
            .find(|l| l.path == "position")
            .expect("position");
        assert_eq!(pos.values, Values::Float(vec![0.5, -1.25]));
        assert!(!leaves.iter().any(|l| l.path.starts_with("header")));
        // cut short: an error, not zeros
        let e = s.decode(&m[..m.len() - 12]).expect_err("short");
        assert!(e.contains("more bytes"), "{e}");
        // bytes the schema does not read: another schema's message
        let mut long = m.clone();
        long.extend([0u8; 8]);
        let e = s.decode(&long).expect_err("long");
        assert!(e.contains("left after"), "{e}");
    }

    #[test]
    fn an_empty_type_takes_its_hidden_byte() {
        let text = "std_msgs/Empty e\nfloat32 x\n====\nMSG: std_msgs/Empty\n";
        let s = Schema::parse("a/msg/A", text).expect("schema");
        let mut m = vec![0u8, 1, 0, 0, 0, 0, 0, 0];
        m.extend(2.5f32.to_le_bytes());
        let leaves = s.decode(&m).expect("decode");
        let x = leaves.iter().find(|l| l.path == "x").expect("x");
        assert_eq!(x.values, Values::Float(vec![2.5]));
    }

    #[test]
    fn refuses_broken_schemas() {
        assert!(Schema::parse("a/msg/A", "b/B x\n").is_err());
        let own = "a/A x\n====\nMSG: a/A\na/A y\n";
        assert!(Schema::parse("a/msg/A", own)
            .expect_err("recursive")
            .contains("hold themselves"));
        assert!(Schema::parse("a/msg/A", "wstring w\n").is_err());
        assert!(Schema::parse("a/msg/A", "float64[99999999999] x\n").is_err());
        // a fixed array of an empty type costs work even though it reads one byte each
        let empty = "a/E[16777216] x\n====\nMSG: a/E\n";
        let s = Schema::parse("a/msg/A", empty).expect("schema");
        assert!(s.decode(&[0, 1, 0, 0]).is_err());
    }
}
