//! Fuzz targets for the parsers that read bytes from disk (feature `testing`): `info.json` and
//! its path templates, the episode table (v3.0's parquet, and a v2.x root's `.jsonl` files), a
//! data table and the mp4 frame index. Each target
//! takes arbitrary bytes, must never panic, hang or abort, and checks the properties the reader
//! relies on when a parse succeeds. The coverage-guided fuzzer in `fuzz/` (AFL++, stable Rust)
//! calls them; `core/tests/fuzz_replay.rs` replays the seeds and every saved finding under
//! `cargo test`, so a fixed crash stays fixed.

use std::fs;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use crate::meta::{self, Feature, FeatureKind};
use crate::table::DataFile;
use crate::video::{FrameIndex, VideoReader};

/// The targets by name (the names of `fuzz/`'s binaries and of its seed folders).
pub const TARGETS: &[&str] = &[
    "info_json",
    "episodes_table",
    "v2_meta",
    "data_table",
    "mp4_index",
    "rlds_shard",
    "mcap_file",
];

/// Runs the target `name` on `data`; `false` when no target has that name. The files a
/// target writes are removed afterwards.
pub fn run(name: &str, data: &[u8]) -> bool {
    match name {
        "info_json" => info_json(data),
        "episodes_table" => episodes_table(data),
        "v2_meta" => v2_meta(data),
        "data_table" => data_table(data),
        "mp4_index" => mp4_index(data),
        "rlds_shard" => rlds_shard(data),
        "mcap_file" => mcap_file(data),
        _ => return false,
    }
    let _ = fs::remove_dir_all(scratch());
    true
}

/// A scratch folder of this process and thread (targets write their input where the reader
/// expects a file).
fn scratch() -> PathBuf {
    let thread = format!("{:?}", std::thread::current().id());
    let thread: String = thread.chars().filter(char::is_ascii_digit).collect();
    std::env::temp_dir().join(format!("roboframes-fuzz-{}-{thread}", std::process::id()))
}

/// Writes `data` to `root/rel`, creating folders; `None` when the file system refuses (the
/// target then has nothing to test).
fn place(root: &Path, rel: &str, data: &[u8]) -> Option<PathBuf> {
    let path = root.join(rel);
    fs::create_dir_all(path.parent()?).ok()?;
    fs::write(&path, data).ok()?;
    Some(path)
}

/// A path built from a template is inside the root and names no parent folder.
fn assert_confined(root: &Path, p: &Path) {
    let rel = p
        .strip_prefix(root)
        .unwrap_or_else(|_| panic!("{} escapes {}", p.display(), root.display()));
    assert!(
        rel.components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir)),
        "{} climbs out of the root",
        p.display()
    );
}

/// `info.json`: parsing, the features' sizes and every path template, with chunk and file
/// indices at the edges of their range.
pub fn info_json(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let root = Path::new("/dataset-root");
    let Ok(info) = meta::parse_info(text, &root.join("meta/info.json")) else {
        return;
    };
    assert!(info.fps.is_finite() && info.fps > 0.0, "fps {}", info.fps);
    for f in info.features.values() {
        // sizes were checked at parse time: they cannot overflow
        let n = f.numel();
        let shape = f.item_shape();
        let product = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        assert!(product.is_some(), "shape of {} overflows", f.name);
        assert!(
            n <= meta::MAX_FEATURE_ELEMENTS,
            "{} has {n} elements",
            f.name
        );
    }
    let edges = [0i64, 1, 999, 1000, -1, i64::MAX, i64::MIN];
    for &c in &edges {
        for &i in &edges {
            if let Ok(p) = meta::data_file_path(root, &info, c, i) {
                assert_confined(root, &p);
            }
            for k in info.video_keys() {
                if let Ok(p) = meta::video_file_path(root, &info, &k, c, i) {
                    assert_confined(root, &p);
                }
            }
        }
    }
}

/// The camera key the table targets expect (the testing dataset's).
const CAMERA: &str = crate::testing::CAMERA;

/// An episode table (`meta/episodes/chunk-000/file-000.parquet`): the lenient row reader, the
/// per-row checks and the strict reader; rows that pass the checks span their length.
pub fn episodes_table(data: &[u8]) {
    let root = scratch().join("episodes");
    let _ = fs::remove_dir_all(&root);
    if place(&root, "meta/episodes/chunk-000/file-000.parquet", data).is_none() {
        return;
    }
    let keys = vec![CAMERA.to_owned()];
    let Some(info) = camera_info_of(false) else {
        return;
    };
    if let Ok(rows) = meta::read_episode_rows(&root, &info) {
        for (ep, path) in &rows {
            if meta::check_episode(ep, path, &keys).is_ok() {
                assert!(ep.length > 0);
                assert_eq!(
                    ep.dataset_to_index.checked_sub(ep.dataset_from_index),
                    Some(ep.length)
                );
                assert_eq!(ep.videos.len(), keys.len());
            }
        }
    }
    if let Ok(eps) = meta::read_episodes(&root, &info) {
        assert!(eps
            .windows(2)
            .all(|w| matches!(w, [a, b] if a.episode_index < b.episode_index)));
    }
}

/// The text of an `info.json` with the testing dataset's camera: a v3.0 root's, or (`v2`) a v2.1
/// root's with chunks of 2 episodes (also a seed of `info_json`: v2.x templates).
fn camera_info_text(v2: bool) -> String {
    let layout = if v2 {
        r#""codebase_version":"v2.1","chunks_size":2,
        "data_path":"data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet",
        "video_path":"videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4""#
    } else {
        r#""codebase_version":"v3.0",
        "data_path":"data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
        "video_path":"videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4""#
    };
    format!(
        r#"{{{layout},"fps":10,"total_episodes":1,"total_frames":1,"features":{{
        "{CAMERA}":{{"dtype":"video","shape":[48,64,3]}},
        "timestamp":{{"dtype":"float32","shape":[1]}},
        "frame_index":{{"dtype":"int64","shape":[1]}},
        "episode_index":{{"dtype":"int64","shape":[1]}},
        "index":{{"dtype":"int64","shape":[1]}},
        "task_index":{{"dtype":"int64","shape":[1]}}}}}}"#
    )
}

/// [`camera_info_text`] parsed (the episode table's video columns).
fn camera_info_of(v2: bool) -> Option<meta::Info> {
    let parsed = meta::parse_info(&camera_info_text(v2), Path::new("info.json")).ok();
    assert!(parsed.is_some(), "the fixed info.json must parse");
    parsed
}

/// A v2.x root's `meta/episodes.jsonl` and `meta/tasks.jsonl` (the input split at its first NUL
/// byte): the lenient and the strict episode readers and the tasks reader. Episodes that pass
/// the checks are sorted, each once, their rows laid end to end from 0, each its own data file
/// and video inside the root.
pub fn v2_meta(data: &[u8]) {
    let root = scratch().join("v2");
    let _ = fs::remove_dir_all(&root);
    let (episodes, tasks) = match data.iter().position(|&b| b == 0) {
        Some(i) => (
            data.get(..i).unwrap_or_default(),
            data.get(i + 1..).unwrap_or_default(),
        ),
        None => (data, &[][..]),
    };
    if place(&root, "meta/episodes.jsonl", episodes).is_none()
        || place(&root, "meta/tasks.jsonl", tasks).is_none()
    {
        return;
    }
    let Some(info) = camera_info_of(true) else {
        return;
    };
    if let Ok(rows) = meta::read_episode_rows(&root, &info) {
        assert!(rows
            .windows(2)
            .all(|w| matches!(w, [(a, _), (b, _)] if a.episode_index <= b.episode_index)));
    }
    if let Ok(eps) = meta::read_episodes(&root, &info) {
        let mut next = 0i64;
        for e in &eps {
            assert!(e.length > 0 && e.episode_index >= 0);
            assert_eq!(e.dataset_from_index, next, "rows laid end to end");
            next = e.dataset_to_index;
            assert_eq!(e.data_file_index, e.episode_index);
            assert_eq!(e.videos.len(), 1);
            if let Ok(p) = meta::data_file_path(&root, &info, e.data_chunk_index, e.data_file_index)
            {
                assert_confined(&root, &p);
            }
        }
        assert!(eps
            .windows(2)
            .all(|w| matches!(w, [a, b] if a.episode_index < b.episode_index)));
    }
    let _ = meta::read_tasks(&root, &info);
}

/// The features of the testing dataset's data table.
fn data_features() -> Vec<Feature> {
    let info = r#"{"codebase_version":"v3.0","fps":10,
        "data_path":"data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
        "total_episodes":1,"total_frames":1,"features":{
        "observation.state":{"dtype":"float32","shape":[3]},
        "timestamp":{"dtype":"float32","shape":[1]},
        "frame_index":{"dtype":"int64","shape":[1]},
        "episode_index":{"dtype":"int64","shape":[1]},
        "index":{"dtype":"int64","shape":[1]},
        "task_index":{"dtype":"int64","shape":[1]},
        "next.done":{"dtype":"bool","shape":[1]},
        "language":{"dtype":"string","shape":[1]}}}"#;
    meta::parse_info(info, Path::new("info.json"))
        .map(|i| i.features.into_values().collect())
        .unwrap_or_default()
}

/// A data table: every column the reader casts, and every accessor over every row.
pub fn data_table(data: &[u8]) {
    let root = scratch().join("data");
    let Some(path) = place(&root, "file.parquet", data) else {
        return;
    };
    let features = data_features();
    assert!(!features.is_empty(), "the fixed info.json must parse");
    // every feature, and each alone (a file may lack some columns)
    let all: Vec<&Feature> = features.iter().collect();
    let mut sets: Vec<Vec<&Feature>> = vec![all];
    sets.extend(features.iter().map(|f| vec![f]));
    for set in sets {
        let Ok(df) = DataFile::load(&path, &set) else {
            continue;
        };
        let rows = df.rows;
        for row in 0..rows.min(4096) {
            let _ = df.timestamp(row);
            for f in &set {
                if let (Some(bytes), FeatureKind::Numeric(dt)) =
                    (df.fixed_row(&f.name, row), &f.kind)
                {
                    let item = f.numel().checked_mul(dt.item_dtype().size());
                    assert_eq!(Some(bytes.len()), item, "row bytes of {}", f.name);
                }
                let _ = df.int_scalar(&f.name, row);
            }
        }
        for f in &set {
            let _ = df.values_f64(&f.name, 0..rows);
        }
        for g in [
            df.first_index,
            df.first_index.saturating_add(rows as i64),
            -1,
            i64::MAX,
        ] {
            if let Ok(r) = df.row_of(g) {
                assert!(r < rows);
            }
        }
    }
}

/// The largest frame the mp4 target decodes (a fuzzed header may claim any size).
const MAX_FUZZ_PIXELS: u64 = 1 << 20;
/// The most frames the mp4 target decodes.
const MAX_FUZZ_FRAMES: usize = 64;

/// An mp4 file: the packet index and its lookups; then, for small files, decoding every frame
/// in order and a few out of order.
pub fn mp4_index(data: &[u8]) {
    let root = scratch().join("video");
    let Some(path) = place(&root, "file.mp4", data) else {
        return;
    };
    let Ok(ix) = FrameIndex::build(&path) else {
        return;
    };
    let n = ix.len();
    assert!(n > 0);
    assert_eq!(ix.by_pts.len(), n);
    let mut seen = vec![false; n];
    for &i in &ix.by_pts {
        let slot = seen.get_mut(i).expect("by_pts names a packet");
        assert!(!*slot, "by_pts repeats {i}");
        *slot = true;
    }
    for pos in 0..n {
        assert!(ix.start_of(pos) <= pos, "start_of({pos}) after it");
    }
    for t in [0.0, 0.05, 1.0, -1.0, f64::NAN, f64::INFINITY, 1e300] {
        if let Some((pos, _)) = ix.nearest(t) {
            assert!(pos < n);
        }
    }
    let pixels = u64::from(ix.width) * u64::from(ix.height);
    if pixels == 0 || pixels > MAX_FUZZ_PIXELS || n > MAX_FUZZ_FRAMES {
        return;
    }
    let ix = Arc::new(ix);
    let Ok(mut reader) = VideoReader::open(ix.clone(), 1) else {
        return;
    };
    let Ok(bytes) = usize::try_from(pixels * 3) else {
        return;
    };
    let mut out = vec![0u8; bytes];
    let mut orders: Vec<Vec<usize>> = vec![(0..n).collect()];
    orders.push(vec![n - 1, 0, n / 2]);
    for wanted in orders {
        let _ = reader.decode(&wanted, |_, conv, frame| {
            conv.convert(frame, crate::frame::Decoded::Rgb24, &mut out)
                .map_err(|m| crate::Error::InvalidArgument { msg: m })
        });
    }
}

/// An RLDS shard in a builder folder whose features are fixed (`rldssrc::SMALL_FEATURES`) and
/// whose `dataset_info.json` counts the records the shard holds: opening (CRCs, Example
/// decoding, step counts, image spans), every episode's rows, and the frames of the first
/// items (each image read from its span and decoded). The input is the records themselves,
/// each as a little-endian u16 length and its bytes, framed here with valid CRCs (a mutated
/// byte would otherwise only ever meet the CRC check); an input starting with `TFRECORD` is the
/// shard as is (the framing and its CRCs under test).
pub fn rlds_shard(data: &[u8]) {
    let root = scratch().join("rlds");
    let shard_bytes = match data.strip_prefix(b"TFRECORD") {
        Some(raw) => raw.to_vec(),
        None => {
            let mut records = Vec::new();
            let mut rest = data;
            while let [a, b, tail @ ..] = rest {
                let n = usize::from(u16::from_le_bytes([*a, *b])).min(tail.len());
                let (r, next) = tail.split_at(n);
                records.push(r.to_vec());
                rest = next;
            }
            crate::rldssrc::frame_records(&records)
        }
    };
    let data = shard_bytes.as_slice();
    let Some(shard) = place(&root, "small-train.tfrecord-00000-of-00001", data) else {
        return;
    };
    let records = crate::rldssrc::count_records(&shard).unwrap_or(0);
    if crate::rldssrc::write_small(&root, data, records).is_err() {
        return;
    }
    let mut opts = crate::dataset::OpenOptions {
        decode_threads: Some(1),
        ..Default::default()
    };
    opts.source.fps = Some(10.0);
    let Ok(ds) = crate::dataset::Dataset::open(&root, opts) else {
        return;
    };
    for e in ds.episode_table() {
        if let Ok((f, rows)) = ds.episode_rows(e.episode_index) {
            assert!(rows.end <= f.rows, "an episode's rows run past its table");
        }
    }
    let items: Vec<i64> = (0..ds.len().min(16) as i64).collect();
    if let Ok((frames, (h, w, c))) = ds.fill_one("observation/image", &items) {
        assert_eq!(frames.len(), items.len() * h * w * c);
    }
}

/// An MCAP recording (the input is the file): opening (records, chunks, schemas, messages
/// decoded, topics aligned), every episode's rows, and the first items of every key (camera
/// frames read from their chunks and decoded).
pub fn mcap_file(data: &[u8]) {
    let root = scratch().join("mcap");
    let Some(path) = place(&root, "rec.mcap", data) else {
        return;
    };
    let opts = crate::dataset::OpenOptions {
        decode_threads: Some(1),
        ..Default::default()
    };
    let Ok(ds) = crate::dataset::Dataset::open(&path, opts) else {
        return;
    };
    for e in ds.episode_table() {
        if let Ok((f, rows)) = ds.episode_rows(e.episode_index) {
            assert!(rows.end <= f.rows, "an episode's rows run past its table");
        }
    }
    let items: Vec<i64> = (0..ds.len().min(16) as i64).collect();
    let keys: Vec<String> = ds.info().features.keys().cloned().collect();
    for k in keys {
        if let Ok((values, (h, w, c))) = ds.fill_one(&k, &items) {
            assert_eq!(values.len(), items.len() * h * w * c);
        }
    }
}

/// A small MCAP recording for tests and the fuzzer's seed, written with the `mcap` crate's
/// writer: JSON channels (a 10 Hz camera of `foxglove.CompressedImage` with base64 JPEG data,
/// a 20 Hz arm state), chunks uncompressed or zstd.
pub fn small_mcap(frames: usize, zstd: bool) -> std::io::Result<Vec<u8>> {
    use base64::Engine;
    use std::collections::BTreeMap;
    let err = |e: mcap::McapError| std::io::Error::other(e.to_string());
    let jpeg = crate::image::test_jpeg(7)?;
    let b64 = base64::engine::general_purpose::STANDARD.encode(jpeg);
    let mut out = std::io::Cursor::new(Vec::new());
    let compression = zstd.then_some(mcap::Compression::Zstd);
    let mut w = mcap::WriteOptions::new()
        .compression(compression)
        .chunk_size(Some(1024))
        .create(&mut out)
        .map_err(err)?;
    let cam_schema = w
        .add_schema("foxglove.CompressedImage", "jsonschema", b"{}")
        .map_err(err)?;
    let arm_schema = w.add_schema("Arm", "jsonschema", b"{}").map_err(err)?;
    let cam = w
        .add_channel(cam_schema, "/camera", "json", &BTreeMap::new())
        .map_err(err)?;
    let arm = w
        .add_channel(arm_schema, "/arm", "json", &BTreeMap::new())
        .map_err(err)?;
    let start: u64 = 1_700_000_000_000_000_000;
    for i in 0..frames as u64 * 2 {
        let t = start + i * 50_000_000;
        let state = format!(r#"{{"q": [{i}, 0.5], "open": {}}}"#, i % 2 == 0);
        let header = |channel_id, sequence, log_time| mcap::records::MessageHeader {
            channel_id,
            sequence,
            log_time,
            publish_time: log_time,
        };
        w.write_to_known_channel(&header(arm, i as u32, t), state.as_bytes())
            .map_err(err)?;
        if i % 2 == 0 {
            let msg = format!(r#"{{"format": "jpeg", "data": "{b64}"}}"#);
            w.write_to_known_channel(&header(cam, i as u32, t + 1), msg.as_bytes())
                .map_err(err)?;
        }
    }
    w.finish().map_err(err)?;
    drop(w);
    Ok(out.into_inner())
}

/// Writes seeds for every target under `dir/<target>/` from a freshly written testing dataset
/// (needs the `ffmpeg` command-line tool): its `info.json`, episode table, data table and mp4
/// (one without and one with B-frames).
pub fn write_seeds(dir: &Path) -> std::io::Result<()> {
    let ds = dir.join("dataset");
    crate::testing::write_dataset(&ds, &[3, 2])?;
    let copy = |target: &str, name: &str, from: &Path| -> std::io::Result<()> {
        fs::create_dir_all(dir.join(target))?;
        fs::copy(from, dir.join(target).join(name)).map(|_| ())
    };
    copy("info_json", "info.json", &ds.join("meta/info.json"))?;
    fs::write(dir.join("info_json/v21.json"), camera_info_text(true))?;
    copy(
        "episodes_table",
        "episodes.parquet",
        &ds.join("meta/episodes/chunk-000/file-000.parquet"),
    )?;
    fs::create_dir_all(dir.join("v2_meta"))?;
    fs::write(
        dir.join("v2_meta/two_episodes.jsonl"),
        b"{\"episode_index\": 0, \"tasks\": [\"pick\"], \"length\": 3}\n\
          {\"episode_index\": 1, \"tasks\": [\"pick\", \"place\"], \"length\": 2}\n\0\
          {\"task_index\": 0, \"task\": \"pick\"}\n{\"task_index\": 1, \"task\": \"place\"}\n",
    )?;
    copy(
        "data_table",
        "data.parquet",
        &ds.join("data/chunk-000/file-000.parquet"),
    )?;
    copy(
        "mp4_index",
        "plain.mp4",
        &ds.join(format!("videos/{CAMERA}/chunk-000/file-000.mp4")),
    )?;
    let bframes = dir.join("bframes.mp4");
    crate::testing::write_video(&bframes, 32, 16, 10, 12, 4, 2)?;
    copy("mp4_index", "bframes.mp4", &bframes)?;
    fs::remove_file(bframes)?;
    fs::create_dir_all(dir.join("rlds_shard"))?;
    let records = [
        crate::rldssrc::small_record(3),
        crate::rldssrc::small_record(1),
    ];
    let mut container = Vec::new();
    for r in &records {
        let n = u16::try_from(r.len()).map_err(std::io::Error::other)?;
        container.extend_from_slice(&n.to_le_bytes());
        container.extend_from_slice(r);
    }
    fs::write(dir.join("rlds_shard/two_episodes.records"), container)?;
    let mut raw = b"TFRECORD".to_vec();
    raw.extend(crate::rldssrc::frame_records(&records));
    fs::write(dir.join("rlds_shard/two_episodes.tfrecord"), raw)?;
    fs::create_dir_all(dir.join("mcap_file"))?;
    fs::write(dir.join("mcap_file/plain.mcap"), small_mcap(4, false)?)?;
    fs::write(dir.join("mcap_file/zstd.mcap"), small_mcap(4, true)?)?;
    fs::remove_dir_all(ds)
}
