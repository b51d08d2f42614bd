//! Builds a Hugging Face `tokenizers::Tokenizer` from GGUF tokenizer metadata (byte-level BPE,
//! `tokenizer.ggml.model = "gpt2"`), with the pre-tokenizer llama.cpp picks for
//! `tokenizer.ggml.pre` (`smollm`, `qwen2`, `gpt2` / `default`).

use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::normalizers::NFC;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, PreTokenizerWrapper, SplitDelimiterBehavior, Tokenizer};

use super::reader::Gguf;
use super::{GgufError, Result};

/// Qwen2's pre-tokenizer regex (from its `tokenizer.json`; llama.cpp's `LLAMA_VOCAB_PRE_TYPE_QWEN2`).
const QWEN2_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// GGUF token types (llama.cpp `llama_token_type`).
const TOKEN_CONTROL: i32 = 3;
const TOKEN_USER_DEFINED: i32 = 4;

/// A tokenizer built from GGUF metadata, with the special ids the model needs.
#[derive(Clone)]
pub struct GgufTokenizer {
    pub tokenizer: Tokenizer,
    pub bos_id: Option<u32>,
    pub eos_id: Option<u32>,
    pub pad_id: Option<u32>,
    /// `tokenizer.ggml.add_bos_token` (default false for BPE vocabularies, as in llama.cpp).
    pub add_bos: bool,
    /// `tokenizer.ggml.add_eos_token` (default false).
    pub add_eos: bool,
}

impl std::fmt::Debug for GgufTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufTokenizer")
            .field("vocab_size", &self.tokenizer.get_vocab_size(true))
            .field("bos_id", &self.bos_id)
            .field("eos_id", &self.eos_id)
            .field("pad_id", &self.pad_id)
            .field("add_bos", &self.add_bos)
            .field("add_eos", &self.add_eos)
            .finish()
    }
}

fn err(reason: impl Into<String>) -> GgufError {
    GgufError::Tokenizer {
        reason: reason.into(),
    }
}

/// An optional special token id, checked against the vocabulary size.
fn special_id(g: &Gguf, key: &str, n_tokens: usize) -> Result<Option<u32>> {
    match g.opt_u32(key)? {
        Some(id) if id as usize >= n_tokens => Err(GgufError::BadValue {
            key: key.into(),
            reason: format!("token id {id} is outside the vocabulary of {n_tokens}"),
        }),
        id => Ok(id),
    }
}

/// The pre-tokenizer for `tokenizer.ggml.pre`, plus whether the text is NFC-normalised first.
fn pre_tokenizer(pre: &str) -> Result<(PreTokenizerWrapper, bool)> {
    let byte_level = |use_regex: bool, trim_offsets: bool| {
        ByteLevel::default()
            .add_prefix_space(false)
            .trim_offsets(trim_offsets)
            .use_regex(use_regex)
    };
    Ok(match pre {
        // The GPT-2 regex alone (llama.cpp's LLAMA_VOCAB_PRE_TYPE_GPT2 / default BPE).
        "gpt2" | "default" => (byte_level(true, true).into(), false),
        // SmolLM2 (and StarCoder): every digit is its own piece, then the GPT-2 regex.
        "smollm" | "starcoder" => {
            let seq = Sequence::new(vec![
                Digits::new(true).into(),
                byte_level(true, true).into(),
            ]);
            (seq.into(), false)
        }
        // Qwen2: its own regex (single digits, case-insensitive contractions), then byte-level
        // without the GPT-2 regex. Its tokenizer.json also NFC-normalises the text.
        "qwen2" => {
            let split = Split::new(
                SplitPattern::Regex(QWEN2_REGEX.into()),
                SplitDelimiterBehavior::Isolated,
                false,
            )
            .map_err(|e| err(format!("Qwen2 regex: {e}")))?;
            (
                Sequence::new(vec![split.into(), byte_level(false, false).into()]).into(),
                true,
            )
        }
        other => {
            return Err(err(format!(
            "unsupported tokenizer.ggml.pre {other:?} (supported: smollm, qwen2, gpt2, default)"
        )))
        }
    })
}

/// Builds the tokenizer described by the `tokenizer.ggml.*` metadata of `g`.
pub fn tokenizer_from_gguf(g: &Gguf) -> Result<GgufTokenizer> {
    let model = g.get_str("tokenizer.ggml.model")?;
    if model != "gpt2" {
        return Err(err(format!("unsupported tokenizer.ggml.model {model:?} (only byte-level BPE \"gpt2\" is supported)")));
    }
    let pre = g.opt_str("tokenizer.ggml.pre")?.unwrap_or("default");
    let (pre_tokenizer, nfc) = pre_tokenizer(pre)?;
    let tokens = g.get_str_array("tokenizer.ggml.tokens")?;
    let types = match g.metadata("tokenizer.ggml.token_type") {
        Some(_) => g.get_i32_array("tokenizer.ggml.token_type")?,
        None => &[],
    };
    if !types.is_empty() && types.len() != tokens.len() {
        return Err(err(format!(
            "{} token types for {} tokens",
            types.len(),
            tokens.len()
        )));
    }
    if u32::try_from(tokens.len()).is_err() {
        return Err(err(format!(
            "{} tokens do not fit in u32 ids",
            tokens.len()
        )));
    }
    let mut vocab = Vocab::with_capacity(tokens.len());
    for (id, tok) in tokens.iter().enumerate() {
        if let Some(first) = vocab.insert(tok.clone(), id as u32) {
            return Err(err(format!(
                "token {tok:?} appears twice (ids {first} and {id})"
            )));
        }
    }
    let merges = g
        .get_str_array("tokenizer.ggml.merges")?
        .iter()
        .enumerate()
        .map(|(i, m)| {
            m.split_once(' ')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .ok_or_else(|| err(format!("merge {i} {m:?} has no space")))
        })
        .collect::<Result<Vec<_>>>()?;
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(|e| err(format!("BPE: {e}")))?;

    let mut tokenizer = Tokenizer::new(bpe);
    if nfc {
        tokenizer.with_normalizer(Some(NFC));
    }
    tokenizer.with_pre_tokenizer(Some(pre_tokenizer));
    tokenizer.with_decoder(Some(ByteLevelDecoder::default()));

    // Control tokens must be matched verbatim before BPE (and skipped when decoding with
    // skip_special_tokens); user-defined ones are matched verbatim too but are ordinary text.
    let added = |wanted: i32, special: bool| -> Vec<AddedToken> {
        tokens
            .iter()
            .zip(types)
            .filter(|(_, &t)| t == wanted)
            .map(|(tok, _)| AddedToken::from(tok.clone(), special).normalized(false))
            .collect()
    };
    let control = added(TOKEN_CONTROL, true);
    let user = added(TOKEN_USER_DEFINED, false);
    tokenizer.add_special_tokens(&control);
    tokenizer.add_tokens(&user);
    log::debug!(
        "GGUF tokenizer: {} tokens, pre {pre:?}, {} control, {} user-defined",
        tokens.len(),
        control.len(),
        user.len()
    );

    let n = tokens.len();
    let bos_id = special_id(g, "tokenizer.ggml.bos_token_id", n)?;
    let eos_id = special_id(g, "tokenizer.ggml.eos_token_id", n)?;
    let pad_id = special_id(g, "tokenizer.ggml.padding_token_id", n)?;
    let add_bos = g.opt_bool("tokenizer.ggml.add_bos_token")?.unwrap_or(false);
    let add_eos = g.opt_bool("tokenizer.ggml.add_eos_token")?.unwrap_or(false);
    let name = |id: Option<u32>, what: &str| -> Result<(String, u32)> {
        let id = id.ok_or_else(|| {
            err(format!(
                "add_{what}_token is set but there is no {what} token id"
            ))
        })?;
        let tok = tokens.get(id as usize).cloned().unwrap_or_default();
        Ok((tok, id))
    };
    if add_bos || add_eos {
        let mut single = String::new();
        let mut specials = Vec::new();
        if add_bos {
            let (tok, id) = name(bos_id, "bos")?;
            single.push_str(&format!("{tok} "));
            specials.push((tok, id));
        }
        single.push_str("$A");
        if add_eos {
            let (tok, id) = name(eos_id, "eos")?;
            single.push_str(&format!(" {tok}"));
            specials.push((tok, id));
        }
        let pair = format!("{single} {}", single.replace("$A", "$B:1"));
        let template = TemplateProcessing::builder()
            .try_single(single.as_str())
            .and_then(|b| b.try_pair(pair.as_str()))
            .map_err(|e| err(format!("template: {e}")))?
            .special_tokens(specials)
            .build()
            .map_err(|e| err(format!("template: {e}")))?;
        tokenizer.with_post_processor(Some(template));
    }
    Ok(GgufTokenizer {
        tokenizer,
        bos_id,
        eos_id,
        pad_id,
        add_bos,
        add_eos,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::gguf::metadata::{Array, Value};
    use crate::gguf::writer::GgufWriter;

    /// GPT-2's `bytes_to_unicode`: printable bytes map to themselves, the rest to U+0100 onwards.
    fn byte_char(b: u8) -> char {
        let printable = |x: u8| (33..=126).contains(&x) || (161..=172).contains(&x) || x >= 174;
        if printable(b) {
            return b as char;
        }
        let n = (0..b).filter(|&x| !printable(x)).count() as u32;
        char::from_u32(256 + n).unwrap_or('?')
    }

    /// A tiny vocabulary: 3 control tokens, the 256 byte tokens, a few merges, one user-defined.
    pub fn tiny_vocab(pre: &str) -> GgufWriter {
        let mut tokens: Vec<String> = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
            .map(String::from)
            .to_vec();
        tokens.extend((0..=255u8).map(|b| byte_char(b).to_string()));
        let merges = [
            "h e", "l l", "he ll", "Ġ w", "1 2", "' t", "D O", "DO N", "T S", "' T",
        ];
        for m in merges {
            tokens.push(m.replace(' ', ""));
        }
        tokens.push("<tool>".into());
        let mut types = vec![1i32; tokens.len()];
        types[..3].fill(TOKEN_CONTROL);
        *types.last_mut().unwrap() = TOKEN_USER_DEFINED;
        let mut w = GgufWriter::new();
        w.add("tokenizer.ggml.model", Value::String("gpt2".into()))
            .add("tokenizer.ggml.pre", Value::String(pre.into()))
            .add("tokenizer.ggml.tokens", Value::Array(Array::String(tokens)))
            .add("tokenizer.ggml.token_type", Value::Array(Array::I32(types)))
            .add(
                "tokenizer.ggml.merges",
                Value::Array(Array::String(merges.map(String::from).to_vec())),
            )
            .add("tokenizer.ggml.bos_token_id", Value::U32(1))
            .add("tokenizer.ggml.eos_token_id", Value::U32(2));
        w
    }

    pub fn tiny_vocab_file(pre: &str) -> Vec<u8> {
        tiny_vocab(pre).to_bytes()
    }

    fn build(w: &GgufWriter) -> Result<GgufTokenizer> {
        tokenizer_from_gguf(&Gguf::parse(&w.to_bytes())?)
    }

    fn pieces(t: &GgufTokenizer, text: &str) -> Vec<String> {
        t.tokenizer
            .encode(text, false)
            .unwrap()
            .get_tokens()
            .to_vec()
    }

    #[test]
    fn smollm_splits_every_digit_before_bpe() {
        let t = build(&tiny_vocab("smollm")).unwrap();
        assert_eq!(pieces(&t, "hello 123"), ["hell", "o", "Ġ", "1", "2", "3"]);
        let t = build(&tiny_vocab("gpt2")).unwrap();
        assert_eq!(pieces(&t, "hello 123"), ["hell", "o", "Ġ", "12", "3"]);
    }

    #[test]
    fn qwen2_uses_its_regex_with_case_insensitive_contractions() {
        let t = build(&tiny_vocab("qwen2")).unwrap();
        // (?i:'t) takes "'T" first; a case-sensitive regex would leave "'TS" for BPE ("'", "TS").
        assert_eq!(pieces(&t, "DON'TS 12"), ["DON", "'T", "S", "Ġ", "1", "2"]);
        let t = build(&tiny_vocab("gpt2")).unwrap();
        assert_eq!(pieces(&t, "DON't"), ["DON", "'t"]);
    }

    #[test]
    fn control_tokens_are_special_and_user_defined_tokens_are_plain_added_tokens() {
        let t = build(&tiny_vocab("smollm")).unwrap();
        let enc = t
            .tokenizer
            .encode("<|im_start|>he<tool><|im_end|>", false)
            .unwrap();
        let tool = t.tokenizer.token_to_id("<tool>").unwrap();
        assert_eq!(enc.get_ids()[0], 1);
        assert_eq!(enc.get_ids()[2..], [tool, 2]);
        assert_eq!(t.tokenizer.decode(enc.get_ids(), true).unwrap(), "he<tool>");
        assert_eq!(
            (t.bos_id, t.eos_id, t.pad_id, t.add_bos),
            (Some(1), Some(2), None, false)
        );
    }

    #[test]
    fn byte_level_decoding_round_trips_any_text() {
        let t = build(&tiny_vocab("qwen2")).unwrap();
        for text in ["héllo wörld 12", "  tabs\tand\nnewlines ", "日本語 😀"] {
            let ids = t.tokenizer.encode(text, false).unwrap().get_ids().to_vec();
            assert_eq!(t.tokenizer.decode(&ids, false).unwrap(), text);
        }
    }

    #[test]
    fn add_bos_token_prepends_bos_with_special_tokens() {
        let mut w = tiny_vocab("smollm");
        w.add("tokenizer.ggml.add_bos_token", Value::Bool(true));
        let t = build(&w).unwrap();
        assert!(t.add_bos);
        assert_eq!(t.tokenizer.encode("he", true).unwrap().get_ids()[0], 1);
        assert_ne!(t.tokenizer.encode("he", false).unwrap().get_ids()[0], 1);
    }

    #[test]
    fn unsupported_models_and_pre_tokenizers_are_clear_errors() {
        let mut w = tiny_vocab("smollm");
        w.add("tokenizer.ggml.model", Value::String("llama".into()));
        // a duplicate key: rejected by the parser before the tokenizer is reached
        assert!(matches!(build(&w), Err(GgufError::DuplicateKey { .. })));
        let mut w = GgufWriter::new();
        w.add("tokenizer.ggml.model", Value::String("llama".into()));
        let e = build(&w).unwrap_err().to_string();
        assert!(e.contains("\"llama\""), "{e}");
        let e = build(&tiny_vocab("falcon")).unwrap_err().to_string();
        assert!(e.contains("falcon"), "{e}");
    }

    #[test]
    fn inconsistent_vocabularies_are_rejected() {
        let mut w = tiny_vocab("gpt2");
        w.add("tokenizer.ggml.padding_token_id", Value::U32(10_000));
        assert!(matches!(build(&w), Err(GgufError::BadValue { .. })));
        let bad = |merges: Vec<String>, types: Vec<i32>| {
            let mut w = GgufWriter::new();
            w.add("tokenizer.ggml.model", Value::String("gpt2".into()))
                .add(
                    "tokenizer.ggml.tokens",
                    Value::Array(Array::String(vec!["a".into(), "b".into()])),
                )
                .add("tokenizer.ggml.token_type", Value::Array(Array::I32(types)))
                .add("tokenizer.ggml.merges", Value::Array(Array::String(merges)));
            build(&w)
        };
        assert!(bad(vec![], vec![1, 1]).is_ok());
        assert!(matches!(
            bad(vec!["a c".into()], vec![1, 1]),
            Err(GgufError::Tokenizer { .. })
        ));
        assert!(matches!(
            bad(vec!["ab".into()], vec![1, 1]),
            Err(GgufError::Tokenizer { .. })
        ));
        assert!(matches!(
            bad(vec![], vec![1]),
            Err(GgufError::Tokenizer { .. })
        ));
    }
}
