//! Latent reasoning (method.md §1.3, §2): the special tokens and `kava.json`, the projection, and
//! the Jacobi student in `jacobi`.

pub mod jacobi;
pub mod projection;

use std::path::Path;

use serde::{Deserialize, Serialize};

pub use jacobi::{LatentReasoner, Latents, OpenLatents};
pub use projection::Projection;

use crate::error::{Error, Result};

/// The special tokens kava adds to a vocabulary.
pub const BOT: &str = "<|kava_bot|>";
pub const EOT: &str = "<|kava_eot|>";
pub const LAT: &str = "<|kava_lat|>";
pub const PAD: &str = "<|kava_pad|>";

/// The answer prompt `P` (method.md §1.3): no space before the answer, so the last token of
/// `P` predicts the first digit.
pub const ANSWER_PROMPT: &str = "The answer is:";

/// Latent-reasoning settings, stored as `kava.json` beside the weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

    pub fn from_file(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::from_json_bytes(&bytes, path)
    }

    pub fn from_json_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        let c: Self = serde_json::from_slice(bytes).map_err(|source| Error::Json { path: path.into(), source })?;
        if c.num_latents == 0 {
            return Err(Error::config(path, "num_latents", "must be positive"));
        }
        Ok(c)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("plain struct serialises")
    }
}
