//! The data tables of a dataset: loaded lazily, once (a remote table an episode at a time),
//! their rows checked against `meta/episodes`.

use std::sync::Arc;

use super::{Dataset, WHOLE_FILE};
use crate::error::{Error, Location, Result};
use crate::meta::{self, Episode, FeatureKind};
use crate::rules;
use crate::table::DataFile;

impl Dataset {
    pub(super) fn data_file(&self, ep: &Episode) -> Result<Arc<DataFile>> {
        // A remote table is read an episode at a time (LeRobot writes a row group per
        // episode): an item costs its episode's rows, not the whole file. Windows never leave
        // their episode, so an episode's rows are all an item needs.
        let remote = self.remote;
        let file = (ep.data_chunk_index, ep.data_file_index);
        let key = (
            file.0,
            file.1,
            if remote { ep.episode_index } else { WHOLE_FILE },
        );
        // A panic elsewhere cannot leave the map half-updated (inserts are single calls), so a
        // poisoned lock is used as is rather than silently disabling the cache.
        let files = || self.data_files.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = files().get(&key).cloned() {
            return Ok(f);
        }
        let loaded = match &self.source {
            super::Source::LeRobot => None,
            #[cfg(feature = "hdf5")]
            super::Source::Hdf5(src) => Some(src.load_episode(ep.episode_index)),
            super::Source::Rlds(src) => Some(src.load_episode(ep.episode_index)),
            super::Source::Mcap(src) => Some(src.load_episode(ep.episode_index)),
        };
        if let Some(f) = loaded {
            let f = Arc::new(f.map_err(|e| e.within(Some(ep.episode_index), None))?);
            files().entry(key).or_insert_with(|| f.clone());
            return Ok(f);
        }
        let path = meta::data_file_path(&self.root, &self.info, file.0, file.1)?;
        if !crate::store::exists(&path)? {
            return Err(Error::NotFound {
                at: Location::file(&path).with_episode(ep.episode_index),
                detail: "data file listed in the episode table is missing".into(),
            });
        }
        let feats: Vec<_> = self
            .info
            .features
            .values()
            .filter(|f| f.kind != FeatureKind::Video)
            .collect();
        let rows = if remote {
            // the file's rows start at the first index of its first episode
            let first = self
                .episodes_in(file)
                .map(|e| e.dataset_from_index)
                .min()
                .unwrap_or(ep.dataset_from_index);
            let start = u64::try_from(ep.dataset_from_index.saturating_sub(first)).unwrap_or(0);
            let len = u64::try_from(ep.length).unwrap_or(0);
            Some(start..start.saturating_add(len))
        } else {
            None
        };
        // (a v2.x file is one episode's, found by its place as LeRobot 0.3 does)
        let loaded = if self.info.legacy.is_some() {
            DataFile::load_at(&path, &feats, ep.dataset_from_index)
        } else {
            DataFile::load_rows(&path, &feats, rows)
        };
        let f = Arc::new(loaded.map_err(|e| e.within(Some(ep.episode_index), None))?);
        self.check_rows(&f, key)?;
        files().entry(key).or_insert_with(|| f.clone());
        Ok(f)
    }

    /// The rows of a loaded data file against `meta/episodes` ([`rules::episode_rows`] for
    /// each episode loaded, [`rules::unclaimed_rows`] for the whole file). (`frame_index` is
    /// only reported by `validate`: LeRobot never reads it.)
    fn check_rows(&self, f: &DataFile, key: (i64, i64, i64)) -> Result<()> {
        let check_ep = rules::checks_episode_index(&self.info);
        let in_file: Vec<&Episode> = self.episodes_in((key.0, key.1)).collect();
        for e in in_file
            .iter()
            .filter(|e| key.2 == WHOLE_FILE || e.episode_index == key.2)
        {
            rules::first_error(rules::episode_rows(f, e, check_ep))?;
        }
        let claimed = in_file.iter().fold(0u64, |acc, e| {
            acc.saturating_add(u64::try_from(e.length).unwrap_or(0))
        });
        rules::first_error(rules::unclaimed_rows(f, claimed))
    }

    /// The episodes of data file `file` (chunk, file), in table order.
    fn episodes_in(&self, file: (i64, i64)) -> impl Iterator<Item = &Episode> {
        self.in_data_file
            .get(&file)
            .into_iter()
            .flatten()
            .filter_map(|&p| self.episodes.get(p))
    }

    /// The data file of episode `episode_index` and the rows of that episode in it.
    pub fn episode_rows(
        &self,
        episode_index: i64,
    ) -> Result<(Arc<DataFile>, std::ops::Range<usize>)> {
        let e = self
            .pos_of
            .get(&episode_index)
            .and_then(|&p| self.episodes.get(p))
            .ok_or_else(|| Error::InvalidArgument {
                msg: format!("episode {episode_index} is not in the dataset"),
            })?;
        let f = self.data_file(e)?;
        let start = f
            .row_of(e.dataset_from_index)
            .map_err(|er| er.within(Some(episode_index), None))?;
        let len = usize::try_from(e.length).unwrap_or(0);
        if start.checked_add(len).is_none_or(|end| end > f.rows) {
            return Err(Error::metadata(
                Location::file(&f.path).with_episode(episode_index),
                format!(
                    "the episode's {len} rows from row {start} run past the file's {} rows",
                    f.rows
                ),
            ));
        }
        Ok((f.clone(), start..start + len))
    }
}
