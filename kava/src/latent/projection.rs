//! The continuous-thought projection of method.md §2:
//! `z = LayerNorm(Linear_d→d(GELU(Linear_d→d(h))))`, exact-erf GELU, affine LayerNorm.

use burn::module::{Module, Param};
use burn::tensor::{activation, Device, Tensor, TensorData};

use crate::error::Result;
use crate::load::{HostTensor, Weights};
use crate::model::Linear;

/// Affine LayerNorm over the last axis.
#[derive(Module, Debug)]
pub struct LayerNorm {
    pub weight: Param<Tensor<1>>,
    pub bias: Param<Tensor<1>>,
    pub eps: f64,
}

impl LayerNorm {
    /// # Shapes
    /// `x`: `[b, t, c]` → `[b, t, c]`
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let mean = x.clone().mean_dim(2);
        let centered = x - mean;
        let var = centered.clone().powi_scalar(2).mean_dim(2);
        let normed = centered / var.add_scalar(self.eps).sqrt();
        normed * self.weight.val().unsqueeze::<3>() + self.bias.val().unsqueeze::<3>()
    }
}

/// `LayerNorm(fc2(GELU(fc1(h))))`.
#[derive(Module, Debug)]
pub struct Projection {
    pub fc1: Linear,
    pub fc2: Linear,
    pub norm: LayerNorm,
}

/// Tensor names of the projection in `kava.safetensors` (HF `(out, in)` layout).
pub const NAMES: [&str; 6] = [
    "projection.fc1.weight",
    "projection.fc1.bias",
    "projection.fc2.weight",
    "projection.fc2.bias",
    "projection.norm.weight",
    "projection.norm.bias",
];

impl Projection {
    /// A freshly initialised projection: PyTorch's default `Linear` init (uniform in
    /// ±1/√d), LayerNorm 1/0. Drawn on the host from a seeded SplitMix64 so that the same seed
    /// gives the same projection on every backend and every run.
    pub fn init(d: usize, seed: u64, device: &Device) -> Self {
        let bound = 1.0 / (d as f64).sqrt();
        let mut state = seed;
        let mut uniform = move |n: usize| -> Vec<f32> {
            (0..n)
                .map(|_| {
                    state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
                    let mut z = state;
                    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                    z ^= z >> 31;
                    let unit = (z >> 11) as f64 / (1u64 << 53) as f64; // [0, 1)
                    ((2.0 * unit - 1.0) * bound) as f32
                })
                .collect()
        };
        let mut linear = || Linear {
            weight: Param::from_tensor(Tensor::<2>::from_data(TensorData::new(uniform(d * d), [d, d]), device)),
            bias: Some(Param::from_tensor(Tensor::<1>::from_data(TensorData::new(uniform(d), [d]), device))),
            lora: None,
        };
        let (fc1, fc2) = (linear(), linear());
        Self {
            fc1,
            fc2,
            norm: LayerNorm {
                weight: Param::from_tensor(Tensor::<1>::ones([d], device)),
                bias: Param::from_tensor(Tensor::<1>::zeros([d], device)),
                eps: 1e-5,
            },
        }
    }

    /// Sets the LayerNorm gain to `scale` in every channel (bias unchanged): with a zero bias
    /// every output then has RMS `scale` per channel.
    pub fn set_output_scale(&mut self, scale: f32) {
        let w = self.norm.weight.val();
        let [d] = w.dims();
        self.norm.weight = Param::from_tensor(Tensor::<1>::full([d], scale, &w.device()));
    }

    /// Whether the LayerNorm is still exactly at its initial value (gain 1, bias 0): a fresh
    /// projection, or one carried untouched through runs that never used it (`cot`, `nocot`).
    pub fn norm_at_init(&self) -> bool {
        let host = |t: Tensor<1>| t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap_or_default();
        let (w, b) = (host(self.norm.weight.val()), host(self.norm.bias.val()));
        !w.is_empty() && w.iter().all(|&x| x == 1.0) && b.iter().all(|&x| x == 0.0)
    }

    /// Loads the projection from `kava.safetensors` tensors.
    pub fn from_weights(d: usize, weights: &mut Weights, device: &Device) -> Result<Self> {
        let fc = |w: &mut Weights, name: &str| -> Result<Linear> {
            let weight = w.take(&format!("projection.{name}.weight"), &[d, d])?;
            let bias = w.take(&format!("projection.{name}.bias"), &[d])?;
            Ok(Linear::from_hf(weight, Some(bias), device))
        };
        let vec1 = |w: &mut Weights, name: &str| -> Result<Param<Tensor<1>>> {
            let t = w.take(name, &[d])?;
            Ok(Param::from_tensor(Tensor::<1>::from_data(TensorData::new(t.data, [d]), device)))
        };
        Ok(Self {
            fc1: fc(weights, "fc1")?,
            fc2: fc(weights, "fc2")?,
            norm: LayerNorm {
                weight: vec1(weights, "projection.norm.weight")?,
                bias: vec1(weights, "projection.norm.bias")?,
                eps: 1e-5,
            },
        })
    }

    /// The projection's tensors in HF layout, named as in [`NAMES`].
    pub fn to_host(&self) -> Vec<(String, HostTensor)> {
        let host1 = |t: Tensor<1>| {
            let n = t.dims()[0];
            HostTensor::new(vec![n], t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap_or_default())
        };
        let mut out = Vec::new();
        for (name, l) in [("fc1", &self.fc1), ("fc2", &self.fc2)] {
            out.push((format!("projection.{name}.weight"), l.to_hf_weight()));
            if let Some(b) = &l.bias {
                out.push((format!("projection.{name}.bias"), host1(b.val())));
            }
        }
        out.push(("projection.norm.weight".into(), host1(self.norm.weight.val())));
        out.push(("projection.norm.bias".into(), host1(self.norm.bias.val())));
        out
    }

    /// # Shapes
    /// `h`: `[b, t, c]` → `[b, t, c]`
    pub fn forward(&self, h: Tensor<3>) -> Tensor<3> {
        self.norm.forward(self.fc2.forward(activation::gelu(self.fc1.forward(h))))
    }
}
