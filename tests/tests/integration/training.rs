//! Training-side properties of the latent student on an autodiff device (method.md §3): the
//! gradient of an answer-pass loss reaches the init pass through every Jacobi iteration — there
//! is no detach between iterations.

use kava::model::{ids_tensor, Capture};
use kava::Model;
use kava_tests::{assert_close, devices, fixture, host};

#[test]
fn gradient_reaches_the_init_pass_through_all_jacobi_iterations() {
    for (backend, device) in devices() {
        let device = device.autodiff();
        for t_iters in [0usize, 1, 3] {
            let mut model = Model::load(fixture("tiny-llama"), &device).unwrap();
            model.attach_latents(4, t_iters, true).unwrap();
            let reasoner = model.latent.as_ref().unwrap();
            let (lat_id, eot_id) = (reasoner.config.lat_id as usize, reasoner.config.eot_id);
            let question = model.tokenizer.encode("Tom has 3 apples and buys 4 more.", true).unwrap();
            let m = &model.transformer;
            let latents = reasoner.reason(m, &[question], &Capture::none());
            assert_eq!(latents.forward_passes, 1 + t_iters);
            let mut cache = latents.cache;
            let out = m.forward(m.embed(ids_tensor(&[vec![eot_id]], &device)), None, &mut cache, &Capture::none());
            let loss = m.logits(out.hidden).powi_scalar(2).mean();
            let grads = loss.backward();
            // `<lat>` rows only enter the init pass; with T ≥ 1 they reach the answer only through
            // z⁰ → z¹ → … → the cache the answer reads.
            let g = m.embed_tokens.val().grad(&grads).expect("embedding gradient");
            let row: Vec<f32> = g.narrow(0, lat_id, 1).into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
            let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
            assert!(norm > 1e-9, "{backend} T={t_iters}: no gradient reached the <lat> embedding (‖g‖ = {norm})");
            // The projection maps hidden states to the next latents: used (and trained) iff T ≥ 1.
            let p = reasoner.projection.as_ref().expect("projection on");
            let gp = p.fc1.weight.val().grad(&grads).map(|g| g.abs().sum().into_scalar::<f32>()).unwrap_or(0.0);
            assert_eq!(gp > 0.0, t_iters > 0, "{backend} T={t_iters}: projection gradient {gp}");
        }
    }
}

/// The CE of kava-train's step gathers the scored positions before the LM head: same value and
/// same gradient as the CE over every position's logits with a mask (padding, unscored prompt
/// positions), on every backend; no scored position gives 0.
#[test]
fn the_scored_positions_ce_equals_the_masked_full_ce() {
    use kava::burn::tensor::{Bool, Int, Tensor, TensorData};
    use kava_train::objective::cross_entropy;
    use kava_train::train::step::scored_ce;
    for (backend, device) in devices() {
        let device = device.autodiff();
        let model = Model::load(fixture("tiny-llama"), &device).unwrap();
        let m = &model.transformer;
        let (b, t) = (2, 7);
        let c = m.embed_tokens.val().dims()[1];
        let v = m.embed_tokens.val().dims()[0] as u32;
        let data: Vec<f32> = (0..b * t * c).map(|i| ((i * 29 % 97) as f32 - 48.0) / 40.0).collect();
        let pairs = vec![vec![(2, 5 % v), (3, 17 % v), (6, 1)], vec![(0, 9 % v), (4, 33 % v)]];
        let hidden = || Tensor::<3>::from_data(TensorData::new(data.clone(), [b, t, c]), &device).require_grad();

        let h1 = hidden();
        let got = scored_ce(m, h1.clone(), &pairs);
        let (mut ids, mut mask) = (vec![0i64; b * t], vec![false; b * t]);
        for (r, row) in pairs.iter().enumerate() {
            for &(p, id) in row {
                (ids[r * t + p], mask[r * t + p]) = (id as i64, true);
            }
        }
        let h2 = hidden();
        let want = cross_entropy(
            m.logits(h2.clone()),
            Tensor::<2, Int>::from_data(TensorData::new(ids, [b, t]), &device),
            Some(Tensor::<2, Bool>::from_data(TensorData::new(mask, [b, t]), &device)),
        );
        let (gv, wv) = (host(got.clone()), host(want.clone()));
        assert!((gv[0] - wv[0]).abs() <= 1e-5 * wv[0].abs().max(1.0), "{backend}: CE {} vs {}", gv[0], wv[0]);
        let g1 = host(h1.grad(&got.backward()).unwrap());
        let g2 = host(h2.grad(&want.backward()).unwrap());
        assert_close(&format!("{backend}: dCE/dhidden"), &g1, &g2, 1e-5);
        assert!(g1.iter().any(|x| *x != 0.0), "{backend}: no gradient");
        assert_eq!(host(scored_ce(m, hidden(), &[vec![], vec![]])), vec![0.0], "{backend}: nothing scored");
    }
}
