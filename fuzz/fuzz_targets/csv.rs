#![no_main]
//! CSV reader with type inference, whole and in chunks.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let opts = mlsec_data::table::CsvOptions::default();
    if let Ok(t) = mlsec_data::table::parse_csv(data, &opts, false) {
        for c in &t.columns {
            assert_eq!(c.len(), t.rows);
        }
    }
    // The chunked reader, with blocks small enough to cut most inputs
    // several times (the first byte picks the block size).
    let block = usize::from(data.first().copied().unwrap_or(1)) + 1;
    if let Ok(chunks) =
        mlsec_data::stream::FrameChunks::csv_from_reader(std::io::Cursor::new(data.to_vec()), None, block)
    {
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
