//! Recovers a Hugging Face `rope_scaling` object from GGUF: `{arch}.rope.scaling.*` metadata
//! (linear, yarn) or, for Llama 3.x, the `rope_freqs.weight` tensor that llama.cpp's converter
//! (`LlamaModel.generate_extra_tensors`) computes from the llama3 parameters instead of storing them.

use serde_json::{json, Value as Json};

use super::reader::Gguf;
use super::{GgufError, Result};

/// The llama3 parameters the converter defaults to when the HF config omits them.
const LLAMA3_DEFAULT_OLD_CONTEXT: f64 = 8192.0;
const LLAMA3_DEFAULT_LOW_FREQ_FACTOR: f64 = 1.0;
const LLAMA3_DEFAULT_HIGH_FREQ_FACTOR: f64 = 4.0;

/// An f32 from the file as the f64 with the shortest decimal form (1e-5f32 -> 1e-5, not
/// 9.999999747378752e-6), which is what the HF config held before conversion.
pub(crate) fn clean_f64(x: f32) -> f64 {
    format!("{x}").parse().unwrap_or(x as f64)
}

/// The llama3 per-frequency divisors, exactly as the converter computes them.
pub(crate) fn llama3_factors(
    theta: f64,
    head_dim: usize,
    factor: f64,
    low: f64,
    high: f64,
    old_ctx: f64,
) -> Vec<f64> {
    let (low_wavelen, high_wavelen) = (old_ctx / low, old_ctx / high);
    (0..head_dim / 2)
        .map(|k| {
            let freq = 1.0 / theta.powf((2 * k) as f64 / head_dim as f64);
            let wavelen = 2.0 * std::f64::consts::PI / freq;
            if wavelen < high_wavelen {
                1.0
            } else if wavelen > low_wavelen {
                factor
            } else {
                let smooth = (old_ctx / wavelen - low) / (high - low);
                1.0 / ((1.0 - smooth) / factor + smooth)
            }
        })
        .collect()
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Fits (factor, low_freq_factor, high_freq_factor) to llama.cpp's `rope_freqs` values and checks
/// that they reproduce them. In the smooth band 1/f = (1 - s)/factor + s with
/// s = (old_ctx/wavelen - low)/(high - low), which is linear in old_ctx/wavelen.
fn fit_llama3(freqs: &[f32], theta: f64, head_dim: usize, old_ctx: f64) -> Result<Json> {
    let bad = |reason: String| GgufError::BadShape {
        tensor: "rope_freqs.weight".into(),
        shape: vec![freqs.len() as u64],
        reason,
    };
    if freqs.len() != head_dim / 2 || freqs.iter().any(|f| !f.is_finite() || *f < 1.0 - 1e-4) {
        return Err(bad(format!(
            "expected {} finite factors >= 1 for head_dim {head_dim}",
            head_dim / 2
        )));
    }
    let factor = round3(freqs.iter().fold(1f32, |a, &b| a.max(b)) as f64);
    let mut points = Vec::new();
    for (k, &f) in freqs.iter().enumerate() {
        let f = f as f64;
        if factor > 1.0 && f > 1.0 + 1e-4 && f < factor - 1e-4 {
            let wavelen = 2.0 * std::f64::consts::PI * theta.powf((2 * k) as f64 / head_dim as f64);
            points.push((
                old_ctx / wavelen,
                (1.0 / f - 1.0 / factor) / (1.0 - 1.0 / factor),
            ));
        }
    }
    let (mut low, mut high) = (
        LLAMA3_DEFAULT_LOW_FREQ_FACTOR,
        LLAMA3_DEFAULT_HIGH_FREQ_FACTOR,
    );
    if let (Some(&(x0, s0)), Some(&(x1, s1))) = (points.first(), points.last()) {
        if points.len() >= 2 && (x1 - x0).abs() > 1e-12 {
            let a = (s1 - s0) / (x1 - x0);
            let b = s0 - a * x0;
            if a.abs() > 1e-12 {
                low = round3(-b / a);
                high = round3(low + 1.0 / a);
            }
        }
    }
    let want = llama3_factors(theta, head_dim, factor, low, high, old_ctx);
    let worst = want
        .iter()
        .zip(freqs)
        .map(|(w, &f)| ((w - f as f64) / w).abs())
        .fold(0.0, f64::max);
    if worst > 1e-3 {
        return Err(bad(format!("not a llama3 schedule (best fit factor {factor}, low {low}, high {high} is off by {worst:.2e})")));
    }
    Ok(json!({
        "rope_type": "llama3",
        "factor": factor,
        "low_freq_factor": low,
        "high_freq_factor": high,
        "original_max_position_embeddings": old_ctx as u64,
    }))
}

/// The HF `rope_scaling` for this model, or `None` when it uses plain RoPE. `rope_freqs` is the
/// dequantized `rope_freqs.weight` tensor when the file has one.
pub fn rope_scaling(
    g: &Gguf,
    arch: &str,
    theta: f32,
    head_dim: usize,
    rope_freqs: Option<&[f32]>,
) -> Result<Option<Json>> {
    let key = |k: &str| format!("{arch}.rope.scaling.{k}");
    let kind = g.opt_str(&key("type"))?;
    let factor = g.opt_f32(&key("factor"))?;
    let old_ctx = g.opt_u32(&key("original_context_length"))?;
    if let Some(freqs) = rope_freqs {
        let old = old_ctx.map_or(LLAMA3_DEFAULT_OLD_CONTEXT, f64::from);
        return fit_llama3(freqs, clean_f64(theta), head_dim, old).map(Some);
    }
    let need_factor = || {
        factor
            .map(clean_f64)
            .ok_or_else(|| GgufError::MissingKey { key: key("factor") })
    };
    match kind {
        None | Some("none") => Ok(None),
        Some("linear") => Ok(Some(
            json!({ "rope_type": "linear", "type": "linear", "factor": need_factor()? }),
        )),
        Some("yarn") => {
            let old = old_ctx.ok_or_else(|| GgufError::MissingKey {
                key: key("original_context_length"),
            })?;
            Ok(Some(
                json!({ "rope_type": "yarn", "type": "yarn", "factor": need_factor()?, "original_max_position_embeddings": old }),
            ))
        }
        Some(other) => Err(GgufError::BadValue {
            key: key("type"),
            reason: format!("unsupported rope scaling {other:?}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::metadata::Value;
    use crate::gguf::writer::GgufWriter;

    fn empty() -> Gguf {
        Gguf::parse(&GgufWriter::new().to_bytes()).unwrap()
    }

    #[test]
    fn llama_3_2_rope_freqs_recover_its_rope_scaling() {
        // Llama 3.2 1B: theta 500000, head_dim 64, factor 32, low 1, high 4, old context 8192.
        let freqs: Vec<f32> = llama3_factors(500000.0, 64, 32.0, 1.0, 4.0, 8192.0)
            .iter()
            .map(|&f| f as f32)
            .collect();
        let got = rope_scaling(&empty(), "llama", 500000.0, 64, Some(&freqs))
            .unwrap()
            .unwrap();
        let want = json!({"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192});
        assert_eq!(got, want);
    }

    #[test]
    fn other_llama3_parameters_are_fitted_too() {
        let freqs: Vec<f32> = llama3_factors(500000.0, 128, 8.0, 2.0, 8.0, 8192.0)
            .iter()
            .map(|&f| f as f32)
            .collect();
        let got = rope_scaling(&empty(), "llama", 500000.0, 128, Some(&freqs))
            .unwrap()
            .unwrap();
        assert_eq!(
            (
                got["factor"].as_f64(),
                got["low_freq_factor"].as_f64(),
                got["high_freq_factor"].as_f64()
            ),
            (Some(8.0), Some(2.0), Some(8.0))
        );
    }

    #[test]
    fn rope_freqs_that_are_not_a_llama3_schedule_are_rejected() {
        let freqs = vec![1.0f32, 3.0, 1.0, 2.0];
        assert!(matches!(
            rope_scaling(&empty(), "llama", 10000.0, 8, Some(&freqs)),
            Err(GgufError::BadShape { .. })
        ));
        assert!(rope_scaling(&empty(), "llama", 10000.0, 8, Some(&[1.0])).is_err());
    }

    #[test]
    fn linear_and_yarn_metadata_become_hf_rope_scaling() {
        assert_eq!(
            rope_scaling(&empty(), "llama", 1e4, 64, None).unwrap(),
            None
        );
        let mut w = GgufWriter::new();
        w.add("qwen2.rope.scaling.type", Value::String("yarn".into()))
            .add("qwen2.rope.scaling.factor", Value::F32(4.0))
            .add(
                "qwen2.rope.scaling.original_context_length",
                Value::U32(32768),
            );
        let g = Gguf::parse(&w.to_bytes()).unwrap();
        let got = rope_scaling(&g, "qwen2", 1e6, 64, None).unwrap().unwrap();
        assert_eq!(got["factor"], json!(4.0));
        assert_eq!(got["original_max_position_embeddings"], json!(32768));
        let mut w = GgufWriter::new();
        w.add("llama.rope.scaling.type", Value::String("linear".into()));
        let g = Gguf::parse(&w.to_bytes()).unwrap();
        assert!(matches!(
            rope_scaling(&g, "llama", 1e4, 64, None),
            Err(GgufError::MissingKey { .. })
        ));
    }

    #[test]
    fn f32_metadata_becomes_the_short_decimal() {
        assert_eq!(clean_f64(1e-5), 1e-5);
        assert_eq!(clean_f64(1e-6), 1e-6);
        assert_eq!(clean_f64(100000.0), 100000.0);
    }
}
