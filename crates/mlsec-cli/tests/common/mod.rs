//! Fixture writers shared by the CLI tests: every fixture is made here, byte
//! by byte or with the format's reference Rust crate, never downloaded.
#![allow(dead_code)]

use assert_cmd::Command;
use std::io::Write;
use std::path::Path;

pub fn mlsec() -> Command {
    let mut cmd = Command::cargo_bin("mlsec").expect("binary built");
    cmd.env_remove("MLSEC_BUNDLED_DATA_DIR")
        .env("NO_COLOR", "1");
    cmd
}

/// Parses a command's standard output as JSON, showing it when it is not.
pub fn json_of(out: &[u8]) -> serde_json::Value {
    serde_json::from_slice(out)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(out)))
}

/// Runs a prepared `mlsec` command with `--format json`, expects exit
/// status `code`, and parses the report.
pub fn json_run(mut cmd: Command, code: i32) -> serde_json::Value {
    json_of(
        &cmd.args(["--format", "json"])
            .assert()
            .code(code)
            .get_output()
            .stdout,
    )
}

/// Replaces the crate version so snapshots survive a version bump.
pub fn redact(s: &str) -> String {
    s.replace(env!("CARGO_PKG_VERSION"), "[VERSION]")
}

pub fn npy_bytes(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    let pad = (64 - (10 + header.len() + 1) % 64) % 64;
    header.push_str(&" ".repeat(pad));
    header.push('\n');
    let mut v = b"\x93NUMPY\x01\x00".to_vec();
    v.extend_from_slice(&(header.len() as u16).to_le_bytes());
    v.extend_from_slice(header.as_bytes());
    v.extend_from_slice(data);
    v
}

pub fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

pub fn write(dir: &Path, name: &str, bytes: &[u8]) {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(p, bytes).unwrap();
}

/// An NPZ (zip of .npy members), deflated like `np.savez_compressed`.
pub fn npz_bytes(members: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut buf);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, bytes) in members {
            zip.start_file(format!("{name}.npy"), opts).unwrap();
            zip.write_all(bytes).unwrap();
        }
        zip.finish().unwrap();
    }
    buf.into_inner()
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// IDX images `[n, rows, cols]` u8 and labels `[n]` u8.
pub fn idx_pair(images: &[u8], n: u32, rows: u32, cols: u32, labels: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut im = vec![0, 0, 0x08, 3];
    for d in [n, rows, cols] {
        im.extend_from_slice(&d.to_be_bytes());
    }
    im.extend_from_slice(images);
    let mut lb = vec![0, 0, 0x08, 1];
    lb.extend_from_slice(&n.to_be_bytes());
    lb.extend_from_slice(labels);
    (im, lb)
}

/// A Parquet file with a float feature, an int feature, a string column and
/// an int label, written with the `parquet` crate's Arrow writer.
pub fn write_parquet(path: &Path, rows: usize) {
    use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
    use std::sync::Arc;
    let f: Vec<f64> = (0..rows).map(|i| i as f64 * 0.5).collect();
    let g: Vec<i64> = (0..rows).map(|i| (i * 7 % 13) as i64).collect();
    let s: Vec<String> = (0..rows).map(|i| format!("item-{i}")).collect();
    let y: Vec<i64> = (0..rows).map(|i| (i % 3) as i64).collect();
    let batch = RecordBatch::try_from_iter(vec![
        ("f", Arc::new(Float64Array::from(f)) as ArrayRef),
        ("g", Arc::new(Int64Array::from(g)) as ArrayRef),
        ("name", Arc::new(StringArray::from(s)) as ArrayRef),
        ("target", Arc::new(Int64Array::from(y)) as ArrayRef),
    ])
    .unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

/// An image folder `root/<class>/<n>.png` of 8x8 greyscale PNGs; image `i`
/// of class `c` has pixel value `c * 40 + i`, so all are distinct.
pub fn write_image_folder(root: &Path, classes: &[(&str, usize)]) {
    for (c, (name, count)) in classes.iter().enumerate() {
        std::fs::create_dir_all(root.join(name)).unwrap();
        for i in 0..*count {
            let img = image::GrayImage::from_pixel(8, 8, image::Luma([(c * 40 + i) as u8]));
            img.save(root.join(name).join(format!("{i}.png"))).unwrap();
        }
    }
}
