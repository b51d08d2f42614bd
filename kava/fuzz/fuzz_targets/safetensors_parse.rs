//! Fuzzes the safetensors reader (`kava::load::safetensors::parse`, what every HF weight file,
//! `kava.safetensors` and checkpoint goes through): it must never panic, and what it accepts
//! must hold as many values as its shape says; a round trip through `serialize` gives it back.
#![no_main]

#[allow(dead_code, unused_imports)]
#[path = "../../src/config.rs"]
mod config;
#[allow(dead_code, unused_imports)]
#[path = "../../src/error.rs"]
mod error;
#[allow(dead_code, unused_imports)]
#[path = "../../src/gguf/mod.rs"]
mod gguf;
#[allow(dead_code, unused_imports)]
#[path = "../../src/limits.rs"]
mod limits;
#[allow(dead_code, unused_imports)]
#[path = "../../src/load/mod.rs"]
mod load;
#[allow(dead_code, unused_imports)]
#[path = "../../src/tokenizer.rs"]
mod tokenizer;

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("model.safetensors");
    let Ok(tensors) = load::safetensors::parse(data, path) else { return };
    for (name, t) in &tensors {
        let n = t.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        assert_eq!(n, Some(t.data.len()), "{name}: shape {:?} for {} values", t.shape, t.data.len());
    }
    let list: Vec<(String, load::HostTensor)> = tensors.clone().into_iter().collect();
    let bytes = load::safetensors::serialize(&list, load::safetensors::StoreDtype::F32).expect("what parsed serialises");
    let back = load::safetensors::parse(&bytes, path).expect("what serialised parses");
    assert_eq!(back.len(), tensors.len());
    for (name, t) in &tensors {
        let b = &back[name];
        assert_eq!(b.shape, t.shape, "{name}");
        assert!(b.data.iter().zip(&t.data).all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan())), "{name}");
    }
});
