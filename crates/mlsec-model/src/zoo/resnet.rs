use crate::ops::conv2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::relu;

fn conv3x3(cin: usize, cout: usize, stride: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([cin, cout], [3, 3])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_bias(false)
        .init(device)
}

/// He et al.'s basic block: two 3×3 convolutions with batch norm, and a 1×1
/// projection on the shortcut when the shape changes.
#[derive(Module, Debug)]
pub struct BasicBlock {
    conv1: Conv2d,
    bn1: BatchNorm,
    conv2: Conv2d,
    bn2: BatchNorm,
    shortcut: Option<(Conv2d, BatchNorm)>,
}

impl BasicBlock {
    fn new(cin: usize, cout: usize, stride: usize, device: &Device) -> Self {
        let shortcut = (stride != 1 || cin != cout).then(|| {
            (
                Conv2dConfig::new([cin, cout], [1, 1])
                    .with_stride([stride, stride])
                    .with_bias(false)
                    .init(device),
                BatchNormConfig::new(cout).init(device),
            )
        });
        BasicBlock {
            conv1: conv3x3(cin, cout, stride, device),
            bn1: BatchNormConfig::new(cout).init(device),
            conv2: conv3x3(cout, cout, 1, device),
            bn2: BatchNormConfig::new(cout).init(device),
            shortcut,
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let h = relu(self.bn1.forward(conv2d(&self.conv1, x.clone())));
        let h = self.bn2.forward(conv2d(&self.conv2, h));
        let skip = match &self.shortcut {
            Some((conv, bn)) => bn.forward(conv2d(conv, x)),
            None => x,
        };
        relu(h + skip)
    }
}

/// A ResNet for small images: stem, three stages of one basic block each,
/// global average pooling and a linear classifier.
#[derive(Module, Debug)]
pub struct ResNet {
    stem: Conv2d,
    stem_bn: BatchNorm,
    blocks: Vec<BasicBlock>,
    fc: Linear,
}

impl ResNet {
    pub fn new(channels: usize, widths: [usize; 3], classes: usize, device: &Device) -> Self {
        let blocks = vec![
            BasicBlock::new(widths[0], widths[0], 1, device),
            BasicBlock::new(widths[0], widths[1], 2, device),
            BasicBlock::new(widths[1], widths[2], 2, device),
        ];
        ResNet {
            stem: conv3x3(channels, widths[0], 1, device),
            stem_bn: BatchNormConfig::new(widths[0]).init(device),
            blocks,
            fc: LinearConfig::new(widths[2], classes).init(device),
        }
    }

    pub fn features(&self, x: Tensor<4>) -> Tensor<2> {
        let mut h = relu(self.stem_bn.forward(conv2d(&self.stem, x)));
        for block in &self.blocks {
            h = block.forward(h);
        }
        // Global average pooling over height and width.
        h.mean_dims(&[2, 3]).flatten(1, 3)
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.fc.forward(self.features(x))
    }
}
