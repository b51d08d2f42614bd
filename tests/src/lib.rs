//! Shared helpers for the workspace-level integration tests: fixture paths, the expected
//! tensors HF transformers wrote (`tests/scripts/make_fixtures.py`), the devices to test on and
//! one `assert_close` that names the worst element.

use std::collections::BTreeMap;
use std::path::PathBuf;

use kava::burn::tensor::{Device, Tensor};
use kava::load::HostTensor;
use kava::Backend;

/// `tests/fixtures/<case>`.
pub fn fixture(case: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(case)
}

/// The fixture cases with HF reference outputs.
pub const CASES: [&str; 2] = ["tiny-llama", "tiny-qwen2"];

/// What transformers computed for one fixture.
pub struct Expected {
    pub tensors: BTreeMap<String, HostTensor>,
    pub meta: serde_json::Value,
}

impl Expected {
    pub fn load(case: &str) -> Self {
        let dir = fixture(case);
        let path = dir.join("expected.safetensors");
        let bytes = std::fs::read(&path).expect("fixture expected.safetensors");
        let tensors = kava::load::safetensors::parse(&bytes, &path).expect("parse expected.safetensors");
        let meta = serde_json::from_slice(&std::fs::read(dir.join("expected.json")).expect("expected.json"))
            .expect("expected.json is JSON");
        Self { tensors, meta }
    }

    pub fn get(&self, name: &str) -> &HostTensor {
        self.tensors.get(name).unwrap_or_else(|| panic!("expected tensor `{name}` missing"))
    }

    fn ids(&self, prompt: usize, key: &str) -> Vec<u32> {
        self.meta["prompts"][prompt][key]
            .as_array()
            .expect("ids array")
            .iter()
            .map(|v| v.as_u64().expect("id") as u32)
            .collect()
    }

    /// Prompt ids as the HF tokenizer produced them (special tokens added).
    pub fn prompt_ids(&self, prompt: usize) -> Vec<u32> {
        self.ids(prompt, "ids")
    }

    pub fn prompt_text(&self, prompt: usize) -> String {
        self.meta["prompts"][prompt]["text"].as_str().expect("text").to_string()
    }

    /// HF's greedy continuation.
    pub fn greedy(&self, prompt: usize) -> Vec<u32> {
        self.ids(prompt, "greedy")
    }

    pub fn n_prompts(&self) -> usize {
        self.meta["prompts"].as_array().map_or(0, Vec::len)
    }
}

/// The devices every parity test runs on: the CPU, and wgpu when compiled in. A missing
/// Vulkan driver fails the test (CI installs lavapipe) unless `KAVA_SKIP_WGPU=1` says so.
pub fn devices() -> Vec<(Backend, Device)> {
    let mut v = vec![(Backend::Cpu, Backend::Cpu.device().expect("cpu backend"))];
    if Backend::compiled().contains(&Backend::Wgpu) {
        if std::env::var("KAVA_SKIP_WGPU").is_ok_and(|v| v == "1") {
            eprintln!("KAVA_SKIP_WGPU=1: not testing on wgpu");
        } else {
            let device = Backend::Wgpu
                .probe()
                .expect("no wgpu device: install a Vulkan driver (apt-get install mesa-vulkan-drivers) or set KAVA_SKIP_WGPU=1");
            v.push((Backend::Wgpu, device));
        }
    }
    v
}

/// A tensor's values on the host.
pub fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().expect("f32 data")
}

/// Asserts `max |got − want| ≤ tol`, naming the worst element.
///
/// # Panics
/// On a length mismatch or a difference above `tol`.
pub fn assert_close(name: &str, got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "{name}: {} values, expected {}", got.len(), want.len());
    let (mut worst, mut at) = (0f32, 0usize);
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let d = (g - w).abs();
        if d > worst || d.is_nan() {
            worst = d;
            at = i;
            if d.is_nan() {
                break;
            }
        }
    }
    assert!(
        worst <= tol,
        "{name}: max |Δ| = {worst:e} > {tol:e} at flat index {at} (got {}, want {})",
        got[at],
        want[at]
    );
}

/// Largest absolute difference (for reporting).
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// Serialises the tests that draw from a backend's random-number generator (LoRA init, dropout):
/// burn seeds it per device or globally, so two such tests running at once would perturb each
/// other's draws and break exact-reproducibility checks.
pub fn rng_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The logits `[t, vocab]` (flattened) of one sequence through `model`, no cache kept.
pub fn logits(model: &kava::Model, ids: &[u32]) -> Vec<f32> {
    use kava::model::{ids_tensor, Capture};
    let m = &model.transformer;
    let device = m.device();
    let out = m.forward(m.embed(ids_tensor(&[ids.to_vec()], &device)), None, &mut m.new_cache(1), &Capture::none());
    host(m.logits(out.hidden))
}

/// Asserts each `(name, got, want)` agrees to `rel` relative to `max(|want|, floor)`.
pub fn assert_terms_close(label: &str, terms: &[(&str, f64, f64)], rel: f64, floor: f64) {
    for &(name, got, want) in terms {
        assert!(got.is_finite() && (got - want).abs() <= rel * want.abs().max(floor), "{label}: {name} {got} vs {want}");
    }
}
