//! GGUF support without any burn dependency: parse a GGUF v2/v3 file held in memory, dequantize
//! its tensors to f32, build its tokenizer, and map a llama / qwen2 model to Hugging Face layout.
//!
//! Everything works on `&[u8]` (no file system access) so that the same code runs in wasm32;
//! reading the file is the caller's job. Nothing here panics on malformed input: every count,
//! length and offset read from the file is checked against the file's length first.

pub mod dequant;
pub mod hf;
mod kquants;
pub mod metadata;
pub mod reader;
pub mod rope;
pub mod tokenizer;
pub mod writer;

#[cfg(test)]
mod real_model_tests;

pub use dequant::{dequantize, GgmlType};
pub use hf::{hf_config, hf_tensors, permute_rows, to_hf, unpermute_rows, HfModel, HfTensor};
pub use metadata::{Array, Value};
pub use reader::{Gguf, TensorInfo};
pub use tokenizer::{tokenizer_from_gguf, GgufTokenizer};
pub use writer::GgufWriter;

/// Result alias for this module.
pub type Result<T> = std::result::Result<T, GgufError>;

/// What can go wrong reading a GGUF file. The file name is not included: the caller wraps this
/// error with it.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    #[error(
        "truncated while reading {what} at byte {offset}: needs {needed} bytes, file has {len}"
    )]
    Truncated {
        what: String,
        offset: u64,
        needed: u64,
        len: u64,
    },
    #[error("not a GGUF file: magic {found:02x?}, expected \"GGUF\"")]
    BadMagic { found: [u8; 4] },
    #[error("unsupported GGUF version {0} (supported: 2 and 3, little-endian)")]
    UnsupportedVersion(u32),
    #[error("implausible {what} count {count}: the file cannot hold that many")]
    BadCount { what: String, count: u64 },
    #[error("unknown metadata value type {type_id} for {what} at byte {offset}")]
    BadValueType {
        what: String,
        type_id: u32,
        offset: u64,
    },
    #[error("{what} at byte {offset} is not valid UTF-8")]
    InvalidUtf8 { what: String, offset: u64 },
    #[error("metadata key {key:?} nests arrays deeper than {max_depth} levels")]
    NestingTooDeep { key: String, max_depth: usize },
    #[error("metadata key {key:?} appears twice")]
    DuplicateKey { key: String },
    #[error("tensor {tensor:?} appears twice")]
    DuplicateTensor { tensor: String },
    #[error("bad general.alignment {alignment}: must be a non-zero power of two")]
    BadAlignment { alignment: u64 },
    #[error("missing metadata key {key:?}")]
    MissingKey { key: String },
    #[error("metadata key {key:?} has type {found}, expected {expected}")]
    WrongType {
        key: String,
        expected: &'static str,
        found: &'static str,
    },
    #[error("metadata key {key:?} has a bad value: {reason}")]
    BadValue { key: String, reason: String },
    #[error("missing tensor {tensor:?}")]
    MissingTensor { tensor: String },
    #[error("tensor {tensor:?} has unknown ggml type id {type_id}")]
    UnknownType { tensor: String, type_id: u32 },
    #[error("tensor {tensor:?} has ggml type {type_name}, which cannot be dequantized yet")]
    UnsupportedType {
        tensor: String,
        type_name: &'static str,
    },
    #[error(
        "tensor {tensor:?} data offset {offset} is not a multiple of the alignment {alignment}"
    )]
    Misaligned {
        tensor: String,
        offset: u64,
        alignment: u64,
    },
    #[error(
        "tensor {tensor:?} data [{offset}, {offset}+{size}) lies outside the file of {len} bytes"
    )]
    TensorOutOfBounds {
        tensor: String,
        offset: u64,
        size: u64,
        len: u64,
    },
    #[error("tensor {tensor:?} has a bad shape {shape:?}: {reason}")]
    BadShape {
        tensor: String,
        shape: Vec<u64>,
        reason: String,
    },
    #[error("tensor {tensor:?} has no Hugging Face equivalent")]
    UnexpectedTensor { tensor: String },
    #[error("cannot build the tokenizer: {reason}")]
    Tokenizer { reason: String },
    #[error("unsupported architecture {0:?} (supported: llama, qwen2)")]
    UnsupportedArch(String),
}
