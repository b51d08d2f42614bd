//! `kava-train bench-step`: the speed of the training step itself. It runs the first
//! `warmup + steps` optimizer steps of a configuration exactly as `kava-train train` would (same
//! data order, same batches, no checkpoints, no evaluation) and reports the timed steps: seconds
//! per step, tokens per second, model-FLOPs utilisation, the allocator's peak memory and, when
//! CubeCL's kernel logger is on, the kernels launched per step.
//!
//! Tokens are counted as training counts them ([`crate::train::step::StepLoss::tokens`]: teacher
//! and student sequences, each real position once), so the figure compares directly with
//! `scripts/kava_torch_train.py`, which counts the same way on the same batches.

use std::path::{Path, PathBuf};

use kava::burn::module::Module;
use kava::burn::tensor::Device;
use serde::Serialize;

use crate::config::TrainConfig;
use crate::train::run::load_train;
use crate::train::{Session, StepMetrics, TrainError};

/// What to time.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// Steps run first and left out of the figures (kernel compilation, autotuning, the
    /// allocator's first pages).
    pub warmup: usize,
    /// Timed steps.
    pub steps: usize,
    /// The accelerator's peak dense throughput for the step's GEMM dtype, in TFLOP/s; with it
    /// the report includes the model-FLOPs utilisation.
    pub peak_tflops: Option<f64>,
    /// CubeCL's kernel log (the `file` of `[profiling.logger]` in `cubecl.toml`): its lines are
    /// counted around every timed step. The logger makes launches slower, so time without it.
    pub kernel_log: Option<PathBuf>,
}

/// The figures of one configuration.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    pub method: String,
    pub micro_batch: usize,
    pub effective_batch: usize,
    pub dtype: String,
    pub backend: String,
    /// Median seconds per timed step.
    pub s_per_step: f64,
    /// Tokens of the timed steps over their seconds.
    pub tokens_per_s: f64,
    /// Mean tokens per step.
    pub tokens_per_step: f64,
    /// Parameters of the base model (embedding included).
    pub parameters: usize,
    /// Model FLOPs per token: `2N` forward, and `2N` (LoRA: the base weights get no gradient)
    /// or `4N` (full fine-tuning) backward.
    pub flops_per_token: f64,
    /// Model FLOPs per second over the peak (`None` without a peak).
    pub mfu: Option<f64>,
    /// The allocator's largest in-use figure over the run, GiB (`None` on the CPU).
    pub peak_mem_gib: Option<f64>,
    /// The allocator's largest reserved figure, GiB.
    pub reserved_mem_gib: Option<f64>,
    /// Median kernel launches per timed step (with a kernel log).
    pub kernels_per_step: Option<f64>,
    /// Loss of the first and last step (a sanity check that the step trains).
    pub first_loss: f64,
    pub last_loss: f64,
    pub steps: Vec<StepMetrics>,
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        0.5 * (xs[n / 2 - 1] + xs[n / 2])
    }
}

/// Parameters of the model without its LoRA adapters.
fn base_params(t: &kava::model::Transformer) -> usize {
    let adapters: usize = t
        .layers
        .iter()
        .flat_map(|l| {
            let (a, m) = (&l.self_attn, &l.mlp);
            [&a.q_proj, &a.k_proj, &a.v_proj, &a.o_proj, &m.gate_proj, &m.up_proj, &m.down_proj]
        })
        .map(|lin| lin.lora.as_ref().map_or(0, |a| a.num_params()))
        .sum();
    t.num_params() - adapters
}

fn count_lines(path: &Path) -> Result<usize, TrainError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(bytes.iter().filter(|&&b| b == b'\n').count()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(source) => Err(TrainError::Io { path: path.into(), source }),
    }
}

/// Runs `opts.warmup + opts.steps` steps of `cfg` on `device` and reports the timed ones.
/// `log` receives one line per step.
pub fn bench_step(
    mut cfg: TrainConfig,
    device: Device,
    backend: &str,
    opts: &BenchOptions,
    mut log: impl FnMut(&str),
) -> Result<BenchReport, TrainError> {
    if opts.steps == 0 {
        return Err(TrainError::Data("bench-step: --steps must be at least 1".into()));
    }
    let total = opts.warmup + opts.steps;
    // The schedule spans exactly the benchmark, so the learning rate moves as in a short run.
    cfg.optim.max_steps = total;
    let (train, report) = load_train(&cfg)?;
    log(&report);
    let mut session = Session::new(cfg.clone(), device, train)?;
    let parameters = base_params(&session.model.transformer);
    let flops_per_token = if cfg.lora.full_finetune { 6.0 } else { 4.0 } * parameters as f64;
    let mut timed = Vec::with_capacity(opts.steps);
    let mut kernels = Vec::new();
    for i in 0..total {
        let before = opts.kernel_log.as_deref().map(count_lines).transpose()?;
        let m = session.train_step()?;
        let after = opts.kernel_log.as_deref().map(count_lines).transpose()?;
        log(&format!(
            "step {:>3}{} | {:.3} s | {:.0} tokens/s | loss {:.4}{}",
            m.step,
            if i < opts.warmup { " (warm-up)" } else { "" },
            m.seconds,
            m.tokens_per_s,
            m.loss,
            after.zip(before).map_or(String::new(), |(a, b)| format!(" | {} kernels", a - b))
        ));
        if i >= opts.warmup {
            if let (Some(a), Some(b)) = (after, before) {
                kernels.push((a - b) as f64);
            }
            timed.push(m);
        }
    }
    let seconds: f64 = timed.iter().map(|m| m.seconds).sum();
    let tokens: usize = timed.iter().map(|m| m.tokens).sum();
    let tokens_per_s = tokens as f64 / seconds.max(1e-9);
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    let first_loss = timed.first().map_or(f64::NAN, |m| m.loss);
    let last_loss = timed.last().map_or(f64::NAN, |m| m.loss);
    Ok(BenchReport {
        method: cfg.method.name().to_string(),
        micro_batch: cfg.optim.micro_batch,
        effective_batch: cfg.optim.effective_batch,
        dtype: cfg.optim.dtype.clone(),
        backend: backend.to_string(),
        s_per_step: median(timed.iter().map(|m| m.seconds).collect()),
        tokens_per_s,
        tokens_per_step: tokens as f64 / timed.len() as f64,
        parameters,
        flops_per_token,
        mfu: opts.peak_tflops.map(|p| tokens_per_s * flops_per_token / (p * 1e12)),
        peak_mem_gib: timed.iter().filter_map(|m| m.mem_in_use).max().map(gib),
        reserved_mem_gib: timed.iter().filter_map(|m| m.mem_reserved).max().map(gib),
        kernels_per_step: (!kernels.is_empty()).then(|| median(kernels)),
        first_loss,
        last_loss,
        steps: timed,
    })
}

impl BenchReport {
    /// One line for people.
    pub fn summary(&self) -> String {
        let opt = |x: Option<f64>, f: &dyn Fn(f64) -> String| x.map_or("–".to_string(), f);
        format!(
            "bench-step | {} | mb {} | {} | {} | {:.3} s/step | {:.0} tokens/s | MFU {} | peak {} GiB in use ({} reserved) | {} kernels/step | loss {:.4} -> {:.4}",
            self.method,
            self.micro_batch,
            self.dtype,
            self.backend,
            self.s_per_step,
            self.tokens_per_s,
            opt(self.mfu, &|m| format!("{:.1} %", 100.0 * m)),
            opt(self.peak_mem_gib, &|g| format!("{g:.2}")),
            opt(self.reserved_mem_gib, &|g| format!("{g:.2}")),
            opt(self.kernels_per_step, &|k| format!("{k:.0}")),
            self.first_loss,
            self.last_loss,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(vec![]).is_nan());
    }
}
