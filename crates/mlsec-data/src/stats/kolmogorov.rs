//! The distribution of the one-sample Kolmogorov–Smirnov statistic D_n
//! for finite n, which `scipy.stats.ks_2samp` uses for its asymptotic
//! p-value (`kstwo.sf(d, round(m·n/(m+n)))`). As in scipy, following
//! Simard & L'Ecuyer (2011), each region of (n, x) gets the method that is
//! exact or accurate there:
//!
//! - Ruben–Gambino closed forms for n·x ≤ 1 and n·x ≥ n − 1;
//! - 2 × the exact one-sided Smirnov tail (Birnbaum–Tingey sum) for
//!   x ≥ 0.5, and for the upper tail when n·x² ≥ 2.2 (n > 140);
//! - the Durbin matrix (Marsaglia–Tsang–Wang 2003) where its matrix is small;
//! - the Pelz–Good (1976) asymptotic series elsewhere for n > 140.
//!
//! (scipy uses Pomeranz's recursion for some n ≤ 140; it is exact, as is the
//! Durbin matrix used here instead, so the two agree to rounding.)

use super::special::{ln_binomial, ln_factorial};

/// P(D_n⁺ ≥ x): the exact one-sided Smirnov tail, by the Birnbaum–Tingey
/// sum x · Σ_{j ≤ n(1−x)} C(n,j) (1 − x − j/n)^{n−j} (x + j/n)^{j−1},
/// summed in log space so that n in the millions neither overflows nor
/// underflows.
pub fn smirnov_sf(n: u64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    if x >= 1.0 {
        return 0.0;
    }
    let nf = n as f64;
    let jmax = (nf * (1.0 - x)).floor() as u64;
    // ln C(n, j) is carried from one j to the next by ln((n − j)/(j + 1))
    // (one logarithm instead of three log-gammas) and re-anchored exactly
    // every few terms, so its rounding error cannot build up over millions
    // of terms.
    const ANCHOR: u64 = 64;
    let mut ln_choose = 0.0;
    let mut terms = Vec::with_capacity(jmax as usize + 1);
    for j in 0..=jmax {
        let jf = j as f64;
        let a = 1.0 - x - jf / nf;
        if a <= 0.0 {
            break;
        }
        if j % ANCHOR == 0 {
            ln_choose = ln_binomial(n, j);
        }
        let b = x + jf / nf;
        terms.push(ln_choose + (nf - jf) * a.ln() + (jf - 1.0) * b.ln());
        ln_choose += ((nf - jf) / (jf + 1.0)).ln();
    }
    let max = terms.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return 0.0;
    }
    let sum: f64 = terms.iter().map(|t| (t - max).exp()).sum();
    (x.ln() + max + sum.ln()).exp().clamp(0.0, 1.0)
}

/// ln(n!/nⁿ).
fn ln_nfactorial_over_n_pow_n(n: u64) -> f64 {
    ln_factorial(n) - n as f64 * (n as f64).ln()
}

/// P(D_n < x) by the Durbin matrix: n!/nⁿ · (Hⁿ)[k−1][k−1], H of order
/// 2k − 1 with k = ⌊n·x⌋ + 1, powered by squaring with the exponent kept
/// apart so that nothing overflows.
pub fn durbin_cdf(n: u64, x: f64) -> f64 {
    let nx = n as f64 * x;
    let k = nx.floor() as usize + 1;
    let m = 2 * k - 1;
    let h = k as f64 - nx;
    let mut hm = vec![0.0f64; m * m];
    for i in 0..m {
        for j in 0..m {
            if i + 1 >= j {
                hm[i * m + j] = 1.0;
            }
        }
    }
    for i in 0..m {
        hm[i * m] -= h.powi(i as i32 + 1);
        hm[(m - 1) * m + i] -= h.powi((m - i) as i32);
    }
    if 2.0 * h - 1.0 > 0.0 {
        hm[(m - 1) * m] += (2.0 * h - 1.0).powi(m as i32);
    }
    for i in 0..m {
        for j in 0..m {
            if i + 1 >= j {
                let f = (i + 1 - j) as u64;
                hm[i * m + j] /= (ln_factorial(f)).exp();
            }
        }
    }
    let matmul = |a: &[f64], b: &[f64]| -> Vec<f64> {
        let mut c = vec![0.0; m * m];
        for i in 0..m {
            for l in 0..m {
                let ail = a[i * m + l];
                if ail == 0.0 {
                    continue;
                }
                for j in 0..m {
                    c[i * m + j] += ail * b[l * m + j];
                }
            }
        }
        c
    };
    // Exponentiation by squaring; powers of two kept in separate exponents.
    let mut result: Option<(Vec<f64>, i64)> = None;
    let (mut base, mut base_exp) = (hm, 0i64);
    let mut e = n;
    while e > 0 {
        if e & 1 == 1 {
            result = Some(match result {
                None => (base.clone(), base_exp),
                Some((r, re)) => {
                    let mut p = matmul(&r, &base);
                    let mut pe = re + base_exp;
                    rescale(&mut p, &mut pe, k - 1, m);
                    (p, pe)
                }
            });
        }
        e >>= 1;
        if e > 0 {
            let mut sq = matmul(&base, &base);
            let mut se = base_exp * 2;
            rescale(&mut sq, &mut se, k - 1, m);
            base = sq;
            base_exp = se;
        }
    }
    let (r, re) = result.unwrap_or((vec![1.0; m * m], 0));
    let v = r[(k - 1) * m + (k - 1)];
    if v <= 0.0 {
        return 0.0;
    }
    let ln = v.ln() + re as f64 * std::f64::consts::LN_2 + ln_nfactorial_over_n_pow_n(n);
    ln.exp().clamp(0.0, 1.0)
}

/// Keeps a matrix's central element near 1 by moving powers of two into
/// the exponent.
fn rescale(a: &mut [f64], exp: &mut i64, center: usize, m: usize) {
    let c = a[center * m + center].abs();
    if c > 1e140 || (c < 1e-140 && c > 0.0) {
        let shift = c.log2().round() as i32;
        let f = 2f64.powi(-shift);
        for v in a.iter_mut() {
            *v *= f;
        }
        *exp += i64::from(shift);
    }
}

/// The Pelz–Good asymptotic series for P(D_n ≤ x):
/// K0(z) + K1(z)/√n + K2(z)/n + K3(z)/n^{3/2}, z = x√n, each Kᵢ written
/// with Jacobi-theta sums that converge quickly for small z.
pub fn pelz_good_cdf(n: u64, x: f64) -> f64 {
    use std::f64::consts::PI;
    let nf = n as f64;
    let z = nf.sqrt() * x;
    let (z2, z3, z4, z6) = (z * z, z.powi(3), z.powi(4), z.powi(6));
    let pi2 = PI * PI;
    let (pi4, pi6) = (pi2 * pi2, pi2 * pi2 * pi2);
    let qlog = -pi2 / 8.0 / z2;
    if qlog < -708.0 {
        return 0.0;
    }
    let q = qlog.exp();
    let kmax = (16.0 * z / PI).ceil().max(1.0) as i64;
    // Horner-style accumulation over k of the four series at once.
    let mut acc = [0.0f64; 4];
    for k in (1..=kmax).rev() {
        let m = (2 * k - 1) as f64;
        let (m2, m4, m6) = (m * m, m.powi(4), m.powi(6));
        let terms = [
            1.0,
            -z2 + pi2 / 4.0 * m2,
            (6.0 * z6 + 2.0 * z4)
                + (2.0 * z4 - 5.0 * z2) * pi2 / 4.0 * m2
                + pi4 * (1.0 - 2.0 * z2) / 16.0 * m4,
            (-30.0 * z6 - 90.0 * z.powi(8))
                + pi2 * (135.0 * z4 - 96.0 * z6) / 4.0 * m2
                + pi4 * (-60.0 * z2 + 212.0 * z4) / 16.0 * m4
                + pi6 * (5.0 - 30.0 * z2) / 64.0 * m6,
        ];
        let qp = q.powi((8 * k) as i32);
        for (a, t) in acc.iter_mut().zip(terms) {
            *a = *a * qp + t;
        }
    }
    let sqrt2pi = (2.0 * PI).sqrt();
    let denom = [z, 6.0 * z4, 72.0 * z.powi(7), 6480.0 * z.powi(10)];
    let mut kk = [0.0f64; 4];
    for i in 0..4 {
        kk[i] = acc[i] * q * sqrt2pi / denom[i];
    }
    let q2 = (-pi2 / 2.0 / z2).exp();
    let (mut extra2, mut extra3) = (0.0, 0.0);
    let sqrt3z = 3f64.sqrt() * z;
    for k in 1..=kmax {
        let kf = k as f64;
        let qk = q2.powf(kf * kf);
        extra2 += kf * kf * qk;
        extra3 += (sqrt3z + PI * kf) * (sqrt3z - PI * kf) * kf * kf * qk;
    }
    kk[2] += extra2 * pi2 * sqrt2pi / (-36.0 * z3);
    kk[3] += extra3 * pi2 * sqrt2pi / (216.0 * z6);
    let mut sum = 0.0;
    for (i, v) in kk.iter().enumerate() {
        sum += v / nf.powf(i as f64 / 2.0);
    }
    sum
}

/// P(D_n > x), the survival function of the two-sided statistic
/// (scipy's `kstwo.sf(x, n)`).
pub fn kolmogorov_sf(n: u64, x: f64) -> f64 {
    let nf = n as f64;
    if n == 0 || x.is_nan() {
        return f64::NAN;
    }
    if x >= 1.0 {
        return 0.0;
    }
    if x <= 0.0 {
        return 1.0;
    }
    let t = nf * x;
    if t <= 1.0 {
        if t <= 0.5 {
            return 1.0;
        }
        let cdf = (ln_nfactorial_over_n_pow_n(n) + nf * (2.0 * t - 1.0).ln()).exp();
        return (1.0 - cdf).clamp(0.0, 1.0);
    }
    if t >= nf - 1.0 {
        return (2.0 * (1.0 - x).powf(nf)).clamp(0.0, 1.0);
    }
    if x >= 0.5 {
        return (2.0 * smirnov_sf(n, x)).clamp(0.0, 1.0);
    }
    let nx2 = t * x;
    if n <= 140 {
        if nx2 <= 4.0 {
            return (1.0 - durbin_cdf(n, x)).clamp(0.0, 1.0);
        }
        return (2.0 * smirnov_sf(n, x)).clamp(0.0, 1.0);
    }
    if nx2 >= 370.0 {
        return 0.0;
    }
    if nx2 >= 2.2 {
        return (2.0 * smirnov_sf(n, x)).clamp(0.0, 1.0);
    }
    let cdf = if n <= 100_000 && nf * x.powf(1.5) <= 1.4 {
        durbin_cdf(n, x)
    } else {
        pelz_good_cdf(n, x)
    };
    (1.0 - cdf).clamp(0.0, 1.0)
}
