//! No memory is lost by indexing, seeking and decoding: run under valgrind with
//! `--leak-check=full --errors-for-leak-kinds=definite` by scripts/test.sh, where a definite
//! leak fails the run. (Reusing a packet across `av_read_frame` calls once lost every packet's
//! data: the size of the file per index build and per reader.)

use std::sync::Arc;

use roboframes_core::testing::write_video;
use roboframes_core::video::{FrameIndex, VideoReader};

#[test]
fn index_seek_and_decode_release_everything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("v.mp4");
    write_video(&path, 64, 48, 10, 24, 6, 2).expect("the ffmpeg command-line tool is needed");
    for _ in 0..3 {
        let ix = Arc::new(FrameIndex::build(&path).expect("index"));
        let mut r = VideoReader::open(ix.clone(), 1).expect("open");
        let n = (ix.width * ix.height * 3) as usize;
        let mut out = vec![0u8; n];
        // forward, then back (a seek), then forward again past a keyframe (skipping packets)
        for positions in [vec![0, 1, 2], vec![13], vec![1], vec![20, 23]] {
            r.decode(&positions, |_, conv, f| {
                conv.convert(f, roboframes_core::frame::Decoded::Rgb24, &mut out)
                    .map_err(|m| roboframes_core::Error::InvalidArgument { msg: m })
            })
            .expect("decode");
        }
    }
}
