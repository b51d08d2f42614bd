//! Checkpoints: what a resumed run needs to continue exactly — the trainable values (adapters,
//! projection, the new token rows only), the AdamW moments and the step (data order and dropout
//! seeds derive from the seed and the step) — plus the configuration to check a resume against.
//!
//! Layout: `<dir>/checkpoint-<step>/{params.safetensors, optimizer.safetensors, state.json}`,
//! written into a temporary directory and renamed into place; `<dir>/latest` (replaced
//! atomically) names the newest. A crash at any point leaves the previous checkpoint intact.
//!
//! A checkpoint describes itself (`state.json`: step, schedule, configuration, the trainable
//! parameters and which of them have optimizer moments), and a restore checks all of it: the
//! configuration against the session's, the parameter list, every tensor present, of its shape
//! and finite, every moment present, finite (second moments ≥ 0). A damaged checkpoint is an
//! error naming its file and tensor, never a silent reset of what it should have restored.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use kava::api::write_atomic;
use kava::burn::module::{Module, ParamId};
use kava::burn::tensor::{Tensor, TensorData};
use kava::load::safetensors::{self as st, StoreDtype};
use kava::load::HostTensor;

use super::params::{self, Moments, ParamInfo};
use super::{Session, TrainError};
use crate::config::TrainConfig;

/// `state.json`.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct State {
    /// Optimizer steps taken.
    pub step: usize,
    pub total_steps: usize,
    pub new_rows_from: usize,
    /// The run's configuration (TOML).
    pub config: String,
    /// Names of the trainable parameters, in order.
    pub params: Vec<String>,
    /// Names of the parameters with AdamW moments in `optimizer.safetensors` (those that have
    /// had a gradient). Absent in checkpoints written before it was recorded: their moments are
    /// then checked pairwise only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moments: Option<Vec<String>>,
}

/// Reads and parses `<checkpoint>/state.json`.
pub fn read_state(ck: &Path) -> Result<State, TrainError> {
    let state_path = ck.join("state.json");
    let text = std::fs::read_to_string(&state_path).map_err(io(&state_path))?;
    serde_json::from_str(&text).map_err(|e| ck_err(&state_path, e.to_string()))
}

/// How many checkpoints to keep (the newest ones).
const KEEP: usize = 2;

/// The trainable part of a parameter: everything, or its new-token rows.
fn restrict(info: &ParamInfo, from: usize, full: &[f32]) -> (Vec<usize>, Vec<f32>) {
    match info.row_axis {
        None => (info.shape.clone(), full.to_vec()),
        Some(0) => {
            let (rows, cols) = (info.shape[0], info.shape[1]);
            (vec![rows - from, cols], full[from * cols..].to_vec())
        }
        Some(_) => {
            let (rows, cols) = (info.shape[0], info.shape[1]);
            let data = (0..rows)
                .flat_map(|r| full[r * cols + from..(r + 1) * cols].iter().copied())
                .collect();
            (vec![rows, cols - from], data)
        }
    }
}

/// Inverse of [`restrict`]: writes `part` into `base` (the current full value).
fn expand(info: &ParamInfo, from: usize, part: &[f32], mut base: Vec<f32>) -> Vec<f32> {
    match info.row_axis {
        None => part.to_vec(),
        Some(0) => {
            let cols = info.shape[1];
            base[from * cols..].copy_from_slice(part);
            base
        }
        Some(_) => {
            let (rows, cols) = (info.shape[0], info.shape[1]);
            let w = cols - from;
            for r in 0..rows {
                base[r * cols + from..(r + 1) * cols].copy_from_slice(&part[r * w..(r + 1) * w]);
            }
            base
        }
    }
}

fn ck_err(path: &Path, message: impl Into<String>) -> TrainError {
    TrainError::Checkpoint {
        path: path.into(),
        message: message.into(),
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io {
        path: path.into(),
        source,
    }
}

impl Session {
    fn current_values(&self) -> HashMap<usize, Vec<f32>> {
        let mut values = params::read_params(&self.model.transformer, &self.opt);
        if let Some(p) = self
            .model
            .latent
            .as_ref()
            .and_then(|r| r.projection.as_ref())
        {
            values.extend(params::read_params(p, &self.opt));
        }
        values
    }

    /// Writes `<dir>/checkpoint-<step>` and points `<dir>/latest` at it; returns its path.
    pub fn save_checkpoint(&self, dir: &Path) -> Result<PathBuf, TrainError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let step = self.opt.step as usize;
        let name = format!("checkpoint-{step:07}");
        let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
        let from = self.opt.new_rows_from;
        let values = self.current_values();
        let mut tensors = Vec::new();
        let mut moments = Vec::new();
        let mut with_moments = Vec::new();
        for (i, info) in self.opt.params.iter().enumerate() {
            let full = values.get(&i).ok_or_else(|| {
                ck_err(
                    dir,
                    format!("parameter `{}` is missing from the model", info.name),
                )
            })?;
            let (shape, data) = restrict(info, from, full);
            tensors.push((info.name.clone(), HostTensor::new(shape.clone(), data)));
            if let Some(m) = &self.opt.moments(i) {
                with_moments.push(info.name.clone());
                let (_, a) = restrict(info, from, &params::to_host(m.exp_avg.clone()));
                let (_, b) = restrict(info, from, &params::to_host(m.exp_avg_sq.clone()));
                moments.push((
                    format!("{}.exp_avg", info.name),
                    HostTensor::new(shape.clone(), a),
                ));
                moments.push((
                    format!("{}.exp_avg_sq", info.name),
                    HostTensor::new(shape, b),
                ));
            }
        }
        write_atomic(
            &tmp.join("params.safetensors"),
            &st::serialize(&tensors, StoreDtype::F32)?,
        )?;
        write_atomic(
            &tmp.join("optimizer.safetensors"),
            &st::serialize(&moments, StoreDtype::F32)?,
        )?;
        let state = State {
            step,
            total_steps: self.total_steps,
            new_rows_from: from,
            config: self.cfg.to_toml(),
            params: self.opt.params.iter().map(|p| p.name.clone()).collect(),
            moments: Some(with_moments),
        };
        write_atomic(
            &tmp.join("state.json"),
            serde_json::to_string_pretty(&state)
                .expect("json")
                .as_bytes(),
        )?;
        let final_dir = dir.join(&name);
        let _ = std::fs::remove_dir_all(&final_dir);
        std::fs::rename(&tmp, &final_dir).map_err(io(&final_dir))?;
        write_atomic(&dir.join("latest"), name.as_bytes())?;
        prune(dir, KEEP);
        Ok(final_dir)
    }

    /// Restores a checkpoint (a `checkpoint-*` directory, or a run directory whose `latest`
    /// names one) into this session, which must have been built from the same configuration
    /// (model, method, latents, adapters). Returns the step it continues after.
    pub fn load_checkpoint(&mut self, path: &Path) -> Result<usize, TrainError> {
        let ck = resolve(path)?;
        let state_path = ck.join("state.json");
        let state = read_state(&ck)?;
        let saved = TrainConfig::from_toml(&state.config, &state_path.display().to_string())
            .map_err(|e| ck_err(&state_path, e.to_string()))?;
        check_compatible(&saved, &self.cfg).map_err(|m| ck_err(&state_path, m))?;
        if state.new_rows_from != self.opt.new_rows_from {
            return Err(ck_err(
                &state_path,
                format!(
                    "new token rows start at {} in the checkpoint but {} here",
                    state.new_rows_from, self.opt.new_rows_from
                ),
            ));
        }
        let names: Vec<&str> = self.opt.params.iter().map(|p| p.name.as_str()).collect();
        if state.params != names {
            let first = state.params.iter().zip(&names).position(|(a, b)| a != b).unwrap_or(state.params.len().min(names.len()));
            return Err(ck_err(
                &state_path,
                format!(
                    "its {} trainable parameters are not this run's {} (first difference at #{first}: `{}` vs `{}`)",
                    state.params.len(),
                    names.len(),
                    state.params.get(first).map_or("(none)", String::as_str),
                    names.get(first).copied().unwrap_or("(none)")
                ),
            ));
        }
        if let Some(listed) = &state.moments {
            if let Some(unknown) = listed.iter().find(|n| !names.contains(&n.as_str())) {
                return Err(ck_err(&state_path, format!("lists moments for `{unknown}`, which is no trainable parameter")));
            }
        }
        let read =
            |file: &str| -> Result<std::collections::BTreeMap<String, HostTensor>, TrainError> {
                let p = ck.join(file);
                let bytes = std::fs::read(&p).map_err(io(&p))?;
                Ok(st::parse(&bytes, &p)?)
            };
        let tensors = read("params.safetensors")?;
        let moments = read("optimizer.safetensors")?;
        let from = self.opt.new_rows_from;
        let current = self.current_values();
        let mut new_values: HashMap<ParamId, Vec<f32>> = HashMap::new();
        let device = self.device.clone();
        let mut restored = Vec::with_capacity(self.opt.params.len());
        for (i, info) in self.opt.params.clone().iter().enumerate() {
            let file = ck.join("params.safetensors");
            let t = tensors
                .get(&info.name)
                .ok_or_else(|| ck_err(&file, format!("tensor `{}` is missing", info.name)))?;
            let (shape, _) = restrict(info, from, &current[&i]);
            check_shape(&file, &info.name, &t.shape, &shape)?;
            check_finite(&file, &info.name, &t.data, false)?;
            new_values.insert(info.id, expand(info, from, &t.data, current[&i].clone()));
            let zeros = vec![0f32; info.shape.iter().product()];
            let opt_file = ck.join("optimizer.safetensors");
            let listed = state.moments.as_ref().map(|l| l.contains(&info.name));
            let moment = |suffix: &str| -> Result<Option<Tensor<1>>, TrainError> {
                let name = format!("{}.{suffix}", info.name);
                let Some(m) = moments.get(&name) else {
                    if listed == Some(true) {
                        return Err(ck_err(&opt_file, format!("tensor `{name}` is missing (state.json lists `{}` as updated)", info.name)));
                    }
                    return Ok(None);
                };
                if listed == Some(false) {
                    return Err(ck_err(&opt_file, format!("holds `{name}`, but state.json lists `{}` as never updated", info.name)));
                }
                check_shape(&opt_file, &name, &m.shape, &shape)?;
                check_finite(&opt_file, &name, &m.data, suffix == "exp_avg_sq")?;
                let full = expand(info, from, &m.data, zeros.clone());
                let n = full.len();
                Ok(Some(Tensor::<1>::from_data(
                    TensorData::new(full, [n]),
                    &device,
                )))
            };
            restored.push(match (moment("exp_avg")?, moment("exp_avg_sq")?) {
                (Some(exp_avg), Some(exp_avg_sq)) => Some(Moments {
                    exp_avg,
                    exp_avg_sq,
                }),
                (None, None) => None,
                (a, _) => {
                    let missing = if a.is_none() { "exp_avg" } else { "exp_avg_sq" };
                    return Err(ck_err(&opt_file, format!("tensor `{}.{missing}` is missing (its other moment is there)", info.name)));
                }
            });
        }
        self.opt.set_moments(restored, &device);
        self.model.transformer = params::write_params(self.model.transformer.clone(), &new_values);
        if let Some(r) = self.model.latent.as_mut() {
            if let Some(p) = r.projection.take() {
                r.projection = Some(params::write_params(p, &new_values));
            }
        }
        self.opt.step = state.step as u64;
        Ok(state.step)
    }
}

/// An error naming `file` and the tensor if `data` holds NaN or an infinity (or, for a second
/// moment, a negative value: its square root is taken).
fn check_finite(file: &Path, name: &str, data: &[f32], non_negative: bool) -> Result<(), TrainError> {
    match data.iter().position(|x| !x.is_finite() || (non_negative && *x < 0.0)) {
        None => Ok(()),
        Some(i) => Err(ck_err(file, format!("tensor `{name}` holds {} at element {i}", data[i]))),
    }
}

/// An error naming `file` and the tensor unless `got == want`.
fn check_shape(file: &Path, name: &str, got: &[usize], want: &[usize]) -> Result<(), TrainError> {
    if got == want {
        return Ok(());
    }
    Err(ck_err(file, format!("tensor `{name}` has shape {got:?}, expected {want:?}")))
}

/// A checkpoint directory from a checkpoint or run directory.
pub fn resolve(path: &Path) -> Result<PathBuf, TrainError> {
    if path.join("state.json").exists() {
        return Ok(path.into());
    }
    let latest = path.join("latest");
    let name = std::fs::read_to_string(&latest).map_err(|_| {
        ck_err(
            path,
            "neither a checkpoint (no state.json) nor a run directory (no `latest`)",
        )
    })?;
    let ck = path.join(name.trim());
    if !ck.join("state.json").exists() {
        return Err(ck_err(
            &latest,
            format!("names `{}`, which has no state.json", name.trim()),
        ));
    }
    Ok(ck)
}

/// The fields a resume must agree on.
fn check_compatible(saved: &TrainConfig, now: &TrainConfig) -> Result<(), String> {
    let fields: [(&str, bool); 5] = [
        ("model", saved.model == now.model),
        ("method", saved.method == now.method),
        ("latent", saved.latent == now.latent),
        ("lora", saved.lora == now.lora),
        ("optim.seed", saved.optim.seed == now.optim.seed),
    ];
    match fields.iter().find(|(_, same)| !same) {
        Some((name, _)) => Err(format!("`{name}` differs from this run's configuration; resume with the checkpoint's configuration")),
        None => Ok(()),
    }
}

/// Removes all but the newest `keep` checkpoints of `dir`.
fn prune(dir: &Path, keep: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut cks: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("checkpoint-"))
        })
        .collect();
    cks.sort();
    let n = cks.len();
    for p in cks.into_iter().take(n.saturating_sub(keep)) {
        let _ = std::fs::remove_dir_all(p);
    }
}

/// Number of parameters of a module (for reports).
pub fn count<M: Module>(m: &M) -> usize {
    m.num_params()
}
