//! What JavaScript receives: a solution's text, parsed answer and `Stats` (method.md §2, §5) as
//! one plain object, and a model's description. Times are milliseconds.

use kava::{Model, Solution};
use serde_json::{json, Value};

/// The solution as the page shows it; the field names are those of `kava solve --json`, so the
/// end-to-end test can compare the browser with the native CLI key by key.
pub fn solution(s: &Solution, backend: &str, wall_ms: f64) -> Value {
    let st = &s.stats;
    let latent_tokens: Vec<Vec<Value>> = s
        .latent_tokens
        .iter()
        .map(|slot| slot.iter().map(|(token, logit)| json!({ "token": token, "logit": logit })).collect())
        .collect();
    json!({
        "backend": backend,
        "mode": s.mode.to_string(),
        "text": s.text,
        "answer": s.answer,
        "forward_passes": st.forward_passes,
        "prompt_tokens": st.prompt_tokens,
        "generated_tokens": st.generated_tokens,
        "kv_entries": st.kv_entries,
        "kv_bytes": st.kv_bytes,
        "prefill_ms": st.prefill_time.as_secs_f64() * 1e3,
        "latent_ms": st.latent_time.as_secs_f64() * 1e3,
        "decode_ms": st.decode_time.as_secs_f64() * 1e3,
        "total_ms": st.total_time().as_secs_f64() * 1e3,
        // From the call to the returned answer (what the user waits for).
        "wall_ms": wall_ms,
        "latent_tokens": latent_tokens,
    })
}

/// Architecture, size and latent settings of a loaded model.
pub fn model(m: &Model, url: &str, downloaded_bytes: u64, load_ms: f64, trained_latents: bool) -> Value {
    let c = &m.transformer.config;
    let latent = m.latent.as_ref().map(|r| {
        json!({
            "num_latents": r.config.num_latents,
            "num_iterations": r.config.num_iterations,
            "projection": r.projection.is_some(),
            // false: attached here (no kava.json), untrained — for timing, not for answers.
            "trained": trained_latents,
        })
    });
    json!({
        "url": url,
        "family": c.model_type.as_str(),
        "layers": c.num_hidden_layers,
        "hidden": c.hidden_size,
        "heads": c.num_attention_heads,
        "kv_heads": c.num_key_value_heads,
        "vocab": c.vocab_size,
        "parameters": parameters(c),
        "downloaded_bytes": downloaded_bytes,
        "load_ms": load_ms,
        "latent": latent,
    })
}

/// Weights of a decoder of this shape (embedding, layers, final norm, untied head).
pub fn parameters(c: &kava::ModelConfig) -> u64 {
    let (v, h, i) = (c.vocab_size as u64, c.hidden_size as u64, c.intermediate_size as u64);
    let (q, kv) = ((c.num_attention_heads * c.head_dim) as u64, (c.num_key_value_heads * c.head_dim) as u64);
    let attn = h * q + 2 * h * kv + q * h + if c.qkv_bias { q + 2 * kv } else { 0 } + if c.o_bias { h } else { 0 };
    let layer = attn + 3 * h * i + 2 * h;
    let head = if c.tie_word_embeddings { 0 } else { v * h };
    v * h + c.num_hidden_layers as u64 * layer + h + head
}

/// The largest single weight tensor, in elements (one device buffer each).
pub fn largest_tensor(c: &kava::ModelConfig) -> (&'static str, u64) {
    let h = c.hidden_size as u64;
    let q = (c.num_attention_heads * c.head_dim) as u64;
    [("embed_tokens / lm_head", c.vocab_size as u64 * h), ("mlp projections", c.intermediate_size as u64 * h), ("q_proj / o_proj", q * h)]
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .expect("three candidates")
}
