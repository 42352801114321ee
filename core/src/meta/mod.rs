//! Dataset metadata of a LeRobot v3.0 root: `meta/info.json`, `meta/episodes/*`,
//! `meta/tasks.parquet` and `meta/stats.json`. Reading it touches no data rows.

mod info;
mod paths;
mod tables;

pub use info::{
    parse_info, read_info, read_stats, DType, Feature, FeatureKind, Info, MAX_FEATURE_ELEMENTS,
    MAX_METADATA_BYTES,
};
pub use paths::{data_file_path, format_path, video_file_path, PathVar, MAX_PATH_FIELD_WIDTH};
pub use tables::{
    check_episode, episode_files, episode_span, read_episode_rows, read_episodes, read_subtasks,
    read_tasks, Episode, EpisodeVideo,
};
