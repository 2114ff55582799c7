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
                OpsKind::Tracked(prep) => prep.finish((Arc::new(winners), g), output),
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
    let total = planes * out_plane;
    let mut output = Vec::<f32>::with_capacity(total);
    let mut winners = Vec::<u32>::with_capacity(if keep_winners { total } else { 0 });
    let per_task = g.planes_per_task();
    let pool_planes = |images: &[f32], outputs: &mut [f32], mut winners: Option<&mut [u32]>| {
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
    // Each task initialises its own part just before pooling into it (see
    // `super::filled`); the kernels then overwrite every element.
    let images = input.par_chunks(per_task * plane);
    let outputs = output.spare_capacity_mut()[..total].par_chunks_mut(per_task * out_plane);
    if keep_winners {
        images
            .zip(outputs)
            .zip(winners.spare_capacity_mut()[..total].par_chunks_mut(per_task * out_plane))
            .for_each(|((i, o), w)| {
                pool_planes(i, super::filled(o, 0.0), Some(super::filled(w, 0)))
            });
    } else {
        images
            .zip(outputs)
            .for_each(|(i, o)| pool_planes(i, super::filled(o, 0.0), None));
    }
    // SAFETY: the tasks' chunks cover the first `total` elements of both
    // vectors, and each chunk went through `filled`.
    unsafe {
        output.set_len(total);
        if keep_winners {
            winners.set_len(total);
        }
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

/// LeNet's case, 2×2 windows with stride 2, one pair of rows at a time:
/// four windows at a time in SSE registers where the target has them and
/// the row has four, otherwise one at a time.
fn pool_2x2(g: &PoolGeometry, image: &[f32], out: &mut [f32], mut winners: Option<&mut [u32]>) {
    let (w, ow) = (g.width, g.out_width());
    for (oy, out_row) in out.chunks_exact_mut(ow).enumerate() {
        let pair = &image[2 * oy * w..(2 * oy + 2) * w];
        let (top, bottom) = pair.split_at(w);
        let first = (2 * oy * w) as u32;
        let mut winner_row = winners
            .as_deref_mut()
            .map(|winners| &mut winners[oy * ow..(oy + 1) * ow]);
        let done = simd::pool_2x2_row(top, bottom, out_row, winner_row.as_deref_mut(), first);
        let windows = top[2 * done..]
            .chunks_exact(2)
            .zip(bottom[2 * done..].chunks_exact(2));
        for (i, (t, b)) in windows.enumerate().take(ow - done) {
            let ox = done + i;
            let (best, pick) = window_max([t[0], t[1], b[0], b[1]]);
            out_row[ox] = best;
            if let Some(winner_row) = winner_row.as_deref_mut() {
                winner_row[ox] = first + (pick >> 1) * w as u32 + 2 * ox as u32 + (pick & 1);
            }
        }
    }
}

/// Four 2×2 windows at a time. Why by hand: the windows' values sit in
/// alternate lanes of the input rows, and the compiler does not vectorise
/// the one-window loop across that interleaving; the scalar loop had been
/// 5 % of a LeNet training epoch.
mod simd {
    /// Pools one pair of rows in blocks of four windows (exactly as
    /// [`super::window_max`]: the first of equal values wins, a NaN wins
    /// against a number) and returns how many windows it did: all of them
    /// when there are at least four (the last block overlaps the one before
    /// it and writes the same values again), none otherwise.
    #[cfg(target_arch = "x86_64")]
    pub fn pool_2x2_row(
        top: &[f32],
        bottom: &[f32],
        out: &mut [f32],
        mut winners: Option<&mut [u32]>,
        first: u32,
    ) -> usize {
        use std::arch::x86_64::*;
        let windows = out.len();
        if windows < 4 {
            return 0;
        }
        assert!(top.len() >= 2 * windows && bottom.len() >= 2 * windows);
        assert!(winners.as_ref().is_none_or(|w| w.len() >= windows));
        let width = top.len() as u32;
        let starts = (0..windows - 4).step_by(4).chain([windows - 4]);
        // SAFETY: SSE2 is part of x86_64. A block starting at window
        // `start <= windows - 4` loads 8 values at `2 * start` of `top` and
        // `bottom` and stores 4 at `start` of `out` and `winners`, all inside
        // the lengths asserted above.
        unsafe {
            let offsets = [
                _mm_set1_epi32(0),
                _mm_set1_epi32(1),
                _mm_set1_epi32(width as i32),
                _mm_set1_epi32(width as i32 + 1),
            ];
            let lane_columns = _mm_setr_epi32(0, 2, 4, 6);
            for start in starts {
                let load =
                    |row: &[f32], half: usize| _mm_loadu_ps(row.as_ptr().add(2 * start + 4 * half));
                let (t0, t1) = (load(top, 0), load(top, 1));
                let (b0, b1) = (load(bottom, 0), load(bottom, 1));
                // Left and right columns of four windows.
                let candidates = [
                    _mm_shuffle_ps::<0b10_00_10_00>(t0, t1),
                    _mm_shuffle_ps::<0b11_01_11_01>(t0, t1),
                    _mm_shuffle_ps::<0b10_00_10_00>(b0, b1),
                    _mm_shuffle_ps::<0b11_01_11_01>(b0, b1),
                ];
                let mut best = candidates[0];
                let mut offset = offsets[0];
                for (value, at) in candidates.into_iter().zip(offsets).skip(1) {
                    let larger = _mm_cmpgt_ps(value, best);
                    let first_nan =
                        _mm_andnot_ps(_mm_cmpunord_ps(best, best), _mm_cmpunord_ps(value, value));
                    let take = _mm_or_ps(larger, first_nan);
                    best = _mm_or_ps(_mm_and_ps(take, value), _mm_andnot_ps(take, best));
                    let take = _mm_castps_si128(take);
                    offset = _mm_or_si128(_mm_and_si128(take, at), _mm_andnot_si128(take, offset));
                }
                _mm_storeu_ps(out.as_mut_ptr().add(start), best);
                if let Some(winners) = winners.as_deref_mut() {
                    let base = _mm_set1_epi32((first + 2 * start as u32) as i32);
                    let at = _mm_add_epi32(_mm_add_epi32(base, lane_columns), offset);
                    _mm_storeu_si128(winners.as_mut_ptr().add(start) as *mut __m128i, at);
                }
            }
        }
        windows
    }

    #[cfg(not(target_arch = "x86_64"))]
    pub fn pool_2x2_row(
        _: &[f32],
        _: &[f32],
        _: &mut [f32],
        _: Option<&mut [u32]>,
        _: u32,
    ) -> usize {
        0
    }
}

/// Each output gradient added to its window's winning input position.
fn backward(g: &PoolGeometry, winners: &[u32], output_grad: &[f32]) -> Vec<f32> {
    let (plane, out_plane) = (g.height * g.width, g.out_height() * g.out_width());
    let total = g.batch * g.channels * plane;
    let mut input_grad = Vec::<f32>::with_capacity(total);
    let per_task = g.planes_per_task();
    input_grad.spare_capacity_mut()[..total]
        .par_chunks_mut(per_task * plane)
        .zip(output_grad.par_chunks(per_task * out_plane))
        .zip(winners.par_chunks(per_task * out_plane))
        .for_each(|((grads, dys), winners)| {
            let grads = super::filled(grads, 0.0);
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
    // SAFETY: the chunks cover the first `total` elements, each through
    // `filled`.
    unsafe { input_grad.set_len(total) };
    input_grad
}

#[derive(Debug)]
struct MaxPoolStep;

impl Backward<Flex, 1> for MaxPoolStep {
    // `Arc<Vec<_>>`, not `Arc<[_]>`: converting the vector into a slice
    // `Arc` copied it, on the calling thread while the pool waited (0.3 % of
    // a training epoch's samples for LeNet).
    type State = (Arc<Vec<u32>>, PoolGeometry);

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

    proptest::proptest! {
        /// The 2×2 kernel (four windows at a time, then one at a time) picks
        /// the same values and winners as the general one, ties and NaNs
        /// included.
        #[test]
        fn the_2x2_kernel_matches_the_general_one(
            height in 2usize..7,
            width in 2usize..41,
            picks in proptest::collection::vec(0usize..6, 6 * 41),
        ) {
            let palette = [0.5f32, -1.0, 0.5, f32::NAN, 2.0, -0.0];
            let image: Vec<f32> = picks[..height * width].iter().map(|&i| palette[i]).collect();
            let g = PoolGeometry { batch: 1, channels: 1, height, width, kernel: [2, 2], stride: [2, 2] };
            let out_len = g.out_height() * g.out_width();
            let (mut fast, mut fast_winners) = (vec![0.0; out_len], vec![0u32; out_len]);
            let (mut general, mut general_winners) = (vec![0.0; out_len], vec![0u32; out_len]);
            pool_2x2(&g, &image, &mut fast, Some(&mut fast_winners));
            pool_any(&g, &image, &mut general, Some(&mut general_winners));
            proptest::prop_assert_eq!(format!("{fast:?}"), format!("{general:?}"));
            proptest::prop_assert_eq!(fast_winners, general_winners);
            let mut values_only = vec![0.0; out_len];
            pool_2x2(&g, &image, &mut values_only, None);
            proptest::prop_assert_eq!(format!("{values_only:?}"), format!("{general:?}"));
        }
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
