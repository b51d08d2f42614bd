//! Latent reasoning (method.md §1.3, §2): the special tokens, `kava.json` (`config`), the
//! projection, and the Jacobi student in `jacobi`.

pub mod config;
pub mod jacobi;
pub mod projection;

pub use config::{LatentConfig, ANSWER_PROMPT, BOT, EOT, LAT, PAD};
pub use jacobi::{LatentReasoner, Latents, OpenLatents};
pub use projection::Projection;
