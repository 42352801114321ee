//! LeRobot's path templates (`data_path`, `video_path`) expanded into the paths of data and
//! video files, kept inside the dataset root. A v3.0 template names `{chunk_index}` and
//! `{file_index}`; a v2.x one `{episode_chunk}` and `{episode_index}` (its file is the episode's).

use std::path::{Path, PathBuf};

use super::Info;
use crate::error::{Error, Location, Result};
use crate::fs::inside_root;

/// The widest zero-padded field a path template may ask for (LeRobot writes 3; a width in the
/// thousands would make paths longer than any file system allows).
pub const MAX_PATH_FIELD_WIDTH: usize = 64;

/// Expands a LeRobot path template such as
/// `data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet`.
pub fn format_path(
    template: &str,
    vars: &[(&str, PathVar<'_>)],
) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| format!("unbalanced '{{' in path template '{template}'"))?;
        let field = &after[..close];
        let (name, spec) = match field.split_once(':') {
            Some((n, s)) => (n, Some(s)),
            None => (field, None),
        };
        let value = vars
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
            .ok_or_else(|| format!("unknown field '{name}' in path template '{template}'"))?;
        match (value, spec) {
            (PathVar::Str(s), _) => out.push_str(s),
            (PathVar::Int(i), None) => out.push_str(&i.to_string()),
            (PathVar::Int(i), Some(spec)) => {
                // Python's `{:03d}` / `{:d}` / `{:3d}`: an optional zero flag, a width, `d`
                let digits = spec.strip_suffix('d').ok_or_else(|| {
                    format!("unsupported format '{spec}' of '{name}' in path template '{template}'")
                })?;
                let zero = digits.starts_with('0');
                let width_text = digits.trim_start_matches('0');
                let width: usize = if width_text.is_empty() {
                    0
                } else {
                    width_text
                        .parse()
                        .ok()
                        .filter(|w| *w <= MAX_PATH_FIELD_WIDTH)
                        .ok_or_else(|| {
                            format!(
                                "width '{digits}' of '{name}' in path template '{template}' is not a number up to {MAX_PATH_FIELD_WIDTH}"
                            )
                        })?
                };
                if zero {
                    out.push_str(&format!("{i:0width$}"));
                } else {
                    out.push_str(&format!("{i:width$}"));
                }
            }
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A value substituted into a path template.
#[derive(Debug, Clone, Copy)]
pub enum PathVar<'a> {
    Int(i64),
    Str(&'a str),
}

/// Path of the data parquet file holding an episode.
pub fn data_file_path(root: &Path, info: &Info, chunk: i64, file: i64) -> Result<PathBuf> {
    let rel = format_path(
        &info.data_path,
        &[
            ("chunk_index", PathVar::Int(chunk)),
            ("file_index", PathVar::Int(file)),
            // v2.x: a file per episode, named by the episode (see `meta::v2`)
            ("episode_chunk", PathVar::Int(chunk)),
            ("episode_index", PathVar::Int(file)),
        ],
    )
    .map_err(|m| Error::metadata(Location::file(root.join("meta/info.json")), m))?;
    inside_root(root, &rel)
}

/// Path of the mp4 file holding a camera of an episode.
pub fn video_file_path(
    root: &Path,
    info: &Info,
    key: &str,
    chunk: i64,
    file: i64,
) -> Result<PathBuf> {
    let template = info.video_path.as_deref().ok_or_else(|| {
        Error::metadata(
            Location::file(root.join("meta/info.json")),
            "no 'video_path'",
        )
    })?;
    let rel = format_path(
        template,
        &[
            ("video_key", PathVar::Str(key)),
            ("chunk_index", PathVar::Int(chunk)),
            ("file_index", PathVar::Int(file)),
            ("episode_chunk", PathVar::Int(chunk)),
            ("episode_index", PathVar::Int(file)),
        ],
    )
    .map_err(|m| Error::metadata(Location::file(root.join("meta/info.json")), m))?;
    inside_root(root, &rel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_lerobot_templates() {
        let s = format_path(
            "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4",
            &[
                ("video_key", PathVar::Str("observation.images.top")),
                ("chunk_index", PathVar::Int(2)),
                ("file_index", PathVar::Int(17)),
            ],
        );
        assert_eq!(
            s.as_deref(),
            Ok("videos/observation.images.top/chunk-002/file-017.mp4")
        );
        assert!(format_path("x/{nope}", &[]).is_err());
        assert!(format_path("x/{chunk_index", &[("chunk_index", PathVar::Int(1))]).is_err());
    }

    #[test]
    fn absurd_template_widths_are_errors() {
        let var = [("chunk_index", PathVar::Int(1))];
        assert_eq!(format_path("c{chunk_index:5d}", &var).unwrap(), "c    1");
        assert_eq!(format_path("c{chunk_index:d}", &var).unwrap(), "c1");
        for bad in [
            "c{chunk_index:065536d}",
            "c{chunk_index:99999999999999999999d}",
            "c{chunk_index:03x}",
            "c{chunk_index:0a3d}",
        ] {
            assert!(format_path(bad, &var).is_err(), "{bad}");
        }
    }
}
