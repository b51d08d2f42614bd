//! A linear layer holding its weight as `[in, out]` (HF stores `(out, in)`; the loader
//! transposes once so that no forward pays for it).

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor, TensorData};

use crate::load::HostTensor;

/// `y = x·W + b`.
#[derive(Module, Debug)]
pub struct Linear {
    /// `[in, out]`.
    pub weight: Param<Tensor<2>>,
    /// `[out]`.
    pub bias: Option<Param<Tensor<1>>>,
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
        Self { weight: Param::from_tensor(weight), bias }
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
        let y = x.reshape([b * t, c]).matmul(self.weight.val());
        let y = match &self.bias {
            Some(bias) => y + bias.val().unsqueeze::<2>(),
            None => y,
        };
        y.reshape([b, t, self.d_output()])
    }
}

impl Linear {
    /// The weight back in HF's `(out, in)` layout, on the host.
    pub fn to_hf_weight(&self) -> HostTensor {
        let [inp, out] = self.weight.dims();
        let w = self.weight.val().into_data().convert::<f32>().try_to_vec::<f32>().unwrap_or_default();
        let mut t = vec![0f32; w.len()];
        for i in 0..inp {
            for o in 0..out {
                t[o * inp + i] = w[i * out + o];
            }
        }
        HostTensor::new(vec![out, inp], t)
    }
}
