//! `mlsec data gate|manifest|ledger` and `mlsec attack poison`.

use crate::cli::{GateArgs, GlobalArgs, LedgerArgs, ManifestArgs, PoisonArgs};
use crate::output::{self, exit};
use anyhow::{anyhow, bail, Context, Result};
use mlsec_core::{Report, Style, TextBody};
use mlsec_data::gate::{self, ledger, manifest, policy::Policy, GateInput, Outcome};
use mlsec_data::stream::ChunkOptions;
use serde::Serialize;
use std::io::Write;

/// The gate's outcome as this binary renders it.
#[derive(Serialize)]
#[serde(transparent)]
struct GateView(Outcome);

impl TextBody for GateView {
    fn render_text(&self, out: &mut dyn Write, style: &Style) -> std::io::Result<()> {
        let this = &self.0;
        writeln!(
            out,
            "decision  {} ({} of {} rows accepted, {} quarantined)",
            this.decision.name(),
            this.accepted_rows,
            this.rows,
            this.rows - this.accepted_rows
        )?;
        writeln!(out, "sha256    {}", this.batch_sha256)?;
        if let Some(s) = &this.source {
            writeln!(out, "source    {s} (manifest verified)")?;
        }
        for r in &this.batch_reasons {
            writeln!(out, "batch     {r}")?;
        }
        if !this.screen.is_empty() {
            let rows: Vec<Vec<String>> = this
                .screen
                .iter()
                .map(|f| {
                    vec![
                        f.feature.clone(),
                        format!("{:.4}", f.ks),
                        format!("{:.3e}", f.pvalue),
                        format!("{:.4}", f.psi),
                    ]
                })
                .collect();
            mlsec_core::write_table(
                out,
                &["FEATURE", "KS", "P", "PSI"],
                &rows,
                &|_, _, c| c.to_string(),
                style,
            )?;
        }
        if let Some((c, p)) = this.label_chi2 {
            writeln!(out, "labels    chi-square {c:.2}, p = {p:.3e}")?;
        }
        Ok(())
    }
}

/// Writes the batch's accepted (or quarantined) rows as CSV, reading the
/// batch again chunk by chunk; quarantined rows carry their row number and
/// reasons.
fn write_rows(
    path: &std::path::Path,
    batch: &std::path::Path,
    o: &Outcome,
    quarantined: bool,
) -> Result<()> {
    output::write_output_with(Some(path), |out| {
        let mut w = csv::Writer::from_writer(out);
        let mut header = o.columns.clone();
        if quarantined {
            header.insert(0, "row".into());
            header.push("reasons".into());
        }
        w.write_record(&header)?;
        gate::for_each_row(batch, o, ChunkOptions::default(), |row, t, r| {
            if o.holds(row) != quarantined {
                return Ok(());
            }
            let mut cells: Vec<String> = t
                .columns
                .iter()
                .map(|c| c.cell(r).unwrap_or_default())
                .collect();
            if quarantined {
                cells.insert(0, row.to_string());
                cells.push(o.reasons(row).join("; "));
            }
            w.write_record(&cells).map_err(|e| e.to_string())
        })
        .map_err(std::io::Error::other)?;
        w.flush()
    })
}

pub fn gate(global: &GlobalArgs, args: &GateArgs) -> Result<u8> {
    let (policy, policy_dir) = Policy::load(&args.policy).map_err(|e| anyhow!(e))?;
    let bar =
        crate::commands::data::phase_spinner(global, &format!("gating {}", args.batch.display()));
    let outcome = gate::run(&GateInput {
        reference: &args.reference,
        batch: &args.batch,
        manifest: args.manifest.as_deref(),
        policy: &policy,
        policy_dir: &policy_dir,
        chunks: ChunkOptions::default(),
        reference_options: args.reference_memory.options(),
    })
    .map_err(|e| anyhow!(e))?;
    if let Some(path) = &args.accepted {
        bar.set_message(format!("writing {}", path.display()));
        write_rows(path, &args.batch, &outcome, false)?;
    }
    if let Some(path) = &args.quarantine {
        bar.set_message(format!("writing {}", path.display()));
        write_rows(path, &args.batch, &outcome, true)?;
    }
    if let Some(path) = &args.ledger {
        bar.set_message(format!("recording in {}", path.display()));
        let mut l = ledger::Ledger::open(path).map_err(|e| anyhow!(e))?;
        let mut rows: Vec<ledger::QuarantinedRow> = Vec::new();
        gate::for_each_row(
            &args.batch,
            &outcome,
            ChunkOptions::default(),
            |row, t, r| {
                if outcome.holds(row) {
                    rows.push(ledger::QuarantinedRow {
                        batch_id: 0,
                        row: row as i64,
                        reasons: outcome.reasons(row),
                        content: gate::row_text(t, r),
                    });
                }
                Ok(())
            },
        )
        .map_err(|e| anyhow!(e))?;
        let record = ledger::BatchRecord {
            id: 0,
            received_at: String::new(),
            source: outcome.source.clone(),
            batch: args.batch.display().to_string(),
            batch_sha256: outcome.batch_sha256.clone(),
            manifest_sha256: outcome.manifest_sha256.clone(),
            rows: outcome.rows as i64,
            accepted_rows: outcome.accepted_rows as i64,
            decision: outcome.decision.name().to_string(),
            reasons: outcome.batch_reasons.clone(),
        };
        let id = l
            .record(&record, &rows)
            .map_err(|e| anyhow!(e))
            .with_context(|| path.display().to_string())?;
        if !global.quiet {
            bar.suspend(|| eprintln!("recorded as batch {id} in {}", path.display()));
        }
    }
    bar.finish_and_clear();
    let findings = outcome.findings.clone();
    let mut report = Report::new(output::tool(), "data gate", GateView(outcome));
    report.findings = findings;
    output::finish(global, report, 1, Vec::new())
}

pub fn manifest(_global: &GlobalArgs, args: &ManifestArgs) -> Result<u8> {
    let pem = std::fs::read_to_string(&args.key).with_context(|| args.key.display().to_string())?;
    let key =
        mlsec_sign::PrivateKey::from_pem(&pem).with_context(|| args.key.display().to_string())?;
    let bytes = std::fs::read(&args.batch).with_context(|| args.batch.display().to_string())?;
    let rows = bytecount_rows(&bytes);
    let name = args
        .batch
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let st = manifest::statement(
        &name,
        &mlsec_core::digest::sha256_hex(&bytes),
        &args.source,
        rows,
    );
    let env = manifest::create(&st, &key).map_err(|e| anyhow!(e))?;
    output::write_output(Some(&args.out), &env)?;
    eprintln!(
        "manifest for {} ({} bytes) signed as `{}`: {}",
        args.batch.display(),
        bytes.len(),
        args.source,
        args.out.display()
    );
    Ok(exit::OK)
}

/// Data rows of a CSV-like file (lines after the header); 0 for binary.
fn bytecount_rows(bytes: &[u8]) -> usize {
    if bytes.starts_with(b"PAR1") {
        return 0;
    }
    bytes
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        .saturating_sub(1)
}

#[derive(Serialize)]
struct LedgerView {
    batches: Vec<ledger::BatchRecord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    quarantined: Option<Vec<ledger::QuarantinedRow>>,
}

impl TextBody for LedgerView {
    fn has_findings(&self) -> bool {
        false
    }
    fn render_text(&self, out: &mut dyn Write, style: &Style) -> std::io::Result<()> {
        let rows: Vec<Vec<String>> = self
            .batches
            .iter()
            .map(|b| {
                vec![
                    b.id.to_string(),
                    b.received_at.clone(),
                    b.source.clone().unwrap_or_else(|| "-".into()),
                    b.decision.clone(),
                    format!("{}/{}", b.accepted_rows, b.rows),
                    b.batch.clone(),
                ]
            })
            .collect();
        mlsec_core::write_table(
            out,
            &["ID", "RECEIVED", "SOURCE", "DECISION", "ACCEPTED", "BATCH"],
            &rows,
            &|_, _, c| c.to_string(),
            style,
        )?;
        if let Some(q) = &self.quarantined {
            writeln!(out)?;
            let rows: Vec<Vec<String>> = q
                .iter()
                .map(|r| vec![r.row.to_string(), r.reasons.join("; "), r.content.clone()])
                .collect();
            mlsec_core::write_table(
                out,
                &["ROW", "REASONS", "CONTENT"],
                &rows,
                &|_, _, c| c.to_string(),
                style,
            )?;
        }
        Ok(())
    }
}

pub fn ledger(global: &GlobalArgs, args: &LedgerArgs) -> Result<u8> {
    if !args.ledger.is_file() {
        bail!("{}: no such ledger", args.ledger.display());
    }
    let l = ledger::Ledger::open(&args.ledger).map_err(|e| anyhow!(e))?;
    let view = LedgerView {
        batches: l.batches().map_err(|e| anyhow!(e))?,
        quarantined: match args.batch {
            Some(id) => Some(l.quarantined(Some(id)).map_err(|e| anyhow!(e))?),
            None => None,
        },
    };
    output::emit(global, &Report::new(output::tool(), "data ledger", view))?;
    Ok(exit::OK)
}

pub fn poison(_global: &GlobalArgs, args: &PoisonArgs) -> Result<u8> {
    use mlsec_attack::poison::{self, Kind};
    let kind = Kind::parse(&args.kind).ok_or_else(|| {
        anyhow!(
            "unknown --kind `{}` (label-flip, shift or inject)",
            args.kind
        )
    })?;
    let path = &args.data;
    let shown = path.display().to_string();
    let table = mlsec_data::table::read_table(path)?;
    let label = mlsec_data::table::find_label(&table, args.label.as_deref())
        .map_err(|e| anyhow!("{shown}: {e}"))?;
    let p = poison::poison(&table, label, kind, args.rate, args.magnitude, args.seed)
        .map_err(|e| anyhow!("{shown}: {e}"))?;
    p.write_csv(&args.out).map_err(|e| anyhow!(e))?;
    p.write_truth(&args.truth).map_err(|e| anyhow!(e))?;
    eprintln!(
        "{} of {} rows poisoned ({}): {} (truth: {})",
        p.truth.iter().filter(|&&t| t).count(),
        p.rows.len(),
        kind.name(),
        args.out.display(),
        args.truth.display()
    );
    Ok(exit::OK)
}

#[derive(Serialize)]
#[serde(transparent)]
struct AuditView(mlsec_data::leakage::Audit);

impl TextBody for AuditView {
    fn render_text(&self, out: &mut dyn Write, _style: &Style) -> std::io::Result<()> {
        let a = &self.0;
        writeln!(
            out,
            "train {} rows, test {} rows",
            a.train_rows, a.test_rows
        )?;
        if let Some(blocks) = a.test_blocks {
            writeln!(
                out,
                "test blocks           {blocks} (the training split read once per block)"
            )?;
        }
        writeln!(out, "exact duplicates      {}", a.exact_duplicates.len())?;
        writeln!(out, "near duplicates       {}", a.near_duplicates.len())?;
        writeln!(out, "newer training rows   {}", a.newer_training_rows.len())?;
        match a.screened_rows {
            Some(n) if n < a.train_rows => writeln!(
                out,
                "target leakage        screened on a uniform sample of {n} training rows"
            )?,
            _ => {}
        }
        for (f, m, s) in &a.leaking_features {
            writeln!(out, "leaking feature       {f} ({m} {s:.3})")?;
        }
        Ok(())
    }
}

pub fn leakage(global: &GlobalArgs, args: &crate::cli::LeakageArgs) -> Result<u8> {
    use mlsec_data::leakage::{self, minhash::MinHashParams, AuditOptions};
    let bar = crate::commands::data::phase_spinner(global, "auditing the split");
    if args.images {
        use mlsec_data::leakage::images::{ImageBlocks, ImageChunks, ImageParams};
        let (ts, ss) = (
            args.train.display().to_string(),
            args.test.display().to_string(),
        );
        for (flag, value) in [
            ("--image-threshold", args.image_threshold),
            ("--image-candidates", args.image_candidates),
        ] {
            if !(-1.0..=1.0).contains(&value) {
                bail!("{flag} {value}: a correlation, from -1 to 1");
            }
        }
        if args.image_shift > 8 {
            bail!(
                "--image-shift {}: at most 8 pixels (the work grows with the square of the shift)",
                args.image_shift
            );
        }
        let p = ImageParams {
            threshold: args.image_threshold,
            coarse: args.image_candidates,
            max_shift: args.image_shift,
        };
        // The training split streams through in chunks, once per block of
        // the test split that fits --test-memory: both may be larger than
        // memory.
        let test = ImageBlocks::open(&ss, args.test_memory.saturating_mul(1 << 20), p.max_shift)
            .map_err(|e| anyhow!(e))?;
        let open_train = || ImageChunks::open(&ts, 4096);
        let audit = leakage::audit_images_in_blocks(open_train, test, &ts, &ss, &p)
            .map_err(|e| anyhow!(e))?;
        bar.finish_and_clear();
        let findings = audit.findings.clone();
        let mut report = Report::new(output::tool(), "audit leakage", AuditView(audit));
        report.findings = findings;
        return output::finish(global, report, 1, Vec::new());
    }
    if args.bands == 0 || args.permutations % args.bands != 0 {
        bail!(
            "--bands must divide --permutations ({} into {})",
            args.permutations,
            args.bands
        );
    }
    use mlsec_data::stream::{ChunkOptions, TableChunks};
    let o = AuditOptions {
        label: args.label.clone(),
        ignore: args.ignore.clone(),
        text: args.text.clone(),
        minhash: MinHashParams {
            shingle: args.shingle.max(1),
            permutations: args.permutations,
            bands: args.bands,
            threshold: args.threshold,
            ..MinHashParams::default()
        },
        time: args.time.clone(),
        split_time: args.split_time.clone(),
        screen_rows: usize::try_from(args.screen_rows).unwrap_or(usize::MAX),
        seed: args.seed,
        ..AuditOptions::default()
    };
    let (train_name, test_name) = (
        args.train.display().to_string(),
        args.test.display().to_string(),
    );
    let budget = args.test_memory.saturating_mul(1 << 20);
    let train_chunks = || TableChunks::open(&args.train, ChunkOptions::default());
    let train = train_chunks()?;
    // Test chunks small against the budget, so that blocks end near it:
    // a row's state (hash, map slot, shingles, band keys) takes several
    // times its CSV bytes. A Parquet file is decoded whole only when it is
    // small against the budget too.
    let defaults = ChunkOptions::default();
    let test = TableChunks::open(
        &args.test,
        ChunkOptions {
            csv_bytes: (budget / 16).clamp(64 << 10, defaults.csv_bytes),
            rows: (budget >> 10).clamp(1024, defaults.rows),
            whole_bytes: (budget as u64 / 16).min(defaults.whole_bytes),
        },
    )?;
    let auditor =
        leakage::SplitAuditor::new(&train_name, train.names(), &test_name, test.names(), &o)
            .map_err(|e| anyhow!(e))?;
    // The test split first: its compact state is what the training split,
    // streamed after it, is compared with; a test split too large for the
    // budget is held in blocks, and the training split read for each.
    let show = |reading: leakage::Reading, chunks: &TableChunks| {
        let (name, block, what) = match reading {
            leakage::Reading::Test { block } => (&test_name, block, "read"),
            leakage::Reading::Train { block, .. } => (&train_name, block, "audited"),
        };
        let (done, total) = chunks.progress();
        bar.set_message(format!(
            "{}{} rows of {name} {what}{}",
            match block {
                0 => String::new(),
                _ => format!("test block {}: ", block + 1),
            },
            chunks.rows_read(),
            match total {
                0 => String::new(),
                _ => format!(" ({:.0}%)", 100.0 * done as f64 / total as f64),
            }
        ));
    };
    let audit = leakage::audit_in_blocks(auditor, test, train, train_chunks, budget, show)
        .map_err(|e| anyhow!(e))?;
    bar.finish_and_clear();
    let findings = audit.findings.clone();
    let mut report = Report::new(output::tool(), "audit leakage", AuditView(audit));
    report.findings = findings;
    output::finish(global, report, 1, Vec::new())
}

#[derive(Serialize)]
struct HoldoutOpened {
    sealed: String,
    model: String,
    model_sha256: String,
    data_sha256: String,
    rows: usize,
    columns: Vec<String>,
    access: u64,
    /// With a sealed NPZ of inputs and labels: the model's accuracy on it.
    #[serde(skip_serializing_if = "Option::is_none")]
    accuracy: Option<f64>,
}

impl TextBody for HoldoutOpened {
    fn has_findings(&self) -> bool {
        false
    }
    fn render_text(&self, out: &mut dyn Write, _style: &Style) -> std::io::Result<()> {
        writeln!(
            out,
            "opened {} in memory for {} (sha256 {})",
            self.sealed, self.model, self.model_sha256
        )?;
        writeln!(
            out,
            "data   {} rows, columns {}, sha256 {}",
            self.rows,
            self.columns.join(", "),
            self.data_sha256
        )?;
        if let Some(a) = self.accuracy {
            writeln!(
                out,
                "accuracy {:.2}% on {} held-out samples",
                100.0 * a,
                self.rows
            )?;
        }
        writeln!(out, "access #{} logged", self.access)
    }
}

pub fn holdout(global: &GlobalArgs, cmd: &crate::cli::HoldoutCommand) -> Result<u8> {
    use crate::cli::HoldoutCommand;
    use mlsec_data::holdout;
    match cmd {
        HoldoutCommand::Keygen { out } => {
            let (id, recipient) = holdout::keygen();
            let id_path = out.with_extension("age-identity");
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut f = opts.open(&id_path).with_context(|| {
                format!("{} (refusing to overwrite an identity)", id_path.display())
            })?;
            writeln!(f, "# public key: {recipient}\n{id}")?;
            std::fs::write(
                out.with_extension("age-recipient"),
                format!("{recipient}\n"),
            )?;
            println!("{recipient}");
            eprintln!("identity written to {} (keep it secret)", id_path.display());
            Ok(exit::OK)
        }
        HoldoutCommand::Seal {
            data,
            recipient,
            out,
        } => {
            let recipient = if std::path::Path::new(recipient).is_file() {
                std::fs::read_to_string(recipient)?.trim().to_string()
            } else {
                recipient.clone()
            };
            let plain = std::fs::read(data).with_context(|| data.display().to_string())?;
            let sealed = holdout::seal(&plain, &recipient).map_err(|e| anyhow!(e))?;
            output::write_output(Some(out), &sealed)?;
            eprintln!(
                "{} sealed to {recipient}: {} ({} bytes)",
                data.display(),
                out.display(),
                sealed.len()
            );
            Ok(exit::OK)
        }
        HoldoutCommand::Evaluate {
            sealed,
            identity,
            model,
            reason,
            log,
        } => {
            let log_path = log.clone().unwrap_or_else(|| {
                let mut p = sealed.as_os_str().to_owned();
                p.push(".access.log");
                p.into()
            });
            let sealed_bytes =
                std::fs::read(sealed).with_context(|| sealed.display().to_string())?;
            let sealed_sha = mlsec_core::digest::sha256_hex(&sealed_bytes);
            let (model_sha, _) = mlsec_core::digest::sha256_file(model)
                .with_context(|| model.display().to_string())?;
            let previous = holdout::read_log(&log_path).map_err(|e| anyhow!(e))?;
            if let Some(p) = previous
                .iter()
                .find(|a| a.model_sha256 == model_sha && a.sealed_sha256 == sealed_sha)
            {
                if reason.is_none() {
                    bail!(
                        "model {} (sha256 {model_sha}) was already evaluated on this held-out set (access #{} at {}); \
                         give --reason to open it again (the reason is logged)",
                        model.display(),
                        p.seq,
                        p.time
                    );
                }
            }
            let id_text = std::fs::read_to_string(identity)
                .with_context(|| identity.display().to_string())?;
            let plain = holdout::open(&sealed_bytes, &id_text).map_err(|e| anyhow!(e))?;
            // A sealed NPZ of inputs and labels is evaluated in memory; any
            // other set (CSV) is summarised.
            let evaluation = if plain.starts_with(b"PK") {
                let data = mlsec_model::data::from_bytes(&plain, None, "the held-out set")?;
                let loaded = crate::commands::model::open(global, model, (0.0, 1.0))?;
                let accuracy = mlsec_model::train::evaluate(loaded.classifier(), &data)?;
                Some((data.len(), accuracy))
            } else {
                None
            };
            let table = mlsec_data::table::parse_csv(&plain, &Default::default(), false).ok();
            let access = holdout::append(
                &log_path,
                &sealed_sha,
                &model.display().to_string(),
                &model_sha,
                reason.as_deref(),
            )
            .map_err(|e| anyhow!(e))?;
            let opened = HoldoutOpened {
                sealed: sealed.display().to_string(),
                model: model.display().to_string(),
                model_sha256: model_sha,
                data_sha256: mlsec_core::digest::sha256_hex(&plain),
                rows: evaluation.map_or_else(|| table.as_ref().map_or(0, |t| t.rows), |e| e.0),
                columns: table
                    .map(|t| t.columns.into_iter().map(|c| c.name).collect())
                    .unwrap_or_default(),
                access: access.seq,
                accuracy: evaluation.map(|e| e.1),
            };
            output::emit(global, &Report::new(output::tool(), "holdout open", opened))?;
            Ok(exit::OK)
        }
        HoldoutCommand::Log { log } => {
            let entries = holdout::read_log(log).map_err(|e| anyhow!(e))?;
            for a in &entries {
                println!(
                    "#{} {} {} {}{}",
                    a.seq,
                    a.time,
                    a.model_sha256,
                    a.model,
                    a.reason
                        .as_ref()
                        .map(|r| format!(" — {r}"))
                        .unwrap_or_default()
                );
            }
            eprintln!(
                "{}: {} accesses, chain intact",
                log.display(),
                entries.len()
            );
            Ok(exit::OK)
        }
    }
}
