//! Maps a llama / qwen2 GGUF model to Hugging Face layout: an HF `config.json` and HF-named,
//! HF-shaped f32 tensors, undoing the q/k row permutation llama.cpp applies to LLAMA models.
//!
//! Which models are permuted (llama.cpp `convert_hf_to_gguf.py`): `LlamaModel.modify_tensors`
//! applies `permute(w, n_head, n_head)` to `q_proj` and `permute(w, n_head, n_kv_head)` to
//! `k_proj` (weights and biases) so that ggml's interleaved ("normal") RoPE matches HF's
//! rotate-half RoPE. `Qwen2Model` derives from `TextModel`, not `LlamaModel`, and does not permute:
//! llama.cpp runs qwen2 with NEOX (rotate-half) RoPE, so its q/k are stored in HF order.

use serde_json::{json, Value as Json};

use super::reader::{Gguf, TensorInfo};
use super::rope::{clean_f64, rope_scaling};
use super::{GgufError, Result};

/// One weight in HF layout: (HF name, HF shape, row-major f32 values).
pub type HfTensor = (String, Vec<usize>, Vec<f32>);

/// An HF `config.json` plus all weights as (HF name, HF shape, row-major f32 values).
#[derive(Clone, Debug)]
pub struct HfModel {
    pub config: Json,
    pub tensors: Vec<HfTensor>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Arch {
    Llama,
    Qwen2,
}

/// The hyper-parameters the mapping needs, read from `{arch}.*` metadata.
#[derive(Clone, Debug)]
struct Params {
    arch: Arch,
    name: String,
    n_layer: usize,
    hidden: usize,
    ff: usize,
    n_head: usize,
    n_kv: usize,
    head_dim: usize,
    vocab: usize,
}

fn params(g: &Gguf) -> Result<Params> {
    let name = g.architecture()?.to_string();
    let arch = match name.as_str() {
        "llama" => Arch::Llama,
        "qwen2" => Arch::Qwen2,
        other => return Err(GgufError::UnsupportedArch(other.to_string())),
    };
    let key = |k: &str| format!("{name}.{k}");
    let get = |k: &str| -> Result<usize> { Ok(g.get_u32(&key(k))? as usize) };
    let bad = |k: &str, reason: String| GgufError::BadValue {
        key: key(k),
        reason,
    };
    let (hidden, n_head) = (get("embedding_length")?, get("attention.head_count")?);
    let n_kv = match g.opt_u32(&key("attention.head_count_kv"))? {
        Some(n) => n as usize,
        None => n_head,
    };
    if n_head == 0 || n_kv == 0 || n_head % n_kv != 0 {
        return Err(bad(
            "attention.head_count_kv",
            format!("{n_kv} KV heads for {n_head} heads"),
        ));
    }
    let head_dim = match g.opt_u32(&key("attention.key_length"))? {
        Some(d) => d as usize,
        None if hidden % n_head == 0 => hidden / n_head,
        None => {
            return Err(bad(
                "embedding_length",
                format!("{hidden} is not a multiple of {n_head} heads"),
            ))
        }
    };
    if head_dim == 0 || head_dim % 2 != 0 {
        return Err(bad(
            "attention.key_length",
            format!("head dim {head_dim} is not even"),
        ));
    }
    for k in ["attention.value_length", "rope.dimension_count"] {
        if let Some(d) = g.opt_u32(&key(k))? {
            if d as usize != head_dim {
                return Err(bad(
                    k,
                    format!(
                        "{d} differs from the head dim {head_dim} (partial RoPE is not supported)"
                    ),
                ));
            }
        }
    }
    let vocab = g.get_str_array("tokenizer.ggml.tokens")?.len();
    Ok(Params {
        arch,
        n_layer: get("block_count")?,
        ff: get("feed_forward_length")?,
        hidden,
        n_head,
        n_kv,
        head_dim,
        vocab,
        name,
    })
}

/// The HF `config.json` for this GGUF model (llama or qwen2). `bytes` is the file (a llama3
/// model's `rope_scaling` is recovered from its `rope_freqs.weight` tensor).
pub fn hf_config(g: &Gguf, bytes: &[u8]) -> Result<Json> {
    let p = params(g)?;
    let key = |k: &str| format!("{}.{k}", p.name);
    let theta = g.opt_f32(&key("rope.freq_base"))?.unwrap_or(10000.0);
    let eps = g.get_f32(&key("attention.layer_norm_rms_epsilon"))?;
    let (model_type, class) = match p.arch {
        Arch::Llama => ("llama", "LlamaForCausalLM"),
        Arch::Qwen2 => ("qwen2", "Qwen2ForCausalLM"),
    };
    let mut c = json!({
        "architectures": [class],
        "model_type": model_type,
        "vocab_size": p.vocab,
        "hidden_size": p.hidden,
        "intermediate_size": p.ff,
        "num_hidden_layers": p.n_layer,
        "num_attention_heads": p.n_head,
        "num_key_value_heads": p.n_kv,
        "head_dim": p.head_dim,
        "hidden_act": "silu",
        "rms_norm_eps": clean_f64(eps),
        "rope_theta": clean_f64(theta),
        "max_position_embeddings": g.get_u32(&key("context_length"))?,
        "tie_word_embeddings": g.tensor("output.weight").is_none(),
        "bos_token_id": g.opt_u32("tokenizer.ggml.bos_token_id")?,
        "eos_token_id": g.opt_u32("tokenizer.ggml.eos_token_id")?,
        "torch_dtype": "float32",
    });
    if p.arch == Arch::Llama {
        c["attention_bias"] = json!(g.tensor("blk.0.attn_q.bias").is_some());
        c["mlp_bias"] = json!(false);
    } else {
        c["use_sliding_window"] = json!(false);
    }
    // Only llama3-style models carry rope_freqs; it needs the tensor's values, not just metadata.
    let freqs = match g.tensor("rope_freqs.weight") {
        Some(t) if p.arch == Arch::Llama => Some(g.dequantize_info(bytes, t)?.1),
        _ => None,
    };
    if let Some(scaling) = rope_scaling(g, &p.name, theta, p.head_dim, freqs.as_deref())? {
        c["rope_scaling"] = scaling;
    }
    Ok(c)
}

/// What a GGUF tensor's HF counterpart is called, must look like, and whether to un-permute it.
struct Planned<'a> {
    info: &'a TensorInfo,
    hf_name: String,
    shape: Vec<usize>,
    unpermute_heads: Option<usize>,
}

/// Per-layer GGUF suffixes, their HF names, and whether a bias may accompany the weight.
const LAYER_TENSORS: [(&str, &str, bool); 9] = [
    ("attn_q", "self_attn.q_proj", true),
    ("attn_k", "self_attn.k_proj", true),
    ("attn_v", "self_attn.v_proj", true),
    ("attn_output", "self_attn.o_proj", true),
    ("ffn_gate", "mlp.gate_proj", false),
    ("ffn_up", "mlp.up_proj", false),
    ("ffn_down", "mlp.down_proj", false),
    ("attn_norm", "input_layernorm", false),
    ("ffn_norm", "post_attention_layernorm", false),
];

/// The HF name, HF shape and permutation of GGUF tensor `name`; `None` for tensors HF has no
/// counterpart for.
fn map_tensor(name: &str, p: &Params) -> Option<(String, Vec<usize>, Option<usize>)> {
    // Saturating: absurd metadata then just fails the shape comparison.
    let (q_rows, kv_rows) = (
        p.n_head.saturating_mul(p.head_dim),
        p.n_kv.saturating_mul(p.head_dim),
    );
    let top = match name {
        "token_embd.weight" => Some(("model.embed_tokens.weight", vec![p.vocab, p.hidden])),
        "output_norm.weight" => Some(("model.norm.weight", vec![p.hidden])),
        "output.weight" => Some(("lm_head.weight", vec![p.vocab, p.hidden])),
        _ => None,
    };
    if let Some((hf, shape)) = top {
        return Some((hf.to_string(), shape, None));
    }
    let rest = name.strip_prefix("blk.")?;
    let (layer, rest) = rest.split_once('.')?;
    let layer: usize = layer
        .parse()
        .ok()
        .filter(|&l: &usize| l < p.n_layer && l.to_string() == layer)?;
    let (suffix, kind) = rest.rsplit_once('.')?;
    let &(_, hf, bias_ok) = LAYER_TENSORS.iter().find(|t| t.0 == suffix)?;
    let is_bias = match kind {
        "weight" => false,
        // HF Qwen2 has q/k/v biases only; HF Llama's attention_bias covers q/k/v/o.
        "bias" if bias_ok && !(p.arch == Arch::Qwen2 && suffix == "attn_output") => true,
        _ => return None,
    };
    let (rows, cols) = match suffix {
        "attn_q" => (q_rows, p.hidden),
        "attn_k" | "attn_v" => (kv_rows, p.hidden),
        "attn_output" => (p.hidden, q_rows),
        "ffn_gate" | "ffn_up" => (p.ff, p.hidden),
        "ffn_down" => (p.hidden, p.ff),
        _ => (p.hidden, 0),
    };
    let shape = if is_bias || cols == 0 {
        vec![rows]
    } else {
        vec![rows, cols]
    };
    let heads = match (p.arch, suffix) {
        (Arch::Llama, "attn_q") => Some(p.n_head),
        (Arch::Llama, "attn_k") => Some(p.n_kv),
        _ => None,
    };
    Some((format!("model.layers.{layer}.{hf}.{kind}"), shape, heads))
}

fn plan<'a>(g: &'a Gguf, p: &Params) -> Result<Vec<Planned<'a>>> {
    let mut out = Vec::with_capacity(g.tensors().len());
    for info in g.tensors() {
        if info.name == "rope_freqs.weight" && p.arch == Arch::Llama {
            continue; // folded into config.rope_scaling
        }
        let (hf_name, shape, unpermute_heads) =
            map_tensor(&info.name, p).ok_or_else(|| GgufError::UnexpectedTensor {
                tensor: info.name.clone(),
            })?;
        if info.hf_shape() != shape {
            return Err(GgufError::BadShape {
                tensor: info.name.clone(),
                shape: info.ne.clone(),
                reason: format!("{hf_name} must have HF shape {shape:?}"),
            });
        }
        out.push(Planned {
            info,
            hf_name,
            shape,
            unpermute_heads,
        });
    }
    // Checked lazily, stopping at the first gap, so that a bogus block_count costs nothing.
    let names: std::collections::HashSet<&str> =
        g.tensors().iter().map(|t| t.name.as_str()).collect();
    let missing = |name: String| (!names.contains(name.as_str())).then_some(name);
    let top = ["token_embd.weight", "output_norm.weight"]
        .into_iter()
        .map(String::from);
    let layers = (0..p.n_layer).flat_map(|l| {
        let biases: &[&str] = if p.arch == Arch::Qwen2 {
            &["attn_q", "attn_k", "attn_v"]
        } else {
            &[]
        };
        let weights = LAYER_TENSORS
            .iter()
            .map(move |(s, _, _)| format!("blk.{l}.{s}.weight"));
        weights.chain(biases.iter().map(move |s| format!("blk.{l}.{s}.bias")))
    });
    if let Some(tensor) = top.chain(layers).find_map(missing) {
        return Err(GgufError::MissingTensor { tensor });
    }
    Ok(out)
}

/// Every tensor in HF naming, shape and (for llama q/k) row order, dequantized one at a time as
/// the iterator advances. Names, shapes and completeness are checked before the first one.
pub fn hf_tensors<'a>(
    g: &'a Gguf,
    bytes: &'a [u8],
) -> Result<impl Iterator<Item = Result<HfTensor>> + 'a> {
    let p = params(g)?;
    let planned = plan(g, &p)?;
    Ok(planned.into_iter().map(move |t| {
        let (_, mut data) = g.dequantize_info(bytes, t.info)?;
        if let Some(heads) = t.unpermute_heads {
            data = unpermute_rows(&data, &t.shape, heads).ok_or_else(|| GgufError::BadShape {
                tensor: t.info.name.clone(),
                shape: t.info.ne.clone(),
                reason: format!("rows cannot be split into {heads} heads of even size"),
            })?;
        }
        Ok((t.hf_name, t.shape, data))
    }))
}

/// The whole model in HF layout: config and all tensors, dequantized to f32.
pub fn to_hf(g: &Gguf, bytes: &[u8]) -> Result<HfModel> {
    let config = hf_config(g, bytes)?;
    let tensors = hf_tensors(g, bytes)?.collect::<Result<Vec<_>>>()?;
    Ok(HfModel { config, tensors })
}

/// Moves rows between HF order and llama.cpp's interleaved-RoPE order. Row `h*hd + 2i + j` of
/// the permuted matrix is row `h*hd + j*hd/2 + i` of the HF one (`convert_hf_to_gguf.py`:
/// `w.reshape(n_head, 2, hd/2, ...).swapaxes(1, 2)`).
fn reorder(data: &[f32], shape: &[usize], n_head: usize, to_gguf: bool) -> Option<Vec<f32>> {
    let rows = *shape.first()?;
    let cols = shape
        .get(1..)?
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))?;
    if n_head == 0
        || rows % n_head != 0
        || !(rows / n_head).is_multiple_of(2)
        || Some(data.len()) != rows.checked_mul(cols)
    {
        return None;
    }
    let (hd, half) = (rows / n_head, rows / n_head / 2);
    let mut out = vec![0f32; data.len()];
    for h in 0..n_head {
        for i in 0..half {
            for j in 0..2 {
                let (gguf_row, hf_row) = (h * hd + 2 * i + j, h * hd + j * half + i);
                let (src, dst) = if to_gguf {
                    (hf_row, gguf_row)
                } else {
                    (gguf_row, hf_row)
                };
                out.get_mut(dst * cols..(dst + 1) * cols)?
                    .copy_from_slice(data.get(src * cols..(src + 1) * cols)?);
            }
        }
    }
    Some(out)
}

/// Undoes llama.cpp's q/k permutation: `data` has HF shape `shape` (`[rows]` for a bias or
/// `[rows, cols]`), `n_head` heads (KV heads for k). `None` when rows do not split into heads of
/// even size or `data` does not match `shape`.
pub fn unpermute_rows(data: &[f32], shape: &[usize], n_head: usize) -> Option<Vec<f32>> {
    reorder(data, shape, n_head, false)
}

/// llama.cpp's q/k permutation (the converter's `permute`), the inverse of [`unpermute_rows`].
pub fn permute_rows(data: &[f32], shape: &[usize], n_head: usize) -> Option<Vec<f32>> {
    reorder(data, shape, n_head, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::metadata::Value;
    use crate::gguf::writer::samples::{
        tiny_model, tiny_model_writer, FF, HEADS, HEAD_DIM, HIDDEN, KV_HEADS, LAYERS, VOCAB,
    };
    use crate::gguf::writer::GgufWriter;

    fn hf(bytes: &[u8]) -> Result<HfModel> {
        to_hf(&Gguf::parse(bytes)?, bytes)
    }

    fn find<'m>(m: &'m HfModel, name: &str) -> &'m (String, Vec<usize>, Vec<f32>) {
        m.tensors
            .iter()
            .find(|t| t.0 == name)
            .unwrap_or_else(|| panic!("no {name}"))
    }

    #[test]
    fn unpermute_inverts_the_converters_permute_on_a_hand_made_matrix() {
        // n_head 2, head_dim 4, one column: the converter's reshape(2, 2, 2).swapaxes(1, 2)
        // turns rows [0 1 2 3 | 4 5 6 7] into [0 2 1 3 | 4 6 5 7].
        let w: Vec<f32> = (0..8).map(|x| x as f32).collect();
        let p = permute_rows(&w, &[8], 2).unwrap();
        assert_eq!(p, [0.0, 2.0, 1.0, 3.0, 4.0, 6.0, 5.0, 7.0]);
        assert_eq!(unpermute_rows(&p, &[8], 2).unwrap(), w);
        // Whole rows move: a [6, 3] matrix with 1 head of dim 6 -> rows [0 3 1 4 2 5].
        let m: Vec<f32> = (0..18).map(|x| x as f32).collect();
        let p = permute_rows(&m, &[6, 3], 1).unwrap();
        let rows: Vec<f32> = p.chunks(3).map(|r| r[0] / 3.0).collect();
        assert_eq!(rows, [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
        assert_eq!(unpermute_rows(&p, &[6, 3], 1).unwrap(), m);
    }

    #[test]
    fn unpermute_rejects_rows_that_do_not_split_into_even_heads() {
        assert_eq!(unpermute_rows(&[0.0; 6], &[6], 2), None); // head dim 3
        assert_eq!(unpermute_rows(&[0.0; 8], &[8], 3), None);
        assert_eq!(unpermute_rows(&[0.0; 7], &[8], 2), None);
        assert_eq!(unpermute_rows(&[0.0; 8], &[8], 0), None);
    }

    #[test]
    fn llama_maps_to_hf_names_and_shapes_with_q_and_k_unpermuted() {
        let (bytes, q0) = tiny_model("llama", true);
        let m = hf(&bytes).unwrap();
        assert_eq!(m.tensors.len(), 2 + 9 * LAYERS);
        let q = find(&m, "model.layers.0.self_attn.q_proj.weight");
        assert_eq!(
            (q.1.as_slice(), &q.2),
            (&[HEADS * HEAD_DIM, HIDDEN][..], &q0)
        );
        let g = Gguf::parse(&bytes).unwrap();
        let stored_k = g.dequantize(&bytes, "blk.1.attn_k.weight").unwrap().1;
        let k = find(&m, "model.layers.1.self_attn.k_proj.weight");
        assert_eq!(permute_rows(&k.2, &k.1, KV_HEADS).unwrap(), stored_k);
        let v = find(&m, "model.layers.1.self_attn.v_proj.weight");
        assert_eq!(v.2, g.dequantize(&bytes, "blk.1.attn_v.weight").unwrap().1);
        assert_eq!(
            find(&m, "model.layers.1.mlp.down_proj.weight").1,
            [HIDDEN, FF]
        );
        assert_eq!(
            find(&m, "model.layers.0.post_attention_layernorm.weight").1,
            [HIDDEN]
        );
        assert_eq!(find(&m, "model.embed_tokens.weight").1, [VOCAB, HIDDEN]);
        assert!(m.tensors.iter().all(|t| t.0 != "lm_head.weight"));
        let c = &m.config;
        assert_eq!(c["model_type"], "llama");
        assert_eq!(c["architectures"][0], "LlamaForCausalLM");
        assert_eq!(c["tie_word_embeddings"], true);
        assert_eq!(
            (
                c["num_attention_heads"].as_u64(),
                c["num_key_value_heads"].as_u64(),
                c["head_dim"].as_u64()
            ),
            (Some(2), Some(1), Some(4))
        );
        assert_eq!(
            (c["rms_norm_eps"].as_f64(), c["rope_theta"].as_f64()),
            (Some(1e-5), Some(100000.0))
        );
        assert_eq!(
            (
                c["vocab_size"].as_u64(),
                c["intermediate_size"].as_u64(),
                c["num_hidden_layers"].as_u64()
            ),
            (Some(5), Some(12), Some(2))
        );
        assert_eq!(
            (c["bos_token_id"].as_u64(), c["eos_token_id"].as_u64()),
            (Some(1), Some(2))
        );
        assert_eq!(c["max_position_embeddings"], 2048);
        assert!(c.get("rope_scaling").is_none());
    }

    #[test]
    fn qwen2_is_not_permuted_and_keeps_its_biases_and_lm_head() {
        let (bytes, q0) = tiny_model("qwen2", false);
        let m = hf(&bytes).unwrap();
        assert_eq!(m.tensors.len(), 3 + 12 * LAYERS);
        assert_eq!(find(&m, "model.layers.0.self_attn.q_proj.weight").2, q0);
        assert_eq!(
            find(&m, "model.layers.1.self_attn.k_proj.bias").1,
            [KV_HEADS * HEAD_DIM]
        );
        assert_eq!(find(&m, "lm_head.weight").1, [VOCAB, HIDDEN]);
        assert_eq!(m.config["model_type"], "qwen2");
        assert_eq!(m.config["architectures"][0], "Qwen2ForCausalLM");
        assert_eq!(m.config["tie_word_embeddings"], false);
    }

    #[test]
    fn llama3_rope_freqs_become_rope_scaling_and_are_not_a_weight() {
        let (mut w, _) = tiny_model_writer("llama", true);
        let freqs: Vec<f32> =
            crate::gguf::rope::llama3_factors(100000.0, HEAD_DIM, 8.0, 1.0, 4.0, 8192.0)
                .iter()
                .map(|&f| f as f32)
                .collect();
        w.add_f32("rope_freqs.weight", &[freqs.len() as u64], &freqs);
        let m = hf(&w.to_bytes()).unwrap();
        assert_eq!(m.config["rope_scaling"]["rope_type"], "llama3");
        assert_eq!(m.tensors.len(), 2 + 9 * LAYERS);
    }

    /// `bytes` rebuilt without tensor `drop`.
    fn without(bytes: &[u8], drop: &str) -> Vec<u8> {
        let g = Gguf::parse(bytes).unwrap();
        let mut w = GgufWriter::new();
        for (k, v) in g.metadata_entries() {
            w.add(k, v.clone());
        }
        for t in g.tensors().iter().filter(|t| t.name != drop) {
            w.add_tensor(
                &t.name,
                &t.ne,
                t.dtype,
                g.tensor_data(bytes, t).unwrap().to_vec(),
            );
        }
        w.to_bytes()
    }

    #[test]
    fn unsupported_or_incomplete_models_are_rejected_with_the_culprit_named() {
        let gemma = tiny_model("gemma", true).0;
        assert!(matches!(hf(&gemma), Err(GgufError::UnsupportedArch(a)) if a == "gemma"));
        let (mut w, _) = tiny_model_writer("qwen2", true);
        w.add_f32("blk.0.attn_output.bias", &[HIDDEN as u64], &[0.0; HIDDEN]);
        assert!(
            matches!(hf(&w.to_bytes()), Err(GgufError::UnexpectedTensor { tensor }) if tensor == "blk.0.attn_output.bias")
        );
        let (mut w, _) = tiny_model_writer("llama", true);
        w.add_f32("blk.2.attn_q.weight", &[1], &[0.0]);
        assert!(matches!(
            hf(&w.to_bytes()),
            Err(GgufError::UnexpectedTensor { .. })
        ));
        let (mut w, _) = tiny_model_writer("llama", true);
        w.add("llama.attention.key_length", Value::U32(2));
        assert!(
            matches!(hf(&w.to_bytes()), Err(GgufError::BadShape { tensor, .. }) if tensor == "blk.0.attn_q.weight")
        );
        let incomplete = without(&tiny_model("llama", true).0, "blk.1.ffn_up.weight");
        assert!(
            matches!(hf(&incomplete), Err(GgufError::MissingTensor { tensor }) if tensor == "blk.1.ffn_up.weight")
        );
        let no_bias = without(&tiny_model("qwen2", true).0, "blk.0.attn_k.bias");
        assert!(
            matches!(hf(&no_bias), Err(GgufError::MissingTensor { tensor }) if tensor == "blk.0.attn_k.bias")
        );
        let mut bare = GgufWriter::new();
        bare.add("general.architecture", Value::String("llama".into()));
        assert!(matches!(
            hf(&bare.to_bytes()),
            Err(GgufError::MissingKey { .. })
        ));
    }
}
