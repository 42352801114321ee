//! roboframes-core: reads LeRobot v3.0 datasets (parquet tables + mp4 cameras) and decodes
//! their frames in process, with LeRobot's item and window semantics. Knows nothing of Python,
//! torch or MLX: adapters lend it buffers and it fills them.

pub mod cache;
pub mod dataset;
pub mod depth;
pub mod error;
pub mod error_channel;
pub mod frame;
mod fs;
#[cfg(feature = "testing")]
pub mod fuzz;
pub mod image;
pub mod meta;
pub mod normalize;
pub mod outputs;
pub mod parquet_io;
mod plan;
pub mod prefetch;
pub mod progress;
pub mod registry;
pub mod rules;
pub mod stats;
pub mod store;
pub mod table;
#[cfg(feature = "testing")]
pub mod testing;
pub mod validate;
pub mod value;
pub mod video;
pub mod window;

pub use cache::CacheStats;
pub use dataset::{Dataset, OpenOptions, OutBuf};
pub use error::{Error, Location, Result};
pub use frame::{FrameFormat, PixelType};
pub use meta::{DType, Episode, Feature, FeatureKind, Info};
pub use outputs::{OutputKind, OutputSpec};
