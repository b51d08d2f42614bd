//! A whole training run as `kava-train train` performs it: data loading (malformed lines
//! reported, validation questions excluded), the step loop with a progress line and JSONL
//! metrics, periodic checkpoints and evaluations, `--resume`, and the final export.

use std::collections::HashSet;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use kava::burn::tensor::Device;
use kava::load::safetensors::StoreDtype;

use super::{evaluate, Session, StepMetrics, TrainError};
use crate::config::{Trace, TrainConfig};
use crate::data::{self, Example, TraceStyle};

/// How to run.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Continue from the run directory's latest checkpoint.
    pub resume: bool,
    /// Stop after this many optimizer steps of this invocation (the schedule still spans
    /// the whole run): for tests and timing.
    pub stop_after: Option<usize>,
    /// No progress line, no log lines (tests).
    pub quiet: bool,
    /// Skip the final export.
    pub no_export: bool,
}

/// What a run did.
#[derive(Clone, Debug)]
pub struct RunSummary {
    pub steps: Vec<StepMetrics>,
    pub dir: PathBuf,
    pub exported: Option<PathBuf>,
    /// Eval records written (one JSON object each).
    pub evals: Vec<serde_json::Value>,
}

/// Reads the training file of `cfg` (GSM8k JSONL or GSM8k-Aug text by extension) and removes
/// the questions of `data.valid`; returns the examples and a report to log.
pub fn load_train(cfg: &TrainConfig) -> Result<(Vec<Example>, String), TrainError> {
    let path = &cfg.data.train;
    let style = match cfg.data.trace {
        Trace::Aug => TraceStyle::Aug,
        Trace::Nl => TraceStyle::Nl,
    };
    let is_jsonl = path
        .extension()
        .is_some_and(|e| e == "jsonl" || e == "json");
    let (mut examples, skipped) = if is_jsonl {
        data::read_gsm8k_jsonl(path, style)
    } else {
        data::read_aug_text(path)
    }
    .map_err(|e| TrainError::Data(e.to_string()))?;
    let mut report = data::load_report(&path.display().to_string(), &examples, &skipped);
    if let Some(valid) = &cfg.data.valid {
        let set = kava::eval::load_eval_set(valid)?;
        let exclude: HashSet<String> = set
            .items
            .iter()
            .map(|i| data::normalize_question(&i.question))
            .collect();
        let (kept, removed) = data::remove_questions(examples, &exclude);
        examples = kept;
        report.push_str(&format!(
            "\nexcluded {removed} training examples whose question is in {}",
            valid.display()
        ));
    }
    if cfg.data.limit > 0 {
        examples.truncate(cfg.data.limit);
    }
    if examples.is_empty() {
        return Err(TrainError::Data(format!(
            "{}: no usable training examples",
            path.display()
        )));
    }
    Ok((examples, report))
}

/// Appends one JSON line to `path`.
fn append_jsonl(path: &Path, value: &serde_json::Value) -> Result<(), TrainError> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| TrainError::Io {
            path: path.into(),
            source,
        })?;
    writeln!(f, "{value}").map_err(|source| TrainError::Io {
        path: path.into(),
        source,
    })
}

/// Keeps the metric lines of steps ≤ `step` (after a resume, the lines a crashed run wrote past
/// its last checkpoint are dropped, so the file is the curve of one run).
fn truncate_metrics(path: &Path, step: usize) -> Result<(), TrainError> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .ok()
                .and_then(|v| v["step"].as_u64())
                .is_some_and(|s| s as usize <= step)
        })
        .collect();
    let body = if kept.is_empty() {
        String::new()
    } else {
        kept.join("\n") + "\n"
    };
    kava::api::write_atomic(path, body.as_bytes())?;
    Ok(())
}

/// The largest `mem_in_use` and `mem_reserved` of a run's steps, in bytes (`None` where the
/// backend's allocator does not report).
pub fn peak_memory(steps: &[StepMetrics]) -> Option<(u64, u64)> {
    let in_use = steps.iter().filter_map(|m| m.mem_in_use).max()?;
    let reserved = steps.iter().filter_map(|m| m.mem_reserved).max().unwrap_or(in_use);
    Some((in_use, reserved.max(in_use)))
}

/// The progress line of one step.
pub fn progress_line(m: &StepMetrics, total: usize) -> String {
    let mem = match (m.mem_in_use, m.mem_reserved) {
        (Some(u), Some(r)) => format!(" | mem {:.2}/{:.2} GiB", gib(u), gib(r)),
        (None, Some(r)) => format!(" | mem {:.2} GiB reserved", gib(r)),
        _ => String::new(),
    };
    format!(
        "step {}/{} | loss {:.4} (ce_s {:.4} ce_t {:.4} codi {:.4} kv {:.4}) | lr {:.2e} | |g| {:.3} | {:.0} tok/s | {:.2} s/step{mem}",
        m.step, total, m.loss, m.ce_student, m.ce_teacher, m.codi, m.kv, m.lr, m.grad_norm, m.tokens_per_s, m.seconds
    )
}

/// Bytes in GiB.
pub fn gib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 30) as f64
}

/// Trains as `cfg` says on `device`; see the module docs.
pub fn run(cfg: TrainConfig, device: Device, opts: &RunOptions) -> Result<RunSummary, TrainError> {
    let log = |s: &str| {
        if !opts.quiet {
            eprintln!("{s}");
        }
    };
    let (train, report) = load_train(&cfg)?;
    log(&report);
    let valid = match &cfg.data.valid {
        Some(v) => {
            let mut items = kava::eval::load_eval_set(v)?.items;
            if cfg.checkpoint.eval_limit > 0 {
                items.truncate(cfg.checkpoint.eval_limit);
            }
            items
        }
        None => vec![],
    };
    let dir = cfg.checkpoint.dir.clone();
    std::fs::create_dir_all(&dir).map_err(|source| TrainError::Io {
        path: dir.clone(),
        source,
    })?;
    kava::api::write_atomic(&dir.join("config.toml"), cfg.to_toml().as_bytes())?;
    let metrics_path = dir.join("metrics.jsonl");
    let mut session = Session::new(cfg, device, train)?;
    if opts.resume {
        let step = session.load_checkpoint(&dir)?;
        truncate_metrics(&metrics_path, step)?;
        log(&format!("resumed from {} at step {step}", dir.display()));
    } else {
        let _ = std::fs::remove_file(&metrics_path);
    }
    let cfg = session.cfg.clone();
    log(&format!(
        "kava-train | method {} | {} examples | {} steps of {} examples ({} per micro-batch) | {} trainable parameters",
        cfg.method.name(),
        session.train.len(),
        session.total_steps,
        cfg.optim.effective_batch,
        cfg.optim.micro_batch,
        session.opt.num_trainable()
    ));
    let tty = std::io::stderr().is_terminal() && !opts.quiet;
    let mut summary = RunSummary {
        steps: vec![],
        dir: dir.clone(),
        exported: None,
        evals: vec![],
    };
    let eval_now = |session: &Session,
                    step: usize,
                    summary: &mut RunSummary|
     -> Result<(), TrainError> {
        if valid.is_empty() {
            return Ok(());
        }
        let model = session.inference_model();
        for mode in session.eval_modes() {
            let s = evaluate(&model, &valid, mode, 16, cfg.checkpoint.eval_max_cot_tokens)?;
            let rec = serde_json::json!({
                "step": step, "eval": mode.to_string(), "n": s.n, "accuracy": s.accuracy(),
                "forward_passes": s.forward_passes, "generated_tokens": s.generated_tokens, "seconds_per_question": s.seconds,
            });
            log(&format!(
                "eval at step {step}: {mode} accuracy {:.2}% ({}/{}), {:.1} passes/question",
                100.0 * s.accuracy(),
                s.correct,
                s.n,
                s.forward_passes
            ));
            append_jsonl(&metrics_path, &rec)?;
            summary.evals.push(rec);
        }
        Ok(())
    };
    let start = session.opt.step as usize;
    let end = opts.stop_after.map_or(session.total_steps, |n| {
        (start + n).min(session.total_steps)
    });
    for _ in start..end {
        let m = session.train_step().map_err(|e| match e {
            TrainError::Device { step, cause, hint, .. } => TrainError::Device { step, cause, hint, resume: super::checkpoint::resolve(&dir).ok() },
            e => e,
        })?;
        if !m.loss.is_finite() {
            return Err(TrainError::Data(format!(
                "loss became {} at step {} (lower optim.lr?)",
                m.loss, m.step
            )));
        }
        append_jsonl(&metrics_path, &serde_json::to_value(&m).expect("json"))?;
        let line = progress_line(&m, session.total_steps);
        if tty {
            eprint!("\r{line}   ");
        } else if !opts.quiet && (m.step % 10 == 0 || m.step == 1 || m.step == end) {
            eprintln!("{line}");
        }
        let every = cfg.checkpoint.every;
        if every > 0 && m.step % every == 0 && m.step < end {
            session.save_checkpoint(&dir)?;
        }
        if cfg.checkpoint.eval_every > 0 && m.step % cfg.checkpoint.eval_every == 0 && m.step < end
        {
            if tty {
                eprintln!();
            }
            eval_now(&session, m.step, &mut summary)?;
        }
        summary.steps.push(m);
    }
    if tty {
        eprintln!();
    }
    if end > start {
        session.save_checkpoint(&dir)?;
    }
    eval_now(&session, end, &mut summary)?;
    if !opts.no_export && end == session.total_steps {
        let out = dir.join("final");
        session.export(&out, StoreDtype::F32)?;
        log(&format!("exported the merged model to {}", out.display()));
        summary.exported = Some(out);
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A device failure names the step and its root cause, not burn's chain of skipped kernels.
    #[test]
    fn a_device_failure_names_the_step_and_the_cause() {
        let burn = "An error happened during execution\nCaused by:\n  Several failures at once\nCaused by:\n  \
            skipped `KernelBinop`: it needed memory ManagedMemoryId { value: 2462 }, which carried the failure\nCaused by:\n  \
            An IO error happened\nCaused by:\n  out of device memory allocating 48234496 bytes\nNo backtrace available";
        let e = TrainError::device(7, burn).to_string();
        assert_eq!(
            e,
            "step 7: the device failed: out of device memory allocating 48234496 bytes (lower optim.micro_batch, \
             or free the GPU: another process may hold its memory)"
        );
        let e = TrainError::device(3, "An error happened during execution\nCaused by:\n  An IO error happened\nCaused by:\n  \
            buffer of 166 MB exceeds the binding limit\nNo backtrace available").to_string();
        assert_eq!(e, "step 3: the device failed: buffer of 166 MB exceeds the binding limit");
        let e = TrainError::device(4, "An error happened during execution").to_string();
        assert_eq!(e, "step 4: the device failed: An error happened during execution");
        let e = match TrainError::device(9, "device lost") {
            TrainError::Device { step, cause, hint, .. } => TrainError::Device { step, cause, hint, resume: Some("run/checkpoint-0000008".into()) },
            e => e,
        };
        assert_eq!(e.to_string(), "step 9: the device failed: device lost; the last checkpoint is run/checkpoint-0000008: continue with --resume");
    }

    /// The checkpoint a device failure points to is `checkpoint::resolve`'s: the one `latest` names.
    #[test]
    fn the_last_checkpoint_is_the_one_latest_names() {
        let last_checkpoint = |dir: &Path| super::super::checkpoint::resolve(dir).ok();
        let dir = std::env::temp_dir().join(format!("kava-train-last-ck-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("checkpoint-0000004")).unwrap();
        std::fs::write(dir.join("checkpoint-0000004/state.json"), "{}").unwrap();
        assert_eq!(last_checkpoint(&dir), None);
        std::fs::write(dir.join("latest"), "checkpoint-0000004\n").unwrap();
        assert_eq!(last_checkpoint(&dir), Some(dir.join("checkpoint-0000004")));
        std::fs::write(dir.join("latest"), "checkpoint-0000009").unwrap();
        assert_eq!(last_checkpoint(&dir), None, "latest names a checkpoint that is not there");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
