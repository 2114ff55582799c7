//! 5×5 convolutions with stride 1 by Winograd's minimal filtering
//! F(2×2, 5×5) (Lavin and Gray, "Fast Algorithms for Convolutional Neural
//! Networks", 2016): the forward pass and the gradients for input and weight.
//!
//! Why: LeNet's second convolution is nearly nine tenths of a training step's
//! multiply-adds, and im2col with one product spends 25 multiply-adds per
//! output value and input channel. F(2×2, 5×5) moves 6×6 input tiles and the
//! 5×5 filters into a transformed space where each 2×2 block of outputs costs
//! 36 products instead of 100: 2.78× fewer multiply-adds, done as 36
//! independent matrix products over the channels (one per point of the
//! transformed tile), plus transforms whose cost grows with the channels, not
//! their product. The three passes share the same transforms, transposed for
//! the gradients: with `Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A`, the input gradient is
//! `B[(G g Gᵀ) ⊙ (A dY Aᵀ)]Bᵀ` and the weight gradient
//! `Gᵀ[(A dY Aᵀ) ⊙ (Bᵀ d B)]G`, each summed over channels and tiles.
//!
//! The matrices are the Toom-Cook construction on the points 0, 1, −1, 2, −2
//! and ∞, the smallest integers there are, which keeps the float32 rounding
//! of the transforms near that of the direct sum (the tests hold both to the
//! definition within 1e-4).
//!
//! Layouts: inside a worker, images are channels-last with a zero border;
//! transformed tiles are `[tile][point][channel]`, so the matrix product for
//! one point reads every tile's row for that point at a fixed stride.

use super::conv_kernel::{
    add_up, input_grad_buffer, input_grad_parts, matmul_into, split, sum, Geometry, Gradients,
    Layout, Matrix, Wanted,
};
use rayon::prelude::*;
use std::cell::RefCell;
use std::mem::MaybeUninit;

/// Side of a transformed tile, and the number of its points.
const TILE: usize = 6;
const POINTS: usize = TILE * TILE;
/// Side of the block of outputs one tile gives.
const OUT: usize = 2;
/// Side of the filter.
const TAPS: usize = 5;

/// Below this many channels on either side, the transforms cost more than
/// the multiply-adds they save; such layers keep im2col.
const MIN_CHANNELS: usize = 8;

/// Tiles transformed and multiplied together: enough rows for the products
/// to run at the speed of their micro-kernels, few enough that a group's
/// transformed tiles stay in the core's second-level cache.
const GROUP_TILES: usize = 128;

/// `Bᵀ`: input tile to transformed tile.
const BT: [[f32; TILE]; TILE] = [
    [4.0, 0.0, -5.0, 0.0, 1.0, 0.0],
    [0.0, -4.0, -4.0, 1.0, 1.0, 0.0],
    [0.0, 4.0, -4.0, -1.0, 1.0, 0.0],
    [0.0, -2.0, -1.0, 2.0, 1.0, 0.0],
    [0.0, 2.0, -1.0, -2.0, 1.0, 0.0],
    [0.0, 4.0, 0.0, -5.0, 0.0, 1.0],
];

/// `G`: filter to transformed filter.
const G: [[f32; TAPS]; TILE] = [
    [1.0 / 4.0, 0.0, 0.0, 0.0, 0.0],
    [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
    [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
    [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0, 1.0 / 3.0, 2.0 / 3.0],
    [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0, -1.0 / 3.0, 2.0 / 3.0],
    [0.0, 0.0, 0.0, 0.0, 1.0],
];

/// `Aᵀ`: transformed product to the 2×2 outputs.
const AT: [[f32; TILE]; OUT] = [
    [1.0, 1.0, 1.0, 1.0, 1.0, 0.0],
    [0.0, 1.0, -1.0, 2.0, -2.0, 1.0],
];

const fn transposed<const R: usize, const C: usize>(m: [[f32; C]; R]) -> [[f32; R]; C] {
    let mut t = [[0.0; R]; C];
    let mut r = 0;
    while r < R {
        let mut c = 0;
        while c < C {
            t[c][r] = m[r][c];
            c += 1;
        }
        r += 1;
    }
    t
}

/// One of the transforms' matrices, as a type, so that every function it
/// passes through is compiled for it whether or not it is inlined.
trait Coefficients<const I: usize, const O: usize> {
    const M: [[f32; I]; O];

    /// `out[o] = Σᵢ M[o][i] · v[i]`, lane by lane. The transforms run once
    /// per tile override this with the products written out, so that zero
    /// coefficients cost nothing and shared sums are added once.
    #[inline(always)]
    fn apply<const W: usize>(v: &[[f32; W]; I]) -> [[f32; W]; O] {
        std::array::from_fn(|o| {
            std::array::from_fn(|l| (0..I).map(|i| Self::M[o][i] * v[i][l]).sum())
        })
    }
}

#[inline(always)]
fn add<const W: usize>(a: [f32; W], b: [f32; W]) -> [f32; W] {
    std::array::from_fn(|l| a[l] + b[l])
}

#[inline(always)]
fn sub<const W: usize>(a: [f32; W], b: [f32; W]) -> [f32; W] {
    std::array::from_fn(|l| a[l] - b[l])
}

#[inline(always)]
fn scale<const W: usize>(c: f32, a: [f32; W]) -> [f32; W] {
    a.map(|x| c * x)
}

/// `Bᵀ`: input tile to transformed tile.
struct InputTransform;

impl Coefficients<TILE, TILE> for InputTransform {
    const M: [[f32; TILE]; TILE] = BT;

    #[inline(always)]
    fn apply<const W: usize>(v: &[[f32; W]; TILE]) -> [[f32; W]; TILE] {
        let [x0, x1, x2, x3, x4, x5] = *v;
        let (x4_minus_x2, x3_minus_x1) = (sub(x4, x2), sub(x3, x1));
        [
            add(sub(scale(4.0, x0), scale(5.0, x2)), x4),
            sub(add(x3, x4), scale(4.0, add(x1, x2))),
            add(sub(x4, x3), scale(4.0, sub(x1, x2))),
            add(x4_minus_x2, scale(2.0, x3_minus_x1)),
            sub(x4_minus_x2, scale(2.0, x3_minus_x1)),
            add(sub(scale(4.0, x1), scale(5.0, x3)), x5),
        ]
    }
}

/// `B`: gradient of a transformed tile to that of the input tile.
struct InputGradient;

impl Coefficients<TILE, TILE> for InputGradient {
    const M: [[f32; TILE]; TILE] = transposed(BT);

    #[inline(always)]
    fn apply<const W: usize>(v: &[[f32; W]; TILE]) -> [[f32; W]; TILE] {
        let [x0, x1, x2, x3, x4, x5] = *v;
        [
            scale(4.0, x0),
            add(scale(4.0, add(sub(x2, x1), x5)), scale(2.0, sub(x4, x3))),
            scale(
                -1.0,
                add(add(scale(5.0, x0), scale(4.0, add(x1, x2))), add(x3, x4)),
            ),
            sub(add(sub(x1, x2), scale(2.0, sub(x3, x4))), scale(5.0, x5)),
            add(add(add(x0, x1), add(x2, x3)), x4),
            x5,
        ]
    }
}

/// `Aᵀ`: transformed product to the 2×2 outputs.
struct OutputTransform;

impl Coefficients<TILE, OUT> for OutputTransform {
    const M: [[f32; TILE]; OUT] = AT;

    #[inline(always)]
    fn apply<const W: usize>(v: &[[f32; W]; TILE]) -> [[f32; W]; OUT] {
        let [x0, x1, x2, x3, x4, x5] = *v;
        [
            add(add(add(x0, x1), add(x2, x3)), x4),
            add(add(sub(x1, x2), scale(2.0, sub(x3, x4))), x5),
        ]
    }
}

/// `A`: output gradient to the transformed product's.
struct OutputGradient;

impl Coefficients<OUT, TILE> for OutputGradient {
    const M: [[f32; OUT]; TILE] = transposed(AT);

    #[inline(always)]
    fn apply<const W: usize>(v: &[[f32; W]; OUT]) -> [[f32; W]; TILE] {
        let [x0, x1] = *v;
        let twice = scale(2.0, x1);
        [
            x0,
            add(x0, x1),
            sub(x0, x1),
            add(x0, twice),
            sub(x0, twice),
            x1,
        ]
    }
}

/// `G`: filter to transformed filter (once per call, not per tile).
struct FilterTransform;

impl Coefficients<TAPS, TILE> for FilterTransform {
    const M: [[f32; TAPS]; TILE] = G;
}

/// `Gᵀ`: transformed filter gradient to the filter's (once per call).
struct FilterGradient;

impl Coefficients<TILE, TAPS> for FilterGradient {
    const M: [[f32; TILE]; TAPS] = transposed(G);
}

/// Whether [`forward`] and [`backward`] take this convolution.
pub(super) fn applies(g: &Geometry) -> bool {
    g.kernel == [TAPS, TAPS]
        && g.stride == [1, 1]
        && g.channels_in >= MIN_CHANNELS
        && g.channels_out >= MIN_CHANNELS
}

/// Lanes combined at a time: whole arrays of this many values are what the
/// compiler reliably keeps in vector registers (one AVX-512 register, four
/// SSE ones).
const CHUNK: usize = 16;

/// `dst[o] = Σᵢ m[o][i] · src[i]` over vectors of `lanes` values, where
/// vector `i` of `src` starts at `first + i·step` and vector `o` of `dst` at
/// `dst_first + o·dst_step`.
#[inline(always)]
fn combine<M: Coefficients<I, O>, const I: usize, const O: usize>(
    src: &[f32],
    (first, step): (usize, usize),
    dst: &mut [f32],
    (dst_first, dst_step): (usize, usize),
    lanes: usize,
) {
    assert!(first + (I - 1) * step + lanes <= src.len());
    assert!(dst_first + (O - 1) * dst_step + lanes <= dst.len());
    let mut c = 0;
    while c + CHUNK <= lanes {
        let v: [[f32; CHUNK]; I] = std::array::from_fn(|i| {
            src[first + i * step + c..][..CHUNK]
                .try_into()
                .expect("a chunk")
        });
        for (o, values) in M::apply(&v).iter().enumerate() {
            dst[dst_first + o * dst_step + c..][..CHUNK].copy_from_slice(values);
        }
        c += CHUNK;
    }
    while c < lanes {
        let v: [[f32; 1]; I] = std::array::from_fn(|i| [src[first + i * step + c]]);
        for (o, value) in M::apply(&v).iter().enumerate() {
            dst[dst_first + o * dst_step + c] = value[0];
        }
        c += 1;
    }
}

/// Applies the 2-D transform `M X Mᵀ` to a square of vectors: `x` holds
/// `I×I` vectors of `lanes` values (`x[(r·I + c)·lanes..]` at row `r`,
/// column `c`, rows `row_step` vectors apart), `out` receives `O×O` vectors
/// row-major, `temp` holds `O×I` vectors.
///
/// Compiled twice: for the baseline x86-64 (SSE2, four lanes) and for
/// AVX-512, chosen at run time, as `gemm` chooses its micro-kernels. Both
/// round alike: neither contracts a multiply and an add into one.
fn transform<M: Coefficients<I, O>, const I: usize, const O: usize>(
    x: &[f32],
    row_step: usize,
    lanes: usize,
    temp: &mut [f32],
    out: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F, checked just above.
        unsafe { transform_avx512::<M, I, O>(x, row_step, lanes, temp, out) };
        return;
    }
    transform_portable::<M, I, O>(x, row_step, lanes, temp, out);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn transform_avx512<M: Coefficients<I, O>, const I: usize, const O: usize>(
    x: &[f32],
    row_step: usize,
    lanes: usize,
    temp: &mut [f32],
    out: &mut [f32],
) {
    transform_portable::<M, I, O>(x, row_step, lanes, temp, out);
}

#[inline(always)]
fn transform_portable<M: Coefficients<I, O>, const I: usize, const O: usize>(
    x: &[f32],
    row_step: usize,
    lanes: usize,
    temp: &mut [f32],
    out: &mut [f32],
) {
    // Down the columns: temp[c][o] = Σᵣ m[o][r] · x[r][c], kept column-major
    // so that each column's outputs are one block.
    for c in 0..I {
        combine::<M, I, O>(
            x,
            (c * lanes, row_step * lanes),
            temp,
            (c * O * lanes, lanes),
            lanes,
        );
    }
    // Along the rows: out[o][p] = Σ_c m[p][c] · temp[c][o].
    for o in 0..O {
        combine::<M, I, O>(
            temp,
            (o * lanes, O * lanes),
            out,
            (o * O * lanes, lanes),
            lanes,
        );
    }
}

/// Tiles of a geometry's output, and its images with the zero border the
/// tiles read.
#[derive(Clone, Copy)]
struct Tiling {
    rows: usize,
    cols: usize,
    /// Padded image side: every tile's 6×6 window lies inside.
    height: usize,
    width: usize,
}

impl Tiling {
    fn new(g: &Geometry) -> Self {
        let (rows, cols) = (g.out_height().div_ceil(OUT), g.out_width().div_ceil(OUT));
        Tiling {
            rows,
            cols,
            height: OUT * rows + TAPS - 1,
            width: OUT * cols + TAPS - 1,
        }
    }

    fn per_image(&self) -> usize {
        self.rows * self.cols
    }

    /// Images transformed together.
    fn group(&self) -> usize {
        (GROUP_TILES / self.per_image()).max(1)
    }

    fn padded_len(&self, lanes: usize) -> usize {
        self.height * self.width * lanes
    }

    /// Offset of tile `(ty, tx)`'s first vector in a padded image.
    fn window(&self, ty: usize, tx: usize, lanes: usize) -> usize {
        (OUT * ty * self.width + OUT * tx) * lanes
    }
}

/// Copies an NCHW image into the interior of a channels-last padded one
/// (whose border stays as it is: zero).
fn load_channels_last(g: &Geometry, t: &Tiling, image: &[f32], padded: &mut [f32]) {
    let lanes = g.channels_in;
    for (c, plane) in image.chunks_exact(g.height * g.width).enumerate() {
        for (y, row) in plane.chunks_exact(g.width).enumerate() {
            let start = ((y + g.padding[0]) * t.width + g.padding[1]) * lanes + c;
            for (x, value) in row.iter().enumerate() {
                padded[start + x * lanes] = *value;
            }
        }
    }
}

/// `Bᵀ d B` for every tile of `count` padded images, `[tile][point][channel]`.
fn transform_inputs(
    t: &Tiling,
    lanes: usize,
    padded: &[f32],
    count: usize,
    temp: &mut [f32],
    out: &mut [f32],
) {
    let image_len = t.padded_len(lanes);
    let mut tiles = out.chunks_exact_mut(POINTS * lanes);
    for image in padded.chunks_exact(image_len).take(count) {
        for ty in 0..t.rows {
            for tx in 0..t.cols {
                let window = &image[t.window(ty, tx, lanes)..];
                let tile = tiles.next().expect("a transformed tile per tile");
                transform::<InputTransform, TILE, TILE>(window, t.width, lanes, temp, tile);
            }
        }
    }
}

/// `G g Gᵀ` for every filter, `[point][channel_in][channel_out]`.
fn transform_weights(g: &Geometry, weight: &[f32]) -> Vec<f32> {
    let (cin, cout) = (g.channels_in, g.channels_out);
    let mut filters = vec![0.0f32; TAPS * TAPS * cout];
    let mut temp = vec![0.0f32; TILE * TAPS * cout];
    let mut points = vec![0.0f32; POINTS * cout];
    let mut u = vec![0.0f32; POINTS * cin * cout];
    for c in 0..cin {
        // The channel's filters with the output channels as lanes.
        for o in 0..cout {
            let filter = &weight[(o * cin + c) * TAPS * TAPS..][..TAPS * TAPS];
            for (tap, value) in filter.iter().enumerate() {
                filters[tap * cout + o] = *value;
            }
        }
        transform::<FilterTransform, TAPS, TILE>(&filters, TAPS, cout, &mut temp, &mut points);
        for (point, values) in points.chunks_exact(cout).enumerate() {
            u[(point * cin + c) * cout..][..cout].copy_from_slice(values);
        }
    }
    u
}

/// `Gᵀ dU G` for every filter, from `[point][channel_out][channel_in]`, as
/// OIHW weights.
fn weight_gradient(g: &Geometry, du: &[f32]) -> Vec<f32> {
    let (cin, cout) = (g.channels_in, g.channels_out);
    let mut temp = vec![0.0f32; TAPS * TILE * cin];
    let mut taps = vec![0.0f32; TAPS * TAPS * cin];
    let mut gathered = vec![0.0f32; POINTS * cin];
    let mut dw = vec![0.0f32; g.weight_len()];
    for o in 0..cout {
        for point in 0..POINTS {
            gathered[point * cin..][..cin].copy_from_slice(&du[(point * cout + o) * cin..][..cin]);
        }
        transform::<FilterGradient, TILE, TAPS>(&gathered, TILE, cin, &mut temp, &mut taps);
        for (tap, values) in taps.chunks_exact(cin).enumerate() {
            for (c, value) in values.iter().enumerate() {
                dw[(o * cin + c) * TAPS * TAPS + tap] = *value;
            }
        }
    }
    dw
}

/// `lhs[point] · rhs[point]` for each of the 36 points, into
/// `out[tile][point][..]`. `lhs` is `[tile][point][k]`.
fn products_per_point<'r>(
    out: &mut [f32],
    out_cols: usize,
    accumulate: bool,
    lhs: &[f32],
    tiles: usize,
    k: usize,
    rhs: impl Fn(usize) -> Matrix<'r>,
) {
    for point in 0..POINTS {
        let lhs = Matrix {
            data: &lhs[point * k..],
            rows: tiles,
            cols: k,
            row_stride: POINTS * k,
            col_stride: 1,
        };
        matmul_into(
            &mut out[point * out_cols..],
            Layout::RowStride(POINTS * out_cols),
            accumulate,
            lhs,
            rhs(point),
            gemm::Parallelism::None,
        );
    }
}

/// Per-worker buffers, sized for one group of images.
struct Workspace {
    /// Channels-last padded input images (their border is never written).
    padded: Vec<f32>,
    /// Transformed input tiles `[tile][point][channel_in]`.
    inputs: Vec<f32>,
    /// Products, or output-gradient tiles, `[tile][point][channel_out]`.
    products: Vec<f32>,
    temp: Vec<f32>,
    /// One tile's 2×2 or 6×6 block of vectors.
    block: Vec<f32>,
    /// One image's output gradient, channels-last, zero past the output's
    /// edge (never written there).
    output_grad: Vec<f32>,
    /// One image's input gradient, channels-last with the border.
    input_grad: Vec<f32>,
}

impl Workspace {
    fn new(g: &Geometry, t: &Tiling) -> Self {
        let lanes = g.channels_in.max(g.channels_out);
        let group_tiles = t.group() * t.per_image();
        Workspace {
            padded: vec![0.0; t.group() * t.padded_len(g.channels_in)],
            inputs: vec![0.0; group_tiles * POINTS * g.channels_in],
            products: vec![0.0; group_tiles * POINTS * g.channels_out],
            temp: vec![0.0; POINTS * lanes],
            block: vec![0.0; POINTS * lanes],
            output_grad: vec![0.0; OUT * t.rows * OUT * t.cols * g.channels_out],
            input_grad: vec![0.0; t.padded_len(g.channels_in)],
        }
    }

    /// Runs `work` with this thread's workspace for `g`'s layer, kept from
    /// call to call: a training step calls each layer twice per worker, and
    /// would otherwise allocate and zero 1.4 MB per worker (LeNet) each
    /// time. Every buffer is either written before
    /// it is read or holds zeros where it is never written, so a reused
    /// workspace computes what a fresh one does.
    fn with<R>(g: &Geometry, t: &Tiling, work: impl FnOnce(&mut Workspace) -> R) -> R {
        /// Layers whose workspaces a thread keeps (the oldest goes first).
        const KEPT: usize = 4;
        thread_local! {
            static KEPT_WORKSPACES: RefCell<Vec<(Geometry, Workspace)>> = const { RefCell::new(Vec::new()) };
        }
        let layer = Geometry { batch: 0, ..*g };
        let reused = KEPT_WORKSPACES.with(|kept| {
            let mut kept = kept.try_borrow_mut().ok()?;
            let at = kept.iter().position(|(key, _)| *key == layer)?;
            Some(kept.remove(at).1)
        });
        let mut ws = reused.unwrap_or_else(|| Workspace::new(g, t));
        let result = work(&mut ws);
        KEPT_WORKSPACES.with(|kept| {
            if let Ok(mut kept) = kept.try_borrow_mut() {
                if kept.len() == KEPT {
                    kept.remove(0);
                }
                kept.push((layer, ws));
            }
        });
        result
    }

    /// Loads `images` (NCHW) and transforms their tiles into `inputs`.
    fn transform_images(&mut self, g: &Geometry, t: &Tiling, images: &[f32]) -> usize {
        let count = images.len() / g.input_len();
        let image_len = t.padded_len(g.channels_in);
        for (image, padded) in images
            .chunks_exact(g.input_len())
            .zip(self.padded.chunks_exact_mut(image_len))
        {
            load_channels_last(g, t, image, padded);
        }
        transform_inputs(
            t,
            g.channels_in,
            &self.padded,
            count,
            &mut self.temp,
            &mut self.inputs,
        );
        count * t.per_image()
    }
}

/// `output = conv(input, weight) + bias`, all NCHW / OIHW row-major, for a
/// geometry [`applies`] accepts.
pub(super) fn forward(
    g: &Geometry,
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
) -> Vec<f32> {
    debug_assert!(applies(g));
    let t = Tiling::new(g);
    let (cin, cout) = (g.channels_in, g.channels_out);
    let u = transform_weights(g, weight);
    let total = g.batch * g.output_len();
    let mut output = Vec::<f32>::with_capacity(total);
    let (per_worker, _) = split(g.batch);
    output.spare_capacity_mut()[..total]
        .par_chunks_mut(per_worker * g.output_len())
        .zip(input.par_chunks(per_worker * g.input_len()))
        .for_each(|(outputs, images)| {
            Workspace::with(g, &t, |ws| {
                let group = t.group();
                for (outputs, images) in outputs
                    .chunks_mut(group * g.output_len())
                    .zip(images.chunks(group * g.input_len()))
                {
                    let tiles = ws.transform_images(g, &t, images);
                    products_per_point(
                        &mut ws.products,
                        cout,
                        false,
                        &ws.inputs,
                        tiles,
                        cin,
                        |p| Matrix::row_major(&u[p * cin * cout..][..cin * cout], cin, cout),
                    );
                    write_outputs(
                        g,
                        &t,
                        &ws.products,
                        &mut ws.temp,
                        &mut ws.block,
                        bias,
                        outputs,
                    );
                }
            });
        });
    // SAFETY: the workers' chunks cover the first `total` elements in whole
    // samples, and `write_outputs` writes every element of each sample.
    unsafe { output.set_len(total) };
    output
}

/// `Aᵀ M A` for every tile of a group, plus the bias, into the group's NCHW
/// outputs (every element written; the tiles' values past the output's edge
/// are dropped).
fn write_outputs(
    g: &Geometry,
    t: &Tiling,
    products: &[f32],
    temp: &mut [f32],
    block: &mut [f32],
    bias: Option<&[f32]>,
    outputs: &mut [MaybeUninit<f32>],
) {
    let (cout, oh, ow) = (g.channels_out, g.out_height(), g.out_width());
    let positions = oh * ow;
    let mut tiles = products.chunks_exact(POINTS * cout);
    for out in outputs.chunks_exact_mut(g.output_len()) {
        for ty in 0..t.rows {
            for tx in 0..t.cols {
                let tile = tiles.next().expect("a product per tile");
                transform::<OutputTransform, TILE, OUT>(tile, TILE, cout, temp, block);
                for (a, b) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                    let (y, x) = (OUT * ty + a, OUT * tx + b);
                    if y >= oh || x >= ow {
                        continue;
                    }
                    let values = &block[(a * OUT + b) * cout..][..cout];
                    let at = y * ow + x;
                    for (o, value) in values.iter().enumerate() {
                        let b = bias.map_or(0.0, |bias| bias[o]);
                        out[o * positions + at].write(value + b);
                    }
                }
            }
        }
    }
}

/// Gradients of `conv(input, weight) + bias` given the output gradient, for
/// a geometry [`applies`] accepts.
pub(super) fn backward(
    g: &Geometry,
    input: &[f32],
    weight: &[f32],
    output_grad: &[f32],
    wanted: Wanted,
) -> Gradients {
    debug_assert!(applies(g));
    let t = Tiling::new(g);
    let (cin, cout) = (g.channels_in, g.channels_out);
    let u = wanted.input.then(|| transform_weights(g, weight));
    let (per_worker, _) = split(g.batch);
    let (mut input_grad, total_input) = input_grad_buffer(g, wanted);
    let mut input_grad_parts = input_grad_parts(g, &mut input_grad, total_input, per_worker);
    // Each worker sums its own transformed weight and bias gradients; they
    // are added up below, so no two threads write the same memory.
    let partial: Vec<(Vec<f32>, Vec<f32>)> = input_grad_parts
        .par_iter_mut()
        .enumerate()
        .map(|(worker, input_grad_part)| {
            let first = worker * per_worker;
            let count = per_worker.min(g.batch - first);
            let images = &input[first * g.input_len()..][..count * g.input_len()];
            let dys = &output_grad[first * g.output_len()..][..count * g.output_len()];
            Workspace::with(g, &t, |ws| {
                let mut du = vec![
                    0.0f32;
                    if wanted.weight {
                        POINTS * cout * cin
                    } else {
                        0
                    }
                ];
                let mut bias_grad = vec![0.0f32; if wanted.bias { cout } else { 0 }];
                let group = t.group();
                for (index, (images, dys)) in images
                    .chunks(group * g.input_len())
                    .zip(dys.chunks(group * g.output_len()))
                    .enumerate()
                {
                    if wanted.bias {
                        for (plane, o) in dys.chunks_exact(g.positions()).zip((0..cout).cycle()) {
                            bias_grad[o] += sum(plane);
                        }
                    }
                    if !(wanted.weight || wanted.input) {
                        continue;
                    }
                    let tiles = transform_output_grads(g, &t, dys, ws);
                    if wanted.weight {
                        ws.transform_images(g, &t, images);
                        // dU[point] += dM[point]ᵀ · V[point], [channel_out × channel_in].
                        for point in 0..POINTS {
                            let dm = Matrix {
                                data: &ws.products[point * cout..],
                                rows: tiles,
                                cols: cout,
                                row_stride: POINTS * cout,
                                col_stride: 1,
                            };
                            let v = Matrix {
                                data: &ws.inputs[point * cin..],
                                rows: tiles,
                                cols: cin,
                                row_stride: POINTS * cin,
                                col_stride: 1,
                            };
                            matmul_into(
                                &mut du[point * cout * cin..][..cout * cin],
                                Layout::RowMajor,
                                true,
                                dm.transposed(),
                                v,
                                gemm::Parallelism::None,
                            );
                        }
                    }
                    if let (Some(part), Some(u)) = (input_grad_part.as_deref_mut(), &u) {
                        // dV[point] = dM[point] · U[point]ᵀ, into the inputs' buffer.
                        products_per_point(
                            &mut ws.inputs,
                            cin,
                            false,
                            &ws.products,
                            tiles,
                            cout,
                            |p| {
                                Matrix::row_major(&u[p * cin * cout..][..cin * cout], cin, cout)
                                    .transposed()
                            },
                        );
                        let first_image = index * group;
                        let part = &mut part[first_image * g.input_len()..][..images.len()];
                        write_input_grads(g, &t, ws, part);
                    }
                }
                (du, bias_grad)
            })
        })
        .collect();
    drop(input_grad_parts);
    // SAFETY: the parts cover the first `total_input` elements, and
    // `write_input_grads` wrote every element of every sample of each part.
    unsafe { input_grad.set_len(total_input) };
    let (du_parts, bias_parts): (Vec<_>, Vec<_>) = partial.into_iter().unzip();
    Gradients {
        input: wanted.input.then_some(input_grad),
        weight: wanted.weight.then(|| weight_gradient(g, &add_up(du_parts))),
        bias: wanted.bias.then(|| add_up(bias_parts)),
    }
}

/// `A dY Aᵀ` for every tile of a group's output gradients (NCHW), into
/// `ws.products` as `[tile][point][channel_out]`; returns the tile count.
fn transform_output_grads(g: &Geometry, t: &Tiling, dys: &[f32], ws: &mut Workspace) -> usize {
    let (cout, ow) = (g.channels_out, g.out_width());
    let width = OUT * t.cols;
    let dy_padded = &mut ws.output_grad;
    let mut tiles = ws.products.chunks_exact_mut(POINTS * cout);
    let mut count = 0;
    for dy in dys.chunks_exact(g.output_len()) {
        // Channels-last, zero past the output's edge (written once: the
        // interior is overwritten image after image).
        for (o, plane) in dy.chunks_exact(g.positions()).enumerate() {
            for (y, row) in plane.chunks_exact(ow).enumerate() {
                for (x, value) in row.iter().enumerate() {
                    dy_padded[(y * width + x) * cout + o] = *value;
                }
            }
        }
        for ty in 0..t.rows {
            for tx in 0..t.cols {
                let window = &dy_padded[(OUT * ty * width + OUT * tx) * cout..];
                let tile = tiles.next().expect("a tile buffer per tile");
                transform::<OutputGradient, OUT, TILE>(window, width, cout, &mut ws.temp, tile);
                count += 1;
            }
        }
    }
    count
}

/// `B dV Bᵀ` for every tile of a group (`ws.inputs`), each added onto its
/// 6×6 window of the image's padded gradient; the interiors go to the NCHW
/// input gradients `part` (every element written).
fn write_input_grads(g: &Geometry, t: &Tiling, ws: &mut Workspace, part: &mut [MaybeUninit<f32>]) {
    let dx_padded = &mut ws.input_grad;
    let cin = g.channels_in;
    let mut tiles = ws.inputs.chunks_exact(POINTS * cin);
    for dx in part.chunks_exact_mut(g.input_len()) {
        dx_padded.fill(0.0);
        for ty in 0..t.rows {
            for tx in 0..t.cols {
                let tile = tiles.next().expect("a transformed gradient per tile");
                transform::<InputGradient, TILE, TILE>(
                    tile,
                    TILE,
                    cin,
                    &mut ws.temp,
                    &mut ws.block,
                );
                let window = t.window(ty, tx, cin);
                for (row, values) in ws.block[..POINTS * cin]
                    .chunks_exact(TILE * cin)
                    .enumerate()
                {
                    let at = window + row * t.width * cin;
                    for (d, v) in dx_padded[at..at + TILE * cin].iter_mut().zip(values) {
                        *d += v;
                    }
                }
            }
        }
        for (c, plane) in dx.chunks_exact_mut(g.height * g.width).enumerate() {
            for (y, row) in plane.chunks_exact_mut(g.width).enumerate() {
                let start = ((y + g.padding[0]) * t.width + g.padding[1]) * cin + c;
                for (x, value) in row.iter_mut().enumerate() {
                    value.write(dx_padded[start + x * cin]);
                }
            }
        }
    }
}
