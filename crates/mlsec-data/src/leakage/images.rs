//! Near-duplicate images across splits. Perceptual hashes (aHash, pHash)
//! reduce an image to 64 bits of low-frequency structure; on small images
//! of one kind — MNIST digits — every "1" gets nearly the same hash, so
//! they either miss edited copies or match unrelated images. Here each
//! image is standardised (zero mean, unit variance: brightness and contrast
//! changes vanish), candidates come from a coarse 4×4-pooled descriptor
//! compared by cosine, and each candidate is verified by the normalised
//! cross-correlation at full resolution, maximised over shifts of up to one
//! pixel — so a shifted, brightened or JPEG-re-encoded copy still matches,
//! and a merely similar digit does not.

use crate::array::NdArray;

#[derive(Debug, Clone)]
pub struct Images {
    pub width: usize,
    pub height: usize,
    /// n × height × width grey values, row by row.
    pub pixels: Vec<f32>,
    pub n: usize,
}

#[derive(Debug, Clone, Copy)]
pub struct ImageParams {
    /// Verified when the shifted normalised cross-correlation reaches this.
    pub threshold: f64,
    /// Candidates: cosine of the pooled descriptors at least this.
    pub coarse: f64,
    /// Largest shift tried, in pixels.
    pub max_shift: usize,
}

impl Default for ImageParams {
    fn default() -> Self {
        ImageParams {
            threshold: 0.99,
            coarse: 0.85,
            max_shift: 1,
        }
    }
}

impl Images {
    fn from_array(a: &NdArray, rows: Option<&[usize]>) -> Result<Images, String> {
        let shape = &a.shape;
        let (h, w) = image_size(shape)?;
        let per = h * w;
        let all: Vec<usize> = (0..shape[0]).collect();
        let rows = rows.unwrap_or(&all);
        let mut pixels = Vec::with_capacity(rows.len() * per);
        for &r in rows {
            for k in 0..per {
                pixels.push(a.get_f64(r * per + k) as f32);
            }
        }
        Ok(Images {
            width: w,
            height: h,
            pixels,
            n: rows.len(),
        })
    }

    /// `mnist`, `mnist:train`, `mnist:test` (the bundled sample and its fixed
    /// split), an NPY array, an IDX file, or a folder of PNG/JPEG images.
    pub fn load(spec: &str) -> Result<Images, String> {
        if let Some(part) = spec.strip_prefix("mnist") {
            if !std::path::Path::new(spec).exists() {
                let m = crate::mnist::load().map_err(|e| e.to_string())?;
                let split = m.split();
                let rows = match part {
                    "" => None,
                    ":train" => Some(split.train),
                    ":test" => Some(split.test),
                    _ => {
                        return Err(format!(
                            "`{spec}`: expected mnist, mnist:train or mnist:test"
                        ))
                    }
                };
                return Self::from_array(&m.images, rows.as_deref());
            }
        }
        let path = std::path::Path::new(spec);
        if path.is_dir() {
            return Self::from_folder(path);
        }
        let bytes = std::fs::read(path).map_err(|e| format!("{spec}: {e}"))?;
        if bytes.starts_with(b"\x93NUMPY") {
            let f = crate::npy::parse(&bytes).map_err(|e| format!("{spec}: {e}"))?;
            return Self::from_array(&f.array, None).map_err(|e| format!("{spec}: {e}"));
        }
        let idx = if bytes.starts_with(&[0x1f, 0x8b]) {
            crate::idx::parse_gzip(&bytes, 8 << 30)
        } else {
            crate::idx::parse(&bytes)
        }
        .map_err(|e| format!("{spec}: not an image array (NPY, IDX) or folder: {e}"))?;
        Self::from_array(&idx.array, None).map_err(|e| format!("{spec}: {e}"))
    }

    fn from_folder(root: &std::path::Path) -> Result<Images, String> {
        let files = list_folder(root)?;
        let mut out = Images::empty(0, 0);
        for f in &files {
            out.push_file(f)?;
        }
        Ok(out)
    }

    fn empty(width: usize, height: usize) -> Images {
        Images {
            width,
            height,
            pixels: Vec::new(),
            n: 0,
        }
    }

    /// Decodes one image file (as grey levels) onto the end; the first
    /// image fixes the size.
    fn push_file(&mut self, f: &std::path::Path) -> Result<(), String> {
        let img = image::open(f)
            .map_err(|e| format!("{}: {e}", f.display()))?
            .to_luma8();
        let (w, h) = (img.width() as usize, img.height() as usize);
        if self.n == 0 && self.width == 0 {
            (self.width, self.height) = (w, h);
        } else if (w, h) != (self.width, self.height) {
            return Err(format!(
                "{}: {w}×{h}, the other images are {}×{}",
                f.display(),
                self.width,
                self.height
            ));
        }
        self.pixels
            .extend(img.into_raw().into_iter().map(f32::from));
        self.n += 1;
        Ok(())
    }

    fn image(&self, i: usize) -> &[f32] {
        let per = self.width * self.height;
        &self.pixels[i * per..(i + 1) * per]
    }
}

/// The PNG and JPEG files under `root`, sorted.
fn list_folder(root: &std::path::Path) -> Result<Vec<std::path::PathBuf>, String> {
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)
            .map_err(|e| format!("{}: {e}", d.display()))?
            .flatten()
        {
            let p = e.path();
            let Ok(ty) = e.file_type() else { continue };
            if ty.is_dir() {
                stack.push(p);
            } else if ty.is_file() {
                let ext = p
                    .extension()
                    .map(|x| x.to_string_lossy().to_ascii_lowercase());
                if matches!(ext.as_deref(), Some("png" | "jpg" | "jpeg")) {
                    files.push(p);
                }
            }
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(format!("{}: no PNG or JPEG images", root.display()));
    }
    Ok(files)
}

/// A split of images read a chunk at a time, so that the training split of
/// an image audit may be larger than memory: a folder is decoded `chunk`
/// files at a time and an NPY array read `chunk` rows at a time; the
/// bundled MNIST and IDX files (small, often compressed) come whole.
pub struct ImageChunks {
    source: ChunkSource,
    chunk: usize,
}

enum ChunkSource {
    Whole(Option<Images>),
    Folder {
        files: Vec<std::path::PathBuf>,
        next: usize,
        size: (usize, usize),
    },
    Npy {
        rows: crate::stream::FrameChunks,
        size: (usize, usize),
    },
}

impl ImageChunks {
    /// Opens `spec` as [`Images::load`] reads it, `chunk` images at a time.
    pub fn open(spec: &str, chunk: usize) -> Result<ImageChunks, String> {
        let chunk = chunk.max(1);
        let path = std::path::Path::new(spec);
        let source = if path.is_dir() {
            ChunkSource::Folder {
                files: list_folder(path)?,
                next: 0,
                size: (0, 0),
            }
        } else if let Some(size) = if path.is_file() {
            npy_image_size(path)?
        } else {
            // `mnist…` or a missing file: `Images::load` says which.
            None
        } {
            let opts = crate::stream::ChunkOptions {
                rows: chunk,
                ..Default::default()
            };
            let rows =
                crate::stream::FrameChunks::open(spec, None, opts).map_err(|e| e.to_string())?;
            ChunkSource::Npy { rows, size }
        } else {
            ChunkSource::Whole(Some(Images::load(spec)?))
        };
        Ok(ImageChunks { source, chunk })
    }

    fn next_chunk(&mut self) -> Result<Option<Images>, String> {
        match &mut self.source {
            ChunkSource::Whole(images) => Ok(images.take()),
            ChunkSource::Folder { files, next, size } => {
                if *next >= files.len() {
                    return Ok(None);
                }
                let mut out = Images::empty(size.0, size.1);
                for f in &files[*next..(*next + self.chunk).min(files.len())] {
                    out.push_file(f)?;
                }
                *next += out.n;
                *size = (out.width, out.height);
                Ok(Some(out))
            }
            ChunkSource::Npy { rows, size } => {
                let Some(frame) = rows.next().transpose().map_err(|e| e.to_string())? else {
                    return Ok(None);
                };
                let (w, h) = *size;
                let mut out = Images::empty(w, h);
                out.pixels.reserve(frame.rows * w * h);
                for r in 0..frame.rows {
                    out.pixels
                        .extend(frame.columns.iter().map(|column| column[r] as f32));
                }
                out.n = frame.rows;
                Ok(Some(out))
            }
        }
    }
}

impl Iterator for ImageChunks {
    type Item = Result<Images, String>;

    fn next(&mut self) -> Option<Self::Item> {
        let next = self.next_chunk();
        if next.is_err() {
            // One error ends the split: later chunks would not line up.
            self.source = ChunkSource::Whole(None);
        }
        next.transpose()
    }
}

/// A split of images in blocks of about `budget` bytes of search state
/// each (see [`NearDuplicateSearch::bytes_per_test_image`]), read a chunk
/// of [`ImageBlocks::READ`] images at a time: the test split of an image
/// audit larger than memory, held one block at a time. A block holds at
/// least one chunk.
pub struct ImageBlocks {
    chunks: ImageChunks,
    budget: usize,
    max_shift: usize,
    done: bool,
}

impl ImageBlocks {
    /// Images read at a time.
    pub const READ: usize = 256;

    pub fn open(spec: &str, budget: usize, max_shift: usize) -> Result<ImageBlocks, String> {
        Ok(ImageBlocks {
            chunks: ImageChunks::open(spec, Self::READ)?,
            budget,
            max_shift,
            done: false,
        })
    }
}

impl Iterator for ImageBlocks {
    type Item = Result<Images, String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let mut block: Option<Images> = None;
        loop {
            match self.chunks.next() {
                None => {
                    self.done = true;
                    return block.map(Ok);
                }
                Some(Err(e)) => {
                    self.done = true;
                    return Some(Err(e));
                }
                Some(Ok(chunk)) => {
                    let block =
                        block.get_or_insert_with(|| Images::empty(chunk.width, chunk.height));
                    block.pixels.extend(chunk.pixels);
                    block.n += chunk.n;
                    let cost = NearDuplicateSearch::bytes_per_test_image(
                        block.width,
                        block.height,
                        self.max_shift,
                    );
                    if block.n.saturating_mul(cost) >= self.budget {
                        break;
                    }
                }
            }
        }
        block.map(Ok)
    }
}

/// The (width, height) of an NPY file of images (N×H×W or N×H×W×1), or
/// `None` when the file is not NPY.
fn npy_image_size(path: &std::path::Path) -> Result<Option<(usize, usize)>, String> {
    use std::io::Read;
    let shown = path.display();
    let mut head = Vec::new();
    std::fs::File::open(path)
        .map_err(|e| format!("{shown}: {e}"))?
        .take((crate::npy::MAX_HEADER_LEN + 16) as u64)
        .read_to_end(&mut head)
        .map_err(|e| format!("{shown}: {e}"))?;
    if !head.starts_with(b"\x93NUMPY") {
        return Ok(None);
    }
    let header = crate::npy::parse_header(&head).map_err(|e| format!("{shown}: {e}"))?;
    image_size(&header.shape)
        .map(|(h, w)| Some((w, h)))
        .map_err(|e| format!("{shown}: {e}"))
}

/// (height, width) of an image array's shape.
fn image_size(shape: &[usize]) -> Result<(usize, usize), String> {
    let size = match shape.len() {
        3 => (shape[1], shape[2]),
        4 if shape[3] == 1 => (shape[1], shape[2]),
        _ => {
            return Err(format!(
                "expected images as N×H×W (or N×H×W×1), got shape {shape:?}"
            ))
        }
    };
    if size.0 == 0 || size.1 == 0 {
        return Err(format!("images of shape {shape:?} have no pixels"));
    }
    Ok(size)
}

/// Zero mean, unit norm (so a dot product is a correlation).
fn standardise(v: &[f32]) -> Vec<f32> {
    let n = v.len() as f32;
    let mean = v.iter().sum::<f32>() / n;
    let mut out: Vec<f32> = v.iter().map(|x| x - mean).collect();
    let norm = out.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        out.iter_mut().for_each(|x| *x /= norm);
    }
    out
}

/// A 3×3 box blur (so that a one-pixel shift moves little mass between
/// pooling cells), then 4×4 average pooling, standardised.
fn descriptor(img: &[f32], w: usize, h: usize) -> Vec<f32> {
    let mut blurred = vec![0.0f32; w * h];
    for y in 0..h {
        for x in 0..w {
            let mut s = 0.0;
            for yy in y.saturating_sub(1)..(y + 2).min(h) {
                for xx in x.saturating_sub(1)..(x + 2).min(w) {
                    s += img[yy * w + xx];
                }
            }
            blurred[y * w + x] = s;
        }
    }
    let (pw, ph) = (w.div_ceil(4), h.div_ceil(4));
    let mut d = vec![0.0f32; pw * ph];
    for y in 0..h {
        for x in 0..w {
            d[(y / 4) * pw + x / 4] += blurred[y * w + x];
        }
    }
    standardise(&d)
}

/// The descriptors of an image moved by each shift (pixels moved in from
/// outside keep the image's own value there).
fn shifted_descriptors(
    img: &[f32],
    w: usize,
    h: usize,
    shifts: &[(isize, isize)],
) -> Vec<Vec<f32>> {
    shifts
        .iter()
        .map(|&(dy, dx)| {
            let shifted: Vec<f32> = (0..w * h)
                .map(|k| {
                    let (x, y) = ((k % w) as isize + dx, (k / w) as isize + dy);
                    if x < 0 || y < 0 || x >= w as isize || y >= h as isize {
                        img[k]
                    } else {
                        img[y as usize * w + x as usize]
                    }
                })
                .collect();
            descriptor(&shifted, w, h)
        })
        .collect()
}

/// The largest normalised cross-correlation of `a` and `b` over shifts of
/// up to `s` pixels, each computed on the overlap.
fn shifted_ncc(a: &[f32], b: &[f32], w: usize, h: usize, s: usize) -> f64 {
    let s = s as isize;
    let mut best = f64::NEG_INFINITY;
    for dy in -s..=s {
        for dx in -s..=s {
            let (mut sa, mut sb, mut saa, mut sbb, mut sab, mut n) =
                (0.0f64, 0.0, 0.0, 0.0, 0.0, 0.0);
            for y in 0..h as isize {
                let yb = y + dy;
                if yb < 0 || yb >= h as isize {
                    continue;
                }
                for x in 0..w as isize {
                    let xb = x + dx;
                    if xb < 0 || xb >= w as isize {
                        continue;
                    }
                    let va = f64::from(a[y as usize * w + x as usize]);
                    let vb = f64::from(b[yb as usize * w + xb as usize]);
                    sa += va;
                    sb += vb;
                    saa += va * va;
                    sbb += vb * vb;
                    sab += va * vb;
                    n += 1.0;
                }
            }
            let cov = sab - sa * sb / n;
            let var = (saa - sa * sa / n) * (sbb - sb * sb / n);
            if var > 0.0 {
                best = best.max(cov / var.sqrt());
            }
        }
    }
    best
}

/// For each test image with a training near-duplicate: (train index, test
/// index, correlation) of its best match.
pub fn near_duplicates(
    train: &Images,
    test: &Images,
    p: &ImageParams,
) -> Result<Vec<(usize, usize, f64)>, String> {
    let mut search = NearDuplicateSearch::new(test, p);
    search.add_train(train)?;
    Ok(search.finish())
}

/// Leading directions kept for the coarse stage's bound.
const LEADING: usize = 16;

/// A descriptor seen through the leading directions of the test split's
/// descriptors: its coordinates there, and the length of what is left.
/// For unit vectors d and q, d·q = lead(d)·lead(q) + rest(d)·rest(q)
/// ≤ lead(d)·lead(q) + |rest(d)|·|rest(q)| (Cauchy–Schwarz), whatever the
/// directions; choosing the directions where descriptors vary most makes
/// the bound tight, so most pairs are ruled out with 16 products instead
/// of one 49-long product per shift.
#[derive(Debug, Clone, Copy)]
struct Projected {
    lead: [f32; LEADING],
    rest: f32,
}

impl Projected {
    fn new(directions: &[Vec<f64>], d: &[f32]) -> Projected {
        let mut lead = [0f32; LEADING];
        let mut kept = 0.0f64;
        for (l, dir) in lead.iter_mut().zip(directions) {
            let x: f64 = dir.iter().zip(d).map(|(a, &b)| a * f64::from(b)).sum();
            kept += x * x;
            *l = x as f32;
        }
        let whole: f64 = d.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
        Projected {
            lead,
            rest: (whole - kept).max(0.0).sqrt() as f32,
        }
    }

    /// An upper bound on the cosine of two unit descriptors, up to f32
    /// rounding (see [`bound_slack`]).
    fn cosine_bound(&self, other: &Projected) -> f32 {
        // Products first, then a fixed tree of sums: written so that the
        // compiler can use vector instructions (a running f32 sum cannot
        // be reordered for it).
        let mut p = [0f32; LEADING];
        for ((p, a), b) in p.iter_mut().zip(&self.lead).zip(&other.lead) {
            *p = a * b;
        }
        let mut width = LEADING / 2;
        while width > 0 {
            for k in 0..width {
                p[k] += p[k + width];
            }
            width /= 2;
        }
        p[0] + self.rest * other.rest
    }
}

/// How far below the coarse threshold a bound must fall before a pair is
/// ruled out: the exact cosine and the bound are both f32 sums whose
/// rounding is at most a few units in the last place per term, so this
/// keeps every pair that the exact cosine would let through.
fn bound_slack(dim: usize) -> f32 {
    1e-3 + 4.0 * dim as f32 * f32::EPSILON
}

/// Up to [`LEADING`] orthonormal directions of largest spread of `rows`
/// (vectors of length `dim`), found by subspace iteration: a few rounds of
/// multiplying by XᵀX and re-orthonormalising. Only the tightness of the
/// bound depends on how well they converge; its validity needs only that
/// they are orthonormal, which Gram–Schmidt in f64 gives.
fn leading_directions(rows: &[&[f32]], dim: usize) -> Vec<Vec<f64>> {
    const ROUNDS: usize = 8;
    // Only finite rows: one NaN (an image with NaN) would make every
    // direction NaN, and the bound would then rule nothing out.
    let rows: Vec<&[f32]> = rows
        .iter()
        .copied()
        .filter(|r| r.iter().all(|x| x.is_finite()))
        .collect();
    let k = LEADING.min(dim);
    if rows.is_empty() || k == 0 {
        return Vec::new();
    }
    // A fixed start: a spread of the rows themselves (deterministic, and
    // already inside the span that matters).
    let mut basis: Vec<Vec<f64>> = (0..k)
        .map(|c| {
            let row = rows[c * rows.len() / k];
            (0..dim)
                .map(|i| f64::from(row[i]) + if i % k == c { 1e-3 } else { 0.0 })
                .collect()
        })
        .collect();
    orthonormalise(&mut basis, dim);
    for _ in 0..ROUNDS {
        let mut next = vec![vec![0.0f64; dim]; basis.len()];
        for row in &rows {
            for (dir, out) in basis.iter().zip(next.iter_mut()) {
                let x: f64 = dir.iter().zip(*row).map(|(a, &b)| a * f64::from(b)).sum();
                for (o, &r) in out.iter_mut().zip(*row) {
                    *o += x * f64::from(r);
                }
            }
        }
        basis = next;
        orthonormalise(&mut basis, dim);
    }
    basis
}

/// Modified Gram–Schmidt, twice over for orthogonality to rounding; a
/// direction that vanishes (the rows span fewer dimensions) is dropped.
fn orthonormalise(basis: &mut Vec<Vec<f64>>, dim: usize) {
    let mut out: Vec<Vec<f64>> = Vec::with_capacity(basis.len());
    for mut v in basis.drain(..) {
        let before = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        for _ in 0..2 {
            for u in &out {
                let d: f64 = u.iter().zip(&v).map(|(a, b)| a * b).sum();
                v.iter_mut().zip(u).for_each(|(x, a)| *x -= d * a);
            }
        }
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm > 1e-9 * before.max(f64::MIN_POSITIVE) && norm.is_finite() {
            v.iter_mut().for_each(|x| *x /= norm);
            out.push(v);
        }
    }
    debug_assert!(out.iter().all(|v| v.len() == dim));
    *basis = out;
}

/// The shifts tried, in the order the correlation is maximised over.
fn shifts(max_shift: usize) -> Vec<(isize, isize)> {
    let s = max_shift as isize;
    (-s..=s)
        .flat_map(|dy| (-s..=s).map(move |dx| (dy, dx)))
        .collect()
}

/// For a shift (dy, dx), the rows and columns of the first image that
/// overlap the second moved by it: `a[y][x]` meets `b[y + dy][x + dx]`.
fn overlap(
    w: usize,
    h: usize,
    (dy, dx): (isize, isize),
) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
    let span = |len: usize, d: isize| {
        let start = (-d).max(0) as usize;
        let end = (len as isize - d.max(0)).max(0) as usize;
        start.min(end)..end
    };
    (span(h, dy), span(w, dx))
}

/// One split's images laid out for shifted products: each image's rows
/// widened by `max_shift` zero columns, with `max_shift + 1` zero rows
/// above and below. Then for a shift (dy, dx) every pair of pixels that
/// the overlap pairs up sits at a fixed distance `dy·W + dx` in the two
/// buffers, and every pair it leaves out meets a zero: the product over
/// the overlap is one contiguous dot product, which vectorises, instead of
/// one short loop per row.
struct Padded<T> {
    pixels: Vec<T>,
    /// Width of a padded row.
    row: usize,
    /// Length of one padded image.
    per: usize,
    /// Offset of an image's first pixel in its padded image.
    origin: usize,
    /// Pixels of one image's rows (`height × row`), from `origin`.
    span: usize,
}

impl<T: Copy + Default> Padded<T> {
    fn new(pixels: &[f32], w: usize, h: usize, s: usize, convert: impl Fn(f32) -> T) -> Padded<T> {
        let row = w + s;
        let per = (h + 2 * s + 2) * row;
        let origin = (s + 1) * row;
        let n = pixels.len().checked_div(w * h).unwrap_or(0);
        let mut out = vec![T::default(); n * per];
        for i in 0..n {
            for y in 0..h {
                let from = &pixels[(i * h + y) * w..(i * h + y + 1) * w];
                let at = i * per + origin + y * row;
                out[at..at + w]
                    .iter_mut()
                    .zip(from)
                    .for_each(|(o, &v)| *o = convert(v));
            }
        }
        Padded {
            pixels: out,
            row,
            per,
            origin,
            span: h * row,
        }
    }

    /// Image `i`'s rows, and image `j`'s (of `other`) moved by the shift,
    /// as two slices of equal length.
    fn shifted_pair<'s>(
        &'s self,
        i: usize,
        other: &'s Padded<T>,
        j: usize,
        (dy, dx): (isize, isize),
    ) -> (&'s [T], &'s [T]) {
        let a = i * self.per + self.origin;
        let b = (j * other.per + other.origin) as isize + dy * other.row as isize + dx;
        (
            &self.pixels[a..a + self.span],
            &other.pixels[b as usize..b as usize + other.span],
        )
    }
}

/// Σa and Σa² over one image's side of the overlap for each shift:
/// `moved` for the test image (moved by the shift), otherwise the training
/// image. In f64 from the pixels in row order, like [`shifted_ncc`]: exact
/// for whole-number pixels.
fn overlap_sums(
    img: &[f32],
    w: usize,
    h: usize,
    shifts: &[(isize, isize)],
    moved: bool,
) -> Vec<[f64; 2]> {
    shifts
        .iter()
        .map(|&(dy, dx)| {
            let (ys, xs) = overlap(w, h, (dy, dx));
            let (oy, ox) = if moved { (dy, dx) } else { (0, 0) };
            let mut sums = [0f64; 2];
            for y in ys {
                let row = (y as isize + oy) as usize * w;
                for x in xs.clone() {
                    let v = f64::from(img[row + (x as isize + ox) as usize]);
                    sums[0] += v;
                    sums[1] += v * v;
                }
            }
            sums
        })
        .collect()
}

/// Whether every grey value is a whole number from 0 to 255 (every PNG,
/// JPEG, IDX and `uint8` array): then products are summed in integers,
/// which equal the f64 sums of [`shifted_ncc`] exactly (every partial sum
/// is an integer far below 2^53), so the correlation is the same number.
fn whole_bytes(pixels: &[f32]) -> bool {
    pixels
        .iter()
        .all(|&v| v.fract() == 0.0 && (0.0..=255.0).contains(&v))
}

/// Defines `$name`, which runs `$body` compiled for AVX2 where the
/// processor has it (twice the vector lanes of the baseline x86-64 build,
/// which the binary keeps so that it runs anywhere), and as compiled for
/// the baseline otherwise. The body is the same code either way, so the
/// result is too.
macro_rules! with_avx2 {
    ($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)? $body:block) => {
        $(#[$doc])*
        fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn portable($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2")]
            fn avx2($($arg: $ty),*) $(-> $ret)? {
                portable($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the processor has AVX2, checked just above.
                return unsafe { avx2($($arg),*) };
            }
            portable($($arg),*)
        }
    };
}

with_avx2! {
    /// Σ a·b of two byte images (as i16, so that the products pair up into
    /// the processor's multiply-add of 16-bit lanes), exactly.
    fn dot_bytes(a: &[i16], b: &[i16]) -> f64 {
        // 2^14 products of at most 255² stay below 2^31.
        a.chunks(1 << 14)
            .zip(b.chunks(1 << 14))
            .map(|(a, b)| {
                let part: i32 = a.iter().zip(b).map(|(&x, &y)| i32::from(x) * i32::from(y)).sum();
                i64::from(part)
            })
            .sum::<i64>() as f64
    }
}

with_avx2! {
    /// Σ a·b of two float images, products exact in f64, summed in eight
    /// running lanes (so that it vectorises); close to, not always equal to,
    /// [`shifted_ncc`]'s running sum.
    fn dot_floats(a: &[f32], b: &[f32]) -> f64 {
        let mut lanes = [0f64; 8];
        let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
        let (ar, br) = (ac.remainder(), bc.remainder());
        for (x, y) in ac.zip(bc) {
            for k in 0..8 {
                lanes[k] += f64::from(x[k]) * f64::from(y[k]);
            }
        }
        let tail: f64 = ar.iter().zip(br).map(|(&x, &y)| f64::from(x) * f64::from(y)).sum();
        lanes.iter().sum::<f64>() + tail
    }
}

/// The correlation at one shift from the overlap's sums: the expressions
/// of [`shifted_ncc`], which then gives the same number for the same sums.
/// `None` where the overlap has no variance.
fn correlation(n: f64, [sa, saa]: [f64; 2], [sb, sbb]: [f64; 2], sab: f64) -> Option<f64> {
    let cov = sab - sa * sb / n;
    let var = (saa - sa * sa / n) * (sbb - sb * sb / n);
    (var > 0.0).then(|| cov / var.sqrt())
}

/// How far below the threshold a float pair's screened correlation must
/// fall to be ruled out without the exact computation. The screen's sums
/// differ from the exact ones by rounding of order 1e-16 relative; where
/// the variances are not small against the sums of squares (checked, see
/// [`well_conditioned`]), that moves the correlation by far less than this.
const SCREEN_SLACK: f64 = 1e-6;

/// Whether each side's variance over the overlap is at least 1e-6 of its
/// sum of squares: then the screen's rounding cannot move the correlation
/// by [`SCREEN_SLACK`] (a correlation of nearly constant images is left to
/// the exact computation).
fn well_conditioned(n: f64, [sa, saa]: [f64; 2], [sb, sbb]: [f64; 2]) -> bool {
    (saa - sa * sa / n) >= 1e-6 * saa && (sbb - sb * sb / n) >= 1e-6 * sbb
}

/// A split's images prepared for the search.
struct Described {
    /// `n × views × dim` coarse descriptors (views: one per shift for the
    /// test split, one for a training chunk).
    descriptors: Vec<f32>,
    projected: Vec<Projected>,
    /// The images padded as floats (always kept for the test split).
    floats: Option<Padded<f32>>,
    /// The images padded as 16-bit integers, when they are whole bytes.
    bytes: Option<Padded<i16>>,
    /// `n × shifts` overlap sums ([`overlap_sums`]).
    sums: Vec<[f64; 2]>,
    views: usize,
    dim: usize,
}

impl Described {
    fn descriptor(&self, image: usize, view: usize) -> &[f32] {
        let at = (image * self.views + view) * self.dim;
        &self.descriptors[at..at + self.dim]
    }
}

/// A training chunk's projections laid out by direction (`lead[k·n + i]`
/// for image i), so that bounding every image of the chunk against one
/// test view is a run of multiply-adds across images, which vectorises,
/// rather than a short sum per pair.
struct ChunkBounds {
    lead: Vec<f32>,
    rest: Vec<f32>,
}

impl ChunkBounds {
    fn new(projected: &[Projected]) -> ChunkBounds {
        let n = projected.len();
        let mut lead = vec![0f32; LEADING * n];
        for (i, a) in projected.iter().enumerate() {
            for k in 0..LEADING {
                lead[k * n + i] = a.lead[k];
            }
        }
        ChunkBounds {
            lead,
            rest: projected.iter().map(|a| a.rest).collect(),
        }
    }

    /// Into `top`, for every image of the chunk, the largest of its cosine
    /// bounds with `views` (`scratch`: one value per image). A NaN bound
    /// (a descriptor with NaN) leaves −∞: its exact cosine is NaN too, and
    /// never reaches a threshold.
    fn largest_bounds(&self, views: &[Projected], top: &mut [f32], scratch: &mut [f32]) {
        largest_bounds(&self.lead, &self.rest, views, top, scratch);
    }
}

with_avx2! {
    /// [`ChunkBounds::largest_bounds`].
    fn largest_bounds(lead: &[f32], rest: &[f32], views: &[Projected], top: &mut [f32], scratch: &mut [f32]) {
        let n = rest.len();
        top.fill(f32::NEG_INFINITY);
        for q in views {
            for (x, &r) in scratch.iter_mut().zip(rest) {
                *x = r * q.rest;
            }
            for k in 0..LEADING {
                let (qk, column) = (q.lead[k], &lead[k * n..(k + 1) * n]);
                for (x, &c) in scratch.iter_mut().zip(column) {
                    *x += c * qk;
                }
            }
            for (t, &x) in top.iter_mut().zip(scratch.iter()) {
                *t = t.max(x);
            }
        }
    }
}

/// The near-duplicate search with the training split given a chunk at a
/// time, in order: the test split is described once, and each test image
/// keeps its best match so far (the first of equal correlations, as over
/// the whole split at once).
///
/// A pair is a candidate when the cosine of the training image's coarse
/// descriptor with the test image's, at some shift, reaches
/// `ImageParams::coarse`; a candidate is a match when its shifted
/// correlation reaches `threshold`. Most pairs are ruled out by bounds on
/// the cosine (see [`Projected`], [`ChunkBounds`]) before it is computed;
/// correlations are computed on padded images ([`Padded`]), in integers
/// for byte images, and for float images as a screen that hands the pairs
/// it cannot rule out to [`shifted_ncc`]. None of this changes which pairs
/// match or their correlations.
pub struct NearDuplicateSearch<'a> {
    test: &'a Images,
    p: ImageParams,
    shifts: Vec<(isize, isize)>,
    directions: Vec<Vec<f64>>,
    described: Described,
    best: Vec<Option<(usize, usize, f64)>>,
    train_seen: usize,
}

/// How many test views the leading directions are fitted on, at most.
const DIRECTION_SAMPLE: usize = 4096;

impl<'a> NearDuplicateSearch<'a> {
    pub fn new(test: &'a Images, p: &ImageParams) -> Self {
        let (w, h) = (test.width, test.height);
        let shifts = shifts(p.max_shift);
        let dim = w.div_ceil(4) * h.div_ceil(4);
        // Test images are described at every shift tried, so that the coarse
        // stage does not lose a shifted copy (pooling is not shift-invariant).
        let descriptors: Vec<f32> = crate::stats::on_threads(test.n, |range| {
            range
                .flat_map(|j| shifted_descriptors(test.image(j), w, h, &shifts))
                .flatten()
                .collect()
        });
        let views = test.n * shifts.len();
        let step = views.div_ceil(DIRECTION_SAMPLE).max(1);
        let sample: Vec<&[f32]> = (0..views)
            .step_by(step)
            .map(|v| &descriptors[v * dim..(v + 1) * dim])
            .collect();
        let directions = leading_directions(&sample, dim);
        let projected: Vec<Projected> = (0..views)
            .map(|v| Projected::new(&directions, &descriptors[v * dim..(v + 1) * dim]))
            .collect();
        let s = p.max_shift;
        let sums = (0..test.n)
            .flat_map(|j| overlap_sums(test.image(j), w, h, &shifts, true))
            .collect();
        NearDuplicateSearch {
            test,
            p: *p,
            described: Described {
                descriptors,
                projected,
                floats: Some(Padded::new(&test.pixels, w, h, s, |v| v)),
                bytes: whole_bytes(&test.pixels)
                    .then(|| Padded::new(&test.pixels, w, h, s, |v| v as i16)),
                sums,
                views: shifts.len(),
                dim,
            },
            shifts,
            directions,
            best: vec![None; test.n],
            train_seen: 0,
        }
    }

    /// About how many bytes the search (and the audit around it) holds per
    /// test image of `w × h` pixels: the image, its padded copies, its
    /// descriptors at every shift with their projections, its overlap
    /// sums, and its best match and digest.
    pub fn bytes_per_test_image(w: usize, h: usize, max_shift: usize) -> usize {
        let views = (2 * max_shift + 1).pow(2);
        let padded = (h + 2 * max_shift + 2) * (w + max_shift);
        let dim = w.div_ceil(4) * h.div_ceil(4);
        4 * w * h + 6 * padded + views * (4 * dim + std::mem::size_of::<Projected>() + 16) + 128
    }

    /// Compares the next training images (numbered on from the previous
    /// chunks) with every test image.
    pub fn add_train(&mut self, train: &Images) -> Result<(), String> {
        let test = self.test;
        if train.n > 0 && (train.width, train.height) != (test.width, test.height) {
            return Err(format!(
                "train images are {}×{}, test images {}×{}",
                train.width, train.height, test.width, test.height
            ));
        }
        let (w, h, p, first) = (test.width, test.height, &self.p, self.train_seen);
        if w * h == 0 {
            // No pixels, nothing to correlate (and no padded rows to slice).
            self.train_seen += train.n;
            return Ok(());
        }
        let (dim, shifts, s) = (self.described.dim, &self.shifts, p.max_shift);
        let descriptors: Vec<f32> = crate::stats::on_threads(train.n, |range| {
            range
                .flat_map(|i| descriptor(train.image(i), w, h))
                .collect()
        });
        let projected: Vec<Projected> = (0..train.n)
            .map(|i| Projected::new(&self.directions, &descriptors[i * dim..(i + 1) * dim]))
            .collect();
        let bounds = ChunkBounds::new(&projected);
        // Integer products only when both splits are bytes.
        let bytes = (self.described.bytes.is_some() && whole_bytes(&train.pixels))
            .then(|| Padded::new(&train.pixels, w, h, s, |v| v as i16));
        let chunk = Described {
            descriptors,
            projected,
            floats: bytes
                .is_none()
                .then(|| Padded::new(&train.pixels, w, h, s, |v| v)),
            bytes,
            sums: (0..train.n)
                .flat_map(|i| overlap_sums(train.image(i), w, h, shifts, false))
                .collect(),
            views: 1,
            dim,
        };
        let (tests, best) = (&self.described, &self.best);
        let (coarse, slack) = (p.coarse, bound_slack(dim));
        let views = tests.views;
        let overlaps: Vec<f64> = shifts
            .iter()
            .map(|&d| {
                let (ys, xs) = overlap(w, h, d);
                (ys.len() * xs.len()) as f64
            })
            .collect();
        // The shifted correlation of training image i with test image j.
        let correlation_of = |i: usize, j: usize| -> f64 {
            let (a_sums, b_sums) = (
                &chunk.sums[i * views..(i + 1) * views],
                &tests.sums[j * views..(j + 1) * views],
            );
            let mut best = f64::NEG_INFINITY;
            if let (Some(a), Some(b)) = (&chunk.bytes, &tests.bytes) {
                for (k, &shift) in shifts.iter().enumerate() {
                    let (ra, rb) = a.shifted_pair(i, b, j, shift);
                    if let Some(c) =
                        correlation(overlaps[k], a_sums[k], b_sums[k], dot_bytes(ra, rb))
                    {
                        best = best.max(c);
                    }
                }
                return best;
            }
            let (a, b) = (chunk.floats.as_ref(), tests.floats.as_ref());
            let (Some(a), Some(b)) = (a, b) else {
                unreachable!("a chunk without bytes keeps floats, and the test split always does")
            };
            for (k, &shift) in shifts.iter().enumerate() {
                let (ra, rb) = a.shifted_pair(i, b, j, shift);
                let n = overlaps[k];
                if !well_conditioned(n, a_sums[k], b_sums[k]) {
                    best = f64::INFINITY;
                    break;
                }
                if let Some(c) = correlation(n, a_sums[k], b_sums[k], dot_floats(ra, rb)) {
                    best = best.max(c);
                }
            }
            if best + SCREEN_SLACK < p.threshold {
                return best;
            }
            shifted_ncc(train.image(i), test.image(j), w, h, p.max_shift)
        };
        self.best = crate::stats::on_threads(test.n, |range| {
            let (mut top, mut scratch) = (vec![0f32; train.n], vec![0f32; train.n]);
            range
                .map(|j| {
                    let mut best = best[j];
                    let test_views = &tests.projected[j * views..(j + 1) * views];
                    bounds.largest_bounds(test_views, &mut top, &mut scratch);
                    for (i, &top) in top.iter().enumerate() {
                        if f64::from(top + slack) < coarse {
                            continue;
                        }
                        let a = &chunk.projected[i];
                        let d = chunk.descriptor(i, 0);
                        let close = test_views.iter().enumerate().any(|(v, q)| {
                            if f64::from(a.cosine_bound(q) + slack) < coarse {
                                return false;
                            }
                            let q = tests.descriptor(j, v);
                            let cos: f32 = d.iter().zip(q).map(|(a, b)| a * b).sum();
                            f64::from(cos) >= coarse
                        });
                        if !close {
                            continue;
                        }
                        let ncc = correlation_of(i, j);
                        if ncc >= p.threshold && best.is_none_or(|b| ncc > b.2) {
                            best = Some((first + i, j, ncc));
                        }
                    }
                    best
                })
                .collect()
        });
        self.train_seen += train.n;
        Ok(())
    }

    /// Training images compared so far.
    pub fn train_seen(&self) -> usize {
        self.train_seen
    }

    /// Each test image's best match, in test order.
    pub fn finish(self) -> Vec<(usize, usize, f64)> {
        self.best.into_iter().flatten().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The search as first written: every pair, every view's cosine in
    /// full, and [`shifted_ncc`] for every candidate. The bounds, the
    /// padded products and the screens must not change its answer.
    fn every_pair(train: &Images, test: &Images, p: &ImageParams) -> Vec<(usize, usize, f64)> {
        let (w, h) = (test.width, test.height);
        let views: Vec<Vec<Vec<f32>>> = (0..test.n)
            .map(|j| shifted_descriptors(test.image(j), w, h, &shifts(p.max_shift)))
            .collect();
        let mut found = Vec::new();
        for (j, views) in views.iter().enumerate() {
            let mut best: Option<(usize, usize, f64)> = None;
            for i in 0..train.n {
                let d = descriptor(train.image(i), w, h);
                let close = views.iter().any(|q| {
                    let cos: f32 = d.iter().zip(q).map(|(a, b)| a * b).sum();
                    f64::from(cos) >= p.coarse
                });
                if !close {
                    continue;
                }
                let ncc = shifted_ncc(train.image(i), test.image(j), w, h, p.max_shift);
                if ncc >= p.threshold && best.is_none_or(|b| ncc > b.2) {
                    best = Some((i, j, ncc));
                }
            }
            found.extend(best);
        }
        found
    }

    /// Images of `w × h` from seeds: mostly a few bright strokes on black
    /// (so that they look alike, as digits do), whole grey levels or not.
    fn draw(seeds: &[u64], w: usize, h: usize, whole: bool) -> Vec<f32> {
        let mut out = Vec::with_capacity(seeds.len() * w * h);
        for &seed in seeds {
            let mut x = seed | 1;
            let mut next = || {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            };
            let mut img = vec![0f32; w * h];
            for _ in 0..(next() % 6 + 1) {
                let (cx, cy) = (next() as usize % w, next() as usize % h);
                let level = (next() % 256) as f32;
                for k in 0..(next() % (w as u64) + 1) as usize {
                    img[cy * w + (cx + k) % w] = level;
                }
            }
            if !whole {
                img.iter_mut().for_each(|v| *v = *v / 3.0 + 0.25);
            }
            out.extend(img);
        }
        out
    }

    /// A copy of image `i` of `from`, edited by `kind`: shifted a pixel,
    /// brightened, noised, or left as it is.
    fn edited(from: &Images, i: usize, kind: u8, whole: bool) -> Vec<f32> {
        let (w, src) = (from.width, from.image(i));
        let round = |v: f32| {
            if whole {
                v.round().clamp(0.0, 255.0)
            } else {
                v
            }
        };
        match kind % 4 {
            0 => (0..src.len())
                .map(|k| if k % w == 0 { 0.0 } else { src[k - 1] })
                .collect(),
            1 => src.iter().map(|&v| round(v * 0.8 + 30.0)).collect(),
            2 => src
                .iter()
                .enumerate()
                .map(|(k, &v)| round(v + ((k * 7919) % 5) as f32 - 2.0))
                .collect(),
            _ => src.to_vec(),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// The pruned search finds the same pairs with the same
        /// correlations as every pair tried in full: byte and float
        /// images, copies among look-alikes, loose and tight thresholds,
        /// shifts of 0 to 2 pixels, and a NaN image now and then.
        #[test]
        fn pruning_keeps_every_match_and_its_correlation(
            w in 3usize..14,
            h in 3usize..14,
            train_seeds in proptest::collection::vec(any::<u64>(), 1..40),
            test_seeds in proptest::collection::vec(any::<u64>(), 1..30),
            copies in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..4), 0..12),
            whole_train in any::<bool>(),
            whole_test in any::<bool>(),
            coarse in prop_oneof![Just(0.85), -1.0f64..1.0],
            threshold in prop_oneof![Just(0.99), 0.5f64..1.0],
            max_shift in 0usize..3,
            nan_at in proptest::option::of(any::<prop::sample::Index>()),
        ) {
            let train = Images { width: w, height: h, n: train_seeds.len(), pixels: draw(&train_seeds, w, h, whole_train) };
            let mut test = Images { width: w, height: h, n: test_seeds.len(), pixels: draw(&test_seeds, w, h, whole_test) };
            let per = w * h;
            for (k, (i, kind)) in copies.iter().enumerate() {
                let j = k % test.n;
                let copy = edited(&train, i.index(train.n), *kind, whole_test);
                test.pixels[j * per..(j + 1) * per].copy_from_slice(&copy);
            }
            if let Some(at) = nan_at {
                let j = at.index(test.n);
                test.pixels[j * per] = f32::NAN;
            }
            let p = ImageParams { threshold, coarse, max_shift };
            let fast = near_duplicates(&train, &test, &p).unwrap();
            let slow = every_pair(&train, &test, &p);
            prop_assert_eq!(fast.len(), slow.len());
            for (f, s) in fast.iter().zip(&slow) {
                prop_assert_eq!((f.0, f.1, f.2.to_bits()), (s.0, s.1, s.2.to_bits()));
            }
        }
    }

    #[test]
    fn leading_directions_are_orthonormal() {
        let rows: Vec<Vec<f32>> = (0..50u32)
            .map(|r| {
                (0..20u32)
                    .map(|c| ((r * 31 + c * 17) % 23) as f32 - 11.0)
                    .collect()
            })
            .collect();
        let refs: Vec<&[f32]> = rows.iter().map(|r| r.as_slice()).collect();
        let dirs = leading_directions(&refs, 20);
        assert_eq!(dirs.len(), LEADING);
        for (a, u) in dirs.iter().enumerate() {
            for (b, v) in dirs.iter().enumerate() {
                let dot: f64 = u.iter().zip(v).map(|(x, y)| x * y).sum();
                let want = if a == b { 1.0 } else { 0.0 };
                assert!((dot - want).abs() < 1e-12, "{a}·{b} = {dot}");
            }
        }
        // Rows spanning two dimensions give two directions, not sixteen.
        let flat: Vec<Vec<f32>> = (0..30u32)
            .map(|r| {
                (0..20u32)
                    .map(|c| match c {
                        0 => r as f32,
                        1 => ((r * r) % 7) as f32,
                        _ => 0.0,
                    })
                    .collect()
            })
            .collect();
        let refs: Vec<&[f32]> = flat.iter().map(|r| r.as_slice()).collect();
        assert_eq!(leading_directions(&refs, 20).len(), 2);
        // A row with NaN is left out rather than spoiling every direction.
        let mut with_nan = rows.clone();
        with_nan[3][5] = f32::NAN;
        let refs: Vec<&[f32]> = with_nan.iter().map(|r| r.as_slice()).collect();
        let dirs = leading_directions(&refs, 20);
        assert_eq!(dirs.len(), LEADING);
        assert!(dirs.iter().flatten().all(|x| x.is_finite()));
    }

    /// Float images where the screen's sums and [`shifted_ncc`]'s differ
    /// in rounding: nearly constant images (a large level with small
    /// steps, where the variance is a cancellation) and a pair whose
    /// correlation sits just above the threshold. The search must report
    /// [`shifted_ncc`]'s own number in both.
    #[test]
    fn float_screens_hand_close_calls_to_the_exact_correlation() {
        let (w, h) = (9, 8);
        let per = w * h;
        let pattern = |seed: usize, level: f32, step: f32| -> Vec<f32> {
            (0..per)
                .map(|k| level + step * (((k * 2654435761 + seed * 40503) >> 7) % 5) as f32)
                .collect()
        };
        let mut train = Images {
            width: w,
            height: h,
            n: 0,
            pixels: Vec::new(),
        };
        let mut test = train.clone();
        for seed in 0..12 {
            // Steps of 2 on 3·10^7 (f32's spacing there): the variance is
            // ~1e-14 of the sum of squares, and the sums of squares are
            // past 2^53, so they round.
            let img = pattern(seed, 3.0e7, 2.0);
            train.pixels.extend(&img);
            test.pixels.extend(&img);
            train.n += 1;
            test.n += 1;
        }
        let p = ImageParams {
            threshold: 0.99,
            coarse: -1.0,
            max_shift: 1,
        };
        let fast = near_duplicates(&train, &test, &p).unwrap();
        assert_eq!(fast, every_pair(&train, &test, &p));
        // A close call: the threshold a hair below a pair's correlation,
        // for a pair whose screened correlation is not the exact one.
        let shifts = shifts(1);
        let (a, b, exact) = (0..50)
            .map(|seed| {
                let a: Vec<f32> = (0..per)
                    .map(|k| ((k * 7 + seed) as f32 * 0.37).sin() * 90.0 + 100.0)
                    .collect();
                let b: Vec<f32> = a
                    .iter()
                    .enumerate()
                    .map(|(k, v)| v / 3.0 + (k % 3) as f32 * 0.01)
                    .collect();
                let exact = shifted_ncc(&a, &b, w, h, 1);
                (a, b, exact)
            })
            .find(|(a, b, exact)| {
                let (pa, pb) = (
                    Padded::new(a, w, h, 1, |v| v),
                    Padded::new(b, w, h, 1, |v| v),
                );
                let (sa, sb) = (
                    overlap_sums(a, w, h, &shifts, false),
                    overlap_sums(b, w, h, &shifts, true),
                );
                let screened = (0..shifts.len())
                    .filter_map(|k| {
                        let (ys, xs) = overlap(w, h, shifts[k]);
                        let (ra, rb) = pa.shifted_pair(0, &pb, 0, shifts[k]);
                        correlation(
                            (ys.len() * xs.len()) as f64,
                            sa[k],
                            sb[k],
                            dot_floats(ra, rb),
                        )
                    })
                    .fold(f64::NEG_INFINITY, f64::max);
                screened.to_bits() != exact.to_bits()
            })
            .expect("some pair's screen rounds differently");
        let train = Images {
            width: w,
            height: h,
            n: 1,
            pixels: a,
        };
        let test = Images {
            width: w,
            height: h,
            n: 1,
            pixels: b,
        };
        let p = ImageParams {
            threshold: exact - 1e-12,
            coarse: -1.0,
            max_shift: 1,
        };
        let fast = near_duplicates(&train, &test, &p).unwrap();
        assert_eq!(fast.len(), 1);
        assert_eq!(fast[0].2.to_bits(), exact.to_bits());
    }

    #[test]
    fn the_bound_is_never_below_the_cosine() {
        let rows: Vec<Vec<f32>> = (0..200u32)
            .map(|r| {
                let v: Vec<f32> = (0..49u32)
                    .map(|c| (((r + 3) * (c + 7)).wrapping_mul(2654435761) >> 20) as f32)
                    .collect();
                standardise(&v)
            })
            .collect();
        let refs: Vec<&[f32]> = rows.iter().map(|r| r.as_slice()).collect();
        let dirs = leading_directions(&refs[..100], 49);
        let projected: Vec<Projected> = refs.iter().map(|r| Projected::new(&dirs, r)).collect();
        let slack = bound_slack(49);
        let (mut top, mut scratch) = (vec![0f32; 200], vec![0f32; 200]);
        let chunk = ChunkBounds::new(&projected);
        for (j, q) in projected.iter().enumerate() {
            chunk.largest_bounds(std::slice::from_ref(q), &mut top, &mut scratch);
            for (i, a) in projected.iter().enumerate() {
                let cos: f32 = refs[i].iter().zip(refs[j]).map(|(x, y)| x * y).sum();
                assert!(a.cosine_bound(q) + slack >= cos, "{i}, {j}");
                assert!(top[i] + slack >= cos, "{i}, {j}");
            }
        }
    }
}
