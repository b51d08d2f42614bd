//! kava's dequantisers against Python `gguf`'s on random blocks of every type, bit for bit. The
//! data comes from `scripts/gguf_crosscheck.py` (needs Python `gguf`); the test runs when
//! `KAVA_DQ_DIR` points at its output and says so when it skips.

use kava::gguf::{dequantize, GgmlType};

#[test]
fn dequantisers_match_python_gguf() {
    let Some(dir) = std::env::var_os("KAVA_DQ_DIR") else {
        eprintln!("skipped: run scripts/gguf_crosscheck.py DIR and set KAVA_DQ_DIR=DIR to run this test");
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let types = [
        GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0,
        GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K,
    ];
    for ty in types {
        let raw = std::fs::read(dir.join(format!("{}.bin", ty.name()))).unwrap();
        let want: Vec<f32> = std::fs::read(dir.join(format!("{}.f32", ty.name())))
            .unwrap()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let got = dequantize(ty.name(), ty, ty.block_size() as usize, &raw).unwrap();
        assert_eq!(got.len(), want.len(), "{}", ty.name());
        let exact = got.iter().zip(&want).filter(|(g, w)| g.to_bits() == w.to_bits()).count();
        eprintln!("{}: {exact}/{} values bit-exact", ty.name(), want.len());
        assert_eq!(exact, want.len(), "{} differs from Python gguf", ty.name());
    }
}
