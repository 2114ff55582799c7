//! A dataset as numeric feature columns plus an optional label: what the
//! statistical screens (drift, the ingestion gate) work on. CSV and Parquet
//! give their numeric columns (booleans as 0/1, missing values as NaN);
//! NPY gives a 2-D array's columns (or a flattened sample per row); the
//! bundled MNIST gives its 784 pixels per digit with the digit as label.

use crate::detect::{detect, Format};
use crate::error::{DataError, ErrorKind, Result};
use crate::table::{self, ColumnData, CsvOptions};
use std::path::Path;

#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub names: Vec<String>,
    /// One vector per feature, `rows` long; NaN marks a missing value.
    pub columns: Vec<Vec<f64>>,
    pub labels: Option<Vec<String>>,
    pub rows: usize,
    /// Columns that are neither numeric features nor the label (text).
    pub skipped: Vec<String>,
}

impl Frame {
    /// Loads `path` (or `mnist` for the bundled sample); `label` names the
    /// label column of a table (default: a conventionally named one).
    pub fn load(path: &str, label: Option<&str>) -> Result<Frame> {
        if path == "mnist" && !Path::new(path).exists() {
            let m = crate::mnist::load()?;
            let labels = m.labels.iter().map(|l| l.to_string()).collect();
            return Ok(Self::from_array(&m.images, Some(labels)));
        }
        let p = Path::new(path);
        let format = detect(p)
            .map_err(|e| DataError::io(path, &e))?
            .ok_or_else(|| {
                DataError::new(ErrorKind::Unsupported, "not a CSV, Parquet or NPY dataset").at(path)
            })?;
        match format {
            Format::Csv => {
                let t = table::read_csv(p, &CsvOptions::default()).map_err(|e| e.at(path))?;
                Self::from_table(&t, label).map_err(|e| e.at(path))
            }
            Format::Parquet => {
                let t = table::read_parquet(p).map_err(|e| e.at(path))?;
                Self::from_table(&t, label).map_err(|e| e.at(path))
            }
            Format::Npy => {
                let bytes = std::fs::read(p).map_err(|e| DataError::io(path, &e))?;
                let f = crate::npy::parse(&bytes).map_err(|e| e.at(path))?;
                Ok(Self::from_array(&f.array, None))
            }
            other => Err(DataError::new(
                ErrorKind::Unsupported,
                format!(
                    "{} datasets are not read as feature tables (use CSV, Parquet, NPY or `mnist`)",
                    other.name()
                ),
            )
            .at(path)),
        }
    }

    /// The numeric columns of a table, with its label column set apart.
    pub fn from_table(t: &table::Table, label: Option<&str>) -> Result<Frame> {
        let label_at = table::find_label(t, label)?;
        let mut f = Frame {
            names: Vec::new(),
            columns: Vec::new(),
            labels: None,
            rows: t.rows,
            skipped: Vec::new(),
        };
        for (i, c) in t.columns.iter().enumerate() {
            if Some(i) == label_at {
                f.labels = Some((0..t.rows).map(|r| c.cell(r).unwrap_or_default()).collect());
                continue;
            }
            let values: Vec<f64> = match &c.data {
                ColumnData::Float(v) => v.iter().map(|x| x.unwrap_or(f64::NAN)).collect(),
                ColumnData::Int(v) => v.iter().map(|x| x.map_or(f64::NAN, |x| x as f64)).collect(),
                ColumnData::Bool(v) => v
                    .iter()
                    .map(|x| x.map_or(f64::NAN, |x| f64::from(u8::from(x))))
                    .collect(),
                ColumnData::Str(_) => {
                    f.skipped.push(c.name.clone());
                    continue;
                }
            };
            f.names.push(c.name.clone());
            f.columns.push(values);
        }
        Ok(f)
    }

    fn from_array(a: &crate::array::NdArray, labels: Option<Vec<String>>) -> Frame {
        let rows = a.samples();
        let width: usize = a.sample_shape().iter().product::<usize>().max(1);
        let width = if a.shape.len() <= 1 { 1 } else { width };
        let mut columns = vec![Vec::with_capacity(rows); width];
        for r in 0..rows {
            for (c, col) in columns.iter_mut().enumerate() {
                col.push(a.get_f64(r * width + c));
            }
        }
        Frame {
            names: (0..width).map(|i| format!("f{i}")).collect(),
            columns,
            labels,
            rows,
            skipped: Vec::new(),
        }
    }

    /// The names of this frame's features that `other` has too, in this
    /// frame's order.
    pub fn shared_features(&self, other: &Frame) -> Vec<String> {
        self.names
            .iter()
            .filter(|n| other.names.contains(n))
            .cloned()
            .collect()
    }

    /// The feature named `name`.
    pub fn feature(&self, name: &str) -> Option<&[f64]> {
        let i = self.names.iter().position(|n| n == name)?;
        Some(&self.columns[i])
    }

    /// Row-major values of the named features, a missing or non-finite
    /// value replaced by `fill[feature]` (callers pass reference medians, so
    /// a gap is not an outlier by itself).
    pub fn row_major(&self, names: &[String], fill: &[f64]) -> Vec<f64> {
        let cols: Vec<&[f64]> = names
            .iter()
            .map(|n| self.feature(n).unwrap_or(&[]))
            .collect();
        let mut out = Vec::with_capacity(self.rows * cols.len());
        for r in 0..self.rows {
            for (c, col) in cols.iter().enumerate() {
                let v = col.get(r).copied().unwrap_or(f64::NAN);
                out.push(if v.is_finite() { v } else { fill[c] });
            }
        }
        out
    }

    /// The median of each named feature over its finite values (0 when none).
    pub fn medians(&self, names: &[String]) -> Vec<f64> {
        names
            .iter()
            .map(|n| {
                let mut v: Vec<f64> = self
                    .feature(n)
                    .unwrap_or(&[])
                    .iter()
                    .copied()
                    .filter(|x| x.is_finite())
                    .collect();
                if v.is_empty() {
                    return 0.0;
                }
                let mid = v.len() / 2;
                *v.select_nth_unstable_by(mid, f64::total_cmp).1
            })
            .collect()
    }
}
