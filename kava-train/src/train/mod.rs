//! The training loop (the `kava-train` issue): a [`Session`] holds the model on an autodiff
//! device with its adapters, the optimizer and the data stream; [`Session::train_step`] runs one
//! optimizer step (micro-batches → [`step::step_loss`] → backward → accumulate → global-norm clip
//! → AdamW at the scheduled learning rate). Checkpoints ([`checkpoint`]) hold exactly what a
//! resumed run needs to continue bit-for-bit: trainable values, optimizer moments and the step
//! (the data order and the dropout seeds are functions of the seed and the step).

pub mod checkpoint;
pub mod params;
pub mod run;
pub mod schedule;
pub mod step;

use std::time::Instant;

use kava::burn::module::Module;
use kava::burn::tensor::{Device, Tensor};
use kava::latent::LatentReasoner;
use kava::Model;

use crate::config::{Method, ProjectionScale, TrainConfig};
use crate::data::{Example, SpecialIds, Tokenize};
use params::{Accumulator, AdamW, Optimizer, Trainable};

/// kava's tokenizer as the data layouts need it (no special tokens added by the encoder).
pub struct TokenizerAdapter<'a> {
    pub tokenizer: &'a kava::Tokenizer,
    pub eos: u32,
}

impl Tokenize for TokenizerAdapter<'_> {
    fn encode(&self, text: &str) -> Vec<u32> {
        // Encoding plain text cannot fail with a tokenizer that loaded; a failure is a bug.
        self.tokenizer
            .encode(text, false)
            .unwrap_or_else(|e| panic!("tokenizing {text:?}: {e}"))
    }
    fn bos(&self) -> Option<u32> {
        self.tokenizer.bos_added()
    }
    fn eos(&self) -> u32 {
        self.eos
    }
}

/// Errors of a training session.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Kava(#[from] kava::Error),
    #[error("{path}: {message}")]
    Checkpoint {
        path: std::path::PathBuf,
        message: String,
    },
    #[error("{0}")]
    Data(String),
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    /// The device failed during a step (out of memory, a lost device): the step's results
    /// could not be read back. `resume` names the checkpoint a run can continue from.
    #[error("step {step}: the device failed: {cause}{hint}{}", resume.as_ref().map_or(String::new(), |c| format!("; the last checkpoint is {}: continue with --resume", c.display())))]
    Device { step: usize, cause: String, hint: &'static str, resume: Option<std::path::PathBuf> },
}

impl TrainError {
    /// A device failure at (1-based) `step`, from burn's error: its root cause (the
    /// allocation that failed, say) rather than the whole chain of skipped kernels — the
    /// out-of-memory line if there is one, else the innermost cause that says something.
    pub fn device(step: usize, err: impl std::fmt::Display) -> Self {
        let text = err.to_string();
        let lines = || text.lines().map(str::trim).filter(|l| !l.is_empty());
        let oom = lines().find(|l| l.contains("out of device memory") || l.contains("out of memory"));
        const WRAPPERS: [&str; 10] = [
            "Caused by",
            "No backtrace",
            "Asked at",
            "skipped `",
            "older skip record",
            "Several failures at once",
            "An IO error happened",
            "An error happened during execution",
            "The bytes were never written",
            "stack backtrace",
        ];
        let innermost = lines().filter(|l| !WRAPPERS.iter().any(|w| l.contains(w))).last();
        let cause = oom.or(innermost).or_else(|| lines().next()).unwrap_or("unknown error").to_string();
        let hint = if oom.is_some() {
            " (lower optim.micro_batch, or free the GPU: another process may hold its memory)"
        } else {
            ""
        };
        TrainError::Device { step, cause, hint, resume: None }
    }
}

/// Measured figures of one optimizer step.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct StepMetrics {
    /// 1-based optimizer step.
    pub step: usize,
    pub epoch: f64,
    pub lr: f64,
    /// The weighted total loss (mean over micro-batches).
    pub loss: f64,
    pub ce_student: f64,
    pub ce_teacher: f64,
    pub codi: f64,
    pub kv: f64,
    pub grad_norm: f64,
    pub clip_scale: f64,
    /// Sequence tokens of the step (see [`step::StepLoss::tokens`]).
    pub tokens: usize,
    pub seconds: f64,
    pub tokens_per_s: f64,
    /// Device memory the step's tensors used, in bytes, as burn's allocator counts it: the
    /// largest value seen after the first micro-batch's forward pass (activations held for
    /// backward) and backward pass, sampled on steps 1–3 and every 25th step (`None` on the
    /// others, and on a backend whose allocator does not report: the CPU one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_in_use: Option<u64>,
    /// Device memory the allocator's pools held (used + kept for reuse), in bytes: the largest
    /// value seen at those points and at the end of the step (every step). The pools also grow
    /// and return pages in between, so the process's footprint as `nvidia-smi` sees it can be
    /// larger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_reserved: Option<u64>,
}

/// The largest allocator figures seen at a step's sample points.
#[derive(Default)]
struct MemorySample {
    in_use: Option<u64>,
    reserved: Option<u64>,
}

impl MemorySample {
    fn sample(&mut self, device: &Device) {
        if let Some(u) = device.memory_pool_usage() {
            self.in_use = Some(self.in_use.unwrap_or(0).max(u.bytes_in_use));
            self.reserved = Some(self.reserved.unwrap_or(0).max(u.bytes_reserved));
        }
    }
}

/// A training run in memory.
pub struct Session {
    pub cfg: TrainConfig,
    pub model: Model,
    pub opt: Optimizer,
    pub sp: SpecialIds,
    pub eos: u32,
    pub train: Vec<Example>,
    pub total_steps: usize,
    /// The plain (non-autodiff) device.
    pub device: Device,
    /// Which eviction implementation ran last (KaVa only).
    pub evict_path: Option<shaders::evict::Path>,
}

/// Deterministic 64-bit mix (SplitMix64 finaliser) for seeds derived from (seed, step, …).
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The order of the examples in epoch `epoch`: a seeded Fisher–Yates shuffle.
pub fn epoch_order(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut s = mix(seed ^ mix(epoch as u64 + 1));
    for i in (1..n).rev() {
        s = mix(s);
        let j = (s % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order
}

impl Session {
    /// Loads the base model onto `device` (training runs on its autodiff twin), gives it latent tokens and LoRA
    /// adapters as `cfg` says and sets up the optimizer. `train` may be empty for a session that
    /// only restores a checkpoint to export it.
    pub fn new(cfg: TrainConfig, device: Device, train: Vec<Example>) -> Result<Self, TrainError> {
        if let Some(dtype) = cfg.optim.compute_dtype().map_err(TrainError::Data)? {
            if !device.supports_dtype(dtype) {
                return Err(TrainError::Data(format!(
                    "optim.dtype = {}: this device has no {} arithmetic (wgpu/WGSL has none); train with --backend cuda or cpu, or optim.dtype = \"f32\"",
                    cfg.optim.dtype, cfg.optim.dtype
                )));
            }
        }
        // Adapter init is drawn from the seeded device RNG.
        device.seed(cfg.optim.seed);
        // Load and extend on the plain device, then lift the weights onto the autodiff device as
        // leaves (see `params::to_autodiff`); the adapters are created there afterwards.
        let mut model = Model::load(&cfg.model, &device)?;
        let latent = &cfg.latent;
        model.attach_latents(
            latent.num_latents.max(1),
            latent.num_iterations,
            latent.use_projection,
        )?;
        // `latent.projection_scale`: a projection that was never trained (fresh, or carried
        // through a `cot` warm-up) starts at the chosen scale; a trained one keeps its own.
        if latent.projection_scale == ProjectionScale::Embedding {
            let untrained = model.latent.as_ref().and_then(|r| r.projection.as_ref()).is_some_and(|p| p.norm_at_init());
            if untrained {
                let scale = embedding_rms(&model, &cfg.model)?;
                if let Some(p) = model.latent.as_mut().and_then(|r| r.projection.as_mut()) {
                    p.set_output_scale(scale);
                }
            }
        }
        model.transformer = params::to_autodiff(model.transformer);
        if let Some(r) = model.latent.as_mut() {
            r.projection = r.projection.take().map(params::to_autodiff);
        }
        let reasoner = model.latent.as_ref().expect("attached");
        let c = &reasoner.config;
        // The latent tokens were appended to the tokenizer: every row from the first of them on
        // is new (rows past the tokenizer's vocabulary, if the checkpoint had spare ones, are
        // never used, so training them is harmless).
        let new_rows_from = c.special_ids().first().copied().unwrap_or(0) as usize;
        let sp = SpecialIds {
            bot: c.bot_id,
            eot: c.eot_id,
            lat: c.lat_id,
            pad: c.pad_id,
        };
        let eos = *model.stop_tokens.first().ok_or_else(|| {
            TrainError::Data(format!(
                "{}: the model has no EOS token",
                cfg.model.display()
            ))
        })?;
        let full = cfg.lora.full_finetune;
        if !full {
            model
                .transformer
                .attach_lora(cfg.lora.rank, cfg.lora.alpha, cfg.lora.dropout);
        }
        let trainable = Trainable {
            full,
            new_rows_from,
        };
        model.transformer = params::freeze(model.transformer, "", &trainable);
        if let Some(dtype) = cfg.optim.compute_dtype().map_err(TrainError::Data)? {
            if !full {
                model.transformer = params::store_frozen_linears_as(model.transformer, "", &trainable, dtype);
            }
        }
        let mut infos = params::trainable_params(&model.transformer, "", &trainable);
        if let Some(r) = model.latent.as_mut() {
            if let Some(p) = r.projection.take() {
                let p = params::freeze(p, "projection", &trainable);
                infos.extend(params::trainable_params(&p, "projection", &trainable));
                r.projection = Some(p);
            }
        }
        let opt = Optimizer::new(
            infos,
            AdamW {
                weight_decay: cfg.optim.weight_decay,
                ..AdamW::default()
            },
            new_rows_from,
        );
        let total_steps = schedule::total_steps(&cfg.optim, train.len());
        Ok(Self {
            cfg,
            model,
            opt,
            sp,
            eos,
            train,
            total_steps,
            device,
            evict_path: None,
        })
    }

    fn reasoner(&self) -> &LatentReasoner {
        self.model
            .latent
            .as_ref()
            .expect("a session always has latents")
    }

    /// The examples of optimizer step `step` (0-based): the next `effective_batch` of the
    /// seeded per-epoch order, running on into the next epoch.
    pub fn step_examples(&self, step: usize) -> Vec<usize> {
        let n = self.train.len();
        let eb = self.cfg.optim.effective_batch;
        let mut out = Vec::with_capacity(eb);
        let mut cached: Option<(usize, Vec<usize>)> = None;
        for s in step * eb..(step + 1) * eb {
            let epoch = s / n;
            if cached.as_ref().map(|c| c.0) != Some(epoch) {
                cached = Some((epoch, epoch_order(n, self.cfg.optim.seed, epoch)));
            }
            out.push(cached.as_ref().expect("set").1[s % n]);
        }
        out
    }

    /// Runs optimizer step `self.opt.step + 1` and returns its metrics; a device failure (out
    /// of memory, say) is an error naming the step, not a panic.
    pub fn train_step(&mut self) -> Result<StepMetrics, TrainError> {
        let t0 = Instant::now();
        // bf16 GEMMs for this step's forward passes when optim.dtype says so (the backward
        // follows the casts the forward recorded).
        let _autocast = kava::model::precision::autocast(self.cfg.optim.compute_dtype().unwrap_or(None));
        let step = self.opt.step as usize; // 0-based index of this step
        let idx = self.step_examples(step);
        let mb = self.cfg.optim.micro_batch;
        let n_micro = idx.len().div_ceil(mb);
        let tok = TokenizerAdapter {
            tokenizer: &self.model.tokenizer,
            eos: self.eos,
        };
        let mut acc = Accumulator::default();
        let mut terms: Option<Tensor<1>> = None;
        let mut totals: Option<Tensor<1>> = None;
        let mut tokens = 0;
        let mut mem = MemorySample::default();
        for (k, chunk) in idx.chunks(mb).enumerate() {
            // Dropout masks are a function of (seed, step, micro-batch): a resumed run draws
            // the same ones.
            self.device.seed(mix(
                self.cfg.optim.seed ^ mix((step as u64) << 16 | k as u64)
            ));
            let examples: Vec<&Example> = chunk.iter().map(|&i| &self.train[i]).collect();
            let out = step::step_loss(
                &self.model.transformer,
                self.reasoner(),
                &self.cfg,
                &examples,
                &tok,
                &self.sp,
            );
            tokens += out.tokens;
            if out.evict_path.is_some() {
                self.evict_path = out.evict_path;
            }
            // Mid-step samples wait for the device's queue to be taken in, so they are taken on
            // the first micro-batch of steps 1–3 and of every 25th step only.
            let sample = k == 0 && (step < 3 || (step + 1) % 25 == 0);
            if sample {
                mem.sample(&self.device);
            }
            let scaled = out.total.clone().div_scalar(n_micro as f64);
            let mut grads = scaled.backward();
            if sample {
                mem.sample(&self.device);
            }
            acc.add(&self.model.transformer, &mut grads, &self.opt.index);
            if let Some(p) = &self.reasoner().projection {
                acc.add(p, &mut grads, &self.opt.index);
            }
            let t = out.terms.inner();
            let l = out.total.detach().inner();
            terms = Some(terms.map_or(t.clone(), |a| a + t));
            totals = Some(totals.map_or(l.clone(), |a| a + l));
        }
        self.opt.begin_step();
        let lr = schedule::lr_at(&self.cfg.optim, self.total_steps, self.opt.step as usize);
        let device_err = |e| TrainError::device(step + 1, e);
        let (mut grads, rep) = self.opt.prepare(acc, self.cfg.optim.grad_clip).map_err(device_err)?;
        self.model.transformer = self
            .opt
            .apply(self.model.transformer.clone(), &mut grads, lr);
        if let Some(r) = self.model.latent.as_mut() {
            if let Some(p) = r.projection.take() {
                r.projection = Some(self.opt.apply(p, &mut grads, lr));
            }
        }
        let terms = params::try_to_host(
            terms
                .expect("at least one micro-batch")
                .div_scalar(n_micro as f64),
        )
        .map_err(device_err)?;
        let loss = params::try_to_host(
            totals
                .expect("at least one micro-batch")
                .div_scalar(n_micro as f64),
        )
        .map_err(device_err)?[0] as f64;
        let seconds = t0.elapsed().as_secs_f64();
        mem.sample(&self.device);
        if self.cfg.optim.release_memory {
            self.device.memory_cleanup();
        }
        Ok(StepMetrics {
            step: step + 1,
            epoch: ((step + 1) * self.cfg.optim.effective_batch) as f64 / self.train.len() as f64,
            lr,
            loss,
            ce_student: terms[0] as f64,
            ce_teacher: terms[1] as f64,
            codi: terms[2] as f64,
            kv: terms[3] as f64,
            grad_norm: rep.grad_norm,
            clip_scale: rep.clip_scale,
            tokens,
            seconds,
            tokens_per_s: tokens as f64 / seconds.max(1e-9),
            mem_in_use: mem.in_use,
            mem_reserved: mem.reserved,
        })
    }

    /// An inference copy of the current model (plain device, adapters merged, no dropout), as
    /// `kava solve` would load it after export.
    pub fn inference_model(&self) -> Model {
        let mut transformer = self.model.transformer.valid();
        transformer.merge_lora();
        let mut m = Model::new(transformer, self.model.tokenizer.clone());
        m.stop_tokens = self.model.stop_tokens.clone();
        let r = self.reasoner();
        m.latent = Some(LatentReasoner::new(
            r.config.clone(),
            r.projection.as_ref().map(|p| p.valid()),
        ));
        m
    }

    /// Writes the merged model as an HF directory plus `kava.json` (the export).
    pub fn export(
        &self,
        dir: &std::path::Path,
        dtype: kava::load::safetensors::StoreDtype,
    ) -> Result<(), TrainError> {
        self.inference_model().save(dir, dtype)?;
        Ok(())
    }

    /// Whether the method answers through latents (else CoT / No-CoT decoding is its mode).
    pub fn eval_modes(&self) -> Vec<kava::Mode> {
        match self.cfg.method {
            Method::Cot => vec![kava::Mode::Cot],
            Method::Nocot => vec![kava::Mode::NoCot],
            _ => vec![kava::Mode::Latent],
        }
    }
}

/// Accuracy and efficiency of `model` on `items` in `mode` (kava's solver and scorer).
pub fn evaluate(
    model: &Model,
    items: &[kava::eval::EvalItem],
    mode: kava::Mode,
    batch: usize,
    max_cot_tokens: usize,
) -> Result<kava::eval::Summary, TrainError> {
    Ok(evaluate_solutions(model, items, mode, batch, max_cot_tokens)?.0)
}

/// [`evaluate`], with each item's solution (in item order) for a per-problem record.
pub fn evaluate_solutions(
    model: &Model,
    items: &[kava::eval::EvalItem],
    mode: kava::Mode,
    batch: usize,
    max_cot_tokens: usize,
) -> Result<(kava::eval::Summary, Vec<kava::Solution>), TrainError> {
    let opts = kava::solve::SolveOptions {
        max_cot_tokens,
        ..Default::default()
    };
    let t = Instant::now();
    let mut solutions = Vec::with_capacity(items.len());
    for chunk in items.chunks(batch.max(1)) {
        let qs: Vec<&str> = chunk.iter().map(|i| i.question.as_str()).collect();
        solutions.extend(model.solve_batch(&qs, mode, &opts, &mut |_, _| {})?);
    }
    let summary = kava::eval::Summary::of_items(&solutions, items, t.elapsed().as_secs_f64());
    Ok((summary, solutions))
}

/// The RMS of the token-embedding entries over the model's own vocabulary (the rows before the
/// latent special tokens): the scale `latent.projection_scale = "embedding"` gives the latents.
fn embedding_rms(model: &Model, path: &std::path::Path) -> Result<f32, TrainError> {
    let c = &model.latent.as_ref().expect("latents attached").config;
    let own = c.special_ids().first().copied().unwrap_or(0) as usize;
    let e = model.transformer.embed_tokens.val();
    let [rows, d] = e.dims();
    let e = e.slice([0..own.clamp(1, rows), 0..d]);
    let ms = params::try_to_host(e.powi_scalar(2).mean()).map_err(|cause| TrainError::Data(format!("{}: reading the token embedding: {cause}", path.display())))?;
    Ok(ms.first().copied().unwrap_or(1.0).sqrt())
}

/// Number of parameters of a module (all, trainable or not).
pub fn num_params<M: Module>(m: &M) -> usize {
    m.num_params()
}
