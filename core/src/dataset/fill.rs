//! Batch fills: items located in their data tables, tabular entries copied, frame requests
//! collected for the planner, and windowed gathers of numeric features.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::{Dataset, ItemPos, OutBuf, NEVER};
use crate::depth::DepthOutput;
use crate::error::{Error, Location, Result};
use crate::frame::FrameFormat;
use crate::outputs::{OutputKind, OutputSpec};
use crate::plan::{FrameTarget, ImageRequest, VideoRequest};
use crate::table::{ColumnData, DataFile};
use crate::window::window;

impl Dataset {
    /// Only the output `key` (a camera) of the items at `indices`, as decoded (uint8 `(H, W, C)`
    /// frames, or a depth map's 12-bit codes as native-endian uint16 `(H, W, 1)`), frames back
    /// to back, and the frame's `(H, W, C)`.
    pub fn fill_one(&self, key: &str, indices: &[i64]) -> Result<(Vec<u8>, (usize, usize, usize))> {
        let fmt = FrameFormat::default();
        let specs: Vec<OutputSpec> = self
            .outputs_for(fmt)
            .iter()
            .map(|s| s.with_depth(DepthOutput::Codes))
            .collect();
        let spec = specs
            .iter()
            .find(|s| s.key == key && s.is_frame())
            .ok_or_else(|| Error::InvalidArgument {
                msg: format!("'{key}' is not a camera key"),
            })?;
        let dims = spec.frame.unwrap_or((0, 0, 0));
        let mut buf = vec![0u8; spec.item_bytes() * indices.len()];
        let mut outs: Vec<OutBuf<'_>> = Vec::with_capacity(specs.len());
        let mut mine = Some(buf.as_mut_slice());
        for s in &specs {
            if s.key == key && s.is_frame() {
                outs.push(mine.take().map_or(OutBuf::Skip, OutBuf::Bytes));
            } else {
                outs.push(OutBuf::Skip);
            }
        }
        self.fill_specs(indices, fmt, &specs, &mut outs, &NEVER)?;
        drop(outs);
        Ok((buf, dims))
    }

    /// Resolves item indices and loads their data files (whose rows were checked against
    /// `meta/episodes` once, when the file was loaded: [`Dataset::check_rows`]).
    fn locate(
        &self,
        indices: &[i64],
        cancel: &AtomicBool,
    ) -> Result<(Vec<ItemPos>, Vec<Arc<DataFile>>)> {
        let items: Vec<ItemPos> = indices
            .iter()
            .map(|&i| self.resolve(i))
            .collect::<Result<_>>()?;
        let mut files: Vec<Arc<DataFile>> = Vec::with_capacity(items.len());
        for it in &items {
            // (loading a table, a round trip per episode on a remote root, is worth a check)
            if cancel.load(Ordering::Relaxed) {
                return Err(Error::Cancelled);
            }
            let e = self.episode_at(it.ep)?;
            let f = self.data_file(e)?;
            f.row_of(it.abs)
                .map_err(|er| er.within(Some(e.episode_index), None))?;
            files.push(f);
        }
        Ok((items, files))
    }

    /// Copies the rows of a numeric feature for every item and offset into `dst` (items back to
    /// back, `row_bytes` per row) and, when given, the pad flags into `pads`.
    #[allow(clippy::too_many_arguments)]
    fn copy_rows(
        &self,
        key: &str,
        row_bytes: usize,
        offsets: Option<&[i64]>,
        items: &[ItemPos],
        files: &[Arc<DataFile>],
        dst: &mut [u8],
        mut pads: Option<&mut [u8]>,
    ) -> Result<()> {
        let mut n = 0usize;
        for (it, f) in items.iter().zip(files) {
            let e = self.episode_at(it.ep)?;
            for (r, pad) in window(offsets, e, it.abs) {
                let row = f
                    .row_of(r)
                    .map_err(|er| er.within(Some(e.episode_index), Some(key)))?;
                let src = f.fixed_row(key, row).ok_or_else(|| Error::MissingColumn {
                    at: Location::file(&f.path).with_episode(e.episode_index),
                    column: key.to_owned(),
                })?;
                let out = dst
                    .get_mut(n * row_bytes..(n + 1) * row_bytes)
                    .ok_or_else(|| Error::InvalidArgument {
                        msg: format!("output buffer for '{key}' too small"),
                    })?;
                if src.len() != out.len() {
                    return Err(Error::metadata(
                        Location::file(&f.path).with_key(key),
                        "row size disagrees with the feature shape",
                    ));
                }
                out.copy_from_slice(src);
                if let Some(p) = pads.as_deref_mut().and_then(|p| p.get_mut(n)) {
                    *p = u8::from(pad);
                }
                n += 1;
            }
        }
        Ok(())
    }

    /// Fills every array entry of the items at `indices` (string entries left out), in item
    /// order: `arrays[i]` receives the `i`-th non-string output of [`Dataset::outputs_for`]
    /// (`indices.len() * item_bytes` bytes). The form adapters without strings use (torch
    /// operators, the MLX primitive).
    pub fn fill_arrays(
        &self,
        indices: &[i64],
        fmt: FrameFormat,
        arrays: Vec<&mut [u8]>,
    ) -> Result<()> {
        let specs = self.outputs_for(fmt);
        let wanted = specs.iter().filter(|s| s.is_array()).count();
        if arrays.len() != wanted {
            return Err(Error::InvalidArgument {
                msg: format!("expected {wanted} output arrays, got {}", arrays.len()),
            });
        }
        let mut arrays = arrays.into_iter();
        let mut outs: Vec<OutBuf<'_>> = Vec::with_capacity(specs.len());
        for s in &specs {
            // (as many arrays as array entries: checked above)
            let next = if s.is_array() { arrays.next() } else { None };
            outs.push(next.map_or(OutBuf::Skip, OutBuf::Bytes));
        }
        self.fill_batch(indices, fmt, &mut outs)
    }

    /// Fills one batch with frames in `fmt`. `outs` follows [`Dataset::outputs_for`] one to one.
    pub fn fill_batch(
        &self,
        indices: &[i64],
        fmt: FrameFormat,
        outs: &mut [OutBuf<'_>],
    ) -> Result<()> {
        self.fill_batch_cancellable(indices, fmt, outs, &NEVER)
    }

    /// [`Dataset::fill_batch`] that stops with [`Error::Cancelled`] soon after `cancel` is set
    /// (between frames), leaving the buffers partly written.
    pub fn fill_batch_cancellable(
        &self,
        indices: &[i64],
        fmt: FrameFormat,
        outs: &mut [OutBuf<'_>],
        cancel: &AtomicBool,
    ) -> Result<()> {
        self.fill_specs(indices, fmt, &self.outputs_for(fmt), outs, cancel)
    }

    /// Fills the outputs `specs` (this dataset's, frames in `fmt`, depth maps as each spec
    /// says) of the items at `indices`.
    fn fill_specs(
        &self,
        indices: &[i64],
        fmt: FrameFormat,
        specs: &[OutputSpec],
        outs: &mut [OutBuf<'_>],
        cancel: &AtomicBool,
    ) -> Result<()> {
        if outs.len() != specs.len() {
            return Err(Error::InvalidArgument {
                msg: format!(
                    "expected {} output buffers, got {}",
                    specs.len(),
                    outs.len()
                ),
            });
        }
        let b = indices.len();
        for (spec, out) in specs.iter().zip(outs.iter()) {
            match out {
                OutBuf::Bytes(buf) if spec.is_array() && buf.len() == b * spec.item_bytes() => {}
                OutBuf::Strings(_) if spec.is_string() => {}
                OutBuf::Values(_) if spec.kind == OutputKind::Language => {}
                OutBuf::Skip => {}
                _ => {
                    return Err(Error::InvalidArgument {
                        msg: format!(
                            "output buffer for '{}' has the wrong kind or size",
                            spec.key
                        ),
                    })
                }
            }
        }
        let (items, files) = self.locate(indices, cancel)?;

        // Tabular outputs are plain copies; frame requests are collected for the planner.
        let mut videos: Vec<VideoRequest> = Vec::new();
        let mut images: Vec<ImageRequest> = Vec::new();
        let mut target_of: Vec<Option<usize>> = Vec::with_capacity(specs.len());
        let mut n_targets = 0usize;
        for (spec, out) in specs.iter().zip(outs.iter_mut()) {
            let offsets = self.delta.get(&spec.key).map(Vec::as_slice);
            if matches!(out, OutBuf::Skip) {
                target_of.push(None);
                continue;
            }
            target_of.push(spec.is_frame().then_some(n_targets));
            match (spec.kind, out) {
                (OutputKind::Video, _) => {
                    self.video_requests(spec, offsets, &items, &files, n_targets, &mut videos)?;
                    n_targets += 1;
                }
                (OutputKind::Image, _) => {
                    for (bi, (it, f)) in items.iter().zip(&files).enumerate() {
                        let e = self.episode_at(it.ep)?;
                        let steps = offsets.map_or(1, <[i64]>::len);
                        for (t, (r, _)) in window(offsets, e, it.abs).enumerate() {
                            let row = f
                                .row_of(r)
                                .map_err(|er| er.within(Some(e.episode_index), Some(&spec.key)))?;
                            images.push(ImageRequest {
                                target: n_targets,
                                slot: bi * steps + t,
                                file: f.clone(),
                                row,
                                episode: e.episode_index,
                            });
                        }
                    }
                    n_targets += 1;
                }
                (OutputKind::Numeric, OutBuf::Bytes(buf)) => {
                    self.copy_rows(
                        &spec.key,
                        spec.step_bytes(),
                        offsets,
                        &items,
                        &files,
                        buf,
                        None,
                    )?;
                }
                (OutputKind::Pad, OutBuf::Bytes(buf)) => {
                    let base = spec.key.strip_suffix("_is_pad").unwrap_or(&spec.key);
                    let offs = self.delta.get(base).map(Vec::as_slice);
                    let mut n = 0;
                    for it in &items {
                        let e = self.episode_at(it.ep)?;
                        for (_, pad) in window(offs, e, it.abs) {
                            if let Some(x) = buf.get_mut(n) {
                                *x = u8::from(pad);
                            }
                            n += 1;
                        }
                    }
                }
                (OutputKind::String, OutBuf::Strings(v)) => {
                    v.clear();
                    for (it, f) in items.iter().zip(&files) {
                        let e = self.episode_at(it.ep)?;
                        for (r, _) in window(offsets, e, it.abs) {
                            let row = f.row_of(r)?;
                            match f.columns.get(&spec.key) {
                                Some(ColumnData::Str(a)) if row < arrow_array::Array::len(a) => {
                                    v.push(a.value(row).to_owned())
                                }
                                _ => {
                                    return Err(Error::MissingColumn {
                                        at: Location::file(&f.path),
                                        column: spec.key.clone(),
                                    })
                                }
                            }
                        }
                    }
                }
                (OutputKind::Language, OutBuf::Values(v)) => {
                    v.clear();
                    for (it, f) in items.iter().zip(&files) {
                        let row = f.row_of(it.abs)?;
                        match f.columns.get(&spec.key) {
                            Some(ColumnData::Values(a)) => {
                                let value = a.get(row).cloned().ok_or_else(|| {
                                    Error::internal(
                                        "language values",
                                        format!("row {row} past the column of '{}'", spec.key),
                                    )
                                })?;
                                v.push(value);
                            }
                            _ => {
                                return Err(Error::MissingColumn {
                                    at: Location::file(&f.path),
                                    column: spec.key.clone(),
                                })
                            }
                        }
                    }
                }
                (kind @ (OutputKind::Task | OutputKind::Subtask), OutBuf::Strings(v)) => {
                    let (column, table, file) = match kind {
                        OutputKind::Task => ("task_index", Some(&self.tasks), "tasks"),
                        _ => ("subtask_index", self.subtasks.as_ref(), "subtasks"),
                    };
                    v.clear();
                    for (it, f) in items.iter().zip(&files) {
                        let e = self.episode_at(it.ep)?;
                        let row = f.row_of(it.abs)?;
                        let ti = f
                            .int_scalar(column, row)
                            .ok_or_else(|| Error::MissingColumn {
                                at: Location::file(&f.path),
                                column: column.into(),
                            })?;
                        let label = table.and_then(|t| t.get(&ti)).ok_or_else(|| {
                            Error::metadata(
                                Location::file(self.root.join(format!("meta/{file}.parquet")))
                                    .with_episode(e.episode_index),
                                format!("{column} {ti} has no entry in meta/{file}.parquet"),
                            )
                        })?;
                        v.push(label.clone());
                    }
                }
                _ => {
                    return Err(Error::InvalidArgument {
                        msg: format!("output buffer for '{}' has the wrong kind", spec.key),
                    })
                }
            }
        }
        if videos.is_empty() && images.is_empty() {
            return Ok(());
        }
        let mut targets: Vec<FrameTarget> = Vec::with_capacity(n_targets);
        for ((spec, out), t) in specs.iter().zip(outs.iter_mut()).zip(&target_of) {
            if let (Some(_), OutBuf::Bytes(buf), Some(dims)) = (t, out, spec.frame) {
                let frame_out = self.frame_out(spec, fmt)?;
                targets.push(FrameTarget::new(buf, &spec.key, frame_out, dims));
            }
        }
        self.run_plan(videos, images, &targets, cancel)
    }

    /// The video frame requests of one video output for a batch of items.
    fn video_requests(
        &self,
        spec: &OutputSpec,
        offsets: Option<&[i64]>,
        items: &[ItemPos],
        files: &[Arc<DataFile>],
        target: usize,
        out: &mut Vec<VideoRequest>,
    ) -> Result<()> {
        let vk = self.video_position(&spec.key)?;
        let steps = offsets.map_or(1, <[i64]>::len);
        let mut paths: HashMap<(i64, i64), Arc<PathBuf>> = HashMap::new();
        for (bi, (it, f)) in items.iter().zip(files).enumerate() {
            let e = self.episode_at(it.ep)?;
            let (path, from_ts, span) = self.video_location(e, vk, &spec.key, &mut paths)?;
            for (t, (r, _)) in window(offsets, e, it.abs).enumerate() {
                let row = f
                    .row_of(r)
                    .map_err(|er| er.within(Some(e.episode_index), Some(&spec.key)))?;
                let ts = f.timestamp(row).ok_or_else(|| Error::MissingColumn {
                    at: Location::file(&f.path),
                    column: "timestamp".into(),
                })?;
                out.push(VideoRequest {
                    target,
                    slot: bi * steps + t,
                    path: path.clone(),
                    time_s: from_ts + f64::from(ts),
                    episode: e.episode_index,
                    // (a wrong timestamp must not reach a neighbour's frame in a shared file)
                    span,
                    caller_time: false,
                });
            }
        }
        Ok(())
    }

    /// Gathers numeric feature `key` at frame offsets `offsets` around each item of `indices`,
    /// with LeRobot's clamping: `values` receives `(n, T, *row)` elements of the item dtype and
    /// `pads` `(n, T)` flags (1 where the unclamped row left the item's episode).
    pub fn gather(
        &self,
        key: &str,
        indices: &[i64],
        offsets: &[i64],
        values: &mut [u8],
        pads: &mut [u8],
    ) -> Result<()> {
        let (shape, dtype) = self.numeric_row(key)?;
        let row_bytes = shape.iter().product::<usize>() * dtype.size();
        let steps = indices.len() * offsets.len();
        if values.len() != steps * row_bytes || pads.len() != steps {
            return Err(Error::InvalidArgument {
                msg: format!(
                    "gather of '{key}': buffers of {} and {} bytes for {steps} rows of {row_bytes} bytes",
                    values.len(),
                    pads.len()
                ),
            });
        }
        let (items, files) = self.locate(indices, &NEVER)?;
        self.copy_rows(
            key,
            row_bytes,
            Some(offsets),
            &items,
            &files,
            values,
            Some(pads),
        )
    }
}
