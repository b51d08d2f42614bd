//! kava against HF transformers on the tiny fixtures, on every device: logits, per-layer
//! hidden states, per-layer post-RoPE K/V, greedy ids, and a padded batch.

use kava::burn::tensor::Device;
use kava::generate::{generate, GenerateOptions};
use kava::model::{ids_tensor, Capture};
use kava::{Backend, Model};
use kava_tests::{assert_close, devices, fixture, host, Expected, CASES};

const TOL: f32 = 1e-4;

fn check_prompt(case: &str, backend: Backend, device: &Device, model: &Model, exp: &Expected, p: usize) {
    let m = &model.transformer;
    let ids = exp.prompt_ids(p);
    let mut cache = m.new_cache(1);
    let out = m.forward(m.embed(ids_tensor(&[ids.clone()], device)), None, &mut cache, &Capture::all());
    let at = |what: &str| format!("{case}/{backend}/prompt {p}: {what}");
    assert_close(&at("logits"), &host(m.logits(out.hidden.clone())), &exp.get(&format!("logits.{p}")).data, TOL);
    assert_eq!(out.hidden_states.len(), m.config.num_hidden_layers + 1);
    for (l, h) in out.hidden_states.into_iter().enumerate() {
        assert_close(&at(&format!("hidden state {l}")), &host(h), &exp.get(&format!("hidden.{p}.{l}")).data, TOL);
    }
    for (l, (k, v)) in out.keys.into_iter().zip(out.values).enumerate() {
        assert_close(&at(&format!("keys of layer {l}")), &host(k), &exp.get(&format!("k.{p}.{l}")).data, TOL);
        assert_close(&at(&format!("values of layer {l}")), &host(v), &exp.get(&format!("v.{p}.{l}")).data, TOL);
    }
}

#[test]
fn logits_hidden_states_and_kv_match_transformers_on_every_device() {
    for case in CASES {
        let exp = Expected::load(case);
        for (backend, device) in devices() {
            let model = Model::load(fixture(case), &device).expect("load fixture");
            for p in 0..exp.n_prompts() {
                check_prompt(case, backend, &device, &model, &exp, p);
            }
        }
    }
}

#[test]
fn tokenizer_ids_match_the_hf_tokenizer() {
    for case in CASES {
        let exp = Expected::load(case);
        let model = Model::load(fixture(case), &Backend::Cpu.device().unwrap()).unwrap();
        for p in 0..exp.n_prompts() {
            assert_eq!(model.tokenizer.encode(&exp.prompt_text(p), true).unwrap(), exp.prompt_ids(p), "{case} prompt {p}");
        }
    }
}

#[test]
fn greedy_ids_equal_transformers_on_every_device() {
    for case in CASES {
        let exp = Expected::load(case);
        for (backend, device) in devices() {
            let model = Model::load(fixture(case), &device).unwrap();
            for p in 0..exp.n_prompts() {
                let want = exp.greedy(p);
                let opts = GenerateOptions::new(want.len());
                let (rows, stats) = generate(&model.transformer, &[exp.prompt_ids(p)], &opts, &mut |_, _| {}).unwrap();
                assert_eq!(rows[0].ids, want, "{case}/{backend} prompt {p}");
                // The prefill predicts the first token; every later one costs a pass.
                assert_eq!(stats.forward_passes, want.len() - 1);
            }
        }
    }
}

#[test]
fn padded_batch_gives_each_prompt_its_unpadded_result() {
    for case in CASES {
        let exp = Expected::load(case);
        for (backend, device) in devices() {
            let model = Model::load(fixture(case), &device).unwrap();
            let m = &model.transformer;
            let prompts: Vec<Vec<u32>> = (0..exp.n_prompts()).map(|p| exp.prompt_ids(p)).collect();
            let t = prompts.iter().map(Vec::len).max().unwrap();
            let ids: Vec<Vec<u32>> = prompts.iter().map(|p| kava::generate::pad_to(p, t, 0)).collect();
            let valid: Vec<Vec<bool>> = prompts.iter().map(|p| (0..t).map(|i| i < p.len()).collect()).collect();
            let mut cache = m.new_cache(prompts.len());
            let out = m.forward(m.embed(ids_tensor(&ids, &device)), Some(&valid), &mut cache, &Capture::none());
            let v = m.config.vocab_size;
            let logits = host(m.logits(out.hidden));
            for (p, prompt) in prompts.iter().enumerate() {
                let row = &logits[p * t * v..(p * t + prompt.len()) * v];
                assert_close(&format!("{case}/{backend} padded row {p}"), row, &exp.get(&format!("logits.{p}")).data, TOL);
            }
            // And batched greedy decoding equals HF's per-prompt greedy ids.
            let n = exp.greedy(0).len();
            let (rows, _) = generate(m, &prompts, &GenerateOptions::new(n), &mut |_, _| {}).unwrap();
            for (p, row) in rows.iter().enumerate() {
                assert_eq!(row.ids, exp.greedy(p), "{case}/{backend} batched greedy row {p}");
            }
        }
    }
}
