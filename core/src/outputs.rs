//! The entries of an item (LeRobot's keys, in LeRobot's order) and the shape and element type
//! of each, for a given frame format.

use indexmap::IndexMap;

use crate::frame::FrameFormat;
use crate::meta::{DType, FeatureKind, Info};

/// What an output entry of an item holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputKind {
    /// Decoded video frames.
    Video,
    /// Decoded embedded images.
    Image,
    /// Numbers from the data parquet.
    Numeric,
    /// Strings from the data parquet (one per item, or `T` per item).
    String,
    /// `{key}_is_pad` masks, bool `(T,)`.
    Pad,
    /// The task string of the item's `task_index`.
    Task,
    /// The subtask string of the item's `subtask_index` (datasets with `meta/subtasks.parquet`).
    Subtask,
}

/// One entry of an item: its key, kind, element type and per-item shape.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputSpec {
    pub key: String,
    pub kind: OutputKind,
    /// Element type of byte outputs (`Bool` for pads); unused for strings.
    pub dtype: DType,
    /// Shape of one item's value (`[]` for scalars and single strings).
    pub shape: Vec<usize>,
    /// Number of time steps when the key has `delta_timestamps`.
    pub window: Option<usize>,
    /// `(H, W, C)` of one frame, for video and image outputs.
    pub frame: Option<(usize, usize, usize)>,
}

impl OutputSpec {
    /// Number of elements of one item's value.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
    /// Bytes of one item's value (0 for string outputs).
    pub fn item_bytes(&self) -> usize {
        match self.kind {
            OutputKind::String | OutputKind::Task | OutputKind::Subtask => 0,
            _ => self.numel() * self.dtype.size(),
        }
    }
    /// Bytes of one time step of one item (one frame, one row).
    pub fn step_bytes(&self) -> usize {
        self.item_bytes() / self.window.unwrap_or(1).max(1)
    }
    /// True for outputs returned as strings.
    pub fn is_string(&self) -> bool {
        matches!(
            self.kind,
            OutputKind::String | OutputKind::Task | OutputKind::Subtask
        )
    }
    /// True for outputs of camera frames (video or image).
    pub fn is_frame(&self) -> bool {
        matches!(self.kind, OutputKind::Video | OutputKind::Image)
    }

    /// This spec with its frames in `fmt` (other kinds are returned unchanged).
    pub fn with_format(&self, fmt: FrameFormat) -> OutputSpec {
        let Some((h, w, c)) = self.frame else {
            return self.clone();
        };
        let mut shape: Vec<usize> = self.window.into_iter().collect();
        shape.extend(fmt.shape(h, w, c));
        OutputSpec {
            shape,
            dtype: fmt.pixel.dtype(),
            ..self.clone()
        }
    }
}

/// The height, width and channels of a video or image feature's `(H, W, C)` shape (LeRobot
/// writes HWC; a CHW shape with 1, 3 or 4 leading channels is read as such).
pub fn frame_dims(shape: &[usize], video: bool) -> (usize, usize, usize) {
    let (h, w, c) = match shape {
        [h, w, c @ (1 | 3 | 4)] => (*h, *w, *c),
        [c @ (1 | 3 | 4), h, w] => (*h, *w, *c),
        [h, w, c] => (*h, *w, *c),
        _ => (0, 0, 0),
    };
    // videos are always decoded to RGB
    (h, w, if video { 3 } else { c })
}

/// The item entries for `info` and the frame offsets `delta`, frames as uint8 `(H, W, C)`.
pub fn build_outputs(info: &Info, delta: &IndexMap<String, Vec<i64>>) -> Vec<OutputSpec> {
    let mut outs = Vec::new();
    let win = |k: &str| delta.get(k).map(Vec::len);
    let with_t = |k: &str, shape: Vec<usize>| match win(k) {
        Some(t) => std::iter::once(t).chain(shape).collect(),
        None => shape,
    };
    let frame_spec = |name: &str, kind: OutputKind, dims: (usize, usize, usize)| OutputSpec {
        key: name.to_owned(),
        kind,
        dtype: DType::U8,
        shape: with_t(name, vec![dims.0, dims.1, dims.2]),
        window: win(name),
        frame: Some(dims),
    };
    for f in info
        .features
        .values()
        .filter(|f| f.kind == FeatureKind::Video)
    {
        outs.push(frame_spec(
            &f.name,
            OutputKind::Video,
            frame_dims(&f.shape, true),
        ));
    }
    for f in info
        .features
        .values()
        .filter(|f| f.kind != FeatureKind::Video)
    {
        let (kind, dtype, shape) = match &f.kind {
            FeatureKind::Numeric(dt) => (
                OutputKind::Numeric,
                dt.item_dtype(),
                if f.is_scalar() {
                    vec![]
                } else {
                    f.shape.clone()
                },
            ),
            FeatureKind::String => (OutputKind::String, DType::U8, vec![]),
            FeatureKind::Image => {
                outs.push(frame_spec(
                    &f.name,
                    OutputKind::Image,
                    frame_dims(&f.shape, false),
                ));
                continue;
            }
            FeatureKind::Video => continue,
        };
        outs.push(OutputSpec {
            key: f.name.clone(),
            kind,
            dtype,
            shape: with_t(&f.name, shape),
            window: win(&f.name),
            frame: None,
        });
    }
    for (k, d) in delta {
        outs.push(OutputSpec {
            key: format!("{k}_is_pad"),
            kind: OutputKind::Pad,
            dtype: DType::Bool,
            shape: vec![d.len()],
            window: Some(d.len()),
            frame: None,
        });
    }
    outs.push(OutputSpec {
        key: "task".into(),
        kind: OutputKind::Task,
        dtype: DType::U8,
        shape: vec![],
        window: None,
        frame: None,
    });
    outs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::PixelType;

    #[test]
    fn formats_windowed_frames() {
        let spec = OutputSpec {
            key: "cam".into(),
            kind: OutputKind::Video,
            dtype: DType::U8,
            shape: vec![2, 4, 6, 3],
            window: Some(2),
            frame: Some((4, 6, 3)),
        };
        let f = spec.with_format(FrameFormat::LEROBOT);
        assert_eq!(f.shape, vec![2, 3, 4, 6]);
        assert_eq!(f.dtype, DType::F32);
        assert_eq!(f.step_bytes(), 3 * 4 * 6 * 4);
        let h = spec.with_format(FrameFormat {
            pixel: PixelType::BF16,
            channels_last: true,
        });
        assert_eq!(h.shape, vec![2, 4, 6, 3]);
        assert_eq!(h.item_bytes(), 2 * 4 * 6 * 3 * 2);
    }

    #[test]
    fn frame_dims_of_hwc_and_chw() {
        assert_eq!(frame_dims(&[64, 96, 3], true), (64, 96, 3));
        assert_eq!(frame_dims(&[3, 64, 96], true), (64, 96, 3));
        assert_eq!(frame_dims(&[24, 40, 1], false), (24, 40, 1));
        assert_eq!(frame_dims(&[24, 40, 1], true), (24, 40, 3));
    }
}
