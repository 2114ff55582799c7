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
use std::collections::{BTreeMap, HashMap};

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
    #[serde(skip)]
    pub findings: Vec<Finding>,
}

fn canonical_cell(c: &Column, r: usize) -> String {
    match &c.data {
        ColumnData::Float(v) => v[r].map_or("∅".into(), |x| {
            if x == x.trunc() && x.abs() < 1e15 {
                format!("{}", x as i64)
            } else {
                format!("{x}")
            }
        }),
        ColumnData::Int(v) => v[r].map_or("∅".into(), |x| x.to_string()),
        ColumnData::Bool(v) => v[r].map_or("∅".into(), |x| x.to_string()),
        ColumnData::Str(v) => v.get(r).map_or("∅".into(), minhash::normalise),
    }
}

fn row_hash(t: &Table, cols: &[usize], r: usize) -> [u8; 32] {
    let mut h = sha2::Sha256::new();
    for &c in cols {
        h.update(canonical_cell(&t.columns[c], r).as_bytes());
        h.update([0x1f]);
    }
    h.finalize().into()
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

/// ROC AUC of one numeric feature for `positive` rows (ties count half).
fn auc(values: &[f64], positive: &[bool]) -> f64 {
    crate::stats::iforest::roc_auc(values, positive)
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

/// Runs the audit.
pub fn audit(
    train: &Table,
    test: &Table,
    train_name: &str,
    test_name: &str,
    o: &AuditOptions,
) -> Result<Audit, String> {
    let mut out = Audit {
        train_rows: train.rows,
        test_rows: test.rows,
        exact_duplicates: Vec::new(),
        near_duplicates: Vec::new(),
        newer_training_rows: Vec::new(),
        leaking_features: Vec::new(),
        findings: Vec::new(),
    };
    let skip = |name: &str| {
        o.ignore.iter().any(|i| i == name)
            || Some(name) == o.label.as_deref()
            || Some(name) == o.time.as_deref()
    };
    // 1. Exact duplicates over the shared, non-ignored columns.
    let shared: Vec<(usize, usize)> = train
        .columns
        .iter()
        .enumerate()
        .filter(|(_, c)| !skip(&c.name))
        .filter_map(|(i, c)| Some((i, test.column(&c.name)?)))
        .collect();
    if shared.is_empty() {
        return Err("train and test share no column to compare".into());
    }
    let (tc, sc): (Vec<usize>, Vec<usize>) = shared.iter().copied().unzip();
    let mut seen: HashMap<[u8; 32], usize> = HashMap::with_capacity(train.rows);
    for r in 0..train.rows {
        seen.entry(row_hash(train, &tc, r)).or_insert(r);
    }
    for r in 0..test.rows {
        if let Some(&t) = seen.get(&row_hash(test, &sc, r)) {
            out.exact_duplicates.push((t, r));
        }
    }
    if !out.exact_duplicates.is_empty() {
        let n = out.exact_duplicates.len();
        let (t, s) = out.exact_duplicates[0];
        out.findings.push(
            Finding::new(
                &SPLIT_DUPLICATES,
                Location::file(test_name.to_string()),
                format!(
                    "{n} of {} test rows ({:.1} %) are in the training split (first: test row {s} = {train_name} row {t})",
                    test.rows,
                    100.0 * n as f64 / test.rows.max(1) as f64
                ),
            )
            .with_evidence("pairs", out.exact_duplicates.iter().take(1000).map(|&(a, b)| vec![a, b]).collect::<Vec<_>>()),
        );
    }
    // 2. Near-duplicate texts.
    if let Some(col) = &o.text {
        let text_of = |t: &Table, name: &str| -> Result<Vec<String>, String> {
            let c = t
                .column(col)
                .ok_or_else(|| format!("{name} has no column `{col}`"))?;
            Ok((0..t.rows)
                .map(|r| t.columns[c].cell(r).unwrap_or_default())
                .collect())
        };
        let (a, b) = (text_of(train, train_name)?, text_of(test, test_name)?);
        let exact: std::collections::HashSet<usize> =
            out.exact_duplicates.iter().map(|&(_, s)| s).collect();
        let mut pairs = minhash::near_duplicates(&a, &b, &o.minhash);
        pairs.retain(|&(_, s, _)| !exact.contains(&s));
        pairs.sort_by_key(|p| (p.1, p.0));
        if !pairs.is_empty() {
            let rows: std::collections::BTreeSet<usize> = pairs.iter().map(|p| p.1).collect();
            out.findings.push(
                Finding::new(
                    &SPLIT_DUPLICATES,
                    Location::file(test_name.to_string()),
                    format!(
                        "{} test texts in `{col}` are near-duplicates of training texts (Jaccard ≥ {}; first: test row {} ~ train row {}, {:.2})",
                        rows.len(),
                        o.minhash.threshold,
                        pairs[0].1,
                        pairs[0].0,
                        pairs[0].2
                    ),
                )
                .with_severity(Severity::Medium)
                .with_evidence("pairs", pairs.iter().take(1000).map(|p| serde_json::json!([p.0, p.1, p.2])).collect::<Vec<_>>()),
            );
        }
        out.near_duplicates = pairs;
    }
    // 3. Temporal bleed.
    if let Some(col) = &o.time {
        let times = |t: &Table, name: &str| -> Result<Vec<Option<f64>>, String> {
            let c = t
                .column(col)
                .ok_or_else(|| format!("{name} has no column `{col}`"))?;
            Ok((0..t.rows)
                .map(|r| t.columns[c].cell(r).and_then(|s| parse_time(&s)))
                .collect())
        };
        let (tt, st) = (times(train, train_name)?, times(test, test_name)?);
        let cut =
            match &o.split_time {
                Some(s) => Some(parse_time(s).ok_or_else(|| {
                    format!("--split-time `{s}` is not a date, date-time or number")
                })?),
                None => st.iter().flatten().copied().reduce(f64::min),
            };
        if let Some(cut) = cut {
            out.newer_training_rows = tt
                .iter()
                .enumerate()
                .filter(|(_, t)| t.is_some_and(|t| t > cut))
                .map(|(i, _)| i)
                .collect();
            if !out.newer_training_rows.is_empty() {
                let what = if o.split_time.is_some() {
                    "the split time"
                } else {
                    "the earliest test row"
                };
                out.findings.push(
                    Finding::new(
                        &TEMPORAL_BLEED,
                        Location::file(train_name.to_string()),
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
        }
    }
    // 4. Target leakage on the training split.
    if let Some(label) = &o.label {
        let li = train
            .column(label)
            .ok_or_else(|| format!("{train_name} has no label column `{label}`"))?;
        let labels: Vec<String> = (0..train.rows)
            .map(|r| train.columns[li].cell(r).unwrap_or_default())
            .collect();
        let mut classes: BTreeMap<&str, usize> = BTreeMap::new();
        for l in &labels {
            *classes.entry(l).or_default() += 1;
        }
        let n = labels.len() as f64;
        let h_label = entropy(classes.values().copied(), n);
        for (i, c) in train.columns.iter().enumerate() {
            if i == li || o.ignore.contains(&c.name) {
                continue;
            }
            let numeric: Option<Vec<f64>> = match &c.data {
                ColumnData::Float(v) => Some(v.iter().map(|x| x.unwrap_or(f64::NAN)).collect()),
                ColumnData::Int(v) => {
                    Some(v.iter().map(|x| x.map_or(f64::NAN, |x| x as f64)).collect())
                }
                _ => None,
            };
            let (measure, score) = match numeric {
                Some(values) if classes.len() >= 2 => {
                    // The best one-vs-rest separation, in either direction.
                    let best = classes
                        .keys()
                        .map(|k| {
                            let pos: Vec<bool> = labels.iter().map(|l| l == k).collect();
                            let a = auc(&values, &pos);
                            if a.is_nan() {
                                0.5
                            } else {
                                a.max(1.0 - a)
                            }
                        })
                        .fold(0.5, f64::max);
                    ("AUC", best)
                }
                Some(_) => continue,
                None => {
                    if h_label <= 0.0 {
                        continue;
                    }
                    let mut joint: HashMap<(String, &str), usize> = HashMap::new();
                    let mut values: HashMap<String, usize> = HashMap::new();
                    for (r, l) in labels.iter().enumerate() {
                        let v = c.cell(r).unwrap_or_default();
                        *values.entry(v.clone()).or_default() += 1;
                        *joint.entry((v, l)).or_default() += 1;
                    }
                    // A column with a distinct value per row (an id) says nothing general.
                    if values.len() as f64 > 0.5 * n {
                        continue;
                    }
                    let h_value = entropy(values.values().copied(), n);
                    let h_joint = entropy(joint.values().copied(), n);
                    ("NMI", (h_value + h_label - h_joint) / h_label)
                }
            };
            let limit = if measure == "AUC" {
                o.auc_threshold
            } else {
                o.nmi_threshold
            };
            if score >= limit {
                out.leaking_features
                    .push((c.name.clone(), measure.into(), score));
                out.findings.push(
                    Finding::new(
                        &TARGET_LEAKAGE,
                        Location::file(train_name.to_string()),
                        format!(
                            "`{}` alone predicts `{label}` ({measure} {score:.3})",
                            c.name
                        ),
                    )
                    .with_evidence("measure", measure)
                    .with_evidence("score", score),
                );
            }
        }
    }
    Ok(out)
}

/// The image audit: test images that are pixel-identical to a training
/// image, or near-duplicates of one (shifted, brightened, re-encoded).
pub fn audit_images(
    train: &images::Images,
    test: &images::Images,
    train_name: &str,
    test_name: &str,
    p: &images::ImageParams,
) -> Result<Audit, String> {
    let mut out = Audit {
        train_rows: train.n,
        test_rows: test.n,
        exact_duplicates: Vec::new(),
        near_duplicates: Vec::new(),
        newer_training_rows: Vec::new(),
        leaking_features: Vec::new(),
        findings: Vec::new(),
    };
    let per = train.width * train.height;
    let digest = |im: &images::Images, i: usize| -> [u8; 32] {
        let mut h = sha2::Sha256::new();
        for v in &im.pixels[i * per..(i + 1) * per] {
            h.update(v.to_le_bytes());
        }
        h.finalize().into()
    };
    let mut seen: HashMap<[u8; 32], usize> = HashMap::with_capacity(train.n);
    for i in 0..train.n {
        seen.entry(digest(train, i)).or_insert(i);
    }
    for j in 0..test.n {
        if let Some(&i) = seen.get(&digest(test, j)) {
            out.exact_duplicates.push((i, j));
        }
    }
    let exact: std::collections::HashSet<usize> =
        out.exact_duplicates.iter().map(|&(_, j)| j).collect();
    let mut near = images::near_duplicates(train, test, p)?;
    near.retain(|&(_, j, _)| !exact.contains(&j));
    out.near_duplicates = near;
    if !out.exact_duplicates.is_empty() {
        let (i, j) = out.exact_duplicates[0];
        out.findings.push(
            Finding::new(
                &SPLIT_DUPLICATES,
                Location::file(test_name.to_string()),
                format!(
                    "{} of {} test images are pixel-identical to training images (first: test {j} = {train_name} {i})",
                    out.exact_duplicates.len(),
                    test.n
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
    Ok(out)
}
