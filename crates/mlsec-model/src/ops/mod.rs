//! Layers the zoo runs on mlsec's own kernels, plugged into burn's autodiff
//! graph as single operations with their own backward steps, so that
//! training and every gradient attack use them.
//!
//! Why: on burn's `flex` backend, LeNet spent more time around its matrix
//! products than in them. A convolution's input gradient was a transposed
//! convolution and its weight gradient a convolution with batch and channels
//! swapped, each wrapped in transposed copies; max pooling recomputed window
//! positions with integer divisions per element. `docs/BENCHMARKS.md` has
//! the before and after.
//!
//! Each operation falls back to burn's own for shapes its kernels do not
//! cover, so a model never depends on which path ran.

mod conv;
pub mod conv_kernel;
mod pool;

pub use conv::{conv2d, conv2d_with};
pub use pool::{max_pool2d, max_pool2d_with};

use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Flex};
use burn::prelude::*;
use burn::tensor::{DType, TensorData};
use rayon::prelude::*;
use std::borrow::Cow;

/// The autodiff backend behind mlsec's autodiff device.
type Tracked = Autodiff<Flex, NoCheckpointing>;

/// A tensor's primitive on the backend that holds it.
enum Operand {
    Plain(FlexTensor),
    Tracked(FloatTensor<Tracked>),
}

/// `None` for dtypes other than `f32` and tensors on other backends.
fn operand<const D: usize>(tensor: &Tensor<D>) -> Option<Operand> {
    if tensor.dtype() != DType::F32 {
        return None;
    }
    if let Ok(plain) = tensor.clone().try_into_primitive::<Flex>() {
        return Some(Operand::Plain(plain));
    }
    let tracked = tensor.clone().try_into_primitive::<Tracked>().ok()?;
    Some(Operand::Tracked(tracked))
}

/// The tensor's values in row-major order (copied only when it is a strided
/// view).
fn values(tensor: &FlexTensor) -> Cow<'_, [f32]> {
    match tensor.as_slice::<f32>() {
        Some(slice) => Cow::Borrowed(slice),
        None => Cow::Owned(
            tensor
                .to_contiguous()
                .into_data()
                .try_into_vec::<f32>()
                .expect("an f32 tensor converts to f32 values"),
        ),
    }
}

fn flex_tensor<const D: usize>(values: Vec<f32>, shape: [usize; D]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// `len` zeros, written chunk by chunk on the rayon pool. `vec![0.0; len]`
/// zeroes on the calling thread while the pool waits: for LeNet's
/// activations and their gradients that was 3 % of a training epoch, all of
/// it on one core.
fn zeros<T: Copy + Default + Send + Sync>(len: usize) -> Vec<T> {
    const CHUNK: usize = 1 << 16;
    let mut v: Vec<T> = Vec::with_capacity(len);
    v.spare_capacity_mut()[..len]
        .par_chunks_mut(CHUNK)
        .for_each(|chunk| chunk.fill(std::mem::MaybeUninit::new(T::default())));
    // SAFETY: the loop above initialised the first `len` elements.
    unsafe { v.set_len(len) };
    v
}

#[cfg(test)]
mod zeros_tests {
    #[test]
    fn zeros_are_zeros_at_every_length() {
        for len in [0, 1, (1 << 16) - 1, 1 << 16, (1 << 16) + 1, 300_000] {
            let v = super::zeros::<f32>(len);
            assert_eq!(v.len(), len);
            assert!(v.iter().all(|&x| x == 0.0));
        }
    }
}
