//! `mlsec provenance verify`: in-toto-verify's checks, in its order —
//! layout signatures, expiry, link files per step, functionary signatures
//! and thresholds, sublayouts, command alignment (a warning), agreement of
//! threshold links, step rules, inspections and inspection rules. The first
//! failure stops verification and says what failed and why.

use super::metadata::{Envelope, Key, Layout, Link, MAX_METADATA_BYTES};
use super::rules::{self, ArtifactKind, RuleFailure};
use super::run::{self, link_file_name, StepOptions};
use super::time;
use crate::SignError;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// How deep layouts may nest (a sublayout's links are in a folder beside
/// its own link).
const MAX_SUBLAYOUT_DEPTH: usize = 8;

#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// A given layout key has no valid signature on the layout.
    LayoutSignature(String),
    Expired {
        expires: String,
    },
    /// Fewer link files than the step's threshold.
    LinkNotFound {
        step: String,
        required: usize,
        found: usize,
    },
    /// A link file that cannot be read as in-toto metadata.
    LinkUnreadable {
        file: String,
        reason: String,
    },
    /// Fewer validly signed links by distinct authorised functionaries than
    /// the threshold; `reasons` says what was wrong with each link.
    Threshold {
        step: String,
        required: usize,
        found: usize,
        reasons: Vec<String>,
    },
    /// With a threshold above one, the links disagree about the artifacts.
    LinksDisagree {
        step: String,
    },
    Rule(Box<RuleFailure>),
    Inspection {
        name: String,
        reason: String,
    },
    Sublayout {
        step: String,
        inner: Box<Failure>,
    },
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::LayoutSignature(m) => write!(f, "layout signature: {m}"),
            Failure::Expired { expires } => write!(f, "the layout expired at {expires}"),
            Failure::LinkNotFound {
                step,
                required,
                found,
            } => write!(
                f,
                "step '{step}' requires {required} link metadata file(s), found {found}"
            ),
            Failure::LinkUnreadable { file, reason } => write!(f, "link {file}: {reason}"),
            Failure::Threshold {
                step,
                required,
                found,
                reasons,
            } => {
                write!(
                    f,
                    "step '{step}' requires at least {required} link(s) validly signed by \
                     different authorized functionaries, found {found}"
                )?;
                if !reasons.is_empty() {
                    write!(f, " ({})", reasons.join("; "))?;
                }
                Ok(())
            }
            Failure::LinksDisagree { step } => write!(
                f,
                "the links of step '{step}' do not report the same materials and products"
            ),
            Failure::Rule(r) => write!(f, "{r}"),
            Failure::Inspection { name, reason } => write!(f, "inspection '{name}': {reason}"),
            Failure::Sublayout { step, inner } => write!(f, "sublayout of step '{step}': {inner}"),
        }
    }
}

pub struct VerifyOptions<'a> {
    pub layout_keys: &'a [Key],
    pub link_dir: &'a Path,
    /// Where inspections run and record their artifacts.
    pub workdir: &'a Path,
    pub run_inspections: bool,
    /// Unix seconds to check expiry against (now, unless testing).
    pub now: i64,
}

pub struct Outcome {
    pub result: Result<(), Failure>,
    /// What in-toto-verify logs but does not fail on (command alignment,
    /// skipped inspections).
    pub warnings: Vec<String>,
    /// Steps whose links were verified, with the signer keyids counted.
    pub steps: Vec<(String, Vec<String>)>,
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, String> {
    crate::read_bounded(path, MAX_METADATA_BYTES)
}

/// Verifies a signed layout (classic or DSSE) against the trusted keys, then
/// the supply chain it describes.
pub fn verify(layout_bytes: &[u8], opts: &VerifyOptions) -> Result<Outcome, SignError> {
    let bad = |m: String| SignError::Input(format!("layout: {m}"));
    if opts.layout_keys.is_empty() {
        return Err(SignError::Input("at least one layout key is needed".into()));
    }
    let env = Envelope::parse(layout_bytes).map_err(bad)?;
    let mut out = Outcome {
        result: Ok(()),
        warnings: Vec::new(),
        steps: Vec::new(),
    };
    // Every key the user trusts must have signed the layout, before anything
    // in it is believed.
    for key in opts.layout_keys {
        if let Err(m) = env.verify(key) {
            out.result = Err(Failure::LayoutSignature(m));
            return Ok(out);
        }
    }
    if env.type_name() != "layout" {
        return Err(bad(format!(
            "`_type` is {:?}, not \"layout\"",
            env.type_name()
        )));
    }
    let layout = Layout::from_signed(&env.signed).map_err(bad)?;
    out.result = verify_layout(&layout, opts, opts.link_dir, 0, &mut out).map(|_| ());
    Ok(out)
}

/// Verifies one layout's chain; returns the link chosen for each step and
/// inspection (for the summary link of a sublayout).
fn verify_layout(
    layout: &Layout,
    opts: &VerifyOptions,
    link_dir: &Path,
    depth: usize,
    out: &mut Outcome,
) -> Result<BTreeMap<String, Link>, Failure> {
    let expires = time::parse_utc(&layout.expires).unwrap_or(i64::MIN);
    if expires <= opts.now {
        return Err(Failure::Expired {
            expires: layout.expires.clone(),
        });
    }
    // Link files: one per authorised key, named `<step>.<keyid[:8]>.link`.
    let mut loaded: Vec<Vec<(String, PathBuf, Envelope)>> = Vec::new();
    for step in &layout.steps {
        let mut found = Vec::new();
        for keyid in &step.pubkeys {
            let path = link_dir.join(link_file_name(&step.name, keyid));
            if !path.is_file() {
                continue;
            }
            let unreadable = |reason: String| Failure::LinkUnreadable {
                file: path.display().to_string(),
                reason,
            };
            let bytes = read_bounded(&path).map_err(unreadable)?;
            let env = Envelope::parse(&bytes).map_err(unreadable)?;
            found.push((keyid.clone(), path, env));
        }
        if found.len() < step.threshold {
            return Err(Failure::LinkNotFound {
                step: step.name.clone(),
                required: step.threshold,
                found: found.len(),
            });
        }
        loaded.push(found);
    }
    // Signatures: each link must be signed by the key it is filed under.
    let mut chain: BTreeMap<String, Link> = BTreeMap::new();
    for (step, found) in layout.steps.iter().zip(loaded) {
        let mut valid = Vec::new();
        let mut reasons = Vec::new();
        for (keyid, path, env) in found {
            let key = &layout.keys[&keyid];
            let file = path.file_name().map(|n| n.to_string_lossy().into_owned());
            match env.verify(key) {
                Ok(()) => valid.push((keyid, path, env)),
                Err(m) => reasons.push(format!("{}: {m}", file.unwrap_or_default())),
            }
        }
        if valid.len() < step.threshold {
            return Err(Failure::Threshold {
                step: step.name.clone(),
                required: step.threshold,
                found: valid.len(),
                reasons,
            });
        }
        let mut links = Vec::new();
        for (keyid, path, env) in &valid {
            let link = if env.type_name() == "layout" {
                sublayout(
                    step.name.as_str(),
                    keyid,
                    path,
                    env,
                    opts,
                    link_dir,
                    depth,
                    out,
                )?
            } else {
                Link::from_signed(&env.signed).map_err(|reason| Failure::LinkUnreadable {
                    file: path.display().to_string(),
                    reason,
                })?
            };
            links.push(link);
        }
        out.steps.push((
            step.name.clone(),
            valid.iter().map(|(k, _, _)| k.clone()).collect(),
        ));
        let first = links.swap_remove(0);
        if first.command != step.expected_command {
            out.warnings.push(format!(
                "step '{}' ran {:?}, the layout expects {:?}",
                step.name, first.command, step.expected_command
            ));
        }
        if links
            .iter()
            .any(|l| l.materials != first.materials || l.products != first.products)
        {
            return Err(Failure::LinksDisagree {
                step: step.name.clone(),
            });
        }
        chain.insert(step.name.clone(), first);
    }
    for step in &layout.steps {
        item_rules(
            &step.name,
            &step.expected_materials,
            &step.expected_products,
            &chain,
        )?;
    }
    if layout.inspections.is_empty() {
        return Ok(chain);
    }
    if !opts.run_inspections {
        out.warnings.push(format!(
            "{} inspection(s) not run (--skip-inspections): their rules were not checked",
            layout.inspections.len()
        ));
        return Ok(chain);
    }
    let dot = vec![".".to_string()];
    for insp in &layout.inspections {
        let fail = |reason: String| Failure::Inspection {
            name: insp.name.clone(),
            reason,
        };
        let ran = run::run_step(&StepOptions {
            name: &insp.name,
            materials: &dot,
            products: &dot,
            command: &insp.run,
            base: opts.workdir,
            excludes: run::DEFAULT_EXCLUDES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            record_streams: true,
        })
        .map_err(|e| fail(e.to_string()))?;
        if ran.return_value != 0 {
            return Err(fail(format!(
                "{:?} exited with {}",
                insp.run, ran.return_value
            )));
        }
        let link = Link::from_signed(&ran.link).map_err(fail)?;
        chain.insert(insp.name.clone(), link);
    }
    for insp in &layout.inspections {
        item_rules(
            &insp.name,
            &insp.expected_materials,
            &insp.expected_products,
            &chain,
        )?;
    }
    Ok(chain)
}

/// An item's material rules, then its product rules.
fn item_rules(
    name: &str,
    materials: &[super::rules::ArtifactRule],
    products: &[super::rules::ArtifactRule],
    chain: &BTreeMap<String, Link>,
) -> Result<(), Failure> {
    rules::apply(name, ArtifactKind::Materials, materials, chain).map_err(Failure::Rule)?;
    rules::apply(name, ArtifactKind::Products, products, chain).map_err(Failure::Rule)
}

/// A step performed under its own layout: verified recursively with the
/// links in `<step>.<keyid[:8]>/`, then summarised as one link (materials
/// of its first step, products and command of its last).
#[allow(clippy::too_many_arguments)]
fn sublayout(
    step: &str,
    keyid: &str,
    path: &Path,
    env: &Envelope,
    opts: &VerifyOptions,
    link_dir: &Path,
    depth: usize,
    out: &mut Outcome,
) -> Result<Link, Failure> {
    let wrap = |inner: Failure| Failure::Sublayout {
        step: step.to_string(),
        inner: Box::new(inner),
    };
    if depth >= MAX_SUBLAYOUT_DEPTH {
        return Err(wrap(Failure::LinkUnreadable {
            file: path.display().to_string(),
            reason: format!("sublayouts nested deeper than {MAX_SUBLAYOUT_DEPTH}"),
        }));
    }
    let layout = Layout::from_signed(&env.signed).map_err(|reason| {
        wrap(Failure::LinkUnreadable {
            file: path.display().to_string(),
            reason,
        })
    })?;
    let dir = link_dir.join(format!("{step}.{}", &keyid[..keyid.len().min(8)]));
    let chain = verify_layout(&layout, opts, &dir, depth + 1, out).map_err(wrap)?;
    let first = layout.steps.first().and_then(|s| chain.get(&s.name));
    let last = layout.steps.last().and_then(|s| chain.get(&s.name));
    Ok(Link {
        name: step.to_string(),
        command: last.map(|l| l.command.clone()).unwrap_or_default(),
        materials: first.map(|l| l.materials.clone()).unwrap_or_default(),
        products: last.map(|l| l.products.clone()).unwrap_or_default(),
        return_value: last.and_then(|l| l.return_value),
    })
}
