//! The functions and classes JavaScript calls: `openEngine` → `Engine.loadModel` → `WebModel.solve`.
//! Methods that run for a while return a `Promise` (a future holding its own `Rc` handles, so
//! no borrow of a wasm-bindgen object outlives the call); errors reach JavaScript as `Error`s
//! with kava's message.

use std::path::Path;
use std::rc::Rc;

use js_sys::{Function, Promise};
use kava::burn::tensor::DType;
use kava::solve::SolveOptions;
use kava::{HfBytes, Mode, Model, ModelBytes, ModelConfig};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;
use web_time::Instant;

use crate::device::{self, Opened};
use crate::fetch::{fetch_bytes, FetchError};
use crate::report;

/// wasm32's address space: everything the CPU backend holds lives in it.
const WASM_MEMORY: u64 = 4 << 30;

#[wasm_bindgen(start)]
pub fn start() {
    // A panic in wasm is a trap with no message; send the message to the console first.
    std::panic::set_hook(Box::new(|info| web_sys::console::error_1(&format!("kava-web panicked: {info}").into())));
    static LOGGER: ConsoleLogger = ConsoleLogger;
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
}

/// `log` records to the browser console (warnings and errors with their console levels).
struct ConsoleLogger;

impl log::Log for ConsoleLogger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::Level::Info
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let msg = JsValue::from(format!("[{}] {}", record.target(), record.args()));
        match record.level() {
            log::Level::Error => web_sys::console::error_1(&msg),
            log::Level::Warn => web_sys::console::warn_1(&msg),
            _ => web_sys::console::log_1(&msg),
        }
    }

    fn flush(&self) {}
}

/// Opens the compute device. `backend`: `"auto"` (WebGPU, else the CPU), `"webgpu"` (same,
/// the fallback reason is reported) or `"cpu"`. Resolves to an [`Engine`].
#[wasm_bindgen(js_name = openEngine)]
pub async fn open_engine(backend: String) -> Result<Engine, JsError> {
    let want_webgpu = match backend.as_str() {
        "auto" | "webgpu" => true,
        "cpu" => false,
        other => return Err(JsError::new(&format!("unknown backend `{other}`: expected auto, webgpu or cpu"))),
    };
    Ok(Engine { opened: Rc::new(device::open(want_webgpu).await) })
}

/// An opened device.
#[wasm_bindgen]
pub struct Engine {
    opened: Rc<Opened>,
}

#[wasm_bindgen]
impl Engine {
    /// `"webgpu"` or `"cpu"`: the backend that runs.
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        self.opened.backend.into()
    }

    /// The adapter's description.
    #[wasm_bindgen(getter)]
    pub fn adapter(&self) -> String {
        self.opened.adapter.clone()
    }

    /// Why the CPU backend runs although WebGPU was wanted (`undefined` otherwise).
    #[wasm_bindgen(getter)]
    pub fn fallback(&self) -> Option<String> {
        self.opened.fallback.clone()
    }

    /// The largest buffer the WebGPU device binds, in bytes (`undefined` on the CPU).
    #[wasm_bindgen(getter, js_name = maxBufferBytes)]
    pub fn max_buffer_bytes(&self) -> Option<f64> {
        self.opened.max_binding.map(|b| b as f64)
    }

    /// Downloads the kava model directory at `url` (`config.json`, `model.safetensors`,
    /// `tokenizer.json`, optional `generation_config.json`, and `kava.json` +
    /// `kava.safetensors` for a KaVa model) and loads it onto the device.
    /// `onProgress(file, loadedBytes, totalBytes | null)` is called as bytes arrive. A model
    /// without `kava.json` gets untrained latents (`latents` M, `iterations` T; the CLI's
    /// defaults are 24 and 3), good for timing only. Resolves to a [`WebModel`].
    #[wasm_bindgen(js_name = loadModel)]
    pub fn load_model(&self, url: String, on_progress: Option<Function>, latents: usize, iterations: usize) -> Promise {
        let opened = self.opened.clone();
        future_to_promise(async move {
            let model = load(&opened, &url, on_progress.as_ref(), latents, iterations).await.map_err(|e| JsValue::from(JsError::new(&e)))?;
            Ok(JsValue::from(model))
        })
    }
}

/// A loaded model.
#[wasm_bindgen]
pub struct WebModel {
    model: Rc<Model>,
    backend: &'static str,
    info: serde_json::Value,
}

#[wasm_bindgen]
impl WebModel {
    /// Architecture, size, download and latent settings (`latent.trained` is false for latents
    /// attached in the browser).
    pub fn info(&self) -> Result<JsValue, JsError> {
        to_js(&self.info)
    }

    /// Answers `question` in `mode` (`"latent"`, `"cot"` or `"nocot"`), greedily.
    /// `onToken(id, textSoFar)` streams every generated token; `showLatents` nearest
    /// vocabulary tokens are decoded per latent slot (0 = none); `maxCotTokens` caps a chain of
    /// thought (the CLI's default is 256); `maxAnswerTokens` caps the answer after `<eot> P`
    /// (latent) or `P` (No-CoT) (`undefined`: 16, the CLI's default). Resolves to the solution
    /// and its statistics — the fields of `kava solve --json`, plus `wall_ms`, the time to the
    /// answer.
    pub fn solve(
        &self,
        question: String,
        mode: String,
        on_token: Option<Function>,
        show_latents: usize,
        max_cot_tokens: usize,
        max_answer_tokens: Option<usize>,
    ) -> Promise {
        let model = self.model.clone();
        let backend = self.backend;
        future_to_promise(async move {
            let mode: Mode = mode.parse().map_err(|e: kava::Error| JsValue::from(JsError::new(&e.to_string())))?;
            let mut opts = SolveOptions { max_cot_tokens, show_latents, ..SolveOptions::default() };
            if let Some(n) = max_answer_tokens {
                opts.max_answer_tokens = n;
            }
            let t = Instant::now();
            let mut ids = Vec::new();
            let mut stream = |_row: usize, id: u32| {
                if let Some(f) = &on_token {
                    ids.push(id);
                    let text = model.tokenizer.decode(&ids, true).unwrap_or_default();
                    if let Err(e) = f.call2(&JsValue::NULL, &JsValue::from(id), &JsValue::from(text)) {
                        log::warn!("onToken threw: {e:?}");
                    }
                }
            };
            let mut solutions = model
                .solve_batch_async(&[question.as_str()], mode, &opts, &mut stream)
                .await
                .map_err(|e| JsValue::from(JsError::new(&e.to_string())))?;
            let wall_ms = t.elapsed().as_secs_f64() * 1e3;
            to_js(&report::solution(&solutions.remove(0), backend, wall_ms)).map_err(JsValue::from)
        })
    }
}

fn to_js(v: &serde_json::Value) -> Result<JsValue, JsError> {
    js_sys::JSON::parse(&v.to_string()).map_err(|e| JsError::new(&format!("JSON to JS: {e:?}")))
}

/// `url` + `file` with exactly one slash between them.
fn join(url: &str, file: &str) -> String {
    format!("{}/{file}", url.trim_end_matches('/'))
}

async fn get(url: &str, file: &str, on_progress: Option<&Function>, total: &mut u64) -> Result<Vec<u8>, FetchError> {
    let full = join(url, file);
    let mut report = |loaded: u64, size: Option<u64>| {
        if let Some(f) = on_progress {
            let size = size.map_or(JsValue::NULL, |s| JsValue::from(s as f64));
            let _ = f.call3(&JsValue::NULL, &JsValue::from(file), &JsValue::from(loaded as f64), &size);
        }
    };
    let bytes = fetch_bytes(&full, &mut report).await?;
    *total += bytes.len() as u64;
    Ok(bytes)
}

/// A file that may be absent: `None` on 404.
async fn get_optional(url: &str, file: &str, on_progress: Option<&Function>, total: &mut u64) -> Result<Option<Vec<u8>>, FetchError> {
    match get(url, file, on_progress, total).await {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

async fn load(opened: &Opened, url: &str, on_progress: Option<&Function>, latents: usize, iterations: usize) -> Result<WebModel, String> {
    let t = Instant::now();
    let source = Path::new(url);
    let mut downloaded = 0u64;
    let config = get(url, "config.json", on_progress, &mut downloaded).await.map_err(|e| e.to_string())?;
    // Refuse a model the device cannot hold before downloading its weights.
    let cfg = ModelConfig::from_json_bytes(&config, &source.join("config.json")).map_err(|e| e.to_string())?;
    check_fits(opened, &cfg)?;
    let generation_config = get_optional(url, "generation_config.json", on_progress, &mut downloaded).await.map_err(|e| e.to_string())?;
    let tokenizer = get(url, "tokenizer.json", on_progress, &mut downloaded).await.map_err(|e| e.to_string())?;
    let kava_json = get_optional(url, "kava.json", on_progress, &mut downloaded).await.map_err(|e| e.to_string())?;
    let uses_projection = match &kava_json {
        Some(bytes) => kava::LatentConfig::from_json_bytes(bytes, &source.join("kava.json")).map_err(|e| e.to_string())?.use_projection,
        None => false,
    };
    let kava_safetensors = if uses_projection {
        Some(get(url, "kava.safetensors", on_progress, &mut downloaded).await.map_err(|e| e.to_string())?)
    } else {
        None
    };
    let weights = get(url, "model.safetensors", on_progress, &mut downloaded).await.map_err(|e| e.to_string())?;
    let files = ModelBytes {
        hf: HfBytes { source, config: &config, generation_config: generation_config.as_deref(), weights: &weights, tokenizer: &tokenizer },
        kava_json: kava_json.as_deref(),
        kava_safetensors: kava_safetensors.as_deref(),
    };
    let mut model = Model::from_bytes(files, &opened.device).map_err(|e| e.to_string())?;
    drop(weights);
    let trained = model.latent.is_some();
    if !trained {
        log::warn!("{url} has no kava.json: attaching untrained latents (M = {latents}, T = {iterations}); timing only, answers are meaningless");
        model.attach_latents(latents, iterations, true).map_err(|e| e.to_string())?;
    }
    let load_ms = t.elapsed().as_secs_f64() * 1e3;
    let info = report::model(&model, url, downloaded, load_ms, trained);
    Ok(WebModel { model: Rc::new(model), backend: opened.backend, info })
}

/// Errors when one weight tensor exceeds the WebGPU device's largest binding, or the model
/// cannot fit in wasm32's 4 GiB (file bytes, host f32 copy and, on the CPU, the tensors).
fn check_fits(opened: &Opened, cfg: &ModelConfig) -> Result<(), String> {
    let dtype_bytes = DType::from(opened.device.settings().float_dtype).size() as u64;
    let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
    if let Some(limit) = opened.max_binding {
        let (name, elements) = report::largest_tensor(cfg);
        let bytes = elements * dtype_bytes;
        if bytes > limit {
            return Err(format!(
                "model too large for this GPU adapter: its {name} weight needs one {:.1} MiB buffer, but the adapter binds at most {:.1} MiB (maxStorageBufferBindingSize / maxBufferSize); pick a smaller model",
                mib(bytes),
                mib(limit)
            ));
        }
    }
    let params = report::parameters(cfg);
    let host = params * (4 + 4) + if opened.max_binding.is_none() { params * dtype_bytes } else { 0 };
    if host > WASM_MEMORY {
        return Err(format!(
            "model too large for the browser: {params} parameters need about {:.0} MiB of wasm memory while loading, more than wasm32's 4096 MiB",
            mib(host)
        ));
    }
    Ok(())
}
