//! Printing results: the side-by-side stats table of `kava solve`, its JSON, and the summary of
//! `kava bench`.

use std::path::Path;

use kava::burn::tensor::Device;
use kava::{Backend, Mode, Model, Solution};

/// The fixed question set of `kava bench` (GSM8k-style, written for kava).
pub const BENCH_QUESTIONS: [&str; 8] = [
    "A baker makes 24 muffins in the morning and 18 in the afternoon. She sells 30 of them. How many muffins are left?",
    "Tom has 5 boxes with 12 pencils in each box. He gives away 17 pencils. How many pencils does he have now?",
    "A train travels 60 miles per hour for 3 hours and then 45 miles per hour for 2 hours. How many miles does it travel in total?",
    "Maria buys 4 notebooks at $3 each and 2 pens at $2 each. She pays with a $20 bill. How much change does she get?",
    "A garden has 8 rows of tomato plants with 7 plants in each row. Each plant gives 5 tomatoes. How many tomatoes are there?",
    "Sam reads 15 pages a day for 6 days and then 20 pages a day for 4 days. How many pages does he read?",
    "A school has 420 students. One third of them walk to school and 90 ride bikes. How many students come another way?",
    "Lena saves $35 each week. After 8 weeks she spends $110 on a bike. How much money does she have left?",
];

/// Rows of one stat for every solution, and the CoT/latent ratio when both are present.
pub fn solutions_table(solutions: &[Solution], backend: Backend) -> String {
    let mut out = String::new();
    for s in solutions {
        out.push_str(&format!("[{}] {}\n", s.mode, s.text.trim()));
        out.push_str(&latent_slots(s, "  "));
    }
    let stat = |s: &Solution, k: usize| -> f64 {
        let st = &s.stats;
        match k {
            0 => st.forward_passes as f64,
            1 => st.prompt_tokens as f64,
            2 => st.generated_tokens as f64,
            3 => st.kv_entries as f64,
            4 => st.kv_bytes as f64 / 1024.0,
            5 => st.prefill_time.as_secs_f64() * 1e3,
            6 => st.latent_time.as_secs_f64() * 1e3,
            7 => st.decode_time.as_secs_f64() * 1e3,
            _ => st.total_time().as_secs_f64() * 1e3,
        }
    };
    let names = ["forward passes", "prompt tokens", "generated tokens", "KV entries", "KV KiB", "prefill ms", "latent ms", "decode ms", "total ms"];
    out.push_str(&format!("\n{:<18}", format!("[{backend}]")));
    for s in solutions {
        out.push_str(&format!("{:>12}", s.mode.to_string()));
    }
    let ratio = solutions.len() == 2 && solutions[0].mode == Mode::Latent && solutions[1].mode == Mode::Cot;
    if ratio {
        out.push_str(&format!("{:>14}", "cot/latent"));
    }
    out.push('\n');
    out.push_str(&format!("{:<18}", "answer"));
    for s in solutions {
        out.push_str(&format!("{:>12}", s.answer.map_or("-".into(), |a| format!("{a}"))));
    }
    out.push('\n');
    for (k, name) in names.iter().enumerate() {
        out.push_str(&format!("{name:<18}"));
        for s in solutions {
            let v = stat(s, k);
            out.push_str(&format!("{:>12}", if k >= 4 { format!("{v:.1}") } else { format!("{v:.0}") }));
        }
        if ratio {
            let (l, c) = (stat(&solutions[0], k), stat(&solutions[1], k));
            // A ratio against a near-zero time (e.g. one answer token) says nothing.
            let meaningful = if k >= 5 { l >= 1.0 } else { l > 0.0 };
            out.push_str(&format!("{:>14}", if meaningful { format!("{:.2}x", c / l) } else { "-".into() }));
        }
        out.push('\n');
    }
    out
}

/// One line per latent slot: its nearest vocabulary tokens and their logits (`--show-latents`).
pub fn latent_slots(s: &Solution, indent: &str) -> String {
    let mut out = String::new();
    for (j, slot) in s.latent_tokens.iter().enumerate() {
        let toks: Vec<String> = slot.iter().map(|(t, v)| format!("{t:?} {v:.2}")).collect();
        out.push_str(&format!("{indent}latent {j:>2}: {}\n", toks.join(", ")));
    }
    out
}

pub fn solutions_json(solutions: &[Solution], backend: Backend) -> String {
    let v: Vec<serde_json::Value> = solutions
        .iter()
        .map(|s| {
            serde_json::json!({
                "backend": backend.to_string(),
                "mode": s.mode.to_string(),
                "text": s.text,
                "answer": s.answer,
                "forward_passes": s.stats.forward_passes,
                "prompt_tokens": s.stats.prompt_tokens,
                "generated_tokens": s.stats.generated_tokens,
                "kv_entries": s.stats.kv_entries,
                "kv_bytes": s.stats.kv_bytes,
                "prefill_ms": s.stats.prefill_time.as_secs_f64() * 1e3,
                "latent_ms": s.stats.latent_time.as_secs_f64() * 1e3,
                "decode_ms": s.stats.decode_time.as_secs_f64() * 1e3,
                "total_ms": s.stats.total_time().as_secs_f64() * 1e3,
                "latent_tokens": s.latent_tokens,
            })
        })
        .collect();
    serde_json::to_string_pretty(&v).expect("json")
}

/// `(latent s, cot s, latent passes, cot passes)` per question → table and one summary line.
pub fn bench_table(rows: &[(f64, f64, usize, usize)], backend: Backend, device: &Device, model_path: &Path, model: &Model) -> String {
    let mut out = format!("{:>3} {:>12} {:>12} {:>8} {:>8} {:>8}\n", "q", "latent ms", "cot ms", "passes", "passes", "ratio");
    for (i, (tl, tc, pl, pc)) in rows.iter().enumerate() {
        out.push_str(&format!("{i:>3} {:>12.1} {:>12.1} {pl:>8} {pc:>8} {:>7.2}x\n", tl * 1e3, tc * 1e3, tc / tl));
    }
    let n = rows.len() as f64;
    let (tl, tc): (f64, f64) = (rows.iter().map(|r| r.0).sum::<f64>() / n, rows.iter().map(|r| r.1).sum::<f64>() / n);
    let (pl, pc): (f64, f64) = (rows.iter().map(|r| r.2 as f64).sum::<f64>() / n, rows.iter().map(|r| r.3 as f64).sum::<f64>() / n);
    let cfg = &model.latent.as_ref().expect("latents attached").config;
    out.push_str(&format!(
        "kava bench | backend {backend} | dtype {:?} | model {} | M {} T {} | {} questions | latent {:.1} ms/q ({pl:.1} passes) | cot {:.1} ms/q ({pc:.1} passes) | cot/latent time {:.2}x\n",
        device.settings().float_dtype,
        model_path.display(),
        cfg.num_latents,
        cfg.num_iterations,
        rows.len(),
        tl * 1e3,
        tc * 1e3,
        tc / tl
    ));
    out
}
