//! What the schema's `unique` check remembers of a column: a digest and
//! the first row of each value seen. Held in a map while it fits its
//! budget; past it, values are sorted into runs on disk (digest, row and
//! the value's text) and the repeats are found by merging the runs once
//! the batch has been read. Either way a repeat is reported with its text
//! and the first row holding the value, so the gate's report does not
//! depend on the budget.

use std::collections::{BinaryHeap, HashMap};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// A cell's value as the uniqueness check keeps it.
pub(crate) type ValueDigest = [u8; 16];

/// The first 128 bits of the value's SHA-256. A cryptographic hash, because
/// the batch is the attacker's: with a fast non-cryptographic one, a sender
/// could craft distinct values that collide and get honest rows quarantined
/// as repeats. At 128 bits an accidental collision needs ~2^64 values.
pub(crate) fn value_digest(text: &str) -> ValueDigest {
    use sha2::Digest;
    let full = sha2::Sha256::digest(text.as_bytes());
    let mut digest = [0u8; 16];
    digest.copy_from_slice(&full[..16]);
    digest
}

/// A map slot: digest, row and one control byte.
const SLOT_BYTES: usize = std::mem::size_of::<ValueDigest>() + std::mem::size_of::<usize>() + 1;

/// Buffer of each reader and writer of the runs.
const RUN_BUFFER: usize = 1 << 20;

/// The smallest run written past the budget, so that a tiny budget does
/// not make a file per value (the merge opens every run at once).
const MIN_RUN_BYTES: usize = 64 << 10;

/// A repeat found when the runs were merged: (row, its text, the first row
/// with the value).
pub(crate) type Repeat = (usize, String, usize);

pub(crate) struct UniqueValues {
    budget: usize,
    spill_dir: Option<PathBuf>,
    seen: HashMap<ValueDigest, usize>,
    runs: Option<Runs>,
}

/// The runs written so far, in a private temporary folder, and the values
/// since the last one.
struct Runs {
    folder: tempfile::TempDir,
    files: Vec<PathBuf>,
    pending: Vec<(ValueDigest, u64, String)>,
    pending_bytes: usize,
}

impl UniqueValues {
    /// A check that holds about `budget` bytes before it writes runs into
    /// `spill_dir` (the system's temporary folder by default).
    pub(crate) fn new(budget: usize, spill_dir: Option<&Path>) -> UniqueValues {
        UniqueValues {
            budget,
            spill_dir: spill_dir.map(Path::to_path_buf),
            seen: HashMap::new(),
            runs: None,
        }
    }

    /// Notes `text` at `row`. Returns the first row holding the same value
    /// when that is known now; once the check has spilled, repeats are
    /// known only at [`UniqueValues::finish`].
    pub(crate) fn check(&mut self, text: &str, row: usize) -> Result<Option<usize>, String> {
        let digest = value_digest(text);
        if let Some(runs) = &mut self.runs {
            runs.pending_bytes += SLOT_BYTES + std::mem::size_of::<String>() + text.len();
            runs.pending.push((digest, row as u64, text.to_string()));
            if runs.pending_bytes > self.budget.max(MIN_RUN_BYTES) {
                runs.write_pending()?;
            }
            return Ok(None);
        }
        if let Some(&first) = self.seen.get(&digest) {
            return Ok(Some(first));
        }
        self.seen.insert(digest, row);
        if self.seen.capacity() * SLOT_BYTES > self.budget {
            self.spill()?;
        }
        Ok(None)
    }

    /// Writes the map as the first run (first rows only: their repeats so
    /// far were reported) and frees it.
    fn spill(&mut self) -> Result<(), String> {
        let parent = self.spill_dir.clone().unwrap_or_else(std::env::temp_dir);
        let folder = tempfile::Builder::new()
            .prefix("mlsec-unique-")
            .tempdir_in(&parent)
            .map_err(|e| {
                format!(
                    "{}: {e} (the folder for unique values too many for memory; set TMPDIR to move it)",
                    parent.display()
                )
            })?;
        let mut runs = Runs {
            folder,
            files: Vec::new(),
            pending: std::mem::take(&mut self.seen)
                .into_iter()
                .map(|(d, r)| (d, r as u64, String::new()))
                .collect(),
            pending_bytes: 0,
        };
        runs.write_pending()?;
        self.runs = Some(runs);
        Ok(())
    }

    /// Whether values went to disk.
    #[cfg(test)]
    pub(crate) fn spilled(&self) -> bool {
        self.runs.is_some()
    }

    /// The repeats not reported by [`UniqueValues::check`]: none unless
    /// the check spilled.
    pub(crate) fn finish(self) -> Result<Vec<Repeat>, String> {
        let Some(mut runs) = self.runs else {
            return Ok(Vec::new());
        };
        runs.write_pending()?;
        runs.merge().map_err(|e| runs.io(e))
    }
}

impl Runs {
    fn io(&self, e: std::io::Error) -> String {
        format!("{}: {e}", self.folder.path().display())
    }

    /// Sorts the pending values by (digest, row) and writes them as a run.
    fn write_pending(&mut self) -> Result<(), String> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.pending
            .sort_unstable_by_key(|&(digest, row, _)| (digest, row));
        let path = self.folder.path().join(format!("run{}", self.files.len()));
        let write = |path: &Path, pending: &[(ValueDigest, u64, String)]| -> std::io::Result<()> {
            let mut w = BufWriter::with_capacity(RUN_BUFFER, std::fs::File::create(path)?);
            for (digest, row, text) in pending {
                w.write_all(digest)?;
                w.write_all(&row.to_le_bytes())?;
                // Cells are far below 4 GiB: a CSV record is refused past 256 MiB.
                let len = u32::try_from(text.len()).unwrap_or(u32::MAX);
                w.write_all(&len.to_le_bytes())?;
                w.write_all(&text.as_bytes()[..len as usize])?;
            }
            w.flush()
        };
        write(&path, &self.pending).map_err(|e| self.io(e))?;
        self.files.push(path);
        self.pending.clear();
        self.pending.shrink_to(self.pending.capacity() / 2);
        self.pending_bytes = 0;
        Ok(())
    }

    /// Merges the runs in (digest, row) order: in each digest's group the
    /// first row is the value's first, and every later one a repeat.
    fn merge(&self) -> std::io::Result<Vec<Repeat>> {
        let mut readers = self
            .files
            .iter()
            .map(|p| {
                Ok(BufReader::with_capacity(
                    RUN_BUFFER,
                    std::fs::File::open(p)?,
                ))
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        let mut texts: Vec<String> = vec![String::new(); readers.len()];
        let mut heap = BinaryHeap::with_capacity(readers.len());
        for (run, r) in readers.iter_mut().enumerate() {
            if let Some((digest, row)) = next_value(r, &mut texts[run])? {
                heap.push(std::cmp::Reverse((digest, row, run)));
            }
        }
        let mut repeats = Vec::new();
        let mut group: Option<(ValueDigest, u64)> = None;
        while let Some(std::cmp::Reverse((digest, row, run))) = heap.pop() {
            match group {
                Some((d, first)) if d == digest => {
                    repeats.push((
                        row as usize,
                        std::mem::take(&mut texts[run]),
                        first as usize,
                    ));
                }
                _ => group = Some((digest, row)),
            }
            if let Some((digest, row)) = next_value(&mut readers[run], &mut texts[run])? {
                heap.push(std::cmp::Reverse((digest, row, run)));
            }
        }
        Ok(repeats)
    }
}

/// A run's next value, its text into `text`.
fn next_value(r: &mut impl Read, text: &mut String) -> std::io::Result<Option<(ValueDigest, u64)>> {
    let mut head = [0u8; 16 + 8 + 4];
    match r.read_exact(&mut head) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut digest = [0u8; 16];
    digest.copy_from_slice(&head[..16]);
    let row = u64::from_le_bytes(head[16..24].try_into().unwrap_or_default());
    let len = u32::from_le_bytes(head[24..28].try_into().unwrap_or_default()) as usize;
    let mut bytes = vec![0u8; len];
    r.read_exact(&mut bytes)?;
    *text = String::from_utf8(bytes)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    Ok(Some((digest, row)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Every repeat, as (row, text, first row): those `check` reported and
    /// those `finish` found, in row order.
    fn repeats(values: &[String], budget: usize) -> (Vec<Repeat>, bool) {
        let mut u = UniqueValues::new(budget, None);
        let mut out = Vec::new();
        for (row, v) in values.iter().enumerate() {
            if let Some(first) = u.check(v, row).unwrap() {
                out.push((row, v.clone(), first));
            }
        }
        let spilled = u.spilled();
        out.extend(u.finish().unwrap());
        out.sort();
        (out, spilled)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Any budget finds the repeats a map of every value finds.
        #[test]
        fn any_budget_finds_the_same_repeats(
            values in prop::collection::vec("[a-e]{0,2}", 0..300),
            budget in 0usize..4000,
        ) {
            let (held, spilled) = repeats(&values, usize::MAX);
            prop_assert!(!spilled);
            let (runs, _) = repeats(&values, budget);
            prop_assert_eq!(runs, held);
        }
    }

    #[test]
    fn a_small_budget_spills_and_reports_each_repeat_once() {
        let values: Vec<String> = (0..5000).map(|i| format!("id-{}", i % 1700)).collect();
        let (found, spilled) = repeats(&values, 4096);
        assert!(spilled);
        assert_eq!(found.len(), 5000 - 1700);
        assert_eq!(found[0], (1700, "id-0".to_string(), 0));
        assert!(found
            .iter()
            .all(|(row, text, first)| *first == row % 1700 && *text == format!("id-{first}")));
    }
}
