//! The ingestion gate: a batch of training data is checked before it may
//! join the training set — who sent it (a signed manifest from an allowed
//! source), whether it fits the schema, whether it looks like the trusted
//! reference, which rows are outliers and which labels disagree with their
//! neighbours. What fails is quarantined with its reasons, never dropped.

pub mod ledger;
pub mod manifest;
pub mod policy;

use crate::frame::Frame;
use crate::stats::{self, IsolationForest, IsolationForestParams, KsMethod};
use crate::table::{self, ColumnData, Table};
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
    /// Quarantined rows and their reasons.
    pub quarantined: BTreeMap<usize, Vec<String>>,
    pub screen: Vec<FeatureScreen>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label_chi2: Option<(f64, f64)>,
    #[serde(skip)]
    pub findings: Vec<Finding>,
    #[serde(skip)]
    pub table: Table,
}

pub struct GateInput<'a> {
    pub reference: &'a str,
    pub batch: &'a Path,
    pub manifest: Option<&'a Path>,
    pub policy: &'a Policy,
    /// Paths in the policy (source keys) are relative to this folder.
    pub policy_dir: &'a Path,
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

fn add(q: &mut BTreeMap<usize, Vec<String>>, row: usize, reason: String) {
    q.entry(row).or_default().push(reason);
}

/// Runs the gate on one batch.
pub fn run(input: &GateInput) -> Result<Outcome, String> {
    let policy = input.policy;
    // Streamed: the batch is hashed without holding a second copy of it.
    let (batch_sha256, _) = mlsec_core::digest::sha256_file(input.batch)
        .map_err(|e| format!("{}: {e}", input.batch.display()))?;
    let table = table::read_table(input.batch).map_err(|e| e.to_string())?;
    let shown = input.batch.display().to_string();
    let mut out = Outcome {
        decision: Decision::Accepted,
        batch_sha256: batch_sha256.clone(),
        source: None,
        manifest_sha256: None,
        rows: table.rows,
        accepted_rows: 0,
        batch_reasons: Vec::new(),
        quarantined: BTreeMap::new(),
        screen: Vec::new(),
        label_chi2: None,
        findings: Vec::new(),
        table,
    };
    // 1. Provenance: a manifest signed by an allowed source, for this batch.
    if !policy.sources.is_empty() {
        let verdict = (|| -> Result<manifest::Manifest, String> {
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
                let key = mlsec_sign::PublicKey::from_pem(&pem)
                    .map_err(|e| format!("source {}: {e}", s.name))?;
                keys.push((s.name.clone(), key));
            }
            let m = manifest::verify(&bytes, &keys)?;
            if m.sha256 != batch_sha256 {
                return Err(format!(
                    "batch SHA-256 {batch_sha256} is not the signed {}",
                    m.sha256
                ));
            }
            Ok(m)
        })();
        match verdict {
            Ok(m) => out.source = Some(m.source),
            Err(reason) => {
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
                for r in 0..out.rows {
                    add(
                        &mut out.quarantined,
                        r,
                        "batch rejected: no valid manifest".into(),
                    );
                }
                return Ok(out);
            }
        }
    }
    // 2. Schema.
    check_schema(policy, &shown, &mut out);
    // 3. Distribution screen against the reference.
    let reference =
        Frame::load(input.reference, policy.label.as_deref()).map_err(|e| e.to_string())?;
    let batch = Frame::from_table(&out.table, policy.label.as_deref())
        .map_err(|e| e.at(&shown).to_string())?;
    screen(policy, &reference, &batch, &shown, &mut out)?;
    // 4. Row outliers and 5. label disagreement.
    let names = reference.shared_features(&batch);
    if !names.is_empty() && batch.rows > 0 {
        let fill = reference.gap_fill(&batch, &names);
        let ref_rows = reference.row_major(&names, &fill);
        let batch_rows = batch.row_major(&names, &fill);
        if let Some(o) = &policy.outliers {
            outliers(o, &names, &ref_rows, &batch_rows, &shown, &mut out)?;
        }
        if let (Some(l), Some(rl), Some(bl)) = (&policy.labels, &reference.labels, &batch.labels) {
            label_screen(
                l,
                names.len(),
                &ref_rows,
                rl,
                &batch_rows,
                bl,
                &shown,
                &mut out,
            );
        }
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

fn check_schema(policy: &Policy, shown: &str, out: &mut Outcome) {
    let schema = &policy.schema;
    if schema.columns.is_empty() {
        return;
    }
    let t = &out.table;
    let mut batch_level = Vec::new();
    for name in schema.columns.keys() {
        if t.column(name).is_none() {
            batch_level.push(format!("declared column `{name}` is missing"));
        }
    }
    if schema.unknown_columns == UnknownColumns::Reject {
        for c in &t.columns {
            if !schema.columns.contains_key(&c.name) && Some(&c.name) != policy.label.as_ref() {
                batch_level.push(format!("column `{}` is not declared in the schema", c.name));
            }
        }
    }
    let mut per_rule: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut row_reasons: Vec<(usize, String, String)> = Vec::new();
    for (name, rule) in &schema.columns {
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
            batch_level.push(
                format!(
                    "column `{name}` holds {} values, the schema says {:?}",
                    col.kind(),
                    rule.kind
                )
                .to_lowercase(),
            );
            continue;
        }
        let mut seen: HashMap<String, usize> = HashMap::new();
        for r in 0..t.rows {
            let cell = col.cell(r);
            let mut fail = |check: &str, why: String| {
                row_reasons.push((r, format!("{name}: {why}"), format!("{name} {check}")))
            };
            let Some(text) = cell else {
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
                if let Some(first) = seen.get(&text) {
                    fail("unique", format!("`{text}` repeats row {first}"));
                } else {
                    seen.insert(text, r);
                }
            }
        }
    }
    for (r, reason, key) in row_reasons {
        per_rule.entry(key).or_default().push(r);
        add(&mut out.quarantined, r, reason);
    }
    for (key, rows) in per_rule {
        out.findings.push(
            Finding::new(
                &SCHEMA_VIOLATION,
                Location::file(shown.to_string()),
                format!("{} rows fail `{key}` (first: row {})", rows.len(), rows[0]),
            )
            .with_evidence("rows", rows.iter().take(1000).copied().collect::<Vec<_>>()),
        );
    }
    if !batch_level.is_empty() {
        out.decision = Decision::Quarantined;
        for reason in &batch_level {
            out.findings.push(Finding::new(
                &SCHEMA_VIOLATION,
                Location::file(shown.to_string()),
                reason.clone(),
            ));
        }
        out.batch_reasons.extend(batch_level);
    }
}

fn screen(
    policy: &Policy,
    reference: &Frame,
    batch: &Frame,
    shown: &str,
    out: &mut Outcome,
) -> Result<(), String> {
    let d = &policy.distribution;
    let mut reasons = Vec::new();
    let shared: Vec<(&String, &[f64], &[f64])> = reference
        .names
        .iter()
        .zip(&reference.columns)
        .filter_map(|(name, r)| Some((name, r.as_slice(), batch.feature(name)?)))
        .collect();
    let compared = stats::on_threads(shared.len(), |range| {
        range
            .map(|k| stats::compare(shared[k].1, shared[k].2, KsMethod::Auto, 10))
            .collect()
    });
    for (&(name, _, _), c) in shared.iter().zip(compared) {
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
    if let (Some(rl), Some(bl)) = (&reference.labels, &batch.labels) {
        let mut classes: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
        for l in rl {
            classes.entry(l).or_default().0 += 1.0;
        }
        for l in bl {
            classes.entry(l).or_default().1 += 1.0;
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

fn outliers(
    o: &policy::Outliers,
    names: &[String],
    reference: &[f64],
    batch: &[f64],
    shown: &str,
    out: &mut Outcome,
) -> Result<(), String> {
    let params = IsolationForestParams {
        n_estimators: o.trees,
        seed: o.seed,
        contamination: o.contamination,
        ..IsolationForestParams::default()
    };
    let forest = IsolationForest::fit(reference, names.len(), &params)?;
    let threshold = o.threshold.unwrap_or(forest.offset);
    let scores = forest.score_samples(batch)?;
    let flagged: Vec<usize> = (0..scores.len())
        .filter(|&r| scores[r] < threshold)
        .collect();
    for &r in &flagged {
        add(
            &mut out.quarantined,
            r,
            format!(
                "outlier: Isolation Forest score {:.4} < {threshold}",
                scores[r]
            ),
        );
    }
    if !flagged.is_empty() {
        out.findings.push(
            Finding::new(
                &crate::drift::OUTLIER_ROWS,
                Location::file(shown.to_string()),
                format!(
                    "{} of {} rows score below {threshold:.4}",
                    flagged.len(),
                    scores.len()
                ),
            )
            .with_evidence(
                "rows",
                flagged.iter().take(1000).copied().collect::<Vec<_>>(),
            ),
        );
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn label_screen(
    l: &policy::Labels,
    d: usize,
    reference: &[f64],
    ref_labels: &[String],
    batch: &[f64],
    batch_labels: &[String],
    shown: &str,
    out: &mut Outcome,
) {
    let n_ref = ref_labels.len();
    // Standardise with the reference's means and deviations.
    let (mut mean, mut sd) = (vec![0.0; d], vec![0.0; d]);
    for r in 0..n_ref {
        for c in 0..d {
            mean[c] += reference[r * d + c];
        }
    }
    mean.iter_mut().for_each(|m| *m /= n_ref.max(1) as f64);
    for r in 0..n_ref {
        for c in 0..d {
            sd[c] += (reference[r * d + c] - mean[c]).powi(2);
        }
    }
    sd.iter_mut()
        .for_each(|s| *s = (*s / n_ref.max(1) as f64).sqrt().max(1e-12));
    // A seeded sample of the reference as neighbours.
    let mut idx: Vec<usize> = (0..n_ref).collect();
    if n_ref > l.max_reference {
        use rand_chacha::rand_core::{RngCore, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x6c61_6265_6c73);
        for i in 0..l.max_reference {
            let j = i + ((rng.next_u64() as u128 * (n_ref - i) as u128) >> 64) as usize;
            idx.swap(i, j);
        }
        idx.truncate(l.max_reference);
    }
    let z: Vec<f64> = idx
        .iter()
        .flat_map(|&r| (0..d).map(move |c| (r, c)))
        .map(|(r, c)| (reference[r * d + c] - mean[c]) / sd[c])
        .collect();
    let k = l.k.min(idx.len());
    let n_batch = batch_labels.len();
    let verdicts: Vec<Option<String>> = crate::stats::on_threads(n_batch, |range| {
        range
            .map(|b| {
                let q: Vec<f64> = (0..d).map(|c| (batch[b * d + c] - mean[c]) / sd[c]).collect();
                let mut best: Vec<(f64, usize)> = Vec::with_capacity(k + 1);
                for (j, row) in z.chunks_exact(d).enumerate() {
                    let dist: f64 = row.iter().zip(&q).map(|(a, b)| (a - b) * (a - b)).sum();
                    if best.len() < k || dist < best[best.len() - 1].0 {
                        let at = best.partition_point(|&(x, _)| x <= dist);
                        best.insert(at, (dist, j));
                        best.truncate(k);
                    }
                }
                let label = &batch_labels[b];
                let same = best.iter().filter(|&&(_, j)| &ref_labels[idx[j]] == label).count();
                if (same as f64) < l.min_agreement * k as f64 {
                    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
                    for &(_, j) in &best {
                        *counts.entry(ref_labels[idx[j]].as_str()).or_default() += 1;
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
    });
    let mut flagged = Vec::new();
    for (r, v) in verdicts.into_iter().enumerate() {
        if let Some(reason) = v {
            add(&mut out.quarantined, r, reason);
            flagged.push(r);
        }
    }
    if !flagged.is_empty() {
        out.findings.push(
            Finding::new(
                &LABEL_DISAGREEMENT,
                Location::file(shown.to_string()),
                format!(
                    "{} rows carry labels their nearest reference rows do not (first: row {})",
                    flagged.len(),
                    flagged[0]
                ),
            )
            .with_evidence(
                "rows",
                flagged.iter().take(1000).copied().collect::<Vec<_>>(),
            ),
        );
    }
}
