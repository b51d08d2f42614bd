//! The loss terms of method.md §3 as burn tensor functions: token-mean cross-entropy over a target
//! mask, `L_CODI` (hidden states at the distillation token, every layer) and `L_KV` (student K/V
//! at the latent slots against the evicted teacher cache). Teacher targets are detached inside
//! each function: the stop-gradient sits exactly where the spec puts it, whoever calls them.
//!
//! Conventions: standard deviations are unbiased (PyTorch's `Tensor.std()`, as CODI divides by
//! `teacher.std()`), computed from the detached teacher over the valid elements only.

use kava::burn::tensor::{activation, Bool, Int, Tensor};

/// The element-wise penalty ρ.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rho {
    /// Huber with β = 1: `½x²` for `|x| < 1`, else `|x| − ½`.
    #[default]
    SmoothL1,
    /// `x²`.
    Mse,
    /// `|x|`.
    L1,
}

/// ρ applied element-wise.
pub fn rho<const D: usize>(x: Tensor<D>, kind: Rho) -> Tensor<D> {
    match kind {
        Rho::SmoothL1 => {
            let a = x.clone().abs();
            let quad = x.powi_scalar(2).mul_scalar(0.5);
            let lin = a.clone().sub_scalar(0.5);
            quad.mask_where(a.greater_equal_elem(1.0), lin)
        }
        Rho::Mse => x.powi_scalar(2),
        Rho::L1 => x.abs(),
    }
}

/// Token-mean cross-entropy: `logits` `[b, t, v]`, `targets` `[b, t]`, `mask` `[b, t]` (true =
/// scored; `None`: every position is). Unscored positions may hold any target id (they are never
/// gathered from). A batch without a scored position gives 0.
pub fn cross_entropy(logits: Tensor<3>, targets: Tensor<2, Int>, mask: Option<Tensor<2, Bool>>) -> Tensor<1> {
    let [b, t, _] = logits.dims();
    let logp = activation::log_softmax(logits, 2);
    let Some(mask) = mask else {
        return logp.gather(2, targets.reshape([b, t, 1])).neg().mean().reshape([1]);
    };
    let safe = targets.mask_fill(mask.clone().bool_not(), 0).reshape([b, t, 1]);
    let nll = logp.gather(2, safe).reshape([b, t]).neg();
    let w = mask.float();
    let count = w.clone().sum().clamp_min(1.0);
    (nll * w).sum() / count
}

/// Unbiased standard deviation of the elements of `x` where `w` is 1 (all when `w` is `None`),
/// one per index of dimension `keep` (`None`: one over everything); the result has `x`'s rank with
/// every other dimension 1, and is at least 1e-6 so that it can divide.
fn std_of<const D: usize>(x: Tensor<D>, w: Option<Tensor<D>>, keep: Option<usize>) -> Tensor<D> {
    let dims = x.dims();
    let sum = |t: Tensor<D>| (0..D).filter(|&d| Some(d) != keep).fold(t, |t, d| t.sum_dim(d));
    let var = match w {
        Some(w) => {
            let n = sum(w.clone());
            let mean = sum(x.clone() * w.clone()) / n.clone().clamp_min(1.0);
            sum((x - mean).powi_scalar(2) * w) / n.sub_scalar(1.0).clamp_min(1.0)
        }
        None => {
            let n = (0..D).filter(|&d| Some(d) != keep).map(|d| dims[d]).product::<usize>() as f64;
            let mean = sum(x.clone()).div_scalar(n);
            sum((x - mean).powi_scalar(2)).div_scalar((n - 1.0).max(1.0))
        }
    };
    var.sqrt().clamp_min(1e-6)
}

/// `L_CODI = (1/L) Σ_ℓ mean ρ(h_s^ℓ − sg h_t^ℓ) / σ_ℓ` with ρ = SmoothL1 (β = 1).
///
/// `student[ℓ]`, `teacher[ℓ]`: `[b, c]`, the decoder-layer outputs at the distillation token (the
/// last layer post-norm). σ_ℓ is the std of the teacher's layer-ℓ vectors over the batch, or one
/// std over all layers when `layerwise_std` is off. All layers in one `[L, b, c]` tensor: a fixed
/// number of launches whatever L (a per-layer loop cost ~20 per layer, twice with the backward).
///
/// # Panics
/// If the two lists differ in length or are empty, or a layer's shape is not the first's.
pub fn codi_loss(student: &[Tensor<2>], teacher: &[Tensor<2>], layerwise_std: bool) -> Tensor<1> {
    assert!(!student.is_empty() && student.len() == teacher.len(), "one student and one teacher state per layer");
    let shape = student[0].dims();
    assert!(student.iter().chain(teacher).all(|t| t.dims() == shape), "every layer's states must be [b, c] = {shape:?}");
    let s = Tensor::stack::<3>(student.to_vec(), 0);
    let t = Tensor::stack::<3>(teacher.to_vec(), 0).detach();
    let sigma = std_of(t.clone(), None, layerwise_std.then_some(0));
    // Every layer has b·c elements, so the mean over all of them is the mean of the layer means.
    (rho(s - t, Rho::SmoothL1) / sigma).mean()
}

/// `L_KV = ½ [mean ρ((K_s − sg K̃_t)/σᴷ_ℓ) + mean ρ((V_s − sg Ṽ_t)/σⱽ_ℓ)]` over the valid
/// (example, layer, KV head, slot, channel) elements.
///
/// `k_s`, `v_s`, `k_t`, `v_t`: `[b, x, m, d]` with `x = layers · kv_heads` flattened layer-major
/// (the eviction's layout); `valid`: `[b, x, m]`. With `layerwise_std`, σ_ℓ is the std of layer
/// ℓ's valid teacher elements (K and V separately); otherwise σ = 1. No valid element gives 0.
///
/// # Panics
/// If shapes disagree or `x` is not a multiple of `layers`.
#[allow(clippy::too_many_arguments)]
pub fn kv_loss(
    k_s: Tensor<4>, v_s: Tensor<4>, k_t: Tensor<4>, v_t: Tensor<4>, valid: Tensor<3, Bool>, layers: usize, kind: Rho,
    layerwise_std: bool,
) -> Tensor<1> {
    let [b, x, m, d] = k_s.dims();
    assert!(layers > 0 && x % layers == 0, "{x} heads do not split into {layers} layers");
    for (name, t) in [("v_s", &v_s), ("k_t", &k_t), ("v_t", &v_t)] {
        assert_eq!(t.dims(), [b, x, m, d], "{name} shape");
    }
    assert_eq!(valid.dims(), [b, x, m], "valid shape");
    let g = x / layers;
    let w = valid.float().reshape([b, layers, g * m, 1]).expand([b, layers, g * m, d]); // [b, L, g·m, d]
    let count = w.clone().sum().clamp_min(1.0);
    let term = |s: Tensor<4>, t: Tensor<4>| -> Tensor<1> {
        let s = s.reshape([b, layers, g * m, d]);
        let t = t.detach().reshape([b, layers, g * m, d]);
        let mut diff = s - t.clone();
        if layerwise_std {
            // σ_ℓ over layer ℓ's valid elements, all layers at once: [1, L, 1, 1].
            diff = diff / std_of(t, Some(w.clone()), Some(1));
        }
        (rho(diff, kind) * w.clone()).sum() / count.clone()
    };
    (term(k_s, k_t) + term(v_s, v_t)).mul_scalar(0.5)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kava::burn::tensor::{Device, TensorData};

    fn dev() -> Device {
        Device::flex()
    }
    fn t2(v: &[f32], s: [usize; 2]) -> Tensor<2> {
        Tensor::from_data(TensorData::new(v.to_vec(), s), &dev())
    }
    fn t4(v: &[f32], s: [usize; 4]) -> Tensor<4> {
        Tensor::from_data(TensorData::new(v.to_vec(), s), &dev())
    }
    fn scalar(t: Tensor<1>) -> f32 {
        t.into_scalar::<f32>()
    }
    fn close(got: f32, want: f64) {
        assert!((got as f64 - want).abs() < 1e-5, "got {got}, want {want}");
    }

    /// The stop-gradient of method.md §3: the teacher targets of L_CODI and L_KV get no gradient,
    /// the student side does.
    #[test]
    fn teacher_targets_get_no_gradient() {
        let ad = dev().autodiff();
        let leaf2 = |v: &[f32], s| Tensor::<2>::from_data(TensorData::new(v.to_vec(), s), &ad).require_grad();
        let (hs, ht) = (leaf2(&[1.0, 3.5, 0.2, -1.0], [2, 2]), leaf2(&[1.0, 3.0, 0.0, 2.0], [2, 2]));
        let grads = codi_loss(&[hs.clone()], &[ht.clone()], true).backward();
        assert!(ht.grad(&grads).is_none(), "L_CODI sent a gradient into the teacher");
        let g = hs.grad(&grads).expect("student gradient").into_data().try_to_vec::<f32>().unwrap();
        assert!(g.iter().any(|v| v.abs() > 1e-6), "student gradient is zero: {g:?}");

        let leaf4 = |seed: f32| {
            let v: Vec<f32> = (0..16).map(|i| ((i as f32 + seed) * 0.7).sin()).collect();
            Tensor::<4>::from_data(TensorData::new(v, [1, 2, 2, 4]), &ad).require_grad()
        };
        let (ks, vs, kt, vt) = (leaf4(0.0), leaf4(1.0), leaf4(2.0), leaf4(3.0));
        let valid = Tensor::<3, Bool>::from_data(TensorData::new(vec![true, false, true, true], [1, 2, 2]), &ad);
        let grads = kv_loss(ks.clone(), vs.clone(), kt.clone(), vt.clone(), valid, 2, Rho::SmoothL1, true).backward();
        assert!(kt.grad(&grads).is_none() && vt.grad(&grads).is_none(), "L_KV sent a gradient into the teacher");
        let gk = ks.grad(&grads).expect("student K gradient").into_data().try_to_vec::<f32>().unwrap();
        // Slot 1 of head 0 is invalid: no gradient there; the valid slots get one.
        assert!(gk[4..8].iter().all(|v| *v == 0.0), "masked slot got a gradient: {gk:?}");
        assert!(gk[..4].iter().any(|v| v.abs() > 1e-6), "valid slot got no gradient: {gk:?}");
        assert!(vs.grad(&grads).is_some());
    }

    #[test]
    fn rho_variants_by_hand() {
        let x = Tensor::<1>::from_data([-2.0f32, -0.5, 0.0, 0.5, 3.0], &dev());
        let v = |k| rho(x.clone(), k).into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(v(Rho::SmoothL1), vec![1.5, 0.125, 0.0, 0.125, 2.5]);
        assert_eq!(v(Rho::Mse), vec![4.0, 0.25, 0.0, 0.25, 9.0]);
        assert_eq!(v(Rho::L1), vec![2.0, 0.5, 0.0, 0.5, 3.0]);
    }

    #[test]
    fn cross_entropy_is_the_masked_token_mean() {
        // Row 0: logits (0, ln 3) → p = (1/4, 3/4); row 1 masked out (its target is out of range
        // on purpose: it must never be read).
        let logits = Tensor::<3>::from_data(TensorData::new(vec![0.0f32, 3f32.ln(), 5.0, -5.0, 0.0, 0.0], [1, 3, 2]), &dev());
        let targets = Tensor::<2, Int>::from_data(TensorData::new(vec![1i64, 99, 0], [1, 3]), &dev());
        let mask = Tensor::<2, Bool>::from_data(TensorData::new(vec![true, false, true], [1, 3]), &dev());
        // (−ln ¾ − ln ½) / 2
        close(scalar(cross_entropy(logits.clone(), targets, Some(mask))), (-(0.75f64.ln()) - 0.5f64.ln()) / 2.0);
        // Without a mask every position counts: −ln σ(10) for the middle one, −ln ½ for the last.
        let all = Tensor::<2, Int>::from_data(TensorData::new(vec![1i64, 0, 0], [1, 3]), &dev());
        close(scalar(cross_entropy(logits, all, None)), (-(0.75f64.ln()) - (1.0 / (1.0 + (-10f64).exp())).ln() - 0.5f64.ln()) / 3.0);
        let none = Tensor::<2, Bool>::from_data(TensorData::new(vec![false; 2], [1, 2]), &dev());
        let l = Tensor::<3>::zeros([1, 2, 4], &dev());
        close(scalar(cross_entropy(l, Tensor::zeros([1, 2], &dev()), Some(none))), 0.0);
    }

    #[test]
    fn codi_loss_by_hand() {
        // Layer 0: teacher (1, 3, 5, 7) as [2, 2] → unbiased std √(20/3); student off by 0.5 in
        // one place → ρ = (0, 0.125, 0, 0), mean 0.03125. Layer 1: teacher (0, 2, 4, 6) → std
        // √(20/3); student off by 2 everywhere → ρ = 1.5 each, mean 1.5.
        let s = [t2(&[1.0, 3.5, 5.0, 7.0], [2, 2]), t2(&[2.0, 4.0, 6.0, 8.0], [2, 2])];
        let t = [t2(&[1.0, 3.0, 5.0, 7.0], [2, 2]), t2(&[0.0, 2.0, 4.0, 6.0], [2, 2])];
        let sd = (20.0f64 / 3.0).sqrt();
        close(scalar(codi_loss(&s, &t, true)), (0.03125 / sd + 1.5 / sd) / 2.0);
        // One std over all eight teacher values: mean 3.5, Σ squared deviations 42 → √(42/7).
        close(scalar(codi_loss(&s, &t, false)), (0.03125 + 1.5) / 6f64.sqrt() / 2.0);
    }

    /// The per-layer loops the losses were first written as (one σ and one mean per layer), kept
    /// as the reference for the all-layers-at-once tensors.
    fn codi_loss_per_layer(student: &[Tensor<2>], teacher: &[Tensor<2>], layerwise_std: bool) -> Tensor<1> {
        let teacher: Vec<Tensor<2>> = teacher.iter().map(|t| t.clone().detach()).collect();
        let global = (!layerwise_std).then(|| std_of(Tensor::cat(teacher.clone(), 0), None, None).reshape([1]));
        let terms: Vec<Tensor<1>> = student
            .iter()
            .zip(&teacher)
            .map(|(s, t)| rho(s.clone() - t.clone(), Rho::SmoothL1).mean() / global.clone().unwrap_or_else(|| std_of(t.clone(), None, None).reshape([1])))
            .collect();
        Tensor::cat(terms, 0).mean()
    }

    #[allow(clippy::too_many_arguments)]
    fn kv_loss_per_layer(
        k_s: Tensor<4>, v_s: Tensor<4>, k_t: Tensor<4>, v_t: Tensor<4>, valid: Tensor<3, Bool>, layers: usize, kind: Rho,
    ) -> Tensor<1> {
        let [b, x, m, d] = k_s.dims();
        let g = x / layers;
        let w = valid.float().reshape([b, layers, g * m, 1]).expand([b, layers, g * m, d]);
        let count = w.clone().sum().clamp_min(1.0);
        let term = |s: Tensor<4>, t: Tensor<4>| -> Tensor<1> {
            let (s, t) = (s.reshape([b, layers, g * m, d]), t.detach().reshape([b, layers, g * m, d]));
            let sigmas: Vec<Tensor<1>> = (0..layers)
                .map(|l| {
                    let r = [0..b, l..l + 1, 0..g * m, 0..d];
                    std_of(t.clone().slice(r.clone()), Some(w.clone().slice(r)), None).reshape([1])
                })
                .collect();
            let diff = (s - t) / Tensor::cat(sigmas, 0).reshape([1, layers, 1, 1]);
            (rho(diff, kind) * w.clone()).sum() / count.clone()
        };
        (term(k_s, k_t) + term(v_s, v_t)).mul_scalar(0.5)
    }

    /// The all-layers-at-once L_CODI and L_KV equal the per-layer loops, value and student
    /// gradient, on random states with masked slots and layers of different scales.
    #[test]
    fn layer_batched_losses_equal_the_per_layer_loops() {
        let ad = dev().autodiff();
        let mut lcg = shaders::evict::check::Lcg(1);
        let mut rand = |n: usize, scale: f32| -> Vec<f32> { lcg.vec(n).into_iter().map(|v| v * scale).collect() };
        let (layers, b, c) = (3, 4, 5);
        let student: Vec<Tensor<2>> =
            (0..layers).map(|l| Tensor::from_data(TensorData::new(rand(b * c, 1.0 + l as f32), [b, c]), &ad).require_grad()).collect();
        let teacher: Vec<Tensor<2>> = (0..layers).map(|l| Tensor::from_data(TensorData::new(rand(b * c, 3.0 * (l + 1) as f32), [b, c]), &ad)).collect();
        for layerwise in [true, false] {
            let (got, want) = (codi_loss(&student, &teacher, layerwise), codi_loss_per_layer(&student, &teacher, layerwise));
            let (gv, wv) = (got.clone().into_scalar::<f32>(), want.clone().into_scalar::<f32>());
            assert!((gv - wv).abs() <= 1e-5 * wv.abs().max(1.0), "L_CODI (layerwise {layerwise}): {gv} vs {wv}");
            let (gg, wg) = (got.backward(), want.backward());
            for s in &student {
                let a = s.grad(&gg).unwrap().into_data().try_to_vec::<f32>().unwrap();
                let e = s.grad(&wg).unwrap().into_data().try_to_vec::<f32>().unwrap();
                assert!(a.iter().zip(&e).all(|(a, e)| (a - e).abs() <= 1e-5 + 1e-4 * e.abs()), "L_CODI gradient: {a:?} vs {e:?}");
            }
        }

        let (kv_heads, m, d) = (2, 3, 4);
        let shape = [2, layers * kv_heads, m, d];
        let n = shape.iter().product();
        let leaf = |v: Vec<f32>| Tensor::<4>::from_data(TensorData::new(v, shape), &ad).require_grad();
        let (k_s, v_s) = (leaf(rand(n, 1.0)), leaf(rand(n, 2.0)));
        let (k_t, v_t) = (leaf(rand(n, 4.0)), leaf(rand(n, 0.5)));
        let mask: Vec<bool> = (0..2 * layers * kv_heads * m).map(|i| i % 4 != 1).collect();
        let valid = Tensor::<3, Bool>::from_data(TensorData::new(mask, [2, layers * kv_heads, m]), &ad);
        for kind in [Rho::SmoothL1, Rho::Mse] {
            let got = kv_loss(k_s.clone(), v_s.clone(), k_t.clone(), v_t.clone(), valid.clone(), layers, kind, true);
            let want = kv_loss_per_layer(k_s.clone(), v_s.clone(), k_t.clone(), v_t.clone(), valid.clone(), layers, kind);
            let (gv, wv) = (got.clone().into_scalar::<f32>(), want.clone().into_scalar::<f32>());
            assert!((gv - wv).abs() <= 1e-5 * wv.abs().max(1.0), "L_KV ({kind:?}): {gv} vs {wv}");
            let (gg, wg) = (got.backward(), want.backward());
            for s in [&k_s, &v_s] {
                let a = s.grad(&gg).unwrap().into_data().try_to_vec::<f32>().unwrap();
                let e = s.grad(&wg).unwrap().into_data().try_to_vec::<f32>().unwrap();
                assert!(a.iter().zip(&e).all(|(a, e)| (a - e).abs() <= 1e-5 + 1e-4 * e.abs()), "L_KV gradient ({kind:?})");
            }
        }
    }

    #[test]
    fn kv_loss_masks_invalid_slots_and_scales_by_layer_std() {
        // b = 1, two layers of one KV head, m = 2 slots (slot 1 invalid), d = 2.
        let k_t = t4(&[1.0, 3.0, 100.0, 100.0, 0.0, 4.0, -50.0, 7.0], [1, 2, 2, 2]);
        let k_s = t4(&[1.5, 3.0, 0.0, 0.0, 2.0, 4.0, 0.0, 0.0], [1, 2, 2, 2]);
        let v_t = t4(&[0.0; 8], [1, 2, 2, 2]);
        let v_s = t4(&[0.0, 2.0, 9.0, 9.0, 0.0, 0.0, 9.0, 9.0], [1, 2, 2, 2]);
        let valid = Tensor::<3, Bool>::from_data(TensorData::new(vec![true, false, true, false], [1, 2, 2]), &dev());
        // σ = 1, MSE: K diffs over valid (0.5, 0, 2, 0) → Σ = 4.25; V (0, 2, 0, 0) → 4; 4 elements.
        let l = kv_loss(k_s.clone(), v_s.clone(), k_t.clone(), v_t.clone(), valid.clone(), 2, Rho::Mse, false);
        close(scalar(l), 0.5 * (4.25 / 4.0 + 4.0 / 4.0));
        // Layer-wise std of K: layer 0 (1, 3) → √2; layer 1 (0, 4) → √8. V teacher is all zero →
        // σ floors at 1e-6, so use L1 on K only by zeroing the V difference.
        let v_s0 = t4(&[0.0; 8], [1, 2, 2, 2]);
        let l = kv_loss(k_s, v_s0, k_t, v_t, valid, 2, Rho::L1, true);
        close(scalar(l), 0.5 * ((0.5 / 2f64.sqrt()) + (2.0 / 8f64.sqrt())) / 4.0);
    }
}
