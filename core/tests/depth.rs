//! Depth maps (LeRobot 0.6's `is_depth_map` videos) through the whole read path: codes as
//! decoded (a 12-bit grey stream copied, a 10-bit one converted by swscale), dequantised values
//! from them, windows read in any order equal to one sequential batch (open GOPs, backward
//! seeks), the frame cache, and a colour stream flagged as depth refused. Run under valgrind by
//! the test command.

use indexmap::IndexMap;
use roboframes_core::depth::{DepthOutput, DepthQuant, DepthUnit};
use roboframes_core::testing::{write_dataset, write_depth_dataset, CAMERA, HEIGHT, WIDTH};
use roboframes_core::{Dataset, Error, FrameFormat, OpenOptions, OutBuf};

const LENGTHS: [usize; 3] = [7, 5, 6];

fn open(root: &std::path::Path, depth: DepthOutput, windows: bool) -> Dataset {
    let delta = windows.then(|| IndexMap::from([(CAMERA.to_string(), vec![-0.2, -0.1, 0.0])]));
    Dataset::open(
        root,
        OpenOptions {
            depth_output: depth,
            delta_timestamps: delta,
            decode_threads: Some(2),
            ..Default::default()
        },
    )
    .expect("open")
}

/// The camera entry of the items at `indices`, as bytes.
fn camera(ds: &Dataset, indices: &[i64]) -> Vec<u8> {
    let fmt = FrameFormat::default();
    let specs = ds.outputs_for(fmt);
    let mut bufs: Vec<Vec<u8>> = specs
        .iter()
        .map(|s| vec![0u8; s.item_bytes() * indices.len()])
        .collect();
    let mut strings: Vec<Vec<String>> = specs.iter().map(|_| Vec::new()).collect();
    let mut outs: Vec<OutBuf> = bufs
        .iter_mut()
        .zip(strings.iter_mut())
        .zip(&specs)
        .map(|((b, s), spec)| {
            if spec.is_string() {
                OutBuf::Strings(s)
            } else if spec.key == CAMERA {
                OutBuf::Bytes(b.as_mut_slice())
            } else {
                OutBuf::Skip
            }
        })
        .collect();
    ds.fill_batch(indices, fmt, &mut outs).expect("fill");
    drop(outs);
    let at = specs.iter().position(|s| s.key == CAMERA).expect("camera");
    bufs.swap_remove(at)
}

fn codes(bytes: &[u8]) -> Vec<u16> {
    bytes
        .chunks_exact(2)
        .map(|b| u16::from_ne_bytes([b[0], b[1]]))
        .collect()
}

#[test]
fn depth_maps_read_as_codes_and_depth() {
    for pix_fmt in ["gray12le", "gray10le"] {
        let dir = tempfile::tempdir().expect("tempdir");
        write_depth_dataset(dir.path(), &LENGTHS, pix_fmt)
            .expect("write (needs ffmpeg with libx265)");
        let raw = open(dir.path(), DepthOutput::Codes, false);
        let spec = raw
            .outputs_for(FrameFormat::default())
            .into_iter()
            .find(|s| s.key == CAMERA)
            .expect("spec");
        assert_eq!(spec.shape, vec![HEIGHT, WIDTH, 1]);
        assert_eq!(spec.dtype.name(), "uint16");
        let n = raw.len() as i64;
        let all: Vec<i64> = (0..n).collect();
        let c = codes(&camera(&raw, &all));
        assert!(c.iter().all(|&q| q <= 4095), "{pix_fmt}: 12-bit codes");
        assert!(
            c.iter().any(|&q| q > 1023),
            "{pix_fmt}: the grey pattern spans the range"
        );
        // depth in millimetres: the quantiser's value of each code
        let mm = open(dir.path(), DepthOutput::Millimetres, false);
        let values: Vec<f32> = camera(&mm, &all)
            .chunks_exact(4)
            .map(|b| f32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let q = DepthQuant::default();
        for (v, code) in values.iter().zip(&c) {
            assert_eq!(*v, q.dequantize(*code, DepthUnit::Millimetres));
        }
        // channels first is the same bytes (one channel)
        let chw = FrameFormat {
            channels_last: false,
            ..FrameFormat::default()
        };
        let spec = raw
            .outputs_for(chw)
            .into_iter()
            .find(|s| s.key == CAMERA)
            .expect("spec");
        assert_eq!(spec.shape, vec![1, HEIGHT, WIDTH]);

        // windows in a scattered order (backward seeks into open GOPs), through the cache
        let win = open(dir.path(), DepthOutput::Codes, true);
        let whole = camera(&win, &all);
        let frame = WIDTH * HEIGHT * 2 * 3;
        win.set_frame_cache(1 << 24);
        for i in [
            17i64, 3, 9, 0, 16, 2, 6, 5, 4, 12, 11, 10, 13, 7, 8, 1, 15, 14, 6, 5,
        ] {
            let got = camera(&win, &[i]);
            let at = i as usize * frame;
            assert_eq!(got, whole[at..at + frame], "{pix_fmt}: item {i}");
        }
        assert!(win.frame_cache_stats().expect("cache").hits > 0);
    }
}

#[test]
fn a_colour_stream_flagged_as_depth_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_dataset(dir.path(), &LENGTHS).expect("write");
    let path = dir.path().join("meta/info.json");
    let text = std::fs::read_to_string(&path).expect("info");
    let mut info: serde_json::Value = serde_json::from_str(&text).expect("json");
    let cam = &mut info["features"][CAMERA];
    cam["shape"] = serde_json::json!([HEIGHT, WIDTH, 1]);
    cam["info"] = serde_json::json!({"is_depth_map": true});
    std::fs::write(&path, info.to_string()).expect("write info");
    let ds = open(dir.path(), DepthOutput::Millimetres, false);
    match camera_result(&ds) {
        Err(Error::Video { at, msg }) => {
            assert!(msg.contains("pixel format is yuv420p"), "{msg}");
            assert_eq!(at.key.as_deref(), Some(CAMERA));
            assert!(at.path.is_some());
        }
        other => panic!("expected a video error, got {other:?}"),
    }
}

fn camera_result(ds: &Dataset) -> Result<(), Error> {
    let fmt = FrameFormat::default();
    let specs = ds.outputs_for(fmt);
    let mut bufs: Vec<Vec<u8>> = specs.iter().map(|s| vec![0u8; s.item_bytes()]).collect();
    let mut outs: Vec<OutBuf> = bufs
        .iter_mut()
        .zip(&specs)
        .map(|(b, s)| {
            if s.key == CAMERA {
                OutBuf::Bytes(b.as_mut_slice())
            } else {
                OutBuf::Skip
            }
        })
        .collect();
    ds.fill_batch(&[0], fmt, &mut outs)
}
