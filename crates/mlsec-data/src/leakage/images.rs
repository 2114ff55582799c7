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
    match shape.len() {
        3 => Ok((shape[1], shape[2])),
        4 if shape[3] == 1 => Ok((shape[1], shape[2])),
        _ => Err(format!(
            "expected images as N×H×W (or N×H×W×1), got shape {shape:?}"
        )),
    }
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

/// The near-duplicate search with the training split given a chunk at a
/// time, in order: the test split is described once, and each test image
/// keeps its best match so far (the first of equal correlations, as over
/// the whole split at once).
pub struct NearDuplicateSearch<'a> {
    test: &'a Images,
    p: ImageParams,
    /// Coarse descriptors of each test image at every shift tried.
    shifted: Vec<Vec<Vec<f32>>>,
    best: Vec<Option<(usize, usize, f64)>>,
    train_seen: usize,
}

impl<'a> NearDuplicateSearch<'a> {
    pub fn new(test: &'a Images, p: &ImageParams) -> Self {
        let (w, h) = (test.width, test.height);
        // Test images are described at every shift tried, so that the coarse
        // stage does not lose a shifted copy (pooling is not shift-invariant).
        let s = p.max_shift as isize;
        let shifted = (0..test.n)
            .map(|j| {
                let img = test.image(j);
                let mut out = Vec::new();
                for dy in -s..=s {
                    for dx in -s..=s {
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
                        out.push(descriptor(&shifted, w, h));
                    }
                }
                out
            })
            .collect();
        NearDuplicateSearch {
            test,
            p: *p,
            shifted,
            best: vec![None; test.n],
            train_seen: 0,
        }
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
        let dt: Vec<Vec<f32>> = (0..train.n)
            .map(|i| descriptor(train.image(i), w, h))
            .collect();
        let (shifted, best) = (&self.shifted, &self.best);
        self.best = crate::stats::on_threads(test.n, |range| {
            range
                .map(|j| {
                    let mut best = best[j];
                    for (i, d) in dt.iter().enumerate() {
                        let close = shifted[j].iter().any(|q| {
                            let cos: f32 = d.iter().zip(q).map(|(a, b)| a * b).sum();
                            f64::from(cos) >= p.coarse
                        });
                        if !close {
                            continue;
                        }
                        let ncc = shifted_ncc(train.image(i), test.image(j), w, h, p.max_shift);
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
