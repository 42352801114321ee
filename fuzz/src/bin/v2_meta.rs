//! AFL++ entry point of the `v2_meta` target (`roboframes_core::fuzz`): a v2.x root's
//! `meta/episodes.jsonl` and `meta/tasks.jsonl`. (`fuzz_nohook`: a panic the core catches is no
//! crash; one that escapes aborts)
fn main() {
    afl::fuzz_nohook!(|data: &[u8]| {
        roboframes_core::fuzz::run("v2_meta", data);
    });
}
