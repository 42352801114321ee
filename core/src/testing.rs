//! Test support (feature `testing`): writes a small LeRobot v3.0 dataset so Rust tests of the
//! core and of the adapters can run the whole read path under valgrind without Python. The
//! Python suites test against datasets written by LeRobot's own writer; this one only mirrors
//! the layout (one H.264 camera, a vector feature, episodes concatenated in one mp4).

use std::fs;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use arrow_array::builder::{FixedSizeListBuilder, Float32Builder, ListBuilder, StringBuilder};
use arrow_array::{ArrayRef, Float32Array, Float64Array, Int64Array, RecordBatch, StringArray};
use parquet::arrow::ArrowWriter;

/// The camera key of the written dataset.
pub const CAMERA: &str = "observation.images.cam";
/// Frame size of the camera (width a multiple of 32: the swscale path).
pub const WIDTH: usize = 64;
pub const HEIGHT: usize = 48;
/// Frames per second.
pub const FPS: usize = 10;

fn write_parquet(path: &Path, columns: Vec<(&str, ArrayRef)>) -> std::io::Result<()> {
    let batch = RecordBatch::try_from_iter(columns).map_err(std::io::Error::other)?;
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let file = fs::File::create(path)?;
    let mut w = ArrowWriter::try_new(file, batch.schema(), None).map_err(std::io::Error::other)?;
    w.write(&batch).map_err(std::io::Error::other)?;
    w.close().map_err(std::io::Error::other)?;
    Ok(())
}

/// Writes `frames` frames of FFmpeg's `testsrc2` pattern, `width`x`height` at `fps`, to `path`
/// as H.264 (yuv420p) with a keyframe every `gop` frames and up to `b_frames` B-frames. Needs
/// the `ffmpeg` command-line tool.
pub fn write_video(
    path: &Path,
    width: usize,
    height: usize,
    fps: usize,
    frames: usize,
    gop: usize,
    b_frames: usize,
) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size={width}x{height}:rate={fps}"))
        .args(["-frames:v", &frames.to_string()])
        .args(["-c:v", "libx264", "-pix_fmt", "yuv420p"])
        .args(["-g", &gop.to_string(), "-bf", &b_frames.to_string()])
        .arg(path)
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "ffmpeg failed to write {}",
            path.display()
        )))
    }
}

/// Writes `frames` frames of `testsrc2` in grey to `path` as lossless HEVC in pixel format
/// `pix_fmt` (`gray12le` as LeRobot 0.6 writes depth maps, `gray10le`, ...), a keyframe every
/// 2 frames (x265's open GOPs: leading pictures). Needs the `ffmpeg` command-line tool with
/// libx265.
pub fn write_grey_video(
    path: &Path,
    width: usize,
    height: usize,
    fps: usize,
    frames: usize,
    pix_fmt: &str,
) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size={width}x{height}:rate={fps}"))
        .args(["-frames:v", &frames.to_string()])
        .args(["-vf", &format!("format={pix_fmt}")])
        .args(["-c:v", "libx265", "-pix_fmt", pix_fmt, "-g", "2"])
        .args(["-x265-params", "lossless=1:log-level=error"])
        .arg(path)
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "ffmpeg failed to write {}",
            path.display()
        )))
    }
}

/// Writes a dataset with episodes of the given lengths under `root`. `observation.state` of
/// global frame `g` is `[g, g + 0.5, -g]`. Needs the `ffmpeg` command-line tool.
pub fn write_dataset(root: &Path, lengths: &[usize]) -> std::io::Result<()> {
    let total: usize = lengths.iter().sum();
    write_video(
        &root.join(format!("videos/{CAMERA}/chunk-000/file-000.mp4")),
        WIDTH,
        HEIGHT,
        FPS,
        total,
        2,
        0,
    )?;
    write_tables(
        root,
        lengths,
        serde_json::json!({"dtype": "video", "shape": [HEIGHT, WIDTH, 3], "names": ["height", "width", "channels"]}),
    )
}

/// [`write_dataset`] whose camera is a depth map (LeRobot 0.6: `is_depth_map`, LeRobot's
/// default quantiser) in a lossless HEVC video of pixel format `pix_fmt`. Needs the `ffmpeg`
/// command-line tool with libx265.
pub fn write_depth_dataset(root: &Path, lengths: &[usize], pix_fmt: &str) -> std::io::Result<()> {
    let total: usize = lengths.iter().sum();
    write_grey_video(
        &root.join(format!("videos/{CAMERA}/chunk-000/file-000.mp4")),
        WIDTH,
        HEIGHT,
        FPS,
        total,
        pix_fmt,
    )?;
    write_tables(
        root,
        lengths,
        serde_json::json!({
            "dtype": "video", "shape": [HEIGHT, WIDTH, 1], "names": ["height", "width", "channels"],
            "info": {"is_depth_map": true, "depth_unit": "mm", "video.pix_fmt": pix_fmt, "video.codec": "hevc"}
        }),
    )
}

/// The tables and metadata of a dataset whose camera [`CAMERA`] has `camera` as its feature.
fn write_tables(root: &Path, lengths: &[usize], camera: serde_json::Value) -> std::io::Result<()> {
    let total: usize = lengths.iter().sum();

    let (mut ts, mut fi, mut ei, mut ix, mut ti) = (vec![], vec![], vec![], vec![], vec![]);
    let mut state = FixedSizeListBuilder::new(Float32Builder::new(), 3);
    let mut g = 0usize;
    for (e, &n) in lengths.iter().enumerate() {
        for f in 0..n {
            ts.push(f as f32 / FPS as f32);
            fi.push(f as i64);
            ei.push(e as i64);
            ix.push(g as i64);
            ti.push((e % 2) as i64);
            state
                .values()
                .append_slice(&[g as f32, g as f32 + 0.5, -(g as f32)]);
            state.append(true);
            g += 1;
        }
    }
    write_parquet(
        &root.join("data/chunk-000/file-000.parquet"),
        vec![
            ("observation.state", Arc::new(state.finish()) as ArrayRef),
            ("timestamp", Arc::new(Float32Array::from(ts))),
            ("frame_index", Arc::new(Int64Array::from(fi))),
            ("episode_index", Arc::new(Int64Array::from(ei))),
            ("index", Arc::new(Int64Array::from(ix))),
            ("task_index", Arc::new(Int64Array::from(ti))),
        ],
    )?;

    let n = lengths.len();
    let mut from = Vec::with_capacity(n);
    let mut acc = 0i64;
    for &l in lengths {
        from.push(acc);
        acc += l as i64;
    }
    let to: Vec<i64> = from
        .iter()
        .zip(lengths)
        .map(|(f, l)| f + *l as i64)
        .collect();
    let secs = |v: &[i64]| -> Vec<f64> { v.iter().map(|x| *x as f64 / FPS as f64).collect() };
    let zeros = || Arc::new(Int64Array::from(vec![0i64; n])) as ArrayRef;
    let mut tasks = ListBuilder::new(StringBuilder::new());
    for e in 0..n {
        tasks
            .values()
            .append_value(if e % 2 == 0 { "pick" } else { "place" });
        tasks.append(true);
    }
    let vk = |s: &str| format!("videos/{CAMERA}/{s}");
    let (c, f, a, b) = (
        vk("chunk_index"),
        vk("file_index"),
        vk("from_timestamp"),
        vk("to_timestamp"),
    );
    write_parquet(
        &root.join("meta/episodes/chunk-000/file-000.parquet"),
        vec![
            (
                "episode_index",
                Arc::new(Int64Array::from_iter_values(0..n as i64)) as ArrayRef,
            ),
            ("tasks", Arc::new(tasks.finish())),
            (
                "length",
                Arc::new(Int64Array::from_iter_values(
                    lengths.iter().map(|l| *l as i64),
                )),
            ),
            ("data/chunk_index", zeros()),
            ("data/file_index", zeros()),
            (
                "dataset_from_index",
                Arc::new(Int64Array::from(from.clone())),
            ),
            ("dataset_to_index", Arc::new(Int64Array::from(to.clone()))),
            (c.as_str(), zeros()),
            (f.as_str(), zeros()),
            (a.as_str(), Arc::new(Float64Array::from(secs(&from)))),
            (b.as_str(), Arc::new(Float64Array::from(secs(&to)))),
        ],
    )?;
    write_parquet(
        &root.join("meta/tasks.parquet"),
        vec![
            (
                "task_index",
                Arc::new(Int64Array::from(vec![0i64, 1])) as ArrayRef,
            ),
            (
                "__index_level_0__",
                Arc::new(StringArray::from(vec!["pick", "place"])),
            ),
        ],
    )?;
    let info = serde_json::json!({
        "codebase_version": "v3.0",
        "robot_type": "test",
        "total_episodes": n,
        "total_frames": total,
        "total_tasks": 2,
        "chunks_size": 1000,
        "fps": FPS,
        "splits": {"train": format!("0:{n}")},
        "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
        "video_path": "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4",
        "features": {
            CAMERA: camera,
            "observation.state": {"dtype": "float32", "shape": [3], "names": null},
            "timestamp": {"dtype": "float32", "shape": [1], "names": null},
            "frame_index": {"dtype": "int64", "shape": [1], "names": null},
            "episode_index": {"dtype": "int64", "shape": [1], "names": null},
            "index": {"dtype": "int64", "shape": [1], "names": null},
            "task_index": {"dtype": "int64", "shape": [1], "names": null}
        }
    });
    fs::write(root.join("meta/info.json"), info.to_string())?;
    Ok(())
}
