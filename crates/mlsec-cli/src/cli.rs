//! Command-line arguments (clap derive). Wiring only: every command's logic
//! lives in a library crate.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "mlsec",
    version,
    about = "Secure a machine-learning pipeline end to end: scan, sign, gate, audit, attack and defend.",
    long_about = "mlsec secures a machine-learning pipeline end to end. It ships the controls \
        (dataset digests and data-quality checks, with artifact scanning, signing, ingestion \
        gates, leakage audits and a hardened gateway to come) and the attack simulations that \
        measure them, and reports every finding with its pipeline stage, MITRE ATLAS technique \
        and OWASP ML Top 10 entry.",
    after_help = "Exit status: 0 no finding at or above --fail-on; 1 findings at or above it; \
        2 usage or input error (see docs/exit-codes.md)."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    /// Write the report to FILE instead of standard output.
    #[arg(long, short = 'o', global = true, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// No progress bars or notes on standard error (errors are still printed).
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
    /// When to colour terminal output (`auto`: on a terminal, unless NO_COLOR is set).
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Exit with status 1 when a finding is at or above this severity.
    #[arg(long, global = true, value_enum, default_value_t = FailOn::Medium, value_name = "SEVERITY")]
    pub fail_on: FailOn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// A readable report with tables (colour on a terminal).
    Text,
    /// The `mlsec-report/1` JSON document (docs/json-schema.md).
    Json,
    /// SARIF 2.1.0, for GitHub code scanning and other SARIF viewers.
    Sarif,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    Info,
    Low,
    Medium,
    High,
    Critical,
    /// Never exit 1 because of findings.
    Never,
}

impl FailOn {
    pub fn threshold(self) -> Option<mlsec_core::Severity> {
        use mlsec_core::Severity;
        match self {
            FailOn::Info => Some(Severity::Info),
            FailOn::Low => Some(Severity::Low),
            FailOn::Medium => Some(Severity::Medium),
            FailOn::High => Some(Severity::High),
            FailOn::Critical => Some(Severity::Critical),
            FailOn::Never => None,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the rules mlsec checks, or show one rule's documentation.
    Rules(RulesArgs),
    /// Scan model artifacts for code that runs on load (pickle, PyTorch, NumPy, zip), without executing anything.
    #[command(
        after_help = "Formats are recognised by content, never by extension: raw pickles (protocols 0-5, stacked, \
            nested), PyTorch zip and legacy checkpoints and TorchScript, NumPy .npy/.npz, joblib, Keras, ONNX, GGUF, \
            safetensors, and zip, tar and 7z archives and compressed streams (every member is sniffed). Default-deny: a global not on the allow-list is a finding. See `mlsec rules` and docs/scanner.md."
    )]
    Scan(ScanArgs),
    /// Convert a PyTorch state dict (zip or legacy) or NumPy .npy/.npz to safetensors, executing nothing.
    #[command(
        after_help = "A restricted interpreter rebuilds only dicts and tensors (torch._utils._rebuild_tensor_v2, \
            _rebuild_parameter, collections.OrderedDict, typed storages); any other global stops the conversion \
            with an error naming it. Non-tensor entries (epoch counters, configs) are dropped."
    )]
    Convert(ConvertArgs),
    /// Create a signing key pair (PEM): ECDSA P-256 (default), P-384, or Ed25519.
    Keygen(KeygenArgs),
    /// Sign a model folder or file (OpenSSF model-signing v1 bundle).
    #[command(
        after_help = "Compatible with the `model_signing` reference tool: its verifier accepts mlsec's \
        P-256/P-384 signatures and mlsec verifies its bundles. See docs/signing.md."
    )]
    Sign(SignArgs),
    /// Verify a model against its signature and say exactly what differs.
    Verify(VerifyArgs),
    /// Attest a training run: in-toto Statement v1 + SLSA provenance v1 in a DSSE envelope (`attest verify` checks one).
    Attest(AttestArgs),
    /// Pipeline provenance with in-toto: sign what each step consumed and produced, verify a layout.
    #[command(subcommand)]
    Provenance(ProvenanceCommand),
    /// Inspect a model or run it on inputs (mlsec models and ONNX graphs).
    #[command(subcommand)]
    Model(ModelCommand),
    /// Train a model from the zoo (mlp, lenet, resnet), optionally adversarially (PGD-AT, TRADES).
    Train(TrainArgs),
    /// Attack simulations: evasion (adversarial examples) and poisoned data with ground truth.
    #[command(subcommand)]
    Attack(AttackCommand),
    /// Audits of the evaluation stage: leakage between train and test splits.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// The sealed held-out set: encrypt it (age), open it in memory once per model, log every access.
    #[command(subcommand)]
    Holdout(HoldoutCommand),
    /// Verify a Python environment: installed files against RECORD, a lockfile, offline OSV advisories.
    #[command(subcommand)]
    Env(EnvCommand),
    /// Work with datasets (collection stage).
    #[command(subcommand)]
    Data(DataCommand),
    /// Print a shell completion script (e.g. `mlsec completions bash > /etc/bash_completion.d/mlsec`).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
pub struct RulesArgs {
    /// A rule code (MLS-DATA-003) or name (conflicting-labels) to document.
    pub code: Option<String>,
    /// Print the full reference of every rule as Markdown (docs/rules.md is generated this way).
    #[arg(long, conflicts_with = "code")]
    pub markdown: bool,
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Files or folders (scanned recursively), or `-` for standard input.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<String>,
    /// A TOML policy file extending the allow- and deny-lists (docs/scanner.md).
    #[arg(long, value_name = "FILE")]
    pub policy: Option<std::path::PathBuf>,
    /// Also check archive CRCs: reads every byte of every member.
    #[arg(long)]
    pub verify_data: bool,
    /// Largest file to scan, in bytes (files are memory-mapped, not read into memory).
    #[arg(long, value_name = "BYTES", default_value_t = 16 << 30)]
    pub max_bytes: u64,
    /// Largest archive member or compressed stream to inflate for analysis: the
    /// memory a decompression bomb can take (a 7z archive may decode four times it in all).
    /// Beyond it, a finding says what was not analysed.
    #[arg(long, value_name = "BYTES", default_value_t = 64 << 20)]
    pub max_member_bytes: u64,
}

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Key type: p256, p384 or ed25519 (Ed25519 is an mlsec extension the reference tool does not accept).
    #[arg(long = "type", default_value = "p256", value_name = "TYPE")]
    pub kind: String,
    /// Write PREFIX.priv.pem and PREFIX.pub.pem.
    #[arg(long, value_name = "PREFIX", default_value = "mlsec-signing")]
    pub out: std::path::PathBuf,
    /// Replace existing key files.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct SignArgs {
    /// The model folder (or single file) to sign.
    #[arg(value_name = "MODEL")]
    pub model: std::path::PathBuf,
    /// Private key (PKCS#8 PEM).
    #[arg(long, value_name = "KEY")]
    pub key: std::path::PathBuf,
    /// Where to write the signature bundle.
    #[arg(long, value_name = "FILE", default_value = "model.sig")]
    pub signature: std::path::PathBuf,
    /// Digest: sha256, blake2b or blake3.
    #[arg(long = "hash", default_value = "sha256", value_name = "HASH")]
    pub hash: String,
    /// Cut files into shards of this many bytes (sha256 only).
    #[arg(long, value_name = "BYTES")]
    pub shard_size: Option<u64>,
    /// Paths to leave out, relative to the current directory or the model.
    #[arg(long, value_name = "PATH", num_args = 1..)]
    pub ignore_paths: Vec<std::path::PathBuf>,
    /// Hash the targets of symbolic links instead of refusing them.
    #[arg(long)]
    pub allow_symlinks: bool,
    /// Certificate method: the signing certificate (PEM) holding the key's public half.
    #[arg(long, value_name = "LEAF")]
    pub cert: Option<std::path::PathBuf>,
    /// Certificates of the chain (PEM, issuers of --cert up to the root), carried in the bundle.
    #[arg(long, value_name = "CERTS", num_args = 1.., requires = "cert")]
    pub chain: Vec<std::path::PathBuf>,
    /// Reuse digests of files whose size, modification time and inode did not change since the
    /// last signing with this cache file (created if missing).
    #[arg(long, value_name = "FILE")]
    pub digest_cache: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("trust").required(true).args(["key", "ca"])))]
pub struct VerifyArgs {
    /// The model folder (or single file) to verify.
    #[arg(value_name = "MODEL")]
    pub model: std::path::PathBuf,
    /// Trusted public key (SubjectPublicKeyInfo PEM): the key method.
    #[arg(long, value_name = "PUB")]
    pub key: Option<std::path::PathBuf>,
    /// Trusted root certificates (PEM): the certificate method. The bundle's signing certificate
    /// must chain to one of them.
    #[arg(long, value_name = "CHAIN", num_args = 1..)]
    pub ca: Vec<std::path::PathBuf>,
    /// The signature bundle.
    #[arg(long, value_name = "FILE", default_value = "model.sig")]
    pub signature: std::path::PathBuf,
    /// More paths to ignore, relative to the current directory or the model.
    #[arg(long, value_name = "PATH", num_args = 1..)]
    pub ignore_paths: Vec<std::path::PathBuf>,
    /// Only check the files the signature names; extra files pass.
    #[arg(long)]
    pub ignore_unsigned_files: bool,
    /// Verify only these files (relative names).
    #[arg(long, value_name = "FILE", num_args = 1..)]
    pub files: Vec<String>,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct AttestArgs {
    #[command(subcommand)]
    pub verify: Option<AttestCommand>,
    /// The trained model (folder or file): its files become the subjects.
    #[arg(value_name = "MODEL", required = true)]
    pub model: Option<std::path::PathBuf>,
    /// Private key (PKCS#8 PEM).
    #[arg(long, value_name = "KEY", required = true)]
    pub key: Option<std::path::PathBuf>,
    /// Training data (files or folders), recorded with their SHA-256.
    #[arg(long = "dataset", value_name = "PATH")]
    pub datasets: Vec<std::path::PathBuf>,
    /// The training script.
    #[arg(long, value_name = "FILE")]
    pub script: Option<std::path::PathBuf>,
    /// A description of the environment (lockfile, requirements, image digest file).
    #[arg(long, value_name = "FILE")]
    pub environment: Option<std::path::PathBuf>,
    /// The builder's identity URI.
    #[arg(
        long,
        value_name = "URI",
        default_value = "https://github.com/mlsec/mlsec/builders/local"
    )]
    pub builder_id: String,
    /// Run identifier and RFC 3339 start/finish times.
    #[arg(long, value_name = "ID")]
    pub invocation_id: Option<String>,
    #[arg(long, value_name = "TIME")]
    pub started_on: Option<String>,
    #[arg(long, value_name = "TIME")]
    pub finished_on: Option<String>,
    /// Training parameters to record (KEY=VALUE), e.g. --param epochs=3.
    #[arg(long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// Where to write the envelope.
    #[arg(
        long = "out",
        value_name = "FILE",
        default_value = "attestation.dsse.json"
    )]
    pub out: std::path::PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum AttestCommand {
    /// Verify an attestation's signature and, with --model, its subjects.
    Verify {
        /// The DSSE envelope.
        #[arg(value_name = "ENVELOPE")]
        envelope: std::path::PathBuf,
        /// Trusted public key (SubjectPublicKeyInfo PEM).
        #[arg(long, value_name = "PUB")]
        key: std::path::PathBuf,
        /// Check that the model's files still have the attested digests.
        #[arg(long, value_name = "MODEL")]
        model: Option<std::path::PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// The checkpoint or NumPy file to convert.
    #[arg(value_name = "MODEL")]
    pub model: std::path::PathBuf,
    /// Target format.
    #[arg(long, value_enum, default_value_t = ConvertTarget::Safetensors)]
    pub to: ConvertTarget,
    /// Where to write (default: MODEL with the extension `.safetensors`).
    #[arg(long = "out", value_name = "FILE")]
    pub out: Option<std::path::PathBuf>,
    /// Replace the output file if it exists.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ConvertTarget {
    Safetensors,
}

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Describe datasets: format, shape, dtype, classes, label histogram, SHA-256 digest, and data-quality findings.
    #[command(
        after_help = "Formats are recognised by content: IDX (plain or gzipped, with its labels file beside it), \
            NumPy .npy/.npz, CSV/TSV, Parquet, and image folders (FOLDER/<class>/<image>.png|jpg). \
            `mnist` names the bundled 10,000-digit MNIST sample."
    )]
    Inspect(InspectArgs),
    /// Compare a stream with a reference, window by window: KS and PSI per feature, kernel MMD jointly.
    #[command(
        after_help = "Reference and stream: CSV, Parquet, NPY, NPZ (the largest array; `--label` names the label array), an image folder (FOLDER/<class>/<image>) or `mnist`; features are matched by name (f0, f1, … for arrays and pixels). KS p-values \
            are those of scipy.stats.ks_2samp (exact up to 10,000 rows per sample, asymptotic above). A window \
            drifts when a feature's KS statistic or PSI is over its threshold or the MMD p-value is under \
            --mmd-alpha; the first such window is the alarm. See docs/data.md."
    )]
    Drift(DriftArgs),
    /// Score a batch's rows with an Isolation Forest fit on the reference; flag the outliers.
    #[command(
        after_help = "scikit-learn's algorithm: 100 trees on subsamples of 256 reference rows, depth ⌈log2 256⌉, \
            scores −2^(−E[h(x)]/c(256)) (lower is more anomalous). A row is an outlier when its score is below \
            the offset: −0.5 by default (scikit-learn's contamination=\"auto\"), or the reference's \
            --contamination quantile, or --threshold. Seeded and deterministic."
    )]
    Outliers(OutliersArgs),
    /// The ingestion gate: check a batch's source, schema, distribution, outliers and labels; quarantine what fails.
    #[command(
        after_help = "The policy (TOML, docs/data.md) lists allowed sources and their keys, the schema and the \
            thresholds. A batch without a valid signed manifest (see `mlsec data manifest`) from an allowed source \
            is rejected whole; a batch whose distribution differs from the reference is quarantined whole; rows \
            failing the schema, the Isolation Forest or the label screen are quarantined with their reasons. \
            With --ledger every decision and quarantined row is recorded in SQLite, one transaction per batch."
    )]
    Gate(GateArgs),
    /// Sign a batch manifest: an in-toto statement with the batch's SHA-256, in DSSE, for the gate.
    Manifest(ManifestArgs),
    /// List the batches a gate ledger recorded, or one batch's quarantined rows.
    Ledger(LedgerArgs),
}

#[derive(Debug, Args)]
pub struct GateArgs {
    /// The trusted reference dataset (CSV, Parquet, NPY, NPZ, an image folder or `mnist`).
    #[arg(long, value_name = "REF")]
    pub reference: String,
    /// The incoming batch (CSV or Parquet).
    #[arg(long, value_name = "BATCH")]
    pub batch: std::path::PathBuf,
    /// The gate policy (TOML).
    #[arg(long, value_name = "FILE")]
    pub policy: std::path::PathBuf,
    /// The batch's signed manifest (required when the policy lists sources).
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<std::path::PathBuf>,
    /// SQLite ledger to record the decision in (created if missing).
    #[arg(long, value_name = "DB")]
    pub ledger: Option<std::path::PathBuf>,
    /// Write the accepted rows here (CSV).
    #[arg(long, value_name = "FILE")]
    pub accepted: Option<std::path::PathBuf>,
    /// Write the quarantined rows here (CSV, with their row number and reasons).
    #[arg(long, value_name = "FILE")]
    pub quarantine: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub reference_memory: ReferenceMemory,
}

#[derive(Debug, Args)]
pub struct ManifestArgs {
    /// The batch file.
    #[arg(value_name = "BATCH")]
    pub batch: std::path::PathBuf,
    /// The source's private key (PKCS#8 PEM).
    #[arg(long, value_name = "KEY")]
    pub key: std::path::PathBuf,
    /// The source's name, as in the gate policy.
    #[arg(long, value_name = "NAME")]
    pub source: String,
    /// Where to write the manifest.
    #[arg(long = "out", value_name = "FILE")]
    pub out: std::path::PathBuf,
}

#[derive(Debug, Args)]
pub struct LedgerArgs {
    /// The SQLite ledger.
    #[arg(long, value_name = "DB")]
    pub ledger: std::path::PathBuf,
    /// Show this batch's quarantined rows.
    #[arg(long, value_name = "ID")]
    pub batch: Option<i64>,
}

#[derive(Debug, Args)]
pub struct OutliersArgs {
    /// The trusted reference dataset the forest is fit on.
    #[arg(long, value_name = "REF")]
    pub reference: String,
    /// The rows to score (read in chunks, so they may be larger than memory; `-` reads CSV from standard input).
    #[arg(long, value_name = "BATCH")]
    pub batch: String,
    /// The label column, left out of the features.
    #[arg(long, value_name = "NAME")]
    pub label: Option<String>,
    /// Expected share of outliers in the reference: sets the offset at that quantile of its scores.
    #[arg(long, value_name = "SHARE", conflicts_with = "threshold")]
    pub contamination: Option<f64>,
    /// Flag rows whose score is below this (scores lie in [−1, 0]).
    #[arg(long, value_name = "SCORE")]
    pub threshold: Option<f64>,
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub trees: usize,
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub max_samples: usize,
    #[arg(long, value_name = "SEED", default_value_t = 20261122)]
    pub seed: u64,
    /// Write every row's score to this NPY file (float64).
    #[arg(long, value_name = "FILE")]
    pub scores_out: Option<std::path::PathBuf>,
    /// How many of the most anomalous rows to list.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub top: usize,
    #[command(flatten)]
    pub reference_memory: ReferenceMemory,
}

#[derive(Debug, Args)]
pub struct DriftArgs {
    /// The trusted reference dataset.
    #[arg(long, value_name = "REF")]
    pub reference: String,
    /// The data to monitor, in arrival order (read in chunks, so it may be larger than memory; `-` reads CSV from standard input).
    #[arg(long, value_name = "FILE")]
    pub stream: String,
    /// Rows per window.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub window: usize,
    /// The label column, left out of the features.
    #[arg(long, value_name = "NAME")]
    pub label: Option<String>,
    /// Drift when a feature's KS statistic exceeds this.
    #[arg(long, value_name = "D", default_value_t = 0.15)]
    pub ks_max: f64,
    /// Drift when a feature's PSI exceeds this.
    #[arg(long, value_name = "PSI", default_value_t = 0.25)]
    pub psi_max: f64,
    /// Drift when the MMD permutation p-value is below this.
    #[arg(long, value_name = "P", default_value_t = 0.01)]
    pub mmd_alpha: f64,
    /// Skip the MMD test (per-feature tests only).
    #[arg(long)]
    pub no_mmd: bool,
    /// Permutations for the MMD p-value.
    #[arg(long, value_name = "N", default_value_t = 200)]
    pub permutations: usize,
    /// KS p-value method: auto (scipy's rule), exact or asymp.
    #[arg(long, value_name = "METHOD", default_value = "auto")]
    pub method: String,
    /// Seed for the MMD subsamples and permutations.
    #[arg(long, value_name = "SEED", default_value_t = 20261122)]
    pub seed: u64,
    #[command(flatten)]
    pub reference_memory: ReferenceMemory,
}

/// How much of a reference dataset is held in memory.
#[derive(Debug, Args)]
pub struct ReferenceMemory {
    /// Mebibytes of the reference held in memory (8 bytes a number, plus its labels); a larger reference is sorted column by column into temporary files (under TMPDIR, removed afterwards) and read again for the rows the screens sample, so it may be larger than memory. `data gate` gives its batch's numbers, and the values of its `unique` columns, the same budget. Results are the same either way.
    #[arg(long = "reference-memory", value_name = "MIB", default_value_t = 1024)]
    pub mib: u64,
}

impl ReferenceMemory {
    pub fn options(&self) -> mlsec_data::reference::ReferenceOptions {
        mlsec_data::reference::ReferenceOptions {
            memory_bytes: self.mib.saturating_mul(1 << 20),
            spill_dir: None,
        }
    }
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Dataset files or folders, or `mnist` for the bundled sample.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<String>,
    /// The label column (CSV, Parquet) or array (NPZ); found by name (label, target, class, y, …) when omitted.
    #[arg(long, value_name = "NAME")]
    pub label: Option<String>,
    /// Largest file or decompressed archive member to read, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 8 << 30)]
    pub max_bytes: u64,
    /// Flag a class with fewer samples than this share of the largest class.
    #[arg(long, value_name = "RATIO", default_value_t = 0.1)]
    pub imbalance_ratio: f64,
}

#[derive(Debug, Subcommand)]
pub enum ProvenanceCommand {
    /// Record materials, run a step's command, record products and write a signed in-toto link.
    #[command(
        after_help = "Writes `<step>.<keyid[:8]>.link` (the file in-toto-run writes) into --out-dir. \
            The command runs directly, never through a shell; its exit code is recorded in the link and \
            a failing command makes mlsec exit 1 after writing the link. See docs/provenance.md."
    )]
    Run(ProvenanceRunArgs),
    /// Verify a supply chain: a signed layout, the step links, artifact rules and inspections.
    #[command(
        after_help = "Gives in-toto-verify's verdicts: layout signatures by every --layout-key, expiry, \
            link files and functionary thresholds, artifact rules (MATCH, ALLOW, DISALLOW, CREATE, DELETE, \
            MODIFY, REQUIRE) and inspections, which run their command in --workdir. The first failure is \
            reported with the rule and the artifacts it matched."
    )]
    Verify(ProvenanceVerifyArgs),
    /// Sign a layout (the JSON of its `signed` part, or an already signed layout to re-sign).
    SignLayout(SignLayoutArgs),
    /// Print a public key as a layout `keys` entry, with its in-toto keyid.
    Key {
        /// The public key (SubjectPublicKeyInfo PEM).
        #[arg(value_name = "PUB")]
        key: std::path::PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct ProvenanceRunArgs {
    /// The step's name, as in the layout.
    #[arg(long, value_name = "NAME")]
    pub step: String,
    /// The functionary's private key (PKCS#8 PEM).
    #[arg(long, value_name = "KEY")]
    pub key: std::path::PathBuf,
    /// Files or folders the step reads, recorded before the command runs.
    #[arg(long, value_name = "PATH", num_args = 1..)]
    pub materials: Vec<String>,
    /// Files or folders the step writes, recorded after the command runs.
    #[arg(long, value_name = "PATH", num_args = 1..)]
    pub products: Vec<String>,
    /// gitignore-style patterns left out of the record (in addition to `*.link*`, `.git`, `*.pyc`, `*~`).
    #[arg(long, value_name = "PATTERN", num_args = 1..)]
    pub exclude: Vec<String>,
    /// Folder artifact paths are relative to and the command runs in.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub base_path: std::path::PathBuf,
    /// Where to write the link.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub out_dir: std::path::PathBuf,
    /// Capture the command's stdout and stderr into the link.
    #[arg(long)]
    pub record_streams: bool,
    /// Write the link as a DSSE envelope (in-toto-run --use-dsse) instead of a classic signed link.
    #[arg(long)]
    pub dsse: bool,
    /// The step's command and its arguments, after `--`.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ProvenanceVerifyArgs {
    /// The signed root layout.
    #[arg(long, value_name = "FILE")]
    pub layout: std::path::PathBuf,
    /// Public keys that must all have signed the layout (repeatable).
    #[arg(long = "layout-key", value_name = "PUB", required = true, num_args = 1..)]
    pub layout_keys: Vec<std::path::PathBuf>,
    /// Folder with the step links.
    #[arg(long = "links", value_name = "DIR", default_value = ".")]
    pub links: std::path::PathBuf,
    /// Folder the inspections run in (the final product).
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub workdir: std::path::PathBuf,
    /// Do not run the layout's inspection commands (their rules are then not checked).
    #[arg(long)]
    pub skip_inspections: bool,
}

#[derive(Debug, Args)]
pub struct SignLayoutArgs {
    /// The layout JSON.
    #[arg(value_name = "LAYOUT")]
    pub layout: std::path::PathBuf,
    /// The project owner's private key (PKCS#8 PEM).
    #[arg(long, value_name = "KEY")]
    pub key: std::path::PathBuf,
    /// Where to write the signed layout.
    #[arg(long = "out", value_name = "FILE", default_value = "root.layout")]
    pub out: std::path::PathBuf,
    /// Write a DSSE envelope instead of a classic signed layout.
    #[arg(long)]
    pub dsse: bool,
    /// A functionary's public key (NAME=PUB.pem, repeatable): added to the layout's `keys`, and every
    /// step `pubkeys` entry equal to NAME is replaced by its keyid.
    #[arg(long = "functionary", value_name = "NAME=PUB")]
    pub functionaries: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum EnvCommand {
    /// Check every installed distribution's files against its RECORD, list files no distribution
    /// owns (`.pth` start-up hooks above all), compare with a lockfile and an OSV export.
    #[command(
        after_help = "Without --python or --site-packages, the interpreter of the active virtual environment \
            ($VIRTUAL_ENV) or else `python3` is asked for its site-packages (run isolated, with -I -S). \
            Lockfiles: requirements.txt (with --hash), uv.lock, poetry.lock. --osv takes a folder of OSV \
            JSON advisories (e.g. the extracted PyPI/all.zip export); nothing is downloaded. See docs/provenance.md."
    )]
    Verify(EnvVerifyArgs),
}

#[derive(Debug, Args)]
pub struct EnvVerifyArgs {
    /// The Python interpreter whose environment to verify.
    #[arg(long, value_name = "EXE", conflicts_with = "site_packages")]
    pub python: Option<std::path::PathBuf>,
    /// site-packages folders to verify directly (repeatable).
    #[arg(long, value_name = "DIR", num_args = 1..)]
    pub site_packages: Vec<std::path::PathBuf>,
    /// A lockfile to compare with: requirements.txt (with hashes), uv.lock or poetry.lock.
    #[arg(long, value_name = "FILE")]
    pub lock: Option<std::path::PathBuf>,
    /// A folder of OSV advisories (JSON) to check installed versions against, offline.
    #[arg(long, value_name = "DIR")]
    pub osv: Option<std::path::PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum AttackCommand {
    /// Adversarial examples against a model: clean and robust accuracy, success rate, perturbation sizes, queries.
    #[command(
        after_help = "White-box (gradients): fgsm, pgd, apgd-ce, apgd-dlr, cw (L2), deepfool. \
        Score-based: square. Decision-based: hsj. Only samples the model classifies correctly are attacked; \
        robust accuracy counts the samples still right within --eps. See docs/attacks.md."
    )]
    Evasion(EvasionArgs),
    /// Write a poisoned copy of a dataset and its ground truth, to measure the gate's precision and recall.
    Poison(PoisonArgs),
}

#[derive(Debug, Args)]
pub struct PoisonArgs {
    /// The clean dataset (CSV or Parquet).
    #[arg(long, value_name = "DATA")]
    pub data: std::path::PathBuf,
    /// Share of rows to poison (inject: share of rows to add).
    #[arg(long, value_name = "RATE", default_value_t = 0.03)]
    pub rate: f64,
    /// label-flip, shift or inject.
    #[arg(long, value_name = "KIND")]
    pub kind: String,
    /// The label column (found by name when omitted).
    #[arg(long, value_name = "NAME")]
    pub label: Option<String>,
    /// Shift size in standard deviations (shift).
    #[arg(long, value_name = "SD", default_value_t = 4.0)]
    pub magnitude: f64,
    #[arg(long, value_name = "SEED", default_value_t = 20261122)]
    pub seed: u64,
    /// The poisoned batch (CSV).
    #[arg(long = "out", value_name = "FILE")]
    pub out: std::path::PathBuf,
    /// The ground truth (CSV: row, poisoned, kind).
    #[arg(long, value_name = "FILE")]
    pub truth: std::path::PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Find test rows that are in training (exact and near-duplicate texts), temporal bleed and target leakage.
    #[command(
        after_help = "Rows are compared over the columns both splits share, minus --label, --time and --ignore \
            columns, after normalisation (trim, collapse whitespace, lower case, canonical numbers). --text adds \
            MinHash/LSH over character shingles, every candidate verified by exact Jaccard. Both splits are read \
            in chunks: memory holds one block of the test split's row hashes and texts (--test-memory), one chunk \
            of the training split and the target-leakage sample (--screen-rows). A test split whose state is \
            larger than --test-memory is held in blocks, the training split read once per block, so both splits \
            may be larger than memory. With --images the same holds for images. See docs/data.md."
    )]
    Leakage(LeakageArgs),
}

#[derive(Debug, Args)]
pub struct LeakageArgs {
    /// The training split: CSV or Parquet; with --images an NPY/IDX array, an image folder or mnist:train.
    #[arg(long, value_name = "TRAIN")]
    pub train: std::path::PathBuf,
    /// The test split, in the same form.
    #[arg(long, value_name = "TEST")]
    pub test: std::path::PathBuf,
    /// Compare images: pixel-identical and near-duplicate (shifted, brightened, re-encoded) copies.
    #[arg(long)]
    pub images: bool,
    /// With --images: the correlation from which two images are near-duplicates.
    #[arg(long, value_name = "R", default_value_t = 0.99)]
    pub image_threshold: f64,
    /// With --images: the largest shift, in pixels, over which the correlation is maximised (at most 8).
    #[arg(long, value_name = "PIXELS", default_value_t = 1)]
    pub image_shift: usize,
    /// With --images: the cosine of the coarse 4×4-pooled descriptors from which a pair is verified
    /// (lower finds more heavily edited copies, and takes longer).
    #[arg(long, value_name = "COS", default_value_t = 0.85)]
    pub image_candidates: f64,
    /// Memory for the test split's state (row hashes and texts, or images); a larger test split is
    /// held in blocks, the training split read once per block (a block closes at the first chunk past it).
    #[arg(long, value_name = "MIB", default_value_t = 1024)]
    pub test_memory: usize,
    /// The label column: left out of row comparison, and tested for target leakage.
    #[arg(long, value_name = "NAME")]
    pub label: Option<String>,
    /// Columns left out of the row comparison (ids, timestamps).
    #[arg(long, value_name = "NAME", num_args = 1..)]
    pub ignore: Vec<String>,
    /// A text column to search for near-duplicates.
    #[arg(long, value_name = "NAME")]
    pub text: Option<String>,
    /// Characters per shingle.
    #[arg(long, value_name = "K", default_value_t = 5)]
    pub shingle: usize,
    /// MinHash permutations.
    #[arg(long, value_name = "N", default_value_t = 128)]
    pub permutations: usize,
    /// LSH bands (a divisor of --permutations).
    #[arg(long, value_name = "B", default_value_t = 32)]
    pub bands: usize,
    /// Jaccard similarity from which two texts are near-duplicates.
    #[arg(long, value_name = "J", default_value_t = 0.5)]
    pub threshold: f64,
    /// A time column (ISO 8601 UTC or epoch seconds).
    #[arg(long, value_name = "NAME")]
    pub time: Option<String>,
    /// The split time; without it, the earliest test row.
    #[arg(long, value_name = "TIME", requires = "time")]
    pub split_time: Option<String>,
    /// With --label: training rows the target-leakage screen holds; a larger split is screened on a uniform sample.
    #[arg(long, value_name = "N", default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub screen_rows: u64,
    /// Seed of the target-leakage sample.
    #[arg(long, value_name = "S", default_value_t = 20261123)]
    pub seed: u64,
}

#[derive(Debug, Subcommand)]
pub enum HoldoutCommand {
    /// Create an age X25519 identity (NAME.age-identity, owner-only) and print its recipient.
    Keygen {
        #[arg(long = "out", value_name = "NAME")]
        out: std::path::PathBuf,
    },
    /// Encrypt a held-out dataset to a recipient.
    Seal {
        /// The held-out dataset file.
        #[arg(value_name = "DATA")]
        data: std::path::PathBuf,
        /// The recipient (age1…), or a file holding it.
        #[arg(long, value_name = "RECIPIENT")]
        recipient: String,
        #[arg(long = "out", value_name = "FILE")]
        out: std::path::PathBuf,
    },
    /// Evaluate a model once on the sealed set, in memory; refused for a model already logged unless --reason.
    #[command(
        visible_alias = "open",
        after_help = "Every access is appended to a hash-chained log (default: SEALED.access.log) that `mlsec holdout \
            log` verifies. The decrypted data never touches the disk. A sealed NPZ of inputs and labels (x, y) is \
            evaluated with the model (an mlsec model or ONNX graph) and its accuracy reported; any other set (CSV) \
            is summarised (rows, columns, SHA-256) for the model's digest."
    )]
    Evaluate {
        #[arg(long, value_name = "FILE")]
        sealed: std::path::PathBuf,
        /// The age identity file.
        #[arg(long, value_name = "KEY")]
        identity: std::path::PathBuf,
        /// The model this access is for (its SHA-256 is logged).
        #[arg(long, value_name = "MODEL")]
        model: std::path::PathBuf,
        /// Why a model is evaluated again (required for a repeat; logged).
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        #[arg(long, value_name = "FILE")]
        log: Option<std::path::PathBuf>,
    },
    /// Verify and list the access log of a sealed set.
    Log {
        #[arg(value_name = "LOG")]
        log: std::path::PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// The architecture: mlp, lenet or resnet.
    #[arg(long, value_name = "ARCH", default_value = "lenet")]
    pub model: String,
    /// Training data: `mnist` (the bundled sample's 8,000 training digits) or an NPY/NPZ file.
    #[arg(long, value_name = "DATA", default_value = "mnist")]
    pub data: String,
    /// Labels for a .npy of inputs.
    #[arg(long, value_name = "NPY")]
    pub labels: Option<PathBuf>,
    /// Evaluation data (with --data mnist: the 2,000 test digits).
    #[arg(long, value_name = "DATA")]
    pub test: Option<String>,
    /// Labels for a .npy of evaluation inputs.
    #[arg(long, value_name = "NPY")]
    pub test_labels: Option<PathBuf>,
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub epochs: usize,
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub batch_size: usize,
    /// Adam's peak learning rate (cosine decay to 1% of it).
    #[arg(long, value_name = "LR", default_value_t = 1e-3)]
    pub lr: f64,
    #[arg(long, value_name = "SEED", default_value_t = 0)]
    pub seed: u64,
    /// Adversarial training: pgd (Madry et al.) or trades (Zhang et al.).
    #[arg(long, value_name = "KIND")]
    pub adversarial: Option<String>,
    /// L-infinity radius of the training attack.
    #[arg(long, value_name = "EPS", default_value_t = 0.3)]
    pub eps: f32,
    /// PGD steps of the training attack.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub attack_steps: usize,
    /// Step size of the training attack (default 2.5 * eps / steps).
    #[arg(long, value_name = "SIZE")]
    pub attack_step_size: Option<f32>,
    /// Fraction of the run over which eps grows from 0 to --eps.
    #[arg(long, value_name = "FRACTION", default_value_t = 0.3)]
    pub warmup: f64,
    /// TRADES: weight of the robustness (KL) term.
    #[arg(long, value_name = "BETA", default_value_t = 6.0)]
    pub beta: f32,
    /// Worker threads (default: all cores).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Where to write the weights (safetensors); the config goes beside it as .json.
    #[arg(long = "out", value_name = "FILE")]
    pub out: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NormArg {
    Linf,
    L2,
}

#[derive(Debug, Args)]
pub struct EvasionArgs {
    /// The model: NAME.safetensors with NAME.json beside it (from `mlsec train`), or an ONNX file.
    #[arg(long, value_name = "MODEL")]
    pub model: PathBuf,
    /// `mnist` (the bundled sample's 2,000 test digits) or an NPY/NPZ file.
    #[arg(long, value_name = "DATA", default_value = "mnist")]
    pub data: String,
    /// Labels for a .npy of inputs.
    #[arg(long, value_name = "NPY")]
    pub labels: Option<PathBuf>,
    /// fgsm, pgd, apgd-ce, apgd-dlr, cw, deepfool, square or hsj.
    #[arg(long, value_name = "ATTACK", default_value = "pgd")]
    pub attack: String,
    /// Perturbation budget in the chosen norm (inputs in [0, 1]).
    #[arg(long, value_name = "EPS", default_value_t = 0.3)]
    pub eps: f32,
    #[arg(long, value_enum, default_value_t = NormArg::Linf)]
    pub norm: NormArg,
    /// Attack the first N samples of the data.
    #[arg(long, value_name = "N", default_value_t = 500)]
    pub n: usize,
    /// Iterations (default per attack: pgd 40, apgd 100, cw 100, deepfool 50, square 5000, hsj 40).
    #[arg(long, value_name = "N")]
    pub steps: Option<usize>,
    /// PGD step size (default 2.5 * eps / steps); C&W learning rate (default 0.1).
    #[arg(long, value_name = "SIZE")]
    pub step_size: Option<f32>,
    /// Random restarts (pgd, apgd).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub restarts: usize,
    #[arg(long, value_name = "SEED", default_value_t = 0)]
    pub seed: u64,
    /// Query budget per sample (square, hsj).
    #[arg(long, value_name = "N")]
    pub max_queries: Option<u64>,
    /// C&W confidence (kappa).
    #[arg(long, value_name = "KAPPA", default_value_t = 0.0)]
    pub confidence: f32,
    /// Give the attack query access only, as to a remote endpoint (square and hsj work).
    #[arg(long)]
    pub query_only: bool,
    /// Keep iterating on samples already fooled (to time full-length attacks).
    #[arg(long)]
    pub no_early_stop: bool,
    /// Also measure robust accuracy at each of these budgets (comma-separated) and plot the curve.
    #[arg(long, value_name = "EPS,...", value_delimiter = ',')]
    pub sweep: Vec<f32>,
    /// Write adversarial.npy, labels, predictions, grid.png and the sweep plot here.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
    /// Input range an ONNX model expects (an mlsec model records its own).
    #[arg(long, value_name = "LO,HI", value_delimiter = ',', num_args = 2, default_values_t = [0.0, 1.0])]
    pub input_range: Vec<f32>,
    /// Worker threads (default: all cores).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
}

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// What a model takes and gives, and whether attacks get gradients from it.
    Inspect(ModelInspectArgs),
    /// Run a model on inputs: logits (and input gradients of the cross-entropy) as NPY.
    Predict(ModelPredictArgs),
}

#[derive(Debug, Args)]
pub struct ModelInspectArgs {
    /// NAME.safetensors (with NAME.json beside it) or an ONNX file.
    pub model: PathBuf,
    /// Input range an ONNX model expects (an mlsec model records its own).
    #[arg(long, value_name = "LO,HI", value_delimiter = ',', num_args = 2, default_values_t = [0.0, 1.0])]
    pub input_range: Vec<f32>,
}

#[derive(Debug, Args)]
pub struct ModelPredictArgs {
    /// NAME.safetensors (with NAME.json beside it) or an ONNX file.
    #[arg(long, value_name = "MODEL")]
    pub model: PathBuf,
    /// `mnist` (the 2,000 test digits) or an NPY/NPZ file of inputs.
    #[arg(long, value_name = "DATA")]
    pub data: String,
    /// Labels (NPY); required with --gradient unless the data carries them.
    #[arg(long, value_name = "NPY")]
    pub labels: Option<PathBuf>,
    /// Write the logits here (float32 NPY, [n, classes]).
    #[arg(long = "out", value_name = "NPY")]
    pub out: PathBuf,
    /// Also write d(cross-entropy)/d(input) here (float32 NPY, the input's shape).
    #[arg(long, value_name = "NPY")]
    pub gradient: Option<PathBuf>,
    /// Input range an ONNX model expects.
    #[arg(long, value_name = "LO,HI", value_delimiter = ',', num_args = 2, default_values_t = [0.0, 1.0])]
    pub input_range: Vec<f32>,
}
