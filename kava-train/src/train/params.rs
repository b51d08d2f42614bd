//! What trains and how: the trainable parameter set (LoRA adapters, the projection, the new
//! token rows — or everything with full fine-tuning), gradient accumulation, global-norm
//! clipping and AdamW (PyTorch semantics), written over burn's module visitor/mapper so that the
//! optimizer state is ours to checkpoint and restore exactly.
//!
//! burn's own clipping is per tensor; method.md §3.2 asks for the global norm
//! (`torch.nn.utils.clip_grad_norm_`), which needs every gradient before any update.

use std::collections::HashMap;

use kava::burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use kava::burn::tensor::{Gradients, Tensor, TensorData};

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
    pub moments: Vec<Option<Moments>>,
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
        let moments = vec![None; params.len()];
        Self {
            params,
            index,
            moments,
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

    /// Restricts gradients to what trains, clips them to global norm `clip` (0: off) and
    /// returns them ready for [`Optimizer::apply`]: one host read (the norm) per step.
    pub fn prepare(
        &mut self,
        acc: Accumulator,
        clip: f64,
    ) -> (HashMap<ParamId, Tensor<1>>, StepReport) {
        let mut grads = acc.grads;
        let ids: Vec<ParamId> = grads.keys().copied().collect();
        for id in ids {
            let i = self.index[&id];
            let g = grads.remove(&id).expect("present");
            let g = match self.mask(i, &g) {
                Some(m) => g * m,
                None => g,
            };
            grads.insert(id, g);
        }
        let sq: Vec<Tensor<1>> = grads
            .values()
            .map(|g| g.clone().powi_scalar(2).sum())
            .collect();
        let grad_norm = if sq.is_empty() {
            0.0
        } else {
            (Tensor::cat(sq, 0).sum().into_scalar::<f32>() as f64).sqrt()
        };
        let clip_scale = if clip > 0.0 && grad_norm > clip {
            clip / (grad_norm + 1e-6)
        } else {
            1.0
        };
        if clip_scale != 1.0 {
            for g in grads.values_mut() {
                *g = g.clone().mul_scalar(clip_scale);
            }
        }
        (
            grads,
            StepReport {
                grad_norm,
                clip_scale,
            },
        )
    }

    /// One AdamW step with learning rate `lr` over the parameters of `module` that have a
    /// gradient in `grads`; returns the updated module.
    pub fn apply<M: Module>(
        &mut self,
        module: M,
        grads: &mut HashMap<ParamId, Tensor<1>>,
        lr: f64,
    ) -> M {
        let mut mapper = Apply {
            opt: self,
            grads,
            lr,
        };
        module.map(&mut mapper)
    }

    /// Advances the step counter: call once per optimizer step, before [`Optimizer::apply`].
    pub fn begin_step(&mut self) {
        self.step += 1;
    }
}

struct Apply<'a> {
    opt: &'a mut Optimizer,
    grads: &'a mut HashMap<ParamId, Tensor<1>>,
    lr: f64,
}

impl ModuleMapper for Apply<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(g) = self.grads.remove(&param.id) else {
            return param;
        };
        let i = self.opt.index[&param.id];
        let mask = self.opt.mask(i, &g);
        let hp = self.opt.hp;
        let t = self.opt.step as i32;
        let decay = self.opt.params[i].decay;
        let (id, tensor, mapper) = param.consume();
        let require_grad = tensor.is_require_grad();
        let shape = tensor.shape();
        let n = shape.num_elements();
        let p = tensor.inner().reshape([n]);
        let (m, v) = match self.opt.moments[i].take() {
            Some(Moments {
                exp_avg,
                exp_avg_sq,
            }) => (exp_avg, exp_avg_sq),
            None => (g.zeros_like(), g.zeros_like()),
        };
        let m = m.mul_scalar(hp.beta1) + g.clone().mul_scalar(1.0 - hp.beta1);
        let v = v.mul_scalar(hp.beta2) + g.powi_scalar(2).mul_scalar(1.0 - hp.beta2);
        let bc1 = 1.0 - hp.beta1.powi(t);
        let bc2 = 1.0 - hp.beta2.powi(t);
        // PyTorch's AdamW: p ← p − lr·wd·p − lr/bc1 · m / (√v / √bc2 + ε).
        let mut update = m
            .clone()
            .div(v.clone().sqrt().div_scalar(bc2.sqrt()).add_scalar(hp.eps))
            .mul_scalar(self.lr / bc1);
        if decay && hp.weight_decay > 0.0 {
            update = update + p.clone().mul_scalar(self.lr * hp.weight_decay);
        }
        if let Some(mask) = mask {
            update = update * mask;
        }
        self.opt.moments[i] = Some(Moments {
            exp_avg: m,
            exp_avg_sq: v,
        });
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

/// Reads a tensor to host f32.
pub fn to_host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap_or_default()
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
