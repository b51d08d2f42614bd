//! What trains and how: the trainable parameter set (LoRA adapters, the projection, the new
//! token rows — or everything with full fine-tuning), gradient accumulation, global-norm
//! clipping and AdamW (PyTorch semantics), written over burn's module visitor/mapper so that the
//! optimizer state is ours to checkpoint and restore exactly.
//!
//! burn's own clipping is per tensor; method.md §3.2 asks for the global norm
//! (`torch.nn.utils.clip_grad_norm_`), which needs every gradient before any update.

use std::collections::HashMap;

use kava::burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use kava::burn::tensor::{Bool, Device, FloatDType, Gradients, Tensor, TensorData};

/// Which parameters train.
#[derive(Clone, Debug, PartialEq)]
pub struct Trainable {
    /// Every weight trains (no adapters).
    pub full: bool,
    /// Rows of `embed_tokens` (and columns of an untied `lm_head`) from this id on are the new
    /// latent tokens: they train even when the rest of the embedding is frozen.
    pub new_rows_from: usize,
}

impl Trainable {
    /// Whether the parameter at `path` (dot-joined module path) gets gradients.
    pub fn trains(&self, path: &str) -> bool {
        self.full
            || path.contains(".lora.")
            || path.starts_with("projection.")
            || Self::has_token_rows(path)
    }

    /// The parameters whose gradient is restricted to the new-token rows (LoRA mode).
    fn has_token_rows(path: &str) -> bool {
        path == "embed_tokens" || path == "lm_head.weight"
    }

    /// `Some(axis)` when only the new-token slice of `path` along `axis` trains.
    fn row_axis(&self, path: &str) -> Option<usize> {
        if self.full {
            return None;
        }
        match path {
            "embed_tokens" => Some(0),
            // The head is stored `[c, v]`: new tokens are columns.
            "lm_head.weight" => Some(1),
            _ => None,
        }
    }
}

/// Dot-joined module paths, tracked through `enter_module`/`exit_module`.
#[derive(Default)]
struct PathStack(Vec<String>);

impl PathStack {
    fn enter(&mut self, name: &str) {
        self.0.push(name.to_string());
    }
    fn exit(&mut self) {
        self.0.pop();
    }
    fn path(&self, prefix: &str) -> String {
        let inner = self.0.join(".");
        if prefix.is_empty() {
            inner
        } else {
            format!("{prefix}.{inner}")
        }
    }
}

/// Sets `require_grad` on every float parameter of a module as `trainable` decides.
struct Freeze<'a> {
    stack: PathStack,
    prefix: &'a str,
    trainable: &'a Trainable,
}

impl ModuleMapper for Freeze<'_> {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.stack.enter(name);
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.stack.exit();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let on = self.trainable.trains(&self.stack.path(self.prefix));
        param.set_require_grad(on)
    }
}

/// Moves every float parameter of a module loaded on a plain device onto that device's
/// autodiff twin as a *leaf* (`Tensor::autodiff`). Loading straight onto an autodiff device
/// would record the loader's own tensor ops (GGUF dequantisation, vocabulary growth), leaving
/// non-leaf parameters that cannot require gradients.
pub fn to_autodiff<M: Module>(module: M) -> M {
    struct Lift;
    impl ModuleMapper for Lift {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            param.map(|t| t.autodiff())
        }
    }
    module.map(&mut Lift)
}

/// Marks the parameters of `module` (named under `prefix`) trainable or frozen.
pub fn freeze<M: Module>(module: M, prefix: &str, trainable: &Trainable) -> M {
    module.map(&mut Freeze {
        stack: PathStack::default(),
        prefix,
        trainable,
    })
}

/// Stores the frozen weights of the linear layers (`*_proj.weight` that do not train) in
/// `dtype`: with LoRA and bf16 GEMMs the base weights are read in bf16 by every pass, so keeping
/// them in bf16 saves a cast kernel per layer and pass and half their memory and bandwidth. What
/// trains (adapters, the projection, the embedding's new rows) keeps its f32 master copy, and
/// norms, embeddings and biases stay f32.
pub fn store_frozen_linears_as<M: Module>(module: M, prefix: &str, trainable: &Trainable, dtype: FloatDType) -> M {
    struct Narrow<'a> {
        stack: PathStack,
        prefix: &'a str,
        trainable: &'a Trainable,
        dtype: FloatDType,
    }
    impl ModuleMapper for Narrow<'_> {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.stack.enter(name);
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.stack.exit();
        }
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let path = self.stack.path(self.prefix);
            if D == 2 && path.ends_with("_proj.weight") && !self.trainable.trains(&path) {
                let dtype = self.dtype;
                param.map(|t| t.cast(dtype)).set_require_grad(false)
            } else {
                param
            }
        }
    }
    module.map(&mut Narrow { stack: PathStack::default(), prefix, trainable, dtype })
}

/// One trainable parameter as the optimizer sees it.
#[derive(Clone, Debug)]
pub struct ParamInfo {
    pub id: ParamId,
    pub name: String,
    pub shape: Vec<usize>,
    /// Trains only from `new_rows_from` on along this axis.
    pub row_axis: Option<usize>,
    /// Weight decay applies (not to 1-D parameters: biases and norm weights, as HF's Trainer).
    pub decay: bool,
}

struct Collect<'a> {
    stack: PathStack,
    prefix: &'a str,
    trainable: &'a Trainable,
    out: Vec<ParamInfo>,
}

impl ModuleVisitor for Collect<'_> {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.stack.enter(name);
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.stack.exit();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let name = self.stack.path(self.prefix);
        if self.trainable.trains(&name) {
            let shape = param.val().dims().to_vec();
            self.out.push(ParamInfo {
                id: param.id,
                row_axis: self.trainable.row_axis(&name),
                decay: D > 1,
                shape,
                name,
            });
        }
    }
}

/// The trainable parameters of `module`, in visiting order, named under `prefix`.
pub fn trainable_params<M: Module>(
    module: &M,
    prefix: &str,
    trainable: &Trainable,
) -> Vec<ParamInfo> {
    let mut c = Collect {
        stack: PathStack::default(),
        prefix,
        trainable,
        out: vec![],
    };
    module.visit(&mut c);
    c.out
}

/// Gradients summed over the micro-batches of one optimizer step, flattened, on the inner
/// (non-autodiff) device.
#[derive(Default)]
pub struct Accumulator {
    grads: HashMap<ParamId, Tensor<1>>,
}

struct TakeGrads<'a> {
    grads: &'a mut Gradients,
    acc: &'a mut Accumulator,
    ids: &'a HashMap<ParamId, usize>,
}

impl ModuleVisitor for TakeGrads<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if !self.ids.contains_key(&param.id) || !param.is_require_grad() {
            return;
        }
        let Some(g) = param.val().grad_remove(self.grads) else {
            return;
        };
        let n = g.shape().num_elements();
        let g = g.reshape([n]);
        let entry = self.acc.grads.remove(&param.id);
        self.acc.grads.insert(
            param.id,
            match entry {
                Some(prev) => prev + g,
                None => g,
            },
        );
    }
}

impl Accumulator {
    /// Adds the gradients `grads` holds for the parameters of `module` that are in `ids`.
    pub fn add<M: Module>(
        &mut self,
        module: &M,
        grads: &mut Gradients,
        ids: &HashMap<ParamId, usize>,
    ) {
        module.visit(&mut TakeGrads {
            grads,
            acc: self,
            ids,
        });
    }

    pub fn is_empty(&self) -> bool {
        self.grads.is_empty()
    }
}

/// AdamW hyper-parameters (PyTorch's defaults for β and ε).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamW {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for AdamW {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

/// First and second moments of one parameter (flattened).
#[derive(Clone, Debug)]
pub struct Moments {
    pub exp_avg: Tensor<1>,
    pub exp_avg_sq: Tensor<1>,
}

/// The optimizer: the trainable set, its moments and the step count.
pub struct Optimizer {
    pub params: Vec<ParamInfo>,
    pub index: HashMap<ParamId, usize>,
    /// The first and second moments of every parameter, one flat vector each in `params` order
    /// (`offsets`): a step updates them with a dozen kernels whatever the number of parameters.
    /// `None` before the first step.
    flat_moments: Option<(Tensor<1>, Tensor<1>)>,
    /// Whether parameter `i` has had a gradient yet (an untouched one has no moments to save).
    touched: Vec<bool>,
    /// Start of parameter `i` in the flat vectors; the last entry is the total.
    offsets: Vec<usize>,
    /// The last step's pattern of parameters without a gradient and its flat mask: the same
    /// pattern every step (e.g. the unused projection of `cot`), so it is built once.
    absent_mask: Option<(Vec<bool>, Tensor<1, Bool>)>,
    pub hp: AdamW,
    /// Optimizer steps taken (AdamW's `t`).
    pub step: u64,
    /// First new-token row (see [`Trainable::new_rows_from`]).
    pub new_rows_from: usize,
    masks: HashMap<ParamId, Tensor<1>>,
}

/// What one optimizer step did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepReport {
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// The factor the gradients were scaled by (1 when not clipped).
    pub clip_scale: f64,
}

impl Optimizer {
    pub fn new(params: Vec<ParamInfo>, hp: AdamW, new_rows_from: usize) -> Self {
        let index = params.iter().enumerate().map(|(i, p)| (p.id, i)).collect();
        let mut offsets = vec![0];
        for p in &params {
            offsets.push(offsets.last().unwrap() + p.shape.iter().product::<usize>());
        }
        Self {
            touched: vec![false; params.len()],
            params,
            index,
            flat_moments: None,
            offsets,
            absent_mask: None,
            hp,
            step: 0,
            new_rows_from,
            masks: HashMap::new(),
        }
    }

    /// Trainable elements (the new-token slices only, for row-restricted parameters).
    pub fn num_trainable(&self) -> usize {
        self.params
            .iter()
            .map(|p| match p.row_axis {
                Some(axis) => {
                    p.shape.iter().product::<usize>() / p.shape[axis]
                        * p.shape[axis].saturating_sub(self.new_rows_from)
                }
                None => p.shape.iter().product(),
            })
            .sum()
    }

    /// 1 on the new-token rows of a row-restricted parameter, 0 elsewhere (flattened).
    fn mask(&mut self, i: usize, like: &Tensor<1>) -> Option<Tensor<1>> {
        let p = &self.params[i];
        let axis = p.row_axis?;
        if let Some(m) = self.masks.get(&p.id) {
            return Some(m.clone());
        }
        let (rows, cols) = (p.shape[0], p.shape[1]);
        let from = self.new_rows_from;
        let data: Vec<f32> = (0..rows * cols)
            .map(|k| {
                let idx = if axis == 0 { k / cols } else { k % cols };
                (idx >= from) as u8 as f32
            })
            .collect();
        let m = Tensor::<1>::from_data(TensorData::new(data, [rows * cols]), &like.device());
        self.masks.insert(p.id, m.clone());
        Some(m)
    }

    /// Parameter `i`'s moments (`None` before its first gradient), for checkpoints.
    pub fn moments(&self, i: usize) -> Option<Moments> {
        let (m, v) = self.flat_moments.as_ref().filter(|_| self.touched[i])?;
        let (at, n) = (self.offsets[i], self.offsets[i + 1] - self.offsets[i]);
        Some(Moments { exp_avg: m.clone().narrow(0, at, n), exp_avg_sq: v.clone().narrow(0, at, n) })
    }

    /// Restores every parameter's moments (`None`: never updated), e.g. from a checkpoint.
    pub fn set_moments(&mut self, moments: Vec<Option<Moments>>, device: &Device) {
        assert_eq!(moments.len(), self.params.len(), "one entry per parameter");
        self.touched = moments.iter().map(Option::is_some).collect();
        if moments.iter().all(Option::is_none) {
            self.flat_moments = None;
            return;
        }
        let (ms, vs): (Vec<_>, Vec<_>) = moments
            .into_iter()
            .zip(self.offsets.windows(2))
            .map(|(m, w)| match m {
                Some(m) => (m.exp_avg, m.exp_avg_sq),
                None => (Tensor::zeros([w[1] - w[0]], device), Tensor::zeros([w[1] - w[0]], device)),
            })
            .unzip();
        self.flat_moments = Some((Tensor::cat(ms, 0), Tensor::cat(vs, 0)));
    }

    /// Restricts gradients to what trains, clips them to global norm `clip` (0: off) and
    /// returns them ready for [`Optimizer::apply`]: one flat vector in parameter order (zeros
    /// for a parameter without a gradient this step) and one host read (the norm) per step,
    /// which is where a failure of the device's work so far shows (the error).
    pub fn prepare(&mut self, acc: Accumulator, clip: f64) -> Result<(StepGrads, StepReport), String> {
        let mut grads = acc.grads;
        let Some(device) = grads.values().next().map(Tensor::device) else {
            return Ok((StepGrads::default(), StepReport { grad_norm: 0.0, clip_scale: 1.0 }));
        };
        let mut present = Vec::with_capacity(self.params.len());
        let mut pieces = Vec::with_capacity(self.params.len());
        for i in 0..self.params.len() {
            let n = self.offsets[i + 1] - self.offsets[i];
            match grads.remove(&self.params[i].id) {
                Some(g) => {
                    let g = match self.mask(i, &g) {
                        Some(m) => g * m,
                        None => g,
                    };
                    present.push(true);
                    pieces.push(g);
                }
                None => {
                    present.push(false);
                    pieces.push(Tensor::zeros([n], &device));
                }
            }
        }
        let flat = Tensor::cat(pieces, 0);
        let grad_norm = (flat.clone().powi_scalar(2).sum().try_into_scalar::<f32>().map_err(|e| e.to_string())? as f64).sqrt();
        let clip_scale = if clip > 0.0 && grad_norm > clip {
            clip / (grad_norm + 1e-6)
        } else {
            1.0
        };
        let flat = if clip_scale != 1.0 { flat.mul_scalar(clip_scale) } else { flat };
        Ok((StepGrads { flat: Some(flat), present, update: None }, StepReport { grad_norm, clip_scale }))
    }

    /// One AdamW step with learning rate `lr` over the parameters of `module` that have a
    /// gradient in `grads`; returns the updated module. The moments and the Adam direction are
    /// computed once per step over the flat vectors (at the first call); each parameter then
    /// takes its slice, plus its own weight decay and row mask.
    pub fn apply<M: Module>(&mut self, module: M, grads: &mut StepGrads, lr: f64) -> M {
        let Some(g) = grads.flat.clone() else {
            return module;
        };
        if grads.update.is_none() {
            grads.update = Some(self.adam_direction(g, &grads.present, lr));
        }
        let mut mapper = Apply { opt: self, grads, lr };
        module.map(&mut mapper)
    }

    /// Updates the flat moments with `g` and returns `lr/bc1 · m / (√v / √bc2 + ε)` (flat);
    /// parameters without a gradient keep their moments.
    fn adam_direction(&mut self, g: Tensor<1>, present: &[bool], lr: f64) -> Tensor<1> {
        let hp = self.hp;
        let t = self.step as i32;
        let (m0, v0) = self.flat_moments.take().unwrap_or_else(|| (g.zeros_like(), g.zeros_like()));
        let mut m = m0.clone().mul_scalar(hp.beta1) + g.clone().mul_scalar(1.0 - hp.beta1);
        let mut v = v0.clone().mul_scalar(hp.beta2) + g.powi_scalar(2).mul_scalar(1.0 - hp.beta2);
        if present.iter().any(|p| !p) {
            let absent = self.absent_mask(present, &m.device());
            m = m.mask_where(absent.clone(), m0);
            v = v.mask_where(absent, v0);
        }
        for (touched, &p) in self.touched.iter_mut().zip(present) {
            *touched |= p;
        }
        let bc1 = 1.0 - hp.beta1.powi(t);
        let bc2 = 1.0 - hp.beta2.powi(t);
        // PyTorch's AdamW: p ← p − lr·wd·p − lr/bc1 · m / (√v / √bc2 + ε).
        let direction = m
            .clone()
            .div(v.clone().sqrt().div_scalar(bc2.sqrt()).add_scalar(hp.eps))
            .mul_scalar(lr / bc1);
        self.flat_moments = Some((m, v));
        direction
    }

    /// True on the flat elements of the parameters that have no gradient this step.
    fn absent_mask(&mut self, present: &[bool], device: &Device) -> Tensor<1, Bool> {
        if let Some((pattern, mask)) = &self.absent_mask {
            if pattern == present {
                return mask.clone();
            }
        }
        let absent: Vec<bool> = present
            .iter()
            .zip(self.offsets.windows(2))
            .flat_map(|(&p, w)| std::iter::repeat_n(!p, w[1] - w[0]))
            .collect();
        let n = absent.len();
        let mask = Tensor::<1, Bool>::from_data(TensorData::new(absent, [n]), device);
        self.absent_mask = Some((present.to_vec(), mask.clone()));
        mask
    }

    /// Advances the step counter: call once per optimizer step, before [`Optimizer::apply`].
    pub fn begin_step(&mut self) {
        self.step += 1;
    }
}

/// The gradients of one optimizer step ([`Optimizer::prepare`]) and, once computed, the flat
/// Adam direction that [`Optimizer::apply`] slices per parameter.
#[derive(Default)]
pub struct StepGrads {
    flat: Option<Tensor<1>>,
    present: Vec<bool>,
    update: Option<Tensor<1>>,
}

struct Apply<'a> {
    opt: &'a mut Optimizer,
    grads: &'a mut StepGrads,
    lr: f64,
}

impl ModuleMapper for Apply<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(&i) = self.opt.index.get(&param.id) else {
            return param;
        };
        if !self.grads.present[i] {
            return param;
        }
        let direction = self.grads.update.as_ref().expect("computed by apply");
        let (at, n) = (self.opt.offsets[i], self.opt.offsets[i + 1] - self.opt.offsets[i]);
        let mut update = direction.clone().narrow(0, at, n);
        let mask = self.opt.mask(i, &update);
        let hp = self.opt.hp;
        let decay = self.opt.params[i].decay;
        let (id, tensor, mapper) = param.consume();
        let require_grad = tensor.is_require_grad();
        let shape = tensor.shape();
        let p = tensor.inner().reshape([n]);
        if decay && hp.weight_decay > 0.0 {
            update = update + p.clone().mul_scalar(self.lr * hp.weight_decay);
        }
        if let Some(mask) = mask {
            update = update * mask;
        }
        let updated = (p - update).reshape(shape);
        let mut value = Tensor::from_inner(updated);
        if require_grad {
            value = value.require_grad();
        }
        Param::from_mapped_value(id, value, mapper)
    }
}

/// Host copies of named tensors (for checkpoints).
pub type NamedHost = Vec<(String, Vec<usize>, Vec<f32>)>;

/// Reads a tensor to host f32; a failure of the device's work is the error.
pub fn try_to_host<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>, String> {
    Ok(t.try_into_data().map_err(|e| e.to_string())?.convert::<f32>().try_to_vec::<f32>().unwrap_or_default())
}

/// Reads a tensor to host f32.
///
/// # Panics
/// If the device failed (training steps use [`try_to_host`]).
pub fn to_host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    try_to_host(t).expect("device read")
}

struct ReadNamed<'a> {
    wanted: &'a HashMap<ParamId, usize>,
    out: HashMap<usize, Vec<f32>>,
}

impl ModuleVisitor for ReadNamed<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(&i) = self.wanted.get(&param.id) {
            self.out.insert(i, to_host(param.val()));
        }
    }
}

/// The values of the optimizer's parameters found in `module`, by parameter index.
pub fn read_params<M: Module>(module: &M, opt: &Optimizer) -> HashMap<usize, Vec<f32>> {
    let mut r = ReadNamed {
        wanted: &opt.index,
        out: HashMap::new(),
    };
    module.visit(&mut r);
    r.out
}

struct WriteNamed<'a> {
    values: &'a HashMap<ParamId, Vec<f32>>,
}

impl ModuleMapper for WriteNamed<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(data) = self.values.get(&param.id) else {
            return param;
        };
        let (id, tensor, mapper) = param.consume();
        let require_grad = tensor.is_require_grad();
        let shape = tensor.shape();
        let device = tensor.device();
        let mut value = Tensor::<D>::from_data(TensorData::new(data.clone(), shape), &device);
        if require_grad {
            value = value.require_grad();
        }
        Param::from_mapped_value(id, value, mapper)
    }
}

/// Replaces the values of the parameters in `values` (same shapes; checked by the caller).
pub fn write_params<M: Module>(module: M, values: &HashMap<ParamId, Vec<f32>>) -> M {
    module.map(&mut WriteNamed { values })
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Module;

    #[derive(Module, Debug)]
    struct Toy {
        w: Param<Tensor<2>>,
        b: Param<Tensor<1>>,
    }

    /// PyTorch's AdamW on host vectors, in the order of operations kava-train uses.
    struct Reference {
        m: Vec<f32>,
        v: Vec<f32>,
    }

    impl Reference {
        fn step(&mut self, p: &mut [f32], g: &[f32], t: i32, lr: f64, hp: AdamW, decay: bool) {
            let (bc1, bc2) = (1.0 - hp.beta1.powi(t), 1.0 - hp.beta2.powi(t));
            for k in 0..p.len() {
                self.m[k] = self.m[k] * hp.beta1 as f32 + g[k] * (1.0 - hp.beta1) as f32;
                self.v[k] = self.v[k] * hp.beta2 as f32 + g[k] * g[k] * (1.0 - hp.beta2) as f32;
                let mut u = self.m[k] / (self.v[k].sqrt() / bc2.sqrt() as f32 + hp.eps as f32) * (lr / bc1) as f32;
                if decay {
                    u += p[k] * (lr * hp.weight_decay) as f32;
                }
                p[k] -= u;
            }
        }
    }

    fn close(what: &str, got: &[f32], want: &[f32]) {
        for (k, (a, b)) in got.iter().zip(want).enumerate() {
            assert!((a - b).abs() <= 1e-6 * b.abs().max(1e-3), "{what}[{k}]: {a} vs {b}");
        }
    }

    #[test]
    fn the_flat_adamw_step_is_pytorchs_adamw_per_parameter_with_global_clipping() {
        let device = kava::Backend::Cpu.device().unwrap();
        let t2 = |v: Vec<f32>, s: [usize; 2]| Tensor::<2>::from_data(TensorData::new(v, s), &device);
        let t1 = |v: Vec<f32>| {
            let n = v.len();
            Tensor::<1>::from_data(TensorData::new(v, [n]), &device)
        };
        let (mut pw, mut pb) = (vec![0.5f32, -1.0, 0.25, 2.0, -0.75, 1.5], vec![1.0f32, -2.0]);
        let mut toy = Toy { w: Param::from_tensor(t2(pw.clone(), [2, 3])), b: Param::from_tensor(t1(pb.clone())) };
        let info = |id, name: &str, shape: Vec<usize>, decay| ParamInfo { id, name: name.into(), shape, row_axis: None, decay };
        let hp = AdamW { weight_decay: 0.1, ..AdamW::default() };
        let mut opt = Optimizer::new(vec![info(toy.w.id, "w", vec![2, 3], true), info(toy.b.id, "b", vec![2], false)], hp, 0);
        let (mut rw, mut rb) = (Reference { m: vec![0.0; 6], v: vec![0.0; 6] }, Reference { m: vec![0.0; 2], v: vec![0.0; 2] });
        let values = |toy: &Toy| (to_host(toy.w.val()), to_host(toy.b.val()));

        // Step 1: both gradients, no clipping.
        let (gw, gb) = (vec![0.1f32, -0.2, 0.3, 0.05, 0.0, -0.4], vec![0.5f32, -0.25]);
        opt.begin_step();
        let acc = Accumulator { grads: HashMap::from([(toy.w.id, t1(gw.clone())), (toy.b.id, t1(gb.clone()))]) };
        let (mut grads, rep) = opt.prepare(acc, 100.0).unwrap();
        let norm = gw.iter().chain(&gb).map(|g| (g * g) as f64).sum::<f64>().sqrt();
        assert!((rep.grad_norm - norm).abs() < 1e-6 && rep.clip_scale == 1.0, "{rep:?} vs norm {norm}");
        toy = opt.apply(toy, &mut grads, 1e-2);
        rw.step(&mut pw, &gw, 1, 1e-2, hp, true);
        rb.step(&mut pb, &gb, 1, 1e-2, hp, false);
        let (w, b) = values(&toy);
        close("step 1 w", &w, &pw);
        close("step 1 b (no decay: 1-D)", &b, &pb);

        // Step 2: only `w` has a gradient, clipped to a global norm of 0.2.
        let gw2 = vec![0.3f32, 0.1, -0.2, 0.4, -0.1, 0.2];
        opt.begin_step();
        let acc = Accumulator { grads: HashMap::from([(toy.w.id, t1(gw2.clone()))]) };
        let (mut grads, rep) = opt.prepare(acc, 0.2).unwrap();
        let norm = gw2.iter().map(|g| (g * g) as f64).sum::<f64>().sqrt();
        let scale = 0.2 / (norm + 1e-6);
        assert!((rep.grad_norm - norm).abs() < 1e-6 && (rep.clip_scale - scale).abs() < 1e-6 * scale, "{rep:?} vs {scale}");
        let b_moments = (to_host(opt.moments(1).unwrap().exp_avg), to_host(opt.moments(1).unwrap().exp_avg_sq));
        toy = opt.apply(toy, &mut grads, 5e-3);
        let clipped: Vec<f32> = gw2.iter().map(|g| g * rep.clip_scale as f32).collect();
        rw.step(&mut pw, &clipped, 2, 5e-3, hp, true);
        let (w, b) = values(&toy);
        close("step 2 w (clipped)", &w, &pw);
        assert_eq!(b, pb, "a parameter without a gradient does not move");
        let after = opt.moments(1).unwrap();
        assert_eq!((to_host(after.exp_avg), to_host(after.exp_avg_sq)), b_moments, "nor do its moments");

        // Step 3: `b` again, its moments continue from step 1 (t is the global step count).
        opt.begin_step();
        let acc = Accumulator { grads: HashMap::from([(toy.w.id, t1(gw.clone())), (toy.b.id, t1(gb.clone()))]) };
        let (mut grads, _) = opt.prepare(acc, 100.0).unwrap();
        toy = opt.apply(toy, &mut grads, 1e-2);
        rw.step(&mut pw, &gw, 3, 1e-2, hp, true);
        rb.step(&mut pb, &gb, 3, 1e-2, hp, false);
        let (w, b) = values(&toy);
        close("step 3 w", &w, &pw);
        close("step 3 b", &b, &pb);
        close("step 3 moments of w", &to_host(opt.moments(0).unwrap().exp_avg), &rw.m);

        // The moments survive a round trip through set_moments (a checkpoint restore).
        let saved: Vec<Option<Moments>> = (0..2).map(|i| opt.moments(i)).collect();
        let mut other = Optimizer::new(opt.params.clone(), hp, 0);
        other.set_moments(saved, &device);
        assert_eq!(to_host(other.moments(1).unwrap().exp_avg_sq), rb.v);
        let mut fresh = Optimizer::new(opt.params.clone(), hp, 0);
        fresh.set_moments(vec![None, None], &device);
        assert!(fresh.moments(0).is_none(), "never-updated parameters have no moments to save");
    }
}
