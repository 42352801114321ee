//! AFL++ entry point of the `mp4_index` target (`roboframes_core::fuzz`).
fn main() {
    afl::fuzz!(|data: &[u8]| {
        roboframes_core::fuzz::run("mp4_index", data);
    });
}
