//! The leakage audit gives the same results from chunks as from whole
//! splits: CSV cut into blocks that type their columns on their own,
//! Parquet read batch by batch, and tables cut at arbitrary rows. With a
//! target-leakage sample smaller than the split, a leaking feature is
//! still found.

mod common;

use common::write_parquet;
use mlsec_data::leakage::{audit, audit_in_blocks, Audit, AuditOptions, Reading, SplitAuditor};
use mlsec_data::stream::{ChunkOptions, TableChunks};
use mlsec_data::table::{read_table, Column, ColumnData, Table};
use proptest::prelude::*;
use std::path::Path;

struct Rng(u64);
impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

const WORDS: &[&str] = &[
    "model", "data", "training", "gradient", "loss", "batch", "layer", "weights", "robust",
    "attack", "signal", "vector", "sample", "noise", "label", "feature", "stream", "window",
    "kernel", "tensor", "audit", "secure", "pipeline", "review", "policy", "deploy",
];

fn text(rng: &mut Rng) -> String {
    (0..10 + rng.below(8))
        .map(|_| WORDS[rng.below(WORDS.len())])
        .collect::<Vec<_>>()
        .join(" ")
}

/// A training split with every kind of leak, and a test split that
/// copies some of its rows exactly and some texts with a word changed.
/// `code` holds integers for the first 2,000 rows and then `n/a`, so that
/// CSV blocks type it differently; `tier` is a category that encodes the
/// label.
fn splits(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let mut rng = Rng(0x1eaf_2026_1123_0001);
    let mut train = String::from("id,text,amount,code,tier,day,leak,label\n");
    let mut rows = Vec::new();
    for i in 0..3000 {
        let label = rng.below(3);
        let day = if i % 97 == 0 {
            "2026-03-05"
        } else {
            "2026-02-10"
        };
        let code = if i < 2000 {
            rng.below(50).to_string()
        } else {
            "n/a".to_string()
        };
        let row = format!(
            "{},{}.{:02},{code},tier-{label},{day},{},{label}",
            text(&mut rng),
            rng.below(10_000),
            rng.below(100),
            label as f64 * 10.0 + rng.below(100) as f64 / 100.0
        );
        train.push_str(&format!("{i},{row}\n"));
        rows.push(row);
    }
    let mut test = String::from("id,text,amount,code,tier,day,leak,label\n");
    for j in 0..400 {
        if j < 30 {
            test.push_str(&format!("{},{}\n", 10_000 + j, rows[50 * j + 7]));
        } else if j < 90 {
            let src = &rows[31 * j];
            let (t, rest) = src.split_once(',').unwrap();
            let mut words: Vec<&str> = t.split(' ').collect();
            let at = rng.below(words.len());
            words[at] = "changed";
            test.push_str(&format!("{},{},{rest}\n", 10_000 + j, words.join(" ")));
        } else {
            test.push_str(&format!(
                "{},{},1,2,tier-0,2026-03-01,0.5,0\n",
                10_000 + j,
                text(&mut rng)
            ));
        }
    }
    let (a, b) = (dir.join("train.csv"), dir.join("test.csv"));
    std::fs::write(&a, train).unwrap();
    std::fs::write(&b, test).unwrap();
    (a, b)
}

fn options() -> AuditOptions {
    AuditOptions {
        label: Some("label".into()),
        ignore: vec!["id".into()],
        text: Some("text".into()),
        time: Some("day".into()),
        split_time: Some("2026-03-01".into()),
        ..AuditOptions::default()
    }
}

fn chunked(train: &Path, test: &Path, o: &AuditOptions, c: ChunkOptions) -> Audit {
    let train_chunks = TableChunks::open(train, c).unwrap();
    let test_chunks = TableChunks::open(test, c).unwrap();
    let mut a = SplitAuditor::new(
        "train",
        train_chunks.names(),
        "test",
        test_chunks.names(),
        o,
    )
    .unwrap();
    for chunk in test_chunks {
        let chunk = chunk.unwrap();
        assert!(chunk.rows > 0, "chunks are never empty");
        a.add_test(&chunk).unwrap();
    }
    for chunk in train_chunks {
        let chunk = chunk.unwrap();
        assert!(chunk.rows > 0, "chunks are never empty");
        a.add_train(&chunk).unwrap();
    }
    a.finish().unwrap()
}

fn assert_same(a: &Audit, b: &Audit) {
    assert_eq!((a.train_rows, a.test_rows), (b.train_rows, b.test_rows));
    assert_eq!(a.exact_duplicates, b.exact_duplicates);
    let pairs = |x: &Audit| {
        x.near_duplicates
            .iter()
            .map(|p| (p.0, p.1, (p.2 * 1e9).round() as i64))
            .collect::<Vec<_>>()
    };
    assert_eq!(pairs(a), pairs(b));
    assert_eq!(a.newer_training_rows, b.newer_training_rows);
    assert_eq!(a.leaking_features.len(), b.leaking_features.len());
    for (x, y) in a.leaking_features.iter().zip(&b.leaking_features) {
        assert_eq!((&x.0, &x.1), (&y.0, &y.1));
        assert!((x.2 - y.2).abs() < 1e-9, "{x:?} vs {y:?}");
    }
    assert_eq!(a.findings.len(), b.findings.len());
}

#[test]
fn csv_blocks_give_the_whole_split_audit() {
    let dir = tempfile::tempdir().unwrap();
    let (train, test) = splits(dir.path());
    let o = options();
    let whole = audit(
        &read_table(&train).unwrap(),
        &read_table(&test).unwrap(),
        "train",
        "test",
        &o,
    )
    .unwrap();
    // What was planted is what the audit finds.
    assert_eq!(
        whole.exact_duplicates,
        (0..30).map(|j| (50 * j + 7, j)).collect::<Vec<_>>()
    );
    let near: Vec<(usize, usize)> = whole.near_duplicates.iter().map(|p| (p.0, p.1)).collect();
    let planted: Vec<(usize, usize)> = (30..90).map(|j| (31 * j, j)).collect();
    let hit = planted.iter().filter(|p| near.contains(p)).count();
    assert!(hit >= 57, "{hit} of 60 planted near-copies found");
    assert_eq!(
        whole.newer_training_rows,
        (0..3000).step_by(97).collect::<Vec<_>>()
    );
    let leaking: Vec<&str> = whole
        .leaking_features
        .iter()
        .map(|f| f.0.as_str())
        .collect();
    assert_eq!(leaking, ["tier", "leak"]);
    assert_eq!(whole.screened_rows, Some(3000));
    for bytes in [1500, 7000, 64 << 10] {
        let c = ChunkOptions {
            csv_bytes: bytes,
            ..ChunkOptions::default()
        };
        assert_same(&chunked(&train, &test, &o, c), &whole);
    }
}

#[test]
fn parquet_batches_give_the_whole_split_audit() {
    let dir = tempfile::tempdir().unwrap();
    let (train_csv, test_csv) = splits(dir.path());
    let (train, test) = (
        read_table(&train_csv).unwrap(),
        read_table(&test_csv).unwrap(),
    );
    let (train_pq, test_pq) = (
        dir.path().join("train.parquet"),
        dir.path().join("test.parquet"),
    );
    write_parquet(&train, &train_pq, 700);
    write_parquet(&test, &test_pq, 700);
    let o = options();
    let whole = audit(&train, &test, "train", "test", &o).unwrap();
    for rows in [333, 5000] {
        let c = ChunkOptions {
            rows,
            whole_bytes: 0,
            ..ChunkOptions::default()
        };
        assert_same(&chunked(&train_pq, &test_pq, &o, c), &whole);
    }
    // Small files are decoded whole.
    assert_same(
        &chunked(&train_pq, &test_pq, &o, ChunkOptions::default()),
        &whole,
    );
}

#[test]
fn a_sampled_screen_still_finds_the_leaking_features() {
    let dir = tempfile::tempdir().unwrap();
    let (train, test) = splits(dir.path());
    let o = AuditOptions {
        screen_rows: 400,
        ..options()
    };
    let c = ChunkOptions {
        csv_bytes: 5000,
        ..ChunkOptions::default()
    };
    let a = chunked(&train, &test, &o, c);
    assert_eq!(a.screened_rows, Some(400));
    let leaking: Vec<&str> = a.leaking_features.iter().map(|f| f.0.as_str()).collect();
    assert_eq!(leaking, ["tier", "leak"]);
    let b = chunked(&train, &test, &o, c);
    assert_same(&a, &b);
    let message = &a
        .findings
        .iter()
        .find(|f| f.rule == "MLS-DATA-014")
        .unwrap()
        .message;
    assert!(
        message.contains("uniform sample of 400 of 3000 rows"),
        "{message}"
    );
}

#[test]
fn a_split_with_no_rows_audits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let (train, _) = splits(dir.path());
    let empty = dir.path().join("empty.csv");
    std::fs::write(&empty, "id,text,amount,code,tier,day,leak,label\n").unwrap();
    let o = options();
    let a = chunked(&train, &empty, &o, ChunkOptions::default());
    assert_eq!((a.train_rows, a.test_rows), (3000, 0));
    assert!(a.exact_duplicates.is_empty() && a.near_duplicates.is_empty());
    let b = chunked(&empty, &train, &o, ChunkOptions::default());
    assert_eq!((b.train_rows, b.test_rows), (0, 3000));
    assert!(b.leaking_features.is_empty());
}

#[test]
fn an_option_naming_a_missing_column_is_refused_before_reading() {
    let names: Vec<String> = ["a", "b"].iter().map(|s| s.to_string()).collect();
    let o = AuditOptions {
        text: Some("body".into()),
        ..AuditOptions::default()
    };
    let err = SplitAuditor::new("train.csv", &names, "test.csv", &names, &o)
        .err()
        .unwrap();
    assert_eq!(err, "train.csv has no column `body`");
    let o = AuditOptions {
        label: Some("y".into()),
        ..AuditOptions::default()
    };
    let err = SplitAuditor::new("train.csv", &names, "test.csv", &names, &o)
        .err()
        .unwrap();
    assert_eq!(err, "train.csv has no label column `y`");
    let other: Vec<String> = vec!["c".into()];
    let err = SplitAuditor::new(
        "train.csv",
        &names,
        "test.csv",
        &other,
        &AuditOptions::default(),
    )
    .err()
    .unwrap();
    assert_eq!(err, "train and test share no column to compare");
}

/// Rows `range` of a table, types kept.
fn rows_of(t: &Table, range: std::ops::Range<usize>) -> Table {
    let columns = t
        .columns
        .iter()
        .map(|c| Column {
            data: match &c.data {
                ColumnData::Int(v) => ColumnData::Int(v[range.clone()].to_vec()),
                ColumnData::Float(v) => ColumnData::Float(v[range.clone()].to_vec()),
                ColumnData::Bool(v) => ColumnData::Bool(v[range.clone()].to_vec()),
                ColumnData::Str(v) => {
                    let mut s = mlsec_data::table::TextColumn::default();
                    for r in range.clone() {
                        s.push(v.get(r));
                    }
                    ColumnData::Str(s)
                }
            },
            ..c.clone()
        })
        .collect();
    Table {
        columns,
        rows: range.len(),
    }
}

/// A row: a number, a short text, a label.
type Row = (i64, String, u8);

fn small_split() -> impl Strategy<Value = (Vec<Row>, Vec<Row>)> {
    let row = (0i64..6, "(a|b|c)( (a|b|c)){0,3}", 0u8..3);
    (
        prop::collection::vec(row.clone(), 1..60),
        prop::collection::vec(row, 0..30),
    )
}

/// Options for the small splits: short shingles, a low threshold.
fn small_options() -> AuditOptions {
    AuditOptions {
        label: Some("label".into()),
        text: Some("t".into()),
        minhash: mlsec_data::leakage::minhash::MinHashParams {
            shingle: 2,
            threshold: 0.3,
            ..Default::default()
        },
        ..AuditOptions::default()
    }
}

/// `cuts` within `0..=rows`, with both ends, in order (repeats kept: an
/// empty chunk is a cut too).
fn cut_points(cuts: Vec<usize>, rows: usize) -> Vec<usize> {
    let mut bounds: Vec<usize> = cuts.into_iter().map(|c| c.min(rows)).collect();
    bounds.extend([0, rows]);
    bounds.sort_unstable();
    bounds
}

fn names(t: &Table) -> Vec<String> {
    t.columns.iter().map(|c| c.name.clone()).collect()
}

fn table_of(rows: &[Row]) -> Table {
    let mut csv = String::from("x,t,label\n");
    for (x, t, l) in rows {
        csv.push_str(&format!("{x},{t},{l}\n"));
    }
    mlsec_data::table::parse_csv(csv.as_bytes(), &Default::default(), false).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// However the training split is cut into chunks, the audit is the
    /// one of the whole split.
    #[test]
    fn any_cut_of_the_training_split_gives_the_same_audit(
        (train, test) in small_split(),
        cuts in prop::collection::vec(0usize..60, 0..5),
    ) {
        let (train, test) = (table_of(&train), table_of(&test));
        let o = small_options();
        let whole = audit(&train, &test, "train", "test", &o).unwrap();
        let mut a = SplitAuditor::new("train", &names(&train), "test", &names(&test), &o).unwrap();
        a.add_test(&test).unwrap();
        let bounds = cut_points(cuts, train.rows);
        for w in bounds.windows(2) {
            a.add_train(&rows_of(&train, w[0]..w[1])).unwrap();
        }
        assert_same(&a.finish().unwrap(), &whole);
    }

    /// However the test split is cut into blocks (one per chunk), the
    /// audit is the one of the whole split.
    #[test]
    fn any_blocking_of_the_test_split_gives_the_same_audit(
        (train, test) in small_split(),
        cuts in prop::collection::vec(0usize..30, 0..5),
    ) {
        let (train, test) = (table_of(&train), table_of(&test));
        let o = small_options();
        let whole = audit(&train, &test, "train", "test", &o).unwrap();
        let a = SplitAuditor::new("train", &names(&train), "test", &names(&test), &o).unwrap();
        let mut bounds = cut_points(cuts, test.rows);
        bounds.dedup();
        let blocks: Vec<Result<Table, String>> =
            bounds.windows(2).map(|w| Ok(rows_of(&test, w[0]..w[1]))).collect();
        let once = || vec![Ok::<_, String>(train.clone())].into_iter();
        let blocked =
            audit_in_blocks(a, blocks.into_iter(), once(), || Ok(once()), 0, |_, _| {}).unwrap();
        let held = bounds.len().saturating_sub(1);
        prop_assert_eq!(blocked.test_blocks, (held > 1).then_some(held));
        assert_same(&blocked, &whole);
    }
}

/// `test` with every row dated 2026-03-01 but row `early`, dated
/// 2026-02-01: the earliest test row, inside the split rather than at
/// either end.
fn with_one_early_test_row(test: &Path, early: usize) -> std::path::PathBuf {
    let text = std::fs::read_to_string(test).unwrap();
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        let line = line
            .replace(",2026-02-10,", ",2026-03-01,")
            .replace(",2026-03-05,", ",2026-03-01,");
        if i == early + 1 {
            out.push_str(&line.replace(",2026-03-01,", ",2026-02-01,"));
        } else {
            out.push_str(&line);
        }
        out.push('\n');
    }
    let path = test.with_file_name("test-early.csv");
    std::fs::write(&path, out).unwrap();
    path
}

/// The blocked audit of `train` and `test` read in chunks of `c`, with a
/// test block budget of `bytes`; the readings it reported.
fn in_blocks(
    train: &Path,
    test: &Path,
    o: &AuditOptions,
    c: ChunkOptions,
    bytes: usize,
) -> (Audit, Vec<Reading>) {
    let open = || TableChunks::open(train, c);
    let (train_chunks, test_chunks) = (open().unwrap(), TableChunks::open(test, c).unwrap());
    let a = SplitAuditor::new(
        "train",
        train_chunks.names(),
        "test",
        test_chunks.names(),
        o,
    )
    .unwrap();
    let mut seen = Vec::new();
    let audit = audit_in_blocks(a, test_chunks, train_chunks, open, bytes, |r, _| {
        if seen.last() != Some(&r) {
            seen.push(r);
        }
    })
    .unwrap();
    (audit, seen)
}

#[test]
fn a_test_split_held_in_blocks_gives_the_one_block_audit() {
    let dir = tempfile::tempdir().unwrap();
    let (train, test) = splits(dir.path());
    let test = with_one_early_test_row(&test, 200);
    // No split time: the cut is the earliest test row, in a middle block.
    let o = AuditOptions {
        split_time: None,
        ..options()
    };
    let whole = audit(
        &read_table(&train).unwrap(),
        &read_table(&test).unwrap(),
        "train",
        "test",
        &o,
    )
    .unwrap();
    assert_eq!(whole.exact_duplicates.len(), 30);
    assert!(whole.near_duplicates.len() >= 57);
    assert_eq!(whole.newer_training_rows.len(), 3000);
    assert_eq!(whole.leaking_features.len(), 2);
    let c = ChunkOptions {
        csv_bytes: 4000,
        ..ChunkOptions::default()
    };
    for bytes in [0, 60_000, usize::MAX] {
        let (blocked, readings) = in_blocks(&train, &test, &o, c, bytes);
        assert_same(&blocked, &whole);
        let blocks = readings
            .iter()
            .filter(|r| matches!(r, Reading::Train { .. }))
            .count();
        // Each block is read, then the training split streams past it;
        // only the final pass is the last.
        let expected: Vec<Reading> = (0..blocks)
            .flat_map(|block| {
                [
                    Reading::Test { block },
                    Reading::Train {
                        block,
                        last: block + 1 == blocks,
                    },
                ]
            })
            .collect();
        assert_eq!(readings, expected, "budget {bytes}");
        if bytes == usize::MAX {
            assert_eq!(blocks, 1);
        } else {
            assert!(blocks >= 3, "budget {bytes}: {blocks} blocks");
        }
    }
}

#[test]
fn a_training_split_that_changes_between_blocks_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (train, test) = splits(dir.path());
    let (train, test) = (read_table(&train).unwrap(), read_table(&test).unwrap());
    let o = options();
    let a = SplitAuditor::new("train.csv", &names(&train), "test", &names(&test), &o).unwrap();
    let chunks = |t: &Table, at: &[usize]| -> std::vec::IntoIter<Result<Table, String>> {
        at.windows(2)
            .map(|w| Ok(rows_of(t, w[0]..w[1])))
            .collect::<Vec<_>>()
            .into_iter()
    };
    let first = chunks(&train, &[0, 1000, 3000]);
    let shorter = || Ok::<_, String>(chunks(&train, &[0, 1000, 2999]));
    let err = audit_in_blocks(
        a,
        chunks(&test, &[0, 200, 400]),
        first,
        shorter,
        0,
        |_, _| {},
    )
    .err()
    .unwrap();
    assert_eq!(
        err,
        "train.csv changed while it was audited: 3000 rows in one read, 2999 in the next"
    );
}
