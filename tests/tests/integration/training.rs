//! Training-side properties of the latent student on an autodiff device (method.md §3): the
//! gradient of an answer-pass loss reaches the init pass through every Jacobi iteration — there
//! is no detach between iterations.

use kava::model::{ids_tensor, Capture};
use kava::Model;
use kava_tests::{devices, fixture};

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
