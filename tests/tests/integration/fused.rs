//! The fused kernels of `kava::model::fused` against their tensor-op form (the specification):
//! values, and gradients through the handwritten backward, on every device; on wgpu the kernels
//! themselves run (lavapipe in CI), elsewhere the tensor-op form is what runs.

use kava::burn::tensor::{Device, Distribution, Tensor, TensorData};
use kava::model::fused;
use kava::Backend;
use kava_tests::{assert_close, devices, host};

/// (output, dx, dw) of `f` for `y = f(x, w)` under the loss `sum(y · r)`.
fn run(
    f: fn(Tensor<3>, Tensor<1>, f64) -> Tensor<3>,
    x: &[f32],
    w: &[f32],
    r: &[f32],
    dims: [usize; 3],
    device: &Device,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let ad = device.clone().autodiff();
    let x = vector(x, &ad).reshape(dims).require_grad();
    let w = vector(w, &ad).require_grad();
    let r = vector(r, &ad).reshape(dims);
    let y = f(x.clone(), w.clone(), 1e-5);
    let grads = (y.clone() * r).sum().backward();
    let dx = x.grad(&grads).expect("dx");
    let dw = w.grad(&grads).expect("dw");
    (host(y.inner()), host(dx), host(dw))
}

fn vector(v: &[f32], device: &Device) -> Tensor<1> {
    Tensor::from_data(TensorData::new(v.to_vec(), [v.len()]), device)
}

fn values(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    // A deterministic spread of signs and magnitudes, no RNG needed.
    (0..n).map(|i| ((((i as u64 * 2654435761 + seed * 97) % 1000) as f32) / 500.0 - 1.0) * scale).collect()
}

#[test]
fn fused_rms_norm_matches_its_tensor_op_form_in_values_and_gradients() {
    for (backend, device) in devices() {
        // A row narrower than a cube (48), and one that each unit walks several times (300).
        for (dims, seed) in [([2, 5, 48], 1u64), ([3, 7, 300], 2)] {
            let n: usize = dims.iter().product();
            let c = dims[2];
            let (x, w, r) = (values(n, seed, 3.0), values(c, seed + 10, 1.5), values(n, seed + 20, 1.0));
            let probe = Tensor::<3>::zeros(dims, &device);
            let fused_here = fused::available(&probe);
            if backend == Backend::Wgpu {
                assert!(fused_here, "the fused kernels must run on wgpu");
            } else {
                assert!(!fused_here, "{backend}: no fused kernels expected");
            }
            let got = run(fused::rms_norm, &x, &w, &r, dims, &device);
            let want = run(fused::rms_norm_reference, &x, &w, &r, dims, &device);
            let tag = format!("{backend} {dims:?}");
            assert_close(&format!("{tag} y"), &got.0, &want.0, 1e-5);
            assert_close(&format!("{tag} dx"), &got.1, &want.1, 1e-4);
            assert_close(&format!("{tag} dw"), &got.2, &want.2, 1e-3);
            // The plain (non-autodiff) device takes the same forward.
            let x_plain = vector(&x, &device).reshape(dims);
            let w_plain = vector(&w, &device);
            assert_close(&format!("{tag} y (no autodiff)"), &host(fused::rms_norm(x_plain, w_plain, 1e-5)), &want.0, 1e-5);
        }
    }
}

#[test]
fn switching_the_fused_kernels_off_takes_the_tensor_op_form() {
    let device = devices().pop().expect("a device").1;
    let probe = Tensor::<3>::random([1, 2, 8], Distribution::Default, &device);
    let before = fused::set_enabled(false);
    assert!(!fused::available(&probe));
    fused::set_enabled(before);
}

#[test]
fn fused_masked_softmax_matches_its_tensor_op_form_in_values_and_gradients() {
    // b 3, h 2, t 5 new queries on a cache of s 9 slots (s0 = 4 cached before them); row 1 has
    // padding among the cached slots and at its end, row 2 none.
    let (b, h, t, s, s0) = (3usize, 2usize, 5usize, 9usize, 4usize);
    let mut valid = vec![1.0f32; b * s];
    for j in [2usize, 7, 8] {
        valid[s + j] = 0.0;
    }
    valid[8] = 0.0;
    let n = b * h * t * s;
    let (x, r) = (values(n, 3, 4.0), values(n, 4, 1.0));
    for (backend, device) in devices() {
        let grad_of = |f: fn(Tensor<4>, f64, Tensor<2>, usize) -> Tensor<4>| {
            let ad = device.clone().autodiff();
            let scores = vector(&x, &ad).reshape([b, h, t, s]).require_grad();
            let p = f(scores.clone(), 0.37, vector(&valid, &ad).reshape([b, s]), s0);
            let grads = (p.clone() * vector(&r, &ad).reshape([b, h, t, s])).sum().backward();
            (host(p.inner()), host(scores.grad(&grads).expect("d scores")))
        };
        let got = grad_of(fused::masked_softmax);
        let want = grad_of(fused::masked_softmax_reference);
        assert_close(&format!("{backend} p"), &got.0, &want.0, 1e-6);
        assert_close(&format!("{backend} d scores"), &got.1, &want.1, 1e-5);
        // Hidden entries get exactly nothing: query 0 of row 0 sees slots 0..=4.
        assert!(got.0[5..9].iter().all(|&p| p == 0.0), "{backend}: the future leaked: {:?}", &got.0[..9]);
    }
}

#[test]
fn fused_rope_heads_matches_its_tensor_op_form_in_values_and_gradients() {
    use kava::burn::tensor::{Int, TensorData as Data};
    use kava::model::RopeAngles;
    let (b, t, n, d) = (2usize, 5usize, 3usize, 8usize);
    let inv: Vec<f32> = (0..d / 2).map(|i| 1.0 / 10000f32.powf((2 * i) as f32 / d as f32)).collect();
    let (y, r) = (values(b * t * n * d, 5, 2.0), values(b * n * t * d, 6, 1.0));
    for (backend, device) in devices() {
        let positions = Tensor::<2, Int>::from_data(Data::new((0..(b * t) as i64).map(|p| p * 3 % 7).collect::<Vec<_>>(), [b, t]), &device);
        let rope = RopeAngles::new(positions, &inv, &device);
        let run = |f: fn(Tensor<3>, Tensor<4>, Tensor<4>, usize) -> Tensor<4>| {
            let ad = device.clone().autodiff();
            let yt = vector(&y, &ad).reshape([b, t, n * d]).require_grad();
            let (c, s) = (rope.cos.clone().autodiff(), rope.sin.clone().autodiff());
            let out = f(yt.clone(), c, s, n);
            let grads = (out.clone() * vector(&r, &ad).reshape([b, n, t, d])).sum().backward();
            (host(out.inner()), host(yt.grad(&grads).expect("dy")))
        };
        let got = run(fused::rope_heads);
        let want = run(fused::rope_heads_reference);
        assert_close(&format!("{backend} rope"), &got.0, &want.0, 1e-5);
        assert_close(&format!("{backend} rope dy"), &got.1, &want.1, 1e-5);
        // The model's own path (RopeAngles::heads) agrees with its rotation of the heads.
        let yp = vector(&y, &device).reshape([b, t, n * d]);
        let apply = rope.apply(yp.clone().reshape([b, t, n, d]).swap_dims(1, 2));
        assert_close(&format!("{backend} heads vs apply"), &host(rope.heads(yp, n)), &host(apply), 1e-5);
    }
}

#[test]
fn fused_swiglu_matches_its_tensor_op_form_in_values_and_gradients() {
    let dims = [2usize, 3, 40];
    let n: usize = dims.iter().product();
    let (g, u, r) = (values(n, 7, 6.0), values(n, 8, 2.0), values(n, 9, 1.0));
    for (backend, device) in devices() {
        let run = |f: fn(Tensor<3>, Tensor<3>) -> Tensor<3>| {
            let ad = device.clone().autodiff();
            let gt = vector(&g, &ad).reshape(dims).require_grad();
            let ut = vector(&u, &ad).reshape(dims).require_grad();
            let y = f(gt.clone(), ut.clone());
            let grads = (y.clone() * vector(&r, &ad).reshape(dims)).sum().backward();
            (host(y.inner()), host(gt.grad(&grads).expect("dg")), host(ut.grad(&grads).expect("du")))
        };
        let got = run(fused::swiglu);
        let want = run(fused::swiglu_reference);
        assert_close(&format!("{backend} swiglu"), &got.0, &want.0, 1e-5);
        assert_close(&format!("{backend} d gate"), &got.1, &want.1, 1e-5);
        assert_close(&format!("{backend} d up"), &got.2, &want.2, 1e-5);
    }
}
