//! The entries of an item (LeRobot's keys, in LeRobot's order) and the shape and element type
//! of each, for a given frame format.

use indexmap::IndexMap;

use crate::depth::DepthOutput;
use crate::frame::FrameFormat;
use crate::meta::{DType, Feature, FeatureKind, Info};

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
    /// A language column's value (LeRobot 0.6's `language_persistent` / `language_events`):
    /// nested values, one per item.
    Language,
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
    /// `(H, W, C)` of one frame, for video and image outputs (`C` is 1 for a depth map).
    pub frame: Option<(usize, usize, usize)>,
    /// For a depth map's frames, what they hold (their element type is its, whatever the
    /// frame format).
    pub depth: Option<DepthOutput>,
}

impl OutputSpec {
    /// Number of elements of one item's value.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
    /// Bytes of one item's value (0 for outputs that are not arrays).
    pub fn item_bytes(&self) -> usize {
        if self.is_array() {
            self.numel() * self.dtype.size()
        } else {
            0
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
    /// True for outputs filled into arrays (every kind but strings and language values, which
    /// are returned as values).
    pub fn is_array(&self) -> bool {
        !self.is_string() && self.kind != OutputKind::Language
    }
    /// True for outputs of camera frames (video or image).
    pub fn is_frame(&self) -> bool {
        matches!(self.kind, OutputKind::Video | OutputKind::Image)
    }

    /// This spec with a depth map's frames holding `d` (other outputs are returned unchanged).
    pub fn with_depth(&self, d: DepthOutput) -> OutputSpec {
        match self.depth {
            Some(_) => OutputSpec {
                dtype: depth_dtype(self.kind, d),
                depth: Some(d),
                ..self.clone()
            },
            None => self.clone(),
        }
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
            dtype: self
                .depth
                .map_or(fmt.pixel.dtype(), |d| depth_dtype(self.kind, d)),
            ..self.clone()
        }
    }
}

/// The element type of a depth map's frames read as `d`: a depth video's codes are uint16 (its
/// depth float32); a depth image's recorded values (or depth) are float32.
fn depth_dtype(kind: OutputKind, d: DepthOutput) -> DType {
    if kind == OutputKind::Image {
        DType::F32
    } else {
        d.dtype()
    }
}

/// The height, width and channels of a video or image feature. The axes are found from the
/// feature's `names` (LeRobot writes `["height", "width", "channels"]`); without names the
/// shape is read as `(H, W, C)` unless only its first axis looks like a channel count.
pub fn frame_dims(f: &Feature) -> (usize, usize, usize) {
    let video = f.kind == FeatureKind::Video;
    let by_name = f.names.as_ref().and_then(|names| {
        let pos = |n: &str| names.iter().position(|x| x == n);
        match (
            pos("height"),
            pos("width"),
            pos("channels").or_else(|| pos("channel")),
        ) {
            (Some(h), Some(w), Some(c)) if names.len() == f.shape.len() => {
                Some((*f.shape.get(h)?, *f.shape.get(w)?, *f.shape.get(c)?))
            }
            _ => None,
        }
    });
    let (h, w, c) = by_name.unwrap_or(match f.shape.as_slice() {
        [h, w, c @ (1 | 3 | 4)] => (*h, *w, *c),
        [c @ (1 | 3 | 4), h, w] => (*h, *w, *c),
        [h, w, c] => (*h, *w, *c),
        _ => (0, 0, 0),
    });
    // videos are decoded to RGB; a depth map (video or image) has one channel, whatever its
    // declared shape says (a depth image with more is refused when decoded)
    let channels = match (video, f.depth.is_some()) {
        (_, true) => 1,
        (true, false) => 3,
        (false, false) => c,
    };
    (h, w, channels)
}

/// The item entries for `info` and the frame offsets `delta`, frames as uint8 `(H, W, C)` and
/// depth maps as `depth` says; `task` (unless `has_tasks` is false: a source without tasks),
/// then `subtask` when the dataset has subtasks, come last.
pub fn build_outputs(
    info: &Info,
    delta: &IndexMap<String, Vec<i64>>,
    has_tasks: bool,
    has_subtasks: bool,
    depth: DepthOutput,
) -> Vec<OutputSpec> {
    let mut outs = Vec::new();
    let win = |k: &str| delta.get(k).map(Vec::len);
    let with_t = |k: &str, shape: Vec<usize>| match win(k) {
        Some(t) => std::iter::once(t).chain(shape).collect(),
        None => shape,
    };
    let frame_spec = |f: &Feature, kind: OutputKind| {
        let dims = frame_dims(f);
        let depth = f.depth.is_some().then_some(depth);
        OutputSpec {
            key: f.name.clone(),
            kind,
            dtype: depth.map_or(DType::U8, |d| depth_dtype(kind, d)),
            shape: with_t(&f.name, vec![dims.0, dims.1, dims.2]),
            window: win(&f.name),
            frame: Some(dims),
            depth,
        }
    };
    for f in info
        .features
        .values()
        .filter(|f| f.kind == FeatureKind::Video)
    {
        outs.push(frame_spec(f, OutputKind::Video));
    }
    for f in info
        .features
        .values()
        .filter(|f| f.kind != FeatureKind::Video)
    {
        let (kind, dtype, shape) = match &f.kind {
            FeatureKind::Numeric(dt) => (OutputKind::Numeric, dt.item_dtype(), f.item_shape()),
            FeatureKind::String => (OutputKind::String, DType::U8, vec![]),
            FeatureKind::Language => (OutputKind::Language, DType::U8, vec![]),
            FeatureKind::Image => {
                outs.push(frame_spec(f, OutputKind::Image));
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
            depth: None,
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
            depth: None,
        });
    }
    let labels = [("task", OutputKind::Task), ("subtask", OutputKind::Subtask)];
    let labels = labels.into_iter().take(if has_subtasks { 2 } else { 1 });
    for (key, kind) in labels.skip(if has_tasks { 0 } else { 1 }) {
        outs.push(OutputSpec {
            key: key.into(),
            kind,
            dtype: DType::U8,
            shape: vec![],
            window: None,
            frame: None,
            depth: None,
        });
    }
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
            depth: None,
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
    fn frame_dims_by_names_then_by_shape() {
        let feat = |kind: FeatureKind, shape: &[usize], names: Option<&[&str]>| Feature {
            name: "cam".into(),
            kind,
            dtype_str: String::new(),
            shape: shape.to_vec(),
            names: names.map(|n| n.iter().map(|s| s.to_string()).collect()),
            depth: None,
        };
        let hwc = Some(&["height", "width", "channels"][..]);
        let chw = Some(&["channels", "height", "width"][..]);
        assert_eq!(
            frame_dims(&feat(FeatureKind::Video, &[64, 96, 3], hwc)),
            (64, 96, 3)
        );
        // 3 x 4 x 3 is ambiguous by shape; the names say which axis is which
        assert_eq!(
            frame_dims(&feat(FeatureKind::Image, &[3, 4, 1], chw)),
            (4, 1, 3)
        );
        assert_eq!(
            frame_dims(&feat(FeatureKind::Video, &[3, 64, 96], None)),
            (64, 96, 3)
        );
        assert_eq!(
            frame_dims(&feat(FeatureKind::Image, &[24, 40, 1], None)),
            (24, 40, 1)
        );
        assert_eq!(
            frame_dims(&feat(FeatureKind::Video, &[24, 40, 1], None)),
            (24, 40, 3)
        );
    }
}
