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

/// RoPE at explicit `[b][p]` positions, with the model's own frequencies.
fn rotate(m: &kava::model::Transformer, k: kava::burn::tensor::Tensor<4>, pos: &[Vec<i64>]) -> kava::burn::tensor::Tensor<4> {
    use kava::burn::tensor::{Int, Tensor, TensorData};
    let device = k.device();
    let (b, p) = (pos.len(), pos[0].len());
    let pos = Tensor::<2, Int>::from_data(TensorData::new(pos.concat(), [b, p]), &device);
    kava::model::RopeAngles::new(pos, &kava::model::rope::inv_freq(&m.config), &device).apply(k)
}

#[test]
fn pre_rope_keys_rotated_at_their_positions_equal_the_post_rope_keys() {
    use kava::burn::tensor::{Int, Tensor, TensorData};
    let case = CASES[0];
    let exp = Expected::load(case);
    let device = kava::Backend::Cpu.device().unwrap();
    let model = Model::load(fixture(case), &device).unwrap();
    let m = &model.transformer;
    let ids = exp.prompt_ids(0);
    assert!(ids.len() >= 14, "prompt too short for this test");
    // Two right-padded rows (row 1 is 3 tokens shorter), then 5 more tokens on that cache, so
    // the second pass starts at a different position in each row.
    let lens = [10usize, 7];
    let rows: Vec<Vec<u32>> = lens.iter().map(|&n| ids[..10].iter().enumerate().map(|(i, &id)| if i < n { id } else { 0 }).collect()).collect();
    let valid: Vec<Vec<bool>> = lens.iter().map(|&n| (0..10).map(|i| i < n).collect()).collect();
    let at = |cols: &[i64]| {
        let idx: Vec<i64> = (0..2).flat_map(|_| cols.to_vec()).collect();
        Some(Tensor::<2, Int>::from_data(TensorData::new(idx, [2, cols.len()]), &device))
    };
    let capture = |cols: &[i64]| Capture { keys_values: true, keys_pre_rope: true, positions: at(cols), ..Capture::none() };
    let mut cache = m.new_cache(2);

    let cols = [0i64, 3, 6];
    let out = m.forward(m.embed(ids_tensor(&rows, &device)), Some(&valid), &mut cache, &capture(&cols));
    assert_eq!(out.keys_pre_rope.len(), m.layers.len());
    let d = m.config.head_dim;
    for (l, (pre, post)) in out.keys_pre_rope.iter().zip(&out.keys).enumerate() {
        assert_eq!(pre.dims(), post.dims(), "layer {l}");
        let pos = vec![cols.to_vec(); 2];
        assert_close(&format!("layer {l}: rotated pre-RoPE keys"), &host(rotate(m, pre.clone(), &pos)), &host(post.clone()), 1e-5);
        // Position 0 is the identity rotation; elsewhere the two differ.
        let (pre, post) = (host(pre.clone()), host(post.clone()));
        let at0 = |x: &[f32]| x.chunks(d).step_by(cols.len()).flatten().copied().collect::<Vec<f32>>();
        assert_eq!(at0(&pre), at0(&post), "layer {l}: keys at position 0");
        assert!(kava_tests::max_abs_diff(&pre, &post) > 1e-3, "layer {l}: pre-RoPE keys equal the post-RoPE ones");
    }

    let tail: Vec<Vec<u32>> = vec![ids[10..15].to_vec(); 2];
    let cols = [0i64, 2, 4];
    let out = m.forward(m.embed(ids_tensor(&tail, &device)), None, &mut cache, &capture(&cols));
    let pos: Vec<Vec<i64>> = lens.iter().map(|&n| cols.iter().map(|&c| n as i64 + c).collect()).collect();
    assert_eq!(out.keys_pre_rope.len(), m.layers.len());
    for (l, (pre, post)) in out.keys_pre_rope.into_iter().zip(out.keys).enumerate() {
        assert_close(&format!("layer {l}: rotated pre-RoPE keys on a cache"), &host(rotate(m, pre, &pos)), &host(post), 1e-5);
    }
    // Off by default: nothing is captured.
    let out = m.forward(m.embed(ids_tensor(&tail, &device)), None, &mut m.new_cache(2), &Capture { keys_values: true, ..Capture::none() });
    assert!(out.keys_pre_rope.is_empty());
}
