//! `mlsec convert MODEL --to safetensors`.

use crate::cli::{ConvertArgs, GlobalArgs};
use crate::output::{self, exit};
use anyhow::{bail, Context, Result};
use mlsec_core::{write_table, Artifact, Report, Style, TextBody};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;

#[derive(Serialize)]
struct TensorInfo {
    name: String,
    dtype: &'static str,
    shape: Vec<usize>,
}

#[derive(Serialize)]
struct ConvertResults {
    input: String,
    output: String,
    sha256: String,
    bytes: u64,
    tensors: Vec<TensorInfo>,
}

impl TextBody for ConvertResults {
    fn has_findings(&self) -> bool {
        false
    }

    fn render_text(&self, out: &mut dyn Write, style: &Style) -> std::io::Result<()> {
        let rows: Vec<Vec<String>> = self
            .tensors
            .iter()
            .map(|t| {
                vec![
                    t.name.clone(),
                    t.dtype.to_string(),
                    format!("{:?}", t.shape),
                ]
            })
            .collect();
        write_table(
            out,
            &["TENSOR", "DTYPE", "SHAPE"],
            &rows,
            &|_, _, c| c.to_string(),
            style,
        )?;
        writeln!(out)?;
        writeln!(
            out,
            "Wrote {} ({} tensors, {} bytes)",
            self.output,
            self.tensors.len(),
            self.bytes
        )?;
        writeln!(out, "sha256 {}", self.sha256)
    }
}

pub fn run(global: &GlobalArgs, args: &ConvertArgs) -> Result<u8> {
    let input = args.model.display().to_string();
    let out_path = args
        .out
        .clone()
        .unwrap_or_else(|| args.model.with_extension("safetensors"));
    if out_path == args.model {
        bail!(
            "{}: the output would overwrite the input; give --out",
            out_path.display()
        );
    }
    if out_path.exists() && !args.force {
        bail!(
            "{}: already exists (use --force to replace it)",
            out_path.display()
        );
    }
    let bytes = std::fs::read(&args.model).with_context(|| input.clone())?;
    let tensors = mlsec_scan::convert::to_tensors(&bytes).with_context(|| input.clone())?;
    if tensors.is_empty() {
        bail!("{input}: holds no tensors to convert");
    }
    let mut metadata = BTreeMap::new();
    metadata.insert("format".to_string(), "pt".to_string());
    metadata.insert(
        "converted_by".to_string(),
        format!("mlsec {}", env!("CARGO_PKG_VERSION")),
    );
    let st = mlsec_scan::convert::write_safetensors(&tensors, &metadata);
    output::write_output(Some(&out_path), &st)?;
    let sha256 = mlsec_core::digest::sha256_hex(&st);
    let results = ConvertResults {
        input: input.clone(),
        output: out_path.display().to_string(),
        sha256: sha256.clone(),
        bytes: st.len() as u64,
        tensors: tensors
            .iter()
            .map(|(n, t)| TensorInfo {
                name: n.clone(),
                dtype: t.dtype,
                shape: t.shape.clone(),
            })
            .collect(),
    };
    let mut report = Report::new(output::tool(), "convert", results);
    report.artifacts.push(Artifact {
        path: input,
        kind: "input".into(),
        sha256: Some(mlsec_core::digest::sha256_hex(&bytes)),
        bytes: Some(bytes.len() as u64),
    });
    report.artifacts.push(Artifact {
        path: out_path.display().to_string(),
        kind: "safetensors".into(),
        sha256: Some(sha256),
        bytes: Some(st.len() as u64),
    });
    // The converted file goes to --out; the report goes to standard output
    // (the global --output, if given, names the report's file).
    output::emit(global, &report)?;
    Ok(exit::OK)
}
