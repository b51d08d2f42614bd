//! Workspace-level integration tests (one binary, so burn is linked once).

mod bad_input;
mod cache;
mod latent;
mod parity;
