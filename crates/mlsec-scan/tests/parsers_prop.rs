//! Property tests: the pickle machine and the zip reader never panic and
//! stay within their limits on any input.

use mlsec_scan::pickle::{analyse, Limits};
use mlsec_scan::{scan_bytes, zipread, ScanOptions};
use proptest::prelude::*;

/// Opcode-rich noise: reaches far deeper into the machine than random bytes.
fn pickle_like() -> impl Strategy<Value = Vec<u8>> {
    let atoms = prop::sample::select(vec![
        b"\x80\x04".to_vec(),
        b"(".to_vec(),
        b"t".to_vec(),
        b"R".to_vec(),
        b"b".to_vec(),
        b"\x93".to_vec(),
        b"\x81".to_vec(),
        b"\x92".to_vec(),
        b"o".to_vec(),
        b"0".to_vec(),
        b"2".to_vec(),
        b"1".to_vec(),
        b"\x94".to_vec(),
        b"h\x00".to_vec(),
        b"q\x01".to_vec(),
        b"]".to_vec(),
        b"a".to_vec(),
        b"e".to_vec(),
        b"}".to_vec(),
        b"s".to_vec(),
        b"u".to_vec(),
        b"N".to_vec(),
        b"\x8c\x02os".to_vec(),
        b"\x8c\x06system".to_vec(),
        b"cos\nsystem\n".to_vec(),
        b"ios\nsystem\n".to_vec(),
        b".".to_vec(),
        b"\x85".to_vec(),
        b"\x86".to_vec(),
        b"\x87".to_vec(),
        b"Q".to_vec(),
        b"\x95\x05\x00\x00\x00\x00\x00\x00\x00".to_vec(),
        b"C\x03abc".to_vec(),
        b"K\x07".to_vec(),
        b"\x8f".to_vec(),
        b"\x90".to_vec(),
        b"\x91".to_vec(),
        b"\x82\x01".to_vec(),
        b"cpickle\nloads\n".to_vec(),
    ]);
    prop::collection::vec(atoms, 0..64).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn pickle_machine_never_panics_on_noise(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let a = analyse(&bytes, &Limits::default());
        prop_assert!(a.end as usize <= bytes.len());
    }

    #[test]
    fn pickle_machine_never_panics_on_opcode_soup(bytes in pickle_like()) {
        let limits = Limits { max_ops: 10_000, max_stack: 1_000, max_memo: 1_000, ..Limits::default() };
        let a = analyse(&bytes, &limits);
        prop_assert!(a.ops <= 10_000 + 1);
        // Every call recorded names a global the stream imported.
        for g in &a.globals {
            prop_assert!(g.imports >= 1);
        }
    }

    #[test]
    fn zip_reader_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        let mut z = b"PK\x03\x04".to_vec();
        z.extend_from_slice(&bytes);
        let ar = zipread::read(&z, 100);
        for m in &ar.members {
            let _ = zipread::member_data(&z, m, 1 << 16);
        }
        let _ = scan_bytes("x", &z, &ScanOptions::default());
    }
}
