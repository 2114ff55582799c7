//! A drift reference read in chunks: held in memory while its numbers fit
//! a budget, and past it sorted on disk, column by column (an external
//! merge sort: sorted runs of at most the budget, then one k-way merge), so
//! that a reference larger than memory can still be monitored against.
//!
//! KS and PSI need only each column's sorted numbers
//! ([`crate::stats::sorted`] places a window's values in them by binary
//! search over a memory map, so the page cache, not the heap, holds what is
//! read). MMD needs the reference's mean and deviation and a few hundred
//! of its rows; those come from a second pass over the file, in row order,
//! so that the results are bit-identical to a reference held in memory.

pub mod rows;

use crate::error::{DataError, ErrorKind, Result};
use crate::frame::Frame;
use crate::stream::FrameChunks;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// How much of a reference may be held in memory, and where the rest goes.
#[derive(Debug, Clone)]
pub struct ReferenceOptions {
    /// Bytes of reference numbers (8 a value) held before the columns are
    /// sorted into runs on disk.
    pub memory_bytes: u64,
    /// The folder for the sorted runs (default: the system's temporary
    /// folder, `TMPDIR`); they are removed when the reference is dropped.
    pub spill_dir: Option<PathBuf>,
}

impl Default for ReferenceOptions {
    fn default() -> Self {
        ReferenceOptions {
            memory_bytes: 1 << 30,
            spill_dir: None,
        }
    }
}

/// A reference as read: whole, or sorted on disk.
pub enum ReferenceData {
    Whole(Frame),
    Sorted(SortedReference),
}

/// A reference's numeric columns, each sorted ascending without its NaN,
/// in memory-mapped files of a private temporary folder.
pub struct SortedReference {
    pub names: Vec<String>,
    pub rows: usize,
    columns: Vec<SortedColumn>,
    /// Per column: numbers counted and their sum, in row order.
    sums: Vec<(usize, f64)>,
    /// Per column: finite numbers counted and their sum, in row order.
    finite_sums: Vec<(usize, f64)>,
    /// How many rows carry each label, when the chunks carried labels.
    pub label_counts: Option<std::collections::BTreeMap<String, usize>>,
    /// What MMD needs, once [`SortedReference::prepare_mmd`] has run.
    pub mmd: Option<MmdReference>,
    /// Holds the folder (and so the files) for as long as the maps live.
    _folder: tempfile::TempDir,
}

/// The reference's side of the MMD test, as the in-memory path computes it.
#[derive(Debug, Clone, PartialEq)]
pub struct MmdReference {
    /// Per column: mean and standard deviation of its numbers (1 where it
    /// has no spread).
    pub mean: Vec<f64>,
    pub sd: Vec<f64>,
    /// The sampled rows, in ascending order…
    pub rows: Vec<usize>,
    /// …and their values, row-major over every column (NaN kept).
    pub values: Vec<f64>,
}

/// One sorted column's numbers, in a memory-mapped file.
pub enum SortedColumn {
    Empty,
    Mapped(memmap2::Mmap),
}

impl SortedColumn {
    fn numbers(&self) -> &[f64] {
        match self {
            SortedColumn::Empty => &[],
            SortedColumn::Mapped(m) => as_numbers(m),
        }
    }
}

impl SortedReference {
    /// Column `k`'s numbers, sorted.
    pub fn column(&self, k: usize) -> &[f64] {
        self.columns[k].numbers()
    }

    /// Column `k`'s finite numbers: how many, and their sum in row order.
    pub fn finite_sum(&self, k: usize) -> (usize, f64) {
        self.finite_sums[k]
    }

    /// The median of column `k`'s finite numbers as
    /// [`crate::frame::finite_median`] takes it (the upper one of an even
    /// count), read off the sorted column; 0 when it has none.
    pub fn finite_median(&self, k: usize) -> f64 {
        let c = self.column(k);
        // Sorted by total order: −∞ first, +∞ last, NaN left out.
        let lo = c.partition_point(|x| *x == f64::NEG_INFINITY);
        let hi = c.partition_point(|x| *x != f64::INFINITY);
        if hi <= lo {
            return 0.0;
        }
        c[lo + (hi - lo) / 2]
    }

    /// Reads the reference again, in row order, handing `visit` each
    /// chunk and the index of its first row. `reopen` opens the same file
    /// again; one whose columns or row count changed since the first pass
    /// is an error (a visit that saw part of it has then been misled, so
    /// the caller drops what it gathered).
    pub fn read_again(
        &self,
        reopen: impl FnOnce() -> Result<FrameChunks>,
        mut visit: impl FnMut(&Frame, usize) -> Result<()>,
    ) -> Result<()> {
        let chunks = reopen()?;
        if chunks.names() != self.names.as_slice() {
            return Err(changed());
        }
        let mut first_row = 0usize;
        for chunk in chunks {
            let chunk = chunk?;
            if first_row + chunk.rows > self.rows {
                return Err(changed());
            }
            visit(&chunk, first_row)?;
            first_row += chunk.rows;
        }
        if first_row != self.rows {
            return Err(changed());
        }
        Ok(())
    }

    /// Reads the reference's numbers a second time, in row order, for the
    /// means and deviations MMD standardises by and the values of the
    /// sampled `rows` (ascending). `reopen` opens the same file again; a
    /// file that changed in between is an error.
    pub fn prepare_mmd(
        &mut self,
        reopen: impl FnOnce() -> Result<FrameChunks>,
        rows: &[usize],
    ) -> Result<()> {
        let width = self.names.len();
        let mean: Vec<f64> = self
            .sums
            .iter()
            .map(|&(n, sum)| sum / n.max(1) as f64)
            .collect();
        let mut squares = vec![0.0f64; width];
        let mut values = Vec::with_capacity(rows.len() * width);
        let mut wanted = rows.iter().copied().peekable();
        self.read_again(reopen, |chunk, first_row| {
            for (k, column) in chunk.columns.iter().enumerate() {
                let m = mean[k];
                let acc = &mut squares[k];
                for &x in column.iter().filter(|x| !x.is_nan()) {
                    *acc += (x - m) * (x - m);
                }
            }
            while let Some(&r) = wanted.peek() {
                if r >= first_row + chunk.rows {
                    break;
                }
                values.extend(chunk.columns.iter().map(|c| c[r - first_row]));
                wanted.next();
            }
            Ok(())
        })?;
        if wanted.next().is_some() {
            return Err(changed());
        }
        let sd = squares
            .iter()
            .zip(&self.sums)
            .map(|(&s, &(n, _))| {
                let var = s / n.max(1) as f64;
                if var > 0.0 {
                    var.sqrt()
                } else {
                    1.0
                }
            })
            .collect();
        self.mmd = Some(MmdReference {
            mean,
            sd,
            rows: rows.to_vec(),
            values,
        });
        Ok(())
    }
}

fn changed() -> DataError {
    DataError::new(
        ErrorKind::Integrity,
        "the reference changed between its two passes",
    )
}

/// The bytes of a sorted run or column as the numbers they hold.
fn as_numbers(bytes: &[u8]) -> &[f64] {
    // Written by this process in native byte order; a map starts on a page
    // boundary, so it is aligned for f64 (checked, not assumed).
    assert!(
        bytes.as_ptr() as usize % std::mem::align_of::<f64>() == 0 && bytes.len() % 8 == 0,
        "a sorted column's map is aligned and whole"
    );
    // SAFETY: aligned and sized as checked above; every bit pattern is a
    // valid f64; the slice borrows `bytes`, so it cannot outlive the map.
    unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<f64>(), bytes.len() / 8) }
}

/// Reads a reference in chunks, holding its numbers while they take at
/// most `opts.memory_bytes`; past that every column is sorted on disk.
pub fn read(chunks: FrameChunks, opts: &ReferenceOptions) -> Result<ReferenceData> {
    let names = chunks.names().to_vec();
    let skipped = chunks.skipped().to_vec();
    let width = names.len();
    let mut columns: Vec<Vec<f64>> = vec![Vec::new(); width];
    let mut sums = vec![(0usize, 0.0f64); width];
    let mut finite_sums = vec![(0usize, 0.0f64); width];
    // Labels are held row by row while the reference is; once it spills,
    // only their counts are kept (all the label screens read of a
    // reference on disk besides a second pass).
    let mut labels: Option<Vec<String>> = chunks.has_labels().then(Vec::new);
    let mut label_bytes = 0u64;
    let mut label_counts: Option<std::collections::BTreeMap<String, usize>> = None;
    let mut rows = 0usize;
    let mut spill: Option<Spill> = None;
    for chunk in chunks {
        let chunk = chunk?;
        for (k, part) in chunk.columns.iter().enumerate() {
            if spill.is_some() {
                add_sums(part, &mut sums[k], &mut finite_sums[k]);
                columns[k].extend(part.iter().copied().filter(|x| !x.is_nan()));
            } else {
                columns[k].extend_from_slice(part);
            }
        }
        if let Some(part) = chunk.labels {
            if let Some(counts) = &mut label_counts {
                count_labels(counts, part);
            } else if let Some(held) = &mut labels {
                // A String's heap bytes and its own 24.
                label_bytes += part.iter().map(|l| l.len() as u64 + 24).sum::<u64>();
                held.extend(part);
            }
        }
        rows += chunk.rows;
        let held: u64 = columns.iter().map(|c| c.len() as u64 * 8).sum::<u64>() + label_bytes;
        if held > opts.memory_bytes {
            if spill.is_none() {
                // The sums only a spilled reference needs, over the rows
                // held so far, in row order: the additions a held
                // reference's own sums make, so the bits are the same.
                for (k, c) in columns.iter().enumerate() {
                    add_sums(c, &mut sums[k], &mut finite_sums[k]);
                }
                spill = Some(Spill::new(opts.spill_dir.as_deref(), width)?);
                if let Some(held) = labels.take() {
                    let mut counts = std::collections::BTreeMap::new();
                    count_labels(&mut counts, held);
                    label_counts = Some(counts);
                    label_bytes = 0;
                }
            }
            if let Some(s) = &mut spill {
                s.write_run(&mut columns)?;
            }
        }
    }
    let Some(mut spill) = spill else {
        for c in &mut columns {
            c.shrink_to_fit();
        }
        if let Some(l) = &mut labels {
            l.shrink_to_fit();
        }
        return Ok(ReferenceData::Whole(Frame {
            names,
            columns,
            labels,
            rows,
            skipped,
        }));
    };
    if columns.iter().any(|c| !c.is_empty()) {
        spill.write_run(&mut columns)?;
    }
    drop(columns);
    let sorted = spill.merge()?;
    Ok(ReferenceData::Sorted(SortedReference {
        names,
        rows,
        columns: sorted,
        sums,
        finite_sums,
        label_counts,
        mmd: None,
        _folder: spill.folder,
    }))
}

/// Adds a column's numbers to its count and sum, and its finite numbers
/// to theirs, in row order.
fn add_sums(part: &[f64], (n, sum): &mut (usize, f64), (finite, finite_sum): &mut (usize, f64)) {
    for &x in part.iter().filter(|x| !x.is_nan()) {
        *n += 1;
        *sum += x;
        if x.is_finite() {
            *finite += 1;
            *finite_sum += x;
        }
    }
}

fn count_labels(counts: &mut std::collections::BTreeMap<String, usize>, labels: Vec<String>) {
    for l in labels {
        *counts.entry(l).or_default() += 1;
    }
}

/// Columns of numbers to be sorted that may not fit in memory (a gate's
/// batch, the scores of every reference row for a contamination offset):
/// held while they fit the budget, and past it sorted into runs on disk
/// and merged, as a reference's columns are.
pub struct ColumnSorter {
    held: Vec<Vec<f64>>,
    memory_bytes: u64,
    spill_dir: Option<PathBuf>,
    spill: Option<Spill>,
}

/// What a [`ColumnSorter`] gives: each column's numbers ascending, NaN
/// left out, held or in memory-mapped files.
pub struct SortedColumns {
    held: Vec<Vec<f64>>,
    mapped: Vec<SortedColumn>,
    /// Holds the files while they are mapped (none when held).
    folder: Option<tempfile::TempDir>,
}

impl SortedColumns {
    pub fn column(&self, k: usize) -> &[f64] {
        match self.mapped.get(k) {
            Some(m) => m.numbers(),
            None => &self.held[k],
        }
    }

    /// Whether the numbers went to disk.
    pub fn spilled(&self) -> bool {
        self.folder.is_some()
    }
}

impl ColumnSorter {
    pub fn new(width: usize, opts: &ReferenceOptions) -> ColumnSorter {
        ColumnSorter {
            held: vec![Vec::new(); width],
            memory_bytes: opts.memory_bytes,
            spill_dir: opts.spill_dir.clone(),
            spill: None,
        }
    }

    /// Appends one chunk's numbers to column `k`.
    pub fn push(&mut self, k: usize, values: &[f64]) -> Result<()> {
        self.held[k].extend_from_slice(values);
        let held: u64 = self.held.iter().map(|c| c.len() as u64 * 8).sum();
        if held > self.memory_bytes {
            if self.spill.is_none() {
                self.spill = Some(Spill::new(self.spill_dir.as_deref(), self.held.len())?);
            }
            if let Some(s) = &mut self.spill {
                s.write_run(&mut self.held)?;
            }
        }
        Ok(())
    }

    pub fn finish(mut self) -> Result<SortedColumns> {
        let Some(mut spill) = self.spill else {
            crate::stats::sorted::sort_numbers(self.held.iter_mut().collect());
            return Ok(SortedColumns {
                held: self.held,
                mapped: Vec::new(),
                folder: None,
            });
        };
        if self.held.iter().any(|c| !c.is_empty()) {
            spill.write_run(&mut self.held)?;
        }
        Ok(SortedColumns {
            held: Vec::new(),
            mapped: spill.merge()?,
            folder: Some(spill.folder),
        })
    }
}

/// The sorted runs of every column, in a private temporary folder.
struct Spill {
    folder: tempfile::TempDir,
    /// Per column, its runs' files in the order written.
    runs: Vec<Vec<PathBuf>>,
}

/// Buffer of each reader and of the writer of a merge.
const MERGE_BUFFER: usize = 1 << 20;

impl Spill {
    fn new(dir: Option<&Path>, width: usize) -> Result<Spill> {
        let mut b = tempfile::Builder::new();
        b.prefix("mlsec-reference-");
        let parent = dir.map_or_else(std::env::temp_dir, Path::to_path_buf);
        let folder = b.tempdir_in(&parent).map_err(|e| {
            DataError::io(
                &format!(
                    "{} (the folder for sorted columns too large for memory; set TMPDIR to move it)",
                    parent.display()
                ),
                &e,
            )
        })?;
        Ok(Spill {
            folder,
            runs: vec![Vec::new(); width],
        })
    }

    fn io(&self, e: std::io::Error) -> DataError {
        DataError::io(&self.folder.path().display().to_string(), &e)
    }

    /// Sorts each column's numbers (NaN left out) on the cores, writes
    /// them as one run per column, and empties the columns.
    fn write_run(&mut self, columns: &mut [Vec<f64>]) -> Result<()> {
        crate::stats::sorted::sort_numbers(columns.iter_mut().collect());
        for (k, c) in columns.iter_mut().enumerate() {
            let path = self
                .folder
                .path()
                .join(format!("column{k}.run{}", self.runs[k].len()));
            let file = std::fs::File::create(&path).map_err(|e| self.io(e))?;
            let mut w = BufWriter::with_capacity(MERGE_BUFFER, file);
            for x in c.iter() {
                w.write_all(&x.to_ne_bytes()).map_err(|e| self.io(e))?;
            }
            w.flush().map_err(|e| self.io(e))?;
            self.runs[k].push(path);
            c.clear();
        }
        Ok(())
    }

    /// Merges each column's runs into one sorted file and maps it.
    fn merge(&mut self) -> Result<Vec<SortedColumn>> {
        let mut out = Vec::with_capacity(self.runs.len());
        for k in 0..self.runs.len() {
            let runs = std::mem::take(&mut self.runs[k]);
            let path = self.folder.path().join(format!("column{k}.sorted"));
            if let [only] = runs.as_slice() {
                std::fs::rename(only, &path).map_err(|e| self.io(e))?;
            } else {
                merge_runs(&runs, &path).map_err(|e| self.io(e))?;
                for r in &runs {
                    std::fs::remove_file(r).map_err(|e| self.io(e))?;
                }
            }
            let file = std::fs::File::open(&path).map_err(|e| self.io(e))?;
            let len = file.metadata().map_err(|e| self.io(e))?.len();
            out.push(if len == 0 {
                SortedColumn::Empty
            } else {
                // SAFETY: the file lies in a folder private to this process
                // (created with a random name, mode 0700) and is never
                // written again while mapped.
                let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| self.io(e))?;
                SortedColumn::Mapped(map)
            });
        }
        Ok(out)
    }
}

/// A run's next number, ordered for the merge's min-heap.
struct Head {
    value: f64,
    run: usize,
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}
impl Eq for Head {}
impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Head {
    /// Reversed, so that `BinaryHeap` (a max-heap) yields the smallest.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other
            .value
            .total_cmp(&self.value)
            .then(other.run.cmp(&self.run))
    }
}

fn next_number(r: &mut impl Read) -> std::io::Result<Option<f64>> {
    let mut b = [0u8; 8];
    match r.read_exact(&mut b) {
        Ok(()) => Ok(Some(f64::from_ne_bytes(b))),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(e),
    }
}

/// k-way merge of sorted runs into `out`.
fn merge_runs(runs: &[PathBuf], out: &Path) -> std::io::Result<()> {
    let mut readers = runs
        .iter()
        .map(|p| {
            Ok(BufReader::with_capacity(
                MERGE_BUFFER,
                std::fs::File::open(p)?,
            ))
        })
        .collect::<std::io::Result<Vec<_>>>()?;
    let mut heap = std::collections::BinaryHeap::with_capacity(runs.len());
    for (run, r) in readers.iter_mut().enumerate() {
        if let Some(value) = next_number(r)? {
            heap.push(Head { value, run });
        }
    }
    let mut w = BufWriter::with_capacity(MERGE_BUFFER, std::fs::File::create(out)?);
    while let Some(Head { value, run }) = heap.pop() {
        w.write_all(&value.to_ne_bytes())?;
        if let Some(value) = next_number(&mut readers[run])? {
            heap.push(Head { value, run });
        }
    }
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::ChunkOptions;
    use proptest::prelude::*;

    fn csv(rows: &[(f64, f64)]) -> String {
        let mut s = String::from("a,b,note\n");
        for (a, b) in rows {
            let show = |v: f64| {
                if v.is_nan() {
                    String::new()
                } else {
                    v.to_string()
                }
            };
            s.push_str(&format!("{},{},x\n", show(*a), show(*b)));
        }
        s
    }

    fn chunks_of(text: &str, bytes: usize) -> FrameChunks {
        FrameChunks::csv_from_reader(
            std::io::Cursor::new(text.to_string().into_bytes()),
            None,
            bytes,
        )
        .unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// Whatever the budget, a spilled reference holds each column's
        /// numbers sorted, and its MMD pass gives what the whole one does.
        #[test]
        fn a_spilled_reference_is_the_whole_one_sorted(
            rows in prop::collection::vec(
                (prop_oneof![4 => (-50i32..50).prop_map(f64::from), 1 => Just(f64::NAN)],
                 -1e3f64..1e3),
                1..600),
            budget in 8u64..4000,
            chunk in 16usize..300,
            sample in prop::collection::btree_set(0usize..600, 0..20),
        ) {
            let text = csv(&rows);
            // The same chunks (a CSV's first chunk decides its features),
            // held in memory.
            let whole = match read(chunks_of(&text, chunk), &ReferenceOptions::default()).unwrap() {
                ReferenceData::Whole(f) => f,
                ReferenceData::Sorted(_) => unreachable!("fits the default budget"),
            };
            let opts = ReferenceOptions { memory_bytes: budget, spill_dir: None };
            let mut sorted = match read(chunks_of(&text, chunk), &opts).unwrap() {
                ReferenceData::Sorted(s) => s,
                ReferenceData::Whole(_) => {
                    // Held only while every number read fits the budget.
                    prop_assert!(whole.rows * whole.columns.len() * 8 <= budget as usize);
                    return Ok(());
                }
            };
            prop_assert_eq!(&sorted.names, &whole.names);
            prop_assert_eq!(sorted.rows, whole.rows);
            for (k, c) in whole.columns.iter().enumerate() {
                let mut expect: Vec<f64> = c.iter().copied().filter(|x| !x.is_nan()).collect();
                expect.sort_unstable_by(f64::total_cmp);
                prop_assert_eq!(sorted.column(k), expect.as_slice());
            }
            let picked: Vec<usize> = sample.into_iter().filter(|&r| r < rows.len()).collect();
            sorted.prepare_mmd(|| Ok(chunks_of(&text, chunk)), &picked).unwrap();
            let mmd = sorted.mmd.as_ref().unwrap();
            for (k, c) in whole.columns.iter().enumerate() {
                let (m, sd) = crate::drift::mean_and_deviation(c);
                prop_assert_eq!(mmd.mean[k].to_bits(), m.to_bits());
                prop_assert_eq!(mmd.sd[k].to_bits(), sd.to_bits());
            }
            let expect: Vec<f64> = picked
                .iter()
                .flat_map(|&r| whole.columns.iter().map(move |c| c[r]))
                .collect();
            prop_assert_eq!(
                mmd.values.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                expect.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn a_reference_that_changed_between_passes_is_refused() {
        let text = csv(&[(1.0, 2.0), (3.0, 4.0), (5.0, 6.0)]);
        let opts = ReferenceOptions {
            memory_bytes: 8,
            spill_dir: None,
        };
        let ReferenceData::Sorted(mut s) = read(chunks_of(&text, 1 << 20), &opts).unwrap() else {
            panic!("over the budget")
        };
        let shorter = csv(&[(1.0, 2.0)]);
        let e = s
            .prepare_mmd(|| Ok(chunks_of(&shorter, 1 << 20)), &[0])
            .unwrap_err();
        assert!(e.to_string().contains("changed"), "{e}");
    }

    #[test]
    fn the_sorted_runs_are_removed_with_the_reference() {
        let dir = tempfile::tempdir().unwrap();
        let text = csv(&[(1.0, 2.0), (3.0, 4.0), (5.0, 6.0)]);
        let opts = ReferenceOptions {
            memory_bytes: 8,
            spill_dir: Some(dir.path().to_path_buf()),
        };
        let chunks = FrameChunks::open(
            &{
                let p = dir.path().join("ref.csv");
                std::fs::write(&p, &text).unwrap();
                p.display().to_string()
            },
            None,
            ChunkOptions::default(),
        )
        .unwrap();
        let data = read(chunks, &opts).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
        drop(data);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
