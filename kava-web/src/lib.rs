//! The browser API over `kava`: a wasm-bindgen cdylib that opens WebGPU (or burn's CPU backend
//! when the browser has none), downloads a kava model directory with byte-level progress and
//! solves questions in latent, CoT or No-CoT mode, streaming tokens to JavaScript. It holds no
//! model logic: loading, decoding and the statistics are `kava`'s.
//!
//! Browser rules kept here: the WebGPU device is initialised with burn's async API before any
//! tensor exists; tensors are only read with `into_data_async` (kava's decode loop); nothing
//! calls `sort`/`argsort` on the device (latent inspection uses `topk`, a device reduction).
//!
//! On the host this crate compiles to nothing; it is built for `wasm32-unknown-unknown` by trunk
//! (`www/`, `scripts/build-web.sh`).

#[cfg(target_family = "wasm")]
mod api;
#[cfg(target_family = "wasm")]
mod device;
#[cfg(target_family = "wasm")]
mod fetch;
#[cfg(target_family = "wasm")]
mod report;

#[cfg(target_family = "wasm")]
pub use api::{open_engine, Engine, WebModel};
