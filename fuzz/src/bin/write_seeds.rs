//! Writes the fuzzers' seed inputs: `write_seeds <dir>` (see `roboframes_core::fuzz::write_seeds`).
fn main() -> std::io::Result<()> {
    let dir = std::env::args_os()
        .nth(1)
        .ok_or_else(|| std::io::Error::other("usage: write_seeds <dir>"))?;
    roboframes_core::fuzz::write_seeds(std::path::Path::new(&dir))
}
