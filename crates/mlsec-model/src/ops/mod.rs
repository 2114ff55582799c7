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
mod winograd;

pub use conv::{conv2d, conv2d_with};
pub use pool::{max_pool2d, max_pool2d_with};

use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Flex};
use burn::prelude::*;
use burn::tensor::{DType, TensorData};
use std::borrow::Cow;
use std::mem::MaybeUninit;

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
pub(crate) fn values(tensor: &FlexTensor) -> Cow<'_, [f32]> {
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

pub(crate) fn flex_tensor<const D: usize>(values: Vec<f32>, shape: [usize; D]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// Writes `value` into every element of `slice` and returns it initialised.
///
/// The kernels allocate their outputs uninitialised (`Vec::with_capacity`)
/// and fill each sample's or plane's part on the worker that computes it,
/// just before computing it. Zeroing whole outputs first had been a separate
/// pass over memory (22 MB per LeNet training step, 3 % of an epoch), and the
/// kernel's own writes then missed the cache a second time.
pub(crate) fn filled<T: Copy>(slice: &mut [MaybeUninit<T>], value: T) -> &mut [T] {
    for element in slice.iter_mut() {
        element.write(value);
    }
    // SAFETY: every element was written just above, and `MaybeUninit<T>` has
    // the layout of `T`.
    unsafe { &mut *(slice as *mut [MaybeUninit<T>] as *mut [T]) }
}

#[cfg(test)]
mod filled_tests {
    use std::mem::MaybeUninit;

    #[test]
    fn filled_writes_every_element() {
        for len in [0, 1, 7, 8, 300] {
            let mut v: Vec<f32> = Vec::with_capacity(len);
            let slice = super::filled(&mut v.spare_capacity_mut()[..len], 2.5);
            assert_eq!(slice.len(), len);
            assert!(slice.iter().all(|&x| x == 2.5));
            let mut u = [MaybeUninit::<u32>::uninit(); 3];
            assert_eq!(super::filled(&mut u, 9), &[9, 9, 9]);
        }
    }
}
