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

mod formats_props {
    use mlsec_core::Location;
    use mlsec_scan::formats;
    use proptest::prelude::*;

    /// A safetensors file from a header of random entries over random data.
    fn safetensors_like() -> impl Strategy<Value = Vec<u8>> {
        (
            prop::collection::vec(
                (
                    prop::sample::select(vec!["F32", "I64", "U8", "BF16", "X9"]),
                    prop::collection::vec(0u64..5, 0..3),
                    0u64..64,
                    0u64..64,
                ),
                0..4,
            ),
            prop::collection::vec(any::<u8>(), 0..64),
        )
            .prop_map(|(entries, body)| {
                let mut h = serde_json::Map::new();
                for (i, (dt, shape, a, b)) in entries.into_iter().enumerate() {
                    h.insert(
                        format!("t{i}"),
                        serde_json::json!({"dtype": dt, "shape": shape, "data_offsets": [a, b]}),
                    );
                }
                let header = serde_json::to_vec(&h).unwrap();
                let mut out = (header.len() as u64).to_le_bytes().to_vec();
                out.extend_from_slice(&header);
                out.extend_from_slice(&body);
                out
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn safetensors_checks_never_panic(bytes in safetensors_like()) {
            let mut out = Vec::new();
            if formats::is_safetensors(&bytes) {
                formats::check_safetensors(&Location::file("p"), &bytes, &mut out);
            }
        }

        #[test]
        fn a_consistent_safetensors_file_has_no_finding(n in 0usize..16, m in 0usize..16) {
            let header = serde_json::json!({
                "a": {"dtype": "F32", "shape": [n], "data_offsets": [0, 4 * n]},
                "b": {"dtype": "U8", "shape": [m], "data_offsets": [4 * n, 4 * n + m]},
            });
            let h = serde_json::to_vec(&header).unwrap();
            let mut bytes = (h.len() as u64).to_le_bytes().to_vec();
            bytes.extend_from_slice(&h);
            bytes.extend(std::iter::repeat_n(0u8, 4 * n + m));
            let mut out = Vec::new();
            formats::check_safetensors(&Location::file("p"), &bytes, &mut out);
            prop_assert!(out.is_empty(), "{:?}", out.iter().map(|f| &f.message).collect::<Vec<_>>());
        }

        #[test]
        fn gguf_walk_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256), version in 0u32..5, kv in 0u64..4, tensors in 0u64..4) {
            let mut d = b"GGUF".to_vec();
            d.extend_from_slice(&version.to_le_bytes());
            d.extend_from_slice(&tensors.to_le_bytes());
            d.extend_from_slice(&kv.to_le_bytes());
            d.extend_from_slice(&bytes);
            let mut out = Vec::new();
            formats::check_gguf(&Location::file("g"), &d, &mut out);
        }

        #[test]
        fn onnx_and_hdf5_walks_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let mut out = Vec::new();
            let mut d = vec![0x08];
            d.extend_from_slice(&bytes);
            let _ = formats::is_onnx(&d);
            formats::check_onnx(&Location::file("o"), &d, &mut out);
            formats::check_hdf5_keras(&Location::file("h"), &bytes, &mlsec_scan::Policy::default(), &mut out);
        }
    }
}

/// TorchScript-like token soup: names, dots, brackets, quotes, escapes,
/// comments, indentation and the operators the check looks for.
fn torchscript_like() -> impl Strategy<Value = Vec<u8>> {
    let atoms = prop::sample::select(vec![
        "torch",
        "ops",
        "aten",
        "save",
        "from_file",
        "getattr",
        "set_",
        "def",
        "class",
        "__setstate__",
        "forward",
        ".",
        "(",
        ")",
        "[",
        "]",
        ",",
        ":",
        "\"",
        "'",
        "\"\"\"",
        "\\",
        "\\x61",
        "#",
        "\n",
        "  ",
        "\t",
        "1.5",
        "x",
        "\"s\\x61ve\"",
    ]);
    prop::collection::vec(atoms, 0..96).prop_map(|parts| parts.concat().into_bytes())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn torchscript_lexer_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let mut out = Vec::new();
        mlsec_scan::torchscript::check_torchscript_code(&mlsec_core::Location::file("c"), &bytes, &mut out);
        prop_assert!(out.len() <= 64);
    }

    #[test]
    fn torchscript_soup_stays_bounded(bytes in torchscript_like()) {
        let mut out = Vec::new();
        mlsec_scan::torchscript::check_torchscript_code(&mlsec_core::Location::file("c"), &bytes, &mut out);
        prop_assert!(out.len() <= 64);
    }

    /// A file operator on its own line of a method is found whatever
    /// ordinary statements surround it.
    #[test]
    fn a_save_between_ordinary_statements_is_found(
        before in prop::collection::vec("[a-z_]{1,8} = torch\\.[a-z]{1,6}\\([a-z0-9, ]{0,12}\\)", 0..6),
        after in prop::collection::vec("[a-z_]{1,8} = [a-z_]{1,8}\\.[a-z_]{1,8}", 0..6),
    ) {
        let mut code = String::from("class M(Module):\n  def forward(self, x: Tensor) -> Tensor:\n");
        for line in before.iter().chain(std::iter::once(&"torch.save(x, 'p')".to_string())).chain(&after) {
            code.push_str("    ");
            code.push_str(line);
            code.push('\n');
        }
        let mut out = Vec::new();
        mlsec_scan::torchscript::check_torchscript_code(&mlsec_core::Location::file("c"), code.as_bytes(), &mut out);
        prop_assert!(out.iter().any(|f| f.evidence.get("operator").and_then(|v| v.as_str()) == Some("aten::save")
            && f.severity == mlsec_core::Severity::High), "{code}");
    }
}
