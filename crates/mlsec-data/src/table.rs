//! Tabular data (CSV and Parquet) as typed columns.

use crate::error::{DataError, ErrorKind, Result};
use serde::Serialize;
use std::collections::HashMap;
use std::fs::File;
use std::path::Path;

#[derive(Debug, Clone, PartialEq)]
pub enum ColumnData {
    Int(Vec<Option<i64>>),
    Float(Vec<Option<f64>>),
    Bool(Vec<Option<bool>>),
    Str(Vec<Option<String>>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    /// The source's own type name (`int64`, `utf8`, `timestamp[us]`, …).
    pub source_type: String,
    pub data: ColumnData,
}

impl Column {
    pub fn len(&self) -> usize {
        match &self.data {
            ColumnData::Int(v) => v.len(),
            ColumnData::Float(v) => v.len(),
            ColumnData::Bool(v) => v.len(),
            ColumnData::Str(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value as text, the same for CSV and Parquet input, so rows can be
    /// compared across formats.
    pub fn cell(&self, row: usize) -> Option<String> {
        match &self.data {
            ColumnData::Int(v) => v[row].map(|x| x.to_string()),
            ColumnData::Float(v) => v[row].map(format_float),
            ColumnData::Bool(v) => v[row].map(|x| x.to_string()),
            ColumnData::Str(v) => v[row].clone(),
        }
    }

    pub fn kind(&self) -> &'static str {
        match &self.data {
            ColumnData::Int(_) => "int",
            ColumnData::Float(_) => "float",
            ColumnData::Bool(_) => "bool",
            ColumnData::Str(_) => "string",
        }
    }
}

/// Shortest text that reads back as the same f64 (Rust's `Display` is exact).
fn format_float(x: f64) -> String {
    if x.is_finite() && x == x.trunc() && x.abs() < 1e15 {
        format!("{x:.1}")
    } else {
        x.to_string()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub columns: Vec<Column>,
    pub rows: usize,
}

impl Table {
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }
}

/// Column names that are taken as the label when none is given.
pub const LABEL_NAMES: &[&str] = &[
    "label", "labels", "target", "class", "y", "digit", "category",
];

/// The label column: the one named, or else the one with the most conventional name.
pub fn find_label(table: &Table, requested: Option<&str>) -> Result<Option<usize>> {
    if let Some(name) = requested {
        return table.column(name).map(Some).ok_or_else(|| {
            let names: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
            DataError::new(
                ErrorKind::Malformed,
                format!("no column named '{name}' (columns: {})", names.join(", ")),
            )
        });
    }
    // Earlier names in LABEL_NAMES win: a `label` column beats a feature named `y`.
    Ok(LABEL_NAMES.iter().find_map(|want| {
        table
            .columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(want))
    }))
}

/// Reads a CSV or Parquet file (recognised by content) as a table; other
/// formats are an error that names what was expected.
pub fn read_table(path: &Path) -> Result<Table> {
    use crate::detect::{detect, Format};
    let shown = path.display().to_string();
    match detect(path).map_err(|e| DataError::io(&shown, &e))? {
        Some(Format::Csv) => read_csv(path, &CsvOptions::default()),
        Some(Format::Parquet) => read_parquet(path),
        _ => Err(DataError::new(
            ErrorKind::Unsupported,
            "expected a CSV or Parquet table",
        )),
    }
    .map_err(|e| e.at(&shown))
}

/// CSV reading options.
#[derive(Debug, Clone, Default)]
pub struct CsvOptions {
    /// `None` sniffs: tab for `.tsv` or when the header has more tabs than commas.
    pub delimiter: Option<u8>,
}

/// Reads a CSV file with a header row. Ragged rows are an error naming the line.
pub fn read_csv(path: &Path, opts: &CsvOptions) -> Result<Table> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| DataError::io(&shown, &e))?;
    parse_csv(
        &bytes,
        opts,
        path.extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("tsv")),
    )
    .map_err(|e| e.at(&shown))
}

pub fn parse_csv(bytes: &[u8], opts: &CsvOptions, tsv_hint: bool) -> Result<Table> {
    let first_line = bytes.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let delimiter = opts.delimiter.unwrap_or_else(|| {
        let tabs = first_line.iter().filter(|&&b| b == b'\t').count();
        let commas = first_line.iter().filter(|&&b| b == b',').count();
        if tsv_hint || tabs > commas {
            b'\t'
        } else {
            b','
        }
    });
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(true)
        .flexible(false)
        .from_reader(bytes);
    let headers: Vec<String> = reader
        .headers()
        .map_err(csv_error)?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    if headers.is_empty() || (headers.len() == 1 && headers[0].is_empty()) {
        return Err(DataError::malformed("CSV has no header row"));
    }
    let mut seen = HashMap::new();
    for (i, h) in headers.iter().enumerate() {
        if let Some(j) = seen.insert(h.as_str(), i) {
            return Err(DataError::malformed(format!(
                "CSV header repeats column name '{h}' (columns {} and {})",
                j + 1,
                i + 1
            )));
        }
    }
    let mut raw: Vec<Vec<Option<String>>> = vec![Vec::new(); headers.len()];
    let mut record = csv::StringRecord::new();
    let mut rows = 0usize;
    while reader.read_record(&mut record).map_err(csv_error)? {
        for (col, field) in record.iter().enumerate() {
            let f = field.trim();
            raw[col].push(if f.is_empty() {
                None
            } else {
                Some(f.to_string())
            });
        }
        rows += 1;
    }
    let columns = headers
        .into_iter()
        .zip(raw)
        .map(|(name, values)| infer_column(name, values))
        .collect();
    Ok(Table { columns, rows })
}

fn csv_error(e: csv::Error) -> DataError {
    let line = e.position().map(|p| p.line());
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => DataError::malformed(format!(
            "ragged CSV: line {} has {len} fields, the header has {expected_len}",
            line.unwrap_or(0)
        )),
        csv::ErrorKind::Utf8 { .. } => {
            DataError::malformed(format!("CSV line {} is not valid UTF-8", line.unwrap_or(0)))
        }
        _ => DataError::malformed(format!("CSV: {e}")),
    }
}

/// Picks the narrowest type every non-empty value parses as.
fn infer_column(name: String, values: Vec<Option<String>>) -> Column {
    let (source_type, data) = if let Some(v) = parse_all(&values, str::parse::<i64>) {
        ("int", ColumnData::Int(v))
    } else if let Some(v) = parse_all(&values, str::parse::<f64>) {
        ("float", ColumnData::Float(v))
    } else if let Some(v) = parse_all(&values, |s| {
        if s.eq_ignore_ascii_case("true") {
            Ok(true)
        } else if s.eq_ignore_ascii_case("false") {
            Ok(false)
        } else {
            Err(())
        }
    }) {
        ("bool", ColumnData::Bool(v))
    } else {
        ("string", ColumnData::Str(values))
    };
    Column {
        name,
        source_type: source_type.into(),
        data,
    }
}

/// Every present value parsed, or `None` if one fails or none is present.
fn parse_all<T, E>(
    values: &[Option<String>],
    parse: impl Fn(&str) -> std::result::Result<T, E>,
) -> Option<Vec<Option<T>>> {
    values.iter().flatten().next()?;
    values
        .iter()
        .map(|v| match v {
            None => Some(None),
            Some(s) => parse(s).ok().map(Some),
        })
        .collect()
}

/// Reads every row group of a Parquet file into columns. Types without a
/// natural scalar form (lists, structs, binary) are refused by name.
pub fn read_parquet(path: &Path) -> Result<Table> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::*;
    use arrow_array::Array;
    use arrow_schema::DataType;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    let shown = path.display().to_string();
    let file = File::open(path).map_err(|e| DataError::io(&shown, &e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| {
        DataError::malformed(format!("not a readable Parquet file: {e}")).at(&shown)
    })?;
    let schema = builder.schema().clone();
    let reader = builder
        .build()
        .map_err(|e| DataError::malformed(format!("Parquet: {e}")).at(&shown))?;
    let mut columns: Vec<Column> = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let data = match field.data_type() {
            DataType::Float16 | DataType::Float32 | DataType::Float64 => ColumnData::Float(Vec::new()),
            DataType::Boolean => ColumnData::Bool(Vec::new()),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(_, _) => {
                ColumnData::Str(Vec::new())
            }
            t if t.is_integer() || t.is_temporal() => ColumnData::Int(Vec::new()),
            other => {
                return Err(DataError::unsupported(format!(
                    "Parquet column '{}' has type {other}; mlsec reads numeric, boolean, string, date and timestamp columns",
                    field.name()
                ))
                .at(&shown))
            }
        };
        columns.push(Column {
            name: field.name().clone(),
            source_type: field.data_type().to_string().to_lowercase(),
            data,
        });
    }
    let mut rows = 0usize;
    for batch in reader {
        let batch = batch.map_err(|e| DataError::malformed(format!("Parquet: {e}")).at(&shown))?;
        rows += batch.num_rows();
        for (col, array) in columns.iter_mut().zip(batch.columns()) {
            let n = array.len();
            let valid = |i: usize| array.is_valid(i);
            match (&mut col.data, array.data_type()) {
                (ColumnData::Float(v), DataType::Float64) => {
                    let a = array.as_primitive::<Float64Type>();
                    v.extend((0..n).map(|i| valid(i).then(|| a.value(i))));
                }
                (ColumnData::Float(v), DataType::Float32) => {
                    let a = array.as_primitive::<Float32Type>();
                    v.extend((0..n).map(|i| valid(i).then(|| a.value(i) as f64)));
                }
                (ColumnData::Float(v), DataType::Float16) => {
                    let a = array.as_primitive::<Float16Type>();
                    v.extend((0..n).map(|i| valid(i).then(|| a.value(i).to_f64())));
                }
                (ColumnData::Bool(v), _) => {
                    let a = array.as_boolean();
                    v.extend((0..n).map(|i| valid(i).then(|| a.value(i))));
                }
                (ColumnData::Str(v), DataType::Utf8) => {
                    let a = array.as_string::<i32>();
                    v.extend((0..n).map(|i| valid(i).then(|| a.value(i).to_string())));
                }
                (ColumnData::Str(v), DataType::LargeUtf8) => {
                    let a = array.as_string::<i64>();
                    v.extend((0..n).map(|i| valid(i).then(|| a.value(i).to_string())));
                }
                (ColumnData::Str(v), DataType::Utf8View) => {
                    let a = array.as_string_view();
                    v.extend((0..n).map(|i| valid(i).then(|| a.value(i).to_string())));
                }
                (ColumnData::Str(v), DataType::Dictionary(_, _)) => {
                    let a = array.as_any_dictionary();
                    let keys = a.normalized_keys();
                    let values = a.values();
                    let strings: Vec<Option<String>> = match values.data_type() {
                        DataType::Utf8 => {
                            let s = values.as_string::<i32>();
                            (0..s.len())
                                .map(|i| s.is_valid(i).then(|| s.value(i).to_string()))
                                .collect()
                        }
                        DataType::LargeUtf8 => {
                            let s = values.as_string::<i64>();
                            (0..s.len())
                                .map(|i| s.is_valid(i).then(|| s.value(i).to_string()))
                                .collect()
                        }
                        other => {
                            return Err(DataError::unsupported(format!(
                                "Parquet column '{}' is a dictionary of {other}",
                                col.name
                            ))
                            .at(&shown))
                        }
                    };
                    v.extend((0..n).map(|i| {
                        if valid(i) {
                            strings.get(keys[i]).cloned().flatten()
                        } else {
                            None
                        }
                    }));
                }
                (ColumnData::Int(v), t) => {
                    let ints = integer_values(array.as_ref(), t).ok_or_else(|| {
                        DataError::unsupported(format!(
                            "Parquet column '{}' has type {t}",
                            col.name
                        ))
                        .at(&shown)
                    })?;
                    v.extend(ints);
                }
                (_, t) => {
                    return Err(DataError::unsupported(format!(
                        "Parquet column '{}' changes type to {t} between row groups",
                        col.name
                    ))
                    .at(&shown))
                }
            }
        }
    }
    Ok(Table { columns, rows })
}

/// Integer-like arrow arrays (integers, dates, timestamps, durations) as i64;
/// u64 values above i64::MAX become None rather than wrapping.
fn integer_values(
    array: &dyn arrow_array::Array,
    t: &arrow_schema::DataType,
) -> Option<Vec<Option<i64>>> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::*;
    use arrow_schema::{DataType, TimeUnit};
    let n = array.len();
    macro_rules! prim {
        ($ty:ty) => {{
            let a = array.as_primitive::<$ty>();
            (0..n)
                .map(|i| {
                    if array.is_valid(i) {
                        i64::try_from(a.value(i)).ok()
                    } else {
                        None
                    }
                })
                .collect()
        }};
    }
    Some(match t {
        DataType::Int8 => prim!(Int8Type),
        DataType::Int16 => prim!(Int16Type),
        DataType::Int32 => prim!(Int32Type),
        DataType::Int64 => prim!(Int64Type),
        DataType::UInt8 => prim!(UInt8Type),
        DataType::UInt16 => prim!(UInt16Type),
        DataType::UInt32 => prim!(UInt32Type),
        DataType::UInt64 => prim!(UInt64Type),
        DataType::Date32 => prim!(Date32Type),
        DataType::Date64 => prim!(Date64Type),
        DataType::Timestamp(TimeUnit::Second, _) => prim!(TimestampSecondType),
        DataType::Timestamp(TimeUnit::Millisecond, _) => prim!(TimestampMillisecondType),
        DataType::Timestamp(TimeUnit::Microsecond, _) => prim!(TimestampMicrosecondType),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => prim!(TimestampNanosecondType),
        _ => return None,
    })
}

/// Column statistics shown by `mlsec data inspect`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ColumnSummary {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub source_type: String,
    pub nulls: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub non_finite: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean: Option<f64>,
    /// Distinct non-null values, counted up to [`DISTINCT_CAP`].
    pub distinct: usize,
    pub distinct_capped: bool,
}

pub const DISTINCT_CAP: usize = 10_000;

pub fn summarise_column(col: &Column) -> ColumnSummary {
    let mut s = ColumnSummary {
        name: col.name.clone(),
        kind: col.kind(),
        source_type: col.source_type.clone(),
        nulls: 0,
        non_finite: None,
        min: None,
        max: None,
        mean: None,
        distinct: 0,
        distinct_capped: false,
    };
    let mut distinct = std::collections::HashSet::new();
    let numeric = |x: f64, s: &mut ColumnSummary, acc: &mut (f64, usize)| {
        if x.is_finite() {
            s.min = Some(s.min.map_or(x, |m| m.min(x)));
            s.max = Some(s.max.map_or(x, |m| m.max(x)));
            acc.0 += x;
            acc.1 += 1;
        } else {
            *s.non_finite.get_or_insert(0) += 1;
        }
    };
    let mut acc = (0.0f64, 0usize);
    for row in 0..col.len() {
        match &col.data {
            ColumnData::Int(v) => match v[row] {
                Some(x) => numeric(x as f64, &mut s, &mut acc),
                None => s.nulls += 1,
            },
            ColumnData::Float(v) => match v[row] {
                Some(x) => {
                    s.non_finite.get_or_insert(0);
                    numeric(x, &mut s, &mut acc)
                }
                None => s.nulls += 1,
            },
            ColumnData::Bool(v) => {
                if v[row].is_none() {
                    s.nulls += 1
                }
            }
            ColumnData::Str(v) => {
                if v[row].is_none() {
                    s.nulls += 1
                }
            }
        }
        if distinct.len() < DISTINCT_CAP {
            if let Some(cell) = col.cell(row) {
                distinct.insert(cell);
            }
        } else {
            s.distinct_capped = true;
        }
    }
    if acc.1 > 0 {
        s.mean = Some(acc.0 / acc.1 as f64);
    }
    s.distinct = distinct.len();
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infers_types_and_nulls() {
        let t = parse_csv(
            b"a,b,c,d\n1,1.5,x,true\n2,,y,false\n3,nan,,TRUE\n",
            &CsvOptions::default(),
            false,
        )
        .unwrap();
        assert_eq!(t.rows, 3);
        let kinds: Vec<&str> = t.columns.iter().map(|c| c.kind()).collect();
        assert_eq!(kinds, ["int", "float", "string", "bool"]);
        let b = summarise_column(&t.columns[1]);
        assert_eq!((b.nulls, b.non_finite), (1, Some(1)));
    }

    #[test]
    fn ragged_rows_name_the_line() {
        let e = parse_csv(b"a,b\n1,2\n3\n", &CsvOptions::default(), false).unwrap_err();
        assert!(
            e.message.contains("line 3 has 1 fields, the header has 2"),
            "{e}"
        );
    }

    #[test]
    fn tabs_are_sniffed() {
        let t = parse_csv(b"a\tb\n1\t2\n", &CsvOptions::default(), false).unwrap();
        assert_eq!(t.columns.len(), 2);
    }

    #[test]
    fn label_column_is_found_by_name_or_request() {
        let t = parse_csv(b"x,Label\n1,a\n", &CsvOptions::default(), false).unwrap();
        assert_eq!(find_label(&t, None).unwrap(), Some(1));
        assert_eq!(find_label(&t, Some("x")).unwrap(), Some(0));
        assert!(find_label(&t, Some("nope")).is_err());
    }
}
