//! The learning-rate schedule of method.md §3.2: linear warm-up over `warmup_frac` of the steps,
//! then cosine decay to 0 (transformers' `get_cosine_schedule_with_warmup`).

use crate::config::OptimConfig;

/// Optimizer steps of a run: `max_steps` when set, else `epochs` passes over `n_train`
/// examples in batches of `effective_batch` (the last partial batch rounds up).
pub fn total_steps(cfg: &OptimConfig, n_train: usize) -> usize {
    if cfg.max_steps > 0 {
        return cfg.max_steps;
    }
    (cfg.epochs * n_train).div_ceil(cfg.effective_batch).max(1)
}

/// Warm-up steps: `ceil(warmup_frac · total)`.
pub fn warmup_steps(cfg: &OptimConfig, total: usize) -> usize {
    (cfg.warmup_frac * total as f64).ceil() as usize
}

/// The learning rate of 1-based optimizer step `step` of `total`.
pub fn lr_at(cfg: &OptimConfig, total: usize, step: usize) -> f64 {
    let warm = warmup_steps(cfg, total);
    // transformers evaluates the lambda at the 0-based step count before the update.
    let s = step.saturating_sub(1);
    if s < warm {
        return cfg.lr * s as f64 / warm.max(1) as f64;
    }
    let progress = (s - warm) as f64 / (total - warm).max(1) as f64;
    cfg.lr * 0.5 * (1.0 + (std::f64::consts::PI * progress.min(1.0)).cos())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_cosine_to_zero() {
        let cfg = OptimConfig {
            lr: 1e-3,
            warmup_frac: 0.1,
            ..OptimConfig::default()
        };
        let total = 100;
        assert_eq!(warmup_steps(&cfg, total), 10);
        assert_eq!(lr_at(&cfg, total, 1), 0.0);
        assert!((lr_at(&cfg, total, 6) - 5e-4).abs() < 1e-12);
        assert!((lr_at(&cfg, total, 11) - 1e-3).abs() < 1e-12);
        assert!((lr_at(&cfg, total, 56) - 5e-4).abs() < 1e-12);
        assert!(lr_at(&cfg, total, 100) < 1e-6);
        let steps = OptimConfig {
            epochs: 2,
            effective_batch: 128,
            ..OptimConfig::default()
        };
        assert_eq!(total_steps(&steps, 1000), 16);
        assert_eq!(
            total_steps(
                &OptimConfig {
                    max_steps: 7,
                    ..steps
                },
                1000
            ),
            7
        );
    }
}
