//! The SwiGLU MLP of Llama and Qwen2: `down(silu(gate(x)) · up(x))`.

use burn::module::Module;
use burn::tensor::Tensor;

use super::linear::Linear;

#[derive(Module, Debug)]
pub struct Mlp {
    pub gate_proj: Linear,
    pub up_proj: Linear,
    pub down_proj: Linear,
}

impl Mlp {
    /// # Shapes
    /// `x`: `[b, t, c]` → `[b, t, c]`
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let gate = self.gate_proj.forward(x.clone());
        self.down_proj.forward(super::fused::swiglu(gate, self.up_proj.forward(x)))
    }
}
