//! The CubeCL kernels behind [`super`], registered as a burn backend extension on the cubecl
//! backend, with a handwritten backward on the autodiff backend.
//!
//! WebGPU-portable by construction: f32 only, no atomics, reductions through shared memory,
//! every barrier in uniform control flow.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::NodeId;
use burn::backend::{backend_extension, tensor::FloatTensor, Autodiff, Dispatch, DispatchDevice, TensorMetadata};
use burn::tensor::{DType, Shape, Tensor};
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::CubeBackend;
use cubecl::prelude::*;
use cubecl::{CubeCount, CubeDim};

/// Whether `t` lives on a cubecl runtime in f32 (the kernels' only dtype).
pub fn runs_on<const D: usize>(t: &Tensor<D>) -> bool {
    t.dtype() == DType::F32 && matches!(t.device().inner().as_dispatch(), DispatchDevice::Cube(_))
}

/// The operations the kernels implement. Dispatch routes a call to the cubecl backend, or to
/// the autodiff backend over it (which records the handwritten backward).
#[backend_extension(Cube, Autodiff)]
pub trait FusedOps: burn::backend::Backend {
    /// `x` `[n, c]` (rows), `w` `[c]` → `[n, c]`.
    fn kava_rms_norm(x: FloatTensor<Self>, w: FloatTensor<Self>, eps: f32) -> FloatTensor<Self>;
    /// `scores` `[rows, s]` (row `r` is example `r / per_example`, query `r % t`, at cache slot
    /// `s0 + r % t`), `valid` `[b, s]` (1 real, 0 padding) → softmax over `s` of
    /// `scale · scores`, with the future and padding filled with −1e9 first.
    fn kava_masked_softmax(
        scores: FloatTensor<Self>,
        valid: FloatTensor<Self>,
        scale: f32,
        per_example: usize,
        t: usize,
        s0: usize,
    ) -> FloatTensor<Self>;
    /// The gradient of the scores from the probabilities `p` and their gradient `grad`.
    fn kava_masked_softmax_backward(p: FloatTensor<Self>, grad: FloatTensor<Self>, scale: f32) -> FloatTensor<Self>;
    /// Rotate-half RoPE fused with the split into heads: `y` `[b, t, n·d]` (a projection's
    /// output), `cos`/`sin` `[b, t, d/2]` → `[b, n, t, d]`. With `inverse`, the transposed map:
    /// `[b, n, t, d]` → `[b, t, n·d]` rotated back (the backward).
    fn kava_rope(y: FloatTensor<Self>, cos: FloatTensor<Self>, sin: FloatTensor<Self>, n: usize, inverse: bool) -> FloatTensor<Self>;
    /// SwiGLU's gate: `silu(gate) · up`, element-wise (same shapes).
    fn kava_swiglu(gate: FloatTensor<Self>, up: FloatTensor<Self>) -> FloatTensor<Self>;
    /// `(d gate, d up)` for the upstream gradient `grad`.
    fn kava_swiglu_backward(
        gate: FloatTensor<Self>,
        up: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);
    /// `(dx [n, c], dw [c])` for the upstream gradient `grad` `[n, c]`.
    fn kava_rms_norm_backward(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        eps: f32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);
}

/// See [`super::masked_softmax`]; on a cubecl device in f32.
pub fn masked_softmax(scores: Tensor<4>, scale: f64, valid: Tensor<2>, s0: usize) -> Tensor<4> {
    let [b, h, t, s] = scores.dims();
    let rows = scores.reshape([b * h * t, s]);
    let p = Dispatch::kava_masked_softmax(rows.into_dispatch(), valid.into_dispatch(), scale as f32, h * t, t, s0);
    Tensor::<2>::from_dispatch(p).reshape([b, h, t, s])
}

/// See [`super::rope_heads`]; on a cubecl device in f32.
pub fn rope_heads(y: Tensor<3>, cos: Tensor<4>, sin: Tensor<4>, n: usize) -> Tensor<4> {
    let [b, t, nd] = y.dims();
    let out = Dispatch::kava_rope(y.into_dispatch(), cos.into_dispatch(), sin.into_dispatch(), n, false);
    Tensor::<4>::from_dispatch(out).reshape([b, n, t, nd / n])
}

/// See [`super::swiglu`]; on a cubecl device in f32.
pub fn swiglu(gate: Tensor<3>, up: Tensor<3>) -> Tensor<3> {
    Tensor::<3>::from_dispatch(Dispatch::kava_swiglu(gate.into_dispatch(), up.into_dispatch()))
}

/// See [`super::rms_norm`]; `x` and `w` on a cubecl device in f32.
pub fn rms_norm(x: Tensor<3>, w: Tensor<1>, eps: f64) -> Tensor<3> {
    let [b, t, c] = x.dims();
    let rows = x.reshape([b * t, c]);
    let y = Dispatch::kava_rms_norm(rows.into_dispatch(), w.into_dispatch(), eps as f32);
    Tensor::<2>::from_dispatch(y).reshape([b, t, c])
}

/// Cube-wide sum of one value per unit, through `red` (one slot per unit); every unit gets it.
#[cube]
fn cube_sum(red: &mut Shared<[f32]>, value: f32, #[comptime] threads: usize) -> f32 {
    let tid = UNIT_POS_X as usize;
    red[tid] = value;
    sync_cube();
    let mut stride = (threads / 2).runtime();
    while stride > 0 {
        if tid < stride {
            let other = red[tid + stride];
            red[tid] += other;
        }
        sync_cube();
        stride /= 2;
    }
    let out = red[0];
    sync_cube();
    out
}

/// One row per cube (`CUBE_POS_X + CUBE_POS_Y·CUBE_COUNT_X`); unit `u` owns columns
/// `u, u + threads, …`.
#[cube(launch_unchecked)]
fn rms_norm_kernel(x: &[f32], w: &[f32], y: &mut [f32], eps: f32, rows: usize, c: usize, #[comptime] threads: usize) {
    let row = CUBE_POS_X as usize + CUBE_POS_Y as usize * CUBE_COUNT_X as usize;
    let tid = UNIT_POS_X as usize;
    let mut red = Shared::<[f32]>::new_slice(threads);
    // Rows past the end still take part in the barriers (uniform control flow), reading row 0.
    let valid = row < rows;
    let base = if valid { row * c } else { 0usize };
    let mut sq = f32::new(0.0);
    let mut i = tid;
    while i < c {
        let v = x[base + i];
        sq += v * v;
        i += threads;
    }
    let total = cube_sum(&mut red, sq, threads);
    let inv = f32::new(1.0) / f32::sqrt(total / f32::cast_from(c as u32) + eps);
    if valid {
        let mut j = tid;
        while j < c {
            y[base + j] = x[base + j] * inv * w[j];
            j += threads;
        }
    }
}

/// The row part of the backward: `dx = inv·(g·w) − x·inv³·mean(g·w·x)` and the per-row
/// contributions `g·x·inv` to `dw` (summed over rows afterwards).
#[cube(launch_unchecked)]
#[allow(clippy::too_many_arguments)]
fn rms_norm_backward_kernel(
    x: &[f32],
    w: &[f32],
    g: &[f32],
    dx: &mut [f32],
    gx: &mut [f32],
    eps: f32,
    rows: usize,
    c: usize,
    #[comptime] threads: usize,
) {
    let row = CUBE_POS_X as usize + CUBE_POS_Y as usize * CUBE_COUNT_X as usize;
    let tid = UNIT_POS_X as usize;
    let mut red = Shared::<[f32]>::new_slice(threads);
    let valid = row < rows;
    let base = if valid { row * c } else { 0usize };
    let mut sq = f32::new(0.0);
    let mut dot = f32::new(0.0);
    let mut i = tid;
    while i < c {
        let v = x[base + i];
        sq += v * v;
        dot += g[base + i] * w[i] * v;
        i += threads;
    }
    let total = cube_sum(&mut red, sq, threads);
    let dot = cube_sum(&mut red, dot, threads);
    let inv = f32::new(1.0) / f32::sqrt(total / f32::cast_from(c as u32) + eps);
    let k = inv * inv * inv * dot / f32::cast_from(c as u32);
    if valid {
        let mut j = tid;
        while j < c {
            let v = x[base + j];
            let gj = g[base + j];
            dx[base + j] = inv * gj * w[j] - v * k;
            gx[base + j] = gj * v * inv;
            j += threads;
        }
    }
}

/// Cube-wide maximum of one value per unit (as [`cube_sum`]).
#[cube]
fn cube_max(red: &mut Shared<[f32]>, value: f32, #[comptime] threads: usize) -> f32 {
    let tid = UNIT_POS_X as usize;
    red[tid] = value;
    sync_cube();
    let mut stride = (threads / 2).runtime();
    while stride > 0 {
        if tid < stride {
            let other = red[tid + stride];
            if other > red[tid] {
                red[tid] = other;
            }
        }
        sync_cube();
        stride /= 2;
    }
    let out = red[0];
    sync_cube();
    out
}

/// One row of scores per cube: scale, mask (the future of query `i` is every slot past
/// `s0 + i`; padding is `valid == 0`), softmax.
#[cube(launch_unchecked)]
#[allow(clippy::too_many_arguments)]
fn masked_softmax_kernel(
    x: &[f32],
    valid: &[f32],
    p: &mut [f32],
    scale: f32,
    rows: usize,
    s: usize,
    per_example: usize,
    t: usize,
    s0: usize,
    #[comptime] threads: usize,
) {
    let row = CUBE_POS_X as usize + CUBE_POS_Y as usize * CUBE_COUNT_X as usize;
    let tid = UNIT_POS_X as usize;
    let mut red = Shared::<[f32]>::new_slice(threads);
    let ok = row < rows;
    let r = if ok { row } else { 0usize };
    let base = r * s;
    let vbase = (r / per_example) * s;
    let last = s0 + r % t; // the last slot this query sees
    let mut mx = f32::new(-1.0e30);
    let mut j = tid;
    while j < s {
        let mut v = x[base + j] * scale;
        if j > last || valid[vbase + j] == 0.0f32 {
            v = f32::new(-1.0e9);
        }
        if v > mx {
            mx = v;
        }
        j += threads;
    }
    let mx = cube_max(&mut red, mx, threads);
    let mut sum = f32::new(0.0);
    let mut j = tid;
    while j < s {
        let mut v = x[base + j] * scale;
        if j > last || valid[vbase + j] == 0.0f32 {
            v = f32::new(-1.0e9);
        }
        sum += f32::exp(v - mx);
        j += threads;
    }
    let sum = cube_sum(&mut red, sum, threads);
    if ok {
        let mut j = tid;
        while j < s {
            let mut v = x[base + j] * scale;
            if j > last || valid[vbase + j] == 0.0f32 {
                v = f32::new(-1.0e9);
            }
            p[base + j] = f32::exp(v - mx) / sum;
            j += threads;
        }
    }
}

/// `dx = scale · p · (g − Σ p·g)` per row (masked entries have `p = 0`, so they get 0).
#[cube(launch_unchecked)]
fn softmax_backward_kernel(p: &[f32], g: &[f32], dx: &mut [f32], scale: f32, rows: usize, s: usize, #[comptime] threads: usize) {
    let row = CUBE_POS_X as usize + CUBE_POS_Y as usize * CUBE_COUNT_X as usize;
    let tid = UNIT_POS_X as usize;
    let mut red = Shared::<[f32]>::new_slice(threads);
    let ok = row < rows;
    let base = if ok { row * s } else { 0usize };
    let mut dot = f32::new(0.0);
    let mut j = tid;
    while j < s {
        dot += p[base + j] * g[base + j];
        j += threads;
    }
    let dot = cube_sum(&mut red, dot, threads);
    if ok {
        let mut j = tid;
        while j < s {
            dx[base + j] = scale * p[base + j] * (g[base + j] - dot);
            j += threads;
        }
    }
}

/// One unit per element of the `[b, n, t, d]` side. Forward: read `y[b, t, n·d]`, rotate by
/// the position's angle, write `[b, n, t, d]`; inverse: read `[b, n, t, d]`, rotate back, write
/// `[b, t, n·d]`.
#[cube(launch_unchecked)]
#[allow(clippy::too_many_arguments)]
fn rope_kernel(
    input: &[f32],
    cos: &[f32],
    sin: &[f32],
    output: &mut [f32],
    total: usize,
    n: usize,
    t: usize,
    d: usize,
    #[comptime] inverse: bool,
) {
    let pos = ABSOLUTE_POS;
    if pos < total {
        let half = d / 2;
        let j = pos % d;
        let ti = (pos / d) % t;
        let hi = (pos / (d * t)) % n;
        let bi = pos / (d * t * n);
        let first = j < half;
        let k = if first { j } else { j - half };
        let partner = if first { j + half } else { j - half };
        let angle = (bi * t + ti) * half + k;
        let c = cos[angle];
        let mut sn = sin[angle];
        if comptime![inverse] {
            sn = -sn;
        }
        // [b, t, n·d] offset of (bi, ti, hi, ·) and [b, n, t, d] offset of (bi, hi, ti, ·).
        let btnd = ((bi * t + ti) * n + hi) * d;
        let bntd = ((bi * n + hi) * t + ti) * d;
        let src = if comptime![inverse] { bntd } else { btnd };
        let dst = if comptime![inverse] { btnd } else { bntd };
        let x = input[src + j];
        let other = input[src + partner];
        let rotated = if first { x * c - other * sn } else { x * c + other * sn };
        output[dst + j] = rotated;
    }
}

/// `y = g·σ(g)·u`, one unit per element.
#[cube(launch_unchecked)]
fn swiglu_kernel(g: &[f32], u: &[f32], y: &mut [f32], total: usize) {
    let pos = ABSOLUTE_POS;
    if pos < total {
        let x = g[pos];
        let sig = f32::new(1.0) / (f32::new(1.0) + f32::exp(-x));
        y[pos] = x * sig * u[pos];
    }
}

/// `dg = dy·u·σ(g)·(1 + g·(1 − σ(g)))`, `du = dy·g·σ(g)`, one unit per element.
#[cube(launch_unchecked)]
fn swiglu_backward_kernel(g: &[f32], u: &[f32], dy: &[f32], dg: &mut [f32], du: &mut [f32], total: usize) {
    let pos = ABSOLUTE_POS;
    if pos < total {
        let x = g[pos];
        let sig = f32::new(1.0) / (f32::new(1.0) + f32::exp(-x));
        let grad = dy[pos];
        dg[pos] = grad * u[pos] * sig * (f32::new(1.0) + x * (f32::new(1.0) - sig));
        du[pos] = grad * x * sig;
    }
}

/// Threads per cube for rows of `c`: a power of two in 32..=256 within the device's limit.
fn threads_for(c: usize, max_units: u32) -> usize {
    let cap = (max_units as usize).clamp(1, 256);
    let want = c.next_power_of_two().clamp(32, 256).min(cap);
    let mut t = 1;
    while t * 2 <= want {
        t *= 2;
    }
    t
}

/// A grid of one cube per row (rows spill into y past the x limit).
fn row_grid(rows: usize) -> CubeCount {
    const MAX_X: usize = 65_535;
    let x = rows.clamp(1, MAX_X);
    CubeCount::Static(x as u32, rows.div_ceil(x).max(1) as u32, 1)
}

fn contiguous(t: CubeTensor) -> CubeTensor {
    burn_cubecl::kernel::into_contiguous(t)
}

fn empty_like(t: &CubeTensor, shape: Vec<usize>) -> CubeTensor {
    let n: usize = shape.iter().product();
    let handle = t.client.empty(n.max(1) * size_of::<f32>());
    CubeTensor::new_contiguous(t.client.clone(), t.device.clone(), Shape::from(shape), handle, DType::F32)
}

impl FusedOps for CubeBackend {
    fn kava_rms_norm(x: CubeTensor, w: CubeTensor, eps: f32) -> CubeTensor {
        let (x, w) = (contiguous(x), contiguous(w));
        let dims = x.shape().to_vec();
        let (rows, c) = (dims[0], dims[1]);
        let y = empty_like(&x, vec![rows, c]);
        if rows > 0 && c > 0 {
            let threads = threads_for(c, x.client.properties().hardware.max_units_per_cube);
            // SAFETY: each unit reads and writes columns < c of its own row < rows (rows past
            // the end read row 0 and write nothing); the buffers are [rows, c], [c], [rows, c].
            unsafe {
                rms_norm_kernel::launch_unchecked(
                    &x.client,
                    row_grid(rows),
                    CubeDim::new_1d(threads as u32),
                    x.clone().into_buffer_arg(),
                    w.into_buffer_arg(),
                    y.clone().into_buffer_arg(),
                    eps,
                    rows,
                    c,
                    threads,
                );
            }
        }
        y
    }

    fn kava_masked_softmax(scores: CubeTensor, valid: CubeTensor, scale: f32, per_example: usize, t: usize, s0: usize) -> CubeTensor {
        let (x, valid) = (contiguous(scores), contiguous(valid));
        let dims = x.shape().to_vec();
        let (rows, s) = (dims[0], dims[1]);
        let p = empty_like(&x, vec![rows, s]);
        if rows > 0 && s > 0 {
            let threads = threads_for(s, x.client.properties().hardware.max_units_per_cube);
            // SAFETY: each unit reads and writes columns < s of its own row < rows; `valid` is
            // [rows / per_example, s] and row / per_example indexes it.
            unsafe {
                masked_softmax_kernel::launch_unchecked(
                    &x.client,
                    row_grid(rows),
                    CubeDim::new_1d(threads as u32),
                    x.clone().into_buffer_arg(),
                    valid.into_buffer_arg(),
                    p.clone().into_buffer_arg(),
                    scale,
                    rows,
                    s,
                    per_example,
                    t,
                    s0,
                    threads,
                );
            }
        }
        p
    }

    fn kava_rope(y: CubeTensor, cos: CubeTensor, sin: CubeTensor, n: usize, inverse: bool) -> CubeTensor {
        let (y, cos, sin) = (contiguous(y), contiguous(cos), contiguous(sin));
        let dims = y.shape().to_vec();
        // Forward: y [b, t, n·d]; inverse: [b, n, t, d]. cos: [b, t, d/2] (any leading 1s).
        let cdims = cos.shape().to_vec();
        let half = cdims[cdims.len() - 1];
        let d = 2 * half;
        let (b, t, out_shape) = if inverse {
            (dims[0], dims[2], vec![dims[0], dims[2], n * d])
        } else {
            (dims[0], dims[1], vec![dims[0], n, dims[1], d])
        };
        let total = b * n * t * d;
        let out = empty_like(&y, out_shape);
        if total > 0 {
            let cube_dim = CubeDim::new_1d(256);
            let count = cubecl::calculate_cube_count_elemwise(&y.client, total, cube_dim);
            // SAFETY: pos < total indexes both layouts of b·n·t·d elements; angles < b·t·d/2.
            unsafe {
                rope_kernel::launch_unchecked(
                    &y.client,
                    count,
                    cube_dim,
                    y.clone().into_buffer_arg(),
                    cos.into_buffer_arg(),
                    sin.into_buffer_arg(),
                    out.clone().into_buffer_arg(),
                    total,
                    n,
                    t,
                    d,
                    inverse,
                );
            }
        }
        out
    }

    fn kava_swiglu(gate: CubeTensor, up: CubeTensor) -> CubeTensor {
        let (g, u) = (contiguous(gate), contiguous(up));
        let shape = g.shape().to_vec();
        let total: usize = shape.iter().product();
        let y = empty_like(&g, shape);
        if total > 0 {
            let cube_dim = CubeDim::new_1d(256);
            let count = cubecl::calculate_cube_count_elemwise(&g.client, total, cube_dim);
            // SAFETY: the three buffers hold `total` elements; pos < total.
            unsafe {
                swiglu_kernel::launch_unchecked(&g.client, count, cube_dim, g.clone().into_buffer_arg(), u.into_buffer_arg(), y.clone().into_buffer_arg(), total);
            }
        }
        y
    }

    fn kava_swiglu_backward(gate: CubeTensor, up: CubeTensor, grad: CubeTensor) -> (CubeTensor, CubeTensor) {
        let (g, u, dy) = (contiguous(gate), contiguous(up), contiguous(grad));
        let shape = g.shape().to_vec();
        let total: usize = shape.iter().product();
        let dg = empty_like(&g, shape.clone());
        let du = empty_like(&g, shape);
        if total > 0 {
            let cube_dim = CubeDim::new_1d(256);
            let count = cubecl::calculate_cube_count_elemwise(&g.client, total, cube_dim);
            // SAFETY: the five buffers hold `total` elements; pos < total.
            unsafe {
                swiglu_backward_kernel::launch_unchecked(
                    &g.client,
                    count,
                    cube_dim,
                    g.clone().into_buffer_arg(),
                    u.into_buffer_arg(),
                    dy.into_buffer_arg(),
                    dg.clone().into_buffer_arg(),
                    du.clone().into_buffer_arg(),
                    total,
                );
            }
        }
        (dg, du)
    }

    fn kava_masked_softmax_backward(p: CubeTensor, grad: CubeTensor, scale: f32) -> CubeTensor {
        let (p, grad) = (contiguous(p), contiguous(grad));
        let dims = p.shape().to_vec();
        let (rows, s) = (dims[0], dims[1]);
        let dx = empty_like(&p, vec![rows, s]);
        if rows > 0 && s > 0 {
            let threads = threads_for(s, p.client.properties().hardware.max_units_per_cube);
            // SAFETY: all three buffers are [rows, s]; units stay inside their own row.
            unsafe {
                softmax_backward_kernel::launch_unchecked(
                    &p.client,
                    row_grid(rows),
                    CubeDim::new_1d(threads as u32),
                    p.clone().into_buffer_arg(),
                    grad.into_buffer_arg(),
                    dx.clone().into_buffer_arg(),
                    scale,
                    rows,
                    s,
                    threads,
                );
            }
        }
        dx
    }

    fn kava_rms_norm_backward(x: CubeTensor, w: CubeTensor, grad: CubeTensor, eps: f32) -> (CubeTensor, CubeTensor) {
        let (x, w, grad) = (contiguous(x), contiguous(w), contiguous(grad));
        let dims = x.shape().to_vec();
        let (rows, c) = (dims[0], dims[1]);
        let dx = empty_like(&x, vec![rows, c]);
        let gx = empty_like(&x, vec![rows, c]);
        if rows > 0 && c > 0 {
            let threads = threads_for(c, x.client.properties().hardware.max_units_per_cube);
            // SAFETY: as the forward kernel; all five buffers are [rows, c] but `w` ([c]).
            unsafe {
                rms_norm_backward_kernel::launch_unchecked(
                    &x.client,
                    row_grid(rows),
                    CubeDim::new_1d(threads as u32),
                    x.clone().into_buffer_arg(),
                    w.into_buffer_arg(),
                    grad.into_buffer_arg(),
                    dx.clone().into_buffer_arg(),
                    gx.clone().into_buffer_arg(),
                    eps,
                    rows,
                    c,
                    threads,
                );
            }
        }
        let dw = <CubeBackend as burn::backend::ops::FloatTensorOps<CubeBackend>>::float_sum_dim(gx, 0);
        let dw = <CubeBackend as burn::backend::ops::FloatTensorOps<CubeBackend>>::float_reshape(dw, Shape::from(vec![c]));
        (dx, dw)
    }
}

impl<B: FusedOps, C: CheckpointStrategy> FusedOps for Autodiff<B, C> {
    fn kava_rms_norm(x: FloatTensor<Self>, w: FloatTensor<Self>, eps: f32) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct RmsNormBackward;

        impl<B: FusedOps> Backward<B, 2> for RmsNormBackward {
            type State = (NodeId, NodeId, f32);

            fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
                let [node_x, node_w] = ops.parents;
                let grad = grads.consume::<B>(&ops.node);
                let (x, w, eps) = ops.state;
                let x: FloatTensor<B> = checkpointer.retrieve_node_output(x);
                let w: FloatTensor<B> = checkpointer.retrieve_node_output(w);
                let (dx, dw) = B::kava_rms_norm_backward(x, w, grad, eps);
                if let Some(node) = node_x {
                    grads.register::<B>(node.id, dx);
                }
                if let Some(node) = node_w {
                    grads.register::<B>(node.id, dw);
                }
            }
        }

        match RmsNormBackward.prepare::<C>([x.node(), w.node()]).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let xs = prep.checkpoint(&x);
                let ws = prep.checkpoint(&w);
                let y = B::kava_rms_norm(x.into_primitive(), w.into_primitive(), eps);
                prep.finish((xs, ws, eps), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::kava_rms_norm(x.into_primitive(), w.into_primitive(), eps)),
        }
    }

    fn kava_masked_softmax(
        scores: FloatTensor<Self>,
        valid: FloatTensor<Self>,
        scale: f32,
        per_example: usize,
        t: usize,
        s0: usize,
    ) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct MaskedSoftmaxBackward;

        impl<B: FusedOps> Backward<B, 1> for MaskedSoftmaxBackward {
            // The probabilities (the backward needs only them) and the scale.
            type State = (FloatTensor<B>, f32);

            fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
                let [node] = ops.parents;
                let grad = grads.consume::<B>(&ops.node);
                let (p, scale) = ops.state;
                if let Some(node) = node {
                    grads.register::<B>(node.id, B::kava_masked_softmax_backward(p, grad, scale));
                }
            }
        }

        let valid = valid.into_primitive();
        match MaskedSoftmaxBackward.prepare::<C>([scores.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let p = B::kava_masked_softmax(scores.into_primitive(), valid, scale, per_example, t, s0);
                prep.finish((p.clone(), scale), p)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::kava_masked_softmax(scores.into_primitive(), valid, scale, per_example, t, s0))
            }
        }
    }

    fn kava_masked_softmax_backward(p: FloatTensor<Self>, grad: FloatTensor<Self>, scale: f32) -> FloatTensor<Self> {
        use burn::backend::AutodiffBackend;
        <Self as AutodiffBackend>::from_inner(B::kava_masked_softmax_backward(p.into_primitive(), grad.into_primitive(), scale))
    }

    fn kava_rope(y: FloatTensor<Self>, cos: FloatTensor<Self>, sin: FloatTensor<Self>, n: usize, inverse: bool) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct RopeBackward;

        impl<B: FusedOps> Backward<B, 1> for RopeBackward {
            // The angles and the head count: the backward is the inverse rotation.
            type State = (FloatTensor<B>, FloatTensor<B>, usize, bool);

            fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
                let [node] = ops.parents;
                let grad = grads.consume::<B>(&ops.node);
                let (cos, sin, n, inverse) = ops.state;
                if let Some(node) = node {
                    grads.register::<B>(node.id, B::kava_rope(grad, cos, sin, n, !inverse));
                }
            }
        }

        let (cos, sin) = (cos.into_primitive(), sin.into_primitive());
        match RopeBackward.prepare::<C>([y.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let out = B::kava_rope(y.into_primitive(), cos.clone(), sin.clone(), n, inverse);
                prep.finish((cos, sin, n, inverse), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::kava_rope(y.into_primitive(), cos, sin, n, inverse)),
        }
    }

    fn kava_swiglu(gate: FloatTensor<Self>, up: FloatTensor<Self>) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct SwigluBackward;

        impl<B: FusedOps> Backward<B, 2> for SwigluBackward {
            type State = (NodeId, NodeId);

            fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
                let [node_g, node_u] = ops.parents;
                let grad = grads.consume::<B>(&ops.node);
                let (g, u) = ops.state;
                let g: FloatTensor<B> = checkpointer.retrieve_node_output(g);
                let u: FloatTensor<B> = checkpointer.retrieve_node_output(u);
                let (dg, du) = B::kava_swiglu_backward(g, u, grad);
                if let Some(node) = node_g {
                    grads.register::<B>(node.id, dg);
                }
                if let Some(node) = node_u {
                    grads.register::<B>(node.id, du);
                }
            }
        }

        match SwigluBackward.prepare::<C>([gate.node(), up.node()]).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let gs = prep.checkpoint(&gate);
                let us = prep.checkpoint(&up);
                prep.finish((gs, us), B::kava_swiglu(gate.into_primitive(), up.into_primitive()))
            }
            OpsKind::UnTracked(prep) => prep.finish(B::kava_swiglu(gate.into_primitive(), up.into_primitive())),
        }
    }

    fn kava_swiglu_backward(
        gate: FloatTensor<Self>,
        up: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        use burn::backend::AutodiffBackend;
        let (dg, du) = B::kava_swiglu_backward(gate.into_primitive(), up.into_primitive(), grad.into_primitive());
        (<Self as AutodiffBackend>::from_inner(dg), <Self as AutodiffBackend>::from_inner(du))
    }

    fn kava_rms_norm_backward(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        eps: f32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        // A backward of a backward is never recorded: computed on the inner backend, untracked.
        use burn::backend::AutodiffBackend;
        let (dx, dw) = B::kava_rms_norm_backward(x.into_primitive(), w.into_primitive(), grad.into_primitive(), eps);
        (<Self as AutodiffBackend>::from_inner(dx), <Self as AutodiffBackend>::from_inner(dw))
    }
}
