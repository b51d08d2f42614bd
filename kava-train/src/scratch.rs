//! A model from scratch: a byte-level BPE vocabulary trained (with the `tokenizers` crate) on a
//! corpus of word problems, and a freshly initialised Llama decoder written as an HF directory
//! that `kava::Model::load` and every `kava-train` command take. This is how the embedded demo
//! model starts (`kava-train init-model`, then `kava-train train` with full fine-tuning).
//!
//! The vocabulary keeps every digit a token of its own (a `Digits` pre-tokenizer before the
//! byte-level one), so that numbers are spelt digit by digit and a small model learns arithmetic
//! on digits instead of memorising one embedding per number.

use std::path::Path;

use anyhow::{bail, Context};
use kava::load::safetensors::{serialize, StoreDtype};
use kava::load::HostTensor;
use serde_json::json;
use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::models::TrainerWrapper;
use tokenizers::{AddedToken, PreTokenizerWrapper, Tokenizer};

use crate::data::Example;

/// The one special token of a scratch vocabulary: beginning and end of text (id 0), as in
/// SmolLM2. `kava` adds the latent tokens (`<bot>`, `<eot>`, `<lat>`, pad) when latents attach.
pub const ENDOFTEXT: &str = "<|endoftext|>";

/// Shape of a scratch Llama decoder.
#[derive(Clone, Debug, PartialEq)]
pub struct Shape {
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub intermediate: usize,
    pub max_positions: usize,
}

impl Default for Shape {
    /// About 5 M parameters with a 1 k vocabulary: ~10 MB as f16.
    fn default() -> Self {
        Shape { hidden: 256, layers: 6, heads: 8, kv_heads: 4, intermediate: 768, max_positions: 512 }
    }
}

impl Shape {
    fn check(&self) -> anyhow::Result<()> {
        if self.hidden == 0 || self.layers == 0 || self.heads == 0 || self.kv_heads == 0 || self.intermediate == 0 {
            bail!("model shape: every size must be positive ({self:?})");
        }
        if self.hidden % self.heads != 0 || (self.hidden / self.heads) % 2 != 0 {
            bail!("model shape: hidden {} must split into {} heads of an even size", self.hidden, self.heads);
        }
        if self.heads % self.kv_heads != 0 {
            bail!("model shape: kv_heads {} must divide heads {}", self.kv_heads, self.heads);
        }
        use kava::limits;
        for (name, n, max) in [
            ("hidden", self.hidden, limits::MAX_HIDDEN),
            ("layers", self.layers, limits::MAX_LAYERS),
            ("heads", self.heads, limits::MAX_HEADS),
            ("intermediate", self.intermediate, limits::MAX_INTERMEDIATE),
            ("max_positions", self.max_positions, limits::MAX_POSITIONS),
        ] {
            if n > max {
                bail!("model shape: {name} {n} is larger than kava supports ({max})");
            }
        }
        Ok(())
    }

    /// Refuses a model whose f32 weights (with a vocabulary of `vocab`) would not fit the
    /// memory budget (`kava::limits::memory_budget`), before anything is allocated.
    fn check_size(&self, vocab: usize) -> anyhow::Result<()> {
        let bytes = 4.0 * self.parameters_f64(vocab);
        let budget = kava::limits::memory_budget()?;
        if bytes > budget {
            bail!(
                "model shape: {:.3e} parameters ({:.1} GiB of f32 weights) exceed the {:.1} GiB allowed here (KAVA_MEMORY_LIMIT_GIB)",
                bytes / 4.0,
                bytes / (1u64 << 30) as f64,
                budget / (1u64 << 30) as f64
            );
        }
        Ok(())
    }

    /// [`Shape::parameters`] in floating point (no overflow for any shape).
    fn parameters_f64(&self, vocab: usize) -> f64 {
        let (h, kv) = (self.hidden as f64, (self.hidden / self.heads.max(1) * self.kv_heads) as f64);
        let attn = 2.0 * h * h + 2.0 * h * kv;
        let mlp = 3.0 * h * self.intermediate as f64;
        vocab as f64 * h + self.layers as f64 * (attn + mlp + 2.0 * h) + h
    }

    /// Parameter count for a vocabulary of `vocab` (tied embeddings).
    pub fn parameters(&self, vocab: usize) -> usize {
        let (h, kv) = (self.hidden, self.hidden / self.heads * self.kv_heads);
        let attn = 2 * h * h + 2 * h * kv;
        let mlp = 3 * h * self.intermediate;
        vocab * h + self.layers * (attn + mlp + 2 * h) + h
    }
}

/// The texts a vocabulary is trained on: every question, every step in its trace style, and the
/// answer line the layouts write (`The answer is: 42`).
pub fn corpus(examples: &[Example]) -> Vec<String> {
    let mut texts = Vec::with_capacity(examples.len() * 3);
    for ex in examples {
        texts.push(ex.question.clone());
        texts.push(ex.steps.join(" "));
        texts.push(format!("{} {}", kava::latent::ANSWER_PROMPT, ex.answer_text()));
    }
    texts
}

/// Trains a byte-level BPE vocabulary of `vocab_size` entries (the 256 byte symbols and
/// [`ENDOFTEXT`] included) on `texts`. Encoding prepends [`ENDOFTEXT`] as BOS.
pub fn train_tokenizer(texts: &[String], vocab_size: usize) -> anyhow::Result<Tokenizer> {
    if vocab_size < 300 {
        bail!("vocab size {vocab_size}: must be at least 300 (256 byte symbols + merges)");
    }
    if texts.is_empty() {
        bail!("no text to train a vocabulary on");
    }
    let mut tok = Tokenizer::new(BPE::default());
    let pre: Vec<PreTokenizerWrapper> = vec![Digits::new(true).into(), ByteLevel::new(false, true, true).into()];
    tok.with_pre_tokenizer(Some(Sequence::new(pre)));
    tok.with_decoder(Some(ByteLevel::new(false, true, true)));
    let mut trainer: TrainerWrapper = BpeTrainerBuilder::new()
        .vocab_size(vocab_size)
        .min_frequency(2)
        .show_progress(false)
        .special_tokens(vec![AddedToken::from(ENDOFTEXT, true)])
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .build()
        .into();
    tok.train(&mut trainer, texts.iter()).map_err(|e| anyhow::anyhow!("training the vocabulary: {e}"))?;
    let bos = tok.token_to_id(ENDOFTEXT).context("the trained vocabulary lost its special token")?;
    let template = TemplateProcessing::builder()
        .try_single(format!("{ENDOFTEXT} $A"))
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .try_pair(format!("{ENDOFTEXT} $A $B:1"))
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .special_tokens(vec![(ENDOFTEXT, bos)])
        .build()
        .map_err(|e| anyhow::anyhow!("post-processor: {e}"))?;
    tok.with_post_processor(Some(template));
    Ok(tok)
}

/// `config.json` of a scratch Llama with `vocab` entries; BOS = EOS = id 0.
pub fn llama_config(shape: &Shape, vocab: usize) -> serde_json::Value {
    json!({
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "attention_bias": false,
        "attention_dropout": 0.0,
        "bos_token_id": 0,
        "eos_token_id": 0,
        "head_dim": shape.hidden / shape.heads,
        "hidden_act": "silu",
        "hidden_size": shape.hidden,
        "initializer_range": 0.02,
        "intermediate_size": shape.intermediate,
        "max_position_embeddings": shape.max_positions,
        "mlp_bias": false,
        "num_attention_heads": shape.heads,
        "num_hidden_layers": shape.layers,
        "num_key_value_heads": shape.kv_heads,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "tie_word_embeddings": true,
        "torch_dtype": "float32",
        "vocab_size": vocab,
    })
}

/// Freshly initialised weights under their HF names: N(0, 0.02) for embeddings and projections,
/// the residual-branch outputs (`o_proj`, `down_proj`) scaled by 1/√(2·layers) as in GPT-2, norms 1.
pub fn init_weights(shape: &Shape, vocab: usize, seed: u64) -> Vec<(String, HostTensor)> {
    let mut rng = Normal::new(seed);
    let (h, kv) = (shape.hidden, shape.hidden / shape.heads * shape.kv_heads);
    let resid = 0.02 / (2.0 * shape.layers as f32).sqrt();
    let mut out = vec![("model.embed_tokens.weight".to_string(), rng.tensor(vec![vocab, h], 0.02))];
    for l in 0..shape.layers {
        let p = format!("model.layers.{l}");
        out.push((format!("{p}.input_layernorm.weight"), HostTensor::new(vec![h], vec![1.0; h])));
        out.push((format!("{p}.self_attn.q_proj.weight"), rng.tensor(vec![h, h], 0.02)));
        out.push((format!("{p}.self_attn.k_proj.weight"), rng.tensor(vec![kv, h], 0.02)));
        out.push((format!("{p}.self_attn.v_proj.weight"), rng.tensor(vec![kv, h], 0.02)));
        out.push((format!("{p}.self_attn.o_proj.weight"), rng.tensor(vec![h, h], resid)));
        out.push((format!("{p}.post_attention_layernorm.weight"), HostTensor::new(vec![h], vec![1.0; h])));
        out.push((format!("{p}.mlp.gate_proj.weight"), rng.tensor(vec![shape.intermediate, h], 0.02)));
        out.push((format!("{p}.mlp.up_proj.weight"), rng.tensor(vec![shape.intermediate, h], 0.02)));
        out.push((format!("{p}.mlp.down_proj.weight"), rng.tensor(vec![h, shape.intermediate], resid)));
    }
    out.push(("model.norm.weight".to_string(), HostTensor::new(vec![h], vec![1.0; h])));
    out
}

/// Trains a vocabulary on `examples`, initialises a Llama of `shape` and writes the HF directory
/// `out` (config, f32 weights, tokenizer, generation config). Returns (vocabulary, parameters).
/// The files go into a temporary directory that then takes `out`'s place
/// ([`kava::api::write_dir_atomic`]): a failure leaves no half-written model, and `out` must be
/// absent, empty or a model directory.
pub fn write_model(out: &Path, examples: &[Example], vocab_size: usize, shape: &Shape, seed: u64) -> anyhow::Result<(usize, usize)> {
    shape.check()?;
    shape.check_size(vocab_size)?;
    let tok = train_tokenizer(&corpus(examples), vocab_size)?;
    let vocab = tok.get_vocab_size(true);
    let mut failure: Option<anyhow::Error> = None;
    let written = kava::api::write_dir_atomic(out, |dir| {
        write_files(dir, &tok, vocab, shape, seed).map_err(|e| {
            let problem = format!("{e:#}");
            failure = Some(e);
            kava::Error::Input { what: out.display().to_string(), problem }
        })
    });
    if let Some(e) = failure {
        return Err(e);
    }
    written?;
    Ok((vocab, shape.parameters(vocab)))
}

/// The files of a scratch model, into `out`.
fn write_files(out: &Path, tok: &Tokenizer, vocab: usize, shape: &Shape, seed: u64) -> anyhow::Result<()> {
    let write = |name: &str, bytes: &[u8]| kava::api::write_atomic(&out.join(name), bytes).map_err(anyhow::Error::from);
    let tok_json = tok.to_string(true).map_err(|e| anyhow::anyhow!("serialising the tokenizer: {e}"))?;
    write("tokenizer.json", tok_json.as_bytes())?;
    let tok_config = json!({ "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": ENDOFTEXT, "eos_token": ENDOFTEXT, "model_max_length": shape.max_positions });
    write("tokenizer_config.json", tok_config.to_string().as_bytes())?;
    write("config.json", serde_json::to_string_pretty(&llama_config(shape, vocab))?.as_bytes())?;
    write("generation_config.json", json!({ "bos_token_id": 0, "eos_token_id": 0 }).to_string().as_bytes())?;
    write("model.safetensors", &serialize(&init_weights(shape, vocab, seed), StoreDtype::F32)?)?;
    Ok(())
}

/// Gaussian draws from SplitMix64 through Box–Muller: reproducible on every platform.
struct Normal(u64);

impl Normal {
    fn new(seed: u64) -> Self {
        Normal(seed ^ 0x5EED_5C7A_7C40_0001u64)
    }

    fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn tensor(&mut self, shape: Vec<usize>, std: f32) -> HostTensor {
        let n: usize = shape.iter().product();
        let mut data = Vec::with_capacity(n);
        while data.len() < n {
            let (u1, u2) = (self.uniform().max(f64::MIN_POSITIVE), self.uniform());
            let r = (-2.0 * u1.ln()).sqrt();
            let t = std::f64::consts::TAU * u2;
            data.push((r * t.cos()) as f32 * std);
            if data.len() < n {
                data.push((r * t.sin()) as f32 * std);
            }
        }
        HostTensor::new(shape, data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn examples() -> Vec<Example> {
        let (train, _) = crate::synth::train_test(3, 300, 0);
        let text: Vec<String> = train.iter().map(|p| p.aug_line()).collect();
        let (ex, skipped) = crate::data::parse_aug_text("synth", &text.join("\n"));
        assert!(skipped.is_empty(), "{skipped:?}");
        ex
    }

    #[test]
    fn the_vocabulary_spells_digits_one_by_one_and_round_trips() {
        let tok = train_tokenizer(&corpus(&examples()), 400).unwrap();
        assert!(tok.get_vocab_size(true) <= 400 && tok.get_vocab_size(true) > 300);
        let text = "Tom buys 12 pens at $3 each.\n<<12*3=36>> The answer is: 36";
        let enc = tok.encode(text, true).unwrap();
        assert_eq!(enc.get_ids()[0], tok.token_to_id(ENDOFTEXT).unwrap(), "BOS first");
        for t in enc.get_tokens() {
            let digits = t.chars().filter(char::is_ascii_digit).count();
            assert!(digits <= 1 && (digits == 0 || t.chars().count() == 1), "token {t:?} joins a digit to something");
        }
        assert_eq!(tok.decode(enc.get_ids(), true).unwrap(), text);
        // Frequent words of the corpus became whole tokens (with their leading space).
        let each = tok.token_to_id("Ġeach").expect("` each` is one token");
        assert!(enc.get_ids().contains(&each));
        assert!(enc.len() * 3 < text.len() * 2, "{} tokens for {} bytes", enc.len(), text.len());
    }

    #[test]
    fn a_scratch_model_loads_in_kava_with_the_stated_size() {
        let dir = std::env::temp_dir().join(format!("kava-scratch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let shape = Shape { hidden: 32, layers: 2, heads: 4, kv_heads: 2, intermediate: 64, max_positions: 256 };
        let (vocab, params) = write_model(&dir, &examples(), 400, &shape, 1).unwrap();
        let device = kava::Backend::Cpu.device().unwrap();
        let model = kava::Model::load(&dir, &device).unwrap();
        assert_eq!(model.transformer.config.vocab_size, vocab);
        let counted: usize = init_weights(&shape, vocab, 1).iter().map(|(_, t)| t.data.len()).sum();
        assert_eq!(params, counted);
        let ids = model.tokenizer.encode("Mia has 4 apples.", true).unwrap();
        assert_eq!(ids[0], 0);
        // Same seed, same weights; another seed, others.
        assert_eq!(init_weights(&shape, vocab, 1)[1].1.data, init_weights(&shape, vocab, 1)[1].1.data);
        assert_ne!(init_weights(&shape, vocab, 1)[2].1.data, init_weights(&shape, vocab, 2)[2].1.data);
        let w = &init_weights(&shape, vocab, 1)[0].1.data;
        let std = (w.iter().map(|x| x * x).sum::<f32>() / w.len() as f32).sqrt();
        assert!((std - 0.02).abs() < 0.002, "embedding std {std}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_shapes_are_refused_by_name() {
        let bad = Shape { hidden: 30, heads: 4, ..Shape::default() };
        assert!(bad.check().unwrap_err().to_string().contains("hidden 30"));
        let bad = Shape { kv_heads: 3, ..Shape::default() };
        assert!(bad.check().unwrap_err().to_string().contains("kv_heads 3"));
        assert!(train_tokenizer(&["a b".into()], 100).is_err());
    }
}
