//! Frame conversion: RGB24 bit-exact with torchcodec's CPU path on the same FFmpeg, and a
//! depth map's 12-bit grey codes as LeRobot 0.6 reads them (PyAV's `gray12le`); and the other
//! raw FFmpeg calls of the crate (the two demuxer calls `ffmpeg-next` does not wrap). Every
//! `unsafe` FFmpeg call lives in this file.

use ff::ffi;
use ffmpeg_next as ff;

use crate::frame::Decoded;

/// An owned `SwsContext` configured like torchcodec's.
struct Sws {
    ptr: *mut ffi::SwsContext,
    key: (i32, i32, i32, i32),
}

impl Drop for Sws {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from sws_getContext and is freed exactly once, here.
        unsafe { ffi::sws_freeContext(self.ptr) }
    }
}

/// A `buffer -> copy -> buffersink(rgb24)` graph for one input size, format and aspect.
struct FilterGraph {
    graph: ff::filter::Graph,
    key: (i32, i32, i32, i32, i32),
}

/// Converts decoded frames to what a camera's outputs read ([`Decoded`]): RGB24, bit-exact
/// with torchcodec's CPU path on the same FFmpeg, or 12-bit grey codes. Keeps the context of
/// each path for the last frame geometry it converted.
#[derive(Default)]
pub struct FrameConverter {
    sws: Option<Sws>,
    graph: Option<FilterGraph>,
    /// The scaler of grey streams of another bit depth to 12 bits.
    gray_sws: Option<Sws>,
}

// SAFETY: the converter exclusively owns its SwsContext / filter graph; FFmpeg objects are not
// bound to a thread, and the pool hands a converter to one thread at a time.
unsafe impl Send for FrameConverter {}

/// The grey pixel formats a depth map may be stored in, with their bit depth (FFmpeg's decoders
/// give native-endian samples; both byte orders are named for completeness).
fn gray_depth(fmt: i32) -> Option<u32> {
    use ffi::AVPixelFormat::*;
    let table = [
        (AV_PIX_FMT_GRAY8, 8),
        (AV_PIX_FMT_GRAY9LE, 9),
        (AV_PIX_FMT_GRAY9BE, 9),
        (AV_PIX_FMT_GRAY10LE, 10),
        (AV_PIX_FMT_GRAY10BE, 10),
        (AV_PIX_FMT_GRAY12LE, 12),
        (AV_PIX_FMT_GRAY12BE, 12),
        (AV_PIX_FMT_GRAY14LE, 14),
        (AV_PIX_FMT_GRAY14BE, 14),
        (AV_PIX_FMT_GRAY16LE, 16),
        (AV_PIX_FMT_GRAY16BE, 16),
    ];
    table
        .into_iter()
        .find(|(f, _)| *f as i32 == fmt)
        .map(|(_, d)| d)
}

/// The 12-bit grey format in this machine's byte order (the codes are handed out native-endian).
const GRAY12_NATIVE: ffi::AVPixelFormat = if cfg!(target_endian = "big") {
    ffi::AVPixelFormat::AV_PIX_FMT_GRAY12BE
} else {
    ffi::AVPixelFormat::AV_PIX_FMT_GRAY12LE
};

/// FFmpeg's name of pixel format `fmt`.
fn pixel_name(fmt: i32) -> String {
    // SAFETY: av_get_pix_fmt_name returns null or a static C string for any integer.
    unsafe {
        let p = ffi::av_get_pix_fmt_name(std::mem::transmute::<i32, ffi::AVPixelFormat>(fmt));
        if p.is_null() {
            format!("#{fmt}")
        } else {
            std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned()
        }
    }
}

impl FrameConverter {
    /// Converts `frame` into `dst` as `decoded`: `height * width * 3` bytes of RGB24, or
    /// `height * width` native-endian 16-bit samples of 12-bit grey.
    pub fn convert(
        &mut self,
        frame: &ff::frame::Video,
        decoded: Decoded,
        dst: &mut [u8],
    ) -> std::result::Result<(), String> {
        match decoded {
            Decoded::Rgb24 => self.rgb24(frame, dst),
            Decoded::Gray12 => self.gray12(frame, dst),
        }
    }

    /// A depth map's codes: the samples of a 12-bit grey frame as they are; a grey frame of
    /// another bit depth through `sws_scale` to 12 bits, as PyAV's
    /// `to_ndarray(format="gray12le")` (LeRobot 0.6's depth path) converts it. Any other pixel
    /// format (colour, or YUV whose luma would be range-converted) is refused.
    fn gray12(
        &mut self,
        frame: &ff::frame::Video,
        dst: &mut [u8],
    ) -> std::result::Result<(), String> {
        let (w, h) = (frame.width() as i32, frame.height() as i32);
        let need = (w as usize) * (h as usize) * 2;
        if w <= 0 || h <= 0 || dst.len() != need {
            return Err(format!(
                "decoded frame is {w}x{h}, output slot holds {} bytes",
                dst.len()
            ));
        }
        // SAFETY: frame is a valid decoded frame; reading a plain field.
        let fmt = unsafe { (*frame.as_ptr()).format };
        if gray_depth(fmt).is_none() {
            return Err(format!(
                "the stream's pixel format is {}: a depth map must be stored in a grey format \
                 (gray, gray10le, gray12le, gray14le, gray16le; LeRobot 0.6 writes gray12le); \
                 roboframes does not convert it",
                pixel_name(fmt)
            ));
        }
        let row = (w as usize) * 2;
        if fmt == GRAY12_NATIVE as i32 {
            // SAFETY: frame is a valid decoded frame; reading a plain field.
            let linesize = unsafe { (*frame.as_ptr()).linesize[0] };
            // (ffmpeg-next's plane accessors trust the linesize and panic without a plane)
            if linesize <= 0 || frame.planes() == 0 {
                return Err(format!(
                    "decoded grey frame has no plane of positive stride ({linesize})"
                ));
            }
            let stride = linesize as usize;
            let data = frame.data(0);
            for (y, d) in dst.chunks_exact_mut(row).enumerate() {
                let s = y
                    .checked_mul(stride)
                    .and_then(|a| data.get(a..a.checked_add(row)?))
                    .ok_or("decoded frame is shorter than its size")?;
                d.copy_from_slice(s);
            }
            return Ok(());
        }
        let key = (w, h, fmt, 0);
        let s = match self.gray_sws.take() {
            Some(s) if s.key == key => self.gray_sws.insert(s),
            _ => self.gray_sws.insert(new_gray_sws(w, h, fmt)?),
        };
        let dst_ptrs: [*mut u8; 4] = [
            dst.as_mut_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        ];
        let dst_lines: [i32; 4] = [w * 2, 0, 0, 0];
        // SAFETY: the context was made for exactly this w/h/format; `dst` holds h rows of w*2
        // bytes (checked above); the source planes belong to `frame`, alive for the call.
        let rows = unsafe {
            let f = frame.as_ptr();
            ffi::sws_scale(
                s.ptr,
                (*f).data.as_ptr() as *const *const u8,
                (*f).linesize.as_ptr(),
                0,
                h,
                dst_ptrs.as_ptr(),
                dst_lines.as_ptr(),
            )
        };
        if rows != h {
            return Err(format!("sws_scale converted {rows} of {h} rows"));
        }
        Ok(())
    }

    /// RGB24 into `dst`, which must hold exactly `height * width * 3` bytes.
    fn rgb24(
        &mut self,
        frame: &ff::frame::Video,
        dst: &mut [u8],
    ) -> std::result::Result<(), String> {
        let (w, h) = (frame.width() as i32, frame.height() as i32);
        let need = (w as usize) * (h as usize) * 3;
        if w <= 0 || h <= 0 || dst.len() != need {
            return Err(format!(
                "decoded frame is {w}x{h}, output slot holds {} bytes",
                dst.len()
            ));
        }
        // SAFETY: frame is a valid decoded frame; reading plain fields.
        let (fmt, colorspace, sar) = unsafe {
            let f = frame.as_ptr();
            (
                (*f).format,
                (*f).colorspace as i32,
                (*f).sample_aspect_ratio,
            )
        };
        if w % 32 == 0 {
            let key = (w, h, fmt, colorspace);
            let s = match self.sws.take() {
                Some(s) if s.key == key => self.sws.insert(s),
                _ => self.sws.insert(new_sws(w, h, fmt, colorspace)?),
            };
            let dst_ptrs: [*mut u8; 4] = [
                dst.as_mut_ptr(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            ];
            let dst_lines: [i32; 4] = [w * 3, 0, 0, 0];
            // SAFETY: the context was made for exactly this w/h/format; `dst` holds h rows of
            // w*3 bytes (checked above); the source planes belong to `frame`, alive for the call.
            let rows = unsafe {
                let f = frame.as_ptr();
                ffi::sws_scale(
                    s.ptr,
                    (*f).data.as_ptr() as *const *const u8,
                    (*f).linesize.as_ptr(),
                    0,
                    h,
                    dst_ptrs.as_ptr(),
                    dst_lines.as_ptr(),
                )
            };
            if rows != h {
                return Err(format!("sws_scale converted {rows} of {h} rows"));
            }
            Ok(())
        } else {
            let key = (w, h, fmt, sar.num, sar.den);
            let graph = match self.graph.take() {
                Some(g) if g.key == key => &mut self.graph.insert(g).graph,
                _ => {
                    let graph = new_graph(w, h, fmt, sar)?;
                    &mut self.graph.insert(FilterGraph { graph, key }).graph
                }
            };
            let mut src = graph.get("in").ok_or("filter graph has no source")?;
            // `ffmpeg-next`'s `Source::add` uses av_buffersrc_add_frame, which takes the frame's
            // references and resets it behind a shared borrow; write_frame adds its own
            // reference and leaves `frame` intact (as torchcodec does).
            // SAFETY: `src` is the graph's buffer source and `frame` a valid decoded frame.
            let r = unsafe { ffi::av_buffersrc_write_frame(src.as_mut_ptr(), frame.as_ptr()) };
            if r < 0 {
                return Err(format!("filter graph input: {}", ff::Error::from(r)));
            }
            let mut out = ff::frame::Video::empty();
            let mut sink = graph.get("out").ok_or("filter graph has no sink")?;
            sink.sink()
                .frame(&mut out)
                .map_err(|e| format!("filter graph output: {e}"))?;
            if out.width() as i32 != w || out.height() as i32 != h {
                return Err("filter graph changed the frame size".into());
            }
            let stride = out.stride(0);
            let data = out.data(0);
            let row = (w as usize) * 3;
            for (y, d) in dst.chunks_exact_mut(row).enumerate() {
                let s = data
                    .get(y * stride..y * stride + row)
                    .ok_or("filter graph output is shorter than the frame")?;
                d.copy_from_slice(s);
            }
            Ok(())
        }
    }
}

fn new_sws(w: i32, h: i32, fmt: i32, colorspace: i32) -> std::result::Result<Sws, String> {
    // SAFETY: plain FFmpeg calls with valid sizes; every returned pointer is checked, and the
    // tables returned by sws_getCoefficients are static.
    unsafe {
        let src_fmt: ffi::AVPixelFormat = std::mem::transmute::<i32, ffi::AVPixelFormat>(fmt);
        let ptr = ffi::sws_getContext(
            w,
            h,
            src_fmt,
            w,
            h,
            ffi::AVPixelFormat::AV_PIX_FMT_RGB24,
            0,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null(),
        );
        if ptr.is_null() {
            return Err(format!("sws_getContext failed for pixel format {fmt}"));
        }
        let sws = Sws {
            ptr,
            key: (w, h, fmt, colorspace),
        };
        let mut inv_table: *mut i32 = std::ptr::null_mut();
        let mut table: *mut i32 = std::ptr::null_mut();
        let (mut src_range, mut dst_range, mut brightness, mut contrast, mut saturation) =
            (0, 0, 0, 0, 0);
        let r = ffi::sws_getColorspaceDetails(
            ptr,
            &mut inv_table,
            &mut src_range,
            &mut table,
            &mut dst_range,
            &mut brightness,
            &mut contrast,
            &mut saturation,
        );
        if r == -1 {
            return Err("sws_getColorspaceDetails failed".into());
        }
        let coeffs = ffi::sws_getCoefficients(colorspace);
        let r = ffi::sws_setColorspaceDetails(
            ptr, coeffs, src_range, coeffs, dst_range, brightness, contrast, saturation,
        );
        if r == -1 {
            return Err("sws_setColorspaceDetails failed".into());
        }
        Ok(sws)
    }
}

/// swscale's `SWS_BILINEAR` flag (2 in every FFmpeg; FFmpeg 8 turned the flags into an enum,
/// which the bindings type differently).
const SWS_BILINEAR: i32 = 2;

/// A scaler of grey frames of format `fmt` to 12-bit grey of the same size, made as PyAV's
/// reformatter makes it (`sws_getCachedContext` with bilinear interpolation and no colour
/// details: grey formats are full range, so only the bit depth changes).
fn new_gray_sws(w: i32, h: i32, fmt: i32) -> std::result::Result<Sws, String> {
    // SAFETY: plain FFmpeg calls with valid sizes; the returned pointer is checked.
    unsafe {
        let src_fmt: ffi::AVPixelFormat = std::mem::transmute::<i32, ffi::AVPixelFormat>(fmt);
        let ptr = ffi::sws_getContext(
            w,
            h,
            src_fmt,
            w,
            h,
            GRAY12_NATIVE,
            SWS_BILINEAR,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null(),
        );
        if ptr.is_null() {
            return Err(format!(
                "sws_getContext failed for pixel format {}",
                pixel_name(fmt)
            ));
        }
        Ok(Sws {
            ptr,
            key: (w, h, fmt, 0),
        })
    }
}

fn new_graph(
    w: i32,
    h: i32,
    fmt: i32,
    sar: ffi::AVRational,
) -> std::result::Result<ff::filter::Graph, String> {
    let mut graph = ff::filter::Graph::new();
    // One thread per graph: frames are converted in parallel already, and a graph's own
    // threads (one per core by default, for every reader) exhausted the system's threads
    // under a parallel validate (found by fuzzing under a memory limit).
    // SAFETY: `graph` owns a valid AVFilterGraph; `nb_threads` is a plain int, read when the
    // filters are initialised (below), and nothing else refers to the graph yet.
    unsafe { (*graph.as_mut_ptr()).nb_threads = 1 };
    let buffer = ff::filter::find("buffer").ok_or("FFmpeg has no 'buffer' filter")?;
    let sink = ff::filter::find("buffersink").ok_or("FFmpeg has no 'buffersink' filter")?;
    let args = format!(
        "video_size={w}x{h}:pix_fmt={fmt}:time_base=1/1:pixel_aspect={}/{}",
        sar.num,
        if sar.den == 0 { 1 } else { sar.den }
    );
    graph
        .add(&buffer, "in", &args)
        .map_err(|e| format!("buffer filter: {e}"))?;
    graph
        .add(&sink, "out", "")
        .map_err(|e| format!("buffersink filter: {e}"))?;
    graph
        .get("out")
        .ok_or("no sink")?
        .set_pixel_format(ff::format::Pixel::RGB24);
    graph
        .output("in", 0)
        .and_then(|p| p.input("out", 0))
        .and_then(|p| p.parse("copy"))
        .map_err(|e| format!("filter graph: {e}"))?;
    graph.validate().map_err(|e| format!("filter graph: {e}"))?;
    Ok(graph)
}

/// `(width, height)` of a stream as its codec parameters give them (0 when unknown).
pub(super) fn stream_dims(params: &ff::codec::Parameters) -> (u32, u32) {
    // SAFETY: `params` borrows a live stream's codec parameters; the pointer is valid for the
    // borrow and only plain integer fields are read.
    let (w, h) = unsafe {
        let p = params.as_ptr();
        ((*p).width, (*p).height)
    };
    (u32::try_from(w).unwrap_or(0), u32::try_from(h).unwrap_or(0))
}

/// Repositions `input` at or before the packet of `stream` with decode timestamp `dts`
/// (`av_seek_frame` with `AVSEEK_FLAG_BACKWARD`, in the stream's own time base, which
/// `ffmpeg-next`'s `seek` cannot express). Err with FFmpeg's code when the demuxer refuses.
pub(super) fn seek_backward(
    input: &mut ff::format::context::Input,
    stream: usize,
    dts: i64,
) -> std::result::Result<(), ff::Error> {
    let stream = i32::try_from(stream).map_err(|_| ff::Error::StreamNotFound)?;
    // SAFETY: `input` is an open demuxer owned by the caller for the call; av_seek_frame only
    // repositions it.
    let r =
        unsafe { ffi::av_seek_frame(input.as_mut_ptr(), stream, dts, ffi::AVSEEK_FLAG_BACKWARD) };
    if r < 0 {
        Err(ff::Error::from(r))
    } else {
        Ok(())
    }
}

/// The decoder's error flags on a decoded frame (`AVFrame::decode_error_flags`: errors it
/// found in the bitstream and concealed), or-ed with FFmpeg's corrupt-frame flag. Zero for a
/// frame decoded without trouble.
pub(super) fn frame_damage(frame: &ff::frame::Video) -> i32 {
    // SAFETY: `frame` wraps a valid AVFrame for the borrow; reading an int field is in bounds.
    let flags = unsafe { (*frame.as_ptr()).decode_error_flags };
    flags | i32::from(frame.is_corrupt())
}

/// True when `input` was opened by the mp4/mov demuxer.
pub(super) fn is_mp4(input: &ff::format::context::Input) -> bool {
    input
        .format()
        .name()
        .split(',')
        .any(|n| n == "mov" || n == "mp4")
}

/// The demuxer's sample table of a stream, as read from the file's index boxes at open.
pub(super) struct SampleTable {
    /// The keyframe flag of each sample (the `stss` box), in decode order.
    pub keys: Vec<bool>,
    /// True when the table covers the stream's whole duration; false for a fragmented file,
    /// whose later fragments are only found while packets are read.
    pub complete: bool,
}

/// Reads the sample table of `stream` and checks that every sample lies inside the file (a
/// truncated file, or sample offsets pointing past its end, is refused when the index is built,
/// since packets are then not read).
pub(super) fn sample_table(
    input: &mut ff::format::context::Input,
    stream: usize,
) -> std::result::Result<SampleTable, String> {
    let Ok(i) = u32::try_from(stream) else {
        return Err("no such stream".into());
    };
    // SAFETY: `input` is an open demuxer owned by the caller; the stream pointer is read only
    // for `i < nb_streams`; `avformat_index_get_entry` returns null or a pointer valid until
    // the next call on the context, and only plain fields are read from it before that.
    unsafe {
        let ctx = input.as_mut_ptr();
        if i >= (*ctx).nb_streams {
            return Err("no such stream".into());
        }
        let st = *(*ctx).streams.add(i as usize);
        let size = ffi::avio_size((*ctx).pb);
        if size < 0 {
            return Err(format!("cannot tell the file's size ({size})"));
        }
        let n = ffi::avformat_index_get_entries_count(st);
        let mut keys = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
        let (mut first, mut last) = (i64::MAX, i64::MIN);
        for k in 0..n {
            let e = ffi::avformat_index_get_entry(st, k);
            if e.is_null() {
                return Err(format!("sample {k} of the sample table cannot be read"));
            }
            let end = (*e).pos.checked_add(i64::from((*e).size()));
            if (*e).pos < 0 || end.is_none_or(|end| end > size) {
                return Err(format!(
                    "sample {k} lies at bytes {}..{} of a {size}-byte file (truncated or corrupt \
                     file?)",
                    (*e).pos,
                    end.unwrap_or(i64::MAX)
                ));
            }
            keys.push((*e).flags() & ffi::AVINDEX_KEYFRAME != 0);
            first = first.min((*e).timestamp);
            last = last.max((*e).timestamp);
        }
        // the table's time span (one average step past its last sample) against the stream's
        // duration: well short of it, the file has fragments the table does not list yet
        let duration = (*st).duration;
        let complete = match keys.len() {
            0 => false,
            1 => true,
            len => {
                let step = (last.saturating_sub(first)) as f64 / (len - 1) as f64;
                duration <= 0 || (last.saturating_sub(first)) as f64 + step >= 0.9 * duration as f64
            }
        };
        Ok(SampleTable { keys, complete })
    }
}
