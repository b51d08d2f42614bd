//! Fuzzes `kava.json` (`kava::LatentConfig::from_json_bytes`): it must never panic, and what it
//! accepts must be within `kava::limits`, with four distinct special ids, and round-trip.
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
#[path = "../../src/latent/config.rs"]
mod latent_config;
#[allow(dead_code, unused_imports)]
#[path = "../../src/limits.rs"]
mod limits;

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("kava.json");
    let Ok(c) = latent_config::LatentConfig::from_json_bytes(data, path) else { return };
    assert!((1..=limits::MAX_LATENTS).contains(&c.num_latents) && c.num_iterations <= limits::MAX_ITERATIONS);
    assert!((1..=limits::MAX_NEW_TOKENS).contains(&c.max_answer_tokens) && !c.answer_prompt.trim().is_empty());
    assert_eq!(c.special_ids().len(), 4, "distinct special ids");
    let back = latent_config::LatentConfig::from_json_bytes(c.to_json().as_bytes(), path).expect("round trip");
    assert_eq!(back, c);
});
