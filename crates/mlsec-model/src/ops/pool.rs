//! Max pooling without padding on mlsec's own kernel: one pass over each
//! channel plane that keeps the winning position of every window, and a
//! backward step that adds each output gradient to that position.

use super::{flex_tensor, operand, values, Operand, Tracked};
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::Flex;
use burn::nn::pool::MaxPool2d;
use burn::nn::PaddingConfig2d;
use burn::prelude::*;
use burn::tensor::ops::MaxPoolOptions;
use rayon::prelude::*;
use std::sync::Arc;

/// `layer.forward(x)`, on mlsec's kernel where it applies (no padding, no
/// dilation, floor mode; otherwise burn's).
pub fn max_pool2d(layer: &MaxPool2d, x: Tensor<4>) -> Tensor<4> {
    own_layer(layer, &x).unwrap_or_else(|| layer.forward(x))
}

/// burn's `module::max_pool2d`, on mlsec's kernel where it applies (the ONNX
/// interpreter's `MaxPool`).
pub fn max_pool2d_with(x: Tensor<4>, options: MaxPoolOptions<2>) -> Tensor<4> {
    match own_max_pool2d(&x, &options) {
        Some(output) => output,
        None => burn::tensor::module::max_pool2d(x, options),
    }
}

fn own_layer(layer: &MaxPool2d, x: &Tensor<4>) -> Option<Tensor<4>> {
    let padding = match layer.padding {
        PaddingConfig2d::Valid => [(0, 0); 2],
        PaddingConfig2d::Explicit(top, left, bottom, right) => [(top, bottom), (left, right)],
        PaddingConfig2d::Same => return None,
    };
    let options = MaxPoolOptions {
        kernel_size: layer.kernel_size,
        stride: layer.stride,
        padding,
        dilation: layer.dilation,
        ceil_mode: layer.ceil_mode,
    };
    own_max_pool2d(x, &options)
}

fn own_max_pool2d(x: &Tensor<4>, options: &MaxPoolOptions<2>) -> Option<Tensor<4>> {
    if options.padding != [(0, 0); 2] || options.dilation != [1, 1] || options.ceil_mode {
        return None;
    }
    let [batch, channels, height, width] = x.dims();
    let g = PoolGeometry {
        batch,
        channels,
        height,
        width,
        kernel: options.kernel_size,
        stride: options.stride,
    }
    .checked()?;
    match operand(x)? {
        Operand::Plain(x) => {
            let (output, _) = forward(&g, &values(&x), false);
            Some(Tensor::from_primitive::<Flex>(flex_tensor(
                output,
                g.output_shape(),
            )))
        }
        Operand::Tracked(x) => {
            let (output, winners) = forward(&g, &values(x.primitive()), true);
            let output = flex_tensor(output, g.output_shape());
            let output = match MaxPoolStep
                .prepare::<NoCheckpointing>([x.node()])
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(prep) => prep.finish((Arc::from(winners), g), output),
                OpsKind::UnTracked(prep) => prep.finish(output),
            };
            Some(Tensor::from_primitive::<Tracked>(output))
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PoolGeometry {
    batch: usize,
    channels: usize,
    height: usize,
    width: usize,
    kernel: [usize; 2],
    stride: [usize; 2],
}

impl PoolGeometry {
    fn checked(self) -> Option<Self> {
        let fits = self.kernel[0] > 0
            && self.kernel[1] > 0
            && self.stride[0] > 0
            && self.stride[1] > 0
            && self.height >= self.kernel[0]
            && self.width >= self.kernel[1]
            && self.batch * self.channels > 0
            // Winning positions are stored as u32 offsets inside a plane.
            && self.height * self.width <= u32::MAX as usize;
        fits.then_some(self)
    }

    fn out_height(&self) -> usize {
        (self.height - self.kernel[0]) / self.stride[0] + 1
    }

    fn out_width(&self) -> usize {
        (self.width - self.kernel[1]) / self.stride[1] + 1
    }

    fn output_shape(&self) -> [usize; 4] {
        [
            self.batch,
            self.channels,
            self.out_height(),
            self.out_width(),
        ]
    }

    /// Channel planes per parallel task: enough work to pay for the task.
    fn planes_per_task(&self) -> usize {
        (16_384 / (self.height * self.width)).max(1)
    }
}

/// The pooled values and, when `keep_winners`, each window's winning offset
/// inside its plane. A NaN wins its window, as in burn.
fn forward(g: &PoolGeometry, input: &[f32], keep_winners: bool) -> (Vec<f32>, Vec<u32>) {
    let (plane, out_plane) = (g.height * g.width, g.out_height() * g.out_width());
    let planes = g.batch * g.channels;
    let mut output = super::zeros::<f32>(planes * out_plane);
    let mut winners = super::zeros::<u32>(if keep_winners { planes * out_plane } else { 0 });
    let per_task = g.planes_per_task();
    let pool_planes = |(images, outputs, mut winners): (&[f32], &mut [f32], Option<&mut [u32]>)| {
        for (p, (image, out)) in images
            .chunks_exact(plane)
            .zip(outputs.chunks_exact_mut(out_plane))
            .enumerate()
        {
            let winners = winners
                .as_deref_mut()
                .map(|w| &mut w[p * out_plane..(p + 1) * out_plane]);
            if g.kernel == [2, 2] && g.stride == [2, 2] {
                pool_2x2(g, image, out, winners);
            } else {
                pool_any(g, image, out, winners);
            }
        }
    };
    let images = input.par_chunks(per_task * plane);
    let outputs = output.par_chunks_mut(per_task * out_plane);
    if keep_winners {
        images
            .zip(outputs)
            .zip(winners.par_chunks_mut(per_task * out_plane))
            .for_each(|((i, o), w)| pool_planes((i, o, Some(w))));
    } else {
        images
            .zip(outputs)
            .for_each(|(i, o)| pool_planes((i, o, None)));
    }
    (output, winners)
}

/// Whether `value` replaces the window's best so far: it is larger, or it is
/// the window's first NaN (a NaN, once in, stays). Written without branches
/// because on real activations the outcome is a coin toss.
#[inline(always)]
fn wins(value: f32, best: f32) -> bool {
    (value > best) | (value.is_nan() & !best.is_nan())
}

fn pool_any(g: &PoolGeometry, image: &[f32], out: &mut [f32], mut winners: Option<&mut [u32]>) {
    for oy in 0..g.out_height() {
        for ox in 0..g.out_width() {
            let (y0, x0) = (oy * g.stride[0], ox * g.stride[1]);
            let mut best = f32::NEG_INFINITY;
            let mut at = y0 * g.width + x0;
            for y in y0..y0 + g.kernel[0] {
                for x in x0..x0 + g.kernel[1] {
                    let v = image[y * g.width + x];
                    if wins(v, best) {
                        best = v;
                        at = y * g.width + x;
                    }
                }
            }
            let o = oy * g.out_width() + ox;
            out[o] = best;
            if let Some(winners) = winners.as_deref_mut() {
                winners[o] = at as u32;
            }
        }
    }
}

/// The largest of a 2×2 window (top left, top right, bottom left, bottom
/// right) and which of the four it is.
#[inline(always)]
fn window_max(candidates: [f32; 4]) -> (f32, u32) {
    let (mut best, mut pick) = (candidates[0], 0u32);
    for (i, v) in candidates.into_iter().enumerate().skip(1) {
        let take = wins(v, best);
        best = if take { v } else { best };
        pick = if take { i as u32 } else { pick };
    }
    (best, pick)
}

/// LeNet's case, 2×2 windows with stride 2, one pair of rows at a time.
fn pool_2x2(g: &PoolGeometry, image: &[f32], out: &mut [f32], winners: Option<&mut [u32]>) {
    let (w, ow) = (g.width, g.out_width());
    let row_pair = |oy: usize| {
        let pair = &image[2 * oy * w..(2 * oy + 2) * w];
        let (top, bottom) = pair.split_at(w);
        (top.chunks_exact(2), bottom.chunks_exact(2))
    };
    let rows = out.chunks_exact_mut(ow).enumerate();
    match winners {
        None => {
            for (oy, out_row) in rows {
                let (top, bottom) = row_pair(oy);
                for ((slot, t), b) in out_row.iter_mut().zip(top).zip(bottom) {
                    *slot = window_max([t[0], t[1], b[0], b[1]]).0;
                }
            }
        }
        Some(winners) => {
            for ((oy, out_row), winner_row) in rows.zip(winners.chunks_exact_mut(ow)) {
                let (top, bottom) = row_pair(oy);
                let first = (2 * oy * w) as u32;
                let windows = out_row.iter_mut().zip(winner_row).zip(top.zip(bottom));
                for (x, ((slot, winner), (t, b))) in (0u32..).step_by(2).zip(windows) {
                    let (best, pick) = window_max([t[0], t[1], b[0], b[1]]);
                    *slot = best;
                    *winner = first + (pick >> 1) * w as u32 + x + (pick & 1);
                }
            }
        }
    }
}

/// Each output gradient added to its window's winning input position.
fn backward(g: &PoolGeometry, winners: &[u32], output_grad: &[f32]) -> Vec<f32> {
    let (plane, out_plane) = (g.height * g.width, g.out_height() * g.out_width());
    let mut input_grad = super::zeros::<f32>(g.batch * g.channels * plane);
    let per_task = g.planes_per_task();
    input_grad
        .par_chunks_mut(per_task * plane)
        .zip(output_grad.par_chunks(per_task * out_plane))
        .zip(winners.par_chunks(per_task * out_plane))
        .for_each(|((grads, dys), winners)| {
            for ((grad, dy), winners) in grads
                .chunks_exact_mut(plane)
                .zip(dys.chunks_exact(out_plane))
                .zip(winners.chunks_exact(out_plane))
            {
                for (d, &at) in dy.iter().zip(winners) {
                    grad[at as usize] += d;
                }
            }
        });
    input_grad
}

#[derive(Debug)]
struct MaxPoolStep;

impl Backward<Flex, 1> for MaxPoolStep {
    type State = (Arc<[u32]>, PoolGeometry);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let output_grad = grads.consume::<Flex>(&ops.node);
        let [Some(parent)] = ops.parents else {
            return;
        };
        let (winners, g) = ops.state;
        let input_grad = backward(&g, &winners, &values(&output_grad));
        let shape = [g.batch, g.channels, g.height, g.width];
        grads.register::<Flex>(parent.id, flex_tensor(input_grad, shape));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::native::devices;
    use burn::nn::pool::MaxPool2dConfig;
    use burn::tensor::{Distribution, TensorData, Tolerance};

    const CASES: [([usize; 2], [usize; 2]); 4] = [
        ([2, 2], [2, 2]),
        ([3, 3], [2, 2]),
        ([2, 3], [1, 2]),
        ([2, 2], [1, 1]),
    ];

    fn pools() -> impl Iterator<Item = MaxPool2d> {
        CASES
            .into_iter()
            .map(|(kernel, stride)| MaxPool2dConfig::new(kernel).with_strides(stride).init())
    }

    #[test]
    fn plain_pooling_matches_burn() {
        let (device, _) = devices();
        for pool in pools() {
            let x = Tensor::<4>::random([3, 4, 9, 8], Distribution::Uniform(-1.0, 1.0), &device);
            let ours = own_layer(&pool, &x).expect("mlsec's kernel");
            ours.into_data()
                .assert_approx_eq::<f32>(&pool.forward(x).into_data(), Tolerance::absolute(0.0));
        }
    }

    #[test]
    fn nans_pool_as_in_burn() {
        let (device, _) = devices();
        let image = [1.0, f32::NAN, 5.0, 6.0, 3.0, 4.0, f32::NAN, f32::NAN];
        let x = Tensor::<4>::from_data(TensorData::new(image.to_vec(), [1, 1, 2, 4]), &device);
        for pool in pools().take(1).chain([MaxPool2dConfig::new([1, 2]).init()]) {
            let ours = own_layer(&pool, &x).expect("mlsec's kernel").into_data();
            let burns = pool.forward(x.clone()).into_data();
            let (ours, burns) = (
                ours.try_to_vec::<f32>().unwrap(),
                burns.try_to_vec::<f32>().unwrap(),
            );
            assert_eq!(format!("{ours:?}"), format!("{burns:?}"));
        }
    }

    #[test]
    fn tracked_gradient_matches_burn() {
        let (_, device) = devices();
        for pool in pools() {
            let x = Tensor::<4>::random([3, 4, 9, 8], Distribution::Uniform(-1.0, 1.0), &device)
                .require_grad();
            let gradient = |y: Tensor<4>| {
                let weights = y.clone().detach().cos();
                x.grad(&(y * weights).sum().backward())
                    .expect("input gradient")
            };
            let ours = gradient(own_layer(&pool, &x).expect("mlsec's kernel"));
            let burns = gradient(pool.forward(x.clone()));
            ours.into_data()
                .assert_approx_eq::<f32>(&burns.into_data(), Tolerance::absolute(1e-6));
        }
    }

    #[test]
    fn a_nan_wins_its_window_on_both_paths() {
        let image = [1.0, f32::NAN, 5.0, 6.0, 3.0, f32::NAN, 7.0, 8.0];
        for kernel in [[2, 2], [1, 2]] {
            let g = PoolGeometry {
                batch: 1,
                channels: 1,
                height: 2,
                width: 4,
                kernel,
                stride: [2, 2],
            };
            let (out, winners) = forward(&g, &image, true);
            assert!(out[0].is_nan(), "{kernel:?}");
            assert_eq!(winners[0], 1, "the first NaN, {kernel:?}");
        }
        let g = PoolGeometry {
            batch: 1,
            channels: 1,
            height: 2,
            width: 4,
            kernel: [2, 2],
            stride: [2, 2],
        };
        assert_eq!(forward(&g, &image, true).1[1], 7);
    }

    #[test]
    fn padded_dilated_or_ceil_mode_pools_fall_back_to_burn() {
        let (device, _) = devices();
        let x = Tensor::<4>::random([1, 2, 7, 7], Distribution::Uniform(-1.0, 1.0), &device);
        let padded = MaxPool2dConfig::new([2, 2])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init();
        let dilated = MaxPool2dConfig::new([2, 2]).with_dilation([2, 2]).init();
        let ceil = MaxPool2dConfig::new([2, 2]).with_ceil_mode(true).init();
        for pool in [padded, dilated, ceil] {
            assert!(own_layer(&pool, &x).is_none());
            assert_eq!(
                max_pool2d(&pool, x.clone()).dims(),
                pool.forward(x.clone()).dims()
            );
        }
    }
}
