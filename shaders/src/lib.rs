//! CubeCL kernels used by kava, each next to a plain-Rust reference that is its specification.
//!
//! * [`evict`]: the redundancy–importance KV-cache eviction of method.md §4. The reference is
//!   here; the CubeCL kernel and the burn tensor-ops path are still to come (the `shaders` issue).

pub mod evict;
