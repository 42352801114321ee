//! Dataset metadata of a LeRobot root: `meta/info.json`, `meta/episodes/*`,
//! `meta/tasks.parquet` and `meta/stats.json` of v3.0, or `meta/episodes.jsonl` and
//! `meta/tasks.jsonl` of v2.0/v2.1 ([`v2`]). Reading it touches no data rows.

mod info;
mod paths;
mod tables;
mod v2;

pub use info::{
    parse_info, read_info, read_stats, DType, Feature, FeatureKind, Info, LegacyLayout,
    MAX_FEATURE_ELEMENTS, MAX_METADATA_BYTES,
};
pub use paths::{data_file_path, format_path, video_file_path, PathVar, MAX_PATH_FIELD_WIDTH};
pub use tables::{
    check_episode, episode_files, episode_span, read_episode_rows, read_episodes, read_subtasks,
    read_tasks, Episode, EpisodeVideo,
};
pub use v2::MAX_JSONL_BYTES;
