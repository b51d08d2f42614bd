//! Downloading model files with byte-level progress: `fetch`, then the response body read chunk
//! by chunk through its stream reader (a plain `arrayBuffer()` would report nothing until done).

use js_sys::{Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{ReadableStreamDefaultReader, Response};

/// Why a download failed, worded for the page.
#[derive(Debug)]
pub enum FetchError {
    /// The server answered with an error status (404 included).
    Status { url: String, status: u16, text: String },
    /// No answer at all: server down, wrong host, CORS, or an interrupted body.
    Network { url: String, problem: String },
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::Status { url, status, text } => write!(f, "download of {url} failed: HTTP {status} {text}"),
            FetchError::Network { url, problem } => {
                write!(f, "download of {url} failed: {problem} (is the server up, the URL right and CORS allowed?)")
            }
        }
    }
}

impl FetchError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, FetchError::Status { status: 404, .. })
    }
}

fn js_text(v: &JsValue) -> String {
    v.as_string().or_else(|| v.dyn_ref::<js_sys::Error>().map(|e| String::from(e.message()))).unwrap_or_else(|| format!("{v:?}"))
}

/// Downloads `url`; `on_progress(loaded, total)` after every chunk (`total` from
/// `Content-Length`, when the server sends it).
pub async fn fetch_bytes(url: &str, on_progress: &mut dyn FnMut(u64, Option<u64>)) -> Result<Vec<u8>, FetchError> {
    let network = |problem: String| FetchError::Network { url: url.to_string(), problem };
    let window = web_sys::window().ok_or_else(|| network("no window object (not running in a page)".into()))?;
    let response = JsFuture::from(window.fetch_with_str(url)).await.map_err(|e| network(js_text(&e)))?;
    let response: Response = response.dyn_into().map_err(|_| network("fetch did not return a Response".into()))?;
    if !response.ok() {
        return Err(FetchError::Status { url: url.to_string(), status: response.status(), text: response.status_text() });
    }
    let total = response
        .headers()
        .get("content-length")
        .ok()
        .flatten()
        .and_then(|s| s.trim().parse::<u64>().ok());
    let mut bytes = Vec::with_capacity(total.unwrap_or(0).min(1 << 32) as usize);
    on_progress(0, total);
    let Some(body) = response.body() else {
        return Ok(bytes);
    };
    let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    loop {
        let chunk = JsFuture::from(reader.read()).await.map_err(|e| network(js_text(&e)))?;
        let done = Reflect::get(&chunk, &JsValue::from_str("done")).map(|d| d.is_truthy()).unwrap_or(true);
        if done {
            break;
        }
        let value = Reflect::get(&chunk, &JsValue::from_str("value")).map_err(|e| network(js_text(&e)))?;
        let array: Uint8Array = value.dyn_into().map_err(|_| network("body chunk is not a Uint8Array".into()))?;
        let start = bytes.len();
        bytes.resize(start + array.length() as usize, 0);
        array.copy_to(&mut bytes[start..]);
        on_progress(bytes.len() as u64, total);
    }
    Ok(bytes)
}
