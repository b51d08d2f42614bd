//! The one error type of `kava`. Every variant names the file and the key, tensor or field at
//! fault, so a user can act on it without a debugger. Tensor math itself stays infallible:
//! everything that can be wrong with a model is checked at load time.

use std::path::PathBuf;

/// Errors from loading, tokenizing and configuring models.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A required file is missing from a model directory.
    #[error("{path}: missing ({what})")]
    MissingFile { path: PathBuf, what: &'static str },
    /// A JSON file did not parse.
    #[error("{path}: invalid JSON: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// A configuration field is missing, of the wrong type or out of range.
    #[error("{path}: field `{field}`: {problem}")]
    Config { path: PathBuf, field: String, problem: String },
    /// A safetensors file is truncated or malformed.
    #[error("{path}: not a valid safetensors file: {problem}")]
    Safetensors { path: PathBuf, problem: String },
    /// A GGUF file is truncated, malformed or of an unsupported kind.
    #[error("{path}: {source}")]
    Gguf {
        path: PathBuf,
        #[source]
        source: crate::gguf::GgufError,
    },
    /// A tensor the model needs is absent.
    #[error("{path}: missing tensor `{tensor}`")]
    MissingTensor { path: PathBuf, tensor: String },
    /// A tensor has the wrong shape.
    #[error("{path}: tensor `{tensor}` has shape {actual:?}, expected {expected:?}")]
    TensorShape { path: PathBuf, tensor: String, expected: Vec<usize>, actual: Vec<usize> },
    /// A tensor is stored in a dtype kava cannot load.
    #[error("{path}: tensor `{tensor}` has unsupported dtype {dtype}")]
    TensorDtype { path: PathBuf, tensor: String, dtype: String },
    /// A tensor holds NaN or infinite values.
    #[error("{path}: tensor `{tensor}` holds non-finite values")]
    NonFinite { path: PathBuf, tensor: String },
    /// The tokenizer could not be built or used.
    #[error("{path}: tokenizer: {problem}")]
    Tokenizer { path: PathBuf, problem: String },
    /// An input (prompt, question, option) is unusable.
    #[error("invalid input `{what}`: {problem}")]
    Input { what: String, problem: String },
    /// The requested backend was not compiled in or has no device here.
    #[error("backend `{backend}` is not available: {problem}")]
    Backend { backend: String, problem: String },
    /// A prompt plus what may be generated after it is longer than the model's context.
    #[error("{what}: {detail} = {needed} positions, more than the model's {limit} (max_position_embeddings)")]
    Context { what: String, needed: usize, limit: usize, detail: String },
    /// A call would need more memory than the budget (`kava::limits::memory_budget`).
    #[error("{what}: needs about {needed_gib:.1} GiB ({detail}), more than the {budget_gib:.1} GiB allowed here (set KAVA_MEMORY_LIMIT_GIB to change it)")]
    Memory { what: String, needed_gib: f64, budget_gib: f64, detail: String },
    /// Files of one model disagree: a tokenizer id outside the model's vocabulary, a
    /// `kava.json` id that is not its token. `path` is the file at fault.
    #[error("{path}: {problem}")]
    Inconsistent { path: PathBuf, problem: String },
    /// An output directory holds files that writing would replace.
    #[error("{path}: {problem}")]
    OutputExists { path: PathBuf, problem: String },
    /// Reading a tensor back from the device failed.
    #[error("reading `{what}` back from the device failed: {problem}")]
    Readback { what: &'static str, problem: String },
}

/// `Result` with kava's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    pub(crate) fn config(path: impl Into<PathBuf>, field: &str, problem: impl Into<String>) -> Self {
        Error::Config { path: path.into(), field: field.to_string(), problem: problem.into() }
    }
}
