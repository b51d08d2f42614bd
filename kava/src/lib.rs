//! kava: KaVa latent reasoning (ICLR 2026) on burn — Llama/Qwen2 decoders loaded from HF
//! directories or GGUF, greedy generation on an external KV cache, native and wasm32.
//!
//! Data flows one way: `config` → `tokenizer` → `load` → `model` → `latent` → `generate` →
//! `solve` / `api`.
//! Library code takes a burn [`Device`](burn::tensor::Device) and never names a backend.

pub mod answer;
pub mod api;
pub mod config;
// Native only: solving blocks on device reads.
#[cfg(not(target_family = "wasm"))]
pub mod demo;
pub mod device;
pub mod error;
pub mod eval;
pub mod generate;
pub mod gguf;
pub mod latent;
pub mod limits;
pub mod load;
pub mod model;
pub mod solve;
pub mod tokenizer;

pub use config::{Family, ModelConfig};
pub use device::Backend;
pub use error::{Error, Result};
#[cfg(not(target_family = "wasm"))]
pub use generate::generate;
pub use generate::{GenerateOptions, Generation};
pub use load::{open, HfBytes, Pretrained};
pub use model::{Capture, KvCache, Output, Transformer};
pub use tokenizer::Tokenizer;
pub use api::{Model, ModelBytes};
pub use solve::{Mode, Solution, Stats};
pub use latent::{LatentConfig, LatentReasoner};

/// Re-export so that users name the same burn as kava.
pub use burn;

