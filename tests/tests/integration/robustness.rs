//! Hostile inputs at the library boundary, generated from the fixtures: every field of
//! `config.json` and `kava.json` set to values it must refuse, bytes of every model file
//! corrupted or cut, tokenizers from elsewhere, GGUF metadata with NaN and out-of-range numbers,
//! damaged sharded layouts, prompts longer than the context. Each case must end in an error
//! naming the file and the field, tensor or value at fault — never a panic, never a model that
//! loads and answers wrong. (`kava/tests/robustness.rs` and `kava-train/tests/robustness.rs` run
//! the binaries on the same kinds of input.)

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use kava::solve::SolveOptions;
use kava::{Backend, GenerateOptions, HfBytes, Mode, Model, ModelBytes};
use kava_tests::fixture;
use serde_json::{json, Value};

/// The files of a model directory held in memory, fed to `Model::from_bytes` (the same parsers
/// and checks as `Model::load`).
#[derive(Clone)]
struct Files {
    config: Vec<u8>,
    generation_config: Option<Vec<u8>>,
    weights: Vec<u8>,
    tokenizer: Vec<u8>,
    kava_json: Option<Vec<u8>>,
    kava_safetensors: Option<Vec<u8>>,
}

impl Files {
    fn read(dir: &Path) -> Self {
        let opt = |name: &str| std::fs::read(dir.join(name)).ok();
        Files {
            config: std::fs::read(dir.join("config.json")).unwrap(),
            generation_config: opt("generation_config.json"),
            weights: std::fs::read(dir.join("model.safetensors")).unwrap(),
            tokenizer: std::fs::read(dir.join("tokenizer.json")).unwrap(),
            kava_json: opt("kava.json"),
            kava_safetensors: opt("kava.safetensors"),
        }
    }

    fn load(&self) -> kava::Result<Model> {
        let hf = HfBytes {
            source: Path::new("model-dir"),
            config: &self.config,
            generation_config: self.generation_config.as_deref(),
            weights: &self.weights,
            tokenizer: &self.tokenizer,
        };
        let bytes = ModelBytes { hf, kava_json: self.kava_json.as_deref(), kava_safetensors: self.kava_safetensors.as_deref() };
        Model::from_bytes(bytes, &Backend::Cpu.device().unwrap())
    }

    fn file_mut(&mut self, name: &str) -> &mut Vec<u8> {
        match name {
            "config.json" => &mut self.config,
            "generation_config.json" => self.generation_config.as_mut().unwrap(),
            "model.safetensors" => &mut self.weights,
            "tokenizer.json" => &mut self.tokenizer,
            "kava.json" => self.kava_json.as_mut().unwrap(),
            "kava.safetensors" => self.kava_safetensors.as_mut().unwrap(),
            other => panic!("no file {other}"),
        }
    }

    /// A copy with `edit` applied to the JSON of `file`.
    fn with_json(&self, file: &str, edit: impl FnOnce(&mut Value)) -> Self {
        let mut f = self.clone();
        let bytes = f.file_mut(file);
        let mut v: Value = serde_json::from_slice(bytes).unwrap();
        edit(&mut v);
        *bytes = serde_json::to_vec(&v).unwrap();
        f
    }

    /// A copy with the bytes of `file` replaced.
    fn with_bytes(&self, file: &str, bytes: Vec<u8>) -> Self {
        let mut f = self.clone();
        *f.file_mut(file) = bytes;
        f
    }
}

/// Sets `path` (dot-separated) in a JSON object, creating objects on the way.
fn set(v: &mut Value, path: &str, value: Value) {
    let mut cur = v;
    let parts: Vec<&str> = path.split('.').collect();
    for p in &parts[..parts.len() - 1] {
        cur = cur.as_object_mut().unwrap().entry(p.to_string()).or_insert(json!({}));
    }
    cur.as_object_mut().unwrap().insert(parts[parts.len() - 1].to_string(), value);
}

/// Runs the cases; each must fail (no panic) with an error containing every `want` string.
/// Returns the number of cases; panics listing every case that did not behave.
fn expect_errors<T>(label: &str, cases: Vec<(String, Box<dyn FnOnce() -> kava::Result<T> + '_>, Vec<String>)>) -> usize {
    let n = cases.len();
    let mut failures = Vec::new();
    for (name, run, want) in cases {
        match catch_unwind(AssertUnwindSafe(run)) {
            Err(p) => {
                let msg = p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
                failures.push(format!("{name}: PANICKED: {msg}"));
            }
            Ok(Ok(_)) => failures.push(format!("{name}: accepted")),
            Ok(Err(e)) => {
                let msg = e.to_string();
                if let Some(w) = want.iter().find(|w| !msg.contains(w.as_str())) {
                    failures.push(format!("{name}: error lacks `{w}`: {msg}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{label}: {} of {n} cases misbehaved:\n{}", failures.len(), failures.join("\n"));
    eprintln!("{label}: {n} cases, all refused with the expected message");
    n
}

type Case<'a> = (String, Box<dyn FnOnce() -> kava::Result<Model> + 'a>, Vec<String>);

fn case<'a>(name: String, files: Files, want: &[&str]) -> Case<'a> {
    (name, Box::new(move || files.load()), want.iter().map(|s| s.to_string()).collect())
}

/// Values no size field of `config.json` may take.
fn hostile_sizes() -> Vec<Value> {
    vec![json!(0), json!(-1), json!(1.5), json!("8"), json!(true), json!([]), json!({}), json!(1e300), json!(1u64 << 42)]
}

#[test]
fn config_json_fields_with_hostile_values_are_refused_by_name() {
    let base = Files::read(&fixture("tiny-llama"));
    let mut cases = Vec::new();
    for field in [
        "vocab_size",
        "hidden_size",
        "intermediate_size",
        "num_hidden_layers",
        "num_attention_heads",
        "num_key_value_heads",
        "head_dim",
        "max_position_embeddings",
    ] {
        for v in hostile_sizes() {
            let files = base.with_json("config.json", |c| set(c, field, v.clone()));
            cases.push(case(format!("{field} = {v}"), files, &["config.json", field]));
        }
    }
    // Floats: finite and in range, or refused naming the field.
    let floats: [(&str, &str, Vec<Value>); 6] = [
        ("rms_norm_eps", "rms_norm_eps", vec![json!(0), json!(-1e-5), json!(1.5), json!("1e-5"), json!(1e300), json!([])]),
        ("rope_parameters.rope_theta", "rope_theta", vec![json!(0), json!(-1), json!(1), json!(1e300), json!("x")]),
        ("rope_parameters.factor", "factor", vec![json!(0), json!(-8), json!(0.5), json!("8"), json!(1e300)]),
        ("rope_parameters.low_freq_factor", "low_freq_factor", vec![json!(0), json!(-1), json!("1")]),
        ("rope_parameters.high_freq_factor", "high_freq_factor", vec![json!(0), json!(1), json!(0.5), json!("4")]),
        ("rope_parameters.original_max_position_embeddings", "original_max_position_embeddings", vec![json!(0), json!(-16), json!(1e300)]),
    ];
    for (path, field, values) in floats {
        for v in values {
            let files = base.with_json("config.json", |c| set(c, path, v.clone()));
            cases.push(case(format!("{path} = {v}"), files, &["config.json", field]));
        }
    }
    for (field, v) in [
        ("eos_token_id", json!(320)),
        ("eos_token_id", json!(-1)),
        ("eos_token_id", json!(1u64 << 32)),
        ("eos_token_id", json!("0")),
        ("eos_token_id", json!([0, 999])),
        ("bos_token_id", json!(320)),
        ("bos_token_id", json!(-2)),
        ("model_type", json!("mistral")),
        ("model_type", json!(3)),
        ("hidden_act", json!("gelu")),
        ("mlp_bias", json!(true)),
        ("rope_parameters.rope_type", json!("yarn")),
        ("rope_parameters", json!("llama3")),
        ("tie_word_embeddings", json!("no")),
    ] {
        let files = base.with_json("config.json", |c| set(c, field, v.clone()));
        let name = field.rsplit('.').next().unwrap().to_string();
        cases.push(case(format!("{field} = {v}"), files, &["config.json", &name]));
    }
    let files = base.with_json("config.json", |c| {
        c.as_object_mut().unwrap().remove("model_type");
    });
    cases.push(case("model_type removed".into(), files, &["config.json", "model_type"]));
    let files = base.with_json("config.json", |c| *c = json!([1, 2]));
    cases.push(case("config is an array".into(), files, &["config.json", "<root>"]));
    // generation_config.json: stop ids must be ids of the model.
    for v in [json!(320), json!(-1), json!("x"), json!([0, 100000])] {
        let files = base.with_json("generation_config.json", |c| set(c, "eos_token_id", v.clone()));
        cases.push(case(format!("generation_config eos_token_id = {v}"), files, &["generation_config.json", "eos_token_id"]));
    }
    assert!(expect_errors("config.json", cases) >= 110);
}

/// Cuts and 0xFF bytes (never valid in JSON nor UTF-8) at spread positions of `bytes`.
fn damaged(bytes: &[u8], region: std::ops::Range<usize>) -> Vec<(String, Vec<u8>)> {
    let mut out = vec![("empty".to_string(), vec![])];
    let len = bytes.len();
    // The last cut drops the closing byte (a trailing newline would leave the file valid).
    let last = bytes.iter().rposition(|b| !b.is_ascii_whitespace()).unwrap_or(len);
    for cut in [1, 7, len / 3, len / 2, last] {
        if cut < len {
            out.push((format!("cut at {cut}"), bytes[..cut].to_vec()));
        }
    }
    let span = region.end - region.start;
    for k in 0..8 {
        let at = region.start + span * k / 8;
        let mut b = bytes.to_vec();
        b[at] = 0xFF;
        out.push((format!("0xFF at {at}"), b));
    }
    out
}

#[test]
fn every_model_file_cut_or_corrupted_is_an_error_naming_the_file() {
    let base = Files::read(&fixture("tiny-llama"));
    let mut cases = Vec::new();
    for file in ["config.json", "generation_config.json", "tokenizer.json"] {
        let bytes = base.clone().file_mut(file).clone();
        let len = bytes.len();
        for (what, b) in damaged(&bytes, 0..len) {
            cases.push(case(format!("{file}: {what}"), base.with_bytes(file, b), &[file]));
        }
    }
    // safetensors: the cuts anywhere (the data no longer matches the header), 0xFF in the header.
    let w = base.weights.clone();
    let header_end = 8 + u64::from_le_bytes(w[..8].try_into().unwrap()) as usize;
    for (what, b) in damaged(&w, 8..header_end) {
        cases.push(case(format!("model.safetensors: {what}"), base.with_bytes("model.safetensors", b), &["model.safetensors"]));
    }
    for cut in [header_end - 1, header_end, header_end + 4, w.len() - 4] {
        cases.push(case(format!("model.safetensors: cut at {cut}"), base.with_bytes("model.safetensors", w[..cut].to_vec()), &["model.safetensors"]));
    }
    let mut huge = w.clone();
    huge[..8].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
    cases.push(case("model.safetensors: absurd header length".into(), base.with_bytes("model.safetensors", huge), &["model.safetensors"]));
    // A tensor named in the header but stored as another dtype than kava reads.
    let header = String::from_utf8(w[8..header_end].to_vec()).unwrap();
    let first_f32 = header.find("\"F32\"").unwrap();
    let mut i64_header = w.clone();
    i64_header[8 + first_f32..8 + first_f32 + 5].copy_from_slice(b"\"I32\"");
    cases.push(case("model.safetensors: an I32 tensor".into(), base.with_bytes("model.safetensors", i64_header), &["model.safetensors", "dtype"]));
    assert!(expect_errors("corrupted files", cases) >= 60);
}

#[test]
fn a_tokenizer_that_does_not_belong_to_the_model_is_refused_naming_the_id() {
    let base = Files::read(&fixture("tiny-llama"));
    let mut cases = Vec::new();
    // The fixture's model has 320 embedding rows and its tokenizer 300 ids. (An added token's
    // id in tokenizer.json is not kept: the tokenizer numbers added tokens after its vocabulary.)
    for id in [320u64, 321, 504, 5000, 100_000, u32::MAX as u64 - 1] {
        let files = base.with_json("tokenizer.json", |t| {
            t["model"]["vocab"]["zzz"] = json!(id);
        });
        cases.push(case(format!("vocab entry id {id}"), files, &["tokenizer.json", &id.to_string(), "vocabulary of 320"]));
    }
    // 25 added tokens take ids 300..325, past the 320 rows.
    let files = base.with_json("tokenizer.json", |t| {
        for i in 0..25 {
            t["added_tokens"].as_array_mut().unwrap().push(json!({"id": 300 + i, "content": format!("<|x{i}|>"), "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}));
        }
    });
    cases.push(case("25 added tokens".into(), files, &["tokenizer.json", "vocabulary of 320"]));
    // The demo model's tokenizer (1 028 ids) on the fixture (320 rows).
    let demo = std::fs::read(fixture("tiny-llama").join("../../../kava/models/demo/tokenizer.json")).unwrap();
    cases.push(case("the demo model's tokenizer".into(), base.with_bytes("tokenizer.json", demo), &["tokenizer.json", "vocabulary of 320"]));
    // And the fixture's tokenizer on the demo model runs, but the demo's kava.json ids are then
    // no latent tokens of it.
    let demo_dir = fixture("tiny-llama").join("../../../kava/models/demo");
    let mut demo_files = Files::read(&demo_dir);
    demo_files.tokenizer = base.tokenizer.clone();
    cases.push(case("the fixture's tokenizer under the demo's kava.json".into(), demo_files, &["kava.json", "bot_id"]));
    assert!(expect_errors("mismatched tokenizer", cases) >= 8);
}

/// tiny-llama with latent tokens (M = 4, T = 2) and a projection, saved once.
fn latent_files() -> Files {
    let dir = std::env::temp_dir().join(format!("kava-robust-latent-{}", std::process::id()));
    let mut model = Model::load(fixture("tiny-llama"), &Backend::Cpu.device().unwrap()).unwrap();
    model.attach_latents(4, 2, true).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    model.save(&dir, kava::load::safetensors::StoreDtype::F32).unwrap();
    let files = Files::read(&dir);
    std::fs::remove_dir_all(&dir).ok();
    files
}

#[test]
fn kava_json_and_kava_safetensors_are_checked_against_the_model() {
    let base = latent_files();
    base.load().expect("the saved latent model loads");
    let ids: Value = serde_json::from_slice(base.kava_json.as_ref().unwrap()).unwrap();
    let bot = ids["bot_id"].as_u64().unwrap();
    let mut cases = Vec::new();
    let fields: [(&str, Vec<Value>); 9] = [
        ("num_latents", vec![json!(0), json!(-1), json!(100_000), json!("4"), json!(1.5)]),
        ("num_iterations", vec![json!(-1), json!(5000), json!("2"), json!(null)]),
        ("bot_id", vec![json!(320), json!(5), json!(bot + 1), json!(-1), json!("x")]),
        ("eot_id", vec![json!(320), json!(7), json!(bot), json!(1u64 << 33)]),
        ("lat_id", vec![json!(100_000), json!(0), json!(bot), json!(2.5)]),
        ("pad_id", vec![json!(320), json!(2), json!(bot)]),
        ("use_projection", vec![json!("yes"), json!(1)]),
        ("answer_prompt", vec![json!(""), json!("   "), json!(5)]),
        ("max_answer_tokens", vec![json!(0), json!(-1), json!(1e300), json!(1u64 << 40)]),
    ];
    for (field, values) in fields {
        for v in values {
            let files = base.with_json("kava.json", |c| set(c, field, v.clone()));
            cases.push(case(format!("kava.json {field} = {v}"), files, &["kava.json"]));
        }
    }
    let files = base.with_json("kava.json", |c| set(c, "num_iteration", json!(3)));
    cases.push(case("kava.json misspelt field".into(), files, &["kava.json", "num_iteration"]));
    let files = base.with_json("kava.json", |c| {
        c.as_object_mut().unwrap().remove("num_latents");
    });
    cases.push(case("kava.json without num_latents".into(), files, &["kava.json", "num_latents"]));
    let files = base.with_json("kava.json", |c| *c = json!([]));
    cases.push(case("kava.json is an array".into(), files, &["kava.json"]));
    let kj = base.kava_json.clone().unwrap();
    for (what, b) in damaged(&kj, 0..kj.len()) {
        cases.push(case(format!("kava.json: {what}"), base.with_bytes("kava.json", b), &["kava.json"]));
    }
    // The projection: missing file, missing tensors, wrong shapes, NaN, corrupt bytes.
    let mut no_proj = base.clone();
    no_proj.kava_safetensors = None;
    cases.push(case("kava.safetensors missing".into(), no_proj, &["kava.safetensors", "missing"]));
    let proj = kava::load::safetensors::parse(base.kava_safetensors.as_ref().unwrap(), Path::new("kava.safetensors")).unwrap();
    let write = |list: Vec<(String, kava::load::HostTensor)>| kava::load::safetensors::serialize(&list, kava::load::safetensors::StoreDtype::F32).unwrap();
    for name in kava::latent::projection::NAMES {
        let without: Vec<_> = proj.iter().filter(|(n, _)| n.as_str() != name).map(|(n, t)| (n.clone(), t.clone())).collect();
        cases.push(case(format!("kava.safetensors without {name}"), base.with_bytes("kava.safetensors", write(without)), &["kava.safetensors", name]));
        let mut bad: Vec<_> = proj.iter().map(|(n, t)| (n.clone(), t.clone())).collect();
        let t = &mut bad.iter_mut().find(|(n, _)| n == name).unwrap().1;
        t.data[0] = f32::NAN;
        cases.push(case(format!("kava.safetensors NaN in {name}"), base.with_bytes("kava.safetensors", write(bad.clone())), &["kava.safetensors", name, "non-finite"]));
        let t = &mut bad.iter_mut().find(|(n, _)| n == name).unwrap().1;
        *t = kava::load::HostTensor::new(vec![3], vec![0.0; 3]);
        cases.push(case(format!("kava.safetensors misshaped {name}"), base.with_bytes("kava.safetensors", write(bad)), &["kava.safetensors", name, "[3]"]));
    }
    let ks = base.kava_safetensors.clone().unwrap();
    let header_end = 8 + u64::from_le_bytes(ks[..8].try_into().unwrap()) as usize;
    for (what, b) in damaged(&ks, 8..header_end) {
        cases.push(case(format!("kava.safetensors: {what}"), base.with_bytes("kava.safetensors", b), &["kava.safetensors"]));
    }
    assert!(expect_errors("kava.json / kava.safetensors", cases) >= 80);
}

/// Overwrites the value of GGUF metadata `key` (a 4-byte scalar right after the key string and
/// its type) with `value`.
fn patch_gguf(bytes: &[u8], key: &str, value: [u8; 4]) -> Vec<u8> {
    let k = key.as_bytes();
    let at = bytes.windows(k.len()).position(|w| w == k).unwrap_or_else(|| panic!("no key {key}")) + k.len() + 4;
    let mut b = bytes.to_vec();
    b[at..at + 4].copy_from_slice(&value);
    b
}

#[test]
fn gguf_metadata_that_is_not_finite_or_out_of_range_is_refused_naming_the_key() {
    let gguf = super::gguf::to_gguf("tiny-qwen2");
    let dir = std::env::temp_dir().join(format!("kava-robust-gguf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let device = Backend::Cpu.device().unwrap();
    let mut cases: Vec<(String, Box<dyn FnOnce() -> kava::Result<Model>>, Vec<String>)> = Vec::new();
    let mut add = |name: String, bytes: Vec<u8>, want: &[&str]| {
        let path = dir.join(format!("case-{}.gguf", cases.len()));
        std::fs::write(&path, bytes).unwrap();
        let device = device.clone();
        let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
        want.push(path.display().to_string());
        cases.push((name, Box::new(move || Model::load(&path, &device)), want));
    };
    for (key, want) in [("qwen2.rope.freq_base", "rope_theta"), ("qwen2.attention.layer_norm_rms_epsilon", "rms_norm_eps")] {
        for (v, name) in [(f32::NAN, "NaN"), (f32::INFINITY, "inf"), (f32::NEG_INFINITY, "-inf")] {
            add(format!("{key} = {name}"), patch_gguf(&gguf, key, v.to_le_bytes()), &[key]);
        }
        for v in [0.0f32, -1.0, 1e30] {
            add(format!("{key} = {v}"), patch_gguf(&gguf, key, v.to_le_bytes()), &[want]);
        }
    }
    for (key, v, want) in [
        ("qwen2.context_length", 0u32, "max_position_embeddings"),
        ("qwen2.block_count", 0, "num_hidden_layers"),
        ("qwen2.block_count", 5000, "num_hidden_layers"),
        ("qwen2.embedding_length", 0, "hidden_size"),
        ("qwen2.feed_forward_length", 0, "intermediate_size"),
        ("qwen2.attention.head_count", 0, "head_count"),
        ("qwen2.attention.head_count_kv", 3, "head_count_kv"),
        ("tokenizer.ggml.eos_token_id", 100_000, "eos_token_id"),
    ] {
        add(format!("{key} = {v}"), patch_gguf(&gguf, key, v.to_le_bytes()), &[want]);
    }
    let len = gguf.len();
    for cut in [0, 3, 4, 8, 23, 100, len / 4, len / 2, len - 1] {
        add(format!("cut at {cut}"), gguf[..cut].to_vec(), &[]);
    }
    assert!(expect_errors("GGUF", cases) >= 29);
    std::fs::remove_dir_all(&dir).ok();
}

/// A scratch copy of a fixture directory.
fn scratch(case: &str, tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kava-robust-{}-{case}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(fixture(case)).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
    dir
}

#[test]
fn damaged_sharded_layouts_and_directories_are_refused_naming_the_file() {
    let device = Backend::Cpu.device().unwrap();
    let mut cases: Vec<(String, Box<dyn FnOnce() -> kava::Result<Model>>, Vec<String>)> = Vec::new();
    let index_file = "model.safetensors.index.json";
    for (tag, index, want) in [
        ("empty-map", json!({"weight_map": {}}), vec![index_file, "weight_map"]),
        ("no-map", json!({"metadata": {}}), vec![index_file, "weight_map"]),
        ("escape", json!({"weight_map": {"model.norm.weight": "../model.safetensors"}}), vec![index_file, "../model.safetensors"]),
        ("absolute", json!({"weight_map": {"model.norm.weight": "/etc/passwd"}}), vec![index_file, "/etc/passwd"]),
        ("missing-shard", json!({"weight_map": {"model.norm.weight": "model-00001-of-00002.safetensors"}}), vec!["model-00001-of-00002.safetensors"]),
        ("not-a-name", json!({"weight_map": {"model.norm.weight": 7}}), vec![index_file, "weight_map.model.norm.weight"]),
    ] {
        let dir = scratch("tiny-llama", tag);
        std::fs::remove_file(dir.join("model.safetensors")).unwrap();
        std::fs::write(dir.join(index_file), index.to_string()).unwrap();
        let device = device.clone();
        cases.push((format!("index {tag}"), Box::new(move || Model::load(&dir, &device)), want.into_iter().map(String::from).collect()));
    }
    for (tag, remove, want) in [("no-config", "config.json", "config.json"), ("no-tokenizer", "tokenizer.json", "tokenizer.json"), ("no-weights", "model.safetensors", "model.safetensors")] {
        let dir = scratch("tiny-qwen2", tag);
        std::fs::remove_file(dir.join(remove)).unwrap();
        let device = device.clone();
        cases.push((format!("{tag}"), Box::new(move || Model::load(&dir, &device)), vec![want.into(), "missing".into()]));
    }
    let dir = scratch("tiny-qwen2", "config-dir");
    std::fs::remove_file(dir.join("config.json")).unwrap();
    std::fs::create_dir(dir.join("config.json")).unwrap();
    let d = device.clone();
    cases.push(("config.json is a directory".into(), Box::new(move || Model::load(&dir, &d)), vec!["config.json".into()]));
    let not_model = std::env::temp_dir().join(format!("kava-robust-{}-notes.txt", std::process::id()));
    std::fs::write(&not_model, "notes").unwrap();
    let d = device.clone();
    cases.push(("a text file as model".into(), Box::new(move || Model::load(&not_model, &d)), vec!["notes.txt".into(), "HF model directory".into()]));
    assert!(expect_errors("directories", cases) >= 10);
    for entry in std::fs::read_dir(std::env::temp_dir()).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(&format!("kava-robust-{}-", std::process::id())) {
            let _ = std::fs::remove_dir_all(entry.path());
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[test]
fn prompts_past_the_context_and_absurd_sizes_are_refused_before_allocating() {
    let device = Backend::Cpu.device().unwrap();
    let mut model = Model::load(fixture("tiny-llama"), &device).unwrap();
    let long_text = "Natalia sold clips to her friends in April. ".repeat(80);
    let long_ids = model.tokenizer.encode(&long_text, true).unwrap();
    assert!(long_ids.len() > 512, "{} tokens", long_ids.len());
    let short = model.tokenizer.encode("Tom has 3 apples.", true).unwrap();
    {
        let m = &model;
        let cases: Vec<(String, Box<dyn FnOnce() -> kava::Result<()> + '_>, Vec<String>)> = vec![
            ("generate: a prompt past the context".into(), Box::new(|| kava::generate(&m.transformer, &[long_ids.clone()], &GenerateOptions::new(4), &mut |_, _| {}).map(drop)), vec!["prompt".into(), "512".into(), "max_position_embeddings".into()]),
            ("generate: 1 000 new tokens on 512 positions".into(), Box::new(|| kava::generate(&m.transformer, &[short.clone()], &GenerateOptions::new(1000), &mut |_, _| {}).map(drop)), vec!["up to 1000 new tokens".into(), "512".into()]),
            ("generate: an id past the vocabulary".into(), Box::new(|| kava::generate(&m.transformer, &[vec![1, 320]], &GenerateOptions::new(2), &mut |_, _| {}).map(drop)), vec!["320".into(), "vocabulary of 320".into()]),
            ("generate: no prompts".into(), Box::new(|| kava::generate(&m.transformer, &[], &GenerateOptions::new(2), &mut |_, _| {}).map(drop)), vec!["prompts".into()]),
            ("generate: an empty prompt".into(), Box::new(|| kava::generate(&m.transformer, &[vec![]], &GenerateOptions::new(2), &mut |_, _| {}).map(drop)), vec!["empty".into()]),
            ("perplexity of a text past the context".into(), Box::new(|| m.perplexity(&long_ids).map(drop)), vec!["perplexity".into(), "512".into()]),
            ("perplexity of one token".into(), Box::new(|| m.perplexity(&short[..1]).map(drop)), vec!["two tokens".into()]),
            ("solve cot: a question past the context".into(), Box::new(|| m.solve(&long_text, Mode::Cot, &SolveOptions::default()).map(drop)), vec!["question".into(), "512".into()]),
            ("solve cot: 600 chain-of-thought tokens".into(), Box::new(|| m.solve("Tom has 3 apples.", Mode::Cot, &SolveOptions { max_cot_tokens: 600, ..Default::default() }).map(drop)), vec!["up to 600 chain-of-thought tokens".into()]),
            ("solve nocot: a question past the context".into(), Box::new(|| m.solve(&long_text, Mode::NoCot, &SolveOptions::default()).map(drop)), vec!["512".into()]),
            ("solve latent without latents".into(), Box::new(|| m.solve("Tom has 3 apples.", Mode::Latent, &SolveOptions::default()).map(drop)), vec!["kava.json".into()]),
            ("solve: an empty question".into(), Box::new(|| m.solve("  ", Mode::Cot, &SolveOptions::default()).map(drop)), vec!["question".into(), "empty".into()]),
        ];
        assert!(expect_errors("context and sizes", cases) >= 12);
    }
    let mut cases: Vec<(String, Box<dyn FnOnce() -> kava::Result<()>>, Vec<String>)> = Vec::new();
    for (latents, iterations, want) in [(0usize, 2usize, "num_latents"), (5000, 2, "num_latents"), (4, 5000, "num_iterations"), (usize::MAX, 1, "num_latents")] {
        let device = device.clone();
        let attach = move || Model::load(fixture("tiny-llama"), &device)?.attach_latents(latents, iterations, true);
        cases.push((format!("attach_latents({latents}, {iterations})"), Box::new(attach), vec![want.into()]));
    }
    expect_errors("attach_latents", cases);
    model.attach_latents(400, 1, true).unwrap();
    let m = &model;
    let cases: Vec<(String, Box<dyn FnOnce() -> kava::Result<()> + '_>, Vec<String>)> = vec![
        ("solve latent: 400 latents + a long question".into(), Box::new(|| m.solve(&"Tom has 3 apples. ".repeat(20), Mode::Latent, &SolveOptions::default()).map(drop)), vec!["400 latents".into(), "512".into()]),
        ("solve_batch: the second question too long".into(), Box::new(|| m.solve_batch(&["A?", &long_text], Mode::NoCot, &SolveOptions::default(), &mut |_, _| {}).map(drop)), vec!["question 2 of the batch".into()]),
    ];
    expect_errors("latent context", cases);
}

#[test]
fn outputs_are_written_whole_or_refused() {
    let device = Backend::Cpu.device().unwrap();
    let model = Model::load(fixture("tiny-qwen2"), &device).unwrap();
    let root = std::env::temp_dir().join(format!("kava-robust-out-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    // A non-empty directory that holds no model is never replaced.
    let notes = root.join("notes");
    std::fs::create_dir_all(&notes).unwrap();
    std::fs::write(notes.join("todo.txt"), "keep me").unwrap();
    let e = model.save(&notes, kava::load::safetensors::StoreDtype::F32).unwrap_err().to_string();
    assert!(e.contains("notes") && e.contains("no config.json"), "{e}");
    assert_eq!(std::fs::read_to_string(notes.join("todo.txt")).unwrap(), "keep me");
    // Without --overwrite, a model directory is refused; with it, replaced whole: the stale
    // kava.json of an earlier KaVa export does not survive.
    let out = root.join("model");
    let mut latent = Model::load(fixture("tiny-qwen2"), &device).unwrap();
    latent.attach_latents(4, 1, true).unwrap();
    latent.save(&out, kava::load::safetensors::StoreDtype::F32).unwrap();
    assert!(out.join("kava.json").exists());
    let e = kava::api::check_output_dir(&out, false).unwrap_err().to_string();
    assert!(e.contains("model") && e.contains("--overwrite"), "{e}");
    kava::api::check_output_dir(&out, true).unwrap();
    model.save(&out, kava::load::safetensors::StoreDtype::F32).unwrap();
    assert!(!out.join("kava.json").exists() && !out.join("kava.safetensors").exists(), "a stale kava.json survived");
    assert!(Model::load(&out, &device).unwrap().latent.is_none());
    let leftovers: Vec<_> = std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().file_name()).filter(|n| n.to_string_lossy().starts_with('.')).collect();
    assert!(leftovers.is_empty(), "temporary directories left: {leftovers:?}");
    // A file where the directory should go.
    let file = root.join("file");
    std::fs::write(&file, "x").unwrap();
    let e = kava::api::check_output_dir(&file, true).unwrap_err().to_string();
    assert!(e.contains("not a directory"), "{e}");
    // A model with a NaN weight is refused before anything is written.
    let mut broken = Model::load(fixture("tiny-qwen2"), &device).unwrap();
    let w = broken.transformer.norm.weight.val();
    let [c] = w.dims();
    let mut v = kava_tests::host(w.clone());
    v[1] = f32::NAN;
    broken.transformer.norm.weight = kava::burn::module::Param::from_tensor(kava::burn::tensor::Tensor::<1>::from_data(kava::burn::tensor::TensorData::new(v, [c]), &device));
    let nan_out = root.join("nan");
    let e = broken.save(&nan_out, kava::load::safetensors::StoreDtype::F32).unwrap_err().to_string();
    assert!(e.contains("model.norm.weight") && e.contains("non-finite"), "{e}");
    assert!(!nan_out.exists(), "a refused save left a directory");
    std::fs::remove_dir_all(&root).ok();
}
