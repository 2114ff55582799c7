//! A plain n-dimensional array: element type, shape, and little-endian
//! C-order bytes. Every loader converts to this layout once, so the rest of
//! mlsec never has to think about byte order or Fortran order.

use crate::error::{DataError, Result};
use serde::Serialize;

/// Largest buffer reserved up front on the word of a header or archive
/// directory; beyond it, memory grows only as real bytes arrive.
pub(crate) const INITIAL_ALLOCATION_CAP: u64 = 64 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    Bool,
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    U64,
    I64,
    F16,
    F32,
    F64,
}

/// Serialised under NumPy's names (`uint8`, `float32`, …).
impl Serialize for DType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl DType {
    pub fn size(self) -> usize {
        match self {
            DType::Bool | DType::U8 | DType::I8 => 1,
            DType::U16 | DType::I16 | DType::F16 => 2,
            DType::U32 | DType::I32 | DType::F32 => 4,
            DType::U64 | DType::I64 | DType::F64 => 8,
        }
    }

    /// NumPy's name for the type.
    pub fn name(self) -> &'static str {
        match self {
            DType::Bool => "bool",
            DType::U8 => "uint8",
            DType::I8 => "int8",
            DType::U16 => "uint16",
            DType::I16 => "int16",
            DType::U32 => "uint32",
            DType::I32 => "int32",
            DType::U64 => "uint64",
            DType::I64 => "int64",
            DType::F16 => "float16",
            DType::F32 => "float32",
            DType::F64 => "float64",
        }
    }

    pub fn is_float(self) -> bool {
        matches!(self, DType::F16 | DType::F32 | DType::F64)
    }

    pub fn is_integer(self) -> bool {
        !self.is_float() && self != DType::Bool
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct NdArray {
    pub dtype: DType,
    pub shape: Vec<usize>,
    /// Little-endian, C (row-major) order; `len() * dtype.size()` bytes.
    pub data: Vec<u8>,
}

/// Number of elements for a shape, refusing overflow (a crafted header can
/// declare dimensions whose product wraps around).
pub fn element_count(shape: &[usize]) -> Result<usize> {
    shape.iter().try_fold(1usize, |acc, &d| {
        acc.checked_mul(d)
            .ok_or_else(|| DataError::malformed(format!("shape {shape:?} overflows")))
    })
}

/// Bytes needed for a shape and type, refusing overflow.
pub fn byte_count(shape: &[usize], dtype: DType) -> Result<usize> {
    element_count(shape)?
        .checked_mul(dtype.size())
        .ok_or_else(|| DataError::malformed(format!("shape {shape:?} overflows")))
}

impl NdArray {
    pub fn new(dtype: DType, shape: Vec<usize>, data: Vec<u8>) -> Result<Self> {
        let need = byte_count(&shape, dtype)?;
        if need != data.len() {
            return Err(DataError::malformed(format!(
                "shape {shape:?} of {} needs {need} bytes, got {}",
                dtype.name(),
                data.len()
            )));
        }
        Ok(NdArray { dtype, shape, data })
    }

    pub fn len(&self) -> usize {
        self.data.len() / self.dtype.size()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Samples are indexed by the first axis; a 0-d array is one sample.
    pub fn samples(&self) -> usize {
        self.shape.first().copied().unwrap_or(1)
    }

    /// Shape of one sample (the shape without its first axis).
    pub fn sample_shape(&self) -> &[usize] {
        self.shape.get(1..).unwrap_or(&[])
    }

    /// The bytes of sample `i` (the `i`-th slice along the first axis).
    pub fn sample_bytes(&self, i: usize) -> &[u8] {
        let n = self.samples().max(1);
        let per = self.data.len() / n;
        &self.data[i * per..(i + 1) * per]
    }

    /// Element `i` as f64 (exact for every integer up to 2^53).
    pub fn get_f64(&self, i: usize) -> f64 {
        let s = self.dtype.size();
        let b = &self.data[i * s..(i + 1) * s];
        match self.dtype {
            DType::Bool => (b[0] != 0) as u8 as f64,
            DType::U8 => b[0] as f64,
            DType::I8 => b[0] as i8 as f64,
            DType::U16 => u16::from_le_bytes([b[0], b[1]]) as f64,
            DType::I16 => i16::from_le_bytes([b[0], b[1]]) as f64,
            DType::F16 => half::f16::from_le_bytes([b[0], b[1]]).to_f64(),
            DType::U32 => u32::from_le_bytes(b.try_into().unwrap_or_default()) as f64,
            DType::I32 => i32::from_le_bytes(b.try_into().unwrap_or_default()) as f64,
            DType::F32 => f32::from_le_bytes(b.try_into().unwrap_or_default()) as f64,
            DType::U64 => u64::from_le_bytes(b.try_into().unwrap_or_default()) as f64,
            DType::I64 => i64::from_le_bytes(b.try_into().unwrap_or_default()) as f64,
            DType::F64 => f64::from_le_bytes(b.try_into().unwrap_or_default()),
        }
    }

    /// Element `i` as an exact integer, for integer and bool arrays.
    pub fn get_i128(&self, i: usize) -> Option<i128> {
        let s = self.dtype.size();
        let b = &self.data[i * s..(i + 1) * s];
        Some(match self.dtype {
            DType::Bool | DType::U8 => b[0] as i128,
            DType::I8 => b[0] as i8 as i128,
            DType::U16 => u16::from_le_bytes([b[0], b[1]]) as i128,
            DType::I16 => i16::from_le_bytes([b[0], b[1]]) as i128,
            DType::U32 => u32::from_le_bytes(b.try_into().ok()?) as i128,
            DType::I32 => i32::from_le_bytes(b.try_into().ok()?) as i128,
            DType::U64 => u64::from_le_bytes(b.try_into().ok()?) as i128,
            DType::I64 => i64::from_le_bytes(b.try_into().ok()?) as i128,
            DType::F16 | DType::F32 | DType::F64 => return None,
        })
    }

    /// Reverses the byte order of every element in place (big-endian input).
    pub(crate) fn swap_bytes_in_place(data: &mut [u8], size: usize) {
        if size > 1 {
            for chunk in data.chunks_exact_mut(size) {
                chunk.reverse();
            }
        }
    }

    /// Re-lays Fortran-order (column-major) data as C order.
    pub(crate) fn fortran_to_c(data: &[u8], shape: &[usize], size: usize) -> Vec<u8> {
        let n = data.len() / size.max(1);
        if shape.len() < 2 || n == 0 {
            return data.to_vec();
        }
        let mut out = vec![0u8; data.len()];
        let mut idx = vec![0usize; shape.len()];
        // Fortran strides: the first axis varies fastest.
        let mut f_strides = vec![1usize; shape.len()];
        for d in 1..shape.len() {
            f_strides[d] = f_strides[d - 1] * shape[d - 1];
        }
        for c in 0..n {
            let f: usize = idx.iter().zip(&f_strides).map(|(i, s)| i * s).sum();
            out[c * size..(c + 1) * size].copy_from_slice(&data[f * size..(f + 1) * size]);
            for d in (0..shape.len()).rev() {
                idx[d] += 1;
                if idx[d] < shape[d] {
                    break;
                }
                idx[d] = 0;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fortran_order_is_transposed_to_c_order() {
        // 2x3 matrix [[1,2,3],[4,5,6]] stored column-major is 1,4,2,5,3,6.
        let f = [1u8, 4, 2, 5, 3, 6];
        assert_eq!(
            NdArray::fortran_to_c(&f, &[2, 3], 1),
            vec![1, 2, 3, 4, 5, 6]
        );
    }

    #[test]
    fn overflowing_shapes_are_errors_not_panics() {
        assert!(byte_count(&[usize::MAX, 2], DType::U8).is_err());
        assert!(byte_count(&[usize::MAX / 2 + 1], DType::F64).is_err());
    }

    #[test]
    fn reads_elements_of_each_type() {
        let a = NdArray::new(DType::I16, vec![2], vec![0xff, 0xff, 2, 0]).unwrap();
        assert_eq!(a.get_f64(0), -1.0);
        assert_eq!(a.get_i128(1), Some(2));
        let h = NdArray::new(
            DType::F16,
            vec![1],
            half::f16::from_f32(1.5).to_le_bytes().to_vec(),
        )
        .unwrap();
        assert_eq!(h.get_f64(0), 1.5);
    }
}
