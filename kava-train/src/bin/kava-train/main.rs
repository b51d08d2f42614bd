//! `kava-train`: train KaVa and its baselines (method.md §3), evaluate, export, plot.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kava::load::safetensors::StoreDtype;
use kava::{Backend, Mode};
use kava_train::config::{Method, TrainConfig};
use kava_train::train::run::{run, RunOptions};
use kava_train::train::{evaluate_solutions, Session};

/// A count flag: an integer in `min..=max`; clap refuses anything else with a message naming the
/// flag and the range.
fn count(min: usize, max: usize) -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::<usize>::new().range(min as u64..=max as u64)
}

#[derive(Parser)]
#[command(
    name = "kava-train",
    version,
    about = "Train, evaluate and export KaVa latent-reasoning models"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct ConfigArgs {
    /// A TOML configuration file.
    #[arg(long, conflicts_with = "preset")]
    config: Option<PathBuf>,
    /// A named preset (e.g. smollm2-135m-aug, llama3.2-1b-aug; see `kava-train presets`).
    #[arg(long)]
    preset: Option<String>,
    /// cot, nocot, pause, codi, pccot or kava (applies that method's preset of M, T and losses).
    #[arg(long)]
    method: Option<String>,
    /// `section.field=value` overrides, applied last (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

impl ConfigArgs {
    fn load(&self) -> anyhow::Result<TrainConfig> {
        let mut cfg = match (&self.config, &self.preset) {
            (Some(p), _) => TrainConfig::from_file(p)?,
            (None, Some(name)) => TrainConfig::preset(name)?,
            (None, None) => TrainConfig::default(),
        };
        if let Some(m) = &self.method {
            let method = Method::ALL
                .into_iter()
                .find(|x| x.name() == m)
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "--method `{m}`: expected one of cot, nocot, pause, codi, pccot, kava"
                    )
                })?;
            cfg = cfg.with_method(method);
        }
        Ok(cfg.with_overrides(&self.overrides)?)
    }
}

#[derive(Subcommand)]
enum Command {
    /// Train (writes checkpoints, metrics.jsonl and, at the end, the merged model to <dir>/final).
    /// A run directory that already holds a run is refused unless --resume continues it.
    /// Training examples longer than the model's max_position_embeddings (with the method's
    /// latents) are left out and counted in the log.
    Train {
        #[command(flatten)]
        config: ConfigArgs,
        /// cpu, wgpu or cuda (default: the best one compiled in and working here).
        #[arg(long)]
        backend: Option<Backend>,
        /// Continue from the latest checkpoint in checkpoint.dir.
        #[arg(long)]
        resume: bool,
        /// Stop after this many steps of this invocation (the schedule still spans the run).
        #[arg(long, value_parser = count(1, usize::MAX))]
        stop_after: Option<usize>,
        /// Print the resolved configuration and exit.
        #[arg(long)]
        dry_run: bool,
    },
    /// Time the training step: the first WARMUP + STEPS steps of a configuration as `train`
    /// runs them (no checkpoints, no evaluation), reporting s/step, tokens/s, MFU, peak memory
    /// and, with a CubeCL kernel log, kernels per step.
    BenchStep {
        #[command(flatten)]
        config: ConfigArgs,
        #[arg(long)]
        backend: Option<Backend>,
        /// Timed steps.
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=100_000))]
        steps: u64,
        /// Steps run first and not timed (kernel compilation, autotuning).
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(0..=100_000))]
        warmup: u64,
        /// Shorthand for `--set optim.micro_batch=N --set optim.effective_batch=N`.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=65_536))]
        micro_batch: Option<u64>,
        /// Shorthand for `--set optim.dtype=...` (f32 or bf16).
        #[arg(long)]
        dtype: Option<String>,
        /// Peak dense TFLOP/s of the device for the step's GEMM dtype: adds the MFU.
        #[arg(long)]
        peak_tflops: Option<f64>,
        /// CubeCL's kernel log file (cubecl.toml `[profiling.logger]` file): count launches.
        #[arg(long)]
        kernel_log: Option<PathBuf>,
        /// Append the report as one JSON line to this file (extra `key=value` fields: --tag).
        #[arg(long)]
        json: Option<PathBuf>,
        /// `key=value` added to the JSON line (repeatable), e.g. `model=smollm2-135m`.
        #[arg(long = "tag", value_name = "KEY=VALUE")]
        tags: Vec<String>,
        /// Run the tensor-op form of every fused kernel (`kava::model::fused`), for comparison.
        #[arg(long)]
        no_fused: bool,
    },
    /// Accuracy and efficiency of a model directory on an evaluation set (per mode).
    Eval {
        #[arg(long)]
        model: PathBuf,
        /// GSM8k JSONL, GSM8k-Aug text, GSM-Hard JSONL or SVAMP JSON.
        #[arg(long)]
        data: PathBuf,
        /// latent, cot, nocot, or a comma-separated list.
        #[arg(long, default_value = "latent")]
        mode: String,
        /// Evaluate the first N questions only.
        #[arg(long, value_parser = count(1, usize::MAX))]
        limit: Option<usize>,
        #[arg(long, default_value_t = 16, value_parser = count(1, kava::limits::MAX_BATCH))]
        batch_size: usize,
        #[arg(long, default_value_t = 256, value_parser = count(1, kava::limits::MAX_NEW_TOKENS))]
        max_cot_tokens: usize,
        #[arg(long)]
        backend: Option<Backend>,
        /// Also write one JSON line per problem and mode (index, mode, gold, answer, correct,
        /// steps, passes, tokens) to this file, for paired comparisons between runs.
        #[arg(long)]
        predictions: Option<PathBuf>,
    },
    /// Merge a checkpoint's adapters into the base model: an HF directory + kava.json. A damaged
    /// checkpoint (missing, misshaped or non-finite tensors) and a model with non-finite weights
    /// are refused; the directory is written whole or not at all.
    Export {
        /// A checkpoint directory or a run directory (its latest checkpoint).
        #[arg(long)]
        checkpoint: PathBuf,
        /// The directory to write: absent or empty, or a model directory with --overwrite.
        #[arg(long)]
        out: PathBuf,
        /// f32, f16 or bf16 (model.safetensors).
        #[arg(long, default_value = "f32")]
        dtype: String,
        /// Replace --out if it already holds a model (all its files are removed).
        #[arg(long)]
        overwrite: bool,
    },
    /// Render metrics.jsonl as a figure of the loss terms and the accuracy: PNG when --out ends
    /// in .png, SVG otherwise.
    Plot {
        /// metrics.jsonl (or a run directory holding one).
        #[arg(long)]
        metrics: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Write synthetic GSM8k-style problems: train/test splits sharing no question, as
    /// GSM8k-Aug text (train.txt, test.txt) and GSM8k JSONL (train.jsonl, test.jsonl).
    Synth {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 20000, value_parser = count(0, 10_000_000))]
        train: usize,
        #[arg(long, default_value_t = 500, value_parser = count(0, 1_000_000))]
        test: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// A model from scratch: train a byte-level BPE vocabulary (digits one per token) on a
    /// problem set and write a freshly initialised Llama decoder as an HF directory (written
    /// whole or not at all).
    InitModel {
        /// Problems to learn the vocabulary from (GSM8k-Aug text or GSM8k JSONL).
        #[arg(long)]
        data: PathBuf,
        /// The directory to write: absent or empty, or a model directory with --overwrite.
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 1024, value_parser = count(300, 1 << 20))]
        vocab_size: usize,
        #[arg(long, default_value_t = 256, value_parser = count(2, kava::limits::MAX_HIDDEN))]
        hidden: usize,
        #[arg(long, default_value_t = 6, value_parser = count(1, kava::limits::MAX_LAYERS))]
        layers: usize,
        #[arg(long, default_value_t = 8, value_parser = count(1, kava::limits::MAX_HEADS))]
        heads: usize,
        #[arg(long, default_value_t = 4, value_parser = count(1, kava::limits::MAX_HEADS))]
        kv_heads: usize,
        #[arg(long, default_value_t = 768, value_parser = count(1, kava::limits::MAX_INTERMEDIATE))]
        intermediate: usize,
        #[arg(long, default_value_t = 512, value_parser = count(1, kava::limits::MAX_POSITIONS))]
        max_positions: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Replace --out if it already holds a model (all its files are removed).
        #[arg(long)]
        overwrite: bool,
    },
    /// List the configuration presets.
    Presets,
}

fn device(backend: Option<Backend>) -> anyhow::Result<(Backend, kava::burn::tensor::Device)> {
    Ok(match backend {
        Some(b) => (b, b.device()?),
        None => Backend::best()?,
    })
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    match real_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kava-train: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn real_main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Train {
            config,
            backend,
            resume,
            stop_after,
            dry_run,
        } => {
            let cfg = config.load()?;
            if dry_run {
                print!("{}", cfg.to_toml());
                return Ok(());
            }
            let (backend, device) = device(backend)?;
            eprintln!("kava-train: backend {backend}");
            let summary = run(
                cfg,
                device,
                &RunOptions {
                    resume,
                    stop_after,
                    ..Default::default()
                },
            )?;
            if let Some(last) = summary.steps.last() {
                let n = summary.steps.len() as f64;
                let tps = summary.steps.iter().map(|m| m.tokens_per_s).sum::<f64>() / n;
                let mem = kava_train::train::run::peak_memory(&summary.steps).map_or(String::new(), |(u, r)| {
                    use kava_train::train::run::gib;
                    format!(", peak device memory {:.2} GiB in use / {:.2} GiB reserved", gib(u), gib(r))
                });
                println!(
                    "kava-train: {} steps, final loss {:.4}, mean {:.0} tokens/s{mem}, run dir {}",
                    last.step,
                    last.loss,
                    tps,
                    summary.dir.display()
                );
            }
            Ok(())
        }
        Command::BenchStep { config, backend, steps, warmup, micro_batch, dtype, peak_tflops, kernel_log, json, tags, no_fused } => {
            kava::model::fused::set_enabled(!no_fused);
            let mut overrides = config.overrides.clone();
            if let Some(mb) = micro_batch {
                overrides.push(format!("optim.micro_batch={mb}"));
                overrides.push(format!("optim.effective_batch={mb}"));
            }
            if let Some(d) = &dtype {
                overrides.push(format!("optim.dtype=\"{d}\""));
            }
            let cfg = ConfigArgs { overrides, ..config }.load()?;
            if let Some(p) = peak_tflops {
                anyhow::ensure!(p.is_finite() && p > 0.0, "--peak-tflops {p}: expected a positive number");
            }
            let fields: Vec<(String, String)> = tags
                .iter()
                .map(|t| t.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).ok_or_else(|| anyhow::anyhow!("--tag `{t}`: expected KEY=VALUE")))
                .collect::<anyhow::Result<_>>()?;
            let (backend, device) = device(backend)?;
            let opts = kava_train::bench::BenchOptions { warmup: warmup as usize, steps: steps as usize, peak_tflops, kernel_log };
            let report = kava_train::bench::bench_step(cfg, device, &backend.to_string(), &opts, |l| eprintln!("{l}"))?;
            println!("{}", report.summary());
            if let Some(path) = json {
                let mut v = serde_json::to_value(&report)?;
                if let Some(o) = v.as_object_mut() {
                    o.insert("impl".into(), "kava".into());
                    o.insert("fused".into(), (!no_fused).into());
                    for (k, val) in fields {
                        let val = val.parse::<f64>().ok().and_then(serde_json::Number::from_f64).map_or(serde_json::Value::String(val), serde_json::Value::Number);
                        o.insert(k, val);
                    }
                }
                use std::io::Write;
                let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&path).map_err(|e| anyhow::anyhow!("--json {}: {e}", path.display()))?;
                writeln!(f, "{v}").map_err(|e| anyhow::anyhow!("--json {}: {e}", path.display()))?;
            }
            Ok(())
        }
        Command::Eval {
            model,
            data,
            mode,
            limit,
            batch_size,
            max_cot_tokens,
            backend,
            predictions,
        } => {
            // Before the evaluation, not after it: a wrong folder must not cost the whole run.
            if let Some(path) = &predictions {
                let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
                if !dir.is_dir() {
                    anyhow::bail!("--predictions {}: the folder {} does not exist", path.display(), dir.display());
                }
            }
            let (backend, device) = device(backend)?;
            let model_dir = model;
            let model = kava::Model::load(&model_dir, &device)?;
            let set = kava::eval::load_eval_set(&data)?;
            if !set.skipped.is_empty() {
                eprintln!(
                    "{}: skipped {} malformed records (first: line {}: {})",
                    data.display(),
                    set.skipped.len(),
                    set.skipped[0].line,
                    set.skipped[0].reason
                );
            }
            let items = &set.items[..limit.unwrap_or(usize::MAX).min(set.items.len())];
            let modes: Vec<Mode> = mode.split(',').map(|m| m.trim().parse()).collect::<Result<_, _>>()?;
            let opts = kava::solve::SolveOptions { max_cot_tokens, ..Default::default() };
            kava::eval::check_fits(&model, &set, items, &modes, &opts)?;
            let mut lines = String::new();
            for m in modes {
                let (s, solutions) = evaluate_solutions(&model, items, m, batch_size, max_cot_tokens)?;
                if predictions.is_some() {
                    lines.push_str(&kava::eval::prediction_lines(&solutions, items));
                }
                println!(
                    "kava-train eval | {} | {} | backend {backend} | mode {m} | n {} | accuracy {:.2}% ({}/{}) | passes {:.1} | generated {:.1} | KV entries {:.0} | {:.3} s/question",
                    model_dir.display(), data.display(), s.n, 100.0 * s.accuracy(), s.correct, s.n, s.forward_passes, s.generated_tokens, s.kv_entries, s.seconds
                );
                if let Some(line) = s.by_steps_line() {
                    println!("kava-train eval by steps | mode {m} | {line}");
                }
            }
            if let Some(path) = predictions {
                kava::api::write_atomic(&path, lines.as_bytes()).map_err(|e| anyhow::anyhow!("--predictions {}: {e}", path.display()))?;
            }
            Ok(())
        }
        Command::Export {
            checkpoint,
            out,
            dtype,
            overwrite,
        } => {
            let dtype = match dtype.as_str() {
                "f32" => StoreDtype::F32,
                "f16" => StoreDtype::F16,
                "bf16" => StoreDtype::BF16,
                other => anyhow::bail!("--dtype `{other}`: expected f32, f16 or bf16"),
            };
            kava::api::check_output_dir(&out, overwrite)?;
            let ck = kava_train::train::checkpoint::resolve(&checkpoint)?;
            let state_path = ck.join("state.json");
            let state = kava_train::train::checkpoint::read_state(&ck)?;
            let cfg = TrainConfig::from_toml(&state.config, &state_path.display().to_string())?;
            let device = Backend::Cpu.device()?;
            let mut session = Session::new(cfg, device, vec![])?;
            session.load_checkpoint(&ck)?;
            session.export(&out, dtype)?;
            println!(
                "kava-train: exported {} (step {}) to {}",
                ck.display(),
                state.step,
                out.display()
            );
            Ok(())
        }
        Command::Plot { metrics, out } => {
            let path = if metrics.is_dir() {
                metrics.join("metrics.jsonl")
            } else {
                metrics
            };
            let text = std::fs::read_to_string(&path)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            let png = out.extension().is_some_and(|e| e.eq_ignore_ascii_case("png"));
            let bytes = if png {
                kava_train::plot::render_png(&text)
            } else {
                kava_train::plot::render(&text).map(String::into_bytes)
            }
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            kava::api::write_atomic(&out, &bytes)?;
            println!("kava-train: wrote {}", out.display());
            Ok(())
        }
        Command::Synth {
            out,
            train,
            test,
            seed,
        } => {
            use anyhow::Context;
            use kava_train::synth;
            std::fs::create_dir_all(&out).with_context(|| format!("--out {}", out.display()))?;
            let (tr, te) = synth::train_test(seed, train, test);
            for (name, problems) in [("train.txt", &tr), ("test.txt", &te)] {
                let path = out.join(name);
                synth::write_aug(&path, problems).with_context(|| format!("writing {}", path.display()))?;
            }
            for (name, problems) in [("train.jsonl", &tr), ("test.jsonl", &te)] {
                let path = out.join(name);
                synth::write_jsonl(&path, problems).with_context(|| format!("writing {}", path.display()))?;
            }
            println!(
                "kava-train: wrote {} train and {} test problems (seed {seed}) to {}",
                tr.len(),
                te.len(),
                out.display()
            );
            Ok(())
        }
        Command::InitModel {
            data,
            out,
            vocab_size,
            hidden,
            layers,
            heads,
            kv_heads,
            intermediate,
            max_positions,
            seed,
            overwrite,
        } => {
            use kava_train::data::{read_aug_text, read_gsm8k_jsonl, TraceStyle};
            kava::api::check_output_dir(&out, overwrite)?;
            // A JSONL record yields both trace styles: the vocabulary learns from both.
            let (examples, skipped, problems) = if data.extension().is_some_and(|e| e == "jsonl") {
                let (mut a, s) = read_gsm8k_jsonl(&data, TraceStyle::Aug)?;
                let problems = a.len();
                a.extend(read_gsm8k_jsonl(&data, TraceStyle::Nl)?.0);
                (a, s, problems)
            } else {
                let (a, s) = read_aug_text(&data)?;
                let problems = a.len();
                (a, s, problems)
            };
            if let Some(s) = skipped.first() {
                eprintln!("kava-train: skipped {} malformed lines (first: {s})", skipped.len());
            }
            if examples.is_empty() {
                anyhow::bail!("--data {}: no usable problem to learn a vocabulary from ({} malformed lines)", data.display(), skipped.len());
            }
            let shape = kava_train::scratch::Shape { hidden, layers, heads, kv_heads, intermediate, max_positions };
            let (vocab, params) = kava_train::scratch::write_model(&out, &examples, vocab_size, &shape, seed)?;
            println!(
                "kava-train: wrote {} — Llama {hidden}×{layers} layers, vocabulary {vocab}, {:.2} M parameters, from {} problems of {}",
                out.display(),
                params as f64 / 1e6,
                problems,
                data.display()
            );
            Ok(())
        }
        Command::Presets => {
            for p in kava_train::config::PRESETS {
                println!("{p}");
            }
            Ok(())
        }
    }
}
