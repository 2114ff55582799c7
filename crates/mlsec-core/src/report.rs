//! The report every command produces, and its three renderings: a terminal
//! table ([`render_text`]), JSON ([`render_json`], schema in docs/json-schema.md)
//! and SARIF 2.1.0 ([`crate::sarif::render_sarif`]).

use crate::{Finding, Severity};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{self, Write};

/// Version tag of the JSON report layout; bumped on any incompatible change.
pub const REPORT_SCHEMA: &str = "mlsec-report/1";

/// The tool's identity, written into every report.
#[derive(Debug, Clone, Serialize)]
pub struct ToolInfo {
    pub name: &'static str,
    pub version: &'static str,
}

/// An input that was analysed, with the digest it had when mlsec read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Artifact {
    pub path: String,
    /// What mlsec recognised the input as (`npy`, `csv`, `image-folder`, …).
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
}

/// A command's output: its own results (`B`) plus findings.
#[derive(Debug, Clone)]
pub struct Report<B> {
    pub tool: ToolInfo,
    /// The subcommand that produced it, e.g. `data inspect`.
    pub command: String,
    pub artifacts: Vec<Artifact>,
    pub results: B,
    pub findings: Vec<Finding>,
}

impl<B> Report<B> {
    pub fn new(tool: ToolInfo, command: impl Into<String>, results: B) -> Self {
        Report {
            tool,
            command: command.into(),
            artifacts: Vec::new(),
            results,
            findings: Vec::new(),
        }
    }

    /// Orders findings most severe first, then by location and rule, so output
    /// is deterministic whatever order the checks ran in.
    pub fn sort_findings(&mut self) {
        self.findings.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then_with(|| a.location.path.cmp(&b.location.path))
                .then_with(|| a.location.sample.cmp(&b.location.sample))
                .then_with(|| a.location.line.cmp(&b.location.line))
                .then_with(|| a.rule.cmp(b.rule))
        });
    }

    pub fn summary(&self) -> Summary {
        Summary::of(&self.findings)
    }
}

/// Counts by severity; the CLI's exit code is derived from `highest`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub findings: usize,
    pub by_severity: BTreeMap<Severity, usize>,
    pub highest: Option<Severity>,
}

impl Summary {
    pub fn of(findings: &[Finding]) -> Summary {
        let mut by_severity: BTreeMap<Severity, usize> =
            Severity::ALL.iter().map(|s| (*s, 0)).collect();
        for f in findings {
            *by_severity.entry(f.severity).or_default() += 1;
        }
        Summary {
            findings: findings.len(),
            by_severity,
            highest: findings.iter().map(|f| f.severity).max(),
        }
    }
}

/// The command-specific part of a report as a terminal shows it.
pub trait TextBody {
    fn render_text(&self, out: &mut dyn Write, style: &Style) -> io::Result<()>;

    /// Whether the command reports findings; catalogue-style commands
    /// (`mlsec rules`) have none and print no findings summary.
    fn has_findings(&self) -> bool {
        true
    }
}

/// Terminal styling; every method is the identity when colour is off.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
}

impl Style {
    pub fn plain() -> Style {
        Style { color: false }
    }

    fn paint(&self, style: anstyle::Style, text: &str) -> String {
        if self.color {
            format!("{}{text}{}", style.render(), style.render_reset())
        } else {
            text.to_string()
        }
    }

    pub fn heading(&self, text: &str) -> String {
        self.paint(anstyle::Style::new().bold().underline(), text)
    }

    pub fn dim(&self, text: &str) -> String {
        self.paint(anstyle::Style::new().dimmed(), text)
    }

    pub fn severity(&self, sev: Severity, text: &str) -> String {
        use anstyle::{AnsiColor, Color};
        let color = match sev {
            Severity::Info => AnsiColor::Blue,
            Severity::Low => AnsiColor::Cyan,
            Severity::Medium => AnsiColor::Yellow,
            Severity::High => AnsiColor::Red,
            Severity::Critical => AnsiColor::BrightRed,
        };
        let mut st = anstyle::Style::new().fg_color(Some(Color::Ansi(color)));
        if sev >= Severity::High {
            st = st.bold();
        }
        self.paint(st, text)
    }
}

/// The widest a column is padded to.
const MAX_PADDED_WIDTH: usize = 200;

/// Writes rows as aligned columns, colouring each cell after padding so that
/// escape codes do not upset the alignment. (A table crate would count the
/// escape codes as width; this is the whole of what we need.)
pub fn write_table(
    out: &mut dyn Write,
    header: &[&str],
    rows: &[Vec<String>],
    paint: &dyn Fn(usize, usize, &str) -> String,
    style: &Style,
) -> io::Result<()> {
    let cols = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(cols) {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    // Padding stops at a screen's width: a cell can hold text taken from a
    // hostile file (a 400 KB global name), and `format!` rejects widths
    // past u16::MAX. Longer cells are written whole and overflow their column.
    for w in &mut widths {
        *w = (*w).min(MAX_PADDED_WIDTH);
    }
    let line = |cells: Vec<String>| -> String {
        let last = cells.len().saturating_sub(1);
        let mut s = String::new();
        for (i, cell) in cells.into_iter().enumerate() {
            s.push_str(&cell);
            if i < last {
                s.push_str("  ");
            }
        }
        s.trim_end().to_string()
    };
    let head: Vec<String> = header
        .iter()
        .enumerate()
        .map(|(i, h)| style.dim(&format!("{h:<w$}", w = widths[i])))
        .collect();
    writeln!(out, "{}", line(head))?;
    for (r, row) in rows.iter().enumerate() {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .take(cols)
            .map(|(i, cell)| paint(r, i, &format!("{cell:<w$}", w = widths[i])))
            .collect();
        writeln!(out, "{}", line(cells))?;
    }
    Ok(())
}

/// The terminal rendering: the command's own results, then the findings
/// table, then a one-line summary.
pub fn render_text<B: TextBody>(
    report: &Report<B>,
    out: &mut dyn Write,
    style: &Style,
) -> io::Result<()> {
    report.results.render_text(out, style)?;
    if !report.results.has_findings() {
        return Ok(());
    }
    let summary = report.summary();
    if !report.findings.is_empty() {
        writeln!(out)?;
        writeln!(
            out,
            "{}",
            style.heading(&format!("Findings ({})", report.findings.len()))
        )?;
        let rows: Vec<Vec<String>> = report
            .findings
            .iter()
            .map(|f| {
                vec![
                    f.severity.to_string(),
                    f.rule.to_string(),
                    f.location.to_string(),
                    f.message.clone(),
                ]
            })
            .collect();
        let paint = |r: usize, c: usize, cell: &str| {
            if c == 0 {
                style.severity(report.findings[r].severity, cell)
            } else {
                cell.to_string()
            }
        };
        write_table(
            out,
            &["SEVERITY", "RULE", "LOCATION", "MESSAGE"],
            &rows,
            &paint,
            style,
        )?;
        writeln!(
            out,
            "{}",
            style.dim(
                "Run `mlsec rules CODE` for what a rule detects, why it matters and an example."
            )
        )?;
    }
    writeln!(out)?;
    writeln!(out, "{}", summary_line(&summary, style))
}

fn summary_line(summary: &Summary, style: &Style) -> String {
    if summary.findings == 0 {
        return "No findings.".to_string();
    }
    let parts: Vec<String> = summary
        .by_severity
        .iter()
        .rev()
        .filter(|(_, n)| **n > 0)
        .map(|(sev, n)| style.severity(*sev, &format!("{n} {sev}")))
        .collect();
    let noun = if summary.findings == 1 {
        "finding"
    } else {
        "findings"
    };
    format!("{} {noun}: {}.", summary.findings, parts.join(", "))
}

#[derive(Serialize)]
struct JsonReport<'a, B> {
    schema: &'static str,
    tool: &'a ToolInfo,
    command: &'a str,
    artifacts: &'a [Artifact],
    results: &'a B,
    findings: &'a [Finding],
    summary: Summary,
}

/// The JSON rendering, documented in docs/json-schema.md.
pub fn render_json<B: Serialize>(report: &Report<B>, out: &mut dyn Write) -> io::Result<()> {
    let doc = JsonReport {
        schema: REPORT_SCHEMA,
        tool: &report.tool,
        command: &report.command,
        artifacts: &report.artifacts,
        results: &report.results,
        findings: &report.findings,
        summary: report.summary(),
    };
    crate::pretty_json::write_pretty_json(&doc, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cell_wider_than_any_screen_is_written_whole() {
        let huge = "a.".repeat(100_000);
        let rows = vec![
            vec![huge.clone(), "x".to_string()],
            vec!["b".to_string(), "y".to_string()],
        ];
        let mut out = Vec::new();
        write_table(
            &mut out,
            &["name", "value"],
            &rows,
            &|_, _, s| s.to_string(),
            &Style::plain(),
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains(&format!("{huge}  x")));
        assert!(text.contains(&format!("b{}  y", " ".repeat(MAX_PADDED_WIDTH - 1))));
    }
}
