//! AFL++ entry point of the `data_table` target (`roboframes_core::fuzz`).
fn main() {
    afl::fuzz!(|data: &[u8]| {
        roboframes_core::fuzz::run("data_table", data);
    });
}
