//! Latent reasoning invariants (method.md §2) on a tiny random model with latent tokens:
//! T = 0 is the pause-token path, T ≥ M reproduces the sequential chain, iterating past
//! convergence changes nothing, padding does not leak, the answer cache is what a from-scratch
//! forward gives, pass counting, and CPU = wgpu.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use kava::burn::tensor::{Device, Tensor};
use kava::load::safetensors::StoreDtype;
use kava::model::{ids_tensor, Capture};
use kava::solve::SolveOptions;
use kava::{Backend, HfBytes, Mode, Model, ModelBytes};
use kava_tests::{assert_close, devices, fixture, host};

const M: usize = 4;
const QUESTION: &str = "Natalia sold 48 clips in April and half as many in May.";
const SHORT: &str = "How many clips?";

/// tiny-llama with latent tokens and a projection, saved once so that every device loads the
/// very same weights (random initialisation differs between devices).
fn latent_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("kava-test-{}-latent-model", std::process::id()));
        let mut model = Model::load(fixture("tiny-llama"), &Backend::Cpu.device().unwrap()).unwrap();
        model.attach_latents(M, 3, true).unwrap();
        model.save(&dir, StoreDtype::F32).unwrap();
        dir
    })
}

fn model(device: &Device, t: usize) -> Model {
    let mut m = Model::load(latent_dir(), device).unwrap();
    m.attach_latents(M, t, true).unwrap();
    m
}

fn q_ids(model: &Model, q: &str) -> Vec<u32> {
    let mut ids: Vec<u32> = model.tokenizer.bos_added().into_iter().collect();
    ids.extend(model.tokenizer.encode(q, false).unwrap());
    ids
}

/// Next-token logits after `<eot> P` on the latent cache.
fn answer_logits(model: &Model, questions: &[Vec<u32>]) -> (kava::latent::Latents, Vec<f32>) {
    let r = model.latent.as_ref().unwrap();
    let m = &model.transformer;
    let device = m.device();
    let mut lat = r.reason(m, questions, &Capture::none());
    let mut tail = vec![r.config.eot_id];
    tail.extend(model.tokenizer.encode(&r.config.answer_prompt, false).unwrap());
    let rows = vec![tail.clone(); questions.len()];
    let out = m.forward(m.embed(ids_tensor(&rows, &device)), None, &mut lat.cache, &Capture::none());
    let logits = kava::generate::last_logits(m, out.hidden, &vec![tail.len(); questions.len()]);
    (lat, host(logits))
}

#[test]
fn model_with_latents_round_trips_through_kava_json() {
    let device = Backend::Cpu.device().unwrap();
    let m = Model::load(latent_dir(), &device).unwrap();
    let r = m.latent.as_ref().expect("kava.json loaded");
    assert_eq!(r.config.num_latents, M);
    assert!(r.projection.is_some());
    for id in r.config.special_ids() {
        assert!((id as usize) < m.transformer.config.vocab_size);
    }
    assert_eq!(m.tokenizer.token_id(kava::latent::BOT), Some(r.config.bot_id));
}

#[test]
fn t_zero_equals_the_pause_token_path() {
    let device = Backend::Cpu.device().unwrap();
    let model = model(&device, 0);
    let q = q_ids(&model, QUESTION);
    let (_, got) = answer_logits(&model, &[q.clone()]);
    // One pass over [BOS] Q <bot> <lat>×M <eot> P from scratch.
    let r = model.latent.as_ref().unwrap();
    let mut ids = q;
    ids.push(r.config.bot_id);
    ids.extend(std::iter::repeat_n(r.config.lat_id, M));
    ids.push(r.config.eot_id);
    ids.extend(model.tokenizer.encode(&r.config.answer_prompt, false).unwrap());
    let m = &model.transformer;
    let out = m.forward(m.embed(ids_tensor(&[ids.clone()], &device)), None, &mut m.new_cache(1), &Capture::none());
    let want = host(kava::generate::last_logits(m, out.hidden, &[ids.len()]));
    assert_close("T=0 answer logits vs pause tokens", &got, &want, 1e-4);
}

/// z_0 = proj(h_<bot>), z_j = proj(h at z_{j−1}), one position at a time.
fn sequential_chain(model: &Model, q: &[u32]) -> Vec<f32> {
    let r = model.latent.as_ref().unwrap();
    let m = &model.transformer;
    let device = m.device();
    let mut ids = q.to_vec();
    ids.push(r.config.bot_id);
    let mut cache = m.new_cache(1);
    let out = m.forward(m.embed(ids_tensor(&[ids.clone()], &device)), None, &mut cache, &Capture::none());
    let mut z = r.project(out.hidden.narrow(1, ids.len() - 1, 1));
    let mut chain = vec![z.clone()];
    for _ in 1..M {
        let out = m.forward(z, None, &mut cache, &Capture::none());
        z = r.project(out.hidden);
        chain.push(z.clone());
    }
    host(Tensor::cat(chain, 1))
}

#[test]
fn jacobi_with_t_ge_m_equals_sequential_chain() {
    let device = Backend::Cpu.device().unwrap();
    for t in [M, M + 2] {
        let model = model(&device, t);
        let q = q_ids(&model, QUESTION);
        let want = sequential_chain(&model, &q);
        let lat = model.latent.as_ref().unwrap().reason(&model.transformer, &[q], &Capture::none());
        assert_close(&format!("T={t}: latents fed to the last pass"), &host(lat.inputs), &want, 1e-5);
        assert_close(&format!("T={t}: one more Jacobi step"), &host(lat.next), &want, 1e-5);
        assert_eq!(lat.forward_passes, 1 + t);
    }
    // With fewer iterations than latents the chain is not reached: the test can tell.
    let model = model(&device, 1);
    let q = q_ids(&model, QUESTION);
    let lat = model.latent.as_ref().unwrap().reason(&model.transformer, &[q.clone()], &Capture::none());
    let diff = kava_tests::max_abs_diff(&host(lat.next), &sequential_chain(&model, &q));
    assert!(diff > 1e-3, "T=1 should differ from the chain, max diff {diff}");
}

#[test]
fn one_more_iteration_past_convergence_changes_nothing() {
    let device = Backend::Cpu.device().unwrap();
    let q = q_ids(&model(&device, M), QUESTION);
    let (_, a) = answer_logits(&model(&device, M), &[q.clone()]);
    let (_, b) = answer_logits(&model(&device, M + 1), &[q]);
    assert_close("answer logits at T=M vs T=M+1", &a, &b, 1e-5);
}

#[test]
fn latent_results_do_not_depend_on_padding_in_a_batch() {
    let device = Backend::Cpu.device().unwrap();
    let model = model(&device, 3);
    let (long, short) = (q_ids(&model, QUESTION), q_ids(&model, SHORT));
    let (alone, alone_logits) = answer_logits(&model, &[short.clone()]);
    let (batch, batch_logits) = answer_logits(&model, &[long, short]);
    let v = model.transformer.config.vocab_size;
    assert_close("short question's answer logits, alone vs padded", &batch_logits[v..], &alone_logits, 1e-4);
    let n = host(alone.inputs.clone()).len();
    assert_close("short question's latents, alone vs padded", &host(batch.inputs)[n..], &host(alone.inputs), 1e-4);
}

#[test]
fn answer_cache_after_jacobi_equals_a_from_scratch_forward() {
    let device = Backend::Cpu.device().unwrap();
    let model = model(&device, 3);
    let r = model.latent.as_ref().unwrap();
    let m = &model.transformer;
    let mut ids = q_ids(&model, QUESTION);
    ids.push(r.config.bot_id);
    let lat = r.reason(m, &[q_ids(&model, QUESTION)], &Capture::none());
    let embeds = Tensor::cat(vec![m.embed(ids_tensor(&[ids], &device)), lat.inputs.clone()], 1);
    let mut fresh = m.new_cache(1);
    m.forward(embeds, None, &mut fresh, &Capture::none());
    assert_eq!(fresh.len(), lat.cache.len());
    for l in 0..m.layers.len() {
        let (k0, v0) = lat.cache.layer(l).unwrap();
        let (k1, v1) = fresh.layer(l).unwrap();
        assert_close(&format!("layer {l} keys"), &host(k0.clone()), &host(k1.clone()), 1e-5);
        assert_close(&format!("layer {l} values"), &host(v0.clone()), &host(v1.clone()), 1e-5);
    }
}

#[test]
fn latent_keys_captured_before_rope_rotate_into_the_captured_latent_keys() {
    use kava::burn::tensor::{Int, TensorData};
    let device = Backend::Cpu.device().unwrap();
    // T = 0 captures in the init pass, T > 0 in the last Jacobi pass; a padded batch of two.
    for t in [0, 2] {
        let model = model(&device, t);
        let r = model.latent.as_ref().unwrap();
        let m = &model.transformer;
        let questions = [q_ids(&model, QUESTION), q_ids(&model, SHORT)];
        let capture = Capture { keys_values: true, keys_pre_rope: true, ..Capture::none() };
        let lat = r.reason(m, &questions, &capture);
        assert_eq!(lat.captured.keys_pre_rope.len(), m.layers.len(), "T = {t}");
        // Slot j of a row sits at position len(Q) + 1 + j: padding takes no position.
        let pos: Vec<i64> = questions.iter().flat_map(|q| (0..M).map(move |j| (q.len() + 1 + j) as i64)).collect();
        let pos = Tensor::<2, Int>::from_data(TensorData::new(pos, [2, M]), &device);
        let rope = kava::model::RopeAngles::new(pos, &kava::model::rope::inv_freq(&m.config), &device);
        for (l, (pre, post)) in lat.captured.keys_pre_rope.into_iter().zip(lat.captured.keys).enumerate() {
            assert_eq!(pre.dims(), [2, m.config.num_key_value_heads, M, m.config.head_dim]);
            assert_close(&format!("T = {t}, layer {l}: rotated latent keys"), &host(rope.apply(pre)), &host(post), 1e-5);
        }
    }
}

#[test]
fn forward_passes_follow_the_method_counts() {
    let device = Backend::Cpu.device().unwrap();
    let t = 3;
    let mut model = model(&device, t);
    model.stop_tokens.clear(); // decode exactly the limits
    let opts = SolveOptions { max_answer_tokens: 5, max_cot_tokens: 7, show_latents: 0, separate_answer_pass: false };
    let lat = model.solve(QUESTION, Mode::Latent, &opts).unwrap();
    assert_eq!(lat.stats.generated_tokens, 5);
    // Iteration T and `<eot> P` share a pass; the reference route counts method.md's 1 + T + n.
    assert_eq!(lat.stats.forward_passes, t + 5);
    let sep = model.solve(QUESTION, Mode::Latent, &SolveOptions { separate_answer_pass: true, ..opts }).unwrap();
    assert_eq!(sep.stats.forward_passes, 1 + t + 5);
    assert_eq!(sep.stats.kv_entries, lat.stats.kv_entries);
    let cot = model.solve(QUESTION, Mode::Cot, &opts).unwrap();
    assert_eq!(cot.stats.generated_tokens, 7);
    assert_eq!(cot.stats.forward_passes, 7, "the prompt pass emits the first CoT token");
    let nocot = model.solve(QUESTION, Mode::NoCot, &opts).unwrap();
    assert_eq!(nocot.stats.forward_passes, 5);
    // KV entries: every cached token × layers × KV heads.
    let c = &model.transformer.config;
    let q = q_ids(&model, QUESTION).len();
    let p = model.tokenizer.encode(kava::latent::ANSWER_PROMPT, false).unwrap().len();
    let per_token = c.num_hidden_layers * c.num_key_value_heads;
    // The cache holds everything fed: the last of the 5 answer tokens is never fed.
    assert_eq!(lat.stats.kv_entries, (q + 1 + M + 1 + p + 4) * per_token);
    assert_eq!(lat.stats.prompt_tokens, q + 1);
    let newline = model.tokenizer.encode("\n", false).unwrap().len();
    assert_eq!(cot.stats.kv_entries, (q + newline + 6) * per_token);
    assert_eq!(lat.stats.kv_bytes, lat.stats.kv_entries * 2 * c.head_dim * 4);
}

/// Inference runs Jacobi iteration T and `<eot> P` as one pass: the same answers as the two
/// passes method.md describes, batched with questions of different lengths, for T = 1 (no
/// iteration between the placeholder pass and the merged one) and T = 3; T = 0 has no iteration
/// to merge and keeps its count.
#[test]
fn the_merged_answer_pass_answers_like_separate_passes() {
    let device = Backend::Cpu.device().unwrap();
    for t in [0, 1, 3] {
        let mut model = model(&device, t);
        model.stop_tokens.clear(); // decode exactly the limit
        let opts = SolveOptions { max_answer_tokens: 8, max_cot_tokens: 8, show_latents: 2, separate_answer_pass: false };
        let merged = model.solve_batch(&[QUESTION, SHORT], Mode::Latent, &opts, &mut |_, _| {}).unwrap();
        let sep = SolveOptions { separate_answer_pass: true, ..opts };
        let separate = model.solve_batch(&[QUESTION, SHORT], Mode::Latent, &sep, &mut |_, _| {}).unwrap();
        for (a, b) in merged.iter().zip(&separate) {
            assert_eq!((&a.text, &a.latent_tokens), (&b.text, &b.latent_tokens), "T = {t}");
            assert_eq!(a.stats.forward_passes + usize::from(t > 0), b.stats.forward_passes, "T = {t}");
            assert_eq!(a.stats.kv_entries, b.stats.kv_entries, "T = {t}");
        }
    }
}

#[test]
fn latent_tokens_are_never_generated_and_latents_can_be_inspected() {
    let device = Backend::Cpu.device().unwrap();
    let model = model(&device, 3);
    let specials = model.latent.as_ref().unwrap().config.special_ids();
    let opts = SolveOptions { max_answer_tokens: 8, max_cot_tokens: 16, show_latents: 3, separate_answer_pass: false };
    let mut seen = vec![];
    let sol = model.solve_batch(&[QUESTION], Mode::Latent, &opts, &mut |_, id| seen.push(id)).unwrap().remove(0);
    assert!(seen.iter().all(|id| !specials.contains(id)), "{seen:?}");
    assert_eq!(sol.latent_tokens.len(), M);
    assert!(sol.latent_tokens.iter().all(|slot| slot.len() == 3 && slot.windows(2).all(|w| w[0].1 >= w[1].1)));
}

#[test]
fn latent_results_are_the_same_on_cpu_and_wgpu() {
    let q = [q_ids(&model(&Backend::Cpu.device().unwrap(), 3), QUESTION), q_ids(&model(&Backend::Cpu.device().unwrap(), 3), SHORT)];
    let mut results = vec![];
    for (backend, device) in devices() {
        let (lat, logits) = answer_logits(&model(&device, 3), &q);
        results.push((backend, host(lat.inputs), logits));
    }
    for (backend, inputs, logits) in &results[1..] {
        assert_close(&format!("{backend} latents vs cpu"), inputs, &results[0].1, 1e-4);
        assert_close(&format!("{backend} answer logits vs cpu"), logits, &results[0].2, 1e-4);
    }
}
/// The files of a model directory, by name, as a browser would fetch them.
fn read_dir_files(dir: &Path) -> HashMap<&'static str, Vec<u8>> {
    let names = ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "kava.json", "kava.safetensors"];
    names.iter().filter_map(|&n| std::fs::read(dir.join(n)).ok().map(|b| (n, b))).collect()
}

fn bytes_of<'a>(dir: &'a Path, files: &'a HashMap<&'static str, Vec<u8>>) -> ModelBytes<'a> {
    ModelBytes {
        hf: HfBytes {
            source: dir,
            config: &files["config.json"],
            generation_config: files.get("generation_config.json").map(Vec::as_slice),
            weights: files.get("model.safetensors").map_or(&[][..], Vec::as_slice),
            tokenizer: &files["tokenizer.json"],
        },
        kava_json: files.get("kava.json").map(Vec::as_slice),
        kava_safetensors: files.get("kava.safetensors").map(Vec::as_slice),
    }
}

#[test]
fn model_from_bytes_solves_exactly_like_model_load() {
    let device = Backend::Cpu.device().unwrap();
    let opts = SolveOptions {
        max_answer_tokens: 8,
        max_cot_tokens: 24,
        show_latents: 2,
        separate_answer_pass: false,
    };
    // A KaVa directory (kava.json + kava.safetensors) and a plain HF fixture.
    for dir in [latent_dir().clone(), fixture("tiny-qwen2")] {
        let files = read_dir_files(&dir);
        let mut from_bytes = Model::from_bytes(bytes_of(&dir, &files), &device).unwrap();
        let mut loaded = Model::load(&dir, &device).unwrap();
        assert_eq!(
            from_bytes.stop_tokens,
            loaded.stop_tokens,
            "{}",
            dir.display()
        );
        assert_eq!(
            from_bytes.latent.as_ref().map(|r| &r.config),
            loaded.latent.as_ref().map(|r| &r.config)
        );
        if loaded.latent.is_none() {
            from_bytes.attach_latents(M, 2, true).unwrap();
            loaded.attach_latents(M, 2, true).unwrap();
        }
        for mode in [Mode::Latent, Mode::Cot] {
            let a = from_bytes.solve(QUESTION, mode, &opts).unwrap();
            let b = loaded.solve(QUESTION, mode, &opts).unwrap();
            assert_eq!(
                (&a.text, a.answer, &a.latent_tokens),
                (&b.text, b.answer, &b.latent_tokens),
                "{} {mode}",
                dir.display()
            );
            assert_eq!(a.stats.forward_passes, b.stats.forward_passes);
        }
    }
}

#[test]
fn model_from_bytes_names_the_file_at_fault() {
    let device = Backend::Cpu.device().unwrap();
    let dir = latent_dir();
    let mut files = read_dir_files(dir);
    files.remove("kava.safetensors");
    let err = Model::from_bytes(bytes_of(dir, &files), &device)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("kava.safetensors") && err.contains("missing"),
        "{err}"
    );
    let mut files = read_dir_files(dir);
    files.insert("model.safetensors", b"not a safetensors file".to_vec());
    let err = Model::from_bytes(bytes_of(dir, &files), &device)
        .unwrap_err()
        .to_string();
    assert!(err.contains("model.safetensors"), "{err}");
}
