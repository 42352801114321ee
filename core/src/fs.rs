//! The file-system rules of a dataset root: a local root is a folder, a file opened is a
//! regular file, and a path from a template stays inside the root.

use std::path::{Path, PathBuf};

use crate::error::{Error, Location, Result};

/// `Ok` when `path` is a regular file (after symlinks). A FIFO, socket or device would block
/// or stream without end when opened; a directory cannot be read as a file.
pub(crate) fn regular_file(path: &Path) -> Result<()> {
    let md = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if md.is_file() {
        Ok(())
    } else {
        Err(Error::Io {
            at: Location::file(path),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a regular file (a directory, FIFO, socket or device)",
            ),
        })
    }
}

/// `Ok` when the local `root` is a folder; a `NotFound` error that says what to do otherwise
/// (a file is not a dataset folder; a missing relative `org/name` is likely a Hub repo id).
pub(crate) fn local_root(root: &Path) -> Result<()> {
    if root.is_dir() {
        return Ok(());
    }
    let detail = if root.exists() {
        "not a directory: a dataset root is the folder holding meta/, data/ and videos/".into()
    } else {
        let text = root.to_string_lossy();
        let parts: Vec<&str> = text.split('/').collect();
        let repo_like = root.is_relative()
            && parts.len() == 2
            && parts.iter().all(|p| {
                !p.is_empty()
                    && p.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            });
        if repo_like {
            format!(
                "dataset root directory does not exist; to read the Hub dataset '{text}' in \
                 place, open 'hf://datasets/{text}' (or \
                 roboframes.torch.LeRobotDataset('{text}', streaming=True))"
            )
        } else {
            "dataset root directory does not exist".into()
        }
    };
    Err(Error::NotFound {
        at: Location::file(root),
        detail,
    })
}

/// `root/rel` when `rel` is a relative path that stays inside the root (no `..`, no absolute
/// or drive prefix). Symlinks below the root are followed as usual (a Hugging Face cache
/// snapshot links its files into the blob store), but a template cannot name a file outside
/// the dataset by itself.
pub(crate) fn inside_root(root: &Path, rel: &str) -> Result<PathBuf> {
    use std::path::Component;
    let p = Path::new(rel);
    let confined = !rel.is_empty()
        && p.components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if !confined {
        return Err(Error::metadata(
            Location::file(root.join("meta/info.json")),
            format!("path '{rel}' from a path template leads outside the dataset root"),
        ));
    }
    Ok(root.join(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_paths_are_errors() {
        let root = Path::new("/data/ds");
        assert_eq!(
            inside_root(root, "data/chunk-000/file-000.parquet").unwrap(),
            root.join("data/chunk-000/file-000.parquet")
        );
        for bad in ["../../etc/passwd", "/etc/passwd", "data/../../x", ""] {
            assert!(inside_root(root, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn special_files_are_refused() {
        let dir = std::env::temp_dir();
        assert!(regular_file(&dir).is_err());
        assert!(regular_file(Path::new("/dev/null")).is_err());
    }
}
