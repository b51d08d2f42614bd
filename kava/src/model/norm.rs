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
        // One kernel forward and two backward on a cubecl device; the tensor-op form elsewhere.
        super::fused::rms_norm(x, self.weight.val(), self.eps)
    }
}
