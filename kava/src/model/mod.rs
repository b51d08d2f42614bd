//! One decoder for the Llama and Qwen2 families (they differ only in flags: q/k/v bias, tied
//! head, RoPE scaling). Read top to bottom: layers in `linear`, `norm`, `rope`, `mlp`,
//! `attention`, the cache in `cache`, and here the block and the model. Field names are the HF
//! checkpoint keys (`model.layers.N.self_attn.q_proj.weight` …).
//!
//! The model knows nothing of text or latents: it maps input embeddings to hidden states on a
//! [`KvCache`], with optional captures (per-layer hidden states, post-RoPE K/V and queries,
//! pre-RoPE keys, at chosen positions) for training.

pub mod attention;
pub mod cache;
pub mod fused;
pub mod linear;
pub mod mlp;
pub mod norm;
pub mod precision;
pub mod rope;

use burn::module::{Module, Param};
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};

pub use attention::{Attention, AttentionMask};
pub use cache::KvCache;
pub use linear::{Linear, Lora};
pub use mlp::Mlp;
pub use norm::RmsNorm;
pub use rope::RopeAngles;

use crate::config::ModelConfig;
use crate::error::Result;
use crate::load::Weights;

/// One pre-norm decoder block: `x + attn(norm(x))`, then `h + mlp(norm(h))`.
#[derive(Module, Debug)]
pub struct DecoderLayer {
    pub self_attn: Attention,
    pub mlp: Mlp,
    pub input_layernorm: RmsNorm,
    pub post_attention_layernorm: RmsNorm,
}

/// What a forward pass should record besides the final hidden state.
#[derive(Debug, Clone, Default)]
pub struct Capture {
    /// Hidden states as HF's `output_hidden_states`: index 0 the input embeddings, `l` the
    /// output of layer `l`, the last one after the final norm.
    pub hidden_states: bool,
    /// Post-RoPE keys and values of the new positions, per layer.
    pub keys_values: bool,
    /// Post-RoPE queries of the new positions, per layer.
    pub queries: bool,
    /// Keys of the new positions **before** the rotary embedding, per layer (what
    /// `loss.kv_pre_rope` compares; the cache itself always holds post-RoPE keys).
    pub keys_pre_rope: bool,
    /// `[b, p]` indices into the `t` new positions to keep (per row); `None` keeps all.
    pub positions: Option<Tensor<2, Int>>,
}

impl Capture {
    pub fn none() -> Self {
        Self::default()
    }

    pub fn all() -> Self {
        Self { hidden_states: true, keys_values: true, queries: true, keys_pre_rope: true, positions: None }
    }

    fn any(&self) -> bool {
        self.hidden_states || self.keys_values || self.queries || self.keys_pre_rope
    }

    /// Keeps the chosen positions of `x` along `dim` (the `t` axis).
    fn select<const D: usize>(&self, x: Tensor<D>, dim: usize) -> Tensor<D> {
        let Some(idx) = &self.positions else { return x };
        let [b, p] = idx.dims();
        let mut shape = x.dims();
        shape[dim] = p;
        // Broadcast the [b, p] index over every other axis, then gather along `dim`.
        let mut view = [1usize; D];
        view[0] = b;
        view[dim] = p;
        let idx = idx.clone().reshape(view).expand(shape);
        x.gather(dim, idx)
    }
}

/// The result of [`Transformer::forward`].
#[derive(Debug, Clone)]
pub struct Output {
    /// `[b, t, c]`: last-layer hidden states after the final norm (what the LM head reads).
    pub hidden: Tensor<3>,
    /// `L + 1` tensors `[b, p, c]` (see [`Capture::hidden_states`]).
    pub hidden_states: Vec<Tensor<3>>,
    /// `L` tensors `[b, g, p, d]`.
    pub keys: Vec<Tensor<4>>,
    /// `L` tensors `[b, g, p, d]`.
    pub values: Vec<Tensor<4>>,
    /// `L` tensors `[b, h, p, d]`.
    pub queries: Vec<Tensor<4>>,
    /// `L` tensors `[b, g, p, d]`: [`Output::keys`] before RoPE (see [`Capture::keys_pre_rope`]).
    pub keys_pre_rope: Vec<Tensor<4>>,
}

/// A Llama / Qwen2 decoder.
#[derive(Module, Debug)]
pub struct Transformer {
    /// `[v, c]`
    pub embed_tokens: Param<Tensor<2>>,
    pub layers: Vec<DecoderLayer>,
    pub norm: RmsNorm,
    /// `None` when the head is tied to `embed_tokens`.
    pub lm_head: Option<Linear>,
    #[module(skip)]
    pub config: ModelConfig,
    #[module(skip)]
    inv_freq: Vec<f32>,
}

impl Transformer {
    /// Builds the model from HF-named host weights, checking every shape.
    pub fn from_weights(config: &ModelConfig, weights: &mut Weights, device: &Device) -> Result<Self> {
        let c = config.hidden_size;
        let (h, g, d, f) = (config.num_attention_heads, config.num_key_value_heads, config.head_dim, config.intermediate_size);
        let eps = config.rms_norm_eps;
        let linear = |weights: &mut Weights, name: &str, out: usize, inp: usize, bias: bool| -> Result<Linear> {
            let w = weights.take(&format!("{name}.weight"), &[out, inp])?;
            let b = if bias { Some(weights.take(&format!("{name}.bias"), &[out])?) } else { None };
            Ok(Linear::from_hf(w, b, device))
        };
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for i in 0..config.num_hidden_layers {
            let p = format!("model.layers.{i}");
            let self_attn = Attention {
                q_proj: linear(weights, &format!("{p}.self_attn.q_proj"), h * d, c, config.qkv_bias)?,
                k_proj: linear(weights, &format!("{p}.self_attn.k_proj"), g * d, c, config.qkv_bias)?,
                v_proj: linear(weights, &format!("{p}.self_attn.v_proj"), g * d, c, config.qkv_bias)?,
                o_proj: linear(weights, &format!("{p}.self_attn.o_proj"), c, h * d, config.o_bias)?,
                n_heads: h,
                n_kv_heads: g,
                head_dim: d,
            };
            let mlp = Mlp {
                gate_proj: linear(weights, &format!("{p}.mlp.gate_proj"), f, c, false)?,
                up_proj: linear(weights, &format!("{p}.mlp.up_proj"), f, c, false)?,
                down_proj: linear(weights, &format!("{p}.mlp.down_proj"), c, f, false)?,
            };
            let input_layernorm = RmsNorm::from_hf(weights.take(&format!("{p}.input_layernorm.weight"), &[c])?, eps, device);
            let post_attention_layernorm =
                RmsNorm::from_hf(weights.take(&format!("{p}.post_attention_layernorm.weight"), &[c])?, eps, device);
            layers.push(DecoderLayer { self_attn, mlp, input_layernorm, post_attention_layernorm });
        }
        let v = config.vocab_size;
        let embed = weights.take("model.embed_tokens.weight", &[v, c])?;
        let embed_tokens = Param::from_tensor(Tensor::<2>::from_data(TensorData::new(embed.data, [v, c]), device));
        let norm = RmsNorm::from_hf(weights.take("model.norm.weight", &[c])?, eps, device);
        // Some tied checkpoints still carry a copy of the head; a tied model ignores it.
        let lm_head = if config.tie_word_embeddings {
            let _ = weights.take_opt("lm_head.weight", &[v, c])?;
            None
        } else {
            Some(Linear::from_hf(weights.take("lm_head.weight", &[v, c])?, None, device))
        };
        for name in weights.remaining() {
            log::warn!("unused tensor `{name}`");
        }
        Ok(Self { embed_tokens, layers, norm, lm_head, config: config.clone(), inv_freq: rope::inv_freq(config) })
    }

    pub fn device(&self) -> Device {
        self.embed_tokens.val().device()
    }

    /// A cache sized for this model.
    pub fn new_cache(&self, batch: usize) -> KvCache {
        KvCache::new(self.layers.len(), batch)
    }

    /// Token embeddings.
    ///
    /// # Shapes
    /// `ids`: `[b, t]` → `[b, t, c]`
    pub fn embed(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        let [b, t] = ids.dims();
        let c = self.config.hidden_size;
        self.embed_tokens.val().select(0, ids.reshape([b * t])).reshape([b, t, c])
    }

    /// LM-head logits.
    ///
    /// # Shapes
    /// `hidden`: `[b, t, c]` → `[b, t, v]`
    pub fn logits(&self, hidden: Tensor<3>) -> Tensor<3> {
        match &self.lm_head {
            Some(head) => head.forward(hidden),
            None => {
                let [b, t, c] = hidden.dims();
                let w = self.embed_tokens.val(); // [v, c]
                let v = w.dims()[0];
                precision::matmul(hidden.reshape([b * t, c]), w.transpose()).reshape([b, t, v])
            }
        }
    }

    /// Runs `embeds` at the positions after the cache's content and appends their K/V.
    ///
    /// `valid` (`[b][t]`, `true` = real token) marks right padding of this step's inputs;
    /// `None` means every input is real. Positions are counted over real tokens only, so a
    /// padded row sees exactly what it would see alone.
    ///
    /// # Shapes
    /// `embeds`: `[b, t, c]` → [`Output`] with `hidden` `[b, t, c]`
    ///
    /// # Panics
    /// If the batch size differs from the cache's, or `valid` from `[b][t]`.
    pub fn forward(&self, embeds: Tensor<3>, valid: Option<&[Vec<bool>]>, cache: &mut KvCache, capture: &Capture) -> Output {
        let [b, t, _] = embeds.dims();
        assert_eq!(b, cache.batch(), "batch {b} on a cache of batch {}", cache.batch());
        let device = embeds.device();
        let all_valid;
        let valid = match valid {
            Some(v) => {
                assert!(v.len() == b && v.iter().all(|r| r.len() == t), "valid mask must be [b][t]");
                v
            }
            None => {
                all_valid = vec![vec![true; t]; b];
                &all_valid
            }
        };
        let start = cache.next_positions();
        let s0 = cache.len();
        let needs_mask = t > 1 || cache.has_padding() || valid.iter().any(|r| r.iter().any(|v| !v));
        cache.push_valid(valid);

        // Positions count real tokens only (right padding; method.md §1.3).
        let mut positions = Vec::with_capacity(b * t);
        for (row, start) in valid.iter().zip(&start) {
            let mut p = *start as i64;
            for v in row {
                positions.push(p);
                p += *v as i64;
            }
        }
        let positions = Tensor::<2, Int>::from_data(TensorData::new(positions, [b, t]), &device);
        let rope = RopeAngles::new(positions, &self.inv_freq, &device);
        // The fused softmax reads slot validity and the causal offset; the tensor-op form a
        // dense boolean mask built here.
        let mask = needs_mask.then(|| {
            if fused::available(&embeds) {
                AttentionMask::Causal { valid: slot_validity(cache.valid(), &device), s0 }
            } else {
                AttentionMask::Dense(causal_padding_mask(cache.valid(), s0, t, &device))
            }
        });

        let mut out =
            Output { hidden: embeds.clone(), hidden_states: vec![], keys: vec![], values: vec![], queries: vec![], keys_pre_rope: vec![] };
        if capture.hidden_states {
            out.hidden_states.push(capture.select(embeds.clone(), 1));
        }
        let n_layers = self.layers.len();
        let mut x = embeds;
        for (l, layer) in self.layers.iter().enumerate() {
            let normed = layer.input_layernorm.forward(x.clone());
            let a = layer.self_attn.forward(normed, &rope, mask.as_ref(), cache, l, capture.keys_pre_rope);
            let h = x + a.out;
            x = h.clone() + layer.mlp.forward(layer.post_attention_layernorm.forward(h));
            if capture.any() {
                if capture.keys_values {
                    out.keys.push(capture.select(a.k, 2));
                    out.values.push(capture.select(a.v, 2));
                }
                if capture.queries {
                    out.queries.push(capture.select(a.q, 2));
                }
                if let Some(k) = a.k_pre_rope {
                    out.keys_pre_rope.push(capture.select(k, 2));
                }
                if capture.hidden_states && l + 1 < n_layers {
                    out.hidden_states.push(capture.select(x.clone(), 1));
                }
            }
        }
        let hidden = self.norm.forward(x);
        if capture.hidden_states {
            out.hidden_states.push(capture.select(hidden.clone(), 1));
        }
        out.hidden = hidden;
        out
    }
}

/// `[b, 1, t, s]`, `true` where query `i` (cache slot `s0 + i`) must not attend to slot `j`:
/// the future, and padding.
fn causal_padding_mask(valid: &[Vec<bool>], s0: usize, t: usize, device: &Device) -> Tensor<4, Bool> {
    let b = valid.len();
    let s = s0 + t;
    let mut m = Vec::with_capacity(b * t * s);
    for row in valid {
        for i in 0..t {
            for (j, ok) in row.iter().enumerate() {
                m.push(j > s0 + i || !ok);
            }
        }
    }
    Tensor::<4, Bool>::from_data(TensorData::new(m, [b, 1, t, s]), device)
}

/// `[b, s]`: 1.0 for a real cache slot, 0.0 for padding.
fn slot_validity(valid: &[Vec<bool>], device: &Device) -> Tensor<2> {
    let b = valid.len();
    let s = valid.first().map_or(0, Vec::len);
    let v: Vec<f32> = valid.iter().flatten().map(|&ok| if ok { 1.0 } else { 0.0 }).collect();
    Tensor::<2>::from_data(TensorData::new(v, [b, s]), device)
}

/// Ids of equal-length rows as a `[b, t]` tensor.
///
/// # Panics
/// If the rows differ in length.
pub fn ids_tensor(rows: &[Vec<u32>], device: &Device) -> Tensor<2, Int> {
    let b = rows.len();
    let t = rows.first().map_or(0, Vec::len);
    assert!(rows.iter().all(|r| r.len() == t), "ids rows must have equal length");
    let flat: Vec<i64> = rows.iter().flatten().map(|&x| x as i64).collect();
    Tensor::<2, Int>::from_data(TensorData::new(flat, [b, t]), device)
}

impl Transformer {
    /// The seven projections LoRA adapts in every layer (q, k, v, o, gate, up, down).
    pub fn lora_targets(&mut self) -> impl Iterator<Item = &mut Linear> {
        self.layers.iter_mut().flat_map(|l| {
            let a = &mut l.self_attn;
            let m = &mut l.mlp;
            [&mut a.q_proj, &mut a.k_proj, &mut a.v_proj, &mut a.o_proj, &mut m.gate_proj, &mut m.up_proj, &mut m.down_proj]
        })
    }

    /// Attaches fresh rank-`r` LoRA adapters (scale `alpha / r`, input dropout `dropout` while
    /// training) to q, k, v, o, gate, up and down of every layer.
    pub fn attach_lora(&mut self, r: usize, alpha: f32, dropout: f64) {
        for linear in self.lora_targets() {
            linear.attach_lora(r, alpha, dropout);
        }
    }

    /// Folds every adapter into its weight: the merged model computes what the adapted one did.
    pub fn merge_lora(&mut self) {
        for linear in self.lora_targets() {
            linear.merge_lora();
        }
    }
}

impl Transformer {
    /// Grows the vocabulary to `vocab` rows; new embedding (and untied head) rows start at the
    /// mean of the existing ones, so new tokens begin as an "average" token.
    ///
    /// # Panics
    /// If `vocab` is smaller than the current vocabulary.
    pub fn resize_vocab(&mut self, vocab: usize) {
        let old = self.config.vocab_size;
        assert!(vocab >= old, "cannot shrink the vocabulary from {old} to {vocab}");
        if vocab == old {
            return;
        }
        let extra = vocab - old;
        let grow = |w: Tensor<2>, dim: usize| {
            let mean = w.clone().mean_dim(dim);
            let rows = if dim == 0 { mean.repeat_dim(0, extra) } else { mean.repeat_dim(1, extra) };
            Tensor::cat(vec![w, rows], dim)
        };
        self.embed_tokens = Param::from_tensor(grow(self.embed_tokens.val(), 0));
        if let Some(head) = &mut self.lm_head {
            // The head is stored [c, v]: new columns.
            head.weight = Param::from_tensor(grow(head.weight.val(), 1));
        }
        self.config.vocab_size = vocab;
    }

    /// All weights in HF layout and names (what `model.safetensors` holds).
    pub fn to_hf_tensors(&self) -> Vec<(String, crate::load::HostTensor)> {
        use crate::load::HostTensor;
        let host = |t: Tensor<1>| {
            let n = t.dims()[0];
            HostTensor::new(vec![n], t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap_or_default())
        };
        let mut out = Vec::new();
        let [v, c] = self.embed_tokens.dims();
        let embed = self.embed_tokens.val().into_data().convert::<f32>().try_to_vec::<f32>().unwrap_or_default();
        out.push(("model.embed_tokens.weight".to_string(), HostTensor::new(vec![v, c], embed)));
        for (i, layer) in self.layers.iter().enumerate() {
            let p = format!("model.layers.{i}");
            let a = &layer.self_attn;
            for (name, lin) in [("q_proj", &a.q_proj), ("k_proj", &a.k_proj), ("v_proj", &a.v_proj), ("o_proj", &a.o_proj)] {
                out.push((format!("{p}.self_attn.{name}.weight"), lin.to_hf_weight()));
                if let Some(b) = &lin.bias {
                    out.push((format!("{p}.self_attn.{name}.bias"), host(b.val())));
                }
            }
            for (name, lin) in [("gate_proj", &layer.mlp.gate_proj), ("up_proj", &layer.mlp.up_proj), ("down_proj", &layer.mlp.down_proj)] {
                out.push((format!("{p}.mlp.{name}.weight"), lin.to_hf_weight()));
            }
            out.push((format!("{p}.input_layernorm.weight"), host(layer.input_layernorm.weight.val())));
            out.push((format!("{p}.post_attention_layernorm.weight"), host(layer.post_attention_layernorm.weight.val())));
        }
        out.push(("model.norm.weight".to_string(), host(self.norm.weight.val())));
        if let Some(head) = &self.lm_head {
            out.push(("lm_head.weight".to_string(), head.to_hf_weight()));
        }
        out
    }
}
