//! The conformance sweep of the eviction implementations against [`super::reference`]: run by
//! the integration tests (CPU, wgpu/lavapipe) and by `evict-bench check` on the GPU machine
//! (CUDA), so every device runs the very same cases.
//!
//! Cases: N below, equal to and above M = 24; N not a multiple of 32/64/256 and above 256 (so
//! a unit owns several positions); GQA groups 1, 3 and 7; padded batches with an empty example;
//! λ ∈ {0, 0.1, 1}, crop; max and mean pooling; position and score order.
//!
//! Comparison: indices and mask exactly, except between positions whose reference scores are
//! within [`TIE_EPS`] (an f32 kernel cannot order what f64 barely separates); K̃/Ṽ ≤ 1e-6 against
//! the rows the implementation chose (so a tolerated tie still checks the gather).

use burn::tensor::{Device, Tensor, TensorData};

use super::reference::{evict_batch, scores};
use super::tensor_ops::EvictedTensors;
use super::{BatchShape, EvictConfig, HeadShape, Method, Order, Pool};

/// Reference scores closer than this count as tied.
pub const TIE_EPS: f32 = 2e-6;

/// One batch shape of the sweep.
#[derive(Clone, Debug)]
pub struct Case {
    pub b: usize,
    /// Layers × KV heads.
    pub x: usize,
    /// Query heads per KV head.
    pub group: usize,
    pub n: usize,
    pub a: usize,
    pub d: usize,
    pub cot: Vec<usize>,
    pub ans: Vec<usize>,
}

/// The batch shapes of the sweep.
pub fn cases() -> Vec<Case> {
    let c = |b, x, group, n, a, d, cot: &[usize], ans: &[usize]| Case { b, x, group, n, a, d, cot: cot.to_vec(), ans: ans.to_vec() };
    vec![
        c(2, 3, 1, 30, 5, 8, &[30, 17], &[5, 3]),          // N above and below M
        c(1, 2, 3, 24, 4, 16, &[24], &[4]),                // N = M, groups of 3
        c(3, 2, 7, 67, 6, 8, &[67, 9, 0], &[6, 1, 0]),     // N not a multiple of 32, empty example
        c(2, 4, 3, 40, 3, 4, &[33, 40], &[3, 2]),
        c(2, 2, 1, 300, 3, 8, &[300, 257], &[3, 0]),       // several positions per unit; no answer rows
        c(1, 3, 3, 129, 2, 64, &[129], &[2]),              // realistic head dim
    ]
}

/// The configurations every case runs with.
pub fn configs() -> Vec<EvictConfig> {
    let mut v = Vec::new();
    for method in [Method::Mix { lambda: 0.1 }, Method::Mix { lambda: 0.0 }, Method::Mix { lambda: 1.0 }, Method::Crop] {
        for (pool, order) in [(Pool::Max, Order::Position), (Pool::Mean, Order::Score)] {
            v.push(EvictConfig { m: 24, method, pool, order });
        }
    }
    v
}

/// A small LCG: reproducible data without a rand dependency.
pub struct Lcg(pub u64);
impl Lcg {
    pub fn next(&mut self) -> f32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 33) as f32 / (1u64 << 31) as f32) * 2.0 - 1.0
    }
    pub fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.next()).collect()
    }
}

fn read_f32<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>, String> {
    t.into_data().convert::<f32>().try_into_vec::<f32>().map_err(|e| format!("{e:?}"))
}

/// Compares one implementation's output with the reference on one batch (host data).
#[allow(clippy::too_many_arguments)]
pub fn compare(
    what: &str, case: &Case, cfg: &EvictConfig, k: &[f32], v: &[f32], q: &[f32], got: EvictedTensors,
) -> Result<(), String> {
    let Case { b, x, group, n, a, d, .. } = *case;
    let m = cfg.m;
    let shape = BatchShape { b, lg: x, group, n_max: n, a_max: a, d };
    let want = evict_batch(k, v, q, &case.cot, &case.ans, shape, cfg);
    let got_idx: Vec<i64> = got.indices.into_data().iter::<i64>().collect();
    let got_mask: Vec<bool> = got.mask.into_data().iter::<bool>().collect();
    let got_k = read_f32(got.k)?;
    let got_v = read_f32(got.v)?;
    if got_idx.len() != b * x * m || got_k.len() != b * x * m * d {
        return Err(format!("{what}: output sizes {} / {}, expected {} / {}", got_idx.len(), got_k.len(), b * x * m, b * x * m * d));
    }
    if got_mask != want.mask {
        return Err(format!("{what}: mask differs"));
    }
    for e in 0..b {
        for h in 0..x {
            let head = e * x + h;
            let slots = head * m..(head + 1) * m;
            let gi = &got_idx[slots.clone()];
            let wi = &want.indices[slots.clone()];
            if gi.iter().zip(wi).any(|(&g, &w)| g != w as i64) {
                // Only tolerated between (near-)tied reference scores.
                let Method::Mix { lambda } = cfg.method else {
                    return Err(format!("{what}: example {e} head {h}: crop indices {gi:?} != {wi:?}"));
                };
                let hs = HeadShape { n_max: n, a_max: a, g: group, d };
                let kh = &k[head * n * d..(head + 1) * n * d];
                let qh = &q[head * group * a * d..(head + 1) * group * a * d];
                let s = scores(kh, qh, case.cot[e], case.ans[e], hs, lambda, cfg.pool);
                let tied = |g: usize, w: usize| (s[g] - s[w]).abs() <= TIE_EPS;
                let got_set: Vec<usize> = gi.iter().filter(|&&g| g >= 0).map(|&g| g as usize).collect();
                let want_set: Vec<usize> = wi.iter().filter(|&&w| w >= 0).map(|&w| w as usize).collect();
                let missing: Vec<usize> = want_set.iter().copied().filter(|w| !got_set.contains(w)).collect();
                for g in got_set.iter().copied().filter(|g| !want_set.contains(g)) {
                    if g >= s.len() || !missing.iter().any(|&w| tied(g, w)) {
                        return Err(format!("{what}: example {e} head {h}: kept {gi:?}, reference {wi:?} (not a tie)"));
                    }
                }
                if cfg.order == Order::Position && !got_set.windows(2).all(|p| p[0] < p[1]) {
                    return Err(format!("{what}: example {e} head {h}: {gi:?} not in ascending position order"));
                }
                if cfg.order == Order::Score {
                    for (&g, &w) in gi.iter().zip(wi) {
                        if g != w as i64 && !(g >= 0 && w >= 0 && (g as usize) < s.len() && tied(g as usize, w as usize)) {
                            return Err(format!("{what}: example {e} head {h}: order {gi:?}, reference {wi:?} (not a tie)"));
                        }
                    }
                }
            }
            // K̃/Ṽ are the input rows at the implementation's own indices.
            for (slot, &g) in gi.iter().enumerate() {
                let out = (head * m + slot) * d;
                for c in 0..d {
                    let (wk, wv) = if g >= 0 {
                        let src = (head * n + g as usize) * d + c;
                        (k[src], v[src])
                    } else {
                        (0.0, 0.0)
                    };
                    let (dk, dv) = ((got_k[out + c] - wk).abs(), (got_v[out + c] - wv).abs());
                    if dk > 1e-6 || dv > 1e-6 || dk.is_nan() || dv.is_nan() {
                        return Err(format!("{what}: example {e} head {h} slot {slot}: K/V off by {dk:e}/{dv:e}"));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Runs every case × configuration through `run` (an eviction implementation on `device`) and
/// compares with the reference. Returns the number of (case, configuration) pairs checked.
pub fn sweep(
    device: &Device, label: &str,
    mut run: impl FnMut(Tensor<4>, Tensor<4>, Tensor<4>, &[usize], &[usize], &EvictConfig) -> EvictedTensors,
) -> Result<usize, String> {
    let mut rng = Lcg(20261123);
    let mut checked = 0;
    for case in cases() {
        let Case { b, x, group, n, a, d, .. } = case;
        let k = rng.vec(b * x * n * d);
        let v = rng.vec(b * x * n * d);
        let q = rng.vec(b * x * group * a * d);
        let t = |data: &[f32], shape: [usize; 4]| Tensor::<4>::from_data(TensorData::new(data.to_vec(), shape), device);
        for cfg in configs() {
            let got = run(t(&k, [b, x, n, d]), t(&v, [b, x, n, d]), t(&q, [b, x * group, a, d]), &case.cot, &case.ans, &cfg);
            let what = format!("{label} b{b} x{x} r{group} n{n} d{d} {:?} {:?} {:?}", cfg.method, cfg.pool, cfg.order);
            compare(&what, &case, &cfg, &k, &v, &q, got)?;
            checked += 1;
        }
    }
    Ok(checked)
}
