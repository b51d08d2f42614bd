//! bf16 compute (`kava::model::precision::autocast`, kava-train's `optim.dtype = "bf16"`): the
//! model's GEMMs run in bf16 inside the scope and only there, the logits stay close to f32, and
//! a training step in bf16 gives the f32 step's losses to bf16 accuracy.

use kava::burn::tensor::FloatDType;
use kava::model::precision::{autocast, matmul_dtype};
use kava::{Backend, Model};
use kava_tests::{assert_terms_close, fixture, logits, max_abs_diff};
use kava_train::config::{Method, TrainConfig};
use kava_train::train::Session;

#[test]
fn bf16_gemms_run_only_inside_the_scope_and_stay_close_to_f32() {
    let device = Backend::Cpu.device().unwrap();
    let model = Model::load(&fixture("tiny-llama"), &device).unwrap();
    let ids = [1u32, 17, 42, 99, 7, 250, 3, 64];
    let f32_logits = logits(&model, &ids);
    let bf16_logits = {
        let _scope = autocast(Some(FloatDType::BF16));
        assert_eq!(matmul_dtype(), Some(FloatDType::BF16));
        // Another thread does not see this thread's scope.
        assert_eq!(std::thread::spawn(matmul_dtype).join().unwrap(), None);
        logits(&model, &ids)
    };
    assert_eq!(matmul_dtype(), None, "the scope ends with its guard");
    assert_eq!(logits(&model, &ids), f32_logits, "outside the scope the forward is f32 again");
    let diff = max_abs_diff(&bf16_logits, &f32_logits);
    let scale = f32_logits.iter().fold(0f32, |m, x| m.max(x.abs()));
    assert!(diff > 0.0, "bf16 GEMMs changed nothing: the casts did not happen");
    assert!(diff < 0.05 * scale.max(1.0), "bf16 logits too far from f32: {diff} (scale {scale})");
}

#[test]
fn a_bf16_training_step_matches_the_f32_step_to_bf16_accuracy() {
    let _rng = kava_tests::rng_lock();
    let dir = std::env::temp_dir().join(format!("kava-bf16-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (train, _) = kava_train::synth::train_test(7, 16, 1);
    let path = dir.join("train.txt");
    kava_train::synth::write_aug(&path, &train).unwrap();
    let examples = kava_train::data::read_aug_text(&path).unwrap().0;
    let step = |dtype: &str| {
        let mut c = TrainConfig::default().with_method(Method::Kava);
        c.model = fixture("tiny-llama");
        c.data.train = path.clone();
        c.latent.num_latents = 4;
        c.lora.rank = 4;
        c.lora.dropout = 0.0;
        c.optim.micro_batch = 4;
        c.optim.effective_batch = 4;
        c.optim.max_steps = 2;
        c.optim.dtype = dtype.into();
        c.checkpoint.dir = dir.join(dtype);
        c.validate("test").unwrap();
        let mut s = Session::new(c, Backend::Cpu.device().unwrap(), examples.clone()).unwrap();
        (s.train_step().unwrap(), s.train_step().unwrap())
    };
    let (f1, f2) = step("f32");
    let (b1, b2) = step("bf16");
    assert_terms_close(
        "bf16 vs f32",
        &[
            ("ce_student", b1.ce_student, f1.ce_student),
            ("ce_teacher", b1.ce_teacher, f1.ce_teacher),
            ("codi", b1.codi, f1.codi),
            ("kv", b1.kv, f1.kv),
            ("grad_norm", b1.grad_norm, f1.grad_norm),
            ("step-2 loss", b2.loss, f2.loss),
        ],
        0.03,
        1e-2,
    );
    assert_ne!(b1.loss, f1.loss, "the bf16 step computed exactly the f32 one: no bf16 GEMMs");
    assert_eq!(matmul_dtype(), None, "the step's scope does not leak");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bf16_training_stores_frozen_linear_weights_in_bf16_and_what_trains_in_f32() {
    let _rng = kava_tests::rng_lock();
    let dir = std::env::temp_dir().join(format!("kava-bf16-store-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (train, _) = kava_train::synth::train_test(7, 8, 1);
    let path = dir.join("train.txt");
    kava_train::synth::write_aug(&path, &train).unwrap();
    let examples = kava_train::data::read_aug_text(&path).unwrap().0;
    let mut c = TrainConfig::default().with_method(Method::Kava);
    c.model = fixture("tiny-llama");
    c.data.train = path.clone();
    c.latent.num_latents = 4;
    c.lora.rank = 4;
    c.optim.micro_batch = 4;
    c.optim.effective_batch = 4;
    c.optim.max_steps = 1;
    c.optim.dtype = "bf16".into();
    c.checkpoint.dir = dir.join("run");
    let mut s = Session::new(c, Backend::Cpu.device().unwrap(), examples).unwrap();
    let layer = &s.model.transformer.layers[0];
    let lora = layer.self_attn.q_proj.lora.as_ref().expect("LoRA attached");
    assert_eq!(layer.self_attn.q_proj.weight.val().dtype(), FloatDType::BF16.into(), "frozen q_proj");
    assert_eq!(layer.mlp.down_proj.weight.val().dtype(), FloatDType::BF16.into(), "frozen down_proj");
    assert_eq!(lora.a.val().dtype(), FloatDType::F32.into(), "LoRA A trains: f32 master");
    assert_eq!(layer.input_layernorm.weight.val().dtype(), FloatDType::F32.into(), "norms stay f32");
    assert_eq!(s.model.transformer.embed_tokens.val().dtype(), FloatDType::F32.into(), "embedding stays f32");
    let m = s.train_step().unwrap();
    assert!(m.loss.is_finite() && m.grad_norm > 0.0, "{m:?}");
    // The merged inference model (eval, export) is f32 again and runs outside any bf16 scope.
    let merged = s.inference_model();
    assert_eq!(merged.transformer.layers[0].self_attn.q_proj.weight.val().dtype(), FloatDType::F32.into());
    let l = logits(&merged, &[1, 5, 9, 3]);
    assert!(l.iter().all(|x| x.is_finite()), "merged model gives non-finite logits");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bf16_is_refused_on_wgpu_and_unknown_dtypes_are_named() {
    let mut c = TrainConfig::default();
    c.optim.dtype = "f16".into();
    let err = c.validate("test").unwrap_err().to_string();
    assert!(err.contains("optim.dtype") && err.contains("f16"), "{err}");
    for (backend, device) in kava_tests::devices() {
        if backend != Backend::Wgpu {
            continue;
        }
        let mut c = TrainConfig::default().with_method(Method::Cot);
        c.model = fixture("tiny-llama");
        c.optim.dtype = "bf16".into();
        let err = Session::new(c, device, vec![]).err().expect("bf16 on wgpu must be refused").to_string();
        assert!(err.contains("bf16") && err.contains("wgpu"), "{err}");
    }
}
