//! Training configuration: one TOML file (or a named preset) with every knob of method.md §3,
//! each field overridable from the command line as `section.field=value`.
//!
//! Presets: one per Table-6 row of method.md §3.2 (`llama3.2-1b-aug`, `llama3.2-1b-nl`,
//! `qwen2.5-0.5b-aug`, `qwen2.5-0.5b-nl`, `llama3.2-3b-aug`, `llama3.2-3b-nl`) and for the two
//! small models we actually have (`smollm2-135m-aug`, `qwen2.5-coder-0.5b-aug`, which take the
//! hyper-parameters of the closest paper row). The training method (`cot`, `nocot`, `pause`,
//! `codi`, `pccot`, `kava`) is a field; [`TrainConfig::with_method`] applies its §3.1 preset.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::objective::Rho;

/// The six methods of method.md §3.1 — presets of one training loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Teacher CE only: full-CoT SFT, the accuracy upper bound.
    Cot,
    /// CE on `Q P A EOS` only: the lower bound.
    Nocot,
    /// Student with T = 0, CE_student only.
    Pause,
    /// Student with M = 6, T = M (the sequential chain), CE_s + CE_t + α₁·L_CODI.
    Codi,
    /// Student M = 24, T = 3, CE_s + CE_t + α₁·L_CODI.
    Pccot,
    /// `pccot` + α₂·L_KV against the evicted teacher cache.
    #[default]
    Kava,
}

impl Method {
    pub const ALL: [Method; 6] = [Method::Cot, Method::Nocot, Method::Pause, Method::Codi, Method::Pccot, Method::Kava];

    pub fn name(self) -> &'static str {
        match self {
            Method::Cot => "cot",
            Method::Nocot => "nocot",
            Method::Pause => "pause",
            Method::Codi => "codi",
            Method::Pccot => "pccot",
            Method::Kava => "kava",
        }
    }
}

/// Trace style of the teacher's chain of thought (method.md §1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Trace {
    /// Equations only (`<<3*5=15>>`), GSM8k-Aug style.
    #[default]
    Aug,
    /// Natural-language steps.
    Nl,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// GSM8k JSONL or GSM8k-Aug text.
    pub train: PathBuf,
    /// Held-out file for evaluation during training (its questions are excluded from training).
    pub valid: Option<PathBuf>,
    pub trace: Trace,
    /// Keep the final (answer-computing) step in teacher traces (method.md §1.2; off by default).
    pub keep_last_step: bool,
    /// Use at most this many training examples (0: all).
    pub limit: usize,
    /// Pad every batch's sequences to a multiple of this many tokens (1: to the longest only).
    /// Padding is masked, so the losses are unchanged; a GPU backend then meets a handful of
    /// shapes instead of one per batch length and compiles/tunes its kernels once.
    pub pad_multiple: usize,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self { train: PathBuf::from("../shared/data/gsm8k/train.jsonl"), valid: None, trace: Trace::Aug, keep_last_step: false, limit: 0, pad_multiple: 16 }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LatentSection {
    /// M.
    pub num_latents: usize,
    /// T.
    pub num_iterations: usize,
    pub use_projection: bool,
    /// The initial gain of the projection's LayerNorm, i.e. the scale the continuous thoughts
    /// enter the model at (a fresh projection only; a checkpoint keeps its trained one).
    pub projection_scale: ProjectionScale,
    /// Training runs Jacobi iteration T and the answer as two passes, as inference does,
    /// instead of one pass over `zᵀ⁻¹` followed by the answer tokens (the same losses and
    /// gradients up to rounding, one pass fewer per step). The reference route, for tests.
    pub separate_answer_pass: bool,
    /// Training runs the student's init pass as extra rows of the teacher's pass (one batch
    /// `[2b, W]`, rows independent under their masks: the same losses and gradients up to
    /// rounding) — one pass fewer per step (kava: 6 411–6 435 → 5 443 launches on wgpu), but the
    /// student rows are padded to the teacher's width: on lavapipe, compute-bound, the demo step
    /// took 12 % longer and 24 % more memory. On an H200 (demo model, batch 64, one 20-step
    /// measurement with autotuning still running) it was 8 % faster, 0.516 → 0.473 s/step
    /// (the record is in git history): worth setting on CUDA; off by
    /// default, as the CPU and lavapipe pay for the padding and one short run is thin evidence.
    pub merge_init_pass: bool,
}

impl Default for LatentSection {
    fn default() -> Self {
        Self { num_latents: 24, num_iterations: 3, use_projection: true, projection_scale: ProjectionScale::Unit, separate_answer_pass: false, merge_init_pass: false }
    }
}

/// How a fresh projection's LayerNorm gain is initialised (`latent.projection_scale`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ProjectionScale {
    /// Gain 1 (PyTorch's LayerNorm default, as in the CODI and PCCoT code): every latent has
    /// RMS ≈ 1 per channel, norm √d. The paper's setting (pretrained LLMs, whose residual
    /// streams grow far beyond their embeddings within a layer or two).
    #[default]
    Unit,
    /// Gain = the RMS of the token-embedding entries: the latents enter at the scale of the
    /// token embeddings the model was trained on. For a small model trained from scratch, whose
    /// embeddings have norm ~1 against √d for gain 1 (the demo model: 16×), so that the layers
    /// can change a latent as much as a token.
    Embedding,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LossConfig {
    /// α₁, weight of L_CODI.
    pub alpha_codi: f32,
    /// α₂, weight of L_KV.
    pub alpha_kv: f32,
    /// ρ of L_KV.
    pub kv_rho: Rho,
    /// σ_ℓ of L_CODI per layer (else one std over all layers).
    pub layerwise_std: bool,
    /// σ_ℓ of L_KV per layer from the teacher target (else 1).
    pub kv_layerwise_std: bool,
    /// L_KV compares keys before the rotary embedding instead of the cache's own post-RoPE keys
    /// (method.md §3; off by default): the student's latent keys and the teacher's keys at the
    /// positions eviction kept. Eviction still scores with the post-RoPE keys and queries, and
    /// values are the same either way.
    pub kv_pre_rope: bool,
    /// L_KV on the K/V of **every** Jacobi iteration 1..T, averaged, instead of iteration T's
    /// only (method.md §3; off by default — an ablation beyond the paper): the same compressed
    /// teacher cache is the target of each iteration, so the init pass's latents `z⁰` (read by
    /// iteration 1) are asked for the trace too. Needs the merged answer pass (it is a no-op at
    /// T ≤ 1).
    pub kv_every_iteration: bool,
}

impl Default for LossConfig {
    fn default() -> Self {
        Self {
            alpha_codi: 10.0,
            alpha_kv: 1.0,
            kv_rho: Rho::SmoothL1,
            layerwise_std: true,
            kv_layerwise_std: true,
            kv_pre_rope: false,
            kv_every_iteration: false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum EvictMethod {
    /// Redundancy–importance mix (method.md §4).
    #[default]
    Mix,
    /// Keep the first M CoT entries.
    Crop,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvictSection {
    pub method: EvictMethod,
    /// λ of `λ·I + (1−λ)·R`.
    pub lambda: f32,
    /// GQA pooling of the importance logits: `max` or `mean`.
    pub pool: String,
    /// Slot order: `position` or `score`.
    pub order: String,
}

impl Default for EvictSection {
    fn default() -> Self {
        Self { method: EvictMethod::Mix, lambda: 0.1, pool: "max".into(), order: "position".into() }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoraConfig {
    pub rank: usize,
    pub alpha: f32,
    pub dropout: f64,
    /// Train every weight instead of adapters.
    pub full_finetune: bool,
}

impl Default for LoraConfig {
    fn default() -> Self {
        Self { rank: 128, alpha: 32.0, dropout: 0.1, full_finetune: false }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimConfig {
    pub lr: f64,
    pub weight_decay: f64,
    /// Fraction of the steps spent warming up (then cosine decay to 0).
    pub warmup_frac: f64,
    pub epochs: usize,
    /// Stop after this many optimizer steps (0: `epochs` decide); the schedule spans them.
    pub max_steps: usize,
    /// Examples per forward/backward.
    pub micro_batch: usize,
    /// Examples per optimizer step (gradient accumulation over micro-batches).
    pub effective_batch: usize,
    /// Global-norm gradient clipping (0: off).
    pub grad_clip: f64,
    pub seed: u64,
    /// Compute dtype of the matrix products: `f32`, or `bf16` (the paper's; operands cast to
    /// bf16 inside every GEMM, everything else and the weights f32 — see
    /// `kava::model::precision`). bf16 needs the cuda or cpu backend (WGSL has no bf16).
    pub dtype: String,
    /// After every step, hand the allocator's unused pages back to the device (burn's
    /// `memory_cleanup`): for a GPU shared with other processes, whose pools otherwise keep what
    /// the step's peak needed (and more). Costs allocations on the next step.
    pub release_memory: bool,
}

impl Default for OptimConfig {
    fn default() -> Self {
        Self {
            lr: 8e-4,
            weight_decay: 0.1,
            warmup_frac: 0.03,
            epochs: 10,
            max_steps: 0,
            micro_batch: 16,
            effective_batch: 128,
            grad_clip: 2.0,
            seed: 42,
            dtype: "f32".into(),
            release_memory: false,
        }
    }
}

impl OptimConfig {
    /// The dtype of the model's matrix products (`None`: f32, the weights' own).
    pub fn compute_dtype(&self) -> Result<Option<burn::tensor::FloatDType>, String> {
        match self.dtype.as_str() {
            "f32" => Ok(None),
            "bf16" => Ok(Some(burn::tensor::FloatDType::BF16)),
            other => Err(format!("`{other}`: expected f32 or bf16")),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckpointConfig {
    pub dir: PathBuf,
    /// Write a checkpoint every this many optimizer steps (0: only at the end).
    pub every: usize,
    /// Evaluate on `data.valid` every this many steps (0: only at the end).
    pub eval_every: usize,
    /// Questions of `data.valid` used by each evaluation (0: all).
    pub eval_limit: usize,
    /// CoT decoding cap of evaluations in CoT mode.
    pub eval_max_cot_tokens: usize,
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        Self { dir: PathBuf::from("runs/kava"), every: 200, eval_every: 0, eval_limit: 200, eval_max_cot_tokens: 256 }
    }
}

/// Everything a training run needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    pub method: Method,
    /// HF directory or GGUF file of the base model.
    pub model: PathBuf,
    pub data: DataConfig,
    pub latent: LatentSection,
    pub loss: LossConfig,
    pub evict: EvictSection,
    pub lora: LoraConfig,
    pub optim: OptimConfig,
    pub checkpoint: CheckpointConfig,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            method: Method::Kava,
            model: PathBuf::from("models/SmolLM2-135M-Instruct.Q4_1.gguf"),
            data: DataConfig::default(),
            latent: LatentSection::default(),
            loss: LossConfig::default(),
            evict: EvictSection::default(),
            lora: LoraConfig::default(),
            optim: OptimConfig::default(),
            checkpoint: CheckpointConfig::default(),
        }
    }
}

/// A configuration problem, naming the file (or override) and the field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{origin}: {message}")]
    Parse { origin: String, message: String },
    #[error("{origin}: `{field}` {problem}")]
    Invalid { origin: String, field: String, problem: String },
    #[error("unknown preset `{0}` (known: {known})", known = PRESETS.join(", "))]
    UnknownPreset(String),
}

/// The named presets (see the module docs).
pub const PRESETS: [&str; 8] = [
    "llama3.2-1b-aug",
    "llama3.2-1b-nl",
    "qwen2.5-0.5b-aug",
    "qwen2.5-0.5b-nl",
    "llama3.2-3b-aug",
    "llama3.2-3b-nl",
    "smollm2-135m-aug",
    "qwen2.5-coder-0.5b-aug",
];

/// One Table-6 row: α₁, α₂, ρ, layer-wise std, λ, projection, lr, wd, epochs.
#[allow(clippy::too_many_arguments)]
fn row(cfg: &mut TrainConfig, a1: f32, a2: f32, rho: Rho, layerwise: bool, lambda: f32, proj: bool, lr: f64, wd: f64, epochs: usize) {
    cfg.loss.alpha_codi = a1;
    cfg.loss.alpha_kv = a2;
    cfg.loss.kv_rho = rho;
    cfg.loss.layerwise_std = layerwise;
    cfg.loss.kv_layerwise_std = layerwise;
    cfg.evict.lambda = lambda;
    cfg.latent.use_projection = proj;
    cfg.optim.lr = lr;
    cfg.optim.weight_decay = wd;
    cfg.optim.epochs = epochs;
}

impl TrainConfig {
    /// A named preset (method `kava`; change it with [`TrainConfig::with_method`]).
    pub fn preset(name: &str) -> Result<Self, ConfigError> {
        let mut c = TrainConfig::default();
        let (model, trace) = match name {
            "llama3.2-1b-aug" => ("models/Llama-3.2-1B-Instruct", Trace::Aug),
            "llama3.2-1b-nl" => ("models/Llama-3.2-1B-Instruct", Trace::Nl),
            "qwen2.5-0.5b-aug" => ("models/Qwen2.5-0.5B-Instruct", Trace::Aug),
            "qwen2.5-0.5b-nl" => ("models/Qwen2.5-0.5B-Instruct", Trace::Nl),
            "llama3.2-3b-aug" => ("models/Llama-3.2-3B-Instruct", Trace::Aug),
            "llama3.2-3b-nl" => ("models/Llama-3.2-3B-Instruct", Trace::Nl),
            "smollm2-135m-aug" => ("models/SmolLM2-135M-Instruct.Q4_1.gguf", Trace::Aug),
            "qwen2.5-coder-0.5b-aug" => ("models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", Trace::Aug),
            other => return Err(ConfigError::UnknownPreset(other.to_string())),
        };
        c.model = model.into();
        c.data.trace = trace;
        match name {
            "llama3.2-1b-aug" | "smollm2-135m-aug" => row(&mut c, 10.0, 1.0, Rho::SmoothL1, true, 0.1, true, 8e-4, 0.1, 10),
            "llama3.2-1b-nl" => row(&mut c, 10.0, 1.0, Rho::Mse, true, 0.1, true, 8e-4, 0.1, 10),
            "qwen2.5-0.5b-aug" | "qwen2.5-coder-0.5b-aug" => row(&mut c, 10.0, 1.0, Rho::Mse, false, 0.1, true, 5e-4, 0.01, 10),
            "qwen2.5-0.5b-nl" => row(&mut c, 10.0, 1.0, Rho::Mse, true, 0.1, true, 8e-4, 0.1, 10),
            "llama3.2-3b-aug" => row(&mut c, 20.0, 2.0, Rho::SmoothL1, false, 0.1, true, 2e-4, 0.1, 5),
            _ => row(&mut c, 20.0, 2.0, Rho::SmoothL1, false, 0.0, false, 2e-4, 0.1, 5), // llama3.2-3b-nl
        }
        Ok(c)
    }

    /// Applies a method's §3.1 preset: the student's M and T and which loss terms are on.
    pub fn with_method(mut self, method: Method) -> Self {
        self.method = method;
        match method {
            Method::Cot | Method::Nocot => {
                self.loss.alpha_codi = 0.0;
                self.loss.alpha_kv = 0.0;
            }
            Method::Pause => {
                self.latent.num_iterations = 0;
                self.loss.alpha_codi = 0.0;
                self.loss.alpha_kv = 0.0;
            }
            Method::Codi => {
                self.latent.num_latents = 6;
                self.latent.num_iterations = 6;
                self.loss.alpha_kv = 0.0;
            }
            Method::Pccot => {
                self.latent.num_latents = 24;
                self.latent.num_iterations = 3;
                self.loss.alpha_kv = 0.0;
            }
            Method::Kava => {}
        }
        self
    }

    /// Parses a TOML configuration; `origin` names it in errors. Missing fields take their
    /// defaults; unknown fields are errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let cfg: Self = toml::from_str(text).map_err(|e| ConfigError::Parse { origin: origin.into(), message: e.to_string() })?;
        cfg.validate(origin)?;
        Ok(cfg)
    }

    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io { path: path.into(), source })?;
        Self::from_toml(&text, &path.display().to_string())
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a TrainConfig always serialises")
    }

    /// Applies `section.field=value` overrides (values in TOML syntax; bare words are taken as
    /// strings), then re-validates.
    pub fn with_overrides<S: AsRef<str>>(self, overrides: &[S]) -> Result<Self, ConfigError> {
        let mut doc = toml::Table::try_from(&self).expect("a TrainConfig always serialises");
        for o in overrides {
            let o = o.as_ref();
            let origin = format!("override `{o}`");
            let (key, raw) = o.split_once('=').ok_or_else(|| ConfigError::Parse { origin: origin.clone(), message: "expected section.field=value".into() })?;
            let (key, raw) = (key.trim(), raw.trim());
            let value: toml::Value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
                .ok()
                .and_then(|mut t| t.remove("v"))
                .unwrap_or_else(|| toml::Value::String(raw.to_string()));
            let mut parts: Vec<&str> = key.split('.').collect();
            let last = parts.pop().filter(|s| !s.is_empty()).ok_or_else(|| ConfigError::Parse { origin: origin.clone(), message: "empty key".into() })?;
            let mut table = &mut doc;
            for p in parts {
                table = match table.get_mut(p) {
                    Some(toml::Value::Table(t)) => t,
                    _ => return Err(ConfigError::Invalid { origin, field: key.into(), problem: format!("has no section `{p}`") }),
                };
            }
            if !table.contains_key(last) && !(last == "valid" && key.starts_with("data.")) {
                return Err(ConfigError::Invalid { origin, field: key.into(), problem: "is not a configuration field".into() });
            }
            table.insert(last.to_string(), value);
            // Deserialise after each override, so that a value of the wrong type is reported
            // with the override that brought it.
            doc.clone().try_into::<Self>().map_err(|e: toml::de::Error| ConfigError::Parse { origin: origin.clone(), message: format!("`{key}`: {}", e.message()) })?;
        }
        let cfg: Self = doc.try_into().map_err(|e: toml::de::Error| ConfigError::Parse { origin: "overrides".into(), message: e.to_string() })?;
        cfg.validate("overrides")?;
        Ok(cfg)
    }

    /// Checks values the types cannot: every size within the limits kava and the loop can run
    /// (`kava::limits`), every float finite and in its range, and the combinations the methods
    /// need. Errors name the field (`optim.lr`, …) and the value.
    pub fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        use kava::limits::{MAX_BATCH, MAX_HIDDEN, MAX_ITERATIONS, MAX_LATENTS, MAX_NEW_TOKENS};
        let bad = |field: &str, problem: String| Err(ConfigError::Invalid { origin: origin.into(), field: field.into(), problem });
        // Sizes: (field, value, smallest, largest).
        let uses_latents = matches!(self.method, Method::Pause | Method::Codi | Method::Pccot | Method::Kava);
        let sizes = [
            ("latent.num_latents", self.latent.num_latents, usize::from(uses_latents), MAX_LATENTS),
            ("latent.num_iterations", self.latent.num_iterations, 0, MAX_ITERATIONS),
            ("data.pad_multiple", self.data.pad_multiple, 1, 4096),
            ("lora.rank", self.lora.rank, usize::from(!self.lora.full_finetune), MAX_HIDDEN),
            ("optim.epochs", self.optim.epochs, usize::from(self.optim.max_steps == 0), 100_000),
            ("optim.max_steps", self.optim.max_steps, 0, 1 << 30),
            ("optim.micro_batch", self.optim.micro_batch, 1, MAX_BATCH),
            ("optim.effective_batch", self.optim.effective_batch, 1, 1 << 24),
            ("checkpoint.eval_max_cot_tokens", self.checkpoint.eval_max_cot_tokens, 1, MAX_NEW_TOKENS),
        ];
        for (field, n, min, max) in sizes {
            if !(min..=max).contains(&n) {
                let why = match field {
                    "latent.num_latents" if n == 0 => " (a latent method needs latents)".to_string(),
                    "lora.rank" if n == 0 => " (or set lora.full_finetune = true)".to_string(),
                    "optim.epochs" if n == 0 => " (or set optim.max_steps)".to_string(),
                    _ => String::new(),
                };
                return bad(field, format!("{n} is outside {min}..={max}{why}"));
            }
        }
        // Floats: (field, value, range as text, test).
        let in_unit = |x: f64| (0.0..=1.0).contains(&x);
        let floats: [(&str, f64, &str, &dyn Fn(f64) -> bool); 9] = [
            ("optim.lr", self.optim.lr, "(0, 1]", &|x| x > 0.0 && x <= 1.0),
            ("optim.weight_decay", self.optim.weight_decay, "[0, 1]", &in_unit),
            ("optim.warmup_frac", self.optim.warmup_frac, "[0, 1)", &|x| (0.0..1.0).contains(&x)),
            ("optim.grad_clip", self.optim.grad_clip, "[0, 1e6] (0: off)", &|x| (0.0..=1e6).contains(&x)),
            ("lora.alpha", self.lora.alpha as f64, "(0, 1e6]", &|x| x > 0.0 && x <= 1e6),
            ("lora.dropout", self.lora.dropout, "[0, 1)", &|x| (0.0..1.0).contains(&x)),
            ("loss.alpha_codi", self.loss.alpha_codi as f64, "[0, 1e6]", &|x| (0.0..=1e6).contains(&x)),
            ("loss.alpha_kv", self.loss.alpha_kv as f64, "[0, 1e6]", &|x| (0.0..=1e6).contains(&x)),
            ("evict.lambda", self.evict.lambda as f64, "[0, 1]", &in_unit),
        ];
        for (field, x, range, ok) in floats {
            // NaN fails every comparison, so `ok` refuses it along with the infinities.
            if !(x.is_finite() && ok(x)) {
                return bad(field, format!("{x} is outside {range}"));
            }
        }
        if self.method == Method::Codi && self.latent.num_iterations != self.latent.num_latents {
            return bad("latent.num_iterations", format!("must equal num_latents ({}) for codi", self.latent.num_latents));
        }
        if self.loss.kv_every_iteration && self.latent.separate_answer_pass {
            return bad("loss.kv_every_iteration", "needs the merged answer pass (latent.separate_answer_pass = false)".into());
        }
        if !["max", "mean"].contains(&self.evict.pool.as_str()) {
            return bad("evict.pool", format!("`{}`: expected max or mean", self.evict.pool));
        }
        if !["position", "score"].contains(&self.evict.order.as_str()) {
            return bad("evict.order", format!("`{}`: expected position or score", self.evict.order));
        }
        if let Err(problem) = self.optim.compute_dtype() {
            return bad("optim.dtype", problem);
        }
        if self.optim.effective_batch % self.optim.micro_batch != 0 {
            return bad("optim.effective_batch", format!("{} must be a positive multiple of micro_batch {}", self.optim.effective_batch, self.optim.micro_batch));
        }
        if self.model.as_os_str().is_empty() {
            return bad("model", "is empty".into());
        }
        if self.data.train.as_os_str().is_empty() {
            return bad("data.train", "is empty".into());
        }
        if self.checkpoint.dir.as_os_str().is_empty() {
            return bad("checkpoint.dir", "is empty".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_is_valid_and_round_trips_through_toml() {
        for name in PRESETS {
            for method in Method::ALL {
                let cfg = TrainConfig::preset(name).unwrap().with_method(method);
                cfg.validate(name).unwrap_or_else(|e| panic!("{name}/{}: {e}", method.name()));
                let back = TrainConfig::from_toml(&cfg.to_toml(), name).unwrap();
                assert_eq!(back, cfg, "{name}/{}", method.name());
            }
        }
    }

    #[test]
    fn table6_rows_and_method_presets() {
        let q = TrainConfig::preset("qwen2.5-0.5b-aug").unwrap();
        assert_eq!((q.loss.kv_rho, q.loss.layerwise_std, q.optim.lr, q.optim.weight_decay), (Rho::Mse, false, 5e-4, 0.01));
        let l3 = TrainConfig::preset("llama3.2-3b-nl").unwrap();
        assert_eq!((l3.loss.alpha_codi, l3.loss.alpha_kv, l3.evict.lambda, l3.latent.use_projection, l3.optim.epochs), (20.0, 2.0, 0.0, false, 5));
        let codi = TrainConfig::preset("smollm2-135m-aug").unwrap().with_method(Method::Codi);
        assert_eq!((codi.latent.num_latents, codi.latent.num_iterations, codi.loss.alpha_kv), (6, 6, 0.0));
        let pause = TrainConfig::default().with_method(Method::Pause);
        assert_eq!((pause.latent.num_iterations, pause.loss.alpha_codi), (0, 0.0));
        assert!(matches!(TrainConfig::preset("gpt-5"), Err(ConfigError::UnknownPreset(_))));
    }

    #[test]
    fn overrides_set_any_field_and_name_bad_ones() {
        let cfg = TrainConfig::default()
            .with_overrides(&["optim.lr=1e-4", "latent.num_iterations=2", "loss.kv_rho=\"mse\"", "data.valid=../shared/data/gsm8k/test.jsonl", "method=pccot"])
            .unwrap();
        assert_eq!((cfg.optim.lr, cfg.latent.num_iterations, cfg.loss.kv_rho, cfg.method), (1e-4, 2, Rho::Mse, Method::Pccot));
        assert_eq!(cfg.data.valid.as_deref(), Some(Path::new("../shared/data/gsm8k/test.jsonl")));
        let err = TrainConfig::default().with_overrides(&["optim.lrr=1"]).unwrap_err().to_string();
        assert!(err.contains("optim.lrr") && err.contains("not a configuration field"), "{err}");
        let err = TrainConfig::default().with_overrides(&["evict.lambda=2"]).unwrap_err().to_string();
        assert!(err.contains("evict.lambda"), "{err}");
        let err = TrainConfig::default().with_overrides(&["optim.epochs=many"]).unwrap_err().to_string();
        assert!(err.contains("epochs"), "{err}");
        let pre = TrainConfig::default().with_overrides(&["loss.kv_pre_rope=true"]).unwrap();
        assert!(pre.loss.kv_pre_rope);
        pre.validate("test").unwrap();
    }

    #[test]
    fn a_toml_file_with_a_typo_names_the_field() {
        let err = TrainConfig::from_toml("method = \"kava\"\n[optim]\nlearning_rate = 1e-3\n", "run.toml").unwrap_err().to_string();
        assert!(err.contains("run.toml") && err.contains("learning_rate"), "{err}");
        let cfg = TrainConfig::from_toml("method = \"codi\"\n[latent]\nnum_latents = 6\nnum_iterations = 6\n", "c.toml").unwrap();
        assert_eq!(cfg.method, Method::Codi);
        let err = TrainConfig::from_toml("method = \"codi\"\n", "c.toml").unwrap_err().to_string();
        assert!(err.contains("latent.num_iterations"), "{err}");
    }

    /// `scripts/demo-model/demo.toml` is the recipe of the committed `kava/models/demo`: it must
    /// parse, and its student must have the shape the embedded model's `kava.json` records.
    #[test]
    fn the_demo_recipe_is_valid_and_has_the_embedded_models_shape() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let cfg = TrainConfig::from_file(&root.join("scripts/demo-model/demo.toml")).unwrap().with_method(Method::Kava);
        let json = std::fs::read_to_string(root.join("kava/models/demo/kava.json")).unwrap();
        let kava: serde_json::Value = serde_json::from_str(&json).unwrap();
        let field = |name: &str| kava[name].as_u64().unwrap_or_else(|| panic!("kava.json: no {name}")) as usize;
        assert_eq!((cfg.latent.num_latents, cfg.latent.num_iterations), (field("num_latents"), field("num_iterations")));
        assert_eq!(cfg.data.trace, Trace::Aug, "the embedded model was trained on equation traces");
    }
}
