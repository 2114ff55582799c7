use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::relu;

#[derive(Module, Debug)]
pub struct Mlp {
    hidden: Vec<Linear>,
    output: Linear,
}

impl Mlp {
    pub fn new(input: [usize; 3], hidden: &[usize], classes: usize, device: &Device) -> Self {
        let mut width = input.iter().product::<usize>();
        let mut layers = Vec::with_capacity(hidden.len());
        for &h in hidden {
            layers.push(LinearConfig::new(width, h).init(device));
            width = h;
        }
        Mlp {
            hidden: layers,
            output: LinearConfig::new(width, classes).init(device),
        }
    }

    pub fn features(&self, x: Tensor<4>) -> Tensor<2> {
        let mut h: Tensor<2> = x.flatten(1, 3);
        for layer in &self.hidden {
            h = relu(layer.forward(h));
        }
        h
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.output.forward(self.features(x))
    }
}
