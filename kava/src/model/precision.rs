//! Mixed precision for the matrix products: inside an [`autocast`] scope every GEMM of the model
//! (the linear layers and their LoRA adapters, the two attention products, the LM head) casts
//! its operands to the scope's dtype (bf16 for training on CUDA), multiplies, and casts the
//! product back to the operands' own dtype. Everything else — norms, RoPE, softmax, the losses,
//! the weights and their gradients, the optimizer state — stays f32. This is what PyTorch's
//! `torch.autocast(dtype=torch.bfloat16)` does for `matmul`/`linear`, and what method.md §3.2
//! means by "bf16 compute". Gradients flow through the casts (autodiff casts them back).
//!
//! The scope is per thread, so concurrent callers (tests, several models) do not see each
//! other's setting.

use std::cell::Cell;

use burn::tensor::{DType, FloatDType, Tensor};

thread_local! {
    static MATMUL_DTYPE: Cell<Option<FloatDType>> = const { Cell::new(None) };
}

/// Restores the previous matmul dtype of this thread when dropped.
#[must_use = "the scope ends when the guard is dropped"]
#[derive(Debug)]
pub struct Autocast {
    previous: Option<FloatDType>,
}

impl Drop for Autocast {
    fn drop(&mut self) {
        MATMUL_DTYPE.with(|c| c.set(self.previous));
    }
}

/// Runs this thread's model GEMMs in `dtype` until the guard drops (`None`: in the operands' own
/// dtype, the default).
pub fn autocast(dtype: Option<FloatDType>) -> Autocast {
    Autocast { previous: MATMUL_DTYPE.with(|c| c.replace(dtype)) }
}

/// This thread's matmul dtype (`None` outside an [`autocast`] scope).
pub fn matmul_dtype() -> Option<FloatDType> {
    MATMUL_DTYPE.with(Cell::get)
}

/// `a · b`, in the scope's dtype when one is set (the product comes back in `a`'s dtype).
/// Outside a scope, a `b` stored in another dtype (a frozen weight kept in bf16 for training,
/// see `kava-train`'s `optim.dtype`) is cast to `a`'s.
pub fn matmul<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> Tensor<D> {
    match matmul_dtype() {
        Some(dt) if DType::from(dt) != a.dtype() || DType::from(dt) != b.dtype() => {
            let out = a.dtype();
            a.cast(dt).matmul(b.cast(dt)).cast(out)
        }
        _ if b.dtype() != a.dtype() => {
            let dt = FloatDType::from(a.dtype());
            a.matmul(b.cast(dt))
        }
        _ => a.matmul(b),
    }
}
