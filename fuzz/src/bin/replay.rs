//! Runs one target on saved inputs and reports each one's time: `replay <target> <file>...`
//! (a panic aborts with its message, as under the fuzzer).
fn main() {
    let mut args = std::env::args().skip(1);
    let target = args.next().unwrap_or_default();
    for file in args {
        let data = std::fs::read(&file).unwrap_or_default();
        let t = std::time::Instant::now();
        if !roboframes_core::fuzz::run(&target, &data) {
            eprintln!("no target named '{target}'");
            std::process::exit(2);
        }
        println!("{file}: {:.3} s", t.elapsed().as_secs_f64());
    }
}
