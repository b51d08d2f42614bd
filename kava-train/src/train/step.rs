//! One training step's loss (method.md §3) for a micro-batch of examples, for every method of
//! §3.1 through one code path: the teacher pass with captures (CE_teacher, the L_CODI targets and
//! the CoT cache), eviction of that cache through `shaders` (§4), the student through kava's own
//! [`LatentReasoner`] (init pass + T Jacobi passes) and its answer pass on the resulting cache
//! (CE_student, the student side of L_CODI and L_KV). Which parts run follows from the method.

use kava::burn::tensor::{Int, Tensor, TensorData};
use kava::latent::LatentReasoner;
use kava::model::{ids_tensor, Capture, KvCache, Output, Transformer};
use shaders::evict::{self, EvictConfig, EvictedTensors, Order, Pool};

use crate::config::{EvictMethod, Method, TrainConfig};
use crate::data::{
    nocot_seq, student_seq, teacher_seq, Batch, Example, Padded, SpecialIds, StudentSeq, TeacherSeq,
    Tokenize,
};
use crate::objective::{codi_loss, cross_entropy, kv_loss};

/// The loss of one micro-batch: the weighted total (what backpropagates) and its terms.
pub struct StepLoss {
    pub total: Tensor<1>,
    /// `[ce_student, ce_teacher, codi, kv]`, each 0 where the method has no such term.
    pub terms: Tensor<1>,
    /// Real (non-padding) tokens of the sequences of this micro-batch: teacher and student
    /// (question, `<bot>`, M latents, tail) each counted once.
    pub tokens: usize,
    /// Which eviction implementation ran (KaVa only).
    pub evict_path: Option<evict::Path>,
}

/// Names of [`StepLoss::terms`], in order.
pub const TERMS: [&str; 4] = ["ce_student", "ce_teacher", "codi", "kv"];

/// What a method runs.
#[derive(Clone, Copy, Debug)]
struct Plan {
    teacher: bool,
    student: bool,
    nocot: bool,
    codi: bool,
    kv: bool,
}

impl Plan {
    fn of(cfg: &TrainConfig) -> Self {
        let m = cfg.method;
        let latent = matches!(
            m,
            Method::Pause | Method::Codi | Method::Pccot | Method::Kava
        );
        Plan {
            teacher: matches!(m, Method::Cot | Method::Codi | Method::Pccot | Method::Kava),
            student: latent,
            nocot: m == Method::Nocot,
            codi: latent && m != Method::Pause && cfg.loss.alpha_codi > 0.0,
            kv: m == Method::Kava && cfg.loss.alpha_kv > 0.0,
        }
    }
}

/// Token-mean cross-entropy of `hidden` `[b, t, c]` at the scored positions, given per row as
/// `(position, target id)` pairs. Those rows are gathered first, so the LM head and the softmax
/// run on the scored positions alone rather than on every padded position — the logits are a
/// step's largest tensors (`[b, t, vocab]`), and the allocator sizes its pages after the largest
/// allocation. No scored position gives 0.
pub fn scored_ce(model: &Transformer, hidden: Tensor<3>, pairs: &[Vec<(usize, u32)>]) -> Tensor<1> {
    let [b, t, c] = hidden.dims();
    let device = hidden.device();
    let (idx, ids): (Vec<i64>, Vec<i64>) = pairs
        .iter()
        .enumerate()
        .flat_map(|(r, row)| row.iter().map(move |&(p, id)| ((r * t + p) as i64, id as i64)))
        .unzip();
    let n = idx.len();
    if n == 0 {
        return Tensor::zeros([1], &device);
    }
    let idx = Tensor::<1, Int>::from_data(TensorData::new(idx, [n]), &device);
    let rows = hidden.reshape([b * t, c]).select(0, idx).reshape([1, n, c]);
    let targets = Tensor::<2, Int>::from_data(TensorData::new(ids, [1, n]), &device);
    cross_entropy(model.logits(rows), targets, None)
}

/// Rows `x[r, pos[r], :]` of `[b, t, c]` → `[b, c]`.
fn at_positions(x: Tensor<3>, pos: &[usize]) -> Tensor<2> {
    let [b, _, c] = x.dims();
    let idx: Vec<i64> = pos.iter().map(|&p| p as i64).collect();
    let idx =
        Tensor::<3, Int>::from_data(TensorData::new(idx, [b, 1, 1]), &x.device()).expand([b, 1, c]);
    x.gather(1, idx).reshape([b, c])
}

/// `[b, x, t, d]` → `[b, x, w, d]`: per row the positions `start[r] + j` for `j < w`, clamped to
/// the row's last position `start[r] + len[r] − 1` (entries past a row's length are padding that
/// eviction never reads).
fn take_ranges(x: Tensor<4>, start: &[usize], len: &[usize], w: usize) -> Tensor<4> {
    let [b, h, _, d] = x.dims();
    let mut idx = Vec::with_capacity(b * w);
    for (&s, &l) in start.iter().zip(len) {
        for j in 0..w {
            idx.push((s + j.min(l.saturating_sub(1))) as i64);
        }
    }
    let idx = Tensor::<4, Int>::from_data(TensorData::new(idx, [b, 1, w, 1]), &x.device())
        .expand([b, h, w, d]);
    x.gather(2, idx)
}

/// The `L` per-layer tensors `[b, g, t, d]` as one `[b, L·g, t, d]` (layer-major).
fn stack_layers(xs: Vec<Tensor<4>>) -> Tensor<4> {
    Tensor::cat(xs, 1)
}

/// The eviction settings of `cfg` for `m` slots.
pub fn evict_config(cfg: &TrainConfig, m: usize) -> EvictConfig {
    EvictConfig {
        m,
        method: match cfg.evict.method {
            EvictMethod::Mix => evict::Method::Mix {
                lambda: cfg.evict.lambda,
            },
            EvictMethod::Crop => evict::Method::Crop,
        },
        pool: if cfg.evict.pool == "mean" {
            Pool::Mean
        } else {
            Pool::Max
        },
        order: if cfg.evict.order == "score" {
            Order::Score
        } else {
            Order::Position
        },
    }
}

/// The entries of `x` at eviction's kept positions: `x` `[b, x, n, d]`, `indices` `[b, x, m]`
/// (−1 for invalid slots, as [`evict::EvictedTensors::indices`]) → `[b, x, m, d]`, zero in
/// invalid slots like the evicted tensors themselves.
pub fn gather_slots(x: Tensor<4>, indices: Tensor<3, Int>) -> Tensor<4> {
    let [b, h, m] = indices.dims();
    let [_, _, n, d] = x.dims();
    let keep = indices.clone().greater_equal_elem(0).float().reshape([b, h, m, 1]);
    let idx = indices.clamp(0, n as i64 - 1).reshape([b, h, m, 1]).expand([b, h, m, d]);
    x.gather(2, idx) * keep
}

/// The compressed teacher cache (method.md §4) from the teacher pass `out` of `rows`, which
/// captured K/V and queries (and pre-RoPE keys with `loss.kv_pre_rope`) at every position:
/// `[b, L·g, M, d]` targets, layer-major. Eviction always scores with the post-RoPE keys and
/// queries (the attention's own geometry); with `loss.kv_pre_rope` the key targets are then
/// the pre-RoPE keys at the same kept positions (values are the same either way: RoPE never
/// touches them). The result is detached (a target).
pub fn teacher_kv_targets(
    out: Output,
    rows: &[TeacherSeq],
    cfg: &TrainConfig,
) -> (EvictedTensors, evict::Path) {
    let m = cfg.latent.num_latents;
    let cot_start: Vec<usize> = rows.iter().map(|r| r.trace.start).collect();
    let cot_len: Vec<usize> = rows.iter().map(|r| r.trace.len()).collect();
    let ans_start: Vec<usize> = rows.iter().map(|r| r.answer_prompt.start).collect();
    let ans_len: Vec<usize> = rows.iter().map(|r| r.answer.end - r.answer_prompt.start).collect();
    let n_max = cot_len.iter().copied().max().unwrap_or(0).max(1);
    let a_max = ans_len.iter().copied().max().unwrap_or(1);
    let k = take_ranges(stack_layers(out.keys), &cot_start, &cot_len, n_max);
    let v = take_ranges(stack_layers(out.values), &cot_start, &cot_len, n_max);
    let q = take_ranges(stack_layers(out.queries), &ans_start, &ans_len, a_max);
    let (mut e, path) = evict::evict(k, v, q, &cot_len, &ans_len, &evict_config(cfg, m));
    if cfg.loss.kv_pre_rope {
        assert!(
            !out.keys_pre_rope.is_empty(),
            "kv_pre_rope needs the teacher's pre-RoPE keys captured"
        );
        let k_pre = stack_layers(out.keys_pre_rope).detach();
        let k_pre = take_ranges(k_pre, &cot_start, &cot_len, n_max);
        e.k = gather_slots(k_pre, e.indices.clone());
    }
    (e, path)
}

/// Hidden states of layers 1..=L (the last post-norm) at one position per row.
fn layer_states(out: &Output, pos: &[usize]) -> Vec<Tensor<2>> {
    out.hidden_states[1..]
        .iter()
        .map(|h| at_positions(h.clone(), pos))
        .collect()
}

/// The rows `start .. start + len` of a forward pass's output (and of each capture).
fn output_rows(out: Output, start: usize, len: usize) -> Output {
    fn rows<const D: usize>(xs: Vec<Tensor<D>>, start: usize, len: usize) -> Vec<Tensor<D>> {
        xs.into_iter().map(|x| x.narrow(0, start, len)).collect()
    }
    Output {
        hidden: out.hidden.narrow(0, start, len),
        hidden_states: rows(out.hidden_states, start, len),
        keys: rows(out.keys, start, len),
        values: rows(out.values, start, len),
        queries: rows(out.queries, start, len),
        keys_pre_rope: rows(out.keys_pre_rope, start, len),
    }
}

/// Positions the longest sequence of `ex` occupies under `cfg.method` — the teacher's
/// `[BOS] Q "\n" C "\n" P A EOS`, the student's `[BOS] Q <bot>` + `m` latents + `<eot> P A EOS`,
/// or the no-CoT sequence, as the method runs them: what must fit the model's
/// `max_position_embeddings` (padding takes no positions).
pub fn positions_needed(cfg: &TrainConfig, tok: &dyn Tokenize, sp: &SpecialIds, m: usize, ex: &Example) -> usize {
    let plan = Plan::of(cfg);
    let mut n = 0;
    if plan.nocot {
        n = n.max(nocot_seq(tok, ex).ids.len());
    }
    if plan.student {
        let s = student_seq(tok, sp.eot, ex);
        n = n.max(s.question_ids.len() + 1 + m + s.tail_ids.len());
    }
    if plan.teacher {
        n = n.max(teacher_seq(tok, ex, cfg.data.keep_last_step).ids.len());
    }
    n
}

/// Sum of real tokens of a padded batch.
fn real_tokens(p: &Padded) -> usize {
    p.lens.iter().sum()
}

/// The loss of one micro-batch under `cfg.method`.
///
/// `model` and `reasoner` live on an autodiff device; `tok` tokenizes without special tokens.
///
/// # Panics
/// On an empty batch.
pub fn step_loss(
    model: &Transformer,
    reasoner: &LatentReasoner,
    cfg: &TrainConfig,
    examples: &[&Example],
    tok: &dyn Tokenize,
    sp: &SpecialIds,
) -> StepLoss {
    assert!(!examples.is_empty(), "empty micro-batch");
    let plan = Plan::of(cfg);
    let device = model.device();
    let zero = || Tensor::<1>::zeros([1], &device);
    let (mut ce_s, mut ce_t, mut codi, mut kv) = (zero(), zero(), zero(), zero());
    let mut tokens = 0;
    let mut evict_path = None;
    let layers = model.layers.len();

    if plan.nocot {
        let batch = Batch::padded_to(examples.iter().map(|e| nocot_seq(tok, e)).collect(), sp.pad, cfg.data.pad_multiple);
        tokens += real_tokens(&batch.padded);
        let out = model.forward(
            model.embed(ids_tensor(&batch.padded.ids, &device)),
            Some(&batch.padded.valid),
            &mut model.new_cache(examples.len()),
            &Capture::none(),
        );
        // The no-CoT CE is the "student" term of its method: the answer after a fixed cue.
        ce_s = scored_ce(model, out.hidden, &batch.ce_targets());
    }

    // The student's rows (its init pass may run inside the teacher's batch).
    let rows: Vec<StudentSeq> = if plan.student { examples.iter().map(|e| student_seq(tok, sp.eot, e)).collect() } else { vec![] };
    let questions: Vec<Vec<u32>> = rows.iter().map(|r| r.question_ids.clone()).collect();
    let m = reasoner.config.num_latents;
    let t_iters = reasoner.config.num_iterations;
    let merge_answer = t_iters >= 1 && !cfg.latent.separate_answer_pass;
    let merge_init = plan.teacher && plan.student && merge_answer && cfg.latent.merge_init_pass;
    // (the init pass's cache, the column of `<bot>`, its final hidden states at the M slots)
    let mut student_init: Option<(KvCache, usize, Tensor<3>)> = None;

    // Teacher: `[BOS] Q "\n" C "\n" P A EOS`, with the captures the other terms need.
    let mut teacher_states = vec![];
    let mut evicted = None;
    if plan.teacher {
        let batch = Batch::padded_to(
            examples
                .iter()
                .map(|e| teacher_seq(tok, e, cfg.data.keep_last_step))
                .collect(),
            sp.pad,
            cfg.data.pad_multiple,
        );
        tokens += real_tokens(&batch.padded);
        let capture = Capture {
            hidden_states: plan.codi,
            keys_values: plan.kv,
            queries: plan.kv,
            keys_pre_rope: plan.kv && cfg.loss.kv_pre_rope,
            positions: None,
        };
        let b = examples.len();
        let out = if merge_init {
            // The student's init rows `[BOS] Q (pad…) <bot> <lat>×M` as rows b..2b of the same
            // pass: every row attends only to itself, so this is the two passes in one launch
            // sequence; both kinds of row are right-padded to the wider of the two.
            let (init_ids, init_valid, q) = reasoner.init_rows(&questions, cfg.data.pad_multiple);
            let teacher_w = batch.padded.ids.first().map_or(0, Vec::len);
            let w = teacher_w.max((q + 1 + m).next_multiple_of(cfg.data.pad_multiple.max(1)));
            let widen = |ids: &[Vec<u32>], valid: &[Vec<bool>]| -> (Vec<Vec<u32>>, Vec<Vec<bool>>) {
                let ids = ids.iter().map(|r| r.iter().copied().chain(std::iter::repeat(sp.pad)).take(w).collect()).collect();
                let valid = valid.iter().map(|r| r.iter().copied().chain(std::iter::repeat(false)).take(w).collect()).collect();
                (ids, valid)
            };
            let (mut ids, mut valid) = widen(&batch.padded.ids, &batch.padded.valid);
            let (s_ids, s_valid) = widen(&init_ids, &init_valid);
            ids.extend(s_ids);
            valid.extend(s_valid);
            let mut cache = model.new_cache(2 * b);
            let out = model.forward(model.embed(ids_tensor(&ids, &device)), Some(&valid), &mut cache, &capture);
            let slots = out.hidden.clone().narrow(0, b, b).narrow(1, q, m);
            student_init = Some((cache.rows(b, b), q, slots));
            output_rows(out, 0, b)
        } else {
            let mut cache = model.new_cache(b);
            model.forward(
                model.embed(ids_tensor(&batch.padded.ids, &device)),
                Some(&batch.padded.valid),
                &mut cache,
                &capture,
            )
        };
        ce_t = scored_ce(model, out.hidden.clone(), &batch.ce_targets());
        if plan.codi {
            let pos: Vec<usize> = batch.rows.iter().map(|r| r.distill_pos).collect();
            teacher_states = layer_states(&out, &pos);
        }
        if plan.kv {
            let (e, path) = teacher_kv_targets(out, &batch.rows, cfg);
            evict_path = Some(path);
            evicted = Some(e);
        }
    }

    // Student: `[BOS] Q <bot>` + M latents by Jacobi, then `<eot> P A EOS` on that cache (the
    // last iteration and the tail in one pass unless `latent.separate_answer_pass` or T = 0;
    // the init pass already ran inside the teacher's with `latent.merge_init_pass`).
    if plan.student {
        tokens += questions.iter().map(|q| q.len() + 1 + m).sum::<usize>();
        let tails = crate::data::pad_right_to(
            &rows
                .iter()
                .map(|r| r.tail_ids.as_slice())
                .collect::<Vec<_>>(),
            sp.pad,
            cfg.data.pad_multiple,
        );
        tokens += real_tokens(&tails);
        let pairs: Vec<Vec<(usize, u32)>> = rows.iter().map(StudentSeq::ce_targets).collect();
        let distill: Vec<usize> = rows.iter().map(|r| r.distill_pos_in_tail).collect();
        // (the student's K/V at the M latent slots, its layer states at the distillation token)
        let (latent_kv, student_states) = if merge_answer {
            // Iteration T and the answer in one pass: `zᵀ⁻¹` then `<eot> P A EOS` (see
            // `LatentReasoner::reason_padded_open`). The captures keep the M latent columns and
            // the distillation token.
            // `loss.kv_every_iteration`: the K/V of iterations 1..T−1 too (their passes hold
            // only the M latent columns).
            let every = plan.kv && cfg.loss.kv_every_iteration;
            let iteration_capture = Capture {
                keys_values: every,
                keys_pre_rope: every && cfg.loss.kv_pre_rope,
                ..Capture::none()
            };
            let (open, earlier) = match student_init.take() {
                Some((cache, q, slots)) => reasoner.open_after_init_capturing(model, cache, q, slots, &iteration_capture),
                None => reasoner.reason_padded_open_capturing(model, &questions, cfg.data.pad_multiple, &iteration_capture),
            };
            let b = rows.len();
            let mut cols: Vec<i64> = Vec::new();
            for &d in &distill {
                if plan.kv {
                    cols.extend((0..m).map(|c| c as i64));
                }
                if plan.codi {
                    cols.push((m + d) as i64);
                }
            }
            let per_row = cols.len() / b;
            let positions = (per_row > 0).then(|| Tensor::<2, Int>::from_data(TensorData::new(cols, [b, per_row]), &device));
            let (_, out) = open.finish(
                model,
                model.embed(ids_tensor(&tails.ids, &device)),
                Some(&tails.valid),
                &Capture {
                    keys_values: plan.kv,
                    keys_pre_rope: plan.kv && cfg.loss.kv_pre_rope,
                    hidden_states: plan.codi,
                    queries: false,
                    positions,
                },
            );
            let shifted: Vec<Vec<(usize, u32)>> = pairs.iter().map(|p| p.iter().map(|&(i, t)| (i + m, t)).collect()).collect();
            ce_s = scored_ce(model, out.hidden.clone(), &shifted);
            let states = plan.codi.then(|| layer_states(&out, &vec![per_row - 1; b]));
            let first_m = |xs: Vec<Tensor<4>>| xs.into_iter().map(|x| x.narrow(2, 0, m)).collect::<Vec<_>>();
            let kv = plan.kv.then(|| {
                let mut kvs = Vec::with_capacity(earlier.len() + 1);
                if every {
                    for o in earlier {
                        let keys = if cfg.loss.kv_pre_rope { o.keys_pre_rope } else { o.keys };
                        kvs.push((stack_layers(keys), stack_layers(o.values)));
                    }
                }
                let keys = if cfg.loss.kv_pre_rope { out.keys_pre_rope.clone() } else { out.keys.clone() };
                kvs.push((stack_layers(first_m(keys)), stack_layers(first_m(out.values.clone()))));
                kvs
            });
            (kv, states)
        } else {
            let capture = Capture {
                keys_values: plan.kv,
                keys_pre_rope: plan.kv && cfg.loss.kv_pre_rope,
                ..Capture::none()
            };
            let latents = reasoner.reason_padded(model, &questions, &capture, cfg.data.pad_multiple);
            let mut cache = latents.cache;
            let out = model.forward(
                model.embed(ids_tensor(&tails.ids, &device)),
                Some(&tails.valid),
                &mut cache,
                &Capture {
                    hidden_states: plan.codi,
                    ..Capture::none()
                },
            );
            ce_s = scored_ce(model, out.hidden.clone(), &pairs);
            let states = plan.codi.then(|| layer_states(&out, &distill));
            // The student's keys in the same frame as the teacher targets (method.md §3).
            let kv = plan.kv.then(|| {
                let keys = if cfg.loss.kv_pre_rope { latents.captured.keys_pre_rope } else { latents.captured.keys };
                vec![(stack_layers(keys), stack_layers(latents.captured.values))]
            });
            (kv, states)
        };
        if let Some(student_states) = student_states {
            codi = codi_loss(&student_states, &teacher_states, cfg.loss.layerwise_std);
        }
        // One L_KV per captured iteration (iteration T's alone unless `loss.kv_every_iteration`),
        // averaged: every iteration has the same compressed teacher cache as its target.
        if let (Some(e), Some(kvs)) = (evicted, latent_kv) {
            let n = kvs.len();
            let terms = kvs.into_iter().map(|(k_s, v_s)| {
                kv_loss(k_s, v_s, e.k.clone(), e.v.clone(), e.mask.clone(), layers, cfg.loss.kv_rho, cfg.loss.kv_layerwise_std)
            });
            kv = terms.reduce(|a, b| a + b).expect("iteration T's K/V are always captured");
            if n > 1 {
                kv = kv.div_scalar(n as f64);
            }
        }
    }

    let (a1, a2) = (cfg.loss.alpha_codi as f64, cfg.loss.alpha_kv as f64);
    let total =
        ce_s.clone() + ce_t.clone() + codi.clone().mul_scalar(a1) + kv.clone().mul_scalar(a2);
    let terms = Tensor::cat(vec![ce_s, ce_t, codi, kv], 0).detach();
    StepLoss {
        total,
        terms,
        tokens,
        evict_path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gather_slots_takes_the_kept_positions_and_zeroes_invalid_slots() {
        let device = kava::burn::tensor::Device::flex();
        // b = 1, two heads, n = 3 positions, d = 2: entry (h, i) = [10h + i, −(10h + i)].
        let x: Vec<f32> = (0..2)
            .flat_map(|h| (0..3).flat_map(move |i| [(10 * h + i) as f32, -((10 * h + i) as f32)]))
            .collect();
        let x = Tensor::<4>::from_data(TensorData::new(x, [1, 2, 3, 2]), &device);
        let idx = Tensor::<3, Int>::from_data(TensorData::new(vec![2i64, 0, -1, 1, -1, -1], [1, 2, 3]), &device);
        let got = gather_slots(x, idx).into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
        assert_eq!(got, vec![2.0, -2.0, 0.0, -0.0, 0.0, 0.0, 11.0, -11.0, 0.0, 0.0, 0.0, 0.0]);
    }
}
