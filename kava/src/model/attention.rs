//! Causal self-attention with grouped KV heads (GQA) on an external cache. Query head `h` uses
//! KV head `h / n_rep` (HF's `repeat_kv` order); instead of repeating K and V, the queries of
//! one group are stacked so each group is one matmul.

use burn::module::Module;
use burn::tensor::{activation, Bool, Tensor};

use super::cache::KvCache;
use super::fused;
use super::linear::Linear;
use super::precision;
use super::rope::RopeAngles;

#[derive(Module, Debug)]
pub struct Attention {
    pub q_proj: Linear,
    pub k_proj: Linear,
    pub v_proj: Linear,
    pub o_proj: Linear,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
}

/// Which cached keys each new query may not see: the future and padding.
#[derive(Clone, Debug)]
pub enum AttentionMask {
    /// `[b, 1, t, s]`, `true` where hidden (the tensor-op form).
    Dense(Tensor<4, Bool>),
    /// Query `i` sits at cache slot `s0 + i` and sees the real slots up to its own; `valid`
    /// `[b, s]` is 1.0 for a real slot, 0.0 for padding (what the fused softmax reads).
    Causal { valid: Tensor<2>, s0: usize },
}

/// Attention output and the new post-RoPE queries, keys and values (for captures).
pub struct AttentionOutput {
    /// `[b, t, c]`
    pub out: Tensor<3>,
    /// `[b, h, t, d]`
    pub q: Tensor<4>,
    /// `[b, g, t, d]`
    pub k: Tensor<4>,
    /// `[b, g, t, d]`
    pub v: Tensor<4>,
    /// `[b, g, t, d]`: the new keys before the rotary embedding, kept only when asked for.
    pub k_pre_rope: Option<Tensor<4>>,
}

impl Attention {
    /// `mask` hides the future and padding over the whole cached sequence after this step's
    /// append; `None` when every key is visible (one new token on an unpadded cache). `keep_pre_rope` also returns the keys before RoPE (a handle
    /// on a tensor computed anyway; off, nothing is kept).
    ///
    /// # Shapes
    /// `x`: `[b, t, c]` → `[b, t, c]`
    pub fn forward(
        &self,
        x: Tensor<3>,
        rope: &RopeAngles,
        mask: Option<&AttentionMask>,
        cache: &mut KvCache,
        layer: usize,
        keep_pre_rope: bool,
    ) -> AttentionOutput {
        let [b, t, _] = x.dims();
        let (h, g, d) = (self.n_heads, self.n_kv_heads, self.head_dim);
        let r = h / g;
        let heads = |y: Tensor<3>, n: usize| y.reshape([b, t, n, d]).swap_dims(1, 2); // [b, n, t, d]
        // Split into heads and rotate in one step (one kernel on a cubecl device).
        let q = rope.heads(self.q_proj.forward(x.clone()), h);
        let k_lin = self.k_proj.forward(x.clone());
        let (k_new, k_pre_rope) = if keep_pre_rope {
            let raw = heads(k_lin, g);
            (rope.apply(raw.clone()), Some(raw))
        } else {
            (rope.heads(k_lin, g), None)
        };
        let v_new = heads(self.v_proj.forward(x), g);
        let (k, v) = cache.append(layer, k_new.clone(), v_new.clone());
        let s = k.dims()[2];

        // [b, g, r·t, d] · [b, g, d, s] → [b, g, r·t, s]
        let scores = precision::matmul(q.clone().reshape([b, g, r * t, d]), k.swap_dims(2, 3));
        let scores = scores.reshape([b, h, t, s]);
        let scale = 1.0 / (d as f64).sqrt();
        let probs = match mask {
            Some(AttentionMask::Causal { valid, s0 }) => fused::masked_softmax(scores, scale, valid.clone(), *s0),
            Some(AttentionMask::Dense(mask)) => {
                activation::softmax(scores.mul_scalar(scale).mask_fill(mask.clone().expand([b, h, t, s]), -1.0e9), 3)
            }
            None => activation::softmax(scores.mul_scalar(scale), 3),
        };
        let probs = probs.reshape([b, g, r * t, s]);
        let ctx = precision::matmul(probs, v).reshape([b, h, t, d]); // [b, h, t, d]
        let out = self.o_proj.forward(ctx.swap_dims(1, 2).reshape([b, t, h * d]));
        AttentionOutput { out, q, k: k_new, v: v_new, k_pre_rope }
    }
}
