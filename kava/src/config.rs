//! `ModelConfig`: an HF `config.json` (model_type `llama` or `qwen2`) read field by field and
//! resolved into what the decoder needs. Field names are HF's; both the transformers 4 layout
//! (`rope_theta` + `rope_scaling`) and the transformers 5 layout (`rope_parameters`) are accepted.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// The decoder families kava implements; they differ only in flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Llama,
    Qwen2,
}

impl Family {
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Llama => "llama",
            Family::Qwen2 => "qwen2",
        }
    }
}

/// Llama 3's frequency-band rescaling of RoPE (`rope_type = "llama3"`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Llama3Scaling {
    pub factor: f64,
    pub low_freq_factor: f64,
    pub high_freq_factor: f64,
    pub original_max_position_embeddings: usize,
}

/// A decoder configuration, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    pub model_type: Family,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub head_dim: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    pub rope_scaling: Option<Llama3Scaling>,
    pub max_position_embeddings: usize,
    pub tie_word_embeddings: bool,
    /// Bias on q, k, v (Qwen2 always; Llama when `attention_bias`).
    pub qkv_bias: bool,
    /// Bias on o (Llama when `attention_bias`; never in Qwen2).
    pub o_bias: bool,
    pub bos_token_id: Option<u32>,
    pub eos_token_ids: Vec<u32>,
}

struct Fields<'a> {
    path: &'a Path,
    map: &'a Map<String, Value>,
}

impl Fields<'_> {
    fn err(&self, field: &str, problem: impl Into<String>) -> Error {
        Error::config(self.path, field, problem)
    }
    fn get(&self, field: &str) -> Option<&Value> {
        self.map.get(field).filter(|v| !v.is_null())
    }
    fn usize(&self, field: &str) -> Result<usize> {
        self.opt_usize(field)?.ok_or_else(|| self.err(field, "missing"))
    }
    fn opt_usize(&self, field: &str) -> Result<Option<usize>> {
        match self.get(field) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| self.err(field, format!("expected a non-negative integer, found {v}"))),
        }
    }
    fn opt_f64(&self, field: &str) -> Result<Option<f64>> {
        match self.get(field) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .filter(|x| x.is_finite())
                .map(Some)
                .ok_or_else(|| self.err(field, format!("expected a finite number, found {v}"))),
        }
    }
    fn opt_bool(&self, field: &str) -> Result<Option<bool>> {
        match self.get(field) {
            None => Ok(None),
            Some(v) => v
                .as_bool()
                .map(Some)
                .ok_or_else(|| self.err(field, format!("expected true or false, found {v}"))),
        }
    }
    fn opt_str(&self, field: &str) -> Result<Option<&str>> {
        match self.get(field) {
            None => Ok(None),
            Some(v) => v
                .as_str()
                .map(Some)
                .ok_or_else(|| self.err(field, format!("expected a string, found {v}"))),
        }
    }
    /// An id or a list of ids (HF allows both for `eos_token_id`).
    fn ids(&self, field: &str) -> Result<Vec<u32>> {
        token_ids(self.get(field)).map_err(|problem| self.err(field, problem))
    }
}

/// An id or a list of ids, each a non-negative integer that fits in u32 (absent: none).
pub(crate) fn token_ids(v: Option<&Value>) -> std::result::Result<Vec<u32>, String> {
    let one = |v: &Value| v.as_u64().and_then(|n| u32::try_from(n).ok());
    let bad = |v: &Value| format!("expected a token id or a list of token ids, found {v}");
    match v {
        None | Some(Value::Null) => Ok(vec![]),
        Some(Value::Array(items)) => items.iter().map(|v| one(v).ok_or_else(|| bad(v))).collect(),
        Some(v) => one(v).map(|n| vec![n]).ok_or_else(|| bad(v)),
    }
}

impl ModelConfig {
    /// Reads and validates `config.json`.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::from_json_bytes(&bytes, path)
    }

    /// Parses `config.json` contents; `path` only names the source in errors.
    pub fn from_json_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        let value: Value =
            serde_json::from_slice(bytes).map_err(|source| Error::Json { path: path.into(), source })?;
        Self::from_json(&value, path)
    }

    /// Resolves an HF config given as JSON.
    pub fn from_json(value: &Value, path: &Path) -> Result<Self> {
        let map = value
            .as_object()
            .ok_or_else(|| Error::config(path, "<root>", "expected a JSON object"))?;
        let f = Fields { path, map };
        let model_type = match f.opt_str("model_type")? {
            Some("llama") => Family::Llama,
            Some("qwen2") => Family::Qwen2,
            Some(other) => {
                return Err(f.err("model_type", format!("`{other}` is not supported (llama, qwen2)")))
            }
            None => return Err(f.err("model_type", "missing")),
        };
        if let Some(act) = f.opt_str("hidden_act")? {
            if act != "silu" {
                return Err(f.err("hidden_act", format!("`{act}` is not supported (silu)")));
            }
        }
        if f.opt_bool("mlp_bias")? == Some(true) {
            return Err(f.err("mlp_bias", "MLP biases are not supported"));
        }
        let hidden_size = f.usize("hidden_size")?;
        let num_attention_heads = f.usize("num_attention_heads")?;
        let num_key_value_heads = f.opt_usize("num_key_value_heads")?.unwrap_or(num_attention_heads);
        let head_dim = match f.opt_usize("head_dim")? {
            Some(d) => d,
            None if num_attention_heads > 0 && hidden_size % num_attention_heads == 0 => {
                hidden_size / num_attention_heads
            }
            None => return Err(f.err("num_attention_heads", "does not divide hidden_size and no head_dim is given")),
        };
        let (rope_theta, rope_scaling) = rope(&f)?;
        let attention_bias = f.opt_bool("attention_bias")?.unwrap_or(false);
        let (qkv_bias, o_bias) = match model_type {
            Family::Qwen2 => (true, false),
            Family::Llama => (attention_bias, attention_bias),
        };
        if model_type == Family::Qwen2 && f.opt_bool("use_sliding_window")? == Some(true) {
            log::warn!("{}: use_sliding_window is ignored (full attention everywhere)", path.display());
        }
        let config = ModelConfig {
            model_type,
            vocab_size: f.usize("vocab_size")?,
            hidden_size,
            intermediate_size: f.usize("intermediate_size")?,
            num_hidden_layers: f.usize("num_hidden_layers")?,
            num_attention_heads,
            num_key_value_heads,
            head_dim,
            rms_norm_eps: f.opt_f64("rms_norm_eps")?.unwrap_or(1e-6),
            rope_theta,
            rope_scaling,
            max_position_embeddings: f.opt_usize("max_position_embeddings")?.unwrap_or(4096),
            tie_word_embeddings: f.opt_bool("tie_word_embeddings")?.unwrap_or(false),
            qkv_bias,
            o_bias,
            bos_token_id: f.ids("bos_token_id")?.first().copied(),
            eos_token_ids: f.ids("eos_token_id")?,
        };
        config.validate(path)?;
        Ok(config)
    }

    /// Checks every size against `crate::limits` and every float for being finite and in range,
    /// so that nothing downstream divides by zero, overflows or allocates absurdly.
    pub fn validate(&self, path: &Path) -> Result<()> {
        use crate::limits;
        let sizes = [
            ("vocab_size", self.vocab_size, limits::MAX_VOCAB),
            ("hidden_size", self.hidden_size, limits::MAX_HIDDEN),
            ("intermediate_size", self.intermediate_size, limits::MAX_INTERMEDIATE),
            ("num_hidden_layers", self.num_hidden_layers, limits::MAX_LAYERS),
            ("num_attention_heads", self.num_attention_heads, limits::MAX_HEADS),
            ("num_key_value_heads", self.num_key_value_heads, limits::MAX_HEADS),
            ("head_dim", self.head_dim, limits::MAX_HEAD_DIM),
            ("max_position_embeddings", self.max_position_embeddings, limits::MAX_POSITIONS),
        ];
        for (field, n, max) in sizes {
            if n == 0 {
                return Err(Error::config(path, field, "must be positive"));
            }
            if n > max {
                return Err(Error::config(path, field, format!("{n} is larger than kava supports ({max})")));
            }
        }
        if self.num_attention_heads % self.num_key_value_heads != 0 {
            return Err(Error::config(
                path,
                "num_key_value_heads",
                format!("{} does not divide num_attention_heads = {}", self.num_key_value_heads, self.num_attention_heads),
            ));
        }
        if self.head_dim % 2 != 0 {
            return Err(Error::config(path, "head_dim", "must be even for rotary embeddings"));
        }
        if !(self.rms_norm_eps > 0.0 && self.rms_norm_eps < 1.0) {
            return Err(Error::config(path, "rms_norm_eps", format!("{} is outside (0, 1)", self.rms_norm_eps)));
        }
        if !(self.rope_theta > 1.0 && self.rope_theta <= limits::MAX_ROPE_THETA) {
            return Err(Error::config(path, "rope_theta", format!("{} is outside (1, {:e}]", self.rope_theta, limits::MAX_ROPE_THETA)));
        }
        let ids = [("bos_token_id", self.bos_token_id.into_iter().collect::<Vec<_>>()), ("eos_token_id", self.eos_token_ids.clone())];
        for (field, ids) in ids {
            if let Some(id) = ids.into_iter().find(|&id| id as usize >= self.vocab_size) {
                return Err(Error::config(path, field, format!("id {id} is outside the vocabulary of {} (vocab_size)", self.vocab_size)));
            }
        }
        Ok(())
    }

    /// Query heads per KV head.
    pub fn n_rep(&self) -> usize {
        self.num_attention_heads / self.num_key_value_heads
    }

    /// This configuration as an HF `config.json` (transformers 4 layout, which 5 also reads).
    pub fn to_json(&self) -> Value {
        let arch = match self.model_type {
            Family::Llama => "LlamaForCausalLM",
            Family::Qwen2 => "Qwen2ForCausalLM",
        };
        let mut v = serde_json::json!({
            "architectures": [arch],
            "model_type": self.model_type.as_str(),
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "head_dim": self.head_dim,
            "hidden_act": "silu",
            "rms_norm_eps": self.rms_norm_eps,
            "rope_theta": self.rope_theta,
            "max_position_embeddings": self.max_position_embeddings,
            "tie_word_embeddings": self.tie_word_embeddings,
            "torch_dtype": "float32",
        });
        let obj = v.as_object_mut().expect("literal object");
        if self.model_type == Family::Llama {
            obj.insert("attention_bias".into(), self.qkv_bias.into());
            obj.insert("mlp_bias".into(), false.into());
        }
        if let Some(s) = self.rope_scaling {
            obj.insert(
                "rope_scaling".into(),
                serde_json::json!({
                    "rope_type": "llama3",
                    "factor": s.factor,
                    "low_freq_factor": s.low_freq_factor,
                    "high_freq_factor": s.high_freq_factor,
                    "original_max_position_embeddings": s.original_max_position_embeddings,
                }),
            );
        }
        if let Some(bos) = self.bos_token_id {
            obj.insert("bos_token_id".into(), bos.into());
        }
        match self.eos_token_ids.as_slice() {
            [] => {}
            [one] => {
                obj.insert("eos_token_id".into(), (*one).into());
            }
            many => {
                obj.insert("eos_token_id".into(), many.to_vec().into());
            }
        }
        v
    }
}

/// Reads `rope_theta` / `rope_scaling` (transformers 4) or `rope_parameters` (transformers 5).
fn rope(f: &Fields<'_>) -> Result<(f64, Option<Llama3Scaling>)> {
    let (scaling_field, scaling) = if let Some(p) = f.get("rope_parameters") {
        ("rope_parameters", Some(p))
    } else {
        ("rope_scaling", f.get("rope_scaling"))
    };
    let mut theta = f.opt_f64("rope_theta")?;
    let mut llama3 = None;
    if let Some(s) = scaling {
        let obj = s
            .as_object()
            .ok_or_else(|| f.err(scaling_field, "expected an object"))?;
        let sub_path: PathBuf = f.path.into();
        let sub = Fields { path: &sub_path, map: obj };
        let kind = match sub.opt_str("rope_type")? {
            Some(k) => Some(k),
            None => sub.opt_str("type")?,
        };
        if let Some(t) = sub.opt_f64("rope_theta")? {
            theta = Some(t);
        }
        let field = |name: &str| format!("{scaling_field}.{name}");
        match kind {
            None | Some("default") => {}
            Some("llama3") => {
                let num = |name: &str| -> Result<f64> {
                    sub.opt_f64(name)?.ok_or_else(|| f.err(&field(name), "missing"))
                };
                let s = Llama3Scaling {
                    factor: num("factor")?,
                    low_freq_factor: num("low_freq_factor")?,
                    high_freq_factor: num("high_freq_factor")?,
                    original_max_position_embeddings: sub
                        .opt_usize("original_max_position_embeddings")?
                        .ok_or_else(|| f.err(&field("original_max_position_embeddings"), "missing"))?,
                };
                // Frequencies are divided by `factor` and by `high − low`: both must be usable.
                if !(1.0..=1e6).contains(&s.factor) {
                    return Err(f.err(&field("factor"), format!("{} is outside [1, 1e6]", s.factor)));
                }
                if !(s.low_freq_factor > 0.0) {
                    return Err(f.err(&field("low_freq_factor"), format!("{} must be positive", s.low_freq_factor)));
                }
                if !(s.high_freq_factor > s.low_freq_factor) {
                    return Err(f.err(&field("high_freq_factor"), format!("{} must be larger than low_freq_factor {}", s.high_freq_factor, s.low_freq_factor)));
                }
                if s.original_max_position_embeddings == 0 || s.original_max_position_embeddings > crate::limits::MAX_POSITIONS {
                    return Err(f.err(
                        &field("original_max_position_embeddings"),
                        format!("{} is outside 1..={}", s.original_max_position_embeddings, crate::limits::MAX_POSITIONS),
                    ));
                }
                llama3 = Some(s);
            }
            Some(other) => {
                return Err(f.err(&field("rope_type"), format!("`{other}` is not supported (default, llama3)")))
            }
        }
    }
    Ok((theta.unwrap_or(10000.0), llama3))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> Result<ModelConfig> {
        ModelConfig::from_json(&v, Path::new("config.json"))
    }

    fn base() -> Value {
        serde_json::json!({"model_type": "llama", "vocab_size": 10, "hidden_size": 8,
            "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
            "num_key_value_heads": 1})
    }

    #[test]
    fn head_dim_defaults_to_hidden_over_heads() {
        assert_eq!(parse(base()).unwrap().head_dim, 4);
    }

    #[test]
    fn legacy_rope_scaling_and_rope_parameters_resolve_the_same() {
        let mut a = base();
        a["rope_theta"] = 5e5.into();
        a["rope_scaling"] = serde_json::json!({"rope_type": "llama3", "factor": 8.0,
            "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192});
        let mut b = base();
        b["rope_parameters"] = serde_json::json!({"rope_type": "llama3", "rope_theta": 5e5, "factor": 8.0,
            "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192});
        assert_eq!(parse(a).unwrap(), parse(b).unwrap());
    }

    #[test]
    fn wrong_field_type_names_the_field() {
        let mut v = base();
        v["hidden_size"] = "big".into();
        let msg = parse(v).unwrap_err().to_string();
        assert!(msg.contains("config.json") && msg.contains("hidden_size"), "{msg}");
    }

    #[test]
    fn unsupported_model_type_and_rope_type_are_errors() {
        let mut v = base();
        v["model_type"] = "mistral".into();
        assert!(parse(v).unwrap_err().to_string().contains("mistral"));
        let mut v = base();
        v["rope_scaling"] = serde_json::json!({"type": "yarn", "factor": 2.0});
        assert!(parse(v).unwrap_err().to_string().contains("yarn"));
    }

    #[test]
    fn kv_heads_must_divide_heads() {
        let mut v = base();
        v["num_key_value_heads"] = 3.into();
        assert!(parse(v).unwrap_err().to_string().contains("num_key_value_heads"));
    }

    #[test]
    fn to_json_round_trips() {
        let mut v = base();
        v["eos_token_id"] = serde_json::json!([1, 2]);
        let c = parse(v).unwrap();
        assert_eq!(parse(c.to_json()).unwrap(), c);
    }
}
