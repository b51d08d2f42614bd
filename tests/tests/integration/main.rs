//! Workspace-level integration tests (one binary, so burn is linked once).

mod bad_input;
mod cache;
mod demo;
mod evict;
mod fused;
mod gguf;
mod gguf_crosscheck;
mod latent;
mod lora;
mod parity;
mod precision;
mod real_models;
mod robustness;
mod train_loop;
mod training;
