//! AFL++ entry point of the `mcap_file` target (`roboframes_core::fuzz`). (`fuzz_nohook`: a panic the core catches is no crash;
//! one that escapes aborts)
fn main() {
    afl::fuzz_nohook!(|data: &[u8]| {
        roboframes_core::fuzz::run("mcap_file", data);
    });
}
