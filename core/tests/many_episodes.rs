//! Whole-dataset passes over many episodes (statistics and validation decode every episode in
//! a parallel loop): each episode's decode must run on the loop's own thread. A loop on
//! another pool's threads nested the other episodes' iterations on a waiting thread's stack and
//! overflowed it (a crash, found on a dataset of 1,000 episodes).

use roboframes_core::stats::compute_stats;
use roboframes_core::testing::write_dataset;
use roboframes_core::validate::{validate, DecodeCheck, Progress, Severity, ValidateOptions};
use roboframes_core::{Dataset, OpenOptions};

const EPISODES: usize = 3000;

#[test]
fn statistics_and_validation_of_many_episodes() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    write_dataset(dir.path(), &[2; EPISODES]).expect("write the dataset");
    let ds = Dataset::open(
        dir.path(),
        OpenOptions {
            decode_threads: Some(2),
            ..Default::default()
        },
    )
    .expect("open");
    let stats = compute_stats(&ds, &Progress::default()).expect("statistics");
    let count = stats.first().map(|s| s.count);
    assert_eq!(count, Some(2 * EPISODES as u64));
    let opts = ValidateOptions {
        decode: DecodeCheck::Ends,
        tolerance_s: 1e-4,
        decode_threads: Some(2),
        source: Default::default(),
        part: Default::default(),
    };
    let report = validate(dir.path(), &opts, &Progress::default());
    // (a warning: the test writer writes no meta/stats.json)
    let errors: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .collect();
    assert!(errors.is_empty(), "{:?}", errors.first());
    assert_eq!(report.episodes, EPISODES);
    assert_eq!(report.frames_decoded, 2 * EPISODES as u64);
}
