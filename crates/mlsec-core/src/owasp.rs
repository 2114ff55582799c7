use serde::{Serialize, Serializer};
use std::fmt;

/// The OWASP Machine Learning Security Top 10 (2023) categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OwaspMl {
    Ml01InputManipulation,
    Ml02DataPoisoning,
    Ml03ModelInversion,
    Ml04MembershipInference,
    Ml05ModelTheft,
    Ml06AiSupplyChain,
    Ml07TransferLearning,
    Ml08ModelSkewing,
    Ml09OutputIntegrity,
    Ml10ModelPoisoning,
}

impl OwaspMl {
    pub fn id(self) -> &'static str {
        match self {
            OwaspMl::Ml01InputManipulation => "ML01",
            OwaspMl::Ml02DataPoisoning => "ML02",
            OwaspMl::Ml03ModelInversion => "ML03",
            OwaspMl::Ml04MembershipInference => "ML04",
            OwaspMl::Ml05ModelTheft => "ML05",
            OwaspMl::Ml06AiSupplyChain => "ML06",
            OwaspMl::Ml07TransferLearning => "ML07",
            OwaspMl::Ml08ModelSkewing => "ML08",
            OwaspMl::Ml09OutputIntegrity => "ML09",
            OwaspMl::Ml10ModelPoisoning => "ML10",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            OwaspMl::Ml01InputManipulation => "Input Manipulation Attack",
            OwaspMl::Ml02DataPoisoning => "Data Poisoning Attack",
            OwaspMl::Ml03ModelInversion => "Model Inversion Attack",
            OwaspMl::Ml04MembershipInference => "Membership Inference Attack",
            OwaspMl::Ml05ModelTheft => "Model Theft",
            OwaspMl::Ml06AiSupplyChain => "AI Supply Chain Attacks",
            OwaspMl::Ml07TransferLearning => "Transfer Learning Attack",
            OwaspMl::Ml08ModelSkewing => "Model Skewing",
            OwaspMl::Ml09OutputIntegrity => "Output Integrity Attack",
            OwaspMl::Ml10ModelPoisoning => "Model Poisoning",
        }
    }
}

impl fmt::Display for OwaspMl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl Serialize for OwaspMl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.id())
    }
}
