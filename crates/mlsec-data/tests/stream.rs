//! The chunked reader gives what reading the whole file gives, whatever
//! the chunk size, and the drift monitor gives the same windows from
//! chunks as from a whole frame.

use mlsec_data::drift::{self, DriftOptions, Reference};
use mlsec_data::frame::Frame;
use mlsec_data::reference::{self, ReferenceData, ReferenceOptions};
use mlsec_data::stream::{ChunkOptions, FrameChunks};
use mlsec_data::{npy, DType, NdArray};
use proptest::prelude::*;
use std::sync::Arc;

fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    path.display().to_string()
}

/// Every chunk of `path`, joined back into one frame.
fn joined(path: &str, opts: ChunkOptions) -> Result<Frame, String> {
    let chunks = FrameChunks::open(path, None, opts).map_err(|e| e.to_string())?;
    let mut f = Frame {
        names: chunks.names().to_vec(),
        columns: vec![Vec::new(); chunks.names().len()],
        labels: None,
        rows: 0,
        skipped: chunks.skipped().to_vec(),
    };
    for chunk in chunks {
        let chunk = chunk.map_err(|e| e.to_string())?;
        assert!(chunk.rows > 0, "chunks are never empty");
        assert_eq!(chunk.names, f.names);
        for (all, part) in f.columns.iter_mut().zip(&chunk.columns) {
            assert_eq!(part.len(), chunk.rows);
            all.extend_from_slice(part);
        }
        f.rows += chunk.rows;
    }
    Ok(f)
}

/// Same features, same values (NaN equal to NaN).
fn assert_same_features(chunked: &Frame, whole: &Frame) {
    assert_eq!(chunked.names, whole.names);
    assert_eq!(chunked.skipped, whole.skipped);
    assert_eq!(chunked.rows, whole.rows);
    for (name, (a, b)) in whole
        .names
        .iter()
        .zip(chunked.columns.iter().zip(&whole.columns))
    {
        assert_eq!(a.len(), b.len(), "{name}");
        for (r, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                x == y || (x.is_nan() && y.is_nan()),
                "{name} row {r}: {x} vs {y}"
            );
        }
    }
}

/// Read in chunks of each of `rows_per_chunk` rows, `path` joins into
/// `whole`; so it does read whole when it is small enough for that.
fn assert_chunks_join_into(path: &str, whole: &Frame, rows_per_chunk: &[usize]) {
    for &rows in rows_per_chunk {
        let opts = ChunkOptions {
            rows,
            whole_bytes: 0,
            ..ChunkOptions::default()
        };
        assert_same_features(&joined(path, opts).unwrap(), whole);
    }
    assert_same_features(&joined(path, ChunkOptions::default()).unwrap(), whole);
}

fn cell() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "-?[0-9]{1,4}",
        3 => "-?[0-9]{1,3}\\.[0-9]{1,3}",
        1 => Just(String::new()),
        1 => "\"[0-9]{1,3}\"",
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{1,6}",
        // Quoted text holding the delimiter, a line feed or a quote.
        "\"[a-z]{0,3}(,|\n|\r\n|\"\")[a-z]{0,3}\"",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Cut into blocks of any size, a CSV file reads as the whole file
    /// reads: quoted line feeds, CRLF, blank lines and ragged rows (the
    /// same line number in the error) included.
    #[test]
    fn chunked_csv_matches_the_whole_file(
        rows in prop::collection::vec((cell(), cell(), text(), 0u8..3), 0..40),
        crlf in any::<bool>(),
        blank_every in 0usize..6,
        ragged_at in prop::option::of(0usize..40),
        block in 1usize..300,
    ) {
        let end = if crlf { "\r\n" } else { "\n" };
        // The first row has every value, as the first chunk decides the
        // features (what this test compares is the cutting).
        let mut csv = format!("a,b,note,label{end}1,2.5,x,0{end}");
        for (i, (a, b, t, label)) in rows.iter().enumerate() {
            if Some(i) == ragged_at {
                csv.push_str(&format!("{a},{b}{end}"));
            }
            csv.push_str(&format!("{a},{b},{t},{label}{end}"));
            if blank_every > 0 && i % blank_every == 0 {
                csv.push_str(end);
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "t.csv", csv.as_bytes());
        let whole = Frame::load(&path, None).map_err(|e| e.to_string());
        let chunked = joined(&path, ChunkOptions { rows: 1, csv_bytes: block, ..ChunkOptions::default() });
        match (whole, chunked) {
            (Ok(w), Ok(c)) => assert_same_features(&c, &w),
            (Err(w), Err(c)) => prop_assert_eq!(w, c),
            (w, c) => prop_assert!(false, "whole {:?} vs chunked {:?}", w.map(|f| f.rows), c.map(|f| f.rows)),
        }
    }
}

#[test]
fn a_feature_that_turns_to_text_later_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("x,y\n");
    for i in 0..200 {
        csv.push_str(&format!("{i},{}\n", i * 2));
    }
    csv.push_str("oops,1\n");
    let path = write(&dir, "t.csv", csv.as_bytes());
    let err = joined(
        &path,
        ChunkOptions {
            rows: 1,
            csv_bytes: 256,
            ..ChunkOptions::default()
        },
    )
    .unwrap_err();
    assert!(
        err.contains("column 'x' holds text ('oops') at row 200"),
        "{err}"
    );
    assert!(err.contains("first chunk"), "{err}");
    // Read whole, the same file makes `x` a text column instead.
    let whole = Frame::load(&path, None).unwrap();
    assert_eq!(whole.skipped, ["x"]);
}

#[test]
fn a_record_without_end_is_refused_not_buffered_forever() {
    let dir = tempfile::tempdir().unwrap();
    // An unterminated quote swallows the rest of the file; the reader
    // keeps reading until the end and reports what the whole file reports.
    let csv = format!("a,b\n1,x\n3,\"{}\n", "z".repeat(10_000));
    let path = write(&dir, "t.csv", csv.as_bytes());
    let chunked = joined(
        &path,
        ChunkOptions {
            rows: 1,
            csv_bytes: 64,
            ..ChunkOptions::default()
        },
    );
    let whole = Frame::load(&path, None).unwrap();
    assert_eq!(whole.skipped, ["b"]);
    assert_same_features(&chunked.unwrap(), &whole);
}

#[test]
fn chunked_parquet_matches_the_whole_file() {
    use arrow_array::{ArrayRef, BooleanArray, Float32Array, Int64Array, RecordBatch, StringArray};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.parquet");
    let n = 23;
    let batch = RecordBatch::try_from_iter(vec![
        (
            "x",
            Arc::new(Float32Array::from(
                (0..n)
                    .map(|i| (i % 5 != 0).then_some(i as f32 * 0.5))
                    .collect::<Vec<_>>(),
            )) as ArrayRef,
        ),
        (
            "city",
            Arc::new(StringArray::from(
                (0..n).map(|i| format!("c{i}")).collect::<Vec<_>>(),
            )) as ArrayRef,
        ),
        (
            "n",
            Arc::new(Int64Array::from((0..n).map(|i| i * 3).collect::<Vec<_>>())) as ArrayRef,
        ),
        (
            "flag",
            Arc::new(BooleanArray::from(
                (0..n).map(|i| i % 2 == 0).collect::<Vec<_>>(),
            )) as ArrayRef,
        ),
        (
            "label",
            Arc::new(Int64Array::from((0..n).map(|i| i % 2).collect::<Vec<_>>())) as ArrayRef,
        ),
    ])
    .unwrap();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(5))
        .build();
    let file = std::fs::File::create(&path).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let path = path.display().to_string();
    let whole = Frame::load(&path, None).unwrap();
    assert_eq!(whole.names, ["x", "n", "flag"]);
    assert_chunks_join_into(&path, &whole, &[1, 3, 5, 7, 100]);
}

/// An `.npy` file as NumPy writes it, from row-major values.
fn npy_bytes(values: &[f64], shape: &[usize], fortran: bool, big_endian: bool) -> Vec<u8> {
    let rows = shape[0];
    let rest: usize = shape[1..].iter().product();
    // Fortran order: the first axis fastest, then the sample axes in
    // order (the flattened sample index in column-major order).
    let order: Vec<usize> = if fortran {
        let mut idx = Vec::new();
        let sample = &shape[1..];
        let mut fortran_cols: Vec<usize> = Vec::new();
        // Enumerate sample indices with the first sample axis fastest.
        let mut digits = vec![0usize; sample.len()];
        for _ in 0..rest {
            let c = digits
                .iter()
                .zip(sample)
                .fold(0, |acc, (&d, &n)| acc * n + d);
            fortran_cols.push(c);
            for (k, &n) in sample.iter().enumerate() {
                digits[k] += 1;
                if digits[k] < n {
                    break;
                }
                digits[k] = 0;
            }
        }
        for c in fortran_cols {
            for r in 0..rows {
                idx.push(r * rest + c);
            }
        }
        idx
    } else {
        (0..values.len()).collect()
    };
    let mut data = Vec::new();
    for i in order {
        if big_endian {
            data.extend_from_slice(&values[i].to_be_bytes());
        } else {
            data.extend_from_slice(&values[i].to_le_bytes());
        }
    }
    let shape_text: String = shape.iter().map(|d| format!("{d}, ")).collect();
    let header = format!(
        "{{'descr': '{}f8', 'fortran_order': {}, 'shape': ({shape_text}), }}\n",
        if big_endian { '>' } else { '<' },
        if fortran { "True" } else { "False" }
    );
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&data);
    out
}

#[test]
fn chunked_npy_matches_the_whole_file_in_every_layout() {
    let dir = tempfile::tempdir().unwrap();
    let shape = [7usize, 2, 3];
    let values: Vec<f64> = (0..42).map(|i| i as f64 * 1.5 - 3.0).collect();
    for (fortran, big_endian) in [(false, false), (true, false), (false, true), (true, true)] {
        let path = write(
            &dir,
            &format!("a{fortran}{big_endian}.npy"),
            &npy_bytes(&values, &shape, fortran, big_endian),
        );
        let whole = Frame::load(&path, None).unwrap();
        assert_eq!(
            whole.columns[4][2],
            values[2 * 6 + 4],
            "the loader's layout"
        );
        assert_chunks_join_into(&path, &whole, &[1, 2, 7, 64]);
    }
    // The writer's own files (1-D too).
    let a = NdArray::new(
        DType::I32,
        vec![5],
        (0..5i32).flat_map(|i| i.to_le_bytes()).collect(),
    )
    .unwrap();
    let path = write(&dir, "one.npy", &npy::write(&a));
    assert_chunks_join_into(&path, &Frame::load(&path, None).unwrap(), &[2]);
}

#[test]
fn a_truncated_npy_is_refused_before_any_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = npy_bytes(&[1.0; 12], &[6, 2], false, false);
    bytes.truncate(bytes.len() - 8);
    let path = write(&dir, "t.npy", &bytes);
    let err = FrameChunks::open(&path, None, ChunkOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("truncated NPY"), "{err}");
}

#[test]
fn drift_windows_from_chunks_equal_windows_from_the_whole_stream() {
    let dir = tempfile::tempdir().unwrap();
    let mut reference = String::from("u,v,label\n");
    for i in 0..400 {
        reference.push_str(&format!(
            "{},{},{}\n",
            (i * 37 % 101) as f64 / 7.0,
            i % 13,
            i % 2
        ));
    }
    let mut stream = String::from("u,v,label\n");
    for i in 0..333 {
        // The second half drifts.
        let shift = if i > 160 { 9.0 } else { 0.0 };
        stream.push_str(&format!(
            "{},{},{}\n",
            (i * 53 % 97) as f64 / 7.0 + shift,
            i % 13,
            i % 2
        ));
    }
    let reference = Frame::load(&write(&dir, "r.csv", reference.as_bytes()), None).unwrap();
    let stream_path = write(&dir, "s.csv", stream.as_bytes());
    let opts = DriftOptions {
        window: 50,
        permutations: 50,
        ..DriftOptions::default()
    };
    let whole =
        drift::monitor(&reference, &Frame::load(&stream_path, None).unwrap(), &opts).unwrap();
    assert_eq!(whole.len(), 7);
    assert!(whole.iter().any(|w| w.drifted) && !whole[0].drifted);
    for block in [40, 333, 1 << 20] {
        let chunks = FrameChunks::open(
            &stream_path,
            None,
            ChunkOptions {
                rows: 1,
                csv_bytes: block,
                ..ChunkOptions::default()
            },
        )
        .unwrap();
        let names = chunks.names().to_vec();
        let mut seen = 0;
        let chunked =
            drift::monitor_chunks(Reference::Whole(&reference), &names, chunks, &opts, |_| {
                seen += 1
            })
            .unwrap();
        assert_eq!(seen, whole.len());
        assert_eq!(
            serde_json::to_string(&chunked).unwrap(),
            serde_json::to_string(&whole).unwrap(),
            "block {block}"
        );
    }
    // A reference the monitor may sort in place is sorted after
    // `SORT_AFTER` windows; the windows after that are the same.
    let small_windows = DriftOptions {
        window: 10,
        ..opts.clone()
    };
    let stream_frame = Frame::load(&stream_path, None).unwrap();
    let unsorted = drift::monitor(&reference, &stream_frame, &small_windows).unwrap();
    assert!(unsorted.len() > 3 * drift::SORT_AFTER);
    let mut sortable = reference.clone();
    let sorted_later = drift::monitor_chunks(
        Reference::Sortable(&mut sortable),
        &reference.names,
        std::iter::once(Ok(stream_frame.clone())),
        &small_windows,
        |_| {},
    )
    .unwrap();
    assert_eq!(
        serde_json::to_string(&sorted_later).unwrap(),
        serde_json::to_string(&unsorted).unwrap()
    );
    assert!(sortable.columns[0].is_sorted_by(|a, b| a <= b));
    // A reference over its memory budget is sorted on disk and read twice
    // for MMD: the windows are the same, to the last bit.
    let reference_path = dir.path().join("r.csv").display().to_string();
    for budget in [8, 1000, 5000] {
        let open = || {
            FrameChunks::open(
                &reference_path,
                None,
                ChunkOptions {
                    csv_bytes: 500,
                    ..ChunkOptions::default()
                },
            )
        };
        let options = ReferenceOptions {
            memory_bytes: budget,
            spill_dir: Some(dir.path().to_path_buf()),
        };
        let mut data = reference::read(open().unwrap(), &options).unwrap();
        let ReferenceData::Sorted(sorted) = &mut data else {
            panic!("{budget} bytes hold less than the reference")
        };
        sorted
            .prepare_mmd(open, &drift::mmd_reference_rows(sorted.rows, &opts))
            .unwrap();
        let spilled = drift::monitor_chunks(
            Reference::from(&data),
            &reference.names,
            std::iter::once(Ok(Frame::load(&stream_path, None).unwrap())),
            &opts,
            |_| {},
        )
        .unwrap();
        assert_eq!(
            serde_json::to_string(&spilled).unwrap(),
            serde_json::to_string(&whole).unwrap(),
            "budget {budget}"
        );
    }
}
