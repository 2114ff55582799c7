//! A dataset read in chunks of rows, so that a stream larger than memory
//! can be monitored: memory holds one chunk (plus what the caller keeps),
//! never the whole file.
//!
//! CSV is read in blocks cut at record ends (quote-aware once a quote has
//! been seen, with the same record parser as the `csv` crate) and each
//! block is typed like a whole file; Parquet is decoded batch by batch with
//! only the feature columns projected (a file whose features fit in 64 MiB
//! as numbers is decoded whole, on every core); NPY rows are read straight from the
//! file (column by column for Fortran order). The bundled MNIST sample is
//! one chunk.
//!
//! A chunked CSV cannot look ahead, so its first chunk decides which
//! columns are features: numbers or booleans there make a feature, text or
//! nothing but gaps makes a skipped column. A feature column that holds
//! text in a later chunk is an error naming the column and the rows, not a
//! silently dropped feature.

use crate::detect::{detect, Format};
use crate::error::{DataError, Result};
use crate::frame::Frame;
use crate::table::{self, ColumnData, CsvHeader};
use std::fs::File;
use std::io::Read;
use std::path::Path;

/// How much a chunk holds.
#[derive(Debug, Clone, Copy)]
pub struct ChunkOptions {
    /// Rows per chunk for Parquet and NPY.
    pub rows: usize,
    /// Bytes per CSV block (a block is cut at its last complete record).
    pub csv_bytes: usize,
    /// A Parquet file whose features take at most this many bytes as
    /// numbers is read whole, on every core, instead of batch by batch.
    pub whole_bytes: u64,
}

impl Default for ChunkOptions {
    fn default() -> Self {
        ChunkOptions {
            rows: 64 * 1024,
            csv_bytes: 16 << 20,
            whole_bytes: 64 << 20,
        }
    }
}

/// A record longer than this is refused instead of buffered without end.
const MAX_CSV_RECORD: usize = 256 << 20;

/// The chunks of one dataset: every chunk has the same feature names.
pub struct FrameChunks {
    names: Vec<String>,
    skipped: Vec<String>,
    source: Source,
    shown: String,
    rows_read: usize,
}

enum Source {
    Whole(Option<Frame>),
    Csv(Box<CsvChunks>),
    Parquet(Box<ParquetChunks>),
    Npy(NpyChunks),
}

impl FrameChunks {
    /// Opens `path` (`mnist` for the bundled sample, `-` for CSV on
    /// standard input) for chunked reading; `label` names a table's label
    /// column, which is left out (default: a conventionally named one).
    pub fn open(path: &str, label: Option<&str>, opts: ChunkOptions) -> Result<FrameChunks> {
        if path == "-" {
            let mut c = Self::csv_from_reader(std::io::stdin(), label, opts.csv_bytes)
                .map_err(|e| e.at("standard input"))?;
            c.shown = "standard input".into();
            return Ok(c);
        }
        let p = Path::new(path);
        let format = if path == "mnist" && !p.exists() {
            None
        } else {
            detect(p).map_err(|e| DataError::io(path, &e))?
        };
        let opts = ChunkOptions {
            rows: opts.rows.max(1),
            csv_bytes: opts.csv_bytes.max(1),
            ..opts
        };
        let (names, skipped, source) = match format {
            Some(Format::Csv) => {
                let c = CsvChunks::open(p, label, opts.csv_bytes).map_err(|e| e.at(path))?;
                (c.names(), c.skipped(), Source::Csv(Box::new(c)))
            }
            Some(Format::Parquet) => {
                let c = ParquetChunks::open(p, label, opts.rows).map_err(|e| e.at(path))?;
                // A stream whose features fit in a few chunks' memory anyway
                // is decoded whole, one share of the columns per core.
                let bytes = c.total_rows.saturating_mul(8 * c.names.len().max(1) as u64);
                if bytes <= opts.whole_bytes {
                    let f = Frame::load(path, label)?;
                    (f.names.clone(), f.skipped.clone(), Source::Whole(Some(f)))
                } else {
                    (
                        c.names.clone(),
                        c.skipped.clone(),
                        Source::Parquet(Box::new(c)),
                    )
                }
            }
            Some(Format::Npy) => {
                let c = NpyChunks::open(p, opts.rows).map_err(|e| e.at(path))?;
                let names = (0..c.width).map(|i| format!("f{i}")).collect();
                (names, Vec::new(), Source::Npy(c))
            }
            // The bundled sample, or a format that is not read in chunks
            // (which `Frame::load` refuses with the reason).
            _ => {
                let f = Frame::load(path, label)?;
                (f.names.clone(), f.skipped.clone(), Source::Whole(Some(f)))
            }
        };
        Ok(FrameChunks {
            names,
            skipped,
            source,
            shown: path.to_string(),
            rows_read: 0,
        })
    }

    /// Reads CSV from any byte source (standard input, a decompressor, a
    /// fuzzer's bytes) in blocks of `csv_bytes`.
    pub fn csv_from_reader(
        input: impl Read + Send + 'static,
        label: Option<&str>,
        csv_bytes: usize,
    ) -> Result<FrameChunks> {
        let c = CsvChunks::from_reader(Box::new(input), 0, false, label, csv_bytes.max(1))?;
        Ok(FrameChunks {
            names: c.names(),
            skipped: c.skipped(),
            source: Source::Csv(Box::new(c)),
            shown: String::new(),
            rows_read: 0,
        })
    }

    /// The feature names every chunk has, in order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// A CSV's or Parquet file's chunks carry its label column's values
    /// too (as text, as [`Frame::load`] gives them); by default they leave
    /// them out, since a monitored stream does not need them. Sources read whole (the
    /// bundled sample, NPZ, image folders) keep their labels either way.
    pub fn keeping_labels(mut self) -> Self {
        match &mut self.source {
            Source::Csv(c) => c.keep_labels = true,
            Source::Parquet(c) => c.keep_labels = true,
            Source::Whole(_) | Source::Npy(_) => {}
        }
        self
    }

    /// Whether chunks carry labels: a CSV with a label column read
    /// [`keeping_labels`](Self::keeping_labels), or a source read whole
    /// that has them.
    pub fn has_labels(&self) -> bool {
        match &self.source {
            Source::Whole(f) => f.as_ref().is_some_and(|f| f.labels.is_some()),
            Source::Csv(c) => c.keep_labels && c.roles.contains(&CsvRole::Label),
            Source::Parquet(c) => c.label_kept().is_some(),
            Source::Npy(_) => false,
        }
    }

    /// Columns that are neither features nor the label.
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }

    /// Rows handed out so far.
    pub fn rows_read(&self) -> usize {
        self.rows_read
    }

    /// How far the reading is, as (done, total) in the source's own unit
    /// (bytes for CSV, rows otherwise), for a progress bar.
    pub fn progress(&self) -> (u64, u64) {
        match &self.source {
            Source::Whole(f) => (u64::from(f.is_none()), 1),
            Source::Csv(c) => (c.consumed, c.file_len),
            Source::Parquet(c) => (self.rows_read as u64, c.total_rows),
            Source::Npy(c) => (c.next_row as u64, c.rows as u64),
        }
    }

    fn next_chunk(&mut self) -> Result<Option<Frame>> {
        let chunk = match &mut self.source {
            Source::Whole(f) => f.take(),
            Source::Csv(c) => c.next_frame(self.rows_read)?,
            Source::Parquet(c) => c.next_frame()?,
            Source::Npy(c) => c.next_frame()?,
        };
        Ok(chunk.map(|mut f| {
            f.names = self.names.clone();
            f.skipped = self.skipped.clone();
            self.rows_read += f.rows;
            f
        }))
    }
}

impl Iterator for FrameChunks {
    type Item = Result<Frame>;

    fn next(&mut self) -> Option<Result<Frame>> {
        match self.next_chunk() {
            Ok(Some(f)) => Some(Ok(f)),
            Ok(None) => None,
            Err(e) => {
                // One error ends the stream: later chunks cannot be trusted
                // to line up with the rows already handed out.
                self.source = Source::Whole(None);
                Some(Err(e.at(&self.shown)))
            }
        }
    }
}

fn feature_frame(columns: Vec<Vec<f64>>, rows: usize) -> Frame {
    Frame {
        names: Vec::new(),
        columns,
        labels: None,
        rows,
        skipped: Vec::new(),
    }
}

/// What a CSV column is to the chunked reader, fixed by the first chunk.
#[derive(Debug, Clone, Copy, PartialEq)]
enum CsvRole {
    Feature,
    Label,
    Skipped,
}

struct CsvChunks {
    input: Box<dyn Read + Send>,
    /// The input's size when known (for progress), else 0.
    file_len: u64,
    header: CsvHeader,
    roles: Vec<CsvRole>,
    /// Bytes read but not yet parsed; they start at a record boundary.
    pending: Vec<u8>,
    eof: bool,
    /// A quote has been seen, so record ends need the quote-aware parser.
    quoted: bool,
    /// File line number of `pending`'s first line.
    next_line: usize,
    /// Bytes of the file handed out as parsed records (header included).
    consumed: u64,
    block: usize,
    /// The first chunk, typed while the roles were decided.
    first: Option<Vec<table::Column>>,
    /// Whether chunks carry the label column's values (as `Frame::load`
    /// gives them) or leave it out.
    keep_labels: bool,
}

impl CsvChunks {
    fn open(path: &Path, label: Option<&str>, block: usize) -> Result<CsvChunks> {
        let shown = path.display().to_string();
        let file = File::open(path).map_err(|e| DataError::io(&shown, &e))?;
        let file_len = file.metadata().map_or(0, |m| m.len());
        let tsv_hint = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("tsv"));
        Self::from_reader(Box::new(file), file_len, tsv_hint, label, block)
    }

    fn from_reader(
        input: Box<dyn Read + Send>,
        file_len: u64,
        tsv_hint: bool,
        label: Option<&str>,
        block: usize,
    ) -> Result<CsvChunks> {
        let mut c = CsvChunks {
            input,
            file_len,
            header: CsvHeader {
                delimiter: b',',
                names: Vec::new(),
                body_start: 0,
                lines: 0,
            },
            roles: Vec::new(),
            pending: Vec::new(),
            eof: false,
            quoted: false,
            next_line: 1,
            consumed: 0,
            block,
            first: None,
            keep_labels: false,
        };
        // The header record must be whole before it is parsed.
        let mut want = block.min(1 << 20);
        loop {
            c.fill(want)?;
            if c.eof || c.record_ends(true).is_some() {
                break;
            }
            want = c.grown(want)?;
        }
        c.header = table::parse_csv_header(&c.pending, None, tsv_hint)?;
        c.pending.drain(..c.header.body_start);
        c.consumed = c.header.body_start as u64;
        c.next_line = c.header.lines + 1;
        let names = c.header.names.clone();
        let label_at =
            table::find_label_in(&names.iter().map(String::as_str).collect::<Vec<_>>(), label)?;
        // The first chunk decides which columns are features.
        let first = c.next_columns()?.unwrap_or_else(|| {
            names
                .iter()
                .map(|n| table::Column {
                    name: n.clone(),
                    source_type: "string".into(),
                    data: ColumnData::Str(Default::default()),
                })
                .collect()
        });
        c.roles = first
            .iter()
            .enumerate()
            .map(|(i, col)| match &col.data {
                _ if Some(i) == label_at => CsvRole::Label,
                ColumnData::Float(_) | ColumnData::Int(_) | ColumnData::Bool(_) => CsvRole::Feature,
                ColumnData::Str(_) => CsvRole::Skipped,
            })
            .collect();
        c.first = Some(first);
        Ok(c)
    }

    fn names(&self) -> Vec<String> {
        self.named(CsvRole::Feature)
    }

    fn skipped(&self) -> Vec<String> {
        self.named(CsvRole::Skipped)
    }

    fn named(&self, role: CsvRole) -> Vec<String> {
        self.header
            .names
            .iter()
            .zip(&self.roles)
            .filter(|(_, r)| **r == role)
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Reads until `pending` holds `want` bytes or the file ends.
    fn fill(&mut self, want: usize) -> Result<()> {
        if self.eof || self.pending.len() >= want {
            return Ok(());
        }
        let need = (want - self.pending.len()) as u64;
        let got = (&mut self.input)
            .take(need)
            .read_to_end(&mut self.pending)
            .map_err(|e| DataError::io("", &e))?;
        if (got as u64) < need {
            self.eof = true;
        }
        Ok(())
    }

    fn grown(&self, want: usize) -> Result<usize> {
        if self.pending.len() >= MAX_CSV_RECORD {
            return Err(DataError::malformed(format!(
                "CSV record at line {} is longer than {} MiB",
                self.next_line,
                MAX_CSV_RECORD >> 20
            )));
        }
        Ok(want.saturating_mul(2).min(MAX_CSV_RECORD + 1))
    }

    /// The offset just past the last complete record in `pending` (the
    /// first one when `first_only`); `None` if no record is complete.
    fn record_ends(&mut self, first_only: bool) -> Option<usize> {
        let bytes = &self.pending;
        if !self.quoted && memchr::memchr(b'"', bytes).is_none() {
            // Without quotes every line feed ends a record.
            return if first_only {
                memchr::memchr(b'\n', bytes).map(|i| i + 1)
            } else {
                memchr::memrchr(b'\n', bytes).map(|i| i + 1)
            };
        }
        self.quoted = true;
        // The csv crate's own state machine (csv-core), so that a cut
        // never falls inside a quoted field; the fields themselves are
        // discarded here and parsed again with the block.
        let mut reader = csv_core::ReaderBuilder::new()
            .delimiter(self.header.delimiter)
            .build();
        let mut out = vec![0u8; 64 * 1024];
        let mut ends = vec![0usize; 256];
        let (mut at, mut out_at, mut ends_at) = (0, 0, 0);
        let mut last = None;
        loop {
            let (result, read, wrote, ended) =
                reader.read_record(&bytes[at..], &mut out[out_at..], &mut ends[ends_at..]);
            at += read;
            out_at += wrote;
            ends_at += ended;
            match result {
                csv_core::ReadRecordResult::Record => {
                    last = Some(at);
                    (out_at, ends_at) = (0, 0);
                    if first_only {
                        break;
                    }
                }
                csv_core::ReadRecordResult::OutputFull => out.resize(out.len() * 2, 0),
                csv_core::ReadRecordResult::OutputEndsFull => ends.resize(ends.len() * 2, 0),
                csv_core::ReadRecordResult::InputEmpty | csv_core::ReadRecordResult::End => break,
            }
        }
        last
    }

    /// The next block of whole records, typed like a whole file.
    fn next_columns(&mut self) -> Result<Option<Vec<table::Column>>> {
        let mut want = self.block;
        let cut = loop {
            self.fill(want)?;
            if self.pending.is_empty() {
                return Ok(None);
            }
            if self.eof {
                break self.pending.len();
            }
            match self.record_ends(false) {
                Some(cut) if cut > 0 => break cut,
                _ => want = self.grown(want.max(self.pending.len()))?,
            }
        };
        let first_line = self.next_line;
        let block = &self.pending[..cut];
        let text = table::csv_text(block, first_line)?;
        let columns = table::parse_csv_body(text, &self.header, false, first_line)?;
        self.next_line += memchr::memchr_iter(b'\n', block).count();
        self.consumed += cut as u64;
        self.pending.drain(..cut);
        Ok(Some(columns))
    }

    /// The next block that has rows, every column typed like a whole
    /// file, with the file line it starts at.
    fn next_block(&mut self) -> Result<Option<(Vec<table::Column>, usize)>> {
        // A block of nothing but blank lines has no rows: read on.
        loop {
            let first_line = self.next_line;
            let columns = match self.first.take() {
                Some(c) => c,
                None => match self.next_columns()? {
                    Some(c) => c,
                    None => return Ok(None),
                },
            };
            if columns.first().is_some_and(|c| !c.is_empty()) {
                return Ok(Some((columns, first_line)));
            }
        }
    }

    fn next_frame(&mut self, first_row: usize) -> Result<Option<Frame>> {
        let Some((columns, first_line)) = self.next_block()? else {
            return Ok(None);
        };
        let rows = columns.first().map_or(0, table::Column::len);
        let mut features = Vec::new();
        let mut labels = None;
        for (col, role) in columns.into_iter().zip(&self.roles) {
            match role {
                CsvRole::Feature => {}
                CsvRole::Label if self.keep_labels => {
                    labels = Some((0..rows).map(|r| col.cell(r).unwrap_or_default()).collect());
                    continue;
                }
                CsvRole::Label | CsvRole::Skipped => continue,
            }
            features.push(match col.data {
                ColumnData::Float(v) => v.into_iter().map(|x| x.unwrap_or(f64::NAN)).collect(),
                ColumnData::Int(v) => v
                    .into_iter()
                    .map(|x| x.map_or(f64::NAN, |x| x as f64))
                    .collect(),
                ColumnData::Bool(v) => v
                    .into_iter()
                    .map(|x| x.map_or(f64::NAN, |x| f64::from(u8::from(x))))
                    .collect(),
                ColumnData::Str(v) => {
                    // The chunk typed the whole column as text: name the
                    // first cell that is not a number.
                    let is_number = |t: &str| {
                        t.parse::<f64>().is_ok()
                            || t.eq_ignore_ascii_case("true")
                            || t.eq_ignore_ascii_case("false")
                    };
                    let text = v
                        .iter()
                        .enumerate()
                        .find_map(|(r, t)| t.filter(|t| !is_number(t)).map(|t| (r, t)));
                    match text {
                        None if v.iter().all(|t| t.is_none()) => vec![f64::NAN; v.len()],
                        // Numbers and booleans mixed: as the whole file would
                        // type them, text.
                        None => {
                            return Err(DataError::malformed(format!(
                                "column '{}' mixes numbers and booleans in rows {}..{} (from line {first_line}); \
                                 it was a feature in the first chunk, which fixes a streamed CSV's features",
                                col.name,
                                first_row,
                                first_row + rows
                            )))
                        }
                        Some((r, t)) => {
                            return Err(DataError::malformed(format!(
                                "column '{}' holds text ('{}') at row {} (in the chunk from line {first_line}), \
                                 but was a feature in the first chunk, which fixes a streamed CSV's features",
                                col.name,
                                t.chars().take(40).collect::<String>(),
                                first_row + r,
                            )))
                        }
                    }
                }
            });
        }
        let mut frame = feature_frame(features, rows);
        frame.labels = labels;
        Ok(Some(frame))
    }
}

struct ParquetChunks {
    names: Vec<String>,
    skipped: Vec<String>,
    /// Until the first chunk: the reader is built then, so that
    /// [`FrameChunks::keeping_labels`] can still add the label column.
    builder: Option<parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder<std::fs::File>>,
    reader: Option<parquet::arrow::arrow_reader::ParquetRecordBatchReader>,
    /// The features' columns in the file, ascending.
    roots: Vec<usize>,
    label_at: Option<usize>,
    keep_labels: bool,
    /// The label column, typed as the file declares it.
    label_field: Option<arrow_schema::FieldRef>,
    shown: String,
    rows: usize,
    total_rows: u64,
}

impl ParquetChunks {
    fn open(path: &Path, label: Option<&str>, rows: usize) -> Result<ParquetChunks> {
        let builder = table::parquet_builder(path)?;
        let schema = builder.schema().clone();
        let all: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        let label_at = table::find_label_in(&all, label)?;
        let total_rows = u64::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0);
        let (mut names, mut skipped, mut roots) = (Vec::new(), Vec::new(), Vec::new());
        for (i, field) in schema.fields().iter().enumerate() {
            if Some(i) == label_at {
                continue;
            }
            match table::Column::empty_for(field).map(|c| c.data) {
                Ok(ColumnData::Float(_) | ColumnData::Int(_) | ColumnData::Bool(_)) => {
                    names.push(field.name().clone());
                    roots.push(i);
                }
                _ => skipped.push(field.name().clone()),
            }
        }
        Ok(ParquetChunks {
            names,
            skipped,
            builder: Some(builder),
            reader: None,
            roots,
            label_at,
            keep_labels: false,
            label_field: label_at.map(|i| schema.fields()[i].clone()),
            shown: path.display().to_string(),
            rows,
            total_rows,
        })
    }

    fn label_kept(&self) -> Option<usize> {
        self.label_at.filter(|_| self.keep_labels)
    }

    fn next_frame(&mut self) -> Result<Option<Frame>> {
        if let Some(builder) = self.builder.take() {
            // Only the features (and the label, if kept) are decoded.
            let mut roots = self.roots.clone();
            roots.extend(self.label_kept());
            roots.sort_unstable();
            let mask = parquet::arrow::ProjectionMask::roots(builder.parquet_schema(), roots);
            self.reader = Some(
                builder
                    .with_projection(mask)
                    .with_batch_size(self.rows)
                    .build()
                    .map_err(|e| DataError::malformed(format!("Parquet: {e}")))?,
            );
        }
        let Some(batch) = self.reader.as_mut().and_then(Iterator::next) else {
            return Ok(None);
        };
        let batch = batch.map_err(|e| DataError::malformed(format!("Parquet: {e}")))?;
        // Projected columns come in the file's order: the label sits
        // after the features that precede it there.
        let label_pos = self
            .label_kept()
            .map(|at| self.roots.iter().filter(|&&r| r < at).count());
        let mut columns = Vec::with_capacity(self.names.len());
        let mut labels = None;
        let mut features = self.names.iter();
        for (pos, array) in batch.columns().iter().enumerate() {
            if Some(pos) == label_pos {
                let field = self.label_field.as_ref().expect("a kept label has a field");
                let mut c = table::Column::empty_for(field)?;
                table::append_array(&mut c, array, &self.shown)?;
                labels = Some(
                    (0..c.len())
                        .map(|r| c.cell(r).unwrap_or_default())
                        .collect(),
                );
                continue;
            }
            let name = features.next().map_or("", String::as_str);
            let mut v = Vec::with_capacity(batch.num_rows());
            if !table::append_f64(&mut v, array) {
                return Err(DataError::unsupported(format!(
                    "Parquet column '{name}' changes type to {} between row groups",
                    array.data_type()
                )));
            }
            columns.push(v);
        }
        let mut frame = feature_frame(columns, batch.num_rows());
        frame.labels = labels;
        Ok(Some(frame))
    }
}

/// A table (CSV or Parquet) read in chunks of rows with every column, for
/// audits that need text and labels as well as numbers. Each chunk is typed
/// on its own, as a whole file with those rows would be: a column may hold
/// integers in one chunk and floats or text in the next.
pub struct TableChunks {
    names: Vec<String>,
    source: TableSource,
    shown: String,
    rows_read: usize,
}

enum TableSource {
    Whole(Option<table::Table>),
    Csv(Box<CsvChunks>),
    Parquet {
        reader: parquet::arrow::arrow_reader::ParquetRecordBatchReader,
        empty: Vec<table::Column>,
        total_rows: u64,
    },
}

impl TableChunks {
    /// Opens a CSV or Parquet file (recognised by content) for chunked
    /// reading. A Parquet file whose row groups take at most
    /// `opts.whole_bytes` uncompressed is decoded whole, on every core.
    pub fn open(path: &Path, opts: ChunkOptions) -> Result<TableChunks> {
        let shown = path.display().to_string();
        let (names, source) = match detect(path).map_err(|e| DataError::io(&shown, &e))? {
            Some(Format::Csv) => {
                let c =
                    CsvChunks::open(path, None, opts.csv_bytes.max(1)).map_err(|e| e.at(&shown))?;
                (c.header.names.clone(), TableSource::Csv(Box::new(c)))
            }
            Some(Format::Parquet) => {
                let builder = table::parquet_builder(path)?;
                let meta = builder.metadata().clone();
                let uncompressed: i64 = meta.row_groups().iter().map(|g| g.total_byte_size()).sum();
                let schema = builder.schema().clone();
                let names = schema.fields().iter().map(|f| f.name().clone()).collect();
                if u64::try_from(uncompressed).unwrap_or(u64::MAX) <= opts.whole_bytes {
                    (names, TableSource::Whole(Some(table::read_parquet(path)?)))
                } else {
                    let mut empty = Vec::with_capacity(schema.fields().len());
                    for field in schema.fields() {
                        empty.push(table::Column::empty_for(field).map_err(|e| e.at(&shown))?);
                    }
                    let reader = builder
                        .with_batch_size(opts.rows.max(1))
                        .build()
                        .map_err(|e| DataError::malformed(format!("Parquet: {e}")).at(&shown))?;
                    let total_rows = u64::try_from(meta.file_metadata().num_rows()).unwrap_or(0);
                    (
                        names,
                        TableSource::Parquet {
                            reader,
                            empty,
                            total_rows,
                        },
                    )
                }
            }
            _ => return Err(DataError::unsupported("expected a CSV or Parquet table").at(&shown)),
        };
        Ok(TableChunks {
            names,
            source,
            shown,
            rows_read: 0,
        })
    }

    /// The column names every chunk has, in order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Rows handed out so far.
    pub fn rows_read(&self) -> usize {
        self.rows_read
    }

    /// How far the reading is, as (done, total) in the source's own unit
    /// (bytes for CSV, rows for Parquet), for a progress bar.
    pub fn progress(&self) -> (u64, u64) {
        match &self.source {
            TableSource::Whole(t) => (u64::from(t.is_none()), 1),
            TableSource::Csv(c) => (c.consumed, c.file_len),
            TableSource::Parquet { total_rows, .. } => (self.rows_read as u64, *total_rows),
        }
    }

    fn next_chunk(&mut self) -> Result<Option<table::Table>> {
        let chunk = match &mut self.source {
            TableSource::Whole(t) => t.take().filter(|t| t.rows > 0),
            TableSource::Csv(c) => c.next_block()?.map(|(columns, _)| table::Table {
                rows: columns.first().map_or(0, table::Column::len),
                columns,
            }),
            TableSource::Parquet { reader, empty, .. } => match reader.next() {
                None => None,
                Some(batch) => {
                    let batch = batch.map_err(|e| DataError::malformed(format!("Parquet: {e}")))?;
                    let mut columns = empty.clone();
                    for (col, array) in columns.iter_mut().zip(batch.columns()) {
                        table::append_array(col, array, &self.shown)?;
                    }
                    Some(table::Table {
                        columns,
                        rows: batch.num_rows(),
                    })
                }
            },
        };
        if let Some(t) = &chunk {
            self.rows_read += t.rows;
        }
        Ok(chunk)
    }
}

impl Iterator for TableChunks {
    type Item = Result<table::Table>;

    fn next(&mut self) -> Option<Result<table::Table>> {
        match self.next_chunk() {
            Ok(chunk) => chunk.map(Ok),
            Err(e) => {
                // As for frames: one error ends the stream.
                self.source = TableSource::Whole(None);
                Some(Err(e.at(&self.shown)))
            }
        }
    }
}

struct NpyChunks {
    file: File,
    header: crate::npy::NpyHeader,
    rows: usize,
    /// Elements per row (the product of the sample shape).
    width: usize,
    next_row: usize,
    chunk_rows: usize,
}

impl NpyChunks {
    fn open(path: &Path, chunk_rows: usize) -> Result<NpyChunks> {
        let shown = path.display().to_string();
        let mut file = File::open(path).map_err(|e| DataError::io(&shown, &e))?;
        let file_len = file.metadata().map_or(0, |m| m.len());
        let mut head = Vec::new();
        (&mut file)
            .take((crate::npy::MAX_HEADER_LEN + 16) as u64)
            .read_to_end(&mut head)
            .map_err(|e| DataError::io(&shown, &e))?;
        let header = crate::npy::parse_header(&head)?;
        let need = crate::array::byte_count(&header.shape, header.dtype)?;
        let have = file_len.saturating_sub(header.data_offset as u64);
        if have < need as u64 {
            return Err(DataError::malformed(format!(
                "truncated NPY: header declares {need} data bytes, file has {have} (shape {:?} of {})",
                header.shape,
                header.dtype.name()
            )));
        }
        let rows = header.shape.first().copied().unwrap_or(1);
        let width = if header.shape.len() <= 1 {
            1
        } else {
            crate::array::element_count(&header.shape[1..])?
        };
        if width == 0 {
            return Err(DataError::malformed(format!(
                "NPY shape {:?} has no values per row",
                header.shape
            )));
        }
        // A chunk's bytes stay near 64 MiB whatever the row width.
        let size = header.dtype.size();
        let chunk_rows = chunk_rows.min(((64 << 20) / (width * size)).max(1));
        Ok(NpyChunks {
            file,
            header,
            rows,
            width,
            next_row: 0,
            chunk_rows,
        })
    }

    fn next_frame(&mut self) -> Result<Option<Frame>> {
        use std::os::unix::fs::FileExt;
        if self.next_row >= self.rows {
            return Ok(None);
        }
        let (start, n) = (
            self.next_row,
            self.chunk_rows.min(self.rows - self.next_row),
        );
        let size = self.header.dtype.size();
        let base = self.header.data_offset as u64;
        let read = |buf: &mut [u8], at: u64| {
            self.file
                .read_exact_at(buf, at)
                .map_err(|e| DataError::io("", &e))
        };
        // Row-major bytes of rows start..start + n.
        let mut data = vec![0u8; n * self.width * size];
        if !self.header.fortran_order || self.header.shape.len() <= 1 {
            read(&mut data, base + (start * self.width * size) as u64)?;
        } else {
            // Fortran order keeps each (flattened) feature's rows together:
            // one read per feature, scattered into rows.
            let mut column = vec![0u8; n * size];
            let sample_shape = &self.header.shape[1..];
            for c in 0..self.width {
                let offset = fortran_offset(c, sample_shape, self.rows) + start;
                read(&mut column, base + (offset * size) as u64)?;
                for (r, value) in column.chunks_exact(size).enumerate() {
                    let at = (r * self.width + c) * size;
                    data[at..at + size].copy_from_slice(value);
                }
            }
        }
        if self.header.big_endian {
            crate::array::NdArray::swap_bytes_in_place(&mut data, size);
        }
        let array = crate::array::NdArray::new(self.header.dtype, vec![n, self.width], data)?;
        self.next_row += n;
        let mut columns = vec![Vec::with_capacity(n); self.width];
        for r in 0..n {
            for (c, col) in columns.iter_mut().enumerate() {
                col.push(array.get_f64(r * self.width + c));
            }
        }
        Ok(Some(feature_frame(columns, n)))
    }
}

/// Where feature `c` (a row-major index into the sample shape) of row 0
/// sits in a Fortran-order array with `rows` rows, in elements.
fn fortran_offset(c: usize, sample_shape: &[usize], rows: usize) -> usize {
    let mut rest = c;
    let mut offset = 0;
    let mut stride = rows;
    // Row-major digits of `c`, last axis fastest; Fortran strides grow
    // from the first axis.
    let mut digits = vec![0usize; sample_shape.len()];
    for (k, &d) in sample_shape.iter().enumerate().rev() {
        digits[k] = rest % d;
        rest /= d;
    }
    for (k, &d) in sample_shape.iter().enumerate() {
        offset += digits[k] * stride;
        stride *= d;
    }
    offset
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fortran_offsets_follow_numpy_strides() {
        // shape (rows=3, 2, 4): element (r, i, j) at r + 3*i + 6*j.
        for i in 0..2 {
            for j in 0..4 {
                assert_eq!(fortran_offset(i * 4 + j, &[2, 4], 3), 3 * i + 6 * j);
            }
        }
    }
}
