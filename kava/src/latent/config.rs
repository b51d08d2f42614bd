//! `kava.json`: the latent-reasoning settings stored beside a model's weights, and the special
//! tokens kava adds to a vocabulary. Burn-free (fuzzed on its own, `kava/fuzz`).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::limits;

/// The special tokens kava adds to a vocabulary.
pub const BOT: &str = "<|kava_bot|>";
pub const EOT: &str = "<|kava_eot|>";
pub const LAT: &str = "<|kava_lat|>";
pub const PAD: &str = "<|kava_pad|>";

/// The answer prompt `P` (method.md §1.3): no space before the answer, so the last token of
/// `P` predicts the first digit.
pub const ANSWER_PROMPT: &str = "The answer is:";

/// Longest answer prompt accepted, in bytes.
const MAX_ANSWER_PROMPT: usize = 1024;

/// Latent-reasoning settings, stored as `kava.json` beside the weights. Unknown fields are
/// errors (a misspelt optional field would otherwise take its default unnoticed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatentConfig {
    /// M: latent tokens.
    pub num_latents: usize,
    /// T: Jacobi iterations.
    pub num_iterations: usize,
    pub bot_id: u32,
    pub eot_id: u32,
    pub lat_id: u32,
    /// The padding id used inside batch rows (never seen by attention).
    pub pad_id: u32,
    /// Whether latents pass through the projection (off = identity).
    pub use_projection: bool,
    #[serde(default = "default_answer_prompt")]
    pub answer_prompt: String,
    /// Answer tokens decoded after `<eot> P` (method.md §5: 16).
    #[serde(default = "default_max_answer_tokens")]
    pub max_answer_tokens: usize,
}

fn default_answer_prompt() -> String {
    ANSWER_PROMPT.to_string()
}

fn default_max_answer_tokens() -> usize {
    16
}

impl LatentConfig {
    /// The ids generation must never emit.
    pub fn special_ids(&self) -> Vec<u32> {
        let mut v = vec![self.bot_id, self.eot_id, self.lat_id, self.pad_id];
        v.sort_unstable();
        v.dedup();
        v
    }

    /// The four special ids with their field names and the token each must be.
    pub fn named_ids(&self) -> [(&'static str, u32, &'static str); 4] {
        [("bot_id", self.bot_id, BOT), ("eot_id", self.eot_id, EOT), ("lat_id", self.lat_id, LAT), ("pad_id", self.pad_id, PAD)]
    }

    pub fn from_file(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::from_json_bytes(&bytes, path)
    }

    /// Parses and validates `kava.json` contents; `path` names the file in errors.
    pub fn from_json_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        let c: Self = serde_json::from_slice(bytes).map_err(|source| Error::Json { path: path.into(), source })?;
        c.validate(path)?;
        Ok(c)
    }

    /// Checks what the types cannot: M, T and the answer budget within `crate::limits`, a
    /// non-empty answer prompt, four distinct special ids. (Whether the ids are the model's
    /// tokens is checked where the tokenizer is known: `Model::load`.)
    pub fn validate(&self, path: &Path) -> Result<()> {
        let bad = |field: &str, problem: String| Err(Error::config(path, field, problem));
        if !(1..=limits::MAX_LATENTS).contains(&self.num_latents) {
            return bad("num_latents", format!("{} is outside 1..={}", self.num_latents, limits::MAX_LATENTS));
        }
        if self.num_iterations > limits::MAX_ITERATIONS {
            return bad("num_iterations", format!("{} is outside 0..={}", self.num_iterations, limits::MAX_ITERATIONS));
        }
        if !(1..=limits::MAX_NEW_TOKENS).contains(&self.max_answer_tokens) {
            return bad("max_answer_tokens", format!("{} is outside 1..={}", self.max_answer_tokens, limits::MAX_NEW_TOKENS));
        }
        if self.answer_prompt.trim().is_empty() || self.answer_prompt.len() > MAX_ANSWER_PROMPT {
            return bad("answer_prompt", format!("must be non-empty text of at most {MAX_ANSWER_PROMPT} bytes"));
        }
        let ids = self.named_ids();
        for (i, (field, id, _)) in ids.iter().enumerate() {
            if let Some((other, _, _)) = ids[..i].iter().find(|(_, o, _)| o == id) {
                return bad(field, format!("id {id} is also {other}: the four special ids must differ"));
            }
        }
        Ok(())
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("plain struct serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<LatentConfig> {
        LatentConfig::from_json_bytes(text.as_bytes(), Path::new("kava.json"))
    }

    const OK: &str = r#"{"num_latents": 4, "num_iterations": 2, "bot_id": 10, "eot_id": 11, "lat_id": 12, "pad_id": 13, "use_projection": false}"#;

    #[test]
    fn a_valid_file_parses_with_defaults() {
        let c = parse(OK).unwrap();
        assert_eq!((c.max_answer_tokens, c.answer_prompt.as_str()), (16, ANSWER_PROMPT));
        assert_eq!(parse(&c.to_json()).unwrap(), c);
    }

    #[test]
    fn out_of_range_fields_are_named() {
        for (from, to, field) in [
            ("\"num_latents\": 4", "\"num_latents\": 0", "num_latents"),
            ("\"num_latents\": 4", "\"num_latents\": 100000", "num_latents"),
            ("\"num_iterations\": 2", "\"num_iterations\": 5000", "num_iterations"),
            ("\"pad_id\": 13", "\"pad_id\": 10", "pad_id"),
            ("\"use_projection\": false", "\"use_projection\": false, \"max_answer_tokens\": 0", "max_answer_tokens"),
            ("\"use_projection\": false", "\"use_projection\": false, \"answer_prompt\": \" \"", "answer_prompt"),
        ] {
            let msg = parse(&OK.replace(from, to)).unwrap_err().to_string();
            assert!(msg.contains("kava.json") && msg.contains(field), "{to}: {msg}");
        }
        let msg = parse(&OK.replace("\"pad_id\"", "\"pad_idd\": 1, \"pad_id\"")).unwrap_err().to_string();
        assert!(msg.contains("kava.json") && msg.contains("pad_idd"), "{msg}");
    }
}
