//! Opening a GGUF file as [`Pretrained`]: the burn-free `crate::gguf` module parses, dequantizes
//! and maps it to HF names and layout (q/k un-permuted for llama), and rebuilds its tokenizer
//! from the metadata; this glue names the file in every error.

use std::path::Path;

use super::{HostTensor, Pretrained, Weights};
use crate::config::ModelConfig;
use crate::error::{Error, Result};
use crate::gguf::{self, Gguf};
use crate::tokenizer::Tokenizer;

/// Reads and converts a `.gguf` file.
pub fn open(path: &Path) -> Result<Pretrained> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    from_bytes(&bytes, path)
}

/// Converts GGUF contents; `path` names the source in errors.
pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Pretrained> {
    let wrap = |source| Error::Gguf { path: path.into(), source };
    let g = Gguf::parse(bytes).map_err(wrap)?;
    let json = gguf::hf_config(&g, bytes).map_err(wrap)?;
    let mut config = ModelConfig::from_json(&json, path)?;
    let tok = gguf::tokenizer_from_gguf(&g).map_err(wrap)?;
    if let Some(eos) = tok.eos_id {
        if !config.eos_token_ids.contains(&eos) {
            config.eos_token_ids.push(eos);
        }
    }
    if config.bos_token_id.is_none() {
        config.bos_token_id = tok.bos_id;
    }
    let tokenizer = Tokenizer::from_inner(tok.tokenizer, path)?;
    let mut weights = Weights::new(path.into());
    for t in gguf::hf_tensors(&g, bytes).map_err(wrap)? {
        let (name, shape, data) = t.map_err(wrap)?;
        weights.insert(name, HostTensor { shape, data }, path.into());
    }
    Ok(Pretrained { config, weights, tokenizer, source: path.into() })
}
