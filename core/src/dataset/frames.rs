//! Video and image frames of a dataset: how they are written (depth maps included), where an
//! episode's frames are, the planner run with its timeline checks, `decode_frames` and
//! `keyframe_items`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use super::{Dataset, Runtime, NEVER};
use crate::depth::{DepthImageWriter, DepthOutput, DepthWriter};
use crate::error::{Error, Location, Result};
use crate::frame::{FrameFormat, FrameOut};
use crate::meta::{self, Episode};
use crate::outputs::{OutputKind, OutputSpec};
use crate::plan::{self, FrameTarget, ImageRequest, VideoRequest};
use crate::rules;
use rayon::prelude::*;

impl Dataset {
    /// The writer of depth key `key`'s frames as `output`: the codes, or through the key's
    /// dequantisation table (made once per key and unit).
    fn depth_writer(&self, key: &str, output: DepthOutput) -> Result<DepthWriter> {
        let Some(unit) = output.unit() else {
            return Ok(DepthWriter {
                output,
                table: None,
            });
        };
        let quant = self
            .info
            .features
            .get(key)
            .and_then(|f| f.depth)
            .ok_or_else(|| Error::internal("depth output", format!("'{key}' is not a depth map")))?
            .quant;
        let mut tables = self.depth_tables.lock().unwrap_or_else(|e| e.into_inner());
        let table = tables
            .entry((key.to_owned(), output))
            .or_insert_with(|| quant.table(unit))
            .clone();
        Ok(DepthWriter {
            output,
            table: Some(table),
        })
    }

    /// How the frames of output `spec` are written: depth maps by their writer, other frames in
    /// `fmt`.
    pub(super) fn frame_out(&self, spec: &OutputSpec, fmt: FrameFormat) -> Result<FrameOut> {
        match (spec.depth, spec.kind) {
            (Some(d), OutputKind::Image) => {
                let recorded = self
                    .info
                    .features
                    .get(&spec.key)
                    .and_then(|f| f.depth)
                    .and_then(|d| d.unit);
                Ok(FrameOut::DepthImage(DepthImageWriter::new(recorded, d)))
            }
            (Some(d), _) => Ok(FrameOut::Depth(self.depth_writer(&spec.key, d)?)),
            (None, _) => Ok(FrameOut::Rgb(fmt)),
        }
    }

    /// Runs frame requests on this process's runtime and cache.
    pub(super) fn run_plan(
        &self,
        videos: Vec<VideoRequest>,
        images: Vec<ImageRequest>,
        targets: &[FrameTarget],
        cancel: &AtomicBool,
    ) -> Result<()> {
        let rt = self.runtime()?;
        self.check_timelines(&rt, &videos, targets)?;
        let cache = self.frame_cache();
        let exec = plan::Exec {
            pool: &rt.pool,
            decoders: &rt.decoders,
            cache: cache.as_deref(),
            cancel,
        };
        plan::run(&exec, videos, images, targets, self.tolerance_s)
    }

    /// Checks, once per video file, that each episode's span in the file holds at least its
    /// number of rows of frames, and refuses the file when one does not. Every
    /// query then finds a frame within tolerance or fails; but a file whose timeline moved (a
    /// damaged edit list or `ctts` table makes the demuxer drop the first frame and shift every
    /// later one by a frame) would give each time a frame, the wrong one, and only the last
    /// episode would miss one. More frames than rows is allowed (LeRobot reads converted
    /// datasets whose videos have a spare frame), and with `tolerance_s` of half a frame period
    /// or more the caller accepts the nearest frame, so nothing is checked.
    fn check_timelines(
        &self,
        rt: &Runtime,
        videos: &[VideoRequest],
        targets: &[FrameTarget],
    ) -> Result<()> {
        if self.tolerance_s >= 0.5 / self.info.fps {
            return Ok(());
        }
        // one request per file (a batch's requests share each file's path)
        let mut files: Vec<&VideoRequest> = Vec::new();
        for r in videos {
            if !files
                .iter()
                .any(|f| Arc::ptr_eq(&f.path, &r.path) || f.path == r.path)
            {
                files.push(r);
            }
        }
        let todo: Vec<&VideoRequest> = {
            let known = self.timelines.lock().unwrap_or_else(|e| e.into_inner());
            files
                .iter()
                .copied()
                .filter(|r| !known.contains_key(r.path.as_path()))
                .collect()
        };
        if !todo.is_empty() {
            let found: Vec<(PathBuf, Vec<(i64, String)>)> = rt.pool.install(|| {
                todo.par_iter()
                    .map(|r| -> Result<(PathBuf, Vec<(i64, String)>)> {
                        Ok((r.path.as_ref().clone(), self.short_spans(rt, r, targets)?))
                    })
                    .collect::<Result<_>>()
            })?;
            let mut known = self.timelines.lock().unwrap_or_else(|e| e.into_inner());
            known.extend(found);
        }
        let known = self.timelines.lock().unwrap_or_else(|e| e.into_inner());
        for f in &files {
            let Some(bad) = known.get(f.path.as_path()).filter(|b| !b.is_empty()) else {
                continue;
            };
            // (the whole file: a frame missing in one episode's span shifts the later ones)
            if let Some((ep, msg)) = bad.first() {
                return Err(Error::Video {
                    at: Location::file(f.path.as_path())
                        .with_episode(*ep)
                        .with_key(targets.get(f.target).map_or("", |t| t.key.as_str())),
                    msg: format!(
                        "{msg}; the file is refused (with tolerance_s of half a frame period or \
                         more, the nearest frames are read instead)"
                    ),
                });
            }
        }
        Ok(())
    }

    /// The episodes of the file `r` reads whose span holds fewer frames than they have rows,
    /// with the reason.
    fn short_spans(
        &self,
        rt: &Runtime,
        r: &VideoRequest,
        targets: &[FrameTarget],
    ) -> Result<Vec<(i64, String)>> {
        let key = targets.get(r.target).map_or("", |t| t.key.as_str());
        let vk = self.video_position(key)?;
        let place = |e: &Episode| e.videos.get(vk).map(|v| (v.chunk_index, v.file_index));
        let by_index = self
            .pos_of
            .get(&r.episode)
            .and_then(|&p| self.episodes.get(p));
        let Some(file) = by_index.and_then(place) else {
            return Ok(Vec::new());
        };
        let index = rt
            .decoders
            .index(&r.path)
            .map_err(|e| e.within(Some(r.episode), Some(key)))?;
        let mut short = Vec::new();
        let in_file = self
            .in_video_file
            .get(vk)
            .and_then(|files| files.get(&file))
            .into_iter()
            .flatten()
            .filter_map(|&p| self.episodes.get(p));
        for e in in_file {
            let Some(v) = e.videos.get(vk) else { continue };
            let (lo, hi) = self.span_of(e, v);
            let broken = rules::video_span(r.path.as_path(), key, e, v, index.count_in(lo, hi));
            if let Some(b) = broken.filter(|b| b.severity == rules::Severity::Error) {
                short.push((e.episode_index, b.message));
            }
        }
        Ok(short)
    }

    pub(super) fn video_position(&self, key: &str) -> Result<usize> {
        self.video_keys
            .iter()
            .position(|k| k == key)
            .ok_or_else(|| Error::InvalidArgument {
                msg: format!(
                    "'{key}' is not a video key (video keys: {})",
                    self.video_keys.join(", ")
                ),
            })
    }

    /// The file and start time of episode `e` for the video key at position `vk`.
    pub(super) fn video_location(
        &self,
        e: &Episode,
        vk: usize,
        key: &str,
        paths: &mut HashMap<(i64, i64), Arc<PathBuf>>,
    ) -> Result<(Arc<PathBuf>, f64, (f64, f64))> {
        let v = e.videos.get(vk).ok_or_else(|| {
            Error::metadata(
                Location::file(self.info.episodes_path(&self.root)).with_episode(e.episode_index),
                format!("no video location for '{key}'"),
            )
        })?;
        let path = match paths.get(&(v.chunk_index, v.file_index)) {
            Some(p) => p.clone(),
            None => {
                let p = Arc::new(meta::video_file_path(
                    &self.root,
                    &self.info,
                    key,
                    v.chunk_index,
                    v.file_index,
                )?);
                paths.insert((v.chunk_index, v.file_index), p.clone());
                p
            }
        };
        Ok((path, v.from_timestamp, self.span_of(e, v)))
    }

    /// [`meta::episode_span`] with this dataset's fps.
    fn span_of(&self, e: &Episode, v: &meta::EpisodeVideo) -> (f64, f64) {
        meta::episode_span(e, v, self.info.fps)
    }

    /// Decodes the frames of video key `camera` at `timestamps[i]` seconds into episode
    /// `episodes[i]` (LeRobot's per-row `timestamp`: the frame's time in its episode), into
    /// `out` (`n` frames in `fmt`, back to back). Any episode of the dataset may be named,
    /// selected or not; the nearest frame must lie within `tolerance_s`.
    pub fn decode_frames(
        &self,
        camera: &str,
        episodes: &[i64],
        timestamps: &[f64],
        fmt: FrameFormat,
        out: &mut [u8],
    ) -> Result<()> {
        let dims = self.frame_dims(camera)?;
        let vk = self.video_position(camera)?;
        let spec = self
            .outputs_for(fmt)
            .into_iter()
            .find(|o| o.kind == OutputKind::Video && o.key == camera)
            .ok_or_else(|| Error::internal("decode_frames", format!("no output '{camera}'")))?;
        let frame_out = self.frame_out(&spec, fmt)?;
        if episodes.len() != timestamps.len() {
            return Err(Error::InvalidArgument {
                msg: format!(
                    "{} episode indices but {} timestamps",
                    episodes.len(),
                    timestamps.len()
                ),
            });
        }
        let frame = frame_out.frame_bytes(dims.0, dims.1, dims.2);
        if out.len() != episodes.len() * frame {
            return Err(Error::InvalidArgument {
                msg: format!(
                    "output of {} bytes for {} frames of {frame} bytes",
                    out.len(),
                    episodes.len()
                ),
            });
        }
        let mut paths = HashMap::new();
        let mut videos = Vec::with_capacity(episodes.len());
        for (i, (&ep, &ts)) in episodes.iter().zip(timestamps).enumerate() {
            let e = self
                .pos_of
                .get(&ep)
                .and_then(|&p| self.episodes.get(p))
                .ok_or_else(|| Error::InvalidArgument {
                    msg: format!(
                        "episode {ep} is not in the dataset at '{}' ({} episodes)",
                        self.root.display(),
                        self.episodes.len()
                    ),
                })?;
            let (path, from_ts, span) = self.video_location(e, vk, camera, &mut paths)?;
            if !ts.is_finite() {
                return Err(Error::InvalidArgument {
                    msg: format!("timestamp {ts} of request {i} (episode {ep}) is not finite"),
                });
            }
            // Episodes share files: the frame found must be this episode's (a time past its end,
            // or a loose tolerance, would reach a neighbour's).
            videos.push(VideoRequest {
                target: 0,
                slot: i,
                path,
                time_s: from_ts + ts,
                episode: ep,
                span,
                caller_time: true,
            });
        }
        if videos.is_empty() {
            return Ok(());
        }
        let targets = [FrameTarget::new(out, camera, frame_out, dims)];
        self.run_plan(videos, Vec::new(), &targets, &NEVER)
    }

    /// For every item (in item order), whether its frame starts a keyframe group in every
    /// video key (decodes without earlier frames). Samplers use it to cut the dataset into
    /// runs that decode on their own. All true for datasets without videos.
    pub fn keyframe_items(&self) -> Result<Vec<bool>> {
        let rt = self.runtime()?;
        let mut out = vec![true; self.len()];
        let mut paths = HashMap::new();
        for (s, &p) in self.selected.iter().enumerate() {
            let e = self.episode_at(p)?;
            let f = self.data_file(e)?;
            let base = self.cum.get(s).copied().unwrap_or(0);
            for (vk, key) in self.video_keys.iter().enumerate() {
                let (path, from_ts, _) = self.video_location(e, vk, key, &mut paths)?;
                let index = rt
                    .decoders
                    .index(&path)
                    .map_err(|er| er.within(Some(e.episode_index), Some(key)))?;
                for r in 0..e.length.max(0) {
                    let row = f.row_of(e.dataset_from_index + r)?;
                    let ts = f.timestamp(row).ok_or_else(|| Error::MissingColumn {
                        at: Location::file(&f.path),
                        column: "timestamp".into(),
                    })?;
                    let key_frame = index
                        .nearest(from_ts + f64::from(ts))
                        .is_some_and(|(pos, _)| index.start_of(pos) == pos);
                    if let Some(o) = out.get_mut(base + r as usize) {
                        *o &= key_frame;
                    }
                }
            }
        }
        Ok(out)
    }
}
