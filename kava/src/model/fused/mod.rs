//! Fused kernels with their own backward for the cubecl backends (CUDA, wgpu), each beside the
//! plain tensor-op form it replaces. The tensor-op form is the specification and the path on
//! every other device (the CPU backend, WebGPU in the browser, and any tensor that is not f32);
//! `tests/tests/integration/fused.rs` compares the two, values and gradients.
//!
//! Why: a training step is a few thousand small kernels, and on a GPU its time is mostly their
//! launches (and burn's bookkeeping per operation), not their arithmetic. RMSNorm written with
//! tensor ops is six kernels forward and about ten backward; fused it is one forward and two
//! backward (the row kernel and the weight gradient's column sum).
//!
//! The fused path can be switched off for a thread ([`set_enabled`]), so that a benchmark can
//! time both in one process.

use std::cell::Cell;

use burn::tensor::{activation, Int, Tensor};

#[cfg(all(feature = "cube", not(feature = "fusion")))]
mod cube;

thread_local! {
    static ENABLED: Cell<bool> = const { Cell::new(true) };
}

/// Turns the fused kernels on or off for this thread (on by default); returns the previous
/// setting. Off, every operation takes its tensor-op form.
pub fn set_enabled(on: bool) -> bool {
    ENABLED.with(|c| c.replace(on))
}

/// Whether this thread uses the fused kernels where the device has them.
pub fn enabled() -> bool {
    ENABLED.with(Cell::get)
}

/// Whether the fused kernels run for tensors like `t` here: compiled in (a native GPU backend
/// without burn's own fusion), switched on for this thread, and `t` on a cubecl device in f32.
pub fn available<const D: usize>(t: &Tensor<D>) -> bool {
    #[cfg(all(feature = "cube", not(feature = "fusion")))]
    return enabled() && cube::runs_on(t);
    #[cfg(not(all(feature = "cube", not(feature = "fusion"))))]
    {
        let _ = t;
        false
    }
}

/// RMSNorm over the last axis, `w · x / sqrt(mean(x²) + eps)`, as HF Llama/Qwen2 compute it.
///
/// # Shapes
/// `x`: `[b, t, c]`, `w`: `[c]` → `[b, t, c]`
pub fn rms_norm(x: Tensor<3>, w: Tensor<1>, eps: f64) -> Tensor<3> {
    #[cfg(all(feature = "cube", not(feature = "fusion")))]
    if available(&x) && available(&w) {
        return cube::rms_norm(x, w, eps);
    }
    rms_norm_reference(x, w, eps)
}

/// [`rms_norm`] in tensor ops: the specification.
pub fn rms_norm_reference(x: Tensor<3>, w: Tensor<1>, eps: f64) -> Tensor<3> {
    // (mean(x²) + eps)^(−1/2) as one power: fewer launches than sqrt then recip.
    let inv_rms = x.clone().powi_scalar(2).mean_dim(2).add_scalar(eps).powf_scalar(-0.5);
    x * inv_rms * w.unsqueeze::<3>()
}

/// Attention probabilities: softmax over the keys of `scale · scores`, where query `i` (cache
/// slot `s0 + i`) does not see the slots after its own nor padding (`valid` 0); hidden entries
/// are filled with −1e9 before the softmax, as the tensor-op form does.
///
/// # Shapes
/// `scores`: `[b, h, t, s]`, `valid`: `[b, s]` (1.0 real, 0.0 padding) → `[b, h, t, s]`
pub fn masked_softmax(scores: Tensor<4>, scale: f64, valid: Tensor<2>, s0: usize) -> Tensor<4> {
    #[cfg(all(feature = "cube", not(feature = "fusion")))]
    if available(&scores) && available(&valid) {
        return cube::masked_softmax(scores, scale, valid, s0);
    }
    masked_softmax_reference(scores, scale, valid, s0)
}

/// [`masked_softmax`] in tensor ops: the specification.
pub fn masked_softmax_reference(scores: Tensor<4>, scale: f64, valid: Tensor<2>, s0: usize) -> Tensor<4> {
    let [b, h, t, s] = scores.dims();
    let device = scores.device();
    let slots = Tensor::<1, Int>::arange(0..s as i64, &device).reshape([1, 1, 1, s]);
    let last = Tensor::<1, Int>::arange(s0 as i64..(s0 + t) as i64, &device).reshape([1, 1, t, 1]);
    let future = slots.greater(last).expand([b, h, t, s]);
    let padding = valid.equal_elem(0.0).reshape([b, 1, 1, s]).expand([b, h, t, s]);
    let hidden = future.bool_or(padding);
    activation::softmax(scores.mul_scalar(scale).mask_fill(hidden, -1.0e9), 3)
}

/// A projection's output split into heads and rotated by rotate-half RoPE: `y` viewed as
/// `[b, t, n, d]`, moved to `[b, n, t, d]`, each pair `(i, i + d/2)` rotated by its position's
/// angle (`cos`/`sin` `[b, 1, t, d/2]`, as [`super::RopeAngles`] holds them).
///
/// # Shapes
/// `y`: `[b, t, n·d]` → `[b, n, t, d]`
pub fn rope_heads(y: Tensor<3>, cos: Tensor<4>, sin: Tensor<4>, n: usize) -> Tensor<4> {
    #[cfg(all(feature = "cube", not(feature = "fusion")))]
    if available(&y) && available(&cos) && available(&sin) {
        return cube::rope_heads(y, cos, sin, n);
    }
    rope_heads_reference(y, cos, sin, n)
}

/// [`rope_heads`] in tensor ops: the specification.
pub fn rope_heads_reference(y: Tensor<3>, cos: Tensor<4>, sin: Tensor<4>, n: usize) -> Tensor<4> {
    let [b, t, nd] = y.dims();
    let d = nd / n;
    let x = y.reshape([b, t, n, d]).swap_dims(1, 2);
    let x1 = x.clone().narrow(3, 0, d / 2);
    let x2 = x.narrow(3, d / 2, d / 2);
    let (c, s) = (cos, sin);
    Tensor::cat(vec![x1.clone() * c.clone() - x2.clone() * s.clone(), x2 * c + x1 * s], 3)
}

/// SwiGLU's gate, `silu(gate) · up` (the MLP of Llama and Qwen2).
///
/// # Shapes
/// `gate`, `up`: `[b, t, f]` → `[b, t, f]`
pub fn swiglu(gate: Tensor<3>, up: Tensor<3>) -> Tensor<3> {
    #[cfg(all(feature = "cube", not(feature = "fusion")))]
    if available(&gate) && available(&up) {
        return cube::swiglu(gate, up);
    }
    swiglu_reference(gate, up)
}

/// [`swiglu`] in tensor ops: the specification.
pub fn swiglu_reference(gate: Tensor<3>, up: Tensor<3>) -> Tensor<3> {
    activation::silu(gate) * up
}
