//! IDX files, the format of the original MNIST distribution
//! (`train-images-idx3-ubyte`, …), plain or gzipped.
//!
//! Layout: two zero bytes, a type code, the number of dimensions, one
//! big-endian u32 per dimension, then big-endian element data.

use crate::array::{byte_count, DType, NdArray};
use crate::error::{DataError, ErrorKind, Result};
use std::io::Read;

/// IDX files in the wild have 1 to 4 dimensions; allow a few more.
pub const MAX_DIMS: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxHeader {
    pub dtype: DType,
    pub shape: Vec<usize>,
    /// Length of the header in bytes (where the data starts).
    pub data_offset: usize,
}

/// An IDX array and how many unexpected bytes followed the data.
#[derive(Debug, Clone, PartialEq)]
pub struct IdxFile {
    pub header: IdxHeader,
    pub array: NdArray,
    pub trailing_bytes: usize,
    /// Whether the file was gzip-compressed.
    pub gzipped: bool,
}

pub fn dtype_from_code(code: u8) -> Option<DType> {
    Some(match code {
        0x08 => DType::U8,
        0x09 => DType::I8,
        0x0B => DType::I16,
        0x0C => DType::I32,
        0x0D => DType::F32,
        0x0E => DType::F64,
        _ => return None,
    })
}

pub fn code_from_dtype(dtype: DType) -> Option<u8> {
    Some(match dtype {
        DType::U8 => 0x08,
        DType::I8 => 0x09,
        DType::I16 => 0x0B,
        DType::I32 => 0x0C,
        DType::F32 => 0x0D,
        DType::F64 => 0x0E,
        _ => return None,
    })
}

/// Whether the bytes start like an IDX header (used for content sniffing).
pub fn looks_like_idx(bytes: &[u8]) -> bool {
    bytes.len() >= 4
        && bytes[0] == 0
        && bytes[1] == 0
        && dtype_from_code(bytes[2]).is_some()
        && (1..=MAX_DIMS as u8).contains(&bytes[3])
}

pub fn parse_header(bytes: &[u8]) -> Result<IdxHeader> {
    if bytes.len() < 4 {
        return Err(DataError::malformed(
            "truncated IDX: shorter than its 4-byte magic",
        ));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(DataError::malformed(
            "not an IDX file (magic must start with two zero bytes)",
        ));
    }
    let dtype = dtype_from_code(bytes[2]).ok_or_else(|| {
        DataError::malformed(format!(
            "IDX type code 0x{:02x} is not one of 08 09 0B 0C 0D 0E",
            bytes[2]
        ))
    })?;
    let ndim = bytes[3] as usize;
    if ndim == 0 || ndim > MAX_DIMS {
        return Err(DataError::malformed(format!(
            "IDX declares {ndim} dimensions (expected 1 to {MAX_DIMS})"
        )));
    }
    let data_offset = 4 + 4 * ndim;
    if bytes.len() < data_offset {
        return Err(DataError::malformed(format!(
            "truncated IDX: header of {ndim} dimensions needs {data_offset} bytes, file has {}",
            bytes.len()
        )));
    }
    let shape = (0..ndim)
        .map(|d| {
            let o = 4 + 4 * d;
            u32::from_be_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]) as usize
        })
        .collect::<Vec<_>>();
    byte_count(&shape, dtype)?;
    Ok(IdxHeader {
        dtype,
        shape,
        data_offset,
    })
}

/// Parses an uncompressed IDX file held in memory.
pub fn parse(bytes: &[u8]) -> Result<IdxFile> {
    let header = parse_header(bytes)?;
    let need = byte_count(&header.shape, header.dtype)?;
    let have = bytes.len() - header.data_offset;
    if have < need {
        return Err(DataError::malformed(format!(
            "truncated IDX: header declares {need} data bytes, file has {have} (shape {:?} of {})",
            header.shape,
            header.dtype.name()
        )));
    }
    let mut data = bytes[header.data_offset..header.data_offset + need].to_vec();
    NdArray::swap_bytes_in_place(&mut data, header.dtype.size());
    let array = NdArray::new(header.dtype, header.shape.clone(), data)?;
    Ok(IdxFile {
        header,
        array,
        trailing_bytes: have - need,
        gzipped: false,
    })
}

/// Parses a gzipped IDX stream, inflating only as much as the header
/// declares (plus one byte to notice trailing data), so a gzip bomb costs at
/// most `max_bytes` of memory.
pub fn parse_gzip(compressed: &[u8], max_bytes: u64) -> Result<IdxFile> {
    let mut gz = flate2::read::GzDecoder::new(compressed);
    let mut head = [0u8; 4];
    read_exact_or(
        &mut gz,
        &mut head,
        "truncated IDX: shorter than its 4-byte magic",
    )?;
    if !looks_like_idx(&head) {
        return Err(DataError::malformed(
            "gzip stream does not hold an IDX file",
        ));
    }
    let ndim = head[3] as usize;
    let mut dims = vec![0u8; 4 * ndim];
    read_exact_or(&mut gz, &mut dims, "truncated IDX: header is cut off")?;
    let mut header_bytes = head.to_vec();
    header_bytes.extend_from_slice(&dims);
    let header = parse_header(&header_bytes)?;
    let need = byte_count(&header.shape, header.dtype)?;
    if need as u64 > max_bytes {
        return Err(DataError::new(
            ErrorKind::TooLarge,
            format!("IDX declares {need} data bytes, over the {max_bytes}-byte limit"),
        ));
    }
    // Grow with what actually inflates, not with what the header claims.
    let mut data = Vec::with_capacity(need.min(crate::array::INITIAL_ALLOCATION_CAP as usize));
    (&mut gz)
        .take(need as u64)
        .read_to_end(&mut data)
        .map_err(|e| DataError::malformed(format!("corrupt gzip stream: {e}")))?;
    if data.len() < need {
        return Err(DataError::malformed(format!(
            "truncated IDX: header declares {need} data bytes, stream has {} (shape {:?} of {})",
            data.len(),
            header.shape,
            header.dtype.name()
        )));
    }
    // Count trailing bytes without holding them.
    let trailing = std::io::copy(&mut (&mut gz).take(max_bytes), &mut std::io::sink())
        .map_err(|e| DataError::malformed(format!("corrupt gzip stream: {e}")))?;
    NdArray::swap_bytes_in_place(&mut data, header.dtype.size());
    let array = NdArray::new(header.dtype, header.shape.clone(), data)?;
    Ok(IdxFile {
        header,
        array,
        trailing_bytes: trailing as usize,
        gzipped: true,
    })
}

fn read_exact_or(r: &mut impl Read, buf: &mut [u8], msg: &str) -> Result<()> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => DataError::malformed(msg),
        _ => DataError::malformed(format!("corrupt gzip stream: {e}")),
    })
}

/// Serialises an array as IDX (big-endian); `None` for types IDX cannot hold.
pub fn write(array: &NdArray) -> Option<Vec<u8>> {
    let code = code_from_dtype(array.dtype)?;
    if array.shape.is_empty() || array.shape.len() > MAX_DIMS {
        return None;
    }
    let mut out = vec![0, 0, code, array.shape.len() as u8];
    for &d in &array.shape {
        out.extend_from_slice(&u32::try_from(d).ok()?.to_be_bytes());
    }
    let mut data = array.data.clone();
    NdArray::swap_bytes_in_place(&mut data, array.dtype.size());
    out.extend_from_slice(&data);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn reads_big_endian_values() {
        let bytes = [0, 0, 0x0B, 1, 0, 0, 0, 2, 0x01, 0x00, 0xff, 0xfe];
        let f = parse(&bytes).unwrap();
        assert_eq!(f.array.shape, vec![2]);
        assert_eq!(f.array.get_f64(0), 256.0);
        assert_eq!(f.array.get_f64(1), -2.0);
    }

    #[test]
    fn truncated_files_say_how_much_is_missing() {
        let bytes = [0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2];
        let e = parse(&bytes).unwrap_err();
        assert!(
            e.message.contains("declares 4 data bytes, file has 2"),
            "{e}"
        );
    }

    #[test]
    fn gzip_round_trip_and_bomb_limit() {
        let a = NdArray::new(DType::U8, vec![3, 2], vec![1, 2, 3, 4, 5, 6]).unwrap();
        let raw = write(&a).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&raw).unwrap();
        let c = gz.finish().unwrap();
        let f = parse_gzip(&c, 1 << 20).unwrap();
        assert_eq!(f.array, a);
        assert!(f.gzipped);
        let e = parse_gzip(&c, 5).unwrap_err();
        assert_eq!(e.kind, ErrorKind::TooLarge);
    }
}
