//! What `kava demo` runs: math word problems answered by latent reasoning and by a full chain
//! of thought with the same model, side by side — per problem the answers, forward passes,
//! generated tokens and wall time, then accuracy, totals and the CoT/latent speed-up.
//!
//! The KaVa demo model (`kava/models/demo/`: an HF directory, `kava.json`, `kava.safetensors`
//! and `questions.txt`, held-out problems in GSM8k-Aug text format) is compiled in with the
//! `demo-model` feature (on with `cli`), so an installed `kava` needs no download. Solving is
//! [`Model::solve`]; this module only orders the runs and sums them.

use std::path::Path;

use web_time::Instant;

use crate::answer::answers_match;
use crate::api::Model;
use crate::error::{Error, Result};
use crate::eval::parse_eval_set;
use crate::solve::{Mode, SolveOptions, Solution};

/// The demo model's files, compiled into the library.
#[cfg(feature = "demo-model")]
pub mod embedded {
    use std::path::Path;

    use crate::api::ModelBytes;
    use crate::load::HfBytes;

    /// How errors and the CLI name the compiled-in model.
    pub const SOURCE: &str = "(embedded) kava/models/demo";
    pub const CONFIG: &[u8] = include_bytes!("../models/demo/config.json");
    pub const GENERATION_CONFIG: &[u8] = include_bytes!("../models/demo/generation_config.json");
    pub const WEIGHTS: &[u8] = include_bytes!("../models/demo/model.safetensors");
    pub const TOKENIZER: &[u8] = include_bytes!("../models/demo/tokenizer.json");
    pub const KAVA_JSON: &[u8] = include_bytes!("../models/demo/kava.json");
    pub const KAVA_SAFETENSORS: &[u8] = include_bytes!("../models/demo/kava.safetensors");
    /// Held-out problems, GSM8k-Aug text format (`question||<<3*5=15>> ... #### 15`).
    pub const QUESTIONS: &str = include_str!("../models/demo/questions.txt");

    /// The files as [`crate::Model::from_bytes`] takes them.
    pub fn bytes() -> ModelBytes<'static> {
        ModelBytes {
            hf: HfBytes {
                source: Path::new(SOURCE),
                config: CONFIG,
                generation_config: Some(GENERATION_CONFIG),
                weights: WEIGHTS,
                tokenizer: TOKENIZER,
            },
            kava_json: Some(KAVA_JSON),
            kava_safetensors: Some(KAVA_SAFETENSORS),
        }
    }

    /// The demo model on `device`.
    pub fn load(device: &burn::tensor::Device) -> crate::Result<crate::Model> {
        crate::Model::from_bytes(bytes(), device)
    }

    /// The demo problems.
    pub fn problems() -> crate::Result<Vec<super::Problem>> {
        super::parse_problems(QUESTIONS, Path::new(SOURCE).join("questions.txt").as_path())
    }
}

/// A problem of the demo; `gold` is absent for a question typed by the user.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub question: String,
    pub gold: Option<f64>,
}

/// Reads problems in GSM8k-Aug text format (kava's eval reader). A malformed line is an error
/// naming `path` and the line: a demo set is small and hand-checked, nothing is skipped.
pub fn parse_problems(text: &str, path: &Path) -> Result<Vec<Problem>> {
    // The reader picks the format from the extension; demo problems are always GSM8k-Aug text.
    let (items, skipped) = parse_eval_set(text, &path.with_extension("txt"))?;
    if let Some(s) = skipped.first() {
        return Err(Error::Input { what: format!("{} line {}", path.display(), s.line), problem: s.reason.clone() });
    }
    if items.is_empty() {
        return Err(Error::Input { what: path.display().to_string(), problem: "no problems".into() });
    }
    Ok(items.into_iter().map(|i| Problem { question: i.question, gold: Some(i.gold) }).collect())
}

/// One problem solved both ways.
#[derive(Debug, Clone)]
pub struct Row {
    pub problem: Problem,
    pub latent: Solution,
    pub cot: Solution,
    /// Wall time of each solve (tokenizing, reasoning, decoding), milliseconds.
    pub latent_ms: f64,
    pub cot_ms: f64,
}

impl Row {
    /// Whether the latent answer equals the gold one (method.md §5); `None` without gold.
    pub fn latent_correct(&self) -> Option<bool> {
        correct(&self.latent, self.problem.gold)
    }

    pub fn cot_correct(&self) -> Option<bool> {
        correct(&self.cot, self.problem.gold)
    }
}

fn correct(s: &Solution, gold: Option<f64>) -> Option<bool> {
    gold.map(|g| s.answer.is_some_and(|a| answers_match(a, g)))
}

/// Sums over the rows of a run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Totals {
    pub problems: usize,
    /// Problems with a gold answer (the accuracy's denominator).
    pub graded: usize,
    pub latent_correct: usize,
    pub cot_correct: usize,
    pub latent_passes: usize,
    pub cot_passes: usize,
    pub latent_tokens: usize,
    pub cot_tokens: usize,
    pub latent_ms: f64,
    pub cot_ms: f64,
}

impl Totals {
    pub fn of(rows: &[Row]) -> Self {
        let mut t = Totals { problems: rows.len(), ..Totals::default() };
        for r in rows {
            t.graded += r.problem.gold.is_some() as usize;
            t.latent_correct += (r.latent_correct() == Some(true)) as usize;
            t.cot_correct += (r.cot_correct() == Some(true)) as usize;
            t.latent_passes += r.latent.stats.forward_passes;
            t.cot_passes += r.cot.stats.forward_passes;
            t.latent_tokens += r.latent.stats.generated_tokens;
            t.cot_tokens += r.cot.stats.generated_tokens;
            t.latent_ms += r.latent_ms;
            t.cot_ms += r.cot_ms;
        }
        t
    }

    /// CoT forward passes per latent forward pass.
    pub fn pass_speedup(&self) -> f64 {
        self.cot_passes as f64 / self.latent_passes.max(1) as f64
    }

    /// CoT wall time per latent wall time.
    pub fn time_speedup(&self) -> f64 {
        self.cot_ms / self.latent_ms.max(1e-9)
    }
}

/// A demo run: the rows in problem order and their totals.
#[derive(Debug, Clone)]
pub struct Demo {
    pub rows: Vec<Row>,
    pub totals: Totals,
    /// The untimed warm-up (both modes on the first problem), milliseconds.
    pub warm_up_ms: f64,
}

/// Solves every problem in latent mode, then with CoT, after one untimed warm-up solve in each
/// mode (kernel compilation and allocation are not per-problem costs). `on_row` sees each row
/// as it is done. The model must have latent tokens (`kava.json`).
pub fn run(model: &Model, problems: &[Problem], opts: &SolveOptions, on_row: &mut dyn FnMut(&Row)) -> Result<Demo> {
    if model.latent.is_none() {
        return Err(Error::Input {
            what: "model".into(),
            problem: "it has no latent tokens (no kava.json): the demo needs a KaVa model, e.g. kava-train's `final/` directory".into(),
        });
    }
    let first = problems.first().ok_or_else(|| Error::Input { what: "problems".into(), problem: "none to solve".into() })?;
    let t = Instant::now();
    model.solve(&first.question, Mode::Latent, opts)?;
    model.solve(&first.question, Mode::Cot, opts)?;
    let warm_up_ms = ms(t);
    let mut rows = Vec::with_capacity(problems.len());
    for p in problems {
        let t = Instant::now();
        let latent = model.solve(&p.question, Mode::Latent, opts)?;
        let latent_ms = ms(t);
        let t = Instant::now();
        let cot = model.solve(&p.question, Mode::Cot, opts)?;
        let cot_ms = ms(t);
        let row = Row { problem: p.clone(), latent, cot, latent_ms, cot_ms };
        on_row(&row);
        rows.push(row);
    }
    Ok(Demo { totals: Totals::of(&rows), rows, warm_up_ms })
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// The model in a few words: layers, width, vocabulary, M, T and the compute dtype.
pub fn describe(model: &Model) -> String {
    let c = &model.transformer.config;
    let mut s = format!("{} layers, hidden {}, vocab {}", c.num_hidden_layers, c.hidden_size, c.vocab_size);
    if let Some(r) = &model.latent {
        s += &format!(", M {} latents, T {} iterations", r.config.num_latents, r.config.num_iterations);
    }
    s + &format!(", {:?}", model.transformer.device().settings().float_dtype)
}
