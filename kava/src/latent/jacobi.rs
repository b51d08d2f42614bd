//! `LatentReasoner`: the PCCoT-style Jacobi student of method.md §2, written once and used by
//! inference and by training (which runs it on an autodiff device with captures).
//!
//! Layout of a batch row (right padding sits *inside* the row, after the question, so every row
//! has `<bot>` and the latent slots in the same columns; positions skip the padding):
//! ```text
//! column:  0 .. q-1          q       q+1 .. q+M
//!          [BOS] Q (pad…)   <bot>    z_0 .. z_{M-1}
//! ```
//! * init pass: `<lat>` placeholders in the latent columns; `z⁰_j = proj(h_{q+j})`.
//! * iteration t = 1..T: truncate the cache to the prefix (columns ≤ q), feed `zᵗ⁻¹` in one
//!   pass; `zᵗ_0 = zᵗ⁻¹_0`, `zᵗ_j = proj(hᵗ_{j−1})`.
//! * the cache handed to the answer holds the prefix and the KV of iteration T (inputs `zᵀ⁻¹`).

use burn::module::Module;
use burn::tensor::{Int, Tensor, TensorData};

use super::projection::Projection;
use super::LatentConfig;
use crate::model::{ids_tensor, Capture, KvCache, Output, Transformer};

/// The latent-reasoning head: configuration plus the (optional) projection.
#[derive(Module, Debug)]
pub struct LatentReasoner {
    pub projection: Option<Projection>,
    #[module(skip)]
    pub config: LatentConfig,
}

/// The latent phase up to its last iteration ([`LatentReasoner::reason_padded_open`]).
#[derive(Debug)]
pub struct OpenLatents {
    /// The fixed prefix `[BOS] Q <bot>` only.
    pub cache: KvCache,
    /// Cache length of the prefix (padding included).
    pub prefix_len: usize,
    /// `[b, M, c]`: `zᵀ⁻¹`, the inputs of iteration T.
    pub inputs: Tensor<3>,
}

impl OpenLatents {
    /// Jacobi iteration T and the tokens after the latents (`<eot> P …`, `[b, n, c]`) as one
    /// pass on the prefix cache: the latent columns are `0..M` of the output, the tail's
    /// `M..M+n`. `tail_valid` marks the tail's real columns (`None`: all real).
    pub fn finish(self, model: &Transformer, tail: Tensor<3>, tail_valid: Option<&[Vec<bool>]>, capture: &Capture) -> (KvCache, Output) {
        let [b, m, _] = self.inputs.dims();
        let valid: Option<Vec<Vec<bool>>> = tail_valid.map(|v| v.iter().map(|row| std::iter::repeat_n(true, m).chain(row.iter().copied()).collect()).collect());
        debug_assert!(valid.as_ref().is_none_or(|v| v.len() == b));
        let mut cache = self.cache;
        let out = model.forward(Tensor::cat(vec![self.inputs, tail], 1), valid.as_deref(), &mut cache, capture);
        (cache, out)
    }
}

/// The state after the latent phase.
#[derive(Debug)]
pub struct Latents {
    /// Prefix plus the KV of the last pass over the latent slots: ready for `<eot> P`.
    pub cache: KvCache,
    /// Cache length of the fixed prefix (`[BOS] Q <bot>`, padding included).
    pub prefix_len: usize,
    /// `[b, M, c]`: the embeddings whose KV the cache holds (`zᵀ⁻¹`; the placeholders if T = 0).
    pub inputs: Tensor<3>,
    /// `[b, M, c]`: `zᵀ`, one more Jacobi step (unused by the answer; shows convergence).
    pub next: Tensor<3>,
    /// Captures of the last pass over the latent slots, at the M latent positions.
    pub captured: Output,
    /// Forward passes spent (1 + T).
    pub forward_passes: usize,
}

impl LatentReasoner {
    pub fn new(config: LatentConfig, projection: Option<Projection>) -> Self {
        Self { projection, config }
    }

    /// `proj(h)`, or `h` itself when the projection is off.
    pub fn project(&self, h: Tensor<3>) -> Tensor<3> {
        match &self.projection {
            Some(p) => p.forward(h),
            None => h,
        }
    }

    /// Runs the init pass and T Jacobi iterations for a batch of questions.
    ///
    /// `questions` are token ids **without** `<bot>` (BOS included when the tokenizer adds
    /// one), unpadded; `capture` selects what to record of the last pass over the latent
    /// slots (its positions are set here to the M latent slots).
    ///
    /// # Panics
    /// If a question is empty or `M` is zero.
    pub fn reason(&self, model: &Transformer, questions: &[Vec<u32>], capture: &Capture) -> Latents {
        self.reason_padded(model, questions, capture, 1)
    }

    /// [`reason`](Self::reason) with the question columns padded up to a multiple of
    /// `multiple` (≥ 1): the same latents (padding is masked and skipped by the positions),
    /// fewer distinct tensor shapes for a GPU backend to compile and tune kernels for when
    /// training on batches of varying length.
    pub fn reason_padded(&self, model: &Transformer, questions: &[Vec<u32>], capture: &Capture, multiple: usize) -> Latents {
        let t_iters = self.config.num_iterations;
        let (mut cache, q, placeholders, out) = self.init_pass(model, questions, capture, multiple);
        let prefix_len = q + 1;
        // z⁰_j = proj(h_{q+j}): <bot> and the first M−1 placeholders.
        let mut z = self.project(out.hidden.clone().narrow(1, q, self.config.num_latents));
        let mut inputs = placeholders;
        let mut captured = out;
        for it in 1..=t_iters {
            let cap = if it == t_iters { capture.clone() } else { Capture::none() };
            let (out, next) = self.iterate(model, &mut cache, prefix_len, z.clone(), &cap);
            inputs = z;
            z = next;
            captured = out;
        }
        Latents { cache, prefix_len, inputs, next: z, captured, forward_passes: 1 + t_iters }
    }

    /// The latent phase with its last Jacobi iteration left to the caller (training): the init
    /// pass and iterations 1..T−1; returns the cache cut to the prefix and `zᵀ⁻¹`, the inputs of
    /// iteration T. One pass over `zᵀ⁻¹` followed by the answer tokens on that cache *is*
    /// iteration T and then the answer pass: attention is causal, so the latents of that pass
    /// never see the answer, and the answer reads their K/V exactly as it would from the cache
    /// [`reason_padded`](Self::reason_padded) hands over — one forward (and backward) pass fewer
    /// per training step.
    ///
    /// # Panics
    /// If T = 0 (there is no iteration to merge), a question is empty or `M` is zero.
    pub fn reason_padded_open(&self, model: &Transformer, questions: &[Vec<u32>], multiple: usize) -> OpenLatents {
        self.reason_padded_open_capturing(model, questions, multiple, &Capture::none()).0
    }

    /// [`reason_padded_open`](Self::reason_padded_open), with `capture` recorded of each
    /// iteration 1..T−1 (their passes hold only the M latent columns): one output per iteration.
    pub fn reason_padded_open_capturing(&self, model: &Transformer, questions: &[Vec<u32>], multiple: usize, capture: &Capture) -> (OpenLatents, Vec<Output>) {
        let (cache, q, _, out) = self.init_pass(model, questions, &Capture::none(), multiple);
        self.open_after_init_capturing(model, cache, q, out.hidden.narrow(1, q, self.config.num_latents), capture)
    }

    /// The init pass `[BOS] Q (pad…) <bot> <lat>×M`: returns the cache, `q` (the column of
    /// `<bot>`), the placeholder embeddings and the pass's output (captured at the latent slots
    /// if T = 0).
    fn init_pass(&self, model: &Transformer, questions: &[Vec<u32>], capture: &Capture, multiple: usize) -> (KvCache, usize, Tensor<3>, Output) {
        let (m, t_iters) = (self.config.num_latents, self.config.num_iterations);
        let device = model.device();
        let b = questions.len();
        let (ids, valid, q) = self.init_rows(questions, multiple);
        let embeds = model.embed(ids_tensor(&ids, &device));
        let placeholders = embeds.clone().narrow(1, q + 1, m);
        let mut cache = model.new_cache(b);
        let init_capture = if t_iters == 0 { at_columns(capture, b, q + 1, m, &device) } else { Capture::none() };
        let out = model.forward(embeds, Some(&valid), &mut cache, &init_capture);
        (cache, q, placeholders, out)
    }

    /// The rows of the init pass, `[BOS] Q (pad…) <bot> <lat>×M` with the question columns
    /// padded to `q`, a multiple of `multiple`: ids, validity, and `q` (the column of `<bot>`).
    ///
    /// # Panics
    /// If a question is empty or `M` is zero.
    pub fn init_rows(&self, questions: &[Vec<u32>], multiple: usize) -> (Vec<Vec<u32>>, Vec<Vec<bool>>, usize) {
        let cfg = &self.config;
        let m = cfg.num_latents;
        assert!(m > 0, "the number of latents must be positive");
        assert!(questions.iter().all(|q| !q.is_empty()), "empty question");
        let q = questions.iter().map(Vec::len).max().unwrap_or(0).next_multiple_of(multiple.max(1));
        let mut ids = Vec::with_capacity(questions.len());
        let mut valid = Vec::with_capacity(questions.len());
        for question in questions {
            let mut row = question.clone();
            row.resize(q, cfg.pad_id);
            row.push(cfg.bot_id);
            row.extend(std::iter::repeat_n(cfg.lat_id, m));
            ids.push(row);
            valid.push((0..q + 1 + m).map(|i| i < question.len() || i >= q).collect::<Vec<bool>>());
        }
        (ids, valid, q)
    }

    /// [`reason_padded_open`](Self::reason_padded_open) from an init pass the caller ran on the
    /// rows of [`init_rows`](Self::init_rows) (possibly inside a larger batch, further columns
    /// padding): `cache` holds that pass (its prefix is kept), `slots` is `[b, M, c]`, its
    /// final hidden states at columns `q .. q+M`.
    pub fn open_after_init(&self, model: &Transformer, cache: KvCache, q: usize, slots: Tensor<3>) -> OpenLatents {
        self.open_after_init_capturing(model, cache, q, slots, &Capture::none()).0
    }

    /// [`open_after_init`](Self::open_after_init), with `capture` recorded of each iteration
    /// 1..T−1 (one output per iteration, in order; none if T = 1).
    pub fn open_after_init_capturing(&self, model: &Transformer, mut cache: KvCache, q: usize, slots: Tensor<3>, capture: &Capture) -> (OpenLatents, Vec<Output>) {
        let t_iters = self.config.num_iterations;
        assert!(t_iters >= 1, "open_after_init needs T ≥ 1");
        let prefix_len = q + 1;
        let mut z = self.project(slots);
        let mut outputs = Vec::with_capacity(t_iters - 1);
        // Each iteration cuts the cache back to the prefix itself; so does the end.
        for _ in 1..t_iters {
            let (out, next) = self.iterate(model, &mut cache, prefix_len, z, capture);
            outputs.push(out);
            z = next;
        }
        cache.truncate(prefix_len);
        (OpenLatents { cache, prefix_len, inputs: z }, outputs)
    }

    /// One Jacobi iteration: the cache cut to the prefix, `z` fed in one pass; returns the pass's
    /// output and `zᵗ` (`zᵗ_0 = zᵗ⁻¹_0`, `zᵗ_j = proj(hᵗ_{j−1})`).
    fn iterate(&self, model: &Transformer, cache: &mut KvCache, prefix_len: usize, z: Tensor<3>, capture: &Capture) -> (Output, Tensor<3>) {
        let [b, m, _] = z.dims();
        cache.truncate(prefix_len);
        let out = model.forward(z.clone(), Some(&vec![vec![true; m]; b]), cache, capture);
        let shifted = self.project(out.hidden.clone().narrow(1, 0, m - 1));
        let next = Tensor::cat(vec![z.narrow(1, 0, 1), shifted], 1);
        (out, next)
    }
}

/// `capture` restricted to `m` consecutive columns starting at `start`.
fn at_columns(capture: &Capture, b: usize, start: usize, m: usize, device: &burn::tensor::Device) -> Capture {
    let idx: Vec<i64> = (0..b).flat_map(|_| (start..start + m).map(|c| c as i64)).collect();
    Capture { positions: Some(Tensor::<2, Int>::from_data(TensorData::new(idx, [b, m]), device)), ..capture.clone() }
}
