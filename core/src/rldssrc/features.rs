//! The two JSON files of a TFDS builder folder: `features.json` (the features of an episode,
//! RLDS's `steps` among them) and `dataset_info.json` (splits and their shards).

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, Location, Result};
use crate::meta::DType;

/// What one feature of a step holds.
#[derive(Debug, Clone, PartialEq)]
pub enum StepKind {
    /// Numbers of `dtype` in `shape` per step (`[]` for a scalar), stored as lists.
    Tensor { dtype: DType, shape: Vec<usize> },
    /// An encoded image (JPEG/PNG) per step, `(H, W, C)` when the features say.
    Image { dims: Option<(usize, usize, usize)> },
    /// A string per step (`language_instruction`).
    Text,
    /// Something roboframes does not read per step (why).
    Unsupported(String),
}

/// One feature of a step: its path below `steps/` (`observation/image`) and kind.
#[derive(Debug, Clone)]
pub struct StepFeature {
    pub rel: String,
    pub kind: StepKind,
}

fn bad(path: &Path, msg: impl Into<String>) -> Error {
    Error::metadata(Location::file(path), msg.into())
}

/// Reads a JSON file of the builder folder.
fn read_json(path: &Path) -> Result<Value> {
    let bytes = crate::store::read(path, crate::meta::MAX_METADATA_BYTES)?;
    serde_json::from_slice(&bytes).map_err(|e| bad(path, format!("not valid JSON: {e}")))
}

/// The features of one step of the dataset at `folder/features.json`, in file order.
pub fn step_features(folder: &Path) -> Result<Vec<StepFeature>> {
    let path = folder.join("features.json");
    let doc = read_json(&path)?;
    let top =
        dict_features(&doc).ok_or_else(|| bad(&path, "the top level is not a FeaturesDict"))?;
    let steps = top
        .get("steps")
        .ok_or_else(|| bad(&path, "no 'steps' feature: not an RLDS dataset"))?;
    let step = steps
        .get("sequence")
        .and_then(|s| s.get("feature"))
        .and_then(dict_features)
        .ok_or_else(|| {
            bad(
                &path,
                "'steps' is not a sequence of FeaturesDicts (RLDS's episode layout)",
            )
        })?;
    let mut out = Vec::new();
    walk(step, "", &mut out);
    Ok(out)
}

/// The features of a FeaturesDict node.
fn dict_features(node: &Value) -> Option<&serde_json::Map<String, Value>> {
    node.get("featuresDict")?.get("features")?.as_object()
}

/// The leaf features below `features`, their paths from `prefix`.
fn walk(features: &serde_json::Map<String, Value>, prefix: &str, out: &mut Vec<StepFeature>) {
    for (name, node) in features {
        let rel = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        if let Some(inner) = dict_features(node) {
            walk(inner, &rel, out);
            continue;
        }
        let kind = if let Some(t) = node.get("tensor") {
            tensor_kind(t)
        } else if let Some(i) = node.get("image") {
            image_kind(i)
        } else if node.get("text").is_some() {
            StepKind::Text
        } else {
            StepKind::Unsupported(format!(
                "a feature of class {} is not read",
                node.get("pythonClassName")
                    .and_then(Value::as_str)
                    .unwrap_or("(unnamed)")
            ))
        };
        out.push(StepFeature { rel, kind });
    }
}

/// A shape's dimensions (`{"dimensions": ["7"]}`, strings or numbers); None when one is
/// unknown (`-1`).
fn dimensions(shape: Option<&Value>) -> Option<Vec<usize>> {
    let dims = match shape.and_then(|s| s.get("dimensions")) {
        None => return Some(Vec::new()), // `{}`: a scalar
        Some(d) => d.as_array()?,
    };
    dims.iter()
        .map(|d| match d {
            Value::String(s) => s.parse::<usize>().ok(),
            Value::Number(n) => n.as_u64().and_then(|v| usize::try_from(v).ok()),
            _ => None,
        })
        .collect()
}

fn tensor_kind(t: &Value) -> StepKind {
    let dtype = t.get("dtype").and_then(Value::as_str).unwrap_or("");
    let encoding = t.get("encoding").and_then(Value::as_str).unwrap_or("none");
    if encoding != "none" {
        return StepKind::Unsupported(format!(
            "tensors stored with encoding '{encoding}' are not read"
        ));
    }
    let Some(shape) = dimensions(t.get("shape")) else {
        return StepKind::Unsupported("a tensor of variable shape is not read".into());
    };
    match DType::parse(dtype) {
        Some(DType::U64) | None => {
            StepKind::Unsupported(format!("tensors of dtype '{dtype}' are not read"))
        }
        Some(dtype) => StepKind::Tensor { dtype, shape },
    }
}

fn image_kind(i: &Value) -> StepKind {
    let dtype = i.get("dtype").and_then(Value::as_str).unwrap_or("uint8");
    if dtype != "uint8" {
        return StepKind::Unsupported(format!("images of dtype '{dtype}' are not read"));
    }
    let dims = dimensions(i.get("shape")).and_then(|d| match d.as_slice() {
        [h, w, c] => Some((*h, *w, *c)),
        _ => None,
    });
    StepKind::Image { dims }
}

/// The shards of split `split` (None: `train`, or the only split) of `folder/dataset_info.json`,
/// in order, with the number of episodes each holds; and the split's name.
pub fn shards(folder: &Path, split: Option<&str>) -> Result<(String, Vec<(PathBuf, u64)>)> {
    let path = folder.join("dataset_info.json");
    let doc = read_json(&path)?;
    let format = doc
        .get("fileFormat")
        .and_then(Value::as_str)
        .unwrap_or("tfrecord");
    if format != "tfrecord" {
        return Err(bad(
            &path,
            format!("shards in '{format}' format; roboframes reads TFRecord shards"),
        ));
    }
    let name = doc
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| bad(&path, "no 'name'"))?;
    let splits = doc
        .get("splits")
        .and_then(Value::as_array)
        .ok_or_else(|| bad(&path, "no 'splits' list"))?;
    let names: Vec<&str> = splits
        .iter()
        .filter_map(|s| s.get("name").and_then(Value::as_str))
        .collect();
    let wanted = match split {
        Some(s) => s,
        None if names.contains(&"train") => "train",
        None if names.len() == 1 => names.first().copied().unwrap_or("train"),
        None => {
            return Err(Error::InvalidArgument {
                msg: format!(
                    "'{}' has the splits {names:?} and none is 'train': pass split=",
                    folder.display()
                ),
            })
        }
    };
    let s = splits
        .iter()
        .find(|s| s.get("name").and_then(Value::as_str) == Some(wanted))
        .ok_or_else(|| Error::InvalidArgument {
            msg: format!(
                "'{}' has no split '{wanted}' (splits: {names:?})",
                folder.display()
            ),
        })?;
    let lengths: Vec<u64> = s
        .get("shardLengths")
        .and_then(Value::as_array)
        .ok_or_else(|| bad(&path, format!("split '{wanted}' has no 'shardLengths'")))?
        .iter()
        .map(|v| match v {
            Value::String(t) => t.parse::<u64>().ok(),
            Value::Number(n) => n.as_u64(),
            _ => None,
        })
        .collect::<Option<_>>()
        .ok_or_else(|| {
            bad(
                &path,
                format!("split '{wanted}': 'shardLengths' are not counts"),
            )
        })?;
    let template = s
        .get("filepathTemplate")
        .and_then(Value::as_str)
        .unwrap_or("{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}");
    let n = lengths.len();
    let mut out = Vec::with_capacity(n);
    for (i, len) in lengths.into_iter().enumerate() {
        let file = template
            .replace("{DATASET}", name)
            .replace("{SPLIT}", wanted)
            .replace("{FILEFORMAT}", "tfrecord")
            .replace("{SHARD_X_OF_Y}", &format!("{i:05}-of-{n:05}"))
            .replace("{SHARD_INDEX}", &format!("{i:05}"))
            .replace("{NUM_SHARDS}", &format!("{n:05}"));
        if file.contains(['/', '\\']) || file == ".." || file.is_empty() {
            return Err(bad(
                &path,
                format!("shard name '{file}' is not a file name in the folder"),
            ));
        }
        out.push((folder.join(file), len));
    }
    Ok((wanted.to_owned(), out))
}
