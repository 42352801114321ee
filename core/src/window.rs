//! LeRobot's window rules: `delta_timestamps` validated against `fps`, converted to frame
//! offsets, and clamped to the item's episode with pad flags.

use indexmap::IndexMap;

use crate::error::{Error, Result};
use crate::meta::Episode;

/// Python's `round` (ties to even), which LeRobot uses to turn times into frame offsets.
pub fn py_round(x: f64) -> f64 {
    x.round_ties_even()
}

/// Checks that every delta is a multiple of `1/fps` within `tolerance_s`
/// (`abs(d*fps - round(d*fps)) / fps <= tolerance_s`), as LeRobot does.
pub fn check_delta_timestamps(
    delta: &IndexMap<String, Vec<f64>>,
    fps: f64,
    tolerance_s: f64,
) -> Result<()> {
    let mut bad = Vec::new();
    for (k, ds) in delta {
        let outside: Vec<String> = ds
            .iter()
            .filter(|&&d| !d.is_finite() || (d * fps - py_round(d * fps)).abs() / fps > tolerance_s)
            .map(|d| d.to_string())
            .collect();
        if !outside.is_empty() {
            bad.push(format!("'{k}': [{}]", outside.join(", ")));
        }
        if ds.is_empty() {
            bad.push(format!("'{k}': no deltas given"));
        }
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(Error::DeltaTimestamps {
            msg: format!(
                "these delta_timestamps are outside of tolerance; make sure they are multiples of 1/{fps} +/- tolerance: {}",
                bad.join("; ")
            ),
        })
    }
}

/// Frame offsets `round(d * fps)` per key.
pub fn delta_indices(delta: &IndexMap<String, Vec<f64>>, fps: f64) -> IndexMap<String, Vec<i64>> {
    delta
        .iter()
        .map(|(k, ds)| {
            (
                k.clone(),
                ds.iter().map(|d| py_round(d * fps) as i64).collect(),
            )
        })
        .collect()
}

/// The clamped rows and pad flags of a window around `abs` in episode `e`: LeRobot's rule
/// (offsets clamped to `[from, to - 1]`, padded where the unclamped row left the episode).
pub fn window<'a>(
    offsets: Option<&'a [i64]>,
    e: &'a Episode,
    abs: i64,
) -> impl Iterator<Item = (i64, bool)> + 'a {
    const NOW: &[i64] = &[0];
    let (from, to) = (e.dataset_from_index, e.dataset_to_index);
    offsets.unwrap_or(NOW).iter().map(move |d| {
        let q = abs.saturating_add(*d);
        (
            q.clamp(from, to.saturating_sub(1).max(from)),
            q < from || q >= to,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(k: &str, v: Vec<f64>) -> IndexMap<String, Vec<f64>> {
        let mut m = IndexMap::new();
        m.insert(k.to_string(), v);
        m
    }

    #[test]
    fn accepts_multiples_and_rounds_like_python() {
        let d = one("action", vec![-0.1, 0.0, 1.0 / 30.0, 0.5]);
        assert!(check_delta_timestamps(&d, 30.0, 1e-4).is_ok());
        assert_eq!(delta_indices(&d, 30.0)["action"], vec![-3, 0, 1, 15]);
        assert_eq!(py_round(2.5), 2.0);
        assert_eq!(py_round(-0.5), -0.0);
    }

    #[test]
    fn rejects_off_grid_and_nan() {
        let d = one("action", vec![0.0, 0.01]);
        let e = check_delta_timestamps(&d, 30.0, 1e-4).expect_err("off grid");
        assert!(e.to_string().contains("action"), "{e}");
        assert!(check_delta_timestamps(&one("a", vec![f64::NAN]), 30.0, 1e-4).is_err());
        assert!(check_delta_timestamps(&one("a", vec![]), 30.0, 1e-4).is_err());
    }

    fn ep(from: i64, to: i64) -> Episode {
        Episode {
            episode_index: 0,
            length: to - from,
            data_chunk_index: 0,
            data_file_index: 0,
            dataset_from_index: from,
            dataset_to_index: to,
            videos: vec![],
        }
    }

    #[test]
    fn windows_clamp_and_pad_like_lerobot() {
        let e = ep(10, 14);
        let w: Vec<_> = window(Some(&[-2, 0, 3]), &e, 11).collect();
        assert_eq!(w, vec![(10, true), (11, false), (13, true)]);
        let w: Vec<_> = window(None, &e, 13).collect();
        assert_eq!(w, vec![(13, false)]);
        // one-frame episode: every offset lands on its only row
        let one = ep(5, 6);
        let w: Vec<_> = window(Some(&[-1, 0, 1]), &one, 5).collect();
        assert_eq!(w, vec![(5, true), (5, false), (5, true)]);
    }
}
