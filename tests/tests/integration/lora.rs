//! LoRA on q, k, v, o, gate, up, down: a fresh adapter changes nothing, a trained one changes the
//! logits, and merging it into the weights reproduces the adapted forward (the export path).

use kava::burn::module::Param;
use kava::burn::tensor::{Distribution, Tensor};
use kava::model::{ids_tensor, Capture};
use kava::Model;
use kava_tests::{assert_close, devices, fixture, host, Expected, CASES};

fn logits(model: &Model, ids: &[u32], device: &kava::burn::tensor::Device) -> Vec<f32> {
    let m = &model.transformer;
    let out = m.forward(m.embed(ids_tensor(&[ids.to_vec()], device)), None, &mut m.new_cache(1), &Capture::none());
    host(m.logits(out.hidden))
}

#[test]
fn lora_merge_equals_the_unmerged_forward() {
    let _rng = kava_tests::rng_lock();
    for case in CASES {
        let ids = Expected::load(case).prompt_ids(0);
        for (backend, device) in devices() {
            let mut model = Model::load(fixture(case), &device).unwrap();
            let base = logits(&model, &ids, &device);
            model.transformer.attach_lora(4, 8.0, 0.1);
            // B = 0 at init: the adapter is a no-op (dropout is off outside autodiff).
            assert_close(&format!("{case}/{backend} fresh adapter"), &logits(&model, &ids, &device), &base, 0.0);
            // A "trained" adapter: random B.
            for linear in model.transformer.lora_targets() {
                let lora = linear.lora.as_mut().unwrap();
                let [r, out] = lora.b.dims();
                lora.b = Param::from_tensor(Tensor::<2>::random([r, out], Distribution::Uniform(-0.5, 0.5), &device));
            }
            let adapted = logits(&model, &ids, &device);
            // Saving folds the adapter in: the exported weights are the effective ones.
            let dir = std::env::temp_dir().join(format!("kava-lora-{case}-{backend}-{}", std::process::id()));
            model.save(&dir, kava::load::safetensors::StoreDtype::F32).unwrap();
            let exported = Model::load(&dir, &device).unwrap();
            assert_close(&format!("{case}/{backend} exported"), &logits(&exported, &ids, &device), &adapted, 1e-4);
            std::fs::remove_dir_all(&dir).ok();
            let moved = adapted.iter().zip(&base).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(moved > 1e-2, "{case}/{backend}: the adapter should change the logits (max Δ {moved})");
            model.transformer.merge_lora();
            assert!(model.transformer.lora_targets().all(|l| l.lora.is_none()));
            assert_close(&format!("{case}/{backend} merged"), &logits(&model, &ids, &device), &adapted, 1e-4);
        }
    }
}

/// Training-time adapter dropout is inverted dropout: each input element of the adapter is
/// either dropped or kept and scaled by 1/keep, so the adapter's output keeps its expectation.
/// A 1×1 layer with W = 0, A = B = 1 and inputs of 1 makes every output either 0 or (α/r)/keep.
#[test]
fn lora_dropout_scales_the_kept_inputs_by_one_over_keep() {
    use kava::burn::tensor::TensorData;
    use kava::load::HostTensor;
    use kava::model::linear::Linear;
    let _rng = kava_tests::rng_lock();
    for (backend, device) in devices() {
        let device = device.autodiff();
        let mut layer = Linear::from_hf(HostTensor::new(vec![1, 1], vec![0.0]), None, &device);
        let (alpha, p) = (3.0f32, 0.25);
        layer.attach_lora(1, alpha, p);
        let lora = layer.lora.as_mut().unwrap();
        let one = || Param::from_tensor(Tensor::<2>::from_data(TensorData::new(vec![1.0f32], [1, 1]), &device));
        (lora.a, lora.b) = (one(), one());
        let n = 256;
        let x = Tensor::<3>::from_data(TensorData::new(vec![1.0f32; n], [1, n, 1]), &device);
        let y = host(layer.forward(x));
        let kept = alpha as f64 / (1.0 - p);
        let mut counts = [0usize; 2];
        for v in &y {
            if v.abs() < 1e-6 {
                counts[0] += 1;
            } else {
                assert!((*v as f64 - kept).abs() < 1e-5, "{backend}: output {v}, expected 0 or {kept}");
                counts[1] += 1;
            }
        }
        assert!(counts[0] > 20 && counts[1] > 150, "{backend}: dropped/kept {counts:?} of {n} at p = {p}");
    }
}
