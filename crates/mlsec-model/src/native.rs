//! Zoo models on burn's `flex` CPU backend, as [`Differentiable`] models,
//! with their two-file format: `NAME.safetensors` (weights) and `NAME.json`
//! ([`ModelConfig`]) beside it.

use crate::batch::Batch;
use crate::classifier::{Access, Classifier, Differentiable, Gradient, LogitLoss, ModelInfo};
use crate::error::{ErrorKind, ModelError, Result};
use crate::zoo::{Architecture, Net};
use burn::prelude::*;
use burn::store::{ModuleSnapshot, SafetensorsStore};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Weight files above this are refused before they are read.
pub const MAX_WEIGHTS_BYTES: u64 = 2 << 30;
/// Config files above this are refused.
const MAX_CONFIG_BYTES: u64 = 1 << 20;
/// Samples per forward pass inside the engine: bounds memory on big batches.
pub const ENGINE_BATCH: usize = 256;

pub const FORMAT: &str = "mlsec-model";

/// The JSON half of a model: what network the weights belong to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Always `mlsec-model`.
    pub format: String,
    pub version: u32,
    pub architecture: Architecture,
    /// One sample: channels, height, width.
    pub input_shape: [usize; 3],
    pub classes: usize,
    /// Inputs are expected in this range (pixels scaled to [0, 1]).
    pub value_range: [f32; 2],
    /// SHA-256 of the safetensors file, checked on load.
    pub weights_sha256: String,
    /// How it was trained (data, epochs, seed, objective, measured accuracy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training: Option<serde_json::Value>,
}

/// The devices a model lives on: plain inference and autodiff.
pub fn devices() -> (Device, Device) {
    let device = Device::flex();
    (device.clone(), device.autodiff())
}

/// A zoo network ready for queries and gradients.
pub struct NativeModel {
    config: ModelConfig,
    info: ModelInfo,
    /// Inference copy (no autodiff): faster forward passes.
    infer: Net,
    /// Frozen copy on the autodiff device: input gradients only.
    frozen: Net,
    device: Device,
    ad_device: Device,
}

impl NativeModel {
    /// Wraps a network trained on the autodiff device.
    pub fn from_trained(net: &Net, config: ModelConfig) -> Self {
        let (device, ad_device) = devices();
        let info = info_of(&config);
        NativeModel {
            infer: net.valid(),
            frozen: net.clone().freeze(),
            config,
            info,
            device,
            ad_device,
        }
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The trainable network (autodiff device), e.g. to fine-tune.
    pub fn network(&self) -> Net {
        self.frozen.clone().unfreeze()
    }

    /// Writes `path` (safetensors) and the JSON config beside it; returns
    /// the config path.
    pub fn save(&mut self, path: &Path) -> Result<PathBuf> {
        let mut store = SafetensorsStore::from_file(path)
            .overwrite(true)
            .skip_enum_variants(true)
            .metadata("format", FORMAT)
            .metadata("architecture", self.config.architecture.name());
        self.infer
            .save_into(&mut store)
            .map_err(|e| ModelError::new(ErrorKind::Io, format!("{}: {e}", path.display())))?;
        let written = std::fs::read(path).map_err(|e| ModelError::io(path, &e))?;
        let bytes = with_sorted_header(&written).ok_or_else(|| {
            ModelError::malformed(format!(
                "{}: the engine wrote a safetensors file whose header does not parse",
                path.display()
            ))
        })?;
        if bytes != written {
            std::fs::write(path, &bytes).map_err(|e| ModelError::io(path, &e))?;
        }
        self.config.weights_sha256 = mlsec_core::digest::sha256_hex(&bytes);
        let config_path = config_path_for(path);
        let json = serde_json::to_string_pretty(&self.config).expect("config serialises");
        std::fs::write(&config_path, json + "\n").map_err(|e| ModelError::io(&config_path, &e))?;
        Ok(config_path)
    }

    /// Loads `path` (safetensors) with the JSON config beside it.
    pub fn load(path: &Path) -> Result<Self> {
        let config_path = config_path_for(path);
        let config = read_config(&config_path)?;
        let bytes = read_bounded(path, MAX_WEIGHTS_BYTES)?;
        let digest = mlsec_core::digest::sha256_hex(&bytes);
        if digest != config.weights_sha256 {
            return Err(ModelError::malformed(format!(
                "{}: SHA-256 {digest} does not match {} ({}), so the weights are not the ones the config describes",
                path.display(),
                config.weights_sha256,
                config_path.display()
            )));
        }
        let (_, ad_device) = devices();
        let mut net = config
            .architecture
            .init(config.input_shape, config.classes, &ad_device);
        let mut store = SafetensorsStore::from_bytes(Some(bytes)).skip_enum_variants(true);
        let applied = net
            .load_from(&mut store)
            .map_err(|e| ModelError::malformed(format!("{}: {e}", path.display())))?;
        if !applied.missing.is_empty() || !applied.errors.is_empty() || !applied.unused.is_empty() {
            let missing: Vec<&str> = applied.missing.iter().map(|(k, _)| k.as_str()).collect();
            return Err(ModelError::malformed(format!(
                "{}: weights do not fit the {} in {}: missing {:?}, unexpected {:?}, errors {:?}",
                path.display(),
                config.architecture.name(),
                config_path.display(),
                missing,
                applied.unused,
                applied
                    .errors
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
            )));
        }
        Ok(NativeModel::from_trained(&net, config))
    }

    fn tensor(&self, x: &Batch, device: &Device) -> Tensor<4> {
        let s = &self.config.input_shape;
        Tensor::from_data(
            TensorData::new(x.data.clone(), [x.len(), s[0], s[1], s[2]]),
            device,
        )
    }

    fn for_chunks(&self, x: &Batch, f: impl FnMut(&Batch) -> Result<()>) -> Result<()> {
        engine_chunks(self, x, f)
    }
}

/// Checks `x` against `model` and hands it to `f` in engine-sized chunks,
/// which bounds the memory one forward pass takes.
pub(crate) fn engine_chunks(
    model: &dyn Classifier,
    x: &Batch,
    mut f: impl FnMut(&Batch) -> Result<()>,
) -> Result<()> {
    model.check_input(x)?;
    let mut start = 0;
    while start < x.len() {
        let end = (start + ENGINE_BATCH).min(x.len());
        f(&x.range(start, end))?;
        start = end;
    }
    Ok(())
}

/// The safetensors file `bytes` with its JSON header's keys sorted; the
/// tensor data is untouched (its offsets count from the end of the header).
///
/// Why: burn writes the header's `__metadata__` from a hash map, so two saves
/// of the same weights came out in different byte orders, with different
/// SHA-256 digests, and a retrained model's digest (which signing and
/// provenance record) changed from run to run with the same seed.
fn with_sorted_header(bytes: &[u8]) -> Option<Vec<u8>> {
    fn sorted(value: serde_json::Value) -> serde_json::Value {
        match value {
            serde_json::Value::Object(map) => {
                let map: std::collections::BTreeMap<String, serde_json::Value> =
                    map.into_iter().map(|(k, v)| (k, sorted(v))).collect();
                serde_json::Value::Object(map.into_iter().collect())
            }
            other => other,
        }
    }
    let header_len = usize::try_from(u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?)).ok()?;
    let data_start = header_len.checked_add(8)?;
    let header: serde_json::Value = serde_json::from_slice(bytes.get(8..data_start)?).ok()?;
    let mut header = serde_json::to_vec(&sorted(header)).ok()?;
    // The format pads the header with spaces to keep the data 8-byte aligned.
    header.resize(header.len().next_multiple_of(8), b' ');
    let mut out = Vec::with_capacity(8 + header.len() + bytes.len() - data_start);
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(&bytes[data_start..]);
    Some(out)
}

/// `model.safetensors` → `model.json`.
pub fn config_path_for(weights: &Path) -> PathBuf {
    weights.with_extension("json")
}

pub fn read_config(path: &Path) -> Result<ModelConfig> {
    let bytes = read_bounded(path, MAX_CONFIG_BYTES)?;
    let config: ModelConfig = serde_json::from_slice(&bytes).map_err(|e| {
        ModelError::malformed(format!(
            "{}: not an mlsec model config: {e}",
            path.display()
        ))
    })?;
    if config.format != FORMAT || config.version != 1 {
        return Err(ModelError::unsupported(format!(
            "{}: format {:?} version {} (this mlsec reads {FORMAT} version 1)",
            path.display(),
            config.format,
            config.version
        )));
    }
    let [c, h, w] = config.input_shape;
    if c == 0
        || h == 0
        || w == 0
        || c * h * w > 1 << 24
        || config.classes < 2
        || config.classes > 100_000
    {
        return Err(ModelError::malformed(format!(
            "{}: implausible input shape {:?} or class count {}",
            path.display(),
            config.input_shape,
            config.classes
        )));
    }
    Ok(config)
}

pub(crate) fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| ModelError::io(path, &e))?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ModelError::io(path, &e))?;
    if bytes.len() as u64 > limit {
        return Err(ModelError::malformed(format!(
            "{}: larger than the {limit}-byte limit",
            path.display()
        )));
    }
    Ok(bytes)
}

fn info_of(config: &ModelConfig) -> ModelInfo {
    ModelInfo {
        name: config.architecture.name().to_string(),
        input_shape: config.input_shape.to_vec(),
        classes: config.classes,
        value_range: (config.value_range[0], config.value_range[1]),
        access: Access::Gradient,
    }
}

/// The backward pass shared by every engine-backed model: for each chunk,
/// the host-side loss on the logits gives d loss / d logits, and one
/// backward pass of `sum(logits · that)` gives the input gradient.
pub(crate) struct GradientAccumulator<'a> {
    loss: &'a dyn LogitLoss,
    classes: usize,
    logits: Vec<f32>,
    losses: Vec<f32>,
    input: Vec<f32>,
}

impl<'a> GradientAccumulator<'a> {
    pub(crate) fn new(loss: &'a dyn LogitLoss, classes: usize) -> Self {
        GradientAccumulator {
            loss,
            classes,
            logits: Vec::new(),
            losses: Vec::new(),
            input: Vec::new(),
        }
    }

    /// `x` is a chunk's input (requiring gradients), `z` its logits.
    pub(crate) fn add<const D: usize>(
        &mut self,
        x: Tensor<D>,
        z: Tensor<2>,
        device: &Device,
    ) -> Result<()> {
        let c = self.classes;
        let offset = self.losses.len();
        let zh = to_vec(z.clone().detach());
        let mut dz = vec![0.0f32; zh.len()];
        for (i, (row, g)) in zh.chunks(c).zip(dz.chunks_mut(c)).enumerate() {
            self.losses.push(self.loss.eval(offset + i, row, g));
        }
        let n = zh.len() / c;
        let weights = Tensor::<2>::from_data(TensorData::new(dz, [n, c]), device);
        let grads = (z * weights).sum().backward();
        let gx = x
            .grad(&grads)
            .ok_or_else(|| ModelError::unsupported("no gradient reached the model's input"))?;
        self.input
            .extend_from_slice(gx.into_data().as_slice::<f32>().expect("f32 gradient"));
        self.logits.extend(zh);
        Ok(())
    }

    pub(crate) fn finish(self, input_shape: Vec<usize>) -> Result<Gradient> {
        Ok(Gradient {
            logits: Batch::new(self.logits, vec![self.losses.len(), self.classes])?,
            losses: self.losses,
            input: Batch::new(self.input, input_shape)?,
        })
    }
}

pub(crate) fn to_vec(t: Tensor<2>) -> Vec<f32> {
    t.into_data()
        .as_slice::<f32>()
        .expect("float tensors hold f32")
        .to_vec()
}

impl Classifier for NativeModel {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn logits(&self, x: &Batch) -> Result<Batch> {
        let mut out = Vec::with_capacity(x.len() * self.info.classes);
        self.for_chunks(x, |chunk| {
            out.extend(to_vec(self.infer.forward(self.tensor(chunk, &self.device))));
            Ok(())
        })?;
        Batch::new(out, vec![x.len(), self.info.classes])
    }
}

impl Differentiable for NativeModel {
    fn gradient(&self, x: &Batch, loss: &dyn LogitLoss) -> Result<Gradient> {
        let mut acc = GradientAccumulator::new(loss, self.info.classes);
        self.for_chunks(x, |chunk| {
            let xt = self.tensor(chunk, &self.ad_device).require_grad();
            let z = self.frozen.forward(xt.clone());
            acc.add(xt, z, &self.ad_device)
        })?;
        acc.finish(x.shape.clone())
    }

    fn features(&self, x: &Batch) -> Result<Batch> {
        let mut out = Vec::new();
        let mut width = 0;
        self.for_chunks(x, |chunk| {
            let f = self.infer.features(self.tensor(chunk, &self.device));
            width = f.dims()[1];
            out.extend(to_vec(f));
            Ok(())
        })?;
        Batch::new(out, vec![x.len(), width])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_rewritten_with_sorted_keys_and_the_data_kept() {
        let header = br#"{"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"__metadata__":{"z":"1","a":"2"}}"#;
        let mut file = (header.len() as u64).to_le_bytes().to_vec();
        file.extend_from_slice(header);
        file.extend_from_slice(&1.5f32.to_le_bytes());
        let sorted = with_sorted_header(&file).expect("a valid file");
        let len = u64::from_le_bytes(sorted[..8].try_into().unwrap()) as usize;
        assert_eq!(len % 8, 0);
        let text = std::str::from_utf8(&sorted[8..8 + len]).unwrap().trim_end();
        assert_eq!(
            text,
            r#"{"__metadata__":{"a":"2","z":"1"},"b":{"data_offsets":[0,4],"dtype":"F32","shape":[1]}}"#
        );
        assert_eq!(&sorted[8 + len..], &1.5f32.to_le_bytes());
        assert_eq!(
            with_sorted_header(&sorted),
            Some(sorted.clone()),
            "idempotent"
        );
        assert_eq!(with_sorted_header(&file[..5]), None);
        assert_eq!(with_sorted_header(&[0xff; 16]), None);
    }

    /// Saving the same network twice gives the same bytes (burn's metadata
    /// order varied from save to save).
    #[test]
    fn saving_twice_gives_identical_files() {
        let dir = tempfile::tempdir().unwrap();
        let (_, device) = devices();
        let net = Architecture::by_name("mlp")
            .unwrap()
            .init([1, 4, 4], 3, &device);
        let config = ModelConfig {
            format: FORMAT.to_string(),
            version: 1,
            architecture: Architecture::by_name("mlp").unwrap(),
            input_shape: [1, 4, 4],
            classes: 3,
            value_range: [0.0, 1.0],
            weights_sha256: String::new(),
            training: None,
        };
        let mut digests = Vec::new();
        for name in ["a", "b", "c", "d", "e", "f", "g", "h"] {
            let path = dir.path().join(format!("{name}.safetensors"));
            let mut model = NativeModel::from_trained(&net, config.clone());
            model.save(&path).unwrap();
            digests.push(mlsec_core::digest::sha256_hex(
                &std::fs::read(&path).unwrap(),
            ));
            NativeModel::load(&path).expect("the rewritten file loads");
        }
        assert!(digests.windows(2).all(|w| w[0] == w[1]), "{digests:?}");
    }
}
