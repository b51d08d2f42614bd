//! Text ↔ ids through the `tokenizers` crate (built without its C regex so it also runs in
//! wasm32). Whether a BOS is prepended is the tokenizer's own post-processor's decision, as in
//! HF; [`Tokenizer::bos_added`] reports it so that piecewise tokenization can add it once.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A loaded tokenizer and the file it came from.
#[derive(Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    path: PathBuf,
    bos_added: Option<u32>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("path", &self.path)
            .field("vocab_size", &self.vocab_size())
            .field("bos_added", &self.bos_added)
            .finish()
    }
}

impl Tokenizer {
    /// Reads `tokenizer.json`.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        if !path.exists() {
            return Err(Error::MissingFile { path: path.into(), what: "tokenizer.json" });
        }
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::from_bytes(&bytes, path)
    }

    /// Parses `tokenizer.json` contents; `path` names the source in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        let inner = tokenizers::Tokenizer::from_bytes(bytes)
            .map_err(|e| Error::Tokenizer { path: path.into(), problem: e.to_string() })?;
        Self::from_inner(inner, path)
    }

    /// Wraps an already built `tokenizers::Tokenizer` (e.g. one rebuilt from GGUF metadata).
    pub fn from_inner(inner: tokenizers::Tokenizer, path: &Path) -> Result<Self> {
        let mut t = Self { inner, path: path.into(), bos_added: None };
        // The post-processor's BOS shows up as the one token of an empty string.
        let empty = t.encode("", true)?;
        t.bos_added = match empty.as_slice() {
            [bos] => Some(*bos),
            _ => None,
        };
        Ok(t)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The BOS id the tokenizer prepends when asked for special tokens, if any.
    pub fn bos_added(&self) -> Option<u32> {
        self.bos_added
    }

    /// Number of ids, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The largest id of the vocabulary (added tokens included) and its token; `None` for an
    /// empty vocabulary.
    pub fn max_id(&self) -> Option<(u32, String)> {
        self.inner.get_vocab(true).into_iter().map(|(token, id)| (id, token)).max()
    }

    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    pub fn id_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// Ids of `text`; `add_special` lets the post-processor add BOS/EOS as HF would.
    pub fn encode(&self, text: &str, add_special: bool) -> Result<Vec<u32>> {
        self.inner
            .encode(text, add_special)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| Error::Tokenizer { path: self.path.clone(), problem: e.to_string() })
    }

    /// Text of `ids`, optionally without special tokens.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        self.inner
            .decode(ids, skip_special)
            .map_err(|e| Error::Tokenizer { path: self.path.clone(), problem: e.to_string() })
    }

    /// Ids of the added tokens marked special (control tokens).
    pub fn special_ids(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = self
            .inner
            .get_added_tokens_decoder()
            .iter()
            .filter(|(_, t)| t.special)
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// The underlying `tokenizers` object (for saving or extending).
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }

    /// A user turn in ChatML, the template of both supported instruct families, ready for the
    /// assistant's answer.
    pub fn chatml(user: &str) -> String {
        format!("<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n")
    }
}

impl Tokenizer {
    /// Adds special tokens (never split, skipped when decoding) and returns their ids, which
    /// the tokenizer assigns after its current vocabulary. Tokens already present keep their id.
    pub fn add_special_tokens(&mut self, tokens: &[&str]) -> Vec<u32> {
        let added: Vec<tokenizers::AddedToken> =
            tokens.iter().map(|t| tokenizers::AddedToken::from(t.to_string(), true)).collect();
        self.inner.add_special_tokens(&added);
        tokens.iter().map(|t| self.inner.token_to_id(t).expect("token was just added")).collect()
    }

    /// `tokenizer.json` contents.
    pub fn to_json(&self) -> Result<String> {
        self.inner
            .to_string(true)
            .map_err(|e| Error::Tokenizer { path: self.path.clone(), problem: e.to_string() })
    }
}
