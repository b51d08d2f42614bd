//! Redundancy–importance eviction of the teacher's CoT KV cache down to `M` entries (method.md §4):
//! the configuration and output types shared by the plain-Rust [`mod@reference`] and the CubeCL
//! kernels that are tested against it.
//!
//! Per (example, layer, KV head), over the `N` valid CoT positions:
//! `s_i = λ·I_i + (1−λ)·R_i`, where `I` is the answer queries' mean attention (GQA group pooled)
//! and `R` a softmax of negated mean cosine similarity between keys; the top `min(M, N)` scores
//! are kept, by default in original position order. [`mod@reference`] has the exact definition.

pub mod check;
#[cfg(all(feature = "cube", not(feature = "fusion")))]
pub mod kernel;
pub mod reference;
pub mod tensor_ops;

pub use tensor_ops::EvictedTensors;

pub use reference::{evict_batch, evict_head, importance, redundancy, scores, select};

/// How the logits of the `G` query heads of one KV group are pooled before the softmax.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Pool {
    /// Element-wise max over the group (R-KV's default, method.md §4).
    #[default]
    Max,
    /// Element-wise mean over the group.
    Mean,
}

/// Order of the kept entries in the `M` output slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Order {
    /// Ascending original CoT position (DECIDED in method.md §4).
    #[default]
    Position,
    /// Descending score (ties: lower position first).
    Score,
}

/// What decides which CoT entries survive.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Method {
    /// `s = λ·I + (1−λ)·R`; `λ = 0` is cosine-redundancy only, `λ = 1` attention only.
    Mix { lambda: f32 },
    /// Keep the first `M` CoT positions; no scores are computed and [`Order`] is irrelevant
    /// (position order and crop order coincide).
    Crop,
}

impl Default for Method {
    fn default() -> Self {
        Method::Mix { lambda: 0.1 }
    }
}

/// Eviction settings. `Default` is the paper's: `M = 24`, `λ = 0.1`, max pooling, position order.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EvictConfig {
    /// Number of output slots `M` (the student's latent length).
    pub m: usize,
    pub method: Method,
    pub pool: Pool,
    pub order: Order,
}

impl Default for EvictConfig {
    fn default() -> Self {
        EvictConfig { m: 24, method: Method::default(), pool: Pool::Max, order: Order::Position }
    }
}

/// Buffer shape of one (example, layer, KV head): keys/values `[n_max, d]`, queries `[g, a_max, d]`,
/// all row-major. Only the first `n_valid ≤ n_max` key rows and `n_ans ≤ a_max` query rows (of
/// every head) are valid; the rest is padding and is never read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeadShape {
    /// Padded CoT length.
    pub n_max: usize,
    /// Padded answer length (`P A EOS`).
    pub a_max: usize,
    /// Query heads per KV head (GQA group size).
    pub g: usize,
    /// Head dimension.
    pub d: usize,
}

/// Buffer shape of a whole batch: K/V `[b, lg, n_max, d]`, answer queries `[b, lg·group, a_max, d]`.
///
/// `lg` = layers × KV heads, flattened layer-major; the query-head axis is layers × query heads,
/// also layer-major, and query head `t` of a layer belongs to KV head `t / group` (standard GQA).
/// Hence the `group` query heads of flattened KV head `x` are the contiguous rows
/// `x·group .. (x+1)·group` of the query-head axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchShape {
    pub b: usize,
    pub lg: usize,
    pub group: usize,
    pub n_max: usize,
    pub a_max: usize,
    pub d: usize,
}

impl BatchShape {
    /// The per-head shape of every head of this batch.
    pub fn head(&self) -> HeadShape {
        HeadShape { n_max: self.n_max, a_max: self.a_max, g: self.group, d: self.d }
    }
}

/// The evicted cache of one (example, layer, KV head).
#[derive(Clone, Debug, PartialEq)]
pub struct Evicted {
    /// `[m, d]`; invalid slots are zero.
    pub k: Vec<f32>,
    /// `[m, d]`; invalid slots are zero.
    pub v: Vec<f32>,
    /// `[m]`: the kept CoT position of each slot, `-1` for invalid slots.
    pub indices: Vec<i32>,
    /// `[m]`: `true` for the first `min(m, n_valid)` slots.
    pub mask: Vec<bool>,
}

/// The evicted cache of a whole batch: the [`Evicted`] fields stacked as `[b, lg, m, …]`.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchEvicted {
    /// `[b, lg, m, d]`.
    pub k: Vec<f32>,
    /// `[b, lg, m, d]`.
    pub v: Vec<f32>,
    /// `[b, lg, m]`, `-1` for invalid slots.
    pub indices: Vec<i32>,
    /// `[b, lg, m]`.
    pub mask: Vec<bool>,
}

/// The sizes of one eviction call, checked once for every implementation.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Dims {
    pub b: usize,
    pub x: usize,
    pub n: usize,
    pub d: usize,
    /// Read by the kernels only (absent from a `fusion` build).
    #[cfg_attr(any(not(feature = "cube"), feature = "fusion"), allow(dead_code))]
    pub a: usize,
    pub r: usize,
}

impl Dims {
    /// K, V `[b, x, n, d]`, queries `[b, x·r, a, d]`, one CoT and answer length per example.
    ///
    /// # Panics
    /// If shapes disagree or a length exceeds its padded size.
    pub fn check(
        k: &burn::tensor::Tensor<4>, v: &burn::tensor::Tensor<4>, q: &burn::tensor::Tensor<4>, cot_lens: &[usize],
        ans_lens: &[usize],
    ) -> Self {
        let [b, x, n, d] = k.dims();
        let [qb, qh, a, qd] = q.dims();
        assert!(qb == b && qd == d && x > 0 && qh % x == 0, "queries {:?} do not fit keys {:?}", q.dims(), k.dims());
        assert_eq!(v.dims(), k.dims(), "values and keys differ in shape");
        assert!(cot_lens.len() == b && ans_lens.len() == b, "one length per example");
        assert!(cot_lens.iter().all(|&l| l <= n) && ans_lens.iter().all(|&l| l <= a), "length beyond padding");
        Dims { b, x, n, d, a, r: qh / x }
    }
}

/// Which implementation [`evict`] ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// The CubeCL kernels ([`kernel`]).
    Kernel,
    /// Composed burn tensor operations ([`tensor_ops`]).
    TensorOps,
}

/// Evicts the CoT cache to `cfg.m` entries per (example, layer, KV head) — the one entry point
/// for training: the CubeCL kernels where the tensors live on a cubecl runtime (wgpu, CUDA, …)
/// and the kernels are compiled in (feature `cube`), the tensor-ops path otherwise (e.g. the
/// plain CPU backend). Tensors of an autodiff device are accepted (feature `autodiff`): the
/// result is a constant there. Shapes and semantics: [`tensor_ops::evict`].
///
/// # Panics
/// If shapes disagree or a length exceeds its padded size.
pub fn evict(
    k: burn::tensor::Tensor<4>, v: burn::tensor::Tensor<4>, q: burn::tensor::Tensor<4>, cot_lens: &[usize],
    ans_lens: &[usize], cfg: &EvictConfig,
) -> (EvictedTensors, Path) {
    let autodiff = k.device().is_autodiff();
    let (k, v, q) = (plain(k), plain(v), plain(q));
    let lift = |out: EvictedTensors| if autodiff { out.autodiff() } else { out };
    #[cfg(all(feature = "cube", not(feature = "fusion")))]
    if kernel::supported(&k) {
        if let Some(out) = kernel::evict(k.clone(), v.clone(), q.clone(), cot_lens, ans_lens, cfg) {
            return (lift(out), Path::Kernel);
        }
    }
    (lift(tensor_ops::evict(k, v, q, cot_lens, ans_lens, cfg)), Path::TensorOps)
}

/// The tensor without its autodiff association (feature `autodiff`; identity without it):
/// eviction produces distillation *targets* (`sg K̃_t`), so it runs on the inner backend, keeps
/// no graph and the result comes back to the autodiff device as constants.
pub(crate) fn plain<const D: usize, K: burn::tensor::kind::Basic + burn::tensor::kind::Autodiff>(
    t: burn::tensor::Tensor<D, K>,
) -> burn::tensor::Tensor<D, K> {
    #[cfg(feature = "autodiff")]
    let t = t.without_autodiff();
    t
}
