//! The `kava` command line: run models (generate, throughput) on the CPU, wgpu or CUDA.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kava::burn::tensor::Device;
use kava::generate::{self, GenerateOptions};
use kava::model::{ids_tensor, Capture};
use kava::{Backend, Model};
use web_time::Instant;

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

#[derive(Subcommand)]
enum Command {
    /// Greedy generation from a prompt; prints the text and tokens/s.
    Generate {
        #[command(flatten)]
        model: ModelArgs,
        #[arg(long)]
        prompt: String,
        #[arg(long, default_value_t = 64)]
        max_new_tokens: usize,
        /// Wrap the prompt as a ChatML user turn.
        #[arg(long)]
        chat: bool,
    },
    /// Forward throughput: prefill and decode tokens/s for a prompt length and batch size.
    Throughput {
        #[command(flatten)]
        model: ModelArgs,
        #[arg(long, default_value_t = 128)]
        prompt_len: usize,
        #[arg(long, default_value_t = 1)]
        batch: usize,
        /// Decode steps after the prefill.
        #[arg(long, default_value_t = 32)]
        decode: usize,
        /// Timed repetitions (after one warm-up).
        #[arg(long, default_value_t = 3)]
        reps: usize,
    },
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
        Command::Throughput { model: args, prompt_len, batch, decode, reps } => {
            let (model, backend, device) = open(&args)?;
            let m = &model.transformer;
            let vocab = m.config.vocab_size as u32;
            // Deterministic pseudo-random ids: timing must not depend on the text.
            let rows: Vec<Vec<u32>> =
                (0..batch).map(|r| (0..prompt_len).map(|i| ((i * 7919 + r * 104729) as u32) % vocab).collect()).collect();
            let mut prefill = Vec::new();
            let mut step = Vec::new();
            for rep in 0..=reps {
                let mut cache = m.new_cache(batch);
                let t = Instant::now();
                let out = m.forward(m.embed(ids_tensor(&rows, &device)), None, &mut cache, &Capture::none());
                let logits = m.logits(out.hidden.narrow(1, prompt_len - 1, 1));
                let mut next = generate::block_on(generate::read_ids(logits.argmax(2)))?;
                let tp = t.elapsed();
                let t = Instant::now();
                for _ in 0..decode {
                    let ids: Vec<Vec<u32>> = next.iter().map(|&i| vec![i]).collect();
                    let out = m.forward(m.embed(ids_tensor(&ids, &device)), None, &mut cache, &Capture::none());
                    next = generate::block_on(generate::read_ids(m.logits(out.hidden).argmax(2)))?;
                }
                let td = t.elapsed();
                if rep > 0 {
                    prefill.push(tp.as_secs_f64());
                    step.push(td.as_secs_f64());
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
