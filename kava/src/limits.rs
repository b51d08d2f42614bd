//! Size limits, checked before anything is allocated: the largest sizes a model file or a flag
//! may ask for, the context a model was trained for, and the memory one call would need.
//!
//! * **Model sizes** ([`MAX_VOCAB`], [`MAX_HIDDEN`], …) bound `config.json` and GGUF metadata far
//!   beyond any released Llama or Qwen2, so that no product of them overflows and a corrupt file
//!   is refused by name instead of asking for petabytes.
//! * **Context.** A prompt plus everything generated after it must fit the model's
//!   `max_position_embeddings` (GGUF: `context_length`): past it RoPE runs on positions the
//!   model never saw and decodes garbage without complaint. Commands that answer one prompt
//!   refuse an over-long one with [`Error::Context`], naming the lengths; evaluation refuses a
//!   data set holding such a question before solving anything; training skips such examples at
//!   load time and reports how many.
//! * **Memory.** [`Workload::check`] estimates the largest tensors of a call (KV cache,
//!   attention scores, activations, logits) and refuses one that exceeds the memory budget
//!   ([`memory_budget`]) with [`Error::Memory`].
//!
//! Library code that takes prompts (`generate`, `Model::solve_batch`, `Model::perplexity`)
//! runs these checks itself; this module is the one place that knows the numbers.

use crate::config::ModelConfig;
use crate::error::{Error, Result};

/// Largest vocabulary (rows of the embedding). The largest released vocabularies are ~256 k.
pub const MAX_VOCAB: usize = 1 << 22;
/// Largest hidden size (Llama 3.1 405B: 16 384).
pub const MAX_HIDDEN: usize = 1 << 16;
/// Largest MLP width (Llama 3.1 405B: 53 248).
pub const MAX_INTERMEDIATE: usize = 1 << 20;
/// Most decoder layers (Llama 3.1 405B: 126).
pub const MAX_LAYERS: usize = 1 << 10;
/// Most attention heads (query or KV).
pub const MAX_HEADS: usize = 1 << 10;
/// Largest head dimension.
pub const MAX_HEAD_DIM: usize = 1 << 12;
/// Largest `max_position_embeddings` (16 M positions).
pub const MAX_POSITIONS: usize = 1 << 24;
/// Largest RoPE base (`rope_theta`); released models use up to ~1e8.
pub const MAX_ROPE_THETA: f64 = 1e12;

/// Most latent tokens M.
pub const MAX_LATENTS: usize = 1 << 12;
/// Most Jacobi iterations T (each is a forward pass).
pub const MAX_ITERATIONS: usize = 1 << 10;
/// Most tokens one decode may generate (the context bounds it further).
pub const MAX_NEW_TOKENS: usize = 1 << 20;
/// Most rows of one batch.
pub const MAX_BATCH: usize = 1 << 16;

/// Bytes per float of the estimates: f32, the widest dtype kava computes in.
const FLOAT_BYTES: f64 = 4.0;
const GIB: f64 = (1u64 << 30) as f64;

/// What one call will run through a model, for [`Workload::check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    /// Rows of the batch.
    pub batch: usize,
    /// Positions the longest row occupies at the end: its prompt plus every token that may be
    /// generated after it.
    pub positions: usize,
    /// Cache slots per row at the end (padding included).
    pub slots: usize,
    /// Positions fed in the widest single forward pass (the prefill).
    pub widest_pass: usize,
    /// Rows of LM-head logits computed at once (per batch row: 1 when decoding, every position
    /// for perplexity).
    pub logit_rows: usize,
    /// How the positions add up, for messages (`"12 prompt tokens + up to 500 new tokens"`).
    pub detail: String,
}

impl Workload {
    /// Estimated peak bytes: the KV cache twice (each step concatenates a new copy), the
    /// attention scores of the widest pass three times (scores, softmax, mask), the widest
    /// pass's activations eight times over, and the logits twice (their log-softmax).
    pub fn estimated_bytes(&self, config: &ModelConfig) -> f64 {
        let (b, slots, t) = (self.batch as f64, self.slots as f64, self.widest_pass as f64);
        let c = config;
        let kv = 2.0 * c.num_hidden_layers as f64 * b * c.num_key_value_heads as f64 * slots * c.head_dim as f64;
        let scores = b * c.num_attention_heads as f64 * t * slots;
        let width = (c.hidden_size.max(c.intermediate_size).max(c.num_attention_heads * c.head_dim)) as f64;
        let activations = b * t * width;
        let logits = b * self.logit_rows as f64 * c.vocab_size as f64;
        FLOAT_BYTES * (2.0 * kv + 3.0 * scores + 8.0 * activations + 2.0 * logits)
    }

    /// Refuses a workload longer than the model's context or larger than the memory budget;
    /// `what` names the call in the error (`"generate"`, `"--question"`, a data file's line).
    pub fn check(&self, config: &ModelConfig, what: &str) -> Result<()> {
        check_context(config, what, self.positions, &self.detail)?;
        let needed = self.estimated_bytes(config);
        let budget = memory_budget()?;
        if needed > budget {
            return Err(Error::Memory {
                what: what.into(),
                needed_gib: needed / GIB,
                budget_gib: budget / GIB,
                detail: format!("batch {}, {} cache slots, {} positions in one pass", self.batch, self.slots, self.widest_pass),
            });
        }
        Ok(())
    }
}

/// Refuses `positions` beyond the model's `max_position_embeddings`; `detail` says how they add
/// up.
pub fn check_context(config: &ModelConfig, what: &str, positions: usize, detail: &str) -> Result<()> {
    let limit = config.max_position_embeddings;
    if positions > limit {
        return Err(Error::Context { what: what.into(), needed: positions, limit, detail: detail.into() });
    }
    Ok(())
}

/// The memory one call may ask for, in bytes: `KAVA_MEMORY_LIMIT_GIB` if set (a positive
/// number), else the machine's physical memory (`MemTotal` of `/proc/meminfo`), else 64 GiB; in
/// a browser (wasm32) 4 GiB, the address space.
pub fn memory_budget() -> Result<f64> {
    if let Ok(v) = std::env::var("KAVA_MEMORY_LIMIT_GIB") {
        return match v.trim().parse::<f64>() {
            Ok(g) if g.is_finite() && g > 0.0 => Ok(g * GIB),
            _ => Err(Error::Input { what: format!("KAVA_MEMORY_LIMIT_GIB={v}"), problem: "expected a positive number of GiB".into() }),
        };
    }
    if cfg!(target_family = "wasm") {
        return Ok(4.0 * GIB);
    }
    Ok(physical_memory().unwrap_or(64.0 * GIB))
}

/// `MemTotal` of `/proc/meminfo` in bytes (Linux).
fn physical_memory() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    (kib > 0.0).then_some(kib * 1024.0)
}

/// Refuses a token id outside the embedding (`what` names where it came from).
pub fn check_ids(config: &ModelConfig, what: &str, rows: &[Vec<u32>]) -> Result<()> {
    let vocab = config.vocab_size;
    if let Some(&id) = rows.iter().flatten().find(|&&id| id as usize >= vocab) {
        return Err(Error::Input { what: what.into(), problem: format!("token id {id} is outside the model's vocabulary of {vocab}") });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(max_pos: usize) -> ModelConfig {
        let v = serde_json::json!({"model_type": "llama", "vocab_size": 100, "hidden_size": 8,
            "intermediate_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2,
            "num_key_value_heads": 1, "max_position_embeddings": max_pos});
        ModelConfig::from_json(&v, std::path::Path::new("config.json")).unwrap()
    }

    fn workload(positions: usize, batch: usize) -> Workload {
        Workload { batch, positions, slots: positions, widest_pass: positions, logit_rows: 1, detail: format!("{positions} prompt tokens") }
    }

    #[test]
    fn a_prompt_past_the_context_is_refused_naming_both_lengths() {
        let c = config(512);
        workload(512, 1).check(&c, "generate").unwrap();
        let e = workload(513, 1).check(&c, "generate").unwrap_err();
        assert!(matches!(e, Error::Context { needed: 513, limit: 512, .. }), "{e:?}");
        let msg = e.to_string();
        assert!(msg.contains("generate") && msg.contains("513") && msg.contains("512") && msg.contains("max_position_embeddings"), "{msg}");
    }

    #[test]
    fn an_absurd_batch_is_refused_before_allocating() {
        let c = config(1 << 20);
        let e = workload(1 << 20, 1 << 16).check(&c, "throughput").unwrap_err();
        assert!(matches!(e, Error::Memory { .. }) && e.to_string().contains("GiB"), "{e}");
    }

    #[test]
    fn ids_outside_the_vocabulary_are_named() {
        let c = config(16);
        check_ids(&c, "prompt", &[vec![1, 99]]).unwrap();
        let msg = check_ids(&c, "prompt", &[vec![1, 100]]).unwrap_err().to_string();
        assert!(msg.contains("100") && msg.contains("vocabulary of 100"), "{msg}");
    }
}
