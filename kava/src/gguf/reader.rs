//! GGUF v2/v3 container parsing over `&[u8]`: header, typed metadata, tensor infos, data section.
//!
//! Layout (little-endian): magic `GGUF`, u32 version, u64 tensor count, u64 metadata count, the
//! metadata key/value pairs, the tensor infos, padding to `general.alignment` (default 32), then
//! the tensor data; tensor offsets are relative to the start of the data section.

use super::dequant::{self, GgmlType};
use super::metadata::{read_value, Value};
use super::{GgufError, Result};

/// Default data alignment when `general.alignment` is absent (`GGUF_DEFAULT_ALIGNMENT`).
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// ggml tensors have at most 4 dimensions (`GGML_MAX_DIMS`).
const MAX_DIMS: u32 = 4;

/// Where one tensor is and what it holds.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    /// Dimensions in GGUF (`ne`) order: `ne[0]` is the contiguous one, so a Hugging Face
    /// `(out, in)` matrix has `ne = [in, out]`.
    pub ne: Vec<u64>,
    pub dtype: GgmlType,
    /// Offset of the data from the start of the data section.
    pub offset: u64,
    /// Size of the data in bytes.
    pub n_bytes: u64,
}

impl TensorInfo {
    /// Number of elements (1 for a 0-dimensional tensor).
    pub fn n_elements(&self) -> u64 {
        // The product was checked for overflow when the file was parsed.
        self.ne.iter().fold(1u64, |a, &d| a.saturating_mul(d))
    }

    /// The shape in Hugging Face / row-major order: `ne` reversed.
    pub fn hf_shape(&self) -> Vec<usize> {
        // Saturates only for zero-element tensors on 32-bit targets (sizes are bounded by the file).
        self.ne
            .iter()
            .rev()
            .map(|&d| usize::try_from(d).unwrap_or(usize::MAX))
            .collect()
    }
}

/// A parsed GGUF file: metadata and tensor directory. Tensor data stays in the caller's bytes.
#[derive(Clone, Debug)]
pub struct Gguf {
    pub version: u32,
    metadata: Vec<(String, Value)>,
    tensors: Vec<TensorInfo>,
    alignment: u64,
    data_offset: u64,
}

/// A bounds-checked little-endian reader.
pub(super) struct Cursor<'a> {
    pub(super) bytes: &'a [u8],
    pub(super) pos: usize,
}

impl<'a> Cursor<'a> {
    pub(super) fn remaining(&self) -> u64 {
        (self.bytes.len() - self.pos.min(self.bytes.len())) as u64
    }

    pub(super) fn take(&mut self, n: u64, what: &str) -> Result<&'a [u8]> {
        let truncated = || GgufError::Truncated {
            what: what.to_string(),
            offset: self.pos as u64,
            needed: n,
            len: self.bytes.len() as u64,
        };
        let n_usize = usize::try_from(n).map_err(|_| truncated())?;
        let end = self.pos.checked_add(n_usize).ok_or_else(truncated)?;
        let out = self.bytes.get(self.pos..end).ok_or_else(truncated)?;
        self.pos = end;
        Ok(out)
    }

    pub(super) fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let b = self.take(N as u64, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }

    pub(super) fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    pub(super) fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A GGUF string: u64 length then that many UTF-8 bytes.
    pub(super) fn string(&mut self, what: &str) -> Result<String> {
        let len = self.u64(what)?;
        let at = self.pos as u64;
        let b = self.take(len, what)?;
        String::from_utf8(b.to_vec()).map_err(|_| GgufError::InvalidUtf8 {
            what: what.to_string(),
            offset: at,
        })
    }
}

fn read_tensor_info(c: &mut Cursor) -> Result<TensorInfo> {
    let name = c.string("tensor name")?;
    let bad = |shape: &[u64], reason: String| GgufError::BadShape {
        tensor: name.clone(),
        shape: shape.to_vec(),
        reason,
    };
    let n_dims = c.u32(&name)?;
    if n_dims > MAX_DIMS {
        return Err(bad(
            &[],
            format!("{n_dims} dimensions, at most {MAX_DIMS} allowed"),
        ));
    }
    let mut ne = Vec::with_capacity(n_dims as usize);
    for _ in 0..n_dims {
        ne.push(c.u64(&name)?);
    }
    let type_id = c.u32(&name)?;
    let offset = c.u64(&name)?;
    // ggml stores dimensions as int64: larger values are negative there and rejected.
    if ne.iter().any(|&d| d > i64::MAX as u64) {
        return Err(bad(&ne, "a dimension does not fit in int64".into()));
    }
    let dtype = GgmlType::from_id(type_id).ok_or_else(|| GgufError::UnknownType {
        tensor: name.clone(),
        type_id,
    })?;
    let n_elements = ne
        .iter()
        .try_fold(1u64, |a, &d| a.checked_mul(d))
        .ok_or_else(|| bad(&ne, "element count overflows".into()))?;
    let row = ne.first().copied().unwrap_or(1);
    if row % dtype.block_size() != 0 {
        return Err(bad(
            &ne,
            format!(
                "row length {row} is not a multiple of the {} block size {}",
                dtype.name(),
                dtype.block_size()
            ),
        ));
    }
    let n_bytes = dtype
        .bytes_for(n_elements)
        .ok_or_else(|| bad(&ne, "byte size overflows".into()))?;
    Ok(TensorInfo {
        name,
        ne,
        dtype,
        offset,
        n_bytes,
    })
}

impl Gguf {
    /// Parses the header, metadata and tensor directory of a GGUF v2/v3 file, checking that
    /// every tensor's data lies inside `bytes`.
    pub fn parse(bytes: &[u8]) -> Result<Gguf> {
        let mut c = Cursor { bytes, pos: 0 };
        let magic: [u8; 4] = c.array("magic")?;
        if &magic != b"GGUF" {
            return Err(GgufError::BadMagic { found: magic });
        }
        let version = c.u32("version")?;
        if version != 2 && version != 3 {
            return Err(GgufError::UnsupportedVersion(version));
        }
        let n_tensors = c.u64("tensor count")?;
        let n_kv = c.u64("metadata count")?;
        // A key/value pair takes at least 13 bytes (key length, type, 1-byte value).
        if n_kv > c.remaining() / 13 {
            return Err(GgufError::BadCount {
                what: "metadata key/value".into(),
                count: n_kv,
            });
        }
        let mut metadata: Vec<(String, Value)> = Vec::with_capacity(n_kv as usize);
        let mut keys = std::collections::HashSet::with_capacity(n_kv as usize);
        for _ in 0..n_kv {
            let key = c.string("metadata key")?;
            let type_at = c.pos as u64;
            let t = c.u32(&key)?;
            let value = read_value(&mut c, &key, t, type_at)?;
            if !keys.insert(key.clone()) {
                return Err(GgufError::DuplicateKey { key });
            }
            metadata.push((key, value));
        }
        let alignment = match metadata.iter().find(|(k, _)| k == "general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some((_, Value::U32(a))) => u64::from(*a),
            Some((k, v)) => {
                return Err(GgufError::WrongType {
                    key: k.clone(),
                    expected: "u32",
                    found: v.type_name(),
                })
            }
        };
        if alignment == 0 || !alignment.is_power_of_two() {
            return Err(GgufError::BadAlignment { alignment });
        }
        // A tensor info takes at least 24 bytes (name length, n_dims, type, offset).
        if n_tensors > c.remaining() / 24 {
            return Err(GgufError::BadCount {
                what: "tensor".into(),
                count: n_tensors,
            });
        }
        let mut tensors: Vec<TensorInfo> = Vec::with_capacity(n_tensors as usize);
        let mut names = std::collections::HashSet::with_capacity(n_tensors as usize);
        for _ in 0..n_tensors {
            let info = read_tensor_info(&mut c)?;
            if !names.insert(info.name.clone()) {
                return Err(GgufError::DuplicateTensor { tensor: info.name });
            }
            tensors.push(info);
        }
        let end_of_infos = c.pos as u64;
        let data_offset = end_of_infos.div_ceil(alignment).saturating_mul(alignment);
        let len = bytes.len() as u64;
        for t in &tensors {
            if t.offset % alignment != 0 {
                return Err(GgufError::Misaligned {
                    tensor: t.name.clone(),
                    offset: t.offset,
                    alignment,
                });
            }
            let end = data_offset
                .checked_add(t.offset)
                .and_then(|s| s.checked_add(t.n_bytes));
            if end.is_none_or(|e| e > len) {
                return Err(GgufError::TensorOutOfBounds {
                    tensor: t.name.clone(),
                    offset: data_offset.saturating_add(t.offset),
                    size: t.n_bytes,
                    len,
                });
            }
        }
        Ok(Gguf {
            version,
            metadata,
            tensors,
            alignment,
            data_offset,
        })
    }

    /// All metadata in file order.
    pub fn metadata_entries(&self) -> &[(String, Value)] {
        &self.metadata
    }

    /// The value of metadata key `key`, if present.
    pub fn metadata(&self, key: &str) -> Option<&Value> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Alignment of the data section (`general.alignment`, default 32).
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// Absolute byte offset of the data section.
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    /// The tensor directory in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// The tensor called `name`, if present.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// The raw data of `info` inside `bytes` (the bytes this file was parsed from).
    pub fn tensor_data<'b>(&self, bytes: &'b [u8], info: &TensorInfo) -> Result<&'b [u8]> {
        let out_of_bounds = || GgufError::TensorOutOfBounds {
            tensor: info.name.clone(),
            offset: self.data_offset.saturating_add(info.offset),
            size: info.n_bytes,
            len: bytes.len() as u64,
        };
        let start = self
            .data_offset
            .checked_add(info.offset)
            .ok_or_else(out_of_bounds)?;
        let end = start.checked_add(info.n_bytes).ok_or_else(out_of_bounds)?;
        let start = usize::try_from(start).map_err(|_| out_of_bounds())?;
        let end = usize::try_from(end).map_err(|_| out_of_bounds())?;
        bytes.get(start..end).ok_or_else(out_of_bounds)
    }

    /// Dequantizes tensor `name` to f32; returns its shape in Hugging Face order (`ne` reversed)
    /// and its values in row-major order.
    pub fn dequantize(&self, bytes: &[u8], name: &str) -> Result<(Vec<usize>, Vec<f32>)> {
        let info = self.tensor(name).ok_or_else(|| GgufError::MissingTensor {
            tensor: name.to_string(),
        })?;
        self.dequantize_info(bytes, info)
    }

    /// [`Gguf::dequantize`] for a tensor already looked up.
    pub fn dequantize_info(
        &self,
        bytes: &[u8],
        info: &TensorInfo,
    ) -> Result<(Vec<usize>, Vec<f32>)> {
        let data = self.tensor_data(bytes, info)?;
        if info.n_bytes == 0 {
            // Zero elements: dimensions may be anything, even beyond usize on 32-bit targets.
            return Ok((info.hf_shape(), Vec::new()));
        }
        let row = usize::try_from(info.ne.first().copied().unwrap_or(1)).map_err(|_| {
            GgufError::BadShape {
                tensor: info.name.clone(),
                shape: info.ne.clone(),
                reason: "row length does not fit in memory".into(),
            }
        })?;
        let values = dequant::dequantize(&info.name, info.dtype, row, data)?;
        Ok((info.hf_shape(), values))
    }

    /// `general.architecture`, e.g. `"llama"`.
    pub fn architecture(&self) -> Result<&str> {
        self.get_str("general.architecture")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::writer::{samples, GgufWriter};

    fn header(version: u32, n_tensors: u64, n_kv: u64) -> Vec<u8> {
        let mut b = b"GGUF".to_vec();
        b.extend(version.to_le_bytes());
        b.extend(n_tensors.to_le_bytes());
        b.extend(n_kv.to_le_bytes());
        b
    }

    fn string(b: &mut Vec<u8>, s: &str) {
        b.extend((s.len() as u64).to_le_bytes());
        b.extend(s.as_bytes());
    }

    /// A file with one tensor info `name` (`ne`, type id, offset) and `data_len` data bytes.
    fn one_tensor(ne: &[u64], type_id: u32, offset: u64, data_len: usize) -> Vec<u8> {
        let mut b = header(3, 1, 0);
        string(&mut b, "w");
        b.extend((ne.len() as u32).to_le_bytes());
        ne.iter().for_each(|d| b.extend(d.to_le_bytes()));
        b.extend(type_id.to_le_bytes());
        b.extend(offset.to_le_bytes());
        b.resize(b.len().div_ceil(32) * 32 + data_len, 0);
        b
    }

    #[test]
    fn tensor_data_and_dequantize_return_hf_order() {
        let bytes = samples::every_type();
        let g = Gguf::parse(&bytes).unwrap();
        let info = g.tensor("f32.weight").unwrap();
        assert_eq!(
            (info.ne.as_slice(), info.dtype, info.n_bytes),
            (&[2u64, 3][..], GgmlType::F32, 24)
        );
        assert_eq!(g.tensor_data(&bytes, info).unwrap().len(), 24);
        let (shape, v) = g.dequantize(&bytes, "f32.weight").unwrap();
        assert_eq!((shape, v), (vec![3, 2], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]));
        assert_eq!(
            g.dequantize(&bytes, "f16.weight").unwrap().1,
            vec![0.5, -1.0]
        );
        for t in g.tensors() {
            assert_eq!(t.offset % 32, 0, "{}", t.name);
            assert_eq!(
                g.dequantize(&bytes, &t.name).unwrap().1.len() as u64,
                t.n_elements()
            );
        }
        assert!(matches!(
            g.dequantize(&bytes, "nope"),
            Err(GgufError::MissingTensor { .. })
        ));
    }

    #[test]
    fn custom_alignment_moves_the_data_section() {
        let mut w = GgufWriter::new();
        w.add("general.alignment", Value::U32(64))
            .add_f32("a", &[1], &[7.0])
            .add_f32("b", &[1], &[8.0]);
        let bytes = w.to_bytes();
        let g = Gguf::parse(&bytes).unwrap();
        assert_eq!(
            (
                g.alignment(),
                g.data_offset() % 64,
                g.tensor("b").unwrap().offset
            ),
            (64, 0, 64)
        );
        assert_eq!(g.dequantize(&bytes, "b").unwrap().1, vec![8.0]);
        let mut w = GgufWriter::new();
        w.add("general.alignment", Value::U32(48));
        assert!(matches!(
            Gguf::parse(&w.to_bytes()),
            Err(GgufError::BadAlignment { alignment: 48 })
        ));
        let mut w = GgufWriter::new();
        w.add("general.alignment", Value::U64(64));
        assert!(matches!(
            Gguf::parse(&w.to_bytes()),
            Err(GgufError::WrongType { .. })
        ));
    }

    #[test]
    fn version_2_files_parse_and_other_versions_do_not() {
        let mut bytes = samples::minimal();
        bytes[4] = 2;
        assert_eq!(Gguf::parse(&bytes).unwrap().version, 2);
        for v in [1u8, 4] {
            bytes[4] = v;
            assert!(
                matches!(Gguf::parse(&bytes), Err(GgufError::UnsupportedVersion(x)) if x == v as u32)
            );
        }
        bytes[0] = b'X';
        assert!(matches!(
            Gguf::parse(&bytes),
            Err(GgufError::BadMagic { .. })
        ));
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let bytes = samples::every_type();
        for len in 0..bytes.len() {
            let err = Gguf::parse(&bytes[..len]);
            assert!(err.is_err(), "prefix of {len} bytes parsed");
        }
        // Cutting inside the last tensor info (43 bytes, ending at most 31 bytes before the data).
        let cut = Gguf::parse(&bytes).unwrap().data_offset() as usize - 40;
        let err = Gguf::parse(&bytes[..cut]).unwrap_err();
        assert!(
            matches!(err, GgufError::Truncated { len, .. } if len == cut as u64),
            "{err}"
        );
    }

    #[test]
    fn absurd_counts_are_rejected_before_allocating() {
        let b = header(3, 0, u64::MAX);
        assert!(matches!(
            Gguf::parse(&b),
            Err(GgufError::BadCount {
                count: u64::MAX,
                ..
            })
        ));
        let b = header(3, 1 << 40, 0);
        assert!(matches!(Gguf::parse(&b), Err(GgufError::BadCount { .. })));
        let mut b = header(3, 0, 1);
        string(&mut b, "k");
        b.extend(9u32.to_le_bytes()); // array
        b.extend(8u32.to_le_bytes()); // of strings
        b.extend((1u64 << 60).to_le_bytes());
        assert!(matches!(Gguf::parse(&b), Err(GgufError::BadCount { .. })));
        let mut b = header(3, 0, 1);
        string(&mut b, "k");
        b.extend(8u32.to_le_bytes());
        b.extend(u64::MAX.to_le_bytes()); // string length
        assert!(matches!(
            Gguf::parse(&b),
            Err(GgufError::Truncated {
                needed: u64::MAX,
                ..
            })
        ));
    }

    #[test]
    fn bad_tensor_infos_name_the_tensor() {
        let ok = one_tensor(&[32, 2], 8, 0, 68);
        assert!(Gguf::parse(&ok).is_ok());
        let cases = [
            one_tensor(&[32, 2], 99, 0, 68),
            one_tensor(&[1, 1, 1, 1, 1], 0, 0, 4),
            one_tensor(&[33], 8, 0, 68),
            one_tensor(&[u64::MAX / 2, 4], 0, 0, 0),
            one_tensor(&[32, 2], 8, 0, 67),
            one_tensor(&[32, 2], 8, 16, 200),
            one_tensor(&[32, 2], 8, u64::MAX - 31, 68),
        ];
        for (i, bytes) in cases.iter().enumerate() {
            let err = Gguf::parse(bytes).unwrap_err();
            let named = match &err {
                GgufError::UnknownType {
                    tensor,
                    type_id: 99,
                } => i == 0 && tensor == "w",
                GgufError::BadShape { tensor, .. } => (1..=3).contains(&i) && tensor == "w",
                GgufError::TensorOutOfBounds { tensor, .. } => (i == 4 || i == 6) && tensor == "w",
                GgufError::Misaligned {
                    tensor, offset: 16, ..
                } => i == 5 && tensor == "w",
                _ => false,
            };
            assert!(named, "case {i}: {err}");
        }
        let mut twice = GgufWriter::new();
        twice.add_f32("w", &[1], &[0.0]).add_f32("w", &[1], &[0.0]);
        assert!(matches!(
            Gguf::parse(&twice.to_bytes()),
            Err(GgufError::DuplicateTensor { .. })
        ));
    }

    #[test]
    fn zero_element_tensors_with_huge_dimensions_dequantize_to_nothing() {
        // Found by fuzzing: ne = [huge, 0] holds no data; its row size overflowed.
        let bytes = one_tensor(&[1 << 62, 0], 0, 0, 0);
        let g = Gguf::parse(&bytes).unwrap();
        let (shape, values) = g.dequantize(&bytes, "w").unwrap();
        assert_eq!((shape, values.len()), (vec![0, 1 << 62], 0));
    }

    #[test]
    fn tensor_data_is_bounds_checked_against_the_given_bytes() {
        let bytes = samples::every_type();
        let g = Gguf::parse(&bytes).unwrap();
        let info = g.tensors().last().unwrap();
        let err = g.tensor_data(&bytes[..bytes.len() - 1], info).unwrap_err();
        assert!(matches!(err, GgufError::TensorOutOfBounds { .. }), "{err}");
    }
}
