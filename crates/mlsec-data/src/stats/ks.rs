//! The two-sample Kolmogorov–Smirnov test, two-sided, with the statistic
//! and p-value `scipy.stats.ks_2samp` computes: `method="auto"` is exact
//! when both samples have at most 10,000 values and asymptotic otherwise;
//! the exact p-value counts lattice paths (Hodges' "inside" method, in
//! Viehmann's form that carries 1 − p so small p-values keep their
//! precision), the asymptotic one is the finite-n Kolmogorov distribution
//! at n = round(m·n/(m+n)).

use super::kolmogorov::kolmogorov_sf;

/// How the p-value is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KsMethod {
    /// Exact when both samples have ≤ 10,000 values (scipy's rule).
    Auto,
    Exact,
    Asymp,
}

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct KsResult {
    pub statistic: f64,
    pub pvalue: f64,
    /// The value at which the ECDFs differ most.
    pub location: f64,
    /// +1 when the first sample's ECDF is above the second's there.
    pub sign: i8,
    /// The method actually used.
    pub method: KsMethod,
}

/// scipy's threshold between exact and asymptotic in `auto` mode.
pub const MAX_AUTO_N: usize = 10_000;

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The running extremes of F₁ − F₂ over the merged values of two samples,
/// walked in ascending order. A walk may be split into segments (all copies
/// of a value in one segment), which is how [`super::ranked`] avoids
/// sorting a large reference.
#[derive(Debug, Clone, Copy)]
pub struct Extremes {
    n1: f64,
    n2: f64,
    max_d: f64,
    max_at: f64,
    min_d: f64,
    min_at: f64,
}

impl Extremes {
    pub fn new(n1: usize, n2: usize) -> Self {
        Extremes {
            n1: n1 as f64,
            n2: n2 as f64,
            max_d: f64::NEG_INFINITY,
            max_at: f64::NAN,
            min_d: f64::INFINITY,
            min_at: f64::NAN,
        }
    }

    /// Walks the sorted segments `a` and `b`, which follow `i0` values of
    /// the first sample and `j0` of the second. At each distinct value both
    /// ECDFs are taken after all of its copies (searchsorted side='right');
    /// the first maximum and minimum are kept, as scipy keeps them.
    pub fn walk(&mut self, a: &[f64], b: &[f64], i0: usize, j0: usize) {
        let (mut i, mut j) = (0usize, 0usize);
        while i < a.len() || j < b.len() {
            let v = match (a.get(i), b.get(j)) {
                (Some(&x), Some(&y)) => x.min(y),
                (Some(&x), None) => x,
                (None, Some(&y)) => y,
                (None, None) => unreachable!(),
            };
            while i < a.len() && a[i] <= v {
                i += 1;
            }
            while j < b.len() && b[j] <= v {
                j += 1;
            }
            self.visit(v, i0 + i, j0 + j);
        }
    }

    /// Takes the distinct value `v`, after which `i` values of the first
    /// sample and `j` of the second are counted. Values must come in
    /// ascending order; a caller may skip a value only where it knows the
    /// difference there is no new extreme.
    #[inline]
    pub fn visit(&mut self, v: f64, i: usize, j: usize) {
        let d = self.difference(i, j);
        if d > self.max_d {
            (self.max_d, self.max_at) = (d, v);
        }
        if d < self.min_d {
            (self.min_d, self.min_at) = (d, v);
        }
    }

    /// F₁ − F₂ once `i` values of the first sample and `j` of the second
    /// are counted. Every caller computes it here, so bounds and walks
    /// compare bit-identical numbers.
    #[inline]
    pub fn difference(&self, i: usize, j: usize) -> f64 {
        i as f64 / self.n1 - j as f64 / self.n2
    }

    /// The statistic, its location and sign, as scipy defines them.
    pub fn statistic(&self) -> (f64, f64, i8) {
        let min_s = (-self.min_d).clamp(0.0, 1.0);
        if min_s > self.max_d {
            (min_s, self.min_at, -1)
        } else {
            (self.max_d, self.max_at, 1)
        }
    }
}

/// The KS statistic of two *sorted* samples without NaN, with its location
/// and sign, as scipy defines them (ties broken at the first maximum).
pub fn statistic_sorted(a: &[f64], b: &[f64]) -> (f64, f64, i8) {
    let mut e = Extremes::new(a.len(), b.len());
    e.walk(a, b, 0, 0);
    e.statistic()
}

/// Two-sided exact p-value: the share of monotone lattice paths from
/// (0, 0) to (m, n) that touch |x·n/g − y·m/g| ≥ h (g = gcd(m, n)), i.e.
/// whose ECDF difference reaches h / lcm(m, n). Each cell holds the
/// probability that a uniformly random path to it has left the band: 1
/// outside the band, and inside the x/y-weighted average of its two
/// predecessors. Only the band of each column is computed. `None` when the
/// grid is too large to walk.
pub fn exact_pvalue(m: u64, n: u64, h: u64) -> Option<f64> {
    if h == 0 {
        return Some(1.0);
    }
    let (m, n) = if m >= n { (m, n) } else { (n, m) };
    let g = gcd(m, n);
    let (mg, ng) = ((m / g) as i128, (n / g) as i128);
    if m.checked_mul(n)? > 4_000_000_000 {
        return None;
    }
    let h = h as i128;
    // Rows y of column x inside the band: x·ng − h < y·mg < x·ng + h.
    let band = |x: u64| -> (i128, i128) {
        let c = x as i128 * ng;
        let lo = (c - h).div_euclid(mg) + 1;
        let hi = (c + h + mg - 1).div_euclid(mg) - 1;
        (lo.max(0), hi.min(n as i128))
    };
    let mut col = vec![1.0f64; n as usize + 1];
    // Column 0: only (0, 0) is reached with certainty inside; going up the
    // axis stays inside until the band's top.
    let (_, hi0) = band(0);
    for c in col.iter_mut().take(hi0.max(0) as usize + 1) {
        *c = 0.0;
    }
    let mut prev_lo = 0i128;
    for x in 1..=m {
        let (lo, hi) = band(x);
        if lo > hi {
            return Some(1.0);
        }
        // Rows that left the band at its bottom are outside from now on.
        for y in prev_lo.max(0)..lo.min(n as i128 + 1) {
            col[y as usize] = 1.0;
        }
        let xf = x as f64;
        for y in lo..=hi {
            let yu = y as usize;
            col[yu] = if y == 0 {
                col[0]
            } else {
                let yf = y as f64;
                (col[yu] * xf + col[yu - 1] * yf) / (xf + yf)
            };
        }
        prev_lo = lo;
    }
    Some(col[n as usize].clamp(0.0, 1.0))
}

/// Two-sided two-sample KS test. NaN values are left out of both samples
/// (scipy would propagate them into a NaN result); an empty sample is an
/// error.
pub fn ks_2samp(a: &[f64], b: &[f64], method: KsMethod) -> Result<KsResult, String> {
    let mut a: Vec<f64> = a.iter().copied().filter(|v| !v.is_nan()).collect();
    let mut b: Vec<f64> = b.iter().copied().filter(|v| !v.is_nan()).collect();
    a.sort_unstable_by(f64::total_cmp);
    b.sort_unstable_by(f64::total_cmp);
    ks_2samp_sorted(&a, &b, method)
}

/// [`ks_2samp`] on samples already sorted and free of NaN.
pub fn ks_2samp_sorted(a: &[f64], b: &[f64], method: KsMethod) -> Result<KsResult, String> {
    if a.is_empty() || b.is_empty() {
        return Err("a KS test needs two non-empty samples".into());
    }
    let (d, location, sign) = statistic_sorted(a, b);
    Ok(with_pvalue(d, location, sign, a.len(), b.len(), method))
}

/// Completes a statistic of samples of `n1` and `n2` values with its
/// p-value, choosing the method as scipy's `auto` does.
pub fn with_pvalue(
    mut d: f64,
    location: f64,
    sign: i8,
    n1: usize,
    n2: usize,
    method: KsMethod,
) -> KsResult {
    let (n1, n2) = (n1 as u64, n2 as u64);
    let mut used = match method {
        KsMethod::Auto if n1.max(n2) as usize <= MAX_AUTO_N => KsMethod::Exact,
        KsMethod::Auto => KsMethod::Asymp,
        m => m,
    };
    let mut pvalue = f64::NAN;
    if used == KsMethod::Exact {
        let g = gcd(n1, n2);
        let lcm = (n1 / g) as f64 * n2 as f64;
        let h = (d * lcm).round();
        // scipy reports the statistic snapped to the lattice.
        d = h / lcm;
        match exact_pvalue(n1, n2, h as u64) {
            Some(p) => pvalue = p,
            None => used = KsMethod::Asymp,
        }
    }
    if used == KsMethod::Asymp {
        let (m, n) = (n1.max(n2) as f64, n1.min(n2) as f64);
        let en = (m * n / (m + n)).round() as u64;
        pvalue = kolmogorov_sf(en.max(1), d);
    }
    KsResult {
        statistic: d,
        pvalue: pvalue.clamp(0.0, 1.0),
        location,
        sign,
        method: used,
    }
}
