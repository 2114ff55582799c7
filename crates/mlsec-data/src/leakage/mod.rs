//! The leakage audit of a train/test split: test rows that are also in
//! training (exact, after normalisation, and near-duplicate texts by
//! MinHash/LSH), training rows from after the split time, and single
//! features that give the label away.

pub mod images;
pub mod minhash;

use crate::table::{Column, ColumnData, Table};
use mlsec_core::{Finding, Location, OwaspMl, Rule, RuleDocs, Severity, Stage};
use serde::Serialize;
use sha2::Digest;
use std::collections::HashMap;

pub static SPLIT_DUPLICATES: Rule = Rule {
    code: "MLS-DATA-012",
    name: "test-rows-in-training",
    summary: "Test rows also appear in the training split, exactly or as near-duplicates.",
    default_severity: Severity::High,
    stage: Stage::Evaluation,
    atlas: &["AML.T0020"],
    owasp: Some(OwaspMl::Ml02DataPoisoning),
    docs: RuleDocs {
        what_it_detects:
            "Test rows whose feature values, normalised (trimmed, whitespace collapsed, \
            lower case, numbers in one canonical form), equal a training row's; and with `--text`, \
            test texts whose character-shingle Jaccard similarity with a training text reaches the \
            threshold (MinHash/LSH candidates, verified exactly).",
        why_it_matters:
            "A model evaluated on rows it trained on reports memorisation as accuracy: the \
            test score overstates real performance, and a robustness or privacy claim built on it \
            is void.",
        example:
            "`test.csv` row 12 equals `train.csv` row 4031: `148 of 2000 test rows (7.4 %) are \
            in the training split`.",
    },
};

pub static TEMPORAL_BLEED: Rule = Rule {
    code: "MLS-DATA-013",
    name: "temporal-bleed",
    summary: "Training rows are newer than the split time or than test rows.",
    default_severity: Severity::Medium,
    stage: Stage::Evaluation,
    atlas: &["AML.T0020"],
    owasp: None,
    docs: RuleDocs {
        what_it_detects:
            "With `--time COLUMN`, training rows dated after `--split-time` (or, without \
            one, after the earliest test row), listed per row.",
        why_it_matters: "A model trained on the future of its test set learns information it will \
            never have in production; forecasts and fraud models look better than they are.",
        example:
            "`train.csv` rows dated 2026-03-02 with a split at 2026-03-01: `412 training rows are \
            newer than the split time`.",
    },
};

pub static TARGET_LEAKAGE: Rule = Rule {
    code: "MLS-DATA-014",
    name: "target-leakage",
    summary: "A single feature predicts the label almost perfectly.",
    default_severity: Severity::High,
    stage: Stage::Evaluation,
    atlas: &["AML.T0020"],
    owasp: None,
    docs: RuleDocs {
        what_it_detects: "For each feature of the training split, how well it alone separates the \
            label: ROC AUC for numeric features (one class against the rest, the best class), \
            normalised mutual information for categorical ones. At or above the threshold \
            (default 0.98 AUC, 0.95 NMI) the feature is reported.",
        why_it_matters: "A feature that encodes the label — an ID assigned after labelling, a \
            post-outcome timestamp, a leaked column — gives test scores no production model \
            reaches, and hides what the model really learned.",
        example:
            "`refund_issued` in a fraud dataset: `refund_issued alone predicts the label (AUC \
            0.998)`.",
    },
};

pub static RULES: &[&Rule] = &[&SPLIT_DUPLICATES, &TEMPORAL_BLEED, &TARGET_LEAKAGE];

#[derive(Debug, Clone)]
pub struct AuditOptions {
    pub label: Option<String>,
    /// Columns left out of row hashing (ids, timestamps).
    pub ignore: Vec<String>,
    pub text: Option<String>,
    pub minhash: minhash::MinHashParams,
    pub time: Option<String>,
    pub split_time: Option<String>,
    pub auc_threshold: f64,
    pub nmi_threshold: f64,
    /// The target-leakage screen holds at most this many training rows: a
    /// uniform sample (seeded) when the split has more.
    pub screen_rows: usize,
    pub seed: u64,
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions {
            label: None,
            ignore: Vec::new(),
            text: None,
            minhash: minhash::MinHashParams::default(),
            time: None,
            split_time: None,
            auc_threshold: 0.98,
            nmi_threshold: 0.95,
            screen_rows: 1_000_000,
            seed: 20261123,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Audit {
    pub train_rows: usize,
    pub test_rows: usize,
    pub exact_duplicates: Vec<(usize, usize)>,
    pub near_duplicates: Vec<(usize, usize, f64)>,
    pub newer_training_rows: Vec<usize>,
    pub leaking_features: Vec<(String, String, f64)>,
    /// Training rows the target-leakage screen looked at (all of them, or
    /// a uniform sample of `screen_rows`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub screened_rows: Option<usize>,
    /// Blocks the test split was held in, when more than one (the training
    /// split was read once per block).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_blocks: Option<usize>,
    #[serde(skip)]
    pub findings: Vec<Finding>,
}

impl Audit {
    fn empty(train_rows: usize, test_rows: usize) -> Audit {
        Audit {
            train_rows,
            test_rows,
            exact_duplicates: Vec::new(),
            near_duplicates: Vec::new(),
            newer_training_rows: Vec::new(),
            leaking_features: Vec::new(),
            screened_rows: None,
            test_blocks: None,
            findings: Vec::new(),
        }
    }
}

/// A number in one form whatever its column's type: integers without a
/// fraction, others as Rust prints them.
fn canonical_number(x: f64) -> String {
    if x == x.trunc() && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

/// A cell as the row hash sees it. Text that is a number takes the
/// number's form, so that a column typed as text in one split (or one
/// chunk) and as numbers in the other still matches.
fn canonical_cell(c: &Column, r: usize) -> String {
    match &c.data {
        ColumnData::Float(v) => v[r].map_or("∅".into(), canonical_number),
        ColumnData::Int(v) => v[r].map_or("∅".into(), |x| x.to_string()),
        ColumnData::Bool(v) => v[r].map_or("∅".into(), |x| x.to_string()),
        ColumnData::Str(v) => v.get(r).map_or("∅".into(), |s| {
            let t = s.trim();
            if let Ok(x) = t.parse::<i64>() {
                x.to_string()
            } else if let Some(x) = t.parse::<f64>().ok().filter(|x| x.is_finite()) {
                canonical_number(x)
            } else {
                minhash::normalise(s)
            }
        }),
    }
}

type RowHash = [u8; 32];

/// The hashes of a chunk's rows over `cols`, on every core.
fn row_hashes(t: &Table, cols: &[usize]) -> Vec<RowHash> {
    crate::stats::on_threads(t.rows, |range| {
        range
            .map(|r| {
                let mut h = sha2::Sha256::new();
                for &c in cols {
                    h.update(canonical_cell(&t.columns[c], r).as_bytes());
                    h.update([0x1f]);
                }
                h.finalize().into()
            })
            .collect()
    })
}

/// Seconds since the epoch from an ISO 8601 date or date-time (UTC, `Z` or
/// no zone) or a plain number.
pub fn parse_time(s: &str) -> Option<f64> {
    let s = s.trim();
    if let Ok(x) = s.parse::<f64>() {
        return Some(x);
    }
    let (date, time) = match s.split_once(['T', ' ']) {
        Some((d, t)) => (d, t.trim_end_matches('Z')),
        None => (s, "00:00:00"),
    };
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.split(':');
    let h: i64 = t.next()?.parse().ok()?;
    let mi: i64 = t.next().unwrap_or("0").parse().ok()?;
    let sec: f64 = t.next().unwrap_or("0").parse().ok()?;
    let stamp = format!("{y:04}-{m:02}-{day:02}T{h:02}:{mi:02}:00Z");
    Some(mlsec_sign::intoto::time::parse_utc(&stamp)? as f64 + sec)
}

fn entropy(counts: impl Iterator<Item = usize>, n: f64) -> f64 {
    counts
        .filter(|&c| c > 0)
        .map(|c| {
            let p = c as f64 / n;
            -p * p.ln()
        })
        .sum()
}

/// Names a column's position in a chunk; every chunk of a split has the
/// split's header, so a miss is a reader bug reported as an error.
fn column_at(t: &Table, name: &str) -> Result<usize, String> {
    t.column(name)
        .ok_or_else(|| format!("a chunk has no column `{name}`"))
}

fn text_cells(t: &Table, c: usize) -> Vec<String> {
    (0..t.rows)
        .map(|r| t.columns[c].cell(r).unwrap_or_default())
        .collect()
}

fn time_cells(t: &Table, c: usize) -> Vec<Option<f64>> {
    (0..t.rows)
        .map(|r| t.columns[c].cell(r).and_then(|s| parse_time(&s)))
        .collect()
}

/// Strings numbered in order of first sight.
#[derive(Default)]
struct Interner {
    ids: HashMap<String, u32>,
}

impl Interner {
    fn id(&mut self, s: String) -> u32 {
        let next = self.ids.len() as u32;
        *self.ids.entry(s).or_insert(next)
    }
}

/// One feature of the target-leakage sample: numbers while every chunk so
/// far typed the column as numbers, else categories.
enum SampledValues {
    Numeric(Vec<f64>),
    Categorical { ids: Vec<u32>, names: Interner },
}

struct SampledFeature {
    name: String,
    values: SampledValues,
}

impl SampledFeature {
    /// Puts the chunk's `row` into sample slot `slot` (a new slot when it
    /// equals the sample's length).
    fn put(&mut self, col: &Column, row: usize, slot: usize) {
        fn place<T>(v: &mut Vec<T>, slot: usize, x: T) {
            if slot == v.len() {
                v.push(x);
            } else {
                v[slot] = x;
            }
        }
        let numeric = match &col.data {
            ColumnData::Float(v) => Some(v[row].unwrap_or(f64::NAN)),
            ColumnData::Int(v) => Some(v[row].map_or(f64::NAN, |x| x as f64)),
            _ => None,
        };
        if let (Some(x), SampledValues::Numeric(v)) = (numeric, &mut self.values) {
            return place(v, slot, x);
        }
        if let SampledValues::Numeric(v) = &self.values {
            // Text in a column that was numbers so far: as in a whole file
            // with that text, the column is categories.
            let mut names = Interner::default();
            let ids = v
                .iter()
                .map(|&x| {
                    names.id(if x.is_nan() {
                        String::new()
                    } else {
                        canonical_number(x)
                    })
                })
                .collect();
            self.values = SampledValues::Categorical { ids, names };
        }
        if let SampledValues::Categorical { ids, names } = &mut self.values {
            let id = names.id(col.cell(row).unwrap_or_default());
            place(ids, slot, id);
        }
    }

    /// Drops the names no sampled row holds any more, so that a column of
    /// distinct values (an id) keeps memory in proportion to the sample.
    fn compact(&mut self, limit: usize) {
        let SampledValues::Categorical { ids, names } = &mut self.values else {
            return;
        };
        if names.ids.len() <= limit {
            return;
        }
        let mut by_id: Vec<Option<String>> = vec![None; names.ids.len()];
        for (s, i) in names.ids.drain() {
            by_id[i as usize] = Some(s);
        }
        let mut renumbered = HashMap::new();
        for id in ids.iter_mut() {
            let next = names.ids.len() as u32;
            *id = *renumbered.entry(*id).or_insert_with(|| {
                let s = by_id[*id as usize].take().unwrap_or_default();
                names.ids.insert(s, next);
                next
            });
        }
    }
}

/// A uniform sample of training rows (reservoir sampling, seeded) with
/// their labels and features: the whole split when it has at most `cap`
/// rows.
struct LeakageSample {
    cap: usize,
    seen: usize,
    rng: rand_chacha::ChaCha8Rng,
    label: String,
    labels: Vec<u32>,
    classes: Interner,
    features: Vec<SampledFeature>,
}

impl LeakageSample {
    fn add(&mut self, t: &Table) -> Result<(), String> {
        use rand_core::RngCore;
        let mut slots = Vec::with_capacity(t.rows.min(self.cap));
        for row in 0..t.rows {
            let n = self.seen + row;
            if n < self.cap {
                slots.push((row, n));
            } else {
                let j = ((self.rng.next_u64() as u128 * (n as u128 + 1)) >> 64) as usize;
                if j < self.cap {
                    slots.push((row, j));
                }
            }
        }
        self.seen += t.rows;
        let lc = &t.columns[column_at(t, &self.label)?];
        for &(row, slot) in &slots {
            let class = self.classes.id(lc.cell(row).unwrap_or_default());
            if slot == self.labels.len() {
                self.labels.push(class);
            } else {
                self.labels[slot] = class;
            }
        }
        for f in &mut self.features {
            let col = &t.columns[column_at(t, &f.name)?];
            for &(row, slot) in &slots {
                f.put(col, row, slot);
            }
            f.compact(2 * self.cap + 1024);
        }
        Ok(())
    }

    /// Features that alone predict the label: (name, measure, score).
    fn screen(&self, o: &AuditOptions) -> Vec<(String, &'static str, f64)> {
        let n = self.labels.len();
        let mut class_counts = vec![0usize; self.classes.ids.len()];
        for &l in &self.labels {
            class_counts[l as usize] += 1;
        }
        let classes: Vec<u32> = (0..class_counts.len() as u32)
            .filter(|&k| class_counts[k as usize] > 0)
            .collect();
        let h_label = entropy(class_counts.iter().copied(), n as f64);
        let mut out = Vec::new();
        for f in &self.features {
            let (measure, score, limit) = match &f.values {
                SampledValues::Numeric(values) if classes.len() >= 2 => {
                    // The best one-vs-rest separation, in either direction.
                    let best = classes
                        .iter()
                        .map(|&k| {
                            let pos: Vec<bool> = self.labels.iter().map(|&l| l == k).collect();
                            let a = crate::stats::iforest::roc_auc(values, &pos);
                            if a.is_nan() {
                                0.5
                            } else {
                                a.max(1.0 - a)
                            }
                        })
                        .fold(0.5, f64::max);
                    ("AUC", best, o.auc_threshold)
                }
                SampledValues::Numeric(_) => continue,
                SampledValues::Categorical { ids, .. } => {
                    if h_label <= 0.0 {
                        continue;
                    }
                    let mut joint: HashMap<(u32, u32), usize> = HashMap::new();
                    let mut values: HashMap<u32, usize> = HashMap::new();
                    for (&v, &l) in ids.iter().zip(&self.labels) {
                        *values.entry(v).or_default() += 1;
                        *joint.entry((v, l)).or_default() += 1;
                    }
                    // A column with a distinct value per row (an id) says nothing general.
                    if values.len() as f64 > 0.5 * n as f64 {
                        continue;
                    }
                    let h_value = entropy(values.values().copied(), n as f64);
                    let h_joint = entropy(joint.values().copied(), n as f64);
                    (
                        "NMI",
                        (h_value + h_label - h_joint) / h_label,
                        o.nmi_threshold,
                    )
                }
            };
            if score >= limit {
                out.push((f.name.clone(), measure, score));
            }
        }
        out
    }
}

/// One block of the test split, kept while the training split streams past.
struct TestBlock {
    /// Test rows in the blocks before this one.
    first: usize,
    rows: usize,
    hashes: Vec<RowHash>,
    /// The first training row with each test row's hash.
    first_train_row: HashMap<RowHash, Option<usize>>,
    texts: Option<minhash::TextIndex>,
}

impl TestBlock {
    fn new(first: usize, o: &AuditOptions) -> TestBlock {
        TestBlock {
            first,
            rows: 0,
            hashes: Vec::new(),
            first_train_row: HashMap::new(),
            texts: o.text.as_ref().map(|_| minhash::TextIndex::new(&o.minhash)),
        }
    }

    fn held_bytes(&self) -> usize {
        use std::mem::size_of;
        // A map slot: key, value and one control byte.
        let slot = size_of::<RowHash>() + size_of::<Option<usize>>() + 1;
        self.hashes.capacity() * size_of::<RowHash>()
            + self.first_train_row.capacity() * slot
            + self
                .texts
                .as_ref()
                .map_or(0, minhash::TextIndex::held_bytes)
    }
}

/// One read of the training split, against one test block.
struct TrainingPass {
    /// The last pass also runs the checks of the training split alone
    /// (temporal bleed, target leakage), once the whole test split is
    /// known.
    last: bool,
    /// The cut for temporal bleed (the split time, or the earliest test
    /// row), in the last pass.
    cut: Option<f64>,
    rows: usize,
}

/// A leakage audit fed in chunks: the test split's chunks first, then the
/// training split's. Memory holds the test split's compact state (a
/// 32-byte hash per row, its texts' shingles and LSH band keys), one
/// training chunk, and the target-leakage sample — never the training
/// split whole, so it may be larger than memory.
///
/// When the test split's state is too large as well, it is audited in
/// blocks: add a block's chunks, call [`SplitAuditor::start_training_pass`]
/// (`last` for the final block), stream the whole training split, and
/// call [`SplitAuditor::next_test_block`] before the next block's chunks.
/// [`audit_in_blocks`] does this within a byte budget. The result is the
/// one-block audit's.
pub struct SplitAuditor<'o> {
    o: &'o AuditOptions,
    train_name: String,
    test_name: String,
    shared: Vec<String>,
    block: TestBlock,
    /// The earliest time in the test rows seen so far, every block.
    earliest: Option<f64>,
    pass: Option<TrainingPass>,
    /// The training split's length, once a pass has read it whole.
    train_rows: Option<usize>,
    exact: Vec<(usize, usize)>,
    near: Vec<(usize, usize, f64)>,
    newer: Vec<usize>,
    sample: Option<LeakageSample>,
}

impl<'o> SplitAuditor<'o> {
    /// Checks the options against both splits' column names before any
    /// row is read.
    pub fn new(
        train_name: &str,
        train_columns: &[String],
        test_name: &str,
        test_columns: &[String],
        o: &'o AuditOptions,
    ) -> Result<SplitAuditor<'o>, String> {
        let skip = |name: &str| {
            o.ignore.iter().any(|i| i == name)
                || Some(name) == o.label.as_deref()
                || Some(name) == o.time.as_deref()
        };
        let shared: Vec<String> = train_columns
            .iter()
            .filter(|c| !skip(c) && test_columns.contains(c))
            .cloned()
            .collect();
        if shared.is_empty() {
            return Err("train and test share no column to compare".into());
        }
        let has = |columns: &[String], name: &str| columns.iter().any(|c| c == name);
        for col in [&o.text, &o.time].into_iter().flatten() {
            for (split, columns) in [(train_name, train_columns), (test_name, test_columns)] {
                if !has(columns, col) {
                    return Err(format!("{split} has no column `{col}`"));
                }
            }
        }
        if let Some(s) = &o.split_time {
            parse_time(s)
                .ok_or_else(|| format!("--split-time `{s}` is not a date, date-time or number"))?;
        }
        let sample = match &o.label {
            Some(label) if !has(train_columns, label) => {
                return Err(format!("{train_name} has no label column `{label}`"))
            }
            Some(label) => Some(LeakageSample {
                cap: o.screen_rows.max(1),
                seen: 0,
                rng: rand_core::SeedableRng::seed_from_u64(o.seed),
                label: label.clone(),
                labels: Vec::new(),
                classes: Interner::default(),
                features: train_columns
                    .iter()
                    .filter(|c| *c != label && !o.ignore.contains(c))
                    .map(|c| SampledFeature {
                        name: c.clone(),
                        values: SampledValues::Numeric(Vec::new()),
                    })
                    .collect(),
            }),
            None => None,
        };
        Ok(SplitAuditor {
            o,
            train_name: train_name.to_string(),
            test_name: test_name.to_string(),
            shared,
            block: TestBlock::new(0, o),
            earliest: None,
            pass: None,
            train_rows: None,
            exact: Vec::new(),
            near: Vec::new(),
            newer: Vec::new(),
            sample,
        })
    }

    fn shared_at(&self, t: &Table) -> Result<Vec<usize>, String> {
        self.shared.iter().map(|n| column_at(t, n)).collect()
    }

    /// The next chunk of the test split, into the current block.
    pub fn add_test(&mut self, t: &Table) -> Result<(), String> {
        if self.pass.is_some() {
            return Err("test chunks must come before training chunks".into());
        }
        let hashes = row_hashes(t, &self.shared_at(t)?);
        let block = &mut self.block;
        for h in &hashes {
            block.first_train_row.entry(*h).or_insert(None);
        }
        block.hashes.extend(hashes);
        if let (Some(index), Some(col)) = (&mut block.texts, &self.o.text) {
            index.add(&text_cells(t, column_at(t, col)?));
        }
        if let Some(col) = &self.o.time {
            self.earliest = time_cells(t, column_at(t, col)?)
                .into_iter()
                .flatten()
                .chain(self.earliest)
                .reduce(f64::min);
        }
        block.rows += t.rows;
        Ok(())
    }

    /// Bytes the current test block holds (row hashes, their map, texts'
    /// shingles and band keys).
    pub fn test_block_bytes(&self) -> usize {
        self.block.held_bytes()
    }

    /// Test rows in the current block.
    pub fn test_block_rows(&self) -> usize {
        self.block.rows
    }

    /// Ends the current test block's chunks: the training split streams
    /// next. `last` says no test block follows, so this pass also runs the
    /// checks of the training split alone. Without this call, the first
    /// training chunk starts the last pass.
    pub fn start_training_pass(&mut self, last: bool) -> Result<(), String> {
        if self.pass.is_some() {
            return Err("a training pass has already started".into());
        }
        if let Some(index) = &mut self.block.texts {
            index.seal();
        }
        let cut = match (&self.o.split_time, last) {
            (_, false) => None,
            (Some(s), true) => parse_time(s),
            (None, true) => self.earliest,
        };
        self.pass = Some(TrainingPass { last, cut, rows: 0 });
        Ok(())
    }

    /// The next chunk of the training split.
    pub fn add_train(&mut self, t: &Table) -> Result<(), String> {
        if self.pass.is_none() {
            self.start_training_pass(true)?;
        }
        let shared = self.shared_at(t)?;
        let Some(pass) = &mut self.pass else {
            return Err("no training pass".into());
        };
        let first = pass.rows;
        let block = &mut self.block;
        // 1. Exact copies: the first training row with each test row's hash.
        for (r, h) in row_hashes(t, &shared).into_iter().enumerate() {
            if let Some(slot @ None) = block.first_train_row.get_mut(&h) {
                *slot = Some(first + r);
            }
        }
        // 2. Near-duplicate texts.
        if let (Some(index), Some(col)) = (&block.texts, &self.o.text) {
            let found = index.matches(&text_cells(t, column_at(t, col)?));
            self.near.extend(
                found
                    .into_iter()
                    .map(|(i, j, s)| (first + i, block.first + j, s)),
            );
        }
        if pass.last {
            // 3. Temporal bleed.
            if let (Some(cut), Some(col)) = (pass.cut, &self.o.time) {
                let times = time_cells(t, column_at(t, col)?);
                self.newer.extend(
                    times
                        .iter()
                        .enumerate()
                        .filter(|(_, x)| x.is_some_and(|x| x > cut))
                        .map(|(r, _)| first + r),
                );
            }
            // 4. The sample for target leakage.
            if let Some(sample) = &mut self.sample {
                sample.add(t)?;
            }
        }
        pass.rows += t.rows;
        Ok(())
    }

    /// Ends a training pass: keeps the block's exact copies, and checks
    /// that every pass read the same training split.
    fn end_pass(&mut self) -> Result<(), String> {
        let rows = self.pass.take().map_or(0, |p| p.rows);
        match self.train_rows {
            Some(before) if before != rows => {
                return Err(format!(
                "{} changed while it was audited: {before} rows in one read, {rows} in the next",
                self.train_name
            ))
            }
            _ => self.train_rows = Some(rows),
        }
        let block = &self.block;
        for (s, h) in block.hashes.iter().enumerate() {
            if let Some(Some(t)) = block.first_train_row.get(h) {
                self.exact.push((*t, block.first + s));
            }
        }
        Ok(())
    }

    /// Ends the current test block once the training split has streamed
    /// past it, freeing its state for the next block's chunks.
    pub fn next_test_block(&mut self) -> Result<(), String> {
        match &self.pass {
            Some(p) if !p.last => {}
            Some(_) => return Err("the last test block has been audited".into()),
            None => return Err("the training split has not streamed past this block".into()),
        }
        self.end_pass()?;
        self.block = TestBlock::new(self.block.first + self.block.rows, self.o);
        Ok(())
    }

    /// The audit's results and findings: after the last block's training
    /// pass (or, with no training chunk, a pass over an empty split).
    pub fn finish(mut self) -> Result<Audit, String> {
        match &self.pass {
            Some(p) if !p.last => return Err("the audit ended before its last test block".into()),
            Some(_) => {}
            None => self.start_training_pass(true)?,
        }
        self.end_pass()?;
        let (train_name, test_name, o) = (&self.train_name, &self.test_name, self.o);
        let mut out = Audit::empty(
            self.train_rows.unwrap_or(0),
            self.block.first + self.block.rows,
        );
        out.exact_duplicates = std::mem::take(&mut self.exact);
        if let Some(&(t, s)) = out.exact_duplicates.first() {
            let n = out.exact_duplicates.len();
            out.findings.push(
                Finding::new(
                    &SPLIT_DUPLICATES,
                    Location::file(test_name.clone()),
                    format!(
                        "{n} of {} test rows ({:.1} %) are in the training split (first: test row {s} = {train_name} row {t})",
                        out.test_rows,
                        100.0 * n as f64 / out.test_rows.max(1) as f64
                    ),
                )
                .with_evidence("pairs", out.exact_duplicates.iter().take(1000).map(|&(a, b)| vec![a, b]).collect::<Vec<_>>()),
            );
        }
        if let Some(col) = &o.text {
            let exact: std::collections::HashSet<usize> =
                out.exact_duplicates.iter().map(|&(_, s)| s).collect();
            let mut pairs = std::mem::take(&mut self.near);
            pairs.retain(|&(_, s, _)| !exact.contains(&s));
            pairs.sort_by_key(|p| (p.1, p.0));
            if let Some(&(t, s, j)) = pairs.first() {
                let rows: std::collections::BTreeSet<usize> = pairs.iter().map(|p| p.1).collect();
                out.findings.push(
                    Finding::new(
                        &SPLIT_DUPLICATES,
                        Location::file(test_name.clone()),
                        format!(
                            "{} test texts in `{col}` are near-duplicates of training texts (Jaccard ≥ {}; first: test row {s} ~ train row {t}, {j:.2})",
                            rows.len(),
                            o.minhash.threshold,
                        ),
                    )
                    .with_severity(Severity::Medium)
                    .with_evidence("pairs", pairs.iter().take(1000).map(|p| serde_json::json!([p.0, p.1, p.2])).collect::<Vec<_>>()),
                );
            }
            out.near_duplicates = pairs;
        }
        out.newer_training_rows = std::mem::take(&mut self.newer);
        if !out.newer_training_rows.is_empty() {
            let what = if o.split_time.is_some() {
                "the split time"
            } else {
                "the earliest test row"
            };
            out.findings.push(
                Finding::new(
                    &TEMPORAL_BLEED,
                    Location::file(train_name.clone()),
                    format!(
                        "{} training rows are newer than {what}",
                        out.newer_training_rows.len()
                    ),
                )
                .with_evidence(
                    "rows",
                    out.newer_training_rows
                        .iter()
                        .take(1000)
                        .copied()
                        .collect::<Vec<_>>(),
                ),
            );
        }
        if let (Some(sample), Some(label)) = (&self.sample, &o.label) {
            out.screened_rows = Some(sample.labels.len());
            let sampled = if sample.seen > sample.labels.len() {
                format!(
                    ", on a uniform sample of {} of {} rows",
                    sample.labels.len(),
                    sample.seen
                )
            } else {
                String::new()
            };
            for (name, measure, score) in sample.screen(o) {
                out.findings.push(
                    Finding::new(
                        &TARGET_LEAKAGE,
                        Location::file(train_name.clone()),
                        format!(
                            "`{name}` alone predicts `{label}` ({measure} {score:.3}{sampled})"
                        ),
                    )
                    .with_evidence("measure", measure)
                    .with_evidence("score", score),
                );
                out.leaking_features.push((name, measure.into(), score));
            }
        }
        Ok(out)
    }
}

/// Runs the audit on two splits in memory.
pub fn audit(
    train: &Table,
    test: &Table,
    train_name: &str,
    test_name: &str,
    o: &AuditOptions,
) -> Result<Audit, String> {
    let names = |t: &Table| t.columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
    let mut auditor = SplitAuditor::new(train_name, &names(train), test_name, &names(test), o)?;
    auditor.add_test(test)?;
    auditor.add_train(train)?;
    auditor.finish()
}

/// Where [`audit_in_blocks`] is, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// Reading test block `block` (from 0).
    Test { block: usize },
    /// Streaming the training split past test block `block`; `last` when
    /// no block follows.
    Train { block: usize, last: bool },
}

/// Runs `auditor` with the test split held in blocks of about
/// `block_bytes` (a block is closed at the first chunk boundary past the
/// budget, and always holds at least one chunk). The training split is
/// `train` for the first block and `reopen_train()` for each later one;
/// `on_chunk` sees every chunk's reader after the chunk is audited. The
/// result is the audit of the whole test split in one block.
pub fn audit_in_blocks<I, E>(
    mut auditor: SplitAuditor<'_>,
    mut test: I,
    train: I,
    mut reopen_train: impl FnMut() -> Result<I, E>,
    block_bytes: usize,
    mut on_chunk: impl FnMut(Reading, &I),
) -> Result<Audit, String>
where
    I: Iterator<Item = Result<Table, E>>,
    E: std::fmt::Display,
{
    let (train_name, test_name) = (auditor.train_name.clone(), auditor.test_name.clone());
    let mut train = Some(train);
    let mut next = test.next();
    let mut block = 0;
    loop {
        let mut test_rows = auditor.block.first;
        while let Some(chunk) = next {
            let chunk = chunk.map_err(|e| e.to_string())?;
            auditor
                .add_test(&chunk)
                .map_err(|e| format!("{test_name}, rows from {test_rows}: {e}"))?;
            test_rows += chunk.rows;
            on_chunk(Reading::Test { block }, &test);
            next = test.next();
            if auditor.test_block_bytes() >= block_bytes {
                break;
            }
        }
        let last = next.is_none();
        auditor.start_training_pass(last)?;
        let mut chunks = match train.take() {
            Some(first) => first,
            None => reopen_train().map_err(|e| e.to_string())?,
        };
        let mut train_rows = 0;
        while let Some(chunk) = chunks.next() {
            let chunk = chunk.map_err(|e| e.to_string())?;
            auditor
                .add_train(&chunk)
                .map_err(|e| format!("{train_name}, rows from {train_rows}: {e}"))?;
            train_rows += chunk.rows;
            on_chunk(Reading::Train { block, last }, &chunks);
        }
        if last {
            let mut audit = auditor.finish()?;
            audit.test_blocks = (block > 0).then_some(block + 1);
            return Ok(audit);
        }
        auditor.next_test_block()?;
        block += 1;
    }
}

/// The image audit: test images that are pixel-identical to a training
/// image, or near-duplicates of one (shifted, brightened, re-encoded). The
/// training split comes in chunks (see [`images::ImageChunks`]), so only
/// the test split and one chunk are held.
pub fn audit_images(
    train: impl IntoIterator<Item = Result<images::Images, String>>,
    test: &images::Images,
    train_name: &str,
    test_name: &str,
    p: &images::ImageParams,
) -> Result<Audit, String> {
    let mut out = Audit::empty(0, test.n);
    out.train_rows = image_block(train, test, 0, p, &mut out)?;
    image_findings(&mut out, train_name, test_name, p);
    Ok(out)
}

/// The image audit with the test split too given in blocks, for a test
/// split larger than memory: each block is held in turn while the whole
/// training split streams past it (`open_train` opens it again for every
/// block). A test image's match depends only on that image and the
/// training split, so the pairs are those of [`audit_images`] on the whole
/// test split.
pub fn audit_images_in_blocks<T>(
    mut open_train: impl FnMut() -> Result<T, String>,
    test_blocks: impl IntoIterator<Item = Result<images::Images, String>>,
    train_name: &str,
    test_name: &str,
    p: &images::ImageParams,
) -> Result<Audit, String>
where
    T: IntoIterator<Item = Result<images::Images, String>>,
{
    let mut out = Audit::empty(0, 0);
    let mut blocks = 0;
    for block in test_blocks {
        let block = block?;
        blocks += 1;
        let first = out.test_rows;
        out.train_rows = image_block(open_train()?, &block, first, p, &mut out)?;
        out.test_rows += block.n;
    }
    if out.test_rows == 0 {
        // No test images: the training split is still counted.
        for chunk in open_train()? {
            out.train_rows += chunk?.n;
        }
    }
    out.test_blocks = (blocks > 1).then_some(blocks);
    image_findings(&mut out, train_name, test_name, p);
    Ok(out)
}

/// Compares one block of test images (numbered from `first`) with the
/// whole training split, adding its exact and near-duplicate pairs to
/// `out`; returns the training split's length.
fn image_block(
    train: impl IntoIterator<Item = Result<images::Images, String>>,
    test: &images::Images,
    first: usize,
    p: &images::ImageParams,
    out: &mut Audit,
) -> Result<usize, String> {
    let per = test.width * test.height;
    let digest = |im: &images::Images, i: usize| -> [u8; 32] {
        let mut h = sha2::Sha256::new();
        for v in &im.pixels[i * per..(i + 1) * per] {
            h.update(v.to_le_bytes());
        }
        h.finalize().into()
    };
    // Test images by digest; each gets the first training image equal to it.
    let mut by_digest: HashMap<[u8; 32], Vec<usize>> = HashMap::with_capacity(test.n);
    for j in 0..test.n {
        by_digest.entry(digest(test, j)).or_default().push(j);
    }
    let mut exact: Vec<Option<usize>> = vec![None; test.n];
    let mut search = images::NearDuplicateSearch::new(test, p);
    for chunk in train {
        let chunk = chunk?;
        let seen = search.train_seen();
        search.add_train(&chunk)?;
        for i in 0..chunk.n {
            if let Some(js) = by_digest.get(&digest(&chunk, i)) {
                for &j in js {
                    exact[j].get_or_insert(seen + i);
                }
            }
        }
    }
    let train_rows = search.train_seen();
    out.exact_duplicates.extend(
        exact
            .iter()
            .enumerate()
            .filter_map(|(j, i)| i.map(|i| (i, first + j))),
    );
    out.near_duplicates.extend(
        search
            .finish()
            .into_iter()
            .filter(|&(_, j, _)| exact[j].is_none())
            .map(|(i, j, c)| (i, first + j, c)),
    );
    Ok(train_rows)
}

/// The image audit's findings from its pairs.
fn image_findings(out: &mut Audit, train_name: &str, test_name: &str, p: &images::ImageParams) {
    if !out.exact_duplicates.is_empty() {
        let (i, j) = out.exact_duplicates[0];
        out.findings.push(
            Finding::new(
                &SPLIT_DUPLICATES,
                Location::file(test_name.to_string()),
                format!(
                    "{} of {} test images are pixel-identical to training images (first: test {j} = {train_name} {i})",
                    out.exact_duplicates.len(),
                    out.test_rows
                ),
            )
            .with_evidence("pairs", out.exact_duplicates.iter().take(1000).map(|&(a, b)| vec![a, b]).collect::<Vec<_>>()),
        );
    }
    if let Some(&(i, j, c)) = out.near_duplicates.first() {
        out.findings.push(
            Finding::new(
                &SPLIT_DUPLICATES,
                Location::file(test_name.to_string()),
                format!(
                    "{} test images are near-duplicates of training images (correlation ≥ {} over shifts of up to {} px; first: test {j} ~ {train_name} {i}, {c:.4})",
                    out.near_duplicates.len(),
                    p.threshold,
                    p.max_shift
                ),
            )
            .with_severity(Severity::Medium)
            .with_evidence("pairs", out.near_duplicates.iter().take(1000).map(|q| serde_json::json!([q.0, q.1, q.2])).collect::<Vec<_>>()),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::TextColumn;

    fn chunk(xs: std::ops::Range<usize>, text: bool) -> Table {
        let n = xs.len();
        let x = if text {
            let mut t = TextColumn::default();
            for v in xs.clone() {
                t.push(Some(&format!("v{v}")));
            }
            ColumnData::Str(t)
        } else {
            ColumnData::Int(xs.clone().map(|v| Some(v as i64)).collect())
        };
        let labels = ColumnData::Int(xs.map(|v| Some((v % 2) as i64)).collect());
        let column = |name: &str, data| Column {
            name: name.into(),
            source_type: String::new(),
            data,
        };
        Table {
            columns: vec![column("x", x), column("label", labels)],
            rows: n,
        }
    }

    fn sample(cap: usize) -> LeakageSample {
        LeakageSample {
            cap,
            seen: 0,
            rng: rand_core::SeedableRng::seed_from_u64(7),
            label: "label".into(),
            labels: Vec::new(),
            classes: Interner::default(),
            features: vec![SampledFeature {
                name: "x".into(),
                values: SampledValues::Numeric(Vec::new()),
            }],
        }
    }

    #[test]
    fn the_reservoir_is_a_uniform_sample_of_distinct_rows() {
        let mut s = sample(500);
        for start in (0..20_000).step_by(3_000) {
            s.add(&chunk(start..(start + 3_000).min(20_000), false))
                .unwrap();
        }
        let SampledValues::Numeric(v) = &s.features[0].values else {
            panic!("x stays numeric");
        };
        assert_eq!((v.len(), s.labels.len(), s.seen), (500, 500, 20_000));
        let mut rows: Vec<usize> = v.iter().map(|&x| x as usize).collect();
        // Each sampled row keeps its own label.
        for (&x, &l) in rows.iter().zip(&s.labels) {
            assert_eq!(s.classes.ids[&(x % 2).to_string()], l);
        }
        rows.sort_unstable();
        rows.dedup();
        assert_eq!(rows.len(), 500);
        // Uniform over 0..20,000: mean 10,000 with a standard error of
        // 5,774 / √500 ≈ 258; each quarter holds about 125 rows.
        let mean = rows.iter().sum::<usize>() as f64 / 500.0;
        assert!((mean - 10_000.0).abs() < 1_100.0, "mean {mean}");
        for q in 0..4 {
            let inside = rows.iter().filter(|&&r| r / 5_000 == q).count();
            assert!((85..=165).contains(&inside), "quarter {q}: {inside}");
        }
    }

    #[test]
    fn text_after_numbers_makes_categories_and_ids_stay_bounded() {
        let mut s = sample(100);
        s.add(&chunk(0..50, false)).unwrap();
        s.add(&chunk(50..5_000, true)).unwrap();
        let SampledValues::Categorical { ids, names } = &s.features[0].values else {
            panic!("text turns the feature into categories");
        };
        assert_eq!(ids.len(), 100);
        // Every sampled row has its own value; names no row holds are dropped.
        assert!(names.ids.len() <= 2 * 100 + 1024);
        let mut distinct = ids.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 100);
    }

    #[test]
    fn numbers_match_across_column_types() {
        let text = |s: &str| {
            let mut t = TextColumn::default();
            t.push(Some(s));
            Column {
                name: "c".into(),
                source_type: String::new(),
                data: ColumnData::Str(t),
            }
        };
        let int = Column {
            name: "c".into(),
            source_type: String::new(),
            data: ColumnData::Int(vec![Some(7)]),
        };
        let float = Column {
            data: ColumnData::Float(vec![Some(7.0)]),
            ..int.clone()
        };
        for c in [text("7"), text(" 7.0 "), text("7.000"), float] {
            assert_eq!(canonical_cell(&c, 0), canonical_cell(&int, 0));
        }
        assert_eq!(canonical_cell(&text("  Seven  Days "), 0), "seven days");
        assert_ne!(canonical_cell(&text("7a"), 0), canonical_cell(&int, 0));
    }
}
