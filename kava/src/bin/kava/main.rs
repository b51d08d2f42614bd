//! The `kava` command line: run models (generate, throughput) on the CPU, wgpu or CUDA.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kava::burn::tensor::Device;
use kava::generate::{self, GenerateOptions};
use kava::limits::{MAX_BATCH, MAX_ITERATIONS, MAX_LATENTS, MAX_NEW_TOKENS, MAX_POSITIONS};
use kava::solve::SolveOptions;
use kava::{Backend, Mode, Model};

mod demo;
mod progress;
mod report;

use progress::progress;
use web_time::Instant;

/// A count flag: an integer in `min..=max`; clap refuses anything else with a message naming the
/// flag and the range.
fn count(min: usize, max: usize) -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::<usize>::new().range(min as u64..=max as u64)
}

#[derive(Parser)]
#[command(name = "kava", version, about = "KaVa latent reasoning on burn: run Llama/Qwen2 models from HF directories")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct ModelArgs {
    /// HF model directory (config.json, model.safetensors, tokenizer.json).
    #[arg(long)]
    model: PathBuf,
    /// cpu, wgpu or cuda (default: the best one compiled in and working here).
    #[arg(long)]
    backend: Option<Backend>,
}

/// Latent settings for models without `kava.json` (untrained latents: for timing only).
#[derive(clap::Args)]
struct LatentArgs {
    /// M, latent tokens (overrides kava.json).
    #[arg(long, value_parser = count(1, MAX_LATENTS))]
    latents: Option<usize>,
    /// T, Jacobi iterations (overrides kava.json).
    #[arg(long, value_parser = count(0, MAX_ITERATIONS))]
    iterations: Option<usize>,
    /// Answer tokens after `<eot> P` (latent) or `P` (nocot). A question whose prompt plus this
    /// budget exceeds the model's max_position_embeddings is refused.
    #[arg(long, default_value_t = 16, value_parser = count(1, MAX_NEW_TOKENS))]
    max_answer_tokens: usize,
    /// Tokens of a CoT answer (refused, like --max-answer-tokens, beyond the model's context).
    #[arg(long, default_value_t = 256, value_parser = count(1, MAX_NEW_TOKENS))]
    max_cot_tokens: usize,
    /// Latent mode: Jacobi iteration T and `<eot> P` as two forward passes (the paper's count,
    /// 1 + T + n_answer) instead of one (the same answer, one pass fewer).
    #[arg(long)]
    separate_answer_pass: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Watch the embedded KaVa model answer math word problems in latent mode next to a full
    /// chain of thought, with the speed-up (no download).
    Demo {
        /// A kava model directory (with `kava.json`) instead of the embedded demo model; its
        /// `questions.txt`, if any, replaces the demo problems.
        #[arg(long)]
        model: Option<PathBuf>,
        /// cpu, wgpu or cuda (default: the best one compiled in and working here).
        #[arg(long)]
        backend: Option<Backend>,
        /// Solve this question (both modes, CoT text shown) instead of the demo problems.
        #[arg(long)]
        question: Option<String>,
        /// Show the K nearest vocabulary tokens of each latent.
        #[arg(long, value_name = "K", num_args = 0..=1, default_missing_value = "5", value_parser = count(1, 1000))]
        show_latents: Option<usize>,
        /// Solve the first N demo problems.
        #[arg(long, default_value_t = 8, value_parser = count(1, MAX_BATCH))]
        count: usize,
        /// Tokens of a CoT answer.
        #[arg(long, default_value_t = 256, value_parser = count(1, MAX_NEW_TOKENS))]
        max_cot_tokens: usize,
    },
    /// Greedy generation from a prompt; prints the text and tokens/s. A prompt whose length plus
    /// --max-new-tokens exceeds the model's max_position_embeddings is refused.
    Generate {
        #[command(flatten)]
        model: ModelArgs,
        #[arg(long)]
        prompt: String,
        #[arg(long, default_value_t = 64, value_parser = count(1, MAX_NEW_TOKENS))]
        max_new_tokens: usize,
        /// Wrap the prompt as a ChatML user turn.
        #[arg(long)]
        chat: bool,
    },
    /// Answer a question in latent, CoT or No-CoT mode (or latent and CoT side by side).
    Solve {
        #[command(flatten)]
        model: ModelArgs,
        #[arg(long)]
        question: String,
        /// latent, cot, nocot or both (latent and cot).
        #[arg(long, default_value = "both")]
        mode: String,
        #[command(flatten)]
        latent: LatentArgs,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Show the K nearest vocabulary tokens of each latent.
        #[arg(long, value_name = "K", num_args = 0..=1, default_missing_value = "5", value_parser = count(1, 1000))]
        show_latents: Option<usize>,
    },
    /// Accuracy and mean efficiency over an evaluation file (GSM8k JSONL, GSM8k-Aug text,
    /// GSM-Hard JSONL, SVAMP JSON). Malformed records are counted and skipped; a file with no
    /// usable record, or with a question too long for the model's context in a chosen mode
    /// (prompt plus decoding budget beyond max_position_embeddings), is refused before anything
    /// is solved.
    Eval {
        #[command(flatten)]
        model: ModelArgs,
        #[arg(long)]
        data: PathBuf,
        /// latent, cot, nocot or both.
        #[arg(long, default_value = "latent")]
        mode: String,
        /// Evaluate the first N questions only.
        #[arg(long, value_parser = count(1, usize::MAX))]
        limit: Option<usize>,
        /// Questions solved together.
        #[arg(long, default_value_t = 8, value_parser = count(1, MAX_BATCH))]
        batch_size: usize,
        #[command(flatten)]
        latent: LatentArgs,
    },
    /// Latent vs CoT wall time per question on a fixed question set; prints the ratio.
    Bench {
        #[command(flatten)]
        model: ModelArgs,
        /// How many of the built-in questions to time (at most 8).
        #[arg(long, default_value_t = 8, value_parser = count(1, 8))]
        questions: usize,
        #[command(flatten)]
        latent: LatentArgs,
    },
    /// Perplexity of a text file (no BOS added unless the tokenizer adds one). A text longer than
    /// the model's max_position_embeddings is refused.
    Perplexity {
        #[command(flatten)]
        model: ModelArgs,
        #[arg(long)]
        text: PathBuf,
        /// Also write the ids and logits to this safetensors file (for comparisons).
        #[arg(long)]
        save_logits: Option<PathBuf>,
    },
    /// Convert a GGUF file (or re-save an HF directory) as an HF directory transformers loads.
    /// The files are written into a temporary directory that then takes OUTPUT's place: a
    /// failure leaves OUTPUT as it was.
    Convert {
        /// The .gguf file or HF directory to read.
        input: PathBuf,
        /// The directory to write (config.json, model.safetensors, tokenizer.json, ...): absent
        /// or empty, or a model directory with --overwrite.
        output: PathBuf,
        /// f16, bf16 or f32 weights.
        #[arg(long, default_value = "f16")]
        dtype: String,
        /// Replace OUTPUT if it already holds a model (all its files are removed, an old
        /// kava.json included). A non-empty directory that holds no model is never replaced.
        #[arg(long)]
        overwrite: bool,
    },
    /// Forward throughput: prefill and decode tokens/s for a prompt length and batch size.
    Throughput {
        #[command(flatten)]
        model: ModelArgs,
        /// Prompt tokens per row (with --decode, within the model's max_position_embeddings).
        #[arg(long, default_value_t = 128, value_parser = count(1, MAX_POSITIONS))]
        prompt_len: usize,
        /// Rows decoded together.
        #[arg(long, default_value_t = 1, value_parser = count(1, MAX_BATCH))]
        batch: usize,
        /// Decode steps after the prefill.
        #[arg(long, default_value_t = 32, value_parser = count(1, MAX_NEW_TOKENS))]
        decode: usize,
        /// Timed repetitions (after one warm-up).
        #[arg(long, default_value_t = 3, value_parser = count(1, 1000))]
        reps: usize,
    },
}

fn parse_modes(mode: &str) -> kava::Result<Vec<Mode>> {
    if mode == "both" {
        Ok(vec![Mode::Latent, Mode::Cot])
    } else {
        Ok(vec![mode.parse()?])
    }
}

/// Applies `--latents/--iterations`; a model without latent tokens gets untrained ones (M = 24,
/// T = 3 unless given) when a latent mode is asked for — useful for timing, not for accuracy.
fn prepare_latents(model: &mut Model, args: &LatentArgs, modes: &[Mode]) -> kava::Result<()> {
    let needs = modes.contains(&Mode::Latent);
    match &model.latent {
        Some(r) => {
            let (m, t) = (args.latents.unwrap_or(r.config.num_latents), args.iterations.unwrap_or(r.config.num_iterations));
            model.attach_latents(m, t, true)
        }
        None if needs || args.latents.is_some() => {
            eprintln!("note: this model has no kava.json; using untrained latent tokens (timing only, answers are meaningless)");
            model.attach_latents(args.latents.unwrap_or(24), args.iterations.unwrap_or(3), true)
        }
        None => Ok(()),
    }
}

fn solve_options(args: &LatentArgs, show_latents: usize) -> SolveOptions {
    SolveOptions {
        max_answer_tokens: args.max_answer_tokens,
        max_cot_tokens: args.max_cot_tokens,
        show_latents,
        separate_answer_pass: args.separate_answer_pass,
    }
}

fn open(args: &ModelArgs) -> kava::Result<(Model, Backend, Device)> {
    let (backend, device) = match args.backend {
        Some(b) => (b, b.probe()?),
        None => Backend::best()?,
    };
    let t = Instant::now();
    let model = Model::load(&args.model, &device)?;
    log::info!("loaded {} on {backend} in {:.2?}", args.model.display(), t.elapsed());
    Ok((model, backend, device))
}

fn run(cli: Cli) -> kava::Result<()> {
    match cli.command {
        Command::Demo { model, backend, question, show_latents, count, max_cot_tokens } => demo::demo(demo::DemoArgs {
            model: model.as_deref(),
            backend,
            question: question.as_deref(),
            show_latents: show_latents.unwrap_or(0),
            count,
            max_cot_tokens,
        }),
        Command::Solve { model: args, question, mode, latent, json, show_latents } => {
            let modes = parse_modes(&mode)?;
            let (mut model, backend, _) = open(&args)?;
            prepare_latents(&mut model, &latent, &modes)?;
            let opts = solve_options(&latent, show_latents.unwrap_or(0));
            let mut solutions = Vec::new();
            for &m in &modes {
                solutions.push(model.solve(&question, m, &opts)?);
            }
            if json {
                println!("{}", report::solutions_json(&solutions, backend));
            } else {
                print!("{}", report::solutions_table(&solutions, backend));
            }
            Ok(())
        }
        Command::Eval { model: args, data, mode, limit, batch_size, latent } => {
            let modes = parse_modes(&mode)?;
            let set = kava::eval::load_eval_set(&data)?;
            if !set.skipped.is_empty() {
                eprintln!("{}: skipped {} malformed records (first: line {}: {})", data.display(), set.skipped.len(), set.skipped[0].line, set.skipped[0].reason);
            }
            let items = &set.items[..limit.unwrap_or(usize::MAX).min(set.items.len())];
            let (mut model, backend, _) = open(&args)?;
            prepare_latents(&mut model, &latent, &modes)?;
            let opts = solve_options(&latent, 0);
            kava::eval::check_fits(&model, &set, items, &modes, &opts)?;
            for &m in &modes {
                let mut bar = progress(items.len() as u64, &format!("{m}"));
                let t = Instant::now();
                let mut solutions = Vec::with_capacity(items.len());
                for chunk in items.chunks(batch_size.max(1)) {
                    let qs: Vec<&str> = chunk.iter().map(|i| i.question.as_str()).collect();
                    solutions.extend(model.solve_batch(&qs, m, &opts, &mut |_, _| {})?);
                    bar.inc(chunk.len() as u64);
                }
                bar.finish_and_clear();
                let s = kava::eval::Summary::of_items(&solutions, items, t.elapsed().as_secs_f64());
                println!(
                    "kava eval | {} | backend {backend} | mode {m} | n {} | accuracy {:.2}% ({}/{}) | passes {:.1} | generated {:.1} | KV entries {:.0} ({:.1} KiB) | {:.3} s/question",
                    data.display(), s.n, 100.0 * s.accuracy(), s.correct, s.n, s.forward_passes, s.generated_tokens, s.kv_entries, s.kv_bytes / 1024.0, s.seconds
                );
                if let Some(line) = s.by_steps_line() {
                    println!("kava eval by steps | mode {m} | {line}");
                }
            }
            Ok(())
        }
        Command::Bench { model: args, questions, latent } => {
            let (mut model, backend, device) = open(&args)?;
            prepare_latents(&mut model, &latent, &[Mode::Latent])?;
            let opts = solve_options(&latent, 0);
            let qs = &report::BENCH_QUESTIONS[..questions.clamp(1, report::BENCH_QUESTIONS.len())];
            // Warm-up: kernel compilation and allocation are not per-question costs.
            model.solve(qs[0], Mode::Latent, &opts)?;
            model.solve(qs[0], Mode::Cot, &opts)?;
            let mut bar = progress(2 * qs.len() as u64, "bench");
            let mut rows = Vec::new();
            for q in qs {
                let t = Instant::now();
                let lat = model.solve(q, Mode::Latent, &opts)?;
                let tl = t.elapsed().as_secs_f64();
                bar.inc(1);
                let t = Instant::now();
                let cot = model.solve(q, Mode::Cot, &opts)?;
                let tc = t.elapsed().as_secs_f64();
                bar.inc(1);
                rows.push((tl, tc, lat.stats.forward_passes, cot.stats.forward_passes));
            }
            bar.finish_and_clear();
            print!("{}", report::bench_table(&rows, backend, &device, &args.model, &model));
            Ok(())
        }
        Command::Generate { model: args, prompt, max_new_tokens, chat } => {
            let (model, backend, _) = open(&args)?;
            let text = if chat { kava::Tokenizer::chatml(&prompt) } else { prompt };
            let ids = model.tokenizer.encode(&text, true)?;
            let opts = GenerateOptions { max_new_tokens, stop_tokens: model.stop_tokens.clone(), suppress: vec![] };
            let mut shown = String::new();
            let mut all = Vec::new();
            let t = Instant::now();
            let (rows, stats) = generate::generate(&model.transformer, &[ids.clone()], &opts, &mut |_, id| {
                // Stream: decode everything so far and print what is new (multi-byte safe).
                all.push(id);
                if let Ok(text) = model.tokenizer.decode(&all, true) {
                    if text.len() > shown.len() && text.starts_with(&shown) {
                        print!("{}", &text[shown.len()..]);
                        let _ = std::io::stdout().flush();
                        shown = text;
                    }
                }
            })?;
            let total = t.elapsed();
            let n = rows[0].ids.len();
            println!();
            eprintln!(
                "[{backend}] prompt {} tokens, generated {n} tokens in {:.2?} ({:.1} tokens/s decode, {:.2?} total)",
                ids.len(),
                stats.time,
                n as f64 / stats.time.as_secs_f64().max(1e-9),
                total
            );
            Ok(())
        }
        Command::Perplexity { model: args, text, save_logits } => {
            let (model, backend, device) = open(&args)?;
            let raw = std::fs::read_to_string(&text).map_err(|e| kava::Error::Io { path: text.clone(), source: e })?;
            let ids = model.tokenizer.encode(raw.trim_end(), true)?;
            let t = Instant::now();
            let ppl = model.perplexity(&ids)?;
            if let Some(path) = save_logits {
                let m = &model.transformer;
                let out = m.forward(m.embed(kava::model::ids_tensor(&[ids.clone()], &device)), None, &mut m.new_cache(1), &kava::Capture::none());
                let logits = m.logits(out.hidden);
                let [_, n, v] = logits.dims();
                let data = logits.into_data().convert::<f32>().try_to_vec::<f32>().map_err(|e| kava::Error::Readback { what: "logits", problem: format!("{e:?}") })?;
                let tensors = vec![
                    ("logits".to_string(), kava::load::HostTensor::new(vec![n, v], data)),
                    ("ids".to_string(), kava::load::HostTensor::new(vec![n], ids.iter().map(|&i| i as f32).collect())),
                ];
                let bytes = kava::load::safetensors::serialize(&tensors, kava::load::safetensors::StoreDtype::F32)?;
                kava::api::write_atomic(&path, &bytes)?;
            }
            println!(
                "kava perplexity | {} | {} | {} tokens | backend {backend} | dtype {:?} | perplexity {ppl:.4} | {:.2?}",
                args.model.display(),
                text.display(),
                ids.len(),
                device.settings().float_dtype,
                t.elapsed()
            );
            Ok(())
        }
        Command::Convert { input, output, dtype, overwrite } => {
            let dtype = match dtype.as_str() {
                "f16" => kava::load::safetensors::StoreDtype::F16,
                "f32" => kava::load::safetensors::StoreDtype::F32,
                "bf16" => kava::load::safetensors::StoreDtype::BF16,
                other => return Err(kava::Error::Input { what: format!("dtype `{other}`"), problem: "expected f16, bf16 or f32".into() }),
            };
            kava::api::check_output_dir(&output, overwrite)?;
            let device = Backend::Cpu.device()?;
            let model = Model::load(&input, &device)?;
            model.save(&output, dtype)?;
            eprintln!("wrote {} ({} layers, vocab {})", output.display(), model.transformer.config.num_hidden_layers, model.transformer.config.vocab_size);
            Ok(())
        }
        Command::Throughput { model: args, prompt_len, batch, decode, reps } => {
            let (model, backend, device) = open(&args)?;
            let m = &model.transformer;
            let detail = format!("{prompt_len} prompt tokens + {decode} decode steps + 1");
            let positions = prompt_len + decode + 1;
            kava::limits::Workload { batch, positions, slots: positions, widest_pass: prompt_len, logit_rows: 1, detail }.check(&m.config, "throughput")?;
            let vocab = m.config.vocab_size as u32;
            // Deterministic pseudo-random ids: timing must not depend on the text.
            let rows: Vec<Vec<u32>> =
                (0..batch).map(|r| (0..prompt_len).map(|i| ((i * 7919 + r * 104729) as u32) % vocab).collect()).collect();
            let mut prefill = Vec::new();
            let mut step = Vec::new();
            // The library's own prefill and greedy loop, with no stop tokens: exactly `decode`
            // passes after the prefill.
            let opts = GenerateOptions::new(decode + 1);
            for rep in 0..=reps {
                let mut cache = m.new_cache(batch);
                let t = Instant::now();
                let logits = generate::prefill(m, &mut cache, &rows);
                generate::block_on(generate::read_ids(logits.clone().argmax(1)))?; // wait for it
                let tp = t.elapsed();
                let (_, stats) = generate::block_on(generate::decode_greedy(m, &mut cache, logits, &opts, &mut |_, _| {}))?;
                debug_assert_eq!(stats.forward_passes, decode);
                if rep > 0 {
                    prefill.push(tp.as_secs_f64());
                    step.push(stats.time.as_secs_f64());
                }
            }
            let med = |v: &mut Vec<f64>| {
                v.sort_by(|a, b| a.total_cmp(b));
                v[v.len() / 2]
            };
            let (tp, td) = (med(&mut prefill), med(&mut step));
            println!(
                "kava throughput | backend {backend} | dtype {:?} | model {} | batch {batch} | prompt {prompt_len} | prefill {:.1} tok/s ({:.1} ms) | decode {:.1} tok/s ({:.2} ms/step, {decode} steps) | median of {reps}",
                device.settings().float_dtype,
                args.model.display(),
                (batch * prompt_len) as f64 / tp,
                tp * 1e3,
                (batch * decode) as f64 / td.max(1e-12),
                td * 1e3 / decode.max(1) as f64,
            );
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    // wgpu probes every graphics API (EGL included) and logs each failure; only its verdict matters.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn,wgpu_hal=off,wgpu_core=error"))
        .init();
    if cfg!(target_os = "linux") && std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        // Mesa's drivers complain on every start without it; any private directory will do.
        std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
