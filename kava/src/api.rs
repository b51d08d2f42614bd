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
    ///
    /// The files must agree: every tokenizer id inside the model's vocabulary, and `kava.json`'s
    /// special ids the tokenizer's latent tokens ([`Error::Inconsistent`] otherwise), so that no
    /// id a prompt can produce indexes outside the embedding.
    pub fn load(path: impl AsRef<Path>, device: &Device) -> Result<Self> {
        let path = path.as_ref();
        let Pretrained { config, mut weights, tokenizer, .. } = load::open(path)?;
        check_tokenizer(&config, &tokenizer)?;
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
        check_tokenizer(&config, &tokenizer)?;
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
        for (field, id, token) in cfg.named_ids() {
            if id as usize >= vocab {
                return Err(Error::config(&json_path, field, format!("id {id} is outside the vocabulary of {vocab}")));
            }
            // The ids must be the tokenizer's latent tokens: any other token would be fed and
            // suppressed in their place without a sign.
            let found = self.tokenizer.id_token(id);
            if found.as_deref() != Some(token) {
                let found = found.map_or("no token".to_string(), |t| format!("`{t}`"));
                return Err(Error::Inconsistent {
                    path: json_path,
                    problem: format!("field `{field}`: id {id} is {found} in {}, expected `{token}`", self.tokenizer.path().display()),
                });
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
        use crate::limits::{MAX_ITERATIONS, MAX_LATENTS};
        if !(1..=MAX_LATENTS).contains(&num_latents) {
            return Err(Error::Input { what: format!("num_latents {num_latents}"), problem: format!("must be in 1..={MAX_LATENTS}") });
        }
        if num_iterations > MAX_ITERATIONS {
            return Err(Error::Input { what: format!("num_iterations {num_iterations}"), problem: format!("must be in 0..={MAX_ITERATIONS}") });
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
    /// for the latent part. The files are written into a temporary directory beside `dir`, which
    /// then replaces `dir` as a whole ([`write_dir_atomic`]): a failure leaves `dir` as it was,
    /// and no file of an earlier model (an old `kava.json`, say) survives. `dir` must be absent,
    /// empty or a model directory (with `config.json`): other files are never deleted. A model
    /// holding NaN or infinite weights is refused ([`Error::NonFinite`]) before anything is
    /// written. Native only: it reads every weight back synchronously (browsers forbid that).
    #[cfg(not(target_family = "wasm"))]
    pub fn save(&self, dir: &Path, dtype: StoreDtype) -> Result<()> {
        let tensors = self.transformer.to_hf_tensors();
        let projection = self.latent.as_ref().and_then(|r| r.projection.as_ref()).map(|p| p.to_host());
        for (file, list) in [("model.safetensors", Some(&tensors)), ("kava.safetensors", projection.as_ref())] {
            if let Some((name, _)) = list.into_iter().flatten().find(|(_, t)| t.data.iter().any(|x| !x.is_finite())) {
                return Err(Error::NonFinite { path: dir.join(file), tensor: name.clone() });
            }
        }
        write_dir_atomic(dir, |tmp| self.write_files(tmp, dtype, &tensors, projection.as_deref()))
    }

    #[cfg(not(target_family = "wasm"))]
    fn write_files(&self, dir: &Path, dtype: StoreDtype, tensors: &[(String, load::HostTensor)], projection: Option<&[(String, load::HostTensor)]>) -> Result<()> {
        let config = self.transformer.config.to_json();
        write_atomic(&dir.join("config.json"), serde_json::to_string_pretty(&config).expect("json").as_bytes())?;
        write_atomic(&dir.join("model.safetensors"), &st::serialize(tensors, dtype)?)?;
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
            if let Some(p) = projection {
                write_atomic(&dir.join("kava.safetensors"), &st::serialize(p, StoreDtype::F32)?)?;
            }
        }
        Ok(())
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a crash never leaves a
/// half-written file under the real name (nor, on a failed write, the temporary file).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    if let Err(e) = std::fs::write(&tmp, bytes) {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(path, e));
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, e)
    })
}

/// Refuses every token of `tokenizer` that the model's embedding has no row for: a tokenizer
/// from another model would otherwise feed ids past the embedding (a panic inside burn) or,
/// below it, the wrong rows.
fn check_tokenizer(config: &crate::config::ModelConfig, tokenizer: &Tokenizer) -> Result<()> {
    let vocab = config.vocab_size;
    match tokenizer.max_id() {
        Some((id, token)) if id as usize >= vocab => Err(Error::Inconsistent {
            path: tokenizer.path().into(),
            problem: format!(
                "token `{token}` has id {id}, outside the model's vocabulary of {vocab} (vocab_size): this tokenizer does not belong to the model"
            ),
        }),
        _ => Ok(()),
    }
}

/// Whether `dir` may receive an output: absent or empty, or — with `overwrite` — a model
/// directory (one with `config.json`, which [`Model::save`] and `kava-train init-model` then
/// replace as a whole). A file, or a non-empty directory without `--overwrite`, is refused
/// naming it; a non-empty directory that is no model directory is refused even with it.
#[cfg(not(target_family = "wasm"))]
pub fn check_output_dir(dir: &Path, overwrite: bool) -> Result<()> {
    let problem = match std::fs::read_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(_) if dir.exists() && !dir.is_dir() => "exists and is not a directory".to_string(),
        Err(e) => return Err(Error::io(dir, e)),
        Ok(mut entries) => {
            if entries.next().is_none() {
                return Ok(());
            }
            if !dir.join("config.json").is_file() {
                "is not empty and holds no model (no config.json): choose another directory or remove it".to_string()
            } else if overwrite {
                return Ok(());
            } else {
                "already holds a model: pass --overwrite to replace it (its files are removed), or choose another directory".to_string()
            }
        }
    };
    Err(Error::OutputExists { path: dir.into(), problem })
}

/// Writes a directory atomically: `fill` writes its files into a fresh temporary directory
/// beside `dir`, which then takes `dir`'s place (an existing `dir` is renamed aside first and
/// removed after). On any failure the temporary directory is removed and `dir` is left as it
/// was. `dir` must be absent, empty or a model directory (see [`check_output_dir`]).
#[cfg(not(target_family = "wasm"))]
pub fn write_dir_atomic(dir: &Path, fill: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    check_output_dir(dir, true)?;
    let abs = std::path::absolute(dir).map_err(|e| Error::io(dir, e))?;
    let (Some(parent), Some(name)) = (abs.parent(), abs.file_name()) else {
        return Err(Error::OutputExists { path: dir.into(), problem: "is not a directory kava can replace (name it by its path)".into() });
    };
    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    let pid = std::process::id();
    let tmp = parent.join(format!(".{}.tmp-{pid}", name.to_string_lossy()));
    let old = parent.join(format!(".{}.old-{pid}", name.to_string_lossy()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir(&tmp).map_err(|e| Error::io(&tmp, e))?;
    if let Err(e) = fill(&tmp) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    let existed = abs.exists();
    if existed {
        let _ = std::fs::remove_dir_all(&old);
        if let Err(e) = std::fs::rename(&abs, &old) {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(Error::io(dir, e));
        }
    }
    if let Err(e) = std::fs::rename(&tmp, &abs) {
        if existed {
            let _ = std::fs::rename(&old, &abs);
        }
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(Error::io(dir, e));
    }
    if existed {
        let _ = std::fs::remove_dir_all(&old);
    }
    Ok(())
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
        let n = ids.len();
        crate::limits::check_ids(&self.transformer.config, "text", &[ids.to_vec()])?;
        crate::limits::Workload { batch: 1, positions: n, slots: n, widest_pass: n, logit_rows: n, detail: format!("{n} tokens of text") }
            .check(&self.transformer.config, "perplexity")?;
        let m = &self.transformer;
        let device = m.device();
        let out = m.forward(m.embed(crate::model::ids_tensor(&[ids.to_vec()], &device)), None, &mut m.new_cache(1), &crate::model::Capture::none());
        let logits = m.logits(out.hidden.narrow(1, 0, n - 1)); // [1, n−1, v]
        let logp = activation::log_softmax(logits, 2);
        let targets: Vec<i64> = ids[1..].iter().map(|&i| i as i64).collect();
        let targets = Tensor::<3, Int>::from_data(TensorData::new(targets, [1, n - 1, 1]), &device);
        let nll: f64 = -logp.gather(2, targets).sum().into_scalar::<f32>() as f64;
        Ok((nll / (n - 1) as f64).exp())
    }
}
