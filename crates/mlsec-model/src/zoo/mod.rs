//! The model zoo: an MLP, a LeNet-style CNN and a small ResNet, written as
//! burn modules. A model on disk is two plain files: the weights in
//! safetensors and an [`Architecture`] in JSON beside them.

mod lenet;
mod mlp;
mod resnet;

pub use lenet::LeNet;
pub use mlp::Mlp;
pub use resnet::ResNet;

use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// Which network, with the sizes that fix its weight shapes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "arch", rename_all = "lowercase")]
pub enum Architecture {
    /// Flatten, then fully connected layers with ReLU.
    Mlp { hidden: Vec<usize> },
    /// conv5x5 → ReLU → maxpool2 → conv5x5 → ReLU → maxpool2 → fc → ReLU → fc.
    Lenet { channels: [usize; 2], hidden: usize },
    /// A pre-activation-free ResNet: 3×3 stem, one basic block per stage
    /// (stride 1, 2, 2), batch norm, global average pooling, fc.
    Resnet { widths: [usize; 3] },
}

impl Architecture {
    /// The defaults behind `--model mlp|lenet|resnet`.
    pub fn by_name(name: &str) -> Option<Self> {
        match name {
            "mlp" => Some(Architecture::Mlp {
                hidden: vec![256, 128],
            }),
            "lenet" => Some(Architecture::Lenet {
                channels: [32, 64],
                hidden: 256,
            }),
            "resnet" => Some(Architecture::Resnet {
                widths: [16, 32, 64],
            }),
            _ => None,
        }
    }

    pub const NAMES: [&'static str; 3] = ["mlp", "lenet", "resnet"];

    pub fn name(&self) -> &'static str {
        match self {
            Architecture::Mlp { .. } => "mlp",
            Architecture::Lenet { .. } => "lenet",
            Architecture::Resnet { .. } => "resnet",
        }
    }

    /// Builds weights initialised from `seed`. The backend's random
    /// generator is one for the whole process, so seeding and drawing are
    /// done under a lock: two models initialised at once on different
    /// threads (tests, a server) each get their seed's weights, not an
    /// interleaving of both draws.
    pub fn init_seeded(
        &self,
        input: [usize; 3],
        classes: usize,
        device: &Device,
        seed: u64,
    ) -> Net {
        static INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _held = INIT
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        device.seed(seed);
        self.init(input, classes, device)
    }

    /// Builds freshly initialised weights on `device` from the backend's
    /// generator as it stands ([`Architecture::init_seeded`] for weights
    /// that depend only on a seed).
    pub fn init(&self, input: [usize; 3], classes: usize, device: &Device) -> Net {
        match self {
            Architecture::Mlp { hidden } => Net::Mlp(Mlp::new(input, hidden, classes, device)),
            Architecture::Lenet { channels, hidden } => {
                Net::Lenet(LeNet::new(input, *channels, *hidden, classes, device))
            }
            Architecture::Resnet { widths } => {
                Net::Resnet(ResNet::new(input[0], *widths, classes, device))
            }
        }
    }
}

/// One of the zoo's networks.
#[derive(Module, Debug)]
pub enum Net {
    Mlp(Mlp),
    Lenet(LeNet),
    Resnet(ResNet),
}

impl Net {
    /// Logits, `[n, classes]`, for inputs `[n, c, h, w]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        match self {
            Net::Mlp(m) => m.forward(x),
            Net::Lenet(m) => m.forward(x),
            Net::Resnet(m) => m.forward(x),
        }
    }

    /// Penultimate activations, `[n, features]`.
    pub fn features(&self, x: Tensor<4>) -> Tensor<2> {
        match self {
            Net::Mlp(m) => m.features(x),
            Net::Lenet(m) => m.features(x),
            Net::Resnet(m) => m.features(x),
        }
    }
}
