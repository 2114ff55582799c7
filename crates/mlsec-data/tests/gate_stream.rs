//! The gate reads its batch in chunks: whatever the chunk size, the
//! decision, the held rows and their reasons, the screen and the findings
//! are those of the batch read in one piece. A column that changes type in
//! a later chunk is a batch-level schema violation, as in a whole file.

mod common;

use mlsec_data::gate::{self, policy::Policy, GateInput, Outcome};
use mlsec_data::reference::ReferenceOptions;
use mlsec_data::stream::ChunkOptions;
use std::path::Path;

struct Rng(u64);
impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    fn gauss(&mut self) -> f64 {
        let (u1, u2) = (self.unit().max(1e-12), self.unit());
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

/// Three classes in three features, with `id`, `amount` and `label`; the
/// batch (`poisoned`) repeats ids, has negative amounts, unknown and
/// flipped labels and far-away rows.
fn dataset(path: &Path, n: usize, seed: u64, poisoned: bool, code_text_from: Option<usize>) {
    let mut rng = Rng(seed);
    let centers = [[0.0, 0.0, 0.0], [4.0, 4.0, 0.0], [0.0, 4.0, 4.0]];
    let mut out = String::from("id,f0,f1,f2,amount,code,label\n");
    for i in 0..n {
        let class = ((rng.unit() * 3.0) as usize).min(2);
        let mut f: Vec<f64> = centers[class].iter().map(|c| c + rng.gauss()).collect();
        let mut label = ["a", "b", "c"][class];
        let mut id = i;
        let mut amount = format!("{:.2}", rng.unit() * 100.0);
        if poisoned {
            match i % 37 {
                3 => id = 5,
                7 => amount = "-4".into(),
                11 => label = ["b", "c", "a"][class],
                13 => label = "z",
                17 => f = vec![18.0 + rng.unit(), -15.0, 16.0],
                _ => {}
            }
        }
        let code = match code_text_from {
            Some(from) if i >= from => "n/a".to_string(),
            _ => (i % 9).to_string(),
        };
        out.push_str(&format!(
            "{id},{:.4},{:.4},{:.4},{amount},{code},{label}\n",
            f[0], f[1], f[2]
        ));
    }
    std::fs::write(path, out).unwrap();
}

const POLICY: &str = r#"
label = "label"
[schema]
unknown_columns = "ignore"
[schema.columns.id]
type = "int"
unique = true
[schema.columns.amount]
type = "float"
min = 0
[schema.columns.code]
type = "int"
max = 7
[schema.columns.label]
type = "string"
allowed = ["a", "b", "c"]
[distribution]
# `id` is a number too: the batch's ids are not the reference's.
ks_max = 1.0
psi_max = 100.0
label_pvalue_min = 0.0
[outliers]
threshold = -0.62
[labels]
k = 10
min_agreement = 0.3
"#;

fn gate(dir: &Path, batch: &str, chunks: ChunkOptions) -> Outcome {
    gate_with(
        dir,
        "ref.csv",
        batch,
        chunks,
        POLICY,
        ReferenceOptions::default(),
    )
}

fn gate_with(
    dir: &Path,
    reference: &str,
    batch: &str,
    chunks: ChunkOptions,
    policy: &str,
    reference_options: ReferenceOptions,
) -> Outcome {
    let policy = Policy::parse(policy).unwrap();
    gate::run(&GateInput {
        reference: &dir.join(reference).display().to_string(),
        batch: &dir.join(batch),
        manifest: None,
        policy: &policy,
        policy_dir: dir,
        chunks,
        reference_options,
    })
    .unwrap()
}

fn summary(o: &Outcome) -> (serde_json::Value, Vec<String>) {
    (
        serde_json::to_value(o).unwrap(),
        o.findings.iter().map(|f| f.message.clone()).collect(),
    )
}

fn blocks(bytes: usize) -> ChunkOptions {
    ChunkOptions {
        csv_bytes: bytes,
        ..ChunkOptions::default()
    }
}

#[test]
fn any_chunk_size_gives_the_one_piece_outcome() {
    let dir = tempfile::tempdir().unwrap();
    dataset(&dir.path().join("ref.csv"), 3000, 7, false, None);
    dataset(&dir.path().join("batch.csv"), 1500, 11, true, None);
    let whole = gate(dir.path(), "batch.csv", ChunkOptions::default());
    assert_eq!(whole.decision, gate::Decision::PartiallyAccepted);
    assert_eq!(whole.rows, 1500);
    // Each kind of poison is held with its reason; `code` 8 breaks max 7.
    let reasons = |r: usize| {
        whole
            .quarantined
            .get(&r)
            .cloned()
            .unwrap_or_default()
            .join("; ")
    };
    assert!(
        reasons(37 + 3).contains("id: `5` repeats row 3"),
        "{}",
        reasons(40)
    );
    assert!(reasons(37 + 7).contains("amount: -4 < min 0"));
    assert!(reasons(37 + 13).contains("label: `z` is not an allowed value"));
    assert!(reasons(37 + 17).contains("outlier: Isolation Forest score"));
    assert!(reasons(8).contains("code: 8 > max 7"));
    let flips = (0..1500)
        .filter(|r| r % 37 == 11)
        .filter(|&r| reasons(r).contains("nearest reference rows"))
        .count();
    assert!(flips >= 35, "{flips} of 41 flipped labels held");
    for bytes in [900, 4000, 20_000] {
        let chunked = gate(dir.path(), "batch.csv", blocks(bytes));
        assert_eq!(
            summary(&chunked),
            summary(&whole),
            "blocks of {bytes} bytes"
        );
    }
}

#[test]
fn a_column_that_turns_to_text_in_a_later_chunk_quarantines_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    dataset(&dir.path().join("ref.csv"), 2000, 7, false, None);
    dataset(&dir.path().join("batch.csv"), 1200, 11, false, Some(1000));
    let whole = gate(dir.path(), "batch.csv", ChunkOptions::default());
    let chunked = gate(dir.path(), "batch.csv", blocks(2000));
    for o in [&whole, &chunked] {
        assert_eq!(o.decision, gate::Decision::Quarantined);
        assert_eq!(o.accepted_rows, 0);
        assert!(
            o.batch_reasons
                .iter()
                .any(|r| r.contains("column `code` holds string values, the schema says int")),
            "{:?}",
            o.batch_reasons
        );
        // The mistyped column's row checks are dropped, in every chunk.
        assert!(!o
            .quarantined
            .values()
            .flatten()
            .any(|r| r.starts_with("code:")));
    }
    assert_eq!(whole.batch_reasons, chunked.batch_reasons);
}

#[test]
fn rows_are_read_again_in_order_and_a_changed_batch_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    dataset(&dir.path().join("ref.csv"), 2000, 7, false, None);
    dataset(&dir.path().join("batch.csv"), 500, 11, true, None);
    let o = gate(dir.path(), "batch.csv", blocks(3000));
    let batch = dir.path().join("batch.csv");
    let mut seen = Vec::new();
    gate::for_each_row(&batch, &o, blocks(1000), |row, t, r| {
        seen.push((row, t.columns[0].cell(r).unwrap()));
        Ok(())
    })
    .unwrap();
    assert_eq!(seen.len(), 500);
    assert!(seen.iter().enumerate().all(|(i, (row, _))| *row == i));
    assert_eq!(seen[1].1, "1");
    let mut text = std::fs::read_to_string(&batch).unwrap();
    text.push_str("9999,0,0,0,1,1,a\n");
    std::fs::write(&batch, text).unwrap();
    let err = gate::for_each_row(&batch, &o, blocks(1000), |_, _, _| Ok(())).unwrap_err();
    assert!(err.contains("changed while it was gated"), "{err}");
}

/// Past its memory budget the reference is sorted on disk and the rows
/// the screens sample are gathered in a second pass (a third scores every
/// row for a contamination offset), and so is the batch's numbers past the
/// same budget: the outcome is that of both held, bit for bit, for CSV and
/// Parquet references, with gaps in the features.
#[test]
fn a_reference_over_its_memory_budget_gives_the_same_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("ref.csv");
    dataset(&reference, 3000, 7, false, None);
    // Gaps and infinities, which read as the feature's median.
    let text = std::fs::read_to_string(&reference).unwrap();
    let text: String = text
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let mut cells: Vec<String> = line.split(',').map(String::from).collect();
            match i % 53 {
                5 => cells[1] = String::new(),
                9 => cells[2] = "inf".into(),
                _ => {}
            }
            cells.join(",") + "\n"
        })
        .collect();
    std::fs::write(&reference, text).unwrap();
    let table = mlsec_data::table::read_table(&reference).unwrap();
    common::write_parquet(&table, &dir.path().join("ref.parquet"), 400);
    dataset(&dir.path().join("batch.csv"), 900, 11, true, None);
    let sampled = POLICY.replace(
        "min_agreement = 0.3",
        "min_agreement = 0.3\nmax_reference = 700",
    );
    let contaminated = sampled.replace("threshold = -0.62", "contamination = 0.05");
    for policy in [POLICY.to_string(), sampled, contaminated] {
        for file in ["ref.csv", "ref.parquet"] {
            let held = gate_with(
                dir.path(),
                file,
                "batch.csv",
                ChunkOptions::default(),
                &policy,
                ReferenceOptions::default(),
            );
            assert!(!held.quarantined.is_empty());
            assert!(held.label_chi2.is_some(), "{file}: the labels were read");
            for memory_bytes in [0, 20_000] {
                let spilled = gate_with(
                    dir.path(),
                    file,
                    "batch.csv",
                    ChunkOptions::default(),
                    &policy,
                    ReferenceOptions {
                        memory_bytes,
                        spill_dir: Some(dir.path().to_path_buf()),
                    },
                );
                assert_eq!(
                    summary(&spilled),
                    summary(&held),
                    "{file}, {memory_bytes} bytes, policy:\n{policy}"
                );
            }
        }
    }
    // A reference that fits with a batch that does not: the batch is
    // sorted on disk, the held reference sorted in place for it.
    dataset(&dir.path().join("small.csv"), 500, 5, false, None);
    let held = gate_with(
        dir.path(),
        "small.csv",
        "batch.csv",
        ChunkOptions::default(),
        POLICY,
        ReferenceOptions::default(),
    );
    assert!(!held.screen.is_empty());
    let spilled_batch = gate_with(
        dir.path(),
        "small.csv",
        "batch.csv",
        ChunkOptions::default(),
        POLICY,
        ReferenceOptions {
            // 500 × 6 numbers and 500 labels fit; 900 × 6 numbers do not.
            memory_bytes: 40_000,
            spill_dir: Some(dir.path().to_path_buf()),
        },
    );
    assert_eq!(summary(&spilled_batch), summary(&held));
    // The sorted columns went with the reference.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("mlsec-reference-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// The `unique` check past its memory budget writes its values to disk
/// and finds the repeats by merging them: the outcome is the in-memory
/// one, with each row's reasons in the same order (here rows failing a
/// column before `id`, `id` and `key` themselves, and one after).
#[test]
fn unique_values_past_the_memory_budget_give_the_same_outcome() {
    let dir = tempfile::tempdir().unwrap();
    dataset(&dir.path().join("ref.csv"), 500, 5, false, None);
    let mut batch = String::from("id,f0,f1,f2,amount,code,label,key\n");
    for i in 0..3000 {
        let amount = if i % 5 == 0 { "-1" } else { "2.5" };
        let label = if i % 7 == 0 {
            "z"
        } else {
            ["a", "b", "c"][i % 3]
        };
        let f = [0.0, 4.0 * (i % 2) as f64, 0.5];
        batch.push_str(&format!(
            "{},{},{},{},{amount},1,{label},k{}\n",
            i % 1000,
            f[0],
            f[1],
            f[2],
            i % 700
        ));
    }
    std::fs::write(dir.path().join("batch.csv"), batch).unwrap();
    let policy = format!("{POLICY}\n[schema.columns.key]\ntype = \"string\"\nunique = true\n");
    let run = |memory_bytes| {
        gate_with(
            dir.path(),
            "ref.csv",
            "batch.csv",
            blocks(20_000),
            &policy,
            ReferenceOptions {
                memory_bytes,
                spill_dir: Some(dir.path().to_path_buf()),
            },
        )
    };
    let held = run(1 << 30);
    // Row 1400: a negative amount, then `id` 400 and `key` k0 repeated.
    assert_eq!(
        held.quarantined[&1400][..3],
        [
            "amount: -1 < min 0",
            "id: `400` repeats row 400",
            "key: `k0` repeats row 0",
        ]
    );
    for memory_bytes in [0, 30_000] {
        assert_eq!(
            summary(&run(memory_bytes)),
            summary(&held),
            "{memory_bytes} bytes"
        );
    }
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("mlsec-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
