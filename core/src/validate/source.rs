//! `validate` of a source read in place (HDF5 files): the source opens (its layout, episodes
//! and columns), every episode's datasets have one row per frame and can be read, and camera
//! frames decode (the ends of every episode, or every frame).

use std::path::Path;

use rayon::prelude::*;

use super::{finish, first_only, DecodeCheck, Report, Sink, ValidateOptions};
use crate::dataset::{Dataset, OpenOptions};
use crate::error::Location;
use crate::progress::Progress;

/// Frames decoded at once per camera.
const DECODE_CHUNK: usize = 64;

/// Checks the source at `root` (not a LeRobot root).
pub(super) fn validate_source(root: &Path, opts: &ValidateOptions, progress: &Progress) -> Report {
    let sink = Sink::default();
    let mut report = Report::default();
    let open = OpenOptions {
        tolerance_s: opts.tolerance_s,
        decode_threads: opts.decode_threads,
        source: opts.source.clone(),
        ..OpenOptions::default()
    };
    let ds = match Dataset::open(root, open) {
        Ok(ds) => ds,
        Err(e) => {
            sink.failed("open", &e, Location::file(root));
            return finish(report, first_only(sink, opts.part), true);
        }
    };
    if opts.part.first() {
        for w in ds.open_warnings() {
            sink.warning("left_out", Location::file(root), w.clone());
        }
    }
    let episodes = ds.episode_table().to_vec();
    report.episodes = episodes.len();
    report.frames = episodes
        .iter()
        .fold(0u64, |n, e| n.saturating_add(e.length.max(0) as u64));
    report.data_files = ds
        .info()
        .raw
        .get("source")
        .and_then(|s| s.get("files"))
        .and_then(|f| f.as_array())
        .map_or(0, Vec::len);
    let cameras = ds.info().camera_keys();
    // (this part's episodes: a contiguous range)
    let episodes = opts.part.mine(episodes);
    progress.add_total(episodes.len());
    // (on the dataset's decode threads: see `Dataset::on_decode_threads`)
    let run = || {
        episodes
            .par_iter()
            .map(|e| {
                let mut n = 0u64;
                if progress.cancelled() {
                    return n;
                }
                let at = || Location::default().with_episode(e.episode_index);
                match ds.episode_rows(e.episode_index) {
                    Err(err) => sink.failed("episode", &err, at()),
                    Ok(_) => {
                        let first = e.dataset_from_index;
                        let last = e.dataset_to_index.saturating_sub(1);
                        let items: Vec<i64> = match opts.decode {
                            DecodeCheck::None => Vec::new(),
                            DecodeCheck::Ends if e.length > 0 => {
                                if first == last {
                                    vec![first]
                                } else {
                                    vec![first, last]
                                }
                            }
                            DecodeCheck::Ends => Vec::new(),
                            DecodeCheck::All => (first..e.dataset_to_index).collect(),
                        };
                        // (a bounded number of frames at a time: an episode's frames may not fit
                        // in memory at once)
                        for cam in &cameras {
                            for chunk in items.chunks(DECODE_CHUNK) {
                                if progress.cancelled() {
                                    break;
                                }
                                match ds.fill_one(cam, chunk) {
                                    Ok(_) => n = n.saturating_add(chunk.len() as u64),
                                    Err(err) => {
                                        sink.failed(
                                            "decode",
                                            &err.within(Some(e.episode_index), Some(cam)),
                                            at().with_key(cam.clone()),
                                        );
                                        break;
                                    }
                                }
                            }
                        }
                    }
                }
                progress.step();
                n
            })
            .sum::<u64>()
    };
    let decoded = match ds.on_decode_threads(run) {
        Ok(n) => n,
        Err(e) => {
            sink.failed("decode", &e, Location::file(root));
            0
        }
    };
    report.frames_decoded = decoded;
    let complete = !progress.cancelled();
    finish(report, sink, complete)
}
