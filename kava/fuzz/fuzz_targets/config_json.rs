//! Fuzzes `config.json` (`kava::ModelConfig::from_json_bytes`): it must never panic, and what it
//! accepts must be within `kava::limits`, with finite, positive floats, and survive a round trip
//! through `to_json`.
#![no_main]

#[allow(dead_code, unused_imports)]
#[path = "../../src/config.rs"]
mod config;
#[allow(dead_code, unused_imports)]
#[path = "../../src/error.rs"]
mod error;
#[allow(dead_code, unused_imports)]
#[path = "../../src/gguf/mod.rs"]
mod gguf;
#[allow(dead_code, unused_imports)]
#[path = "../../src/limits.rs"]
mod limits;

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("config.json");
    let Ok(c) = config::ModelConfig::from_json_bytes(data, path) else { return };
    assert!(c.vocab_size >= 1 && c.vocab_size <= limits::MAX_VOCAB);
    assert!(c.num_hidden_layers >= 1 && c.num_hidden_layers <= limits::MAX_LAYERS);
    assert!(c.num_attention_heads % c.num_key_value_heads == 0 && c.head_dim % 2 == 0);
    assert!(c.max_position_embeddings >= 1 && c.max_position_embeddings <= limits::MAX_POSITIONS);
    assert!(c.rms_norm_eps.is_finite() && c.rms_norm_eps > 0.0);
    assert!(c.rope_theta.is_finite() && c.rope_theta > 1.0);
    if let Some(s) = c.rope_scaling {
        assert!(s.factor >= 1.0 && s.factor.is_finite() && s.high_freq_factor > s.low_freq_factor && s.low_freq_factor > 0.0);
    }
    assert!(c.eos_token_ids.iter().all(|&id| (id as usize) < c.vocab_size));
    let back = config::ModelConfig::from_json(&c.to_json(), path).expect("a validated config round-trips");
    assert_eq!(back, c);
    // The estimate every command makes before allocating never overflows into NaN.
    let w = limits::Workload { batch: 64, positions: c.max_position_embeddings, slots: c.max_position_embeddings, widest_pass: c.max_position_embeddings, logit_rows: 1, detail: String::new() };
    assert!(w.estimated_bytes(&c).is_finite());
});
