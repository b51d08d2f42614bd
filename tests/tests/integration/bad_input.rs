//! Broken model directories give errors that name the file and the tensor or field, never a
//! panic; other on-disk layouts (f16, bf16, sharded) load to the same model.

use std::path::{Path, PathBuf};

use kava::load::safetensors::{parse, serialize, StoreDtype};
use kava::load::HostTensor;
use kava::model::{ids_tensor, Capture};
use kava::{Backend, Error, Model};
use kava_tests::{assert_close, fixture, host, Expected};

/// A scratch copy of a fixture directory.
fn scratch(case: &str, tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kava-test-{}-{case}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(fixture(case)).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
    dir
}

fn tensors(dir: &Path) -> Vec<(String, HostTensor)> {
    let path = dir.join("model.safetensors");
    parse(&std::fs::read(&path).unwrap(), &path).unwrap().into_iter().collect()
}

fn write(dir: &Path, file: &str, tensors: &[(String, HostTensor)], dtype: StoreDtype) {
    std::fs::write(dir.join(file), serialize(tensors, dtype).unwrap()).unwrap();
}

fn load_err(dir: &Path) -> Error {
    Model::load(dir, &Backend::Cpu.device().unwrap()).expect_err("loading must fail")
}

#[test]
fn missing_tensor_names_file_and_tensor() {
    let dir = scratch("tiny-llama", "missing");
    let t: Vec<_> = tensors(&dir).into_iter().filter(|(n, _)| n != "model.layers.1.mlp.up_proj.weight").collect();
    write(&dir, "model.safetensors", &t, StoreDtype::F32);
    let e = load_err(&dir);
    assert!(matches!(e, Error::MissingTensor { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains("model.safetensors") && msg.contains("model.layers.1.mlp.up_proj.weight"), "{msg}");
}

#[test]
fn misshaped_tensor_names_expected_and_actual_shape() {
    let dir = scratch("tiny-qwen2", "shape");
    let mut t = tensors(&dir);
    let (_, k) = t.iter_mut().find(|(n, _)| n == "model.layers.0.self_attn.k_proj.weight").unwrap();
    *k = HostTensor::new(vec![8, 64], vec![0.0; 8 * 64]);
    write(&dir, "model.safetensors", &t, StoreDtype::F32);
    let msg = load_err(&dir).to_string();
    assert!(msg.contains("k_proj.weight") && msg.contains("[8, 64]") && msg.contains("[16, 64]"), "{msg}");
}

#[test]
fn non_finite_weights_are_rejected() {
    let dir = scratch("tiny-qwen2", "nan");
    let mut t = tensors(&dir);
    t.iter_mut().find(|(n, _)| n == "model.norm.weight").unwrap().1.data[3] = f32::NAN;
    write(&dir, "model.safetensors", &t, StoreDtype::F32);
    let msg = load_err(&dir).to_string();
    assert!(msg.contains("model.norm.weight") && msg.contains("non-finite"), "{msg}");
}

#[test]
fn bad_config_field_names_file_and_field() {
    let dir = scratch("tiny-llama", "config");
    let path = dir.join("config.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    v["num_key_value_heads"] = serde_json::json!("two");
    std::fs::write(&path, v.to_string()).unwrap();
    let msg = load_err(&dir).to_string();
    assert!(msg.contains("config.json") && msg.contains("num_key_value_heads"), "{msg}");

    std::fs::write(&path, b"{ not json").unwrap();
    let e = load_err(&dir);
    assert!(matches!(e, Error::Json { .. }) && e.to_string().contains("config.json"), "{e}");

    std::fs::remove_file(&path).unwrap();
    let e = load_err(&dir);
    assert!(matches!(e, Error::MissingFile { .. }) && e.to_string().contains("config.json"), "{e}");
}

#[test]
fn truncated_or_corrupt_safetensors_is_an_error_naming_the_file() {
    let dir = scratch("tiny-llama", "truncated");
    let path = dir.join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    for (what, broken) in [
        ("truncated data", bytes[..bytes.len() / 2].to_vec()),
        ("truncated header", bytes[..20].to_vec()),
        ("empty", vec![]),
        ("garbage header", {
            let mut b = bytes.clone();
            b[8..40].copy_from_slice(&[b'#'; 32]);
            b
        }),
        ("absurd header length", {
            let mut b = bytes.clone();
            b[..8].copy_from_slice(&u64::MAX.to_le_bytes());
            b
        }),
    ] {
        std::fs::write(&path, &broken).unwrap();
        let e = load_err(&dir);
        assert!(matches!(e, Error::Safetensors { .. }), "{what}: {e:?}");
        assert!(e.to_string().contains("model.safetensors"), "{what}: {e}");
    }
    std::fs::remove_file(&path).unwrap();
    let e = load_err(&dir);
    assert!(e.to_string().contains("model.safetensors"), "{e}");
}

#[test]
fn missing_or_corrupt_tokenizer_is_an_error_naming_it() {
    let dir = scratch("tiny-qwen2", "tokenizer");
    let path = dir.join("tokenizer.json");
    std::fs::write(&path, b"{\"model\": 3}").unwrap();
    let e = load_err(&dir);
    assert!(matches!(e, Error::Tokenizer { .. }) && e.to_string().contains("tokenizer.json"), "{e:?}");
    std::fs::remove_file(&path).unwrap();
    let e = load_err(&dir);
    assert!(matches!(e, Error::MissingFile { .. }) && e.to_string().contains("tokenizer.json"), "{e:?}");
}

fn logits(dir: &Path) -> Vec<f32> {
    let device = Backend::Cpu.device().unwrap();
    let model = Model::load(dir, &device).unwrap();
    let exp = Expected::load("tiny-llama");
    let m = &model.transformer;
    let out = m.forward(m.embed(ids_tensor(&[exp.prompt_ids(1)], &device)), None, &mut m.new_cache(1), &Capture::none());
    host(m.logits(out.hidden))
}

#[test]
fn f16_bf16_and_sharded_checkpoints_load_to_the_same_model() {
    let want = logits(&fixture("tiny-llama"));
    // Half precision weights are cast to the device's f32 on load: close, not equal.
    for (dtype, tol) in [(StoreDtype::F16, 2e-2), (StoreDtype::BF16, 1.5e-1)] {
        let dir = scratch("tiny-llama", &format!("{dtype:?}"));
        write(&dir, "model.safetensors", &tensors(&dir), dtype);
        assert_close(&format!("{dtype:?} logits"), &logits(&dir), &want, tol);
    }
    // Two shards plus the index file, as large HF checkpoints are stored.
    let dir = scratch("tiny-llama", "sharded");
    let t = tensors(&dir);
    std::fs::remove_file(dir.join("model.safetensors")).unwrap();
    let (a, b) = t.split_at(t.len() / 2);
    write(&dir, "model-00001-of-00002.safetensors", a, StoreDtype::F32);
    write(&dir, "model-00002-of-00002.safetensors", b, StoreDtype::F32);
    let mut map = serde_json::Map::new();
    for (name, _) in a {
        map.insert(name.clone(), "model-00001-of-00002.safetensors".into());
    }
    for (name, _) in b {
        map.insert(name.clone(), "model-00002-of-00002.safetensors".into());
    }
    std::fs::write(dir.join("model.safetensors.index.json"), serde_json::json!({"weight_map": map}).to_string()).unwrap();
    assert_eq!(logits(&dir), want, "sharded logits");
}
