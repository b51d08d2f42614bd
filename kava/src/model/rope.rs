//! Rotary position embedding in HF's **rotate-half** convention: the pair of channel `i` is
//! `i + d/2` (not `2i, 2i+1` as in llama.cpp), so HF checkpoints load without any permutation.
//! Frequencies follow transformers' `_compute_default_rope_parameters` and, for Llama 3,
//! `_compute_llama3_parameters`, computed in f32 as HF does.

use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::config::ModelConfig;

/// Inverse frequencies `[d/2]` for a config.
pub fn inv_freq(config: &ModelConfig) -> Vec<f32> {
    let d = config.head_dim;
    let base = config.rope_theta as f32;
    let mut inv: Vec<f32> = (0..d / 2).map(|i| 1.0 / base.powf((2 * i) as f32 / d as f32)).collect();
    if let Some(s) = config.rope_scaling {
        let old_ctx = s.original_max_position_embeddings as f32;
        let low_wavelen = old_ctx / s.low_freq_factor as f32;
        let high_wavelen = old_ctx / s.high_freq_factor as f32;
        for f in inv.iter_mut() {
            let wavelen = 2.0 * std::f32::consts::PI / *f;
            *f = if wavelen > low_wavelen {
                // Long wavelengths: interpolate by `factor`.
                *f / s.factor as f32
            } else if wavelen < high_wavelen {
                *f
            } else {
                // The band between is blended smoothly.
                let smooth = (old_ctx / wavelen - s.low_freq_factor as f32)
                    / (s.high_freq_factor as f32 - s.low_freq_factor as f32);
                (1.0 - smooth) * *f / s.factor as f32 + smooth * *f
            };
        }
    }
    inv
}

/// `cos` and `sin` of `position · inv_freq`, each `[b, 1, t, d/2]`, shared by all layers, and
/// the full-width factors [`apply`](Self::apply) multiplies by.
#[derive(Debug, Clone)]
pub struct RopeAngles {
    pub cos: Tensor<4>,
    pub sin: Tensor<4>,
    /// `[b, 1, t, d]`: `(cos, cos)`.
    cos_full: Tensor<4>,
    /// `[b, 1, t, d]`: `(−sin, sin)`.
    sin_signed: Tensor<4>,
}

impl RopeAngles {
    /// # Shapes
    /// `positions`: `[b, t]` → angles `[b, 1, t, d/2]`
    pub fn new(positions: Tensor<2, Int>, inv_freq: &[f32], device: &Device) -> Self {
        let [b, t] = positions.dims();
        let half = inv_freq.len();
        let inv = Tensor::<1>::from_data(TensorData::new(inv_freq.to_vec(), [half]), device);
        let angles = positions.float().reshape([b, t, 1]) * inv.reshape([1, 1, half]);
        let angles = angles.reshape([b, 1, t, half]);
        let (cos, sin) = (angles.clone().cos(), angles.sin());
        let cos_full = Tensor::cat(vec![cos.clone(), cos.clone()], 3);
        let sin_signed = Tensor::cat(vec![sin.clone().neg(), sin.clone()], 3);
        Self { cos, sin, cos_full, sin_signed }
    }

    /// A projection's output `[b, t, n·d]` split into `n` heads `[b, n, t, d]` and rotated: one
    /// fused kernel on a cubecl device ([`super::fused::rope_heads`]), else [`apply`](Self::apply).
    pub fn heads(&self, y: Tensor<3>, n: usize) -> Tensor<4> {
        if super::fused::available(&y) {
            return super::fused::rope_heads(y, self.cos.clone(), self.sin.clone(), n);
        }
        let [b, t, nd] = y.dims();
        self.apply(y.reshape([b, t, n, nd / n]).swap_dims(1, 2))
    }

    /// Rotates `x` by its positions' angles: `(x₁, x₂) ↦ (x₁cos − x₂sin, x₂cos + x₁sin)` on the
    /// two halves of the head dimension, computed as `x·(cos, cos) + (x₂, x₁)·(−sin, sin)` —
    /// the same floating-point operations per element (`a − b·s` is `a + b·(−s)` exactly),
    /// with the halves swapped by one flip instead of two slices and a concatenation (whose
    /// backward costs zero-filled buffers and slice assignments): far fewer kernel launches.
    ///
    /// # Shapes
    /// `x`: `[b, heads, t, d]` → `[b, heads, t, d]`
    pub fn apply(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, h, t, d] = x.dims();
        let swapped = x.clone().reshape([b, h, t, 2, d / 2]).flip([3]).reshape([b, h, t, d]);
        x * self.cos_full.clone() + swapped * self.sin_signed.clone()
    }
}

#[cfg(test)]
mod rotate_tests {
    use super::*;

    #[test]
    fn apply_is_the_rotate_half_formula_bit_for_bit() {
        let device = Device::flex();
        let (b, h, t, d) = (2, 3, 5, 8);
        let positions = Tensor::<2, Int>::from_data(TensorData::new((0..(b * t) as i64).map(|p| p * 7 % 11).collect::<Vec<_>>(), [b, t]), &device);
        let inv: Vec<f32> = (0..d / 2).map(|i| 1.0 / 10000f32.powf((2 * i) as f32 / d as f32)).collect();
        let rope = RopeAngles::new(positions, &inv, &device);
        let xs: Vec<f32> = (0..b * h * t * d).map(|i| ((i * 37 % 101) as f32 - 50.0) / 13.0).collect();
        let x = Tensor::<4>::from_data(TensorData::new(xs.clone(), [b, h, t, d]), &device);
        let got = rope.apply(x).into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
        let cos = rope.cos.into_data().try_to_vec::<f32>().unwrap();
        let sin = rope.sin.into_data().try_to_vec::<f32>().unwrap();
        for bi in 0..b {
            for hi in 0..h {
                for ti in 0..t {
                    let row = ((bi * h + hi) * t + ti) * d;
                    for i in 0..d / 2 {
                        let (c, s) = (cos[(bi * t + ti) * d / 2 + i], sin[(bi * t + ti) * d / 2 + i]);
                        let (x1, x2) = (xs[row + i], xs[row + i + d / 2]);
                        assert_eq!(got[row + i], x1 * c - x2 * s, "first half {bi}/{hi}/{ti}/{i}");
                        assert_eq!(got[row + i + d / 2], x2 * c + x1 * s, "second half {bi}/{hi}/{ti}/{i}");
                    }
                }
            }
        }
    }
}
