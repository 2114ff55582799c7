#![no_main]
//! CSV reader with type inference.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let opts = mlsec_data::table::CsvOptions::default();
    if let Ok(t) = mlsec_data::table::parse_csv(data, &opts, false) {
        for c in &t.columns {
            assert_eq!(c.len(), t.rows);
        }
    }
});
