//! AFL++ entry point of the `info_json` target (`roboframes_core::fuzz`).
fn main() {
    afl::fuzz!(|data: &[u8]| {
        roboframes_core::fuzz::run("info_json", data);
    });
}
