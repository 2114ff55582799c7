//! The ingestion gate: a batch of training data is checked before it may
//! join the training set — who sent it (a signed manifest from an allowed
//! source), whether it fits the schema, whether it looks like the trusted
//! reference, which rows are outliers and which labels disagree with their
//! neighbours. What fails is quarantined with its reasons, never dropped.

pub mod ledger;
pub mod manifest;
pub mod policy;
mod unique;

use crate::frame::Frame;
use crate::reference::rows as reference;
use crate::reference::{ColumnSorter, ReferenceData, ReferenceOptions};
use crate::stats::{self, IsolationForest, IsolationForestParams, KsMethod};
use crate::stream::{ChunkOptions, FrameChunks, TableChunks};
use crate::table::{ColumnData, Table};
use mlsec_core::{Finding, Location, OwaspMl, Rule, RuleDocs, Severity, Stage};
use policy::{ColumnType, Policy, UnknownColumns};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

pub static BATCH_REJECTED: Rule = Rule {
    code: "MLS-DATA-009",
    name: "batch-rejected",
    summary: "A data batch has no valid signed manifest from an allowed source.",
    default_severity: Severity::High,
    stage: Stage::Collection,
    atlas: &["AML.T0020", "AML.T0019"],
    owasp: Some(OwaspMl::Ml02DataPoisoning),
    docs: RuleDocs {
        what_it_detects: "`mlsec data gate` with sources in its policy requires a DSSE-signed manifest \
            (an in-toto statement naming the batch's SHA-256) made by an allowed source's key; a \
            missing or unsigned manifest, an unknown signer, a source that claims to be another, or a \
            batch whose digest differs from the signed one rejects the whole batch.",
        why_it_matters: "Poisoned data most easily arrives through a channel nobody authenticates: a \
            shared bucket, a scraped mirror, a vendor account taken over (AML.T0019). Without a \
            signature from a known source, nothing about the batch's origin holds.",
        example: "`batch.csv` edited after vendor-a signed its manifest: `batch SHA-256 3f1c… is not \
            the signed 9a07…`.",
    },
};

pub static SCHEMA_VIOLATION: Rule = Rule {
    code: "MLS-DATA-010",
    name: "schema-violation",
    summary: "Rows of a batch break the policy's schema: types, ranges, categories, nulls, uniqueness.",
    default_severity: Severity::Medium,
    stage: Stage::Collection,
    atlas: &["AML.T0020"],
    owasp: Some(OwaspMl::Ml02DataPoisoning),
    docs: RuleDocs {
        what_it_detects: "Each row is checked against the columns declared in the gate policy: type, \
            minimum and maximum, allowed categories, nulls and uniqueness; failing rows are \
            quarantined with every reason. Missing declared columns or undeclared columns (with \
            `unknown_columns = \"reject\"`) quarantine the whole batch.",
        why_it_matters: "Out-of-range values and impossible categories are how injected samples \
            most often show themselves, and a silently changed column breaks every model downstream.",
        example: "`amount = -40.0` in row 17: `amount: -40 < min 0`.",
    },
};

pub static LABEL_DISAGREEMENT: Rule = Rule {
    code: "MLS-DATA-011",
    name: "suspected-label-flip",
    summary: "A row's label disagrees with the labels of its nearest reference rows.",
    default_severity: Severity::Medium,
    stage: Stage::Collection,
    atlas: &["AML.T0020"],
    owasp: Some(OwaspMl::Ml02DataPoisoning),
    docs: RuleDocs {
        what_it_detects: "For every batch row, its k nearest rows of the trusted reference \
            (standardised features); when fewer than `min_agreement` of them share the row's label, \
            the row is quarantined with the majority label of its neighbours.",
        why_it_matters: "Flipping labels is the cheapest poisoning attack: the features are real, so \
            range and distribution checks pass, yet a few percent of flipped labels measurably \
            degrade or steer a model.",
        example: "Row 412 labelled `setosa` whose 10 nearest reference rows are all `virginica`: \
            `label 'setosa' agrees with 0 of 10 nearest reference rows (majority 'virginica')`.",
    },
};

pub static RULES: &[&Rule] = &[&BATCH_REJECTED, &SCHEMA_VIOLATION, &LABEL_DISAGREEMENT];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decision {
    Accepted,
    PartiallyAccepted,
    Quarantined,
    Rejected,
}

impl Decision {
    pub fn name(self) -> &'static str {
        match self {
            Decision::Accepted => "accepted",
            Decision::PartiallyAccepted => "partially-accepted",
            Decision::Quarantined => "quarantined",
            Decision::Rejected => "rejected",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct FeatureScreen {
    pub feature: String,
    pub ks: f64,
    pub pvalue: f64,
    pub psi: f64,
}

/// What the gate decided, and why.
#[derive(Debug, Serialize)]
pub struct Outcome {
    pub decision: Decision,
    pub batch_sha256: String,
    pub source: Option<String>,
    pub manifest_sha256: Option<String>,
    pub rows: usize,
    pub accepted_rows: usize,
    /// Reasons that apply to the whole batch.
    pub batch_reasons: Vec<String>,
    /// Rows quarantined for reasons of their own, and those reasons. A
    /// batch quarantined or rejected whole holds every row as well: see
    /// [`Outcome::holds`].
    pub quarantined: BTreeMap<usize, Vec<String>>,
    pub screen: Vec<FeatureScreen>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label_chi2: Option<(f64, f64)>,
    #[serde(skip)]
    pub findings: Vec<Finding>,
    /// The batch's column names.
    #[serde(skip)]
    pub columns: Vec<String>,
}

impl Outcome {
    /// Whether row `r` is held back from training.
    pub fn holds(&self, r: usize) -> bool {
        matches!(self.decision, Decision::Quarantined | Decision::Rejected)
            || self.quarantined.contains_key(&r)
    }

    /// Every reason row `r` is held for: its own, then the batch's.
    pub fn reasons(&self, r: usize) -> Vec<String> {
        let mut reasons = self.quarantined.get(&r).cloned().unwrap_or_default();
        reasons.extend(self.batch_reasons.iter().cloned());
        reasons
    }
}

pub struct GateInput<'a> {
    pub reference: &'a str,
    pub batch: &'a Path,
    pub manifest: Option<&'a Path>,
    pub policy: &'a Policy,
    /// Paths in the policy (source keys) are relative to this folder.
    pub policy_dir: &'a Path,
    /// How the batch is read: in chunks of this size, so that it may be
    /// larger than memory.
    pub chunks: ChunkOptions,
    /// How much of the reference is held in memory; past it, its columns
    /// are sorted on disk and the rows the screens sample read again.
    pub reference_options: ReferenceOptions,
}

/// The row as CSV text, for the quarantine file and the ledger.
pub fn row_text(t: &Table, row: usize) -> String {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    let cells: Vec<String> = t
        .columns
        .iter()
        .map(|c| c.cell(row).unwrap_or_default())
        .collect();
    let _ = w.write_record(&cells);
    let bytes = w.into_inner().unwrap_or_default();
    String::from_utf8_lossy(&bytes).trim_end().to_string()
}

/// Reads the batch again, chunk by chunk, handing every row to `each`
/// with its number: for writing accepted and quarantined rows after the
/// gate decided. The batch must still have the digest the gate saw.
pub fn for_each_row(
    batch: &Path,
    outcome: &Outcome,
    chunks: ChunkOptions,
    mut each: impl FnMut(usize, &Table, usize) -> Result<(), String>,
) -> Result<(), String> {
    let shown = batch.display().to_string();
    let mut row = 0;
    for chunk in TableChunks::open(batch, chunks).map_err(|e| e.to_string())? {
        let chunk = chunk.map_err(|e| e.to_string())?;
        for r in 0..chunk.rows {
            each(row + r, &chunk, r)?;
        }
        row += chunk.rows;
    }
    let (now, _) = mlsec_core::digest::sha256_file(batch).map_err(|e| format!("{shown}: {e}"))?;
    if now != outcome.batch_sha256 || row != outcome.rows {
        return Err(format!(
            "{shown} changed while it was gated (SHA-256 {} then {now})",
            outcome.batch_sha256
        ));
    }
    Ok(())
}

/// A per-row reason and the check it came from, in the order checks run,
/// so that each row lists its reasons schema first whatever chunk it is in.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Check {
    Schema,
    Outlier,
    Label,
}

/// Runs the gate on one batch. The batch is read in chunks: memory holds
/// a digest of each value of a `unique` column and the reasons of held
/// rows, never the batch's table whole. The reference, and the batch's
/// numeric features (for the KS and PSI screen), are held while each fits
/// `reference_options`; past it they are sorted on disk, and the reference
/// is read again for the rows the row screens sample.
pub fn run(input: &GateInput) -> Result<Outcome, String> {
    let policy = input.policy;
    // Streamed: the batch is hashed without holding it.
    let (batch_sha256, _) = mlsec_core::digest::sha256_file(input.batch)
        .map_err(|e| format!("{}: {e}", input.batch.display()))?;
    let shown = input.batch.display().to_string();
    let mut chunks = TableChunks::open(input.batch, input.chunks).map_err(|e| e.to_string())?;
    let mut out = Outcome {
        decision: Decision::Accepted,
        batch_sha256: batch_sha256.clone(),
        source: None,
        manifest_sha256: None,
        rows: 0,
        accepted_rows: 0,
        batch_reasons: Vec::new(),
        quarantined: BTreeMap::new(),
        screen: Vec::new(),
        label_chi2: None,
        findings: Vec::new(),
        columns: chunks.names().to_vec(),
    };
    // 1. Provenance: a manifest signed by an allowed source, for this batch.
    if !policy.sources.is_empty() {
        if let Err(reason) = verify_provenance(input, &batch_sha256, &mut out) {
            out.decision = Decision::Rejected;
            out.findings.push(
                Finding::new(
                    &BATCH_REJECTED,
                    Location::file(shown.clone()),
                    reason.clone(),
                )
                .with_evidence("batch_sha256", batch_sha256.clone()),
            );
            out.batch_reasons.push(reason);
            // Every row is held; only the count is read.
            for chunk in chunks {
                out.rows += chunk.map_err(|e| e.to_string())?.rows;
            }
            return Ok(out);
        }
    }
    let reopen = || {
        FrameChunks::open(
            input.reference,
            policy.label.as_deref(),
            ChunkOptions::default(),
        )
        .map(FrameChunks::keeping_labels)
    };
    let reference = crate::reference::read(
        reopen().map_err(|e| e.to_string())?,
        &input.reference_options,
    )
    .map_err(|e| e.to_string())?;
    if let ReferenceData::Sorted(_) = &reference {
        if input.reference == "-" && (policy.outliers.is_some() || policy.labels.is_some()) {
            return Err("a reference over its memory budget is read again for the row screens \
                 ([outliers], [labels]), which standard input cannot be: give a file or more memory"
                .into());
        }
    }
    let mut schema = SchemaCheck::new(policy, chunks.names(), &input.reference_options);
    let mut features: Option<BatchFeatures> = None;
    let mut rows_screen: Option<RowScreens> = None;
    let mut reasons: Vec<(usize, Check, String)> = Vec::new();
    for chunk in &mut chunks {
        let chunk = chunk.map_err(|e| e.to_string())?;
        let first = out.rows;
        // 2. Schema.
        schema.check(&chunk, first)?;
        let frame = Frame::from_table(&chunk, policy.label.as_deref())
            .map_err(|e| e.at(&shown).to_string())?;
        let features =
            features.get_or_insert_with(|| BatchFeatures::new(&frame, &input.reference_options));
        features.add(&frame).map_err(|e| e.to_string())?;
        // 4. Row outliers and 5. label disagreement, a chunk at a time.
        if rows_screen.is_none() {
            rows_screen = Some(RowScreens::new(
                policy,
                &reference,
                &frame,
                &reopen,
                &input.reference_options,
            )?);
        }
        if let Some(s) = &rows_screen {
            s.check(&frame, first, &mut reasons)?;
        }
        out.rows += chunk.rows;
    }
    schema.finish(&shown, &mut reasons, &mut out)?;
    // 3. Distribution screen against the reference.
    if let Some(features) = features {
        let mut reference = reference;
        screen(policy, &mut reference, features, &shown, &mut out)?;
    }
    if let Some(s) = &rows_screen {
        s.report(&reasons, out.rows, &shown, &mut out);
    }
    reasons.sort_by_key(|&(r, check, _)| (r, check));
    for (r, _, reason) in reasons {
        out.quarantined.entry(r).or_default().push(reason);
    }
    out.accepted_rows = if out.decision == Decision::Quarantined {
        0
    } else {
        out.rows - out.quarantined.len()
    };
    if out.decision == Decision::Accepted && !out.quarantined.is_empty() {
        out.decision = if out.accepted_rows == 0 {
            Decision::Quarantined
        } else {
            Decision::PartiallyAccepted
        };
    }
    Ok(out)
}

/// Checks the manifest; the reason the batch is rejected otherwise.
fn verify_provenance(
    input: &GateInput,
    batch_sha256: &str,
    out: &mut Outcome,
) -> Result<(), String> {
    let policy = input.policy;
    let path = input
        .manifest
        .ok_or("no manifest given (--manifest); the policy lists sources")?;
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.len() > manifest::MAX_MANIFEST_BYTES {
        return Err(format!("{}: larger than any manifest", path.display()));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    out.manifest_sha256 = Some(mlsec_core::digest::sha256_hex(&bytes));
    let mut keys = Vec::new();
    for s in &policy.sources {
        let p = input.policy_dir.join(&s.key);
        let pem = std::fs::read_to_string(&p)
            .map_err(|e| format!("source {}: {}: {e}", s.name, p.display()))?;
        let key =
            mlsec_sign::PublicKey::from_pem(&pem).map_err(|e| format!("source {}: {e}", s.name))?;
        keys.push((s.name.clone(), key));
    }
    let m = manifest::verify(&bytes, &keys)?;
    if m.sha256 != batch_sha256 {
        return Err(format!(
            "batch SHA-256 {batch_sha256} is not the signed {}",
            m.sha256
        ));
    }
    out.source = Some(m.source);
    Ok(())
}

/// The policy's schema, checked chunk by chunk.
struct SchemaCheck<'p> {
    policy: &'p Policy,
    batch_level: Vec<String>,
    /// Columns whose values are not of the declared type in some chunk:
    /// a batch-level violation, and their per-row checks are dropped.
    mistyped: Vec<String>,
    /// Values seen so far in each `unique` column, with their first row:
    /// 16 bytes of digest per distinct value whatever its length, in
    /// memory while they fit `unique_budget`, on disk past it.
    seen: HashMap<String, unique::UniqueValues>,
    unique_budget: usize,
    spill_dir: Option<std::path::PathBuf>,
    /// Per-row failures: (row, reason, rule key, column).
    failures: Vec<(usize, String, String, String)>,
}

impl<'p> SchemaCheck<'p> {
    /// `options` bounds what the `unique` columns hold together.
    fn new(policy: &'p Policy, names: &[String], options: &ReferenceOptions) -> SchemaCheck<'p> {
        let schema = &policy.schema;
        let mut batch_level = Vec::new();
        if !schema.columns.is_empty() {
            for name in schema.columns.keys() {
                if !names.contains(name) {
                    batch_level.push(format!("declared column `{name}` is missing"));
                }
            }
            if schema.unknown_columns == UnknownColumns::Reject {
                for name in names {
                    if !schema.columns.contains_key(name) && Some(name) != policy.label.as_ref() {
                        batch_level.push(format!("column `{name}` is not declared in the schema"));
                    }
                }
            }
        }
        SchemaCheck {
            policy,
            batch_level,
            mistyped: Vec::new(),
            seen: HashMap::new(),
            unique_budget: usize::try_from(options.memory_bytes).unwrap_or(usize::MAX)
                / policy
                    .schema
                    .columns
                    .values()
                    .filter(|c| c.unique)
                    .count()
                    .max(1),
            spill_dir: options.spill_dir.clone(),
            failures: Vec::new(),
        }
    }

    fn check(&mut self, t: &Table, first: usize) -> Result<(), String> {
        for (name, rule) in &self.policy.schema.columns {
            let Some(ci) = t.column(name) else { continue };
            let col = &t.columns[ci];
            let type_ok = matches!(
                (rule.kind, &col.data),
                (ColumnType::Float, ColumnData::Float(_) | ColumnData::Int(_))
                    | (ColumnType::Int, ColumnData::Int(_))
                    | (ColumnType::Bool, ColumnData::Bool(_))
                    | (ColumnType::String, _)
            );
            if !type_ok {
                if !self.mistyped.contains(name) {
                    self.mistyped.push(name.clone());
                    self.batch_level.push(
                        format!(
                            "column `{name}` holds {} values, the schema says {:?}",
                            col.kind(),
                            rule.kind
                        )
                        .to_lowercase(),
                    );
                }
                continue;
            }
            if self.mistyped.contains(name) {
                continue;
            }
            let (budget, dir) = (self.unique_budget, self.spill_dir.as_deref());
            let seen = self
                .seen
                .entry(name.clone())
                .or_insert_with(|| unique::UniqueValues::new(budget, dir));
            for r in 0..t.rows {
                let row = first + r;
                let mut fail = |check: &str, why: String| {
                    self.failures.push((
                        row,
                        format!("{name}: {why}"),
                        format!("{name} {check}"),
                        name.clone(),
                    ))
                };
                let Some(text) = col.cell(r) else {
                    if !rule.nullable {
                        fail("nullable", "null not allowed".into());
                    }
                    continue;
                };
                let number = match &col.data {
                    ColumnData::Float(v) => v[r],
                    ColumnData::Int(v) => v[r].map(|x| x as f64),
                    _ => None,
                };
                if let Some(x) = number {
                    if x.is_nan() {
                        fail("not-nan", "NaN".into());
                    }
                    if let Some(lo) = rule.min {
                        if x < lo {
                            fail("min", format!("{x} < min {lo}"));
                        }
                    }
                    if let Some(hi) = rule.max {
                        if x > hi {
                            fail("max", format!("{x} > max {hi}"));
                        }
                    }
                }
                if let Some(allowed) = &rule.allowed {
                    if !allowed.contains(&text) {
                        fail("allowed", format!("`{text}` is not an allowed value"));
                    }
                }
                if rule.unique {
                    if let Some(first) = seen.check(&text, row)? {
                        fail("unique", unique_reason(&text, first));
                    }
                }
            }
        }
        Ok(())
    }

    fn finish(
        mut self,
        shown: &str,
        reasons: &mut Vec<(usize, Check, String)>,
        out: &mut Outcome,
    ) -> Result<(), String> {
        // Repeats found on disk, then every failure in the order the
        // in-memory check gives: by row, then by column (the policy's
        // order), each column's `unique` last.
        for (name, seen) in std::mem::take(&mut self.seen) {
            for (row, text, first) in seen.finish()? {
                self.failures.push((
                    row,
                    format!("{name}: {}", unique_reason(&text, first)),
                    format!("{name} unique"),
                    name.clone(),
                ));
            }
        }
        let order: HashMap<&String, usize> = self
            .policy
            .schema
            .columns
            .keys()
            .enumerate()
            .map(|(i, name)| (name, i))
            .collect();
        self.failures
            .sort_by_key(|(row, _, _, column)| (*row, order.get(column).copied()));
        let mut per_rule: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (r, reason, key, column) in self.failures {
            if self.mistyped.contains(&column) {
                continue;
            }
            per_rule.entry(key).or_default().push(r);
            reasons.push((r, Check::Schema, reason));
        }
        for (key, mut rows) in per_rule {
            rows.sort_unstable();
            out.findings.push(
                Finding::new(
                    &SCHEMA_VIOLATION,
                    Location::file(shown.to_string()),
                    format!("{} rows fail `{key}` (first: row {})", rows.len(), rows[0]),
                )
                .with_evidence("rows", rows.iter().take(1000).copied().collect::<Vec<_>>()),
            );
        }
        if !self.batch_level.is_empty() {
            out.decision = Decision::Quarantined;
            for reason in &self.batch_level {
                out.findings.push(Finding::new(
                    &SCHEMA_VIOLATION,
                    Location::file(shown.to_string()),
                    reason.clone(),
                ));
            }
            out.batch_reasons.extend(self.batch_level);
        }
        Ok(())
    }
}

fn unique_reason(text: &str, first: usize) -> String {
    format!("`{text}` repeats row {first}")
}

/// The batch's numeric features and label counts, gathered chunk by chunk
/// for the distribution screen. The first chunk names the features; a
/// feature a later chunk holds as text counts as missing there (the
/// schema, if it declares the column, reports the type). The numbers are
/// held while they fit the reference's budget and sorted on disk past it.
struct BatchFeatures {
    names: Vec<String>,
    columns: ColumnSorter,
    labels: Option<BTreeMap<String, f64>>,
}

impl BatchFeatures {
    fn new(first: &Frame, options: &ReferenceOptions) -> BatchFeatures {
        BatchFeatures {
            names: first.names.clone(),
            columns: ColumnSorter::new(first.names.len(), options),
            labels: first.labels.as_ref().map(|_| BTreeMap::new()),
        }
    }

    fn add(&mut self, f: &Frame) -> crate::error::Result<()> {
        for (k, name) in self.names.iter().enumerate() {
            // A missing feature's values would be gaps, which KS and PSI
            // leave out.
            if let Some(values) = f.feature(name) {
                self.columns.push(k, values)?;
            }
        }
        if let (Some(counts), Some(labels)) = (&mut self.labels, &f.labels) {
            for l in labels {
                *counts.entry(l.clone()).or_default() += 1.0;
            }
        }
        Ok(())
    }
}

fn screen(
    policy: &Policy,
    reference: &mut ReferenceData,
    batch: BatchFeatures,
    shown: &str,
    out: &mut Outcome,
) -> Result<(), String> {
    let d = &policy.distribution;
    let mut reasons = Vec::new();
    let names = match &*reference {
        ReferenceData::Whole(f) => &f.names,
        ReferenceData::Sorted(s) => &s.names,
    };
    let shared: Vec<(String, usize, usize)> = names
        .iter()
        .enumerate()
        .filter_map(|(k, name)| {
            let i = batch.names.iter().position(|n| n == name)?;
            Some((name.clone(), k, i))
        })
        .collect();
    let sorted_batch = batch.columns.finish().map_err(|e| e.to_string())?;
    // A batch on disk is compared with sorted reference columns, copying
    // neither: a held reference is sorted in place for it (the row
    // screens, which need its rows, are done by now).
    if sorted_batch.spilled() {
        if let ReferenceData::Whole(f) = reference {
            let compared: Vec<usize> = shared.iter().map(|&(_, k, _)| k).collect();
            stats::sorted::sort_columns(&mut f.columns, &compared);
        }
    }
    let reference = &*reference;
    // The same numbers whichever pair of forms (`stats::sorted`).
    let compared = stats::on_threads(shared.len(), |range| {
        range
            .map(|i| {
                let (_, k, b) = shared[i];
                let b = sorted_batch.column(b);
                match reference {
                    ReferenceData::Whole(f) if sorted_batch.spilled() => {
                        stats::sorted::compare_both_sorted(&f.columns[k], b, KsMethod::Auto, 10)
                    }
                    ReferenceData::Whole(f) => stats::compare(&f.columns[k], b, KsMethod::Auto, 10),
                    ReferenceData::Sorted(s) => {
                        stats::sorted::compare_both_sorted(s.column(k), b, KsMethod::Auto, 10)
                    }
                }
            })
            .collect()
    });
    for ((name, _, _), c) in shared.iter().zip(compared) {
        let Some(stats::Comparison { ks, psi }) = c else {
            continue;
        };
        if ks.statistic > d.ks_max {
            reasons.push(format!(
                "{name}: KS {:.4} > {} (p = {:.3e})",
                ks.statistic, d.ks_max, ks.pvalue
            ));
        }
        if psi > d.psi_max {
            reasons.push(format!("{name}: PSI {psi:.4} > {}", d.psi_max));
        }
        out.screen.push(FeatureScreen {
            feature: name.clone(),
            ks: ks.statistic,
            pvalue: ks.pvalue,
            psi,
        });
    }
    let reference_labels: Option<BTreeMap<&str, f64>> = match reference {
        ReferenceData::Whole(f) => f.labels.as_ref().map(|labels| {
            let mut counts = BTreeMap::new();
            for l in labels {
                *counts.entry(l.as_str()).or_default() += 1.0;
            }
            counts
        }),
        ReferenceData::Sorted(s) => s
            .label_counts
            .as_ref()
            .map(|c| c.iter().map(|(l, &n)| (l.as_str(), n as f64)).collect()),
    };
    if let (Some(rl), Some(bl)) = (reference_labels, &batch.labels) {
        let mut classes: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
        for (l, n) in rl {
            classes.entry(l).or_default().0 += n;
        }
        for (l, &n) in bl {
            classes.entry(l).or_default().1 += n;
        }
        let (expected, observed): (Vec<f64>, Vec<f64>) = classes.values().copied().unzip();
        if classes.len() >= 2 {
            if let Ok((chi2, p)) = stats::chisquare(&observed, &expected) {
                out.label_chi2 = Some((chi2, p));
                if p < d.label_pvalue_min {
                    reasons.push(format!(
                        "label distribution: chi-square {chi2:.2}, p = {p:.3e} < {}",
                        d.label_pvalue_min
                    ));
                }
            }
        }
    }
    if !reasons.is_empty() {
        out.decision = Decision::Quarantined;
        out.findings.push(
            Finding::new(
                &crate::drift::DISTRIBUTION_DRIFT,
                Location::file(shown.to_string()),
                format!(
                    "the batch does not look like the reference: {}",
                    reasons.join("; ")
                ),
            )
            .with_evidence("reasons", reasons.clone()),
        );
        out.batch_reasons.extend(reasons);
    }
    Ok(())
}

/// The per-row screens against the reference — Isolation Forest outliers
/// and label disagreement with the nearest reference rows — set up once
/// and run on each chunk.
struct RowScreens {
    names: Vec<String>,
    /// The reference median of each feature: what fills a gap.
    fill: Vec<f64>,
    forest: Option<(IsolationForest, f64)>,
    neighbours: Option<LabelNeighbours>,
}

impl RowScreens {
    fn new(
        policy: &Policy,
        reference: &ReferenceData,
        first: &Frame,
        reopen: reference::Reopen,
        options: &ReferenceOptions,
    ) -> Result<RowScreens, String> {
        let (all_names, has_labels) = match reference {
            ReferenceData::Whole(f) => (&f.names, f.labels.is_some()),
            ReferenceData::Sorted(s) => (&s.names, s.label_counts.is_some()),
        };
        let (features, names): (Vec<usize>, Vec<String>) = all_names
            .iter()
            .enumerate()
            .filter(|(_, n)| first.names.contains(n))
            .map(|(k, n)| (k, n.clone()))
            .unzip();
        let mut screens = RowScreens {
            names,
            fill: Vec::new(),
            forest: None,
            neighbours: None,
        };
        if screens.names.is_empty() {
            return Ok(screens);
        }
        let params = policy.outliers.as_ref().map(|o| IsolationForestParams {
            n_estimators: o.trees,
            seed: o.seed,
            contamination: o.contamination,
            ..IsolationForestParams::default()
        });
        let labels = policy.labels.as_ref().filter(|_| has_labels);
        // Read where they lie (a reference on disk: gathered in a second
        // pass), gaps filled on the fly: the forest reads only
        // `max_samples` rows per tree, the label screen a sample.
        let rows = reference::ReferenceRows::read(
            reference,
            features,
            &reference::Wanted {
                forest: params.as_ref(),
                neighbours: labels.map(|l| l.max_reference),
            },
            reopen,
        )?;
        if let (Some(o), Some(params)) = (&policy.outliers, &params) {
            let forest = rows.fit_forest(reference, params, reopen, options)?;
            let threshold = o.threshold.unwrap_or(forest.offset);
            screens.forest = Some((forest, threshold));
        }
        if let Some(l) = labels {
            screens.neighbours = Some(LabelNeighbours::new(l, &rows));
        }
        screens.fill = rows.fill;
        Ok(screens)
    }

    fn check(
        &self,
        chunk: &Frame,
        first: usize,
        reasons: &mut Vec<(usize, Check, String)>,
    ) -> Result<(), String> {
        if self.names.is_empty() || chunk.rows == 0 {
            return Ok(());
        }
        let rows = chunk.row_major(&self.names, &self.fill);
        if let Some((forest, threshold)) = &self.forest {
            let scores = forest.score_samples(&rows)?;
            for (r, s) in scores.iter().enumerate() {
                if *s < *threshold {
                    reasons.push((
                        first + r,
                        Check::Outlier,
                        format!("outlier: Isolation Forest score {s:.4} < {threshold}"),
                    ));
                }
            }
        }
        if let (Some(n), Some(labels)) = (&self.neighbours, &chunk.labels) {
            for (r, verdict) in n.verdicts(&rows, labels).into_iter().enumerate() {
                if let Some(reason) = verdict {
                    reasons.push((first + r, Check::Label, reason));
                }
            }
        }
        Ok(())
    }

    fn report(
        &self,
        reasons: &[(usize, Check, String)],
        rows: usize,
        shown: &str,
        out: &mut Outcome,
    ) {
        let flagged = |check: Check| -> Vec<usize> {
            let mut v: Vec<usize> = reasons
                .iter()
                .filter(|e| e.1 == check)
                .map(|e| e.0)
                .collect();
            v.sort_unstable();
            v
        };
        if let Some((_, threshold)) = &self.forest {
            let rows_out = flagged(Check::Outlier);
            if !rows_out.is_empty() {
                out.findings.push(
                    Finding::new(
                        &crate::drift::OUTLIER_ROWS,
                        Location::file(shown.to_string()),
                        format!(
                            "{} of {rows} rows score below {threshold:.4}",
                            rows_out.len()
                        ),
                    )
                    .with_evidence(
                        "rows",
                        rows_out.iter().take(1000).copied().collect::<Vec<_>>(),
                    ),
                );
            }
        }
        let rows_label = flagged(Check::Label);
        if let Some(&first) = rows_label.first() {
            out.findings.push(
                Finding::new(
                    &LABEL_DISAGREEMENT,
                    Location::file(shown.to_string()),
                    format!(
                        "{} rows carry labels their nearest reference rows do not (first: row {first})",
                        rows_label.len(),
                    ),
                )
                .with_evidence("rows", rows_label.iter().take(1000).copied().collect::<Vec<_>>()),
            );
        }
    }
}

/// The label screen's neighbours: a seeded sample of the reference,
/// standardised with the reference's means and deviations.
struct LabelNeighbours {
    k: usize,
    min_agreement: f64,
    d: usize,
    mean: Vec<f64>,
    sd: Vec<f64>,
    /// Standardised sampled reference rows, row-major, and their labels.
    z: Vec<f64>,
    labels: Vec<String>,
}

impl LabelNeighbours {
    fn new(l: &policy::Labels, rows: &reference::ReferenceRows) -> LabelNeighbours {
        let d = rows.fill.len();
        let (mean, sd) = rows
            .moments
            .clone()
            .expect("the label screen's reference rows carry their moments");
        let idx = reference::neighbour_rows(rows.n, l.max_reference);
        let z = idx
            .iter()
            .flat_map(|&r| (0..d).map(move |c| (r, c)))
            .map(|(r, c)| (rows.value(r, c) - mean[c]) / sd[c])
            .collect();
        LabelNeighbours {
            k: l.k.min(idx.len()),
            min_agreement: l.min_agreement,
            d,
            mean,
            sd,
            z,
            labels: idx.iter().map(|&r| rows.label(r).to_string()).collect(),
        }
    }

    /// For each batch row, why its label is suspect, if it is.
    fn verdicts(&self, batch: &[f64], batch_labels: &[String]) -> Vec<Option<String>> {
        let (d, k) = (self.d, self.k);
        crate::stats::on_threads(batch_labels.len(), |range| {
            range
                .map(|b| {
                    let q: Vec<f64> = (0..d)
                        .map(|c| (batch[b * d + c] - self.mean[c]) / self.sd[c])
                        .collect();
                    let mut best: Vec<(f64, usize)> = Vec::with_capacity(k + 1);
                    for (j, row) in self.z.chunks_exact(d).enumerate() {
                        let dist: f64 = row.iter().zip(&q).map(|(a, b)| (a - b) * (a - b)).sum();
                        if best.len() < k || dist < best[best.len() - 1].0 {
                            let at = best.partition_point(|&(x, _)| x <= dist);
                            best.insert(at, (dist, j));
                            best.truncate(k);
                        }
                    }
                    let label = &batch_labels[b];
                    let same = best.iter().filter(|&&(_, j)| &self.labels[j] == label).count();
                    if (same as f64) < self.min_agreement * k as f64 {
                        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
                        for &(_, j) in &best {
                            *counts.entry(self.labels[j].as_str()).or_default() += 1;
                        }
                        let majority = counts.iter().max_by_key(|(_, c)| **c).map(|(l, _)| *l).unwrap_or("");
                        Some(format!(
                            "label '{label}' agrees with {same} of {k} nearest reference rows (majority '{majority}')"
                        ))
                    } else {
                        None
                    }
                })
                .collect()
        })
    }
}

#[cfg(test)]
mod value_digest_tests {
    use super::unique::value_digest;

    #[test]
    fn equal_values_share_a_digest_and_near_equal_long_ones_do_not() {
        let long = "x".repeat(4096);
        assert_eq!(value_digest(&long), value_digest(&long.clone()));
        // Same first 4,095 bytes: the whole value is hashed, not a prefix.
        let mut other = long.clone();
        other.replace_range(4095.., "y");
        assert_ne!(value_digest(&long), value_digest(&other));
        assert_ne!(value_digest(""), value_digest(" "));
        // The SHA-256 of "abc" (FIPS 180-2), first 16 bytes.
        assert_eq!(
            hex::encode(value_digest("abc")),
            "ba7816bf8f01cfea414140de5dae2223"
        );
    }
}
