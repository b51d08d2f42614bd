//! Reading safetensors (single file or the sharded `model-*.safetensors` + index layout) into
//! host `f32` tensors. F32, F16 and BF16 are accepted; the device dtype cast happens on upload.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};

use super::{HostTensor, Weights};
use crate::error::{Error, Result};

/// Parses one safetensors buffer; `path` names it in errors. Works on bytes so that a file read
/// and a browser fetch feed the same function.
pub fn parse(bytes: &[u8], path: &Path) -> Result<BTreeMap<String, HostTensor>> {
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| Error::Safetensors { path: path.into(), problem: e.to_string() })?;
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        let shape = view.shape().to_vec();
        let raw = view.data();
        let data: Vec<f32> = match view.dtype() {
            Dtype::F32 => raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
            Dtype::F16 => raw
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            Dtype::BF16 => raw
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            other => {
                return Err(Error::TensorDtype { path: path.into(), tensor: name, dtype: format!("{other:?}") })
            }
        };
        out.insert(name, HostTensor { shape, data });
    }
    Ok(out)
}

/// Loads the weights of an HF model directory: `model.safetensors`, or the shards listed by
/// `model.safetensors.index.json`.
pub fn load_dir(dir: &Path) -> Result<Weights> {
    let single = dir.join("model.safetensors");
    let index = dir.join("model.safetensors.index.json");
    let files: Vec<PathBuf> = if single.exists() {
        vec![single]
    } else if index.exists() {
        shard_files(&index)?
    } else {
        return Err(Error::MissingFile { path: single, what: "model weights (or model.safetensors.index.json)" });
    };
    let mut weights = Weights::new(files[0].clone());
    for file in &files {
        let bytes = std::fs::read(file).map_err(|e| Error::io(file, e))?;
        for (name, t) in parse(&bytes, file)? {
            weights.insert(name, t, file.clone());
        }
    }
    Ok(weights)
}

fn shard_files(index: &Path) -> Result<Vec<PathBuf>> {
    let bytes = std::fs::read(index).map_err(|e| Error::io(index, e))?;
    let v: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|source| Error::Json { path: index.into(), source })?;
    let map = v
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| Error::config(index, "weight_map", "missing or not an object"))?;
    let dir = index.parent().unwrap_or(Path::new("."));
    let mut files: Vec<PathBuf> = Vec::new();
    for (tensor, file) in map {
        let file = file
            .as_str()
            .ok_or_else(|| Error::config(index, &format!("weight_map.{tensor}"), "expected a file name"))?;
        // A shard is a file beside the index: no folders, no way out of the model directory.
        if file.is_empty() || file == "." || file == ".." || file.contains(['/', '\\']) {
            return Err(Error::config(index, &format!("weight_map.{tensor}"), format!("`{file}` is not a file name in the model directory")));
        }
        let path = dir.join(file);
        if !files.contains(&path) {
            files.push(path);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(Error::config(index, "weight_map", "names no weight file"));
    }
    Ok(files)
}

/// The float formats kava writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreDtype {
    F32,
    F16,
    BF16,
}

/// Serialises named tensors as a safetensors buffer.
pub fn serialize(tensors: &[(String, HostTensor)], dtype: StoreDtype) -> Result<Vec<u8>> {
    let bufs: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(name, t)| {
            let bytes = match dtype {
                StoreDtype::F32 => t.data.iter().flat_map(|x| x.to_le_bytes()).collect(),
                StoreDtype::F16 => t.data.iter().flat_map(|x| half::f16::from_f32(*x).to_le_bytes()).collect(),
                StoreDtype::BF16 => t.data.iter().flat_map(|x| half::bf16::from_f32(*x).to_le_bytes()).collect(),
            };
            (name.clone(), t.shape.clone(), bytes)
        })
        .collect();
    let st_dtype = match dtype {
        StoreDtype::F32 => Dtype::F32,
        StoreDtype::F16 => Dtype::F16,
        StoreDtype::BF16 => Dtype::BF16,
    };
    let mut views = Vec::with_capacity(bufs.len());
    for (name, shape, bytes) in &bufs {
        let view = safetensors::tensor::TensorView::new(st_dtype, shape.clone(), bytes).map_err(|e| {
            Error::Safetensors { path: PathBuf::from("<memory>"), problem: format!("tensor `{name}`: {e}") }
        })?;
        views.push((name.clone(), view));
    }
    let metadata = Some(std::collections::HashMap::from([("format".to_string(), "pt".to_string())]));
    safetensors::serialize(views, metadata)
        .map_err(|e| Error::Safetensors { path: PathBuf::from("<memory>"), problem: e.to_string() })
}
