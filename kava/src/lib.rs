//! kava: KaVa latent reasoning (ICLR 2026) on burn — Llama/Qwen2 decoders loaded from HF
//! directories or GGUF, greedy generation on an external KV cache, native and wasm32.
//!
//! Data flows one way: `config` → `tokenizer` → `load` → `model` → `generate`.
//! Library code takes a burn [`Device`](burn::tensor::Device) and never names a backend.

pub mod answer;
pub mod config;
pub mod device;
pub mod error;
pub mod generate;
pub mod latent;
pub mod load;
pub mod model;
pub mod tokenizer;

pub use config::{Family, ModelConfig};
pub use device::Backend;
pub use error::{Error, Result};
pub use generate::{generate, GenerateOptions, Generation};
pub use load::{open, Pretrained};
pub use model::{Capture, KvCache, Output, Transformer};
pub use tokenizer::Tokenizer;

/// Re-export so that users name the same burn as kava.
pub use burn;

/// A loaded model ready to run: weights on a device plus its tokenizer.
#[derive(Debug)]
pub struct Model {
    pub transformer: Transformer,
    pub tokenizer: Tokenizer,
    /// Ids that end generation (EOS and, for chat models, `<|im_end|>`).
    pub stop_tokens: Vec<u32>,
}

impl Model {
    /// Loads an HF directory or a GGUF file onto `device`.
    pub fn load(path: impl AsRef<std::path::Path>, device: &burn::tensor::Device) -> Result<Self> {
        let Pretrained { config, mut weights, tokenizer, .. } = load::open(path)?;
        let transformer = Transformer::from_weights(&config, &mut weights, device)?;
        let mut stop_tokens = config.eos_token_ids.clone();
        for t in ["<|im_end|>", "<|endoftext|>", "</s>", "<|eot_id|>"] {
            if let Some(id) = tokenizer.token_id(t) {
                if !stop_tokens.contains(&id) {
                    stop_tokens.push(id);
                }
            }
        }
        Ok(Self { transformer, tokenizer, stop_tokens })
    }
}
