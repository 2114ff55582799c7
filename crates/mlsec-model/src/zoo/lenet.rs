use crate::ops::{conv2d, max_pool2d};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::relu;

/// LeCun-style CNN: two 5×5 "same" convolutions, each followed by ReLU and
/// 2×2 max pooling, then a hidden fully connected layer. With the default
/// widths (32, 64, 256) it is the MNIST network of Madry et al. (2018) with
/// a narrower dense layer.
#[derive(Module, Debug)]
pub struct LeNet {
    conv1: Conv2d,
    conv2: Conv2d,
    pool: MaxPool2d,
    fc1: Linear,
    fc2: Linear,
}

impl LeNet {
    pub fn new(
        input: [usize; 3],
        channels: [usize; 2],
        hidden: usize,
        classes: usize,
        device: &Device,
    ) -> Self {
        let conv = |cin, cout| {
            Conv2dConfig::new([cin, cout], [5, 5])
                .with_padding(PaddingConfig2d::Explicit(2, 2, 2, 2))
                .init(device)
        };
        let flat = channels[1] * (input[1] / 4) * (input[2] / 4);
        LeNet {
            conv1: conv(input[0], channels[0]),
            conv2: conv(channels[0], channels[1]),
            pool: MaxPool2dConfig::new([2, 2]).init(),
            fc1: LinearConfig::new(flat, hidden).init(device),
            fc2: LinearConfig::new(hidden, classes).init(device),
        }
    }

    pub fn features(&self, x: Tensor<4>) -> Tensor<2> {
        // ReLU after pooling, on a quarter of the values: max pooling and
        // ReLU commute (both are monotone), values and gradients included.
        let x = relu(max_pool2d(&self.pool, conv2d(&self.conv1, x)));
        let x = relu(max_pool2d(&self.pool, conv2d(&self.conv2, x)));
        relu(self.fc1.forward(x.flatten(1, 3)))
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.fc2.forward(self.features(x))
    }
}
