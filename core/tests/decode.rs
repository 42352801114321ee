//! Decoding real files written by the FFmpeg command-line tool: random-order batched decode
//! must give the same bytes as a sequential decode, on a stream with B-frames, for widths that
//! take the swscale path (multiple of 32) and the filter-graph path (not).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use roboframes_core::testing::write_video;
use roboframes_core::video::{DecoderPool, FrameIndex, VideoReader};

fn make_video(dir: &Path, name: &str, w: usize, h: usize, frames: usize) -> PathBuf {
    let out = dir.join(name);
    // a keyframe every 6 frames and B-frames: decode order differs from presentation order
    write_video(&out, w, h, 10, frames, 6, 2).unwrap_or_else(|e| {
        panic!("{e}: the ffmpeg command-line tool is needed (scripts/setup.sh installs it)")
    });
    out
}

/// All frames in presentation order, decoded by one reader front to back.
fn sequential(ix: &Arc<FrameIndex>) -> Vec<Vec<u8>> {
    let mut positions: Vec<usize> = (0..ix.len()).collect();
    positions.sort_by_key(|&p| ix.packets[p].pts);
    let mut r = VideoReader::open(ix.clone(), 1).expect("open");
    let n = (ix.width * ix.height * 3) as usize;
    let mut out = vec![vec![0u8; n]; positions.len()];
    r.decode(&positions, |i, conv, f| {
        conv.convert(f, roboframes_core::frame::Decoded::Rgb24, &mut out[i])
            .map_err(|m| roboframes_core::Error::InvalidArgument { msg: m })
    })
    .expect("sequential decode");
    out
}

fn check_random_access(w: usize, h: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = make_video(dir.path(), "v.mp4", w, h, 40);
    let ix = Arc::new(FrameIndex::build(&path).expect("index"));
    assert_eq!(ix.len(), 40);
    assert!(
        ix.packets.windows(2).any(|p| p[1].pts < p[0].pts),
        "expected B-frames (pts out of decode order)"
    );
    let reference = sequential(&ix);
    // frames differ from each other (the test pattern moves)
    assert_ne!(reference[0], reference[1]);

    // pts-sorted order of decode positions: frame k in presentation order
    let mut by_pts: Vec<usize> = (0..ix.len()).collect();
    by_pts.sort_by_key(|&p| ix.packets[p].pts);
    let pool = DecoderPool::new(2, 2, 1);
    // several batches in scattered orders with duplicates, through one pooled reader
    let orders: Vec<Vec<usize>> = vec![
        vec![39, 0, 17, 17, 5, 38, 1, 22],
        vec![3, 2, 1, 0],
        vec![10, 30, 20, 10, 31, 11],
        (0..40).rev().collect(),
        // sequential reads across batches: the reader continues where it stopped, and a
        // frame it output last is delivered again without decoding
        vec![4, 5],
        vec![5, 6, 7],
        vec![7, 8],
        vec![8],
    ];
    for order in orders {
        let wanted: Vec<usize> = order.iter().map(|&k| by_pts[k]).collect();
        let mut reader = pool.checkout(&path, wanted[0]).expect("checkout");
        let n = w * h * 3;
        let mut got = vec![vec![0u8; n]; wanted.len()];
        reader
            .decode(&wanted, |i, conv, f| {
                conv.convert(f, roboframes_core::frame::Decoded::Rgb24, &mut got[i])
                    .map_err(|m| roboframes_core::Error::InvalidArgument { msg: m })
            })
            .expect("decode");
        pool.checkin(reader);
        for (i, &k) in order.iter().enumerate() {
            assert!(
                got[i] == reference[k],
                "frame {k} differs from the sequential decode ({w}x{h})"
            );
        }
    }
    assert_eq!(pool.open_readers(), 1);
    let reader = pool.checkout(&path, by_pts[8]).expect("checkout");
    assert_eq!(reader.forward_cost(by_pts[8]), Some(0)); // output last: retained
    assert_eq!(reader.forward_cost(by_pts[7]), None); // behind it: a seek
    assert!(reader.forward_cost(by_pts[9]).is_some_and(|c| c <= 3)); // just ahead
}

#[test]
fn random_access_matches_sequential_swscale_width() {
    check_random_access(96, 64);
}

#[test]
fn random_access_matches_sequential_filtergraph_width() {
    check_random_access(88, 72);
}

#[test]
fn nearest_frame_times() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = make_video(dir.path(), "t.mp4", 64, 48, 12);
    let ix = FrameIndex::build(&path).expect("index");
    for k in 0..12 {
        let (pos, t) = ix.nearest(k as f64 / 10.0 + 0.001).expect("nearest");
        assert!((t - k as f64 / 10.0).abs() < 1e-9, "frame {k} at {t}");
        assert_eq!(ix.seconds(ix.packets[pos].pts), t);
    }
}

/// JPEG through libjpeg-turbo's C API (the one unsafe call of the image path): both IDCTs
/// decode a frame to its size, close to the original, differing from each other by a few
/// levels at most; a truncated JPEG is an error, not a partly decoded frame.
#[test]
fn jpeg_decodes_with_either_idct() {
    use roboframes_core::{decode_encoded_image, JpegDct};
    let (w, h) = (40usize, 24usize);
    let pixels: Vec<u8> = (0..w * h * 3).map(|i| ((i * 7) % 251) as u8).collect();
    let image = turbojpeg::Image {
        pixels: pixels.as_slice(),
        width: w,
        pitch: w * 3,
        height: h,
        format: turbojpeg::PixelFormat::RGB,
    };
    let jpeg = turbojpeg::compress(image, 95, turbojpeg::Subsamp::Sub2x2).expect("encode");
    let (accurate, dims) = decode_encoded_image(&jpeg, JpegDct::Accurate).expect("accurate");
    let (fast, dims_fast) = decode_encoded_image(&jpeg, JpegDct::Fast).expect("fast");
    assert_eq!((dims, dims_fast), ((h, w, 3), (h, w, 3)));
    assert_eq!((accurate.len(), fast.len()), (w * h * 3, w * h * 3));
    let most = accurate
        .iter()
        .zip(&fast)
        .map(|(a, b)| a.abs_diff(*b))
        .max()
        .unwrap_or(0);
    assert!(most <= 8, "the two IDCTs differ by {most} levels");
    let truncated = &jpeg[..jpeg.len() / 2];
    assert!(decode_encoded_image(truncated, JpegDct::Accurate).is_err());
}
