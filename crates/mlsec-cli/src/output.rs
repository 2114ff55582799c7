//! Where and how a report is written: format, colour, `--output`, exit status.

use crate::cli::{ColorChoice, GlobalArgs, OutputFormat};
use anyhow::{Context, Result};
use mlsec_core::{render_json, render_text, sarif, Report, RuleRegistry, Style, TextBody};
use serde::Serialize;
use std::io::{IsTerminal, Write};
use std::path::Path;

/// Process exit codes (docs/exit-codes.md).
pub mod exit {
    pub const OK: u8 = 0;
    pub const FINDINGS: u8 = 1;
    pub const ERROR: u8 = 2;
}

pub fn tool() -> mlsec_core::ToolInfo {
    mlsec_core::ToolInfo {
        name: "mlsec",
        version: env!("CARGO_PKG_VERSION"),
    }
}

pub fn registry() -> RuleRegistry {
    RuleRegistry::from_groups(&[
        mlsec_core::rules::RULES,
        mlsec_data::RULES,
        mlsec_scan::RULES,
        mlsec_sign::rules::RULES,
        mlsec_attack::RULES,
    ])
}

/// Colour only for text going to a terminal, unless forced either way.
pub fn style(global: &GlobalArgs) -> Style {
    let color = match global.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            global.output.is_none()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::io::stdout().is_terminal()
        }
    };
    Style { color }
}

/// Renders the report in the chosen format and writes it out.
pub fn emit<B: Serialize + TextBody>(global: &GlobalArgs, report: &Report<B>) -> Result<()> {
    write_output_with(global.output.as_deref(), |out| match global.format {
        OutputFormat::Text => render_text(report, out, &style(global)),
        OutputFormat::Json => render_json(report, out),
        OutputFormat::Sarif => sarif::render_sarif(report, &registry(), out),
    })
}

/// Ends a command that analyses several inputs, "found beats error": inputs
/// that failed become findings (`failures`), the report is written, and the
/// exit status is 1 when any other finding is at or above `--fail-on`, else
/// 2 when an input failed, else 0. With nothing analysed there is no report.
pub fn finish<B: Serialize + TextBody>(
    global: &GlobalArgs,
    mut report: Report<B>,
    analysed: usize,
    failures: Vec<mlsec_core::Finding>,
) -> Result<u8> {
    if analysed == 0 {
        return Ok(exit::ERROR);
    }
    let threshold = global.fail_on.threshold();
    let failing = report
        .findings
        .iter()
        .any(|f| threshold.is_some_and(|t| f.severity >= t));
    let any_failure = !failures.is_empty();
    report.findings.extend(failures);
    report.sort_findings();
    emit(global, &report)?;
    Ok(if failing {
        exit::FINDINGS
    } else if any_failure {
        exit::ERROR
    } else {
        exit::OK
    })
}

/// Writes to `--output` through a temporary file and a rename, so an
/// interrupted run never leaves a half-written report behind.
pub fn write_output(path: Option<&Path>, bytes: &[u8]) -> Result<()> {
    write_output_with(path, |out| out.write_all(bytes))
}

/// Writes what `render` produces to standard output or, through a temporary
/// file renamed into place, to `path`. The output is streamed through a
/// buffer rather than rendered whole first: a 2,000-file scan report is
/// half a megabyte, and faulting in the pages of a buffer that size cost
/// more than writing it.
pub fn write_output_with(
    path: Option<&Path>,
    render: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    const BUFFER: usize = 64 << 10;
    match path {
        None => {
            // Standard output is line-buffered: one system call per line
            // without a buffer of our own.
            let mut out = std::io::BufWriter::with_capacity(BUFFER, std::io::stdout().lock());
            match render(&mut out).and_then(|_| out.flush()) {
                // A closed pipe (`mlsec … | head`) is not an error worth reporting.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                other => other.context("writing to standard output"),
            }
        }
        Some(path) => {
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let name = path.file_name().context("--output must name a file")?;
            let tmp = dir.join(format!(".{}.mlsec-tmp", name.to_string_lossy()));
            let written = std::fs::File::create(&tmp).and_then(|file| {
                let mut out = std::io::BufWriter::with_capacity(BUFFER, file);
                render(&mut out)?;
                out.flush()
            });
            if let Err(e) = written {
                let _ = std::fs::remove_file(&tmp);
                return Err(e).with_context(|| format!("{}: cannot write", path.display()));
            }
            std::fs::rename(&tmp, path).with_context(|| format!("{}: cannot write", path.display()))
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_registered_rule_is_consistent() {
        // Unique codes and names, MLS-AREA-NNN codes, ATLAS ids that exist in
        // the embedded ATLAS table, and all three parts of the docs written.
        let reg = super::registry();
        assert!(reg.rules().len() >= 7);
        if let Err(errors) = reg.validate() {
            panic!("rule registry is inconsistent: {errors:#?}");
        }
    }
}
