//! The two HDF5 layouts robot data comes in, recognised from the files: their episodes, the
//! datasets every episode has (from the first one), frame rate and tasks from attributes, and
//! the LeRobot names of their usual keys.

use std::path::{Path, PathBuf};

use super::{files, numeric_dtype, source_error, Column, ColumnKind};
use crate::error::Result;
use crate::source::{KeyMap, SourceOptions};

/// How episodes are laid out in the files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// ALOHA/ACT: one episode per file, datasets at the root (`action`, `observations/*`).
    Aloha,
    /// robomimic/LIBERO/RoboCasa: episodes are the `data/demo_<i>` groups of a file.
    Robomimic,
}

impl Layout {
    pub fn name(self) -> &'static str {
        match self {
            Layout::Aloha => "aloha",
            Layout::Robomimic => "robomimic",
        }
    }
}

/// An episode found in the files.
pub struct FoundEpisode {
    pub file: usize,
    pub group: String,
    pub length: usize,
    pub task: Option<String>,
}

/// What [`scan`] found.
pub struct Found {
    pub layout: Layout,
    pub fps: Option<f64>,
    pub columns: Vec<Column>,
    pub episodes: Vec<FoundEpisode>,
}

/// Reads the layout, episodes, columns, frame rate and tasks of the files (metadata and, for
/// encoded cameras, the first frame's size).
pub fn scan(
    files: &files::Files,
    opts: &SourceOptions,
    warnings: &mut Vec<String>,
) -> Result<Found> {
    let paths = files.paths();
    let mut layout: Option<Layout> = None;
    let mut fps: Option<(f64, &Path)> = None;
    let mut episodes = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        let file = files.open(i)?;
        let this = detect(&file, path)?;
        match layout {
            Some(l) if l != this => {
                return Err(source_error(
                    path,
                    "",
                    None,
                    format!(
                        "is a {} file, while the files before it are {} files",
                        this.name(),
                        l.name()
                    ),
                ))
            }
            _ => layout = Some(this),
        }
        if let Some(f) = file_fps(&file, this) {
            match fps {
                Some((g, first)) if (g - f).abs() > 1e-9 * g.abs().max(1.0) && opts.fps.is_none() => {
                    return Err(source_error(
                        path,
                        "",
                        None,
                        format!(
                            "stores a frame rate of {f} fps, '{}' stores {g}; pass fps= to say which",
                            first.display()
                        ),
                    ))
                }
                Some(_) => {}
                None => fps = Some((f, path)),
            }
        }
        match this {
            Layout::Aloha => {
                let length = first_dim(&file, "action", path, "")?;
                let task = task_attr(
                    &file,
                    &["task", "language_instruction", "instruction"],
                    path,
                    "",
                )?;
                episodes.push(FoundEpisode {
                    file: i,
                    group: "/".into(),
                    length,
                    task,
                });
            }
            Layout::Robomimic => {
                let data = files::group(&file, "data", path)?;
                let file_task = task_attr(&data, &["language_instruction", "task"], path, "data")?
                    .or_else(|| {
                        json_attr(&data, "problem_info").and_then(|v| {
                            v.get("language_instruction")
                                .and_then(|t| t.as_str())
                                .map(str::to_owned)
                        })
                    });
                for demo in demos(&data, path)? {
                    let group = format!("data/{demo}");
                    let g = files::group(&file, &group, path)?;
                    let length = first_dim(&g, "actions", path, &group)?;
                    let task = task_attr(&g, &["language_instruction", "task"], path, &group)?
                        .or_else(|| file_task.clone());
                    episodes.push(FoundEpisode {
                        file: i,
                        group,
                        length,
                        task,
                    });
                }
            }
        }
    }
    let layout = layout.ok_or_else(|| crate::error::Error::NotFound {
        at: crate::error::Location::default(),
        detail: "no HDF5 files".into(),
    })?;
    let first = episodes.first().ok_or_else(|| {
        source_error(
            paths.first().map_or(Path::new(""), PathBuf::as_path),
            "data",
            None,
            "holds no demo_<i> groups",
        )
    })?;
    let columns = columns(
        files,
        first.file,
        &first.group,
        first.length,
        layout,
        warnings,
    )?;
    Ok(Found {
        layout,
        fps: fps.map(|(f, _)| f),
        columns,
        episodes,
    })
}

/// The layout of a file.
fn detect(file: &hdf5::File, path: &Path) -> Result<Layout> {
    if file.link_exists("data") {
        if let Ok(g) = file.group("data") {
            if g.member_names()
                .map(|m| m.iter().any(|n| n.starts_with("demo_")))
                .unwrap_or(false)
            {
                return Ok(Layout::Robomimic);
            }
        }
    }
    if file.link_exists("action") || file.link_exists("observations") {
        return Ok(Layout::Aloha);
    }
    Err(source_error(
        path,
        "",
        None,
        "is neither an ALOHA episode file (datasets 'action' and 'observations/*') nor a \
         robomimic/LIBERO file (groups 'data/demo_<i>')",
    ))
}

/// The `demo_<i>` groups of `data`, by number.
fn demos(data: &hdf5::Group, path: &Path) -> Result<Vec<String>> {
    let names = data
        .member_names()
        .map_err(|e| source_error(path, "data", None, format!("cannot list the group: {e}")))?;
    let mut demos: Vec<(u64, String)> = Vec::new();
    for n in names {
        if let Some(num) = n.strip_prefix("demo_") {
            match num.parse::<u64>() {
                Ok(k) => demos.push((k, n)),
                Err(_) => {
                    return Err(source_error(
                        path,
                        "data",
                        None,
                        format!("'{n}' is not named demo_<number>"),
                    ))
                }
            }
        }
    }
    demos.sort();
    Ok(demos.into_iter().map(|(_, n)| n).collect())
}

/// The first dimension of dataset `name` in `g` (an episode's length), which must exist.
fn first_dim(g: &hdf5::Group, name: &str, path: &Path, group: &str) -> Result<usize> {
    let ds = g.dataset(name).map_err(|_| {
        source_error(
            path,
            group,
            Some(name),
            format!("the episode has no '{name}' dataset (every episode needs one)"),
        )
    })?;
    let length = ds.shape().first().copied().ok_or_else(|| {
        source_error(
            path,
            group,
            Some(name),
            "is a scalar, not one row per frame",
        )
    })?;
    if length > crate::source::MAX_EPISODE_FRAMES {
        return Err(source_error(
            path,
            group,
            Some(name),
            format!(
                "an episode of {length} frames; more than {} is not a recording",
                crate::source::MAX_EPISODE_FRAMES
            ),
        ));
    }
    Ok(length)
}

/// The frame rate a file stores: an `fps` attribute (at the root, or on `data`), else
/// robomimic's `env_args.env_kwargs.control_freq`.
fn file_fps(file: &hdf5::File, layout: Layout) -> Option<f64> {
    let names = ["fps", "frequency", "control_freq"];
    if let Some(f) = number_attr(file, &names) {
        return Some(f);
    }
    if layout == Layout::Robomimic {
        let data = file.group("data").ok()?;
        if let Some(f) = number_attr(&data, &names) {
            return Some(f);
        }
        let env = json_attr(&data, "env_args")?;
        return env
            .get("env_kwargs")
            .and_then(|k| k.get("control_freq"))
            .and_then(serde_json::Value::as_f64)
            .filter(|f| f.is_finite() && *f > 0.0);
    }
    None
}

/// The first of the numeric attributes `names` that `loc` has, when positive.
fn number_attr(loc: &hdf5::Location, names: &[&str]) -> Option<f64> {
    names.iter().find_map(|n| {
        let a = loc.attr(n).ok()?;
        a.read_scalar::<f64>()
            .ok()
            .or_else(|| a.read_scalar::<i64>().ok().map(|v| v as f64))
            .filter(|f| f.is_finite() && *f > 0.0)
    })
}

/// The first of the string attributes `names` that `loc` has.
/// The first of the task attributes `names` that `loc` (group `group` of `path`) has: a task
/// that is not text is an error, not a missing task.
fn task_attr(
    loc: &hdf5::Location,
    names: &[&str],
    path: &Path,
    group: &str,
) -> Result<Option<String>> {
    let Some((name, bytes)) = names
        .iter()
        .find_map(|n| attr_bytes(loc, n).map(|b| (*n, b)))
    else {
        return Ok(None);
    };
    let bad = |m: String| source_error(path, group, Some(name), m);
    let bytes = bytes.map_err(bad)?;
    String::from_utf8(bytes)
        .map(|s| Some(s).filter(|s| !s.is_empty()))
        .map_err(|_| bad("the task attribute is not UTF-8 text".into()))
}

/// The longest fixed-length string attribute read (numpy's `bytes_` attributes, h5py's
/// fixed-length strings); longer ones are an error, not cut.
const MAX_FIXED_ATTR: usize = 4096;

/// The bytes of string attribute `name` of `loc`: `None` when it has none, an error when it
/// is not a string (variable- or fixed-length, ASCII or UTF-8).
fn attr_bytes(loc: &hdf5::Location, name: &str) -> Option<std::result::Result<Vec<u8>, String>> {
    use hdf5::types::{FixedAscii, FixedUnicode, VarLenAscii, VarLenUnicode};
    let a = loc.attr(name).ok()?;
    let fixed_size = a.dtype().map(|t| t.size()).unwrap_or(0);
    Some(
        a.read_scalar::<VarLenUnicode>()
            .map(|s| s.as_bytes().to_vec())
            .or_else(|_| {
                a.read_scalar::<VarLenAscii>()
                    .map(|s| s.as_bytes().to_vec())
            })
            .or_else(|e| {
                if fixed_size > MAX_FIXED_ATTR {
                    return Err(e);
                }
                a.read_scalar::<FixedAscii<MAX_FIXED_ATTR>>()
                    .map(|s| s.as_bytes().to_vec())
                    .or_else(|_| {
                        a.read_scalar::<FixedUnicode<MAX_FIXED_ATTR>>()
                            .map(|s| s.as_bytes().to_vec())
                    })
            })
            .map_err(|e| {
                format!("the attribute is not a string of at most {MAX_FIXED_ATTR} bytes ({e})")
            }),
    )
}

/// The first of the string attributes `names` that `loc` has, when it is text.
fn string_attr(loc: &hdf5::Location, names: &[&str]) -> Option<String> {
    let bytes = names
        .iter()
        .find_map(|n| attr_bytes(loc, n).and_then(std::result::Result::ok))?;
    // (checked as UTF-8: hdf5-metno's `as_str` assumes the bytes are)
    String::from_utf8(bytes).ok().filter(|s| !s.is_empty())
}

/// A string attribute holding JSON, parsed.
fn json_attr(loc: &hdf5::Location, name: &str) -> Option<serde_json::Value> {
    serde_json::from_str(&string_attr(loc, &[name])?).ok()
}

/// The datasets of the first episode's group that have one row per frame, as columns (under
/// their source names).
fn columns(
    files: &files::Files,
    index: usize,
    group: &str,
    length: usize,
    layout: Layout,
    warnings: &mut Vec<String>,
) -> Result<Vec<Column>> {
    let path = files.path(index)?;
    let file = files.open(index)?;
    let g = files::group(&file, group, path)?;
    let mut found = Vec::new();
    walk(&g, "", path, group, &mut found)?;
    let mut columns = Vec::new();
    for (rel, ds) in found {
        let skip = match layout {
            // ALOHA's compressed recordings: the byte length of each stored image
            Layout::Aloha => rel == "compress_len",
            // the next step's observations: the same frames as `obs` one row later (read them
            // with delta_timestamps)
            Layout::Robomimic => rel.starts_with("next_obs/"),
        };
        if skip {
            continue;
        }
        let shape = ds.shape();
        if shape.first() != Some(&length) {
            warnings.push(format!(
                "{}: '{group}/{rel}' has shape {shape:?}, not one row per frame of the \
                 episode's {length}; it is left out",
                path.display()
            ));
            continue;
        }
        // (a type is described only when it can be numbers and its names are text: hdf5-metno
        // builds strings from member names unchecked)
        let described = ds.dtype().and_then(|t| {
            let c = super::checks::class(&t);
            if !super::checks::numeric_class(c) {
                return Err(format!("values of class {c:?} are not numbers").into());
            }
            if !super::checks::member_names_utf8(&t) {
                return Err("an enum whose member names are not text".into());
            }
            t.to_descriptor()
        });
        let dtype = match described {
            Ok(t) => t,
            Err(e) => {
                warnings.push(format!(
                    "{}: '{group}/{rel}' is left out: its type is not one roboframes reads ({e})",
                    path.display()
                ));
                continue;
            }
        };
        let is_u8 = matches!(
            dtype,
            hdf5::types::TypeDescriptor::Unsigned(hdf5::types::IntSize::U1)
        );
        let row_shape: Vec<usize> = shape.iter().skip(1).copied().collect();
        let elements = row_shape.iter().try_fold(1usize, |n, d| n.checked_mul(*d));
        if elements.is_none_or(|n| n > crate::meta::MAX_FEATURE_ELEMENTS) {
            return Err(source_error(
                path,
                group,
                Some(&rel),
                format!(
                    "rows of shape {row_shape:?} hold more than {} elements; that is not a recording",
                    crate::meta::MAX_FEATURE_ELEMENTS
                ),
            ));
        }
        let column = if is_u8 && row_shape.len() == 3 && matches!(row_shape.get(2), Some(1 | 3 | 4))
        {
            Column {
                name: String::new(),
                rel,
                kind: ColumnKind::Pixels,
                shape: row_shape,
            }
        } else if is_u8 && row_shape.len() == 1 && rel.contains("images") && length > 0 {
            let dims = encoded_dims(&ds, path, group, &rel)?;
            Column {
                name: String::new(),
                rel,
                kind: ColumnKind::Encoded,
                shape: dims,
            }
        } else {
            match numeric_dtype(&dtype) {
                Ok(dt) => Column {
                    name: String::new(),
                    rel,
                    kind: ColumnKind::Numeric(dt),
                    shape: row_shape,
                },
                Err(why) => {
                    warnings.push(format!(
                        "{}: '{group}/{rel}' is left out: {why}",
                        path.display()
                    ));
                    continue;
                }
            }
        };
        columns.push(column);
    }
    Ok(columns)
}

/// Every dataset under `g`, with its path relative to the episode group.
fn walk(
    g: &hdf5::Group,
    prefix: &str,
    path: &Path,
    group: &str,
    out: &mut Vec<(String, hdf5::Dataset)>,
) -> Result<()> {
    let names = g
        .member_names()
        .map_err(|e| source_error(path, group, None, format!("cannot list the group: {e}")))?;
    for n in names {
        let rel = if prefix.is_empty() {
            n.clone()
        } else {
            format!("{prefix}/{n}")
        };
        if let Ok(ds) = g.dataset(&n) {
            out.push((rel, ds));
        } else if let Ok(sub) = g.group(&n) {
            walk(&sub, &rel, path, group, out)?;
        }
    }
    Ok(())
}

/// The `(H, W, C)` of an encoded camera, from its first image.
fn encoded_dims(ds: &hdf5::Dataset, path: &Path, group: &str, rel: &str) -> Result<Vec<usize>> {
    let row = ds
        .read_slice_2d::<u8, _>((0..1, ..))
        .map_err(|e| source_error(path, group, Some(rel), format!("cannot read row 0: {e}")))?;
    let (bytes, _) = row.into_raw_vec_and_offset();
    let (h, w, c) = crate::image::encoded_dims(&bytes).map_err(|e| {
        source_error(
            path,
            group,
            Some(rel),
            format!("a uint8 (frames, bytes) camera dataset must hold JPEG/PNG images; row 0: {e}"),
        )
    })?;
    Ok(vec![h, w, c])
}

/// The item key of the source key `rel`.
pub fn item_name(layout: Layout, rel: &str, kind: ColumnKind, map: &KeyMap) -> String {
    match map {
        KeyMap::Source => rel.to_owned(),
        KeyMap::Names(names) => names.get(rel).cloned().unwrap_or_else(|| rel.to_owned()),
        KeyMap::LeRobot => {
            let camera = matches!(kind, ColumnKind::Pixels | ColumnKind::Encoded);
            match layout {
                Layout::Aloha => match rel {
                    "action" => "action".into(),
                    "observations/qpos" => "observation.state".into(),
                    "observations/qvel" => "observation.velocity".into(),
                    "observations/effort" => "observation.effort".into(),
                    _ => match (
                        rel.strip_prefix("observations/images/"),
                        rel.strip_prefix("observations/"),
                    ) {
                        (Some(cam), _) => format!("observation.images.{cam}"),
                        (None, Some(rest)) => format!("observation.{}", rest.replace('/', ".")),
                        _ => rel.to_owned(),
                    },
                },
                Layout::Robomimic => match rel {
                    "actions" => "action".into(),
                    "rewards" => "next.reward".into(),
                    "dones" => "next.done".into(),
                    "states" => "observation.environment_state".into(),
                    _ => match rel.strip_prefix("obs/") {
                        Some(k) if camera => format!("observation.images.{}", k.replace('/', ".")),
                        Some(k) => format!("observation.{}", k.replace('/', ".")),
                        None => rel.to_owned(),
                    },
                },
            }
        }
    }
}
