//! RMSNorm as HF Llama/Qwen2 compute it: `w · x / sqrt(mean(x²) + eps)`.

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor, TensorData};

use crate::load::HostTensor;

#[derive(Module, Debug)]
pub struct RmsNorm {
    pub weight: Param<Tensor<1>>,
    pub eps: f64,
}

impl RmsNorm {
    pub fn from_hf(weight: HostTensor, eps: f64, device: &Device) -> Self {
        let n = weight.data.len();
        Self { weight: Param::from_tensor(Tensor::<1>::from_data(TensorData::new(weight.data, [n]), device)), eps }
    }

    /// # Shapes
    /// `x`: `[b, t, c]` → `[b, t, c]`
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        // (mean(x²) + eps)^(−1/2) as one power: fewer launches than sqrt then recip, forward and
        // backward.
        let inv_rms = x.clone().powi_scalar(2).mean_dim(2).add_scalar(self.eps).powf_scalar(-0.5);
        x * inv_rms * self.weight.val().unsqueeze::<3>()
    }
}
