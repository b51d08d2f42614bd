//! Answering questions in the three modes of the paper (method.md §1.3, §2, §5) with the
//! efficiency statistics it reports: forward passes, tokens, KV-cache size and wall time.
//!
//! Prompts are assembled from separately tokenized pieces so that segment boundaries are exact:
//! * latent: `[BOS] Q <bot> z₁..z_M` (Jacobi) then `<eot> P`, up to 16 answer tokens;
//! * CoT:    `[BOS] Q "\n"`, up to 256 tokens (trace, `P`, answer);
//! * No-CoT: `[BOS] Q "\n" P`, up to 16 answer tokens.
//!
//! **Forward passes** count the model calls actually made. Latent: `T + n_answer` for T ≥ 1 —
//! the placeholder pass, iterations 1..T−1, then **one** pass that is Jacobi iteration T *and*
//! `<eot> P` (it emits the first answer token). Attention is causal, so the latent slots of that
//! pass never see `<eot> P` and `<eot> P` reads their K/V exactly as from the cache of a separate
//! iteration-T pass: the same answer with one pass fewer than method.md §2's `1 + T + n_answer`,
//! which [`SolveOptions::separate_answer_pass`] restores (and which T = 0 always takes). CoT:
//! `n_generated` — the prompt pass emits the first token, by the same convention; method.md §2
//! writes `1 + n_cot + n_answer`, which counts that prompt pass once more than it runs. Batched
//! solving counts, per question, the passes it took part in.

use std::str::FromStr;

use burn::tensor::Tensor;
use web_time::{Duration, Instant};

use crate::answer::parse_answer;
use crate::api::Model;
use crate::error::{Error, Result};
use crate::generate::{decode_greedy, last_logits, prefill, read_ids, GenerateOptions, Generation};
use crate::latent::Latents;
use crate::model::{ids_tensor, Capture};

/// How a question is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// M latent tokens refined by T Jacobi iterations, then the answer.
    Latent,
    /// A full chain of thought, then the answer.
    Cot,
    /// The answer directly.
    NoCot,
}

impl FromStr for Mode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "latent" => Ok(Mode::Latent),
            "cot" => Ok(Mode::Cot),
            "nocot" => Ok(Mode::NoCot),
            other => Err(Error::Input { what: format!("mode `{other}`"), problem: "expected latent, cot or nocot".into() }),
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::Latent => "latent",
            Mode::Cot => "cot",
            Mode::NoCot => "nocot",
        })
    }
}

/// Efficiency of one answer (per question, also in a batch).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    pub forward_passes: usize,
    /// Tokens of the prompt (BOS, question, and for latent mode `<bot>`; not the latents).
    pub prompt_tokens: usize,
    /// Tokens the model generated (CoT trace included).
    pub generated_tokens: usize,
    /// K/V vector pairs the cache holds at the end (every token fed to the model; the last
    /// generated token is never fed): cached tokens × layers × KV heads.
    pub kv_entries: usize,
    /// Bytes of those K and V vectors.
    pub kv_bytes: usize,
    /// Prompt prefill (latent mode: the placeholder pass).
    pub prefill_time: Duration,
    /// The T Jacobi iterations (latent mode only).
    pub latent_time: Duration,
    /// Answer (and trace) decoding.
    pub decode_time: Duration,
}

impl Stats {
    pub fn total_time(&self) -> Duration {
        self.prefill_time + self.latent_time + self.decode_time
    }
}

/// One answered question.
#[derive(Debug, Clone)]
pub struct Solution {
    pub mode: Mode,
    /// Generated text, special tokens removed.
    pub text: String,
    /// The parsed numeric answer (method.md §5).
    pub answer: Option<f64>,
    pub stats: Stats,
    /// Latent mode with inspection on: per latent slot, its nearest vocabulary tokens and logits.
    pub latent_tokens: Vec<Vec<(String, f32)>>,
}

/// Limits of a solve.
#[derive(Debug, Clone)]
pub struct SolveOptions {
    /// Tokens after `<eot> P` (latent) or `P` (No-CoT).
    pub max_answer_tokens: usize,
    /// Tokens of a CoT answer (trace included).
    pub max_cot_tokens: usize,
    /// Nearest tokens to show per latent slot (0 = off).
    pub show_latents: usize,
    /// Latent mode: run Jacobi iteration T and `<eot> P` as two passes (method.md §2's count,
    /// `1 + T + n_answer`) instead of one. The answer is the same either way (see the module
    /// docs); this is the reference route, for comparing with the paper's pass counts.
    pub separate_answer_pass: bool,
}

impl Default for SolveOptions {
    fn default() -> Self {
        Self { max_answer_tokens: 16, max_cot_tokens: 256, show_latents: 0, separate_answer_pass: false }
    }
}

impl Model {
    /// Ids of `[BOS] Q`, tokenized on its own.
    fn question_ids(&self, question: &str) -> Result<Vec<u32>> {
        let q = question.trim();
        if q.is_empty() {
            return Err(Error::Input { what: "question".into(), problem: "empty".into() });
        }
        let mut ids: Vec<u32> = self.tokenizer.bos_added().into_iter().collect();
        ids.extend(self.tokenizer.encode(q, false)?);
        Ok(ids)
    }

    fn answer_prompt(&self) -> String {
        self.latent.as_ref().map_or(crate::latent::ANSWER_PROMPT.to_string(), |r| r.config.answer_prompt.clone())
    }

    /// Positions a question of `q_len` tokens (`[BOS] Q`) occupies in `mode` under `opts`: its
    /// prompt plus the most tokens decoding may add — what must fit the model's
    /// `max_position_embeddings` — and how they add up, for messages. `newline` and `prompt` are
    /// the lengths of `"\n"` and of the answer prompt `P`.
    fn positions(&self, q_len: usize, mode: Mode, opts: &SolveOptions, newline: usize, prompt: usize) -> Result<(usize, String)> {
        Ok(match mode {
            Mode::Latent => {
                let m = self.latent.as_ref().map_or(0, |r| r.config.num_latents);
                let n = q_len + 1 + m + 1 + prompt + opts.max_answer_tokens;
                (n, format!("{q_len} question tokens + <bot> + {m} latents + <eot> + {prompt} answer-prompt tokens + up to {} answer tokens", opts.max_answer_tokens))
            }
            Mode::Cot => {
                let n = q_len + newline + opts.max_cot_tokens;
                (n, format!("{q_len} question tokens + {newline} newline + up to {} chain-of-thought tokens", opts.max_cot_tokens))
            }
            Mode::NoCot => {
                let n = q_len + newline + prompt + opts.max_answer_tokens;
                (n, format!("{q_len} question tokens + {newline} newline + {prompt} answer-prompt tokens + up to {} answer tokens", opts.max_answer_tokens))
            }
        })
    }

    /// The positions `question` needs in `mode` under `opts` (prompt plus the decoding budget)
    /// and how they add up; [`Model::solve_batch`] refuses a question whose count exceeds the
    /// model's `max_position_embeddings` with [`Error::Context`]. Evaluation checks every record
    /// with it before solving any.
    pub fn question_positions(&self, question: &str, mode: Mode, opts: &SolveOptions) -> Result<(usize, String)> {
        let q = self.question_ids(question)?;
        let newline = self.tokenizer.encode("\n", false)?.len();
        let prompt = self.tokenizer.encode(&self.answer_prompt(), false)?.len();
        self.positions(q.len(), mode, opts, newline, prompt)
    }

    /// Refuses a batch that does not fit: a question whose prompt plus decoding budget exceeds
    /// the context (named by its place in the batch), an id outside the vocabulary, or a batch
    /// whose estimated memory exceeds the budget (`crate::limits`).
    fn check_fits(&self, q_ids: &[Vec<u32>], mode: Mode, opts: &SolveOptions, newline: &[u32], prompt: &[u32]) -> Result<()> {
        let config = &self.transformer.config;
        let what = |i: usize| if q_ids.len() == 1 { "question".to_string() } else { format!("question {} of the batch", i + 1) };
        let piece = |ids: &[u32]| vec![ids.to_vec()];
        crate::limits::check_ids(config, "question", q_ids)?;
        crate::limits::check_ids(config, "answer prompt", &piece(prompt))?;
        crate::limits::check_ids(config, "newline", &piece(newline))?;
        for (i, q) in q_ids.iter().enumerate() {
            let (n, detail) = self.positions(q.len(), mode, opts, newline.len(), prompt.len())?;
            crate::limits::check_context(config, &what(i), n, &detail)?;
        }
        let q_max = q_ids.iter().map(Vec::len).max().unwrap_or(0);
        let (slots, detail) = self.positions(q_max, mode, opts, newline.len(), prompt.len())?;
        let budget = if mode == Mode::Cot { opts.max_cot_tokens } else { opts.max_answer_tokens };
        let m = self.latent.as_ref().map_or(1, |r| r.config.num_latents);
        let workload = crate::limits::Workload {
            batch: q_ids.len(),
            positions: slots,
            slots,
            widest_pass: slots.saturating_sub(budget).max(1),
            logit_rows: if mode == Mode::Latent && opts.show_latents > 0 { m } else { 1 },
            detail,
        };
        workload.check(config, &what(0))
    }

    /// Answers one question. See [`Model::solve_batch`].
    #[cfg(not(target_family = "wasm"))]
    pub fn solve(&self, question: &str, mode: Mode, opts: &SolveOptions) -> Result<Solution> {
        Ok(self.solve_batch(&[question], mode, opts, &mut |_, _| {})?.remove(0))
    }

    /// Answers a batch of questions together (right-padded, each row computing what it would
    /// alone). `on_token(row, id)` streams generated ids. Blocking: native only.
    #[cfg(not(target_family = "wasm"))]
    pub fn solve_batch(
        &self,
        questions: &[&str],
        mode: Mode,
        opts: &SolveOptions,
        on_token: &mut dyn FnMut(usize, u32),
    ) -> Result<Vec<Solution>> {
        crate::generate::block_on(self.solve_batch_async(questions, mode, opts, on_token))
    }

    /// The async form of [`Model::solve_batch`] (the only one usable in a browser).
    pub async fn solve_batch_async(
        &self,
        questions: &[&str],
        mode: Mode,
        opts: &SolveOptions,
        on_token: &mut dyn FnMut(usize, u32),
    ) -> Result<Vec<Solution>> {
        if questions.is_empty() {
            return Ok(vec![]);
        }
        let m = &self.transformer;
        let device = m.device();
        let b = questions.len();
        let q_ids: Vec<Vec<u32>> = questions.iter().map(|q| self.question_ids(q)).collect::<Result<_>>()?;
        let newline = self.tokenizer.encode("\n", false)?;
        let p_ids = self.tokenizer.encode(&self.answer_prompt(), false)?;
        if mode == Mode::Latent && self.latent.is_none() {
            return Err(Error::Input {
                what: "mode latent".into(),
                problem: "this model has no latent tokens (no kava.json); train or attach them first".into(),
            });
        }
        self.check_fits(&q_ids, mode, opts, &newline, &p_ids)?;
        let mut stats = vec![Stats::default(); b];
        let mut decode = GenerateOptions {
            max_new_tokens: opts.max_answer_tokens,
            stop_tokens: self.stop_tokens.clone(),
            suppress: self.suppressed(),
        };
        let mut latent_tokens = vec![vec![]; b];
        let t0 = Instant::now();
        let (mut cache, logits, fixed_passes) = match mode {
            Mode::Latent => {
                let reasoner = self.latent.as_ref().ok_or_else(|| Error::Input {
                    what: "mode latent".into(),
                    problem: "this model has no latent tokens (no kava.json); train or attach them first".into(),
                })?;
                let t_iters = reasoner.config.num_iterations;
                let merged = t_iters >= 1 && !opts.separate_answer_pass;
                // Merged: the cache holds the prefix only and `inputs` (`zᵀ⁻¹`) go into the
                // answer pass; separate: the cache already holds iteration T's pass over them.
                // The placeholder pass and the iterations are not separable in time without a
                // sync each; the whole latent phase (up to `<eot> P`) is reported as latent time.
                for (s, q) in stats.iter_mut().zip(&q_ids) {
                    s.prompt_tokens = q.len() + 1;
                }
                let mut tail = vec![reasoner.config.eot_id];
                tail.extend(&p_ids);
                let tail_embeds = m.embed(ids_tensor(&vec![tail.clone(); b], &device));
                // Merged: the placeholder pass, iterations 1..T−1, then iteration T with `<eot> P`
                // (`OpenLatents::finish`); separate: the tail on the cache of iteration T.
                let (cache, out, inputs, passes, width) = if merged {
                    let open = reasoner.reason_padded_open(m, &q_ids, 1);
                    let (inputs, slots) = (open.inputs.clone(), reasoner.config.num_latents);
                    let (cache, out) = open.finish(m, tail_embeds, None, &Capture::none());
                    (cache, out, inputs, t_iters + 1, slots + tail.len())
                } else {
                    let Latents { mut cache, inputs, forward_passes, .. } = reasoner.reason(m, &q_ids, &Capture::none());
                    let out = m.forward(tail_embeds, None, &mut cache, &Capture::none());
                    (cache, out, inputs, forward_passes + 1, tail.len())
                };
                if opts.show_latents > 0 {
                    latent_tokens = self.nearest_tokens(inputs, opts.show_latents).await?;
                }
                let logits = last_logits(m, out.hidden, &vec![width; b]);
                (cache, logits, passes)
            }
            Mode::Cot | Mode::NoCot => {
                let prompts: Vec<Vec<u32>> = q_ids
                    .iter()
                    .map(|q| {
                        let mut p = q.clone();
                        p.extend(&newline);
                        if mode == Mode::NoCot {
                            p.extend(&p_ids);
                        }
                        p
                    })
                    .collect();
                if mode == Mode::Cot {
                    decode.max_new_tokens = opts.max_cot_tokens;
                }
                let mut cache = m.new_cache(b);
                let logits = prefill(m, &mut cache, &prompts);
                for (s, p) in stats.iter_mut().zip(&prompts) {
                    s.prompt_tokens = p.len();
                }
                (cache, logits, 1)
            }
        };
        // GPU backends queue work: one tiny `[b]` readback waits for the prefill to finish, so
        // the prefill (or latent) time below is execution time, not submission time.
        read_ids(logits.clone().argmax(1)).await?;
        let prefill_time = t0.elapsed();
        for s in &mut stats {
            if mode == Mode::Latent {
                s.latent_time = prefill_time;
            } else {
                s.prefill_time = prefill_time;
            }
        }
        let (rows, dstats) = decode_greedy(m, &mut cache, logits, &decode, on_token).await?;
        let decode_time = dstats.time;
        let g = m.config.num_key_value_heads;
        let layers = m.config.num_hidden_layers;
        let bytes_per = 2 * m.config.head_dim * dtype_bytes(&device);
        let mut out = Vec::with_capacity(b);
        for (i, (row, mut s)) in rows.into_iter().zip(stats).enumerate() {
            let Generation { ids, .. } = row;
            // Passes: the fixed ones, then one for every emitted token after the first.
            s.forward_passes = fixed_passes + ids.len().saturating_sub(1);
            s.generated_tokens = ids.len();
            s.kv_entries = cache.row_tokens(i) * layers * g;
            s.kv_bytes = s.kv_entries * bytes_per;
            s.decode_time = decode_time;
            let text = self.tokenizer.decode(&ids, true)?;
            out.push(Solution { mode, answer: parse_answer(&text), text, stats: s, latent_tokens: std::mem::take(&mut latent_tokens[i]) });
        }
        Ok(out)
    }

    /// Per latent slot, the `k` vocabulary tokens whose LM-head logits are highest for that
    /// slot's latent vector (the paper's way of reading latents), special tokens excluded.
    async fn nearest_tokens(&self, latents: Tensor<3>, k: usize) -> Result<Vec<Vec<Vec<(String, f32)>>>> {
        let m = &self.transformer;
        let [b, slots, _] = latents.dims();
        let v = m.config.vocab_size;
        let mut logits = m.logits(latents);
        for id in self.suppressed() {
            logits = logits.slice_fill([0..b, 0..slots, id as usize..id as usize + 1], -1.0e9);
        }
        let k = k.min(v);
        let (vals, idx) = logits.topk_with_indices(k, 2);
        let ids = read_ids(idx).await?;
        let vals = vals
            .into_data_async()
            .await
            .map_err(|e| Error::Readback { what: "latent logits", problem: format!("{e:?}") })?
            .iter::<f32>()
            .collect::<Vec<f32>>();
        let mut out = vec![vec![Vec::with_capacity(k); slots]; b];
        for (n, (&id, &val)) in ids.iter().zip(&vals).enumerate() {
            let (row, slot) = (n / (slots * k), (n / k) % slots);
            let token = self.tokenizer.decode(&[id], false).unwrap_or_else(|_| format!("<{id}>"));
            out[row][slot].push((token, val));
        }
        Ok(out)
    }
}

fn dtype_bytes(device: &burn::tensor::Device) -> usize {
    burn::tensor::DType::from(device.settings().float_dtype).size()
}
