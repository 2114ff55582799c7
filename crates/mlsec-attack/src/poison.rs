//! Poisoned batches with their ground truth: `label-flip` (a row's label
//! changed to another class), `shift` (a row's numeric features moved by
//! several standard deviations) and `inject` (new rows drawn off the
//! data's range). The poisoned file is CSV; the truth file lists, per row
//! of it, whether and how it was poisoned.

use mlsec_data::table::{ColumnData, Table};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use std::collections::BTreeSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    LabelFlip,
    Shift,
    Inject,
}

impl Kind {
    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "label-flip" => Some(Kind::LabelFlip),
            "shift" => Some(Kind::Shift),
            "inject" => Some(Kind::Inject),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Kind::LabelFlip => "label-flip",
            Kind::Shift => "shift",
            Kind::Inject => "inject",
        }
    }
}

pub struct Poisoned {
    /// Header and rows as text, ready to write as CSV.
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// For each output row: poisoned or not.
    pub truth: Vec<bool>,
    pub kind: Kind,
}

fn below(rng: &mut rand_chacha::ChaCha8Rng, n: usize) -> usize {
    ((rng.next_u64() as u128 * n as u128) >> 64) as usize
}

fn uniform(rng: &mut rand_chacha::ChaCha8Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// Poisons `rate` of the rows of `t` (at least one). `label` is the label
/// column's index (needed for label flips); `magnitude` is the shift in
/// standard deviations.
pub fn poison(
    t: &Table,
    label: Option<usize>,
    kind: Kind,
    rate: f64,
    magnitude: f64,
    seed: u64,
) -> Result<Poisoned, String> {
    if !(0.0..=1.0).contains(&rate) {
        return Err(format!("rate {rate} is outside [0, 1]"));
    }
    if t.rows == 0 {
        return Err("the dataset has no rows".into());
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let header: Vec<String> = t.columns.iter().map(|c| c.name.clone()).collect();
    let mut rows: Vec<Vec<String>> = (0..t.rows)
        .map(|r| {
            t.columns
                .iter()
                .map(|c| c.cell(r).unwrap_or_default())
                .collect()
        })
        .collect();
    let count = ((rate * t.rows as f64).round() as usize).clamp(1, t.rows);
    let numeric: Vec<(usize, f64, f64, f64, f64)> = t
        .columns
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != label)
        .filter_map(|(i, c)| {
            let v: Vec<f64> = match &c.data {
                ColumnData::Float(v) => v
                    .iter()
                    .flatten()
                    .copied()
                    .filter(|x| x.is_finite())
                    .collect(),
                ColumnData::Int(v) => v.iter().flatten().map(|&x| x as f64).collect(),
                _ => return None,
            };
            if v.is_empty() {
                return None;
            }
            let n = v.len() as f64;
            let mean = v.iter().sum::<f64>() / n;
            let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
            let (lo, hi) = v
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
                    (a.min(x), b.max(x))
                });
            Some((i, mean, sd, lo, hi))
        })
        .collect();
    let is_int = |i: usize| matches!(t.columns[i].data, ColumnData::Int(_));
    let fmt = |i: usize, x: f64| {
        if is_int(i) {
            format!("{}", x.round() as i64)
        } else {
            format!("{x}")
        }
    };
    let mut chosen = BTreeSet::new();
    let mut truth = vec![false; t.rows];
    match kind {
        Kind::LabelFlip | Kind::Shift => {
            while chosen.len() < count {
                chosen.insert(below(&mut rng, t.rows));
            }
        }
        Kind::Inject => {}
    }
    match kind {
        Kind::LabelFlip => {
            let li = label.ok_or("label flips need a label column (--label)")?;
            let classes: Vec<String> = rows
                .iter()
                .map(|r| r[li].clone())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            if classes.len() < 2 {
                return Err("label flips need at least two classes".into());
            }
            for &r in &chosen {
                let others: Vec<&String> = classes.iter().filter(|c| **c != rows[r][li]).collect();
                rows[r][li] = others[below(&mut rng, others.len())].clone();
                truth[r] = true;
            }
        }
        Kind::Shift => {
            if numeric.is_empty() {
                return Err("a shift needs numeric features".into());
            }
            for &r in &chosen {
                for &(i, _, sd, _, _) in &numeric {
                    if let Ok(x) = rows[r][i].parse::<f64>() {
                        let sign = if rng.next_u64() & 1 == 0 { 1.0 } else { -1.0 };
                        rows[r][i] = fmt(i, x + sign * magnitude * sd.max(1e-12));
                    }
                }
                truth[r] = true;
            }
        }
        Kind::Inject => {
            if numeric.is_empty() {
                return Err("injected points need numeric features".into());
            }
            for _ in 0..count {
                let mut row = rows[below(&mut rng, t.rows)].clone();
                for &(i, _, _, lo, hi) in &numeric {
                    let span = (hi - lo).max(1e-12);
                    // Off the data: beyond its range on one side or the other.
                    let u = uniform(&mut rng);
                    let x = if rng.next_u64() & 1 == 0 {
                        hi + span * (0.2 + u)
                    } else {
                        lo - span * (0.2 + u)
                    };
                    row[i] = fmt(i, x);
                }
                let at = below(&mut rng, rows.len() + 1);
                rows.insert(at, row);
                truth.insert(at, true);
            }
        }
    }
    Ok(Poisoned {
        header,
        rows,
        truth,
        kind,
    })
}

impl Poisoned {
    pub fn write_csv(&self, path: &std::path::Path) -> Result<(), String> {
        let mut w = csv::Writer::from_path(path).map_err(|e| format!("{}: {e}", path.display()))?;
        w.write_record(&self.header).map_err(|e| e.to_string())?;
        for r in &self.rows {
            w.write_record(r).map_err(|e| e.to_string())?;
        }
        w.flush().map_err(|e| e.to_string())
    }

    pub fn write_truth(&self, path: &std::path::Path) -> Result<(), String> {
        let mut w = csv::Writer::from_path(path).map_err(|e| format!("{}: {e}", path.display()))?;
        w.write_record(["row", "poisoned", "kind"])
            .map_err(|e| e.to_string())?;
        for (i, &p) in self.truth.iter().enumerate() {
            let kind = if p { self.kind.name() } else { "" };
            w.write_record([i.to_string(), u8::from(p).to_string(), kind.to_string()])
                .map_err(|e| e.to_string())?;
        }
        w.flush().map_err(|e| e.to_string())
    }
}
