//! Model loading: HF directories (config.json + safetensors + tokenizer.json) and GGUF files,
//! both ending as host `f32` [`Weights`] that the decoder takes by HF tensor name. Every error
//! names the file and the tensor or key at fault.

pub mod gguf;
pub mod safetensors;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::config::ModelConfig;
use crate::error::{Error, Result};
use crate::tokenizer::Tokenizer;

/// A tensor on the host: row-major `f32` in HF's shape convention (`(out, in)` for linears).
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl HostTensor {
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Self {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        Self { shape, data }
    }
}

/// Named host tensors, each remembering the file it came from (for errors).
#[derive(Debug, Default)]
pub struct Weights {
    default_path: PathBuf,
    tensors: BTreeMap<String, (HostTensor, PathBuf)>,
}

impl Weights {
    pub fn new(default_path: PathBuf) -> Self {
        Self { default_path, tensors: BTreeMap::new() }
    }

    pub fn insert(&mut self, name: String, tensor: HostTensor, path: PathBuf) {
        self.tensors.insert(name, (tensor, path));
    }

    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// Removes and returns `name`, checking its shape and that it is finite.
    pub fn take(&mut self, name: &str, expected: &[usize]) -> Result<HostTensor> {
        let (t, path) = self
            .tensors
            .remove(name)
            .ok_or_else(|| Error::MissingTensor { path: self.default_path.clone(), tensor: name.into() })?;
        if t.shape != expected {
            return Err(Error::TensorShape { path, tensor: name.into(), expected: expected.to_vec(), actual: t.shape });
        }
        if t.data.iter().any(|x| !x.is_finite()) {
            return Err(Error::NonFinite { path, tensor: name.into() });
        }
        Ok(t)
    }

    /// Like [`Weights::take`] for a tensor that may legitimately be absent.
    pub fn take_opt(&mut self, name: &str, expected: &[usize]) -> Result<Option<HostTensor>> {
        if self.contains(name) {
            self.take(name, expected).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Names not consumed by the model (reported, not fatal: checkpoints carry extras).
    pub fn remaining(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }
}

/// Everything read from a model directory or GGUF file, still on the host.
#[derive(Debug)]
pub struct Pretrained {
    pub config: ModelConfig,
    pub weights: Weights,
    pub tokenizer: Tokenizer,
    /// Where it came from, for messages.
    pub source: PathBuf,
}

/// Opens an HF model directory or a `.gguf` file.
pub fn open(path: impl AsRef<Path>) -> Result<Pretrained> {
    let path = path.as_ref();
    if path.is_dir() {
        open_hf_dir(path)
    } else if path.extension().is_some_and(|e| e == "gguf") {
        gguf::open(path)
    } else if path.exists() {
        Err(Error::Input {
            what: path.display().to_string(),
            problem: "expected an HF model directory or a .gguf file".into(),
        })
    } else {
        Err(Error::MissingFile { path: path.into(), what: "model directory or .gguf file" })
    }
}

/// Opens an HF directory: `config.json`, safetensors weights, `tokenizer.json`.
pub fn open_hf_dir(dir: &Path) -> Result<Pretrained> {
    let config_path = dir.join("config.json");
    if !config_path.exists() {
        return Err(Error::MissingFile { path: config_path, what: "model config" });
    }
    let mut config = ModelConfig::from_file(&config_path)?;
    // generation_config.json is where HF keeps the stop tokens of chat models.
    let gen_path = dir.join("generation_config.json");
    if gen_path.exists() {
        let bytes = std::fs::read(&gen_path).map_err(|e| Error::io(&gen_path, e))?;
        let v: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|source| Error::Json { path: gen_path.clone(), source })?;
        for id in ids_of(v.get("eos_token_id")) {
            if !config.eos_token_ids.contains(&id) {
                config.eos_token_ids.push(id);
            }
        }
    }
    let weights = safetensors::load_dir(dir)?;
    let tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))?;
    Ok(Pretrained { config, weights, tokenizer, source: dir.into() })
}

fn ids_of(v: Option<&serde_json::Value>) -> Vec<u32> {
    match v {
        Some(serde_json::Value::Array(items)) => items.iter().filter_map(|x| x.as_u64()).map(|x| x as u32).collect(),
        Some(x) => x.as_u64().map(|x| vec![x as u32]).unwrap_or_default(),
        None => vec![],
    }
}
