//! Helpers shared by the integration tests.

use mlsec_data::table::{ColumnData, Table};
use std::path::Path;

/// Writes `t` as Parquet in row groups of `group_rows`.
#[allow(dead_code)] // Each test binary uses its own share of the helpers.
pub fn write_parquet(t: &Table, path: &Path, group_rows: usize) {
    use arrow_array::{ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray};
    use std::sync::Arc;
    let arrays: Vec<(String, ArrayRef)> = t
        .columns
        .iter()
        .map(|c| {
            let a: ArrayRef = match &c.data {
                ColumnData::Int(v) => Arc::new(Int64Array::from(v.clone())),
                ColumnData::Float(v) => Arc::new(Float64Array::from(v.clone())),
                ColumnData::Bool(v) => Arc::new(BooleanArray::from(v.clone())),
                ColumnData::Str(v) => Arc::new(StringArray::from(v.iter().collect::<Vec<_>>())),
            };
            (c.name.clone(), a)
        })
        .collect();
    let batch = RecordBatch::try_from_iter(arrays).unwrap();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(group_rows))
        .build();
    let file = std::fs::File::create(path).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}
