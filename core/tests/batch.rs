//! The whole read path on a small dataset (written by `roboframes_core::testing`): batches in
//! every frame format, frames by (camera, episode, time), windowed gathers, errors. Run under
//! valgrind by scripts/test.sh: it covers the parallel writes into caller buffers.

use std::sync::Arc;

use half::{bf16, f16};
use indexmap::IndexMap;
use roboframes_core::testing::{write_dataset, CAMERA, FPS, HEIGHT, WIDTH};
use roboframes_core::video::{FrameIndex, VideoReader};
use roboframes_core::{
    Dataset, Error, FrameFormat, OpenOptions, OutBuf, OutputKind, OutputSpec, PixelType,
};

const LENGTHS: [usize; 4] = [5, 1, 7, 3];
const STATE: &str = "observation.state";

fn open(dir: &std::path::Path, windows: bool) -> Dataset {
    let mut opts = OpenOptions {
        decode_threads: Some(2),
        ..Default::default()
    };
    if windows {
        let mut d = IndexMap::new();
        d.insert(CAMERA.to_string(), vec![-0.1, 0.0]);
        d.insert(STATE.to_string(), vec![-0.2, 0.0, 0.1]);
        opts.delta_timestamps = Some(d);
    }
    Dataset::open(dir, opts).expect("open the test dataset")
}

/// Fills a batch; returns the byte outputs (None for strings) and the strings.
fn fill(
    ds: &Dataset,
    idx: &[i64],
    fmt: FrameFormat,
) -> (Vec<OutputSpec>, Vec<Vec<u8>>, Vec<Vec<String>>) {
    let specs = ds.outputs_for(fmt);
    let mut bytes: Vec<Vec<u8>> = specs
        .iter()
        .map(|s| vec![0u8; idx.len() * s.item_bytes()])
        .collect();
    let mut strings: Vec<Vec<String>> = specs.iter().map(|_| Vec::new()).collect();
    let mut outs: Vec<OutBuf<'_>> = specs
        .iter()
        .zip(bytes.iter_mut().zip(strings.iter_mut()))
        .map(|(s, (b, t))| {
            if s.is_string() {
                OutBuf::Strings(t)
            } else {
                OutBuf::Bytes(b)
            }
        })
        .collect();
    ds.fill_batch(idx, fmt, &mut outs).expect("fill_batch");
    (specs, bytes, strings)
}

fn output<'a>(specs: &[OutputSpec], bytes: &'a [Vec<u8>], key: &str) -> &'a [u8] {
    let i = specs.iter().position(|s| s.key == key).expect("key");
    &bytes[i]
}

/// Every frame of the video, decoded front to back, in presentation order.
fn sequential(path: &std::path::Path) -> Vec<Vec<u8>> {
    let ix = Arc::new(FrameIndex::build(path).expect("index"));
    let mut positions: Vec<usize> = (0..ix.len()).collect();
    positions.sort_by_key(|&p| ix.packets[p].pts);
    let mut r = VideoReader::open(ix.clone(), 1).expect("reader");
    let mut out = vec![vec![0u8; WIDTH * HEIGHT * 3]; positions.len()];
    r.decode(&positions, |i, conv, f| {
        conv.convert(f, roboframes_core::frame::Decoded::Rgb24, &mut out[i])
            .map_err(|m| Error::InvalidArgument { msg: m })
    })
    .expect("sequential decode");
    out
}

#[test]
fn batches_windows_formats_and_primitives() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_dataset(dir.path(), &LENGTHS).expect("write the dataset");
    let ds = open(dir.path(), true);
    let total: usize = LENGTHS.iter().sum();
    assert_eq!(ds.len(), total);
    let frame = WIDTH * HEIGHT * 3;
    let reference = sequential(
        &dir.path()
            .join(format!("videos/{CAMERA}/chunk-000/file-000.mp4")),
    );
    assert_eq!(reference.len(), total);

    // every item, repeated and shuffled: duplicates exercise the shared-frame path
    let mut idx: Vec<i64> = (0..total as i64).rev().collect();
    idx.extend([0, 5, 5, 15, 6]);
    let (specs, bytes, strings) = fill(&ds, &idx, FrameFormat::default());
    let starts = [0i64, 5, 6, 13];
    let ends = [5i64, 6, 13, 16];
    let cam = output(&specs, &bytes, CAMERA);
    let cam_pad = output(&specs, &bytes, &format!("{CAMERA}_is_pad"));
    let state = output(&specs, &bytes, STATE);
    let state_pad = output(&specs, &bytes, &format!("{STATE}_is_pad"));
    for (b, &g) in idx.iter().enumerate() {
        let ep = starts.iter().rposition(|&s| s <= g).expect("episode");
        let (from, to) = (starts[ep], ends[ep]);
        for (t, d) in [-1i64, 0].iter().enumerate() {
            let q = g + d;
            let row = q.clamp(from, to - 1) as usize;
            let slot = &cam[(b * 2 + t) * frame..(b * 2 + t + 1) * frame];
            assert_eq!(slot, &reference[row][..], "item {g} step {t}");
            assert_eq!(cam_pad[b * 2 + t], u8::from(q < from || q >= to));
        }
        for (t, d) in [-2i64, 0, 1].iter().enumerate() {
            let q = g + d;
            let row = q.clamp(from, to - 1) as f32;
            let vals: Vec<f32> = state[(b * 3 + t) * 12..(b * 3 + t + 1) * 12]
                .chunks_exact(4)
                .map(|c| f32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            assert_eq!(
                vals,
                vec![row, row + 0.5, -row],
                "state of item {g} step {t}"
            );
            assert_eq!(state_pad[b * 3 + t], u8::from(q < from || q >= to));
        }
    }
    let tasks = &strings[specs
        .iter()
        .position(|s| s.kind == OutputKind::Task)
        .expect("task")];
    assert_eq!(tasks[0], "place"); // item 15 is in episode 3
    assert_eq!(tasks[idx.len() - 1], "pick"); // item 6 is in episode 2

    // other formats are the same pixels, converted
    for pixel in [
        PixelType::U8,
        PixelType::F32,
        PixelType::F16,
        PixelType::BF16,
    ] {
        for channels_last in [true, false] {
            let fmt = FrameFormat {
                pixel,
                channels_last,
            };
            let (s2, b2, _) = fill(&ds, &idx, fmt);
            let got = output(&s2, &b2, CAMERA);
            let es = pixel.size();
            for (n, hwc) in cam.chunks_exact(frame).enumerate() {
                let one = &got[n * frame * es..(n + 1) * frame * es];
                for (p, v) in hwc.iter().enumerate() {
                    let (y, x, c) = (p / (WIDTH * 3), (p / 3) % WIDTH, p % 3);
                    let q = if channels_last {
                        p
                    } else {
                        c * WIDTH * HEIGHT + y * WIDTH + x
                    };
                    let e = &one[q * es..(q + 1) * es];
                    let want = f32::from(*v) / 255.0;
                    match pixel {
                        PixelType::U8 => assert_eq!(e[0], *v),
                        PixelType::F32 => {
                            assert_eq!(f32::from_ne_bytes([e[0], e[1], e[2], e[3]]), want)
                        }
                        PixelType::F16 => assert_eq!(
                            u16::from_ne_bytes([e[0], e[1]]),
                            f16::from_f32(want).to_bits()
                        ),
                        PixelType::BF16 => assert_eq!(
                            u16::from_ne_bytes([e[0], e[1]]),
                            bf16::from_f32(want).to_bits()
                        ),
                    }
                }
            }
        }
    }

    // frames by (camera, episode, time): every frame of every episode
    let mut eps = Vec::new();
    let mut ts = Vec::new();
    for (e, &n) in LENGTHS.iter().enumerate() {
        for f in 0..n {
            eps.push(e as i64);
            ts.push(f as f64 / FPS as f64);
        }
    }
    let mut out = vec![0u8; eps.len() * frame];
    ds.decode_frames(CAMERA, &eps, &ts, FrameFormat::default(), &mut out)
        .expect("decode_frames");
    for (g, f) in out.chunks_exact(frame).enumerate() {
        assert_eq!(f, &reference[g][..], "frame {g}");
    }

    // gathers equal the windowed batch
    let mut values = vec![0u8; idx.len() * 3 * 12];
    let mut pads = vec![0u8; idx.len() * 3];
    ds.gather(STATE, &idx, &[-2, 0, 1], &mut values, &mut pads)
        .expect("gather");
    assert_eq!(values, state);
    assert_eq!(pads, state_pad);
}

/// Interleaved sequential streams with a window on the previous frame (the GopShuffleSampler
/// pattern): each stream continues on its own reader, so every frame is decoded once.
#[test]
fn interleaved_streams_decode_each_frame_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_dataset(dir.path(), &[40, 40, 40, 40]).expect("write the dataset");
    for threads in [1, 2] {
        let mut opts = OpenOptions {
            decode_threads: Some(threads),
            ..Default::default()
        };
        let mut d = IndexMap::new();
        d.insert(CAMERA.to_string(), vec![-0.1, 0.0]);
        opts.delta_timestamps = Some(d);
        let ds = Dataset::open(dir.path(), opts).expect("open");
        // 4 streams for 10 batches, then all jump elsewhere at once (a unit switch) for 8
        let phases: [([i64; 4], i64); 2] = [([2, 42, 82, 122], 10), ([24, 64, 104, 144], 8)];
        let mut needed = 0u64;
        for (starts, batches) in phases {
            for j in 0..batches {
                let idx: Vec<i64> = starts
                    .iter()
                    .flat_map(|s| [s + 2 * j, s + 2 * j + 1])
                    .collect();
                fill(&ds, &idx, FrameFormat::default());
            }
            // per stream: from the keyframe before its first window frame to its last frame
            needed += starts.len() as u64 * (2 * batches as u64 + 2);
        }
        let decoded = ds.frames_decoded();
        assert!(
            decoded <= needed,
            "{threads} threads: decoded {decoded} frames, {needed} needed"
        );
    }
}

#[test]
fn errors_name_what_is_wrong() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_dataset(dir.path(), &LENGTHS).expect("write the dataset");
    let ds = open(dir.path(), false);
    let frame = WIDTH * HEIGHT * 3;
    let mut one = vec![0u8; frame];
    let fmt = FrameFormat::default();
    // between two frames: FrameTimestamp, with file, episode and key
    match ds.decode_frames(CAMERA, &[2], &[0.05], fmt, &mut one) {
        Err(Error::FrameTimestamp { at, .. }) => {
            assert_eq!(at.episode, Some(2));
            assert_eq!(at.key.as_deref(), Some(CAMERA));
            assert!(at.path.is_some());
        }
        other => panic!("expected FrameTimestamp, got {other:?}"),
    }
    // past the episode's end (would be the next episode's first frame): refused
    let e = ds
        .decode_frames(CAMERA, &[0], &[0.5], fmt, &mut one)
        .expect_err("outside episode");
    assert!(e.to_string().contains("outside episode 0"), "{e}");
    for (cam, ep, t, needle) in [
        ("nope", 0i64, 0.0, "not a video key"),
        (CAMERA, 99, 0.0, "episode 99"),
        (CAMERA, 0, f64::NAN, "not finite"),
    ] {
        let e = ds
            .decode_frames(cam, &[ep], &[t], fmt, &mut one)
            .expect_err(needle);
        assert!(e.to_string().contains(needle), "{e}");
    }
    // a tolerance loose enough to reach the neighbouring episode's frame: refused, not answered
    let loose = Dataset::open(
        dir.path(),
        OpenOptions {
            tolerance_s: 0.25,
            ..Default::default()
        },
    )
    .expect("open");
    let e = loose
        .decode_frames(CAMERA, &[1], &[-0.1], fmt, &mut one)
        .expect_err("neighbour's frame");
    assert!(e.to_string().contains("outside episode 1"), "{e}");
    loose
        .decode_frames(CAMERA, &[1], &[0.0], fmt, &mut one)
        .expect("its own frame");
    let mut short = vec![0u8; frame - 1];
    assert!(ds
        .decode_frames(CAMERA, &[0], &[0.0], fmt, &mut short)
        .is_err());
    let (mut v, mut p) = (vec![0u8; 12], vec![0u8; 1]);
    assert!(matches!(
        ds.gather(STATE, &[16], &[0], &mut v, &mut p),
        Err(Error::IndexOutOfRange { index: 16, len: 16 })
    ));
    // negative indices count from the end; past the start they are out of range
    let (mut last, mut neg) = (vec![0u8; 12], vec![0u8; 12]);
    ds.gather(STATE, &[15], &[0], &mut last, &mut p)
        .expect("last item");
    ds.gather(STATE, &[-1], &[0], &mut neg, &mut p)
        .expect("item -1");
    assert_eq!(last, neg);
    for bad in [-17, i64::MIN] {
        assert!(matches!(
            ds.gather(STATE, &[bad], &[0], &mut v, &mut p),
            Err(Error::IndexOutOfRange { index, len: 16 }) if index == bad
        ));
    }
    assert!(ds.gather(CAMERA, &[0], &[0], &mut v, &mut p).is_err());
    // a batch with buffers of the wrong size
    let mut outs: Vec<OutBuf<'_>> = ds.outputs().iter().map(|_| OutBuf::Skip).collect();
    assert!(ds.fill_batch(&[0], fmt, &mut outs).is_ok()); // nothing wanted, nothing done
    outs.pop();
    assert!(ds.fill_batch(&[0], fmt, &mut outs).is_err());
}

#[test]
fn a_stale_total_is_a_warning_and_the_episodes_count() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_dataset(dir.path(), &LENGTHS).expect("write the dataset");
    assert!(open(dir.path(), false).open_warnings().is_empty());
    let info = dir.path().join("meta/info.json");
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&info).expect("info.json")).expect("JSON");
    let total: usize = LENGTHS.iter().sum();
    doc["total_frames"] = serde_json::json!(total + 4);
    std::fs::write(&info, doc.to_string()).expect("write info.json");
    let ds = open(dir.path(), false);
    assert_eq!(ds.len(), total);
    let warnings = ds.open_warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("total_frames is 20"), "{warnings:?}");
    assert!(warnings[0].contains("info.json"), "{warnings:?}");
}
