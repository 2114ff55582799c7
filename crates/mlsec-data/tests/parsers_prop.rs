//! Property tests for the parsers of untrusted bytes: they never panic, they
//! round-trip what the writers produce, and they reject every truncation.

use mlsec_data::{idx, npy, table, DType, NdArray};
use proptest::prelude::*;

fn dtype() -> impl Strategy<Value = DType> {
    prop_oneof![
        Just(DType::Bool),
        Just(DType::U8),
        Just(DType::I8),
        Just(DType::U16),
        Just(DType::I16),
        Just(DType::U32),
        Just(DType::I32),
        Just(DType::U64),
        Just(DType::I64),
        Just(DType::F16),
        Just(DType::F32),
        Just(DType::F64),
    ]
}

fn array(types: impl Strategy<Value = DType>) -> impl Strategy<Value = NdArray> {
    (types, prop::collection::vec(0usize..5, 1..4)).prop_flat_map(|(dt, shape)| {
        let n: usize = shape.iter().product::<usize>() * dt.size();
        prop::collection::vec(any::<u8>(), n).prop_map(move |data| {
            let data = if dt == DType::Bool {
                data.iter().map(|b| b & 1).collect()
            } else {
                data
            };
            NdArray::new(dt, shape.clone(), data).unwrap()
        })
    })
}

/// A plausible header followed by arbitrary bytes: reaches deeper than pure noise.
fn npy_like() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(vec!["<f4", "|u1", ">i8", "|O", "<U4", "|b1", "<c8", "x"]),
        prop::collection::vec(0i64..1_000_000_000_000, 0..5),
        any::<bool>(),
        prop::collection::vec(any::<u8>(), 0..64),
        prop::sample::select(vec![1u8, 2, 3, 4]),
    )
        .prop_map(|(descr, shape, fortran, data, major)| {
            let shape = shape.iter().map(|d| format!("{d},")).collect::<String>();
            let f = if fortran { "True" } else { "False" };
            let header =
                format!("{{'descr': '{descr}', 'fortran_order': {f}, 'shape': ({shape}), }}\n");
            let mut v = b"\x93NUMPY".to_vec();
            v.push(major);
            v.push(0);
            if major == 1 {
                v.extend_from_slice(&(header.len() as u16).to_le_bytes());
            } else {
                v.extend_from_slice(&(header.len() as u32).to_le_bytes());
            }
            v.extend_from_slice(header.as_bytes());
            v.extend_from_slice(&data);
            v
        })
}

/// Appends `lines` (fields joined by commas) to `text`, then parses it with
/// the split-on-delimiters path and the quote-aware parser: the same table
/// (compared through Debug output, which tells -0.0 from 0.0 where `==`
/// does not), or the same error.
fn fast_and_general_parsers_agree(
    mut text: String,
    lines: &[Vec<String>],
    end: &str,
) -> Result<(), TestCaseError> {
    for l in lines {
        text.push_str(&l.join(","));
        text.push_str(end);
    }
    let fast = table::parse_csv(text.as_bytes(), &table::CsvOptions::default(), false);
    let general = table::parse_csv(
        text.as_bytes(),
        &table::CsvOptions {
            general_parser: true,
            ..Default::default()
        },
        false,
    );
    match (fast, general) {
        (Ok(f), Ok(g)) => prop_assert_eq!(format!("{f:?}"), format!("{g:?}")),
        (Err(f), Err(g)) => prop_assert_eq!(f.to_string(), g.to_string()),
        (f, g) => prop_assert!(false, "fast {:?} vs general {:?}", f, g),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn npy_never_panics_on_noise(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = npy::parse(&bytes);
        let mut with_magic = b"\x93NUMPY\x01\x00".to_vec();
        with_magic.extend_from_slice(&bytes);
        let _ = npy::parse(&with_magic);
    }

    #[test]
    fn npy_never_panics_on_plausible_headers(bytes in npy_like()) {
        if let Ok(f) = npy::parse(&bytes) {
            prop_assert_eq!(f.array.data.len(), f.array.len() * f.array.dtype.size());
        }
    }

    #[test]
    fn npy_round_trips(a in array(dtype())) {
        let bytes = npy::write(&a);
        let f = npy::parse(&bytes).unwrap();
        prop_assert_eq!(&f.array, &a);
        prop_assert_eq!(f.trailing_bytes, 0);
        // Every strict prefix that cuts into the data is rejected, never misread.
        if !a.data.is_empty() {
            prop_assert!(npy::parse(&bytes[..bytes.len() - 1]).is_err());
        }
    }

    #[test]
    fn npz_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let mut zip = b"PK\x03\x04".to_vec();
        zip.extend_from_slice(&bytes);
        let _ = npy::parse_npz(&zip, 1 << 20);
    }

    #[test]
    fn idx_never_panics_on_noise(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = idx::parse(&bytes);
        let _ = idx::parse_header(&bytes);
        let _ = idx::parse_gzip(&bytes, 1 << 20);
    }

    #[test]
    fn idx_never_panics_on_plausible_headers(
        code in prop::sample::select(vec![0x08u8, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x00, 0xFF]),
        dims in prop::collection::vec(any::<u32>(), 0..10),
        data in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut v = vec![0, 0, code, dims.len() as u8];
        for d in &dims { v.extend_from_slice(&d.to_be_bytes()); }
        v.extend_from_slice(&data);
        if let Ok(f) = idx::parse(&v) {
            prop_assert_eq!(f.array.data.len() + f.trailing_bytes + f.header.data_offset, v.len());
        }
    }

    #[test]
    fn idx_round_trips(a in array(prop_oneof![Just(DType::U8), Just(DType::I8), Just(DType::I16), Just(DType::I32), Just(DType::F32), Just(DType::F64)])) {
        let bytes = idx::write(&a).unwrap();
        let f = idx::parse(&bytes).unwrap();
        prop_assert_eq!(&f.array, &a);
        if !a.data.is_empty() {
            prop_assert!(idx::parse(&bytes[..bytes.len() - 1]).is_err());
        }
    }

    /// The split-on-delimiters path gives what the quote-aware parser
    /// gives, errors included (blank lines, CRLF, padding, gaps, ragged rows).
    #[test]
    fn csv_fast_path_matches_the_general_parser(
        lines in prop::collection::vec(
            prop::collection::vec(prop_oneof![
                Just(String::new()), "-?[0-9]{1,4}", "-?[0-9]{1,3}\\.[0-9]{0,3}", "[a-z]{1,5}", " [0-9] ", "true|FALSE"
            ], 0..5),
            0..40),
        crlf in any::<bool>(),
    ) {
        let end = if crlf { "\r\n" } else { "\n" };
        let text = format!("a,b,c{end}");
        fast_and_general_parsers_agree(text, &lines, end)?;
    }

    /// Numbers are parsed where they start while a column keeps the type
    /// its first 100 lines suggest: after such lines, every kind of number
    /// and near-number gives the table the quote-aware parser gives.
    #[test]
    fn csv_number_fields_match_the_general_parser(
        lines in prop::collection::vec(
            prop::collection::vec(prop_oneof![
                Just(String::new()),
                "[+-]?[0-9]{1,21}",
                "[+-]?[0-9]{0,4}\\.?[0-9]{0,19}([eE][+-]?[0-9]{0,3})?",
                "-?(inf|infinity|INF)",
                "-0|-|\\.|-\\.|0x1F|1_0|[0-9] | [0-9]|1e5x",
            ], 3),
            0..30),
        crlf in any::<bool>(),
        ints_first in any::<bool>(),
    ) {
        let end = if crlf { "\r\n" } else { "\n" };
        let mut text = format!("a,b,c{end}");
        for i in 0..101 {
            // Columns a and c start as integers, b as floats (or the other way).
            if ints_first {
                text.push_str(&format!("{i},{i}.5,-{i}{end}"));
            } else {
                text.push_str(&format!("{i}.25,{i},1e{}{end}", i % 7));
            }
        }
        fast_and_general_parsers_agree(text, &lines, end)?;
    }

    #[test]
    fn csv_never_panics(text in "[a-z0-9,.\"\\n\\t -]{0,200}") {
        if let Ok(t) = table::parse_csv(text.as_bytes(), &table::CsvOptions::default(), false) {
            for c in &t.columns {
                prop_assert_eq!(c.len(), t.rows);
            }
        }
    }
}
