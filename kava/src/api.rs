//! `Model`: a decoder on a device with its tokenizer, stop tokens and (optionally) its latent
//! reasoner — loaded from an HF directory or GGUF file, extended with latent tokens, and saved
//! back as an HF directory that transformers also loads.

use std::path::Path;

use burn::tensor::Device;

use crate::error::{Error, Result};
use crate::latent::{self, LatentConfig, LatentReasoner, Projection};
use crate::load::safetensors as st;
#[cfg(not(target_family = "wasm"))]
use crate::load::safetensors::StoreDtype;
use crate::load::{self, HfBytes, Pretrained, Weights};
use crate::model::Transformer;
use crate::tokenizer::Tokenizer;

/// The files of a kava model directory held in memory: the HF part and, for a KaVa model,
/// `kava.json` and `kava.safetensors`.
#[derive(Debug, Clone, Copy)]
pub struct ModelBytes<'a> {
    pub hf: HfBytes<'a>,
    pub kava_json: Option<&'a [u8]>,
    pub kava_safetensors: Option<&'a [u8]>,
}

/// A loaded model ready to run.
#[derive(Debug)]
pub struct Model {
    pub transformer: Transformer,
    pub tokenizer: Tokenizer,
    /// Ids that end generation (EOS and, for chat models, `<|im_end|>`).
    pub stop_tokens: Vec<u32>,
    /// Present when the model has latent tokens (`kava.json`).
    pub latent: Option<LatentReasoner>,
}

impl Model {
    /// Loads an HF directory or a GGUF file onto `device`; a `kava.json` beside the weights
    /// (and `kava.safetensors` for the projection) adds the latent reasoner.
    pub fn load(path: impl AsRef<Path>, device: &Device) -> Result<Self> {
        let path = path.as_ref();
        let Pretrained { config, mut weights, tokenizer, .. } = load::open(path)?;
        let transformer = Transformer::from_weights(&config, &mut weights, device)?;
        let mut model = Self::new(transformer, tokenizer);
        let kava_json = path.join("kava.json");
        if path.is_dir() && kava_json.exists() {
            let json = std::fs::read(&kava_json).map_err(|e| Error::io(&kava_json, e))?;
            let file = path.join("kava.safetensors");
            let projection = if file.exists() { Some(std::fs::read(&file).map_err(|e| Error::io(&file, e))?) } else { None };
            model.add_latent_reasoner(path, &json, projection.as_deref(), device)?;
        }
        Ok(model)
    }

    /// [`Model::load`] over the files of an HF directory held in memory (a browser fetches
    /// them): the same parsers and checks, fed bytes. `files.source` names them in errors.
    pub fn from_bytes(files: ModelBytes<'_>, device: &Device) -> Result<Self> {
        let Pretrained { config, mut weights, tokenizer, .. } = load::open_hf_bytes(files.hf)?;
        let transformer = Transformer::from_weights(&config, &mut weights, device)?;
        let mut model = Self::new(transformer, tokenizer);
        if let Some(json) = files.kava_json {
            model.add_latent_reasoner(files.hf.source, json, files.kava_safetensors, device)?;
        }
        Ok(model)
    }

    /// The latent reasoner of `kava.json` (and `kava.safetensors` when it uses a projection);
    /// `dir` names both files in errors.
    fn add_latent_reasoner(&mut self, dir: &Path, kava_json: &[u8], projection: Option<&[u8]>, device: &Device) -> Result<()> {
        let json_path = dir.join("kava.json");
        let cfg = LatentConfig::from_json_bytes(kava_json, &json_path)?;
        let vocab = self.transformer.config.vocab_size;
        for (field, id) in [("bot_id", cfg.bot_id), ("eot_id", cfg.eot_id), ("lat_id", cfg.lat_id), ("pad_id", cfg.pad_id)] {
            if id as usize >= vocab {
                return Err(Error::config(&json_path, field, format!("id {id} is outside the vocabulary of {vocab}")));
            }
        }
        let projection = if cfg.use_projection {
            let file = dir.join("kava.safetensors");
            let bytes = projection.ok_or_else(|| Error::MissingFile { path: file.clone(), what: "latent projection weights" })?;
            let mut w = Weights::new(file.clone());
            for (name, t) in st::parse(bytes, &file)? {
                w.insert(name, t, file.clone());
            }
            Some(Projection::from_weights(self.transformer.config.hidden_size, &mut w, device)?)
        } else {
            None
        };
        self.latent = Some(LatentReasoner::new(cfg, projection));
        Ok(())
    }

    /// Wraps a transformer and tokenizer; stop tokens from the config and the usual names.
    pub fn new(transformer: Transformer, tokenizer: Tokenizer) -> Self {
        let mut stop_tokens = transformer.config.eos_token_ids.clone();
        for t in ["<|im_end|>", "<|endoftext|>", "</s>", "<|eot_id|>"] {
            if let Some(id) = tokenizer.token_id(t) {
                if !stop_tokens.contains(&id) {
                    stop_tokens.push(id);
                }
            }
        }
        Self { transformer, tokenizer, stop_tokens, latent: None }
    }

    /// Gives a plain model latent tokens: adds `<bot>`, `<eot>`, `<lat>` and a pad token to
    /// the tokenizer and the embedding (and untied head), and a freshly initialised projection.
    /// On a model that already has them, only M and T change.
    pub fn attach_latents(&mut self, num_latents: usize, num_iterations: usize, use_projection: bool) -> Result<()> {
        if num_latents == 0 {
            return Err(Error::Input { what: "num_latents".into(), problem: "must be positive".into() });
        }
        if let Some(r) = &mut self.latent {
            r.config.num_latents = num_latents;
            r.config.num_iterations = num_iterations;
            return Ok(());
        }
        let ids = self.tokenizer.add_special_tokens(&[latent::BOT, latent::EOT, latent::LAT, latent::PAD]);
        let needed = ids.iter().map(|&i| i as usize + 1).max().unwrap_or(0);
        let vocab = self.transformer.config.vocab_size.max(needed);
        self.transformer.resize_vocab(vocab);
        let device = self.transformer.device();
        // A fixed seed: an untrained model gives the same latents every run and on every backend.
        let projection = use_projection.then(|| Projection::init(self.transformer.config.hidden_size, 0x6B61_7661, &device));
        let config = LatentConfig {
            num_latents,
            num_iterations,
            bot_id: ids[0],
            eot_id: ids[1],
            lat_id: ids[2],
            pad_id: ids[3],
            use_projection,
            answer_prompt: latent::ANSWER_PROMPT.into(),
            max_answer_tokens: 16,
        };
        self.latent = Some(LatentReasoner::new(config, projection));
        Ok(())
    }

    /// Ids generation must never emit: the latent special tokens.
    pub fn suppressed(&self) -> Vec<u32> {
        self.latent.as_ref().map(|r| r.config.special_ids()).unwrap_or_default()
    }

    /// Writes an HF directory (`config.json`, `model.safetensors`, `tokenizer.json`,
    /// `tokenizer_config.json`, `generation_config.json`) plus `kava.json` / `kava.safetensors`
    /// for the latent part. Each file is written to a temporary name and renamed into place.
    /// Native only: it reads every weight back synchronously (browsers forbid that).
    #[cfg(not(target_family = "wasm"))]
    pub fn save(&self, dir: &Path, dtype: StoreDtype) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let config = self.transformer.config.to_json();
        write_atomic(&dir.join("config.json"), serde_json::to_string_pretty(&config).expect("json").as_bytes())?;
        write_atomic(&dir.join("model.safetensors"), &st::serialize(&self.transformer.to_hf_tensors(), dtype)?)?;
        write_atomic(&dir.join("tokenizer.json"), self.tokenizer.to_json()?.as_bytes())?;
        let eos = self.stop_tokens.first().and_then(|&id| self.tokenizer.id_token(id));
        let tok_config = serde_json::json!({
            "tokenizer_class": "PreTrainedTokenizerFast",
            "eos_token": eos,
            "model_max_length": self.transformer.config.max_position_embeddings,
        });
        write_atomic(&dir.join("tokenizer_config.json"), tok_config.to_string().as_bytes())?;
        // Only the model's own EOS ids: the extra stop tokens guessed by name stay a runtime choice.
        let gen = serde_json::json!({ "eos_token_id": self.transformer.config.eos_token_ids });
        write_atomic(&dir.join("generation_config.json"), gen.to_string().as_bytes())?;
        if let Some(r) = &self.latent {
            write_atomic(&dir.join("kava.json"), r.config.to_json().as_bytes())?;
            if let Some(p) = &r.projection {
                write_atomic(&dir.join("kava.safetensors"), &st::serialize(&p.to_host(), StoreDtype::F32)?)?;
            }
        }
        Ok(())
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a crash never leaves a
/// half-written file under the real name.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

impl Model {
    /// Perplexity of `ids` under the model: `exp(mean −log p(idsᵢ | ids<ᵢ))` over ids 1..n,
    /// in one forward pass (no BOS is added here; pass it in `ids` if the model expects one).
    /// Native only: it reads the result back synchronously (browsers forbid that).
    #[cfg(not(target_family = "wasm"))]
    pub fn perplexity(&self, ids: &[u32]) -> Result<f64> {
        use burn::tensor::{activation, Int, Tensor, TensorData};
        if ids.len() < 2 {
            return Err(Error::Input { what: "text".into(), problem: "needs at least two tokens".into() });
        }
        let m = &self.transformer;
        let device = m.device();
        let n = ids.len();
        let out = m.forward(m.embed(crate::model::ids_tensor(&[ids.to_vec()], &device)), None, &mut m.new_cache(1), &crate::model::Capture::none());
        let logits = m.logits(out.hidden.narrow(1, 0, n - 1)); // [1, n−1, v]
        let logp = activation::log_softmax(logits, 2);
        let targets: Vec<i64> = ids[1..].iter().map(|&i| i as i64).collect();
        let targets = Tensor::<3, Int>::from_data(TensorData::new(targets, [1, n - 1, 1]), &device);
        let nll: f64 = -logp.gather(2, targets).sum().into_scalar::<f32>() as f64;
        Ok((nll / (n - 1) as f64).exp())
    }
}
