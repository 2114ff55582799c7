//! Scanning artifacts: recognise each input by content, follow it into
//! archives, run the pickle machine on every pickle, and turn what it saw
//! into findings under the policy.

use crate::formats;
use crate::pickle::{self, Analysis, Limits};
use crate::policy::{self, Policy, Verdict};
use crate::rules::*;
use crate::sevenzip;
use crate::torchscript;
use crate::zipread;
use mlsec_core::{Finding, Location, Severity};
use std::collections::BTreeMap;

/// Options for a scan.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    pub policy: Policy,
    pub limits: Limits,
    /// Check zip CRCs (and, later, storage sizes) — reads every byte.
    pub verify_data: bool,
    /// Largest archive member or compressed stream inflated for analysis
    /// (default 64 MiB): the bound on memory a decompression bomb can take.
    pub max_member_bytes: u64,
    /// Archives inside archives are followed this deep.
    pub max_archive_depth: usize,
    pub max_members: usize,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            policy: Policy::default(),
            limits: Limits::default(),
            verify_data: false,
            max_member_bytes: 64 << 20,
            max_archive_depth: 3,
            max_members: 100_000,
        }
    }
}

/// What an input turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Pickle,
    TorchLegacy,
    Zip,
    TorchZip,
    Npy,
    Npz,
    Safetensors,
    Gguf,
    Keras,
    Hdf5,
    Onnx,
    Tar,
    #[serde(rename = "7z")]
    SevenZip,
    Compressed,
    Other,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Pickle => "pickle",
            Kind::TorchLegacy => "pytorch-legacy",
            Kind::Zip => "zip",
            Kind::TorchZip => "pytorch-zip",
            Kind::Npy => "npy",
            Kind::Npz => "npz",
            Kind::Safetensors => "safetensors",
            Kind::Gguf => "gguf",
            Kind::Keras => "keras",
            Kind::Hdf5 => "hdf5",
            Kind::Onnx => "onnx",
            Kind::Tar => "tar",
            Kind::SevenZip => "7z",
            Kind::Compressed => "compressed",
            Kind::Other => "other",
        }
    }
}

/// The scan of one input.
#[derive(Debug, Clone)]
pub struct FileScan {
    pub kind: Kind,
    pub findings: Vec<Finding>,
    /// Pickle streams analysed (members and nested pickles included).
    pub pickles: usize,
}

/// Magic number that starts PyTorch's legacy (pre-1.6) checkpoints, pickled as a LONG1.
const TORCH_LEGACY_MAGIC: &[u8] = &[
    0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19,
];

/// Scans bytes; `path` names them in findings.
pub fn scan_bytes(path: &str, data: &[u8], opts: &ScanOptions) -> FileScan {
    let mut ctx = Ctx {
        opts,
        findings: Vec::new(),
        pickles: 0,
        depth: 0,
        nested_files: NestedFiles::default(),
        deep_bytes_left: DEEP_BYTES_BASE.saturating_add((data.len() as u64).saturating_mul(16)),
        deep_scans_left: DEEP_SCANS,
        deep_budget_exhausted: false,
    };
    let kind = ctx.scan(Location::file(path), data, 0);
    FileScan {
        kind,
        findings: ctx.findings,
        pickles: ctx.pickles,
    }
}

struct Ctx<'a> {
    opts: &'a ScanOptions,
    findings: Vec<Finding>,
    pickles: usize,
    /// Archive depth of the content being scanned.
    depth: usize,
    nested_files: NestedFiles,
    /// Bytes and contents that the levels two and more down may still take.
    deep_bytes_left: u64,
    deep_scans_left: usize,
    deep_budget_exhausted: bool,
}

/// Contents below the first level (members of archives inside archives,
/// files inside nested pickles) may number [`DEEP_SCANS`] and add up to
/// this plus 16 times the file. Members whose data overlaps other members'
/// headers would otherwise be scanned again at every level, work that
/// grows with the cube of the number of headers.
const DEEP_BYTES_BASE: u64 = 1 << 30;
const DEEP_SCANS: usize = 4096;

/// Nested bytes already scanned as files. A stream can hand one string to
/// a loader hundreds of times, each a fresh copy; scanning each copy, and
/// the copies nested in those, would multiply the work level by level.
#[derive(Default)]
struct NestedFiles {
    /// Keyed per process, so no file can be made to collide on purpose.
    hasher: std::collections::hash_map::RandomState,
    seen: std::collections::HashSet<u64>,
}

impl NestedFiles {
    const MAX: usize = 256;

    /// `Some(true)`: new, scan them; `Some(false)`: scanned already;
    /// `None`: past the bound, left to the pickle analysis's report.
    fn admit(&mut self, bytes: &[u8]) -> Option<bool> {
        use std::hash::BuildHasher;
        let hash = self.hasher.hash_one(bytes);
        if self.seen.contains(&hash) {
            return Some(false);
        }
        (self.seen.len() < Self::MAX).then(|| self.seen.insert(hash))
    }
}

impl Ctx<'_> {
    fn scan(&mut self, loc: Location, data: &[u8], depth: usize) -> Kind {
        if depth > self.opts.max_archive_depth {
            self.too_deep(&loc, data);
            return Kind::Other;
        }
        if depth >= 2 && !self.charge_deep(&loc, 1, data.len() as u64) {
            return Kind::Other;
        }
        let outer = std::mem::replace(&mut self.depth, depth);
        let kind = self.scan_content(loc, data, depth);
        self.depth = outer;
        kind
    }

    fn scan_content(&mut self, loc: Location, data: &[u8], depth: usize) -> Kind {
        if data.starts_with(b"\x93NUMPY") {
            self.npy(&loc, data);
            return Kind::Npy;
        }
        if formats::is_gguf(data) {
            formats::check_gguf(&loc, data, &mut self.findings);
            return Kind::Gguf;
        }
        if formats::is_hdf5(data) {
            let modules =
                formats::check_hdf5_keras(&loc, data, &self.opts.policy, &mut self.findings);
            self.scan_embedded(&loc, modules, depth);
            return Kind::Hdf5;
        }
        if formats::is_safetensors(data) {
            formats::check_safetensors(&loc, data, &mut self.findings);
            return Kind::Safetensors;
        }
        if zipread::is_zip(data) {
            // The pickle first: the members of a hostile polyglot may use
            // up the budget for nested archives.
            if !data.starts_with(b"PK") {
                self.polyglot_pickle(&loc, data, "a zip archive");
            }
            return self.zip(&loc, data, depth);
        }
        if is_tar(data) {
            self.tar(&loc, data, depth);
            self.polyglot_pickle(&loc, data, "a tar archive");
            return Kind::Tar;
        }
        if sevenzip::is_7z(data) {
            self.sevenzip(&loc, data, depth);
            return Kind::SevenZip;
        }
        if let Some(kind) = self.compressed(&loc, data, depth) {
            return kind;
        }
        if formats::is_onnx(data) {
            formats::check_onnx(&loc, data, &mut self.findings);
            return Kind::Onnx;
        }
        if let Some(analysis) = self.analyse_if_pickle(data) {
            let legacy = legacy_torch_magic(data);
            // Legacy checkpoints end with raw storage bytes after five pickles.
            let tolerate_tail = legacy && analysis.pickles >= 5;
            self.report(&loc, &analysis, tolerate_tail);
            return if legacy {
                Kind::TorchLegacy
            } else {
                Kind::Pickle
            };
        }
        // Only whole files: a self-extracting archive is a file, and
        // reading into every unrecognised member (a checkpoint's tensor
        // storages) would cost what the scan saves by not reading them.
        if let Some(at) = (depth == 0)
            .then(|| sevenzip::find_embedded(data))
            .flatten()
        {
            self.findings.push(
                Finding::new(&ZIP_ANOMALY, loc.clone().with_offset(at as u64), format!("7z archive starting {at} bytes into the file (a self-extracting stub, or data prepended to hide it): 7-Zip opens it, so it is analysed"))
                    .with_evidence("compression", "7z"),
            );
            self.sevenzip(&loc, &data[at..], depth);
            return Kind::SevenZip;
        }
        Kind::Other
    }

    /// The analysis of `data` as a pickle, if it is one. Analysed once:
    /// with a PROTO opcode it is a pickle; without one (protocols 0 and 1)
    /// the analysis itself decides.
    fn analyse_if_pickle(&self, data: &[u8]) -> Option<Analysis> {
        let proto = has_proto(data);
        if !proto && !data.first().is_some_and(|b| pickle::is_opcode(*b)) {
            return None;
        }
        let analysis = pickle::analyse(data, &self.opts.limits);
        (proto || is_pickle_evidence(&analysis, data.len())).then_some(analysis)
    }

    /// Content past the archive depth is not analysed; when it is itself
    /// a pickle, an archive or a compressed stream, a finding says so,
    /// since a payload hidden one level further would pass unseen.
    fn too_deep(&mut self, loc: &Location, data: &[u8]) {
        let what = if looks_like_pickle(data) {
            "a pickle"
        } else if zipread::is_zip(data) || is_tar(data) {
            "an archive"
        } else if crate::compression::sniff(data).is_some() {
            "a compressed stream"
        } else {
            return;
        };
        let max = self.opts.max_archive_depth;
        self.findings.push(
            Finding::new(
                &ZIP_ANOMALY,
                loc.clone(),
                format!("{what} nested in more than {max} archives: not analysed, as archives are followed {max} levels deep"),
            )
            .with_severity(if what == "a pickle" { Severity::High } else { Severity::Medium })
            .with_evidence("max_archive_depth", max),
        );
    }

    /// Takes `scans` contents of `bytes` from what the deep levels may
    /// still use; when that runs out, says so once and refuses.
    fn charge_deep(&mut self, loc: &Location, scans: usize, bytes: u64) -> bool {
        if bytes <= self.deep_bytes_left && scans <= self.deep_scans_left {
            self.deep_bytes_left -= bytes;
            self.deep_scans_left -= scans;
            return true;
        }
        if !std::mem::replace(&mut self.deep_budget_exhausted, true) {
            self.findings.push(
                Finding::new(
                    &ZIP_ANOMALY,
                    loc.clone(),
                    format!("analysis stopped at a resource limit: archives inside archives hold more than {DEEP_SCANS} members, or contents two or more levels down add up to more than 1 GiB plus 16 times the file (overlapping members?); the rest were not analysed"),
                )
                .with_severity(Severity::High),
            );
        }
        false
    }

    /// An archive found by its trailing directory (zip) or a header field
    /// (tar) can start with a pickle: `pickle.load` and PyTorch's legacy
    /// loader run that pickle and ignore the rest, while archive readers
    /// and scanners that trust the archive see only its members.
    fn polyglot_pickle(&mut self, loc: &Location, data: &[u8], archive: &str) {
        let Some(analysis) = self.analyse_if_pickle(data) else {
            return;
        };
        self.findings.push(
            Finding::new(
                &ZIP_ANOMALY,
                loc.clone().with_offset(0),
                format!("the file is both a pickle and {archive}: unpickling it runs the pickle at its start, which archive readers do not see; the pickle is analysed too"),
            )
            .with_evidence("format", "polyglot"),
        );
        // What follows the pickle is the archive, not a broken stream.
        self.report(loc, &analysis, true);
    }

    fn npy(&mut self, loc: &Location, data: &[u8]) {
        // Only object arrays hold pickles; their data section is one.
        let (Some(header_len), Some(ver)) = (npy_header_len(data), data.get(6)) else {
            return;
        };
        let off = if *ver == 1 { 10 } else { 12 } + header_len;
        let header = String::from_utf8_lossy(&data[10.min(data.len())..off.min(data.len())]);
        if header.contains("'|O'") || header.contains("\"|O\"") || header.contains("'O'") {
            let body = &data[off.min(data.len())..];
            let mut inner = loc.clone();
            inner.offset = Some(off as u64);
            let analysis = pickle::analyse(body, &self.opts.limits);
            self.report_at(&inner, &analysis, false, off as u64);
            self.findings.push(
                Finding::new(
                    &PICKLE_IN_DATA_FILE,
                    loc.clone().with_offset(off as u64),
                    "NumPy object array: loading it with allow_pickle=True unpickles its elements",
                )
                .with_evidence("format", "npy"),
            );
        }
    }

    fn zip(&mut self, loc: &Location, data: &[u8], depth: usize) -> Kind {
        if depth >= 1 && self.deep_budget_exhausted {
            return Kind::Zip;
        }
        let archive = zipread::read(data, self.opts.max_members);
        // A zip inside something: its members (and the anomalies that
        // each becomes a finding) count against the deep levels' budget.
        if depth >= 1 && !self.charge_deep(loc, archive.members.len() + archive.anomalies.len(), 0)
        {
            return Kind::Zip;
        }
        for a in &archive.anomalies {
            let mut l = loc.clone().with_offset(a.offset);
            if let Some(m) = &a.member {
                l = l.with_member(member_path(loc, m));
            }
            self.findings
                .push(Finding::new(&ZIP_ANOMALY, l, a.message.clone()));
        }
        let names: Vec<&str> = archive.members.iter().map(|m| m.name.as_str()).collect();
        let torch = names.iter().any(|n| n.ends_with("data.pkl"))
            && names
                .iter()
                .any(|n| n.contains("/data/") || n.ends_with("version"));
        let npz = !names.is_empty() && names.iter().all(|n| n.ends_with(".npy"));
        // torch.jit.load reads `code/` next to `data.pkl` and `constants.pkl`;
        // `.py` files in other zips are ordinary source, where `torch.save`
        // is everyday training code.
        let torchscript = names
            .iter()
            .any(|n| n.ends_with("data.pkl") || n.ends_with("constants.pkl"));
        let mut code_budget = torchscript::MAX_SOURCE_BYTES;
        let keras = names.contains(&"config.json")
            && names
                .iter()
                .any(|n| *n == "metadata.json" || n.ends_with(".weights.h5"));
        for m in &archive.members {
            for name in std::iter::once(&m.name).chain(&m.local_name) {
                if escapes_folder(name) {
                    self.findings.push(
                        Finding::new(&ARCHIVE_PATH_TRAVERSAL, loc.clone().with_offset(m.local_offset as u64), format!("zip member `{name}` would be extracted outside the archive's folder by tools that do not sanitise names (Python's zipfile does)"))
                            .with_severity(Severity::Medium)
                            .with_evidence("member", name.clone()),
                    );
                }
            }
            if m.name.ends_with('/') && m.uncompressed_size == 0 {
                continue;
            }
            let mloc = loc.clone().with_member(member_path(loc, &m.name));
            let bytes = match zipread::member_data(data, m, self.opts.max_member_bytes) {
                Ok(b) => b,
                Err(e) => {
                    if m.flags & 1 == 0 {
                        self.findings.push(Finding::new(
                            &ZIP_ANOMALY,
                            mloc,
                            format!("member could not be read: {e}"),
                        ));
                    }
                    continue;
                }
            };
            let max = self.opts.max_member_bytes as usize;
            let bytes: &[u8] = if m.method != 0 && bytes.len() > max {
                self.findings.push(
                    Finding::new(
                        &ZIP_ANOMALY,
                        mloc.clone(),
                        format!(
                            "member inflates past {max} bytes from {} compressed (a decompression bomb?); only the first {max} bytes were analysed (raise --max-member-bytes to see more)",
                            m.compressed_size
                        ),
                    )
                    .with_evidence("compressed_bytes", m.compressed_size),
                );
                &bytes[..max]
            } else {
                &bytes
            };
            if self.opts.verify_data
                && m.in_central
                && zipread::crc32(bytes) != m.crc32
                && (bytes.len() as u64) == m.uncompressed_size
            {
                self.findings.push(
                    Finding::new(
                        &DATA_INTEGRITY,
                        mloc.clone(),
                        "CRC-32 does not match the archive's record: the member was altered",
                    )
                    .with_evidence("expected_crc32", format!("{:08x}", m.crc32))
                    .with_evidence("actual_crc32", format!("{:08x}", zipread::crc32(bytes))),
                );
            }
            if keras && m.name == "config.json" {
                match serde_json::from_slice::<serde_json::Value>(bytes) {
                    Ok(config) => {
                        let modules = formats::check_keras_config(
                            &mloc,
                            &config,
                            &self.opts.policy,
                            &mut self.findings,
                        );
                        self.scan_embedded(&mloc, modules, depth);
                    }
                    Err(e) => self.findings.push(Finding::new(
                        &MALFORMED_MODEL_FILE,
                        mloc.clone(),
                        format!("Keras config.json is not valid JSON: {e}"),
                    )),
                }
            }
            if torchscript && torchscript::is_code_member(&m.name) {
                torchscript::check_within_budget(
                    &mloc,
                    bytes,
                    &mut code_budget,
                    &mut self.findings,
                );
            }
            if torchscript && m.name.ends_with("bytecode.pkl") {
                torchscript::check_lite_bytecode(&mloc, bytes, &mut self.findings);
            }
            // Every member is sniffed, whatever its name: a pickle named
            // `weights.bin` or `config.txt` runs just the same.
            self.scan(mloc, bytes, depth + 1);
        }
        if torch && self.opts.verify_data {
            self.verify_storages(loc, data, &archive);
        }
        if keras {
            Kind::Keras
        } else if torch {
            Kind::TorchZip
        } else if npz {
            Kind::Npz
        } else {
            Kind::Zip
        }
    }

    /// `--verify-data` on a PyTorch checkpoint: every storage member must hold
    /// exactly the bytes `data.pkl` declares for it (element count × element
    /// size). Fewer is truncation; more is data hidden behind the tensors.
    fn verify_storages(&mut self, loc: &Location, data: &[u8], archive: &zipread::Archive) {
        let Some(pkl) = archive
            .members
            .iter()
            .find(|m| m.name.ends_with("data.pkl"))
        else {
            return;
        };
        let prefix = pkl.name.trim_end_matches("data.pkl");
        let Ok(bytes) = zipread::member_data(data, pkl, self.opts.max_member_bytes) else {
            return;
        };
        let analysis = pickle::analyse(&bytes, &self.opts.limits);
        let mut checked = std::collections::HashSet::new();
        for pid in &analysis.persistent_ids {
            let (Some(ty), Some(key), Some(numel)) = (&pid.storage_type, &pid.key, pid.numel)
            else {
                continue;
            };
            let Some(elem) = storage_element_size(ty) else {
                continue;
            };
            if !checked.insert(key.clone()) {
                continue;
            }
            let name = format!("{prefix}data/{key}");
            let mloc = loc.clone().with_member(member_path(loc, &name));
            let Some(member) = archive.members.iter().find(|m| m.name == name) else {
                self.findings.push(Finding::new(
                    &DATA_INTEGRITY,
                    mloc,
                    format!("data.pkl refers to storage `{key}`, which the archive does not hold"),
                ));
                continue;
            };
            let expected = u64::try_from(numel).ok().and_then(|n| n.checked_mul(elem));
            if expected != Some(member.uncompressed_size) {
                self.findings.push(
                    Finding::new(
                        &DATA_INTEGRITY,
                        mloc,
                        format!(
                            "storage holds {} bytes but data.pkl declares {numel} × {elem}-byte {ty} elements",
                            member.uncompressed_size
                        ),
                    )
                    .with_evidence("declared_elements", numel)
                    .with_evidence("element_size", elem)
                    .with_evidence("actual_bytes", member.uncompressed_size),
                );
            }
        }
    }

    /// 7z archives (nullifAI's packaging): every member is decoded within
    /// the member limit and scanned like a zip member. A solid block is one
    /// compressed stream, so reaching a member means decoding those before
    /// it; the whole archive may decode four times the member limit.
    fn sevenzip(&mut self, loc: &Location, data: &[u8], depth: usize) {
        if depth >= 1 && self.deep_budget_exhausted {
            return;
        }
        let max = self.opts.max_member_bytes;
        let budget = sevenzip::Budget {
            member_bytes: max,
            total_bytes: max.saturating_mul(4),
            members: self.opts.max_members,
        };
        let (read, stopped) = sevenzip::read_members(data, budget, |m| {
            let mloc = loc.clone().with_member(member_path(loc, m.name));
            if escapes_folder(m.name) {
                self.findings.push(
                    Finding::new(&ARCHIVE_PATH_TRAVERSAL, mloc.clone(), format!("7z member `{}` would be extracted outside the archive's folder by tools that do not sanitise names", m.name))
                        .with_severity(Severity::Medium)
                        .with_evidence("member", m.name),
                );
            }
            if m.cut_short {
                self.findings.push(
                    Finding::new(&ZIP_ANOMALY, mloc.clone(), format!("7z member holds more than the {} bytes analysed (a decompression bomb?); members after it in its solid block were not analysed (raise --max-member-bytes to see more)", m.bytes.len()))
                        .with_evidence("compression", "7z"),
                );
            }
            if let Some(e) = &m.error {
                self.findings.push(
                    Finding::new(&ZIP_ANOMALY, mloc.clone(), format!("7z member does not decode to the end ({e}); the {} bytes before the error were analysed, the members after it were not", m.bytes.len()))
                        .with_evidence("compression", "7z"),
                );
            }
            self.scan(mloc, m.bytes, depth + 1);
        });
        let why = match stopped {
            None => return,
            Some(sevenzip::Stopped::Unreadable(e)) => {
                format!("7z archive whose index cannot be read ({e}): what it holds was not analysed")
            }
            Some(sevenzip::Stopped::Undecodable(e)) if read == 0 => {
                format!("7z content that cannot be decoded ({e}): what it holds was not analysed")
            }
            Some(sevenzip::Stopped::Undecodable(e)) => {
                format!("7z content that cannot be decoded ({e}): members after the first {read} were not analysed")
            }
            Some(sevenzip::Stopped::TooManyMembers) => format!(
                "7z archive has more than {} members; the rest were not analysed",
                self.opts.max_members
            ),
            Some(sevenzip::Stopped::TotalBytes) => format!(
                "7z archive decodes to more than {} bytes (a decompression bomb?); members after the first {read} were not analysed (raise --max-member-bytes, a quarter of this limit, to see more)",
                budget.total_bytes
            ),
        };
        self.findings.push(
            Finding::new(&ZIP_ANOMALY, loc.clone(), why)
                .with_evidence("compression", "7z")
                .with_evidence("members_analysed", read),
        );
    }

    /// Compressed streams — every codec joblib writes (zlib, gzip, bz2,
    /// lzma, xz, lz4) and zstd, as in `.pt.gz` or `.pkl.zst` — are
    /// decompressed within the member limit and scanned; formats mlsec does
    /// not decompress (rar) are reported, never passed silently.
    fn compressed(&mut self, loc: &Location, data: &[u8], depth: usize) -> Option<Kind> {
        let max = self.opts.max_member_bytes;
        if let Some(codec) = crate::compression::sniff(data) {
            let (bytes, complete) = match crate::compression::decompress(codec, data, max) {
                Some(out) => out,
                // A weak signature (zlib's two bytes, lzma's header) that
                // does not decode was not that format after all.
                None if !codec.strong_magic() => return None,
                None => {
                    self.findings.push(
                        Finding::new(&ZIP_ANOMALY, loc.clone(), format!("{} stream that does not decompress: what it holds was not analysed", codec.name()))
                            .with_evidence("compression", codec.name()),
                    );
                    return Some(Kind::Compressed);
                }
            };
            if bytes.len() as u64 > max {
                self.findings.push(
                    Finding::new(&ZIP_ANOMALY, loc.clone(), format!("{} stream inflates past {max} bytes (a decompression bomb?); only the first {max} bytes were analysed", codec.name()))
                        .with_evidence("compression", codec.name()),
                );
            } else if !complete {
                self.findings.push(
                    Finding::new(
                        &ZIP_ANOMALY,
                        loc.clone(),
                        format!(
                            "{} stream is truncated or corrupt; the {} bytes it gave were analysed",
                            codec.name(),
                            bytes.len()
                        ),
                    )
                    .with_evidence("compression", codec.name()),
                );
            }
            let bytes = &bytes[..bytes.len().min(max as usize)];
            self.scan(
                loc.clone().with_member(member_path(loc, codec.name())),
                bytes,
                depth + 1,
            );
            return Some(Kind::Compressed);
        }
        let name = "rar";
        if !data.starts_with(b"Rar!\x1a\x07") {
            return None;
        }
        self.findings.push(
            Finding::new(&ZIP_ANOMALY, loc.clone(), format!("{name}-compressed content: mlsec does not decompress {name}, so what it holds was not analysed"))
                .with_evidence("compression", name),
        );
        Some(Kind::Compressed)
    }

    /// tar archives (PyTorch's oldest checkpoint layout, and tarballs of
    /// models): every regular member is scanned.
    fn tar(&mut self, loc: &Location, data: &[u8], depth: usize) {
        let mut p = 0usize;
        let mut count = 0;
        // Names carried over from a GNU long-name entry or a PAX header.
        let (mut long_name, mut long_link): (Option<String>, Option<String>) = (None, None);
        while p + 512 <= data.len() && count < self.opts.max_members {
            let h = &data[p..p + 512];
            if h.iter().all(|&b| b == 0) {
                break;
            }
            let field = |r: std::ops::Range<usize>| {
                String::from_utf8_lossy(&h[r])
                    .trim_end_matches('\0')
                    .to_string()
            };
            let mut name = field(0..100);
            // ustar keeps a prefix of long names apart.
            if &h[257..262] == b"ustar" {
                let prefix = field(345..500);
                if !prefix.is_empty() {
                    name = format!("{prefix}/{name}");
                }
            }
            let size_field = String::from_utf8_lossy(&h[124..136])
                .trim_matches(|c: char| c == '\0' || c == ' ')
                .to_string();
            let Ok(size) = u64::from_str_radix(&size_field, 8) else {
                self.findings.push(Finding::new(
                    &ZIP_ANOMALY,
                    loc.clone().with_offset(p as u64),
                    format!("tar header for `{name}` has an unreadable size"),
                ));
                return;
            };
            let start = p + 512;
            let end = start.saturating_add(size as usize).min(data.len());
            let body = &data[start..end];
            let kind = h[156];
            match kind {
                // GNU long name / long link name: the next header's.
                b'L' => long_name = Some(c_string(body)),
                b'K' => long_link = Some(c_string(body)),
                // PAX extended header: `path` and `linkpath` records.
                b'x' => {
                    for (key, value) in pax_records(body) {
                        match key.as_str() {
                            "path" => long_name = Some(value),
                            "linkpath" => long_link = Some(value),
                            _ => {}
                        }
                    }
                }
                _ => {
                    let name = long_name.take().unwrap_or(name);
                    let link = long_link.take().unwrap_or_else(|| field(157..257));
                    let at = loc.clone().with_offset(p as u64);
                    if escapes_folder(&name) {
                        self.findings.push(
                            Finding::new(&ARCHIVE_PATH_TRAVERSAL, at.clone(), format!("tar member `{name}` would be extracted outside the archive's folder"))
                                .with_evidence("member", name.clone()),
                        );
                    }
                    // Symbolic links (2) resolve from their own folder, hard
                    // links (1) name another member from the archive's root.
                    let target = match kind {
                        b'2' => Some(link_target(&name, &link)),
                        b'1' => Some(link.clone()),
                        _ => None,
                    };
                    if target.is_some_and(|t| escapes_folder(&t)) {
                        self.findings.push(
                            Finding::new(&ARCHIVE_PATH_TRAVERSAL, at, format!("tar member `{name}` links to `{link}`, outside the archive's folder: later members can be written through it"))
                                .with_evidence("member", name.clone())
                                .with_evidence("link", link),
                        );
                    }
                    if kind == b'0' || kind == 0 {
                        self.scan(
                            loc.clone().with_member(member_path(loc, &name)),
                            body,
                            depth + 1,
                        );
                    }
                }
            }
            p = start + (size as usize).div_ceil(512) * 512;
            count += 1;
        }
    }

    /// Scans PyTorch modules pickled inside a Keras config as files of
    /// their own, named `…!<json path>` like archive members.
    fn scan_embedded(
        &mut self,
        loc: &Location,
        modules: Vec<formats::EmbeddedModule>,
        depth: usize,
    ) {
        for m in modules {
            let field = m.location.field.clone().unwrap_or_default();
            self.scan(
                loc.clone().with_member(member_path(loc, &field)),
                &m.bytes,
                depth + 1,
            );
        }
    }

    fn report(&mut self, loc: &Location, a: &Analysis, tolerate_tail: bool) {
        self.report_at(loc, a, tolerate_tail, 0)
    }

    /// Findings for one analysed stream (and, recursively, its nested pickles).
    fn report_at(&mut self, loc: &Location, a: &Analysis, tolerate_tail: bool, base: u64) {
        self.pickles += 1;
        let mut known: BTreeMap<String, Vec<(String, bool)>> = BTreeMap::new();
        for g in &a.globals {
            if !g.uses.is_empty() && g.uses.iter().all(|u| u.opcode == pickle::GETATTR_RESOLVED) {
                // `getattr(G, 'name')`: `G.name` is reported as a global of its own.
                continue;
            }
            let qualified = g.qualified();
            let verdict = self.opts.policy.classify(&g.module, &g.name);
            let called = g.is_called();
            let first_use = g.uses.first();
            let offset = base + first_use.map_or(g.offset, |u| u.offset);
            let how = match first_use {
                Some(u) => format!("called through {} at offset {}", u.opcode, base + u.offset),
                None => format!(
                    "imported by {} at offset {}, not called",
                    g.opcode,
                    base + g.offset
                ),
            };
            let rule = if called { &UNSAFE_CALL } else { &UNSAFE_IMPORT };
            let uses: Vec<String> = g
                .uses
                .iter()
                .take(10)
                .map(|u| format!("{}@{}", u.opcode, base + u.offset))
                .collect();
            let finding = |severity: Severity, message: String, opcode: &'static str, at: u64| {
                Finding::new(rule, loc.clone().with_offset(at), message)
                    .with_severity(severity)
                    .with_evidence("global", qualified.clone())
                    .with_evidence("opcode", opcode)
                    .with_evidence("import_offset", base + g.offset)
                    .with_evidence("uses", uses.clone())
            };
            let first_opcode = first_use.map_or(g.opcode, |u| u.opcode);
            // Changing an imported global in place is never what a pickle
            // written by `pickle.dump` does (the numpy.size + __builtins__
            // gadget of modelscan issue 330 sets an attribute that way).
            if let Some(u) = g.uses.iter().find(|u| {
                u.opcode == pickle::BUILD_ON_GLOBAL || u.opcode == pickle::ITEMS_ON_GLOBAL
            }) {
                let severity = match &verdict {
                    Verdict::Denied { severity, .. } => (*severity).max(Severity::High),
                    _ => Severity::High,
                };
                self.findings.push(
                    finding(
                        severity,
                        format!(
                            "{qualified} is changed in place by {} at offset {}: the pickle rewrites a library's object instead of building its own",
                            u.opcode,
                            base + u.offset
                        ),
                        u.opcode,
                        base + u.offset,
                    )
                    .with_evidence("category", "library object modified"),
                );
                continue;
            }
            match verdict {
                Verdict::Allowed => {}
                Verdict::Denied {
                    severity,
                    category,
                    resolved,
                } => {
                    let shown = if resolved != qualified {
                        format!("{qualified} (resolves to {resolved})")
                    } else {
                        qualified.clone()
                    };
                    let (severity, category) = if storage_bytes_analysed(a, g, &resolved) {
                        (Severity::Low, format!("{category}; here PyTorch's own pickling of a storage, whose bytes were analysed as a nested checkpoint"))
                    } else {
                        (severity, category)
                    };
                    self.findings.push(
                        finding(
                            severity,
                            format!("{shown} {how}: {category}"),
                            first_opcode,
                            offset,
                        )
                        .with_evidence("resolved", resolved)
                        .with_evidence("category", category),
                    );
                }
                Verdict::Unknown => {
                    let sev = if called {
                        Severity::High
                    } else {
                        Severity::Medium
                    };
                    self.findings.push(
                        finding(sev, format!("{qualified} {how}: not on the allow-list, so loading may run its code"), first_opcode, offset)
                            .with_evidence("category", "not allow-listed"),
                    );
                }
                Verdict::Known { ecosystem, exact } => {
                    // A library's own pickles construct its classes and call
                    // its unpickling helpers; a call of any other function
                    // of it, or of what such a call returned, is a payload
                    // (torch.utils.collect_env.run, pandas.read_csv, …).
                    let unexpected = g.uses.iter().find(|u| {
                        u.opcode.contains("(on its result)") && !u.opcode.starts_with("BUILD")
                            || !exact
                                && matches!(
                                    u.opcode,
                                    "REDUCE"
                                        | "INST"
                                        | "OBJ"
                                        | pickle::CONSTRUCTED_AS_BASE
                                        | pickle::CALLED_BY_REBUILD
                                )
                                && !policy::is_constructor_like(&qualified)
                    });
                    match unexpected {
                        Some(u) => self.findings.push(
                            finding(
                                Severity::High,
                                if u.opcode.contains("(on its result)") {
                                    format!(
                                        "what {qualified} returned is called through {} at offset {}: a {ecosystem} object used as a gadget to reach another callable",
                                        u.opcode,
                                        base + u.offset
                                    )
                                } else {
                                    format!(
                                        "{qualified} called through {} at offset {}: a {ecosystem} function that is neither a class nor an unpickling helper, so loading runs it with the file's arguments",
                                        u.opcode,
                                        base + u.offset
                                    )
                                },
                                u.opcode,
                                base + u.offset,
                            )
                            .with_evidence("category", "library function called")
                            .with_evidence("ecosystem", ecosystem),
                        ),
                        None => known.entry(ecosystem).or_default().push((qualified, called)),
                    }
                }
            }
        }
        for t in &a.tensor_overruns {
            let mut f = Finding::new(
                &MALFORMED_MODEL_FILE,
                loc.clone().with_offset(base + t.offset),
                format!(
                    "tensor rebuilt at offset {} does not fit its storage{}: {}; torch.save never writes this, and loading makes a view of memory outside the storage (CVE-2026-24747)",
                    base + t.offset,
                    t.storage_key
                        .as_deref()
                        .map(|k| format!(" `{k}`"))
                        .unwrap_or_default(),
                    t.reason
                ),
            )
            .with_severity(Severity::High)
            .with_evidence("storage_numel", t.numel);
            if let Some(k) = &t.storage_key {
                f = f.with_evidence("storage", k.clone());
            }
            self.findings.push(f);
        }
        for d in &a.items_on_data {
            let what = match &d.target {
                Some(g) => format!("the value {g} built"),
                None => "a PyTorch storage".to_string(),
            };
            let mut f = Finding::new(
                &MALFORMED_MODEL_FILE,
                loc.clone().with_offset(base + d.offset),
                format!(
                    "{} at offset {} adds items to {what}, which is not a container; torch.save and NumPy never write this, and PyTorch's weights_only loader before 2.10 applied it unchecked, corrupting memory (CVE-2026-24747)",
                    d.opcode,
                    base + d.offset
                ),
            )
            .with_severity(Severity::High)
            .with_evidence("opcode", d.opcode);
            if let Some(g) = &d.target {
                f = f.with_evidence("global", g.clone());
            }
            self.findings.push(f);
        }
        // Well-known libraries: one finding per library, low (called) or info.
        for (eco, globals) in known {
            let called = globals.iter().any(|(_, c)| *c);
            let names: Vec<String> = globals.iter().map(|(n, _)| n.clone()).collect();
            let rule = if called { &UNSAFE_CALL } else { &UNSAFE_IMPORT };
            let shown: Vec<&str> = names.iter().take(5).map(String::as_str).collect();
            let more = if names.len() > 5 {
                format!(" and {} more", names.len() - 5)
            } else {
                String::new()
            };
            self.findings.push(
                Finding::new(
                    rule,
                    loc.clone(),
                    format!(
                        "{} {} global(s) ({}{more}): loading runs that library's code; trust it only from a trusted source, or allow-list them in a policy file",
                        names.len(),
                        eco,
                        shown.join(", ")
                    ),
                )
                .with_severity(if called { Severity::Low } else { Severity::Info })
                .with_evidence("ecosystem", eco)
                .with_evidence("globals", names),
            );
        }
        for n in &a.nested {
            let nloc = loc.clone().with_offset(base + n.offset);
            if n.loader == pickle::INLINE_JOBLIB {
                // Part of the same joblib stream, not a hidden pickle.
                self.report_at(loc, &n.analysis, false, base + n.offset);
                continue;
            }
            let file = n.not_a_pickle.as_deref();
            let mut nested = Finding::new(
                &NESTED_PICKLE,
                nloc.clone(),
                format!(
                    "a pickle is passed as bytes to {} at offset {}; it is analysed as well",
                    n.loader,
                    base + n.offset
                ),
            )
            .with_evidence("loader", n.loader.clone());
            if n.loader == TORCH_STORAGE_LOADER && nested_complete(n) {
                nested = nested.with_severity(Severity::Low);
            }
            self.findings.push(nested);
            let mut inner = nloc;
            inner.member = Some(match &loc.member {
                Some(m) => format!("{m}>nested@{}", base + n.offset),
                None => format!("nested@{}", base + n.offset),
            });
            // Bytes that are no pickle may be a file the loader also reads
            // (`torch.load` of a zip checkpoint): scanned as one.
            if let Some(bytes) = file {
                match self.nested_files.admit(bytes) {
                    Some(false) => continue,
                    Some(true)
                        if self.scan(inner.clone(), bytes, self.depth + 1) != Kind::Other =>
                    {
                        continue
                    }
                    _ => {}
                }
            }
            self.report_at(&inner, &n.analysis, false, 0);
        }
        if let Some(e) = &a.error {
            if !(tolerate_tail && e.offset >= a.end) {
                let (sev, what) = if e.limit {
                    (Severity::High, "analysis stopped at a resource limit")
                } else {
                    (Severity::Medium, "malformed pickle")
                };
                self.findings.push(
                    Finding::new(
                        &MALFORMED_PICKLE,
                        loc.clone().with_offset(base + e.offset),
                        format!(
                            "{what}: {} (findings before this point are reported)",
                            e.message
                        ),
                    )
                    .with_severity(sev)
                    .with_evidence("complete_pickles", a.pickles),
                );
            }
        }
    }
}

/// How PyTorch pickles a storage outside `torch.save` (`pickle.dumps(tensor)`):
/// `torch.storage._load_from_bytes(b'<legacy checkpoint>')`.
const TORCH_STORAGE_LOADER: &str = "torch.storage._load_from_bytes";

fn nested_complete(n: &pickle::Nested) -> bool {
    n.analysis.error.is_none() && n.analysis.pickles > 0
}

/// Whether every call of `g` is PyTorch's storage loader on bytes that were
/// analysed to the end: then the call is only as dangerous as those bytes,
/// whose own findings are reported, and not a hidden payload in itself.
fn storage_bytes_analysed(a: &Analysis, g: &pickle::GlobalRef, resolved: &str) -> bool {
    resolved == TORCH_STORAGE_LOADER
        && !g.uses.is_empty()
        && g.uses_dropped == 0
        && g.uses.iter().all(|u| {
            u.opcode == "REDUCE"
                && a.nested.iter().any(|n| {
                    n.offset == u.offset && n.loader == TORCH_STORAGE_LOADER && nested_complete(n)
                })
        })
}

/// Whether an archive path lands outside the folder it is extracted into:
/// absolute (`/`, `\\`), with a drive letter (`C:`), or climbing with `..`
/// further than it has descended.
fn escapes_folder(path: &str) -> bool {
    if path.starts_with('/') || path.starts_with('\\') || path.get(1..2) == Some(":") {
        return true;
    }
    let mut level = 0i64;
    for part in path.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." => {
                level -= 1;
                if level < 0 {
                    return true;
                }
            }
            _ => level += 1,
        }
    }
    false
}

/// Where a link member's target resolves to, relative to the archive's
/// folder: absolute targets as they are, relative ones from the link's own
/// folder.
fn link_target(name: &str, link: &str) -> String {
    if link.starts_with('/') || link.starts_with('\\') || link.get(1..2) == Some(":") {
        return link.to_string();
    }
    match name.rsplit_once('/') {
        Some((dir, _)) => format!("{dir}/{link}"),
        None => link.to_string(),
    }
}

/// Text up to the first NUL.
fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// The `key=value` records of a PAX extended header (`"<len> <key>=<value>\n"`).
fn pax_records(body: &[u8]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(space) = rest.iter().position(|&b| b == b' ') {
        let Some(len) = std::str::from_utf8(&rest[..space])
            .ok()
            .and_then(|l| l.parse::<usize>().ok())
            .filter(|&l| l > space && l <= rest.len())
        else {
            break;
        };
        let record = String::from_utf8_lossy(&rest[space + 1..len]);
        if let Some((k, v)) = record.trim_end_matches('\n').split_once('=') {
            out.push((k.to_string(), v.to_string()));
        }
        rest = &rest[len..];
    }
    out
}

fn member_path(loc: &Location, name: &str) -> String {
    match &loc.member {
        Some(outer) => format!("{outer}!{name}"),
        None => name.to_string(),
    }
}

fn npy_header_len(data: &[u8]) -> Option<usize> {
    match data.get(6)? {
        1 => Some(u16::from_le_bytes([*data.get(8)?, *data.get(9)?]) as usize),
        2 | 3 => {
            Some(
                u32::from_le_bytes([*data.get(8)?, *data.get(9)?, *data.get(10)?, *data.get(11)?])
                    as usize,
            )
        }
        _ => None,
    }
}

/// Bytes per element of PyTorch's typed storages.
fn storage_element_size(ty: &str) -> Option<u64> {
    Some(match ty.rsplit('.').next()? {
        "DoubleStorage" | "LongStorage" | "ComplexFloatStorage" => 8,
        "FloatStorage" | "IntStorage" | "QInt32Storage" => 4,
        "HalfStorage" | "BFloat16Storage" | "ShortStorage" => 2,
        "CharStorage" | "ByteStorage" | "BoolStorage" | "QUInt8Storage" | "QInt8Storage"
        | "UntypedStorage" => 1,
        "ComplexDoubleStorage" => 16,
        _ => return None,
    })
}

fn is_tar(data: &[u8]) -> bool {
    data.len() >= 512 && &data[257..262] == b"ustar"
}

fn legacy_torch_magic(data: &[u8]) -> bool {
    // PROTO 2 then the LONG1 magic number.
    data.len() > 14 && data[0] == 0x80 && data[2..].starts_with(TORCH_LEGACY_MAGIC)
}

/// Whether bytes are a pickle: a PROTO opcode, or (protocol 0/1 pickles have
/// none) a stream that parses to a STOP or calls a global before failing.
/// Text files rarely pass the second test: `cat\ndog\n` imports `at.dog`
/// and then hits a byte that is no opcode, without a call.
pub fn looks_like_pickle(data: &[u8]) -> bool {
    if has_proto(data) {
        return true;
    }
    if !data.first().is_some_and(|b| pickle::is_opcode(*b)) {
        return false;
    }
    let probe = Limits {
        max_ops: 10_000,
        max_nesting: 0,
        ..Limits::default()
    };
    let head = &data[..data.len().min(64 << 10)];
    is_pickle_evidence(&pickle::analyse(head, &probe), head.len())
}

fn has_proto(data: &[u8]) -> bool {
    data.first() == Some(&0x80) && data.get(1).is_some_and(|p| *p <= 5)
}

/// Without a PROTO opcode, a stream is a pickle when it parses cleanly to
/// the very end, or calls a global with a valid dotted name before failing
/// (what it calls is then reported). Text that merely contains a `.` after
/// an opcode-like first letter does neither.
fn is_pickle_evidence(a: &Analysis, len: usize) -> bool {
    a.pickles > 0 && a.ops > 1 && a.error.is_none() && a.end as usize == len
        || a.globals
            .iter()
            .any(|g| g.is_called() && is_identifier_path(&g.module) && is_identifier_path(&g.name))
}

fn is_identifier_path(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|p| {
            !p.is_empty()
                && p.chars().all(|c| c.is_alphanumeric() || c == '_')
                && !p.starts_with(|c: char| c.is_ascii_digit())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_leave_the_folder_are_told_apart_from_those_that_stay() {
        for bad in [
            "../x",
            "a/../../x",
            "/etc/passwd",
            "\\\\server\\share",
            "C:\\Windows\\x",
            "a\\..\\..\\x",
            "./../x",
        ] {
            assert!(escapes_folder(bad), "{bad}");
        }
        for good in ["a/b", "a/../b", "./a", "a/./b/..", "a..b/c", "..a/b"] {
            assert!(!escapes_folder(good), "{good}");
        }
        assert_eq!(
            link_target("model/latest", "v1/state.pkl"),
            "model/v1/state.pkl"
        );
        assert!(escapes_folder(&link_target("model/latest", "../../etc")));
        assert!(!escapes_folder(&link_target("model/latest", "../other")));
    }

    #[test]
    fn pax_records_are_read_by_their_lengths() {
        let body =
            b"30 mtime=1700000000.123456789\n26 path=../../../.profile\n19 linkpath=/etc/x\n";
        let records = pax_records(body);
        assert_eq!(
            records,
            [
                ("mtime".to_string(), "1700000000.123456789".to_string()),
                ("path".into(), "../../../.profile".into()),
                ("linkpath".into(), "/etc/x".into())
            ]
        );
        // A length past the end, or not a number, stops the walk.
        assert!(pax_records(b"99 path=x\n").is_empty());
        assert!(pax_records(b"x path=y\n").is_empty());
    }
}
