//! Choosing the device in a browser: WebGPU through burn's async initialisation when the
//! browser offers an adapter, else burn's CPU backend (burn-flex, compiled into the wasm).

use kava::burn::tensor::wgpu::{WgpuBackend, WgpuSetup};
use kava::burn::tensor::Device;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// The device a page runs on, and why.
pub struct Opened {
    pub device: Device,
    /// `"webgpu"` or `"cpu"`.
    pub backend: &'static str,
    /// The adapter as the browser describes it (or the CPU backend's name).
    pub adapter: String,
    /// The largest buffer a kernel may bind: `min(maxStorageBufferBindingSize, maxBufferSize)` of
    /// the device burn opened. `None` on the CPU backend.
    pub max_binding: Option<u64>,
    /// Why the CPU backend runs, when WebGPU was wanted.
    pub fallback: Option<String>,
}

/// WebGPU when `want_webgpu` and the browser has an adapter; otherwise the CPU backend, with
/// the reason.
pub async fn open(want_webgpu: bool) -> Opened {
    if !want_webgpu {
        return cpu(None);
    }
    // wgpu panics (and a panic kills the wasm instance) when `navigator.gpu` is missing, so ask
    // the browser first; burn then requests its own adapter and device.
    if let Err(reason) = webgpu_adapter().await {
        return cpu(Some(reason));
    }
    match Device::wgpu_options().graphics_api(WgpuBackend::WebGpu).init_with_setup_async().await {
        Ok((device, setup)) => {
            let WgpuSetup { adapter, device: gpu, .. } = setup;
            let info = adapter.get_info();
            let limits = gpu.limits();
            let name = [info.name.as_str(), info.driver.as_str(), info.driver_info.as_str()]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" / ");
            Opened {
                device,
                backend: "webgpu",
                // Browsers may hide the adapter's name (Chromium does for SwiftShader).
                adapter: if name.is_empty() { format!("unnamed {:?}-type adapter", info.device_type) } else { name },
                max_binding: Some(limits.max_storage_buffer_binding_size.min(limits.max_buffer_size)),
                fallback: None,
            }
        }
        Err(e) => cpu(Some(format!("WebGPU device could not be opened: {e}"))),
    }
}

fn cpu(fallback: Option<String>) -> Opened {
    if let Some(reason) = &fallback {
        log::warn!("using the CPU backend: {reason}");
    }
    Opened { device: Device::flex(), backend: "cpu", adapter: "burn-flex (wasm32, CPU)".into(), max_binding: None, fallback }
}

/// Checks that `navigator.gpu` exists and gives an adapter; the error says what is missing.
async fn webgpu_adapter() -> Result<(), String> {
    let get = |obj: &JsValue, key: &str| js_sys::Reflect::get(obj, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED);
    let gpu = get(&get(&js_sys::global(), "navigator"), "gpu");
    if gpu.is_undefined() || gpu.is_null() {
        return Err("this browser has no WebGPU (navigator.gpu is missing: WebGPU disabled, unsupported, or not a secure context)".into());
    }
    let request = get(&gpu, "requestAdapter");
    let request: js_sys::Function = request.dyn_into().map_err(|_| "navigator.gpu.requestAdapter is not a function")?;
    let promise = request.call0(&gpu).map_err(|e| format!("navigator.gpu.requestAdapter() threw: {e:?}"))?;
    let adapter = JsFuture::from(js_sys::Promise::from(promise))
        .await
        .map_err(|e| format!("navigator.gpu.requestAdapter() failed: {e:?}"))?;
    if adapter.is_null() || adapter.is_undefined() {
        return Err("WebGPU is present but the browser offers no adapter (GPU blocklisted or disabled)".into());
    }
    Ok(())
}
