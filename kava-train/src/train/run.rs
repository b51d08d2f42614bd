//! A whole training run as `kava-train train` performs it: data loading (malformed lines
//! reported, validation questions excluded), the step loop with a progress line and JSONL
//! metrics, periodic checkpoints and evaluations, `--resume`, and the final export.
//!
//! What could stop a run midway is checked before its first step: a training example longer
//! than the model's context (`max_position_embeddings`, with the method's latents) is left out
//! and counted in the log; a validation question too long to evaluate is an error; a run
//! directory that already holds a run (a checkpoint or `final/`) is refused unless `--resume`
//! continues it, and a resumed checkpoint must belong to this schedule.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use kava::burn::tensor::Device;
use kava::load::safetensors::StoreDtype;

use super::{evaluate, schedule, step, Session, StepMetrics, TrainError};
use crate::config::{Trace, TrainConfig};
use crate::data::{self, Example, Tokenize, TraceStyle};

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

/// kava's tokenizer for the context check: a text the tokenizer cannot encode gives no ids and
/// is recorded, where the training step's adapter would panic. Short texts (the separators, the
/// answer prompt, most answers) are encoded once.
struct Recording<'a> {
    tokenizer: &'a kava::Tokenizer,
    eos: u32,
    error: RefCell<Option<String>>,
    short: RefCell<HashMap<String, Vec<u32>>>,
}

impl Tokenize for Recording<'_> {
    fn encode(&self, text: &str) -> Vec<u32> {
        if let Some(ids) = self.short.borrow().get(text) {
            return ids.clone();
        }
        match self.tokenizer.encode(text, false) {
            Ok(ids) => {
                if text.len() <= 16 {
                    self.short.borrow_mut().insert(text.to_string(), ids.clone());
                }
                ids
            }
            Err(e) => {
                self.error.borrow_mut().get_or_insert(e.to_string());
                vec![]
            }
        }
    }
    fn bos(&self) -> Option<u32> {
        self.tokenizer.bos_added()
    }
    fn eos(&self) -> u32 {
        self.eos
    }
}

/// Leaves out the training examples that cannot be trained on: those longer than the model's
/// `max_position_embeddings` in the sequences `cfg.method` runs (see
/// [`step::positions_needed`]), and those the tokenizer cannot encode; the schedule is then
/// recomputed over what is left. Returns a line for the log when something was left out, and
/// the positions of the longest example kept.
fn drop_unusable(session: &mut Session) -> Result<(Option<String>, usize), TrainError> {
    let model = &session.model;
    let limit = model.transformer.config.max_position_embeddings;
    let prompt = model.tokenizer.encode(data::ANSWER_PROMPT, false)?;
    if prompt.is_empty() {
        return Err(TrainError::Data(format!("{}: the tokenizer encodes {:?} to nothing", model.tokenizer.path().display(), data::ANSWER_PROMPT)));
    }
    let tok = Recording { tokenizer: &model.tokenizer, eos: session.eos, error: RefCell::new(None), short: RefCell::new(HashMap::new()) };
    let m = model.latent.as_ref().map_or(0, |r| r.config.num_latents);
    let (mut too_long, mut untokenizable) = (Vec::new(), Vec::new());
    let mut keep = Vec::with_capacity(session.train.len());
    let mut longest = 0;
    for ex in &session.train {
        let n = step::positions_needed(&session.cfg, &tok, &session.sp, m, ex);
        if let Some(e) = tok.error.borrow_mut().take() {
            untokenizable.push((ex.line, e));
            keep.push(false);
        } else if n > limit {
            too_long.push((ex.line, n));
            keep.push(false);
        } else {
            keep.push(true);
            longest = longest.max(n);
        }
    }
    if too_long.is_empty() && untokenizable.is_empty() {
        return Ok((None, longest));
    }
    let mut keep = keep.into_iter();
    session.train.retain(|_| keep.next().unwrap_or(false));
    let file = session.cfg.data.train.display().to_string();
    if session.train.is_empty() {
        return Err(TrainError::Data(format!(
            "{file}: no usable training example: {} longer than the model's {limit} positions (max_position_embeddings), {} the tokenizer cannot encode",
            too_long.len(),
            untokenizable.len()
        )));
    }
    session.total_steps = schedule::total_steps(&session.cfg.optim, session.train.len());
    let mut report = Vec::new();
    if let Some(&(line, n)) = too_long.first() {
        report.push(format!(
            "left out {} training examples longer than the model's {limit} positions (max_position_embeddings; first: line {line}, {n} positions)",
            too_long.len()
        ));
    }
    if let Some((line, e)) = untokenizable.first() {
        report.push(format!("left out {} training examples the tokenizer cannot encode (first: line {line}: {e})", untokenizable.len()));
    }
    Ok((Some(format!("{file}: {}", report.join("; "))), longest))
}

/// Refuses a micro-batch whose activations alone would not fit the memory budget
/// (`kava::limits::memory_budget`), before the first step: `--set optim.micro_batch=65536`
/// aborted inside the allocator. The estimate is a lower bound — one forward pass of a
/// micro-batch of the longest kept sequences (`longest` positions rounded up to
/// `data.pad_multiple`), per layer its attention scores and probabilities (2·b·heads·W²) and its
/// hidden, attention and MLP activations (b·W·(4·hidden + 2·intermediate)), in f32 — so that
/// only what cannot fit is refused. A `data.pad_multiple` past the context is refused too.
fn check_step_memory(session: &Session, longest: usize) -> Result<(), TrainError> {
    let (cfg, c) = (&session.cfg, &session.model.transformer.config);
    if cfg.data.pad_multiple > c.max_position_embeddings {
        return Err(TrainError::Data(format!(
            "data.pad_multiple {} is more than the model's {} positions (max_position_embeddings)",
            cfg.data.pad_multiple, c.max_position_embeddings
        )));
    }
    let f = |n: usize| n as f64;
    let (b, w) = (f(cfg.optim.micro_batch), f(longest.next_multiple_of(cfg.data.pad_multiple.max(1))));
    let per_layer = b * w * (2.0 * f(c.num_attention_heads) * w + 4.0 * f(c.hidden_size) + 2.0 * f(c.intermediate_size));
    let bytes = 4.0 * per_layer * f(c.num_hidden_layers);
    let budget = kava::limits::memory_budget()?;
    if bytes > budget {
        let gib = |b: f64| b / (1u64 << 30) as f64;
        return Err(TrainError::Data(format!(
            "optim.micro_batch {}: one forward pass over {} positions needs at least {:.1} GiB of activations, more than the {:.1} GiB allowed here (KAVA_MEMORY_LIMIT_GIB): lower optim.micro_batch",
            cfg.optim.micro_batch,
            w,
            gib(bytes),
            gib(budget)
        )));
    }
    Ok(())
}

/// Refuses a configuration whose trainable parameters — with their gradients and two AdamW
/// moments, f32 — would not fit the memory budget (`kava::limits::memory_budget`), before the
/// model is loaded: a LoRA rank far past the model's width asked for tens of GB and aborted.
fn check_trainable_memory(cfg: &TrainConfig) -> Result<(), TrainError> {
    let c = kava::load::read_config(&cfg.model)?;
    let f = |n: usize| n as f64;
    let (h, inter, layers) = (f(c.hidden_size), f(c.intermediate_size), f(c.num_hidden_layers));
    let (q, kv) = (f(c.num_attention_heads * c.head_dim), f(c.num_key_value_heads * c.head_dim));
    // (in + out) of the seven adapted projections, and their weights.
    let in_out = 2.0 * (h + q) + 2.0 * (h + kv) + 3.0 * (h + inter);
    let weights = 2.0 * h * q + 2.0 * h * kv + 3.0 * h * inter;
    let projection = 2.0 * h * h;
    let (params, what) = if cfg.lora.full_finetune {
        let embed = f(c.vocab_size) * h * if c.tie_word_embeddings { 1.0 } else { 2.0 };
        (layers * weights + embed + projection, "full fine-tuning".to_string())
    } else {
        (f(cfg.lora.rank) * in_out * layers + projection, format!("lora.rank {}", cfg.lora.rank))
    };
    let bytes = 16.0 * params;
    let budget = kava::limits::memory_budget()?;
    if bytes > budget {
        let gib = |b: f64| b / (1u64 << 30) as f64;
        return Err(TrainError::Data(format!(
            "{what} on {}: {params:.3e} trainable values need about {:.1} GiB (values, gradients and AdamW moments in f32), more than the {:.1} GiB allowed here (KAVA_MEMORY_LIMIT_GIB)",
            cfg.model.display(),
            gib(bytes),
            gib(budget)
        )));
    }
    Ok(())
}

/// Refuses to start a fresh run in a directory that holds one (a checkpoint, `latest` or
/// `final/`): its metrics would be cut and its checkpoints mixed with the new run's.
fn refuse_held_run_dir(dir: &Path) -> Result<(), TrainError> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(()) };
    let held: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n == "latest" || n == "final" || n.starts_with("checkpoint-"))
        .collect();
    if let Some(first) = held.iter().min() {
        return Err(TrainError::Checkpoint {
            path: dir.into(),
            message: format!("holds a training run ({first}): continue it with --resume, or choose another checkpoint.dir"),
        });
    }
    Ok(())
}

/// A fresh run's metrics start empty; those of an earlier run that saved no checkpoint (nothing
/// to resume) are kept as `metrics.jsonl.prev`, not deleted.
fn set_aside_metrics(dir: &Path, log: &dyn Fn(&str)) -> Result<(), TrainError> {
    let metrics = dir.join("metrics.jsonl");
    if metrics.exists() {
        let prev = dir.join("metrics.jsonl.prev");
        std::fs::rename(&metrics, &prev).map_err(|source| TrainError::Io { path: metrics.clone(), source })?;
        log(&format!("{}: an earlier run saved no checkpoint; its metrics are now {}", dir.display(), prev.display()));
    }
    Ok(())
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
    let dir = cfg.checkpoint.dir.clone();
    if !opts.resume {
        refuse_held_run_dir(&dir)?;
    }
    let (train, report) = load_train(&cfg)?;
    log(&report);
    let valid_set = match &cfg.data.valid {
        Some(v) => {
            let mut set = kava::eval::load_eval_set(v)?;
            if cfg.checkpoint.eval_limit > 0 {
                set.items.truncate(cfg.checkpoint.eval_limit);
            }
            Some(set)
        }
        None => None,
    };
    let metrics_path = dir.join("metrics.jsonl");
    check_trainable_memory(&cfg)?;
    let mut session = Session::new(cfg, device, train)?;
    let (report, longest) = drop_unusable(&mut session)?;
    if let Some(line) = report {
        log(&line);
    }
    check_step_memory(&session, longest)?;
    if let Some(set) = &valid_set {
        let opts = kava::solve::SolveOptions { max_cot_tokens: session.cfg.checkpoint.eval_max_cot_tokens, ..Default::default() };
        kava::eval::check_fits(&session.model, set, &set.items, &session.eval_modes(), &opts)?;
    }
    let valid = valid_set.map(|s| s.items).unwrap_or_default();
    if opts.resume {
        let ck = super::checkpoint::resolve(&dir)?;
        let state = super::checkpoint::read_state(&ck)?;
        if state.step > session.total_steps || state.total_steps != session.total_steps {
            return Err(TrainError::Checkpoint {
                path: ck.join("state.json"),
                message: format!(
                    "step {} of a {}-step schedule, but this run's schedule has {} steps (optim.max_steps, optim.epochs, optim.effective_batch or the training data differ): resume with the checkpoint's configuration",
                    state.step, state.total_steps, session.total_steps
                ),
            });
        }
    }
    std::fs::create_dir_all(&dir).map_err(|source| TrainError::Io {
        path: dir.clone(),
        source,
    })?;
    if opts.resume {
        let step = session.load_checkpoint(&dir)?;
        truncate_metrics(&metrics_path, step)?;
        log(&format!("resumed from {} at step {step}", dir.display()));
    } else {
        set_aside_metrics(&dir, &log)?;
    }
    kava::api::write_atomic(&dir.join("config.toml"), session.cfg.to_toml().as_bytes())?;
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
