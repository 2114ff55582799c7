//! Convolution on mlsec's own kernels ([`conv_kernel`]).
//!
//! [`conv2d`] takes a burn [`Conv2d`] layer (its weights, names and file
//! format are unchanged) and falls back to the layer's own `forward` for
//! anything the kernels do not cover: groups, dilation, asymmetric or
//! "same" padding, dtypes other than `f32`, tensors on another backend, or a
//! mix of tracked and plain tensors.

use super::conv_kernel::{self as kernel, Geometry, Wanted};
use super::{flex_tensor, operand, values, Operand, Tracked};
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::Flex;
use burn::nn::conv::Conv2d;
use burn::nn::PaddingConfig2d;
use burn::prelude::*;
use burn::tensor::ops::ConvOptions;

/// `layer.forward(x)`, on mlsec's kernels where they apply.
pub fn conv2d(layer: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    own_layer(layer, &x).unwrap_or_else(|| layer.forward(x))
}

fn own_layer(layer: &Conv2d, x: &Tensor<4>) -> Option<Tensor<4>> {
    let padding = match layer.padding {
        PaddingConfig2d::Valid => [(0, 0); 2],
        PaddingConfig2d::Explicit(top, left, bottom, right) => [(top, bottom), (left, right)],
        PaddingConfig2d::Same => return None,
    };
    let options =
        ConvOptions::new_with_padding(layer.stride, padding, layer.dilation, layer.groups);
    let bias = layer.bias.as_ref().map(|bias| bias.val());
    own_conv2d(x, &layer.weight.val(), bias.as_ref(), &options)
}

/// burn's `module::conv2d`, on mlsec's kernels where they apply (the ONNX
/// interpreter's `Conv`).
pub fn conv2d_with(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvOptions<2>,
) -> Tensor<4> {
    match own_conv2d(&x, &weight, bias.as_ref(), &options) {
        Some(output) => output,
        None => burn::tensor::module::conv2d(x, weight, bias, options),
    }
}

/// The kernels' result, or `None` where the callers fall back to burn.
fn own_conv2d(
    x: &Tensor<4>,
    weight: &Tensor<4>,
    bias: Option<&Tensor<1>>,
    options: &ConvOptions<2>,
) -> Option<Tensor<4>> {
    let geometry = geometry(x.dims(), weight.dims(), bias.map(|b| b.dims()[0]), options)?;
    let weight = operand(weight)?;
    let bias = match bias {
        Some(bias) => Some(operand(bias)?),
        None => None,
    };
    match (operand(x)?, weight, bias) {
        (Operand::Plain(x), Operand::Plain(weight), None) => Some(Tensor::from_primitive::<Flex>(
            forward(&geometry, &x, &weight, None),
        )),
        (Operand::Plain(x), Operand::Plain(weight), Some(Operand::Plain(bias))) => Some(
            Tensor::from_primitive::<Flex>(forward(&geometry, &x, &weight, Some(&bias))),
        ),
        (Operand::Tracked(x), Operand::Tracked(weight), None) => {
            Some(Tensor::from_primitive::<Tracked>(tracked_without_bias(
                geometry, x, weight,
            )))
        }
        (Operand::Tracked(x), Operand::Tracked(weight), Some(Operand::Tracked(bias))) => Some(
            Tensor::from_primitive::<Tracked>(tracked_with_bias(geometry, x, weight, bias)),
        ),
        _ => None,
    }
}

fn geometry(
    [batch, channels_in, height, width]: [usize; 4],
    [channels_out, weight_in, kh, kw]: [usize; 4],
    bias_len: Option<usize>,
    options: &ConvOptions<2>,
) -> Option<Geometry> {
    let [(top, bottom), (left, right)] = options.padding;
    let supported = options.groups == 1
        && options.dilation == [1, 1]
        && top == bottom
        && left == right
        && weight_in == channels_in
        && bias_len.is_none_or(|len| len == channels_out);
    if !supported {
        return None;
    }
    Geometry {
        batch,
        channels_in,
        height,
        width,
        channels_out,
        kernel: [kh, kw],
        stride: options.stride,
        padding: [top, left],
    }
    .checked()
}

fn forward(
    g: &Geometry,
    x: &FlexTensor,
    weight: &FlexTensor,
    bias: Option<&FlexTensor>,
) -> FlexTensor {
    let bias = bias.map(values);
    let output = kernel::forward(g, &values(x), &values(weight), bias.as_deref());
    flex_tensor(
        output,
        [g.batch, g.channels_out, g.out_height(), g.out_width()],
    )
}

/// What the backward step keeps from the forward pass.
type Saved = (FlexTensor, FlexTensor, Geometry);

/// Computes the wanted gradients and hands each to its parent node.
fn backward_step<const N: usize>(ops: Ops<Saved, N>, grads: &mut Gradients) {
    let output_grad = grads.consume::<Flex>(&ops.node);
    let (x, weight, g) = ops.state;
    let parent = |i: usize| ops.parents.get(i).and_then(Option::as_ref);
    let wanted = Wanted {
        input: parent(0).is_some(),
        weight: parent(1).is_some(),
        bias: parent(2).is_some(),
    };
    let result = kernel::backward(
        &g,
        &values(&x),
        &values(&weight),
        &values(&output_grad),
        wanted,
    );
    let weight_shape = [g.channels_out, g.channels_in, g.kernel[0], g.kernel[1]];
    if let (Some(node), Some(dx)) = (parent(0), result.input) {
        grads.register::<Flex>(
            node.id,
            flex_tensor(dx, [g.batch, g.channels_in, g.height, g.width]),
        );
    }
    if let (Some(node), Some(dw)) = (parent(1), result.weight) {
        grads.register::<Flex>(node.id, flex_tensor(dw, weight_shape));
    }
    if let (Some(node), Some(db)) = (parent(2), result.bias) {
        grads.register::<Flex>(node.id, flex_tensor(db, [g.channels_out]));
    }
}

#[derive(Debug)]
struct ConvWithBias;

impl Backward<Flex, 3> for ConvWithBias {
    type State = Saved;

    fn backward(self, ops: Ops<Saved, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        backward_step(ops, grads);
    }
}

#[derive(Debug)]
struct ConvWithoutBias;

impl Backward<Flex, 2> for ConvWithoutBias {
    type State = Saved;

    fn backward(self, ops: Ops<Saved, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        backward_step(ops, grads);
    }
}

fn tracked_with_bias(
    g: Geometry,
    x: FloatTensor<Tracked>,
    weight: FloatTensor<Tracked>,
    bias: FloatTensor<Tracked>,
) -> FloatTensor<Tracked> {
    let output = forward(
        &g,
        x.primitive(),
        weight.primitive(),
        Some(bias.primitive()),
    );
    match ConvWithBias
        .prepare::<NoCheckpointing>([x.node(), weight.node(), bias.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            prep.finish((x.into_primitive(), weight.into_primitive(), g), output)
        }
        OpsKind::UnTracked(prep) => prep.finish(output),
    }
}

fn tracked_without_bias(
    g: Geometry,
    x: FloatTensor<Tracked>,
    weight: FloatTensor<Tracked>,
) -> FloatTensor<Tracked> {
    let output = forward(&g, x.primitive(), weight.primitive(), None);
    match ConvWithoutBias
        .prepare::<NoCheckpointing>([x.node(), weight.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            prep.finish((x.into_primitive(), weight.into_primitive(), g), output)
        }
        OpsKind::UnTracked(prep) => prep.finish(output),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::native::devices;
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::Distribution;

    fn layer(device: &Device, stride: usize, padding: usize, bias: bool) -> Conv2d {
        Conv2dConfig::new([3, 4], [3, 3])
            .with_stride([stride, stride])
            .with_padding(PaddingConfig2d::Explicit(
                padding, padding, padding, padding,
            ))
            .with_bias(bias)
            .init(device)
    }

    fn assert_close(ours: Tensor<4>, burns: Tensor<4>) {
        let (ours, burns) = (ours.into_data(), burns.into_data());
        assert_eq!(ours.shape(), burns.shape());
        ours.assert_approx_eq::<f32>(&burns, burn::tensor::Tolerance::absolute(1e-4));
    }

    const CASES: [(usize, usize, bool); 4] =
        [(1, 1, true), (1, 0, false), (2, 1, true), (2, 2, false)];

    #[test]
    fn plain_forward_matches_burn() {
        let (device, _) = devices();
        for (stride, padding, bias) in CASES {
            let conv = layer(&device, stride, padding, bias);
            let x = Tensor::<4>::random([5, 3, 9, 7], Distribution::Uniform(-1.0, 1.0), &device);
            let ours = own_layer(&conv, &x).expect("plain tensors take mlsec's kernels");
            assert_close(ours, conv.forward(x));
        }
    }

    /// Loss `sum(conv(x) · r)` on the autodiff device: the output and the
    /// gradients for input, weight and bias must be burn's.
    #[test]
    fn tracked_gradients_match_burn() {
        let (_, device) = devices();
        for (stride, padding, bias) in CASES {
            let conv = layer(&device, stride, padding, bias);
            let x = Tensor::<4>::random([5, 3, 9, 7], Distribution::Uniform(-1.0, 1.0), &device)
                .require_grad();
            let run = |output: Tensor<4>| {
                let r = Tensor::<4>::ones(output.dims(), &device).mul_scalar(0.5)
                    + output.clone().detach().sin();
                let grads = (output.clone() * r).sum().backward();
                let weight_grad = conv.weight.val().grad(&grads).expect("weight gradient");
                let bias_grad = conv
                    .bias
                    .as_ref()
                    .map(|b| b.val().grad(&grads).expect("bias gradient"));
                (
                    output.inner(),
                    x.grad(&grads).expect("input gradient"),
                    weight_grad,
                    bias_grad,
                )
            };
            let ours = run(own_layer(&conv, &x).expect("tracked tensors take mlsec's kernels"));
            let burns = run(conv.forward(x.clone()));
            assert_close(ours.0, burns.0);
            assert_close(ours.1, burns.1);
            assert_close(ours.2, burns.2);
            if let (Some(a), Some(b)) = (ours.3, burns.3) {
                a.into_data().assert_approx_eq::<f32>(
                    &b.into_data(),
                    burn::tensor::Tolerance::absolute(1e-4),
                );
            }
        }
    }

    #[test]
    fn frozen_weights_give_only_the_input_gradient() {
        let (_, device) = devices();
        let conv = layer(&device, 1, 1, true);
        let frozen = burn::module::Module::no_grad(conv);
        let x = Tensor::<4>::random([2, 3, 6, 6], Distribution::Uniform(-1.0, 1.0), &device)
            .require_grad();
        let grads = own_layer(&frozen, &x).expect("kernels").sum().backward();
        assert!(x.grad(&grads).is_some());
        assert!(frozen.weight.val().grad(&grads).is_none());
    }

    #[test]
    fn unsupported_layers_fall_back_to_burn() {
        let (device, _) = devices();
        let x = Tensor::<4>::random([1, 3, 8, 8], Distribution::Uniform(-1.0, 1.0), &device);
        let same = Conv2dConfig::new([3, 4], [3, 3])
            .with_padding(PaddingConfig2d::Same)
            .init(&device);
        let dilated = Conv2dConfig::new([3, 4], [3, 3])
            .with_dilation([2, 2])
            .init(&device);
        let grouped = Conv2dConfig::new([3, 6], [3, 3])
            .with_groups(3)
            .init(&device);
        for conv in [same, dilated, grouped] {
            assert!(own_layer(&conv, &x).is_none());
            assert_eq!(
                conv2d(&conv, x.clone()).dims(),
                conv.forward(x.clone()).dims()
            );
        }
    }
}
