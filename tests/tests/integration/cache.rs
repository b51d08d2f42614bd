//! The external KV cache: incremental decoding equals a full forward, and `truncate` restores
//! the prefix state exactly.

use kava::model::{ids_tensor, Capture};
use kava::Model;
use kava_tests::{assert_close, devices, fixture, host, Expected, CASES};

#[test]
fn incremental_decoding_equals_full_forward() {
    for case in CASES {
        let exp = Expected::load(case);
        let ids = exp.prompt_ids(0);
        for (backend, device) in devices() {
            let model = Model::load(fixture(case), &device).unwrap();
            let m = &model.transformer;
            let split = ids.len() / 2;
            let mut cache = m.new_cache(1);
            let first = m.forward(m.embed(ids_tensor(&[ids[..split].to_vec()], &device)), None, &mut cache, &Capture::none());
            let mut got = host(m.logits(first.hidden));
            // The rest one token at a time, then a 3-token chunk path is covered by the split.
            for &id in &ids[split..] {
                let out = m.forward(m.embed(ids_tensor(&[vec![id]], &device)), None, &mut cache, &Capture::none());
                got.extend(host(m.logits(out.hidden)));
            }
            assert_eq!(cache.len(), ids.len());
            assert_close(&format!("{case}/{backend} incremental logits"), &got, &exp.get("logits.0").data, 1e-4);
        }
    }
}

#[test]
fn truncate_restores_the_prefix_state_exactly() {
    let case = CASES[0];
    let exp = Expected::load(case);
    let ids = exp.prompt_ids(0);
    for (backend, device) in devices() {
        let model = Model::load(fixture(case), &device).unwrap();
        let m = &model.transformer;
        let prefix = ids[..10].to_vec();
        let tail = ids[10..14].to_vec();
        let mut cache = m.new_cache(1);
        m.forward(m.embed(ids_tensor(&[prefix.clone()], &device)), None, &mut cache, &Capture::none());
        let before: Vec<Vec<f32>> =
            (0..m.layers.len()).map(|l| host(cache.layer(l).unwrap().0.clone())).collect();
        let a = host(m.forward(m.embed(ids_tensor(&[tail.clone()], &device)), None, &mut cache, &Capture::none()).hidden);
        // Something else on top, then back to the prefix.
        m.forward(m.embed(ids_tensor(&[vec![5, 6, 7]], &device)), None, &mut cache, &Capture::none());
        cache.truncate(prefix.len());
        assert_eq!(cache.len(), prefix.len());
        for (l, want) in before.iter().enumerate() {
            let got = host(cache.layer(l).unwrap().0.clone());
            assert_eq!(&got, want, "{backend}: layer {l} keys after truncate");
        }
        let b = host(m.forward(m.embed(ids_tensor(&[tail.clone()], &device)), None, &mut cache, &Capture::none()).hidden);
        assert_eq!(a, b, "{backend}: the same tail on the restored prefix");
    }
}

#[test]
fn captures_at_chosen_positions_equal_the_full_capture() {
    let case = CASES[1];
    let exp = Expected::load(case);
    let device = kava::Backend::Cpu.device().unwrap();
    let model = Model::load(fixture(case), &device).unwrap();
    let m = &model.transformer;
    let ids = exp.prompt_ids(0);
    let pos = [3usize, 0, 7];
    let idx = kava::burn::tensor::Tensor::<2, kava::burn::tensor::Int>::from_data(
        kava::burn::tensor::TensorData::new(pos.iter().map(|&p| p as i64).collect::<Vec<_>>(), [1, pos.len()]),
        &device,
    );
    let capture = Capture { positions: Some(idx), ..Capture::all() };
    let mut cache = m.new_cache(1);
    let out = m.forward(m.embed(ids_tensor(&[ids], &device)), None, &mut cache, &capture);
    let c = m.config.hidden_size;
    let d = m.config.head_dim;
    for (l, h) in out.hidden_states.into_iter().enumerate() {
        let full = &exp.get(&format!("hidden.0.{l}")).data;
        let want: Vec<f32> = pos.iter().flat_map(|&p| full[p * c..(p + 1) * c].to_vec()).collect();
        assert_close(&format!("hidden {l} at chosen positions"), &host(h), &want, 1e-4);
    }
    let s = exp.get("k.0.0").shape[1];
    for (l, k) in out.keys.into_iter().enumerate() {
        let full = &exp.get(&format!("k.0.{l}")).data;
        let g = full.len() / (s * d);
        let want: Vec<f32> =
            (0..g).flat_map(|gi| pos.iter().flat_map(move |&p| full[(gi * s + p) * d..(gi * s + p + 1) * d].to_vec())).collect();
        assert_close(&format!("keys {l} at chosen positions"), &host(k), &want, 1e-4);
    }
    assert_eq!(out.queries.len(), m.config.num_hidden_layers);
    assert_eq!(out.queries[0].dims(), [1, m.config.num_attention_heads, pos.len(), d]);
}
