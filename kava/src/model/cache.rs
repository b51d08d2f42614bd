//! The KV cache, kept outside the model: per layer `[b, g, s, d]` keys (post-RoPE) and values,
//! plus, per batch row, which of the `s` slots hold real tokens (right padding leaves holes that
//! attention must skip). Jacobi refinement rewrites a block of slots on a fixed prefix by
//! [`KvCache::truncate`]-ing back to the prefix before each pass.

use burn::tensor::Tensor;

/// Cached keys and values of every layer for a batch.
#[derive(Debug, Clone)]
pub struct KvCache {
    layers: Vec<Option<(Tensor<4>, Tensor<4>)>>,
    /// `[b][s]`: whether slot `s` of row `b` is a real token.
    valid: Vec<Vec<bool>>,
}

impl KvCache {
    /// An empty cache for `n_layers` layers and `batch` rows.
    pub fn new(n_layers: usize, batch: usize) -> Self {
        Self { layers: vec![None; n_layers], valid: vec![Vec::new(); batch] }
    }

    /// Number of cached positions `s` (padding included).
    pub fn len(&self) -> usize {
        self.valid.first().map_or(0, Vec::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn batch(&self) -> usize {
        self.valid.len()
    }

    pub fn n_layers(&self) -> usize {
        self.layers.len()
    }

    /// `[b][s]` slot validity.
    pub fn valid(&self) -> &[Vec<bool>] {
        &self.valid
    }

    /// Whether any cached slot is padding.
    pub fn has_padding(&self) -> bool {
        self.valid.iter().any(|row| row.iter().any(|v| !v))
    }

    /// Number of real (non-padding) cached tokens of each row; the next token's position.
    pub fn next_positions(&self) -> Vec<usize> {
        self.valid.iter().map(|row| row.iter().filter(|v| **v).count()).collect()
    }

    /// Keys and values of layer `l`, `[b, g, s, d]` each.
    pub fn layer(&self, l: usize) -> Option<(&Tensor<4>, &Tensor<4>)> {
        self.layers.get(l)?.as_ref().map(|(k, v)| (k, v))
    }

    /// Drops every position from `n` on, restoring the state the cache had at length `n`.
    ///
    /// # Panics
    /// If `n` exceeds the cached length.
    pub fn truncate(&mut self, n: usize) {
        assert!(n <= self.len(), "truncate({n}) on a cache of length {}", self.len());
        // Already that long: no narrowing (in training each one is a graph node whose backward
        // zero-fills and slice-assigns a gradient).
        if n == self.len() {
            return;
        }
        for row in &mut self.valid {
            row.truncate(n);
        }
        for layer in &mut self.layers {
            if n == 0 {
                *layer = None;
            } else if let Some((k, v)) = layer.take() {
                *layer = Some((k.narrow(2, 0, n), v.narrow(2, 0, n)));
            }
        }
    }

    /// Marks the validity of `t` new slots; called once per forward, before the layers append.
    pub(crate) fn push_valid(&mut self, new: &[Vec<bool>]) {
        for (row, new) in self.valid.iter_mut().zip(new) {
            row.extend_from_slice(new);
        }
    }

    /// Appends layer `l`'s new keys and values and returns the whole cached sequence.
    pub(crate) fn append(&mut self, l: usize, k: Tensor<4>, v: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let (k, v) = match self.layers[l].take() {
            Some((pk, pv)) => (Tensor::cat(vec![pk, k], 2), Tensor::cat(vec![pv, v], 2)),
            None => (k, v),
        };
        self.layers[l] = Some((k.clone(), v.clone()));
        (k, v)
    }
}

impl KvCache {
    /// The cache of rows `start .. start + len` only.
    ///
    /// # Panics
    /// If the rows are out of range.
    pub fn rows(&self, start: usize, len: usize) -> KvCache {
        assert!(start + len <= self.batch(), "rows {start}..{} of a batch of {}", start + len, self.batch());
        KvCache {
            layers: self.layers.iter().map(|l| l.as_ref().map(|(k, v)| (k.clone().narrow(0, start, len), v.clone().narrow(0, start, len)))).collect(),
            valid: self.valid[start..start + len].to_vec(),
        }
    }

    /// Real tokens cached for row `i`.
    pub fn row_tokens(&self, i: usize) -> usize {
        self.valid.get(i).map_or(0, |r| r.iter().filter(|v| **v).count())
    }
}
