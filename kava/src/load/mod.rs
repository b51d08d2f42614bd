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

/// The configuration of an HF model directory (its `config.json`) or a `.gguf` file (its
/// metadata), validated, without loading the weights: what a caller needs to size a job before
/// committing memory to it.
pub fn read_config(path: impl AsRef<Path>) -> Result<ModelConfig> {
    let path = path.as_ref();
    if path.is_dir() {
        let config_path = path.join("config.json");
        if !config_path.exists() {
            return Err(Error::MissingFile { path: config_path, what: "model config" });
        }
        return ModelConfig::from_file(&config_path);
    }
    if path.extension().is_some_and(|e| e == "gguf") && path.is_file() {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let wrap = |source| Error::Gguf { path: path.into(), source };
        let g = crate::gguf::Gguf::parse(&bytes).map_err(wrap)?;
        return ModelConfig::from_json(&crate::gguf::hf_config(&g, &bytes).map_err(wrap)?, path);
    }
    // Anything else: `open` says what is wrong with it.
    open(path).map(|p| p.config)
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
    let gen_path = dir.join("generation_config.json");
    if gen_path.exists() {
        let bytes = std::fs::read(&gen_path).map_err(|e| Error::io(&gen_path, e))?;
        merge_generation_config(&mut config, &bytes, &gen_path)?;
    }
    let weights = safetensors::load_dir(dir)?;
    let tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))?;
    Ok(Pretrained { config, weights, tokenizer, source: dir.into() })
}

/// The files of an HF model directory held in memory (a browser fetches them one by one).
/// `source` names the directory (or URL prefix) in errors: `source/config.json: …`.
#[derive(Debug, Clone, Copy)]
pub struct HfBytes<'a> {
    pub source: &'a Path,
    pub config: &'a [u8],
    pub generation_config: Option<&'a [u8]>,
    /// `model.safetensors` (single-file layout).
    pub weights: &'a [u8],
    pub tokenizer: &'a [u8],
}

/// [`open_hf_dir`] over in-memory files: the same parsers, fed bytes instead of paths.
pub fn open_hf_bytes(files: HfBytes<'_>) -> Result<Pretrained> {
    let dir = files.source;
    let mut config = ModelConfig::from_json_bytes(files.config, &dir.join("config.json"))?;
    if let Some(bytes) = files.generation_config {
        merge_generation_config(&mut config, bytes, &dir.join("generation_config.json"))?;
    }
    let weights_path = dir.join("model.safetensors");
    let mut weights = Weights::new(weights_path.clone());
    for (name, t) in safetensors::parse(files.weights, &weights_path)? {
        weights.insert(name, t, weights_path.clone());
    }
    let tokenizer = Tokenizer::from_bytes(files.tokenizer, &dir.join("tokenizer.json"))?;
    Ok(Pretrained { config, weights, tokenizer, source: dir.into() })
}

/// Adds the stop ids of `generation_config.json` (where HF keeps those of chat models); each
/// must be an id of the model's vocabulary.
fn merge_generation_config(config: &mut ModelConfig, bytes: &[u8], path: &Path) -> Result<()> {
    let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|source| Error::Json { path: path.into(), source })?;
    if !v.is_object() {
        return Err(Error::config(path, "<root>", "expected a JSON object"));
    }
    let ids = crate::config::token_ids(v.get("eos_token_id")).map_err(|problem| Error::config(path, "eos_token_id", problem))?;
    for id in ids {
        if id as usize >= config.vocab_size {
            return Err(Error::config(path, "eos_token_id", format!("id {id} is outside the vocabulary of {} (vocab_size)", config.vocab_size)));
        }
        if !config.eos_token_ids.contains(&id) {
            config.eos_token_ids.push(id);
        }
    }
    Ok(())
}
