//! in-toto artifact rules: what a step or inspection may consume and
//! produce. Each rule consumes the queued artifacts it matches, in order;
//! `DISALLOW` and `REQUIRE` fail on what is (not) left.

use super::fnmatch::fnmatch;
use super::metadata::{Artifacts, Link};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArtifactKind {
    Materials,
    Products,
}

impl ArtifactKind {
    pub fn name(self) -> &'static str {
        match self {
            ArtifactKind::Materials => "materials",
            ArtifactKind::Products => "products",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleKind {
    Create,
    Delete,
    Modify,
    Allow,
    Disallow,
    Require,
    Match {
        source_prefix: Option<String>,
        dest_kind: ArtifactKind,
        dest_prefix: Option<String>,
        dest_step: String,
    },
}

/// One artifact rule, with the words it was written with for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactRule {
    pub kind: RuleKind,
    pub pattern: String,
    words: Vec<String>,
}

impl std::fmt::Display for ArtifactRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.words.join(" "))
    }
}

impl ArtifactRule {
    pub fn from_json(v: &Value) -> Result<ArtifactRule, String> {
        let list = v.as_array().ok_or("a rule that is not a list")?;
        let words: Vec<String> = list
            .iter()
            .map(|w| {
                w.as_str()
                    .map(str::to_string)
                    .ok_or("a rule word that is not a string")
            })
            .collect::<Result<_, _>>()?;
        Self::parse(words)
    }

    /// Parses the word list of a rule; keywords are case-insensitive.
    pub fn parse(words: Vec<String>) -> Result<ArtifactRule, String> {
        let shown = words.join(" ");
        let upper: Vec<String> = words.iter().map(|w| w.to_ascii_uppercase()).collect();
        let keyword = upper.first().ok_or("an empty rule")?;
        let simple = match keyword.as_str() {
            "CREATE" => Some(RuleKind::Create),
            "DELETE" => Some(RuleKind::Delete),
            "MODIFY" => Some(RuleKind::Modify),
            "ALLOW" => Some(RuleKind::Allow),
            "DISALLOW" => Some(RuleKind::Disallow),
            "REQUIRE" => Some(RuleKind::Require),
            "MATCH" => None,
            other => return Err(format!("unknown rule keyword `{other}` in `{shown}`")),
        };
        if let Some(kind) = simple {
            if words.len() != 2 {
                return Err(format!(
                    "`{shown}`: {keyword} takes exactly one pattern (`{keyword} <pattern>`)"
                ));
            }
            return Ok(ArtifactRule {
                kind,
                pattern: words[1].clone(),
                words,
            });
        }
        let shape =
            "expected `MATCH <pattern> [IN <source-path-prefix>] WITH (MATERIALS|PRODUCTS) \
                     [IN <destination-path-prefix>] FROM <step>`";
        let bad = || format!("`{shown}`: {shape}");
        if words.len() < 6 {
            return Err(bad());
        }
        let mut i = 2;
        let mut source_prefix = None;
        if upper[i] == "IN" {
            source_prefix = Some(words.get(i + 1).ok_or_else(bad)?.clone());
            i += 2;
        }
        if upper.get(i).map(String::as_str) != Some("WITH") {
            return Err(bad());
        }
        let dest_kind = match upper.get(i + 1).map(String::as_str) {
            Some("MATERIALS") => ArtifactKind::Materials,
            Some("PRODUCTS") => ArtifactKind::Products,
            _ => return Err(bad()),
        };
        i += 2;
        let mut dest_prefix = None;
        if upper.get(i).map(String::as_str) == Some("IN") {
            dest_prefix = Some(words.get(i + 1).ok_or_else(bad)?.clone());
            i += 2;
        }
        if upper.get(i).map(String::as_str) != Some("FROM") || words.len() != i + 2 {
            return Err(bad());
        }
        Ok(ArtifactRule {
            kind: RuleKind::Match {
                source_prefix,
                dest_kind,
                dest_prefix,
                dest_step: words[i + 1].clone(),
            },
            pattern: words[1].clone(),
            words,
        })
    }
}

/// Why a list of rules rejected an item's artifacts, with the queue after
/// each rule so that the user sees where each artifact went.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleFailure {
    pub item: String,
    pub kind: ArtifactKind,
    pub rule: String,
    pub reason: String,
    pub artifacts: Vec<String>,
    pub trace: Vec<(String, Vec<String>)>,
}

impl std::fmt::Display for RuleFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} of `{}`: `{}` {}",
            self.kind.name(),
            self.item,
            self.rule,
            self.reason
        )
    }
}

/// A path prefix as in-toto joins it: with exactly one trailing `/`.
fn dir_prefix(p: &Option<String>) -> String {
    match p {
        Some(p) if !p.is_empty() => format!("{}/", p.trim_end_matches('/')),
        _ => String::new(),
    }
}

/// Applies `rules` to the `kind` artifacts of `item`'s link. `links` maps
/// step and inspection names to the one link verified for each.
pub fn apply(
    item: &str,
    kind: ArtifactKind,
    rules: &[ArtifactRule],
    links: &BTreeMap<String, Link>,
) -> Result<(), Box<RuleFailure>> {
    let empty = Link::default();
    let link = links.get(item).unwrap_or(&empty);
    let (materials, products) = (&link.materials, &link.products);
    let source: &Artifacts = match kind {
        ArtifactKind::Materials => materials,
        ArtifactKind::Products => products,
    };
    let mut queue: BTreeSet<String> = source.keys().cloned().collect();
    let mut trace = Vec::new();
    for rule in rules {
        let matched = || -> Vec<String> {
            queue
                .iter()
                .filter(|p| fnmatch(p, &rule.pattern))
                .cloned()
                .collect()
        };
        let fail = |reason: String, artifacts: Vec<String>, trace: &Vec<(String, Vec<String>)>| {
            Box::new(RuleFailure {
                item: item.to_string(),
                kind,
                rule: rule.to_string(),
                reason,
                artifacts,
                trace: trace.clone(),
            })
        };
        let consumed: Vec<String> = match &rule.kind {
            RuleKind::Allow => matched(),
            RuleKind::Create => matched()
                .into_iter()
                .filter(|p| products.contains_key(p) && !materials.contains_key(p))
                .collect(),
            RuleKind::Delete => matched()
                .into_iter()
                .filter(|p| materials.contains_key(p) && !products.contains_key(p))
                .collect(),
            RuleKind::Modify => matched()
                .into_iter()
                .filter(
                    |p| matches!((materials.get(p), products.get(p)), (Some(m), Some(q)) if m != q),
                )
                .collect(),
            RuleKind::Disallow => {
                let hit = matched();
                if !hit.is_empty() {
                    let reason = format!("matched {}", hit.join(", "));
                    return Err(fail(reason, hit, &trace));
                }
                Vec::new()
            }
            RuleKind::Require => {
                if !queue.contains(&rule.pattern) {
                    let reason = format!("did not find {} among the {}", rule.pattern, kind.name());
                    return Err(fail(reason, vec![rule.pattern.clone()], &trace));
                }
                Vec::new()
            }
            RuleKind::Match {
                source_prefix,
                dest_kind,
                dest_prefix,
                dest_step,
            } => match links.get(dest_step) {
                // A rule naming a step without a link consumes nothing.
                None => Vec::new(),
                Some(dest_link) => {
                    let dest = match dest_kind {
                        ArtifactKind::Materials => &dest_link.materials,
                        ArtifactKind::Products => &dest_link.products,
                    };
                    let (src_pre, dst_pre) = (dir_prefix(source_prefix), dir_prefix(dest_prefix));
                    queue
                        .iter()
                        .filter_map(|path| {
                            let rest = path.strip_prefix(&src_pre)?;
                            if !fnmatch(rest, &rule.pattern) {
                                return None;
                            }
                            let theirs = dest.get(&format!("{dst_pre}{rest}"))?;
                            (source.get(path) == Some(theirs)).then(|| path.clone())
                        })
                        .collect()
                }
            },
        };
        for p in &consumed {
            queue.remove(p);
        }
        trace.push((rule.to_string(), queue.iter().cloned().collect()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(s: &str) -> ArtifactRule {
        ArtifactRule::parse(s.split(' ').map(str::to_string).collect()).unwrap()
    }

    fn arts(items: &[(&str, &str)]) -> Artifacts {
        items
            .iter()
            .map(|(p, h)| {
                (
                    p.to_string(),
                    BTreeMap::from([("sha256".to_string(), h.to_string())]),
                )
            })
            .collect()
    }

    #[test]
    fn parses_every_shape_and_refuses_others() {
        assert_eq!(rule("allow *").kind, RuleKind::Allow);
        let m = rule("MATCH * IN src WITH products in dst from train");
        assert_eq!(
            m.kind,
            RuleKind::Match {
                source_prefix: Some("src".into()),
                dest_kind: ArtifactKind::Products,
                dest_prefix: Some("dst".into()),
                dest_step: "train".into()
            }
        );
        for bad in [
            "ALLOW",
            "ALLOW a b",
            "MATCH * WITH THINGS FROM x",
            "MATCH * FROM x",
            "COPY a",
        ] {
            assert!(
                ArtifactRule::parse(bad.split(' ').map(str::to_string).collect()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn rules_consume_in_order_and_disallow_sees_the_rest() {
        let mut links = BTreeMap::new();
        links.insert(
            "prev".to_string(),
            Link {
                products: arts(&[("out/a", "1"), ("out/b", "2")]),
                ..Link::default()
            },
        );
        links.insert(
            "step".to_string(),
            Link {
                materials: arts(&[("in/a", "1"), ("in/b", "9"), ("old", "5"), ("keep", "3")]),
                products: arts(&[("keep", "4"), ("new", "6")]),
                ..Link::default()
            },
        );
        let m = ArtifactKind::Materials;
        let ok = [
            rule("MATCH * IN in WITH PRODUCTS IN out FROM prev"),
            rule("DELETE old"),
            rule("MODIFY keep"),
        ];
        assert!(apply("step", m, &ok, &links).is_ok());
        let mut strict = ok.to_vec();
        strict.push(rule("DISALLOW *"));
        let err = apply("step", m, &strict, &links).unwrap_err();
        assert_eq!(err.artifacts, vec!["in/b".to_string()]);
        assert_eq!(err.rule, "DISALLOW *");
        let p = ArtifactKind::Products;
        assert!(apply(
            "step",
            p,
            &[rule("CREATE new"), rule("MODIFY keep"), rule("DISALLOW *")],
            &links
        )
        .is_ok());
        assert!(apply("step", p, &[rule("REQUIRE missing")], &links).is_err());
        // A MATCH against a step with no link consumes nothing.
        let none = [
            rule("MATCH * WITH PRODUCTS FROM absent"),
            rule("DISALLOW *"),
        ];
        assert!(apply("step", m, &none, &links).is_err());
    }
}
