//! NumPy `.npy` files (format versions 1.0, 2.0, 3.0) and `.npz` archives.
//!
//! The header is a Python dict literal; we parse the small literal subset
//! NumPy writes with a bounded recursive-descent parser (no evaluation, depth
//! and size limits) rather than pulling in a Python-literal crate. Object
//! arrays (`|O`) hold pickles and are refused: mlsec never unpickles.

use crate::array::{byte_count, DType, NdArray};
use crate::error::{DataError, ErrorKind, Result};
use std::io::Read;

pub const MAGIC: &[u8; 6] = b"\x93NUMPY";
/// NumPy's own default `max_header_size` for `np.load` (10,000 bytes).
pub const MAX_HEADER_LEN: usize = 10_000;
const MAX_LITERAL_DEPTH: usize = 16;

/// The parsed header of an `.npy` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpyHeader {
    pub version: (u8, u8),
    pub dtype: DType,
    /// True for big-endian element data (`>` in `descr`).
    pub big_endian: bool,
    pub fortran_order: bool,
    pub shape: Vec<usize>,
    /// Offset of the first data byte.
    pub data_offset: usize,
}

/// A parsed array and how many unexpected bytes followed its data.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyFile {
    pub header: NpyHeader,
    pub array: NdArray,
    pub trailing_bytes: usize,
}

/// Parses the magic, version, and header dict. Errors name what is wrong.
pub fn parse_header(bytes: &[u8]) -> Result<NpyHeader> {
    if bytes.len() < 8 || &bytes[..6] != MAGIC {
        return Err(DataError::malformed(
            "not an NPY file (missing \\x93NUMPY magic)",
        ));
    }
    let version = (bytes[6], bytes[7]);
    let (len_size, utf8) = match version {
        (1, 0) => (2, false),
        (2, 0) => (4, false),
        (3, 0) => (4, true),
        (a, b) => {
            return Err(DataError::unsupported(format!(
                "NPY format version {a}.{b} (mlsec reads 1.0, 2.0 and 3.0)"
            )))
        }
    };
    let len_end = 8 + len_size;
    if bytes.len() < len_end {
        return Err(DataError::malformed(
            "truncated NPY: header length is cut off",
        ));
    }
    let header_len = if len_size == 2 {
        u16::from_le_bytes([bytes[8], bytes[9]]) as usize
    } else {
        u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize
    };
    if header_len > MAX_HEADER_LEN {
        return Err(DataError::new(
            ErrorKind::TooLarge,
            format!("NPY header is {header_len} bytes, over the {MAX_HEADER_LEN}-byte limit NumPy also applies"),
        ));
    }
    let data_offset = len_end + header_len;
    if bytes.len() < data_offset {
        return Err(DataError::malformed(format!(
            "truncated NPY: header declares {header_len} bytes, only {} present",
            bytes.len() - len_end
        )));
    }
    let raw = &bytes[len_end..data_offset];
    let text: String = if utf8 {
        std::str::from_utf8(raw)
            .map_err(|_| DataError::malformed("NPY 3.0 header is not valid UTF-8"))?
            .to_string()
    } else {
        // Versions 1 and 2 are latin-1: every byte is one code point.
        raw.iter().map(|&b| b as char).collect()
    };
    let dict = match Literal::parse(&text)? {
        Literal::Dict(entries) => entries,
        _ => return Err(DataError::malformed("NPY header is not a dict literal")),
    };
    let mut descr = None;
    let mut fortran = None;
    let mut shape = None;
    for (key, value) in dict {
        match (key.as_str(), value) {
            ("descr", v) => descr = Some(v),
            ("fortran_order", Literal::Bool(b)) => fortran = Some(b),
            ("shape", Literal::Tuple(items)) => {
                let mut dims = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        Literal::Int(n) if n >= 0 => {
                            dims.push(usize::try_from(n).map_err(|_| {
                                DataError::malformed(format!(
                                    "NPY shape dimension {n} is too large"
                                ))
                            })?)
                        }
                        other => {
                            return Err(DataError::malformed(format!(
                                "NPY shape holds {}, expected non-negative integers",
                                other.describe()
                            )))
                        }
                    }
                }
                shape = Some(dims);
            }
            (k @ ("fortran_order" | "shape"), v) => {
                return Err(DataError::malformed(format!(
                    "NPY header key '{k}' holds {}",
                    v.describe()
                )))
            }
            (other, _) => {
                return Err(DataError::malformed(format!(
                    "NPY header has unexpected key '{other}'"
                )))
            }
        }
    }
    let (Some(descr), Some(fortran_order), Some(shape)) = (descr, fortran, shape) else {
        return Err(DataError::malformed(
            "NPY header must have the keys 'descr', 'fortran_order' and 'shape'",
        ));
    };
    let (dtype, big_endian) = parse_descr(&descr)?;
    Ok(NpyHeader {
        version,
        dtype,
        big_endian,
        fortran_order,
        shape,
        data_offset,
    })
}

/// Maps a NumPy type string (`<f4`, `|u1`, `>i8`, …) to a [`DType`].
fn parse_descr(descr: &Literal) -> Result<(DType, bool)> {
    let s = match descr {
        Literal::Str(s) => s.as_str(),
        Literal::List(_) | Literal::Tuple(_) => {
            return Err(DataError::unsupported(
                "structured (record) dtype in NPY file; mlsec reads plain numeric arrays",
            ))
        }
        other => {
            return Err(DataError::malformed(format!(
                "NPY 'descr' holds {}, expected a type string",
                other.describe()
            )))
        }
    };
    let (order, rest) = match s.chars().next() {
        Some(c @ ('<' | '>' | '|' | '=')) => (c, &s[1..]),
        _ => ('|', s),
    };
    let kind = rest.chars().next().unwrap_or(' ');
    if kind == 'O' {
        return Err(DataError::new(
            ErrorKind::Refused,
            "object array (dtype 'O'): its elements are pickled Python objects whose loading \
             can run code, and mlsec never unpickles",
        ));
    }
    let size = &rest[kind.len_utf8().min(rest.len())..];
    let dtype = match (kind, size) {
        ('b', "1") | ('?', "") => DType::Bool,
        ('u', "1") | ('B', "") => DType::U8,
        ('i', "1") | ('b', "") => DType::I8,
        ('u', "2") => DType::U16,
        ('i', "2") => DType::I16,
        ('u', "4") => DType::U32,
        ('i', "4") => DType::I32,
        ('u', "8") => DType::U64,
        ('i', "8") => DType::I64,
        ('f', "2") => DType::F16,
        ('f', "4") => DType::F32,
        ('f', "8") => DType::F64,
        _ => {
            return Err(DataError::unsupported(format!(
                "NPY dtype '{s}' (mlsec reads bool, int8-64, uint8-64 and float16/32/64 arrays)"
            )))
        }
    };
    Ok((dtype, order == '>' && dtype.size() > 1))
}

/// Parses a whole `.npy` file held in memory.
pub fn parse(bytes: &[u8]) -> Result<NpyFile> {
    let header = parse_header(bytes)?;
    let need = byte_count(&header.shape, header.dtype)?;
    let have = bytes.len() - header.data_offset;
    if have < need {
        return Err(DataError::malformed(format!(
            "truncated NPY: header declares {need} data bytes, file has {have} (shape {:?} of {})",
            header.shape,
            header.dtype.name()
        )));
    }
    let mut data = bytes[header.data_offset..header.data_offset + need].to_vec();
    if header.big_endian {
        NdArray::swap_bytes_in_place(&mut data, header.dtype.size());
    }
    if header.fortran_order {
        data = NdArray::fortran_to_c(&data, &header.shape, header.dtype.size());
    }
    let array = NdArray::new(header.dtype, header.shape.clone(), data)?;
    Ok(NpyFile {
        header,
        array,
        trailing_bytes: have - need,
    })
}

/// One array of an `.npz` archive.
#[derive(Debug, Clone, PartialEq)]
pub struct NpzMember {
    /// The array's name (the member name without `.npy`).
    pub name: String,
    pub file: NpyFile,
}

/// Reads every array of an `.npz` (zip) archive, decompressing each member
/// with at most `max_member_bytes` so that a zip bomb cannot exhaust memory.
pub fn parse_npz(bytes: &[u8], max_member_bytes: u64) -> Result<Vec<NpzMember>> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| DataError::malformed(format!("not a readable NPZ (zip) archive: {e}")))?;
    let mut members = Vec::new();
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .map_err(|e| DataError::malformed(format!("NPZ member #{i}: {e}")))?;
        if entry.is_dir() {
            continue;
        }
        let name = entry
            .name()
            .map_err(|e| {
                DataError::malformed(format!("NPZ member #{i} has an unreadable name: {e}"))
            })?
            .to_string();
        if entry.size() > max_member_bytes {
            return Err(DataError::new(
                ErrorKind::TooLarge,
                format!(
                    "NPZ member {name} declares {} bytes, over the {max_member_bytes}-byte limit",
                    entry.size()
                ),
            ));
        }
        // Never trust the declared size for an up-front allocation.
        let mut buf =
            Vec::with_capacity(entry.size().min(crate::array::INITIAL_ALLOCATION_CAP) as usize);
        // Declared sizes can lie: cap what we actually inflate too.
        (&mut entry)
            .take(max_member_bytes + 1)
            .read_to_end(&mut buf)
            .map_err(|e| DataError::malformed(format!("NPZ member {name}: {e}")))?;
        if buf.len() as u64 > max_member_bytes {
            return Err(DataError::new(
                ErrorKind::TooLarge,
                format!("NPZ member {name} inflates past the {max_member_bytes}-byte limit"),
            ));
        }
        let file = parse(&buf).map_err(|e| DataError {
            message: format!("NPZ member {name}: {}", e.message),
            ..e
        })?;
        let array_name = name.strip_suffix(".npy").unwrap_or(&name).to_string();
        members.push(NpzMember {
            name: array_name,
            file,
        });
    }
    if members.is_empty() {
        return Err(DataError::malformed("NPZ archive holds no arrays"));
    }
    Ok(members)
}

/// Writes an array as NPY 1.0 (little-endian, C order): used by tests and by
/// commands that save arrays (adversarial examples, poisoned batches).
pub fn write(array: &NdArray) -> Vec<u8> {
    let mut out = header(array.dtype, &array.shape, 0);
    out.extend_from_slice(&array.data);
    out
}

/// The magic, version and header of an NPY 1.0 file, padded so that the
/// data starts on a 64-byte boundary (as NumPy does) and at `min_len` or
/// later.
fn header(dtype: DType, shape: &[usize], min_len: usize) -> Vec<u8> {
    let descr = match dtype {
        DType::Bool => "|b1",
        DType::U8 => "|u1",
        DType::I8 => "|i1",
        DType::U16 => "<u2",
        DType::I16 => "<i2",
        DType::U32 => "<u4",
        DType::I32 => "<i4",
        DType::U64 => "<u8",
        DType::I64 => "<i8",
        DType::F16 => "<f2",
        DType::F32 => "<f4",
        DType::F64 => "<f8",
    };
    let shape = match shape.len() {
        1 => format!("({},)", shape[0]),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    let unpadded = 10 + header.len() + 1;
    let total = unpadded.max(min_len).div_ceil(64) * 64;
    header.push_str(&" ".repeat(total - unpadded));
    header.push('\n');
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out
}

/// Writes a 1-D float64 NPY file whose length is known only at the end
/// (scores of a stream): the header is written with room for any length
/// and rewritten by [`F64Writer::finish`].
pub struct F64Writer<W: std::io::Write + std::io::Seek> {
    out: std::io::BufWriter<W>,
    len: usize,
}

/// Room for the header of any 1-D length (the longest `usize` included).
const GROWING_HEADER: usize = 128;

impl<W: std::io::Write + std::io::Seek> F64Writer<W> {
    pub fn new(out: W) -> std::io::Result<Self> {
        use std::io::Write;
        let mut out = std::io::BufWriter::new(out);
        out.write_all(&header(DType::F64, &[0], GROWING_HEADER))?;
        Ok(F64Writer { out, len: 0 })
    }

    pub fn write(&mut self, values: &[f64]) -> std::io::Result<()> {
        use std::io::Write;
        for v in values {
            self.out.write_all(&v.to_le_bytes())?;
        }
        self.len += values.len();
        Ok(())
    }

    /// Writes the final length into the header; returns the writer.
    pub fn finish(self) -> std::io::Result<W> {
        let mut out = self.out.into_inner().map_err(|e| e.into_error())?;
        let header = header(DType::F64, &[self.len], GROWING_HEADER);
        debug_assert_eq!(header.len(), GROWING_HEADER);
        out.seek(std::io::SeekFrom::Start(0))?;
        out.write_all(&header)?;
        out.flush()?;
        Ok(out)
    }
}

/// The Python literal subset NumPy headers use.
#[derive(Debug, Clone, PartialEq)]
enum Literal {
    Str(String),
    Int(i128),
    Bool(bool),
    None,
    Tuple(Vec<Literal>),
    List(Vec<Literal>),
    Dict(Vec<(String, Literal)>),
}

impl Literal {
    fn describe(&self) -> &'static str {
        match self {
            Literal::Str(_) => "a string",
            Literal::Int(_) => "an integer",
            Literal::Bool(_) => "a boolean",
            Literal::None => "None",
            Literal::Tuple(_) => "a tuple",
            Literal::List(_) => "a list",
            Literal::Dict(_) => "a dict",
        }
    }

    fn parse(text: &str) -> Result<Literal> {
        let mut p = LiteralParser {
            s: text.as_bytes(),
            pos: 0,
        };
        let value = p.value(0)?;
        p.skip_ws();
        if p.pos != p.s.len() {
            return Err(DataError::malformed(format!(
                "NPY header has unexpected text at byte {}",
                p.pos
            )));
        }
        Ok(value)
    }
}

struct LiteralParser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl LiteralParser<'_> {
    fn err(&self, what: &str) -> DataError {
        DataError::malformed(format!("NPY header: {what} at byte {}", self.pos))
    }

    fn skip_ws(&mut self) {
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.get(self.pos).copied()
    }

    fn value(&mut self, depth: usize) -> Result<Literal> {
        if depth > MAX_LITERAL_DEPTH {
            return Err(self.err("nesting too deep"));
        }
        match self.peek() {
            Some(b'{') => {
                self.pos += 1;
                let mut entries = Vec::new();
                loop {
                    if self.peek() == Some(b'}') {
                        self.pos += 1;
                        return Ok(Literal::Dict(entries));
                    }
                    let key = match self.value(depth + 1)? {
                        Literal::Str(k) => k,
                        _ => return Err(self.err("dict key is not a string")),
                    };
                    if self.peek() != Some(b':') {
                        return Err(self.err("expected ':'"));
                    }
                    self.pos += 1;
                    let v = self.value(depth + 1)?;
                    entries.push((key, v));
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b'}') => {}
                        _ => return Err(self.err("expected ',' or '}'")),
                    }
                }
            }
            Some(open @ (b'(' | b'[')) => {
                let close = if open == b'(' { b')' } else { b']' };
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    if self.peek() == Some(close) {
                        self.pos += 1;
                        return Ok(if open == b'(' {
                            Literal::Tuple(items)
                        } else {
                            Literal::List(items)
                        });
                    }
                    items.push(self.value(depth + 1)?);
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(c) if c == close => {}
                        _ => return Err(self.err("expected ',' or closing bracket")),
                    }
                }
            }
            Some(q @ (b'\'' | b'"')) => {
                self.pos += 1;
                let mut out = Vec::new();
                loop {
                    match self.s.get(self.pos) {
                        None => return Err(self.err("unterminated string")),
                        Some(&c) if c == q => {
                            self.pos += 1;
                            break;
                        }
                        Some(b'\\') => {
                            let c = *self
                                .s
                                .get(self.pos + 1)
                                .ok_or_else(|| self.err("bad escape"))?;
                            out.push(c);
                            self.pos += 2;
                        }
                        Some(&c) => {
                            out.push(c);
                            self.pos += 1;
                        }
                    }
                }
                Ok(Literal::Str(String::from_utf8_lossy(&out).into_owned()))
            }
            Some(c) if c == b'-' || c.is_ascii_digit() => {
                let start = self.pos;
                self.pos += 1;
                while self.pos < self.s.len() && self.s[self.pos].is_ascii_digit() {
                    self.pos += 1;
                }
                // Python 2 era headers may write long integers as `3L`.
                let text = std::str::from_utf8(&self.s[start..self.pos]).unwrap_or("");
                if self.s.get(self.pos) == Some(&b'L') {
                    self.pos += 1;
                }
                text.parse::<i128>()
                    .map(Literal::Int)
                    .map_err(|_| self.err("bad integer"))
            }
            Some(_) => {
                for (word, lit) in [
                    ("True", Literal::Bool(true)),
                    ("False", Literal::Bool(false)),
                    ("None", Literal::None),
                ] {
                    if self.s[self.pos..].starts_with(word.as_bytes()) {
                        self.pos += word.len();
                        return Ok(lit);
                    }
                }
                Err(self.err("unexpected character"))
            }
            None => Err(self.err("unexpected end")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(header: &str, data: &[u8]) -> Vec<u8> {
        let mut v = MAGIC.to_vec();
        v.extend_from_slice(&[1, 0]);
        v.extend_from_slice(&(header.len() as u16).to_le_bytes());
        v.extend_from_slice(header.as_bytes());
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn growing_files_read_back_with_their_final_length() {
        let mut w = F64Writer::new(std::io::Cursor::new(Vec::new())).unwrap();
        w.write(&[1.5, -2.0]).unwrap();
        w.write(&[]).unwrap();
        w.write(&[f64::NAN]).unwrap();
        let bytes = w.finish().unwrap().into_inner();
        let f = parse(&bytes).unwrap();
        assert_eq!(f.header.shape, [3]);
        assert_eq!(f.header.data_offset, GROWING_HEADER);
        assert_eq!(f.array.get_f64(1), -2.0);
        assert!(f.array.get_f64(2).is_nan());
        assert_eq!(f.trailing_bytes, 0);
    }

    #[test]
    fn round_trips_through_write() {
        let a = NdArray::new(
            DType::F32,
            vec![2, 2],
            [1f32, 2., 3., 4.]
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect(),
        )
        .unwrap();
        let parsed = parse(&write(&a)).unwrap();
        assert_eq!(parsed.array, a);
        assert_eq!(parsed.header.data_offset % 64, 0);
        assert_eq!(parsed.trailing_bytes, 0);
    }

    #[test]
    fn big_endian_and_fortran_order_are_normalised() {
        let bytes = npy(
            "{'descr': '>i2', 'fortran_order': True, 'shape': (2, 2), }\n",
            &[0, 1, 0, 3, 0, 2, 0, 4],
        );
        let f = parse(&bytes).unwrap();
        let vals: Vec<f64> = (0..4).map(|i| f.array.get_f64(i)).collect();
        assert_eq!(vals, vec![1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn object_arrays_are_refused() {
        let bytes = npy(
            "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }\n",
            b"\x80\x02N.",
        );
        let e = parse(&bytes).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Refused);
        assert!(e.message.contains("never unpickles"), "{e}");
    }

    #[test]
    fn truncated_data_is_reported_with_sizes() {
        let bytes = npy(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (10,), }\n",
            &[0; 10],
        );
        let e = parse(&bytes).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Malformed);
        assert!(
            e.message.contains("declares 80 data bytes, file has 10"),
            "{e}"
        );
    }

    #[test]
    fn header_must_have_exactly_the_three_keys() {
        let extra = npy(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (), 'x': 1}",
            &[0; 8],
        );
        assert!(parse(&extra).is_err());
        let missing = npy("{'descr': '<f8', 'shape': ()}", &[0; 8]);
        assert!(parse(&missing).is_err());
    }

    #[test]
    fn structured_and_string_dtypes_are_unsupported_not_misread() {
        let rec = npy(
            "{'descr': [('a', '<i4')], 'fortran_order': False, 'shape': (1,), }",
            &[0; 4],
        );
        assert_eq!(parse(&rec).unwrap_err().kind, ErrorKind::Unsupported);
        let s = npy(
            "{'descr': '<U3', 'fortran_order': False, 'shape': (1,), }",
            &[0; 12],
        );
        assert_eq!(parse(&s).unwrap_err().kind, ErrorKind::Unsupported);
    }

    #[test]
    fn deeply_nested_literals_are_rejected() {
        let deep = format!("{}{}", "(".repeat(100), ")".repeat(100));
        assert!(Literal::parse(&deep).is_err());
    }
}
