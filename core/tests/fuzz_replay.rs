//! Replays the fuzz targets (`roboframes_core::fuzz`) on fresh seeds and on every saved input
//! under `fuzz/regressions/<target>/` (crashes and hangs the fuzzer found, kept once fixed), so
//! `cargo test` fails again if one comes back.

use std::path::Path;

use roboframes_core::fuzz;

#[test]
fn seeds_pass_every_target() {
    let dir = tempfile::tempdir().expect("tempdir");
    fuzz::write_seeds(dir.path()).expect("the ffmpeg command-line tool is needed");
    for target in fuzz::TARGETS {
        let files: Vec<_> = std::fs::read_dir(dir.path().join(target))
            .expect("seed folder")
            .flatten()
            .collect();
        assert!(!files.is_empty(), "no seed for {target}");
        for f in files {
            let data = std::fs::read(f.path()).expect("seed");
            assert!(fuzz::run(target, &data));
        }
    }
    // the seeds are valid: a parse that refused them would make the fuzzer explore nothing
    let info = std::fs::read_to_string(dir.path().join("info_json/info.json")).expect("info");
    roboframes_core::meta::parse_info(&info, Path::new("info.json")).expect("seed parses");
}

#[test]
fn saved_findings_stay_fixed() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions");
    for target in fuzz::TARGETS {
        let Ok(entries) = std::fs::read_dir(root.join(target)) else {
            continue;
        };
        for e in entries.flatten() {
            let data = std::fs::read(e.path()).expect("finding");
            assert!(fuzz::run(target, &data), "{}", e.path().display());
        }
    }
}
