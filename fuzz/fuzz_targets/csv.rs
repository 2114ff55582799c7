#![no_main]
//! CSV reader with type inference, whole and in chunks, and the leakage
//! audit of whatever table it reads (the table against itself, in two
//! chunks, with its first column as text and its last as the label; and
//! the same with the test split held in two blocks).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let opts = mlsec_data::table::CsvOptions::default();
    if let Ok(t) = mlsec_data::table::parse_csv(data, &opts, false) {
        for c in &t.columns {
            assert_eq!(c.len(), t.rows);
        }
        audit_against_itself(&t);
    }
    // The chunked reader, with blocks small enough to cut most inputs
    // several times (the first byte picks the block size).
    let block = usize::from(data.first().copied().unwrap_or(1)) + 1;
    if let Ok(chunks) = mlsec_data::stream::FrameChunks::csv_from_reader(
        std::io::Cursor::new(data.to_vec()),
        None,
        block,
    ) {
        let width = chunks.names().len();
        for chunk in chunks {
            let Ok(chunk) = chunk else { break };
            assert!(chunk.rows > 0);
            assert_eq!(chunk.columns.len(), width);
            for c in &chunk.columns {
                assert_eq!(c.len(), chunk.rows);
            }
        }
    }
});

fn audit_against_itself(t: &mlsec_data::table::Table) {
    use mlsec_data::leakage::{audit_in_blocks, AuditOptions, SplitAuditor};
    let names: Vec<String> = t.columns.iter().map(|c| c.name.clone()).collect();
    let o = AuditOptions {
        text: names.first().cloned(),
        label: names.last().cloned().filter(|_| names.len() > 1),
        screen_rows: 3,
        ..AuditOptions::default()
    };
    let Ok(mut auditor) = SplitAuditor::new("train", &names, "test", &names, &o) else {
        return;
    };
    // A test split with no rows: nothing to match.
    let mut lone = SplitAuditor::new("train", &names, "test", &names, &o).unwrap();
    lone.add_train(t).unwrap();
    assert!(lone.finish().unwrap().near_duplicates.is_empty());
    auditor.add_test(t).unwrap();
    auditor.add_train(t).unwrap();
    auditor.add_train(t).unwrap();
    let a = auditor.finish().unwrap();
    // Every test row is in the training split.
    assert_eq!(a.exact_duplicates.len(), t.rows);
    assert_eq!(a.train_rows, 2 * t.rows);
    // The same, with the test split held in blocks of one chunk each.
    let blocked = SplitAuditor::new("train", &names, "test", &names, &o).unwrap();
    let chunks = |n: usize| {
        (0..n)
            .map(|_| Ok::<_, String>(t.clone()))
            .collect::<Vec<_>>()
            .into_iter()
    };
    let b = audit_in_blocks(
        blocked,
        chunks(2),
        chunks(1),
        || Ok(chunks(1)),
        0,
        |_, _| {},
    )
    .unwrap();
    assert_eq!(b.exact_duplicates.len(), 2 * t.rows);
    assert_eq!((b.train_rows, b.test_rows), (t.rows, 2 * t.rows));
}
