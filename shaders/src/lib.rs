//! CubeCL kernels used by kava (the redundancy–importance KV eviction of method.md §4), each next
//! to a plain-Rust reference. Not written yet: tracked by the `shaders` issue.
