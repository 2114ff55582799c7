//! A dataset as numeric feature columns plus an optional label: what the
//! statistical screens (drift, the ingestion gate) work on. CSV and Parquet
//! give their numeric columns (booleans as 0/1, missing values as NaN);
//! NPY gives a 2-D array's columns (or a flattened sample per row), and NPZ
//! its largest array so, with its label array as labels; an image folder
//! gives each image's pixels with its class as label; the bundled MNIST
//! gives its 784 pixels per digit with the digit as label.

use crate::detect::{detect, Format};
use crate::error::{DataError, ErrorKind, Result};
use crate::stream::{ChunkOptions, FrameChunks};
use crate::table::{self, ColumnData};
use std::path::Path;

/// The largest NPZ member read into a frame (as `data inspect`'s default).
const NPZ_MEMBER_LIMIT: u64 = 8 << 30;

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
        Self::load_in(path, label, ChunkOptions::default(), true)
    }

    /// [`Frame::load`] without the labels, for screens that compare only
    /// features (drift, outliers): a CSV's labels are then never held (as
    /// text, one per row, they can take as much memory as the numbers).
    pub fn load_features(path: &str, label: Option<&str>) -> Result<Frame> {
        let mut f = Self::load_in(path, label, ChunkOptions::default(), false)?;
        f.labels = None;
        Ok(f)
    }

    /// [`Frame::load`], reading CSV and NPY in chunks of `chunks`.
    fn load_in(
        path: &str,
        label: Option<&str>,
        chunks: ChunkOptions,
        labels: bool,
    ) -> Result<Frame> {
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
            // In chunks, keeping only the numbers (and labels): a whole CSV
            // typed at once held its text columns too (733 against 376 MiB
            // peak on a 2M-row reference, docs/BENCHMARKS.md). A chunked
            // CSV's first chunk fixes its features, as for a monitored stream.
            Format::Csv | Format::Npy => {
                let chunks = FrameChunks::open(path, label, chunks)?;
                Self::gather(if labels { chunks.keeping_labels() } else { chunks })
            }
            Format::Parquet => Self::read_parquet(p, label).map_err(|e| e.at(path)),
            Format::Npz => {
                // Arrays as `data inspect` assigns them: the largest is the
                // features, `label` (or a conventionally named integer
                // array) the labels.
                let bytes = mlsec_core::file_bytes::read(p).map_err(|e| DataError::io(path, &e))?;
                let members = crate::npy::parse_npz(&bytes, NPZ_MEMBER_LIMIT).map_err(|e| e.at(path))?;
                let (features, labels) = crate::inspect::npz_roles(&members, label).map_err(|e| e.at(path))?;
                let array = &members[features].file.array;
                let labels = crate::inspect::npz_labels(&members, labels, array.samples())
                    .map_err(|e| e.at(path))?;
                Ok(Self::from_array(array, labels))
            }
            Format::ImageFolder => Self::from_image_folder(p).map_err(|e| e.at(path)),
            other => Err(DataError::new(
                ErrorKind::Unsupported,
                format!(
                    "{} datasets are not read as feature tables (use CSV, Parquet, NPY, NPZ, an image folder or `mnist`)",
                    other.name()
                ),
            )
            .at(path)),
        }
    }

    /// Every chunk of `chunks` appended into one frame.
    fn gather(chunks: FrameChunks) -> Result<Frame> {
        let mut f = Frame {
            names: chunks.names().to_vec(),
            columns: vec![Vec::new(); chunks.names().len()],
            labels: chunks.has_labels().then(Vec::new),
            rows: 0,
            skipped: chunks.skipped().to_vec(),
        };
        for chunk in chunks {
            let chunk = chunk?;
            for (column, part) in f.columns.iter_mut().zip(&chunk.columns) {
                column.extend_from_slice(part);
            }
            if let (Some(all), Some(labels)) = (&mut f.labels, chunk.labels) {
                all.extend(labels);
            }
            f.rows += chunk.rows;
        }
        for column in &mut f.columns {
            column.shrink_to_fit();
        }
        if let Some(labels) = &mut f.labels {
            labels.shrink_to_fit();
        }
        Ok(f)
    }

    /// A Parquet file's numeric columns straight into f64 (no typed table
    /// in between), one share of the columns per core.
    fn read_parquet(path: &Path, label: Option<&str>) -> Result<Frame> {
        let builder = table::parquet_builder(path)?;
        let schema = builder.schema().clone();
        // Sized once from the footer's row count (never above what the
        // file could hold: a corrupt footer cannot reserve unbounded memory).
        let file_len = std::fs::metadata(path).map_or(0, |m| m.len()) as usize;
        let rows_hint = usize::try_from(builder.metadata().file_metadata().num_rows())
            .unwrap_or(0)
            .min(file_len.saturating_mul(8));
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        let label_at = table::find_label_in(&names, label)?;
        enum Read {
            Feature(Vec<f64>),
            Label(table::Column),
            Skipped,
        }
        let parts = crate::stats::on_threads(names.len(), |range| {
            let mut out = Vec::with_capacity(range.len());
            for i in range.clone() {
                let field = schema.field(i);
                out.push(if Some(i) == label_at {
                    match table::Column::empty_for(field) {
                        Ok(c) => Read::Label(c),
                        Err(e) => return vec![Err(e)],
                    }
                } else {
                    match table::Column::empty_for(field).map(|c| c.data) {
                        Ok(ColumnData::Float(_) | ColumnData::Int(_) | ColumnData::Bool(_)) => {
                            Read::Feature(Vec::with_capacity(rows_hint))
                        }
                        _ => Read::Skipped,
                    }
                });
            }
            let rows = table::parquet_columns(path, range, |k, array| match &mut out[k] {
                Read::Feature(v) => {
                    if table::append_f64(v, array) {
                        Ok(())
                    } else {
                        Err(DataError::unsupported(format!(
                            "Parquet column changes type to {} between row groups",
                            array.data_type()
                        )))
                    }
                }
                Read::Label(c) => table::append_array(c, array, &path.display().to_string()),
                Read::Skipped => Ok(()),
            });
            vec![rows.map(|rows| (out, rows))]
        });
        let mut f = Frame {
            names: Vec::new(),
            columns: Vec::new(),
            labels: None,
            rows: 0,
            skipped: Vec::new(),
        };
        let mut i = 0;
        for part in parts {
            let (reads, rows) = part?;
            f.rows = rows;
            for r in reads {
                match r {
                    Read::Feature(v) => {
                        f.names.push(names[i].to_string());
                        f.columns.push(v);
                    }
                    Read::Label(c) => {
                        f.labels = Some(
                            (0..c.len())
                                .map(|r| c.cell(r).unwrap_or_default())
                                .collect(),
                        );
                    }
                    Read::Skipped => f.skipped.push(names[i].to_string()),
                }
                i += 1;
            }
        }
        Ok(f)
    }

    /// An image-classification folder (`FOLDER/<class>/<image>`): one row
    /// per image, its pixels as features `f0`, `f1`, … in row-major order
    /// (as NPY arrays and the bundled MNIST give them), its class folder as
    /// label. Images are read as grey levels when the first one is grey,
    /// else as RGB (alpha dropped); all must share the first one's size.
    fn from_image_folder(root: &Path) -> Result<Frame> {
        let folder = crate::image_folder::scan(root, &|_| {})?;
        let Some(first) = folder.images.first() else {
            return Err(DataError::malformed("no images"));
        };
        let grey = first.color.starts_with('L');
        let (w, h) = (first.width, first.height);
        let width = w as usize * h as usize * if grey { 1 } else { 3 };
        let mut columns = vec![Vec::with_capacity(folder.images.len()); width];
        let mut labels = Vec::with_capacity(folder.images.len());
        for entry in &folder.images {
            let file = root.join(&entry.path);
            let shown = file.display().to_string();
            let bytes = std::fs::read(&file).map_err(|e| DataError::io(&shown, &e))?;
            let img = image::load_from_memory(&bytes)
                .map_err(|e| DataError::malformed(format!("cannot decode: {e}")).at(&shown))?;
            if (img.width(), img.height()) != (w, h) {
                return Err(DataError::malformed(format!(
                    "{}×{} image, the first one ({}) is {w}×{h}: every image becomes one row of the same width",
                    img.width(),
                    img.height(),
                    first.path
                ))
                .at(&shown));
            }
            let pixels = if grey {
                img.to_luma8().into_raw()
            } else {
                img.to_rgb8().into_raw()
            };
            for (col, &v) in columns.iter_mut().zip(&pixels) {
                col.push(f64::from(v));
            }
            labels.push(entry.class.clone());
        }
        Ok(Frame {
            names: (0..width).map(|i| format!("f{i}")).collect(),
            columns,
            rows: labels.len(),
            labels: Some(labels),
            skipped: Vec::new(),
        })
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

    /// What fills a gap (NaN or infinite value) in each named feature of
    /// this frame and `other`: this frame's median over its finite values
    /// (0 when none), computed only for features that have a gap in either
    /// (0 elsewhere, where it is never read).
    pub fn gap_fill(&self, other: &Frame, names: &[String]) -> Vec<f64> {
        let has_gap = |f: &Frame, n: &str| f.feature(n).is_some_and(has_gap);
        names
            .iter()
            .map(|n| {
                if !has_gap(self, n) && !has_gap(other, n) {
                    return 0.0;
                }
                self.feature(n).map_or(0.0, finite_median)
            })
            .collect()
    }
}

/// Whether a column has a missing (NaN) or infinite value.
pub fn has_gap(column: &[f64]) -> bool {
    column.iter().any(|x| !x.is_finite())
}

/// The median of a column's finite values (the upper one of an even
/// count; 0 when there is none): what fills its gaps.
pub fn finite_median(column: &[f64]) -> f64 {
    let mut v: Vec<f64> = column.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return 0.0;
    }
    let mid = v.len() / 2;
    *v.select_nth_unstable_by(mid, f64::total_cmp).1
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{ArrayRef, BooleanArray, Float32Array, Int64Array, RecordBatch, StringArray};
    use std::sync::Arc;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// A CSV read in chunks of any size (cut anywhere, quoted text
        /// included) gives the frame the whole file typed at once gives:
        /// the same features, values, gaps, skipped text and labels.
        #[test]
        fn a_csv_in_chunks_is_the_whole_csv(
            rows in proptest::collection::vec(
                (-1e6f64..1e6, proptest::option::of(0i64..1000), 0usize..3, "[a-z ,\"]{0,12}"),
                1..120,
            ),
            block in 1usize..400,
        ) {
            let mut csv = String::from("x,count,note,label\n");
            // The first chunk fixes the features (docs/data.md): a number in
            // the first row makes `count` one, as any number does in the
            // whole file.
            for (i, (x, count, class, note)) in rows.iter().enumerate() {
                let count = if i == 0 { Some(count.unwrap_or(7)) } else { *count };
                let count = count.map_or(String::new(), |c| c.to_string());
                let note = note.replace('"', "\"\"");
                csv.push_str(&format!("{x},{count},\"{note}\",{}\n", ["cat", "dog", "1"][*class]));
            }
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("ref.csv");
            std::fs::write(&path, &csv).unwrap();
            let shown = path.to_str().unwrap();
            let whole = Frame::from_table(&table::read_csv(&path, &table::CsvOptions::default()).unwrap(), None)
                .unwrap();
            let opts = ChunkOptions { csv_bytes: block, ..ChunkOptions::default() };
            let chunked = Frame::load_in(shown, None, opts, true).unwrap();
            proptest::prop_assert_eq!(format!("{chunked:?}"), format!("{whole:?}"));
            let features = Frame::load_in(shown, None, opts, false).unwrap();
            proptest::prop_assert_eq!(features.labels, None);
            proptest::prop_assert_eq!(format!("{:?}", features.columns), format!("{:?}", whole.columns));
        }
    }

    /// The direct Parquet reader gives the frame the typed table gives:
    /// nulls as NaN, integers and booleans as numbers, text set aside, the
    /// label as text — over several row groups.
    #[test]
    fn npz_frames_take_the_largest_array_and_the_label_array() {
        use crate::array::{DType, NdArray};
        use std::io::Write;
        let x = NdArray::new(
            DType::F32,
            vec![3, 2],
            [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
        )
        .unwrap();
        let y = NdArray::new(
            DType::I64,
            vec![3],
            [0i64, 1, 1].iter().flat_map(|v| v.to_le_bytes()).collect(),
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.npz");
        let mut z = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        for (name, a) in [("x.npy", &x), ("y.npy", &y)] {
            z.start_file(name, zip::write::SimpleFileOptions::default())
                .unwrap();
            z.write_all(&crate::npy::write(a)).unwrap();
        }
        z.finish().unwrap();
        let f = Frame::load(path.to_str().unwrap(), None).unwrap();
        assert_eq!(f.names, ["f0", "f1"]);
        assert_eq!(f.columns[1], [2.0, 4.0, 6.0]);
        assert_eq!(
            f.labels.as_deref(),
            Some(&["0".to_string(), "1".into(), "1".into()][..])
        );
        let err = Frame::load(path.to_str().unwrap(), Some("labels")).unwrap_err();
        assert!(
            err.to_string()
                .contains("no array named 'labels' (arrays: x, y)"),
            "{err}"
        );
    }

    #[test]
    fn image_folders_give_one_row_per_image_labelled_by_class() {
        let dir = tempfile::tempdir().unwrap();
        for (class, shade) in [("cat", 10u8), ("dog", 200)] {
            std::fs::create_dir(dir.path().join(class)).unwrap();
            for k in 0..2u8 {
                let img = image::GrayImage::from_fn(3, 2, |x, y| {
                    image::Luma([shade + k + (x + 3 * y) as u8])
                });
                img.save(dir.path().join(class).join(format!("{k}.png")))
                    .unwrap();
            }
        }
        let f = Frame::load(dir.path().to_str().unwrap(), None).unwrap();
        assert_eq!((f.rows, f.names.len()), (4, 6));
        assert_eq!(f.labels.as_deref().unwrap(), ["cat", "cat", "dog", "dog"]);
        // Row 3 is dog/1.png: pixel (x=2, y=1) is feature 5.
        assert_eq!(f.columns[5][3], f64::from(200 + 1 + 5));
        image::GrayImage::new(4, 4)
            .save(dir.path().join("dog").join("big.png"))
            .unwrap();
        let err = Frame::load(dir.path().to_str().unwrap(), None).unwrap_err();
        assert!(err.to_string().contains("4×4 image"), "{err}");
    }

    #[test]
    fn parquet_frames_match_the_typed_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let columns: Vec<(&str, ArrayRef)> = vec![
            (
                "x",
                Arc::new(Float32Array::from(vec![
                    Some(1.5),
                    None,
                    Some(-2.0),
                    Some(4.0),
                ])),
            ),
            (
                "n",
                Arc::new(Int64Array::from(vec![
                    Some(3),
                    Some(-7),
                    None,
                    Some(1 << 40),
                ])),
            ),
            (
                "flag",
                Arc::new(BooleanArray::from(vec![
                    Some(true),
                    None,
                    Some(false),
                    Some(true),
                ])),
            ),
            (
                "city",
                Arc::new(StringArray::from(vec!["a", "b", "c", "d"])),
            ),
            ("label", Arc::new(Int64Array::from(vec![0, 1, 1, 0]))),
        ];
        let batch = RecordBatch::try_from_iter(columns).unwrap();
        let props = parquet::file::properties::WriterProperties::builder()
            .set_max_row_group_row_count(Some(3))
            .build();
        let file = std::fs::File::create(&path).unwrap();
        let mut w =
            parquet::arrow::ArrowWriter::try_new(file, batch.schema(), Some(props)).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();

        let direct = Frame::read_parquet(&path, None).unwrap();
        let via_table = Frame::from_table(&table::read_parquet(&path).unwrap(), None).unwrap();
        assert_eq!(direct.names, via_table.names);
        assert_eq!(direct.labels, via_table.labels);
        assert_eq!(direct.skipped, ["city"]);
        assert_eq!(direct.rows, 4);
        for (a, b) in direct.columns.iter().zip(&via_table.columns) {
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(a), bits(b));
        }
        assert!(direct.columns[0][1].is_nan());
    }
}
