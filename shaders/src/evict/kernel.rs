//! The eviction of method.md §4 as CubeCL kernels (compiled to CUDA, WGSL/SPIR-V, … by cubecl),
//! for a whole batch and all layers at once, launched on the `CubeTensor`s behind burn tensors.
//!
//! −1e30 stands in for −∞ (WGSL has no infinity literal).
//!
//! Two launches:
//! 1. [`select_kernel`], one cube per (example, layer·KV head): importance (answer queries ×
//!    CoT keys, GQA-pooled logits, softmax over valid positions, mean over answer rows),
//!    redundancy (cosine similarity to the other keys, negated mean, softmax), the mixed score,
//!    the exact rank of every position (ties: lower position first, like the reference), and
//!    the slot of every kept position (by position or by score) → `indices [b, x, m]`, −1 in
//!    invalid slots.
//! 2. [`gather_kernel`], one unit per output element: K̃, Ṽ `[b, x, m, d]`, zero where invalid.
//!
//! WebGPU-portable by construction: f32 only, no atomics, ≤ 5 storage buffers per kernel,
//! ≤ 256 units per cube, reductions through shared memory (no subgroup operations needed), and
//! every barrier in uniform control flow (loops over answer rows run to the padded length and
//! mask, so no barrier depends on a per-example length).

use burn::tensor::{DType, Int, Shape, Tensor};
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::CubeBackend;
use cubecl::prelude::*;
use cubecl::{calculate_cube_count_elemwise, CubeCount, CubeDim};

use super::tensor_ops::EvictedTensors;
use super::{plain, Dims, EvictConfig, Method, Order, Pool};

/// Largest padded CoT length the select kernel takes (it keeps three `n`-long arrays in shared
/// memory; a device with less shared memory than that needs falls back to tensor ops).
pub const MAX_N: usize = 2048;


/// Cube-wide max (`max = true`) or sum of one value per unit, through `red` (one slot per
/// unit); every unit gets the result.
#[cube]
fn cube_reduce(red: &mut Shared<[f32]>, value: f32, #[comptime] threads: usize, #[comptime] max: bool) -> f32 {
    let tid = UNIT_POS_X as usize;
    red[tid] = value;
    sync_cube();
    let mut stride = (threads / 2).runtime();
    while stride > 0 {
        if tid < stride {
            let other = red[tid + stride];
            if comptime![max] {
                if other > red[tid] {
                    red[tid] = other;
                }
            } else {
                red[tid] += other;
            }
        }
        sync_cube();
        stride /= 2;
    }
    let out = red[0];
    sync_cube();
    out
}

/// In place, over the positions this unit owns (`tid + t·threads`): softmax across the cube of
/// the entries at positions `< limit`; the others become 0 (and a `limit` of 0 gives all 0).
#[cube]
fn cube_softmax(
    red: &mut Shared<[f32]>, values: &mut Array<f32>, limit: usize, #[comptime] per: usize, #[comptime] threads: usize,
) {
    let tid = UNIT_POS_X as usize;
    let mut local_max = f32::new(-1.0e30);
    #[unroll]
    for t in 0..per {
        if tid + t * threads < limit && values[t] > local_max {
            local_max = values[t];
        }
    }
    let mx = cube_reduce(red, local_max, threads, true);
    let mut local_sum = f32::new(0.0);
    #[unroll]
    for t in 0..per {
        let mut p = f32::new(0.0);
        if tid + t * threads < limit {
            p = f32::exp(values[t] - mx);
        }
        values[t] = p;
        local_sum += p;
    }
    let total = cube_reduce(red, local_sum, threads, false);
    #[unroll]
    for t in 0..per {
        if tid + t * threads < limit {
            values[t] = values[t] / total;
        }
    }
}

/// Scores, ranks and slots of one (example, layer·KV head) per cube (`CUBE_POS_X` = layer·KV
/// head, `CUBE_POS_Y` = example). Unit `u` owns positions `u, u + threads, …` (`per` of them).
///
/// `k`: `[b, lg, n, d]`; `q`: `[b, lg·r, a, d]`; `lens`: `[b, 2]` (CoT length, answer length);
/// `indices`: `[b, lg, m]`.
#[cube(launch_unchecked)]
#[allow(clippy::too_many_arguments)]
fn select_kernel(
    k: &[f32],
    q: &[f32],
    lens: &[u32],
    indices: &mut [i32],
    lambda: f32,
    #[comptime] lg: usize,
    #[comptime] n: usize,
    #[comptime] a: usize,
    #[comptime] d: usize,
    #[comptime] r: usize,
    #[comptime] m: usize,
    #[comptime] threads: usize,
    #[comptime] per: usize,
    #[comptime] tile: usize,
    #[comptime] stage_q: bool,
    #[comptime] crop: bool,
    #[comptime] use_importance: bool,
    #[comptime] use_redundancy: bool,
    #[comptime] pool_max: bool,
    #[comptime] order_score: bool,
) {
    let tid = UNIT_POS_X as usize;
    let x = CUBE_POS_X as usize;
    let e = CUBE_POS_Y as usize;
    let head = e * lg + x;
    let nv = lens[e * 2] as usize;
    let na = lens[e * 2 + 1] as usize;
    let kept = if nv < m { nv } else { m };
    let out = head * m;

    // Invalid slots first: every slot at or past `kept` is −1.
    let mut s = tid;
    while s < m {
        if s >= kept {
            indices[out + s] = -1;
        }
        s += threads;
    }

    if comptime![crop] {
        // The first `kept` positions, in order.
        let mut s = tid;
        while s < kept {
            indices[out + s] = s as i32;
            s += threads;
        }
    } else {
        let kbase = head * n * d;
        let mut red = Shared::<[f32]>::new_slice(threads);
        let mut score = Array::<f32>::new(per);
        // This unit's keys, kept in registers for the whole kernel (zero past the valid ones).
        let mut kreg = Array::<f32>::new(per * d);
        #[unroll]
        for t in 0..per {
            score[t] = 0.0f32;
            let i = tid + t * threads;
            #[unroll]
            for c in 0..d {
                let mut kv = f32::new(0.0);
                if i < nv {
                    kv = k[kbase + i * d + c];
                }
                kreg[t * d + c] = kv;
            }
        }

        if comptime![use_importance] {
            let inv_sqrt_d = 1.0f32 / f32::sqrt(f32::cast_from(d as u32));
            // The r·a query rows of this KV group, contiguous in `q`; staged in shared memory
            // when they fit the budget (every unit reads every row: broadcast reads).
            let qbase = head * r * a * d;
            let mut q_sh = Shared::<[f32]>::new_slice(comptime![if stage_q { r * a * d } else { 1 }]);
            if comptime![stage_q] {
                let mut idx = tid;
                while idx < r * a * d {
                    q_sh[idx] = q[qbase + idx];
                    idx += threads;
                }
                sync_cube();
            }
            let mut acc = Array::<f32>::new(per);
            let mut logit = Array::<f32>::new(per);
            #[unroll]
            for t in 0..per {
                acc[t] = 0.0f32;
            }
            // Every answer row up to the padded length, masked: the barriers inside the
            // reductions stay in uniform control flow.
            for j in 0..a {
                let row_valid = j < na;
                #[unroll]
                for t in 0..per {
                    let i = tid + t * threads;
                    let mut l = f32::new(-1.0e30);
                    if i < nv && row_valid {
                        let mut pooled = f32::new(0.0);
                        if comptime![pool_max] {
                            pooled = -1.0e30f32;
                        }
                        for g in 0..r {
                            let qr = (g * a + j) * d;
                            let mut dot = f32::new(0.0);
                            #[unroll]
                            for c in 0..d {
                                if comptime![stage_q] {
                                    dot += kreg[t * d + c] * q_sh[qr + c];
                                } else {
                                    dot += kreg[t * d + c] * q[qbase + qr + c];
                                }
                            }
                            if comptime![pool_max] {
                                if dot > pooled {
                                    pooled = dot;
                                }
                            } else {
                                pooled += dot;
                            }
                        }
                        if !comptime![pool_max] {
                            pooled /= f32::cast_from(r as u32);
                        }
                        l = pooled * inv_sqrt_d;
                    }
                    logit[t] = l;
                }
                // Padded answer rows (j ≥ na) take part with no valid entry: barriers stay uniform.
                let limit = if row_valid { nv } else { 0usize };
                cube_softmax(&mut red, &mut logit, limit, per, threads);
                #[unroll]
                for t in 0..per {
                    acc[t] += logit[t];
                }
            }
            #[unroll]
            for t in 0..per {
                // No answer query: uniform importance.
                let mut imp = 1.0f32 / f32::cast_from(nv as u32);
                if na > 0 {
                    imp = acc[t] / f32::cast_from(na as u32);
                }
                score[t] += lambda * imp;
            }
        }

        if comptime![use_redundancy] {
            // 1 / (‖k_i‖ + 1e-8) of every valid key, shared by the cube.
            let mut inv_norm = Shared::<[f32]>::new_slice(n);
            #[unroll]
            for t in 0..per {
                let i = tid + t * threads;
                if i < nv {
                    let mut sq = f32::new(0.0);
                    #[unroll]
                    for c in 0..d {
                        sq += kreg[t * d + c] * kreg[t * d + c];
                    }
                    inv_norm[i] = 1.0f32 / (f32::sqrt(sq) + 1.0e-8f32);
                }
            }
            // Σ_{j≠i} k_i·k_j / ‖k_j‖ over tiles of `tile` key rows staged in shared memory.
            let mut tile_sh = Shared::<[f32]>::new_slice(tile * d);
            let mut sim = Array::<f32>::new(per);
            #[unroll]
            for t in 0..per {
                sim[t] = 0.0f32;
            }
            for tile_start in range_stepped(0usize, n, tile) {
                sync_cube();
                let mut idx = tid;
                while idx < tile * d {
                    let row = tile_start + idx / d;
                    let mut kv = f32::new(0.0);
                    if row < nv {
                        kv = k[kbase + tile_start * d + idx];
                    }
                    tile_sh[idx] = kv;
                    idx += threads;
                }
                sync_cube();
                #[unroll]
                for t in 0..per {
                    let i = tid + t * threads;
                    if i < nv {
                        for jr in 0..tile {
                            let jj = tile_start + jr;
                            if jj < nv && jj != i {
                                let mut dot = f32::new(0.0);
                                #[unroll]
                                for c in 0..d {
                                    dot += kreg[t * d + c] * tile_sh[jr * d + c];
                                }
                                sim[t] += dot * inv_norm[jj];
                            }
                        }
                    }
                }
            }
            let mut neg = Array::<f32>::new(per);
            #[unroll]
            for t in 0..per {
                let i = tid + t * threads;
                let mut v = f32::new(-1.0e30);
                if i < nv {
                    // S_ii = 0 is skipped but the mean still divides by N (method.md §4).
                    v = -(sim[t] * inv_norm[i]) / f32::cast_from(nv as u32);
                }
                neg[t] = v;
            }
            cube_softmax(&mut red, &mut neg, nv, per, threads);
            #[unroll]
            for t in 0..per {
                score[t] += (1.0f32 - lambda) * neg[t];
            }
        }

        // Exact ranks: rank_i = #{j : s_j > s_i, or s_j = s_i and j < i}.
        let mut shared_score = Shared::<[f32]>::new_slice(n);
        let mut shared_rank = Shared::<[u32]>::new_slice(n);
        #[unroll]
        for t in 0..per {
            let i = tid + t * threads;
            if i < nv {
                shared_score[i] = score[t];
            }
        }
        sync_cube();
        #[unroll]
        for t in 0..per {
            let i = tid + t * threads;
            if i < nv {
                let si = shared_score[i];
                let mut rank = 0u32.runtime();
                for jj in 0..nv {
                    let sj = shared_score[jj];
                    if sj > si || (sj == si && jj < i) {
                        rank += 1;
                    }
                }
                shared_rank[i] = rank;
            }
        }
        sync_cube();
        #[unroll]
        for t in 0..per {
            let i = tid + t * threads;
            if i < nv {
                let rank = shared_rank[i] as usize;
                if rank < kept {
                    let mut slot = rank;
                    if !comptime![order_score] {
                        // Position order: the slot is the number of kept positions before i.
                        slot = 0;
                        for jj in 0..i {
                            if (shared_rank[jj] as usize) < kept {
                                slot += 1;
                            }
                        }
                    }
                    indices[out + slot] = i as i32;
                }
            }
        }
    }
}

/// `k_out[h, s, :] = k[h, indices[h, s], :]` (and the same for V), zero where the index is −1.
/// One unit per output element of `[b·x, m, d]`.
#[cube(launch_unchecked)]
fn gather_kernel(
    k: &[f32],
    v: &[f32],
    indices: &[i32],
    k_out: &mut [f32],
    v_out: &mut [f32],
    total: usize,
    #[comptime] n: usize,
    #[comptime] m: usize,
    #[comptime] d: usize,
) {
    let pos = ABSOLUTE_POS;
    if pos < total {
        let c = pos % d;
        let slot = pos / d;
        let head = slot / m;
        let idx = indices[slot];
        if idx >= 0 {
            let src = (head * n + idx as usize) * d + c;
            k_out[pos] = k[src];
            v_out[pos] = v[src];
        } else {
            k_out[pos] = 0.0f32;
            v_out[pos] = 0.0f32;
        }
    }
}

/// A contiguous f32 `CubeTensor` behind a float tensor, or `None` if it lives on no cubecl
/// runtime (e.g. the plain CPU backend) or is too large for the select kernel.
fn cube_f32<const D: usize>(t: Tensor<D>) -> Option<CubeTensor> {
    let t = if t.dtype() == DType::F32 { t } else { t.cast(DType::F32) };
    let prim = t.try_into_primitive::<CubeBackend>().ok()?;
    Some(burn_cubecl::kernel::into_contiguous(prim))
}

/// Whether `evict` can run the kernels on tensors on this device with these sizes.
pub fn supported(k: &Tensor<4>) -> bool {
    let n = k.dims()[2];
    n <= MAX_N && plain(k.clone()).try_into_primitive::<CubeBackend>().is_ok()
}

/// Threads per cube for a CoT length `n`: a power of two in 32..=256 (or the device's limit).
fn threads_for(n: usize, max_units: u32) -> usize {
    let cap = (max_units as usize).clamp(1, 256);
    let want = n.next_power_of_two().clamp(32, 256);
    let mut t = 1;
    while t * 2 <= want.min(cap) {
        t *= 2;
    }
    t
}

/// The kernels' eviction; same contract as [`super::tensor_ops::evict`]. Returns `None` when the
/// tensors do not live on a cubecl runtime, `n` exceeds [`MAX_N`] or the device's shared memory
/// (burn tensors are cheap to
/// clone: pass clones and fall back to the tensor-ops path then, as [`super::evict`] does).
///
/// # Panics
/// If shapes disagree or a length exceeds its padded size (as the tensor-ops path).
pub fn evict(
    k: Tensor<4>, v: Tensor<4>, q: Tensor<4>, cot_lens: &[usize], ans_lens: &[usize], cfg: &EvictConfig,
) -> Option<EvictedTensors> {
    evict_tuned(k, v, q, cot_lens, ans_lens, cfg, None)
}

/// Launch choices of the select kernel; `None` fields are chosen from the device's limits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tuning {
    /// Key rows per shared-memory tile of the redundancy loop.
    pub tile: Option<usize>,
    /// Stage the answer queries in shared memory.
    pub stage_q: Option<bool>,
}

/// [`evict`] with explicit launch choices (tests cover every code path with it).
pub fn evict_tuned(
    k: Tensor<4>, v: Tensor<4>, q: Tensor<4>, cot_lens: &[usize], ans_lens: &[usize], cfg: &EvictConfig,
    tuning: Option<Tuning>,
) -> Option<EvictedTensors> {
    let Dims { b, x, n, d, a, r } = Dims::check(&k, &v, &q, cot_lens, ans_lens);
    if n > MAX_N || n == 0 || b == 0 || x == 0 || d == 0 {
        return None;
    }
    let m = cfg.m;
    let dtype = k.dtype();
    let autodiff = k.device().is_autodiff();
    let (k, v, q) = (plain(k), plain(v), plain(q));
    let kc = cube_f32(k)?;
    let vc = cube_f32(v)?;
    let qc = cube_f32(q)?;
    let client = kc.client.clone();
    let cube_device = kc.device.clone();

    let lens: Vec<u32> = cot_lens.iter().zip(ans_lens).flat_map(|(&c, &a)| [c as u32, a as u32]).collect();
    let lens = client.create_from_slice(u32::as_bytes(&lens));
    let indices = client.empty(b * x * m.max(1) * size_of::<i32>());

    let threads = threads_for(n, client.properties().hardware.max_units_per_cube);
    let per = n.div_ceil(threads);
    // Shared memory: reductions (threads) + inverse norms, scores, ranks (3n) + a key tile
    // (tile·d) + the staged queries (r·a·d) if they fit. WebGPU guarantees 16 KiB.
    // Static shared arrays: CUDA allows 48 KiB per block without an opt-in, whatever the SM has.
    let budget = client.properties().hardware.max_shared_memory_size.min(48 * 1024) / 4;
    let fixed = threads + 3 * n;
    let tile = [64usize, 32, 16, 8, 4, 2, 1].into_iter().find(|&t| fixed + t * d <= budget)?;
    let stage_q = fixed + tile * d + r * a * d <= budget;
    let tuning = tuning.unwrap_or_default();
    let tile = tuning.tile.unwrap_or(tile);
    let stage_q = tuning.stage_q.unwrap_or(stage_q);
    log::debug!("evict kernel: threads {threads}, per {per}, tile {tile}, stage_q {stage_q}");
    let (crop, lambda) = match cfg.method {
        Method::Crop => (true, 0.0),
        Method::Mix { lambda } => (false, lambda),
    };
    if m > 0 {
        // SAFETY: every index is in bounds by construction: positions < n, slots < m, query rows
        // < a, and the buffers are exactly [b, x, n, d], [b, x·r, a, d], [b, 2], [b, x, m].
        unsafe {
            select_kernel::launch_unchecked(
                &client,
                CubeCount::Static(x as u32, b as u32, 1),
                CubeDim::new_1d(threads as u32),
                kc.clone().into_buffer_arg(),
                qc.into_buffer_arg(),
                BufferArg::from_raw_parts(lens, b * 2),
                BufferArg::from_raw_parts(indices.clone(), b * x * m),
                lambda,
                x,
                n,
                a,
                d,
                r,
                m,
                threads,
                per,
                tile,
                stage_q,
                crop,
                lambda != 0.0,
                lambda != 1.0,
                cfg.pool == Pool::Max,
                cfg.order == Order::Score,
            );
        }
    }

    let total = b * x * m * d;
    let k_out = client.empty(total.max(1) * size_of::<f32>());
    let v_out = client.empty(total.max(1) * size_of::<f32>());
    if total > 0 {
        let cube_dim = CubeDim::new_1d(256);
        let count = calculate_cube_count_elemwise(&client, total, cube_dim);
        // SAFETY: `pos < total` is checked; `idx < n` holds for every index the select kernel
        // writes, and −1 is never dereferenced.
        unsafe {
            gather_kernel::launch_unchecked(
                &client,
                count,
                cube_dim,
                kc.into_buffer_arg(),
                vc.into_buffer_arg(),
                BufferArg::from_raw_parts(indices.clone(), b * x * m),
                BufferArg::from_raw_parts(k_out.clone(), total),
                BufferArg::from_raw_parts(v_out.clone(), total),
                total,
                n,
                m,
                d,
            );
        }
    }

    let wrap = |handle, shape: Vec<usize>, dtype| {
        CubeTensor::new_contiguous(client.clone(), cube_device.clone(), Shape::from(shape), handle, dtype)
    };
    let k_out = Tensor::<4>::from_primitive::<CubeBackend>(wrap(k_out, vec![b, x, m, d], DType::F32));
    let v_out = Tensor::<4>::from_primitive::<CubeBackend>(wrap(v_out, vec![b, x, m, d], DType::F32));
    let indices = Tensor::<3, Int>::from_primitive::<CubeBackend>(wrap(indices, vec![b, x, m], DType::I32));
    let (k_out, v_out) = if dtype == DType::F32 { (k_out, v_out) } else { (k_out.cast(dtype), v_out.cast(dtype)) };
    let mask = indices.clone().greater_equal_elem(0);
    let out = EvictedTensors { k: k_out, v: v_out, indices, mask };
    Some(if autodiff { out.autodiff() } else { out })
}
