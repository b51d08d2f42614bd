//! A linear layer holding its weight as `[in, out]` (HF stores `(out, in)`; the loader
//! transposes once so that no forward pays for it), with an optional LoRA adapter.

use burn::module::{Module, Param};
use burn::tensor::{Device, Distribution, FloatDType, Tensor, TensorData};

use super::precision::matmul;
use crate::load::HostTensor;

/// `y = x·W + b` (+ `(α/r)·(drop(x)·A)·B` with a LoRA adapter).
#[derive(Module, Debug)]
pub struct Linear {
    /// `[in, out]`.
    pub weight: Param<Tensor<2>>,
    /// `[out]`.
    pub bias: Option<Param<Tensor<1>>>,
    /// Low-rank adapter; `None` for a plain (or merged) layer.
    pub lora: Option<Lora>,
}

/// A LoRA adapter: `Δy = (α/r)·(drop(x)·A)·B`, computed as two thin matmuls — `W` is never
/// re-materialised, so with `W` frozen a training step costs two `[·, r]` GEMMs per layer more.
#[derive(Module, Debug)]
pub struct Lora {
    /// `[in, r]`; PEFT's init: Kaiming-uniform, bound `1/√in`.
    pub a: Param<Tensor<2>>,
    /// `[r, out]`; zero at init, so a fresh adapter changes nothing.
    pub b: Param<Tensor<2>>,
    /// `α / r`.
    #[module(skip)]
    pub scale: f32,
    /// Dropout on the adapter's input, applied only on an autodiff device.
    #[module(skip)]
    pub dropout: f64,
}

impl Lora {
    /// A fresh adapter of rank `r` for a `[inp, out]` layer.
    pub fn new(inp: usize, out: usize, r: usize, alpha: f32, dropout: f64, device: &Device) -> Self {
        let bound = 1.0 / (inp as f64).sqrt();
        let a = Tensor::<2>::random([inp, r], Distribution::Uniform(-bound, bound), device);
        Self { a: Param::from_tensor(a), b: Param::from_tensor(Tensor::zeros([r, out], device)), scale: alpha / r as f32, dropout }
    }

    /// `(α/r)·(drop(x)·A)·B` for `x` `[n, in]`; dropout's `1/keep` rides on the `α/r` scale
    /// (one launch fewer per adapter and pass than scaling the mask).
    fn delta(&self, x: Tensor<2>) -> Tensor<2> {
        let (x, scale) = if self.dropout > 0.0 && x.device().is_autodiff() {
            let keep = 1.0 - self.dropout;
            (x.clone() * x.random_like(Distribution::Bernoulli(keep)), self.scale as f64 / keep)
        } else {
            (x, self.scale as f64)
        };
        matmul(matmul(x, self.a.val()), self.b.val()).mul_scalar(scale)
    }
}

impl Linear {
    /// From HF tensors: `weight` `(out, in)`, `bias` `(out)`.
    pub fn from_hf(weight: HostTensor, bias: Option<HostTensor>, device: &Device) -> Self {
        let (out, inp) = (weight.shape[0], weight.shape[1]);
        let mut t = vec![0f32; weight.data.len()];
        for o in 0..out {
            for i in 0..inp {
                t[i * out + o] = weight.data[o * inp + i];
            }
        }
        let weight = Tensor::<2>::from_data(TensorData::new(t, [inp, out]), device);
        let bias = bias.map(|b| Param::from_tensor(Tensor::<1>::from_data(TensorData::new(b.data, [out]), device)));
        Self { weight: Param::from_tensor(weight), bias, lora: None }
    }

    pub fn d_input(&self) -> usize {
        self.weight.dims()[0]
    }

    pub fn d_output(&self) -> usize {
        self.weight.dims()[1]
    }

    /// # Shapes
    /// `x`: `[b, t, in]` → `[b, t, out]`
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [b, t, c] = x.dims();
        // [b·t, in] · [in, out]: one GEMM with no broadcasting of W.
        let x = x.reshape([b * t, c]);
        let mut y = matmul(x.clone(), self.weight.val());
        if let Some(lora) = &self.lora {
            y = y + lora.delta(x);
        }
        let y = match &self.bias {
            Some(bias) => y + bias.val().unsqueeze::<2>(),
            None => y,
        };
        y.reshape([b, t, self.d_output()])
    }
}

impl Linear {
    /// Attaches a fresh rank-`r` LoRA adapter (replacing any previous one).
    pub fn attach_lora(&mut self, r: usize, alpha: f32, dropout: f64) {
        let device = self.weight.device();
        self.lora = Some(Lora::new(self.d_input(), self.d_output(), r, alpha, dropout, &device));
    }

    /// Folds the adapter into the weight (`W ← W + (α/r)·A·B`) and drops it: the export path.
    pub fn merge_lora(&mut self) {
        if let Some(lora) = self.lora.take() {
            let delta = lora.a.val().matmul(lora.b.val()).mul_scalar(lora.scale);
            // A frozen weight may be stored in a narrower dtype than its adapter (bf16 training).
            let merged = self.weight.val().detach().cast(FloatDType::from(delta.dtype())) + delta.detach();
            self.weight = Param::from_tensor(merged);
        }
    }

    /// The effective weight (adapter folded in) back in HF's `(out, in)` layout, on the host.
    pub fn to_hf_weight(&self) -> HostTensor {
        let [inp, out] = self.weight.dims();
        let mut w = self.weight.val().cast(FloatDType::F32);
        if let Some(lora) = &self.lora {
            w = w + lora.a.val().cast(FloatDType::F32).matmul(lora.b.val().cast(FloatDType::F32)).mul_scalar(lora.scale);
        }
        let w = w.into_data().convert::<f32>().try_to_vec::<f32>().unwrap_or_default();
        let mut t = vec![0f32; w.len()];
        for i in 0..inp {
            for o in 0..out {
                t[o * inp + i] = w[i * out + o];
            }
        }
        HostTensor::new(vec![out, inp], t)
    }
}
