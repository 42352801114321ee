//! The checks of a root's videos: each video file's index, size, codec and episode spans, and
//! decoding the ends or every frame of every episode.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;
use serde_json::Value;

use super::{DecodeCheck, Sink, ValidateOptions};
use crate::dataset::{Dataset, OpenOptions};
use crate::error::{Error, Location};
use crate::meta::{self, Episode, Info};
use crate::outputs::frame_dims;
use crate::progress::Progress;
use crate::rules::{self, Severity};
use crate::video::FrameIndex;

/// One video file of one camera: present, indexable, codec and frame size as `info.json`
/// says, and every episode's span holding one frame per row at the row's time.
#[allow(clippy::too_many_arguments)]
pub(super) fn check_video_file(
    root: &Path,
    info: &Info,
    key: &str,
    vk: usize,
    file: (i64, i64),
    eps: &[&Episode],
    opts: &ValidateOptions,
    sink: &Sink,
) {
    let path = match meta::video_file_path(root, info, key, file.0, file.1) {
        Ok(p) => p,
        Err(e) => {
            return sink.failed(
                "video_file",
                &e,
                Location::file(root.join("meta/info.json")).with_key(key),
            )
        }
    };
    let at = |ep: Option<i64>| {
        let l = Location::file(&path).with_key(key);
        match ep {
            Some(e) => l.with_episode(e),
            None => l,
        }
    };
    let index = match FrameIndex::build(&path) {
        Ok(i) => i,
        Err(e) => return sink.failed("video_file", &e.within(None, Some(key)), at(None)),
    };
    if let Some(f) = info.features.get(key) {
        let (h, w, _) = frame_dims(f);
        if (index.width as usize, index.height as usize) != (w, h) {
            sink.error(
                "video_size",
                at(None),
                format!(
                    "frames are {}x{}, info.json says {w}x{h} (width x height)",
                    index.width, index.height
                ),
            );
        }
        let declared = info
            .raw
            .pointer(&format!(
                "/features/{}/info/video.codec",
                key.replace('~', "~0").replace('/', "~1")
            ))
            .and_then(Value::as_str);
        if let Some(c) = declared {
            if !codec_matches(c, &index.codec) {
                sink.warning(
                    "video_codec",
                    at(None),
                    format!("the stream is {}, info.json says '{c}'", index.codec),
                );
            }
        }
    }
    let half = 0.5 / info.fps;
    // episodes sharing the file must not share frames: each would show the other's
    let mut spans: Vec<(f64, f64, i64)> = eps
        .iter()
        .filter_map(|e| {
            e.videos
                .get(vk)
                .map(|v| (v.from_timestamp, v.to_timestamp, e.episode_index))
        })
        .collect();
    spans.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    for w in spans.windows(2) {
        if let [(_, a_to, a_ep), (b_from, _, b_ep)] = w {
            if *b_from < a_to - half {
                sink.error(
                    "video_span",
                    at(Some(*b_ep)),
                    format!(
                        "its span from {b_from:.6} s overlaps episode {a_ep}'s (to {a_to:.6} s) in this file"
                    ),
                );
            }
        }
    }
    for e in eps {
        let Some(v) = e.videos.get(vk) else {
            continue;
        };
        let (lo, hi) = meta::episode_span(e, v, info.fps);
        if let Some(b) = rules::video_span(&path, key, e, v, index.count_in(lo, hi)) {
            let short = b.severity == Severity::Error;
            sink.broken(b);
            if short {
                continue;
            }
        }
        // each row's time (frame i at i/fps) has a frame within tolerance
        let mut worst: Option<(i64, f64)> = None;
        let mut off = 0usize;
        for i in 0..e.length.max(0) {
            let t = v.from_timestamp + i as f64 / info.fps;
            let d = index
                .nearest(t)
                .map_or(f64::INFINITY, |(_, ft)| (ft - t).abs());
            let near = d < opts.tolerance_s; // (NaN: not near)
            if !near {
                off += 1;
                if worst.is_none_or(|(_, w)| d > w) {
                    worst = Some((i, d));
                }
            }
        }
        if let Some((i, d)) = worst {
            sink.error(
                "video_times",
                at(Some(e.episode_index)),
                format!(
                    "{off} frame(s) are not at their row's time within tolerance_s={}; worst: frame {i}, {d:.6} s away",
                    opts.tolerance_s
                ),
            );
        }
    }
}

/// LeRobot writes PyAV's codec names (`av1`, `h264`, `hevc`, `libsvtav1` in old datasets);
/// FFmpeg's codec ids say the same with other spellings.
fn codec_matches(declared: &str, stream: &str) -> bool {
    let norm = |s: &str| -> String {
        match s.to_ascii_lowercase().as_str() {
            "libsvtav1" | "libaom-av1" | "libdav1d" | "av1" => "av1".into(),
            "h265" | "hevc" | "libx265" => "hevc".into(),
            "h264" | "libx264" | "avc" => "h264".into(),
            other => other.into(),
        }
    };
    norm(declared) == norm(stream)
}

/// The largest frame the decode checks allocate for (a frame size from a broken `info.json`
/// must not abort the process): 128 MiB, an 8K RGB frame (95 MiB) with room to spare.
const MAX_FRAME_BYTES: usize = 128 << 20;

/// Decodes the first and last (or every) frame of every episode in every camera (videos and
/// embedded images), each at its row's timestamp as the reader does; returns the frames
/// decoded. Episodes whose rows or files were reported broken above are decoded all the same:
/// a decode failure is a finding of its own, except a frame missed at a timestamp the
/// `timestamps` check already reported off the grid (one problem, one finding).
pub(super) fn decode_checks(
    root: &Path,
    episodes: &[Episode],
    opts: &ValidateOptions,
    sink: &Sink,
    progress: &Progress,
) -> u64 {
    let ds = match Dataset::open(
        root,
        OpenOptions {
            tolerance_s: opts.tolerance_s,
            decode_threads: opts.decode_threads,
            // what FFmpeg would conceal is a finding here
            strict_decode: true,
            ..Default::default()
        },
    ) {
        Ok(d) => d,
        Err(e) => {
            // (the checks above name the cause; reported once per run: by its first part)
            if opts.part.first() {
                sink.failed("decode", &e, Location::file(root));
            }
            return 0;
        }
    };
    let cameras: Vec<(String, usize)> = ds
        .outputs()
        .iter()
        .filter(|o| o.is_frame())
        .map(|o| (o.key.clone(), o.item_bytes()))
        .collect();
    let off_grid = sink.episodes_with("timestamps");
    let decoded = AtomicU64::new(0);
    // (on the dataset's decode threads: see `Dataset::on_decode_threads`)
    let run = || {
        episodes.par_iter().for_each(|e| {
            if progress.cancelled() {
                return;
            }
            let (Some(start), Ok(len)) = (
                ds.item_of_episode(e.episode_index),
                usize::try_from(e.length),
            ) else {
                progress.step();
                return;
            };
            // (the data file whose timestamps checks speak for this episode)
            let data_path =
                meta::data_file_path(root, ds.info(), e.data_chunk_index, e.data_file_index).ok();
            // the frames to decode: both ends, or every frame in chunks (never all indices at
            // once: the length comes from disk)
            let last = len.saturating_sub(1);
            for (key, bytes) in &cameras {
                if *bytes > MAX_FRAME_BYTES {
                    sink.error(
                        "decode",
                        Location::file(root.join("meta/info.json")).with_key(key.clone()),
                        format!("frames of {bytes} bytes are beyond what roboframes decodes"),
                    );
                    continue;
                }
                // at most 32 frames and 64 MiB per chunk (one chunk per decoding thread at a time)
                let per_chunk = ((64usize << 20) / (*bytes).max(1)).clamp(1, 32);
                let (first, end, step) = match opts.decode {
                    DecodeCheck::All => (0, len, per_chunk),
                    _ => (0, 1, 1),
                };
                for a in (first..end).step_by(step) {
                    let chunk: Vec<i64> = match opts.decode {
                        DecodeCheck::All => (a..(a + step).min(len))
                            .map(|i| (start + i) as i64)
                            .collect(),
                        _ if last > 0 => vec![start as i64, (start + last) as i64],
                        _ => vec![start as i64],
                    };
                    match ds.fill_one(key, &chunk) {
                        Ok(_) => {
                            decoded.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                        }
                        Err(Error::FrameTimestamp { .. })
                            if off_grid.contains(&(data_path.clone(), e.episode_index)) =>
                        {
                            break;
                        }
                        Err(err) => {
                            let err = err.within(Some(e.episode_index), Some(key));
                            sink.failed("decode", &err, Location::file(root).with_key(key.clone()));
                            break;
                        }
                    }
                    if progress.cancelled() {
                        break;
                    }
                }
            }
            progress.step();
        })
    };
    if let Err(e) = ds.on_decode_threads(run) {
        sink.failed("decode", &e, Location::file(root));
    }
    decoded.load(Ordering::Relaxed)
}
