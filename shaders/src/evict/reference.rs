//! Plain-Rust reference of the redundancy–importance KV eviction (method.md §4): the specification
//! the CubeCL kernels are tested against. Clarity over speed; O(N²·d) per head.
//!
//! Conventions the method leaves open, fixed here:
//! * All sums run in `f64`, in ascending index order, so results are deterministic and closer to
//!   the exact value than any f32 kernel; outputs are `f32`.
//! * GQA pooling pools the *logits* over the group (max or mean), then one softmax per query row.
//! * `n_ans = 0` (no answer query): importance is uniform, `I_i = 1/N`.
//! * `N = 0`: no scores, every slot invalid.
//! * Ties in the score break by lower position first (stable sort on descending score).
//! * Softmaxes subtract the row max first (the usual stable form; mathematically a no-op).

use super::{BatchEvicted, BatchShape, EvictConfig, Evicted, HeadShape, Method, Order, Pool};

/// Numerically stable softmax of `x`, in place.
fn softmax(x: &mut [f64]) {
    let max = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut sum = 0.0;
    for v in x.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in x.iter_mut() {
        *v /= sum;
    }
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
}

fn check_head(keys: &[f32], queries: &[f32], n_valid: usize, n_ans: usize, s: HeadShape) {
    assert!(n_valid <= s.n_max, "n_valid {n_valid} > n_max {}", s.n_max);
    assert!(n_ans <= s.a_max, "n_ans {n_ans} > a_max {}", s.a_max);
    assert!(s.g >= 1 && s.d >= 1, "g and d must be ≥ 1");
    assert_eq!(keys.len(), s.n_max * s.d, "keys must be [n_max, d]");
    assert_eq!(queries.len(), s.g * s.a_max * s.d, "queries must be [g, a_max, d]");
}

/// Importance `I_i = mean_j softmax_i(pool_t(q_{t,j}·k_i/√d))` over the `n_valid` CoT keys and the
/// `n_ans` answer queries of the `g` query heads `t` of this KV group. Returns `n_valid` values
/// summing to 1 (uniform `1/N` when `n_ans = 0`).
///
/// # Panics
/// If `keys` is not `[n_max, d]`, `queries` not `[g, a_max, d]`, `n_valid > n_max`,
/// `n_ans > a_max`, or `g`/`d` is 0.
pub fn importance(
    keys: &[f32], queries: &[f32], n_valid: usize, n_ans: usize, shape: HeadShape, pool: Pool,
) -> Vec<f32> {
    check_head(keys, queries, n_valid, n_ans, shape);
    let HeadShape { a_max, g, d, .. } = shape;
    if n_ans == 0 {
        return vec![1.0 / n_valid as f32; n_valid];
    }
    let scale = 1.0 / (d as f64).sqrt();
    let mut acc = vec![0.0f64; n_valid];
    let mut row = vec![0.0f64; n_valid];
    for j in 0..n_ans {
        for (i, r) in row.iter_mut().enumerate() {
            let k = &keys[i * d..(i + 1) * d];
            let logit = |t: usize| dot(&queries[(t * a_max + j) * d..][..d], k) * scale;
            *r = match pool {
                Pool::Max => (0..g).map(logit).fold(f64::NEG_INFINITY, f64::max),
                Pool::Mean => (0..g).map(logit).sum::<f64>() / g as f64,
            };
        }
        softmax(&mut row);
        for (a, p) in acc.iter_mut().zip(&row) {
            *a += p;
        }
    }
    acc.iter().map(|a| (a / n_ans as f64) as f32).collect()
}

/// Redundancy `R = softmax_i(−(1/N) Σ_{j≠i} k̂_i·k̂_j)` with `k̂ = k/(‖k‖+1e-8)`, over the first
/// `n_valid` rows of `keys` (`[n_max, d]`). High `R` = unlike the other keys = worth keeping.
///
/// # Panics
/// If `keys.len() != n_max·d`, `n_valid > n_max` or `d = 0`.
pub fn redundancy(keys: &[f32], n_valid: usize, n_max: usize, d: usize) -> Vec<f32> {
    assert!(n_valid <= n_max && d >= 1, "need n_valid ≤ n_max and d ≥ 1");
    assert_eq!(keys.len(), n_max * d, "keys must be [n_max, d]");
    let unit: Vec<Vec<f64>> = (0..n_valid)
        .map(|i| {
            let k = &keys[i * d..(i + 1) * d];
            let norm = dot(k, k).sqrt() + 1e-8;
            k.iter().map(|&x| x as f64 / norm).collect()
        })
        .collect();
    let mut r: Vec<f64> = (0..n_valid)
        .map(|i| {
            // S_ii = 0: skip the diagonal but still divide by N (not N−1), as the method states.
            let s: f64 = (0..n_valid)
                .filter(|&j| j != i)
                .map(|j| unit[i].iter().zip(&unit[j]).map(|(a, b)| a * b).sum::<f64>())
                .sum();
            -s / n_valid as f64
        })
        .collect();
    softmax(&mut r);
    r.into_iter().map(|x| x as f32).collect()
}

/// Score `s_i = λ·I_i + (1−λ)·R_i` of the `n_valid` CoT positions (see [`importance`] and
/// [`redundancy`]; λ = 0 skips the importance, λ = 1 the redundancy).
///
/// # Panics
/// As [`importance`].
pub fn scores(
    keys: &[f32], queries: &[f32], n_valid: usize, n_ans: usize, shape: HeadShape, lambda: f32,
    pool: Pool,
) -> Vec<f32> {
    check_head(keys, queries, n_valid, n_ans, shape);
    let (l, mut s) = (lambda as f64, vec![0.0f64; n_valid]);
    if lambda != 0.0 {
        for (s, i) in s.iter_mut().zip(importance(keys, queries, n_valid, n_ans, shape, pool)) {
            *s += l * i as f64;
        }
    }
    if lambda != 1.0 {
        for (s, r) in s.iter_mut().zip(redundancy(keys, n_valid, shape.n_max, shape.d)) {
            *s += (1.0 - l) * r as f64;
        }
    }
    s.into_iter().map(|x| x as f32).collect()
}

/// Positions of the top `min(m, scores.len())` scores, ties broken by lower position first,
/// listed ascending ([`Order::Position`]) or by descending score ([`Order::Score`]).
pub fn select(scores: &[f32], m: usize, order: Order) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    // Stable sort on descending score keeps equal scores in ascending position.
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    idx.truncate(m);
    if order == Order::Position {
        idx.sort_unstable();
    }
    idx
}

/// Evicts one (example, layer, KV head): keys/values `[n_max, d]`, answer queries `[g, a_max, d]`
/// → `cfg.m` slots, the first `min(m, n_valid)` holding the kept entries (gathered from K and V by
/// the same indices), the rest zero, index `-1`, mask `false`.
///
/// # Panics
/// As [`importance`], and if `values` is not `[n_max, d]`.
pub fn evict_head(
    keys: &[f32], values: &[f32], queries: &[f32], n_valid: usize, n_ans: usize, shape: HeadShape,
    cfg: &EvictConfig,
) -> Evicted {
    check_head(keys, queries, n_valid, n_ans, shape);
    assert_eq!(values.len(), keys.len(), "values must be [n_max, d]");
    let (m, d) = (cfg.m, shape.d);
    let kept = match cfg.method {
        Method::Crop => (0..m.min(n_valid)).collect(),
        Method::Mix { lambda } => {
            let s = scores(keys, queries, n_valid, n_ans, shape, lambda, cfg.pool);
            select(&s, m, cfg.order)
        }
    };
    let mut out = Evicted {
        k: vec![0.0; m * d],
        v: vec![0.0; m * d],
        indices: vec![-1; m],
        mask: vec![false; m],
    };
    for (slot, &i) in kept.iter().enumerate() {
        out.k[slot * d..(slot + 1) * d].copy_from_slice(&keys[i * d..(i + 1) * d]);
        out.v[slot * d..(slot + 1) * d].copy_from_slice(&values[i * d..(i + 1) * d]);
        out.indices[slot] = i as i32;
        out.mask[slot] = true;
    }
    out
}

/// Evicts a whole batch, every layer and KV head independently with [`evict_head`]:
/// K, V `[b, lg, n_max, d]`, answer queries `[b, lg·group, a_max, d]` (layout: [`BatchShape`]),
/// `cot_lens`/`ans_lens` `[b]` → K̃, Ṽ `[b, lg, m, d]`, indices and mask `[b, lg, m]`.
///
/// # Panics
/// If a buffer length disagrees with `shape`, or a length exceeds `n_max`/`a_max`.
pub fn evict_batch(
    k: &[f32], v: &[f32], q: &[f32], cot_lens: &[usize], ans_lens: &[usize], shape: BatchShape,
    cfg: &EvictConfig,
) -> BatchEvicted {
    let BatchShape { b, lg, group, n_max, a_max, d } = shape;
    let (kv_head, q_head, m) = (n_max * d, group * a_max * d, cfg.m);
    assert_eq!(k.len(), b * lg * kv_head, "k must be [b, lg, n_max, d]");
    assert_eq!(v.len(), k.len(), "v must be [b, lg, n_max, d]");
    assert_eq!(q.len(), b * lg * q_head, "q must be [b, lg·group, a_max, d]");
    assert!(cot_lens.len() == b && ans_lens.len() == b, "cot_lens and ans_lens must be [b]");
    let mut out = BatchEvicted {
        k: Vec::with_capacity(b * lg * m * d),
        v: Vec::with_capacity(b * lg * m * d),
        indices: Vec::with_capacity(b * lg * m),
        mask: Vec::with_capacity(b * lg * m),
    };
    for e in 0..b {
        for x in 0..lg {
            let h = e * lg + x;
            let r = evict_head(
                &k[h * kv_head..][..kv_head],
                &v[h * kv_head..][..kv_head],
                &q[h * q_head..][..q_head],
                cot_lens[e],
                ans_lens[e],
                shape.head(),
                cfg,
            );
            out.k.extend(r.k);
            out.v.extend(r.v);
            out.indices.extend(r.indices);
            out.mask.extend(r.mask);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f32], b: &[f32]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-6, "{a:?} != {b:?}");
        }
    }
    fn shape(n_max: usize, a_max: usize, g: usize, d: usize) -> HeadShape {
        HeadShape { n_max, a_max, g, d }
    }
    fn cfg(m: usize, method: Method) -> EvictConfig {
        EvictConfig { m, method, ..EvictConfig::default() }
    }
    /// Tiny LCG (Numerical Recipes constants) in [-1, 1): no `rand` dependency.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> f32 {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        }
        fn vec(&mut self, n: usize) -> Vec<f32> {
            (0..n).map(|_| self.next()).collect()
        }
    }

    #[test]
    fn importance_of_one_query_over_three_keys_is_the_hand_computed_softmax() {
        // d = 4, √d = 2: logits q·k/2 = 1, 0, −1.
        let keys = [1., 0., 0., 0., 0., 0., 0., 0., -1., 0., 0., 0.];
        let q = [2., 0., 0., 0.];
        let e = std::f32::consts::E;
        let z = e + 1.0 + 1.0 / e;
        let i = importance(&keys, &q, 3, 1, shape(3, 1, 1, 4), Pool::Max);
        close(&i, &[e / z, 1.0 / z, 1.0 / e / z]);
    }

    #[test]
    fn two_identical_keys_are_the_most_redundant() {
        // Cosines: S_01 = 1, others 0 → r = (−1/3, −1/3, 0); norms don't matter.
        let keys = [2., 0., 1., 0., 0., 3.];
        let (a, b) = ((-1.0f32 / 3.0).exp(), 1.0f32);
        let z = 2.0 * a + b;
        close(&redundancy(&keys, 3, 3, 2), &[a / z, a / z, b / z]);
    }

    #[test]
    fn lambda_one_keeps_the_most_attended_keys() {
        // Logits 3, 0, 2, −1 for keys 0..4 (d = 1); keep 2 → positions 0 and 2.
        let keys = [3., 0., 2., -1.];
        let e = evict_head(
            &keys,
            &keys,
            &[1.],
            4,
            1,
            shape(4, 1, 1, 1),
            &cfg(2, Method::Mix { lambda: 1.0 }),
        );
        assert_eq!(e.indices, [0, 2]);
        assert_eq!(e.k, [3., 2.]);
    }

    #[test]
    fn lambda_zero_evicts_duplicates_first_and_ties_keep_the_lower_position() {
        // Keys 0 and 2 coincide, 1 and 3 are orthogonal to everything: r = (−¼, 0, −¼, 0).
        let keys = [1., 0., 0., 0., 1., 0., 1., 0., 0., 0., 0., 1.];
        let s = shape(4, 1, 1, 3);
        let q = [0.; 3];
        let one = evict_head(&keys, &keys, &q, 4, 1, s, &cfg(3, Method::Mix { lambda: 0.0 }));
        assert_eq!(one.indices, [0, 1, 3]); // the tie between 0 and 2 keeps 0
        let two = evict_head(&keys, &keys, &q, 4, 1, s, &cfg(2, Method::Mix { lambda: 0.0 }));
        assert_eq!(two.indices, [1, 3]);
    }

    #[test]
    fn crop_keeps_the_first_m_positions() {
        let keys = [5., 1., 9., 7., 3.];
        let vals = [10., 11., 12., 13., 14.];
        let e = evict_head(&keys, &vals, &[1.], 5, 1, shape(5, 1, 1, 1), &cfg(3, Method::Crop));
        assert_eq!((e.indices, e.k, e.v), (vec![0, 1, 2], vec![5., 1., 9.], vec![10., 11., 12.]));
    }

    #[test]
    fn fewer_valid_positions_than_slots_leaves_the_extra_slots_invalid_and_zero() {
        let keys = [1., 2., 3., 4., 99., 99.]; // n_max = 3, N = 2, d = 2
        let q = [1., 1.];
        for method in [Method::Crop, Method::Mix { lambda: 0.1 }] {
            let e = evict_head(&keys, &keys, &q, 2, 1, shape(3, 1, 1, 2), &cfg(4, method));
            assert_eq!(e.indices, [0, 1, -1, -1]);
            assert_eq!(e.mask, [true, true, false, false]);
            assert_eq!(e.k, [1., 2., 3., 4., 0., 0., 0., 0.]);
            assert_eq!(e.v, e.k);
        }
    }

    #[test]
    fn no_valid_positions_gives_all_slots_invalid() {
        let e = evict_head(
            &[7.; 4],
            &[7.; 4],
            &[1.; 2],
            0,
            1,
            shape(2, 1, 1, 2),
            &cfg(2, Method::default()),
        );
        assert_eq!((e.indices, e.mask, e.k), (vec![-1, -1], vec![false, false], vec![0.; 4]));
    }

    #[test]
    fn no_answer_query_gives_uniform_importance() {
        let i = importance(&[1., 2., 3., 0.], &[0.; 2], 3, 0, shape(4, 2, 1, 1), Pool::Max);
        close(&i, &[1.0 / 3.0; 3]);
    }

    #[test]
    fn padding_rows_change_nothing() {
        let (n, a, g, d) = (5, 3, 2, 4);
        let mut rng = Lcg(7);
        let (k, v, q) = (rng.vec(n * d), rng.vec(n * d), rng.vec(g * a * d));
        // Same data padded to n_max = 8, a_max = 5 with huge garbage.
        let pad = |x: &[f32], rows: usize, extra: usize| {
            x.chunks(rows * d)
                .flat_map(|c| c.iter().copied().chain(vec![1e6; extra * d]))
                .collect::<Vec<_>>()
        };
        let (kp, vp, qp) = (pad(&k, n, 3), pad(&v, n, 3), pad(&q, a, 2));
        for method in
            [Method::Mix { lambda: 0.1 }, Method::Mix { lambda: 1.0 }, Method::Mix { lambda: 0.0 }]
        {
            let c = cfg(4, method);
            let plain = evict_head(&k, &v, &q, n, a, shape(n, a, g, d), &c);
            let padded = evict_head(&kp, &vp, &qp, n, a, shape(8, 5, g, d), &c);
            assert_eq!(plain, padded);
        }
        let s = scores(&kp, &qp, n, a, shape(8, 5, g, d), 0.1, Pool::Mean);
        assert_eq!(s, scores(&k, &q, n, a, shape(n, a, g, d), 0.1, Pool::Mean));
    }

    #[test]
    fn gqa_max_pooling_and_mean_pooling_can_disagree() {
        // Head 0 logits ∝ (5, 2), head 1 ∝ (−5, 2): max → (5, 2) favours key 0, mean → (0, 2) key 1.
        let keys = [1., 0., 0., 1.];
        let q = [5., 2., -5., 2.]; // [g = 2, a_max = 1, d = 2]
        let s = shape(2, 1, 2, 2);
        let mut c = cfg(1, Method::Mix { lambda: 1.0 });
        assert_eq!(evict_head(&keys, &keys, &q, 2, 1, s, &c).indices, [0]);
        c.pool = Pool::Mean;
        assert_eq!(evict_head(&keys, &keys, &q, 2, 1, s, &c).indices, [1]);
    }

    #[test]
    fn kept_entries_are_ordered_by_position_or_by_score() {
        let s = [0.1, 0.5, 0.3, 0.4];
        assert_eq!(select(&s, 3, Order::Position), [1, 2, 3]);
        assert_eq!(select(&s, 3, Order::Score), [1, 3, 2]);
        assert_eq!(select(&[0.2; 3], 2, Order::Score), [0, 1]);
        assert_eq!(select(&s, 9, Order::Position), [0, 1, 2, 3]);
    }

    #[test]
    fn scores_are_a_distribution_for_any_lambda() {
        let mut rng = Lcg(3);
        let (k, q) = (rng.vec(6 * 4), rng.vec(2 * 3 * 4));
        for lambda in [0.0, 0.1, 0.5, 1.0] {
            let s = scores(&k, &q, 6, 3, shape(6, 3, 2, 4), lambda, Pool::Mean);
            assert!((s.iter().sum::<f32>() - 1.0).abs() < 1e-5 && s.iter().all(|&x| x > 0.0));
        }
    }

    #[test]
    fn the_batch_function_equals_the_per_head_function_with_padding() {
        let bs = BatchShape { b: 3, lg: 4, group: 2, n_max: 7, a_max: 4, d: 3 };
        let (kv, qh, m) = (bs.n_max * bs.d, bs.group * bs.a_max * bs.d, 5);
        let mut rng = Lcg(42);
        let k = rng.vec(bs.b * bs.lg * kv);
        let v = rng.vec(k.len());
        let q = rng.vec(bs.b * bs.lg * qh);
        let (cot, ans) = ([7, 3, 0], [4, 1, 0]); // full, short (N < M), empty
        let c = EvictConfig { m, order: Order::Score, ..EvictConfig::default() };
        let out = evict_batch(&k, &v, &q, &cot, &ans, bs, &c);
        for h in 0..bs.b * bs.lg {
            let e = h / bs.lg;
            let r = evict_head(
                &k[h * kv..][..kv],
                &v[h * kv..][..kv],
                &q[h * qh..][..qh],
                cot[e],
                ans[e],
                bs.head(),
                &c,
            );
            assert_eq!(out.k[h * m * bs.d..][..m * bs.d], r.k[..]);
            assert_eq!(out.v[h * m * bs.d..][..m * bs.d], r.v[..]);
            assert_eq!(out.indices[h * m..][..m], r.indices[..]);
            assert_eq!(out.mask[h * m..][..m], r.mask[..]);
        }
        assert_eq!(out.mask.iter().filter(|&&x| x).count(), bs.lg * (5 + 3));
    }

    #[test]
    #[should_panic(expected = "queries must be")]
    fn a_wrong_query_length_panics() {
        importance(&[0.; 4], &[0.; 3], 2, 1, shape(2, 1, 1, 2), Pool::Max);
    }
}
