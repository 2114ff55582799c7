use serde::{Deserialize, Serialize};
use std::fmt;

/// Where in the ML supply chain a finding, attack or control belongs
/// (the six pipeline stages plus the two cross-cutting concerns).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    Collection,
    Preprocessing,
    Training,
    Evaluation,
    Deployment,
    Inference,
    SupplyChain,
    Privacy,
}

impl Stage {
    pub const ALL: [Stage; 8] = [
        Stage::Collection,
        Stage::Preprocessing,
        Stage::Training,
        Stage::Evaluation,
        Stage::Deployment,
        Stage::Inference,
        Stage::SupplyChain,
        Stage::Privacy,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Collection => "collection",
            Stage::Preprocessing => "preprocessing",
            Stage::Training => "training",
            Stage::Evaluation => "evaluation",
            Stage::Deployment => "deployment",
            Stage::Inference => "inference",
            Stage::SupplyChain => "supply-chain",
            Stage::Privacy => "privacy",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
