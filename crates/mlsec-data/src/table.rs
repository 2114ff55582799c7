//! Tabular data (CSV and Parquet) as typed columns.

use crate::error::{DataError, ErrorKind, Result};
use serde::Serialize;
use std::collections::HashMap;
use std::fs::File;
use std::mem::MaybeUninit;
use std::path::Path;

#[derive(Debug, Clone, PartialEq)]
pub enum ColumnData {
    Int(Vec<Option<i64>>),
    Float(Vec<Option<f64>>),
    Bool(Vec<Option<bool>>),
    Str(TextColumn),
}

/// A text column's values back to back in one buffer: one allocation per
/// column rather than one per cell (building half a million `String`s cost
/// a CSV read more than parsing its eight float columns).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextColumn {
    text: String,
    /// Where each value ends in `text`, with [`MISSING`] set for a null.
    ends: Vec<u64>,
}

/// Marks a missing value's end (no text reaches 2^63 bytes).
const MISSING: u64 = 1 << 63;

impl TextColumn {
    pub fn with_capacity(rows: usize, bytes: usize) -> Self {
        TextColumn {
            text: String::with_capacity(bytes),
            ends: Vec::with_capacity(rows),
        }
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn push(&mut self, value: Option<&str>) {
        let end = match value {
            Some(t) => {
                self.text.push_str(t);
                self.text.len() as u64
            }
            None => self.text.len() as u64 | MISSING,
        };
        self.ends.push(end);
    }

    /// The value of `row` (`None` for a null); panics past the end, like
    /// indexing the other columns.
    pub fn get(&self, row: usize) -> Option<&str> {
        let end = self.ends[row];
        if end & MISSING != 0 {
            return None;
        }
        let start = row.checked_sub(1).map_or(0, |p| self.ends[p] & !MISSING);
        Some(&self.text[start as usize..end as usize])
    }

    pub fn iter(&self) -> impl Iterator<Item = Option<&str>> + '_ {
        (0..self.len()).map(|r| self.get(r))
    }
}

impl<'a> Extend<Option<&'a str>> for TextColumn {
    fn extend<I: IntoIterator<Item = Option<&'a str>>>(&mut self, values: I) {
        for v in values {
            self.push(v);
        }
    }
}

impl<'a> FromIterator<Option<&'a str>> for TextColumn {
    fn from_iter<I: IntoIterator<Item = Option<&'a str>>>(values: I) -> Self {
        let mut c = TextColumn::default();
        c.extend(values);
        c
    }
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
            ColumnData::Str(v) => v.get(row).map(str::to_string),
        }
    }

    /// An empty column for a Parquet (arrow) field; types without a
    /// natural scalar form (lists, structs, binary, decimals) are refused
    /// by name.
    pub fn empty_for(field: &arrow_schema::Field) -> Result<Column> {
        use arrow_schema::DataType;
        let data = match field.data_type() {
            DataType::Float16 | DataType::Float32 | DataType::Float64 => ColumnData::Float(Vec::new()),
            DataType::Boolean => ColumnData::Bool(Vec::new()),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(_, _) => {
                ColumnData::Str(TextColumn::default())
            }
            t if t.is_integer() || t.is_temporal() => ColumnData::Int(Vec::new()),
            other => {
                return Err(DataError::unsupported(format!(
                    "Parquet column '{}' has type {other}; mlsec reads numeric, boolean, string, date and timestamp columns",
                    field.name()
                )))
            }
        };
        Ok(Column {
            name: field.name().clone(),
            source_type: field.data_type().to_string().to_lowercase(),
            data,
        })
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
    let names: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
    find_label_in(&names, requested)
}

/// [`find_label`] over column names.
pub fn find_label_in(names: &[&str], requested: Option<&str>) -> Result<Option<usize>> {
    if let Some(name) = requested {
        return names
            .iter()
            .position(|n| *n == name)
            .map(Some)
            .ok_or_else(|| {
                DataError::new(
                    ErrorKind::Malformed,
                    format!("no column named '{name}' (columns: {})", names.join(", ")),
                )
            });
    }
    // Earlier names in LABEL_NAMES win: a `label` column beats a feature named `y`.
    Ok(LABEL_NAMES
        .iter()
        .find_map(|want| names.iter().position(|n| n.eq_ignore_ascii_case(want))))
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
    /// Always use the quote-aware parser, even for input without quotes
    /// (which otherwise is split on line ends and delimiters directly, on
    /// every core). Both give the same table; the property tests compare them.
    pub general_parser: bool,
}

/// Reads a CSV file with a header row. Ragged rows are an error naming the line.
pub fn read_csv(path: &Path, opts: &CsvOptions) -> Result<Table> {
    let shown = path.display().to_string();
    let bytes = mlsec_core::file_bytes::read(path).map_err(|e| DataError::io(&shown, &e))?;
    parse_csv(
        &bytes,
        opts,
        path.extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("tsv")),
    )
    .map_err(|e| e.at(&shown))
}

pub fn parse_csv(bytes: &[u8], opts: &CsvOptions, tsv_hint: bool) -> Result<Table> {
    let header = parse_csv_header(bytes, opts.delimiter, tsv_hint)?;
    let body = &bytes[header.body_start..];
    let text = csv_text(body, header.lines + 1)?;
    let columns = parse_csv_body(text, &header, opts.general_parser, header.lines + 1)?;
    let rows = columns.first().map_or(0, Column::len);
    Ok(Table { columns, rows })
}

/// A CSV file's header row, its delimiter and where its body starts.
#[derive(Debug, Clone)]
pub struct CsvHeader {
    pub delimiter: u8,
    pub names: Vec<String>,
    /// Byte offset of the first body byte.
    pub body_start: usize,
    /// Line feeds before the body (the header's lines).
    pub lines: usize,
}

/// Reads the header row at the start of `bytes` (which must hold all of
/// it); `delimiter: None` sniffs tab against comma from the first line.
pub fn parse_csv_header(bytes: &[u8], delimiter: Option<u8>, tsv_hint: bool) -> Result<CsvHeader> {
    let first_line = bytes.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let delimiter = delimiter.unwrap_or_else(|| {
        let tabs = first_line.iter().filter(|&&b| b == b'\t').count();
        let commas = first_line.iter().filter(|&&b| b == b',').count();
        if tsv_hint || tabs > commas {
            b'\t'
        } else {
            b','
        }
    });
    let mut header_reader = csv_reader(bytes, delimiter);
    let mut header = csv::StringRecord::new();
    if !header_reader.read_record(&mut header).map_err(csv_error)? {
        return Err(DataError::malformed("CSV has no header row"));
    }
    let names: Vec<String> = header.iter().map(|h| h.trim().to_string()).collect();
    if names.is_empty() || (names.len() == 1 && names[0].is_empty()) {
        return Err(DataError::malformed("CSV has no header row"));
    }
    let mut seen = HashMap::new();
    for (i, h) in names.iter().enumerate() {
        if let Some(j) = seen.insert(h.as_str(), i) {
            return Err(DataError::malformed(format!(
                "CSV header repeats column name '{h}' (columns {} and {})",
                j + 1,
                i + 1
            )));
        }
    }
    let mut body_start = header_reader.position().byte() as usize;
    // The reader stops between the \r and \n of a CRLF header line.
    if body_start > 0 && bytes[body_start - 1] == b'\r' && bytes.get(body_start) == Some(&b'\n') {
        body_start += 1;
    }
    let lines = memchr::memchr_iter(b'\n', &bytes[..body_start]).count();
    Ok(CsvHeader {
        delimiter,
        names,
        body_start,
        lines,
    })
}

/// Parses whole records of a CSV body into typed columns; `first_line` is
/// the file line number of the body's first line, for error messages.
pub fn parse_csv_body(
    body: &str,
    header: &CsvHeader,
    general_parser: bool,
    first_line: usize,
) -> Result<Vec<Column>> {
    let (delimiter, headers) = (header.delimiter, &header.names);
    let width = headers.len();
    if !general_parser && delimiter.is_ascii() && is_plain(body) {
        parse_plain(body, delimiter, headers, first_line)
    } else {
        let arena = parse_general(body, delimiter, width, first_line)?;
        Ok(crate::stats::on_threads(width, |range| {
            range
                .map(|col| infer_column(headers[col].clone(), &[&arena[col].fields()]))
                .collect()
        }))
    }
}

fn csv_reader(part: &[u8], delimiter: u8) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(part)
}

/// Whether a CSV body can be split on line ends and delimiters alone: no
/// quote (a quoted field may hold either) and no carriage return except
/// before a line feed (a lone one also ends a record).
fn is_plain(body: &str) -> bool {
    let parts = split_at_lines(body);
    crate::stats::on_threads(parts.len(), |range| {
        range
            .map(|k| {
                let bytes = parts[k].as_bytes();
                memchr::memchr(b'"', bytes).is_none()
                    && memchr::memchr_iter(b'\r', bytes).all(|i| bytes.get(i + 1) == Some(&b'\n'))
            })
            .collect()
    })
    .into_iter()
    .all(|plain| plain)
}

/// Calls `field(column, text)` for every trimmed field of a quote-free
/// part, skipping empty lines (as the quote-aware parser does); a ragged
/// line stops the walk with its line number within the part and its field
/// count.
fn for_each_field<'a>(
    part: &'a str,
    delimiter: u8,
    width: usize,
    field: impl FnMut(usize, &'a str),
) -> std::result::Result<(), (usize, usize)> {
    struct TextOnly<F>(F);
    impl<'a, F: FnMut(usize, &'a str)> FieldSink<'a> for TextOnly<F> {
        fn text(&mut self, column: usize, text: &'a str) {
            (self.0)(column, text)
        }
    }
    for_each_field_or_value(part, delimiter, width, &mut TextOnly(field))
}

/// Where [`for_each_field_or_value`] puts the fields it walks.
trait FieldSink<'a> {
    /// Offered each field first, with the part from the field's first byte
    /// on: takes the field when it is a value of the column's type that ends
    /// where [`ends_field`] says, and returns its length; else stores nothing.
    #[inline]
    fn value(&mut self, _column: usize, _rest: &'a [u8]) -> Option<usize> {
        None
    }
    /// A field `value` declined, trimmed.
    fn text(&mut self, column: usize, text: &'a str);
}

/// [`for_each_field`], offering each field to `sink.value` before its text
/// goes to `sink.text`. Numbers are parsed where they start, so their end is
/// found by the parse instead of by a search; the search is only for the
/// fields `value` declines.
fn for_each_field_or_value<'a>(
    part: &'a str,
    delimiter: u8,
    width: usize,
    sink: &mut impl FieldSink<'a>,
) -> std::result::Result<(), (usize, usize)> {
    // Delimiters and line feeds are ASCII (callers check), so every cut
    // falls on a char boundary; in a quote-free part a carriage return only
    // ever comes right before a line feed (`is_plain`).
    let bytes = part.as_bytes();
    let len = bytes.len();
    let mut line_no = 1;
    let mut from = 0;
    let mut n = 0;
    while from <= len {
        if n < width {
            if let Some(used) = sink.value(n, &bytes[from..]) {
                let at = from + used;
                n += 1;
                if bytes.get(at) == Some(&delimiter) {
                    from = at + 1;
                    continue;
                }
                // A line feed, a carriage return and line feed, or the end.
                if n != width {
                    return Err((line_no, n));
                }
                n = 0;
                line_no += 1;
                from = at + if bytes.get(at) == Some(&b'\r') { 2 } else { 1 };
                continue;
            }
        }
        let cut = memchr::memchr2(delimiter, b'\n', &bytes[from..]).map_or(len, |i| from + i);
        if cut < len && bytes[cut] != b'\n' {
            if n < width {
                sink.text(n, trim_field(&part[from..cut]));
            }
            n += 1;
            from = cut + 1;
            continue;
        }
        let end = if cut > from && bytes[cut - 1] == b'\r' {
            cut - 1
        } else {
            cut
        };
        if n > 0 || end > from {
            if n < width {
                sink.text(n, trim_field(&part[from..end]));
            }
            n += 1;
            if n != width {
                return Err((line_no, n));
            }
        }
        n = 0;
        line_no += 1;
        from = cut + 1;
    }
    Ok(())
}

/// Whether the `used` bytes at the start of `rest` are a whole field: the
/// part ends there, or a delimiter, a line feed, or a carriage return and
/// line feed follow.
#[inline]
fn ends_field(rest: &[u8], used: usize, delimiter: u8) -> bool {
    match rest.get(used) {
        None => true,
        Some(&b) if b == delimiter || b == b'\n' => true,
        Some(&b'\r') => rest.get(used + 1) == Some(&b'\n'),
        Some(_) => false,
    }
}

/// An integer field at the start of `rest`, as `str::parse::<i64>` reads
/// it, with its length; `None` for anything else or anything harder (a
/// plus sign, more than 18 digits), which the caller parses from text.
#[inline]
fn leading_int(rest: &[u8], delimiter: u8) -> Option<(i64, usize, bool)> {
    let negative = rest.first() == Some(&b'-');
    let start = usize::from(negative);
    let digits = rest[start..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    if digits == 0 || digits > 18 || !ends_field(rest, start + digits, delimiter) {
        return None;
    }
    let magnitude = rest[start..start + digits]
        .iter()
        .fold(0i64, |v, &d| v * 10 + i64::from(d - b'0'));
    Some((
        if negative { -magnitude } else { magnitude },
        start + digits,
        negative,
    ))
}

/// A decimal float field at the start of `rest` with its length: what
/// `str::parse::<f64>` gives for the same text, correctly rounded (the
/// `fast-float2` crate, the algorithm std's own parser uses, but reporting
/// where the number ends). Fields that do not start like a decimal number
/// (`inf`, `NaN`, blanks) return `None` and are parsed from text.
#[inline]
fn leading_float(rest: &[u8], delimiter: u8) -> Option<(f64, usize)> {
    let digits_from = usize::from(matches!(rest.first(), Some(b'-' | b'+')));
    if !matches!(rest.get(digits_from), Some(b'0'..=b'9' | b'.')) {
        return None;
    }
    let (x, used) = fast_float2::parse_partial::<f64, _>(rest).ok()?;
    ends_field(rest, used, delimiter).then_some((x, used))
}

/// `str::trim`, without its Unicode scan for the usual field that starts
/// and ends with a printable ASCII character (no whitespace character
/// starts or ends with one of those bytes).
#[inline]
fn trim_field(text: &str) -> &str {
    let printable = |b: &u8| (0x21..0x7f).contains(b);
    let bytes = text.as_bytes();
    if bytes.first().is_some_and(printable) && bytes.last().is_some_and(printable) {
        text
    } else {
        text.trim()
    }
}

/// A column of one part parsed as the type it appears to have. Text is
/// kept only for columns that look textual; a numeric guess that a later
/// field contradicts gives up (`Failed`) and that column's text is
/// collected in a second walk.
enum Sink<'a> {
    Int {
        values: Vec<Option<i64>>,
        /// Rows whose text was a negative zero ("-0"), which parses as the
        /// float −0.0 should the column turn out to be float.
        negative_zero: Vec<usize>,
    },
    Float(Vec<Option<f64>>),
    Text(Vec<&'a str>),
    Failed,
}

impl<'a> Sink<'a> {
    fn push(&mut self, text: &'a str) {
        match self {
            Sink::Int {
                values,
                negative_zero,
            } => {
                if text.is_empty() {
                    values.push(None);
                } else if let Ok(v) = text.parse::<i64>() {
                    if v == 0 && text.starts_with('-') {
                        negative_zero.push(values.len());
                    }
                    values.push(Some(v));
                } else if let Ok(x) = text.parse::<f64>() {
                    let mut floats = ints_as_floats(values, negative_zero);
                    floats.push(Some(x));
                    *self = Sink::Float(floats);
                } else {
                    *self = Sink::Failed;
                }
            }
            Sink::Float(values) => {
                if text.is_empty() {
                    values.push(None);
                } else if let Ok(x) = text.parse::<f64>() {
                    values.push(Some(x));
                } else {
                    *self = Sink::Failed;
                }
            }
            Sink::Text(values) => values.push(text),
            Sink::Failed => {}
        }
    }
}

/// Integers as the floats their texts parse to: exact conversion rounds to
/// nearest like parsing does, and a negative zero keeps its sign.
fn ints_as_floats(values: &[Option<i64>], negative_zero: &[usize]) -> Vec<Option<f64>> {
    let mut out: Vec<Option<f64>> = values.iter().map(|v| v.map(|v| v as f64)).collect();
    for &r in negative_zero {
        out[r] = Some(-0.0);
    }
    out
}

/// Lines whose fields guess each column's type before the parallel parse.
const TYPE_SAMPLE_LINES: usize = 100;

/// One part's share of a numeric column's final buffer: as many slots as
/// the part has lines (an upper bound on its rows).
enum Region<'r> {
    Int(&'r mut [MaybeUninit<Option<i64>>]),
    Float(&'r mut [MaybeUninit<Option<f64>>]),
}

/// A numeric column's final buffer, which every part writes its rows into
/// directly while the column's guessed type holds: joining per-part
/// vectors afterwards copied half of every column into fresh pages, and
/// faulting those in cost a quarter of a CSV read.
enum Buffer {
    Int(Vec<Option<i64>>),
    Float(Vec<Option<f64>>),
    Unused,
}

/// One column of one part while it is parsed: in its region of the final
/// buffer, or (after a value of another type, which is rare) an owned sink.
enum PartColumn<'t, 'r> {
    Int {
        region: &'r mut [MaybeUninit<Option<i64>>],
        len: usize,
        negative_zero: Vec<usize>,
    },
    Float {
        region: &'r mut [MaybeUninit<Option<f64>>],
        len: usize,
    },
    Owned(Sink<'t>),
}

impl<'t, 'r> PartColumn<'t, 'r> {
    /// In its region when the column was guessed numeric (every such
    /// column has one), else collecting text for `rows` rows.
    fn new(region: Option<Region<'r>>, rows: usize) -> PartColumn<'t, 'r> {
        match region {
            Some(Region::Int(region)) => PartColumn::Int {
                region,
                len: 0,
                negative_zero: Vec::new(),
            },
            Some(Region::Float(region)) => PartColumn::Float { region, len: 0 },
            None => PartColumn::Owned(Sink::Text(Vec::with_capacity(rows))),
        }
    }

    #[inline]
    fn push(&mut self, text: &'t str) {
        let stored = match self {
            PartColumn::Int {
                region,
                len,
                negative_zero,
            } => {
                let value = if text.is_empty() {
                    None
                } else if let Ok(v) = text.parse::<i64>() {
                    if v == 0 && text.starts_with('-') {
                        negative_zero.push(*len);
                    }
                    Some(v)
                } else {
                    return self.spill(text);
                };
                write_slot(region, len, value)
            }
            PartColumn::Float { region, len } => {
                let value = if text.is_empty() {
                    None
                } else if let Ok(x) = text.parse::<f64>() {
                    Some(x)
                } else {
                    return self.spill(text);
                };
                write_slot(region, len, value)
            }
            PartColumn::Owned(sink) => {
                sink.push(text);
                true
            }
        };
        if !stored {
            self.spill(text);
        }
    }

    /// Stores the number at the start of `rest` when this column is in its
    /// region and the field is a plain number of its type; returns the
    /// field's length, or `None` to have the field pushed as text.
    #[inline]
    fn push_leading(&mut self, rest: &[u8], delimiter: u8) -> Option<usize> {
        match self {
            PartColumn::Int {
                region,
                len,
                negative_zero,
            } if *len < region.len() => {
                let (v, used, negative) = leading_int(rest, delimiter)?;
                if v == 0 && negative {
                    negative_zero.push(*len);
                }
                write_slot(region, len, Some(v));
                Some(used)
            }
            PartColumn::Float { region, len } if *len < region.len() => {
                let (x, used) = leading_float(rest, delimiter)?;
                write_slot(region, len, Some(x));
                Some(used)
            }
            _ => None,
        }
    }

    /// Moves the rows written so far into an owned sink, then pushes `text`
    /// there (which retypes the sink as the owned path does).
    fn spill(&mut self, text: &'t str) {
        let mut sink = self.take_owned_sink();
        sink.push(text);
        *self = PartColumn::Owned(sink);
    }

    fn take_owned_sink(&mut self) -> Sink<'t> {
        match self {
            PartColumn::Int {
                region,
                len,
                negative_zero,
            } => Sink::Int {
                values: written(region, *len).to_vec(),
                negative_zero: std::mem::take(negative_zero),
            },
            PartColumn::Float { region, len } => Sink::Float(written(region, *len).to_vec()),
            PartColumn::Owned(sink) => std::mem::replace(sink, Sink::Failed),
        }
    }

    fn rows_in_region(&self) -> Option<usize> {
        match self {
            PartColumn::Int { len, .. } | PartColumn::Float { len, .. } => Some(*len),
            PartColumn::Owned(_) => None,
        }
    }
}

/// One part's columns, as the walk over the part fills them.
struct PartSink<'t, 'r> {
    columns: Vec<PartColumn<'t, 'r>>,
    delimiter: u8,
}

impl<'t> FieldSink<'t> for PartSink<'t, '_> {
    #[inline]
    fn value(&mut self, column: usize, rest: &'t [u8]) -> Option<usize> {
        self.columns[column].push_leading(rest, self.delimiter)
    }
    #[inline]
    fn text(&mut self, column: usize, text: &'t str) {
        self.columns[column].push(text)
    }
}

/// Writes the next slot of a region; `false` when it is full (which its
/// line count rules out, but a full region spills rather than panics).
#[inline]
fn write_slot<T>(region: &mut [MaybeUninit<T>], len: &mut usize, value: T) -> bool {
    match region.get_mut(*len) {
        Some(slot) => {
            slot.write(value);
            *len += 1;
            true
        }
        None => false,
    }
}

/// The first `len` slots of a region, which its part has written.
fn written<T: Copy>(region: &[MaybeUninit<T>], len: usize) -> &[T] {
    let init = &region[..len];
    // SAFETY: a part writes its slots in order and counts them in `len`,
    // so the first `len` are initialised; MaybeUninit<T> has T's layout.
    unsafe { &*(init as *const [MaybeUninit<T>] as *const [T]) }
}

/// Moves each part's rows to follow the previous part's (parts with
/// blank lines leave slots unused) and sets the vector's length to the
/// rows written.
fn join_regions<T: Copy>(buffer: &mut Vec<T>, lines: &[usize], rows: &[usize]) {
    let spare = buffer.spare_capacity_mut();
    let (mut from, mut to) = (0, 0);
    for (&lines, &rows) in lines.iter().zip(rows) {
        if from != to {
            spare.copy_within(from..from + rows, to);
        }
        from += lines;
        to += rows;
    }
    // SAFETY: every part initialised its first `rows` slots, and the moves
    // above made them the first `to` slots, contiguously.
    unsafe { buffer.set_len(to) };
}

/// Parses a quote-free body into typed columns, one part per core, in one
/// walk for columns whose type holds; the text of the others is collected
/// in a second walk and typed like the quote-aware path types it.
fn parse_plain(
    body: &str,
    delimiter: u8,
    headers: &[String],
    first_line: usize,
) -> Result<Vec<Column>> {
    let width = headers.len();
    let sample_end = body
        .match_indices('\n')
        .nth(TYPE_SAMPLE_LINES)
        .map_or(body.len(), |(i, _)| i + 1);
    let mut guess: Vec<Sink> = (0..width)
        .map(|_| Sink::Int {
            values: Vec::new(),
            negative_zero: Vec::new(),
        })
        .collect();
    // A ragged sample line is reported by the full walk below.
    let _ = for_each_field(&body[..sample_end], delimiter, width, |c, t| {
        guess[c].push(t)
    });

    let sample_lines = body[..sample_end].matches('\n').count().max(1);
    let line_bytes = (sample_end / sample_lines).max(1);
    let parts = split_at_lines(body);
    // Line feeds per part, plus one for a last line without one: never
    // fewer than the part's rows.
    let line_feeds: Vec<usize> = crate::stats::on_threads(parts.len(), |range| {
        range
            .map(|k| memchr::memchr_iter(b'\n', parts[k].as_bytes()).count())
            .collect()
    });
    let lines: Vec<usize> = line_feeds
        .iter()
        .zip(&parts)
        .map(|(n, p)| n + usize::from(!p.is_empty() && !p.ends_with('\n')))
        .collect();
    let total_lines = lines.iter().sum();
    let ragged = |k: usize, (line, fields): (usize, usize)| {
        // Lines are counted per part (from 1); add the parts before.
        let before: usize = line_feeds[..k].iter().sum();
        DataError::malformed(format!(
            "ragged CSV: line {} has {fields} fields, the header has {width}",
            line + before + first_line - 1
        ))
    };

    let mut buffers: Vec<Buffer> = guess
        .iter()
        .map(|g| match g {
            Sink::Int { .. } => Buffer::Int(Vec::with_capacity(total_lines)),
            Sink::Float(_) => Buffer::Float(Vec::with_capacity(total_lines)),
            Sink::Text(_) | Sink::Failed => Buffer::Unused,
        })
        .collect();
    // regions[k][c]: part k's slots of column c.
    let mut regions: Vec<Vec<Option<Region>>> = (0..parts.len())
        .map(|_| (0..width).map(|_| None).collect())
        .collect();
    for (c, buffer) in buffers.iter_mut().enumerate() {
        fn split<'r, T>(
            mut rest: &'r mut [MaybeUninit<T>],
            lines: &[usize],
            wrap: impl Fn(&'r mut [MaybeUninit<T>]) -> Region<'r>,
            regions: &mut [Vec<Option<Region<'r>>>],
            c: usize,
        ) {
            for (k, &n) in lines.iter().enumerate() {
                let (head, tail) = std::mem::take(&mut rest).split_at_mut(n);
                regions[k][c] = Some(wrap(head));
                rest = tail;
            }
        }
        match buffer {
            Buffer::Int(v) => split(v.spare_capacity_mut(), &lines, Region::Int, &mut regions, c),
            Buffer::Float(v) => split(
                v.spare_capacity_mut(),
                &lines,
                Region::Float,
                &mut regions,
                c,
            ),
            Buffer::Unused => {}
        }
    }
    let regions: Vec<std::sync::Mutex<Vec<Option<Region>>>> =
        regions.into_iter().map(std::sync::Mutex::new).collect();

    let parsed = crate::stats::on_threads_each(parts.len(), |k| {
        // Sized from the sample's line length, with a margin, but
        // never reserving more than 4 bytes per input byte (a short
        // sample before long lines must not reserve gigabytes).
        let len = parts[k].len();
        let rows = (len / line_bytes + len / line_bytes / 8 + 16).min(len / (4 * width) + 16);
        let mine = std::mem::take(&mut *regions[k].lock().expect("not poisoned"));
        let columns: Vec<PartColumn> = mine
            .into_iter()
            .map(|region| PartColumn::new(region, rows))
            .collect();
        let mut sink = PartSink { columns, delimiter };
        for_each_field_or_value(parts[k], delimiter, width, &mut sink)
            .map(|()| sink.columns)
            .map_err(|e| ragged(k, e))
    });
    let mut parts_columns = Vec::with_capacity(parsed.len());
    for p in parsed {
        parts_columns.push(p?);
    }
    // A column every part kept in its region is complete once the regions
    // are joined; the others take their parts as owned sinks.
    let region_rows: Vec<Option<Vec<usize>>> = (0..width)
        .map(|c| {
            parts_columns
                .iter()
                .map(|p| p[c].rows_in_region())
                .collect::<Option<Vec<usize>>>()
        })
        .collect();
    let mut parts_sinks: Vec<Vec<Sink>> = parts_columns
        .into_iter()
        .map(|columns| {
            columns
                .into_iter()
                .zip(&region_rows)
                .map(|(mut column, joined)| match joined {
                    // A placeholder: this column is built from its buffer.
                    Some(_) => Sink::Int {
                        values: Vec::new(),
                        negative_zero: Vec::new(),
                    },
                    None => column.take_owned_sink(),
                })
                .collect()
        })
        .collect();

    // Columns any part could not keep as numbers are typed from their text.
    let textual: Vec<bool> = (0..width)
        .map(|c| {
            parts_sinks
                .iter()
                .any(|s| matches!(s[c], Sink::Text(_) | Sink::Failed))
        })
        .collect();
    if textual.iter().any(|&t| t) {
        let recollect = crate::stats::on_threads(parts.len(), |range| {
            range
                .map(|k| {
                    let mut texts: Vec<Vec<&str>> = vec![Vec::new(); width];
                    let needs =
                        |c: usize| textual[c] && !matches!(parts_sinks[k][c], Sink::Text(_));
                    if (0..width).any(needs) {
                        let _ = for_each_field(parts[k], delimiter, width, |c, t| {
                            if needs(c) {
                                texts[c].push(t)
                            }
                        });
                    }
                    texts
                })
                .collect::<Vec<_>>()
        });
        for (sinks, texts) in parts_sinks.iter_mut().zip(recollect) {
            for (c, t) in texts.into_iter().enumerate() {
                if textual[c] && !matches!(sinks[c], Sink::Text(_)) {
                    sinks[c] = Sink::Text(t);
                }
            }
        }
    }
    // Column-wise from here: each column takes its buffer or its parts' sinks.
    let mut by_column: Vec<Vec<Sink>> = (0..width).map(|_| Vec::new()).collect();
    for sinks in parts_sinks {
        for (c, sink) in sinks.into_iter().enumerate() {
            by_column[c].push(sink);
        }
    }
    let work: Vec<std::sync::Mutex<(Buffer, Vec<Sink>)>> = buffers
        .into_iter()
        .zip(by_column)
        .map(std::sync::Mutex::new)
        .collect();
    let columns = crate::stats::on_threads_each(width, |c| {
        let (buffer, parts) = std::mem::replace(
            &mut *work[c].lock().expect("not poisoned"),
            (Buffer::Unused, Vec::new()),
        );
        let name = headers[c].clone();
        match (&region_rows[c], buffer) {
            (Some(rows), Buffer::Int(mut v)) => {
                join_regions(&mut v, &lines, rows);
                numeric_column(name, "int", v, ColumnData::Int)
            }
            (Some(rows), Buffer::Float(mut v)) => {
                join_regions(&mut v, &lines, rows);
                numeric_column(name, "float", v, ColumnData::Float)
            }
            _ => typed_column(name, parts),
        }
    });
    Ok(columns)
}

/// A numeric column, or (when every value is missing) the text column the
/// other paths type an all-empty column as.
fn numeric_column<T>(
    name: String,
    source_type: &str,
    values: Vec<Option<T>>,
    data: impl FnOnce(Vec<Option<T>>) -> ColumnData,
) -> Column {
    if values.iter().all(Option::is_none) {
        return infer_column(name, &[&vec![""; values.len()]]);
    }
    Column {
        name,
        source_type: source_type.into(),
        data: data(values),
    }
}

/// One column from its parts: integers if every part kept integers, floats
/// if every part kept numbers, else typed from the text. The first part's
/// vector is extended in place, so a column is copied at most once.
fn typed_column(name: String, parts: Vec<Sink>) -> Column {
    let present = parts.iter().any(|s| match s {
        Sink::Int { values, .. } => values.iter().any(Option::is_some),
        Sink::Float(v) => v.iter().any(Option::is_some),
        Sink::Text(_) | Sink::Failed => true,
    });
    let all_int = parts.iter().all(|s| matches!(s, Sink::Int { .. }));
    let all_numeric = parts
        .iter()
        .all(|s| matches!(s, Sink::Int { .. } | Sink::Float(_)));
    let (source_type, data) = if present && all_int {
        let mut out: Vec<Option<i64>> = Vec::new();
        for s in parts {
            if let Sink::Int { values, .. } = s {
                if out.is_empty() {
                    out = values;
                } else {
                    out.extend(values);
                }
            }
        }
        ("int", ColumnData::Int(out))
    } else if present && all_numeric {
        let mut out: Vec<Option<f64>> = Vec::new();
        for s in parts {
            let floats = match s {
                Sink::Int {
                    values,
                    negative_zero,
                } => ints_as_floats(&values, &negative_zero),
                Sink::Float(v) => v,
                _ => continue,
            };
            if out.is_empty() {
                out = floats;
            } else {
                out.extend(floats);
            }
        }
        ("float", ColumnData::Float(out))
    } else {
        // All-empty numeric parts: their fields were "".
        let empties: Vec<Vec<&str>> = parts
            .iter()
            .map(|s| match s {
                Sink::Int { values, .. } => vec![""; values.len()],
                Sink::Float(v) => vec![""; v.len()],
                Sink::Text(_) | Sink::Failed => Vec::new(),
            })
            .collect();
        let chunks: Vec<&[&str]> = parts
            .iter()
            .zip(&empties)
            .map(|(s, e)| match s {
                Sink::Text(t) => t.as_slice(),
                _ => e.as_slice(),
            })
            .collect();
        return infer_column(name, &chunks);
    };
    Column {
        name,
        source_type: source_type.into(),
        data,
    }
}

/// Parses a body with the quote-aware `csv` reader, one record at a time.
fn parse_general(
    body: &str,
    delimiter: u8,
    width: usize,
    first_line: usize,
) -> Result<Vec<RawColumn>> {
    let mut columns = vec![RawColumn::default(); width];
    let mut reader = csv_reader(body.as_bytes(), delimiter);
    let mut record = csv::StringRecord::new();
    // The csv crate's own line numbers skip blank lines and miscount CRLF;
    // count line feeds before the record instead.
    let line_at = |p: Option<&csv::Position>| {
        let bytes = body.as_bytes();
        let mut at = p.map_or(0, |p| p.byte() as usize).min(bytes.len());
        // A record never starts with a line end: those before it are blank
        // lines or the rest of a CRLF the reader has not consumed yet.
        while at < bytes.len() && matches!(bytes[at], b'\r' | b'\n') {
            at += 1;
        }
        memchr::memchr_iter(b'\n', &bytes[..at]).count() + first_line
    };
    while reader
        .read_record(&mut record)
        .map_err(|e| DataError::malformed(format!("CSV (line {}): {e}", line_at(e.position()))))?
    {
        if record.len() != width {
            return Err(DataError::malformed(format!(
                "ragged CSV: line {} has {} fields, the header has {width}",
                line_at(record.position()),
                record.len()
            )));
        }
        for (col, field) in columns.iter_mut().zip(record.iter()) {
            col.push(field.trim());
        }
    }
    Ok(columns)
}

/// Splits a CSV body into parts at line ends (see `line_parts`).
fn split_at_lines(body: &str) -> Vec<&str> {
    // Each cut follows a line feed, so it is a char boundary.
    line_parts(body.as_bytes())
        .into_iter()
        .map(|r| &body[r])
        .collect()
}

/// Byte ranges of four parts per core (so that a core that finishes
/// early takes another), each ending after a line feed (but the last);
/// parts of at least 1 MiB.
fn line_parts(body: &[u8]) -> Vec<std::ops::Range<usize>> {
    const MIN_PART: usize = 1 << 20;
    const PARTS_PER_CORE: usize = 4;
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    let parts = (threads * PARTS_PER_CORE).min(body.len() / MIN_PART).max(1);
    let mut out = Vec::with_capacity(parts);
    let mut start = 0;
    for k in 1..parts {
        let target = (body.len() * k / parts).max(start);
        let Some(nl) = memchr::memchr(b'\n', &body[target..]) else {
            break;
        };
        out.push(start..target + nl + 1);
        start = target + nl + 1;
    }
    out.push(start..body.len());
    out
}

/// A CSV block as text, checked on every core; an error names the line
/// (counted from `first_line`) of the first byte that is not UTF-8.
pub fn csv_text(block: &[u8], first_line: usize) -> Result<&str> {
    let parts = line_parts(block);
    // Parts end at line feeds, so a multi-byte character never straddles
    // two of them: each is valid exactly when the whole is.
    let bad = crate::stats::on_threads(parts.len(), |range| {
        range
            .map(|k| {
                std::str::from_utf8(&block[parts[k].clone()])
                    .err()
                    .map(|e| parts[k].start + e.valid_up_to())
            })
            .collect()
    });
    match bad.into_iter().flatten().next() {
        // SAFETY: every part was validated above, and a concatenation of
        // valid UTF-8 strings is valid UTF-8.
        None => Ok(unsafe { std::str::from_utf8_unchecked(block) }),
        Some(at) => {
            let line = first_line + memchr::memchr_iter(b'\n', &block[..at]).count();
            Err(DataError::malformed(format!(
                "CSV line {line} is not valid UTF-8"
            )))
        }
    }
}

/// One column's trimmed fields back to back (an empty field is missing),
/// so that the quote-aware path does not allocate per cell either.
#[derive(Debug, Clone, Default)]
struct RawColumn {
    text: String,
    ends: Vec<usize>,
}

impl RawColumn {
    fn push(&mut self, field: &str) {
        self.text.push_str(field);
        self.ends.push(self.text.len());
    }

    fn fields(&self) -> Vec<&str> {
        let mut start = 0;
        self.ends
            .iter()
            .map(|&end| {
                let f = &self.text[start..end];
                start = end;
                f
            })
            .collect()
    }
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

/// Picks the narrowest type every non-empty value parses as; the fields
/// come in chunks (one per part of the body) so that they are never
/// copied into one list.
fn infer_column(name: String, chunks: &[&[&str]]) -> Column {
    let fields = || chunks.iter().flat_map(|c| c.iter().copied());
    let rows = chunks.iter().map(|c| c.len()).sum();
    let (source_type, data) = if let Some(v) = parse_all(rows, fields(), str::parse::<i64>) {
        ("int", ColumnData::Int(v))
    } else if let Some(v) = parse_all(rows, fields(), str::parse::<f64>) {
        ("float", ColumnData::Float(v))
    } else if let Some(v) = parse_all(rows, fields(), |s| {
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
        let bytes = fields().map(str::len).sum();
        let mut values = TextColumn::with_capacity(rows, bytes);
        values.extend(fields().map(|f| (!f.is_empty()).then_some(f)));
        ("string", ColumnData::Str(values))
    };
    Column {
        name,
        source_type: source_type.into(),
        data,
    }
}

/// Every present value parsed, or `None` if one fails or none is present
/// ("" is missing).
fn parse_all<'a, T, E>(
    rows: usize,
    fields: impl Iterator<Item = &'a str>,
    parse: impl Fn(&str) -> std::result::Result<T, E>,
) -> Option<Vec<Option<T>>> {
    let mut any = false;
    let mut out = Vec::with_capacity(rows);
    for f in fields {
        if f.is_empty() {
            out.push(None);
        } else {
            any = true;
            out.push(Some(parse(f).ok()?));
        }
    }
    any.then_some(out)
}

/// Reads every row group of a Parquet file into columns. Types without a
/// natural scalar form (lists, structs, binary) are refused by name.
pub fn read_parquet(path: &Path) -> Result<Table> {
    let shown = path.display().to_string();
    let builder = parquet_builder(path)?;
    let schema = builder.schema().clone();
    let mut columns: Vec<Column> = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        columns.push(Column::empty_for(field).map_err(|e| e.at(&shown))?);
    }
    // Columns decode independently: each core reads its own share of them.
    let empty = columns;
    let parts = crate::stats::on_threads(empty.len(), |range| {
        let mut columns = empty[range.clone()].to_vec();
        let read = parquet_columns(path, range, |k, array| {
            append_array(&mut columns[k], array, &shown)
        });
        vec![read.map(|rows| (columns, rows))]
    });
    let mut columns = Vec::with_capacity(empty.len());
    let mut rows = None;
    for part in parts {
        let (cols, n) = part?;
        rows = rows.or(Some(n));
        columns.extend(cols);
    }
    Ok(Table {
        columns,
        rows: rows.unwrap_or(0),
    })
}

/// Opens a Parquet file for reading (its footer parsed).
pub fn parquet_builder(
    path: &Path,
) -> Result<parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder<File>> {
    let shown = path.display().to_string();
    let file = File::open(path).map_err(|e| DataError::io(&shown, &e))?;
    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| DataError::malformed(format!("not a readable Parquet file: {e}")).at(&shown))
}

/// Decodes the top-level columns `range` of a Parquet file batch by batch,
/// handing each array to `sink` with its index within the range; returns
/// the row count. Callers run one range per core: columns decode
/// independently.
pub fn parquet_columns(
    path: &Path,
    range: std::ops::Range<usize>,
    mut sink: impl FnMut(usize, &arrow_array::ArrayRef) -> Result<()>,
) -> Result<usize> {
    let shown = path.display().to_string();
    let builder = parquet_builder(path)?;
    let mask = parquet::arrow::ProjectionMask::roots(builder.parquet_schema(), range);
    let reader = builder
        .with_projection(mask)
        .with_batch_size(64 * 1024)
        .build()
        .map_err(|e| DataError::malformed(format!("Parquet: {e}")).at(&shown))?;
    let mut rows = 0usize;
    for batch in reader {
        let batch = batch.map_err(|e| DataError::malformed(format!("Parquet: {e}")).at(&shown))?;
        rows += batch.num_rows();
        for (k, array) in batch.columns().iter().enumerate() {
            sink(k, array)?;
        }
    }
    Ok(rows)
}

/// Appends a numeric, boolean or temporal array as f64 (NaN for a null);
/// `false` for any other type.
pub fn append_f64(out: &mut Vec<f64>, array: &arrow_array::ArrayRef) -> bool {
    use arrow_array::cast::AsArray;
    use arrow_array::types::*;
    use arrow_array::Array;
    use arrow_schema::DataType;
    fn prim<T: arrow_array::ArrowPrimitiveType>(
        out: &mut Vec<f64>,
        a: &arrow_array::PrimitiveArray<T>,
        f: impl Fn(T::Native) -> f64,
    ) {
        match a.nulls() {
            None => out.extend(a.values().iter().map(|&x| f(x))),
            Some(n) => {
                out.extend(
                    a.values()
                        .iter()
                        .zip(n.iter())
                        .map(|(&x, ok)| if ok { f(x) } else { f64::NAN }),
                )
            }
        }
    }
    match array.data_type() {
        DataType::Float64 => prim(out, array.as_primitive::<Float64Type>(), |x| x),
        DataType::Float32 => prim(out, array.as_primitive::<Float32Type>(), f64::from),
        DataType::Float16 => prim(out, array.as_primitive::<Float16Type>(), |x| x.to_f64()),
        DataType::Int8 => prim(out, array.as_primitive::<Int8Type>(), f64::from),
        DataType::Int16 => prim(out, array.as_primitive::<Int16Type>(), f64::from),
        DataType::Int32 => prim(out, array.as_primitive::<Int32Type>(), f64::from),
        DataType::Int64 => prim(out, array.as_primitive::<Int64Type>(), |x| x as f64),
        DataType::UInt8 => prim(out, array.as_primitive::<UInt8Type>(), f64::from),
        DataType::UInt16 => prim(out, array.as_primitive::<UInt16Type>(), f64::from),
        DataType::UInt32 => prim(out, array.as_primitive::<UInt32Type>(), f64::from),
        DataType::UInt64 => prim(out, array.as_primitive::<UInt64Type>(), |x| x as f64),
        DataType::Boolean => {
            let a = array.as_boolean();
            out.extend((0..a.len()).map(|i| {
                if a.is_valid(i) {
                    f64::from(u8::from(a.value(i)))
                } else {
                    f64::NAN
                }
            }));
        }
        t if t.is_temporal() => match integer_values(array.as_ref(), t) {
            Some(v) => out.extend(v.into_iter().map(|x| x.map_or(f64::NAN, |x| x as f64))),
            None => return false,
        },
        _ => return false,
    }
    true
}

/// Appends one decoded array to its column.
pub fn append_array(col: &mut Column, array: &arrow_array::ArrayRef, shown: &str) -> Result<()> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::*;
    use arrow_array::Array;
    use arrow_schema::DataType;
    let n = array.len();
    let valid = |i: usize| array.is_valid(i);
    match (&mut col.data, array.data_type()) {
        (ColumnData::Float(v), DataType::Float64) => {
            extend_primitive(v, array.as_primitive::<Float64Type>(), |x| x);
        }
        (ColumnData::Float(v), DataType::Float32) => {
            extend_primitive(v, array.as_primitive::<Float32Type>(), f64::from);
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
            v.extend((0..n).map(|i| valid(i).then(|| a.value(i))));
        }
        (ColumnData::Str(v), DataType::LargeUtf8) => {
            let a = array.as_string::<i64>();
            v.extend((0..n).map(|i| valid(i).then(|| a.value(i))));
        }
        (ColumnData::Str(v), DataType::Utf8View) => {
            let a = array.as_string_view();
            v.extend((0..n).map(|i| valid(i).then(|| a.value(i))));
        }
        (ColumnData::Str(v), DataType::Dictionary(_, _)) => {
            let a = array.as_any_dictionary();
            let keys = a.normalized_keys();
            let values = a.values();
            let strings: Vec<Option<&str>> = match values.data_type() {
                DataType::Utf8 => {
                    let s = values.as_string::<i32>();
                    (0..s.len())
                        .map(|i| s.is_valid(i).then(|| s.value(i)))
                        .collect()
                }
                DataType::LargeUtf8 => {
                    let s = values.as_string::<i64>();
                    (0..s.len())
                        .map(|i| s.is_valid(i).then(|| s.value(i)))
                        .collect()
                }
                other => {
                    return Err(DataError::unsupported(format!(
                        "Parquet column '{}' is a dictionary of {other}",
                        col.name
                    ))
                    .at(shown))
                }
            };
            v.extend((0..n).map(|i| {
                if valid(i) {
                    strings.get(keys[i]).copied().flatten()
                } else {
                    None
                }
            }));
        }
        (ColumnData::Int(v), t) => {
            let ints = integer_values(array.as_ref(), t).ok_or_else(|| {
                DataError::unsupported(format!("Parquet column '{}' has type {t}", col.name))
                    .at(shown)
            })?;
            v.extend(ints);
        }
        (_, t) => {
            return Err(DataError::unsupported(format!(
                "Parquet column '{}' changes type to {t} between row groups",
                col.name
            ))
            .at(shown))
        }
    }
    Ok(())
}

/// Appends a primitive array's values, converted, with its nulls as `None`.
fn extend_primitive<T: arrow_array::ArrowPrimitiveType, U>(
    out: &mut Vec<Option<U>>,
    array: &arrow_array::PrimitiveArray<T>,
    convert: impl Fn(T::Native) -> U,
) {
    use arrow_array::Array;
    match array.nulls() {
        None => out.extend(array.values().iter().map(|&x| Some(convert(x)))),
        Some(nulls) => out.extend(
            array
                .values()
                .iter()
                .zip(nulls.iter())
                .map(|(&x, ok)| ok.then(|| convert(x))),
        ),
    }
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
                if v.get(row).is_none() {
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

    /// A body over 2 MiB is split in parts parsed on separate cores; rows,
    /// types and the line of a ragged row come out as from one part.
    #[test]
    fn large_bodies_parse_in_parts_with_exact_line_numbers() {
        let mut text = String::from("id,x,name\n");
        for i in 0..200_000 {
            let x = if i == 150_000 {
                "0.5".to_string()
            } else {
                i.to_string()
            };
            text.push_str(&format!("{i},{x},n{}\n", i % 7));
        }
        assert!(text.len() > 2 << 20);
        let t = parse_csv(text.as_bytes(), &CsvOptions::default(), false).unwrap();
        assert_eq!(t.rows, 200_000);
        let kinds: Vec<&str> = t.columns.iter().map(|c| c.kind()).collect();
        assert_eq!(kinds, ["int", "float", "string"]);
        assert_eq!(t.columns[0].cell(199_999).as_deref(), Some("199999"));
        assert_eq!(t.columns[1].cell(150_000).as_deref(), Some("0.5"));
        // Line 1 is the header, so row r is on line r + 2.
        let row = format!("170000,170000,n{}\n", 170_000 % 7);
        assert!(text.contains(&row));
        let ragged = text.replacen(&row, "170000,170000\n", 1);
        let Err(e) = parse_csv(ragged.as_bytes(), &CsvOptions::default(), false) else {
            panic!("a ragged row must be an error");
        };
        assert!(e.message.contains("line 170002 has 2 fields"), "{e}");
    }

    /// The body read by the split-and-type path and by the quote-aware one.
    fn both_parsers(text: &str) -> (Table, Table) {
        let general = CsvOptions {
            general_parser: true,
            ..Default::default()
        };
        (
            parse_csv(text.as_bytes(), &CsvOptions::default(), false).unwrap(),
            parse_csv(text.as_bytes(), &general, false).unwrap(),
        )
    }

    /// Types that change after the sampled lines, in either part, come out
    /// as the quote-aware parser types them, negative zeros included.
    #[test]
    fn late_type_changes_match_the_general_parser() {
        let mut text = String::from("z,i,t,b,e\n");
        let n = 240_000;
        for r in 0..n {
            let i = match r {
                5 => "-0".to_string(),
                _ if r == n - 10 => "2.5".to_string(),
                _ => (r % 1000).to_string(),
            };
            let t = if r == 150_000 {
                "abc".to_string()
            } else {
                r.to_string()
            };
            let b = if r % 3 == 0 { "true" } else { "FALSE" };
            text.push_str(&format!("{r},{i},{t},{b},\n"));
        }
        assert!(text.len() > 2 << 20);
        let (fast, general) = both_parsers(&text);
        let kinds: Vec<&str> = fast.columns.iter().map(|c| c.kind()).collect();
        assert_eq!(kinds, ["int", "float", "string", "bool", "string"]);
        assert!(fast == general, "the two parsers disagree");
        match &fast.columns[1].data {
            ColumnData::Float(v) => assert_eq!(v[5].map(f64::to_bits), Some((-0.0f64).to_bits())),
            _ => unreachable!(),
        }
    }

    /// Blank lines leave unused slots in each part's share of a column's
    /// buffer; joining the parts must close the gaps in order.
    #[test]
    fn blank_lines_in_every_part_leave_no_gaps() {
        let mut text = String::from("a,b,c\r\n");
        let n = 200_000;
        for r in 0..n {
            text.push_str(&format!(
                "{r},{}.25,{}\r\n",
                r % 977,
                if r % 5 == 0 { "" } else { "x" }
            ));
            if r % 1_000 == 7 {
                text.push_str("\r\n");
            }
            if r % 3_001 == 0 {
                text.push('\n');
            }
        }
        assert!(text.len() > 2 << 20);
        let (fast, general) = both_parsers(&text);
        assert_eq!(fast.rows, n);
        assert!(fast == general, "the two parsers disagree");
        for r in [0, 1, 99_999, 100_000, 150_001, n - 1] {
            assert_eq!(fast.columns[0].cell(r), Some(r.to_string()));
            assert_eq!(fast.columns[1].cell(r), Some(format!("{}.25", r % 977)));
        }
    }

    #[test]
    fn text_columns_keep_nulls_and_empty_strings_apart() {
        let c: TextColumn = [Some("ab"), None, Some(""), Some("ü"), None]
            .into_iter()
            .collect();
        assert_eq!(c.len(), 5);
        let back: Vec<Option<&str>> = c.iter().collect();
        assert_eq!(back, [Some("ab"), None, Some(""), Some("ü"), None]);
        assert!(TextColumn::default().is_empty());
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
