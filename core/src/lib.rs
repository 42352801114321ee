//! roboframes-core: reads LeRobot v3.0 datasets (parquet tables + mp4 cameras) and decodes
//! their frames in process, with LeRobot's item and window semantics. Knows nothing of Python,
//! torch or MLX: adapters lend it buffers and it fills them.

// The API: what the Python module, the torch extension, the C API and the fuzzers use.
pub mod dataset;
pub mod depth;
pub mod error;
pub mod error_channel;
pub mod frame;
#[cfg(feature = "testing")]
pub mod fuzz;
pub mod meta;
pub mod normalize;
pub mod prefetch;
pub mod registry;
pub mod source;
pub mod stats;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod validate;
pub mod value;
pub mod video;

// The internals (their types that the API hands out are re-exported below).
pub(crate) mod cache;
mod fs;
#[cfg(feature = "hdf5")]
pub(crate) mod hdf5src;
pub(crate) mod image;
pub(crate) mod mcapsrc;
pub(crate) mod outputs;
pub(crate) mod parquet_io;
mod plan;
pub(crate) mod progress;
pub(crate) mod rldssrc;
pub(crate) mod rules;
pub(crate) mod table;
pub(crate) mod window;

pub use cache::CacheStats;
pub use dataset::{Dataset, OpenOptions, OutBuf};
pub use error::{Error, Location, Result};
pub use frame::{FrameFormat, PixelType};
pub use image::{decode_encoded_image, JpegDct};
pub use meta::{DType, Episode, Feature, FeatureKind, Info};
pub use outputs::{OutputKind, OutputSpec};
pub use source::{KeyMap, SourceOptions};
