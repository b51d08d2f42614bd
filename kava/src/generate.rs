//! Greedy decoding on the KV cache, batched and padding-correct, with stop tokens, suppressed
//! ids (the latent special tokens) and a per-token callback for streaming. The loop is `async`
//! because browsers only allow asynchronous tensor reads; native callers use the blocking
//! wrappers. One loop serves both.

use burn::tensor::{Device, Int, Tensor, TensorData};
use web_time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::model::{ids_tensor, Capture, KvCache, Transformer};

/// Decoding limits and token rules.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    pub max_new_tokens: usize,
    /// Generation of a row ends after it emits one of these (the stop token is kept in `ids`).
    pub stop_tokens: Vec<u32>,
    /// Ids that are never emitted (their logits are masked).
    pub suppress: Vec<u32>,
}

impl GenerateOptions {
    pub fn new(max_new_tokens: usize) -> Self {
        Self { max_new_tokens, stop_tokens: vec![], suppress: vec![] }
    }
}

/// What one row produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Generation {
    /// Generated ids (a final stop token included).
    pub ids: Vec<u32>,
    /// Whether a stop token ended it (else the length limit did).
    pub stopped: bool,
}

/// Timings and pass counts of a decode.
#[derive(Debug, Clone, Default)]
pub struct DecodeStats {
    /// Forward passes after the prefill (one per generated token except the first, which the
    /// prefill's logits give).
    pub forward_passes: usize,
    pub time: Duration,
}

/// Reads `[b]` or `[b, 1]` ids back to the host (asynchronously: required in browsers).
pub async fn read_ids<const D: usize>(ids: Tensor<D, Int>) -> Result<Vec<u32>> {
    let data = ids
        .into_data_async()
        .await
        .map_err(|e| Error::Readback { what: "token ids", problem: format!("{e:?}") })?;
    Ok(data.iter::<i64>().map(|x| x as u32).collect())
}

/// `[v]` additive bias: 0, or a large negative number on suppressed ids.
fn suppress_bias(vocab: usize, suppress: &[u32], device: &Device) -> Option<Tensor<1>> {
    if suppress.is_empty() {
        return None;
    }
    let mut bias = vec![0f32; vocab];
    for &id in suppress {
        if let Some(b) = bias.get_mut(id as usize) {
            *b = -1.0e9;
        }
    }
    Some(Tensor::<1>::from_data(TensorData::new(bias, [vocab]), device))
}

/// Greedy argmax of `[b, v]` logits after masking suppressed ids.
fn pick(logits: Tensor<2>, bias: &Option<Tensor<1>>) -> Tensor<2, Int> {
    let logits = match bias {
        Some(bias) => logits + bias.clone().unsqueeze::<2>(),
        None => logits,
    };
    logits.argmax(1)
}

/// Greedy decoding of `b` rows from `logits` (`[b, v]`, the prediction for each row's next
/// token) on `cache`. Finished rows are fed padding that no other row can see.
/// `on_token(row, id)` is called for every emitted token, in order.
pub async fn decode_greedy(
    model: &Transformer,
    cache: &mut KvCache,
    logits: Tensor<2>,
    opts: &GenerateOptions,
    on_token: &mut dyn FnMut(usize, u32),
) -> Result<(Vec<Generation>, DecodeStats)> {
    let start = Instant::now();
    let [b, v] = logits.dims();
    let device = logits.device();
    let bias = suppress_bias(v, &opts.suppress, &device);
    let mut rows = vec![Generation::default(); b];
    let mut stats = DecodeStats::default();
    let mut next = read_ids(pick(logits, &bias)).await?;
    for step in 0..opts.max_new_tokens {
        // The token each still-running row feeds back; `None` for finished rows.
        let mut feed: Vec<Option<u32>> = vec![None; b];
        for (i, row) in rows.iter_mut().enumerate() {
            if row.stopped {
                continue;
            }
            let id = next[i];
            row.ids.push(id);
            on_token(i, id);
            if opts.stop_tokens.contains(&id) {
                row.stopped = true;
            } else {
                feed[i] = Some(id);
            }
        }
        if feed.iter().all(Option::is_none) || step + 1 == opts.max_new_tokens {
            break;
        }
        let ids: Vec<Vec<u32>> = feed.iter().map(|f| vec![f.unwrap_or(0)]).collect();
        let valid: Vec<Vec<bool>> = feed.iter().map(|f| vec![f.is_some()]).collect();
        let x = model.embed(ids_tensor(&ids, &device));
        let out = model.forward(x, Some(&valid), cache, &Capture::none());
        stats.forward_passes += 1;
        let logits = model.logits(out.hidden).reshape([b, v]);
        next = read_ids(pick(logits, &bias)).await?;
    }
    stats.time = start.elapsed();
    Ok((rows, stats))
}

/// Prefill of right-padded prompts: returns the next-token logits of each row, `[b, v]`.
///
/// # Panics
/// If a prompt is empty.
pub fn prefill(model: &Transformer, cache: &mut KvCache, prompts: &[Vec<u32>]) -> Tensor<2> {
    let device = model.device();
    let t = prompts.iter().map(Vec::len).max().unwrap_or(0);
    assert!(prompts.iter().all(|p| !p.is_empty()), "empty prompt");
    let ids: Vec<Vec<u32>> = prompts.iter().map(|p| pad_to(p, t, 0)).collect();
    let valid: Vec<Vec<bool>> = prompts.iter().map(|p| (0..t).map(|i| i < p.len()).collect()).collect();
    let out = model.forward(model.embed(ids_tensor(&ids, &device)), Some(&valid), cache, &Capture::none());
    last_logits(model, out.hidden, &prompts.iter().map(Vec::len).collect::<Vec<_>>())
}

/// Logits at position `lens[i] - 1` of each row of `hidden` (`[b, t, c]` → `[b, v]`).
pub fn last_logits(model: &Transformer, hidden: Tensor<3>, lens: &[usize]) -> Tensor<2> {
    let [b, _, c] = hidden.dims();
    let idx: Vec<i64> = lens.iter().map(|&n| n as i64 - 1).collect();
    let idx = Tensor::<1, Int>::from_data(TensorData::new(idx, [b]), &hidden.device());
    let last = hidden.gather(1, idx.reshape([b, 1, 1]).expand([b, 1, c])); // [b, 1, c]
    let logits = model.logits(last);
    let v = logits.dims()[2];
    logits.reshape([b, v])
}

/// `row` right-padded with `pad` to length `n`.
pub fn pad_to(row: &[u32], n: usize, pad: u32) -> Vec<u32> {
    let mut r = row.to_vec();
    r.resize(n.max(row.len()), pad);
    r
}

/// Refuses prompts that cannot run: none, an empty one, an id outside the vocabulary, or a
/// prompt whose length plus `max_new_tokens` exceeds the model's `max_position_embeddings` (or
/// a batch beyond the memory budget), before anything is allocated (see `crate::limits`).
pub fn check_prompts(model: &Transformer, prompts: &[Vec<u32>], max_new_tokens: usize) -> Result<()> {
    let what = |i: usize| if prompts.len() == 1 { "prompt".to_string() } else { format!("prompt {i}") };
    if prompts.is_empty() {
        return Err(Error::Input { what: "prompts".into(), problem: "none given".into() });
    }
    if let Some(i) = prompts.iter().position(Vec::is_empty) {
        return Err(Error::Input { what: what(i), problem: "empty".into() });
    }
    crate::limits::check_ids(&model.config, "prompt", prompts)?;
    let detail = |n: usize| format!("{n} prompt tokens + up to {max_new_tokens} new tokens");
    for (i, p) in prompts.iter().enumerate() {
        crate::limits::check_context(&model.config, &what(i), p.len() + max_new_tokens, &detail(p.len()))?;
    }
    let t = prompts.iter().map(Vec::len).max().unwrap_or(0);
    let workload = crate::limits::Workload { batch: prompts.len(), positions: t + max_new_tokens, slots: t + max_new_tokens, widest_pass: t, logit_rows: 1, detail: detail(t) };
    workload.check(&model.config, &what(0))
}

/// A whole greedy generation from prompts (prefill, then decode), blocking; for native callers.
/// The prompts are checked first ([`check_prompts`]).
#[cfg(not(target_family = "wasm"))]
pub fn generate(
    model: &Transformer,
    prompts: &[Vec<u32>],
    opts: &GenerateOptions,
    on_token: &mut dyn FnMut(usize, u32),
) -> Result<(Vec<Generation>, DecodeStats)> {
    check_prompts(model, prompts, opts.max_new_tokens)?;
    let mut cache = model.new_cache(prompts.len());
    let logits = prefill(model, &mut cache, prompts);
    block_on(decode_greedy(model, &mut cache, logits, opts, on_token))
}

/// Runs a future to completion on the current thread (native only).
#[cfg(not(target_family = "wasm"))]
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    pollster::block_on(f)
}
