//! MCAP recordings (ROS 2 bags, Foxglove) read in place: one episode per `.mcap` file, its
//! topics put on the time grid of a reference topic (default: the slowest camera). Each other
//! topic gives an item its latest message at or before the grid time, no older than the
//! alignment tolerance; a time inside the recording where a topic has no such message is an
//! error naming file, topic and time, never a stale value held. Messages are decoded from the
//! schemas in the file (ROS 2 `.msg` with CDR, protobuf descriptors, JSON): numeric fields
//! become keys `<topic>.<field>`, image topics (`CompressedImage`, raw `Image`/`RawImage`)
//! cameras `<topic>`. Opening reads every record once: numeric messages are decoded then
//! (they are small), and for image messages only where they lie (a chunk and the message's
//! place in it, or a place in the file), so a frame is one read of its chunk (a small cache
//! keeps recent chunks decompressed), decoded on the decoding threads.

mod decode;
mod ros2;

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use mcap::records::{op, ChunkHeader, Record};
use rayon::prelude::*;

use crate::error::{Error, Location, Result};
use crate::meta::{DType, Feature};
use crate::source::{KeyMap, SourceOptions};
use crate::table::{ColumnData, DataFile, FrameBytes, RowFrames};
use decode::{Decoder, Leaf, Values};

/// The format name in errors.
const FORMAT: &str = "MCAP";

/// MCAP's magic bytes, at the start and end of a file.
const MAGIC: &[u8; 8] = b"\x89MCAP0\r\n";

/// A chunk decompressing to more than this is damage, not a recording's (writers cut chunks
/// at a few MiB; one large image makes one chunk of its own).
const MAX_CHUNK_BYTES: u64 = 1 << 29;

/// Decompressed chunks kept per file.
const CHUNK_CACHE: usize = 16;

fn source_error(path: &Path, key: Option<&str>, msg: impl Into<String>) -> Error {
    let at = Location::file(path);
    Error::Source {
        at: match key {
            Some(k) => at.with_key(k),
            None => at,
        },
        format: FORMAT,
        msg: msg.into(),
    }
}

/// True when the file name ends in `.mcap`.
pub fn is_mcap_name(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("mcap"))
}

/// The `.mcap` files of `root` (a file, or a folder's files in natural order; a remote root is
/// one file: remote folders cannot be listed).
fn mcap_files(root: &Path) -> Result<Vec<PathBuf>> {
    if crate::store::is_url(&root.to_string_lossy()) {
        return Ok(vec![root.to_path_buf()]);
    }
    crate::source::source_files(
        root,
        is_mcap_name,
        "an MCAP source is a .mcap file or a folder of them",
        "the folder holds no .mcap files",
    )
}

/// Where a message lies.
#[derive(Debug, Clone, Copy)]
enum MsgLoc {
    /// Outside chunks: its bytes in the file.
    File { offset: u64, len: usize },
    /// The `ordinal`-th message of chunk `chunk`.
    Chunk { chunk: usize, ordinal: usize },
}

/// A chunk of a file: its compressed bytes' place and its header.
#[derive(Debug, Clone)]
struct ChunkLoc {
    /// Where the chunk's (compressed) records lie.
    offset: u64,
    len: usize,
    header: ChunkHeader,
}

/// A channel as its records say.
#[derive(Debug, Clone)]
struct ChannelInfo {
    topic: String,
    message_encoding: String,
    /// (name, encoding, data)
    schema: Option<(String, String, Vec<u8>)>,
    /// Messages' bytes are kept (not an image topic).
    keep: bool,
}

/// One message found by the scan.
#[derive(Debug)]
struct Found {
    log_time: u64,
    loc: MsgLoc,
    /// Its bytes, for topics that are not images.
    data: Option<bytes::Bytes>,
}

/// What scanning one file found.
#[derive(Debug, Default)]
struct Scanned {
    channels: BTreeMap<u16, ChannelInfo>,
    messages: HashMap<u16, Vec<Found>>,
    chunks: Vec<ChunkLoc>,
}

/// Schema and channel records larger than this are damage (a protobuf descriptor set of a
/// recording's types is a few hundred KiB at most).
const MAX_SCHEMA_BYTES: u64 = 64 << 20;

/// Checks that a chunk of `compressed` bytes may hold what its `header` says it decompresses
/// to: what a recording's chunk holds, and what its compressed bytes can expand to (a few bytes
/// may not claim gigabytes: that much is allocated to decompress them).
fn check_chunk_size(header: &ChunkHeader, compressed: usize) -> std::result::Result<(), String> {
    let most = (compressed as u64)
        .saturating_mul(4096)
        .saturating_add(16 << 20)
        .min(MAX_CHUNK_BYTES);
    if header.uncompressed_size > most {
        return Err(format!(
            "a chunk of {compressed} bytes claims {} bytes uncompressed; more than {most} is not \
             a recording's",
            header.uncompressed_size
        ));
    }
    Ok(())
}

/// The records of a chunk (`header`, and its compressed bytes `data`): decompressed (zstd, lz4
/// or none) into exactly the size the header gives, checked against its CRC, and walked with
/// every length checked against what is left (the `mcap` crate's chunk readers trust inner
/// lengths: a damaged one overflows there). `each` gets the schemas, channels and messages,
/// parsed; other records are skipped unparsed. An error of `each` comes back as `Err(Ok(e))`,
/// the chunk's own as `Err(Err(message))`.
fn chunk_records(
    header: &ChunkHeader,
    data: &[u8],
    mut each: impl FnMut(Record<'_>) -> Result<()>,
) -> std::result::Result<(), std::result::Result<Error, String>> {
    let size = usize::try_from(header.uncompressed_size)
        .map_err(|_| Err("an absurd uncompressed size".to_string()))?;
    let raw: std::borrow::Cow<'_, [u8]> = match header.compression.as_str() {
        "" => std::borrow::Cow::Borrowed(data),
        "zstd" => std::borrow::Cow::Owned(
            zstd::bulk::decompress(data, size).map_err(|e| Err(format!("zstd: {e}")))?,
        ),
        "lz4" => {
            let mut out = Vec::with_capacity(size);
            let dec = lz4::Decoder::new(data).map_err(|e| Err(format!("lz4: {e}")))?;
            dec.take(size as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| Err(format!("lz4: {e}")))?;
            std::borrow::Cow::Owned(out)
        }
        other => {
            return Err(Err(format!(
                "chunks compressed with '{other}' (roboframes reads zstd, lz4 and uncompressed \
                 chunks)"
            )))
        }
    };
    if raw.len() != size {
        return Err(Err(format!(
            "the chunk holds {} bytes once decompressed, its header says {size}",
            raw.len()
        )));
    }
    if header.uncompressed_crc != 0 && crc32fast::hash(&raw) != header.uncompressed_crc {
        return Err(Err("the chunk's records do not match its CRC".into()));
    }
    let mut at = 0usize;
    while at < raw.len() {
        let head = raw
            .get(at..at.saturating_add(9))
            .ok_or_else(|| Err(format!("a record cut short at byte {at} of the chunk")))?;
        let opcode = head.first().copied().unwrap_or(0);
        let mut len = [0u8; 8];
        len.copy_from_slice(head.get(1..9).unwrap_or(&[0; 8]));
        let len = u64::from_le_bytes(len);
        let start = at.saturating_add(9);
        let end = usize::try_from(len)
            .ok()
            .and_then(|n| start.checked_add(n))
            .filter(|e| *e <= raw.len())
            .ok_or_else(|| {
                Err(format!(
                    "a record of {len} bytes at byte {at} runs past the chunk's end ({} bytes)",
                    raw.len()
                ))
            })?;
        let body = raw.get(start..end).unwrap_or(&[]);
        if matches!(opcode, op::SCHEMA | op::CHANNEL | op::MESSAGE) {
            if !prefixes_fit(opcode, body) {
                return Err(Err("a string or map longer than its record".into()));
            }
            let rec = mcap::parse_record(opcode, body).map_err(|e| Err(e.to_string()))?;
            each(rec).map_err(Ok)?;
        }
        at = end;
    }
    Ok(())
}

/// True when the length prefixes of a Schema's, Channel's or Chunk's strings and maps fit in
/// `body` (the record parser reserves what a prefix claims before reading it).
fn prefixes_fit(opcode: u8, body: &[u8]) -> bool {
    let u32_at = |at: usize| -> Option<usize> {
        let b: [u8; 4] = body.get(at..at.checked_add(4)?)?.try_into().ok()?;
        usize::try_from(u32::from_le_bytes(b)).ok()
    };
    // the end of the length-prefixed field at `at`, if it fits before `end`
    let field = |at: usize, end: usize| -> Option<usize> {
        let e = at.checked_add(4)?.checked_add(u32_at(at)?)?;
        (e <= end).then_some(e)
    };
    let strings = |mut at: usize, n: usize| -> Option<usize> {
        for _ in 0..n {
            at = field(at, body.len())?;
        }
        Some(at)
    };
    match opcode {
        // id, name, encoding (the data's length is checked by the parser)
        op::SCHEMA => strings(2, 2).is_some(),
        // id, schema id, topic, message encoding, then the metadata map: its byte length,
        // then key/value strings inside it
        op::CHANNEL => (|| {
            let at = strings(4, 2)?;
            let end = field(at, body.len())?;
            let mut p = at.checked_add(4)?;
            while p < end {
                p = field(p, end)?;
            }
            Some(())
        })()
        .is_some(),
        // three times and sizes, a CRC, then the compression's name
        op::CHUNK => strings(28, 1).is_some(),
        _ => true,
    }
}

/// True when a schema's type is an image message.
fn image_kind(schema: &str) -> Option<ImageKind> {
    let last = schema.rsplit(['/', '.']).next().unwrap_or(schema);
    match last {
        "CompressedImage" => Some(ImageKind::Compressed),
        "Image" | "RawImage" => Some(ImageKind::Raw),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum ImageKind {
    /// JPEG or PNG bytes in `data`.
    Compressed,
    /// `width`, `height`, `encoding`, `step` and pixel rows in `data`.
    Raw,
}

/// Reads every record of `file`: its channels, where each message lies, and the bytes of the
/// messages of channels that are not images.
fn scan(file: &crate::source::SourceFile, topics: Option<&[String]>) -> Result<Scanned> {
    let path = file.path();
    let (size, reader, errors) = file.reader()?;
    let io = |e: std::io::Error| errors.of(e);
    let bad = |at: u64, m: String| source_error(path, None, format!("at byte {at}: {m}"));
    let mut r = std::io::BufReader::with_capacity(1 << 20, reader);
    let mut magic = [0u8; 8];
    // (a short file is not MCAP; a failed read, a remote one's above all, is its own error)
    match r.read_exact(&mut magic) {
        Err(e) if e.kind() != std::io::ErrorKind::UnexpectedEof => return Err(io(e)),
        _ => {}
    }
    if &magic != MAGIC {
        return Err(source_error(
            path,
            None,
            "not an MCAP file (its first bytes are not MCAP's magic)",
        ));
    }
    let mut out = Scanned::default();
    let mut schemas: HashMap<u16, (String, String, Vec<u8>)> = HashMap::new();
    let mut pos: u64 = 8;
    let mut body = Vec::new();
    while pos < size {
        let mut head = [0u8; 9];
        if size - pos < 9 {
            // (the end magic, or a recorder stopped mid-record)
            break;
        }
        r.read_exact(&mut head).map_err(io)?;
        let opcode = head[0];
        let mut len_bytes = [0u8; 8];
        len_bytes.copy_from_slice(&head[1..9]);
        let len = u64::from_le_bytes(len_bytes);
        let start = pos + 9;
        if len > size - start {
            return Err(bad(
                pos,
                format!(
                    "a record of {len} bytes runs past the end of the file ({size} bytes): the \
                     file is cut short"
                ),
            ));
        }
        if opcode == op::FOOTER {
            break;
        }
        let wanted = matches!(opcode, op::SCHEMA | op::CHANNEL | op::MESSAGE | op::CHUNK);
        if !wanted {
            r.seek_relative(len as i64).map_err(io)?;
            pos = start + len;
            continue;
        }
        let cap = match opcode {
            op::SCHEMA | op::CHANNEL => MAX_SCHEMA_BYTES,
            _ => MAX_CHUNK_BYTES,
        };
        if len > cap {
            return Err(bad(
                pos,
                format!("a record of {len} bytes (opcode {opcode:#04x}); more than {cap} is not a recording's"),
            ));
        }
        let n = usize::try_from(len).map_err(|_| bad(pos, "an absurd record".into()))?;
        body.clear();
        body.resize(n, 0);
        r.read_exact(&mut body).map_err(io)?;
        if !prefixes_fit(opcode, &body) {
            return Err(bad(pos, "a string or map longer than its record".into()));
        }
        let record = mcap::parse_record(opcode, &body).map_err(|e| bad(pos, e.to_string()))?;
        let offset_in_body = |data: &[u8]| -> u64 {
            (data.as_ptr() as usize).saturating_sub(body.as_ptr() as usize) as u64
        };
        match record {
            Record::Chunk { header, data } => {
                check_chunk_size(&header, data.len()).map_err(|m| bad(pos, m))?;
                let chunk = out.chunks.len();
                let loc = ChunkLoc {
                    offset: start + offset_in_body(&data),
                    len: data.len(),
                    header: header.clone(),
                };
                let mut ordinal = 0usize;
                chunk_records(&header, &data, |rec| match rec {
                    Record::Message { header, data } => {
                        let here = MsgLoc::Chunk { chunk, ordinal };
                        ordinal += 1;
                        found(
                            &mut out,
                            path,
                            header.channel_id,
                            header.log_time,
                            here,
                            &data,
                        )
                    }
                    other => meta_record(&mut out, &mut schemas, other, path, topics),
                })
                .map_err(|e| e.unwrap_or_else(|m| bad(pos, format!("chunk: {m}"))))?;
                out.chunks.push(loc);
            }
            Record::Message { header, data } => {
                let here = MsgLoc::File {
                    offset: start + offset_in_body(&data),
                    len: data.len(),
                };
                found(
                    &mut out,
                    path,
                    header.channel_id,
                    header.log_time,
                    here,
                    &data,
                )?;
            }
            other => meta_record(&mut out, &mut schemas, other, path, topics)?,
        }
        pos = start + len;
    }
    for list in out.messages.values_mut() {
        // (stable: messages of one time keep their order)
        list.sort_by_key(|m| m.log_time);
    }
    Ok(out)
}

/// A schema or channel record.
fn meta_record(
    out: &mut Scanned,
    schemas: &mut HashMap<u16, (String, String, Vec<u8>)>,
    rec: Record<'_>,
    path: &Path,
    wanted: Option<&[String]>,
) -> Result<()> {
    match rec {
        Record::Schema { header, data } => {
            schemas.insert(header.id, (header.name, header.encoding, data.into_owned()));
        }
        Record::Channel(c) => {
            let schema = if c.schema_id == 0 {
                None
            } else {
                Some(schemas.get(&c.schema_id).cloned().ok_or_else(|| {
                    source_error(
                        path,
                        Some(&c.topic),
                        format!(
                            "channel {} names schema {}, which comes before no message",
                            c.id, c.schema_id
                        ),
                    )
                })?)
            };
            // (bytes are kept for the topics decoded at open: not images, and only the topics
            // named when some are)
            let keep = schema
                .as_ref()
                .is_none_or(|(name, _, _)| image_kind(name).is_none())
                && wanted.is_none_or(|w| w.contains(&c.topic));
            out.channels.entry(c.id).or_insert(ChannelInfo {
                topic: c.topic,
                message_encoding: c.message_encoding,
                schema,
                keep,
            });
        }
        _ => {}
    }
    Ok(())
}

/// Notes a message of channel `id`.
fn found(
    out: &mut Scanned,
    path: &Path,
    id: u16,
    log_time: u64,
    loc: MsgLoc,
    data: &[u8],
) -> Result<()> {
    let keep = match out.channels.get(&id) {
        Some(c) => c.keep,
        None => {
            return Err(source_error(
                path,
                None,
                format!("a message at log time {log_time} ns of channel {id}, which no channel record defines"),
            ))
        }
    };
    let list = out.messages.entry(id).or_default();
    if list.len() >= crate::source::MAX_EPISODE_FRAMES * 16 {
        return Err(source_error(
            path,
            None,
            "more messages on one channel than a recording holds",
        ));
    }
    list.push(Found {
        log_time,
        loc,
        data: keep.then(|| bytes::Bytes::copy_from_slice(data)),
    });
    Ok(())
}

/// A message of a topic as opening read it: log time, place, and its leaves (not for images).
type Decoded = (u64, MsgLoc, Option<Vec<Leaf>>);

/// An image's pixels or encoded bytes, and its `(H, W, C)`.
type ImageBytes = (Vec<u8>, (usize, usize, usize));

/// A topic read as keys.
#[derive(Debug)]
struct Topic {
    name: String,
    decoder: Arc<Decoder>,
    image: Option<ImageKind>,
}

/// One key of the source.
#[derive(Debug, Clone)]
struct Column {
    /// The item key.
    name: String,
    /// The source's key: `<topic>` (a camera) or `<topic>.<field>`.
    rel: String,
    /// Index in the topics.
    topic: usize,
    kind: ColumnKind,
}

#[derive(Debug, Clone, PartialEq)]
enum ColumnKind {
    /// A field of the message: its leaf path, stored dtype and length (None: one value).
    Numeric {
        path: String,
        dtype: DType,
        len: Option<usize>,
    },
    /// The topic's images, `(H, W, C)`.
    Image { dims: (usize, usize, usize) },
}

/// One file of the source.
#[derive(Debug)]
struct McapFile {
    file: crate::source::SourceFile,
    chunks: Vec<ChunkLoc>,
    /// Recently decompressed chunks: each message's bytes, in chunk order.
    cache: Mutex<lru::LruCache<usize, Arc<Vec<bytes::Bytes>>>>,
}

impl McapFile {
    /// The bytes of the message at `loc`.
    fn message(&self, loc: MsgLoc) -> Result<bytes::Bytes> {
        match loc {
            MsgLoc::File { offset, len } => self.file.read_at(offset, len),
            MsgLoc::Chunk { chunk, ordinal } => {
                let msgs = self.chunk(chunk)?;
                msgs.get(ordinal).cloned().ok_or_else(|| {
                    source_error(
                        self.file.path(),
                        None,
                        format!("chunk {chunk} holds fewer messages than when it was opened"),
                    )
                })
            }
        }
    }

    fn chunk(&self, i: usize) -> Result<Arc<Vec<bytes::Bytes>>> {
        // (a panic elsewhere leaves the cache whole: inserts are single calls)
        let cache = || self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = cache().get(&i).cloned() {
            return Ok(c);
        }
        let loc = self
            .chunks
            .get(i)
            .ok_or_else(|| Error::internal("MCAP chunk", "no such chunk"))?;
        let data = self.file.read_at(loc.offset, loc.len)?;
        let mut msgs = Vec::new();
        chunk_records(&loc.header, &data, |rec| {
            if let Record::Message { data, .. } = rec {
                msgs.push(bytes::Bytes::from(data.into_owned()));
            }
            Ok(())
        })
        .map_err(|e| {
            e.unwrap_or_else(|m| {
                source_error(
                    self.file.path(),
                    None,
                    format!("chunk at byte {}: {m}", loc.offset),
                )
            })
        })?;
        let msgs = Arc::new(msgs);
        cache().put(i, msgs.clone());
        Ok(msgs)
    }
}

/// One episode (file) of the source.
#[derive(Debug)]
struct McapEpisode {
    file: Arc<McapFile>,
    length: usize,
    first_index: i64,
    /// Seconds from the episode's first grid time, per row.
    times: Vec<f32>,
    /// Per column: numeric rows as item-dtype bytes, or the camera's messages per row.
    columns: Vec<Rows>,
    tasks: Option<Vec<i64>>,
}

#[derive(Debug)]
enum Rows {
    Numeric(Vec<u8>),
    Image {
        locs: Arc<[MsgLoc]>,
        /// Log time of each row's message (for errors).
        times: Arc<[u64]>,
    },
}

/// An opened MCAP source.
#[derive(Debug)]
pub struct McapSource {
    episodes: Vec<McapEpisode>,
    columns: Vec<Column>,
    topics: Vec<Topic>,
    fps: f64,
}

/// What [`open`] found.
pub type Opened = crate::source::Opened<McapSource>;

/// The median of `v` (sorted here), if any.
fn median(mut v: Vec<u64>) -> Option<u64> {
    v.sort_unstable();
    v.get(v.len() / 2).copied()
}

/// Opens the MCAP file or folder of files at `root`.
pub fn open(root: &Path, opts: &SourceOptions) -> Result<Opened> {
    let paths = mcap_files(root)?;
    let stamps = paths
        .iter()
        .map(|p| crate::source::SourceFile::open(p, FORMAT))
        .collect::<Result<Vec<_>>>()?;
    let wanted_topics = opts.topics.as_deref();
    let scans: Vec<Scanned> = stamps
        .par_iter()
        .map(|f| scan(f, wanted_topics))
        .collect::<Result<_>>()?;
    let mut warnings = Vec::new();
    let first = paths.first().map(PathBuf::as_path).unwrap_or(root);

    // topics: by name, as the first file defines them
    let mut by_topic: BTreeMap<String, ChannelInfo> = BTreeMap::new();
    for s in &scans {
        for c in s.channels.values() {
            by_topic.entry(c.topic.clone()).or_insert_with(|| c.clone());
        }
    }
    let wanted = opts.topics.as_ref();
    if let Some(list) = wanted {
        for t in list {
            if !by_topic.contains_key(t) {
                return Err(Error::InvalidArgument {
                    msg: format!(
                        "topics names '{t}', which no file of '{}' has (topics: {})",
                        root.display(),
                        by_topic.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                });
            }
        }
    }
    let mut topics: Vec<Topic> = Vec::new();
    for (name, c) in &by_topic {
        if wanted.is_some_and(|w| !w.contains(name)) {
            continue;
        }
        let schema = c
            .schema
            .as_ref()
            .map(|(n, e, d)| (n.as_str(), e.as_str(), d.as_slice()));
        match Decoder::new(&c.message_encoding, schema) {
            Ok(d) => topics.push(Topic {
                name: name.clone(),
                decoder: Arc::new(d),
                image: schema.and_then(|(n, _, _)| image_kind(n)),
            }),
            Err(why) if wanted.is_some() => {
                return Err(source_error(
                    first,
                    Some(name),
                    format!("cannot read the topic: {why}"),
                ))
            }
            Err(why) => warnings.push(format!(
                "{}: topic '{name}' is left out: roboframes cannot read {why}",
                first.display()
            )),
        }
    }

    // every channel of a topic, in every file, must be the same type: one decoder reads them
    for t in &topics {
        let Some(model) = by_topic.get(&t.name) else {
            continue;
        };
        for (sc, path) in scans.iter().zip(&paths) {
            for c in sc.channels.values().filter(|c| c.topic == t.name) {
                if c.message_encoding != model.message_encoding || c.schema != model.schema {
                    return Err(source_error(
                        path,
                        Some(&t.name),
                        format!(
                            "the topic's messages are of another type or encoding here ({} '{}') \
                             than in the first file that has it ({} '{}'); read the files apart",
                            c.message_encoding,
                            c.schema.as_ref().map_or("", |s| s.0.as_str()),
                            model.message_encoding,
                            model.schema.as_ref().map_or("", |s| s.0.as_str()),
                        ),
                    ));
                }
            }
        }
    }

    // each file's messages of each topic, decoded where they are not images
    let mut decoded: Vec<Vec<Vec<Decoded>>> = Vec::new();
    for (s, path) in scans.iter().zip(&paths) {
        let mut per_topic = Vec::new();
        for t in &topics {
            let ids: Vec<u16> = s
                .channels
                .iter()
                .filter(|(_, c)| c.topic == t.name)
                .map(|(id, _)| *id)
                .collect();
            let mut msgs: Vec<&Found> = ids
                .iter()
                .flat_map(|id| s.messages.get(id).into_iter().flatten())
                .collect();
            msgs.sort_by_key(|m| m.log_time);
            let list = msgs
                .par_iter()
                .map(|m| {
                    let leaves = match &m.data {
                        Some(d) => Some(t.decoder.decode(d).map_err(|why| {
                            source_error(
                                path,
                                Some(&t.name),
                                format!("message at log time {} ns: {why}", m.log_time),
                            )
                        })?),
                        None => None,
                    };
                    Ok((m.log_time, m.loc, leaves))
                })
                .collect::<Result<Vec<_>>>()?;
            per_topic.push(list);
        }
        decoded.push(per_topic);
    }
    let files: Vec<Arc<McapFile>> = scans
        .into_iter()
        .zip(stamps)
        .map(|(s, file)| {
            Arc::new(McapFile {
                file,
                chunks: s.chunks,
                cache: Mutex::new(lru::LruCache::new(
                    std::num::NonZeroUsize::new(CHUNK_CACHE).unwrap_or(std::num::NonZeroUsize::MIN),
                )),
            })
        })
        .collect();

    // keys of each topic, from its first message in the first file
    let mut columns: Vec<Column> = Vec::new();
    for (ti, t) in topics.iter().enumerate() {
        let Some((fi, first_msg)) = decoded
            .iter()
            .enumerate()
            .find_map(|(fi, d)| d.get(ti).and_then(|l| l.first()).map(|m| (fi, m)))
        else {
            continue;
        };
        match t.image {
            Some(kind) => {
                let file = files
                    .get(fi)
                    .ok_or_else(|| Error::internal("MCAP", "no file"))?;
                let bytes = file.message(first_msg.1)?;
                let dims = image_of(&t.decoder, kind, &bytes)
                    .map(|(_, dims)| dims)
                    .map_err(|why| {
                        source_error(
                            file.file.path(),
                            Some(&t.name),
                            format!("first image: {why}"),
                        )
                    });
                match (dims, wanted) {
                    (Ok(dims), _) => columns.push(Column {
                        name: String::new(),
                        rel: t.name.clone(),
                        topic: ti,
                        kind: ColumnKind::Image { dims },
                    }),
                    (Err(e), Some(_)) => return Err(e),
                    (Err(e), None) => warnings.push(format!("{e}; the topic is left out")),
                }
            }
            None => {
                for leaf in first_msg.2.iter().flatten() {
                    let Some(dtype) = leaf.dtype else { continue };
                    // (a blob: protobuf `bytes`, base64 text; not a number per element)
                    if matches!(leaf.values, Values::Bytes(_)) && !leaf.array {
                        continue;
                    }
                    let n = leaf.values.len();
                    let key = format!("{}.{}", t.name, leaf.path);
                    if n == 0 {
                        warnings.push(format!(
                            "{}: '{key}' is left out: it holds no values",
                            first.display()
                        ));
                        continue;
                    }
                    // a key is a fixed shape: a field whose length changes (or that some
                    // messages lack) is left out, saying where
                    if let Some(why) = varying(&decoded, &paths, ti, &leaf.path, n) {
                        warnings.push(format!("'{key}' is left out: {why}"));
                        continue;
                    }
                    columns.push(Column {
                        name: String::new(),
                        rel: format!("{}.{}", t.name, leaf.path),
                        topic: ti,
                        kind: ColumnKind::Numeric {
                            path: leaf.path.clone(),
                            dtype,
                            len: leaf.array.then_some(n),
                        },
                    });
                }
            }
        }
    }
    // topics that give keys; the reference is one of them
    let usable: Vec<bool> = (0..topics.len())
        .map(|ti| columns.iter().any(|c| c.topic == ti))
        .collect();
    for (t, ok) in topics.iter().zip(&usable) {
        if !ok && t.image.is_none() {
            let why = format!("topic '{}' gives no numeric values", t.name);
            if wanted.is_some() {
                return Err(source_error(first, Some(&t.name), why));
            }
            warnings.push(format!("{}: {why}; it is left out", first.display()));
        }
    }
    if columns.is_empty() {
        return Err(source_error(
            first,
            None,
            "no topic holds values roboframes reads",
        ));
    }
    // message times of each topic in each file, and each topic's rate (one over the median of
    // its positive intervals)
    let rate = |ti: usize| -> f64 {
        let gaps: Vec<u64> = decoded
            .iter()
            .filter_map(|d| d.get(ti))
            .flat_map(|l| {
                l.windows(2)
                    .map(|w| w[1].0.saturating_sub(w[0].0))
                    .filter(|g| *g > 0)
                    .collect::<Vec<_>>()
            })
            .collect();
        median(gaps).map_or(0.0, |g| 1e9 / g as f64)
    };
    let rates: Vec<f64> = (0..topics.len()).map(rate).collect();
    let reference = match &opts.reference_topic {
        Some(r) => topics
            .iter()
            .position(|t| &t.name == r)
            .filter(|ti| usable.get(*ti) == Some(&true))
            .ok_or_else(|| Error::InvalidArgument {
                msg: format!(
                    "reference_topic '{r}' is not a topic roboframes reads in '{}' (topics: {})",
                    root.display(),
                    topics
                        .iter()
                        .zip(&usable)
                        .filter(|(_, ok)| **ok)
                        .map(|(t, _)| t.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })?,
        None => {
            // the slowest camera, else the slowest topic, among those that give keys
            let cams = (0..topics.len())
                .any(|ti| usable[ti] && topics.get(ti).is_some_and(|t| t.image.is_some()));
            (0..topics.len())
                .filter(|&ti| usable[ti] && rates[ti] > 0.0)
                .filter(|&ti| !cams || topics.get(ti).is_some_and(|t| t.image.is_some()))
                .min_by(|a, b| rates[*a].total_cmp(&rates[*b]))
                .ok_or_else(|| {
                    source_error(
                        first,
                        None,
                        "no topic holds two messages or more: there is no time grid to put items on",
                    )
                })?
        }
    };
    let ref_name = topics
        .get(reference)
        .map(|t| t.name.clone())
        .unwrap_or_default();
    let ref_rate = rates[reference];
    if ref_rate.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
        return Err(source_error(
            first,
            Some(&ref_name),
            "the reference topic holds fewer than two messages at different times: it gives no \
             time grid",
        ));
    }
    let fps = crate::source::frame_rate(opts.fps, Some(rounded_rate(ref_rate)), || {
        Error::internal("MCAP", "no rate")
    })?;
    // which topics are read: the reference first, then the others that give keys (without
    // topics=, not those much sparser than the grid)
    let mut order = vec![reference];
    for ti in 0..topics.len() {
        if ti == reference || !usable[ti] {
            continue;
        }
        let r = rates[ti];
        if wanted.is_none() && r < ref_rate / 2.0 {
            warnings.push(format!(
                "{}: topic '{}' is left out: {r:.2} messages/s against the reference topic's \
                 {ref_rate:.2}; name it in topics= to read it",
                first.display(),
                topics.get(ti).map_or("", |t| t.name.as_str()),
            ));
            continue;
        }
        order.push(ti);
    }
    // how old a topic's message may be: as given, else one and a half periods of the slower
    // of the reference and the topic (a topic at half the grid's rate is held a period)
    let tolerances: Vec<u64> = match opts.align_tolerance_s {
        Some(t) if t.is_finite() && t >= 0.0 => vec![(t * 1e9).round() as u64; order.len()],
        Some(t) => {
            return Err(Error::InvalidArgument {
                msg: format!("align_tolerance_s must be a number of seconds >= 0, got {t}"),
            })
        }
        None => order
            .iter()
            .map(|&ti| {
                let slower = ref_rate.min(rates[ti]).max(f64::MIN_POSITIVE);
                (1.5e9 / slower).round() as u64
            })
            .collect(),
    };
    // the topics, their messages and the columns in that order
    let mut slots: Vec<Option<Topic>> = topics.into_iter().map(Some).collect();
    let topics: Vec<Topic> = order
        .iter()
        .filter_map(|&ti| slots.get_mut(ti).and_then(Option::take))
        .collect();
    let decoded: Vec<Vec<Vec<Decoded>>> = decoded
        .into_iter()
        .map(|mut per_topic| {
            order
                .iter()
                .map(|&ti| {
                    per_topic
                        .get_mut(ti)
                        .map(std::mem::take)
                        .unwrap_or_default()
                })
                .collect()
        })
        .collect();
    let mut columns: Vec<Column> = columns
        .into_iter()
        .filter_map(|mut c| {
            c.topic = order.iter().position(|&ti| ti == c.topic)?;
            Some(c)
        })
        .collect();
    columns.sort_by_key(|c| c.topic);
    for (per_topic, path) in decoded.iter().zip(&paths) {
        for (t, msgs) in topics.iter().zip(per_topic) {
            if msgs.is_empty() {
                return Err(source_error(
                    path,
                    Some(&t.name),
                    "the file has no message of this topic (name the topics to read with topics=)",
                ));
            }
        }
        // the grid: one message per time
        if let Some(w) = per_topic
            .first()
            .and_then(|l| l.windows(2).find(|w| w[0].0 == w[1].0))
        {
            return Err(source_error(
                path,
                Some(&ref_name),
                format!(
                    "the reference topic has two messages at log time {} ns (two publishers?); \
                     choose another reference_topic",
                    w[0].0
                ),
            ));
        }
    }
    for c in &mut columns {
        c.name = item_name(
            &c.rel,
            matches!(c.kind, ColumnKind::Image { .. }),
            &opts.key_map,
        );
    }
    crate::source::check_names(
        &columns
            .iter()
            .map(|c| (c.rel.as_str(), c.name.as_str()))
            .collect::<Vec<_>>(),
        &opts.key_map,
        root,
    )?;

    // each file's grid, and each row's message of each topic
    let mut per_file: Vec<Vec<Vec<usize>>> = Vec::new();
    for (per_topic, path) in decoded.iter().zip(&paths) {
        let grid: Vec<u64> = per_topic
            .first()
            .map(|l| l.iter().map(|m| m.0).collect())
            .unwrap_or_default();
        let topic_times: Vec<Vec<u64>> = per_topic
            .iter()
            .map(|l| l.iter().map(|m| m.0).collect())
            .collect();
        let (rows, trimmed) =
            align(&grid, &topic_times, &tolerances).map_err(|(ti, at, why)| {
                let name = topics.get(ti).map_or("", |t| t.name.as_str());
                source_error(
                    path,
                    Some(name),
                    format!(
                        "no message at or before log time {at} ns ({:.3} s into the recording) \
                         within align_tolerance_s={:.6}: {why}; raise align_tolerance_s, or leave \
                         the topic out with topics=",
                        at.saturating_sub(grid.first().copied().unwrap_or(at)) as f64 / 1e9,
                        tolerances.get(ti).copied().unwrap_or(0) as f64 / 1e9
                    ),
                )
            })?;
        // delta_timestamps count items at fps: a grid with holes makes that a lie
        let period = 1e9 / fps;
        let holes = grid
            .windows(2)
            .filter(|w| (w[1].saturating_sub(w[0]) as f64) > 1.5 * period)
            .count();
        if holes > 0 {
            warnings.push(format!(
                "{}: the reference topic '{ref_name}' skips {holes} times (intervals longer \
                 than 1.5/fps): delta_timestamps windows count items at fps={fps}, so across a \
                 skip they reach further in time",
                path.display()
            ));
        }
        if trimmed > 0 {
            warnings.push(format!(
                "{}: {trimmed} of {} times of the reference topic '{ref_name}' are left out at \
                 the start or end of the recording, where another topic has no message yet (or \
                 any more)",
                path.display(),
                grid.len()
            ));
        }
        if rows.len() > crate::source::MAX_EPISODE_FRAMES {
            return Err(source_error(
                path,
                None,
                "more items than a recording holds",
            ));
        }
        per_file.push(rows);
    }
    // the episodes: each recording, or the spans given (in their order)
    let mut lengths = Vec::new();
    let mut built: Vec<(Vec<Vec<usize>>, usize)> = Vec::new();
    match &opts.episode_spans {
        None => {
            for (fi, rows) in per_file.into_iter().enumerate() {
                lengths.push(rows.len());
                built.push((rows, fi));
            }
        }
        Some(spans) => {
            for (name, from_s, to_s) in spans {
                let fi = paths
                    .iter()
                    .position(|p| p.file_name().is_some_and(|n| n.to_string_lossy() == *name))
                    .ok_or_else(|| Error::InvalidArgument {
                        msg: format!(
                            "episode_spans names '{name}', which is not a recording of '{}'",
                            root.display()
                        ),
                    })?;
                if !(from_s.is_finite() && to_s.is_finite() && *from_s >= 0.0 && from_s < to_s) {
                    return Err(Error::InvalidArgument {
                        msg: format!(
                            "episode_spans: the span ({from_s}, {to_s}) of '{name}' is not \
                             [start, end) seconds with 0 <= start < end"
                        ),
                    });
                }
                let per_topic = decoded.get(fi).and_then(|d| d.first());
                let origin = per_topic.and_then(|l| l.first()).map_or(0, |m| m.0);
                let picked: Vec<Vec<usize>> = per_file
                    .get(fi)
                    .into_iter()
                    .flatten()
                    .filter(|r| {
                        let t = r
                            .first()
                            .and_then(|&m| per_topic.and_then(|l| l.get(m)))
                            .map_or(origin, |m| m.0);
                        let s = t.saturating_sub(origin) as f64 / 1e9;
                        s >= *from_s && s < *to_s
                    })
                    .cloned()
                    .collect();
                if picked.is_empty() {
                    return Err(Error::InvalidArgument {
                        msg: format!(
                            "episode_spans: the span [{from_s}, {to_s}) s of '{name}' holds no \
                             item (times are seconds from the file's first message of the \
                             reference topic)"
                        ),
                    });
                }
                lengths.push(picked.len());
                built.push((picked, fi));
            }
        }
    }
    let episodes = crate::source::episode_table(&lengths)?;
    let mut tasks = crate::source::Tasks::default();
    let mut out_eps = Vec::with_capacity(episodes.len());
    for ((rows, fi), e) in built.into_iter().zip(&episodes) {
        let (Some(per_topic), Some(file), Some(path)) =
            (decoded.get(fi), files.get(fi), paths.get(fi))
        else {
            return Err(Error::internal("MCAP", "an episode without its file"));
        };
        let t0 = rows
            .first()
            .and_then(|r| r.first())
            .and_then(|&m| per_topic.first().and_then(|l| l.get(m)))
            .map_or(0, |m| m.0);
        let times: Vec<f32> = rows
            .iter()
            .map(|r| {
                let t = r
                    .first()
                    .and_then(|&m| per_topic.first().and_then(|l| l.get(m)))
                    .map_or(t0, |m| m.0);
                (t.saturating_sub(t0) as f64 / 1e9) as f32
            })
            .collect();
        let mut cols = Vec::with_capacity(columns.len());
        for c in &columns {
            let msgs = per_topic
                .get(c.topic)
                .ok_or_else(|| Error::internal("MCAP", "a column without its topic"))?;
            let picks = rows.iter().map(|r| r.get(c.topic).copied().unwrap_or(0));
            let topic = topics.get(c.topic).map_or("", |t| t.name.as_str());
            match &c.kind {
                ColumnKind::Image { .. } => {
                    let mut locs = Vec::with_capacity(rows.len());
                    let mut at = Vec::with_capacity(rows.len());
                    for p in picks {
                        let m = msgs
                            .get(p)
                            .ok_or_else(|| Error::internal("MCAP", "no such message"))?;
                        locs.push(m.1);
                        at.push(m.0);
                    }
                    cols.push(Rows::Image {
                        locs: locs.into(),
                        times: at.into(),
                    });
                }
                ColumnKind::Numeric {
                    path: leaf,
                    dtype,
                    len,
                } => {
                    let mut bytes = Vec::new();
                    for p in picks {
                        let m = msgs
                            .get(p)
                            .ok_or_else(|| Error::internal("MCAP", "no such message"))?;
                        let value =
                            m.2.as_ref()
                                .and_then(|ls| ls.iter().find(|l| &l.path == leaf));
                        let bad = |why: String| {
                            source_error(
                                path,
                                Some(&c.rel),
                                format!("message of '{topic}' at log time {} ns: {why}", m.0),
                            )
                        };
                        let value =
                            value.ok_or_else(|| bad("the message has no such field".into()))?;
                        let want = len.unwrap_or(1);
                        if value.values.len() != want {
                            return Err(bad(format!(
                                "{} values, the first message has {want}",
                                value.values.len()
                            )));
                        }
                        push_item_bytes(&value.values, *dtype, &mut bytes).map_err(bad)?;
                    }
                    cols.push(Rows::Numeric(bytes));
                }
            }
        }
        out_eps.push(McapEpisode {
            file: file.clone(),
            length: e.length as usize,
            first_index: e.dataset_from_index,
            times,
            columns: cols,
            tasks: opts.task.as_ref().map(|t| vec![tasks.index(t); rows.len()]),
        });
    }
    let tasks = tasks.into_table();
    let next = episodes.last().map_or(0, |e| e.dataset_to_index);
    let features: Vec<Feature> = columns
        .iter()
        .map(|c| match &c.kind {
            ColumnKind::Numeric { dtype, len, .. } => crate::source::numeric_feature(
                &c.name,
                *dtype,
                &len.map(|n| vec![n]).unwrap_or_default(),
            ),
            ColumnKind::Image { dims } => crate::source::image_feature(&c.name, *dims),
        })
        .collect();
    let info = crate::source::synthetic_info(
        features,
        fps,
        !tasks.is_empty(),
        episodes.len(),
        next,
        serde_json::json!({
            "format": "mcap",
            "files": paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "reference_topic": ref_name,
            "align_tolerance_s": tolerances.iter().copied().max().unwrap_or(0) as f64 / 1e9,
            "topics": topics.iter().map(|t| t.name.clone()).collect::<Vec<_>>(),
        }),
    )?;
    Ok(Opened {
        source: Arc::new(McapSource {
            episodes: out_eps,
            columns,
            topics,
            fps,
        }),
        info,
        episodes,
        tasks,
        warnings,
    })
}

/// Where the field `path` of topic `ti` has another length than `n` (or is missing) in some
/// message of some file, if anywhere.
fn varying(
    decoded: &[Vec<Vec<Decoded>>],
    paths: &[PathBuf],
    ti: usize,
    path: &str,
    n: usize,
) -> Option<String> {
    for (per_topic, file) in decoded.iter().zip(paths) {
        for (at, _, leaves) in per_topic.get(ti).into_iter().flatten() {
            let len = leaves
                .iter()
                .flatten()
                .find(|l| l.path == path)
                .map(|l| l.values.len());
            if len != Some(n) {
                let has = len.map_or("no such field".to_string(), |m| format!("{m} values"));
                return Some(format!(
                    "the first message has {n} values, the message at log time {at} ns of {} \
                     has {has}",
                    file.display()
                ));
            }
        }
    }
    None
}

/// A measured rate as `fps`: the nearest whole number when within 1% of it (recorders'
/// clocks drift), else as measured.
fn rounded_rate(r: f64) -> f64 {
    let whole = r.round();
    if whole > 0.0 && (r - whole).abs() <= 0.01 * whole {
        whole
    } else {
        r
    }
}

/// The rows of one file: for each time of the reference topic (`times[0]`, which is `grid`),
/// each topic's latest message at or before it, no older than its `tol` ns. Times before every
/// topic has begun, or after one has ended, are left out (their count is returned); a time
/// between with a topic lacking such a message is an error: (topic, time, why).
#[allow(clippy::type_complexity)]
fn align(
    grid: &[u64],
    times: &[Vec<u64>],
    tol: &[u64],
) -> std::result::Result<(Vec<Vec<usize>>, usize), (usize, u64, String)> {
    let pick = |ti: usize, g: u64| -> std::result::Result<usize, String> {
        let t = times.get(ti).map(Vec::as_slice).unwrap_or(&[]);
        let n = t.partition_point(|x| *x <= g);
        let Some(i) = n.checked_sub(1) else {
            return Err("the topic has no message before it".into());
        };
        let at = t.get(i).copied().unwrap_or(0);
        if g - at > tol.get(ti).copied().unwrap_or(0) {
            return Err(format!(
                "the topic's latest message is {:.6} s older",
                (g - at) as f64 / 1e9
            ));
        }
        Ok(i)
    };
    let mut rows: Vec<Option<Vec<usize>>> = Vec::with_capacity(grid.len());
    for (gi, &g) in grid.iter().enumerate() {
        let mut row = Vec::with_capacity(times.len());
        let mut ok = true;
        for ti in 0..times.len() {
            if ti == 0 {
                // (the reference topic's own message)
                row.push(gi);
                continue;
            }
            match pick(ti, g) {
                Ok(i) => row.push(i),
                Err(_) => {
                    ok = false;
                    break;
                }
            }
        }
        rows.push(ok.then_some(row));
    }
    let first = rows.iter().position(Option::is_some);
    let last = rows.iter().rposition(Option::is_some);
    let (Some(first), Some(last)) = (first, last) else {
        let g = grid.first().copied().unwrap_or(0);
        let (ti, why) = (1..times.len())
            .find_map(|ti| pick(ti, g).err().map(|w| (ti, w)))
            .unwrap_or((0, "no time has every topic".into()));
        return Err((
            ti,
            g,
            format!("no time of the recording has every topic ({why})"),
        ));
    };
    let mut out = Vec::with_capacity(last + 1 - first);
    for (gi, r) in rows.into_iter().enumerate().take(last + 1).skip(first) {
        match r {
            Some(r) => out.push(r),
            None => {
                let g = grid.get(gi).copied().unwrap_or(0);
                let (ti, why) = (1..times.len())
                    .find_map(|ti| pick(ti, g).err().map(|w| (ti, w)))
                    .unwrap_or((0, String::new()));
                return Err((ti, g, why));
            }
        }
    }
    Ok((out, grid.len() - (last + 1 - first)))
}

/// `values` appended as item-dtype bytes of a `dtype` feature (floats as float32, integers as
/// int64, booleans as bool).
fn push_item_bytes(
    values: &Values,
    dtype: DType,
    out: &mut Vec<u8>,
) -> std::result::Result<(), String> {
    match (dtype.item_dtype(), values) {
        (DType::F32, Values::Float(v)) => {
            out.extend(v.iter().flat_map(|x| (*x as f32).to_ne_bytes()))
        }
        (DType::I64, Values::Int(v)) => out.extend(v.iter().flat_map(|x| x.to_ne_bytes())),
        (DType::I64, Values::Bytes(v)) => {
            out.extend(v.iter().flat_map(|x| i64::from(*x).to_ne_bytes()))
        }
        (DType::Bool, Values::Bool(v)) => out.extend(v.iter().map(|b| u8::from(*b))),
        (want, _) => return Err(format!("values of another type than {}", want.name())),
    }
    Ok(())
}

/// The frame of one image message: encoded bytes (`Compressed`) or RGB/gray pixels (`Raw`),
/// and its `(H, W, C)`.
fn image_of(
    decoder: &Decoder,
    kind: ImageKind,
    message: &[u8],
) -> std::result::Result<ImageBytes, String> {
    let leaves = decoder.decode(message)?;
    let field = |name: &str| leaves.iter().find(|l| l.path == name).map(|l| &l.values);
    let data = match field("data") {
        Some(Values::Bytes(b)) => b,
        _ => return Err("the image message has no 'data' bytes".into()),
    };
    match kind {
        ImageKind::Compressed => {
            let dims = crate::image::encoded_dims(data)?;
            Ok((data.clone(), dims))
        }
        ImageKind::Raw => {
            // (JSON numbers are floats: a whole one is a size too)
            let int = |name: &str| match field(name) {
                Some(Values::Int(v)) => v.first().and_then(|x| usize::try_from(*x).ok()),
                Some(Values::Float(v)) => v
                    .first()
                    .filter(|x| x.fract() == 0.0 && **x >= 0.0 && **x < 1e15)
                    .map(|x| *x as usize),
                _ => None,
            };
            let (Some(h), Some(w)) = (int("height"), int("width")) else {
                return Err("the image message has no height and width".into());
            };
            let encoding = match field("encoding") {
                Some(Values::Text(t)) => t.first().cloned().unwrap_or_default(),
                _ => return Err("the image message has no encoding".into()),
            };
            let (c, swap) = match encoding.as_str() {
                "rgb8" => (3, false),
                "bgr8" => (3, true),
                "rgba8" => (4, false),
                "bgra8" => (4, true),
                "mono8" | "8UC1" => (1, false),
                other => {
                    return Err(format!(
                        "raw images of encoding '{other}' (roboframes reads rgb8, bgr8, rgba8, \
                         bgra8 and mono8)"
                    ))
                }
            };
            let row = w.checked_mul(c).ok_or("an absurd width")?;
            let step = int("step").filter(|s| *s > 0).unwrap_or(row);
            let need = step
                .checked_mul(h)
                .filter(|n| *n <= crate::meta::MAX_FEATURE_ELEMENTS)
                .ok_or("an absurd image size")?;
            if h == 0 || w == 0 || step < row || data.len() < need {
                return Err(format!(
                    "a {w}x{h} {encoding} image (row step {step}) in {} bytes",
                    data.len()
                ));
            }
            let mut out = Vec::with_capacity(row * h);
            for y in 0..h {
                let line = data
                    .get(y * step..y * step + row)
                    .ok_or("rows out of range")?;
                if swap {
                    for px in line.chunks_exact(c) {
                        out.extend([px[2], px[1], px[0]]);
                        if c == 4 {
                            out.push(px[3]);
                        }
                    }
                } else {
                    out.extend_from_slice(line);
                }
            }
            Ok((out, (h, w, c)))
        }
    }
}

/// The item key of source key `rel` (`/topic` or `/topic.field`).
fn item_name(rel: &str, image: bool, map: &KeyMap) -> String {
    match map {
        KeyMap::Source => rel.to_owned(),
        KeyMap::Names(names) => names.get(rel).cloned().unwrap_or_else(|| rel.to_owned()),
        KeyMap::LeRobot => {
            let plain = rel.trim_start_matches('/').replace('/', ".");
            if image {
                format!("observation.images.{plain}")
            } else if plain == "action" || plain.starts_with("action.") {
                plain
            } else {
                format!("observation.{plain}")
            }
        }
    }
}

impl McapSource {
    /// The rows of episode `episode_index` as a data table: LeRobot's bookkeeping columns (its
    /// `timestamp` the grid's time from the episode's first item), the numeric keys aligned
    /// at open, the cameras as frame readers.
    pub fn load_episode(&self, episode_index: i64) -> Result<DataFile> {
        let e = crate::source::episode(&self.episodes, episode_index)?;
        let mut columns = crate::source::bookkeeping_columns(
            e.first_index,
            episode_index,
            e.length,
            self.fps,
            e.tasks.as_deref(),
        );
        columns.insert(
            "timestamp".into(),
            ColumnData::Fixed {
                dtype: DType::F32,
                per_row: 1,
                bytes: e.times.iter().flat_map(|t| t.to_ne_bytes()).collect(),
            },
        );
        for (c, rows) in self.columns.iter().zip(&e.columns) {
            let col = match (&c.kind, rows) {
                (ColumnKind::Numeric { dtype, len, .. }, Rows::Numeric(bytes)) => {
                    ColumnData::Fixed {
                        dtype: dtype.item_dtype(),
                        per_row: len.unwrap_or(1),
                        bytes: bytes.clone(),
                    }
                }
                (ColumnKind::Image { dims }, Rows::Image { locs, times }) => {
                    let topic = self
                        .topics
                        .get(c.topic)
                        .ok_or_else(|| Error::internal("MCAP episode", "no topic"))?;
                    ColumnData::Frames(Arc::new(McapFrames {
                        file: e.file.clone(),
                        key: c.rel.clone(),
                        decoder: topic.decoder.clone(),
                        kind: topic.image.unwrap_or(ImageKind::Compressed),
                        dims: *dims,
                        locs: locs.clone(),
                        times: times.clone(),
                    }))
                }
                _ => return Err(Error::internal("MCAP episode", "a column of another kind")),
            };
            columns.insert(c.name.clone(), col);
        }
        Ok(DataFile {
            path: e.file.file.path().to_path_buf(),
            first_index: e.first_index,
            rows: e.length,
            file_rows: e.length as u64,
            columns,
        })
    }
}

/// The images of one camera topic of one episode, each row's message read and decoded.
#[derive(Debug)]
struct McapFrames {
    file: Arc<McapFile>,
    key: String,
    decoder: Arc<Decoder>,
    kind: ImageKind,
    dims: (usize, usize, usize),
    locs: Arc<[MsgLoc]>,
    times: Arc<[u64]>,
}

impl RowFrames for McapFrames {
    fn read_into(&self, row: usize, buf: &mut Vec<u8>) -> Result<FrameBytes> {
        let path = self.file.file.path();
        let (Some(&loc), Some(&at)) = (self.locs.get(row), self.times.get(row)) else {
            return Err(source_error(
                path,
                Some(&self.key),
                format!("row {row} of {} rows", self.locs.len()),
            ));
        };
        let message = self.file.message(loc)?;
        let (bytes, dims) = image_of(&self.decoder, self.kind, &message).map_err(|why| {
            source_error(
                path,
                Some(&self.key),
                format!("message at log time {at} ns: {why}"),
            )
        })?;
        if dims != self.dims {
            return Err(source_error(
                path,
                Some(&self.key),
                format!(
                    "message at log time {at} ns: an image of {dims:?}, the topic's first is {:?}",
                    self.dims
                ),
            ));
        }
        *buf = bytes;
        Ok(match self.kind {
            // (recordings are read with OpenCV or PIL: libjpeg's accurate IDCT)
            ImageKind::Compressed => FrameBytes::Encoded(crate::image::JpegDct::Accurate),
            ImageKind::Raw => FrameBytes::Pixels,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn align_trims_the_ends_and_refuses_gaps() {
        let grid = vec![100, 200, 300, 400, 500];
        // the second topic starts after the first grid time and ends before the last
        let other = vec![150, 190, 290, 390];
        let (rows, trimmed) = align(&grid, &[grid.clone(), other], &[60, 60]).expect("aligned");
        assert_eq!(trimmed, 2);
        assert_eq!(rows, vec![vec![1, 1], vec![2, 2], vec![3, 3]]);
        // a gap inside: an error naming the topic and the time
        let gappy = vec![150, 250, 450];
        let (ti, at, _) = align(&grid, &[grid.clone(), gappy], &[60, 60]).expect_err("gap");
        assert_eq!((ti, at), (1, 400));
    }

    #[cfg(feature = "testing")]
    #[test]
    fn reads_a_recording_the_mcap_crate_writes() {
        use crate::dataset::{Dataset, OpenOptions};
        let dir = tempfile::tempdir().expect("tempdir");
        for zstd in [false, true] {
            let path = dir.path().join("rec.mcap");
            std::fs::write(&path, crate::fuzz::small_mcap(4, zstd).expect("write")).expect("write");
            let ds = Dataset::open(&path, OpenOptions::default()).expect("open");
            assert_eq!((ds.len(), ds.format()), (4, "mcap"));
            let (frames, dims) = ds.fill_one("/camera", &[0, 3]).expect("frames");
            assert_eq!((dims, frames.len()), ((8, 12, 3), 2 * 8 * 12 * 3));
            let (f, rows) = ds.episode_rows(0).expect("rows");
            assert_eq!(rows, 0..4);
            let q = f.fixed_row("/arm.q", 3).expect("q");
            let q: Vec<f32> = q
                .chunks_exact(4)
                .map(|b| f32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            assert_eq!(q, vec![6.0, 0.5]);
        }
    }
}
