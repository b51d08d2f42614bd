//! Fuzzes the GGUF reader: parsing must never panic, and what parses must keep its promises
//! (tensor data in bounds, dequantization sizes, HF mapping and tokenizer building not panicking).
#![no_main]

#[allow(dead_code, unused_imports)]
#[path = "../../src/gguf/mod.rs"]
mod gguf;

use libfuzzer_sys::fuzz_target;

/// Larger tensors are skipped to keep executions fast (sizes are bounded by the input anyway).
const MAX_DEQUANT_ELEMENTS: u64 = 1 << 16;

fuzz_target!(|data: &[u8]| {
    let Ok(g) = gguf::Gguf::parse(data) else { return };
    for info in g.tensors() {
        let bytes = g.tensor_data(data, info).expect("parse checked every tensor's bounds");
        assert_eq!(bytes.len() as u64, info.n_bytes);
        if info.n_elements() <= MAX_DEQUANT_ELEMENTS {
            match g.dequantize_info(data, info) {
                Ok((shape, values)) => {
                    assert_eq!(values.len() as u64, info.n_elements());
                    let ne: Vec<u64> = shape.iter().rev().map(|&d| d as u64).collect();
                    assert_eq!(ne, info.ne);
                }
                Err(e) => assert!(!info.dtype.can_dequantize(), "{}: {e}", info.name),
            }
        }
    }
    let _ = gguf::hf_config(&g, data);
    if let Ok(tensors) = gguf::hf_tensors(&g, data) {
        for t in tensors.take(8) {
            let _ = t;
        }
    }
    if let Ok(t) = gguf::tokenizer_from_gguf(&g) {
        if let Ok(enc) = t.tokenizer.encode("Hello 123 <|im_start|> wörld", false) {
            let _ = t.tokenizer.decode(enc.get_ids(), true);
        }
    }
});
