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
        let (h, w) = match shape.len() {
            3 => (shape[1], shape[2]),
            4 if shape[3] == 1 => (shape[1], shape[2]),
            _ => {
                return Err(format!(
                    "expected images as N×H×W (or N×H×W×1), got shape {shape:?}"
                ))
            }
        };
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
        let mut out = Images {
            width: 0,
            height: 0,
            pixels: Vec::new(),
            n: 0,
        };
        for f in &files {
            let img = image::open(f)
                .map_err(|e| format!("{}: {e}", f.display()))?
                .to_luma8();
            let (w, h) = (img.width() as usize, img.height() as usize);
            if out.n == 0 {
                (out.width, out.height) = (w, h);
            } else if (w, h) != (out.width, out.height) {
                return Err(format!(
                    "{}: {w}×{h}, the other images are {}×{}",
                    f.display(),
                    out.width,
                    out.height
                ));
            }
            out.pixels.extend(img.into_raw().into_iter().map(f32::from));
            out.n += 1;
        }
        Ok(out)
    }

    fn image(&self, i: usize) -> &[f32] {
        let per = self.width * self.height;
        &self.pixels[i * per..(i + 1) * per]
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
    if (train.width, train.height) != (test.width, test.height) {
        return Err(format!(
            "train images are {}×{}, test images {}×{}",
            train.width, train.height, test.width, test.height
        ));
    }
    let (w, h) = (train.width, train.height);
    let dt: Vec<Vec<f32>> = (0..train.n)
        .map(|i| descriptor(train.image(i), w, h))
        .collect();
    // Test images are described at every shift tried, so that the coarse
    // stage does not lose a shifted copy (pooling is not shift-invariant).
    let s = p.max_shift as isize;
    let ds: Vec<Vec<Vec<f32>>> = (0..test.n)
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
    let found: Vec<Option<(usize, usize, f64)>> = crate::stats::on_threads(test.n, |range| {
        range
            .map(|j| {
                let mut best: Option<(usize, usize, f64)> = None;
                for (i, d) in dt.iter().enumerate() {
                    let close = ds[j].iter().any(|q| {
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
                best
            })
            .collect()
    });
    Ok(found.into_iter().flatten().collect())
}
