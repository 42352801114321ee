//! TFRecord files: records framed as `length (u64 LE) | masked CRC32C of the length | data |
//! masked CRC32C of the data`. Every CRC is checked: a damaged shard is an error naming the file
//! and the record, never a silently shortened dataset.

use std::io::{BufReader, Read};
use std::path::Path;

use crate::error::{Error, Location, Result};

/// The most bytes one record may hold (an RLDS episode with its encoded images is megabytes;
/// a length from a damaged header must not exhaust memory).
pub const MAX_RECORD_BYTES: u64 = 2 << 30;

/// TFRecord's CRC: CRC32C, rotated and offset ("masked").
pub fn masked_crc(data: &[u8]) -> u32 {
    let crc = crc32c::crc32c(data);
    (crc.rotate_right(15)).wrapping_add(0xa282_ead8)
}

fn damaged(path: &Path, record: usize, msg: impl Into<String>) -> Error {
    Error::Source {
        at: Location::file(path),
        format: "TFRecord",
        msg: format!("record {record}: {}", msg.into()),
    }
}

/// Reads every record of `file` in order, checking its CRCs, and hands each to `each` with
/// its number and the file offset of its data.
pub fn scan(
    file: &crate::source::SourceFile,
    mut each: impl FnMut(usize, &[u8], u64) -> Result<()>,
) -> Result<usize> {
    let path = file.path();
    let (size, reader, errors) = file.reader()?;
    let mut r = BufReader::with_capacity(1 << 20, reader);
    let mut pos: u64 = 0;
    let mut data = Vec::new();
    let mut n = 0usize;
    loop {
        let mut header = [0u8; 12];
        let got = read_up_to(&mut r, &mut header).map_err(|e| errors.of(e))?;
        if got == 0 {
            return Ok(n);
        }
        if got < header.len() {
            return Err(damaged(
                path,
                n,
                format!("truncated header ({got} of 12 bytes at the end of the file)"),
            ));
        }
        let (len_bytes, crc_bytes) = header.split_at(8);
        let len = u64::from_le_bytes(len_bytes.try_into().unwrap_or_default());
        let len_crc = u32::from_le_bytes(crc_bytes.try_into().unwrap_or_default());
        if masked_crc(len_bytes) != len_crc {
            return Err(damaged(
                path,
                n,
                "the length's CRC does not match (not a TFRecord file, or damaged)",
            ));
        }
        let left = size.saturating_sub(pos + 12);
        if len > MAX_RECORD_BYTES || len.saturating_add(4) > left {
            return Err(damaged(
                path,
                n,
                format!("a record of {len} bytes does not fit in the {left} bytes left of the file (truncated?)"),
            ));
        }
        data.clear();
        data.resize(len as usize, 0);
        let mut crc = [0u8; 4];
        r.read_exact(&mut data)
            .and_then(|()| r.read_exact(&mut crc))
            .map_err(|e| {
                errors
                    .remote()
                    .unwrap_or_else(|| damaged(path, n, format!("cannot read the record: {e}")))
            })?;
        if masked_crc(&data) != u32::from_le_bytes(crc) {
            return Err(damaged(path, n, "the data's CRC does not match (damaged)"));
        }
        each(n, &data, pos + 12)?;
        pos += 12 + len + 4;
        n += 1;
    }
}

/// Reads into `buf` until it is full or the reader ends; the bytes read.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// `records` framed as a TFRecord file (the fuzz seeds' and the tests' writer).
#[cfg(any(test, feature = "testing"))]
pub fn frame(records: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in records {
        let len = (r.len() as u64).to_le_bytes();
        out.extend_from_slice(&len);
        out.extend_from_slice(&masked_crc(&len).to_le_bytes());
        out.extend_from_slice(r);
        out.extend_from_slice(&masked_crc(r).to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::masked_crc;

    #[test]
    fn masked_crc_of_tensorflows_test_vector() {
        // crc32c("123456789") is 0xe3069283 (RFC 3720's check value), masked as TFRecord does
        let crc: u32 = 0xe306_9283;
        assert_eq!(
            masked_crc(b"123456789"),
            crc.rotate_right(15).wrapping_add(0xa282_ead8)
        );
    }
}
