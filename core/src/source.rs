//! Where a dataset's episodes come from: a LeRobot v3.0 root (the default), or files another
//! project wrote that roboframes reads in place (HDF5: ALOHA episode files, robomimic/LIBERO
//! files). Which one is detected from the path, or forced with [`SourceOptions::format`].

use std::path::Path;

use indexmap::IndexMap;

use crate::error::{Error, Result};

/// Options of sources other than LeRobot roots (ignored for those).
#[derive(Debug, Clone, Default)]
pub struct SourceOptions {
    /// `"lerobot"` or `"hdf5"`; `None` detects the format from the path.
    pub format: Option<String>,
    /// Frames per second, for a source that stores no rate (item `timestamp` is
    /// `frame_index / fps`); overrides a rate the files store.
    pub fps: Option<f64>,
    /// The task of every episode, for a source that stores none.
    pub task: Option<String>,
    /// Key names: the source's names to the names items carry. `KeyMap::LeRobot` maps the
    /// layout's usual keys to LeRobot's (`observation.state`, `observation.images.<cam>`,
    /// `action`, ...).
    pub key_map: KeyMap,
}

/// How a source's keys are named in items.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum KeyMap {
    /// The source's own names (`observations/qpos`, `obs/agentview_image`, ...).
    #[default]
    Source,
    /// The layout's usual keys under LeRobot's names; other keys keep their own.
    LeRobot,
    /// Given names for some keys (source name -> item name); other keys keep their own.
    Names(IndexMap<String, String>),
}

/// The formats a root can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    LeRobot,
    Hdf5,
}

impl Format {
    /// The format named `name` (`"lerobot"`, `"hdf5"`).
    pub fn parse(name: &str) -> Result<Format> {
        match name {
            "lerobot" => Ok(Format::LeRobot),
            "hdf5" => Ok(Format::Hdf5),
            other => Err(Error::InvalidArgument {
                msg: format!("format must be 'lerobot' or 'hdf5', got '{other}'"),
            }),
        }
    }

    /// The format of a local path: a `.hdf5`/`.h5` file, or a folder holding such files and no
    /// `meta/info.json`, is HDF5; anything else is a LeRobot root (whose checks then say what
    /// is missing).
    pub fn detect(root: &Path, opts: &SourceOptions) -> Result<Format> {
        if let Some(f) = &opts.format {
            return Format::parse(f);
        }
        if is_hdf5_name(root) && root.is_file() {
            return Ok(Format::Hdf5);
        }
        if root.is_dir() && !root.join("meta").join("info.json").exists() {
            let any_h5 = std::fs::read_dir(root)
                .map(|rd| rd.flatten().any(|e| is_hdf5_name(&e.path())))
                .unwrap_or(false);
            if any_h5 {
                return Ok(Format::Hdf5);
            }
        }
        Ok(Format::LeRobot)
    }
}

/// True when the file name ends in `.hdf5`, `.h5` or `.he5`.
pub fn is_hdf5_name(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "hdf5" | "h5" | "he5"))
}
