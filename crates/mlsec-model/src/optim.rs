//! Adam as one pass over each parameter, split across threads.
//!
//! Why by hand: burn's `Adam` updates a parameter with thirteen tensor
//! operations (scale the moments, square the gradient, add, take the square
//! root, divide, …), each a separate single-threaded pass that allocates its
//! result. On LeNet (858,000 parameters) that was a serial stretch of every
//! training step while the thread pool waited. [`FusedAdam`] computes the
//! same update, in the same order of floating-point operations and so to the
//! same bits, in one parallel pass that reads the parameter, its gradient and
//! both moments once. It keeps burn's state type, so optimizer records are
//! burn's, and anything that is not an `f32` tensor on the `flex` backend goes
//! to burn's `Adam`.

use crate::ops::{flex_tensor, values};
use burn::backend::flex::FlexTensor;
use burn::backend::Flex;
use burn::optim::{
    Adam, AdamConfig, AdamState, AdaptiveMomentumState, LearningRate, ModuleOptimizer, Optimizer,
};
use burn::prelude::*;
use burn::tensor::DType;
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Elements per parallel task: large enough that the scheduling is noise,
/// small enough that two threads share a 100,000-element layer.
const CHUNK: usize = 1 << 14;

/// Adam with burn's defaults (β₁ 0.9, β₂ 0.999, ε 1e-5, bias correction as
/// burn applies it); no weight decay, AMSGrad or gradient clipping.
#[derive(Clone)]
pub struct FusedAdam {
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
    /// burn's Adam with the same settings, for tensors the fused pass does
    /// not take.
    fallback: Adam,
}

impl Default for FusedAdam {
    /// burn's `AdamConfig::new()` defaults (its fields are private; the
    /// bit-for-bit test below fails if they change).
    fn default() -> Self {
        FusedAdam {
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-5,
            fallback: AdamConfig::new().build(),
        }
    }
}

impl FusedAdam {
    /// An optimizer for a whole module, as `AdamConfig::new().init()` gives.
    pub fn init() -> ModuleOptimizer {
        ModuleOptimizer::from(FusedAdam::default())
    }

    /// The fused update, or `None` when a tensor is not plain `f32` on `flex`
    /// or the shapes disagree.
    fn fused<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: &Tensor<D>,
        grad: &Tensor<D>,
        state: Option<&AdamState<D>>,
    ) -> Option<(Tensor<D>, AdamState<D>)> {
        let shape = tensor.dims();
        let plain = |t: &Tensor<D>| -> Option<FlexTensor> {
            (t.dtype() == DType::F32 && t.dims() == shape)
                .then(|| t.clone().try_into_primitive::<Flex>().ok())
                .flatten()
        };
        let param = plain(tensor)?;
        let grad = plain(grad)?;
        let (time, moments) = match state {
            Some(state) => {
                let momentum = &state.momentum;
                if momentum.max_moment_2.is_some() {
                    return None;
                }
                let first = plain(&momentum.moment_1)?;
                let second = plain(&momentum.moment_2)?;
                (momentum.time, Some((first, second)))
            }
            None => (0, None),
        };
        let time = time + 1;
        let step = Step::new(self, lr, time);

        let param_values = values(&param);
        let grad_values = values(&grad);
        let len = param_values.len();
        let mut new_param = Vec::<f32>::with_capacity(len);
        let mut new_first = Vec::<f32>::with_capacity(len);
        let mut new_second = Vec::<f32>::with_capacity(len);
        let outputs = new_param.spare_capacity_mut()[..len]
            .par_chunks_mut(CHUNK)
            .zip(new_first.spare_capacity_mut()[..len].par_chunks_mut(CHUNK))
            .zip(new_second.spare_capacity_mut()[..len].par_chunks_mut(CHUNK));
        match &moments {
            Some((first, second)) => {
                let (first, second) = (values(first), values(second));
                let inputs = param_values
                    .par_chunks(CHUNK)
                    .zip(grad_values.par_chunks(CHUNK))
                    .zip(first.par_chunks(CHUNK))
                    .zip(second.par_chunks(CHUNK));
                outputs
                    .zip(inputs)
                    .for_each(|(((p_out, m_out), v_out), (((p, g), m), v))| {
                        step.apply(p, g, Some((m, v)), p_out, m_out, v_out)
                    });
            }
            None => {
                let inputs = param_values
                    .par_chunks(CHUNK)
                    .zip(grad_values.par_chunks(CHUNK));
                outputs
                    .zip(inputs)
                    .for_each(|(((p_out, m_out), v_out), (p, g))| {
                        step.apply(p, g, None, p_out, m_out, v_out)
                    });
            }
        }
        // SAFETY: `apply` wrote every element of every chunk, and the chunks
        // cover the first `len` elements of each vector.
        unsafe {
            new_param.set_len(len);
            new_first.set_len(len);
            new_second.set_len(len);
        }
        let tensor = |v: Vec<f32>| Tensor::<D>::from_primitive::<Flex>(flex_tensor(v, shape));
        let state = AdamState::new(AdaptiveMomentumState::new(
            time,
            tensor(new_first),
            tensor(new_second),
        ));
        Some((tensor(new_param), state))
    }
}

/// The scalars of one update, computed as burn's `AdaptiveMomentum` does.
struct Step {
    beta_1: f32,
    beta_2: f32,
    one_minus_beta_1: f32,
    one_minus_beta_2: f32,
    /// `sqrt(1 - β₂ᵗ) / (1 - β₁ᵗ)`.
    combined_factor: f32,
    /// `ε · sqrt(1 - β₂ᵗ)`.
    epsilon: f32,
    lr: f32,
}

impl Step {
    fn new(adam: &FusedAdam, lr: LearningRate, time: usize) -> Self {
        let time = time as i32;
        let bias_correction_2 = (1.0 - adam.beta_2.powi(time)).sqrt();
        Step {
            beta_1: adam.beta_1,
            beta_2: adam.beta_2,
            one_minus_beta_1: 1.0 - adam.beta_1,
            one_minus_beta_2: 1.0 - adam.beta_2,
            combined_factor: bias_correction_2 / (1.0 - adam.beta_1.powi(time)),
            epsilon: adam.epsilon * bias_correction_2,
            lr: lr as f32,
        }
    }

    /// One chunk: the new parameter and moments from the old ones (zero
    /// moments on the first step). Each line is one of burn's tensor
    /// operations, in its order, so the rounding is the same.
    #[inline]
    fn apply(
        &self,
        param: &[f32],
        grad: &[f32],
        moments: Option<(&[f32], &[f32])>,
        param_out: &mut [MaybeUninit<f32>],
        first_out: &mut [MaybeUninit<f32>],
        second_out: &mut [MaybeUninit<f32>],
    ) {
        let len = param.len();
        assert!(grad.len() == len && param_out.len() == len);
        assert!(first_out.len() == len && second_out.len() == len);
        let outputs = param_out.iter_mut().zip(first_out).zip(second_out);
        let update = |(((p_out, m_out), v_out), (p, g, m, v)): (Outputs, (f32, f32, f32, f32))| {
            let m = m * self.beta_1 + g * self.one_minus_beta_1;
            let v = v * self.beta_2 + (g * g) * self.one_minus_beta_2;
            let step = (m * self.combined_factor) / (v.sqrt() + self.epsilon);
            p_out.write(p - step * self.lr);
            m_out.write(m);
            v_out.write(v);
        };
        match moments {
            Some((first, second)) => {
                assert!(first.len() == len && second.len() == len);
                let inputs = param.iter().zip(grad).zip(first).zip(second);
                outputs
                    .zip(inputs.map(|(((p, g), m), v)| (*p, *g, *m, *v)))
                    .for_each(update);
            }
            // Zero moments: `0 · β + x` is `x` (up to the sign of a zero
            // moment), as in burn's first step.
            None => outputs
                .zip(param.iter().zip(grad).map(|(p, g)| (*p, *g, 0.0, 0.0)))
                .for_each(update),
        }
    }
}

/// One element's three outputs.
type Outputs<'a> = (
    (&'a mut MaybeUninit<f32>, &'a mut MaybeUninit<f32>),
    &'a mut MaybeUninit<f32>,
);

impl Optimizer for FusedAdam {
    type State<const D: usize> = AdamState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        match self.fused(lr, &tensor, &grad, state.as_ref()) {
            Some((tensor, state)) => (tensor, Some(state)),
            None => self.fallback.step(lr, tensor, grad, state),
        }
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        <Adam as Optimizer>::to_device(state, device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::native::devices;
    use burn::tensor::Distribution;

    /// Several steps of both optimizers on the same parameter and gradients:
    /// the parameters and moments are bit for bit burn's.
    #[test]
    fn matches_burns_adam_bit_for_bit() {
        let (device, _) = devices();
        let ours = FusedAdam::default();
        let burns = AdamConfig::new().build();
        for len in [1usize, 7, CHUNK - 1, CHUNK + 3, 3 * CHUNK + 17] {
            let mut a = Tensor::<2>::random([len, 1], Distribution::Normal(0.0, 1.0), &device);
            let mut b = a.clone();
            let (mut state_a, mut state_b) = (None, None);
            for step in 0..4 {
                let grad = Tensor::<2>::random([len, 1], Distribution::Normal(0.0, 0.1), &device);
                let lr = 1e-3 / (1.0 + step as f64);
                (a, state_a) = ours.step(lr, a, grad.clone(), state_a);
                (b, state_b) = burns.step(lr, b, grad, state_b);
            }
            let bits = |t: Tensor<2>| {
                t.into_data()
                    .try_to_vec::<f32>()
                    .unwrap()
                    .into_iter()
                    .map(f32::to_bits)
                    .collect::<Vec<_>>()
            };
            assert_eq!(bits(a), bits(b), "parameters, {len} elements");
            let (sa, sb) = (state_a.unwrap().momentum, state_b.unwrap().momentum);
            assert_eq!(sa.time, sb.time);
            assert_eq!(bits(sa.moment_1), bits(sb.moment_1), "first moment");
            assert_eq!(bits(sa.moment_2), bits(sb.moment_2), "second moment");
        }
    }

    #[test]
    fn other_dtypes_go_to_burns_adam() {
        let (device, _) = devices();
        let x = Tensor::<1>::from_floats([1.0, 2.0], &device).cast(burn::tensor::DType::F64);
        let g = Tensor::<1>::from_floats([0.5, -0.5], &device).cast(burn::tensor::DType::F64);
        assert!(FusedAdam::default().fused(1e-3, &x, &g, None).is_none());
        let (updated, state) = FusedAdam::default().step(1e-3, x, g, None);
        assert_eq!(updated.dims(), [2]);
        assert_eq!(state.unwrap().momentum.time, 1);
    }
}
