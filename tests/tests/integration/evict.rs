//! The tensor-ops eviction equals the plain-Rust reference (method.md §4) on every device, over a
//! sweep: N below, equal to and above M, N not a multiple of common workgroup sizes, GQA groups
//! 1, 3 and 7, padded batches, λ ∈ {0, 0.1, 1}, crop, both pools and both orders.

use kava::burn::tensor::{Device, Int, Tensor, TensorData};
use kava_tests::{assert_close, devices, host};
use shaders::evict::reference::evict_batch;
use shaders::evict::tensor_ops::evict;
use shaders::evict::{BatchShape, EvictConfig, Method, Order, Pool};

/// A small LCG: reproducible data without a rand dependency.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 33) as f32 / (1u64 << 31) as f32) * 2.0 - 1.0
    }
    fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.next()).collect()
    }
}

fn tensor4(data: &[f32], shape: [usize; 4], device: &Device) -> Tensor<4> {
    Tensor::<4>::from_data(TensorData::new(data.to_vec(), shape), device)
}

fn ints(t: Tensor<3, Int>) -> Vec<i64> {
    t.into_data().iter::<i64>().collect()
}

#[test]
fn tensor_ops_eviction_equals_the_reference_on_every_device() {
    let mut rng = Lcg(20261123);
    let mut cases = 0;
    // (b, layers·kv heads, group, n_max, a_max, d, cot lens, ans lens)
    let shapes: [(usize, usize, usize, usize, usize, usize, Vec<usize>, Vec<usize>); 4] = [
        (2, 3, 1, 30, 5, 8, vec![30, 17], vec![5, 3]),  // N above and below M = 24
        (1, 2, 3, 24, 4, 16, vec![24], vec![4]),        // N = M, groups of 3
        (3, 2, 7, 67, 6, 8, vec![67, 9, 0], vec![6, 1, 0]), // N not a multiple of 32/64, empty row
        (2, 4, 3, 40, 3, 4, vec![33, 40], vec![3, 2]),
    ];
    for (backend, device) in devices() {
        for (b, x, group, n, a, d, cot, ans) in shapes.clone() {
            let k = rng.vec(b * x * n * d);
            let v = rng.vec(b * x * n * d);
            let q = rng.vec(b * x * group * a * d);
            for method in [Method::Mix { lambda: 0.1 }, Method::Mix { lambda: 0.0 }, Method::Mix { lambda: 1.0 }, Method::Crop] {
                for (pool, order) in [(Pool::Max, Order::Position), (Pool::Mean, Order::Score)] {
                    let cfg = EvictConfig { m: 24, method, pool, order };
                    let want = evict_batch(&k, &v, &q, &cot, &ans, BatchShape { b, lg: x, group, n_max: n, a_max: a, d }, &cfg);
                    let got = evict(
                        tensor4(&k, [b, x, n, d], &device),
                        tensor4(&v, [b, x, n, d], &device),
                        tensor4(&q, [b, x * group, a, d], &device),
                        &cot,
                        &ans,
                        &cfg,
                    );
                    let what = format!("{backend} b{b} x{x} r{group} n{n} {method:?} {pool:?} {order:?}");
                    let want_idx: Vec<i64> = want.indices.iter().map(|&i| i as i64).collect();
                    assert_eq!(ints(got.indices), want_idx, "{what}: indices");
                    let mask: Vec<bool> = got.mask.into_data().iter::<bool>().collect();
                    assert_eq!(mask, want.mask, "{what}: mask");
                    assert_close(&format!("{what}: K"), &host(got.k), &want.k, 1e-6);
                    assert_close(&format!("{what}: V"), &host(got.v), &want.v, 1e-6);
                    cases += 1;
                }
            }
        }
    }
    assert!(cases >= 32);
}
