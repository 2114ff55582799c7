//! 2-D convolution on plain `f32` slices in NCHW layout: the forward pass and
//! the gradients for input, weight and bias, each as im2col plus one matrix
//! product per sample (the `gemm` crate, which burn's `flex` backend also
//! uses).
//!
//! Why by hand: burn's `flex` backend computes a convolution's input gradient
//! as a transposed convolution and its weight gradient as a convolution with
//! batch and channels swapped (a 14×14 "kernel" over 32 "images" for LeNet's
//! second layer), with transposed copies around both. On LeNet those copies
//! and gathers took more time than the matrix products themselves. Here every
//! pass is one patch matrix per sample and one product, with samples split
//! across threads and no copy of the batch.

use super::winograd;
use gemm::Parallelism;
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// The shapes of one convolution (groups 1, dilation 1, zero padding on both
/// sides of each axis).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub batch: usize,
    pub channels_in: usize,
    pub height: usize,
    pub width: usize,
    pub channels_out: usize,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
}

/// Largest patch matrix the kernels build (16 MiB of `f32`, one per worker
/// and pass). Bigger convolutions (large images with many channels) go to
/// burn's, which builds its patch matrices in tiles.
pub const MAX_PATCH_VALUES: usize = 1 << 22;

impl Geometry {
    /// `None` when the kernel does not fit the padded input, a size is zero,
    /// or the patch matrix would be over [`MAX_PATCH_VALUES`].
    pub fn checked(self) -> Option<Self> {
        let fits = |axis: usize, size: usize| {
            self.kernel[axis] > 0
                && self.stride[axis] > 0
                && size + 2 * self.padding[axis] >= self.kernel[axis]
        };
        let nonzero = self.batch > 0 && self.channels_in > 0 && self.channels_out > 0;
        if !(nonzero && fits(0, self.height) && fits(1, self.width)) {
            return None;
        }
        let patch_values = self
            .patch_rows()
            .checked_mul(self.positions())
            .filter(|&n| n <= MAX_PATCH_VALUES);
        patch_values.map(|_| self)
    }

    pub fn out_height(&self) -> usize {
        (self.height + 2 * self.padding[0] - self.kernel[0]) / self.stride[0] + 1
    }

    pub fn out_width(&self) -> usize {
        (self.width + 2 * self.padding[1] - self.kernel[1]) / self.stride[1] + 1
    }

    /// Rows of the patch matrix: one per input channel and kernel tap.
    fn patch_rows(&self) -> usize {
        self.channels_in * self.kernel[0] * self.kernel[1]
    }

    /// Columns of the patch matrix: one per output position.
    pub(super) fn positions(&self) -> usize {
        self.out_height() * self.out_width()
    }

    pub fn input_len(&self) -> usize {
        self.channels_in * self.height * self.width
    }

    pub fn output_len(&self) -> usize {
        self.channels_out * self.positions()
    }

    pub fn weight_len(&self) -> usize {
        self.channels_out * self.patch_rows()
    }

    /// A 1×1 convolution with stride 1 and no padding reads its input as the
    /// patch matrix itself.
    fn input_is_patch_matrix(&self) -> bool {
        self.kernel == [1, 1] && self.stride == [1, 1] && self.padding == [0, 0]
    }

    /// For output column `ox` and kernel column `kx`, the input column is
    /// `ox * stride + kx - padding`; returns the `ox` range where it lies
    /// inside the image.
    fn valid_columns(&self, kx: usize) -> (usize, usize) {
        let (ow, stride, pad) = (self.out_width(), self.stride[1], self.padding[1]);
        let first = pad.saturating_sub(kx).div_ceil(stride).min(ow);
        let end = (self.width + pad)
            .saturating_sub(kx)
            .div_ceil(stride)
            .min(ow);
        (first, end.max(first))
    }
}

/// A stretch of one patch-matrix row that reads the image:
/// `patches[patch + i]` is `image[image + i * step]` for `i < len`.
struct Run {
    patch: usize,
    image: usize,
    len: usize,
    step: usize,
}

/// Every [`Run`] of one sample's patch matrix, row by row; the entries
/// outside them fall on the zero padding. im2col and its adjoint both walk
/// these, so the two cannot disagree about which entry is which pixel.
fn for_each_run(g: &Geometry, mut visit: impl FnMut(Run)) {
    let (ow, positions, plane) = (g.out_width(), g.positions(), g.height * g.width);
    let mut row = 0;
    for channel in 0..g.channels_in {
        for ky in 0..g.kernel[0] {
            for kx in 0..g.kernel[1] {
                let (first, end) = g.valid_columns(kx);
                for oy in 0..g.out_height() {
                    let iy = (oy * g.stride[0] + ky).wrapping_sub(g.padding[0]);
                    if iy < g.height && end > first {
                        visit(Run {
                            patch: row * positions + oy * ow + first,
                            image: channel * plane + iy * g.width + first * g.stride[1] + kx
                                - g.padding[1],
                            len: end - first,
                            step: g.stride[1],
                        });
                    }
                }
                row += 1;
            }
        }
    }
}

/// `dst.copy_from_slice(src)` for the short rows of a patch matrix (often
/// 14 or 28 values): eight at a time in registers, the last eight
/// overlapping the block before them, where `copy_from_slice` calls
/// `memmove` for each row and the call costs more than the copy.
#[inline(always)]
fn copy_short(dst: &mut [f32], src: &[f32]) {
    assert_eq!(dst.len(), src.len());
    let len = dst.len();
    if len < 8 {
        for (d, s) in dst.iter_mut().zip(src) {
            *d = *s;
        }
        return;
    }
    let block = |at: usize| -> [f32; 8] { src[at..at + 8].try_into().expect("eight values") };
    let mut at = 0;
    while at + 8 < len {
        dst[at..at + 8].copy_from_slice(&block(at));
        at += 8;
    }
    dst[len - 8..].copy_from_slice(&block(len - 8));
}

/// `dst[i] += src[i]` for one short row.
#[inline(always)]
fn add_short(dst: &mut [f32], src: &[f32]) {
    assert_eq!(dst.len(), src.len());
    for (d, s) in dst.iter_mut().zip(src) {
        *d += s;
    }
}

/// A sample's input planes inside a zero border of the padding's width,
/// `[channels_in, height + 2·pad_y, width + 2·pad_x]`. With stride 1 every
/// patch-matrix row is then `out_height` runs of `out_width` consecutive
/// values of it: no border cases, and one fixed-length copy per run, where
/// the general path cut each run at the image's edges (for LeNet's second
/// convolution that bookkeeping, over 11,200 runs of at most 14 values per
/// sample, had cost more than the copies).
struct Padded {
    values: Vec<f32>,
    layout: Bordered,
}

/// Where things are in a [`Padded`] image.
#[derive(Clone, Copy)]
struct Bordered {
    height: usize,
    width: usize,
}

impl Padded {
    /// All zeros; [`Padded::load`] writes the interior only, so the border
    /// stays zero from sample to sample.
    fn new(g: &Geometry) -> Self {
        let (height, width) = (g.height + 2 * g.padding[0], g.width + 2 * g.padding[1]);
        Padded {
            values: vec![0.0; g.channels_in * height * width],
            layout: Bordered { height, width },
        }
    }

    fn load(&mut self, g: &Geometry, image: &[f32]) {
        for (row, pixels) in image.chunks_exact(g.width).enumerate() {
            let at = self.layout.row_start(g, row);
            copy_short(&mut self.values[at..at + g.width], pixels);
        }
    }
}

impl Bordered {
    /// Offset of the first pixel of the unpadded image's `row`-th row
    /// (counting every channel's rows in turn).
    fn row_start(self, g: &Geometry, row: usize) -> usize {
        let (channel, y) = (row / g.height, row % g.height);
        (channel * self.height + y + g.padding[0]) * self.width + g.padding[1]
    }

    /// Calls `visit(patch_offset, padded_offset)` for the start of every run
    /// of `out_width` values: patch-matrix row by row, output row by row.
    fn for_each_run(self, g: &Geometry, mut visit: impl FnMut(usize, usize)) {
        let (oh, ow) = (g.out_height(), g.out_width());
        let mut patch = 0;
        for channel in 0..g.channels_in {
            for ky in 0..g.kernel[0] {
                for kx in 0..g.kernel[1] {
                    let mut source = (channel * self.height + ky) * self.width + kx;
                    for _ in 0..oh {
                        visit(patch, source);
                        patch += ow;
                        source += self.width;
                    }
                }
            }
        }
    }
}

/// One sample's patch matrix, `[channels_in·kh·kw, oh·ow]` row-major, reused
/// from sample to sample. With stride 1 it is copied from a [`Padded`]
/// image, every entry each time. Otherwise the entries that fall on the zero
/// padding are the same for every sample of a geometry: they are zeroed
/// once, when the buffer is first needed, and [`im2col`] writes only the
/// others.
#[derive(Default)]
struct PatchMatrix {
    values: Vec<f32>,
    padded: Option<Padded>,
}

impl PatchMatrix {
    /// The patch matrix of `image` (the image itself for a plain 1×1
    /// convolution).
    fn fill<'a>(&'a mut self, g: &Geometry, image: &'a [f32]) -> &'a [f32] {
        if g.input_is_patch_matrix() {
            return image;
        }
        if self.values.is_empty() {
            self.values = vec![0.0; g.patch_rows() * g.positions()];
        }
        if g.stride == [1, 1] {
            let padded = self.padded.get_or_insert_with(|| Padded::new(g));
            padded.load(g, image);
            let ow = g.out_width();
            padded.layout.for_each_run(g, |patch, source| {
                copy_short(
                    &mut self.values[patch..patch + ow],
                    &padded.values[source..source + ow],
                )
            });
        } else {
            im2col(g, image, &mut self.values);
        }
        &self.values
    }
}

/// The adjoint of [`PatchMatrix::fill`]: adds each patch entry back onto the
/// input position it was read from. `scratch` holds the padded gradient for
/// stride 1 (kept from sample to sample).
fn patches_to_image_add(
    g: &Geometry,
    patches: &[f32],
    scratch: &mut Option<Padded>,
    image: &mut [f32],
) {
    if g.stride != [1, 1] {
        col2im_add(g, patches, image);
        return;
    }
    let padded = scratch.get_or_insert_with(|| Padded::new(g));
    padded.values.fill(0.0);
    let ow = g.out_width();
    padded.layout.for_each_run(g, |patch, target| {
        add_short(
            &mut padded.values[target..target + ow],
            &patches[patch..patch + ow],
        )
    });
    for (row, pixels) in image.chunks_exact_mut(g.width).enumerate() {
        let at = padded.layout.row_start(g, row);
        add_short(pixels, &padded.values[at..at + g.width]);
    }
}

/// Writes the entries of `patches` that read the image, for any stride; the
/// padding entries are left as they are (zero, see [`PatchMatrix`]).
fn im2col(g: &Geometry, image: &[f32], patches: &mut [f32]) {
    for_each_run(g, |run| {
        let out = &mut patches[run.patch..run.patch + run.len];
        if run.step == 1 {
            copy_short(out, &image[run.image..run.image + run.len]);
        } else {
            for (value, pixel) in out
                .iter_mut()
                .zip(image[run.image..].iter().step_by(run.step))
            {
                *value = *pixel;
            }
        }
    });
}

/// The adjoint of [`im2col`]: adds each patch entry back onto the input
/// position it was read from.
fn col2im_add(g: &Geometry, patches: &[f32], image: &mut [f32]) {
    for_each_run(g, |run| {
        let values = &patches[run.patch..run.patch + run.len];
        if run.step == 1 {
            let pixels = &mut image[run.image..run.image + run.len];
            for (pixel, value) in pixels.iter_mut().zip(values) {
                *pixel += value;
            }
        } else {
            let pixels = image[run.image..].iter_mut().step_by(run.step);
            for (pixel, value) in pixels.zip(values) {
                *pixel += value;
            }
        }
    });
}

/// A strided view of a matrix inside a slice.
#[derive(Clone, Copy)]
pub(super) struct Matrix<'a> {
    pub(super) data: &'a [f32],
    pub(super) rows: usize,
    pub(super) cols: usize,
    pub(super) row_stride: usize,
    pub(super) col_stride: usize,
}

impl<'a> Matrix<'a> {
    pub(super) fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Matrix {
            data,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    pub(super) fn transposed(self) -> Self {
        Matrix {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }

    /// Every element the strides address lies inside `data`.
    fn in_bounds(&self) -> bool {
        self.rows == 0
            || self.cols == 0
            || (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride
                < self.data.len()
    }
}

/// Where a product goes: `out[m×n]` row-major, its transpose (`out[n×m]`
/// row-major, element `(i, j)` of the product at `j * m + i`), or row-major
/// with rows `stride` values apart.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Layout {
    RowMajor,
    Transposed,
    RowStride(usize),
}

/// `out[m×n] (row-major) = (accumulate ? out : 0) + lhs · rhs`.
fn matmul(out: &mut [f32], accumulate: bool, lhs: Matrix, rhs: Matrix, parallelism: Parallelism) {
    matmul_into(out, Layout::RowMajor, accumulate, lhs, rhs, parallelism);
}

/// `out = (accumulate ? out : 0) + lhs · rhs`, `out` laid out as `layout`.
pub(super) fn matmul_into(
    out: &mut [f32],
    layout: Layout,
    accumulate: bool,
    lhs: Matrix,
    rhs: Matrix,
    parallelism: Parallelism,
) {
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    assert_eq!(rhs.rows, k, "inner dimensions");
    let (out_row_stride, out_col_stride) = match layout {
        Layout::RowMajor => (n, 1),
        Layout::Transposed => (1, m),
        Layout::RowStride(stride) => (stride, 1),
    };
    let out_view = Matrix {
        data: out,
        rows: m,
        cols: n,
        row_stride: out_row_stride,
        col_stride: out_col_stride,
    };
    assert!(out_view.in_bounds() && lhs.in_bounds() && rhs.in_bounds());
    assert!(
        out_row_stride >= n || out_col_stride >= m,
        "rows of the output overlap"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                for j in 0..n {
                    out[i * out_row_stride + j * out_col_stride] = 0.0;
                }
            }
        }
        return;
    }
    // SAFETY: the asserts above keep every address the strides reach inside
    // the three slices, no two elements of `out` share an address, and `out`
    // is borrowed mutably, so it aliases neither input.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            out_col_stride as isize,
            out_row_stride as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.data.as_ptr(),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// Samples per worker, and the parallelism left for the matrix products when
/// there are fewer samples than threads.
pub(super) fn split(batch: usize) -> (usize, Parallelism) {
    let threads = rayon::current_num_threads().max(1);
    let inner = if batch < threads && threads > 1 {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    };
    (batch.div_ceil(threads), inner)
}

/// Whether the forward product goes through a channels-last scratch matrix.
///
/// `gemm` puts the rows of its output's contiguous axis in its vector lanes,
/// sixteen at a time. Written straight into NCHW that axis is the output
/// positions, and when they are not a multiple of sixteen (LeNet's second
/// convolution has 196) the leftover rows run through an edge kernel and the
/// patch matrix is repacked for every sample. With the channels in the lanes
/// instead (a multiple of sixteen) the patch matrix is read in place and only
/// the smaller kernel is packed. Over a whole training epoch the gain was
/// within the machine's noise (docs/BENCHMARKS.md, session 11).
fn channels_last(g: &Geometry) -> bool {
    g.positions() % 16 != 0 && g.channels_out % 16 == 0
}

/// `output = conv(input, weight) + bias`, all NCHW / OIHW row-major.
pub fn forward(g: &Geometry, input: &[f32], weight: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    assert_eq!(input.len(), g.batch * g.input_len(), "input size");
    assert_eq!(weight.len(), g.weight_len(), "weight size");
    if winograd::applies(g) {
        return winograd::forward(g, input, weight, bias);
    }
    let (rows, positions) = (g.patch_rows(), g.positions());
    let total = g.batch * g.output_len();
    let mut output = Vec::<f32>::with_capacity(total);
    let (per_worker, inner) = split(g.batch);
    let kernel = Matrix::row_major(weight, g.channels_out, rows);
    // The kernel as [rows × channels_out], read in place by the
    // channels-last product.
    let kernel_t_values = channels_last(g).then(|| transpose(weight, g.channels_out, rows));
    output.spare_capacity_mut()[..total]
        .par_chunks_mut(per_worker * g.output_len())
        .zip(input.par_chunks(per_worker * g.input_len()))
        .for_each(|(outputs, images)| {
            let mut patches = PatchMatrix::default();
            let mut scratch = Vec::new();
            for (out, image) in outputs
                .chunks_exact_mut(g.output_len())
                .zip(images.chunks_exact(g.input_len()))
            {
                let rhs = Matrix::row_major(patches.fill(g, image), rows, positions);
                if let Some(kernel_t) = &kernel_t_values {
                    scratch.resize(g.output_len(), 0.0);
                    // [positions × channels_out] = patchesᵀ · kernelᵀ.
                    let kernel_t = Matrix::row_major(kernel_t, rows, g.channels_out);
                    matmul(&mut scratch, false, rhs.transposed(), kernel_t, inner);
                    write_channels_first(g, &scratch, bias, out);
                    continue;
                }
                // Initialised here, while the product below will find it in
                // the cache: with the bias, or with zeros it does not read.
                let out = match bias {
                    Some(bias) => {
                        for (plane, b) in out.chunks_exact_mut(positions).zip(bias) {
                            super::filled(plane, *b);
                        }
                        // SAFETY: the planes cover `out` (the output length
                        // is channels_out × positions, one bias per channel,
                        // checked by the caller's geometry), each just written.
                        unsafe { &mut *(out as *mut [MaybeUninit<f32>] as *mut [f32]) }
                    }
                    None => super::filled(out, 0.0),
                };
                matmul(out, bias.is_some(), kernel, rhs, inner);
            }
        });
    // SAFETY: the workers' chunks cover the first `total` elements in whole
    // samples (`total` is a multiple of the output length), and each sample
    // was initialised above.
    unsafe { output.set_len(total) };
    output
}

/// Writes one sample's `[positions × channels_out]` product into `out`
/// (`[channels_out × positions]`), adding the bias; every element of `out`
/// is written.
fn write_channels_first(
    g: &Geometry,
    product: &[f32],
    bias: Option<&[f32]>,
    out: &mut [MaybeUninit<f32>],
) {
    let (channels, positions) = (g.channels_out, g.positions());
    assert!(product.len() == channels * positions && out.len() == channels * positions);
    // Contiguous writes, strided reads: the product is small enough (50 KB
    // for LeNet) to sit in the cache, the output is not.
    for (c, plane) in out.chunks_exact_mut(positions).enumerate() {
        let b = bias.map_or(0.0, |bias| bias[c]);
        for (p, value) in plane.iter_mut().enumerate() {
            value.write(product[p * channels + c] + b);
        }
    }
}

/// Which gradients a backward pass computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    pub input: bool,
    pub weight: bool,
    pub bias: bool,
}

/// The gradients of a convolution, each present when it was asked for.
#[derive(Debug, Default)]
pub struct Gradients {
    pub input: Option<Vec<f32>>,
    pub weight: Option<Vec<f32>>,
    pub bias: Option<Vec<f32>>,
}

/// Gradients of `conv(input, weight) + bias` given the output gradient.
pub fn backward(
    g: &Geometry,
    input: &[f32],
    weight: &[f32],
    output_grad: &[f32],
    wanted: Wanted,
) -> Gradients {
    assert_eq!(input.len(), g.batch * g.input_len(), "input size");
    assert_eq!(weight.len(), g.weight_len(), "weight size");
    assert_eq!(
        output_grad.len(),
        g.batch * g.output_len(),
        "output gradient size"
    );
    if winograd::applies(g) {
        return winograd::backward(g, input, weight, output_grad, wanted);
    }
    let (rows, positions) = (g.patch_rows(), g.positions());
    let (per_worker, inner) = split(g.batch);
    let kernel_t = Matrix::row_major(weight, g.channels_out, rows).transposed();

    let (mut input_grad, total_input) = input_grad_buffer(g, wanted);
    let mut input_grad_parts = input_grad_parts(g, &mut input_grad, total_input, per_worker);

    // Each worker sums its own weight and bias gradients; they are added up
    // below, so no two threads write the same memory.
    let partial: Vec<(Vec<f32>, Vec<f32>)> = input_grad_parts
        .par_iter_mut()
        .enumerate()
        .map(|(worker, input_grad_part)| {
            let first = worker * per_worker;
            let count = per_worker.min(g.batch - first);
            // Summed transposed (patch rows × output channels): `gemm` then
            // walks the output gradient's channels in its vector lanes and
            // reads the patch matrix in place, where the row-major product
            // had it repack the whole patch matrix for every sample (1.03×
            // over a whole LeNet epoch, docs/BENCHMARKS.md, session 11).
            let mut weight_grad_t = vec![0.0f32; if wanted.weight { g.weight_len() } else { 0 }];
            let mut bias_grad = vec![0.0f32; if wanted.bias { g.channels_out } else { 0 }];
            // Buffers only for the gradients asked for: attacks want the
            // input's alone, training skips the first layer's.
            let mut patches = PatchMatrix::default();
            let patch_grads_len = if wanted.input && !g.input_is_patch_matrix() {
                rows * positions
            } else {
                0
            };
            let mut patch_grads = vec![0.0f32; patch_grads_len];
            let mut padded_grad = None;
            for sample in first..first + count {
                let image = &input[sample * g.input_len()..][..g.input_len()];
                let dy = &output_grad[sample * g.output_len()..][..g.output_len()];
                let dy_matrix = Matrix::row_major(dy, g.channels_out, positions);
                if wanted.bias {
                    for (b, plane) in bias_grad.iter_mut().zip(dy.chunks_exact(positions)) {
                        *b += sum(plane);
                    }
                }
                if wanted.weight {
                    let patches_t =
                        Matrix::row_major(patches.fill(g, image), rows, positions).transposed();
                    matmul_into(
                        &mut weight_grad_t,
                        Layout::Transposed,
                        true,
                        dy_matrix,
                        patches_t,
                        inner,
                    );
                }
                if let Some(part) = input_grad_part.as_deref_mut() {
                    let image_grad = super::filled(
                        &mut part[(sample - first) * g.input_len()..][..g.input_len()],
                        0.0,
                    );
                    if g.input_is_patch_matrix() {
                        matmul(image_grad, false, kernel_t, dy_matrix, inner);
                    } else {
                        matmul(&mut patch_grads, false, kernel_t, dy_matrix, inner);
                        patches_to_image_add(g, &patch_grads, &mut padded_grad, image_grad);
                    }
                }
            }
            (weight_grad_t, bias_grad)
        })
        .collect();
    drop(input_grad_parts);
    // SAFETY: the parts cover the first `total_input` elements, and every
    // sample of every part was initialised above (each worker's `count`
    // samples fill its part exactly).
    unsafe { input_grad.set_len(total_input) };

    let (weight_parts, bias_parts): (Vec<_>, Vec<_>) = partial.into_iter().unzip();
    Gradients {
        input: wanted.input.then_some(input_grad),
        weight: wanted
            .weight
            .then(|| transpose(&add_up(weight_parts), g.patch_rows(), g.channels_out)),
        bias: wanted.bias.then(|| add_up(bias_parts)),
    }
}

/// The uninitialised input gradient of a backward pass (empty unless it is
/// wanted) and its length.
pub(super) fn input_grad_buffer(g: &Geometry, wanted: Wanted) -> (Vec<f32>, usize) {
    let total = if wanted.input {
        g.batch * g.input_len()
    } else {
        0
    };
    (Vec::with_capacity(total), total)
}

/// Each worker's samples of the input gradient's first `total` values
/// (`None` for every worker when there are none), `per_worker` samples each.
pub(super) fn input_grad_parts<'a>(
    g: &Geometry,
    input_grad: &'a mut Vec<f32>,
    total: usize,
    per_worker: usize,
) -> Vec<Option<&'a mut [MaybeUninit<f32>]>> {
    if total == 0 {
        return (0..g.batch.div_ceil(per_worker)).map(|_| None).collect();
    }
    input_grad.spare_capacity_mut()[..total]
        .chunks_mut(per_worker * g.input_len())
        .map(Some)
        .collect()
}

/// The sum of `values` in eight interleaved partial sums, which the compiler
/// keeps in one vector register; `iter().sum()` adds one value at a time,
/// each addition waiting for the last (the bias gradient had been 2 % of a
/// LeNet training epoch).
pub(super) fn sum(values: &[f32]) -> f32 {
    let mut partial = [0.0f32; 8];
    let mut blocks = values.chunks_exact(8);
    for block in &mut blocks {
        for (p, v) in partial.iter_mut().zip(block) {
            *p += v;
        }
    }
    let tail: f32 = blocks.remainder().iter().sum();
    partial.iter().sum::<f32>() + tail
}

/// `matrix[rows×cols]` row-major, transposed into a new `cols×rows` one.
fn transpose(matrix: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    debug_assert_eq!(matrix.len(), rows * cols);
    let mut out = vec![0.0f32; matrix.len()];
    for (r, row) in matrix.chunks_exact(cols.max(1)).enumerate() {
        for (c, &v) in row.iter().enumerate() {
            out[c * rows + r] = v;
        }
    }
    out
}

/// The element-wise sum of equally long vectors (at least one).
pub(super) fn add_up(parts: Vec<Vec<f32>>) -> Vec<f32> {
    let mut parts = parts.into_iter();
    let mut total = parts.next().expect("at least one worker");
    for part in parts {
        for (t, v) in total.iter_mut().zip(&part) {
            *t += v;
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The definition, one multiply-add at a time.
    fn naive_forward(g: &Geometry, x: &[f32], w: &[f32], b: Option<&[f32]>) -> Vec<f32> {
        let (oh, ow) = (g.out_height(), g.out_width());
        let mut out = vec![0.0; g.batch * g.output_len()];
        for n in 0..g.batch {
            for o in 0..g.channels_out {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let mut acc = b.map_or(0.0, |b| b[o]) as f64;
                        for c in 0..g.channels_in {
                            for ky in 0..g.kernel[0] {
                                for kx in 0..g.kernel[1] {
                                    let iy =
                                        (oy * g.stride[0] + ky) as isize - g.padding[0] as isize;
                                    let ix =
                                        (ox * g.stride[1] + kx) as isize - g.padding[1] as isize;
                                    if iy < 0
                                        || ix < 0
                                        || iy >= g.height as isize
                                        || ix >= g.width as isize
                                    {
                                        continue;
                                    }
                                    let xi = ((n * g.channels_in + c) * g.height + iy as usize)
                                        * g.width
                                        + ix as usize;
                                    let wi = ((o * g.channels_in + c) * g.kernel[0] + ky)
                                        * g.kernel[1]
                                        + kx;
                                    acc += x[xi] as f64 * w[wi] as f64;
                                }
                            }
                        }
                        out[((n * g.channels_out + o) * oh + oy) * ow + ox] = acc as f32;
                    }
                }
            }
        }
        out
    }

    fn dot(a: &[f32], b: &[f32]) -> f64 {
        a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
    }

    fn absolute(values: &[f32]) -> Vec<f32> {
        values.iter().map(|v| v.abs()).collect()
    }

    fn values(len: usize, seed: u64) -> Vec<f32> {
        let mut state = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..len)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn geometry() -> impl Strategy<Value = Geometry> {
        (
            1usize..4,
            1usize..4,
            1usize..9,
            1usize..9,
            // 16 and 32 output channels take the channels-last forward
            // product wherever the positions are not a multiple of 16.
            prop_oneof![1usize..5, Just(16usize), Just(32usize)],
            1usize..4,
            1usize..4,
            1usize..3,
            1usize..3,
            0usize..3,
            0usize..3,
        )
            .prop_filter_map(
                "kernel fits",
                |(batch, cin, h, w, cout, kh, kw, sh, sw, ph, pw)| {
                    Geometry {
                        batch,
                        channels_in: cin,
                        height: h,
                        width: w,
                        channels_out: cout,
                        kernel: [kh, kw],
                        stride: [sh, sw],
                        padding: [ph, pw],
                    }
                    .checked()
                },
            )
    }

    /// Geometries the Winograd kernels take: 5×5, stride 1, at least eight
    /// channels each side, odd and even output sides, every padding up to 3.
    fn winograd_geometry() -> impl Strategy<Value = Geometry> {
        (
            1usize..4,
            8usize..11,
            1usize..11,
            1usize..11,
            8usize..11,
            0usize..4,
            0usize..4,
        )
            .prop_filter_map("kernel fits", |(batch, cin, h, w, cout, ph, pw)| {
                Geometry {
                    batch,
                    channels_in: cin,
                    height: h,
                    width: w,
                    channels_out: cout,
                    kernel: [5, 5],
                    stride: [1, 1],
                    padding: [ph, pw],
                }
                .checked()
            })
    }

    fn close(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(x, y)| (x - y).abs() <= 1e-4 * (1.0 + y.abs()))
    }

    fn check_forward(g: &Geometry, seed: u64, with_bias: bool) -> Result<(), TestCaseError> {
        let x = values(g.batch * g.input_len(), seed);
        let w = values(g.weight_len(), seed ^ 1);
        let b = values(g.channels_out, seed ^ 2);
        let bias = with_bias.then_some(&b[..]);
        prop_assert!(close(
            &forward(g, &x, &w, bias),
            &naive_forward(g, &x, &w, bias)
        ));
        Ok(())
    }

    /// The gradients are the adjoints of the forward map: for any output
    /// gradient `dy`, ⟨dy, conv(x, w)⟩ = ⟨dx, x⟩ = ⟨dw, w⟩ (the map is
    /// linear in each argument), and the bias gradient sums `dy`. Returns the
    /// gradients with `x`, `w` and `dy`.
    #[allow(clippy::type_complexity)]
    fn check_adjoints(
        g: &Geometry,
        seed: u64,
    ) -> Result<(Gradients, Vec<f32>, Vec<f32>, Vec<f32>), TestCaseError> {
        let x = values(g.batch * g.input_len(), seed);
        let w = values(g.weight_len(), seed ^ 1);
        let dy = values(g.batch * g.output_len(), seed ^ 3);
        let all = Wanted {
            input: true,
            weight: true,
            bias: true,
        };
        let grads = backward(g, &x, &w, &dy, all);
        let reference = dot(&dy, &naive_forward(g, &x, &w, None));
        // The inner product cancels: with random signs it can be a millionth
        // of the sum of the magnitudes of its terms, while float error grows
        // with that sum. So the tolerance follows ⟨|dy|, conv(|x|, |w|)⟩ as
        // well — at 1e-6 of it, still below the size of one average term, so
        // a gradient that drops or misplaces a product still fails.
        let magnitude = dot(
            &absolute(&dy),
            &naive_forward(g, &absolute(&x), &absolute(&w), None),
        );
        let tolerance = 1e-4 * (1.0 + reference.abs()) + 1e-6 * magnitude;
        prop_assert!((dot(grads.input.as_ref().unwrap(), &x) - reference).abs() <= tolerance);
        prop_assert!((dot(grads.weight.as_ref().unwrap(), &w) - reference).abs() <= tolerance);
        let positions = g.out_height() * g.out_width();
        for (o, got) in grads.bias.as_ref().unwrap().iter().enumerate() {
            let expected: f32 = dy
                .chunks_exact(positions)
                .skip(o)
                .step_by(g.channels_out)
                .flatten()
                .sum();
            prop_assert!((got - expected).abs() <= 1e-4 * (1.0 + expected.abs()));
        }
        Ok((grads, x, w, dy))
    }

    proptest! {
        #[test]
        fn forward_matches_the_definition(g in geometry(), seed in any::<u64>(), with_bias in any::<bool>()) {
            check_forward(&g, seed, with_bias)?;
        }

        #[test]
        fn gradients_are_the_adjoints(g in geometry(), seed in any::<u64>()) {
            check_adjoints(&g, seed)?;
        }

        #[test]
        fn winograd_forward_matches_the_definition(g in winograd_geometry(), seed in any::<u64>(), with_bias in any::<bool>()) {
            prop_assert!(winograd::applies(&g));
            check_forward(&g, seed, with_bias)?;
        }

        #[test]
        fn winograd_gradients_are_the_adjoints(g in winograd_geometry(), seed in any::<u64>()) {
            let (grads, x, w, dy) = check_adjoints(&g, seed)?;
            // Each gradient alone is the same as with the others.
            for wanted in [
                Wanted { input: true, weight: false, bias: false },
                Wanted { input: false, weight: true, bias: false },
            ] {
                let alone = backward(&g, &x, &w, &dy, wanted);
                prop_assert_eq!(alone.input.is_some(), wanted.input);
                prop_assert_eq!(alone.weight.is_some(), wanted.weight);
                prop_assert!(alone.bias.is_none());
                if let Some(dx) = alone.input {
                    prop_assert_eq!(&dx, grads.input.as_ref().unwrap());
                }
                if let Some(dw) = alone.weight {
                    prop_assert_eq!(&dw, grads.weight.as_ref().unwrap());
                }
            }
        }

        #[test]
        fn only_the_wanted_gradients_are_computed(g in geometry(), input in any::<bool>(), weight in any::<bool>()) {
            let x = values(g.batch * g.input_len(), 7);
            let w = values(g.weight_len(), 8);
            let dy = values(g.batch * g.output_len(), 9);
            let grads = backward(&g, &x, &w, &dy, Wanted { input, weight, bias: false });
            prop_assert_eq!(grads.input.is_some(), input);
            prop_assert_eq!(grads.weight.is_some(), weight);
            prop_assert!(grads.bias.is_none());
        }
    }

    /// One sample, square planes and kernel, stride 1.
    fn square(
        channels_in: usize,
        side: usize,
        channels_out: usize,
        kernel: usize,
        padding: usize,
    ) -> Geometry {
        Geometry {
            batch: 1,
            channels_in,
            height: side,
            width: side,
            channels_out,
            kernel: [kernel; 2],
            stride: [1, 1],
            padding: [padding; 2],
        }
    }

    #[test]
    fn a_patch_matrix_over_the_cap_is_refused() {
        // 224×224 planes with 64 channels and a 3×3 kernel: a 576 × 50,176
        // patch matrix, 115 MB per worker.
        let big = square(64, 224, 64, 3, 1);
        assert_eq!(big.checked(), None);
        let small = square(8, 64, 64, 3, 1);
        assert_eq!(small.checked(), Some(small));
    }

    #[test]
    fn lenets_second_layer_goes_to_winograd_and_its_first_does_not() {
        let (first, second) = (square(1, 28, 32, 5, 2), square(32, 14, 64, 5, 2));
        assert!(winograd::applies(&second) && !winograd::applies(&first));
        assert!(!winograd::applies(&square(32, 14, 64, 3, 1)));
    }

    /// Every element of an input gradient depends on the output gradient
    /// around it: a single nonzero output gradient lights up exactly the
    /// 5×5 window of inputs it reads (a tile's gradient landing one pixel
    /// off, or in a neighbour's window, fails this).
    #[test]
    fn a_single_output_gradient_reaches_its_window() {
        let g = square(8, 9, 8, 5, 2);
        let x = values(g.batch * g.input_len(), 5);
        let w: Vec<f32> = values(g.weight_len(), 6)
            .iter()
            .map(|v| v.abs() + 0.5)
            .collect();
        for (oy, ox) in [(0, 0), (4, 3), (8, 8)] {
            let mut dy = vec![0.0f32; g.output_len()];
            dy[oy * 9 + ox] = 1.0;
            let grads = backward(
                &g,
                &x,
                &w,
                &dy,
                Wanted {
                    input: true,
                    weight: false,
                    bias: false,
                },
            );
            let dx = grads.input.unwrap();
            for y in 0..9usize {
                for x in 0..9usize {
                    let inside = y.abs_diff(oy) <= 2 && x.abs_diff(ox) <= 2;
                    let value = dx[y * 9 + x];
                    assert_eq!(
                        value.abs() > 1e-3,
                        inside,
                        "({y}, {x}) from ({oy}, {ox}): {value}"
                    );
                }
            }
        }
    }

    #[test]
    fn lenets_second_layer_goes_channels_last_and_its_first_does_not() {
        let (first, second) = (square(1, 28, 32, 5, 2), square(32, 14, 64, 5, 2));
        assert!(channels_last(&second) && !channels_last(&first));
    }

    #[test]
    fn a_kernel_larger_than_the_padded_input_is_refused() {
        let g = Geometry {
            batch: 1,
            channels_in: 1,
            height: 2,
            width: 2,
            channels_out: 1,
            kernel: [5, 5],
            stride: [1, 1],
            padding: [1, 1],
        };
        assert_eq!(g.checked(), None);
        assert!(Geometry {
            padding: [2, 2],
            ..g
        }
        .checked()
        .is_some());
    }
}
