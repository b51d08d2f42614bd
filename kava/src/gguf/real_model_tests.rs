//! Tests on real GGUF files, found through `KAVA_SMOLLM2_GGUF` (SmolLM2-135M-Instruct Q4_1) and
//! `KAVA_QWEN2_GGUF` (Qwen2.5-Coder-0.5B-Instruct Q4_K_M); each test is skipped, saying why,
//! when its variable is unset.

use super::{hf_config, hf_tensors, tokenizer_from_gguf, GgmlType, Gguf};

fn model(var: &str) -> Option<Vec<u8>> {
    let Some(path) = std::env::var_os(var) else {
        eprintln!("skipped: set {var} to a GGUF file to run this test");
        return None;
    };
    Some(std::fs::read(&path).unwrap_or_else(|e| panic!("{var}={path:?}: {e}")))
}

/// `shared/data/tokenizer-cases.json` beside the repository (or `KAVA_TOKENIZER_CASES`).
fn tokenizer_cases() -> Option<Vec<(String, Vec<u32>)>> {
    let path = std::env::var("KAVA_TOKENIZER_CASES").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/data/tokenizer-cases.json"
        )
        .to_string()
    });
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!("skipped: no tokenizer cases at {path}");
        return None;
    };
    let json: serde_json::Value = serde_json::from_str(&text).expect("tokenizer cases JSON");
    let cases = json["cases"].as_array().expect("cases array");
    Some(
        cases
            .iter()
            .map(|c| {
                let ids = c["ids"]
                    .as_array()
                    .expect("ids")
                    .iter()
                    .map(|i| i.as_u64().expect("id") as u32)
                    .collect();
                (c["text"].as_str().expect("text").to_string(), ids)
            })
            .collect(),
    )
}

#[test]
fn smollm2_tokenizer_reproduces_the_reference_ids() {
    let (Some(bytes), Some(cases)) = (model("KAVA_SMOLLM2_GGUF"), tokenizer_cases()) else {
        return;
    };
    let g = Gguf::parse(&bytes).unwrap();
    let t = tokenizer_from_gguf(&g).unwrap();
    assert_eq!((t.bos_id, t.eos_id, t.add_bos), (Some(1), Some(2), false));
    let specials = (0..t.tokenizer.get_vocab_size(true) as u32)
        .filter(|&id| {
            t.tokenizer
                .get_added_vocabulary()
                .is_special_token(&t.tokenizer.id_to_token(id).unwrap_or_default())
        })
        .count();
    assert_eq!(specials, 17);
    let mut failures = Vec::new();
    for (text, want) in &cases {
        let got = t
            .tokenizer
            .encode(text.as_str(), false)
            .unwrap()
            .get_ids()
            .to_vec();
        if &got != want {
            failures.push(format!("{text:?}: got {got:?}, want {want:?}"));
        }
        assert_eq!(
            t.tokenizer.decode(&got, false).unwrap(),
            *text,
            "round trip"
        );
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn smollm2_maps_to_a_tied_llama_config_and_hf_tensors() {
    let Some(bytes) = model("KAVA_SMOLLM2_GGUF") else {
        return;
    };
    let g = Gguf::parse(&bytes).unwrap();
    let c = hf_config(&g, &bytes).unwrap();
    let fact = |k: &str| c[k].as_f64().unwrap_or(f64::NAN);
    assert_eq!(c["model_type"], "llama");
    assert_eq!(c["tie_word_embeddings"], true);
    assert_eq!(
        [
            fact("num_hidden_layers"),
            fact("hidden_size"),
            fact("num_attention_heads"),
            fact("num_key_value_heads")
        ],
        [30.0, 576.0, 9.0, 3.0]
    );
    assert_eq!(
        [
            fact("vocab_size"),
            fact("rope_theta"),
            fact("head_dim"),
            fact("intermediate_size")
        ],
        [49152.0, 100000.0, 64.0, 1536.0]
    );
    assert_eq!(fact("rms_norm_eps"), 1e-5);
    assert!(c.get("rope_scaling").is_none());
    assert_eq!(g.tensor("token_embd.weight").unwrap().dtype, GgmlType::Q8_0);
    assert_eq!(
        g.tensor("blk.0.attn_q.weight").unwrap().dtype,
        GgmlType::Q4_1
    );
    let mut n = 0;
    for t in hf_tensors(&g, &bytes).unwrap() {
        let (name, shape, data) = t.unwrap();
        assert_eq!(shape.iter().product::<usize>(), data.len(), "{name}");
        assert!(data.iter().all(|x| x.is_finite()), "{name}");
        n += 1;
    }
    assert_eq!(n, 2 + 30 * 9);
}

#[test]
fn qwen2_coder_tokenizer_round_trips_and_every_tensor_dequantizes() {
    let Some(bytes) = model("KAVA_QWEN2_GGUF") else {
        return;
    };
    let g = Gguf::parse(&bytes).unwrap();
    let t = tokenizer_from_gguf(&g).unwrap();
    assert_eq!((t.bos_id, t.eos_id), (Some(151643), Some(151645)));
    for text in [
        "def fib(n):\n    return n if n < 2 else fib(n-1) + fib(n-2)\n",
        "Hello, WORLD! It's 2024.",
        "naïve café 日本語 😀",
    ] {
        let ids = t.tokenizer.encode(text, false).unwrap().get_ids().to_vec();
        assert_eq!(t.tokenizer.decode(&ids, false).unwrap(), text);
    }
    let ids = t
        .tokenizer
        .encode("<|im_start|>user\n<tool_call>", false)
        .unwrap()
        .get_ids()
        .to_vec();
    assert_eq!(ids, [151644, 872, 198, 151657]);
    let c = hf_config(&g, &bytes).unwrap();
    assert_eq!(c["model_type"], "qwen2");
    assert_eq!(c["num_hidden_layers"], 24);
    assert_eq!(c["rope_theta"], 1000000.0);
    assert_eq!(c["rms_norm_eps"], 1e-6);
    let mut types = std::collections::BTreeSet::new();
    for info in g.tensors() {
        let (shape, data) = g.dequantize_info(&bytes, info).unwrap();
        assert_eq!(shape.iter().product::<usize>(), data.len(), "{}", info.name);
        assert!(data.iter().all(|x| x.is_finite()), "{}", info.name);
        types.insert(info.dtype.name());
    }
    assert_eq!(
        types.into_iter().collect::<Vec<_>>(),
        ["F32", "Q4_K", "Q5_0", "Q6_K", "Q8_0"]
    );
    assert_eq!(hf_tensors(&g, &bytes).unwrap().count(), 3 + 24 * 12);
}
