//! Acceptance on the two real pretrained models (issue: GGUF import). They are not in the repo:
//! `scripts/fetch-models.sh` fetches them; these tests run when `KAVA_SMOLLM2_GGUF` /
//! `KAVA_QWEN2_GGUF` point at the files and say so when they skip.

use std::path::PathBuf;

use kava::generate::{generate, GenerateOptions};
use kava::{Backend, Model, Tokenizer};

fn model_path(var: &str) -> Option<PathBuf> {
    match std::env::var_os(var) {
        Some(p) => Some(PathBuf::from(p)),
        None => {
            eprintln!("skipped: set {var} to the GGUF file (scripts/fetch-models.sh) to run this test");
            None
        }
    }
}

fn shared(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data").join(file)
}

fn chat(model: &Model, question: &str, n: usize) -> String {
    let ids = model.tokenizer.encode(&Tokenizer::chatml(question), true).unwrap();
    let opts = GenerateOptions { max_new_tokens: n, stop_tokens: model.stop_tokens.clone(), suppress: vec![] };
    let (rows, _) = generate(&model.transformer, &[ids], &opts, &mut |_, _| {}).unwrap();
    model.tokenizer.decode(&rows[0].ids, true).unwrap()
}

#[test]
fn smollm2_perplexity_chat_and_tokenizer_match_the_references() {
    let Some(path) = model_path("KAVA_SMOLLM2_GGUF") else { return };
    let model = Model::load(&path, &Backend::Cpu.device().unwrap()).unwrap();
    let text = std::fs::read_to_string(shared("ppl-paragraph.txt")).unwrap();
    let ids = model.tokenizer.encode(text.trim_end(), true).unwrap();
    assert_eq!(model.tokenizer.bos_added(), None, "SmolLM2 adds no BOS");
    let ppl = model.perplexity(&ids).unwrap();
    assert!((ppl - 17.17).abs() <= 0.05, "perplexity {ppl}, reference 17.17");
    let answer = chat(&model, "What is the capital of France?", 32);
    assert!(answer.contains("Paris"), "{answer}");
    let cases: serde_json::Value = serde_json::from_slice(&std::fs::read(shared("tokenizer-cases.json")).unwrap()).unwrap();
    let cases = cases.as_array().or_else(|| cases["cases"].as_array()).expect("a list of cases");
    for case in cases {
        let text = case["text"].as_str().or_else(|| case["string"].as_str()).expect("case text");
        let want: Vec<u32> = case["ids"].as_array().expect("ids").iter().map(|v| v.as_u64().unwrap() as u32).collect();
        assert_eq!(model.tokenizer.encode(text, false).unwrap(), want, "{text:?}");
    }
}

#[test]
fn qwen2_coder_loads_and_answers_coherently() {
    let Some(path) = model_path("KAVA_QWEN2_GGUF") else { return };
    let model = Model::load(&path, &Backend::Cpu.device().unwrap()).unwrap();
    let answer = chat(&model, "What is the capital of France? Answer in one word.", 8);
    assert!(answer.contains("Paris"), "{answer}");
}
