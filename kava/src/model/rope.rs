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

/// `cos` and `sin` of `position · inv_freq`, each `[b, 1, t, d/2]`, shared by all layers.
#[derive(Debug, Clone)]
pub struct RopeAngles {
    pub cos: Tensor<4>,
    pub sin: Tensor<4>,
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
        Self { cos: angles.clone().cos(), sin: angles.sin() }
    }

    /// Rotates `x` by its positions' angles: `(x₁, x₂) ↦ (x₁cos − x₂sin, x₂cos + x₁sin)` on the
    /// two halves of the head dimension.
    ///
    /// # Shapes
    /// `x`: `[b, heads, t, d]` → `[b, heads, t, d]`
    pub fn apply(&self, x: Tensor<4>) -> Tensor<4> {
        let d = x.dims()[3];
        let x1 = x.clone().narrow(3, 0, d / 2);
        let x2 = x.narrow(3, d / 2, d / 2);
        let cos = self.cos.clone();
        let sin = self.sin.clone();
        Tensor::cat(
            vec![x1.clone() * cos.clone() - x2.clone() * sin.clone(), x2 * cos + x1 * sin],
            3,
        )
    }
}
