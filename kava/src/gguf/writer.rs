//! A minimal GGUF v3 writer to bytes, for building small test fixtures and fuzz seeds (the
//! inverse of the reader; it does not quantize: tensors are given as already-encoded bytes).

use super::dequant::GgmlType;
use super::metadata::{Array, Value};
use super::reader::DEFAULT_ALIGNMENT;

/// Collects metadata and tensors, then serialises them with [`GgufWriter::to_bytes`].
#[derive(Clone, Debug, Default)]
pub struct GgufWriter {
    metadata: Vec<(String, Value)>,
    tensors: Vec<(String, Vec<u64>, GgmlType, Vec<u8>)>,
}

impl GgufWriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a metadata entry (a `general.alignment` u32 entry sets the data alignment).
    pub fn add(&mut self, key: &str, value: Value) -> &mut Self {
        self.metadata.push((key.to_string(), value));
        self
    }

    /// Adds a tensor with dimensions `ne` (GGUF order) and already-encoded `data`.
    pub fn add_tensor(
        &mut self,
        name: &str,
        ne: &[u64],
        dtype: GgmlType,
        data: Vec<u8>,
    ) -> &mut Self {
        self.tensors
            .push((name.to_string(), ne.to_vec(), dtype, data));
        self
    }

    /// Adds an F32 tensor with dimensions `ne` (GGUF order).
    pub fn add_f32(&mut self, name: &str, ne: &[u64], values: &[f32]) -> &mut Self {
        let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.add_tensor(name, ne, GgmlType::F32, data)
    }

    fn alignment(&self) -> usize {
        let a = self
            .metadata
            .iter()
            .find_map(|(k, v)| match (k.as_str(), v) {
                ("general.alignment", Value::U32(a)) if a.is_power_of_two() => Some(*a as usize),
                _ => None,
            });
        a.unwrap_or(DEFAULT_ALIGNMENT as usize)
    }

    /// The GGUF v3 file.
    pub fn to_bytes(&self) -> Vec<u8> {
        let align = self.alignment();
        let mut out = b"GGUF".to_vec();
        out.extend(3u32.to_le_bytes());
        out.extend((self.tensors.len() as u64).to_le_bytes());
        out.extend((self.metadata.len() as u64).to_le_bytes());
        for (key, value) in &self.metadata {
            put_str(&mut out, key);
            out.extend(type_id(value).to_le_bytes());
            put_value(&mut out, value);
        }
        let mut offset = 0usize;
        for (name, ne, dtype, data) in &self.tensors {
            put_str(&mut out, name);
            out.extend((ne.len() as u32).to_le_bytes());
            for d in ne {
                out.extend(d.to_le_bytes());
            }
            out.extend(dtype.id().to_le_bytes());
            out.extend((offset as u64).to_le_bytes());
            offset += data.len().div_ceil(align) * align;
        }
        for (_, _, _, data) in &self.tensors {
            out.resize(out.len().div_ceil(align) * align, 0);
            out.extend(data);
        }
        out
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s.as_bytes());
}

fn type_id(v: &Value) -> u32 {
    match v {
        Value::U8(_) => 0,
        Value::I8(_) => 1,
        Value::U16(_) => 2,
        Value::I16(_) => 3,
        Value::U32(_) => 4,
        Value::I32(_) => 5,
        Value::F32(_) => 6,
        Value::Bool(_) => 7,
        Value::String(_) => 8,
        Value::Array(_) => 9,
        Value::U64(_) => 10,
        Value::I64(_) => 11,
        Value::F64(_) => 12,
    }
}

fn array_type_id(a: &Array) -> u32 {
    match a {
        Array::U8(_) => 0,
        Array::I8(_) => 1,
        Array::U16(_) => 2,
        Array::I16(_) => 3,
        Array::U32(_) => 4,
        Array::I32(_) => 5,
        Array::F32(_) => 6,
        Array::Bool(_) => 7,
        Array::String(_) => 8,
        Array::Array(_) => 9,
        Array::U64(_) => 10,
        Array::I64(_) => 11,
        Array::F64(_) => 12,
    }
}

fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::U8(x) => out.extend(x.to_le_bytes()),
        Value::I8(x) => out.extend(x.to_le_bytes()),
        Value::U16(x) => out.extend(x.to_le_bytes()),
        Value::I16(x) => out.extend(x.to_le_bytes()),
        Value::U32(x) => out.extend(x.to_le_bytes()),
        Value::I32(x) => out.extend(x.to_le_bytes()),
        Value::F32(x) => out.extend(x.to_le_bytes()),
        Value::Bool(x) => out.push(u8::from(*x)),
        Value::String(s) => put_str(out, s),
        Value::Array(a) => put_array(out, a),
        Value::U64(x) => out.extend(x.to_le_bytes()),
        Value::I64(x) => out.extend(x.to_le_bytes()),
        Value::F64(x) => out.extend(x.to_le_bytes()),
    }
}

fn put_array(out: &mut Vec<u8>, a: &Array) {
    out.extend(array_type_id(a).to_le_bytes());
    out.extend((a.len() as u64).to_le_bytes());
    match a {
        Array::U8(v) => out.extend(v),
        Array::I8(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
        Array::U16(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
        Array::I16(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
        Array::U32(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
        Array::I32(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
        Array::F32(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
        Array::Bool(v) => v.iter().for_each(|x| out.push(u8::from(*x))),
        Array::String(v) => v.iter().for_each(|s| put_str(out, s)),
        Array::Array(v) => v.iter().for_each(|a| put_array(out, a)),
        Array::U64(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
        Array::I64(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
        Array::F64(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
    }
}

/// Small GGUF files shared by the tests of this module and used as fuzz seeds.
#[cfg(test)]
pub(crate) mod samples {
    use super::*;

    /// One value of every metadata type, nested arrays, and a tensor of each dequantizable type.
    pub fn every_type() -> Vec<u8> {
        let mut w = GgufWriter::new();
        w.add("general.architecture", Value::String("llama".into()))
            .add("u8", Value::U8(200))
            .add("i8", Value::I8(-100))
            .add("u16", Value::U16(60000))
            .add("i16", Value::I16(-30000))
            .add("u32", Value::U32(4_000_000_000))
            .add("i32", Value::I32(-2_000_000_000))
            .add("f32", Value::F32(1.5))
            .add("bool", Value::Bool(true))
            .add("string", Value::String("héllo".into()))
            .add("u64", Value::U64(u64::MAX))
            .add("i64", Value::I64(i64::MIN))
            .add("f64", Value::F64(-2.25))
            .add(
                "strings",
                Value::Array(Array::String(vec!["a".into(), "".into(), "ü".into()])),
            )
            .add("i32s", Value::Array(Array::I32(vec![1, -2, 3])))
            .add(
                "nested",
                Value::Array(Array::Array(vec![
                    Array::U8(vec![1, 2]),
                    Array::Array(vec![Array::F64(vec![0.5])]),
                ])),
            );
        w.add_f32("f32.weight", &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        w.add_tensor(
            "f16.weight",
            &[2],
            GgmlType::F16,
            [half::f16::from_f32(0.5), half::f16::from_f32(-1.0)]
                .iter()
                .flat_map(|h| h.to_le_bytes())
                .collect(),
        );
        let sizes = [
            (GgmlType::Q4_0, 18),
            (GgmlType::Q4_1, 20),
            (GgmlType::Q5_0, 22),
            (GgmlType::Q5_1, 24),
            (GgmlType::Q8_0, 34),
        ];
        for (ty, size) in sizes {
            let block: Vec<u8> = (0..size)
                .map(|i| (i * 37 % 251) as u8 & if i < 2 { 0x3F } else { 0xFF })
                .collect();
            w.add_tensor(&format!("{}.weight", ty.name()), &[32], ty, block);
        }
        for (ty, size) in [
            (GgmlType::Q4_K, 144),
            (GgmlType::Q5_K, 176),
            (GgmlType::Q6_K, 210),
        ] {
            w.add_tensor(
                &format!("{}.weight", ty.name()),
                &[256],
                ty,
                vec![0x11; size],
            );
        }
        w.to_bytes()
    }

    pub const HIDDEN: usize = 8;
    pub const HEADS: usize = 2;
    pub const KV_HEADS: usize = 1;
    pub const HEAD_DIM: usize = 4;
    pub const FF: usize = 12;
    pub const LAYERS: usize = 2;
    pub const VOCAB: usize = 5;

    /// Distinct values so that any misplaced row shows.
    fn values(n: usize, seed: usize) -> Vec<f32> {
        (0..n).map(|i| (seed * 1000 + i) as f32).collect()
    }

    /// A tiny llama / qwen2 model written the way llama.cpp's converter writes it (llama q/k
    /// permuted). Returns the file and layer 0's HF-order q weight.
    pub fn tiny_model_writer(arch: &str, tied: bool) -> (GgufWriter, Vec<f32>) {
        let mut w = GgufWriter::new();
        let key = |k: &str| format!("{arch}.{k}");
        w.add("general.architecture", Value::String(arch.into()))
            .add(&key("block_count"), Value::U32(LAYERS as u32))
            .add(&key("context_length"), Value::U32(2048))
            .add(&key("embedding_length"), Value::U32(HIDDEN as u32))
            .add(&key("feed_forward_length"), Value::U32(FF as u32))
            .add(&key("attention.head_count"), Value::U32(HEADS as u32))
            .add(&key("attention.head_count_kv"), Value::U32(KV_HEADS as u32))
            .add(&key("rope.freq_base"), Value::F32(100000.0))
            .add(&key("attention.layer_norm_rms_epsilon"), Value::F32(1e-5))
            .add(
                "tokenizer.ggml.tokens",
                Value::Array(Array::String((0..VOCAB).map(|i| format!("t{i}")).collect())),
            )
            .add("tokenizer.ggml.bos_token_id", Value::U32(1))
            .add("tokenizer.ggml.eos_token_id", Value::U32(2));
        let permuted = arch == "llama";
        let mut seed = 0;
        let mut add = |w: &mut GgufWriter, name: &str, hf_shape: &[usize], heads: Option<usize>| {
            seed += 1;
            let n = hf_shape.iter().product();
            let hf = values(n, seed);
            let stored = match heads {
                Some(h) if permuted => crate::gguf::hf::permute_rows(&hf, hf_shape, h).unwrap(),
                _ => hf.clone(),
            };
            let ne: Vec<u64> = hf_shape.iter().rev().map(|&d| d as u64).collect();
            w.add_f32(name, &ne, &stored);
            hf
        };
        add(&mut w, "token_embd.weight", &[VOCAB, HIDDEN], None);
        add(&mut w, "output_norm.weight", &[HIDDEN], None);
        if !tied {
            add(&mut w, "output.weight", &[VOCAB, HIDDEN], None);
        }
        let mut q0 = Vec::new();
        for l in 0..LAYERS {
            let (q, kv) = (HEADS * HEAD_DIM, KV_HEADS * HEAD_DIM);
            let qw = add(
                &mut w,
                &format!("blk.{l}.attn_q.weight"),
                &[q, HIDDEN],
                Some(HEADS),
            );
            if l == 0 {
                q0 = qw;
            }
            add(
                &mut w,
                &format!("blk.{l}.attn_k.weight"),
                &[kv, HIDDEN],
                Some(KV_HEADS),
            );
            add(
                &mut w,
                &format!("blk.{l}.attn_v.weight"),
                &[kv, HIDDEN],
                None,
            );
            if arch == "qwen2" {
                add(&mut w, &format!("blk.{l}.attn_q.bias"), &[q], None);
                add(&mut w, &format!("blk.{l}.attn_k.bias"), &[kv], None);
                add(&mut w, &format!("blk.{l}.attn_v.bias"), &[kv], None);
            }
            add(
                &mut w,
                &format!("blk.{l}.attn_output.weight"),
                &[HIDDEN, q],
                None,
            );
            add(
                &mut w,
                &format!("blk.{l}.ffn_gate.weight"),
                &[FF, HIDDEN],
                None,
            );
            add(
                &mut w,
                &format!("blk.{l}.ffn_up.weight"),
                &[FF, HIDDEN],
                None,
            );
            add(
                &mut w,
                &format!("blk.{l}.ffn_down.weight"),
                &[HIDDEN, FF],
                None,
            );
            add(
                &mut w,
                &format!("blk.{l}.attn_norm.weight"),
                &[HIDDEN],
                None,
            );
            add(&mut w, &format!("blk.{l}.ffn_norm.weight"), &[HIDDEN], None);
        }
        (w, q0)
    }

    pub fn tiny_model(arch: &str, tied: bool) -> (Vec<u8>, Vec<f32>) {
        let (w, q0) = tiny_model_writer(arch, tied);
        (w.to_bytes(), q0)
    }

    /// Just a header and one key, no tensors.
    pub fn minimal() -> Vec<u8> {
        let mut w = GgufWriter::new();
        w.add("general.architecture", Value::String("llama".into()));
        w.to_bytes()
    }

    #[test]
    fn write_fuzz_seeds_when_asked() {
        // KAVA_GGUF_FUZZ_SEEDS=<dir> writes the seed corpus for kava/fuzz (not a file-system
        // test: it only runs on request).
        let Some(dir) = std::env::var_os("KAVA_GGUF_FUZZ_SEEDS") else {
            return;
        };
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir_all(&dir).expect("create seed dir");
        let files = [
            ("every_type.gguf", every_type()),
            ("minimal.gguf", minimal()),
            ("tiny_llama.gguf", tiny_model("llama", true).0),
            ("tiny_qwen2.gguf", tiny_model("qwen2", false).0),
            (
                "tiny_vocab.gguf",
                super::super::tokenizer::tests::tiny_vocab_file("smollm"),
            ),
        ];
        for (name, bytes) in files {
            std::fs::write(dir.join(name), bytes).expect("write seed");
        }
    }
}
