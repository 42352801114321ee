//! AFL++ entry point of the `episodes_table` target (`roboframes_core::fuzz`).
fn main() {
    afl::fuzz!(|data: &[u8]| {
        roboframes_core::fuzz::run("episodes_table", data);
    });
}
