//! The eviction of method.md §4 as burn tensor operations, for a whole batch and all layers at
//! once — the path for backends without CubeCL (e.g. the plain CPU backend) and the baseline the
//! kernels are timed against. Equal to [`super::reference`] (tested on the CPU and on wgpu);
//! where scores tie exactly, the chosen entries may differ (the reference keeps the lower
//! position, `topk` does not promise an order).
//!
//! Shapes: `b` batch, `x` = L·G flattened (layer, KV head), `n` CoT positions, `a` answer
//! positions, `r` query heads per KV head, `d` head dim, `m` kept entries.

use burn::tensor::{activation, Bool, Device, Int, Tensor, TensorData};

use super::{EvictConfig, Method, Order, Pool};

/// Compressed teacher cache.
#[derive(Debug, Clone)]
pub struct EvictedTensors {
    /// `[b, x, m, d]`; zero in invalid slots.
    pub k: Tensor<4>,
    /// `[b, x, m, d]`; zero in invalid slots.
    pub v: Tensor<4>,
    /// `[b, x, m]`: kept CoT position per slot, −1 where invalid.
    pub indices: Tensor<3, Int>,
    /// `[b, x, m]`: slot validity (`j < min(M, N_b)`).
    pub mask: Tensor<3, Bool>,
}

impl EvictedTensors {
    /// The same tensors on the autodiff device, as constants (feature `autodiff`; a no-op
    /// without it).
    pub fn autodiff(self) -> Self {
        #[cfg(feature = "autodiff")]
        let s = Self { k: self.k.autodiff(), v: self.v.autodiff(), indices: self.indices.autodiff(), mask: self.mask.autodiff() };
        #[cfg(not(feature = "autodiff"))]
        let s = self;
        s
    }
}

fn host_tensor<const D: usize>(data: Vec<f32>, shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::<D>::from_data(TensorData::new(data, shape), device)
}

/// Evicts the CoT cache `k`, `v` (`[b, x, n, d]`, post-RoPE keys) to `cfg.m` entries per
/// (example, layer, KV head), scoring with the answer queries `q` (`[b, x·r, a, d]`, query head
/// `t` of a layer belonging to KV head `t / r`). `cot_lens[i]` / `ans_lens[i]` count the valid
/// leading positions of example `i`; the rest is padding and never scores.
///
/// # Panics
/// If shapes disagree or a length exceeds its padded size.
pub fn evict(k: Tensor<4>, v: Tensor<4>, q: Tensor<4>, cot_lens: &[usize], ans_lens: &[usize], cfg: &EvictConfig) -> EvictedTensors {
    let super::Dims { b, x, n, d, r, .. } = super::Dims::check(&k, &v, &q, cot_lens, ans_lens);
    let m = cfg.m;
    let device = k.device();

    // Host-side per-example masks: tiny, uploaded once.
    let key_valid: Vec<f32> = cot_lens.iter().flat_map(|&l| (0..n).map(move |i| (i < l) as u8 as f32)).collect();
    let key_valid = host_tensor(key_valid, [b, 1, n], &device); // [b, 1, n]
    let key_invalid = key_valid.clone().lower_elem(0.5); // [b, 1, n] bool

    let scores = match cfg.method {
        Method::Crop => {
            // The first M valid positions: score by −position.
            let pos: Vec<f32> = (0..n).map(|i| -(i as f32)).collect();
            host_tensor(pos, [1, 1, n], &device).expand([b, x, n])
        }
        Method::Mix { lambda } => {
            let mut s = Tensor::<3>::zeros([b, x, n], &device);
            if lambda > 0.0 {
                s = s + importance(k.clone(), q, &key_invalid, ans_lens, cot_lens, r, cfg.pool).mul_scalar(lambda);
            }
            if lambda < 1.0 {
                s = s + redundancy(k.clone(), &key_valid, &key_invalid, cot_lens).mul_scalar(1.0 - lambda);
            }
            s
        }
    };
    // Invalid positions sort below every valid score (valid ones are ≥ −n for crop, ≥ 0 else).
    let floor = -(n as f32) - 2.0;
    let mut scores = scores.mask_fill(key_invalid.clone().expand([b, x, n]), floor);
    if n < m {
        scores = Tensor::cat(vec![scores, Tensor::<3>::full([b, x, m - n], floor - 1.0, &device)], 2);
    }
    let (_, idx) = scores.topk_with_indices(m, 2); // [b, x, m], best first

    // Slot j is valid iff j < min(M, N_b): exactly the valid picks, since they outrank padding.
    let keep: Vec<i64> = cot_lens.iter().map(|&l| l.min(m) as i64).collect();
    let keep = Tensor::<3, Int>::from_data(TensorData::new(keep, [b, 1, 1]), &device);
    let slot = Tensor::<1, Int>::arange(0..m as i64, &device).reshape([1, 1, m]);
    let mask = slot.expand([b, 1, m]).lower(keep.expand([b, 1, m])).expand([b, x, m]); // [b, x, m]
    let sentinel = (n + m) as i64;
    let idx = idx.mask_fill(mask.clone().bool_not(), sentinel);
    let idx = match cfg.order {
        // Invalid slots carry the sentinel, so after sorting the kept positions come first.
        Order::Position => idx.sort(2),
        Order::Score => idx,
    };
    let gather_idx = idx.clone().clamp(0, n as i64 - 1).reshape([b, x, m, 1]).expand([b, x, m, d]);
    let keep_f = mask.clone().float().reshape([b, x, m, 1]);
    let k_out = k.gather(2, gather_idx.clone()) * keep_f.clone();
    let v_out = v.gather(2, gather_idx) * keep_f;
    let indices = idx.mask_fill(mask.clone().bool_not(), -1);
    EvictedTensors { k: k_out, v: v_out, indices, mask }
}

/// `I_i = mean_j softmax_i(pool_group(q_j·k_i/√d))` over valid CoT positions; `[b, x, n]`.
fn importance(k: Tensor<4>, q: Tensor<4>, key_invalid: &Tensor<3, Bool>, ans_lens: &[usize], cot_lens: &[usize], r: usize, pool: Pool) -> Tensor<3> {
    let [b, x, n, d] = k.dims();
    let a = q.dims()[2];
    let device = k.device();
    // The r query heads of a KV head are contiguous: one matmul per (example, KV head).
    let logits = q.reshape([b, x, r * a, d]).matmul(k.swap_dims(2, 3)); // [b, x, r·a, n]
    let logits = logits.reshape([b * x, r, a, n]);
    let pooled = match pool {
        Pool::Max => logits.max_dim(1),
        Pool::Mean => logits.mean_dim(1),
    }
    .reshape([b, x, a, n])
    .mul_scalar(1.0 / (d as f64).sqrt());
    let invalid = key_invalid.clone().reshape([b, 1, 1, n]).expand([b, x, a, n]);
    let p = activation::softmax(pooled.mask_fill(invalid, -1.0e9), 3);
    // Mean over valid answer rows; no answer rows → uniform over valid positions.
    let ans_valid: Vec<f32> = ans_lens.iter().flat_map(|&l| (0..a).map(move |j| (j < l) as u8 as f32)).collect();
    let ans_valid = host_tensor(ans_valid, [b, 1, a, 1], &device);
    let inv: Vec<f32> = ans_lens.iter().map(|&l| if l > 0 { 1.0 / l as f32 } else { 0.0 }).collect();
    let uniform: Vec<f32> = ans_lens
        .iter()
        .zip(cot_lens)
        .flat_map(|(&la, &lc)| (0..n).map(move |i| if la == 0 && i < lc { 1.0 / lc as f32 } else { 0.0 }))
        .collect();
    let sum = (p * ans_valid).sum_dim(2).reshape([b, x, n]);
    sum * host_tensor(inv, [b, 1, 1], &device) + host_tensor(uniform, [b, 1, n], &device)
}

/// `R = softmax_i(−(1/N) Σ_{j≠i} k̂_i·k̂_j)` over valid positions; `[b, x, n]`.
fn redundancy(k: Tensor<4>, key_valid: &Tensor<3>, key_invalid: &Tensor<3, Bool>, cot_lens: &[usize]) -> Tensor<3> {
    let [b, x, n, _] = k.dims();
    let device = k.device();
    let norm = k.clone().powi_scalar(2).sum_dim(3).sqrt().add_scalar(1e-8); // [b, x, n, 1]
    let unit = k / norm;
    let sim = unit.clone().matmul(unit.swap_dims(2, 3)); // [b, x, n, n]
    let off_diag = Tensor::<2>::ones([n, n], &device) - Tensor::<2>::eye(n, &device);
    let cols = key_valid.clone().reshape([b, 1, 1, n]);
    let sim = sim * off_diag.reshape([1, 1, n, n]) * cols;
    let inv_n: Vec<f32> = cot_lens.iter().map(|&l| 1.0 / l.max(1) as f32).collect();
    let r = sim.sum_dim(3).reshape([b, x, n]) * host_tensor(inv_n, [b, 1, 1], &device).neg();
    let r = r.mask_fill(key_invalid.clone().expand([b, x, n]), -1.0e9);
    activation::softmax(r, 2)
}
